/* `synapse predict`: a tiny MLP trained through the CLI on data the tests
 * write (a CSV table; a Fashion-MNIST-shaped IDX set), then predict on the
 * held-out inputs: its classes give exactly the accuracy `synapse eval`
 * reports (and its regression values eval's test loss), so weights and the
 * training set's standardisation are applied as train applied them; the same
 * image as IDX, gzip'd IDX and PNG predicts the same; text and JSON formats,
 * --index and --top; bad inputs exit 1 with a message naming the fault. The
 * checkpoint records the statistics, shapes and columns, so predict needs no
 * training data; older checkpoints recompute them from it. A model file
 * longer than a checkpoint records is refused by train, eval and predict. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "testutil.h"




/* `synapse train FLAGS TRAIN_ARGS --save ck`, then `synapse eval mlp ck FLAGS`:
 * the JSON figure `key` of eval's last line. */
static double train_then_eval(const char *bin, const char *flags, const char *train_args, const char *ck,
                              const char *key) {
    free(tu_run_expect(0, "%s train %s %s --save %s --quiet 2>&1", bin, flags, train_args, ck));
    char *ev = tu_run_expect(0, "%s eval mlp %s %s --quiet 2>&1", bin, ck, flags);
    double v = tu_json_number(tu_last_line(ev), key);
    free(ev);
    return v;
}

/* predict's JSON lines: class (or value) and probability per index. */
typedef struct {
    int64_t n;
    int cls[512];
    double prob[512], value[512];
} preds;

static void parse_json_lines(const char *out, preds *p, bool classify) {
    memset(p, 0, sizeof *p);
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "{\"index\":", 9) != 0) continue;
        long long i = (long long)tu_json_number(line, "index");
        ck_assert_int_eq(i, p->n); /* in order, every input */
        ck_assert_int_lt(p->n, 512);
        if (classify) {
            p->cls[p->n] = (int)tu_json_number(line, "class");
            p->prob[p->n] = tu_json_number(line, "probability");
        } else {
            p->value[p->n] = tu_json_number(line, "value");
        }
        p->n++;
    }
}

/* ---- CSV: classification and regression ----------------------------------------- */

/* 300 rows, features a..d; y: 3 classes by a linear score, or the score itself. */
static const char *write_csv(const char *name, bool regression) {
    const char *csv = tu_path(name);
    FILE *f = fopen(csv, "w");
    ck_assert_ptr_nonnull(f);
    fputs("a,b,c,d,y\n", f);
    tu_rng r = tu_rng_make(regression ? 11 : 12);
    for (int i = 0; i < 300; i++) {
        float x[4];
        tu_fill(&r, x, 4, -1.0f, 1.0f);
        x[3] = 3.0f * x[3] + 5.0f; /* a column far from standard, so standardisation matters */
        float s = x[0] - x[1] + 0.5f * x[2] + 0.1f * (x[3] - 5.0f);
        if (regression) fprintf(f, "%.5f,%.5f,%.5f,%.5f,%.5f\n", x[0], x[1], x[2], x[3], 2.0f * s + 1.0f);
        else fprintf(f, "%.5f,%.5f,%.5f,%.5f,%d\n", x[0], x[1], x[2], x[3], s < -0.3f ? 0 : s < 0.3f ? 1 : 2);
    }
    ck_assert_int_eq(fclose(f), 0);
    return csv;
}

/* The CSV rows eval tests on (train's split with the default seed and
 * fraction), as indices into the file's rows. */
static int64_t test_rows(const char *csv, bool regression, int64_t *rows, float *labels) {
    syn_csv_opts co = {"y", regression, 0};
    syn_dataset *all, *train, *test;
    TU_OK(syn_dataset_load_csv(csv, &co, &all));
    TU_OK(syn_dataset_split(all, 0.2f, 1, &train, &test));
    for (int64_t t = 0; t < test->n; t++) {
        rows[t] = -1;
        for (int64_t i = 0; i < all->n && rows[t] < 0; i++)
            if (memcmp(all->x + i * all->dim, test->x + t * test->dim, (size_t)all->dim * sizeof(float)) == 0)
                rows[t] = i;
        ck_assert_int_ge(rows[t], 0);
        labels[t] = regression ? test->targets[t] : (float)test->labels[t];
    }
    int64_t n = test->n;
    syn_dataset_free(all);
    syn_dataset_free(train);
    syn_dataset_free(test);
    return n;
}

