/* Data parallelism: communicators of threads in one process, the loader's
 * shards, the parameter-set collectives, and syn_fit over 2 and 3 members
 * against one process. The MPI transport runs through mpirun in
 * tests/dist_mpi_test.sh. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

enum { MAX_MEMBERS = 4 };

#define TRY(expr)                             \
    do {                                      \
        syn_status try_s_ = (expr);           \
        if (try_s_ != SYN_OK) return try_s_;  \
    } while (0)

/* ---- communicators ---------------------------------------------------------------- */

START_TEST(test_comm_lone_and_bad_args) {
    ck_assert_int_eq(syn_comm_rank(NULL), 0);
    ck_assert_int_eq(syn_comm_size(NULL), 1);
    ck_assert_int_eq(syn_comm_local_rank(NULL), 0);
    syn_comm *c[2] = {NULL, NULL};
    ck_assert_int_eq(syn_comm_threads(0, c), SYN_ERR_ARG);
    ck_assert_int_eq(syn_comm_threads(2, NULL), SYN_ERR_ARG);
    syn_comm_ops none = {0};
    ck_assert_int_eq(syn_comm_create(0, 1, 0, &none, NULL, c), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "allreduce and broadcast"));
    /* one member: the collectives are no-ops, and need no transport call */
    ck_assert_int_eq(syn_comm_threads(1, c), SYN_OK);
    float v = 3.0f;
    ck_assert_int_eq(syn_comm_allreduce_f32(c[0], &v, 1), SYN_OK);
    ck_assert(v == 3.0f);
    ck_assert_int_eq(syn_comm_broadcast(c[0], &v, sizeof v, 1), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "root 1 outside 0..0"));
    ck_assert_int_eq(syn_comm_allreduce_f32(c[0], NULL, 4), SYN_ERR_ARG);
    ck_assert_int_eq(syn_comm_agree(c[0], SYN_ERR_SHAPE), SYN_ERR_SHAPE); /* alone: its own status */
    ck_assert_int_eq(syn_comm_agree(c[0], SYN_OK), SYN_OK);
    syn_comm_free(c[0]);
    syn_comm_free(NULL);
}
END_TEST

typedef struct {
    syn_comm *c;
    void *(*body)(void *);
    void *arg; /* the body's own */
    int failures;
    char msg[256];
} member;

/* Runs body once per member, each in its own thread, and frees the members. */
static void run_members(member *m, int n) {
    pthread_t th[MAX_MEMBERS];
    for (int i = 0; i < n; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, m[i].body, &m[i]), 0);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++) syn_comm_free(m[i].c);
}

static void member_fail(member *m, const char *what) {
    if (m->failures++ == 0) snprintf(m->msg, sizeof m->msg, "member %d: %s (%s)", syn_comm_rank(m->c), what,
                                     syn_last_error());
}

static void check_members(const member *m, int n) {
    for (int i = 0; i < n; i++) ck_assert_msg(m[i].failures == 0, "%s", m[i].msg);
}

/* body on `size` members in threads, member i's argument ios + i * stride
 * (an array of the body's records). */
static void run_on_members(int size, void *(*body)(void *), void *ios, size_t stride) {
    syn_comm *c[MAX_MEMBERS];
    ck_assert_int_eq(syn_comm_threads(size, c), SYN_OK);
    member m[MAX_MEMBERS] = {{0}};
    for (int i = 0; i < size; i++) {
        m[i].c = c[i];
        m[i].body = body;
        m[i].arg = (char *)ios + (size_t)i * stride;
    }
    run_members(m, size);
    check_members(m, size);
}

/* Sums of rank + 1 and of 0.1 * rank, a broadcast from the last member. */
static void *collectives_body(void *arg) {
    member *m = arg;
    int r = syn_comm_rank(m->c), n = syn_comm_size(m->c);
    float f[37];
    double d[5];
    for (int i = 0; i < 37; i++) f[i] = (float)(r + 1) * (float)(i + 1);
    for (int i = 0; i < 5; i++) d[i] = 0.1 * r + i;
    if (syn_comm_allreduce_f32(m->c, f, 37) != SYN_OK) member_fail(m, "allreduce f32");
    if (syn_comm_allreduce_f64(m->c, d, 5) != SYN_OK) member_fail(m, "allreduce f64");
    float want_f = (float)(n * (n + 1) / 2);
    for (int i = 0; i < 37; i++)
        if (f[i] != want_f * (float)(i + 1)) member_fail(m, "f32 sum");
    double want_d = 0.0;
    for (int k = 0; k < n; k++) want_d += 0.1 * k;
    for (int i = 0; i < 5; i++)
        if (fabs(d[i] - (want_d + n * i)) > 1e-12) member_fail(m, "f64 sum");
    char text[24];
    snprintf(text, sizeof text, "from %d", r);
    if (syn_comm_broadcast(m->c, text, sizeof text, n - 1) != SYN_OK) member_fail(m, "broadcast");
    char want[24];
    snprintf(want, sizeof want, "from %d", n - 1);
    if (strcmp(text, want) != 0) member_fail(m, "broadcast bytes");
    if (syn_comm_local_rank(m->c) != r) member_fail(m, "local rank");
    /* agreement: all fine; member 1 fails (all get its status); members 0
     * and 1 fail alike, then with different statuses (the others: SYN_ERR_IO) */
    if (syn_comm_agree(m->c, SYN_OK) != SYN_OK) member_fail(m, "agree, none failed");
    syn_status got = syn_comm_agree(m->c, r == 1 ? SYN_ERR_SHAPE : SYN_OK);
    if (got != SYN_ERR_SHAPE) member_fail(m, "agree, member 1 failed");
    if (r != 1 && !strstr(syn_last_error(), "1 of the ")) member_fail(m, "agree's message");
    got = syn_comm_agree(m->c, r < 2 ? SYN_ERR_OOM : SYN_OK);
    if (got != SYN_ERR_OOM) member_fail(m, "agree, two alike");
    got = syn_comm_agree(m->c, r == 0 ? SYN_ERR_OOM : r == 1 ? SYN_ERR_SHAPE : SYN_OK);
    if (got != (r == 0 ? SYN_ERR_OOM : r == 1 ? SYN_ERR_SHAPE : SYN_ERR_IO)) member_fail(m, "agree, two unlike");
    return NULL;
}

