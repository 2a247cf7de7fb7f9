/* Sequence kernels on CUDA: slice, embedding, and the recurrent op (tanh /
 * relu RNN, LSTM, GRU) as own kernels around cuBLAS: the input projection of
 * all steps in one SGEMM, then per step one SGEMM for the recurrence and one
 * cell kernel (a thread per sample and hidden unit, all gates of that unit);
 * backward in reverse with one cell kernel and one SGEMM per step, then the
 * weight and input gradients in three SGEMMs. The same equations and saved
 * state as the CPU backend (src/cpu/rnn.c), so the two are compared directly. */
#include <limits.h>
#include <string.h>
#include <cub/device/device_radix_sort.cuh>
#include "cuda_common.h"

/* ---- GEMM with leading dims -------------------------------------------------- */

/* Row-major C (M, N) = op(A) op(B) + beta C, with row strides lda, ldb, ldc. */
static syn_status gemm_ld(syn__cuda *cu, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                          const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0 || K == 0) return SYN_OK;
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return syn__error(SYN_ERR_UNSUPPORTED, "rnn: GEMM dims %lld x %lld x %lld exceed cuBLAS's int range",
                          (long long)M, (long long)N, (long long)K);
    const float one = 1.0f;
    SYN_CUBLAS_TRY(cublasSgemm(cu->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M,
                               (int)K, &one, B, (int)ldb, A, (int)lda, &beta, C, (int)ldc));
    return SYN_OK;
}

/* ---- slice ------------------------------------------------------------------------ */

/* Where element i of the window lives in the full tensor. */
struct slice_map {
    int64_t win, full, start, inner;
    __device__ int64_t operator()(int64_t i) const {
        int64_t o = i / win, r = i % win;
        return (o * full + start) * inner + r;
    }
};

static __global__ void slice_fwd_kernel(slice_map m, const uint32_t *x, uint32_t *y, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = x[m(i)];
}

static __global__ void slice_bwd_kernel(slice_map m, const float *dy, float *dx, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dx[m(i)] += dy[i];
}

/* y (R, K) = b broadcast over the rows */
static __global__ void bias_rows_kernel(const float *b, float *y, int64_t K, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = b[i % K];
}

static __global__ void add_kernel(const float *a, float *y, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += a[i];
}

/* ---- the recurrent op: cells --------------------------------------------------------- */

struct rnn_dims {
    int mode;
    int64_t B, T, H, G, S;
};

static __device__ __forceinline__ float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

/* One step t for every (b, j): g holds the input projection (activated gates
 * on return), hw the recurrent product without its bias (NULL: zero state),
 * bh the recurrent bias (or NULL). */
static __global__ void cell_fwd_kernel(rnn_dims d, int64_t t, float *gates, float *ghn, const float *hw, const float *bh,
                                       const float *s0, const int32_t *len, float *y) {
    int64_t n = d.B * d.H, GH = d.G * d.H, H = d.H;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = i / H, j = i % H;
        const float *hp = t > 0 ? y + (b * d.T + t - 1) * d.S : (s0 ? s0 + b * d.S : NULL);
        float *out = y + (b * d.T + t) * d.S;
        float *g = gates + (b * d.T + t) * GH;
        if (len && t >= len[b]) {
            out[j] = hp ? hp[j] : 0.0f;
            if (d.mode == SYN_RNN_LSTM) out[H + j] = hp ? hp[H + j] : 0.0f;
            for (int64_t q = j; q < GH; q += H) g[q] = 0.0f;
            if (ghn) ghn[(b * d.T + t) * H + j] = 0.0f;
            continue;
        }
        float r[4];
        for (int q = 0; q < d.G; q++)
            r[q] = (hw ? hw[b * GH + q * H + j] : 0.0f) + (bh ? bh[q * H + j] : 0.0f);
        if (d.mode == SYN_RNN_TANH || d.mode == SYN_RNN_RELU) {
            float v = g[j] + r[0];
            out[j] = d.mode == SYN_RNN_TANH ? tanhf(v) : (v > 0.0f ? v : 0.0f);
        } else if (d.mode == SYN_RNN_LSTM) {
            float ig = sigm(g[j] + r[0]), fg = sigm(g[H + j] + r[1]);
            float cg = tanhf(g[2 * H + j] + r[2]), og = sigm(g[3 * H + j] + r[3]);
            float c = fg * (hp ? hp[H + j] : 0.0f) + ig * cg;
            g[j] = ig, g[H + j] = fg, g[2 * H + j] = cg, g[3 * H + j] = og;
            out[H + j] = c;
            out[j] = og * tanhf(c);
        } else {
            float rg = sigm(g[j] + r[0]), zg = sigm(g[H + j] + r[1]);
            float ng = tanhf(g[2 * H + j] + rg * r[2]);
            g[j] = rg, g[H + j] = zg, g[2 * H + j] = ng;
            ghn[(b * d.T + t) * H + j] = r[2];
            out[j] = (1.0f - zg) * ng + zg * (hp ? hp[j] : 0.0f);
        }
    }
}

