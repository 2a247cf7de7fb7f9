/* libFuzzer target for the IDX readers (raw or gzip'd images and labels, and
 * an images file alone);
 * seed corpus in tests/fuzz/idx/:
 *   cmake --build build-fuzz --target fuzz_idx
 *   mkdir -p /tmp/corpus-idx && ./build-fuzz/fuzz_idx -runs=1000000 -max_len=8192 \
 *       /tmp/corpus-idx tests/fuzz/idx
 * An input is two files: a 2-byte little-endian length L, then the labels
 * file (L bytes, fewer if the input ends), then the images file (the rest).
 * The reader takes paths (zlib's gzFile), so each file goes to an anonymous
 * in-memory file (memfd) read through /proc/self/fd/N: nothing on disk.
 * Included by tests/test_fuzz_corpus.c (SYN_FUZZ_REPLAY) to replay the corpus.
 * Every input must give OK or an error status with a message naming a file,
 * never a crash, a leak or a read out of bounds; an accepted data set must
 * keep its invariants. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "synapse/data.h"

/* A memfd holding the bytes, its /proc path in path; -1 if none. */
static int fuzz_idx_file(const char *name, const uint8_t *data, size_t size, char *path, size_t path_size) {
    int fd = memfd_create(name, 0);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

int syn_fuzz_idx(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t nl = (size_t)data[0] | (size_t)data[1] << 8;
    if (nl > size - 2) nl = size - 2;
    const uint8_t *labels = data + 2, *images = labels + nl;
    char lpath[64], ipath[64];
    int lfd = fuzz_idx_file("fuzz-labels", labels, nl, lpath, sizeof lpath);
    int ifd = fuzz_idx_file("fuzz-images", images, size - 2 - nl, ipath, sizeof ipath);
    if (lfd < 0 || ifd < 0) abort(); /* the harness, not the reader */
    syn_dataset *ds = (syn_dataset *)&ds; /* poisoned: must be reset */
    /* the images file alone (predict's reader): 2-4 dims, no labels */
    syn_status s = syn_dataset_load_idx_images(ipath, &ds);
    if (s != SYN_OK) {
        const char *msg = syn_last_error();
        if (ds != NULL || !msg || !strstr(msg, "/proc/self/fd/") || (s != SYN_ERR_FORMAT && s != SYN_ERR_OOM)) abort();
    } else {
        const syn_shape *sh = &ds->sample_shape;
        if (ds->n < 1 || (sh->ndim != 1 && sh->ndim != 3) || ds->dim != syn_shape_numel(sh) || ds->labels ||
            ds->targets)
            abort();
        for (int64_t i = 0; i < ds->n * ds->dim; i++)
            if (!(ds->x[i] >= 0.0f && ds->x[i] <= 1.0f)) abort();
        syn_dataset_free(ds);
    }
    ds = (syn_dataset *)&ds;
    s = syn_dataset_load_idx(ipath, lpath, &ds);
    close(lfd);
    close(ifd);
    if (s != SYN_OK) {
        const char *msg = syn_last_error();
        if (ds != NULL || !msg || !strstr(msg, "/proc/self/fd/") ||
            (s != SYN_ERR_FORMAT && s != SYN_ERR_OOM))
            abort();
        return 0;
    }
    /* Accepted: n images (1,H,W) of pixels in [0, 1], labels below num_classes <= 256. */
    const syn_shape *sh = &ds->sample_shape;
    if (ds->n < 1 || sh->ndim != 3 || sh->dim[0] != 1 || ds->dim != sh->dim[1] * sh->dim[2]) abort();
    if (ds->num_classes < 1 || ds->num_classes > 256 || !ds->labels || ds->targets) abort();
    for (int64_t i = 0; i < ds->n * ds->dim; i++)
        if (!(ds->x[i] >= 0.0f && ds->x[i] <= 1.0f)) abort();
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes) abort();
    syn_dataset_free(ds);
    return 0;
}

#ifndef SYN_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return syn_fuzz_idx(data, size); }
#endif
