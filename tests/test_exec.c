/* The graph executor: partial and staged forward passes, the memory plan
 * (buffer reuse, views, fused nodes, inputs live from the start), backward
 * rules (accumulation, shared buffers, detach), reading values and gradients
 * (parameters, kept nodes, inputs asked for), misuse at run time, kernel
 * timing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "backend.h"

/* syn_graph_forward_to runs what the target needs and no more; resuming the
 * pass runs only the rest, after feeds made since. */
START_TEST(forward_to_runs_what_the_target_needs) {
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape1(2));
    syn_node *y = syn_input(g, "y", SYN_F32, syn_shape1(2));
    syn_node *a = syn_add_scalar(g, syn_mul_scalar(g, x, 2.0f), 1.0f); /* 2x + 1 */
    syn_node *b = syn_add(g, a, y);                                  /* 2x + 1 + y */
    TU_OK(syn_graph_keep(g, a));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    float one[2] = {1, 2}, five[2] = {5, 5}, out[2];
    TU_OK(syn_graph_feed(g, x, one, syn_shape1(2)));
    TU_OK(syn_graph_feed(g, y, one, syn_shape1(2)));
    TU_OK(syn_graph_forward_to(g, a, false));
    TU_OK(syn_graph_read(g, a, out, sizeof out));
    ck_assert(out[0] == 3 && out[1] == 5);
    ck_assert_int_eq(syn_graph_read(g, b, out, sizeof out), SYN_ERR_ARG); /* not computed in this pass */
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "did not compute"));
    /* resume: a keeps its value although x changed; b sees the new y */
    TU_OK(syn_graph_feed(g, x, five, syn_shape1(2)));
    TU_OK(syn_graph_feed(g, y, five, syn_shape1(2)));
    TU_OK(syn_graph_forward_to(g, b, true));
    TU_OK(syn_graph_read(g, b, out, sizeof out));
    ck_assert(out[0] == 8 && out[1] == 10);
    /* a new pass recomputes everything b needs */
    TU_OK(syn_graph_forward_to(g, b, false));
    TU_OK(syn_graph_read(g, b, out, sizeof out));
    ck_assert(out[0] == 16 && out[1] == 16);
    ck_assert_int_eq(syn_graph_forward_to(g, NULL, false), SYN_ERR_ARG);
    syn_graph_free(g);
}
END_TEST

/* A GAN-shaped pair of losses over one G(z): D's loss on real data and on
 * detach(G(z)), G's loss on D(G(z)). `stage`: 1 builds the D loss only, 2 the
 * G loss only, 3 both in one graph (D's first). The value u = G(z) + 0.5 is
 * read by the G loss's forward only (through a reshape): what a plain
 * training plan may hand to a gradient of the D loss's backward. */
typedef struct {
    syn_graph *g;
    syn_node *z, *x, *d_loss, *g_loss;
} two_loss;

static two_loss two_loss_build(syn_params *gp, syn_params *dp, int stage, bool staged) {
    two_loss t = {0};
    TU_OK(syn_graph_create(gp, &t.g));
    syn_graph *g = t.g;
    t.z = syn_input(g, "z", SYN_F32, syn_shape2(4, 3));
    t.x = syn_input(g, "x", SYN_F32, syn_shape2(4, 5));
    syn_node *u = syn_add_scalar(g, syn_tanh(g, syn_linear(g, t.z, 5, "G.fc", NULL)), 0.5f);
    syn_graph_use_params(g, dp);
    syn_node *ones = syn_input(g, "ones", SYN_F32, syn_shape2(4, 1));
    syn_node *zeros = syn_input(g, "zeros", SYN_F32, syn_shape2(4, 1));
    if (stage & 1) {
        syn_node *dr = syn_linear(g, t.x, 1, "D.fc", NULL), *df = syn_linear(g, syn_detach(g, u), 1, "D.fc", NULL);
        t.d_loss = syn_add(g, syn_mse_loss(g, dr, ones), syn_mse_loss(g, df, zeros));
    }
    if (stage & 2)
        t.g_loss = syn_mse_loss(g, syn_linear(g, syn_reshape(g, u, syn_shape2(4, 5)), 1, "D.fc", NULL), ones);
    TU_OK(syn_graph_status(g));
    syn_compile_opts co = {.staged = staged};
    TU_OK(syn_graph_compile(g, syn_cpu(), &co));
    float o[4] = {1, 1, 1, 1}, zr[4] = {0};
    TU_OK(syn_graph_feed(g, ones, o, syn_shape2(4, 1)));
    TU_OK(syn_graph_feed(g, zeros, zr, syn_shape2(4, 1)));
    return t;
}

static void two_loss_feed(const two_loss *t, int it) {
    float z[12], x[20];
    tu_rng r = tu_rng_make(100 + (uint64_t)it);
    tu_fill(&r, z, 12, -1, 1);
    tu_fill(&r, x, 20, -1, 1);
    TU_OK(syn_graph_feed(t->g, t->z, z, syn_shape2(4, 3)));
    if (t->d_loss) TU_OK(syn_graph_feed(t->g, t->x, x, syn_shape2(4, 5)));
}

/* One graph run in stages (forward to D's loss, backward, D's step, resume to
 * G's loss, backward, G's step) gives bit for bit what two graphs give; a
 * graph not compiled as staged refuses to resume after a backward pass. */
