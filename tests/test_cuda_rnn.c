/* Backend consistency for the sequence ops: slice, embedding and the
 * recurrent op (tanh, relu, LSTM, GRU; initial state, per-sample lengths, a
 * long sequence), forward and backward on cuda:0 against the CPU backend on
 * the same inputs (parameters initialised from one seed on both devices);
 * the bad-index and bad-length errors; and three Adam steps of a 2-layer
 * character LSTM. Runs without forking; without a GPU it prints one line and
 * succeeds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "cudautil.h"

/* The cell math is the CPU's (expf, tanhf, no FMA contraction); the GEMMs sum
 * in cuBLAS's order, and errors grow along the sequence. */
#define TOL 1e-4

typedef enum { K_SLICE, K_EMBEDDING, K_RNN } kind;

typedef struct {
    const char *what;
    kind k;
    syn_rnn_mode mode;
    int B, T, I, H;
    bool bias, state;
    int lengths[4]; /* all 0: none */
} op_case;

static const op_case cases[] = {
    {"slice (B,T,I) axis 1", K_SLICE, 0, 3, 9, 5, 0, false, false, {0}},
    {"embedding (3,9) of 11x5", K_EMBEDDING, 0, 3, 9, 11, 5, false, false, {0}},
    {"rnn tanh", K_RNN, SYN_RNN_TANH, 3, 7, 5, 6, true, false, {0}},
    {"rnn relu state0", K_RNN, SYN_RNN_RELU, 2, 6, 4, 5, true, true, {0}},
    {"lstm", K_RNN, SYN_RNN_LSTM, 3, 7, 5, 6, true, false, {0}},
    {"lstm state0 lengths", K_RNN, SYN_RNN_LSTM, 4, 6, 3, 5, true, true, {6, 2, 0, 4}},
    {"lstm no bias, one step", K_RNN, SYN_RNN_LSTM, 1, 1, 3, 4, false, true, {0}},
    {"lstm long (T 211)", K_RNN, SYN_RNN_LSTM, 2, 211, 3, 8, true, false, {0}},
    {"lstm wide (B 64, H 256)", K_RNN, SYN_RNN_LSTM, 64, 5, 16, 256, true, true, {0}},
    {"gru", K_RNN, SYN_RNN_GRU, 3, 7, 5, 6, true, false, {0}},
    {"gru state0 lengths", K_RNN, SYN_RNN_GRU, 4, 6, 3, 5, true, true, {1, 6, 3, 5}},
    {"gru long (T 203)", K_RNN, SYN_RNN_GRU, 2, 203, 3, 8, true, true, {0}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* One device's copy of a case (cudautil.h) and its index and length inputs. */
typedef struct {
    cu_rig r;
    syn_node *idx, *len;
} rig;

static bool has_lengths(const op_case *c) {
    for (int b = 0; b < c->B && b < 4; b++)
        if (c->lengths[b]) return true;
    return false;
}

static syn_node *build_op(rig *r, const op_case *c) {
    syn_graph *g = r->r.g;
    switch (c->k) {
    case K_SLICE: return syn_slice(g, cu_param(g, "x", syn_shape3(c->B, c->T, c->I), -1, 1), 1, 2, 5);
    case K_EMBEDDING:
        r->idx = syn_input(g, "idx", SYN_I32, syn_shape2(c->B, c->T));
        return syn_embedding_op(g, r->idx, cu_param(g, "w", syn_shape2(c->I, c->H), -1, 1));
    case K_RNN: {
        int64_t G = c->mode == SYN_RNN_LSTM ? 4 : c->mode == SYN_RNN_GRU ? 3 : 1, H = c->H;
        int64_t S = c->mode == SYN_RNN_LSTM ? 2 * H : H;
        float k = 1.0f / sqrtf((float)H);
        syn_node *x = cu_param(g, "x", syn_shape3(c->B, c->T, c->I), -1, 1);
        syn_node *wi = cu_param(g, "w_ih", syn_shape2(G * H, c->I), -k, k), *wh = cu_param(g, "w_hh", syn_shape2(G * H, H), -k, k);
        syn_node *bi = c->bias ? cu_param(g, "b_ih", syn_shape1(G * H), -k, k) : NULL;
        syn_node *bh = c->bias ? cu_param(g, "b_hh", syn_shape1(G * H), -k, k) : NULL;
        syn_node *s0 = c->state ? cu_param(g, "s0", syn_shape2(c->B, S), -1, 1) : NULL;
        r->len = has_lengths(c) ? syn_input(g, "len", SYN_I32, syn_shape1(c->B)) : NULL;
        return syn_rnn_op(g, c->mode, x, wi, wh, bi, bh, s0, r->len);
    }
    }
    return NULL;
}

static void rig_build(rig *r, const op_case *c, syn_device dev, uint64_t seed) {
    memset(r, 0, sizeof *r);
    cu_rig_open(&r->r, dev, seed);
    cu_rig_finish(&r->r, c->what, build_op(r, c), dev, seed, -1, 1, true);
    if (r->idx) {
        int32_t *idx = malloc(sizeof(int32_t) * (size_t)(c->B * c->T));
        ck_assert_ptr_nonnull(idx);
        for (int i = 0; i < c->B * c->T; i++) idx[i] = (int32_t)((i * 7 + 3) % c->I); /* repeats */
        TU_OK(syn_graph_feed(r->r.g, r->idx, idx, syn_shape2(c->B, c->T)));
        free(idx);
    }
    if (r->len) TU_OK(syn_graph_feed(r->r.g, r->len, c->lengths, syn_shape1(c->B)));
}

START_TEST(op_matches_cpu) {
    const op_case *c = &cases[_i];
    uint64_t seed = tu_seed() ^ ((uint64_t)_i * 0x9E3779B97F4A7C15ull);
    rig cpu, gpu;
    rig_build(&cpu, c, syn_cpu(), seed);
    rig_build(&gpu, c, syn_cuda(0), seed);
    cu_rig_run(&cpu.r);
    cu_rig_run(&gpu.r);
    cu_rig_compare_output(&gpu.r, &cpu.r, c->what, TOL, tu_rel_err);
    cu_compare_params(gpu.r.p, cpu.r.p, true, c->what, TOL, tu_rel_err);
    cu_rig_free(&gpu.r);
    cu_rig_free(&cpu.r);
}
END_TEST

/* The bad index and the bad length are errors on the GPU too, naming them. */
START_TEST(bad_index_and_length) {
    const op_case *c = &cases[1];
    rig r;
    rig_build(&r, c, syn_cuda(0), 1);
    int32_t idx[27] = {0};
    idx[13] = c->I;
    TU_OK(syn_graph_feed(r.r.g, r.idx, idx, syn_shape2(c->B, c->T)));
    ck_assert_int_eq(syn_graph_forward(r.r.g), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "index 11 at position 13"), "%s", syn_last_error());
    cu_rig_free(&r.r);
    c = &cases[5];
    rig_build(&r, c, syn_cuda(0), 1);
    int32_t len[4] = {1, 2, 7, 0};
    TU_OK(syn_graph_feed(r.r.g, r.len, len, syn_shape1(4)));
    ck_assert_int_eq(syn_graph_forward(r.r.g), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "length 7 of sample 2"), "%s", syn_last_error());
    cu_rig_free(&r.r);
}
END_TEST

