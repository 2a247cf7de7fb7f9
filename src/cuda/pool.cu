/* Pooling on CUDA: max and average pooling over kh x kw windows (floor mode,
 * PyTorch's rules) and adaptive average pooling, as src/cpu/pool.c: the same
 * window scans and float arithmetic in the same order, so results match the
 * CPU bit for bit. Backward passes are gathers (each input element sums the
 * windows that hold it, in the CPU's window order): no atomics, deterministic. */
#include <math.h>
#include "cuda_common.h"

/* ---- device helpers -------------------------------------------------------- */

struct pool_geom {
    int64_t planes, H, W, P, Q; /* planes = N * C */
    int64_t kh, kw, sh, sw, ph, pw;
    int incl;                   /* avg: count_include_pad */
};

/* The window of output (p, q), clipped to the input: rows [h0, h1), cols [w0, w1). */
static __device__ __forceinline__ void window(const pool_geom &g, int64_t p, int64_t q, int64_t *h0, int64_t *h1,
                                              int64_t *w0, int64_t *w1) {
    int64_t hs = p * g.sh - g.ph, ws = q * g.sw - g.pw;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + g.kh < g.H ? hs + g.kh : g.H;
    *w1 = ws + g.kw < g.W ? ws + g.kw : g.W;
}

/* Output rows whose window holds input row h: [*lo, *hi] (empty if lo > hi). */
static __device__ __forceinline__ void windows_of(int64_t h, int64_t k, int64_t s, int64_t pad, int64_t P, int64_t *lo,
                                                  int64_t *hi) {
    /* p s - pad <= h < p s - pad + k */
    int64_t a = h + pad - k + 1;
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t b = (h + pad) / s;
    *hi = b < P - 1 ? b : P - 1;
}

/* Plane index of the window's maximum: the first in scan order, NaN
 * propagating (the CPU's rule); -1 for an empty window. */
static __device__ __forceinline__ int64_t window_argmax(const float *xp, const pool_geom &g, int64_t p, int64_t q) {
    int64_t h0, h1, w0, w1, best = -1;
    window(g, p, q, &h0, &h1, &w0, &w1);
    float m = -INFINITY;
    for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) {
            float v = xp[h * g.W + w];
            if (best < 0 || v > m || isnan(v)) {
                m = v;
                best = h * g.W + w;
            }
        }
    return best;
}

static __device__ __forceinline__ float avg_count(const pool_geom &g, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
    int64_t c = g.incl ? g.kh * g.kw : (h1 - h0) * (w1 - w0);
    return c > 0 ? (float)c : 1.0f;
}

/* Adaptive bins: bin i of `in` covers [floor(i in / out), ceil((i + 1) in / out)). */
static __device__ __forceinline__ int64_t bin_lo(int64_t i, int64_t in, int64_t out) { return i * in / out; }
static __device__ __forceinline__ int64_t bin_hi(int64_t i, int64_t in, int64_t out) {
    return ((i + 1) * in + out - 1) / out;
}

/* ---- kernels --------------------------------------------------------------- */

/* x: (planes, H, W) -> y: (planes, P, Q);  y[p, q] = max over the window */
static __global__ void max_pool_fwd_kernel(pool_geom g, const float *x, float *y, int64_t total) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t q = i % g.Q, p = (i / g.Q) % g.P, pl = i / (g.P * g.Q);
        const float *xp = x + pl * g.H * g.W;
        int64_t a = window_argmax(xp, g, p, q);
        y[i] = a < 0 ? -INFINITY : xp[a];
    }
}

/* dx[h, w] += dy[p, q] for every window (p, q) whose argmax is (h, w), in the
 * CPU's (p, q) order; one thread per input element. */
