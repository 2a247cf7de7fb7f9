/* `synapse eval MODEL CKPT`: rebuilds the network train built (a model file,
 * or the MLP from --hidden/--activation), loads the weights of a checkpoint
 * (or of a parameter file) and reports the test set's loss and accuracy as
 * one JSON line on stdout. `synapse predict MODEL CKPT INPUT`: the same
 * network's outputs for new inputs (an IDX images file, a CSV table or a
 * PNG), standardised with the training data's statistics as train did: those
 * the checkpoint records, or (older checkpoints, parameter files) recomputed
 * from the training data. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "cli.h"
#include "train_cli.h"

static const char eval_usage_text[] =
    "usage: synapse eval MODEL CKPT [options]\n"
    "\n"
    "MODEL is a model file (models/*.cfg) or mlp; CKPT a checkpoint written by\n"
    "synapse train --save (or a parameter file). The network is rebuilt from the\n"
    "same flags train had, the weights loaded, and the test set evaluated.\n"
    "\n"
    "The test set is standardised with the statistics the checkpoint records (a\n"
    "parameter file or an older checkpoint: recomputed from the training set).\n"
    "\n"
    "  --data, --data-dir, --csv, --label, --regression, --test-fraction, --seed\n"
    "                           the data, as for train (the CSV split depends on --seed)\n"
    "  --hidden, --activation, --dropout, --loss\n"
    "                           the MLP, as for train\n"
    "  --batch-size N           (default 128)\n"
    "  --device D               cpu|cuda|cuda:N (default cpu)\n"
    "  --quiet                  no header\n"
    "  --help                   this text\n"
    "\n"
    "The last line on stdout is one JSON object with the results.\n";

/* Loads o->resume into the built network: a checkpoint (its model must be
 * this one), or a parameter file (then only names and shapes are checked).
 * -1 to go on, else an exit code (the error printed). */
static int load_weights(const train_opts *o, train_net *net, bool *ckpt, syn_checkpoint_info *info) {
    syn_safetensors *f = NULL;
    *ckpt = false;
    syn_status s = syn_safetensors_open(o->resume, &f);
    if (s == SYN_OK) {
        *ckpt = syn_safetensors_metadata(f, "epoch") != NULL;
        syn_safetensors_close(f);
        s = *ckpt ? syn_checkpoint_load(o->resume, net->params, NULL, info) : syn_params_load(net->params, o->resume, true);
    }
    if (s != SYN_OK) return runtime_error(s);
    if (*ckpt && strcmp(info->model, net->desc) != 0) {
        fprintf(stderr, "synapse: error: %s was written for another model (%.200s) than this one (%.200s)\n", o->resume,
                info->model, net->desc);
        return 1;
    }
    return -1;
}

/* "synapse: error: ..." on stderr; returns 1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("synapse: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* A metadata integer in [lo, hi], or -1. */
static int64_t meta_int(const syn_safetensors *f, const char *key, int64_t lo, int64_t hi) {
    char full[64];
    snprintf(full, sizeof full, "data.%s", key);
    const char *v = syn_safetensors_metadata(f, full);
    int64_t x;
    return v && parse_i64(v, lo, &x) && x <= hi ? x : -1;
}

/* What the model was trained on, as train recorded it in the checkpoint
 * (DATA_* in train_cli.h): a data set of no rows with the training set's
 * sample shape and outputs in *shape and, for a CSV, the training header and
 * its label's index (owned: syn_csv_header_free). Returns 1 if the file has
 * the record, 0 if not (an older checkpoint, a parameter file), -1 with the
 * error printed if it is damaged. */
