/* The training loop (syn_fit, syn_evaluate) and the CLI: convergence on XOR
 * and on small synthetic CSV tables, bit-identical reruns, early stopping,
 * bad configurations and data, and the `synapse` binary's output and codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

/* ---- models ------------------------------------------------------------------ */

typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_optim *o;
    syn_model m;
} net;

typedef struct {
    int64_t batch, dim, out;
    int64_t hidden[4];
    int n_hidden;
    syn_activation act;
    float dropout;
    bool regression; /* mse on f32 targets (batch, out); else ce on i32 labels */
    bool keep_logits;
    bool inference;
    uint64_t seed;
    syn_optim_kind optim;
    float lr;
} net_spec;

static net_spec spec_default(int64_t dim, int64_t out, bool regression) {
    net_spec s = {32, dim, out, {32}, 1, SYN_ACT_RELU, 0.0f, regression, true, false, 7, SYN_OPTIM_ADAM, 0.01f};
    return s;
}

/* x: (batch, dim) -> mlp -> (batch, out); loss ce or mse. Status of the build. */
static syn_status net_try(net *n, const net_spec *s) {
    memset(n, 0, sizeof *n);
    syn_status st = syn_params_create(syn_cpu(), s->seed, &n->p);
    if (st == SYN_OK) st = syn_graph_create(n->p, &n->g);
    if (st != SYN_OK) return st;
    syn_graph *g = n->g;
    n->m.graph = g;
    /* Both inputs first: they are written before the forward pass starts. */
    n->m.x = syn_input(g, "x", SYN_F32, syn_shape2(s->batch, s->dim));
    n->m.y = s->regression ? syn_input(g, "y", SYN_F32, syn_shape2(s->batch, s->out))
                           : syn_input(g, "y", SYN_I32, syn_shape1(s->batch));
    syn_node *out = syn_mlp(g, n->m.x, s->hidden, s->n_hidden, s->out, s->act, s->dropout);
    if (s->regression) {
        n->m.loss = syn_mse_loss(g, out, n->m.y);
    } else {
        n->m.loss = syn_cross_entropy(g, out, n->m.y);
        n->m.logits = out;
    }
    st = syn_graph_status(g);
    if (st == SYN_OK && n->m.logits && s->keep_logits) st = syn_graph_keep(g, n->m.logits);
    syn_compile_opts co = {.inference = s->inference};
    if (st == SYN_OK) st = syn_graph_compile(g, syn_cpu(), &co);
    syn_optim_config oc = syn_optim_defaults(s->optim);
    oc.lr = s->lr;
    if (st == SYN_OK) st = syn_optim_create(n->p, &oc, &n->o);
    return st;
}

static void net_make(net *n, const net_spec *s) { TU_OK(net_try(n, s)); }

static void net_free(net *n) {
    syn_optim_free(n->o);
    syn_graph_free(n->g);
    syn_params_free(n->p);
}

static syn_fit_config fit_config(int epochs, int64_t batch, uint64_t seed) {
    syn_fit_config c;
    memset(&c, 0, sizeof c);
    c.epochs = epochs;
    c.batch_size = batch;
    c.seed = seed;
    c.progress = SYN_PROGRESS_OFF;
    return c;
}

/* ---- data ---------------------------------------------------------------------- */

