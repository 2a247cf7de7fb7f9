/* Model files and builders: every file under models/ parses and builds,
 * ResNet-18 forward and backward at 32x32 and 224x224, parameter counts
 * against PyTorch's, one bad file per key (with its line), the summary, the
 * CLI's summary and train commands, and a short CNN training run. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"
#include "core/internal.h"

/* ---- helpers ---------------------------------------------------------------------- */

static syn_model_desc *load_model(const char *name) {
    char rel[128], path[1024];
    snprintf(rel, sizeof rel, "models/%s", name);
    syn_model_desc *d = NULL;
    TU_OK(syn_model_desc_load(tu_source_path(rel, path, sizeof path), &d));
    return d;
}

/* (batch, sample...) */
static syn_shape batched(int64_t batch, syn_shape sample) {
    syn_shape s = sample;
    for (int k = s.ndim; k > 0; k--) s.dim[k] = s.dim[k - 1];
    s.dim[0] = batch;
    s.ndim++;
    return s;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Trainable values: PyTorch's count (batch-norm running statistics are buffers). */
static int64_t trainable_numel(const syn_params *p) {
    int64_t n = 0;
    for (int i = 0; i < syn_params_count(p); i++) {
        const char *name;
        syn_tensor *v, *g;
        TU_OK(syn_params_get(p, i, &name, &v, &g));
        if (!ends_with(name, ".running_mean") && !ends_with(name, ".running_var")) n += syn_tensor_numel(v);
    }
    return n;
}

typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *x, *logits;
} built;

/* Builds a model file's network at (batch, input) on a fresh CPU parameter set. */
static built build_file(const char *name, int64_t batch, const syn_shape *input) {
    built b = {0};
    syn_model_desc *d = load_model(name);
    syn_shape in;
    TU_OK(syn_model_desc_input(d, &in, NULL));
    if (input) in = *input;
    TU_OK(syn_params_create(syn_cpu(), 3, &b.p));
    TU_OK(syn_graph_create(b.p, &b.g));
    b.x = syn_input(b.g, "x", SYN_F32, batched(batch, in));
    b.logits = syn_model_build(b.g, d, b.x);
    ck_assert_msg(b.logits, "%s: %s", name, syn_last_error());
    TU_OK(syn_graph_status(b.g));
    syn_model_desc_free(d);
    return b;
}

static void built_free(built *b) {
    syn_graph_free(b->g);
    syn_params_free(b->p);
}

/* ---- every model file ---------------------------------------------------------------- */

START_TEST(test_all_model_files) {
    char dir[1024];
    DIR *dp = opendir(tu_source_path("models", dir, sizeof dir));
    ck_assert_msg(dp != NULL, "cannot open %s (set SYN_SOURCE_DIR)", dir);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (!ends_with(e->d_name, ".cfg")) continue;
        files++;
        syn_model_desc *d = load_model(e->d_name);
        syn_shape in;
        int classes;
        TU_OK(syn_model_desc_input(d, &in, &classes));
        ck_assert_int_eq(classes, 10);
        ck_assert_int_gt(syn_model_desc_layers(d), 0);
        syn_model_desc_free(d);
        /* at Fashion-MNIST's input, what `synapse train` feeds (test_param_counts
         * builds each at its own) */
        const syn_shape fmnist = syn_shape3(1, 28, 28);
        built b = build_file(e->d_name, 2, &fmnist);
        syn_shape ls = syn_node_shape(b.logits), want = syn_shape2(2, 10);
        ck_assert_msg(syn_shape_equal(&ls, &want), "%s: logits %s", e->d_name, syn_shape_str(&ls, dir, sizeof dir));
        built_free(&b);
    }
    closedir(dp);
    ck_assert_int_ge(files, 8);
}
END_TEST

/* Trainable parameters with 10 classes, by hand (weights + biases; batch norm
 * 2 per channel; the convolutions of ResNet blocks have no bias):
 *  lenet5 (1x28x28, pad 2 first): conv 6*1*25+6 = 156, conv 16*6*25+16 = 2,416,
 *    dense 400*120+120 = 48,120, 120*84+84 = 10,164, 84*10+10 = 850: 61,706.
 *  fmnist_cnn: conv 32*9+32 = 320, bn 64, conv 64*32*9+64 = 18,496, bn 128,
 *    dense 3136*128+128 = 401,536, 128*10+10 = 1,290: 421,834.
 *  resnet18 (CIFAR stem, 3x32x32): stem conv 3*64*9 = 1,728 + bn 128 = 1,856;
 *    stage 1: 2 x (2*36,864 + 256) = 147,968;
 *    stage 2: (73,728 + 147,456 + 512 + 8,192 + 256) + (2*147,456 + 512) = 230,144 + 295,424 = 525,568;
 *    stage 3: (294,912 + 589,824 + 1,024 + 32,768 + 512) + (2*589,824 + 1,024) = 919,040 + 1,180,672 = 2,099,712;
 *    stage 4: (1,179,648 + 2,359,296 + 2,048 + 131,072 + 1,024) + (2*2,359,296 + 2,048) = 3,673,088 + 4,720,640 = 8,393,728;
 *    fc 512*10+10 = 5,130. Total 11,173,962.
 *  resnet18_imagenet: the stem conv is 3*64*49 = 9,408 instead of 1,728: 11,181,642
 *    (torchvision's resnet18 has 11,689,512 with 1000 classes: - 513,000 + 5,130).
 *  resnet34 (CIFAR): torchvision's 21,797,672 - 513,000 + 5,130 - 7,680 = 21,282,122.
 *  vgg11 (BN, conv bias, dense 512->10): convs 9,220,480 + bn 5,504 + fc 5,130 = 9,231,114.
 *  vgg16: convs 14,714,688 + bn 8,448 + fc 5,130 = 14,728,266.
 *  alexnet_small (3x32x32): convs 1,792 + 110,784 + 663,936 + 884,992 + 590,080,
 *    dense 1024*4096+4096, 4096*4096+4096, 4096*10+10: 23,272,266. */
