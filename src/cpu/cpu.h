/* The CPU backend's kernels: plain loops with OpenMP, OpenBLAS for GEMM.
 * One file per op family; backend_cpu.c puts them in the table. */
#ifndef SYN_CPU_H
#define SYN_CPU_H

#include "../backend.h"

/* Every op's kernels, from the lists in backend.h. */
#define SYN__CPU_DECL(ID, name)                                         \
    syn_status syn__cpu_##name##_fwd(syn_backend *be, syn_node *n); \
    syn_status syn__cpu_##name##_bwd(syn_backend *be, syn_node *n);
SYN_KERNEL_OPS(SYN__CPU_DECL)
syn_status syn__cpu_detach_fwd(syn_backend *be, syn_node *n);

/* optim.c */
syn_status syn__cpu_optim_update(syn_backend *be, const syn__optim_args *a, int count);
syn_status syn__cpu_zero_many(syn_backend *be, void *const *dst, const size_t *bytes, int count);
syn_status syn__cpu_sumsq(syn_backend *be, const float *const *x, const int64_t *n, int count, float *acc);
syn_status syn__cpu_clip_scale(syn_backend *be, float *const *x, const int64_t *n, int count, const float *acc,
                               float max_norm);
syn_status syn__cpu_metrics(syn_backend *be, const float *loss, const float *logits, const int32_t *labels, int64_t n,
                            int64_t classes, double *acc);

/* panel.c: C (M, N) += A (M, K; row stride lda) op(W), W packed once by
 * syn__panel_pack into column panels of SYN_PANEL_NR (syn__panel_floats
 * floats) and reused over many products; for few rows (an RNN's steps). */
#define SYN_PANEL_NR 32
enum { SYN_PANEL_SSE, SYN_PANEL_AVX2, SYN_PANEL_AVX512 };
size_t syn__panel_floats(int64_t K, int64_t N);
void syn__panel_pack(const float *W, int64_t K, int64_t N, bool trans, float *Wp); /* trans: W (N, K), else (K, N) */
void syn__panel_gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *Wp, float *C,
                     int64_t ldc);
/* the same at a given level (tests and benchmarks; at most syn__panel_level_best()) */
void syn__panel_gemm_at(int level, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *Wp,
                        float *C, int64_t ldc);
int syn__panel_level_best(void);
const char *syn__panel_level_name(int level);

/* winograd.c: 3x3 convolutions of stride 1, undilated and ungrouped, by
 * Winograd's F(2x2, 3x3) or F(4x4, 3x3); conv.c sends them there when
 * syn__wino_tile gives a tile size (2 or 4; 0: im2col), which it sets in
 * s->tile. s describes a conv2d, x -> y; its transpose takes y back to x. */
typedef struct {
    int64_t N, C, H, W;  /* x (N, C, H, W) */
    int64_t K, P, Q;     /* y (N, K, P, Q); w (K, C, R, S) */
    int64_t R, S, stride_h, stride_w, ph, pw, dil_h, dil_w, groups;
    int tile; /* the output tile's size, m of F(m x m, 3x3): 2 or 4 */
} syn__wino;
int syn__wino_tile(const syn__wino *s);
/* y = conv2d(x, w) + b (b may be NULL), or y += conv2d(x, w) when add (b unused) */
syn_status syn__wino_conv(syn_backend *be, const syn__wino *s, const float *x, const float *w, const float *b,
                          bool add, float *y);
/* x = conv2d^T(y, w) + b: conv2d's input gradient, conv_transpose2d's forward; or x += when add */
syn_status syn__wino_conv_t(syn_backend *be, const syn__wino *s, const float *y, const float *w, const float *b,
                            bool add, float *x);
/* dw = d<dy, conv2d(x, w)>/dw, or dw += it */
syn_status syn__wino_dw(syn_backend *be, const syn__wino *s, const float *x, const float *dy, bool add, float *dw);

/* matmul.c: C (M, N) = op(A) op(B) + beta C through OpenBLAS, row-major and
 * contiguous (lda, ldb, ldc from the shapes); nothing when M or N is 0. */
void syn__gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float beta,
               float *C);

/* conv.c: GEMMs called from inside an OpenMP parallel region run on one
 * thread each (OpenBLAS's own pthreads would fight the OpenMP threads);
 * begin returns what end restores. */
