/* Per-channel normalisation of image data sets, sample_shape (C, H, W):
 * statistics computed on a training set (or given), applied in place as
 * x[c] = (x[c] - mean[c]) / std[c]. */
#include <math.h>
#include <stdlib.h>
#include "core/internal.h"
#include "dataset.h"

/* SYN_OK if ds holds images: a 3-D sample_shape whose size is dim. */
static syn_status check_chw(const syn_dataset *ds, const char *op, const char *which) {
    const syn_shape *s = &ds->sample_shape;
    if (s->ndim != 3 || syn_shape_numel(s) != ds->dim || ds->dim < 1) {
        char buf[96];
        return syn__error(SYN_ERR_SHAPE, "%s: %s has sample_shape %s (%lld values per sample); need (C, H, W)",
                          op, which, syn_shape_str(s, buf, sizeof buf), (long long)ds->dim);
    }
    return SYN_OK;
}

static syn_status check_finite(const syn_dataset *ds, const char *op, const char *which) {
    int64_t total = ds->n * ds->dim;
    for (int64_t i = 0; i < total; i++)
        if (!isfinite(ds->x[i]))
            return syn__error(SYN_ERR_FORMAT, "%s: %s in %s (sample %lld, value %lld)", op,
                              isnan(ds->x[i]) ? "NaN" : "inf", which, (long long)(i / ds->dim),
                              (long long)(i % ds->dim));
    return SYN_OK;
}

/* x: (n, C, HW)  ->  x[i, c, :] = (x[i, c, :] - mean[c]) / sd[c] */
static void apply(syn_dataset *ds, const double *mean, const double *sd) {
    int64_t C = ds->sample_shape.dim[0], hw = ds->dim / C;
    for (int64_t i = 0; i < ds->n; i++)
        for (int64_t c = 0; c < C; c++) {
            float *p = ds->x + i * ds->dim + c * hw;
            for (int64_t k = 0; k < hw; k++) p[k] = (float)(((double)p[k] - mean[c]) / sd[c]);
        }
}

syn_status syn_dataset_normalize_channels(syn_dataset *train, syn_dataset *other) {
    static const char op[] = "dataset normalize_channels";
    if (!train) return syn__error(SYN_ERR_ARG, "%s: NULL dataset", op);
    SYN_TRY(check_chw(train, op, "train"));
    if (train->n < 1) return syn__error(SYN_ERR_ARG, "%s: the training set is empty", op);
    if (other && !syn_shape_equal(&other->sample_shape, &train->sample_shape)) {
        char a[96], b[96];
        return syn__error(SYN_ERR_SHAPE, "%s: the other set's sample_shape %s differs from train's %s", op,
                          syn_shape_str(&other->sample_shape, a, sizeof a),
                          syn_shape_str(&train->sample_shape, b, sizeof b));
    }
    if (other) SYN_TRY(check_chw(other, op, "the other set"));
    /* Check both before touching either, so a failure changes nothing. */
    SYN_TRY(check_finite(train, op, "train"));
    if (other) SYN_TRY(check_finite(other, op, "the other set"));

    int64_t C = train->sample_shape.dim[0], hw = train->dim / C;
    double *mean = syn__calloc((size_t)C, sizeof *mean, op), *sd = syn__calloc((size_t)C, sizeof *sd, op);
    if (!mean || !sd) {
        free(mean);
        free(sd);
        return SYN_ERR_OOM;
    }
    /* Two passes in double: E[x^2]-E[x]^2 cancels badly on pixel data. */
    for (int64_t i = 0; i < train->n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float *p = train->x + i * train->dim + c * hw;
            double s = 0;
            for (int64_t k = 0; k < hw; k++) s += p[k];
            mean[c] += s;
        }
    double count = (double)train->n * (double)hw;
    for (int64_t c = 0; c < C; c++) mean[c] /= count;
    for (int64_t i = 0; i < train->n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float *p = train->x + i * train->dim + c * hw;
            double q = 0;
            for (int64_t k = 0; k < hw; k++) q += ((double)p[k] - mean[c]) * ((double)p[k] - mean[c]);
            sd[c] += q;
        }
    for (int64_t c = 0; c < C; c++) {
        sd[c] = sqrt(sd[c] / count);
        /* A constant channel (a blank mask, a grey plane): centre it, do not
         * blow its rounding noise up to unit variance. */
        if (sd[c] < 1e-12) sd[c] = 1.0;
    }
    apply(train, mean, sd);
    if (other) apply(other, mean, sd);
    free(mean);
    free(sd);
    return SYN_OK;
}

syn_status syn_dataset_normalize(syn_dataset *ds, const float *mean, const float *std, int channels) {
    static const char op[] = "dataset normalize";
    if (!ds || !mean || !std) return syn__error(SYN_ERR_ARG, "%s: NULL %s", op, !ds ? "dataset" : "statistics");
    SYN_TRY(check_chw(ds, op, "the dataset"));
    if ((int64_t)channels != ds->sample_shape.dim[0])
        return syn__error(SYN_ERR_SHAPE, "%s: %d channel statistics for samples with %lld channels", op, channels,
                          (long long)ds->sample_shape.dim[0]);
    for (int c = 0; c < channels; c++)
        /* Written as a negation so that NaN is refused too. */
        if (!(std[c] > 0.0f) || !isfinite(std[c]) || !isfinite(mean[c]))
            return syn__error(SYN_ERR_ARG, "%s: channel %d has mean %g, std %g (need a finite mean and std > 0)",
                              op, c, (double)mean[c], (double)std[c]);
    double *m = syn__malloc((size_t)channels * 2 * sizeof *m, op);
    if (!m) return SYN_ERR_OOM;
    for (int c = 0; c < channels; c++) m[c] = mean[c], m[channels + c] = std[c];
    apply(ds, m, m + channels);
    free(m);
    return SYN_OK;
}
