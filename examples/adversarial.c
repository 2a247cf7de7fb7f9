/* Adversarial examples from input gradients: train a 784-256-128-10 MLP on
 * Fashion-MNIST, then move every test image by eps * sign(dL/dx), the fast
 * gradient sign method (Goodfellow et al., 2015), and by a random sign
 * pattern of the same size, and compare the accuracies. The gradient with
 * respect to the images comes from syn_graph_input_grad.
 * Usage: example_adversarial [epochs] [eps] [max_test] [out.png] (default 1,
 * 0.1, 10000; out.png: the first 8 test images above their FGSM versions). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "synapse/synapse.h"

#define BATCH 128

#define CHECK(expr)                                                                   \
    do {                                                                              \
        syn_status s_ = (expr);                                                       \
        if (s_ != SYN_OK) {                                                           \
            fprintf(stderr, "%s failed: %s\n", #expr, syn_last_error());              \
            goto done;                                                                \
        }                                                                             \
    } while (0)

/* Rows of logits (n, 10) whose largest entry is the label. */
static int64_t correct(const float *logits, const int32_t *labels, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < 10; c++)
            if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
        k += best == labels[i];
    }
    return k;
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

int main(int argc, char **argv) {
    const int epochs = argc > 1 ? atoi(argv[1]) : 1;
    const float eps = argc > 2 ? (float)atof(argv[2]) : 0.1f;
    const int64_t max_test = argc > 3 ? atoll(argv[3]) : 10000;
    const char *png = argc > 4 ? argv[4] : NULL;
    if (epochs < 1 || !(eps >= 0.0f && eps <= 1.0f) || max_test < 1) {
        fprintf(stderr, "usage: %s [epochs >= 1] [eps in [0, 1]] [max_test >= 1] [out.png]\n", argv[0]);
        return 2;
    }
    int rc = 1;
    syn_dataset *train = NULL, *test = NULL;
    syn_params *params = NULL;
    syn_graph *g = NULL, *attack = NULL;
    syn_optim *opt = NULL;
    float *x = NULL, *grad = NULL, *moved = NULL, *logits = NULL;
    float pair[16 * 784]; /* the first 8 test images, then their FGSM versions */

    /* 1. Pixels in [0, 1], not standardised: eps is then in pixel units and
     *    a moved image is clipped back into [0, 1]. */
    CHECK(syn_dataset_load_fashion_mnist(NULL, true, &train));
    CHECK(syn_dataset_load_fashion_mnist(NULL, false, &test));

    /* 2. The model, trained with syn_fit as in example_mlp. */
    syn_device dev = syn_device_count(SYN_DEVICE_CUDA) > 0 ? syn_cuda(0) : syn_cpu();
    CHECK(syn_params_create(dev, 42, &params));
    CHECK(syn_graph_create(params, &g));
    const int64_t hidden[] = {256, 128};
    syn_model m = {0};
    m.graph = g;
    m.x = syn_input(g, "x", SYN_F32, syn_shape2(BATCH, 784));
    m.y = syn_input(g, "y", SYN_I32, syn_shape1(BATCH));
    m.logits = syn_mlp(g, m.x, hidden, 2, 10, SYN_ACT_RELU, 0.0f);
    m.loss = syn_cross_entropy(g, m.logits, m.y);
    CHECK(syn_graph_status(g));
    CHECK(syn_graph_keep(g, m.logits));
    CHECK(syn_graph_compile(g, dev, NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    CHECK(syn_optim_create(params, &oc, &opt));
    syn_fit_config fc = {0};
    fc.epochs = epochs;
    fc.batch_size = BATCH;
    fc.seed = 1;
    fc.progress = SYN_PROGRESS_AUTO;
    syn_fit_result res;
    CHECK(syn_fit(&m, opt, train, test, &fc, &res));

    /* 3. The attack's graph: the same layers over the same parameter set
     *    (layers find their parameters by name), with the loss's gradient
     *    with respect to x asked for. Its backward passes also add to the
     *    parameters' gradients, which no optimizer step reads any more. */
    CHECK(syn_graph_create(params, &attack));
    syn_node *ax = syn_input(attack, "x", SYN_F32, syn_shape2(BATCH, 784));
    syn_node *ay = syn_input(attack, "y", SYN_I32, syn_shape1(BATCH));
    syn_node *alogits = syn_mlp(attack, ax, hidden, 2, 10, SYN_ACT_RELU, 0.0f);
    syn_node *aloss = syn_cross_entropy(attack, alogits, ay);
    CHECK(syn_graph_status(attack));
    CHECK(syn_graph_keep(attack, alogits));
    CHECK(syn_graph_input_grad(attack, ax));
    CHECK(syn_graph_compile(attack, dev, NULL));

    /* 4. Per batch: the clean images' logits and dL/dx, then the logits of
     *    the images moved along sign(dL/dx) and along random signs. */
    const int64_t n_test = test->n < max_test ? test->n : max_test;
    x = malloc(BATCH * 784 * sizeof *x);
    grad = malloc(BATCH * 784 * sizeof *grad);
    moved = malloc(BATCH * 784 * sizeof *moved);
    logits = malloc(BATCH * 10 * sizeof *logits);
    if (!x || !grad || !moved || !logits) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    int64_t right[3] = {0, 0, 0}; /* clean, random signs, gradient signs */
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    double mean_abs_grad = 0;
    for (int64_t b0 = 0; b0 < n_test; b0 += BATCH) {
        const int64_t n = n_test - b0 < BATCH ? n_test - b0 : BATCH;
        const int32_t *y = test->labels + b0;
        const syn_shape xs = syn_shape2(n, 784);
        for (int64_t i = 0; i < n * 784; i++) x[i] = test->x[b0 * 784 + i];
        CHECK(syn_graph_feed(attack, ax, x, xs));
        CHECK(syn_graph_feed(attack, ay, y, syn_shape1(n)));
        CHECK(syn_graph_forward(attack));
        CHECK(syn_graph_read(attack, alogits, logits, (size_t)(n * 10) * sizeof *logits));
        right[0] += correct(logits, y, n);
        CHECK(syn_graph_backward(attack, aloss));
        CHECK(syn_graph_read_grad(attack, ax, grad, (size_t)(n * 784) * sizeof *grad));
        for (int k = 1; k <= 2; k++) {
            for (int64_t i = 0; i < n * 784; i++) {
                float dir;
                if (k == 1) { /* a random sign per pixel (xorshift64) */
                    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                    dir = rng & 1 ? 1.0f : -1.0f;
                } else {
                    dir = grad[i] > 0.0f ? 1.0f : grad[i] < 0.0f ? -1.0f : 0.0f;
                    mean_abs_grad += fabsf(grad[i]);
                }
                moved[i] = clamp01(x[i] + eps * dir);
            }
            if (k == 2 && b0 == 0 && n >= 8) {
                memcpy(pair, x, 8 * 784 * sizeof *pair);
                memcpy(pair + 8 * 784, moved, 8 * 784 * sizeof *pair);
            }
            CHECK(syn_graph_feed(attack, ax, moved, xs));
            CHECK(syn_graph_forward(attack));
            CHECK(syn_graph_read(attack, alogits, logits, (size_t)(n * 10) * sizeof *logits));
            right[k] += correct(logits, y, n);
        }
    }
    const double N = (double)n_test;
    printf("test accuracy after %d epoch%s: %.4f on %lld test images\n", epochs, epochs == 1 ? "" : "s",
           (double)right[0] / N, (long long)n_test);
    printf("random signs, eps %.3f: accuracy %.4f (each pixel moved by eps, up or down at random)\n", (double)eps,
           (double)right[1] / N);
    printf("FGSM, eps %.3f: accuracy %.4f (each pixel moved by eps along sign(dL/dx); mean |dL/dx| %.3g)\n",
           (double)eps, (double)right[2] / N, mean_abs_grad / (N * 784));
    if (png && n_test >= 8) {
        CHECK(syn_png_write_grid(png, pair, 16, 1, 28, 28, 8, 0.0f, 1.0f));
        printf("%s: the first 8 test images above their FGSM versions\n", png);
    }
    rc = 0;

done:
    free(x);
    free(grad);
    free(moved);
    free(logits);
    syn_optim_free(opt);
    syn_graph_free(attack);
    syn_graph_free(g);
    syn_params_free(params);
    syn_dataset_free(train);
    syn_dataset_free(test);
    return rc;
}
