/* IDX readers (the MNIST / Fashion-MNIST file format): an images file of
 * unsigned bytes (magic 0x00000803) with its labels file (magic 0x00000801),
 * or images alone (2, 3 or 4 dims, magic 0x00000802..4), gzip'd or raw.
 * Every header field is checked before it sizes anything. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "core/internal.h"
#include "dataset.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dims */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dim */
#define IDX_MAGIC_BYTES 0x00000800u  /* unsigned byte, any of 1..4 dims (idx_header) */
#define IDX_MAX_DIMS 4
/* Refuse headers that claim more than this many bytes: a corrupt or hostile
 * header must not make us allocate (or try to) terabytes. */
#define IDX_MAX_ELEMS 1000000000ull
#define IDX_CHUNK (1u << 20)

/* Opens path for reading (gzip'd or raw: gzread passes raw files through). */
static syn_status idx_open(const char *path, gzFile *out) {
    errno = 0;
    *out = gzopen(path, "rb");
    if (!*out)
        return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory in zlib");
    return SYN_OK;
}

/* Reads up to len bytes; *got is how many arrived (short only at end of
 * file). A read error is I/O, a corrupt gzip stream is a format error. */
static syn_status idx_read(gzFile f, const char *path, void *buf, size_t len, size_t *got) {
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > (size_t)INT_MAX / 2) want = (size_t)INT_MAX / 2; /* gzread takes an unsigned, returns int */
        int r = gzread(f, (char *)buf + *got, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            if (zerr == Z_ERRNO) return syn__error(SYN_ERR_IO, "%s: read error: %s", path, strerror(errno));
            return syn__error(SYN_ERR_FORMAT, "%s: corrupt compressed data: %s", path, msg);
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return SYN_OK;
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads the magic and the big-endian dims, checking each is in range and
 * that their product stays under IDX_MAX_ELEMS. magic: the one expected, its
 * dims *ndim; or IDX_MAGIC_BYTES for unsigned bytes of 1 to 4 dims, the
 * file's count returned in *ndim. */
static syn_status idx_header(gzFile f, const char *path, uint32_t magic, int *ndim, uint64_t *dims,
                             uint64_t *total) {
    unsigned char h[4 + 4 * IDX_MAX_DIMS];
    size_t got;
    SYN_TRY(idx_read(f, path, h, 4, &got));
    if (got < 4)
        return syn__error(SYN_ERR_FORMAT, "%s: truncated: %zu bytes, too short for an IDX header", path, got);
    uint32_t m = be32(h);
    if (magic == IDX_MAGIC_BYTES ? (m & ~0xffu) != IDX_MAGIC_BYTES || (m & 0xffu) < 1 || (m & 0xffu) > IDX_MAX_DIMS
                                 : m != magic) {
        const char *kind = magic == IDX_MAGIC_IMAGES   ? "images (3-dim unsigned byte)"
                           : magic == IDX_MAGIC_LABELS ? "labels (1-dim unsigned byte)"
                                                       : "unsigned bytes, 1 to 4 dims (0x00000801..4)";
        if (magic == IDX_MAGIC_BYTES)
            return syn__error(SYN_ERR_FORMAT, "%s: bad magic number 0x%08x, expected IDX %s", path, m, kind);
        return syn__error(SYN_ERR_FORMAT, "%s: bad magic number 0x%08x, expected 0x%08x for IDX %s", path, m,
                          magic, kind);
    }
    *ndim = (int)(m & 0xffu);
    size_t want = 4u * (size_t)(*ndim + 1);
    SYN_TRY(idx_read(f, path, h + 4, want - 4, &got));
    if (4 + got < want)
        return syn__error(SYN_ERR_FORMAT, "%s: truncated header: expected %zu bytes, got %zu", path, want, 4 + got);
    *total = 1;
    for (int i = 0; i < *ndim; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        if (dims[i] == 0) return syn__error(SYN_ERR_FORMAT, "%s: dimension %d is 0", path, i);
        if (dims[i] > IDX_MAX_ELEMS / *total)
            return syn__error(SYN_ERR_FORMAT, "%s: absurd dimensions: more than %llu elements (dimension %d is %llu)",
                              path, (unsigned long long)IDX_MAX_ELEMS, i, (unsigned long long)dims[i]);
        *total *= dims[i];
    }
    return SYN_OK;
}

/* Reads `total` pixel bytes as floats in [0, 1], a chunk at a time so that
 * the bytes are never held whole next to the floats. */
static syn_status idx_pixels(gzFile f, const char *path, float *x, uint64_t total) {
    unsigned char *buf = syn__malloc(IDX_CHUNK, "IDX reader");
    if (!buf) return SYN_ERR_OOM;
    uint64_t done = 0;
    syn_status s = SYN_OK;
    while (done < total) {
        size_t want = total - done < IDX_CHUNK ? (size_t)(total - done) : IDX_CHUNK, got;
        s = idx_read(f, path, buf, want, &got);
        if (s != SYN_OK) break;
        for (size_t i = 0; i < got; i++) x[done + i] = (float)buf[i] * (1.0f / 255.0f);
        done += got;
        if (got < want) {
            s = syn__error(SYN_ERR_FORMAT, "%s: truncated: expected %llu pixel bytes, got %llu", path,
                           (unsigned long long)total, (unsigned long long)done);
            break;
        }
    }
    free(buf);
    return s;
}

/* Reads n label bytes into ds->labels and sets num_classes = max + 1.
 * Labels are unsigned bytes, so num_classes <= 256 holds by construction. */
static syn_status idx_labels(gzFile f, const char *path, syn_dataset *ds) {
    unsigned char *lab = syn__malloc((size_t)ds->n, path);
    if (!lab) return SYN_ERR_OOM;
    size_t got;
    syn_status s = idx_read(f, path, lab, (size_t)ds->n, &got);
    if (s == SYN_OK && got < (size_t)ds->n)
        s = syn__error(SYN_ERR_FORMAT, "%s: truncated: expected %lld label bytes, got %zu", path,
                       (long long)ds->n, got);
    if (s == SYN_OK) {
        int maxl = 0;
        for (int64_t i = 0; i < ds->n; i++) {
            ds->labels[i] = lab[i];
            if (lab[i] > maxl) maxl = lab[i];
        }
        ds->num_classes = maxl + 1;
    }
    free(lab);
    return s;
}

/* A header must not make us allocate more than the file can fill (4 GB of
 * floats for a few bytes claiming 1e9 pixels): the pixel bytes after the
 * header (`header` bytes) of a raw file are its size less the header's, a
 * gzip'd one inflates to at most 1032 times its size (deflate's largest
 * ratio). Fails as the pixel read would, before the floats are allocated.
 * Not a regular file (size unknown): the pixel read finds a short file. */
static syn_status idx_check_size(gzFile f, const char *path, uint64_t header, uint64_t pixels) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return SYN_OK;
    uint64_t size = (uint64_t)st.st_size, body = size > header ? size - header : 0;
    if (gzdirect(f) && pixels > body)
        return syn__error(SYN_ERR_FORMAT, "%s: truncated: expected %llu pixel bytes, got %llu", path,
                          (unsigned long long)pixels, (unsigned long long)body);
    if (gzdirect(f) || pixels / 1032 < size) return SYN_OK;
    /* Too many for this gzip file: count what it holds for the message
     * (at most 1032 times its size, a chunk at a time). */
    unsigned char *buf = syn__malloc(IDX_CHUNK, "IDX reader");
    if (!buf) return SYN_ERR_OOM;
    uint64_t got = 0;
    size_t n;
    syn_status s;
    while ((s = idx_read(f, path, buf, IDX_CHUNK, &n)) == SYN_OK && n > 0) got += n;
    free(buf);
    if (s != SYN_OK) return s;
    return syn__error(SYN_ERR_FORMAT, "%s: truncated: expected %llu pixel bytes, got %llu", path,
                      (unsigned long long)pixels, (unsigned long long)got);
}

