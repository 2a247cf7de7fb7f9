/* The CNN ops other than convolution, on the CPU: max / average / adaptive
 * pooling, batch norm, layer norm, dropout2d. Forward against plain double
 * references on odd shapes with poisoned buffers; backward by central finite
 * differences of sum(y * R) for every differentiable operand; batch-norm
 * statistics and modes, dropout2d masks; bad shapes at build time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "core/internal.h"
#include "core/rng.h"

#include "gradutil.h"

/* ---- pooling ---------------------------------------------------------------- */

typedef enum { MAXP, AVG_INCL, AVG_EXCL } pool_kind;
static const char *const pool_names[3] = {"max_pool2d", "avg_pool2d incl", "avg_pool2d excl"};

typedef struct {
    int N, C, H, W, kh, kw, sh, sw, ph, pw; /* stride 0: the kernel */
} pool_case;

static const pool_case pool_cases[] = {
    {1, 1, 7, 9, 2, 2, 2, 2, 0, 0},
    {3, 3, 13, 13, 3, 3, 1, 1, 1, 1},
    {3, 5, 7, 9, 3, 3, 2, 2, 1, 1},
    {1, 3, 7, 9, 2, 3, 0, 0, 0, 0},
    {3, 1, 9, 7, 2, 3, 1, 2, 1, 1},
    {1, 5, 13, 13, 3, 3, 2, 2, 0, 0},
    {3, 5, 32, 33, 3, 3, 2, 2, 1, 1}, /* above the OpenMP threshold */
    {2, 9, 30, 31, 2, 2, 2, 2, 0, 0}, /* the 2x2 fast path (pool.c), odd width, threads */
};
static const int n_pool_cases = (int)(sizeof pool_cases / sizeof pool_cases[0]);

/* Every window position, padded ones skipped: max, or sum / (kh kw or count). */
static void ref_pool(pool_kind k, const float *x, const pool_case *c, int P, int Q, double *y) {
    int sh = c->sh ? c->sh : c->kh, sw = c->sw ? c->sw : c->kw;
    for (int pl = 0; pl < c->N * c->C; pl++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                double acc = k == MAXP ? -INFINITY : 0.0;
                int cnt = 0;
                for (int i = 0; i < c->kh; i++)
                    for (int j = 0; j < c->kw; j++) {
                        int h = p * sh - c->ph + i, w = q * sw - c->pw + j;
                        if (h < 0 || h >= c->H || w < 0 || w >= c->W) continue;
                        double v = x[((int64_t)pl * c->H + h) * c->W + w];
                        acc = k == MAXP ? (v > acc ? v : acc) : acc + v;
                        cnt++;
                    }
                y[((int64_t)pl * P + p) * Q + q] = k == MAXP ? acc : acc / (k == AVG_INCL ? c->kh * c->kw : cnt);
            }
}

/* via: x reaches the pool through x * 1, whose gradient the pool's backward
 * writes fresh (NaN-poisoned: an element it skips fails the check). */
static void pool_run(pool_kind k, const pool_case *c, uint64_t salt, bool via) {
    char what[128];
    snprintf(what, sizeof what, "%s (%d,%d,%d,%d) k%dx%d s%dx%d p%dx%d", pool_names[k], c->N, c->C, c->H, c->W, c->kh,
             c->kw, c->sh, c->sw, c->ph, c->pw);
    tu_rng r = tu_rng_make(salt);
    env e = env_make();
    syn_shape xs = syn_shape4(c->N, c->C, c->H, c->W);
    int64_t nx = syn_shape_numel(&xs);
    float *xv = k == MAXP ? distinct_array(&r, nx) : rand_array(&r, nx, -1, 1);
    syn_node *x = param_with(&e, "x", xs, xv);
    if (via) x = syn_mul_scalar(e.g, x, 1.0f);
    syn_node *y = k == MAXP ? syn_max_pool2d(e.g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw)
                            : syn_avg_pool2d(e.g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, k == AVG_INCL);
    ck_assert_msg(y != NULL, "%s: %s", what, syn_last_error());
    int sh = c->sh ? c->sh : c->kh, sw = c->sw ? c->sw : c->kw;
    int P = (c->H + 2 * c->ph - c->kh) / sh + 1, Q = (c->W + 2 * c->pw - c->kw) / sw + 1;
    assert_shape(what, syn_node_shape(y), syn_shape4(c->N, c->C, P, Q));
    objective o = finish(&e, y, &r, true);
    forward_backward(&e, &o);
    double *ref = alloc((size_t)o.n * sizeof *ref);
    ref_pool(k, xv, c, P, Q, ref);
    TU_CLOSE(o.buf, ref, o.n, 1e-5, 1e-5);
    fd_check(&e, &o, "x", what, &r);
    env_free(&e);
}

START_TEST(test_pool) { pool_run((pool_kind)(_i % 3), &pool_cases[_i / 3], 100 + (uint64_t)_i, false); }
END_TEST

START_TEST(test_max_pool_via_intermediate) { pool_run(MAXP, &pool_cases[_i], 200 + (uint64_t)_i, true); }
END_TEST

/* Ties go to the first maximum in scan order; -inf padding never wins. */
START_TEST(test_max_pool_ties) {
    env e = env_make();
    float xv[16];
    for (int i = 0; i < 16; i++) xv[i] = -5.0f;
    syn_node *x = param_with(&e, "x", syn_shape4(1, 1, 4, 4), xv);
    syn_node *y = syn_max_pool2d(e.g, x, 3, 3, 1, 1, 1, 1);
    tu_rng r = tu_rng_make(150);
    objective o = finish(&e, y, &r, true);
    forward_backward(&e, &o);
    float dx[16];
    double want[16] = {0};
    for (int i = 0; i < 16; i++) ck_assert_msg(o.buf[i] == -5.0f, "y[%d] = %g, expected -5 (padding won)", i, o.buf[i]);
    for (int p = 0; p < 4; p++) /* first in-bounds element of each window */
        for (int q = 0; q < 4; q++) want[(p > 0 ? p - 1 : 0) * 4 + (q > 0 ? q - 1 : 0)] += o.r[p * 4 + q];
    read_param(&e, "x", dx, true);
    TU_CLOSE(dx, want, 16, 1e-6, 1e-6);
    env_free(&e);
}
END_TEST