/* A hand-built data set (malloc'd, so syn_dataset_free releases it). */
static syn_dataset *ds_new(int64_t n, int64_t dim, int classes, int64_t target_dim) {
    syn_dataset *d = calloc(1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    d->n = n;
    d->dim = dim;
    d->sample_shape = syn_shape1(dim);
    d->x = calloc((size_t)(n * dim), sizeof(float));
    ck_assert_ptr_nonnull(d->x);
    if (classes > 0) {
        d->num_classes = classes;
        d->labels = calloc((size_t)n, sizeof(int32_t));
        ck_assert_ptr_nonnull(d->labels);
    }
    if (target_dim > 0) {
        d->target_dim = target_dim;
        d->targets = calloc((size_t)(n * target_dim), sizeof(float));
        ck_assert_ptr_nonnull(d->targets);
    }
    return d;
}

static syn_dataset *xor_dataset(void) {
    static const float x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const int32_t y[4] = {0, 1, 1, 0};
    syn_dataset *d = ds_new(4, 2, 2, 0);
    memcpy(d->x, x, sizeof x);
    memcpy(d->labels, y, sizeof y);
    return d;
}

/* A deterministic generator for the tables (fixed seeds: these are
 * convergence checks with a known budget, not random-input tests). */
static double rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Three classes by a linear score with a margin around both thresholds.
 * Features have unequal scales and offsets, so standardisation matters.
 * Columns: a,b,c,d,y. */
static void class_row(uint64_t *s, double f[4], int *label) {
    for (;;) {
        f[0] = 10.0 * (2.0 * rnd(s) - 1.0) + 50.0;
        f[1] = 0.1 * (2.0 * rnd(s) - 1.0);
        f[2] = 2.0 * rnd(s) - 1.0;
        f[3] = 1000.0 * rnd(s); /* noise */
        double score = 0.1 * (f[0] - 50.0) - 10.0 * f[1] + 0.5 * f[2];
        if (fabs(score + 0.5) < 0.15 || fabs(score - 0.5) < 0.15) continue;
        *label = score < -0.5 ? 0 : score < 0.5 ? 1 : 2;
        return;
    }
}

/* y = 3a - 2b + 0.5 + noise(+-0.05); c is irrelevant. Columns: a,b,c,y. */
static void regress_row(uint64_t *s, double f[3], double *y) {
    f[0] = 2.0 * rnd(s) - 1.0;
    f[1] = 2.0 * rnd(s) - 1.0;
    f[2] = 2.0 * rnd(s) - 1.0;
    *y = 3.0 * f[0] - 2.0 * f[1] + 0.5 + 0.05 * (2.0 * rnd(s) - 1.0);
}

/* Writes a CSV of n rows to a fresh temporary file; returns its path in buf. */
static const char *write_csv(char *buf, size_t size, bool regression, int n, uint64_t seed) {
    snprintf(buf, size, "/tmp/syn_test_train_XXXXXX");
    int fd = mkstemp(buf);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    uint64_t s = seed;
    fputs(regression ? "a,b,c,y\n" : "a,b,c,d,y\n", f);
    for (int i = 0; i < n; i++) {
        double v[4], y;
        int label;
        if (regression) {
            regress_row(&s, v, &y);
            fprintf(f, "%.6f,%.6f,%.6f,%.6f\n", v[0], v[1], v[2], y);
        } else {
            class_row(&s, v, &label);
            fprintf(f, "%.6f,%.6f,%.6f,%.6f,%d\n", v[0], v[1], v[2], v[3], label);
        }
    }
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

/* Loads a CSV written by write_csv, splits 25% off and standardises. */
static void load_split(const char *path, bool regression, syn_dataset **train, syn_dataset **test) {
    syn_csv_opts co = {"y", regression, 0};
    syn_dataset *all;
    TU_OK(syn_dataset_load_csv(path, &co, &all));
    TU_OK(syn_dataset_split(all, 0.25f, 3, train, test));
    TU_OK(syn_dataset_standardize(*train, *test, true));
    syn_dataset_free(all);
}

/* ---- convergence ------------------------------------------------------------------ */

START_TEST(test_xor) {
    syn_dataset *d = xor_dataset();
    net_spec s = spec_default(2, 2, false);
    s.batch = 4;
    s.hidden[0] = 16;
    s.act = SYN_ACT_TANH;
    s.lr = 0.05f;
    s.seed = tu_seed();
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(400, 4, tu_seed());
    syn_fit_result r;
    TU_OK(syn_fit(&n.m, n.o, d, NULL, &c, &r));
    float loss, acc;
    TU_OK(syn_evaluate(&n.m, d, 4, &loss, &acc));
    ck_assert_msg(acc == 1.0f && loss < 0.05f, "xor: accuracy %g, loss %g after %d epochs (seed %llu)", (double)acc,
                  (double)loss, r.epochs_run, (unsigned long long)tu_seed());
    ck_assert_int_eq(r.epochs_run, 400);
    ck_assert_str_eq(r.stop_reason, "epochs");
    ck_assert(r.test_loss == -1.0f && r.test_accuracy == -1.0f);
    ck_assert(r.train_accuracy >= 0.0f && r.train_accuracy <= 1.0f);
    ck_assert(r.seconds > 0.0 && r.samples_per_s > 0.0);
    net_free(&n);
    syn_dataset_free(d);
}
END_TEST

START_TEST(test_csv_classification) {
    char path[64];
    syn_dataset *train, *test;
    write_csv(path, sizeof path, false, 400, 11);
    load_split(path, false, &train, &test);
    remove(path);
    ck_assert_int_eq(train->n, 300);
    ck_assert_int_eq(train->num_classes, 3);
    net_spec s = spec_default(4, 3, false);
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(40, 32, 5);
    syn_fit_result r;
    TU_OK(syn_fit(&n.m, n.o, train, test, &c, &r));
    ck_assert_msg(r.test_accuracy >= 0.9f, "csv classification: test accuracy %g (loss %g)", (double)r.test_accuracy,
                  (double)r.test_loss);
    /* syn_evaluate agrees with the loop's own evaluation */
    float loss, acc;
    TU_OK(syn_evaluate(&n.m, test, 32, &loss, &acc));
    ck_assert_float_eq(loss, r.test_loss);
    ck_assert_float_eq(acc, r.test_accuracy);
    /* and a batch size that does not divide the set gives the same mean */
    TU_OK(syn_evaluate(&n.m, test, 7, &loss, &acc));
    ck_assert_msg(fabsf(loss - r.test_loss) <= 1e-5f * fabsf(r.test_loss) + 1e-6f, "loss %g vs %g", (double)loss,
                  (double)r.test_loss);
    ck_assert_float_eq(acc, r.test_accuracy);
    net_free(&n);
    syn_dataset_free(train);
    syn_dataset_free(test);
}
END_TEST

START_TEST(test_csv_regression) {
    char path[64];
    syn_dataset *train, *test;
    write_csv(path, sizeof path, true, 400, 12);
    load_split(path, true, &train, &test);
    remove(path);
    ck_assert_int_eq(train->target_dim, 1);
    net_spec s = spec_default(3, 1, true);
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(80, 16, 5);
    syn_fit_result r;
    TU_OK(syn_fit(&n.m, n.o, train, test, &c, &r));
    ck_assert_msg(r.test_loss < 0.05f, "regression: test mse %g (train %g)", (double)r.test_loss, (double)r.train_loss);
    ck_assert(r.train_accuracy == -1.0f && r.test_accuracy == -1.0f);
    net_free(&n);
    syn_dataset_free(train);
    syn_dataset_free(test);
}
END_TEST

/* ---- reproducibility and stopping ---------------------------------------------------- */

/* The epoch lines without their timing (from "  <n> samples/s" on). */
static void strip_timing(char *text) {
    char *line = text, *w = text;
    while (*line) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *sps = strstr(line, " samples/s");
        if (sps && sps < line + len) {
            char *cut = sps;
            while (cut > line && cut[-1] != ' ') cut--; /* back over the number */
            len = (size_t)(cut - line);
        }
        memmove(w, line, len);
        w += len;
        *w++ = '\n';
        line = end ? end + 1 : line + strlen(line);
    }
    *w = '\0';
}

/* Two fits from one seed give the same losses, the second with the loader's
 * prefetch worker on (as on a GPU). */
START_TEST(test_same_seed_same_losses) {
    uint64_t s0 = 99;
    syn_dataset *all = ds_new(240, 4, 3, 0);
    for (int64_t i = 0; i < all->n; i++) {
        double v[4];
        int label;
        class_row(&s0, v, &label);
        for (int k = 0; k < 4; k++) all->x[i * 4 + k] = (float)v[k];
        all->labels[i] = label;
    }
    syn_dataset *train, *test;
    TU_OK(syn_dataset_split(all, 0.25f, 1, &train, &test));
    TU_OK(syn_dataset_standardize(train, test, true));
    syn_fit_result r[2];
    char *text[2];
    for (int k = 0; k < 2; k++) {
        net_spec s = spec_default(4, 3, false);
        s.dropout = 0.2f; /* the dropout stream must repeat too */
        s.seed = tu_seed();
        net n;
        net_make(&n, &s);
        syn_fit_config c = fit_config(2, 16, tu_seed() + 1);
        c.prefetch = k == 0 ? SYN_PREFETCH_OFF : SYN_PREFETCH_ON; /* the same batches either way */
        size_t len;
        c.out = open_memstream(&text[k], &len);
        c.progress = SYN_PROGRESS_LINES;
        ck_assert_ptr_nonnull(c.out);
        TU_OK(syn_fit(&n.m, n.o, train, test, &c, &r[k]));
        fclose(c.out);
        net_free(&n);
    }
    ck_assert_msg(memcmp(&r[0].train_loss, &r[1].train_loss, sizeof(float)) == 0, "train loss %.9g vs %.9g",
                  (double)r[0].train_loss, (double)r[1].train_loss);
    ck_assert(memcmp(&r[0].test_loss, &r[1].test_loss, sizeof(float)) == 0);
    ck_assert(r[0].train_accuracy == r[1].train_accuracy && r[0].test_accuracy == r[1].test_accuracy);
    /* every epoch's numbers, through the progress lines */
    ck_assert_ptr_nonnull(strstr(text[0], "epoch 1/2  loss "));
    ck_assert_ptr_nonnull(strstr(text[0], "epoch 2/2  loss "));
    ck_assert_ptr_nonnull(strstr(text[0], "test_acc "));
    strip_timing(text[0]);
    strip_timing(text[1]);
    ck_assert_str_eq(text[0], text[1]);
    free(text[0]);
    free(text[1]);
    syn_dataset_free(all);
    syn_dataset_free(train);
    syn_dataset_free(test);
}
END_TEST

START_TEST(test_min_loss_stop) {
    syn_dataset *d = xor_dataset();
    net_spec s = spec_default(2, 2, false);
    s.batch = 4;
    s.hidden[0] = 16;
    s.act = SYN_ACT_TANH;
    s.lr = 0.05f;
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(2000, 4, 1);
    c.min_loss = 0.1f;
    syn_fit_result r;
    TU_OK(syn_fit(&n.m, n.o, d, NULL, &c, &r));
    ck_assert_str_eq(r.stop_reason, "min_loss");
    ck_assert_int_lt(r.epochs_run, 2000);
    ck_assert(r.train_loss <= 0.1f);
    net_free(&n);
    syn_dataset_free(d);
}
END_TEST

START_TEST(test_patience_stop) {
    /* A rate so small that no parameter moves: the test loss never improves
     * after the first epoch, so patience 2 stops after epoch 3. */
    syn_dataset *d = xor_dataset();
    net_spec s = spec_default(2, 2, false);
    s.batch = 4;
    s.lr = 1e-30f;
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(50, 4, 1);
    c.patience = 2;
    syn_fit_result r;
    TU_OK(syn_fit(&n.m, n.o, d, d, &c, &r));
    ck_assert_str_eq(r.stop_reason, "patience");
    ck_assert_int_eq(r.epochs_run, 3);
    net_free(&n);
    syn_dataset_free(d);
}
END_TEST

START_TEST(test_schedule_restores_lr) {
    syn_dataset *d = xor_dataset();
    net_spec s = spec_default(2, 2, false);
    s.batch = 4;
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(3, 2, 1);
    c.schedule.kind = SYN_SCHED_COSINE; /* total_steps 0: the whole run */
    c.schedule.warmup_steps = 2;
    c.clip_norm = 1.0f;
    syn_fit_result r;
    TU_OK(syn_fit(&n.m, n.o, d, NULL, &c, &r));
    ck_assert_int_eq(syn_optim_steps(n.o), 6);
    ck_assert_float_eq(syn_optim_lr(n.o), 0.01f);
    net_free(&n);
    syn_dataset_free(d);
}
END_TEST

/* ---- bad configurations and data ---------------------------------------------------- */

static void expect_fit(syn_model *m, syn_optim *o, const syn_dataset *tr, const syn_dataset *te,
                       const syn_fit_config *c, syn_status want, const char *needle) {
    syn_fit_result r;
    syn_status s = syn_fit(m, o, tr, te, c, &r);
    ck_assert_msg(s == want, "syn_fit -> %s (%s), wanted %s", syn_status_str(s), syn_last_error(), syn_status_str(want));
    ck_assert_msg(strstr(syn_last_error(), needle) != NULL, "message '%s' lacks '%s'", syn_last_error(), needle);
}

START_TEST(test_bad_config) {
    syn_dataset *d = xor_dataset();
    net_spec s = spec_default(2, 2, false);
    s.batch = 4;
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(1, 0, 1);
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "batch size 0");
    c.batch_size = 5; /* over x's capacity of 4 */
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "capacity");
    c.batch_size = 4;
    c.epochs = 0;
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "epochs");
    c.epochs = 1;
    c.prefetch = (syn_prefetch)7;
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "prefetch 7");
    c.prefetch = SYN_PREFETCH_AUTO;
    syn_model m = n.m;
    m.loss = NULL;
    expect_fit(&m, n.o, d, NULL, &c, SYN_ERR_ARG, "loss");
    m = n.m;
    m.logits = NULL;
    expect_fit(&m, n.o, d, NULL, &c, SYN_ERR_ARG, "logits");
    ck_assert_int_eq(syn_evaluate(&n.m, d, 0, NULL, NULL), SYN_ERR_ARG);
    /* 3 classes in the data, 2 logits */
    d->num_classes = 3;
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_SHAPE, "3 classes");
    d->num_classes = 2;
    /* a label out of range */
    d->labels[2] = 7;
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "label 7");
    d->labels[2] = 1;
    /* a regression set for a classifier; features of the wrong width */
    syn_dataset *reg = ds_new(4, 2, 0, 1);
    expect_fit(&n.m, n.o, reg, NULL, &c, SYN_ERR_ARG, "no class labels");
    syn_dataset *wide = ds_new(4, 3, 2, 0);
    expect_fit(&n.m, n.o, d, wide, &c, SYN_ERR_SHAPE, "3 features");
    syn_dataset empty = *d;
    empty.n = 0;
    expect_fit(&n.m, n.o, &empty, NULL, &c, SYN_ERR_ARG, "empty");
    expect_fit(&n.m, n.o, d, NULL, NULL, SYN_ERR_ARG, "config");
    net_free(&n);

    /* logits not kept: the accuracy read fails with the executor's message */
    s.keep_logits = false;
    net_make(&n, &s);
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "syn_graph_keep");
    net_free(&n);
    /* a graph compiled for inference cannot be trained, but can be evaluated */
    s.keep_logits = true;
    s.inference = true;
    net_make(&n, &s);
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "inference");
    float loss, acc;
    TU_OK(syn_evaluate(&n.m, d, 4, &loss, &acc));
    ck_assert(isfinite(loss) && acc >= 0.0f && acc <= 1.0f);
    net_free(&n);
    syn_dataset_free(reg);
    syn_dataset_free(wide);
    syn_dataset_free(d);
}
END_TEST