START_TEST(csv_classes_match_eval_accuracy) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_predict")) return;
    const char *csv = write_csv("t.csv", false), *ck = tu_path("m.ckpt");
    char flags[1024];
    snprintf(flags, sizeof flags, "--csv %s --label y --hidden 16 --activation tanh --batch-size 32", csv);
    double acc = train_then_eval(bin, flags, "--epochs 15 --lr 0.01", ck, "test_accuracy");
    ck_assert_msg(acc > 0.6, "the model did not learn (accuracy %g): the comparison below would say little", acc);

    /* the whole file, label column included (ignored), in JSON */
    char *out = tu_run_expect(0, "%s predict mlp %s %s %s --json --top 2 --quiet", bin, ck, csv, flags);
    static preds p;
    parse_json_lines(out, &p, true);
    ck_assert_int_eq(p.n, 300);
    ck_assert_ptr_nonnull(strstr(out, "\"top\":[{\"class\":"));
    free(out);
    int64_t rows[300];
    float labels[300];
    int64_t nt = test_rows(csv, false, rows, labels), right = 0;
    for (int64_t t = 0; t < nt; t++) right += p.cls[rows[t]] == (int)labels[t];
    ck_assert_msg(fabs((double)right / (double)nt - acc) < 6e-5, "predict: %lld of %lld test rows right; eval: %g",
                  (long long)right, (long long)nt, acc);
    for (int i = 0; i < 300; i++) ck_assert(p.prob[i] >= 1.0 / 3.0 - 1e-6 && p.prob[i] <= 1.0);
    /* saliency maps are for images */
    out = tu_run_expect(1, "%s predict mlp %s %s %s --saliency %s 2>&1", bin, ck, csv, flags, tu_path("s.png"));
    ck_assert_msg(strstr(out, "--saliency maps a classifier's image inputs; this model takes table rows"), "%s", out);
    free(out);

    /* the features alone, one row by --index, as text */
    const char *feat = tu_path("features.csv");
    FILE *f = fopen(csv, "r"), *g = fopen(feat, "w");
    ck_assert(f && g);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        *strrchr(line, ',') = '\0';
        fprintf(g, "%s\n", line);
    }
    fclose(f);
    ck_assert_int_eq(fclose(g), 0);
    out = tu_run_expect(0, "%s predict mlp %s %s %s --index 7 --top 3 2>/dev/null", bin, ck, feat, flags);
    long long idx;
    int cls;
    double prob;
    ck_assert_msg(sscanf(out, "%lld: class %d (%lf)  top: ", &idx, &cls, &prob) == 3, "%s", out);
    ck_assert_int_eq(idx, 7);
    ck_assert_int_eq(cls, p.cls[7]);
    ck_assert_msg(fabs(prob - p.prob[7]) < 1e-4, "%s", out);
    ck_assert_int_eq((int)(strchr(out, '\n') - out), (int)strlen(out) - 1); /* one line */
    free(out);

    /* bad inputs: exit 1, a message naming the fault */
    static const struct {
        const char *text, *message;
    } bad_inputs[] = {
        {"a,b,c,y\n0.1,0.2,0.3,1\n", "3 feature columns; the model takes 4"},
        {"a,c,b,d\n0.1,0.2,0.3,1\n", "column 2 is 'c', but the training CSV's feature there is 'b'"},
        {"a,b,c,d\n0.1,0.2,x,1\n", "bad.csv:2: column 'c' (field 3): not a number: 'x'"},
    };
    const char *bad = tu_path("bad.csv");
    for (size_t k = 0; k < sizeof bad_inputs / sizeof bad_inputs[0]; k++) {
        f = fopen(bad, "w");
        fputs(bad_inputs[k].text, f);
        fclose(f);
        out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, ck, bad, flags);
        ck_assert_msg(strstr(out, bad_inputs[k].message), "%s", out);
        free(out);
    }
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, ck, tu_path("missing.csv"), flags);
    ck_assert_msg(strstr(out, "missing.csv: cannot open"), "%s", out);
    free(out);
    out = tu_run_expect(1, "%s predict mlp %s %s %s --index 300 2>&1", bin, ck, csv, flags);
    ck_assert_msg(strstr(out, "--index 300, but it holds 300 inputs"), "%s", out);
    free(out);
    out = tu_run_expect(1, "%s predict mlp %s %s --csv %s --label y --hidden 8 2>&1", bin, ck, csv, csv);
    ck_assert_msg(strstr(out, "linear0.weight"), "%s", out); /* another MLP than the checkpoint's */
    free(out);
    out = tu_run_expect(2, "%s predict mlp %s %s 2>&1", bin, ck, flags);
    ck_assert_msg(strstr(out, "predict wants MODEL"), "%s", out);
    free(out);
    out = tu_run_expect(2, "%s predict mlp %s %s %s --epochs 2 2>&1", bin, ck, csv, flags);
    ck_assert_msg(strstr(out, "--epochs is a train option, not a predict one"), "%s", out);
    free(out);
}
END_TEST