/* The 2x2 stride-2 path keeps the general path's choices: ties go to the
 * first element in scan order, a NaN wins over numbers and the last NaN of
 * a window gets the gradient; the odd last column is outside every window. */
START_TEST(test_max_pool_2x2_ties_and_nan) {
    env e = env_make();
    /* one plane, 2 x 5: windows {0,1,5,6} and {2,3,7,8}; column 4 unused */
    float xv[10] = {1, 1, NAN, 0, 9, 1, 1, 4, NAN, 9};
    syn_node *x = param_with(&e, "x", syn_shape4(1, 1, 2, 5), xv);
    syn_node *y = syn_max_pool2d(e.g, x, 2, 2, 2, 2, 0, 0);
    tu_rng r = tu_rng_make(151);
    objective o = finish(&e, y, &r, true);
    forward_backward(&e, &o);
    ck_assert_msg(o.buf[0] == 1.0f && isnan(o.buf[1]), "y = (%g, %g), want (1, nan)", o.buf[0], o.buf[1]);
    float dx[10];
    read_param(&e, "x", dx, true);
    for (int i = 0; i < 10; i++) {
        float want = i == 0 ? o.r[0] : i == 8 ? o.r[1] : 0.0f;
        ck_assert_msg(dx[i] == want, "dx[%d] = %g, want %g", i, dx[i], want);
    }
    env_free(&e);
}
END_TEST

/* Bin i of H covers [floor(i H / oh), ceil((i + 1) H / oh)). */
static void ref_adaptive(const float *x, int planes, int H, int W, int oh, int ow, double *y) {
    for (int pl = 0; pl < planes; pl++)
        for (int p = 0; p < oh; p++)
            for (int q = 0; q < ow; q++) {
                int h0 = (int)floor((double)p * H / oh), h1 = (int)ceil((double)(p + 1) * H / oh);
                int w0 = (int)floor((double)q * W / ow), w1 = (int)ceil((double)(q + 1) * W / ow);
                double sum = 0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) sum += x[((int64_t)pl * H + h) * W + w];
                y[(pl * oh + p) * ow + q] = sum / ((h1 - h0) * (w1 - w0));
            }
}

typedef struct {
    int N, C, H, W, oh, ow;
    bool global; /* syn_global_avg_pool: (N, C) */
} adaptive_case;

static const adaptive_case adaptive_cases[] = {
    {3, 5, 5, 7, 3, 2, false}, {1, 3, 7, 7, 1, 1, false},   {3, 1, 7, 9, 4, 5, false},
    {1, 1, 3, 4, 5, 6, false}, {3, 5, 31, 29, 5, 7, false}, {3, 5, 7, 9, 1, 1, true},
};
static const int n_adaptive_cases = (int)(sizeof adaptive_cases / sizeof adaptive_cases[0]);

START_TEST(test_adaptive_avg_pool) {
    const adaptive_case *c = &adaptive_cases[_i];
    char what[96];
    snprintf(what, sizeof what, "%s (%d,%d,%d,%d) -> %dx%d", c->global ? "global_avg_pool" : "adaptive_avg_pool2d",
             c->N, c->C, c->H, c->W, c->oh, c->ow);
    tu_rng r = tu_rng_make(200 + (uint64_t)_i);
    env e = env_make();
    syn_shape xs = syn_shape4(c->N, c->C, c->H, c->W);
    float *xv = rand_array(&r, syn_shape_numel(&xs), -1, 1);
    syn_node *x = param_with(&e, "x", xs, xv);
    syn_node *y = c->global ? syn_global_avg_pool(e.g, x) : syn_adaptive_avg_pool2d(e.g, x, c->oh, c->ow);
    ck_assert_msg(y != NULL, "%s: %s", what, syn_last_error());
    assert_shape(what, syn_node_shape(y), c->global ? syn_shape2(c->N, c->C) : syn_shape4(c->N, c->C, c->oh, c->ow));
    objective o = finish(&e, y, &r, true);
    forward_backward(&e, &o);
    double *ref = alloc((size_t)o.n * sizeof *ref);
    ref_adaptive(xv, c->N * c->C, c->H, c->W, c->oh, c->ow, ref);
    TU_CLOSE(o.buf, ref, o.n, 1e-5, 1e-5);
    fd_check(&e, &o, "x", what, &r);
    env_free(&e);
}
END_TEST

/* ---- batch norm ------------------------------------------------------------- */

static const syn_shape bn_shapes[] = {
    {4, {3, 5, 7, 9}}, {4, {1, 3, 13, 13}}, {2, {4, 5}}, {3, {3, 5, 11}}, {4, {8, 16, 8, 9}},
};
static const int n_bn_shapes = (int)(sizeof bn_shapes / sizeof bn_shapes[0]);

static void bn_dims(const syn_shape *s, int64_t *N, int64_t *C, int64_t *S) {
    *N = s->dim[0];
    *C = s->dim[1];
    *S = syn_shape_numel(s) / (*N * *C);
}

/* y = gamma (x - mean) / sqrt(var + eps) + beta with the batch's statistics
 * (train; rm, rv then updated with the unbiased variance) or rm, rv. */
static void ref_bn(const float *x, const syn_shape *s, const float *gamma, const float *beta, double *rm, double *rv,
                   double mom, double eps, bool train, double *y) {
    int64_t N, C, S;
    bn_dims(s, &N, &C, &S);
    int64_t M = N * S;
    for (int64_t c = 0; c < C; c++) {
        double mean = rm[c], var = rv[c];
        if (train) {
            double sum = 0, ss = 0;
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < S; i++) sum += x[(b * C + c) * S + i];
            mean = sum / M;
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < S; i++) ss += (x[(b * C + c) * S + i] - mean) * (x[(b * C + c) * S + i] - mean);
            var = ss / M;
            rm[c] = (1 - mom) * rm[c] + mom * mean;
            rv[c] = (1 - mom) * rv[c] + mom * ss / (M - 1);
        }
        for (int64_t b = 0; b < N; b++)
            for (int64_t i = 0; i < S; i++) {
                int64_t k = (b * C + c) * S + i;
                y[k] = gamma[c] * (x[k] - mean) / sqrt(var + eps) + beta[c];
            }
    }
}

