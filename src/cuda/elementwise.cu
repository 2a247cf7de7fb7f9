/* Elementwise ops on CUDA: broadcasting add/sub/mul/div, scalar ops, dropout
 * and dropout2d (the CPU's Philox stream, so masks match across devices), detach, and the
 * 32-bit fill behind fill_f32/fill_i32. Same arithmetic as src/cpu/elementwise.c;
 * the backward of a broadcast operand sums in the CPU's order, without atomics. */
#include <math.h>
#include "cuda_common.h"
#include "../core/rng.h"

/* ---- device helpers -------------------------------------------------------- */

/* Output dims padded to nd, with element strides of a and b (0 where broadcast)
 * and the output's own contiguous strides. Passed to kernels by value. */
struct bcast {
    int nd;
    int64_t dim[SYN_MAX_DIMS];
    int64_t sa[SYN_MAX_DIMS], sb[SYN_MAX_DIMS], sy[SYN_MAX_DIMS];
};

/* Offsets of a and b for output element i. */
static __device__ __forceinline__ void bc_offsets(const bcast &bc, int64_t i, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int d = bc.nd - 1; d >= 0; d--) {
        int64_t k = i % bc.dim[d];
        i /= bc.dim[d];
        a += k * bc.sa[d];
        b += k * bc.sb[d];
    }
    *oa = a;
    *ob = b;
}

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

template <int OP>
static __device__ __forceinline__ float binary_apply(float a, float b) {
    if (OP == OP_ADD) return a + b;
    if (OP == OP_SUB) return a - b;
    if (OP == OP_MUL) return a * b;
    return a / b;
}

/* d op / d operand K, times g */
template <int OP, int K>
static __device__ __forceinline__ float binary_deriv(float g, float av, float bv) {
    if (OP == OP_ADD) return g;
    if (OP == OP_SUB) return K == 0 ? g : -g;
    if (OP == OP_MUL) return K == 0 ? g * bv : g * av;
    return K == 0 ? g / bv : -g * av / (bv * bv);
}

/* ---- kernels --------------------------------------------------------------- */

/* y[i] = v (as 32-bit words) */
static __global__ void fill32_kernel(uint32_t *y, uint32_t v, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) y[i] = v;
}

/* a, b broadcast to y: (dims)  ->  y = a op b */
template <int OP>
static __global__ void binary_fwd_kernel(bcast bc, const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t oa, ob;
        bc_offsets(bc, i, &oa, &ob);
        y[i] = binary_apply<OP>(a[oa], b[ob]);
    }
}

/* operand K as large as y: dK[i] += deriv(dy[i], a, b) */
template <int OP, int K>
static __global__ void binary_bwd_full_kernel(bcast bc, const float *a, const float *b, const float *dy, float *dk,
                                              int64_t n, int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t oa, ob;
        bc_offsets(bc, i, &oa, &ob);
        /* add/sub read neither operand (their buffers may be reused by now) */
        float av = OP >= OP_MUL ? a[oa] : 0.0f, bv = OP >= OP_MUL ? b[ob] : 0.0f;
        syn__grad_put(&dk[i], add, binary_deriv<OP, K>(dy[i], av, bv));
    }
}

/* Where operand K (nk elements) meets the output: its element j sits at output
 * offset ybase(j) + r-th broadcast position, r in [0, R). sk is K's strides,
 * so(ther) the other operand's. */
struct bsum {
    bcast bc;
    int nb;                          /* broadcast dims (K has size 1, y more) */
    int64_t bdim[SYN_MAX_DIMS];      /* their sizes */
    int64_t bys[SYN_MAX_DIMS], bos[SYN_MAX_DIMS]; /* their output / other-operand strides */
    int64_t R;                       /* product of bdim */
};

/* Output and other-operand offsets of operand element j at r = 0. */
template <int K>
static __device__ __forceinline__ void bsum_base(const bsum &p, int64_t j, int64_t *oy, int64_t *oo) {
    const int64_t *sk = K == 0 ? p.bc.sa : p.bc.sb, *so = K == 0 ? p.bc.sb : p.bc.sa;
    int64_t y = 0, o = 0;
    for (int d = p.bc.nd - 1; d >= 0; d--) {
        if (sk[d] == 0 && p.bc.dim[d] != 1) continue; /* a broadcast dim: index 0 at the base */
        int64_t size = p.bc.dim[d], k = j % size;
        j /= size;
        y += k * p.bc.sy[d];
        o += k * so[d];
    }
    *oy = y;
    *oo = o;
}

