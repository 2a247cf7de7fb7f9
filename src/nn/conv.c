/* Convolutional layers with parameters: conv2d, transposed conv2d, batch norm
 * and layer norm, initialised as PyTorch's modules are. */
#include <stdio.h>
#include "../core/internal.h"

static syn_node *conv_layer(syn_graph *g, syn_node *x, int64_t out_ch, int kh, int kw, const char *name,
                            const syn_conv_opts *opts, bool transposed) {
    char base[96], wname[128], bname[128];
    const char *op = transposed ? "conv_transpose2d" : "conv2d";
    if (!g || g->err != SYN_OK) return NULL;
    if (!x) return syn__graph_fail(g, SYN_ERR_ARG, "%s: input is NULL", op);
    if (x->shape.ndim != 4) {
        char sb[128];
        return syn__graph_fail(g, SYN_ERR_SHAPE, "%s: x must be (N, C, H, W), not %s", op,
                               syn_shape_str(&x->shape, sb, sizeof sb));
    }
    int64_t groups = opts && opts->conv.groups > 0 ? opts->conv.groups : 1, C = x->shape.dim[1];
    if (out_ch < 1 || kh < 1 || kw < 1 || C % groups || out_ch % groups)
        return syn__graph_fail(g, SYN_ERR_ARG, "%s: %lld -> %lld channels, kernel %dx%d, groups %lld", op,
                               (long long)C, (long long)out_ch, kh, kw, (long long)groups);
    syn__layer_name(g, transposed ? "deconv" : "conv", name, base, sizeof base);
    snprintf(wname, sizeof wname, "%s.weight", base);
    snprintf(bname, sizeof bname, "%s.bias", base);
    /* PyTorch: U(+-1/sqrt(fan_in)) for both, fan_in = weight.dim[1] * kh * kw */
    syn_shape ws = transposed ? syn_shape4(C, out_ch / groups, kh, kw) : syn_shape4(out_ch, C / groups, kh, kw);
    int64_t fan_in = ws.dim[1] * kh * kw;
    syn_init winit = {SYN_INIT_FANIN_UNIFORM, 0, 0, 0}, binit = {SYN_INIT_FANIN_UNIFORM, 0, 0, fan_in};
    syn_node *w = syn_param(g, wname, ws, &winit);
    syn_node *b = (opts && opts->no_bias) ? NULL : syn_param(g, bname, syn_shape1(out_ch), &binit);
    if (!w || (!b && !(opts && opts->no_bias))) return NULL;
    const syn_conv_params *p = opts ? &opts->conv : NULL;
    return transposed ? syn_conv_transpose2d_op(g, x, w, b, p) : syn_conv2d_op(g, x, w, b, p);
}

syn_node *syn_conv2d(syn_graph *g, syn_node *x, int64_t out_channels, int kh, int kw, const char *name,
                     const syn_conv_opts *opts) {
    return conv_layer(g, x, out_channels, kh, kw, name, opts, false);
}

syn_node *syn_conv_transpose2d(syn_graph *g, syn_node *x, int64_t out_channels, int kh, int kw, const char *name,
                               const syn_conv_opts *opts) {
    return conv_layer(g, x, out_channels, kh, kw, name, opts, true);
}

/* gamma = 1, beta = 0 trainable; running statistics frozen (updated by the op). */
static syn_node *norm_params(syn_graph *g, const char *base, int64_t C, bool running, syn_node **out) {
    char nm[128];
    const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    const float value[4] = {1, 0, 0, 1};
    for (int k = 0; k < (running ? 4 : 2); k++) {
        snprintf(nm, sizeof nm, "%s.%s", base, suffix[k]);
        syn_init init = {SYN_INIT_CONSTANT, value[k], 0, 0};
        out[k] = syn_param(g, nm, syn_shape1(C), &init);
        if (!out[k]) return NULL;
        if (k >= 2) {
            syn_status s = syn_params_set_trainable(g->params, nm, false);
            if (s != SYN_OK) return syn__graph_fail(g, s, "%s", syn_last_error());
        }
    }
    return out[0];
}

syn_node *syn_batch_norm(syn_graph *g, syn_node *x, const char *name) {
    char base[96];
    syn_node *p[4];
    if (!g || g->err != SYN_OK) return NULL;
    if (!x || x->shape.ndim < 2) return syn__graph_fail(g, SYN_ERR_SHAPE, "batch_norm: x must be (N, C, ...)");
    syn__layer_name(g, "bn", name, base, sizeof base);
    if (!norm_params(g, base, x->shape.dim[1], true, p)) return NULL;
    return syn_batch_norm_op(g, x, p[0], p[1], p[2], p[3], 0.1f, 1e-5f);
}

syn_node *syn_layer_norm(syn_graph *g, syn_node *x, const char *name) {
    char base[96];
    syn_node *p[2];
    if (!g || g->err != SYN_OK) return NULL;
    if (!x || x->shape.ndim < 1) return syn__graph_fail(g, SYN_ERR_SHAPE, "layer_norm: x has no last dim");
    syn__layer_name(g, "ln", name, base, sizeof base);
    if (!norm_params(g, base, x->shape.dim[x->shape.ndim - 1], false, p)) return NULL;
    return syn_layer_norm_op(g, x, p[0], p[1], 1e-5f);
}