/* One step t backward for every (b, j): dnext holds the state's gradient from
 * step t+1 (on return: the direct part of step t-1's); writes the
 * pre-activation gradients dI (input part) and dR (recurrent part). */
static __global__ void cell_bwd_kernel(rnn_dims d, int64_t t, const float *gates, const float *ghn, const float *y,
                                       const float *s0, const int32_t *len, const float *dy, float *dnext, float *dI,
                                       float *dR) {
    int64_t n = d.B * d.H, GH = d.G * d.H, H = d.H;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = i / H, j = i % H, row = b * d.T + t;
        const float *hp = t > 0 ? y + (row - 1) * d.S : (s0 ? s0 + b * d.S : NULL);
        float *dn = dnext + b * d.S;
        float dh = dy[row * d.S + j] + dn[j];
        float dc = d.mode == SYN_RNN_LSTM ? dy[row * d.S + H + j] + dn[H + j] : 0.0f;
        float *di = dI + row * GH, *dr = dR + row * GH;
        if (len && t >= len[b]) { /* the carried state passes its gradient on */
            dn[j] = dh;
            if (d.mode == SYN_RNN_LSTM) dn[H + j] = dc;
            for (int64_t q = j; q < GH; q += H) {
                di[q] = 0.0f;
                dr[q] = 0.0f;
            }
            continue;
        }
        const float *g = gates + row * GH;
        if (d.mode == SYN_RNN_TANH || d.mode == SYN_RNN_RELU) {
            float h = y[row * d.S + j];
            float v = dh * (d.mode == SYN_RNN_TANH ? 1.0f - h * h : (h > 0.0f ? 1.0f : 0.0f));
            di[j] = dr[j] = v;
            dn[j] = 0.0f;
        } else if (d.mode == SYN_RNN_LSTM) {
            float ig = g[j], fg = g[H + j], cg = g[2 * H + j], og = g[3 * H + j];
            float tc = tanhf(y[row * d.S + H + j]);
            float dcj = dc + dh * og * (1.0f - tc * tc);
            float cp = hp ? hp[H + j] : 0.0f;
            di[j] = dr[j] = dcj * cg * ig * (1.0f - ig);
            di[H + j] = dr[H + j] = dcj * cp * fg * (1.0f - fg);
            di[2 * H + j] = dr[2 * H + j] = dcj * ig * (1.0f - cg * cg);
            di[3 * H + j] = dr[3 * H + j] = dh * tc * og * (1.0f - og);
            dn[j] = 0.0f;
            dn[H + j] = dcj * fg;
        } else {
            float rg = g[j], zg = g[H + j], ng = g[2 * H + j], hpj = hp ? hp[j] : 0.0f;
            float dnn = dh * (1.0f - zg) * (1.0f - ng * ng);
            float dz = dh * (hpj - ng) * zg * (1.0f - zg);
            float drr = dnn * ghn[row * H + j] * rg * (1.0f - rg);
            di[j] = dr[j] = drr;
            di[H + j] = dr[H + j] = dz;
            di[2 * H + j] = dnn;
            dr[2 * H + j] = dnn * rg;
            dn[j] = dh * zg;
        }
    }
}

