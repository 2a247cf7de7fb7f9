/* Optimizer updates on CUDA (SGD, RMSProp, Adam, AdamW), fused: one launch
 * for up to MT_MAX parameter tensors; and the two halves of global-norm
 * clipping, the same arithmetic as src/cpu/optim.c: per-element
 * float in torch.optim's order, step-dependent scalars computed once on the
 * host in double. The CUDA files build with --fmad=false, so these match the
 * CPU to the bit. */
#include <math.h>
#include <string.h>
#include "cuda_common.h"

/* ---- the fused update -------------------------------------------------------

 * One launch updates up to MT_MAX parameter tensors of one optimizer (a
 * parameter set's step is a launch or two, not one per tensor): their
 * pointers and step-dependent scalars travel in the kernel's arguments, and
 * each block updates one chunk of MT_CHUNK elements of one tensor. */
#define MT_MAX 24
#define MT_CHUNK 16384

typedef struct {
    float *p;
    const float *g;
    float *s1, *s2;
    int64_t n;
    float step_size, bc2_sqrt; /* Adam: lr / (1 - b1^t), sqrt(1 - b2^t) */
    int first;                 /* SGD: the first step (the momentum buffer starts at g') */
    int block0;                /* the tensor's first block in the launch */
} mt_tensor;

typedef struct {
    int kind, count, nesterov, decoupled;
    float lr, wd, mu, alpha, one_m_alpha, eps, decay, b1c, b2, b2c;
    mt_tensor t[MT_MAX];
} mt_args;

/* g' = g + wd p; v = first ? g' : mu v + g'; d = nesterov ? g' + mu v : v; p -= lr d */
static __device__ void sgd_elem(const mt_args &a, const mt_tensor &t, int64_t i) {
    float d = t.g[i];
    if (a.wd != 0.0f) d += a.wd * t.p[i];
    if (t.s1) {
        float b = t.first ? d : a.mu * t.s1[i] + d;
        t.s1[i] = b;
        d = a.nesterov ? d + a.mu * b : b;
    }
    t.p[i] -= a.lr * d;
}

/* g' = g + wd p; s = alpha s + (1 - alpha) g'^2; p -= lr g' / (sqrt(s) + eps) */
static __device__ void rmsprop_elem(const mt_args &a, const mt_tensor &t, int64_t i) {
    float d = t.g[i];
    if (a.wd != 0.0f) d += a.wd * t.p[i];
    float si = t.s1[i] * a.alpha + a.one_m_alpha * d * d;
    t.s1[i] = si;
    t.p[i] -= a.lr * (d / (sqrtf(si) + a.eps));
}

/* AdamW first: p *= decay; Adam: g' = g + wd p; m = lerp(m, g', 1 - b1);
 * v = b2 v + (1 - b2) g'^2; p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static __device__ void adam_elem(const mt_args &a, const mt_tensor &t, int64_t i) {
    float pi = t.p[i];
    if (a.decoupled) pi *= a.decay;
    float d = t.g[i];
    if (a.wd != 0.0f) d += a.wd * pi;
    /* torch.lerp's two branches keep it exact at both ends */
    float mi = a.b1c < 0.5f ? t.s1[i] + a.b1c * (d - t.s1[i]) : d - (d - t.s1[i]) * (1.0f - a.b1c);
    float vi = t.s2[i] * a.b2 + a.b2c * d * d;
    t.s1[i] = mi;
    t.s2[i] = vi;
    float denom = sqrtf(vi) / t.bc2_sqrt + a.eps;
    t.p[i] = pi - t.step_size * (mi / denom);
}

/* The entry of a fused launch's table (count entries with n elements from
 * block block0 on, ascending) whose chunk this block works on, and that
 * chunk's element range [*start, *end). */
