/* Model descriptions into graphs: syn_model_build, the summary table, and the
 * C builders of the reference networks (LeNet-5, ResNet, VGG), which make a
 * description and build it, so both routes give the same parameter names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_desc.h"

/* ---- layers ------------------------------------------------------------------ */

/* conv kxk (no bias, pad k/2) - batch norm [- relu], named "<base>.<conv>", "<base>.<bn>". */
static syn_node *conv_bn(syn_graph *g, syn_node *x, int64_t out, int k, int sh, int sw, const char *base,
                         const char *conv, const char *bn, bool relu) {
    char cn[160], bnn[160];
    snprintf(cn, sizeof cn, "%s.%s", base, conv);
    snprintf(bnn, sizeof bnn, "%s.%s", base, bn);
    syn_conv_opts o = {0};
    o.no_bias = true;
    o.conv.stride_h = sh;
    o.conv.stride_w = sw;
    o.conv.pad_h = o.conv.pad_w = k / 2;
    syn_node *h = syn_batch_norm(g, syn_conv2d(g, x, out, k, k, cn, &o), bnn);
    return relu ? syn_relu(g, h) : h;
}

/* ResNet blocks (torchvision's v1.5: the stride sits on the 3x3):
 *   basic:      relu(bn(conv3x3(relu(bn(conv3x3_s(x))))) + shortcut(x))
 *   bottleneck: relu(bn(conv1x1_4F(relu(bn(conv3x3_s(relu(bn(conv1x1(x))))))) + shortcut(x))
 *   shortcut:   x, or bn(conv1x1_s(x)) when the stride or the channels change */
static syn_node *block(syn_graph *g, syn_node *x, const syn__model_layer *L, const char *base) {
    const bool basic = L->kind == SYN__L_BASICBLOCK;
    const int64_t F = L->filters, out_c = basic ? F : 4 * F, C = syn_node_shape(x).dim[1];
    syn_node *h;
    if (basic) {
        h = conv_bn(g, x, F, 3, L->sh, L->sw, base, "conv1", "bn1", true);
        h = conv_bn(g, h, F, 3, 1, 1, base, "conv2", "bn2", false);
    } else {
        h = conv_bn(g, x, F, 1, 1, 1, base, "conv1", "bn1", true);
        h = conv_bn(g, h, F, 3, L->sh, L->sw, base, "conv2", "bn2", true);
        h = conv_bn(g, h, out_c, 1, 1, 1, base, "conv3", "bn3", false);
    }
    syn_node *sc = x;
    if (L->sh != 1 || L->sw != 1 || C != out_c)
        sc = conv_bn(g, x, out_c, 1, L->sh, L->sw, base, "downsample.0", "downsample.1", false);
    return syn_relu(g, syn_add(g, h, sc));
}

/* x: (N, ...) -> layer i's output; x is not NULL. */
static syn_node *build_layer(syn_graph *g, const syn_model_desc *d, int i, syn_node *x) {
    const syn__model_layer *L = &d->layers[i];
    char base[96];
    syn__model_layer_name(d, i, base, sizeof base);
    const bool flat = syn_node_shape(x).ndim <= 2;
    switch (L->kind) {
    case SYN__L_CONV: case SYN__L_DECONV: {
        syn_conv_opts o = {0};
        o.no_bias = !L->bias;
        o.conv = (syn_conv_params){L->sh, L->sw, L->ph, L->pw, L->dh, L->dw, L->groups, L->oph, L->opw};
        syn_node *h = L->kind == SYN__L_CONV ? syn_conv2d(g, x, L->filters, L->kh, L->kw, base, &o)
                                             : syn_conv_transpose2d(g, x, L->filters, L->kh, L->kw, base, &o);
        return syn_activate(g, h, L->act);
    }
    case SYN__L_BATCHNORM: return syn_batch_norm(g, x, base);
    case SYN__L_LAYERNORM: return syn_layer_norm(g, x, base);
    case SYN__L_ACTIVATION: return syn_activate(g, x, L->act);
    case SYN__L_MAXPOOL: return syn_max_pool2d(g, x, L->kh, L->kw, L->sh, L->sw, L->ph, L->pw);
    case SYN__L_AVGPOOL: return syn_avg_pool2d(g, x, L->kh, L->kw, L->sh, L->sw, L->ph, L->pw, true);
    case SYN__L_GLOBALAVGPOOL: return syn_global_avg_pool(g, x);
    case SYN__L_ADAPTIVEAVGPOOL: return syn_adaptive_avg_pool2d(g, x, L->kh, L->kw);
    case SYN__L_FLATTEN: return flat ? x : syn_flatten(g, x);
    case SYN__L_DENSE: {
        syn_linear_opts o = {0};
        o.no_bias = !L->bias;
        return syn_activate(g, syn_linear(g, flat ? x : syn_flatten(g, x), L->filters, base, &o), L->act);
    }
    case SYN__L_DROPOUT: return L->p > 0.0f ? syn_dropout(g, x, L->p) : x;
    case SYN__L_DROPOUT2D: return L->p > 0.0f ? syn_dropout2d(g, x, L->p) : x;
    case SYN__L_BASICBLOCK: case SYN__L_BOTTLENECK: return block(g, x, L, base);
    case SYN__L_NET: case SYN__L_COUNT: break;
    }
    return syn__graph_fail(g, SYN_ERR_ARG, "model %s: layer %d has no builder", d->file, i);
}

