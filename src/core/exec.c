/* The executor: compile (kernel lookup, memory plan), feed, forward, backward
 * and reading results. It reaches kernels only through the backend table. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include "../backend.h"

syn_status syn_graph_compile(syn_graph *g, syn_device dev, const syn_compile_opts *opts) {
    if (!g) return syn__error(SYN_ERR_ARG, "syn_graph_compile: graph is NULL");
    if (g->err != SYN_OK) return syn__error(g->err, "syn_graph_compile: the graph has a build error: %s", g->err_msg);
    if (g->compiled) return syn__error(SYN_ERR_ARG, "syn_graph_compile: already compiled");
    if (g->n == 0) return syn__error(SYN_ERR_ARG, "syn_graph_compile: the graph is empty");
    syn_backend *be;
    char db[32], pb[32];
    SYN_TRY(syn__backend_get(dev, &be));
    g->inference = opts ? opts->inference : false;
    g->staged = opts && opts->staged && !g->inference;
    /* Outputs (nodes nothing reads) and scalars (losses) stay readable. The
     * array then stays as the graph's per-node scratch (g->mark). */
    bool *read = calloc((size_t)g->n, sizeof *read);
    if (!read) return syn__error(SYN_ERR_OOM, "syn_graph_compile: %d nodes", g->n);
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i]->n_in; k++) read[g->nodes[i]->in[k]->id] = true;
    for (int i = 0; i < g->n; i++)
        if (!read[i] || g->nodes[i]->shape.ndim == 0) g->nodes[i]->keep = true;
    const char *fuse = getenv("SYN_FUSE"); /* after `keep`: kept values are never fused away */
    if (!(opts && opts->no_fusion) && !(fuse && strcmp(fuse, "0") == 0)) syn__fuse(g);
    for (int i = 0; i < g->n; i++) {
        syn_node *v = g->nodes[i];
        if (v->absorbed_by) continue;
        if (v->op == SYN_OP_PARAM) {
            if (!syn_device_equal(v->param_set->dev, dev)) {
                free(read);
                return syn__error(SYN_ERR_ARG, "syn_graph_compile: parameter '%s' lives on %s, the graph is compiled for %s",
                                  v->name, syn_device_str(v->param_set->dev, pb, sizeof pb), syn_device_str(dev, db, sizeof db));
            }
            syn_tensor *t;
            syn_params_find(v->param_set, v->name, &t, NULL);
            for (int k = 0; k < v->param_set->n; k++)
                if (v->param_set->items[k].value == t) v->param_index = k;
            continue;
        }
        if (syn__op_flags[v->op] & SYN_LEAF) continue;
        if (!be->fwd[v->op]) {
            free(read);
            return syn__error(SYN_ERR_UNSUPPORTED, "op %s (node %d) has no forward kernel on the %s backend",
                              syn__op_name[v->op], i, be->name);
        }
        if (!g->inference && v->requires_grad && !(syn__op_flags[v->op] & SYN_NO_GRAD) && !be->bwd[v->op]) {
            free(read);
            return syn__error(SYN_ERR_UNSUPPORTED, "op %s (node %d) has no backward kernel on the %s backend",
                              syn__op_name[v->op], i, be->name);
        }
    }
    g->be = be;
    g->dev = dev;
    syn_status s = syn__memplan(g);
    if (s != SYN_OK) {
        free(read);
        syn__memplan_free(g);
        g->be = NULL;
        return s;
    }
    g->mark = read;
    g->compiled = true;
    const char *graphs = getenv("SYN_CUDA_GRAPHS"); /* "1" / "0" overrides the option */
    bool want = graphs && (strcmp(graphs, "1") == 0 || strcmp(graphs, "0") == 0) ? graphs[0] == '1'
                                                                                : opts && opts->cuda_graphs;
    g->replay_on = want && !g->inference && be->capture_begin;
    const char *prof = getenv("SYN_PROFILE"); /* a diagnostic switch: failing to turn it on is not an error */
    if (prof && strcmp(prof, "1") == 0 && syn_graph_set_profiling(g, true) != SYN_OK) syn_clear_error();
    return SYN_OK;
}

