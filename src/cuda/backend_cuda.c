/* The CUDA backend's host side: device discovery, lazy per-GPU creation (one
 * non-blocking stream, a cuBLAS handle bound to it; the cuDNN handle comes
 * later, on the first convolution), a caching allocator and the workspace on
 * top of it, copies, fills, errors (sticky ones poison the backend), describe,
 * and the kernel table. Kernels live in the *.cu files of this directory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cudnn.h>
#include "cuda_common.h"

static syn__cuda *registry[SYN_CUDA_MAX_DEVICES];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER; /* brief: reads and writes of registry */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;   /* one creation at a time */

/* ---- errors ---------------------------------------------------------------- */

/* "src/cuda/x.cu" rather than the build's absolute path. */
static const char *short_path(const char *file) {
    const char *s = strstr(file, "src/cuda/");
    return s ? s : file;
}

/* Errors after which the CUDA context cannot be used any more. */
static bool is_sticky(cudaError_t e) {
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
        return true;
    default:
        return false;
    }
}

static void mark_broken(const char *msg) {
    int dev = -1;
    bool known = cudaGetDevice(&dev) == cudaSuccess && dev >= 0 && dev < SYN_CUDA_MAX_DEVICES;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < SYN_CUDA_MAX_DEVICES; i++) {
        syn__cuda *cu = registry[i];
        if (!cu || cu->broken || (known && i != dev)) continue;
        snprintf(cu->broken_msg, sizeof cu->broken_msg, "%s", msg);
        cu->broken = 1;
    }
    pthread_mutex_unlock(&registry_lock);
}

syn_status syn__cuda_fail(cudaError_t e, const char *file, int line, const char *expr) {
    char msg[512];
    int dev = -1;
    (void)cudaGetLastError(); /* a non-sticky error must not resurface at the next launch check */
    if (cudaGetDevice(&dev) != cudaSuccess) dev = -1;
    snprintf(msg, sizeof msg, "%s:%d: %s: %s (%s)", short_path(file), line, expr, cudaGetErrorString(e),
             cudaGetErrorName(e));
    if (is_sticky(e)) mark_broken(msg);
    if (e == cudaErrorMemoryAllocation) return syn__error(SYN_ERR_OOM, "cuda:%d: %s", dev, msg);
    return syn__error(SYN_ERR_DEVICE, "cuda:%d: %s", dev, msg);
}

syn_status syn__cublas_fail(cublasStatus_t s, const char *file, int line, const char *expr) {
    int dev = -1;
    /* An execution failure usually hides a sticky CUDA error: report that. */
    cudaError_t pending = cudaGetLastError();
    if (pending == cudaSuccess && s == CUBLAS_STATUS_EXECUTION_FAILED) pending = cudaStreamQuery(0);
    if (is_sticky(pending)) return syn__cuda_fail(pending, file, line, expr);
    (void)cudaGetLastError();
    if (cudaGetDevice(&dev) != cudaSuccess) dev = -1;
    return syn__error(s == CUBLAS_STATUS_ALLOC_FAILED ? SYN_ERR_OOM : SYN_ERR_DEVICE, "cuda:%d: %s:%d: %s: %s (%s)",
                      dev, short_path(file), line, expr, cublasGetStatusString(s), cublasGetStatusName(s));
}

/* cuDNN 9 statuses come in categories (NOT_SUPPORTED 3000, INTERNAL_ERROR
 * 4000 ...); cudnnGetLastErrorString adds the library's own detail. */
