/* Backend consistency: every op forward and backward on cuda:0 against the CPU
 * backend on the same inputs (parameters initialised from one seed on both
 * devices), three Adam steps of an MLP, optimizer updates and clipping, the
 * dropout mask, copies and fills, the caching allocator, out-of-memory and
 * error paths. Runs without forking (CUDA must not be initialised in a parent
 * that forks); without a GPU it prints one line and succeeds. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cudautil.h"
#include "opcases.h"
#ifdef SYN_HAVE_CUDA
#include "cuda/cuda_common.h"
#endif

/* fp32 on both backends: within 1e-5 of the CPU, relative to the tensor's largest value */
#define TOL 1e-5
#define CHECK_CLOSE(what, got, want, n, tol) cu_check_close((what), (got), (want), (n), (tol), tu_max_rel_err)

/* ---- the op cases (opcases.c) ------------------------------------------------------ */

static const opc_case *cases[OPC_MAX];
static int n_cases, n_bcast; /* then the broadcasting pairs through add, sub, mul and div */

/* One device's copy of a case: parameters p0.. (same seed on both devices, so
 * the same values; cross-entropy's labels fed as an input), the op's output y,
 * and L = sum(y * wgt) (a random upstream gradient) or L = 1.7 y for scalar
 * outputs. */
static void rig_build(cu_rig *r, const opc_case *c, syn_device dev, uint64_t seed, const int32_t *labels, int route) {
    cu_rig_open(r, dev, seed);
    syn_node *x[3] = {0}, *label_in = NULL;
    for (int k = 0; k < c->n_in; k++) {
        if (opc_is_labels(c, k)) {
            x[k] = label_in = syn_input(r->g, "labels", SYN_I32, c->in[k]);
            continue;
        }
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        opc_range rg = opc_range_of(c, k);
        x[k] = cu_route(r->g, cu_param(r->g, name, c->in[k], rg.lo, rg.hi), route);
    }
    syn_node *y = opc_build(r->g, x, c);
    for (int k = 0; k < c->n_in; k++)
        if (x[k] != label_in) cu_route_extra(r, x[k], k, route);
    cu_rig_finish(r, c->what, y, dev, seed, c->pos_dy ? 0.5f : -1.0f, c->pos_dy ? 1.5f : 1.0f, false);
    if (c->k == K_CE) TU_OK(syn_graph_feed(r->g, label_in, labels, c->in[1]));
}

/* Every op case: output, loss and every parameter gradient, CUDA vs CPU,
 * with the operands reached by `route` (cudautil.h). */
static void op_case_matches(int ci, int route) {
    char pair_name[96];
    opc_case pair;
    if (ci >= n_cases) pair = opc_bcast_case(OPC_CUDA, ci - n_cases, pair_name, sizeof pair_name);
    const opc_case *c = ci < n_cases ? cases[ci] : &pair;
    uint64_t seed = tu_seed() ^ ((uint64_t)ci * 0x9E3779B97F4A7C15ull);
    char what[192];
    snprintf(what, sizeof what, "%s, %s", c->what, cu_route_name[route]);
    int32_t *labels = NULL;
    if (c->k == K_CE) {
        int64_t N = c->in[1].dim[0], C = c->in[0].dim[1];
        labels = malloc((size_t)N * sizeof *labels);
        ck_assert_ptr_nonnull(labels);
        tu_rng rng = tu_rng_make((uint64_t)ci);
        for (int64_t i = 0; i < N; i++) labels[i] = (int32_t)(tu_next(&rng) % (uint64_t)C);
    }
    cu_rig cpu, gpu;
    rig_build(&cpu, c, syn_cpu(), seed, labels, route);
    rig_build(&gpu, c, syn_cuda(0), seed, labels, route);
    cu_rig_run(&cpu);
    cu_rig_run(&gpu);
    cu_rig_compare_output(&gpu, &cpu, what, TOL, tu_max_rel_err);

    cu_compare_params(gpu.p, cpu.p, true, what, TOL, tu_max_rel_err);
    /* L = sum(y * wgt) may cancel to near 0: measure its error against
     * sum |y * wgt|, the scale its rounding errors have (the direct route
     * only: the others add terms to L) */
    double scale = 0;
    syn_tensor *wt;
    if (route == CU_DIRECT && syn_params_find(cpu.p, "wgt", &wt, NULL) == SYN_OK) {
        int64_t n;
        float *b = cu_rig_output(&cpu, &n), *w = cu_fmalloc(n);
        TU_OK(syn_tensor_read(wt, w, (size_t)n * sizeof(float)));
        for (int64_t i = 0; i < n; i++) scale += fabs((double)b[i] * w[i]);
        free(w);
        free(b);
    }
    float la, lb;
    TU_OK(syn_graph_read_scalar(gpu.g, gpu.loss, &la));
    TU_OK(syn_graph_read_scalar(cpu.g, cpu.loss, &lb));
    if (scale == 0) scale = fabs(lb);
    const bool close = route != CU_DIRECT || fabs((double)la - lb) <= TOL * (scale > 1e-6 ? scale : 1e-6);
    ck_assert_msg(isfinite(la) && close,
                  "%s: loss %.9g on cuda, %.9g on cpu (scale %g, seed %llu)", what, la, lb, scale,
                  (unsigned long long)tu_seed());
    free(labels);
    cu_rig_free(&gpu);
    cu_rig_free(&cpu);
}

