/* Backend consistency for the convolutional-network ops: conv2d and
 * conv_transpose2d (cuDNN), max / average / adaptive pooling, batch norm
 * (training with its running statistics, and eval), layer norm and dropout2d,
 * forward and backward on cuda:0 against the CPU backend on the same inputs
 * (parameters initialised from one seed on both devices), the dropout2d mask
 * bit for bit, and three Adam steps of a small CNN. Runs without forking (CUDA
 * must not be initialised in a parent that forks); without a GPU it prints one
 * line and succeeds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cudautil.h"

#define SH1(a) {1, {a}}
#define SH2(a, b) {2, {a, b}}
#define SH3(a, b, c) {3, {a, b, c}}
#define SH4(a, b, c, d) {4, {a, b, c, d}}

/* fp32 on both backends, relative error by norm: ||cuda - cpu|| / ||cpu||.
 * Pooling, normalisation and dropout use the CPU's arithmetic: 1e-5.
 * Convolutions sum in cuDNN's order (TF32 off): 1e-4. */
#define TOL 1e-5
#define TOL_CONV 1e-4

/* ---- the op cases ----------------------------------------------------------- */

typedef enum { K_CONV, K_CONVT, K_MAXPOOL, K_AVGPOOL, K_ADAPTIVE, K_BN, K_BN_ACT, K_LN, K_DROPOUT2D } kind;

typedef struct {
    const char *what;
    kind k;
    syn_shape x, w;  /* x: the input; w: conv weight (ndim 0: none) */
    bool bias;       /* conv: with a bias (K) */
    syn_conv_params cp;
    int kh, kw, sh, sw, ph, pw; /* pooling window; adaptive: kh x kw is the output */
    bool incl;       /* avg: count_include_pad */
    bool eval;       /* BN: eval mode (running statistics) */
    float f;         /* dropout2d p; K_BN_ACT: leaky relu's slope (0: relu) */
    int res;         /* K_BN_ACT: 0 act(bn(x)), 1 act(bn(x) + z), 2 act(bn(x) + x) */
} op_case;

#define CP(...) .cp = {__VA_ARGS__}

