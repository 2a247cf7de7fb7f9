/* Core: statuses, devices, tensors, the Philox RNG, parameter sets and
 * initialisers, kernel lookup at compile time. The executor (passes, memory
 * plan, backward rules) is tested in test_exec.c, ops in test_ops.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "testutil.h"
#include "backend.h"
#include "core/rng.h"

START_TEST(status_strings) {
    ck_assert_str_eq(syn_status_str(SYN_OK), "ok");
    ck_assert_str_eq(syn_status_str(SYN_ERR_SHAPE), "shape mismatch");
    ck_assert_str_eq(syn_status_str((syn_status)999), "unknown status");
    ck_assert_str_eq(syn_version(), SYN_VERSION_STRING);
}
END_TEST

START_TEST(device_parse) {
    syn_device d;
    TU_OK(syn_device_parse("cpu", &d));
    ck_assert_int_eq(d.type, SYN_DEVICE_CPU);
    TU_OK(syn_device_parse("cuda:3", &d));
    ck_assert(d.type == SYN_DEVICE_CUDA && d.index == 3);
    TU_OK(syn_device_parse("gpu", &d));
    ck_assert(d.type == SYN_DEVICE_CUDA && d.index == 0);
    ck_assert_int_eq(syn_device_parse("tpu", &d), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "tpu"));
    ck_assert_int_eq(syn_device_parse("cuda:x", &d), SYN_ERR_ARG);
    ck_assert_int_eq(syn_device_count(SYN_DEVICE_CPU), 1);
    char buf[256];
    TU_OK(syn_device_describe(syn_cpu(), buf, sizeof buf));
    ck_assert(strlen(buf) > 0);
}
END_TEST

/* Without a usable GPU, CUDA requests are errors with a message, never crashes. */
START_TEST(no_gpu_is_an_error) {
    if (syn_device_count(SYN_DEVICE_CUDA) > 0) return;
    syn_tensor *t = NULL;
    syn_status s = syn_tensor_create(syn_cuda(0), SYN_F32, syn_shape1(4), &t);
    ck_assert_int_ne(s, SYN_OK);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "cuda"));
}
END_TEST

/* The device stopwatch: misuse is an error; on the CPU it reads the clock,
 * so a 5 ms sleep between its marks is at least 5 ms (a lower bound only). */
START_TEST(device_timer) {
    syn_device_timer *t = NULL;
    double ms = -1;
    ck_assert_int_eq(syn_device_timer_create(syn_cpu(), NULL), SYN_ERR_ARG);
    TU_OK(syn_device_timer_create(syn_cpu(), &t));
    ck_assert_int_eq(syn_device_timer_stop(t, &ms), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "not started"), "%s", syn_last_error());
    TU_OK(syn_device_timer_start(t));
    struct timespec nap = {0, 5000000};
    nanosleep(&nap, NULL);
    TU_OK(syn_device_timer_stop(t, &ms));
    ck_assert_msg(ms >= 4.99, "%g ms", ms);
    syn_device_timer_free(t);
    syn_device_timer_free(NULL);
    if (syn_device_count(SYN_DEVICE_CUDA) == 0) {
        t = NULL;
        ck_assert_int_ne(syn_device_timer_create(syn_cuda(0), &t), SYN_OK);
        ck_assert_ptr_null(t);
    }
}
END_TEST

START_TEST(tensor_roundtrip) {
    syn_tensor *t, *u, *v;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {0};
    TU_OK(syn_tensor_from_host(syn_cpu(), SYN_F32, syn_shape2(2, 3), a, &t));
    ck_assert_int_eq(syn_tensor_numel(t), 6);
    ck_assert_uint_eq(syn_tensor_bytes(t), 24);
    TU_OK(syn_tensor_read(t, b, sizeof b));
    ck_assert(memcmp(a, b, sizeof a) == 0);
    TU_OK(syn_tensor_reshape(t, syn_shape1(6), &u));
    TU_OK(syn_tensor_fill(u, 7.0f)); /* views share storage */
    TU_OK(syn_tensor_read(t, b, sizeof b));
    ck_assert(b[0] == 7.0f && b[5] == 7.0f);
    TU_OK(syn_tensor_to(t, syn_cpu(), &v));
    TU_OK(syn_tensor_fill(t, 1.0f));
    TU_OK(syn_tensor_read(v, b, sizeof b));
    ck_assert(b[3] == 7.0f); /* a copy, not a view */
    TU_OK(syn_tensor_copy(v, t));
    TU_OK(syn_tensor_read(v, b, sizeof b));
    ck_assert(b[3] == 1.0f);
    ck_assert_int_eq(syn_tensor_read(t, b, 8), SYN_ERR_ARG);
    ck_assert_int_eq(syn_tensor_reshape(t, syn_shape1(5), &u), SYN_ERR_SHAPE);
    syn_tensor_free(u);
    syn_tensor_free(v);
    syn_tensor_free(t);
    syn_tensor_free(NULL);
    char sb[64];
    syn_shape s = syn_shape3(2, 3, 4);
    ck_assert_str_eq(syn_shape_str(&s, sb, sizeof sb), "(2,3,4)");
}
END_TEST

