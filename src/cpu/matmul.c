/* Matrix products on the CPU through OpenBLAS (cblas_sgemm, row-major). */
#include <cblas.h>
#include <string.h>
#include "cpu.h"

/* C (M,N) = op(A) op(B) + beta C, all row-major and contiguous (cpu.h). */
void syn__gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float beta,
               float *C) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
                (blasint)N, (blasint)K, 1.0f, A, ta ? (blasint)M : (blasint)K, B, tb ? (blasint)K : (blasint)N,
                beta, C, (blasint)N);
}

/* Batch count, M, K, N of a (..., M, K) @ (..., K, N) node. */
static void mm_dims(const syn_node *n, int64_t *batch, int64_t *M, int64_t *K, int64_t *N, bool *shared_b) {
    const syn_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
    *M = a->dim[a->ndim - 2];
    *K = a->dim[a->ndim - 1];
    *N = b->dim[b->ndim - 1];
    int64_t mk = (*M) * (*K);
    *batch = mk > 0 ? syn_shape_numel(a) / mk : 0;
    *shared_b = b->ndim == 2;
}

/* a: (..., M, K)  b: (K, N) or (..., K, N)  ->  y: (..., M, N) */
syn_status syn__cpu_matmul_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t B, M, K, N;
    bool shared;
    mm_dims(n, &B, &M, &K, &N, &shared);
    const float *a = syn__cin(n, 0), *b = syn__cin(n, 1);
    float *y = n->value;
    if (shared) {
        syn__gemm(false, false, B * M, N, K, a, b, 0.0f, y);
        return SYN_OK;
    }
    for (int64_t i = 0; i < B; i++)
        syn__gemm(false, false, M, N, K, a + i * M * K, b + i * K * N, 0.0f, y + i * M * N);
    return SYN_OK;
}

/* da += dy b^T;  db += a^T dy (summed over the batch when b is shared) */
syn_status syn__cpu_matmul_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t B, M, K, N;
    bool shared;
    mm_dims(n, &B, &M, &K, &N, &shared);
    const float *a = syn__cin(n, 0), *b = syn__cin(n, 1), *dy = n->grad;
    float *da = syn__cgrad(n, 0), *db = syn__cgrad(n, 1);
    /* beta 1 adds to a gradient, 0 writes a fresh one (BLAS does not read C then) */
    const float beta_a = syn__grad_add(n, 0) ? 1.0f : 0.0f, beta_b = syn__grad_add(n, 1) ? 1.0f : 0.0f;
    if (shared) {
        if (da) syn__gemm(false, true, B * M, K, N, dy, b, beta_a, da);
        if (db) syn__gemm(true, false, K, N, B * M, a, dy, beta_b, db);
        return SYN_OK;
    }
    for (int64_t i = 0; i < B; i++) {
        if (da) syn__gemm(false, true, M, K, N, dy + i * M * N, b + i * K * N, beta_a, da + i * M * K);
        if (db) syn__gemm(true, false, K, N, M, a + i * M * K, dy + i * M * N, beta_b, db + i * K * N);
    }
    return SYN_OK;
}

/* x: (R, in)  w: (out, in)  b: (out)  ->  y = x w^T + b: (R, out) */
syn_status syn__cpu_linear_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    const syn_shape *ws = &n->in[1]->shape;
    int64_t out = ws->dim[0], in = ws->dim[1], R = syn__numel(n) / (out ? out : 1);
    const float *x = syn__cin(n, 0), *w = syn__cin(n, 1);
    float *y = n->value;
    if (n->n_in == 3) {
        const float *b = syn__cin(n, 2);
#pragma omp parallel for if (R * out > SYN_CPU_PAR_MIN) schedule(static)
        for (int64_t r = 0; r < R; r++) memcpy(y + r * out, b, (size_t)out * sizeof(float));
    }
    syn__gemm(false, true, R, out, in, x, w, n->n_in == 3 ? 1.0f : 0.0f, y);
    return SYN_OK;
}

/* dy: (R, out)  ->  db += sum_r dy[r, :]
 * Walks dy row by row (contiguous) into double accumulators for a block of
 * columns per thread: the same additions in the same order as a column-wise
 * loop, so bit-identical, but without a stride of `out` floats per element. */
static void bias_grad(const float *dy, int64_t R, int64_t out, float *db, bool add) {
    enum { CB = 256 };
#pragma omp parallel for if (R * out > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t c0 = 0; c0 < out; c0 += CB) {
        int64_t w = out - c0 < CB ? out - c0 : CB;
        double acc[CB];
        for (int64_t c = 0; c < w; c++) acc[c] = 0.0;
        for (int64_t r = 0; r < R; r++) {
            const float *row = dy + r * out + c0;
#pragma omp simd
            for (int64_t c = 0; c < w; c++) acc[c] += row[c];
        }
        for (int64_t c = 0; c < w; c++) SYN_GRAD_PUT(db[c0 + c], add, (float)acc[c]);
    }
}

/* dx += dy w;  dw += dy^T x;  db += sum_r dy */
syn_status syn__cpu_linear_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    const syn_shape *ws = &n->in[1]->shape;
    int64_t out = ws->dim[0], in = ws->dim[1], R = syn__numel(n) / (out ? out : 1);
    const float *x = syn__cin(n, 0), *w = syn__cin(n, 1), *dy = n->grad;
    float *dx = syn__cgrad(n, 0), *dw = syn__cgrad(n, 1), *db = n->n_in == 3 ? syn__cgrad(n, 2) : NULL;
    if (dx) syn__gemm(false, false, R, in, out, dy, w, syn__grad_add(n, 0) ? 1.0f : 0.0f, dx);
    if (dw) syn__gemm(true, false, out, in, R, dy, x, syn__grad_add(n, 1) ? 1.0f : 0.0f, dw);
    if (db) bias_grad(dy, R, out, db, syn__grad_add(n, 2));
    return SYN_OK;
}
