/* 3x3 convolutions of stride 1 (undilated, ungrouped) on the CPU by Winograd's
 * minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2015). Each 2x2 block of outputs, a tile,
 * comes from the 4x4 input patch under it:
 *     Y = A^T [ U (.) V ] A,   U = G w G^T (4x4 per filter),  V = B^T d B (4x4 per patch),
 * and summed over input channels the 16 elementwise products are 16 GEMMs,
 *     M[e] (Co, tiles) = U[e] (Co, Ci) V[e] (Ci, tiles),   e = 0..15,
 * 16 multiply-adds per tile and channel pair where the convolution takes 36.
 * The transforms are additions and halvings.
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
 * single-threaded GEMMs. A tile that reaches past the output (P or Q odd)
 * computes values nobody stores, and in dw its dY there is 0. */
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
    int64_t sw;          /* floats per tile row in a stripe: 2 tq */
} wgeom;

/* A chunk has at least this many tiles, the columns of its GEMMs (narrower
 * GEMMs run well below OpenBLAS's speed: chunks of 30 columns on 8x8 maps
 * took 1.7 times as long as chunks of 160), its V and M at most this many
 * floats, and there are enough chunks for every thread. */
#define WINO_CHUNK_COLS 160
/* Fewer tiles than this per thread: im2col's one large GEMM is faster. */
#define WINO_MIN_COLS 64
#define WINO_CHUNK_FLOATS (1 << 22)

static wgeom wgeom_make(int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t P, int64_t Q, int64_t ph,
                        int64_t pw) {
    wgeom g = {.N = N, .Ci = Ci, .H = H, .W = W, .Co = Co, .P = P, .Q = Q, .ph = ph, .pw = pw};
    g.tp = (P + 1) / 2;
    g.tq = (Q + 1) / 2;
    g.sw = 2 * g.tq;
    g.rows = N * g.tp;
    if (g.rows == 0 || g.tq == 0) { /* an empty output: nothing to do */
        g.rows = 0;
        g.cr = 1;
        return g;
    }
    const int64_t per_row = 16 * (Ci + Co) * g.tq; /* floats of V and M per tile row */
    const int64_t nt = omp_get_max_threads(), share = (g.rows + nt - 1) / nt;
    int64_t cr = (WINO_CHUNK_COLS + g.tq - 1) / g.tq;
    if (per_row > 0 && cr > WINO_CHUNK_FLOATS / per_row) cr = WINO_CHUNK_FLOATS / per_row;
    if (cr > share) cr = share;
    if (cr < 1) cr = 1;
    g.cr = cr;
    return g;
}

/* Scratch floats per thread: eight stripes (below) of a chunk. */
static size_t stripe_floats(const wgeom *g) { return (size_t)(8 * g->cr * g->sw); }

/* ---- the transforms ----------------------------------------------------------------
 *
 * A chunk is cr consecutive tile rows of the batch; its tiles are the
 * columns of its V and M, k = (tile row in the chunk) tq + j. The
 * transforms read and write through stripes: a stripe holds, for each tile
 * row of the chunk, sw = 2 tq floats of one padded image row, so that tile
 * k's columns start at 2 k in it and each transform is one loop over the
 * chunk's columns, long enough to vectorise also on small images. A 4x4
 * patch reaches 2 columns past its tile row's 2 tq: the input transform
 * reads its columns 2 and 3 from a second stripe of the same rows,
 * shifted by 2. */

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
static inline __attribute__((always_inline)) void copy_row(float *restrict d, const float *restrict s, int64_t n) {
    if (n < 8) {
        for (int64_t m = 0; m < n; m++) d[m] = s[m];
        return;
    }
    int64_t m = 0;
    for (; m + 8 <= n; m += 8) *(v8 *)(d + m) = *(const v8 *)(s + m);
    if (m < n) *(v8 *)(d + n - 8) = *(const v8 *)(s + n - 8);
}

/* stripe: for each tile row of [rho0, rho0 + cr), image row 2 i + off of
 * plane c of im (C planes of h x w per image), its column q at q + shift of
 * the tile row's sw floats; 0 where that is outside the image. (No memcpy
 * and memset: rows of small maps are a few floats, and the calls had cost
 * more than the copies.) */
