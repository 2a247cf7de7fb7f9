/* 3x3 convolutions of stride 1 (undilated, ungrouped) on the CPU by Winograd's
 * minimal filtering F(m x m, 3x3), m = 2 or 4 (Lavin and Gray, "Fast
 * Algorithms for Convolutional Neural Networks", 2015). Each m x m block of
 * outputs, a tile, comes from the a x a input patch under it, a = m + 2:
 *     Y = A^T [ U (.) V ] A,   U = G w G^T (a x a per filter),  V = B^T d B (a x a per patch),
 * and summed over input channels the a^2 elementwise products are a^2 GEMMs,
 *     M[e] (Co, tiles) = U[e] (Co, Ci) V[e] (Ci, tiles),   e = 0 .. a^2 - 1,
 * a^2 / m^2 multiply-adds per output and channel pair where the convolution
 * takes 9: 4 for F(2x2, 3x3), 2.25 for F(4x4, 3x3), whose transforms cost
 * more and round a little more (its points are 0, 1, -1, 2, -2).
 *
 * The three passes of conv2d:
 *   forward   y  = the above, plus the bias;
 *   dx           = the same for dy, with the weights turned by 180 degrees and
 *                  their two channel axes swapped, padding 2 - p (conv2d's
 *                  input gradient is that convolution of dy);
 *   dw           = the adjoint of the forward in U: dM = A dY A^T per tile,
 *                  dU[e] (Co, Ci) = sum over tiles dM[e] V[e]^T, dw = G^T dU G.
 * These are the exact gradients of the Winograd forward, which is the
 * convolution itself but for rounding.
 *
 * Tiles are numbered through the batch (image, tile row, tile column) and
 * taken in chunks of whole tile rows, wide enough for OpenBLAS to run its
 * GEMMs near full speed; each OpenMP thread takes whole chunks, with
 * single-threaded GEMMs. A tile that reaches past the output (P or Q not a
 * multiple of m) computes values nobody stores, and in dw its dY there is 0. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

typedef struct {
    int64_t N, Ci, H, W; /* input (N, Ci, H, W) */
    int64_t Co, P, Q;    /* output (N, Co, P, Q) */
    int64_t ph, pw;      /* padding: output (p, q) reads input rows p - ph .. p - ph + 2 */
    int64_t tp, tq;      /* tile rows and columns per image */
    int64_t rows;        /* tile rows of the batch, N tp */
    int64_t cr;          /* tile rows per chunk */
    int64_t sw;          /* floats per tile row in a stripe: m tq */
    int m, a, T;         /* the tile's size, the patch's, a^2 */
} wgeom;

/* A chunk has at least this many tiles, the columns of its GEMMs (narrower
 * GEMMs run well below OpenBLAS's speed: chunks of 30 columns on 8x8 maps
 * took 1.7 times as long as chunks of 160), its V and M at most this many
 * floats, and there are enough chunks for every thread. */
#define WINO_CHUNK_COLS 160
/* Fewer F(2x2, 3x3) tiles than this per thread: im2col's one large GEMM is
 * faster; fewer F(4x4, 3x3) tiles: F(2x2, 3x3)'s wider GEMMs are. */
#define WINO_MIN_COLS 64
#define WINO4_MIN_COLS 128
#define WINO_CHUNK_FLOATS (1 << 22)

static wgeom wgeom_make(int m, int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t P, int64_t Q,
                        int64_t ph, int64_t pw) {
    wgeom g = {.N = N, .Ci = Ci, .H = H, .W = W, .Co = Co, .P = P, .Q = Q, .ph = ph, .pw = pw, .m = m, .a = m + 2};
    g.T = g.a * g.a;
    g.tp = (P + m - 1) / m;
    g.tq = (Q + m - 1) / m;
    g.sw = m * g.tq;
    g.rows = N * g.tp;
    if (g.rows == 0 || g.tq == 0) { /* an empty output: nothing to do */
        g.rows = 0;
        g.cr = 1;
        return g;
    }
    const int64_t per_row = g.T * (Ci + Co) * g.tq; /* floats of V and M per tile row */
    const int64_t nt = omp_get_max_threads(), share = (g.rows + nt - 1) / nt;
    int64_t cr = (WINO_CHUNK_COLS + g.tq - 1) / g.tq;
    if (per_row > 0 && cr > WINO_CHUNK_FLOATS / per_row) cr = WINO_CHUNK_FLOATS / per_row;
    if (cr > share) cr = share;
    if (cr < 1) cr = 1;
    g.cr = cr;
    return g;
}

