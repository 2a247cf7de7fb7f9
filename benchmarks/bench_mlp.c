/* bench_mlp: one full training step of a 784-1024-1024-10 MLP (ReLU, cross-
 * entropy, SGD lr 0.01, no momentum) and SGEMM 1024^3 / 4096^3, on the CPU or
 * a GPU. Verifies first (graph matmul against a naive double loop; the MLP's
 * loss falls over 5 steps and, off the CPU, matches the CPU's), then times:
 * warm-up, then clock_gettime around each step with syn_device_synchronize
 * before the clock is read; median and min of the per-iteration times.
 *
 *   bench_mlp [--device cpu|cuda[:N]] [--warmup N] [--iters N] [--gemm-iters N]
 *             [--batch N] [--only mlp|sgemm] [--threads N] [--json]
 *
 * Exit status: 0 ok, 1 verification or run failure, 2 bad usage or the device
 * is not available. benchmarks/pytorch/bench_mlp.py is the PyTorch twin. */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include <synapse/synapse.h>

/* OpenBLAS's thread controls, weak so that the program still links against
 * another CBLAS (they are then NULL and reported as unknown). */
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int num_threads) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));
extern int openblas_get_parallel(void) __attribute__((weak));

/* How OpenBLAS threads: a pthreads build keeps its own thread pool beside
 * OpenMP's, and the two contend for the cores. */
static const char *blas_parallel(void) {
    if (!openblas_get_parallel) return "unknown";
    switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "openmp";
    }
    return "unknown";
}

enum { IN_F = 784, H1 = 1024, H2 = 1024, OUT_F = 10 };

typedef struct {
    syn_device dev;
    char dev_name[32];
    int warmup, iters, gemm_iters; /* gemm_iters 0: by size */
    int batch;                     /* 0: 128 and 1024 */
    int run_mlp, run_gemm;
    int threads;                   /* 0: leave OpenMP/OpenBLAS as they are */
    int json;
} opts;

static opts O;

/* ---- small helpers ------------------------------------------------------- */

