/* The CUDA emulator (tests/cuda_emu): the slice of the CUDA runtime that
 * Synapse's CUDA backend uses, run on the CPU so that the backend's logic
 * (launch configurations, indexing, reductions, the caching allocator, error
 * paths) is tested on machines without a GPU. Not a product: it proves nothing
 * about real GPUs; the GPU check script does that.
 *
 * C side: the runtime API. Device memory is host memory, and fresh allocations
 * are filled with 0xFF bytes (NaN floats). Work queued on a stream (launches,
 * copies, memsets, library calls) runs only at a synchronisation point, as a
 * GPU runs it later: a result read before its stream was synchronised is
 * stale, and a pinned buffer reused before its copy ran gives the copy the
 * new bytes (SYN_EMU_DEFER=0 runs everything at once, for debugging).
 * C++ side (the kernels, rewritten by cu2cpp.py): threadIdx and friends,
 * __syncthreads and warp shuffles on fibers, atomics, and the launch. */
#ifndef SYN_EMU_CUDA_RUNTIME_H
#define SYN_EMU_CUDA_RUNTIME_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
    cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9, cudaErrorInsufficientDriver = 35, cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101, cudaErrorInvalidResourceHandle = 400, cudaErrorECCUncorrectable = 214,
    cudaErrorNotReady = 600, cudaErrorIllegalAddress = 700, cudaErrorLaunchTimeout = 702,
    cudaErrorContextIsDestroyed = 709, cudaErrorAssert = 710, cudaErrorHardwareStackError = 714,
    cudaErrorIllegalInstruction = 715, cudaErrorMisalignedAddress = 716, cudaErrorInvalidAddressSpace = 717,
    cudaErrorInvalidPc = 718, cudaErrorLaunchFailure = 719, cudaErrorIllegalState = 401,
    cudaErrorStreamCaptureUnsupported = 900, cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureUnmatched = 903
} cudaError_t;

typedef struct syn_emu_stream *cudaStream_t;
typedef struct syn_emu_event *cudaEvent_t;
typedef struct syn_emu_graph *cudaGraph_t;
typedef struct syn_emu_graph_exec *cudaGraphExec_t;
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2
};
enum cudaMemcpyKind {
    cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault
};
#define cudaStreamNonBlocking 1
#define cudaEventDefault 0
#define cudaEventDisableTiming 2

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor, multiProcessorCount;
};

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t stop);
cudaError_t cudaEventDestroy(cudaEvent_t e);

/* Stream capture, thread-local mode only: see runtime.cpp. */
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind k, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *dst, int v, size_t n, cudaStream_t s);

cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);

/* ---- the emulator's own calls ---- */
/* Aborts with a message unless [p, p + n) lies inside one live device
 * allocation (the libraries' and copies' argument check). */
void syn_emu_check_range(const void *p, size_t n, const char *what);
/* Makes the launch after `launches_before` more launches fail when it runs,
 * with `e` as a sticky error: the kernel does not run, queued work is dropped,
 * and every later call returns e (what an illegal address does to a GPU
 * context; for tests of the backend's error handling). */
void syn_emu_inject_fault(cudaError_t e, unsigned launches_before);
/* Figures for tests of the emulator itself. */
typedef struct {
    uint64_t launches, fiber_blocks, plain_blocks; /* kernels, and their blocks by how they ran */
    uint64_t copies, memsets, mallocs;             /* cudaMemcpyAsync, cudaMemsetAsync, cudaMalloc */
    uint64_t syncs;                                /* cudaStreamSynchronize: the host waits for all queued work */
    uint64_t graph_launches, graph_items;          /* cudaGraphLaunch calls, and the work items they replayed */
    size_t live_bytes;
} syn_emu_stats;
void syn_emu_get_stats(syn_emu_stats *out);

