/* The sequence ops on the CPU: slice, embedding and the recurrent op in every
 * mode (tanh, relu, LSTM, GRU). Forward against a plain double reference of
 * PyTorch's cell equations (initial state, per-sample lengths, sequence
 * length 1 and >= 200, sizes large enough for the threaded paths); backward by
 * central finite differences for every operand; the stacked layer's parameter
 * names and its final state carried across batches (truncated BPTT); bad
 * shapes and lengths; an LSTM that learns to echo its input with a delay. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gradutil.h"
#include "core/internal.h"
#include "cpu/cpu.h"

/* ---- slice ------------------------------------------------------------------ */

START_TEST(slice_values_and_grad) {
    static const struct { syn_shape s; int axis; int64_t start, len; } cases[] = {
        {{3, {4, 5, 6}}, 0, 1, 2}, {{3, {4, 5, 6}}, 1, 4, 1}, {{3, {4, 5, 6}}, -1, 2, 3}, {{1, {7}}, 0, 0, 7}};
    for (int c = 0; c < 4; c++) {
        env e = env_make();
        tu_rng r = tu_rng_make(100 + c);
        syn_shape s = cases[c].s;
        int64_t n = syn_shape_numel(&s);
        float *x = rand_array(&r, n, -1, 1);
        syn_node *y = syn_slice(e.g, param_with(&e, "x", s, x), cases[c].axis, cases[c].start, cases[c].len);
        objective o = finish(&e, y, &r, true);
        forward_backward(&e, &o);
        int axis = cases[c].axis < 0 ? cases[c].axis + s.ndim : cases[c].axis;
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= s.dim[d];
        for (int d = axis + 1; d < s.ndim; d++) inner *= s.dim[d];
        int64_t k = 0;
        for (int64_t a = 0; a < outer; a++)
            for (int64_t j = 0; j < cases[c].len * inner; j++, k++)
                ck_assert_float_eq(o.buf[k], x[(a * s.dim[axis] + cases[c].start) * inner + j]);
        ck_assert_int_eq(k, o.n);
        fd_check(&e, &o, "x", "slice", &r);
        env_free(&e);
    }
}
END_TEST

/* Behind an intermediate node, whose gradient the first slice's backward
 * writes fresh (into NaN-poisoned buffers: the rows' other entries must be
 * zeroed by it) and a second, overlapping slice then adds to; large enough
 * for the threaded loops. */
START_TEST(slice_grad_behind_a_node) {
    static const struct { syn_shape s; int axis; int64_t a, b, len; } cases[] = {
        {{3, {64, 9, 130}}, 2, 0, 40, 50}, {{3, {64, 9, 130}}, 1, 2, 3, 4}, {{2, {700, 96}}, 0, 10, 0, 600},
        {{1, {9}}, 0, 4, 1, 5}};
    for (int c = 0; c < 4; c++) {
        env e = env_make();
        tu_rng r = tu_rng_make(150 + c);
        const syn_shape s = cases[c].s;
        float *x = rand_array(&r, syn_shape_numel(&s), -1, 1);
        syn_node *m = syn_mul_scalar(e.g, param_with(&e, "x", s, x), 1.5f);
        syn_node *y = syn_add(e.g, syn_slice(e.g, m, cases[c].axis, cases[c].a, cases[c].len),
                              syn_tanh(e.g, syn_slice(e.g, m, cases[c].axis, cases[c].b, cases[c].len)));
        objective o = finish(&e, y, &r, false);
        forward_backward(&e, &o);
        /* every entry finite; outside both windows exactly 0 */
        const int64_t n = syn_shape_numel(&s);
        int64_t inner = 1;
        for (int d = cases[c].axis + 1; d < s.ndim; d++) inner *= s.dim[d];
        float *gx = rand_array(&r, n, 0, 0);
        read_param(&e, "x", gx, true);
        for (int64_t i = 0; i < n; i++) {
            const int64_t at = i / inner % s.dim[cases[c].axis];
            const bool in = (at >= cases[c].a && at < cases[c].a + cases[c].len) ||
                            (at >= cases[c].b && at < cases[c].b + cases[c].len);
            ck_assert_msg(isfinite(gx[i]) && (in || gx[i] == 0.0f), "case %d: dx[%lld] = %g", c, (long long)i, gx[i]);
        }
        fd_check(&e, &o, "x", "two slices", &r);
        env_free(&e);
    }
}
END_TEST

START_TEST(slice_bad_window) {
    env e = env_make();
    syn_node *x = syn_input(e.g, "x", SYN_F32, syn_shape2(3, 4));
    ck_assert_ptr_null(syn_slice(e.g, x, 1, 2, 3));
    ck_assert_int_eq(syn_graph_status(e.g), SYN_ERR_SHAPE);
    ck_assert_msg(strstr(syn_last_error(), "slice") && strstr(syn_last_error(), "[2, 5)"), "%s", syn_last_error());
    env_free(&e);
}
END_TEST

/* ---- embedding ---------------------------------------------------------------- */

