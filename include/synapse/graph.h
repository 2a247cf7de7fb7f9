/* Building and running computation graphs.
 *
 * A graph is built once from inputs, parameters and ops. Every op checks and
 * infers shapes when it is added; a bad call returns NULL and records the error
 * in the graph (the first error sticks: later ops that receive NULL also return
 * NULL, and syn_graph_compile / syn_graph_status report the first error). So a
 * whole model can be built without checking each line, then checked once.
 *
 * Gradients: syn_graph_backward runs the backward rule of every node in reverse
 * order. Backward rules ACCUMULATE (+=) into the gradients of their inputs; the
 * executor zeroes the gradients of intermediate values itself, while parameter
 * gradients keep accumulating until syn_params_zero_grad (so several graphs,
 * or several backward passes, can add into one parameter set).
 *
 * Batch size: the leading dim of every input is its capacity. A feed may carry
 * fewer rows (the last partial batch); shapes are then re-inferred and the
 * buffers planned for the capacity are reused. */
#ifndef SYNAPSE_GRAPH_H
#define SYNAPSE_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include "device.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct syn_graph syn_graph;
typedef struct syn_node syn_node;   /* borrowed: owned by its graph */
typedef struct syn_params syn_params;

/* ---- parameter sets ---------------------------------------------------- */

/* Initialisers. fan_in = prod(dim[1..]), fan_out = dim[0] (PyTorch's layout,
 * weights are (out, in, ...)); a 1-D parameter (a bias) takes the fan_in of
 * the layer it belongs to through syn_init.fan_in when that is nonzero. */
typedef enum {
    SYN_INIT_ZEROS = 0,
    SYN_INIT_CONSTANT,        /* a */
    SYN_INIT_UNIFORM,         /* U(a, b) */
    SYN_INIT_NORMAL,          /* N(a, b^2) */
    SYN_INIT_XAVIER_UNIFORM,  /* U(+-gain*sqrt(6/(fan_in+fan_out))), gain = a (0 -> 1) */
    SYN_INIT_XAVIER_NORMAL,   /* N(0, gain^2*2/(fan_in+fan_out)) */
    SYN_INIT_KAIMING_UNIFORM, /* U(+-sqrt(6/fan_in)) (ReLU gain) */
    SYN_INIT_KAIMING_NORMAL,  /* N(0, 2/fan_in) */
    SYN_INIT_FANIN_UNIFORM    /* U(+-1/sqrt(fan_in)): PyTorch's default for Linear */
} syn_init_kind;

typedef struct {
    syn_init_kind kind;
    float a, b;
    int64_t fan_in; /* 0: from the shape */
} syn_init;

/* A set of named parameters on one device (value, gradient, optimizer state).
 * `seed` drives initialisation: the same seed gives the same values on every
 * device. owned: free with syn_params_free (after the graphs that use it). */
SYN_API syn_status syn_params_create(syn_device dev, uint64_t seed, syn_params **out);
SYN_API void syn_params_free(syn_params *p);
SYN_API syn_device syn_params_device(const syn_params *p);
SYN_API int syn_params_count(const syn_params *p);
SYN_API int64_t syn_params_numel(const syn_params *p);
/* The i-th parameter. borrowed: valid until syn_params_free. */
SYN_API syn_status syn_params_get(const syn_params *p, int i, const char **name,
                                  syn_tensor **value, syn_tensor **grad);
/* By name; SYN_ERR_ARG if absent. borrowed: valid until syn_params_free. */
SYN_API syn_status syn_params_find(const syn_params *p, const char *name, syn_tensor **value,
                                   syn_tensor **grad);
/* Adds a parameter (or returns the existing one of that name if its shape
 * matches: SYN_ERR_SHAPE if not), initialised by `init`. */
SYN_API syn_status syn_params_add(syn_params *p, const char *name, syn_shape shape,
                                  const syn_init *init, syn_tensor **value);
/* Excludes (or re-includes) a parameter from gradients and optimizer updates. */
SYN_API syn_status syn_params_set_trainable(syn_params *p, const char *name, bool trainable);
/* grad = 0 for every parameter. */
SYN_API syn_status syn_params_zero_grad(syn_params *p);
/* Scales all gradients so that their global L2 norm is at most max_norm;
 * returns the norm before clipping in *norm (may be NULL). */
SYN_API syn_status syn_params_clip_grad_norm(syn_params *p, float max_norm, float *norm);
/* Fills a tensor according to an initialiser. (seed, stream) select an
 * independent Philox stream; the result is identical on every device. */
SYN_API syn_status syn_init_tensor(syn_tensor *t, const syn_init *init, uint64_t seed, uint64_t stream);

