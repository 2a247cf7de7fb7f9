/* The Inception-Score analogue for Fashion-MNIST samples: a small CNN
 * classifier (models/fmnist_cnn.cfg) trained on images in [-1, 1], then
 * exp(mean KL(p(y|x) || p(y))) and the mean max class probability over a set
 * of generated images. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/internal.h"

/* models/fmnist_cnn.cfg, kept here so the library needs no file at run time. */
static const char fmnist_cnn_cfg[] =
    "[net]\ninput = 1,28,28\nclasses = 10\n"
    "[conv]\nfilters = 32\nsize = 3\npad = same\n[batchnorm]\n[activation]\ntype = relu\n[maxpool]\nsize = 2\n"
    "[conv]\nfilters = 64\nsize = 3\npad = same\n[batchnorm]\n[activation]\ntype = relu\n[maxpool]\nsize = 2\n"
    "[flatten]\n[dense]\nunits = 128\nactivation = relu\n[dense]\nunits = 10\n";

enum { CLASSES = 10, TRAIN_BATCH = 128, EVAL_BATCH = 500 };

struct syn_gan_scorer {
    syn_params *p;
    syn_model train;     /* x (128,1,28,28), y, loss, logits */
    syn_graph *eval;     /* inference: x (500,1,28,28) -> logits */
    syn_node *ex, *elogits;
};

void syn_gan_scorer_free(syn_gan_scorer *s) {
    if (!s) return;
    syn_graph_free(s->train.graph);
    syn_graph_free(s->eval);
    syn_params_free(s->p);
    free(s);
}

syn_status syn_gan_scorer_create(syn_device dev, uint64_t seed, syn_gan_scorer **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_gan_scorer_create: out is NULL");
    *out = NULL;
    syn_gan_scorer *s = syn__calloc(1, sizeof *s, "syn_gan_scorer_create");
    if (!s) return SYN_ERR_OOM;
    syn_model_desc *md = NULL;
    syn_status st = syn_model_desc_parse(fmnist_cnn_cfg, "fmnist_cnn.cfg", &md);
    if (st == SYN_OK) st = syn_params_create(dev, seed, &s->p);
    if (st == SYN_OK) st = syn_graph_create(s->p, &s->train.graph);
    if (st == SYN_OK) st = syn_graph_create(s->p, &s->eval);
    if (st == SYN_OK) {
        /* Both graphs built before either is compiled (the first creates the
         * parameters; the second finds them by their automatic names). */
        syn_graph *g = s->train.graph;
        s->train.x = syn_input(g, "x", SYN_F32, syn_shape4(TRAIN_BATCH, 1, 28, 28));
        s->train.y = syn_input(g, "y", SYN_I32, syn_shape1(TRAIN_BATCH));
        s->train.logits = syn_model_build(g, md, s->train.x);
        s->train.loss = syn_cross_entropy(g, s->train.logits, s->train.y);
        st = syn_graph_status(g);
        if (st == SYN_OK) st = syn_graph_keep(g, s->train.logits);
    }
    if (st == SYN_OK) {
        s->ex = syn_input(s->eval, "x", SYN_F32, syn_shape4(EVAL_BATCH, 1, 28, 28));
        s->elogits = syn_model_build(s->eval, md, s->ex);
        st = syn_graph_status(s->eval);
    }
    syn_compile_opts inf = {.inference = true};
    if (st == SYN_OK) st = syn_graph_compile(s->train.graph, dev, NULL);
    if (st == SYN_OK) st = syn_graph_compile(s->eval, dev, &inf);
    syn_model_desc_free(md);
    if (st != SYN_OK) {
        syn_gan_scorer_free(s);
        return st;
    }
    syn_graph_set_training(s->eval, false);
    *out = s;
    return SYN_OK;
}

syn_params *syn_gan_scorer_params(const syn_gan_scorer *s) { return s ? s->p : NULL; }

