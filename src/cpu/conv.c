/* Convolutions on the CPU: conv2d and conv_transpose2d, forward and backward,
 * by im2col + OpenBLAS sgemm, whole images per OpenMP thread (a deep layer's
 * small maps: several images per GEMM); 3x3 stride-1 ones go to winograd.c
 * where that pays (syn__wino_tile). The plain direct convolution
 * these are checked against lives in tests/test_conv.c. */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include "cpu.h"

/* Both ops are one computation seen from two sides. The IMAGE side is what
 * im2col reads and col2im writes; the COLUMN side has one position per
 * placement of the kernel:
 *   conv2d:            image = x (C,H,W), columns = y (K,P,Q), w: (K, C/G, R, S)
 *   conv_transpose2d:  image = y (K,P,Q), columns = x (C,H,W), w: (C, K/G, R, S)
 * so w is always (Co, Ci/G, R, S), Co the column side's channels, and column
 * position (p,q) with kernel tap (r,s) touches image pixel
 * (p sh - ph + r dh, q sw - pw + s dw). */
typedef struct {
    int64_t N, G;
    int64_t Ci, H, W;  /* image side, per item */
    int64_t Co, P, Q;  /* column side, per item */
    int64_t R, S, sh, sw, ph, pw, dh, dw;
    int64_t cg, kg;    /* Ci/G, Co/G */
    int64_t crs;       /* cg R S: rows of one group's column matrix */
    int64_t hw, pq;
    bool direct;       /* 1x1, stride 1, no padding, P=H, Q=W: the image is its own column matrix */
    bool inner_par;    /* one image at a time: thread im2col / col2im instead of the batch */
    bool rowblock;     /* stride 1 and Q = W: a column row's valid image rows are one block */
} geom;

static geom make_geom(const syn_node *n, const syn_shape *im, const syn_shape *col) {
    const syn_shape *w = &n->in[1]->shape;
    geom g = {.N = im->dim[0], .G = n->i[SYN_A_GROUPS], .Ci = im->dim[1], .H = im->dim[2], .W = im->dim[3],
              .Co = col->dim[1], .P = col->dim[2], .Q = col->dim[3], .R = w->dim[2], .S = w->dim[3],
              .sh = n->i[SYN_A_SH], .sw = n->i[SYN_A_SW], .ph = n->i[SYN_A_PH], .pw = n->i[SYN_A_PW], .dh = n->i[SYN_A_DH],
              .dw = n->i[SYN_A_DW]};
    g.cg = g.Ci / g.G;
    g.kg = g.Co / g.G;
    g.crs = g.cg * g.R * g.S;
    g.hw = g.H * g.W;
    g.pq = g.P * g.Q;
    g.direct = g.R == 1 && g.S == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.P == g.H && g.Q == g.W;
    g.rowblock = g.sh == 1 && g.sw == 1 && g.Q == g.W;
    return g;
}

/* ---- im2col, col2im, GEMM ------------------------------------------------ */