static const struct {
    const char *file;
    int64_t params;
} param_counts[] = {
    {"lenet5.cfg", 61706},          {"fmnist_cnn.cfg", 421834},  {"resnet18.cfg", 11173962},
    {"resnet18_imagenet.cfg", 11181642}, {"resnet34.cfg", 21282122}, {"vgg11.cfg", 9231114},
    {"vgg16.cfg", 14728266},        {"alexnet_small.cfg", 23272266},
};

START_TEST(test_param_counts) {
    built b = build_file(param_counts[_i].file, 1, NULL);
    ck_assert_msg(trainable_numel(b.p) == param_counts[_i].params, "%s: %lld trainable parameters, expected %lld",
                  param_counts[_i].file, (long long)trainable_numel(b.p), (long long)param_counts[_i].params);
    built_free(&b);
}
END_TEST

/* The C builders give the same parameters (names and shapes) as the files:
 * building one after the other on one set adds nothing. */
START_TEST(test_builders_match_files) {
    static const struct {
        const char *file;
        int kind, depth;
        bool cifar;
    } cases[] = {{"lenet5.cfg", 0, 0, false}, {"resnet18.cfg", 1, 18, true}, {"resnet18_imagenet.cfg", 1, 18, false},
                 {"vgg11.cfg", 2, 11, false}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        built b = build_file(cases[c].file, 2, NULL);
        int n = syn_params_count(b.p);
        int64_t numel = syn_params_numel(b.p);
        syn_graph *g2;
        TU_OK(syn_graph_create(b.p, &g2));
        syn_node *x = syn_input(g2, "x", SYN_F32, syn_node_shape(b.x));
        syn_node *y = cases[c].kind == 0   ? syn_lenet5(g2, x, 10)
                      : cases[c].kind == 1 ? syn_resnet(g2, x, cases[c].depth, 10, cases[c].cifar)
                                           : syn_vgg(g2, x, cases[c].depth, 10);
        ck_assert_msg(y != NULL, "%s: %s", cases[c].file, syn_last_error());
        ck_assert_msg(syn_params_count(b.p) == n && syn_params_numel(b.p) == numel,
                      "%s: the C builder made new parameters (%d -> %d)", cases[c].file, n, syn_params_count(b.p));
        syn_shape a = syn_node_shape(y), e = syn_node_shape(b.logits);
        ck_assert(syn_shape_equal(&a, &e));
        syn_graph_free(g2);
        built_free(&b);
    }
    /* ResNet-50 (bottlenecks), torchvision's 25,557,032 with 1000 classes: 23,528,522 with 10 */
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *y = syn_resnet(g, syn_input(g, "x", SYN_F32, syn_shape4(1, 3, 64, 64)), 50, 10, false);
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    ck_assert_int_eq(trainable_numel(p), 23528522);
    /* bad arguments are build errors, recorded in the graph */
    ck_assert_ptr_null(syn_resnet(g, y, 19, 10, true));
    ck_assert_int_eq(syn_graph_status(g), SYN_ERR_ARG);
    syn_graph_free(g);
    syn_params_free(p);
}
END_TEST

/* ---- ResNet-18 forward and backward ----------------------------------------------------- */

/* ResNet-18 (CIFAR stem, batch 2) compiled with and without the fusion pass
 * (core/fuse.c): the stem's and every block's first batch norm fuse with
 * their relu (9), every block's second with the residual add and relu (8);
 * the fused graph computes the same logits, loss, gradients and running
 * statistics (the CPU runs the same float operations in the same order). */
typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *logits, *loss;
} resnet_run;