START_TEST(test_comm_threads_collectives) {
    for (int n = 2; n <= 3; n++) {
        syn_comm *c[MAX_MEMBERS];
        ck_assert_int_eq(syn_comm_threads(n, c), SYN_OK);
        member m[MAX_MEMBERS] = {{0}};
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(syn_comm_rank(c[i]), i);
            ck_assert_int_eq(syn_comm_size(c[i]), n);
            m[i].c = c[i];
            m[i].body = collectives_body;
        }
        run_members(m, n);
        check_members(m, n);
    }
}
END_TEST

/* A transport of the program's own: counts its calls, and fails on demand. */
typedef struct {
    int calls, fail;
} own_transport;

static syn_status own_allreduce(void *user, void *buf, int64_t n, syn_comm_type t) {
    own_transport *o = user;
    (void)buf, (void)n, (void)t;
    o->calls++;
    return o->fail ? SYN_ERR_IO : SYN_OK;
}

static syn_status own_broadcast(void *user, void *buf, int64_t bytes, int root) {
    own_transport *o = user;
    (void)buf, (void)bytes, (void)root;
    o->calls++;
    return o->fail ? SYN_ERR_IO : SYN_OK;
}

static void own_destroy(void *user) { ((own_transport *)user)->calls += 100; }

START_TEST(test_comm_own_transport) {
    own_transport o = {0, 0};
    syn_comm_ops ops = {own_allreduce, own_broadcast, own_destroy};
    syn_comm *c = NULL;
    ck_assert_int_eq(syn_comm_create(2, 3, 3, &ops, &o, &c), SYN_ERR_ARG); /* local rank above rank */
    ck_assert_int_eq(syn_comm_create(3, 3, 0, &ops, &o, &c), SYN_ERR_ARG);
    ck_assert_int_eq(syn_comm_create(2, 4, 0, &ops, &o, &c), SYN_OK);
    ck_assert_int_eq(syn_comm_local_rank(c), 0);
    double d = 1.0;
    ck_assert_int_eq(syn_comm_allreduce_f64(c, &d, 1), SYN_OK);
    ck_assert_int_eq(syn_comm_allreduce_f64(c, &d, 0), SYN_OK); /* nothing to send: no call */
    ck_assert_int_eq(o.calls, 1);
    o.fail = 1;
    ck_assert_int_eq(syn_comm_broadcast(c, &d, sizeof d, 3), SYN_ERR_IO);
    /* the transport wrote no message: the collective names itself */
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "syn_comm_broadcast: the transport's broadcast of 8 bytes"));
    ck_assert_int_eq(syn_comm_allreduce_f32(c, (float *)&d, 2), SYN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "rank 2 of 4"));
    o.fail = 0; /* agreement through it: one allreduce each */
    ck_assert_int_eq(syn_comm_agree(c, SYN_OK), SYN_OK);
    ck_assert_int_eq(syn_comm_agree(c, SYN_ERR_SHAPE), SYN_ERR_SHAPE);
    syn_comm_free(c);
    ck_assert_int_eq(o.calls, 3 + 2 + 100);
    ck_assert_int_eq(syn_comm_agree(NULL, SYN_OK), SYN_ERR_ARG);
}
END_TEST

START_TEST(test_comm_mpi_without_plugin) {
    /* forked test: the environment is this test's own */
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_SIZE");
    unsetenv("MPI_LOCALNRANKS");
    int n = 0;
    ck_assert(!syn_comm_mpi_launched(&n));
    ck_assert_int_eq(n, 1);
    setenv("PMI_SIZE", "1", 1);
    ck_assert(!syn_comm_mpi_launched(NULL));
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    ck_assert(syn_comm_mpi_launched(&n));
    ck_assert_int_eq(n, 4);
    setenv("SYN_MPI_PLUGIN", "/nonexistent/libsynapse_mpi.so", 1);
    syn_comm *c = (syn_comm *)1;
    ck_assert_int_eq(syn_comm_mpi(&c), SYN_ERR_UNSUPPORTED);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(syn_last_error(), "cannot load the MPI plugin") &&
                      strstr(syn_last_error(), "/nonexistent/libsynapse_mpi.so"),
                  "%s", syn_last_error());
}
END_TEST

/* ---- the loader's shards -------------------------------------------------------- */