static __global__ void max_pool_bwd_kernel(pool_geom g, const float *x, const float *dy, float *dx, int64_t total, int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = i % g.W, h = (i / g.W) % g.H, pl = i / (g.H * g.W);
        const float *xp = x + pl * g.H * g.W, *dyp = dy + pl * g.P * g.Q;
        int64_t plo, phi, qlo, qhi, self = h * g.W + w;
        windows_of(h, g.kh, g.sh, g.ph, g.P, &plo, &phi);
        windows_of(w, g.kw, g.sw, g.pw, g.Q, &qlo, &qhi);
        float acc = add ? dx[i] : 0.0f; /* a fresh gradient holds garbage */
        for (int64_t p = plo; p <= phi; p++)
            for (int64_t q = qlo; q <= qhi; q++)
                if (window_argmax(xp, g, p, q) == self) acc += dyp[p * g.Q + q];
        dx[i] = acc;
    }
}

/* y[p, q] = sum over the in-bounds window / count */
static __global__ void avg_pool_fwd_kernel(pool_geom g, const float *x, float *y, int64_t total) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t q = i % g.Q, p = (i / g.Q) % g.P, pl = i / (g.P * g.Q);
        const float *xp = x + pl * g.H * g.W;
        int64_t h0, h1, w0, w1;
        window(g, p, q, &h0, &h1, &w0, &w1);
        float s = 0.0f;
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) s += xp[h * g.W + w];
        y[i] = s / avg_count(g, h0, h1, w0, w1);
    }
}

/* dx[h, w] += dy[p, q] / count for every window (p, q) that holds (h, w) */
static __global__ void avg_pool_bwd_kernel(pool_geom g, const float *dy, float *dx, int64_t total, int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = i % g.W, h = (i / g.W) % g.H, pl = i / (g.H * g.W);
        const float *dyp = dy + pl * g.P * g.Q;
        int64_t plo, phi, qlo, qhi;
        windows_of(h, g.kh, g.sh, g.ph, g.P, &plo, &phi);
        windows_of(w, g.kw, g.sw, g.pw, g.Q, &qlo, &qhi);
        float acc = add ? dx[i] : 0.0f; /* a fresh gradient holds garbage */
        for (int64_t p = plo; p <= phi; p++)
            for (int64_t q = qlo; q <= qhi; q++) {
                int64_t h0, h1, w0, w1;
                window(g, p, q, &h0, &h1, &w0, &w1);
                acc += dyp[p * g.Q + q] / avg_count(g, h0, h1, w0, w1);
            }
        dx[i] = acc;
    }
}

/* x: (planes, H, W) -> y: (planes, P, Q);  y[p, q] = mean over bin (p, q) */
static __global__ void adaptive_fwd_kernel(pool_geom g, const float *x, float *y, int64_t total) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t q = i % g.Q, p = (i / g.Q) % g.P, pl = i / (g.P * g.Q);
        const float *xp = x + pl * g.H * g.W;
        int64_t h0 = bin_lo(p, g.H, g.P), h1 = bin_hi(p, g.H, g.P);
        int64_t w0 = bin_lo(q, g.W, g.Q), w1 = bin_hi(q, g.W, g.Q);
        float s = 0.0f;
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) s += xp[h * g.W + w];
        y[i] = s / (float)((h1 - h0) * (w1 - w0));
    }
}

/* dx[h, w] += dy[p, q] / |bin (p, q)| for every bin that holds (h, w); the
 * bins of row h are p in [floor(h P / H), ceil((h + 1) P / H) - 1], checked. */
static __global__ void adaptive_bwd_kernel(pool_geom g, const float *dy, float *dx, int64_t total, int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = i % g.W, h = (i / g.W) % g.H, pl = i / (g.H * g.W);
        const float *dyp = dy + pl * g.P * g.Q;
        int64_t plo = h * g.P / g.H, phi = ((h + 1) * g.P + g.H - 1) / g.H - 1;
        int64_t qlo = w * g.Q / g.W, qhi = ((w + 1) * g.Q + g.W - 1) / g.W - 1;
        if (phi > g.P - 1) phi = g.P - 1;
        if (qhi > g.Q - 1) qhi = g.Q - 1;
        float acc = add ? dx[i] : 0.0f; /* a fresh gradient holds garbage */
        for (int64_t p = plo; p <= phi; p++) {
            int64_t h0 = bin_lo(p, g.H, g.P), h1 = bin_hi(p, g.H, g.P);
            if (h < h0 || h >= h1) continue;
            for (int64_t q = qlo; q <= qhi; q++) {
                int64_t w0 = bin_lo(q, g.W, g.Q), w1 = bin_hi(q, g.W, g.Q);
                if (w < w0 || w >= w1) continue;
                acc += dyp[p * g.Q + q] / (float)((h1 - h0) * (w1 - w0));
            }
        }
        dx[i] = acc;
    }
}