START_TEST(csv_regression_matches_eval_loss) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_predict")) return;
    const char *csv = write_csv("r.csv", true), *ck = tu_path("r.ckpt");
    char flags[1024];
    snprintf(flags, sizeof flags, "--csv %s --label y --regression --hidden 8 --batch-size 32", csv);
    double mse = train_then_eval(bin, flags, "--epochs 5 --lr 0.01", ck, "test_loss");
    char *out = tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet --batch-size 7", bin, ck, csv, flags);
    static preds p;
    parse_json_lines(out, &p, false);
    ck_assert_int_eq(p.n, 300);
    free(out);
    int64_t rows[300];
    float targets[300];
    int64_t nt = test_rows(csv, true, rows, targets);
    double sum = 0;
    for (int64_t t = 0; t < nt; t++) sum += (p.value[rows[t]] - targets[t]) * (p.value[rows[t]] - targets[t]);
    ck_assert_msg(fabs(sum / (double)nt - mse) <= 1e-4 * mse, "predict's MSE %g, eval's %g", sum / (double)nt, mse);
}
END_TEST

/* A copy of checkpoint src as this library wrote it before checkpoints
 * recorded the inputs' statistics and the data's shapes: its tensors and run
 * info only. std non-NULL: with the statistics instead, "input.std" given. */
static void rewrite_ckpt(const char *src, const char *dst, const char *std) {
    static const char *const keys[] = {"format", "synapse.version", "synapse.content", "model", "epoch", "step", "seed",
                                       "rng_counter", "best_loss", "stale_epochs", "optim.kind", "optim.config",
                                       "optim.steps"};
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(src, &f));
    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *v = syn_safetensors_metadata(f, keys[k]);
        if (v) TU_OK(syn_safetensors_set_metadata(w, keys[k], v));
    }
    if (std) {
        TU_OK(syn_safetensors_set_metadata(w, "input.mean", syn_safetensors_metadata(f, "input.mean")));
        TU_OK(syn_safetensors_set_metadata(w, "input.std", std));
    }
    for (int i = 0; i < syn_safetensors_count(f); i++) {
        const char *name;
        syn_dtype dt;
        syn_shape sh;
        const void *data;
        TU_OK(syn_safetensors_get(f, i, &name, &dt, &sh, &data, NULL));
        TU_OK(syn_safetensors_add(w, name, dt, sh, data));
    }
    TU_OK(syn_safetensors_write(w, dst));
    syn_safetensors_writer_free(w);
    syn_safetensors_close(f);
}

static void copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb"), *g = fopen(to, "wb");
    ck_assert(f && g);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, g), n);
    fclose(f);
    ck_assert_int_eq(fclose(g), 0);
}