START_TEST(op_matches_cpu) { op_case_matches(_i, CU_DIRECT); }
END_TEST

/* The same with the operands behind an intermediate node: the op's backward
 * writes its first gradient (which CUDA kernels may write without zeroing
 * it first), then adds to a gradient another term wrote (cudautil.h). */
START_TEST(op_matches_cpu_via_intermediate) { op_case_matches(_i / 2, _i % 2 ? CU_SECOND : CU_FRESH); }
END_TEST

/* ---- whole training steps ---------------------------------------------------------- */

static void mlp_build(cu_model *m, syn_device dev, uint64_t seed, int64_t batch) {
    cu_model_open(m, dev, seed);
    int64_t hidden[1] = {64};
    m->x = syn_input(m->g, "x", SYN_F32, syn_shape2(batch, 784));
    m->y = syn_input(m->g, "y", SYN_I32, syn_shape1(batch));
    /* tanh, not relu: a pre-activation within rounding of 0 would flip relu's
     * derivative on one device only; a smooth activation keeps gradients
     * continuous in the inputs, so fp32 rounding stays fp32-sized. */
    syn_node *logits = syn_mlp(m->g, m->x, hidden, 1, 10, SYN_ACT_TANH, 0.0f);
    m->loss = syn_cross_entropy(m->g, logits, m->y);
    cu_model_finish(m, dev);
}

/* 784-64-10 tanh MLP, three Adam steps on random data (the last a partial batch):
 * losses and every parameter after each step. */
START_TEST(mlp_adam_steps_match) {
    const cu_steps s = {"mlp", 3, 32, 17, 10, 0.0f, 1.0f, 77, TOL, tu_max_rel_err};
    cu_models_match(mlp_build, tu_seed() ^ 0xA11CEull, &s);
}
END_TEST

/* The same random gradient, U(lo, hi), into parameter i of both sets. */
static void write_grads(syn_params *ps[2], int i, tu_rng *rng, float lo, float hi) {
    syn_tensor *gt;
    TU_OK(syn_params_get(ps[0], i, NULL, NULL, &gt));
    int64_t n = syn_tensor_numel(gt);
    float *g = cu_fmalloc(n);
    tu_fill(rng, g, n, lo, hi);
    for (int d = 0; d < 2; d++) {
        TU_OK(syn_params_get(ps[d], i, NULL, NULL, &gt));
        TU_OK(syn_tensor_write(gt, g, (size_t)n * sizeof(float)));
    }
    free(g);
}

/* Every optimizer, three steps from identical parameters and gradients, on
 * more tensors than one fused launch takes (30 > 24), one of several blocks'
 * chunks (130 x 129 > 16384 elements), and one frozen for the first step, so
 * that the tensors' step counts (Adam's bias corrections) differ. */
/* zero_grad clears every gradient of a set (on CUDA fused, MT_MAX tensors
 * to a launch): 70 tensors (three launches), one of several chunks, sizes
 * of one element; the values stay as they were. */