static resnet_run resnet_step(const syn_model_desc *d, bool fuse, const float *xv, const int32_t *labels) {
    resnet_run r;
    TU_OK(syn_params_create(syn_cpu(), 4242, &r.p));
    TU_OK(syn_graph_create(r.p, &r.g));
    syn_node *x = syn_input(r.g, "x", SYN_F32, syn_shape4(2, 3, 32, 32));
    syn_node *y = syn_input(r.g, "y", SYN_I32, syn_shape1(2));
    r.logits = syn_model_build(r.g, d, x);
    r.loss = syn_cross_entropy(r.g, r.logits, y);
    TU_OK(syn_graph_status(r.g));
    TU_OK(syn_graph_keep(r.g, r.logits));
    syn_compile_opts o = {.no_fusion = !fuse};
    TU_OK(syn_graph_compile(r.g, syn_cpu(), &o));
    TU_OK(syn_graph_feed(r.g, x, xv, syn_shape4(2, 3, 32, 32)));
    TU_OK(syn_graph_feed(r.g, y, labels, syn_shape1(2)));
    TU_OK(syn_graph_forward(r.g));
    TU_OK(syn_params_zero_grad(r.p));
    TU_OK(syn_graph_backward(r.g, r.loss));
    return r;
}

START_TEST(test_resnet18_fusion) {
    syn_model_desc *d = load_model("resnet18.cfg");
    const int64_t n = 2 * 3 * 32 * 32;
    float *xv = malloc((size_t)n * sizeof *xv);
    ck_assert_ptr_nonnull(xv);
    tu_rng rng = tu_rng_make(23);
    tu_fill(&rng, xv, n, -1.0f, 1.0f);
    const int32_t labels[2] = {3, 7};
    resnet_run a = resnet_step(d, true, xv, labels), b = resnet_step(d, false, xv, labels);

    int relu = 0, add_relu = 0, absorbed = 0;
    for (int i = 0; i < a.g->n; i++) {
        relu += strcmp(syn_node_op_name(a.g->nodes[i]), "batch_norm+relu") == 0;
        add_relu += strcmp(syn_node_op_name(a.g->nodes[i]), "batch_norm+add+relu") == 0;
        absorbed += a.g->nodes[i]->absorbed_by != NULL;
        ck_assert(b.g->nodes[i]->absorbed_by == NULL);
    }
    ck_assert_int_eq(relu, 9);
    ck_assert_int_eq(add_relu, 8);
    ck_assert_int_eq(absorbed, 9 + 2 * 8);

    float la[20], lb[20], loss_a, loss_b;
    TU_OK(syn_graph_read(a.g, a.logits, la, sizeof la));
    TU_OK(syn_graph_read(b.g, b.logits, lb, sizeof lb));
    for (int k = 0; k < 20; k++) ck_assert_msg(la[k] == lb[k], "logit %d: fused %.9g, unfused %.9g", k, la[k], lb[k]);
    TU_OK(syn_graph_read_scalar(a.g, a.loss, &loss_a));
    TU_OK(syn_graph_read_scalar(b.g, b.loss, &loss_b));
    ck_assert_float_eq(loss_a, loss_b);
    ck_assert_int_eq(syn_params_count(a.p), syn_params_count(b.p));
    for (int i = 0; i < syn_params_count(a.p); i++) {
        const char *name;
        syn_tensor *va, *ga, *vb, *gb;
        TU_OK(syn_params_get(a.p, i, &name, &va, &ga));
        TU_OK(syn_params_get(b.p, i, NULL, &vb, &gb));
        const int64_t m = syn_tensor_numel(ga);
        float *u = malloc(2 * (size_t)m * sizeof *u);
        ck_assert_ptr_nonnull(u);
        for (int k = 0; k < 2; k++) { /* gradients, then values (the running statistics moved) */
            TU_OK(syn_tensor_read(k ? va : ga, u, (size_t)m * sizeof *u));
            TU_OK(syn_tensor_read(k ? vb : gb, u + m, (size_t)m * sizeof *u));
            for (int64_t j = 0; j < m; j++)
                ck_assert_msg(u[j] == u[m + j], "%s %s[%lld]: fused %.9g, unfused %.9g", k ? "value" : "gradient",
                              name, (long long)j, u[j], u[m + j]);
        }
        free(u);
    }
    for (int k = 0; k < 2; k++) {
        resnet_run *r = k ? &b : &a;
        syn_graph_free(r->g);
        syn_params_free(r->p);
    }
    free(xv);
    syn_model_desc_free(d);
}
END_TEST


