/* Backend consistency: every op forward and backward on cuda:0 against the CPU
 * backend on the same inputs (parameters initialised from one seed on both
 * devices), three Adam steps of an MLP, optimizer updates and clipping, the
 * dropout mask, copies and fills, the caching allocator, out-of-memory and
 * error paths. Runs without forking (CUDA must not be initialised in a parent
 * that forks); without a GPU it prints one line and succeeds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#ifdef SYN_HAVE_CUDA
#include "cuda/cuda_common.h"
#endif

#define SH1(a) {1, {a}}
#define SH2(a, b) {2, {a, b}}
#define SH3(a, b, c) {3, {a, b, c}}
#define SH4(a, b, c, d) {4, {a, b, c, d}}

/* fp32 on both backends: within 1e-5 of the CPU, relative to the tensor's largest value */
#define TOL 1e-5

/* max|got - want| / max(1e-6, max|want|); NaN or a size mismatch is infinite */
static double rel_err(const float *got, const float *want, int64_t n) {
    double diff = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i]) || isinf(got[i]) != isinf(want[i])) return INFINITY;
        if (isinf(want[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        double d = fabs((double)got[i] - want[i]);
        if (d > diff) diff = d;
        if (fabs(want[i]) > mag) mag = fabs(want[i]);
    }
    return diff / (mag > 1e-6 ? mag : 1e-6);
}

#define CHECK_CLOSE(what, got, want, n, tol)                                                                 \
    do {                                                                                                     \
        double e_ = rel_err((got), (want), (n));                                                             \
        ck_assert_msg(e_ <= (tol), "%s: cuda differs from cpu by %g (relative, limit %g, seed %llu)", (what), \
                      e_, (double)(tol), (unsigned long long)tu_seed());                                     \
    } while (0)

static float *fmalloc(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- the op cases ----------------------------------------------------------- */

typedef enum {
    K_ADD, K_SUB, K_MUL, K_DIV, K_ADD_SCALAR, K_MUL_SCALAR, K_POW_SCALAR, K_MATMUL, K_LINEAR,
    K_RELU, K_LEAKY_RELU, K_SIGMOID, K_TANH, K_GELU, K_SOFTMAX, K_LOG_SOFTMAX, K_SUM, K_MEAN,
    K_RESHAPE, K_TRANSPOSE, K_CONCAT, K_DROPOUT, K_DETACH, K_MSE, K_SSE, K_CE, K_BCE
} kind;

typedef struct {
    const char *what;
    kind k;
    int n_in;        /* operands: parameters p0.. (CE: p0 logits, then labels) */
    syn_shape in[3];
    float lo[3], hi[3];
    float f;         /* scalar, slope, dropout p */
    int axis;
    unsigned axes;
    bool keep;
    int perm[SYN_MAX_DIMS];
    syn_shape target;
    bool pos_dy;     /* upstream gradient in [0.5, 1.5] rather than [-1, 1] (see below) */
} op_case;

#define U(l, h) .lo = {l, l, l}, .hi = {h, h, h}

static const op_case cases[] = {
    {"add (5,7)+(5,7)", K_ADD, 2, {SH2(5, 7), SH2(5, 7)}, U(-1, 1)},
    {"add (3,5,7)+(5,1)", K_ADD, 2, {SH3(3, 5, 7), SH2(5, 1)}, U(-1, 1)},
    /* A scalar broadcast over > 1024 outputs takes the block-reduction path
     * (double) while the CPU adds in float: positive terms keep the CPU's own
     * rounding (~n eps) far below the tolerance, which cancellation would not. */
    {"add (1)+(37,59)", K_ADD, 2, {SH1(1), SH2(37, 59)}, U(-1, 1), .pos_dy = true},
    {"sub (4,1,6)-(3,1)", K_SUB, 2, {SH3(4, 1, 6), SH2(3, 1)}, U(-1, 1)},
    {"sub (13,1)-(1,31)", K_SUB, 2, {SH2(13, 1), SH2(1, 31)}, U(-1, 1)},
    {"mul (2,3,5)*(5)", K_MUL, 2, {SH3(2, 3, 5), SH1(5)}, U(-1, 1)},
    {"mul (41,53)*(1)", K_MUL, 2, {SH2(41, 53), SH1(1)}, U(0.5f, 1.5f), .pos_dy = true},
    {"mul (67,521)*(521)", K_MUL, 2, {SH2(67, 521), SH1(521)}, U(-1, 1)},
    {"mul (6,1,1,3)*(2,1,3)", K_MUL, 2, {SH4(6, 1, 1, 3), SH3(2, 1, 3)}, U(-1, 1)},
    {"div (6,9)/(1,9)", K_DIV, 2, {SH2(6, 9), SH2(1, 9)}, .lo = {-1, 0.5f}, .hi = {1, 2}},
    {"div (2,3,1)/(2,1,4)", K_DIV, 2, {SH3(2, 3, 1), SH3(2, 1, 4)}, .lo = {-1, 0.5f}, .hi = {1, 2}},
    {"add_scalar (7,13)", K_ADD_SCALAR, 1, {SH2(7, 13)}, U(-1, 1), .f = 2.5f},
    {"mul_scalar (33,1031)", K_MUL_SCALAR, 1, {SH2(33, 1031)}, U(-1, 1), .f = -1.75f},
    {"pow_scalar 2.5", K_POW_SCALAR, 1, {SH2(13, 7)}, U(0.5f, 2), .f = 2.5f},
    {"pow_scalar 3 negative base", K_POW_SCALAR, 1, {SH1(31)}, U(-2, 2), .f = 3.0f},

    {"matmul (7,65)@(65,9)", K_MATMUL, 2, {SH2(7, 65), SH2(65, 9)}, U(-1, 1)},
    {"matmul batched (3,5,17)@(3,17,6)", K_MATMUL, 2, {SH3(3, 5, 17), SH3(3, 17, 6)}, U(-1, 1)},
    {"matmul shared b (2,4,33)@(33,5)", K_MATMUL, 2, {SH3(2, 4, 33), SH2(33, 5)}, U(-1, 1)},
    {"matmul 4-D (2,3,5,7)@(2,3,7,4)", K_MATMUL, 2, {SH4(2, 3, 5, 7), SH4(2, 3, 7, 4)}, U(-1, 1)},
    {"linear (37,65) w(11,65) b", K_LINEAR, 3, {SH2(37, 65), SH2(11, 65), SH1(11)}, U(-1, 1)},
    {"linear (37,65) w(11,65)", K_LINEAR, 2, {SH2(37, 65), SH2(11, 65)}, U(-1, 1)},
    {"linear 3-D (2,5,13) w(7,13) b", K_LINEAR, 3, {SH3(2, 5, 13), SH2(7, 13), SH1(7)}, U(-1, 1)},
    {"linear (300,20) w(70,20) b", K_LINEAR, 3, {SH2(300, 20), SH2(70, 20), SH1(70)}, U(-1, 1)},

    {"relu (33,1031)", K_RELU, 1, {SH2(33, 1031)}, U(-1, 1)},
    {"leaky_relu 0.1 (2,3,33)", K_LEAKY_RELU, 1, {SH3(2, 3, 33)}, U(-1, 1), .f = 0.1f},
    {"sigmoid (7,13)", K_SIGMOID, 1, {SH2(7, 13)}, U(-8, 8)},
    {"tanh (31)", K_TANH, 1, {SH1(31)}, U(-5, 5)},
    {"gelu (2,3,33)", K_GELU, 1, {SH3(2, 3, 33)}, U(-5, 5)},

    {"softmax last (9,37)", K_SOFTMAX, 1, {SH2(9, 37)}, U(-4, 4), .axis = -1},
    {"softmax axis 0 (5,4,3)", K_SOFTMAX, 1, {SH3(5, 4, 3)}, U(-4, 4), .axis = 0},
    {"softmax last (5,1000)", K_SOFTMAX, 1, {SH2(5, 1000)}, U(-4, 4), .axis = -1},
    {"log_softmax last (9,100)", K_LOG_SOFTMAX, 1, {SH2(9, 100)}, U(-4, 4), .axis = -1},
    {"log_softmax middle (3,7,5)", K_LOG_SOFTMAX, 1, {SH3(3, 7, 5)}, U(-4, 4), .axis = 1},
    {"log_softmax logits ~1000", K_LOG_SOFTMAX, 1, {SH2(7, 13)}, U(990, 1010), .axis = -1},

    {"sum all (7,11,13)", K_SUM, 1, {SH3(7, 11, 13)}, U(-1, 1), .axes = SYN_ALL_AXES},
    {"sum axis 1 (4,300,3)", K_SUM, 1, {SH3(4, 300, 3)}, U(-1, 1), .axes = SYN_AXIS(1)},
    {"sum axes 0,2 keepdim (5,6,7)", K_SUM, 1, {SH3(5, 6, 7)}, U(-1, 1), .axes = SYN_AXIS(0) | SYN_AXIS(2), .keep = true},
    {"sum 4-D axes 1,3", K_SUM, 1, {SH4(2, 3, 5, 7)}, U(-1, 1), .axes = SYN_AXIS(1) | SYN_AXIS(3)},
    {"mean all (3,7,5)", K_MEAN, 1, {SH3(3, 7, 5)}, U(-1, 1), .axes = SYN_ALL_AXES},
    {"mean axis 0 (9,8)", K_MEAN, 1, {SH2(9, 8)}, U(-1, 1), .axes = SYN_AXIS(0)},
    {"mean axis 1 (33,1031)", K_MEAN, 1, {SH2(33, 1031)}, U(-1, 1), .axes = SYN_AXIS(1)},

    {"reshape (6,10)->(3,20)", K_RESHAPE, 1, {SH2(6, 10)}, U(-1, 1), .target = SH2(3, 20)},
    {"transpose (13,17) (1,0)", K_TRANSPOSE, 1, {SH2(13, 17)}, U(-1, 1), .perm = {1, 0}},
    {"transpose (4,5,6) (2,0,1)", K_TRANSPOSE, 1, {SH3(4, 5, 6)}, U(-1, 1), .perm = {2, 0, 1}},
    {"transpose (2,3,4,5) (1,3,0,2)", K_TRANSPOSE, 1, {SH4(2, 3, 4, 5)}, U(-1, 1), .perm = {1, 3, 0, 2}},
    {"concat 3-D axis 1", K_CONCAT, 3, {SH3(2, 3, 4), SH3(2, 5, 4), SH3(2, 1, 4)}, U(-1, 1), .axis = 1},
    {"concat axis 0", K_CONCAT, 2, {SH2(3, 4), SH2(2, 4)}, U(-1, 1), .axis = 0},
    {"concat axis -1", K_CONCAT, 3, {SH2(4, 2), SH2(4, 7), SH2(4, 1)}, U(-1, 1), .axis = -1},

    {"dropout 0.3 training (40,50)", K_DROPOUT, 1, {SH2(40, 50)}, U(-1, 1), .f = 0.3f},
    {"detach (8,9)", K_DETACH, 1, {SH2(8, 9)}, U(-1, 1)},

    {"mse (13,7)", K_MSE, 2, {SH2(13, 7), SH2(13, 7)}, U(-1, 1)},
    {"mse (33,1031)", K_MSE, 2, {SH2(33, 1031), SH2(33, 1031)}, U(-1, 1)},
    {"sse (2,3,33)", K_SSE, 2, {SH3(2, 3, 33), SH3(2, 3, 33)}, U(-1, 1)},
    {"cross_entropy (37,10)", K_CE, 2, {SH2(37, 10), SH1(37)}, U(-4, 4)},
    {"cross_entropy (5,1000)", K_CE, 2, {SH2(5, 1000), SH1(5)}, U(-4, 4)},
    {"cross_entropy (1031,33)", K_CE, 2, {SH2(1031, 33), SH1(1031)}, U(-4, 4)},
    {"bce_with_logits (11,5)", K_BCE, 2, {SH2(11, 5), SH2(11, 5)}, .lo = {-10, 0}, .hi = {10, 1}},
    {"bce_with_logits (33,1031)", K_BCE, 2, {SH2(33, 1031), SH2(33, 1031)}, .lo = {-30, 0}, .hi = {30, 1}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* One device's copy of a case: parameters (same seed on both devices, so the
 * same values), the op's output y, and L = sum(y * wgt) (a random upstream
 * gradient) or L = 1.7 y for scalar outputs. */
typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *y, *loss, *labels;
} rig;

static syn_node *build_op(syn_graph *g, const op_case *c, syn_node **x) {
    switch (c->k) {
    case K_ADD: return syn_add(g, x[0], x[1]);
    case K_SUB: return syn_sub(g, x[0], x[1]);
    case K_MUL: return syn_mul(g, x[0], x[1]);
    case K_DIV: return syn_div(g, x[0], x[1]);
    case K_ADD_SCALAR: return syn_add_scalar(g, x[0], c->f);
    case K_MUL_SCALAR: return syn_mul_scalar(g, x[0], c->f);
    case K_POW_SCALAR: return syn_pow_scalar(g, x[0], c->f);
    case K_MATMUL: return syn_matmul(g, x[0], x[1]);
    case K_LINEAR: return syn_linear_op(g, x[0], x[1], c->n_in == 3 ? x[2] : NULL);
    case K_RELU: return syn_relu(g, x[0]);
    case K_LEAKY_RELU: return syn_leaky_relu(g, x[0], c->f);
    case K_SIGMOID: return syn_sigmoid(g, x[0]);
    case K_TANH: return syn_tanh(g, x[0]);
    case K_GELU: return syn_gelu(g, x[0]);
    case K_SOFTMAX: return syn_softmax(g, x[0], c->axis);
    case K_LOG_SOFTMAX: return syn_log_softmax(g, x[0], c->axis);
    case K_SUM: return syn_sum(g, x[0], c->axes, c->keep);
    case K_MEAN: return syn_mean(g, x[0], c->axes, c->keep);
    case K_RESHAPE: return syn_reshape(g, x[0], c->target);
    case K_TRANSPOSE: return syn_transpose(g, x[0], c->perm);
    case K_CONCAT: return syn_concat(g, x, c->n_in, c->axis);
    case K_DROPOUT: return syn_dropout(g, x[0], c->f);
    case K_DETACH: return syn_detach(g, x[0]);
    case K_MSE: return syn_mse_loss(g, x[0], x[1]);
    case K_SSE: return syn_sse_loss(g, x[0], x[1]);
    case K_CE: return syn_cross_entropy(g, x[0], x[1]);
    case K_BCE: return syn_bce_with_logits(g, x[0], x[1]);
    }
    return NULL;
}

static void rig_build(rig *r, const op_case *c, syn_device dev, uint64_t seed) {
    memset(r, 0, sizeof *r);
    TU_OK(syn_params_create(dev, seed, &r->p));
    TU_OK(syn_graph_create(r->p, &r->g));
    syn_node *x[3] = {0};
    for (int k = 0; k < c->n_in; k++) {
        if (c->k == K_CE && k == 1) {
            x[k] = r->labels = syn_input(r->g, "labels", SYN_I32, c->in[k]);
            continue;
        }
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        syn_init init = {SYN_INIT_UNIFORM, c->lo[k], c->hi[k], 0};
        x[k] = syn_param(r->g, name, c->in[k], &init);
    }
    r->y = build_op(r->g, c, x);
    ck_assert_msg(r->y != NULL, "%s: build failed: %s", c->what, syn_last_error());
    TU_OK(syn_graph_keep(r->g, r->y));
    syn_shape ys = syn_node_shape(r->y);
    if (ys.ndim == 0) {
        r->loss = syn_mul_scalar(r->g, r->y, 1.7f); /* dL/dy = 1.7: kernels must read it */
    } else {
        syn_init init = {SYN_INIT_UNIFORM, c->pos_dy ? 0.5f : -1.0f, c->pos_dy ? 1.5f : 1.0f, 0};
        syn_node *w = syn_param(r->g, "wgt", ys, &init);
        r->loss = syn_sum(r->g, syn_mul(r->g, r->y, w), SYN_ALL_AXES, false);
    }
    ck_assert_msg(r->loss != NULL, "%s: build failed: %s", c->what, syn_last_error());
    TU_OK(syn_graph_compile(r->g, dev, NULL));
    syn_graph_set_seed(r->g, seed ^ 0x5eed);
}

static void rig_free(rig *r) {
    syn_graph_free(r->g);
    syn_params_free(r->p);
}

/* Forward and backward; labels (may be NULL) are fed first. */
static void rig_run(rig *r, const int32_t *labels) {
    TU_OK(syn_params_zero_grad(r->p));
    if (r->labels) TU_OK(syn_graph_feed(r->g, r->labels, labels, syn_node_shape(r->labels)));
    TU_OK(syn_graph_forward(r->g));
    TU_OK(syn_graph_backward(r->g, r->loss));
}

static float *read_node(rig *r, int64_t *n) {
    syn_shape s = syn_graph_shape(r->g, r->y);
    *n = syn_shape_numel(&s);
    float *v = fmalloc(*n);
    TU_OK(syn_graph_read(r->g, r->y, v, (size_t)*n * sizeof(float)));
    return v;
}

static float *read_param(syn_params *p, int i, bool grad, int64_t *n) {
    syn_tensor *v, *gr;
    TU_OK(syn_params_get(p, i, NULL, &v, &gr));
    syn_tensor *t = grad ? gr : v;
    *n = syn_tensor_numel(t);
    float *h = fmalloc(*n);
    TU_OK(syn_tensor_read(t, h, (size_t)*n * sizeof(float)));
    return h;
}

/* Every op case: output, loss and every parameter gradient, CUDA vs CPU. */
START_TEST(op_matches_cpu) {
    const op_case *c = &cases[_i];
    uint64_t seed = tu_seed() ^ ((uint64_t)_i * 0x9E3779B97F4A7C15ull);
    rig cpu, gpu;
    rig_build(&cpu, c, syn_cpu(), seed);
    rig_build(&gpu, c, syn_cuda(0), seed);
    int32_t *labels = NULL;
    if (c->k == K_CE) {
        int64_t N = c->in[1].dim[0], C = c->in[0].dim[1];
        labels = malloc((size_t)N * sizeof *labels);
        ck_assert_ptr_nonnull(labels);
        tu_rng rng = tu_rng_make((uint64_t)_i);
        for (int64_t i = 0; i < N; i++) labels[i] = (int32_t)(tu_next(&rng) % (uint64_t)C);
    }
    rig_run(&cpu, labels);
    rig_run(&gpu, labels);

    char what[160];
    int64_t n1, n2;
    float *a = read_node(&gpu, &n1), *b = read_node(&cpu, &n2);
    ck_assert_int_eq(n1, n2);
    snprintf(what, sizeof what, "%s: forward", c->what);
    CHECK_CLOSE(what, a, b, n1, TOL);
    /* L = sum(y * wgt) may cancel to near 0: measure its error against
     * sum |y * wgt|, the scale its rounding errors have */
    double scale = 0;
    syn_tensor *wt;
    if (syn_params_find(cpu.p, "wgt", &wt, NULL) == SYN_OK) {
        float *w = fmalloc(n2);
        TU_OK(syn_tensor_read(wt, w, (size_t)n2 * sizeof(float)));
        for (int64_t i = 0; i < n2; i++) scale += fabs((double)b[i] * w[i]);
        free(w);
    }
    free(a);
    free(b);
    float la, lb;
    TU_OK(syn_graph_read_scalar(gpu.g, gpu.loss, &la));
    TU_OK(syn_graph_read_scalar(cpu.g, cpu.loss, &lb));
    if (scale == 0) scale = fabs(lb);
    ck_assert_msg(isfinite(la) && fabs((double)la - lb) <= TOL * (scale > 1e-6 ? scale : 1e-6),
                  "%s: loss %.9g on cuda, %.9g on cpu (scale %g, seed %llu)", c->what, la, lb, scale,
                  (unsigned long long)tu_seed());

    int np = syn_params_count(cpu.p);
    ck_assert_int_eq(np, syn_params_count(gpu.p));
    for (int i = 0; i < np; i++) {
        const char *name;
        TU_OK(syn_params_get(cpu.p, i, &name, NULL, NULL));
        a = read_param(gpu.p, i, true, &n1);
        b = read_param(cpu.p, i, true, &n2);
        ck_assert_int_eq(n1, n2);
        snprintf(what, sizeof what, "%s: gradient of %s", c->what, name);
        CHECK_CLOSE(what, a, b, n1, TOL);
        free(a);
        free(b);
    }
    free(labels);
    rig_free(&gpu);
    rig_free(&cpu);
}
END_TEST

/* ---- whole training steps ---------------------------------------------------------- */

typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *x, *y, *loss;
    syn_optim *opt;
} mlp;

