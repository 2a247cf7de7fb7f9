/* Graph building: leaves, ops and shape inference. Shapes are inferred and
 * checked when a node is added, and again from the current input shapes when
 * a partial batch is fed (syn__infer_shape is the one rule for both). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../backend.h"

syn_status syn_graph_create(syn_params *params, syn_graph **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_graph_create: out is NULL");
    syn_graph *g = syn__calloc(1, sizeof *g, "syn_graph_create");
    if (!g) return SYN_ERR_OOM;
    g->params = params;
    g->training = true;
    *out = g;
    return SYN_OK;
}

void syn_graph_free(syn_graph *g) {
    if (!g) return;
    syn__profile_free(g); /* before the plan: its device marks need the backend */
    syn__replay_free(g);
    syn__memplan_free(g);
    for (int i = 0; i < g->n; i++) {
        free(g->nodes[i]->in);
        free(g->nodes[i]->name);
        free(g->nodes[i]);
    }
    free(g->nodes);
    free(g->mark);
    free(g);
}

void syn_graph_use_params(syn_graph *g, syn_params *params) {
    if (g) g->params = params;
}
syn_params *syn_graph_params(const syn_graph *g) { return g ? g->params : NULL; }
syn_status syn_graph_status(const syn_graph *g) { return g ? g->err : SYN_ERR_ARG; }
int syn_graph_node_count(const syn_graph *g) { return g ? g->n : 0; }

static _Thread_local char fail_msg[1024];

syn_node *syn__graph_fail(syn_graph *g, syn_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
    syn__error(s, "%s", fail_msg);
    syn__graph_record(g, s);
    return NULL;
}

void syn__graph_record(syn_graph *g, syn_status s) {
    if (!g || g->err != SYN_OK) return;
    g->err = s;
    snprintf(g->err_msg, sizeof g->err_msg, "%s", syn_last_error());
}

const char *syn__layer_name(syn_graph *g, const char *prefix, const char *given, char *buf, size_t size) {
    if (given && *given) snprintf(buf, size, "%s", given);
    else snprintf(buf, size, "%s%d", prefix, g->layer_count);
    g->layer_count++;
    return buf;
}

/* Builds the node; arity and NULL inputs are checked here, shapes by
 * syn__infer_shape. */
static syn_node *new_node(syn_graph *g, syn_op op, syn_node *const *in, int n_in) {
    if (!g) {
        syn__error(SYN_ERR_ARG, "%s: graph is NULL", syn__op_name[op]);
        return NULL;
    }
    if (g->compiled) return syn__graph_fail(g, SYN_ERR_ARG, "%s: the graph is already compiled", syn__op_name[op]);
    for (int k = 0; k < n_in; k++) {
        if (!in[k]) {
            /* An earlier failure propagates; a fresh NULL is an argument error. */
            if (g->err == SYN_OK) syn__graph_fail(g, SYN_ERR_ARG, "%s: input %d is NULL", syn__op_name[op], k);
            return NULL;
        }
        if (in[k]->g != g)
            return syn__graph_fail(g, SYN_ERR_ARG, "%s: input %d belongs to another graph", syn__op_name[op], k);
    }
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        syn_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) return syn__graph_fail(g, SYN_ERR_OOM, "%s: cannot grow the graph to %d nodes", syn__op_name[op], cap);
        g->nodes = nodes;
        g->cap = cap;
    }
    syn_node *n = calloc(1, sizeof *n);
    syn_node **ins = calloc((size_t)(n_in ? n_in : 1), sizeof *ins);
    if (!n || !ins) {
        free(n);
        free(ins);
        return syn__graph_fail(g, SYN_ERR_OOM, "%s: cannot allocate a node", syn__op_name[op]);
    }
    if (n_in) memcpy(ins, in, (size_t)n_in * sizeof *ins);
    n->g = g;
    n->op = op;
    n->in = ins;
    n->n_in = n_in;
    n->value_buf = n->grad_buf = n->aux_buf = -1;
    return n;
}

