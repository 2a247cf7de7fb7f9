/* `synapse eval MODEL CKPT`: rebuilds the network train built (a model file,
 * or the MLP from --hidden/--activation), loads the weights of a checkpoint
 * (or of a parameter file) and reports the test set's loss and accuracy as
 * one JSON line on stdout. `synapse predict MODEL CKPT INPUT`: the same
 * network's outputs for new inputs (an IDX images file, a CSV table or a
 * PNG), standardised with the training data's statistics as train did: those
 * the checkpoint records, or (older checkpoints, parameter files) recomputed
 * from the training data. */
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
    "  --data, --data-dir, --images, --test-images, --csv, --label, --regression,\n"
    "  --test-fraction, --seed  the data, as for train (a split depends on --seed)\n"
    "  --hidden, --activation, --dropout, --loss\n"
    "                           the MLP, as for train\n"
    "  --batch-size N           (default 128)\n"
    "  --device D               cpu|cuda|cuda:N (default cpu)\n"
    "  --quiet                  no header\n"
    "  --help                   this text\n"
    "\n"
    "The last line on stdout is one JSON object with the results.\n";

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

/* The training CSV's columns: its header, and the label's index in it. */
typedef struct {
    char **names;
    int n, label;
} train_columns;

/* What CKPT holds besides the weights, read from one open of the file. */
typedef struct {
    bool ckpt;             /* a checkpoint (else a parameter file) */
    syn_norm_stats *stats; /* the inputs' standardisation; NULL: not recorded (an older
                              checkpoint, a parameter file) */
    bool have_data;        /* train's record of its data (DATA_* in train_cli.h): */
    syn_dataset shape;     /*   a data set of no rows with the training set's sample
                              shape and outputs */
    train_columns tc;      /*   a CSV: the training header and its label's index */
    char **classes;        /*   images: the classes' names (num_classes), else NULL */
} ckpt_meta;

static void ckpt_meta_free(ckpt_meta *m) {
    syn_norm_stats_free(m->stats);
    syn_csv_header_free(m->tc.names, m->tc.n);
    syn_image_folder_classes_free(m->classes, m->classes ? m->shape.num_classes : 0);
    memset(m, 0, sizeof *m);
    m->tc.label = -1;
}

/* A metadata integer in [lo, hi], or -1. */
static int64_t meta_int(const syn_safetensors *f, const char *key, int64_t lo, int64_t hi) {
    char full[64];
    snprintf(full, sizeof full, "data.%s", key);
    const char *v = syn_safetensors_metadata(f, full);
    int64_t x;
    return v && parse_i64(v, lo, &x) && x <= hi ? x : -1;
}

/* train's record of its data in f, if it has one, into m. -1 to go on, 1
 * (the error printed) if the record is damaged. */
static int read_data_record(const train_opts *o, const syn_safetensors *f, ckpt_meta *m) {
    const char *sh = syn_safetensors_metadata(f, "data." DATA_SHAPE);
    if (!sh) return -1;
    syn_dataset *shape = &m->shape;
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
    if (shape->dim < 1 || out < 1 || (ss.ndim == 3) == (o->csv != NULL))
        return fail("%s: its record of the training data (data.*) is damaged or is not for %s", o->resume,
                    o->csv ? "a CSV table" : "images");
    if (o->regression) shape->target_dim = out;
    else shape->num_classes = (int)out;
    if (o->csv) {
        int64_t n = meta_int(f, DATA_COLUMNS, 2, 1 << 24), lab = meta_int(f, DATA_LABEL, 0, n - 1);
        if (n < 0 || lab < 0 || n - 1 != shape->dim || !(m->tc.names = calloc((size_t)n, sizeof *m->tc.names)))
            return fail("%s: its record of the training CSV's columns (data.*) is damaged", o->resume);
        m->tc.n = (int)n;
        m->tc.label = (int)lab;
        char key[64];
        for (int k = 0; k < n; k++) {
            snprintf(key, sizeof key, "data." DATA_COLUMN "%d", k);
            const char *v = syn_safetensors_metadata(f, key);
            if (!v || !(m->tc.names[k] = strdup(v)))
                return fail("%s: its record of the training CSV's columns lacks '%s'", o->resume, key);
        }
    }
    char key[64];
    snprintf(key, sizeof key, "data." DATA_CLASS "0");
    if (!o->csv && !o->regression && syn_safetensors_metadata(f, key)) { /* the classes' names (DATA_CLASS) */
        if (!(m->classes = calloc((size_t)shape->num_classes, sizeof *m->classes)))
            return fail("%s: out of memory", o->resume);
        for (int k = 0; k < shape->num_classes; k++) {
            snprintf(key, sizeof key, "data." DATA_CLASS "%d", k);
            const char *v = syn_safetensors_metadata(f, key);
            if (!v || !(m->classes[k] = strdup(v)))
                return fail("%s: its record of the classes' names lacks '%s'", o->resume, key);
        }
    }
    m->have_data = true;
    return -1;
}