syn_status syn__cudnn_fail(cudnnStatus_t s, const char *file, int line, const char *expr) {
    int dev = -1;
    cudaError_t pending = cudaGetLastError();
    int category = (int)s / 1000 * 1000;
    if (pending == cudaSuccess && category == 5000 /* EXECUTION_FAILED */) pending = cudaStreamQuery(0);
    if (is_sticky(pending)) return syn__cuda_fail(pending, file, line, expr);
    (void)cudaGetLastError();
    if (cudaGetDevice(&dev) != cudaSuccess) dev = -1;
    char detail[256] = "";
#if CUDNN_MAJOR >= 9
    cudnnGetLastErrorString(detail, sizeof detail);
#endif
    syn_status st = SYN_ERR_DEVICE;
#if CUDNN_MAJOR >= 9
    if (s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED || s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
        st = SYN_ERR_OOM;
    else if (category == 3000)
        st = SYN_ERR_UNSUPPORTED;
#else
    if (s == CUDNN_STATUS_ALLOC_FAILED) st = SYN_ERR_OOM;
    else if (s == CUDNN_STATUS_NOT_SUPPORTED) st = SYN_ERR_UNSUPPORTED;
#endif
    return syn__error(st, "cuda:%d: %s:%d: %s: %s (%d)%s%s", dev, short_path(file), line, expr, cudnnGetErrorString(s),
                      (int)s, detail[0] ? ": " : "", detail);
}

syn_status syn__cuda_enter(syn_backend *be) {
    syn__cuda *cu = syn__cu(be);
    if (cu->broken)
        return syn__error(SYN_ERR_DEVICE, "cuda:%d is unusable after an earlier error: %s", cu->index, cu->broken_msg);
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess || cur != cu->index) {
        (void)cudaGetLastError();
        SYN_CUDA_TRY(cudaSetDevice(cu->index));
    }
    return SYN_OK;
}

/* Something a CUDA graph cannot record happened while one is captured: the
 * capture is spoiled, and capture_end says why (the first such thing). */
static void capture_spoil(syn__cuda *cu, const char *what) {
    if (!cu->capture_spoiled[0]) snprintf(cu->capture_spoiled, sizeof cu->capture_spoiled, "%s", what);
}

/* The same for a call that then fails. */
static syn_status capture_refuse(syn__cuda *cu, const char *what) {
    capture_spoil(cu, what);
    return syn__error(SYN_ERR_UNSUPPORTED, "cuda:%d: %s during a CUDA graph capture", cu->index, what);
}

/* ---- caching allocator -------------------------------------------------------
 * Sizes round up to 512 bytes (to 2 MiB from 1 MiB on), freed blocks stay
 * cached and are handed out again for requests of the same size class (a block
 * at most a quarter larger is accepted), so a training loop that allocates and
 * frees the same sizes never reaches cudaMalloc/cudaFree. On cudaMalloc
 * failure the cache is released and the allocation retried once. All work is
 * on the backend's one stream, so a block freed after queued kernels used it
 * is safe to reuse for kernels queued later. SYN_CUDA_NO_CACHE=1 turns the
 * cache off (exact sizes, cudaFree at once) for compute-sanitizer runs. */

static size_t round_size(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes < ((size_t)1 << 20)) return (bytes + 511) & ~(size_t)511;
    const size_t mb2 = (size_t)2 << 20;
    return (bytes + mb2 - 1) & ~(mb2 - 1);
}

static size_t live_slot(const syn__cuda *cu, const void *p) {
    uint64_t h = ((uint64_t)(uintptr_t)p >> 9) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (cu->cap_live - 1);
}

/* Inserts into the live table (cap_live a power of two, load <= 1/2). */
static bool live_put(syn__cuda *cu, void *p, size_t size) {
    if ((cu->n_live + 1) * 2 > cu->cap_live) {
        size_t cap = cu->cap_live ? cu->cap_live * 2 : 256;
        syn__cuda_block *old = cu->live, *t = calloc(cap, sizeof *t);
        if (!t) return false;
        size_t old_cap = cu->cap_live;
        cu->live = t;
        cu->cap_live = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].ptr) {
                size_t k = live_slot(cu, old[i].ptr);
                while (t[k].ptr) k = (k + 1) & (cap - 1);
                t[k] = old[i];
            }
        free(old);
    }
    size_t k = live_slot(cu, p);
    while (cu->live[k].ptr) k = (k + 1) & (cu->cap_live - 1);
    cu->live[k].ptr = p;
    cu->live[k].size = size;
    cu->n_live++;
    return true;
}

/* Removes p from the live table (backward-shift deletion); its size, or 0. */
static size_t live_take(syn__cuda *cu, const void *p) {
    if (!cu->cap_live) return 0;
    size_t mask = cu->cap_live - 1, k = live_slot(cu, p);
    while (cu->live[k].ptr && cu->live[k].ptr != p) k = (k + 1) & mask;
    if (!cu->live[k].ptr) return 0;
    size_t size = cu->live[k].size;
    cu->live[k].ptr = NULL;
    cu->n_live--;
    for (size_t j = (k + 1) & mask; cu->live[j].ptr; j = (j + 1) & mask) {
        size_t home = live_slot(cu, cu->live[j].ptr);
        /* move j into the hole k unless its home lies cyclically in (k, j] */
        bool stays = k <= j ? (home > k && home <= j) : (home > k || home <= j);
        if (stays) continue;
        cu->live[k] = cu->live[j];
        cu->live[j].ptr = NULL;
        k = j;
    }
    return size;
}

