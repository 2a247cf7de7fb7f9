/* libFuzzer target for the CSV reader; seed corpus in tests/fuzz/csv/,
 * dictionary tests/fuzz/csv.dict:
 *   cmake --build build-fuzz --target fuzz_csv
 *   mkdir -p /tmp/corpus-csv && ./build-fuzz/fuzz_csv -runs=1000000 -max_len=4096 \
 *       -dict=tests/fuzz/csv.dict /tmp/corpus-csv tests/fuzz/csv
 * An input's first byte picks the options (bit 0: regression, bit 1: label
 * column "0", else the last; bit 2: ';' as the delimiter, else ','); the rest
 * is the file, so a seed reads "@a,b,label\n1,2,x\n" ('@' = defaults).
 * Included by tests/test_fuzz_corpus.c (SYN_FUZZ_REPLAY) to replay the corpus.
 * Every input must give OK or an error status with a message naming the
 * file, never a crash, a leak or a read out of bounds; an accepted data set
 * must keep its invariants. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "data/parse_mem.h"

int syn_fuzz_csv(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    syn_csv_opts o = {.label = data[0] & 2 ? "0" : NULL, .regression = data[0] & 1,
                      .delimiter = data[0] & 4 ? ';' : ','};
    syn_dataset *ds = (syn_dataset *)&ds; /* poisoned: must be reset */
    syn_status s = syn__dataset_load_csv_mem(data + 1, size - 1, "fuzz.csv", &o, &ds);
    if (s != SYN_OK) {
        const char *msg = syn_last_error();
        if (ds != NULL || !msg || !strstr(msg, "fuzz.csv") ||
            (s != SYN_ERR_FORMAT && s != SYN_ERR_ARG && s != SYN_ERR_OOM))
            abort();
        return 0;
    }
    /* Accepted: rows of dim >= 1 finite features, one label or target each. */
    if (ds->n < 1 || ds->dim < 1 || !ds->x) abort();
    if (ds->sample_shape.ndim != 1 || ds->sample_shape.dim[0] != ds->dim) abort();
    for (int64_t i = 0; i < ds->n * ds->dim; i++)
        if (!isfinite(ds->x[i])) abort();
    if (o.regression) {
        if (ds->labels || !ds->targets || ds->target_dim != 1) abort();
        for (int64_t i = 0; i < ds->n; i++)
            if (!isfinite(ds->targets[i])) abort();
    } else {
        if (!ds->labels || ds->targets || ds->num_classes < 1) abort();
        for (int64_t i = 0; i < ds->n; i++)
            if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes) abort();
    }
    syn_dataset_free(ds);
    return 0;
}

#ifndef SYN_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return syn_fuzz_csv(data, size); }
#endif
