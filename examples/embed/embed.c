/* Embedding an installed Synapse: train a 2-8-2 network on XOR, check that it
 * learned, save its parameters, reload them into a fresh parameter set and
 * run inference there. Built outside the source tree by tests/embed_test.sh,
 * through CMake (find_package(Synapse)) and through pkg-config.
 * Usage: embed [params.safetensors]. Exit status 0 when every XOR case is
 * right after the reload, 1 otherwise. */
#include <stdio.h>
#include <string.h>
#include <synapse/synapse.h>
#include <synapse/version.h>

#define STEPS 400

#define CHECK(expr)                                                          \
    do {                                                                     \
        syn_status s_ = (expr);                                              \
        if (s_ != SYN_OK) {                                                  \
            fprintf(stderr, "embed: %s: %s\n", #expr, syn_last_error());    \
            goto done;                                                       \
        }                                                                    \
    } while (0)

static const float xs[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
static const int32_t ys[4] = {0, 1, 1, 0};

/* The same layers (and so the same parameter names) for training and inference. */
static syn_node *xor_net(syn_graph *g, syn_node *x) {
    const int64_t hidden[] = {8};
    return syn_mlp(g, x, hidden, 1, 2, SYN_ACT_TANH, 0.0f); /* (4, 2) logits */
}

/* How many of the four cases the logits get right. */
static int correct(const float logits[4][2]) {
    int n = 0;
    for (int i = 0; i < 4; i++) n += (logits[i][1] > logits[i][0]) == (ys[i] == 1);
    return n;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "embed_xor.safetensors";
    int rc = 1;
    syn_params *p = NULL, *p2 = NULL;
    syn_graph *g = NULL, *g2 = NULL;
    syn_optim *opt = NULL;
    float logits[4][2], loss = 0.0f;

    if (strcmp(syn_version(), SYN_VERSION_STRING) != 0) {
        fprintf(stderr, "embed: header version %s, library %s\n", SYN_VERSION_STRING, syn_version());
        return 1;
    }

    /* Training graph: (4, 2) inputs, class labels, cross-entropy. */
    CHECK(syn_params_create(syn_cpu(), 7, &p));
    CHECK(syn_graph_create(p, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(4, 2));
    syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(4));
    syn_node *out = xor_net(g, x);
    syn_node *l = syn_cross_entropy(g, out, y);
    CHECK(syn_graph_status(g));
    CHECK(syn_graph_keep(g, out));
    CHECK(syn_graph_compile(g, syn_cpu(), NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    oc.lr = 0.05f;
    CHECK(syn_optim_create(p, &oc, &opt));
    for (int step = 0; step < STEPS; step++) {
        CHECK(syn_graph_feed(g, x, xs, syn_shape2(4, 2)));
        CHECK(syn_graph_feed(g, y, ys, syn_shape1(4)));
        CHECK(syn_params_zero_grad(p));
        CHECK(syn_graph_forward(g));
        CHECK(syn_graph_backward(g, l));
        CHECK(syn_optim_step(opt));
    }
    CHECK(syn_graph_feed(g, x, xs, syn_shape2(4, 2)));
    CHECK(syn_graph_feed(g, y, ys, syn_shape1(4)));
    CHECK(syn_graph_forward(g));
    CHECK(syn_graph_read_scalar(g, l, &loss));
    CHECK(syn_graph_read(g, out, logits, sizeof logits));
    if (correct(logits) != 4) {
        fprintf(stderr, "embed: XOR not learned after %d steps (loss %.4f)\n", STEPS, (double)loss);
        goto done;
    }
    CHECK(syn_params_save(p, path));

    /* Inference in a fresh parameter set (another seed: different until loaded). */
    CHECK(syn_params_create(syn_cpu(), 99, &p2));
    CHECK(syn_graph_create(p2, &g2));
    syn_node *x2 = syn_input(g2, "x", SYN_F32, syn_shape2(4, 2));
    syn_node *out2 = xor_net(g2, x2);
    CHECK(syn_graph_status(g2));
    CHECK(syn_graph_keep(g2, out2));
    syn_compile_opts co = {.inference = true};
    CHECK(syn_graph_compile(g2, syn_cpu(), &co));
    CHECK(syn_params_load(p2, path, true));
    syn_graph_set_training(g2, false);
    CHECK(syn_graph_feed(g2, x2, xs, syn_shape2(4, 2)));
    CHECK(syn_graph_forward(g2));
    CHECK(syn_graph_read(g2, out2, logits, sizeof logits));
    int ok = correct(logits);
    printf("synapse %s: XOR loss %.4f after %d steps; reloaded from %s: %d/4 correct\n", syn_version(),
           (double)loss, STEPS, path, ok);
    rc = ok == 4 ? 0 : 1;

done:
    syn_graph_free(g2);
    syn_params_free(p2);
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(p);
    return rc;
}