/* The q in [0, Q) with 0 <= q s + off < W, as [*lo, *hi). */
static void q_range(int64_t off, int64_t s, int64_t W, int64_t Q, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = off > W - 1 ? 0 : (W - 1 - off) / s + 1;
    if (h > Q) h = Q;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* The output rows p whose image row p - ph + r dh is inside the image, as [*lo, *hi) (stride 1). */
static void p_range(const geom *g, int64_t r, int64_t *lo, int64_t *hi) {
    int64_t off = r * g->dh - g->ph, l = off < 0 ? -off : 0, h = g->H - off;
    if (h > g->P) h = g->P;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* The block of one column row (kernel tap (r, s), its columns [lo, hi) inside
 * the image, off = s dw - pw) of a stride-1 convolution whose output rows are
 * as wide as the image's (Q = W): output rows p and p + 1 then meet image
 * rows Q floats apart, so the valid rows [p0, p1) are the one span
 * [first, last) of the column row, at image index + delta. Between its rows
 * the span holds the columns outside [lo, hi), which wrap around to a
 * neighbouring image row. false: no column of the row meets the image. */
typedef struct {
    int64_t p0, p1, first, last, delta;
} span;

static bool block_span(const geom *g, int64_t r, int64_t lo, int64_t hi, int64_t off, span *b) {
    p_range(g, r, &b->p0, &b->p1);
    if (b->p0 == b->p1 || lo == hi) return false;
    b->first = b->p0 * g->Q + lo;
    b->last = (b->p1 - 1) * g->Q + hi;
    b->delta = (r * g->dh - g->ph) * g->Q + off;
    return true;
}

/* o's columns outside [lo, hi) in the span's rows = 0 */
static void zero_wrapped(const geom *g, const span *b, int64_t lo, int64_t hi, float *o) {
    for (int64_t p = b->p0; p < b->p1; p++) {
        for (int64_t q = 0; q < lo; q++) o[p * g->Q + q] = 0.0f;
        for (int64_t q = hi; q < g->Q; q++) o[p * g->Q + q] = 0.0f;
    }
}

/* One im2col row as one block copy, the wrapped columns zeroed after it. */
static void block_rows(const geom *g, int64_t r, int64_t lo, int64_t hi, const float *plane, float *o,
                       int64_t off) {
    span b;
    if (!block_span(g, r, lo, hi, off, &b)) {
        memset(o, 0, (size_t)g->pq * sizeof(float));
        return;
    }
    memset(o, 0, (size_t)b.first * sizeof(float));
    memcpy(o + b.first, plane + b.first + b.delta, (size_t)(b.last - b.first) * sizeof(float));
    zero_wrapped(g, &b, lo, hi, o);
    memset(o + b.last, 0, (size_t)(g->pq - b.last) * sizeof(float));
}

/* The adjoint of block_rows: o's wrapped columns zeroed (o is scratch), then
 * its span added to the plane as one block. */
static void block_add(const geom *g, int64_t r, int64_t lo, int64_t hi, float *o, float *plane, int64_t off) {
    span b;
    if (!block_span(g, r, lo, hi, off, &b)) return;
    zero_wrapped(g, &b, lo, hi, o);
    float *d = plane + b.first + b.delta;
    const float *a = o + b.first;
#pragma omp simd
    for (int64_t i = 0; i < b.last - b.first; i++) d[i] += a[i];
}

/* im: (cg, H, W)  ->  cols: (cg R S, P Q), its rows ld floats apart (ld > P Q:
 * several items' columns side by side)
 * cols[(c,r,s), (p,q)] = im[c, p sh - ph + r dh, q sw - pw + s dw], 0 outside the image */
static void im2col(const geom *g, const float *im, float *cols, int64_t ld) {
    const int64_t RS = g->R * g->S, Q = g->Q;
#pragma omp parallel for if (g->inner_par && g->crs * g->pq > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t row = 0; row < g->crs; row++) {
        int64_t c = row / RS, r = row % RS / g->S, s = row % g->S;
        int64_t off = s * g->dw - g->pw, lo, hi;
        q_range(off, g->sw, g->W, Q, &lo, &hi);
        float *o = cols + row * ld;
        if (g->rowblock) {
            block_rows(g, r, lo, hi, im + c * g->hw, o, off);
            continue;
        }
        for (int64_t p = 0; p < g->P; p++, o += Q) {
            int64_t ih = p * g->sh - g->ph + r * g->dh;
            if (ih < 0 || ih >= g->H || lo == hi) {
                memset(o, 0, (size_t)Q * sizeof(float));
                continue;
            }
            const float *src = im + (c * g->H + ih) * g->W;
            memset(o, 0, (size_t)lo * sizeof(float));
            if (g->sw == 1) memcpy(o + lo, src + lo + off, (size_t)(hi - lo) * sizeof(float));
            else
                for (int64_t q = lo; q < hi; q++) o[q] = src[q * g->sw + off];
            memset(o + hi, 0, (size_t)(Q - hi) * sizeof(float));
        }
    }
}

/* cols: (cg R S, P Q), rows ld floats apart  ->  im: (cg, H, W) +=, the adjoint of im2col:
 * im[c, p sh - ph + r dh, q sw - pw + s dw] += cols[(c,r,s), (p,q)]
 * (with rowblock, cols is scratch: the entries that fall outside the image are zeroed) */
static void col2im(const geom *g, float *cols, int64_t ld, float *im) {
    const int64_t Q = g->Q;
    /* threads own whole channels: the rows of channel c write only its plane */
#pragma omp parallel for if (g->inner_par && g->crs * g->pq > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t r = 0; r < g->R; r++)
            for (int64_t s = 0; s < g->S; s++) {
                int64_t off = s * g->dw - g->pw, lo, hi;
                q_range(off, g->sw, g->W, Q, &lo, &hi);
                float *src = cols + ((c * g->R + r) * g->S + s) * ld;
                if (g->rowblock) {
                    block_add(g, r, lo, hi, src, im + c * g->hw, off);
                    continue;
                }
                for (int64_t p = 0; p < g->P; p++, src += Q) {
                    int64_t ih = p * g->sh - g->ph + r * g->dh;
                    if (ih < 0 || ih >= g->H) continue;
                    float *dst = im + (c * g->H + ih) * g->W;
                    if (g->sw == 1)
                        for (int64_t q = lo; q < hi; q++) dst[q + off] += src[q];
                    else
                        for (int64_t q = lo; q < hi; q++) dst[q * g->sw + off] += src[q];
                }
            }
}

/* ---- one item ------------------------------------------------------------ */

/* Per group: cols = im2col(im);  out = w cols + beta out (out: (Co, PQ), may be
 * NULL);  dw += cin cols^T (cin: (Co, PQ), dw: (Co, crs), may be NULL). */
static void column_side(const geom *g, const float *w, const float *im, float *out, float beta, const float *cin,
                        float *dw, float *cols) {
    for (int64_t k = 0; k < g->G; k++) {
        const float *m = im + k * g->cg * g->hw;
        if (!g->direct) {
            im2col(g, m, cols, g->pq);
            m = cols;
        }
        if (out)
            syn__gemm(false, false, g->kg, g->pq, g->crs, w + k * g->kg * g->crs, m, beta, out + k * g->kg * g->pq);
        if (dw)
            syn__gemm(false, true, g->kg, g->crs, g->pq, cin + k * g->kg * g->pq, m, 1.0f, dw + k * g->kg * g->crs);
    }
}

/* Per group: im += col2im(w^T cin)  (cin: (Co, PQ), im: (Ci, H, W)). */
static void image_side(const geom *g, const float *w, const float *cin, float *im, float *cols) {
    for (int64_t k = 0; k < g->G; k++) {
        const float *wk = w + k * g->kg * g->crs, *ck = cin + k * g->kg * g->pq;
        float *ik = im + k * g->cg * g->hw;
        if (g->direct) {
            syn__gemm(true, false, g->crs, g->pq, g->kg, wk, ck, 1.0f, ik);
            continue;
        }
        syn__gemm(true, false, g->crs, g->pq, g->kg, wk, ck, 0.0f, cols);
        col2im(g, cols, g->pq, ik);
    }
}

/* ---- several items at once -------------------------------------------------

 * With few column positions (a deep layer's 8x8 or 4x4 maps), one item's
 * GEMM is thin and repacks all of w for little work: b items then share one
 * GEMM, their columns side by side in a (rows, b PQ) matrix. Ungrouped,
 * not direct convolutions only. */

/* b items' column-side values, each (rows, PQ), consecutive  ->  (rows, b PQ) */
static void gather_items(const float *src, int64_t rows, int64_t pq, int64_t b, float *dst) {
    for (int64_t i = 0; i < b; i++)
        for (int64_t k = 0; k < rows; k++)
            memcpy(dst + k * b * pq + i * pq, src + (i * rows + k) * pq, (size_t)pq * sizeof(float));
}

/* (rows, b PQ)  ->  b items' (rows, PQ), stored or added */
static void scatter_items(const float *src, int64_t rows, int64_t pq, int64_t b, float *dst, bool add) {
    for (int64_t i = 0; i < b; i++)
        for (int64_t k = 0; k < rows; k++) {
            const float *a = src + k * b * pq + i * pq;
            float *d = dst + (i * rows + k) * pq;
            if (add)
                for (int64_t l = 0; l < pq; l++) d[l] += a[l];
            else
                memcpy(d, a, (size_t)pq * sizeof(float));
        }
}

/* column_side for items [0, b) of im / out / cin; tmp: (Co, b PQ) */
static void column_side_b(const geom *g, int64_t b, const float *w, const float *im, float *out, float beta,
                          const float *cin, float *dw, float *cols, float *tmp) {
    const int64_t L = b * g->pq;
    for (int64_t i = 0; i < b; i++) im2col(g, im + i * g->Ci * g->hw, cols + i * g->pq, L);
    if (out) {
        syn__gemm(false, false, g->Co, L, g->crs, w, cols, 0.0f, tmp);
        scatter_items(tmp, g->Co, g->pq, b, out, beta != 0.0f);
    }
    if (dw) {
        gather_items(cin, g->Co, g->pq, b, tmp);
        syn__gemm(false, true, g->Co, g->crs, L, tmp, cols, 1.0f, dw);
    }
}

/* image_side for items [0, b) of cin / im; tmp: (Co, b PQ) */
static void image_side_b(const geom *g, int64_t b, const float *w, const float *cin, float *im, float *cols,
                         float *tmp) {
    const int64_t L = b * g->pq;
    gather_items(cin, g->Co, g->pq, b, tmp);
    syn__gemm(true, false, g->crs, L, g->Co, w, tmp, 0.0f, cols);
    for (int64_t i = 0; i < b; i++) col2im(g, cols + i * g->pq, L, im + i * g->Ci * g->hw);
}

/* y[k, :] = b[k] (or 0), or y[k, :] += b[k] when add; y: (K, L) */
static void bias_rows(float *y, const float *b, int64_t K, int64_t L, bool add) {
    for (int64_t k = 0; k < K; k++) {
        float v = b ? b[k] : 0.0f, *yk = y + k * L;
        if (add)
            for (int64_t i = 0; i < L; i++) yk[i] += v;
        else
            for (int64_t i = 0; i < L; i++) yk[i] = v;
    }
}

typedef enum { CONV_FWD, CONV_BWD, CONVT_FWD, CONVT_BWD } job_kind;

typedef struct {
    job_kind kind;
    geom g;
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw; /* outputs; dx, dw NULL when not wanted */
    bool dx_add, dw_add; /* add to dx / dw, or write them (fresh gradients: syn__grad_add) */
} job;

/* Item n of the batch; dw is this thread's partial sum (or NULL). */
static void run_item(const job *j, int64_t n, float *cols, float *dw) {
    const geom *g = &j->g;
    int64_t im = n * g->Ci * g->hw, col = n * g->Co * g->pq;
    switch (j->kind) {
    case CONV_FWD: /* y = w im2col(x) + b */
        column_side(g, j->w, j->x + im, j->y + col, 0.0f, NULL, NULL, cols);
        if (j->b) bias_rows(j->y + col, j->b, g->Co, g->pq, true);
        break;
    case CONV_BWD: /* dw += dy im2col(x)^T;  dx += col2im(w^T dy) */
        if (dw) column_side(g, NULL, j->x + im, NULL, 0.0f, j->dy + col, dw, cols);
        if (j->dx) image_side(g, j->w, j->dy + col, j->dx + im, cols);
        break;
    case CONVT_FWD: /* y = b + col2im(w^T x) */
        bias_rows(j->y + im, j->b, g->Ci, g->hw, false);
        image_side(g, j->w, j->x + col, j->y + im, cols);
        break;
    case CONVT_BWD: /* one im2col(dy) serves both:  dx += w im2col(dy);  dw += x im2col(dy)^T */
        column_side(g, j->w, j->dy + im, j->dx ? j->dx + col : NULL, j->dx_add ? 1.0f : 0.0f, j->x + col, dw, cols);
        break;
    }
}

/* Items [n, n + b) (b > 1: one GEMM for them all; tmp: (Co, b PQ)). */
static void run_items(const job *j, int64_t n, int64_t b, float *cols, float *tmp, float *dw) {
    /* col2im adds into dx: a fresh one is zeroed here, by the thread that fills it */
    if (j->kind == CONV_BWD && j->dx && !j->dx_add)
        memset(j->dx + n * j->g.Ci * j->g.hw, 0, (size_t)(b * j->g.Ci * j->g.hw) * sizeof(float));
    if (b == 1) {
        run_item(j, n, cols, dw);
        return;
    }
    const geom *g = &j->g;
    int64_t im = n * g->Ci * g->hw, col = n * g->Co * g->pq;
    switch (j->kind) {
    case CONV_FWD:
        column_side_b(g, b, j->w, j->x + im, j->y + col, 0.0f, NULL, NULL, cols, tmp);
        if (j->b)
            for (int64_t i = 0; i < b; i++) bias_rows(j->y + col + i * g->Co * g->pq, j->b, g->Co, g->pq, true);
        break;
    case CONV_BWD:
        if (dw) column_side_b(g, b, NULL, j->x + im, NULL, 0.0f, j->dy + col, dw, cols, tmp);
        if (j->dx) image_side_b(g, b, j->w, j->dy + col, j->dx + im, cols, tmp);
        break;
    case CONVT_FWD:
        for (int64_t i = 0; i < b; i++) bias_rows(j->y + im + i * g->Ci * g->hw, j->b, g->Ci, g->hw, false);
        image_side_b(g, b, j->w, j->x + col, j->y + im, cols, tmp);
        break;
    case CONVT_BWD:
        column_side_b(g, b, j->w, j->dy + im, j->dx ? j->dx + col : NULL, j->dx_add ? 1.0f : 0.0f, j->x + col, dw,
                      cols, tmp);
        break;
    }
}

/* ---- the batch ------------------------------------------------------------ */

/* OpenBLAS's own pthreads would fight the OpenMP threads that already split
 * the batch: GEMMs inside the parallel region run on one thread each. (An
 * OpenMP build of OpenBLAS does that by itself inside a parallel region.) */
int syn__blas_single_begin(void) {
    if (openblas_get_parallel() != 1) return 0;
    int t = openblas_get_num_threads();
    if (t > 1) openblas_set_num_threads(1);
    return t;
}
void syn__blas_single_end(int t) {
    if (t > 1) openblas_set_num_threads(t);
}

/* Below this many multiply-adds a batch runs on one thread: forking and
 * joining would cost more than they save. */
#define CONV_PAR_MIN_MACS (1 << 18)
/* Items share a GEMM up to this many columns, and up to this many floats of
 * column matrix per thread. */
#define CONV_ITEM_COLS 1024
#define CONV_ITEM_FLOATS (8 << 20)

/* The geometry for winograd.c: the conv2d from the image side to the column side */
static syn__wino wino_of(const geom *g) {
    syn__wino s = {.N = g->N, .C = g->Ci, .H = g->H, .W = g->W, .K = g->Co, .P = g->P, .Q = g->Q, .R = g->R,
                   .S = g->S, .stride_h = g->sh, .stride_w = g->sw, .ph = g->ph, .pw = g->pw, .dil_h = g->dh,
                   .dil_w = g->dw, .groups = g->G};
    return s;
}

/* j by Winograd F(m x m, 3x3) (winograd.c): conv2d image -> columns, its
 * transpose columns -> image, dw from the image and the column-side gradient */
static syn_status run_winograd(syn_backend *be, const job *j, const syn__wino *s) {
    switch (j->kind) {
    case CONV_FWD: /* y = conv(x) + b */
        return syn__wino_conv(be, s, j->x, j->w, j->b, false, j->y);
    case CONVT_FWD: /* y = conv^T(x) + b */
        return syn__wino_conv_t(be, s, j->x, j->w, j->b, false, j->y);
    case CONV_BWD: /* dx = conv^T(dy), dw from x and dy */
        if (j->dx) SYN_TRY(syn__wino_conv_t(be, s, j->dy, j->w, NULL, j->dx_add, j->dx));
        return j->dw ? syn__wino_dw(be, s, j->x, j->dy, j->dw_add, j->dw) : SYN_OK;
    case CONVT_BWD: /* dx = conv(dy), dw from dy (the image) and x */
        if (j->dx) SYN_TRY(syn__wino_conv(be, s, j->dy, j->w, NULL, j->dx_add, j->dx));
        return j->dw ? syn__wino_dw(be, s, j->dy, j->x, j->dw_add, j->dw) : SYN_OK;
    }
    return SYN_OK;
}

/* Runs j over the batch: with several threads, each takes whole items with its
 * own im2col buffer and its own partial dw (summed at the end, in a fixed
 * order); with one item (or little work), one at a time, im2col, col2im and
 * GEMM threaded inside when large. */
static syn_status run_batch(syn_backend *be, job *j) {
    geom *g = &j->g;
    syn__wino s = wino_of(g);
    if ((s.tile = syn__wino_tile(&s))) return run_winograd(be, j, &s);
    if (g->N == 0) return SYN_OK;
    int nt = g->N * g->Co * g->pq * g->crs < CONV_PAR_MIN_MACS ? 1 : omp_get_max_threads();
    if (nt > g->N) nt = (int)g->N;
    if (nt < 1) nt = 1;
    g->inner_par = nt == 1;
    /* items per GEMM: enough for CONV_ITEM_COLS columns, no more than a
     * thread's share of the batch */
    int64_t b = 1;
    if (g->G == 1 && !g->direct && g->pq < CONV_ITEM_COLS) {
        int64_t share = (g->N + nt - 1) / nt, cap = CONV_ITEM_FLOATS / (g->crs * g->pq);
        b = CONV_ITEM_COLS / g->pq;
        if (b > share) b = share;
        if (b > cap) b = cap;
        if (b < 1) b = 1;
    }
    /* per-thread slices rounded to 64 bytes: no false sharing */
    size_t cols_f = g->direct ? 0 : syn__round16((size_t)(g->crs * g->pq * b));
    size_t tmp_f = b > 1 ? syn__round16((size_t)(g->Co * g->pq * b)) : 0;
    size_t dw_f = nt > 1 && j->dw ? (size_t)(g->Co * g->crs) : 0, dw_s = syn__round16(dw_f);
    size_t total = (size_t)nt * (cols_f + tmp_f + dw_s);
    float *ws = NULL;
    if (total) SYN_TRY(be->workspace(be, total * sizeof(float), (void **)&ws));
    const int64_t chunks = (g->N + b - 1) / b;
    if (nt == 1) {
        if (j->dw && !j->dw_add) memset(j->dw, 0, (size_t)(g->Co * g->crs) * sizeof(float));
        for (int64_t c = 0; c < chunks; c++)
            run_items(j, c * b, g->N - c * b < b ? g->N - c * b : b, ws, ws ? ws + cols_f : NULL, j->dw);
        return SYN_OK;
    }
    float *part = ws ? ws + (size_t)nt * (cols_f + tmp_f) : NULL;
    if (dw_f) memset(part, 0, (size_t)nt * dw_s * sizeof(float));
    int blas = syn__blas_single_begin();
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        float *cols = cols_f ? ws + (size_t)t * cols_f : NULL, *dw = dw_f ? part + (size_t)t * dw_s : NULL;
        float *tmp = tmp_f ? ws + (size_t)nt * cols_f + (size_t)t * tmp_f : NULL;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) run_items(j, c * b, g->N - c * b < b ? g->N - c * b : b, cols, tmp, dw);
    }
    syn__blas_single_end(blas);
    if (dw_f) syn__sum_partials(part, dw_s, nt, dw_f, j->dw_add, j->dw);
    return SYN_OK;
}

