/* Training steps replayed from captured CUDA graphs
 * (syn_graph_forward_backward with syn_compile_opts.cuda_graphs) against the
 * same model stepped without them on the same GPU: losses and every
 * parameter after each step, new data fed at every step, a partial batch
 * between full ones, syn_fit and the char-LSTM's loop, labels within and
 * outside the classes, a capture that must fail (labels fed from the device
 * are checked there, which waits for the GPU), dropout, and a workspace
 * replaced under a captured graph. */
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "cudautil.h"

/* Kernels and their order are the same with and without graphs; this only
 * allows for atomics summing in another order on a real GPU (the emulator
 * agrees to the bit). */
#define TOL 1e-5

typedef void (*body_fn)(cu_model *m, int64_t batch);

static void mlp_body(cu_model *m, int64_t batch) {
    int64_t hidden[1] = {64};
    m->x = syn_input(m->g, "x", SYN_F32, syn_shape2(batch, 784));
    m->y = syn_input(m->g, "y", SYN_I32, syn_shape1(batch));
    m->loss = syn_cross_entropy(m->g, syn_mlp(m->g, m->x, hidden, 1, 10, SYN_ACT_TANH, 0.0f), m->y);
}

/* conv - batch norm - relu (fused at compile) - max pool - linear: cuDNN,
 * the workspace, running statistics */
static void cnn_body(cu_model *m, int64_t batch) {
    m->x = syn_input(m->g, "x", SYN_F32, syn_shape4(batch, 3, 12, 12));
    m->y = syn_input(m->g, "y", SYN_I32, syn_shape1(batch));
    syn_conv_opts co = {.no_bias = true, .conv = {.pad_h = 1, .pad_w = 1}};
    syn_node *h = syn_relu(m->g, syn_batch_norm(m->g, syn_conv2d(m->g, m->x, 8, 3, 3, "conv", &co), "bn"));
    h = syn_max_pool2d(m->g, h, 2, 2, 0, 0, 0, 0);
    m->loss = syn_cross_entropy(m->g, syn_linear(m->g, syn_flatten(m->g, h), 10, "fc", NULL), m->y);
}

static void dropout_body(cu_model *m, int64_t batch) {
    m->x = syn_input(m->g, "x", SYN_F32, syn_shape2(batch, 32));
    m->y = syn_input(m->g, "y", SYN_I32, syn_shape1(batch));
    syn_node *h = syn_dropout(m->g, syn_tanh(m->g, syn_linear(m->g, m->x, 16, "fc1", NULL)), 0.25f);
    m->loss = syn_cross_entropy(m->g, syn_linear(m->g, h, 10, "fc2", NULL), m->y);
}

/* Adam with eps 1e-3, as cudautil's models: at 1e-8 a first step moves a
 * weight by about lr whatever the size of its gradient, so a rounding
 * difference in a near-zero gradient (cuBLAS or cuDNN choosing another
 * algorithm in one of the two runs on a GPU) would move it by lr. */
static syn_optim_config adam(void) {
    syn_optim_config cfg = syn_optim_defaults(SYN_OPTIM_ADAM);
    cfg.eps = 1e-3f;
    return cfg;
}

/* The model on the GPU, parameters from seed, compiled with or without graphs; Adam. */
static void build(cu_model *m, body_fn body, uint64_t seed, int64_t batch, bool graphs) {
    cu_model_open(m, syn_cuda(0), seed);
    body(m, batch);
    ck_assert_msg(m->loss != NULL, "model build: %s", syn_last_error());
    syn_compile_opts o = {.cuda_graphs = graphs};
    TU_OK(syn_graph_compile(m->g, syn_cuda(0), &o));
    syn_optim_config cfg = adam();
    TU_OK(syn_optim_create(m->p, &cfg, &m->opt));
}

