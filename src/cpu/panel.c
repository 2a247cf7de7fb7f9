/* Products of a few rows against a matrix that stays fixed over many calls:
 * the recurrent weights of an RNN, used once per time step. The matrix is
 * packed once into column panels; each product then streams the panels with
 * no packing. OpenBLAS repacks its operand on every call, which for 16 rows
 * against 2048 x 512 weights cost more than the arithmetic, and it splits a
 * GEMM of few rows poorly between threads.
 *
 * The tile kernel is plain C on GCC vector types, built three times (the
 * x86-64-v2 baseline, AVX2 + FMA, AVX-512) and chosen once from the CPU;
 * the tests hold every level this CPU runs to a double-precision loop. */
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

/* Vector types of 4, 8 and 16 floats; aligned(4): loads from any float address. */
typedef float v4 __attribute__((vector_size(16), aligned(4)));
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v16 __attribute__((vector_size(64), aligned(4)));

size_t syn__panel_floats(int64_t K, int64_t N) {
    return (size_t)((N + SYN_PANEL_NR - 1) / SYN_PANEL_NR) * SYN_PANEL_NR * (size_t)K;
}

/* Wp[p][k][j] = op(W)[k][p NR + j], zero past column N:
 * trans: W is (N, K) (products against W^T); else W is (K, N). */
void syn__panel_pack(const float *W, int64_t K, int64_t N, bool trans, float *Wp) {
    int64_t panels = (N + SYN_PANEL_NR - 1) / SYN_PANEL_NR;
#pragma omp parallel for schedule(static) if (K * N >= SYN_CPU_PAR_MIN)
    for (int64_t p = 0; p < panels; p++) {
        float *dst = Wp + p * K * SYN_PANEL_NR;
        int64_t n0 = p * SYN_PANEL_NR, w = N - n0 < SYN_PANEL_NR ? N - n0 : SYN_PANEL_NR;
        for (int64_t k = 0; k < K; k++) {
            float *d = dst + k * SYN_PANEL_NR;
            if (trans)
                for (int64_t j = 0; j < w; j++) d[j] = W[(n0 + j) * K + k];
            else
                memcpy(d, W + k * N + n0, (size_t)w * sizeof *d);
            for (int64_t j = w; j < SYN_PANEL_NR; j++) d[j] = 0.0f;
        }
    }
}

/* One kernel per level, each with its register width and as many tile rows
 * as its registers hold next to the panel's vectors: SSE 1 x 8 xmm of 16,
 * AVX2 3 x 4 ymm of 16, AVX-512 6 x 2 zmm of 32. */
typedef void panel_cols_fn(int64_t M, int64_t K, const float *A, int64_t lda, const float *wp, float *C,
                           int64_t ldc, int64_t n0, int64_t w);

#define PANEL_NAME panel_cols_sse
#define PANEL_VEC v4
#define PANEL_VW 4
#define PANEL_MR 1
#define PANEL_TARGET
#include "panel_cols.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SYN_PANEL_X86 1
#define PANEL_NAME panel_cols_avx2
#define PANEL_VEC v8
#define PANEL_VW 8
#define PANEL_MR 3
#define PANEL_TARGET __attribute__((target("avx2,fma")))
#include "panel_cols.h"

#define PANEL_NAME panel_cols_avx512
#define PANEL_VEC v16
#define PANEL_VW 16
#define PANEL_MR 6
#define PANEL_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#include "panel_cols.h"
#endif

/* The best level this CPU runs, capped by SYN_CPU_ISA (sse | avx2 | avx512)
 * where set: a way to compare levels, or to leave out a broken one. */
int syn__panel_level_best(void) {
    static int best = -1;
    int b = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (b >= 0) return b;
    b = SYN_PANEL_SSE;
#ifdef SYN_PANEL_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) b = SYN_PANEL_AVX2;
    if (b == SYN_PANEL_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        b = SYN_PANEL_AVX512;
#endif
    const char *cap = getenv("SYN_CPU_ISA");
    if (cap && strcmp(cap, "sse") == 0) b = SYN_PANEL_SSE;
    if (cap && strcmp(cap, "avx2") == 0 && b > SYN_PANEL_AVX2) b = SYN_PANEL_AVX2;
    __atomic_store_n(&best, b, __ATOMIC_RELAXED);
    return b;
}

const char *syn__panel_level_name(int level) {
    static const char *names[] = {"sse", "avx2", "avx512"};
    return level >= 0 && level <= SYN_PANEL_AVX512 ? names[level] : "?";
}

void syn__panel_gemm_at(int level, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *Wp,
                        float *C, int64_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    panel_cols_fn *f = panel_cols_sse;
#ifdef SYN_PANEL_X86
    if (level >= SYN_PANEL_AVX512) f = panel_cols_avx512;
    else if (level == SYN_PANEL_AVX2) f = panel_cols_avx2;
#else
    (void)level;
#endif
    int64_t panels = (N + SYN_PANEL_NR - 1) / SYN_PANEL_NR;
#pragma omp parallel for schedule(static) if (M * N * K >= 64 * SYN_CPU_PAR_MIN)
    for (int64_t p = 0; p < panels; p++) {
        int64_t n0 = p * SYN_PANEL_NR;
        f(M, K, A, lda, Wp + p * K * SYN_PANEL_NR, C, ldc, n0, N - n0 < SYN_PANEL_NR ? N - n0 : SYN_PANEL_NR);
    }
}

void syn__panel_gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *Wp, float *C,
                     int64_t ldc) {
    syn__panel_gemm_at(syn__panel_level_best(), M, N, K, A, lda, Wp, C, ldc);
}
