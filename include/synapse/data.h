/* Data sets held in host memory, readers (IDX, CSV, CIFAR-10), normalisation,
 * and the batch loader with its augmentation. */
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
/* An IDX file of unsigned bytes alone (gzip'd or raw), e.g. inputs for a
 * trained model: 2, 3 or 4 dims (magic 0x00000802..4) give n samples of
 * shape (d), (1, h, w) or (c, h, w), scaled to [0, 1]; no labels
 * (num_classes 0, labels and targets NULL). A labels file (1 dim) is refused,
 * and so are bytes after the pixels the header counts. The header is checked
 * against the file's size before anything is allocated. */
SYN_API syn_status syn_dataset_load_idx_images(const char *path, syn_dataset **out);
/* Fashion-MNIST from a directory holding the four standard files
 * (train-images-idx3-ubyte.gz ..., or the same names unpacked without .gz).
 * dir NULL: $SYN_FASHION_MNIST_DIR if set, else /usr/share/datasets/fashion-mnist.
 * The IDX readers: SYN_ERR_IO for a missing or unreadable file, SYN_ERR_FORMAT
 * for bad content; the message names the file and what was wrong. */
SYN_API syn_status syn_dataset_load_fashion_mnist(const char *dir, bool train, syn_dataset **out);
#define SYN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* CIFAR-10, the binary version: each record is 1 label byte (0..9) and 3072
 * pixel bytes (the 1024-byte R plane, then G, then B, each 32x32 row-major).
 * path_or_dir is either one .bin file (train is then ignored) or a directory
 * holding data_batch_1.bin ... data_batch_5.bin (train) or test_batch.bin
 * (test); a directory that holds the tarball's cifar-10-batches-bin/ is
 * looked into. Pixels are scaled to [0, 1]; sample_shape (3, 32, 32),
 * num_classes 10, in file order. Errors: SYN_ERR_IO for a missing or
 * unreadable file, SYN_ERR_FORMAT for a size that is not a multiple of 3073
 * bytes (or 0) or a label >= 10; the message names the file. */
SYN_API syn_status syn_dataset_load_cifar10(const char *path_or_dir, bool train, syn_dataset **out);

typedef struct {
    const char *label;  /* the label column: a header name, or a 0-based index as text
                           (a matching name wins); NULL: the last column */
    bool regression;    /* float targets; else integer class labels 0..C-1 (or
                           arbitrary class names/values, mapped in order of appearance) */
    char delimiter;     /* 0: ',' */
} syn_csv_opts;

/* A CSV file with a header row; every feature column must be numeric and
 * finite. opts NULL: label in the last column, classification, ','.
 * Fields follow RFC 4180 (a quoted field may hold the delimiter, "" and line
 * breaks); CRLF, a UTF-8 BOM, blank lines and blanks around unquoted fields
 * are accepted. Class labels that are all integers in [0, 2^20) are kept as
 * they are (num_classes = max + 1); any other set of values is numbered 0, 1,
 * 2 ... in order of first appearance. Errors: SYN_ERR_IO (cannot open),
 * SYN_ERR_ARG (no such label column: the message lists the header),
 * SYN_ERR_FORMAT (file:line, the column's name and field number, and the
 * offending text). */
SYN_API syn_status syn_dataset_load_csv(const char *path, const syn_csv_opts *opts, syn_dataset **out);
/* Chosen columns of a CSV file, read by the same rules, as the features of an
 * unlabelled data set (inputs for a trained model: num_classes 0, labels and
 * targets NULL): columns[0..n) in this order, each the first header column of
 * that name not taken by an earlier one, else a 0-based index as text. The
 * other columns are not read (they may hold anything). delimiter 0: ','.
 * Errors as syn_dataset_load_csv's (SYN_ERR_ARG: no such column, n < 1). */
SYN_API syn_status syn_dataset_load_csv_columns(const char *path, const char *const *columns, int n, char delimiter,
                                                syn_dataset **out);

/* The header row of a CSV file, read by the same rules (delimiter 0: ',').
 * *names receives *count strings. owned: free with syn_csv_header_free.
 * Errors: SYN_ERR_IO (cannot open), SYN_ERR_FORMAT (an empty file, a bad
 * quote), SYN_ERR_ARG (a quote or line break as the delimiter). */
SYN_API syn_status syn_csv_header_read(const char *path, char delimiter, char ***names, int *count);
/* Frees what syn_csv_header_read returned; NULL is a no-op. */
SYN_API void syn_csv_header_free(char **names, int count);

/* An image folder, DIR/<class>/<image>.png with one subfolder per class:
 * 8-bit PNGs (grey, RGB, alpha dropped) as (C, H, W) in [0, 1], labels by
 * class. classes NULL: the subfolders, sorted bytewise, are classes 0, 1 ...
 * (syn_image_folder_classes lists them); else classes[0..n_classes) in that
 * order, e.g. a test folder read with the training folder's classes: a
 * subfolder not among them is an error, a class without a subfolder has no
 * images. In each class folder every *.png (any case) is read, in sorted
 * order; other files and names starting with '.' are skipped. Every image
 * must have the first one's width and height (images are not resized);
 * channels 1 reads RGB as grey (0.299 R + 0.587 G + 0.114 B), 3 repeats grey
 * into RGB, 0 takes the first image's. Errors name the folder or file:
 * SYN_ERR_IO (cannot open), SYN_ERR_FORMAT (no classes or images, a size
 * that differs, a damaged PNG). owned: free with syn_dataset_free. */
SYN_API syn_status syn_dataset_load_image_folder(const char *dir, int channels, const char *const *classes,
                                                 int n_classes, syn_dataset **out);