static const op_case cases[] = {
    /* conv2d: w (K, C/G, R, S) */
    {"conv 1x1 (2,3,5,7) -> 4", K_CONV, .x = SH4(2, 3, 5, 7), .w = SH4(4, 3, 1, 1), .bias = true},
    /* 2,720 output values per channel: the bias and its gradient run in 2 chunks (cuda_common.h) */
    {"conv 1x1 (8,3,20,17) -> 5", K_CONV, .x = SH4(8, 3, 20, 17), .w = SH4(5, 3, 1, 1), .bias = true},
    {"conv 3x3 s1 p1 (2,5,9,11) -> 7", K_CONV, .x = SH4(2, 5, 9, 11), .w = SH4(7, 5, 3, 3), .bias = true, CP(.pad_h = 1, .pad_w = 1)},
    {"conv 3x3 stride 2 p1 (3,3,13,10) -> 5", K_CONV, .x = SH4(3, 3, 13, 10), .w = SH4(5, 3, 3, 3), .bias = true,
     CP(.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1)},
    {"conv 7x7 stride 2 pad 3 (2,3,23,19) -> 5", K_CONV, .x = SH4(2, 3, 23, 19), .w = SH4(5, 3, 7, 7), .bias = true,
     CP(.stride_h = 2, .stride_w = 2, .pad_h = 3, .pad_w = 3)},
    {"conv non-square 3x5 s(1,2) p(1,2) (2,7,11,14) -> 3", K_CONV, .x = SH4(2, 7, 11, 14), .w = SH4(3, 7, 3, 5), .bias = true,
     CP(.stride_h = 1, .stride_w = 2, .pad_h = 1, .pad_w = 2)},
    {"conv dilation 2 p2 (2,3,12,12) -> 4", K_CONV, .x = SH4(2, 3, 12, 12), .w = SH4(4, 3, 3, 3), .bias = false,
     CP(.pad_h = 2, .pad_w = 2, .dilation_h = 2, .dilation_w = 2)},
    {"conv groups 2 (2,6,9,9) -> 4", K_CONV, .x = SH4(2, 6, 9, 9), .w = SH4(4, 3, 3, 3), .bias = true, CP(.pad_h = 1, .pad_w = 1, .groups = 2)},
    {"conv depthwise (2,5,8,8)", K_CONV, .x = SH4(2, 5, 8, 8), .w = SH4(5, 1, 3, 3), .bias = true, CP(.pad_h = 1, .pad_w = 1, .groups = 5)},
    {"conv batch 1 (1,7,10,10) -> 3", K_CONV, .x = SH4(1, 7, 10, 10), .w = SH4(3, 7, 3, 3), .bias = false},
    {"conv 5x5 (3,5,16,16) -> 16", K_CONV, .x = SH4(3, 5, 16, 16), .w = SH4(16, 5, 5, 5), .bias = true, CP(.pad_h = 2, .pad_w = 2)},
    /* conv_transpose2d: w (C, K/G, R, S) */
    {"convT 3x3 stride 2 p1 outpad 1 (2,4,5,6) -> 3", K_CONVT, .x = SH4(2, 4, 5, 6), .w = SH4(4, 3, 3, 3), .bias = true,
     CP(.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .out_pad_h = 1, .out_pad_w = 1)},
    {"convT 4x4 stride 2 p1 (2,5,4,4) -> 3", K_CONVT, .x = SH4(2, 5, 4, 4), .w = SH4(5, 3, 4, 4), .bias = true,
     CP(.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1)},
    {"convT groups 2 dilation 2 p1 (1,4,6,5) -> 6", K_CONVT, .x = SH4(1, 4, 6, 5), .w = SH4(4, 3, 3, 3), .bias = false,
     CP(.pad_h = 1, .pad_w = 1, .dilation_h = 2, .dilation_w = 2, .groups = 2)},
    {"convT 1x1 (2,3,4,4) -> 5", K_CONVT, .x = SH4(2, 3, 4, 4), .w = SH4(3, 5, 1, 1), .bias = true},
    {"convT 4x4 from 1x1 (3,7,1,1) -> 4", K_CONVT, .x = SH4(3, 7, 1, 1), .w = SH4(7, 4, 4, 4), .bias = false},
    /* pooling */
    {"max 2x2 (2,3,8,8)", K_MAXPOOL, .x = SH4(2, 3, 8, 8), .kh = 2, .kw = 2},
    {"max 3x3 s2 p1 (2,5,11,9)", K_MAXPOOL, .x = SH4(2, 5, 11, 9), .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1},
    {"max 2x3 s(1,2) (1,7,7,10)", K_MAXPOOL, .x = SH4(1, 7, 7, 10), .kh = 2, .kw = 3, .sh = 1, .sw = 2},
    {"avg 3x3 s2 p1 include pad (2,3,11,9)", K_AVGPOOL, .x = SH4(2, 3, 11, 9), .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1,
     .pw = 1, .incl = true},
    {"avg 3x3 s1 p1 exclude pad (2,5,7,8)", K_AVGPOOL, .x = SH4(2, 5, 7, 8), .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1,
     .pw = 1},
    {"avg 2x2 (2,3,8,8)", K_AVGPOOL, .x = SH4(2, 3, 8, 8), .kh = 2, .kw = 2, .incl = true},
    {"adaptive (2,3,10,7) -> 3x4", K_ADAPTIVE, .x = SH4(2, 3, 10, 7), .kh = 3, .kw = 4},
    {"adaptive global (1,5,7,7) -> 1x1", K_ADAPTIVE, .x = SH4(1, 5, 7, 7), .kh = 1, .kw = 1},
    {"adaptive up (2,3,5,6) -> 7x9", K_ADAPTIVE, .x = SH4(2, 3, 5, 6), .kh = 7, .kw = 9},
    /* normalisation */
    {"batch_norm training (4,5,6,7)", K_BN, .x = SH4(4, 5, 6, 7)},
    {"batch_norm training (16,7)", K_BN, .x = SH2(16, 7)},
    {"batch_norm training batch 1 (1,3,5,5)", K_BN, .x = SH4(1, 3, 5, 5)},
    {"batch_norm eval (3,5,4,4)", K_BN, .x = SH4(3, 5, 4, 4), .eval = true},
    /* channels of over 2,048 values are cut into chunks (norm.cu): chunk ends
     * inside a plane, planes smaller than a block, and one value per plane */
    {"batch_norm training, 6 chunks (32,3,17,19)", K_BN, .x = SH4(32, 3, 17, 19)},
    {"batch_norm training, 2 chunks of 6-value planes (600,4,2,3)", K_BN, .x = SH4(600, 4, 2, 3)},
    {"batch_norm training, 3 chunks (5000,3)", K_BN, .x = SH2(5000, 3)},
    {"batch_norm eval, 3 chunks (40,2,10,11)", K_BN, .x = SH4(40, 2, 10, 11), .eval = true},
    /* batch norm with a fused epilogue (core/fuse.c): act(bn(x) [+ z]) */
    {"batch_norm+relu training (4,5,6,7)", K_BN_ACT, .x = SH4(4, 5, 6, 7)},
    {"batch_norm+add+relu training, 6 chunks (32,3,17,19)", K_BN_ACT, .x = SH4(32, 3, 17, 19), .res = 1},
    {"batch_norm+add+relu eval (3,5,4,4)", K_BN_ACT, .x = SH4(3, 5, 4, 4), .res = 1, .eval = true},
    {"batch_norm+leaky_relu training (16,7)", K_BN_ACT, .x = SH2(16, 7), .f = 0.2f},
    {"batch_norm+add+leaky_relu eval (40,2,10,11)", K_BN_ACT, .x = SH4(40, 2, 10, 11), .f = 0.2f, .res = 1, .eval = true},
    {"batch_norm+add(x)+relu training (6,4,5,5)", K_BN_ACT, .x = SH4(6, 4, 5, 5), .res = 2},
    {"layer_norm (6,37)", K_LN, .x = SH2(6, 37)},
    {"layer_norm (2,5,100)", K_LN, .x = SH3(2, 5, 100)},
    {"layer_norm (130,16)", K_LN, .x = SH2(130, 16)},
    /* dropout2d */
    {"dropout2d 0.3 (4,6,5,5)", K_DROPOUT2D, .x = SH4(4, 6, 5, 5), .f = 0.3f},
    {"dropout2d 0.5 (8,16,7)", K_DROPOUT2D, .x = SH3(8, 16, 7), .f = 0.5f},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static bool is_conv(const op_case *c) { return c->k == K_CONV || c->k == K_CONVT; }

/* The op of case c on r's graph, its operands (not the running statistics,
 * which batch norm updates in place) reached by `route` (cudautil.h). */
static syn_node *build_op(cu_rig *r, const op_case *c, int route) {
    syn_graph *g = r->g;
    syn_node *in[4] = {0}, *y = NULL; /* the operands: x, w, b or x, gamma, beta, z */
    int n_in = 0;
#define ROUTE(p) (in[n_in++] = cu_route(g, (p), route))
    syn_node *x = ROUTE(cu_param(g, "x", c->x, -1, 1));
    int64_t C = c->x.dim[1], D = c->x.dim[c->x.ndim - 1];
    switch (c->k) {
    case K_CONV:
    case K_CONVT: {
        syn_node *w = ROUTE(cu_param(g, "w", c->w, -0.5f, 0.5f));
        int64_t K = c->k == K_CONV ? c->w.dim[0] : c->w.dim[1] * (c->cp.groups ? c->cp.groups : 1);
        syn_node *b = c->bias ? ROUTE(cu_param(g, "b", syn_shape1(K), -1, 1)) : NULL;
        y = c->k == K_CONV ? syn_conv2d_op(g, x, w, b, &c->cp) : syn_conv_transpose2d_op(g, x, w, b, &c->cp);
        break;
    }
    case K_MAXPOOL: y = syn_max_pool2d(g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw); break;
    case K_AVGPOOL: y = syn_avg_pool2d(g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->incl); break;
    case K_ADAPTIVE: y = syn_adaptive_avg_pool2d(g, x, c->kh, c->kw); break;
    case K_BN: case K_BN_ACT: {
        syn_node *gamma = ROUTE(cu_param(g, "gamma", syn_shape1(C), 0.5f, 1.5f));
        syn_node *beta = ROUTE(cu_param(g, "beta", syn_shape1(C), -1, 1));
        syn_node *rm = cu_param(g, "running_mean", syn_shape1(C), -0.5f, 0.5f);
        syn_node *rv = cu_param(g, "running_var", syn_shape1(C), 0.5f, 2.0f);
        y = syn_batch_norm_op(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
        if (c->k == K_BN) break;
        if (c->res) y = syn_add(g, y, c->res == 1 ? ROUTE(cu_param(g, "z", c->x, -1, 1)) : x);
        y = c->f > 0.0f ? syn_leaky_relu(g, y, c->f) : syn_relu(g, y);
        break;
    }
    case K_LN: {
        syn_node *gamma = ROUTE(cu_param(g, "gamma", syn_shape1(D), 0.5f, 1.5f));
        syn_node *beta = ROUTE(cu_param(g, "beta", syn_shape1(D), -1, 1));
        y = syn_layer_norm_op(g, x, gamma, beta, 1e-5f);
        break;
    }
    case K_DROPOUT2D: y = syn_dropout2d(g, x, c->f); break;
    }
#undef ROUTE
    for (int k = 0; k < n_in; k++) cu_route_extra(r, in[k], k, route);
    return y;
}

/* One device's copy of a case: parameters (same seed on both devices, so the
 * same values), the op's output y and L = sum(y * wgt) + sum(p * wgt<i>) over
 * the op's parameters p (cudautil.h). */
static void rig_build(cu_rig *r, const op_case *c, syn_device dev, uint64_t seed, int route) {
    cu_rig_open(r, dev, seed);
    cu_rig_finish(r, c->what, build_op(r, c, route), dev, seed, -1, 1, true);
    syn_graph_set_training(r->g, !c->eval);
}

/* Every case, run twice (the second run takes cached cuDNN algorithms, the
 * running statistics move twice): output, every parameter's gradient and
 * every parameter's value (running statistics included), CUDA vs CPU. */
static void op_case_matches(int ci, int route) {
    const op_case *c = &cases[ci];
    const double tol = is_conv(c) ? TOL_CONV : TOL;
    uint64_t seed = tu_seed() ^ ((uint64_t)ci * 0x9E3779B97F4A7C15ull);
    cu_rig cpu, gpu;
    rig_build(&cpu, c, syn_cpu(), seed, route);
    rig_build(&gpu, c, syn_cuda(0), seed, route);
    char what[192];
    if (c->k == K_BN_ACT) { /* the chain runs as one node on both devices */
        const char *fused = c->res ? (c->f > 0.0f ? "batch_norm+add+leaky_relu" : "batch_norm+add+relu")
                                   : (c->f > 0.0f ? "batch_norm+leaky_relu" : "batch_norm+relu");
        ck_assert_str_eq(syn_node_op_name(cpu.y), fused);
        ck_assert_str_eq(syn_node_op_name(gpu.y), fused);
    }
    for (int round = 0; round < 2; round++) {
        cu_rig_run(&cpu);
        cu_rig_run(&gpu);
        snprintf(what, sizeof what, "%s, %s (run %d)", c->what, cu_route_name[route], round + 1);
        cu_rig_compare_output(&gpu, &cpu, what, tol, tu_rel_err);
        float la;
        TU_OK(syn_graph_read_scalar(gpu.g, gpu.loss, &la));
        ck_assert_msg(isfinite(la), "%s: loss %g on cuda", what, la);
        cu_compare_params(gpu.p, cpu.p, true, what, tol, tu_rel_err);
        cu_compare_params(gpu.p, cpu.p, false, what, tol, tu_rel_err);
    }
    cu_rig_free(&gpu);
    cu_rig_free(&cpu);
}

START_TEST(op_matches_cpu) { op_case_matches(_i, CU_DIRECT); }
END_TEST

/* The operands behind an intermediate node: the op's backward writes their
 * first gradient, then adds to one another term wrote (cudautil.h). */
START_TEST(op_matches_cpu_via_intermediate) { op_case_matches(_i / 2, _i % 2 ? CU_SECOND : CU_FRESH); }
END_TEST

/* An output padding below the dilation but not the stride is valid (the CPU
 * runs it) but outside what cuDNN's adjoint gives: a clear
 * SYN_ERR_UNSUPPORTED from the forward pass, never a crash or a wrong shape. */
START_TEST(convT_outpad_over_stride_refused) {
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cuda(0), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *x = cu_param(g, "x", syn_shape4(1, 2, 5, 5), -1, 1), *w = cu_param(g, "w", syn_shape4(2, 3, 3, 3), -1, 1);
    syn_conv_params cp = {.stride_h = 1, .stride_w = 1, .dilation_h = 2, .dilation_w = 2, .out_pad_h = 1, .out_pad_w = 1};
    syn_node *y = syn_conv_transpose2d_op(g, x, w, NULL, &cp);
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    TU_OK(syn_graph_compile(g, syn_cuda(0), NULL));
    ck_assert_int_eq(syn_graph_forward(g), SYN_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(syn_last_error(), "output padding (1, 1) not below the stride"), "%s", syn_last_error());
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* Batch norm in training mode moves the running statistics by the formula
 * (unbiased variance), on the device, identically to the CPU. */
START_TEST(batch_norm_running_stats) {
    enum { NB = 40, C = 4, S = 90, M = NB * S }; /* M > 2048: the statistics come from 2 chunks */
    const op_case c = {"batch_norm training (40,4,9,10)", K_BN, .x = SH4(NB, C, 9, 10)};
    cu_rig cpu, gpu;
    rig_build(&cpu, &c, syn_cpu(), tu_seed(), CU_DIRECT);
    rig_build(&gpu, &c, syn_cuda(0), tu_seed(), CU_DIRECT);
    syn_tensor *t;
    static float x[NB * C * S];
    float rm0[C], rv0[C], rm[C], rv[C];
    TU_OK(syn_params_find(gpu.p, "x", &t, NULL));
    TU_OK(syn_tensor_read(t, x, sizeof x));
    TU_OK(syn_params_find(gpu.p, "running_mean", &t, NULL));
    TU_OK(syn_tensor_read(t, rm0, sizeof rm0));
    TU_OK(syn_params_find(gpu.p, "running_var", &t, NULL));
    TU_OK(syn_tensor_read(t, rv0, sizeof rv0));
    cu_rig_run(&gpu);
    cu_rig_run(&cpu);
    TU_OK(syn_params_find(gpu.p, "running_mean", &t, NULL));
    TU_OK(syn_tensor_read(t, rm, sizeof rm));
    TU_OK(syn_params_find(gpu.p, "running_var", &t, NULL));
    TU_OK(syn_tensor_read(t, rv, sizeof rv));
    for (int64_t ch = 0; ch < C; ch++) {
        double s = 0, s2 = 0;
        for (int64_t n = 0; n < NB; n++)
            for (int64_t j = 0; j < S; j++) s += x[(n * C + ch) * S + j];
        double mu = s / (double)M;
        for (int64_t n = 0; n < NB; n++)
            for (int64_t j = 0; j < S; j++) {
                double d = x[(n * C + ch) * S + j] - mu;
                s2 += d * d;
            }
        double want_m = 0.9 * rm0[ch] + 0.1 * mu, want_v = 0.9 * rv0[ch] + 0.1 * s2 / (double)(M - 1);
        ck_assert_msg(fabs(rm[ch] - want_m) <= 1e-6 * (1 + fabs(want_m)) && fabs(rv[ch] - want_v) <= 1e-6 * (1 + want_v),
                      "channel %lld: running mean %.9g (want %.9g), var %.9g (want %.9g)", (long long)ch, rm[ch],
                      want_m, rv[ch], want_v);
    }
    cu_rig_free(&gpu);
    cu_rig_free(&cpu);
}
END_TEST

/* dropout2d draws the same Philox numbers on both devices: identical masks,
 * bit for bit, forward and backward, across two forwards; whole channels go. */
START_TEST(dropout2d_mask_identical) {
    const op_case c = {"dropout2d 0.5", K_DROPOUT2D, .x = SH4(7, 23, 3, 5), .f = 0.5f};
    cu_rig cpu, gpu;
    rig_build(&cpu, &c, syn_cpu(), tu_seed(), CU_DIRECT);
    rig_build(&gpu, &c, syn_cuda(0), tu_seed(), CU_DIRECT);
    for (int round = 0; round < 2; round++) {
        cu_rig_run(&cpu);
        cu_rig_run(&gpu);
        int64_t n, dropped = 0;
        float *a = cu_rig_same_bits(&gpu, &cpu, "dropout2d", round, &n);
        for (int64_t ch = 0; ch < 7 * 23; ch++) {
            int zeros = 0;
            for (int j = 0; j < 15; j++) zeros += a[ch * 15 + j] == 0.0f;
            ck_assert_msg(zeros == 0 || zeros == 15, "channel %lld partly dropped", (long long)ch);
            dropped += zeros == 15;
        }
        ck_assert_msg(dropped > 7 * 23 / 4 && dropped < 3 * 7 * 23 / 4, "dropout2d 0.5 dropped %lld of %d channels",
                      (long long)dropped, 7 * 23);
        free(a);
    }
    cu_rig_free(&gpu);
    cu_rig_free(&cpu);
}
END_TEST

/* ---- a small CNN, three Adam steps ------------------------------------------ */

/* conv 3x3 (no bias: batch norm follows) - batch norm - relu - max pool 2x2 -
 * linear 10 - cross-entropy, on (B, 3, 12, 12) inputs */
static void cnn_build(cu_model *m, syn_device dev, uint64_t seed, int64_t batch) {
    cu_model_open(m, dev, seed);
    m->x = syn_input(m->g, "x", SYN_F32, syn_shape4(batch, 3, 12, 12));
    m->y = syn_input(m->g, "y", SYN_I32, syn_shape1(batch));
    syn_conv_opts co = {.no_bias = true, .conv = {.pad_h = 1, .pad_w = 1}};
    syn_node *h = syn_conv2d(m->g, m->x, 8, 3, 3, "conv", &co);
    h = syn_batch_norm(m->g, h, "bn");
    h = syn_relu(m->g, h);
    h = syn_max_pool2d(m->g, h, 2, 2, 0, 0, 0, 0);
    h = syn_linear(m->g, syn_flatten(m->g, h), 10, "fc", NULL);
    m->loss = syn_cross_entropy(m->g, h, m->y);
    cu_model_finish(m, dev);
}

/* Losses and every parameter (batch-norm running statistics included) after
 * each of three steps, the last on a partial batch. relu and max pooling are
 * not smooth: a pre-activation or a window tie within rounding would route a
 * gradient differently on one device; with random data that is rare and
 * moves a parameter far less than the bound. */
START_TEST(cnn_adam_steps_match) {
    const cu_steps s = {"cnn", 3, 16, 11, 10, -1.0f, 1.0f, 78, TOL_CONV, tu_rel_err};
    cu_models_match(cnn_build, tu_seed() ^ 0xC11Bull, &s);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------- */

int main(void) {
    Suite *s = suite_create("cuda_cnn");
    TCase *tc = tcase_create("ops");
    CU_ADD_LOOP_TEST(tc, op_matches_cpu, N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("ops_via"); /* its own case: gpu-check's racecheck runs "ops" alone */
    CU_ADD_LOOP_TEST(tc, op_matches_cpu_via_intermediate, 2 * N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("device");
    CU_ADD_TEST(tc, batch_norm_running_stats);
    CU_ADD_TEST(tc, convT_outpad_over_stride_refused);
    CU_ADD_TEST(tc, dropout2d_mask_identical);
    CU_ADD_TEST(tc, cnn_adam_steps_match);
    suite_add_tcase(s, tc);
    return cu_run(s);
}
