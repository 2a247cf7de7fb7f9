/* Reductions on the CPU: sum and mean over a set of axes, softmax and
 * log-softmax along one axis. A tensor is seen as (outer, C, inner) around the
 * softmax axis; reductions map each input element to its output element. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include "cpu.h"
#include "vmath.h"

/* Strides into the reduced output for each input dim (0 on reduced axes). */
static void reduce_strides(const syn_node *n, int64_t *ostride) {
    const syn_shape *x = &n->in[0]->shape;
    unsigned axes = (unsigned)n->i[0];
    int64_t st = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (axes & (1u << d)) ostride[d] = 0;
        else {
            ostride[d] = st;
            st *= x->dim[d];
        }
    }
}

static int64_t out_index(const syn_shape *x, const int64_t *ostride, int64_t i) {
    int64_t o = 0;
    for (int d = x->ndim - 1; d >= 0; d--) {
        o += (i % x->dim[d]) * ostride[d];
        i /= x->dim[d];
    }
    return o;
}

/* The reduced axes as one block: x seen as (outer, red, inner) with the
 * reduced axes exactly the middle run of dims. false if they are not
 * contiguous (or nothing is reduced). */
static bool reduce_block(const syn_node *n, int64_t *outer, int64_t *red, int64_t *inner) {
    const syn_shape *x = &n->in[0]->shape;
    unsigned axes = (unsigned)n->i[0];
    int first = -1, last = -1;
    for (int d = 0; d < x->ndim; d++)
        if (axes & (1u << d)) {
            if (first < 0) first = d;
            else if (last != d - 1) return false;
            last = d;
        }
    if (first < 0) return false;
    *outer = *red = *inner = 1;
    for (int d = 0; d < x->ndim; d++) *(d < first ? outer : d <= last ? red : inner) *= x->dim[d];
    return true;
}

/* Fixed chunks, each summed in double, then the chunks in order: the result
 * does not depend on the thread count. */
#define RED_CHUNK 65536

/* sum x[0..n) in double, fast: 16 double lanes, then the lanes and the tail
 * in a fixed order. A single double accumulator is bound by the add latency
 * (16M floats on 2 cores: 20 GB/s; 16 lanes: 29 GB/s in a micro-benchmark).
 * Every addition stays in double, as before: only the order changed. */
SYN_CPU_CLONES static double sum_f32(const float *x, int64_t n) {
    double acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    double a = 0;
    for (; i < n; i++) a += x[i];
    for (int j = 0; j < 16; j++) a += acc[j];
    return a;
}