syn_device syn_graph_device(const syn_graph *g) { return g ? g->dev : syn_cpu(); }

static syn_status check_input(const syn_graph *g, const syn_node *in, const char *fn) {
    if (!g || !in) return syn__error(SYN_ERR_ARG, "%s: NULL argument", fn);
    if (in->g != g || in->op != SYN_OP_INPUT) return syn__error(SYN_ERR_ARG, "%s: the node is not an input of this graph", fn);
    if (!g->compiled) return syn__error(SYN_ERR_ARG, "%s: compile the graph first", fn);
    return SYN_OK;
}

static syn_status check_feed_shape(syn_node *in, syn_shape shape) {
    char a[128], b[128];
    bool ok = shape.ndim == in->cap_shape.ndim && shape.dim[0] >= 1 && shape.dim[0] <= in->cap_shape.dim[0];
    for (int d = 1; ok && d < shape.ndim; d++) ok = shape.dim[d] == in->cap_shape.dim[d];
    if (!ok)
        return syn__error(SYN_ERR_SHAPE, "feed '%s': shape %s does not fit the input %s (only the leading dim may be smaller)",
                          in->name, syn_shape_str(&shape, a, sizeof a), syn_shape_str(&in->cap_shape, b, sizeof b));
    return SYN_OK;
}

/* Records the range of I32 values fed from the host (see syn_node). */
static void note_i32_range(syn_node *in, const void *host, int64_t n) {
    in->i32_known = false;
    if (in->dtype != SYN_I32 || !host) return;
    const int32_t *v = host;
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    for (int64_t k = 0; k < n; k++) {
        if (v[k] < lo) lo = v[k];
        if (v[k] > hi) hi = v[k];
    }
    in->i32_min = lo;
    in->i32_max = hi;
    in->i32_known = true;
}

syn_status syn_graph_feed(syn_graph *g, syn_node *in, const void *host, syn_shape shape) {
    SYN_TRY(check_input(g, in, "syn_graph_feed"));
    if (!host) return syn__error(SYN_ERR_ARG, "feed '%s': data is NULL", in->name);
    SYN_TRY(check_feed_shape(in, shape));
    in->i32_known = false;
    SYN_TRY(g->be->copy_h2d(g->be, in->value, host, (size_t)syn_shape_numel(&shape) * syn_dtype_size(in->dtype)));
    note_i32_range(in, host, syn_shape_numel(&shape));
    in->shape = shape;
    return SYN_OK;
}

syn_status syn_graph_feed_tensor(syn_graph *g, syn_node *in, const syn_tensor *t) {
    SYN_TRY(check_input(g, in, "syn_graph_feed_tensor"));
    if (!t) return syn__error(SYN_ERR_ARG, "feed '%s': tensor is NULL", in->name);
    if (t->dtype != in->dtype)
        return syn__error(SYN_ERR_ARG, "feed '%s': tensor is %s, input is %s", in->name, syn_dtype_name(t->dtype),
                          syn_dtype_name(in->dtype));
    SYN_TRY(check_feed_shape(in, t->shape));
    in->i32_known = false;
    size_t bytes = syn_tensor_bytes(t);
    syn_backend *src = t->st->be;
    if (src == g->be) SYN_TRY(g->be->copy_d2d(g->be, in->value, t->st->data, bytes));
    else if (src->device.type == SYN_DEVICE_CPU) SYN_TRY(g->be->copy_h2d(g->be, in->value, t->st->data, bytes));
    else {
        void *tmp = syn__malloc(bytes, "syn_graph_feed_tensor");
        if (!tmp) return SYN_ERR_OOM;
        syn_status s = src->copy_d2h(src, tmp, t->st->data, bytes);
        if (s == SYN_OK) s = g->be->copy_h2d(g->be, in->value, tmp, bytes);
        free(tmp);
        SYN_TRY(s);
    }
    if (src->device.type == SYN_DEVICE_CPU) note_i32_range(in, t->st->data, syn_shape_numel(&t->shape));
    in->shape = t->shape;
    return SYN_OK;
}

