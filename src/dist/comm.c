/* Communicators (syn_comm): a transport's two collectives behind one handle,
 * agreement on failure (every member learns whether any failed), the
 * threads transport, the MPI transport loaded from its plugin on demand, and
 * the parameter-set collectives data-parallel training is made of (gradient
 * sums, broadcasts, a check that every member holds the same weights). */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/internal.h"
#include "dist_internal.h"
#include "plugin.h"
#include "synapse/dist.h"

struct syn_comm {
    int rank, size, local_rank;
    syn_comm_ops ops;
    void *user;
    float *stage; /* host staging for the parameter collectives, grown as needed */
    int64_t stage_cap;
};

syn_status syn_comm_create(int rank, int size, int local_rank, const syn_comm_ops *ops, void *user,
                           syn_comm **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_comm_create: out is NULL");
    *out = NULL;
    if (!ops || !ops->allreduce || !ops->broadcast)
        return syn__error(SYN_ERR_ARG, "syn_comm_create: the transport needs allreduce and broadcast functions");
    if (size < 1 || rank < 0 || rank >= size || local_rank < 0 || local_rank > rank)
        return syn__error(SYN_ERR_ARG, "syn_comm_create: rank %d, local rank %d of %d members (need 0 <= local "
                          "rank <= rank < size)", rank, local_rank, size);
    syn_comm *c = syn__calloc(1, sizeof *c, "syn_comm_create");
    if (!c) return SYN_ERR_OOM;
    c->rank = rank;
    c->size = size;
    c->local_rank = local_rank;
    c->ops = *ops;
    c->user = user;
    *out = c;
    return SYN_OK;
}

void syn_comm_free(syn_comm *c) {
    if (!c) return;
    if (c->ops.destroy) c->ops.destroy(c->user);
    free(c->stage);
    free(c);
}

int syn_comm_rank(const syn_comm *c) { return c ? c->rank : 0; }
int syn_comm_size(const syn_comm *c) { return c ? c->size : 1; }
int syn_comm_local_rank(const syn_comm *c) { return c ? c->local_rank : 0; }

/* ---- collectives ------------------------------------------------------------ */

/* A transport's call leaves syn_last_error as it was when it works, and
 * always has a message when it fails (a transport of the program's own may
 * write none): `kept` holds the message from before the call. */
static void call_begin(char *kept, size_t size) {
    snprintf(kept, size, "%s", syn_last_error());
    syn_clear_error();
}

/* true: the transport failed without a message, the caller writes one */
static bool call_end(syn_status s, const char *kept) {
    if (s == SYN_OK) syn__error_restore(kept);
    return s != SYN_OK && syn_last_error()[0] == '\0';
}

static syn_status allreduce(syn_comm *c, void *buf, int64_t n, syn_comm_type t, const char *fn) {
    if (!c || (!buf && n > 0) || n < 0)
        return syn__error(SYN_ERR_ARG, "%s: NULL communicator or buffer, or a negative count", fn);
    if (n == 0 || c->size == 1) return SYN_OK;
    char kept[1024];
    call_begin(kept, sizeof kept);
    syn_status s = c->ops.allreduce(c->user, buf, n, t);
    if (call_end(s, kept))
        return syn__error(s, "%s: the transport's allreduce of %lld values failed (rank %d of %d)", fn, (long long)n,
                          c->rank, c->size);
    return s;
}

syn_status syn_comm_allreduce_f32(syn_comm *c, float *buf, int64_t n) {
    return allreduce(c, buf, n, SYN_COMM_F32, "syn_comm_allreduce_f32");
}

syn_status syn_comm_allreduce_f64(syn_comm *c, double *buf, int64_t n) {
    return allreduce(c, buf, n, SYN_COMM_F64, "syn_comm_allreduce_f64");
}

