/* The PRIVATE backend interface. Each backend (src/cpu, src/cuda) fills one
 * syn_backend: memory, copies, synchronisation, optimizer updates, and one
 * forward and one backward kernel per op. The executor reaches kernels only
 * through this table; a NULL slot means "unsupported" and is reported when a
 * graph is compiled for that backend.
 *
 * Kernel contract: fwd writes n->value from n->in[k]->value using the nodes'
 * current shapes. bwd ACCUMULATES into n->in[k]->grad (when that input
 * requires a gradient and its grad pointer is non-NULL) from n->grad. Where
 * the backend sets grad_write[op], the op's bwd instead WRITES every element
 * of an input gradient whose node is marked grad_fresh (syn__grad_add false):
 * the executor then skips zeroing that gradient before its first use. */
#ifndef SYN_BACKEND_H
#define SYN_BACKEND_H

#include "core/internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef syn_status (*syn__kernel)(syn_backend *be, syn_node *n);

/* One parameter tensor's update; s1/s2 are the optimizer's state buffers
 * (momentum / squared averages), zero-initialised, NULL when unused. */
typedef struct {
    syn_optim_kind kind;
    float lr, momentum, weight_decay, alpha, beta1, beta2, eps;
    bool nesterov;
    int64_t step; /* 1 on the first update */
    float *p;
    const float *g;
    float *s1, *s2;
    int64_t n;
} syn__optim_args;

struct syn_backend {
    const char *name; /* "cpu", "cuda" */
    syn_device device;
    void *impl;       /* backend-private state */

    syn_status (*alloc)(syn_backend *be, size_t bytes, void **out);
    void (*free)(syn_backend *be, void *ptr);
    syn_status (*copy_h2d)(syn_backend *be, void *dst, const void *src, size_t bytes);
    syn_status (*copy_d2h)(syn_backend *be, void *dst, const void *src, size_t bytes);
    syn_status (*copy_d2d)(syn_backend *be, void *dst, const void *src, size_t bytes);
    syn_status (*zero)(syn_backend *be, void *dst, size_t bytes);
    syn_status (*fill_f32)(syn_backend *be, float *dst, float v, int64_t n);
    syn_status (*fill_i32)(syn_backend *be, int32_t *dst, int32_t v, int64_t n);
    syn_status (*synchronize)(syn_backend *be);
    /* A scratch buffer of at least `bytes`, valid until the next call (kernels
     * use it for im2col columns, cuDNN workspaces ...); owned by the backend. */
    syn_status (*workspace)(syn_backend *be, size_t bytes, void **out);
    syn_status (*describe)(syn_backend *be, char *buf, size_t size);
    /* Bytes the device allocator has handed out (*in_use) and the most at
     * any time (*peak); NULL where memory is the process's (the CPU). */
    syn_status (*memory)(syn_backend *be, size_t *in_use, size_t *peak);
    /* Marks on the device's queue for syn_device_timer; NULL where the host
     * clock times the work (the CPU, which runs it synchronously).
     * mark_elapsed waits for `stop` and gives the device time from start. */
    syn_status (*mark_create)(syn_backend *be, void **mark);
    syn_status (*mark_record)(syn_backend *be, void *mark);
    syn_status (*mark_elapsed)(syn_backend *be, void *start, void *stop, double *ms);
    void (*mark_destroy)(syn_backend *be, void *mark);

    /* count tensors' updates by one optimizer (kind and hyper-parameters
     * alike; step, buffers and sizes each its own): a fused launch on a GPU */
    syn_status (*optim_update)(syn_backend *be, const syn__optim_args *a, int count);
    /* count buffers set to zero bytes (a parameter set's gradients): a fused
     * launch on a GPU */
    syn_status (*zero_many)(syn_backend *be, void *const *dst, const size_t *bytes, int count);
    /* *acc += sum of x[i]^2 over count buffers of n[i] floats, acc a device
     * float (a parameter set's gradients: a fused launch or two on a GPU) */
    syn_status (*sumsq)(syn_backend *be, const float *const *x, const int64_t *n, int count, float *acc);
    /* each x[i] *= min(1, max_norm / (sqrt(*acc) + 1e-6)), acc a device float */
    syn_status (*clip_scale)(syn_backend *be, float *const *x, const int64_t *n, int count, const float *acc,
                             float max_norm);

    /* acc[0] += *loss * n; with logits (n rows of `classes`, else NULL),
     * acc[1] += the rows whose first largest logit is labels[row]: acc two
     * doubles of device memory, queued without a synchronisation */
    syn_status (*metrics)(syn_backend *be, const float *loss, const float *logits, const int32_t *labels, int64_t n,
                          int64_t classes, double *acc);

