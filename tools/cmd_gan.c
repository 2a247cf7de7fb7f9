/* `synapse gan`: trains a GAN (DCGAN-28 on Fashion-MNIST, DCGAN-64 on
 * CIFAR-10 upsampled to 64x64, or an MLP GAN on a 2-D ring of Gaussians),
 * writing a sample grid per epoch, a per-step CSV log, the generator's
 * weights and optionally the Inception-Score analogue per epoch.
 * `synapse sample`: images from a saved generator. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "cli.h"

static const char gan_usage_text[] =
    "usage: synapse gan [options]\n"
    "\n"
    "Trains a GAN: each step is one discriminator step then one generator step\n"
    "(BCE with logits, Adam for each net). Writes DIR/samples_epochK.png (the\n"
    "generator on a fixed noise batch), DIR/log.csv (step,d_loss,g_loss,d_x,d_g_z)\n"
    "and DIR/generator.safetensors; per-epoch lines on stderr, one JSON line on stdout.\n"
    "\n"
    "  --model M              dcgan28 (Fashion-MNIST, the default) | dcgan64 (CIFAR-10\n"
    "                         upsampled to 64x64: needs --data-dir) | mlp (a 2-D ring of\n"
    "                         8 Gaussians; the 'grid' is a scatter plot)\n"
    "  --data-dir DIR         Fashion-MNIST (default $SYN_FASHION_MNIST_DIR, else\n"
    "                         " SYN_FASHION_MNIST_DIR ") or CIFAR-10 files\n"
    "  --images DIR           your own images instead: an image folder (DIR/<class>/*.png,\n"
    "                         classes ignored), 28x28 for dcgan28 (read as grey), 64x64\n"
    "                         or 32x32 (doubled) for dcgan64 (read as RGB)\n"
    "  --epochs N             (default 10)\n"
    "  --batch-size N         (default 128)\n"
    "  --lr LR                both nets' Adam learning rate (default 2e-4)\n"
    "  --beta1 B --beta2 B    Adam's betas (default 0.5, 0.999)\n"
    "  --label-smoothing F    real targets 1 - F for D (default 0)\n"
    "  --seed S               initialisation, noise and shuffling (default 1)\n"
    "  --device D             cpu|cuda|cuda:N (default cpu)\n"
    "  --out DIR              output folder, made if missing (default gan-out)\n"
    "  --max-steps N          stop after N steps in all (a short run)\n"
    "  --score                dcgan28: the Inception-Score analogue of 10,000 samples\n"
    "                         before training and after each epoch (trains the classifier\n"
    "                         first: 5 epochs of models/fmnist_cnn.cfg on [-1, 1] images)\n"
    "  --score-samples N      samples scored (default 10000)\n"
    "  --scorer-epochs N      the classifier's training epochs (default 5)\n"
    "  --scorer FILE          the classifier's weights: loaded if FILE exists, else\n"
    "                         trained and saved there\n"
    "  --quiet                no progress on stderr\n"
    "  --help                 this text\n"
    "\n"
    "Data-parallel: started by an MPI launcher (mpirun -np N synapse gan ...), the N\n"
    "processes train one G and one D, each on its share of every real and noise batch;\n"
    "process 0 writes the files, the score and the output (its own step figures).\n";

static const char sample_usage_text[] =
    "usage: synapse sample --model M GENERATOR.safetensors [options]\n"
    "\n"
    "Draws N samples from a generator saved by synapse gan and writes them as one\n"
    "PNG grid (a scatter plot for --model mlp).\n"
    "\n"
    "  --model M        dcgan28 | dcgan64 | mlp (default dcgan28)\n"
    "  -n N             samples (default 64)\n"
    "  --out FILE.png   (default samples.png)\n"
    "  --seed S         noise seed (default 1)\n"
    "  --cols C         grid columns (default: a square)\n"
    "  --device D       cpu|cuda|cuda:N (default cpu)\n"
    "  --help           this text\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the MLP's toy data and its picture ---------------------------------------------- */