static inline __attribute__((always_inline)) void fill_stripe(const wgeom *g, const float *im, int64_t C, int64_t c,
                                                              int64_t h, int64_t w, int64_t rho0, int64_t cr,
                                                              int64_t off, int64_t shift, float *stripe) {
    const int64_t sw = g->sw;
    int64_t m0 = shift > 0 ? shift : 0, m1 = shift + w < sw ? shift + w : sw;
    if (m1 < m0) m1 = m0;
    int64_t n = rho0 / g->tp, i = rho0 % g->tp;
    for (int64_t k = 0; k < cr; k++) {
        float *d = stripe + k * sw;
        int64_t row = 2 * i + off;
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

/* V[e][c][k] = (B^T d B)[e], d the 4x4 input patch of column k in channel c
 * (0 outside the image); V: (16, Ci, cr tq); S: stripe_floats scratch */
SYN_CPU_CLONES static void input_tf(const wgeom *g, const float *x, int64_t rho0, int64_t cr, float *V, float *S) {
    const int64_t ct = cr * g->tq, stride = g->Ci * ct, sl = cr * g->sw;
    for (int64_t c = 0; c < g->Ci; c++) {
        /* the patch's rows r in a_r (its columns 0, 1 at 2 k) and b_r (2, 3) */
        for (int r = 0; r < 4; r++) {
            fill_stripe(g, x, g->Ci, c, g->H, g->W, rho0, cr, r - g->ph, g->pw, S + r * sl);
            fill_stripe(g, x, g->Ci, c, g->H, g->W, rho0, cr, r - g->ph, g->pw - 2, S + (4 + r) * sl);
        }
        const float *a0 = S, *a1 = S + sl, *a2 = S + 2 * sl, *a3 = S + 3 * sl;
        const float *b0 = S + 4 * sl, *b1 = S + 5 * sl, *b2 = S + 6 * sl, *b3 = S + 7 * sl;
        float *o = V + c * ct;
#pragma GCC ivdep
        for (int64_t k = 0; k < ct; k++) {
            float d[4][4] = {{a0[2 * k], a0[2 * k + 1], b0[2 * k], b0[2 * k + 1]},
                             {a1[2 * k], a1[2 * k + 1], b1[2 * k], b1[2 * k + 1]},
                             {a2[2 * k], a2[2 * k + 1], b2[2 * k], b2[2 * k + 1]},
                             {a3[2 * k], a3[2 * k + 1], b3[2 * k], b3[2 * k + 1]}};
            float u[4][4]; /* d B, row by row */
            for (int r = 0; r < 4; r++) {
                u[r][0] = d[r][0] - d[r][2];
                u[r][1] = d[r][1] + d[r][2];
                u[r][2] = d[r][2] - d[r][1];
                u[r][3] = d[r][1] - d[r][3];
            }
            for (int s = 0; s < 4; s++) { /* B^T (d B) */
                o[s * stride + k] = u[0][s] - u[2][s];
                o[(4 + s) * stride + k] = u[1][s] + u[2][s];
                o[(8 + s) * stride + k] = u[2][s] - u[1][s];
                o[(12 + s) * stride + k] = u[1][s] - u[3][s];
            }
        }
    }
}

/* dM[e][k][c] = (A dY A^T)[e], dY the 2x2 output block of column c in output
 * channel k (0 past the output); dM: (16, Co, cr tq) */
SYN_CPU_CLONES static void grad_tf(const wgeom *g, const float *dy, int64_t rho0, int64_t cr, float *dM, float *S) {
    const int64_t ct = cr * g->tq, stride = g->Co * ct, sl = cr * g->sw;
    for (int64_t k = 0; k < g->Co; k++) {
        for (int r = 0; r < 2; r++) fill_stripe(g, dy, g->Co, k, g->P, g->Q, rho0, cr, r, 0, S + r * sl);
        const float *y0 = S, *y1 = S + sl;
        float *o = dM + k * ct;
#pragma GCC ivdep
        for (int64_t c = 0; c < ct; c++) {
            float d[2][2] = {{y0[2 * c], y0[2 * c + 1]}, {y1[2 * c], y1[2 * c + 1]}};
            float u[2][4]; /* dY A^T, row by row */
            for (int r = 0; r < 2; r++) {
                u[r][0] = d[r][0];
                u[r][1] = d[r][0] + d[r][1];
                u[r][2] = d[r][0] - d[r][1];
                u[r][3] = -d[r][1];
            }
            for (int s = 0; s < 4; s++) { /* A (dY A^T) */
                o[s * stride + c] = u[0][s];
                o[(4 + s) * stride + c] = u[0][s] + u[1][s];
                o[(8 + s) * stride + c] = u[0][s] - u[1][s];
                o[(12 + s) * stride + c] = -u[1][s];
            }
        }
    }
}

/* y's 2x2 block of column c in channel k = (A^T m A) (+ bias[k], or + y when
 * add), m = M[.][k][c]; M: (16, Co, cr tq) */
SYN_CPU_CLONES static void output_tf(const wgeom *g, const float *M, int64_t rho0, int64_t cr, const float *bias,
                                     bool add, float *y, float *S) {
    const int64_t ct = cr * g->tq, stride = g->Co * ct, sl = cr * g->sw, P = g->P, Q = g->Q;
    float *o0 = S, *o1 = S + sl;
    for (int64_t k = 0; k < g->Co; k++) {
        const float *m = M + k * ct;
#pragma GCC ivdep
        for (int64_t c = 0; c < ct; c++) {
            float a[2][4]; /* A^T m */
            for (int s = 0; s < 4; s++) {
                float m0 = m[s * stride + c], m1 = m[(4 + s) * stride + c], m2 = m[(8 + s) * stride + c],
                      m3 = m[(12 + s) * stride + c];
                a[0][s] = m0 + m1 + m2;
                a[1][s] = m1 - m2 - m3;
            }
            o0[2 * c] = a[0][0] + a[0][1] + a[0][2]; /* (A^T m) A */
            o0[2 * c + 1] = a[0][1] - a[0][2] - a[0][3];
            o1[2 * c] = a[1][0] + a[1][1] + a[1][2];
            o1[2 * c + 1] = a[1][1] - a[1][2] - a[1][3];
        }
        const float b = bias ? bias[k] : 0.0f;
        for (int64_t t = 0; t < cr; t++) {
            int64_t n, i;
            tile_row(g, rho0 + t, &n, &i);
            for (int r = 0; r < 2 && 2 * i + r < P; r++) {
                float *d = y + ((n * g->Co + k) * P + 2 * i + r) * Q;
                const float *src = (r ? o1 : o0) + t * g->sw;
                if (add)
                    for (int64_t q = 0; q < Q; q++) d[q] += src[q];
                else
                    for (int64_t q = 0; q < Q; q++) d[q] = src[q] + b;
            }
        }
    }
}

/* U[e][ko][ki] = (G f G^T)[e] with f = w[ko][ki] (w: (Co, Ci, 3, 3)), or,
 * with turn, f = w[ki][ko] turned by 180 degrees (w: (Ci, Co, 3, 3)) */
SYN_CPU_CLONES static void weight_tf(const float *w, int64_t Co, int64_t Ci, bool turn, float *U) {
    const int64_t stride = Co * Ci;
#pragma omp parallel for if (Co * Ci * 16 > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t ko = 0; ko < Co; ko++) {
        float *o = U + ko * Ci;
        /* f[r][s] = src[ki step + r rs + s ss] */
        const float *src = turn ? w + ko * 9 + 8 : w + ko * Ci * 9;
        const int64_t step = turn ? Co * 9 : 9, rs = turn ? -3 : 3, ss = turn ? -1 : 1;
#pragma GCC ivdep
        for (int64_t ki = 0; ki < Ci; ki++) {
            float f[3][3];
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) f[r][s] = src[ki * step + r * rs + s * ss];
            float u[4][3]; /* G f */
            for (int s = 0; s < 3; s++) {
                u[0][s] = f[0][s];
                u[1][s] = 0.5f * (f[0][s] + f[1][s] + f[2][s]);
                u[2][s] = 0.5f * (f[0][s] - f[1][s] + f[2][s]);
                u[3][s] = f[2][s];
            }
            for (int r = 0; r < 4; r++) { /* (G f) G^T */
                o[(4 * r + 0) * stride + ki] = u[r][0];
                o[(4 * r + 1) * stride + ki] = 0.5f * (u[r][0] + u[r][1] + u[r][2]);
                o[(4 * r + 2) * stride + ki] = 0.5f * (u[r][0] - u[r][1] + u[r][2]);
                o[(4 * r + 3) * stride + ki] = u[r][2];
            }
        }
    }
}