static void mlp_build(mlp *m, syn_device dev, uint64_t seed, int64_t batch) {
    TU_OK(syn_params_create(dev, seed, &m->p));
    TU_OK(syn_graph_create(m->p, &m->g));
    int64_t hidden[1] = {64};
    m->x = syn_input(m->g, "x", SYN_F32, syn_shape2(batch, 784));
    m->y = syn_input(m->g, "y", SYN_I32, syn_shape1(batch));
    /* tanh, not relu: a pre-activation within rounding of 0 would flip relu's
     * derivative on one device only; a smooth activation keeps gradients
     * continuous in the inputs, so fp32 rounding stays fp32-sized. */
    syn_node *logits = syn_mlp(m->g, m->x, hidden, 1, 10, SYN_ACT_TANH, 0.0f);
    m->loss = syn_cross_entropy(m->g, logits, m->y);
    ck_assert_msg(m->loss != NULL, "mlp build: %s", syn_last_error());
    TU_OK(syn_graph_compile(m->g, dev, NULL));
    /* eps 1e-5 rather than 1e-8: with a tiny eps the first Adam step is
     * lr * sign(g), which flips on rounding for the rare |g| ~ 1e-9 and
     * would make the comparison flaky; a larger eps keeps it well-conditioned. */
    syn_optim_config cfg = syn_optim_defaults(SYN_OPTIM_ADAM);
    cfg.eps = 1e-5f;
    TU_OK(syn_optim_create(m->p, &cfg, &m->opt));
}

