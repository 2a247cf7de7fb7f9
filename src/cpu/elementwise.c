/* Elementwise ops on the CPU: broadcasting binary ops, scalar ops, dropout,
 * detach. Broadcasting walks the output row by row (the last dim contiguous)
 * with per-operand strides that are 0 along broadcast dims. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE__
#include <immintrin.h>
#endif
#include "cpu.h"
#include "../core/rng.h"

/* Output shape padded to nd dims, with element strides of a and b (0 where broadcast). */
typedef struct {
    int nd;
    int64_t dim[SYN_MAX_DIMS];
    int64_t sa[SYN_MAX_DIMS], sb[SYN_MAX_DIMS];
} bcast;

static void bcast_make(const syn_node *n, bcast *bc) {
    const syn_shape *y = &n->shape;
    bc->nd = y->ndim;
    for (int d = 0; d < y->ndim; d++) bc->dim[d] = y->dim[d];
    if (bc->nd == 0) { /* scalar output: one element */
        bc->nd = 1;
        bc->dim[0] = 1;
        bc->sa[0] = bc->sb[0] = 0;
        return;
    }
    syn__bcast_strides(&n->in[0]->shape, bc->nd, bc->dim, bc->sa);
    syn__bcast_strides(&n->in[1]->shape, bc->nd, bc->dim, bc->sb);
}

/* Offsets of a and b for output row r (all dims but the last). */
static void row_offsets(const bcast *bc, int64_t r, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int d = bc->nd - 2; d >= 0; d--) {
        int64_t i = r % bc->dim[d];
        r /= bc->dim[d];
        a += i * bc->sa[d];
        b += i * bc->sb[d];
    }
    *oa = a;
    *ob = b;
}

/* Both operands of the output's shape: one flat loop (threads split the
 * elements, not the rows: a 1-D tensor is one row). */
static bool same_shapes(const syn_node *n) {
    return syn_shape_equal(&n->in[0]->shape, &n->shape) && syn_shape_equal(&n->in[1]->shape, &n->shape);
}

/* Outputs at least this large (32 MiB) bypass the caches: the write would
 * evict everything anyway, and a non-temporal store saves reading each line
 * before writing it (c = a + b on 16M floats, 2 threads: 6.4 -> 5.1 ms). */
#define STREAM_MIN_FLOATS ((int64_t)8 << 20)

#ifdef __SSE__
#define STREAM_LOOP(VOP)                                                        \
    _Pragma("omp parallel for schedule(static)")                               \
    for (int64_t i = head; i < end; i += 4)                                    \
        _mm_stream_ps(y + i, VOP(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));

/* y = a op b with non-temporal stores (the same IEEE results as the scalar
 * loop): a scalar head up to y's 16-byte boundary, 4 floats per store, a
 * scalar tail. */
static void binary_stream(syn_op op, const float *a, const float *b, float *y, int64_t len) {
    int64_t head = (int64_t)(((16 - ((uintptr_t)y & 15)) & 15) / sizeof(float)), end;
    if (head > len) head = len;
    end = head + ((len - head) & ~(int64_t)3);
#define SCALAR(i) (op == SYN_OP_ADD ? a[i] + b[i] : op == SYN_OP_SUB ? a[i] - b[i] : op == SYN_OP_MUL ? a[i] * b[i] : a[i] / b[i])
    for (int64_t i = 0; i < head; i++) y[i] = SCALAR(i);
    for (int64_t i = end; i < len; i++) y[i] = SCALAR(i);
#undef SCALAR
    switch (op) {
    case SYN_OP_ADD: STREAM_LOOP(_mm_add_ps) break;
    case SYN_OP_SUB: STREAM_LOOP(_mm_sub_ps) break;
    case SYN_OP_MUL: STREAM_LOOP(_mm_mul_ps) break;
    default: STREAM_LOOP(_mm_div_ps) break;
    }
    _mm_sfence(); /* the streamed lines are visible before anyone reads y */
}
#endif

