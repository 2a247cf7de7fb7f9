/* Image data: per-channel normalisation (computed and given), the loader's
 * seeded augmentation (padded random crop, horizontal flip) checked sample
 * by sample against a plain reference, and the CIFAR-10 binary reader (exact
 * round trips, plane order, every rejection path). Files go to a temp dir. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"

static char g_dir[64];

static void dir_setup(void) {
    strcpy(g_dir, "/tmp/syn_aug_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

/* Removes path's files and sub-directories, then path. */
static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) return;
    char p[512];
    struct stat st;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(path);
}

static void dir_teardown(void) { rm_tree(g_dir); }

/* g_dir/name into a static ring of buffers (a test holds several paths at once). */
static const char *tpath(const char *name) {
    static char bufs[16][512];
    static int k;
    char *b = bufs[k++ & 15];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

static const char *write_file(const char *name, const void *data, size_t len) {
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    if (len) ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
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

/* n images (C, H, W) with values in [lo, hi) + 10 c (channels well apart) and
 * label i: the label tells which row a loader sample came from. */
static syn_dataset *make_images(int64_t n, int64_t C, int64_t H, int64_t W, float lo, float hi, uint64_t salt) {
    syn_dataset *ds = calloc(1, sizeof *ds);
    ds->n = n, ds->dim = C * H * W, ds->sample_shape = syn_shape3(C, H, W);
    ds->x = malloc((size_t)(n * ds->dim) * sizeof(float));
    ds->labels = malloc((size_t)n * sizeof(int32_t)), ds->num_classes = (int)n;
    tu_rng r = tu_rng_make(salt);
    for (int64_t i = 0; i < n; i++) {
        ds->labels[i] = (int32_t)i;
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < H * W; k++)
                ds->x[i * ds->dim + c * H * W + k] = 10.0f * (float)c + tu_uniform(&r, lo, hi) * (float)(c + 1);
    }
    return ds;
}

static float *copy_x(const syn_dataset *ds) {
    float *x = malloc((size_t)(ds->n * ds->dim) * sizeof(float));
    memcpy(x, ds->x, (size_t)(ds->n * ds->dim) * sizeof(float));
    return x;
}

/* Mean and population std of channel c over all samples, in double. */
static void chan_stats(const syn_dataset *ds, int64_t c, double *mean, double *sd) {
    int64_t hw = ds->dim / ds->sample_shape.dim[0];
    double s = 0, q = 0, m = (double)(ds->n * hw);
    for (int64_t i = 0; i < ds->n; i++)
        for (int64_t k = 0; k < hw; k++) s += ds->x[i * ds->dim + c * hw + k];
    for (int64_t i = 0; i < ds->n; i++)
        for (int64_t k = 0; k < hw; k++) {
            double d = ds->x[i * ds->dim + c * hw + k] - s / m;
            q += d * d;
        }
    *mean = s / m, *sd = sqrt(q / m);
}

/* ---- normalisation ---- */

START_TEST(normalize_channels) {
    syn_dataset *tr = make_images(41, 4, 3, 5, -1, 3, 1), *te = make_images(7, 4, 3, 5, -2, 5, 2);
    int64_t hw = 15;
    for (int64_t i = 0; i < tr->n; i++)
        for (int64_t k = 0; k < hw; k++) tr->x[i * tr->dim + 3 * hw + k] = 0.25f; /* channel 3 constant */
    double m[4], s[4];
    for (int c = 0; c < 4; c++) chan_stats(tr, c, &m[c], &s[c]);
    float *te0 = copy_x(te);
    TU_OK(syn_dataset_normalize_channels(tr, te));
    for (int c = 0; c < 3; c++) {
        double mc, sc;
        chan_stats(tr, c, &mc, &sc);
        ck_assert_double_le(fabs(mc), 1e-5);
        ck_assert_double_le(fabs(sc - 1), 1e-4);
    }
    for (int64_t i = 0; i < tr->n; i++)
        for (int64_t k = 0; k < hw; k++) ck_assert_float_eq(tr->x[i * tr->dim + 3 * hw + k], 0.0f);
    /* The other set uses train's statistics, channel by channel. */
    for (int64_t i = 0; i < te->n * te->dim; i++) {
        int c = (int)(i % te->dim / hw);
        double want = c == 3 ? te0[i] - m[c] : (te0[i] - m[c]) / s[c];
        ck_assert_double_le(fabs(te->x[i] - want), 1e-5 * (1 + fabs(want)));
    }

    /* other NULL is fine. */
    syn_dataset *g = make_images(9, 1, 2, 2, 5, 7, 3);
    TU_OK(syn_dataset_normalize_channels(g, NULL));
    double mg, sg;
    chan_stats(g, 0, &mg, &sg);
    ck_assert_double_le(fabs(mg), 1e-5);
    ck_assert_double_le(fabs(sg - 1), 1e-4);

    /* Errors change nothing. */
    syn_dataset *w = make_images(5, 4, 5, 3, 0, 1, 4); /* same dim, transposed shape */
    float *w0 = copy_x(w), *tr0 = copy_x(tr);
    EXPECT_ERR(syn_dataset_normalize_channels(tr, w), SYN_ERR_SHAPE, "(4,5,3)");
    EXPECT_ERR(syn_dataset_normalize_channels(w, tr), SYN_ERR_SHAPE, "sample_shape");
    w->sample_shape = syn_shape2(4, 15);
    EXPECT_ERR(syn_dataset_normalize_channels(w, NULL), SYN_ERR_SHAPE, "(C, H, W)");
    w->sample_shape = syn_shape3(4, 3, 5);
    w->x[17] = NAN;
    EXPECT_ERR(syn_dataset_normalize_channels(tr, w), SYN_ERR_FORMAT, "NaN");
    ck_assert(memcmp(tr->x, tr0, (size_t)(tr->n * tr->dim) * sizeof(float)) == 0);
    ck_assert(memcmp(w->x, w0, 17 * sizeof(float)) == 0);
    EXPECT_ERR(syn_dataset_normalize_channels(NULL, NULL), SYN_ERR_ARG, "NULL");
    free(w0);
    free(tr0);
    free(te0);
    syn_dataset_free(w);
    syn_dataset_free(g);
    syn_dataset_free(tr);
    syn_dataset_free(te);
}
END_TEST

START_TEST(normalize_given) {
    syn_dataset *ds = make_images(6, 2, 3, 3, 0, 1, 5);
    float *x0 = copy_x(ds);
    const float mean[2] = {0.5f, 10.25f}, sd[2] = {0.5f, 2.0f};
    TU_OK(syn_dataset_normalize(ds, mean, sd, 2));
    for (int64_t i = 0; i < ds->n * ds->dim; i++) {
        int c = (int)(i % ds->dim / 9);
        double want = ((double)x0[i] - mean[c]) / sd[c];
        ck_assert_double_le(fabs(ds->x[i] - want), 1e-6 * (1 + fabs(want)));
    }
    memcpy(x0, ds->x, (size_t)(ds->n * ds->dim) * sizeof(float));
    const float zero[2] = {1, 0}, neg[2] = {-1, 1}, nan_sd[2] = {1, NAN}, nan_mean[2] = {NAN, 0};
    EXPECT_ERR(syn_dataset_normalize(ds, mean, zero, 2), SYN_ERR_ARG, "channel 1");
    EXPECT_ERR(syn_dataset_normalize(ds, mean, neg, 2), SYN_ERR_ARG, "channel 0");
    EXPECT_ERR(syn_dataset_normalize(ds, mean, nan_sd, 2), SYN_ERR_ARG, "std");
    EXPECT_ERR(syn_dataset_normalize(ds, nan_mean, sd, 2), SYN_ERR_ARG, "mean");
    EXPECT_ERR(syn_dataset_normalize(ds, mean, sd, 3), SYN_ERR_SHAPE, "channels");
    EXPECT_ERR(syn_dataset_normalize(ds, mean, sd, 1), SYN_ERR_SHAPE, "channels");
    EXPECT_ERR(syn_dataset_normalize(ds, NULL, sd, 2), SYN_ERR_ARG, "NULL");
    ds->sample_shape = syn_shape1(18);
    EXPECT_ERR(syn_dataset_normalize(ds, mean, sd, 2), SYN_ERR_SHAPE, "(C, H, W)");
    ck_assert(memcmp(ds->x, x0, (size_t)(ds->n * ds->dim) * sizeof(float)) == 0);
    free(x0);
    syn_dataset_free(ds);
}
END_TEST

/* ---- augmentation ---- */

/* The plain reference: crop at offset (dy, dx) of the zero-padded image, then
 * flip. Is out (C,H,W) exactly that transform of src? */
static bool is_transform(const float *out, const float *src, int64_t C, int64_t H, int64_t W, int dy, int dx,
                         bool flip) {
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                int64_t xc = flip ? W - 1 - x : x; /* column of the cropped image */
                int64_t sy = y + dy, sx = xc + dx;
                float want = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[(c * H + sy) * W + sx] : 0.0f;
                if (out[(c * H + y) * W + x] != want) return false;
            }
    return true;
}

