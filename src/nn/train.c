/* The supervised training loop (syn_fit) and evaluation (syn_evaluate):
 * validation of model and data, epochs over a shuffled loader, optimizer steps
 * with optional clipping and lr schedule, progress output and early stopping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../core/internal.h"
#include "../data/dataset.h"
#include "../dist/dist_internal.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What the loop needs to know about a model, derived once from its nodes. */
typedef struct {
    bool classify;        /* y is I32 class labels; else F32 regression targets */
    syn_shape x_feed;     /* x's capacity shape; dim[0] is replaced per batch */
    syn_shape y_feed;
    int64_t classes;      /* logits' last dim (classification with logits) */
} model_info;

/* Checks the model's nodes; `fn` names the caller in messages. */
static syn_status check_model(const syn_model *m, const char *fn, model_info *mi) {
    char a[96];
    if (!m || !m->graph) return syn__error(SYN_ERR_ARG, "%s: the model or its graph is NULL", fn);
    const syn_graph *g = m->graph;
    if (!g->compiled) return syn__error(SYN_ERR_ARG, "%s: compile the model's graph first", fn);
    if (!m->x || !m->y || !m->loss)
        return syn__error(SYN_ERR_ARG, "%s: the model needs x, y and loss nodes (%s is NULL)", fn,
                          !m->x ? "x" : !m->y ? "y" : "loss");
    if (m->x->g != g || m->y->g != g || m->loss->g != g || (m->logits && m->logits->g != g))
        return syn__error(SYN_ERR_ARG, "%s: a node of the model belongs to another graph", fn);
    if (m->x->op != SYN_OP_INPUT || m->y->op != SYN_OP_INPUT)
        return syn__error(SYN_ERR_ARG, "%s: x and y must be input nodes (got %s and %s)", fn, syn__op_name[m->x->op],
                          syn__op_name[m->y->op]);
    if (m->x->dtype != SYN_F32) return syn__error(SYN_ERR_ARG, "%s: x must be f32, it is %s", fn, syn_dtype_name(m->x->dtype));
    if (m->x->cap_shape.ndim < 1) return syn__error(SYN_ERR_SHAPE, "%s: x has no batch dim", fn);
    if (m->loss->cap_shape.ndim != 0 || m->loss->dtype != SYN_F32)
        return syn__error(SYN_ERR_SHAPE, "%s: the loss must be an f32 scalar, it is %s %s", fn,
                          syn_dtype_name(m->loss->dtype), syn_shape_str(&m->loss->cap_shape, a, sizeof a));
    mi->classify = m->y->dtype == SYN_I32;
    mi->x_feed = m->x->cap_shape;
    mi->y_feed = m->y->cap_shape;
    mi->classes = 0;
    if (mi->classify) {
        if (m->y->cap_shape.ndim != 1)
            return syn__error(SYN_ERR_SHAPE, "%s: class labels y must be (batch), not %s", fn,
                              syn_shape_str(&m->y->cap_shape, a, sizeof a));
        if (m->logits) {
            const syn_shape *ls = &m->logits->cap_shape;
            if (ls->ndim != 2 || m->logits->dtype != SYN_F32)
                return syn__error(SYN_ERR_SHAPE, "%s: logits must be f32 (batch, classes), not %s", fn,
                                  syn_shape_str(ls, a, sizeof a));
            mi->classes = ls->dim[1];
            if (!m->logits->keep)
                return syn__error(SYN_ERR_ARG, "%s: the logits (node %d, %s) were not kept: call syn_graph_keep on them "
                                  "before compiling", fn, m->logits->id, syn_node_op_name(m->logits));
        }
    } else if (m->y->dtype != SYN_F32 || m->y->cap_shape.ndim < 1) {
        return syn__error(SYN_ERR_ARG, "%s: y must be i32 labels (batch) or f32 targets (batch, d)", fn);
    }
    return SYN_OK;
}