/* The sample shape of x (N, C, H, W) or (N, D); false if x is neither. */
static bool sample_of(const syn_node *x, syn_shape *s) {
    syn_shape xs = syn_node_shape(x);
    if (xs.ndim != 2 && xs.ndim != 4) return false;
    s->ndim = xs.ndim - 1;
    for (int k = 1; k < xs.ndim; k++) s->dim[k - 1] = xs.dim[k];
    return true;
}

syn_node *syn_model_build(syn_graph *g, const syn_model_desc *d, syn_node *x) {
    char a[64], msg[700];
    if (!g) {
        syn__error(SYN_ERR_ARG, "syn_model_build: graph is NULL");
        return NULL;
    }
    if (g->err != SYN_OK) return NULL;
    if (!d || !x) return syn__graph_fail(g, SYN_ERR_ARG, "syn_model_build: NULL %s", d ? "input" : "description");
    syn_shape sample;
    if (!sample_of(x, &sample)) {
        syn_shape xs = syn_node_shape(x);
        return syn__graph_fail(g, SYN_ERR_SHAPE, "model %s: x must be (N, C, H, W) or (N, D), not %s", d->file,
                               syn_shape_str(&xs, a, sizeof a));
    }
    /* Our own shape walk first: its messages name the file, line and key. */
    if (syn__model_check(d, sample, NULL, NULL) != SYN_OK) {
        snprintf(msg, sizeof msg, "%s", syn__model_msg());
        return syn__graph_fail(g, SYN_ERR_SHAPE, "%s", msg);
    }
    for (int i = 0; i < d->n && x; i++) x = build_layer(g, d, i, x);
    return x;
}

/* ---- summary ------------------------------------------------------------------ */

static int64_t count_values(const syn_params *p, bool trainable) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++)
        if (p->items[i].trainable == trainable) n += syn_tensor_numel(p->items[i].value);
    return n;
}

/* 1234567 -> "1,234,567" */
static const char *fmt_count(int64_t v, char *buf, size_t size) {
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", (long long)(v < 0 ? -v : v)), o = 0;
    if (v < 0 && (size_t)o + 1 < size) buf[o++] = '-';
    for (int i = 0; i < n && (size_t)o + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && (size_t)o + 2 < size) buf[o++] = ',';
        buf[o++] = t[i];
    }
    buf[o] = '\0';
    return buf;
}

/* 3.54e9 -> "3.54 G" */
static const char *fmt_flops(double v, char *buf, size_t size) {
    static const char *const unit[] = {"", " K", " M", " G", " T", " P"};
    int u = 0;
    while (v >= 1000.0 && u < 5) v /= 1000.0, u++;
    snprintf(buf, size, u ? "%.2f%s" : "%.0f%s", v, unit[u]);
    return buf;
}

