/* Layers with parameters (linear), activations by name, and the MLP builder
 * used by the CLI. Parameters are found or created by name in the graph's
 * current parameter set. */
#include <stdio.h>
#include <string.h>
#include "../core/internal.h"

syn_node *syn_linear(syn_graph *g, syn_node *x, int64_t out_features, const char *name, const syn_linear_opts *opts) {
    char base[96], wname[128], bname[128];
    if (!g || g->err != SYN_OK) return NULL;
    if (!x) return syn__graph_fail(g, SYN_ERR_ARG, "linear: input is NULL");
    if (out_features < 1) return syn__graph_fail(g, SYN_ERR_ARG, "linear: out_features %lld < 1", (long long)out_features);
    if (x->shape.ndim < 1) return syn__graph_fail(g, SYN_ERR_SHAPE, "linear: input is a scalar");
    int64_t in = x->shape.dim[x->shape.ndim - 1];
    syn__layer_name(g, "linear", name, base, sizeof base);
    snprintf(wname, sizeof wname, "%s.weight", base);
    snprintf(bname, sizeof bname, "%s.bias", base);
    syn_init winit = {SYN_INIT_FANIN_UNIFORM, 0, 0, 0}, binit = {SYN_INIT_FANIN_UNIFORM, 0, 0, in};
    if (opts && opts->custom_init) {
        winit = opts->weight_init;
        binit = opts->bias_init;
        if (binit.fan_in == 0) binit.fan_in = in;
    }
    syn_node *w = syn_param(g, wname, syn_shape2(out_features, in), &winit);
    syn_node *b = (opts && opts->no_bias) ? NULL : syn_param(g, bname, syn_shape1(out_features), &binit);
    if (!w || (!b && !(opts && opts->no_bias))) return NULL;
    return syn_linear_op(g, x, w, b);
}

syn_node *syn_activate(syn_graph *g, syn_node *x, syn_activation act) {
    switch (act) {
    case SYN_ACT_NONE: return x;
    case SYN_ACT_RELU: return syn_relu(g, x);
    case SYN_ACT_SIGMOID: return syn_sigmoid(g, x);
    case SYN_ACT_TANH: return syn_tanh(g, x);
    case SYN_ACT_GELU: return syn_gelu(g, x);
    case SYN_ACT_LEAKY_RELU: return syn_leaky_relu(g, x, 0.01f);
    }
    return syn__graph_fail(g, SYN_ERR_ARG, "unknown activation %d", (int)act);
}

static const char *const act_names[] = {"none", "relu", "sigmoid", "tanh", "gelu", "leaky_relu"};

syn_status syn_activation_parse(const char *text, syn_activation *out) {
    for (int i = 0; text && i < (int)(sizeof act_names / sizeof *act_names); i++)
        if (strcmp(text, act_names[i]) == 0) {
            *out = (syn_activation)i;
            return SYN_OK;
        }
    return syn__error(SYN_ERR_ARG, "unknown activation '%s' (relu, sigmoid, tanh, gelu, leaky_relu, none)",
                      text ? text : "(null)");
}

const char *syn_activation_name(syn_activation act) {
    return (unsigned)act < sizeof act_names / sizeof *act_names ? act_names[act] : "?";
}

syn_node *syn_mlp(syn_graph *g, syn_node *x, const int64_t *hidden, int n_hidden, int64_t out_features,
                  syn_activation act, float dropout) {
    if (!g || g->err != SYN_OK) return NULL;
    if (n_hidden < 0 || (n_hidden > 0 && !hidden)) return syn__graph_fail(g, SYN_ERR_ARG, "mlp: bad hidden sizes");
    syn_node *h = x && x->shape.ndim > 2 ? syn_flatten(g, x) : x;
    for (int i = 0; i < n_hidden; i++) {
        h = syn_activate(g, syn_linear(g, h, hidden[i], NULL, NULL), act);
        if (dropout > 0.0f) h = syn_dropout(g, h, dropout);
    }
    return syn_linear(g, h, out_features, NULL, NULL);
}
