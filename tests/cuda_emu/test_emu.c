/* The CUDA emulator's own suite (built with SYN_CUDA_EMU only): what the
 * CUDA suites rely on it for. Barriers and shuffles exchange the right values,
 * thread and block indices cover 3-D launches, grid-stride kernels run every
 * block, atomics count every thread, bad launch configurations and memory
 * beyond the device's size are errors, fresh allocations hold NaN, queued work
 * runs at synchronisation points, Synapse's backend handles a sticky fault,
 * and misuse
 * that hangs or is undefined on a GPU stops the process with a message. */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime.h>
#include "testutil.h"

cudaError_t emu_sums(const float *x, double *out, int blocks, int threads, int per);
cudaError_t emu_ids(uint32_t *out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz);
cudaError_t emu_fill(float *x, int64_t n, float v, unsigned blocks, unsigned threads);
cudaError_t emu_count(unsigned long long *c, unsigned blocks, unsigned threads);
cudaError_t emu_order(int *stamp, int *next, unsigned blocks, unsigned threads);
cudaError_t emu_fresh_shared(float *out, unsigned blocks);
cudaError_t emu_split_barrier(float *x);
cudaError_t emu_exited_lanes(float *x);
cudaError_t emu_late_sync(float *x);

static void *dev_alloc(size_t n) {
    void *p = NULL;
    ck_assert_int_eq(cudaMalloc(&p, n), cudaSuccess);
    return p;
}