/* "conv 64 3x3 s2 p1 relu" */
static const char *describe(const syn__model_layer *L, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "%s", syn__model_kind_name[L->kind]);
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < size) n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__);                      \
    } while (0)
    switch (L->kind) {
    case SYN__L_CONV: case SYN__L_DECONV: case SYN__L_MAXPOOL: case SYN__L_AVGPOOL:
        if (L->kind == SYN__L_CONV || L->kind == SYN__L_DECONV) ADD(" %lld", (long long)L->filters);
        ADD(" %dx%d", L->kh, L->kw);
        if (L->sh != 1 || L->sw != 1) {
            if (L->sh == L->sw) ADD(" s%d", L->sh);
            else ADD(" s%d,%d", L->sh, L->sw);
        }
        if (L->ph || L->pw) {
            if (L->ph == L->pw) ADD(" p%d", L->ph);
            else ADD(" p%d,%d", L->ph, L->pw);
        }
        if (L->dh != 1 || L->dw != 1) ADD(" d%d,%d", L->dh, L->dw);
        if (L->groups != 1) ADD(" g%d", L->groups);
        if (L->oph || L->opw) ADD(" op%d,%d", L->oph, L->opw);
        if ((L->kind == SYN__L_CONV || L->kind == SYN__L_DECONV) && !L->bias) ADD(" nobias");
        break;
    case SYN__L_DENSE:
        ADD(" %lld", (long long)L->filters);
        if (!L->bias) ADD(" nobias");
        break;
    case SYN__L_ADAPTIVEAVGPOOL: ADD(" %dx%d", L->kh, L->kw); break;
    case SYN__L_DROPOUT: case SYN__L_DROPOUT2D: ADD(" %g", (double)L->p); break;
    case SYN__L_BASICBLOCK: case SYN__L_BOTTLENECK:
        ADD(" %lld", (long long)L->filters);
        if (L->sh != 1 || L->sw != 1) {
            if (L->sh == L->sw) ADD(" s%d", L->sh);
            else ADD(" s%d,%d", L->sh, L->sw);
        }
        break;
    default: break;
    }
    if (L->act != SYN_ACT_NONE) ADD(" %s", syn_activation_name(L->act));
#undef ADD
    return buf;
}

syn_status syn_model_summary(const syn_model_desc *d, int64_t batch, FILE *out) {
    if (!d || !out || batch < 1) return syn__error(SYN_ERR_ARG, "syn_model_summary: NULL argument or batch < 1");
    syn_shape *shapes = calloc((size_t)d->n, sizeof *shapes);
    double *flops = calloc((size_t)d->n, sizeof *flops);
    syn_params *p = NULL;
    syn_graph *g = NULL;
    syn_status s = shapes && flops ? SYN_OK : syn__error(SYN_ERR_OOM, "syn_model_summary: %d layers", d->n);
    if (s == SYN_OK) s = syn__model_check(d, d->input, shapes, flops);
    if (s == SYN_OK) s = syn_params_create(syn_cpu(), 0, &p);
    if (s == SYN_OK) s = syn_graph_create(p, &g);
    syn_node *h = NULL;
    if (s == SYN_OK) {
        syn_shape xs = d->input;
        for (int k = xs.ndim; k > 0; k--) xs.dim[k] = xs.dim[k - 1];
        xs.dim[0] = batch;
        xs.ndim++;
        h = syn_input(g, "x", SYN_F32, xs);
        s = syn_graph_status(g);
    }
    char a[64], b[64], c[96], nm[96], fl[32];
    double total_flops = 0.0;
    if (s == SYN_OK) {
        fprintf(out, "%s (%s): input %s, batch %lld\n", d->name, d->file, syn_shape_str(&d->input, a, sizeof a),
                (long long)batch);
        fprintf(out, "%4s  %-16s %-36s %-16s %12s %12s\n", "#", "name", "layer", "output", "params", "FLOPs");
    }
    for (int i = 0; s == SYN_OK && i < d->n; i++) {
        int64_t before = count_values(p, true);
        h = build_layer(g, d, i, h);
        if (!h) {
            s = syn_graph_status(g);
            break;
        }
        /* the graph's own shape inference must agree with the model check */
        syn_shape got = syn_node_shape(h), want = shapes[i];
        for (int k = want.ndim; k > 0; k--) want.dim[k] = want.dim[k - 1];
        want.dim[0] = batch;
        want.ndim++;
        if (!syn_shape_equal(&got, &want)) {
            s = syn__error(SYN_ERR_SHAPE, "%s: layer %d: the graph gives %s, the model check %s", d->file, i,
                           syn_shape_str(&got, a, sizeof a), syn_shape_str(&want, b, sizeof b));
            break;
        }
        const syn__model_layer *L = &d->layers[i];
        bool has_params = L->kind == SYN__L_CONV || L->kind == SYN__L_DECONV || L->kind == SYN__L_BATCHNORM ||
                          L->kind == SYN__L_LAYERNORM || L->kind == SYN__L_DENSE || L->kind == SYN__L_BASICBLOCK ||
                          L->kind == SYN__L_BOTTLENECK;
        total_flops += flops[i] * (double)batch;
        fprintf(out, "%4d  %-16s %-36s %-16s %12s %12s\n", i,
                has_params ? syn__model_layer_name(d, i, nm, sizeof nm) : "", describe(L, c, sizeof c),
                syn_shape_str(&shapes[i], a, sizeof a), fmt_count(count_values(p, true) - before, b, sizeof b),
                fmt_flops(flops[i] * (double)batch, fl, sizeof fl));
    }
    if (s == SYN_OK) {
        fprintf(out, "parameters: %s trainable\n", fmt_count(count_values(p, true), a, sizeof a));
        fprintf(out, "buffers:    %s (batch-norm running statistics)\n", fmt_count(count_values(p, false), a, sizeof a));
        fprintf(out, "forward:    %s FLOPs for a batch of %lld (%.0f)\n", fmt_flops(total_flops, a, sizeof a),
                (long long)batch, total_flops);
    }
    syn_graph_free(g);
    syn_params_free(p);
    free(shapes);
    free(flops);
    return s;
}