static void push(syn_graph *g, syn_node *n) {
    n->id = g->n;
    g->nodes[g->n++] = n;
}

static void drop(syn_node *n) {
    free(n->in);
    free(n->name);
    free(n);
}

/* A node needs a gradient when one of its inputs does, unless its op stops
 * gradients (detach). */
static void inherit_requires_grad(syn_node *n) {
    if (syn__op_flags[n->op] & SYN_NO_GRAD) return;
    for (int k = 0; k < n->n_in; k++) n->requires_grad |= n->in[k]->requires_grad;
}

syn_node *syn__graph_add(syn_graph *g, syn_op op, syn_node *const *in, int n_in, const float *f, const int64_t *iv) {
    if (g && g->err != SYN_OK) return NULL;
    syn_node *n = new_node(g, op, in, n_in);
    if (!n) return NULL;
    if (f) memcpy(n->f, f, sizeof n->f);
    if (iv) memcpy(n->i, iv, sizeof n->i);
    syn_status s = syn__infer_shape(n, &n->shape, &n->dtype);
    if (s != SYN_OK) {
        drop(n);
        syn__graph_record(g, s);
        return NULL;
    }
    n->cap_shape = n->shape;
    inherit_requires_grad(n);
    push(g, n);
    return n;
}

syn_node *syn_input(syn_graph *g, const char *name, syn_dtype dt, syn_shape shape) {
    char sb[128];
    if (g && g->err != SYN_OK) return NULL;
    syn_node *n = new_node(g, SYN_OP_INPUT, NULL, 0);
    if (!n) return NULL;
    if (dt != SYN_F32 && dt != SYN_I32) {
        drop(n);
        return syn__graph_fail(g, SYN_ERR_UNSUPPORTED, "input '%s': dtype %s (f32 and i32 are supported)",
                               name ? name : "?", syn_dtype_name(dt));
    }
    if (shape.ndim < 1 || shape.ndim > SYN_MAX_DIMS) {
        drop(n);
        return syn__graph_fail(g, SYN_ERR_SHAPE, "input '%s': %d dims, 1..%d expected", name ? name : "?", shape.ndim,
                               SYN_MAX_DIMS);
    }
    /* checked dim by dim: the product of absurd dims must not overflow */
    int64_t total = 1;
    for (int i = 0; i < shape.ndim; i++) {
        int64_t d = shape.dim[i];
        if (d <= 0) {
            drop(n);
            return syn__graph_fail(g, SYN_ERR_SHAPE, "input '%s': shape %s must have positive dims", name ? name : "?",
                                   syn_shape_str(&shape, sb, sizeof sb));
        }
        if (d > (INT64_C(1) << 40) || total > (INT64_C(1) << 46) / d) {
            drop(n);
            return syn__graph_fail(g, SYN_ERR_SHAPE, "input '%s': dim %d of %s is out of range", name ? name : "?", i,
                                   syn_shape_str(&shape, sb, sizeof sb));
        }
        total *= d;
    }
    if (!(n->name = strdup(name ? name : "input"))) {
        drop(n);
        return syn__graph_fail(g, SYN_ERR_OOM, "input '%s': its name", name ? name : "input");
    }
    n->shape = n->cap_shape = shape;
    n->dtype = dt;
    n->keep = true;
    push(g, n);
    return n;
}

syn_node *syn_param(syn_graph *g, const char *name, syn_shape shape, const syn_init *init) {
    if (g && g->err != SYN_OK) return NULL;
    syn_node *n = new_node(g, SYN_OP_PARAM, NULL, 0);
    if (!n) return NULL;
    if (!g->params) {
        drop(n);
        return syn__graph_fail(g, SYN_ERR_ARG, "parameter '%s': the graph has no parameter set", name ? name : "?");
    }
    if (!(n->name = strdup(name ? name : ""))) {
        drop(n);
        return syn__graph_fail(g, SYN_ERR_OOM, "parameter '%s': its name", name ? name : "?");
    }
    syn_status s = syn_params_add(g->params, name, shape, init, NULL);
    if (s != SYN_OK) {
        drop(n);
        syn__graph_record(g, s);
        return NULL;
    }
    n->param_set = g->params;
    n->shape = n->cap_shape = shape;
    n->dtype = SYN_F32;
    n->requires_grad = true;
    n->keep = true;
    push(g, n);
    return n;
}