START_TEST(test_resnet18_forward_backward) {
    const char *file = _i == 0 ? "resnet18.cfg" : "resnet18_imagenet.cfg";
    const int64_t S = _i == 0 ? 32 : 224;
    syn_params *p;
    syn_graph *g;
    syn_model_desc *d = load_model(file);
    TU_OK(syn_params_create(syn_cpu(), tu_seed(), &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape4(1, 3, S, S));
    syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(1));
    syn_node *logits = syn_model_build(g, d, x);
    syn_node *loss = syn_cross_entropy(g, logits, y);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_keep(g, logits));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));

    size_t n = (size_t)(3 * S * S);
    float *xv = malloc(n * sizeof *xv), out[10];
    ck_assert_ptr_nonnull(xv);
    tu_rng r = tu_rng_make(17 + (uint64_t)_i);
    tu_fill(&r, xv, (int64_t)n, -1.0f, 1.0f);
    int32_t label = 3;
    TU_OK(syn_graph_feed(g, x, xv, syn_shape4(1, 3, S, S)));
    TU_OK(syn_graph_feed(g, y, &label, syn_shape1(1)));
    TU_OK(syn_graph_forward(g));
    syn_shape ls = syn_graph_shape(g, logits), want = syn_shape2(1, 10);
    ck_assert(syn_shape_equal(&ls, &want));
    TU_OK(syn_graph_read(g, logits, out, sizeof out));
    for (int k = 0; k < 10; k++) ck_assert_msg(isfinite(out[k]), "logit %d = %g", k, (double)out[k]);
    float lv;
    TU_OK(syn_graph_read_scalar(g, loss, &lv));
    ck_assert(isfinite(lv) && lv > 0.0f);

    TU_OK(syn_params_zero_grad(p));
    TU_OK(syn_graph_backward(g, loss));
    /* every parameter's gradient is finite; every trainable one is nonzero
     * somewhere (the gradient reaches the stem through every block) */
    for (int i = 0; i < syn_params_count(p); i++) {
        const char *name;
        syn_tensor *v, *gr;
        TU_OK(syn_params_get(p, i, &name, &v, &gr));
        int64_t m = syn_tensor_numel(gr);
        float *gv = malloc((size_t)m * sizeof *gv);
        ck_assert_ptr_nonnull(gv);
        TU_OK(syn_tensor_read(gr, gv, (size_t)m * sizeof *gv));
        double norm = 0.0;
        for (int64_t k = 0; k < m; k++) {
            ck_assert_msg(isfinite(gv[k]), "%s: %s.grad[%lld] = %g", file, name, (long long)k, (double)gv[k]);
            norm += (double)gv[k] * gv[k];
        }
        if (!ends_with(name, ".running_mean") && !ends_with(name, ".running_var"))
            ck_assert_msg(norm > 0.0, "%s: %s has a zero gradient", file, name);
        free(gv);
    }
    free(xv);
    syn_graph_free(g);
    syn_params_free(p);
    syn_model_desc_free(d);
}
END_TEST

/* ---- bad files --------------------------------------------------------------------------- */

/* A good file; each case replaces up to two of its lines (1-based). */
static const char *const good_lines[] = {
    "[net]",            /* 1 */
    "input = 1,8,8",    /* 2 */
    "classes = 10",     /* 3 */
    "[conv]",           /* 4 */
    "filters = 4",      /* 5 */
    "size = 3",         /* 6 */
    "stride = 1",       /* 7 */
    "pad = 1",          /* 8 */
    "activation = relu", /* 9 */
    "[maxpool]",        /* 10 */
    "size = 2",         /* 11 */
    "stride = 2",       /* 12 */
    "pad = 0",          /* 13 */
    "[dense]",          /* 14 */
    "units = 10",       /* 15 */
    "[dropout]",        /* 16 */
    "p = 0.5",          /* 17 */
};
#define GOOD_N ((int)(sizeof good_lines / sizeof *good_lines))

static const struct {
    int l1;
    const char *t1;
    int l2;
    const char *t2;
    int line;                 /* expected in "bad.cfg:LINE:" */
    const char *need1, *need2; /* in the message */
} bad_cases[] = {
    {5, "filters = x", 0, NULL, 5, "[conv] filters = x", "whole number"},
    {5, "filters = 0", 0, NULL, 5, "filters = 0", "whole number"},
    {5, "filters = -3", 0, NULL, 5, "filters = -3", NULL},
    {5, "filters = 2.5", 0, NULL, 5, "filters = 2.5", NULL},
    {6, "size = 0", 0, NULL, 6, "size = 0", NULL},
    {6, "size = 3,3,3", 0, NULL, 6, "size = 3,3,3", "pair"},
    {6, "size = big", 0, NULL, 6, "size = big", NULL},
    {7, "stride = 0", 0, NULL, 7, "stride = 0", NULL},
    {7, "dilation = 0", 0, NULL, 7, "dilation = 0", NULL},
    {7, "groups = 0", 0, NULL, 7, "groups = 0", NULL},
    {7, "groups = 3", 0, NULL, 7, "groups = 3", "divisible"},
    {7, "bias = maybe", 0, NULL, 7, "bias = maybe", NULL},
    {8, "pad = -1", 0, NULL, 8, "pad = -1", NULL},
    {8, "pad = wide", 0, NULL, 8, "pad = wide", NULL},
    {8, "pad = same", 6, "size = 4", 8, "pad = same", "odd"},
    {9, "activation = relu6", 0, NULL, 9, "activation = relu6", "unknown activation"},
    {6, "kernel = 3", 0, NULL, 6, "kernel = 3", "unknown key"},
    {9, "out_pad = 1", 0, NULL, 9, "out_pad", "unknown key"},
    {10, "[maxpol]", 0, NULL, 10, "[maxpol]", "unknown section"},
    {10, "[maxpool] oops", 0, NULL, 10, "[maxpool]", "unexpected text"},
    {1, "# no net", 0, NULL, 2, "input = 1,8,8", "missing [net]"},
    {1, "[conv]", 2, "filters = 3", 1, "[conv]", "missing [net]"},
    {10, "[net]", 0, NULL, 10, "[net]", "first section"},
    {2, "input = 1,8", 0, NULL, 2, "input = 1,8", "C,H,W"},
    {2, "input = 0,8,8", 0, NULL, 2, "input = 0,8,8", NULL},
    {2, "input = 64", 0, NULL, 4, "[conv]", "image input"},
    {2, "size = 3", 0, NULL, 2, "[net] size = 3", "unknown key"},
    {3, "classes = 7", 0, NULL, 3, "classes = 7", "(10)"},
    {3, "classes = ten", 0, NULL, 3, "classes = ten", NULL},
    {7, "filters = 8", 0, NULL, 7, "filters = 8", "given twice in this section (first on line 5)"},
    {5, "; no filters", 0, NULL, 4, "[conv]", "missing key 'filters'"},
    {11, "size = 9", 0, NULL, 11, "[maxpool] size = 9", "larger than the 8x8 input"},
    {12, "stride = 0", 0, NULL, 12, "[maxpool] stride = 0", NULL},
    {13, "pad = 2", 0, NULL, 13, "[maxpool] pad = 2", "half"},
    {13, "pad = same", 0, NULL, 13, "[maxpool] pad = same", "[conv] only"},
    {15, "units = 0", 0, NULL, 15, "[dense] units = 0", NULL},
    {15, "units =", 0, NULL, 15, "[dense] units = ", NULL},
    {15, "; none", 0, NULL, 14, "[dense]", "missing key 'units'"},
    {17, "p = 1.5", 0, NULL, 17, "[dropout] p = 1.5", "probability"},
    {17, "name = d", 0, NULL, 17, "[dropout] name = d", "unknown key"},
    {8, "pad 1", 0, NULL, 8, "syntax error", NULL},
    {9, "name = bad name!", 0, NULL, 9, "name = bad name!", NULL},
    {14, "[layernorm]", 15, "", 14, "[layernorm]", "flat features"},
    {16, "[globalavgpool]", 17, "", 16, "[globalavgpool]", "image input"},
    {16, "[flatten]", 17, "size = 2", 17, "[flatten] size = 2", "takes no keys"},
};