START_TEST(tensor_bad_shapes) {
    syn_tensor *t = NULL;
    syn_shape neg = syn_shape2(3, -1);
    ck_assert_int_eq(syn_tensor_create(syn_cpu(), SYN_F32, neg, &t), SYN_ERR_SHAPE);
    ck_assert_int_eq(syn_tensor_create(syn_cpu(), SYN_F32, syn_shape3(1 << 30, 1 << 30, 1 << 30), &t), SYN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "absurdly large"));
    syn_shape many = {7, {1, 1, 1, 1, 1, 1}};
    ck_assert_int_eq(syn_tensor_create(syn_cpu(), SYN_F32, many, &t), SYN_ERR_SHAPE);
    ck_assert_ptr_null(t);
    /* Large but representable: a clean out-of-memory, not a crash. */
    syn_status s = syn_tensor_create(syn_cpu(), SYN_F32, syn_shape2(INT64_C(1) << 22, INT64_C(1) << 22), &t);
    ck_assert(s == SYN_ERR_OOM || s == SYN_ERR_SHAPE);
}
END_TEST

/* Known-answer vectors of Philox4x32-10 from the Random123 distribution. */
START_TEST(philox_known_answers) {
    syn__philox_block b = syn__philox(0, 0, 0);
    ck_assert_uint_eq(b.v[0], 0x6627e8d5u);
    ck_assert_uint_eq(b.v[1], 0xe169c58du);
    ck_assert_uint_eq(b.v[2], 0xbc57ac4cu);
    ck_assert_uint_eq(b.v[3], 0x9b00dbd8u);
    b = syn__philox(~0ull, ~0ull, ~0ull);
    ck_assert_uint_eq(b.v[0], 0x408f276du);
    ck_assert_uint_eq(b.v[1], 0x41c83b0eu);
    ck_assert_uint_eq(b.v[2], 0xa20bc7c6u);
    ck_assert_uint_eq(b.v[3], 0x6d5451fdu);
    b = syn__philox(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
    ck_assert_uint_eq(b.v[0], 0xd16cfe09u);
    ck_assert_uint_eq(b.v[1], 0x94fdccebu);
    ck_assert_uint_eq(b.v[2], 0x5001e420u);
    ck_assert_uint_eq(b.v[3], 0x24126ea1u);
    /* uniforms are in [0, 1) and roughly uniform */
    double s = 0;
    for (int i = 0; i < 40000; i++) {
        float u = syn__philox_uniform(7, 1, (uint64_t)i);
        ck_assert(u >= 0.0f && u < 1.0f);
        s += u;
    }
    ck_assert(fabs(s / 40000 - 0.5) < 0.01);
}
END_TEST

static void read_param(syn_params *p, const char *name, float *out, size_t n) {
    syn_tensor *v;
    TU_OK(syn_params_find(p, name, &v, NULL));
    TU_OK(syn_tensor_read(v, out, n * sizeof(float)));
}

START_TEST(params_and_init) {
    syn_params *p, *q;
    TU_OK(syn_params_create(syn_cpu(), 42, &p));
    TU_OK(syn_params_create(syn_cpu(), 42, &q));
    syn_init kn = {SYN_INIT_KAIMING_NORMAL, 0, 0, 0}, xu = {SYN_INIT_XAVIER_UNIFORM, 0, 0, 0};
    TU_OK(syn_params_add(p, "w", syn_shape2(256, 512), &kn, NULL));
    TU_OK(syn_params_add(p, "v", syn_shape2(30, 70), &xu, NULL));
    TU_OK(syn_params_add(q, "w", syn_shape2(256, 512), &kn, NULL));
    static float a[256 * 512], b[256 * 512];
    read_param(p, "w", a, 256 * 512);
    read_param(q, "w", b, 256 * 512);
    ck_assert(memcmp(a, b, sizeof a) == 0); /* same seed, same values */
    double m = 0, v = 0;
    for (int i = 0; i < 256 * 512; i++) m += a[i];
    m /= 256 * 512;
    for (int i = 0; i < 256 * 512; i++) v += (a[i] - m) * (a[i] - m);
    double sd = sqrt(v / (256 * 512)), want = sqrt(2.0 / 512);
    ck_assert_msg(fabs(m) < 0.01 * want * 10 && fabs(sd - want) < 0.02 * want, "kaiming normal: mean %g sd %g want %g", m, sd, want);
    float c[30 * 70];
    read_param(p, "v", c, 30 * 70);
    float bound = sqrtf(6.0f / 100.0f), mx = 0;
    for (int i = 0; i < 30 * 70; i++) mx = fmaxf(mx, fabsf(c[i]));
    ck_assert(mx <= bound && mx > 0.9f * bound);
    /* same name: same tensor; other shape: an error naming both shapes */
    syn_tensor *t1, *t2;
    TU_OK(syn_params_add(p, "v", syn_shape2(30, 70), &xu, &t1));
    TU_OK(syn_params_find(p, "v", &t2, NULL));
    ck_assert_ptr_eq(t1, t2);
    ck_assert_int_eq(syn_params_add(p, "v", syn_shape2(70, 30), &xu, NULL), SYN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "(30,70)"));
    ck_assert_int_eq(syn_params_count(p), 2);
    ck_assert_int_eq(syn_params_numel(p), 256 * 512 + 30 * 70);
    ck_assert_int_eq(syn_params_find(p, "nope", &t1, NULL), SYN_ERR_ARG);
    syn_params_free(p);
    syn_params_free(q);
    syn_params_free(NULL);
}
END_TEST