/* hprev (B T, H): the h before every step. */
static __global__ void hprev_kernel(rnn_dims d, const float *y, const float *s0, float *hprev) {
    int64_t n = d.B * d.T * d.H;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t row = i / d.H, j = i % d.H, b = row / d.T, t = row % d.T;
        hprev[i] = t > 0 ? y[(row - 1) * d.S + j] : (s0 ? s0[b * d.S + j] : 0.0f);
    }
}

/* Lengths outside [0, T]: the first bad sample recorded in *flag. */
static __global__ void check_lengths_kernel(const int32_t *len, int64_t B, int64_t T, unsigned long long *flag) {
    for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < B; b += (int64_t)gridDim.x * blockDim.x)
        if (len[b] < 0 || len[b] > T) atomicMin(flag, (unsigned long long)b);
}

/* Indices outside [0, V): the first bad position recorded in *flag. */
static __global__ void embedding_fwd_kernel(const int32_t *idx, const float *w, float *y, int64_t rows, int64_t V,
                                            int64_t D, unsigned long long *flag) {
    int64_t n = rows * D;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / D, k = i % D;
        int32_t v = idx[r];
        if (v < 0 || v >= V) {
            atomicMin(flag, (unsigned long long)r);
            y[i] = 0.0f;
        } else
            y[i] = w[(int64_t)v * D + k];
    }
}

static __global__ void embedding_bwd_kernel(const int32_t *idx, const float *dy, float *dw, int64_t rows, int64_t D) {
    int64_t n = rows * D;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        atomicAdd(&dw[(int64_t)idx[i / D] * D + i % D], dy[i]);
}

static __global__ void iota_kernel(int32_t *v, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        v[i] = (int32_t)i;
}

/* keys: the indices sorted (stable), rows_of: the row each came from. The
 * first position of each index's run adds that run's rows of dy into its
 * row of dw, in row order: the CPU's order, so the sums are the CPU's bit
 * for bit. */
static __global__ void embedding_bwd_sorted_kernel(const uint32_t *keys, const int32_t *rows_of, const float *dy,
                                                   float *dw, int64_t R, int64_t D) {
    int64_t n = R * D;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i / D, k = i % D;
        uint32_t v = keys[j];
        if (j > 0 && keys[j - 1] == v) continue;
        float acc = dw[(int64_t)v * D + k];
        for (int64_t t = j; t < R && keys[t] == v; t++) acc += dy[(int64_t)rows_of[t] * D + k];
        dw[(int64_t)v * D + k] = acc;
    }
}

/* Waits for the stream and reads the flag: the first bad row, or ~0. */
static syn_status read_flag(syn__cuda *cu, unsigned long long *bad) {
    SYN_CUDA_TRY(cudaMemcpyAsync(cu->flag_host, cu->flag, sizeof *cu->flag, cudaMemcpyDeviceToHost, cu->stream));
    SYN_CUDA_TRY(cudaStreamSynchronize(cu->stream));
    *bad = *cu->flag_host;
    return SYN_OK;
}

#define LAUNCH(kernel, n, ...)                                                                       \
    do {                                                                                             \
        kernel<<<syn__cuda_grid((n), SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, cu->stream>>>(__VA_ARGS__); \
        SYN_CUDA_TRY(cudaGetLastError());                                                            \
    } while (0)

/* ---- entry points ------------------------------------------------------------------ */

extern "C" {

syn_status syn__cuda_slice_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    int64_t outer, full, inner;
    syn__slice_dims(n, &outer, &full, &inner);
    slice_map m = {n->i[2] * inner, full, n->i[1], inner};
    syn__cuda *cu = syn__cu(be);
    /* f32 or i32: 4 bytes either way */
    LAUNCH(slice_fwd_kernel, syn__numel(n), m, (const uint32_t *)n->in[0]->value, (uint32_t *)n->value, syn__numel(n));
    return SYN_OK;
}

syn_status syn__cuda_slice_bwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    int64_t outer, full, inner;
    syn__slice_dims(n, &outer, &full, &inner);
    slice_map m = {n->i[2] * inner, full, n->i[1], inner};
    syn__cuda *cu = syn__cu(be);
    LAUNCH(slice_bwd_kernel, syn__numel(n), m, (const float *)n->grad, dx, syn__numel(n));
    return SYN_OK;
}

