/* The memory plan. Every activation value and every activation gradient gets a
 * live interval on one timeline - forward steps 0..n-1, then the backward
 * steps n..2n-1 in reverse node order - and intervals that do not overlap
 * share a buffer (greedy, best fit). A value lives until its last reader: its
 * consumers' forwards, and the backward of any consumer (or of its own node)
 * whose rule reads it. Kept nodes and inputs are never reused. A reshape is a
 * view: its value is its input's buffer (which then lives as long as either
 * needs it), so its forward copies nothing. */
#include <stdlib.h>
#include <string.h>
#include "../backend.h"

#define NEVER INT32_MAX

typedef struct {
    int start, end;
    size_t bytes;
    int pool;  /* buffers are shared within a pool only */
    int *slot; /* where the buffer index goes */
} interval;

static int by_start(const void *a, const void *b) {
    const interval *x = a, *y = b;
    return x->start != y->start ? (x->start < y->start ? -1 : 1) : (x->end < y->end ? -1 : x->end > y->end);
}

/* The node whose buffer v's value shares (v a reshape of it, directly or
 * through other reshapes), or -1. root[] holds the earlier nodes' answers.
 * Not for parameters (their storage is the parameter set's), and not where
 * a kept reshape of an input could show a later feed before its pass ran. */
static int view_root(const syn_node *v, const int *root) {
    if (v->op != SYN_OP_RESHAPE || v->absorbed_by) return -1;
    const syn_node *u = v->in[0];
    if (u->op == SYN_OP_PARAM || u->dtype != v->dtype) return -1;
    int r = root[u->id] >= 0 ? root[u->id] : u->id;
    const syn_node *base = u->g->nodes[r];
    if (base->op == SYN_OP_PARAM || (base->op == SYN_OP_INPUT && v->keep)) return -1;
    return r;
}

static size_t node_bytes(const syn_node *n) {
    size_t b = (size_t)syn_shape_numel(&n->cap_shape) * syn_dtype_size(n->dtype);
    return (b + 255) & ~(size_t)255; /* aligned for vector loads on every backend */
}

void syn__memplan_free(syn_graph *g) {
    for (int i = 0; i < g->n_bufs; i++)
        if (g->bufs[i]) g->be->free(g->be, g->bufs[i]);
    free(g->bufs);
    free(g->buf_bytes);
    g->bufs = NULL;
    g->buf_bytes = NULL;
    g->n_bufs = 0;
    g->mem_bytes = 0;
}