/* x, gamma, beta, running stats as parameters "x", "g", "b", "rm", "rv" (the
 * last two not trainable); y = batch_norm(x), momentum 0.1, eps 1e-5. */
typedef struct {
    env e;
    float *x, *g, *b, *rm, *rv;
    syn_node *xn, *y; /* x as the op reads it, and y */
} bn_setup;

static bn_setup bn_make(const syn_shape *s, tu_rng *r, bool via) {
    bn_setup t = {env_make(), NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int64_t N, C, S;
    bn_dims(s, &N, &C, &S);
    t.x = rand_array(r, syn_shape_numel(s), -2, 2);
    for (int64_t i = 0; i < syn_shape_numel(s); i++) t.x[i] += 0.3f * (float)((i / S) % C); /* a mean per channel */
    t.g = rand_array(r, C, 0.5f, 1.5f);
    t.b = rand_array(r, C, -1, 1);
    t.rm = rand_array(r, C, -0.5f, 0.5f);
    t.rv = rand_array(r, C, 0.5f, 2.0f);
    syn_node *in[5] = {param_with(&t.e, "x", *s, t.x), param_with(&t.e, "g", syn_shape1(C), t.g),
                       param_with(&t.e, "b", syn_shape1(C), t.b), param_with(&t.e, "rm", syn_shape1(C), t.rm),
                       param_with(&t.e, "rv", syn_shape1(C), t.rv)};
    TU_OK(syn_params_set_trainable(t.e.ps, "rm", false));
    TU_OK(syn_params_set_trainable(t.e.ps, "rv", false));
    for (int k = 0; via && k < 3; k++) in[k] = syn_mul_scalar(t.e.g, in[k], 1.0f); /* fresh gradients (pool_run) */
    t.xn = in[0];
    t.y = syn_batch_norm_op(t.e.g, in[0], in[1], in[2], in[3], in[4], 0.1f, 1e-5f);
    ck_assert_msg(t.y != NULL, "%s", syn_last_error());
    return t;
}

/* The running stats have no gradient: theirs stay zero. */
static void assert_no_grad(env *e, const char *name, int64_t C) {
    float *gv = alloc((size_t)C * sizeof *gv);
    read_param(e, name, gv, true);
    for (int64_t c = 0; c < C; c++) ck_assert_msg(gv[c] == 0.0f, "%s got a gradient %g", name, gv[c]);
}

/* Training mode: the batch's statistics, running stats updated once; eval
 * mode: the running stats, left unchanged and constants of the backward, then
 * training mode again in the same graph. Gradients of x, gamma, beta; none
 * for the running stats. */
START_TEST(test_batch_norm) {
    const syn_shape *s = &bn_shapes[(_i / 2) % n_bn_shapes];
    bool train = _i % 2 == 0, via = _i >= 2 * n_bn_shapes;
    char what[96], sb[64];
    snprintf(what, sizeof what, "batch_norm %s %s%s", train ? "train" : "eval", syn_shape_str(s, sb, sizeof sb),
             via ? " via x * 1" : "");
    tu_rng r = tu_rng_make(300 + (uint64_t)_i);
    bn_setup t = bn_make(s, &r, via);
    int64_t N, C, S;
    bn_dims(s, &N, &C, &S);
    objective o = finish(&t.e, t.y, &r, true);
    syn_graph_set_training(t.e.g, train);
    forward_backward(&t.e, &o);
    double *ref = alloc((size_t)o.n * sizeof *ref), *rm = alloc((size_t)C * sizeof *rm),
           *rv = alloc((size_t)C * sizeof *rv);
    for (int64_t c = 0; c < C; c++) rm[c] = t.rm[c], rv[c] = t.rv[c];
    ref_bn(t.x, s, t.g, t.b, rm, rv, 0.1, 1e-5, train, ref);
    TU_CLOSE(o.buf, ref, o.n, 1e-4, 1e-4);
    float *got = alloc((size_t)C * sizeof *got);
    read_param(&t.e, "rm", got, false);
    TU_CLOSE(got, rm, C, 1e-6, 1e-6);
    read_param(&t.e, "rv", got, false);
    TU_CLOSE(got, rv, C, 1e-6, 1e-6);
    assert_no_grad(&t.e, "rm", C);
    assert_no_grad(&t.e, "rv", C);
    fd_check(&t.e, &o, "x", what, &r);
    fd_check(&t.e, &o, "g", what, &r);
    fd_check(&t.e, &o, "b", what, &r);
    if (!train) {
        syn_graph_set_training(t.e.g, true);
        objective_at(&o);
        ref_bn(t.x, s, t.g, t.b, rm, rv, 0.1, 1e-5, true, ref);
        TU_CLOSE(o.buf, ref, o.n, 1e-4, 1e-4);
    }
    env_free(&t.e);
}
END_TEST

/* ---- batch norm with a fused epilogue (core/fuse.c) -------------------------
 * act(bn(x) [+ z]) compiles to one node; it must compute what the three
 * nodes compute unfused (SYN_FUSE=0), to the last bit on the CPU: the same
 * float operations in the same order. */

typedef struct {
    float slope; /* leaky relu's; 0: relu */
    int res;     /* 0: act(bn(x)); 1: act(bn(x) + z); 2: act(bn(x) + x) (z is x) */
    bool train, via; /* via: operands behind x * 1 (their gradients are fresh) */
} fused_case;

static const fused_case fused_cases[] = {
    {0.0f, 0, true, false}, {0.0f, 1, true, false}, {0.2f, 0, true, false}, {0.2f, 1, false, false},
    {0.0f, 1, false, true}, {0.0f, 2, true, false}, {0.0f, 2, true, true},  {0.1f, 1, true, true},
};
static const int n_fused_cases = (int)(sizeof fused_cases / sizeof fused_cases[0]);

/* One copy of case fc on shape s from seed: the chain built on bn_make's
 * batch norm, compiled fused or not; forward and backward run. */
typedef struct {
    bn_setup t;
    objective o;
    syn_node *bn;
} fused_run;

static fused_run fused_make(const fused_case *fc, const syn_shape *s, uint64_t seed, bool fuse) {
    tu_rng r = tu_rng_make(seed);
    fused_run f = {bn_make(s, &r, fc->via), {0}, NULL};
    f.bn = f.t.y;
    syn_node *y = f.bn;
    if (fc->res == 1) {
        syn_node *z = param_with(&f.t.e, "z", *s, rand_array(&r, syn_shape_numel(s), -1.5f, 1.5f));
        y = syn_add(f.t.e.g, y, fc->via ? syn_mul_scalar(f.t.e.g, z, 1.0f) : z);
    }
    if (fc->res == 2) y = syn_add(f.t.e.g, y, f.t.xn);
    y = fc->slope > 0.0f ? syn_leaky_relu(f.t.e.g, y, fc->slope) : syn_relu(f.t.e.g, y);
    if (!fuse) setenv("SYN_FUSE", "0", 1);
    f.o = finish(&f.t.e, y, &r, true);
    unsetenv("SYN_FUSE");
    syn_graph_set_training(f.t.e.g, fc->train);
    forward_backward(&f.t.e, &f.o);
    return f;
}

/* Parameter `name`'s value or gradient in a and b: identical. */
static void assert_param_same(fused_run *a, fused_run *b, const char *name, int64_t n, bool grad, const char *what) {
    float *va = alloc((size_t)n * sizeof *va), *vb = alloc((size_t)n * sizeof *vb);
    read_param(&a->t.e, name, va, grad);
    read_param(&b->t.e, name, vb, grad);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(va[i] == vb[i] || (isnan(va[i]) && isnan(vb[i])), "%s: %s %s[%lld] fused %.9g, unfused %.9g",
                      what, grad ? "gradient of" : "value of", name, (long long)i, va[i], vb[i]);
}

START_TEST(test_batch_norm_fused) {
    const fused_case *fc = &fused_cases[_i % n_fused_cases];
    const syn_shape *s = &bn_shapes[(_i / n_fused_cases) % n_bn_shapes];
    int64_t N, C, S;
    bn_dims(s, &N, &C, &S);
    const int64_t n = syn_shape_numel(s);
    char what[128], sb[64];
    snprintf(what, sizeof what, "%s%s%s %s %s%s", "batch_norm", fc->res == 1 ? "+add" : fc->res == 2 ? "+add(x)" : "",
             fc->slope > 0.0f ? "+leaky_relu" : "+relu", fc->train ? "train" : "eval", syn_shape_str(s, sb, sizeof sb),
             fc->via ? " via x * 1" : "");
    const uint64_t seed = 900 + (uint64_t)_i;
    fused_run a = fused_make(fc, s, seed, true), b = fused_make(fc, s, seed, false);

    /* one node, named for what it fused, against three */
    const char *want = fc->res ? (fc->slope > 0.0f ? "batch_norm+add+leaky_relu" : "batch_norm+add+relu")
                               : (fc->slope > 0.0f ? "batch_norm+leaky_relu" : "batch_norm+relu");
    ck_assert_str_eq(syn_node_op_name(a.o.y), want);
    ck_assert_str_eq(syn_node_op_name(b.o.y), fc->slope > 0.0f ? "leaky_relu" : "relu");
    /* the absorbed batch norm has no value of its own: a clear error */
    float *buf = alloc((size_t)n * sizeof *buf);
    ck_assert_int_eq(syn_graph_read(a.t.e.g, a.bn, buf, (size_t)n * sizeof *buf), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "was fused into node") && strstr(syn_last_error(), want), "%s",
                  syn_last_error());

    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(a.o.buf[i] == b.o.buf[i], "%s: y[%lld] fused %.9g, unfused %.9g", what, (long long)i, a.o.buf[i],
                      b.o.buf[i]);
    static const char *const names[] = {"x", "g", "b", "z"};
    for (int k = 0; k < (fc->res == 1 ? 4 : 3); k++) {
        int64_t len = k == 1 || k == 2 ? C : n;
        assert_param_same(&a, &b, names[k], len, true, what);
    }
    assert_param_same(&a, &b, "rm", C, false, what);
    assert_param_same(&a, &b, "rv", C, false, what);
    assert_no_grad(&a.t.e, "rm", C);
    assert_no_grad(&a.t.e, "rv", C);

    /* and the fused backward against central differences, on values whose
     * t = bn(x) [+ z] stays over 0.1 away from the activation's kink (a
     * +-1e-2 step never crosses it): x of either sign at 0.6 to 1.4 from 0 in
     * balanced counts per channel, beta and z within 0.05, running stats 0, 1 */
    tu_rng r = tu_rng_make(seed ^ 0xfd);
    float *v = alloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (i / (S * C)) * S + i % S; /* the k-th value of its channel */
        v[i] = (k % 2 ? -1.0f : 1.0f) * tu_uniform(&r, 0.6f, 1.4f);
    }
    write_param(&a.t.e, "x", v);
    for (int64_t c = 0; c < C; c++) v[c] = tu_uniform(&r, -0.05f, 0.05f);
    write_param(&a.t.e, "b", v);
    for (int64_t c = 0; c < C; c++) v[c] = 0.0f;
    write_param(&a.t.e, "rm", v);
    for (int64_t c = 0; c < C; c++) v[c] = 1.0f;
    write_param(&a.t.e, "rv", v);
    if (fc->res == 1) {
        for (int64_t i = 0; i < n; i++) v[i] = tu_uniform(&r, -0.05f, 0.05f);
        write_param(&a.t.e, "z", v);
    }
    forward_backward(&a.t.e, &a.o);
    for (int k = 0; k < (fc->res == 1 ? 4 : 3); k++) fd_check(&a.t.e, &a.o, names[k], what, &r);
    env_free(&b.t.e);
    env_free(&a.t.e);
}
END_TEST