static void mlp_free(mlp *m) {
    syn_optim_free(m->opt);
    syn_graph_free(m->g);
    syn_params_free(m->p);
}

static float mlp_step(mlp *m, const float *x, const int32_t *y, int64_t rows) {
    float loss;
    TU_OK(syn_params_zero_grad(m->p));
    TU_OK(syn_graph_feed(m->g, m->x, x, syn_shape2(rows, 784)));
    TU_OK(syn_graph_feed(m->g, m->y, y, syn_shape1(rows)));
    TU_OK(syn_graph_forward(m->g));
    TU_OK(syn_graph_backward(m->g, m->loss));
    TU_OK(syn_optim_step(m->opt));
    TU_OK(syn_graph_read_scalar(m->g, m->loss, &loss));
    return loss;
}

/* 784-64-10 tanh MLP, three Adam steps on random data (the last a partial batch):
 * losses and every parameter after each step. */
START_TEST(mlp_adam_steps_match) {
    const int64_t B = 32;
    uint64_t seed = tu_seed() ^ 0xA11CEull;
    mlp cpu, gpu;
    mlp_build(&cpu, syn_cpu(), seed, B);
    mlp_build(&gpu, syn_cuda(0), seed, B);
    float *x = fmalloc(B * 784);
    int32_t y[32];
    tu_rng rng = tu_rng_make(77);
    char what[128];
    for (int step = 0; step < 3; step++) {
        int64_t rows = step == 2 ? 17 : B;
        tu_fill(&rng, x, rows * 784, 0.0f, 1.0f);
        for (int64_t i = 0; i < rows; i++) y[i] = (int32_t)(tu_next(&rng) % 10);
        float lc = mlp_step(&cpu, x, y, rows), lg = mlp_step(&gpu, x, y, rows);
        snprintf(what, sizeof what, "mlp step %d: loss", step + 1);
        CHECK_CLOSE(what, &lg, &lc, 1, TOL);
        for (int i = 0; i < syn_params_count(cpu.p); i++) {
            const char *name;
            int64_t n1, n2;
            TU_OK(syn_params_get(cpu.p, i, &name, NULL, NULL));
            float *a = read_param(gpu.p, i, false, &n1), *b = read_param(cpu.p, i, false, &n2);
            ck_assert_int_eq(n1, n2);
            snprintf(what, sizeof what, "mlp step %d: parameter %s", step + 1, name);
            CHECK_CLOSE(what, a, b, n1, TOL);
            free(a);
            free(b);
        }
    }
    free(x);
    mlp_free(&gpu);
    mlp_free(&cpu);
}
END_TEST