/* ---- C builders ------------------------------------------------------------------ */

/* A description for a builder, with room for every layer it adds (so that
 * add() cannot fail), input and classes from x; NULL with g's error set. */
static syn_model_desc *builder_desc(syn_graph *g, syn_node *x, const char *fn, const char *name, int classes) {
    char a[64];
    if (!g || g->err != SYN_OK) return NULL;
    syn_shape sample;
    if (!x) {
        syn__graph_fail(g, SYN_ERR_ARG, "%s: input is NULL", fn);
        return NULL;
    }
    if (!sample_of(x, &sample) || sample.ndim != 3) {
        syn_shape xs = syn_node_shape(x);
        syn__graph_fail(g, SYN_ERR_SHAPE, "%s: x must be (N, C, H, W), not %s", fn, syn_shape_str(&xs, a, sizeof a));
        return NULL;
    }
    if (classes < 1) {
        syn__graph_fail(g, SYN_ERR_ARG, "%s: classes %d < 1", fn, classes);
        return NULL;
    }
    syn_model_desc *d = syn__model_desc_new(fn, name, sample, classes);
    syn__model_layer *room = d ? malloc(128 * sizeof *room) : NULL;
    if (!room) {
        syn_model_desc_free(d);
        syn__graph_fail(g, SYN_ERR_OOM, "%s: out of memory", fn);
        return NULL;
    }
    d->layers = room;
    d->cap = 128;
    return d;
}

static syn__model_layer *add(syn_model_desc *d, syn__layer_kind kind) { return syn__model_add(d, kind); }

static void add_conv(syn_model_desc *d, int64_t filters, int k, int stride, int pad, bool bias, syn_activation act) {
    syn__model_layer *L = add(d, SYN__L_CONV);
    L->filters = filters;
    L->kh = L->kw = k;
    L->sh = L->sw = stride;
    L->ph = L->pw = pad;
    L->bias = bias;
    L->act = act;
}

static void add_pool(syn_model_desc *d, syn__layer_kind kind, int k, int stride, int pad) {
    syn__model_layer *L = add(d, kind);
    L->kh = L->kw = k;
    L->sh = L->sw = stride;
    L->ph = L->pw = pad;
}

static void add_dense(syn_model_desc *d, int64_t units, syn_activation act) {
    syn__model_layer *L = add(d, SYN__L_DENSE);
    L->filters = units;
    L->act = act;
}

static void add_bn_relu(syn_model_desc *d) {
    add(d, SYN__L_BATCHNORM);
    add(d, SYN__L_ACTIVATION)->act = SYN_ACT_RELU;
}

static syn_node *build_and_free(syn_graph *g, syn_model_desc *d, syn_node *x) {
    syn_node *y = syn_model_build(g, d, x);
    syn_model_desc_free(d);
    return y;
}

