/* Reductions on CUDA: sum and mean over a set of axes, softmax and log-softmax
 * along one axis, forward and backward, as src/cpu/reduce.c. Every reduction
 * has a fixed summation order (one thread, warp or block per output, no
 * atomics), so results are deterministic run to run. */
#include <math.h>
#include "cuda_common.h"

/* ---- device helpers -------------------------------------------------------- */

/* sum/mean forward: the input's kept dims (in output order) and reduced dims,
 * each with its input stride. */
struct red_plan {
    int nk, nr;
    int64_t kdim[SYN_MAX_DIMS], kstride[SYN_MAX_DIMS];
    int64_t rdim[SYN_MAX_DIMS], rstride[SYN_MAX_DIMS];
    int64_t R; /* elements reduced into each output */
};

/* sum/mean backward: input dims and the output stride of each (0 if reduced). */
struct bwd_plan {
    int nd;
    int64_t dim[SYN_MAX_DIMS], ostride[SYN_MAX_DIMS];
};

/* Input offset of output element o at reduction position 0. */
static __device__ __forceinline__ int64_t red_base(const red_plan &p, int64_t o) {
    int64_t off = 0;
    for (int d = p.nk - 1; d >= 0; d--) {
        off += (o % p.kdim[d]) * p.kstride[d];
        o /= p.kdim[d];
    }
    return off;
}

/* Offset of reduction position r (row-major over the reduced dims: r ascending
 * is input order ascending, the order of the CPU's loop). */
static __device__ __forceinline__ int64_t red_step(const red_plan &p, int64_t r) {
    int64_t off = 0;
    for (int d = p.nr - 1; d >= 0; d--) {
        off += (r % p.rdim[d]) * p.rstride[d];
        r /= p.rdim[d];
    }
    return off;
}

/* ---- kernels --------------------------------------------------------------- */

/* x: (dims) -> y: (kept dims);  y[o] = scale * sum_r x[o, r]; one thread per
 * output, double accumulation in input order (bit-identical to the CPU). */
static __global__ void reduce_thread_kernel(red_plan p, const float *x, float *y, int64_t ny, double scale) {
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < ny; o += (int64_t)gridDim.x * blockDim.x) {
        int64_t base = red_base(p, o);
        double acc = 0.0;
        for (int64_t r = 0; r < p.R; r++) acc += x[base + red_step(p, r)];
        y[o] = (float)(acc * scale);
    }
}

/* The same with one block per output, for long reductions. */
static __global__ void reduce_block_kernel(red_plan p, const float *x, float *y, int64_t ny, double scale) {
    for (int64_t o = blockIdx.x; o < ny; o += gridDim.x) {
        int64_t base = red_base(p, o);
        double acc = 0.0;
        for (int64_t r = threadIdx.x; r < p.R; r += blockDim.x) acc += x[base + red_step(p, r)];
        acc = syn__block_sum(acc);
        if (threadIdx.x == 0) y[o] = (float)(acc * scale);
    }
}

/* dx[i] += dy[out(i)] * scale */
static __global__ void reduce_bwd_kernel(bwd_plan p, const float *dy, float *dx, int64_t nx, float scale, int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nx; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = 0, t = i;
        for (int d = p.nd - 1; d >= 0; d--) {
            o += (t % p.dim[d]) * p.ostride[d];
            t /= p.dim[d];
        }
        syn__grad_put(&dx[i], add, dy[o] * scale);
    }
}

/* x: (rows, C) -> y: (rows, C), one warp per row (inner == 1):
 * softmax: y = exp(x - max) / sum exp(x - max);  log: y = (x - max) - log sum exp(x - max) */
template <bool LOG>
static __global__ void softmax_warp_kernel(const float *x, float *y, int64_t rows, int64_t C) {
    const int lane = threadIdx.x & 31, wpb = blockDim.x >> 5;
    for (int64_t row = (int64_t)blockIdx.x * wpb + (threadIdx.x >> 5); row < rows; row += (int64_t)gridDim.x * wpb) {
        const float *px = x + row * C;
        float *py = y + row * C;
        float mx = -INFINITY;
        for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, px[c]);
        mx = syn__warp_max(mx);
        double s = 0.0;
        for (int64_t c = lane; c < C; c += 32) s += exp((double)(px[c] - mx));
        s = syn__warp_sum(s);
        if (LOG) { /* (x - max) first, as the CPU: max + log(s) would round away ~3e-5 near |x| ~ 1000 */
            float ls = (float)log(s);
            for (int64_t c = lane; c < C; c += 32) py[c] = (px[c] - mx) - ls;
        } else {
            float inv = (float)(1.0 / s);
            for (int64_t c = lane; c < C; c += 32) py[c] = expf(px[c] - mx) * inv;
        }
    }
}

