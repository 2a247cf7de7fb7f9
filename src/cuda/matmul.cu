/* Matrix products on CUDA through cuBLAS (fp32 SGEMM; TF32 only with
 * SYN_ALLOW_TF32=1), plus the two small kernels of linear: the bias broadcast
 * and the bias-gradient column sum. Row-major throughout: cuBLAS is
 * column-major, so row-major C = A B is computed as column-major C^T = B^T A^T. */
#include <limits.h>
#include "cuda_common.h"

/* ---- kernels --------------------------------------------------------------- */

/* b: (out) -> y: (R, out);  y[r, o] = b[o] */
static __global__ void bias_rows_kernel(const float *b, float *y, int64_t out, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = b[i % out];
}

/* dy: (R, out) -> db: (out);  db[o] += sum_r dy[r, o] (double). Block (32, 8):
 * 32 adjacent columns (coalesced), 8 row lanes; fixed order, deterministic.
 * Many rows (the char-LSTM's decoder: 8,192) are cut into P chunks, grid.y:
 * with P > 1 each block writes its chunk's sums to partials[chunk, o] and
 * syn__partials_sum_kernel adds them in chunk order (few columns then still fill
 * the GPU: 256 outputs are 8 blocks). */
static __global__ void colsum_kernel(const float *dy, float *db, double *partials, int64_t R, int64_t out, int add) {
    __shared__ double part[8][33];
    int64_t o = (int64_t)blockIdx.x * 32 + threadIdx.x;
    const int64_t r0 = R * blockIdx.y / gridDim.y, r1 = R * (blockIdx.y + 1) / gridDim.y;
    double s = 0.0;
    if (o < out)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += dy[r * out + o];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && o < out) {
        double t = 0.0;
        for (int k = 0; k < 8; k++) t += part[k][threadIdx.x];
        if (partials) partials[blockIdx.y * out + o] = t;
        else syn__grad_put(&db[o], add, (float)t);
    }
}


/* ---- launchers ------------------------------------------------------------- */

static syn_status dims_fit(int64_t M, int64_t N, int64_t K, const char *op) {
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
        return syn__error(SYN_ERR_UNSUPPORTED, "%s: GEMM dims %lld x %lld x %lld exceed cuBLAS's int range", op,
                          (long long)M, (long long)N, (long long)K);
    return SYN_OK;
}

/* C (M,N) = op(A) op(B) + beta C, all row-major and contiguous; op(A) is
 * (M,K), op(B) is (K,N). Batched with element strides sa, sb, sc when batch > 1. */
static syn_status gemm(syn__cuda *cu, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                       float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc, const char *op) {
    if (M == 0 || N == 0 || batch == 0) return SYN_OK;
    SYN_TRY(dims_fit(M, N, K, op));
    if (K == 0) { /* op(A) op(B) is zero: C = beta C */
        if (beta == 0.0f) SYN_CUDA_TRY(cudaMemsetAsync(C, 0, (size_t)(batch * M * N) * sizeof(float), cu->stream));
        return SYN_OK;
    }
    if (batch > INT_MAX) return syn__error(SYN_ERR_UNSUPPORTED, "%s: batch %lld exceeds cuBLAS's int range", op, (long long)batch);
    const float one = 1.0f;
    /* column-major C^T (N,M) = op(B)^T (N,K) op(A)^T (K,M) */
    cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    int ldb = (int)(tb ? K : N), lda = (int)(ta ? M : K), ldc = (int)N;
    if (batch == 1)
        SYN_CUBLAS_TRY(cublasSgemm(cu->blas, opb, opa, (int)N, (int)M, (int)K, &one, B, ldb, A, lda, &beta, C, ldc));
    else
        SYN_CUBLAS_TRY(cublasSgemmStridedBatched(cu->blas, opb, opa, (int)N, (int)M, (int)K, &one, B, ldb, sb, A, lda,
                                                 sa, &beta, C, ldc, sc, (int)batch));
    return SYN_OK;
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

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

/* a: (..., M, K)  b: (K, N) or (..., K, N)  ->  y: (..., M, N) */
syn_status syn__cuda_matmul_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    int64_t B, M, K, N;
    bool shared;
    mm_dims(n, &B, &M, &K, &N, &shared);
    const float *a = syn__din(n, 0), *b = syn__din(n, 1);
    float *y = (float *)n->value;
    if (B == 0) { /* M*K == 0: y is empty, or (K == 0) all zero */
        if (syn__numel(n) > 0) SYN_CUDA_TRY(cudaMemsetAsync(y, 0, (size_t)syn__numel(n) * sizeof(float), cu->stream));
        return SYN_OK;
    }
    if (shared) return gemm(cu, false, false, B * M, N, K, a, b, 0.0f, y, 1, 0, 0, 0, "matmul");
    return gemm(cu, false, false, M, N, K, a, b, 0.0f, y, B, M * K, K * N, M * N, "matmul");
}

