/* The fusion pass, run by syn_graph_compile before the memory plan. It
 * rewrites the chains that follow every convolution of a ResNet, VGG or DCGAN
 *
 *     batch_norm(x) -> relu | leaky_relu
 *     batch_norm(x) -> add(., z) -> relu | leaky_relu
 *
 * into one batch-norm node with an epilogue: y = act(bn(x) [+ z]). The
 * activation's node takes over (its users and its handle keep their meaning)
 * and the nodes before it are absorbed: no kernel, no buffer. Forward, that
 * saves writing and reading back the intermediate values; backward, the
 * activation's and the add's gradients are formed inside the batch norm's
 * kernels. A chain fuses only where nobody else sees the intermediates: each
 * is read once and none is kept (syn_graph_keep, outputs, losses). */
#include <stdlib.h>
#include <string.h>
#include "../backend.h"

static bool unfused_bn(const syn_node *b) {
    return b->op == SYN_OP_BATCH_NORM && b->n_in == 5 && b->i[SYN_BN_ACT] == SYN_BN_ACT_NONE;
}

/* The batch norm feeding v (directly or through an add), with *z the add's
 * other operand, or NULL when the chain does not fuse. uses: edges into each
 * node. */
static syn_node *chain_of(syn_node *v, const int *uses, syn_node **z) {
    syn_node *p = v->in[0];
    *z = NULL;
    if (uses[p->id] != 1 || p->keep || p->dtype != SYN_F32) return NULL;
    if (p->op == SYN_OP_BATCH_NORM) return unfused_bn(p) ? p : NULL;
    if (p->op != SYN_OP_ADD || !syn_shape_equal(&p->in[0]->cap_shape, &p->in[1]->cap_shape)) return NULL;
    for (int k = 0; k < 2; k++) {
        syn_node *b = p->in[k];
        if (unfused_bn(b) && uses[b->id] == 1 && !b->keep &&
            syn_shape_equal(&b->cap_shape, &p->cap_shape)) {
            *z = p->in[1 - k];
            return b;
        }
    }
    return NULL;
}

void syn__fuse(syn_graph *g) {
    int *uses = calloc((size_t)g->n, sizeof *uses);
    if (!uses) return; /* an optimisation only: the graph runs as built */
    for (int i = 0; i < g->n; i++)
        if (!g->nodes[i]->absorbed_by) /* by an earlier compile that failed later */
            for (int k = 0; k < g->nodes[i]->n_in; k++) uses[g->nodes[i]->in[k]->id]++;
    for (int i = 0; i < g->n; i++) {
        syn_node *v = g->nodes[i], *z;
        const bool relu = v->op == SYN_OP_RELU, leaky = v->op == SYN_OP_LEAKY_RELU && v->f[0] > 0.0f;
        if (!relu && !leaky) continue;
        syn_node *b = chain_of(v, uses, &z);
        if (!b) continue;
        syn_node *add = v->in[0] == b ? NULL : v->in[0];
        syn_node **in = realloc(v->in, 6 * sizeof *in);
        if (!in) continue;
        v->in = in;
        memcpy(in, b->in, 5 * sizeof *in);
        if (z) in[5] = z;
        const float slope = leaky ? v->f[0] : 0.0f;
        v->n_in = z ? 6 : 5;
        v->op = SYN_OP_BATCH_NORM;
        memcpy(v->f, b->f, sizeof v->f);
        memcpy(v->i, b->i, sizeof v->i);
        v->i[SYN_BN_ACT] = leaky ? SYN_BN_ACT_LEAKY : SYN_BN_ACT_RELU;
        v->f[SYN_BN_SLOPE] = slope;
        v->aux_bytes = b->aux_bytes;
        b->absorbed_by = v;
        if (add) add->absorbed_by = v;
    }
    free(uses);
}

static const char *const fused_names[4] = {"batch_norm+relu", "batch_norm+leaky_relu", "batch_norm+add+relu",
                                           "batch_norm+add+leaky_relu"};

int syn__node_kind(const syn_node *n) {
    if (n->op != SYN_OP_BATCH_NORM || n->i[SYN_BN_ACT] == SYN_BN_ACT_NONE) return (int)n->op;
    return SYN_OP_COUNT + (n->i[SYN_BN_ACT] == SYN_BN_ACT_LEAKY) + 2 * (n->n_in == 6);
}

const char *syn__kind_name(int kind) { return kind < SYN_OP_COUNT ? syn__op_name[kind] : fused_names[kind - SYN_OP_COUNT]; }

const char *syn__node_label(const syn_node *n) { return syn__kind_name(syn__node_kind(n)); }