/* ---- building ---------------------------------------------------------- */

/* `params` (borrowed, may be NULL) is where layers find and create their
 * parameters; see syn_graph_use_params. owned: free with syn_graph_free. */
SYN_API syn_status syn_graph_create(syn_params *params, syn_graph **out);
SYN_API void syn_graph_free(syn_graph *g);
/* Subsequent layers take their parameters from `params` (e.g. a GAN's G-step
 * graph uses the generator's set, then the discriminator's). */
SYN_API void syn_graph_use_params(syn_graph *g, syn_params *params);
SYN_API syn_params *syn_graph_params(const syn_graph *g);
/* The first error met while building (SYN_OK if none). */
SYN_API syn_status syn_graph_status(const syn_graph *g);
SYN_API int syn_graph_node_count(const syn_graph *g);

/* Leaves. An input's leading dim is its capacity (the largest batch fed). */
SYN_API syn_node *syn_input(syn_graph *g, const char *name, syn_dtype dt, syn_shape shape);
/* A node bound to parameter `name` of the graph's current set, created with
 * `init` if absent. */
SYN_API syn_node *syn_param(syn_graph *g, const char *name, syn_shape shape, const syn_init *init);

/* Elementwise with NumPy broadcasting: (2,1,5) + (3,1) -> (2,3,5). */
SYN_API syn_node *syn_add(syn_graph *g, syn_node *a, syn_node *b);
SYN_API syn_node *syn_sub(syn_graph *g, syn_node *a, syn_node *b);
SYN_API syn_node *syn_mul(syn_graph *g, syn_node *a, syn_node *b);
SYN_API syn_node *syn_div(syn_graph *g, syn_node *a, syn_node *b);
/* a + c, a * c, a ^ c (a > 0 unless c is an integer) */
SYN_API syn_node *syn_add_scalar(syn_graph *g, syn_node *a, float c);
SYN_API syn_node *syn_mul_scalar(syn_graph *g, syn_node *a, float c);
SYN_API syn_node *syn_pow_scalar(syn_graph *g, syn_node *a, float c);

/* (..., M, K) @ (..., K, N) -> (..., M, N); b may be 2-D and is then shared by
 * every batch; otherwise the batch dims must be equal. */
SYN_API syn_node *syn_matmul(syn_graph *g, syn_node *a, syn_node *b);
/* x: (..., in)  w: (out, in)  b: (out) or NULL  ->  (..., out) */
SYN_API syn_node *syn_linear_op(syn_graph *g, syn_node *x, syn_node *w, syn_node *b);

SYN_API syn_node *syn_relu(syn_graph *g, syn_node *a);
SYN_API syn_node *syn_leaky_relu(syn_graph *g, syn_node *a, float slope);
SYN_API syn_node *syn_sigmoid(syn_graph *g, syn_node *a);
SYN_API syn_node *syn_tanh(syn_graph *g, syn_node *a);
SYN_API syn_node *syn_gelu(syn_graph *g, syn_node *a); /* exact, with erf */
/* Along `axis` (negative counts from the end). */
SYN_API syn_node *syn_softmax(syn_graph *g, syn_node *a, int axis);
SYN_API syn_node *syn_log_softmax(syn_graph *g, syn_node *a, int axis);

/* Reductions over the axes in `axes`, a bit mask: SYN_AXIS(0) | SYN_AXIS(2);
 * SYN_ALL_AXES reduces to a scalar. keepdim keeps reduced axes as size 1. */
#define SYN_AXIS(i) (1u << (i))
#define SYN_ALL_AXES 0x3fu
SYN_API syn_node *syn_sum(syn_graph *g, syn_node *a, unsigned axes, bool keepdim);
SYN_API syn_node *syn_mean(syn_graph *g, syn_node *a, unsigned axes, bool keepdim);

/* One dim may be -1 (inferred). The leading dim follows the batch when it is -1. */
SYN_API syn_node *syn_reshape(syn_graph *g, syn_node *a, syn_shape shape);
/* (N, ...) -> (N, prod(...)) */
SYN_API syn_node *syn_flatten(syn_graph *g, syn_node *a);
/* y.dim[i] = a.dim[perm[i]]; perm has a's ndim entries. */
SYN_API syn_node *syn_transpose(syn_graph *g, syn_node *a, const int *perm);
/* Joins n >= 1 nodes along `axis`; other dims must match. */
SYN_API syn_node *syn_concat(syn_graph *g, syn_node *const *xs, int n, int axis);
/* Zeroes each element with probability p in training mode and scales the
 * rest by 1/(1-p); identity in eval mode. */