/* One step on rows of x and y, labels fed from the host or from a device tensor. */
static syn_status step(cu_model *m, const float *x, const int32_t *y, int64_t rows, bool labels_on_device,
                       float *loss) {
    syn_shape xs = syn_node_shape(m->x);
    xs.dim[0] = rows;
    SYN_TRY(syn_params_zero_grad(m->p));
    SYN_TRY(syn_graph_feed(m->g, m->x, x, xs));
    if (labels_on_device) {
        syn_tensor *t = NULL;
        SYN_TRY(syn_tensor_from_host(syn_cuda(0), SYN_I32, syn_shape1(rows), y, &t));
        syn_status s = syn_graph_feed_tensor(m->g, m->y, t);
        syn_tensor_free(t);
        SYN_TRY(s);
    } else {
        SYN_TRY(syn_graph_feed(m->g, m->y, y, syn_shape1(rows)));
    }
    SYN_TRY(syn_graph_forward_backward(m->g, m->loss));
    SYN_TRY(syn_optim_step(m->opt));
    return syn_graph_read_scalar(m->g, m->loss, loss);
}

typedef struct {
    int64_t rows;      /* this step's batch */
    int32_t classes;   /* labels drawn from [0, classes) */
    bool on_device;    /* labels fed from a device tensor */
} step_plan;

/* Steps `plan` on an eager model and a graph model from one seed: same losses
 * and parameters after every step. Returns the graph model's replays. */
static int64_t run_plan(body_fn body, int64_t batch, const step_plan *plan, int n, uint64_t salt, char *why,
                        size_t why_size) {
    cu_model eager, graphs;
    uint64_t seed = tu_seed() ^ salt;
    build(&eager, body, seed, batch, false);
    build(&graphs, body, seed, batch, true);
    syn_shape xs = syn_node_shape(eager.x);
    int64_t sample = syn_shape_numel(&xs) / xs.dim[0];
    float *x = cu_fmalloc(batch * sample);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    ck_assert_ptr_nonnull(y);
    tu_rng rng = tu_rng_make(salt);
    char what[96];
    for (int k = 0; k < n; k++) {
        tu_fill(&rng, x, plan[k].rows * sample, -1.0f, 1.0f);
        for (int64_t i = 0; i < plan[k].rows; i++) y[i] = (int32_t)(tu_next(&rng) % (uint64_t)plan[k].classes);
        float le, lg;
        TU_OK(step(&eager, x, y, plan[k].rows, plan[k].on_device, &le));
        TU_OK(step(&graphs, x, y, plan[k].rows, plan[k].on_device, &lg));
        snprintf(what, sizeof what, "graphs (as cuda) vs eager (as cpu), step %d: loss", k + 1);
        cu_check_close(what, &lg, &le, 1, TOL, tu_max_rel_err);
        snprintf(what, sizeof what, "graphs (as cuda) vs eager (as cpu), step %d", k + 1);
        cu_compare_params(graphs.p, eager.p, false, what, TOL, tu_max_rel_err);
    }
    int64_t replays = syn_graph_replays(graphs.g, why, why_size);
    ck_assert_int_eq(syn_graph_replays(eager.g, NULL, 0), 0);
    free(x);
    free(y);
    cu_model_free(&graphs);
    cu_model_free(&eager);
    return replays;
}

/* Step 1 warms up, step 2 is captured and launched, 3-4 replay; the partial
 * batch of step 5 runs as usual; 6-8 replay the full-batch graph again. */
static const step_plan usual[] = {{32, 10, false}, {32, 10, false}, {32, 10, false}, {32, 10, false},
                                  {17, 10, false}, {32, 10, false}, {32, 10, false}, {32, 10, false}};

START_TEST(mlp_replays_match_eager) {
    char why[256];
    int64_t replays = run_plan(mlp_body, 32, usual, 8, 0x6A4F1ull, why, sizeof why);
    ck_assert_msg(replays == 6, "replays: %lld, want 6 (%s)", (long long)replays, why);
    ck_assert_msg(why[0] == '\0', "why: %s", why);
}
END_TEST

