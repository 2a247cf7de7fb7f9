/* The CUDA emulator's runtime: device memory, streams and events, errors, and
 * the kernel scheduler (see include/cuda_runtime.h).
 *
 * Scheduling: the blocks of a launch run one after another on the host thread
 * that runs the queue (launches take turns). Block 0 runs its threads as
 * fibers (own stacks, switched at __syncthreads and warp shuffles, in thread
 * order); if none of them
 * synchronised, the other blocks run each thread as a plain call, which is
 * what makes grid-stride kernels over millions of elements affordable. A
 * kernel that synchronises in a later block but not in block 0 is reported
 * (the emulator cannot suspend a plain call). Threads waiting at different
 * barriers, or a full-mask shuffle after lanes of the warp exited, are
 * reported as errors too: both hang or are undefined on a GPU.
 *
 * The queue: one FIFO for all streams (a stronger order than CUDA's, which
 * only hides races between streams; the backend uses one). It runs at
 * cudaStreamSynchronize, cudaEventSynchronize, cudaFree / cudaFreeHost (which
 * synchronise on a GPU too), a copy to pageable host memory (synchronous on a
 * GPU), and one item per cudaStreamQuery (the GPU making progress). A copy
 * from pageable host memory takes its bytes at the call, as CUDA stages them;
 * one from pinned memory reads them when it runs.
 *
 * Faults: syn_emu_inject_fault makes a later launch fail with a sticky error
 * when the queue reaches it, as an illegal address would on a GPU.
 *
 * Environment: SYN_EMU_DEVICES (default 1; 0 = no device),
 * SYN_EMU_MEMORY_MB (device memory, default 16384), SYN_EMU_DEFER (default 1;
 * 0 runs all work at the call), SYN_EMU_TRACE (a file for the call trace, "-"
 * for stderr). */
#include "cuda_runtime.h"
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <sys/mman.h>
#include <vector>

#if !defined(__x86_64__)
#error "the CUDA emulator's fibers are written for x86-64"
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SYN_EMU_ASAN 1
#else
#define SYN_EMU_ASAN 0
#endif

dim3 threadIdx, blockIdx, blockDim, gridDim;

/* ---- errors -------------------------------------------------------------------- */

static thread_local cudaError_t last_error = cudaSuccess;
/* A sticky error (an injected fault): the context is lost, every later call
 * returns it, and queued work is dropped. */
static std::atomic<int> sticky{cudaSuccess};
static cudaError_t dead(void) { return (cudaError_t)sticky.load(); }

static cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}

[[noreturn]] static void die(const char *fmt, const char *a = "", const char *b = "") {
    fprintf(stderr, "cuda emulator: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    abort();
}

extern "C" {

cudaError_t cudaGetLastError(void) {
    if (dead()) return dead();
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return dead() ? dead() : last_error; }

static const struct {
    cudaError_t e;
    const char *name, *text;
} error_names[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver",
     "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorIllegalState, "cudaErrorIllegalState", "the operation cannot be performed in the present state"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
     "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
     "operation failed due to a previous error during capture"},
    {cudaErrorStreamCaptureUnmatched, "cudaErrorStreamCaptureUnmatched",
     "capture was not ended in the same stream as it began"},
};
const char *cudaGetErrorString(cudaError_t e) {
    for (const auto &x : error_names)
        if (x.e == e) return x.text;
    return "unknown error (emulator)";
}
const char *cudaGetErrorName(cudaError_t e) {
    for (const auto &x : error_names)
        if (x.e == e) return x.name;
    return "cudaErrorUnknown";
}

/* ---- devices --------------------------------------------------------------------- */

static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}
static FILE *trace_file(void) {
    static FILE *f = [] {
        const char *path = getenv("SYN_EMU_TRACE");
        if (!path || !*path) return (FILE *)nullptr;
        if (strcmp(path, "-") == 0) return stderr;
        FILE *t = fopen(path, "w");
        if (!t) fprintf(stderr, "cuda emulator: cannot write the trace %s\n", path);
        return t;
    }();
    return f;
}
extern "C" void syn_emu_trace(const char *fmt, ...) {
    FILE *f = trace_file();
    if (!f) return;
    static std::mutex lock;
    std::lock_guard<std::mutex> g(lock);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}