/* First cached block with size >= want (binary search on the sorted list). */
static int cached_lower_bound(const syn__cuda *cu, size_t want) {
    int lo = 0, hi = cu->n_cached;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (cu->cached[mid].size < want) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static bool cached_put(syn__cuda *cu, void *p, size_t size) {
    if (cu->n_cached == cu->cap_cached) {
        int cap = cu->cap_cached ? cu->cap_cached * 2 : 64;
        syn__cuda_block *t = realloc(cu->cached, (size_t)cap * sizeof *t);
        if (!t) return false;
        cu->cached = t;
        cu->cap_cached = cap;
    }
    int k = cached_lower_bound(cu, size);
    memmove(cu->cached + k + 1, cu->cached + k, (size_t)(cu->n_cached - k) * sizeof *cu->cached);
    cu->cached[k].ptr = p;
    cu->cached[k].size = size;
    cu->n_cached++;
    cu->stats.cached += size;
    return true;
}

/* Gives every cached block back to the driver, once queued kernels that may
 * still touch a freed block have finished. */
static void release_cache(syn__cuda *cu) {
    if (cu->n_cached && cudaStreamSynchronize(cu->stream) != cudaSuccess) (void)cudaGetLastError();
    for (int i = 0; i < cu->n_cached; i++) {
        if (cudaFree(cu->cached[i].ptr) != cudaSuccess) (void)cudaGetLastError();
        cu->stats.reserved -= cu->cached[i].size;
        cu->stats.releases++;
    }
    cu->n_cached = 0;
    cu->stats.cached = 0;
}

static syn_status cuda_alloc(syn_backend *be, size_t bytes, void **out) {
    *out = NULL;
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    if (bytes > ((size_t)1 << 62))
        return syn__error(SYN_ERR_OOM, "cuda:%d: out of memory allocating %zu bytes", cu->index, bytes);
    /* a block taken now might be freed and handed out again while the graph still uses it */
    if (cu->capturing) return capture_refuse(cu, "allocating device memory");
    size_t size = cu->no_cache ? (bytes ? bytes : 1) : round_size(bytes);
    pthread_mutex_lock(&cu->lock);
    void *p = NULL;
    int k = cached_lower_bound(cu, size);
    if (!cu->no_cache && k < cu->n_cached && cu->cached[k].size <= size + size / 4) {
        p = cu->cached[k].ptr;
        size = cu->cached[k].size;
        memmove(cu->cached + k, cu->cached + k + 1, (size_t)(cu->n_cached - k - 1) * sizeof *cu->cached);
        cu->n_cached--;
        cu->stats.cached -= size;
    } else {
        cudaError_t e = cudaMalloc(&p, size);
        if (e == cudaErrorMemoryAllocation) {
            (void)cudaGetLastError();
            release_cache(cu);
            e = cudaMalloc(&p, size);
        }
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            size_t free_b = 0, total_b = 0;
            if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
            pthread_mutex_unlock(&cu->lock);
            if (e == cudaErrorMemoryAllocation)
                return syn__error(SYN_ERR_OOM,
                                  "cuda:%d: out of memory allocating %zu bytes (%zu bytes free of %zu, %zu held by Synapse)",
                                  cu->index, bytes, free_b, total_b, cu->stats.reserved);
            return syn__cuda_fail(e, __FILE__, __LINE__, "cudaMalloc(&p, size)");
        }
        cu->stats.reserved += size;
        cu->stats.mallocs++;
    }
    if (!live_put(cu, p, size)) {
        cached_put(cu, p, size); /* keep it for later rather than leak it */
        pthread_mutex_unlock(&cu->lock);
        return syn__error(SYN_ERR_OOM, "cuda:%d: allocator bookkeeping: out of host memory", cu->index);
    }
    cu->stats.in_use += size;
    if (cu->stats.in_use > cu->stats.peak) cu->stats.peak = cu->stats.in_use;
    pthread_mutex_unlock(&cu->lock);
    *out = p;
    return SYN_OK;
}