/* An index outside the table is an error, as on the CPU: the kernel writes a
 * zero row and records the position; the host waits for the flag, unless
 * the indices were fed from the host with a range inside the table
 * (syn_node.i32_known). */
syn_status syn__cuda_embedding_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    const int32_t *idx = (const int32_t *)n->in[0]->value;
    int64_t rows = syn__numel(n->in[0]), V = n->in[1]->shape.dim[0], D = n->in[1]->shape.dim[1];
    if (rows == 0) return SYN_OK;
    const bool trusted = syn__i32_known_within(n->in[0], 0, V - 1); /* then the flag is neither reset nor read */
    if (!trusted) SYN_CUDA_TRY(cudaMemsetAsync(cu->flag, 0xff, sizeof *cu->flag, cu->stream));
    LAUNCH(embedding_fwd_kernel, rows * D, idx, syn__din(n, 1), (float *)n->value, rows, V, D, cu->flag);
    if (trusted) return SYN_OK;
    unsigned long long bad = 0;
    SYN_TRY(read_flag(cu, &bad));
    if (bad != ~0ull) {
        int32_t v = 0;
        SYN_CUDA_TRY(cudaMemcpyAsync(&v, idx + bad, sizeof v, cudaMemcpyDeviceToHost, cu->stream));
        SYN_CUDA_TRY(cudaStreamSynchronize(cu->stream));
        return syn__error(SYN_ERR_ARG, "embedding: index %d at position %llu is outside the table's %lld rows", (int)v,
                          bad, (long long)V);
    }
    return SYN_OK;
}

/* Deterministic dW: the rows sorted by index (a stable radix sort, so equal
 * indices keep their row order), then each index's rows summed in order. */
static syn_status embedding_bwd_sorted(syn_backend *be, const int32_t *idx, const float *dy, float *dw, int64_t R,
                                       int64_t V, int64_t D) {
    syn__cuda *cu = syn__cu(be);
    if (R > INT_MAX) return syn__error(SYN_ERR_UNSUPPORTED, "embedding: %lld rows to sort (at most %d)", (long long)R, INT_MAX);
    int bits = 1;
    while (bits < 31 && (1ll << bits) < V) bits++;
    const uint32_t *keys_in = (const uint32_t *)idx; /* checked to lie in [0, V) by the forward pass */
    size_t temp = 0;
    SYN_CUDA_TRY(cub::DeviceRadixSort::SortPairs(NULL, temp, keys_in, (uint32_t *)NULL, (const int32_t *)NULL,
                                                 (int32_t *)NULL, (int)R, 0, bits, cu->stream));
    const size_t ints = ((size_t)(3 * R) * sizeof(int32_t) + 255) & ~(size_t)255;
    char *ws;
    SYN_TRY(be->workspace(be, ints + temp, (void **)&ws));
    uint32_t *keys = (uint32_t *)ws;
    int32_t *rows_in = (int32_t *)(keys + R), *rows_of = rows_in + R;
    LAUNCH(iota_kernel, R, rows_in, R);
    SYN_CUDA_TRY(cub::DeviceRadixSort::SortPairs(ws + ints, temp, keys_in, keys, rows_in, rows_of, (int)R, 0, bits,
                                                 cu->stream));
    LAUNCH(embedding_bwd_sorted_kernel, R * D, keys, rows_of, dy, dw, R, D);
    return SYN_OK;
}

/* dW rows gather with atomicAdd (repeated indices add in an unspecified
 * order), or deterministically by sorted rows (SYN_DETERMINISTIC=1). */