syn_status syn_comm_broadcast(syn_comm *c, void *buf, int64_t bytes, int root) {
    if (!c || (!buf && bytes > 0) || bytes < 0)
        return syn__error(SYN_ERR_ARG, "syn_comm_broadcast: NULL communicator or buffer, or a negative size");
    if (root < 0 || root >= c->size)
        return syn__error(SYN_ERR_ARG, "syn_comm_broadcast: root %d outside 0..%d", root, c->size - 1);
    if (bytes == 0 || c->size == 1) return SYN_OK;
    char kept[1024];
    call_begin(kept, sizeof kept);
    syn_status s = c->ops.broadcast(c->user, buf, bytes, root);
    if (call_end(s, kept))
        return syn__error(s, "syn_comm_broadcast: the transport's broadcast of %lld bytes from rank %d failed (rank "
                          "%d of %d)", (long long)bytes, root, c->rank, c->size);
    return s;
}

/* ---- agreement on failure ------------------------------------------------------- */

void syn__comm_flags(syn_status mine, double f[3]) {
    f[0] = mine != SYN_OK;
    f[1] = mine != SYN_OK ? (double)mine : 0.0;
    f[2] = f[1] * f[1];
}

syn_status syn__comm_settle(syn_comm *c, syn_status mine, const double f[3], const char *fn, const char *where) {
    if (mine != SYN_OK || f[0] <= 0.0) return mine;
    double code = f[1] / f[0];
    bool alike = f[2] * f[0] == f[1] * f[1]; /* all the same code */
    syn_status s = alike && code == floor(code) && code > 0 && code < SYN_STATUS_COUNT ? (syn_status)code : SYN_ERR_IO;
    return syn__error(s, "%s: %.0f of the %d members failed%s%s (see their messages); member %d stops with them", fn,
                      f[0], c->size, *where ? " " : "", where, c->rank);
}

syn_status syn__comm_agree(syn_comm *c, syn_status mine, double *sums, int n, const char *fn, const char *where) {
    double buf[8];
    if (n > 5) return syn__error(SYN_ERR_ARG, "%s: %d sums to agree on (at most 5)", fn, n);
    for (int i = 0; i < n; i++) buf[i] = mine == SYN_OK ? sums[i] : 0.0;
    syn__comm_flags(mine, buf + n);
    syn_status s = allreduce(c, buf, n + 3, SYN_COMM_F64, fn);
    if (s != SYN_OK) return mine != SYN_OK ? mine : s;
    if (mine == SYN_OK)
        for (int i = 0; i < n; i++) sums[i] = buf[i];
    return syn__comm_settle(c, mine, buf + n, fn, where);
}

syn_status syn_comm_agree(syn_comm *c, syn_status mine) {
    if (!c) return syn__error(SYN_ERR_ARG, "syn_comm_agree: NULL communicator");
    return c->size > 1 ? syn__comm_agree(c, mine, NULL, 0, "syn_comm_agree", "") : mine;
}

/* ---- threads in one process ------------------------------------------------------ */

/* Each collective: every member publishes its buffer, waits for all, reads
 * what it needs into its own scratch (or root's bytes), waits again so that
 * nobody's buffer changes while another reads it, then writes its own. */
typedef struct {
    int size, refs; /* refs under mu */
    pthread_mutex_t mu;
    pthread_barrier_t bar;
    void **bufs;
    /* a member could not make its scratch: all fail that allreduce. Two
     * flags, by the allreduce's parity: rank 0 clears one after the second
     * barrier, and nobody sets it again before the allreduce after next. */
    int failed[2]; /* under mu */
} threads_shared;

typedef struct {
    threads_shared *sh;
    int rank;
    unsigned ops; /* allreduces so far: the parity */
    void *tmp;
    size_t tmp_bytes;
} threads_user;

