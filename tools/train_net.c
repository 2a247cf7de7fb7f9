/* train's data and network (train_cli.h): the data sets the flags name,
 * standardised; the MLP or model file built for them and compiled. Shared by
 * train, eval and predict. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "synapse/synapse.h"
#include "cli.h"
#include "train_cli.h"

/* The data sets as the flags give them, before standardisation; train NULL:
 * the test set alone. */
static syn_status load_raw(const train_opts *o, syn_dataset **train, syn_dataset **test) {
    syn_status s;
    syn_dataset *tr = NULL;
    *test = NULL;
    if (o->csv) {
        syn_csv_opts co = {o->label, o->regression, 0};
        syn_dataset *all = NULL;
        s = syn_dataset_load_csv(o->csv, &co, &all);
        if (s == SYN_OK) s = syn_dataset_split(all, o->test_fraction, o->seed, &tr, test);
        syn_dataset_free(all);
    } else if (o->images && o->test_images) {
        /* the test folder with the training folder's classes and channels
         * (read for those even when only the test set is wanted) */
        char **classes = NULL;
        int nc = 0;
        s = syn_image_folder_classes(o->images, &classes, &nc);
        if (s == SYN_OK) s = syn_dataset_load_image_folder(o->images, 0, NULL, 0, &tr);
        const int channels = tr ? (int)tr->sample_shape.dim[0] : 0;
        if (s == SYN_OK)
            s = syn_dataset_load_image_folder(o->test_images, channels, (const char *const *)classes, nc, test);
        syn_image_folder_classes_free(classes, nc);
    } else if (o->images) {
        syn_dataset *all = NULL;
        s = syn_dataset_load_image_folder(o->images, 0, NULL, 0, &all);
        if (s == SYN_OK) s = syn_dataset_split(all, o->test_fraction, o->seed, &tr, test);
        syn_dataset_free(all);
    } else if (strcmp(o->data, "cifar10") == 0) {
        s = train ? syn_dataset_load_cifar10(o->data_dir, true, &tr) : SYN_OK;
        if (s == SYN_OK) s = syn_dataset_load_cifar10(o->data_dir, false, test);
    } else {
        s = train ? syn_dataset_load_fashion_mnist(o->data_dir, true, &tr) : SYN_OK;
        if (s == SYN_OK) s = syn_dataset_load_fashion_mnist(o->data_dir, false, test);
    }
    if (s == SYN_OK && train) *train = tr;
    else syn_dataset_free(tr);
    return s;
}

syn_status train_load_data(const train_opts *o, syn_dataset **train, syn_dataset **test, syn_norm_stats **stats) {
    *train = NULL;
    syn_status s = load_raw(o, train, test);
    /* Tables get per-column statistics; pixels one global mean and std. */
    if (s == SYN_OK) s = syn_dataset_standardize_stats(*train, *test, o->csv != NULL, stats);
    if (s != SYN_OK) {
        syn_dataset_free(*train);
        syn_dataset_free(*test);
        *train = *test = NULL;
    }
    return s;
}

syn_status train_load_test(const train_opts *o, const syn_norm_stats *st, syn_dataset **test) {
    syn_status s = load_raw(o, NULL, test);
    if (s == SYN_OK) s = syn_dataset_standardize_with(*test, st);
    if (s != SYN_OK) {
        syn_dataset_free(*test);
        *test = NULL;
    }
    return s;
}

syn_status train_csv_header(const train_opts *o, char ***names, int *count, int *label) {
    *label = -1;
    syn_status s = syn_csv_header_read(o->csv, 0, names, count);
    if (s != SYN_OK) return s;
    for (int k = 0; k < *count && *label < 0; k++)
        if (strcmp((*names)[k], o->label) == 0) *label = k;
    char *end;
    long v = strtol(o->label, &end, 10);
    if (*label < 0 && end != o->label && *end == '\0' && v >= 0 && v < *count) *label = (int)v;
    return SYN_OK;
}

/* A model file's input from the data set: (batch, C, H, W) for image samples,
 * (batch, dim) for a model with flat input; checks that the layers fit it.
 * Returns -1 to go on, else an exit code (the error printed). */
static int model_input(syn_model_desc *md, const syn_dataset *ds, int64_t batch, syn_shape *xs) {
    char a[64];
    syn_shape want, sample = ds->sample_shape;
    syn_model_desc_input(md, &want, NULL);
    if (want.ndim == 1 || sample.ndim != 3) {
        if (want.ndim == 3) {
            fprintf(stderr, "synapse: error: model %s takes images (C,H,W); the data set's samples are %s\n",
                    syn_model_desc_name(md), syn_shape_str(&sample, a, sizeof a));
            return 1;
        }
        sample = syn_shape1(ds->dim);
    }
    syn_status s = syn_model_desc_set_input(md, sample);
    if (s != SYN_OK) return runtime_error(s);
    *xs = sample;
    for (int k = xs->ndim; k > 0; k--) xs->dim[k] = xs->dim[k - 1];
    xs->dim[0] = batch;
    xs->ndim++;
    return -1;
}