/* Every optimizer, three steps from identical parameters and gradients. */
START_TEST(optimizers_match) {
    syn_optim_config cfgs[6];
    cfgs[0] = syn_optim_defaults(SYN_OPTIM_SGD);
    cfgs[1] = syn_optim_defaults(SYN_OPTIM_SGD);
    cfgs[1].momentum = 0.9f;
    cfgs[1].weight_decay = 0.01f;
    cfgs[2] = cfgs[1];
    cfgs[2].nesterov = true;
    cfgs[3] = syn_optim_defaults(SYN_OPTIM_RMSPROP);
    cfgs[3].weight_decay = 0.01f;
    cfgs[4] = syn_optim_defaults(SYN_OPTIM_ADAM);
    cfgs[4].weight_decay = 0.01f;
    cfgs[5] = syn_optim_defaults(SYN_OPTIM_ADAMW);
    const syn_shape shapes[2] = {SH2(37, 29), SH1(1031)};
    for (int k = 0; k < 6; k++) {
        syn_params *ps[2];
        syn_optim *os[2];
        syn_device devs[2] = {syn_cpu(), syn_cuda(0)};
        syn_init init = {SYN_INIT_UNIFORM, -1, 1, 0};
        for (int d = 0; d < 2; d++) {
            TU_OK(syn_params_create(devs[d], tu_seed() + (uint64_t)k, &ps[d]));
            TU_OK(syn_params_add(ps[d], "a", shapes[0], &init, NULL));
            TU_OK(syn_params_add(ps[d], "b", shapes[1], &init, NULL));
            TU_OK(syn_optim_create(ps[d], &cfgs[k], &os[d]));
        }
        tu_rng rng = tu_rng_make(100 + (uint64_t)k);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < 2; i++) {
                int64_t n = syn_shape_numel(&shapes[i]);
                float *g = fmalloc(n);
                tu_fill(&rng, g, n, -1, 1);
                for (int d = 0; d < 2; d++) {
                    syn_tensor *gt;
                    TU_OK(syn_params_get(ps[d], i, NULL, NULL, &gt));
                    TU_OK(syn_tensor_write(gt, g, (size_t)n * sizeof(float)));
                }
                free(g);
            }
            TU_OK(syn_optim_step(os[0]));
            TU_OK(syn_optim_step(os[1]));
        }
        for (int i = 0; i < 2; i++) {
            int64_t n1, n2;
            float *a = read_param(ps[1], i, false, &n1), *b = read_param(ps[0], i, false, &n2);
            char what[96];
            snprintf(what, sizeof what, "%s config %d, parameter %d", syn_optim_kind_name(cfgs[k].kind), k, i);
            CHECK_CLOSE(what, a, b, n1, 1e-6);
            free(a);
            free(b);
        }
        for (int d = 0; d < 2; d++) {
            syn_optim_free(os[d]);
            syn_params_free(ps[d]);
        }
    }
}
END_TEST

