/* The CPU backend's optimizer updates (SGD, RMSProp, Adam, AdamW) and the two
 * halves of global-norm gradient clipping. Per-element arithmetic is float and
 * follows torch.optim's single-tensor code order, so results match PyTorch on
 * the CPU to the last bit or two; step-dependent scalars are computed in double
 * as Python does, then rounded once. */
#include <math.h>
#include <string.h>
#include "cpu.h"

/* p: (n)  g: (n)  v = s1: (n) or NULL when momentum == 0
 * g' = g + wd*p; v = step==1 ? g' : mu*v + g'; d = nesterov ? g' + mu*v : v; p -= lr*d */
static void sgd(const syn__optim_args *a) {
    float *p = a->p, *v = a->s1;
    const float *g = a->g;
    const float lr = a->lr, wd = a->weight_decay, mu = a->momentum;
    const int first = a->step <= 1; /* PyTorch clones the gradient into a fresh buffer */
    const int nesterov = a->nesterov;
    const int64_t n = a->n;
#pragma omp parallel for if(n > SYN_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        if (v) {
            float b = first ? d : mu * v[i] + d;
            v[i] = b;
            d = nesterov ? d + mu * b : b;
        }
        p[i] -= lr * d;
    }
}

/* p, g, s = s1: (n)
 * g' = g + wd*p; s = alpha*s + (1-alpha)*g'^2; p -= lr * g' / (sqrt(s) + eps) */
static void rmsprop(const syn__optim_args *a) {
    float *p = a->p, *s = a->s1;
    const float *g = a->g;
    const float lr = a->lr, wd = a->weight_decay, alpha = a->alpha, eps = a->eps;
    const float one_m_alpha = (float)(1.0 - (double)alpha);
    const int64_t n = a->n;
#pragma omp parallel for if(n > SYN_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        float si = s[i] * alpha + one_m_alpha * d * d;
        s[i] = si;
        p[i] -= lr * (d / (sqrtf(si) + eps));
    }
}

/* p, g, m = s1, v = s2: (n); t = step (1-based), decoupled = AdamW
 * AdamW first: p *= 1 - lr*wd; Adam: g' = g + wd*p
 * m += (1-b1)*(g' - m); v = b2*v + (1-b2)*g'^2
 * p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
static void adam(const syn__optim_args *a, int decoupled) {
    float *p = a->p, *m = a->s1, *v = a->s2;
    const float *g = a->g;
    const double t = (double)(a->step > 0 ? a->step : 1);
    const double bc1 = 1.0 - pow((double)a->beta1, t);
    const double bc2 = 1.0 - pow((double)a->beta2, t);
    /* Python computes these in double; torch rounds them to float at the kernel. */
    const float step_size = (float)((double)a->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float decay = decoupled ? (float)(1.0 - (double)a->lr * (double)a->weight_decay) : 1.0f;
    const float wd = decoupled ? 0.0f : a->weight_decay;
    const float b1c = (float)(1.0 - (double)a->beta1); /* lerp weight */
    const float b2 = a->beta2, b2c = (float)(1.0 - (double)a->beta2), eps = a->eps;
    const int64_t n = a->n;
#pragma omp parallel for if(n > SYN_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i];
        if (decoupled) pi *= decay;
        float d = g[i];
        if (wd != 0.0f) d += wd * pi;
        /* torch.lerp's two branches keep it exact at both ends */
        float mi = b1c < 0.5f ? m[i] + b1c * (d - m[i]) : d - (d - m[i]) * (1.0f - b1c);
        float vi = v[i] * b2 + b2c * d * d;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
    }
}

