/* The memory plan. Every activation value and every activation gradient gets a
 * live interval on one timeline - forward steps 0..n-1, then the backward
 * steps n..2n-1 in reverse node order - and intervals that do not overlap
 * may share bytes of one arena (one allocation per graph): each interval,
 * largest first, goes to the lowest offset clear of those it overlaps (or,
 * where that comes out smaller, whole buffers are shared in start order and
 * laid end to end). A value lives until its last reader: its
 * consumers' forwards, and the backward of any consumer (or of its own node)
 * whose rule reads it. Kept nodes and inputs are never reused. A reshape is a
 * view: its value is its input's buffer (which then lives as long as either
 * needs it), so its forward copies nothing. */
#include <stdlib.h>
#include <string.h>
#include "../backend.h"

/* Under AddressSanitizer every shared buffer is an allocation of its own
 * (the buffer plan, no arena), so that a kernel writing past its node's
 * bytes is caught: inside one arena it would land in a neighbour's. The CUDA
 * emulator's exact-size device allocations catch the same on the GPU path. */
#if defined(__SANITIZE_ADDRESS__)
#define SYN_SEPARATE_BUFFERS 1
#endif

#define NEVER INT32_MAX

typedef struct {
    int start, end;
    size_t bytes;
    int pool;  /* buffers are shared within a pool only */
    int *slot; /* where the buffer index goes */
    int id;    /* creation order: the last tie-break, so plans are deterministic */
} interval;

static int by_start(const void *a, const void *b) {
    const interval *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The shared-buffer plan, intervals in start order: each takes the free
 * buffer that fits it best, or the largest free one, grown. asg[k]: interval
 * k's buffer; returns the number of buffers. */
static int plan_by_start(const interval *iv, int m, int *asg, size_t *bytes, int *busy_until, int *pool) {
    int nb = 0;
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
            bytes[best] = 0;
        }
        if (bytes[best] < iv[k].bytes) bytes[best] = iv[k].bytes;
        busy_until[best] = iv[k].end;
        asg[k] = best;
    }
    return nb;
}

/* An address range [lo, hi) taken in the arena. */
typedef struct {
    size_t lo, hi;
} span;

#ifdef SYN_SEPARATE_BUFFERS
/* Under ASan: each of the nb shared buffers (interval k in buffer asg[k],
 * iv in start order) an allocation of its own; slots index the buffers. */
static syn_status alloc_buffers(syn_graph *g, const interval *iv, int m, const int *asg, const size_t *bytes, int nb) {
    g->bufs_owned = true;
    for (int k = 0; k < m; k++) *iv[k].slot = asg[k];
    for (int b = 0; b < nb; b++) {
        g->bufs[b] = NULL;
        g->n_bufs = b + 1;
        SYN_TRY(g->be->alloc(g->be, bytes[b], &g->bufs[b]));
        g->mem_bytes += bytes[b];
    }
    return SYN_OK;
}

#else
/* largest first, then by start */
static int by_size(const void *a, const void *b) {
    const interval *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
    return by_start(a, b);
}

