/* Op-level benchmark workloads: SGEMM (GFLOP/s, with raw cblas_sgemm as the
 * CPU ceiling), two 3x3 convolutions of ResNet-18 forward + backward
 * (GFLOP/s), elementwise add and a full sum (GB/s, with a device copy of the
 * same buffer as the ceiling). Each verifies its device's result against a
 * naive double-precision loop before it is timed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "../core/internal.h"
#include "bench_internal.h"

#define BTRY(expr)                           \
    do {                                     \
        syn_status bs_ = (expr);             \
        if (bs_ != SYN_OK) return bs_;       \
    } while (0)

/* ---- SGEMM --------------------------------------------------------------------------- */

typedef struct {
    int n;
    syn_device dev;
    float *a, *b, *c;
    syn_graph *g;
    syn_node *na, *nb, *nc;
} gemm_state;

static void gemm_teardown(void *p) {
    gemm_state *s = p;
    if (!s) return;
    syn_graph_free(s->g);
    free(s->a);
    free(s->b);
    free(s->c);
    free(s);
}

/* C = A B, A and B (n, n) U(-1, 1): a graph with one matmul, forward only */
static syn_status gemm_setup(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg, void **state,
                             syn_bench_result *r) {
    int n = *(const int *)w->arg;
    if (cfg->quick) {
        r->reduced = true;
        snprintf(r->note, sizeof r->note, "--quick: %d^3 instead of %d^3", n / 8, n);
        n /= 8;
    }
    gemm_state *s = syn__calloc(1, sizeof *s, "bench sgemm");
    if (!s) return SYN_ERR_OOM;
    *state = s;
    s->n = n;
    s->dev = dev;
    size_t nn = (size_t)n * n;
    s->a = syn__malloc(nn * sizeof(float), "bench sgemm");
    s->b = syn__malloc(nn * sizeof(float), "bench sgemm");
    s->c = syn__malloc(nn * sizeof(float), "bench sgemm");
    if (!s->a || !s->b || !s->c) return SYN_ERR_OOM;
    syn__brng rng = {0x5EED0000ull + (uint64_t)n};
    syn__brng_fill(&rng, s->a, nn);
    syn__brng_fill(&rng, s->b, nn);
    BTRY(syn_graph_create(NULL, &s->g));
    s->na = syn_input(s->g, "a", SYN_F32, syn_shape2(n, n));
    s->nb = syn_input(s->g, "b", SYN_F32, syn_shape2(n, n));
    s->nc = syn_matmul(s->g, s->na, s->nb);
    BTRY(syn_graph_status(s->g));
    syn_compile_opts co = {.inference = true};
    BTRY(syn_graph_compile(s->g, dev, &co));
    BTRY(syn_graph_feed(s->g, s->na, s->a, syn_shape2(n, n)));
    BTRY(syn_graph_feed(s->g, s->nb, s->b, syn_shape2(n, n)));
    snprintf(r->config, sizeof r->config, "C = A B, %dx%d fp32, graph matmul (%s)", n, n,
             dev.type == SYN_DEVICE_CPU ? "OpenBLAS" : "cuBLAS");
    r->items_per_step = 2.0 * n * (double)n * n;
    snprintf(r->item, sizeof r->item, "FLOP");
    snprintf(r->rate_unit, sizeof r->rate_unit, "GFLOP/s");
    return SYN_OK;
}

static syn_status gemm_step(void *p) {
    gemm_state *s = p;
    return syn_graph_forward(s->g);
}

/* 64 sampled entries of C against double dot products, relative to the sum
 * of |terms| (fp32 accumulation; a GPU may use TF32 when SYN_ALLOW_TF32=1) */
