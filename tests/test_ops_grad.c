/* Backward rules of every differentiable op of src/ops.def, on the CPU: central
 * finite differences of loss = sum(op(params...) * R), R fixed and random, so
 * the upstream gradient is not all ones; broadcast operands included. Then
 * gradient accumulation (a parameter used twice, two backward passes,
 * zero_grad) and the stop-gradient of detach. Forward values are checked
 * against references in test_ops.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gradutil.h"
#include "opcases.h"

static const opc_case *cases[OPC_MAX]; /* opcases.c */
static int n_cases;

/* ---- the finite-difference check ----------------------------------------- */

/* The op's output y, not the float loss node, gives the objective sum(y * R)
 * (gradutil.h): the loss would round away the small changes of a big case.
 * Dropout draws the same mask at every evaluation. */
#define DROP_SEED 977

/* via: each operand reaches the op through p * 1, so the op's backward
 * writes a fresh (NaN-poisoned) gradient buffer rather than adding to a
 * parameter's: a kernel that skips an element leaves NaN (backend.h). */
static void grad_check(const opc_case *c, uint64_t salt, bool via) {
    tu_rng r = tu_rng_make(salt);
    syn_params *ps;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *x[3];
    syn_tensor *val[3] = {0}, *grd[3] = {0};
    void *data[3];
    for (int k = 0; k < c->n_in; k++) {
        char name[8] = {'p', (char)('0' + k), 0};
        data[k] = opc_operand(&r, c, k);
        if (opc_is_labels(c, k)) {
            x[k] = syn_input(g, "labels", SYN_I32, c->in[k]);
            continue;
        }
        x[k] = syn_param(g, name, c->in[k], NULL);
        ck_assert_msg(x[k] != NULL, "%s: %s", c->what, syn_last_error());
        if (via) x[k] = syn_mul_scalar(g, x[k], 1.0f);
        TU_OK(syn_params_find(ps, name, &val[k], &grd[k]));
        TU_OK(syn_tensor_write(val[k], data[k], syn_tensor_bytes(val[k])));
    }
    syn_node *y = opc_build(g, x, c);
    ck_assert_msg(y != NULL, "%s: build failed: %s", c->what, syn_last_error());
    syn_shape ys = syn_node_shape(y), rs = ys.ndim ? ys : syn_shape1(1);
    syn_node *rn = syn_input(g, "R", SYN_F32, rs);
    syn_node *loss = syn_sum(g, syn_mul(g, y, rn), SYN_ALL_AXES, false);
    ck_assert_msg(loss != NULL, "%s: %s", c->what, syn_last_error());
    TU_OK(syn_graph_keep(g, y));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    poison(g);
    int64_t nr = syn_shape_numel(&rs);
    float *rv = malloc((size_t)nr * sizeof *rv);
    tu_fill(&r, rv, nr, -1, 1);
    TU_OK(syn_graph_feed(g, rn, rv, rs));
    for (int k = 0; k < c->n_in; k++)
        if (opc_is_labels(c, k)) TU_OK(syn_graph_feed(g, x[k], data[k], c->in[k]));

    objective obj = {g, y, loss, rv, malloc((size_t)nr * sizeof(float)), nr, DROP_SEED};
    double l0 = objective_at(&obj);
    float lf;
    TU_OK(syn_graph_read_scalar(g, loss, &lf));
    ck_assert_msg(isfinite(l0) && fabs(lf - l0) <= 1e-5 * (1 + fabs(l0)), "%s: loss %g, sum(y R) %g", c->what, lf, l0);
    TU_OK(syn_params_zero_grad(ps));
    TU_OK(syn_graph_backward(g, loss));

    for (int k = 0; k < c->n_in; k++) {
        if (!val[k]) continue;
        int64_t n = syn_tensor_numel(val[k]);
        float *v = data[k], *ana = malloc((size_t)n * sizeof *ana);
        TU_OK(syn_tensor_read(grd[k], ana, (size_t)n * sizeof *ana));
        int m = n <= FULL_MAX ? (int)n : SAMPLES;
        double worst = 0, diff2 = 0, num2 = 0;
        int64_t worst_i = 0;
        double worst_a = 0, worst_n = 0;
        for (int s = 0; s < m; s++) {
            int64_t i = n <= FULL_MAX ? s : (int64_t)(tu_next(&r) % (uint64_t)n);
            float orig = v[i], up = orig + EPS, down = orig - EPS;
            v[i] = up;
            TU_OK(syn_tensor_write(val[k], v, (size_t)n * sizeof *v));
            double lp = objective_at(&obj);
            v[i] = down;
            TU_OK(syn_tensor_write(val[k], v, (size_t)n * sizeof *v));
            double lm = objective_at(&obj);
            v[i] = orig;
            TU_OK(syn_tensor_write(val[k], v, (size_t)n * sizeof *v));
            /* the steps actually taken in float */
            double num = (lp - lm) / ((double)up - down), a = ana[i];
            double ratio = fabs(a - num) / (5e-4 + 2e-3 * fabs(num));
            diff2 += (a - num) * (a - num);
            num2 += num * num;
            if (!(ratio <= worst)) {
                worst = ratio;
                worst_i = i;
                worst_a = a;
                worst_n = num;
            }
        }
        ck_assert_msg(worst <= 1.0, "%s: d/d operand %d [%lld]: backward %g, finite difference %g (seed %llu)", c->what,
                      k, (long long)worst_i, worst_a, worst_n, (unsigned long long)tu_seed());
        ck_assert_msg(sqrt(diff2) <= 2e-3 * sqrt(num2) + 5e-4, "%s: operand %d: |backward - fd| = %g, |fd| = %g",
                      c->what, k, sqrt(diff2), sqrt(num2));
        free(ana);
    }
    for (int k = 0; k < c->n_in; k++) free(data[k]);
    free(rv);
    free(obj.buf);
    syn_graph_free(g);
    syn_params_free(ps);
}