/* CKPT's metadata, from one open of the file (the weights are loaded later,
 * into the network built for them). -1 to go on, else an exit code (the
 * error printed, m freed). */
static int ckpt_meta_read(const train_opts *o, ckpt_meta *m) {
    memset(m, 0, sizeof *m);
    m->tc.label = -1;
    syn_safetensors *f = NULL;
    syn_status s = syn_safetensors_open(o->resume, &f);
    if (s == SYN_OK) s = syn_checkpoint_read_stats(f, o->resume, &m->stats);
    int rc = s == SYN_OK ? read_data_record(o, f, m) : runtime_error(s);
    m->ckpt = f && syn_safetensors_metadata(f, "epoch") != NULL;
    syn_safetensors_close(f);
    if (rc >= 0) ckpt_meta_free(m);
    return rc;
}

/* Loads o->resume into the built network: a checkpoint (its model must be
 * this one), or a parameter file (then only names and shapes are checked).
 * -1 to go on, else an exit code (the error printed). */
static int load_weights(const train_opts *o, train_net *net, bool ckpt, syn_checkpoint_info *info) {
    syn_status s = ckpt ? syn_checkpoint_load(o->resume, net->params, NULL, info)
                        : syn_params_load(net->params, o->resume, true);
    if (s != SYN_OK) return runtime_error(s);
    if (ckpt && strcmp(info->model, net->desc) != 0)
        return fail("%s was written for another model (%.200s) than this one (%.200s)", o->resume, info->model,
                    net->desc);
    return -1;
}