static syn_status gemm_verify(void *p, syn_device dev, const syn_bench_config *cfg, syn_bench_result *r, bool *ok) {
    (void)cfg;
    gemm_state *s = p;
    const int n = s->n;
    for (size_t i = 0; i < (size_t)n * n; i++) s->c[i] = NAN;
    BTRY(syn_graph_forward(s->g));
    BTRY(syn_device_synchronize(dev));
    BTRY(syn_graph_read(s->g, s->nc, s->c, (size_t)n * n * sizeof(float)));
    syn__brng rng = {77};
    double worst = 0;
    for (int k = 0; k < 64; k++) {
        int i = syn__brng_int(&rng, n), j = syn__brng_int(&rng, n);
        double ref = 0, mag = 0;
        for (int q = 0; q < n; q++) {
            double t = (double)s->a[(size_t)i * n + q] * s->b[(size_t)q * n + j];
            ref += t;
            mag += fabs(t);
        }
        double e = fabs(ref - s->c[(size_t)i * n + j]) / (mag > 0 ? mag : 1);
        if (!(e <= worst)) worst = e; /* NaN sticks */
    }
    double tol = dev.type == SYN_DEVICE_CPU ? 1e-5 : 2e-3;
    *ok = worst <= tol;
    snprintf(r->verify, sizeof r->verify, "64 sampled entries vs double: max rel err %.2e (tol %.0e)", worst, tol);
    return SYN_OK;
}

/* CPU ceiling: raw cblas_sgemm on the same host arrays, median of 3 */
static syn_status gemm_finish(void *p, syn_bench_result *r) {
    gemm_state *s = p;
    if (s->dev.type != SYN_DEVICE_CPU) return SYN_OK; /* the graph's matmul is cublasSgemm itself */
    const int n = s->n;
    double t[3];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, s->a, n, s->b, n, 0.0f, s->c, n);
    for (int i = 0; i < 3; i++) {
        double t0 = syn__bench_now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, s->a, n, s->b, n, 0.0f, s->c, n);
        t[i] = syn__bench_now_ms() - t0;
    }
    double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
    double med = t[2] < lo ? lo : (t[2] > hi ? hi : t[2]);
    r->ceiling = r->items_per_step / (med * 1e-3) * 1e-9;
    snprintf(r->ceiling_what, sizeof r->ceiling_what, "raw cblas_sgemm, median of 3");
    return SYN_OK;
}

/* ---- convolutions of ResNet-18, forward + backward ------------------------------------- */

typedef struct {
    int C, H, batch_gpu, batch_cpu;
} conv_arg;

typedef struct {
    int N, C, H;
    syn_params *ps;
    syn_graph *g;
    syn_node *x, *w, *y, *loss;
} conv_state;

static void conv_free(conv_state *s) {
    if (!s) return;
    syn_graph_free(s->g);
    syn_params_free(s->ps);
    free(s);
}
static void conv_teardown(void *p) { conv_free(p); }

/* x: (N, C, H, H) (a parameter, so that dx is computed as inside a network)
 * w: (C, C, 3, 3), stride 1, pad 1, no bias  ->  y: (N, C, H, H); loss = sum(y) */
static syn_status conv_build(syn_device dev, int N, int C, int H, conv_state **out) {
    conv_state *s = syn__calloc(1, sizeof *s, "bench conv");
    if (!s) return SYN_ERR_OOM;
    *out = s;
    s->N = N;
    s->C = C;
    s->H = H;
    BTRY(syn_params_create(dev, 11, &s->ps));
    BTRY(syn_graph_create(s->ps, &s->g));
    syn_init xi = {SYN_INIT_UNIFORM, -1.0f, 1.0f, 0}, wi = {SYN_INIT_FANIN_UNIFORM, 0, 0, 0};
    s->x = syn_param(s->g, "x", syn_shape4(N, C, H, H), &xi);
    s->w = syn_param(s->g, "w", syn_shape4(C, C, 3, 3), &wi);
    syn_conv_params cp = {.pad_h = 1, .pad_w = 1};
    s->y = syn_conv2d_op(s->g, s->x, s->w, NULL, &cp);
    s->loss = syn_sum(s->g, s->y, SYN_ALL_AXES, false);
    BTRY(syn_graph_status(s->g));
    BTRY(syn_graph_keep(s->g, s->y));
    return syn_graph_compile(s->g, dev, NULL);
}

