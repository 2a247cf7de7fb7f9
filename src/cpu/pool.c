/* Pooling on the CPU: max and average pooling over kh x kw windows (floor
 * mode, PyTorch's rules) and adaptive average pooling. Every kernel works one
 * (n, c) plane at a time, so the planes run in parallel without races. */
#include <math.h>
#include <string.h>
#include "cpu.h"

typedef struct {
    int64_t planes, H, W, P, Q; /* planes = N * C */
    int64_t kh, kw, sh, sw, ph, pw;
} pool_geom;

static pool_geom geom(const syn_node *n) {
    const syn_shape *x = &n->in[0]->shape;
    pool_geom p = {x->dim[0] * x->dim[1], x->dim[2], x->dim[3], n->shape.dim[2], n->shape.dim[3],
                   n->i[SYN_A_KH],           n->i[SYN_A_KW], n->i[SYN_A_SH], n->i[SYN_A_SW],     n->i[SYN_A_PH], n->i[SYN_A_PW]};
    return p;
}

/* The window of output (p, q), clipped to the input: rows [*h0, *h1), cols [*w0, *w1). */
static void window(const pool_geom *g, int64_t p, int64_t q, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1) {
    int64_t hs = p * g->sh - g->ph, ws = q * g->sw - g->pw;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + g->kh < g->H ? hs + g->kh : g->H;
    *w1 = ws + g->kw < g->W ? ws + g->kw : g->W;
}

static bool par(const pool_geom *g) { return g->planes > 1 && g->planes * g->H * g->W > SYN_CPU_PAR_MIN / 8; }

/* ---- max pooling -----------------------------------------------------------
 * x: (N, C, H, W)  ->  y: (N, C, P, Q),  P = (H + 2 ph - kh) / sh + 1
 * y[p, q] = max over the window (padding is -inf, so it never wins) */

/* Index in the plane of the window's maximum: the first one in scan order,
 * NaN propagating as PyTorch's CPU kernel does; -1 for an empty window. */
static int64_t argmax(const float *xp, const pool_geom *g, int64_t p, int64_t q) {
    int64_t h0, h1, w0, w1, best = -1;
    window(g, p, q, &h0, &h1, &w0, &w1);
    float m = -INFINITY;
    for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) {
            float v = xp[h * g->W + w];
            if (best < 0 || v > m || isnan(v)) {
                m = v;
                best = h * g->W + w;
            }
        }
    return best;
}

/* The common 2x2 window with stride 2 and no padding (LeNet, VGG, the
 * Fashion-MNIST CNN) without the general window arithmetic: the same value
 * and argmax as argmax() (first maximum in scan order a, b, c, d; a NaN wins
 * over numbers and a later NaN over an earlier one). Branch-free, so the
 * row loops vectorise; the profile had max pooling at a quarter of the CNN
 * step through the general path. */
static bool is_2x2(const pool_geom *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0;
}

/* v replaces the running maximum m (| rather than ||: no branch) */
static inline int pick(float v, float m) { return (v > m) | (v != v); }

static void max2x2_fwd_plane(const float *restrict xp, float *restrict yp, int64_t W, int64_t P, int64_t Q) {
    for (int64_t p = 0; p < P; p++) {
        const float *r0 = xp + 2 * p * W, *r1 = r0 + W;
        float *yr = yp + p * Q;
        for (int64_t q = 0; q < Q; q++) {
            float m = r0[2 * q];
            m = pick(r0[2 * q + 1], m) ? r0[2 * q + 1] : m;
            m = pick(r1[2 * q], m) ? r1[2 * q] : m;
            m = pick(r1[2 * q + 1], m) ? r1[2 * q + 1] : m;
            yr[q] = m;
        }
    }
}

/* dx[argmax] += dy: windows do not overlap, so each of the four gets its
 * share (dy or 0) without a scatter */
