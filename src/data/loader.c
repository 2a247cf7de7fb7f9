/* The batch loader: walks a data set in (optionally shuffled) order and
 * copies each batch's rows into contiguous buffers it owns, optionally
 * augmenting images (random padded crop, horizontal flip) on the way. The
 * order and the augmentation of epoch e are pure functions of (seed, e), so
 * runs are reproducible.
 *
 * With prefetch on, a worker thread fills the next batch into the second of
 * two buffer slots while the caller trains on the first. The bookkeeping (the
 * epoch's order, the position) stays on the calling thread; the worker only
 * runs fill(), a pure function of (epoch, position, augmentation), so the
 * batches are the same bits with prefetch on or off. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "core/rng.h"
#include "dataset.h"

/* A batch's rows: order[pos, pos + m) of epoch `epoch`; m == 0 marks the end
 * of an epoch. */
typedef struct {
    int64_t m, pos;
    uint64_t epoch;
    int64_t total; /* the whole batch's rows (m, unless sharded) */
    int64_t at;    /* the whole batch's first position (pos, unless sharded) */
} span;

typedef struct {
    float *x;         /* batch * dim */
    int32_t *labels;  /* batch, or NULL */
    float *targets;   /* batch * target_dim, or NULL */
} slot;

struct syn_loader {
    const syn_dataset *ds; /* borrowed */
    int64_t batch;
    bool shuffle, drop_last;
    uint64_t seed;
    uint64_t epoch;
    int64_t pos;       /* next position in order[] */
    bool ordered;      /* order[] holds this epoch's permutation */
    int64_t *order;    /* n row indices */
    int shard, shards; /* this loader's part of each batch, of `shards` (1: all) */
    slot slots[2];     /* the second only with prefetch */
    int cur;           /* the slot handed out last */
    bool augment;      /* aug has something on; the data set is (C, H, W) */
    syn_augment aug;
    /* prefetch: the worker fills `ahead` into slots[ahead_slot] */
    bool prefetch, ahead_valid;
    span ahead;
    int ahead_slot;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool job, quit; /* under mu: a fill is asked for / running; the worker should end */
};

static void slot_free(slot *s) {
    free(s->x);
    free(s->labels);
    free(s->targets);
    memset(s, 0, sizeof *s);
}

static bool slot_alloc(slot *s, const syn_dataset *ds, int64_t batch) {
    bool ok = (s->x = syn__malloc((size_t)batch * (size_t)ds->dim * sizeof(float), "loader batch")) != NULL;
    if (ok && ds->labels) ok = (s->labels = syn__malloc((size_t)batch * sizeof(int32_t), "loader batch")) != NULL;
    if (ok && ds->targets)
        ok = (s->targets = syn__malloc((size_t)batch * (size_t)ds->target_dim * sizeof(float), "loader batch")) != NULL;
    return ok;
}