START_TEST(embedding_values_and_grad) {
    env e = env_make();
    tu_rng r = tu_rng_make(200);
    const int V = 7, D = 5;
    int32_t idx[2][3] = {{3, 0, 6}, {3, 3, 1}}; /* repeats: their gradients add */
    float *w = rand_array(&r, V * D, -1, 1);
    syn_node *in = syn_input(e.g, "idx", SYN_I32, syn_shape2(2, 3));
    syn_node *y = syn_embedding_op(e.g, in, param_with(&e, "w", syn_shape2(V, D), w));
    assert_shape("embedding", syn_node_shape(y), syn_shape3(2, 3, D));
    objective o = finish(&e, y, &r, true);
    TU_OK(syn_graph_feed(e.g, in, idx, syn_shape2(2, 3)));
    forward_backward(&e, &o);
    for (int i = 0; i < 6; i++)
        for (int d = 0; d < D; d++) ck_assert_float_eq(o.buf[i * D + d], w[(&idx[0][0])[i] * D + d]);
    fd_check(&e, &o, "w", "embedding", &r);
    /* an index outside the table fails the forward pass, naming it */
    idx[1][2] = V;
    TU_OK(syn_graph_feed(e.g, in, idx, syn_shape2(2, 3)));
    ck_assert_int_eq(syn_graph_forward(e.g), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "embedding: index 7"), "%s", syn_last_error());
    env_free(&e);
}
END_TEST

/* ---- the recurrent op: reference ------------------------------------------------- */

typedef struct {
    syn_rnn_mode mode;
    int B, T, I, H;
    bool bias, state;
    int lengths[4]; /* all 0: no lengths input */
} rnn_case;

static const rnn_case rnn_cases[] = {
    {SYN_RNN_TANH, 3, 5, 4, 6, true, false, {0}},
    {SYN_RNN_TANH, 2, 4, 3, 5, false, true, {4, 2}},
    {SYN_RNN_RELU, 2, 4, 3, 5, true, true, {0}},
    {SYN_RNN_LSTM, 3, 5, 4, 6, true, false, {0}},
    {SYN_RNN_LSTM, 3, 5, 4, 6, true, true, {5, 2, 3}},
    {SYN_RNN_LSTM, 1, 1, 3, 4, false, true, {0}},    /* one step, batch 1 */
    {SYN_RNN_LSTM, 4, 3, 2, 3, true, true, {0, 3, 1, 2}}, /* a zero length */
    {SYN_RNN_GRU, 3, 6, 5, 4, true, false, {0}},
    {SYN_RNN_GRU, 3, 6, 5, 4, true, true, {6, 1, 4}},
    {SYN_RNN_GRU, 2, 1, 3, 5, false, false, {0}},
};
static const int n_rnn_cases = (int)(sizeof rnn_cases / sizeof rnn_cases[0]);
static const char *const mode_names[] = {"tanh", "relu", "lstm", "gru"};

static double sg(double v) { return 1.0 / (1.0 + exp(-v)); }

/* PyTorch's cell equations, one sample and step at a time, in double. */
static void ref_rnn(const rnn_case *c, int64_t T, const float *x, const float *wi, const float *wh, const float *bi,
                    const float *bh, const float *s0, const int *len, double *y) {
    int64_t H = c->H, G = c->mode == SYN_RNN_LSTM ? 4 : c->mode == SYN_RNN_GRU ? 3 : 1;
    int64_t S = c->mode == SYN_RNN_LSTM ? 2 * H : H;
    double *h = malloc((size_t)S * sizeof *h), *pi = malloc((size_t)(G * H) * sizeof *pi),
           *ph = malloc((size_t)(G * H) * sizeof *ph);
    for (int b = 0; b < c->B; b++) {
        for (int64_t k = 0; k < S; k++) h[k] = s0 ? s0[b * S + k] : 0.0;
        for (int64_t t = 0; t < T; t++) {
            double *out = y + (b * T + t) * S;
            if (len && t >= len[b]) {
                memcpy(out, h, (size_t)S * sizeof *out);
                continue;
            }
            for (int64_t q = 0; q < G * H; q++) {
                pi[q] = bi ? bi[q] : 0.0;
                ph[q] = bh ? bh[q] : 0.0;
                for (int k = 0; k < c->I; k++) pi[q] += (double)wi[q * c->I + k] * x[(b * T + t) * c->I + k];
                for (int64_t k = 0; k < H; k++) ph[q] += (double)wh[q * H + k] * h[k];
            }
            for (int64_t j = 0; j < H; j++) {
                if (c->mode == SYN_RNN_TANH) out[j] = tanh(pi[j] + ph[j]);
                else if (c->mode == SYN_RNN_RELU) out[j] = fmax(0.0, pi[j] + ph[j]);
                else if (c->mode == SYN_RNN_LSTM) {
                    double i = sg(pi[j] + ph[j]), f = sg(pi[H + j] + ph[H + j]);
                    double gg = tanh(pi[2 * H + j] + ph[2 * H + j]), o = sg(pi[3 * H + j] + ph[3 * H + j]);
                    out[H + j] = f * h[H + j] + i * gg;
                    out[j] = o * tanh(out[H + j]);
                } else {
                    double r = sg(pi[j] + ph[j]), z = sg(pi[H + j] + ph[H + j]);
                    double nn = tanh(pi[2 * H + j] + r * ph[2 * H + j]);
                    out[j] = (1 - z) * nn + z * h[j];
                }
            }
            memcpy(h, out, (size_t)S * sizeof *h);
        }
    }
    free(h);
    free(pi);
    free(ph);
}