/* Row i's first feature is i: a batch's rows read back as indices. */
static syn_dataset *indexed_set(int64_t n) {
    syn_dataset *ds = tu_dataset_3class(n, 5);
    for (int64_t i = 0; i < n; i++) ds->x[i * ds->dim] = (float)i;
    return ds;
}

/* One epoch of every shard against the unsharded loader's batches. */
static void check_shards(int64_t n, int64_t batch, int parts, bool prefetch) {
    syn_dataset *ds = indexed_set(n);
    syn_loader *whole, *part[MAX_MEMBERS];
    ck_assert_int_eq(syn_loader_create(ds, batch, true, 77, false, &whole), SYN_OK);
    for (int k = 0; k < parts; k++) {
        ck_assert_int_eq(syn_loader_create(ds, batch, true, 77, false, &part[k]), SYN_OK);
        ck_assert_int_eq(syn_loader_set_shard(part[k], k, parts), SYN_OK);
        if (prefetch) ck_assert_int_eq(syn_loader_set_prefetch(part[k], true), SYN_OK);
    }
    int64_t rest = n % batch, batches = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        for (;;) {
            syn_batch w;
            ck_assert_int_eq(syn_loader_next(whole, &w), SYN_OK);
            if (w.n == 0) break;
            ck_assert_int_eq(w.total, w.n);
            bool dropped = w.n < parts; /* a last batch too small to split */
            int64_t got = 0;
            for (int k = 0; k < parts; k++) {
                syn_batch b;
                ck_assert_int_eq(syn_loader_next(part[k], &b), SYN_OK);
                if (dropped) {
                    ck_assert_int_eq(b.n, 0);
                    continue;
                }
                ck_assert_int_eq(b.total, w.n);
                ck_assert_int_eq(b.n, w.n * (k + 1) / parts - w.n * k / parts);
                for (int64_t r = 0; r < b.n; r++, got++) {
                    ck_assert(b.x[r * ds->dim] == w.x[got * ds->dim]);
                    ck_assert_int_eq(b.labels[r], w.labels[got]);
                }
            }
            if (dropped) {
                ck_assert(syn_loader_next(whole, &w) == SYN_OK && w.n == 0);
                break;
            }
            ck_assert_int_eq(got, w.n);
            batches += epoch == 0;
        }
        for (int k = 0; k < parts; k++) { /* every shard's epoch ends here too */
            syn_batch b;
            if (rest == 0 || rest >= parts) {
                ck_assert_int_eq(syn_loader_next(part[k], &b), SYN_OK);
                ck_assert_int_eq(b.n, 0);
            }
        }
    }
    for (int k = 0; k < parts; k++) {
        ck_assert_int_eq(syn_loader_batches(part[k]), batches);
        syn_loader_free(part[k]);
    }
    ck_assert_int_eq(syn_loader_batches(whole), (n + batch - 1) / batch);
    syn_loader_free(whole);
    syn_dataset_free(ds);
}

START_TEST(test_loader_shards) {
    check_shards(103, 10, 3, false); /* last batch 3 rows: one each */
    check_shards(101, 10, 3, true);  /* last batch 1 row: dropped */
    check_shards(64, 16, 2, false);  /* no last batch */
    check_shards(50, 7, 4, true);    /* 7 = 1 + 2 + 2 + 2 */
}
END_TEST

/* Prefetch turned off mid-epoch: the prepared batch comes again, this
 * shard's rows of it (the rewind goes back to the whole batch's start). */
START_TEST(test_loader_shard_prefetch_off) {
    syn_dataset *ds = indexed_set(40);
    syn_loader *whole, *part;
    ck_assert_int_eq(syn_loader_create(ds, 10, true, 3, false, &whole), SYN_OK);
    ck_assert_int_eq(syn_loader_create(ds, 10, true, 3, false, &part), SYN_OK);
    ck_assert_int_eq(syn_loader_set_shard(part, 1, 2), SYN_OK);
    ck_assert_int_eq(syn_loader_set_prefetch(part, true), SYN_OK);
    for (int k = 0; k < 4; k++) {
        if (k == 2) ck_assert_int_eq(syn_loader_set_prefetch(part, false), SYN_OK);
        syn_batch w, b;
        ck_assert_int_eq(syn_loader_next(whole, &w), SYN_OK);
        ck_assert_int_eq(syn_loader_next(part, &b), SYN_OK);
        ck_assert(w.n == 10 && b.n == 5 && b.total == 10);
        for (int r = 0; r < 5; r++)
            ck_assert_msg(b.x[r * ds->dim] == w.x[(5 + r) * ds->dim], "batch %d row %d: %g, not %g", k, r,
                          (double)b.x[r * ds->dim], (double)w.x[(5 + r) * ds->dim]);
    }
    syn_loader_free(whole);
    syn_loader_free(part);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(test_loader_shard_errors) {
    syn_dataset *ds = indexed_set(20);
    syn_loader *l;
    ck_assert_int_eq(syn_loader_create(ds, 4, false, 1, false, &l), SYN_OK);
    ck_assert_int_eq(syn_loader_set_shard(l, 2, 2), SYN_ERR_ARG);
    ck_assert_int_eq(syn_loader_set_shard(l, 0, 0), SYN_ERR_ARG);
    ck_assert_int_eq(syn_loader_set_shard(l, 0, 5), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "a batch of 4 rows cannot be split 5 ways"));
    ck_assert_int_eq(syn_loader_set_shard(NULL, 0, 1), SYN_ERR_ARG);
    syn_batch b;
    ck_assert_int_eq(syn_loader_next(l, &b), SYN_OK);
    ck_assert_int_eq(syn_loader_set_shard(l, 0, 2), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "not in the middle"));
    while (syn_loader_next(l, &b) == SYN_OK && b.n > 0) {
    }
    ck_assert_int_eq(syn_loader_set_shard(l, 1, 2), SYN_OK); /* at the epoch's end */
    ck_assert_int_eq(syn_loader_next(l, &b), SYN_OK);
    ck_assert(b.n == 2 && b.total == 4 && b.x[0] == 2.0f);
    syn_loader_free(l);
    syn_dataset_free(ds);
}
END_TEST