/* Five batch shapes, three steps each: the first four are captured (warm-up,
 * capture, replay); the fifth finds the four graphs kept and runs as usual. */
START_TEST(at_most_four_graphs) {
    step_plan plan[15];
    for (int k = 0; k < 15; k++) plan[k] = (step_plan){32 - k / 3, 10, false};
    char why[256];
    int64_t replays = run_plan(mlp_body, 32, plan, 15, 0x4A4ull, why, sizeof why);
    ck_assert_msg(replays == 8, "replays: %lld, want 8 (%s)", (long long)replays, why);
}
END_TEST

START_TEST(cnn_replays_match_eager) {
    char why[256];
    int64_t replays = run_plan(cnn_body, 16, (const step_plan[]){{16, 10, false}, {16, 10, false}, {16, 10, false},
                                                                {9, 10, false}, {9, 10, false}, {9, 10, false},
                                                                {16, 10, false}},
                               7, 0xC4F2ull, why, sizeof why);
    /* 2, 3; the partial batch warms at 4, is captured at 5, replays at 6; 7 replays the first */
    ck_assert_msg(replays == 5, "replays: %lld, want 5 (%s)", (long long)replays, why);
}
END_TEST

/* Captured with labels in [0, 5): cross-entropy trusted them and skipped its
 * device check, which holds for any labels within the 10 classes, so labels
 * up to 9 replay too. */
START_TEST(labels_within_classes_keep_replaying) {
    char why[256];
    const step_plan plan[] = {{32, 5, false}, {32, 5, false}, {32, 10, false}, {32, 10, false}, {32, 5, false}};
    int64_t replays = run_plan(mlp_body, 32, plan, 5, 0x1AB5ull, why, sizeof why);
    ck_assert_msg(replays == 4, "replays: %lld, want 4 (%s)", (long long)replays, why);
}
END_TEST

/* A label outside the classes after a capture runs as usual, so it is still
 * the kernel's clear error; the graph replays again afterwards. A bad label
 * in the step that would be captured does not stop later captures. */
START_TEST(bad_label_after_capture_is_an_error) {
    cu_model m;
    build(&m, mlp_body, tu_seed() ^ 0xBADull, 8, true);
    float *x = cu_fmalloc(8 * 784);
    int32_t y[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    tu_rng rng = tu_rng_make(0xBAD);
    tu_fill(&rng, x, 8 * 784, -1.0f, 1.0f);
    float loss;
    for (int k = 0; k < 3; k++) TU_OK(step(&m, x, y, 8, false, &loss));
    ck_assert_int_eq(syn_graph_replays(m.g, NULL, 0), 2);
    y[5] = 12;
    ck_assert_int_eq(step(&m, x, y, 8, false, &loss), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "label 12") != NULL, "message: %s", syn_last_error());
    syn_clear_error();
    y[5] = 5;
    TU_OK(step(&m, x, y, 8, false, &loss));
    ck_assert_int_eq(syn_graph_replays(m.g, NULL, 0), 3);
    cu_model_free(&m);
    /* a bad label in the step that would be captured: the capture meets the
     * kernel's wait for its check, the step gives the label's error, and a
     * later good step still captures */
    build(&m, mlp_body, tu_seed() ^ 0xBADull, 8, true);
    TU_OK(step(&m, x, y, 8, false, &loss));
    y[2] = -1;
    ck_assert_int_eq(step(&m, x, y, 8, false, &loss), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "label -1") != NULL, "message: %s", syn_last_error());
    syn_clear_error();
    y[2] = 2;
    for (int k = 0; k < 2; k++) TU_OK(step(&m, x, y, 8, false, &loss));
    char why[256];
    ck_assert_int_eq(syn_graph_replays(m.g, why, sizeof why), 2);
    ck_assert_msg(why[0] == '\0', "why: %s", why);
    free(x);
    cu_model_free(&m);
}
END_TEST