static char *make_text(int l1, const char *t1, int l2, const char *t2) {
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    for (int i = 1; i <= GOOD_N; i++) {
        const char *line = i == l1 ? t1 : i == l2 ? t2 : good_lines[i - 1];
        len += (size_t)snprintf(s + len, cap - len, "%s\n", line);
    }
    return s;
}

START_TEST(test_good_file) {
    char *text = make_text(0, NULL, 0, NULL);
    syn_model_desc *d = NULL;
    TU_OK(syn_model_desc_parse(text, "good.cfg", &d));
    ck_assert_int_eq(syn_model_desc_layers(d), 4);
    ck_assert_str_eq(syn_model_desc_name(d), "good");
    syn_model_desc_free(d);
    free(text);
}
END_TEST

START_TEST(test_bad_file) {
    char *text = make_text(bad_cases[_i].l1, bad_cases[_i].t1, bad_cases[_i].l2, bad_cases[_i].t2);
    syn_model_desc *d = (syn_model_desc *)1;
    syn_status s = syn_model_desc_parse(text, "bad.cfg", &d);
    const char *msg = syn_last_error();
    ck_assert_msg(s == SYN_ERR_FORMAT, "case %d: status %s (%s)\n%s", _i, syn_status_str(s), msg, text);
    ck_assert_ptr_null(d);
    char where[32];
    snprintf(where, sizeof where, "bad.cfg:%d: ", bad_cases[_i].line);
    ck_assert_msg(strstr(msg, where) != NULL, "case %d: '%s' lacks '%s'", _i, msg, where);
    ck_assert_msg(strstr(msg, bad_cases[_i].need1), "case %d: '%s' lacks '%s'", _i, msg, bad_cases[_i].need1);
    if (bad_cases[_i].need2)
        ck_assert_msg(strstr(msg, bad_cases[_i].need2), "case %d: '%s' lacks '%s'", _i, msg, bad_cases[_i].need2);
    free(text);
}
END_TEST

