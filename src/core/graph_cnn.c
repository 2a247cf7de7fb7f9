/* Graph building for convolutional networks: conv2d, transposed conv2d,
 * pooling, batch and layer norm, dropout2d. Attributes live in the node's
 * integer slots; shape rules follow PyTorch's (floor mode for pooling). */
#include <stdio.h>
#include "../backend.h"

static int or1(int v) { return v > 0 ? v : 1; }

static syn_status need_f32(const syn_node *n, int k) {
    if (n->in[k]->dtype != SYN_F32)
        return syn__error(SYN_ERR_ARG, "%s: input %d is %s, expected f32", syn__op_name[n->op], k,
                          syn_dtype_name(n->in[k]->dtype));
    return SYN_OK;
}

static syn_status infer_conv(syn_node *n, syn_shape *out, bool transposed) {
    char m[160];
    if (n->n_in != 2 && n->n_in != 3)
        return syn__error(SYN_ERR_ARG, "%s: %d inputs given, 2 or 3 expected", syn__op_name[n->op], n->n_in);
    for (int k = 0; k < n->n_in; k++) SYN_TRY(need_f32(n, k));
    const syn_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape;
    if (x->ndim != 4 || w->ndim != 4) return syn__shape_err(n, "x and w must be 4-D (NCHW and KCRS)");
    int64_t G = n->i[SYN_A_GROUPS], C = x->dim[1];
    int64_t K = transposed ? w->dim[1] * G : w->dim[0];
    if (transposed ? w->dim[0] != C : w->dim[1] * G != C)
        return syn__shape_err(n, transposed ? "w.dim[0] must equal the input channels"
                                            : "w.dim[1] * groups must equal the input channels");
    if (C % G || K % G) return syn__shape_err(n, "channels are not divisible by groups");
    if (n->n_in == 3 && (n->in[2]->shape.ndim != 1 || n->in[2]->shape.dim[0] != K))
        return syn__shape_err(n, "the bias must be (out_channels)");
    int64_t R = w->dim[2], S = w->dim[3], P, Q;
    int64_t sh = n->i[SYN_A_SH], sw = n->i[SYN_A_SW], ph = n->i[SYN_A_PH], pw = n->i[SYN_A_PW], dh = n->i[SYN_A_DH], dw = n->i[SYN_A_DW];
    if (transposed) {
        if ((n->i[SYN_A_OPH] >= sh && n->i[SYN_A_OPH] >= dh) || (n->i[SYN_A_OPW] >= sw && n->i[SYN_A_OPW] >= dw))
            return syn__shape_err(n, "output padding must be < stride or dilation");
        P = (x->dim[2] - 1) * sh - 2 * ph + dh * (R - 1) + n->i[SYN_A_OPH] + 1;
        Q = (x->dim[3] - 1) * sw - 2 * pw + dw * (S - 1) + n->i[SYN_A_OPW] + 1;
    } else {
        P = (x->dim[2] + 2 * ph - dh * (R - 1) - 1) / sh + 1;
        Q = (x->dim[3] + 2 * pw - dw * (S - 1) - 1) / sw + 1;
        if (x->dim[2] + 2 * ph < dh * (R - 1) + 1 || x->dim[3] + 2 * pw < dw * (S - 1) + 1) P = Q = 0;
    }
    if (P < 1 || Q < 1) {
        snprintf(m, sizeof m, "the output would be empty (%lldx%lld)", (long long)P, (long long)Q);
        return syn__shape_err(n, m);
    }
    *out = syn_shape4(x->dim[0], K, P, Q);
    return SYN_OK;
}

static syn_status infer_pool(syn_node *n, syn_shape *out) {
    SYN_TRY(need_f32(n, 0));
    const syn_shape *x = &n->in[0]->shape;
    if (x->ndim != 4) return syn__shape_err(n, "x must be (N, C, H, W)");
    int64_t kh = n->i[SYN_A_KH], kw = n->i[SYN_A_KW];
    if (n->i[SYN_A_PH] * 2 > kh || n->i[SYN_A_PW] * 2 > kw) return syn__shape_err(n, "padding must be at most half the kernel");
    if (x->dim[2] + 2 * n->i[SYN_A_PH] < kh || x->dim[3] + 2 * n->i[SYN_A_PW] < kw)
        return syn__shape_err(n, "the window is larger than the padded input");
    int64_t P = (x->dim[2] + 2 * n->i[SYN_A_PH] - kh) / n->i[SYN_A_SH] + 1;
    int64_t Q = (x->dim[3] + 2 * n->i[SYN_A_PW] - kw) / n->i[SYN_A_SW] + 1;
    *out = syn_shape4(x->dim[0], x->dim[1], P, Q);
    return SYN_OK;
}