/* ---- parameter sets ------------------------------------------------------------ */

typedef struct {
    float weight, w_seen[6], frozen_seen[2];
    bool same_before, same_after;
} params_io;

/* w (2, 3) trainable, f (2) frozen; member r's values and gradients are r-based */
static void *params_body(void *arg) {
    member *m = arg;
    params_io *io = m->arg;
    int r = syn_comm_rank(m->c);
    syn_params *p = NULL;
    syn_tensor *w, *wg, *f;
    syn_init c = {SYN_INIT_CONSTANT, (float)r, 0, 0};
    if (syn_params_create(syn_cpu(), 1, &p) != SYN_OK || syn_params_add(p, "w", syn_shape2(2, 3), &c, &w) != SYN_OK ||
        syn_params_add(p, "f", syn_shape1(2), &c, &f) != SYN_OK || syn_params_set_trainable(p, "f", false) != SYN_OK ||
        syn_params_find(p, "w", NULL, &wg) != SYN_OK) {
        member_fail(m, "setup");
        syn_params_free(p);
        return NULL;
    }
    float g[6];
    for (int i = 0; i < 6; i++) g[i] = (float)(10 * r + i);
    syn_tensor_write(wg, g, sizeof g);
    if (syn_params_allreduce_grads(p, m->c, io->weight) != SYN_OK) member_fail(m, "allreduce grads");
    syn_tensor_read(wg, io->w_seen, sizeof io->w_seen);
    if (syn_params_compare(p, m->c, &io->same_before) != SYN_OK) member_fail(m, "compare");
    if (syn_params_broadcast(p, m->c, 1, true) != SYN_OK) member_fail(m, "broadcast frozen");
    syn_tensor_read(f, io->frozen_seen, sizeof io->frozen_seen);
    if (syn_params_broadcast(p, m->c, 0, false) != SYN_OK) member_fail(m, "broadcast all");
    if (syn_params_compare(p, m->c, &io->same_after) != SYN_OK) member_fail(m, "compare");
    if (syn_params_allreduce_grads(p, m->c, -1.0f) != SYN_ERR_ARG) member_fail(m, "negative weight");
    syn_params_free(p);
    return NULL;
}

START_TEST(test_params_collectives) {
    params_io io[2] = {{.weight = 0.25f}, {.weight = 0.75f}};
    run_on_members(2, params_body, io, sizeof *io);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 6; i++) /* 0.25 * i + 0.75 * (10 + i) */
            ck_assert_float_eq_tol(io[k].w_seen[i], 0.25f * (float)i + 0.75f * (float)(10 + i), 1e-6f);
        ck_assert(!io[k].same_before); /* member 0's values are 0, member 1's 1 */
        ck_assert(io[k].frozen_seen[0] == 1.0f && io[k].frozen_seen[1] == 1.0f); /* member 1's, frozen only */
        ck_assert(io[k].same_after);
    }
}
END_TEST

/* ---- syn_fit over members ---------------------------------------------------------- */

typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_optim *o;
    syn_model m;
} net;

/* x (cap, 5) -> linear 16 [-> batch norm] -> relu -> linear 3, cross-entropy;
 * SGD with momentum. */