static syn_status reduce_fwd(syn_node *n, bool mean) {
    const syn_shape *xs = &n->in[0]->shape;
    int64_t ostride[SYN_MAX_DIMS], nx = syn_shape_numel(xs), ny = syn__numel(n);
    double scale = mean ? (double)ny / (double)(nx ? nx : 1) : 1.0;
    const float *x = syn__cin(n, 0);
    float *y = n->value;
    int64_t outer, red, inner;
    const bool block = reduce_block(n, &outer, &red, &inner);
    if (block && inner == 1) {
        if (outer == 1) { /* everything: chunked */
            int64_t nc = (red + RED_CHUNK - 1) / RED_CHUNK;
            double *part = malloc((size_t)(nc ? nc : 1) * sizeof *part);
            if (!part) return syn__error(SYN_ERR_OOM, "%s: %lld partial sums", syn__op_name[n->op], (long long)nc);
#pragma omp parallel for if (nc > 1) schedule(static)
            for (int64_t c = 0; c < nc; c++) {
                int64_t end = (c + 1) * RED_CHUNK < red ? (c + 1) * RED_CHUNK : red;
                part[c] = sum_f32(x + c * RED_CHUNK, end - c * RED_CHUNK);
            }
            double t = 0;
            for (int64_t c = 0; c < nc; c++) t += part[c];
            free(part);
            y[0] = (float)(t * scale);
            return SYN_OK;
        }
        /* trailing axes: one contiguous row per output */
#pragma omp parallel for if (nx > SYN_CPU_PAR_MIN) schedule(static)
        for (int64_t o = 0; o < outer; o++) y[o] = (float)(sum_f32(x + o * red, red) * scale);
        return SYN_OK;
    }
    if (block) { /* y[o, j] = sum_r x[o, r, j], columns in chunks */
        enum { JC = 256 };
        const int64_t nj = (inner + JC - 1) / JC;
#pragma omp parallel for collapse(2) if (nx > SYN_CPU_PAR_MIN) schedule(static)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t c = 0; c < nj; c++) {
                const int64_t j0 = c * JC, w = inner - j0 < JC ? inner - j0 : JC;
                double acc[JC] = {0};
                for (int64_t r = 0; r < red; r++) {
                    const float *xr = x + (o * red + r) * inner + j0;
                    for (int64_t j = 0; j < w; j++) acc[j] += xr[j];
                }
                for (int64_t j = 0; j < w; j++) y[o * inner + j0 + j] = (float)(acc[j] * scale);
            }
        return SYN_OK;
    }
    reduce_strides(n, ostride);
    double *acc = calloc((size_t)ny, sizeof *acc);
    if (!acc) return syn__error(SYN_ERR_OOM, "%s: %lld accumulators", syn__op_name[n->op], (long long)ny);
    /* row by row along the last dim: one index computation per row */
    const int64_t L = xs->ndim ? xs->dim[xs->ndim - 1] : 1, rows = L ? nx / L : 0;
    const bool along = xs->ndim && ostride[xs->ndim - 1];
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * L;
        double *a = acc + out_index(xs, ostride, r * L);
        if (along)
            for (int64_t j = 0; j < L; j++) a[j] += xr[j];
        else
            a[0] += sum_f32(xr, L);
    }
    for (int64_t o = 0; o < ny; o++) y[o] = (float)(acc[o] * scale);
    free(acc);
    return SYN_OK;
}

/* dx[i] += dy[out(i)] (* count / numel for the mean) */
static syn_status reduce_bwd(syn_node *n, bool mean) {
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    const syn_shape *xs = &n->in[0]->shape;
    int64_t ostride[SYN_MAX_DIMS], nx = syn_shape_numel(xs), ny = syn__numel(n);
    reduce_strides(n, ostride);
    float scale = mean ? (float)((double)ny / (double)(nx ? nx : 1)) : 1.0f;
    const float *dy = n->grad;
    if (ny == 1) { /* everything: one value */
        const float v = dy[0] * scale;
        SYN_GRAD_LOOPS(syn__grad_add(n, 0), _Pragma("omp parallel for if (nx > SYN_CPU_PAR_MIN) schedule(static)")
            for (int64_t i = 0; i < nx; i++) SYN_GRAD_PUT(dx[i], add_, v));
        return SYN_OK;
    }
    int64_t outer, red, inner;
    if (reduce_block(n, &outer, &red, &inner)) { /* (outer, red, inner) -> (outer, inner): no index math */
        SYN_GRAD_LOOPS(syn__grad_add(n, 0),
                       _Pragma("omp parallel for collapse(2) if (nx > SYN_CPU_PAR_MIN) schedule(static)")
            for (int64_t o = 0; o < outer; o++)
                for (int64_t r = 0; r < red; r++) {
                    float *d = dx + (o * red + r) * inner;
                    const float *g = dy + o * inner;
                    for (int64_t j = 0; j < inner; j++) SYN_GRAD_PUT(d[j], add_, g[j] * scale);
                });
        return SYN_OK;
    }
    /* else row by row along the last dim: one index computation per row, then
     * either a row of dy (last dim kept) or one value of it (reduced) */
    const int64_t L = xs->ndim ? xs->dim[xs->ndim - 1] : 1, rows = L ? nx / L : 0;
    const bool along = xs->ndim && ostride[xs->ndim - 1];
    SYN_GRAD_LOOPS(syn__grad_add(n, 0), _Pragma("omp parallel for if (nx > SYN_CPU_PAR_MIN) schedule(static)")
        for (int64_t r = 0; r < rows; r++) {
            float *d = dx + r * L;
            const float *g = dy + out_index(xs, ostride, r * L);
            if (along)
                for (int64_t j = 0; j < L; j++) SYN_GRAD_PUT(d[j], add_, g[j] * scale);
            else {
                const float v = g[0] * scale;
                for (int64_t j = 0; j < L; j++) SYN_GRAD_PUT(d[j], add_, v);
            }
        });
    return SYN_OK;
}