static syn_status threads_allreduce(void *user, void *buf, int64_t n, syn_comm_type t) {
    threads_user *u = user;
    threads_shared *sh = u->sh;
    size_t width = t == SYN_COMM_F64 ? sizeof(double) : sizeof(float), bytes = (size_t)n * width;
    /* every member takes the same path past each barrier, and all fail if
     * one could not make its scratch */
    int *failed = &sh->failed[u->ops++ & 1];
    bool ok = bytes <= u->tmp_bytes;
    if (!ok) {
        void *p = realloc(u->tmp, bytes);
        if ((ok = p != NULL)) {
            u->tmp = p;
            u->tmp_bytes = bytes;
        }
    }
    if (!ok) {
        pthread_mutex_lock(&sh->mu);
        (*failed)++;
        pthread_mutex_unlock(&sh->mu);
    }
    sh->bufs[u->rank] = buf;
    pthread_barrier_wait(&sh->bar);
    pthread_mutex_lock(&sh->mu);
    int any = *failed;
    pthread_mutex_unlock(&sh->mu);
    if (!any) {
        if (t == SYN_COMM_F64) {
            double *d = u->tmp;
            for (int64_t i = 0; i < n; i++) d[i] = ((const double *)sh->bufs[0])[i];
            for (int r = 1; r < sh->size; r++)
                for (int64_t i = 0; i < n; i++) d[i] += ((const double *)sh->bufs[r])[i];
        } else {
            float *f = u->tmp;
            for (int64_t i = 0; i < n; i++) f[i] = ((const float *)sh->bufs[0])[i];
            for (int r = 1; r < sh->size; r++)
                for (int64_t i = 0; i < n; i++) f[i] += ((const float *)sh->bufs[r])[i];
        }
    }
    pthread_barrier_wait(&sh->bar);
    if (u->rank == 0) {
        pthread_mutex_lock(&sh->mu);
        *failed = 0;
        pthread_mutex_unlock(&sh->mu);
    }
    if (!ok) return syn__error(SYN_ERR_OOM, "syn_comm_threads: allreduce: cannot allocate %zu bytes", bytes);
    if (any)
        return syn__error(SYN_ERR_OOM, "syn_comm_threads: allreduce: %d of the %d members could not allocate their "
                          "%zu bytes", any, sh->size, bytes);
    memcpy(buf, u->tmp, bytes);
    return SYN_OK;
}

static syn_status threads_broadcast(void *user, void *buf, int64_t bytes, int root) {
    threads_user *u = user;
    threads_shared *sh = u->sh;
    sh->bufs[u->rank] = buf;
    pthread_barrier_wait(&sh->bar);
    if (u->rank != root) memcpy(buf, sh->bufs[root], (size_t)bytes);
    pthread_barrier_wait(&sh->bar);
    return SYN_OK;
}

static void threads_shared_release(threads_shared *sh) {
    pthread_mutex_lock(&sh->mu);
    bool last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->mu);
    if (!last) return;
    pthread_barrier_destroy(&sh->bar);
    pthread_mutex_destroy(&sh->mu);
    free(sh->bufs);
    free(sh);
}

static void threads_destroy(void *user) {
    threads_user *u = user;
    threads_shared_release(u->sh);
    free(u->tmp);
    free(u);
}

syn_status syn_comm_threads(int size, syn_comm **members) {
    if (!members) return syn__error(SYN_ERR_ARG, "syn_comm_threads: members is NULL");
    if (size < 1 || size > 4096) return syn__error(SYN_ERR_ARG, "syn_comm_threads: %d members (1..4096)", size);
    for (int i = 0; i < size; i++) members[i] = NULL;
    threads_shared *sh = syn__calloc(1, sizeof *sh, "syn_comm_threads");
    if (!sh) return SYN_ERR_OOM;
    if (!(sh->bufs = syn__calloc((size_t)size, sizeof *sh->bufs, "syn_comm_threads"))) {
        free(sh);
        return SYN_ERR_OOM;
    }
    if (pthread_barrier_init(&sh->bar, NULL, (unsigned)size) != 0) {
        free(sh->bufs);
        free(sh);
        return syn__error(SYN_ERR_UNSUPPORTED, "syn_comm_threads: cannot make a barrier for %d threads", size);
    }
    pthread_mutex_init(&sh->mu, NULL);
    sh->size = size;
    sh->refs = 1; /* this function's, dropped at the end */
    syn_comm_ops ops = {threads_allreduce, threads_broadcast, threads_destroy};
    syn_status s = SYN_OK;
    for (int i = 0; i < size && s == SYN_OK; i++) {
        threads_user *u = syn__calloc(1, sizeof *u, "syn_comm_threads");
        if (!u) {
            s = SYN_ERR_OOM;
            break;
        }
        u->sh = sh;
        u->rank = i;
        sh->refs++;
        if ((s = syn_comm_create(i, size, i, &ops, u, &members[i])) != SYN_OK) threads_destroy(u);
    }
    if (s != SYN_OK)
        for (int i = 0; i < size; i++) {
            syn_comm_free(members[i]);
            members[i] = NULL;
        }
    threads_shared_release(sh);
    return s;
}