/* Scratch floats per thread: 2 a stripes (below) of a chunk. */
static size_t stripe_floats(const wgeom *g) { return (size_t)(2 * g->a * g->cr * g->sw); }

/* ---- the transforms ----------------------------------------------------------------
 *
 * A chunk is cr consecutive tile rows of the batch; its tiles are the
 * columns of its V and M, k = (tile row in the chunk) tq + j. The
 * transforms read and write through stripes: a stripe holds, for each tile
 * row of the chunk, sw = m tq floats of one padded image row, so that tile
 * k's columns start at m k in it and each transform is one loop over the
 * chunk's columns, long enough to vectorise also on small images. An a x a
 * patch reaches 2 columns past its tile row's m tq: the input transform
 * reads its columns m and m + 1 from a second stripe of the same rows,
 * shifted by m. */

/* Image n, tile row i of tile row rho of the batch. */
static void tile_row(const wgeom *g, int64_t rho, int64_t *n, int64_t *i) {
    *n = rho / g->tp;
    *i = rho % g->tp;
}

/* Eight floats from any float address; may_alias: stripes and images are floats. */
typedef float v8 __attribute__((vector_size(32), aligned(4), may_alias));

/* d[m] = s[m] for m < n: eight at a time, the last eight overlapping the ones
 * before (a row of a small map is a few floats: GCC's own loop would copy
 * them one by one, and a memcpy call costs more than the copy) */
SYN_INLINE void copy_row(float *restrict d, const float *restrict s, int64_t n) {
    if (n < 8) {
        for (int64_t m = 0; m < n; m++) d[m] = s[m];
        return;
    }
    int64_t m = 0;
    for (; m + 8 <= n; m += 8) *(v8 *)(d + m) = *(const v8 *)(s + m);
    if (m < n) *(v8 *)(d + n - 8) = *(const v8 *)(s + n - 8);
}

/* stripe: for each tile row of [rho0, rho0 + cr), image row m i + off of
 * plane c of im (C planes of h x w per image), its column q at q + shift of
 * the tile row's sw floats; 0 where that is outside the image. (No memcpy
 * and memset: rows of small maps are a few floats, and the calls had cost
 * more than the copies.) */
SYN_INLINE void fill_stripe(const wgeom *g, const float *im, int64_t C, int64_t c, int64_t h, int64_t w, int64_t rho0,
                            int64_t cr, int64_t off, int64_t shift, float *stripe) {
    const int64_t sw = g->sw;
    int64_t m0 = shift > 0 ? shift : 0, m1 = shift + w < sw ? shift + w : sw;
    if (m1 < m0) m1 = m0;
    int64_t n = rho0 / g->tp, i = rho0 % g->tp;
    for (int64_t k = 0; k < cr; k++) {
        float *d = stripe + k * sw;
        int64_t row = g->m * i + off;
        if (row < 0 || row >= h) {
            for (int64_t m = 0; m < sw; m++) d[m] = 0.0f;
        } else {
            const float *src = im + ((n * C + c) * h + row) * w;
            for (int64_t m = 0; m < m0; m++) d[m] = 0.0f;
            copy_row(d + m0, src + (m0 - shift), m1 - m0);
            for (int64_t m = m1; m < sw; m++) d[m] = 0.0f;
        }
        if (++i == g->tp) {
            i = 0;
            n++;
        }
    }
}

/* The 1-D transforms, m the tile's size (2 or 4, a constant where these are
 * inlined), a = m + 2 the patch's:
 *   bt: x (a) -> B^T x (a);   at: x (a) -> A^T x (m);   gw: f (3) -> G f (a);
 * and for dw, which runs on F(2x2, 3x3) only, at_adj: y (2) -> A y (4) and
 * gw_adj: x (4) -> G^T x (3). F(4x4, 3x3)'s matrices are Lavin and Gray's
 * (points 0, 1, -1, 2, -2). */
SYN_INLINE void bt(const int m, const float *x, float *y) {
    if (m == 2) {
        y[0] = x[0] - x[2];
        y[1] = x[1] + x[2];
        y[2] = x[2] - x[1];
        y[3] = x[1] - x[3];
    } else {
        y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];
        y[1] = x[3] + x[4] - 4.0f * (x[1] + x[2]);
        y[2] = x[4] - x[3] + 4.0f * (x[1] - x[2]);
        y[3] = x[4] - x[2] + 2.0f * (x[3] - x[1]);
        y[4] = x[4] - x[2] + 2.0f * (x[1] - x[3]);
        y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];
    }
}