/* The gradients of sum(y * R) for a single-gate cell (tanh or ReLU) by
 * back-propagation through time in double, from the forward recomputed in
 * double: grads holds x, w_ih, w_hh, b_ih, b_hh, s0 (NULL where absent). The
 * ReLU's kink defeats finite differences near zero pre-activations; this
 * reference takes the derivative on the side the forward took. */
static void ref_simple_rnn_grads(const rnn_case *c, int64_t T, const float *x, const float *wi, const float *wh,
                                 const float *bi, const float *bh, const float *s0, const int *len, const float *R,
                                 double *grads[6]) {
    const int64_t H = c->H, I = c->I;
    const int64_t sizes[6] = {c->B * T * I, H * I, H * H, H, H, c->B * H};
    for (int p = 0; p < 6; p++)
        if (grads[p]) memset(grads[p], 0, (size_t)sizes[p] * sizeof(double));
    double *hs = calloc((size_t)((T + 1) * H), sizeof *hs), *da = malloc((size_t)(T * H) * sizeof *da),
           *dh = malloc((size_t)H * sizeof *dh), *nd = malloc((size_t)H * sizeof *nd);
    for (int b = 0; b < c->B; b++) {
        const int64_t L = len ? len[b] : T;
        for (int64_t j = 0; j < H; j++) hs[j] = s0 ? s0[b * H + j] : 0.0; /* hs[t]: the state before step t */
        for (int64_t t = 0; t < L; t++)
            for (int64_t j = 0; j < H; j++) {
                double a = (bi ? bi[j] : 0.0) + (bh ? bh[j] : 0.0);
                for (int64_t k = 0; k < I; k++) a += (double)wi[j * I + k] * x[(b * T + t) * I + k];
                for (int64_t k = 0; k < H; k++) a += (double)wh[j * H + k] * hs[t * H + k];
                double y = c->mode == SYN_RNN_TANH ? tanh(a) : fmax(0.0, a);
                hs[(t + 1) * H + j] = y;
                da[t * H + j] = c->mode == SYN_RNN_TANH ? 1.0 - y * y : (a > 0.0 ? 1.0 : 0.0); /* act'(a) */
            }
        for (int64_t j = 0; j < H; j++) dh[j] = 0.0;
        for (int64_t t = T - 1; t >= 0; t--) {
            for (int64_t j = 0; j < H; j++) dh[j] += R[(b * T + t) * H + j];
            if (t >= L) continue; /* past the end the output is the carried state */
            for (int64_t j = 0; j < H; j++) da[t * H + j] *= dh[j];
            for (int64_t k = 0; k < H; k++) nd[k] = 0.0;
            for (int64_t j = 0; j < H; j++) {
                double g = da[t * H + j];
                if (grads[3]) grads[3][j] += g;
                if (grads[4]) grads[4][j] += g;
                for (int64_t k = 0; k < I; k++) {
                    grads[1][j * I + k] += g * x[(b * T + t) * I + k];
                    grads[0][(b * T + t) * I + k] += g * wi[j * I + k];
                }
                for (int64_t k = 0; k < H; k++) {
                    grads[2][j * H + k] += g * hs[t * H + k];
                    nd[k] += g * wh[j * H + k];
                }
            }
            memcpy(dh, nd, (size_t)H * sizeof *dh);
        }
        if (grads[5])
            for (int64_t j = 0; j < H; j++) grads[5][b * H + j] = dh[j];
    }
    free(hs);
    free(da);
    free(dh);
    free(nd);
}

/* Builds the op over parameters x, w_ih, w_hh (b_ih, b_hh, s0) holding random
 * values; checks the forward pass against ref_rnn; then the gradient of every
 * operand by finite differences. T overrides the case's length when > 0. */