/* Global-norm clipping: the norm and the scaled gradients. */
START_TEST(clip_grad_norm_matches) {
    syn_params *ps[2];
    syn_device devs[2] = {syn_cpu(), syn_cuda(0)};
    const syn_shape shapes[2] = {SH2(65, 33), SH1(300)};
    float norms[2];
    for (int d = 0; d < 2; d++) {
        TU_OK(syn_params_create(devs[d], 5, &ps[d]));
        for (int i = 0; i < 2; i++) TU_OK(syn_params_add(ps[d], i ? "b" : "a", shapes[i], NULL, NULL));
    }
    tu_rng rng = tu_rng_make(9);
    for (int i = 0; i < 2; i++) {
        int64_t n = syn_shape_numel(&shapes[i]);
        float *g = fmalloc(n);
        tu_fill(&rng, g, n, -2, 2);
        for (int d = 0; d < 2; d++) {
            syn_tensor *gt;
            TU_OK(syn_params_get(ps[d], i, NULL, NULL, &gt));
            TU_OK(syn_tensor_write(gt, g, (size_t)n * sizeof(float)));
        }
        free(g);
    }
    for (int d = 0; d < 2; d++) TU_OK(syn_params_clip_grad_norm(ps[d], 1.5f, &norms[d]));
    CHECK_CLOSE("clip norm", &norms[1], &norms[0], 1, TOL);
    for (int i = 0; i < 2; i++) {
        int64_t n1, n2;
        float *a = read_param(ps[1], i, true, &n1), *b = read_param(ps[0], i, true, &n2);
        CHECK_CLOSE("clipped gradient", a, b, n1, TOL);
        free(a);
        free(b);
    }
    for (int d = 0; d < 2; d++) syn_params_free(ps[d]);
}
END_TEST