static void cuda_free(syn_backend *be, void *p) {
    if (!p) return;
    syn__cuda *cu = syn__cu(be);
    pthread_mutex_lock(&cu->lock);
    size_t size = live_take(cu, p);
    if (size && cu->capturing) { /* cudaFree cannot be recorded: the block waits in the cache */
        capture_spoil(cu, "freeing device memory");
        cu->stats.in_use -= size;
        if (!cached_put(cu, p, size)) live_put(cu, p, size); /* (no host memory for the list: kept live) */
    } else if (size) {
        cu->stats.in_use -= size;
        if (cu->no_cache || !cached_put(cu, p, size)) { /* (or no host memory for the list) */
            /* queued kernels may still use p */
            if (cudaStreamSynchronize(cu->stream) != cudaSuccess) (void)cudaGetLastError();
            if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
            cu->stats.reserved -= size;
            cu->stats.releases++;
        }
    }
    pthread_mutex_unlock(&cu->lock);
}

syn_status syn__cuda_memory_stats(int index, syn__cuda_mem_stats *out) {
    if (index < 0 || index >= SYN_CUDA_MAX_DEVICES || !out)
        return syn__error(SYN_ERR_ARG, "syn__cuda_memory_stats: bad arguments");
    pthread_mutex_lock(&registry_lock);
    syn__cuda *cu = registry[index];
    pthread_mutex_unlock(&registry_lock);
    if (!cu) return syn__error(SYN_ERR_ARG, "cuda:%d: backend not created", index);
    pthread_mutex_lock(&cu->lock);
    *out = cu->stats;
    pthread_mutex_unlock(&cu->lock);
    return SYN_OK;
}

static syn_status cuda_memory(syn_backend *be, size_t *in_use, size_t *peak) {
    syn__cuda *cu = syn__cu(be);
    pthread_mutex_lock(&cu->lock);
    *in_use = cu->stats.in_use;
    *peak = cu->stats.peak;
    pthread_mutex_unlock(&cu->lock);
    return SYN_OK;
}

/* ---- copies, fills, synchronisation --------------------------------------------- */

/* Copies through staging buffer `st` (see syn__cuda_stage): waits for the
 * buffer's previous copy, grows it if needed, fills it on the host and queues
 * the DMA. *staged false (and SYN_OK) when no pinned memory could be had:
 * the caller copies directly. */
static syn_status stage_copy(syn__cuda *cu, syn__cuda_stage *st, void *dst, const void *src, size_t bytes,
                             bool *staged) {
    *staged = false;
    if (st->done) SYN_CUDA_TRY(cudaEventSynchronize(st->done));
    else SYN_CUDA_TRY(cudaEventCreateWithFlags(&st->done, cudaEventDisableTiming));
    if (st->cap < bytes) {
        void *old = st->host;
        st->host = NULL;
        st->cap = 0;
        if (old) SYN_CUDA_TRY(cudaFreeHost(old));
        size_t cap = (size_t)64 << 10;
        while (cap < bytes) cap *= 2; /* grows a few times, then every step reuses it */
        if (cudaMallocHost(&st->host, cap) != cudaSuccess) {
            (void)cudaGetLastError();
            st->host = NULL;
            return SYN_OK;
        }
        st->cap = cap;
    }
    memcpy(st->host, src, bytes);
    SYN_CUDA_TRY(cudaMemcpyAsync(dst, st->host, bytes, cudaMemcpyHostToDevice, cu->stream));
    SYN_CUDA_TRY(cudaEventRecord(st->done, cu->stream));
    *staged = true;
    return SYN_OK;
}

/* The source may be pageable and freed right after: it is copied into a
 * pinned staging buffer and the call returns with the DMA queued; large
 * copies (or no pinned memory) go straight from src and wait. */
static syn_status cuda_copy_h2d(syn_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return SYN_OK;
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    if (cu->capturing) return capture_refuse(cu, "a copy from the host");
    if (bytes <= SYN_CUDA_STAGE_MAX) {
        bool staged = false;
        pthread_mutex_lock(&cu->stage_lock);
        syn__cuda_stage *st = &cu->stage[cu->stage_next];
        cu->stage_next = (cu->stage_next + 1) % SYN_CUDA_STAGES;
        syn_status s = stage_copy(cu, st, dst, src, bytes, &staged);
        pthread_mutex_unlock(&cu->stage_lock);
        if (s != SYN_OK || staged) return s;
    }
    SYN_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu->stream));
    SYN_CUDA_TRY(cudaStreamSynchronize(cu->stream));
    return SYN_OK;
}