/* dw[ko][ki] = G^T dU[.][ko][ki] G (or += when add); dU: (16, Co, Ci), the
 * adjoint of weight_tf without turn */
SYN_CPU_CLONES static void weight_grad_tf(const float *dU, int64_t Co, int64_t Ci, bool add, float *dw) {
    const int64_t stride = Co * Ci;
#pragma omp parallel for if (Co * Ci * 16 > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t ko = 0; ko < Co; ko++)
        for (int64_t ki = 0; ki < Ci; ki++) {
            const float *m = dU + ko * Ci + ki;
            float u[3][4]; /* G^T dU */
            for (int s = 0; s < 4; s++) {
                float m0 = m[s * stride], m1 = m[(4 + s) * stride], m2 = m[(8 + s) * stride],
                      m3 = m[(12 + s) * stride];
                u[0][s] = m0 + 0.5f * (m1 + m2);
                u[1][s] = 0.5f * (m1 - m2);
                u[2][s] = 0.5f * (m1 + m2) + m3;
            }
            float *d = dw + (ko * Ci + ki) * 9;
            for (int r = 0; r < 3; r++) { /* (G^T dU) G */
                float o[3] = {u[r][0] + 0.5f * (u[r][1] + u[r][2]), 0.5f * (u[r][1] - u[r][2]),
                              0.5f * (u[r][1] + u[r][2]) + u[r][3]};
                for (int s = 0; s < 3; s++) d[r * 3 + s] = add ? d[r * 3 + s] + o[s] : o[s];
            }
        }
}