static syn_status net_make(net *n, int64_t cap, bool bn, uint64_t seed) {
    memset(n, 0, sizeof *n);
    TRY(syn_params_create(syn_cpu(), seed, &n->p));
    TRY(syn_graph_create(n->p, &n->g));
    syn_graph *g = n->g;
    n->m.graph = g;
    n->m.x = syn_input(g, "x", SYN_F32, syn_shape2(cap, 5));
    n->m.y = syn_input(g, "y", SYN_I32, syn_shape1(cap));
    syn_node *h = syn_linear(g, n->m.x, 16, "fc1", NULL);
    if (bn) h = syn_batch_norm(g, h, "bn");
    h = syn_relu(g, h);
    n->m.logits = syn_linear(g, h, 3, "fc2", NULL);
    n->m.loss = syn_cross_entropy(g, n->m.logits, n->m.y);
    TRY(syn_graph_status(g));
    TRY(syn_graph_keep(g, n->m.logits));
    TRY(syn_graph_compile(g, syn_cpu(), NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_SGD);
    oc.lr = 0.1f;
    oc.momentum = 0.9f;
    return syn_optim_create(n->p, &oc, &n->o);
}

static void net_free(net *n) {
    syn_optim_free(n->o);
    syn_graph_free(n->g);
    syn_params_free(n->p);
}

/* Every parameter's values, in order, into out (numel floats). */
static void net_values(const net *n, float *out) {
    int64_t off = 0;
    for (int i = 0; i < syn_params_count(n->p); i++) {
        syn_tensor *v;
        ck_assert_int_eq(syn_params_get(n->p, i, NULL, &v, NULL), SYN_OK);
        ck_assert_int_eq(syn_tensor_read(v, out + off, syn_tensor_bytes(v)), SYN_OK);
        off += syn_tensor_numel(v);
    }
}

typedef struct {
    const syn_dataset *train, *test;
    syn_fit_config cfg;
    bool bn;
    uint64_t seed;
    syn_status status;
    syn_fit_result res;
    char err[512];
    float *values; /* the weights after the fit (numel) */
    bool same;     /* syn_params_compare after the fit */
    float bn_mean[16]; /* bn.running_mean after the fit, with bn */
} fit_io;

static void *fit_body(void *arg) {
    member *m = arg;
    fit_io *io = m->arg;
    net n;
    int64_t members = syn_comm_size(m->c);
    syn_status s = net_make(&n, (io->cfg.batch_size + members - 1) / members, io->bn, io->seed);
    io->cfg.comm = m->c;
    if (s == SYN_OK) s = syn_fit(&n.m, n.o, io->train, io->test, &io->cfg, &io->res);
    io->status = s;
    snprintf(io->err, sizeof io->err, "%s", s == SYN_OK ? "" : syn_last_error());
    if (s == SYN_OK) {
        io->values = malloc((size_t)syn_params_numel(n.p) * sizeof(float));
        net_values(&n, io->values);
        if (syn_params_compare(n.p, m->c, &io->same) != SYN_OK) member_fail(m, "compare");
        syn_tensor *mean;
        if (io->bn && (syn_params_find(n.p, "bn.running_mean", &mean, NULL) != SYN_OK ||
                       syn_tensor_read(mean, io->bn_mean, sizeof io->bn_mean) != SYN_OK))
            member_fail(m, "running mean");
    }
    net_free(&n);
    return NULL;
}

/* Runs the fit on `size` members in threads; io[i] is member i's. */
static void fit_members(fit_io *io, int size) { run_on_members(size, fit_body, io, sizeof *io); }

static syn_fit_config fit_config(int epochs, int64_t batch) {
    syn_fit_config cfg = {0};
    cfg.epochs = epochs;
    cfg.batch_size = batch;
    cfg.seed = 11;
    cfg.progress = SYN_PROGRESS_OFF;
    return cfg;
}

/* 250 rows in batches of 32: the last of 26 rows, split 13/13 or 8/9/9. The
 * members start from different weights (seeds) and must end where one process
 * does from member 0's. */
START_TEST(test_fit_matches_one_process) {
    const int size = 2 + _i;
    syn_dataset *train = tu_dataset_3class(250, 21), *test = tu_dataset_3class(97, 22);
    fit_io one = {train, test, fit_config(10, 32), false, 100, SYN_OK, {0}, "", NULL, false, {0}};
    net n;
    ck_assert_int_eq(net_make(&n, 32, false, one.seed), SYN_OK);
    ck_assert_int_eq(syn_fit(&n.m, n.o, train, test, &one.cfg, &one.res), SYN_OK);
    int64_t numel = syn_params_numel(n.p);
    one.values = malloc((size_t)numel * sizeof(float));
    net_values(&n, one.values);
    net_free(&n);

    fit_io io[MAX_MEMBERS];
    for (int i = 0; i < size; i++) io[i] = (fit_io){train, test, fit_config(10, 32), false, 100 + (uint64_t)i, SYN_OK,
                                                    {0}, "", NULL, false, {0}};
    fit_members(io, size);
    for (int i = 0; i < size; i++) {
        ck_assert_msg(io[i].status == SYN_OK, "member %d: %s", i, io[i].err);
        ck_assert(io[i].same);
        ck_assert_int_eq(memcmp(io[i].values, io[0].values, (size_t)numel * sizeof(float)), 0);
        /* the whole run's figures, the same on every member */
        ck_assert(io[i].res.train_loss == io[0].res.train_loss && io[i].res.test_loss == io[0].res.test_loss);
        ck_assert(io[i].res.test_accuracy == io[0].res.test_accuracy);
        ck_assert_int_eq(io[i].res.epochs_run, 10);
    }
    /* one process's weights, up to the order of the gradient sums */
    double e = tu_max_rel_err(io[0].values, one.values, numel);
    ck_assert_msg(e < 1e-4, "%d members vs one process: weights differ by %g", size, e);
    ck_assert_float_eq_tol(io[0].res.train_loss, one.res.train_loss, 1e-5f);
    ck_assert_float_eq_tol(io[0].res.test_loss, one.res.test_loss, 1e-5f);
    ck_assert_float_eq_tol(io[0].res.test_accuracy, one.res.test_accuracy, 1e-6f);
    ck_assert_float_eq_tol(io[0].res.train_accuracy, one.res.train_accuracy, 1e-6f);
    ck_assert_msg(one.res.test_accuracy > 0.85f, "the net did not learn: %g", (double)one.res.test_accuracy);
    for (int i = 0; i < size; i++) free(io[i].values);
    free(one.values);
    syn_dataset_free(train);
    syn_dataset_free(test);
}
END_TEST

/* Batch norm: statistics from each member's rows (20 of 40), running
 * statistics member 0's at each epoch's end, so all members end with the same
 * parameters, and test accuracy (in eval mode, on the running statistics)
 * near one process's with batches of 40 (over 15 runs: within 0.06). */
START_TEST(test_fit_batch_norm) {
    syn_dataset *train = tu_dataset_3class(300, 31), *test = tu_dataset_3class(100, 32);
    fit_io io[2];
    for (int i = 0; i < 2; i++) io[i] = (fit_io){train, test, fit_config(10, 40), true, 5, SYN_OK, {0}, "", NULL, false, {0}};
    fit_members(io, 2);
    net n;
    syn_fit_config one = fit_config(10, 40);
    syn_fit_result r;
    ck_assert_int_eq(net_make(&n, 40, true, 5), SYN_OK);
    ck_assert_int_eq(syn_fit(&n.m, n.o, train, test, &one, &r), SYN_OK);
    syn_tensor *mean;
    float mv[16];
    ck_assert_int_eq(syn_params_find(n.p, "bn.running_mean", &mean, NULL), SYN_OK);
    ck_assert_int_eq(syn_tensor_read(mean, mv, sizeof mv), SYN_OK);
    net_free(&n);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(io[i].status == SYN_OK, "member %d: %s", i, io[i].err);
        ck_assert(io[i].same);
        float acc = io[i].res.test_accuracy;
        ck_assert_msg(acc > 0.75f && fabsf(acc - r.test_accuracy) <= 0.1f, "test accuracy %g, one process %g",
                      (double)acc, (double)r.test_accuracy);
        /* the running means moved off their start (0) alike */
        int moved = 0;
        for (int k = 0; k < 16; k++) moved += io[i].bn_mean[k] != 0.0f && mv[k] != 0.0f;
        ck_assert_int_gt(moved, 8);
        free(io[i].values);
    }
    syn_dataset_free(train);
    syn_dataset_free(test);
}
END_TEST