/* ---- the MPI plugin ------------------------------------------------------------ */

static syn_status mpi_allreduce(void *user, void *buf, int64_t n, syn_comm_type t) {
    const syn__mpi_plugin *u = user;
    char err[512];
    if (u->allreduce(buf, n, t == SYN_COMM_F64, err, sizeof err) != 0)
        return syn__error(SYN_ERR_IO, "MPI allreduce of %lld values (rank %d of %d): %s", (long long)n, u->rank,
                          u->size, err);
    return SYN_OK;
}

static syn_status mpi_broadcast(void *user, void *buf, int64_t bytes, int root) {
    const syn__mpi_plugin *u = user;
    char err[512];
    if (u->broadcast(buf, bytes, root, err, sizeof err) != 0)
        return syn__error(SYN_ERR_IO, "MPI broadcast of %lld bytes from rank %d (rank %d of %d): %s", (long long)bytes,
                          root, u->rank, u->size, err);
    return SYN_OK;
}

static void mpi_destroy(void *user) {
    syn__mpi_plugin *u = user;
    u->close();
    /* never dlclose'd: MPI libraries keep threads and handlers that outlive
     * finalisation, and unloading them under those crashes at exit */
    free(u);
}

/* Tries one place; on failure appends "path: why" to `why`. */
static void *try_open(const char *path, char *why, size_t size) {
    void *dl = dlopen(path, RTLD_NOW | RTLD_GLOBAL); /* GLOBAL: Open MPI loads its own components against libmpi */
    if (!dl) {
        size_t used = strlen(why);
        const char *e = dlerror();
        snprintf(why + used, size - used, "%s%.300s", used ? "; " : "", e ? e : path);
    }
    return dl;
}

static void *open_plugin(char *why, size_t size) {
    why[0] = '\0';
    const char *env = getenv("SYN_MPI_PLUGIN");
    if (env && *env) return try_open(env, why, size);
    void *dl = NULL;
    char dir[4096], path[4200];
    Dl_info info;
    /* next to what holds this code: libsynapse.so, or a program linked with libsynapse.a */
    if (dladdr((void *)syn_comm_mpi, &info) && info.dli_fname && strlen(info.dli_fname) < sizeof dir) {
        strcpy(dir, info.dli_fname);
        const char *d = dirname(dir);
        snprintf(path, sizeof path, "%s/%s", d, SYN_MPI_PLUGIN_FILE);
        dl = try_open(path, why, size);
        if (!dl) {
            snprintf(path, sizeof path, "%s/../lib/%s", d, SYN_MPI_PLUGIN_FILE);
            dl = try_open(path, why, size);
        }
    }
#ifdef SYN_PLUGIN_DIR
    if (!dl) dl = try_open(SYN_PLUGIN_DIR "/" SYN_MPI_PLUGIN_FILE, why, size);
#endif
    if (!dl) dl = try_open(SYN_MPI_PLUGIN_FILE, why, size);
    return dl;
}

