/* Training-step benchmark workloads: zero_grad, forward, backward, (clip),
 * optimizer step on a fixed synthetic batch fed once. MLP 784-1024-1024-10
 * (SGD), the Fashion-MNIST CNN of models/fmnist_cnn.cfg (Adam), ResNet-18
 * CIFAR (SGD momentum), char-LSTM 2x512 (Adam, clip 5), DCGAN-64 (one D step
 * and one G step, Adam; gan.h's trainer); and on a GPU the MLPs and the CNN
 * and the char-LSTM with forward and backward replayed from a CUDA graph
 * (*_graph).
 *
 * Verification before timing, at a small batch: the loss of the first steps
 * is finite and (where a fixed batch must be learnt) falls; on a GPU the
 * losses must also match the CPU's, built from the same seed and data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/internal.h"
#include "bench_internal.h"

#define BTRY(expr)                           \
    do {                                     \
        syn_status bs_ = (expr);             \
        if (bs_ != SYN_OK) return bs_;       \
    } while (0)

typedef enum { NET_MLP, NET_FMNIST_CNN, NET_RESNET18, NET_CHARLM, NET_DCGAN64 } net_kind;

typedef struct {
    net_kind net;
    int batch_gpu, batch_cpu, batch_quick, batch_verify;
    int seq_gpu, seq_cpu, seq_quick, seq_verify; /* char-LSTM only */
    bool must_fall;                              /* the loss must fall over the verification steps */
    const char *what;                            /* the model and optimizer, for the config line */
    int compare_steps; /* steps compared with the CPU's (0: all VSTEPS); the rest must be finite */
    bool graphs;       /* forward + backward replayed from a CUDA graph (GPU only) */
} train_arg;

/* One model at one size on one device. */
typedef struct {
    const train_arg *a;
    syn_device dev;
    int B, T;
    syn_params *ps;
    syn_graph *g;
    syn_node *x, *y, *loss;
    syn_optim *opt;
    syn_model_desc *md;
    float clip;
    syn_gan *gan;
    float *real;
    syn_gan_stats st;
} train_state;

static void train_free(train_state *s) {
    if (!s) return;
    syn_optim_free(s->opt);
    syn_graph_free(s->g);
    syn_params_free(s->ps);
    syn_model_desc_free(s->md);
    syn_gan_free(s->gan);
    free(s->real);
    free(s);
}
static void train_teardown(void *p) { train_free(p); }

/* Fixed data, identical on every device: images/features U(-1, 1), labels
 * uniform over the classes; tokens and next-token labels uniform over bytes. */
static syn_status feed_data(train_state *s, syn_shape xs, int classes, bool tokens) {
    syn__brng rng = {0xDA7Aull};
    int64_t nx = syn_shape_numel(&xs), ny = tokens ? nx : xs.dim[0];
    void *x = malloc((size_t)nx * 4), *y = malloc((size_t)ny * 4);
    syn_status st = (!x || !y) ? syn__error(SYN_ERR_OOM, "bench data") : SYN_OK;
    if (st == SYN_OK) {
        if (tokens)
            for (int64_t i = 0; i < nx; i++) ((int32_t *)x)[i] = syn__brng_int(&rng, 256);
        else
            syn__brng_fill(&rng, x, (size_t)nx);
        for (int64_t i = 0; i < ny; i++)
            ((int32_t *)y)[i] = tokens ? ((int32_t *)x)[(i + 1) % nx] : syn__brng_int(&rng, classes);
        st = syn_graph_feed(s->g, s->x, x, xs);
    }
    if (st == SYN_OK) st = syn_graph_feed(s->g, s->y, y, syn_shape1(ny));
    free(x);
    free(y);
    return st;
}

static syn_status build_gan(train_state *s) {
    syn_gan_config gc = syn_gan_config_defaults(SYN_GAN_DCGAN64);
    gc.batch = s->B;
    gc.seed = 1;
    gc.n_fixed = 1;
    BTRY(syn_gan_create(&gc, s->dev, &s->gan));
    size_t n = (size_t)s->B * 3 * 64 * 64;
    if (!(s->real = syn__malloc(n * sizeof(float), "bench dcgan batch"))) return SYN_ERR_OOM;
    syn__brng rng = {0x6A4ull};
    syn__brng_fill(&rng, s->real, n); /* "images" in [-1, 1) */
    return SYN_OK;
}