/* A member with another config: every member fails, none waits forever. */
START_TEST(test_fit_members_disagree) {
    syn_dataset *train = tu_dataset_3class(120, 41);
    fit_io io[2];
    for (int i = 0; i < 2; i++) io[i] = (fit_io){train, NULL, fit_config(2 + i, 20), false, 5, SYN_OK, {0}, "", NULL, false, {0}};
    fit_members(io, 2);
    ck_assert_int_eq(io[0].status, SYN_ERR_ARG);
    ck_assert_int_eq(io[1].status, SYN_ERR_ARG);
    ck_assert_msg(strstr(io[1].err, "member 1 of 2 has epochs 3 where member 0 has 2"), "%s", io[1].err);
    ck_assert_msg(strstr(io[0].err, "1 of the 2 members failed to start (another model, data or config, or an "
                             "error) (see their messages); member 0 stops with them"), "%s", io[0].err);

    /* what decides when a run stops must be the same too: else one member
     * would stop while the others went on */
    for (int i = 0; i < 2; i++) {
        io[i] = (fit_io){train, NULL, fit_config(2, 20), false, 5, SYN_OK, {0}, "", NULL, false, {0}};
        io[i].cfg.patience = 1 + i;
    }
    fit_members(io, 2);
    ck_assert_int_eq(io[1].status, SYN_ERR_ARG);
    ck_assert_msg(strstr(io[1].err, "has patience 2 where member 0 has 1"), "%s", io[1].err);

    /* a batch smaller than the members */
    for (int i = 0; i < 2; i++) io[i] = (fit_io){train, NULL, fit_config(1, 1), false, 5, SYN_OK, {0}, "", NULL, false, {0}};
    fit_members(io, 2);
    ck_assert_int_eq(io[0].status, SYN_ERR_ARG);
    ck_assert_msg(strstr(io[0].err, "a batch of 1 rows cannot be split between 2 members"), "%s", io[0].err);
    syn_dataset_free(train);
}
END_TEST

/* A member whose on_epoch fails (a checkpoint that cannot be written, say)
 * after epoch 2: all stop there, with its status. */
static syn_status fail_second(void *user, const syn_fit_state *st) {
    (void)user;
    if (st->epoch != 2) return SYN_OK;
    /* a real failure of the library's, with its message: a file that is not there */
    syn_dataset *ds = NULL;
    syn_status s = syn_dataset_load_csv("/nonexistent/no room for the checkpoint.csv", NULL, &ds);
    syn_dataset_free(ds);
    return s == SYN_OK ? SYN_ERR_IO : s;
}

START_TEST(test_fit_member_fails_later) {
    syn_dataset *train = tu_dataset_3class(120, 51);
    fit_io io[3];
    for (int i = 0; i < 3; i++) {
        io[i] = (fit_io){train, NULL, fit_config(5, 30), false, 5, SYN_OK, {0}, "", NULL, false, {0}};
        if (i == 1) io[i].cfg.on_epoch = fail_second;
    }
    fit_members(io, 3);
    ck_assert_int_eq(io[1].status, SYN_ERR_IO);
    ck_assert_msg(strstr(io[1].err, "no room for the checkpoint"), "%s", io[1].err);
    for (int i = 0; i < 3; i += 2) {
        ck_assert_int_eq(io[i].status, SYN_ERR_IO);
        ck_assert_msg(strstr(io[i].err, "1 of the 3 members failed after an epoch (on_epoch)"), "%s", io[i].err);
    }
    for (int i = 0; i < 3; i++) ck_assert_int_eq(io[i].res.epochs_run, 2);
    syn_dataset_free(train);
}
END_TEST

