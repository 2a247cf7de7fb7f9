/* Graph building for sequences: slice, embedding and the recurrent op (one
 * layer of a tanh/relu RNN, an LSTM or a GRU over a whole sequence). */
#include <stdio.h>
#include "../backend.h"

static syn_status infer_slice(syn_node *n, syn_shape *out, syn_dtype *dt) {
    const syn_shape *x = &n->in[0]->shape;
    int axis = syn__axis((int)n->i[0], x->ndim);
    if (axis < 0) return syn__shape_err(n, "axis out of range");
    int64_t start = n->i[1], len = n->i[2];
    if (start < 0 || len < 1 || start + len > x->dim[axis]) {
        char m[128];
        snprintf(m, sizeof m, "window [%lld, %lld) outside axis %d", (long long)start, (long long)(start + len), axis);
        return syn__shape_err(n, m);
    }
    *out = *x;
    out->dim[axis] = len;
    *dt = n->in[0]->dtype;
    return SYN_OK;
}

static syn_status infer_embedding(syn_node *n, syn_shape *out, syn_dtype *dt) {
    const syn_shape *idx = &n->in[0]->shape, *w = &n->in[1]->shape;
    if (n->in[0]->dtype != SYN_I32) return syn__shape_err(n, "the indices must be i32");
    if (n->in[1]->dtype != SYN_F32 || w->ndim != 2) return syn__shape_err(n, "the table must be f32 (V, D)");
    if (idx->ndim + 1 > SYN_MAX_DIMS) return syn__shape_err(n, "too many index dims");
    *out = *idx;
    out->dim[out->ndim++] = w->dim[1];
    *dt = SYN_F32;
    return SYN_OK;
}

static syn_status infer_rnn(syn_node *n, syn_shape *out, syn_dtype *dt) {
    int mode = (int)n->i[SYN_A_RNN_MODE];
    int64_t H = n->i[SYN_A_RNN_HIDDEN], G = syn__rnn_gates(mode), S = syn__rnn_state(mode, H);
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k]->dtype != (k == n->i[SYN_A_RNN_LENGTHS] && k ? SYN_I32 : SYN_F32))
            return syn__shape_err(n, k == n->i[SYN_A_RNN_LENGTHS] ? "lengths must be i32" : "x, weights, biases and state must be f32");
    const syn_shape *x = &n->in[0]->shape, *wi = &n->in[1]->shape, *wh = &n->in[2]->shape;
    if (x->ndim != 3) return syn__shape_err(n, "x must be (batch, time, features)");
    int64_t B = x->dim[0], T = x->dim[1], I = x->dim[2];
    if (wi->ndim != 2 || wi->dim[0] != G * H || wi->dim[1] != I) return syn__shape_err(n, "w_ih must be (gates*hidden, features)");
    if (wh->ndim != 2 || wh->dim[0] != G * H || wh->dim[1] != H) return syn__shape_err(n, "w_hh must be (gates*hidden, hidden)");
    if (n->i[SYN_A_RNN_BIAS])
        for (int k = 3; k < 5; k++)
            if (n->in[k]->shape.ndim != 1 || n->in[k]->shape.dim[0] != G * H)
                return syn__shape_err(n, "b_ih and b_hh must be (gates*hidden)");
    int st = (int)n->i[SYN_A_RNN_STATE], ln = (int)n->i[SYN_A_RNN_LENGTHS];
    if (st && (n->in[st]->shape.ndim != 2 || n->in[st]->shape.dim[0] != B || n->in[st]->shape.dim[1] != S))
        return syn__shape_err(n, mode == SYN_RNN_LSTM ? "state0 must be (batch, 2*hidden): h then c" : "state0 must be (batch, hidden)");
    if (ln && (n->in[ln]->shape.ndim != 1 || n->in[ln]->shape.dim[0] != B)) return syn__shape_err(n, "lengths must be (batch)");
    /* saved for the backward: the activated gates of every step, and for the
     * GRU the recurrent part of the candidate (W_hn h + b_hn) */
    n->aux_bytes = (size_t)(B * T) * (size_t)(G * H + (mode == SYN_RNN_GRU ? H : 0)) * sizeof(float);
    *out = syn_shape3(B, T, S);
    *dt = SYN_F32;
    return SYN_OK;
}

syn_status syn__infer_shape_rnn(syn_node *n, syn_shape *out, syn_dtype *dt) {
    n->aux_bytes = 0;
    switch (n->op) {
    case SYN_OP_SLICE: return infer_slice(n, out, dt);
    case SYN_OP_EMBEDDING: return infer_embedding(n, out, dt);
    case SYN_OP_RNN: return infer_rnn(n, out, dt);
    default: return syn__error(SYN_ERR_UNSUPPORTED, "%s: no shape rule", syn__op_name[n->op]);
    }
}

/* ---- builders ----------------------------------------------------------- */

syn_node *syn_slice(syn_graph *g, syn_node *a, int axis, int64_t start, int64_t length) {
    if (!g || g->err != SYN_OK) return NULL;
    int64_t iv[SYN_NODE_MAX_I] = {axis, start, length};
    return syn__graph_add(g, SYN_OP_SLICE, &a, 1, NULL, iv);
}

syn_node *syn_embedding_op(syn_graph *g, syn_node *idx, syn_node *weight) {
    if (!g || g->err != SYN_OK) return NULL;
    syn_node *in[2] = {idx, weight};
    return syn__graph_add(g, SYN_OP_EMBEDDING, in, 2, NULL, NULL);
}

syn_node *syn_rnn_op(syn_graph *g, syn_rnn_mode mode, syn_node *x, syn_node *w_ih, syn_node *w_hh, syn_node *b_ih,
                     syn_node *b_hh, syn_node *state0, syn_node *lengths) {
    if (!g || g->err != SYN_OK) return NULL;
    if ((unsigned)mode > SYN_RNN_GRU) return syn__graph_fail(g, SYN_ERR_ARG, "rnn: unknown mode %d", (int)mode);
    if (!x || !w_ih || !w_hh) return syn__graph_fail(g, SYN_ERR_ARG, "rnn: x, w_ih and w_hh are required");
    if (!b_ih != !b_hh) return syn__graph_fail(g, SYN_ERR_ARG, "rnn: give both biases or neither");
    syn_node *in[7] = {x, w_ih, w_hh};
    int k = 3;
    int64_t iv[SYN_NODE_MAX_I] = {0};
    iv[SYN_A_RNN_MODE] = mode;
    int G = syn__rnn_gates(mode);
    if (w_hh->shape.ndim != 2 || w_hh->shape.dim[0] % G)
        return syn__graph_fail(g, SYN_ERR_SHAPE, "rnn: w_hh must be (%d*hidden, hidden)", G);
    iv[SYN_A_RNN_HIDDEN] = w_hh->shape.dim[0] / G;
    if (b_ih) {
        in[k++] = b_ih;
        in[k++] = b_hh;
        iv[SYN_A_RNN_BIAS] = 1;
    }
    if (state0) {
        iv[SYN_A_RNN_STATE] = k;
        in[k++] = state0;
    }
    if (lengths) {
        iv[SYN_A_RNN_LENGTHS] = k;
        in[k++] = lengths;
    }
    return syn__graph_add(g, SYN_OP_RNN, in, k, NULL, iv);
}