static int n_devices(void) { return env_int("SYN_EMU_DEVICES", 1); }
static size_t memory_cap(void) { return (size_t)env_int("SYN_EMU_MEMORY_MB", 16384) << 20; }
static thread_local int current_device = 0;

cudaError_t cudaGetDeviceCount(int *n) {
    if (!n) return fail(cudaErrorInvalidValue);
    *n = 0;
    if (n_devices() <= 0) return fail(cudaErrorNoDevice);
    *n = n_devices();
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= n_devices()) return fail(cudaErrorInvalidDevice);
    current_device = d;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
    *d = current_device;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d) {
    if (d < 0 || d >= n_devices()) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator on the CPU (tests/cuda_emu)");
    p->totalGlobalMem = memory_cap();
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}

} /* extern "C" */

/* ---- the queue ---------------------------------------------------------------------- */

static std::mutex queue_lock;
static std::deque<std::function<void()>> queue;
static std::recursive_mutex run_lock; /* one runner at a time, in order */

static bool deferred(void) {
    static const int on = env_int("SYN_EMU_DEFER", 1);
    return on != 0;
}

/* Stream capture (thread-local mode): the capturing thread's work goes
 * into the graph, on every stream (the backend uses one). */
struct syn_emu_graph {
    std::vector<std::function<void()>> work;
};
struct syn_emu_graph_exec {
    std::shared_ptr<const std::vector<std::function<void()>>> work;
};
static thread_local cudaStream_t capture_stream;
static thread_local syn_emu_graph *capture_graph;
static thread_local bool capture_invalid; /* a refused call: the capture can only be ended */

bool syn_emu_capture_refuses(const char *what) {
    if (!capture_stream) return false;
    syn_emu_trace("%s during stream capture: refused", what);
    capture_invalid = true;
    fail(cudaErrorStreamCaptureUnsupported);
    return true;
}
/* Work queued after a refused call fails, as CUDA fails it. */
static bool capture_dead(void) {
    if (!capture_stream || !capture_invalid) return false;
    fail(cudaErrorStreamCaptureInvalidated);
    return true;
}

void syn_emu_enqueue(std::function<void()> work) {
    if (capture_stream) {
        if (!capture_invalid) capture_graph->work.push_back(std::move(work));
        return;
    }
    if (!deferred()) {
        std::lock_guard<std::recursive_mutex> r(run_lock);
        work();
        return;
    }
    std::lock_guard<std::mutex> g(queue_lock);
    queue.push_back(std::move(work));
}

/* Runs queued work: all of it, or one item; true if some is left. */
static bool run_queue(bool one) {
    std::lock_guard<std::recursive_mutex> r(run_lock);
    for (;;) {
        std::function<void()> work;
        {
            std::lock_guard<std::mutex> g(queue_lock);
            if (queue.empty()) return false;
            work = std::move(queue.front());
            queue.pop_front();
        }
        if (!dead()) work(); /* after a fault the context is gone: dropped */
        if (one) {
            std::lock_guard<std::mutex> g(queue_lock);
            return !queue.empty();
        }
    }
}
static void synchronize(void) { run_queue(false); }