static syn_status binary_fwd(syn_node *n) {
    const float *a = syn__cin(n, 0), *b = syn__cin(n, 1);
    float *y = n->value;
    if (same_shapes(n)) {
        int64_t len = syn__numel(n);
#ifdef __SSE__
        if (len >= STREAM_MIN_FLOATS && ((uintptr_t)y & 3) == 0) {
            binary_stream(n->op, a, b, y, len);
            return SYN_OK;
        }
#endif
        switch (n->op) {
        case SYN_OP_ADD:
#pragma omp parallel for simd if (len > SYN_CPU_PAR_MIN) schedule(static)
            for (int64_t i = 0; i < len; i++) y[i] = a[i] + b[i];
            break;
        case SYN_OP_SUB:
#pragma omp parallel for simd if (len > SYN_CPU_PAR_MIN) schedule(static)
            for (int64_t i = 0; i < len; i++) y[i] = a[i] - b[i];
            break;
        case SYN_OP_MUL:
#pragma omp parallel for simd if (len > SYN_CPU_PAR_MIN) schedule(static)
            for (int64_t i = 0; i < len; i++) y[i] = a[i] * b[i];
            break;
        default:
#pragma omp parallel for simd if (len > SYN_CPU_PAR_MIN) schedule(static)
            for (int64_t i = 0; i < len; i++) y[i] = a[i] / b[i];
            break;
        }
        return SYN_OK;
    }
    bcast bc;
    bcast_make(n, &bc);
    int64_t cols = bc.dim[bc.nd - 1], rows = syn__numel(n) / (cols ? cols : 1);
    int64_t ia = bc.sa[bc.nd - 1], ib = bc.sb[bc.nd - 1];
    syn_op op = n->op;
#pragma omp parallel for if (rows * cols > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        row_offsets(&bc, r, &oa, &ob);
        const float *pa = a + oa, *pb = b + ob;
        float *py = y + r * cols;
        switch (op) {
        case SYN_OP_ADD: for (int64_t c = 0; c < cols; c++) py[c] = pa[c * ia] + pb[c * ib]; break;
        case SYN_OP_SUB: for (int64_t c = 0; c < cols; c++) py[c] = pa[c * ia] - pb[c * ib]; break;
        case SYN_OP_MUL: for (int64_t c = 0; c < cols; c++) py[c] = pa[c * ia] * pb[c * ib]; break;
        default:         for (int64_t c = 0; c < cols; c++) py[c] = pa[c * ia] / pb[c * ib]; break;
        }
    }
    return SYN_OK;
}

/* d(operand k) += dy * d op / d operand k, summed over broadcast dims. The
 * scatter races when operand k is broadcast, so that case runs serially. */
/* d(a op b)/d(operand k) times g; sub's second operand -g, exactly as g
 * subtracted (x - g == x + -g in IEEE arithmetic) */
static inline float binary_deriv(syn_op op, int k, float g, float av, float bv) {
    switch (op) {
    case SYN_OP_ADD: return g;
    case SYN_OP_SUB: return k == 0 ? g : -g;
    case SYN_OP_MUL: return k == 0 ? g * bv : g * av;
    default: return k == 0 ? g / bv : -g * av / (bv * bv); /* div */
    }
}

static void binary_bwd_one(syn_node *n, const bcast *bc, int k) {
    float *dx = syn__cgrad(n, k);
    if (!dx) return;
    /* a fresh gradient: the broadcast sums below add into it */
    if (!syn__grad_add(n, k)) memset(dx, 0, (size_t)syn_shape_numel(&n->in[k]->shape) * sizeof(float));
    const float *a = syn__cin(n, 0), *b = syn__cin(n, 1), *dy = n->grad;
    int64_t cols = bc->dim[bc->nd - 1], rows = syn__numel(n) / (cols ? cols : 1);
    int64_t ia = bc->sa[bc->nd - 1], ib = bc->sb[bc->nd - 1];
    bool full = syn_shape_numel(&n->in[k]->shape) == syn__numel(n);
    syn_op op = n->op;
#pragma omp parallel for if (full && rows * cols > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        row_offsets(bc, r, &oa, &ob);
        const float *pa = a + oa, *pb = b + ob, *pdy = dy + r * cols;
        int64_t step = k == 0 ? ia : ib;
        float *pd = dx + (k == 0 ? oa : ob);
        for (int64_t c = 0; c < cols; c++) {
            pd[c * step] += binary_deriv(op, k, pdy[c], pa[c * ia], pb[c * ib]);
        }
    }
}