SYN_API syn_node *syn_dropout(syn_graph *g, syn_node *a, float p);
/* Identity forward, no gradient backward (stop-gradient). */
SYN_API syn_node *syn_detach(syn_graph *g, syn_node *a);

/* Losses (scalar results). */
/* mean((pred - target)^2) */
SYN_API syn_node *syn_mse_loss(syn_graph *g, syn_node *pred, syn_node *target);
/* sum((pred - target)^2) */
SYN_API syn_node *syn_sse_loss(syn_graph *g, syn_node *pred, syn_node *target);
/* logits: (N, C) F32, labels: (N) I32 in [0, C)  ->  mean_i -log softmax(logits_i)[label_i] */
SYN_API syn_node *syn_cross_entropy(syn_graph *g, syn_node *logits, syn_node *labels);
/* mean(max(x,0) - x*t + log(1 + exp(-|x|))) with targets t in [0, 1] */
SYN_API syn_node *syn_bce_with_logits(syn_graph *g, syn_node *logits, syn_node *target);

/* ---- convolutional networks (NCHW) ----------------------------------------
 * Zero fields mean the defaults: stride 1, padding 0, dilation 1, groups 1,
 * output padding 0, so `(syn_conv_params){.pad_h = 1, .pad_w = 1}` is a 'same'
 * 3x3 convolution. */
typedef struct {
    int stride_h, stride_w;
    int pad_h, pad_w;
    int dilation_h, dilation_w;
    int groups;
    int out_pad_h, out_pad_w; /* transposed convolution only */
} syn_conv_params;

/* x: (N, C, H, W)  w: (K, C/groups, R, S)  b: (K) or NULL  ->  (N, K, P, Q)
 * P = (H + 2 pad - dilation (R - 1) - 1) / stride + 1 */
SYN_API syn_node *syn_conv2d_op(syn_graph *g, syn_node *x, syn_node *w, syn_node *b, const syn_conv_params *p);
/* The gradient of conv2d with respect to its input, as a layer (GAN generators):
 * x: (N, C, H, W)  w: (C, K/groups, R, S)  b: (K) or NULL  ->  (N, K, P, Q)
 * P = (H - 1) stride - 2 pad + dilation (R - 1) + out_pad + 1
 * out_pad must be below the stride or the dilation; on CUDA below the stride
 * (else the forward pass is SYN_ERR_UNSUPPORTED). */
SYN_API syn_node *syn_conv_transpose2d_op(syn_graph *g, syn_node *x, syn_node *w, syn_node *b,
                                          const syn_conv_params *p);
/* Windows of kh x kw moved by (sh, sw) over an input padded by (ph, pw);
 * stride 0 means stride = kernel. Max pooling pads with -inf. */
SYN_API syn_node *syn_max_pool2d(syn_graph *g, syn_node *x, int kh, int kw, int sh, int sw, int ph, int pw);
/* count_include_pad: divide by kh*kw (PyTorch's default) or by the in-bounds count. */
SYN_API syn_node *syn_avg_pool2d(syn_graph *g, syn_node *x, int kh, int kw, int sh, int sw, int ph, int pw,
                                 bool count_include_pad);
/* (N, C, H, W) -> (N, C, oh, ow): bin i covers [floor(i H / oh), ceil((i + 1) H / oh)). */
SYN_API syn_node *syn_adaptive_avg_pool2d(syn_graph *g, syn_node *x, int oh, int ow);
/* (N, C, H, W) -> (N, C): the mean over H and W. */
SYN_API syn_node *syn_global_avg_pool(syn_graph *g, syn_node *x);
/* x: (N, C, ...)  gamma, beta, running_mean, running_var: (C).
 * Training mode normalises with the batch's statistics (biased variance) and
 * updates the running ones: r = (1 - momentum) r + momentum s, with the
 * unbiased variance for r_var (PyTorch's rule); eval mode uses the running ones.
 * y = gamma (x - mean) / sqrt(var + eps) + beta */
SYN_API syn_node *syn_batch_norm_op(syn_graph *g, syn_node *x, syn_node *gamma, syn_node *beta,
                                    syn_node *running_mean, syn_node *running_var, float momentum, float eps);
/* x: (..., D)  gamma, beta: (D): each row normalised over its last dim. */
SYN_API syn_node *syn_layer_norm_op(syn_graph *g, syn_node *x, syn_node *gamma, syn_node *beta, float eps);
/* x: (N, C, ...): zeroes whole channels with probability p in training mode,
 * scaling the rest by 1/(1-p); identity in eval mode. */