START_TEST(zero_grad_clears_every_tensor) {
    enum { NP = 70 };
    syn_params *ps;
    syn_init init = {SYN_INIT_UNIFORM, -1, 1, 0};
    TU_OK(syn_params_create(syn_cuda(0), tu_seed(), &ps));
    for (int i = 0; i < NP; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        syn_shape s = i == 5 ? syn_shape2(3 * 16384 + 5, 3) : syn_shape1(1 + (i * 37) % 101);
        TU_OK(syn_params_add(ps, name, s, &init, NULL));
    }
    for (int i = 0; i < NP; i++) {
        syn_tensor *g;
        TU_OK(syn_params_get(ps, i, NULL, NULL, &g));
        TU_OK(syn_tensor_fill(g, 3.0f));
    }
    float *before = NULL;
    int64_t nb;
    before = cu_read_param(ps, 5, false, &nb);
    TU_OK(syn_params_zero_grad(ps));
    for (int i = 0; i < NP; i++) {
        int64_t n;
        float *g = cu_read_param(ps, i, true, &n);
        for (int64_t j = 0; j < n; j++)
            if (g[j] != 0.0f) ck_abort_msg("tensor %d element %lld is %g after zero_grad", i, (long long)j, g[j]);
        free(g);
    }
    float *after = cu_read_param(ps, 5, false, &nb);
    ck_assert(memcmp(before, after, (size_t)nb * sizeof(float)) == 0);
    free(before);
    free(after);
    syn_params_free(ps);
}
END_TEST

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
    enum { NP = 30 };
    syn_shape shapes[NP] = {SH2(37, 29), SH1(1031), SH2(130, 129)};
    for (int i = 3; i < NP; i++) shapes[i] = syn_shape1(i);
    for (int k = 0; k < 6; k++) {
        syn_params *ps[2];
        syn_optim *os[2];
        syn_device devs[2] = {syn_cpu(), syn_cuda(0)};
        syn_init init = {SYN_INIT_UNIFORM, -1, 1, 0};
        for (int d = 0; d < 2; d++) {
            TU_OK(syn_params_create(devs[d], tu_seed() + (uint64_t)k, &ps[d]));
            for (int i = 0; i < NP; i++) {
                char name[16];
                snprintf(name, sizeof name, "p%d", i);
                TU_OK(syn_params_add(ps[d], name, shapes[i], &init, NULL));
            }
            TU_OK(syn_optim_create(ps[d], &cfgs[k], &os[d]));
        }
        tu_rng rng = tu_rng_make(100 + (uint64_t)k);
        for (int step = 0; step < 3; step++) {
            for (int d = 0; d < 2; d++) TU_OK(syn_params_set_trainable(ps[d], "p1", step > 0));
            for (int i = 0; i < NP; i++) write_grads(ps, i, &rng, -1, 1);
            TU_OK(syn_optim_step(os[0]));
            TU_OK(syn_optim_step(os[1]));
        }
        for (int i = 0; i < NP; i++) {
            int64_t n1, n2;
            float *a = cu_read_param(ps[1], i, false, &n1), *b = cu_read_param(ps[0], i, false, &n2);
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
/* Global-norm clipping, fused on CUDA (MT_MAX buffers to a launch): 30
 * gradients (two launches), one of several chunks (20,000 > 16,384), single
 * elements, and one frozen (its gradient neither counted nor scaled); then
 * a limit above the norm leaves every gradient bit-identical. */
START_TEST(clip_grad_norm_matches) {
    enum { NT = 30 };
    syn_params *ps[2];
    syn_device devs[2] = {syn_cpu(), syn_cuda(0)};
    const int64_t sizes[5] = {65 * 33, 300, 20000, 1, 7};
    float norms[2];
    for (int d = 0; d < 2; d++) {
        TU_OK(syn_params_create(devs[d], 5, &ps[d]));
        for (int i = 0; i < NT; i++) {
            char name[16];
            snprintf(name, sizeof name, "t%d", i);
            TU_OK(syn_params_add(ps[d], name, syn_shape1(sizes[i % 5]), NULL, NULL));
        }
        TU_OK(syn_params_set_trainable(ps[d], "t7", false));
    }
    tu_rng rng = tu_rng_make(9);
    for (int i = 0; i < NT; i++) write_grads(ps, i, &rng, -2, 2);
    float *frozen = cu_read_param(ps[1], 7, true, &(int64_t){0});
    for (int d = 0; d < 2; d++) TU_OK(syn_params_clip_grad_norm(ps[d], 1.5f, &norms[d]));
    CHECK_CLOSE("clip norm", &norms[1], &norms[0], 1, TOL);
    for (int i = 0; i < NT; i++) {
        int64_t n1, n2;
        float *a = cu_read_param(ps[1], i, true, &n1), *b = cu_read_param(ps[0], i, true, &n2);
        CHECK_CLOSE("clipped gradient", a, b, n1, TOL);
        if (i == 7) ck_assert_msg(memcmp(a, frozen, (size_t)n1 * sizeof(float)) == 0, "the frozen gradient changed");
        free(a);
        free(b);
    }
    free(frozen);
    /* the gradients now have norm 1.5: a limit of 2 keeps them as they are */
    float *before = cu_read_param(ps[1], 2, true, &(int64_t){0}), norm2;
    TU_OK(syn_params_clip_grad_norm(ps[1], 2.0f, &norm2));
    ck_assert_msg(fabsf(norm2 - 1.5f) < 1e-3f, "norm after clipping: %g, want 1.5", norm2);
    int64_t n;
    float *after = cu_read_param(ps[1], 2, true, &n);
    ck_assert_msg(memcmp(before, after, (size_t)n * sizeof(float)) == 0, "clipping below the limit changed a gradient");
    free(before);
    free(after);
    for (int d = 0; d < 2; d++) syn_params_free(ps[d]);
}
END_TEST

/* Dropout draws the same Philox numbers on both devices: identical masks,
 * bit for bit, forward and backward, across two forwards. */
START_TEST(dropout_mask_identical) {
    const opc_case c = {"dropout 0.5", K_DROPOUT, 1, {SH2(61, 67)}, .f = 0.5f};
    cu_rig cpu, gpu;
    rig_build(&cpu, &c, syn_cpu(), tu_seed(), NULL, CU_DIRECT);
    rig_build(&gpu, &c, syn_cuda(0), tu_seed(), NULL, CU_DIRECT);
    for (int round = 0; round < 2; round++) {
        cu_rig_run(&cpu);
        cu_rig_run(&gpu);
        int64_t n, zeros = 0;
        float *a = cu_rig_same_bits(&gpu, &cpu, "dropout", round, &n);
        for (int64_t i = 0; i < n; i++) zeros += a[i] == 0.0f;
        ck_assert_msg(zeros > n / 3 && zeros < 2 * n / 3, "dropout 0.5 zeroed %lld of %lld", (long long)zeros,
                      (long long)n);
        free(a);
    }
    cu_rig_free(&gpu);
    cu_rig_free(&cpu);
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

/* Host->device copies return with the DMA queued from a pinned staging ring:
 * the caller's buffer may change right after each write, more writes than
 * the ring has buffers may be in flight, a buffer grows when a bigger copy
 * comes, and a copy above the staging limit (64 MiB) goes directly. */
START_TEST(staged_writes_survive_reuse) {
    enum { N = 9 };
    const int64_t sizes[N] = {1, 1000, 7, 1 << 16, 3 << 18, 5, 1 << 20, 333, (int64_t)(17 << 20)};
    syn_tensor *t[N];
    float *h = cu_fmalloc(sizes[N - 1]);
    for (int k = 0; k < N; k++) {
        for (int64_t i = 0; i < sizes[k]; i++) h[i] = (float)(k * 1000003 + i % 65521);
        TU_OK(syn_tensor_from_host(syn_cuda(0), SYN_F32, syn_shape1(sizes[k]), h, &t[k]));
        for (int64_t i = 0; i < sizes[k]; i++) h[i] = -1.0f; /* at once: the copy must not see this */
    }
    for (int k = 0; k < N; k++) {
        TU_OK(syn_tensor_read(t[k], h, (size_t)sizes[k] * sizeof(float)));
        for (int64_t i = 0; i < sizes[k]; i++)
            if (h[i] != (float)(k * 1000003 + i % 65521))
                ck_abort_msg("tensor %d (%lld floats): element %lld is %g, want %g", k, (long long)sizes[k],
                             (long long)i, h[i], (float)(k * 1000003 + i % 65521));
        syn_tensor_free(t[k]);
    }
    free(h);
}
END_TEST

/* Kernel timing per op from CUDA events, read when each pass ends. */
START_TEST(profile_counts_kernels) { tu_check_profile(syn_cuda(0)); }
END_TEST

/* The device timer records CUDA events: it measures the queued work, and
 * misuse is an error. */
START_TEST(device_timer_events) {
    syn_device_timer *clk = NULL;
    double ms = -1;
    TU_OK(syn_device_timer_create(syn_cuda(0), &clk));
    ck_assert_int_eq(syn_device_timer_stop(clk, &ms), SYN_ERR_ARG);
    syn_tensor *t;
    TU_OK(syn_tensor_create(syn_cuda(0), SYN_F32, syn_shape1(1 << 24), &t));
    TU_OK(syn_device_timer_start(clk));
    for (int i = 0; i < 20; i++) TU_OK(syn_tensor_fill(t, (float)i));
    TU_OK(syn_device_timer_stop(clk, &ms));
    ck_assert_msg(ms > 0.0 && ms < 60000.0, "20 fills of 64 MiB took %g ms", ms);
    syn_tensor_free(t);
    syn_device_timer_free(clk);
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
    /* labels already on the device carry no host-checked range: the kernel's
     * own check (a stream wait) still catches the bad one */
    syn_tensor *dy;
    TU_OK(syn_tensor_from_host(syn_cuda(0), SYN_I32, syn_shape1(4), bad, &dy));
    TU_OK(syn_graph_feed_tensor(g, y, dy));
    ck_assert_int_eq(syn_graph_forward(g), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "label 7 at row 2") != NULL, "message: %s", syn_last_error());
    syn_tensor_free(dy);
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

/* Input gradients (syn_graph_input_grad) through a CNN and a 2-layer LSTM
 * with its initial state (tu_igrad): loss, dL/dx and dL/dstate0 on CUDA
 * against the CPU. */
static void input_grads_case(int kind) {
    syn_params *p[2];
    syn_graph *g[2];
    tu_igrad n[2];
    const syn_device dev[2] = {syn_cpu(), syn_cuda(0)};
    float x[72], gx[2][72], gs[2][32], loss[2];
    tu_rng r = tu_rng_make(0x16AD + (uint64_t)kind);
    tu_fill(&r, x, 72, -1.0f, 1.0f);
    for (int k = 0; k < 2; k++) {
        TU_OK(syn_params_create(dev[k], 77, &p[k]));
        TU_OK(syn_graph_create(p[k], &g[k]));
        tu_igrad_build(g[k], kind, true, &n[k]);
        TU_OK(syn_graph_compile(g[k], dev[k], NULL));
        ck_assert_int_le(syn_shape_numel(&n[k].xs), 72);
        tu_igrad_feed(g[k], &n[k], x);
        TU_OK(syn_graph_forward(g[k]));
        TU_OK(syn_graph_backward(g[k], n[k].loss));
        TU_OK(syn_graph_read_scalar(g[k], n[k].loss, &loss[k]));
        TU_OK(syn_graph_read_grad(g[k], n[k].x, gx[k], (size_t)syn_shape_numel(&n[k].xs) * sizeof(float)));
        if (n[k].state) TU_OK(syn_graph_read_grad(g[k], n[k].state, gs[k], sizeof gs[k]));
    }
    const char *what = kind ? "lstm" : "cnn";
    ck_assert_msg(fabs((double)loss[1] - loss[0]) <= TOL * fabs((double)loss[0]), "%s: loss %.9g on cuda, %.9g on cpu",
                  what, loss[1], loss[0]);
    CHECK_CLOSE(what, gx[1], gx[0], syn_shape_numel(&n[0].xs), TOL);
    if (n[0].state) CHECK_CLOSE("lstm state0", gs[1], gs[0], 32, TOL);
    for (int k = 0; k < 2; k++) {
        syn_graph_free(g[k]);
        syn_params_free(p[k]);
    }
}

START_TEST(input_grads_match) {
    input_grads_case(0);
    input_grads_case(1);
}
END_TEST

/* ---- data parallelism across devices ---------------------------------------------------- */

/* Two members (threads): member 0 on cuda:0, member 1 on the CPU, each with
 * its half of every batch; the gradients meet on the host. Both must end
 * near one CPU process's weights (the members' kernels round differently, so
 * not bit for bit). */
typedef struct {
    syn_device dev;
    syn_comm *comm;
    const syn_dataset *train;
    syn_status s;
    char err[256];
    float w[5 * 12 + 12 + 12 * 3 + 3];
} dp_member;

static syn_status dp_fit(syn_device dev, syn_comm *comm, const syn_dataset *train, int64_t cap, float *w) {
    syn_params *p = NULL;
    syn_graph *g = NULL;
    syn_optim *o = NULL;
    syn_model m = {NULL, NULL, NULL, NULL, NULL};
    syn_status s = syn_params_create(dev, 9, &p);
    if (s == SYN_OK) s = syn_graph_create(p, &g);
    if (s == SYN_OK) {
        m.graph = g;
        m.x = syn_input(g, "x", SYN_F32, syn_shape2(cap, 5));
        m.y = syn_input(g, "y", SYN_I32, syn_shape1(cap));
        const int64_t hidden[1] = {12};
        m.logits = syn_mlp(g, m.x, hidden, 1, 3, SYN_ACT_TANH, 0.0f);
        m.loss = syn_cross_entropy(g, m.logits, m.y);
        syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_SGD);
        oc.lr = 0.1f;
        oc.momentum = 0.9f;
        s = syn_graph_status(g);
        if (s == SYN_OK) s = syn_graph_keep(g, m.logits);
        if (s == SYN_OK) s = syn_graph_compile(g, dev, NULL);
        if (s == SYN_OK) s = syn_optim_create(p, &oc, &o);
    }
    syn_fit_config fc = {.epochs = 3, .batch_size = 24, .seed = 4, .progress = SYN_PROGRESS_OFF, .comm = comm};
    syn_fit_result res;
    s = syn_fit(&m, o, train, NULL, &fc, &res); /* also after a failed setup: the other member learns it */
    int64_t off = 0;
    for (int i = 0; s == SYN_OK && i < syn_params_count(p); i++) {
        syn_tensor *v;
        s = syn_params_get(p, i, NULL, &v, NULL);
        if (s == SYN_OK) s = syn_tensor_read(v, w + off, syn_tensor_bytes(v));
        off += syn_tensor_numel(v);
    }
    syn_optim_free(o);
    syn_graph_free(g);
    syn_params_free(p);
    return s;
}

static void *dp_run(void *arg) {
    dp_member *m = arg;
    m->s = dp_fit(m->dev, m->comm, m->train, 12, m->w);
    snprintf(m->err, sizeof m->err, "%s", m->s == SYN_OK ? "" : syn_last_error());
    return NULL;
}

START_TEST(data_parallel_cuda_and_cpu) {
    syn_dataset *train = tu_dataset_3class(150, 61); /* 7 batches: 6 of 24 rows, the last 6 */
    dp_member one = {syn_cpu(), NULL, train, SYN_OK, "", {0}};
    TU_OK(dp_fit(syn_cpu(), NULL, train, 24, one.w));
    syn_comm *c[2];
    TU_OK(syn_comm_threads(2, c));
    dp_member m[2] = {{syn_cuda(0), c[0], train, SYN_OK, "", {0}}, {syn_cpu(), c[1], train, SYN_OK, "", {0}}};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, dp_run, &m[1]), 0);
    dp_run(&m[0]);
    pthread_join(th, NULL);
    syn_comm_free(c[0]);
    syn_comm_free(c[1]);
    const int64_t n = (int64_t)(sizeof one.w / sizeof *one.w);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(m[k].s == SYN_OK, "member %d: %s", k, m[k].err);
        CHECK_CLOSE(k ? "cpu member's weights" : "cuda member's weights", m[k].w, one.w, n, 1e-4);
    }
    syn_dataset_free(train);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------- */