syn_status syn__infer_shape_cnn(syn_node *n, syn_shape *out, syn_dtype *dt) {
    *dt = SYN_F32;
    const syn_shape *x = &n->in[0]->shape;
    n->aux_bytes = 0;
    switch (n->op) {
    case SYN_OP_CONV2D: return infer_conv(n, out, false);
    case SYN_OP_CONV_TRANSPOSE2D: return infer_conv(n, out, true);
    case SYN_OP_MAX_POOL2D: case SYN_OP_AVG_POOL2D: return infer_pool(n, out);
    case SYN_OP_ADAPTIVE_AVG_POOL2D:
        SYN_TRY(need_f32(n, 0));
        if (x->ndim != 4) return syn__shape_err(n, "x must be (N, C, H, W)");
        *out = syn_shape4(x->dim[0], x->dim[1], n->i[0], n->i[1]);
        return SYN_OK;
    case SYN_OP_BATCH_NORM: {
        /* a 6th input, the residual z of a fused epilogue, is shaped as x */
        if (n->n_in != 5 && !(n->n_in == 6 && n->i[SYN_BN_ACT] != SYN_BN_ACT_NONE))
            return syn__error(SYN_ERR_ARG, "batch_norm: %d inputs given, 5 expected", n->n_in);
        for (int k = 0; k < n->n_in; k++) SYN_TRY(need_f32(n, k));
        if (x->ndim < 2) return syn__shape_err(n, "x must be (N, C, ...)");
        for (int k = 1; k < 5; k++)
            if (n->in[k]->shape.ndim != 1 || n->in[k]->shape.dim[0] != x->dim[1])
                return syn__shape_err(n, "gamma, beta and the running statistics must be (C)");
        if (n->n_in == 6 && !syn_shape_equal(&n->in[5]->shape, x)) return syn__shape_err(n, "z must be shaped as x");
        n->aux_bytes = 2 * (size_t)x->dim[1] * sizeof(float); /* batch mean, 1/sqrt(var + eps) */
        *out = *x;
        return SYN_OK;
    }
    case SYN_OP_LAYER_NORM: {
        for (int k = 0; k < 3; k++) SYN_TRY(need_f32(n, k));
        if (x->ndim < 1) return syn__shape_err(n, "x must have a last dim");
        int64_t D = x->dim[x->ndim - 1];
        for (int k = 1; k < 3; k++)
            if (n->in[k]->shape.ndim != 1 || n->in[k]->shape.dim[0] != D)
                return syn__shape_err(n, "gamma and beta must be (D), D the last dim of x");
        n->aux_bytes = 2 * (size_t)(syn_shape_numel(x) / (D ? D : 1)) * sizeof(float); /* per row */
        *out = *x;
        return SYN_OK;
    }
    case SYN_OP_DROPOUT2D:
        SYN_TRY(need_f32(n, 0));
        if (x->ndim < 3) return syn__shape_err(n, "x must be (N, C, ...)");
        *out = *x;
        return SYN_OK;
    default:
        return syn__infer_shape_rnn(n, out, dt);
    }
}

/* ---- builders ----------------------------------------------------------- */

static bool bad_params(syn_graph *g, const char *op, const syn_conv_params *p) {
    if (!p) return false;
    if (p->stride_h < 0 || p->stride_w < 0 || p->pad_h < 0 || p->pad_w < 0 || p->dilation_h < 0 ||
        p->dilation_w < 0 || p->groups < 0 || p->out_pad_h < 0 || p->out_pad_w < 0) {
        syn__graph_fail(g, SYN_ERR_ARG, "%s: negative stride, padding, dilation or groups", op);
        return true;
    }
    return false;
}

static syn_node *conv(syn_graph *g, syn_op op, syn_node *x, syn_node *w, syn_node *b, const syn_conv_params *p) {
    if (!g || g->err != SYN_OK) return NULL;
    if (bad_params(g, syn__op_name[op], p)) return NULL;
    syn_conv_params d = p ? *p : (syn_conv_params){0};
    int64_t iv[SYN_NODE_MAX_I] = {0};
    iv[SYN_A_SH] = or1(d.stride_h);
    iv[SYN_A_SW] = or1(d.stride_w);
    iv[SYN_A_PH] = d.pad_h;
    iv[SYN_A_PW] = d.pad_w;
    iv[SYN_A_DH] = or1(d.dilation_h);
    iv[SYN_A_DW] = or1(d.dilation_w);
    iv[SYN_A_GROUPS] = or1(d.groups);
    iv[SYN_A_OPH] = d.out_pad_h;
    iv[SYN_A_OPW] = d.out_pad_w;
    syn_node *in[3] = {x, w, b};
    return syn__graph_add(g, op, in, b ? 3 : 2, NULL, iv);
}