/* Builds model a->net at batch B (and sequence T) on dev, seed 1, data fed. */
static syn_status train_build(const train_arg *a, syn_device dev, int B, int T, train_state **out) {
    train_state *s = syn__calloc(1, sizeof *s, "bench train");
    if (!s) return SYN_ERR_OOM;
    *out = s;
    s->a = a;
    s->dev = dev;
    s->B = B;
    s->T = T;
    if (a->net == NET_DCGAN64) return build_gan(s);
    BTRY(syn_params_create(dev, 1, &s->ps));
    BTRY(syn_graph_create(s->ps, &s->g));
    syn_graph *g = s->g;
    syn_shape xs;
    syn_optim_config oc;
    syn_node *logits = NULL;
    bool tokens = false;
    switch (a->net) {
    case NET_MLP: {
        static const int64_t hidden[2] = {1024, 1024};
        xs = syn_shape2(B, 784);
        s->x = syn_input(g, "x", SYN_F32, xs);
        logits = syn_mlp(g, s->x, hidden, 2, 10, SYN_ACT_RELU, 0.0f);
        oc = syn_optim_defaults(SYN_OPTIM_SGD);
        oc.lr = 0.01f;
        oc.momentum = 0.0f;
        break;
    }
    case NET_FMNIST_CNN: {
        char path[4096];
        if (!syn_bench_source_file("models/fmnist_cnn.cfg", path, sizeof path))
            return syn__error(SYN_ERR_IO, "models/fmnist_cnn.cfg not found (run from the source tree or set SYN_SOURCE_DIR)");
        BTRY(syn_model_desc_load(path, &s->md));
        xs = syn_shape4(B, 1, 28, 28);
        s->x = syn_input(g, "x", SYN_F32, xs);
        logits = syn_model_build(g, s->md, s->x);
        oc = syn_optim_defaults(SYN_OPTIM_ADAM);
        break;
    }
    case NET_RESNET18:
        xs = syn_shape4(B, 3, 32, 32);
        s->x = syn_input(g, "x", SYN_F32, xs);
        logits = syn_resnet(g, s->x, 18, 10, true);
        oc = syn_optim_defaults(SYN_OPTIM_SGD);
        oc.lr = 0.1f;
        oc.momentum = 0.9f;
        oc.weight_decay = 5e-4f;
        break;
    case NET_CHARLM: {
        /* embedding 256x128, LSTM 2x512, decoder 512 -> 256 (text.h's model) */
        xs = syn_shape2(B, T);
        tokens = true;
        s->x = syn_input(g, "tokens", SYN_I32, xs);
        syn_rnn_config rc = {SYN_RNN_LSTM, 512, 2, 0.0f, false};
        syn_node *e = syn_embedding(g, s->x, 256, 128, "embedding");
        syn_node *h = syn_rnn(g, e, &rc, NULL, NULL, "rnn", NULL);
        logits = syn_linear(g, syn_reshape(g, h, syn_shape2(-1, 512)), 256, "decoder", NULL);
        oc = syn_optim_defaults(SYN_OPTIM_ADAM);
        oc.lr = 2e-3f;
        s->clip = 5.0f;
        break;
    }
    default: return syn__error(SYN_ERR_ARG, "bench: unknown network %d", (int)a->net);
    }
    s->y = syn_input(g, "y", SYN_I32, syn_shape1(tokens ? (int64_t)B * T : B));
    s->loss = syn_cross_entropy(g, logits, s->y);
    BTRY(syn_graph_status(g));
    syn_compile_opts co = {.cuda_graphs = a->graphs};
    BTRY(syn_graph_compile(g, dev, &co));
    BTRY(syn_optim_create(s->ps, &oc, &s->opt));
    return feed_data(s, xs, 10, tokens);
}

static syn_status train_step(void *p) {
    train_state *s = p;
    if (s->gan) return syn_gan_step(s->gan, s->real, s->B, NULL); /* figures read after timing */
    BTRY(syn_params_zero_grad(s->ps));
    BTRY(syn_graph_forward_backward(s->g, s->loss));
    if (s->clip > 0) BTRY(syn_params_clip_grad_norm(s->ps, s->clip, NULL));
    return syn_optim_step(s->opt);
}

