#define _XOPEN_SOURCE 700
#include "testutil.h"
#include <ftw.h>
#include <sys/stat.h>
#include <math.h>
#include <stdarg.h>
#include <png.h>
#include <zlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t tu_seed(void) {
    static uint64_t seed;
    static int init;
    if (!init) {
        const char *e = getenv("SYN_TEST_SEED");
        seed = e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
        init = 1;
        fprintf(stderr, "test seed: %llu (set SYN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    }
    return seed;
}

tu_rng tu_rng_make(uint64_t salt) {
    tu_rng r = {tu_seed() ^ (salt * 0x9E3779B97F4A7C15ull)};
    return r;
}

uint64_t tu_next(tu_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float tu_uniform(tu_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((tu_next(r) >> 40) * (1.0 / 16777216.0));
}

void tu_fill(tu_rng *r, float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = tu_uniform(r, lo, hi);
}

double tu_close_ratio(const float *a, const double *ref, int64_t n, double atol, double rtol) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(ref[i])) return INFINITY;
        double r = fabs((double)a[i] - ref[i]) / (atol + rtol * fabs(ref[i]));
        if (r > worst) worst = r;
    }
    return worst;
}

int tu_run(Suite *s) {
    (void)tu_seed();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int tu_run_nofork(Suite *s) {
    (void)tu_seed();
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *tu_source_path(const char *rel, char *buf, size_t size) {
    const char *root = getenv("SYN_SOURCE_DIR");
    snprintf(buf, size, "%s/%s", root ? root : ".", rel);
    return buf;
}

/* The error of got against want: by norm (||got - want|| / ||want||) or by
 * the largest element (max|got - want| / max|want|). NaN, or an infinity
 * where the other has none or the other sign, is infinite. */
static double rel_err(const float *got, const float *want, int64_t n, bool by_norm) {
    double diff = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i]) || isinf(got[i]) != isinf(want[i])) return INFINITY;
        if (isinf(want[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        double d = (double)got[i] - want[i];
        if (by_norm) {
            diff += d * d;
            mag += (double)want[i] * want[i];
        } else {
            diff = fmax(diff, fabs(d));
            mag = fmax(mag, fabs((double)want[i]));
        }
    }
    if (!by_norm) return diff / (mag > 1e-6 ? mag : 1e-6);
    if (diff == 0) return 0;
    return sqrt(diff) / sqrt(mag > 1e-60 ? mag : 1e-60);
}

double tu_rel_err(const float *got, const float *want, int64_t n) { return rel_err(got, want, n, true); }

double tu_max_rel_err(const float *got, const float *want, int64_t n) { return rel_err(got, want, n, false); }

const char *tu_cli_path(char *buf, size_t size, const char *who) {
    const char *dir = getenv("SYN_BINARY_DIR");
    snprintf(buf, size, "%s/synapse", dir ? dir : ".");
    if (access(buf, X_OK) == 0) return buf;
    fprintf(stderr, "%s: SKIPPED CLI checks: no executable %s (run from the build dir or set SYN_BINARY_DIR)\n", who, buf);
    return NULL;
}

int tu_run_cmd(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 4096, len = 0, k;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) {
            buf = realloc(buf, cap *= 2);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *tu_run_expect(int want, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *out;
    int rc = tu_run_cmd(cmd, &out);
    ck_assert_msg(rc == want, "%s -> %d (want %d): %s", cmd, rc, want, out);
    return out;
}

/* s with every '@' replaced by at, into buf. */
static const char *at_subst(char *buf, size_t size, const char *s, const char *at) {
    size_t k = 0;
    for (; *s && k + 1 < size; s++) {
        if (*s == '@' && at) k += (size_t)snprintf(buf + k, size - k, "%s", at);
        else buf[k++] = *s;
        if (k >= size) k = size - 1;
    }
    buf[k] = '\0';
    return buf;
}

void tu_cli_cases(const char *bin, const char *prefix, const tu_cli_case *cases, size_t n, const char *at) {
    for (size_t i = 0; i < n; i++) {
        char args[1024], says[1024];
        at_subst(args, sizeof args, cases[i].args, at);
        at_subst(says, sizeof says, cases[i].says, at);
        char *out = tu_run_expect(cases[i].rc, "%s %s %s 2>&1", bin, prefix, args);
        ck_assert_msg(strstr(out, says) != NULL, "synapse %s %s: the message lacks \"%s\": %s", prefix, args, says,
                      out);
        free(out);
    }
}

double tu_json_number(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    ck_assert_msg(p != NULL, "'%s' lacks %s", json, pat);
    return strtod(p + strlen(pat), NULL);
}

void tu_write_idx(const char *path, const uint8_t *data, int n, int ndim, bool gz) {
    uint8_t h[16] = {0, 0, 8, (uint8_t)ndim, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n,
                     0, 0, 0, 28, 0, 0, 0, 28};
    size_t hb = ndim == 3 ? 16 : 8, db = (size_t)n * (ndim == 3 ? 784 : 1);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, h, (unsigned)hb), (int)hb);
        ck_assert_int_eq(gzwrite(f, data, (unsigned)db), (int)db);
        ck_assert_int_eq(gzclose(f), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(h, 1, hb, f), hb);
    ck_assert_uint_eq(fwrite(data, 1, db, f), db);
    ck_assert_int_eq(fclose(f), 0);
}