static void rnn_run(const rnn_case *c, int64_t T, uint64_t salt, bool grads) {
    env e = env_make();
    tu_rng r = tu_rng_make(salt);
    int64_t H = c->H, G = c->mode == SYN_RNN_LSTM ? 4 : c->mode == SYN_RNN_GRU ? 3 : 1;
    int64_t S = c->mode == SYN_RNN_LSTM ? 2 * H : H;
    float k = 1.0f / sqrtf((float)H) + 0.3f;
    float *x = rand_array(&r, c->B * T * c->I, -1, 1), *wi = rand_array(&r, G * H * c->I, -k, k),
          *wh = rand_array(&r, G * H * H, -k, k), *bi = c->bias ? rand_array(&r, G * H, -k, k) : NULL,
          *bh = c->bias ? rand_array(&r, G * H, -k, k) : NULL, *s0 = c->state ? rand_array(&r, c->B * S, -1, 1) : NULL;
    bool has_len = false;
    for (int b = 0; b < c->B && b < 4; b++) has_len |= c->lengths[b] != 0; /* at most 4 samples have lengths */
    syn_node *len = has_len ? syn_input(e.g, "lengths", SYN_I32, syn_shape1(c->B)) : NULL;
    syn_node *y = syn_rnn_op(e.g, c->mode, param_with(&e, "x", syn_shape3(c->B, T, c->I), x),
                             param_with(&e, "w_ih", syn_shape2(G * H, c->I), wi),
                             param_with(&e, "w_hh", syn_shape2(G * H, H), wh),
                             bi ? param_with(&e, "b_ih", syn_shape1(G * H), bi) : NULL,
                             bh ? param_with(&e, "b_hh", syn_shape1(G * H), bh) : NULL,
                             s0 ? param_with(&e, "s0", syn_shape2(c->B, S), s0) : NULL, len);
    assert_shape("rnn", syn_node_shape(y), syn_shape3(c->B, T, S));
    objective o = finish(&e, y, &r, true);
    if (len) TU_OK(syn_graph_feed(e.g, len, c->lengths, syn_shape1(c->B)));
    forward_backward(&e, &o);
    double *ref = alloc((size_t)o.n * sizeof *ref);
    ref_rnn(c, T, x, wi, wh, bi, bh, s0, has_len ? c->lengths : NULL, ref);
    char what[96];
    snprintf(what, sizeof what, "%s B%d T%lld I%d H%d%s%s%s", mode_names[c->mode], c->B, (long long)T, c->I, c->H,
             c->bias ? " bias" : "", c->state ? " state0" : "", has_len ? " lengths" : "");
    ck_assert_msg(tu_close_ratio(o.buf, ref, o.n, 1e-5, 1e-4) <= 1.0, "%s: forward differs from the reference (ratio %g)",
                  what, tu_close_ratio(o.buf, ref, o.n, 1e-5, 1e-4));
    static const char *const names[] = {"x", "w_ih", "w_hh", "b_ih", "b_hh", "s0"};
    if (grads && c->mode == SYN_RNN_RELU) { /* against back-propagation in double */
        const int64_t sizes[6] = {c->B * T * c->I, H * c->I, H * H, H, H, c->B * H};
        double *want[6] = {NULL};
        for (int p = 0; p < 6; p++)
            if (!((p == 3 || p == 4) && !c->bias) && !(p == 5 && !c->state))
                want[p] = alloc((size_t)sizes[p] * sizeof(double));
        ref_simple_rnn_grads(c, T, x, wi, wh, bi, bh, s0, has_len ? c->lengths : NULL, o.r, want);
        for (int p = 0; p < 6; p++) {
            if (!want[p]) continue;
            float *got = alloc((size_t)sizes[p] * sizeof(float));
            read_param(&e, names[p], got, true);
            ck_assert_msg(tu_close_ratio(got, want[p], sizes[p], 1e-5, 1e-4) <= 1.0,
                          "%s: d/d %s differs from back-propagation in double (ratio %g)", what, names[p],
                          tu_close_ratio(got, want[p], sizes[p], 1e-5, 1e-4));
        }
    } else if (grads) {
        for (int p = 0; p < 6; p++) {
            if ((p == 3 || p == 4) && !c->bias) continue;
            if (p == 5 && !c->state) continue;
            fd_check(&e, &o, names[p], what, &r);
        }
    }
    env_free(&e);
}

START_TEST(rnn_forward_and_grad) {
    const rnn_case *c = &rnn_cases[_i];
    /* ReLU's kink lies within a finite-difference step of some pre-activations
     * for some seeds: its backward is checked against back-propagation in
     * double instead (ref_simple_rnn_grads) */
    rnn_run(c, c->T, 300 + _i, true);
}
END_TEST

/* Long sequences: 203 steps (the gradient through all of them, sampled). */
START_TEST(rnn_long_sequence) {
    static const rnn_case cs[] = {{SYN_RNN_LSTM, 2, 0, 3, 4, true, true, {203, 150}},
                                  {SYN_RNN_GRU, 2, 0, 3, 4, true, false, {0}},
                                  {SYN_RNN_TANH, 2, 0, 3, 4, true, false, {0}}};
    rnn_run(&cs[_i], 203, 400 + _i, true);
}
END_TEST

/* Batch and hidden sizes above the threading thresholds (B * G H >= 32768;
 * the third on the packed recurrent weights, 513 columns in 17 panels). */
START_TEST(rnn_threaded_sizes) {
    static const rnn_case cs[] = {{SYN_RNN_LSTM, 64, 3, 8, 128, true, true, {0}},
                                  {SYN_RNN_GRU, 64, 3, 8, 171, true, false, {0}},
                                  {SYN_RNN_GRU, 64, 5, 8, 171, true, true, {0}}};
    rnn_run(&cs[_i], cs[_i].T, 500 + _i, false);
}
END_TEST

/* The packed products of panel.c (the recurrent step's), at every level this
 * CPU runs, against a double loop: C (M, N) += A op(W), C holding values
 * first, row strides wider than the rows, edges of tiles and panels. */