/* A kept intermediate (syn_graph_keep) is never fused away: it stays readable. */
START_TEST(test_batch_norm_fusion_keeps) {
    const syn_shape s = syn_shape4(2, 3, 4, 5);
    tu_rng r = tu_rng_make(990);
    bn_setup t = bn_make(&s, &r, false);
    TU_OK(syn_graph_keep(t.e.g, t.y));
    objective o = finish(&t.e, syn_relu(t.e.g, t.y), &r, true);
    ck_assert_str_eq(syn_node_op_name(o.y), "relu");
    forward_backward(&t.e, &o);
    float *bn = alloc(120 * sizeof *bn);
    TU_OK(syn_graph_read(t.e.g, t.y, bn, 120 * sizeof *bn));
    for (int i = 0; i < 120; i++) ck_assert_float_eq(o.buf[i], bn[i] > 0.0f ? bn[i] : 0.0f);
    env_free(&t.e);
}
END_TEST

/* y[(b C + c) S + i] over b < N, i < S has mean 0 and variance ~1 for every c. */
static void assert_unit(const float *y, int64_t N, int64_t C, int64_t S, const char *what) {
    for (int64_t c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int64_t b = 0; b < N; b++)
            for (int64_t i = 0; i < S; i++) m += y[(b * C + c) * S + i];
        m /= (double)(N * S);
        for (int64_t b = 0; b < N; b++)
            for (int64_t i = 0; i < S; i++) v += (y[(b * C + c) * S + i] - m) * (y[(b * C + c) * S + i] - m);
        v /= (double)(N * S);
        ck_assert_msg(fabs(m) < 1e-5 && fabs(v - 1) < 1e-3, "%s %lld: mean %g, var %g", what, (long long)c, m, v);
    }
}