START_TEST(staged_graph_matches_two_graphs) {
    syn_params *gp[2], *dp[2];
    syn_optim *go[2], *dopt[2];
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_SGD);
    oc.lr = 0.5f;
    for (int k = 0; k < 2; k++) {
        TU_OK(syn_params_create(syn_cpu(), 7, &gp[k]));
        TU_OK(syn_params_create(syn_cpu(), 8, &dp[k]));
    }
    two_loss one = two_loss_build(gp[0], dp[0], 3, true);
    two_loss dg = two_loss_build(gp[1], dp[1], 1, false), gg = two_loss_build(gp[1], dp[1], 2, false);
    for (int k = 0; k < 2; k++) {
        TU_OK(syn_optim_create(gp[k], &oc, &go[k]));
        TU_OK(syn_optim_create(dp[k], &oc, &dopt[k]));
    }
    for (int it = 0; it < 3; it++) {
        float l[4];
        two_loss_feed(&one, it);
        TU_OK(syn_params_zero_grad(dp[0]));
        TU_OK(syn_graph_forward_to(one.g, one.d_loss, false));
        TU_OK(syn_graph_backward(one.g, one.d_loss));
        TU_OK(syn_optim_step(dopt[0]));
        TU_OK(syn_params_zero_grad(gp[0]));
        TU_OK(syn_graph_forward_to(one.g, one.g_loss, true));
        TU_OK(syn_graph_backward(one.g, one.g_loss));
        TU_OK(syn_optim_step(go[0]));
        TU_OK(syn_graph_read_scalar(one.g, one.d_loss, &l[0]));
        TU_OK(syn_graph_read_scalar(one.g, one.g_loss, &l[1]));

        two_loss_feed(&dg, it);
        two_loss_feed(&gg, it);
        TU_OK(syn_params_zero_grad(dp[1]));
        TU_OK(syn_graph_forward(dg.g));
        TU_OK(syn_graph_backward(dg.g, dg.d_loss));
        TU_OK(syn_optim_step(dopt[1]));
        TU_OK(syn_params_zero_grad(gp[1]));
        TU_OK(syn_graph_forward(gg.g));
        TU_OK(syn_graph_backward(gg.g, gg.g_loss));
        TU_OK(syn_optim_step(go[1]));
        TU_OK(syn_graph_read_scalar(dg.g, dg.d_loss, &l[2]));
        TU_OK(syn_graph_read_scalar(gg.g, gg.g_loss, &l[3]));
        ck_assert_msg(l[0] == l[2] && l[1] == l[3], "iteration %d: losses %g %g, two graphs %g %g", it, (double)l[0],
                      (double)l[1], (double)l[2], (double)l[3]);
    }
    syn_params *set[2][2] = {{gp[0], gp[1]}, {dp[0], dp[1]}};
    for (int k = 0; k < syn_params_count(gp[0]) + syn_params_count(dp[0]); k++) {
        float a[64], b[64];
        syn_tensor *ta, *tb;
        const char *name;
        int which = k >= syn_params_count(gp[0]), i = which ? k - syn_params_count(gp[0]) : k;
        TU_OK(syn_params_get(set[which][0], i, &name, &ta, NULL));
        TU_OK(syn_params_find(set[which][1], name, &tb, NULL));
        size_t bytes = syn_tensor_bytes(ta);
        ck_assert(bytes <= sizeof a);
        TU_OK(syn_tensor_read(ta, a, bytes));
        TU_OK(syn_tensor_read(tb, b, bytes));
        ck_assert_msg(memcmp(a, b, bytes) == 0, "%s differs", name);
    }
    /* the same graph planned plainly: no resuming after a backward pass */
    two_loss plain = two_loss_build(gp[0], dp[0], 3, false);
    two_loss_feed(&plain, 0);
    TU_OK(syn_graph_forward_to(plain.g, plain.d_loss, false));
    TU_OK(syn_graph_backward(plain.g, plain.d_loss));
    ck_assert_int_eq(syn_graph_forward_to(plain.g, plain.g_loss, true), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "staged"));
    TU_OK(syn_graph_forward_to(plain.g, plain.g_loss, false)); /* a new pass is fine */
    ck_assert_int_eq(syn_graph_backward(plain.g, plain.d_loss), SYN_ERR_ARG); /* not computed in this pass */
    TU_OK(syn_graph_backward(plain.g, plain.g_loss));
    syn_graph_free(plain.g);
    syn_graph_free(one.g);
    syn_graph_free(dg.g);
    syn_graph_free(gg.g);
    for (int k = 0; k < 2; k++) {
        syn_optim_free(go[k]);
        syn_optim_free(dopt[k]);
        syn_params_free(gp[k]);
        syn_params_free(dp[k]);
    }
}
END_TEST