/* The host reads dst right after: wait for the copy. */
static syn_status cuda_copy_d2h(syn_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return SYN_OK;
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    if (cu->capturing) return capture_refuse(cu, "a copy to the host");
    SYN_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu->stream));
    SYN_CUDA_TRY(cudaStreamSynchronize(cu->stream));
    return SYN_OK;
}

static syn_status cuda_copy_d2d(syn_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return SYN_OK;
    SYN_CUDA_ENTER(be);
    SYN_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, syn__cu(be)->stream));
    return SYN_OK;
}

static syn_status cuda_zero(syn_backend *be, void *dst, size_t bytes) {
    if (!bytes) return SYN_OK;
    SYN_CUDA_ENTER(be);
    SYN_CUDA_TRY(cudaMemsetAsync(dst, 0, bytes, syn__cu(be)->stream));
    return SYN_OK;
}

static syn_status cuda_fill_f32(syn_backend *be, float *dst, float v, int64_t n) {
    if (n <= 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    SYN_CUDA_TRY(syn__cuda_fill32_launch(dst, bits, n, syn__cu(be)->stream));
    return SYN_OK;
}

static syn_status cuda_fill_i32(syn_backend *be, int32_t *dst, int32_t v, int64_t n) {
    if (n <= 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    SYN_CUDA_TRY(syn__cuda_fill32_launch(dst, bits, n, syn__cu(be)->stream));
    return SYN_OK;
}

static syn_status cuda_sync(syn_backend *be) {
    SYN_CUDA_ENTER(be);
    if (syn__cu(be)->capturing) return capture_refuse(syn__cu(be), "waiting for the device");
    SYN_CUDA_TRY(cudaStreamSynchronize(syn__cu(be)->stream));
    return SYN_OK;
}

/* ---- timing marks: CUDA events on the backend's stream ---------------------------- */

static syn_status cuda_mark_create(syn_backend *be, void **mark) {
    SYN_CUDA_ENTER(be);
    cudaEvent_t ev = NULL;
    SYN_CUDA_TRY(cudaEventCreateWithFlags(&ev, cudaEventDefault));
    *mark = ev;
    return SYN_OK;
}

static syn_status cuda_mark_record(syn_backend *be, void *mark) {
    SYN_CUDA_ENTER(be);
    if (syn__cu(be)->capturing) return capture_refuse(syn__cu(be), "a timing mark");
    SYN_CUDA_TRY(cudaEventRecord((cudaEvent_t)mark, syn__cu(be)->stream));
    return SYN_OK;
}

static syn_status cuda_mark_elapsed(syn_backend *be, void *start, void *stop, double *ms) {
    SYN_CUDA_ENTER(be);
    float f = 0;
    SYN_CUDA_TRY(cudaEventSynchronize((cudaEvent_t)stop));
    SYN_CUDA_TRY(cudaEventElapsedTime(&f, (cudaEvent_t)start, (cudaEvent_t)stop));
    *ms = f;
    return SYN_OK;
}

static void cuda_mark_destroy(syn_backend *be, void *mark) {
    (void)be;
    if (mark && cudaEventDestroy((cudaEvent_t)mark) != cudaSuccess) (void)cudaGetLastError();
}

/* "NVIDIA H100 80GB HBM3, 79.1 GiB, compute 9.0, 132 SMs, driver 13.0, runtime 13.0, cuBLAS 13.0.2, cuDNN 9.14.0, TF32 off" */
static syn_status cuda_describe(syn_backend *be, char *buf, size_t size) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    struct cudaDeviceProp prop;
    int drv = 0, rt = 0, blas = 0;
    SYN_CUDA_TRY(cudaGetDeviceProperties(&prop, cu->index));
    SYN_CUDA_TRY(cudaDriverGetVersion(&drv));
    SYN_CUDA_TRY(cudaRuntimeGetVersion(&rt));
    SYN_CUBLAS_TRY(cublasGetVersion(cu->blas, &blas));
    size_t dnn = cudnnGetVersion(); /* 9.x: M*10000 + m*100 + p; 8.x: M*1000 + m*100 + p */
    size_t dmaj = dnn >= 90000 ? dnn / 10000 : dnn / 1000, dmin = dnn >= 90000 ? dnn % 10000 / 100 : dnn % 1000 / 100;
    snprintf(buf, size,
             "%s, %.1f GiB, compute %d.%d, %d SMs, driver %d.%d, runtime %d.%d, cuBLAS %d.%d.%d, cuDNN %zu.%zu.%zu, TF32 %s%s",
             prop.name, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.major, prop.minor,
             prop.multiProcessorCount, drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10, blas / 10000,
             blas % 10000 / 100, blas % 100, dmaj, dmin, dnn % 100, cu->tf32 ? "on (SYN_ALLOW_TF32=1)" : "off",
             cu->deterministic ? ", deterministic (SYN_DETERMINISTIC=1)" : "");
    return SYN_OK;
}

/* One block from the caching allocator, replaced by a larger one when a call
 * asks for more. The old block goes back to the cache; kernels queued on the
 * stream may still read it, and whatever reuses it is queued after them on
 * the same stream. Not thread-safe: one graph runs on a device at a time. */
static syn_status cuda_workspace(syn_backend *be, size_t bytes, void **out) {
    syn__cuda *cu = syn__cu(be);
    *out = NULL;
    if (bytes > cu->ws_bytes || (bytes && !cu->ws)) {
        if (cu->capturing) return capture_refuse(cu, "growing the workspace");
        void *p = NULL;
        cuda_free(be, cu->ws);
        cu->ws = NULL;
        cu->ws_bytes = 0;
        SYN_TRY(cuda_alloc(be, bytes, &p));
        cu->ws = p;
        cu->ws_bytes = bytes;
        cu->ws_epoch++;
    }
    *out = cu->ws;
    return SYN_OK;
}

/* ---- CUDA graphs (be->capture_begin ... replay) --------------------------------- */

typedef struct {
    cudaGraphExec_t exec;
    uint64_t ws_epoch; /* the workspace it was captured with */
} cuda_replay_graph;

/* Thread-local capture mode: another thread's unrelated calls (a loader's
 * copies on its own stream) neither fail nor spoil it. */
static syn_status cuda_capture_begin(syn_backend *be) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    if (cu->capturing) return syn__error(SYN_ERR_ARG, "cuda:%d: a CUDA graph capture is already running", cu->index);
    SYN_CUDA_TRY(cudaStreamBeginCapture(cu->stream, cudaStreamCaptureModeThreadLocal));
    cu->capturing = true;
    cu->capture_spoiled[0] = '\0';
    return SYN_OK;
}

