/* The synapse command-line tool: `info` (version, backends, devices),
 * `train` (an MLP, or a model file, on Fashion-MNIST or a CSV table, progress
 * on stderr, one JSON summary line on stdout) and `summary` (a model file's
 * layers, shapes, parameters and FLOPs). Exit codes: 0 ok, 1 runtime failure,
 * 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "synapse/synapse.h"
#include "cli.h"
#include "train_cli.h"

static const char usage_text[] =
    "usage: synapse <command> [options]\n"
    "\n"
    "commands:\n"
    "  info                 version, backends built and devices found\n"
    "  train [options]      train an MLP (see synapse train --help)\n"
    "  train MODEL.cfg [options]\n"
    "                       train the network a model file describes (models/*.cfg)\n"
    "  eval MODEL CKPT [options]\n"
    "                       test-set loss and accuracy of a checkpoint (MODEL: a model file or mlp)\n"
    "  predict MODEL CKPT INPUT [--top K] [--json] [--saliency FILE.png]\n"
    "                       classes or values for an IDX, CSV or PNG input (see synapse predict --help)\n"
    "  summary MODEL.cfg [--input C,H,W] [--batch N]\n"
    "                       a model file's layers, output shapes, parameters and FLOPs\n"
    "  gan [options]        train a GAN, sample grids per epoch (see synapse gan --help)\n"
    "  sample --model M GENERATOR.safetensors [-n N] [--out FILE.png]\n"
    "                       images from a generator saved by synapse gan\n"
    "  charlm [options]     train a character-level language model (see synapse charlm --help)\n"
    "  complete MODEL PROMPT [-n N] [--temperature T] [--top-k K]\n"
    "                       continue a prompt with a saved character model\n"
    "  forecast --csv FILE --column C [options]\n"
    "                       forecast the next value of a CSV column's series (see synapse forecast --help)\n"
    "  bench [--device cpu|cuda|all] [--workload NAME ...] [--json FILE] [--quick] [--list]\n"
    "                       benchmarks verified against the CPU, with PyTorch beside them (see synapse bench --help)\n"
    "  --version            print the version\n"
    "  --help               this text\n"
    "\n"
    "Where OpenBLAS took pre-AVX kernels on a CPU with AVX2 (a CPU model it does not\n"
    "know) and OPENBLAS_CORETYPE is unset, synapse restarts itself with\n"
    "OPENBLAS_CORETYPE=Haswell (SkylakeX with AVX-512): GEMMs several times faster.\n"
    "Set OPENBLAS_CORETYPE yourself to choose (synapse info shows the kernels).\n";

static const char train_usage_text[] =
    "usage: synapse train [MODEL.cfg] [options]\n"
    "\n"
    "Without MODEL.cfg the model is an MLP (--hidden, --activation, --dropout); with\n"
    "it, the network the file describes (see models/), its input shape taken from\n"
    "the data set (Fashion-MNIST: 1,28,28; an image folder: its images' C,H,W; a CSV\n"
    "table: its number of columns).\n"
    "\n"
    "data:\n"
    "  --data fashion-mnist|cifar10\n"
    "                           the data set (default fashion-mnist)\n"
    "  --data-dir DIR           its files: Fashion-MNIST's (default $SYN_FASHION_MNIST_DIR, else\n"
    "                           " SYN_FASHION_MNIST_DIR "); CIFAR-10's binary version\n"
    "                           (data_batch_1..5.bin, test_batch.bin; no default)\n"
    "  --images DIR             an image folder instead: DIR/<class>/<image>.png, one\n"
    "                           subfolder per class, every image the same size\n"
    "  --test-images DIR        its test folder, same classes (default: --test-fraction of DIR)\n"
    "  --csv FILE               a CSV table with a header row instead\n"
    "  --label COL              the CSV label column (name or 0-based index; required with --csv)\n"
    "  --regression             the label is a numeric target (default: class labels)\n"
    "  --test-fraction F        rows of the CSV (or images) held out for testing (default 0.2)\n"
    "model (the MLP):\n"
    "  --hidden 256,128         hidden layer sizes (default 256,128)\n"
    "  --activation A           relu|sigmoid|tanh|gelu|leaky_relu (default relu)\n"
    "  --dropout P              dropout after each hidden layer (default 0)\n"
    "  --loss L                 ce (classification, the default) | mse|sse (regression, mse default)\n"
    "training:\n"
    "  --optimizer O            sgd|rmsprop|adam|adamw (default adam)\n"
    "  --lr LR                  learning rate (default: the optimizer's, e.g. adam 1e-3)\n"
    "  --momentum M             SGD momentum (default 0)\n"
    "  --weight-decay WD        weight decay (default: the optimizer's)\n"
    "  --epochs N               (default 10)\n"
    "  --batch-size N           (default 128)\n"
    "  --seed S                 initialisation, shuffling, split and dropout (default 1)\n"
    "  --min-error E            stop once the epoch's train loss is <= E\n"
    "  --patience N             stop after N epochs without a better test loss\n"
    "  --clip NORM              clip the global gradient norm\n"
    "  --nesterov               SGD with Nesterov momentum\n"
    "  --crop-pad N             augment: random crops from images zero-padded by N pixels\n"
    "  --flip                   augment: random horizontal flips\n"
    "  --schedule S             constant|step|cosine|onecycle (default constant); onecycle\n"
    "                           warms up over 30% of the steps, then anneals by cosine; step multiplies\n"
    "                           the rate by 0.1 every third of the epochs\n"
    "  --warmup N               linear warm-up over N steps\n"
    "  --device D               cpu|cuda|cuda:N (default cpu)\n"
    "  --cuda-graphs            on a GPU, replay each training step from a captured CUDA\n"
    "                           graph: one launch per step instead of one per kernel\n"
    "  --save CKPT              write a checkpoint (weights, optimizer state, progress,\n"
    "                           the inputs' standardisation) after every epoch, atomically\n"
    "  --resume CKPT            continue the run CKPT holds (same model, data and\n"
    "                           optimizer flags; --epochs counts the total)\n"
    "  --quiet                  no header, no progress\n"
    "  --help                   this text\n"
    "\n"
    "Data-parallel: started by an MPI launcher (mpirun -np N synapse train ...), the N\n"
    "processes train one model, each on its share of every batch (--batch-size is the\n"
    "whole batch); with --device cuda each takes the GPU of its rank on the machine.\n"
    "Process 0 writes the output and the checkpoints.\n"
    "\n"
    "The last line on stdout is one JSON object with the results.\n";

/* ---- info ------------------------------------------------------------------ */