/* Which transform (within pad and, if flips, either orientation) turned src
 * into out: 1 + index of (dy, dx, flip), or 0 when none does. The images
 * hold distinct non-zero values, so at most one matches. */
static int find_transform(const float *out, const float *src, const syn_shape *s, int pad, bool flips) {
    for (int f = 0; f <= (flips ? 1 : 0); f++)
        for (int dy = -pad; dy <= pad; dy++)
            for (int dx = -pad; dx <= pad; dx++)
                if (is_transform(out, src, s->dim[0], s->dim[1], s->dim[2], dy, dx, f))
                    return 1 + ((f * (2 * pad + 1) + dy + pad) * (2 * pad + 1) + dx + pad);
    return 0;
}

/* Runs `epochs` epochs and records, per epoch and row, the transform found
 * (see find_transform); fails if a sample matches none. */
static void run_epochs(syn_loader *l, const syn_dataset *ds, int epochs, int pad, bool flips, int *found) {
    for (int e = 0; e < epochs; e++) {
        int64_t seen = 0;
        syn_batch b;
        for (;;) {
            TU_OK(syn_loader_next(l, &b));
            if (b.n == 0) break;
            for (int64_t i = 0; i < b.n; i++) {
                int row = b.labels[i];
                int t = find_transform(b.x + i * ds->dim, ds->x + row * ds->dim, &ds->sample_shape, pad, flips);
                ck_assert_msg(t > 0, "epoch %d row %d: not a transform within pad %d (seed %llu)", e, row, pad,
                              (unsigned long long)tu_seed());
                found[e * ds->n + row] = t;
                seen++;
            }
        }
        ck_assert_int_eq(seen, ds->n);
    }
}

