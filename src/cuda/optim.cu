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

/* The entry of a fused launch's table (count entries, first blocks ascending)
 * whose chunks this block works on. */
template <class T>
static __device__ int chunk_owner(const T *t, int count) {
    int k = 0;
    while (k + 1 < count && t[k + 1].block0 <= (int)blockIdx.x) k++;
    return k;
}

static __global__ void mt_update_kernel(const mt_args a) {
    const mt_tensor t = a.t[chunk_owner(a.t, a.count)]; /* into registers: the loop reads it often */
    const int64_t start = (int64_t)(blockIdx.x - (unsigned)t.block0) * MT_CHUNK;
    const int64_t end = start + MT_CHUNK < t.n ? start + MT_CHUNK : t.n;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
        if (a.kind == SYN_OPTIM_SGD) sgd_elem(a, t, i);
        else if (a.kind == SYN_OPTIM_RMSPROP) rmsprop_elem(a, t, i);
        else adam_elem(a, t, i);
    }
}

/* Up to MT_MAX buffers of 32-bit words set to zero, a chunk of MT_CHUNK words
 * per block (a parameter set's zero_grad is one launch, not one per tensor). */
typedef struct {
    int count;
    struct {
        uint32_t *p;
        int64_t n;  /* words */
        int block0; /* the buffer's first block in the launch */
    } t[MT_MAX];
} zt_args;

/* t[k].p[0 .. n) = 0 */
static __global__ void zero_many_kernel(const zt_args a) {
    const int k = chunk_owner(a.t, a.count);
    uint32_t *p = a.t[k].p;
    const int64_t start = (int64_t)(blockIdx.x - (unsigned)a.t[k].block0) * MT_CHUNK;
    const int64_t end = start + MT_CHUNK < a.t[k].n ? start + MT_CHUNK : a.t[k].n;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) p[i] = 0u;
}

/* Global-norm clipping over up to MT_MAX gradient buffers per launch, a
 * chunk of MT_CHUNK floats per block, as zero_many: the sum of squares
 * writes one double partial per block (added in block order by
 * syn__final_sum_kernel), the scaling multiplies in place. */
typedef struct {
    int count;
    struct {
        float *p;
        int64_t n;
        int block0;
    } t[MT_MAX];
} ct_args;

static __global__ void sumsq_many_kernel(const ct_args a, double *partials) {
    const int k = chunk_owner(a.t, a.count);
    const float *p = a.t[k].p;
    const int64_t start = (int64_t)(blockIdx.x - (unsigned)a.t[k].block0) * MT_CHUNK;
    const int64_t end = start + MT_CHUNK < a.t[k].n ? start + MT_CHUNK : a.t[k].n;
    double s = 0.0;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) s += (double)p[i] * (double)p[i];
    s = syn__block_sum(s);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/* x *= min(1, max_norm / (sqrt(acc) + 1e-6)), acc a device scalar. Below the
 * limit the gradients stay bit-identical; a NaN norm poisons them. */
static __global__ void clip_many_kernel(const ct_args a, const float *acc, float max_norm) {
    const float coef = max_norm / (sqrtf(acc[0]) + 1e-6f);
    if (coef >= 1.0f) return;
    const int k = chunk_owner(a.t, a.count);
    float *p = a.t[k].p;
    const int64_t start = (int64_t)(blockIdx.x - (unsigned)a.t[k].block0) * MT_CHUNK;
    const int64_t end = start + MT_CHUNK < a.t[k].n ? start + MT_CHUNK : a.t[k].n;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) p[i] *= coef;
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
    zt_args z;
    memset(&z, 0, sizeof z);
    int blocks = 0;
    for (int i = 0; i <= count; i++) {
        if (z.count == MT_MAX || (i == count && z.count > 0)) {
            zero_many_kernel<<<(unsigned)blocks, SYN_CUDA_THREADS, 0, s>>>(z);
            SYN_CUDA_TRY(cudaGetLastError());
            z.count = 0;
            blocks = 0;
        }
        if (i == count) break;
        if (bytes[i] == 0) continue;
        const int64_t words = (int64_t)(bytes[i] / 4), chunks = (words + MT_CHUNK - 1) / MT_CHUNK;
        if (bytes[i] % 4 || (uintptr_t)dst[i] % 4 || chunks > (int64_t)(1u << 30) - blocks) {
            SYN_CUDA_TRY(cudaMemsetAsync(dst[i], 0, bytes[i], s));
            continue;
        }
        z.t[z.count].p = (uint32_t *)dst[i];
        z.t[z.count].n = words;
        z.t[z.count].block0 = blocks;
        z.count++;
        blocks += (int)chunks;
    }
    return SYN_OK;
}