/* ---- the passes ----------------------------------------------------------------- */

static int64_t chunks_of(const wgeom *g) { return (g->rows + g->cr - 1) / g->cr; }

static int threads_for(const wgeom *g) {
    int64_t chunks = chunks_of(g), nt = omp_get_max_threads();
    if (16 * g->rows * g->tq * g->Ci * g->Co < (1 << 18)) nt = 1; /* too little work to fork for */
    return (int)(nt < chunks ? nt : chunks);
}

/* out = conv(in, w) (+ bias), or out += it; turn: w (Ci, Co, 3, 3) used turned (see weight_tf) */
static syn_status conv_pass(syn_backend *be, const wgeom *g, const float *in, const float *w, bool turn,
                            const float *bias, bool add, float *out) {
    if (g->rows == 0) return SYN_OK;
    const int nt = threads_for(g);
    const int64_t ctm = g->cr * g->tq;
    const size_t u_f = syn__round16((size_t)(16 * g->Co * g->Ci)), v_f = syn__round16((size_t)(16 * g->Ci * ctm)),
                 m_f = syn__round16((size_t)(16 * g->Co * ctm)), r_f = syn__round16(stripe_floats(g));
    float *ws;
    SYN_TRY(be->workspace(be, (u_f + (size_t)nt * (v_f + m_f + r_f)) * sizeof(float), (void **)&ws));
    float *U = ws;
    weight_tf(w, g->Co, g->Ci, turn, U);
    const int64_t chunks = chunks_of(g);
    int blas = nt > 1 ? syn__blas_single_begin() : 0; /* one chunk: GEMMs threaded inside */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *V = ws + u_f + (size_t)omp_get_thread_num() * (v_f + m_f + r_f), *M = V + v_f, *S = M + m_f;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t rho0 = c * g->cr, cr = g->rows - rho0 < g->cr ? g->rows - rho0 : g->cr, ct = cr * g->tq;
            input_tf(g, in, rho0, cr, V, S);
            for (int e = 0; e < 16; e++)
                syn__gemm(false, false, g->Co, ct, g->Ci, U + e * g->Co * g->Ci, V + e * g->Ci * ct, 0.0f,
                          M + e * g->Co * ct);
            output_tf(g, M, rho0, cr, bias, add, out, S);
        }
    }
    syn__blas_single_end(blas);
    return SYN_OK;
}