syn_status syn__cuda_embedding_bwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    float *dw = syn__dgrad(n, 1);
    int64_t rows = syn__numel(n->in[0]), V = n->in[1]->shape.dim[0], D = n->in[1]->shape.dim[1];
    if (!dw || rows == 0) return SYN_OK;
    const int32_t *idx = (const int32_t *)n->in[0]->value;
    if (cu->deterministic) return embedding_bwd_sorted(be, idx, (const float *)n->grad, dw, rows, V, D);
    LAUNCH(embedding_bwd_kernel, rows * D, idx, (const float *)n->grad, dw, rows, D);
    return SYN_OK;
}

typedef struct {
    rnn_dims d;
    int64_t I;
    const float *x, *wi, *wh, *bi, *bh, *s0;
    const int32_t *len;
    float *y, *gates, *ghn;
} rnn_args;

/* check: validate the lengths (one stream wait); the forward does, the
 * backward reads the lengths that forward accepted. */
static syn_status rnn_read(syn__cuda *cu, const syn_node *n, rnn_args *a, bool check) {
    memset(a, 0, sizeof *a);
    a->d.mode = (int)n->i[SYN_A_RNN_MODE];
    a->d.B = n->in[0]->shape.dim[0];
    a->d.T = n->in[0]->shape.dim[1];
    a->I = n->in[0]->shape.dim[2];
    a->d.H = n->i[SYN_A_RNN_HIDDEN];
    a->d.G = syn__rnn_gates(a->d.mode);
    a->d.S = syn__rnn_state(a->d.mode, a->d.H);
    a->x = syn__din(n, 0);
    a->wi = syn__din(n, 1);
    a->wh = syn__din(n, 2);
    if (n->i[SYN_A_RNN_BIAS]) {
        a->bi = syn__din(n, 3);
        a->bh = syn__din(n, 4);
    }
    if (n->i[SYN_A_RNN_STATE]) a->s0 = syn__din(n, (int)n->i[SYN_A_RNN_STATE]);
    a->y = (float *)n->value;
    a->gates = (float *)n->aux;
    a->ghn = a->d.mode == SYN_RNN_GRU ? a->gates + a->d.B * a->d.T * a->d.G * a->d.H : NULL;
    if (n->i[SYN_A_RNN_LENGTHS]) {
        a->len = (const int32_t *)n->in[n->i[SYN_A_RNN_LENGTHS]]->value;
        if (!check || syn__i32_known_within(n->in[n->i[SYN_A_RNN_LENGTHS]], 0, a->d.T)) return SYN_OK;
        SYN_CUDA_TRY(cudaMemsetAsync(cu->flag, 0xff, sizeof *cu->flag, cu->stream));
        LAUNCH(check_lengths_kernel, a->d.B, a->len, a->d.B, a->d.T, cu->flag);
        unsigned long long bad = 0;
        SYN_TRY(read_flag(cu, &bad));
        if (bad != ~0ull) {
            int32_t v = 0;
            SYN_CUDA_TRY(cudaMemcpyAsync(&v, a->len + bad, sizeof v, cudaMemcpyDeviceToHost, cu->stream));
            SYN_CUDA_TRY(cudaStreamSynchronize(cu->stream));
            return syn__error(SYN_ERR_ARG, "rnn: length %d of sample %llu is outside [0, %lld]", (int)v, bad,
                              (long long)a->d.T);
        }
    }
    return SYN_OK;
}

syn_status syn__cuda_rnn_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    rnn_args a;
    SYN_TRY(rnn_read(cu, n, &a, true));
    rnn_dims d = a.d;
    int64_t GH = d.G * d.H, BT = d.B * d.T;
    if (BT == 0) return SYN_OK;
    /* gates = x W_ih^T + b_ih for every step */
    if (a.bi) LAUNCH(bias_rows_kernel, BT * GH, a.bi, a.gates, GH, BT * GH);
    SYN_TRY(gemm_ld(cu, false, true, BT, GH, a.I, a.x, a.I, a.wi, a.I, a.bi ? 1.0f : 0.0f, a.gates, GH));
    float *hw;
    SYN_TRY(be->workspace(be, (size_t)(d.B * GH) * sizeof(float), (void **)&hw));
    for (int64_t t = 0; t < d.T; t++) {
        const float *h = t > 0 ? a.y + (t - 1) * d.S : a.s0;
        if (h) SYN_TRY(gemm_ld(cu, false, true, d.B, GH, d.H, h, t > 0 ? d.T * d.S : d.S, a.wh, d.H, 0.0f, hw, GH));
        LAUNCH(cell_fwd_kernel, d.B * d.H, d, t, a.gates, a.ghn, h ? hw : NULL, a.bh, a.s0, a.len, a.y);
    }
    return SYN_OK;
}

