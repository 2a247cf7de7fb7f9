/* Convolutions on CUDA through cuDNN (NCHW, fp32, cross-correlation, groups,
 * padding, stride, dilation): conv2d and conv_transpose2d, forward and both
 * backward passes, plus own kernels for the bias (broadcast add, and a
 * deterministic per-channel sum for its gradient). The cuDNN handle is created
 * on first use and bound to the backend's stream; an algorithm is chosen once
 * per problem from cuDNN's heuristics and cached. Oracle: src/cpu/conv.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cuda_common.h"

/* Workspaces above this are not considered (a faster algorithm is not worth a
 * huge allocation; a smaller one always exists). */
#define SYN_CONV_WS_LIMIT ((size_t)1 << 30)
#define SYN_CONV_CACHE 256

/* One convolution as cuDNN sees it: input u (n, c, h, w), filter
 * (k, c/g, r, s), output v (n, k, p, q). conv2d maps its own x -> y; a
 * transposed conv is this convolution run backwards (see below). */
struct conv_problem {
    int n, c, h, w, k, r, s, p, q;
    int ph, pw, sh, sw, dh, dw, g;
};

enum { KIND_FWD, KIND_BWD_DATA, KIND_BWD_FILTER };

struct algo_entry {
    int kind;
    conv_problem pb;
    int algo;
    size_t ws;
    cudnnMathType_t math;
};

/* Descriptors (re-set for each call) and the algorithm cache; under dnn_lock. */
struct syn__cudnn_state {
    bool ready;
    cudnnTensorDescriptor_t u, v;
    cudnnFilterDescriptor_t f;
    cudnnConvolutionDescriptor_t conv;
    algo_entry cache[SYN_CONV_CACHE];
    int n_cache, evict;
};

/* ---- kernels --------------------------------------------------------------- */

/* y: (N, K, PQ) += b: (K) broadcast; grid (P, K) of channel chunks, so no
 * division per value */
static __global__ void bias_add_kernel(syn__chan_geom d, float *y, const float *b, int P) {
    const int64_t M = d.N * d.S, lo = syn__chan_lo(M, P, blockIdx.x), hi = syn__chan_lo(M, P, blockIdx.x + 1);
    for (int64_t k = blockIdx.y; k < d.C; k += gridDim.y) {
        const float bk = b[k];
        syn__chan_each(d, k, lo, hi, [&](int64_t o) { y[o] += bk; });
    }
}

/* db[k] += sum over n, j of dy[n, k, j]; dy: (N, K, PQ). Chunked like batch
 * norm's statistics (cuda_common.h): grid (P, K) writes one double partial
 * per chunk, then syn__partials_sum_kernel adds them in chunk order, one
 * thread per channel: deterministic. */
static __global__ void bias_grad_part_kernel(syn__chan_geom d, const float *dy, double *part, int P) {
    const int64_t M = d.N * d.S, lo = syn__chan_lo(M, P, blockIdx.x), hi = syn__chan_lo(M, P, blockIdx.x + 1);
    for (int64_t k = blockIdx.y; k < d.C; k += gridDim.y) {
        double acc = 0.0;
        syn__chan_each(d, k, lo, hi, [&](int64_t o) { acc += dy[o]; });
        acc = syn__block_sum(acc);
        if (threadIdx.x == 0) part[k * P + blockIdx.x] = acc;
    }
}

/* ---- launchers ------------------------------------------------------------- */