int train_net_load(const train_opts *o, train_net *n) {
    memset(n, 0, sizeof *n);
    if (!o->model) return -1;
    syn_status s = syn_model_desc_load(o->model, &n->md);
    if (s != SYN_OK) return runtime_error(s);
    /* The file's text is what a checkpoint records and compares, whole: a
     * longer file would be recorded cut, and two files that differ only past
     * the cut would pass for the same model. */
    FILE *f = fopen(o->model, "rb");
    size_t k = f ? fread(n->desc, 1, sizeof n->desc - 1, f) : 0;
    bool longer = f && k == sizeof n->desc - 1 && fgetc(f) != EOF, bad = !f || ferror(f);
    long size = longer && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : (long)k;
    if (f) fclose(f);
    n->desc[k] = '\0';
    if (!bad && !longer) return -1;
    if (bad) fprintf(stderr, "synapse: error: %s: cannot read it: %s\n", o->model, strerror(errno));
    else
        fprintf(stderr, "synapse: error: %s: %ld bytes; a checkpoint records the model file's text, at most %zu bytes\n",
                o->model, size, sizeof n->desc - 1);
    train_net_free(n);
    return 1;
}

void train_net_free(train_net *n) {
    syn_model_desc_free(n->md);
    syn_graph_free(n->graph);
    syn_params_free(n->params);
    memset(n, 0, sizeof *n);
}

int train_net_build(const train_opts *o, syn_device dev, const syn_dataset *train, net_mode mode, train_net *n) {
    int rc;
    /* x: (batch, dim) -> mlp -> (batch, out), or (batch, C, H, W) -> model
     * file -> (batch, out); y: labels (batch) or targets (batch, t), absent
     * for NET_PREDICT */
    const bool classify = n->classify = !o->regression;
    const int64_t out = classify ? train->num_classes : train->target_dim;
    syn_model *m = &n->m;
    n->xs = syn_shape2(o->batch, train->dim);
    if (n->md && (rc = model_input(n->md, train, o->batch, &n->xs)) >= 0) return rc;
    syn_status s = syn_params_create(dev, o->seed, &n->params);
    if (s == SYN_OK) s = syn_graph_create(n->params, &n->graph);
    if (s != SYN_OK) return runtime_error(s);
    syn_graph *g = n->graph;
    m->graph = g;
    /* Inputs first: they are written before the forward pass runs. */
    m->x = syn_input(g, "x", SYN_F32, n->xs);
    if (mode != NET_PREDICT)
        m->y = classify ? syn_input(g, "y", SYN_I32, syn_shape1(o->batch))
                        : syn_input(g, "y", SYN_F32, syn_shape2(o->batch, out));
    m->logits = n->md ? syn_model_build(g, n->md, m->x)
                      : syn_mlp(g, m->x, o->hidden, o->n_hidden, out, o->act, o->dropout);
    if (n->md && m->logits) {
        syn_shape ls = syn_node_shape(m->logits);
        if (ls.ndim != 2 || ls.dim[1] != out) {
            char a[64];
            syn_shape per = ls;
            per.dim[0] = 1;
            fprintf(stderr, "synapse: error: %s gives %s per sample; the data set needs (1,%lld) (%s)\n", o->model,
                    syn_shape_str(&per, a, sizeof a), (long long)out, classify ? "its classes" : "its targets");
            return 1;
        }
    }
    if (mode != NET_PREDICT && classify) {
        m->loss = syn_cross_entropy(g, m->logits, m->y);
    } else if (mode != NET_PREDICT) {
        m->loss = strcmp(o->loss, "sse") == 0 ? syn_sse_loss(g, m->logits, m->y) : syn_mse_loss(g, m->logits, m->y);
        m->logits = NULL; /* no accuracy for regression */
    } /* predict: the logits are the output, no loss */
    s = syn_graph_status(g);
    if (s == SYN_OK && m->logits) s = syn_graph_keep(g, m->logits);
    if (s == SYN_OK && mode == NET_SALIENCY) s = syn_graph_input_grad(g, m->x);
    syn_compile_opts co = {.inference = mode != NET_TRAIN && mode != NET_SALIENCY, .cuda_graphs = o->cuda_graphs};
    if (s == SYN_OK) s = syn_graph_compile(g, dev, &co);
    if (s != SYN_OK) return runtime_error(s);

    int len = snprintf(n->name, sizeof n->name, "mlp %lld", (long long)train->dim);
    for (int i = 0; i < o->n_hidden && len < (int)sizeof n->name; i++)
        len += snprintf(n->name + len, sizeof n->name - (size_t)len, "-%lld", (long long)o->hidden[i]);
    if (len < (int)sizeof n->name) snprintf(n->name + len, sizeof n->name - (size_t)len, "-%lld", (long long)out);
    if (n->md) json_clean_string(n->name, sizeof n->name, syn_model_desc_name(n->md));
    else
        snprintf(n->desc, sizeof n->desc, "%s %s dropout %g loss %s", n->name, syn_activation_name(o->act),
                 (double)o->dropout, o->loss);
    return -1;
}
