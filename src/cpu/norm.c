/* Normalisation on the CPU: batch norm over dim 1 of (N, C, ...), with its
 * fused epilogue (core/fuse.c), and layer norm over the last dim. Statistics
 * accumulate in double; the forward saves the mean and 1/sqrt(var + eps) in
 * n->aux for the backward. */
#include <math.h>
#include <string.h>
#include "cpu.h"

/* ---- batch norm ------------------------------------------------------------
 * x: (N, C, S...)  gamma, beta, running_mean, running_var: (C)  ->  y: like x
 * y = gamma (x - mean) invstd + beta, invstd = 1 / sqrt(var + eps).
 * Training: the batch's mean and biased var over M = N * S values per channel;
 * running stats r = (1 - m) r + m s, with the unbiased var (var M / (M - 1)).
 * Eval: the running stats. Parallel over channels. */

typedef struct {
    int64_t N, C, S;
} bn_geom;

static bn_geom bn_dims(const syn_node *n) {
    const syn_shape *x = &n->in[0]->shape;
    bn_geom d = {x->dim[0], x->dim[1], 1};
    for (int k = 2; k < x->ndim; k++) d.S *= x->dim[k];
    return d;
}

static bool bn_par(const bn_geom *d) { return d->C > 1 && d->N * d->C * d->S > SYN_CPU_PAR_MIN / 8; }

/* The per-channel work is built for each SYN_CPU_CLONES level (the loops over
 * channels stay outside: OpenMP outlines its loop bodies, which target clones
 * do not reach), with its helpers (SYN_INLINE) inlined into each copy. */

/* The fused epilogue (internal.h): y = act(t) of t = bn(x) [+ z], and the
 * gradient reaching t, g = dy through the activation, read from y (leaky
 * relu's slope is > 0, so y > 0 exactly where t > 0), as the relu and leaky
 * relu kernels compute them. */
static inline float epi_fwd(float t, int act, float s) {
    return act == SYN_BN_ACT_RELU ? (t > 0.0f ? t : 0.0f) : act == SYN_BN_ACT_LEAKY ? (t > 0.0f ? t : s * t) : t;
}

/* Runs the body with the constant ACT equal to act: one loop per case. */
#define EPI_CASES(act, ...)                                  \
    do {                                                     \
        if ((act) == SYN_BN_ACT_RELU) {                      \
            const int ACT = SYN_BN_ACT_RELU;                 \
            __VA_ARGS__;                                     \
        } else if ((act) == SYN_BN_ACT_LEAKY) {              \
            const int ACT = SYN_BN_ACT_LEAKY;                \
            __VA_ARGS__;                                     \
        } else {                                             \
            const int ACT = SYN_BN_ACT_NONE;                 \
            __VA_ARGS__;                                     \
        }                                                    \
    } while (0)

/* The backward works through each row in blocks of EPI_BLOCK values (a
 * multiple of SYN_LANES: every value keeps its lane, so the sums are those
 * of one pass over the row), g formed into a block on the stack by a plain
 * loop; the loops over g are the unfused kernel's. */
enum { EPI_BLOCK = 512 };

/* g[i] = dy[i] through the activation act (not NONE), i < n */
SYN_INLINE void epi_grad(float *restrict g, const float *restrict dy, const float *restrict y, int64_t n, int act,
                         float s) {
    if (act == SYN_BN_ACT_RELU)
        for (int64_t i = 0; i < n; i++) {
            const float v = dy[i]; /* loaded first: a select that vectorises, not a branch per value */
            g[i] = y[i] > 0.0f ? v : 0.0f;
        }
    else
        for (int64_t i = 0; i < n; i++) g[i] = dy[i] * (y[i] > 0.0f ? 1.0f : s);
}

/* a += dy[i]; b += dy[i] ((x[i] - m) is) for i < n */
SYN_INLINE void lanes_add_bwd(syn__lanes *a, syn__lanes *b, const float *restrict dyp, const float *restrict xp,
                              int64_t n, float m, float is) {
    int64_t i = 0;
    for (; i + SYN_LANES <= n; i += SYN_LANES)
        for (int j = 0; j < SYN_LANES; j++) {
            a->v[j] += dyp[i + j];
            b->v[j] += (double)dyp[i + j] * ((xp[i + j] - m) * is);
        }
    for (int j = 0; i < n; i++, j++) {
        a->v[j] += dyp[i];
        b->v[j] += (double)dyp[i] * ((xp[i] - m) * is);
    }
}