/* Class c: a bright 6x6 block at a place of its own, over noise. */
void tu_class_images(uint8_t *img, uint8_t *lab, int n, tu_rng *r) {
    for (int i = 0; i < n; i++) {
        int c = (int)(tu_next(r) % 10);
        lab[i] = (uint8_t)c;
        uint8_t *im = img + i * 784;
        for (int k = 0; k < 784; k++) im[k] = (uint8_t)(tu_next(r) % 80);
        int y0 = (c / 5) * 14 + 4, x0 = (c % 5) * 5 + 1;
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++) im[(y0 + y) * 28 + x0 + x] = (uint8_t)(180 + tu_next(r) % 76);
    }
}

void tu_igrad_build(syn_graph *g, int kind, bool ask, tu_igrad *n) {
    memset(n, 0, sizeof *n);
    n->kind = kind;
    syn_node *h;
    if (kind == 0) {
        n->xs = syn_shape4(2, 1, 6, 6);
        n->x = syn_input(g, "x", SYN_F32, n->xs);
        syn_conv_opts o = {.conv = {.pad_h = 1, .pad_w = 1}};
        h = syn_tanh(g, syn_batch_norm(g, syn_conv2d(g, n->x, 3, 3, 3, "conv", &o), "bn"));
        h = syn_linear(g, syn_flatten(g, syn_avg_pool2d(g, h, 2, 2, 2, 2, 0, 0, true)), 4, "fc", NULL);
        n->aux = syn_input(g, "labels", SYN_I32, syn_shape1(2));
        n->loss = syn_cross_entropy(g, h, n->aux);
    } else {
        n->xs = syn_shape3(2, 5, 3);
        n->x = syn_input(g, "x", SYN_F32, n->xs);
        n->state = syn_input(g, "state", SYN_F32, syn_shape3(2, 2, 8));
        syn_rnn_config c = {.mode = SYN_RNN_LSTM, .hidden = 4, .layers = 2};
        h = syn_linear(g, syn_rnn(g, n->x, &c, n->state, NULL, "lstm", NULL), 1, "fc", NULL);
        n->aux = syn_input(g, "target", SYN_F32, syn_shape3(2, 5, 1));
        n->loss = syn_mse_loss(g, h, n->aux);
    }
    TU_OK(syn_graph_status(g));
    if (!ask) return;
    TU_OK(syn_graph_input_grad(g, n->x));
    if (n->state) TU_OK(syn_graph_input_grad(g, n->state));
}

void tu_igrad_feed(syn_graph *g, const tu_igrad *n, const float *x) {
    TU_OK(syn_graph_feed(g, n->x, x, n->xs));
    if (n->kind == 0) {
        TU_OK(syn_graph_feed(g, n->aux, (int32_t[2]){1, 3}, syn_shape1(2)));
        return;
    }
    float t[10], s[32];
    for (int i = 0; i < 10; i++) t[i] = 0.3f * (float)(i % 4) - 0.4f;
    for (int i = 0; i < 32; i++) s[i] = 0.05f * (float)(i % 7) - 0.15f;
    TU_OK(syn_graph_feed(g, n->aux, t, syn_shape3(2, 5, 1)));
    TU_OK(syn_graph_feed(g, n->state, s, syn_shape3(2, 2, 8)));
}

void tu_write_png(const char *path, const uint8_t *pix, int w, int h, bool rgb) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = rgb ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    ck_assert_msg(png_image_write_to_file(&im, path, 0, pix, 0, NULL), "%s", im.message);
}

