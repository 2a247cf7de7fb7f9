/* The batch loader: walks a data set in (optionally shuffled) order and
 * copies each batch's rows into contiguous buffers it owns, optionally
 * augmenting images (random padded crop, horizontal flip) on the way. The
 * order and the augmentation of epoch e are pure functions of (seed, e), so
 * runs are reproducible. */
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
    bool augment;      /* aug has something on; the data set is (C, H, W) */
    syn_augment aug;
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

static bool is_chw(const syn_dataset *ds) {
    const syn_shape *s = &ds->sample_shape;
    return s->ndim == 3 && s->dim[0] >= 1 && s->dim[1] >= 1 && s->dim[2] >= 1 && syn_shape_numel(s) == ds->dim;
}

syn_status syn_loader_set_augment(syn_loader *l, const syn_augment *aug) {
    if (!l) return syn__error(SYN_ERR_ARG, "loader augment: NULL loader");
    if (!aug) {
        l->augment = false;
        return SYN_OK;
    }
    if (aug->pad_crop < 0) return syn__error(SYN_ERR_ARG, "loader augment: pad_crop %d (must be >= 0)", aug->pad_crop);
    if (!is_chw(l->ds)) {
        char buf[96];
        return syn__error(SYN_ERR_SHAPE, "loader augment: sample_shape %s (%lld values per sample) is not (C, H, W)",
                          syn_shape_str(&l->ds->sample_shape, buf, sizeof buf), (long long)l->ds->dim);
    }
    l->aug = *aug;
    l->augment = aug->pad_crop > 0 || aug->hflip;
    return SYN_OK;
}

/* One sample, crop then flip as torchvision's RandomCrop(padding=p) followed
 * by RandomHorizontalFlip():
 *   src: (C,H,W) -> dst: (C,H,W),  dst[c,y,x] = src[c, y+dy, (flip ? W-1-x : x) + dx],  0 outside
 * with the crop's offset (dy, dx) in [-p, p]^2.
 *
 * The padding value is 0 in the data's CURRENT space. On raw pixels in [0, 1]
 * that is black, exactly as torchvision pads before ToTensor/Normalize. After
 * syn_dataset_normalize[_channels] it is the channel mean (a mid grey), not
 * raw black (-mean/std). We keep 0 because the loader cannot know whether or
 * how the set was normalised (syn_dataset records no statistics), and
 * padding with the mean is a common choice in its own right: it adds no
 * spurious strong edge. For torchvision's exact behaviour, augment raw data
 * and normalise afterwards, or normalise after loading each batch. */
static void augment_sample(float *dst, const float *src, int64_t C, int64_t H, int64_t W, int64_t dy,
                           int64_t dx, bool flip) {
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++) {
            float *d = dst + (c * H + y) * W;
            int64_t sy = y + dy;
            if (sy < 0 || sy >= H) {
                memset(d, 0, (size_t)W * sizeof(float));
                continue;
            }
            const float *s = src + (c * H + sy) * W;
            for (int64_t x = 0; x < W; x++) {
                int64_t sx = (flip ? W - 1 - x : x) + dx;
                d[x] = sx >= 0 && sx < W ? s[sx] : 0.0f;
            }
        }
}

/* Augments row s of the data set into dst. The draws are keyed by the row
 * (counter = s) rather than by its position in the batch, so they do not
 * depend on the batch size or on shuffling; the stream changes each epoch.
 * Words: v[0] the crop's dy, v[1] its dx, v[2] the flip, fixed whatever is
 * on, so turning the crop on or off does not change the flips. */
static void augment_row(const syn_loader *l, float *dst, int64_t s) {
    const syn_dataset *ds = l->ds;
    syn__philox_block b = syn__philox(l->seed, SYN_STREAM_AUGMENT + l->epoch, (uint64_t)s);
    int64_t p = l->aug.pad_crop, dy = 0, dx = 0;
    if (p > 0) {
        /* 2p+1 offsets from 32 bits: the modulo bias (2p+1)/2^32 is nil. */
        uint64_t k = 2 * (uint64_t)p + 1;
        dy = (int64_t)(b.v[0] % k) - p;
        dx = (int64_t)(b.v[1] % k) - p;
    }
    bool flip = l->aug.hflip && (b.v[2] >> 31);
    augment_sample(dst, ds->x + s * ds->dim, ds->sample_shape.dim[0], ds->sample_shape.dim[1],
                   ds->sample_shape.dim[2], dy, dx, flip);
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
        if (l->augment)
            augment_row(l, l->x + r * ds->dim, s);
        else
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