static int ckpt_data(const train_opts *o, syn_dataset *shape, char ***names, int *count, int *label) {
    syn_safetensors *f = NULL;
    memset(shape, 0, sizeof *shape);
    *names = NULL;
    *count = 0;
    *label = -1;
    if (syn_safetensors_open(o->resume, &f) != SYN_OK) return 0; /* load_weights reports it */
    int rc = 0;
    const char *sh = syn_safetensors_metadata(f, "data." DATA_SHAPE);
    if (!sh) goto done;
    rc = -1;
    syn_shape ss = {0};
    for (const char *p = sh; *p && ss.ndim < 3; ss.ndim++) {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p || d < 1 || (*end && *end != ',')) break;
        ss.dim[ss.ndim] = d;
        p = *end ? end + 1 : end;
    }
    shape->sample_shape = ss;
    shape->dim = ss.ndim == 1 || ss.ndim == 3 ? syn_shape_numel(&ss) : -1;
    int64_t out = meta_int(f, DATA_OUTPUTS, 1, 1 << 20);
    if (shape->dim < 1 || out < 1 || (ss.ndim == 3) == (o->csv != NULL)) {
        fail("%s: its record of the training data (data.*) is damaged or is not for %s", o->resume,
             o->csv ? "a CSV table" : "images");
        goto done;
    }
    if (o->regression) shape->target_dim = out;
    else shape->num_classes = (int)out;
    if (o->csv) {
        int64_t n = meta_int(f, DATA_COLUMNS, 2, 1 << 24), lab = meta_int(f, DATA_LABEL, 0, n - 1);
        if (n < 0 || lab < 0 || n - 1 != shape->dim || !(*names = calloc((size_t)n, sizeof **names))) {
            fail("%s: its record of the training CSV's columns (data.*) is damaged", o->resume);
            goto done;
        }
        *count = (int)n;
        *label = (int)lab;
        char key[64];
        for (int k = 0; k < n; k++) {
            snprintf(key, sizeof key, "data." DATA_COLUMN "%d", k);
            const char *v = syn_safetensors_metadata(f, key);
            if (!v || !((*names)[k] = strdup(v))) {
                fail("%s: its record of the training CSV's columns lacks '%s'", o->resume, key);
                goto done;
            }
        }
    }
    rc = 1;
done:
    syn_safetensors_close(f);
    if (rc != 1) {
        syn_csv_header_free(*names, *count);
        *names = NULL;
        *count = 0;
    }
    return rc;
}

int cmd_eval(int argc, char **argv) {
    train_opts o;
    int rc = train_parse(argc, argv, &o, eval_usage_text);
    if (rc >= 0) return rc;
    syn_device dev;
    if ((rc = pick_device(o.device, &dev)) >= 0) return rc;
    syn_dataset *train = NULL, *test = NULL, shape;
    syn_norm_stats *st = NULL;
    char **names = NULL;
    int ncol = 0, label;
    train_net net;
    if ((rc = train_net_load(&o, &net)) >= 0) return rc;
    /* The statistics the checkpoint records, else the training set's. */
    syn_status s = syn_checkpoint_load_stats(o.resume, &st);
    if (s == SYN_OK) s = st ? train_load_test(&o, st, &test) : train_load_data(&o, &train, &test, NULL);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    int have = ckpt_data(&o, &shape, &names, &ncol, &label);
    if (have < 0) {
        rc = 1;
        goto done;
    }
    if ((rc = train_net_build(&o, dev, have ? &shape : train ? train : test, true, &net)) >= 0) goto done;
    syn_checkpoint_info info;
    bool ckpt;
    if ((rc = load_weights(&o, &net, &ckpt, &info)) >= 0) goto done;
    if (!o.quiet)
        fprintf(stderr, "synapse: %s, %lld parameters, from %s%s; %lld test samples\n", net.name,
                (long long)syn_params_numel(net.params), o.resume, ckpt ? " (checkpoint)" : "", (long long)test->n);
    float loss, acc;
    s = syn_evaluate(&net.m, test, o.batch, &loss, &acc);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    char devname[32];
    syn_device_str(dev, devname, sizeof devname);
    printf("{\"model\":\"%s\",\"device\":\"%s\"", net.name, devname);
    if (ckpt) printf(",\"epoch\":%lld,\"step\":%lld", (long long)info.epoch, (long long)info.step);
    json_num("test_loss", loss, "%.6g");
    if (net.classify) json_num("test_accuracy", acc, "%.4f");
    else fputs(",\"test_accuracy\":null", stdout);
    printf(",\"samples\":%lld}\n", (long long)test->n);
    fflush(stdout);
    rc = 0;
done:
    train_net_free(&net);
    syn_dataset_free(train);
    syn_dataset_free(test);
    syn_norm_stats_free(st);
    syn_csv_header_free(names, ncol);
    return rc;
}

/* ---- predict ---------------------------------------------------------------------- */

