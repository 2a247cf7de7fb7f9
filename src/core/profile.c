/* Kernel timing per op kind for one graph (syn_graph_set_profiling,
 * SYN_PROFILE=1): where a training step's device time goes.
 *
 * A pass (one forward or backward call) places a mark before its first
 * kernel and one after each node's kernel; the device time between two
 * marks is that node's. On a GPU the marks are events on the backend's
 * stream, read when the pass ends (one synchronisation per pass: the only
 * cost); on the CPU, which runs kernels as they are called, the clock.
 * The first training step (or the first forward of an inference graph) is
 * not counted: it chooses convolution algorithms and fills caches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../backend.h"

typedef struct syn__profile syn__profile;
struct syn__profile {
    double ms[2][SYN_KIND_COUNT]; /* by syn__node_kind: ops, and the fused batch norms apart */
    int64_t calls[2][SYN_KIND_COUNT];
    int64_t steps;    /* counted backward passes (training) or forward passes (inference) */
    bool warm;        /* the first step is over */
    bool failed;      /* a mark call failed: timing stopped, the report says so */
    int dir;          /* the pass in progress: 0 forward, 1 backward, -1 none */
    /* the pass in progress: marks[0] before its first kernel, marks[k]
     * after the kernel of a node of kind op[k]; on the CPU syn__host_ms() at the last mark */
    void **marks;
    int *op;
    int n_marks, cap;
    double last_ms;
};

static void destroy_marks(syn_graph *g) {
    syn__profile *p = g->prof;
    if (g->be && g->be->mark_destroy)
        for (int i = 0; i < p->cap; i++)
            if (p->marks[i]) g->be->mark_destroy(g->be, p->marks[i]);
    free(p->marks);
    free(p->op);
    p->marks = NULL;
    p->op = NULL;
    p->cap = p->n_marks = 0;
}

void syn__profile_free(syn_graph *g) {
    if (!g || !g->prof) return;
    if (getenv("SYN_PROFILE") && strcmp(getenv("SYN_PROFILE"), "1") == 0 && g->prof->steps > 0) {
        char report[4096];
        if (syn_graph_profile_report(g, report, sizeof report) == SYN_OK) fputs(report, stderr);
    }
    destroy_marks(g);
    free(g->prof);
    g->prof = NULL;
}

syn_status syn_graph_set_profiling(syn_graph *g, bool on) {
    if (!g) return syn__error(SYN_ERR_ARG, "syn_graph_set_profiling: graph is NULL");
    if (!on) {
        syn__profile_free(g);
        return SYN_OK;
    }
    if (g->prof) return SYN_OK;
    g->prof = syn__calloc(1, sizeof *g->prof, "syn_graph_set_profiling");
    if (!g->prof) return SYN_ERR_OOM;
    g->prof->dir = -1;
    return SYN_OK;
}

/* Room for one more mark (created once, reused every pass). */
static bool grow(syn_graph *g) {
    syn__profile *p = g->prof;
    if (p->n_marks < p->cap) return true;
    int cap = p->cap ? 2 * p->cap : 64;
    void **m = realloc(p->marks, (size_t)cap * sizeof *m);
    if (!m) return false;
    p->marks = m;
    int *o = realloc(p->op, (size_t)cap * sizeof *o);
    if (!o) return false;
    p->op = o;
    for (int i = p->cap; i < cap; i++) {
        p->marks[i] = NULL;
        if (g->be->mark_create && g->be->mark_create(g->be, &p->marks[i]) != SYN_OK) {
            p->cap = i; /* the ones created so far are kept and freed later */
            return false;
        }
    }
    p->cap = cap;
    return true;
}

static void mark(syn_graph *g, int op) {
    syn__profile *p = g->prof;
    if (g->be->mark_record) {
        if (!grow(g) || g->be->mark_record(g->be, p->marks[p->n_marks]) != SYN_OK) {
            p->failed = true;
            return;
        }
        p->op[p->n_marks++] = op;
        return;
    }
    double t = syn__host_ms();
    if (p->n_marks++ > 0) {
        p->ms[p->dir][op] += t - p->last_ms;
        p->calls[p->dir][op]++;
    }
    p->last_ms = syn__host_ms(); /* the profiler's own time is not counted */
}