template <class T>
static __device__ int chunk_span(const T *t, int count, int64_t *start, int64_t *end) {
    int k = 0;
    while (k + 1 < count && t[k + 1].block0 <= (int)blockIdx.x) k++;
    *start = (int64_t)(blockIdx.x - (unsigned)t[k].block0) * MT_CHUNK;
    *end = *start + MT_CHUNK < t[k].n ? *start + MT_CHUNK : t[k].n;
    return k;
}

static __global__ void mt_update_kernel(const mt_args a) {
    int64_t start, end;
    const mt_tensor t = a.t[chunk_span(a.t, a.count, &start, &end)]; /* into registers: the loop reads it often */
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
        if (a.kind == SYN_OPTIM_SGD) sgd_elem(a, t, i);
        else if (a.kind == SYN_OPTIM_RMSPROP) rmsprop_elem(a, t, i);
        else adam_elem(a, t, i);
    }
}

/* Up to MT_MAX buffers of 4-byte elements for one fused launch, a chunk of
 * MT_CHUNK elements per block: a parameter set's zero_grad and the two halves
 * of its gradient clipping are a launch or two, not one per tensor. */
typedef struct {
    int count;
    struct {
        void *p;
        int64_t n;  /* elements */
        int block0; /* the buffer's first block in the launch */
    } t[MT_MAX];
} bt_args;

/* t[k].p[0 .. n) = 0 (as 32-bit words) */
static __global__ void zero_many_kernel(const bt_args a) {
    int64_t start, end;
    uint32_t *p = (uint32_t *)a.t[chunk_span(a.t, a.count, &start, &end)].p;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) p[i] = 0u;
}

/* The sum of squares writes one double partial per block (added in block
 * order by syn__final_sum_kernel); the scaling multiplies in place. */
static __global__ void sumsq_many_kernel(const bt_args a, double *partials) {
    int64_t start, end;
    const float *p = (const float *)a.t[chunk_span(a.t, a.count, &start, &end)].p;
    double s = 0.0;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) s += (double)p[i] * (double)p[i];
    s = syn__block_sum(s);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/* x *= min(1, max_norm / (sqrt(acc) + 1e-6)), acc a device scalar. Below the
 * limit the gradients stay bit-identical; a NaN norm poisons them. */
static __global__ void clip_many_kernel(const bt_args a, const float *acc, float max_norm) {
    const float coef = max_norm / (sqrtf(acc[0]) + 1e-6f);
    if (coef >= 1.0f) return;
    int64_t start, end;
    float *p = (float *)a.t[chunk_span(a.t, a.count, &start, &end)].p;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) p[i] *= coef;
}

/* ---- fused launches over buffer tables (host) ------------------------------ */

/* Blocks a buffer of n elements takes in a fused launch. */
static int64_t chunks_of(int64_t n) { return (n + MT_CHUNK - 1) / MT_CHUNK; }

/* Gathers buffers into tables of MT_MAX (at most 2^30 blocks a launch) and
 * calls launch(table, blocks) for each. get(i, &p, &n) gives buffer i (n 0:
 * nothing to do for it); a buffer of over 2^30 blocks is an error. */
template <class Get, class Launch>
static syn_status bt_launches(int count, const char *what, Get get, Launch launch) {
    bt_args t;
    memset(&t, 0, sizeof t);
    int blocks = 0;
    for (int i = 0; i < count; i++) {
        void *p = NULL;
        int64_t n = 0;
        SYN_TRY(get(i, &p, &n));
        if (n <= 0) continue;
        const int64_t chunks = chunks_of(n);
        if (t.count == MT_MAX || chunks > (int64_t)(1u << 30) - blocks) { /* launch what is gathered */
            if (t.count > 0) SYN_TRY(launch(t, blocks));
            t.count = 0;
            blocks = 0;
            if (chunks > (int64_t)(1u << 30))
                return syn__error(SYN_ERR_ARG, "cuda %s: a buffer of %lld elements", what, (long long)n);
        }
        t.t[t.count].p = p;
        t.t[t.count].n = n;
        t.t[t.count].block0 = blocks;
        t.count++;
        blocks += (int)chunks;
    }
    return t.count > 0 ? launch(t, blocks) : SYN_OK;
}