static const char predict_usage_text[] =
    "usage: synapse predict MODEL CKPT INPUT [options]\n"
    "\n"
    "MODEL is a model file (models/*.cfg) or mlp, CKPT a checkpoint written by\n"
    "synapse train --save (or a parameter file), and INPUT one of:\n"
    "  an IDX images file (gzip'd or raw, e.g. t10k-images-idx3-ubyte.gz): every image\n"
    "  a PNG, grey or RGB: it must have the model's input size (it is not resized)\n"
    "  a CSV table with a header row: the training CSV's feature columns in its order\n"
    "    (the label column may be there too: it is ignored); every row\n"
    "For each input it prints the predicted class and the K most probable classes\n"
    "(the softmax of the logits), or the regression targets.\n"
    "\n"
    "Inputs are standardised as train standardised its data, with the training\n"
    "set's statistics, which train --save records in the checkpoint with the\n"
    "data's shapes and a CSV's column names: the training data need not be at\n"
    "hand. For a parameter file or an older checkpoint predict recomputes them\n"
    "from the same data flags (--data-dir, or --csv, --label, --test-fraction\n"
    "and --seed, which pick the CSV's training rows), so the data must be there.\n"
    "The data flags still say what the model was trained on (--csv: a table).\n"
    "\n"
    "  --top K                  the K most probable classes (default 3)\n"
    "  --index I                only input I (0-based)\n"
    "  --json                   one JSON object per input instead of text\n"
    "  --data, --data-dir, --csv, --label, --regression, --test-fraction, --seed\n"
    "                           the training data, as for train\n"
    "  --hidden, --activation, --dropout, --loss\n"
    "                           the MLP, as for train\n"
    "  --batch-size N           inputs per forward pass (default 128)\n"
    "  --device D               cpu|cuda|cuda:N (default cpu)\n"
    "  --quiet                  no header on stderr\n"
    "  --help                   this text\n";

/* train's long options (tools/synapse.c) that take a value, so that their
 * values are told from INPUT, and those that only train takes. */
static const struct {
    const char *name;
    bool value, train_only;
} train_flags[] = {
    {"data", 1, 0},      {"data-dir", 1, 0},     {"csv", 1, 0},      {"label", 1, 0},       {"test-fraction", 1, 0},
    {"hidden", 1, 0},    {"activation", 1, 0},   {"dropout", 1, 0},  {"loss", 1, 0},        {"batch-size", 1, 0},
    {"seed", 1, 0},      {"device", 1, 0},       {"regression", 0, 0}, {"quiet", 0, 0},     {"help", 0, 0},
    {"optimizer", 1, 1}, {"lr", 1, 1},           {"momentum", 1, 1}, {"weight-decay", 1, 1}, {"epochs", 1, 1},
    {"min-error", 1, 1}, {"patience", 1, 1},     {"clip", 1, 1},     {"schedule", 1, 1},    {"warmup", 1, 1},
    {"save", 1, 1},      {"resume", 1, 1},       {"crop-pad", 1, 1}, {"nesterov", 0, 1},    {"flip", 0, 1},
    {"top", 1, 0},       {"index", 1, 0},        {"json", 0, 0}, /* predict's own */
};
#define N_TRAIN_FLAGS ((int)(sizeof train_flags / sizeof *train_flags))

/* The option "--name[=v]" is: an exact name, else a unique prefix (as
 * getopt_long takes it); -1 if none or ambiguous. */
static int find_flag(const char *arg) {
    size_t len = strcspn(arg + 2, "=");
    int hit = -1;
    for (int k = 0; k < N_TRAIN_FLAGS; k++) {
        if (strncmp(train_flags[k].name, arg + 2, len) != 0) continue;
        if (strlen(train_flags[k].name) == len) return k;
        hit = hit == -1 ? k : -2;
    }
    return hit < 0 ? -1 : hit;
}

typedef struct {
    int64_t top, index; /* index -1: every input */
    bool json;
    const char *input;
} predict_opts;

/* The training CSV's columns: its header, and the label's index in it. */
typedef struct {
    char **names;
    int n, label;
} train_columns;

/* What predict takes from the training data: its standardisation, shapes and
 * (a CSV) columns, from the checkpoint's record of them, else from the data
 * (an older checkpoint, a parameter file): the training set standardised as
 * train did, in *train. -1 to go on, else an exit code (the error printed). */
