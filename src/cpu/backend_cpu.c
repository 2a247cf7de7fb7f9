/* The CPU backend: host memory and the kernel table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <pthread.h>
#include "cpu.h"

static syn_status cpu_alloc(syn_backend *be, size_t bytes, void **out) {
    (void)be;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0 || !p) {
        *out = NULL;
        return syn__error(SYN_ERR_OOM, "cpu: cannot allocate %zu bytes", bytes);
    }
    *out = p;
    return SYN_OK;
}

static void cpu_free(syn_backend *be, void *p) {
    (void)be;
    free(p);
}

static syn_status cpu_copy(syn_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
    return SYN_OK;
}

static syn_status cpu_zero(syn_backend *be, void *dst, size_t bytes) {
    (void)be;
    if (bytes) memset(dst, 0, bytes);
    return SYN_OK;
}

static syn_status cpu_fill_f32(syn_backend *be, float *dst, float v, int64_t n) {
    (void)be;
    for (int64_t i = 0; i < n; i++) dst[i] = v;
    return SYN_OK;
}

static syn_status cpu_fill_i32(syn_backend *be, int32_t *dst, int32_t v, int64_t n) {
    (void)be;
    for (int64_t i = 0; i < n; i++) dst[i] = v;
    return SYN_OK;
}

static syn_status cpu_sync(syn_backend *be) {
    (void)be;
    return SYN_OK;
}

/* One growing scratch buffer per thread (kernels run one at a time in a
 * thread; graphs in different threads run at once), freed when the thread
 * exits through a key destructor. */
static _Thread_local void *scratch;
static _Thread_local size_t scratch_bytes;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) { free(p); }
static void scratch_key_make(void) { (void)pthread_key_create(&scratch_key, scratch_free); }

static syn_status cpu_workspace(syn_backend *be, size_t bytes, void **out) {
    if (bytes > scratch_bytes) {
        void *p = NULL;
        SYN_TRY(cpu_alloc(be, bytes, &p));
        free(scratch);
        scratch = p;
        scratch_bytes = bytes;
        pthread_once(&scratch_once, scratch_key_make);
        (void)pthread_setspecific(scratch_key, p); /* the destructor frees it at thread exit */
    }
    *out = scratch;
    return SYN_OK;
}

extern char *openblas_get_corename(void) __attribute__((weak));

/* OpenBLAS picks its kernels from the CPU model when it loads; a model it
 * does not know (0.3.21 and some recent Xeons) can get its SSE3 kernels,
 * several times slower than what the CPU runs. The core type to ask for
 * instead (through OPENBLAS_CORETYPE, read at load), or NULL when its choice
 * fits the CPU; *chosen: its choice. */
static const char *blas_better_core(const char **chosen) {
    const char *core = openblas_get_corename ? openblas_get_corename() : NULL;
    *chosen = core;
    static const char *const pre_avx[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom"};
    bool slow = false;
    for (size_t i = 0; core && i < sizeof pre_avx / sizeof *pre_avx; i++) slow |= strcmp(core, pre_avx[i]) == 0;
    __builtin_cpu_init();
    if (!slow || !__builtin_cpu_supports("avx2")) return NULL;
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    return avx512 ? "SkylakeX" : "Haswell";
}

const char *syn_cpu_blas_coretype_advice(const char **chosen) {
    const char *core, *better = blas_better_core(&core), *set = getenv("OPENBLAS_CORETYPE");
    if (chosen) *chosen = core ? core : "unknown";
    return better && !(set && *set) ? better : NULL;
}

/* Which SYN_CPU_CLONES copies this CPU runs: "x86-64-v4 loop copies" (or
 * v3), or "baseline loops" (also where none are built: sanitizers, clang). */
static const char *clone_level(void) {
#ifdef SYN_CPU_CLONED
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 loop copies";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 loop copies";
#endif
    return "baseline loops";
}

static syn_status cpu_describe(syn_backend *be, char *buf, size_t size) {
    (void)be;
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    const char *core, *better = blas_better_core(&core), *set = getenv("OPENBLAS_CORETYPE");
    const char *by = getenv("SYN_BLAS_CORETYPE_FROM"); /* the synapse CLI's restart (tools/synapse.c) */
    char blas[192];
    if (better)
        snprintf(blas, sizeof blas, "%s kernels; the CPU has %s: OPENBLAS_CORETYPE=%s runs GEMMs several times faster",
                 core, strcmp(better, "Haswell") == 0 ? "AVX2" : "AVX-512", better);
    else if (set && by && core && strcmp(set, core) == 0)
        snprintf(blas, sizeof blas, "%s kernels, set by synapse: OpenBLAS chose %s", core, by);
    else snprintf(blas, sizeof blas, "%s kernels", core ? core : "unknown");
    snprintf(buf, size, "%s, %d threads (OpenMP), OpenBLAS GEMM (%s), RNN steps on %s panels, %s", model,
             omp_get_max_threads(), blas, syn__panel_level_name(syn__panel_level_best()), clone_level());
    return SYN_OK;
}

#define K(ID, name) [SYN_OP_##ID] = syn__cpu_##name##_fwd,
#define B(ID, name) [SYN_OP_##ID] = syn__cpu_##name##_bwd,

static syn_backend cpu_backend = {
    .name = "cpu",
    .device = {SYN_DEVICE_CPU, 0},
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .zero = cpu_zero,
    .fill_f32 = cpu_fill_f32,
    .fill_i32 = cpu_fill_i32,
    .synchronize = cpu_sync,
    .workspace = cpu_workspace,
    .describe = cpu_describe,
    .optim_update = syn__cpu_optim_update,
    .zero_many = syn__cpu_zero_many,
    .sumsq = syn__cpu_sumsq,
    .clip_scale = syn__cpu_clip_scale,
    .metrics = syn__cpu_metrics,
    .fwd = {SYN_KERNEL_OPS(K) SYN_FWD_ONLY_OPS(K)},
    .bwd = {SYN_KERNEL_OPS(B)},
    /* the kernels that write a fresh input gradient (SYN_GRAD_PUT, beta 0):
     * the executor skips zeroing it first (slice zeroes the rest of each
     * row itself); the other pools, layer norm and the other shape and
     * sequence ops still add into zeros */
    .grad_write = {SYN_GRAD_WRITE_COMMON, [SYN_OP_MAX_POOL2D] = true, [SYN_OP_BATCH_NORM] = true,
                   [SYN_OP_CONV2D] = true, [SYN_OP_CONV_TRANSPOSE2D] = true, [SYN_OP_SLICE] = true},
};

syn_backend *syn__cpu_backend(void) { return &cpu_backend; }