/* Checks that `ds` fits the model: features, labels or targets. */
static syn_status check_data(const syn_model *m, const model_info *mi, const syn_dataset *ds, const char *which,
                             const char *fn) {
    char a[96], b[96];
    if (!ds) return syn__error(SYN_ERR_ARG, "%s: the %s set is NULL", fn, which);
    if (ds->n < 1 || !ds->x) return syn__error(SYN_ERR_ARG, "%s: the %s set is empty", fn, which);
    syn_shape xs = mi->x_feed;
    xs.dim[0] = 1;
    if (syn_shape_numel(&xs) != ds->dim)
        return syn__error(SYN_ERR_SHAPE, "%s: %s samples have %lld features (shape %s) but x is %s", fn, which,
                          (long long)ds->dim, syn_shape_str(&ds->sample_shape, a, sizeof a),
                          syn_shape_str(&m->x->cap_shape, b, sizeof b));
    /* A NaN or inf feature would silently turn every later loss into NaN. */
    for (int64_t i = 0; i < ds->n * ds->dim; i++)
        if (!isfinite(ds->x[i]))
            return syn__error(SYN_ERR_ARG, "%s: the %s set has a non-finite feature (%g) at row %lld, feature %lld", fn,
                              which, (double)ds->x[i], (long long)(i / ds->dim), (long long)(i % ds->dim));
    if (mi->classify) {
        if (!ds->labels || ds->num_classes < 1)
            return syn__error(SYN_ERR_ARG, "%s: the model is a classifier (i32 y) but the %s set has no class labels", fn,
                              which);
        if (mi->classes && ds->num_classes != mi->classes)
            return syn__error(SYN_ERR_SHAPE, "%s: the %s set has %d classes but the logits are %s", fn, which,
                              ds->num_classes, syn_shape_str(&m->logits->cap_shape, a, sizeof a));
        for (int64_t i = 0; i < ds->n; i++)
            if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes)
                return syn__error(SYN_ERR_ARG, "%s: %s label %d at row %lld is outside [0, %d)", fn, which,
                                  (int)ds->labels[i], (long long)i, ds->num_classes);
    } else {
        syn_shape ys = mi->y_feed;
        ys.dim[0] = 1;
        if (!ds->targets)
            return syn__error(SYN_ERR_ARG, "%s: the model is a regressor (f32 y) but the %s set has no targets", fn, which);
        if (syn_shape_numel(&ys) != ds->target_dim)
            return syn__error(SYN_ERR_SHAPE, "%s: the %s set has %lld targets per sample but y is %s", fn, which,
                              (long long)ds->target_dim, syn_shape_str(&m->y->cap_shape, a, sizeof a));
        for (int64_t i = 0; i < ds->n * ds->target_dim; i++)
            if (!isfinite(ds->targets[i]))
                return syn__error(SYN_ERR_ARG, "%s: the %s set has a non-finite target (%g) at row %lld", fn, which,
                                  (double)ds->targets[i], (long long)(i / ds->target_dim));
    }
    return SYN_OK;
}

static syn_status check_batch(const syn_model *m, int64_t batch, const char *fn) {
    if (batch < 1) return syn__error(SYN_ERR_ARG, "%s: batch size %lld (must be >= 1)", fn, (long long)batch);
    int64_t cap = m->x->cap_shape.dim[0];
    if (m->y->cap_shape.dim[0] < cap) cap = m->y->cap_shape.dim[0];
    if (batch > cap)
        return syn__error(SYN_ERR_ARG, "%s: batch size %lld exceeds the model's input capacity %lld (x's leading dim)",
                          fn, (long long)batch, (long long)cap);
    return SYN_OK;
}

/* Feeds one batch of n rows into x and y. */
static syn_status feed_batch(syn_model *m, const model_info *mi, const syn_batch *b) {
    syn_shape xs = mi->x_feed, ys = mi->y_feed;
    xs.dim[0] = ys.dim[0] = b->n;
    SYN_TRY(syn_graph_feed(m->graph, m->x, b->x, xs));
    return syn_graph_feed(m->graph, m->y, mi->classify ? (const void *)b->labels : (const void *)b->targets, ys);
}

/* ---- evaluation ------------------------------------------------------------ */

/* Whether a loader for m prefetches: the setting, AUTO meaning on a GPU. */
static bool use_prefetch(const syn_model *m, syn_prefetch p) {
    return p == SYN_PREFETCH_ON || (p == SYN_PREFETCH_AUTO && syn_graph_device(m->graph).type != SYN_DEVICE_CPU);
}

/* The evaluation loop itself, for a model already checked: the sums of the
 * loss (times rows), of the rows right and of the rows over ds. */
