/* CIFAR-10 reader, the binary version: files of 3073-byte records, each a
 * label byte (0..9) and a 32x32 image as three 1024-byte planes (R, G, B),
 * which is already the (C, H, W) order the library uses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/internal.h"
#include "io/io_internal.h"
#include "dataset.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE) /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)            /* 3073 */
#define CIFAR_CLASSES 10
#define CIFAR_CHUNK 1024 /* records read at a time: ~3 MB */
#define CIFAR_MAX_FILES 5
#define CIFAR_PATH 4096

static const char *const cifar_train_files[CIFAR_MAX_FILES] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
static const char cifar_test_file[] = "test_batch.bin";
static const char cifar_subdir[] = "cifar-10-batches-bin"; /* what the tarball unpacks to */

/* Opens path and returns its record count, after checking that its size is
 * a positive multiple of the record size. */
static syn_status cifar_open(const char *path, FILE **f, int64_t *records) {
    errno = 0;
    *f = fopen(path, "rb");
    if (!*f) return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(*f), &st) != 0) return syn__error(SYN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return syn__error(SYN_ERR_IO, "%s: not a regular file", path);
    long long size = (long long)st.st_size;
    if (size == 0 || size % CIFAR_RECORD != 0)
        return syn__error(SYN_ERR_FORMAT,
                          "%s: size %lld bytes is not a positive multiple of %d (a CIFAR-10 record: "
                          "1 label byte + %d pixel bytes)",
                          path, size, CIFAR_RECORD, CIFAR_PIXELS);
    *records = size / CIFAR_RECORD;
    return SYN_OK;
}

/* Reads `records` records of f into rows [row0, row0 + records) of ds. */
static syn_status cifar_read(FILE *f, const char *path, int64_t records, syn_dataset *ds, int64_t row0,
                             unsigned char *buf) {
    for (int64_t done = 0; done < records;) {
        size_t want = records - done < CIFAR_CHUNK ? (size_t)(records - done) : CIFAR_CHUNK;
        size_t got = fread(buf, CIFAR_RECORD, want, f);
        if (got < want) {
            if (ferror(f)) return syn__error(SYN_ERR_IO, "%s: read error: %s", path, strerror(errno));
            /* The size was checked on open: the file shrank under us. */
            return syn__error(SYN_ERR_FORMAT, "%s: truncated: expected %lld records, got %lld", path,
                              (long long)records, (long long)(done + (int64_t)got));
        }
        for (size_t r = 0; r < want; r++) {
            const unsigned char *rec = buf + r * CIFAR_RECORD;
            int64_t i = row0 + done + (int64_t)r;
            if (rec[0] >= CIFAR_CLASSES)
                return syn__error(SYN_ERR_FORMAT, "%s: record %lld (byte offset %lld) has label %u; CIFAR-10 labels are 0..%d",
                                  path, (long long)(done + (int64_t)r),
                                  (long long)(done + (int64_t)r) * CIFAR_RECORD, rec[0], CIFAR_CLASSES - 1);
            ds->labels[i] = rec[0];
            float *x = ds->x + i * CIFAR_PIXELS;
            for (int k = 0; k < CIFAR_PIXELS; k++) x[k] = (float)rec[1 + k] * (1.0f / 255.0f);
        }
        done += (int64_t)want;
    }
    return SYN_OK;
}

static syn_status cifar_load(char (*paths)[CIFAR_PATH], int nfiles, FILE **files, syn_dataset **out) {
    int64_t records[CIFAR_MAX_FILES], n = 0;
    /* Open and size every file before allocating: a missing or damaged
     * batch should cost nothing. */
    for (int k = 0; k < nfiles; k++) {
        SYN_TRY(cifar_open(paths[k], &files[k], &records[k]));
        n += records[k];
    }
    syn_dataset *ds;
    SYN_TRY(syn__dataset_alloc(n, CIFAR_PIXELS, true, 0, paths[0], &ds));
    ds->sample_shape = syn_shape3(3, CIFAR_SIDE, CIFAR_SIDE);
    ds->num_classes = CIFAR_CLASSES;
    unsigned char *buf = syn__malloc((size_t)CIFAR_CHUNK * CIFAR_RECORD, "CIFAR-10 reader");
    syn_status s = buf ? SYN_OK : SYN_ERR_OOM;
    int64_t row = 0;
    for (int k = 0; s == SYN_OK && k < nfiles; k++) {
        s = cifar_read(files[k], paths[k], records[k], ds, row, buf);
        row += records[k];
    }
    free(buf);
    if (s != SYN_OK) {
        syn_dataset_free(ds);
        return s;
    }
    *out = ds;
    return SYN_OK;
}

syn_status syn_dataset_load_cifar10(const char *path_or_dir, bool train, syn_dataset **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "CIFAR-10: NULL output");
    *out = NULL;
    if (!path_or_dir) return syn__error(SYN_ERR_ARG, "CIFAR-10: NULL path");
    if (strlen(path_or_dir) > CIFAR_PATH - 64) return syn__error(SYN_ERR_ARG, "CIFAR-10: path too long");
    struct stat st;
    if (stat(path_or_dir, &st) != 0)
        return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path_or_dir, strerror(errno));

    char paths[CIFAR_MAX_FILES][CIFAR_PATH];
    int nfiles = 1;
    if (S_ISDIR(st.st_mode)) {
        /* The length check above leaves room for subdir/name: no truncation. */
        const char *first = train ? cifar_train_files[0] : cifar_test_file, *dir = path_or_dir;
        char probe[CIFAR_PATH], sub[CIFAR_PATH - 32]; /* room for "/" + a file name */
        snprintf(probe, sizeof probe, "%s/%s", dir, first);
        snprintf(sub, sizeof sub, "%s/%s", dir, cifar_subdir);
        /* Neither there: keep the given directory so the error names it. */
        if (stat(probe, &st) != 0 && syn__is_dir(sub)) dir = sub;
        nfiles = train ? CIFAR_MAX_FILES : 1;
        for (int k = 0; k < nfiles; k++)
            snprintf(paths[k], CIFAR_PATH, "%s/%s", dir, train ? cifar_train_files[k] : cifar_test_file);
    } else {
        snprintf(paths[0], CIFAR_PATH, "%s", path_or_dir);
    }
    FILE *files[CIFAR_MAX_FILES] = {NULL};
    syn_status s = cifar_load(paths, nfiles, files, out);
    for (int k = 0; k < nfiles; k++)
        if (files[k]) fclose(files[k]);
    return s;
}