static syn_status train_setup(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg, void **state,
                              syn_bench_result *r) {
    const train_arg *a = w->arg;
    if (a->graphs && dev.type == SYN_DEVICE_CPU) return syn__error(SYN_ERR_UNSUPPORTED, "CUDA graphs need a GPU");
    int B = a->batch_gpu, T = a->seq_gpu;
    if (cfg->quick) {
        B = a->batch_quick, T = a->seq_quick;
        r->reduced = B != a->batch_gpu || T != a->seq_gpu;
        if (r->reduced) snprintf(r->note, sizeof r->note, "--quick: smaller batch/sequence");
    } else if (dev.type == SYN_DEVICE_CPU && (a->batch_cpu != B || a->seq_cpu != T)) {
        r->reduced = true;
        if (a->net == NET_CHARLM)
            snprintf(r->note, sizeof r->note, "CPU: batch %d seq %d instead of batch %d seq %d", a->batch_cpu,
                     a->seq_cpu, B, T);
        else
            snprintf(r->note, sizeof r->note, "CPU: batch %d instead of %d", a->batch_cpu, B);
        B = a->batch_cpu, T = a->seq_cpu;
    }
    train_state *s = NULL;
    syn_status st = train_build(a, dev, B, T, &s);
    *state = s;
    if (st != SYN_OK) return st;
    if (a->net == NET_CHARLM)
        snprintf(r->config, sizeof r->config, "%s, batch %d, seq %d", a->what, B, T);
    else
        snprintf(r->config, sizeof r->config, "%s, batch %d", a->what, B);
    r->batch = B;
    r->items_per_step = a->net == NET_CHARLM ? (double)B * T : B;
    snprintf(r->item, sizeof r->item, a->net == NET_CHARLM ? "tokens" : "samples");
    snprintf(r->rate_unit, sizeof r->rate_unit, a->net == NET_CHARLM ? "tokens/s" : "samples/s");
    return SYN_OK;
}

#define VSTEPS 6

/* The losses of VSTEPS steps at the verification size on dev. */
static syn_status verify_losses(const train_arg *a, syn_device dev, bool quick, float loss[VSTEPS][2]) {
    train_state *s = NULL;
    int B = quick ? (a->batch_quick < a->batch_verify ? a->batch_quick : a->batch_verify) : a->batch_verify;
    syn_status st = train_build(a, dev, B, a->seq_verify, &s);
    for (int k = 0; k < VSTEPS && st == SYN_OK; k++) {
        st = train_step(s);
        if (st != SYN_OK) break;
        if (s->gan) {
            st = syn_gan_last_stats(s->gan, &s->st);
            loss[k][0] = s->st.d_loss;
            loss[k][1] = s->st.g_loss;
        } else {
            /* the loss of the forward pass of step k (before its update) */
            st = syn_graph_read_scalar(s->g, s->loss, &loss[k][0]);
            loss[k][1] = 0.0f;
        }
    }
    if (st == SYN_OK && a->graphs && dev.type != SYN_DEVICE_CPU) { /* step 1 warms up, 2 is captured */
        char why[256];
        int64_t replays = syn_graph_replays(s->g, why, sizeof why);
        if (replays != VSTEPS - 1)
            st = syn__error(SYN_ERR_DEVICE, "%lld of %d verification steps replayed from a CUDA graph, want %d (%s)",
                            (long long)replays, VSTEPS, VSTEPS - 1, why);
    }
    train_free(s);
    return st;
}