static syn_status idx_load(const char *images_path, const char *labels_path, gzFile fi, gzFile fl,
                           syn_dataset **out) {
    uint64_t idims[IDX_MAX_DIMS] = {0}, ldims[IDX_MAX_DIMS] = {0}, ipix = 0, nlab = 0;
    int ind = 3, lnd = 1;
    SYN_TRY(idx_header(fi, images_path, IDX_MAGIC_IMAGES, &ind, idims, &ipix));
    SYN_TRY(idx_header(fl, labels_path, IDX_MAGIC_LABELS, &lnd, ldims, &nlab));
    /* Compare counts before allocating: a mismatched pair is a user error
     * that should cost nothing. */
    if (idims[0] != ldims[0])
        return syn__error(SYN_ERR_FORMAT, "%s: %llu labels, but %s holds %llu images", labels_path,
                          (unsigned long long)ldims[0], images_path, (unsigned long long)idims[0]);
    SYN_TRY(idx_check_size(fi, images_path, 16, ipix));
    int64_t n = (int64_t)idims[0], dim = (int64_t)(idims[1] * idims[2]);

    syn_dataset *ds;
    SYN_TRY(syn__dataset_alloc(n, dim, true, 0, images_path, &ds));
    ds->sample_shape = syn_shape3(1, (int64_t)idims[1], (int64_t)idims[2]);
    syn_status s = idx_pixels(fi, images_path, ds->x, ipix);
    if (s == SYN_OK) s = idx_labels(fl, labels_path, ds);
    if (s != SYN_OK) {
        syn_dataset_free(ds);
        return s;
    }
    *out = ds;
    return SYN_OK;
}