static int training_facts(const train_opts *o, syn_norm_stats **st, syn_dataset *shape, syn_dataset **train,
                          train_columns *tc) {
    *train = NULL;
    syn_status s = syn_checkpoint_load_stats(o->resume, st);
    if (s != SYN_OK) return runtime_error(s);
    int have = *st ? ckpt_data(o, shape, &tc->names, &tc->n, &tc->label) : 0;
    if (have < 0) return 1;
    if (have) return -1;
    syn_norm_stats_free(*st);
    *st = NULL;
    syn_dataset *test = NULL;
    s = train_load_data(o, train, &test, st);
    syn_dataset_free(test);
    if (s == SYN_OK && o->csv) s = train_csv_header(o, &tc->names, &tc->n, &tc->label);
    if (s != SYN_OK) return runtime_error(s);
    if (o->csv && tc->label < 0) return fail("%s: no label column '%s' in its header", o->csv, o->label);
    *shape = **train;
    return -1;
}

static syn_dataset *dataset_new(int64_t n, syn_shape sample) {
    syn_dataset *ds = calloc(1, sizeof *ds);
    int64_t dim = syn_shape_numel(&sample);
    if (!ds || !(ds->x = malloc((size_t)(n * dim) * sizeof(float) + 1))) {
        free(ds);
        return NULL;
    }
    ds->n = n;
    ds->dim = dim;
    ds->sample_shape = sample;
    return ds;
}

/* IDX unsigned bytes (n, d), (n, h, w) or (n, c, h, w), gzip'd or raw, as
 * samples (d), (1, h, w) or (c, h, w) scaled to [0, 1] as the IDX reader
 * scales them. */
static int read_idx(const char *path, syn_dataset **out) {
    gzFile f = gzopen(path, "rb");
    if (!f) return fail("%s: cannot open: %s", path, strerror(errno));
    unsigned char h[4 + 16];
    int rc = 1;
    syn_dataset *ds = NULL;
    if (gzread(f, h, 4) != 4 || h[0] || h[1] || h[2] != 0x08 || h[3] < 1 || h[3] > 4) {
        rc = fail("%s: not an IDX file of unsigned bytes", path);
        goto done;
    }
    int nd = h[3];
    if (nd == 1) {
        rc = fail("%s: an IDX file of one byte per item (labels?), not of images", path);
        goto done;
    }
    if (gzread(f, h + 4, (unsigned)(4 * nd)) != 4 * nd) {
        rc = fail("%s: truncated IDX header", path);
        goto done;
    }
    uint64_t d[4], per = 1;
    for (int k = 0; k < nd; k++) {
        const unsigned char *b = h + 4 + 4 * k;
        d[k] = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
        if (k) per *= d[k];
    }
    if (d[0] == 0 || per == 0 || per > (1u << 24) || d[0] > (1ull << 34) / per) {
        rc = fail("%s: an IDX header with sizes this reader does not take (no items, or too many)", path);
        goto done;
    }
    syn_shape sample = nd == 2 ? syn_shape1((int64_t)d[1])
                     : nd == 3 ? syn_shape3(1, (int64_t)d[1], (int64_t)d[2])
                               : syn_shape3((int64_t)d[1], (int64_t)d[2], (int64_t)d[3]);
    ds = dataset_new((int64_t)d[0], sample);
    unsigned char *buf = malloc(1u << 20);
    if (!ds || !buf) {
        free(buf);
        rc = fail("%s: out of memory", path);
        goto done;
    }
    uint64_t total = d[0] * per, got = 0;
    while (got < total) {
        unsigned want = (unsigned)(total - got < (1u << 20) ? total - got : (1u << 20));
        int r = gzread(f, buf, want);
        if (r <= 0) break;
        for (int i = 0; i < r; i++) ds->x[got + (uint64_t)i] = (float)buf[i] * (1.0f / 255.0f);
        got += (uint64_t)r;
    }
    int extra = got == total ? gzread(f, buf, 1) : 0;
    free(buf);
    if (got != total) {
        rc = fail("%s: truncated IDX data: %llu of %llu bytes", path, (unsigned long long)got,
                  (unsigned long long)total);
        goto done;
    }
    if (extra != 0) {
        rc = fail("%s: bytes after the IDX data (or a read error)", path);
        goto done;
    }
    *out = ds;
    ds = NULL;
    rc = -1;
done:
    gzclose(f);
    syn_dataset_free(ds);
    return rc;
}