/* Inference plans reuse dead activations: a chain of 40 ops needs a few buffers. */
START_TEST(memplan_reuses_buffers) {
    syn_params *p;
    syn_graph *g, *t;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    TU_OK(syn_graph_create(p, &t));
    syn_init one_init = {SYN_INIT_CONSTANT, 1.0f, 0, 0};
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(64, 64));
    syn_node *h = syn_mul(g, x, syn_param(g, "w", syn_shape1(64), &one_init));
    syn_node *xt = syn_input(t, "x", SYN_F32, syn_shape2(64, 64));
    /* the parameter makes every node of the training graph need a gradient */
    syn_node *ht = syn_mul(t, xt, syn_param(t, "w", syn_shape1(64), &one_init));
    for (int i = 0; i < 40; i++) {
        h = syn_tanh(g, syn_add_scalar(g, h, 0.01f));
        ht = syn_tanh(t, syn_add_scalar(t, ht, 0.01f));
    }
    TU_OK(syn_graph_compile(g, syn_cpu(), &(syn_compile_opts){.inference = true}));
    TU_OK(syn_graph_compile(t, syn_cpu(), NULL));
    size_t one = 64 * 64 * sizeof(float);
    ck_assert_msg(syn_graph_memory_bytes(g) <= 4 * one, "inference plan: %zu bytes", syn_graph_memory_bytes(g));
    /* training keeps the 40 tanh outputs (and x, read by mul's backward) for
     * backward, but neither the add_scalar outputs nor dead gradients */
    ck_assert_msg(syn_graph_memory_bytes(t) <= 46 * one, "training plan: %zu bytes", syn_graph_memory_bytes(t));
    ck_assert_msg(syn_graph_memory_bytes(t) >= 41 * one, "training plan: %zu bytes", syn_graph_memory_bytes(t));
    /* and the results agree */
    float xs[64 * 64], a[64 * 64], b[64 * 64];
    tu_rng r = tu_rng_make(5);
    tu_fill(&r, xs, 64 * 64, -2, 2);
    TU_OK(syn_graph_feed(g, x, xs, syn_shape2(64, 64)));
    TU_OK(syn_graph_feed(t, xt, xs, syn_shape2(64, 64)));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_forward(t));
    TU_OK(syn_graph_read(g, h, a, sizeof a));
    TU_OK(syn_graph_read(t, ht, b, sizeof b));
    ck_assert(memcmp(a, b, sizeof a) == 0);
    syn_graph_free(g);
    syn_graph_free(t);
    syn_params_free(p);
}
END_TEST

/* A reshape is a view: its value is its input's buffer (no copy), which then
 * stays unreused until the reshape's last reader, however far away; not for
 * a kept reshape of an input (a later feed would show through) or of a
 * parameter. Checked in a training and an inference plan, through a chain of
 * two reshapes, against values computed here. */
START_TEST(reshape_is_a_view) {
    for (int inference = 0; inference < 2; inference++) {
        syn_params *p;
        syn_graph *g;
        TU_OK(syn_params_create(syn_cpu(), 1, &p));
        TU_OK(syn_graph_create(p, &g));
        syn_init one = {SYN_INIT_CONSTANT, 1.0f, 0, 0};
        syn_node *w = syn_param(g, "w", syn_shape1(6), &one);
        syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(4, 6));
        syn_node *h = syn_mul(g, x, w);                                  /* x w */
        syn_node *v = syn_reshape(g, syn_reshape(g, h, syn_shape2(2, 12)), syn_shape1(24));
        syn_node *a = h;
        for (int i = 0; i < 8; i++) a = syn_add_scalar(g, a, 1.0f);     /* x w + 8: reuses buffers */
        syn_node *far = syn_mul(g, syn_reshape(g, a, syn_shape1(24)), v); /* (x w + 8) x w */
        syn_node *kept = syn_reshape(g, x, syn_shape2(6, 4));            /* kept: a copy */
        syn_node *wv = syn_reshape(g, w, syn_shape2(2, 3));               /* a parameter: a copy */
        syn_node *loss = syn_sum(g, far, SYN_ALL_AXES, false);
        TU_OK(syn_graph_keep(g, far));
        TU_OK(syn_graph_keep(g, kept));
        TU_OK(syn_graph_keep(g, wv));
        TU_OK(syn_graph_status(g));
        TU_OK(syn_graph_compile(g, syn_cpu(), &(syn_compile_opts){.inference = inference != 0}));
        ck_assert_ptr_eq(v->value, h->value);
        ck_assert_ptr_eq(v->in[0]->value, h->value);
        ck_assert_ptr_ne(kept->value, x->value);
        ck_assert_ptr_ne(wv->value, NULL);
        float xs[24], got[24];
        for (int i = 0; i < 24; i++) xs[i] = 0.25f * (float)(i - 11);
        TU_OK(syn_graph_feed(g, x, xs, syn_shape2(4, 6)));
        TU_OK(syn_graph_forward(g));
        TU_OK(syn_graph_read(g, far, got, sizeof got));
        for (int i = 0; i < 24; i++) ck_assert_float_eq_tol(got[i], (xs[i] + 8.0f) * xs[i], 1e-5f);
        /* a feed before the next forward does not show through the kept view */
        float zeros[24] = {0};
        TU_OK(syn_graph_feed(g, x, zeros, syn_shape2(4, 6)));
        TU_OK(syn_graph_read(g, kept, got, sizeof got));
        ck_assert(memcmp(got, xs, sizeof got) == 0);
        TU_OK(syn_graph_read(g, wv, got, 6 * sizeof *got));
        for (int i = 0; i < 6; i++) ck_assert_float_eq(got[i], 1.0f);
        if (!inference) { /* d/dw sum((x w + 8) x w) = sum over rows of x (2 x w + 8) */
            TU_OK(syn_graph_feed(g, x, xs, syn_shape2(4, 6)));
            TU_OK(syn_graph_forward(g));
            TU_OK(syn_params_zero_grad(p));
            TU_OK(syn_graph_backward(g, loss));
            syn_tensor *gt;
            TU_OK(syn_params_find(p, "w", NULL, &gt));
            TU_OK(syn_tensor_read(gt, got, 6 * sizeof *got));
            for (int j = 0; j < 6; j++) {
                double want = 0;
                for (int r = 0; r < 4; r++) want += xs[r * 6 + j] * (2.0 * xs[r * 6 + j] + 8.0);
                ck_assert_msg(fabs(got[j] - want) < 1e-4, "dw[%d] = %g, want %g", j, got[j], want);
            }
        }
        syn_graph_free(g);
        syn_params_free(p);
    }
}
END_TEST

