/* A training loop for supervised models: epochs over a loader, an optimizer
 * step per batch, evaluation on a test set after each epoch, progress output,
 * and early stopping. */
#ifndef SYNAPSE_TRAIN_H
#define SYNAPSE_TRAIN_H

#include <stdio.h>
#include "data.h"
#include "graph.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A compiled graph and the nodes the loop needs. x: the features input
 * (batch, ...) F32; y: labels (batch) I32 for classification or targets
 * (batch, target_dim) F32 for regression; loss: scalar; logits: (batch, C)
 * for accuracy, or NULL for regression. */
typedef struct {
    syn_graph *graph;
    syn_node *x, *y, *loss, *logits;
} syn_model;

typedef enum { SYN_PROGRESS_AUTO = 0, SYN_PROGRESS_BAR, SYN_PROGRESS_LINES, SYN_PROGRESS_OFF } syn_progress;

typedef struct {
    int epochs;
    int64_t batch_size;
    uint64_t seed;          /* shuffling and dropout */
    float min_loss;         /* stop when the epoch's train loss <= min_loss (0: off) */
    int patience;           /* stop after this many epochs without a better test loss (0: off) */
    float clip_norm;        /* global gradient-norm clipping (0: off) */
    syn_schedule schedule;  /* steps count optimizer steps */
    syn_progress progress;  /* AUTO: a bar on a terminal, plain lines otherwise */
    FILE *out;              /* NULL: stderr */
} syn_fit_config;

typedef struct {
    int epochs_run;
    float train_loss;       /* mean over the last epoch */
    float train_accuracy;   /* -1 for regression */
    float test_loss;        /* -1 without a test set */
    float test_accuracy;    /* -1 for regression or without a test set */
    double seconds;         /* training + evaluation */
    double samples_per_s;   /* training samples per second */
    const char *stop_reason; /* "epochs", "min_loss", "patience" */
} syn_fit_result;

/* Trains `m` (compiled, with backward) on `train`; evaluates on `test` (may be
 * NULL) after each epoch in eval mode. */
SYN_API syn_status syn_fit(syn_model *m, syn_optim *opt, const syn_dataset *train, const syn_dataset *test,
                           const syn_fit_config *cfg, syn_fit_result *res);

/* Mean loss and accuracy (-1 for regression) of `m` over a data set, in eval mode. */
SYN_API syn_status syn_evaluate(syn_model *m, const syn_dataset *ds, int64_t batch_size, float *loss,
                                float *accuracy);

#ifdef __cplusplus
}
#endif
#endif