/* The checkpoint records the standardisation, the shapes and the training
 * CSV's columns: predict reproduces eval's accuracy with the training file
 * gone, reads inputs with quoted fields holding commas (BOM, CRLF, quoted
 * names and numbers, a text label column); an older checkpoint still works
 * from the training data (and says so when it is missing); a damaged
 * statistics entry is an error naming it. */
START_TEST(csv_without_training_data) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_predict")) return;
    const char *csv = write_csv("d.csv", false), *in = tu_path("inputs.csv"), *ck = tu_path("d.ckpt");
    copy_file(csv, in);
    char flags[1024];
    snprintf(flags, sizeof flags, "--csv %s --label y --hidden 16 --activation tanh --batch-size 32", csv);
    double acc = train_then_eval(bin, flags, "--epochs 15 --lr 0.01", ck, "test_accuracy");
    const char *old = tu_path("old.ckpt"), *bad = tu_path("bad.ckpt");
    rewrite_ckpt(ck, old, NULL);
    char *ev =
        tu_run_expect(0, "%s eval mlp %s %s --quiet 2>&1", bin, old, flags); /* recomputed: the same statistics */
    ck_assert_double_eq(tu_json_number(tu_last_line(ev), "test_accuracy"), acc);
    free(ev);
    char *with = tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet", bin, ck, in, flags);
    char *with_old = tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet", bin, old, in, flags);
    ck_assert_str_eq(with_old, with);
    free(with_old);

    /* the training file gone */
    ck_assert_int_eq(unlink(csv), 0);
    char *out = tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet", bin, ck, in, flags);
    ck_assert_str_eq(out, with);
    static preds p;
    parse_json_lines(out, &p, true);
    free(out);
    ck_assert_int_eq(p.n, 300);
    int64_t rows[300];
    float labels[300];
    int64_t nt = test_rows(in, false, rows, labels), right = 0;
    for (int64_t t = 0; t < nt; t++) right += p.cls[rows[t]] == (int)labels[t];
    ck_assert_msg(fabs((double)right / (double)nt - acc) < 6e-5, "predict: %lld of %lld test rows right; eval: %g",
                  (long long)right, (long long)nt, acc);
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, old, in, flags);
    ck_assert_msg(strstr(out, "d.csv: cannot open"), "%s", out);
    free(out);
    out = tu_run_expect(1, "%s eval mlp %s %s 2>&1", bin, ck, flags); /* eval still needs the test rows */
    ck_assert_msg(strstr(out, "d.csv: cannot open"), "%s", out);
    free(out);

    /* quoted fields holding the delimiter, quoted names and numbers, BOM, CRLF */
    const char *quoted = tu_path("quoted.csv");
    FILE *f = fopen(in, "r"), *g = fopen(quoted, "w");
    ck_assert(f && g);
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fputs("\xEF\xBB\xBF\"a\",\"b\", c ,d,\"y\"\r\n", g);
    while (fgets(line, sizeof line, f)) {
        char *fld[5], *save = NULL;
        fld[0] = strtok_r(line, ",\n", &save);
        for (int k = 1; k < 5; k++) fld[k] = strtok_r(NULL, ",\n", &save);
        fprintf(g, "%s,\"%s\",%s , %s,\"class, %s\"\r\n", fld[0], fld[1], fld[2], fld[3], fld[4]);
    }
    fclose(f);
    ck_assert_int_eq(fclose(g), 0);
    out = tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet", bin, ck, quoted, flags);
    ck_assert_str_eq(out, with);
    free(out);
    free(with);

    /* a damaged statistics entry */
    rewrite_ckpt(ck, bad, "1,2,oops,4");
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, bad, in, flags);
    ck_assert_msg(strstr(out, "bad.ckpt") && strstr(out, "'input.std': value 2, 'oops'"), "%s", out);
    free(out);
}
END_TEST

/* ---- images: a Fashion-MNIST-shaped set ---------------------------------------------- */