START_TEST(test_bad_inputs) {
    syn_model_desc *d = NULL;
    /* empty, comments only, a long line, no file, a binary file */
    ck_assert_int_eq(syn_model_desc_parse("", "e.cfg", &d), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "e.cfg:1: missing [net]"));
    ck_assert_int_eq(syn_model_desc_parse("# nothing\n; here\n", "e.cfg", &d), SYN_ERR_FORMAT);
    ck_assert_int_eq(syn_model_desc_parse("[net]\ninput = 3\n", "e.cfg", &d), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "e.cfg:1: [net]: no layers"));
    char longline[400];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "[net]\ninput = 3\n[dense]\nunits = 3 ; ", 36);
    longline[sizeof longline - 1] = '\0';
    ck_assert_int_eq(syn_model_desc_parse(longline, "l.cfg", &d), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "l.cfg:4: the line is longer"));
    ck_assert_int_eq(syn_model_desc_parse(NULL, "x", &d), SYN_ERR_ARG);
    ck_assert_int_eq(syn_model_desc_load("/nonexistent/m.cfg", &d), SYN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "/nonexistent/m.cfg"));
    char path[] = "/tmp/syn_model_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "[net]\ninput = 3\0\n", 17), 17);
    close(fd);
    ck_assert_int_eq(syn_model_desc_load(path, &d), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), ":2: a NUL byte"));
    remove(path);
    /* comments, inline comments, blank and indented lines, CRLF, a BOM, pairs */
    const char *ok = "\xEF\xBB\xBF# a model\r\n[net] ; the input\r\n  input = 2, 9, 7\r\n\r\n[conv]\n filters = 4 ; four\n"
                     "size = 3,1\npad = 1,0\nstride = 2,1\n[flatten]\n[dense]\nname = head\nunits = 5\nbias = false\n";
    TU_OK(syn_model_desc_parse(ok, "ok.cfg", &d));
    syn_shape in;
    TU_OK(syn_model_desc_input(d, &in, NULL));
    syn_shape want = syn_shape3(2, 9, 7);
    ck_assert(syn_shape_equal(&in, &want));
    /* the name key names the parameters; bias = false drops the bias */
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *y = syn_model_build(g, d, syn_input(g, "x", SYN_F32, syn_shape4(3, 2, 9, 7)));
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    syn_tensor *v, *gr;
    TU_OK(syn_params_find(p, "head.weight", &v, &gr));
    ck_assert_int_eq(syn_tensor_numel(v), 5 * 4 * 5 * 7); /* conv: (9+2-3)/2+1 = 5 rows, 7 columns */
    ck_assert_int_eq(syn_params_find(p, "head.bias", &v, &gr), SYN_ERR_ARG);
    TU_OK(syn_params_find(p, "conv0.bias", &v, &gr));
    syn_graph_free(g);
    syn_params_free(p);
    syn_model_desc_free(d);
}
END_TEST

/* Every section kind and option, on a small input: the summary (which checks
 * the graph's shapes against the model check's) and a forward and backward pass. */
START_TEST(test_every_section) {
    const char *text = "[net]\ninput = 3,12,11\nclasses = 6\n"
                       "[conv]\nfilters = 8\nsize = 3,5\nstride = 1,2\npad = same\ndilation = 2,1\nactivation = gelu\n"
                       "[conv]\nfilters = 8\nsize = 3\ngroups = 4\nbias = 0\nname = grouped\n"
                       "[deconv]\nfilters = 6\nsize = 3\nstride = 2\npad = 1\nout_pad = 1\nactivation = leaky_relu\n"
                       "[batchnorm]\n[dropout2d]\np = 0.2\n[avgpool]\nsize = 3\nstride = 1\npad = 1\n"
                       "[activation]\ntype = tanh\n[bottleneck]\nfilters = 4\nstride = 2\n"
                       "[basicblock]\nfilters = 16\n[basicblock]\nfilters = 16\nstride = 2,1\n"
                       "[maxpool]\nsize = 2\nstride = 1\n[adaptiveavgpool]\nsize = 2,1\n[flatten]\n"
                       "[dense]\nunits = 12\nactivation = sigmoid\n[layernorm]\n[dropout]\np = 0\n"
                       "[globalavgpool]\n";
    syn_model_desc *d = NULL;
    /* a global pool of flat features is refused, on its line */
    ck_assert_int_eq(syn_model_desc_parse(text, "all.cfg", &d), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "all.cfg:53: [globalavgpool]: needs an image input"));
    size_t keep = (size_t)(strstr(text, "[globalavgpool]") - text);
    char *fixed = malloc(keep + 32);
    ck_assert_ptr_nonnull(fixed);
    memcpy(fixed, text, keep);
    strcpy(fixed + keep, "[dense]\nunits = 6\n");
    TU_OK(syn_model_desc_parse(fixed, "all.cfg", &d));
    free(fixed);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    TU_OK(syn_model_summary(d, 3, f));
    fclose(f);
    /* conv0: (12 + 2*2 - 5)/1 + 1 = 12, (11 + 2*2 - 5)/2 + 1 = 6; grouped: 10x4; deconv:
     * (10-1)*2 - 2 + 3 + 1 = 20, (4-1)*2 - 2 + 3 + 1 = 8; bottleneck /2: 10x4; basic /2,1: 5x4;
     * maxpool 2 stride 1: 4x3 */
    static const char *const need[] = {"conv 8 3x5 s1,2 p2 d2,1 gelu", "grouped", "g4 nobias", "(8,12,6)", "(8,10,4)",
                                       "deconv 6 3x3 s2 p1 op1,1 leaky_relu", "(6,20,8)", "bottleneck 4 s2", "(16,10,4)",
                                       "(16,5,4)", "(16,4,3)", "(16,2,1)", "(32)", "(12)", "(6)", "11,500 trainable"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        ck_assert_msg(strstr(out, need[i]) != NULL, "the summary lacks '%s':\n%s", need[i], out);
    free(out);

    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), tu_seed(), &p));
    TU_OK(syn_graph_create(p, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape4(3, 3, 12, 11));
    syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(3));
    syn_node *loss = syn_cross_entropy(g, syn_model_build(g, d, x), y);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    float xv[3 * 3 * 12 * 11];
    int32_t yv[3] = {0, 5, 2};
    tu_rng r = tu_rng_make(5);
    tu_fill(&r, xv, 3 * 3 * 12 * 11, -1.0f, 1.0f);
    TU_OK(syn_graph_feed(g, x, xv, syn_shape4(3, 3, 12, 11)));
    TU_OK(syn_graph_feed(g, y, yv, syn_shape1(3)));
    TU_OK(syn_graph_forward(g));
    float lv;
    TU_OK(syn_graph_read_scalar(g, loss, &lv));
    ck_assert(isfinite(lv));
    TU_OK(syn_graph_backward(g, loss));
    syn_graph_free(g);
    syn_params_free(p);
    syn_model_desc_free(d);
}
END_TEST