static syn_status train_verify(void *p, syn_device dev, const syn_bench_config *cfg, syn_bench_result *r, bool *ok) {
    const train_arg *a = ((train_state *)p)->a;
    float l[VSTEPS][2], ref[VSTEPS][2];
    BTRY(verify_losses(a, dev, cfg->quick, l));
    int n = snprintf(r->verify, sizeof r->verify, "%d steps at a small batch: loss", VSTEPS);
    for (int k = 0; k < VSTEPS && n < (int)sizeof r->verify; k++)
        n += snprintf(r->verify + n, sizeof r->verify - (size_t)n, " %.4f", (double)l[k][0]);
    *ok = true;
    for (int k = 0; k < VSTEPS; k++)
        if (!isfinite(l[k][0]) || !isfinite(l[k][1])) *ok = false;
    if (!*ok) {
        snprintf(r->verify + n, sizeof r->verify - (size_t)n, "; NOT FINITE");
        return SYN_OK;
    }
    if (a->must_fall && !(l[VSTEPS - 1][0] < l[0][0])) {
        *ok = false;
        snprintf(r->verify + n, sizeof r->verify - (size_t)n, "; did NOT fall");
        return SYN_OK;
    }
    if (dev.type == SYN_DEVICE_CPU) {
        snprintf(r->verify + n, sizeof r->verify - (size_t)n, a->must_fall ? "; finite and falling" : "; finite");
        return SYN_OK;
    }
    /* the CPU from the same seed and data: each loss within 0.5% (a GPU
     * rounds sums in another order; cuDNN picks its own algorithms) */
    BTRY(verify_losses(a, syn_cpu(), cfg->quick, ref));
    const int compared = a->compare_steps > 0 ? a->compare_steps : VSTEPS;
    double worst = 0;
    for (int k = 0; k < compared; k++)
        for (int j = 0; j < 2; j++) {
            double e = fabs((double)l[k][j] - ref[k][j]) / (fabs(ref[k][j]) > 1e-3 ? fabs(ref[k][j]) : 1e-3);
            if (!(e <= worst)) worst = e;
        }
    *ok = worst <= 5e-3;
    char scope[32] = "";
    if (compared < VSTEPS) snprintf(scope, sizeof scope, ", first %d steps", compared);
    n += snprintf(r->verify + n, sizeof r->verify - (size_t)n, "; vs the CPU's%s: max rel diff %.1e (tol 5e-3)%s",
                  scope, worst, *ok ? "" : " MISMATCH");
    if (a->graphs && n < (int)sizeof r->verify) /* verify_losses demanded it */
        snprintf(r->verify + n, sizeof r->verify - (size_t)n, "; steps 2-%d replayed from a CUDA graph", VSTEPS);
    return SYN_OK;
}

/* The loss of the last timed step's forward pass (the D loss for the GAN). */
static syn_status train_finish(void *p, syn_bench_result *r) {
    train_state *s = p;
    float v;
    if (s->gan) {
        BTRY(syn_gan_last_stats(s->gan, &s->st));
        v = s->st.d_loss;
    }
    else BTRY(syn_graph_read_scalar(s->g, s->loss, &v));
    r->final_loss = v;
    if (!isfinite(v)) return syn__error(SYN_ERR_ARG, "the loss became %g during timing", (double)v);
    if (s->a->graphs) { /* the warm-up captured the step: every timed one must have been replayed */
        char why[256];
        int64_t replays = syn_graph_replays(s->g, why, sizeof why);
        if (replays < r->iters)
            return syn__error(SYN_ERR_DEVICE, "%lld steps replayed from a CUDA graph, %d timed (%s)",
                              (long long)replays, r->iters, why);
    }
    return SYN_OK;
}

/* ---- the registry ------------------------------------------------------------------------- */

static const train_arg mlp128 = {NET_MLP, 128, 128, 128, 64, 0, 0, 0, 0, true,
                                 "MLP 784-1024-1024-10 ReLU, SGD lr 0.01", 0, false};
static const train_arg mlp1024 = {NET_MLP, 1024, 1024, 128, 64, 0, 0, 0, 0, true,
                                  "MLP 784-1024-1024-10 ReLU, SGD lr 0.01", 0, false};
static const train_arg cnn = {NET_FMNIST_CNN, 128, 128, 16, 32, 0, 0, 0, 0, true,
                              "models/fmnist_cnn.cfg 1x28x28 (2x conv3x3+BN+ReLU+maxpool, FC128, FC10), Adam 1e-3", 0,
                              false};
static const train_arg resnet = {NET_RESNET18, 256, 16, 2, 4, 0, 0, 0, 0, false,
                                 "ResNet-18 CIFAR 3x32x32, SGD lr 0.1 momentum 0.9 wd 5e-4", 0, false};
static const train_arg lstm = {NET_CHARLM, 64, 16, 4, 4, 128, 32, 8, 16, true,
                               "char-LSTM emb 128, 2x512 LSTM, decoder 256, Adam 2e-3, clip 5", 0, false};
/* Two steps compared: at a verification batch of 2-4, with batch norm, D wins
 * within a few steps and the two players amplify rounding differences (Adam's
 * first steps move every weight by about lr whatever its gradient's size, so
 * a near-zero gradient's sign decides): on the CUDA emulator, whose cuDNN sums
 * in double, steps 1-2 agree with the CPU to 3e-4 and step 6 differs by 6%.
 * Two steps already run every kernel of both players' forward, backward and
 * update. */