START_TEST(test_op_grad) { grad_check(cases[_i], 5000 + (uint64_t)_i, false); }
END_TEST

START_TEST(test_op_grad_via_intermediate) { grad_check(cases[_i], 5000 + (uint64_t)_i, true); }
END_TEST

START_TEST(test_broadcast_grad) {
    char what[160];
    opc_case c = opc_bcast_case(OPC_GRAD, _i, what, sizeof what);
    grad_check(&c, 6000 + (uint64_t)_i, _i % 2 == 1);
}
END_TEST

/* ---- a composite model: nothing kept, buffers reused ------------------------- */

/* a = x w1^T + b1;  h = gelu(tanh(a) * sigmoid(a));  e = (h w2^T) * s;
 * loss = cross_entropy(e, y) + mse(softmax(e), t) + mean(sigmoid(e)^2)
 * + sum(log_softmax(e, 0) * R). Only the inputs and the loss are kept, so
 * the memory plan must hold every value a backward rule reads (inputs for
 * mul, linear, gelu; outputs for tanh, sigmoid, softmax, log_softmax). */
START_TEST(test_composite_grad) {
    enum { B = 4, IN = 5, H = 6, O = 3 };
    tu_rng r = tu_rng_make(6500 + (uint64_t)_i);
    syn_params *ps;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(B, IN)), *y = syn_input(g, "y", SYN_I32, syn_shape1(B));
    syn_node *t = syn_input(g, "t", SYN_F32, syn_shape2(B, O)), *rn = syn_input(g, "R", SYN_F32, syn_shape2(B, O));
    static const char *const names[4] = {"w1", "b1", "w2", "s"};
    const syn_shape shapes[4] = {syn_shape2(H, IN), syn_shape1(H), syn_shape2(O, H), syn_shape1(O)};
    syn_node *p[4];
    for (int k = 0; k < 4; k++) p[k] = syn_param(g, names[k], shapes[k], NULL);
    syn_node *a = syn_linear_op(g, x, p[0], p[1]);
    syn_node *h = syn_gelu(g, syn_mul(g, syn_tanh(g, a), syn_sigmoid(g, a)));
    syn_node *e = syn_mul(g, syn_linear_op(g, h, p[2], NULL), p[3]);
    syn_node *l1 = syn_cross_entropy(g, e, y);
    syn_node *l2 = syn_mse_loss(g, syn_softmax(g, e, -1), t);
    syn_node *l3 = syn_mean(g, syn_pow_scalar(g, syn_sigmoid(g, e), 2.0f), SYN_ALL_AXES, false);
    syn_node *l4 = syn_sum(g, syn_mul(g, syn_log_softmax(g, e, 0), rn), SYN_ALL_AXES, false);
    syn_node *loss = syn_add(g, syn_add(g, l1, l2), syn_add(g, l3, l4));
    ck_assert_msg(loss != NULL, "%s", syn_last_error());
    syn_compile_opts opts = {.inference = false};
    TU_OK(syn_graph_compile(g, syn_cpu(), &opts));
    poison(g);
    float xv[B * IN], tv[B * O], rv[B * O];
    int32_t yv[B];
    tu_fill(&r, xv, B * IN, -1, 1);
    tu_fill(&r, tv, B * O, 0, 1);
    tu_fill(&r, rv, B * O, -1, 1);
    for (int i = 0; i < B; i++) yv[i] = (int32_t)(tu_next(&r) % O);
    TU_OK(syn_graph_feed(g, x, xv, syn_shape2(B, IN)));
    TU_OK(syn_graph_feed(g, y, yv, syn_shape1(B)));
    TU_OK(syn_graph_feed(g, t, tv, syn_shape2(B, O)));
    TU_OK(syn_graph_feed(g, rn, rv, syn_shape2(B, O)));
    float v[4][H * IN], ana[H * IN];
    syn_tensor *val[4], *grd[4];
    for (int k = 0; k < 4; k++) {
        TU_OK(syn_params_find(ps, names[k], &val[k], &grd[k]));
        tu_fill(&r, v[k], syn_tensor_numel(val[k]), -1, 1);
        TU_OK(syn_tensor_write(val[k], v[k], syn_tensor_bytes(val[k])));
    }
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_params_zero_grad(ps));
    TU_OK(syn_graph_backward(g, loss));
    for (int k = 0; k < 4; k++) {
        int64_t n = syn_tensor_numel(val[k]);
        TU_OK(syn_tensor_read(grd[k], ana, (size_t)n * sizeof(float)));
        for (int64_t i = 0; i < n; i++) {
            float orig = v[k][i], up = orig + EPS, down = orig - EPS, lp, lm;
            v[k][i] = up;
            TU_OK(syn_tensor_write(val[k], v[k], (size_t)n * sizeof(float)));
            TU_OK(syn_graph_forward(g));
            TU_OK(syn_graph_read_scalar(g, loss, &lp));
            v[k][i] = down;
            TU_OK(syn_tensor_write(val[k], v[k], (size_t)n * sizeof(float)));
            TU_OK(syn_graph_forward(g));
            TU_OK(syn_graph_read_scalar(g, loss, &lm));
            v[k][i] = orig;
            TU_OK(syn_tensor_write(val[k], v[k], (size_t)n * sizeof(float)));
            double num = ((double)lp - lm) / ((double)up - down);
            ck_assert_msg(fabs(ana[i] - num) <= 5e-4 + 2e-3 * fabs(num),
                          "d loss / d %s[%lld]: backward %g, finite difference %g (seed %llu)", names[k], (long long)i,
                          ana[i], num, (unsigned long long)tu_seed());
        }
    }
    syn_graph_free(g);
    syn_params_free(ps);
}
END_TEST