START_TEST(test_nan_rejected) {
    syn_dataset *d = xor_dataset(), *other = xor_dataset();
    d->x[3] = NAN;
    /* standardize refuses and changes nothing */
    ck_assert_int_ne(syn_dataset_standardize(d, other, false), SYN_OK);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "NaN"));
    ck_assert(other->x[3] == 1.0f);
    /* so does syn_fit, naming the row and feature */
    net_spec s = spec_default(2, 2, false);
    s.batch = 4;
    net n;
    net_make(&n, &s);
    syn_fit_config c = fit_config(1, 4, 1);
    expect_fit(&n.m, n.o, d, NULL, &c, SYN_ERR_ARG, "row 1, feature 1");
    d->x[3] = 1.0f;
    other->x[0] = INFINITY;
    expect_fit(&n.m, n.o, d, other, &c, SYN_ERR_ARG, "test set");
    net_free(&n);
    syn_dataset_free(d);
    syn_dataset_free(other);
}
END_TEST

/* ---- the CLI -------------------------------------------------------------------------- */




START_TEST(test_cli) {
    char bin[512], csv[64], cmd[1024];
    if (!tu_cli_path(bin, sizeof bin, "test_train")) return;
    char *out;
    write_csv(csv, sizeof csv, false, 200, 21);

    snprintf(cmd, sizeof cmd, "%s train --csv %s --label y --epochs 3 --quiet 2>/dev/null", bin, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    const char *json = tu_last_line(out);
    ck_assert_msg(json[0] == '{' && json[strlen(json) - 1] == '}', "not one JSON object: '%s'", json);
    static const char *const keys[] = {"\"model\":\"mlp 4-256-128-3\"", "\"device\":\"cpu\"", "\"epochs\":3",
                                       "\"train_loss\":", "\"test_loss\":", "\"test_accuracy\":0.",
                                       "\"seconds\":", "\"samples_per_s\":"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_msg(strstr(json, keys[i]) != NULL, "'%s' lacks %s", json, keys[i]);
    free(out);

    snprintf(cmd, sizeof cmd, "%s train --csv %s --label y --regression --epochs 1 --quiet 2>/dev/null", bin, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(tu_last_line(out), "\"test_accuracy\":null"));
    free(out);

    snprintf(cmd, sizeof cmd, "%s train --bogus 2>&1", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--bogus"));
    ck_assert_ptr_nonnull(strstr(out, "usage:"));
    free(out);

    snprintf(cmd, sizeof cmd, "%s train --csv %s --label y --batch-size 0 2>&1", bin, csv);
    ck_assert_int_ne(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "batch-size"));
    free(out);

    snprintf(cmd, sizeof cmd, "%s train --csv %s --label nosuchcolumn --quiet 2>&1", bin, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "synapse: error: "));
    free(out);

    /* augmentation needs images: a table is refused with the reason */
    snprintf(cmd, sizeof cmd, "%s train --csv %s --label y --crop-pad 2 --flip --quiet 2>&1", bin, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "synapse: error: ") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s train --csv %s --label y --crop-pad -1 2>&1", bin, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--crop-pad"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s train --csv %s --label y --schedule onecycle --optimizer sgd --nesterov --momentum 0.9 "
             "--epochs 2 --quiet 2>/dev/null", bin, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(tu_last_line(out), "\"epochs\":2"));
    free(out);

    snprintf(cmd, sizeof cmd, "%s train --help", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--batch-size"));
    free(out);

    snprintf(cmd, sizeof cmd, "%s --version", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, syn_version()));
    free(out);

    snprintf(cmd, sizeof cmd, "%s info", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "cpu: "));
    ck_assert_ptr_nonnull(strstr(out, "cuda"));
    free(out);
    remove(csv);
}
END_TEST