extern "C" {

/* ---- memory ------------------------------------------------------------------------ */

static std::mutex mem_lock;
static std::map<uintptr_t, size_t> live_device, live_pinned; /* base -> bytes */
static size_t live_bytes;
static uint64_t n_mallocs, n_copies, n_memsets, n_syncs, n_graph_launches, n_graph_items;

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    std::lock_guard<std::mutex> g(mem_lock);
    *total_bytes = memory_cap();
    *free_bytes = memory_cap() - live_bytes;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t n) {
    if (!p) return fail(cudaErrorInvalidValue);
    *p = nullptr;
    if (dead()) return dead();
    if (syn_emu_capture_refuses("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
    std::lock_guard<std::mutex> g(mem_lock);
    if (n > memory_cap() - live_bytes) return fail(cudaErrorMemoryAllocation);
    syn_emu_trace("cudaMalloc %zu", n);
    void *q = nullptr; /* 256-byte aligned, as cudaMalloc's (cublasSetWorkspace checks it) */
    if (posix_memalign(&q, 256, n ? n : 1) != 0) return fail(cudaErrorMemoryAllocation);
    memset(q, 0xFF, n); /* fresh device memory holds garbage: NaN floats here */
    live_device[(uintptr_t)q] = n;
    live_bytes += n;
    n_mallocs++;
    *p = q;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    if (syn_emu_capture_refuses("cudaFree")) return cudaErrorStreamCaptureUnsupported;
    syn_emu_trace("cudaFree");
    synchronize();
    std::lock_guard<std::mutex> g(mem_lock);
    auto it = live_device.find((uintptr_t)p);
    if (it == live_device.end()) die("cudaFree(%s): not a live device allocation", "ptr");
    live_bytes -= it->second;
    live_device.erase(it);
    free(p);
    return dead();
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    if (syn_emu_capture_refuses("cudaMallocHost")) return cudaErrorStreamCaptureUnsupported;
    syn_emu_trace("cudaMallocHost %zu", n);
    *p = malloc(n ? n : 1);
    if (!*p) return fail(cudaErrorMemoryAllocation);
    std::lock_guard<std::mutex> g(mem_lock);
    live_pinned[(uintptr_t)*p] = n;
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    if (!p) return cudaSuccess;
    if (syn_emu_capture_refuses("cudaFreeHost")) return cudaErrorStreamCaptureUnsupported;
    syn_emu_trace("cudaFreeHost");
    synchronize();
    std::lock_guard<std::mutex> g(mem_lock);
    auto it = live_pinned.find((uintptr_t)p);
    if (it == live_pinned.end()) die("cudaFreeHost(%s): not a live pinned allocation", "ptr");
    live_pinned.erase(it);
    free(p);
    return dead();
}

/* The allocation of `m` that holds [p, p + n) (n may be 0: then p may be its end). */
static bool inside(const std::map<uintptr_t, size_t> &m, const void *p, size_t n) {
    auto it = m.upper_bound((uintptr_t)p);
    if (it == m.begin()) return false;
    --it;
    uintptr_t a = (uintptr_t)p;
    return a >= it->first && a + n <= it->first + it->second;
}

void syn_emu_check_range(const void *p, size_t n, const char *what) {
    if (n == 0) return;
    std::lock_guard<std::mutex> g(mem_lock);
    if (!inside(live_device, p, n)) {
        fprintf(stderr, "cuda emulator: %s: [%p, +%zu bytes) is not inside one device allocation\n", what, p, n);
        abort();
    }
}

void syn_emu_check_kernel_pointer(const char *kernel, int arg, const void *p) {
    if (!p) return;
    std::lock_guard<std::mutex> g(mem_lock);
    if (inside(live_device, p, 0) || inside(live_pinned, p, 0)) return;
    fprintf(stderr, "cuda emulator: kernel %s: pointer argument %d (%p) is neither device nor pinned memory\n", kernel,
            arg, p);
    abort();
}

static bool is_pinned(const void *p, size_t n) {
    std::lock_guard<std::mutex> g(mem_lock);
    return inside(live_pinned, p, n);
}

static void count(uint64_t *counter) {
    std::lock_guard<std::mutex> g(mem_lock);
    (*counter)++;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind k, cudaStream_t s) {
    (void)s;
    if (dead()) return dead();
    if (n == 0) return cudaSuccess;
    if (!dst || !src) return fail(cudaErrorInvalidValue);
    if (k == cudaMemcpyHostToHost || k == cudaMemcpyDefault) return fail(cudaErrorInvalidValue); /* unused here */
    if (capture_dead()) return cudaErrorStreamCaptureInvalidated;
    /* pageable host memory: staged or waited for at the call, which a graph cannot replay */
    if (((k == cudaMemcpyHostToDevice && !is_pinned(src, n)) || (k == cudaMemcpyDeviceToHost && !is_pinned(dst, n))) &&
        syn_emu_capture_refuses("cudaMemcpyAsync with pageable host memory"))
        return cudaErrorStreamCaptureUnsupported;
    const bool to_device = k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice;
    const bool from_device = k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice;
    if (to_device) syn_emu_check_range(dst, n, "cudaMemcpy destination");
    if (from_device) syn_emu_check_range(src, n, "cudaMemcpy source");
    count(&n_copies);
    static const char *const kinds[] = {"HtoH", "HtoD", "DtoH", "DtoD", "default"};
    syn_emu_trace("cudaMemcpyAsync %s %zu%s", kinds[k], n,
                  (k == cudaMemcpyHostToDevice && is_pinned(src, n)) || (k == cudaMemcpyDeviceToHost && is_pinned(dst, n))
                      ? " pinned"
                      : "");
    if (k == cudaMemcpyHostToDevice && !is_pinned(src, n)) {
        /* pageable: CUDA stages the bytes before the call returns */
        auto bytes = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + n);
        syn_emu_enqueue([dst, bytes] { memcpy(dst, bytes->data(), bytes->size()); });
    } else if (k == cudaMemcpyDeviceToHost && !is_pinned(dst, n)) {
        synchronize(); /* pageable: the call returns once the copy is done */
        if (dead()) return dead();
        memcpy(dst, src, n);
    } else {
        syn_emu_enqueue([dst, src, n] { memmove(dst, src, n); });
    }
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *dst, int v, size_t n, cudaStream_t s) {
    (void)s;
    if (dead()) return dead();
    if (capture_dead()) return cudaErrorStreamCaptureInvalidated;
    syn_emu_check_range(dst, n, "cudaMemset");
    count(&n_memsets);
    syn_emu_trace("cudaMemsetAsync %zu", n);
    if (n) syn_emu_enqueue([dst, v, n] { memset(dst, v, n); });
    return cudaSuccess;
}

/* ---- streams and events: everything has run when the call returns ---------------- */

struct syn_emu_stream {
    unsigned flags;
};
struct syn_emu_event {
    unsigned flags;
    bool recorded, done; /* recorded: cudaEventRecord was called; done: the queue reached it */
    double ms;
};

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    *s = new syn_emu_stream{flags};
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (syn_emu_capture_refuses("cudaStreamDestroy")) return cudaErrorStreamCaptureUnsupported;
    synchronize();
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    if (syn_emu_capture_refuses("cudaStreamSynchronize")) return cudaErrorStreamCaptureUnsupported;
    syn_emu_trace("cudaStreamSynchronize");
    count(&n_syncs);
    synchronize();
    return dead();
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
    (void)s;
    if (syn_emu_capture_refuses("cudaStreamQuery")) return cudaErrorStreamCaptureUnsupported;
    syn_emu_trace("cudaStreamQuery");
    bool left = run_queue(true);
    return dead() ? dead() : left ? cudaErrorNotReady : cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    *e = new syn_emu_event{flags, false, false, 0.0};
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    (void)s;
    if (!e) return fail(cudaErrorInvalidResourceHandle);
    if (dead()) return dead();
    /* CUDA captures an event record as a node; the backend never needs one, and the emulator does not model it */
    if (syn_emu_capture_refuses("cudaEventRecord")) return cudaErrorStreamCaptureUnsupported;
    syn_emu_trace("cudaEventRecord");
    e->recorded = true;
    e->done = false;
    syn_emu_enqueue([e] {
        e->done = true;
        e->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
    });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (!e) return fail(cudaErrorInvalidResourceHandle);
    if (syn_emu_capture_refuses("cudaEventSynchronize")) return cudaErrorStreamCaptureUnsupported;
    if (!e->recorded) return cudaSuccess;
    syn_emu_trace("cudaEventSynchronize");
    while (!e->done && run_queue(true)) {
    } /* up to the event, not beyond */
    return dead();
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!a || !b) return fail(cudaErrorInvalidResourceHandle);
    if ((a->flags | b->flags) & cudaEventDisableTiming) return fail(cudaErrorInvalidResourceHandle);
    if (!a->recorded || !b->recorded) return fail(cudaErrorInvalidResourceHandle);
    if (!a->done || !b->done) return fail(cudaErrorNotReady);
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (syn_emu_capture_refuses("cudaEventDestroy")) return cudaErrorStreamCaptureUnsupported;
    synchronize(); /* a queued record may still point at it */
    delete e;
    return cudaSuccess;
}

