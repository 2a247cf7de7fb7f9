/* Host out-of-memory everywhere: each scenario below is a whole piece of work
 * through the public API, from creating to freeing (a model file's CNN
 * trained and evaluated, an MLP fitted and checkpointed, an op zoo with
 * profiling and LeNet-5 inference, a char-LSTM trained, sampled, saved and
 * loaded, a DCGAN-64 and an MLP GAN stepped, a forecaster, the data loaders,
 * safetensors, PNG and checkpoint files, two data-parallel members in threads
 * (syn_fit and the char-LSTM: both members must fail, neither may wait for
 * the other forever); the model scenarios also on the
 * CUDA emulator, see main). A scenario runs once to
 * count the allocations the library makes in it, then once for each of them
 * with that one allocation failing, then for every fourth with it and all
 * later ones failing. Every such run must end with
 * SYN_ERR_OOM and a message, or -- where the library can do without the
 * block -- with the clean run's exact result; it must not crash, and it must
 * leave none of the blocks allocated during it behind.
 *
 * The allocation functions are wrapped at link time (CMakeLists.txt gives
 * this test -Wl,--wrap=malloc,...): that reaches the library's objects, which
 * are linked in statically, and libinih's. OpenBLAS, libgomp, libpng, libc
 * and Jansson allocate on their own, untouched. Jansson is left out on
 * purpose: its parser does not check every allocation of its own (a lexer
 * buffer that cannot grow drops the character, load.c; a string token's
 * copy fails as a syntax error), so a failure there can give a header that
 * parses with one character fewer, or an assertion in its lexer. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "cudautil.h"

/* ---- the wrapped allocator ------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

/* The blocks allocated while armed and not yet freed: an open-addressed set
 * (NULL empty, TOMB freed), with each block's size and call site. */
#define LIVE_CAP (1u << 20)
#define TOMB ((void *)1)
typedef struct {
    void *p;
    size_t size;
    void *site;
} block;

static struct {
    pthread_mutex_t mu;
    bool armed;
    long calls;     /* allocations while armed */
    long fail_at;   /* the call that fails (1-based; 0: none) */
    bool rest;      /* and every later one */
    bool trace;     /* keep the failed call's stack (SYN_OOM_VERBOSE) */
    void *fail_bt[8];
    int fail_depth;
    void *fail_site;
    long live;      /* blocks in the set */
    block *set;     /* LIVE_CAP entries */
} A = {.mu = PTHREAD_MUTEX_INITIALIZER};

static size_t slot_of(const void *p) {
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 44) & (LIVE_CAP - 1);
}

/* with A.mu held */
static void set_add(void *p, size_t size, void *site) {
    if (!p || !A.set) return;
    for (size_t i = slot_of(p);; i = (i + 1) & (LIVE_CAP - 1))
        if (A.set[i].p == NULL || A.set[i].p == TOMB) {
            A.set[i] = (block){p, size, site};
            A.live++;
            return;
        }
}

static void set_remove(void *p) {
    if (!p || !A.set || A.live == 0) return;
    for (size_t i = slot_of(p); A.set[i].p != NULL; i = (i + 1) & (LIVE_CAP - 1))
        if (A.set[i].p == p) {
            A.set[i].p = TOMB;
            A.live--;
            return;
        }
}

/* Counts an allocation while armed; true: make it fail. */
static bool gate(void *site) {
    if (!__atomic_load_n(&A.armed, __ATOMIC_ACQUIRE)) return false;
    pthread_mutex_lock(&A.mu);
    const long k = A.armed ? ++A.calls : 0;
    const bool fail = k && A.fail_at && (A.rest ? k >= A.fail_at : k == A.fail_at);
    if (fail && !A.fail_site) {
        A.fail_site = site;
        A.fail_depth = A.trace ? backtrace(A.fail_bt, 8) : 0;
    }
    pthread_mutex_unlock(&A.mu);
    return fail;
}

