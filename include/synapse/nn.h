/* Layers with parameters. Each layer creates (or, by name, reuses) its
 * parameters in the graph's current parameter set. A NULL name gets an
 * automatic one ("linear0", "linear1", ... counted per graph), so building the
 * same model twice - a training graph and an evaluation graph of another batch
 * size - shares the same parameters. */
#ifndef SYNAPSE_NN_H
#define SYNAPSE_NN_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    bool no_bias;
    syn_init weight_init; /* kind 0 (ZEROS) with a=b=0 means the default: */
    syn_init bias_init;   /* FANIN_UNIFORM for both, as PyTorch's Linear  */
    bool custom_init;     /* set to use weight_init / bias_init */
} syn_linear_opts;

/* x: (..., in) -> (..., out); parameters "<name>.weight" (out, in) and
 * "<name>.bias" (out). opts may be NULL. */
SYN_API syn_node *syn_linear(syn_graph *g, syn_node *x, int64_t out_features, const char *name,
                             const syn_linear_opts *opts);

typedef struct {
    bool no_bias;
    syn_conv_params conv; /* stride, padding ... (zeros: the defaults) */
} syn_conv_opts;

/* x: (N, C, H, W) -> (N, out_channels, P, Q) with a kh x kw kernel; parameters
 * "<name>.weight" (K, C/groups, kh, kw) and "<name>.bias" (K), initialised as
 * PyTorch's Conv2d (U(+-1/sqrt(fan_in))). opts may be NULL. */
SYN_API syn_node *syn_conv2d(syn_graph *g, syn_node *x, int64_t out_channels, int kh, int kw, const char *name,
                             const syn_conv_opts *opts);
/* x: (N, C, H, W) -> (N, out_channels, P, Q); weight (C, K/groups, kh, kw). */
SYN_API syn_node *syn_conv_transpose2d(syn_graph *g, syn_node *x, int64_t out_channels, int kh, int kw,
                                       const char *name, const syn_conv_opts *opts);
/* Batch norm over dim 1 of x (N, C, ...), PyTorch's defaults (momentum 0.1,
 * eps 1e-5): "<name>.weight" = 1, "<name>.bias" = 0 (trainable),
 * "<name>.running_mean" = 0, "<name>.running_var" = 1 (not trainable). */
SYN_API syn_node *syn_batch_norm(syn_graph *g, syn_node *x, const char *name);
/* Layer norm over the last dim (eps 1e-5): "<name>.weight" = 1, "<name>.bias" = 0. */
SYN_API syn_node *syn_layer_norm(syn_graph *g, syn_node *x, const char *name);

/* idx: (...) I32 -> (..., dim): a table "<name>.weight" (num, dim) ~ N(0, 1),
 * as PyTorch's Embedding. */
SYN_API syn_node *syn_embedding(syn_graph *g, syn_node *idx, int64_t num, int64_t dim, const char *name);

/* A stack of recurrent layers (syn_rnn_op), PyTorch's nn.RNN / LSTM / GRU with
 * batch_first: parameters "<name>.weight_ih_l<k>", "<name>.weight_hh_l<k>",
 * "<name>.bias_ih_l<k>", "<name>.bias_hh_l<k>", all U(+-1/sqrt(hidden)). */
typedef struct {
    syn_rnn_mode mode;
    int64_t hidden;
    int layers;     /* 0 means 1 */
    float dropout;  /* between layers, in training mode */
    bool no_bias;
} syn_rnn_config;

/* x: (B, T, I) -> the top layer's h at every step (B, T, hidden).
 * state0: (B, layers, S) or NULL (zeros), S = hidden, or 2 hidden for the LSTM
 * (h then c). lengths: (B) I32 or NULL (see syn_rnn_op). If state_out is not
 * NULL it receives the final state (B, layers, S) in the same layout, so a
 * truncated-BPTT loop feeds it back as the next batch's state0 (as an input:
 * detached). */
SYN_API syn_node *syn_rnn(syn_graph *g, syn_node *x, const syn_rnn_config *cfg, syn_node *state0, syn_node *lengths,
                          const char *name, syn_node **state_out);

typedef enum {
    SYN_ACT_NONE = 0,
    SYN_ACT_RELU,
    SYN_ACT_SIGMOID,
    SYN_ACT_TANH,
    SYN_ACT_GELU,
    SYN_ACT_LEAKY_RELU /* slope 0.01 */
} syn_activation;

/* Applies an activation; SYN_ACT_NONE returns x. */
SYN_API syn_node *syn_activate(syn_graph *g, syn_node *x, syn_activation act);
/* "relu" | "sigmoid" | "tanh" | "gelu" | "leaky_relu" | "none" */
SYN_API syn_status syn_activation_parse(const char *text, syn_activation *out);
SYN_API const char *syn_activation_name(syn_activation act);

/* An MLP: flatten, then for each hidden size linear + activation (+ dropout if
 * dropout > 0), then a final linear to out_features (no activation). */
SYN_API syn_node *syn_mlp(syn_graph *g, syn_node *x, const int64_t *hidden, int n_hidden,
                          int64_t out_features, syn_activation act, float dropout);

#ifdef __cplusplus
}
#endif
#endif