/* ---- graphs: a captured sequence, replayed as one queued item ------------------ */

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
    if (dead()) return dead();
    if (!s) return fail(cudaErrorInvalidValue); /* the legacy stream cannot capture */
    if (mode != cudaStreamCaptureModeThreadLocal) return fail(cudaErrorInvalidValue); /* not modelled */
    if (capture_stream) return fail(cudaErrorIllegalState);
    syn_emu_trace("cudaStreamBeginCapture");
    capture_stream = s;
    capture_graph = new syn_emu_graph;
    capture_invalid = false;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    *graph = nullptr;
    if (!capture_stream) return fail(cudaErrorIllegalState);
    if (s != capture_stream) return fail(cudaErrorStreamCaptureUnmatched);
    syn_emu_trace("cudaStreamEndCapture%s", capture_invalid ? ": invalidated" : "");
    bool invalid = capture_invalid;
    syn_emu_graph *g = capture_graph;
    capture_stream = nullptr;
    capture_graph = nullptr;
    capture_invalid = false;
    if (invalid) {
        delete g;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    if (dead()) {
        delete g;
        return dead();
    }
    *graph = g;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    *exec = nullptr;
    if (!graph || flags) return fail(cudaErrorInvalidValue);
    if (dead()) return dead();
    *exec = new syn_emu_graph_exec{std::make_shared<const std::vector<std::function<void()>>>(graph->work)};
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    (void)s;
    if (!exec) return fail(cudaErrorInvalidResourceHandle);
    if (dead()) return dead();
    if (syn_emu_capture_refuses("cudaGraphLaunch")) return cudaErrorStreamCaptureUnsupported;
    syn_emu_trace("cudaGraphLaunch %zu items", exec->work->size());
    {
        std::lock_guard<std::mutex> g(mem_lock);
        n_graph_launches++;
        n_graph_items += exec->work->size();
    }
    auto work = exec->work; /* stays alive if the exec is destroyed before the queue reaches it */
    syn_emu_enqueue([work] {
        for (const auto &item : *work)
            if (!dead()) item();
    });
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

} /* extern "C" */