START_TEST(idx_png_classes_match_eval_accuracy) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_predict")) return;
    enum { NTR = 300, NTE = 80 };
    static uint8_t tr[NTR * 784], te[NTE * 784], ltr[NTR], lte[NTE];
    tu_write_fmnist_like(tr, ltr, NTR, te, lte, NTE, 21, false);
    tu_write_idx(tu_path("test.idx.gz"), te, NTE, 3, true);
    char ck[512]; /* kept: tu_path's buffers are a ring */
    snprintf(ck, sizeof ck, "%s", tu_path("img.ckpt"));
    char flags[1024];
    snprintf(flags, sizeof flags, "--data-dir %s --hidden 24 --batch-size 25", tu_dir);
    double acc = train_then_eval(bin, flags, "--epochs 4", ck, "test_accuracy");
    ck_assert_msg(acc > 0.5, "the model did not learn (accuracy %g)", acc);

    /* every test image: the classes give eval's accuracy; gzip'd the same */
    char *out =
        tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet", bin, ck, tu_path("t10k-images-idx3-ubyte"), flags);
    static preds p, pz;
    parse_json_lines(out, &p, true);
    ck_assert_int_eq(p.n, NTE);
    int right = 0;
    for (int i = 0; i < NTE; i++) right += p.cls[i] == lte[i];
    ck_assert_msg(fabs((double)right / NTE - acc) < 6e-5, "predict: %d of %d right; eval: %g", right, NTE, acc);
    char *outz = tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet", bin, ck, tu_path("test.idx.gz"), flags);
    ck_assert_str_eq(outz, out);
    free(outz);
    /* without the training images: the checkpoint's statistics; eval needs the test set only */
    ck_assert_int_eq(rename(tu_path("train-images-idx3-ubyte"), tu_path("away")), 0);
    outz = tu_run_expect(0, "%s predict mlp %s %s %s --json --quiet", bin, ck, tu_path("test.idx.gz"), flags);
    ck_assert_str_eq(outz, out);
    free(outz);
    char *ev = tu_run_expect(0, "%s eval mlp %s %s --quiet 2>&1", bin, ck, flags);
    ck_assert_double_eq(tu_json_number(tu_last_line(ev), "test_accuracy"), acc);
    free(ev);
    ck_assert_int_eq(rename(tu_path("away"), tu_path("train-images-idx3-ubyte")), 0);
    free(out);

    /* image 5 as a PNG: the same class and probability as from the IDX file */
    tu_write_png(tu_path("five.png"), te + 5 * 784, 28, 28, false);
    out = tu_run_expect(0, "%s predict mlp %s %s %s --json 2>&1", bin, ck, tu_path("five.png"), flags);
    parse_json_lines(out, &pz, true);
    ck_assert_int_eq(pz.n, 1);
    ck_assert_int_eq(pz.cls[0], p.cls[5]);
    ck_assert_msg(fabs(pz.prob[0] - p.prob[5]) < 1e-5, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "1 input from"));
    free(out);
    /* the classes by Fashion-MNIST's names, which the checkpoint records */
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    out = tu_run_expect(0, "%s predict mlp %s %s %s --top 1 --quiet", bin, ck, tu_path("five.png"), flags);
    char want[64];
    snprintf(want, sizeof want, "0: class %d %s (", p.cls[5], names[p.cls[5]]);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "want '%s...': %s", want, out);
    free(out);

    /* bad inputs */
    static uint8_t rgb[28 * 28 * 3], small[20 * 20];
    tu_write_png(tu_path("rgb.png"), rgb, 28, 28, true);
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, ck, tu_path("rgb.png"), flags);
    ck_assert_msg(strstr(out, "images of (3,28,28) (C,H,W); the model takes (1,28,28)"), "%s", out);
    free(out);
    tu_write_png(tu_path("small.png"), small, 20, 20, false);
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, ck, tu_path("small.png"), flags);
    ck_assert_msg(strstr(out, "images of (1,20,20) (C,H,W); the model takes (1,28,28)"), "%s", out);
    free(out);
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, ck, tu_path("t10k-labels-idx1-ubyte"), flags);
    ck_assert_msg(strstr(out, "t10k-labels-idx1-ubyte: a 1-dim IDX file (magic 0x00000801: labels?), not images"), "%s",
                  out);
    free(out);
    FILE *f = fopen(tu_path("cut.idx"), "wb");
    uint8_t h[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    fwrite(h, 1, 16, f);
    fwrite(te, 1, 1000, f);
    fclose(f);
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, ck, tu_path("cut.idx"), flags);
    ck_assert_msg(strstr(out, "cut.idx: truncated: expected 1568 pixel bytes, got 1000"), "%s", out);
    free(out);
    f = fopen(tu_path("x.csv"), "w");
    fputs("a,b\n1,2\n", f);
    fclose(f);
    out = tu_run_expect(1, "%s predict mlp %s %s %s 2>&1", bin, ck, tu_path("x.csv"), flags);
    ck_assert_msg(strstr(out, "a CSV table, but the model was trained on images"), "%s", out);
    free(out);
}
END_TEST