static int by_lo(const void *a, const void *b) {
    const span *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Two intervals may not share bytes: they overlap in time, or belong to
 * different pools (a staged graph's gradients live off the timeline). */
static bool conflict(const interval *a, const interval *b) {
    return a->pool != b->pool || !(a->end < b->start || b->end < a->start);
}

/* Offsets (iv sorted by_size, largest first): each interval at the lowest
 * offset where it overlaps none of the placed intervals it conflicts with.
 * off[iv[k].id] is interval k's; returns the arena's size. */
static size_t place(const interval *iv, int m, size_t *off, span *tmp) {
    size_t total = 0;
    for (int k = 0; k < m; k++) {
        int nt = 0;
        for (int j = 0; j < k; j++)
            if (conflict(&iv[j], &iv[k])) tmp[nt++] = (span){off[iv[j].id], off[iv[j].id] + iv[j].bytes};
        qsort(tmp, (size_t)nt, sizeof *tmp, by_lo);
        size_t o = 0;
        for (int t = 0; t < nt && tmp[t].lo < o + iv[k].bytes; t++)
            if (tmp[t].hi > o) o = tmp[t].hi;
        off[iv[k].id] = o;
        if (o + iv[k].bytes > total) total = o + iv[k].bytes;
    }
    return total;
}

/* One arena: the placed offsets (place), or the nb shared buffers laid end
 * to end where that comes out smaller. iv arrives in start order (asg and
 * bytes from plan_by_start); off and off2 are scratch by interval id; slots
 * index per-interval pointers, by id. */
static syn_status alloc_arena(syn_graph *g, interval *iv, int m, const int *asg, size_t *bytes, int nb, size_t *off,
                              size_t *off2, span *tmp) {
    size_t total = 0;
    for (int b = 0; b < nb; b++) { /* bytes[b] becomes buffer b's offset */
        size_t sz = bytes[b];
        bytes[b] = total;
        total += sz;
    }
    for (int k = 0; k < m; k++) off[iv[k].id] = bytes[asg[k]];
    qsort(iv, (size_t)m, sizeof *iv, by_size);
    const size_t placed = place(iv, m, off2, tmp);
    if (placed <= total) {
        memcpy(off, off2, (size_t)m * sizeof *off);
        total = placed;
    }
    SYN_TRY(g->be->alloc(g->be, total ? total : 256, &g->arena));
    g->mem_bytes = total;
    g->n_bufs = m;
    for (int k = 0; k < m; k++) {
        g->bufs[iv[k].id] = (char *)g->arena + off[iv[k].id];
        *iv[k].slot = iv[k].id;
    }
    return SYN_OK;
}
#endif

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
    for (int i = 0; g->bufs_owned && i < g->n_bufs; i++)
        if (g->bufs[i]) g->be->free(g->be, g->bufs[i]);
    if (g->arena) g->be->free(g->be, g->arena);
    g->arena = NULL;
    g->bufs_owned = false;
    free(g->bufs);
    g->bufs = NULL;
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
        if (root[i] < 0) iv[m++] = (interval){start, keep ? NEVER : last[i], node_bytes(v), 0, &v->value_buf, 0};
        if (train && v->requires_grad) /* an input only if syn_graph_input_grad asked */
            iv[m++] = (interval){gfirst[i], keep ? NEVER : 2 * n - 1 - i, node_bytes(v), grad_pool, &v->grad_buf, 0};
        /* state a forward saves for its backward lives until that backward */
        if (v->aux_bytes)
            iv[m++] = (interval){i, train && v->requires_grad ? 2 * n - 1 - i : i, (v->aux_bytes + 255) & ~(size_t)255,
                                 0, &v->aux_buf, 0};
    }
    free(last);
    free(gfirst);
    for (int k = 0; k < m; k++) iv[k].id = k;
    const size_t cnt = (size_t)(m ? m : 1);
    int *asg = malloc(cnt * sizeof *asg), *busy = malloc(cnt * sizeof *busy), *pool = malloc(cnt * sizeof *pool);
    size_t *bytes = malloc(cnt * sizeof *bytes), *off = malloc(cnt * sizeof *off), *off2 = malloc(cnt * sizeof *off2);
    span *tmp = malloc(cnt * sizeof *tmp);
    void *scratch[] = {asg, busy, pool, bytes, off, off2, tmp, iv, root};
    g->bufs = malloc(cnt * sizeof *g->bufs);
    syn_status s = SYN_OK;
    if (!asg || !busy || !pool || !bytes || !off || !off2 || !tmp || !g->bufs) {
        s = syn__error(SYN_ERR_OOM, "memory plan: %d intervals", m);
    } else {
        qsort(iv, (size_t)m, sizeof *iv, by_start);
        int nb = plan_by_start(iv, m, asg, bytes, busy, pool);
#ifdef SYN_SEPARATE_BUFFERS
        s = alloc_buffers(g, iv, m, asg, bytes, nb);
#else
        s = alloc_arena(g, iv, m, asg, bytes, nb, off, off2, tmp);
#endif
    }
    if (s == SYN_OK)
        for (int i = 0; i < n; i++) {
            syn_node *v = g->nodes[i];
            if (root[i] >= 0) v->value_buf = g->nodes[root[i]]->value_buf;
            v->value = v->value_buf >= 0 ? g->bufs[v->value_buf] : NULL;
            v->grad = v->grad_buf >= 0 ? g->bufs[v->grad_buf] : NULL;
            v->aux = v->aux_buf >= 0 ? g->bufs[v->aux_buf] : NULL;
        }
    for (size_t k = 0; k < sizeof scratch / sizeof *scratch; k++) free(scratch[k]);
    return s; /* on failure the caller frees the partial plan */
}