static syn_status cuda_capture_end(syn_backend *be, bool keep, void **exec) {
    syn__cuda *cu = syn__cu(be);
    *exec = NULL;
    if (!cu->capturing) return syn__error(SYN_ERR_ARG, "cuda:%d: no CUDA graph capture is running", cu->index);
    cu->capturing = false;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(cu->stream, &graph);
    if (cu->no_cache) { /* blocks freed during the capture waited in the cache: free them now */
        pthread_mutex_lock(&cu->lock);
        release_cache(cu);
        pthread_mutex_unlock(&cu->lock);
    }
    if (e != cudaSuccess || !keep || cu->capture_spoiled[0]) {
        if (graph) cudaGraphDestroy(graph);
        if (!keep) {
            (void)cudaGetLastError();
            return SYN_OK;
        }
        if (cu->capture_spoiled[0]) {
            (void)cudaGetLastError();
            return syn__error(SYN_ERR_UNSUPPORTED, "cuda:%d: the CUDA graph capture met %s", cu->index,
                              cu->capture_spoiled);
        }
        return syn__cuda_fail(e, __FILE__, __LINE__, "cudaStreamEndCapture(cu->stream, &graph)");
    }
    cuda_replay_graph *r = calloc(1, sizeof *r);
    if (!r) {
        cudaGraphDestroy(graph);
        return syn__error(SYN_ERR_OOM, "cuda:%d: a captured graph", cu->index);
    }
    e = cudaGraphInstantiate(&r->exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        free(r);
        return syn__cuda_fail(e, __FILE__, __LINE__, "cudaGraphInstantiate(&r->exec, graph, 0)");
    }
    r->ws_epoch = cu->ws_epoch;
    *exec = r;
    return SYN_OK;
}

static syn_status cuda_replay(syn_backend *be, void *exec, bool *stale) {
    *stale = false;
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    cuda_replay_graph *r = exec;
    if (r->ws_epoch != cu->ws_epoch) { /* its workspace went back to the allocator */
        *stale = true;
        return SYN_OK;
    }
    SYN_CUDA_TRY(cudaGraphLaunch(r->exec, cu->stream));
    return SYN_OK;
}