/* The layer (gamma 1, beta 0, running stats 0 and 1): each channel of y has
 * mean 0 and variance 1; two steps on one batch compound the running stats. */
START_TEST(test_batch_norm_layer) {
    enum { N = 3, C = 5, H = 7, W = 9, S = H * W };
    tu_rng r = tu_rng_make(450);
    env e = env_make();
    syn_node *x = syn_input(e.g, "x", SYN_F32, syn_shape4(N, C, H, W));
    syn_node *y = syn_batch_norm(e.g, x, "bn");
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    TU_OK(syn_graph_compile(e.g, syn_cpu(), NULL));
    poison(e.g);
    float *xv = rand_array(&r, N * C * S, -3, 5), *yv = alloc(N * C * S * sizeof *yv);
    TU_OK(syn_graph_feed(e.g, x, xv, syn_shape4(N, C, H, W)));
    double rm[C], rv[C], *ref = alloc(N * C * S * sizeof *ref);
    float one[C], zero[C], got[C];
    for (int c = 0; c < C; c++) rm[c] = 0, rv[c] = 1, one[c] = 1, zero[c] = 0;
    syn_shape xs = syn_shape4(N, C, H, W);
    for (int step = 0; step < 2; step++) {
        TU_OK(syn_graph_forward(e.g));
        ref_bn(xv, &xs, one, zero, rm, rv, 0.1, 1e-5, true, ref);
    }
    TU_OK(syn_graph_read(e.g, y, yv, N * C * S * sizeof *yv));
    TU_CLOSE(yv, ref, N * C * S, 1e-4, 1e-4);
    assert_unit(yv, N, C, S, "channel");
    read_param(&e, "bn.running_mean", got, false);
    TU_CLOSE(got, rm, C, 1e-5, 1e-5);
    read_param(&e, "bn.running_var", got, false);
    TU_CLOSE(got, rv, C, 1e-5, 1e-5);
    env_free(&e);
}
END_TEST

/* Training needs two values per channel (PyTorch's rule); eval mode does not. */
START_TEST(test_batch_norm_single_value) {
    env e = env_make();
    syn_node *x = syn_input(e.g, "x", SYN_F32, syn_shape2(1, 3));
    syn_node *y = syn_batch_norm(e.g, x, NULL);
    TU_OK(syn_graph_compile(e.g, syn_cpu(), NULL));
    float xv[3] = {1, 2, 3}, yv[3];
    TU_OK(syn_graph_feed(e.g, x, xv, syn_shape2(1, 3)));
    ck_assert_int_eq(syn_graph_forward(e.g), SYN_ERR_SHAPE);
    ck_assert_msg(strstr(syn_last_error(), "batch_norm") && strstr(syn_last_error(), "(1,3)"), "%s", syn_last_error());
    syn_graph_set_training(e.g, false);
    TU_OK(syn_graph_forward(e.g));
    TU_OK(syn_graph_read(e.g, y, yv, sizeof yv));
    for (int c = 0; c < 3; c++) ck_assert(fabsf(yv[c] - xv[c] / sqrtf(1 + 1e-5f)) < 1e-5f);
    env_free(&e);
}
END_TEST

/* ---- layer norm ------------------------------------------------------------- */

static const syn_shape ln_shapes[] = {
    {2, {3, 7}}, {3, {2, 3, 5}}, {2, {1, 13}}, {2, {5, 1}}, {4, {3, 5, 7, 9}}, {2, {67, 129}},
};
static const int n_ln_shapes = (int)(sizeof ln_shapes / sizeof ln_shapes[0]);