/* The embedding's weight gradient for rows of few distinct indices (each
 * repeated hundreds of times), from dy = wgt: on the CPU, on CUDA with its
 * atomic adds (close), and with its deterministic kernel (sorted rows summed
 * in row order: the CPU's sums bit for bit, and the same on a second run). */
static float *embedding_grad(syn_device dev, const int32_t *idx, const float *wgt, int64_t R, int64_t V, int64_t D) {
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(dev, 5, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *in = syn_input(g, "idx", SYN_I32, syn_shape1(R)), *wt = syn_input(g, "wgt", SYN_F32, syn_shape2(R, D));
    syn_node *y = syn_embedding_op(g, in, cu_param(g, "w", syn_shape2(V, D), -1, 1));
    syn_node *loss = syn_sum(g, syn_mul(g, y, wt), SYN_ALL_AXES, false);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_compile(g, dev, NULL));
    TU_OK(syn_graph_feed(g, in, idx, syn_shape1(R)));
    TU_OK(syn_graph_feed(g, wt, wgt, syn_shape2(R, D)));
    TU_OK(syn_params_zero_grad(p));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss));
    int64_t n;
    float *dw = cu_read_param(p, 0, true, &n);
    ck_assert_int_eq(n, V * D);
    syn_graph_free(g);
    syn_params_free(p);
    return dw;
}