/* Fills t with the next buffers of x (from *i on) while they fit one launch;
 * returns the launch's blocks (0: nothing left). */
static syn_status ct_gather(float *const *x, const int64_t *n, int count, int *i, ct_args *t, int *blocks) {
    memset(t, 0, sizeof *t);
    *blocks = 0;
    for (; *i < count && t->count < MT_MAX; (*i)++) {
        if (n[*i] < 0 || (n[*i] > 0 && !x[*i])) return syn__error(SYN_ERR_ARG, "cuda clipping: bad buffer %d", *i);
        const int64_t chunks = (n[*i] + MT_CHUNK - 1) / MT_CHUNK;
        if (chunks == 0) continue;
        if (chunks > (int64_t)(1u << 30) - *blocks)
            return syn__error(SYN_ERR_ARG, "cuda clipping: a buffer of %lld floats", (long long)n[*i]);
        t->t[t->count].p = x[*i];
        t->t[t->count].n = n[*i];
        t->t[t->count].block0 = *blocks;
        t->count++;
        *blocks += (int)chunks;
    }
    return SYN_OK;
}

/* *acc = (float)((double)*acc + sum of x^2) per launch of up to MT_MAX
 * buffers: deterministic (fixed chunks, partials added in order) */
syn_status syn__cuda_sumsq(syn_backend *be, const float *const *x, const int64_t *n, int count, float *acc) {
    if ((!x || !n) && count > 0) return syn__error(SYN_ERR_ARG, "cuda sumsq: bad arguments");
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    for (int i = 0; i < count;) {
        ct_args t;
        int blocks;
        SYN_TRY(ct_gather((float *const *)x, n, count, &i, &t, &blocks));
        if (blocks == 0) continue;
        double *part;
        SYN_TRY(be->workspace(be, (size_t)blocks * sizeof *part, (void **)&part));
        sumsq_many_kernel<<<(unsigned)blocks, SYN_CUDA_THREADS, 0, cu->stream>>>(t, part);
        SYN_CUDA_TRY(cudaGetLastError());
        syn__final_sum_kernel<<<1, SYN_CUDA_THREADS, 0, cu->stream>>>(part, blocks, acc, 1.0, 1);
        SYN_CUDA_TRY(cudaGetLastError());
    }
    return SYN_OK;
}

/* x[k] *= min(1, max_norm / (sqrt(*acc) + 1e-6)), reading acc on the device */
syn_status syn__cuda_clip_scale(syn_backend *be, float *const *x, const int64_t *n, int count, const float *acc,
                                float max_norm) {
    if ((!x || !n) && count > 0) return syn__error(SYN_ERR_ARG, "cuda clip_scale: bad arguments");
    SYN_CUDA_ENTER(be);
    for (int i = 0; i < count;) {
        ct_args t;
        int blocks;
        SYN_TRY(ct_gather(x, n, count, &i, &t, &blocks));
        if (blocks == 0) continue;
        clip_many_kernel<<<(unsigned)blocks, SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(t, acc, max_norm);
        SYN_CUDA_TRY(cudaGetLastError());
    }
    return SYN_OK;
}

} /* extern "C" */
