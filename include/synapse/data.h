/* Data sets held in host memory, readers (IDX, CSV) and the batch loader. */
#ifndef SYNAPSE_DATA_H
#define SYNAPSE_DATA_H

#include <stdbool.h>
#include <stdint.h>
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* n samples of `dim` float features each (row-major), with either class
 * labels (labels != NULL, num_classes > 0) or regression targets
 * (targets != NULL, n * target_dim floats). owned: free with syn_dataset_free. */
typedef struct {
    int64_t n;
    int64_t dim;
    syn_shape sample_shape; /* e.g. (1, 28, 28) for images; (dim) for tables */
    float *x;
    int32_t *labels;
    int num_classes;
    float *targets;
    int64_t target_dim;
} syn_dataset;

SYN_API void syn_dataset_free(syn_dataset *ds);

/* IDX files (gzip'd or raw): images of unsigned bytes scaled to [0, 1] and
 * their labels. Sizes, magic numbers and counts are checked. */
SYN_API syn_status syn_dataset_load_idx(const char *images_path, const char *labels_path,
                                        syn_dataset **out);
/* Fashion-MNIST from a directory holding the four standard files
 * (train-images-idx3-ubyte.gz ..., or the same names unpacked without .gz).
 * dir NULL: /usr/share/datasets/fashion-mnist.
 * Both readers: SYN_ERR_IO for a missing or unreadable file, SYN_ERR_FORMAT
 * for bad content; the message names the file and what was wrong. */
SYN_API syn_status syn_dataset_load_fashion_mnist(const char *dir, bool train, syn_dataset **out);
#define SYN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    const char *label;  /* the label column: a header name, or a 0-based index as text
                           (a matching name wins); NULL: the last column */
    bool regression;    /* float targets; else integer class labels 0..C-1 (or
                           arbitrary class names/values, mapped in order of appearance) */
    char delimiter;     /* 0: ',' */
} syn_csv_opts;

/* A CSV file with a header row; every column but the label must be numeric
 * and finite. opts NULL: label in the last column, classification, ','.
 * Class labels that are all integers in [0, 2^20) are kept as they are
 * (num_classes = max + 1); any other set of values is numbered 0, 1, 2 ... in
 * order of first appearance. Errors: SYN_ERR_IO (cannot open), SYN_ERR_ARG
 * (no such label column), SYN_ERR_FORMAT (file:line and column in the message). */
SYN_API syn_status syn_dataset_load_csv(const char *path, const syn_csv_opts *opts, syn_dataset **out);

/* Splits off the last `fraction` of rows after a seeded shuffle into *second
 * (round(n * fraction) rows; the rest in *first). Both are deep copies; both
 * must be non-empty, else SYN_ERR_ARG. */
SYN_API syn_status syn_dataset_split(const syn_dataset *ds, float fraction, uint64_t seed,
                                     syn_dataset **first, syn_dataset **second);

/* Standardises features with statistics computed on `train` (per feature if
 * per_feature, else one mean/std over all values), applied to train and to
 * `other` (may be NULL). Constant features get std 1. A NaN or inf in either
 * set is SYN_ERR_FORMAT and leaves both unchanged. */
SYN_API syn_status syn_dataset_standardize(syn_dataset *train, syn_dataset *other, bool per_feature);

/* One batch, borrowed from the loader until its next call. */
typedef struct {
    int64_t n;              /* rows in this batch (0: the epoch has ended) */
    const float *x;         /* n * dim */
    const int32_t *labels;  /* n, or NULL */
    const float *targets;   /* n * target_dim, or NULL */
} syn_batch;

typedef struct syn_loader syn_loader;

/* ds: borrowed, must outlive the loader. batch >= 1. The order is reshuffled
 * each epoch from `seed` when shuffle is set; the last partial batch is kept
 * unless drop_last (drop_last with batch > n is SYN_ERR_ARG: no batch would
 * ever come). owned: free with syn_loader_free. */
SYN_API syn_status syn_loader_create(const syn_dataset *ds, int64_t batch, bool shuffle, uint64_t seed,
                                     bool drop_last, syn_loader **out);
SYN_API void syn_loader_free(syn_loader *l);
/* Fills the next batch; b->n == 0 marks the end of an epoch, after which the
 * next call starts a new (reshuffled) epoch. */
SYN_API syn_status syn_loader_next(syn_loader *l, syn_batch *b);
SYN_API int64_t syn_loader_batches(const syn_loader *l); /* per epoch */

#ifdef __cplusplus
}
#endif
#endif