/* A CSV of the training CSV's feature columns (by name, in its order), with
 * or without its label column, read by the library's CSV reader (quoting,
 * BOM, CRLF and number rules as for training). */
static int read_csv(const char *path, const train_columns *tc, int64_t dim, syn_dataset **out) {
    char **f = NULL, **tf = tc->names;
    const char **want = NULL;
    int n = 0, nt = tc->n, label = tc->label, rc = 1;
    syn_status s = syn_csv_header_read(path, 0, &f, &n);
    if (s != SYN_OK) return runtime_error(s);
    int in_label = -1;
    for (int k = 0; k < n; k++)
        if (strcmp(f[k], tf[label]) == 0) in_label = k;
    if (n - (in_label >= 0) != dim || nt - 1 != dim) {
        rc = fail("%s: %d feature columns; the model takes %lld (the training CSV's columns but its label '%s')", path,
                  n - (in_label >= 0), (long long)dim, tf[label]);
        goto done;
    }
    for (int k = 0, j = 0; k < n; k++) { /* the feature names, in the training order */
        if (k == in_label) continue;
        if (j == label) j++;
        if (strcmp(f[k], tf[j]) != 0) {
            rc = fail("%s: column %d is '%s', but the training CSV's feature there is '%s'", path, k + 1, f[k], tf[j]);
            goto done;
        }
        j++;
    }
    if (!(want = malloc((size_t)dim * sizeof *want))) {
        rc = fail("%s: out of memory", path);
        goto done;
    }
    for (int k = 0, j = 0; k < nt; k++)
        if (k != label) want[j++] = tf[k];
    s = syn_dataset_load_csv_columns(path, want, (int)dim, 0, out);
    rc = s == SYN_OK ? -1 : runtime_error(s);
done:
    free(want);
    syn_csv_header_free(f, n);
    return rc;
}

/* INPUT by its content: a PNG signature, an IDX magic number, else CSV text;
 * checked against what the model was trained on. */
static int read_input(const train_opts *o, const char *path, const syn_dataset *train, const train_columns *tc,
                      syn_dataset **out, const char **kind) {
    gzFile f = gzopen(path, "rb");
    if (!f) return fail("%s: cannot open: %s", path, strerror(errno));
    unsigned char b[8];
    int n = gzread(f, b, 8);
    gzclose(f);
    if (n < 0) return fail("%s: cannot read it", path);
    int rc;
    char a[64], c[64];
    syn_shape ts = train->sample_shape;
    if (n == 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
        *kind = "png";
        float *img;
        int ch, h, w;
        syn_status s = syn_png_read(path, &img, &ch, &h, &w);
        if (s != SYN_OK) return runtime_error(s);
        syn_dataset *ds = dataset_new(1, syn_shape3(ch, h, w));
        if (!ds) {
            free(img);
            return fail("%s: out of memory", path);
        }
        memcpy(ds->x, img, (size_t)ds->dim * sizeof(float));
        free(img);
        *out = ds;
    } else if (n >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0x08) {
        *kind = "idx";
        if ((rc = read_idx(path, out)) >= 0) return rc;
    } else {
        *kind = "csv";
        if (!o->csv)
            return fail("%s: a CSV table, but the model was trained on images (%s): give an IDX file or a PNG", path,
                        o->data);
        return read_csv(path, tc, train->dim, out);
    }
    /* images: the training samples' shape exactly */
    syn_shape is = (*out)->sample_shape;
    if (ts.ndim != 3 && o->csv) {
        syn_dataset_free(*out);
        *out = NULL;
        return fail("%s: images, but the model was trained on the rows of %s: give a CSV table", path, o->csv);
    }
    if (!syn_shape_equal(&is, &ts)) {
        syn_shape_str(&is, a, sizeof a);
        syn_shape_str(&ts, c, sizeof c);
        syn_dataset_free(*out);
        *out = NULL;
        return fail("%s: images of %s (C,H,W); the model takes %s (images are not resized)", path, a, c);
    }
    return -1;
}

/* One input's result: the class and the top-K softmax probabilities, or the
 * regression targets. */
