/* Devices: the CPU and CUDA GPUs. A syn_device is a plain value (type + index);
 * backends are created lazily the first time a device is used. A CUDA
 * backend reads these environment variables when it is created:
 *   SYN_ALLOW_TF32=1      cuBLAS may use TF32 tensor cores (off: full fp32)
 *   SYN_DETERMINISTIC=1   deterministic kernels only: cuDNN algorithms with a
 *                         fixed order, the embedding gradient summed over
 *                         sorted rows (the CPU's sums bit for bit) instead of
 *                         atomic adds
 *   SYN_CUDA_NO_CACHE=1   every allocation is a cudaMalloc, every free a
 *                         cudaFree (for compute-sanitizer), no caching
 * The CPU backend is deterministic for a fixed thread count. */
#ifndef SYNAPSE_DEVICE_H
#define SYNAPSE_DEVICE_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SYN_DEVICE_CPU = 0, SYN_DEVICE_CUDA = 1 } syn_device_type;

typedef struct {
    syn_device_type type;
    int index; /* GPU ordinal; 0 for the CPU */
} syn_device;

static inline syn_device syn_cpu(void) { syn_device d = {SYN_DEVICE_CPU, 0}; return d; }
static inline syn_device syn_cuda(int index) { syn_device d = {SYN_DEVICE_CUDA, index}; return d; }

/* Parses "cpu", "cuda", "cuda:N", "gpu", "gpu:N". */
SYN_API syn_status syn_device_parse(const char *text, syn_device *out);

/* Writes "cpu" or "cuda:N" into buf. Returns buf. */
SYN_API const char *syn_device_str(syn_device d, char *buf, size_t size);

/* 1 if the library was built with that backend. */
SYN_API int syn_backend_built(syn_device_type type);

/* Number of usable devices of that type (1 for the CPU; 0 GPUs when the
 * library lacks CUDA or no driver/device is present, which is not an error). */
SYN_API int syn_device_count(syn_device_type type);

/* A human-readable description: CPU model and threads, or GPU name, memory,
 * compute capability, driver/runtime and library versions. */
SYN_API syn_status syn_device_describe(syn_device d, char *buf, size_t size);

/* "SkylakeX" or "Haswell" where OpenBLAS chose kernels older than this CPU
 * runs (pre-AVX ones for a model it does not know: several times slower
 * GEMMs) and OPENBLAS_CORETYPE is unset; else NULL. *chosen (if chosen is
 * not NULL): the kernels OpenBLAS chose. OpenBLAS reads OPENBLAS_CORETYPE
 * once, when it loads, so a program that wants the faster kernels sets it
 * and restarts (the synapse command does, see its --help). borrowed: static
 * strings. */
SYN_API const char *syn_cpu_blas_coretype_advice(const char **chosen);

/* Waits until all work queued on the device has finished. */
SYN_API syn_status syn_device_synchronize(syn_device d);
/* Bytes of device memory the device's caching allocator has handed out and
 * not freed (*in_use), and the most at any time (*peak). SYN_ERR_UNSUPPORTED
 * for the CPU, whose memory is the process's (getrusage). */
SYN_API syn_status syn_device_memory(syn_device d, size_t *in_use, size_t *peak);

/* A stopwatch on a device's queue. On a GPU it records events on the
 * backend's stream, so it measures when the GPU reached each mark, not when
 * the host queued the work; on the CPU it reads the monotonic clock.
 *   syn_device_timer *t; syn_device_timer_create(dev, &t);
 *   syn_device_timer_start(t); ...queue work...; syn_device_timer_stop(t, &ms);
 * stop waits for the work queued before it. One thread at a time per timer. */
typedef struct syn_device_timer syn_device_timer;
SYN_API syn_status syn_device_timer_create(syn_device d, syn_device_timer **out);
SYN_API syn_status syn_device_timer_start(syn_device_timer *t);
/* Milliseconds from the last start to now (to when the device finished the
 * work queued before this call); SYN_ERR_ARG when it was never started. */
SYN_API syn_status syn_device_timer_stop(syn_device_timer *t, double *ms);
SYN_API void syn_device_timer_free(syn_device_timer *t);

/* 1 if both name the same device. */
static inline int syn_device_equal(syn_device a, syn_device b) {
    return a.type == b.type && a.index == b.index;
}

#ifdef __cplusplus
}
#endif
#endif
