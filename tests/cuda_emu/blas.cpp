/* The CUDA emulator's cuBLAS: column-major SGEMM with naive loops (fp32
 * accumulation, like SGEMM), strict argument checks at the call (leading
 * dimensions, operand ranges inside device allocations), the product queued
 * on the stream, and beta = 0 never reading C. */
#include "cublas_v2.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>

struct syn_emu_blas {
    cudaStream_t stream;
    cublasMath_t math;
    void *ws; /* cublasSetWorkspace's (the naive loops need none): set or not */
};

static cublasStatus_t invalid(const char *what, int m, int n, int k, int lda, int ldb, int ldc) {
    fprintf(stderr, "cuda emulator: cublas: %s (m %d, n %d, k %d, lda %d, ldb %d, ldc %d)\n", what, m, n, k, lda, ldb,
            ldc);
    return CUBLAS_STATUS_INVALID_VALUE;
}

static void gemm_run(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc);

static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    const int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
    const int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0) return invalid("negative size", m, n, k, lda, ldb, ldc);
    if (lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1))
        return invalid("leading dimension below the rows", m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    if (k > 0 && alpha != 0.0f) {
        syn_emu_check_range(A, ((size_t)(acols - 1) * lda + arows) * sizeof(float), "cublas gemm A");
        syn_emu_check_range(B, ((size_t)(bcols - 1) * ldb + brows) * sizeof(float), "cublas gemm B");
    }
    syn_emu_check_range(C, ((size_t)(n - 1) * ldc + m) * sizeof(float), "cublas gemm C");
    syn_emu_enqueue([=] { gemm_run(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}

/* The product itself, when the queue reaches it. */
static void gemm_run(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int l = 0; l < k; l++) {
                float a = ta == CUBLAS_OP_N ? A[i + (size_t)l * lda] : A[l + (size_t)i * lda];
                float b = tb == CUBLAS_OP_N ? B[l + (size_t)j * ldb] : B[j + (size_t)l * ldb];
                acc += a * b;
            }
            float *c = &C[i + (size_t)j * ldc];
            *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
        }
}

extern "C" {
cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new syn_emu_blas{nullptr, CUBLAS_DEFAULT_MATH, nullptr};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}
/* As cuBLAS: a workspace that is not 256-byte aligned is invalid. */
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    if (bytes && (!ws || (uintptr_t)ws % 256)) return CUBLAS_STATUS_INVALID_VALUE;
    h->ws = bytes ? ws : nullptr;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetVersion(cublasHandle_t h, int *v) {
    (void)h;
    *v = 130100;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "success" : s == CUBLAS_STATUS_INVALID_VALUE ? "invalid value" : "error";
}
const char *cublasGetStatusName(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS"
           : s == CUBLAS_STATUS_INVALID_VALUE ? "CUBLAS_STATUS_INVALID_VALUE"
                                              : "CUBLAS_STATUS_EXECUTION_FAILED";
}
/* Without a workspace set, cuBLAS allocates one of its own for each CUDA
 * graph captured on the handle, and keeps it (the memory PyTorch saw grow:
 * its #83461). Stricter than cuBLAS, the emulator refuses that in a capture,
 * as it refuses cudaMalloc there. */
static bool capture_without_workspace(cublasHandle_t h) {
    return !h->ws && syn_emu_capture_refuses("a cuBLAS call without cublasSetWorkspace");
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    if (!h || !h->stream) return invalid("handle without a stream", m, n, k, lda, ldb, ldc);
    if (capture_without_workspace(h)) return CUBLAS_STATUS_EXECUTION_FAILED;
    syn_emu_trace("cublasSgemm %c%c m %d n %d k %d", ta == CUBLAS_OP_N ? 'N' : 'T', tb == CUBLAS_OP_N ? 'N' : 'T', m, n, k);
    return gemm(ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sa,
                                         const float *B, int ldb, long long sb, const float *beta, float *C, int ldc,
                                         long long sc, int batch) {
    if (!h || !h->stream) return invalid("handle without a stream", m, n, k, lda, ldb, ldc);
    if (capture_without_workspace(h)) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (batch < 0) return invalid("negative batch count", m, n, k, lda, ldb, ldc);
    syn_emu_trace("cublasSgemmStridedBatched %c%c m %d n %d k %d batch %d", ta == CUBLAS_OP_N ? 'N' : 'T',
                  tb == CUBLAS_OP_N ? 'N' : 'T', m, n, k, batch);
    for (int b = 0; b < batch; b++) {
        cublasStatus_t s = gemm(ta, tb, m, n, k, *alpha, A + b * sa, lda, B + b * sb, ldb, *beta, C + b * sc, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}
}