/* ---- the character model ---------------------------------------------------------- */

typedef struct {
    const uint8_t *text;
    size_t n;
    int64_t batch;
    syn_status status;
    char err[512];
    syn_charlm_result res;
    float *values;
    int64_t numel;
    bool same;
} lm_io;

/* A 1-layer GRU on the first 90% of the text, validated on the rest. */
static syn_status lm_run(lm_io *io, syn_comm *comm, uint64_t seed) {
    syn_charlm_config mc = {SYN_RNN_GRU, 8, 16, 1, 0.0f};
    syn_charlm *m = NULL;
    syn_status s = syn_charlm_create(&mc, syn_cpu(), seed, &m);
    syn_charlm_train_config tc = {io->batch, 12, 24, 1e-2f, 5.0f, 8, 0, 3, NULL, false, comm};
    size_t cut = io->n * 9 / 10;
    /* called after a failed create too: the other members learn it (m NULL) */
    syn_status t = syn_charlm_train(m, io->text, cut, io->text + cut, io->n - cut, &tc, &io->res);
    if (s == SYN_OK) s = t;
    if (s == SYN_OK && comm) s = syn_params_compare(syn_charlm_params(m), comm, &io->same);
    io->status = s;
    snprintf(io->err, sizeof io->err, "%s", s == SYN_OK ? "" : syn_last_error());
    if (s == SYN_OK) {
        syn_params *p = syn_charlm_params(m);
        io->numel = syn_params_numel(p);
        io->values = malloc((size_t)io->numel * sizeof(float));
        for (int i = 0, off = 0; i < syn_params_count(p); i++) {
            syn_tensor *v;
            syn_params_get(p, i, NULL, &v, NULL);
            syn_tensor_read(v, io->values + off, syn_tensor_bytes(v));
            off += (int)syn_tensor_numel(v);
        }
    }
    syn_charlm_free(m);
    return s;
}

static void *lm_body(void *arg) {
    member *mb = arg;
    lm_run(mb->arg, mb->c, 20 + (uint64_t)syn_comm_rank(mb->c));
    return NULL;
}

/* 4 streams on 2 members (2 + 2) and 5 on 3 (1 + 2 + 2): one process's
 * weights and bits per byte. */
START_TEST(test_charlm_matches_one_process) {
    const int size = 2 + _i;
    const int64_t batch = 4 + _i;
    enum { N = 3000 };
    uint8_t *text = malloc(N);
    tu_rng r = tu_rng_make(9);
    static const char *const words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "dog "};
    for (size_t i = 0; i < N;) {
        const char *w = words[tu_next(&r) % 8];
        for (size_t k = 0; w[k] && i < N; k++) text[i++] = (uint8_t)w[k];
    }
    lm_io one = {text, N, batch, SYN_OK, "", {0}, NULL, 0, false};
    TU_OK(lm_run(&one, NULL, 20));
    lm_io io[MAX_MEMBERS];
    for (int i = 0; i < size; i++) io[i] = (lm_io){text, N, batch, SYN_OK, "", {0}, NULL, 0, false};
    run_on_members(size, lm_body, io, sizeof *io);
    for (int i = 0; i < size; i++) {
        ck_assert_msg(io[i].status == SYN_OK, "member %d: %s", i, io[i].err);
        ck_assert(io[i].same);
        ck_assert_int_eq(memcmp(io[i].values, io[0].values, (size_t)one.numel * sizeof(float)), 0);
        ck_assert(io[i].res.val_bpb == io[0].res.val_bpb && io[i].res.train_bpb == io[0].res.train_bpb);
        ck_assert_int_eq(io[i].res.steps, 24);
    }
    double e = tu_max_rel_err(io[0].values, one.values, one.numel);
    ck_assert_msg(e < 1e-3, "%d members vs one process: weights differ by %g", size, e);
    ck_assert_float_eq_tol(io[0].res.val_bpb, one.res.val_bpb, 1e-4f);
    ck_assert_float_eq_tol(io[0].res.train_bpb, one.res.train_bpb, 1e-4f);
    ck_assert_msg(one.res.val_bpb < 3.5f, "the model did not learn: %g bits/byte", (double)one.res.val_bpb);
    for (int i = 0; i < size; i++) free(io[i].values);
    free(one.values);
    free(text);
}
END_TEST

/* More members than streams: every member fails, with the reason. */
START_TEST(test_charlm_too_few_streams) {
    uint8_t text[600];
    memset(text, 'a', sizeof text);
    lm_io io[3];
    for (int i = 0; i < 3; i++) io[i] = (lm_io){text, sizeof text, 2, SYN_OK, "", {0}, NULL, 0, false};
    run_on_members(3, lm_body, io, sizeof *io);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(io[i].status, SYN_ERR_ARG);
        ck_assert_msg(strstr(io[i].err, "2 streams cannot be split between 3 members"), "%s", io[i].err);
    }
}
END_TEST

/* ---- the GAN trainer ---------------------------------------------------------------- */

typedef struct {
    const syn_dataset *real; /* 2-D points */
    syn_status status;
    char err[512];
    float *values; /* G's then D's weights */
    int64_t numel;
    syn_gan_stats last;
    bool same;
} gan_io;

/* The MLP GAN, batch 12, for 3 epochs of the points (the last batch of each
 * epoch partial: 100 = 8 x 12 + 4), a D and a G step per batch; then a lone
 * G step (fresh noise, shared by rows). */