/* Dropout draws the same Philox numbers on both devices: identical masks,
 * bit for bit, forward and backward, across two forwards. */
START_TEST(dropout_mask_identical) {
    const op_case c = {"dropout 0.5", K_DROPOUT, 1, {SH2(61, 67)}, U(-1, 1), .f = 0.5f};
    rig cpu, gpu;
    rig_build(&cpu, &c, syn_cpu(), tu_seed());
    rig_build(&gpu, &c, syn_cuda(0), tu_seed());
    for (int round = 0; round < 2; round++) {
        rig_run(&cpu, NULL);
        rig_run(&gpu, NULL);
        int64_t n1, n2, zeros = 0;
        float *a = read_node(&gpu, &n1), *b = read_node(&cpu, &n2);
        ck_assert_int_eq(n1, n2);
        ck_assert_msg(memcmp(a, b, (size_t)n1 * sizeof(float)) == 0, "dropout outputs differ (round %d)", round);
        for (int64_t i = 0; i < n1; i++) zeros += a[i] == 0.0f;
        ck_assert_msg(zeros > n1 / 3 && zeros < 2 * n1 / 3, "dropout 0.5 zeroed %lld of %lld", (long long)zeros,
                      (long long)n1);
        free(a);
        free(b);
        a = read_param(gpu.p, 0, true, &n1);
        b = read_param(cpu.p, 0, true, &n2);
        ck_assert_msg(memcmp(a, b, (size_t)n1 * sizeof(float)) == 0, "dropout gradients differ (round %d)", round);
        free(a);
        free(b);
    }
    rig_free(&gpu);
    rig_free(&cpu);
}
END_TEST