#define CHECK(expr)                                                                                  \
    do {                                                                                             \
        syn_status s_ = (expr);                                                                      \
        if (s_ != SYN_OK) {                                                                          \
            fprintf(stderr, "bench_mlp: %s failed: %s: %s\n", #expr, syn_status_str(s_), syn_last_error()); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts t in place; returns the median. */
static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* xorshift64*: fixed data, the same on every run */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}
static void fill_rand(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = frand();
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "bench_mlp: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static int blas_threads(void) { return openblas_get_num_threads ? openblas_get_num_threads() : -1; }

/* ---- the MLP ------------------------------------------------------------- */

typedef struct {
    syn_params *ps;
    syn_graph *g;
    syn_node *x, *y, *logits, *loss;
    syn_optim *opt;
} mlp;

static void mlp_build(syn_device dev, int batch, uint64_t seed, mlp *m) {
    static const int64_t hidden[2] = {H1, H2};
    CHECK(syn_params_create(dev, seed, &m->ps));
    CHECK(syn_graph_create(m->ps, &m->g));
    m->x = syn_input(m->g, "x", SYN_F32, syn_shape2(batch, IN_F));
    m->y = syn_input(m->g, "y", SYN_I32, syn_shape1(batch));
    m->logits = syn_mlp(m->g, m->x, hidden, 2, OUT_F, SYN_ACT_RELU, 0.0f);
    m->loss = syn_cross_entropy(m->g, m->logits, m->y);
    CHECK(syn_graph_status(m->g));
    CHECK(syn_graph_compile(m->g, dev, NULL));
    syn_optim_config cfg = syn_optim_defaults(SYN_OPTIM_SGD);
    cfg.lr = 0.01f;
    cfg.momentum = 0.0f;
    CHECK(syn_optim_create(m->ps, &cfg, &m->opt));
}

static void mlp_free(mlp *m) {
    syn_optim_free(m->opt);
    syn_graph_free(m->g);
    syn_params_free(m->ps);
}

/* Fixed random inputs (U(-1,1)) and labels; fed once, they stay in the graph. */
static void mlp_feed(mlp *m, int batch) {
    float *x = xmalloc((size_t)batch * IN_F * sizeof *x);
    int32_t *y = xmalloc((size_t)batch * sizeof *y);
    fill_rand(x, (size_t)batch * IN_F);
    for (int i = 0; i < batch; i++) y[i] = (int32_t)((frand() + 1.0f) * 0.5f * OUT_F) % OUT_F;
    CHECK(syn_graph_feed(m->g, m->x, x, syn_shape2(batch, IN_F)));
    CHECK(syn_graph_feed(m->g, m->y, y, syn_shape1(batch)));
    free(x);
    free(y);
}

/* The timed unit: zero_grad, forward, backward, optimizer step. */
static void mlp_step(mlp *m) {
    CHECK(syn_params_zero_grad(m->ps));
    CHECK(syn_graph_forward(m->g));
    CHECK(syn_graph_backward(m->g, m->loss));
    CHECK(syn_optim_step(m->opt));
}

/* forward 2B(784*1024 + 1024*1024 + 1024*10); backward ~ 2x forward */
static double mlp_flops(int batch) {
    double fwd = 2.0 * batch * ((double)IN_F * H1 + (double)H1 * H2 + (double)H2 * OUT_F);
    return 3.0 * fwd;
}

/* ---- verification --------------------------------------------------------- */

/* The graph's matmul against a naive double loop, on an odd-sized product. */
static int verify_matmul(syn_device dev, double *err_out) {
    const int M = 33, K = 65, N = 17;
    float *a = xmalloc(sizeof(float) * M * K), *b = xmalloc(sizeof(float) * K * N), *c = xmalloc(sizeof(float) * M * N);
    fill_rand(a, (size_t)M * K);
    fill_rand(b, (size_t)K * N);
    for (int i = 0; i < M * N; i++) c[i] = NAN; /* poisoned: every entry must be written */
    syn_graph *g;
    CHECK(syn_graph_create(NULL, &g));
    syn_node *na = syn_input(g, "a", SYN_F32, syn_shape2(M, K)), *nb = syn_input(g, "b", SYN_F32, syn_shape2(K, N));
    syn_node *nc = syn_matmul(g, na, nb);
    syn_compile_opts co = {.inference = true};
    CHECK(syn_graph_status(g));
    CHECK(syn_graph_compile(g, dev, &co));
    CHECK(syn_graph_feed(g, na, a, syn_shape2(M, K)));
    CHECK(syn_graph_feed(g, nb, b, syn_shape2(K, N)));
    CHECK(syn_graph_forward(g));
    CHECK(syn_device_synchronize(dev));
    CHECK(syn_graph_read(g, nc, c, sizeof(float) * M * N));
    double maxerr = 0, maxref = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)a[i * K + k] * b[k * N + j];
            double e = fabs(s - c[i * N + j]);
            if (!(e <= maxerr)) maxerr = e; /* NaN sticks */
            if (fabs(s) > maxref) maxref = fabs(s);
        }
    syn_graph_free(g);
    free(a);
    free(b);
    free(c);
    *err_out = maxerr / (maxref > 0 ? maxref : 1);
    /* fp32 accumulation of 65 terms; a GPU may use TF32 (10-bit mantissa) */
    double tol = dev.type == SYN_DEVICE_CPU ? 1e-5 : 2e-3;
    return *err_out <= tol;
}

/* 5 SGD steps on one fixed batch: the loss must be finite, start near ln(10)
 * and fall; off the CPU the losses must also match the CPU's. */
#define VSTEPS 5
static void mlp_losses(syn_device dev, float *loss) {
    mlp m;
    uint64_t saved = rng_state;
    rng_state = 0x1234567ull; /* same data on every device */
    mlp_build(dev, 64, 42, &m);
    mlp_feed(&m, 64);
    rng_state = saved;
    for (int s = 0; s < VSTEPS; s++) {
        CHECK(syn_params_zero_grad(m.ps));
        CHECK(syn_graph_forward(m.g));
        CHECK(syn_graph_read_scalar(m.g, m.loss, &loss[s]));
        CHECK(syn_graph_backward(m.g, m.loss));
        CHECK(syn_optim_step(m.opt));
    }
    CHECK(syn_device_synchronize(dev));
    mlp_free(&m);
}

static int verify_mlp(syn_device dev, float *loss, char *why, size_t wsize) {
    mlp_losses(dev, loss);
    for (int s = 0; s < VSTEPS; s++)
        if (!isfinite(loss[s])) {
            snprintf(why, wsize, "loss at step %d is %g", s, loss[s]);
            return 0;
        }
    if (loss[0] < 1.5f || loss[0] > 3.5f) {
        snprintf(why, wsize, "first loss %.4f is far from ln(10) = 2.3026", loss[0]);
        return 0;
    }
    if (!(loss[VSTEPS - 1] < loss[0])) {
        snprintf(why, wsize, "loss did not fall: %.5f -> %.5f", loss[0], loss[VSTEPS - 1]);
        return 0;
    }
    if (dev.type != SYN_DEVICE_CPU) {
        float ref[VSTEPS];
        mlp_losses(syn_cpu(), ref);
        /* each loss close (a GPU may round products differently), and the
         * fall over 5 steps - what a wrong gradient changes - within 20% */
        for (int s = 0; s < VSTEPS; s++)
            if (fabsf(loss[s] - ref[s]) > 5e-3f * fabsf(ref[s])) {
                snprintf(why, wsize, "step %d: loss %.6f on the device, %.6f on the CPU", s, loss[s], ref[s]);
                return 0;
            }
        float fall = loss[0] - loss[VSTEPS - 1], ref_fall = ref[0] - ref[VSTEPS - 1];
        if (fabsf(fall - ref_fall) > 0.2f * fabsf(ref_fall)) {
            snprintf(why, wsize, "the loss fell by %.6f over %d steps on the device, by %.6f on the CPU", fall,
                     VSTEPS - 1, ref_fall);
            return 0;
        }
    }
    return 1;
}

/* ---- output -------------------------------------------------------------- */

static void env_json(char *buf, size_t size) {
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    size_t n = 0;
    buf[0] = 0;
    if (ct) n += (size_t)snprintf(buf + n, size - n, ",\"openblas_coretype\":\"%s\"", ct);
    if (l2 && n < size) snprintf(buf + n, size - n, ",\"openblas_l2_size\":\"%s\"", l2);
}

/* JSON lines: printed at once with --json, else kept for after the table. */
static char *json_lines[16];
static int n_json;

static void emit_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit_json(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (O.json) {
        fputs(buf, stdout);
        fflush(stdout);
    } else if (n_json < (int)(sizeof json_lines / sizeof *json_lines)) {
        json_lines[n_json] = xmalloc(strlen(buf) + 1);
        strcpy(json_lines[n_json++], buf);
    }
}

static void print_row(const char *bench, const char *what, int iters, double med, double mn, double flops) {
    if (O.json) return;
    double g = flops / (med * 1e-3) * 1e-9;
    printf("%-10s %-26s %5d %11.3f %10.3f %11.1f %12.3e\n", bench, what, iters, med, mn, g, flops);
    fflush(stdout);
}

/* ---- the benchmarks ------------------------------------------------------- */

static void bench_mlp_batch(int batch) {
    mlp m;
    mlp_build(O.dev, batch, 1, &m);
    mlp_feed(&m, batch);
    for (int i = 0; i < O.warmup; i++) mlp_step(&m);
    CHECK(syn_device_synchronize(O.dev));
    double *t = xmalloc(sizeof(double) * (size_t)O.iters);
    for (int i = 0; i < O.iters; i++) {
        double t0 = now_ms();
        mlp_step(&m);
        CHECK(syn_device_synchronize(O.dev));
        t[i] = now_ms() - t0;
    }
    float loss;
    CHECK(syn_graph_read_scalar(m.g, m.loss, &loss));
    if (!isfinite(loss)) {
        fprintf(stderr, "bench_mlp: the loss became %g during timing (batch %d)\n", loss, batch);
        exit(1);
    }
    double med = median(t, O.iters), mn = t[0], flops = mlp_flops(batch);
    char what[64], env[160];
    snprintf(what, sizeof what, "batch %d", batch);
    print_row("mlp_step", what, O.iters, med, mn, flops);
    env_json(env, sizeof env);
    emit_json("{\"bench\":\"mlp_step\",\"impl\":\"synapse\",\"device\":\"%s\",\"batch\":%d,\"iters\":%d,\"warmup\":%d,"
              "\"median_ms\":%.4f,\"min_ms\":%.4f,\"flops\":%.6e,\"gflops\":%.2f,\"threads\":%d,\"blas_threads\":%d,"
              "\"final_loss\":%.5f,\"blas_parallel\":\"%s\"%s}\n",
              O.dev_name, batch, O.iters, O.warmup, med, mn, flops, flops / (med * 1e-3) * 1e-9, omp_get_max_threads(),
              blas_threads(), loss, blas_parallel(), env);
    free(t);
    mlp_free(&m);
}

/* Sampled entries of C = A B against double dot products. */
static double gemm_check(const float *a, const float *b, const float *c, int n) {
    double worst = 0;
    uint64_t saved = rng_state;
    for (int s = 0; s < 64; s++) {
        int i = (int)((frand() + 1.0f) * 0.5f * n) % n, j = (int)((frand() + 1.0f) * 0.5f * n) % n;
        double ref = 0, mag = 0;
        for (int k = 0; k < n; k++) {
            ref += (double)a[(size_t)i * n + k] * b[(size_t)k * n + j];
            mag += fabs((double)a[(size_t)i * n + k] * b[(size_t)k * n + j]);
        }
        double e = fabs(ref - c[(size_t)i * n + j]) / (mag > 0 ? mag : 1);
        if (!(e <= worst)) worst = e;
    }
    rng_state = saved;
    return worst;
}

static void gemm_report(const char *path, int n, int iters, int warmup, double *t, double err) {
    double med = median(t, iters), mn = t[0], flops = 2.0 * n * n * (double)n;
    char what[64], env[160];
    snprintf(what, sizeof what, "%d^3 (%s)", n, path);
    print_row("sgemm", what, iters, med, mn, flops);
    env_json(env, sizeof env);
    emit_json("{\"bench\":\"sgemm\",\"impl\":\"synapse\",\"path\":\"%s\",\"device\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,"
              "\"iters\":%d,\"warmup\":%d,\"median_ms\":%.4f,\"min_ms\":%.4f,\"flops\":%.6e,\"gflops\":%.2f,"
              "\"threads\":%d,\"blas_threads\":%d,\"max_rel_err\":%.2e,\"blas_parallel\":\"%s\"%s}\n",
              path, O.dev_name, n, n, n, iters, warmup, med, mn, flops, flops / (med * 1e-3) * 1e-9,
              omp_get_max_threads(), blas_threads(), err, blas_parallel(), env);
}

static void bench_gemm(int n) {
    int cpu = O.dev.type == SYN_DEVICE_CPU;
    int iters = O.gemm_iters > 0 ? O.gemm_iters : cpu ? (n >= 4096 ? 3 : 10) : (n >= 4096 ? 20 : 50);
    int warmup = cpu && n >= 4096 ? (O.warmup < 1 ? O.warmup : 1) : O.warmup;
    size_t nn = (size_t)n * n;
    float *a = xmalloc(nn * sizeof(float)), *b = xmalloc(nn * sizeof(float)), *c = xmalloc(nn * sizeof(float));
    fill_rand(a, nn);
    fill_rand(b, nn);
    double *t = xmalloc(sizeof(double) * (size_t)iters);

    /* the library's own path: a graph with one matmul of two inputs, forward only */
    syn_graph *g;
    CHECK(syn_graph_create(NULL, &g));
    syn_node *na = syn_input(g, "a", SYN_F32, syn_shape2(n, n)), *nb = syn_input(g, "b", SYN_F32, syn_shape2(n, n));
    syn_node *nc = syn_matmul(g, na, nb);
    syn_compile_opts co = {.inference = true};
    CHECK(syn_graph_status(g));
    CHECK(syn_graph_compile(g, O.dev, &co));
    CHECK(syn_graph_feed(g, na, a, syn_shape2(n, n)));
    CHECK(syn_graph_feed(g, nb, b, syn_shape2(n, n)));
    for (int i = 0; i < warmup; i++) CHECK(syn_graph_forward(g));
    CHECK(syn_device_synchronize(O.dev));
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        CHECK(syn_graph_forward(g));
        CHECK(syn_device_synchronize(O.dev));
        t[i] = now_ms() - t0;
    }
    CHECK(syn_graph_read(g, nc, c, nn * sizeof(float)));
    syn_graph_free(g);
    double err = gemm_check(a, b, c, n);
    double tol = cpu ? 1e-5 : 2e-3;
    if (!(err <= tol)) {
        fprintf(stderr, "bench_mlp: VERIFY FAILED: graph sgemm %d^3: sampled relative error %.3e > %.0e\n", n, err, tol);
        exit(1);
    }
    gemm_report("graph", n, iters, warmup, t, err);

    /* raw cblas_sgemm on the host, for reference */
    if (cpu) {
        for (int i = 0; i < warmup; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        for (int i = 0; i < iters; i++) {
            double t0 = now_ms();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            t[i] = now_ms() - t0;
        }
        gemm_report("cblas", n, iters, warmup, t, gemm_check(a, b, c, n));
    }
    free(t);
    free(a);
    free(b);
    free(c);
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_mlp [--device cpu|cuda[:N]] [--warmup N] [--iters N] [--gemm-iters N]\n"
            "                 [--batch N] [--only mlp|sgemm] [--threads N] [--json]\n"
            "  MLP 784-1024-1024-10 training step (batches 128 and 1024 unless --batch) and\n"
            "  SGEMM 1024^3, 4096^3. Defaults: cpu, warm-up 5, 30 iterations per step;\n"
            "  SGEMM 10/3 iterations on the CPU (1024/4096), 50/20 on a GPU.\n"
            "  --threads N sets OpenMP and OpenBLAS threads (default: as the environment says).\n");
}