/* ---- fibers ------------------------------------------------------------------------ */

/* syn_emu_switch(&save_sp, new_sp): saves the callee-saved registers on the
 * current stack, stores its stack pointer in *save_sp, and resumes the context
 * whose stack pointer is new_sp. A new context starts in syn_emu_trampoline,
 * which calls r13(r12). */
extern "C" void syn_emu_switch(void **save_sp, void *new_sp);
extern "C" void syn_emu_trampoline(void);
asm(R"(
    .text
    .globl syn_emu_switch
    .type syn_emu_switch, @function
syn_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size syn_emu_switch, .-syn_emu_switch
    .globl syn_emu_trampoline
    .type syn_emu_trampoline, @function
syn_emu_trampoline:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size syn_emu_trampoline, .-syn_emu_trampoline
    .section .note.GNU-stack,"",@progbits
    .text
)");

enum { F_READY, F_BLOCK_BAR, F_WARP_BAR, F_DONE };
static const size_t STACK_BYTES = (size_t)128 << 10;
static const int MAX_THREADS = 1024;

struct fiber {
    void *sp;
    int state;
    unsigned mask; /* of the shuffle it waits in */
    void *asan_fake;
};

struct scheduler {
    const syn_emu_launch_desc *d = nullptr;
    int n = 0, cur = 0;
    bool plain = false, synced = false;
    fiber f[MAX_THREADS];
    uint64_t lanes[MAX_THREADS]; /* shuffle exchange slots */
    char *stacks = nullptr;      /* MAX_THREADS stacks, each above a guard page */
    void *sched_sp = nullptr;
    void *asan_fake = nullptr;
    const void *main_bottom = nullptr;
    size_t main_size = 0;
};
static scheduler S;            /* of the launch running now, under launch_lock */
static std::recursive_mutex launch_lock; /* recursive: a nested launch is reported, not a deadlock */
static std::mutex stats_lock;
static uint64_t total_launches, total_fiber_blocks, total_plain_blocks;