/* ---- memory, copies, errors ---------------------------------------------------------- */

START_TEST(copies_and_fills) {
    char desc[512];
    TU_OK(syn_device_describe(syn_cuda(0), desc, sizeof desc));
    ck_assert(strlen(desc) > 0);
    float h[1000], back[1000];
    tu_rng rng = tu_rng_make(3);
    tu_fill(&rng, h, 1000, -5, 5);
    syn_tensor *t, *u, *v;
    TU_OK(syn_tensor_from_host(syn_cuda(0), SYN_F32, syn_shape2(10, 100), h, &t));
    TU_OK(syn_tensor_read(t, back, sizeof back));
    ck_assert(memcmp(h, back, sizeof h) == 0);
    TU_OK(syn_tensor_to(t, syn_cuda(0), &u)); /* device to device */
    TU_OK(syn_tensor_fill(t, 3.5f));
    TU_OK(syn_tensor_read(u, back, sizeof back));
    ck_assert(memcmp(h, back, sizeof h) == 0);
    TU_OK(syn_tensor_to(u, syn_cpu(), &v)); /* device to host */
    TU_OK(syn_tensor_read(v, back, sizeof back));
    ck_assert(memcmp(h, back, sizeof h) == 0);
    TU_OK(syn_tensor_read(t, back, sizeof back));
    for (int i = 0; i < 1000; i++) ck_assert(back[i] == 3.5f);
    syn_tensor_free(t);
    syn_tensor_free(u);
    syn_tensor_free(v);
    int32_t iv[777];
    TU_OK(syn_tensor_create(syn_cuda(0), SYN_I32, syn_shape1(777), &t));
    TU_OK(syn_tensor_read(t, iv, sizeof iv));
    for (int i = 0; i < 777; i++) ck_assert_int_eq(iv[i], 0); /* created zeroed */
    TU_OK(syn_tensor_fill(t, -7.0f));
    TU_OK(syn_tensor_read(t, iv, sizeof iv));
    for (int i = 0; i < 777; i++) ck_assert_int_eq(iv[i], -7);
    syn_tensor_free(t);
    TU_OK(syn_device_synchronize(syn_cuda(0)));
}
END_TEST