static int int_arg(int argc, char **argv, int *i, int lo) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "bench_mlp: %s needs a value\n", argv[*i]);
        exit(2);
    }
    char *end;
    long v = strtol(argv[++*i], &end, 10);
    if (*end || v < lo || v > 1000000) {
        fprintf(stderr, "bench_mlp: bad value '%s' for %s\n", argv[*i], argv[*i - 1]);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv) {
    const char *device = "cpu";
    O.warmup = 5;
    O.iters = 30;
    O.run_mlp = O.run_gemm = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(a, "--warmup")) O.warmup = int_arg(argc, argv, &i, 0);
        else if (!strcmp(a, "--iters")) O.iters = int_arg(argc, argv, &i, 1);
        else if (!strcmp(a, "--gemm-iters")) O.gemm_iters = int_arg(argc, argv, &i, 1);
        else if (!strcmp(a, "--batch")) O.batch = int_arg(argc, argv, &i, 1);
        else if (!strcmp(a, "--threads")) O.threads = int_arg(argc, argv, &i, 1);
        else if (!strcmp(a, "--json")) O.json = 1;
        else if (!strcmp(a, "--only") && i + 1 < argc) {
            const char *w = argv[++i];
            O.run_mlp = !strcmp(w, "mlp");
            O.run_gemm = !strcmp(w, "sgemm");
            if (!O.run_mlp && !O.run_gemm) {
                fprintf(stderr, "bench_mlp: --only takes mlp or sgemm, not '%s'\n", w);
                return 2;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_mlp: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }

    /* the device must exist before anything is timed */
    if (syn_device_parse(device, &O.dev) != SYN_OK) {
        fprintf(stderr, "bench_mlp: %s\n", syn_last_error());
        return 2;
    }
    syn_device_str(O.dev, O.dev_name, sizeof O.dev_name);
    if (!syn_backend_built(O.dev.type)) {
        fprintf(stderr, "bench_mlp: device %s is not available: this build of Synapse has no CUDA backend "
                        "(configure with -DSYN_CUDA=ON on a machine with nvcc, cuBLAS and cuDNN)\n", O.dev_name);
        return 2;
    }
    int count = syn_device_count(O.dev.type);
    if (O.dev.type == SYN_DEVICE_CUDA && O.dev.index >= count) {
        fprintf(stderr, "bench_mlp: device %s is not available: %d CUDA device(s) found\n", O.dev_name, count);
        return 2;
    }
    if (O.threads > 0) {
        omp_set_num_threads(O.threads);
        if (openblas_set_num_threads) openblas_set_num_threads(O.threads);
    }
    char desc[512];
    if (syn_device_describe(O.dev, desc, sizeof desc) != SYN_OK) {
        fprintf(stderr, "bench_mlp: device %s is not available: %s\n", O.dev_name, syn_last_error());
        return 2;
    }

    if (!O.json) {
        const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
        printf("Synapse %s bench_mlp on %s: %s\n", syn_version(), O.dev_name, desc);
        printf("threads: OpenMP %d, OpenBLAS %d", omp_get_max_threads(), blas_threads());
        if (openblas_get_config) printf(" (%s; core %s)", openblas_get_config(), openblas_get_corename ? openblas_get_corename() : "?");
        printf("; OpenBLAS threading: %s", blas_parallel());
        if (!strcmp(blas_parallel(), "pthreads") && omp_get_max_threads() > 1 && blas_threads() > 1)
            printf("\nnote: OpenBLAS (pthreads) and OpenMP keep two thread pools that contend for the cores;"
                   " the OpenMP build of OpenBLAS shares one");
        printf("\nenv: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s OMP_NUM_THREADS=%s OPENBLAS_NUM_THREADS=%s\n",
               ct ? ct : "(unset)", l2 ? l2 : "(unset)", getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)",
               getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "(unset)");
    }

    /* verify before timing */
    double merr;
    if (!verify_matmul(O.dev, &merr)) {
        fprintf(stderr, "bench_mlp: VERIFY FAILED: graph matmul 33x65x17 on %s: relative error %.3e against a naive loop\n",
                O.dev_name, merr);
        return 1;
    }
    float loss[VSTEPS];
    char why[256];
    if (O.run_mlp && !verify_mlp(O.dev, loss, why, sizeof why)) {
        fprintf(stderr, "bench_mlp: VERIFY FAILED: MLP training on %s: %s\n", O.dev_name, why);
        return 1;
    }
    if (!O.json) {
        printf("verify: matmul 33x65x17 vs naive double loop: rel err %.2e ok", merr);
        if (O.run_mlp) {
            printf("; MLP loss over %d SGD steps (batch 64):", VSTEPS);
            for (int s = 0; s < VSTEPS; s++) printf(" %.4f", loss[s]);
            printf(" ok%s", O.dev.type == SYN_DEVICE_CPU ? "" : " (matches the CPU)");
        }
        printf("\n\nFLOPs per MLP step = 3 x forward, forward = 2*B*(784*1024 + 1024*1024 + 1024*10);"
               " SGEMM = 2*M*N*K. GFLOP/s from the median.\n");
        printf("%-10s %-26s %5s %11s %10s %11s %12s\n", "bench", "case", "iters", "median ms", "min ms", "GFLOP/s", "FLOPs");
    }

    if (O.run_mlp) {
        if (O.batch > 0) bench_mlp_batch(O.batch);
        else {
            bench_mlp_batch(128);
            bench_mlp_batch(1024);
        }
    }
    if (O.run_gemm) {
        bench_gemm(1024);
        bench_gemm(4096);
    }
    if (!O.json) {
        printf("\n");
        for (int i = 0; i < n_json; i++) fputs(json_lines[i], stdout);
    }
    return 0;
}