void syn__sum_partials(const float *part, size_t step, int nt, size_t n, bool add, float *dst) {
#pragma omp parallel for if (n * (size_t)nt > SYN_CPU_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int t = 0; t < nt; t++) s += part[(size_t)t * step + i];
        dst[i] = add ? dst[i] + s : s;
    }
}

/* dy: (N, K, L)  ->  db[k] += sum_{n,l} dy[n,k,l] (or = when !add) */
static void bias_grad(const float *dy, int64_t N, int64_t K, int64_t L, float *db, bool add) {
#pragma omp parallel for if (N * K * L > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < K; k++) {
        double s = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *d = dy + (n * K + k) * L;
            float row = 0.0f;
#pragma omp simd reduction(+ : row)
            for (int64_t i = 0; i < L; i++) row += d[i];
            s += row;
        }
        db[k] = add ? db[k] + (float)s : (float)s;
    }
}

/* ---- the kernels ------------------------------------------------------------ */

/* x: (N,C,H,W)  w: (K,C/G,R,S)  b: (K) or none  ->  y: (N,K,P,Q)
 * y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] x[n, g C/G + c, p sh - ph + r dh, q sw - pw + s dw],
 * g = k / (K/G) the group of k */
syn_status syn__cpu_conv2d_fwd(syn_backend *be, syn_node *n) {
    job j = {.kind = CONV_FWD, .g = make_geom(n, &n->in[0]->shape, &n->shape), .x = syn__cin(n, 0),
             .w = syn__cin(n, 1), .b = n->n_in == 3 ? syn__cin(n, 2) : NULL, .y = n->value};
    return run_batch(be, &j);
}