static syn_status conv_setup(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg, void **state,
                             syn_bench_result *r) {
    const conv_arg *a = w->arg;
    int N = a->batch_gpu;
    if (cfg->quick) {
        N = 2;
        r->reduced = true;
        snprintf(r->note, sizeof r->note, "--quick: batch 2 instead of %d", a->batch_gpu);
    } else if (dev.type == SYN_DEVICE_CPU) {
        N = a->batch_cpu;
        r->reduced = true;
        snprintf(r->note, sizeof r->note, "CPU: batch %d instead of %d", N, a->batch_gpu);
    }
    conv_state *s = NULL;
    syn_status st = conv_build(dev, N, a->C, a->H, &s);
    *state = s;
    if (st != SYN_OK) return st;
    snprintf(r->config, sizeof r->config, "conv3x3 %d->%d on %dx%d, stride 1 pad 1, batch %d: fwd + dx + dw", a->C,
             a->C, a->H, a->H, N);
    r->batch = N;
    r->items_per_step = 3.0 * 2.0 * N * (double)a->C * a->C * 9.0 * a->H * a->H;
    snprintf(r->item, sizeof r->item, "FLOP");
    snprintf(r->rate_unit, sizeof r->rate_unit, "GFLOP/s");
    return SYN_OK;
}

static syn_status conv_step(void *p) {
    conv_state *s = p;
    BTRY(syn_graph_forward(s->g));
    return syn_graph_backward(s->g, s->loss);
}

static syn_status read_param(syn_params *ps, const char *name, float *val, float *grad, size_t n) {
    syn_tensor *v, *g;
    BTRY(syn_params_find(ps, name, &v, &g));
    if (val) BTRY(syn_tensor_read(v, val, n * sizeof(float)));
    if (grad) BTRY(syn_tensor_read(g, grad, n * sizeof(float)));
    return SYN_OK;
}

/* max |got - ref| / max |ref| */
static double rel_err(const float *got, const double *ref, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (!(d <= e)) e = d;
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return e / (m > 0 ? m : 1);
}

/* One sample (N = 1) of the same layer on the device, fwd and bwd, against
 * naive double loops: y = conv(x, w); with dy = 1: dw[k,c,r,s] = sum x[c,
 * p+r-1, q+s-1], dx[c,h,w] = sum over the (k, r, s) that reach (h, w) of w. */
static syn_status conv_verify(void *p, syn_device dev, const syn_bench_config *cfg, syn_bench_result *r, bool *ok) {
    (void)cfg;
    const conv_state *big = p;
    const int C = big->C, H = big->H;
    conv_state *s = NULL;
    syn_status st = conv_build(dev, 1, C, H, &s);
    size_t nx = (size_t)C * H * H, nw = (size_t)C * C * 9;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *y = malloc(nx * sizeof *y);
    float *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw);
    double *ry = calloc(nx, sizeof *ry), *rdx = calloc(nx, sizeof *rdx), *rdw = calloc(nw, sizeof *rdw);
    if (st == SYN_OK && (!x || !w || !y || !dx || !dw || !ry || !rdx || !rdw))
        st = syn__error(SYN_ERR_OOM, "bench conv verify");
    if (st == SYN_OK) st = syn_params_zero_grad(s->ps);
    if (st == SYN_OK) st = syn_graph_forward(s->g);
    if (st == SYN_OK) st = syn_graph_backward(s->g, s->loss);
    if (st == SYN_OK) st = syn_device_synchronize(dev);
    if (st == SYN_OK) st = syn_graph_read(s->g, s->y, y, nx * sizeof *y);
    if (st == SYN_OK) st = read_param(s->ps, "x", x, dx, nx);
    if (st == SYN_OK) st = read_param(s->ps, "w", w, dw, nw);
    if (st == SYN_OK) {
        for (int k = 0; k < C; k++)
            for (int c = 0; c < C; c++)
                for (int rr = 0; rr < 3; rr++)
                    for (int ss = 0; ss < 3; ss++) {
                        double wv = w[((size_t)(k * C + c) * 3 + rr) * 3 + ss], acc_w = 0;
                        for (int i = 0; i < H; i++) {
                            int hi = i + rr - 1;
                            if (hi < 0 || hi >= H) continue;
                            for (int j = 0; j < H; j++) {
                                int wj = j + ss - 1;
                                if (wj < 0 || wj >= H) continue;
                                double xv = x[((size_t)c * H + hi) * H + wj];
                                ry[((size_t)k * H + i) * H + j] += wv * xv;
                                acc_w += xv;
                                rdx[((size_t)c * H + hi) * H + wj] += wv;
                            }
                        }
                        rdw[((size_t)(k * C + c) * 3 + rr) * 3 + ss] = acc_w;
                    }
        double ey = rel_err(y, ry, nx), edx = rel_err(dx, rdx, nx), edw = rel_err(dw, rdw, nw);
        double tol = dev.type == SYN_DEVICE_CPU ? 1e-4 : 2e-3;
        *ok = ey <= tol && edx <= tol && edw <= tol;
        snprintf(r->verify, sizeof r->verify, "batch-1 layer vs naive double loops: y %.1e, dx %.1e, dw %.1e (tol %.0e)",
                 ey, edx, edw, tol);
    }
    conv_free(s);
    free(x), free(w), free(y), free(dx), free(dw), free(ry), free(rdx), free(rdw);
    return st;
}