syn_node *syn_conv2d_op(syn_graph *g, syn_node *x, syn_node *w, syn_node *b, const syn_conv_params *p) {
    return conv(g, SYN_OP_CONV2D, x, w, b, p);
}
syn_node *syn_conv_transpose2d_op(syn_graph *g, syn_node *x, syn_node *w, syn_node *b, const syn_conv_params *p) {
    return conv(g, SYN_OP_CONV_TRANSPOSE2D, x, w, b, p);
}

static syn_node *pool(syn_graph *g, syn_op op, syn_node *x, int kh, int kw, int sh, int sw, int ph, int pw, bool incl) {
    if (!g || g->err != SYN_OK) return NULL;
    if (kh < 1 || kw < 1 || sh < 0 || sw < 0 || ph < 0 || pw < 0)
        return syn__graph_fail(g, SYN_ERR_ARG, "%s: kernel %dx%d, stride %dx%d, padding %dx%d", syn__op_name[op], kh,
                               kw, sh, sw, ph, pw);
    int64_t iv[SYN_NODE_MAX_I] = {0};
    iv[SYN_A_KH] = kh;
    iv[SYN_A_KW] = kw;
    iv[SYN_A_SH] = sh ? sh : kh;
    iv[SYN_A_SW] = sw ? sw : kw;
    iv[SYN_A_PH] = ph;
    iv[SYN_A_PW] = pw;
    iv[SYN_A_INCL] = incl;
    return syn__graph_add(g, op, &x, 1, NULL, iv);
}

syn_node *syn_max_pool2d(syn_graph *g, syn_node *x, int kh, int kw, int sh, int sw, int ph, int pw) {
    return pool(g, SYN_OP_MAX_POOL2D, x, kh, kw, sh, sw, ph, pw, false);
}
syn_node *syn_avg_pool2d(syn_graph *g, syn_node *x, int kh, int kw, int sh, int sw, int ph, int pw,
                         bool count_include_pad) {
    return pool(g, SYN_OP_AVG_POOL2D, x, kh, kw, sh, sw, ph, pw, count_include_pad);
}

syn_node *syn_adaptive_avg_pool2d(syn_graph *g, syn_node *x, int oh, int ow) {
    if (!g || g->err != SYN_OK) return NULL;
    if (oh < 1 || ow < 1) return syn__graph_fail(g, SYN_ERR_ARG, "adaptive_avg_pool2d: output %dx%d", oh, ow);
    int64_t iv[SYN_NODE_MAX_I] = {oh, ow};
    return syn__graph_add(g, SYN_OP_ADAPTIVE_AVG_POOL2D, &x, 1, NULL, iv);
}

syn_node *syn_global_avg_pool(syn_graph *g, syn_node *x) {
    if (g && g->err == SYN_OK && x && x->shape.ndim != 4) {
        char sb[128];
        return syn__graph_fail(g, SYN_ERR_SHAPE, "global_avg_pool: x must be (N, C, H, W), not %s",
                               syn_shape_str(&x->shape, sb, sizeof sb));
    }
    return syn_mean(g, x, SYN_AXIS(2) | SYN_AXIS(3), false);
}

syn_node *syn_batch_norm_op(syn_graph *g, syn_node *x, syn_node *gamma, syn_node *beta, syn_node *running_mean,
                            syn_node *running_var, float momentum, float eps) {
    if (!g || g->err != SYN_OK) return NULL;
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(eps > 0.0f))
        return syn__graph_fail(g, SYN_ERR_ARG, "batch_norm: momentum %g outside [0, 1] or eps %g <= 0", momentum, eps);
    syn_node *in[5] = {x, gamma, beta, running_mean, running_var};
    float f[SYN_NODE_MAX_F] = {momentum, eps};
    return syn__graph_add(g, SYN_OP_BATCH_NORM, in, 5, f, NULL);
}

syn_node *syn_layer_norm_op(syn_graph *g, syn_node *x, syn_node *gamma, syn_node *beta, float eps) {
    if (!g || g->err != SYN_OK) return NULL;
    if (!(eps > 0.0f)) return syn__graph_fail(g, SYN_ERR_ARG, "layer_norm: eps %g <= 0", eps);
    syn_node *in[3] = {x, gamma, beta};
    float f[SYN_NODE_MAX_F] = {eps};
    return syn__graph_add(g, SYN_OP_LAYER_NORM, in, 3, f, NULL);
}

syn_node *syn_dropout2d(syn_graph *g, syn_node *x, float p) {
    if (g && g->err == SYN_OK && !(p >= 0.0f && p < 1.0f))
        return syn__graph_fail(g, SYN_ERR_ARG, "dropout2d: p = %g outside [0, 1)", p);
    float f[SYN_NODE_MAX_F] = {p};
    return syn__graph_add(g, SYN_OP_DROPOUT2D, &x, 1, f, NULL);
}
