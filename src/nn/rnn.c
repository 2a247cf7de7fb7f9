/* Sequence layers: embedding tables and stacked recurrent layers with
 * PyTorch's parameter names and initialisation. */
#include <math.h>
#include <stdio.h>
#include "../core/internal.h"

syn_node *syn_embedding(syn_graph *g, syn_node *idx, int64_t num, int64_t dim, const char *name) {
    char base[96], wname[128];
    if (!g || g->err != SYN_OK) return NULL;
    if (num < 1 || dim < 1)
        return syn__graph_fail(g, SYN_ERR_ARG, "embedding: %lld x %lld table", (long long)num, (long long)dim);
    syn__layer_name(g, "embedding", name, base, sizeof base);
    snprintf(wname, sizeof wname, "%s.weight", base);
    syn_init init = {SYN_INIT_NORMAL, 0.0f, 1.0f, 0};
    syn_node *w = syn_param(g, wname, syn_shape2(num, dim), &init);
    return w ? syn_embedding_op(g, idx, w) : NULL;
}

static const char *const mode_names[] = {"rnn", "rnn", "lstm", "gru"};

syn_node *syn_rnn(syn_graph *g, syn_node *x, const syn_rnn_config *cfg, syn_node *state0, syn_node *lengths,
                  const char *name, syn_node **state_out) {
    char base[96], pn[160];
    if (state_out) *state_out = NULL;
    if (!g || g->err != SYN_OK) return NULL;
    if (!x || !cfg) return syn__graph_fail(g, SYN_ERR_ARG, "rnn: x and cfg are required");
    if ((unsigned)cfg->mode > SYN_RNN_GRU) return syn__graph_fail(g, SYN_ERR_ARG, "rnn: unknown mode %d", (int)cfg->mode);
    int L = cfg->layers > 0 ? cfg->layers : 1;
    int64_t H = cfg->hidden, G = syn__rnn_gates(cfg->mode), S = syn__rnn_state(cfg->mode, H);
    if (H < 1) return syn__graph_fail(g, SYN_ERR_ARG, "rnn: hidden size %lld < 1", (long long)H);
    if (L > 64) return syn__graph_fail(g, SYN_ERR_ARG, "rnn: %d layers (at most 64)", L);
    if (cfg->dropout < 0.0f || cfg->dropout >= 1.0f)
        return syn__graph_fail(g, SYN_ERR_ARG, "rnn: dropout %g outside [0, 1)", cfg->dropout);
    if (x->shape.ndim != 3) return syn__graph_fail(g, SYN_ERR_SHAPE, "rnn: x must be (batch, time, features)");
    if (state0 && (state0->shape.ndim != 3 || state0->shape.dim[1] != L || state0->shape.dim[2] != S))
        return syn__graph_fail(g, SYN_ERR_SHAPE, "rnn: state0 must be (batch, %d layers, %lld)", L, (long long)S);
    syn__layer_name(g, mode_names[cfg->mode], name, base, sizeof base);
    float k = 1.0f / sqrtf((float)H);
    syn_init init = {SYN_INIT_UNIFORM, -k, k, 0};
    syn_node *h = x, *finals[64];
    for (int l = 0; l < L; l++) {
        if (l > 0 && cfg->dropout > 0.0f) h = syn_dropout(g, h, cfg->dropout);
        int64_t in = h ? h->shape.dim[2] : 0;
        snprintf(pn, sizeof pn, "%s.weight_ih_l%d", base, l);
        syn_node *wi = syn_param(g, pn, syn_shape2(G * H, in), &init);
        snprintf(pn, sizeof pn, "%s.weight_hh_l%d", base, l);
        syn_node *wh = syn_param(g, pn, syn_shape2(G * H, H), &init);
        syn_node *bi = NULL, *bh = NULL;
        if (!cfg->no_bias) {
            snprintf(pn, sizeof pn, "%s.bias_ih_l%d", base, l);
            bi = syn_param(g, pn, syn_shape1(G * H), &init);
            snprintf(pn, sizeof pn, "%s.bias_hh_l%d", base, l);
            bh = syn_param(g, pn, syn_shape1(G * H), &init);
        }
        syn_node *s0 = state0 ? syn_reshape(g, syn_slice(g, state0, 1, l, 1), syn_shape2(-1, S)) : NULL;
        syn_node *y = syn_rnn_op(g, cfg->mode, h, wi, wh, bi, bh, s0, lengths);
        if (!y) return NULL;
        if (state_out) finals[l] = syn_slice(g, y, 1, y->shape.dim[1] - 1, 1);
        h = cfg->mode == SYN_RNN_LSTM ? syn_slice(g, y, 2, 0, H) : y;
    }
    if (state_out) *state_out = L == 1 ? finals[0] : syn_concat(g, finals, L, 1);
    return h;
}