static const size_t PAGE = 4096;
static char *stack_of(int i) { return S.stacks + (size_t)i * (STACK_BYTES + PAGE) + PAGE; }

static void set_thread_index(int t) {
    const dim3 &b = S.d->block;
    threadIdx = dim3(t % b.x, (t / b.x) % b.y, t / (b.x * b.y));
}

static void fiber_main(void *) {
#if SYN_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &S.main_bottom, &S.main_size);
#endif
    S.d->body(S.d->ctx);
    S.f[S.cur].state = F_DONE;
    void *dead;
#if SYN_EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, S.main_bottom, S.main_size);
#endif
    syn_emu_switch(&dead, S.sched_sp);
    __builtin_unreachable();
}

/* Back to the scheduler until this thread's barrier opens. */
static void yield(int state) {
    fiber &me = S.f[S.cur];
    me.state = state;
#if SYN_EMU_ASAN
    __sanitizer_start_switch_fiber(&me.asan_fake, S.main_bottom, S.main_size);
#endif
    syn_emu_switch(&me.sp, S.sched_sp);
#if SYN_EMU_ASAN
    __sanitizer_finish_switch_fiber(me.asan_fake, &S.main_bottom, &S.main_size);
#endif
}

static void resume(int i) {
    S.cur = i;
    set_thread_index(i);
#if SYN_EMU_ASAN
    __sanitizer_start_switch_fiber(&S.asan_fake, stack_of(i), STACK_BYTES);
#endif
    syn_emu_switch(&S.sched_sp, S.f[i].sp);
#if SYN_EMU_ASAN
    __sanitizer_finish_switch_fiber(S.asan_fake, nullptr, nullptr);
#endif
}

static void start_fiber(int i) {
    char *base = stack_of(i);
#if SYN_EMU_ASAN
    __asan_unpoison_memory_region(base, STACK_BYTES);
#endif
    void **top = (void **)(base + STACK_BYTES); /* 16-byte aligned */
    *--top = (void *)syn_emu_trampoline;        /* where syn_emu_switch's ret goes */
    *--top = nullptr;                           /* rbp */
    *--top = nullptr;                           /* rbx */
    *--top = nullptr;                           /* r12: fiber_main's argument */
    *--top = (void *)fiber_main;                /* r13 */
    *--top = nullptr;                           /* r14 */
    *--top = nullptr;                           /* r15 */
    S.f[i].sp = top;
    S.f[i].state = F_READY;
    S.f[i].asan_fake = nullptr;
}

