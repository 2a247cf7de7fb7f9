/* Optimizer updates on CUDA (SGD, RMSProp, Adam, AdamW) and the two halves of
 * global-norm clipping, the same arithmetic as src/cpu/optim.c: per-element
 * float in torch.optim's order, step-dependent scalars computed once on the
 * host in double. The CUDA files build with --fmad=false, so these match the
 * CPU to the bit. */
#include <math.h>
#include "cuda_common.h"

/* ---- kernels --------------------------------------------------------------- */

/* p, g, v: (n) (v NULL when momentum == 0)
 * g' = g + wd p; v = first ? g' : mu v + g'; d = nesterov ? g' + mu v : v; p -= lr d */
static __global__ void sgd_kernel(float *p, const float *g, float *v, int64_t n, float lr, float wd, float mu, int first,
                                  int nesterov) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
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

/* p, g, s: (n);  g' = g + wd p; s = alpha s + (1 - alpha) g'^2; p -= lr g' / (sqrt(s) + eps) */
static __global__ void rmsprop_kernel(float *p, const float *g, float *s, int64_t n, float lr, float wd, float alpha,
                                      float one_m_alpha, float eps) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        float si = s[i] * alpha + one_m_alpha * d * d;
        s[i] = si;
        p[i] -= lr * (d / (sqrtf(si) + eps));
    }
}

/* p, g, m, v: (n); AdamW first: p *= decay; Adam: g' = g + wd p
 * m = lerp(m, g', 1 - b1); v = b2 v + (1 - b2) g'^2
 * p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static __global__ void adam_kernel(float *p, const float *g, float *m, float *v, int64_t n, int decoupled, float decay,
                                   float wd, float b1c, float b2, float b2c, float eps, float step_size, float bc2_sqrt) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
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

/* x: (n), acc: device scalar;  x *= min(1, max_norm / (sqrt(acc) + 1e-6)).
 * Below the limit the gradients stay bit-identical; a NaN norm poisons them. */
static __global__ void clip_kernel(float *x, int64_t n, const float *acc, float max_norm) {
    float coef = max_norm / (sqrtf(acc[0]) + 1e-6f);
    if (coef >= 1.0f) return;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] *= coef;
}

/* x^2 in double, for the sum of squares */
struct sq_f {
    const float *x;
    __device__ double operator()(int64_t i) const { return (double)x[i] * (double)x[i]; }
};

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

syn_status syn__cuda_optim_update(syn_backend *be, const syn__optim_args *a) {
    if (!a || !a->p || !a->g || a->n < 0) return syn__error(SYN_ERR_ARG, "cuda optim_update: bad arguments");
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    const int64_t n = a->n;
    if (n == 0) return SYN_OK;
    const unsigned blocks = syn__cuda_grid(n, SYN_CUDA_THREADS);
    switch (a->kind) {
    case SYN_OPTIM_SGD:
        sgd_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(a->p, a->g, a->s1, n, a->lr, a->weight_decay, a->momentum,
                                                       a->step <= 1, a->nesterov);
        break;
    case SYN_OPTIM_RMSPROP:
        if (!a->s1) return syn__error(SYN_ERR_ARG, "cuda optim_update: RMSProp without its state buffer");
        rmsprop_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(a->p, a->g, a->s1, n, a->lr, a->weight_decay, a->alpha,
                                                           (float)(1.0 - (double)a->alpha), a->eps);
        break;
    case SYN_OPTIM_ADAM:
    case SYN_OPTIM_ADAMW: {
        if (!a->s1 || !a->s2) return syn__error(SYN_ERR_ARG, "cuda optim_update: Adam without its state buffers");
        const int decoupled = a->kind == SYN_OPTIM_ADAMW;
        const double t = (double)(a->step > 0 ? a->step : 1);
        const double bc1 = 1.0 - pow((double)a->beta1, t);
        const double bc2 = 1.0 - pow((double)a->beta2, t);
        const float step_size = (float)((double)a->lr / bc1);
        const float bc2_sqrt = (float)sqrt(bc2);
        const float decay = decoupled ? (float)(1.0 - (double)a->lr * (double)a->weight_decay) : 1.0f;
        const float wd = decoupled ? 0.0f : a->weight_decay;
        const float b1c = (float)(1.0 - (double)a->beta1);
        const float b2c = (float)(1.0 - (double)a->beta2);
        adam_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(a->p, a->g, a->s1, a->s2, n, decoupled, decay, wd, b1c, a->beta2,
                                                        b2c, a->eps, step_size, bc2_sqrt);
        break;
    }
    default:
        return syn__error(SYN_ERR_ARG, "cuda optim_update: unknown optimizer kind %d", (int)a->kind);
    }
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* x: (n) -> *acc = (float)((double)*acc + sum x^2), deterministic two-pass sum */
syn_status syn__cuda_sumsq(syn_backend *be, const float *x, int64_t n, float *acc) {
    SYN_CUDA_ENTER(be);
    if (n <= 0) return SYN_OK;
    sq_f f = {x};
    SYN_CUDA_TRY(syn__sum_launch(syn__cu(be), f, n, acc, 1.0, 1));
    return SYN_OK;
}

/* x: (n) -> x *= min(1, max_norm / (sqrt(*acc) + 1e-6)), reading acc on the device */
syn_status syn__cuda_clip_scale(syn_backend *be, float *x, int64_t n, const float *acc, float max_norm) {
    SYN_CUDA_ENTER(be);
    if (n <= 0) return SYN_OK;
    clip_kernel<<<syn__cuda_grid(n, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(x, n, acc, max_norm);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

} /* extern "C" */