/* ---- accumulation --------------------------------------------------------- */

#define N 7

static void read_grad(syn_params *ps, const char *name, float *out) {
    syn_tensor *gt;
    TU_OK(syn_params_find(ps, name, NULL, &gt));
    TU_OK(syn_tensor_read(gt, out, N * sizeof(float)));
}

static void expect(const float *got, const double *want, const char *what) {
    ck_assert_msg(tu_close_ratio(got, want, N, 1e-6, 1e-6) <= 1.0, "%s: gradient differs (seed %llu)", what,
                  (unsigned long long)tu_seed());
}

/* y = w*x + w*z: dL/dw = x + z; twice without zero_grad: 2(x + z) */
START_TEST(test_accumulation) {
    tu_rng r = tu_rng_make(7000);
    float xv[N], zv[N], wv[N], got[N];
    double want[N];
    tu_fill(&r, xv, N, -1, 1);
    tu_fill(&r, zv, N, -1, 1);
    tu_fill(&r, wv, N, -1, 1);
    syn_params *ps;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *w = syn_param(g, "w", syn_shape1(N), NULL);
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape1(N)), *z = syn_input(g, "z", SYN_F32, syn_shape1(N));
    syn_node *loss = syn_sum(g, syn_add(g, syn_mul(g, w, x), syn_mul(g, w, z)), SYN_ALL_AXES, false);
    ck_assert_ptr_nonnull(loss);
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    poison(g);
    syn_tensor *wt;
    TU_OK(syn_params_find(ps, "w", &wt, NULL));
    TU_OK(syn_tensor_write(wt, wv, sizeof wv));
    TU_OK(syn_graph_feed(g, x, xv, syn_shape1(N)));
    TU_OK(syn_graph_feed(g, z, zv, syn_shape1(N)));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss));
    for (int i = 0; i < N; i++) want[i] = (double)xv[i] + zv[i];
    read_grad(ps, "w", got);
    expect(got, want, "w used twice");
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss));
    for (int i = 0; i < N; i++) want[i] = 2.0 * ((double)xv[i] + zv[i]);
    read_grad(ps, "w", got);
    expect(got, want, "two backward passes");
    TU_OK(syn_params_zero_grad(ps));
    for (int i = 0; i < N; i++) want[i] = 0;
    read_grad(ps, "w", got);
    expect(got, want, "after zero_grad");
    TU_OK(syn_graph_backward(g, loss)); /* again, on the same forward */
    for (int i = 0; i < N; i++) want[i] = (double)xv[i] + zv[i];
    read_grad(ps, "w", got);
    expect(got, want, "backward after zero_grad");
    syn_graph_free(g);
    syn_params_free(ps);
}
END_TEST

