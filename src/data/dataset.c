/* The in-memory data set: allocation and freeing, the seeded shuffle shared
 * with the loader, the train/validation split and feature standardisation.
 * The readers (idx.c, csv.c) and the loader (loader.c) build on these. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "core/rng.h"
#include "dataset.h"

/* The split's shuffle stream: far above any loader epoch (SHUFFLE + epoch),
 * so splitting and loading with one seed do not produce the same order. */
#define SYN_SPLIT_STREAM (SYN_STREAM_SHUFFLE + 0xFFFFFFFFull)

void syn_dataset_free(syn_dataset *ds) {
    if (!ds) return;
    free(ds->x);
    free(ds->labels);
    free(ds->targets);
    free(ds);
}

syn_status syn__dataset_alloc(int64_t n, int64_t dim, bool has_labels, int64_t target_dim,
                              const char *what, syn_dataset **out) {
    *out = NULL;
    if (n < 0 || dim < 0 || target_dim < 0 ||
        (dim > 0 && (uint64_t)n > SIZE_MAX / sizeof(float) / (uint64_t)dim) ||
        (target_dim > 0 && (uint64_t)n > SIZE_MAX / sizeof(float) / (uint64_t)target_dim))
        return syn__error(SYN_ERR_OOM, "%s: %lld x %lld values do not fit in memory", what,
                          (long long)n, (long long)dim);
    syn_dataset *ds = syn__calloc(1, sizeof *ds, what);
    if (!ds) return SYN_ERR_OOM;
    ds->n = n;
    ds->dim = dim;
    ds->sample_shape = syn_shape1(dim);
    ds->target_dim = target_dim;
    ds->x = syn__malloc((size_t)n * (size_t)dim * sizeof(float), what);
    if (ds->x && has_labels) ds->labels = syn__malloc((size_t)n * sizeof(int32_t), what);
    if (ds->x && target_dim > 0)
        ds->targets = syn__malloc((size_t)n * (size_t)target_dim * sizeof(float), what);
    if (!ds->x || (has_labels && !ds->labels) || (target_dim > 0 && !ds->targets)) {
        syn_dataset_free(ds);
        return SYN_ERR_OOM;
    }
    *out = ds;
    return SYN_OK;
}