START_TEST(test_layer_norm) {
    const syn_shape *s = &ln_shapes[_i];
    char what[96], sb[64];
    snprintf(what, sizeof what, "layer_norm %s", syn_shape_str(s, sb, sizeof sb));
    tu_rng r = tu_rng_make(500 + (uint64_t)_i);
    env e = env_make();
    int64_t D = s->dim[s->ndim - 1], rows = syn_shape_numel(s) / D;
    float *xv = rand_array(&r, rows * D, -2, 2), *gv = rand_array(&r, D, 0.5f, 1.5f), *bv = rand_array(&r, D, -1, 1);
    for (int64_t i = 0; i < rows * D; i++) xv[i] += 0.25f * (float)(i / D % 5); /* a mean per row */
    syn_node *y = syn_layer_norm_op(e.g, param_with(&e, "x", *s, xv), param_with(&e, "g", syn_shape1(D), gv),
                                    param_with(&e, "b", syn_shape1(D), bv), 1e-5f);
    ck_assert_msg(y != NULL, "%s: %s", what, syn_last_error());
    assert_shape(what, syn_node_shape(y), *s);
    objective o = finish(&e, y, &r, true);
    forward_backward(&e, &o);
    double *ref = alloc((size_t)o.n * sizeof *ref);
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = xv + i * D;
        double m = 0, v = 0;
        for (int64_t j = 0; j < D; j++) m += xr[j];
        m /= D;
        for (int64_t j = 0; j < D; j++) v += (xr[j] - m) * (xr[j] - m);
        v /= D;
        for (int64_t j = 0; j < D; j++) ref[i * D + j] = gv[j] * (xr[j] - m) / sqrt(v + 1e-5) + bv[j];
    }
    TU_CLOSE(o.buf, ref, o.n, 1e-4, 1e-4);
    fd_check(&e, &o, "x", what, &r);
    fd_check(&e, &o, "g", what, &r);
    fd_check(&e, &o, "b", what, &r);
    if (D >= 5) { /* gamma 1, beta 0: every row has mean 0 and variance ~1 */
        for (int64_t j = 0; j < D; j++) gv[j] = 1, bv[j] = 0;
        write_param(&e, "g", gv);
        write_param(&e, "b", bv);
        objective_at(&o);
        assert_unit(o.buf, 1, rows, D, what);
    }
    env_free(&e);
}
END_TEST

/* ---- dropout2d -------------------------------------------------------------- */

/* y = dropout2d(x) on x > 0 (so y == 0 marks a dropped element); returns y
 * and leaves dx of loss = sum(y R) in *dx and R in o. */
typedef struct {
    env e;
    objective o;
    float *x;
} drop_setup;

static drop_setup drop_make(syn_shape s, float p, tu_rng *r) {
    drop_setup t = {env_make(), {0}, rand_array(r, syn_shape_numel(&s), 0.5f, 1.5f)};
    syn_node *y = syn_dropout2d(t.e.g, param_with(&t.e, "x", s, t.x), p);
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    t.o = finish(&t.e, y, r, true);
    return t;
}

/* Whole channels dropped at rate ~p, kept ones scaled by 1/(1-p); the
 * gradient follows the same mask. The mask is Philox's stream, as the CUDA
 * kernel must draw it: channel bc = b C + c is kept iff
 * u(seed, SYN_STREAM_DROPOUT, offset + bc) >= p (offset 0: the only random
 * node, right after seeding). */
START_TEST(test_dropout2d_train) {
    static const float ps[3] = {0.3f, 0.5f, 0.1f};
    static const syn_shape shapes[3] = {{4, {16, 64, 2, 3}}, {3, {32, 40, 5}}, {4, {16, 64, 6, 6}}};
    float p = ps[_i];
    syn_shape s = shapes[_i];
    tu_rng r = tu_rng_make(600 + (uint64_t)_i);
    drop_setup t = drop_make(s, p, &r);
    forward_backward(&t.e, &t.o);
    int64_t channels = s.dim[0] * s.dim[1], S = syn_shape_numel(&s) / channels, dropped = 0;
    float *dx = alloc((size_t)t.o.n * sizeof *dx);
    read_param(&t.e, "x", dx, true);
    float scale = 1.0f / (1.0f - p);
    for (int64_t ch = 0; ch < channels; ch++) {
        bool drop = !(syn__philox_uniform(t.o.seed, SYN_STREAM_DROPOUT, (uint64_t)ch) >= p);
        dropped += drop;
        for (int64_t i = ch * S; i < (ch + 1) * S; i++) {
            float want = drop ? 0.0f : t.x[i] * scale, dwant = drop ? 0.0f : t.o.r[i] * scale;
            ck_assert_msg(fabsf(t.o.buf[i] - want) <= 1e-6f * fabsf(want), "channel %lld, element %lld: y %g, want %g",
                          (long long)ch, (long long)i, t.o.buf[i], want);
            ck_assert_msg(fabsf(dx[i] - dwant) <= 1e-6f * fabsf(dwant) + 1e-7f, "dx[%lld] = %g, want %g", (long long)i,
                          dx[i], dwant);
        }
    }
    double rate = (double)dropped / channels, sd = sqrt(p * (1 - p) / channels);
    ck_assert_msg(fabs(rate - p) <= 5 * sd, "dropped %lld of %lld channels (rate %g, p %g)", (long long)dropped,
                  (long long)channels, rate, p);
    env_free(&t.e);
}
END_TEST

/* The same seed gives the same mask; another seed or the next forward another. */
START_TEST(test_dropout2d_seed) {
    tu_rng r = tu_rng_make(650);
    drop_setup t = drop_make(syn_shape4(4, 32, 3, 3), 0.5f, &r);
    int64_t n = t.o.n;
    float *a = alloc((size_t)n * sizeof *a);
    t.o.seed = 42;
    objective_at(&t.o);
    memcpy(a, t.o.buf, (size_t)n * sizeof *a);
    objective_at(&t.o);
    ck_assert_msg(memcmp(a, t.o.buf, (size_t)n * sizeof *a) == 0, "same seed, different mask");
    TU_OK(syn_graph_forward(t.e.g)); /* the counter moved on */
    TU_OK(syn_graph_read(t.e.g, t.o.y, t.o.buf, (size_t)n * sizeof *a));
    ck_assert_msg(memcmp(a, t.o.buf, (size_t)n * sizeof *a) != 0, "the next forward repeated the mask");
    t.o.seed = 43;
    objective_at(&t.o);
    ck_assert_msg(memcmp(a, t.o.buf, (size_t)n * sizeof *a) != 0, "another seed, the same mask");
    env_free(&t.e);
}
END_TEST