/* 8 Gaussians (std 0.1) on a circle of radius 2 around (1, -0.5). */
#define RING_CX 1.0
#define RING_CY (-0.5)

static void ring_data(uint64_t seed, float *x, int64_t n) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345;
    for (int64_t i = 0; i < n; i++) {
        double u[3];
        for (int k = 0; k < 3; k++) {
            uint64_t z = (s += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            u[k] = (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
        }
        int mode = (int)(u[0] * 8);
        double r = sqrt(-2 * log(1 - u[1])), a = 0.7853981633974483 * mode;
        x[2 * i] = (float)(RING_CX + 2 * cos(a) + 0.1 * r * cos(6.283185307179586 * u[2]));
        x[2 * i + 1] = (float)(RING_CY + 2 * sin(a) + 0.1 * r * sin(6.283185307179586 * u[2]));
    }
}

/* A 256x256 scatter plot of n points over [-3, 5] x [-4.5, 3.5]: points 1,
 * the modes' centres 0.5, background 0 (one grey image). */
enum { PLOT = 256 };
static void scatter(const float *pts, int64_t n, float *img) {
    memset(img, 0, PLOT * PLOT * sizeof *img);
    for (int k = 0; k < 8; k++) {
        int cx = (int)((RING_CX + 2 * cos(0.785398 * k) + 3) / 8 * PLOT), cy = (int)((3.5 - (RING_CY + 2 * sin(0.785398 * k))) / 8 * PLOT);
        for (int d = -3; d <= 3; d++) {
            if (cx + d >= 0 && cx + d < PLOT && cy >= 0 && cy < PLOT) img[cy * PLOT + cx + d] = 0.5f;
            if (cy + d >= 0 && cy + d < PLOT && cx >= 0 && cx < PLOT) img[(cy + d) * PLOT + cx] = 0.5f;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        int x = (int)floor((pts[2 * i] + 3.0) / 8.0 * PLOT), y = (int)floor((3.5 - pts[2 * i + 1]) / 8.0 * PLOT);
        if (x >= 0 && x < PLOT && y >= 0 && y < PLOT) img[y * PLOT + x] = 1.0f;
    }
}

/* Writes n samples of model m as a PNG: an image grid, or the scatter plot. */
static syn_status write_samples(const char *path, syn_gan_arch arch, syn_shape ss, const float *x, int64_t n, int cols) {
    if (arch == SYN_GAN_MLP) {
        float *img = malloc(PLOT * PLOT * sizeof *img);
        if (!img) return SYN_ERR_OOM;
        scatter(x, n, img);
        syn_status s = syn_png_write_grid(path, img, 1, 1, PLOT, PLOT, 1, 0.0f, 1.0f);
        free(img);
        return s;
    }
    return syn_png_write_grid(path, x, (int)n, (int)ss.dim[0], (int)ss.dim[1], (int)ss.dim[2], cols, -1.0f, 1.0f);
}

/* ---- gan: options ---------------------------------------------------------------- */

typedef struct {
    syn_gan_arch arch;
    const char *data_dir, *device, *out, *scorer, *images;
    int epochs, scorer_epochs;
    int64_t batch, max_steps, score_samples;
    float lr, beta1, beta2, smoothing;
    uint64_t seed;
    bool score, quiet;
    bool upsample; /* dcgan64 on 32x32 images (set once the data is loaded) */
} gan_opts;

enum {
    G_MODEL = 256, G_DATA_DIR, G_EPOCHS, G_BATCH, G_LR, G_BETA1, G_BETA2, G_SEED, G_DEVICE, G_OUT, G_SMOOTH,
    G_SCORE, G_MAX_STEPS, G_SCORE_SAMPLES, G_SCORER, G_SCORER_EPOCHS, G_IMAGES
};

static int parse_gan(int argc, char **argv, gan_opts *o) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, G_MODEL},       {"data-dir", required_argument, 0, G_DATA_DIR},
        {"images", required_argument, 0, G_IMAGES},
        {"epochs", required_argument, 0, G_EPOCHS},     {"batch-size", required_argument, 0, G_BATCH},
        {"lr", required_argument, 0, G_LR},             {"beta1", required_argument, 0, G_BETA1},
        {"beta2", required_argument, 0, G_BETA2},       {"seed", required_argument, 0, G_SEED},
        {"device", required_argument, 0, G_DEVICE},     {"out", required_argument, 0, G_OUT},
        {"label-smoothing", required_argument, 0, G_SMOOTH}, {"score", no_argument, 0, G_SCORE},
        {"max-steps", required_argument, 0, G_MAX_STEPS}, {"score-samples", required_argument, 0, G_SCORE_SAMPLES},
        {"scorer", required_argument, 0, G_SCORER},     {"scorer-epochs", required_argument, 0, G_SCORER_EPOCHS},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    const char *U = gan_usage_text;
    memset(o, 0, sizeof *o);
    o->arch = SYN_GAN_DCGAN28;
    o->device = "cpu";
    o->out = "gan-out";
    o->epochs = 10;
    o->batch = 128;
    o->lr = 2e-4f;
    o->beta1 = 0.5f;
    o->beta2 = 0.999f;
    o->seed = 1;
    o->score_samples = 10000;
    o->scorer_epochs = 5;
    opterr = 0;
    optind = 1;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case 'h': fputs(U, stdout); return 0;
        case 'q': o->quiet = true; break;
        case G_MODEL:
            if (syn_gan_arch_parse(a, &o->arch) != SYN_OK) return usage_error(U, "unknown --model '%s' (dcgan28, dcgan64, mlp)", a);
            break;
        case G_DATA_DIR: o->data_dir = a; break;
        case G_IMAGES: o->images = a; break;
        case G_EPOCHS:
            if (!parse_i64(a, 1, &v) || v > 1000000) return usage_error(U, "--epochs must be >= 1, got '%s'", a);
            o->epochs = (int)v;
            break;
        case G_BATCH:
            if (!parse_i64(a, 1, &o->batch) || o->batch > 65536) return usage_error(U, "--batch-size must be in 1..65536, got '%s'", a);
            break;
        case G_LR:
            if (!parse_f32(a, 0.0f, &o->lr) || o->lr <= 0.0f) return usage_error(U, "--lr must be > 0, got '%s'", a);
            break;
        case G_BETA1:
            if (!parse_f32(a, 0.0f, &o->beta1) || o->beta1 >= 1.0f) return usage_error(U, "--beta1 must be in [0, 1), got '%s'", a);
            break;
        case G_BETA2:
            if (!parse_f32(a, 0.0f, &o->beta2) || o->beta2 >= 1.0f) return usage_error(U, "--beta2 must be in [0, 1), got '%s'", a);
            break;
        case G_SEED:
            if (!parse_i64(a, 0, &v)) return usage_error(U, "--seed must be a non-negative integer, got '%s'", a);
            o->seed = (uint64_t)v;
            break;
        case G_DEVICE: o->device = a; break;
        case G_OUT: o->out = a; break;
        case G_SMOOTH:
            if (!parse_f32(a, 0.0f, &o->smoothing) || o->smoothing >= 1.0f)
                return usage_error(U, "--label-smoothing must be in [0, 1), got '%s'", a);
            break;
        case G_SCORE: o->score = true; break;
        case G_MAX_STEPS:
            if (!parse_i64(a, 1, &o->max_steps)) return usage_error(U, "--max-steps must be >= 1, got '%s'", a);
            break;
        case G_SCORE_SAMPLES:
            if (!parse_i64(a, 1, &o->score_samples) || o->score_samples > 1000000)
                return usage_error(U, "--score-samples must be in 1..1000000, got '%s'", a);
            break;
        case G_SCORER: o->scorer = a; break;
        case G_SCORER_EPOCHS:
            if (!parse_i64(a, 1, &v) || v > 100) return usage_error(U, "--scorer-epochs must be in 1..100, got '%s'", a);
            o->scorer_epochs = (int)v;
            break;
        case ':': return usage_error(U, "option %s needs a value", argv[optind - 1]);
        default: return usage_error(U, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error(U, "unexpected argument '%s'", argv[optind]);
    if ((o->score || o->scorer) && o->arch != SYN_GAN_DCGAN28)
        return usage_error(U, "--score rates 28x28 Fashion-MNIST samples: it needs --model dcgan28, not %s",
                           syn_gan_arch_name(o->arch));
    if (o->images && o->arch == SYN_GAN_MLP)
        return usage_error(U, "%s", "--images trains a DCGAN (dcgan28 or dcgan64); the MLP GAN has its own toy data");
    if (o->images && (o->score || o->scorer))
        return usage_error(U, "%s", "--score rates Fashion-MNIST-like samples by its classes: not with --images");
    if (o->arch == SYN_GAN_DCGAN64 && !o->data_dir && !o->images)
        return usage_error(U, "%s needs --data-dir (CIFAR-10, binary version) or --images DIR", "--model dcgan64");
    return -1;
}

/* ---- gan: data ------------------------------------------------------------------------ */

/* The training set, in the model's range: Fashion-MNIST in [-1, 1]; CIFAR-10
 * in [-1, 1] at 32x32 (upsampled per batch); an image folder the same; the
 * MLP's ring. */
static syn_status load_gan_data(const gan_opts *o, syn_dataset **out) {
    *out = NULL;
    syn_status s;
    if (o->arch == SYN_GAN_MLP) {
        syn_dataset *d = calloc(1, sizeof *d);
        const int64_t n = 25600;
        if (!d || !(d->x = malloc((size_t)n * 2 * sizeof *d->x))) {
            free(d);
            fprintf(stderr, "synapse: error: out of memory\n");
            return SYN_ERR_OOM;
        }
        d->n = n;
        d->dim = 2;
        d->sample_shape = syn_shape1(2);
        ring_data(o->seed, d->x, n);
        *out = d;
        return SYN_OK;
    }
    if (o->images) {
        const bool g28 = o->arch == SYN_GAN_DCGAN28;
        if ((s = syn_dataset_load_image_folder(o->images, g28 ? 1 : 3, NULL, 0, out)) != SYN_OK) return s;
        const syn_shape is = (*out)->sample_shape;
        const bool fits = g28 ? is.dim[1] == 28 && is.dim[2] == 28
                              : is.dim[1] == is.dim[2] && (is.dim[1] == 64 || is.dim[1] == 32);
        if (!fits) {
            char a[64];
            fprintf(stderr, "synapse: error: %s: images of %s; --model %s takes %s\n", o->images,
                    syn_shape_str(&is, a, sizeof a), syn_gan_arch_name(o->arch),
                    g28 ? "28x28 (read as grey)" : "64x64, or 32x32 doubled (read as RGB)");
            syn_dataset_free(*out);
            *out = NULL;
            return SYN_ERR_SHAPE;
        }
    } else {
        s = o->arch == SYN_GAN_DCGAN28 ? syn_dataset_load_fashion_mnist(o->data_dir, true, out)
                                       : syn_dataset_load_cifar10(o->data_dir, true, out);
        if (s != SYN_OK) return s;
    }
    for (int64_t i = 0; i < (*out)->n * (*out)->dim; i++) (*out)->x[i] = 2.0f * (*out)->x[i] - 1.0f;
    return SYN_OK;
}

/* A batch in the generator's sample shape: 3x32x32 (CIFAR's, or a folder's)
 * doubled to 3x64x64 (nearest); others as they are. */
static const float *prepare(const gan_opts *o, const syn_batch *b, float *buf) {
    if (!o->upsample) return b->x;
    for (int64_t i = 0; i < b->n; i++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++)
                    buf[((i * 3 + c) * 64 + y) * 64 + x] = b->x[((i * 3 + c) * 32 + y / 2) * 32 + x / 2];
    return buf;
}

/* ---- gan: the score ----------------------------------------------------------------------- */

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The classifier: loaded from o->scorer, or trained (and saved there). */
static syn_status make_scorer(const gan_opts *o, syn_device dev, syn_gan_scorer **out) {
    syn_status s = syn_gan_scorer_create(dev, o->seed, out);
    if (s != SYN_OK) return s;
    if (o->scorer && file_exists(o->scorer)) {
        s = syn_params_load(syn_gan_scorer_params(*out), o->scorer, true);
        if (s == SYN_OK && !o->quiet) fprintf(stderr, "synapse: score classifier loaded from %s\n", o->scorer);
        return s;
    }
    syn_dataset *train = NULL, *test = NULL;
    s = syn_dataset_load_fashion_mnist(o->data_dir, true, &train);
    if (s == SYN_OK) s = syn_dataset_load_fashion_mnist(o->data_dir, false, &test);
    for (int64_t i = 0; s == SYN_OK && i < train->n * train->dim; i++) train->x[i] = 2.0f * train->x[i] - 1.0f;
    for (int64_t i = 0; s == SYN_OK && i < test->n * test->dim; i++) test->x[i] = 2.0f * test->x[i] - 1.0f;
    float acc = -1.0f;
    double t0 = now_s();
    if (s == SYN_OK && !o->quiet) fprintf(stderr, "synapse: training the score classifier (fmnist_cnn, %d epochs, Adam 1e-3)\n",
                o->scorer_epochs);
    if (s == SYN_OK) s = syn_gan_scorer_train(*out, train, test, o->scorer_epochs, o->quiet ? NULL : stderr, &acc);
    if (s == SYN_OK && !o->quiet) fprintf(stderr, "synapse: score classifier: test accuracy %.4f (%.1fs)\n", acc, now_s() - t0);
    if (s == SYN_OK && o->scorer) s = syn_params_save(syn_gan_scorer_params(*out), o->scorer);
    syn_dataset_free(train);
    syn_dataset_free(test);
    return s;
}

/* The score of n samples of noise seed 12345 (the same every epoch). */
static syn_status score_now(syn_gan *gan, syn_gan_scorer *sc, int64_t n, float *buf, double *is, double *mmp) {
    syn_status s = syn_gan_generate(gan, 12345, n, buf);
    return s == SYN_OK ? syn_gan_score(sc, buf, n, is, mmp) : s;
}

/* ---- gan: the run --------------------------------------------------------------------------- */

int cmd_gan(int argc, char **argv) {
    gan_opts o;
    int rc = parse_gan(argc, argv, &o);
    if (rc >= 0) return rc;
    syn_device dev;
    if ((rc = pick_device(o.device, &dev)) >= 0) return rc;
    syn_comm *comm = NULL;
    if ((rc = join_mpi(o.device, o.quiet, o.batch, "rows", &dev, &comm)) >= 0) return rc;
    const bool lead = syn_comm_rank(comm) == 0; /* writes the files, the score and the output */
    if (!lead) o.quiet = true;
    bool pending = true; /* the setup's agreement (syn_comm_agree) is yet to be made */
    if (lead && mkdir(o.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "synapse: error: cannot make the folder %s: %s\n", o.out, strerror(errno));
        return leave_mpi(comm, 1, pending);
    }
    char path[4096];
    syn_dataset *ds = NULL;
    syn_gan *gan = NULL;
    syn_gan_scorer *sc = NULL;
    syn_loader *ld = NULL;
    FILE *csv = NULL;
    float *buf = NULL, *samples = NULL, *score_buf = NULL;
    syn_status s = load_gan_data(&o, &ds);
    o.upsample = s == SYN_OK && o.arch == SYN_GAN_DCGAN64 && ds->dim == 3 * 32 * 32;

    syn_gan_config cfg = syn_gan_config_defaults(o.arch);
    cfg.batch = o.batch;
    cfg.seed = o.seed;
    cfg.label_smoothing = o.smoothing;
    cfg.g_optim.lr = cfg.d_optim.lr = o.lr;
    cfg.g_optim.beta1 = cfg.d_optim.beta1 = o.beta1;
    cfg.g_optim.beta2 = cfg.d_optim.beta2 = o.beta2;
    cfg.n_fixed = o.arch == SYN_GAN_MLP ? 1024 : 64;
    syn_shape ss = syn_gan_sample_shape(&cfg.model);
    const int64_t per = syn_shape_numel(&ss);
    if (s == SYN_OK && o.batch > ds->n) {
        fprintf(stderr, "synapse: error: --batch-size %lld exceeds the %lld training samples\n", (long long)o.batch,
                (long long)ds->n);
        rc = 1;
        goto done;
    }
    if (s == SYN_OK) s = syn_gan_create(&cfg, dev, &gan);
    if (s == SYN_OK) s = syn_loader_create(ds, o.batch, true, o.seed, true, &ld); /* whole batches: batch norm */
    if (s == SYN_OK && comm) s = syn_loader_set_shard(ld, syn_comm_rank(comm), syn_comm_size(comm));
    if (s == SYN_OK && dev.type != SYN_DEVICE_CPU) s = syn_loader_set_prefetch(ld, true);
    if (s == SYN_OK) {
        buf = malloc((size_t)(o.batch * per) * sizeof *buf);
        samples = malloc((size_t)(cfg.n_fixed * per) * sizeof *samples);
        score_buf = o.score ? malloc((size_t)(o.score_samples * per) * sizeof *score_buf) : NULL;
        if (!buf || !samples || (o.score && !score_buf)) {
            fprintf(stderr, "synapse: error: out of memory\n");
            rc = 1;
            goto done;
        }
    }
    if (s == SYN_OK && lead) {
        snprintf(path, sizeof path, "%s/log.csv", o.out);
        if (!(csv = fopen(path, "w"))) {
            fprintf(stderr, "synapse: error: cannot write %s: %s\n", path, strerror(errno));
            rc = 1;
            goto done;
        }
        fputs("step,d_loss,g_loss,d_x,d_g_z\n", csv);
    }
    char devname[32];
    syn_device_str(dev, devname, sizeof devname);
    if (s == SYN_OK && !o.quiet) {
        fprintf(stderr, "synapse: gan %s on %s: G %lld, D %lld parameters; %lld samples, batch %lld, Adam lr %g betas (%g, %g)%s\n",
                syn_gan_arch_name(o.arch), devname, (long long)syn_params_numel(syn_gan_generator_params(gan)),
                (long long)syn_params_numel(syn_gan_discriminator_params(gan)), (long long)ds->n, (long long)o.batch,
                (double)o.lr, (double)o.beta1, (double)o.beta2, o.smoothing > 0 ? ", label smoothing" : "");
    }
    double is0 = NAN, is = NAN, mmp = NAN;
    if (s == SYN_OK && o.score && lead) {
        s = make_scorer(&o, dev, &sc);
        if (s == SYN_OK) s = score_now(gan, sc, o.score_samples, score_buf, &is0, &mmp);
        if (s == SYN_OK && !o.quiet)
            fprintf(stderr, "epoch 0  IS %.3f  mean max prob %.3f  (untrained generator, %lld samples)\n", is0, mmp,
                    (long long)o.score_samples);
        is = is0;
    }
    /* the setup's agreement: every process set up alike (process 0 its files
     * and scorer too), or all stop; then G's and D's weights are process 0's */
    pending = false;
    if (comm) s = syn_comm_agree(comm, s);
    if (s == SYN_OK && comm) s = syn_gan_set_comm(gan, comm);

    const double t0 = now_s();
    double train_time = 0.0;
    int64_t step = 0;
    int epoch = 0;
    syn_gan_stats last = {0};
    bool stop = false;
    for (epoch = 1; epoch <= o.epochs && s == SYN_OK && !stop; epoch++) {
        const double te = now_s();
        double sum[4] = {0};
        int64_t n_steps = 0;
        for (;;) {
            syn_batch b;
            if ((s = syn_loader_next(ld, &b)) != SYN_OK || b.n == 0) break;
            if ((s = syn_gan_step(gan, prepare(&o, &b, buf), b.n, &last)) != SYN_OK) break;
            step++;
            n_steps++;
            if (csv)
                fprintf(csv, "%lld,%.6g,%.6g,%.6g,%.6g\n", (long long)step, last.d_loss, last.g_loss, last.d_x,
                        last.d_g_z);
            sum[0] += last.d_loss, sum[1] += last.g_loss, sum[2] += last.d_x, sum[3] += last.d_g_z;
            if (!o.quiet && step % 100 == 0)
                fprintf(stderr, "  step %lld  d_loss %.4f  g_loss %.4f  D(x) %.3f  D(G(z)) %.3f  %.1f steps/s\n",
                        (long long)step, last.d_loss, last.g_loss, last.d_x, last.d_g_z, (double)n_steps / (now_s() - te));
            if (o.max_steps && step >= o.max_steps) {
                stop = true;
                break;
            }
        }
        if (s != SYN_OK) break;
        train_time += now_s() - te;
        /* batch norm's running statistics, each member's from its own rows: member 0's */
        if ((s = syn_gan_sync_stats(gan)) != SYN_OK) break;
        if (lead) { /* the epoch's grid and score */
            fflush(csv);
            snprintf(path, sizeof path, "%s/samples_epoch%d.png", o.out, epoch);
            s = syn_gan_sample_fixed(gan, samples);
            if (s == SYN_OK) s = write_samples(path, o.arch, ss, samples, cfg.n_fixed, 8);
            if (s == SYN_OK && o.score) s = score_now(gan, sc, o.score_samples, score_buf, &is, &mmp);
        }
        if (comm) s = syn_comm_agree(comm, s); /* a failure of process 0's files is every process's */
        if (s != SYN_OK) break;
        if (!o.quiet) {
            double k = n_steps ? (double)n_steps : 1.0;
            fprintf(stderr, "epoch %d/%d  steps %lld  d_loss %.4f  g_loss %.4f  D(x) %.3f  D(G(z)) %.3f", epoch, o.epochs,
                    (long long)n_steps, sum[0] / k, sum[1] / k, sum[2] / k, sum[3] / k);
            if (o.score) fprintf(stderr, "  IS %.3f  mean max prob %.3f", is, mmp);
            fprintf(stderr, "  %.1fs\n", now_s() - te);
        }
    }
    if (s == SYN_OK && lead) {
        snprintf(path, sizeof path, "%s/generator.safetensors", o.out);
        s = syn_params_save(syn_gan_generator_params(gan), path);
    }
    if (s == SYN_OK && lead) {
        printf("{\"model\":\"%s\",\"device\":\"%s\",\"epochs\":%d,\"steps\":%lld", syn_gan_arch_name(o.arch), devname,
               epoch - 1, (long long)step);
        json_num("d_loss", last.d_loss, "%.6g");
        json_num("g_loss", last.g_loss, "%.6g");
        json_num("d_x", last.d_x, "%.4f");
        json_num("d_g_z", last.d_g_z, "%.4f");
        if (o.score) {
            json_num("is_initial", is0, "%.4f");
            json_num("is", is, "%.4f");
            json_num("mean_max_prob", mmp, "%.4f");
        }
        json_num("seconds", now_s() - t0, "%.2f");
        json_num("steps_per_s", train_time > 0 ? (double)step / train_time : 0.0, "%.2f");
        if (comm) printf(",\"processes\":%d", syn_comm_size(comm));
        puts("}");
        fflush(stdout);
    }
    rc = s == SYN_OK ? 0 : runtime_error(s);
done:
    if (csv && fclose(csv) != 0 && rc == 0) {
        fprintf(stderr, "synapse: error: writing %s/log.csv failed\n", o.out);
        rc = 1;
    }
    if (s != SYN_OK && rc == 0) rc = runtime_error(s);
    free(buf);
    free(samples);
    free(score_buf);
    syn_loader_free(ld);
    syn_gan_scorer_free(sc);
    syn_gan_free(gan);
    syn_dataset_free(ds);
    return leave_mpi(comm, rc, pending);
}

/* ---- sample ---------------------------------------------------------------------------------- */

int cmd_sample(int argc, char **argv) {
    static const struct option longopts[] = {{"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'},
                                              {"seed", required_argument, 0, 's'}, {"cols", required_argument, 0, 'c'},
                                              {"device", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *U = sample_usage_text, *out = "samples.png", *device = "cpu";
    syn_gan_arch arch = SYN_GAN_DCGAN28;
    int64_t n = 64, cols = 0, v;
    uint64_t seed = 1;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":hn:", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case 'h': fputs(U, stdout); return 0;
        case 'm':
            if (syn_gan_arch_parse(a, &arch) != SYN_OK) return usage_error(U, "unknown --model '%s' (dcgan28, dcgan64, mlp)", a);
            break;
        case 'n':
            if (!parse_i64(a, 1, &n) || n > 4096) return usage_error(U, "-n must be in 1..4096, got '%s'", a);
            break;
        case 'o': out = a; break;
        case 's':
            if (!parse_i64(a, 0, &v)) return usage_error(U, "--seed must be a non-negative integer, got '%s'", a);
            seed = (uint64_t)v;
            break;
        case 'c':
            if (!parse_i64(a, 1, &cols) || cols > 4096) return usage_error(U, "--cols must be in 1..4096, got '%s'", a);
            break;
        case 'd': device = a; break;
        case ':': return usage_error(U, "option %s needs a value", argv[optind - 1]);
        default: return usage_error(U, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return usage_error(U, "%s", "no generator file given");
    if (optind + 1 < argc) return usage_error(U, "unexpected argument '%s'", argv[optind + 1]);
    const char *weights = argv[optind];
    syn_device dev;
    int rc;
    if ((rc = pick_device(device, &dev)) >= 0) return rc;
    syn_gan_model m = {.arch = arch};
    syn_gan_model r;
    syn_params *p = NULL;
    syn_gan_sampler *smp = NULL;
    float *z = NULL, *x = NULL;
    syn_status s = syn_gan_model_resolve(&m, &r);
    syn_shape ss = syn_gan_sample_shape(&r);
    if (s == SYN_OK) s = syn_params_create(dev, 0, &p);
    if (s == SYN_OK) s = syn_gan_sampler_create(&r, p, 256, &smp);
    if (s == SYN_OK) s = syn_params_load(p, weights, true);
    if (s == SYN_OK) {
        z = malloc((size_t)(n * r.nz) * sizeof *z);
        x = malloc((size_t)(n * syn_shape_numel(&ss)) * sizeof *x);
        if (!z || !x) {
            fprintf(stderr, "synapse: error: out of memory\n");
            rc = 1;
            goto done;
        }
        /* the noise of syn_gan_generate(seed) */
        s = syn_gan_noise(seed, 0, n, r.nz, z);
    }
    if (s == SYN_OK) s = syn_gan_sampler_run(smp, z, n, x);
    if (s == SYN_OK) s = write_samples(out, arch, ss, x, n, (int)cols);
    if (s == SYN_OK) fprintf(stderr, "synapse: %lld samples of %s written to %s\n", (long long)n, weights, out);
    rc = s == SYN_OK ? 0 : runtime_error(s);
done:
    free(z);
    free(x);
    syn_gan_sampler_free(smp);
    syn_params_free(p);
    return rc;
}