static syn_status evaluate_sums(syn_model *m, const model_info *mi, const syn_dataset *ds, int64_t batch_size,
                                bool prefetch, double sums[3]) {
    syn_loader *ld = NULL;
    syn__metrics *mt = NULL;
    bool acc = mi->classify && m->logits;
    bool was_training = syn_graph_training(m->graph);
    double sum = 0.0;
    int64_t seen = 0, correct = 0;
    sums[0] = sums[1] = sums[2] = 0.0;
    if (ds->n == 0) return SYN_OK; /* a member's part of a set smaller than the members */
    syn_status s = syn_loader_create(ds, batch_size, false, 0, false, &ld);
    if (s == SYN_OK && prefetch) s = syn_loader_set_prefetch(ld, true);
    if (s == SYN_OK) s = syn__metrics_create(m->graph, &mt);
    syn_graph_set_training(m->graph, false);
    while (s == SYN_OK) {
        syn_batch b;
        if ((s = syn_loader_next(ld, &b)) != SYN_OK || b.n == 0) break;
        if ((s = feed_batch(m, mi, &b)) != SYN_OK) break;
        if ((s = syn_graph_forward(m->graph)) != SYN_OK) break;
        if ((s = syn__metrics_add(mt, m->loss, acc ? m->logits : NULL, m->y, b.n)) != SYN_OK) break;
        seen += b.n;
    }
    if (s == SYN_OK) s = syn__metrics_take(mt, &sum, &correct);
    syn_graph_set_training(m->graph, was_training);
    syn_loader_free(ld);
    syn__metrics_free(mt);
    sums[0] = sum;
    sums[1] = (double)correct;
    sums[2] = (double)seen;
    return s;
}

/* Mean loss and accuracy over ds; with a communicator of several members,
 * each evaluates its contiguous part of ds and the sums are added up. */
static syn_status evaluate(syn_model *m, const model_info *mi, const syn_dataset *ds, int64_t batch_size,
                           bool prefetch, syn_comm *comm, float *loss, float *accuracy) {
    syn_dataset part = *ds;
    int rank = syn_comm_rank(comm), size = syn_comm_size(comm);
    if (size > 1) { /* rows [lo, hi) */
        int64_t lo = ds->n * rank / size, hi = ds->n * (rank + 1) / size;
        part.n = hi - lo;
        part.x = ds->x + lo * ds->dim;
        if (ds->labels) part.labels = ds->labels + lo;
        if (ds->targets) part.targets = ds->targets + lo * ds->target_dim;
    }
    double sums[3];
    syn_status s = evaluate_sums(m, mi, &part, batch_size, prefetch, sums);
    if (size > 1) s = syn__comm_agree(comm, s, sums, 3, "syn_fit", "in the evaluation");
    if (s != SYN_OK) return s;
    if (loss) *loss = (float)(sums[0] / sums[2]);
    if (accuracy) *accuracy = mi->classify && m->logits ? (float)(sums[1] / sums[2]) : -1.0f;
    return SYN_OK;
}

syn_status syn_evaluate(syn_model *m, const syn_dataset *ds, int64_t batch_size, float *loss, float *accuracy) {
    model_info mi;
    SYN_TRY(check_model(m, "syn_evaluate", &mi));
    SYN_TRY(check_batch(m, batch_size, "syn_evaluate"));
    SYN_TRY(check_data(m, &mi, ds, "evaluation", "syn_evaluate"));
    return evaluate(m, &mi, ds, batch_size, use_prefetch(m, SYN_PREFETCH_AUTO), NULL, loss, accuracy);
}

/* ---- progress ------------------------------------------------------------- */

typedef struct {
    FILE *out;
    syn_progress mode; /* resolved: BAR, LINES or OFF */
    int epochs;
    int64_t batches;
    double last_draw;
} progress;

static void bar_draw(progress *p, int epoch, int64_t batch, double loss, double acc, double rate) {
    enum { WIDTH = 24 };
    char bar[WIDTH + 1];
    int filled = p->batches > 0 ? (int)(WIDTH * batch / p->batches) : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(p->out, "\repoch %d/%d [%s] %lld/%lld  loss %.4f", epoch, p->epochs, bar, (long long)batch,
            (long long)p->batches, loss);
    if (acc >= 0) fprintf(p->out, "  acc %.4f", acc);
    fprintf(p->out, "  %.0f samples/s\033[K", rate);
    fflush(p->out);
}