START_TEST(panel_gemm_levels) {
    static const int64_t sizes[][3] = {{1, 1, 1},  {2, 31, 7},  {3, 32, 5},   {5, 33, 64},
                                       {6, 64, 3}, {7, 65, 17}, {13, 100, 2}, {64, 513, 171}};
    tu_rng r = tu_rng_make(600);
    for (int level = 0; level <= syn__panel_level_best(); level++)
        for (int si = 0; si < (int)(sizeof sizes / sizeof sizes[0]); si++)
            for (int trans = 0; trans < 2; trans++) {
                env e = env_make(); /* frees the arrays */
                int64_t M = sizes[si][0], N = sizes[si][1], K = sizes[si][2], lda = K + 3, ldc = N + 2;
                float *A = rand_array(&r, M * lda, -1, 1), *W = rand_array(&r, N * K, -1, 1);
                float *C = rand_array(&r, M * ldc, -1, 1), *Wp = alloc(syn__panel_floats(K, N) * sizeof *Wp);
                double *want = alloc((size_t)(M * ldc) * sizeof *want);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < ldc; j++) {
                        double v = C[i * ldc + j];
                        for (int64_t k = 0; j < N && k < K; k++)
                            v += (double)A[i * lda + k] * (trans ? W[j * K + k] : W[k * N + j]);
                        want[i * ldc + j] = v;
                    }
                syn__panel_pack(W, K, N, trans, Wp);
                syn__panel_gemm_at(level, M, N, K, A, lda, Wp, C, ldc);
                ck_assert_msg(tu_close_ratio(C, want, M * ldc, 1e-5, 1e-5) <= 1.0,
                              "%s, M %lld N %lld K %lld%s: ratio %g", syn__panel_level_name(level), (long long)M,
                              (long long)N, (long long)K, trans ? " transposed" : "",
                              tu_close_ratio(C, want, M * ldc, 1e-5, 1e-5));
                env_free(&e);
            }
}
END_TEST

START_TEST(rnn_bad_shapes_and_lengths) {
    env e = env_make();
    syn_node *x = syn_input(e.g, "x", SYN_F32, syn_shape3(2, 4, 3));
    syn_node *wi = param_with(&e, "wi", syn_shape2(20, 3), NULL), *wh = param_with(&e, "wh", syn_shape2(20, 5), NULL);
    syn_node *bad = param_with(&e, "bad", syn_shape2(20, 4), NULL);
    ck_assert_ptr_null(syn_rnn_op(e.g, SYN_RNN_LSTM, x, bad, wh, NULL, NULL, NULL, NULL));
    ck_assert_msg(strstr(syn_last_error(), "w_ih must be"), "%s", syn_last_error());
    env_free(&e);

    e = env_make();
    x = syn_input(e.g, "x", SYN_F32, syn_shape3(2, 4, 3));
    wi = param_with(&e, "wi", syn_shape2(20, 3), NULL);
    wh = param_with(&e, "wh", syn_shape2(20, 5), NULL);
    syn_node *s0 = syn_input(e.g, "s0", SYN_F32, syn_shape2(2, 5)); /* the LSTM's state is 2H wide */
    ck_assert_ptr_null(syn_rnn_op(e.g, SYN_RNN_LSTM, x, wi, wh, NULL, NULL, s0, NULL));
    ck_assert_msg(strstr(syn_last_error(), "state0 must be (batch, 2*hidden)"), "%s", syn_last_error());
    env_free(&e);

    e = env_make();
    x = syn_input(e.g, "x", SYN_F32, syn_shape3(2, 4, 3));
    wi = param_with(&e, "wi", syn_shape2(20, 3), NULL);
    wh = param_with(&e, "wh", syn_shape2(20, 5), NULL);
    syn_node *len = syn_input(e.g, "len", SYN_I32, syn_shape1(2));
    syn_node *y = syn_rnn_op(e.g, SYN_RNN_LSTM, x, wi, wh, NULL, NULL, NULL, len);
    ck_assert_ptr_nonnull(y);
    TU_OK(syn_graph_compile(e.g, syn_cpu(), NULL));
    float xs[24] = {0};
    int32_t lens[2] = {4, 5};
    TU_OK(syn_graph_feed(e.g, x, xs, syn_shape3(2, 4, 3)));
    TU_OK(syn_graph_feed(e.g, len, lens, syn_shape1(2)));
    ck_assert_int_eq(syn_graph_forward(e.g), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "length 5 of sample 1"), "%s", syn_last_error());
    env_free(&e);
}
END_TEST

/* ---- the stacked layer ------------------------------------------------------------ */