START_TEST(block_reduction) {
    const int blocks = 3, per = 1000;
    const int threads[] = {32, 96, 256, 1024};
    float *h = malloc(sizeof(float) * blocks * per);
    tu_rng r = tu_rng_make(1);
    tu_fill(&r, h, blocks * per, -1.0f, 1.0f);
    float *x = dev_alloc(sizeof(float) * blocks * per);
    double *out = dev_alloc(sizeof(double) * blocks);
    ck_assert_int_eq(cudaMemcpyAsync(x, h, sizeof(float) * blocks * per, cudaMemcpyHostToDevice, NULL), cudaSuccess);
    for (int k = 0; k < 4; k++) {
        double got[3];
        ck_assert_int_eq(emu_sums(x, out, blocks, threads[k], per), cudaSuccess);
        ck_assert_int_eq(cudaMemcpyAsync(got, out, sizeof got, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
        for (int b = 0; b < blocks; b++) {
            double want = 0.0;
            for (int i = 0; i < per; i++) want += h[b * per + i];
            ck_assert_msg(fabs(got[b] - want) < 1e-9, "%d threads, block %d: %g, want %g", threads[k], b, got[b], want);
        }
    }
    cudaFree(x);
    cudaFree(out);
    free(h);
}
END_TEST

START_TEST(indices_3d) {
    const unsigned g[3] = {3, 2, 2}, b[3] = {8, 4, 3};
    const size_t nb = 12, nt = 96, n = nb * nt;
    uint32_t *d = dev_alloc(n * sizeof(uint32_t)), *h = malloc(n * sizeof(uint32_t));
    ck_assert_int_eq(emu_ids(d, g[0], g[1], g[2], b[0], b[1], b[2]), cudaSuccess);
    ck_assert_int_eq(cudaMemcpyAsync(h, d, n * sizeof(uint32_t), cudaMemcpyDeviceToHost, NULL), cudaSuccess);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(h[i] == (uint32_t)((i / nt) * 100000 + i % nt), "slot %zu holds %u", i, h[i]);
    cudaFree(d);
    free(h);
}
END_TEST

START_TEST(grid_stride_and_atomics) {
    const int64_t n = 1000003;
    float *x = dev_alloc((size_t)n * sizeof(float)), *h = malloc((size_t)n * sizeof(float));
    syn_emu_stats before, after;
    syn_emu_get_stats(&before);
    ck_assert_int_eq(emu_fill(x, n, 2.5f, 97, 128), cudaSuccess);
    ck_assert_int_eq(cudaStreamSynchronize(NULL), cudaSuccess); /* blocks are counted as they run */
    syn_emu_get_stats(&after);
    ck_assert_uint_eq(after.launches - before.launches, 1);
    ck_assert_uint_eq(after.fiber_blocks - before.fiber_blocks, 1); /* block 0 did not synchronise */
    ck_assert_uint_eq(after.plain_blocks - before.plain_blocks, 96);
    ck_assert_int_eq(cudaMemcpyAsync(h, x, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, NULL), cudaSuccess);
    for (int64_t i = 0; i < n; i++)
        if (h[i] != 2.5f) ck_abort_msg("element %lld is %g", (long long)i, h[i]);
    unsigned long long *c = dev_alloc(sizeof *c), got = 1;
    ck_assert_int_eq(cudaMemsetAsync(c, 0, sizeof *c, NULL), cudaSuccess);
    ck_assert_int_eq(emu_count(c, 5, 192), cudaSuccess);
    ck_assert_int_eq(cudaMemcpyAsync(&got, c, sizeof got, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
    ck_assert_uint_eq(got, 5 * 192);
    cudaFree(x);
    cudaFree(c);
    free(h);
}
END_TEST

START_TEST(launch_and_memory_errors) {
    float *x = dev_alloc(64 * sizeof(float)), h[64];
    ck_assert_int_eq(cudaMemcpyAsync(h, x, sizeof h, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
    ck_assert_msg(isnan(h[0]) && isnan(h[63]), "fresh device memory should read as NaN");
    ck_assert_int_eq(emu_fill(x, 64, 1.0f, 1, 2048), cudaErrorInvalidConfiguration); /* > 1024 threads */
    ck_assert_int_eq(emu_fill(x, 64, 1.0f, 0, 64), cudaErrorInvalidConfiguration);
    ck_assert_int_eq(cudaGetLastError(), cudaSuccess); /* read and cleared */
    void *big = NULL;
    size_t free_b = 0, total_b = 0;
    ck_assert_int_eq(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
    ck_assert_int_eq(cudaMalloc(&big, total_b + 1), cudaErrorMemoryAllocation);
    ck_assert_ptr_null(big);
    ck_assert_int_eq(cudaGetLastError(), cudaErrorMemoryAllocation);
    cudaFree(x);
}
END_TEST

/* Queued work runs at synchronisation points, as on a GPU: a pinned source is
 * read when its copy runs, an event is not complete before it, and a copy to
 * pageable memory waits for everything queued before it. */
START_TEST(work_runs_at_synchronisation) {
    if (getenv("SYN_EMU_DEFER") && atoi(getenv("SYN_EMU_DEFER")) == 0) return; /* eager on purpose */
    float *pinned = NULL, *d = dev_alloc(4 * sizeof(float)), h[4];
    ck_assert_int_eq(cudaMallocHost((void **)&pinned, 4 * sizeof(float)), cudaSuccess);
    for (int i = 0; i < 4; i++) pinned[i] = 1.0f;
    ck_assert_int_eq(cudaMemcpyAsync(d, pinned, 4 * sizeof(float), cudaMemcpyHostToDevice, NULL), cudaSuccess);
    pinned[2] = 7.0f; /* before the copy ran: the copy sees it */
    cudaEvent_t a, b;
    float ms = -1.0f;
    ck_assert_int_eq(cudaEventCreateWithFlags(&a, cudaEventDefault), cudaSuccess);
    ck_assert_int_eq(cudaEventCreateWithFlags(&b, cudaEventDefault), cudaSuccess);
    ck_assert_int_eq(cudaEventRecord(a, NULL), cudaSuccess);
    ck_assert_int_eq(emu_fill(d + 3, 1, 5.0f, 1, 32), cudaSuccess);
    ck_assert_int_eq(cudaEventRecord(b, NULL), cudaSuccess);
    ck_assert_int_eq(cudaEventElapsedTime(&ms, a, b), cudaErrorNotReady);
    ck_assert_int_eq(cudaGetLastError(), cudaErrorNotReady);
    ck_assert_int_eq(cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
    ck_assert(h[0] == 1.0f && h[1] == 1.0f && h[2] == 7.0f && h[3] == 5.0f);
    ck_assert_int_eq(cudaEventSynchronize(b), cudaSuccess);
    ck_assert_int_eq(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
    ck_assert(ms >= 0.0f);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaFreeHost(pinned);
    cudaFree(d);
}
END_TEST

/* The order threads and blocks run in: first to last, or with
 * SYN_EMU_ORDER=reverse block 0 first (it decides how the rest run), then
 * the others last to first, each block's threads last to first. */
START_TEST(run_order) {
    const char *o = getenv("SYN_EMU_ORDER");
    const bool rev = o && strcmp(o, "reverse") == 0;
    int *stamp = dev_alloc(12 * sizeof(int)), *next = dev_alloc(sizeof(int)), h[12];
    ck_assert_int_eq(cudaMemsetAsync(next, 0, sizeof(int), NULL), cudaSuccess);
    ck_assert_int_eq(emu_order(stamp, next, 3, 4), cudaSuccess);
    ck_assert_int_eq(cudaMemcpyAsync(h, stamp, sizeof h, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
    static const int fwd[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    static const int back[12] = {3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 5, 4}; /* block 0, then 2, then 1 */
    for (int i = 0; i < 12; i++) ck_assert_int_eq(h[i], rev ? back[i] : fwd[i]);
    cudaFree(stamp);
    cudaFree(next);
}
END_TEST

/* Shared memory starts as garbage in every block (NaN here), as on a GPU,
 * not as what the previous block left. */
START_TEST(shared_memory_starts_as_garbage) {
    float *out = dev_alloc(3 * sizeof(float)), h[3];
    ck_assert_int_eq(emu_fresh_shared(out, 3), cudaSuccess);
    ck_assert_int_eq(cudaMemcpyAsync(h, out, sizeof h, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
    for (int b = 0; b < 3; b++) ck_assert_msg(isnan(h[b]), "block %d read %g", b, h[b]);
    cudaFree(out);
}
END_TEST

/* Stream capture (CUDA graphs): the capturing thread's work is recorded, not
 * run; a launched graph runs it again each time; calls CUDA refuses during a
 * capture (waits, allocations, copies to pageable memory) fail and invalidate
 * it, later work fails too, and ending it says so. */
START_TEST(capture_records_and_replays) {
    cudaStream_t s;
    cudaGraph_t g = NULL;
    cudaGraphExec_t ex = NULL;
    unsigned long long *c = dev_alloc(sizeof *c), got = 1;
    void *p = NULL;
    ck_assert_int_eq(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    ck_assert_int_eq(cudaMemsetAsync(c, 0, sizeof *c, s), cudaSuccess);
    ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaErrorIllegalState);
    ck_assert_int_eq(cudaGetLastError(), cudaErrorIllegalState);
    ck_assert_int_eq(emu_count(c, 2, 32), cudaSuccess);
    ck_assert_int_eq(cudaStreamEndCapture(s, &g), cudaSuccess);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(cudaMemcpyAsync(&got, c, sizeof got, cudaMemcpyDeviceToHost, s), cudaSuccess);
    ck_assert_uint_eq(got, 0); /* recorded, not run */
    ck_assert_int_eq(cudaGraphInstantiate(&ex, g, 0), cudaSuccess);
    ck_assert_int_eq(cudaGraphDestroy(g), cudaSuccess); /* the exec keeps its own copy */
    syn_emu_stats before, after;
    syn_emu_get_stats(&before);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(cudaGraphLaunch(ex, s), cudaSuccess);
    ck_assert_int_eq(cudaMemcpyAsync(&got, c, sizeof got, cudaMemcpyDeviceToHost, s), cudaSuccess);
    ck_assert_uint_eq(got, 3 * 64);
    syn_emu_get_stats(&after);
    ck_assert_uint_eq(after.graph_launches - before.graph_launches, 3);
    ck_assert_uint_eq(after.launches - before.launches, 0); /* a replay submits nothing new */
    ck_assert_int_eq(cudaGraphExecDestroy(ex), cudaSuccess);
    /* refused: a wait, then the work after it; ending says the capture is invalid */
    ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ck_assert_int_eq(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
    ck_assert_int_eq(emu_count(c, 1, 32), cudaErrorStreamCaptureInvalidated);
    ck_assert_int_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    ck_assert_ptr_null(g);
    (void)cudaGetLastError();
    ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ck_assert_int_eq(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    ck_assert_int_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ck_assert_int_eq(cudaMemcpyAsync(&got, c, sizeof got, cudaMemcpyDeviceToHost, s),
                     cudaErrorStreamCaptureUnsupported);
    ck_assert_int_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    (void)cudaGetLastError();
    /* nothing of the refused captures ran */
    ck_assert_int_eq(cudaMemcpyAsync(&got, c, sizeof got, cudaMemcpyDeviceToHost, s), cudaSuccess);
    ck_assert_uint_eq(got, 3 * 64);
    ck_assert_int_eq(cudaStreamDestroy(s), cudaSuccess);
    cudaFree(c);
}
END_TEST

/* Synapse's CUDA backend meets a sticky fault (#3: an illegal address marks
 * the backend unusable and says so): the call that sees it fails with the
 * CUDA error, every later call on that device names the first error, freeing
 * still works, and the CPU is unaffected. */
START_TEST(sticky_fault_marks_backend_unusable) {
    enum { N = 1000 };
    float h[N];
    syn_tensor *t = NULL, *c = NULL;
    TU_OK(syn_tensor_create(syn_cuda(0), SYN_F32, syn_shape1(N), &t));
    TU_OK(syn_tensor_fill(t, 1.0f));
    TU_OK(syn_tensor_read(t, h, sizeof h));
    ck_assert(h[N - 1] == 1.0f);
    syn_emu_inject_fault(cudaErrorIllegalAddress, 0); /* the next launch */
    syn_status s = syn_tensor_fill(t, 2.0f);         /* queued: the fault shows at the read */
    if (s == SYN_OK) s = syn_tensor_read(t, h, sizeof h);
    ck_assert_int_eq(s, SYN_ERR_DEVICE);
    ck_assert_msg(strstr(syn_last_error(), "illegal memory access"), "message: %s", syn_last_error());
    ck_assert_int_eq(syn_tensor_fill(t, 3.0f), SYN_ERR_DEVICE);
    ck_assert_msg(strstr(syn_last_error(), "unusable") && strstr(syn_last_error(), "illegal memory access"),
                  "message: %s", syn_last_error());
    syn_tensor *u = NULL;
    ck_assert_int_eq(syn_tensor_create(syn_cuda(0), SYN_F32, syn_shape1(N), &u), SYN_ERR_DEVICE);
    ck_assert_ptr_null(u);
    syn_tensor_free(t);
    TU_OK(syn_tensor_create(syn_cpu(), SYN_F32, syn_shape1(N), &c));
    TU_OK(syn_tensor_fill(c, 4.0f));
    TU_OK(syn_tensor_read(c, h, sizeof h));
    ck_assert(h[0] == 4.0f);
    syn_tensor_free(c);
}
END_TEST

/* A parameter set's zero_grad is fused: 30 gradients in two launches
 * (24 to a launch), no memset each. */
START_TEST(zero_grad_is_fused) {
    syn_params *ps;
    syn_init init = {SYN_INIT_UNIFORM, -1, 1, 0};
    TU_OK(syn_params_create(syn_cuda(0), 1, &ps));
    for (int i = 0; i < 30; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        TU_OK(syn_params_add(ps, name, syn_shape1(10 + i), &init, NULL));
    }
    ck_assert_int_eq(cudaStreamSynchronize(NULL), cudaSuccess);
    syn_emu_stats a, b;
    syn_emu_get_stats(&a);
    TU_OK(syn_params_zero_grad(ps));
    syn_emu_get_stats(&b);
    ck_assert_uint_eq(b.launches - a.launches, 2);
    ck_assert_uint_eq(b.memsets - a.memsets, 0);
    syn_params_free(ps);
}
END_TEST

/* syn_fit on a GPU: the loss and the rows right add up on the device, so the
 * host waits for all its work once per epoch (progress off), not after every
 * step; the figures match a CPU run of the same model. */
static syn_fit_result fit_on(syn_device dev, const syn_dataset *ds, uint64_t *syncs) {
    enum { B = 8, D = 20, C = 4 };
    syn_params *ps;
    syn_graph *g;
    syn_optim *opt;
    TU_OK(syn_params_create(dev, 5, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_model m = {g, syn_input(g, "x", SYN_F32, syn_shape2(B, D)), syn_input(g, "y", SYN_I32, syn_shape1(B)), NULL,
                   NULL};
    const int64_t hidden[1] = {32};
    m.logits = syn_mlp(g, m.x, hidden, 1, C, SYN_ACT_RELU, 0.0f);
    m.loss = syn_cross_entropy(g, m.logits, m.y);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_keep(g, m.logits));
    TU_OK(syn_graph_compile(g, dev, NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_SGD);
    oc.lr = 0.1f;
    TU_OK(syn_optim_create(ps, &oc, &opt));
    syn_fit_config fc;
    memset(&fc, 0, sizeof fc);
    fc.epochs = 2;
    fc.batch_size = B;
    fc.seed = 9;
    fc.progress = SYN_PROGRESS_OFF;
    syn_fit_result res;
    syn_emu_stats a, b;
    syn_emu_get_stats(&a);
    TU_OK(syn_fit(&m, opt, ds, NULL, &fc, &res));
    syn_emu_get_stats(&b);
    *syncs = b.syncs - a.syncs;
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(ps);
    return res;
}

START_TEST(fit_waits_once_per_epoch) {
    enum { N = 64, D = 20 };
    syn_dataset ds = {.n = N, .dim = D, .sample_shape = syn_shape1(D), .x = calloc(N * D, sizeof(float)),
                      .labels = calloc(N, sizeof(int32_t)), .num_classes = 4};
    ck_assert(ds.x && ds.labels);
    tu_rng r = tu_rng_make(6);
    tu_fill(&r, ds.x, N * D, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) ds.labels[i] = (ds.x[i * D] > 0.0f) + 2 * (ds.x[i * D + 1] > 0.0f);
    uint64_t gpu_syncs, cpu_syncs;
    syn_fit_result gpu = fit_on(syn_cuda(0), &ds, &gpu_syncs), cpu = fit_on(syn_cpu(), &ds, &cpu_syncs);
    /* 16 steps; each epoch's figures are one wait for all queued work, and
     * setting up may add one. (A feed waits for its staging buffer's copy
     * of two steps before: an event, which does not drain the queue.) */
    ck_assert_msg(gpu_syncs <= 3, "syn_fit waited for the device %llu times in 16 steps", (unsigned long long)gpu_syncs);
    ck_assert_int_eq(cpu_syncs, 0);
    ck_assert_msg(fabsf(gpu.train_loss - cpu.train_loss) <= 1e-5f * fabsf(cpu.train_loss), "loss %g on cuda, %g on cpu",
                  gpu.train_loss, cpu.train_loss);
    /* the same rows right, but for a near-tie of two logits that rounding may flip */
    ck_assert_msg(fabsf(gpu.train_accuracy - cpu.train_accuracy) <= 1.5f / 64.0f, "accuracy %g on cuda, %g on cpu",
                  gpu.train_accuracy, cpu.train_accuracy);
    /* figures, not zeros: some of the 64 rows are right (all wrong: p ~ 0.75^64) */
    ck_assert(cpu.train_accuracy > 0.0f && cpu.train_accuracy <= 1.0f && cpu.train_loss > 0.0f);
    free(ds.x);
    free(ds.labels);
}
END_TEST

/* A fault in the middle of a training step: some call of the step reports it,
 * later steps keep failing with the first error, and everything frees
 * cleanly (the sanitizer pass checks for leaks). With graphs the steps from
 * the second on are replayed from a CUDA graph, and the fault lands in a
 * launch the graph replays: `launches_before` counts the launches of the
 * faulting step before the one that faults. */
static void fault_run(bool graphs, int fault_step, unsigned launches_before) {
    enum { B = 16, D = 20, STEPS = 5 };
    syn_params *ps = NULL;
    syn_graph *g = NULL;
    syn_optim *opt = NULL;
    TU_OK(syn_params_create(syn_cuda(0), 3, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(B, D));
    syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(B));
    const int64_t hidden[1] = {32};
    syn_node *loss = syn_cross_entropy(g, syn_mlp(g, x, hidden, 1, 4, SYN_ACT_RELU, 0.0f), y);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_compile(g, syn_cuda(0), &(syn_compile_opts){.cuda_graphs = graphs}));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    TU_OK(syn_optim_create(ps, &oc, &opt));
    float hx[B * D];
    int32_t hy[B];
    tu_rng r = tu_rng_make(2);
    tu_fill(&r, hx, B * D, -1.0f, 1.0f);
    for (int i = 0; i < B; i++) hy[i] = i % 4;
    syn_emu_stats before, after;
    syn_emu_get_stats(&before);
    for (int step = 0; step < STEPS; step++) {
        if (step == fault_step) syn_emu_inject_fault(cudaErrorLaunchFailure, launches_before);
        syn_status s = syn_params_zero_grad(ps);
        if (s == SYN_OK) s = syn_graph_feed(g, x, hx, syn_shape2(B, D));
        if (s == SYN_OK) s = syn_graph_feed(g, y, hy, syn_shape1(B));
        if (s == SYN_OK) s = syn_graph_forward_backward(g, loss);
        if (s == SYN_OK) s = syn_optim_step(opt);
        float l = 0.0f;
        if (s == SYN_OK) s = syn_graph_read_scalar(g, loss, &l);
        if (step < fault_step) {
            TU_OK(s);
            ck_assert_int_eq(syn_graph_replays(g, NULL, 0), graphs ? step : 0);
        } else {
            ck_assert_msg(s == SYN_ERR_DEVICE, "step %d: %s", step, syn_status_str(s));
            ck_assert_msg(strstr(syn_last_error(), "unspecified launch failure"), "step %d: %s", step, syn_last_error());
        }
    }
    syn_emu_get_stats(&after);
    /* with graphs: the capture's launch, the replays before the fault and the one it hit */
    ck_assert_uint_eq(after.graph_launches - before.graph_launches, graphs ? (uint64_t)fault_step : 0);
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(ps);
}

START_TEST(fault_mid_training_step) { fault_run(false, 1, 5); }
END_TEST

/* zero_grad is one launch; then the fault is the replay's fourth */
START_TEST(fault_in_replayed_step) { fault_run(true, 3, 4); }
END_TEST

/* Each of these must stop the process (SIGABRT, in a forked child). */
START_TEST(split_barrier_aborts) {
    emu_split_barrier(dev_alloc(256));
    cudaStreamSynchronize(NULL);
}
END_TEST
START_TEST(exited_lanes_abort) {
    emu_exited_lanes(dev_alloc(256));
    cudaStreamSynchronize(NULL);
}
END_TEST
START_TEST(late_sync_aborts) {
    emu_late_sync(dev_alloc(256));
    cudaStreamSynchronize(NULL);
}
END_TEST
START_TEST(host_pointer_argument_aborts) {
    static float host[64];
    emu_fill(host, 64, 1.0f, 1, 64);
}
END_TEST
START_TEST(copy_past_allocation_aborts) {
    float h[65] = {0};
    cudaMemcpyAsync(dev_alloc(64 * sizeof(float)), h, sizeof h, cudaMemcpyHostToDevice, NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cuda_emu");
    TCase *tc = tcase_create("emulator");
    tcase_add_test(tc, block_reduction);
    tcase_add_test(tc, indices_3d);
    tcase_add_test(tc, grid_stride_and_atomics);
    tcase_add_test(tc, launch_and_memory_errors);
    tcase_add_test(tc, work_runs_at_synchronisation);
    tcase_add_test(tc, capture_records_and_replays);
    tcase_add_test(tc, run_order);
    tcase_add_test(tc, shared_memory_starts_as_garbage);
    tcase_add_test(tc, sticky_fault_marks_backend_unusable);
    tcase_add_test(tc, fault_mid_training_step);
    tcase_add_test(tc, zero_grad_is_fused);
    tcase_add_test(tc, fit_waits_once_per_epoch);
    tcase_add_test(tc, fault_in_replayed_step);
    tcase_add_test_raise_signal(tc, split_barrier_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, exited_lanes_abort, SIGABRT);
    tcase_add_test_raise_signal(tc, late_sync_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, host_pointer_argument_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, copy_past_allocation_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