void syn__shuffle_indices(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    /* Starting from the identity every time makes the order depend only on
     * (seed, stream), never on an earlier epoch: a resumed run reproduces it. */
    for (int64_t i = n - 1; i > 0; i--) {
        syn__philox_block b = syn__philox(seed, stream, (uint64_t)i);
        uint64_t r = ((uint64_t)b.v[1] << 32) | b.v[0];
        /* 64 random bits: the modulo bias is below n / 2^64, far under noise. */
        int64_t j = (int64_t)(r % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* Rows idx[0..m) of ds, deep-copied into a new set with ds's metadata. */
static syn_status take_rows(const syn_dataset *ds, const int64_t *idx, int64_t m, syn_dataset **out) {
    syn_dataset *d;
    SYN_TRY(syn__dataset_alloc(m, ds->dim, ds->labels != NULL, ds->targets ? ds->target_dim : 0,
                               "dataset split", &d));
    d->sample_shape = ds->sample_shape;
    d->num_classes = ds->num_classes;
    for (int64_t r = 0; r < m; r++) {
        int64_t s = idx[r];
        memcpy(d->x + r * ds->dim, ds->x + s * ds->dim, (size_t)ds->dim * sizeof(float));
        if (d->labels) d->labels[r] = ds->labels[s];
        if (d->targets)
            memcpy(d->targets + r * ds->target_dim, ds->targets + s * ds->target_dim,
                   (size_t)ds->target_dim * sizeof(float));
    }
    *out = d;
    return SYN_OK;
}

syn_status syn_dataset_split(const syn_dataset *ds, float fraction, uint64_t seed, syn_dataset **first,
                             syn_dataset **second) {
    if (!first || !second) return syn__error(SYN_ERR_ARG, "dataset split: NULL output");
    *first = *second = NULL;
    if (!ds) return syn__error(SYN_ERR_ARG, "dataset split: NULL dataset");
    /* Written as a negation so that NaN is refused too. */
    if (!(fraction > 0.0f && fraction < 1.0f))
        return syn__error(SYN_ERR_ARG, "dataset split: fraction %g is not in (0, 1)", (double)fraction);
    int64_t n2 = (int64_t)llround((double)ds->n * (double)fraction);
    int64_t n1 = ds->n - n2;
    if (n1 < 1 || n2 < 1)
        return syn__error(SYN_ERR_ARG, "dataset split: fraction %g of %lld rows leaves a part empty (%lld + %lld)",
                          (double)fraction, (long long)ds->n, (long long)n1, (long long)n2);
    int64_t *idx = syn__malloc((size_t)ds->n * sizeof *idx, "dataset split");
    if (!idx) return SYN_ERR_OOM;
    syn__shuffle_indices(idx, ds->n, seed, SYN_SPLIT_STREAM);
    syn_status s = take_rows(ds, idx, n1, first);
    if (s == SYN_OK) s = take_rows(ds, idx + n1, n2, second);
    free(idx);
    if (s != SYN_OK) {
        syn_dataset_free(*first);
        *first = NULL;
    }
    return s;
}

/* SYN_OK if every feature of ds is finite; names the first bad value. */
static syn_status check_finite(const syn_dataset *ds, const char *which) {
    int64_t total = ds->n * ds->dim;
    for (int64_t i = 0; i < total; i++)
        if (!isfinite(ds->x[i]))
            return syn__error(SYN_ERR_FORMAT, "dataset standardize: %s in features of %s (row %lld, feature %lld)",
                              isnan(ds->x[i]) ? "NaN" : "inf", which, (long long)(i / ds->dim),
                              (long long)(i % ds->dim));
    return SYN_OK;
}

/* x[r, j] = (x[r, j] - mean[k]) / sd[k], k = j per feature, else 0 */
static void apply(syn_dataset *ds, const double *mean, const double *sd, bool per_feature) {
    for (int64_t r = 0; r < ds->n; r++) {
        float *row = ds->x + r * ds->dim;
        for (int64_t j = 0; j < ds->dim; j++) {
            int64_t k = per_feature ? j : 0;
            row[j] = (float)(((double)row[j] - mean[k]) / sd[k]);
        }
    }
}

void syn_norm_stats_free(syn_norm_stats *st) {
    if (!st) return;
    free(st->mean);
    free(st->std);
    free(st);
}

syn_status syn__norm_stats_alloc(int64_t count, const char *what, syn_norm_stats **out) {
    *out = NULL;
    if (count < 1 || (uint64_t)count > SIZE_MAX / sizeof(double))
        return syn__error(SYN_ERR_ARG, "%s: %lld statistics", what, (long long)count);
    syn_norm_stats *st = syn__calloc(1, sizeof *st, what);
    if (!st) return SYN_ERR_OOM;
    st->count = count;
    st->mean = syn__calloc((size_t)count, sizeof *st->mean, what);
    st->std = st->mean ? syn__calloc((size_t)count, sizeof *st->std, what) : NULL;
    if (!st->std) {
        syn_norm_stats_free(st);
        return SYN_ERR_OOM;
    }
    *out = st;
    return SYN_OK;
}

syn_status syn_dataset_standardize_stats(syn_dataset *train, syn_dataset *other, bool per_feature,
                                         syn_norm_stats **stats) {
    if (stats) *stats = NULL;
    if (!train) return syn__error(SYN_ERR_ARG, "dataset standardize: NULL dataset");
    if (train->n < 1 || train->dim < 1)
        return syn__error(SYN_ERR_ARG, "dataset standardize: the training set is empty (%lld x %lld)",
                          (long long)train->n, (long long)train->dim);
    if (other && other->dim != train->dim)
        return syn__error(SYN_ERR_SHAPE, "dataset standardize: %lld features in the other set, %lld in train",
                          (long long)other->dim, (long long)train->dim);
    /* Check both sets before touching either, so a failure changes nothing. */
    SYN_TRY(check_finite(train, "train"));
    if (other) SYN_TRY(check_finite(other, "the other set"));

    int64_t nstat = per_feature ? train->dim : 1;
    syn_norm_stats *st;
    SYN_TRY(syn__norm_stats_alloc(nstat, "dataset standardize", &st));
    double *mean = st->mean, *sd = st->std;
    /* Two passes in double: the one-pass E[x^2]-E[x]^2 cancels badly when the
     * mean is large against the spread (pixel data, timestamps). */
    for (int64_t r = 0; r < train->n; r++) {
        const float *row = train->x + r * train->dim;
        for (int64_t j = 0; j < train->dim; j++) mean[per_feature ? j : 0] += row[j];
    }
    double count = per_feature ? (double)train->n : (double)train->n * (double)train->dim;
    for (int64_t k = 0; k < nstat; k++) mean[k] /= count;
    for (int64_t r = 0; r < train->n; r++) {
        const float *row = train->x + r * train->dim;
        for (int64_t j = 0; j < train->dim; j++) {
            int64_t k = per_feature ? j : 0;
            double d = row[j] - mean[k];
            sd[k] += d * d;
        }
    }
    for (int64_t k = 0; k < nstat; k++) {
        sd[k] = sqrt(sd[k] / count);
        /* A constant feature carries no information; dividing by ~0 would
         * only blow up rounding noise, so it is centred and left unscaled. */
        if (sd[k] < 1e-12) sd[k] = 1.0;
    }
    apply(train, mean, sd, per_feature);
    if (other) apply(other, mean, sd, per_feature);
    if (stats) *stats = st;
    else syn_norm_stats_free(st);
    return SYN_OK;
}

syn_status syn_dataset_standardize(syn_dataset *train, syn_dataset *other, bool per_feature) {
    return syn_dataset_standardize_stats(train, other, per_feature, NULL);
}

syn_status syn__norm_stats_check(const syn_norm_stats *st, const char *what) {
    if (st->count < 1 || !st->mean || !st->std)
        return syn__error(SYN_ERR_ARG, "%s: statistics of count %lld%s", what, (long long)st->count,
                          st->mean && st->std ? "" : " with NULL values");
    for (int64_t k = 0; k < st->count; k++)
        if (!isfinite(st->mean[k]) || !isfinite(st->std[k]) || !(st->std[k] > 0))
            return syn__error(SYN_ERR_ARG, "%s: statistic %lld: mean %g, std %g (want finite, std > 0)", what,
                              (long long)k, st->mean[k], st->std[k]);
    return SYN_OK;
}

syn_status syn_dataset_standardize_with(syn_dataset *ds, const syn_norm_stats *st) {
    if (!ds || !st) return syn__error(SYN_ERR_ARG, "dataset standardize: NULL %s", ds ? "statistics" : "dataset");
    if (st->count != 1 && st->count != ds->dim)
        return syn__error(SYN_ERR_SHAPE, "dataset standardize: %lld statistics for %lld features (want 1 or %lld)",
                          (long long)st->count, (long long)ds->dim, (long long)ds->dim);
    SYN_TRY(syn__norm_stats_check(st, "dataset standardize"));
    SYN_TRY(check_finite(ds, "the data set"));
    apply(ds, st->mean, st->std, st->count != 1 || ds->dim == 1);
    return SYN_OK;
}