START_TEST(layer_names_and_shapes) {
    env e = env_make();
    syn_node *x = syn_input(e.g, "x", SYN_F32, syn_shape3(4, 9, 3));
    syn_rnn_config cfg = {SYN_RNN_LSTM, 8, 2, 0.0f, false};
    syn_node *st;
    syn_node *y = syn_rnn(e.g, x, &cfg, NULL, NULL, "lstm", &st);
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    assert_shape("h", syn_node_shape(y), syn_shape3(4, 9, 8));
    assert_shape("state", syn_node_shape(st), syn_shape3(4, 2, 16));
    static const struct { const char *name; syn_shape s; } want[] = {
        {"lstm.weight_ih_l0", {2, {32, 3}}}, {"lstm.weight_hh_l0", {2, {32, 8}}}, {"lstm.bias_ih_l0", {1, {32}}},
        {"lstm.bias_hh_l0", {1, {32}}},      {"lstm.weight_ih_l1", {2, {32, 8}}}, {"lstm.weight_hh_l1", {2, {32, 8}}},
        {"lstm.bias_ih_l1", {1, {32}}},      {"lstm.bias_hh_l1", {1, {32}}}};
    ck_assert_int_eq(syn_params_count(e.ps), 8);
    for (int i = 0; i < 8; i++) {
        syn_tensor *t;
        TU_OK(syn_params_find(e.ps, want[i].name, &t, NULL));
        assert_shape(want[i].name, syn_tensor_shape(t), want[i].s);
        /* PyTorch's U(-1/sqrt(H), 1/sqrt(H)) */
        int64_t n = syn_tensor_numel(t);
        float *v = alloc((size_t)n * sizeof *v);
        TU_OK(syn_tensor_read(t, v, (size_t)n * sizeof *v));
        for (int64_t k = 0; k < n; k++) ck_assert(fabsf(v[k]) <= 1.0f / sqrtf(8.0f));
    }
    env_free(&e);
}
END_TEST

/* Running 12 steps at once equals running 5 then 7 with the final state of
 * the first fed as the second's initial state (2-layer LSTM and GRU). */
START_TEST(layer_state_carries_across_batches) {
    const syn_rnn_mode modes[2] = {SYN_RNN_LSTM, SYN_RNN_GRU};
    syn_rnn_config cfg = {modes[_i], 6, 2, 0.0f, false};
    int64_t S = modes[_i] == SYN_RNN_LSTM ? 12 : 6, B = 3, I = 4;
    tu_rng r = tu_rng_make(600 + _i);
    syn_params *ps;
    TU_OK(syn_params_create(syn_cpu(), 9, &ps));
    float x[3 * 12 * 4];
    tu_fill(&r, x, 3 * 12 * 4, -1, 1);
    /* the whole sequence */
    syn_graph *g;
    TU_OK(syn_graph_create(ps, &g));
    syn_node *xi = syn_input(g, "x", SYN_F32, syn_shape3(B, 12, I)), *st;
    syn_node *y = syn_rnn(g, xi, &cfg, NULL, NULL, "rnn", &st);
    TU_OK(syn_graph_keep(g, y));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    TU_OK(syn_graph_feed(g, xi, x, syn_shape3(B, 12, I)));
    TU_OK(syn_graph_forward(g));
    float whole[3 * 12 * 6], final_whole[3 * 2 * 12];
    TU_OK(syn_graph_read(g, y, whole, sizeof(float) * B * 12 * 6));
    TU_OK(syn_graph_read(g, st, final_whole, sizeof(float) * B * 2 * S));
    syn_graph_free(g);
    /* 5 steps, then 7 from the carried state */
    float part[2][3 * 7 * 6], carried[3 * 2 * 12], x1[3 * 5 * 4], x2[3 * 7 * 4];
    for (int b = 0; b < 3; b++) {
        memcpy(x1 + b * 5 * I, x + b * 12 * I, sizeof(float) * 5 * I);
        memcpy(x2 + b * 7 * I, x + (b * 12 + 5) * I, sizeof(float) * 7 * I);
    }
    for (int p = 0; p < 2; p++) {
        int64_t T = p ? 7 : 5;
        TU_OK(syn_graph_create(ps, &g));
        xi = syn_input(g, "x", SYN_F32, syn_shape3(B, T, I));
        syn_node *s0 = p ? syn_input(g, "s0", SYN_F32, syn_shape3(B, 2, S)) : NULL;
        y = syn_rnn(g, xi, &cfg, s0, NULL, "rnn", &st);
        TU_OK(syn_graph_keep(g, y));
        TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
        TU_OK(syn_graph_feed(g, xi, p ? x2 : x1, syn_shape3(B, T, I)));
        if (p) TU_OK(syn_graph_feed(g, s0, carried, syn_shape3(B, 2, S)));
        TU_OK(syn_graph_forward(g));
        TU_OK(syn_graph_read(g, y, part[p], sizeof(float) * B * T * 6));
        TU_OK(syn_graph_read(g, st, carried, sizeof(float) * B * 2 * S));
        syn_graph_free(g);
    }
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 7; t++)
            for (int j = 0; j < 6; j++)
                ck_assert_float_eq_tol(part[1][(b * 7 + t) * 6 + j], whole[(b * 12 + 5 + t) * 6 + j], 1e-6);
    for (int k = 0; k < 3 * 2 * S; k++) ck_assert_float_eq_tol(carried[k], final_whole[k], 1e-6);
    syn_params_free(ps);
}
END_TEST

/* An LSTM learns to output the symbol it saw 3 steps earlier: 8 symbols,
 * sequences of 16, Adam; >= 98% of the delayed outputs right. */
