/* Files: safetensors (read and write), parameter files, training checkpoints
 * and PNG images.
 *
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON {name: {"dtype", "shape",
 * "data_offsets": [begin, end]}, "__metadata__": {string: string}}, then the
 * data. The reader makes every check the reference reader makes and returns
 * SYN_ERR_FORMAT naming the file and what was wrong; files are written
 * atomically (a temporary file in the same folder, fsync, rename, fsync of the
 * folder), so an interrupted write leaves the previous file intact.
 *
 * Parameter names follow PyTorch's state_dict conventions (layer.weight,
 * layer.bias, bn.running_mean ...), so a state_dict saved by PyTorch with
 * safetensors loads into the same Synapse model. */
#ifndef SYNAPSE_IO_H
#define SYNAPSE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "data.h"
#include "graph.h"
#include "optim.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- safetensors ------------------------------------------------------------ */

typedef struct syn_safetensors syn_safetensors;

/* Reads and validates a whole file. owned: free with syn_safetensors_close. */
SYN_API syn_status syn_safetensors_open(const char *path, syn_safetensors **out);
SYN_API void syn_safetensors_close(syn_safetensors *f);
SYN_API int syn_safetensors_count(const syn_safetensors *f);
/* The i-th tensor in file order (by data offset; for a file written by
 * syn_safetensors_write, the order of syn_safetensors_add). data: borrowed,
 * valid until close, aligned for its dtype (a copy: the file is not mapped). */
SYN_API syn_status syn_safetensors_get(const syn_safetensors *f, int i, const char **name, syn_dtype *dt,
                                       syn_shape *shape, const void **data, size_t *bytes);
/* By name: SYN_ERR_ARG if absent. */
SYN_API syn_status syn_safetensors_find(const syn_safetensors *f, const char *name, syn_dtype *dt,
                                        syn_shape *shape, const void **data, size_t *bytes);
/* A "__metadata__" value, or NULL. borrowed. */
SYN_API const char *syn_safetensors_metadata(const syn_safetensors *f, const char *key);

typedef struct syn_safetensors_writer syn_safetensors_writer;

SYN_API syn_status syn_safetensors_writer_create(syn_safetensors_writer **out);
SYN_API void syn_safetensors_writer_free(syn_safetensors_writer *w);
/* Adds a tensor; the data (numel * dtype size bytes of host memory) is copied.
 * Names are unique. */
SYN_API syn_status syn_safetensors_add(syn_safetensors_writer *w, const char *name, syn_dtype dt,
                                       syn_shape shape, const void *data);
SYN_API syn_status syn_safetensors_set_metadata(syn_safetensors_writer *w, const char *key, const char *value);
/* Writes the file atomically: __metadata__ (if any key was set) first, then
 * the tensors in the order they were added, their data back to back in that
 * order; the header is padded with spaces to a multiple of 8 bytes, as the
 * reference writer does. SYN_ERR_IO names the path and the system's error. */
SYN_API syn_status syn_safetensors_write(const syn_safetensors_writer *w, const char *path);

/* ---- parameter sets ------------------------------------------------------------ */

/* PyTorch's state_dict layouts, which the nn.h builders follow (so a
 * state_dict saved with safetensors loads into the Synapse model built with
 * the same names, and back; tests/test_interop.c checks each against PyTorch):
 *   Linear           weight (out, in), bias (out)
 *   Conv2d           weight (K, C/groups, R, S), bias (K)
 *   ConvTranspose2d  weight (C, K/groups, R, S), bias (K)
 *   BatchNorm        weight, bias, running_mean, running_var (C) F32, and
 *                    num_batches_tracked, an I64 scalar (see below)
 *   LayerNorm        weight, bias (D)
 *   Embedding        weight (num, dim)
 *   RNN/LSTM/GRU     weight_ih_l<k> (G H, in), weight_hh_l<k> (G H, H),
 *                    bias_ih_l<k>, bias_hh_l<k> (G H), gates stacked in the
 *                    rows as PyTorch does: LSTM i, f, g, o; GRU r, z, n
 *                    (batch_first; unidirectional only) */

/* Every parameter (trainable or not, e.g. batch-norm running statistics) of
 * the set, by name, in its dtype (F32), with metadata format = "pt". For each
 * batch norm ("<bn>.running_mean" and "<bn>.running_var" in the set) it also
 * writes "<bn>.num_batches_tracked" = 0 as an I64 scalar: Synapse does not
 * count batches (its momentum is fixed), but the file then has exactly the
 * keys of PyTorch's state_dict, which load_state_dict(strict=True) and
 * safetensors.torch.load_model expect. */
SYN_API syn_status syn_params_save(const syn_params *p, const char *path);
/* Copies the file's tensors into the parameters of the same names (on any
 * device). strict: every parameter must be in the file and every tensor in the
 * file must be a parameter - except "<bn>.num_batches_tracked" as an I64
 * scalar beside a batch norm "<bn>.running_mean" of the model, which is
 * ignored (PyTorch's batch-norm counter; any other tensor the model lacks is
 * still an error); not strict: tensors the model lacks are ignored and
 * parameters absent from the file keep their values. Shapes and dtypes must
 * match (SYN_ERR_FORMAT naming both). A checkpoint (syn_checkpoint_load)
 * accepts the counter the same way. */