/* loss = sum((x w)^2): w (3) a parameter of 2s, x (2,3) an input, h = x w,
 * sq = h^2; not compiled. */
typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *w, *x, *h, *sq, *loss;
} square_net;

static void square_net_make(square_net *s) {
    TU_OK(syn_params_create(syn_cpu(), 1, &s->p));
    TU_OK(syn_graph_create(s->p, &s->g));
    syn_init two = {SYN_INIT_CONSTANT, 2.0f, 0, 0};
    s->w = syn_param(s->g, "w", syn_shape1(3), &two);
    s->x = syn_input(s->g, "x", SYN_F32, syn_shape2(2, 3));
    s->h = syn_mul(s->g, s->x, s->w);
    s->sq = syn_pow_scalar(s->g, s->h, 2.0f);
    s->loss = syn_sum(s->g, s->sq, SYN_ALL_AXES, false);
    TU_OK(syn_graph_status(s->g));
}

/* syn_graph_forward_backward on the CPU, which cannot capture graphs: the
 * same as forward then backward, no replay, and why; misuse is an error. */
START_TEST(forward_backward_on_cpu) {
    square_net sn;
    square_net_make(&sn);
    syn_params *p = sn.p;
    syn_graph *g = sn.g;
    syn_node *x = sn.x, *loss = sn.loss;
    syn_init two = {SYN_INIT_CONSTANT, 2.0f, 0, 0};
    ck_assert_int_eq(syn_graph_forward_backward(g, loss), SYN_ERR_ARG); /* not compiled */
    TU_OK(syn_graph_compile(g, syn_cpu(), &(syn_compile_opts){.cuda_graphs = true}));
    ck_assert_int_eq(syn_graph_forward_backward(NULL, loss), SYN_ERR_ARG);
    ck_assert_int_eq(syn_graph_forward_backward(g, NULL), SYN_ERR_ARG);
    const float xs[6] = {1, -2, 3, 0.5f, 4, -1};
    for (int step = 0; step < 3; step++) {
        TU_OK(syn_graph_feed(g, x, xs, syn_shape2(2, 3)));
        TU_OK(syn_params_zero_grad(p));
        TU_OK(syn_graph_forward_backward(g, loss));
        float l, gw[3];
        syn_tensor *gt;
        TU_OK(syn_graph_read_scalar(g, loss, &l));
        TU_OK(syn_params_find(p, "w", NULL, &gt));
        TU_OK(syn_tensor_read(gt, gw, sizeof gw));
        double want = 0;
        for (int i = 0; i < 6; i++) want += 4.0 * xs[i] * xs[i];
        ck_assert_float_eq_tol(l, want, 1e-4);
        for (int j = 0; j < 3; j++) /* d/dw_j sum (x w)^2 = sum_r 2 x_rj^2 w_j */
            ck_assert_float_eq_tol(gw[j], 4.0f * (xs[j] * xs[j] + xs[3 + j] * xs[3 + j]), 1e-4f);
    }
    char why[128];
    ck_assert_int_eq(syn_graph_replays(g, why, sizeof why), 0);
    ck_assert_msg(strstr(why, "cannot capture") != NULL, "why: %s", why);
    syn_graph_free(g);
    TU_OK(syn_graph_create(p, &g));
    syn_node *x2 = syn_input(g, "x", SYN_F32, syn_shape1(3));
    syn_node *l2 = syn_sum(g, syn_mul(g, x2, syn_param(g, "w", syn_shape1(3), &two)), SYN_ALL_AXES, false);
    TU_OK(syn_graph_compile(g, syn_cpu(), &(syn_compile_opts){.inference = true}));
    ck_assert_int_eq(syn_graph_forward_backward(g, l2), SYN_ERR_ARG); /* an inference graph */
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* Random graphs over one (4,3,5) shape - batch norms, adds, relus, leaky
 * relus, reshape round trips, scalings, tanh - with random nodes kept and a
 * loss over several of them: the plan with fusion and views against a plan
 * that keeps every node (no buffer is ever reused, nothing is fused). Every
 * kept value and the loss must agree to the bit, every gradient to rounding. */
typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *nodes[64], *loss;
    bool kept[64];
    int n;
} rand_graph;