/* buffer i of a clipping call, checked */
static syn_status clip_buffer(const float *const *x, const int64_t *n, int i, void **p, int64_t *len) {
    if (n[i] < 0 || (n[i] > 0 && !x[i])) return syn__error(SYN_ERR_ARG, "cuda clipping: bad buffer %d", i);
    *p = (void *)x[i];
    *len = n[i];
    return SYN_OK;
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

/* The scalars every tensor of the launch shares, from the first's config. */
static mt_args mt_common(const syn__optim_args *a) {
    mt_args m;
    memset(&m, 0, sizeof m);
    m.kind = (int)a->kind;
    m.nesterov = a->nesterov;
    m.decoupled = a->kind == SYN_OPTIM_ADAMW;
    m.lr = a->lr;
    m.mu = a->momentum;
    m.alpha = a->alpha;
    m.one_m_alpha = (float)(1.0 - (double)a->alpha);
    m.eps = a->eps;
    m.b1c = (float)(1.0 - (double)a->beta1);
    m.b2 = a->beta2;
    m.b2c = (float)(1.0 - (double)a->beta2);
    m.decay = m.decoupled ? (float)(1.0 - (double)a->lr * (double)a->weight_decay) : 1.0f;
    m.wd = m.decoupled ? 0.0f : a->weight_decay;
    return m;
}

/* One tensor's entry: its buffers and step-dependent scalars (host, double). */
static syn_status mt_tensor_of(const syn__optim_args *a, mt_tensor *t) {
    if (!a->p || !a->g || a->n < 0) return syn__error(SYN_ERR_ARG, "cuda optim_update: bad arguments");
    if (a->kind == SYN_OPTIM_RMSPROP && !a->s1)
        return syn__error(SYN_ERR_ARG, "cuda optim_update: RMSProp without its state buffer");
    if ((a->kind == SYN_OPTIM_ADAM || a->kind == SYN_OPTIM_ADAMW) && (!a->s1 || !a->s2))
        return syn__error(SYN_ERR_ARG, "cuda optim_update: Adam without its state buffers");
    if (a->kind != SYN_OPTIM_SGD && a->kind != SYN_OPTIM_RMSPROP && a->kind != SYN_OPTIM_ADAM &&
        a->kind != SYN_OPTIM_ADAMW)
        return syn__error(SYN_ERR_ARG, "cuda optim_update: unknown optimizer kind %d", (int)a->kind);
    const double t_ = (double)(a->step > 0 ? a->step : 1);
    t->p = a->p;
    t->g = a->g;
    t->s1 = a->s1;
    t->s2 = a->s2;
    t->n = a->n;
    t->first = a->step <= 1;
    t->step_size = (float)((double)a->lr / (1.0 - pow((double)a->beta1, t_)));
    t->bc2_sqrt = (float)sqrt(1.0 - pow((double)a->beta2, t_));
    return SYN_OK;
}

syn_status syn__cuda_optim_update(syn_backend *be, const syn__optim_args *a, int count) {
    if ((!a && count > 0) || count < 0) return syn__error(SYN_ERR_ARG, "cuda optim_update: bad arguments");
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    mt_args m = count > 0 ? mt_common(&a[0]) : mt_args{};
    int blocks = 0;
    for (int i = 0; i <= count; i++) {
        /* launch what is gathered when the table is full, and at the end */
        if (m.count == MT_MAX || (i == count && m.count > 0)) {
            mt_update_kernel<<<(unsigned)blocks, SYN_CUDA_THREADS, 0, s>>>(m);
            SYN_CUDA_TRY(cudaGetLastError());
            m.count = 0;
            blocks = 0;
        }
        if (i == count) break;
        if (a[i].kind != a[0].kind) return syn__error(SYN_ERR_ARG, "cuda optim_update: one optimizer kind per call");
        mt_tensor t;
        SYN_TRY(mt_tensor_of(&a[i], &t));
        const int64_t chunks = (t.n + MT_CHUNK - 1) / MT_CHUNK;
        if (chunks == 0) continue;
        if (chunks > (int64_t)(1u << 30) - blocks)
            return syn__error(SYN_ERR_ARG, "cuda optim_update: a tensor of %lld elements", (long long)t.n);
        t.block0 = blocks;
        blocks += (int)chunks;
        m.t[m.count++] = t;
    }
    return SYN_OK;
}

/* dst[i][0 .. bytes[i]) = 0: buffers of whole aligned words go MT_MAX to a
 * launch; any other (none in a parameter set) gets its own memset. */
syn_status syn__cuda_zero_many(syn_backend *be, void *const *dst, const size_t *bytes, int count) {
    if ((!dst || !bytes) && count > 0) return syn__error(SYN_ERR_ARG, "cuda zero_many: bad arguments");
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    return bt_launches(
        count, "zero_many",
        [&](int i, void **p, int64_t *n) -> syn_status {
            *p = dst[i];
            *n = (int64_t)(bytes[i] / 4);
            if (bytes[i] % 4 || (uintptr_t)dst[i] % 4 || chunks_of(*n) > (int64_t)(1u << 30)) {
                *n = 0;
                if (bytes[i]) SYN_CUDA_TRY(cudaMemsetAsync(dst[i], 0, bytes[i], s));
            }
            return SYN_OK;
        },
        [&](const bt_args &t, int blocks) -> syn_status {
            zero_many_kernel<<<(unsigned)blocks, SYN_CUDA_THREADS, 0, s>>>(t);
            SYN_CUDA_TRY(cudaGetLastError());
            return SYN_OK;
        });
}

/* *acc = (float)((double)*acc + sum of x^2) per launch of up to MT_MAX
 * buffers: deterministic (fixed chunks, partials added in order) */
syn_status syn__cuda_sumsq(syn_backend *be, const float *const *x, const int64_t *n, int count, float *acc) {
    if ((!x || !n) && count > 0) return syn__error(SYN_ERR_ARG, "cuda sumsq: bad arguments");
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    return bt_launches(
        count, "sumsq", [&](int i, void **p, int64_t *len) { return clip_buffer(x, n, i, p, len); },
        [&](const bt_args &t, int blocks) -> syn_status {
            double *part;
            SYN_TRY(be->workspace(be, (size_t)blocks * sizeof *part, (void **)&part));
            sumsq_many_kernel<<<(unsigned)blocks, SYN_CUDA_THREADS, 0, cu->stream>>>(t, part);
            SYN_CUDA_TRY(cudaGetLastError());
            syn__final_sum_kernel<<<1, SYN_CUDA_THREADS, 0, cu->stream>>>(part, blocks, acc, 1.0, 1);
            SYN_CUDA_TRY(cudaGetLastError());
            return SYN_OK;
        });
}

/* x[k] *= min(1, max_norm / (sqrt(*acc) + 1e-6)), reading acc on the device */
syn_status syn__cuda_clip_scale(syn_backend *be, float *const *x, const int64_t *n, int count, const float *acc,
                                float max_norm) {
    if ((!x || !n) && count > 0) return syn__error(SYN_ERR_ARG, "cuda clip_scale: bad arguments");
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    return bt_launches(
        count, "clip_scale", [&](int i, void **p, int64_t *len) { return clip_buffer(x, n, i, p, len); },
        [&](const bt_args &t, int blocks) -> syn_status {
            clip_many_kernel<<<(unsigned)blocks, SYN_CUDA_THREADS, 0, s>>>(t, acc, max_norm);
            SYN_CUDA_TRY(cudaGetLastError());
            return SYN_OK;
        });
}

} /* extern "C" */