SYN_INLINE void at(const int m, const float *x, float *y) {
    if (m == 2) {
        y[0] = x[0] + x[1] + x[2];
        y[1] = x[1] - x[2] - x[3];
    } else {
        const float p1 = x[1] + x[2], m1 = x[1] - x[2], p2 = x[3] + x[4], m2 = x[3] - x[4];
        y[0] = x[0] + p1 + p2;
        y[1] = m1 + 2.0f * m2;
        y[2] = p1 + 4.0f * p2;
        y[3] = m1 + 8.0f * m2 + x[5];
    }
}

SYN_INLINE void at_adj(const float *y, float *x) {
    x[0] = y[0];
    x[1] = y[0] + y[1];
    x[2] = y[0] - y[1];
    x[3] = -y[1];
}

SYN_INLINE void gw(const int m, const float *f, float *u) {
    if (m == 2) {
        u[0] = f[0];
        u[1] = 0.5f * (f[0] + f[1] + f[2]);
        u[2] = 0.5f * (f[0] - f[1] + f[2]);
        u[3] = f[2];
    } else {
        const float e = f[0] + f[2], e4 = f[0] / 24.0f + f[2] / 6.0f;
        u[0] = 0.25f * f[0];
        u[1] = -(e + f[1]) / 6.0f;
        u[2] = -(e - f[1]) / 6.0f;
        u[3] = e4 + f[1] / 12.0f;
        u[4] = e4 - f[1] / 12.0f;
        u[5] = f[2];
    }
}

SYN_INLINE void gw_adj(const float *x, float *f) {
    f[0] = x[0] + 0.5f * (x[1] + x[2]);
    f[1] = 0.5f * (x[1] - x[2]);
    f[2] = 0.5f * (x[1] + x[2]) + x[3];
}

/* V[e][c][k] = (B^T d B)[e], e = a r + s, d the a x a input patch of column k
 * in channel c (0 outside the image); V: (a^2, Ci, cr tq); S: stripe_floats */
SYN_INLINE void input_tf(const int m, const wgeom *g, const float *x, int64_t rho0, int64_t cr, float *V, float *S) {
    const int a = m + 2;
    const int64_t ct = cr * g->tq, stride = g->Ci * ct, sl = cr * g->sw;
    for (int64_t c = 0; c < g->Ci; c++) {
        /* the patch's row r: its columns 0 .. m-1 at m k of stripe r, m and
         * m + 1 at m k of stripe a + r */
        for (int r = 0; r < a; r++) {
            fill_stripe(g, x, g->Ci, c, g->H, g->W, rho0, cr, r - g->ph, g->pw, S + r * sl);
            fill_stripe(g, x, g->Ci, c, g->H, g->W, rho0, cr, r - g->ph, g->pw - m, S + (a + r) * sl);
        }
        float *o = V + c * ct;
#pragma GCC ivdep
        for (int64_t k = 0; k < ct; k++) {
            float d[6][6], u[6][6], col[6], v[6];
#pragma GCC unroll 6
            for (int r = 0; r < a; r++) {
#pragma GCC unroll 4
                for (int j = 0; j < m; j++) d[r][j] = S[r * sl + m * k + j];
                d[r][m] = S[(a + r) * sl + m * k];
                d[r][m + 1] = S[(a + r) * sl + m * k + 1];
                bt(m, d[r], u[r]); /* d B, row by row */
            }
#pragma GCC unroll 6
            for (int s = 0; s < a; s++) { /* B^T (d B) */
#pragma GCC unroll 6
                for (int r = 0; r < a; r++) col[r] = u[r][s];
                bt(m, col, v);
#pragma GCC unroll 6
                for (int r = 0; r < a; r++) o[(a * r + s) * stride + k] = v[r];
            }
        }
    }
}

/* dM[e][k][c] = (A dY A^T)[e], dY the 2x2 output block of column c in output
 * channel k (0 past the output); dM: (16, Co, cr tq) */