syn_status syn_graph_feed_node(syn_graph *g, syn_node *in, const syn_node *from) {
    SYN_TRY(check_input(g, in, "syn_graph_feed_node"));
    if (!from || from->g != g) return syn__error(SYN_ERR_ARG, "feed '%s': the source node is not of this graph", in->name);
    if (!from->keep || !g->forward_done || (from->op != SYN_OP_INPUT && from->ran_pass != g->pass))
        return syn__error(SYN_ERR_ARG, "feed '%s': node %d (%s) has no kept value (keep it, run forward)", in->name,
                          from->id, syn__op_name[from->op]);
    if (from->dtype != in->dtype)
        return syn__error(SYN_ERR_ARG, "feed '%s': node is %s, input is %s", in->name, syn_dtype_name(from->dtype),
                          syn_dtype_name(in->dtype));
    SYN_TRY(check_feed_shape(in, from->shape));
    in->i32_known = false;
    SYN_TRY(g->be->copy_d2d(g->be, in->value, from->value, (size_t)syn__numel(from) * syn_dtype_size(from->dtype)));
    in->shape = from->shape;
    return SYN_OK;
}

/* A node fused away at compile has no value or gradient of its own. */
static syn_status absorbed_err(const syn_node *n, const char *fn) {
    return syn__error(SYN_ERR_ARG, "%s: node %d (%s) was fused into node %d (%s) at compile: keep it with "
                      "syn_graph_keep before compiling, or compile with no_fusion", fn, n->id, syn__op_name[n->op],
                      n->absorbed_by->id, syn__node_label(n->absorbed_by));
}

/* Runs one node's forward kernel in the current pass (parameters: binds
 * their current storage). */
static syn_status run_node(syn_graph *g, syn_node *v) {
    if (v->absorbed_by) return SYN_OK; /* its work is the absorbing node's */
    if (v->op == SYN_OP_PARAM) v->value = syn__tensor_data(syn__node_param(v)->value);
    if (!(syn__op_flags[v->op] & SYN_LEAF)) {
        syn_dtype dt;
        SYN_TRY(syn__infer_shape(v, &v->shape, &dt)); /* from the inputs' current shapes */
        if (v->op == SYN_OP_DROPOUT || v->op == SYN_OP_DROPOUT2D) {
            v->rng_seed = g->seed;
            v->rng_offset = g->rng_counter;
            g->rng_counter += ((uint64_t)syn__numel(v) + 3) & ~(uint64_t)3;
        }
        if (!g->dry) {
            SYN_TRY(g->be->fwd[v->op](g->be, v));
            syn__profile_node(g, v);
        }
    }
    v->ran_pass = g->pass; /* a failed node runs again when the pass resumes */
    return SYN_OK;
}

static void begin_pass(syn_graph *g) {
    g->pass++;
    g->backward_in_pass = false;
    g->forward_done = false;
}

syn_status syn_graph_forward(syn_graph *g) {
    if (!g) return syn__error(SYN_ERR_ARG, "syn_graph_forward: graph is NULL");
    if (!g->compiled) return syn__error(SYN_ERR_ARG, "syn_graph_forward: compile the graph first");
    begin_pass(g);
    syn__profile_begin(g, 0);
    syn_status s = SYN_OK;
    for (int i = 0; i < g->n && s == SYN_OK; i++) s = run_node(g, g->nodes[i]);
    syn__profile_end(g);
    if (s == SYN_OK) g->forward_done = true;
    return s;
}