/* The end-of-epoch line; acc and test values < 0 are left out. */
static void epoch_line(progress *p, int epoch, double loss, double acc, const syn_dataset *test, double tloss,
                       double tacc, double rate, double secs) {
    if (p->mode == SYN_PROGRESS_OFF) return;
    if (p->mode == SYN_PROGRESS_BAR) fputs("\r\033[K", p->out);
    fprintf(p->out, "epoch %d/%d  loss %.4f", epoch, p->epochs, loss);
    if (acc >= 0) fprintf(p->out, "  acc %.4f", acc);
    if (test) {
        fprintf(p->out, "  test_loss %.4f", tloss);
        if (tacc >= 0) fprintf(p->out, "  test_acc %.4f", tacc);
    }
    fprintf(p->out, "  %.0f samples/s  %.1fs\n", rate, secs);
    fflush(p->out);
}

/* ---- training ------------------------------------------------------------- */

/* Everything syn_fit checks before it starts; members: the communicator's. */
static syn_status fit_check(syn_model *m, const syn_dataset *train, const syn_dataset *test,
                            const syn_fit_config *cfg, int members, model_info *mi, syn_params **params) {
    static const char fn[] = "syn_fit";
    SYN_TRY(check_model(m, fn, mi));
    if (m->graph->inference)
        return syn__error(SYN_ERR_ARG, "%s: the graph was compiled for inference; compile it for training", fn);
    if (cfg->epochs < 1) return syn__error(SYN_ERR_ARG, "%s: epochs %d (must be >= 1)", fn, cfg->epochs);
    /* a member holds its share of the batch: at most batch / members, rounded up */
    SYN_TRY(check_batch(m, (cfg->batch_size + members - 1) / members, fn));
    if (mi->classify && !m->logits)
        return syn__error(SYN_ERR_ARG, "%s: a classifier needs its logits node (for accuracy)", fn);
    if (!(cfg->clip_norm >= 0.0f) || !(cfg->min_loss >= 0.0f) || cfg->patience < 0)
        return syn__error(SYN_ERR_ARG, "%s: clip_norm %g, min_loss %g and patience %d must not be negative", fn,
                          (double)cfg->clip_norm, (double)cfg->min_loss, cfg->patience);
    if ((unsigned)cfg->prefetch > SYN_PREFETCH_OFF)
        return syn__error(SYN_ERR_ARG, "%s: prefetch %d is not one of AUTO, ON, OFF", fn, (int)cfg->prefetch);
    const syn_fit_state *rs = cfg->resume;
    if (rs && (rs->epoch < 0 || rs->step < 0 || rs->stale < 0))
        return syn__error(SYN_ERR_ARG, "%s: resume state epoch %d, step %lld, stale %d must not be negative", fn,
                          rs->epoch, (long long)rs->step, rs->stale);
    if (rs && rs->epoch >= cfg->epochs)
        return syn__error(SYN_ERR_ARG, "%s: the run to resume has done %d epochs already, and epochs is %d", fn,
                          rs->epoch, cfg->epochs);
    SYN_TRY(check_data(m, mi, train, "training", fn));
    if (test) SYN_TRY(check_data(m, mi, test, "test", fn));
    if (!(*params = syn_graph_params(m->graph)))
        return syn__error(SYN_ERR_ARG, "%s: the graph has no parameter set", fn);
    return SYN_OK;
}

/* The shuffling loader over the training set: this member's shard of each
 * batch, augmentation, prefetching. */
static syn_status fit_loader(const syn_dataset *train, const syn_fit_config *cfg, syn_comm *comm, bool prefetch,
                             syn_loader **out) {
    syn_loader *ld = NULL;
    syn_status s = syn_loader_create(train, cfg->batch_size, true, cfg->seed, false, &ld);
    if (s == SYN_OK && comm) s = syn_loader_set_shard(ld, syn_comm_rank(comm), syn_comm_size(comm));
    if (s == SYN_OK && (cfg->augment.pad_crop > 0 || cfg->augment.hflip)) s = syn_loader_set_augment(ld, &cfg->augment);
    if (s == SYN_OK && prefetch) s = syn_loader_set_prefetch(ld, true);
    if (s != SYN_OK) {
        syn_loader_free(ld);
        ld = NULL;
    }
    *out = ld;
    return s;
}