/* The stopping rules, schedules and losses through the CLI, the progress it
 * prints, a checkpoint refused for another model or seed, and every bad
 * option value with the usage's message (exit 2) or the fault (exit 1). */
START_TEST(test_cli_options) {
    char bin[512], csv[64], reg[64];
    if (!tu_cli_path(bin, sizeof bin, "test_train")) return;
    write_csv(csv, sizeof csv, false, 200, 21);
    write_csv(reg, sizeof reg, true, 200, 22);
    /* --min-error: the first epoch's train loss is below 5, so it stops there, and says why */
    char *out = tu_run_expect(0, "%s train --csv %s --label y --epochs 20 --min-error 5 2>&1", bin, csv);
    ck_assert_msg(strstr(out, "stopped after 1 epochs") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "synapse: adam lr 0.001, batch 128, 20 epochs, loss ce; 160 train / 40 test samples"),
                  "the header: %s", out);
    ck_assert_int_eq((int)tu_json_number(tu_last_line(out), "epochs"), 1);
    free(out);
    /* --patience 1 with a learning rate that cannot improve the test loss */
    out = tu_run_expect(0, "%s train --csv %s --label y --epochs 20 --optimizer sgd --lr 1e-30 --patience 1 --quiet",
                        bin, csv);
    ck_assert_int_eq((int)tu_json_number(tu_last_line(out), "epochs"), 2);
    free(out);
    static const char *const ok[] = {
        "--schedule step --epochs 3 --warmup 2 --clip 1 --weight-decay 1e-4 --optimizer adamw",
        "--schedule cosine --epochs 2 --optimizer rmsprop --dropout 0.2 --activation gelu --hidden 16,8",
        "--epochs 1 --activation sigmoid --test-fraction 0.5 --seed 9",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        out = tu_run_expect(0, "%s train --csv %s --label y %s --quiet", bin, csv, ok[i]);
        ck_assert_msg(isfinite(tu_json_number(tu_last_line(out), "test_accuracy")), "%s: %s", ok[i], out);
        free(out);
    }
    out = tu_run_expect(0, "%s train --csv %s --label y --regression --loss sse --epochs 2 --quiet", bin, reg);
    ck_assert_msg(isfinite(tu_json_number(tu_last_line(out), "test_loss")), "%s", out);
    free(out);
    /* a checkpoint continues only its own run */
    char ck[96];
    snprintf(ck, sizeof ck, "%s.ckpt", csv);
    free(tu_run_expect(0, "%s train --csv %s --label y --epochs 1 --seed 3 --save %s --quiet", bin, csv, ck));
    out = tu_run_expect(1, "%s train --csv %s --label y --epochs 2 --seed 4 --resume %s 2>&1", bin, csv, ck);
    ck_assert_msg(strstr(out, "was written with --seed 3, this run has --seed 4"), "%s", out);
    free(out);
    out = tu_run_expect(1, "%s train --csv %s --label y --epochs 2 --seed 3 --activation tanh --resume %s 2>&1", bin,
                        csv, ck);
    ck_assert_msg(strstr(out, "was written for another model"), "%s", out);
    free(out);
    out =
        tu_run_expect(1, "%s train --csv %s --label y --epochs 2 --seed 3 --hidden 32 --resume %s 2>&1", bin, csv, ck);
    ck_assert_msg(strstr(out, "parameter 'linear0.weight' is f32 (256,4) in the file but f32 (32,4) in the model"),
                  "%s", out);
    free(out);
    static const tu_cli_case bad[] = {
        {2, "--test-fraction 1", "--test-fraction must be in (0, 1), got '1'"},
        {2, "--dropout 1", "--dropout must be in [0, 1), got '1'"},
        {2, "--weight-decay -1", "--weight-decay must be >= 0, got '-1'"},
        {2, "--seed -3", "--seed must be a non-negative integer, got '-3'"},
        {2, "--min-error -1", "--min-error must be >= 0, got '-1'"},
        {2, "--patience -1", "--patience must be >= 0, got '-1'"},
        {2, "--clip -1", "--clip must be >= 0, got '-1'"},
        {2, "--schedule bogus", "unknown --schedule 'bogus'"},
        {2, "--warmup -1", "--warmup must be >= 0, got '-1'"},
        {2, "--loss bogus", "unknown --loss 'bogus' (ce, mse, sse)"},
        {2, "--loss mse", "--loss mse is for regression (--regression); classification uses ce"},
        {2, "--regression --loss ce", "--loss ce is for classification; regression uses mse or sse"},
        {2, "--data bogus", "unknown --data 'bogus'"},
        {2, "--epochs", "option --epochs needs a value"},
    };
    char prefix[128];
    snprintf(prefix, sizeof prefix, "train --csv %s --label y", csv);
    tu_cli_cases(bin, prefix, bad, sizeof bad / sizeof *bad, NULL);
    remove(ck);
    remove(csv);
    remove(reg);
}
END_TEST

