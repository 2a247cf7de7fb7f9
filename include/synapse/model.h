/* Model files: networks described as text (one section per layer, in the
 * spirit of Darknet's .cfg), parsed with libinih, built into a graph, and
 * summarised; plus C builders for the same reference networks.
 *
 * The format. Lines are `key = value`; `;` and `#` start comment lines, `;`
 * also an inline comment. Sections repeat: each section line is one layer, in
 * order. Pairs (`size = 3,5`) are height,width; a single number is both.
 *
 *   [net]              must come first, once
 *     input = C,H,W    (or `input = D` for flat features); the default input
 *                      shape: `synapse train` takes the data set's instead
 *     classes = 10     optional: the last layer's output must have this size
 *   [conv]             filters, size (required), stride (1), pad (0, or `same`:
 *                      dilation*(size-1)/2 for an odd size), dilation (1),
 *                      groups (1), bias (1), activation (none)
 *   [deconv]           the same keys plus out_pad (0): a transposed convolution
 *   [batchnorm]        over channels (or features); [layernorm] over features
 *   [activation]       type = relu | sigmoid | tanh | gelu | leaky_relu | none
 *   [maxpool] [avgpool]  size (required), stride (= size), pad (0)
 *   [globalavgpool]    (C,H,W) -> (C)       [adaptiveavgpool] size = 1,1
 *   [flatten]          (C,H,W) -> (C*H*W)
 *   [dense]            units (required), bias (1), activation (none); a
 *                      (C,H,W) input is flattened first
 *   [dropout] [dropout2d]  p (0.5)
 *   [basicblock]       filters, stride (1): ResNet's block: conv3x3(stride)-bn-
 *                      relu-conv3x3-bn plus the shortcut (identity, or
 *                      conv1x1(stride)-bn when the stride or the channels
 *                      change), then relu; convolutions without bias
 *   [bottleneck]       filters, stride (1): 1x1 -> 3x3(stride) -> 1x1 with
 *                      4*filters outputs, the same shortcut rule
 * Layers with parameters (conv, deconv, batchnorm, layernorm, dense, blocks)
 * also take `name = ...`; the default is the type and the layer's index
 * (layers count from 0 after [net]): "conv0", "bn1", "fc5", "block3"
 * (a block's parts are "block3.conv1", "block3.bn1", ..., "block3.downsample.0"
 * and ".1" as torchvision names them). So a model built twice (a training and
 * an evaluation graph) shares its parameters; two layers given the same name
 * share theirs (their shapes must then agree).
 *
 * Errors: every problem - an unknown section or key, a value that is not a
 * number or not positive, a bad activation, a missing [net] or required key,
 * a shape that does not fit (a pool larger than its input) - is
 * SYN_ERR_FORMAT with a message "FILE:LINE: [section] key = value: why". */
#ifndef SYNAPSE_MODEL_H
#define SYNAPSE_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct syn_model_desc syn_model_desc;

/* Reads and checks a model file (shapes are checked against its input).
 * SYN_ERR_IO if it cannot be read. owned: free with syn_model_desc_free. */
SYN_API syn_status syn_model_desc_load(const char *path, syn_model_desc **out);
/* The same from text; name_for_messages stands for the file name in errors. */
SYN_API syn_status syn_model_desc_parse(const char *text, const char *name_for_messages, syn_model_desc **out);
SYN_API void syn_model_desc_free(syn_model_desc *d);
/* The [net] input, (C,H,W) or (D), and classes (0 when not given). Either
 * out-parameter may be NULL. */
SYN_API syn_status syn_model_desc_input(const syn_model_desc *d, syn_shape *sample_shape, int *classes);
/* Replaces the input shape after checking that every layer fits it
 * (SYN_ERR_FORMAT naming the layer's line otherwise; d is then unchanged). */
SYN_API syn_status syn_model_desc_set_input(syn_model_desc *d, syn_shape sample_shape);
/* The file's base name without its extension ("resnet18"). borrowed: valid
 * until syn_model_desc_free. */
SYN_API const char *syn_model_desc_name(const syn_model_desc *d);
/* Number of layers (sections after [net]). */
SYN_API int syn_model_desc_layers(const syn_model_desc *d);

/* Adds the layers to g reading from x, (N, C, H, W) or (N, D), and returns the
 * last layer's output (the logits), or NULL with the error recorded in the
 * graph (a shape that does not fit x names the file and line). */
SYN_API syn_node *syn_model_build(syn_graph *g, const syn_model_desc *d, syn_node *x);

/* Builds the model on a throwaway graph and parameter set (CPU) at the
 * description's input and prints one row per layer: index, type, output shape
 * (without the batch), trainable parameters, forward FLOPs for `batch` samples
 * (a multiply-add counts 2; elementwise layers 1 per element, norms 2), then
 * the totals. Batch-norm running statistics are counted apart, as PyTorch
 * counts them as buffers, not parameters. */
SYN_API syn_status syn_model_summary(const syn_model_desc *d, int64_t batch, FILE *out);

/* ---- C builders: the networks of the files in models/, with the same
 * parameter names, so a graph built either way shares a parameter set. Each
 * returns the logits (N, classes), or NULL with the error recorded in g. ---- */

/* x: (N, C, H, W), e.g. (N, 1, 28, 28): conv 6 5x5 pad 2 - relu - avgpool 2 -
 * conv 16 5x5 - relu - avgpool 2 - dense 120 - relu - dense 84 - relu - dense classes. */
SYN_API syn_node *syn_lenet5(syn_graph *g, syn_node *x, int classes);
/* depth 18 or 34 (basic blocks) or 50 (bottlenecks). cifar_stem: conv3x3 64
 * stride 1 without max pooling (small images); else conv7x7 64 stride 2 pad 3
 * and maxpool 3 stride 2 pad 1 (ImageNet). Global average pool, then dense. */
SYN_API syn_node *syn_resnet(syn_graph *g, syn_node *x, int depth, int classes, bool cifar_stem);
/* depth 11, 13, 16 or 19: VGG with batch norm for small images; four of the
 * five max pools, then a global average pool and a dense layer. */
SYN_API syn_node *syn_vgg(syn_graph *g, syn_node *x, int depth, int classes);

#ifdef __cplusplus
}
#endif
#endif
