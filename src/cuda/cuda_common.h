/* Shared by the CUDA backend's C file (backend_cuda.c, built by gcc) and its
 * kernel files (*.cu, built by nvcc): the error macros, the backend-private
 * state, the kernel entry points for the table, and (nvcc only) launch helpers
 * and deterministic block reductions. */
#ifndef SYN_CUDA_COMMON_H
#define SYN_CUDA_COMMON_H

#include <pthread.h>
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>
#include "../backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SYN_CUDA_MAX_DEVICES 64
#define SYN_CUDA_THREADS 256      /* threads per block of the elementwise kernels */
#define SYN_CUDA_RED_BLOCKS 256   /* at most this many partial sums per reduction */

/* One device allocation: a cached (free) block or a live one. */
typedef struct {
    void *ptr;
    size_t size;
} syn__cuda_block;

/* Allocator figures, for tests and diagnostics. */
typedef struct {
    size_t reserved;  /* bytes held from cudaMalloc (live + cached) */
    size_t in_use;    /* bytes handed out and not yet freed */
    size_t peak;      /* largest in_use seen */
    size_t cached;    /* bytes in free blocks */
    uint64_t mallocs; /* cudaMalloc calls that succeeded */
    uint64_t releases;/* cached blocks given back with cudaFree */
} syn__cuda_mem_stats;

/* Host->device copies go through a ring of pinned staging buffers: the
 * caller's bytes are copied into one on the host, the DMA to the device is
 * queued on the stream, and the call returns without waiting for the GPU
 * (a buffer is reused once its event says the copy out of it is done).
 * Copies above SYN_CUDA_STAGE_MAX, or when pinned memory runs out, wait. */
#define SYN_CUDA_STAGES 4
#define SYN_CUDA_STAGE_MAX ((size_t)64 << 20)
typedef struct {
    void *host;        /* pinned, cap bytes */
    size_t cap;
    cudaEvent_t done;  /* recorded after the copy out of host; NULL before the first */
} syn__cuda_stage;

/* The backend-private state of one GPU (be.impl points back here). */
typedef struct {
    int index;
    cudaStream_t stream;  /* every launch, copy and cuBLAS call goes here */
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS's workspace, set on the handle once (create) */
    size_t blas_ws_bytes;
    bool tf32;
    bool no_cache; /* SYN_CUDA_NO_CACHE=1: exact-size cudaMalloc/cudaFree per call, so
                      compute-sanitizer sees every allocation's true bounds */
    /* caching allocator (under lock): free blocks sorted by size, live blocks
     * in an open-addressing table keyed by pointer (NULL = empty slot) */
    pthread_mutex_t lock;
    syn__cuda_block *cached;
    int n_cached, cap_cached;
    syn__cuda_block *live;
    size_t cap_live, n_live;
    syn__cuda_mem_stats stats;
    /* scratch owned by the backend, outside the allocator */
    double *partials;              /* SYN_CUDA_RED_BLOCKS partial sums */
    unsigned long long *flag;      /* device: first bad row seen by cross-entropy */
    unsigned long long *flag_host; /* pinned host copy of flag */
    pthread_mutex_t stage_lock;    /* guards stage[] and stage_next */
    syn__cuda_stage stage[SYN_CUDA_STAGES];
    int stage_next;
    /* workspace (be->workspace): one block from the caching allocator, grown
     * on demand; stream-ordered like everything else on this device */
    void *ws;
    size_t ws_bytes;
    uint64_t ws_epoch; /* times ws was replaced: a captured graph holds the old one */
    /* CUDA-graph capture (be->capture_begin .. capture_end, one thread):
     * allocations, frees and host copies are refused, and the first refusal
     * is kept to say why the capture failed */
    bool capturing;
    char capture_spoiled[256];
    /* cuDNN (conv.cu): the handle, bound to `stream`, created on first use;
     * dnn_lock guards it, the descriptors and the algorithm cache, and is held
     * through each convolution call */
    bool deterministic; /* SYN_DETERMINISTIC=1: deterministic cuDNN algorithms only */
    pthread_mutex_t dnn_lock;
    cudnnHandle_t dnn;
    struct syn__cudnn_state *dnn_state; /* descriptors and algorithm cache (conv.cu) */
    /* sticky failure: after an illegal address or a kernel fault the context is
     * lost and every later call reports broken_msg */
    volatile int broken;
    char broken_msg[512];
    syn_backend be;
} syn__cuda;

static inline syn__cuda *syn__cu(syn_backend *be) { return (syn__cuda *)be->impl; }

/* Records a failed CUDA/cuBLAS call (file:line, the expression, the library's
 * message) and returns its status: SYN_ERR_OOM for allocation failures,
 * SYN_ERR_DEVICE otherwise. A sticky error marks the current device's backend
 * unusable. Clears the runtime's last error so the next launch check is clean. */