static void print_result(const predict_opts *po, int64_t index, const float *y, int64_t out, bool classify) {
    if (!classify) {
        if (po->json) printf("{\"index\":%lld,\"value\":%s", (long long)index, out > 1 ? "[" : "");
        else printf("%lld:", (long long)index);
        for (int64_t j = 0; j < out; j++)
            printf(po->json ? "%s%.9g" : "%s%.6g", po->json ? (j ? "," : "") : (j ? ", " : " "), (double)y[j]);
        puts(po->json ? (out > 1 ? "]}" : "}") : "");
        return;
    }
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < out; j++) mx = y[j] > mx ? y[j] : mx;
    for (int64_t j = 0; j < out; j++) sum += exp((double)y[j] - mx);
    int64_t k = po->top < out ? po->top : out, best[64];
    for (int64_t t = 0; t < k; t++) { /* the t-th largest: the first index wins ties, as argmax does */
        int64_t arg = -1;
        for (int64_t j = 0; j < out; j++) {
            bool used = false;
            for (int64_t u = 0; u < t; u++) used |= best[u] == j;
            if (!used && (arg < 0 || y[j] > y[arg])) arg = j;
        }
        best[t] = arg;
    }
    double p0 = exp((double)y[best[0]] - mx) / sum;
    if (po->json) printf("{\"index\":%lld,\"class\":%lld,\"probability\":%.6g,\"top\":[", (long long)index,
                         (long long)best[0], p0);
    else printf("%lld: class %lld (%.4f)", (long long)index, (long long)best[0], p0);
    for (int64_t t = 0; t < k && (po->json || k > 1); t++) {
        double p = exp((double)y[best[t]] - mx) / sum;
        if (po->json) printf("%s{\"class\":%lld,\"probability\":%.6g}", t ? "," : "", (long long)best[t], p);
        else printf("%s%lld %.4f", t ? ", " : "  top: ", (long long)best[t], p);
    }
    puts(po->json ? "]}" : "");
}

/* The network's outputs for every input, a batch at a time, on a graph of its
 * own sharing the loaded parameters (the train_net's graph ends in a loss). */
static int run_predict(const train_opts *o, const predict_opts *po, syn_device dev, train_net *net,
                       const syn_dataset *in, int64_t first, int64_t out) {
    syn_graph *g = NULL;
    float *y = NULL;
    syn_status s = syn_graph_create(net->params, &g);
    syn_node *x = NULL, *logits = NULL;
    if (s == SYN_OK) {
        x = syn_input(g, "x", SYN_F32, net->xs);
        logits = net->md ? syn_model_build(g, net->md, x)
                         : syn_mlp(g, x, o->hidden, o->n_hidden, out, o->act, o->dropout);
        s = syn_graph_status(g);
    }
    if (s == SYN_OK) s = syn_graph_keep(g, logits);
    syn_compile_opts co = {true};
    if (s == SYN_OK) s = syn_graph_compile(g, dev, &co);
    int64_t batch = net->xs.dim[0];
    if (s == SYN_OK && !(y = malloc((size_t)(batch * out) * sizeof *y))) s = SYN_ERR_OOM;
    if (s == SYN_OK) syn_graph_set_training(g, false);
    for (int64_t b0 = 0; s == SYN_OK && b0 < in->n; b0 += batch) {
        int64_t k = in->n - b0 < batch ? in->n - b0 : batch;
        syn_shape xs = net->xs;
        xs.dim[0] = k;
        s = syn_graph_feed(g, x, in->x + b0 * in->dim, xs);
        if (s == SYN_OK) s = syn_graph_forward(g);
        if (s == SYN_OK) s = syn_graph_read(g, logits, y, (size_t)(k * out) * sizeof *y);
        for (int64_t r = 0; s == SYN_OK && r < k; r++) print_result(po, first + b0 + r, y + r * out, out, net->classify);
    }
    fflush(stdout);
    free(y);
    syn_graph_free(g);
    if (s == SYN_ERR_OOM && !y) return fail("out of memory for the outputs");
    return s == SYN_OK ? 0 : runtime_error(s);
}

