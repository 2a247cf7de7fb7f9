/* Private structures shared by the core (tensor, graph, executor, params),
 * the backends and the layers. Nothing here is exported. */
#ifndef SYN_INTERNAL_H
#define SYN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "synapse/synapse.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---- */

/* Records a formatted message for this thread and returns s. */
syn_status syn__error(syn_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define SYN_TRY(expr)                          \
    do {                                       \
        syn_status syn__s = (expr);            \
        if (syn__s != SYN_OK) return syn__s;   \
    } while (0)
/* Puts back a message syn_last_error gave earlier (as it was, status and all). */
void syn__error_restore(const char *msg);
/* malloc/calloc that record SYN_ERR_OOM with the size on failure. */
void *syn__malloc(size_t bytes, const char *what);
void *syn__calloc(size_t n, size_t size, const char *what);

/* ---- ops ---- */

enum { SYN_LEAF = 1, SYN_BW_IN = 2, SYN_BW_OUT = 4, SYN_NO_GRAD = 8 };

typedef enum {
#define SYN_OP(id, name, arity, flags) SYN_OP_##id,
#include "../ops.def"
#undef SYN_OP
    SYN_OP_COUNT
} syn_op;

extern const char *const syn__op_name[SYN_OP_COUNT];
extern const int syn__op_arity[SYN_OP_COUNT];
extern const int syn__op_flags[SYN_OP_COUNT];

/* ---- devices and storage ---- */

typedef struct syn_backend syn_backend;

/* The backend of a device, created on first use. */
syn_status syn__backend_get(syn_device dev, syn_backend **out);

typedef struct {
    syn_backend *be;
    void *data;
    size_t bytes;
    int refs;
} syn__storage;

struct syn_tensor {
    syn__storage *st;
    syn_shape shape;
    syn_dtype dtype;
};

static inline void *syn__tensor_data(const syn_tensor *t) { return t->st->data; }

/* ---- parameters ---- */

typedef struct {
    char *name;
    syn_tensor *value, *grad;
    bool trainable;
} syn__param;

struct syn_params {
    syn_device dev;
    syn_backend *be;
    uint64_t seed;
    syn__param *items;
    int n, cap;
    float *scratch; /* one device float: clipping accumulator */
};

/* ---- graphs ---- */

#define SYN_NODE_MAX_F 4
#define SYN_NODE_MAX_I 12

/* Attribute slots in syn_node.i[] of the convolution and pooling ops, shared by
 * the shape rules (graph_cnn.c) and every backend's kernels. */
enum {
    SYN_A_SH, SYN_A_SW,       /* stride */
    SYN_A_PH, SYN_A_PW,       /* padding */
    SYN_A_DH, SYN_A_DW,       /* dilation (conv) */
    SYN_A_GROUPS,             /* groups (conv) */
    SYN_A_OPH, SYN_A_OPW,     /* output padding (transposed conv) */
    SYN_A_KH, SYN_A_KW,       /* window (pooling) */
    SYN_A_INCL = SYN_A_GROUPS /* count_include_pad (avg pooling) */
};

/* Attribute slots of the recurrent op (graph_rnn.c). Inputs: x, w_ih, w_hh,
 * then b_ih, b_hh when SYN_A_RNN_BIAS, state0 when SYN_A_RNN_STATE, lengths
 * when SYN_A_RNN_LENGTHS. */
enum {
    SYN_A_RNN_MODE,    /* syn_rnn_mode */
    SYN_A_RNN_HIDDEN,  /* H */
    SYN_A_RNN_BIAS,    /* 0/1 */
    SYN_A_RNN_STATE,   /* input index of state0, 0 if none */
    SYN_A_RNN_LENGTHS  /* input index of lengths, 0 if none */
};
/* Gates per step of each recurrent mode (RNN 1, LSTM 4, GRU 3) and the
 * state width S (LSTM carries h and c: 2H). */
static inline int syn__rnn_gates(int mode) { return mode == SYN_RNN_LSTM ? 4 : mode == SYN_RNN_GRU ? 3 : 1; }
static inline int64_t syn__rnn_state(int mode, int64_t H) { return mode == SYN_RNN_LSTM ? 2 * H : H; }

struct syn_node {
    syn_graph *g;
    int id;               /* index in g->nodes (build order is a topological order) */
    syn_op op;
    int n_in;
    syn_node **in;
    syn_shape shape;      /* current shape (after the last feed) */
    syn_shape cap_shape;  /* shape at build time: the capacity */
    syn_dtype dtype;
    float f[SYN_NODE_MAX_F];   /* op attributes: slope, p, scalar ... */
    int64_t i[SYN_NODE_MAX_I]; /* op attributes: axes, perm, keepdim ... */
    char *name;                /* inputs and parameters */
    int param_index;           /* PARAM: its index in param_set, bound at compile (an index,
                                  not a pointer: adding parameters may move the set's array) */
    syn_params *param_set;
    uint64_t rng_seed, rng_offset; /* dropout: the stream of the last forward */
    bool requires_grad;
    bool keep;
    /* fused away at compile (fuse.c): the node `absorbed_by` computes this
     * node's op along with its own; it has no kernel, buffer or value */
    syn_node *absorbed_by;
    /* per-node state saved by the forward for the backward (batch-norm
     * statistics ...): aux_bytes is set by shape inference */
    size_t aux_bytes;
    void *aux;
    /* execution, set by the memory plan */
    void *value;
    void *grad;
    int value_buf, grad_buf, aux_buf;
    bool grad_live;            /* written during this backward pass (zeroed, or fresh below) */
    /* during one backward kernel: this node's gradient holds garbage, and the
     * kernel, whose backend set grad_write for its op, WRITES it instead of
     * adding to it (saves a memset and a read; see syn__grad_add) */
    bool grad_fresh;
    uint32_t ran_pass;         /* the forward pass (syn_graph.pass) that last ran it */
    /* an I32 input fed from the host: the range of the values fed last, so
     * a CUDA kernel can trust it instead of checking on the device (which
     * costs a stream synchronisation); false after any other feed */
    bool i32_known;
    int32_t i32_min, i32_max;
    /* the narrowest [lo, hi] kernels trusted that range against since the
     * executor last reset it (syn__i32_known_within): what a captured CUDA
     * graph's kernels rely on when they skipped their check (replay.c) */
    int64_t i32_trust_lo, i32_trust_hi;
};

/* true when n is an I32 input whose last (host) feed held only values in
 * [lo, hi]: kernels may skip their device-side range check. A true answer is
 * recorded in n's trusted range. */
static inline bool syn__i32_known_within(syn_node *n, int64_t lo, int64_t hi) {
    if (!n->i32_known || n->i32_min < lo || n->i32_max > hi) return false;
    if (lo > n->i32_trust_lo) n->i32_trust_lo = lo;
    if (hi < n->i32_trust_hi) n->i32_trust_hi = hi;
    return true;
}

struct syn_graph {
    syn_params *params;
    syn_status err;
    char err_msg[512];    /* the first build error's message */
    syn_node **nodes;
    int n, cap;
    int layer_count;      /* automatic layer names */
    /* compiled state */
    bool compiled, inference, staged;
    syn_device dev;
    syn_backend *be;
    void *arena;          /* the memory plan's one allocation */
    void **bufs;          /* per planned interval: its place in the arena; under ASan
                             (bufs_owned) one allocation per shared buffer instead */
    bool bufs_owned;
    int n_bufs;
    size_t mem_bytes;
    bool training;
    uint64_t seed, rng_counter;
    bool forward_done;
    uint32_t pass;               /* forward passes begun (syn_node.ran_pass) */
    bool *mark;                  /* n flags of scratch for one call (forward_to, backward): no
                                    allocation per step */
    bool backward_in_pass;       /* a backward pass ran since this forward pass began */
    struct syn__profile *prof;   /* kernel timing (profile.c), NULL when off */
    /* steps replayed from captured device graphs (replay.c) */
    bool replay_on;              /* compiled with cuda_graphs on a backend that can capture */
    bool dry;                    /* passes do the host bookkeeping only: a replay queues the kernels */
    struct syn__replay *rp;      /* NULL until the first syn_graph_forward_backward */
};
/* Frees the captured graphs (replay.c); before the memory plan. */
void syn__replay_free(syn_graph *g);

/* Kernel timing (profile.c): a pass begins (dir 0 forward, 1 backward), a
 * node's kernel was queued, the pass ends; no-ops when profiling is off. */
void syn__profile_begin(syn_graph *g, int dir);
void syn__profile_node(syn_graph *g, const syn_node *v);
void syn__profile_end(syn_graph *g);
void syn__profile_free(syn_graph *g);
/* The monotonic clock in ms (device.c): the CPU's timer and profile. */
double syn__host_ms(void);

/* Records a build error in the graph (first one sticks) and returns NULL. */
syn_node *syn__graph_fail(syn_graph *g, syn_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Keeps the first build error (status and the current message) in the graph. */
void syn__graph_record(syn_graph *g, syn_status s);
/* Adds a node after the caller filled op, inputs, attributes; runs shape
 * inference; returns NULL (recorded) on error. */
syn_node *syn__graph_add(syn_graph *g, syn_op op, syn_node *const *in, int n_in, const float *f,
                         const int64_t *iv);
/* Shape inference for one node from its inputs' current shapes. */
syn_status syn__infer_shape(syn_node *n, syn_shape *out, syn_dtype *dt);
/* The same for the convolution family (graph_cnn.c) and the sequence ops
 * (graph_rnn.c). */
syn_status syn__infer_shape_cnn(syn_node *n, syn_shape *out, syn_dtype *dt);
syn_status syn__infer_shape_rnn(syn_node *n, syn_shape *out, syn_dtype *dt);
/* Shape errors naming the op, a reason and the input shapes. */
syn_status syn__shape_err(const syn_node *n, const char *what);
/* Batch norm's fused epilogue (n->i[SYN_BN_ACT], slope in n->f[SYN_BN_SLOPE],
 * an optional 6th input z of x's shape): y = act(bn(x) + z). The compile-time
 * fusion pass (fuse.c) makes such nodes from batch_norm [-> add] -> relu or
 * leaky_relu chains; the backward rule reads y for the activation's mask. */
enum { SYN_BN_ACT = 2, SYN_BN_SLOPE = 2 };
enum { SYN_BN_ACT_NONE = 0, SYN_BN_ACT_RELU = 1, SYN_BN_ACT_LEAKY = 2 };
/* Rewrites fusable chains into single nodes (fuse.c); never fails: a chain
 * that cannot be rewritten stays as built. */
void syn__fuse(syn_graph *g);
/* What a node's backward rule reads (ops.def's flags, plus the output for a
 * batch norm with a fused activation). */
static inline int syn__node_flags(const syn_node *n) {
    int f = syn__op_flags[n->op];
    if (n->op == SYN_OP_BATCH_NORM && n->i[SYN_BN_ACT] != SYN_BN_ACT_NONE) f |= SYN_BW_OUT;
    return f;
}
/* Whether a node's backward rule reads input k's value (a fused residual z
 * is read forward only). */
static inline bool syn__bw_reads_in(const syn_node *n, int k) {
    return (syn__op_flags[n->op] & SYN_BW_IN) && !(n->op == SYN_OP_BATCH_NORM && k == 5);
}
/* The op, with a fused epilogue: "batch_norm+add+relu" ... */
const char *syn__node_label(const syn_node *n);
/* Kinds of node for the profile: the ops, then the four fused batch norms
 * (relu, leaky relu, each with and without the add). */
enum { SYN_KIND_COUNT = SYN_OP_COUNT + 4 };
int syn__node_kind(const syn_node *n);
const char *syn__kind_name(int kind);
/* Running training figures on the graph's device (metrics.c): a loss summed
 * over rows and the rows whose first largest logit is the label, added after
 * each step without waiting for the device, read (a synchronisation) when
 * shown. */
typedef struct syn__metrics syn__metrics;
syn_status syn__metrics_create(syn_graph *g, syn__metrics **out);
void syn__metrics_free(syn__metrics *m);
/* acc += loss * n (+ rows right, when logits (n, classes) and i32 labels are
 * given; logits NULL: loss only); nodes of the current forward pass, kept */
syn_status syn__metrics_add(syn__metrics *m, const syn_node *loss, const syn_node *logits, const syn_node *labels,
                            int64_t n);
/* The sums so far (waits for the device). */
syn_status syn__metrics_take(syn__metrics *m, double *loss_sum, int64_t *correct);
syn_status syn__metrics_reset(syn__metrics *m);
/* Plans buffers for every value and gradient and allocates them. */
syn_status syn__memplan(syn_graph *g);
void syn__memplan_free(syn_graph *g);
/* A new automatic layer name "<prefix><k>" in buf. */
const char *syn__layer_name(syn_graph *g, const char *prefix, const char *given, char *buf, size_t size);

/* A PARAM node's parameter (valid after compile). */
static inline syn__param *syn__node_param(const syn_node *n) { return &n->param_set->items[n->param_index]; }

/* A slice node's input seen as (outer, full, inner) around its axis (the
 * window is i[1] .. i[1] + i[2] along full): shared by the backends. */
static inline void syn__slice_dims(const syn_node *n, int64_t *outer, int64_t *full, int64_t *inner) {
    const syn_shape *x = &n->in[0]->shape;
    int axis = (int)n->i[0] < 0 ? (int)n->i[0] + x->ndim : (int)n->i[0];
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->dim[d];
    for (int d = axis + 1; d < x->ndim; d++) *inner *= x->dim[d];
    *full = x->dim[axis];
}

/* Element strides s[0..nd) of x read as an nd-dim array of sizes ydim
 * (numpy broadcasting: x's dims right-aligned; 0 where x has size 1 and the
 * output does not): shared by the backends' broadcasting binary ops. */
static inline void syn__bcast_strides(const syn_shape *x, int nd, const int64_t *ydim, int64_t *s) {
    int64_t st = 1;
    for (int d = nd - 1; d >= 0; d--) {
        int dx = d - (nd - x->ndim);
        int64_t size = dx >= 0 ? x->dim[dx] : 1;
        s[d] = (size == 1 && ydim[d] != 1) ? 0 : st;
        st *= size;
    }
}

/* Elements of a node's current shape. */
static inline int64_t syn__numel(const syn_node *n) { return syn_shape_numel(&n->shape); }
/* Normalises a possibly negative axis; -1 if out of range. */
static inline int syn__axis(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return (axis < 0 || axis >= ndim) ? -1 : axis;
}

#ifdef __cplusplus
}
#endif
#endif