static syn_status gan_run(gan_io *io, syn_comm *comm, uint64_t seed) {
    syn_gan_config c = syn_gan_config_defaults(SYN_GAN_MLP);
    c.batch = 12;
    c.seed = seed;
    c.g_optim.lr = c.d_optim.lr = 1e-3f;
    syn_gan *gan = NULL;
    syn_loader *ld = NULL;
    syn_status s = syn_gan_create(&c, syn_cpu(), &gan);
    if (s == SYN_OK) s = syn_loader_create(io->real, 12, true, 5, false, &ld);
    if (s == SYN_OK && comm) s = syn_loader_set_shard(ld, syn_comm_rank(comm), syn_comm_size(comm));
    if (s == SYN_OK && comm) s = syn_gan_set_comm(gan, comm);
    for (int e = 0; e < 3 && s == SYN_OK; e++)
        for (;;) {
            syn_batch b;
            if ((s = syn_loader_next(ld, &b)) != SYN_OK || b.n == 0) break;
            if ((s = syn_gan_step(gan, b.x, b.n, &io->last)) != SYN_OK) break;
        }
    if (s == SYN_OK) s = syn_gan_g_step(gan, NULL);
    if (s == SYN_OK) s = syn_gan_sync_stats(gan);
    syn_params *sets[2] = {syn_gan_generator_params(gan), syn_gan_discriminator_params(gan)};
    if (s == SYN_OK) {
        io->numel = syn_params_numel(sets[0]) + syn_params_numel(sets[1]);
        io->values = malloc((size_t)io->numel * sizeof(float));
        int64_t off = 0;
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < syn_params_count(sets[k]); i++) {
                syn_tensor *v;
                syn_params_get(sets[k], i, NULL, &v, NULL);
                syn_tensor_read(v, io->values + off, syn_tensor_bytes(v));
                off += syn_tensor_numel(v);
            }
    }
    bool same_d = true;
    if (s == SYN_OK && comm) s = syn_params_compare(sets[0], comm, &io->same);
    if (s == SYN_OK && comm) s = syn_params_compare(sets[1], comm, &same_d);
    io->same = io->same && same_d;
    io->status = s;
    snprintf(io->err, sizeof io->err, "%s", s == SYN_OK ? "" : syn_last_error());
    syn_loader_free(ld);
    syn_gan_free(gan);
    return s;
}

static void *gan_body(void *arg) {
    member *mb = arg;
    gan_run(mb->arg, mb->c, 7); /* the seed is the noise's too: the members must share it */
    return NULL;
}

/* 2 and 3 members: one process's G and D. The real rows and the noise rows
 * are split alike (the last batch's 4 as 2 + 2 and 1 + 1 + 2). */
START_TEST(test_gan_matches_one_process) {
    const int size = 2 + _i;
    enum { N = 100 };
    syn_dataset *real = tu_dataset_3class(N, 71); /* 5 features: keep 2, as points */
    for (int64_t i = 0; i < N; i++) {
        real->x[2 * i] = real->x[5 * i];
        real->x[2 * i + 1] = real->x[5 * i + 1] * 0.5f + 1.0f;
    }
    real->dim = 2;
    real->sample_shape = syn_shape1(2);
    gan_io one = {real, SYN_OK, "", NULL, 0, {0, 0, 0, 0, 0}, false};
    TU_OK(gan_run(&one, NULL, 7));
    gan_io io[MAX_MEMBERS];
    for (int i = 0; i < size; i++) io[i] = (gan_io){real, SYN_OK, "", NULL, 0, {0, 0, 0, 0, 0}, false};
    run_on_members(size, gan_body, io, sizeof *io);
    for (int i = 0; i < size; i++) {
        ck_assert_msg(io[i].status == SYN_OK, "member %d: %s", i, io[i].err);
        ck_assert(io[i].same);
        ck_assert_int_eq(memcmp(io[i].values, io[0].values, (size_t)one.numel * sizeof(float)), 0);
    }
    double e = tu_max_rel_err(io[0].values, one.values, one.numel);
    ck_assert_msg(e < 1e-4, "%d members vs one process: G and D differ by %g", size, e);
    for (int i = 0; i < size; i++) free(io[i].values);
    free(one.values);
    syn_dataset_free(real);
}
END_TEST

static Suite *dist_suite(void) {
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("comm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_comm_lone_and_bad_args);
    tcase_add_test(tc, test_comm_threads_collectives);
    tcase_add_test(tc, test_comm_own_transport);
    tcase_add_test(tc, test_comm_mpi_without_plugin);
    tcase_add_test(tc, test_loader_shards);
    tcase_add_test(tc, test_loader_shard_errors);
    tcase_add_test(tc, test_loader_shard_prefetch_off);
    tcase_add_test(tc, test_params_collectives);
    suite_add_tcase(s, tc);
    tc = tcase_create("fit");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_fit_matches_one_process, 0, 2);
    tcase_add_test(tc, test_fit_batch_norm);
    tcase_add_test(tc, test_fit_members_disagree);
    tcase_add_test(tc, test_fit_member_fails_later);
    tcase_add_loop_test(tc, test_charlm_matches_one_process, 0, 2);
    tcase_add_test(tc, test_charlm_too_few_streams);
    tcase_add_loop_test(tc, test_gan_matches_one_process, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(dist_suite()); }