int main(void) {
    n_cases = opc_select(OPC_CUDA, cases);
    n_bcast = opc_bcast_count(OPC_CUDA);
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("ops");
    CU_ADD_LOOP_TEST(tc, op_matches_cpu, n_cases + n_bcast);
    suite_add_tcase(s, tc);
    tc = tcase_create("ops_via"); /* its own case: gpu-check's racecheck runs "ops" alone */
    CU_ADD_LOOP_TEST(tc, op_matches_cpu_via_intermediate, 2 * (n_cases + n_bcast));
    suite_add_tcase(s, tc);
    tc = tcase_create("device");
    CU_ADD_TEST(tc, copies_and_fills);
    CU_ADD_TEST(tc, staged_writes_survive_reuse);
    CU_ADD_TEST(tc, device_timer_events);
    CU_ADD_TEST(tc, profile_counts_kernels);
    CU_ADD_TEST(tc, allocator_reuses_blocks);
    CU_ADD_TEST(tc, oom_is_an_error);
    CU_ADD_TEST(tc, errors_are_reported);
    CU_ADD_TEST(tc, dropout_mask_identical);
    CU_ADD_TEST(tc, optimizers_match);
    CU_ADD_TEST(tc, zero_grad_clears_every_tensor);
    CU_ADD_TEST(tc, clip_grad_norm_matches);
    CU_ADD_TEST(tc, mlp_adam_steps_match);
    CU_ADD_TEST(tc, input_grads_match);
    CU_ADD_TEST(tc, data_parallel_cuda_and_cpu);
    suite_add_tcase(s, tc);
    return cu_run(s);
}