SYN_API syn_node *syn_dropout2d(syn_graph *g, syn_node *x, float p);

/* ---- sequences ------------------------------------------------------------ */

/* The `length` entries of `a` from `start` along `axis` (negative counts from
 * the end); the gradient flows back into that window. */
SYN_API syn_node *syn_slice(syn_graph *g, syn_node *a, int axis, int64_t start, int64_t length);
/* idx: (...) I32 in [0, V)  weight: (V, D)  ->  (..., D): rows of the table.
 * An index outside [0, V) is an error of the forward pass (SYN_ERR_ARG). */
SYN_API syn_node *syn_embedding_op(syn_graph *g, syn_node *idx, syn_node *weight);

typedef enum { SYN_RNN_TANH = 0, SYN_RNN_RELU, SYN_RNN_LSTM, SYN_RNN_GRU } syn_rnn_mode;

/* One recurrent layer run over a whole sequence, batch first, with PyTorch's
 * cell equations and weight layouts (gates stacked in the rows of the weights:
 * LSTM i, f, g, o; GRU r, z, n):
 *   x: (B, T, I)  w_ih: (G H, I)  w_hh: (G H, H)  b_ih, b_hh: (G H) or both NULL
 *   state0: (B, S) or NULL (zeros)  lengths: (B) I32 in [0, T] or NULL (all T)
 *   ->  (B, T, S)
 * G is 1 (tanh, relu), 4 (LSTM) or 3 (GRU). The state S is h (H wide), or for
 * the LSTM h and c side by side (2H wide: [..., :H] is h, [..., H:] is c).
 * Output step t is the state after step t. Past a sample's length the state is
 * carried unchanged, so step T-1 holds every sample's final state (PyTorch's
 * packed sequences pad with zeros instead: mask the padded steps in the loss).
 * The gradient flows into every input but lengths. */
SYN_API syn_node *syn_rnn_op(syn_graph *g, syn_rnn_mode mode, syn_node *x, syn_node *w_ih, syn_node *w_hh,
                             syn_node *b_ih, syn_node *b_hh, syn_node *state0, syn_node *lengths);

/* Node facts. */
SYN_API syn_shape syn_node_shape(const syn_node *n);
SYN_API syn_dtype syn_node_dtype(const syn_node *n);
/* The op's name ("conv2d", "relu" ...). After compiling, a relu or leaky
 * relu that absorbed its batch norm (and an add) names the fused op:
 * "batch_norm+relu", "batch_norm+add+relu" (syn_compile_opts.no_fusion). */
SYN_API const char *syn_node_op_name(const syn_node *n);
/* Keeps this node's value readable after forward (outputs, losses and inputs
 * are always kept; other buffers are reused by the memory plan). */
SYN_API syn_status syn_graph_keep(syn_graph *g, syn_node *n);
/* Asks the backward pass for the gradient of the loss with respect to an f32
 * input (saliency maps, adversarial examples, a model's input sensitivity),
 * read with syn_graph_read_grad after it. Before compiling; a graph without
 * it computes no input gradient (the first layer's dx is left out). */
SYN_API syn_status syn_graph_input_grad(syn_graph *g, syn_node *x);

/* ---- running ----------------------------------------------------------- */

typedef struct {
    bool inference; /* plan no backward pass: more buffer reuse */
    bool staged;    /* a training graph run in stages with backward passes
                       between them (syn_graph_forward_to with resume): values
                       and gradients get separate buffers */
    bool no_fusion; /* run every node as built: no batch_norm [+ add] + relu
                       nodes (SYN_FUSE=0 in the environment does the same) */
    bool cuda_graphs; /* on a GPU, syn_graph_forward_backward replays steps
                         from captured CUDA graphs (SYN_CUDA_GRAPHS=1 or 0 in
                         the environment turns this on or off for every graph) */
} syn_compile_opts;

/* Sorts the nodes, checks that the device has a kernel for every op
 * (SYN_ERR_UNSUPPORTED names op and backend), plans and allocates memory.
 * The graph's parameters must live on `dev`. opts may be NULL. */
SYN_API syn_status syn_graph_compile(syn_graph *g, syn_device dev, const syn_compile_opts *opts);
SYN_API syn_device syn_graph_device(const syn_graph *g);

/* Copies host data into an input. shape must equal the input's, except that
 * its leading dim may be smaller (a partial batch). */
SYN_API syn_status syn_graph_feed(syn_graph *g, syn_node *input, const void *host, syn_shape shape);
/* Same from a tensor on any device. */
SYN_API syn_status syn_graph_feed_tensor(syn_graph *g, syn_node *input, const syn_tensor *t);
/* Feeds a kept node's value from the last forward into an input of the same
 * graph, on the device (no host round trip): a recurrent network's final state
 * carried into the next batch (truncated BPTT). Shapes as for syn_graph_feed. */