static syn_status binary_bwd(syn_node *n) {
    if (same_shapes(n)) {
        const float *a = syn__cin(n, 0), *b = syn__cin(n, 1), *dy = n->grad;
        int64_t len = syn__numel(n);
        syn_op op = n->op;
        for (int k = 0; k < 2; k++) { /* one operand at a time: a fresh gradient's loop never reads it */
            float *d = syn__cgrad(n, k);
            if (!d) continue;
            SYN_GRAD_LOOPS(syn__grad_add(n, k), _Pragma("omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)")
                for (int64_t i = 0; i < len; i++) SYN_GRAD_PUT(d[i], add_, binary_deriv(op, k, dy[i], a[i], b[i])));
        }
        return SYN_OK;
    }
    bcast bc;
    bcast_make(n, &bc);
    binary_bwd_one(n, &bc, 0);
    binary_bwd_one(n, &bc, 1);
    return SYN_OK;
}

syn_status syn__cpu_add_fwd(syn_backend *be, syn_node *n) { (void)be; return binary_fwd(n); }
syn_status syn__cpu_sub_fwd(syn_backend *be, syn_node *n) { (void)be; return binary_fwd(n); }
syn_status syn__cpu_mul_fwd(syn_backend *be, syn_node *n) { (void)be; return binary_fwd(n); }
syn_status syn__cpu_div_fwd(syn_backend *be, syn_node *n) { (void)be; return binary_fwd(n); }
syn_status syn__cpu_add_bwd(syn_backend *be, syn_node *n) { (void)be; return binary_bwd(n); }
syn_status syn__cpu_sub_bwd(syn_backend *be, syn_node *n) { (void)be; return binary_bwd(n); }
syn_status syn__cpu_mul_bwd(syn_backend *be, syn_node *n) { (void)be; return binary_bwd(n); }
syn_status syn__cpu_div_bwd(syn_backend *be, syn_node *n) { (void)be; return binary_bwd(n); }

/* ---- scalar ops: y = x + c, y = x * c, y = x ^ c ---- */

#define MAP(expr)                                                          \
    do {                                                                   \
        const float *x = syn__cin(n, 0);                                   \
        float *y = n->value;                                               \
        int64_t len = syn__numel(n);                                       \
        float c = n->f[0];                                                 \
        (void)c;                                                           \
        _Pragma("omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)") \
        for (int64_t i = 0; i < len; i++) y[i] = (expr);                   \
    } while (0)

/* dx += dy * (expr) */
#define MAP_BWD(expr)                                                      \
    do {                                                                   \
        float *dx = syn__cgrad(n, 0);                                      \
        if (!dx) break;                                                    \
        const float *x = syn__cin(n, 0), *dy = n->grad;                    \
        int64_t len = syn__numel(n);                                       \
        float c = n->f[0];                                                 \
        (void)c; (void)x;                                                  \
        SYN_GRAD_LOOPS(syn__grad_add(n, 0),                                \
            _Pragma("omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)") \
            for (int64_t i = 0; i < len; i++) SYN_GRAD_PUT(dx[i], add_, dy[i] * (expr))); \
    } while (0)

syn_status syn__cpu_add_scalar_fwd(syn_backend *be, syn_node *n) { (void)be; MAP(x[i] + c); return SYN_OK; }
syn_status syn__cpu_add_scalar_bwd(syn_backend *be, syn_node *n) { (void)be; MAP_BWD(1.0f); return SYN_OK; }
syn_status syn__cpu_mul_scalar_fwd(syn_backend *be, syn_node *n) { (void)be; MAP(x[i] * c); return SYN_OK; }
syn_status syn__cpu_mul_scalar_bwd(syn_backend *be, syn_node *n) { (void)be; MAP_BWD(c); return SYN_OK; }
syn_status syn__cpu_pow_scalar_fwd(syn_backend *be, syn_node *n) { (void)be; MAP(powf(x[i], c)); return SYN_OK; }
/* d/dx x^c = c x^(c-1) */
syn_status syn__cpu_pow_scalar_bwd(syn_backend *be, syn_node *n) { (void)be; MAP_BWD(c * powf(x[i], c - 1.0f)); return SYN_OK; }
syn_status syn__cpu_detach_fwd(syn_backend *be, syn_node *n) { (void)be; MAP(x[i]); return SYN_OK; }