/* Offsets added by broadcast position r (row-major over the broadcast dims,
 * so r ascending = output offset ascending, the CPU's order). */
static __device__ __forceinline__ void bsum_step(const bsum &p, int64_t r, int64_t *oy, int64_t *oo) {
    int64_t y = 0, o = 0;
    for (int d = p.nb - 1; d >= 0; d--) {
        int64_t k = r % p.bdim[d];
        r /= p.bdim[d];
        y += k * p.bys[d];
        o += k * p.bos[d];
    }
    *oy = y;
    *oo = o;
}

/* broadcast operand K: (nk) <- dy: (n);  dK[j] += sum_r deriv(dy, a, b) at
 * the R outputs j reaches. One thread per j, float accumulation in the CPU's
 * order starting from dK[j]: the same rounding as the CPU loop. */
template <int OP, int K>
static __global__ void binary_bwd_bcast_kernel(bsum p, const float *a, const float *b, const float *dy, float *dk,
                                               int64_t nk, int add) {
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < nk; j += (int64_t)gridDim.x * blockDim.x) {
        int64_t y0, o0;
        bsum_base<K>(p, j, &y0, &o0);
        float acc = add ? dk[j] : 0.0f;
        for (int64_t r = 0; r < p.R; r++) {
            int64_t dyo, doo;
            bsum_step(p, r, &dyo, &doo);
            float kv = 0.0f, ov = 0.0f;
            if (OP >= OP_MUL) {
                kv = K == 0 ? a[j] : b[j];
                ov = K == 0 ? b[o0 + doo] : a[o0 + doo];
            }
            acc += K == 0 ? binary_deriv<OP, 0>(dy[y0 + dyo], kv, ov) : binary_deriv<OP, 1>(dy[y0 + dyo], ov, kv);
        }
        dk[j] = acc;
    }
}

/* The same sum with one block per j, for few operand elements reaching many
 * outputs (a scalar broadcast over a large tensor): double partial sums,
 * deterministic block reduction. */
template <int OP, int K>
static __global__ void binary_bwd_bcast_block_kernel(bsum p, const float *a, const float *b, const float *dy,
                                                     float *dk, int64_t nk, int add) {
    for (int64_t j = blockIdx.x; j < nk; j += gridDim.x) {
        int64_t y0, o0;
        bsum_base<K>(p, j, &y0, &o0);
        double acc = 0.0;
        for (int64_t r = threadIdx.x; r < p.R; r += blockDim.x) {
            int64_t dyo, doo;
            bsum_step(p, r, &dyo, &doo);
            float kv = 0.0f, ov = 0.0f;
            if (OP >= OP_MUL) {
                kv = K == 0 ? a[j] : b[j];
                ov = K == 0 ? b[o0 + doo] : a[o0 + doo];
            }
            acc += K == 0 ? binary_deriv<OP, 0>(dy[y0 + dyo], kv, ov) : binary_deriv<OP, 1>(dy[y0 + dyo], ov, kv);
        }
        acc = syn__block_sum(acc);
        if (threadIdx.x == 0) syn__grad_put(&dk[j], add, (float)acc);
    }
}

/* Scalar and unary maps: y = f(x), dx += dy * f'(x). */
struct add_scalar_f { float c; __device__ float operator()(float x) const { return x + c; } };
struct mul_scalar_f { float c; __device__ float operator()(float x) const { return x * c; } };
struct pow_scalar_f { float c; __device__ float operator()(float x) const { return powf(x, c); } };
struct copy_f { __device__ float operator()(float x) const { return x; } };
struct one_d { __device__ float operator()(float) const { return 1.0f; } };
struct const_d { float c; __device__ float operator()(float) const { return c; } };
/* d/dx x^c = c x^(c-1) */
struct pow_scalar_d { float c; __device__ float operator()(float x) const { return c * powf(x, c - 1.0f); } };

template <class F>
struct unary_fwd_op {
    F f;
    const float *x;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] = f(x[i]); }
};