syn_status syn_comm_mpi(syn_comm **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_comm_mpi: out is NULL");
    *out = NULL;
    char why[2048];
    void *dl = open_plugin(why, sizeof why);
    if (!dl)
        return syn__error(SYN_ERR_UNSUPPORTED, "syn_comm_mpi: cannot load the MPI plugin %s (built where MPI is "
                          "found; Debian: libopenmpi-dev, openmpi-bin): %s", SYN_MPI_PLUGIN_FILE, why);
    syn__mpi_plugin_open_fn open_fn;
    *(void **)&open_fn = dlsym(dl, SYN_MPI_PLUGIN_ENTRY);
    if (!open_fn)
        return syn__error(SYN_ERR_UNSUPPORTED, "syn_comm_mpi: %s has no %s", SYN_MPI_PLUGIN_FILE,
                          SYN_MPI_PLUGIN_ENTRY);
    syn__mpi_plugin *u = syn__calloc(1, sizeof *u, "syn_comm_mpi");
    if (!u) return SYN_ERR_OOM;
    char err[512];
    if (open_fn(SYN_MPI_PLUGIN_ABI, u, err, sizeof err) != 0) {
        free(u);
        return syn__error(SYN_ERR_UNSUPPORTED, "syn_comm_mpi: %s", err);
    }
    syn_comm_ops ops = {mpi_allreduce, mpi_broadcast, mpi_destroy};
    syn_status s = syn_comm_create(u->rank, u->size, u->local_rank, &ops, u, out);
    if (s != SYN_OK) mpi_destroy(u);
    return s;
}

bool syn_comm_mpi_launched(int *size) {
    /* the world's size as Open MPI, and PMI-based launchers (MPICH's hydra, Slurm), give it */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    int n = 1;
    for (size_t i = 0; i < sizeof vars / sizeof *vars && n == 1; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1) n = atoi(v);
    }
    if (size) *size = n;
    return n > 1;
}

/* ---- parameter sets --------------------------------------------------------------- */

static bool picked(const syn__param *it, int which) {
    return which == 0 || (which == 1 ? it->trainable : !it->trainable);
}

/* The staging buffer, at least n floats. */
static syn_status stage(syn_comm *c, int64_t n, const char *fn) {
    if (n <= c->stage_cap) return SYN_OK;
    float *p = syn__malloc((size_t)n * sizeof(float), fn);
    if (!p) return SYN_ERR_OOM;
    free(c->stage);
    c->stage = p;
    c->stage_cap = n;
    return SYN_OK;
}

/* Staging <-> the picked parameters' grads (grad) or values, in order.
 * which: 0 all, 1 trainable, 2 frozen. */
static syn_status gather(syn_comm *c, const syn_params *p, int which, bool grad, int64_t *n, const char *fn) {
    int64_t total = 0;
    for (int i = 0; i < p->n; i++)
        if (picked(&p->items[i], which)) total += syn_tensor_numel(p->items[i].value);
    SYN_TRY(stage(c, total, fn));
    int64_t off = 0;
    for (int i = 0; i < p->n; i++) {
        const syn__param *it = &p->items[i];
        if (!picked(it, which)) continue;
        const syn_tensor *t = grad ? it->grad : it->value;
        SYN_TRY(syn_tensor_read(t, c->stage + off, syn_tensor_bytes(t)));
        off += syn_tensor_numel(t);
    }
    *n = total;
    return SYN_OK;
}

syn_status syn__comm_reserve(syn_comm *c, int64_t n) { return stage(c, n, "data-parallel staging"); }

static syn_status scatter(syn_comm *c, syn_params *p, int which, bool grad) {
    int64_t off = 0;
    for (int i = 0; i < p->n; i++) {
        syn__param *it = &p->items[i];
        if (!picked(it, which)) continue;
        syn_tensor *t = grad ? it->grad : it->value;
        SYN_TRY(syn_tensor_write(t, c->stage + off, syn_tensor_bytes(t)));
        off += syn_tensor_numel(t);
    }
    return SYN_OK;
}

static int64_t count(const syn_params *p, int which) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++)
        if (picked(&p->items[i], which)) n += syn_tensor_numel(p->items[i].value);
    return n;
}

syn_status syn__params_allreduce_grads_flagged(syn_params *p, syn_comm *c, float weight, syn_status *mine,
                                               double all[3], syn_status *late) {
    static const char fn[] = "syn_params_allreduce_grads";
    const int64_t n = count(p, 1);
    *late = SYN_OK;
    /* the staging, reserved by syn_fit & co. at their start; else grown here */
    SYN_TRY(stage(c, n + 3, fn));
    int64_t got = 0;
    if (*mine == SYN_OK) *mine = gather(c, p, 1, true, &got, fn);
    if (*mine == SYN_OK) {
        for (int64_t i = 0; i < n; i++) c->stage[i] *= weight;
    } else { /* zeros in place of the gradients: the others' sums still come */
        memset(c->stage, 0, (size_t)n * sizeof(float));
    }
    double f[3];
    syn__comm_flags(*mine, f);
    for (int k = 0; k < 3; k++) c->stage[n + k] = (float)f[k]; /* small whole numbers: exact in floats */
    SYN_TRY(allreduce(c, c->stage, n + 3, SYN_COMM_F32, fn));
    for (int k = 0; k < 3; k++) all[k] = c->stage[n + k];
    /* a failure writing back is after the collective: the caller passes it on */
    if (*mine == SYN_OK && all[0] == 0.0) *late = scatter(c, p, 1, true);
    return SYN_OK;
}