static void max2x2_bwd_plane(const float *restrict xp, const float *restrict dyp, float *restrict dxp, int64_t W,
                             int64_t H, int64_t P, int64_t Q, bool add) {
    /* a fresh gradient: each pair of rows is zeroed just before its windows
     * add to it (in cache, unlike a memset of the whole tensor first; GCC
     * does not vectorise the store-only form of the loop below) */
    if (!add && 2 * P < H) memset(dxp + 2 * P * W, 0, (size_t)((H - 2 * P) * W) * sizeof(float)); /* odd last row */
    for (int64_t p = 0; p < P; p++) {
        const float *r0 = xp + 2 * p * W, *r1 = r0 + W;
        float *d0 = dxp + 2 * p * W, *d1 = d0 + W;
        const float *g = dyp + p * Q;
        if (!add) memset(d0, 0, (size_t)(2 * W) * sizeof(float));
        for (int64_t q = 0; q < Q; q++) {
            /* bit masks and selects, no branches: GCC vectorises this form
             * (with ! or && it sees control flow) */
            const float a = r0[2 * q], b = r0[2 * q + 1], c = r1[2 * q], d = r1[2 * q + 1], gq = g[q];
            const int kb = pick(b, a);
            const float m1 = kb ? b : a;
            const int kc = pick(c, m1);
            const float m2 = kc ? c : m1;
            const int kd = pick(d, m2);
            const int w3 = kd, w2 = kc & ~kd, w1 = kb & ~kc & ~kd, w0 = ~kb & ~kc & ~kd & 1;
            d1[2 * q + 1] += w3 ? gq : 0.0f;
            d1[2 * q] += w2 ? gq : 0.0f;
            d0[2 * q + 1] += w1 ? gq : 0.0f;
            d0[2 * q] += w0 ? gq : 0.0f;
        }
    }
}

syn_status syn__cpu_max_pool2d_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    pool_geom g = geom(n);
    const float *x = syn__cin(n, 0);
    float *y = n->value;
    if (is_2x2(&g)) {
#pragma omp parallel for if (par(&g)) schedule(static)
        for (int64_t pl = 0; pl < g.planes; pl++)
            max2x2_fwd_plane(x + pl * g.H * g.W, y + pl * g.P * g.Q, g.W, g.P, g.Q);
        return SYN_OK;
    }
#pragma omp parallel for if (par(&g)) schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.H * g.W;
        float *yp = y + pl * g.P * g.Q;
        for (int64_t p = 0; p < g.P; p++)
            for (int64_t q = 0; q < g.Q; q++) {
                int64_t a = argmax(xp, &g, p, q);
                yp[p * g.Q + q] = a < 0 ? -INFINITY : xp[a];
            }
    }
    return SYN_OK;
}

/* dx[argmax of window (p, q)] += dy[p, q]; the argmax is found again from x
 * (the same scan as the forward), so nothing is stored between the passes. */
syn_status syn__cpu_max_pool2d_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    pool_geom g = geom(n);
    const float *x = syn__cin(n, 0), *dy = n->grad;
    const bool add = syn__grad_add(n, 0);
    if (is_2x2(&g)) {
#pragma omp parallel for if (par(&g)) schedule(static)
        for (int64_t pl = 0; pl < g.planes; pl++)
            max2x2_bwd_plane(x + pl * g.H * g.W, dy + pl * g.P * g.Q, dx + pl * g.H * g.W, g.W, g.H, g.P, g.Q, add);
        return SYN_OK;
    }
#pragma omp parallel for if (par(&g)) schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.H * g.W, *dyp = dy + pl * g.P * g.Q;
        float *dxp = dx + pl * g.H * g.W;
        if (!add) memset(dxp, 0, (size_t)(g.H * g.W) * sizeof(float)); /* a fresh gradient: scattered into */
        for (int64_t p = 0; p < g.P; p++)
            for (int64_t q = 0; q < g.Q; q++) {
                int64_t a = argmax(xp, &g, p, q);
                if (a >= 0) dxp[a] += dyp[p * g.Q + q];
            }
    }
    return SYN_OK;
}

/* ---- average pooling -------------------------------------------------------
 * y[p, q] = sum over the in-bounds part of the window / count, count = kh*kw
 * with count_include_pad (floor mode never lets a window pass the padding),
 * else the number of in-bounds elements. */

static float avg_count(const pool_geom *g, bool incl, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
    int64_t c = incl ? g->kh * g->kw : (h1 - h0) * (w1 - w0);
    return c > 0 ? (float)c : 1.0f;
}