START_TEST(lstm_learns_delayed_echo) {
    enum { B = 32, T = 16, V = 8, DELAY = 3, H = 32 };
    syn_params *ps;
    syn_graph *g;
    syn_optim *opt;
    TU_OK(syn_params_create(syn_cpu(), 5, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *tok = syn_input(g, "tok", SYN_I32, syn_shape2(B, T));
    syn_node *lab = syn_input(g, "label", SYN_I32, syn_shape1(B * (T - DELAY)));
    syn_node *e = syn_embedding(g, tok, V, 8, "emb");
    syn_rnn_config cfg = {SYN_RNN_LSTM, H, 1, 0.0f, false};
    syn_node *h = syn_rnn(g, e, &cfg, NULL, NULL, "lstm", NULL);
    syn_node *late = syn_reshape(g, syn_slice(g, h, 1, DELAY, T - DELAY), syn_shape2(-1, H));
    syn_node *logits = syn_linear(g, late, V, "out", NULL);
    syn_node *loss = syn_cross_entropy(g, logits, lab);
    TU_OK(syn_graph_keep(g, logits));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    oc.lr = 0.01f;
    TU_OK(syn_optim_create(ps, &oc, &opt));
    tu_rng r = tu_rng_make(700);
    int32_t toks[B * T], labels[B * (T - DELAY)];
    static float lg[B * (T - DELAY) * V];
    double acc = 0;
    float l = 0;
    for (int step = 0; step < 400; step++) {
        for (int i = 0; i < B * T; i++) toks[i] = (int32_t)(tu_next(&r) % V);
        for (int b = 0; b < B; b++)
            for (int t = DELAY; t < T; t++) labels[b * (T - DELAY) + t - DELAY] = toks[b * T + t - DELAY];
        TU_OK(syn_graph_feed(g, tok, toks, syn_shape2(B, T)));
        TU_OK(syn_graph_feed(g, lab, labels, syn_shape1(B * (T - DELAY))));
        TU_OK(syn_params_zero_grad(ps));
        TU_OK(syn_graph_forward(g));
        TU_OK(syn_graph_backward(g, loss));
        TU_OK(syn_optim_step(opt));
    }
    TU_OK(syn_graph_read_scalar(g, loss, &l));
    TU_OK(syn_graph_read(g, logits, lg, sizeof lg));
    for (int i = 0; i < B * (T - DELAY); i++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[i * V + v] > lg[i * V + best]) best = v;
        acc += best == labels[i];
    }
    acc /= B * (T - DELAY);
    ck_assert_msg(acc >= 0.98, "delayed echo: accuracy %.3f (loss %.4f) after 400 steps", acc, l);
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(ps);
}
END_TEST

/* syn_graph_feed_node carries the final state into the next batch on the
 * device: two 4-step windows through one graph equal one 8-step run; it
 * refuses a node that is not kept and a shape that does not fit. */
START_TEST(state_fed_on_device) {
    syn_params *ps;
    syn_graph *g1, *g2;
    TU_OK(syn_params_create(syn_cpu(), 4, &ps));
    syn_rnn_config cfg = {SYN_RNN_GRU, 5, 2, 0.0f, false};
    float x[2 * 8 * 3], whole[2 * 8 * 5], part[2 * 4 * 5], xw[2 * 4 * 3];
    tu_rng r = tu_rng_make(650);
    tu_fill(&r, x, 2 * 8 * 3, -1, 1);
    TU_OK(syn_graph_create(ps, &g1));
    syn_node *x1 = syn_input(g1, "x", SYN_F32, syn_shape3(2, 8, 3));
    syn_node *y1 = syn_rnn(g1, x1, &cfg, NULL, NULL, "gru", NULL);
    TU_OK(syn_graph_keep(g1, y1));
    TU_OK(syn_graph_compile(g1, syn_cpu(), NULL));
    TU_OK(syn_graph_feed(g1, x1, x, syn_shape3(2, 8, 3)));
    TU_OK(syn_graph_forward(g1));
    TU_OK(syn_graph_read(g1, y1, whole, sizeof whole));
    TU_OK(syn_graph_create(ps, &g2));
    syn_node *x2 = syn_input(g2, "x", SYN_F32, syn_shape3(2, 4, 3)), *s0 = syn_input(g2, "s0", SYN_F32, syn_shape3(2, 2, 5));
    syn_node *st, *y2 = syn_rnn(g2, x2, &cfg, s0, NULL, "gru", &st);
    syn_node *unkept = syn_mul_scalar(g2, y2, 2.0f); /* read by tanh: not kept */
    ck_assert_ptr_nonnull(syn_tanh(g2, unkept));
    TU_OK(syn_graph_keep(g2, y2));
    TU_OK(syn_graph_compile(g2, syn_cpu(), NULL));
    float zeros[2 * 2 * 5] = {0};
    for (int w = 0; w < 2; w++) {
        for (int b = 0; b < 2; b++) memcpy(xw + b * 12, x + b * 24 + w * 12, sizeof(float) * 12);
        TU_OK(syn_graph_feed(g2, x2, xw, syn_shape3(2, 4, 3)));
        if (w == 0) TU_OK(syn_graph_feed(g2, s0, zeros, syn_shape3(2, 2, 5)));
        else TU_OK(syn_graph_feed_node(g2, s0, st));
        TU_OK(syn_graph_forward(g2));
        TU_OK(syn_graph_read(g2, y2, part, sizeof part));
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < 20; k++) ck_assert_float_eq_tol(part[b * 20 + k], whole[b * 40 + w * 20 + k], 1e-6);
    }
    ck_assert_int_eq(syn_graph_feed_node(g2, s0, unkept), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "no kept value"), "%s", syn_last_error());
    ck_assert_int_eq(syn_graph_feed_node(g2, s0, y2), SYN_ERR_SHAPE);
    syn_graph_free(g2);
    syn_graph_free(g1);
    syn_params_free(ps);
}
END_TEST