template <class F>
struct unary_bwd_op {
    F f;
    const float *x, *dy;
    float *dx;
    int add;
    __device__ void operator()(int64_t i) const { syn__grad_put(&dx[i], add, dy[i] * f(x[i])); }
};

/* y = keep ? x * scale : 0, keep = u >= p, u = Philox(seed, DROPOUT, off + i) */
struct dropout_fwd_op {
    const float *x;
    float *y;
    float p, scale;
    uint64_t seed, off;
    __device__ void operator()(int64_t i) const {
        y[i] = syn__philox_uniform(seed, SYN_STREAM_DROPOUT, off + (uint64_t)i) >= p ? x[i] * scale : 0.0f;
    }
};

/* dx += dy * (keep ? scale : 0) */
struct dropout_bwd_op {
    const float *dy;
    float *dx;
    float p, scale;
    uint64_t seed, off;
    int add;
    __device__ void operator()(int64_t i) const {
        syn__grad_put(&dx[i], add,
                      dy[i] * (syn__philox_uniform(seed, SYN_STREAM_DROPOUT, off + (uint64_t)i) >= p ? scale : 0.0f));
    }
};

/* dropout2d: whole channels. Element i lies in channel bc = i / S (S the
 * product of the dims after C); the channel's factor is 1/(1-p) if kept,
 * 0 if dropped, 1 outside training; keep = u >= p with ONE uniform per
 * channel, u = Philox(seed, DROPOUT, off + bc): the CPU's numbers. */
static __device__ __forceinline__ float dropout2d_scale(int train, float p, uint64_t seed, uint64_t off, int64_t bc) {
    if (!train) return 1.0f;
    return syn__philox_uniform(seed, SYN_STREAM_DROPOUT, off + (uint64_t)bc) >= p ? 1.0f / (1.0f - p) : 0.0f;
}

/* y = x * scale(channel), exactly 0 in a dropped channel */
struct dropout2d_fwd_op {
    const float *x;
    float *y;
    int64_t S;
    float p;
    int train;
    uint64_t seed, off;
    __device__ void operator()(int64_t i) const {
        float s = dropout2d_scale(train, p, seed, off, i / S);
        y[i] = s == 0.0f ? 0.0f : x[i] * s;
    }
};

/* dx += dy * scale(channel); a dropped channel's dx is left untouched (a
 * fresh one is set to 0) */
struct dropout2d_bwd_op {
    const float *dy;
    float *dx;
    int64_t S;
    float p;
    int train;
    uint64_t seed, off;
    int add;
    __device__ void operator()(int64_t i) const {
        float s = dropout2d_scale(train, p, seed, off, i / S);
        if (s != 0.0f) syn__grad_put(&dx[i], add, dy[i] * s);
        else if (!add) dx[i] = 0.0f;
    }
};

/* ---- launchers ------------------------------------------------------------- */