/* mul(w, w): both inputs are the same node, dL/dw = 2w; and two graphs
 * sharing one parameter set add into the same gradient. */
START_TEST(test_accumulation_same_node_and_graphs) {
    tu_rng r = tu_rng_make(7100);
    float xv[N], wv[N], got[N];
    double want[N];
    tu_fill(&r, xv, N, -1, 1);
    tu_fill(&r, wv, N, -1, 1);
    syn_params *ps;
    syn_graph *g1, *g2;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    TU_OK(syn_graph_create(ps, &g1));
    TU_OK(syn_graph_create(ps, &g2));
    syn_node *w1 = syn_param(g1, "w", syn_shape1(N), NULL);
    syn_node *l1 = syn_sum(g1, syn_mul(g1, w1, w1), SYN_ALL_AXES, false);
    syn_node *w2 = syn_param(g2, "w", syn_shape1(N), NULL);
    syn_node *x2 = syn_input(g2, "x", SYN_F32, syn_shape1(N));
    syn_node *l2 = syn_sum(g2, syn_mul(g2, x2, w2), SYN_ALL_AXES, false);
    ck_assert_ptr_nonnull(l1);
    ck_assert_ptr_nonnull(l2);
    TU_OK(syn_graph_compile(g1, syn_cpu(), NULL));
    TU_OK(syn_graph_compile(g2, syn_cpu(), NULL));
    syn_tensor *wt;
    TU_OK(syn_params_find(ps, "w", &wt, NULL));
    TU_OK(syn_tensor_write(wt, wv, sizeof wv));
    TU_OK(syn_graph_feed(g2, x2, xv, syn_shape1(N)));
    TU_OK(syn_graph_forward(g1));
    TU_OK(syn_graph_backward(g1, l1));
    for (int i = 0; i < N; i++) want[i] = 2.0 * wv[i];
    read_grad(ps, "w", got);
    expect(got, want, "mul(w, w)");
    TU_OK(syn_graph_forward(g2));
    TU_OK(syn_graph_backward(g2, l2));
    for (int i = 0; i < N; i++) want[i] = 2.0 * wv[i] + xv[i];
    read_grad(ps, "w", got);
    expect(got, want, "two graphs, one parameter set");
    syn_graph_free(g1);
    syn_graph_free(g2);
    syn_params_free(ps);
}
END_TEST