/* Labels fed from a device tensor have no known range: cross-entropy checks
 * them on the device and waits for the verdict, which a graph cannot hold.
 * The capture fails, the step runs as usual, and the graph stops trying. */
START_TEST(failed_capture_runs_as_usual) {
    char why[256];
    const step_plan plan[] = {{32, 10, true}, {32, 10, true}, {32, 10, true}, {32, 10, false}};
    int64_t replays = run_plan(mlp_body, 32, plan, 4, 0xFA11ull, why, sizeof why);
    ck_assert_int_eq(replays, 0);
    ck_assert_msg(strstr(why, "capture failed") != NULL, "why: %s", why);
}
END_TEST

START_TEST(dropout_is_not_captured) {
    char why[256];
    const step_plan plan[] = {{16, 10, false}, {16, 10, false}, {16, 10, false}};
    /* both models draw the same masks: same seed (0), same counter */
    int64_t replays = run_plan(dropout_body, 16, plan, 3, 0xD809ull, why, sizeof why);
    ck_assert_int_eq(replays, 0);
    ck_assert_msg(strstr(why, "dropout") != NULL, "why: %s", why);
}
END_TEST

/* A captured graph holds the backend's workspace. A bigger request in
 * between (another graph's convolution) replaces it, and the old block goes
 * back to the allocator (with SYN_CUDA_NO_CACHE=1, to cudaFree). The next
 * step must capture again rather than replay into freed memory: the emulator
 * under ASan reports such a replay. */
START_TEST(workspace_replaced_recaptures) {
    cu_model eager, graphs;
    uint64_t seed = tu_seed() ^ 0x3A9Eull;
    build(&eager, cnn_body, seed, 16, false);
    build(&graphs, cnn_body, seed, 16, true);
    syn_backend *be = NULL;
    TU_OK(syn__backend_get(syn_cuda(0), &be));
    float x[16 * 3 * 12 * 12];
    int32_t y[16];
    tu_rng rng = tu_rng_make(0x3A9E);
    char what[64];
    for (int k = 0; k < 6; k++) {
        if (k == 3) { /* after a capture (step 2) and a replay (3) */
            void *ws = NULL;
            TU_OK(be->workspace(be, (size_t)64 << 20, &ws));
        }
        tu_fill(&rng, x, 16 * 3 * 12 * 12, -1.0f, 1.0f);
        for (int i = 0; i < 16; i++) y[i] = (int32_t)(tu_next(&rng) % 10);
        float le, lg;
        TU_OK(step(&eager, x, y, 16, false, &le));
        TU_OK(step(&graphs, x, y, 16, false, &lg));
        snprintf(what, sizeof what, "graphs (as cuda) vs eager (as cpu), step %d: loss", k + 1);
        cu_check_close(what, &lg, &le, 1, TOL, tu_max_rel_err);
        snprintf(what, sizeof what, "graphs (as cuda) vs eager (as cpu), step %d", k + 1);
        cu_compare_params(graphs.p, eager.p, false, what, TOL, tu_max_rel_err);
    }
    ck_assert_int_eq(syn_graph_replays(graphs.g, NULL, 0), 5); /* 2, 3, 4 (captured again), 5, 6 */
    cu_model_free(&graphs);
    cu_model_free(&eager);
}
END_TEST

/* syn_fit (shuffled batches fed through the staging ring, the worker thread
 * gathering the next batch, figures summed on the device, a partial last
 * batch, evaluation on a test set between epochs) with and without graphs:
 * the same losses, accuracies and parameters. Per epoch of 7 full batches and
 * one of 4 rows: the first full batch warms up, the second is captured; the
 * partial batch warms up in epoch 1, is captured in epoch 2, replays in 3. */