[[noreturn]] static void launch_error(const char *what) {
    const syn_emu_launch_desc *d = S.d;
    fprintf(stderr,
            "cuda emulator: kernel %s, grid (%u,%u,%u), block (%u,%u,%u): %s (block (%u,%u,%u), thread (%u,%u,%u))\n",
            d->kernel, d->grid.x, d->grid.y, d->grid.z, d->block.x, d->block.y, d->block.z, what, blockIdx.x,
            blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
    abort();
}

/* Blocks run one at a time: a shared variable not yet filled in this block
 * (its generation is an earlier block's) gets garbage. */
static uint64_t block_generation;
static std::map<const void *, uint64_t> shared_filled;

void syn_emu_shared_fresh(void *p, size_t n) {
    uint64_t &g = shared_filled[p];
    if (g == block_generation) return;
    g = block_generation;
    memset(p, 0xFF, n);
}

void __syncthreads(void) {
    if (S.plain) launch_error("__syncthreads in a block run as plain calls: block 0 never synchronised");
    S.synced = true;
    yield(F_BLOCK_BAR);
}

void syn_emu_warp_xor(void *v, size_t size, unsigned mask, int lane_mask) {
    if (S.plain) launch_error("warp shuffle in a block run as plain calls: block 0 never synchronised");
    S.synced = true;
    const int t = S.cur, w0 = t & ~31, lane = t & 31, partner = lane ^ (lane_mask & 31);
    for (int l = 0; l < 32; l++)
        if ((mask >> l) & 1u) {
            if (w0 + l >= S.n) launch_error("shuffle mask names a lane beyond the block's last thread");
            if (S.f[w0 + l].state == F_DONE) launch_error("shuffle mask names a lane that has exited");
        }
    if (!((mask >> partner) & 1u)) launch_error("shuffle partner lane is not in the mask");
    uint64_t mine = 0;
    memcpy(&mine, v, size);
    S.lanes[t] = mine;
    S.f[t].mask = mask;
    yield(F_WARP_BAR); /* every lane has written */
    uint64_t theirs = S.lanes[w0 + partner];
    yield(F_WARP_BAR); /* every lane has read */
    memcpy(v, &theirs, size);
}

/* SYN_EMU_ORDER=reverse: threads between barriers and blocks after block 0
 * run last to first, so that a kernel relying on the order (a thread reading
 * what a lower one wrote without a barrier, a block reading what an earlier
 * block wrote) gives other results; a GPU promises no order. */
static bool reverse_order(void) {
    static const bool on = getenv("SYN_EMU_ORDER") && strcmp(getenv("SYN_EMU_ORDER"), "reverse") == 0;
    return on;
}

/* Runs the current block's threads as fibers until all have returned. */
static void run_block_fibers(void) {
    const int n = S.n;
    const bool rev = reverse_order();
    for (int i = 0; i < n; i++) start_fiber(i);
    for (;;) {
        for (int k = 0; k < n; k++) {
            int i = rev ? n - 1 - k : k;
            if (S.f[i].state == F_READY) resume(i);
        }
        int alive = 0, at_block = 0;
        for (int i = 0; i < n; i++) {
            alive += S.f[i].state != F_DONE;
            at_block += S.f[i].state == F_BLOCK_BAR;
        }
        if (alive == 0) return;
        if (at_block == alive) { /* __syncthreads: exited threads count as arrived */
            for (int i = 0; i < n; i++)
                if (S.f[i].state == F_BLOCK_BAR) S.f[i].state = F_READY;
            continue;
        }
        bool released = false;
        for (int w0 = 0; w0 < n; w0 += 32) {
            int live = 0, waiting = 0;
            for (int i = w0; i < w0 + 32 && i < n; i++) {
                live += S.f[i].state != F_DONE;
                waiting += S.f[i].state == F_WARP_BAR;
            }
            if (waiting > 0 && waiting == live) {
                for (int i = w0; i < w0 + 32 && i < n; i++)
                    if (S.f[i].state == F_WARP_BAR) {
                        for (int l = 0; l < 32; l++)
                            if (((S.f[i].mask >> l) & 1u) && S.f[w0 + l].state == F_DONE) {
                                set_thread_index(i);
                                launch_error("shuffle mask names a lane that has exited");
                            }
                        S.f[i].state = F_READY;
                    }
                released = true;
            }
        }
        if (!released) {
            for (int i = 0; i < n; i++)
                if (S.f[i].state != F_DONE) {
                    set_thread_index(i);
                    break;
                }
            launch_error("threads wait at different barriers (a __syncthreads or shuffle not reached by all): "
                         "this hangs on a GPU");
        }
    }
}

static void run_block_plain(void) {
    S.plain = true;
    const bool rev = reverse_order();
    for (int k = 0; k < S.n; k++) {
        int i = rev ? S.n - 1 - k : k;
        S.cur = i;
        set_thread_index(i);
        S.d->body(S.d->ctx);
    }
    S.plain = false;
}

static std::atomic<long> fault_countdown{-1};
static std::atomic<int> fault_error{cudaSuccess};

extern "C" void syn_emu_inject_fault(cudaError_t e, unsigned launches_before) {
    fault_error = e;
    fault_countdown = (long)launches_before;
}

/* Runs every block of a launch (from the queue), or faults instead. */
static void run_launch(const syn_emu_launch_desc *d) {
    const dim3 g = d->grid, b = d->block;
    long left = fault_countdown.load();
    if (left == 0) {
        fault_countdown = -1;
        sticky = fault_error.load();
        return;
    }
    if (left > 0) fault_countdown = left - 1;
    std::lock_guard<std::recursive_mutex> serial(launch_lock);
    if (S.d) die("kernel %s launched from inside kernel %s", d->kernel, S.d->kernel);
    if (!S.stacks) {
        size_t bytes = (size_t)MAX_THREADS * (STACK_BYTES + PAGE);
        void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) die("cannot map %s of fiber stacks", "132 MiB");
        S.stacks = (char *)m;
        for (int i = 0; i < MAX_THREADS; i++) mprotect(S.stacks + (size_t)i * (STACK_BYTES + PAGE), PAGE, PROT_NONE);
    }
    S.d = d;
    S.n = (int)(b.x * b.y * b.z);
    S.synced = false;
    blockDim = b;
    gridDim = g;
    bool fibers = true;
    uint64_t nf = 0, np = 0;
    const uint64_t nb = (uint64_t)g.x * g.y * g.z;
    for (uint64_t k = 0; k < nb; k++) {
        uint64_t lin = k == 0 || !reverse_order() ? k : nb - k; /* block 0 first: it decides */
        blockIdx = dim3((unsigned)(lin % g.x), (unsigned)(lin / g.x % g.y), (unsigned)(lin / g.x / g.y));
        block_generation++; /* from 1: a variable's first generation, 0, is never current */
        if (fibers) {
            run_block_fibers();
            nf++;
            fibers = S.synced; /* block 0 decides */
        } else {
            run_block_plain();
            np++;
        }
    }
    S.d = nullptr;
    std::lock_guard<std::mutex> lk(stats_lock);
    total_fiber_blocks += nf;
    total_plain_blocks += np;
}

