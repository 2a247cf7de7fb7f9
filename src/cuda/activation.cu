/* Activations on CUDA, the same formulas as src/cpu/activation.c: backward
 * rules read the output where that is cheaper (relu, sigmoid, tanh) and the
 * input otherwise (leaky relu, gelu). One thread per element. */
#include <math.h>
#include "cuda_common.h"

/* ---- device helpers: y = f(v) and dy/dx from v = x, o = y ------------------ */

/* y = max(x, 0);  dy/dx = (y > 0) */
struct relu_a {
    float s;
    __device__ float f(float v) const { return v > 0.0f ? v : 0.0f; }
    __device__ float d(float, float o) const { return o > 0.0f ? 1.0f : 0.0f; }
};
/* y = x > 0 ? x : s x;  dy/dx = x > 0 ? 1 : s */
struct leaky_relu_a {
    float s;
    __device__ float f(float v) const { return v > 0.0f ? v : s * v; }
    __device__ float d(float v, float) const { return v > 0.0f ? 1.0f : s; }
};
/* y = 1 / (1 + e^-x);  dy/dx = y (1 - y) */
struct sigmoid_a {
    float s;
    __device__ float f(float v) const { return 1.0f / (1.0f + expf(-v)); }
    __device__ float d(float, float o) const { return o * (1.0f - o); }
};
/* y = tanh x;  dy/dx = 1 - y^2 */
struct tanh_a {
    float s;
    __device__ float f(float v) const { return tanhf(v); }
    __device__ float d(float, float o) const { return 1.0f - o * o; }
};
/* y = x Phi(x) = x/2 (1 + erf(x/sqrt2));  dy/dx = Phi(x) + x phi(x) */
struct gelu_a {
    float s;
    __device__ float f(float v) const { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }
    __device__ float d(float v, float) const {
        return 0.5f * (1.0f + erff(v * 0.70710678118654752f)) + v * 0.39894228040143268f * expf(-0.5f * v * v);
    }
};

/* ---- kernels --------------------------------------------------------------- */

/* x: (n) -> y: (n);  y = f(x) */
template <class A>
static __global__ void act_fwd_kernel(A act, const float *x, float *y, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = act.f(x[i]);
}

/* dx += dy * f'(x, y); x or y may be NULL when the rule does not read it */
template <class A>
static __global__ void act_bwd_kernel(A act, const float *x, const float *y, const float *dy, float *dx, int64_t n,
                                      int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = x ? x[i] : 0.0f, o = y ? y[i] : 0.0f;
        syn__grad_put(&dx[i], add, dy[i] * act.d(v, o));
    }
}

/* ReLU selects rather than multiplies, as the CPU does: an inf or NaN dy
 * where y <= 0 passes 0, not NaN (0 * inf). */
template <>
__global__ void act_bwd_kernel<relu_a>(relu_a, const float *, const float *y, const float *dy, float *dx, int64_t n,
                                       int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        syn__grad_put(&dx[i], add, y[i] > 0.0f ? dy[i] : 0.0f);
}

/* ---- launchers ------------------------------------------------------------- */

template <class A>
static syn_status act_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    int64_t len = syn__numel(n);
    if (len == 0) return SYN_OK;
    A act = {n->f[0]};
    act_fwd_kernel<A><<<syn__cuda_grid(len, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(
        act, syn__din(n, 0), (float *)n->value, len);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

template <class A>
static syn_status act_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0);
    int64_t len = syn__numel(n);
    if (!dx || len == 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    A act = {n->f[0]};
    /* only what the op's flags promise is alive at backward time */
    const float *x = (syn__op_flags[n->op] & SYN_BW_IN) ? syn__din(n, 0) : NULL;
    const float *y = (syn__op_flags[n->op] & SYN_BW_OUT) ? (const float *)n->value : NULL;
    act_bwd_kernel<A><<<syn__cuda_grid(len, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(
        act, x, y, (const float *)n->grad, dx, len, syn__grad_add(n, 0));
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

syn_status syn__cuda_relu_fwd(syn_backend *be, syn_node *n) { return act_fwd<relu_a>(be, n); }
syn_status syn__cuda_relu_bwd(syn_backend *be, syn_node *n) { return act_bwd<relu_a>(be, n); }
syn_status syn__cuda_leaky_relu_fwd(syn_backend *be, syn_node *n) { return act_fwd<leaky_relu_a>(be, n); }
syn_status syn__cuda_leaky_relu_bwd(syn_backend *be, syn_node *n) { return act_bwd<leaky_relu_a>(be, n); }
syn_status syn__cuda_sigmoid_fwd(syn_backend *be, syn_node *n) { return act_fwd<sigmoid_a>(be, n); }
syn_status syn__cuda_sigmoid_bwd(syn_backend *be, syn_node *n) { return act_bwd<sigmoid_a>(be, n); }
syn_status syn__cuda_tanh_fwd(syn_backend *be, syn_node *n) { return act_fwd<tanh_a>(be, n); }
syn_status syn__cuda_tanh_bwd(syn_backend *be, syn_node *n) { return act_bwd<tanh_a>(be, n); }
syn_status syn__cuda_gelu_fwd(syn_backend *be, syn_node *n) { return act_fwd<gelu_a>(be, n); }
syn_status syn__cuda_gelu_bwd(syn_backend *be, syn_node *n) { return act_bwd<gelu_a>(be, n); }

} /* extern "C" */