START_TEST(embedding_grad_deterministic) {
    enum { R = 3000, V = 7, D = 37 };
    int32_t *idx = malloc(R * sizeof *idx);
    float *wgt = cu_fmalloc(R * D);
    ck_assert_ptr_nonnull(idx);
    tu_rng r = tu_rng_make(tu_seed() ^ 0xE3Bull);
    tu_fill(&r, wgt, R * D, -1, 1);
    for (int i = 0; i < R; i++) idx[i] = (int32_t)(tu_next(&r) % V);
    syn_backend *be;
    TU_OK(syn__backend_get(syn_cuda(0), &be));
    float *cpu = embedding_grad(syn_cpu(), idx, wgt, R, V, D);
    float *atomic = embedding_grad(syn_cuda(0), idx, wgt, R, V, D);
    cu_check_close("embedding dW (atomic adds)", atomic, cpu, V * D, 1e-5, tu_rel_err);
#ifdef SYN_HAVE_CUDA /* (without it the suite skips every test) */
    syn__cuda_set_deterministic(be, true);
#endif
    float *det = embedding_grad(syn_cuda(0), idx, wgt, R, V, D), *det2 = embedding_grad(syn_cuda(0), idx, wgt, R, V, D);
#ifdef SYN_HAVE_CUDA
    syn__cuda_set_deterministic(be, getenv("SYN_DETERMINISTIC") && strcmp(getenv("SYN_DETERMINISTIC"), "1") == 0);
#endif
    ck_assert_msg(memcmp(det, cpu, sizeof(float) * V * D) == 0, "deterministic embedding dW differs from the CPU's");
    ck_assert_msg(memcmp(det, det2, sizeof(float) * V * D) == 0, "deterministic embedding dW differs between runs");
    free(idx), free(wgt), free(cpu), free(atomic), free(det), free(det2);
}
END_TEST

/* A 2-layer character LSTM (embedding, LSTM, linear, cross-entropy), three
 * Adam steps on both devices: losses and final weights agree. */
typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_optim *o;
    syn_node *tok, *lab, *loss;
} charlm;

static void charlm_build(charlm *m, syn_device dev) {
    enum { B = 8, T = 24, V = 40 };
    TU_OK(syn_params_create(dev, 42, &m->p));
    TU_OK(syn_graph_create(m->p, &m->g));
    m->tok = syn_input(m->g, "tok", SYN_I32, syn_shape2(B, T));
    m->lab = syn_input(m->g, "lab", SYN_I32, syn_shape1(B * T));
    syn_rnn_config cfg = {SYN_RNN_LSTM, 32, 2, 0.0f, false};
    syn_node *h = syn_rnn(m->g, syn_embedding(m->g, m->tok, V, 16, "emb"), &cfg, NULL, NULL, "lstm", NULL);
    syn_node *logits = syn_linear(m->g, syn_reshape(m->g, h, syn_shape2(-1, 32)), V, "out", NULL);
    m->loss = syn_cross_entropy(m->g, logits, m->lab);
    TU_OK(syn_graph_compile(m->g, dev, NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    oc.lr = 0.01f;
    TU_OK(syn_optim_create(m->p, &oc, &m->o));
    int32_t tok[B * T], lab[B * T];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)((i * 13 + 5) % V);
        lab[i] = (int32_t)((i * 13 + 18) % V);
    }
    TU_OK(syn_graph_feed(m->g, m->tok, tok, syn_shape2(B, T)));
    TU_OK(syn_graph_feed(m->g, m->lab, lab, syn_shape1(B * T)));
}

START_TEST(charlm_adam_steps_match) {
    charlm m[2];
    charlm_build(&m[0], syn_cpu());
    charlm_build(&m[1], syn_cuda(0));
    for (int step = 0; step < 3; step++) {
        float l[2];
        for (int k = 0; k < 2; k++) {
            TU_OK(syn_params_zero_grad(m[k].p));
            TU_OK(syn_graph_forward(m[k].g));
            TU_OK(syn_graph_backward(m[k].g, m[k].loss));
            TU_OK(syn_optim_step(m[k].o));
            TU_OK(syn_graph_read_scalar(m[k].g, m[k].loss, &l[k]));
        }
        ck_assert_msg(fabsf(l[0] - l[1]) <= 1e-4f * fabsf(l[0]), "step %d: loss cpu %.7g cuda %.7g", step, l[0], l[1]);
    }
    cu_compare_params(m[1].p, m[0].p, false, "charlm after 3 steps", 1e-4, tu_rel_err);
    for (int k = 0; k < 2; k++) {
        syn_optim_free(m[k].o);
        syn_graph_free(m[k].g);
        syn_params_free(m[k].p);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("cuda_rnn");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 300);
    CU_ADD_LOOP_TEST(tc, op_matches_cpu, N_CASES);
    CU_ADD_TEST(tc, bad_index_and_length);
    CU_ADD_TEST(tc, embedding_grad_deterministic);
    CU_ADD_TEST(tc, charlm_adam_steps_match);
    suite_add_tcase(s, tc);
    return cu_run(s);
}
