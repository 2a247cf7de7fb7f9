/* The data module: IDX and CSV readers (exact round trips, every rejection
 * path with its status and message), real Fashion-MNIST when installed, the
 * batch loader, split and standardize. Files are written to a fresh temp dir. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>
#include "testutil.h"

/* AddressSanitizer reserves terabytes of address space: no RLIMIT_AS under it. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static const char *write_file(const char *name, const void *data, size_t len, int gz) {
    const char *p = tu_path(name);
    if (gz) {
        gzFile f = gzopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        fclose(f);
    }
    return p;
}

static const char *write_text(const char *name, const char *text) { return write_file(name, text, strlen(text), 0); }

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* An IDX file: magic, dims, then `payload` bytes taken from data. */
static const char *write_idx(const char *name, uint32_t magic, const uint32_t *dims, int ndim,
                             const unsigned char *data, size_t payload, int gz) {
    size_t hl = 4 + 4 * (size_t)ndim;
    unsigned char *buf = malloc(hl + payload + 1);
    put32(buf, magic);
    for (int i = 0; i < ndim; i++) put32(buf + 4 + 4 * i, dims[i]);
    if (payload) memcpy(buf + hl, data, payload);
    const char *p = write_file(name, buf, hl + payload, gz);
    free(buf);
    return p;
}

/* Expects status s and a message containing `needle` (the file name ...). */
#define EXPECT_ERR(expr, s, needle)                                                                   \
    do {                                                                                              \
        syn_status st_ = (expr);                                                                      \
        ck_assert_msg(st_ == (s), "%s -> %s, want %s (%s)", #expr, syn_status_str(st_), syn_status_str(s), \
                      syn_last_error());                                                              \
        ck_assert_msg(strstr(syn_last_error(), (needle)) != NULL, "message '%s' lacks '%s'",          \
                      syn_last_error(), (needle));                                                    \
    } while (0)

/* ---- IDX ---- */

static void idx_roundtrip(int gz) {
    tu_rng r = tu_rng_make(1);
    uint32_t n = 7, rows = 5, cols = 3, idims[3] = {n, rows, cols}, ldims[1] = {n};
    unsigned char px[7 * 15], lab[7];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)tu_next(&r);
    px[0] = 0, px[1] = 255;
    for (uint32_t i = 0; i < n; i++) lab[i] = (unsigned char)(tu_next(&r) % 4);
    lab[3] = 4;
    const char *ip = write_idx("img", 0x803, idims, 3, px, sizeof px, gz);
    const char *lp = write_idx("lab", 0x801, ldims, 1, lab, sizeof lab, gz);
    syn_dataset *ds = NULL;
    TU_OK(syn_dataset_load_idx(ip, lp, &ds));
    ck_assert_int_eq(ds->n, 7);
    ck_assert_int_eq(ds->dim, 15);
    syn_shape want = syn_shape3(1, 5, 3);
    ck_assert(syn_shape_equal(&ds->sample_shape, &want));
    ck_assert_int_eq(ds->num_classes, 5);
    ck_assert_ptr_null(ds->targets);
    for (size_t i = 0; i < sizeof px; i++) ck_assert_float_eq_tol(ds->x[i], px[i] / 255.0f, 1e-7f);
    ck_assert_float_eq(ds->x[0], 0.0f);
    ck_assert_float_eq(ds->x[1], 1.0f);
    for (uint32_t i = 0; i < n; i++) ck_assert_int_eq(ds->labels[i], lab[i]);
    syn_dataset_free(ds);
}
START_TEST(idx_gz) { idx_roundtrip(1); }
END_TEST
START_TEST(idx_raw) { idx_roundtrip(0); }
END_TEST

