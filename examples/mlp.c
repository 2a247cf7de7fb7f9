/* Embedding Synapse: train a 784-256-128-10 MLP on Fashion-MNIST with Adam and
 * print the test accuracy. Usage: example_mlp [epochs] (default 1).
 * Every call that can fail returns a syn_status; syn_last_error() says why. */
#include <stdio.h>
#include <stdlib.h>
#include "synapse/synapse.h"

#define BATCH 128

/* Prints the library's message for a failed call and jumps to cleanup. */
#define CHECK(expr)                                                                   \
    do {                                                                              \
        syn_status s_ = (expr);                                                       \
        if (s_ != SYN_OK) {                                                           \
            fprintf(stderr, "%s failed: %s\n", #expr, syn_last_error());              \
            goto done;                                                                \
        }                                                                             \
    } while (0)

int main(int argc, char **argv) {
    int epochs = argc > 1 ? atoi(argv[1]) : 1, rc = 1;
    if (epochs < 1) {
        fprintf(stderr, "usage: %s [epochs >= 1]\n", argv[0]);
        return 2;
    }
    /* Everything the program owns, freed once at the end (freeing NULL is a no-op). */
    syn_dataset *train = NULL, *test = NULL;
    syn_params *params = NULL;
    syn_graph *g = NULL;
    syn_optim *opt = NULL;

    /* 1. Data: pixels in [0, 1], standardised with the training set's mean
     *    and standard deviation (one global pair for images). */
    CHECK(syn_dataset_load_fashion_mnist(NULL, true, &train));
    CHECK(syn_dataset_load_fashion_mnist(NULL, false, &test));
    CHECK(syn_dataset_standardize(train, test, false));

    /* 2. The model. Parameters live in a set on one device, the GPU if there
     *    is one, else the CPU (syn_cuda(0) / syn_cpu() to choose); the seed
     *    makes initialisation reproducible. Layers create their parameters in it. */
    syn_device dev = syn_device_count(SYN_DEVICE_CUDA) > 0 ? syn_cuda(0) : syn_cpu();
    CHECK(syn_params_create(dev, 42, &params));
    CHECK(syn_graph_create(params, &g));

    syn_model m = {0};
    m.graph = g;
    /* The leading dim of an input is its capacity: the last, partial batch
     * can be smaller. Images arrive flattened: (batch, 784). */
    m.x = syn_input(g, "x", SYN_F32, syn_shape2(BATCH, 784));
    m.y = syn_input(g, "y", SYN_I32, syn_shape1(BATCH));
    const int64_t hidden[] = {256, 128};
    m.logits = syn_mlp(g, m.x, hidden, 2, 10, SYN_ACT_RELU, 0.0f); /* (batch, 10) */
    m.loss = syn_cross_entropy(g, m.logits, m.y);                  /* scalar */
    /* Building never fails halfway: a bad op returns NULL and the graph keeps
     * the first error, so one check after the whole model is enough. */
    CHECK(syn_graph_status(g));

    /* 3. Compile for the device. The loop reads the logits for accuracy, so
     *    they must survive the memory plan's buffer reuse. */
    CHECK(syn_graph_keep(g, m.logits));
    CHECK(syn_graph_compile(g, dev, NULL));

    /* 4. Adam with PyTorch's defaults (lr 1e-3). */
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    CHECK(syn_optim_create(params, &oc, &opt));

    /* 5. Train: shuffled batches, a step per batch, evaluation on the test
     *    set after each epoch, progress on stderr. */
    syn_fit_config fc = {0};
    fc.epochs = epochs;
    fc.batch_size = BATCH;
    fc.seed = 1;
    fc.progress = SYN_PROGRESS_AUTO;
    syn_fit_result res;
    CHECK(syn_fit(&m, opt, train, test, &fc, &res));

    printf("test accuracy %.4f (loss %.4f) after %d epoch%s, %.1f s, %.0f samples/s\n", (double)res.test_accuracy,
           (double)res.test_loss, res.epochs_run, res.epochs_run == 1 ? "" : "s", res.seconds, res.samples_per_s);
    rc = 0;

done:
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(params);
    syn_dataset_free(train);
    syn_dataset_free(test);
    return rc;
}