syn_status syn_graph_forward_to(syn_graph *g, syn_node *target, bool resume) {
    if (!g || !target) return syn__error(SYN_ERR_ARG, "syn_graph_forward_to: NULL argument");
    if (target->g != g) return syn__error(SYN_ERR_ARG, "syn_graph_forward_to: the target node is not of this graph");
    if (!g->compiled) return syn__error(SYN_ERR_ARG, "syn_graph_forward_to: compile the graph first");
    if (target->absorbed_by) return absorbed_err(target, "syn_graph_forward_to");
    if (resume && g->backward_in_pass && !g->staged)
        return syn__error(SYN_ERR_ARG, "syn_graph_forward_to: resuming a pass after a backward pass needs a graph "
                                       "compiled with staged = true");
    bool *need = g->mark;
    memset(need, 0, (size_t)g->n * sizeof *need);
    need[target->id] = true;
    for (int i = target->id; i >= 0; i--)
        if (need[i])
            for (int k = 0; k < g->nodes[i]->n_in; k++) need[g->nodes[i]->in[k]->id] = true;
    if (!resume || g->pass == 0) begin_pass(g);
    syn__profile_begin(g, 0);
    syn_status s = SYN_OK;
    for (int i = 0; i <= target->id && s == SYN_OK; i++) {
        syn_node *v = g->nodes[i];
        if (need[i] && (v->ran_pass != g->pass || v->op == SYN_OP_PARAM)) s = run_node(g, v);
    }
    syn__profile_end(g);
    if (s == SYN_OK) g->forward_done = true;
    return s;
}

/* Whether v's backward may write input k's first gradient instead of adding
 * it to zeros: the backend's kernel says it can, v's output is not empty (an
 * empty output's kernel may return before writing a broadcast input), and
 * the input is not also another of v's inputs (two writes to one buffer). */
static bool may_write_fresh(const syn_backend *be, const syn_node *v, int k) {
    if (!be->grad_write[v->op] || syn__numel(v) == 0) return false;
    for (int j = 0; j < v->n_in; j++)
        if (j != k && v->in[j] == v->in[k]) return false;
    return true;
}

syn_status syn_graph_backward(syn_graph *g, syn_node *loss) {
    if (!g || !loss) return syn__error(SYN_ERR_ARG, "syn_graph_backward: NULL argument");
    if (loss->g != g) return syn__error(SYN_ERR_ARG, "syn_graph_backward: the loss node is not of this graph");
    if (!g->compiled || g->inference)
        return syn__error(SYN_ERR_ARG, "syn_graph_backward: the graph was not compiled for training");
    if (!g->forward_done || loss->ran_pass != g->pass)
        return syn__error(SYN_ERR_ARG, "syn_graph_backward: the forward pass did not compute the loss (node %d, %s)",
                          loss->id, syn__op_name[loss->op]);
    if (loss->shape.ndim != 0 || loss->dtype != SYN_F32)
        return syn__error(SYN_ERR_SHAPE, "syn_graph_backward: the loss (%s) must be an f32 scalar", syn__op_name[loss->op]);
    if (!loss->requires_grad) return SYN_OK; /* nothing to differentiate */
    syn_backend *be = g->be;
    g->backward_in_pass = true;
    bool *path = g->mark;
    memset(path, 0, (size_t)g->n * sizeof *path);
    for (int i = 0; i < g->n; i++) {
        g->nodes[i]->grad_live = false;
        g->nodes[i]->grad_fresh = false;
    }
    path[loss->id] = true;
    for (int i = loss->id; i >= 0; i--) {
        syn_node *v = g->nodes[i];
        if (!path[i] || (syn__op_flags[v->op] & SYN_NO_GRAD)) continue;
        for (int k = 0; k < v->n_in; k++)
            if (v->in[k]->requires_grad) path[v->in[k]->id] = true;
    }
    syn_status s = g->dry ? SYN_OK : be->fill_f32(be, (float *)loss->grad, 1.0f, 1);
    loss->grad_live = true;
    syn__profile_begin(g, 1);
    for (int i = loss->id; i >= 0 && s == SYN_OK; i--) {
        syn_node *v = g->nodes[i];
        if (v->op == SYN_OP_PARAM) continue;
        if (!path[i] || !v->grad_live || (syn__op_flags[v->op] & (SYN_LEAF | SYN_NO_GRAD))) continue;
        for (int k = 0; k < v->n_in && s == SYN_OK; k++) {
            syn_node *u = v->in[k];
            if (u->op == SYN_OP_PARAM) {
                u->grad = syn__node_param(u)->trainable ? syn__tensor_data(syn__node_param(u)->grad) : NULL;
            } else if (!u->requires_grad || u->grad_buf < 0) {
                u->grad = NULL;
            } else if (!u->grad_live) {
                if (may_write_fresh(be, v, k)) u->grad_fresh = true;
                else if (!g->dry) s = be->zero(be, u->grad, (size_t)syn__numel(u) * sizeof(float));
                u->grad_live = true;
            }
        }
        if (s == SYN_OK && !g->dry) {
            s = be->bwd[v->op](be, v);
            syn__profile_node(g, v);
        }
        for (int k = 0; k < v->n_in; k++) v->in[k]->grad_fresh = false;
    }
    syn__profile_end(g);
    return s;
}

