/* The batch loader: walks a data set in (optionally shuffled) order and
 * copies each batch's rows into contiguous buffers it owns. The order of
 * epoch e is a pure function of (seed, e), so runs are reproducible. */
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "core/rng.h"
#include "dataset.h"

struct syn_loader {
    const syn_dataset *ds; /* borrowed */
    int64_t batch;
    bool shuffle, drop_last;
    uint64_t seed;
    uint64_t epoch;
    int64_t pos;       /* next position in order[] */
    bool ordered;      /* order[] holds this epoch's permutation */
    int64_t *order;    /* n row indices */
    float *x;          /* batch * dim */
    int32_t *labels;   /* batch, or NULL */
    float *targets;    /* batch * target_dim, or NULL */
};

void syn_loader_free(syn_loader *l) {
    if (!l) return;
    free(l->order);
    free(l->x);
    free(l->labels);
    free(l->targets);
    free(l);
}

syn_status syn_loader_create(const syn_dataset *ds, int64_t batch, bool shuffle, uint64_t seed,
                             bool drop_last, syn_loader **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "loader: NULL output");
    *out = NULL;
    if (!ds) return syn__error(SYN_ERR_ARG, "loader: NULL dataset");
    if (batch < 1) return syn__error(SYN_ERR_ARG, "loader: batch size %lld (must be >= 1)", (long long)batch);
    if (ds->n < 1) return syn__error(SYN_ERR_ARG, "loader: the dataset has no rows");
    /* With drop_last every epoch would be empty: a training loop would spin
     * forever without ever seeing data, so say so now. */
    if (drop_last && batch > ds->n)
        return syn__error(SYN_ERR_ARG, "loader: batch size %lld exceeds the %lld rows and drop_last is set: no batch",
                          (long long)batch, (long long)ds->n);
    if (batch > ds->n) batch = ds->n; /* the buffers never need more */

    syn_loader *l = syn__calloc(1, sizeof *l, "loader");
    if (!l) return SYN_ERR_OOM;
    l->ds = ds;
    l->batch = batch;
    l->shuffle = shuffle;
    l->drop_last = drop_last;
    l->seed = seed;
    bool ok = (l->order = syn__malloc((size_t)ds->n * sizeof *l->order, "loader")) != NULL;
    ok = ok && (l->x = syn__malloc((size_t)batch * (size_t)ds->dim * sizeof(float), "loader batch")) != NULL;
    if (ok && ds->labels) ok = (l->labels = syn__malloc((size_t)batch * sizeof(int32_t), "loader batch")) != NULL;
    if (ok && ds->targets)
        ok = (l->targets = syn__malloc((size_t)batch * (size_t)ds->target_dim * sizeof(float), "loader batch")) != NULL;
    if (!ok) {
        syn_loader_free(l);
        return SYN_ERR_OOM;
    }
    *out = l;
    return SYN_OK;
}

int64_t syn_loader_batches(const syn_loader *l) {
    if (!l) return 0;
    int64_t n = l->ds->n;
    return l->drop_last ? n / l->batch : (n + l->batch - 1) / l->batch;
}

syn_status syn_loader_next(syn_loader *l, syn_batch *b) {
    if (!l || !b) return syn__error(SYN_ERR_ARG, "loader next: NULL %s", l ? "batch" : "loader");
    const syn_dataset *ds = l->ds;
    if (!l->ordered) {
        if (l->shuffle) {
            syn__shuffle_indices(l->order, ds->n, l->seed, SYN_STREAM_SHUFFLE + l->epoch);
        } else {
            for (int64_t i = 0; i < ds->n; i++) l->order[i] = i;
        }
        l->ordered = true;
    }
    int64_t m = ds->n - l->pos;
    if (m > l->batch) m = l->batch;
    if (m == 0 || (l->drop_last && m < l->batch)) {
        /* End of epoch: report it once, the next call reshuffles. */
        l->epoch++;
        l->pos = 0;
        l->ordered = false;
        memset(b, 0, sizeof *b);
        return SYN_OK;
    }
    for (int64_t r = 0; r < m; r++) {
        int64_t s = l->order[l->pos + r];
        memcpy(l->x + r * ds->dim, ds->x + s * ds->dim, (size_t)ds->dim * sizeof(float));
        if (l->labels) l->labels[r] = ds->labels[s];
        if (l->targets)
            memcpy(l->targets + r * ds->target_dim, ds->targets + s * ds->target_dim,
                   (size_t)ds->target_dim * sizeof(float));
    }
    l->pos += m;
    b->n = m;
    b->x = l->x;
    b->labels = l->labels;
    b->targets = l->targets;
    return SYN_OK;
}
