/* Private helpers shared by the data readers, the loader and checkpoints
 * (defined in dataset.c): allocating a data set and standardisation
 * statistics, and the seeded shuffle. Not exported. */
#ifndef SYN_DATA_DATASET_H
#define SYN_DATA_DATASET_H

#include <stdint.h>
#include "synapse/data.h"

/* A data set of n rows of `dim` floats, with an n-long label array when
 * has_labels, or n * target_dim targets when target_dim > 0. Arrays are left
 * uninitialised. Returns SYN_ERR_OOM (recorded, naming `what`) on failure.
 * owned: free with syn_dataset_free. */
syn_status syn__dataset_alloc(int64_t n, int64_t dim, bool has_labels, int64_t target_dim,
                              const char *what, syn_dataset **out);

/* idx[0..n) := a permutation of 0..n-1 that is a pure function of
 * (seed, stream): Fisher-Yates from the identity driven by Philox. */
void syn__shuffle_indices(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream);

/* count zeroed means and stds (SYN_ERR_ARG for count < 1, SYN_ERR_OOM
 * naming `what`). owned: free with syn_norm_stats_free. */
/* SYN_ERR_ARG ("<what>: ...") unless st holds count >= 1 finite means and
 * finite stds > 0. */
syn_status syn__norm_stats_check(const syn_norm_stats *st, const char *what);
/* The loader at the start of epoch `epoch` (orders and augmentation are pure
 * functions of the seed and the epoch, so this equals walking through the
 * epochs before it). */
void syn__loader_seek_epoch(syn_loader *l, uint64_t epoch);
syn_status syn__norm_stats_alloc(int64_t count, const char *what, syn_norm_stats **out);

#endif