static syn_fit_result fit_with(bool graphs, const syn_dataset *train, const syn_dataset *test, syn_params **ps,
                               int64_t *replays) {
    enum { B = 8, D = 20, C = 4 };
    syn_graph *g;
    syn_optim *opt;
    TU_OK(syn_params_create(syn_cuda(0), tu_seed() ^ 0xF17ull, ps));
    TU_OK(syn_graph_create(*ps, &g));
    syn_model m = {g, syn_input(g, "x", SYN_F32, syn_shape2(B, D)), syn_input(g, "y", SYN_I32, syn_shape1(B)), NULL,
                   NULL};
    const int64_t hidden[1] = {32};
    m.logits = syn_mlp(g, m.x, hidden, 1, C, SYN_ACT_TANH, 0.0f);
    m.loss = syn_cross_entropy(g, m.logits, m.y);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_keep(g, m.logits));
    TU_OK(syn_graph_compile(g, syn_cuda(0), &(syn_compile_opts){.cuda_graphs = graphs}));
    syn_optim_config oc = adam();
    TU_OK(syn_optim_create(*ps, &oc, &opt));
    syn_fit_config fc;
    memset(&fc, 0, sizeof fc);
    fc.epochs = 3;
    fc.batch_size = B;
    fc.seed = 9;
    fc.progress = SYN_PROGRESS_OFF;
    fc.prefetch = SYN_PREFETCH_ON;
    syn_fit_result res;
    TU_OK(syn_fit(&m, opt, train, test, &fc, &res));
    *replays = syn_graph_replays(g, NULL, 0);
    syn_optim_free(opt);
    syn_graph_free(g);
    return res;
}

START_TEST(fit_replays_match_eager) {
    enum { N = 60, NT = 24, D = 20 };
    float *x = cu_fmalloc((N + NT) * D);
    int32_t y[N + NT];
    tu_rng r = tu_rng_make(0xF17);
    tu_fill(&r, x, (N + NT) * D, -1.0f, 1.0f);
    for (int i = 0; i < N + NT; i++) y[i] = (x[i * D] > 0.0f) + 2 * (x[i * D + 1] > 0.0f);
    syn_dataset train = {.n = N, .dim = D, .sample_shape = syn_shape1(D), .x = x, .labels = y, .num_classes = 4};
    syn_dataset test = {.n = NT, .dim = D, .sample_shape = syn_shape1(D), .x = x + N * D, .labels = y + N,
                        .num_classes = 4};
    syn_params *pe, *pg;
    int64_t re, rg;
    syn_fit_result e = fit_with(false, &train, &test, &pe, &re), gr = fit_with(true, &train, &test, &pg, &rg);
    const float got[4] = {gr.train_loss, gr.train_accuracy, gr.test_loss, gr.test_accuracy};
    const float want[4] = {e.train_loss, e.train_accuracy, e.test_loss, e.test_accuracy};
    cu_check_close("syn_fit graphs (as cuda) vs eager (as cpu): losses and accuracies", got, want, 4, TOL,
                   tu_max_rel_err);
    cu_compare_params(pg, pe, false, "syn_fit graphs vs eager", TOL, tu_max_rel_err);
    ck_assert_int_eq(re, 0);
    ck_assert_int_eq(rg, 6 + 8 + 8);
    syn_params_free(pe);
    syn_params_free(pg);
    free(x);
}
END_TEST