/* Allocating and freeing the same sizes again and again never reaches cudaMalloc. */
START_TEST(allocator_reuses_blocks) {
#ifdef SYN_HAVE_CUDA
    const int64_t sizes[] = {1, 1000, 12345, 1 << 20, 3 << 20, 7};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    syn_tensor *t[6];
    syn__cuda_mem_stats before, after;
    for (int it = 0; it < 100; it++) {
        for (int k = 0; k < ns; k++) TU_OK(syn_tensor_create(syn_cuda(0), SYN_F32, syn_shape1(sizes[k]), &t[k]));
        for (int k = 0; k < ns; k++) syn_tensor_free(t[k]);
        if (it == 0) TU_OK(syn__cuda_memory_stats(0, &before));
    }
    TU_OK(syn__cuda_memory_stats(0, &after));
    const char *nc = getenv("SYN_CUDA_NO_CACHE");
    if (nc && strcmp(nc, "1") == 0) { /* caching off (sanitizer runs): nothing may stay behind */
        ck_assert_msg(after.in_use == before.in_use && after.reserved == before.reserved,
                      "no-cache mode: in use %zu -> %zu, reserved %zu -> %zu", before.in_use, after.in_use,
                      before.reserved, after.reserved);
        return;
    }
    ck_assert_msg(after.mallocs == before.mallocs && after.reserved == before.reserved,
                  "cudaMalloc calls %llu -> %llu, reserved %zu -> %zu bytes", (unsigned long long)before.mallocs,
                  (unsigned long long)after.mallocs, before.reserved, after.reserved);
    ck_assert(after.in_use <= before.in_use);
#endif
}
END_TEST

/* 1 TiB: a clean SYN_ERR_OOM naming the size, and the device still works. */
START_TEST(oom_is_an_error) {
    syn_tensor *t = NULL;
    syn_status s = syn_tensor_create(syn_cuda(0), SYN_F32, syn_shape1(INT64_C(1) << 38), &t);
    ck_assert_int_eq(s, SYN_ERR_OOM);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(syn_last_error(), "1099511627776") != NULL, "message: %s", syn_last_error());
    float v[5];
    TU_OK(syn_tensor_create(syn_cuda(0), SYN_F32, syn_shape1(5), &t));
    TU_OK(syn_tensor_fill(t, 2.0f));
    TU_OK(syn_tensor_read(t, v, sizeof v));
    ck_assert(v[4] == 2.0f);
    syn_tensor_free(t);
}
END_TEST

/* A bad device index and a bad label are errors with a message; the device
 * keeps working after them. */
START_TEST(errors_are_reported) {
    int count = syn_device_count(SYN_DEVICE_CUDA);
    syn_tensor *t = NULL;
    ck_assert_int_ne(syn_tensor_create(syn_cuda(count), SYN_F32, syn_shape1(4), &t), SYN_OK);
    ck_assert_msg(strstr(syn_last_error(), "only") != NULL, "message: %s", syn_last_error());
    ck_assert_ptr_null(t);

    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cuda(0), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_init init = {SYN_INIT_UNIFORM, -1, 1, 0};
    syn_node *x = syn_param(g, "x", syn_shape2(4, 3), &init);
    syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(4));
    syn_node *l = syn_cross_entropy(g, x, y);
    ck_assert_ptr_nonnull(l);
    TU_OK(syn_graph_compile(g, syn_cuda(0), NULL));
    int32_t bad[4] = {0, 1, 7, 2}, good[4] = {0, 1, 2, 2};
    TU_OK(syn_graph_feed(g, y, bad, syn_shape1(4)));
    ck_assert_int_eq(syn_graph_forward(g), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "label 7 at row 2") != NULL, "message: %s", syn_last_error());
    TU_OK(syn_graph_feed(g, y, good, syn_shape1(4)));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, l));
    float loss;
    TU_OK(syn_graph_read_scalar(g, l, &loss));
    ck_assert(isfinite(loss) && loss > 0);
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------- */

#define PLAIN_TESTS(X)                                                                                   \
    X(copies_and_fills) X(allocator_reuses_blocks) X(oom_is_an_error) X(errors_are_reported)                 \
    X(dropout_mask_identical) X(optimizers_match) X(clip_grad_norm_matches) X(mlp_adam_steps_match)
#define COUNT_ONE(t) +1
enum { N_PLAIN = 0 PLAIN_TESTS(COUNT_ONE) };

static Suite *cuda_suite(void) {
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("ops");
    tcase_add_loop_test(tc, op_matches_cpu, 0, N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("device");
#define ADD_ONE(t) tcase_add_test(tc, t);
    PLAIN_TESTS(ADD_ONE)
#undef ADD_ONE
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (!syn_backend_built(SYN_DEVICE_CUDA) || syn_device_count(SYN_DEVICE_CUDA) == 0) {
        printf("no CUDA device: %d tests skipped\n", N_CASES + N_PLAIN);
        return EXIT_SUCCESS;
    }
    char desc[512];
    if (syn_device_describe(syn_cuda(0), desc, sizeof desc) == SYN_OK) printf("cuda:0: %s\n", desc);
    else printf("cuda:0: describe failed: %s\n", syn_last_error());
    return tu_run_nofork(cuda_suite());
}