/* Two graphs built the same way on one set share their parameters. */
START_TEST(graphs_share_params) {
    syn_params *p;
    syn_graph *g1, *g2;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g1));
    TU_OK(syn_graph_create(p, &g2));
    int64_t hidden[2] = {16, 8};
    syn_node *x1 = syn_input(g1, "x", SYN_F32, syn_shape2(32, 10));
    syn_node *x2 = syn_input(g2, "x", SYN_F32, syn_shape2(500, 10));
    syn_node *o1 = syn_mlp(g1, x1, hidden, 2, 3, SYN_ACT_RELU, 0);
    int n1 = syn_params_count(p);
    syn_node *o2 = syn_mlp(g2, x2, hidden, 2, 3, SYN_ACT_RELU, 0);
    ck_assert_ptr_nonnull(o1);
    ck_assert_ptr_nonnull(o2);
    ck_assert_int_eq(n1, 6);
    ck_assert_int_eq(syn_params_count(p), 6);
    TU_OK(syn_graph_compile(g1, syn_cpu(), NULL));
    TU_OK(syn_graph_compile(g2, syn_cpu(), &(syn_compile_opts){.inference = true}));
    float xs[10], y1[3], y2[3];
    tu_rng r = tu_rng_make(3);
    tu_fill(&r, xs, 10, -1, 1);
    TU_OK(syn_graph_feed(g1, x1, xs, syn_shape2(1, 10)));
    TU_OK(syn_graph_feed(g2, x2, xs, syn_shape2(1, 10)));
    TU_OK(syn_graph_forward(g1));
    TU_OK(syn_graph_forward(g2));
    TU_OK(syn_graph_read(g1, o1, y1, sizeof y1));
    TU_OK(syn_graph_read(g2, o2, y2, sizeof y2));
    ck_assert(memcmp(y1, y2, sizeof y1) == 0);
    syn_graph_free(g1);
    syn_graph_free(g2);
    syn_params_free(p);
}
END_TEST

/* A backend without a kernel for an op is reported when compiling, naming op and backend. */
START_TEST(missing_kernel_is_unsupported) {
    syn_backend *be = syn__cpu_backend();
    syn__kernel saved = be->fwd[SYN_OP_GELU];
    be->fwd[SYN_OP_GELU] = NULL;
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape1(4));
    ck_assert_ptr_nonnull(syn_gelu(g, x));
    ck_assert_int_eq(syn_graph_compile(g, syn_cpu(), NULL), SYN_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "gelu"));
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "cpu"));
    syn_graph_free(g);
    be->fwd[SYN_OP_GELU] = saved;
}
END_TEST