/* An input the layers do not fit: set_input and build both name the line. */
START_TEST(test_input_misfit) {
    syn_model_desc *d = load_model("vgg16.cfg");
    ck_assert_int_eq(syn_model_desc_set_input(d, syn_shape3(3, 8, 8)), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "vgg16.cfg:"));
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "[maxpool]"));
    ck_assert_int_eq(syn_model_desc_set_input(d, syn_shape2(3, 8)), SYN_ERR_ARG);
    syn_shape in;
    TU_OK(syn_model_desc_input(d, &in, NULL));
    ck_assert_int_eq(in.dim[1], 32); /* unchanged */
    syn_params *p;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &p));
    TU_OK(syn_graph_create(p, &g));
    ck_assert_ptr_null(syn_model_build(g, d, syn_input(g, "x", SYN_F32, syn_shape4(1, 3, 8, 8))));
    ck_assert_int_eq(syn_graph_status(g), SYN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "vgg16.cfg:"));
    ck_assert_int_eq(syn_graph_compile(g, syn_cpu(), NULL), SYN_ERR_SHAPE);
    syn_graph_free(g);
    /* 1x28x28 fits (Fashion-MNIST), and a second build shares the parameters */
    TU_OK(syn_model_desc_set_input(d, syn_shape3(1, 28, 28)));
    for (int k = 0; k < 2; k++) {
        TU_OK(syn_graph_create(p, &g));
        ck_assert_ptr_nonnull(syn_model_build(g, d, syn_input(g, "x", SYN_F32, syn_shape4(k ? 7 : 2, 1, 28, 28))));
        ck_assert_int_eq(trainable_numel(p), 14728266 - 64 * 9 * 2); /* 1 input channel, not 3 */
        syn_graph_free(g);
    }
    syn_params_free(p);
    syn_model_desc_free(d);
}
END_TEST

/* ---- summary ------------------------------------------------------------------------------- */

START_TEST(test_summary) {
    syn_model_desc *d = load_model("lenet5.cfg");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    TU_OK(syn_model_summary(d, 4, f));
    fclose(f);
    static const char *const need[] = {"parameters: 61,706 trainable", "(6,28,28)", "(16,5,5)", "(400)", "(10)",
                                       "conv0", "fc7", "48,120", "batch 4", "buffers:    0"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        ck_assert_msg(strstr(text, need[i]) != NULL, "the summary lacks '%s':\n%s", need[i], text);
    /* forward FLOPs per sample: convs 2*6*784*25 + 6*784 (bias) + 6*784 (relu) = 244,608 and
     * 2*16*100*150 + 1,600 + 1,600 = 483,200; pools 4*(6*196 + 16*25) = 6,304; dense
     * 2*(400*120 + 120*84 + 84*10) + 2*(120 + 84) + 10 = 118,258: 852,370, times 4 */
    ck_assert_msg(strstr(text, "(3409480)") != NULL, "FLOPs:\n%s", text);
    free(text);
    ck_assert_int_eq(syn_model_summary(d, 0, stdout), SYN_ERR_ARG);
    syn_model_desc_free(d);
}
END_TEST

/* ---- the CLI --------------------------------------------------------------------------------- */


START_TEST(test_cli) {
    char bin[512], cmd[2048], model[1024], bad[] = "/tmp/syn_badmodel_XXXXXX", *out;
    const char *dir = getenv("SYN_BINARY_DIR");
    snprintf(bin, sizeof bin, "%s/synapse", dir ? dir : ".");
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "test_model: SKIPPED CLI checks: no executable %s\n", bin);
        return;
    }
    tu_source_path("models/resnet18.cfg", model, sizeof model);
    snprintf(cmd, sizeof cmd, "%s summary %s --input 1,28,28 --batch 2", bin, model);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "parameters: 11,172,810 trainable")); /* 3 -> 1 input channels: -1,152 */
    ck_assert_ptr_nonnull(strstr(out, "(512,4,4)"));
    free(out);

    int fd = mkstemp(bad);
    ck_assert_int_ge(fd, 0);
    const char *text = "[net]\ninput = 1,28,28\n[conv]\nfilters = 8\nsize = 3\nactivation = swish\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(cmd, sizeof cmd, "%s summary %s 2>&1", bin, bad);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    snprintf(cmd, sizeof cmd, "%s:6: [conv] activation = swish", bad);
    ck_assert_msg(strstr(out, cmd) != NULL, "'%s' lacks '%s'", out, cmd);
    free(out);
    snprintf(cmd, sizeof cmd, "%s train %s --quiet 2>&1", bin, bad);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, ":6: [conv] activation = swish"));
    free(out);
    remove(bad);

    snprintf(cmd, sizeof cmd, "%s train %s --hidden 64 2>&1", bin, model);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "defines its own layers"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s summary 2>&1", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    free(out);
    snprintf(cmd, sizeof cmd, "%s summary %s --input 3,8 2>&1", bin, model);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --help", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "summary MODEL.cfg"));
    free(out);

    /* an image model on a CSV table (flat rows) is refused with a clear message */
    char csv[] = "/tmp/syn_model_csv_XXXXXX";
    fd = mkstemp(csv);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("a,b,y\n", f);
    for (int i = 0; i < 20; i++) fprintf(f, "%d,%d,%d\n", i, i % 3, i % 2);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s train %s --csv %s --label y --quiet 2>&1", bin, model, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "takes images"));
    free(out);
    remove(csv);
}
END_TEST