syn_status syn__cuda_fail(cudaError_t e, const char *file, int line, const char *expr);
syn_status syn__cublas_fail(cublasStatus_t s, const char *file, int line, const char *expr);
syn_status syn__cudnn_fail(cudnnStatus_t s, const char *file, int line, const char *expr);
/* Refuses a broken backend; makes its device current for this thread. */
syn_status syn__cuda_enter(syn_backend *be);
/* Allocator figures of device `index` (SYN_ERR_ARG if that backend was never created). */
syn_status syn__cuda_memory_stats(int index, syn__cuda_mem_stats *out);

#define SYN_CUDA_TRY(expr)                                                      \
    do {                                                                        \
        cudaError_t syn__ce = (expr);                                           \
        if (syn__ce != cudaSuccess) return syn__cuda_fail(syn__ce, __FILE__, __LINE__, #expr); \
    } while (0)
#define SYN_CUBLAS_TRY(expr)                                                    \
    do {                                                                        \
        cublasStatus_t syn__bs = (expr);                                        \
        if (syn__bs != CUBLAS_STATUS_SUCCESS) return syn__cublas_fail(syn__bs, __FILE__, __LINE__, #expr); \
    } while (0)
#define SYN_CUDNN_TRY(expr)                                                     \
    do {                                                                        \
        cudnnStatus_t syn__ds = (expr);                                         \
        if (syn__ds != CUDNN_STATUS_SUCCESS) return syn__cudnn_fail(syn__ds, __FILE__, __LINE__, #expr); \
    } while (0)
#define SYN_CUDA_ENTER(be) SYN_TRY(syn__cuda_enter(be))

/* dst[0..n) = the 32-bit pattern `bits` (float or int32 fills); elementwise.cu */
cudaError_t syn__cuda_fill32_launch(void *dst, uint32_t bits, int64_t n, cudaStream_t s);

/* Frees the cuDNN handle, descriptors and algorithm cache of a backend (conv.cu). */
void syn__cuda_cudnn_destroy(syn__cuda *cu);

/* ---- kernel entry points (the table in backend_cuda.c) ---- */

/* Every op's kernels, from the lists in backend.h. */
#define SYN__CUDA_DECL(ID, name)                                         \
    syn_status syn__cuda_##name##_fwd(syn_backend *be, syn_node *n); \
    syn_status syn__cuda_##name##_bwd(syn_backend *be, syn_node *n);
SYN_KERNEL_OPS(SYN__CUDA_DECL)
syn_status syn__cuda_detach_fwd(syn_backend *be, syn_node *n);

/* optim.cu */
syn_status syn__cuda_optim_update(syn_backend *be, const syn__optim_args *a, int count);
syn_status syn__cuda_zero_many(syn_backend *be, void *const *dst, const size_t *bytes, int count);
syn_status syn__cuda_sumsq(syn_backend *be, const float *const *x, const int64_t *n, int count, float *acc);
syn_status syn__cuda_clip_scale(syn_backend *be, float *const *x, const int64_t *n, int count, const float *acc,
                                float max_norm);
syn_status syn__cuda_metrics(syn_backend *be, const float *loss, const float *logits, const int32_t *labels, int64_t n,
                             int64_t classes, double *acc);

#ifdef __cplusplus
}
#endif

/* ---- nvcc only: launch helpers and reductions ---------------------------- */
#ifdef __CUDACC__

static inline const float *syn__din(const syn_node *n, int k) { return (const float *)n->in[k]->value; }
static inline float *syn__dgrad(const syn_node *n, int k) { return (float *)n->in[k]->grad; }

/* Blocks for a grid-stride loop over n items (n > 0). */
static inline unsigned syn__cuda_grid(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    const int64_t cap = 65535LL * 32;
    if (b > cap) b = cap;
    return (unsigned)(b < 1 ? 1 : b);
}

/* Sum over a warp; every lane gets the same (order-fixed) result. */
static __device__ __forceinline__ double syn__warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float syn__warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, all threads call it);
 * the result is valid in thread 0. Fixed order: deterministic. */
static __device__ __forceinline__ double syn__block_sum(double v) {
    __shared__ double warp_part[32];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = syn__warp_sum(v);
    __syncthreads(); /* warp_part may still be read by an earlier call */
    if (lane == 0) warp_part[w] = v;
    __syncthreads();
    v = (int)threadIdx.x < nw ? warp_part[threadIdx.x] : 0.0;
    if (w == 0) v = syn__warp_sum(v);
    return v;
}

/* A gradient store: *dx += v, or *dx = v where the executor marked the
 * gradient fresh (add = syn__grad_add(n, k) false: it holds garbage). A
 * branch on the uniform flag rather than a select, so that a fresh
 * gradient's old contents are not loaded (memory traffic for nothing). */
static __device__ __forceinline__ void syn__grad_put(float *dx, int add, float v) {
    if (add) *dx += v;
    else *dx = v;
}

/* ---- per-channel reductions over x: (N, C, S) ------------------------------
 * Value j of channel c (j < M = N S) is x[(j / S) C + c, j % S]. A channel
 * is cut into P chunks, [M b / P, M (b + 1) / P) for b < P, and a kernel runs
 * on a (P, C) grid (C beyond 65535 by a grid-stride loop over blockIdx.y), so
 * that a few channels of many values still fill the GPU. Partials combined
 * in chunk order keep the result deterministic: P depends on the shape only. */
struct syn__chan_geom {
    int64_t N, C, S;
};

#define SYN_CHAN_TARGET_BLOCKS 1024 /* blocks of a (P, C) grid, about */
#define SYN_CHAN_MIN_CHUNK 2048     /* values per chunk, at least (where a channel has them) */

static inline int syn__chan_chunks(const syn__chan_geom &d) {
    const int64_t M = d.N * d.S;
    const int64_t by_size = (M + SYN_CHAN_MIN_CHUNK - 1) / SYN_CHAN_MIN_CHUNK;
    const int64_t by_grid = d.C > 0 ? (SYN_CHAN_TARGET_BLOCKS + d.C - 1) / d.C : 1;
    const int64_t p = by_size < by_grid ? by_size : by_grid;
    return (int)(p < 1 ? 1 : p > 65535 ? 65535 : p);
}

static inline dim3 syn__chan_grid(const syn__chan_geom &d, int P) {
    return dim3((unsigned)P, (unsigned)(d.C < 1 ? 1 : d.C < 65535 ? d.C : 65535));
}

/* First value of chunk b of P over M values. */
static __device__ __forceinline__ int64_t syn__chan_lo(int64_t M, int P, int64_t b) { return M * b / P; }

/* f(offset) for this thread's values of chunk [lo, hi) of channel c: value
 * lo + threadIdx.x, then every blockDim.x-th; (n, s) advance without a
 * division per value. */
template <class F>
static __device__ __forceinline__ void syn__chan_each(const syn__chan_geom &d, int64_t c, int64_t lo, int64_t hi, F f) {
    int64_t j = lo + threadIdx.x;
    if (j >= hi) return;
    const int64_t step_n = blockDim.x / d.S, step_s = blockDim.x % d.S;
    int64_t n = j / d.S, s = j % d.S;
    for (; j < hi; j += blockDim.x) {
        f((n * d.C + c) * d.S + s);
        s += step_s;
        n += step_n;
        if (s >= d.S) {
            s -= d.S;
            n++;
        }
    }
}

/* f(i) for every i in [0, n): one thread per element, grid-stride. */
template <class F>
__global__ void syn__map_kernel(F f, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) f(i);
}