/* yp = act(a xp + b0 [+ zp]) over one row of n values */
SYN_INLINE void bn_row(float *restrict yp, const float *restrict xp, const float *restrict zp, int64_t n, float a,
                       float b0, int act, float s) {
    EPI_CASES(act, {
        if (zp)
            for (int64_t i = 0; i < n; i++) yp[i] = epi_fwd(a * xp[i] + b0 + zp[i], ACT, s);
        else
            for (int64_t i = 0; i < n; i++) yp[i] = epi_fwd(a * xp[i] + b0, ACT, s);
    });
}

typedef struct {
    bn_geom d;
    bool train;
    int act;
    float mom, eps, slope;
    const float *x, *gamma, *beta, *z;
    float *rmean, *rvar, *y, *mean, *invstd;
} bn_fwd_job;

/* Channel c: its statistics (training) or the running ones, then y. */
SYN_CPU_CLONES static void bn_fwd_channel(const bn_fwd_job *j, int64_t c) {
    const bn_geom d = j->d;
    const int64_t M = d.N * d.S;
    const float *x = j->x;
    double mu, var;
    if (j->train) {
        syn__lanes s = {{0}}, s2 = {{0}};
        for (int64_t b = 0; b < d.N; b++) syn__lanes_add(&s, x + (b * d.C + c) * d.S, d.S, false, 0.0);
        mu = syn__lanes_total(&s) / (double)M;
        for (int64_t b = 0; b < d.N; b++) syn__lanes_add(&s2, x + (b * d.C + c) * d.S, d.S, true, mu);
        var = syn__lanes_total(&s2) / (double)M;
        j->rmean[c] = (float)((1.0 - j->mom) * j->rmean[c] + j->mom * mu);
        j->rvar[c] = (float)((1.0 - j->mom) * j->rvar[c] + j->mom * var * (double)M / (double)(M - 1));
    } else {
        mu = j->rmean[c];
        var = j->rvar[c];
    }
    float m = (float)mu, is = (float)(1.0 / sqrt(var + j->eps));
    j->mean[c] = m;
    j->invstd[c] = is;
    float a = j->gamma[c] * is, b0 = j->beta[c] - a * m; /* y = a x + b0 */
    for (int64_t b = 0; b < d.N; b++) {
        const int64_t o = (b * d.C + c) * d.S;
        bn_row(j->y + o, x + o, j->z ? j->z + o : NULL, d.S, a, b0, j->act, j->slope);
    }
}

syn_status syn__cpu_batch_norm_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    bn_geom d = bn_dims(n);
    int64_t M = d.N * d.S;
    bool train = n->g->training;
    n->i[1] = train; /* the backward pass uses the same decision */
    if (train && M < 2) {
        char sb[128];
        return syn__error(SYN_ERR_SHAPE, "batch_norm: training needs more than one value per channel, x is %s",
                          syn_shape_str(&n->in[0]->shape, sb, sizeof sb));
    }
    float *mean = n->aux;
    const bn_fwd_job j = {.d = d,
                          .train = train,
                          .act = (int)n->i[SYN_BN_ACT],
                          .mom = n->f[0],
                          .eps = n->f[1],
                          .slope = n->f[SYN_BN_SLOPE],
                          .x = syn__cin(n, 0),
                          .gamma = syn__cin(n, 1),
                          .beta = syn__cin(n, 2),
                          .z = n->n_in == 6 ? syn__cin(n, 5) : NULL,
                          .rmean = n->in[3]->value,
                          .rvar = n->in[4]->value,
                          .y = n->value,
                          .mean = mean,
                          .invstd = mean + d.C};
#pragma omp parallel for if (bn_par(&d)) schedule(static)
    for (int64_t c = 0; c < d.C; c++) bn_fwd_channel(&j, c);
    return SYN_OK;
}

typedef struct {
    bn_geom d;
    bool train, add_x, add_g, add_b, add_z;
    int act;
    float slope;
    const float *x, *gamma, *dy, *y, *mean, *invstd;
    float *dx, *dgamma, *dbeta, *dz;
} bn_bwd_job;