SYN_CPU_CLONES static void grad_tf2(const wgeom *g, const float *dy, int64_t rho0, int64_t cr, float *dM, float *S) {
    const int64_t ct = cr * g->tq, stride = g->Co * ct, sl = cr * g->sw;
    for (int64_t k = 0; k < g->Co; k++) {
        for (int r = 0; r < 2; r++) fill_stripe(g, dy, g->Co, k, g->P, g->Q, rho0, cr, r, 0, S + r * sl);
        float *o = dM + k * ct;
#pragma GCC ivdep
        for (int64_t c = 0; c < ct; c++) {
            float d[2], u[2][4], col[2], v[4];
            for (int r = 0; r < 2; r++) {
                for (int j = 0; j < 2; j++) d[j] = S[r * sl + 2 * c + j];
                at_adj(d, u[r]); /* dY A^T, row by row */
            }
            for (int s = 0; s < 4; s++) { /* A (dY A^T) */
                for (int r = 0; r < 2; r++) col[r] = u[r][s];
                at_adj(col, v);
                for (int r = 0; r < 4; r++) o[(4 * r + s) * stride + c] = v[r];
            }
        }
    }
}

/* y's m x m block of column c in channel k = (A^T M A) (+ bias[k], or + y
 * when add), M = M[.][k][c]; M: (a^2, Co, cr tq) */
SYN_INLINE void output_tf(const int m, const wgeom *g, const float *M, int64_t rho0, int64_t cr, const float *bias,
                          bool add, float *y, float *S) {
    const int a = m + 2;
    const int64_t ct = cr * g->tq, stride = g->Co * ct, sl = cr * g->sw, P = g->P, Q = g->Q;
    for (int64_t k = 0; k < g->Co; k++) {
        const float *mk = M + k * ct;
#pragma GCC ivdep
        for (int64_t c = 0; c < ct; c++) {
            float t[4][6], col[6], row[6], out[4];
#pragma GCC unroll 6
            for (int s = 0; s < a; s++) { /* A^T M, column by column */
#pragma GCC unroll 6
                for (int r = 0; r < a; r++) col[r] = mk[(a * r + s) * stride + c];
                at(m, col, out);
#pragma GCC unroll 4
                for (int i = 0; i < m; i++) t[i][s] = out[i];
            }
#pragma GCC unroll 4
            for (int i = 0; i < m; i++) { /* (A^T M) A */
#pragma GCC unroll 6
                for (int s = 0; s < a; s++) row[s] = t[i][s];
                at(m, row, out);
#pragma GCC unroll 4
                for (int j = 0; j < m; j++) S[i * sl + m * c + j] = out[j];
            }
        }
        const float b = bias ? bias[k] : 0.0f;
        for (int64_t t = 0; t < cr; t++) {
            int64_t n, i;
            tile_row(g, rho0 + t, &n, &i);
            for (int r = 0; r < m && m * i + r < P; r++) {
                float *d = y + ((n * g->Co + k) * P + m * i + r) * Q;
                const float *src = S + r * sl + t * g->sw;
                if (add)
                    for (int64_t q = 0; q < Q; q++) d[q] += src[q];
                else
                    for (int64_t q = 0; q < Q; q++) d[q] = src[q] + b;
            }
        }
    }
}

/* U[e][ko][ki] = (G f G^T)[e] for one ko, with f = w[ko][ki] (w: (Co, Ci, 3,
 * 3)), or, with turn, f = w[ki][ko] turned by 180 degrees (w: (Ci, Co, 3, 3)) */
SYN_INLINE void weight_tf(const int m, const float *w, int64_t Co, int64_t Ci, bool turn, int64_t ko, float *U) {
    const int a = m + 2;
    const int64_t stride = Co * Ci;
    float *o = U + ko * Ci;
    /* f[r][s] = src[ki step + r rs + s ss] */
    const float *src = turn ? w + ko * 9 + 8 : w + ko * Ci * 9;
    const int64_t step = turn ? Co * 9 : 9, rs = turn ? -3 : 3, ss = turn ? -1 : 1;
#pragma GCC ivdep
    for (int64_t ki = 0; ki < Ci; ki++) {
        float col[3], u[6][3], row[3], v[6];
#pragma GCC unroll 3
        for (int s = 0; s < 3; s++) { /* G f, column by column */
#pragma GCC unroll 3
            for (int r = 0; r < 3; r++) col[r] = src[ki * step + r * rs + s * ss];
            gw(m, col, v);
#pragma GCC unroll 6
            for (int r = 0; r < a; r++) u[r][s] = v[r];
        }
#pragma GCC unroll 6
        for (int r = 0; r < a; r++) { /* (G f) G^T */
#pragma GCC unroll 3
            for (int s = 0; s < 3; s++) row[s] = u[r][s];
            gw(m, row, v);
#pragma GCC unroll 6
            for (int s = 0; s < a; s++) o[(a * r + s) * stride + ki] = v[s];
        }
    }
}