/* DIR's class subfolders, sorted bytewise (names starting with '.' left out).
 * owned: free with syn_image_folder_classes_free. */
SYN_API syn_status syn_image_folder_classes(const char *dir, char ***names, int *count);
SYN_API void syn_image_folder_classes_free(char **names, int count);

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

/* Standardisation statistics: x[j] = (x[j] - mean[k]) / std[k] with k = j
 * when count is the number of features, k = 0 when count is 1 (one mean and
 * std over all values). Computed and applied in double; std > 0. A caller
 * may fill one itself (for syn_dataset_standardize_with); one the library
 * returns is owned: free with syn_norm_stats_free. */
typedef struct {
    int64_t count;
    double *mean;
    double *std;
} syn_norm_stats;

SYN_API void syn_norm_stats_free(syn_norm_stats *st); /* NULL: no-op */

/* syn_dataset_standardize, also returning the statistics it applied (stats
 * may be NULL; on error *stats is NULL), e.g. to save with a checkpoint
 * (syn_checkpoint_save_data) and apply to new inputs later. */
SYN_API syn_status syn_dataset_standardize_stats(syn_dataset *train, syn_dataset *other, bool per_feature,
                                                 syn_norm_stats **stats);
/* Applies given statistics to ds exactly as syn_dataset_standardize applies
 * the ones it computes (the same data and statistics give the same bits).
 * Errors, leaving ds unchanged: SYN_ERR_SHAPE (count neither 1 nor ds->dim),
 * SYN_ERR_ARG (a non-finite mean or std, or std <= 0), SYN_ERR_FORMAT (a NaN
 * or inf in ds). */
SYN_API syn_status syn_dataset_standardize_with(syn_dataset *ds, const syn_norm_stats *stats);

/* Per-channel normalisation of images, sample_shape (C, H, W):
 * x[c] = (x[c] - mean[c]) / std[c], with each channel's mean and population
 * std computed on `train` over all samples and pixels (in double), applied to
 * train and to `other` (may be NULL; its sample_shape must equal train's).
 * A constant channel gets std 1. Errors: SYN_ERR_SHAPE (not 3-D, or the
 * shapes differ), SYN_ERR_ARG (empty train), SYN_ERR_FORMAT (NaN or inf);
 * on error neither set is changed. */
SYN_API syn_status syn_dataset_normalize_channels(syn_dataset *train, syn_dataset *other);
/* The same with given statistics (e.g. the published ones of a data set):
 * mean and std hold `channels` values, channels must equal C of ds's
 * (C, H, W) sample_shape (else SYN_ERR_SHAPE); a std <= 0 or a non-finite
 * mean/std is SYN_ERR_ARG and leaves ds unchanged. */
SYN_API syn_status syn_dataset_normalize(syn_dataset *ds, const float *mean, const float *std, int channels);

/* One batch, borrowed from the loader until its next call. */
typedef struct {
    int64_t n;              /* rows in this batch (0: the epoch has ended) */
    const float *x;         /* n * dim */
    const int32_t *labels;  /* n, or NULL */
    const float *targets;   /* n * target_dim, or NULL */
    int64_t total;          /* rows of the whole batch: n, or with shards the sum of all members' n */
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
/* With prefetch on, a worker thread of the loader gathers (and augments) the
 * next batch while the caller works on the current one, in a second set of
 * buffers; each batch stays valid until the next call, as without it. The
 * batches are bit-identical either way. Off by default: it pays when the
 * step runs elsewhere (a GPU); on the CPU the worker competes with the
 * kernels' threads. syn_fit turns it on for non-CPU devices. Errors:
 * SYN_ERR_OOM (the second buffers), SYN_ERR_UNSUPPORTED (no thread). */
SYN_API syn_status syn_loader_set_prefetch(syn_loader *l, bool on);

/* Data parallelism (syn_fit with a communicator, include/synapse/dist.h):
 * each batch of `batch` rows - the whole batch of one step - is split into
 * `size` parts of equal size (give or take a row), and this loader hands out
 * part `rank`: members with the same data and seed together see each batch
 * once, as one loader would. A last batch of fewer rows than members is
 * dropped by all alike, and syn_loader_batches counts what is left. Call it
 * before an epoch's first batch (SYN_ERR_ARG otherwise); 0 of 1 ends the
 * sharding. Needs batch >= size. */
SYN_API syn_status syn_loader_set_shard(syn_loader *l, int rank, int size);

/* Random augmentation of image samples (torchvision's RandomCrop(size,
 * padding=pad_crop) followed by RandomHorizontalFlip()), applied by the
 * loader to each sample as it is copied into the batch; the data set itself
 * is never changed. */
typedef struct {
    int pad_crop; /* random crop of the original size from the image zero-padded by
                     this many pixels on each side; 0 = off. The padding is 0 in the
                     data's CURRENT space: after normalisation that is the channel
                     mean, not raw black (see loader.c) */
    bool hflip;   /* horizontal flip with probability 1/2 */
} syn_augment;

/* Sets the augmentation from the next batch on (aug NULL: none).
 * Needs a (C, H, W) sample_shape, else SYN_ERR_SHAPE; pad_crop < 0 is
 * SYN_ERR_ARG. The choices for dataset row i in epoch e are a pure function
 * of (seed, e, i), drawn from Philox stream SYN_STREAM_AUGMENT + e at
 * counter i: the same seed gives the same augmented batches whatever the
 * batch size or shuffling, and each epoch draws afresh. */
SYN_API syn_status syn_loader_set_augment(syn_loader *l, const syn_augment *aug);

#ifdef __cplusplus
}
#endif
#endif