template <class F>
static cudaError_t syn__map_launch(F f, int64_t n, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    syn__map_kernel<F><<<syn__cuda_grid(n, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(f, n);
    return cudaGetLastError();
}

/* Two-pass deterministic sum of f(i) over [0, n) in double: pass 1 writes one
 * partial per block (the grid depends on n only), pass 2 adds them in a fixed
 * order. out[0] = (float)(sum / div), or with accumulate
 * out[0] = (float)((double)out[0] + sum). */
template <class F>
__global__ void syn__partial_sum_kernel(F f, int64_t n, double *partials) {
    double acc = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        acc += f(i);
    acc = syn__block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/* partials: (count) -> out[0]; one block */
static __global__ void syn__final_sum_kernel(const double *partials, int count, float *out, double div, int accumulate) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
    acc = syn__block_sum(acc);
    if (threadIdx.x == 0) out[0] = accumulate ? (float)((double)out[0] + acc) : (float)(acc / div);
}

/* The second pass of a chunked sum per output (per channel, per column):
 * out[i] (+)= sum over p < P of part[i si + p sp], in p order, in double, for
 * i < n; add as syn__grad_put. */
static __global__ void syn__partials_sum_kernel(const double *part, int P, int64_t si, int64_t sp, float *out,
                                                int64_t n, int add) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        double t = 0.0;
        for (int p = 0; p < P; p++) t += part[i * si + p * sp];
        syn__grad_put(&out[i], add, (float)t);
    }
}

template <class F>
static cudaError_t syn__sum_launch(syn__cuda *cu, F f, int64_t n, float *out, double div, int accumulate) {
    int blocks = 1;
    if (n > 0) {
        int64_t b = (n + SYN_CUDA_THREADS - 1) / SYN_CUDA_THREADS;
        blocks = (int)(b < SYN_CUDA_RED_BLOCKS ? b : SYN_CUDA_RED_BLOCKS);
        syn__partial_sum_kernel<F><<<blocks, SYN_CUDA_THREADS, 0, cu->stream>>>(f, n, cu->partials);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    } else {
        cudaError_t e = cudaMemsetAsync(cu->partials, 0, sizeof(double), cu->stream);
        if (e != cudaSuccess) return e;
    }
    syn__final_sum_kernel<<<1, SYN_CUDA_THREADS, 0, cu->stream>>>(cu->partials, blocks, out, div, accumulate);
    return cudaGetLastError();
}

#endif /* __CUDACC__ */
#endif