static int cmd_info(void) {
    char buf[512];
    printf("synapse %s\n", syn_version());
    printf("backends: cpu%s\n", syn_backend_built(SYN_DEVICE_CUDA) ? ", cuda" : "");
    if (syn_device_describe(syn_cpu(), buf, sizeof buf) == SYN_OK) printf("cpu: %s\n", buf);
    else printf("cpu: (no description: %s)\n", syn_last_error());
    if (!syn_backend_built(SYN_DEVICE_CUDA)) {
        printf("cuda: CUDA backend not built\n");
        return 0;
    }
    int n = syn_device_count(SYN_DEVICE_CUDA);
    if (n == 0) printf("cuda: no CUDA device\n");
    for (int i = 0; i < n; i++) {
        if (syn_device_describe(syn_cuda(i), buf, sizeof buf) == SYN_OK) printf("cuda:%d: %s\n", i, buf);
        else printf("cuda:%d: (no description: %s)\n", i, syn_last_error());
    }
    return 0;
}

/* ---- train: options ---------------------------------------------------------- */

static bool parse_hidden(const char *s, train_opts *o) {
    char *end;
    o->n_hidden = 0;
    if (strcmp(s, "none") == 0 || *s == '\0') return true;
    for (;;) {
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v < 1 || o->n_hidden == MAX_HIDDEN) return false;
        o->hidden[o->n_hidden++] = v;
        if (*end == '\0') return true;
        if (*end != ',') return false;
        s = end + 1;
    }
}

enum {
    OPT_DATA = 256, OPT_DATA_DIR, OPT_CSV, OPT_LABEL, OPT_REGRESSION, OPT_TEST_FRACTION, OPT_HIDDEN,
    OPT_ACTIVATION, OPT_DROPOUT, OPT_OPTIMIZER, OPT_LR, OPT_MOMENTUM, OPT_WEIGHT_DECAY, OPT_EPOCHS,
    OPT_BATCH, OPT_SEED, OPT_MIN_ERROR, OPT_PATIENCE, OPT_CLIP, OPT_SCHEDULE, OPT_WARMUP, OPT_LOSS, OPT_DEVICE, OPT_NESTEROV, OPT_CROP_PAD, OPT_FLIP,
    OPT_SAVE, OPT_RESUME, OPT_CUDA_GRAPHS, OPT_IMAGES, OPT_TEST_IMAGES
};