/* Contexts in two threads at once on the CPU (each with an LSTM and a
 * convolution, both of which use the backend's scratch buffer) give the
 * results one thread gives. */
typedef struct {
    uint64_t seed;
    float loss[3];
    syn_status s;
} thread_job;

static void *thread_run(void *arg) {
    thread_job *j = arg;
    syn_params *ps = NULL;
    syn_graph *g = NULL;
    syn_status s = syn_params_create(syn_cpu(), j->seed, &ps);
    if (s == SYN_OK) s = syn_graph_create(ps, &g);
    if (s == SYN_OK) {
        syn_node *x = syn_input(g, "x", SYN_F32, syn_shape4(4, 2, 12, 12));
        syn_conv_opts co = {.conv = {.pad_h = 1, .pad_w = 1}};
        syn_node *c = syn_relu(g, syn_conv2d(g, x, 6, 3, 3, "conv", &co)); /* (4, 6, 12, 12) */
        syn_node *seq = syn_reshape(g, c, syn_shape3(-1, 12, 72));
        syn_rnn_config rc = {SYN_RNN_LSTM, 24, 2, 0.0f, false};
        syn_node *h = syn_rnn(g, seq, &rc, NULL, NULL, "lstm", NULL);
        syn_node *loss = syn_mean(g, syn_mul(g, h, h), SYN_ALL_AXES, false);
        syn_optim *o = NULL;
        syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
        s = syn_graph_status(g);
        if (s == SYN_OK) s = syn_graph_compile(g, syn_cpu(), NULL);
        if (s == SYN_OK) s = syn_optim_create(ps, &oc, &o);
        float xs[4 * 2 * 12 * 12];
        for (int i = 0; i < 4 * 2 * 12 * 12; i++) xs[i] = (float)((i * 37 + (int)j->seed) % 101) / 50.0f - 1.0f;
        for (int k = 0; k < 3 && s == SYN_OK; k++) {
            s = syn_graph_feed(g, x, xs, syn_shape4(4, 2, 12, 12));
            if (s == SYN_OK) s = syn_params_zero_grad(ps);
            if (s == SYN_OK) s = syn_graph_forward(g);
            if (s == SYN_OK) s = syn_graph_backward(g, loss);
            if (s == SYN_OK) s = syn_optim_step(o);
            if (s == SYN_OK) s = syn_graph_read_scalar(g, loss, &j->loss[k]);
        }
        syn_optim_free(o);
    }
    j->s = s;
    syn_graph_free(g);
    syn_params_free(ps);
    return NULL;
}

START_TEST(two_threads_at_once) {
    thread_job alone[2] = {{7, {0}, SYN_OK}, {8, {0}, SYN_OK}}, both[2] = {{7, {0}, SYN_OK}, {8, {0}, SYN_OK}};
    for (int k = 0; k < 2; k++) {
        thread_run(&alone[k]);
        ck_assert_msg(alone[k].s == SYN_OK, "%s", syn_last_error());
    }
    pthread_t t[2];
    for (int k = 0; k < 2; k++) ck_assert_int_eq(pthread_create(&t[k], NULL, thread_run, &both[k]), 0);
    for (int k = 0; k < 2; k++) ck_assert_int_eq(pthread_join(t[k], NULL), 0);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(both[k].s, SYN_OK);
        for (int i = 0; i < 3; i++)
            ck_assert_msg(both[k].loss[i] == alone[k].loss[i], "thread %d step %d: %.9g alone, %.9g with another thread",
                          k, i, alone[k].loss[i], both[k].loss[i]);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("rnn");
    TCase *t = tcase_create("ops");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, slice_values_and_grad);
    tcase_add_test(t, slice_grad_behind_a_node);
    tcase_add_test(t, slice_bad_window);
    tcase_add_test(t, embedding_values_and_grad);
    tcase_add_loop_test(t, rnn_forward_and_grad, 0, n_rnn_cases);
    tcase_add_loop_test(t, rnn_long_sequence, 0, 3);
    tcase_add_loop_test(t, rnn_threaded_sizes, 0, 3);
    tcase_add_test(t, panel_gemm_levels);
    tcase_add_test(t, rnn_bad_shapes_and_lengths);
    suite_add_tcase(s, t);
    t = tcase_create("layers");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, layer_names_and_shapes);
    tcase_add_loop_test(t, layer_state_carries_across_batches, 0, 2);
    tcase_add_test(t, lstm_learns_delayed_echo);
    tcase_add_test(t, two_threads_at_once);
    tcase_add_test(t, state_fed_on_device);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(suite()); }