/* models/lenet5.cfg */
syn_node *syn_lenet5(syn_graph *g, syn_node *x, int classes) {
    syn_model_desc *d = builder_desc(g, x, "syn_lenet5", "lenet5", classes);
    if (!d) return NULL;
    add_conv(d, 6, 5, 1, 2, true, SYN_ACT_RELU);
    add_pool(d, SYN__L_AVGPOOL, 2, 2, 0);
    add_conv(d, 16, 5, 1, 0, true, SYN_ACT_RELU);
    add_pool(d, SYN__L_AVGPOOL, 2, 2, 0);
    add(d, SYN__L_FLATTEN);
    add_dense(d, 120, SYN_ACT_RELU);
    add_dense(d, 84, SYN_ACT_RELU);
    add_dense(d, classes, SYN_ACT_NONE);
    return build_and_free(g, d, x);
}

/* models/resnet18.cfg, resnet34.cfg, resnet18_imagenet.cfg */
syn_node *syn_resnet(syn_graph *g, syn_node *x, int depth, int classes, bool cifar_stem) {
    static const int blocks18[4] = {2, 2, 2, 2}, blocks34[4] = {3, 4, 6, 3};
    if (g && g->err == SYN_OK && depth != 18 && depth != 34 && depth != 50)
        return syn__graph_fail(g, SYN_ERR_ARG, "syn_resnet: depth %d (18, 34 or 50)", depth);
    char name[32];
    snprintf(name, sizeof name, "resnet%d%s", depth, cifar_stem ? "" : "_imagenet");
    syn_model_desc *d = builder_desc(g, x, "syn_resnet", name, classes);
    if (!d) return NULL;
    if (cifar_stem) {
        add_conv(d, 64, 3, 1, 1, false, SYN_ACT_NONE);
        add_bn_relu(d);
    } else {
        add_conv(d, 64, 7, 2, 3, false, SYN_ACT_NONE);
        add_bn_relu(d);
        add_pool(d, SYN__L_MAXPOOL, 3, 2, 1);
    }
    const int *nb = depth == 18 ? blocks18 : blocks34; /* 50 has 34's counts, in bottlenecks */
    for (int stage = 0; stage < 4; stage++)
        for (int b = 0; b < nb[stage]; b++) {
            syn__model_layer *L = add(d, depth == 50 ? SYN__L_BOTTLENECK : SYN__L_BASICBLOCK);
            L->filters = 64 << stage;
            L->sh = L->sw = stage > 0 && b == 0 ? 2 : 1;
        }
    add(d, SYN__L_GLOBALAVGPOOL);
    add_dense(d, classes, SYN_ACT_NONE);
    return build_and_free(g, d, x);
}

/* models/vgg11.cfg, vgg16.cfg: 0 ends a stage (a max pool; the last stage ends
 * in the global average pool instead, so 28x28 inputs fit too). */
syn_node *syn_vgg(syn_graph *g, syn_node *x, int depth, int classes) {
    static const int v11[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, -1};
    static const int v13[] = {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, -1};
    static const int v16[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, -1};
    static const int v19[] = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,  512,
                              512, 512, 512, 0,   512, 512, 512, 512, -1};
    const int *cfg = depth == 11 ? v11 : depth == 13 ? v13 : depth == 16 ? v16 : depth == 19 ? v19 : NULL;
    if (g && g->err == SYN_OK && !cfg) return syn__graph_fail(g, SYN_ERR_ARG, "syn_vgg: depth %d (11, 13, 16 or 19)", depth);
    char name[16];
    snprintf(name, sizeof name, "vgg%d", depth);
    syn_model_desc *d = builder_desc(g, x, "syn_vgg", name, classes);
    if (!d) return NULL;
    for (int i = 0; cfg[i] >= 0; i++) {
        if (cfg[i] == 0) {
            add_pool(d, SYN__L_MAXPOOL, 2, 2, 0);
            continue;
        }
        add_conv(d, cfg[i], 3, 1, 1, true, SYN_ACT_NONE);
        add_bn_relu(d);
    }
    add(d, SYN__L_GLOBALAVGPOOL);
    add_dense(d, classes, SYN_ACT_NONE);
    return build_and_free(g, d, x);
}