void syn__profile_begin(syn_graph *g, int dir) {
    syn__profile *p = g->prof;
    if (!p || p->failed) return;
    p->dir = dir;
    p->n_marks = 0;
    mark(g, SYN_OP_INPUT);
}

void syn__profile_node(syn_graph *g, const syn_node *v) {
    syn__profile *p = g->prof;
    if (!p || p->failed || p->dir < 0) return;
    mark(g, syn__node_kind(v));
}

void syn__profile_end(syn_graph *g) {
    syn__profile *p = g->prof;
    if (!p || p->dir < 0) return;
    const int dir = p->dir;
    p->dir = -1;
    if (p->failed) return;
    if (g->be->mark_elapsed)
        for (int k = 1; k < p->n_marks; k++) {
            double ms = 0;
            if (g->be->mark_elapsed(g->be, p->marks[k - 1], p->marks[k], &ms) != SYN_OK) {
                p->failed = true;
                return;
            }
            p->ms[dir][p->op[k]] += ms;
            p->calls[dir][p->op[k]]++;
        }
    p->n_marks = 0;
    /* a step ends with its backward pass (or the forward of an inference graph) */
    if (dir == 1 || g->inference) {
        if (!p->warm) {
            memset(p->ms, 0, sizeof p->ms);
            memset(p->calls, 0, sizeof p->calls);
            p->warm = true;
        } else {
            p->steps++;
        }
    }
}

syn_status syn_graph_profile_report(syn_graph *g, char *buf, size_t size) {
    if (!g || !buf || size == 0) return syn__error(SYN_ERR_ARG, "syn_graph_profile_report: NULL argument");
    buf[0] = 0;
    if (!g->prof) return syn__error(SYN_ERR_ARG, "syn_graph_profile_report: profiling is off for this graph");
    const syn__profile *p = g->prof;
    char dev[32];
    size_t len = 0;
#define OUT(...)                                                                                     \
    do {                                                                                             \
        int k_ = snprintf(buf + len, size - len, __VA_ARGS__);                                       \
        if (k_ < 0 || (size_t)k_ >= size - len) return SYN_OK; /* truncated */                        \
        len += (size_t)k_;                                                                           \
    } while (0)
    double total = 0;
    int order[SYN_KIND_COUNT], n = 0;
    for (int op = 0; op < SYN_KIND_COUNT; op++)
        if (p->calls[0][op] || p->calls[1][op]) {
            order[n++] = op;
            total += p->ms[0][op] + p->ms[1][op];
        }
    for (int i = 1; i < n; i++) /* by total time, largest first (a few dozen ops) */
        for (int j = i; j > 0 && p->ms[0][order[j]] + p->ms[1][order[j]] > p->ms[0][order[j - 1]] + p->ms[1][order[j - 1]];
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    const double steps = p->steps > 0 ? (double)p->steps : 1.0;
    OUT("synapse profile: graph of %d nodes on %s, %lld %s after the first%s; device ms per step (kernels of the "
        "graph only: optimizer updates and host copies are outside)\n",
        g->n, syn_device_str(g->dev, dev, sizeof dev), (long long)p->steps, g->inference ? "forwards" : "steps",
        p->failed ? " (timing stopped: a device mark failed)" : "");
    OUT("  %-25s %10s %7s %11s %7s %7s\n", "op", "forward", "calls", "backward", "calls", "share");
    for (int i = 0; i < n; i++) {
        int op = order[i];
        double t = p->ms[0][op] + p->ms[1][op];
        OUT("  %-25s %10.3f %7.1f %11.3f %7.1f %6.1f%%\n", syn__kind_name(op), p->ms[0][op] / steps,
            (double)p->calls[0][op] / steps, p->ms[1][op] / steps, (double)p->calls[1][op] / steps,
            total > 0 ? 100.0 * t / total : 0.0);
    }
    OUT("  %-25s %10.3f %7s %11s %7s\n", "total", total / steps, "", "", "");
#undef OUT
    return SYN_OK;
}