static void rand_graph_build(rand_graph *r, uint64_t seed, bool keep_all) {
    tu_rng rng = tu_rng_make(seed);
    TU_OK(syn_params_create(syn_cpu(), seed, &r->p));
    TU_OK(syn_graph_create(r->p, &r->g));
    syn_graph *g = r->g;
    const syn_shape s = syn_shape3(4, 3, 5);
    syn_init u = {SYN_INIT_UNIFORM, -1.5f, 1.5f, 0};
    r->n = 0;
    r->nodes[r->n++] = syn_param(g, "x0", s, &u);
    r->nodes[r->n++] = syn_param(g, "x1", s, &u);
    for (int k = 0; k < 24; k++) {
        syn_node *a = r->nodes[tu_next(&rng) % (uint64_t)r->n], *b = r->nodes[tu_next(&rng) % (uint64_t)r->n], *y;
        char name[16];
        switch (tu_next(&rng) % 7) {
        case 0: snprintf(name, sizeof name, "bn%d", k); y = syn_batch_norm(g, a, name); break;
        case 1: y = syn_add(g, a, b); break;
        case 2: y = syn_relu(g, a); break;
        case 3: y = syn_leaky_relu(g, a, 0.1f); break;
        case 4: y = syn_reshape(g, syn_reshape(g, a, syn_shape2(12, 5)), s); break;
        case 5: y = syn_mul_scalar(g, a, 0.5f); break;
        default: y = syn_tanh(g, a); break;
        }
        /* a batch norm usually feeds an add and a relu: the chains to fuse */
        if (y && tu_next(&rng) % 2) y = syn_relu(g, syn_add(g, y, r->nodes[tu_next(&rng) % (uint64_t)r->n]));
        ck_assert_msg(y != NULL, "%s", syn_last_error());
        r->nodes[r->n++] = y;
    }
    syn_node *loss = NULL;
    for (int i = 2; i < r->n; i++) {
        const bool pick = tu_next(&rng) % 5 == 0; /* drawn either way: both builds draw alike */
        r->kept[i] = keep_all || pick;
        if (tu_next(&rng) % 3 == 0 || i == r->n - 1) {
            float w = tu_uniform(&rng, -1.0f, 1.0f);
            syn_node *t = syn_sum(g, syn_mul_scalar(g, r->nodes[i], w), SYN_ALL_AXES, false);
            loss = loss ? syn_add(g, loss, t) : t;
        }
    }
    r->loss = loss;
    TU_OK(syn_graph_status(g));
    for (int i = 2; i < r->n; i++)
        if (r->kept[i]) TU_OK(syn_graph_keep(g, r->nodes[i]));
    if (keep_all) /* every node of the graph, so that no buffer is ever reused */
        for (int i = 0; i < g->n; i++) TU_OK(syn_graph_keep(g, g->nodes[i]));
    syn_compile_opts o = {.no_fusion = keep_all};
    TU_OK(syn_graph_compile(g, syn_cpu(), &o));
    TU_OK(syn_params_zero_grad(r->p));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, r->loss));
}

START_TEST(random_graphs_plan_safely) {
    const uint64_t seed = 7000 + (uint64_t)_i;
    rand_graph a, ref;
    memset(&a, 0, sizeof a);
    memset(&ref, 0, sizeof ref);
    rand_graph_build(&a, seed, false);
    rand_graph_build(&ref, seed, true);
    float la, lr, va[60], vr[60];
    TU_OK(syn_graph_read_scalar(a.g, a.loss, &la));
    TU_OK(syn_graph_read_scalar(ref.g, ref.loss, &lr));
    ck_assert_msg(la == lr || (isnan(la) && isnan(lr)), "graph %d: loss %.9g, reference %.9g", _i, la, lr);
    for (int i = 2; i < a.n; i++) {
        if (!a.kept[i]) continue;
        TU_OK(syn_graph_read(a.g, a.nodes[i], va, sizeof va));
        TU_OK(syn_graph_read(ref.g, ref.nodes[i], vr, sizeof vr));
        ck_assert_msg(memcmp(va, vr, sizeof va) == 0, "graph %d: node %d (%s) differs", _i, i,
                      syn_node_op_name(a.nodes[i]));
    }
    ck_assert_int_eq(syn_params_count(a.p), syn_params_count(ref.p));
    for (int k = 0; k < syn_params_count(a.p); k++) {
        const char *name;
        syn_tensor *ga, *gr;
        TU_OK(syn_params_get(a.p, k, &name, NULL, &ga));
        TU_OK(syn_params_get(ref.p, k, NULL, NULL, &gr));
        int64_t m = syn_tensor_numel(ga);
        ck_assert(m <= 60);
        TU_OK(syn_tensor_read(ga, va, (size_t)m * sizeof(float)));
        TU_OK(syn_tensor_read(gr, vr, (size_t)m * sizeof(float)));
        /* a fused node runs its backward at its activation's place, so an
         * input it shares with other nodes may sum its gradient's terms in
         * another order: the last bit may differ */
        for (int q = 0; q < m; q++)
            ck_assert_msg(fabsf(va[q] - vr[q]) <= 1e-5f * (1.0f + fabsf(vr[q])), "graph %d: gradient of %s[%d] %.9g, "
                          "reference %.9g", _i, name, q, va[q], vr[q]);
    }
    for (int k = 0; k < 2; k++) {
        rand_graph *r = k ? &ref : &a;
        syn_graph_free(r->g);
        syn_params_free(r->p);
    }
}
END_TEST

/* d/dw of sum(tanh(w*x)) through a long chain, checked against the closed form,
 * with buffers shared between activations and gradients. */