/* ---- a short training run ------------------------------------------------------------------ */

/* fmnist_cnn learns "which quadrant is brightest" from 256 noisy images. */
START_TEST(test_train_fmnist_cnn) {
    const int64_t n = 256, dim = 28 * 28;
    syn_dataset ds = {0};
    ds.n = n;
    ds.dim = dim;
    ds.sample_shape = syn_shape3(1, 28, 28);
    ds.num_classes = 10;
    ds.x = malloc((size_t)(n * dim) * sizeof *ds.x);
    ds.labels = malloc((size_t)n * sizeof *ds.labels);
    ck_assert(ds.x && ds.labels);
    tu_rng r = tu_rng_make(99);
    tu_fill(&r, ds.x, n * dim, 0.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) {
        int q = (int)(tu_next(&r) % 4);
        ds.labels[i] = q;
        for (int h = 0; h < 14; h++)
            for (int w = 0; w < 14; w++) ds.x[i * dim + (h + 14 * (q / 2)) * 28 + w + 14 * (q % 2)] += 0.5f;
    }

    syn_model_desc *d = load_model("fmnist_cnn.cfg");
    syn_params *p;
    syn_graph *g;
    syn_optim *opt;
    syn_model m = {0};
    TU_OK(syn_params_create(syn_cpu(), tu_seed(), &p));
    TU_OK(syn_graph_create(p, &g));
    m.graph = g;
    m.x = syn_input(g, "x", SYN_F32, syn_shape4(32, 1, 28, 28));
    m.y = syn_input(g, "y", SYN_I32, syn_shape1(32));
    m.logits = syn_model_build(g, d, m.x);
    m.loss = syn_cross_entropy(g, m.logits, m.y);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_keep(g, m.logits));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    TU_OK(syn_optim_create(p, &oc, &opt));
    syn_fit_config fc = {0};
    fc.epochs = 3;
    fc.batch_size = 32;
    fc.seed = tu_seed();
    fc.progress = SYN_PROGRESS_OFF;
    syn_fit_result res;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    TU_OK(syn_fit(&m, opt, &ds, NULL, &fc, &res));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "test_model: fmnist_cnn, 3 epochs of 256: train accuracy %.3f, loss %.4f, %.1f s\n",
            (double)res.train_accuracy, (double)res.train_loss,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    ck_assert_msg(res.train_accuracy >= 0.9f, "train accuracy %g after 3 epochs (seed %llu)", (double)res.train_accuracy,
                  (unsigned long long)tu_seed());
    float loss, acc;
    TU_OK(syn_evaluate(&m, &ds, 32, &loss, &acc));
    ck_assert_msg(acc >= 0.9f, "eval-mode accuracy %g (seed %llu)", (double)acc, (unsigned long long)tu_seed());
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(p);
    syn_model_desc_free(d);
    free(ds.x);
    free(ds.labels);
}
END_TEST

static Suite *model_suite(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_all_model_files);
    tcase_add_loop_test(tc, test_param_counts, 0, (int)(sizeof param_counts / sizeof *param_counts));
    tcase_add_test(tc, test_builders_match_files);
    tcase_add_test(tc, test_good_file);
    tcase_add_loop_test(tc, test_bad_file, 0, (int)(sizeof bad_cases / sizeof *bad_cases));
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_input_misfit);
    tcase_add_test(tc, test_every_section);
    tcase_add_test(tc, test_summary);
    tcase_add_test(tc, test_cli);
    suite_add_tcase(s, tc);
    tc = tcase_create("run");
    tcase_set_timeout(tc, 600);
    tcase_set_tags(tc, "slow"); /* real forward/backward passes: skipped in the sanitizer pass */
    tcase_add_loop_test(tc, test_resnet18_forward_backward, 0, 2);
    tcase_add_test(tc, test_resnet18_fusion);
    tcase_add_test(tc, test_train_fmnist_cnn);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(model_suite()); }
