/* Training steps replayed from captured device graphs (CUDA graphs):
 * syn_graph_forward_backward. A step is forward + backward of one loss. The
 * first step with a given signature (input shapes, training mode, the loss,
 * where every parameter and its gradient live) runs as usual and warms up
 * (algorithm searches, workspace sizes, library handles). The next step with
 * that signature is captured: the executor runs as usual while the backend
 * records its launches instead of running them, and the recorded graph is
 * launched. Every later step with that signature runs the executor "dry" -
 * shapes, pass marks and gradient flags as a real pass sets them, no kernel -
 * and launches the graph once: one launch instead of one per kernel.
 *
 * What a graph cannot hold makes the step run as usual: a new signature (up
 * to SYN_REPLAY_GRAPHS are kept), labels outside the range the captured
 * kernels trusted (within the classes, indices within the table: they skipped
 * their device check), profiling. Dropout in training mode draws new numbers
 * each step, so a graph with dropout never captures in that mode. A capture
 * that meets something it cannot record (a wait for the device, an
 * allocation, a host copy) is thrown away and the step runs as usual; if that
 * succeeds, the graph stops trying and syn_graph_replays says why (if it
 * fails, it was the step's own error, and a later step may capture). The
 * kernels' arguments are the same at every replay: only the inputs' contents
 * (fed before the step) and the parameters' values change. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../backend.h"

#define SYN_REPLAY_GRAPHS 4

typedef struct {
    int64_t *sig; /* signature words (see signature()) */
    int n_sig;
    int32_t *lo, *hi; /* per I32 input: the range fed at capture (lo > hi: not known, not needed) */
    void *exec;
} replay_entry;

struct syn__replay {
    syn_node **inputs;
    int n_inputs;
    replay_entry e[SYN_REPLAY_GRAPHS];
    int n;
    int64_t *warm, *cur; /* the last step run as usual, and this step's signature */
    int n_warm, n_cur, cap;
    int64_t replays;
    bool dropout; /* the graph has dropout: no capture in training mode */
    bool off;     /* a capture failed: every step runs as usual */
    char why[384];
};

static void entry_free(syn_backend *be, replay_entry *e) {
    if (e->exec) be->replay_free(be, e->exec);
    free(e->sig);
    free(e->lo);
    free(e->hi);
    memset(e, 0, sizeof *e);
}

void syn__replay_free(syn_graph *g) {
    struct syn__replay *r = g->rp;
    if (!r) return;
    for (int i = 0; i < r->n; i++) entry_free(g->be, &r->e[i]);
    free(r->inputs);
    free(r->warm);
    free(r->cur);
    free(r);
    g->rp = NULL;
}

static syn_status eager(syn_graph *g, syn_node *loss) {
    SYN_TRY(syn_graph_forward(g));
    return syn_graph_backward(g, loss);
}

static bool has_dropout(const syn_graph *g) {
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->op == SYN_OP_DROPOUT || g->nodes[i]->op == SYN_OP_DROPOUT2D) return true;
    return false;
}

static struct syn__replay *state(syn_graph *g) {
    if (g->rp) return g->rp;
    struct syn__replay *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    int n_in = 0;
    for (int i = 0; i < g->n; i++) n_in += g->nodes[i]->op == SYN_OP_INPUT;
    r->inputs = calloc((size_t)n_in + 1, sizeof *r->inputs);
    /* words: training, loss, per input (ndim, dims), per parameter (value, gradient) */
    r->cap = 2 + n_in * (1 + SYN_MAX_DIMS) + 2 * g->n;
    r->cur = calloc((size_t)r->cap, sizeof *r->cur);
    r->warm = calloc((size_t)r->cap, sizeof *r->warm);
    if (!r->inputs || !r->cur || !r->warm) {
        free(r->inputs);
        free(r->cur);
        free(r->warm);
        free(r);
        return NULL;
    }
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->op == SYN_OP_INPUT) r->inputs[r->n_inputs++] = g->nodes[i];
    r->dropout = has_dropout(g);
    g->rp = r;
    return r;
}

/* This step's signature: what the recorded kernels' arguments were computed
 * from, apart from the labels' range. */
static void signature(const syn_graph *g, struct syn__replay *r, const syn_node *loss) {
    int64_t *w = r->cur;
    int k = 0;
    w[k++] = g->training;
    w[k++] = loss->id;
    for (int i = 0; i < r->n_inputs; i++) {
        const syn_shape *s = &r->inputs[i]->shape;
        w[k++] = s->ndim;
        for (int d = 0; d < s->ndim; d++) w[k++] = s->dim[d];
    }
    for (int i = 0; i < g->n; i++) {
        const syn_node *v = g->nodes[i];
        if (v->op != SYN_OP_PARAM) continue;
        const syn__param *p = syn__node_param(v);
        w[k++] = (int64_t)(intptr_t)syn__tensor_data(p->value);
        w[k++] = p->trainable ? (int64_t)(intptr_t)syn__tensor_data(p->grad) : 0;
    }
    r->n_cur = k;
}