int syn__blas_single_begin(void);
void syn__blas_single_end(int saved);

/* conv.c: dst[i] = sum over t < nt of part[t step + i], added in thread order
 * (or dst[i] += that when add), for i < n: per-thread partial sums of a
 * weight gradient. dst may be part itself (thread 0's slice). */
void syn__sum_partials(const float *part, size_t step, int nt, size_t n, bool add, float *dst);

/* n rounded up to 16 floats: per-thread workspace slices 64 bytes apart */
static inline size_t syn__round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* A hot loop built once per x86-64 level (v4: AVX-512, v3: AVX2 + FMA, and
 * the v2 baseline the library targets), the copy chosen when the library
 * loads: GCC vectorises each as wide as its level allows. The arithmetic is
 * the C's in every copy (no reassociation without -ffast-math, and no FMA
 * contraction: CMakeLists.txt builds the files that use this with
 * -ffp-contract=off), so results do not depend on the copy. Not under the
 * sanitizers (ifunc resolvers run before ASan is up) nor clang's fuzzing
 * build. (panel.c picks its levels
 * itself: each has its own tile size, and the tests run every level.) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define SYN_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define SYN_CPU_CLONED 1
#else
#define SYN_CPU_CLONES
#endif

/* A helper of SYN_CPU_CLONES functions: inlined into each copy, so that it
 * is built for that copy's level too. */
#define SYN_INLINE static inline __attribute__((always_inline))

/* Element loops worth threading: below this, OpenMP costs more than it saves. */
#define SYN_CPU_PAR_MIN 32768

/* Sums in double over SYN_LANES independent accumulators, added in a fixed
 * order at the end: one running double sum is a chain of dependent adds (4
 * cycles each), which made batch norm's statistics and the gradient norm
 * latency-bound; lanes also let GCC vectorise the float-to-double loads. */
#define SYN_LANES 8
typedef struct {
    double v[SYN_LANES];
} syn__lanes;

static inline double syn__lanes_total(const syn__lanes *l) {
    double a = (l->v[0] + l->v[4]) + (l->v[2] + l->v[6]), b = (l->v[1] + l->v[5]) + (l->v[3] + l->v[7]);
    return a + b;
}

/* l += xp[i] (sq: (xp[i] - mu)^2) for i < n */
static inline void syn__lanes_add(syn__lanes *l, const float *restrict xp, int64_t n, bool sq, double mu) {
    int64_t i = 0;
    if (sq)
        for (; i + SYN_LANES <= n; i += SYN_LANES)
            for (int j = 0; j < SYN_LANES; j++) {
                double v = (double)xp[i + j] - mu;
                l->v[j] += v * v;
            }
    else
        for (; i + SYN_LANES <= n; i += SYN_LANES)
            for (int j = 0; j < SYN_LANES; j++) l->v[j] += (double)xp[i + j];
    for (int j = 0; i < n; i++, j++) {
        double v = sq ? (double)xp[i] - mu : (double)xp[i];
        l->v[j] += sq ? v * v : v;
    }
}

static inline const float *syn__cin(const syn_node *n, int k) { return (const float *)n->in[k]->value; }
static inline float *syn__cgrad(const syn_node *n, int k) { return (float *)n->in[k]->grad; }

/* A gradient store in the ops with grad_write set (backend.h): dst += v, or
 * dst = v where the input's gradient is fresh (add = syn__grad_add(n, k)
 * false: its old contents are garbage). Hot loops run as two loops, one
 * per case (SYN_GRAD_LOOPS): a branch-free select would still add the
 * garbage, and garbage that reads as denormal floats makes each add take
 * a microcode assist (relu's backward ran 4x slower that way). */
#define SYN_GRAD_PUT(dst, add, v) ((dst) = (add) ? (dst) + (v) : (v))
/* The body (the remaining arguments: commas allowed) twice, with the
 * constant `add_` true, then false (for SYN_GRAD_PUT). */
#define SYN_GRAD_LOOPS(add, ...)                                                                     \
    do {                                                                                             \
        if (add) {                                                                                   \
            const bool add_ = true;                                                                  \
            __VA_ARGS__;                                                                             \
        } else {                                                                                     \
            const bool add_ = false;                                                                 \
            __VA_ARGS__;                                                                             \
        }                                                                                            \
    } while (0)

#endif