void tu_write_fmnist_like(uint8_t *tr, uint8_t *ltr, int ntr, uint8_t *te, uint8_t *lte, int nte, uint64_t seed,
                          bool gz) {
    tu_rng r = tu_rng_make(seed);
    tu_class_images(tr, ltr, ntr, &r);
    tu_class_images(te, lte, nte, &r);
    tu_write_idx(tu_path("train-images-idx3-ubyte"), tr, ntr, 3, false);
    tu_write_idx(tu_path("train-labels-idx1-ubyte"), ltr, ntr, 1, false);
    tu_write_idx(tu_path(gz ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte"), te, nte, 3, gz);
    tu_write_idx(tu_path(gz ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte"), lte, nte, 1, gz);
}

const char *tu_last_line(char *text) {
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n') text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

char tu_dir[64];

void tu_dir_setup(void) {
    strcpy(tu_dir, "/tmp/syn_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tu_dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void tu_dir_teardown(void) {
    if (tu_dir[0]) nftw(tu_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    tu_dir[0] = '\0';
}

const char *tu_path(const char *name) {
    static char bufs[16][512];
    static int k;
    char *b = bufs[k++ & 15];
    snprintf(b, 512, "%s/%s", tu_dir, name);
    return b;
}

/* The row of `op` in a profile report: forward ms, calls, backward ms, calls. */
static bool profile_row(const char *report, const char *op, double v[4]) {
    char key[64];
    snprintf(key, sizeof key, "\n  %s ", op);
    const char *p = strstr(report, key);
    return p && sscanf(p + strlen(key), "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]) == 4;
}

void tu_check_profile(syn_device dev) {
    syn_params *p;
    syn_graph *g;
    syn_optim *o;
    TU_OK(syn_params_create(dev, 7, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(8, 784)), *y = syn_input(g, "y", SYN_I32, syn_shape1(8));
    const int64_t hidden[] = {32, 16};
    syn_node *loss = syn_cross_entropy(g, syn_mlp(g, x, hidden, 2, 10, SYN_ACT_RELU, 0.0f), y);
    ck_assert_ptr_nonnull(loss);
    TU_OK(syn_graph_set_profiling(g, true)); /* before compile: allowed */
    TU_OK(syn_graph_compile(g, dev, NULL));
    syn_optim_config cfg = syn_optim_defaults(SYN_OPTIM_SGD);
    TU_OK(syn_optim_create(p, &cfg, &o));
    float xv[8 * 784];
    int32_t yv[8];
    tu_rng r = tu_rng_make(3);
    tu_fill(&r, xv, 8 * 784, 0, 1);
    for (int i = 0; i < 8; i++) yv[i] = i % 10;
    TU_OK(syn_graph_feed(g, x, xv, syn_shape2(8, 784)));
    TU_OK(syn_graph_feed(g, y, yv, syn_shape1(8)));
    for (int step = 0; step < 4; step++) {
        TU_OK(syn_params_zero_grad(p));
        TU_OK(syn_graph_forward(g));
        TU_OK(syn_graph_backward(g, loss));
        TU_OK(syn_optim_step(o));
    }
    char report[4096];
    TU_OK(syn_graph_profile_report(g, report, sizeof report));
    ck_assert_msg(strstr(report, ", 3 steps after the first"), "report:\n%s", report);
    double lin[4], relu[4], total;
    ck_assert_msg(profile_row(report, "linear", lin) && profile_row(report, "relu", relu), "report:\n%s", report);
    ck_assert_msg(lin[1] == 3 && lin[3] == 3 && relu[1] == 2 && relu[3] == 2, "calls per step:\n%s", report);
    ck_assert_msg(lin[0] > 0 && lin[2] > 0, "linear's time is not positive:\n%s", report);
    const char *t = strstr(report, "\n  total ");
    ck_assert_msg(t && sscanf(t + 9, "%lf", &total) == 1 && total >= lin[0] + lin[2], "total:\n%s", report);
    TU_OK(syn_graph_set_profiling(g, false));
    ck_assert_int_eq(syn_graph_profile_report(g, report, sizeof report), SYN_ERR_ARG);
    syn_optim_free(o);
    syn_graph_free(g);
    syn_params_free(p);
}

syn_dataset *tu_dataset_3class(int64_t n, uint64_t salt) {
    syn_dataset *d = calloc(1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    d->n = n;
    d->dim = 5;
    d->sample_shape = syn_shape1(5);
    d->num_classes = 3;
    d->x = malloc((size_t)(n * 5) * sizeof(float));
    d->labels = malloc((size_t)n * sizeof(int32_t));
    ck_assert(d->x && d->labels);
    tu_rng r = tu_rng_make(salt);
    for (int64_t i = 0; i < n; i++) {
        float *x = d->x + i * 5;
        tu_fill(&r, x, 5, -1.0f, 1.0f);
        float s = x[0] + 0.5f * x[1] - x[3];
        d->labels[i] = s < -0.4f ? 0 : s < 0.4f ? 1 : 2;
    }
    return d;
}