const struct option train_longopts[] = {
    {"data", required_argument, 0, OPT_DATA},           {"data-dir", required_argument, 0, OPT_DATA_DIR},
    {"csv", required_argument, 0, OPT_CSV},             {"label", required_argument, 0, OPT_LABEL},
    {"images", required_argument, 0, OPT_IMAGES},       {"test-images", required_argument, 0, OPT_TEST_IMAGES},
    {"regression", no_argument, 0, OPT_REGRESSION},     {"test-fraction", required_argument, 0, OPT_TEST_FRACTION},
    {"hidden", required_argument, 0, OPT_HIDDEN},       {"activation", required_argument, 0, OPT_ACTIVATION},
    {"dropout", required_argument, 0, OPT_DROPOUT},     {"optimizer", required_argument, 0, OPT_OPTIMIZER},
    {"lr", required_argument, 0, OPT_LR},               {"momentum", required_argument, 0, OPT_MOMENTUM},
    {"weight-decay", required_argument, 0, OPT_WEIGHT_DECAY}, {"epochs", required_argument, 0, OPT_EPOCHS},
    {"batch-size", required_argument, 0, OPT_BATCH},    {"seed", required_argument, 0, OPT_SEED},
    {"min-error", required_argument, 0, OPT_MIN_ERROR}, {"patience", required_argument, 0, OPT_PATIENCE},
    {"clip", required_argument, 0, OPT_CLIP},           {"schedule", required_argument, 0, OPT_SCHEDULE},
    {"warmup", required_argument, 0, OPT_WARMUP},       {"loss", required_argument, 0, OPT_LOSS},
    {"device", required_argument, 0, OPT_DEVICE},       {"save", required_argument, 0, OPT_SAVE},
    {"resume", required_argument, 0, OPT_RESUME},       {"nesterov", no_argument, 0, OPT_NESTEROV},
    {"crop-pad", required_argument, 0, OPT_CROP_PAD},   {"flip", no_argument, 0, OPT_FLIP},       {"quiet", no_argument, 0, 'q'},
    {"cuda-graphs", no_argument, 0, OPT_CUDA_GRAPHS},   {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};

bool train_option_only(int c) {
    switch (c) {
    case OPT_OPTIMIZER: case OPT_LR: case OPT_MOMENTUM: case OPT_WEIGHT_DECAY: case OPT_EPOCHS: case OPT_MIN_ERROR:
    case OPT_PATIENCE: case OPT_CLIP: case OPT_SCHEDULE: case OPT_WARMUP: case OPT_SAVE: case OPT_RESUME:
    case OPT_NESTEROV: case OPT_CROP_PAD: case OPT_FLIP: case OPT_CUDA_GRAPHS: return true;
    default: return false;
    }
}

static const char *opt_name(int c) {
    for (const struct option *q = train_longopts; q->name; q++)
        if (q->val == c) return q->name;
    return "?";
}

int train_parse(int argc, char **argv, train_opts *o, const char *eval_usage) {
    const bool eval = eval_usage != NULL;
    const char *U = eval ? eval_usage : train_usage_text;
    memset(o, 0, sizeof *o);
    o->data = "fashion-mnist";
    o->data_dir = NULL; /* the library's default: $SYN_FASHION_MNIST_DIR, else Debian's */
    o->device = "cpu";
    o->test_fraction = 0.2f;
    o->hidden[0] = 256;
    o->hidden[1] = 128;
    o->n_hidden = 2;
    o->act = SYN_ACT_RELU;
    o->optim = SYN_OPTIM_ADAM;
    o->lr = o->momentum = o->weight_decay = -1.0f;
    o->epochs = 10;
    o->batch = 128;
    o->seed = 1;
    o->schedule = SYN_SCHED_CONSTANT;
    opterr = 0;
    optind = 1;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, ":qh", train_longopts, NULL)) != -1) {
        const char *a = optarg;
        if (eval && train_option_only(c)) return usage_error(U, "--%s is a train option, not an eval one", opt_name(c));
        switch (c) {
        case 'h': fputs(U, stdout); return 0;
        case 'q': o->quiet = true; break;
        case OPT_DATA: o->data = a; break;
        case OPT_DATA_DIR: o->data_dir = a; break;
        case OPT_CSV: o->csv = a; break;
        case OPT_IMAGES: o->images = a; break;
        case OPT_TEST_IMAGES: o->test_images = a; break;
        case OPT_LABEL: o->label = a; break;
        case OPT_REGRESSION: o->regression = true; break;
        case OPT_TEST_FRACTION:
            if (!parse_f32(a, 0.0f, &o->test_fraction) || o->test_fraction <= 0.0f || o->test_fraction >= 1.0f)
                return usage_error(U, "--test-fraction must be in (0, 1), got '%s'", a);
            break;
        case OPT_HIDDEN:
            o->mlp_flags = true;
            if (!parse_hidden(a, o)) return usage_error(U, "--hidden wants sizes like 256,128 (up to 16), got '%s'", a);
            break;
        case OPT_ACTIVATION:
            o->mlp_flags = true;
            if (syn_activation_parse(a, &o->act) != SYN_OK) return usage_error(U, "unknown --activation '%s'", a);
            break;
        case OPT_DROPOUT:
            o->mlp_flags = true;
            if (!parse_f32(a, 0.0f, &o->dropout) || o->dropout >= 1.0f)
                return usage_error(U, "--dropout must be in [0, 1), got '%s'", a);
            break;
        case OPT_OPTIMIZER:
            if (syn_optim_kind_parse(a, &o->optim) != SYN_OK) return usage_error(U, "unknown --optimizer '%s'", a);
            break;
        case OPT_LR:
            if (!parse_f32(a, 0.0f, &o->lr) || o->lr <= 0.0f) return usage_error(U, "--lr must be > 0, got '%s'", a);
            break;
        case OPT_MOMENTUM:
            if (!parse_f32(a, 0.0f, &o->momentum)) return usage_error(U, "--momentum must be >= 0, got '%s'", a);
            break;
        case OPT_WEIGHT_DECAY:
            if (!parse_f32(a, 0.0f, &o->weight_decay)) return usage_error(U, "--weight-decay must be >= 0, got '%s'", a);
            break;
        case OPT_EPOCHS:
            if (!parse_i64(a, 1, &v) || v > 1000000) return usage_error(U, "--epochs must be >= 1, got '%s'", a);
            o->epochs = (int)v;
            break;
        case OPT_BATCH:
            if (!parse_i64(a, 1, &o->batch)) return usage_error(U, "--batch-size must be >= 1, got '%s'", a);
            break;
        case OPT_SEED:
            if (!parse_i64(a, 0, &v)) return usage_error(U, "--seed must be a non-negative integer, got '%s'", a);
            o->seed = (uint64_t)v;
            break;
        case OPT_MIN_ERROR:
            if (!parse_f32(a, 0.0f, &o->min_error)) return usage_error(U, "--min-error must be >= 0, got '%s'", a);
            break;
        case OPT_PATIENCE:
            if (!parse_i64(a, 0, &v) || v > 1000000) return usage_error(U, "--patience must be >= 0, got '%s'", a);
            o->patience = (int)v;
            break;
        case OPT_CLIP:
            if (!parse_f32(a, 0.0f, &o->clip)) return usage_error(U, "--clip must be >= 0, got '%s'", a);
            break;
        case OPT_SCHEDULE:
            if (strcmp(a, "constant") == 0) o->schedule = SYN_SCHED_CONSTANT;
            else if (strcmp(a, "step") == 0) o->schedule = SYN_SCHED_STEP;
            else if (strcmp(a, "cosine") == 0) o->schedule = SYN_SCHED_COSINE;
            else if (strcmp(a, "onecycle") == 0) o->schedule = SYN_SCHED_COSINE, o->onecycle = true;
            else return usage_error(U, "unknown --schedule '%s' (constant, step, cosine, onecycle)", a);
            break;
        case OPT_NESTEROV: o->nesterov = true; break;
        case OPT_FLIP: o->flip = true; break;
        case OPT_CUDA_GRAPHS: o->cuda_graphs = true; break;
        case OPT_CROP_PAD:
            if (!parse_i64(a, 0, &v) || v > 64) return usage_error(U, "--crop-pad must be in 0..64, got '%s'", a);
            o->crop_pad = (int)v;
            break;
        case OPT_WARMUP:
            if (!parse_i64(a, 0, &o->warmup)) return usage_error(U, "--warmup must be >= 0, got '%s'", a);
            break;
        case OPT_LOSS:
            if (strcmp(a, "ce") && strcmp(a, "mse") && strcmp(a, "sse"))
                return usage_error(U, "unknown --loss '%s' (ce, mse, sse)", a);
            o->loss = a;
            break;
        case OPT_DEVICE: o->device = a; break;
        case OPT_SAVE: o->save = a; break;
        case OPT_RESUME: o->resume = a; break;
        case ':': return usage_error(U, "option %s needs a value", argv[optind - 1]);
        default: return usage_error(U, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (eval) {
        if (argc - optind != 2) return usage_error(U, "%s", "eval wants MODEL (a model file or mlp) and CKPT");
        o->model = strcmp(argv[optind], "mlp") == 0 ? NULL : argv[optind];
        o->resume = argv[optind + 1];
        optind += 2;
    } else if (optind < argc) {
        o->model = argv[optind++];
    }
    if (optind < argc) return usage_error(U, "unexpected argument '%s'", argv[optind]);
    if (o->model && o->mlp_flags)
        return usage_error(U, "--hidden, --activation and --dropout shape the MLP; %s defines its own layers", o->model);
    if (o->csv && !o->label) return usage_error(U, "%s needs --label COL", "--csv");
    if (o->csv && o->images) return usage_error(U, "%s", "--csv and --images both name the data: give one");
    if (o->test_images && !o->images)
        return usage_error(U, "%s needs --images DIR (the training folder)", "--test-images");
    const bool cifar = strcmp(o->data, "cifar10") == 0;
    if (strcmp(o->data, "fashion-mnist") != 0 && !cifar)
        return usage_error(U, "unknown --data '%s' (fashion-mnist, cifar10, or use --csv FILE or --images DIR)",
                           o->data);
    if (cifar && (o->csv || o->images))
        return usage_error(U, "--data cifar10 and %s both name the data: give one", o->csv ? "--csv" : "--images");
    if (cifar && !o->data_dir)
        return usage_error(U, "%s", "--data cifar10 needs --data-dir DIR (data_batch_1..5.bin and test_batch.bin)");
    if (!o->csv && o->regression) return usage_error(U, "%s needs a CSV file (--csv)", "--regression");
    if (!o->loss) o->loss = o->regression ? "mse" : "ce";
    /* Classification with mse/sse would need one-hot targets through a
     * different y; regression cannot use cross-entropy. */
    if (!o->regression && strcmp(o->loss, "ce") != 0)
        return usage_error(U, "--loss %s is for regression (--regression); classification uses ce", o->loss);
    if (o->regression && strcmp(o->loss, "ce") == 0)
        return usage_error(U, "--loss %s is for classification; regression uses mse or sse", o->loss);
    return -1;
}

/* train's record of its data for predict (DATA_* in train_cli.h): 2 * n
 * malloc'd strings, key and value. */
typedef struct {
    char **kv;
    int n, cap;
} data_meta;

static void data_meta_free(data_meta *m) {
    for (int i = 0; i < 2 * m->n; i++) free(m->kv[i]);
    free(m->kv);
    memset(m, 0, sizeof *m);
}

static bool data_meta_add(data_meta *m, const char *key, const char *value) {
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        char **kv = realloc(m->kv, (size_t)(2 * cap) * sizeof *kv);
        if (!kv) return false;
        m->kv = kv;
        m->cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return false;
    }
    m->kv[2 * m->n] = k;
    m->kv[2 * m->n + 1] = v;
    m->n++;
    return true;
}

/* The classes' names, as the data sets' authors give them. */
static const char *const fmnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const char *const cifar10_classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

/* The sample shape and outputs, a CSV's header and label index, and the
 * classes' names (an image folder's subfolders, Fashion-MNIST's or CIFAR-10's). */
static syn_status data_meta_make(const train_opts *o, const syn_dataset *train, data_meta *m) {
    char buf[64], key[32];
    int len = 0;
    for (int k = 0; k < train->sample_shape.ndim; k++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", k ? "," : "", (long long)train->sample_shape.dim[k]);
    bool ok = data_meta_add(m, DATA_SHAPE, buf);
    snprintf(buf, sizeof buf, "%lld", (long long)(o->regression ? train->target_dim : train->num_classes));
    ok = ok && data_meta_add(m, DATA_OUTPUTS, buf);
    if (ok && o->csv) {
        char **names;
        int n, label;
        syn_status s = train_csv_header(o, &names, &n, &label);
        if (s != SYN_OK) return s;
        snprintf(buf, sizeof buf, "%d", n);
        ok = data_meta_add(m, DATA_COLUMNS, buf);
        snprintf(buf, sizeof buf, "%d", label);
        ok = ok && data_meta_add(m, DATA_LABEL, buf);
        for (int k = 0; k < n && ok; k++) {
            snprintf(key, sizeof key, DATA_COLUMN "%d", k);
            ok = data_meta_add(m, key, names[k]);
        }
        syn_csv_header_free(names, n);
    }
    if (ok && o->images) { /* the classes' names, for predict */
        char **names;
        int n;
        syn_status s = syn_image_folder_classes(o->images, &names, &n);
        if (s != SYN_OK) return s;
        for (int k = 0; k < n && ok; k++) {
            snprintf(key, sizeof key, DATA_CLASS "%d", k);
            ok = data_meta_add(m, key, names[k]);
        }
        syn_image_folder_classes_free(names, n);
    } else if (ok && !o->csv && train->num_classes == 10) {
        const char *const *names = strcmp(o->data, "cifar10") == 0 ? cifar10_classes : fmnist_classes;
        for (int k = 0; k < 10 && ok; k++) {
            snprintf(key, sizeof key, DATA_CLASS "%d", k);
            ok = data_meta_add(m, key, names[k]);
        }
    }
    return ok ? SYN_OK : SYN_ERR_OOM;
}

/* ---- train: the run ----------------------------------------------------------- */

/* --save: a checkpoint after every epoch (syn_fit's on_epoch). */
typedef struct {
    const char *path;
    const syn_params *params;
    const syn_optim *opt;
    const char *desc;
    uint64_t seed;
    const syn_checkpoint_data *data; /* what predict needs: the standardisation, the data's shapes */
} save_ctx;

static syn_status save_epoch(void *user, const syn_fit_state *st) {
    const save_ctx *c = user;
    syn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.model, sizeof info.model, "%s", c->desc);
    info.epoch = st->epoch;
    info.step = st->step;
    info.seed = c->seed;
    info.rng_counter = st->rng_counter;
    info.best_loss = st->best_loss;
    info.stale_epochs = st->stale;
    return syn_checkpoint_save_data(c->path, c->params, c->opt, &info, c->data);
}

/* --resume: weights, optimizer state and the loop's state from a checkpoint
 * written by --save with the same model, data and optimizer flags. */
static int resume_from(const train_opts *o, train_net *n, syn_optim *opt, syn_fit_state *rs) {
    syn_checkpoint_info info;
    syn_status s = syn_checkpoint_load(o->resume, n->params, opt, &info);
    if (s != SYN_OK) return runtime_error(s);
    if (strcmp(info.model, n->desc) != 0) {
        fprintf(stderr, "synapse: error: %s was written for another model (%.200s) than this one (%.200s)\n",
                o->resume, info.model, n->desc);
        return 1;
    }
    if (info.seed != o->seed) {
        fprintf(stderr, "synapse: error: %s was written with --seed %llu, this run has --seed %llu\n", o->resume,
                (unsigned long long)info.seed, (unsigned long long)o->seed);
        return 1;
    }
    if (info.epoch >= o->epochs) {
        fprintf(stderr, "synapse: error: %s has %lld epochs done already; --epochs %d counts them too\n", o->resume,
                (long long)info.epoch, o->epochs);
        return 1;
    }
    memset(rs, 0, sizeof *rs);
    rs->epoch = (int)info.epoch;
    rs->step = info.step;
    rs->rng_counter = info.rng_counter;
    rs->best_loss = info.best_loss;
    rs->stale = (int)info.stale_epochs;
    return -1;
}

static int cmd_train(int argc, char **argv) {
    train_opts o;
    int rc = train_parse(argc, argv, &o, NULL);
    if (rc >= 0) return rc;
    syn_device dev;
    if ((rc = pick_device(o.device, &dev)) >= 0) return rc;
    syn_comm *comm = NULL;
    if ((rc = join_mpi(o.device, o.quiet, o.batch, "rows", &dev, &comm)) >= 0) return rc;
    const bool lead = syn_comm_rank(comm) == 0; /* writes the output and the checkpoints */
    if (!lead) o.quiet = true;

    syn_dataset *train = NULL, *test = NULL;
    syn_norm_stats *stats = NULL;
    data_meta meta = {0};
    syn_optim *opt = NULL;
    train_net net;
    bool pending = true; /* the setup's agreement (syn_comm_agree) is yet to be made */
    if ((rc = train_net_load(&o, &net)) >= 0) return leave_mpi(comm, rc, pending);
    syn_status s = train_load_data(&o, &train, &test, &stats);
    if (s != SYN_OK) {
        train_net_free(&net);
        return leave_mpi(comm, runtime_error(s), pending);
    }
    if ((rc = train_net_build(&o, dev, train, NET_TRAIN, &net)) >= 0) goto done;
    if (o.save && (s = data_meta_make(&o, train, &meta)) != SYN_OK) {
        rc = s == SYN_ERR_OOM ? (fputs("synapse: error: out of memory\n", stderr), 1) : runtime_error(s);
        goto done;
    }
    syn_optim_config oc = syn_optim_defaults(o.optim);
    if (o.lr > 0.0f) oc.lr = o.lr;
    if (o.momentum >= 0.0f) oc.momentum = o.momentum;
    oc.nesterov = o.nesterov;
    if (o.weight_decay >= 0.0f) oc.weight_decay = o.weight_decay;
    s = syn_optim_create(net.params, &oc, &opt);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    syn_fit_state rs;
    if (o.resume && (rc = resume_from(&o, &net, opt, &rs)) >= 0) goto done;

    char devname[32];
    syn_device_str(dev, devname, sizeof devname);
    if (!o.quiet) {
        char desc[256] = "";
        if (syn_device_describe(dev, desc, sizeof desc) != SYN_OK) desc[0] = '\0';
        char a[64];
        syn_shape sample = net.xs; /* without the batch */
        sample.ndim--;
        for (int k = 0; k < sample.ndim; k++) sample.dim[k] = net.xs.dim[k + 1];
        if (net.md)
            fprintf(stderr, "synapse: %s (%s), %d layers, input %s, %lld parameters\n", net.name, o.model,
                    syn_model_desc_layers(net.md), syn_shape_str(&sample, a, sizeof a),
                    (long long)syn_params_numel(net.params));
        else
            fprintf(stderr, "synapse: %s (%s%s), %lld parameters\n", net.name, syn_activation_name(o.act),
                    o.dropout > 0.0f ? ", dropout" : "", (long long)syn_params_numel(net.params));
        fprintf(stderr, "synapse: device %s%s%s\n", devname, *desc ? ": " : "", desc);
        fprintf(stderr, "synapse: %s lr %g, batch %lld, %d epochs, loss %s; %lld train / %lld test samples\n",
                syn_optim_kind_name(o.optim), (double)oc.lr, (long long)o.batch, o.epochs, o.loss,
                (long long)train->n, (long long)test->n);
        if (o.resume) fprintf(stderr, "synapse: resuming from %s after epoch %d\n", o.resume, rs.epoch);
    }
    syn_fit_config fc = {0};
    fc.epochs = o.epochs;
    fc.batch_size = o.batch;
    fc.seed = o.seed;
    fc.min_loss = o.min_error;
    fc.patience = o.patience;
    fc.clip_norm = o.clip;
    fc.schedule.kind = o.schedule;
    fc.schedule.warmup_steps = o.warmup;
    if (o.onecycle) fc.schedule.warmup_steps = (int64_t)(0.3 * (double)o.epochs * (double)((train->n + o.batch - 1) / o.batch));
    fc.augment.pad_crop = o.crop_pad;
    fc.augment.hflip = o.flip;
    if (o.schedule == SYN_SCHED_STEP) {
        int64_t per_epoch = (train->n + o.batch - 1) / o.batch;
        fc.schedule.step_size = per_epoch * ((o.epochs + 2) / 3);
        fc.schedule.gamma = 0.1f;
    }
    fc.progress = o.quiet ? SYN_PROGRESS_OFF : SYN_PROGRESS_AUTO;
    fc.out = stderr;
    fc.resume = o.resume ? &rs : NULL;
    syn_checkpoint_data cd = {stats, (const char *const *)meta.kv, meta.n};
    save_ctx sc = {o.save, net.params, opt, net.desc, o.seed, &cd};
    fc.comm = comm;
    pending = false; /* every process sets up alike or stops: a failure of one is all's */
    if (comm && (s = syn_comm_agree(comm, SYN_OK)) != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    if (o.save && lead) {
        fc.on_epoch = save_epoch;
        fc.user = &sc;
    }
    syn_fit_result res;
    s = syn_fit(&net.m, opt, train, test, &fc, &res);
    if (s == SYN_OK && lead) {
        if (!o.quiet && strcmp(res.stop_reason, "epochs") != 0)
            fprintf(stderr, "synapse: stopped after %d epochs (%s)\n", res.epochs_run, res.stop_reason);
        printf("{\"model\":\"%s\",\"device\":\"%s\",\"epochs\":%d", net.name, devname, res.epochs_run);
        json_num("train_loss", res.train_loss, "%.6g");
        json_num("test_loss", res.test_loss, "%.6g");
        if (net.classify) json_num("test_accuracy", res.test_accuracy, "%.4f");
        else fputs(",\"test_accuracy\":null", stdout);
        json_num("seconds", res.seconds, "%.2f");
        json_num("samples_per_s", res.samples_per_s, "%.0f");
        if (comm) printf(",\"processes\":%d", syn_comm_size(comm));
        if (o.cuda_graphs) {
            char why[256];
            int64_t replays = syn_graph_replays(net.m.graph, why, sizeof why);
            json_cuda_graphs(replays, why);
        }
        puts("}");
        fflush(stdout);
    }
    rc = s == SYN_OK ? 0 : runtime_error(s);
done:
    syn_optim_free(opt);
    train_net_free(&net);
    syn_dataset_free(train);
    syn_dataset_free(test);
    syn_norm_stats_free(stats);
    data_meta_free(&meta);
    return leave_mpi(comm, rc, pending);
}

/* ---- summary ------------------------------------------------------------------ */

static const char summary_usage_text[] =
    "usage: synapse summary MODEL.cfg [options]\n"
    "\n"
    "Prints one row per layer of a model file: index, name, layer, output shape\n"
    "(without the batch), trainable parameters and forward FLOPs (a multiply-add\n"
    "counts 2), then the totals.\n"
    "\n"
    "  --input C,H,W     the input shape (or D for flat features; default: the file's)\n"
    "  --batch N         FLOPs for a batch of N (default 1)\n"
    "  --help            this text\n";

static int cmd_summary(int argc, char **argv) {
    static const struct option longopts[] = {{"input", required_argument, 0, 'i'},
                                              {"batch", required_argument, 0, 'b'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *U = summary_usage_text;
    const char *input = NULL;
    int64_t batch = 1;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(U, stdout); return 0;
        case 'i': input = optarg; break;
        case 'b':
            if (!parse_i64(optarg, 1, &batch)) return usage_error(U, "--batch must be >= 1, got '%s'", optarg);
            break;
        case ':': return usage_error(U, "option %s needs a value", argv[optind - 1]);
        default: return usage_error(U, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return usage_error(U, "%s", "no model file given");
    if (optind + 1 < argc) return usage_error(U, "unexpected argument '%s'", argv[optind + 1]);
    syn_shape in = syn_shape0();
    if (input) {
        const char *p = input;
        char *end;
        while (in.ndim < 3) {
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (errno || end == p || v < 1) break;
            in.dim[in.ndim++] = v;
            if (*end != ',') break;
            p = end + 1;
        }
        if (*end != '\0' || (in.ndim != 1 && in.ndim != 3))
            return usage_error(U, "--input wants C,H,W or D (positive whole numbers), got '%s'", input);
    }
    syn_model_desc *md = NULL;
    syn_status s = syn_model_desc_load(argv[optind], &md);
    if (s == SYN_OK && input) s = syn_model_desc_set_input(md, in);
    if (s == SYN_OK) s = syn_model_summary(md, batch, stdout);
    syn_model_desc_free(md);
    return s == SYN_OK ? 0 : runtime_error(s);
}

/* The subcommands that take options (info is handled in main). */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"train", cmd_train},
    {"eval", cmd_eval},
    {"predict", cmd_predict},
    {"summary", cmd_summary},
    {"gan", cmd_gan},
    {"sample", cmd_sample},
    {"charlm", cmd_charlm},
    {"complete", cmd_complete},
    {"forecast", cmd_forecast},
    {"bench", cmd_bench},
};

/* OpenBLAS reads OPENBLAS_CORETYPE only when it loads: to replace the slow
 * kernels it chose, set it and run this program again, once (the variable is
 * then set, so the advice is NULL). If the restart fails, carry on as is. */
static void blas_restart(char **argv) {
    const char *chosen = NULL, *core = syn_cpu_blas_coretype_advice(&chosen);
    if (!core) return;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0 || setenv("SYN_BLAS_CORETYPE_FROM", chosen, 1) != 0) return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("SYN_BLAS_CORETYPE_FROM");
}

int main(int argc, char **argv) {
    blas_restart(argv);
    if (argc < 2) return usage_error(usage_text, "%s", "no command given");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("synapse %s\n", syn_version());
        return 0;
    }
    if (strcmp(cmd, "info") == 0) {
        if (argc > 2) {
            if (strcmp(argv[2], "--help") == 0) {
                fputs(usage_text, stdout);
                return 0;
            }
            return usage_error(usage_text, "info takes no arguments (got '%s')", argv[2]);
        }
        return cmd_info();
    }
    /* N copies of another command would each do the whole work (and race
     * for its files, or spoil a benchmark's timings) */
    int procs;
    if (syn_comm_mpi_launched(&procs) && strcmp(cmd, "train") != 0 && strcmp(cmd, "charlm") != 0 &&
        strcmp(cmd, "gan") != 0) {
        fprintf(stderr, "synapse: error: %s runs in one process, not %d: start it without mpirun (train, charlm "
                "and gan run data-parallel)\n", cmd, procs);
        return 2;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(cmd, commands[k].name) == 0) return commands[k].run(argc - 1, argv + 1);
    return usage_error(usage_text, "unknown command '%s'", cmd);
}