/* ---- shape inference ---------------------------------------------------- */

syn_status syn__shape_err(const syn_node *n, const char *what) {
    char list[400] = "", sb[128];
    size_t k = 0;
    for (int i = 0; i < n->n_in && i < 3 && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? (i + 1 == n->n_in ? " and " : ", ") : "",
                              syn_shape_str(&n->in[i]->shape, sb, sizeof sb));
    return syn__error(SYN_ERR_SHAPE, "%s: %s (inputs %s)", syn__op_name[n->op], what, list);
}

static syn_status need_f32(const syn_node *n, int k) {
    if (n->in[k]->dtype != SYN_F32)
        return syn__error(SYN_ERR_ARG, "%s: input %d is %s, expected f32", syn__op_name[n->op], k,
                          syn_dtype_name(n->in[k]->dtype));
    return SYN_OK;
}

static syn_status infer_broadcast(const syn_node *n, syn_shape *out) {
    const syn_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da != db && da != 1 && db != 1) return syn__shape_err(n, "shapes do not broadcast");
        out->dim[i] = da == 1 ? db : da;
    }
    return SYN_OK;
}

static syn_status infer_reshape(const syn_node *n, syn_shape *out) {
    const syn_shape *x = &n->in[0]->shape;
    int64_t numel = syn_shape_numel(x);
    out->ndim = (int)n->i[0];
    int64_t rest = 1;
    for (int d = 1; d < out->ndim; d++) {
        out->dim[d] = n->i[1 + d];
        rest *= out->dim[d];
    }
    out->dim[0] = n->i[1];
    if (syn_shape_numel(out) == numel) return SYN_OK;
    if (n->i[7] && rest > 0 && numel % rest == 0) { /* the leading dim follows the batch */
        out->dim[0] = numel / rest;
        return SYN_OK;
    }
    return syn__shape_err(n, "the element count changes");
}

