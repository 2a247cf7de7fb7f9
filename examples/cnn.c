/* A convolutional network on Fashion-MNIST: two 3x3 convolutions with batch
 * norm, ReLU and max pooling, then two dense layers (models/fmnist_cnn.cfg,
 * 421,834 parameters), built layer by layer with the C API, trained with Adam
 * through syn_fit, and then loaded a second way - from the model file - over
 * the same trained weights.
 * Usage: example_cnn [epochs] [max_samples] [model_file]
 *   defaults: 3 epochs on all 60,000 training images, tested on all 10,000
 *   (about 2.5 minutes on 2 CPU cores); max_samples caps both, for a short
 *   run; the model file is models/fmnist_cnn.cfg, read relative to the
 *   current folder (that part is skipped when the file is absent).
 * Every call that can fail returns a syn_status; syn_last_error() says why. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "synapse/synapse.h"

#define BATCH 128
#define DEFAULT_MODEL_FILE "models/fmnist_cnn.cfg"

/* Prints the library's message for a failed call and jumps to cleanup. */
#define CHECK(expr)                                                                   \
    do {                                                                              \
        syn_status s_ = (expr);                                                       \
        if (s_ != SYN_OK) {                                                           \
            fprintf(stderr, "%s failed: %s\n", #expr, syn_last_error());              \
            goto done;                                                                \
        }                                                                             \
    } while (0)

/* conv 3x3 'same' -> batch norm -> ReLU -> max pool 2x2:
 * x: (N, C, H, W) -> (N, filters, H/2, W/2). The layer names are those the
 * model file gives its layers by default (type + index), so both ways of
 * building the net refer to one set of weights. */
static syn_node *conv_block(syn_graph *g, syn_node *x, int64_t filters, const char *conv_name,
                            const char *bn_name) {
    syn_conv_opts same = {.conv = {.pad_h = 1, .pad_w = 1}};
    syn_node *h = syn_conv2d(g, x, filters, 3, 3, conv_name, &same);
    h = syn_batch_norm(g, h, bn_name);
    h = syn_relu(g, h);
    return syn_max_pool2d(g, h, 2, 2, 0, 0, 0, 0); /* stride 0: = kernel */
}

int main(int argc, char **argv) {
    int epochs = argc > 1 ? atoi(argv[1]) : 3, rc = 1;
    long max_samples = argc > 2 ? atol(argv[2]) : 0;
    const char *model_file = argc > 3 ? argv[3] : DEFAULT_MODEL_FILE;
    if (epochs < 1 || max_samples < 0 || argc > 4) {
        fprintf(stderr, "usage: %s [epochs >= 1] [max_samples (0: all)] [model_file]\n", argv[0]);
        return 2;
    }
    syn_dataset *train = NULL, *test = NULL;
    syn_params *params = NULL;
    syn_graph *g = NULL, *g_file = NULL;
    syn_optim *opt = NULL;
    syn_model_desc *desc = NULL;

    /* 1. Data: 1x28x28 images in [0, 1], standardised with the training
     *    set's mean and standard deviation. A short run keeps the first
     *    max_samples images of each (a data set is a plain struct: n is its
     *    length). */
    CHECK(syn_dataset_load_fashion_mnist(NULL, true, &train));
    CHECK(syn_dataset_load_fashion_mnist(NULL, false, &test));
    if (max_samples > 0 && max_samples < train->n) train->n = max_samples;
    if (max_samples > 0 && max_samples < test->n) test->n = max_samples;
    CHECK(syn_dataset_standardize(train, test, false));

    /* 2. The device: the first GPU when the library has CUDA and a GPU is
     *    present, else the CPU. Nothing below depends on which: the same
     *    program runs on both (syn_cuda(0) or syn_cpu() to force one). */
    syn_device dev = syn_device_count(SYN_DEVICE_CUDA) > 0 ? syn_cuda(0) : syn_cpu();
    char dev_name[256];
    CHECK(syn_device_describe(dev, dev_name, sizeof dev_name));
    printf("device: %s\n", dev_name);

    /* 3. The network, layer by layer. Images arrive as (batch, 1, 28, 28). */
    CHECK(syn_params_create(dev, 42, &params));
    CHECK(syn_graph_create(params, &g));
    syn_model m = {0};
    m.graph = g;
    m.x = syn_input(g, "x", SYN_F32, syn_shape4(BATCH, 1, 28, 28));
    m.y = syn_input(g, "y", SYN_I32, syn_shape1(BATCH));
    syn_node *h = conv_block(g, m.x, 32, "conv0", "bn1"); /* (batch, 32, 14, 14) */
    h = conv_block(g, h, 64, "conv4", "bn5");             /* (batch, 64, 7, 7) */
    h = syn_flatten(g, h);                                /* (batch, 3136) */
    h = syn_relu(g, syn_linear(g, h, 128, "fc9", NULL));  /* (batch, 128) */
    m.logits = syn_linear(g, h, 10, "fc10", NULL);        /* (batch, 10) */
    m.loss = syn_cross_entropy(g, m.logits, m.y);
    /* One check for the whole build: the first error sticks in the graph. */
    CHECK(syn_graph_status(g));
    CHECK(syn_graph_keep(g, m.logits));
    CHECK(syn_graph_compile(g, dev, NULL));
    /* The count includes batch norm's running statistics (192 values). */
    printf("cnn: %lld parameter values; %lld training, %lld test images; batch %d\n",
           (long long)syn_params_numel(params), (long long)train->n, (long long)test->n, BATCH);

    /* 4. Adam (lr 1e-3) and the training loop. syn_fit evaluates on the test
     *    set after each epoch in eval mode: batch norm then uses the running
     *    statistics it gathered while training. */
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    CHECK(syn_optim_create(params, &oc, &opt));
    syn_fit_config fc = {.epochs = epochs, .batch_size = BATCH, .seed = 1}; /* progress: a bar on a terminal */
    syn_fit_result res;
    CHECK(syn_fit(&m, opt, train, test, &fc, &res));
    printf("test accuracy %.4f (loss %.4f), %d epoch(s) in %.1f s\n", (double)res.test_accuracy, (double)res.test_loss,
           res.epochs_run, res.seconds);

    /* 5. The same network from its text description. syn_model_build adds
     *    the file's layers to a graph; in the trained parameter set it finds
     *    every weight by name, so this second graph evaluates the trained
     *    net (an evaluation-only graph: no backward pass is planned). */
    if (argc <= 3 && access(model_file, R_OK) != 0) {
        printf("(%s not found from here: run from the source folder to load the model file)\n", model_file);
    } else {
        const int n_params = syn_params_count(params);
        CHECK(syn_model_desc_load(model_file, &desc));
        CHECK(syn_graph_create(params, &g_file));
        syn_model mf = {0};
        mf.graph = g_file;
        mf.x = syn_input(g_file, "x", SYN_F32, syn_shape4(BATCH, 1, 28, 28));
        mf.y = syn_input(g_file, "y", SYN_I32, syn_shape1(BATCH));
        mf.logits = syn_model_build(g_file, desc, mf.x);
        mf.loss = syn_cross_entropy(g_file, mf.logits, mf.y);
        CHECK(syn_graph_status(g_file));
        /* A layer name the C code did not use would have created (and
         * initialised) a new parameter instead of finding a trained one. */
        if (syn_params_count(params) != n_params) {
            fprintf(stderr, "%s names weights the C network does not have\n", model_file);
            goto done;
        }
        CHECK(syn_graph_keep(g_file, mf.logits));
        syn_compile_opts inference = {.inference = true};
        CHECK(syn_graph_compile(g_file, dev, &inference));
        float loss, acc;
        CHECK(syn_evaluate(&mf, test, BATCH, &loss, &acc));
        printf("%s over the same weights: test accuracy %.4f (loss %.4f)\n", model_file, (double)acc, (double)loss);
    }
    rc = 0;

done:
    syn_model_desc_free(desc);
    syn_graph_free(g_file);
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(params);
    syn_dataset_free(train);
    syn_dataset_free(test);
    return rc;
}