/* dw = G^T (sum over tiles dM V^T) G, or dw += it */
static syn_status dw_pass(syn_backend *be, const wgeom *g, const float *x, const float *dy, bool add, float *dw) {
    const size_t u_f = syn__round16((size_t)(16 * g->Co * g->Ci));
    if (g->rows == 0) {
        if (!add) memset(dw, 0, (size_t)(g->Co * g->Ci * 9) * sizeof(float));
        return SYN_OK;
    }
    const int nt = threads_for(g);
    const int64_t ctm = g->cr * g->tq;
    const size_t v_f = syn__round16((size_t)(16 * g->Ci * ctm)), m_f = syn__round16((size_t)(16 * g->Co * ctm)),
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
            input_tf(g, x, rho0, cr, V, S);
            grad_tf(g, dy, rho0, cr, dM, S);
            for (int e = 0; e < 16; e++)
                syn__gemm(false, true, g->Co, g->Ci, ct, dM + e * g->Co * ct, V + e * g->Ci * ct, 1.0f,
                          dU + e * g->Co * g->Ci);
        }
    }
    syn__blas_single_end(blas);
    /* the threads' partial sums, added in thread order into thread 0's */
    syn__sum_partials(ws, step, nt, (size_t)(16 * g->Co * g->Ci), false, ws);
    weight_grad_tf(ws, g->Co, g->Ci, add, dw);
    return SYN_OK;
}

/* ---- the entry points ------------------------------------------------------------ */

bool syn__wino_fits(const syn__wino *s) {
    static int cached = -1; /* SYN_CPU_WINOGRAD: 0 never, 1 where it pays (default), 2 wherever it applies */
    int mode = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (mode < 0) {
        const char *e = getenv("SYN_CPU_WINOGRAD");
        mode = e && *e ? atoi(e) : 1;
        __atomic_store_n(&cached, mode, __ATOMIC_RELAXED);
    }
    if (mode == 0 || s->R != 3 || s->S != 3 || s->stride_h != 1 || s->stride_w != 1 || s->dil_h != 1 ||
        s->dil_w != 1 || s->groups != 1 || s->ph < 0 || s->ph > 2 || s->pw < 0 || s->pw > 2 ||
        s->P != s->H + 2 * s->ph - 2 || s->Q != s->W + 2 * s->pw - 2) /* a transposed one's output padding */
        return false;
    if (mode == 2) return true;
    /* Where it pays, measured on 3x3 fwd + dx + dw here (2 threads, OpenBLAS's
     * SkylakeX kernels): with 16 channels or more on each side (16 -> 16 at
     * 28x28: 1.3x faster; 8 -> 16: 1.3x slower; a first layer's 3 channels:
     * 1.8x slower), and with enough tiles for each thread's GEMMs (256
     * channels at 14x14: batch 1, 25 tiles per thread, 1.6x slower; batch 2,
     * 49, even; 512 at 4x4: batch 16, 32 tiles, even; batch 32, 64, 1.1-1.2x
     * faster; 128 at 16x16, batch 4, 128: 1.25x faster). */
    int64_t cols = s->N * ((s->P + 1) / 2) * ((s->Q + 1) / 2);
    return s->C >= 16 && s->K >= 16 && cols >= WINO_MIN_COLS * omp_get_max_threads();
}

syn_status syn__wino_conv(syn_backend *be, const syn__wino *s, const float *x, const float *w, const float *b,
                          bool add, float *y) {
    wgeom g = wgeom_make(s->N, s->C, s->H, s->W, s->K, s->P, s->Q, s->ph, s->pw);
    return conv_pass(be, &g, x, w, false, b, add, y);
}

syn_status syn__wino_conv_t(syn_backend *be, const syn__wino *s, const float *y, const float *w, const float *b,
                            bool add, float *x) {
    wgeom g = wgeom_make(s->N, s->K, s->P, s->Q, s->C, s->H, s->W, 2 - s->ph, 2 - s->pw);
    return conv_pass(be, &g, y, w, true, b, add, x);
}

syn_status syn__wino_dw(syn_backend *be, const syn__wino *s, const float *x, const float *dy, bool add, float *dw) {
    wgeom g = wgeom_make(s->N, s->C, s->H, s->W, s->K, s->P, s->Q, s->ph, s->pw);
    return dw_pass(be, &g, x, dy, add, dw);
}