syn_status syn__infer_shape(syn_node *n, syn_shape *out, syn_dtype *dt) {
    syn_node *const *in = n->in;
    const syn_shape *x = n->n_in ? &in[0]->shape : NULL;
    *dt = SYN_F32;
    int arity = syn__op_arity[n->op];
    if (arity >= 0 && n->n_in != arity)
        return syn__error(SYN_ERR_ARG, "%s: %d inputs given, %d expected", syn__op_name[n->op], n->n_in, arity);
    switch (n->op) {
    case SYN_OP_ADD: case SYN_OP_SUB: case SYN_OP_MUL: case SYN_OP_DIV:
        SYN_TRY(need_f32(n, 0));
        SYN_TRY(need_f32(n, 1));
        return infer_broadcast(n, out);
    case SYN_OP_ADD_SCALAR: case SYN_OP_MUL_SCALAR: case SYN_OP_POW_SCALAR:
    case SYN_OP_RELU: case SYN_OP_LEAKY_RELU: case SYN_OP_SIGMOID: case SYN_OP_TANH: case SYN_OP_GELU:
    case SYN_OP_DROPOUT: case SYN_OP_DETACH:
        SYN_TRY(need_f32(n, 0));
        *out = *x;
        return SYN_OK;
    case SYN_OP_SOFTMAX: case SYN_OP_LOG_SOFTMAX:
        SYN_TRY(need_f32(n, 0));
        if (x->ndim < 1 || n->i[0] < 0 || n->i[0] >= x->ndim) return syn__shape_err(n, "axis out of range");
        *out = *x;
        return SYN_OK;
    case SYN_OP_MATMUL: {
        SYN_TRY(need_f32(n, 0));
        SYN_TRY(need_f32(n, 1));
        const syn_shape *b = &in[1]->shape;
        if (x->ndim < 2 || b->ndim < 2) return syn__shape_err(n, "both operands need at least 2 dims");
        if (x->dim[x->ndim - 1] != b->dim[b->ndim - 2]) return syn__shape_err(n, "inner dims differ");
        if (b->ndim != 2) {
            if (b->ndim != x->ndim) return syn__shape_err(n, "batch dims differ");
            for (int d = 0; d < x->ndim - 2; d++)
                if (x->dim[d] != b->dim[d]) return syn__shape_err(n, "batch dims differ");
        }
        *out = *x;
        out->dim[x->ndim - 1] = b->dim[b->ndim - 1];
        return SYN_OK;
    }
    case SYN_OP_LINEAR: {
        if (n->n_in != 2 && n->n_in != 3)
            return syn__error(SYN_ERR_ARG, "linear: %d inputs given, 2 or 3 expected", n->n_in);
        for (int k = 0; k < n->n_in; k++) SYN_TRY(need_f32(n, k));
        const syn_shape *w = &in[1]->shape;
        if (x->ndim < 1 || w->ndim != 2 || x->dim[x->ndim - 1] != w->dim[1])
            return syn__shape_err(n, "x must be (..., in) and w (out, in)");
        if (n->n_in == 3 && (in[2]->shape.ndim != 1 || in[2]->shape.dim[0] != w->dim[0]))
            return syn__shape_err(n, "bias must be (out)");
        *out = *x;
        out->dim[x->ndim - 1] = w->dim[0];
        return SYN_OK;
    }
    case SYN_OP_SUM: case SYN_OP_MEAN: {
        SYN_TRY(need_f32(n, 0));
        unsigned axes = (unsigned)n->i[0];
        int keep = (int)n->i[1];
        if (axes == 0 || (axes >> x->ndim) != 0) return syn__shape_err(n, "axes out of range");
        out->ndim = 0;
        for (int d = 0; d < x->ndim; d++) {
            if (axes & (1u << d)) {
                if (keep) out->dim[out->ndim++] = 1;
            } else {
                out->dim[out->ndim++] = x->dim[d];
            }
        }
        return SYN_OK;
    }
    case SYN_OP_RESHAPE:
        *dt = in[0]->dtype;
        return infer_reshape(n, out);
    case SYN_OP_TRANSPOSE: {
        *dt = in[0]->dtype;
        unsigned seen = 0;
        out->ndim = x->ndim;
        for (int d = 0; d < x->ndim; d++) {
            int64_t p = n->i[d];
            if (p < 0 || p >= x->ndim || (seen & (1u << p))) return syn__shape_err(n, "perm is not a permutation of the axes");
            seen |= 1u << p;
            out->dim[d] = x->dim[p];
        }
        return SYN_OK;
    }
    case SYN_OP_CONCAT: {
        int axis = (int)n->i[0];
        if (n->n_in < 1) return syn__error(SYN_ERR_ARG, "concat: no inputs");
        if (axis < 0 || axis >= x->ndim) return syn__shape_err(n, "axis out of range");
        *out = *x;
        out->dim[axis] = 0;
        for (int k = 0; k < n->n_in; k++) {
            SYN_TRY(need_f32(n, k));
            const syn_shape *s = &in[k]->shape;
            if (s->ndim != x->ndim) return syn__shape_err(n, "inputs differ in ndim");
            for (int d = 0; d < x->ndim; d++)
                if (d != axis && s->dim[d] != x->dim[d]) {
                    char a[128], b[128];
                    return syn__error(SYN_ERR_SHAPE, "concat: input %d has shape %s, input 0 %s: only dim %d may differ", k,
                                      syn_shape_str(s, a, sizeof a), syn_shape_str(x, b, sizeof b), axis);
                }
            out->dim[axis] += s->dim[axis];
        }
        return SYN_OK;
    }
    case SYN_OP_MSE_LOSS: case SYN_OP_SSE_LOSS: case SYN_OP_BCE_WITH_LOGITS:
        SYN_TRY(need_f32(n, 0));
        SYN_TRY(need_f32(n, 1));
        if (!syn_shape_equal(x, &in[1]->shape)) return syn__shape_err(n, "prediction and target shapes differ");
        *out = syn_shape0();
        return SYN_OK;
    case SYN_OP_CROSS_ENTROPY:
        SYN_TRY(need_f32(n, 0));
        if (in[1]->dtype != SYN_I32) return syn__error(SYN_ERR_ARG, "cross_entropy: labels must be i32");
        if (x->ndim != 2 || in[1]->shape.ndim != 1 || in[1]->shape.dim[0] != x->dim[0])
            return syn__shape_err(n, "logits must be (N, C) and labels (N)");
        *out = syn_shape0();
        return SYN_OK;
    default:
        return syn__infer_shape_cnn(n, out, dt);
    }
}