syn_status syn_fit(syn_model *m, syn_optim *opt, const syn_dataset *train, const syn_dataset *test,
                   const syn_fit_config *cfg, syn_fit_result *res) {
    static const char fn[] = "syn_fit";
    model_info mi;
    if (res) {
        memset(res, 0, sizeof *res);
        res->train_accuracy = res->test_loss = res->test_accuracy = -1.0f;
        res->stop_reason = "epochs";
    }
    if (!cfg || !res) return syn__error(SYN_ERR_ARG, "%s: NULL %s", fn, !cfg ? "config" : "result");
    /* With several members every failure below is agreed on (syn__fit_*):
     * all members stop together, none waits in a collective for one that left. */
    syn_comm *comm = syn_comm_size(cfg->comm) > 1 ? cfg->comm : NULL;
    const int members = syn_comm_size(comm);
    syn_params *params = NULL;
    syn_status s = opt ? fit_check(m, train, test, cfg, members, &mi, &params)
                       : syn__error(SYN_ERR_ARG, "%s: NULL optimizer", fn);
    if (comm) s = syn__fit_start(comm, s, params, train, test, cfg, fn);
    if (s != SYN_OK) return s;

    const double t_start = now_s();
    syn_graph *g = m->graph;
    syn_loader *ld = NULL;
    syn__metrics *mt = NULL;
    const float base_lr = syn_optim_lr(opt);
    /* on a GPU the next batch is gathered while the step runs */
    const bool prefetch = use_prefetch(m, cfg->prefetch);
    s = fit_loader(train, cfg, comm, prefetch, &ld);
    if (s == SYN_OK) s = syn__metrics_create(g, &mt);
    if (comm) s = syn__comm_agree(comm, s, NULL, 0, fn, "to set up");
    if (s != SYN_OK) {
        syn_loader_free(ld);
        syn__metrics_free(mt);
        return s;
    }

    progress pg = {cfg->out ? cfg->out : stderr, cfg->progress, cfg->epochs, syn_loader_batches(ld), 0.0};
    if (pg.mode == SYN_PROGRESS_AUTO) pg.mode = isatty(fileno(pg.out)) ? SYN_PROGRESS_BAR : SYN_PROGRESS_LINES;
    if (syn_comm_rank(comm) != 0) pg.mode = SYN_PROGRESS_OFF;
    /* A cosine schedule without a horizon anneals over the whole run. */
    syn_schedule sched = cfg->schedule;
    if (sched.kind == SYN_SCHED_COSINE && sched.total_steps <= 0) sched.total_steps = (int64_t)cfg->epochs * pg.batches;
    const bool scheduled = sched.kind != SYN_SCHED_CONSTANT || sched.warmup_steps > 0;

    syn_graph_set_training(g, true);
    /* dropout: each member its own masks (member 0 those of a lone process) */
    syn_graph_set_seed(g, cfg->seed + (uint64_t)syn_comm_rank(comm));
    double train_time = 0.0, best = INFINITY;
    int64_t step = 0, samples = 0;
    int stale = 0, first = 1;
    const syn_fit_state *rs = cfg->resume;
    if (rs) {
        /* The loader's epoch e is shuffled (and augmented) by (seed, e) */
        syn__loader_seek_epoch(ld, (uint64_t)rs->epoch);
        g->rng_counter = rs->rng_counter;
        step = rs->step;
        best = rs->best_loss;
        stale = rs->stale;
        first = rs->epoch + 1;
    }
    for (int epoch = first; epoch <= cfg->epochs && s == SYN_OK; epoch++) {
        const double t_epoch = now_s();
        double loss_sum = 0.0;
        int64_t seen = 0, correct = 0, batch_i = 0, seen_all = 0;
        /* a failure after a step's collective: the others learn it at the
         * next collective (every member has the same batches) */
        syn_status late = syn__metrics_reset(mt);
        for (;;) {
            syn_batch b;
            if ((s = syn_loader_next(ld, &b)) != SYN_OK || b.n == 0) break;
            s = late;
            if (s == SYN_OK) s = feed_batch(m, &mi, &b);
            if (s == SYN_OK) s = syn_params_zero_grad(params);
            if (s == SYN_OK) s = syn_graph_forward_backward(g, m->loss);
            syn_status after = SYN_OK; /* a failure past the collective: passed on below */
            if (comm) s = syn__fit_step(comm, params, s, b.n, b.total, fn, &after);
            if (s != SYN_OK) break;
            s = after;
            if (s == SYN_OK && cfg->clip_norm > 0.0f) s = syn_params_clip_grad_norm(params, cfg->clip_norm, NULL);
            if (scheduled) syn_optim_set_lr(opt, syn_schedule_lr(&sched, base_lr, step));
            if (s == SYN_OK) s = syn_optim_step(opt);
            step++;
            /* the loss and the rows right add up on the device: the host
             * waits for it only to draw the bar and at the epoch's end */
            if (s == SYN_OK) s = syn__metrics_add(mt, m->loss, mi.classify ? m->logits : NULL, m->y, b.n);
            seen += b.n;
            seen_all += b.total;
            batch_i++;
            if (s == SYN_OK && pg.mode == SYN_PROGRESS_BAR) { /* member 0's running figures; all members' rate */
                double t = now_s();
                if (t - pg.last_draw >= 0.1 || batch_i == pg.batches) {
                    pg.last_draw = t;
                    s = syn__metrics_take(mt, &loss_sum, &correct);
                    if (s == SYN_OK)
                        bar_draw(&pg, epoch, batch_i, loss_sum / (double)seen,
                                 mi.classify ? (double)correct / (double)seen : -1.0, (double)seen_all / (t - t_epoch));
                }
            }
            if (s != SYN_OK && !comm) break;
            late = s;
        }
        if (s == SYN_OK) s = late;
        if (s == SYN_OK) s = syn__metrics_take(mt, &loss_sum, &correct);
        if (comm) { /* the whole run's sums; batch norm's running statistics member 0's */
            double sums[3] = {loss_sum, (double)correct, (double)seen};
            s = syn__comm_agree(comm, s, sums, 3, fn, "in an epoch");
            if (s == SYN_OK) s = syn_params_broadcast(params, comm, 0, true);
            loss_sum = sums[0];
            correct = (int64_t)sums[1];
            seen = (int64_t)sums[2];
        }
        if (s != SYN_OK) break;
        const double t_trained = now_s();
        train_time += t_trained - t_epoch;
        samples += seen;
        res->epochs_run = epoch;
        res->train_loss = (float)(loss_sum / (double)seen);
        res->train_accuracy = mi.classify ? (float)((double)correct / (double)seen) : -1.0f;
        if (test && (s = evaluate(m, &mi, test, (cfg->batch_size + members - 1) / members, prefetch, comm,
                                  &res->test_loss, &res->test_accuracy)) != SYN_OK)
            break;
        epoch_line(&pg, epoch, res->train_loss, res->train_accuracy, test, res->test_loss, res->test_accuracy,
                   (double)seen / (t_trained - t_epoch), now_s() - t_epoch);

        const char *stop = NULL;
        if (cfg->min_loss > 0.0f && res->train_loss <= cfg->min_loss) stop = "min_loss";
        if (!stop && cfg->patience > 0) {
            double watched = test ? res->test_loss : res->train_loss;
            if (watched < best) {
                best = watched;
                stale = 0;
            } else if (++stale >= cfg->patience) {
                stop = "patience";
            }
        }
        if (cfg->on_epoch) {
            syn_fit_state st = {epoch, step, g->rng_counter, (float)best, stale, res};
            s = cfg->on_epoch(cfg->user, &st);
        }
        /* every member, with an on_epoch or not (e.g. only member 0 saves) */
        if (comm) s = syn__comm_agree(comm, s, NULL, 0, fn, "after an epoch (on_epoch)");
        if (s != SYN_OK) break;
        if (stop) {
            res->stop_reason = stop;
            break;
        }
    }
    if (pg.mode == SYN_PROGRESS_BAR && s != SYN_OK) fputc('\n', pg.out);
    /* The schedule only ever borrows the optimizer's rate: a later fit starts
     * from the same base. */
    if (scheduled) syn_optim_set_lr(opt, base_lr);
    syn_loader_free(ld);
    syn__metrics_free(mt);
    res->seconds = now_s() - t_start;
    res->samples_per_s = train_time > 0.0 ? (double)samples / train_time : 0.0;
    return s;
}