START_TEST(idx_errors) {
    unsigned char px[100] = {0}, lab[100] = {0};
    uint32_t d100[3] = {100, 28, 28}, d4[3] = {4, 5, 5}, l4[1] = {4}, l5[1] = {5};
    const char *lp = write_idx("lab4.gz", 0x801, l4, 1, lab, 4, 1);
    syn_dataset *ds = (syn_dataset *)&ds; /* poisoned: must come back NULL */

    uint32_t l100[1] = {100};
    const char *lp100 = write_idx("lab100", 0x801, l100, 1, lab, 100, 0);
    const char *tr = write_idx("trunc-images.gz", 0x803, d100, 3, px, 100, 1);
    EXPECT_ERR(syn_dataset_load_idx(tr, lp100, &ds), SYN_ERR_FORMAT, "trunc-images.gz");
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "expected 78400 pixel bytes, got 100"));

    const char *ok = write_idx("img4", 0x803, d4, 3, px, 100, 0);
    const char *bad = write_idx("magic-images", 0x801, d4, 3, px, 100, 0);
    EXPECT_ERR(syn_dataset_load_idx(bad, lp, &ds), SYN_ERR_FORMAT, "magic-images");
    EXPECT_ERR(syn_dataset_load_idx(ok, ok, &ds), SYN_ERR_FORMAT, "magic");

    const char *l5p = write_idx("labels5", 0x801, l5, 1, lab, 5, 0);
    EXPECT_ERR(syn_dataset_load_idx(ok, l5p, &ds), SYN_ERR_FORMAT, "labels5");
    const char *lt = write_idx("labels-short", 0x801, l4, 1, lab, 2, 0);
    EXPECT_ERR(syn_dataset_load_idx(ok, lt, &ds), SYN_ERR_FORMAT, "labels-short");

    EXPECT_ERR(syn_dataset_load_idx(tu_path("nope-images"), lp, &ds), SYN_ERR_IO, "nope-images");
    EXPECT_ERR(syn_dataset_load_idx(ok, tu_path("nope-labels"), &ds), SYN_ERR_IO, "nope-labels");

    uint32_t huge[3] = {1, 1u << 31, 1u << 31};
    const char *hp = write_idx("huge-images", 0x803, huge, 3, px, 100, 1);
    EXPECT_ERR(syn_dataset_load_idx(hp, lp, &ds), SYN_ERR_FORMAT, "huge-images");
    uint32_t zero[3] = {4, 0, 5};
    const char *zp = write_idx("zero-images", 0x803, zero, 3, px, 100, 0);
    EXPECT_ERR(syn_dataset_load_idx(zp, lp, &ds), SYN_ERR_FORMAT, "zero-images");
    const char *hdr = write_file("short-header", "\0\0\x08\x03\0\0", 6, 0);
    EXPECT_ERR(syn_dataset_load_idx(hdr, lp, &ds), SYN_ERR_FORMAT, "short-header");
    static const char junk_gz[] = "\x1f\x8b\x08\0\0\0\0\0\0\x03garbage that is not deflate data";
    const char *junk = write_file("junk.gz", junk_gz, sizeof junk_gz - 1, 0);
    syn_status s = syn_dataset_load_idx(junk, lp, &ds);
    ck_assert(s == SYN_ERR_FORMAT || s == SYN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "junk.gz"));
    ck_assert_ptr_null(ds);
}
END_TEST

/* syn_dataset_load_idx_images: 2, 3 and 4 dims give samples (d), (1,h,w)
 * and (c,h,w), the bytes scaled to [0, 1], no labels. */
static void idx_images_roundtrip(int gz) {
    static const struct {
        int ndim;
        uint32_t dims[4];
        syn_shape sample;
    } cases[] = {
        {2, {5, 7}, {1, {7}}},
        {3, {4, 3, 5}, {3, {1, 3, 5}}},
        {4, {3, 2, 3, 4}, {3, {2, 3, 4}}},
    };
    tu_rng r = tu_rng_make(2);
    unsigned char px[128];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t total = 1;
        for (int k = 0; k < cases[c].ndim; k++) total *= cases[c].dims[k];
        ck_assert_uint_le(total, sizeof px);
        for (size_t i = 0; i < total; i++) px[i] = (unsigned char)tu_next(&r);
        px[0] = 0, px[total - 1] = 255;
        char name[32];
        snprintf(name, sizeof name, "images%d%s", cases[c].ndim, gz ? ".gz" : "");
        const char *p = write_idx(name, 0x800u + (uint32_t)cases[c].ndim, cases[c].dims, cases[c].ndim, px, total, gz);
        syn_dataset *ds = (syn_dataset *)&ds;
        TU_OK(syn_dataset_load_idx_images(p, &ds));
        ck_assert_int_eq(ds->n, cases[c].dims[0]);
        ck_assert_int_eq(ds->dim, (int64_t)(total / cases[c].dims[0]));
        ck_assert_msg(syn_shape_equal(&ds->sample_shape, &cases[c].sample), "%d dims: sample shape ndim %d",
                      cases[c].ndim, ds->sample_shape.ndim);
        ck_assert(ds->labels == NULL && ds->targets == NULL && ds->num_classes == 0 && ds->target_dim == 0);
        for (size_t i = 0; i < total; i++) ck_assert_float_eq_tol(ds->x[i], px[i] / 255.0f, 1e-7f);
        ck_assert_float_eq(ds->x[0], 0.0f);
        ck_assert_float_eq(ds->x[total - 1], 1.0f);
        syn_dataset_free(ds);
    }
}
START_TEST(idx_images_gz) { idx_images_roundtrip(1); }
END_TEST
START_TEST(idx_images_raw) { idx_images_roundtrip(0); }
END_TEST