/* ---- builders ----------------------------------------------------------- */

static syn_node *unary(syn_graph *g, syn_op op, syn_node *a, float f0) {
    float f[SYN_NODE_MAX_F] = {f0};
    return syn__graph_add(g, op, &a, 1, f, NULL);
}
static syn_node *binary(syn_graph *g, syn_op op, syn_node *a, syn_node *b) {
    syn_node *in[2] = {a, b};
    return syn__graph_add(g, op, in, 2, NULL, NULL);
}

syn_node *syn_add(syn_graph *g, syn_node *a, syn_node *b) { return binary(g, SYN_OP_ADD, a, b); }
syn_node *syn_sub(syn_graph *g, syn_node *a, syn_node *b) { return binary(g, SYN_OP_SUB, a, b); }
syn_node *syn_mul(syn_graph *g, syn_node *a, syn_node *b) { return binary(g, SYN_OP_MUL, a, b); }
syn_node *syn_div(syn_graph *g, syn_node *a, syn_node *b) { return binary(g, SYN_OP_DIV, a, b); }
syn_node *syn_add_scalar(syn_graph *g, syn_node *a, float c) { return unary(g, SYN_OP_ADD_SCALAR, a, c); }
syn_node *syn_mul_scalar(syn_graph *g, syn_node *a, float c) { return unary(g, SYN_OP_MUL_SCALAR, a, c); }
syn_node *syn_pow_scalar(syn_graph *g, syn_node *a, float c) { return unary(g, SYN_OP_POW_SCALAR, a, c); }
syn_node *syn_matmul(syn_graph *g, syn_node *a, syn_node *b) { return binary(g, SYN_OP_MATMUL, a, b); }

syn_node *syn_linear_op(syn_graph *g, syn_node *x, syn_node *w, syn_node *b) {
    syn_node *in[3] = {x, w, b};
    return syn__graph_add(g, SYN_OP_LINEAR, in, b ? 3 : 2, NULL, NULL);
}

syn_node *syn_relu(syn_graph *g, syn_node *a) { return unary(g, SYN_OP_RELU, a, 0); }
syn_node *syn_leaky_relu(syn_graph *g, syn_node *a, float slope) { return unary(g, SYN_OP_LEAKY_RELU, a, slope); }
syn_node *syn_sigmoid(syn_graph *g, syn_node *a) { return unary(g, SYN_OP_SIGMOID, a, 0); }
syn_node *syn_tanh(syn_graph *g, syn_node *a) { return unary(g, SYN_OP_TANH, a, 0); }
syn_node *syn_gelu(syn_graph *g, syn_node *a) { return unary(g, SYN_OP_GELU, a, 0); }
syn_node *syn_detach(syn_graph *g, syn_node *a) { return unary(g, SYN_OP_DETACH, a, 0); }

syn_node *syn_dropout(syn_graph *g, syn_node *a, float p) {
    if (g && g->err == SYN_OK && !(p >= 0.0f && p < 1.0f))
        return syn__graph_fail(g, SYN_ERR_ARG, "dropout: p = %g outside [0, 1)", p);
    return unary(g, SYN_OP_DROPOUT, a, p);
}

