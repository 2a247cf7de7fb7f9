/* Shape ops on the CPU: reshape (a view of its input's buffer as planned by
 * memplan.c, so nothing to copy; a copy where it is not one), transpose (any
 * permutation) and concat. Backward rules route dy back. */
#include <string.h>
#include "cpu.h"

/* y = x with another shape (any dtype) */
syn_status syn__cpu_reshape_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    if (n->value != n->in[0]->value)
        memcpy(n->value, n->in[0]->value, (size_t)syn__numel(n) * syn_dtype_size(n->dtype));
    return SYN_OK;
}

/* dx += dy (a fresh dx: a copy) */
syn_status syn__cpu_reshape_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    const float *dy = n->grad;
    int64_t len = syn__numel(n);
    if (!syn__grad_add(n, 0)) {
        if (dx != dy) memcpy(dx, dy, (size_t)len * sizeof(float));
        return SYN_OK;
    }
#pragma omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < len; i++) dx[i] += dy[i];
    return SYN_OK;
}

/* For output element i, the input offset: y.dim[d] = x.dim[perm[d]]. */
static void perm_strides(const syn_node *n, int64_t *xs_for_y) {
    const syn_shape *x = &n->in[0]->shape;
    int64_t xstride[SYN_MAX_DIMS], st = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        xstride[d] = st;
        st *= x->dim[d];
    }
    for (int d = 0; d < x->ndim; d++) xs_for_y[d] = xstride[n->i[d]];
}

static int64_t src_offset(const syn_shape *y, const int64_t *s, int64_t i) {
    int64_t o = 0;
    for (int d = y->ndim - 1; d >= 0; d--) {
        o += (i % y->dim[d]) * s[d];
        i /= y->dim[d];
    }
    return o;
}

/* y[i0..ik] = x[i_perm^-1 ...] */
syn_status syn__cpu_transpose_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t s[SYN_MAX_DIMS], len = syn__numel(n);
    perm_strides(n, s);
    size_t es = syn_dtype_size(n->dtype);
    const char *x = n->in[0]->value;
    char *y = n->value;
    if (es == 4) {
#pragma omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < len; i++) ((float *)y)[i] = ((const float *)x)[src_offset(&n->shape, s, i)];
    } else {
        for (int64_t i = 0; i < len; i++) memcpy(y + i * es, x + src_offset(&n->shape, s, i) * es, es);
    }
    return SYN_OK;
}

/* dx[src(i)] += dy[i] (a permutation: no two i share a source) */
syn_status syn__cpu_transpose_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    int64_t s[SYN_MAX_DIMS], len = syn__numel(n);
    perm_strides(n, s);
    const float *dy = n->grad;
#pragma omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < len; i++) dx[src_offset(&n->shape, s, i)] += dy[i];
    return SYN_OK;
}

/* (outer, size_k along axis * inner) blocks, one per input */
static void concat_dims(const syn_node *n, int64_t *outer, int64_t *inner) {
    int axis = (int)n->i[0];
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= n->shape.dim[d];
    for (int d = axis + 1; d < n->shape.ndim; d++) *inner *= n->shape.dim[d];
}

/* y = [x0, x1, ...] along axis */
syn_status syn__cpu_concat_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t outer, inner, axis = n->i[0];
    concat_dims(n, &outer, &inner);
    int64_t row = n->shape.dim[axis] * inner, col = 0;
    float *y = n->value;
    for (int k = 0; k < n->n_in; k++) {
        int64_t w = n->in[k]->shape.dim[axis] * inner;
        const float *x = syn__cin(n, k);
        for (int64_t o = 0; o < outer; o++) memcpy(y + o * row + col, x + o * w, (size_t)w * sizeof(float));
        col += w;
    }
    return SYN_OK;
}

/* dx_k += the k-th block of dy */
syn_status syn__cpu_concat_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t outer, inner, axis = n->i[0];
    concat_dims(n, &outer, &inner);
    int64_t row = n->shape.dim[axis] * inner, col = 0;
    const float *dy = n->grad;
    for (int k = 0; k < n->n_in; k++) {
        int64_t w = n->in[k]->shape.dim[axis] * inner;
        float *dx = syn__cgrad(n, k);
        if (dx)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t j = 0; j < w; j++) dx[o * w + j] += dy[o * row + col + j];
        col += w;
    }
    return SYN_OK;
}