START_TEST(augment_off) {
    syn_dataset *ds = make_images(23, 3, 5, 7, 0.5f, 1.5f, 6);
    syn_loader *a = NULL, *b = NULL;
    TU_OK(syn_loader_create(ds, 4, true, 77, false, &a));
    TU_OK(syn_loader_create(ds, 4, true, 77, false, &b));
    syn_augment off = {0, false};
    TU_OK(syn_loader_set_augment(b, &off));
    for (int k = 0; k < 3 * 7; k++) { /* 3 epochs of 6 batches + the end marks */
        syn_batch ba, bb;
        TU_OK(syn_loader_next(a, &ba));
        TU_OK(syn_loader_next(b, &bb));
        ck_assert_int_eq(ba.n, bb.n);
        if (ba.n) ck_assert(memcmp(ba.x, bb.x, (size_t)(ba.n * ds->dim) * sizeof(float)) == 0);
    }
    /* NULL turns augmentation off again. */
    syn_augment on = {1, true};
    TU_OK(syn_loader_set_augment(b, &on));
    TU_OK(syn_loader_set_augment(b, NULL));
    int found[23];
    run_epochs(b, ds, 1, 0, false, found);
    syn_loader_free(a);
    syn_loader_free(b);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(augment_flip) {
    syn_dataset *ds = make_images(23, 3, 5, 7, 0.5f, 1.5f, 7);
    syn_loader *l = NULL;
    TU_OK(syn_loader_create(ds, 5, true, 3, false, &l));
    syn_augment aug = {0, true};
    TU_OK(syn_loader_set_augment(l, &aug));
    int found[3 * 23], count[2] = {0, 0};
    run_epochs(l, ds, 3, 0, true, found);
    for (int i = 0; i < 3 * 23; i++) count[found[i] - 1]++; /* 1: identical, 2: mirrored */
    /* 69 fair coins: all alike with probability 2^-68. */
    ck_assert_int_gt(count[0], 0);
    ck_assert_int_gt(count[1], 0);
    syn_loader_free(l);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(augment_crop) {
    syn_dataset *ds = make_images(23, 2, 6, 5, 0.5f, 1.5f, 8);
    syn_loader *l = NULL;
    TU_OK(syn_loader_create(ds, 4, false, 11, false, &l));
    syn_augment aug = {2, false};
    TU_OK(syn_loader_set_augment(l, &aug));
    int found[3 * 23], hist[26] = {0}, ys[5] = {0}, xs[5] = {0}, distinct = 0;
    run_epochs(l, ds, 3, 2, false, found);
    for (int i = 0; i < 3 * 23; i++) hist[found[i]]++;
    for (int t = 1; t <= 25; t++) {
        distinct += hist[t] > 0;
        ys[(t - 1) / 5] += hist[t], xs[(t - 1) % 5] += hist[t];
    }
    /* 69 draws of 25 equally likely shifts: every dy and every dx in
     * [-2, 2] shows up (each is missed with chance (4/5)^69 < 1e-6). */
    ck_assert_int_ge(distinct, 10);
    for (int k = 0; k < 5; k++) {
        ck_assert_int_gt(ys[k], 0);
        ck_assert_int_gt(xs[k], 0);
    }

    /* Crop and flip together; a pad wider than the image is allowed (the
     * crop may then see only padding). */
    syn_augment both = {2, true};
    TU_OK(syn_loader_set_augment(l, &both));
    run_epochs(l, ds, 2, 2, true, found);
    syn_augment wide = {7, true};
    TU_OK(syn_loader_set_augment(l, &wide));
    run_epochs(l, ds, 1, 7, true, found);
    syn_loader_free(l);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(augment_reproducible) {
    syn_dataset *ds = make_images(23, 3, 4, 4, 0.5f, 1.5f, 9);
    syn_augment aug = {2, true};
    tu_rng r = tu_rng_make(99);
    uint64_t seed = tu_next(&r), seed2 = seed + 1;
    syn_loader *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    TU_OK(syn_loader_create(ds, 4, true, seed, false, &a));
    TU_OK(syn_loader_create(ds, 4, true, seed, false, &b));
    TU_OK(syn_loader_set_augment(a, &aug));
    TU_OK(syn_loader_set_augment(b, &aug));
    for (int k = 0; k < 2 * 7; k++) {
        syn_batch ba, bb;
        TU_OK(syn_loader_next(a, &ba));
        TU_OK(syn_loader_next(b, &bb));
        ck_assert_int_eq(ba.n, bb.n);
        if (!ba.n) continue;
        ck_assert(memcmp(ba.labels, bb.labels, (size_t)ba.n * sizeof(int32_t)) == 0);
        ck_assert(memcmp(ba.x, bb.x, (size_t)(ba.n * ds->dim) * sizeof(float)) == 0);
    }

    /* The choices are keyed by (seed, epoch, row): another batch size and no
     * shuffling give each row the same transform; epochs and seeds differ. */
    int fa[2 * 23], fc[2 * 23], fd[23];
    TU_OK(syn_loader_create(ds, 23, false, seed, false, &c));
    TU_OK(syn_loader_create(ds, 3, true, seed2, false, &d));
    TU_OK(syn_loader_set_augment(c, &aug));
    TU_OK(syn_loader_set_augment(d, &aug));
    syn_loader_free(a);
    a = NULL;
    TU_OK(syn_loader_create(ds, 4, true, seed, false, &a));
    TU_OK(syn_loader_set_augment(a, &aug));
    run_epochs(a, ds, 2, 2, true, fa);
    run_epochs(c, ds, 2, 2, true, fc);
    run_epochs(d, ds, 1, 2, true, fd);
    ck_assert(memcmp(fa, fc, sizeof fa) == 0);
    /* 23 rows with 50 equally likely transforms: a clash has chance 50^-23. */
    ck_assert(memcmp(fa, fa + 23, 23 * sizeof(int)) != 0);
    ck_assert(memcmp(fa, fd, 23 * sizeof(int)) != 0);
    syn_loader_free(a);
    syn_loader_free(b);
    syn_loader_free(c);
    syn_loader_free(d);
    syn_dataset_free(ds);
}
END_TEST

/* Prefetch gives the same batches, bit for bit, as the plain loader: across
 * epochs, with shuffling, drop_last and partial batches, with augmentation
 * changed and prefetch switched off and on in the middle of an epoch. Each
 * batch stays intact until the next call while the worker fills the other. */
START_TEST(loader_prefetch_same_batches) {
    syn_dataset *ds = make_images(29, 2, 5, 6, 0.0f, 1.0f, 31);
    static const struct {
        int64_t batch;
        bool shuffle, drop_last, augment;
    } cs[] = {{4, true, false, true}, {4, true, true, false}, {29, false, false, true}, {1, true, false, false},
              {7, false, true, true}};
    syn_augment aug = {2, true}, flip_only = {0, true};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        syn_loader *plain = NULL, *pre = NULL;
        TU_OK(syn_loader_create(ds, cs[c].batch, cs[c].shuffle, 77 + c, cs[c].drop_last, &plain));
        TU_OK(syn_loader_create(ds, cs[c].batch, cs[c].shuffle, 77 + c, cs[c].drop_last, &pre));
        TU_OK(syn_loader_set_prefetch(pre, true));
        TU_OK(syn_loader_set_prefetch(pre, true)); /* twice: no second worker */
        if (cs[c].augment) {
            TU_OK(syn_loader_set_augment(plain, &aug));
            TU_OK(syn_loader_set_augment(pre, &aug));
        }
        float *held = malloc((size_t)(cs[c].batch * ds->dim) * sizeof(float));
        int64_t calls = 4 * (syn_loader_batches(plain) + 1);
        for (int64_t k = 0; k < calls; k++) {
            if (k == calls / 3 && cs[c].augment) { /* takes effect from the next batch on, both ways */
                TU_OK(syn_loader_set_augment(plain, &flip_only));
                TU_OK(syn_loader_set_augment(pre, &flip_only));
            }
            if (k == calls / 2) TU_OK(syn_loader_set_prefetch(pre, false));
            if (k == calls / 2 + 3) TU_OK(syn_loader_set_prefetch(pre, true));
            syn_batch a, b;
            TU_OK(syn_loader_next(plain, &a));
            TU_OK(syn_loader_next(pre, &b));
            ck_assert_msg(a.n == b.n, "case %zu call %lld: %lld rows, prefetch %lld", c, (long long)k, (long long)a.n,
                          (long long)b.n);
            if (!a.n) continue;
            ck_assert(memcmp(a.labels, b.labels, (size_t)a.n * sizeof(int32_t)) == 0);
            ck_assert_msg(memcmp(a.x, b.x, (size_t)(a.n * ds->dim) * sizeof(float)) == 0, "case %zu call %lld", c,
                          (long long)k);
            memcpy(held, b.x, (size_t)(b.n * ds->dim) * sizeof(float));
            struct timespec nap = {0, 200000}; /* the worker fills the other slot meanwhile */
            nanosleep(&nap, NULL);
            ck_assert(memcmp(held, b.x, (size_t)(b.n * ds->dim) * sizeof(float)) == 0);
        }
        free(held);
        syn_loader_free(plain);
        syn_loader_free(pre); /* with a fill in flight */
    }
    ck_assert_int_eq(syn_loader_set_prefetch(NULL, true), SYN_ERR_ARG);
    syn_dataset_free(ds);
}
END_TEST

START_TEST(augment_errors) {
    syn_dataset *ds = make_images(6, 2, 3, 3, 0, 1, 10);
    syn_loader *l = NULL;
    TU_OK(syn_loader_create(ds, 2, false, 0, false, &l));
    syn_augment aug = {1, true}, bad = {-1, false};
    EXPECT_ERR(syn_loader_set_augment(l, &bad), SYN_ERR_ARG, "pad_crop -1");
    EXPECT_ERR(syn_loader_set_augment(NULL, &aug), SYN_ERR_ARG, "NULL");
    ds->sample_shape = syn_shape2(2, 9);
    EXPECT_ERR(syn_loader_set_augment(l, &aug), SYN_ERR_SHAPE, "(C, H, W)");
    ds->sample_shape = syn_shape1(18);
    EXPECT_ERR(syn_loader_set_augment(l, &aug), SYN_ERR_SHAPE, "(C, H, W)");
    ds->sample_shape = syn_shape3(2, 3, 4); /* 24 values, but rows hold 18 */
    EXPECT_ERR(syn_loader_set_augment(l, &aug), SYN_ERR_SHAPE, "18 values");
    syn_loader_free(l);
    syn_dataset_free(ds);
}
END_TEST

/* ---- CIFAR-10 ---- */

#define REC 3073

/* Writes `n` records with labels lab[] and random pixels; returns the bytes
 * (caller frees) so that the test can compare. */
static unsigned char *write_cifar(const char *name, int n, const unsigned char *lab, tu_rng *r) {
    unsigned char *buf = malloc((size_t)n * REC + 1);
    for (int i = 0; i < n; i++) {
        buf[(size_t)i * REC] = lab[i];
        for (int k = 1; k < REC; k++) buf[(size_t)i * REC + k] = (unsigned char)tu_next(r);
    }
    write_file(name, buf, (size_t)n * REC);
    return buf;
}

/* ds rows [row0, row0 + n) hold the n records of buf exactly. */
static void check_records(const syn_dataset *ds, int64_t row0, const unsigned char *buf, int n) {
    for (int i = 0; i < n; i++) {
        const unsigned char *rec = buf + (size_t)i * REC;
        ck_assert_int_eq(ds->labels[row0 + i], rec[0]);
        const float *x = ds->x + (row0 + i) * 3072;
        for (int k = 0; k < 3072; k++) ck_assert_float_eq(x[k], (float)rec[1 + k] * (1.0f / 255.0f));
    }
}

START_TEST(cifar_roundtrip) {
    tu_rng r = tu_rng_make(11);
    static const int sizes[5] = {5, 3, 1, 2, 4};
    unsigned char lab[5], *bytes[5], *test;
    char name[32];
    for (int f = 0; f < 5; f++) {
        for (int i = 0; i < sizes[f]; i++) lab[i] = (unsigned char)(tu_next(&r) % 10);
        lab[0] = (unsigned char)(f == 0 ? 0 : 9);
        snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        bytes[f] = write_cifar(name, sizes[f], lab, &r);
    }
    /* Plane order and scaling: record 1 of the test file is a pure colour
     * with R = 255, G = 0, B = 128 everywhere, and one marked pixel. */
    unsigned char tl[3] = {3, 7, 1};
    test = write_cifar("test_batch.bin", 3, tl, &r);
    unsigned char *rec = test + REC;
    memset(rec + 1, 255, 1024), memset(rec + 1 + 1024, 0, 1024), memset(rec + 1 + 2048, 128, 1024);
    rec[1 + 2048 + 5 * 32 + 7] = 1; /* B plane, row 5, column 7 */
    write_file("test_batch.bin", test, 3 * REC);

    syn_dataset *ds = NULL;
    TU_OK(syn_dataset_load_cifar10(g_dir, true, &ds));
    ck_assert_int_eq(ds->n, 15);
    ck_assert_int_eq(ds->dim, 3072);
    ck_assert_int_eq(ds->num_classes, 10);
    syn_shape want = syn_shape3(3, 32, 32);
    ck_assert(syn_shape_equal(&ds->sample_shape, &want));
    ck_assert_ptr_null(ds->targets);
    for (int f = 0, row = 0; f < 5; row += sizes[f], f++) check_records(ds, row, bytes[f], sizes[f]);
    ck_assert_int_eq(ds->labels[0], 0);
    ck_assert_int_eq(ds->labels[11], 9); /* first record of data_batch_5.bin */
    syn_dataset_free(ds);

    TU_OK(syn_dataset_load_cifar10(g_dir, false, &ds));
    ck_assert_int_eq(ds->n, 3);
    check_records(ds, 0, test, 3);
    const float *x = ds->x + 3072; /* (C, H, W): x[c * 1024 + y * 32 + x] */
    ck_assert_float_eq(x[0], 1.0f);
    ck_assert_float_eq(x[1023], 1.0f);
    ck_assert_float_eq(x[1024], 0.0f);
    ck_assert_float_eq(x[2047], 0.0f);
    ck_assert_float_eq_tol(x[2048], 128.0f / 255.0f, 1e-7f);
    ck_assert_float_eq_tol(x[2048 + 5 * 32 + 7], 1.0f / 255.0f, 1e-7f);
    ck_assert_float_eq_tol(x[2048 + 7 * 32 + 5], 128.0f / 255.0f, 1e-7f);
    syn_dataset_free(ds);

    /* One file by path; train is then irrelevant. */
    TU_OK(syn_dataset_load_cifar10(tpath("data_batch_2.bin"), true, &ds));
    ck_assert_int_eq(ds->n, 3);
    check_records(ds, 0, bytes[1], 3);
    syn_dataset_free(ds);

    /* The loader's augmentation runs on it. */
    TU_OK(syn_dataset_load_cifar10(g_dir, true, &ds));
    syn_loader *l = NULL;
    TU_OK(syn_loader_create(ds, 4, true, 1, false, &l));
    syn_augment aug = {4, true};
    TU_OK(syn_loader_set_augment(l, &aug));
    syn_batch b;
    TU_OK(syn_loader_next(l, &b));
    ck_assert_int_eq(b.n, 4);
    syn_loader_free(l);
    syn_dataset_free(ds);

    /* A missing batch file is an I/O error naming it. */
    unlink(tpath("data_batch_5.bin"));
    ds = (syn_dataset *)&r; /* poisoned: must come back NULL */
    EXPECT_ERR(syn_dataset_load_cifar10(g_dir, true, &ds), SYN_ERR_IO, "data_batch_5.bin");
    ck_assert_ptr_null(ds);
    unlink(tpath("test_batch.bin"));
    EXPECT_ERR(syn_dataset_load_cifar10(g_dir, false, &ds), SYN_ERR_IO, "test_batch.bin");
    for (int f = 0; f < 5; f++) free(bytes[f]);
    free(test);
}
END_TEST

START_TEST(cifar_subdir) {
    /* The tarball unpacks to cifar-10-batches-bin/: the parent is accepted. */
    ck_assert_int_eq(mkdir(tpath("cifar-10-batches-bin"), 0700), 0);
    tu_rng r = tu_rng_make(12);
    unsigned char lab[2] = {4, 2};
    unsigned char *b = write_cifar("cifar-10-batches-bin/test_batch.bin", 2, lab, &r);
    syn_dataset *ds = NULL;
    TU_OK(syn_dataset_load_cifar10(g_dir, false, &ds));
    ck_assert_int_eq(ds->n, 2);
    check_records(ds, 0, b, 2);
    syn_dataset_free(ds);
    free(b);
}
END_TEST

START_TEST(cifar_errors) {
    tu_rng r = tu_rng_make(13);
    syn_dataset *ds = (syn_dataset *)&r;
    unsigned char lab[3] = {1, 10, 2};
    unsigned char *b = write_cifar("badlabel.bin", 3, lab, &r);
    EXPECT_ERR(syn_dataset_load_cifar10(tpath("badlabel.bin"), true, &ds), SYN_ERR_FORMAT, "badlabel.bin");
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "label 10"));
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "record 1"));
    ck_assert_ptr_null(ds);

    write_file("trunc.bin", b, 2 * REC - 5);
    EXPECT_ERR(syn_dataset_load_cifar10(tpath("trunc.bin"), true, &ds), SYN_ERR_FORMAT, "trunc.bin");
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "6141"));
    write_file("empty.bin", b, 0);
    EXPECT_ERR(syn_dataset_load_cifar10(tpath("empty.bin"), true, &ds), SYN_ERR_FORMAT, "empty.bin");

    /* A truncated batch inside a directory is named too. */
    b[REC] = 5;
    for (int f = 1; f <= 5; f++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", f);
        write_file(name, b, f == 3 ? REC + 100 : 2 * REC);
    }
    EXPECT_ERR(syn_dataset_load_cifar10(g_dir, true, &ds), SYN_ERR_FORMAT, "data_batch_3.bin");

    EXPECT_ERR(syn_dataset_load_cifar10(tpath("no-such-dir"), true, &ds), SYN_ERR_IO, "no-such-dir");
    EXPECT_ERR(syn_dataset_load_cifar10(tpath("no-such-dir"), false, &ds), SYN_ERR_IO, "no-such-dir");
    ck_assert_int_eq(mkdir(tpath("empty-dir"), 0700), 0);
    EXPECT_ERR(syn_dataset_load_cifar10(tpath("empty-dir"), true, &ds), SYN_ERR_IO, "empty-dir/data_batch_1.bin");
    EXPECT_ERR(syn_dataset_load_cifar10(NULL, true, &ds), SYN_ERR_ARG, "NULL");
    EXPECT_ERR(syn_dataset_load_cifar10(g_dir, true, NULL), SYN_ERR_ARG, "NULL");
    ck_assert_ptr_null(ds);
    free(b);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("data_aug");
    TCase *n = tcase_create("normalize");
    tcase_add_test(n, normalize_channels);
    tcase_add_test(n, normalize_given);
    suite_add_tcase(s, n);
    TCase *a = tcase_create("augment");
    tcase_add_test(a, augment_off);
    tcase_add_test(a, augment_flip);
    tcase_add_test(a, augment_crop);
    tcase_add_test(a, augment_reproducible);
    tcase_add_test(a, augment_errors);
    tcase_add_test(a, loader_prefetch_same_batches);
    suite_add_tcase(s, a);
    TCase *c = tcase_create("cifar10");
    tcase_add_checked_fixture(c, dir_setup, dir_teardown);
    tcase_set_timeout(c, 120);
    tcase_add_test(c, cifar_roundtrip);
    tcase_add_test(c, cifar_subdir);
    tcase_add_test(c, cifar_errors);
    suite_add_tcase(s, c);
    return s;
}

int main(void) { return tu_run(suite()); }