#ifndef UNDER_ASAN
/* The virtual memory this process has mapped, in bytes (0: unknown). */
static uint64_t mapped_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (f) {
        if (fscanf(f, "%llu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}
#endif

START_TEST(idx_images_errors) {
    unsigned char px[200] = {0};
    syn_dataset *ds = (syn_dataset *)&ds; /* poisoned: must come back NULL */
    uint32_t d[4] = {3, 28, 28};
    for (int gz = 0; gz < 2; gz++) {
        const char *p = write_idx(gz ? "short.gz" : "short", 0x803, d, 3, px, 100, gz);
        EXPECT_ERR(syn_dataset_load_idx_images(p, &ds), SYN_ERR_FORMAT, gz ? "short.gz" : "short");
        ck_assert_ptr_nonnull(strstr(syn_last_error(), "truncated: expected 2352 pixel bytes, got 100"));
        ck_assert_ptr_null(ds);
    }

    /* 1e9 pixels claimed by a file of ~100 bytes: refused before the 4 GB of
     * floats are allocated. With the address space capped below that, an
     * attempt to allocate would fail as SYN_ERR_OOM instead. */
    uint32_t huge[3] = {1000, 1000, 1000};
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
#ifndef UNDER_ASAN
    uint64_t mapped = mapped_bytes();
    if (mapped) {
        struct rlimit cap = old;
        cap.rlim_cur = (rlim_t)(mapped + (2ull << 30));
        if (old.rlim_cur == RLIM_INFINITY || cap.rlim_cur < old.rlim_cur) ck_assert_int_eq(setrlimit(RLIMIT_AS, &cap), 0);
    }
#endif
    for (int gz = 0; gz < 2; gz++) {
        const char *p = write_idx(gz ? "claims.gz" : "claims", 0x803, huge, 3, px, 100, gz);
        EXPECT_ERR(syn_dataset_load_idx_images(p, &ds), SYN_ERR_FORMAT, "expected 1000000000 pixel bytes, got 100");
        ck_assert_ptr_nonnull(strstr(syn_last_error(), gz ? "claims.gz" : "claims"));
        ck_assert_ptr_null(ds);
    }
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    uint32_t absurd[3] = {1000, 1000, 1001};
    const char *ap = write_idx("absurd", 0x803, absurd, 3, px, 100, 0);
    EXPECT_ERR(syn_dataset_load_idx_images(ap, &ds), SYN_ERR_FORMAT, "absurd dimensions");

    uint32_t n4[1] = {4};
    const char *lp = write_idx("labels.gz", 0x801, n4, 1, px, 4, 1);
    EXPECT_ERR(syn_dataset_load_idx_images(lp, &ds), SYN_ERR_FORMAT, "labels.gz: a 1-dim IDX file");
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "labels?"));
    uint32_t d5[5] = {1, 1, 1, 1, 1};
    const char *p5 = write_idx("five-dims", 0x805, d5, 5, px, 1, 0);
    EXPECT_ERR(syn_dataset_load_idx_images(p5, &ds), SYN_ERR_FORMAT, "five-dims: bad magic number 0x00000805");
    const char *pf = write_idx("floats", 0xD03, d, 3, px, 100, 0); /* IDX floats: not bytes */
    EXPECT_ERR(syn_dataset_load_idx_images(pf, &ds), SYN_ERR_FORMAT, "floats: bad magic number 0x00000d03");
    uint32_t z[2] = {2, 0};
    const char *pz = write_idx("zero-dim", 0x802, z, 2, px, 0, 0);
    EXPECT_ERR(syn_dataset_load_idx_images(pz, &ds), SYN_ERR_FORMAT, "zero-dim: dimension 1 is 0");
    const char *ph = write_file("cut-header", "\0\0\x08\x04\0\0\0\x01\0\0", 10, 0);
    EXPECT_ERR(syn_dataset_load_idx_images(ph, &ds), SYN_ERR_FORMAT, "cut-header: truncated header");
    uint32_t d2[2] = {2, 3};
    const char *pt = write_idx("trailing", 0x802, d2, 2, px, 7, 0);
    EXPECT_ERR(syn_dataset_load_idx_images(pt, &ds), SYN_ERR_FORMAT, "trailing: more bytes after the 6 pixel bytes");
    EXPECT_ERR(syn_dataset_load_idx_images(tu_path("missing"), &ds), SYN_ERR_IO, "missing: cannot open");
    ck_assert_ptr_null(ds);

    const char *ok = write_idx("ok", 0x802, d2, 2, px, 6, 0);
    ds = (syn_dataset *)&ds;
    EXPECT_ERR(syn_dataset_load_idx_images(NULL, &ds), SYN_ERR_ARG, "NULL path");
    ck_assert_ptr_null(ds);
    EXPECT_ERR(syn_dataset_load_idx_images(ok, NULL), SYN_ERR_ARG, "NULL output");
}
END_TEST

START_TEST(fashion_mnist) {
    if (access(SYN_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("SKIP fashion_mnist: %s not installed\n", SYN_FASHION_MNIST_DIR);
        return;
    }
    syn_dataset *tr = NULL, *te = NULL;
    TU_OK(syn_dataset_load_fashion_mnist(NULL, true, &tr));
    TU_OK(syn_dataset_load_fashion_mnist(SYN_FASHION_MNIST_DIR, false, &te));
    ck_assert_int_eq(tr->n, 60000);
    ck_assert_int_eq(tr->dim, 784);
    ck_assert_int_eq(tr->num_classes, 10);
    ck_assert_int_eq(te->n, 10000);
    ck_assert_int_eq(te->num_classes, 10);
    syn_shape want = syn_shape3(1, 28, 28);
    ck_assert(syn_shape_equal(&te->sample_shape, &want));
    int64_t count[10] = {0};
    for (int64_t i = 0; i < te->n; i++) count[te->labels[i]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(count[c], 1000);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < tr->n * tr->dim; i++) lo = fminf(lo, tr->x[i]), hi = fmaxf(hi, tr->x[i]);
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq(hi, 1.0f);
    syn_dataset_free(tr);
    syn_dataset_free(te);
}
END_TEST

/* dir NULL: $SYN_FASHION_MNIST_DIR when set (the unpacked file names). */
START_TEST(fashion_mnist_dir_from_env) {
    unsigned char px[2 * 6] = {0, 51, 102, 153, 204, 255, 1, 2, 3, 4, 5, 6}, lab[2] = {3, 9};
    uint32_t idims[3] = {2, 2, 3}, ldims[1] = {2};
    write_idx("t10k-images-idx3-ubyte", 0x803, idims, 3, px, sizeof px, 0);
    write_idx("t10k-labels-idx1-ubyte", 0x801, ldims, 1, lab, sizeof lab, 0);
    setenv("SYN_FASHION_MNIST_DIR", tu_dir, 1);
    syn_dataset *ds = NULL;
    syn_status s = syn_dataset_load_fashion_mnist(NULL, false, &ds);
    unsetenv("SYN_FASHION_MNIST_DIR");
    TU_OK(s);
    ck_assert_int_eq(ds->n, 2);
    ck_assert_int_eq(ds->dim, 6);
    ck_assert_int_eq(ds->labels[1], 9);
    ck_assert_float_eq(ds->x[5], 1.0f);
    syn_dataset_free(ds);
    /* the training files are not there: the error names the folder from the variable */
    setenv("SYN_FASHION_MNIST_DIR", tu_dir, 1);
    s = syn_dataset_load_fashion_mnist(NULL, true, &ds);
    unsetenv("SYN_FASHION_MNIST_DIR");
    EXPECT_ERR(s, SYN_ERR_IO, tu_dir);
}
END_TEST

/* ---- CSV ---- */

static syn_dataset *csv(const char *text, const char *label, bool regression, char delim) {
    syn_csv_opts o = {label, regression, delim};
    syn_dataset *ds = NULL;
    TU_OK(syn_dataset_load_csv(write_text("t.csv", text), &o, &ds));
    return ds;
}

START_TEST(csv_numeric) {
    syn_dataset *ds = csv("a,b,label\n1,2,0\n3,-4.5,1\n5,6e2,2\n", "label", false, 0);
    ck_assert_int_eq(ds->n, 3);
    ck_assert_int_eq(ds->dim, 2);
    ck_assert_int_eq(ds->sample_shape.ndim, 1);
    ck_assert_int_eq(ds->sample_shape.dim[0], 2);
    ck_assert_int_eq(ds->num_classes, 3);
    const float x[6] = {1, 2, 3, -4.5f, 5, 600};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(ds->x[i], x[i]);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(ds->labels[i], i);
    syn_dataset_free(ds);

    /* by index, label first; integer labels kept as is (1-based: class 0 empty) */
    ds = csv("y,f1,f2\n3, 1.5 ,2\n1,3,4\n", "0", false, 0);
    ck_assert_int_eq(ds->dim, 2);
    ck_assert_int_eq(ds->num_classes, 4);
    ck_assert_int_eq(ds->labels[0], 3);
    ck_assert_int_eq(ds->labels[1], 1);
    ck_assert_float_eq(ds->x[0], 1.5f);
    ck_assert_float_eq(ds->x[3], 4.0f);
    syn_dataset_free(ds);

    /* a 30000-column line: the reader has no line length limit */
    char *wide = malloc(30000 * 4 + 64), *w = wide;
    for (int c = 0; c < 30000; c++) w += sprintf(w, c ? ",c" : "c");
    w += sprintf(w, "\n");
    for (int c = 0; c < 30000; c++) w += sprintf(w, c ? ",%d" : "%d", c % 10);
    ds = csv(wide, "c", false, 0);
    ck_assert_int_eq(ds->dim, 29999);
    ck_assert_float_eq(ds->x[29998], 9.0f);
    free(wide), syn_dataset_free(ds);

    /* no label given: the last column; ';' delimiter */
    ds = csv("p;q\n1;0\n2;1\n", NULL, false, ';');
    ck_assert_int_eq(ds->n, 2);
    ck_assert_int_eq(ds->dim, 1);
    ck_assert_int_eq(ds->labels[1], 1);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(csv_classes_regression) {
    syn_dataset *ds = csv("x,species\n1,setosa\n2,virginica\n3,setosa\n4,versicolor\n", "species", false, 0);
    ck_assert_int_eq(ds->num_classes, 3);
    const int want[4] = {0, 1, 0, 2};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(ds->labels[i], want[i]);
    syn_dataset_free(ds);

    /* a negative or fractional class value makes the column names */
    ds = csv("x,c\n1,-1\n2,1\n3,-1\n", "c", false, 0);
    ck_assert_int_eq(ds->num_classes, 2);
    ck_assert_int_eq(ds->labels[0], 0);
    ck_assert_int_eq(ds->labels[1], 1);
    ck_assert_int_eq(ds->labels[2], 0);
    syn_dataset_free(ds);

    ds = csv("price,a,b\n1.25,1,2\n-3,4,5\n", "price", true, 0);
    ck_assert_ptr_null(ds->labels);
    ck_assert_ptr_nonnull(ds->targets);
    ck_assert_int_eq(ds->target_dim, 1);
    ck_assert_float_eq(ds->targets[0], 1.25f);
    ck_assert_float_eq(ds->targets[1], -3.0f);
    ck_assert_float_eq(ds->x[2], 4.0f);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(csv_quotes_crlf) {
    syn_dataset *ds = csv("\"a,1\",b,\"la\"\"bel\"\r\n\"1.5\",2,\"x,y\"\r\n3,4,\"multi\r\nline\"\r\n5,6,\"x,y\"", "la\"bel",
                          false, 0);
    ck_assert_int_eq(ds->n, 3);
    ck_assert_int_eq(ds->dim, 2);
    ck_assert_int_eq(ds->num_classes, 2);
    ck_assert_int_eq(ds->labels[0], 0);
    ck_assert_int_eq(ds->labels[1], 1);
    ck_assert_int_eq(ds->labels[2], 0);
    ck_assert_float_eq(ds->x[0], 1.5f);
    ck_assert_float_eq(ds->x[5], 6.0f);
    syn_dataset_free(ds);

    ds = csv("\xEF\xBB\xBF" "a,b\r\n\r\n1,2\r\n3,4\r\n\r\n", "b", false, 0); /* BOM, blank lines */
    ck_assert_int_eq(ds->n, 2);
    ck_assert_int_eq(ds->labels[1], 4);
    syn_dataset_free(ds);
}
END_TEST

static void csv_err(const char *text, const char *label, bool regression, syn_status want, const char *needle) {
    syn_csv_opts o = {label, regression, 0};
    syn_dataset *ds = (syn_dataset *)&o;
    const char *p = write_text("bad.csv", text);
    EXPECT_ERR(syn_dataset_load_csv(p, &o, &ds), want, "bad.csv");
    ck_assert_msg(strstr(syn_last_error(), needle) != NULL, "message '%s' lacks '%s'", syn_last_error(), needle);
    ck_assert_ptr_null(ds);
}

START_TEST(csv_errors) {
    syn_csv_opts o = {"y", false, 0};
    syn_dataset *ds = NULL;
    EXPECT_ERR(syn_dataset_load_csv(tu_path("missing.csv"), &o, &ds), SYN_ERR_IO, "missing.csv");
    csv_err("", "y", false, SYN_ERR_FORMAT, "empty");
    csv_err("x,y\n", "y", false, SYN_ERR_FORMAT, "no data");
    csv_err("x,y\n1,0\n2,3,4\n", "y", false, SYN_ERR_FORMAT, ":3:");
    csv_err("x,y\n1,0\n2\n", "y", false, SYN_ERR_FORMAT, ":3:");
    csv_err("speed,y\n1,0\nfast,1\n", "y", false, SYN_ERR_FORMAT, ":3: column 'speed' (field 1): not a number: 'fast'");
    csv_err("speed,y\n1,0\n12abc,1\n", "y", false, SYN_ERR_FORMAT, "speed");
    csv_err("speed,y\n1,0\nNaN,1\n", "y", false, SYN_ERR_FORMAT, ":3: column 'speed'");
    csv_err("speed,y\ninf,0\n", "y", false, SYN_ERR_FORMAT, ":2: column 'speed'");
    csv_err("speed,y\n1e39,0\n", "y", false, SYN_ERR_FORMAT, "speed");
    csv_err("speed,w,y\n1,,0\n", "y", false, SYN_ERR_FORMAT, "column 'w' (field 2): empty");
    csv_err("x,y\n1,0\n", "z", false, SYN_ERR_ARG, "'z'");
    csv_err("x,y\n1,0\n", "2", false, SYN_ERR_ARG, "'2'");
    csv_err("x,y\n1,abc\n", "y", true, SYN_ERR_FORMAT, "column 'y'");
    csv_err("x,y\n1,\"abc\n", "y", false, SYN_ERR_FORMAT, "unterminated");
    csv_err("y\n1\n", "y", false, SYN_ERR_FORMAT, "feature");
}
END_TEST

/* Chosen columns, unlabelled: by name in any order (text columns unread), a
 * name given twice takes the next column of that name, an index as text; the
 * header by itself; quoting, BOM and CRLF as for the labelled reader. */
START_TEST(csv_columns_and_header) {
    const char *p = write_text("cols.csv", "\xEF\xBB\xBF" "id,\"x,1\",note,x,\"y\"\r\n"
                                           "a,1.5,\"hello, world\",2,\"3\"\r\n"
                                           "\r\n"
                                           "b,\"-4\",\"multi\r\nline\",5e1,6\r\n");
    const char *want[] = {"y", "x,1", "x"};
    syn_dataset *ds = NULL;
    TU_OK(syn_dataset_load_csv_columns(p, want, 3, 0, &ds));
    ck_assert_int_eq(ds->n, 2);
    ck_assert_int_eq(ds->dim, 3);
    ck_assert_ptr_null(ds->labels);
    ck_assert_ptr_null(ds->targets);
    ck_assert_int_eq(ds->num_classes, 0);
    ck_assert_float_eq(ds->x[0], 3.0f);
    ck_assert_float_eq(ds->x[1], 1.5f);
    ck_assert_float_eq(ds->x[2], 2.0f);
    ck_assert_float_eq(ds->x[4], -4.0f);
    ck_assert_float_eq(ds->x[5], 50.0f);
    syn_dataset_free(ds);
    const char *dup[] = {"v", "v", "0"};
    p = write_text("dup.csv", "9;v;v\n1;2;3\n");
    TU_OK(syn_dataset_load_csv_columns(p, dup, 3, ';', &ds));
    ck_assert_float_eq(ds->x[0], 2.0f);
    ck_assert_float_eq(ds->x[1], 3.0f);
    ck_assert_float_eq(ds->x[2], 1.0f); /* "0": no such name, so the index */
    syn_dataset_free(ds);

    char **names = NULL;
    int n = 0;
    TU_OK(syn_csv_header_read(tu_path("cols.csv"), 0, &names, &n));
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(names[0], "id"); /* the BOM dropped */
    ck_assert_str_eq(names[1], "x,1");
    ck_assert_str_eq(names[4], "y");
    syn_csv_header_free(names, n);
    syn_csv_header_free(NULL, 0);

    ds = (syn_dataset *)&n;
    const char *none[] = {"nosuch"};
    EXPECT_ERR(syn_dataset_load_csv_columns(tu_path("cols.csv"), none, 1, 0, &ds), SYN_ERR_ARG, "'nosuch'");
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "'id', 'x,1', 'note'"));
    ck_assert_ptr_null(ds);
    const char *text[] = {"note"};
    EXPECT_ERR(syn_dataset_load_csv_columns(tu_path("cols.csv"), text, 1, 0, &ds), SYN_ERR_FORMAT,
               "cols.csv:2: column 'note' (field 3): not a number: 'hello, world'");
    EXPECT_ERR(syn_dataset_load_csv_columns(tu_path("cols.csv"), want, 0, 0, &ds), SYN_ERR_ARG, "at least one");
    EXPECT_ERR(syn_dataset_load_csv_columns(tu_path("cols.csv"), want, 1, '"', &ds), SYN_ERR_ARG, "delimiter");
    EXPECT_ERR(syn_csv_header_read(tu_path("nope.csv"), 0, &names, &n), SYN_ERR_IO, "nope.csv");
    ck_assert_ptr_null(names);
    EXPECT_ERR(syn_csv_header_read(write_text("e.csv", "\n\n"), 0, &names, &n), SYN_ERR_FORMAT, "empty file");
    EXPECT_ERR(syn_csv_header_read(write_text("q.csv", "a,\"b\n"), 0, &names, &n), SYN_ERR_FORMAT, "unterminated");
}
END_TEST

/* ---- datasets built in the test ---- */

/* n rows of dim features; x[r][0] = r so that rows can be traced. */
static syn_dataset *make_ds(int64_t n, int64_t dim, bool regression) {
    syn_dataset *ds = calloc(1, sizeof *ds);
    ds->n = n, ds->dim = dim, ds->sample_shape = syn_shape1(dim);
    ds->x = malloc((size_t)(n * dim + 1) * sizeof(float));
    tu_rng r = tu_rng_make(7);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) ds->x[i * dim + j] = j == 0 ? (float)i : tu_uniform(&r, -1, 1);
    if (regression) {
        ds->targets = malloc((size_t)(2 * n + 1) * sizeof(float)), ds->target_dim = 2;
        for (int64_t i = 0; i < 2 * n; i++) ds->targets[i] = (float)i;
    } else {
        ds->labels = malloc((size_t)(n + 1) * sizeof(int32_t)), ds->num_classes = 3;
        for (int64_t i = 0; i < n; i++) ds->labels[i] = (int32_t)(i % 3);
    }
    return ds;
}

/* One epoch's row order; checks every batch's contents against its row. */
static int64_t epoch(syn_loader *l, const syn_dataset *ds, int64_t *order, int64_t batch) {
    syn_batch b;
    int64_t k = 0;
    for (;;) {
        TU_OK(syn_loader_next(l, &b));
        if (b.n == 0) return k;
        ck_assert_int_le(b.n, batch);
        for (int64_t i = 0; i < b.n; i++) {
            int64_t row = (int64_t)b.x[i * ds->dim];
            ck_assert_float_eq(b.x[i * ds->dim + 1], ds->x[row * ds->dim + 1]);
            if (ds->labels) ck_assert_int_eq(b.labels[i], ds->labels[row]);
            else ck_assert_float_eq(b.targets[2 * i + 1], (float)(2 * row + 1));
            order[k++] = row;
        }
    }
}

START_TEST(loader_coverage) {
    syn_dataset *ds = make_ds(37, 3, false);
    syn_loader *l = NULL, *l2 = NULL, *l3 = NULL;
    int64_t o1[37], o2[37], o3[37], o4[37], o5[37];
    TU_OK(syn_loader_create(ds, 8, true, 42, false, &l));
    ck_assert_int_eq(syn_loader_batches(l), 5);
    syn_batch b;
    int sizes[5];
    for (int i = 0; i < 5; i++) {
        TU_OK(syn_loader_next(l, &b));
        sizes[i] = (int)b.n;
    }
    ck_assert_int_eq(sizes[0], 8);
    ck_assert_int_eq(sizes[4], 5);
    TU_OK(syn_loader_next(l, &b));
    ck_assert_int_eq(b.n, 0);

    ck_assert_int_eq(epoch(l, ds, o1, 8), 37); /* epoch 1 */
    ck_assert_int_eq(epoch(l, ds, o2, 8), 37); /* epoch 2 */
    int seen[37] = {0};
    for (int i = 0; i < 37; i++) seen[o1[i]]++;
    for (int i = 0; i < 37; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert(memcmp(o1, o2, sizeof o1) != 0);

    /* same seed: the same orders epoch by epoch; another seed: another order */
    TU_OK(syn_loader_create(ds, 5, true, 42, false, &l2));
    ck_assert_int_eq(epoch(l2, ds, o3, 5), 37);
    ck_assert_int_eq(epoch(l2, ds, o3, 5), 37);
    ck_assert(memcmp(o1, o3, sizeof o1) == 0);
    TU_OK(syn_loader_create(ds, 8, true, 43, false, &l3));
    epoch(l3, ds, o4, 8);
    epoch(l3, ds, o4, 8);
    ck_assert(memcmp(o1, o4, sizeof o1) != 0);

    syn_loader_free(l3);
    TU_OK(syn_loader_create(ds, 100, false, 0, false, &l3)); /* no shuffle, batch > n */
    ck_assert_int_eq(syn_loader_batches(l3), 1);
    ck_assert_int_eq(epoch(l3, ds, o5, 100), 37);
    for (int i = 0; i < 37; i++) ck_assert_int_eq(o5[i], i);
    syn_loader_free(l);
    syn_loader_free(l2);
    syn_loader_free(l3);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(loader_drop_last_and_errors) {
    syn_dataset *ds = make_ds(37, 2, true);
    syn_loader *l = NULL;
    int64_t o[37];
    TU_OK(syn_loader_create(ds, 8, true, 1, true, &l));
    ck_assert_int_eq(syn_loader_batches(l), 4);
    ck_assert_int_eq(epoch(l, ds, o, 8), 32);
    ck_assert_int_eq(epoch(l, ds, o, 8), 32);
    syn_loader_free(l);

    l = (syn_loader *)&o;
    EXPECT_ERR(syn_loader_create(ds, 0, true, 1, false, &l), SYN_ERR_ARG, "batch size 0");
    ck_assert_ptr_null(l);
    EXPECT_ERR(syn_loader_create(ds, 38, true, 1, true, &l), SYN_ERR_ARG, "drop_last");
    ds->n = 0;
    EXPECT_ERR(syn_loader_create(ds, 4, true, 1, false, &l), SYN_ERR_ARG, "no rows");
    syn_loader_free(NULL);
    syn_dataset_free(ds);
    syn_dataset_free(NULL);
}
END_TEST

START_TEST(split) {
    syn_dataset *ds = make_ds(100, 3, false), *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    ds->sample_shape = syn_shape3(1, 3, 1);
    TU_OK(syn_dataset_split(ds, 0.2f, 9, &a, &b));
    ck_assert_int_eq(a->n, 80);
    ck_assert_int_eq(b->n, 20);
    ck_assert(syn_shape_equal(&a->sample_shape, &ds->sample_shape));
    ck_assert_int_eq(b->num_classes, 3);
    int seen[100] = {0};
    for (int64_t i = 0; i < a->n; i++) seen[(int)a->x[i * 3]]++;
    for (int64_t i = 0; i < b->n; i++) {
        int row = (int)b->x[i * 3];
        seen[row]++;
        ck_assert_int_eq(b->labels[i], row % 3);
        ck_assert_float_eq(b->x[i * 3 + 2], ds->x[row * 3 + 2]);
    }
    for (int i = 0; i < 100; i++) ck_assert_int_eq(seen[i], 1);
    TU_OK(syn_dataset_split(ds, 0.2f, 9, &c, &d));
    ck_assert(memcmp(b->x, d->x, 60 * sizeof(float)) == 0);
    syn_dataset_free(c);
    syn_dataset_free(d);

    EXPECT_ERR(syn_dataset_split(ds, 0.0f, 9, &c, &d), SYN_ERR_ARG, "fraction");
    EXPECT_ERR(syn_dataset_split(ds, 1.0f, 9, &c, &d), SYN_ERR_ARG, "fraction");
    EXPECT_ERR(syn_dataset_split(ds, NAN, 9, &c, &d), SYN_ERR_ARG, "fraction");
    EXPECT_ERR(syn_dataset_split(ds, 0.001f, 9, &c, &d), SYN_ERR_ARG, "empty");
    ck_assert_ptr_null(c);
    ck_assert_ptr_null(d);
    syn_dataset *r = make_ds(10, 2, true);
    TU_OK(syn_dataset_split(r, 0.5f, 1, &c, &d));
    ck_assert_int_eq(d->target_dim, 2);
    for (int64_t i = 0; i < d->n; i++) ck_assert_float_eq(d->targets[2 * i], 2 * d->x[2 * i]);
    syn_dataset_free(c);
    syn_dataset_free(d);
    syn_dataset_free(r);
    syn_dataset_free(a);
    syn_dataset_free(b);
    syn_dataset_free(ds);
}
END_TEST

/* Mean and population std of column j (or all values when j < 0). */
static void stats(const syn_dataset *ds, int64_t j, double *mean, double *sd) {
    double s = 0, q = 0, m = 0;
    for (int64_t i = 0; i < ds->n * ds->dim; i++)
        if (j < 0 || i % ds->dim == j) s += ds->x[i], m++;
    for (int64_t i = 0; i < ds->n * ds->dim; i++)
        if (j < 0 || i % ds->dim == j) q += (ds->x[i] - s / m) * (ds->x[i] - s / m);
    *mean = s / m, *sd = sqrt(q / m);
}

START_TEST(standardize) {
    syn_dataset *tr = make_ds(501, 4, false), *te = make_ds(50, 4, false);
    for (int64_t i = 0; i < tr->n; i++) tr->x[i * 4 + 2] = 1000 + 0.01f * tr->x[i * 4 + 2], tr->x[i * 4 + 3] = 7;
    float te0 = te->x[4 * 10];
    double m0, s0, m, s;
    stats(tr, 0, &m0, &s0);
    TU_OK(syn_dataset_standardize(tr, te, true));
    for (int j = 0; j < 3; j++) {
        stats(tr, j, &m, &s);
        ck_assert_double_le(fabs(m), 1e-5);
        ck_assert_double_le(fabs(s - 1), 1e-4);
    }
    for (int64_t i = 0; i < tr->n; i++) ck_assert_float_eq(tr->x[i * 4 + 3], 0.0f); /* constant: std 1 */
    ck_assert_double_le(fabs(te->x[40] - (te0 - m0) / s0), 1e-5);                     /* train's statistics */

    syn_dataset *g = make_ds(300, 5, false);
    for (int64_t i = 0; i < g->n * g->dim; i++) g->x[i] = 3 + 2 * g->x[i];
    TU_OK(syn_dataset_standardize(g, NULL, false));
    stats(g, -1, &m, &s);
    ck_assert_double_le(fabs(m), 1e-5);
    ck_assert_double_le(fabs(s - 1), 1e-4);

    syn_dataset *w = make_ds(10, 3, false);
    EXPECT_ERR(syn_dataset_standardize(tr, w, true), SYN_ERR_SHAPE, "features");
    w->x[7] = NAN;
    float before = w->x[0];
    EXPECT_ERR(syn_dataset_standardize(w, NULL, true), SYN_ERR_FORMAT, "NaN in features");
    ck_assert_float_eq(w->x[0], before);
    syn_dataset_free(w);
    syn_dataset_free(g);
    syn_dataset_free(tr);
    syn_dataset_free(te);
}
END_TEST

/* The statistics standardize applies, given back: applied to a copy of the
 * raw data they give the same bits; wrong counts and values are refused
 * without touching the data. */
START_TEST(standardize_with_stats) {
    for (int per = 0; per < 2; per++) {
        syn_dataset *tr = make_ds(301, 4, false), *te = make_ds(40, 4, false), *te2 = make_ds(40, 4, false);
        for (int64_t i = 0; i < tr->n; i++) tr->x[i * 4 + 2] = 1000 + 0.01f * tr->x[i * 4 + 2];
        memcpy(te2->x, te->x, (size_t)(te->n * te->dim) * sizeof(float));
        syn_norm_stats *st = NULL;
        TU_OK(syn_dataset_standardize_stats(tr, te, per, &st));
        ck_assert_int_eq(st->count, per ? 4 : 1);
        for (int64_t k = 0; k < st->count; k++) ck_assert(st->std[k] > 0 && isfinite(st->mean[k]));
        TU_OK(syn_dataset_standardize_with(te2, st));
        ck_assert_mem_eq(te2->x, te->x, (size_t)(te->n * te->dim) * sizeof(float));

        syn_dataset *w = make_ds(5, 3, false);
        float before = w->x[0];
        if (per) EXPECT_ERR(syn_dataset_standardize_with(w, st), SYN_ERR_SHAPE, "4 statistics for 3 features");
        double keep = st->std[0];
        st->std[0] = 0;
        EXPECT_ERR(syn_dataset_standardize_with(te2, st), SYN_ERR_ARG, "std");
        st->std[0] = keep;
        te2->x[3] = NAN;
        EXPECT_ERR(syn_dataset_standardize_with(te2, st), SYN_ERR_FORMAT, "NaN");
        ck_assert_float_eq(w->x[0], before);
        ck_assert_float_eq(te2->x[0], te->x[0]);
        syn_norm_stats_free(st);
        syn_norm_stats_free(NULL);
        syn_dataset_free(w);
        syn_dataset_free(tr);
        syn_dataset_free(te);
        syn_dataset_free(te2);
    }
    syn_norm_stats *st = (syn_norm_stats *)1;
    ck_assert_int_eq(syn_dataset_standardize_stats(NULL, NULL, true, &st), SYN_ERR_ARG);
    ck_assert_ptr_null(st);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("data");
    TCase *t = tcase_create("readers");
    tcase_add_checked_fixture(t, tu_dir_setup, tu_dir_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, idx_gz);
    tcase_add_test(t, idx_raw);
    tcase_add_test(t, idx_errors);
    tcase_add_test(t, idx_images_gz);
    tcase_add_test(t, idx_images_raw);
    tcase_add_test(t, idx_images_errors);
    tcase_add_test(t, fashion_mnist);
    tcase_add_test(t, fashion_mnist_dir_from_env);
    tcase_add_test(t, csv_numeric);
    tcase_add_test(t, csv_classes_regression);
    tcase_add_test(t, csv_quotes_crlf);
    tcase_add_test(t, csv_errors);
    tcase_add_test(t, csv_columns_and_header);
    suite_add_tcase(s, t);
    TCase *l = tcase_create("loader");
    tcase_add_test(l, loader_coverage);
    tcase_add_test(l, loader_drop_last_and_errors);
    tcase_add_test(l, split);
    tcase_add_test(l, standardize);
    tcase_add_test(l, standardize_with_stats);
    suite_add_tcase(s, l);
    return s;
}

int main(void) { return tu_run(suite()); }