/* ---- elementwise add, full sum, and the copy ceiling ------------------------------------- */

typedef struct {
    int64_t n;
    syn_device dev;
    bool sum; /* else add */
    float *a, *b;
    syn_graph *g;
    syn_node *na, *nb, *out;
    syn_tensor *t0, *t1; /* the copy ceiling */
} stream_state;

static void stream_teardown(void *p) {
    stream_state *s = p;
    if (!s) return;
    syn_graph_free(s->g);
    syn_tensor_free(s->t0);
    syn_tensor_free(s->t1);
    free(s->a);
    free(s->b);
    free(s);
}

static syn_status stream_setup(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg, void **state,
                               syn_bench_result *r) {
    const bool sum = strcmp((const char *)w->arg, "sum") == 0;
    int64_t n = (int64_t)1 << 24;
    if (cfg->quick) {
        n >>= 4;
        r->reduced = true;
        snprintf(r->note, sizeof r->note, "--quick: 1M floats instead of 16M");
    }
    stream_state *s = syn__calloc(1, sizeof *s, "bench stream");
    if (!s) return SYN_ERR_OOM;
    *state = s;
    s->n = n;
    s->dev = dev;
    s->sum = sum;
    s->a = syn__malloc((size_t)n * sizeof(float), "bench stream");
    s->b = syn__malloc((size_t)n * sizeof(float), "bench stream");
    if (!s->a || !s->b) return SYN_ERR_OOM;
    syn__brng rng = {0xADD5ull};
    for (int64_t i = 0; i < n; i++) s->a[i] = sum ? 0.5f + 0.5f * syn__brng_f(&rng) : syn__brng_f(&rng); /* sum: (0, 1) */
    syn__brng_fill(&rng, s->b, (size_t)n);
    BTRY(syn_graph_create(NULL, &s->g));
    s->na = syn_input(s->g, "a", SYN_F32, syn_shape1(n));
    if (sum) {
        s->out = syn_sum(s->g, s->na, SYN_ALL_AXES, false);
    } else {
        s->nb = syn_input(s->g, "b", SYN_F32, syn_shape1(n));
        s->out = syn_add(s->g, s->na, s->nb);
    }
    BTRY(syn_graph_status(s->g));
    syn_compile_opts co = {.inference = true};
    BTRY(syn_graph_compile(s->g, dev, &co));
    BTRY(syn_graph_feed(s->g, s->na, s->a, syn_shape1(n)));
    if (!sum) BTRY(syn_graph_feed(s->g, s->nb, s->b, syn_shape1(n)));
    snprintf(r->config, sizeof r->config, sum ? "y = sum(a), a: %lld fp32" : "c = a + b, %lld fp32 each", (long long)n);
    r->items_per_step = (sum ? 1.0 : 3.0) * 4.0 * (double)n;
    snprintf(r->item, sizeof r->item, "bytes");
    snprintf(r->rate_unit, sizeof r->rate_unit, "GB/s");
    return SYN_OK;
}

static syn_status stream_step(void *p) {
    stream_state *s = p;
    return syn_graph_forward(s->g);
}

/* add: every entry equals a + b exactly; sum: against a double sum, relative
 * 1e-5 (positive data, so a float running sum's drift shows) */