SYN_API syn_status syn_graph_feed_node(syn_graph *g, syn_node *input, const syn_node *from);

SYN_API syn_status syn_graph_forward(syn_graph *g);
/* The forward pass of the nodes `target` depends on, in build order.
 * resume false: a new pass (as syn_graph_forward, but only what `target`
 * needs). resume true: the pass goes on: nodes it already ran keep their
 * values (parameters changed since do not reach them) and only the rest of
 * what `target` needs runs, after any feeds since. One graph can so hold two
 * losses over shared work - a GAN's D and G steps over one G(z): forward to
 * the D loss, backward, D's optimizer step, then resume to the G loss, whose
 * new nodes see D's new weights. Resuming after a backward pass needs a graph
 * compiled with `staged` (else SYN_ERR_ARG): the memory plan of a plain
 * training graph lets gradients reuse values that only later stages read. */
SYN_API syn_status syn_graph_forward_to(syn_graph *g, syn_node *target, bool resume);
/* Seeds d(loss)/d(loss) = 1 and runs the backward rules; `loss` must be a
 * scalar node of this graph. Parameter gradients accumulate. */
SYN_API syn_status syn_graph_backward(syn_graph *g, syn_node *loss);

/* syn_graph_forward then syn_graph_backward(loss), as one training step.
 * On a graph compiled with cuda_graphs on a GPU, the first step with given
 * input shapes runs as usual, the second is captured as a CUDA graph, and
 * every later one with those shapes replays it: one launch instead of one per
 * kernel, same results. Only the inputs' contents and the parameters' values
 * may differ between replays (feeds and optimizer steps go between calls);
 * new shapes, labels or indices beyond the classes or the table (their
 * kernels then check them and report the error), and profiling run as usual.
 * Dropout in training mode is never captured. A step that cannot be captured
 * (it waits for the device, allocates, copies to the host) runs as usual and
 * the graph stops trying: syn_graph_replays says why. */
SYN_API syn_status syn_graph_forward_backward(syn_graph *g, syn_node *loss);
/* Steps syn_graph_forward_backward replayed (the captured ones included),
 * and in `why` (may be NULL) why steps are not captured, "" if nothing
 * stops them. */
SYN_API int64_t syn_graph_replays(const syn_graph *g, char *why, size_t size);

/* Training mode (default) enables dropout; eval mode disables it. */
SYN_API void syn_graph_set_training(syn_graph *g, bool training);
SYN_API bool syn_graph_training(const syn_graph *g);
/* Seeds the graph's random stream (dropout). Default: 0. */
SYN_API void syn_graph_set_seed(syn_graph *g, uint64_t seed);

/* Current shape of a node (after the last feed). */
SYN_API syn_shape syn_graph_shape(const syn_graph *g, const syn_node *n);
/* Reads a kept node's value after forward; bytes must match its current size. */
SYN_API syn_status syn_graph_read(const syn_graph *g, const syn_node *n, void *host, size_t bytes);
/* Reads a scalar F32 node. */
SYN_API syn_status syn_graph_read_scalar(const syn_graph *g, const syn_node *n, float *out);
/* Reads the gradient of a node after backward: a parameter's (as accumulated
 * in its set), an input's asked for with syn_graph_input_grad, or a kept
 * node's that depends on a parameter or such an input (each backward pass
 * writes these afresh). */
SYN_API syn_status syn_graph_read_grad(const syn_graph *g, const syn_node *n, void *host, size_t bytes);
/* Bytes of device memory the plan allocated for activations and gradients. */
SYN_API size_t syn_graph_memory_bytes(const syn_graph *g);

/* Kernel timing per op kind: with profiling on, each forward and backward
 * pass times every node's kernels (CUDA events on a GPU, read when the pass
 * ends, which costs one synchronisation per pass; the clock on the CPU) and
 * adds them up by op. The first training step (the first forward of an
 * inference graph) is not counted: it chooses algorithms and fills caches.
 * Off by default; SYN_PROFILE=1 in the environment turns it on for every
 * graph at compile and prints each graph's report to stderr when the graph
 * is freed. */
SYN_API syn_status syn_graph_set_profiling(syn_graph *g, bool on);
/* The table so far: per op, device ms per step forward and backward, calls
 * per step and share of the total; NUL-terminated, cut at size. */
SYN_API syn_status syn_graph_profile_report(syn_graph *g, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