/* da += dy b^T;  db += a^T dy (summed over the batch when b is shared) */
syn_status syn__cuda_matmul_bwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    int64_t B, M, K, N;
    bool shared;
    mm_dims(n, &B, &M, &K, &N, &shared);
    const float *a = syn__din(n, 0), *b = syn__din(n, 1), *dy = (const float *)n->grad;
    float *da = syn__dgrad(n, 0), *db = syn__dgrad(n, 1);
    /* beta 1 adds to a gradient, 0 writes a fresh one (garbage is not read) */
    const float beta_a = syn__grad_add(n, 0) ? 1.0f : 0.0f, beta_b = syn__grad_add(n, 1) ? 1.0f : 0.0f;
    if (shared) {
        if (da) SYN_TRY(gemm(cu, false, true, B * M, K, N, dy, b, beta_a, da, 1, 0, 0, 0, "matmul backward"));
        if (db) SYN_TRY(gemm(cu, true, false, K, N, B * M, a, dy, beta_b, db, 1, 0, 0, 0, "matmul backward"));
        return SYN_OK;
    }
    if (da) SYN_TRY(gemm(cu, false, true, M, K, N, dy, b, beta_a, da, B, M * N, K * N, M * K, "matmul backward"));
    if (db) SYN_TRY(gemm(cu, true, false, K, N, M, a, dy, beta_b, db, B, M * K, M * N, K * N, "matmul backward"));
    return SYN_OK;
}

/* x: (R, in)  w: (out, in)  b: (out)  ->  y = x w^T + b: (R, out) */
syn_status syn__cuda_linear_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    const syn_shape *ws = &n->in[1]->shape;
    int64_t out = ws->dim[0], in = ws->dim[1], len = syn__numel(n), R = len / (out ? out : 1);
    const float *x = syn__din(n, 0), *w = syn__din(n, 1);
    float *y = (float *)n->value;
    if (len == 0) return SYN_OK;
    if (n->n_in == 3) {
        bias_rows_kernel<<<syn__cuda_grid(len, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, cu->stream>>>(syn__din(n, 2), y,
                                                                                                     out, len);
        SYN_CUDA_TRY(cudaGetLastError());
    }
    return gemm(cu, false, true, R, out, in, x, w, n->n_in == 3 ? 1.0f : 0.0f, y, 1, 0, 0, 0, "linear");
}

/* dx += dy w;  dw += dy^T x;  db += sum_r dy */
syn_status syn__cuda_linear_bwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    const syn_shape *ws = &n->in[1]->shape;
    int64_t out = ws->dim[0], in = ws->dim[1], R = syn__numel(n) / (out ? out : 1);
    const float *x = syn__din(n, 0), *w = syn__din(n, 1), *dy = (const float *)n->grad;
    float *dx = syn__dgrad(n, 0), *dw = syn__dgrad(n, 1), *db = n->n_in == 3 ? syn__dgrad(n, 2) : NULL;
    if (dx) SYN_TRY(gemm(cu, false, false, R, in, out, dy, w, syn__grad_add(n, 0) ? 1.0f : 0.0f, dx, 1, 0, 0, 0,
                         "linear backward"));
    if (dw) SYN_TRY(gemm(cu, true, false, out, in, R, dy, x, syn__grad_add(n, 1) ? 1.0f : 0.0f, dw, 1, 0, 0, 0,
                         "linear backward"));
    if (db && out > 0) {
        int64_t blocks = (out + 31) / 32;
        if (blocks > INT_MAX) return syn__error(SYN_ERR_UNSUPPORTED, "linear backward: %lld outputs", (long long)out);
        /* row chunks of 256 rows or more, about 1024 blocks in all (shape-only: deterministic) */
        int64_t P = (R + 255) / 256, cap = (1024 + blocks - 1) / blocks;
        P = P < cap ? P : cap;
        P = P < 1 ? 1 : P > 65535 ? 65535 : P;
        const int add = syn__grad_add(n, 2);
        double *part = NULL;
        if (P > 1) SYN_TRY(cu->be.workspace(&cu->be, (size_t)(P * out) * sizeof *part, (void **)&part));
        colsum_kernel<<<dim3((unsigned)blocks, (unsigned)P), dim3(32, 8), 0, cu->stream>>>(dy, db, part, R, out, add);
        SYN_CUDA_TRY(cudaGetLastError());
        if (P > 1) {
            syn__partials_sum_kernel<<<syn__cuda_grid(out, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, cu->stream>>>(
                part, (int)P, 1, out, db, out, add);
            SYN_CUDA_TRY(cudaGetLastError());
        }
    }
    return SYN_OK;
}

} /* extern "C" */
