/* Shape ops on CUDA, as src/cpu/shape.c: reshape (a view of its input's
 * buffer, or a device copy where memplan.c did not make it one), transpose (any permutation of up to 6 dims, 4-byte
 * elements: f32 or i32) and concat (one copy kernel per input). Backward rules
 * route dy back with accumulation. */
#include "cuda_common.h"

/* ---- device helpers -------------------------------------------------------- */

/* Output dims and, for each, the input stride it walks: y.dim[d] = x.dim[perm[d]]. */
struct perm_plan {
    int nd;
    int64_t ydim[SYN_MAX_DIMS], xstride[SYN_MAX_DIMS];
};

/* Input offset of output element i. */
static __device__ __forceinline__ int64_t perm_src(const perm_plan &p, int64_t i) {
    int64_t o = 0;
    for (int d = p.nd - 1; d >= 0; d--) {
        o += (i % p.ydim[d]) * p.xstride[d];
        i /= p.ydim[d];
    }
    return o;
}

/* ---- kernels --------------------------------------------------------------- */

/* dx += dy (same layout) */
static __global__ void accumulate_kernel(const float *dy, float *dx, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dx[i] += dy[i];
}

/* x: (dims) -> y: (permuted dims);  y[i] = x[src(i)] (32-bit words: f32 or i32) */
static __global__ void transpose_kernel(perm_plan p, const uint32_t *x, uint32_t *y, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = x[perm_src(p, i)];
}

/* dx[src(i)] += dy[i] (a permutation: no two i share a source, no race) */
static __global__ void transpose_bwd_kernel(perm_plan p, const float *dy, float *dx, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dx[perm_src(p, i)] += dy[i];
}

/* x: (outer, w) -> y: (outer, row) at column col;  y[o, col + j] = x[o, j] */
static __global__ void concat_fwd_kernel(const float *x, float *y, int64_t outer, int64_t w, int64_t row, int64_t col) {
    int64_t n = outer * w;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / w, j = i % w;
        y[o * row + col + j] = x[i];
    }
}

/* dy: (outer, row) -> dx: (outer, w);  dx[o, j] += dy[o, col + j] */
static __global__ void concat_bwd_kernel(const float *dy, float *dx, int64_t outer, int64_t w, int64_t row, int64_t col) {
    int64_t n = outer * w;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / w, j = i % w;
        dx[i] += dy[o * row + col + j];
    }
}

/* ---- launchers ------------------------------------------------------------- */

static cudaError_t accumulate_launch(const float *dy, float *dx, int64_t n, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    accumulate_kernel<<<syn__cuda_grid(n, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(dy, dx, n);
    return cudaGetLastError();
}

static void perm_make(const syn_node *n, perm_plan *p) {
    const syn_shape *x = &n->in[0]->shape;
    int64_t xstride[SYN_MAX_DIMS], st = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        xstride[d] = st;
        st *= x->dim[d];
    }
    *p = perm_plan();
    p->nd = x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        p->ydim[d] = n->shape.dim[d];
        p->xstride[d] = xstride[n->i[d]];
    }
}

/* (outer, inner) around the concat axis */
static void concat_dims(const syn_node *n, int64_t *outer, int64_t *inner) {
    int axis = (int)n->i[0];
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= n->shape.dim[d];
    for (int d = axis + 1; d < n->shape.ndim; d++) *inner *= n->shape.dim[d];
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

/* y = x with another shape (any dtype) */
syn_status syn__cuda_reshape_fwd(syn_backend *be, syn_node *n) {
    size_t bytes = (size_t)syn__numel(n) * syn_dtype_size(n->dtype);
    if (n->value == n->in[0]->value || bytes == 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    SYN_CUDA_TRY(cudaMemcpyAsync(n->value, n->in[0]->value, bytes, cudaMemcpyDeviceToDevice, syn__cu(be)->stream));
    return SYN_OK;
}

/* dx += dy (a fresh dx: dx = dy, a copy) */
syn_status syn__cuda_reshape_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    if (!syn__grad_add(n, 0)) {
        if (dx != n->grad)
            SYN_CUDA_TRY(cudaMemcpyAsync(dx, n->grad, (size_t)syn__numel(n) * sizeof(float), cudaMemcpyDeviceToDevice, s));
        return SYN_OK;
    }
    SYN_CUDA_TRY(accumulate_launch((const float *)n->grad, dx, syn__numel(n), s));
    return SYN_OK;
}

/* x: (d0..dk) -> y: (d_perm[0]..d_perm[k]) */
syn_status syn__cuda_transpose_fwd(syn_backend *be, syn_node *n) {
    int64_t len = syn__numel(n);
    if (len == 0) return SYN_OK;
    if (syn_dtype_size(n->dtype) != 4)
        return syn__error(SYN_ERR_UNSUPPORTED, "transpose: dtype %s on the cuda backend", syn_dtype_name(n->dtype));
    SYN_CUDA_ENTER(be);
    perm_plan p;
    perm_make(n, &p);
    transpose_kernel<<<syn__cuda_grid(len, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(
        p, (const uint32_t *)n->in[0]->value, (uint32_t *)n->value, len);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* dx[src(i)] += dy[i] */
syn_status syn__cuda_transpose_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0);
    int64_t len = syn__numel(n);
    if (!dx || len == 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    perm_plan p;
    perm_make(n, &p);
    transpose_bwd_kernel<<<syn__cuda_grid(len, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(
        p, (const float *)n->grad, dx, len);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* x_k: (outer, d_k, inner) -> y: (outer, sum d_k, inner) = [x0, x1, ...] along axis */
syn_status syn__cuda_concat_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    int64_t outer, inner, axis = n->i[0];
    concat_dims(n, &outer, &inner);
    int64_t row = n->shape.dim[axis] * inner, col = 0;
    float *y = (float *)n->value;
    for (int k = 0; k < n->n_in; k++) {
        int64_t w = n->in[k]->shape.dim[axis] * inner;
        if (w > 0 && outer > 0) {
            concat_fwd_kernel<<<syn__cuda_grid(outer * w, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(syn__din(n, k), y,
                                                                                                     outer, w, row, col);
            SYN_CUDA_TRY(cudaGetLastError());
        }
        col += w;
    }
    return SYN_OK;
}

/* dx_k += the k-th block of dy */
syn_status syn__cuda_concat_bwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    int64_t outer, inner, axis = n->i[0];
    concat_dims(n, &outer, &inner);
    int64_t row = n->shape.dim[axis] * inner, col = 0;
    const float *dy = (const float *)n->grad;
    for (int k = 0; k < n->n_in; k++) {
        int64_t w = n->in[k]->shape.dim[axis] * inner;
        float *dx = syn__dgrad(n, k);
        if (dx && w > 0 && outer > 0) {
            concat_bwd_kernel<<<syn__cuda_grid(outer * w, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(dy, dx, outer, w,
                                                                                                     row, col);
            SYN_CUDA_TRY(cudaGetLastError());
        }
        col += w;
    }
    return SYN_OK;
}

} /* extern "C" */