extern "C" cudaError_t syn__cuda_fill32_launch(void *dst, uint32_t bits, int64_t n, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    fill32_kernel<<<syn__cuda_grid(n, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>((uint32_t *)dst, bits, n);
    return cudaGetLastError();
}

static void bcast_make(const syn_node *n, bcast *bc) {
    const syn_shape *y = &n->shape;
    *bc = bcast();
    bc->nd = y->ndim;
    for (int d = 0; d < y->ndim; d++) bc->dim[d] = y->dim[d];
    if (bc->nd == 0) { /* scalar output: one element */
        bc->nd = 1;
        bc->dim[0] = 1;
        bc->sa[0] = bc->sb[0] = 0;
        bc->sy[0] = 1;
        return;
    }
    syn__bcast_strides(&n->in[0]->shape, bc->nd, bc->dim, bc->sa);
    syn__bcast_strides(&n->in[1]->shape, bc->nd, bc->dim, bc->sb);
    int64_t st = 1;
    for (int d = bc->nd - 1; d >= 0; d--) {
        bc->sy[d] = st;
        st *= bc->dim[d];
    }
}

template <int OP>
static syn_status binary_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    int64_t len = syn__numel(n);
    if (len == 0) return SYN_OK;
    bcast bc;
    bcast_make(n, &bc);
    binary_fwd_kernel<OP><<<syn__cuda_grid(len, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(
        bc, syn__din(n, 0), syn__din(n, 1), (float *)n->value, len);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

template <int OP, int K>
static syn_status binary_bwd_one(syn_backend *be, syn_node *n, const bcast &bc) {
    float *dk = syn__dgrad(n, K);
    int64_t len = syn__numel(n), nk = syn_shape_numel(&n->in[K]->shape);
    if (!dk || len == 0 || nk == 0) return SYN_OK;
    cudaStream_t s = syn__cu(be)->stream;
    const float *a = syn__din(n, 0), *b = syn__din(n, 1), *dy = (const float *)n->grad;
    const int add = syn__grad_add(n, K);
    if (nk == len) {
        binary_bwd_full_kernel<OP, K><<<syn__cuda_grid(len, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(bc, a, b, dy, dk,
                                                                                                     len, add);
        SYN_CUDA_TRY(cudaGetLastError());
        return SYN_OK;
    }
    bsum p;
    p = bsum();
    p.bc = bc;
    p.nb = 0;
    p.R = 1;
    const int64_t *sk = K == 0 ? bc.sa : bc.sb, *so = K == 0 ? bc.sb : bc.sa;
    for (int d = 0; d < bc.nd; d++)
        if (sk[d] == 0 && bc.dim[d] != 1) {
            p.bdim[p.nb] = bc.dim[d];
            p.bys[p.nb] = bc.sy[d];
            p.bos[p.nb] = so[d];
            p.nb++;
            p.R *= bc.dim[d];
        }
    if (p.R > 1024 && nk < 1024) {
        unsigned blocks = (unsigned)(nk < 65535 ? nk : 65535);
        binary_bwd_bcast_block_kernel<OP, K><<<blocks, SYN_CUDA_THREADS, 0, s>>>(p, a, b, dy, dk, nk, add);
    } else {
        binary_bwd_bcast_kernel<OP, K><<<syn__cuda_grid(nk, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(p, a, b, dy, dk,
                                                                                                      nk, add);
    }
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

template <int OP>
static syn_status binary_bwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    bcast bc;
    bcast_make(n, &bc);
    SYN_TRY((binary_bwd_one<OP, 0>(be, n, bc)));
    return binary_bwd_one<OP, 1>(be, n, bc);
}

template <class F>
static syn_status unary_fwd(syn_backend *be, syn_node *n, F f) {
    SYN_CUDA_ENTER(be);
    unary_fwd_op<F> op = {f, syn__din(n, 0), (float *)n->value};
    SYN_CUDA_TRY(syn__map_launch(op, syn__numel(n), syn__cu(be)->stream));
    return SYN_OK;
}

template <class F>
static syn_status unary_bwd(syn_backend *be, syn_node *n, F f) {
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    SYN_CUDA_ENTER(be);
    unary_bwd_op<F> op = {f, syn__din(n, 0), (const float *)n->grad, dx, syn__grad_add(n, 0)};
    SYN_CUDA_TRY(syn__map_launch(op, syn__numel(n), syn__cu(be)->stream));
    return SYN_OK;
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

syn_status syn__cuda_add_fwd(syn_backend *be, syn_node *n) { return binary_fwd<OP_ADD>(be, n); }
syn_status syn__cuda_sub_fwd(syn_backend *be, syn_node *n) { return binary_fwd<OP_SUB>(be, n); }
syn_status syn__cuda_mul_fwd(syn_backend *be, syn_node *n) { return binary_fwd<OP_MUL>(be, n); }
syn_status syn__cuda_div_fwd(syn_backend *be, syn_node *n) { return binary_fwd<OP_DIV>(be, n); }
syn_status syn__cuda_add_bwd(syn_backend *be, syn_node *n) { return binary_bwd<OP_ADD>(be, n); }
syn_status syn__cuda_sub_bwd(syn_backend *be, syn_node *n) { return binary_bwd<OP_SUB>(be, n); }
syn_status syn__cuda_mul_bwd(syn_backend *be, syn_node *n) { return binary_bwd<OP_MUL>(be, n); }
syn_status syn__cuda_div_bwd(syn_backend *be, syn_node *n) { return binary_bwd<OP_DIV>(be, n); }

/* y = x + c;  dx += dy */
syn_status syn__cuda_add_scalar_fwd(syn_backend *be, syn_node *n) { return unary_fwd(be, n, add_scalar_f{n->f[0]}); }
syn_status syn__cuda_add_scalar_bwd(syn_backend *be, syn_node *n) { return unary_bwd(be, n, one_d{}); }
/* y = x * c;  dx += dy * c */
syn_status syn__cuda_mul_scalar_fwd(syn_backend *be, syn_node *n) { return unary_fwd(be, n, mul_scalar_f{n->f[0]}); }
syn_status syn__cuda_mul_scalar_bwd(syn_backend *be, syn_node *n) { return unary_bwd(be, n, const_d{n->f[0]}); }
/* y = x ^ c;  dx += dy * c x^(c-1) */
syn_status syn__cuda_pow_scalar_fwd(syn_backend *be, syn_node *n) { return unary_fwd(be, n, pow_scalar_f{n->f[0]}); }
syn_status syn__cuda_pow_scalar_bwd(syn_backend *be, syn_node *n) { return unary_bwd(be, n, pow_scalar_d{n->f[0]}); }
/* y = x (no backward: the gradient stops here) */
syn_status syn__cuda_detach_fwd(syn_backend *be, syn_node *n) { return unary_fwd(be, n, copy_f{}); }

/* y = x * keep / (1 - p) in training mode, else y = x. The decision is stored
 * in n->i[1] for the backward pass, as on the CPU. */
syn_status syn__cuda_dropout_fwd(syn_backend *be, syn_node *n) {
    float p = n->f[0];
    n->i[1] = n->g->training && p > 0.0f;
    if (!n->i[1]) return unary_fwd(be, n, copy_f{});
    SYN_CUDA_ENTER(be);
    dropout_fwd_op op = {syn__din(n, 0), (float *)n->value, p, 1.0f / (1.0f - p), n->rng_seed, n->rng_offset};
    SYN_CUDA_TRY(syn__map_launch(op, syn__numel(n), syn__cu(be)->stream));
    return SYN_OK;
}

/* dx += dy * keep / (1 - p)  (dx += dy when the forward was the identity) */
syn_status syn__cuda_dropout_bwd(syn_backend *be, syn_node *n) {
    float p = n->f[0];
    if (!n->i[1]) return unary_bwd(be, n, one_d{});
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    SYN_CUDA_ENTER(be);
    dropout_bwd_op op = {(const float *)n->grad, dx, p, 1.0f / (1.0f - p), n->rng_seed, n->rng_offset,
                         syn__grad_add(n, 0)};
    SYN_CUDA_TRY(syn__map_launch(op, syn__numel(n), syn__cu(be)->stream));
    return SYN_OK;
}

/* x: (N, C, S...) -> y: like x; y[b, c, :] = x[b, c, :] * keep[b, c] / (1 - p)
 * in training mode (p > 0), else y = x. The decision is stored in n->i[1]. */
static int64_t dropout2d_inner(const syn_node *n) {
    int64_t S = 1;
    for (int d = 2; d < n->shape.ndim; d++) S *= n->shape.dim[d];
    return S;
}

syn_status syn__cuda_dropout2d_fwd(syn_backend *be, syn_node *n) {
    n->i[1] = n->g->training && n->f[0] > 0.0f; /* the backward pass uses the same decision */
    int64_t S = dropout2d_inner(n);
    if (S == 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    dropout2d_fwd_op op = {syn__din(n, 0), (float *)n->value, S, n->f[0], (int)n->i[1], n->rng_seed, n->rng_offset};
    SYN_CUDA_TRY(syn__map_launch(op, syn__numel(n), syn__cu(be)->stream));
    return SYN_OK;
}

/* dx[b, c, :] += dy[b, c, :] * keep[b, c] / (1 - p) (the forward's mask) */
syn_status syn__cuda_dropout2d_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0);
    int64_t S = dropout2d_inner(n);
    if (!dx || S == 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    dropout2d_bwd_op op = {(const float *)n->grad, dx, S, n->f[0], (int)n->i[1], n->rng_seed, n->rng_offset,
                           syn__grad_add(n, 0)};
    SYN_CUDA_TRY(syn__map_launch(op, syn__numel(n), syn__cu(be)->stream));
    return SYN_OK;
}

} /* extern "C" */