/* x: (outer, C, inner) -> y, one thread per (outer, inner) column looping over C
 * in the CPU's order (coalesced across inner). */
template <bool LOG>
static __global__ void softmax_strided_kernel(const float *x, float *y, int64_t outer, int64_t C, int64_t inner) {
    int64_t n = outer * inner;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = t / inner, j = t % inner;
        const float *px = x + o * C * inner + j;
        float *py = y + o * C * inner + j;
        float mx = -INFINITY;
        for (int64_t c = 0; c < C; c++) mx = fmaxf(mx, px[c * inner]);
        double s = 0.0;
        for (int64_t c = 0; c < C; c++) s += exp((double)(px[c * inner] - mx));
        if (LOG) {
            float ls = (float)log(s);
            for (int64_t c = 0; c < C; c++) py[c * inner] = (px[c * inner] - mx) - ls;
        } else {
            float inv = (float)(1.0 / s);
            for (int64_t c = 0; c < C; c++) py[c * inner] = expf(px[c * inner] - mx) * inv;
        }
    }
}

/* softmax: dx += y (dy - sum(dy y));  log-softmax: dx += dy - exp(y) sum(dy); warp per row */
template <bool LOG>
static __global__ void softmax_bwd_warp_kernel(const float *y, const float *dy, float *dx, int64_t rows, int64_t C,
                                               int add) {
    const int lane = threadIdx.x & 31, wpb = blockDim.x >> 5;
    for (int64_t row = (int64_t)blockIdx.x * wpb + (threadIdx.x >> 5); row < rows; row += (int64_t)gridDim.x * wpb) {
        const float *py = y + row * C, *pdy = dy + row * C;
        float *pdx = dx + row * C;
        double s = 0.0;
        for (int64_t c = lane; c < C; c += 32) s += LOG ? (double)pdy[c] : (double)pdy[c] * py[c];
        float fs = (float)syn__warp_sum(s);
        for (int64_t c = lane; c < C; c += 32)
            syn__grad_put(&pdx[c], add, LOG ? pdy[c] - expf(py[c]) * fs : py[c] * (pdy[c] - fs));
    }
}

/* the same along a strided axis: one thread per (outer, inner) column */
template <bool LOG>
static __global__ void softmax_bwd_strided_kernel(const float *y, const float *dy, float *dx, int64_t outer, int64_t C,
                                                  int64_t inner, int add) {
    int64_t n = outer * inner;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = t / inner, j = t % inner, base = o * C * inner + j;
        double s = 0.0;
        for (int64_t c = 0; c < C; c++) {
            int64_t k = base + c * inner;
            s += LOG ? (double)dy[k] : (double)dy[k] * y[k];
        }
        float fs = (float)s;
        for (int64_t c = 0; c < C; c++) {
            int64_t k = base + c * inner;
            syn__grad_put(&dx[k], add, LOG ? dy[k] - expf(y[k]) * fs : y[k] * (dy[k] - fs));
        }
    }
}

/* x[i], for syn__sum_launch */
struct value_of {
    const float *x;
    __device__ double operator()(int64_t i) const { return x[i]; }
};

/* ---- launchers ------------------------------------------------------------- */