int cmd_eval(int argc, char **argv) {
    train_opts o;
    int rc = train_parse(argc, argv, &o, eval_usage_text);
    if (rc >= 0) return rc;
    syn_device dev;
    if ((rc = pick_device(o.device, &dev)) >= 0) return rc;
    syn_dataset *train = NULL, *test = NULL;
    ckpt_meta meta;
    train_net net;
    if ((rc = train_net_load(&o, &net)) >= 0) return rc;
    if ((rc = ckpt_meta_read(&o, &meta)) >= 0) {
        train_net_free(&net);
        return rc;
    }
    /* The statistics the checkpoint records, else the training set's. */
    syn_status s = meta.stats ? train_load_test(&o, meta.stats, &test) : train_load_data(&o, &train, &test, NULL);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    const syn_dataset *shape = meta.have_data ? &meta.shape : train ? train : test;
    if ((rc = train_net_build(&o, dev, shape, NET_EVAL, &net)) >= 0) goto done;
    syn_checkpoint_info info;
    if ((rc = load_weights(&o, &net, meta.ckpt, &info)) >= 0) goto done;
    if (!o.quiet)
        fprintf(stderr, "synapse: %s, %lld parameters, from %s%s; %lld test samples\n", net.name,
                (long long)syn_params_numel(net.params), o.resume, meta.ckpt ? " (checkpoint)" : "",
                (long long)test->n);
    float loss, acc;
    s = syn_evaluate(&net.m, test, o.batch, &loss, &acc);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    char devname[32];
    syn_device_str(dev, devname, sizeof devname);
    printf("{\"model\":\"%s\",\"device\":\"%s\"", net.name, devname);
    if (meta.ckpt) printf(",\"epoch\":%lld,\"step\":%lld", (long long)info.epoch, (long long)info.step);
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
    ckpt_meta_free(&meta);
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
    "  --saliency FILE.png      images, classified: also write each input's saliency map,\n"
    "                           |dL/dx| for L = -log p(predicted class), the largest over\n"
    "                           the channels, scaled to its maximum (one grid, input order)\n"
    "  --data, --data-dir, --csv, --label, --regression, --test-fraction, --seed\n"
    "                           the training data, as for train\n"
    "  --hidden, --activation, --dropout, --loss\n"
    "                           the MLP, as for train\n"
    "  --batch-size N           inputs per forward pass (default 128)\n"
    "  --device D               cpu|cuda|cuda:N (default cpu)\n"
    "  --quiet                  no header on stderr\n"
    "  --help                   this text\n";

/* predict's own options; the others are train's (train_longopts). */
static const struct option predict_longopts[] = {
    {"top", required_argument, 0, 0}, {"index", required_argument, 0, 0}, {"json", no_argument, 0, 0},
    {"saliency", required_argument, 0, 0}, {0, 0, 0, 0}};

/* The option "--name[=v]" is: an exact name, else a unique prefix (as
 * getopt_long takes it), among train's options and predict's own; *mine:
 * one of predict's. NULL if none or ambiguous. */
static const struct option *find_flag(const char *arg, bool *mine) {
    static const struct option *const tables[] = {train_longopts, predict_longopts};
    size_t len = strcspn(arg + 2, "=");
    const struct option *hit = NULL;
    bool ambiguous = false;
    for (int t = 0; t < 2; t++)
        for (const struct option *q = tables[t]; q->name; q++) {
            if (strncmp(q->name, arg + 2, len) != 0) continue;
            if (strlen(q->name) == len) {
                *mine = t == 1;
                return q;
            }
            ambiguous |= hit != NULL;
            hit = q;
            *mine = t == 1;
        }
    return ambiguous ? NULL : hit;
}

typedef struct {
    int64_t top, index; /* index -1: every input */
    bool json;
    const char *input;
    const char *saliency; /* --saliency: the PNG of the maps */
} predict_opts;

/* What predict takes from the training data: its standardisation, shapes and
 * (a CSV) columns, from the checkpoint's record of them (in m), else from the
 * data (an older checkpoint, a parameter file): then the training set,
 * standardised as train did, in *train and its facts in m. -1 to go on, else
 * an exit code (the error printed). */
static int training_facts(const train_opts *o, ckpt_meta *m, syn_dataset **train) {
    *train = NULL;
    if (m->stats && m->have_data) return -1;
    syn_norm_stats_free(m->stats);
    m->stats = NULL;
    syn_csv_header_free(m->tc.names, m->tc.n);
    m->tc = (train_columns){NULL, 0, -1};
    syn_dataset *test = NULL;
    syn_status s = train_load_data(o, train, &test, &m->stats);
    syn_dataset_free(test);
    if (s == SYN_OK && o->csv) s = train_csv_header(o, &m->tc.names, &m->tc.n, &m->tc.label);
    if (s != SYN_OK) return runtime_error(s);
    m->shape = **train; /* its shapes and outputs, not its rows */
    m->shape.n = 0;
    m->shape.x = NULL;
    m->shape.labels = NULL;
    m->shape.targets = NULL;
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
        syn_status s = syn_dataset_load_idx_images(path, out);
        if (s != SYN_OK) return runtime_error(s);
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
static void print_result(const predict_opts *po, int64_t index, const float *y, int64_t out, bool classify,
                         char *const *names) {
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
    char name[256] = "";
    if (names) json_clean_string(name, sizeof name, names[best[0]]);
    if (po->json) {
        printf("{\"index\":%lld,\"class\":%lld", (long long)index, (long long)best[0]);
        if (names) printf(",\"name\":\"%s\"", name);
        printf(",\"probability\":%.6g,\"top\":[", p0);
    } else {
        printf("%lld: class %lld%s%s (%.4f)", (long long)index, (long long)best[0], names ? " " : "",
               names ? names[best[0]] : "", p0);
    }
    for (int64_t t = 0; t < k && (po->json || k > 1); t++) {
        double p = exp((double)y[best[t]] - mx) / sum;
        if (po->json) {
            printf("%s{\"class\":%lld", t ? "," : "", (long long)best[t]);
            if (names) {
                json_clean_string(name, sizeof name, names[best[t]]);
                printf(",\"name\":\"%s\"", name);
            }
            printf(",\"probability\":%.6g}", p);
        } else {
            printf("%s%lld%s%s %.4f", t ? ", " : "  top: ", (long long)best[t], names ? " " : "",
                   names ? names[best[t]] : "", p);
        }
    }
    puts(po->json ? "]}" : "");
}

/* The network's outputs for every input, a batch at a time, through the
 * network's graph (built for predict: x -> logits). */
/* --saliency for a batch of k images (C, H, W) = ss, whose pass has run up to
 * the logits (in y): the predicted classes as labels, the loss node alone
 * (resuming the pass), a backward pass from -log p(class), and each input's
 * map max_c |dL/dx[c]| scaled to its maximum into maps (k, H, W). */
static syn_status saliency(train_net *net, syn_shape ss, int64_t k, int64_t out, const float *y, int32_t *labels,
                           float *grad, float *maps) {
    const int64_t C = ss.dim[0], hw = ss.dim[1] * ss.dim[2];
    for (int64_t r = 0; r < k; r++) {
        int32_t best = 0;
        for (int64_t j = 1; j < out; j++)
            if (y[r * out + j] > y[r * out + best]) best = (int32_t)j;
        labels[r] = best;
    }
    syn_graph *g = net->graph;
    syn_status s = syn_graph_feed(g, net->m.y, labels, syn_shape1(k));
    if (s == SYN_OK) s = syn_graph_forward_to(g, net->m.loss, true);
    if (s == SYN_OK) s = syn_graph_backward(g, net->m.loss);
    if (s == SYN_OK) s = syn_graph_read_grad(g, net->m.x, grad, (size_t)(k * C * hw) * sizeof *grad);
    for (int64_t r = 0; s == SYN_OK && r < k; r++) {
        float *m = maps + r * hw, top = 0.0f;
        for (int64_t p = 0; p < hw; p++) {
            m[p] = 0.0f;
            for (int64_t c = 0; c < C; c++) m[p] = fmaxf(m[p], fabsf(grad[(r * C + c) * hw + p]));
            top = fmaxf(top, m[p]);
        }
        for (int64_t p = 0; p < hw && top > 0.0f; p++) m[p] /= top;
    }
    return s;
}

static int run_predict(const predict_opts *po, train_net *net, const syn_dataset *in, int64_t first, int64_t out,
                       char *const *names) {
    syn_graph *g = net->graph;
    syn_node *x = net->m.x, *logits = net->m.logits;
    int64_t batch = net->xs.dim[0];
    float *y = malloc((size_t)(batch * out) * sizeof *y), *grad = NULL, *maps = NULL;
    int32_t *labels = NULL;
    const syn_shape ss = in->sample_shape; /* (C, H, W) with --saliency */
    const int64_t hw = po->saliency ? ss.dim[1] * ss.dim[2] : 0;
    if (po->saliency) {
        labels = calloc((size_t)batch, sizeof *labels);
        grad = malloc((size_t)(batch * in->dim) * sizeof *grad);
        maps = malloc((size_t)(in->n * hw) * sizeof *maps);
    }
    if (!y || (po->saliency && (!labels || !grad || !maps))) {
        free(y), free(labels), free(grad), free(maps);
        return fail("out of memory for the outputs");
    }
    syn_graph_set_training(g, false); /* batch norm's running statistics, no dropout: backward included */
    syn_status s = SYN_OK;
    for (int64_t b0 = 0; s == SYN_OK && b0 < in->n; b0 += batch) {
        int64_t k = in->n - b0 < batch ? in->n - b0 : batch;
        syn_shape xs = net->xs;
        xs.dim[0] = k;
        s = syn_graph_feed(g, x, in->x + b0 * in->dim, xs);
        if (s == SYN_OK) s = po->saliency ? syn_graph_forward_to(g, logits, false) : syn_graph_forward(g);
        if (s == SYN_OK) s = syn_graph_read(g, logits, y, (size_t)(k * out) * sizeof *y);
        for (int64_t r = 0; s == SYN_OK && r < k; r++)
            print_result(po, first + b0 + r, y + r * out, out, net->classify, names);
        if (s == SYN_OK && po->saliency)
            s = saliency(net, ss, k, out, y, labels, grad, maps + b0 * hw);
    }
    fflush(stdout);
    if (s == SYN_OK && po->saliency) {
        s = syn_png_write_grid(po->saliency, maps, (int)in->n, 1, (int)ss.dim[1], (int)ss.dim[2], 0, 0.0f, 1.0f);
        if (s == SYN_OK)
            fprintf(stderr, "synapse: saliency maps of %lld input%s written to %s\n", (long long)in->n,
                    in->n == 1 ? "" : "s", po->saliency);
    }
    free(y), free(labels), free(grad), free(maps);
    return s == SYN_OK ? 0 : runtime_error(s);
}

int cmd_predict(int argc, char **argv) {
    const char *U = predict_usage_text;
    predict_opts po = {3, -1, false, NULL, NULL};
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
        bool mine = false;
        const struct option *q = a[1] == '-' ? find_flag(a, &mine) : NULL;
        if (!q) { /* -q and unknown options: train_parse takes or reports them */
            av[ac++] = argv[i];
            continue;
        }
        const char *name = q->name, *eq = strchr(a, '='), *val = NULL;
        if (!mine && train_option_only(q->val)) {
            rc = usage_error(U, "--%s is a train option, not a predict one", name);
            break;
        }
        if (strcmp(name, "help") == 0) {
            fputs(U, stdout);
            rc = 0;
            break;
        }
        if (q->has_arg == required_argument) {
            val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
            if (!val) {
                rc = usage_error(U, "option %s needs a value", a);
                break;
            }
        }
        if (!mine) av[ac++] = argv[i];
        if (val && !eq) {
            i++;
            if (!mine) av[ac++] = argv[i];
        }
        if (strcmp(name, "json") == 0) po.json = true;
        else if (strcmp(name, "saliency") == 0) po.saliency = val;
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
    ckpt_meta meta;
    if ((rc = ckpt_meta_read(&o, &meta)) >= 0) {
        train_net_free(&net);
        return rc;
    }
    syn_dataset *train = NULL, *in = NULL;
    const char *kind = "";
    if ((rc = training_facts(&o, &meta, &train)) >= 0) goto done;
    if ((rc = read_input(&o, po.input, &meta.shape, &meta.tc, &in, &kind)) >= 0) goto done;
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
    syn_status s = syn_dataset_standardize_with(in, meta.stats);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    if (po.saliency && (o.regression || meta.shape.sample_shape.ndim != 3)) {
        rc = fail("--saliency maps a classifier's image inputs; this model %s", o.regression ? "is a regressor"
                                                                                              : "takes table rows");
        goto done;
    }
    if ((rc = train_net_build(&o, dev, &meta.shape, po.saliency ? NET_SALIENCY : NET_PREDICT, &net)) >= 0) goto done;
    syn_checkpoint_info info;
    if ((rc = load_weights(&o, &net, meta.ckpt, &info)) >= 0) goto done;
    if (!o.quiet)
        fprintf(stderr, "synapse: %s from %s%s; %lld input%s from %s (%s)\n", net.name, o.resume,
                meta.ckpt ? " (checkpoint)" : "", (long long)in->n, in->n == 1 ? "" : "s", po.input, kind);
    rc = run_predict(&po, &net, in, first, net.classify ? meta.shape.num_classes : meta.shape.target_dim, meta.classes);
done:
    train_net_free(&net);
    syn_dataset_free(train);
    syn_dataset_free(in);
    ckpt_meta_free(&meta);
    return rc;
}