/* ---- launchers ------------------------------------------------------------- */

static pool_geom geom(const syn_node *n) {
    const syn_shape *x = &n->in[0]->shape;
    pool_geom g;
    g.planes = x->dim[0] * x->dim[1];
    g.H = x->dim[2];
    g.W = x->dim[3];
    g.P = n->shape.dim[2];
    g.Q = n->shape.dim[3];
    bool adaptive = n->op == SYN_OP_ADAPTIVE_AVG_POOL2D;
    g.kh = adaptive ? 0 : n->i[SYN_A_KH];
    g.kw = adaptive ? 0 : n->i[SYN_A_KW];
    g.sh = adaptive ? 1 : n->i[SYN_A_SH];
    g.sw = adaptive ? 1 : n->i[SYN_A_SW];
    g.ph = adaptive ? 0 : n->i[SYN_A_PH];
    g.pw = adaptive ? 0 : n->i[SYN_A_PW];
    g.incl = adaptive ? 0 : n->i[SYN_A_INCL] != 0;
    return g;
}

enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE };

template <int KIND>
static syn_status pool_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    pool_geom g = geom(n);
    int64_t total = g.planes * g.P * g.Q;
    if (total == 0) return SYN_OK;
    unsigned blocks = syn__cuda_grid(total, SYN_CUDA_THREADS);
    cudaStream_t s = syn__cu(be)->stream;
    const float *x = syn__din(n, 0);
    float *y = (float *)n->value;
    if (KIND == POOL_MAX) max_pool_fwd_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(g, x, y, total);
    else if (KIND == POOL_AVG) avg_pool_fwd_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(g, x, y, total);
    else adaptive_fwd_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(g, x, y, total);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

template <int KIND>
static syn_status pool_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    SYN_CUDA_ENTER(be);
    pool_geom g = geom(n);
    int64_t total = g.planes * g.H * g.W;
    if (total == 0 || g.P * g.Q == 0) return SYN_OK;
    unsigned blocks = syn__cuda_grid(total, SYN_CUDA_THREADS);
    cudaStream_t s = syn__cu(be)->stream;
    const float *dy = (const float *)n->grad;
    const int add = syn__grad_add(n, 0);
    /* only max pooling reads x (its flags keep x alive for the backward pass) */
    if (KIND == POOL_MAX) max_pool_bwd_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(g, syn__din(n, 0), dy, dx, total, add);
    else if (KIND == POOL_AVG) avg_pool_bwd_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(g, dy, dx, total, add);
    else adaptive_bwd_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(g, dy, dx, total, add);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

syn_status syn__cuda_max_pool2d_fwd(syn_backend *be, syn_node *n) { return pool_fwd<POOL_MAX>(be, n); }
syn_status syn__cuda_max_pool2d_bwd(syn_backend *be, syn_node *n) { return pool_bwd<POOL_MAX>(be, n); }
syn_status syn__cuda_avg_pool2d_fwd(syn_backend *be, syn_node *n) { return pool_fwd<POOL_AVG>(be, n); }
syn_status syn__cuda_avg_pool2d_bwd(syn_backend *be, syn_node *n) { return pool_bwd<POOL_AVG>(be, n); }
syn_status syn__cuda_adaptive_avg_pool2d_fwd(syn_backend *be, syn_node *n) { return pool_fwd<POOL_ADAPTIVE>(be, n); }
syn_status syn__cuda_adaptive_avg_pool2d_bwd(syn_backend *be, syn_node *n) { return pool_bwd<POOL_ADAPTIVE>(be, n); }

} /* extern "C" */