/* The CPU table has every op's kernels (backend.h's lists): a forward for
 * each op but the leaves, a backward for each with a gradient. */
START_TEST(cpu_table_is_complete) {
    const syn_backend *be = syn__cpu_backend();
    for (int op = 0; op < SYN_OP_COUNT; op++) {
        const int f = syn__op_flags[op];
        ck_assert_msg((be->fwd[op] != NULL) == !(f & SYN_LEAF), "%s: forward kernel", syn__op_name[op]);
        ck_assert_msg((be->bwd[op] != NULL) == !(f & (SYN_LEAF | SYN_NO_GRAD)), "%s: backward kernel",
                      syn__op_name[op]);
    }
}
END_TEST

START_TEST(params_without_set) {
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(2, 3));
    ck_assert_ptr_null(syn_linear(g, x, 4, NULL, NULL));
    ck_assert_int_eq(syn_graph_status(g), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "no parameter set"));
    ck_assert_int_eq(syn_graph_compile(g, syn_cpu(), NULL), SYN_ERR_ARG);
    /* compile repeats the first build error's details */
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "no parameter set"));
    syn_graph_free(g);
}
END_TEST

/* A compiled graph keeps working after another graph adds parameters to its
 * set (which may move the set's storage). */
START_TEST(params_added_after_compile) {
    syn_params *ps;
    syn_graph *a, *b;
    TU_OK(syn_params_create(syn_cpu(), 3, &ps));
    TU_OK(syn_graph_create(ps, &a));
    syn_node *x = syn_input(a, "x", SYN_F32, syn_shape2(2, 3));
    syn_node *loss = syn_sum(a, syn_linear(a, x, 4, "first", NULL), SYN_ALL_AXES, false);
    TU_OK(syn_graph_compile(a, syn_cpu(), NULL));
    TU_OK(syn_graph_create(ps, &b));
    syn_node *xb = syn_input(b, "x", SYN_F32, syn_shape2(2, 3));
    syn_node *h = xb;
    for (int i = 0; i < 40; i++) h = syn_linear(b, h, 3, NULL, NULL); /* 80 more parameters */
    ck_assert_int_eq(syn_graph_status(b), SYN_OK);
    float xs[6] = {1, 2, 3, 4, 5, 6}, l1, l2, g[12];
    TU_OK(syn_graph_feed(a, x, xs, syn_shape2(2, 3)));
    TU_OK(syn_params_zero_grad(ps));
    TU_OK(syn_graph_forward(a));
    TU_OK(syn_graph_backward(a, loss));
    TU_OK(syn_graph_read_scalar(a, loss, &l1));
    syn_tensor *w, *wg;
    TU_OK(syn_params_find(ps, "first.weight", &w, &wg));
    TU_OK(syn_tensor_read(wg, g, sizeof g));
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < 3; i++) ck_assert_float_eq(g[o * 3 + i], xs[i] + xs[3 + i]); /* d sum / d w */
    float wv[12], bv[4];
    syn_tensor *bt;
    TU_OK(syn_tensor_read(w, wv, sizeof wv));
    TU_OK(syn_params_find(ps, "first.bias", &bt, NULL));
    TU_OK(syn_tensor_read(bt, bv, sizeof bv));
    l2 = 0;
    for (int r = 0; r < 2; r++)
        for (int o = 0; o < 4; o++) {
            l2 += bv[o];
            for (int i = 0; i < 3; i++) l2 += wv[o * 3 + i] * xs[r * 3 + i];
        }
    ck_assert_float_eq_tol(l1, l2, 1e-5);
    syn_graph_free(b);
    syn_graph_free(a);
    syn_params_free(ps);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, status_strings);
    tcase_add_test(tc, device_parse);
    tcase_add_test(tc, no_gpu_is_an_error);
    tcase_add_test(tc, device_timer);
    tcase_add_test(tc, tensor_roundtrip);
    tcase_add_test(tc, tensor_bad_shapes);
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, params_and_init);
    tcase_add_test(tc, graphs_share_params);
    tcase_add_test(tc, missing_kernel_is_unsupported);
    tcase_add_test(tc, cpu_table_is_complete);
    tcase_add_test(tc, params_without_set);
    tcase_add_test(tc, params_added_after_compile);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
