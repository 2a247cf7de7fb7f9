/* The CUDA emulator's cuDNN: the legacy convolution API with naive loops and
 * double accumulation, and strict checks of descriptors, workspace, pointer
 * ranges, math type (FMA unless SYN_ALLOW_TF32=1) and determinism (no
 * non-deterministic algorithm under SYN_DETERMINISTIC=1), so that the
 * backend's use of the API is tested. The algorithm rankings include an
 * unsupported entry and a tensor-op one, to exercise the backend's filters. */
#include "cudnn.h"
#include <initializer_list>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

struct syn_emu_dnn {
    cudaStream_t stream;
};
struct syn_emu_tensor {
    int n, c, h, w;
    bool set;
};
struct syn_emu_filter {
    int k, c, r, s;
    bool set;
};
struct syn_emu_conv {
    int ph, pw, sh, sw, dh, dw, g;
    cudnnMathType_t math;
    bool set;
};

static void die(const char *m) {
    fprintf(stderr, "cuda emulator: cudnn: %s\n", m);
    abort();
}

extern "C" {
size_t cudnnGetVersion(void) {
    return 91400;
}
const char *cudnnGetErrorString(cudnnStatus_t s) {
    switch (s) {
    case CUDNN_STATUS_SUCCESS:
        return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_BAD_PARAM:
        return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED:
        return "CUDNN_STATUS_NOT_SUPPORTED";
    default:
        return "CUDNN_STATUS_INTERNAL_ERROR";
    }
}
static thread_local char last_msg[256];
void cudnnGetLastErrorString(char *m, size_t n) {
    snprintf(m, n, "%s", last_msg);
    last_msg[0] = 0;
}
static cudnnStatus_t bad(const char *m) {
    snprintf(last_msg, sizeof last_msg, "%s", m);
    fprintf(stderr, "cuda emulator: cudnn bad param: %s\n", m);
    return CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    *h = new syn_emu_dnn{nullptr};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
    delete h;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    *d = new syn_emu_tensor{};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f, cudnnDataType_t t, int n,
                                         int c, int h, int w) {
    if (f != CUDNN_TENSOR_NCHW || t != CUDNN_DATA_FLOAT || n < 1 || c < 1 || h < 1 || w < 1) return bad("tensor4d");
    *d = syn_emu_tensor{n, c, h, w, true};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    *d = new syn_emu_filter{};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int k,
                                         int c, int h, int w) {
    if (f != CUDNN_TENSOR_NCHW || t != CUDNN_DATA_FLOAT || k < 1 || c < 1 || h < 1 || w < 1) return bad("filter4d");
    *d = syn_emu_filter{k, c, h, w, true};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    *d = new syn_emu_conv{0, 0, 1, 1, 1, 1, 1, CUDNN_DEFAULT_MATH, false};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v, int dh,
                                              int dw, cudnnConvolutionMode_t m, cudnnDataType_t t) {
    if (ph < 0 || pw < 0 || u < 1 || v < 1 || dh < 1 || dw < 1 || m != CUDNN_CROSS_CORRELATION || t != CUDNN_DATA_FLOAT)
        return bad("conv2d desc");
    d->ph = ph;
    d->pw = pw;
    d->sh = u;
    d->sw = v;
    d->dh = dh;
    d->dw = dw;
    d->set = true;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int g) {
    if (g < 1) return bad("groups");
    d->g = g;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t outdim(const syn_emu_conv *c, const syn_emu_tensor *x, const syn_emu_filter *f, int *n, int *k,
                            int *p, int *q) {
    if (!c->set || !x->set || !f->set) return bad("descriptor not set");
    if (f->c * c->g != x->c) return bad("filter c * groups != input channels");
    if (f->k % c->g) return bad("filter k not divisible by groups");
    int eh = (f->r - 1) * c->dh + 1, ew = (f->s - 1) * c->dw + 1;
    if (x->h + 2 * c->ph < eh || x->w + 2 * c->pw < ew) return bad("window larger than padded input");
    *n = x->n;
    *k = f->k;
    *p = (x->h + 2 * c->ph - eh) / c->sh + 1;
    *q = (x->w + 2 * c->pw - ew) / c->sw + 1;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t c,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t f,
                                                    int *n, int *k, int *p, int *q) {
    return outdim(c, x, f, n, k, p, q);
}
static cudnnStatus_t check(const syn_emu_conv *c, const syn_emu_tensor *x, const syn_emu_filter *f,
                           const syn_emu_tensor *y) {
    int n, k, p, q;
    cudnnStatus_t s = outdim(c, x, f, &n, &k, &p, &q);
    if (s) return s;
    if (n != y->n || k != y->c || p != y->h || q != y->w) return bad("output dims differ from the forward output dim");
    return CUDNN_STATUS_SUCCESS;
}
} /* extern "C" */

/* One row of an algorithm ranking, for any of the three perf structs. */
struct perf_row {
    int algo;
    cudnnStatus_t status;
    cudnnDeterminism_t det;
    cudnnMathType_t math;
    float time;
};

/* The first req rows into perf. */
template <class P>
static cudnnStatus_t ranking(std::initializer_list<perf_row> rows, int req, int *ret, P *perf) {
    int k = 0;
    for (const perf_row &r : rows) {
        if (k == req) break;
        P p = {};
        p.algo = (decltype(p.algo))r.algo;
        p.status = r.status;
        p.determinism = r.det;
        p.mathType = r.math;
        p.time = r.time;
        perf[k++] = p;
    }
    *ret = k;
    return CUDNN_STATUS_SUCCESS;
}

static const cudnnStatus_t OK = CUDNN_STATUS_SUCCESS;
static const cudnnDeterminism_t DET = CUDNN_DETERMINISTIC, NONDET = CUDNN_NON_DETERMINISTIC;

/* Timed rankings (cudnnFind*): fastest first, with a failed entry (as an
 * algorithm whose buffers did not fit) and a tensor-op entry to filter. With
 * SYN_EMU_FIND_FAIL=1 the timing run fails as if its own cudaMalloc had: the
 * runtime's last error is left set, as the real library leaves it. */
template <class P>
static cudnnStatus_t timed(int req, int *ret, P *perf, int fast, int slow, cudnnDeterminism_t fast_det) {
    if (syn_emu_capture_refuses("cudnnFind")) { /* it times runs: synchronises and allocates */
        *ret = 0;
        return CUDNN_STATUS_INTERNAL_ERROR;
    }
    if (getenv("SYN_EMU_FIND_FAIL") && !strcmp(getenv("SYN_EMU_FIND_FAIL"), "1")) {
        void *p = nullptr;
        (void)cudaMalloc(&p, ~(size_t)0 >> 1); /* fails: cudaErrorMemoryAllocation is the last error now */
        *ret = 0;
        return CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
    }
    return ranking({{7, CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED, NONDET, CUDNN_DEFAULT_MATH, 0.0f},
                    {fast, OK, DET, CUDNN_TENSOR_OP_MATH, 0.5f},
                    {fast, OK, fast_det, CUDNN_FMA_MATH, 1.0f},
                    {slow, OK, DET, CUDNN_FMA_MATH, 2.0f}},
                   req, ret, perf);
}

extern "C" {
// Heuristic rankings: exercise the caller's filters (not supported, tensor-op math, non-deterministic).
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t c,
                                                     const cudnnTensorDescriptor_t y, const int req, int *ret,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf) {
    cudnnStatus_t s = check(c, x, w, y);
    return s ? s
             : ranking({{5, CUDNN_STATUS_NOT_SUPPORTED, NONDET, CUDNN_DEFAULT_MATH, 0.0f},
                        {1, OK, DET, CUDNN_TENSOR_OP_MATH, 0.0f},
                        {1, OK, DET, CUDNN_FMA_MATH, 0.0f},
                        {0, OK, DET, CUDNN_FMA_MATH, 0.0f}},
                       req, ret, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t c,
                                                          const cudnnTensorDescriptor_t dx, const int req, int *ret,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    cudnnStatus_t s = check(c, dx, w, dy);
    return s ? s : ranking({{0, OK, NONDET, CUDNN_DEFAULT_MATH, 0.0f}, {1, OK, DET, CUDNN_FMA_MATH, 0.0f}},
                           req, ret, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t c,
                                                            const cudnnFilterDescriptor_t dw, const int req, int *ret,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    cudnnStatus_t s = check(c, x, dw, dy);
    return s ? s : ranking({{0, OK, NONDET, CUDNN_FMA_MATH, 0.0f}, {1, OK, DET, CUDNN_FMA_MATH, 0.0f}},
                           req, ret, perf);
}
cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                   const cudnnFilterDescriptor_t w, const cudnnConvolutionDescriptor_t c,
                                                   const cudnnTensorDescriptor_t y, const int req, int *ret,
                                                   cudnnConvolutionFwdAlgoPerf_t *perf) {
    syn_emu_trace("cudnnFindConvolutionForwardAlgorithm");
    cudnnStatus_t s = check(c, x, w, y);
    return s ? s : timed(req, ret, perf, 0, 1, DET);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t, const cudnnFilterDescriptor_t w,
                                                        const cudnnTensorDescriptor_t dy,
                                                        const cudnnConvolutionDescriptor_t c,
                                                        const cudnnTensorDescriptor_t dx, const int req, int *ret,
                                                        cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    syn_emu_trace("cudnnFindConvolutionBackwardDataAlgorithm");
    cudnnStatus_t s = check(c, dx, w, dy);
    return s ? s : timed(req, ret, perf, 0, 1, NONDET);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t c,
                                                          const cudnnFilterDescriptor_t dw, const int req, int *ret,
                                                          cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    syn_emu_trace("cudnnFindConvolutionBackwardFilterAlgorithm");
    cudnnStatus_t s = check(c, x, dw, dy);
    return s ? s : timed(req, ret, perf, 0, 1, NONDET);
}
static size_t need(int kind, int algo) { // the emulated workspace needs; (size_t)-1 = not supported
    static const size_t t[3][2] = {{0, 4096}, {0, 2048}, {0, 8192}};
    return algo >= 0 && algo < 2 ? t[kind][algo] : (size_t)-1;
}
static cudnnStatus_t ws(int kind, int algo, size_t *b) {
    size_t n = need(kind, algo);
    if (n == (size_t)-1) return CUDNN_STATUS_NOT_SUPPORTED;
    *b = n;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                      const cudnnFilterDescriptor_t w,
                                                      const cudnnConvolutionDescriptor_t c,
                                                      const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t a,
                                                      size_t *b) {
    cudnnStatus_t s = check(c, x, w, y);
    if (s) return s;
    if (c->math == CUDNN_TENSOR_OP_MATH) return CUDNN_STATUS_NOT_SUPPORTED;
    return ws(0, a, b);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, const cudnnFilterDescriptor_t w,
                                                           const cudnnTensorDescriptor_t dy,
                                                           const cudnnConvolutionDescriptor_t c,
                                                           const cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
    cudnnStatus_t s = check(c, dx, w, dy);
    if (s) return s;
    return ws(1, a, b);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                             const cudnnTensorDescriptor_t dy,
                                                             const cudnnConvolutionDescriptor_t c,
                                                             const cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
    cudnnStatus_t s = check(c, x, dw, dy);
    if (s) return s;
    return ws(2, a, b);
}

static size_t tsize(const syn_emu_tensor *t) {
    return (size_t)t->n * t->c * t->h * t->w;
}
static size_t fsize(const syn_emu_filter *f) {
    return (size_t)f->k * f->c * f->r * f->s;
}
static cudnnStatus_t pre(cudnnHandle_t h, const syn_emu_conv *c, int kind, int algo, void *wsp, size_t wsb) {
    if (!h->stream) die("handle not bound to a stream");
    const char *tf = getenv("SYN_ALLOW_TF32");
    bool tf32 = tf && !strcmp(tf, "1");
    if (!tf32 && c->math != CUDNN_FMA_MATH) die("math type is not CUDNN_FMA_MATH while TF32 is off");
    const char *det = getenv("SYN_DETERMINISTIC");
    if (det && !strcmp(det, "1") && algo == 0 && kind != 0) die("non-deterministic algorithm in deterministic mode");
    size_t n = need(kind, algo);
    if (n == (size_t)-1) return CUDNN_STATUS_NOT_SUPPORTED;
    if (wsb < n) return bad("workspace too small");
    if (n) {
        syn_emu_check_range(wsp, n, "cudnn workspace");
        syn_emu_enqueue([wsp, n] { memset(wsp, 0x7f, n); }); /* the algorithm's scratch */
    }
    return CUDNN_STATUS_SUCCESS;
}
} // extern "C"
/* The one loop nest: every tap (n, k, p, q, c, r, s) whose input pixel lies
 * inside the image, as fn(y index, x index, w index); the row offsets are
 * hoisted out of the innermost loop. */
template <class F>
static void each_tap(const syn_emu_conv *cv, const syn_emu_tensor *x, const syn_emu_filter *f, const syn_emu_tensor *y,
                     F fn) {
    const int kg = f->k / cv->g;
    for (int n = 0; n < y->n; n++)
        for (int k = 0; k < y->c; k++) {
            const int g = k / kg;
            for (int p = 0; p < y->h; p++)
                for (int q = 0; q < y->w; q++) {
                    const size_t yi = (((size_t)n * y->c + k) * y->h + p) * y->w + q;
                    for (int c = 0; c < f->c; c++)
                        for (int r = 0; r < f->r; r++) {
                            const int ih = p * cv->sh - cv->ph + r * cv->dh;
                            if (ih < 0 || ih >= x->h) continue;
                            const size_t xrow = (((size_t)n * x->c + g * f->c + c) * x->h + ih) * x->w;
                            const size_t wrow = (((size_t)k * f->c + c) * f->r + r) * f->s;
                            int iw = q * cv->sw - cv->pw;
                            for (int s = 0; s < f->s; s++, iw += cv->dw)
                                if (iw >= 0 && iw < x->w) fn(yi, xrow + iw, wrow + s);
                        }
                }
        }
}
static void blend(float *out, const std::vector<double> &acc, float alpha, float beta) {
    for (size_t i = 0; i < acc.size(); i++)
        out[i] = (float)(alpha * acc[i] + (beta != 0.0f ? (double)beta * out[i] : 0.0));
}
/* Queues out = alpha * (the taps summed by `add`) + beta * out; the
 * descriptors are copied now (cuDNN reads them at the call). */
template <class F>
static void queue_conv(syn_emu_conv c, syn_emu_tensor x, syn_emu_filter f, syn_emu_tensor y, float *out, size_t n,
                       float alpha, float beta, F add) {
    syn_emu_enqueue([=] {
        std::vector<double> acc(n, 0.0);
        each_tap(&c, &x, &f, &y, [&](size_t yi, size_t xi, size_t wi) { add(acc, yi, xi, wi); });
        blend(out, acc, alpha, beta);
    });
}

extern "C" {
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t c, cudnnConvolutionFwdAlgo_t a, void *wsp,
                                      size_t wsb, const void *beta, const cudnnTensorDescriptor_t yd, void *y) {
    cudnnStatus_t s = check(c, xd, wd, yd);
    if (s) return s;
    if ((s = pre(h, c, 0, a, wsp, wsb))) return s;
    syn_emu_trace("cudnnConvolutionForward algo %d workspace %zu", (int)a, wsb);
    syn_emu_check_range(x, tsize(xd) * 4, "conv fwd x");
    syn_emu_check_range(w, fsize(wd) * 4, "conv fwd w");
    syn_emu_check_range(y, tsize(yd) * 4, "conv fwd y");
    const float *X = (const float *)x, *W = (const float *)w;
    queue_conv(*c, *xd, *wd, *yd, (float *)y, tsize(yd), *(const float *)alpha, *(const float *)beta,
               [X, W](std::vector<double> &acc, size_t yi, size_t xi, size_t wi) { acc[yi] += (double)X[xi] * W[wi]; });
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdDataAlgo_t a,
                                           void *wsp, size_t wsb, const void *beta, const cudnnTensorDescriptor_t dxd,
                                           void *dx) {
    cudnnStatus_t s = check(c, dxd, wd, dyd);
    if (s) return s;
    if ((s = pre(h, c, 1, a, wsp, wsb))) return s;
    syn_emu_trace("cudnnConvolutionBackwardData algo %d workspace %zu", (int)a, wsb);
    syn_emu_check_range(dy, tsize(dyd) * 4, "conv bwd-data dy");
    syn_emu_check_range(w, fsize(wd) * 4, "conv bwd-data w");
    syn_emu_check_range(dx, tsize(dxd) * 4, "conv bwd-data dx");
    const float *DY = (const float *)dy, *W = (const float *)w;
    queue_conv(
        *c, *dxd, *wd, *dyd, (float *)dx, tsize(dxd), *(const float *)alpha, *(const float *)beta,
        [DY, W](std::vector<double> &acc, size_t yi, size_t xi, size_t wi) { acc[xi] += (double)DY[yi] * W[wi]; });
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdFilterAlgo_t a,
                                             void *wsp, size_t wsb, const void *beta, const cudnnFilterDescriptor_t dwd,
                                             void *dw) {
    cudnnStatus_t s = check(c, xd, dwd, dyd);
    if (s) return s;
    if ((s = pre(h, c, 2, a, wsp, wsb))) return s;
    syn_emu_trace("cudnnConvolutionBackwardFilter algo %d workspace %zu", (int)a, wsb);
    syn_emu_check_range(x, tsize(xd) * 4, "conv bwd-filter x");
    syn_emu_check_range(dy, tsize(dyd) * 4, "conv bwd-filter dy");
    syn_emu_check_range(dw, fsize(dwd) * 4, "conv bwd-filter dw");
    const float *X = (const float *)x, *DY = (const float *)dy;
    queue_conv(
        *c, *xd, *dwd, *dyd, (float *)dw, fsize(dwd), *(const float *)alpha, *(const float *)beta,
        [X, DY](std::vector<double> &acc, size_t yi, size_t xi, size_t wi) { acc[wi] += (double)DY[yi] * X[xi]; });
    return CUDNN_STATUS_SUCCESS;
}
}