static syn_status reduce_fwd(syn_backend *be, syn_node *n, bool mean) {
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    const syn_shape *xs = &n->in[0]->shape;
    unsigned axes = (unsigned)n->i[0];
    int64_t nx = syn_shape_numel(xs), ny = syn__numel(n);
    if (ny == 0) return SYN_OK;
    red_plan p = red_plan();
    p.R = 1;
    int64_t st = 1, xstride[SYN_MAX_DIMS];
    for (int d = xs->ndim - 1; d >= 0; d--) {
        xstride[d] = st;
        st *= xs->dim[d];
    }
    for (int d = 0; d < xs->ndim; d++) {
        if (axes & (1u << d)) {
            p.rdim[p.nr] = xs->dim[d];
            p.rstride[p.nr++] = xstride[d];
            p.R *= xs->dim[d];
        } else {
            p.kdim[p.nk] = xs->dim[d];
            p.kstride[p.nk++] = xstride[d];
        }
    }
    double scale = mean ? (double)ny / (double)(nx ? nx : 1) : 1.0;
    const float *x = syn__din(n, 0);
    float *y = (float *)n->value;
    if (ny == 1 && nx >= 4096) { /* a full reduction: partials from many blocks, added in a fixed order */
        SYN_CUDA_TRY(syn__sum_launch(syn__cu(be), value_of{x}, nx, y, mean ? (double)nx : 1.0, 0));
        return SYN_OK;
    }
    if (p.R >= 256) {
        unsigned blocks = (unsigned)(ny < 65535 * 16 ? ny : 65535 * 16);
        reduce_block_kernel<<<blocks, SYN_CUDA_THREADS, 0, s>>>(p, x, y, ny, scale);
    } else {
        reduce_thread_kernel<<<syn__cuda_grid(ny, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(p, x, y, ny, scale);
    }
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

static syn_status reduce_bwd(syn_backend *be, syn_node *n, bool mean) {
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    SYN_CUDA_ENTER(be);
    const syn_shape *xs = &n->in[0]->shape;
    unsigned axes = (unsigned)n->i[0];
    int64_t nx = syn_shape_numel(xs), ny = syn__numel(n);
    if (nx == 0) return SYN_OK;
    bwd_plan p = bwd_plan();
    p.nd = xs->ndim;
    int64_t st = 1;
    for (int d = xs->ndim - 1; d >= 0; d--) {
        p.dim[d] = xs->dim[d];
        if (axes & (1u << d)) p.ostride[d] = 0;
        else {
            p.ostride[d] = st;
            st *= xs->dim[d];
        }
    }
    float scale = mean ? (float)((double)ny / (double)(nx ? nx : 1)) : 1.0f;
    reduce_bwd_kernel<<<syn__cuda_grid(nx, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(
        p, (const float *)n->grad, dx, nx, scale, syn__grad_add(n, 0));
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* (outer, C, inner) around axis n->i[0] */
static void axis_dims(const syn_node *n, int64_t *outer, int64_t *C, int64_t *inner) {
    const syn_shape *s = &n->shape;
    int axis = (int)n->i[0];
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= s->dim[d];
    for (int d = axis + 1; d < s->ndim; d++) *inner *= s->dim[d];
    *C = s->dim[axis];
}

template <bool LOG>
static syn_status softmax_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    int64_t outer, C, inner;
    axis_dims(n, &outer, &C, &inner);
    if (outer * C * inner == 0) return SYN_OK;
    const float *x = syn__din(n, 0);
    float *y = (float *)n->value;
    if (inner == 1)
        softmax_warp_kernel<LOG><<<syn__cuda_grid(outer, SYN_CUDA_THREADS / 32), SYN_CUDA_THREADS, 0, s>>>(x, y, outer, C);
    else
        softmax_strided_kernel<LOG><<<syn__cuda_grid(outer * inner, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(
            x, y, outer, C, inner);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

template <bool LOG>
static syn_status softmax_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    int64_t outer, C, inner;
    axis_dims(n, &outer, &C, &inner);
    if (outer * C * inner == 0) return SYN_OK;
    const float *y = (const float *)n->value, *dy = (const float *)n->grad;
    if (inner == 1)
        softmax_bwd_warp_kernel<LOG><<<syn__cuda_grid(outer, SYN_CUDA_THREADS / 32), SYN_CUDA_THREADS, 0, s>>>(
            y, dy, dx, outer, C, syn__grad_add(n, 0));
    else
        softmax_bwd_strided_kernel<LOG><<<syn__cuda_grid(outer * inner, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(
            y, dy, dx, outer, C, inner, syn__grad_add(n, 0));
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

/* x: (dims) -> y: dims without (or with size 1 at) the axes in n->i[0] */
syn_status syn__cuda_sum_fwd(syn_backend *be, syn_node *n) { return reduce_fwd(be, n, false); }
syn_status syn__cuda_sum_bwd(syn_backend *be, syn_node *n) { return reduce_bwd(be, n, false); }
syn_status syn__cuda_mean_fwd(syn_backend *be, syn_node *n) { return reduce_fwd(be, n, true); }
syn_status syn__cuda_mean_bwd(syn_backend *be, syn_node *n) { return reduce_bwd(be, n, true); }
/* x: (dims) -> y: (dims), along axis n->i[0] */
syn_status syn__cuda_softmax_fwd(syn_backend *be, syn_node *n) { return softmax_fwd<false>(be, n); }
syn_status syn__cuda_softmax_bwd(syn_backend *be, syn_node *n) { return softmax_bwd<false>(be, n); }
syn_status syn__cuda_log_softmax_fwd(syn_backend *be, syn_node *n) { return softmax_fwd<true>(be, n); }
syn_status syn__cuda_log_softmax_bwd(syn_backend *be, syn_node *n) { return softmax_bwd<true>(be, n); }

} /* extern "C" */