static syn_status stream_verify(void *p, syn_device dev, const syn_bench_config *cfg, syn_bench_result *r, bool *ok) {
    (void)cfg;
    stream_state *s = p;
    BTRY(syn_graph_forward(s->g));
    BTRY(syn_device_synchronize(dev));
    if (s->sum) {
        float got;
        BTRY(syn_graph_read_scalar(s->g, s->out, &got));
        double ref = 0;
        for (int64_t i = 0; i < s->n; i++) ref += s->a[i];
        double e = fabs(got - ref) / ref;
        *ok = e <= 1e-5;
        snprintf(r->verify, sizeof r->verify, "sum %.6g vs double %.6g: rel err %.1e (tol 1e-05)", (double)got, ref, e);
        return SYN_OK;
    }
    float *c = syn__malloc((size_t)s->n * sizeof(float), "bench add verify");
    if (!c) return SYN_ERR_OOM;
    for (int64_t i = 0; i < s->n; i++) c[i] = NAN;
    syn_status st = syn_graph_read(s->g, s->out, c, (size_t)s->n * sizeof(float));
    int64_t bad = 0;
    for (int64_t i = 0; st == SYN_OK && i < s->n; i++) bad += c[i] != s->a[i] + s->b[i];
    free(c);
    *ok = st == SYN_OK && bad == 0;
    snprintf(r->verify, sizeof r->verify, "all %lld entries vs a + b on the host: %lld differ", (long long)s->n,
             (long long)bad);
    return st;
}

/* ceiling: syn_tensor_copy of n floats on the device (read + write), median of 5 */
static syn_status stream_finish(void *p, syn_bench_result *r) {
    stream_state *s = p;
    BTRY(syn_tensor_create(s->dev, SYN_F32, syn_shape1(s->n), &s->t0));
    BTRY(syn_tensor_create(s->dev, SYN_F32, syn_shape1(s->n), &s->t1));
    BTRY(syn_tensor_copy(s->t1, s->t0)); /* first touch */
    double t[5];
    syn_device_timer *clock = NULL;
    BTRY(syn_device_timer_create(s->dev, &clock));
    syn_status st = SYN_OK;
    for (int i = 0; i < 5 && st == SYN_OK; i++) {
        st = syn_device_timer_start(clock);
        if (st == SYN_OK) st = syn_tensor_copy(s->t1, s->t0);
        if (st == SYN_OK) st = syn_device_timer_stop(clock, &t[i]);
    }
    syn_device_timer_free(clock);
    BTRY(st);
    for (int i = 1; i < 5; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    r->ceiling = 8.0 * (double)s->n / (t[2] * 1e-3) * 1e-9;
    snprintf(r->ceiling_what, sizeof r->ceiling_what, "device copy of %lld floats (r+w)", (long long)s->n);
    return SYN_OK;
}

/* ---- the registry ------------------------------------------------------------------------- */

static const int n1024 = 1024, n4096 = 4096;
static const conv_arg conv64 = {64, 32, 256, 32}, conv256 = {256, 8, 256, 32};

const syn_bench_workload syn__bench_ops[] = {
    {"sgemm_1024", "op", "SGEMM 1024^3 through a graph matmul (GFLOP/s; CPU ceiling: raw cblas_sgemm)", gemm_setup,
     gemm_verify, gemm_step, gemm_finish, gemm_teardown, 2, 10, 5, 50, &n1024},
    {"sgemm_4096", "op", "SGEMM 4096^3 through a graph matmul (GFLOP/s; CPU ceiling: raw cblas_sgemm)", gemm_setup,
     gemm_verify, gemm_step, gemm_finish, gemm_teardown, 1, 3, 3, 20, &n4096},
    {"conv3x3_64x32", "op", "ResNet-18 stage-1 conv3x3 64->64 at 32x32, fwd + bwd, batch 256 (CPU 32)", conv_setup,
     conv_verify, conv_step, NULL, conv_teardown, 1, 5, 3, 30, &conv64},
    {"conv3x3_256x8", "op", "ResNet-18 stage-3 conv3x3 256->256 at 8x8, fwd + bwd, batch 256 (CPU 32)", conv_setup,
     conv_verify, conv_step, NULL, conv_teardown, 1, 5, 3, 30, &conv256},
    {"add_16m", "op", "elementwise c = a + b on 16M floats (GB/s; ceiling: a device copy)", stream_setup,
     stream_verify, stream_step, stream_finish, stream_teardown, 2, 10, 5, 50, "add"},
    {"sum_16m", "op", "full sum of 16M floats (GB/s; ceiling: a device copy)", stream_setup, stream_verify,
     stream_step, stream_finish, stream_teardown, 2, 10, 5, 50, "sum"},
};
const int syn__bench_n_ops = (int)(sizeof syn__bench_ops / sizeof syn__bench_ops[0]);