syn_status syn_gan_scorer_train(syn_gan_scorer *s, const syn_dataset *train, const syn_dataset *test, int epochs,
                                FILE *out, float *test_accuracy) {
    if (test_accuracy) *test_accuracy = -1.0f;
    if (!s || !train) return syn__error(SYN_ERR_ARG, "syn_gan_scorer_train: NULL %s", !s ? "scorer" : "training set");
    for (int k = 0; k < 2; k++) {
        const syn_dataset *d = k ? test : train;
        if (d && (d->dim != 784 || d->num_classes != CLASSES))
            return syn__error(SYN_ERR_SHAPE, "syn_gan_scorer_train: wants 1x28x28 images with 10 classes (the %s set "
                              "has %lld features, %d classes)", k ? "test" : "training", (long long)d->dim,
                              d->num_classes);
    }
    syn_optim *opt = NULL;
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM); /* lr 1e-3 */
    SYN_TRY(syn_optim_create(s->p, &oc, &opt));
    syn_fit_config fc;
    memset(&fc, 0, sizeof fc);
    fc.epochs = epochs;
    fc.batch_size = TRAIN_BATCH;
    fc.seed = s->p->seed;
    fc.progress = out ? SYN_PROGRESS_LINES : SYN_PROGRESS_OFF;
    fc.out = out;
    syn_fit_result res;
    syn_status st = syn_fit(&s->train, opt, train, test, &fc, &res);
    syn_optim_free(opt);
    if (st == SYN_OK && test_accuracy) *test_accuracy = res.test_accuracy;
    return st;
}

syn_status syn_gan_score(syn_gan_scorer *s, const float *images, int64_t n, double *is, double *mean_max_prob) {
    if (!s || !images || n < 1)
        return syn__error(SYN_ERR_ARG, "syn_gan_score: %s", n < 1 ? "n must be >= 1" : "NULL argument");
    double *py_x = syn__malloc((size_t)n * CLASSES * sizeof *py_x, "syn_gan_score: probabilities");
    float *logits = syn__malloc((size_t)EVAL_BATCH * CLASSES * sizeof *logits, "syn_gan_score: logits");
    syn_status st = py_x && logits ? SYN_OK : SYN_ERR_OOM;
    double mmp = 0.0, py[CLASSES] = {0};
    for (int64_t r = 0; r < n && st == SYN_OK; r += EVAL_BATCH) {
        int64_t k = n - r < EVAL_BATCH ? n - r : EVAL_BATCH;
        st = syn_graph_feed(s->eval, s->ex, images + r * 784, syn_shape4(k, 1, 28, 28));
        if (st == SYN_OK) st = syn_graph_forward(s->eval);
        if (st == SYN_OK) st = syn_graph_read(s->eval, s->elogits, logits, (size_t)(k * CLASSES) * sizeof *logits);
        for (int64_t i = 0; i < k && st == SYN_OK; i++) {
            /* softmax in double */
            const float *l = logits + i * CLASSES;
            double *p = py_x + (r + i) * CLASSES, mx = l[0], z = 0.0, best = 0.0;
            for (int c = 1; c < CLASSES; c++) mx = l[c] > mx ? l[c] : mx;
            for (int c = 0; c < CLASSES; c++) z += (p[c] = exp((double)l[c] - mx));
            for (int c = 0; c < CLASSES; c++) {
                p[c] /= z;
                py[c] += p[c];
                best = p[c] > best ? p[c] : best;
            }
            if (!isfinite(z)) st = syn__error(SYN_ERR_ARG, "syn_gan_score: image %lld gives non-finite logits", (long long)(r + i));
            mmp += best;
        }
    }
    if (st == SYN_OK) {
        double kl = 0.0;
        for (int c = 0; c < CLASSES; c++) py[c] /= (double)n;
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < CLASSES; c++) {
                double p = py_x[i * CLASSES + c];
                if (p > 0.0) kl += p * (log(p) - log(py[c]));
            }
        if (is) *is = exp(kl / (double)n);
        if (mean_max_prob) *mean_max_prob = mmp / (double)n;
    }
    free(py_x);
    free(logits);
    return st;
}