/* SYN_CUDA_GRAPHS=1 or 0 at compile overrides the option either way. */
START_TEST(environment_overrides_the_option) {
    float *x = cu_fmalloc(8 * 784), loss;
    int32_t y[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    tu_rng rng = tu_rng_make(0xE7);
    tu_fill(&rng, x, 8 * 784, -1.0f, 1.0f);
    char why[256];
    for (int on = 0; on < 2; on++) {
        cu_model m;
        setenv("SYN_CUDA_GRAPHS", on ? "1" : "0", 1);
        build(&m, mlp_body, tu_seed() ^ 0xE7ull, 8, !on);
        unsetenv("SYN_CUDA_GRAPHS");
        for (int k = 0; k < 3; k++) TU_OK(step(&m, x, y, 8, false, &loss));
        ck_assert_int_eq(syn_graph_replays(m.g, why, sizeof why), on ? 2 : 0);
        ck_assert_msg(on ? why[0] == '\0' : strstr(why, "off") != NULL, "why: %s", why);
        cu_model_free(&m);
    }
    free(x);
}
END_TEST

/* The character model's training loop (syn_charlm_train: the state carried
 * between windows by a device copy, reset from the host when the streams
 * wrap, clipping and Adam between replays): the same bits per byte and
 * parameters with and without graphs, and every step after the first replayed. */
START_TEST(charlm_replays_match_eager) {
    static const char line[] = "the quick brown fox jumps over the lazy dog; ";
    size_t n = 12 * (sizeof line - 1); /* 10 windows of the streams: step 11 starts them over */
    uint8_t *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++) text[i] = (uint8_t)line[i % (sizeof line - 1)];
    syn_charlm_config mc = {SYN_RNN_LSTM, 8, 16, 2, 0.0f};
    syn_charlm *m[2];
    syn_charlm_result res[2];
    /* The embedding's gradient adds rows with atomics, in an order a GPU
     * does not fix, and the trainer's Adam has eps 1e-8 (see adam()): the
     * deterministic kernels make the two runs comparable. */
    syn_backend *be = NULL;
    TU_OK(syn__backend_get(syn_cuda(0), &be));
#ifdef SYN_HAVE_CUDA /* (without it the suite skips every test) */
    syn__cuda_set_deterministic(be, true);
#endif
    for (int k = 0; k < 2; k++) {
        TU_OK(syn_charlm_create(&mc, syn_cuda(0), tu_seed() ^ 0xC4A7ull, &m[k]));
        syn_charlm_train_config tc = {4, 12, 12, 1e-2f, 5.0f, 6, 0, 1, NULL, k == 1, NULL};
        size_t nt = n - n / 10;
        TU_OK(syn_charlm_train(m[k], text, nt, text + nt, n - nt, &tc, &res[k]));
    }
    cu_check_close("charlm graphs (as cuda) vs eager (as cpu): train bits per byte", &res[1].train_bpb,
                   &res[0].train_bpb, 1, TOL, tu_max_rel_err);
    cu_check_close("charlm graphs (as cuda) vs eager (as cpu): validation bits per byte", &res[1].val_bpb,
                   &res[0].val_bpb, 1, TOL, tu_max_rel_err);
    cu_compare_params(syn_charlm_params(m[1]), syn_charlm_params(m[0]), false, "charlm graphs vs eager", TOL,
                      tu_max_rel_err);
    ck_assert_msg(res[1].cuda_graph_replays == 11, "replays %lld, want 11 (%s)",
                  (long long)res[1].cuda_graph_replays, res[1].cuda_graphs_off);
    ck_assert_int_eq(res[0].cuda_graph_replays, 0);
#ifdef SYN_HAVE_CUDA
    syn__cuda_set_deterministic(be, getenv("SYN_DETERMINISTIC") && strcmp(getenv("SYN_DETERMINISTIC"), "1") == 0);
#endif
    syn_charlm_free(m[0]);
    syn_charlm_free(m[1]);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cuda_graphs");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 120);
    CU_ADD_TEST(tc, mlp_replays_match_eager);
    CU_ADD_TEST(tc, cnn_replays_match_eager);
    CU_ADD_TEST(tc, at_most_four_graphs);
    CU_ADD_TEST(tc, labels_within_classes_keep_replaying);
    CU_ADD_TEST(tc, bad_label_after_capture_is_an_error);
    CU_ADD_TEST(tc, failed_capture_runs_as_usual);
    CU_ADD_TEST(tc, dropout_is_not_captured);
    CU_ADD_TEST(tc, workspace_replaced_recaptures);
    CU_ADD_TEST(tc, charlm_replays_match_eager);
    CU_ADD_TEST(tc, environment_overrides_the_option);
    CU_ADD_TEST(tc, fit_replays_match_eager);
    suite_add_tcase(s, tc);
    return cu_run(s);
}