static const train_arg dcgan = {NET_DCGAN64, 128, 16, 2, 4, 0, 0, 0, 0, false,
                                "DCGAN-64 (gan.h, ngf=ndf=64, 3x64x64), one D + one G step, Adam 2e-4 b1 0.5", 2,
                                false};

/* ANCHORS.md's "with CUDA graph" column: the same steps, forward and
 * backward replayed from one captured CUDA graph; zero_grad, clipping and the
 * optimizer step still launch as usual (a fused launch or two each). */
static const train_arg mlp128_graph = {NET_MLP, 128, 128, 128, 64, 0, 0, 0, 0, true,
                                       "MLP 784-1024-1024-10 ReLU, SGD lr 0.01, CUDA graph", 0, true};
static const train_arg mlp1024_graph = {NET_MLP, 1024, 1024, 128, 64, 0, 0, 0, 0, true,
                                        "MLP 784-1024-1024-10 ReLU, SGD lr 0.01, CUDA graph", 0, true};
static const train_arg cnn_graph = {NET_FMNIST_CNN, 128, 128, 16, 32, 0, 0, 0, 0, true,
                                    "models/fmnist_cnn.cfg 1x28x28, Adam 1e-3, CUDA graph", 0, true};
/* 128 steps x 2 layers of a GEMM and a cell kernel each way: launch-bound without a graph */
static const train_arg lstm_graph = {NET_CHARLM, 64, 16, 4, 4, 128, 32, 8, 16, true,
                                     "char-LSTM emb 128, 2x512 LSTM, decoder 256, Adam 2e-3, clip 5, CUDA graph", 0,
                                     true};

const syn_bench_workload syn__bench_train[] = {
    {"mlp_b128", "train", "MLP 784-1024-1024-10 training step, batch 128, SGD", train_setup, train_verify, train_step,
     train_finish, train_teardown, 3, 20, 10, 100, &mlp128},
    {"mlp_b1024", "train", "MLP 784-1024-1024-10 training step, batch 1024, SGD", train_setup, train_verify,
     train_step, train_finish, train_teardown, 2, 10, 10, 100, &mlp1024},
    {"cnn_fmnist", "train", "Fashion-MNIST CNN (models/fmnist_cnn.cfg) training step, batch 128, Adam", train_setup,
     train_verify, train_step, train_finish, train_teardown, 2, 10, 10, 100, &cnn},
    {"resnet18_cifar", "train", "ResNet-18 CIFAR training step, batch 256 (CPU 16), SGD momentum", train_setup,
     train_verify, train_step, train_finish, train_teardown, 1, 3, 3, 20, &resnet},
    {"char_lstm", "train", "char-LSTM 2x512 training step, seq 128 batch 64 (CPU seq 32 batch 16), Adam",
     train_setup, train_verify, train_step, train_finish, train_teardown, 1, 5, 3, 20, &lstm},
    {"dcgan64", "train", "DCGAN-64 one D step + one G step, batch 128 (CPU 16), Adam", train_setup, train_verify,
     train_step, train_finish, train_teardown, 1, 3, 3, 20, &dcgan},
    {"mlp_b128_graph", "train", "mlp_b128 with forward and backward replayed from a CUDA graph (GPU only)",
     train_setup, train_verify, train_step, train_finish, train_teardown, 3, 20, 10, 100, &mlp128_graph},
    {"mlp_b1024_graph", "train", "mlp_b1024 with forward and backward replayed from a CUDA graph (GPU only)",
     train_setup, train_verify, train_step, train_finish, train_teardown, 2, 10, 10, 100, &mlp1024_graph},
    {"cnn_fmnist_graph", "train", "cnn_fmnist with forward and backward replayed from a CUDA graph (GPU only)",
     train_setup, train_verify, train_step, train_finish, train_teardown, 2, 10, 10, 100, &cnn_graph},
    {"char_lstm_graph", "train", "char_lstm with forward and backward replayed from a CUDA graph (GPU only)",
     train_setup, train_verify, train_step, train_finish, train_teardown, 2, 5, 3, 20, &lstm_graph},
};
const int syn__bench_n_train = (int)(sizeof syn__bench_train / sizeof syn__bench_train[0]);