/* ---- dropout: y = x * keep / (1 - p), keep = u >= p, u from Philox ---- */

syn_status syn__cpu_dropout_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    float p = n->f[0];
    n->i[1] = n->g->training && p > 0.0f; /* the backward pass uses the same decision */
    if (!n->i[1]) {
        MAP(x[i]);
        return SYN_OK;
    }
    float scale = 1.0f / (1.0f - p);
    uint64_t seed = n->rng_seed, off = n->rng_offset;
    MAP(syn__philox_uniform(seed, SYN_STREAM_DROPOUT, off + (uint64_t)i) >= p ? x[i] * scale : 0.0f);
    return SYN_OK;
}

syn_status syn__cpu_dropout_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float p = n->f[0];
    if (!n->i[1]) {
        MAP_BWD(1.0f);
        return SYN_OK;
    }
    float scale = 1.0f / (1.0f - p);
    uint64_t seed = n->rng_seed, off = n->rng_offset;
    MAP_BWD(syn__philox_uniform(seed, SYN_STREAM_DROPOUT, off + (uint64_t)i) >= p ? scale : 0.0f);
    return SYN_OK;
}

/* ---- dropout2d: whole channels ---------------------------------------------
 * x: (N, C, S...)  ->  y: like x;  y[b, c, :] = x[b, c, :] * keep[b, c] / (1 - p),
 * keep[b, c] = u >= p with ONE uniform per channel: u = Philox at offset + b C + c */

/* 1/(1-p) for a kept channel, 0 for a dropped one, 1 when not training. */
static float channel_scale(const syn_node *n, int64_t bc) {
    float p = n->f[0];
    if (!n->i[1]) return 1.0f;
    return syn__philox_uniform(n->rng_seed, SYN_STREAM_DROPOUT, n->rng_offset + (uint64_t)bc) >= p ? 1.0f / (1.0f - p)
                                                                                                   : 0.0f;
}

static void channel_dims(const syn_node *n, int64_t *channels, int64_t *S) {
    const syn_shape *x = &n->shape;
    *channels = x->dim[0] * x->dim[1];
    *S = 1;
    for (int d = 2; d < x->ndim; d++) *S *= x->dim[d];
}

syn_status syn__cpu_dropout2d_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    n->i[1] = n->g->training && n->f[0] > 0.0f; /* the backward pass uses the same decision */
    int64_t channels, S;
    channel_dims(n, &channels, &S);
    const float *x = syn__cin(n, 0);
    float *y = n->value;
#pragma omp parallel for if (channels > 1 && channels * S > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t bc = 0; bc < channels; bc++) {
        float s = channel_scale(n, bc);
        const float *xp = x + bc * S;
        float *yp = y + bc * S;
        if (s == 0.0f)
            memset(yp, 0, (size_t)S * sizeof *yp);
        else
            for (int64_t i = 0; i < S; i++) yp[i] = xp[i] * s;
    }
    return SYN_OK;
}

/* dx[b, c, :] += dy[b, c, :] * keep[b, c] / (1 - p) (the forward's mask) */
syn_status syn__cpu_dropout2d_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    int64_t channels, S;
    channel_dims(n, &channels, &S);
    const float *dy = n->grad;
#pragma omp parallel for if (channels > 1 && channels * S > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t bc = 0; bc < channels; bc++) {
        float s = channel_scale(n, bc);
        if (s == 0.0f) continue;
        const float *dyp = dy + bc * S;
        float *dxp = dx + bc * S;
        for (int64_t i = 0; i < S; i++) dxp[i] += dyp[i] * s;
    }
    return SYN_OK;
}