    /* Device-graph capture (CUDA graphs; NULL on the CPU): between
     * capture_begin and capture_end the calling thread's launches, copies and
     * library calls on the device are recorded instead of run; anything that
     * cannot be recorded (a synchronisation, an allocation, a free, a copy
     * to or from the host) fails and spoils the capture. capture_end with
     * keep false discards it; with keep true it gives the replayable graph in
     * *exec or the reason it could not. replay queues one run of it, unless
     * scratch memory it uses was replaced since (the workspace grew): then
     * *stale is set, nothing is queued, and exec must be freed. */
    syn_status (*capture_begin)(syn_backend *be);
    syn_status (*capture_end)(syn_backend *be, bool keep, void **exec);
    syn_status (*replay)(syn_backend *be, void *exec, bool *stale);
    void (*replay_free)(syn_backend *be, void *exec);

    syn__kernel fwd[SYN_OP_COUNT];
    syn__kernel bwd[SYN_OP_COUNT];
    /* bwd[op] honours grad_fresh (see the kernel contract above) */
    bool grad_write[SYN_OP_COUNT];
};

/* grad_write entries both backends set: the elementwise, activation,
 * GEMM, softmax, reduction, reshape, dropout and loss ops (each backend adds
 * its own: batch norm and max pooling on both, convolutions on CUDA). */
#define SYN_GRAD_WRITE_COMMON                                                                        \
    [SYN_OP_ADD] = true, [SYN_OP_SUB] = true, [SYN_OP_MUL] = true, [SYN_OP_DIV] = true,              \
    [SYN_OP_ADD_SCALAR] = true, [SYN_OP_MUL_SCALAR] = true, [SYN_OP_POW_SCALAR] = true,              \
    [SYN_OP_MATMUL] = true, [SYN_OP_LINEAR] = true, [SYN_OP_RELU] = true, [SYN_OP_LEAKY_RELU] = true, \
    [SYN_OP_SIGMOID] = true, [SYN_OP_TANH] = true, [SYN_OP_GELU] = true, [SYN_OP_SOFTMAX] = true,    \
    [SYN_OP_LOG_SOFTMAX] = true, [SYN_OP_SUM] = true, [SYN_OP_MEAN] = true, [SYN_OP_RESHAPE] = true, \
    [SYN_OP_DROPOUT] = true, [SYN_OP_MSE_LOSS] = true, [SYN_OP_SSE_LOSS] = true,                    \
    [SYN_OP_CROSS_ENTROPY] = true, [SYN_OP_BCE_WITH_LOGITS] = true

/* In a bwd kernel: add to input k's gradient (true), or write it (false: the
 * executor marked it fresh; only for ops with grad_write set). */
static inline bool syn__grad_add(const syn_node *n, int k) { return !n->in[k]->grad_fresh; }

/* The ops a backend implements, as X(ID, name): each has the kernels
 * <prefix><name>_fwd and <prefix><name>_bwd, except those in
 * SYN_FWD_ONLY_OPS (no backward rule: SYN_NO_GRAD in ops.def). Leaf ops
 * (inputs, parameters) have none. Each backend declares and tables its
 * kernels from these lists, so an op is added to every backend at once. */
#define SYN_KERNEL_OPS(X)                                                                            \
    X(ADD, add) X(SUB, sub) X(MUL, mul) X(DIV, div) X(ADD_SCALAR, add_scalar) X(MUL_SCALAR, mul_scalar) \
    X(POW_SCALAR, pow_scalar) X(MATMUL, matmul) X(LINEAR, linear) X(RELU, relu) X(LEAKY_RELU, leaky_relu) \
    X(SIGMOID, sigmoid) X(TANH, tanh) X(GELU, gelu) X(SOFTMAX, softmax) X(LOG_SOFTMAX, log_softmax)      \
    X(SUM, sum) X(MEAN, mean) X(RESHAPE, reshape) X(TRANSPOSE, transpose) X(CONCAT, concat)             \
    X(DROPOUT, dropout) X(MSE_LOSS, mse_loss) X(SSE_LOSS, sse_loss) X(CROSS_ENTROPY, cross_entropy)     \
    X(BCE_WITH_LOGITS, bce_with_logits) X(CONV2D, conv2d) X(CONV_TRANSPOSE2D, conv_transpose2d)         \
    X(MAX_POOL2D, max_pool2d) X(AVG_POOL2D, avg_pool2d) X(ADAPTIVE_AVG_POOL2D, adaptive_avg_pool2d)     \
    X(BATCH_NORM, batch_norm) X(LAYER_NORM, layer_norm) X(DROPOUT2D, dropout2d) X(SLICE, slice)         \
    X(EMBEDDING, embedding) X(RNN, rnn)
#define SYN_FWD_ONLY_OPS(X) X(DETACH, detach)

/* The CPU backend (always built). */
syn_backend *syn__cpu_backend(void);
#ifdef SYN_HAVE_CUDA
/* The CUDA backend for GPU `index`, created on first use. */
syn_status syn__cuda_backend(int index, syn_backend **out);
int syn__cuda_device_count(void);
/* Switches a CUDA backend's deterministic kernels (SYN_DETERMINISTIC=1 sets
 * them at creation) on or off, so that a test can run both paths. */
void syn__cuda_set_deterministic(syn_backend *be, bool on);
#endif

#ifdef __cplusplus
}
#endif
#endif