SYN_API syn_status syn_params_load(syn_params *p, const char *path, bool strict);

/* ---- checkpoints ------------------------------------------------------------------ */

/* A training run's state besides the weights. */
typedef struct {
    char model[4096];  /* the model's description (a model file's text, or a CLI line) */
    int64_t epoch;     /* epochs completed */
    int64_t step;      /* optimizer steps taken */
    uint64_t seed;     /* the run's seed (the RNG streams are functions of seed and counters) */
    uint64_t rng_counter; /* the training graph's dropout counter (syn_fit_state) */
    float best_loss;      /* early stopping: the best watched loss so far (INFINITY: none) */
    int64_t stale_epochs; /* early stopping: epochs since best_loss improved */
} syn_checkpoint_info;

/* Weights, optimizer state (may be NULL) and info in one safetensors file,
 * written atomically; the Synapse version goes in the metadata. */
SYN_API syn_status syn_checkpoint_save(const char *path, const syn_params *p, const syn_optim *opt,
                                       const syn_checkpoint_info *info);
/* Tensor names: the parameters' own, then "optim.<param>.<state>" with
 * PyTorch's state names (exp_avg, exp_avg_sq, momentum_buffer, square_avg)
 * and "optim.<param>.step" (i64 scalar); metadata: model, epoch, step, seed,
 * rng_counter, best_loss, stale_epochs, synapse.version, optim.kind,
 * optim.config (JSON text, for reading; the current lr) and optim.steps. */

/* Restores what syn_checkpoint_save wrote into an identically built model and
 * optimizer (opt may be NULL: its tensors are then skipped); info may be NULL
 * (then a plain parameter file loads too). Every parameter must be in the
 * file and every non-optimizer tensor a parameter; the optimizer must be of
 * the saved kind. Everything is checked before anything changes
 * (SYN_ERR_FORMAT naming the file and the fault); the optimizer's own config
 * (lr ...) is kept, its state and step counts are replaced. */
SYN_API syn_status syn_checkpoint_load(const char *path, syn_params *p, syn_optim *opt,
                                       syn_checkpoint_info *info);

/* What inference needs besides the weights, saved with a checkpoint so that
 * a trained model can be applied to new inputs without its training data. */
typedef struct {
    const syn_norm_stats *stats; /* the standardisation the inputs had (NULL: none): __metadata__
                                    "input.mean" and "input.std", each `count` comma-separated
                                    decimals ("%.17g", so the doubles come back exactly) */
    const char *const *meta;     /* n_meta (key, value) pairs, 2 * n_meta strings, stored as
                                    __metadata__ "data.<key>" (read them with
                                    syn_safetensors_metadata); keys non-empty and unique */
    int n_meta;
} syn_checkpoint_data;

/* syn_checkpoint_save plus `data` (may be NULL: then the same file). The
 * parameters' tensors and names are those of syn_checkpoint_save: the extras
 * are metadata only, which PyTorch's loaders ignore. */
SYN_API syn_status syn_checkpoint_save_data(const char *path, const syn_params *p, const syn_optim *opt,
                                            const syn_checkpoint_info *info, const syn_checkpoint_data *data);
/* The standardisation statistics a checkpoint carries: *out NULL (and
 * SYN_OK) for a file without them (older checkpoints, parameter files).
 * SYN_ERR_FORMAT, naming the file and the key, for only one of the two
 * entries, a value that is not a finite number (or a std <= 0), or counts
 * that differ. syn_checkpoint_load makes the same checks.
 * owned: free with syn_norm_stats_free. */
SYN_API syn_status syn_checkpoint_load_stats(const char *path, syn_norm_stats **out);
/* The same from a file already open (with its other metadata, e.g. the
 * "data.*" entries, without reading it again); name: the file's, for the
 * messages (NULL: "(checkpoint)"). owned: free with syn_norm_stats_free. */
SYN_API syn_status syn_checkpoint_read_stats(const syn_safetensors *f, const char *name, syn_norm_stats **out);

/* ---- PNG ------------------------------------------------------------------------- */

/* Writes n images (n, c, h, w) F32 (c = 1 grey, 3 RGB), values mapped from
 * [lo, hi] to 0..255 (clamped), as one grid `cols` images wide with a 2-pixel
 * border, through libpng. Written atomically. */
SYN_API syn_status syn_png_write_grid(const char *path, const float *images, int n, int c, int h, int w,
                                      int cols, float lo, float hi);
/* Reads an 8-bit grey or RGB(A) PNG as (c, h, w) F32 in [0, 1] (alpha
 * dropped). *out: owned, free(). */
SYN_API syn_status syn_png_read(const char *path, float **out, int *c, int *h, int *w);

#ifdef __cplusplus
}
#endif
#endif