#ifdef __cplusplus
}
#include <math.h>
#include <string.h>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
typedef dim3 uint3;
/* Plain globals, not thread_local (launches from several host threads take
 * turns): GCC's UBSan reports thread_local class objects of another
 * translation unit as null in position-independent executables. */
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
/* One static per function: blocks run one after another on one host thread,
 * so a function-local static is exactly one block's shared memory. */
#define __shared__ static
/* Fills shared variable p with 0xFF bytes the first time the running block
 * reaches its declaration (cu2cpp.py adds the call): garbage, as on a GPU. */
void syn_emu_shared_fresh(void *p, size_t n);

void __syncthreads(void);
/* Swaps `size` bytes with lane (lane ^ lane_mask) of the same warp. */
void syn_emu_warp_xor(void *v, size_t size, unsigned mask, int lane_mask);
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    (void)width;
    syn_emu_warp_xor(&v, sizeof v, mask, lane_mask);
    return v;
}
/* Every thread of a launch runs on the launching host thread, one at a time
 * between synchronisation points, so atomics are plain read-modify-writes. */
template <class T>
T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <class T>
T atomicMin(T *p, T v) {
    T old = *p;
    if (v < old) *p = v;
    return old;
}
template <class T>
T atomicMax(T *p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}

/* One launch, type-erased: body(ctx) runs one CUDA thread (threadIdx and
 * blockIdx are set before); release(ctx) frees the arguments after the last
 * block. */
struct syn_emu_launch_desc {
    const char *kernel;
    dim3 grid, block;
    size_t shared_bytes;
    void (*body)(void *);
    void *ctx;
    void (*release)(void *);
};
/* Checks the configuration (else the launch error, as CUDA reports it) and
 * queues the launch on the stream. */
void syn_emu_submit(const syn_emu_launch_desc *d, cudaStream_t stream);
/* Queues device work (the libraries' calls); it runs in order with the
 * launches and copies, at the next synchronisation point. While the calling
 * thread captures a stream, the work is recorded into the graph instead. */
void syn_emu_enqueue(std::function<void()> work);
/* True (and the capture invalidated, cudaErrorStreamCaptureUnsupported the
 * last error) when the calling thread is capturing: for calls CUDA refuses
 * during a capture, such as cudnnFind's timing runs. */
bool syn_emu_capture_refuses(const char *what);

/* With SYN_EMU_TRACE=FILE ("-": stderr), one line per host call that queues
 * device work or waits for it, in call order: what a profiler's API trace
 * shows. Counting a training step's lines is how launch overheads are found
 * without a GPU. */
extern "C" void syn_emu_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A kernel's pointer arguments must be NULL, device or pinned memory. */
extern "C" void syn_emu_check_kernel_pointer(const char *kernel, int arg, const void *p);
template <class T>
void syn_emu_check_arg(const char *, int, const T &) {}
template <class T>
void syn_emu_check_arg(const char *kernel, int arg, T *p) {
    syn_emu_check_kernel_pointer(kernel, arg, (const void *)p);
}

/* kernel<<<grid, block, shared, stream>>>(args...) becomes this call
 * (cu2cpp.py): the arguments are converted to the kernel's parameter types
 * once, as CUDA copies them at the launch, and every thread gets its own copy. */
template <class... P, class... A>
void syn_emu_launch(const char *name, dim3 grid, dim3 block, size_t shared, cudaStream_t stream, void (*k)(P...),
                    A &&...args) {
    struct ctx_t {
        void (*k)(P...);
        std::tuple<std::decay_t<P>...> args;
    };
    ctx_t *ctx = new ctx_t{k, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
    int arg = 0;
    std::apply([&](auto &...a) { (syn_emu_check_arg(name, arg++, a), ...); }, ctx->args);
    syn_emu_launch_desc d{name, grid, block, shared,
                          [](void *c) {
                              ctx_t *x = (ctx_t *)c;
                              std::tuple<std::decay_t<P>...> mine = x->args;
                              std::apply(x->k, mine);
                          },
                          ctx, [](void *c) { delete (ctx_t *)c; }};
    syn_emu_submit(&d, stream);
}
#endif /* __cplusplus */
#endif