static syn_status update_one(const syn__optim_args *a) {
    if (!a->p || !a->g || a->n < 0) return syn__error(SYN_ERR_ARG, "cpu optim_update: bad arguments");
    switch (a->kind) {
    case SYN_OPTIM_SGD: sgd(a); return SYN_OK;
    case SYN_OPTIM_RMSPROP:
        if (!a->s1) return syn__error(SYN_ERR_ARG, "cpu optim_update: RMSProp without its state buffer");
        rmsprop(a);
        return SYN_OK;
    case SYN_OPTIM_ADAM:
    case SYN_OPTIM_ADAMW:
        if (!a->s1 || !a->s2) return syn__error(SYN_ERR_ARG, "cpu optim_update: Adam without its state buffers");
        adam(a, a->kind == SYN_OPTIM_ADAMW);
        return SYN_OK;
    }
    return syn__error(SYN_ERR_ARG, "cpu optim_update: unknown optimizer kind %d", (int)a->kind);
}

syn_status syn__cpu_optim_update(syn_backend *be, const syn__optim_args *a, int count) {
    (void)be;
    if ((!a && count > 0) || count < 0) return syn__error(SYN_ERR_ARG, "cpu optim_update: bad arguments");
    for (int i = 0; i < count; i++) SYN_TRY(update_one(&a[i]));
    return SYN_OK;
}

/* dst[i][0 .. bytes[i]) = 0 for each of count buffers */
syn_status syn__cpu_zero_many(syn_backend *be, void *const *dst, const size_t *bytes, int count) {
    (void)be;
    if ((!dst || !bytes) && count > 0) return syn__error(SYN_ERR_ARG, "cpu zero_many: bad arguments");
    for (int i = 0; i < count; i++)
        if (bytes[i]) memset(dst[i], 0, bytes[i]);
    return SYN_OK;
}

/* Partial sums per buffer in syn__cpu_sumsq: at most this many chunks, of
 * at least SUMSQ_CHUNK values. */
#define SUMSQ_PARTS 256
#define SUMSQ_CHUNK 65536

/* x[k]: (n[k])  ->  *acc += sum x^2, each buffer in double with one rounding
 * into acc. A buffer is cut into chunks that depend on its size only, each
 * summed in double lanes, the chunks added in order: the result does not
 * depend on the thread count (an OpenMP reduction's did), and the sum is
 * not one latency-bound chain of adds. */
syn_status syn__cpu_sumsq(syn_backend *be, const float *const *x, const int64_t *n, int count, float *acc) {
    (void)be;
    for (int k = 0; k < count; k++) {
        const float *xk = x[k];
        const int64_t nk = n[k];
        int64_t chunk = (nk + SUMSQ_PARTS - 1) / SUMSQ_PARTS;
        if (chunk < SUMSQ_CHUNK) chunk = SUMSQ_CHUNK;
        const int64_t parts = (nk + chunk - 1) / chunk;
        double part[SUMSQ_PARTS];
#pragma omp parallel for if (parts > 1) schedule(static)
        for (int64_t c = 0; c < parts; c++) {
            syn__lanes l = {{0}};
            int64_t lo = c * chunk, len = nk - lo < chunk ? nk - lo : chunk;
            syn__lanes_add(&l, xk + lo, len, true, 0.0);
            part[c] = syn__lanes_total(&l);
        }
        double s = 0.0;
        for (int64_t c = 0; c < parts; c++) s += part[c];
        *acc = (float)((double)*acc + s);
    }
    return SYN_OK;
}

/* x[k] *= min(1, max_norm / (sqrt(*acc) + 1e-6)), as torch.nn.utils.clip_grad_norm_ */
syn_status syn__cpu_clip_scale(syn_backend *be, float *const *x, const int64_t *n, int count, const float *acc,
                               float max_norm) {
    (void)be;
    float coef = max_norm / (sqrtf(*acc) + 1e-6f);
    /* Below the limit: leave the gradients bit-identical. A NaN norm falls
     * through and poisons them, as in PyTorch, rather than hiding. */
    if (coef >= 1.0f) return SYN_OK;
    for (int k = 0; k < count; k++) {
        float *xk = x[k];
        const int64_t nk = n[k];
#pragma omp parallel for if (nk > SYN_CPU_PAR_MIN)
        for (int64_t i = 0; i < nk; i++) xk[i] *= coef;
    }
    return SYN_OK;
}