/* Eval mode, and p = 0 in training mode: y = x, dx = dy. */
START_TEST(test_dropout2d_identity) {
    tu_rng r = tu_rng_make(700);
    drop_setup t = drop_make(syn_shape3(3, 5, 7), _i ? 0.0f : 0.5f, &r);
    if (!_i) syn_graph_set_training(t.e.g, false);
    forward_backward(&t.e, &t.o);
    float *dx = alloc((size_t)t.o.n * sizeof *dx);
    read_param(&t.e, "x", dx, true);
    for (int64_t i = 0; i < t.o.n; i++) {
        ck_assert_msg(t.o.buf[i] == t.x[i], "y[%lld] = %g, x %g", (long long)i, t.o.buf[i], t.x[i]);
        ck_assert_msg(dx[i] == t.o.r[i], "dx[%lld] = %g, dy %g", (long long)i, dx[i], t.o.r[i]);
    }
    env_free(&t.e);
}
END_TEST

/* ---- gradients accumulate ---------------------------------------------------- */

/* Every parameter gradient, concatenated; *n values. */
static float *all_grads(env *e, int64_t *n) {
    float *all = NULL;
    *n = 0;
    for (int k = 0; k < syn_params_count(e->ps); k++) {
        syn_tensor *gt;
        TU_OK(syn_params_get(e->ps, k, NULL, NULL, &gt));
        all = realloc(all, (size_t)(*n + syn_tensor_numel(gt)) * sizeof *all);
        TU_OK(syn_tensor_read(gt, all + *n, syn_tensor_bytes(gt)));
        *n += syn_tensor_numel(gt);
    }
    return all;
}

/* A second backward pass without zero_grad doubles every parameter gradient
 * (the kernels add into dx, dgamma, dbeta; they never overwrite). */
START_TEST(test_accumulate) {
    static const char *const what[6] = {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm", "layer_norm",
                                        "dropout2d"};
    tu_rng r = tu_rng_make(750 + (uint64_t)_i);
    env e = env_make();
    syn_shape xs = syn_shape4(3, 5, 7, 9);
    float *xv = distinct_array(&r, syn_shape_numel(&xs));
    syn_node *x = param_with(&e, "x", xs, xv), *y = NULL;
    switch (_i) {
    case 0: y = syn_max_pool2d(e.g, x, 3, 3, 2, 2, 1, 1); break;
    case 1: y = syn_avg_pool2d(e.g, x, 3, 3, 2, 2, 1, 1, false); break;
    case 2: y = syn_adaptive_avg_pool2d(e.g, x, 3, 4); break;
    case 3: y = syn_batch_norm(e.g, x, "n"); break;
    case 4: y = syn_layer_norm(e.g, x, "n"); break;
    default: y = syn_dropout2d(e.g, x, 0.5f); break;
    }
    objective o = finish(&e, y, &r, true);
    forward_backward(&e, &o);
    int64_t n, n2;
    float *g1 = all_grads(&e, &n);
    TU_OK(syn_graph_backward(e.g, o.loss));
    float *g2 = all_grads(&e, &n2);
    double *want = alloc((size_t)n * sizeof *want);
    for (int64_t i = 0; i < n; i++) want[i] = 2.0 * g1[i];
    ck_assert_msg(tu_close_ratio(g2, want, n, 1e-6, 1e-6) <= 1, "%s: the gradients did not accumulate", what[_i]);
    free(g1);
    free(g2);
    env_free(&e);
}
END_TEST

/* ---- a chain with nothing kept ---------------------------------------------- */

/* y = dropout2d(layer_norm(avg_pool(batch_norm(max_pool(x))))): only the loss
 * is kept, so the plan must hold x and y of max_pool, x and the aux of the
 * norms until their backward. */
START_TEST(test_chain) {
    tu_rng r = tu_rng_make(800);
    env e = env_make();
    float *xv = distinct_array(&r, 2 * 3 * 8 * 10);
    syn_node *x = param_with(&e, "x", syn_shape4(2, 3, 8, 10), xv);
    syn_node *h = syn_max_pool2d(e.g, x, 2, 2, 0, 0, 0, 0);
    h = syn_batch_norm(e.g, h, "bn");
    h = syn_avg_pool2d(e.g, h, 3, 3, 1, 1, 1, 1, false);
    h = syn_layer_norm(e.g, h, "ln");
    h = syn_dropout2d(e.g, h, 0.3f);
    objective o = finish(&e, h, &r, false);
    float gv[5];
    tu_fill(&r, gv, 5, 0.5f, 1.5f);
    write_param(&e, "ln.weight", gv);
    write_param(&e, "bn.weight", gv); /* the first 3 */
    forward_backward(&e, &o);
    fd_check(&e, &o, "x", "chain", &r);
    fd_check(&e, &o, "bn.weight", "chain", &r);
    fd_check(&e, &o, "bn.bias", "chain", &r);
    fd_check(&e, &o, "ln.weight", "chain", &r);
    fd_check(&e, &o, "ln.bias", "chain", &r);
    assert_no_grad(&e, "bn.running_mean", 3);
    env_free(&e);
}
END_TEST