START_TEST(backward_through_shared_buffers) {
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_init one = {SYN_INIT_CONSTANT, 0.5f, 0, 0};
    syn_node *w = syn_param(g, "w", syn_shape1(5), &one);
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape1(5));
    syn_node *h = syn_mul(g, w, x);
    for (int i = 0; i < 6; i++) h = syn_mul_scalar(g, syn_add_scalar(g, h, 1.0f), 0.5f);
    syn_node *loss = syn_sum(g, syn_tanh(g, h), SYN_ALL_AXES, false);
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    float xs[5] = {1, -2, 0.5f, 3, -1}, gw[5];
    TU_OK(syn_graph_feed(g, x, xs, syn_shape1(5)));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss));
    syn_tensor *gt;
    TU_OK(syn_params_find(p, "w", NULL, &gt));
    TU_OK(syn_tensor_read(gt, gw, sizeof gw));
    for (int i = 0; i < 5; i++) {
        double v = 0.5 * xs[i];
        for (int k = 0; k < 6; k++) v = (v + 1) * 0.5;
        double want = (1 - tanh(v) * tanh(v)) * pow(0.5, 6) * xs[i];
        ck_assert_msg(fabs(gw[i] - want) < 1e-6, "dw[%d] = %g, want %g", i, gw[i], want);
    }
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* A GAN-like graph: the detached branch sends no gradient to its parameter. */
START_TEST(detach_stops_gradient) {
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_init c = {SYN_INIT_CONSTANT, 2.0f, 0, 0};
    syn_node *a = syn_param(g, "a", syn_shape1(3), &c);
    syn_node *b = syn_param(g, "b", syn_shape1(3), &c);
    syn_node *loss = syn_sum(g, syn_mul(g, syn_detach(g, a), b), SYN_ALL_AXES, false);
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss));
    float ga[3], gb[3];
    syn_tensor *t;
    TU_OK(syn_params_find(p, "a", NULL, &t));
    TU_OK(syn_tensor_read(t, ga, sizeof ga));
    TU_OK(syn_params_find(p, "b", NULL, &t));
    TU_OK(syn_tensor_read(t, gb, sizeof gb));
    for (int i = 0; i < 3; i++) {
        ck_assert(ga[i] == 0.0f);
        ck_assert(gb[i] == 2.0f);
    }
    /* frozen parameters get no gradient either */
    TU_OK(syn_params_zero_grad(p));
    TU_OK(syn_params_set_trainable(p, "b", false));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss));
    TU_OK(syn_tensor_read(t, gb, sizeof gb));
    ck_assert(gb[0] == 0.0f);
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* syn_graph_read_grad: a parameter's gradient (its tensor's), an input's
 * (asked for with syn_graph_input_grad) and a kept node's; a node not kept,
 * one no backward pass reached (or none yet), an input not asked for and a
 * wrong size are errors that say so. */
START_TEST(read_grad_after_backward) {
    square_net sn;
    square_net_make(&sn);
    syn_params *p = sn.p;
    syn_graph *g = sn.g;
    syn_node *w = sn.w, *x = sn.x, *h = sn.h, *sq = sn.sq, *loss = sn.loss, *side = syn_tanh(g, x);
    syn_node *x2 = syn_input(g, "x2", SYN_F32, syn_shape2(2, 3)), *lab = syn_input(g, "lab", SYN_I32, syn_shape1(2));
    syn_node *loss2 = syn_add(g, loss, syn_sum(g, syn_mul(g, x2, w), SYN_ALL_AXES, false));
    TU_OK(syn_graph_keep(g, h));
    TU_OK(syn_graph_keep(g, side));
    ck_assert_int_eq(syn_graph_input_grad(g, lab), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "is not an f32 input"), "%s", syn_last_error());
    ck_assert_int_eq(syn_graph_input_grad(g, h), SYN_ERR_ARG);
    TU_OK(syn_graph_input_grad(g, x));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    ck_assert_int_eq(syn_graph_input_grad(g, x2), SYN_ERR_ARG); /* after compiling */
    const float xs[6] = {1, -2, 3, 0.5f, 4, -1};
    float gx[6], gh[6], gw[3];
    TU_OK(syn_graph_feed(g, x, xs, syn_shape2(2, 3)));
    TU_OK(syn_graph_feed(g, x2, xs, syn_shape2(2, 3)));
    TU_OK(syn_graph_feed(g, lab, (int32_t[2]){0, 1}, syn_shape1(2)));
    TU_OK(syn_graph_forward(g));
    ck_assert_int_eq(syn_graph_read_grad(g, h, gh, sizeof gh), SYN_ERR_ARG); /* no backward yet */
    ck_assert_msg(strstr(syn_last_error(), "no backward pass reached node"), "%s", syn_last_error());
    TU_OK(syn_params_zero_grad(p));
    TU_OK(syn_graph_backward(g, loss));
    TU_OK(syn_graph_read_grad(g, w, gw, sizeof gw));
    TU_OK(syn_graph_read_grad(g, x, gx, sizeof gx));
    TU_OK(syn_graph_read_grad(g, h, gh, sizeof gh));
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq_tol(gh[i], 4.0f * xs[i], 1e-5f); /* d/dh h^2 = 2 x w */
        ck_assert_float_eq_tol(gx[i], 8.0f * xs[i], 1e-5f); /* 2 h w */
    }
    for (int j = 0; j < 3; j++) ck_assert_float_eq_tol(gw[j], 4.0f * (xs[j] * xs[j] + xs[3 + j] * xs[3 + j]), 1e-4f);
    ck_assert_int_eq(syn_graph_read_grad(g, sq, gh, sizeof gh), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "has no kept gradient"), "%s", syn_last_error());
    ck_assert_int_eq(syn_graph_read_grad(g, side, gh, sizeof gh), SYN_ERR_ARG); /* not on the loss's path */
    ck_assert_msg(strstr(syn_last_error(), "no backward pass reached node"), "%s", syn_last_error());
    ck_assert_int_eq(syn_graph_read_grad(g, x2, gx, sizeof gx), SYN_ERR_ARG); /* not asked for */
    ck_assert_msg(strstr(syn_last_error(), "has no kept gradient"), "%s", syn_last_error());
    /* a second pass writes the node gradients afresh (parameters accumulate) */
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss2));
    TU_OK(syn_graph_read_grad(g, x, gx, sizeof gx));
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(gx[i], 8.0f * xs[i], 1e-5f);
    TU_OK(syn_graph_read_grad(g, w, gw, sizeof gw));
    for (int j = 0; j < 3; j++)
        ck_assert_float_eq_tol(gw[j], 8.0f * (xs[j] * xs[j] + xs[3 + j] * xs[3 + j]) + xs[j] + xs[3 + j], 1e-4f);
    ck_assert_int_ne(syn_graph_read_grad(g, h, gh, sizeof gh - 4), SYN_OK);
    ck_assert_int_eq(syn_graph_read_grad(g, h, NULL, sizeof gh), SYN_ERR_ARG);
    ck_assert_int_eq(syn_graph_read(g, h, NULL, sizeof gh), SYN_ERR_ARG);
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* Input gradients through real layers (tu_igrad: a CNN with batch norm and
 * pooling, a 2-layer LSTM and its initial state) against central differences
 * of the loss at every element; asking for them leaves the parameters'
 * gradients bit-identical to the same net's without. */