/* Channel c's gradients. */
SYN_CPU_CLONES static void bn_bwd_channel(const bn_bwd_job *j, int64_t c) {
    const bn_geom d = j->d;
    const int64_t M = d.N * d.S;
    const int act = j->act;
    const float *x = j->x, *dy = j->dy, *y = j->y;
    float *dx = j->dx, *dz = j->dz;
    float gbuf[EPI_BLOCK];
    float m = j->mean[c], is = j->invstd[c];
    syn__lanes ldy = {{0}}, ldyx = {{0}};
    for (int64_t b = 0; b < d.N; b++)
        for (int64_t lo = (b * d.C + c) * d.S, end = lo + d.S; lo < end; lo += EPI_BLOCK) {
            const int64_t len = end - lo < EPI_BLOCK ? end - lo : EPI_BLOCK;
            const float *g = dy + lo;
            if (act != SYN_BN_ACT_NONE) epi_grad(gbuf, dy + lo, y + lo, len, act, j->slope), g = gbuf;
            lanes_add_bwd(&ldy, &ldyx, g, x + lo, len, m, is);
        }
    const double sdy = syn__lanes_total(&ldy), sdyx = syn__lanes_total(&ldyx);
    if (j->dgamma) SYN_GRAD_PUT(j->dgamma[c], j->add_g, (float)sdyx);
    if (j->dbeta) SYN_GRAD_PUT(j->dbeta[c], j->add_b, (float)sdy);
    if (!dx && !dz) return;
    float k = j->gamma[c] * is;
    float mdy = (float)(sdy / (double)M), mdyx = (float)(sdyx / (double)M);
    for (int64_t b = 0; b < d.N; b++)
        for (int64_t lo = (b * d.C + c) * d.S, end = lo + d.S; lo < end; lo += EPI_BLOCK) {
            const int64_t len = end - lo < EPI_BLOCK ? end - lo : EPI_BLOCK;
            const float *restrict xp = x + lo, *restrict g = dy + lo;
            if (act != SYN_BN_ACT_NONE) epi_grad(gbuf, dy + lo, y + lo, len, act, j->slope), g = gbuf;
            if (dz) { /* before dx: dz may be dx (z is x; then both add) */
                float *restrict dzp = dz + lo;
                SYN_GRAD_LOOPS(j->add_z, for (int64_t i = 0; i < len; i++) SYN_GRAD_PUT(dzp[i], add_, g[i]));
            }
            if (!dx) continue;
            float *restrict dxp = dx + lo;
            if (j->train)
                SYN_GRAD_LOOPS(j->add_x, for (int64_t i = 0; i < len; i++)
                                             SYN_GRAD_PUT(dxp[i], add_, k * (g[i] - mdy - (xp[i] - m) * is * mdyx)));
            else
                SYN_GRAD_LOOPS(j->add_x, for (int64_t i = 0; i < len; i++) SYN_GRAD_PUT(dxp[i], add_, k * g[i]));
        }
}

/* g = dy through the fused activation (dy itself without one);
 * xhat = (x - mean) invstd;  dgamma += sum(g xhat);  dbeta += sum(g);
 * training: dx += gamma invstd / M (M g - sum(g) - xhat sum(g xhat));
 * eval (the statistics are constants): dx += gamma invstd g;
 * a fused residual: dz += g. */
syn_status syn__cpu_batch_norm_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    bn_geom d = bn_dims(n);
    for (int k = 3; k < 5; k++) /* the running stats get no gradient: a fresh one is zero */
        if (syn__cgrad(n, k) && !syn__grad_add(n, k)) memset(syn__cgrad(n, k), 0, (size_t)d.C * sizeof(float));
    const float *mean = n->aux;
    float *dz = n->n_in == 6 ? syn__cgrad(n, 5) : NULL;
    const bn_bwd_job j = {.d = d,
                          .train = n->i[1] != 0,
                          .add_x = syn__grad_add(n, 0),
                          .add_g = syn__grad_add(n, 1),
                          .add_b = syn__grad_add(n, 2),
                          .add_z = dz && syn__grad_add(n, 5),
                          .act = (int)n->i[SYN_BN_ACT],
                          .slope = n->f[SYN_BN_SLOPE],
                          .x = syn__cin(n, 0),
                          .gamma = syn__cin(n, 1),
                          .dy = n->grad,
                          .y = n->value,
                          .mean = mean,
                          .invstd = mean + d.C,
                          .dx = syn__cgrad(n, 0),
                          .dgamma = syn__cgrad(n, 1),
                          .dbeta = syn__cgrad(n, 2),
                          .dz = dz};