static syn_node *axis_op(syn_graph *g, syn_op op, syn_node *a, int axis) {
    if (g && g->err == SYN_OK && a) {
        int ax = syn__axis(axis, a->shape.ndim);
        char sb[128];
        if (ax < 0)
            return syn__graph_fail(g, SYN_ERR_SHAPE, "%s: axis %d out of range for input %s", syn__op_name[op], axis,
                                   syn_shape_str(&a->shape, sb, sizeof sb));
        axis = ax;
    }
    int64_t iv[SYN_NODE_MAX_I] = {axis};
    return syn__graph_add(g, op, &a, 1, NULL, iv);
}
syn_node *syn_softmax(syn_graph *g, syn_node *a, int axis) { return axis_op(g, SYN_OP_SOFTMAX, a, axis); }
syn_node *syn_log_softmax(syn_graph *g, syn_node *a, int axis) { return axis_op(g, SYN_OP_LOG_SOFTMAX, a, axis); }

static syn_node *reduce(syn_graph *g, syn_op op, syn_node *a, unsigned axes, bool keepdim) {
    if (a && axes == SYN_ALL_AXES) axes = (1u << a->shape.ndim) - 1;
    if (a && a->shape.ndim == 0 && g && g->err == SYN_OK)
        return syn__graph_fail(g, SYN_ERR_SHAPE, "%s: input is already a scalar", syn__op_name[op]);
    int64_t iv[SYN_NODE_MAX_I] = {(int64_t)axes, keepdim};
    return syn__graph_add(g, op, &a, 1, NULL, iv);
}
syn_node *syn_sum(syn_graph *g, syn_node *a, unsigned axes, bool keepdim) { return reduce(g, SYN_OP_SUM, a, axes, keepdim); }
syn_node *syn_mean(syn_graph *g, syn_node *a, unsigned axes, bool keepdim) { return reduce(g, SYN_OP_MEAN, a, axes, keepdim); }

syn_node *syn_reshape(syn_graph *g, syn_node *a, syn_shape shape) {
    char sb[128], ab[128];
    if (!g || g->err != SYN_OK || !a) return syn__graph_add(g, SYN_OP_RESHAPE, &a, 1, NULL, NULL);
    if (shape.ndim < 1 || shape.ndim > SYN_MAX_DIMS)
        return syn__graph_fail(g, SYN_ERR_SHAPE, "reshape: target ndim %d outside 1..%d", shape.ndim, SYN_MAX_DIMS);
    int64_t numel = syn_shape_numel(&a->shape), known = 1;
    int infer = -1;
    bool fits = true; /* known stays <= numel: absurd dims cannot overflow it */
    for (int d = 0; d < shape.ndim; d++) {
        if (shape.dim[d] == -1 && infer < 0) infer = d;
        else if (shape.dim[d] <= 0)
            return syn__graph_fail(g, SYN_ERR_SHAPE, "reshape: bad target %s", syn_shape_str(&shape, sb, sizeof sb));
        else if (known > numel / shape.dim[d]) fits = false;
        else known *= shape.dim[d];
    }
    int64_t iv[SYN_NODE_MAX_I] = {shape.ndim};
    bool follow = infer == 0 || (shape.dim[0] == a->shape.dim[0] && a->shape.ndim > 0);
    /* at build time the counts must match exactly; only a later partial
     * batch may change the leading dim */
    if (!fits || (infer >= 0 ? numel % known != 0 : known != numel))
        return syn__graph_fail(g, SYN_ERR_SHAPE, "reshape: the %" PRId64 " elements of %s do not fit %s", numel,
                               syn_shape_str(&a->shape, ab, sizeof ab), syn_shape_str(&shape, sb, sizeof sb));
    if (infer >= 0) shape.dim[infer] = numel / known;
    for (int d = 0; d < shape.ndim; d++) iv[1 + d] = shape.dim[d];
    iv[7] = follow;
    return syn__graph_add(g, SYN_OP_RESHAPE, &a, 1, NULL, iv);
}