static void input_grad_case(int kind) {
    syn_params *p[2];
    syn_graph *g[2];
    tu_igrad n[2];
    float *x = NULL;
    int64_t nx = 0;
    tu_rng r = tu_rng_make(0x16AD + (uint64_t)kind);
    for (int k = 0; k < 2; k++) {
        TU_OK(syn_params_create(syn_cpu(), 77, &p[k]));
        TU_OK(syn_graph_create(p[k], &g[k]));
        tu_igrad_build(g[k], kind, k == 0, &n[k]);
        TU_OK(syn_graph_compile(g[k], syn_cpu(), NULL));
        if (!x) {
            nx = syn_shape_numel(&n[k].xs);
            x = malloc((size_t)nx * sizeof *x);
            ck_assert_ptr_nonnull(x);
            tu_fill(&r, x, nx, -1.0f, 1.0f);
        }
        tu_igrad_feed(g[k], &n[k], x);
        TU_OK(syn_params_zero_grad(p[k]));
        TU_OK(syn_graph_forward(g[k]));
        TU_OK(syn_graph_backward(g[k], n[k].loss));
    }
    float *gx = malloc((size_t)nx * sizeof *gx);
    ck_assert_ptr_nonnull(gx);
    ck_assert_int_eq(syn_graph_read_grad(g[1], n[1].x, gx, (size_t)nx * sizeof *gx), SYN_ERR_ARG);
    for (int i = 0; i < syn_params_count(p[0]); i++) {
        const char *name;
        syn_tensor *gt[2];
        TU_OK(syn_params_get(p[0], i, &name, NULL, &gt[0]));
        TU_OK(syn_params_find(p[1], name, NULL, &gt[1]));
        const int64_t m = syn_tensor_numel(gt[0]);
        float *a = malloc((size_t)m * sizeof *a * 2);
        ck_assert_ptr_nonnull(a);
        TU_OK(syn_tensor_read(gt[0], a, (size_t)m * sizeof *a));
        TU_OK(syn_tensor_read(gt[1], a + m, (size_t)m * sizeof *a));
        ck_assert_msg(memcmp(a, a + m, (size_t)m * sizeof *a) == 0, "%s's gradient moved", name);
        free(a);
    }
    TU_OK(syn_graph_read_grad(g[0], n[0].x, gx, (size_t)nx * sizeof *gx));
    const float eps = 1e-2f;
    for (int64_t i = 0; i < nx; i++) {
        float l[2], keep = x[i];
        for (int s = 0; s < 2; s++) {
            x[i] = keep + (s ? -eps : eps);
            tu_igrad_feed(g[0], &n[0], x);
            TU_OK(syn_graph_forward(g[0]));
            TU_OK(syn_graph_read_scalar(g[0], n[0].loss, &l[s]));
        }
        x[i] = keep;
        const double fd = ((double)l[0] - l[1]) / (2.0 * eps);
        ck_assert_msg(fabs(gx[i] - fd) <= 2e-3 + 2e-2 * fabs(fd), "%s: dL/dx[%lld] %g, central difference %g",
                      kind ? "lstm" : "cnn", (long long)i, (double)gx[i], fd);
    }
    if (n[0].state) { /* dL/dstate0 is there and not zero */
        float gs[32];
        double norm = 0;
        TU_OK(syn_graph_read_grad(g[0], n[0].state, gs, sizeof gs));
        for (int i = 0; i < 32; i++) norm += fabs(gs[i]);
        ck_assert_msg(norm > 1e-4 && isfinite(norm), "|dL/dstate0| %g", norm);
    }
    free(x), free(gx);
    for (int k = 0; k < 2; k++) {
        syn_graph_free(g[k]);
        syn_params_free(p[k]);
    }
}

START_TEST(input_grad_cnn) { input_grad_case(0); }
END_TEST

START_TEST(input_grad_lstm) { input_grad_case(1); }
END_TEST