/* dx += col2im(w^T dy) (the adjoint of the forward in x);  dw += dy im2col(x)^T;
 * db += sum_{n,p,q} dy;  each of them written instead where its gradient is fresh */
syn_status syn__cpu_conv2d_bwd(syn_backend *be, syn_node *n) {
    job j = {.kind = CONV_BWD, .g = make_geom(n, &n->in[0]->shape, &n->shape), .x = syn__cin(n, 0),
             .w = syn__cin(n, 1), .dy = n->grad, .dx = syn__cgrad(n, 0), .dw = syn__cgrad(n, 1),
             .dx_add = syn__grad_add(n, 0), .dw_add = syn__grad_add(n, 1)};
    float *db = n->n_in == 3 ? syn__cgrad(n, 2) : NULL;
    if (db) bias_grad(j.dy, j.g.N, j.g.Co, j.g.pq, db, syn__grad_add(n, 2));
    return j.dx || j.dw ? run_batch(be, &j) : SYN_OK;
}

/* x: (N,C,H,W)  w: (C,K/G,R,S)  b: (K) or none  ->  y: (N,K,P,Q), the adjoint of conv2d in its input:
 * y[n, g K/G + k, h sh - ph + r dh, v sw - pw + s dw] += w[c,k,r,s] x[n,c,h,v] for every c, h, v, k, r, s
 * (g = c / (C/G)), plus b */