syn_node *syn_flatten(syn_graph *g, syn_node *a) {
    if (!a) return syn_reshape(g, a, syn_shape2(-1, 1));
    int64_t rest = 1;
    for (int d = 1; d < a->shape.ndim; d++) rest *= a->shape.dim[d];
    return syn_reshape(g, a, syn_shape2(-1, rest));
}

syn_node *syn_transpose(syn_graph *g, syn_node *a, const int *perm) {
    int64_t iv[SYN_NODE_MAX_I] = {0};
    if (g && g->err == SYN_OK && (!perm || !a)) return syn__graph_fail(g, SYN_ERR_ARG, "transpose: NULL %s", perm ? "input" : "perm");
    for (int d = 0; a && d < a->shape.ndim; d++) iv[d] = perm[d];
    return syn__graph_add(g, SYN_OP_TRANSPOSE, &a, 1, NULL, iv);
}

syn_node *syn_concat(syn_graph *g, syn_node *const *xs, int n, int axis) {
    if (g && g->err == SYN_OK && (!xs || n < 1)) return syn__graph_fail(g, SYN_ERR_ARG, "concat: no inputs");
    if (g && g->err == SYN_OK && xs[0]) {
        int ax = syn__axis(axis, xs[0]->shape.ndim);
        if (ax < 0) return syn__graph_fail(g, SYN_ERR_SHAPE, "concat: axis %d out of range", axis);
        axis = ax;
    }
    int64_t iv[SYN_NODE_MAX_I] = {axis};
    return syn__graph_add(g, SYN_OP_CONCAT, xs, n, NULL, iv);
}

syn_node *syn_mse_loss(syn_graph *g, syn_node *p, syn_node *t) { return binary(g, SYN_OP_MSE_LOSS, p, t); }
syn_node *syn_sse_loss(syn_graph *g, syn_node *p, syn_node *t) { return binary(g, SYN_OP_SSE_LOSS, p, t); }
syn_node *syn_cross_entropy(syn_graph *g, syn_node *l, syn_node *y) { return binary(g, SYN_OP_CROSS_ENTROPY, l, y); }
syn_node *syn_bce_with_logits(syn_graph *g, syn_node *l, syn_node *t) { return binary(g, SYN_OP_BCE_WITH_LOGITS, l, t); }

syn_shape syn_node_shape(const syn_node *n) { return n ? n->cap_shape : syn_shape0(); }
syn_dtype syn_node_dtype(const syn_node *n) { return n ? n->dtype : SYN_F32; }
const char *syn_node_op_name(const syn_node *n) { return n ? syn__node_label(n) : "?"; }

syn_status syn_graph_keep(syn_graph *g, syn_node *n) {
    if (!g || !n || n->g != g) return syn__error(SYN_ERR_ARG, "syn_graph_keep: node not of this graph");
    if (g->compiled) return syn__error(SYN_ERR_ARG, "syn_graph_keep: call before syn_graph_compile");
    n->keep = true;
    return SYN_OK;
}

/* The input differentiable: it and every node that depends on it (not
 * through a detach) need gradients, by the rule nodes were built with; nodes
 * come in topological order. */
syn_status syn_graph_input_grad(syn_graph *g, syn_node *x) {
    if (!g || !x || x->g != g) return syn__error(SYN_ERR_ARG, "syn_graph_input_grad: node not of this graph");
    if (g->compiled) return syn__error(SYN_ERR_ARG, "syn_graph_input_grad: call before syn_graph_compile");
    if (x->op != SYN_OP_INPUT || x->dtype != SYN_F32)
        return syn__error(SYN_ERR_ARG, "syn_graph_input_grad: node %d (%s, %s) is not an f32 input", x->id,
                          syn__op_name[x->op], syn_dtype_name(x->dtype));
    x->requires_grad = true;
    for (int i = x->id + 1; i < g->n; i++) inherit_requires_grad(g->nodes[i]);
    return SYN_OK;
}