/* A small MLP model file for write_csv's table, padded with comment lines to
 * exactly `size` bytes. */
static void write_model(const char *path, size_t size) {
    static const char text[] = "[net]\ninput = 4\nclasses = 3\n\n[dense]\nunits = 8\nactivation = tanh\n\n"
                               "[dense]\nunits = 3\n";
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    for (size_t n = sizeof text - 1; n < size;) { /* lines of at most 64 bytes: "#xxx...\n" */
        size_t line = size - n < 64 ? size - n : 64;
        if (line > 1) fprintf(f, "#%.*s", (int)(line - 2), "---------------------------------------------------------------");
        fputc('\n', f);
        n += line;
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* train's checkpoint records the model file's text whole, compared on eval
 * and predict: 4095 bytes fit; one more is an error naming the file, its
 * size and the limit (train, eval, predict alike), not a cut record. */
START_TEST(model_file_too_long) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_predict")) return;
    const char *csv = write_csv("t.csv", false), *ck = tu_path("m.ckpt"), *fits = tu_path("fits.cfg"),
               *big = tu_path("big.cfg");
    write_model(fits, 4095);
    write_model(big, 4096);
    char flags[1024];
    snprintf(flags, sizeof flags, "--csv %s --label y --batch-size 32", csv);
    free(tu_run_expect(0, "%s train %s %s --epochs 1 --save %s --quiet 2>&1", bin, fits, flags, ck));
    char *out = tu_run_expect(0, "%s eval %s %s %s --quiet 2>&1", bin, fits, ck, flags);
    ck_assert_ptr_nonnull(strstr(tu_last_line(out), "\"test_accuracy\":"));
    free(out);
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(ck, &f));
    ck_assert_uint_eq(strlen(syn_safetensors_metadata(f, "model")), 4095);
    syn_safetensors_close(f);
    free(tu_run_expect(0, "%s predict %s %s %s %s --index 0 --quiet", bin, fits, ck, csv, flags));

    static const char *const cmds[] = {"train %s %s --epochs 1", "eval %s %s", "predict %s %s x.csv"};
    for (size_t k = 0; k < sizeof cmds / sizeof *cmds; k++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, cmds[k], big, k ? ck : "--quiet");
        out = tu_run_expect(1, "%s %s %s 2>&1", bin, cmd, flags);
        ck_assert_msg(strstr(out, "big.cfg: 4096 bytes; a checkpoint records the model file's text, at most 4095 bytes"),
                      "%s: %s", cmd, out);
        free(out);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("predict");
    TCase *t = tcase_create("predict");
    tcase_add_checked_fixture(t, tu_dir_setup, tu_dir_teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, csv_classes_match_eval_accuracy);
    tcase_add_test(t, csv_regression_matches_eval_loss);
    tcase_add_test(t, csv_without_training_data);
    tcase_add_test(t, idx_png_classes_match_eval_accuracy);
    tcase_add_test(t, model_file_too_long);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(suite()); }