int cmd_predict(int argc, char **argv) {
    const char *U = predict_usage_text;
    predict_opts po = {3, -1, false, NULL};
    const char *pos[4];
    int npos = 0, ac = 1;
    char **av = calloc((size_t)argc + 1, sizeof *av);
    if (!av) return fail("out of memory");
    av[0] = argv[0];
    int rc = -1;
    /* predict's own options and INPUT out, the rest to train_parse (eval's rules) */
    for (int i = 1; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (++i < argc) npos < 4 ? (void)(pos[npos++] = argv[i]) : (void)npos++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (npos < 4) pos[npos] = a;
            npos++;
            continue;
        }
        if (strcmp(a, "-h") == 0) a = "--help";
        int k = a[1] == '-' ? find_flag(a) : -1;
        if (k < 0) { /* -q and unknown options: train_parse takes or reports them */
            av[ac++] = argv[i];
            continue;
        }
        const char *name = train_flags[k].name, *eq = strchr(a, '='), *val = NULL;
        if (train_flags[k].train_only) {
            rc = usage_error(U, "--%s is a train option, not a predict one", name);
            break;
        }
        if (strcmp(name, "help") == 0) {
            fputs(U, stdout);
            rc = 0;
            break;
        }
        if (train_flags[k].value) {
            val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
            if (!val) {
                rc = usage_error(U, "option %s needs a value", a);
                break;
            }
        }
        bool mine = strcmp(name, "top") == 0 || strcmp(name, "index") == 0 || strcmp(name, "json") == 0;
        if (!mine) av[ac++] = argv[i];
        if (val && !eq) {
            i++;
            if (!mine) av[ac++] = argv[i];
        }
        if (strcmp(name, "json") == 0) po.json = true;
        else if (strcmp(name, "top") == 0 && (!parse_i64(val, 1, &po.top) || po.top > 64))
            rc = usage_error(U, "--top must be in 1..64, got '%s'", val);
        else if (strcmp(name, "index") == 0 && !parse_i64(val, 0, &po.index))
            rc = usage_error(U, "--index must be a non-negative integer, got '%s'", val);
    }
    if (rc < 0 && npos != 3) rc = usage_error(U, "%s", "predict wants MODEL (a model file or mlp), CKPT and INPUT");
    if (rc >= 0) {
        free(av);
        return rc;
    }
    av[ac++] = (char *)pos[0];
    av[ac++] = (char *)pos[1];
    po.input = pos[2];
    train_opts o;
    rc = train_parse(ac, av, &o, U);
    free(av); /* o points into argv's strings, not into av */
    if (rc >= 0) return rc;

    syn_device dev;
    if ((rc = pick_device(o.device, &dev)) >= 0) return rc;
    train_net net;
    if ((rc = train_net_load(&o, &net)) >= 0) return rc;
    syn_dataset *train = NULL, *in = NULL, shape;
    syn_norm_stats *st = NULL;
    train_columns tc = {NULL, 0, -1};
    const char *kind = "";
    if ((rc = training_facts(&o, &st, &shape, &train, &tc)) >= 0) goto done;
    if ((rc = read_input(&o, po.input, &shape, &tc, &in, &kind)) >= 0) goto done;
    int64_t first = 0;
    if (po.index >= 0) { /* keep input `index` only */
        if (po.index >= in->n) {
            rc = fail("%s: --index %lld, but it holds %lld inputs", po.input, (long long)po.index, (long long)in->n);
            goto done;
        }
        memmove(in->x, in->x + po.index * in->dim, (size_t)in->dim * sizeof(float));
        in->n = 1;
        first = po.index;
    }
    /* train's statistics (tables per column) */
    syn_status s = syn_dataset_standardize_with(in, st);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    if ((rc = train_net_build(&o, dev, &shape, true, &net)) >= 0) goto done;
    syn_checkpoint_info info;
    bool ckpt;
    if ((rc = load_weights(&o, &net, &ckpt, &info)) >= 0) goto done;
    if (!o.quiet)
        fprintf(stderr, "synapse: %s from %s%s; %lld input%s from %s (%s)\n", net.name, o.resume,
                ckpt ? " (checkpoint)" : "", (long long)in->n, in->n == 1 ? "" : "s", po.input, kind);
    rc = run_predict(&o, &po, dev, &net, in, first, net.classify ? shape.num_classes : shape.target_dim);
done:
    train_net_free(&net);
    syn_dataset_free(train);
    syn_dataset_free(in);
    syn_norm_stats_free(st);
    syn_csv_header_free(tc.names, tc.n);
    return rc;
}