void syn_graph_set_training(syn_graph *g, bool training) {
    if (g) g->training = training;
}
bool syn_graph_training(const syn_graph *g) { return g ? g->training : false; }
void syn_graph_set_seed(syn_graph *g, uint64_t seed) {
    if (!g) return;
    g->seed = seed;
    g->rng_counter = 0;
}

syn_shape syn_graph_shape(const syn_graph *g, const syn_node *n) {
    (void)g;
    return n ? n->shape : syn_shape0();
}

static syn_status check_read(const syn_graph *g, const syn_node *n, const void *host, size_t bytes, const char *fn) {
    if (!g || !n || (!host && bytes)) return syn__error(SYN_ERR_ARG, "%s: NULL argument", fn);
    if (n->g != g) return syn__error(SYN_ERR_ARG, "%s: node not of this graph", fn);
    if (!g->compiled) return syn__error(SYN_ERR_ARG, "%s: compile the graph first", fn);
    if (n->absorbed_by) return absorbed_err(n, fn);
    size_t want = (size_t)syn__numel(n) * syn_dtype_size(n->dtype);
    if (bytes != want)
        return syn__error(SYN_ERR_ARG, "%s: %zu bytes asked, node %s holds %zu", fn, bytes, syn__op_name[n->op], want);
    return SYN_OK;
}

syn_status syn_graph_read(const syn_graph *g, const syn_node *n, void *host, size_t bytes) {
    SYN_TRY(check_read(g, n, host, bytes, "syn_graph_read"));
    if (n->op == SYN_OP_PARAM) return syn_tensor_read(syn__node_param(n)->value, host, bytes);
    if (!n->keep) return syn__error(SYN_ERR_ARG, "syn_graph_read: the value of node %d (%s) was not kept: call syn_graph_keep before compiling", n->id, syn__op_name[n->op]);
    if (!g->forward_done) return syn__error(SYN_ERR_ARG, "syn_graph_read: run syn_graph_forward first");
    if (n->op != SYN_OP_INPUT && n->ran_pass != g->pass)
        return syn__error(SYN_ERR_ARG, "syn_graph_read: the current forward pass did not compute node %d (%s)", n->id,
                          syn__op_name[n->op]);
    return g->be->copy_d2h(g->be, host, n->value, bytes);
}

syn_status syn_graph_read_scalar(const syn_graph *g, const syn_node *n, float *out) {
    if (n && (n->shape.ndim != 0 || n->dtype != SYN_F32))
        return syn__error(SYN_ERR_SHAPE, "syn_graph_read_scalar: node %s is not an f32 scalar", syn__op_name[n->op]);
    return syn_graph_read(g, n, out, sizeof *out);
}

syn_status syn_graph_read_grad(const syn_graph *g, const syn_node *n, void *host, size_t bytes) {
    SYN_TRY(check_read(g, n, host, bytes, "syn_graph_read_grad"));
    if (n->op == SYN_OP_PARAM) return syn_tensor_read(syn__node_param(n)->grad, host, bytes);
    if (!n->keep || n->grad_buf < 0)
        return syn__error(SYN_ERR_ARG, "syn_graph_read_grad: node %d (%s) has no kept gradient", n->id, syn__op_name[n->op]);
    if (!n->grad_live) return syn__error(SYN_ERR_ARG, "syn_graph_read_grad: no backward pass reached node %d (%s)", n->id, syn__op_name[n->op]);
    return g->be->copy_d2h(g->be, host, n->grad, bytes);
}

size_t syn_graph_memory_bytes(const syn_graph *g) { return g ? g->mem_bytes : 0; }
