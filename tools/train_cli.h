/* train's options, data and network (tools/synapse.c), shared with the
 * commands that rebuild the same network: eval and predict (tools/cmd_io.c). */
#ifndef SYN_TRAIN_CLI_H
#define SYN_TRAIN_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include "synapse/synapse.h"

#define MAX_HIDDEN 16

typedef struct {
    const char *data, *data_dir, *csv, *label, *loss, *device;
    const char *images, *test_images; /* image folders (DIR/<class>/<image>.png) */
    const char *model;  /* a model file, or NULL for the MLP */
    const char *save;   /* --save: a checkpoint after every epoch */
    const char *resume; /* --resume (train), or eval's CKPT */
    bool mlp_flags;     /* --hidden, --activation or --dropout given */
    bool regression, quiet;
    float test_fraction;
    int64_t hidden[MAX_HIDDEN];
    int n_hidden;
    syn_activation act;
    float dropout;
    syn_optim_kind optim;
    float lr, momentum, weight_decay; /* < 0: the optimizer's default */
    int epochs;
    int64_t batch;
    uint64_t seed;
    float min_error, clip;
    int patience;
    syn_sched_kind schedule;
    bool onecycle;      /* --schedule onecycle: warm-up over 30% of the steps, then cosine */
    int64_t warmup;
    bool nesterov;
    int crop_pad;       /* --crop-pad: random crop from the image padded by this much */
    bool flip;          /* --flip: random horizontal flips */
    bool cuda_graphs;   /* --cuda-graphs: syn_compile_opts.cuda_graphs */
} train_opts;

/* train's long options, getopt_long's table (ending in a zeroed entry): the
 * one list that eval and predict take theirs from. train_option_only(val):
 * the options (by their val) that only train takes. */
extern const struct option train_longopts[];
bool train_option_only(int val);

/* train (eval_usage NULL): `train [MODEL.cfg] [options]`; eval: `eval MODEL
 * CKPT [options]` with the data and model options only (MODEL "mlp" for the
 * MLP), eval_usage its help text. Returns -1 to go on, else an exit code (0
 * after --help). */
int train_parse(int argc, char **argv, train_opts *o, const char *eval_usage);
/* Loads the train and test sets and standardises both with the training
 * set's statistics, returned in *stats (stats may be NULL).
 * owned: syn_dataset_free, syn_norm_stats_free. */
syn_status train_load_data(const train_opts *o, syn_dataset **train, syn_dataset **test, syn_norm_stats **stats);
/* The test set alone (for a CSV: the rows train held out, the same split),
 * standardised with given statistics (a checkpoint's). */
syn_status train_load_test(const train_opts *o, const syn_norm_stats *st, syn_dataset **test);
/* The training CSV's header and its label column's index (a matching name,
 * else a 0-based index, as the reader takes --label). For a CSV the reader
 * has loaded with o->label, so the label is there. owned: syn_csv_header_free. */
syn_status train_csv_header(const train_opts *o, char ***names, int *count, int *label);

/* What train records in a checkpoint besides the standardisation statistics,
 * so that predict needs no training data: __metadata__ "data.<key>" entries
 * (syn_checkpoint_save_data) with these keys. */
#define DATA_SHAPE "shape"     /* one sample's shape: "1,28,28", or "4" for a table */
#define DATA_OUTPUTS "outputs" /* classes, or regression targets */
#define DATA_COLUMNS "columns" /* a CSV: its header's column count, the label's included */
#define DATA_COLUMN "column."  /* a CSV: "column.<k>", the k-th header name */
#define DATA_LABEL "label"     /* a CSV: the label column's index in the header */
#define DATA_CLASS "class."    /* images: "class.<k>", the k-th class's name (a folder's subfolder, or the data set's) */

/* The network a train_opts describes, built and compiled. */
typedef struct {
    syn_model_desc *md; /* the model file's, NULL for the MLP */
    syn_params *params;
    syn_graph *graph;
    syn_model m;        /* NET_PREDICT: y and loss NULL, logits the output */
    syn_shape xs;       /* x: (batch, ...) */
    bool classify;
    char name[160];     /* "mlp 784-256-128-10" or the model file's name (JSON-safe) */
    char desc[4096];    /* what a checkpoint records: the MLP's line or the model file's text */
} train_net;

/* Loads o->model (if any) into n->md and its text into n->desc (a file longer
 * than desc holds is an error); -1 to go on, else an exit code (the error
 * printed, n freed). */
int train_net_load(const train_opts *o, train_net *n);
/* What train_net_build builds. */
typedef enum {
    NET_TRAIN,   /* x, y -> logits -> loss, the backward pass planned (train) */
    NET_EVAL,    /* the same for inference: no backward pass (eval) */
    NET_PREDICT, /* x -> logits alone, for inference (predict): no y, no loss */
    NET_SALIENCY, /* as NET_TRAIN, with dL/dx asked for (predict --saliency; run in eval mode) */
} net_mode;

/* Builds and compiles the network for the data set's shapes. -1 to go on,
 * else an exit code (error printed). */
int train_net_build(const train_opts *o, syn_device dev, const syn_dataset *train, net_mode mode, train_net *n);
void train_net_free(train_net *n);

#endif