syn_status syn__cpu_sum_fwd(syn_backend *be, syn_node *n) { (void)be; return reduce_fwd(n, false); }
syn_status syn__cpu_sum_bwd(syn_backend *be, syn_node *n) { (void)be; return reduce_bwd(n, false); }
syn_status syn__cpu_mean_fwd(syn_backend *be, syn_node *n) { (void)be; return reduce_fwd(n, true); }
syn_status syn__cpu_mean_bwd(syn_backend *be, syn_node *n) { (void)be; return reduce_bwd(n, true); }

/* (outer, C, inner) around axis n->i[0] */
static void axis_dims(const syn_node *n, int64_t *outer, int64_t *C, int64_t *inner) {
    const syn_shape *s = &n->shape;
    int axis = (int)n->i[0];
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= s->dim[d];
    for (int d = axis + 1; d < s->ndim; d++) *inner *= s->dim[d];
    *C = s->dim[axis];
}

/* y = exp(x - max) / sum exp(x - max);  log: y = x - max - log sum exp(x - max) */
static syn_status softmax_fwd(syn_node *n, bool logsm) {
    int64_t outer, C, inner;
    axis_dims(n, &outer, &C, &inner);
    const float *x = syn__cin(n, 0);
    float *y = n->value;
#pragma omp parallel for collapse(2) if (outer * C * inner > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *px = x + o * C * inner + j;
            float *py = y + o * C * inner + j;
            float mx = -INFINITY;
            for (int64_t c = 0; c < C; c++) mx = fmaxf(mx, px[c * inner]);
            double s = 0;
            for (int64_t c = 0; c < C; c++) s += exp((double)(px[c * inner] - mx));
            if (logsm) { /* (x - max) first: max + log(s) rounded near |x| ~ 1000 would lose 3e-5 */
                float ls = (float)log(s);
                for (int64_t c = 0; c < C; c++) py[c * inner] = (px[c * inner] - mx) - ls;
            } else {
                float inv = (float)(1.0 / s);
                for (int64_t c = 0; c < C; c++) py[c * inner] = syn__vexpf(px[c * inner] - mx) * inv;
            }
        }
    return SYN_OK;
}

/* softmax: dx += y (dy - sum(dy y));  log-softmax: dx += dy - exp(y) sum(dy) */
static syn_status softmax_bwd(syn_node *n, bool logsm) {
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    int64_t outer, C, inner;
    axis_dims(n, &outer, &C, &inner);
    const float *y = n->value, *dy = n->grad;
    const bool add = syn__grad_add(n, 0);
#pragma omp parallel for collapse(2) if (outer * C * inner > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t base = o * C * inner + j;
            double s = 0;
            for (int64_t c = 0; c < C; c++) s += logsm ? dy[base + c * inner] : (double)dy[base + c * inner] * y[base + c * inner];
            for (int64_t c = 0; c < C; c++) {
                int64_t k = base + c * inner;
                SYN_GRAD_PUT(dx[k], add, logsm ? dy[k] - syn__vexpf(y[k]) * (float)s : y[k] * (dy[k] - (float)s));
            }
        }
    return SYN_OK;
}

syn_status syn__cpu_softmax_fwd(syn_backend *be, syn_node *n) { (void)be; return softmax_fwd(n, false); }
syn_status syn__cpu_softmax_bwd(syn_backend *be, syn_node *n) { (void)be; return softmax_bwd(n, false); }
syn_status syn__cpu_log_softmax_fwd(syn_backend *be, syn_node *n) { (void)be; return softmax_fwd(n, true); }
syn_status syn__cpu_log_softmax_bwd(syn_backend *be, syn_node *n) { (void)be; return softmax_bwd(n, true); }