#pragma omp parallel for if (bn_par(&d)) schedule(static)
    for (int64_t c = 0; c < d.C; c++) bn_bwd_channel(&j, c);
    return SYN_OK;
}

/* ---- layer norm ------------------------------------------------------------
 * x: (..., D)  gamma, beta: (D)  ->  y: like x; per row r of D values:
 * y = gamma (x - mean_r) invstd_r + beta, biased var, invstd = 1/sqrt(var + eps) */

static int64_t ln_cols(const syn_node *n) {
    const syn_shape *x = &n->in[0]->shape;
    return x->dim[x->ndim - 1];
}

syn_status syn__cpu_layer_norm_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t D = ln_cols(n);
    if (D == 0) return SYN_OK;
    int64_t rows = syn__numel(n) / D;
    const float *x = syn__cin(n, 0), *gamma = syn__cin(n, 1), *beta = syn__cin(n, 2);
    float *y = n->value, *mean = n->aux, *invstd = mean + rows;
    float eps = n->f[0];
#pragma omp parallel for if (rows > 1 && rows * D > SYN_CPU_PAR_MIN / 8) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double s = 0, s2 = 0;
        for (int64_t j = 0; j < D; j++) s += xr[j];
        double mu = s / (double)D;
        for (int64_t j = 0; j < D; j++) s2 += ((double)xr[j] - mu) * ((double)xr[j] - mu);
        float m = (float)mu, is = (float)(1.0 / sqrt(s2 / (double)D + eps));
        mean[r] = m;
        invstd[r] = is;
        for (int64_t j = 0; j < D; j++) yr[j] = gamma[j] * ((xr[j] - m) * is) + beta[j];
    }
    return SYN_OK;
}

/* g = dy gamma:  dx += invstd / D (D g - sum(g) - xhat sum(g xhat)) per row;
 * dgamma += sum over rows of dy xhat;  dbeta += sum over rows of dy.
 * dx runs parallel over rows; dgamma and dbeta over columns (no races). */
syn_status syn__cpu_layer_norm_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t D = ln_cols(n);
    if (D == 0) return SYN_OK;
    int64_t rows = syn__numel(n) / D;
    const float *x = syn__cin(n, 0), *gamma = syn__cin(n, 1), *dy = n->grad;
    const float *mean = n->aux, *invstd = mean + rows;
    float *dx = syn__cgrad(n, 0), *dgamma = syn__cgrad(n, 1), *dbeta = syn__cgrad(n, 2);
    bool big = rows * D > SYN_CPU_PAR_MIN / 8;
    if (dx) {
#pragma omp parallel for if (big && rows > 1) schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * D, *dyr = dy + r * D;
            float *dxr = dx + r * D;
            float m = mean[r], is = invstd[r];
            double sg = 0, sgx = 0;
            for (int64_t j = 0; j < D; j++) {
                double gj = (double)dyr[j] * gamma[j];
                sg += gj;
                sgx += gj * ((xr[j] - m) * is);
            }
            float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
            for (int64_t j = 0; j < D; j++) dxr[j] += is * (dyr[j] * gamma[j] - mg - (xr[j] - m) * is * mgx);
        }
    }
    if (dgamma || dbeta) {
#pragma omp parallel for if (big && D > 1) schedule(static)
        for (int64_t j = 0; j < D; j++) {
            double sg = 0, sb = 0;
            for (int64_t r = 0; r < rows; r++) {
                float dv = dy[r * D + j];
                sg += (double)dv * ((x[r * D + j] - mean[r]) * invstd[r]);
                sb += dv;
            }
            if (dgamma) dgamma[j] += (float)sg;
            if (dbeta) dbeta[j] += (float)sb;
        }
    }
    return SYN_OK;
}