static bool same(const int64_t *a, int na, const int64_t *b, int nb) {
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

/* The labels fed now lie within the range the captured kernels trusted. */
static bool ranges_cover(const struct syn__replay *r, const replay_entry *e) {
    for (int i = 0; i < r->n_inputs; i++) {
        const syn_node *in = r->inputs[i];
        if (in->dtype != SYN_I32 || e->lo[i] > e->hi[i]) continue;
        if (!in->i32_known || in->i32_min < e->lo[i] || in->i32_max > e->hi[i]) return false;
    }
    return true;
}

/* Captures this step (the signature is in r->cur) and launches it. */
static syn_status capture(syn_graph *g, struct syn__replay *r, syn_node *loss) {
    syn_backend *be = g->be;
    replay_entry e = {0};
    e.sig = malloc((size_t)r->n_cur * sizeof *e.sig);
    e.lo = calloc((size_t)r->n_inputs + 1, sizeof *e.lo);
    e.hi = calloc((size_t)r->n_inputs + 1, sizeof *e.hi);
    if (!e.sig || !e.lo || !e.hi) {
        entry_free(be, &e);
        return eager(g, loss); /* no host memory for the bookkeeping: not worth an error */
    }
    memcpy(e.sig, r->cur, (size_t)r->n_cur * sizeof *e.sig);
    e.n_sig = r->n_cur;
    for (int i = 0; i < r->n_inputs; i++) { /* the kernels narrow it as they trust the fed range */
        r->inputs[i]->i32_trust_lo = INT32_MIN;
        r->inputs[i]->i32_trust_hi = INT32_MAX;
    }
    syn_status s = be->capture_begin(be);
    if (s == SYN_OK) {
        s = eager(g, loss);
        syn_status end = be->capture_end(be, s == SYN_OK, &e.exec);
        if (s == SYN_OK) s = end;
    }
    if (s != SYN_OK) { /* the first failure's message says what could not be recorded */
        char why[sizeof r->why];
        snprintf(why, sizeof why, "capture failed: %s", syn_last_error());
        syn_clear_error();
        entry_free(be, &e);
        s = eager(g, loss);
        if (s == SYN_OK) { /* the step itself is fine: what it does cannot be captured */
            memcpy(r->why, why, sizeof why);
            r->off = true;
        }
        return s; /* else its own error (a bad label, say): a later step may capture */
    }
    for (int i = 0; i < r->n_inputs; i++) { /* lo > hi: no range was trusted, none is needed */
        const syn_node *in = r->inputs[i];
        bool trusted = in->dtype == SYN_I32 && in->i32_known;
        e.lo[i] = trusted ? (int32_t)in->i32_trust_lo : 1;
        e.hi[i] = trusted ? (int32_t)in->i32_trust_hi : 0;
    }
    bool stale = false;
    s = be->replay(be, e.exec, &stale);
    if (s == SYN_OK && stale) s = syn__error(SYN_ERR_DEVICE, "syn_graph_forward_backward: a graph stale at capture");
    if (s != SYN_OK) {
        entry_free(be, &e);
        return s;
    }
    r->e[r->n++] = e;
    r->replays++;
    r->why[0] = '\0'; /* (a dropout note from a step in training mode) */
    return SYN_OK;
}

syn_status syn_graph_forward_backward(syn_graph *g, syn_node *loss) {
    if (!g || !loss) return syn__error(SYN_ERR_ARG, "syn_graph_forward_backward: NULL argument");
    if (loss->g != g) return syn__error(SYN_ERR_ARG, "syn_graph_forward_backward: the loss node is not of this graph");
    if (!g->compiled || g->inference)
        return syn__error(SYN_ERR_ARG, "syn_graph_forward_backward: the graph was not compiled for training");
    if (!g->replay_on || g->prof) return eager(g, loss);
    struct syn__replay *r = state(g);
    if (!r || r->off) return eager(g, loss);
    if (g->training && r->dropout) {
        snprintf(r->why, sizeof r->why, "dropout draws new random numbers each step: no capture in training mode");
        return eager(g, loss);
    }
    signature(g, r, loss);
    for (int i = 0; i < r->n; i++) {
        replay_entry *e = &r->e[i];
        if (!same(e->sig, e->n_sig, r->cur, r->n_cur)) continue;
        if (!ranges_cover(r, e)) return eager(g, loss); /* the kernels check these labels */
        g->dry = true;
        syn_status s = eager(g, loss);
        g->dry = false;
        bool stale = false;
        if (s == SYN_OK) s = g->be->replay(g->be, e->exec, &stale);
        if (s != SYN_OK) return s;
        if (!stale) {
            r->replays++;
            return SYN_OK;
        }
        entry_free(g->be, e); /* captured with a workspace since replaced: capture again */
        r->e[i] = r->e[--r->n];
        break;
    }
    if (same(r->warm, r->n_warm, r->cur, r->n_cur) && r->n < SYN_REPLAY_GRAPHS) return capture(g, r, loss);
    syn_status s = eager(g, loss);
    if (s == SYN_OK) {
        memcpy(r->warm, r->cur, (size_t)r->n_cur * sizeof *r->cur);
        r->n_warm = r->n_cur;
    }
    return s;
}

int64_t syn_graph_replays(const syn_graph *g, char *why, size_t size) {
    if (why && size) why[0] = '\0';
    if (!g) return 0;
    if (why && size) {
        const char *w = !g->compiled ? "not compiled"
                        : !g->replay_on
                            ? (g->be && g->be->capture_begin ? "off (syn_compile_opts.cuda_graphs, SYN_CUDA_GRAPHS=1)"
                                                             : "the backend cannot capture graphs")
                        : g->rp ? g->rp->why
                                : "";
        snprintf(why, size, "%s", w);
    }
    return g->rp ? g->rp->replays : 0;
}