syn_status syn__cpu_avg_pool2d_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    pool_geom g = geom(n);
    bool incl = n->i[SYN_A_INCL] != 0;
    const float *x = syn__cin(n, 0);
    float *y = n->value;
#pragma omp parallel for if (par(&g)) schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.H * g.W;
        float *yp = y + pl * g.P * g.Q;
        for (int64_t p = 0; p < g.P; p++)
            for (int64_t q = 0; q < g.Q; q++) {
                int64_t h0, h1, w0, w1;
                window(&g, p, q, &h0, &h1, &w0, &w1);
                float s = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) s += xp[h * g.W + w];
                yp[p * g.Q + q] = s / avg_count(&g, incl, h0, h1, w0, w1);
            }
    }
    return SYN_OK;
}

/* dx[h, w] += dy[p, q] / count for every window (p, q) that holds (h, w) */
syn_status syn__cpu_avg_pool2d_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    pool_geom g = geom(n);
    bool incl = n->i[SYN_A_INCL] != 0;
    const float *dy = n->grad;
#pragma omp parallel for if (par(&g)) schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *dyp = dy + pl * g.P * g.Q;
        float *dxp = dx + pl * g.H * g.W;
        for (int64_t p = 0; p < g.P; p++)
            for (int64_t q = 0; q < g.Q; q++) {
                int64_t h0, h1, w0, w1;
                window(&g, p, q, &h0, &h1, &w0, &w1);
                float d = dyp[p * g.Q + q] / avg_count(&g, incl, h0, h1, w0, w1);
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) dxp[h * g.W + w] += d;
            }
    }
    return SYN_OK;
}

/* ---- adaptive average pooling ----------------------------------------------
 * x: (N, C, H, W)  ->  y: (N, C, oh, ow); bin i of H covers
 * [floor(i H / oh), ceil((i + 1) H / oh)), never empty; bins may overlap. */

static int64_t bin_lo(int64_t i, int64_t in, int64_t out) { return i * in / out; }
static int64_t bin_hi(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

syn_status syn__cpu_adaptive_avg_pool2d_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    const syn_shape *xs = &n->in[0]->shape;
    int64_t planes = xs->dim[0] * xs->dim[1], H = xs->dim[2], W = xs->dim[3], P = n->shape.dim[2], Q = n->shape.dim[3];
    const float *x = syn__cin(n, 0);
    float *y = n->value;
#pragma omp parallel for if (planes > 1 && planes * H * W > SYN_CPU_PAR_MIN / 8) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * P * Q;
        for (int64_t p = 0; p < P; p++) {
            int64_t h0 = bin_lo(p, H, P), h1 = bin_hi(p, H, P);
            for (int64_t q = 0; q < Q; q++) {
                int64_t w0 = bin_lo(q, W, Q), w1 = bin_hi(q, W, Q);
                float s = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) s += xp[h * W + w];
                yp[p * Q + q] = s / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
    return SYN_OK;
}

/* dx[h, w] += dy[p, q] / |bin (p, q)| for every bin that holds (h, w) */
syn_status syn__cpu_adaptive_avg_pool2d_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    const syn_shape *xs = &n->in[0]->shape;
    int64_t planes = xs->dim[0] * xs->dim[1], H = xs->dim[2], W = xs->dim[3], P = n->shape.dim[2], Q = n->shape.dim[3];
    const float *dy = n->grad;
#pragma omp parallel for if (planes > 1 && planes * H * W > SYN_CPU_PAR_MIN / 8) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *dyp = dy + pl * P * Q;
        float *dxp = dx + pl * H * W;
        for (int64_t p = 0; p < P; p++) {
            int64_t h0 = bin_lo(p, H, P), h1 = bin_hi(p, H, P);
            for (int64_t q = 0; q < Q; q++) {
                int64_t w0 = bin_lo(q, W, Q), w1 = bin_hi(q, W, Q);
                float d = dyp[p * Q + q] / (float)((h1 - h0) * (w1 - w0));
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) dxp[h * W + w] += d;
            }
        }
    }
    return SYN_OK;
}