syn_status syn__cuda_rnn_bwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    rnn_args a;
    SYN_TRY(rnn_read(cu, n, &a, false));
    rnn_dims d = a.d;
    int64_t H = d.H, GH = d.G * H, S = d.S, BT = d.B * d.T;
    if (BT == 0) return SYN_OK;
    bool gru = d.mode == SYN_RNN_GRU;
    /* workspace: dI, dR (GRU only), the running state gradient, the previous
     * h of every step, a row of ones (bias gradients as GEMMs) */
    size_t nf = (size_t)(BT * GH) * (gru ? 2 : 1) + (size_t)(d.B * S) + (size_t)(BT * H) + (size_t)BT;
    float *ws;
    SYN_TRY(be->workspace(be, nf * sizeof(float), (void **)&ws));
    float *dI = ws, *dR = gru ? dI + BT * GH : dI, *dnext = dR + BT * GH, *hprev = dnext + d.B * S, *ones = hprev + BT * H;
    SYN_CUDA_TRY(cudaMemsetAsync(dnext, 0, (size_t)(d.B * S) * sizeof(float), cu->stream));
    for (int64_t t = d.T - 1; t >= 0; t--) {
        LAUNCH(cell_bwd_kernel, d.B * H, d, t, a.gates, a.ghn, a.y, a.s0, a.len, (const float *)n->grad, dnext, dI, dR);
        SYN_TRY(gemm_ld(cu, false, false, d.B, H, GH, dR + t * GH, d.T * GH, a.wh, H, 1.0f, dnext, S));
    }
    int st = (int)n->i[SYN_A_RNN_STATE];
    float *ds0 = st ? syn__dgrad(n, st) : NULL;
    if (ds0) LAUNCH(add_kernel, d.B * S, dnext, ds0, d.B * S);
    float *dx = syn__dgrad(n, 0), *dwi = syn__dgrad(n, 1), *dwh = syn__dgrad(n, 2);
    if (dx) SYN_TRY(gemm_ld(cu, false, false, BT, a.I, GH, dI, GH, a.wi, a.I, 1.0f, dx, a.I));
    if (dwi) SYN_TRY(gemm_ld(cu, true, false, GH, a.I, BT, dI, GH, a.x, a.I, 1.0f, dwi, a.I));
    if (dwh) {
        LAUNCH(hprev_kernel, BT * H, d, a.y, a.s0, hprev);
        SYN_TRY(gemm_ld(cu, true, false, GH, H, BT, dR, GH, hprev, H, 1.0f, dwh, H));
    }
    if (n->i[SYN_A_RNN_BIAS]) {
        float *dbi = syn__dgrad(n, 3), *dbh = syn__dgrad(n, 4);
        const float one = 1.0f;
        uint32_t bits;
        memcpy(&bits, &one, sizeof bits);
        SYN_CUDA_TRY(syn__cuda_fill32_launch(ones, bits, BT, cu->stream));
        /* db (1, GH) += ones (1, BT) d (BT, GH) */
        if (dbi) SYN_TRY(gemm_ld(cu, false, false, 1, GH, BT, ones, BT, dI, GH, 1.0f, dbi, GH));
        if (dbh) SYN_TRY(gemm_ld(cu, false, false, 1, GH, BT, ones, BT, dR, GH, 1.0f, dbh, GH));
    }
    return SYN_OK;
}

} /* extern "C" */
