/* Running training figures on the graph's device (syn_fit, syn_evaluate):
 * the loss summed over rows and the rows classified right, added by a kernel
 * queued after each step and read back only when the figures are shown. On
 * a GPU a step then never waits for the device: the host queues the next
 * batch while the current one runs. */
#include <stdlib.h>
#include "../backend.h"

struct syn__metrics {
    syn_graph *g;
    double *acc; /* device: loss sum, rows right */
};

syn_status syn__metrics_create(syn_graph *g, syn__metrics **out) {
    *out = NULL;
    if (!g || !g->compiled) return syn__error(SYN_ERR_ARG, "metrics: the graph is not compiled");
    syn__metrics *m = syn__calloc(1, sizeof *m, "metrics");
    if (!m) return SYN_ERR_OOM;
    m->g = g;
    syn_status s = g->be->alloc(g->be, 2 * sizeof(double), (void **)&m->acc);
    if (s == SYN_OK) s = g->be->zero(g->be, m->acc, 2 * sizeof(double));
    if (s != SYN_OK) {
        syn__metrics_free(m);
        return s;
    }
    *out = m;
    return SYN_OK;
}

void syn__metrics_free(syn__metrics *m) {
    if (!m) return;
    if (m->acc) m->g->be->free(m->g->be, m->acc);
    free(m);
}

syn_status syn__metrics_add(syn__metrics *m, const syn_node *loss, const syn_node *logits, const syn_node *labels,
                            int64_t n) {
    syn_graph *g = m->g;
    if (loss->shape.ndim != 0 || loss->ran_pass != g->pass || !loss->keep)
        return syn__error(SYN_ERR_ARG, "metrics: the loss (node %d) is not a scalar of this pass", loss->id);
    int64_t classes = 0;
    if (logits) {
        if (logits->shape.ndim != 2 || logits->shape.dim[0] != n || !logits->keep || logits->ran_pass != g->pass ||
            labels->dtype != SYN_I32 || syn__numel(labels) != n)
            return syn__error(SYN_ERR_ARG, "metrics: logits (node %d) must be kept (%lld, classes) of this pass, with "
                              "%lld i32 labels", logits->id, (long long)n, (long long)n);
        classes = logits->shape.dim[1];
    }
    return g->be->metrics(g->be, loss->value, logits ? logits->value : NULL, logits ? labels->value : NULL, n, classes,
                          m->acc);
}

syn_status syn__metrics_take(syn__metrics *m, double *loss_sum, int64_t *correct) {
    double h[2];
    syn_backend *be = m->g->be;
    SYN_TRY(be->copy_d2h(be, h, m->acc, sizeof h));
    *loss_sum = h[0];
    *correct = (int64_t)h[1];
    return SYN_OK;
}

syn_status syn__metrics_reset(syn__metrics *m) { return m->g->be->zero(m->g->be, m->acc, 2 * sizeof(double)); }