syn_status syn__memplan(syn_graph *g) {
    int n = g->n;
    bool train = !g->inference;
    int *last = malloc((size_t)(n ? n : 1) * sizeof *last);     /* value: last reader */
    int *gfirst = malloc((size_t)(n ? n : 1) * sizeof *gfirst); /* grad: first writer */
    int *root = malloc((size_t)(n ? n : 1) * sizeof *root);     /* view_root */
    interval *iv = malloc((size_t)(3 * n + 1) * sizeof *iv);
    if (!last || !gfirst || !root || !iv) {
        free(last);
        free(gfirst);
        free(root);
        free(iv);
        return syn__error(SYN_ERR_OOM, "memory plan: %d nodes", n);
    }
    for (int i = 0; i < n; i++) {
        syn_node *v = g->nodes[i];
        last[i] = i;
        gfirst[i] = NEVER;
        if (train && v->requires_grad && (syn__node_flags(v) & SYN_BW_OUT)) last[i] = 2 * n - 1 - i;
    }
    for (int c = 0; c < n; c++) {
        syn_node *u = g->nodes[c];
        int bw = 2 * n - 1 - c;
        if (u->absorbed_by) continue; /* reads nothing: the absorbing node reads for it */
        for (int k = 0; k < u->n_in; k++) {
            int i = u->in[k]->id;
            if (last[i] < c) last[i] = c;
            if (train && u->requires_grad && syn__bw_reads_in(u, k) && last[i] < bw) last[i] = bw;
            if (train && u->requires_grad && !(syn__op_flags[u->op] & SYN_NO_GRAD) && u->in[k]->requires_grad &&
                bw < gfirst[i])
                gfirst[i] = bw;
        }
    }
    /* a node's own gradient is read by its backward: it needs one even with
     * no consumer (a loss, seeded when the backward pass starts, at time n).
     * Every scalar may be chosen as the loss, so scalars start at n too. */
    for (int i = 0; i < n; i++)
        if (train && g->nodes[i]->requires_grad && (gfirst[i] == NEVER || g->nodes[i]->shape.ndim == 0))
            gfirst[i] = n;
    /* views: the shared buffer lives until the last reader of any of them */
    for (int i = 0; i < n; i++) {
        root[i] = view_root(g->nodes[i], root);
        if (root[i] < 0) continue;
        int end = g->nodes[i]->keep ? NEVER : last[i];
        if (last[root[i]] < end) last[root[i]] = end;
    }
    /* A staged graph runs a backward pass before later stages' forwards, off
     * this timeline: a gradient written then must not share a buffer with a
     * value that a later stage still reads, so gradients get buffers of their
     * own (they may share among themselves: each backward pass writes its
     * gradients afresh and reads none of another's). */
    const int grad_pool = g->staged ? 1 : 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        syn_node *v = g->nodes[i];
        v->value_buf = v->grad_buf = v->aux_buf = -1;
        if (v->op == SYN_OP_PARAM || v->absorbed_by) continue;
        bool keep = v->keep;
        /* inputs are fed before the forward pass starts: live from time 0 */
        int start = v->op == SYN_OP_INPUT ? 0 : i;
        if (root[i] < 0) iv[m++] = (interval){start, keep ? NEVER : last[i], node_bytes(v), 0, &v->value_buf};
        if (train && v->requires_grad && v->op != SYN_OP_INPUT)
            iv[m++] = (interval){gfirst[i], keep ? NEVER : 2 * n - 1 - i, node_bytes(v), grad_pool, &v->grad_buf};
        /* state a forward saves for its backward lives until that backward */
        if (v->aux_bytes)
            iv[m++] = (interval){i, train && v->requires_grad ? 2 * n - 1 - i : i, (v->aux_bytes + 255) & ~(size_t)255,
                                 0, &v->aux_buf};
    }
    free(last);
    free(gfirst);
    qsort(iv, (size_t)m, sizeof *iv, by_start);

    /* Greedy assignment: buffers free once their current interval ended. */
    int nb = 0;
    size_t *bytes = calloc((size_t)(m ? m : 1), sizeof *bytes);
    int *busy_until = calloc((size_t)(m ? m : 1), sizeof *busy_until);
    int *pool = calloc((size_t)(m ? m : 1), sizeof *pool);
    if (!bytes || !busy_until || !pool) {
        free(iv);
        free(bytes);
        free(busy_until);
        free(pool);
        free(root);
        return syn__error(SYN_ERR_OOM, "memory plan: %d intervals", m);
    }
    for (int k = 0; k < m; k++) {
        int best = -1, largest = -1;
        for (int b = 0; b < nb; b++) {
            if (busy_until[b] >= iv[k].start || pool[b] != iv[k].pool) continue;
            if (bytes[b] >= iv[k].bytes && (best < 0 || bytes[b] < bytes[best])) best = b;
            if (largest < 0 || bytes[b] > bytes[largest]) largest = b;
        }
        if (best < 0) best = largest;
        if (best < 0) {
            best = nb++;
            pool[best] = iv[k].pool;
        }
        if (bytes[best] < iv[k].bytes) bytes[best] = iv[k].bytes;
        busy_until[best] = iv[k].end;
        *iv[k].slot = best;
    }
    for (int i = 0; i < n; i++)
        if (root[i] >= 0) g->nodes[i]->value_buf = g->nodes[root[i]]->value_buf;
    free(root);
    free(iv);
    free(busy_until);
    free(pool);
    g->bufs = calloc((size_t)(nb ? nb : 1), sizeof *g->bufs);
    g->buf_bytes = bytes;
    g->n_bufs = nb;
    if (!g->bufs) {
        g->n_bufs = 0;
        return syn__error(SYN_ERR_OOM, "memory plan: %d buffers", nb);
    }
    for (int b = 0; b < nb; b++) {
        syn_status s = g->be->alloc(g->be, bytes[b], &g->bufs[b]);
        if (s != SYN_OK) return s; /* the caller frees the partial plan */
        g->mem_bytes += bytes[b];
    }
    for (int i = 0; i < n; i++) {
        syn_node *v = g->nodes[i];
        v->value = v->value_buf >= 0 ? g->bufs[v->value_buf] : NULL;
        v->grad = v->grad_buf >= 0 ? g->bufs[v->grad_buf] : NULL;
        v->aux = v->aux_buf >= 0 ? g->bufs[v->aux_buf] : NULL;
    }
    return SYN_OK;
}