void syn_emu_submit(const syn_emu_launch_desc *d, cudaStream_t stream) {
    (void)stream;
    const dim3 g = d->grid, b = d->block;
    const unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
    if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535 || threads == 0 ||
        threads > (unsigned long long)MAX_THREADS || b.z > 64 || d->shared_bytes > 48 * 1024) {
        d->release(d->ctx);
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    if (dead() || capture_dead()) {
        d->release(d->ctx);
        return;
    }
    {
        std::lock_guard<std::mutex> lk(stats_lock);
        total_launches++;
    }
    syn_emu_trace("launch %s <<<(%u,%u,%u), (%u,%u,%u), %zu>>>", d->kernel, g.x, g.y, g.z, b.x, b.y, b.z,
                  d->shared_bytes);
    /* the arguments live as long as the queued item (run or dropped) */
    std::shared_ptr<void> args(d->ctx, d->release);
    syn_emu_launch_desc copy = *d;
    syn_emu_enqueue([copy, args] { run_launch(&copy); });
}

extern "C" void syn_emu_get_stats(syn_emu_stats *out) {
    {
        std::lock_guard<std::mutex> lk(stats_lock);
        out->launches = total_launches;
        out->fiber_blocks = total_fiber_blocks;
        out->plain_blocks = total_plain_blocks;
    }
    std::lock_guard<std::mutex> g(mem_lock);
    out->mallocs = n_mallocs;
    out->copies = n_copies;
    out->memsets = n_memsets;
    out->syncs = n_syncs;
    out->graph_launches = n_graph_launches;
    out->graph_items = n_graph_items;
    out->live_bytes = live_bytes;
}