/* dw[ko][ki] = G^T dU[.][ko][ki] G (or += when add); dU: (16, Co, Ci), the
 * adjoint of weight_tf without turn, for F(2x2, 3x3) */
static void weight_grad_tf2(const float *dU, int64_t Co, int64_t Ci, bool add, float *dw) {
    const int64_t stride = Co * Ci;
#pragma omp parallel for if (Co * Ci * 16 > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t ko = 0; ko < Co; ko++)
        for (int64_t ki = 0; ki < Ci; ki++) {
            const float *x = dU + ko * Ci + ki;
            float col[4], u[3][4], row[4], f[3];
            for (int s = 0; s < 4; s++) { /* G^T dU, column by column */
                for (int r = 0; r < 4; r++) col[r] = x[(4 * r + s) * stride];
                gw_adj(col, f);
                for (int i = 0; i < 3; i++) u[i][s] = f[i];
            }
            float *d = dw + (ko * Ci + ki) * 9;
            for (int i = 0; i < 3; i++) { /* (G^T dU) G */
                for (int s = 0; s < 4; s++) row[s] = u[i][s];
                gw_adj(row, f);
                for (int s = 0; s < 3; s++) d[i * 3 + s] = add ? d[i * 3 + s] + f[s] : f[s];
            }
        }
}

/* the forward transforms for F(2x2, 3x3) and F(4x4, 3x3), each built for
 * the instruction sets of SYN_CPU_CLONES (the weights' outside them: OpenMP
 * outlines their loops, and they are small) */
#define WINO_TF(m)                                                                                                 \
    SYN_CPU_CLONES static void input_tf##m(const wgeom *g, const float *x, int64_t rho0, int64_t cr, float *V,     \
                                           float *S) {                                                              \
        input_tf(m, g, x, rho0, cr, V, S);                                                                          \
    }                                                                                                               \
    SYN_CPU_CLONES static void output_tf##m(const wgeom *g, const float *M, int64_t rho0, int64_t cr,              \
                                            const float *bias, bool add, float *y, float *S) {                     \
        output_tf(m, g, M, rho0, cr, bias, add, y, S);                                                              \
    }                                                                                                               \
    static void weight_tf##m(const float *w, int64_t Co, int64_t Ci, bool turn, float *U) {                        \
        const int64_t work = Co * Ci * (m + 2) * (m + 2);                                                           \
        _Pragma("omp parallel for if (work > SYN_CPU_PAR_MIN) schedule(static)")                                    \
        for (int64_t ko = 0; ko < Co; ko++) weight_tf(m, w, Co, Ci, turn, ko, U);                                  \
    }
WINO_TF(2)
WINO_TF(4)

/* ---- the passes ----------------------------------------------------------------- */

typedef struct {
    void (*input)(const wgeom *g, const float *x, int64_t rho0, int64_t cr, float *V, float *S);
    void (*output)(const wgeom *g, const float *M, int64_t rho0, int64_t cr, const float *bias, bool add, float *y,
                   float *S);
    void (*weight)(const float *w, int64_t Co, int64_t Ci, bool turn, float *U);
} wino_tfs;

static const wino_tfs *tfs_of(const wgeom *g) {
    static const wino_tfs f2 = {input_tf2, output_tf2, weight_tf2}, f4 = {input_tf4, output_tf4, weight_tf4};
    return g->m == 4 ? &f4 : &f2;
}

static int64_t chunks_of(const wgeom *g) { return (g->rows + g->cr - 1) / g->cr; }

static int threads_for(const wgeom *g) {
    int64_t chunks = chunks_of(g), nt = omp_get_max_threads();
    if (g->T * g->rows * g->tq * g->Ci * g->Co < (1 << 18)) nt = 1; /* too little work to fork for */
    return (int)(nt < chunks ? nt : chunks);
}