START_TEST(run_time_misuse) {
    syn_params *p;
    syn_graph *g, *h;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(4, 3));
    syn_node *y = syn_linear(g, x, 2, "fc", NULL);
    syn_node *loss = syn_mean(g, y, SYN_ALL_AXES, false);
    ck_assert_int_eq(syn_graph_forward(g), SYN_ERR_ARG); /* not compiled */
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    ck_assert_int_eq(syn_graph_compile(g, syn_cpu(), NULL), SYN_ERR_ARG);
    ck_assert_ptr_null(syn_relu(g, y)); /* building after compile */
    ck_assert_int_eq(syn_graph_backward(g, loss), SYN_ERR_ARG); /* before forward */
    float xs[12] = {0};
    ck_assert_int_eq(syn_graph_feed(g, x, xs, syn_shape2(5, 3)), SYN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "(5,3)"));
    ck_assert_int_eq(syn_graph_feed(g, x, xs, syn_shape2(4, 2)), SYN_ERR_SHAPE);
    ck_assert_int_eq(syn_graph_feed(g, x, NULL, syn_shape2(4, 3)), SYN_ERR_ARG);
    ck_assert_int_eq(syn_graph_feed(g, y, xs, syn_shape2(4, 2)), SYN_ERR_ARG); /* not an input */
    TU_OK(syn_graph_feed(g, x, xs, syn_shape2(4, 3)));
    TU_OK(syn_graph_forward(g));
    ck_assert_int_eq(syn_graph_backward(g, y), SYN_ERR_SHAPE); /* not a scalar */
    TU_OK(syn_graph_backward(g, loss));
    /* an inference graph cannot run backward */
    TU_OK(syn_graph_create(p, &h));
    syn_node *hx = syn_input(h, "x", SYN_F32, syn_shape2(4, 3));
    syn_node *hl = syn_mean(h, syn_linear(h, hx, 2, "fc", NULL), SYN_ALL_AXES, false);
    TU_OK(syn_graph_compile(h, syn_cpu(), &(syn_compile_opts){.inference = true}));
    TU_OK(syn_graph_feed(h, hx, xs, syn_shape2(4, 3)));
    TU_OK(syn_graph_forward(h));
    ck_assert_int_eq(syn_graph_backward(h, hl), SYN_ERR_ARG);
    ck_assert_int_eq(syn_graph_backward(h, loss), SYN_ERR_ARG); /* node of another graph */
    syn_graph_free(h);
    syn_graph_free(g);
    syn_params_free(p);
    syn_graph_free(NULL);
}
END_TEST

/* An input declared after the layers is live from the start: the forward pass
 * must not reuse its buffer for an earlier activation (a fed label survived). */
START_TEST(late_input_survives_forward) {
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(16, 8));
    syn_node *h = x;
    for (int i = 0; i < 4; i++) h = syn_relu(g, syn_linear(g, h, 8, NULL, NULL));
    syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(16));
    syn_node *loss = syn_cross_entropy(g, h, y);
    TU_OK(syn_graph_compile(g, syn_cpu(), &(syn_compile_opts){.inference = true}));
    float xs[16 * 8];
    int32_t ys[16], back[16];
    tu_rng r = tu_rng_make(11);
    tu_fill(&r, xs, 16 * 8, -1, 1);
    for (int i = 0; i < 16; i++) ys[i] = i % 8;
    TU_OK(syn_graph_feed(g, x, xs, syn_shape2(16, 8)));
    TU_OK(syn_graph_feed(g, y, ys, syn_shape1(16)));
    /* the fed labels' range, which lets CUDA kernels skip their device check */
    ck_assert(y->i32_known && y->i32_min == 0 && y->i32_max == 7);
    ck_assert(syn__i32_known_within(y, 0, 7) && !syn__i32_known_within(y, 0, 6) && !syn__i32_known_within(y, 1, 7));
    ck_assert(!x->i32_known);
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, y, back, sizeof back));
    ck_assert(memcmp(ys, back, sizeof ys) == 0);
    float l;
    TU_OK(syn_graph_read_scalar(g, loss, &l));
    ck_assert(isfinite(l));
    syn_tensor *t;
    ys[3] = -2;
    TU_OK(syn_tensor_from_host(syn_cpu(), SYN_I32, syn_shape1(16), ys, &t));
    TU_OK(syn_graph_feed_tensor(g, y, t)); /* a CPU tensor: still known */
    ck_assert(y->i32_known && y->i32_min == -2 && !syn__i32_known_within(y, 0, 7));
    syn_tensor_free(t);
    ck_assert_int_eq(syn_graph_forward(g), SYN_ERR_ARG); /* the CPU kernel checks on its own */
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* Kernel timing per op (syn_graph_set_profiling) on the CPU's clock. */
START_TEST(profile_counts_kernels) { tu_check_profile(syn_cpu()); }
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("exec");
    TCase *tc = tcase_create("exec");
    tcase_add_test(tc, forward_to_runs_what_the_target_needs);
    tcase_add_test(tc, staged_graph_matches_two_graphs);
    tcase_add_test(tc, memplan_reuses_buffers);
    tcase_add_test(tc, reshape_is_a_view);
    tcase_add_test(tc, forward_backward_on_cpu);
    tcase_add_loop_test(tc, random_graphs_plan_safely, 0, 40);
    tcase_add_test(tc, backward_through_shared_buffers);
    tcase_add_test(tc, detach_stops_gradient);
    tcase_add_test(tc, run_time_misuse);
    tcase_add_test(tc, read_grad_after_backward);
    tcase_add_test(tc, input_grad_cnn);
    tcase_add_test(tc, input_grad_lstm);
    tcase_add_test(tc, late_input_survives_forward);
    tcase_add_test(tc, profile_counts_kernels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