/* --data cifar10: five training batch files and a test batch of the binary
 * version (records of a label byte and 3072 pixel bytes; each class a
 * brightness of its own), trained, then evaluated from the checkpoint. */
START_TEST(test_cli_cifar10) {
    char bin[512], dir[64] = "/tmp/syn_test_cifar_XXXXXX", path[128];
    if (!tu_cli_path(bin, sizeof bin, "test_train")) return;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    static uint8_t rec[12 * 3073];
    tu_rng r = tu_rng_make(10);
    for (int f = 0; f < 6; f++) {
        const int n = f < 5 ? 8 : 12;
        for (int i = 0; i < n; i++) {
            const int label = (f * 8 + i) % 10;
            rec[i * 3073] = (uint8_t)label;
            for (int p = 1; p < 3073; p++) rec[i * 3073 + p] = (uint8_t)(label * 20 + tu_next(&r) % 60);
        }
        if (f < 5) snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f + 1);
        else snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        FILE *o = fopen(path, "wb");
        ck_assert_ptr_nonnull(o);
        ck_assert_uint_eq(fwrite(rec, 3073, (size_t)n, o), (size_t)n);
        ck_assert_int_eq(fclose(o), 0);
    }
    char ck[96];
    snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    char *out = tu_run_expect(0, "%s train --data cifar10 --data-dir %s --hidden 16 --epochs 2 --batch-size 8 --save %s"
                                 " 2>&1", bin, dir, ck);
    ck_assert_msg(strstr(out, "; 40 train / 12 test samples") && strstr(out, "\"model\":\"mlp 3072-16-10\""), "%s", out);
    const double acc = tu_json_number(tu_last_line(out), "test_accuracy");
    free(out);
    out = tu_run_expect(0, "%s eval mlp %s --data cifar10 --data-dir %s --hidden 16 --quiet", bin, ck, dir);
    ck_assert_double_eq_tol(tu_json_number(tu_last_line(out), "test_accuracy"), acc, 1e-6);
    free(out);
    /* predict on a 32x32 RGB PNG names the class as CIFAR-10 does */
    static const char *const names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};
    uint8_t pix[32 * 32 * 3];
    for (int i = 0; i < 32 * 32 * 3; i++) pix[i] = (uint8_t)(tu_next(&r) & 0xff);
    snprintf(path, sizeof path, "%s/in.png", dir);
    tu_write_png(path, pix, 32, 32, true);
    out = tu_run_expect(0, "%s predict mlp %s %s --data cifar10 --data-dir %s --hidden 16 --top 1 --quiet", bin, ck,
                        path, dir);
    int cls = -1;
    ck_assert_msg(sscanf(out, "0: class %d ", &cls) == 1 && cls >= 0 && cls < 10, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "0: class %d %s (", cls, names[cls]);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "want '%s...': %s", want, out);
    free(out);
    remove(path);
    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    ck_assert_int_eq(remove(path), 0);
    static const tu_cli_case bad[] = {
        {2, "--data cifar10", "--data cifar10 needs --data-dir DIR"},
        {2, "--data cifar10 --data-dir @ --images x", "--data cifar10 and --images both name the data"},
        {1, "--data cifar10 --data-dir @", "@/data_batch_3.bin: cannot open"},
    };
    tu_cli_cases(bin, "train", bad, sizeof bad / sizeof *bad, dir);
    for (int f = 1; f <= 5; f++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f);
        remove(path);
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    remove(path);
    remove(ck);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("convergence");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_xor);
    tcase_add_test(tc, test_csv_classification);
    tcase_add_test(tc, test_csv_regression);
    suite_add_tcase(s, tc);
    tc = tcase_create("loop");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_same_seed_same_losses);
    tcase_add_test(tc, test_min_loss_stop);
    tcase_add_test(tc, test_patience_stop);
    tcase_add_test(tc, test_schedule_restores_lr);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_nan_rejected);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_cli_options);
    tcase_add_test(tc, test_cli_cifar10);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(train_suite()); }