/* out = conv(in, w) (+ bias), or out += it; turn: w (Ci, Co, 3, 3) used turned (see weight_tf) */
static syn_status conv_pass(syn_backend *be, const wgeom *g, const float *in, const float *w, bool turn,
                            const float *bias, bool add, float *out) {
    if (g->rows == 0) return SYN_OK;
    const int nt = threads_for(g);
    const int64_t ctm = g->cr * g->tq;
    const wino_tfs *tf = tfs_of(g);
    const size_t u_f = syn__round16((size_t)(g->T * g->Co * g->Ci)), v_f = syn__round16((size_t)(g->T * g->Ci * ctm)),
                 m_f = syn__round16((size_t)(g->T * g->Co * ctm)), r_f = syn__round16(stripe_floats(g));
    float *ws;
    SYN_TRY(be->workspace(be, (u_f + (size_t)nt * (v_f + m_f + r_f)) * sizeof(float), (void **)&ws));
    float *U = ws;
    tf->weight(w, g->Co, g->Ci, turn, U);
    const int64_t chunks = chunks_of(g);
    int blas = nt > 1 ? syn__blas_single_begin() : 0; /* one chunk: GEMMs threaded inside */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *V = ws + u_f + (size_t)omp_get_thread_num() * (v_f + m_f + r_f), *M = V + v_f, *S = M + m_f;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t rho0 = c * g->cr, cr = g->rows - rho0 < g->cr ? g->rows - rho0 : g->cr, ct = cr * g->tq;
            tf->input(g, in, rho0, cr, V, S);
            for (int e = 0; e < g->T; e++)
                syn__gemm(false, false, g->Co, ct, g->Ci, U + e * g->Co * g->Ci, V + e * g->Ci * ct, 0.0f,
                          M + e * g->Co * ct);
            tf->output(g, M, rho0, cr, bias, add, out, S);
        }
    }
    syn__blas_single_end(blas);
    return SYN_OK;
}

/* dw = G^T (sum over tiles dM V^T) G, or dw += it, by F(2x2, 3x3) (g->m is
 * 2): F(4x4, 3x3)'s dw rounds too much. Its transforms of x and dy amplify
 * by up to 100 and 225 what G^T . G scales back by up to 1/24: on 16
 * channels at 24x24, batch 4, it missed test_conv's 1e-4 by 1.6 times. */
static syn_status dw_pass(syn_backend *be, const wgeom *g, const float *x, const float *dy, bool add, float *dw) {
    const size_t u_f = syn__round16((size_t)(g->T * g->Co * g->Ci));
    if (g->rows == 0) {
        if (!add) memset(dw, 0, (size_t)(g->Co * g->Ci * 9) * sizeof(float));
        return SYN_OK;
    }
    const int nt = threads_for(g);
    const int64_t ctm = g->cr * g->tq;
    const size_t v_f = syn__round16((size_t)(g->T * g->Ci * ctm)), m_f = syn__round16((size_t)(g->T * g->Co * ctm)),
                 r_f = syn__round16(stripe_floats(g)), step = u_f + v_f + m_f + r_f;
    float *ws;
    SYN_TRY(be->workspace(be, (size_t)nt * step * sizeof(float), (void **)&ws));
    const int64_t chunks = chunks_of(g);
    int blas = nt > 1 ? syn__blas_single_begin() : 0; /* one chunk: GEMMs threaded inside */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *dU = ws + (size_t)omp_get_thread_num() * step, *V = dU + u_f, *dM = V + v_f, *S = dM + m_f;
        memset(dU, 0, u_f * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t rho0 = c * g->cr, cr = g->rows - rho0 < g->cr ? g->rows - rho0 : g->cr, ct = cr * g->tq;
            input_tf2(g, x, rho0, cr, V, S);
            grad_tf2(g, dy, rho0, cr, dM, S);
            for (int e = 0; e < g->T; e++)
                syn__gemm(false, true, g->Co, g->Ci, ct, dM + e * g->Co * ct, V + e * g->Ci * ct, 1.0f,
                          dU + e * g->Co * g->Ci);
        }
    }
    syn__blas_single_end(blas);
    /* the threads' partial sums, added in thread order into thread 0's */
    syn__sum_partials(ws, step, nt, (size_t)(g->T * g->Co * g->Ci), false, ws);
    weight_grad_tf2(ws, g->Co, g->Ci, add, dw);
    return SYN_OK;
}

/* ---- the entry points ------------------------------------------------------------ */