syn_status syn_params_allreduce_grads(syn_params *p, syn_comm *c, float weight) {
    static const char fn[] = "syn_params_allreduce_grads";
    if (!p || !c) return syn__error(SYN_ERR_ARG, "%s: NULL %s", fn, !p ? "parameter set" : "communicator");
    if (!(weight >= 0.0f) || weight > 1e30f) return syn__error(SYN_ERR_ARG, "%s: weight %g", fn, (double)weight);
    if (c->size == 1 && weight == 1.0f) return SYN_OK;
    syn_status mine = SYN_OK, late;
    double all[3];
    SYN_TRY(syn__params_allreduce_grads_flagged(p, c, weight, &mine, all, &late));
    if (mine == SYN_OK && all[0] > 0.0)
        mine = syn__comm_settle(c, mine, all, fn, "to read their gradients");
    /* and whether every member wrote the sums back */
    if (mine == SYN_OK) mine = late;
    return c->size > 1 ? syn__comm_agree(c, mine, NULL, 0, fn, "") : mine;
}

syn_status syn_params_broadcast(syn_params *p, syn_comm *c, int root, bool frozen_only) {
    static const char fn[] = "syn_params_broadcast";
    if (!p || !c) return syn__error(SYN_ERR_ARG, "%s: NULL %s", fn, !p ? "parameter set" : "communicator");
    if (root < 0 || root >= c->size) return syn__error(SYN_ERR_ARG, "%s: root %d outside 0..%d", fn, root, c->size - 1);
    if (c->size == 1) return SYN_OK;
    const int which = frozen_only ? 2 : 0;
    int64_t n = count(p, which);
    SYN_TRY(stage(c, n, fn));
    syn_status mine = c->rank == root ? gather(c, p, which, false, &n, fn) : SYN_OK;
    SYN_TRY(syn_comm_broadcast(c, c->stage, n * (int64_t)sizeof(float), root));
    if (c->rank != root) mine = scatter(c, p, which, false);
    return syn__comm_agree(c, mine, NULL, 0, fn, ""); /* root could not read, or a member could not write */
}

/* FNV-1a, 64 bits */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

syn_status syn_params_compare(const syn_params *p, syn_comm *c, bool *same) {
    static const char fn[] = "syn_params_compare";
    if (!p || !c || !same) return syn__error(SYN_ERR_ARG, "%s: NULL argument", fn);
    *same = true;
    int64_t n = count(p, 0);
    SYN_TRY(stage(c, n, fn));
    syn_status mine = gather(c, p, 0, false, &n, fn);
    uint64_t h = fnv(0xcbf29ce484222325ull, c->stage, (size_t)n * sizeof(float));
    for (int i = 0; i < p->n; i++) {
        const syn__param *it = &p->items[i];
        h = fnv(h, it->name, strlen(it->name) + 1);
        const syn_shape *sh = &it->value->shape;
        h = fnv(h, &sh->ndim, sizeof sh->ndim);
        h = fnv(h, sh->dim, (size_t)sh->ndim * sizeof *sh->dim);
    }
    uint64_t root = h;
    SYN_TRY(syn_comm_broadcast(c, &root, sizeof root, 0));
    /* every member learns whether any differs from rank 0, or failed */
    double differs = root != h ? 1.0 : 0.0;
    SYN_TRY(syn__comm_agree(c, mine, &differs, 1, fn, "to read their parameters"));
    *same = differs == 0.0;
    return SYN_OK;
}