static syn_status bias_add(syn__cuda *cu, float *y, const float *b, int64_t N, int64_t K, int64_t PQ) {
    if (N * K * PQ == 0) return SYN_OK;
    const syn__chan_geom d = {N, K, PQ};
    const int P = syn__chan_chunks(d);
    bias_add_kernel<<<syn__chan_grid(d, P), SYN_CUDA_THREADS, 0, cu->stream>>>(d, y, b, P);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

static syn_status bias_grad(syn__cuda *cu, const float *dy, float *db, int64_t N, int64_t K, int64_t PQ,
                            int add) {
    if (K == 0) return SYN_OK;
    const syn__chan_geom d = {N, K, PQ};
    const int P = syn__chan_chunks(d);
    double *part;
    SYN_TRY(cu->be.workspace(&cu->be, (size_t)K * P * sizeof *part, (void **)&part));
    bias_grad_part_kernel<<<syn__chan_grid(d, P), SYN_CUDA_THREADS, 0, cu->stream>>>(d, dy, part, P);
    SYN_CUDA_TRY(cudaGetLastError());
    syn__partials_sum_kernel<<<syn__cuda_grid(K, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, cu->stream>>>(
        part, P, P, 1, db, K, add);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* ---- cuDNN state ------------------------------------------------------------ */

extern "C" void syn__cuda_cudnn_destroy(syn__cuda *cu) {
    syn__cudnn_state *st = cu->dnn_state;
    if (st) {
        if (st->conv) cudnnDestroyConvolutionDescriptor(st->conv);
        if (st->f) cudnnDestroyFilterDescriptor(st->f);
        if (st->v) cudnnDestroyTensorDescriptor(st->v);
        if (st->u) cudnnDestroyTensorDescriptor(st->u);
        free(st);
    }
    if (cu->dnn) cudnnDestroy(cu->dnn);
    cu->dnn_state = NULL;
    cu->dnn = NULL;
    (void)cudaGetLastError();
}

static syn_status dnn_create(syn__cuda *cu) {
    cu->dnn_state = (syn__cudnn_state *)calloc(1, sizeof *cu->dnn_state);
    if (!cu->dnn_state) return syn__error(SYN_ERR_OOM, "cuda:%d: cannot allocate the cuDNN state", cu->index);
    syn__cudnn_state *st = cu->dnn_state;
    SYN_CUDNN_TRY(cudnnCreate(&cu->dnn));
    SYN_CUDNN_TRY(cudnnSetStream(cu->dnn, cu->stream));
    SYN_CUDNN_TRY(cudnnCreateTensorDescriptor(&st->u));
    SYN_CUDNN_TRY(cudnnCreateTensorDescriptor(&st->v));
    SYN_CUDNN_TRY(cudnnCreateFilterDescriptor(&st->f));
    SYN_CUDNN_TRY(cudnnCreateConvolutionDescriptor(&st->conv));
    st->ready = true;
    return SYN_OK;
}

/* The handle and descriptors, created on first use (dnn_lock held). */
static syn_status dnn_ready(syn__cuda *cu) {
    if (cu->dnn_state && cu->dnn_state->ready) return SYN_OK;
    syn__cuda_cudnn_destroy(cu); /* leftovers of a failed attempt */
    syn_status s = dnn_create(cu);
    if (s != SYN_OK) syn__cuda_cudnn_destroy(cu);
    return s;
}

/* The math type of every convolution: CUDNN_FMA_MATH keeps fp32 exact to
 * rounding (CUDNN_DEFAULT_MATH would allow TF32 tensor cores on A100 and
 * later); with SYN_ALLOW_TF32=1 CUDNN_DEFAULT_MATH, i.e. TF32 permitted. */
static cudnnMathType_t base_math(const syn__cuda *cu) { return cu->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }

static bool math_allowed(const syn__cuda *cu, cudnnMathType_t m) {
    if (cu->tf32) return true;
    return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH; /* run under FMA_MATH either way */
}

/* Sets the four descriptors for pb and checks that cuDNN agrees on the output. */
static syn_status set_problem(syn__cuda *cu, const conv_problem *pb) {
    syn__cudnn_state *st = cu->dnn_state;
    SYN_CUDNN_TRY(cudnnSetTensor4dDescriptor(st->u, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, pb->n, pb->c, pb->h, pb->w));
    SYN_CUDNN_TRY(cudnnSetTensor4dDescriptor(st->v, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, pb->n, pb->k, pb->p, pb->q));
    SYN_CUDNN_TRY(cudnnSetFilter4dDescriptor(st->f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, pb->k, pb->c / pb->g, pb->r, pb->s));
    SYN_CUDNN_TRY(cudnnSetConvolution2dDescriptor(st->conv, pb->ph, pb->pw, pb->sh, pb->sw, pb->dh, pb->dw,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SYN_CUDNN_TRY(cudnnSetConvolutionGroupCount(st->conv, pb->g));
    SYN_CUDNN_TRY(cudnnSetConvolutionMathType(st->conv, base_math(cu)));
    int on, ok, op, oq;
    SYN_CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(st->conv, st->u, st->f, &on, &ok, &op, &oq));
    if (on != pb->n || ok != pb->k || op != pb->p || oq != pb->q)
        return syn__error(SYN_ERR_DEVICE,
                          "cuda:%d: conv: cuDNN computes output (%d,%d,%d,%d) where Synapse expects (%d,%d,%d,%d)",
                          cu->index, on, ok, op, oq, pb->n, pb->k, pb->p, pb->q);
    return SYN_OK;
}

/* Workspace bytes of algorithm `algo` of `kind` under the current descriptors. */
static cudnnStatus_t ws_size(syn__cuda *cu, int kind, int algo, size_t *bytes) {
    syn__cudnn_state *st = cu->dnn_state;
    switch (kind) {
    case KIND_FWD:
        return cudnnGetConvolutionForwardWorkspaceSize(cu->dnn, st->u, st->f, st->conv, st->v,
                                                       (cudnnConvolutionFwdAlgo_t)algo, bytes);
    case KIND_BWD_DATA:
        return cudnnGetConvolutionBackwardDataWorkspaceSize(cu->dnn, st->f, st->v, st->conv, st->u,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
    default:
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(cu->dnn, st->u, st->v, st->conv, st->f,
                                                              (cudnnConvolutionBwdFilterAlgo_t)algo, bytes);
    }
}

/* What the three perf structs share. */
struct perf {
    int algo;
    cudnnStatus_t status;
    cudnnDeterminism_t det;
    cudnnMathType_t math;
};

/* Algorithms are timed once per problem (cudnnFind*Algorithm, as PyTorch's
 * cudnn.benchmark does) unless SYN_CONV_FIND=0, which takes cuDNN's
 * heuristic ranking (cudnnGet*Algorithm_v7) without running anything. */
static bool timed_choice(void) {
    const char *v = getenv("SYN_CONV_FIND");
    return !(v && strcmp(v, "0") == 0);
}

template <class P>
static void keep(const P *p, int got, int cap, perf *out, int *count) {
    for (int i = 0; i < got && i < cap; i++)
        out[(*count)++] = perf{(int)p[i].algo, p[i].status, p[i].determinism, p[i].mathType};
}

/* The candidates for `kind`, best first: measured (timed_choice) or ranked by
 * cuDNN's heuristics. A failed timing run (it allocates its own buffers, so
 * it can run out of memory where the training would not) falls back to the
 * heuristics, and its error is cleared so that no later check reports it. */
static syn_status rank(syn__cuda *cu, int kind, perf *out, int *count) {
    syn__cudnn_state *st = cu->dnn_state;
    int got = 0;
    *count = 0;
    if (timed_choice()) {
        cudnnStatus_t fs;
        if (kind == KIND_FWD) {
            cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
            fs = cudnnFindConvolutionForwardAlgorithm(cu->dnn, st->u, st->f, st->conv, st->v,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, p);
            if (fs == CUDNN_STATUS_SUCCESS) keep(p, got, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, out, count);
        } else if (kind == KIND_BWD_DATA) {
            cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
            fs = cudnnFindConvolutionBackwardDataAlgorithm(cu->dnn, st->f, st->v, st->conv, st->u,
                                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, p);
            if (fs == CUDNN_STATUS_SUCCESS) keep(p, got, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, out, count);
        } else {
            cudnnConvolutionBwdFilterAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
            fs = cudnnFindConvolutionBackwardFilterAlgorithm(cu->dnn, st->u, st->v, st->conv, st->f,
                                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, p);
            if (fs == CUDNN_STATUS_SUCCESS) keep(p, got, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, out, count);
        }
        cudaError_t pending = cudaGetLastError(); /* a failed allocation inside the timing run */
        if (pending != cudaSuccess && cudaPeekAtLastError() != cudaSuccess) SYN_CUDA_TRY(pending); /* sticky */
        if (fs == CUDNN_STATUS_SUCCESS && *count > 0) return SYN_OK;
        if (getenv("SYN_CONV_VERBOSE"))
            fprintf(stderr, "synapse: conv %s: timing the algorithms failed (%s); cuDNN's heuristics choose\n",
                    kind == KIND_FWD ? "forward" : kind == KIND_BWD_DATA ? "backward-data" : "backward-filter",
                    cudnnGetErrorString(fs));
        *count = 0;
    }
    if (kind == KIND_FWD) {
        cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        SYN_CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(cu->dnn, st->u, st->f, st->conv, st->v,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, p));
        keep(p, got, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, out, count);
    } else if (kind == KIND_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        SYN_CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(cu->dnn, st->f, st->v, st->conv, st->u,
                                                                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, p));
        keep(p, got, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, out, count);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        SYN_CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(cu->dnn, st->u, st->v, st->conv, st->f,
                                                                    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, p));
        keep(p, got, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, out, count);
    }
    return SYN_OK;
}

static const char *const kind_name[3] = {"forward", "backward-data", "backward-filter"};

/* The algorithm for (kind, pb), from the cache or chosen now: the best-ranked
 * one that works, fits SYN_CONV_WS_LIMIT, respects the math mode and (with
 * SYN_DETERMINISTIC=1) is deterministic; else the deterministic fallback
 * (IMPLICIT_GEMM, BWD_DATA_ALGO_1, BWD_FILTER_ALGO_1). Descriptors must be set
 * for pb; on return the convolution descriptor carries the entry's math type. */
static syn_status choose(syn__cuda *cu, int kind, const conv_problem *pb, const algo_entry **out) {
    syn__cudnn_state *st = cu->dnn_state;
    for (int i = 0; i < st->n_cache; i++) {
        const algo_entry *e = &st->cache[i];
        if (e->kind == kind && memcmp(&e->pb, pb, sizeof *pb) == 0) {
            SYN_CUDNN_TRY(cudnnSetConvolutionMathType(st->conv, e->math));
            *out = e;
            return SYN_OK;
        }
    }
    algo_entry e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.pb = *pb;
    e.algo = -1;
    perf ranked[16];
    int count = 0;
    SYN_TRY(rank(cu, kind, ranked, &count));
    for (int i = 0; i < count && e.algo < 0; i++) {
        const perf *p = &ranked[i];
        if (p->status != CUDNN_STATUS_SUCCESS || !math_allowed(cu, p->math)) continue;
        if (cu->deterministic && p->det != CUDNN_DETERMINISTIC) continue;
        cudnnMathType_t m = cu->tf32 ? p->math : CUDNN_FMA_MATH;
        size_t bytes = 0;
        if (cudnnSetConvolutionMathType(st->conv, m) != CUDNN_STATUS_SUCCESS) continue;
        if (ws_size(cu, kind, p->algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > SYN_CONV_WS_LIMIT) continue;
        e.algo = p->algo;
        e.ws = bytes;
        e.math = m;
    }
    if (e.algo < 0) {
        e.algo = kind == KIND_FWD ? (int)CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM
                 : kind == KIND_BWD_DATA ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_1
                                         : (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
        e.math = base_math(cu);
        SYN_CUDNN_TRY(cudnnSetConvolutionMathType(st->conv, e.math));
        cudnnStatus_t ds = ws_size(cu, kind, e.algo, &e.ws);
        if (ds != CUDNN_STATUS_SUCCESS)
            return syn__error(SYN_ERR_UNSUPPORTED,
                              "cuda:%d: conv %s: no cuDNN algorithm for input (%d,%d,%d,%d), filter (%d,%d,%d,%d), "
                              "groups %d, stride %dx%d, padding %dx%d, dilation %dx%d: %s",
                              cu->index, kind_name[kind], pb->n, pb->c, pb->h, pb->w, pb->k, pb->c / pb->g, pb->r,
                              pb->s, pb->g, pb->sh, pb->sw, pb->ph, pb->pw, pb->dh, pb->dw, cudnnGetErrorString(ds));
    }
    SYN_CUDNN_TRY(cudnnSetConvolutionMathType(st->conv, e.math));
    if (getenv("SYN_CONV_VERBOSE"))
        fprintf(stderr, "synapse: conv %s (%d,%d,%d,%d) * (%d,%d,%d,%d) g%d: algo %d, workspace %zu, math %d\n",
                kind_name[kind], pb->n, pb->c, pb->h, pb->w, pb->k, pb->c / pb->g, pb->r, pb->s, pb->g, e.algo, e.ws,
                (int)e.math);
    int slot = st->n_cache < SYN_CONV_CACHE ? st->n_cache++ : (st->evict++ % SYN_CONV_CACHE);
    st->cache[slot] = e;
    *out = &st->cache[slot];
    return SYN_OK;
}

/* The scratch an algorithm needs (NULL for none). */
static syn_status workspace(syn__cuda *cu, const algo_entry *e, void **ws) {
    *ws = NULL;
    if (e->ws == 0) return SYN_OK;
    return cu->be.workspace(&cu->be, e->ws, ws);
}

/* v = alpha conv(u, f) + beta v */
static syn_status run_fwd(syn__cuda *cu, const conv_problem *pb, const float *u, const float *f, float *v, float beta) {
    const algo_entry *e;
    void *ws;
    const float alpha = 1.0f;
    SYN_TRY(choose(cu, KIND_FWD, pb, &e));
    SYN_TRY(workspace(cu, e, &ws));
    syn__cudnn_state *st = cu->dnn_state;
    SYN_CUDNN_TRY(cudnnConvolutionForward(cu->dnn, &alpha, st->u, u, st->f, f, st->conv,
                                          (cudnnConvolutionFwdAlgo_t)e->algo, ws, e->ws, &beta, st->v, v));
    return SYN_OK;
}

/* du = alpha (d conv / d u)^T dv + beta du */
static syn_status run_bwd_data(syn__cuda *cu, const conv_problem *pb, const float *f, const float *dv, float *du,
                               float beta) {
    const algo_entry *e;
    void *ws;
    const float alpha = 1.0f;
    SYN_TRY(choose(cu, KIND_BWD_DATA, pb, &e));
    SYN_TRY(workspace(cu, e, &ws));
    syn__cudnn_state *st = cu->dnn_state;
    SYN_CUDNN_TRY(cudnnConvolutionBackwardData(cu->dnn, &alpha, st->f, f, st->v, dv, st->conv,
                                               (cudnnConvolutionBwdDataAlgo_t)e->algo, ws, e->ws, &beta, st->u, du));
    return SYN_OK;
}

/* df = alpha (d conv / d f)^T (u, dv) + beta df */
static syn_status run_bwd_filter(syn__cuda *cu, const conv_problem *pb, const float *u, const float *dv, float *df,
                                 float beta) {
    const algo_entry *e;
    void *ws;
    const float alpha = 1.0f;
    SYN_TRY(choose(cu, KIND_BWD_FILTER, pb, &e));
    SYN_TRY(workspace(cu, e, &ws));
    syn__cudnn_state *st = cu->dnn_state;
    SYN_CUDNN_TRY(cudnnConvolutionBackwardFilter(cu->dnn, &alpha, st->u, u, st->v, dv, st->conv,
                                                 (cudnnConvolutionBwdFilterAlgo_t)e->algo, ws, e->ws, &beta, st->f,
                                                 df));
    return SYN_OK;
}

/* ---- problems ------------------------------------------------------------- */

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* The cuDNN convolution behind node n.
 * conv2d:            x: (N, C, H, W)  w: (K, C/G, R, S)  ->  y: (N, K, P, Q)
 *                    u = x, filter = w, v = y.
 * conv_transpose2d:  x: (N, C, H, W)  w: (C, K/G, R, S)  ->  y: (N, K, P, Q)
 *                    is the adjoint (input gradient) of the convolution
 *                    u = y-shaped (N, K, P, Q) -> v = x-shaped (N, C, H, W)
 *                    with filter w read as cuDNN's (k = C, c/g = K/G, R, S)
 *                    and the same padding, stride, dilation and groups; the
 *                    output padding only makes P, Q larger, which that
 *                    convolution's floor division absorbs while it is below
 *                    the stride (else SYN_ERR_UNSUPPORTED). */
static syn_status problem_of(const syn_node *n, bool transposed, conv_problem *pb) {
    const syn_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape, *y = &n->shape;
    int64_t v[16] = {x->dim[0], transposed ? y->dim[1] : x->dim[1], transposed ? y->dim[2] : x->dim[2],
                     transposed ? y->dim[3] : x->dim[3], transposed ? x->dim[1] : y->dim[1], w->dim[2], w->dim[3],
                     transposed ? x->dim[2] : y->dim[2], transposed ? x->dim[3] : y->dim[3], n->i[SYN_A_PH], n->i[SYN_A_PW],
                     n->i[SYN_A_SH], n->i[SYN_A_SW], n->i[SYN_A_DH], n->i[SYN_A_DW], n->i[SYN_A_GROUPS]};
    int iv[16];
    for (int k = 0; k < 16; k++) {
        if (!fits_int(v[k])) return syn__error(SYN_ERR_UNSUPPORTED, "%s: a size exceeds cuDNN's int range", syn__op_name[n->op]);
        iv[k] = (int)v[k];
    }
    if (syn_shape_numel(x) > INT_MAX || syn_shape_numel(w) > INT_MAX || syn_shape_numel(y) > INT_MAX)
        return syn__error(SYN_ERR_UNSUPPORTED, "%s: a tensor has more than %d elements (cuDNN's limit)",
                          syn__op_name[n->op], INT_MAX);
    *pb = conv_problem{iv[0], iv[1], iv[2], iv[3], iv[4], iv[5], iv[6], iv[7], iv[8],
                       iv[9], iv[10], iv[11], iv[12], iv[13], iv[14], iv[15]};
    if (pb->g < 1 || pb->c % pb->g || pb->k % pb->g)
        return syn__error(SYN_ERR_ARG, "%s: channels not divisible by groups %d", syn__op_name[n->op], pb->g);
    if (transposed) {
        /* The floor division absorbs an output padding below the stride only;
         * one below the dilation but not the stride (allowed, as in PyTorch)
         * gives cuDNN another x extent. */
        int64_t hc = ((int64_t)pb->h + 2 * pb->ph - (int64_t)pb->dh * (pb->r - 1) - 1) / pb->sh + 1;
        int64_t wc = ((int64_t)pb->w + 2 * pb->pw - (int64_t)pb->dw * (pb->s - 1) - 1) / pb->sw + 1;
        if (hc != pb->p || wc != pb->q)
            return syn__error(SYN_ERR_UNSUPPORTED,
                              "conv_transpose2d on cuda: output padding (%lld, %lld) not below the stride (%d, %d) "
                              "is not supported (x (%d,%d,%d,%d) -> y (%d,%d,%d,%d)); the CPU backend runs it",
                              (long long)n->i[SYN_A_OPH], (long long)n->i[SYN_A_OPW], pb->sh, pb->sw, pb->n, pb->c,
                              pb->p, pb->q, pb->n, pb->k, pb->h, pb->w);
    }
    return SYN_OK;
}

/* ---- the ops (dnn_lock held) ----------------------------------------------- */

/* y = conv(x, w) (beta 0: y is not read) */
static syn_status conv2d_fwd_locked(syn__cuda *cu, syn_node *n, const conv_problem *pb) {
    SYN_TRY(set_problem(cu, pb));
    return run_fwd(cu, pb, syn__din(n, 0), syn__din(n, 1), (float *)n->value, 0.0f);
}

/* dx += conv_bwd_data(w, dy);  dw += conv_bwd_filter(x, dy)  (beta 1) */
static syn_status conv2d_bwd_locked(syn__cuda *cu, syn_node *n, const conv_problem *pb) {
    float *dx = syn__dgrad(n, 0), *dw = syn__dgrad(n, 1);
    const float *dy = (const float *)n->grad;
    SYN_TRY(set_problem(cu, pb));
    if (dx) SYN_TRY(run_bwd_data(cu, pb, syn__din(n, 1), dy, dx, syn__grad_add(n, 0) ? 1.0f : 0.0f)); /* 0: fresh */
    if (dw) SYN_TRY(run_bwd_filter(cu, pb, syn__din(n, 0), dy, dw, syn__grad_add(n, 1) ? 1.0f : 0.0f));
    return SYN_OK;
}

/* y = conv_bwd_data(w, x): x plays the convolution's output gradient, y its
 * input gradient (beta 0: y is not read) */
static syn_status convt_fwd_locked(syn__cuda *cu, syn_node *n, const conv_problem *pb) {
    SYN_TRY(set_problem(cu, pb));
    return run_bwd_data(cu, pb, syn__din(n, 1), syn__din(n, 0), (float *)n->value, 0.0f);
}

/* y = A^T x with A the convolution u -> v (linear in u) and v = A(u, w)
 * bilinear in (u, w), so with <A(u, w), x> = <u, y(x, w)>:
 *   dx = A dy = conv(dy, w): a forward convolution with dy as its input u and
 *        dx as its output v (beta 1: accumulate);
 *   dw: <dy, y(x, dw)> = <A(dy, dw), x>, the filter gradient of that same
 *        convolution with dy as its input u and x as its output gradient dv
 *        (beta 1). */
static syn_status convt_bwd_locked(syn__cuda *cu, syn_node *n, const conv_problem *pb) {
    float *dx = syn__dgrad(n, 0), *dw = syn__dgrad(n, 1);
    const float *dy = (const float *)n->grad;
    SYN_TRY(set_problem(cu, pb));
    if (dx) SYN_TRY(run_fwd(cu, pb, dy, syn__din(n, 1), dx, syn__grad_add(n, 0) ? 1.0f : 0.0f)); /* 0: fresh */
    if (dw) SYN_TRY(run_bwd_filter(cu, pb, dy, syn__din(n, 0), dw, syn__grad_add(n, 1) ? 1.0f : 0.0f));
    return SYN_OK;
}

typedef syn_status (*locked_fn)(syn__cuda *cu, syn_node *n, const conv_problem *pb);

/* Runs f under dnn_lock with the handle ready. */
static syn_status with_dnn(syn_backend *be, syn_node *n, bool transposed, locked_fn f) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    conv_problem pb;
    SYN_TRY(problem_of(n, transposed, &pb));
    pthread_mutex_lock(&cu->dnn_lock);
    syn_status s = dnn_ready(cu);
    if (s == SYN_OK) s = f(cu, n, &pb);
    pthread_mutex_unlock(&cu->dnn_lock);
    return s;
}

/* y: (N, K, P, Q) += b;  db += sum over n, p, q of dy */
static syn_status bias_fwd(syn_backend *be, syn_node *n) {
    if (n->n_in < 3) return SYN_OK;
    const syn_shape *y = &n->shape;
    return bias_add(syn__cu(be), (float *)n->value, syn__din(n, 2), y->dim[0], y->dim[1], y->dim[2] * y->dim[3]);
}

static syn_status bias_bwd(syn_backend *be, syn_node *n) {
    if (n->n_in < 3 || !syn__dgrad(n, 2)) return SYN_OK;
    const syn_shape *y = &n->shape;
    return bias_grad(syn__cu(be), (const float *)n->grad, syn__dgrad(n, 2), y->dim[0], y->dim[1],
                     y->dim[2] * y->dim[3], syn__grad_add(n, 2));
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

syn_status syn__cuda_conv2d_fwd(syn_backend *be, syn_node *n) {
    SYN_TRY(with_dnn(be, n, false, conv2d_fwd_locked));
    return bias_fwd(be, n);
}

syn_status syn__cuda_conv2d_bwd(syn_backend *be, syn_node *n) {
    if (syn__dgrad(n, 0) || syn__dgrad(n, 1)) SYN_TRY(with_dnn(be, n, false, conv2d_bwd_locked));
    else SYN_CUDA_ENTER(be);
    return bias_bwd(be, n);
}

syn_status syn__cuda_conv_transpose2d_fwd(syn_backend *be, syn_node *n) {
    SYN_TRY(with_dnn(be, n, true, convt_fwd_locked));
    return bias_fwd(be, n);
}

syn_status syn__cuda_conv_transpose2d_bwd(syn_backend *be, syn_node *n) {
    if (syn__dgrad(n, 0) || syn__dgrad(n, 1)) SYN_TRY(with_dnn(be, n, true, convt_bwd_locked));
    else SYN_CUDA_ENTER(be);
    return bias_bwd(be, n);
}

} /* extern "C" */