int syn__wino_tile(const syn__wino *s) {
    /* SYN_CPU_WINOGRAD: 0 never, 1 where it pays (default), 2 or 4: F(2x2, 3x3)
     * or F(4x4, 3x3) wherever it applies */
    static int cached = -1;
    int mode = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (mode < 0) {
        const char *e = getenv("SYN_CPU_WINOGRAD");
        mode = e && *e ? atoi(e) : 1;
        __atomic_store_n(&cached, mode, __ATOMIC_RELAXED);
    }
    if (mode == 0 || s->R != 3 || s->S != 3 || s->stride_h != 1 || s->stride_w != 1 || s->dil_h != 1 ||
        s->dil_w != 1 || s->groups != 1 || s->ph < 0 || s->ph > 2 || s->pw < 0 || s->pw > 2 ||
        s->P != s->H + 2 * s->ph - 2 || s->Q != s->W + 2 * s->pw - 2) /* a transposed one's output padding */
        return 0;
    if (mode == 2 || mode == 4) return mode;
    /* Where each pays, measured on 3x3 fwd + dx + dw here (2 threads,
     * OpenBLAS's SkylakeX kernels; dw runs on F(2x2, 3x3) in both).
     * F(2x2, 3x3) against im2col: with 16 channels or more on each side (16 ->
     * 16 at 28x28: 1.3x faster; 8 -> 16: 1.3x slower; a first layer's 3
     * channels: 1.8x slower), and with enough tiles for each thread's GEMMs
     * (256 channels at 14x14: batch 1, 25 tiles per thread, 1.6x slower;
     * batch 2, 49, even; 512 at 4x4: batch 16, 32 tiles, even; batch 32, 64,
     * 1.1-1.2x faster; 128 at 16x16, batch 4, 128: 1.25x faster).
     * F(4x4, 3x3) against F(2x2, 3x3): with 32 channels or more on each side
     * and 128 of its tiles or more per thread (128 channels at 16x16, batch
     * 16: 1.45-1.5x faster; 256 at 16x16, batch 16: 1.2-1.6x; 128 at 28x28,
     * batch 32: 1.45-1.65x; 64 -> 128 at 16x16, batch 16: 1.35-1.9x; 256 at
     * 8x8, batch 64: 1.25x; 64 at 32x32, batch 16: even; with 32 tiles per
     * thread, 256 at 8x8, batch 16: 1.2-1.3x slower; 512 at 4x4: 2.2-2.5x
     * slower), where its tiles do not reach more than 15% past the output
     * (at 14x14 they reach 31%: 256 channels, batch 32, 1.05-1.1x slower).
     * Timed again after -ffp-contract=off took the FMAs out of the
     * transforms: 128 at 16x16, 1.4-1.5x; 128 at 28x28, 1.2x; 64 -> 128,
     * 0.93-1.24x; 256 at 8x8, batch 64, 1.0-1.2x. */
    if (s->C < 16 || s->K < 16) return 0;
    const int64_t nt = omp_get_max_threads(), tp4 = (s->P + 3) / 4, tq4 = (s->Q + 3) / 4;
    if (s->C >= 32 && s->K >= 32 && s->N * tp4 * tq4 >= WINO4_MIN_COLS * nt && 20 * 16 * tp4 * tq4 <= 23 * s->P * s->Q)
        return 4;
    return s->N * ((s->P + 1) / 2) * ((s->Q + 1) / 2) >= WINO_MIN_COLS * nt ? 2 : 0;
}

syn_status syn__wino_conv(syn_backend *be, const syn__wino *s, const float *x, const float *w, const float *b,
                          bool add, float *y) {
    wgeom g = wgeom_make(s->tile, s->N, s->C, s->H, s->W, s->K, s->P, s->Q, s->ph, s->pw);
    return conv_pass(be, &g, x, w, false, b, add, y);
}

syn_status syn__wino_conv_t(syn_backend *be, const syn__wino *s, const float *y, const float *w, const float *b,
                            bool add, float *x) {
    wgeom g = wgeom_make(s->tile, s->N, s->K, s->P, s->Q, s->C, s->H, s->W, 2 - s->ph, 2 - s->pw);
    return conv_pass(be, &g, y, w, true, b, add, x);
}

syn_status syn__wino_dw(syn_backend *be, const syn__wino *s, const float *x, const float *dy, bool add, float *dw) {
    wgeom g = wgeom_make(2, s->N, s->C, s->H, s->W, s->K, s->P, s->Q, s->ph, s->pw);
    return dw_pass(be, &g, x, dy, add, dw);
}