/* ---- detach ----------------------------------------------------------------- */

START_TEST(test_detach_stops_gradient) {
    tu_rng r = tu_rng_make(7200);
    float xv[N], zv[N], wv[N], vv[N], got[N], val[N];
    double want[N];
    tu_fill(&r, xv, N, -1, 1);
    tu_fill(&r, zv, N, -1, 1);
    tu_fill(&r, wv, N, -1, 1);
    tu_fill(&r, vv, N, -1, 1);
    syn_params *ps;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *w = syn_param(g, "w", syn_shape1(N), NULL);  /* reached directly and through detach */
    syn_node *v = syn_param(g, "v", syn_shape1(N), NULL);  /* reached only through detach */
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape1(N)), *z = syn_input(g, "z", SYN_F32, syn_shape1(N));
    syn_node *h = syn_mul(g, w, x);                        /* h = w x */
    syn_node *dh = syn_detach(g, h);
    syn_node *dv = syn_detach(g, v);
    /* L = sum(h * detach(h)) + sum(detach(w) * z) + sum(detach(v) * x)
     * dL/dw = x * h (not 2 x h, and no z);  dL/dv = 0 */
    syn_node *loss = syn_add(g, syn_sum(g, syn_mul(g, h, dh), SYN_ALL_AXES, false),
                             syn_add(g, syn_sum(g, syn_mul(g, syn_detach(g, w), z), SYN_ALL_AXES, false),
                                     syn_sum(g, syn_mul(g, dv, x), SYN_ALL_AXES, false)));
    ck_assert_ptr_nonnull(loss);
    TU_OK(syn_graph_keep(g, dv));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    poison(g);
    syn_tensor *t;
    TU_OK(syn_params_find(ps, "w", &t, NULL));
    TU_OK(syn_tensor_write(t, wv, sizeof wv));
    TU_OK(syn_params_find(ps, "v", &t, NULL));
    TU_OK(syn_tensor_write(t, vv, sizeof vv));
    TU_OK(syn_graph_feed(g, x, xv, syn_shape1(N)));
    TU_OK(syn_graph_feed(g, z, zv, syn_shape1(N)));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, dv, val, sizeof val));
    ck_assert_msg(memcmp(val, vv, sizeof val) == 0, "detach is not the identity forward");
    TU_OK(syn_graph_backward(g, loss));
    for (int i = 0; i < N; i++) want[i] = (double)xv[i] * ((double)wv[i] * xv[i]);
    read_grad(ps, "w", got);
    expect(got, want, "w through h and detach");
    for (int i = 0; i < N; i++) want[i] = 0;
    read_grad(ps, "v", got);
    expect(got, want, "v only through detach");
    syn_graph_free(g);

    /* a loss reached only through detach: backward is a no-op */
    TU_OK(syn_graph_create(ps, &g));
    v = syn_param(g, "v", syn_shape1(N), NULL);
    loss = syn_sum(g, syn_detach(g, v), SYN_ALL_AXES, false);
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_backward(g, loss));
    read_grad(ps, "v", got);
    expect(got, want, "loss only through detach");
    syn_graph_free(g);
    syn_params_free(ps);
}
END_TEST

static Suite *ops_grad_suite(void) {
    n_cases = opc_select(OPC_GRAD, cases);
    Suite *s = suite_create("ops_grad");
    TCase *tc = tcase_create("finite_differences");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_op_grad, 0, n_cases);
    tcase_add_loop_test(tc, test_op_grad_via_intermediate, 0, n_cases);
    tcase_add_loop_test(tc, test_broadcast_grad, 0, opc_bcast_count(OPC_GRAD));
    tcase_add_loop_test(tc, test_composite_grad, 0, 3);
    suite_add_tcase(s, tc);
    tc = tcase_create("accumulation");
    tcase_add_test(tc, test_accumulation);
    tcase_add_test(tc, test_accumulation_same_node_and_graphs);
    tcase_add_test(tc, test_detach_stops_gradient);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(ops_grad_suite()); }