/* A partial batch: shapes re-inferred, buffers of the capacity reused. */
START_TEST(test_partial_batch) {
    tu_rng r = tu_rng_make(850);
    env e = env_make();
    syn_node *x = syn_input(e.g, "x", SYN_F32, syn_shape4(4, 3, 7, 9));
    syn_node *h = syn_batch_norm(e.g, syn_max_pool2d(e.g, x, 3, 3, 2, 2, 1, 1), "bn");
    syn_node *y = syn_adaptive_avg_pool2d(e.g, h, 2, 3);
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    TU_OK(syn_graph_compile(e.g, syn_cpu(), NULL));
    poison(e.g);
    pool_case pc = {2, 3, 7, 9, 3, 3, 2, 2, 1, 1};
    float *xv = distinct_array(&r, 2 * 3 * 7 * 9), yv[2 * 3 * 2 * 3], one[3] = {1, 1, 1}, zero[3] = {0};
    TU_OK(syn_graph_feed(e.g, x, xv, syn_shape4(2, 3, 7, 9)));
    TU_OK(syn_graph_forward(e.g));
    assert_shape("partial batch", syn_graph_shape(e.g, y), syn_shape4(2, 3, 2, 3));
    TU_OK(syn_graph_read(e.g, y, yv, sizeof yv));
    double t[2 * 3 * 4 * 5], rm[3] = {0}, rv[3] = {1, 1, 1}, ref[2 * 3 * 2 * 3];
    float tf[2 * 3 * 4 * 5];
    syn_shape ms = syn_shape4(2, 3, 4, 5);
    ref_pool(MAXP, xv, &pc, 4, 5, t); /* max pool, batch norm, adaptive pool; floats between */
    for (int i = 0; i < 2 * 3 * 4 * 5; i++) tf[i] = (float)t[i];
    ref_bn(tf, &ms, one, zero, rm, rv, 0.1, 1e-5, true, t);
    for (int i = 0; i < 2 * 3 * 4 * 5; i++) tf[i] = (float)t[i];
    ref_adaptive(tf, 6, 4, 5, 2, 3, ref);
    TU_CLOSE(yv, ref, 2 * 3 * 2 * 3, 1e-4, 1e-4);
    env_free(&e);
}
END_TEST

/* ---- bad shapes ------------------------------------------------------------- */

/* Each case names the op and the shape its message must mention. */
static const char *const bad_want[][2] = {
    {"max_pool2d", "(1,2,2,3)"}, {"avg_pool2d", "(1,2,2,3)"}, {"max_pool2d", "(1,2,7,9)"},
    {"max_pool2d", "(2,7,9)"},   {"adaptive_avg_pool2d", "(2,7,9)"}, {"batch_norm", "(2,3,5)"},
    {"batch_norm", "(2,3,5)"},   {"layer_norm", "(4,7)"},     {"dropout2d", "(4,7)"},
};
static const int n_bad = (int)(sizeof bad_want / sizeof bad_want[0]);

START_TEST(test_bad_shapes) {
    env e = env_make();
    syn_node *x4 = syn_input(e.g, "x4", SYN_F32, syn_shape4(1, 2, 2, 3));
    syn_node *x7 = syn_input(e.g, "x7", SYN_F32, syn_shape4(1, 2, 7, 9));
    syn_node *x3 = syn_input(e.g, "x3", SYN_F32, syn_shape3(2, 7, 9));
    syn_node *xb = syn_input(e.g, "xb", SYN_F32, syn_shape3(2, 3, 5));
    syn_node *xl = syn_input(e.g, "xl", SYN_F32, syn_shape2(4, 7));
    syn_node *c3 = param_with(&e, "c3", syn_shape1(3), NULL), *c4 = param_with(&e, "c4", syn_shape1(4), NULL);
    syn_node *d6 = param_with(&e, "d6", syn_shape1(6), NULL);
    syn_node *y = NULL;
    switch (_i) {
    case 0: y = syn_max_pool2d(e.g, x4, 3, 3, 1, 1, 0, 0); break;        /* window > input */
    case 1: y = syn_avg_pool2d(e.g, x4, 2, 6, 1, 1, 0, 1, true); break;  /* window > padded input */
    case 2: y = syn_max_pool2d(e.g, x7, 3, 3, 1, 1, 2, 1); break;        /* padding > kernel / 2 */
    case 3: y = syn_max_pool2d(e.g, x3, 2, 2, 0, 0, 0, 0); break;        /* not 4-D */
    case 4: y = syn_adaptive_avg_pool2d(e.g, x3, 2, 2); break;
    case 5: y = syn_batch_norm_op(e.g, xb, c4, c3, c3, c3, 0.1f, 1e-5f); break; /* gamma (4), C = 3 */
    case 6: y = syn_batch_norm_op(e.g, xb, c3, c3, c3, c4, 0.1f, 1e-5f); break; /* running_var (4) */
    case 7: y = syn_layer_norm_op(e.g, xl, d6, d6, 1e-5f); break;             /* gamma (6), D = 7 */
    default: y = syn_dropout2d(e.g, xl, 0.5f); break;                         /* not (N, C, ...) */
    }
    ck_assert_msg(y == NULL, "case %d: built", _i);
    ck_assert_int_eq(syn_graph_status(e.g), SYN_ERR_SHAPE);
    const char *msg = syn_last_error();
    ck_assert_msg(strstr(msg, bad_want[_i][0]) && strstr(msg, bad_want[_i][1]), "case %d: '%s' lacks '%s' or '%s'", _i,
                  msg, bad_want[_i][0], bad_want[_i][1]);
    ck_assert_int_eq(syn_graph_compile(e.g, syn_cpu(), NULL), SYN_ERR_SHAPE);
    env_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cnn_ops");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_pool, 0, 3 * n_pool_cases);
    tcase_add_loop_test(tc, test_max_pool_via_intermediate, 0, n_pool_cases);
    tcase_add_test(tc, test_max_pool_ties);
    tcase_add_test(tc, test_max_pool_2x2_ties_and_nan);
    tcase_add_loop_test(tc, test_adaptive_avg_pool, 0, n_adaptive_cases);
    suite_add_tcase(s, tc);
    tc = tcase_create("norm");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_batch_norm, 0, 4 * n_bn_shapes);
    tcase_add_test(tc, test_batch_norm_layer);
    tcase_add_test(tc, test_batch_norm_single_value);
    tcase_add_loop_test(tc, test_batch_norm_fused, 0, 2 * n_fused_cases);
    tcase_add_test(tc, test_batch_norm_fusion_keeps);
    tcase_add_loop_test(tc, test_layer_norm, 0, n_ln_shapes);
    suite_add_tcase(s, tc);
    tc = tcase_create("dropout2d");
    tcase_add_loop_test(tc, test_dropout2d_train, 0, 3);
    tcase_add_test(tc, test_dropout2d_seed);
    tcase_add_loop_test(tc, test_dropout2d_identity, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("graph");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_accumulate, 0, 6);
    tcase_add_test(tc, test_chain);
    tcase_add_test(tc, test_partial_batch);
    tcase_add_loop_test(tc, test_bad_shapes, 0, n_bad);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