syn_status syn__cpu_conv_transpose2d_fwd(syn_backend *be, syn_node *n) {
    job j = {.kind = CONVT_FWD, .g = make_geom(n, &n->shape, &n->in[0]->shape), .x = syn__cin(n, 0),
             .w = syn__cin(n, 1), .b = n->n_in == 3 ? syn__cin(n, 2) : NULL, .y = n->value};
    return run_batch(be, &j);
}

/* dx += w im2col(dy) (conv2d's forward of dy);  dw += x im2col(dy)^T;  db += sum_{n,p,q} dy;
 * each of them written instead where its gradient is fresh */
syn_status syn__cpu_conv_transpose2d_bwd(syn_backend *be, syn_node *n) {
    job j = {.kind = CONVT_BWD, .g = make_geom(n, &n->shape, &n->in[0]->shape), .x = syn__cin(n, 0),
             .w = syn__cin(n, 1), .dy = n->grad, .dx = syn__cgrad(n, 0), .dw = syn__cgrad(n, 1),
             .dx_add = syn__grad_add(n, 0), .dw_add = syn__grad_add(n, 1)};
    float *db = n->n_in == 3 ? syn__cgrad(n, 2) : NULL;
    if (db) bias_grad(j.dy, j.g.N, j.g.Ci, j.g.hw, db, syn__grad_add(n, 2));
    return j.dx || j.dw ? run_batch(be, &j) : SYN_OK;
}