/* Waits until the worker has finished the asked-for fill. */
static void wait_job(syn_loader *l) {
    pthread_mutex_lock(&l->mu);
    while (l->job) pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

static void stop_worker(syn_loader *l) {
    if (!l->prefetch) return;
    pthread_mutex_lock(&l->mu);
    l->quit = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->worker, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    l->prefetch = l->ahead_valid = l->quit = false;
}

void syn_loader_free(syn_loader *l) {
    if (!l) return;
    stop_worker(l);
    free(l->order);
    slot_free(&l->slots[0]);
    slot_free(&l->slots[1]);
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
    l->shards = 1;
    bool ok = (l->order = syn__malloc((size_t)ds->n * sizeof *l->order, "loader")) != NULL;
    ok = ok && slot_alloc(&l->slots[0], ds, batch);
    if (!ok) {
        syn_loader_free(l);
        return SYN_ERR_OOM;
    }
    *out = l;
    return SYN_OK;
}

int64_t syn_loader_batches(const syn_loader *l) {
    if (!l) return 0;
    int64_t n = l->ds->n, rest = l->drop_last ? 0 : n % l->batch;
    return n / l->batch + (rest > 0 && rest >= l->shards);
}

syn_status syn_loader_set_shard(syn_loader *l, int rank, int size) {
    if (!l) return syn__error(SYN_ERR_ARG, "loader shard: NULL loader");
    if (size < 1 || rank < 0 || rank >= size)
        return syn__error(SYN_ERR_ARG, "loader shard: part %d of %d (need 0 <= part < parts)", rank, size);
    if (l->batch < size)
        return syn__error(SYN_ERR_ARG, "loader shard: a batch of %lld rows cannot be split %d ways",
                          (long long)l->batch, size);
    if (l->pos != 0 || (l->prefetch && l->ahead_valid && l->ahead.m > 0))
        return syn__error(SYN_ERR_ARG, "loader shard: set it before an epoch's first batch, not in the middle");
    l->shard = rank;
    l->shards = size;
    return SYN_OK;
}

static void refill_ahead(syn_loader *l);

static bool is_chw(const syn_dataset *ds) {
    const syn_shape *s = &ds->sample_shape;
    return s->ndim == 3 && s->dim[0] >= 1 && s->dim[1] >= 1 && s->dim[2] >= 1 && syn_shape_numel(s) == ds->dim;
}

syn_status syn_loader_set_augment(syn_loader *l, const syn_augment *aug) {
    if (!l) return syn__error(SYN_ERR_ARG, "loader augment: NULL loader");
    if (l->prefetch) wait_job(l); /* the worker reads the settings */
    if (!aug) {
        l->augment = false;
        refill_ahead(l);
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
    refill_ahead(l);
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
static void augment_row(const syn_loader *l, uint64_t epoch, float *dst, int64_t s) {
    const syn_dataset *ds = l->ds;
    syn__philox_block b = syn__philox(l->seed, SYN_STREAM_AUGMENT + epoch, (uint64_t)s);
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

/* The next span: shuffles at the start of an epoch, reports its end once
 * (the next call reshuffles). Calling thread only. */
static span advance(syn_loader *l) {
    const syn_dataset *ds = l->ds;
    if (!l->ordered) {
        if (l->shuffle) {
            syn__shuffle_indices(l->order, ds->n, l->seed, SYN_STREAM_SHUFFLE + l->epoch);
        } else {
            for (int64_t i = 0; i < ds->n; i++) l->order[i] = i;
        }
        l->ordered = true;
    }
    span sp = {ds->n - l->pos, l->pos, l->epoch, 0, l->pos};
    if (sp.m > l->batch) sp.m = l->batch;
    if (sp.m == 0 || (l->drop_last && sp.m < l->batch) || sp.m < l->shards) {
        l->epoch++;
        l->pos = 0;
        l->ordered = false;
        sp.m = 0;
        return sp;
    }
    l->pos += sp.m;
    sp.total = sp.m;
    /* this shard's rows [lo, hi) of the batch */
    int64_t lo = sp.total * l->shard / l->shards, hi = sp.total * (l->shard + 1) / l->shards;
    sp.pos += lo;
    sp.m = hi - lo;
    return sp;
}

/* Copies (and augments) the span's rows into slot k. Reads order[], which
 * the calling thread leaves alone until the fill is done. */
static void fill(const syn_loader *l, int k, span sp) {
    const syn_dataset *ds = l->ds;
    const slot *d = &l->slots[k];
    for (int64_t r = 0; r < sp.m; r++) {
        int64_t s = l->order[sp.pos + r];
        if (l->augment)
            augment_row(l, sp.epoch, d->x + r * ds->dim, s);
        else
            memcpy(d->x + r * ds->dim, ds->x + s * ds->dim, (size_t)ds->dim * sizeof(float));
        if (d->labels) d->labels[r] = ds->labels[s];
        if (d->targets)
            memcpy(d->targets + r * ds->target_dim, ds->targets + s * ds->target_dim,
                   (size_t)ds->target_dim * sizeof(float));
    }
}

static void *worker_main(void *arg) {
    syn_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->job && !l->quit) pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit) break;
        pthread_mutex_unlock(&l->mu);
        fill(l, l->ahead_slot, l->ahead); /* ahead is not touched while job is set */
        pthread_mutex_lock(&l->mu);
        l->job = false;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Starts filling the next span into the slot not handed out. */
static void start_ahead(syn_loader *l) {
    l->ahead = advance(l);
    l->ahead_slot = l->cur ^ 1;
    l->ahead_valid = true;
    if (l->ahead.m == 0) return; /* the end-of-epoch marker needs no rows */
    pthread_mutex_lock(&l->mu);
    l->job = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* The prepared batch again, with the current augmentation settings. */
static void refill_ahead(syn_loader *l) {
    if (!l->prefetch || !l->ahead_valid) return;
    wait_job(l);
    if (l->ahead.m > 0) fill(l, l->ahead_slot, l->ahead);
}

syn_status syn_loader_set_prefetch(syn_loader *l, bool on) {
    if (!l) return syn__error(SYN_ERR_ARG, "loader prefetch: NULL loader");
    if (!on) {
        if (!l->prefetch) return SYN_OK;
        bool rewind = l->ahead_valid;
        if (rewind) wait_job(l);
        span sp = l->ahead;
        stop_worker(l);
        if (rewind) { /* the prepared batch comes again from the next call: back to its span */
            l->epoch = sp.epoch;
            l->pos = sp.at; /* the whole batch's start: a shard's rows are within it */
            l->ordered = true; /* order[] still holds epoch sp.epoch's permutation */
        }
        return SYN_OK;
    }
    if (l->prefetch) return SYN_OK;
    if (!l->slots[1].x && !slot_alloc(&l->slots[1], l->ds, l->batch)) {
        slot_free(&l->slots[1]);
        return SYN_ERR_OOM;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->job = l->quit = l->ahead_valid = false;
    if (pthread_create(&l->worker, NULL, worker_main, l) != 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        return syn__error(SYN_ERR_UNSUPPORTED, "loader prefetch: cannot start the worker thread");
    }
    l->prefetch = true;
    return SYN_OK;
}

void syn__loader_seek_epoch(syn_loader *l, uint64_t epoch) {
    if (l->prefetch && l->ahead_valid) wait_job(l);
    l->ahead_valid = false; /* a prepared batch of the old position is dropped */
    l->epoch = epoch;
    l->pos = 0;
    l->ordered = false;
}

syn_status syn_loader_next(syn_loader *l, syn_batch *b) {
    if (!l || !b) return syn__error(SYN_ERR_ARG, "loader next: NULL %s", l ? "batch" : "loader");
    span sp;
    int k;
    if (l->prefetch && l->ahead_valid) {
        wait_job(l);
        sp = l->ahead;
        k = l->ahead_slot;
        l->ahead_valid = false;
    } else {
        sp = advance(l);
        k = l->prefetch ? l->cur ^ 1 : 0;
        if (sp.m > 0) fill(l, k, sp);
    }
    memset(b, 0, sizeof *b);
    if (sp.m > 0) {
        l->cur = k;
        b->n = sp.m;
        b->total = sp.total;
        b->x = l->slots[k].x;
        b->labels = l->slots[k].labels;
        b->targets = l->slots[k].targets;
    }
    if (l->prefetch) start_ahead(l);
    return SYN_OK;
}
