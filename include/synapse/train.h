/* A training loop for supervised models: epochs over a loader, an optimizer
 * step per batch, evaluation on a test set after each epoch, progress output,
 * and early stopping. */
#ifndef SYNAPSE_TRAIN_H
#define SYNAPSE_TRAIN_H

#include <stdio.h>
#include "data.h"
#include "dist.h"
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
typedef enum { SYN_PREFETCH_AUTO = 0, SYN_PREFETCH_ON, SYN_PREFETCH_OFF } syn_prefetch;

/* The loop's state after an epoch: what a run needs to resume there. */
typedef struct syn_fit_result syn_fit_result;
typedef struct {
    int epoch;                 /* epochs completed */
    int64_t step;              /* optimizer steps taken (the schedule's clock) */
    uint64_t rng_counter;      /* the graph's dropout counter */
    float best_loss;           /* early stopping: the best watched loss (INFINITY: none yet) */
    int stale;                 /* early stopping: epochs since best_loss improved */
    const syn_fit_result *res; /* this epoch's losses; ignored when resuming */
} syn_fit_state;

typedef struct {
    int epochs;                /* the run's total, resumed epochs included */
    int64_t batch_size;
    uint64_t seed;          /* shuffling and dropout */
    float min_loss;         /* stop when the epoch's train loss <= min_loss (0: off) */
    int patience;           /* stop after this many epochs without a better test loss (0: off) */
    float clip_norm;        /* global gradient-norm clipping (0: off) */
    syn_schedule schedule;  /* steps count optimizer steps */
    syn_progress progress;  /* AUTO: a bar on a terminal, plain lines otherwise */
    FILE *out;              /* NULL: stderr */
    /* Resuming at an epoch boundary: the state on_epoch was given there (with
     * the model's weights and the optimizer's state restored by the caller,
     * e.g. syn_checkpoint_load). Epochs resume->epoch+1 .. epochs then run as
     * if the run had never stopped: the shuffling of epoch e is a function of
     * (seed, e) and dropout of (seed, rng_counter). NULL: a fresh run. */
    const syn_fit_state *resume;
    /* Called after every epoch (after evaluation and the stopping checks),
     * e.g. to write a checkpoint; a status other than SYN_OK ends the fit
     * with that status. NULL: none. */
    syn_status (*on_epoch)(void *user, const syn_fit_state *st);
    void *user;
    /* Random crop and flip of image samples for training batches (zeros:
     * none); the test set is never augmented. */
    syn_augment augment;
    /* The loader gathers the next batch in a worker thread while the step
     * runs (syn_loader_set_prefetch; the same batches either way). AUTO: on
     * for GPU models, off on the CPU, whose cores the kernels already use. */
    syn_prefetch prefetch;
    /* Data parallelism (include/synapse/dist.h; NULL or one member: none).
     * Every member calls syn_fit with its own model - the same network - on
     * the same data sets and config. batch_size is the whole step's batch:
     * each member trains on its share of it (syn_loader_set_shard), the
     * gradients are summed weighted by the shares, and the weights, which
     * start as rank 0's, stay the same on every member. Batch norm's
     * statistics come from each member's own rows; its running statistics are
     * rank 0's from each epoch's end. Evaluation splits the test set between
     * the members; losses, accuracies and the stopping checks are the whole
     * run's, the same on every member. Progress is written by rank 0 only;
     * on_epoch is called on every member. Without dropout, a run gives the
     * weights one process would get up to the rounding of the sums.
     * Every failure inside syn_fit is every member's: all return an error
     * together. A member whose own setup failed must still call syn_fit
     * (with whatever it has: a NULL graph or optimizer) so that the others
     * learn it, instead of waiting for it. */
    syn_comm *comm;
} syn_fit_config;

struct syn_fit_result {
    int epochs_run;
    float train_loss;       /* mean over the last epoch */
    float train_accuracy;   /* -1 for regression */
    float test_loss;        /* -1 without a test set */
    float test_accuracy;    /* -1 for regression or without a test set */
    double seconds;         /* training + evaluation */
    double samples_per_s;   /* training samples per second */
    const char *stop_reason; /* "epochs", "min_loss", "patience" */
};

/* Trains `m` (compiled, with backward) on `train`; evaluates on `test` (may be
 * NULL) after each epoch in eval mode. res->epochs_run counts resumed epochs
 * too; seconds and samples_per_s cover this call only. */
SYN_API syn_status syn_fit(syn_model *m, syn_optim *opt, const syn_dataset *train, const syn_dataset *test,
                           const syn_fit_config *cfg, syn_fit_result *res);

/* Mean loss and accuracy (-1 for regression) of `m` over a data set, in eval mode. */
SYN_API syn_status syn_evaluate(syn_model *m, const syn_dataset *ds, int64_t batch_size, float *loss,
                                float *accuracy);

#ifdef __cplusplus
}
#endif
#endif