/* A graph still running is freed when it finishes (cudaGraphExecDestroy). */
static void cuda_replay_free(syn_backend *be, void *exec) {
    (void)be;
    cuda_replay_graph *r = exec;
    if (!r) return;
    if (cudaGraphExecDestroy(r->exec) != cudaSuccess) (void)cudaGetLastError();
    free(r);
}

/* ---- the table ----------------------------------------------------------------- */

#define K(ID, name) [SYN_OP_##ID] = syn__cuda_##name##_fwd,
#define B(ID, name) [SYN_OP_##ID] = syn__cuda_##name##_bwd,

static const syn_backend cuda_template = {
    .name = "cuda",
    .device = {SYN_DEVICE_CUDA, 0},
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy_h2d = cuda_copy_h2d,
    .copy_d2h = cuda_copy_d2h,
    .copy_d2d = cuda_copy_d2d,
    .zero = cuda_zero,
    .fill_f32 = cuda_fill_f32,
    .fill_i32 = cuda_fill_i32,
    .synchronize = cuda_sync,
    .workspace = cuda_workspace,
    .describe = cuda_describe,
    .memory = cuda_memory,
    .mark_create = cuda_mark_create,
    .mark_record = cuda_mark_record,
    .mark_elapsed = cuda_mark_elapsed,
    .mark_destroy = cuda_mark_destroy,
    .optim_update = syn__cuda_optim_update,
    .zero_many = syn__cuda_zero_many,
    .sumsq = syn__cuda_sumsq,
    .clip_scale = syn__cuda_clip_scale,
    .metrics = syn__cuda_metrics,
    .capture_begin = cuda_capture_begin,
    .capture_end = cuda_capture_end,
    .replay = cuda_replay,
    .replay_free = cuda_replay_free,
    .fwd = {SYN_KERNEL_OPS(K) SYN_FWD_ONLY_OPS(K)},
    .bwd = {SYN_KERNEL_OPS(B)},
    /* the kernels that write a fresh input gradient (syn__grad_add): the
     * executor skips zeroing it first */
    .grad_write = {SYN_GRAD_WRITE_COMMON, [SYN_OP_CONV2D] = true, [SYN_OP_CONV_TRANSPOSE2D] = true,
                   [SYN_OP_MAX_POOL2D] = true, [SYN_OP_AVG_POOL2D] = true, [SYN_OP_ADAPTIVE_AVG_POOL2D] = true,
                   [SYN_OP_BATCH_NORM] = true, [SYN_OP_DROPOUT2D] = true},
};

#undef K
#undef B

/* ---- discovery and creation ------------------------------------------------------ */

void syn__cuda_set_deterministic(syn_backend *be, bool on) {
    if (be && be->device.type == SYN_DEVICE_CUDA) syn__cu(be)->deterministic = on;
}

/* Any failure (no driver: 35, no device: 100, ...) means zero devices. */
int syn__cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n > 0 ? n : 0;
}

static void destroy(syn__cuda *cu) {
    syn__cuda_cudnn_destroy(cu);
    if (cu->flag_host) cudaFreeHost(cu->flag_host);
    for (int i = 0; i < SYN_CUDA_STAGES; i++) {
        if (cu->stage[i].done) cudaEventDestroy(cu->stage[i].done);
        if (cu->stage[i].host) cudaFreeHost(cu->stage[i].host);
    }
    if (cu->flag) cudaFree(cu->flag);
    if (cu->partials) cudaFree(cu->partials);
    if (cu->blas) cublasDestroy(cu->blas);
    if (cu->blas_ws) cudaFree(cu->blas_ws);
    if (cu->stream) cudaStreamDestroy(cu->stream);
    (void)cudaGetLastError();
    pthread_mutex_destroy(&cu->lock);
    pthread_mutex_destroy(&cu->dnn_lock);
    pthread_mutex_destroy(&cu->stage_lock);
    free(cu->cached);
    free(cu->live);
    free(cu);
}