syn_status syn_dataset_load_idx(const char *images_path, const char *labels_path, syn_dataset **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "IDX reader: NULL output");
    *out = NULL;
    if (!images_path || !labels_path) return syn__error(SYN_ERR_ARG, "IDX reader: NULL path");
    gzFile fi = NULL, fl = NULL;
    syn_status s = idx_open(images_path, &fi);
    if (s == SYN_OK) s = idx_open(labels_path, &fl);
    if (s == SYN_OK) {
        /* A larger zlib buffer: the default 8 KiB makes 47 MB of pixels slow. */
        gzbuffer(fi, 1u << 17);
        s = idx_load(images_path, labels_path, fi, fl, out);
    }
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    return s;
}

/* An images file alone: (n, d), (n, h, w) or (n, c, h, w) as samples (d),
 * (1, h, w) or (c, h, w); nothing may follow the pixels (a header that
 * undercounts them). */
static syn_status idx_images(gzFile f, const char *path, syn_dataset **out) {
    uint64_t d[IDX_MAX_DIMS] = {0}, total = 0;
    int nd = 0;
    SYN_TRY(idx_header(f, path, IDX_MAGIC_BYTES, &nd, d, &total));
    if (nd == 1)
        return syn__error(SYN_ERR_FORMAT,
                          "%s: a 1-dim IDX file (magic 0x%08x: labels?), not images of 2, 3 or 4 dims", path,
                          IDX_MAGIC_LABELS);
    SYN_TRY(idx_check_size(f, path, 4u * (uint64_t)(nd + 1), total));
    syn_shape sample = nd == 2 ? syn_shape1((int64_t)d[1])
                     : nd == 3 ? syn_shape3(1, (int64_t)d[1], (int64_t)d[2])
                               : syn_shape3((int64_t)d[1], (int64_t)d[2], (int64_t)d[3]);
    syn_dataset *ds;
    SYN_TRY(syn__dataset_alloc((int64_t)d[0], syn_shape_numel(&sample), false, 0, path, &ds));
    ds->sample_shape = sample;
    syn_status s = idx_pixels(f, path, ds->x, total);
    unsigned char extra;
    size_t got = 0;
    if (s == SYN_OK) s = idx_read(f, path, &extra, 1, &got);
    if (s == SYN_OK && got)
        s = syn__error(SYN_ERR_FORMAT, "%s: more bytes after the %llu pixel bytes its header gives", path,
                       (unsigned long long)total);
    if (s != SYN_OK) {
        syn_dataset_free(ds);
        return s;
    }
    *out = ds;
    return SYN_OK;
}

syn_status syn_dataset_load_idx_images(const char *path, syn_dataset **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "IDX images reader: NULL output");
    *out = NULL;
    if (!path) return syn__error(SYN_ERR_ARG, "IDX images reader: NULL path");
    gzFile f;
    SYN_TRY(idx_open(path, &f));
    gzbuffer(f, 1u << 17);
    syn_status s = idx_images(f, path, out);
    gzclose(f);
    return s;
}

/* dir/name(.gz): the gzip'd file as distributed, else an unpacked copy. */
static void fm_path(char *buf, size_t size, const char *dir, const char *name) {
    snprintf(buf, size, "%s/%s.gz", dir, name);
    if (access(buf, F_OK) == 0) return;
    char raw[4096];
    snprintf(raw, sizeof raw, "%s/%s", dir, name);
    /* Neither exists: keep the .gz name so the error names the usual file. */
    if (access(raw, F_OK) == 0) snprintf(buf, size, "%s", raw);
}

syn_status syn_dataset_load_fashion_mnist(const char *dir, bool train, syn_dataset **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "Fashion-MNIST: NULL output");
    *out = NULL;
    if (!dir) dir = getenv("SYN_FASHION_MNIST_DIR");
    if (!dir || !*dir) dir = SYN_FASHION_MNIST_DIR;
    if (strlen(dir) > 3900) return syn__error(SYN_ERR_ARG, "Fashion-MNIST: directory name too long");
    char images[4096], labels[4096];
    fm_path(images, sizeof images, dir, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");
    fm_path(labels, sizeof labels, dir, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte");
    return syn_dataset_load_idx(images, labels, out);
}