static void track(void *p, size_t size, void *site) {
    if (!p || !__atomic_load_n(&A.armed, __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&A.mu);
    if (A.armed) set_add(p, size, site);
    pthread_mutex_unlock(&A.mu);
}

static void untrack(void *p) {
    if (!p || __atomic_load_n(&A.live, __ATOMIC_ACQUIRE) == 0) return;
    pthread_mutex_lock(&A.mu);
    set_remove(p);
    pthread_mutex_unlock(&A.mu);
}

#define SITE __builtin_return_address(0)

void *__wrap_malloc(size_t n) {
    void *site = SITE;
    if (gate(site)) return NULL;
    void *p = __real_malloc(n);
    track(p, n, site);
    return p;
}

void *__wrap_calloc(size_t n, size_t size) {
    void *site = SITE;
    if (gate(site)) return NULL;
    void *p = __real_calloc(n, size);
    track(p, n * size, site);
    return p;
}

void *__wrap_realloc(void *p, size_t n) {
    void *site = SITE;
    if (gate(site)) return NULL; /* p stays as it was */
    void *q = __real_realloc(p, n);
    if (q || n == 0) untrack(p);
    track(q, n, site);
    return q;
}

void __wrap_free(void *p) {
    untrack(p);
    __real_free(p);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    void *site = SITE;
    if (gate(site)) return ENOMEM;
    int rc = __real_posix_memalign(p, align, n);
    if (rc == 0) track(*p, n, site);
    return rc;
}

char *__wrap_strdup(const char *s) {
    void *site = SITE;
    if (gate(site)) return NULL;
    char *p = __real_strdup(s);
    track(p, strlen(s) + 1, site);
    return p;
}

char *__wrap_strndup(const char *s, size_t n) {
    void *site = SITE;
    if (gate(site)) return NULL;
    char *p = __real_strndup(s, n);
    track(p, p ? strlen(p) + 1 : 0, site);
    return p;
}

/* (No Check call with A.mu held: its assertions allocate and free.) */
static void arm(long fail_at, bool rest) {
    if (!A.set) A.set = __real_calloc(LIVE_CAP, sizeof *A.set);
    ck_assert_ptr_nonnull(A.set);
    pthread_mutex_lock(&A.mu);
    memset(A.set, 0, LIVE_CAP * sizeof *A.set);
    A.live = 0;
    A.calls = 0;
    A.fail_at = fail_at;
    A.rest = rest;
    A.fail_site = NULL;
    __atomic_store_n(&A.armed, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&A.mu);
}

static void disarm(void) {
    pthread_mutex_lock(&A.mu);
    __atomic_store_n(&A.armed, false, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&A.mu);
}

/* "test_oom+0x1234" for a code address: where to look with addr2line. */
static const char *site_name(void *site, char *buf, size_t size) {
    Dl_info info;
    if (site && dladdr(site, &info) && info.dli_fname) {
        const char *base = strrchr(info.dli_fname, '/');
        snprintf(buf, size, "%s+%#lx", base ? base + 1 : info.dli_fname,
                 (unsigned long)((uintptr_t)site - (uintptr_t)info.dli_fbase));
    } else {
        snprintf(buf, size, "%p", site);
    }
    return buf;
}

/* The first few blocks still in the set, for a message. */
static void leaks_text(char *buf, size_t size) {
    size_t at = 0;
    int shown = 0;
    buf[0] = 0;
    for (size_t i = 0; i < LIVE_CAP && shown < 4; i++) {
        if (A.set[i].p == NULL || A.set[i].p == TOMB) continue;
        char s[96];
        at += (size_t)snprintf(buf + at, size - at, "%s%zu bytes from %s", shown ? ", " : "", A.set[i].size,
                               site_name(A.set[i].site, s, sizeof s));
        if (at >= size) break;
        shown++;
    }
}

/* ---- the sweep ------------------------------------------------------------------- */

/* What the scenarios read, made before the counted runs (files in the
 * test's folder, data in memory). */
typedef struct {
    syn_dataset *train, *test; /* 5 features, 3 classes */
    char ckpt[256], st[256], png[256], csv[256], idx_x[256], idx_y[256], lm[256], cifar[256], cfg[256],
        fortunes[256], params[256], folder[256];
    uint8_t text[1024];
    float series[240];
    float real[16 * 2];
    float images[4 * 3 * 6 * 6];
    FILE *devnull;
    syn_device dev; /* where the models run */
} ctx;

typedef syn_status (*scenario_fn)(ctx *c, double *result);

/* Runs fn clean (twice: the first makes the library's lasting caches, e.g.
 * OpenBLAS's buffers and the CPU backend's workspace, outside the counted
 * runs), then once per allocation k of the clean run with the k-th failing,
 * then once per fourth k with the k-th and every later one failing (the
 * error paths must not need memory either). With max_runs, at most about
 * that many runs per pass: every n-th k from an offset the test seed picks,
 * so that runs with other seeds try other allocations. */
static void sweep(const char *name, scenario_fn fn, ctx *c, long max_runs) {
    double ref, r;
    TU_OK(fn(c, &ref));
    if (c->dev.type == SYN_DEVICE_CUDA) {
        /* The CUDA backend's 4 pinned staging buffers for host-to-device
         * copies are used in turn, each grown to the largest copy it has
         * seen, and kept: a run that starts at another buffer than the clean
         * runs did would grow one. So each is grown first, to 4 MB, beyond
         * any copy of these scenarios (the clean run's leak check below
         * says so if one outgrows it). */
        enum { STAGES = 4, BIG = 1 << 20 };
        syn_tensor *t;
        float *big = calloc(BIG, sizeof *big);
        ck_assert_ptr_nonnull(big);
        TU_OK(syn_tensor_create(c->dev, SYN_F32, syn_shape1(BIG), &t));
        for (int i = 0; i < STAGES; i++) TU_OK(syn_tensor_write(t, big, BIG * sizeof *big));
        syn_tensor_free(t);
        free(big);
    }
    arm(0, false);
    syn_status s = fn(c, &r);
    disarm();
    long total = A.calls, live = A.live;
    char why[512];
    leaks_text(why, sizeof why);
    ck_assert_msg(s == SYN_OK, "%s: the clean run failed: %s", name, syn_last_error());
    ck_assert_msg(live == 0, "%s: the clean run leaves %ld blocks: %s", name, live, why);
    ck_assert_msg(r == ref || (isnan(r) && isnan(ref)), "%s: runs differ (%.9g, then %.9g)", name, ref, r);
    ck_assert_msg(total > 0, "%s: no allocation was seen: is the wrapping linked in?", name);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long runs = 0, oom = 0, absorbed = 0, unreached = 0;
    const char *v = getenv("SYN_OOM_VERBOSE");
    const int verbose = v ? atoi(v) : 0; /* 1: the allocations done without; 2: every run */
    A.trace = verbose > 0;
    const long every = max_runs && total > max_runs ? (total + max_runs - 1) / max_runs : 1;
    for (int rest = 0; rest < 2; rest++)
        for (long k = 1 + (long)(tu_seed() % (uint64_t)every); k <= total; k += rest ? 4 * every : every) {
            const char *how = rest ? "and every later one " : "";
            if (verbose > 1) printf("%s: allocation %ld %sfails\n", name, k, how), fflush(stdout);
            runs++;
            syn_clear_error();
            arm(k, rest);
            s = fn(c, &r);
            disarm();
            char site[96];
            site_name(A.fail_site, site, sizeof site);
            if (A.fail_site == NULL) {
                unreached++; /* another thread order or a shorter path: fewer calls */
            } else if (s == SYN_OK) {
                if (verbose) {
                    printf("%s: allocation %ld (%s) %sdone without; its stack:", name, k, site, how);
                    for (int i = 1; i < A.fail_depth; i++) printf(" %s", site_name(A.fail_bt[i], site, sizeof site));
                    printf("\n");
                }
                absorbed++;
                ck_assert_msg(r == ref || (isnan(r) && isnan(ref)),
                              "%s: allocation %ld of %ld (%s) %sfailed, the run said OK, and its result differs "
                              "(%.9g, clean %.9g)", name, k, total, site, how, r, ref);
            } else {
                oom++;
                const char *msg = syn_last_error();
                ck_assert_msg(s == SYN_ERR_OOM,
                              "%s: allocation %ld of %ld (%s) %sfailed: status %d, not SYN_ERR_OOM: %s", name, k,
                              total, site, how, (int)s, msg);
                ck_assert_msg(msg && *msg, "%s: allocation %ld of %ld (%s) %sfailed without a message", name, k, total,
                              site, how);
            }
            if (A.live) {
                leaks_text(why, sizeof why);
                ck_abort_msg("%s: allocation %ld of %ld (%s) %sfailed (status %d: %s), and %ld blocks stay "
                             "allocated: %s", name, k, total, site, how, (int)s, syn_last_error(), A.live, why);
            }
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %ld allocations, %ld runs: %ld SYN_ERR_OOM, %ld done without the block, %ld not reached (%.1f s)\n",
           name, total, runs, oom, absorbed, unreached,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    fflush(stdout);
    ck_assert_int_gt(oom, 0);
}

/* ---- the scenarios ---------------------------------------------------------------- */

/* A model file's CNN (convolutions on Winograd, batch norm, pooling, a
 * residual block, dropout): its summary, two Adam steps and an eval pass. */
static const char cnn_cfg[] = "[net]\ninput = 1,8,8\nclasses = 4\n\n"
                              "[conv]\nfilters = 16\nsize = 3\npad = same\n\n[batchnorm]\n\n"
                              "[activation]\ntype = relu\n\n[basicblock]\nfilters = 16\n\n"
                              "[basicblock]\nfilters = 24\nstride = 2\n\n[maxpool]\nsize = 2\n\n"
                              "[flatten]\n\n[dropout]\np = 0.1\n\n[dense]\nunits = 4\n";


#define TRY(expr)                     \
    do {                              \
        if ((s = (expr)) != SYN_OK) goto out; \
    } while (0)

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void ctx_setup(ctx *c) {
    memset(c, 0, sizeof *c);
    c->train = tu_dataset_3class(64, 1);
    c->test = tu_dataset_3class(24, 2);
    snprintf(c->ckpt, sizeof c->ckpt, "%s", tu_path("run.ckpt"));
    snprintf(c->st, sizeof c->st, "%s", tu_path("t.safetensors"));
    snprintf(c->png, sizeof c->png, "%s", tu_path("grid.png"));
    snprintf(c->csv, sizeof c->csv, "%s", tu_path("d.csv"));
    snprintf(c->idx_x, sizeof c->idx_x, "%s", tu_path("x.idx"));
    snprintf(c->idx_y, sizeof c->idx_y, "%s", tu_path("y.idx"));
    snprintf(c->lm, sizeof c->lm, "%s", tu_path("lm.safetensors"));
    tu_rng r = tu_rng_make(3);
    const char *words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "dog "};
    size_t at = 0;
    while (at + 8 < sizeof c->text) {
        const char *w = words[tu_next(&r) % 8];
        memcpy(c->text + at, w, strlen(w));
        at += strlen(w);
    }
    memset(c->text + at, ' ', sizeof c->text - at);
    for (int i = 0; i < 240; i++) c->series[i] = sinf((float)i * 0.5f) + 0.1f * tu_uniform(&r, -1, 1);
    tu_fill(&r, c->real, 32, -1, 1);
    tu_fill(&r, c->images, 4 * 3 * 6 * 6, -1, 1);

    /* CSV: a header, 40 rows of 3 features, a label, and a value column */
    FILE *f = fopen(c->csv, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "a,b,c,label,v\n");
    for (int i = 0; i < 40; i++)
        fprintf(f, "%g,%g,%g,%d,%g\n", tu_uniform(&r, 0, 1), tu_uniform(&r, 0, 1), tu_uniform(&r, 0, 1), i % 2,
                c->series[i]);
    ck_assert_int_eq(fclose(f), 0);
    /* IDX: 12 images of 1x4x4 bytes and 12 labels */
    uint8_t ix[16 + 12 * 16], iy[8 + 12];
    const uint8_t hx[16] = {0, 0, 8, 3, 0, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 4}, hy[8] = {0, 0, 8, 1, 0, 0, 0, 12};
    memcpy(ix, hx, 16);
    memcpy(iy, hy, 8);
    for (int i = 0; i < 12 * 16; i++) ix[16 + i] = (uint8_t)(tu_next(&r) & 0xff);
    for (int i = 0; i < 12; i++) iy[8 + i] = (uint8_t)(i % 10);
    write_file(c->idx_x, ix, sizeof ix);
    write_file(c->idx_y, iy, sizeof iy);
    /* CIFAR-10: 3 records of a label byte and 3072 pixel bytes */
    static uint8_t rec[3 * 3073];
    for (int i = 0; i < 3 * 3073; i++) rec[i] = (uint8_t)(i % 3073 == 0 ? (uint64_t)(i / 3073) : tu_next(&r) & 0xff);
    snprintf(c->cifar, sizeof c->cifar, "%s", tu_path("batch.bin"));
    write_file(c->cifar, rec, sizeof rec);
    /* the CNN's model file, and a fortunes folder of two files */
    snprintf(c->cfg, sizeof c->cfg, "%s", tu_path("oom.cfg"));
    write_file(c->cfg, cnn_cfg, strlen(cnn_cfg));
    snprintf(c->fortunes, sizeof c->fortunes, "%s", tu_path("fortunes"));
    ck_assert_int_eq(mkdir(c->fortunes, 0700), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/wisdom", c->fortunes);
    write_file(path, c->text, 300);
    snprintf(path, sizeof path, "%s/zippy", c->fortunes);
    write_file(path, c->text + 300, 200);
    /* an image folder: two classes of two 5x4 PNGs, grey and RGB */
    snprintf(c->folder, sizeof c->folder, "%s", tu_path("images"));
    ck_assert_int_eq(mkdir(c->folder, 0700), 0);
    for (int k = 0; k < 4; k++) {
        uint8_t pix[3 * 20];
        for (int i = 0; i < 60; i++) pix[i] = (uint8_t)(tu_next(&r) & 0xff);
        snprintf(path, sizeof path, "%s/%c", c->folder, k < 2 ? 'a' : 'b');
        if (k % 2 == 0) ck_assert_int_eq(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/%c/%d.png", c->folder, k < 2 ? 'a' : 'b', k);
        tu_write_png(path, pix, 5, 4, k == 1);
    }
    snprintf(c->params, sizeof c->params, "%s", tu_path("p.safetensors"));
    c->devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(c->devnull);
}

static void ctx_teardown(ctx *c) {
    syn_dataset_free(c->train);
    syn_dataset_free(c->test);
    fclose(c->devnull);
}

/* An MLP fitted for two epochs (Adam, cosine schedule, clipping, dropout,
 * evaluation each epoch), checkpointed, and loaded back. */
static syn_status sc_mlp(ctx *c, double *result) {
    syn_status s;
    syn_params *p = NULL;
    syn_graph *g = NULL;
    syn_optim *o = NULL;
    TRY(syn_params_create(c->dev, 7, &p));
    TRY(syn_graph_create(p, &g));
    syn_model m = {g, NULL, NULL, NULL, NULL};
    m.x = syn_input(g, "x", SYN_F32, syn_shape2(16, 5));
    m.y = syn_input(g, "y", SYN_I32, syn_shape1(16));
    const int64_t hidden[2] = {24, 12};
    m.logits = syn_mlp(g, m.x, hidden, 2, 3, SYN_ACT_RELU, 0.2f);
    m.loss = syn_cross_entropy(g, m.logits, m.y);
    TRY(syn_graph_status(g));
    TRY(syn_graph_keep(g, m.logits));
    TRY(syn_graph_compile(g, c->dev, NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    TRY(syn_optim_create(p, &oc, &o));
    syn_fit_config fc = {.epochs = 2, .batch_size = 16, .seed = 3, .clip_norm = 1.0f, .progress = SYN_PROGRESS_OFF,
                         .out = c->devnull};
    fc.schedule.kind = SYN_SCHED_COSINE;
    fc.schedule.total_steps = 8;
    syn_fit_result res;
    TRY(syn_fit(&m, o, c->train, c->test, &fc, &res));
    syn_checkpoint_info info = {.epoch = 2, .step = 8, .seed = 3};
    snprintf(info.model, sizeof info.model, "mlp 5-24-12-3");
    TRY(syn_checkpoint_save(c->ckpt, p, o, &info));
    syn_checkpoint_info back;
    TRY(syn_checkpoint_load(c->ckpt, p, o, &back));
    float loss, acc;
    TRY(syn_evaluate(&m, c->test, 8, &loss, &acc));
    *result = (double)res.train_loss + res.test_loss + loss + acc + (double)back.step;
out:
    syn_optim_free(o);
    syn_graph_free(g);
    syn_params_free(p);
    return s;
}

/* One optimizer step on the fed batch; the loss added to *sum. */
static syn_status train_step(syn_params *p, syn_graph *g, syn_optim *o, syn_node *loss, double *sum) {
    syn_status s;
    float l;
    TRY(syn_params_zero_grad(p));
    TRY(syn_graph_forward_backward(g, loss));
    TRY(syn_optim_step(o));
    TRY(syn_graph_read_scalar(g, loss, &l));
    *sum += l;
out:
    return s;
}

static syn_status sc_cnn(ctx *c, double *result) {
    syn_status s;
    syn_model_desc *d = NULL;
    syn_params *p = NULL;
    syn_graph *g = NULL;
    syn_optim *o = NULL;
    TRY(syn_model_desc_load(c->cfg, &d));
    TRY(syn_model_summary(d, 4, c->devnull));
    TRY(syn_params_create(c->dev, 11, &p));
    TRY(syn_graph_create(p, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape4(4, 1, 8, 8));
    syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(4));
    syn_node *logits = syn_model_build(g, d, x);
    syn_node *loss = syn_cross_entropy(g, logits, y);
    TRY(syn_graph_status(g));
    TRY(syn_graph_compile(g, c->dev, NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    TRY(syn_optim_create(p, &oc, &o));
    const int32_t labels[4] = {0, 1, 2, 3};
    double sum = 0;
    for (int step = 0; step < 2; step++) {
        TRY(syn_graph_feed(g, x, c->images + step * 8, syn_shape4(4, 1, 8, 8)));
        TRY(syn_graph_feed(g, y, labels, syn_shape1(4)));
        TRY(train_step(p, g, o, loss, &sum));
    }
    syn_graph_set_training(g, false);
    TRY(syn_graph_forward(g));
    float l;
    TRY(syn_graph_read_scalar(g, loss, &l));
    *result = sum + l;
out:
    syn_optim_free(o);
    syn_graph_free(g);
    syn_params_free(p);
    syn_model_desc_free(d);
    return s;
}

/* Ops the other scenarios leave out, in one graph with profiling on: an
 * embedding into a GRU with per-sample lengths, layer norm, grouped and
 * dilated convolutions, transposed convolution, average and adaptive
 * pooling, dropout2d, concatenation, slices, transposes and four losses;
 * two SGD-momentum steps, a profile report, then LeNet-5 built for
 * inference only and run once. */
static syn_status sc_ops(ctx *c, double *result) {
    syn_status s;
    syn_params *p = NULL;
    syn_graph *g = NULL, *h = NULL;
    syn_optim *o = NULL;
    TRY(syn_params_create(c->dev, 13, &p));
    TRY(syn_graph_create(p, &g));
    syn_node *tok = syn_input(g, "tok", SYN_I32, syn_shape2(2, 5));
    syn_node *len = syn_input(g, "len", SYN_I32, syn_shape1(2));
    syn_node *img = syn_input(g, "img", SYN_F32, syn_shape4(2, 3, 6, 6));
    syn_node *lab = syn_input(g, "lab", SYN_I32, syn_shape1(2));
    syn_node *e = syn_embedding(g, tok, 10, 6, "emb");
    const syn_rnn_config rc = {SYN_RNN_GRU, 7, 2, 0.1f, false};
    syn_node *st;
    syn_node *seq = syn_layer_norm(g, syn_rnn(g, e, &rc, NULL, len, "gru", &st), "ln");
    syn_node *last = syn_flatten(g, syn_slice(g, seq, 1, 4, 1));       /* (2, 7) */
    syn_conv_opts co = {.conv = {.pad_h = 2, .pad_w = 2, .dilation_h = 2, .dilation_w = 2, .groups = 3}};
    syn_node *a = syn_activate(g, syn_conv2d(g, img, 6, 3, 3, "gconv", &co), SYN_ACT_GELU);
    syn_conv_opts to = {.conv = {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .out_pad_h = 1, .out_pad_w = 1}};
    syn_node *up = syn_activate(g, syn_conv_transpose2d(g, a, 4, 3, 3, "up", &to), SYN_ACT_SIGMOID); /* 12x12 */
    syn_node *pooled = syn_avg_pool2d(g, syn_dropout2d(g, up, 0.2f), 2, 2, 2, 2, 0, 0, true);          /* 6x6 */
    syn_node *both = syn_concat(g, (syn_node *const[]){a, pooled}, 2, 1);                          /* 10 ch */
    const int perm[4] = {0, 1, 3, 2};
    syn_node *ad = syn_flatten(g, syn_adaptive_avg_pool2d(g, syn_transpose(g, both, perm), 2, 3));
    syn_node *gp = syn_flatten(g, syn_global_avg_pool(g, both));
    syn_node *feat = syn_concat(g, (syn_node *const[]){last, ad, gp}, 3, 1);
    syn_node *logits = syn_linear(g, feat, 3, "head", NULL);
    syn_node *mse = syn_mse_loss(g, syn_softmax(g, logits, 1), syn_detach(g, syn_sigmoid(g, logits)));
    syn_node *sse = syn_sse_loss(g, gp, syn_mul_scalar(g, gp, 0.5f));
    syn_node *bce = syn_bce_with_logits(g, logits, syn_sigmoid(g, logits));
    syn_node *loss = syn_add(g, syn_cross_entropy(g, logits, lab),
                             syn_add(g, mse, syn_mul_scalar(g, syn_add(g, sse, bce), 0.1f)));
    TRY(syn_graph_status(g));
    TRY(syn_graph_compile(g, c->dev, NULL));
    TRY(syn_graph_set_profiling(g, true));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_SGD);
    oc.momentum = 0.9f;
    TRY(syn_optim_create(p, &oc, &o));
    const int32_t toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0}, lens[2] = {5, 3}, labs[2] = {0, 2};
    double sum = 0;
    for (int step = 0; step < 2; step++) {
        TRY(syn_graph_feed(g, tok, toks, syn_shape2(2, 5)));
        TRY(syn_graph_feed(g, len, lens, syn_shape1(2)));
        TRY(syn_graph_feed(g, img, c->images + step, syn_shape4(2, 3, 6, 6)));
        TRY(syn_graph_feed(g, lab, labs, syn_shape1(2)));
        TRY(train_step(p, g, o, loss, &sum));
    }
    char report[2048];
    TRY(syn_graph_profile_report(g, report, sizeof report));
    TRY(syn_graph_create(p, &h));
    syn_node *x = syn_input(h, "x", SYN_F32, syn_shape4(1, 1, 28, 28));
    syn_node *y = syn_lenet5(h, x, 10);
    TRY(syn_graph_status(h));
    TRY(syn_graph_keep(h, y));
    const syn_compile_opts inf = {.inference = true};
    TRY(syn_graph_compile(h, c->dev, &inf));
    static float digit[28 * 28];
    for (int i = 0; i < 28 * 28; i++) digit[i] = c->images[i % (4 * 3 * 6 * 6)];
    TRY(syn_graph_feed(h, x, digit, syn_shape4(1, 1, 28, 28)));
    TRY(syn_graph_forward(h));
    float out[10];
    TRY(syn_graph_read(h, y, out, sizeof out));
    for (int i = 0; i < 10; i++) sum += out[i];
    *result = sum;
out:
    syn_optim_free(o);
    syn_graph_free(h);
    syn_graph_free(g);
    syn_params_free(p);
    return s;
}

/* A 2-layer char-LSTM with dropout: a few training steps with validation,
 * top-k sampling, saved and loaded back. */
static syn_status sc_charlm(ctx *c, double *result) {
    syn_status s;
    syn_charlm *m = NULL, *back = NULL;
    const syn_charlm_config mc = {SYN_RNN_LSTM, 8, 16, 2, 0.1f};
    TRY(syn_charlm_create(&mc, c->dev, 5, &m));
    const syn_charlm_train_config tc = {.batch = 2, .seq = 8, .steps = 3, .lr = 3e-3f, .clip = 1.0f,
                                        .eval_every = 2, .eval_bytes = 128, .seed = 1};
    syn_charlm_result res;
    TRY(syn_charlm_train(m, c->text, 896, c->text + 896, 128, &tc, &res));
    const syn_sampling sp = {.temperature = 0.8f, .top_k = 4, .seed = 2};
    uint8_t out[9];
    TRY(syn_charlm_generate(m, (const uint8_t *)"the ", 4, 8, &sp, out));
    TRY(syn_charlm_save(m, c->lm));
    TRY(syn_charlm_load(c->lm, c->dev, &back));
    double bpb;
    TRY(syn_charlm_bits_per_byte(back, c->text, 256, 2, 16, &bpb));
    *result = res.val_bpb + bpb;
    for (int i = 0; i < 8; i++) *result += out[i];
out:
    syn_charlm_free(back);
    syn_charlm_free(m);
    return s;
}

/* GANs: an MLP GAN (two steps, then samples) and a DCGAN-64 (a D and a G step). */
static syn_status sc_gan(ctx *c, double *result) {
    syn_status s;
    syn_gan *a = NULL, *b = NULL;
    syn_gan_config ca = syn_gan_config_defaults(SYN_GAN_MLP);
    ca.batch = 16;
    ca.model.hidden = 16;
    ca.n_fixed = 4;
    ca.label_smoothing = 0.1f;
    TRY(syn_gan_create(&ca, c->dev, &a));
    syn_gan_stats st;
    double sum = 0;
    for (int i = 0; i < 2; i++) {
        TRY(syn_gan_step(a, c->real, 16, &st));
        sum += st.d_loss + st.g_loss;
    }
    float pts[4 * 2];
    TRY(syn_gan_sample_fixed(a, pts));
    for (int i = 0; i < 8; i++) sum += pts[i];
    syn_gan_config cb = syn_gan_config_defaults(SYN_GAN_DCGAN64); /* a narrow one: 4 and 8 wide */
    cb.model.nz = 8;
    cb.model.ngf = cb.model.ndf = 4;
    cb.model.channels = 1;
    cb.batch = 2;
    cb.n_fixed = 2;
    TRY(syn_gan_create(&cb, c->dev, &b));
    static float img[2 * 64 * 64];
    for (int i = 0; i < 2 * 64 * 64; i++) img[i] = c->images[i % (4 * 3 * 6 * 6)];
    TRY(syn_gan_d_step(b, img, 2, &st));
    TRY(syn_gan_g_step(b, &st));
    sum += st.d_loss + st.g_loss;
    *result = sum;
out:
    syn_gan_free(b);
    syn_gan_free(a);
    return s;
}

/* A GRU forecaster fitted for two epochs, then a forecast. */
static syn_status sc_forecast(ctx *c, double *result) {
    syn_status s;
    syn_forecaster *f = NULL;
    syn_forecast_config fc = syn_forecast_defaults();
    fc.mode = SYN_RNN_GRU;
    fc.hidden = 8;
    fc.window = 8;
    fc.epochs = 2;
    fc.batch = 16;
    fc.device = c->dev;
    syn_forecast_report rep;
    TRY(syn_forecaster_fit(&fc, c->series, 240, &f, &rep));
    float next;
    TRY(syn_forecaster_predict(f, c->series + 200, 40, &next));
    *result = rep.test_rmse + next;
out:
    syn_forecaster_free(f);
    return s;
}

/* The data side: IDX, CSV, CIFAR-10 and image-folder data sets, a split,
 * standardisation, a prefetching loader with crop and flip, a series column,
 * fortunes. */
static syn_status sc_data(ctx *c, double *result) {
    syn_status s;
    syn_dataset *img = NULL, *tab = NULL, *a = NULL, *b = NULL, *cif = NULL, *fol = NULL;
    char **classes = NULL;
    int n_classes = 0;
    uint8_t *text = NULL;
    size_t len = 0;
    syn_norm_stats *stats = NULL;
    syn_loader *l = NULL;
    syn_series *ser = NULL;
    char **names = NULL;
    int count = 0;
    double sum = 0;
    TRY(syn_dataset_load_idx(c->idx_x, c->idx_y, &img));
    TRY(syn_dataset_normalize_channels(img, NULL));
    TRY(syn_loader_create(img, 5, true, 9, false, &l));
    const syn_augment aug = {.pad_crop = 1, .hflip = true};
    TRY(syn_loader_set_augment(l, &aug));
    TRY(syn_loader_set_prefetch(l, true));
    for (syn_batch bt;;) {
        TRY(syn_loader_next(l, &bt));
        if (bt.n == 0) break;
        for (int64_t i = 0; i < bt.n * 16; i++) sum += bt.x[i];
    }
    syn_csv_opts co = {.label = "label", .delimiter = ','};
    TRY(syn_dataset_load_csv(c->csv, &co, &tab));
    TRY(syn_dataset_split(tab, 0.25f, 4, &a, &b));
    TRY(syn_dataset_standardize_stats(a, b, true, &stats));
    for (int64_t i = 0; i < b->n * b->dim; i++) sum += b->x[i];
    TRY(syn_csv_header_read(c->csv, ',', &names, &count));
    TRY(syn_series_load_csv(c->csv, "v", ',', &ser));
    TRY(syn_dataset_load_cifar10(c->cifar, true, &cif));
    for (int64_t i = 0; i < cif->n; i++) sum += cif->labels[i] + cif->x[i * 3072 + 7];
    TRY(syn_text_load_fortunes(c->fortunes, &text, &len));
    TRY(syn_image_folder_classes(c->folder, &classes, &n_classes));
    TRY(syn_dataset_load_image_folder(c->folder, 1, (const char *const *)classes, n_classes, &fol));
    for (int64_t i = 0; i < fol->n * fol->dim; i++) sum += fol->x[i] * (1 + fol->labels[i / fol->dim]);
    *result = sum + count + (double)len + text[len / 2] + n_classes + strlen(classes[1]);
out:
    free(text);
    syn_dataset_free(fol);
    syn_image_folder_classes_free(classes, n_classes);
    syn_dataset_free(cif);
    syn_series_free(ser);
    syn_csv_header_free(names, count);
    syn_norm_stats_free(stats);
    syn_loader_free(l);
    syn_dataset_free(b);
    syn_dataset_free(a);
    syn_dataset_free(tab);
    syn_dataset_free(img);
    return s;
}

/* Files: a safetensors file with metadata written and read, a PNG grid
 * written and read back, a parameter file, a checkpoint with data. */
static syn_status sc_files(ctx *c, double *result) {
    syn_status s;
    syn_safetensors_writer *w = NULL;
    syn_safetensors *f = NULL;
    float *pix = NULL;
    syn_params *p = NULL;
    syn_norm_stats *back = NULL;
    TRY(syn_safetensors_writer_create(&w));
    const int64_t i64[3] = {1, -2, 3};
    TRY(syn_safetensors_add(w, "a.weight", SYN_F32, syn_shape2(4, 6), c->images));
    TRY(syn_safetensors_add(w, "b", SYN_I64, syn_shape1(3), i64));
    TRY(syn_safetensors_set_metadata(w, "note", "out of memory, all over"));
    TRY(syn_safetensors_write(w, c->st));
    TRY(syn_safetensors_open(c->st, &f));
    syn_dtype dt;
    syn_shape sh;
    const void *data;
    size_t bytes;
    TRY(syn_safetensors_find(f, "a.weight", &dt, &sh, &data, &bytes));
    const char *note = syn_safetensors_metadata(f, "note");
    double sum = (note ? (double)strlen(note) : -1) + ((const float *)data)[5];
    TRY(syn_png_write_grid(c->png, c->images, 4, 3, 6, 6, 2, -1.0f, 1.0f));
    int ch, h, wd;
    TRY(syn_png_read(c->png, &pix, &ch, &h, &wd));
    for (int i = 0; i < ch * h * wd; i++) sum += pix[i];
    /* a parameter set, saved and loaded; a checkpoint with the inputs'
     * standardisation and extra metadata, and its statistics read back */
    TRY(syn_params_create(syn_cpu(), 17, &p));
    const syn_init init = {SYN_INIT_NORMAL, 0.0f, 1.0f, 0};
    TRY(syn_params_add(p, "fc.weight", syn_shape2(3, 4), &init, NULL));
    TRY(syn_params_add(p, "fc.bias", syn_shape1(3), &init, NULL));
    TRY(syn_params_save(p, c->params));
    TRY(syn_params_load(p, c->params, true));
    double mean[2] = {0.25, -1.5}, sd[2] = {2.0, 0.5};
    const syn_norm_stats ns = {2, mean, sd};
    const char *const meta[4] = {"classes", "shirt,shoe,bag", "source", "oom test"};
    const syn_checkpoint_data cd = {&ns, meta, 2};
    const syn_checkpoint_info info = {.model = "fc 4-3", .epoch = 1};
    TRY(syn_checkpoint_save_data(c->ckpt, p, NULL, &info, &cd));
    TRY(syn_checkpoint_load_stats(c->ckpt, &back));
    sum += back->mean[1] + back->std[0] + (double)back->count;
    *result = sum;
out:
    syn_norm_stats_free(back);
    syn_params_free(p);
    free(pix);
    syn_safetensors_close(f);
    syn_safetensors_writer_free(w);
    return s;
}

/* Data parallelism: an MLP fitted by two members, threads of this process
 * (syn_comm_threads), each with its own net. Whichever member an allocation
 * fails in, both must stop with SYN_ERR_OOM (the other learns it at the next
 * collective) and neither may wait for the other forever (the test's timeout). */
typedef struct {
    ctx *c;
    syn_comm *comm;
    syn_status s, own; /* the member's status; own: its setup's, before syn_fit */
    char msg[256];
    double result;
} dist_member;

/* A member's net and optimizer; what it could build stays in m and *o. */
static syn_status dist_build(syn_params **p, syn_model *m, syn_optim **o, int rank) {
    syn_status s;
    syn_graph *g = NULL;
    TRY(syn_params_create(syn_cpu(), 7 + (uint64_t)rank, p));
    TRY(syn_graph_create(*p, &g));
    m->graph = g;
    m->x = syn_input(g, "x", SYN_F32, syn_shape2(8, 5));
    m->y = syn_input(g, "y", SYN_I32, syn_shape1(8));
    syn_node *h = syn_relu(g, syn_batch_norm(g, syn_linear(g, m->x, 12, "fc1", NULL), "bn"));
    m->logits = syn_linear(g, h, 3, "fc2", NULL);
    m->loss = syn_cross_entropy(g, m->logits, m->y);
    TRY(syn_graph_status(g));
    TRY(syn_graph_keep(g, m->logits));
    TRY(syn_graph_compile(g, syn_cpu(), NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    TRY(syn_optim_create(*p, &oc, o));
out:
    return s;
}

void syn__error_restore(const char *msg); /* src/core/status.c: the message of another thread, here */

static void *dist_run(void *arg) {
    dist_member *d = arg;
    syn_params *p = NULL;
    syn_optim *o = NULL;
    syn_model m = {NULL, NULL, NULL, NULL, NULL};
    d->own = dist_build(&p, &m, &o, syn_comm_rank(d->comm));
    char own_msg[256];
    snprintf(own_msg, sizeof own_msg, "%s", syn_last_error());
    /* called whatever the setup gave: so the other member learns of a failure */
    syn_fit_config fc = {.epochs = 2, .batch_size = 16, .seed = 3, .clip_norm = 1.0f, .progress = SYN_PROGRESS_OFF,
                         .out = d->c->devnull, .comm = d->comm};
    syn_fit_result res;
    syn_status s = syn_fit(&m, o, d->c->train, d->c->test, &fc, &res);
    bool same = false;
    if (s == SYN_OK) s = syn_params_compare(p, d->comm, &same);
    /* then a character model on the members' streams, if all went well so far
     * (every member knows: the compare is a collective) */
    syn_charlm *lm = NULL;
    syn_charlm_result lr = {0};
    if (s == SYN_OK && d->own == SYN_OK) {
        syn_charlm_config mc = {SYN_RNN_LSTM, 4, 6, 1, 0.0f};
        syn_status cs = syn_charlm_create(&mc, syn_cpu(), 5, &lm);
        if (cs != SYN_OK) snprintf(own_msg, sizeof own_msg, "%s", syn_last_error());
        const syn_charlm_train_config tc = {.batch = 2, .seq = 8, .steps = 3, .lr = 3e-3f, .eval_every = 2,
                                            .seed = 1, .comm = d->comm};
        s = syn_charlm_train(lm, d->c->text, 896, d->c->text + 896, 128, &tc, &lr); /* even without lm */
        if (cs != SYN_OK) d->own = cs;
    }
    syn_charlm_free(lm);
    /* and a few steps of an MLP GAN, G and D summed over the members */
    syn_gan *gan = NULL;
    syn_gan_stats gs = {0, 0, 0, 0, 0}; /* this member's own figures */
    bool g_same = false;
    if (s == SYN_OK && d->own == SYN_OK) {
        syn_gan_config gc = syn_gan_config_defaults(SYN_GAN_MLP);
        gc.batch = 8;
        gc.model.hidden = 6;
        gc.n_fixed = 4;
        syn_status cs = syn_gan_create(&gc, syn_cpu(), &gan);
        if (cs != SYN_OK) {
            snprintf(own_msg, sizeof own_msg, "%s", syn_last_error());
            d->own = cs;
        }
        s = syn_gan_set_comm(gan, d->comm); /* also without a trainer: the other learns it */
        for (int k = 0; k < 3 && s == SYN_OK; k++) s = syn_gan_step(gan, d->c->real + 2 * k, 4, &gs);
        if (s == SYN_OK) s = syn_gan_sync_stats(gan);
        if (s == SYN_OK) s = syn_params_compare(syn_gan_generator_params(gan), d->comm, &g_same);
    }
    syn_gan_free(gan);
    d->s = d->own != SYN_OK ? d->own : s;
    snprintf(d->msg, sizeof d->msg, "%s", d->own != SYN_OK ? own_msg : s == SYN_OK ? "" : syn_last_error());
    if (s == SYN_OK)
        d->result = (double)res.train_loss + res.test_loss + res.test_accuracy + same + lr.val_bpb + g_same;
    syn_optim_free(o);
    syn_graph_free(m.graph);
    syn_params_free(p);
    return NULL;
}

static syn_status sc_dist(ctx *c, double *result) {
    syn_comm *comm[2];
    syn_status s = syn_comm_threads(2, comm);
    if (s != SYN_OK) return s;
    dist_member d[2] = {{c, comm[0], SYN_OK, SYN_OK, "", 0.0}, {c, comm[1], SYN_OK, SYN_OK, "", 0.0}};
    pthread_t th;
    bool started = pthread_create(&th, NULL, dist_run, &d[1]) == 0;
    if (started) {
        dist_run(&d[0]);
        pthread_join(th, NULL);
    }
    syn_comm_free(comm[0]);
    syn_comm_free(comm[1]);
    /* (no ck_assert while the allocator is armed: Check allocates in it)
     * both stop, or neither, with the same results */
    char bad[600] = "";
    if (!started) snprintf(bad, sizeof bad, "invalid argument: sc_dist: cannot start a thread");
    else if ((d[0].s == SYN_OK) != (d[1].s == SYN_OK))
        snprintf(bad, sizeof bad, "invalid argument: sc_dist: one member failed (%s%s), the other did not", d[0].msg,
                 d[1].msg);
    else if (d[0].s == SYN_OK && d[0].result != d[1].result)
        snprintf(bad, sizeof bad, "invalid argument: sc_dist: the members' results differ (%.9g, %.9g)", d[0].result,
                 d[1].result);
    if (*bad) {
        syn__error_restore(bad);
        return SYN_ERR_ARG; /* not SYN_ERR_OOM: the sweep fails with this message */
    }
    *result = d[0].result;
    /* the cause: a member's own setup failure (the other's syn_fit then
     * failed "to start"), else member 0's status, with its message here */
    int k = d[0].own == SYN_OK && d[1].own != SYN_OK;
    if (d[k].s != SYN_OK) syn__error_restore(d[k].msg);
    return d[k].s;
}

/* ---- the tests --------------------------------------------------------------------- */

static const struct {
    const char *name;
    scenario_fn fn;
} scenarios[] = {
    {"mlp", sc_mlp}, {"cnn", sc_cnn}, {"ops", sc_ops}, {"charlm", sc_charlm}, {"gan", sc_gan},
    {"forecast", sc_forecast}, /* the first six take c->dev */
    {"data", sc_data}, {"files", sc_files}, {"dist", sc_dist},
};
#define N_SCENARIOS ((int)(sizeof scenarios / sizeof scenarios[0]))
#define N_DEVICE_SCENARIOS 6

#ifdef __SANITIZE_ADDRESS__
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* The scenarios above on the CPU; with SYN_OOM_DEVICE=cuda (the CUDA
 * emulator's build registers that run as test_oom_cuda, with
 * SYN_CUDA_NO_CACHE=1 so that every device block is a cudaMalloc, i.e. an
 * allocation here) the model scenarios on CUDA. */
static bool on_cuda(void) {
    const char *d = getenv("SYN_OOM_DEVICE");
    return d && strcmp(d, "cuda") == 0;
}

START_TEST(every_allocation_fails_cleanly) {
    /* the CPU convolutions of sc_cnn on Winograd F(2x2, 3x3), whatever their
     * sizes (read once, at the first convolution of this forked test) */
    setenv("SYN_CPU_WINOGRAD", "2", 1);
    const char *only = getenv("SYN_OOM_SCENARIO"); /* one scenario, by name */
    if (only && strcmp(only, scenarios[_i].name) != 0) return;
    ctx c;
    ctx_setup(&c);
    c.dev = on_cuda() ? syn_cuda(0) : syn_cpu();
    /* Every allocation on the CPU in a plain build (11 s); under
     * AddressSanitizer, which then also checks the error paths for
     * use-after-free and the like, 300 per scenario and seed (15 s, where
     * every one took 45); on the emulator (0.1-0.2 s a run there) 16. */
    sweep(scenarios[_i].name, scenarios[_i].fn, &c, on_cuda() ? 16 : SANITIZED ? 300 : 0);
    ctx_teardown(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("oom");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, tu_dir_setup, tu_dir_teardown);
    if (!on_cuda()) {
        tcase_add_loop_test(tc, every_allocation_fails_cleanly, 0, N_SCENARIOS);
        suite_add_tcase(s, tc);
        return tu_run(s);
    }
    CU_ADD_LOOP_TEST(tc, every_allocation_fails_cleanly, N_DEVICE_SCENARIOS);
    suite_add_tcase(s, tc);
    return cu_run(s);
}