static syn_status create(syn__cuda *cu) {
    SYN_CUDA_TRY(cudaSetDevice(cu->index));
    SYN_CUDA_TRY(cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking));
    SYN_CUBLAS_TRY(cublasCreate(&cu->blas));
    SYN_CUBLAS_TRY(cublasSetStream(cu->blas, cu->stream));
    /* Plain fp32 GEMMs by default, so results match the CPU to ~1e-6;
     * TF32 tensor cores only on request. */
    const char *tf = getenv("SYN_ALLOW_TF32"), *nc = getenv("SYN_CUDA_NO_CACHE"), *det = getenv("SYN_DETERMINISTIC");
    cu->tf32 = tf && strcmp(tf, "1") == 0;
    cu->deterministic = det && strcmp(det, "1") == 0;
    cu->no_cache = nc && strcmp(nc, "1") == 0;
    SYN_CUBLAS_TRY(cublasSetMathMode(cu->blas, cu->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    /* cuBLAS's workspace, given to it once: left to itself it allocates a
     * new one for every CUDA graph captured on the handle (the reason
     * PyTorch sets it too). NVIDIA's recommended size: 32 MiB from Hopper
     * (compute capability 9) on, 4 MiB before. */
    struct cudaDeviceProp prop;
    SYN_CUDA_TRY(cudaGetDeviceProperties(&prop, cu->index));
    cu->blas_ws_bytes = (size_t)(prop.major >= 9 ? 32 : 4) << 20;
    SYN_CUDA_TRY(cudaMalloc(&cu->blas_ws, cu->blas_ws_bytes));
    SYN_CUBLAS_TRY(cublasSetWorkspace(cu->blas, cu->blas_ws, cu->blas_ws_bytes));
    SYN_CUDA_TRY(cudaMalloc((void **)&cu->partials, SYN_CUDA_RED_BLOCKS * sizeof(double)));
    SYN_CUDA_TRY(cudaMalloc((void **)&cu->flag, sizeof *cu->flag));
    SYN_CUDA_TRY(cudaMallocHost((void **)&cu->flag_host, sizeof *cu->flag_host));
    return SYN_OK;
}

syn_status syn__cuda_backend(int index, syn_backend **out) {
    *out = NULL;
    if (index >= 0 && index < SYN_CUDA_MAX_DEVICES) {
        pthread_mutex_lock(&registry_lock);
        syn__cuda *cu = registry[index];
        pthread_mutex_unlock(&registry_lock);
        if (cu) {
            *out = &cu->be;
            return SYN_OK;
        }
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return syn__error(SYN_ERR_DEVICE, "cuda:%d: no CUDA device: %s", index, cudaGetErrorString(e));
    }
    if (count <= 0) return syn__error(SYN_ERR_DEVICE, "cuda:%d: no CUDA device", index);
    if (index < 0 || index >= count)
        return syn__error(SYN_ERR_ARG, "cuda:%d: only %d CUDA device%s", index, count, count == 1 ? "" : "s");
    if (index >= SYN_CUDA_MAX_DEVICES)
        return syn__error(SYN_ERR_UNSUPPORTED, "cuda:%d: at most %d CUDA devices are supported", index,
                          SYN_CUDA_MAX_DEVICES);

    /* registry_lock is not held while creating: an error inside create()
     * reaches mark_broken, which takes it. */
    pthread_mutex_lock(&create_lock);
    pthread_mutex_lock(&registry_lock);
    syn__cuda *done = registry[index];
    pthread_mutex_unlock(&registry_lock);
    if (done) { /* another thread was first */
        pthread_mutex_unlock(&create_lock);
        *out = &done->be;
        return SYN_OK;
    }
    syn__cuda *cu = calloc(1, sizeof *cu);
    if (!cu) {
        pthread_mutex_unlock(&create_lock);
        return syn__error(SYN_ERR_OOM, "cuda:%d: cannot allocate the backend", index);
    }
    cu->index = index;
    pthread_mutex_init(&cu->lock, NULL);
    pthread_mutex_init(&cu->dnn_lock, NULL);
    pthread_mutex_init(&cu->stage_lock, NULL);
    int prev = -1;
    if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
    syn_status s = create(cu);
    if (prev >= 0 && prev != index && cudaSetDevice(prev) != cudaSuccess) (void)cudaGetLastError();
    if (s != SYN_OK) {
        pthread_mutex_unlock(&create_lock);
        destroy(cu);
        return s;
    }
    cu->be = cuda_template;
    cu->be.device.index = index;
    cu->be.impl = cu;
    pthread_mutex_lock(&registry_lock);
    registry[index] = cu;
    pthread_mutex_unlock(&registry_lock);
    pthread_mutex_unlock(&create_lock);
    *out = &cu->be;
    return SYN_OK;
}
