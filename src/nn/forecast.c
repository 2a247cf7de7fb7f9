/* Time-series forecasting: a CSV column read into a series, and the recurrent
 * forecaster (windows -> syn_rnn -> linear head on the last step -> the value
 * `horizon` steps later), trained with MSE and Adam on the first part of the
 * series, scored on the last part against the naive last-value forecast.
 *
 * A series file usually has a date column beside the values, so the column is
 * read with the project's CSV tokenizer (src/data/csv_internal.h) alone, the
 * other fields left unparsed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../core/internal.h"
#include "../core/rng.h"
#include "../data/csv_internal.h"
#include "../data/dataset.h"

/* ---- the CSV column reader ------------------------------------------------------ */

/* The data rows' values of column `col` into a growing array. */
static syn_status read_values(syn__csv *r, const char *name, int ncol, int col, float **vals, int64_t *n_out) {
    int64_t n = 0, cap = 0;
    for (;;) {
        bool eof;
        SYN_TRY(syn__csv_next(r, &eof));
        if (eof) break;
        if (r->nf != ncol)
            return syn__error(SYN_ERR_FORMAT, "%s:%lld: %d fields, but the header has %d", r->path, r->rec_line,
                              r->nf, ncol);
        float v;
        SYN_TRY(syn__csv_float(r, col, name, "value", &v));
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            float *q = realloc(*vals, (size_t)cap * sizeof *q);
            if (!q) return syn__error(SYN_ERR_OOM, "%s: cannot allocate %lld values", r->path, (long long)cap);
            *vals = q;
        }
        (*vals)[n++] = v;
    }
    *n_out = n;
    return SYN_OK;
}

void syn_series_free(syn_series *s) {
    if (!s) return;
    free(s->values);
    free(s->name);
    free(s);
}

syn_status syn_series_load_csv(const char *path, const char *column, char delimiter, syn_series **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_series_load_csv: NULL output");
    *out = NULL;
    if (!path || !column) return syn__error(SYN_ERR_ARG, "syn_series_load_csv: NULL %s", !path ? "path" : "column");
    syn__csv r;
    char **names = NULL;
    int ncol = 0, col = -1;
    syn_status s = syn__csv_open(&r, NULL, path, delimiter);
    if (s == SYN_OK) s = syn__csv_header(&r, &names, &ncol);
    if (s == SYN_OK) s = syn__csv_find_column(path, names, ncol, column, "column", &col);
    float *vals = NULL;
    int64_t n = 0;
    if (s == SYN_OK) s = read_values(&r, names[col], ncol, col, &vals, &n);
    if (s == SYN_OK && n == 0) s = syn__error(SYN_ERR_FORMAT, "%s: no data rows after the header", path);
    syn_series *ser = NULL;
    if (s == SYN_OK && !(ser = calloc(1, sizeof *ser))) s = syn__error(SYN_ERR_OOM, "%s: cannot allocate", path);
    if (s == SYN_OK) {
        ser->n = n;
        ser->values = vals;
        ser->name = names[col];
        names[col] = NULL;
        vals = NULL;
        *out = ser;
    }
    syn_csv_header_free(names, ncol);
    free(vals);
    syn__csv_close(&r);
    return s;
}

/* ---- the forecaster --------------------------------------------------------------- */

enum { EVAL_BATCH = 256 };

struct syn_forecaster {
    syn_forecast_config cfg;
    float mean, std;
    syn_params *params;
    syn_graph *eval;       /* inference graph of capacity EVAL_BATCH, sharing params */
    syn_node *ex, *epred;
    float *xb;             /* EVAL_BATCH * window staging values */
};

syn_forecast_config syn_forecast_defaults(void) {
    syn_forecast_config c;
    memset(&c, 0, sizeof c);
    c.mode = SYN_RNN_LSTM;
    c.hidden = 32;
    c.layers = 1;
    c.window = 24;
    c.horizon = 1;
    c.epochs = 30;
    c.batch = 32;
    c.lr = 0.005f;
    c.schedule = SYN_SCHED_COSINE;
    c.clip = 1.0f;
    c.seed = 1;
    c.device = syn_cpu();
    c.test_fraction = 0.2f;
    return c;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static syn_status check_config(const syn_forecast_config *c) {
    const char *fn = "syn_forecaster_fit";
    if (c->mode != SYN_RNN_LSTM && c->mode != SYN_RNN_GRU && c->mode != SYN_RNN_TANH && c->mode != SYN_RNN_RELU)
        return syn__error(SYN_ERR_ARG, "%s: unknown recurrent mode %d", fn, (int)c->mode);
    if (c->hidden < 1 || c->layers < 1 || c->window < 1 || c->horizon < 1 || c->epochs < 1 || c->batch < 1)
        return syn__error(SYN_ERR_ARG,
                          "%s: hidden (%lld), layers (%d), window (%lld), horizon (%lld), epochs (%d) and batch "
                          "(%lld) must all be >= 1",
                          fn, (long long)c->hidden, c->layers, (long long)c->window, (long long)c->horizon,
                          c->epochs, (long long)c->batch);
    if (c->window > ((int64_t)1 << 40) || c->horizon > ((int64_t)1 << 40))
        return syn__error(SYN_ERR_ARG, "%s: window (%lld) and horizon (%lld) must be below 2^40", fn,
                          (long long)c->window, (long long)c->horizon);
    if (!(c->lr > 0.0f) || !isfinite(c->lr)) return syn__error(SYN_ERR_ARG, "%s: lr must be > 0, got %g", fn, (double)c->lr);
    if (c->schedule != SYN_SCHED_CONSTANT && c->schedule != SYN_SCHED_COSINE)
        return syn__error(SYN_ERR_ARG, "%s: schedule must be constant or cosine, got %d", fn, (int)c->schedule);
    if (!(c->clip >= 0.0f) || !isfinite(c->clip))
        return syn__error(SYN_ERR_ARG, "%s: clip must be >= 0 (0: off), got %g", fn, (double)c->clip);
    if (!(c->test_fraction > 0.0f && c->test_fraction < 1.0f))
        return syn__error(SYN_ERR_ARG, "%s: test_fraction must be in (0, 1), got %g", fn, (double)c->test_fraction);
    return SYN_OK;
}

/* x: (B, W, 1) -> rnn -> h: (B, W, H) -> h[:, W-1]: (B, H) -> linear -> (B, 1) */
static syn_node *build_net(syn_graph *g, syn_node *x, const syn_forecast_config *c) {
    syn_rnn_config rc = {c->mode, c->hidden, c->layers, 0.0f, false};
    syn_node *h = syn_rnn(g, x, &rc, NULL, NULL, "rnn", NULL);
    syn_node *last = syn_reshape(g, syn_slice(g, h, 1, c->window - 1, 1), syn_shape2(-1, c->hidden));
    return syn_linear(g, last, 1, "head", NULL);
}

/* Predictions (standardised) for the `cnt` windows of z starting at s0, s0+1, ... */
static syn_status predict_windows(syn_forecaster *f, const float *z, int64_t s0, int64_t cnt, float *pred) {
    const int64_t W = f->cfg.window;
    for (int64_t b0 = 0; b0 < cnt; b0 += EVAL_BATCH) {
        int64_t nb = cnt - b0 < EVAL_BATCH ? cnt - b0 : EVAL_BATCH;
        for (int64_t i = 0; i < nb; i++) memcpy(f->xb + i * W, z + s0 + b0 + i, (size_t)W * sizeof(float));
        SYN_TRY(syn_graph_feed(f->eval, f->ex, f->xb, syn_shape3(nb, W, 1)));
        SYN_TRY(syn_graph_forward(f->eval));
        SYN_TRY(syn_graph_read(f->eval, f->epred, pred + b0, (size_t)nb * sizeof(float)));
    }
    return SYN_OK;
}

/* RMSE in original units of the predictions for targets z[t0 .. t0+cnt). */
static double rmse_orig(const float *pred, const float *z, int64_t t0, int64_t cnt, float std) {
    double se = 0;
    for (int64_t i = 0; i < cnt; i++) {
        double e = ((double)pred[i] - (double)z[t0 + i]) * std;
        se += e * e;
    }
    return sqrt(se / (double)cnt);
}

void syn_forecaster_free(syn_forecaster *f) {
    if (!f) return;
    syn_graph_free(f->eval);
    syn_params_free(f->params);
    free(f->xb);
    free(f);
}

int64_t syn_forecaster_window(const syn_forecaster *f) { return f ? f->cfg.window : 0; }

/* Training state: the graph and buffers of one fit. */
typedef struct {
    syn_graph *g;
    syn_node *x, *y, *loss;
    syn_optim *opt;
    float *z, *xb, *yb, *pred;
    int64_t *perm;
} fit_state;

static void fit_state_free(fit_state *t) {
    syn_optim_free(t->opt);
    syn_graph_free(t->g);
    free(t->z);
    free(t->xb);
    free(t->yb);
    free(t->pred);
    free(t->perm);
}

/* Everything after validation; the caller frees t and, on error, f. */
static syn_status fit(syn_forecaster *f, fit_state *t, const float *series, int64_t n, int64_t n_train,
                      syn_forecast_report *rep) {
    const syn_forecast_config *c = &f->cfg;
    const int64_t W = c->window, H = c->horizon;
    const int64_t n_test = n - n_train, n_win = n_train - W - H + 1;
    const int64_t B = c->batch < n_win ? c->batch : n_win; /* no capacity beyond the data */
    const double t_start = now_s();

    /* Standardise with the training part's statistics (double accumulation). */
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n_train; i++) sum += series[i];
    double mean = sum / (double)n_train;
    for (int64_t i = 0; i < n_train; i++) sq += ((double)series[i] - mean) * ((double)series[i] - mean);
    double sd = sqrt(sq / (double)n_train);
    f->mean = (float)mean;
    f->std = sd > 0 && isfinite((float)sd) ? (float)sd : 1.0f;
    if (!(t->z = syn__malloc((size_t)n * sizeof(float), "forecast: the standardised series"))) return SYN_ERR_OOM;
    /* The stored (float) statistics, so that syn_forecaster_predict sees the same inputs. */
    for (int64_t i = 0; i < n; i++) t->z[i] = (float)(((double)series[i] - f->mean) / f->std);

    int64_t np = n_win > n_test ? n_win : n_test;
    if (!(t->xb = syn__malloc((size_t)(B * W) * sizeof(float), "forecast: a batch")) ||
        !(t->yb = syn__malloc((size_t)B * sizeof(float), "forecast: a batch")) ||
        !(t->pred = syn__malloc((size_t)np * sizeof(float), "forecast: predictions")) ||
        !(t->perm = syn__malloc((size_t)n_win * sizeof(int64_t), "forecast: the window order")) ||
        !(f->xb = syn__malloc((size_t)(EVAL_BATCH * W) * sizeof(float), "forecast: a batch")))
        return SYN_ERR_OOM;

    /* The training graph and the evaluation graph share one parameter set. */
    SYN_TRY(syn_params_create(c->device, c->seed, &f->params));
    SYN_TRY(syn_graph_create(f->params, &t->g));
    t->x = syn_input(t->g, "x", SYN_F32, syn_shape3(B, W, 1));
    t->y = syn_input(t->g, "y", SYN_F32, syn_shape2(B, 1));
    t->loss = syn_mse_loss(t->g, build_net(t->g, t->x, c), t->y);
    SYN_TRY(syn_graph_status(t->g));
    SYN_TRY(syn_graph_compile(t->g, c->device, NULL));
    SYN_TRY(syn_graph_create(f->params, &f->eval));
    f->ex = syn_input(f->eval, "x", SYN_F32, syn_shape3(EVAL_BATCH, W, 1));
    f->epred = build_net(f->eval, f->ex, c);
    SYN_TRY(syn_graph_status(f->eval));
    SYN_TRY(syn_graph_keep(f->eval, f->epred));
    syn_compile_opts co = {true};
    SYN_TRY(syn_graph_compile(f->eval, c->device, &co));
    syn_graph_set_training(f->eval, false);
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    oc.lr = c->lr;
    SYN_TRY(syn_optim_create(f->params, &oc, &t->opt));

    /* Window s covers z[s .. s+W) and its target is z[s+W-1+H]: training
     * windows s in [0, n_win) have targets inside the training part, test
     * targets are z[n_train .. n) with windows from s = n_train-W-H+1 on. */
    const int64_t test_s0 = n_train - W - H + 1;
    double naive = 0;
    for (int64_t t_ = n_train; t_ < n; t_++) {
        double e = (double)series[t_] - (double)series[t_ - H];
        naive += e * e;
    }
    naive = sqrt(naive / (double)n_test);
    if (c->log)
        fprintf(c->log, "forecast: %lld training windows, %lld test targets; naive last-value test RMSE %.4g\n",
                (long long)n_win, (long long)n_test, naive);

    syn_schedule sched = {0};
    sched.kind = c->schedule;
    sched.total_steps = (int64_t)c->epochs * ((n_win + B - 1) / B);
    sched.min_lr = c->lr * 0.01f;
    int64_t step = 0;
    float epoch_loss = NAN;
    for (int e = 0; e < c->epochs; e++) {
        syn__shuffle_indices(t->perm, n_win, c->seed, SYN_STREAM_SHUFFLE + (uint64_t)e);
        double lsum = 0;
        for (int64_t b0 = 0; b0 < n_win; b0 += B) {
            int64_t nb = n_win - b0 < B ? n_win - b0 : B;
            for (int64_t i = 0; i < nb; i++) {
                int64_t s = t->perm[b0 + i];
                memcpy(t->xb + i * W, t->z + s, (size_t)W * sizeof(float));
                t->yb[i] = t->z[s + W - 1 + H];
            }
            SYN_TRY(syn_graph_feed(t->g, t->x, t->xb, syn_shape3(nb, W, 1)));
            SYN_TRY(syn_graph_feed(t->g, t->y, t->yb, syn_shape2(nb, 1)));
            SYN_TRY(syn_params_zero_grad(f->params));
            SYN_TRY(syn_graph_forward(t->g));
            SYN_TRY(syn_graph_backward(t->g, t->loss));
            if (c->clip > 0) SYN_TRY(syn_params_clip_grad_norm(f->params, c->clip, NULL));
            syn_optim_set_lr(t->opt, syn_schedule_lr(&sched, c->lr, step++));
            SYN_TRY(syn_optim_step(t->opt));
            float l;
            SYN_TRY(syn_graph_read_scalar(t->g, t->loss, &l));
            lsum += (double)l * (double)nb;
        }
        epoch_loss = (float)(lsum / (double)n_win);
        if (!isfinite(epoch_loss))
            return syn__error(SYN_ERR_ARG, "syn_forecaster_fit: the training loss is %g in epoch %d: lower the lr",
                              (double)epoch_loss, e + 1);
        if (c->log) {
            SYN_TRY(predict_windows(f, t->z, test_s0, n_test, t->pred));
            fprintf(c->log, "forecast: epoch %d/%d  train mse %.5f (standardised)  test rmse %.4g\n", e + 1,
                    c->epochs, (double)epoch_loss, rmse_orig(t->pred, t->z, n_train, n_test, f->std));
        }
    }

    SYN_TRY(predict_windows(f, t->z, 0, n_win, t->pred));
    double train_rmse = rmse_orig(t->pred, t->z, W - 1 + H, n_win, f->std);
    SYN_TRY(predict_windows(f, t->z, test_s0, n_test, t->pred));
    double test_rmse = rmse_orig(t->pred, t->z, n_train, n_test, f->std);
    if (rep) {
        memset(rep, 0, sizeof *rep);
        rep->n_train = n_train;
        rep->n_test = n_test;
        rep->train_windows = n_win;
        rep->test_windows = n_test;
        rep->mean = f->mean;
        rep->std = f->std;
        rep->params = syn_params_numel(f->params);
        rep->train_loss = epoch_loss;
        rep->train_rmse = train_rmse;
        rep->test_rmse = test_rmse;
        rep->naive_rmse = naive;
        rep->ratio = naive > 0 ? test_rmse / naive : INFINITY;
        rep->seconds = now_s() - t_start;
    }
    return SYN_OK;
}

syn_status syn_forecaster_fit(const syn_forecast_config *cfg, const float *series, int64_t n, syn_forecaster **out,
                              syn_forecast_report *rep) {
    const char *fn = "syn_forecaster_fit";
    if (!out) return syn__error(SYN_ERR_ARG, "%s: NULL output", fn);
    *out = NULL;
    if (!cfg || !series) return syn__error(SYN_ERR_ARG, "%s: NULL %s", fn, !cfg ? "config" : "series");
    SYN_TRY(check_config(cfg));
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(series[i]))
            return syn__error(SYN_ERR_ARG, "%s: value %lld of the series is %g", fn, (long long)i, (double)series[i]);
    const int64_t W = cfg->window, H = cfg->horizon;
    int64_t n_test = (int64_t)llround((double)n * (double)cfg->test_fraction);
    int64_t n_train = n - n_test;
    /* One training pair needs W + H values; the test part at least one. */
    if (n < 1 || n_test < 1 || n_train < W + H) {
        /* the least n with round(n f) >= 1 and n - round(n f) >= W + H */
        double lo = fmin(0.5 / (double)cfg->test_fraction - 1.0, 4e18);
        int64_t need = W + H + 1 > lo ? W + H + 1 : (int64_t)lo;
        while (need < ((int64_t)1 << 62) &&
               (llround((double)need * cfg->test_fraction) < 1 ||
                need - llround((double)need * cfg->test_fraction) < W + H))
            need++;
        return syn__error(SYN_ERR_ARG,
                          "%s: a series of %lld values is too short: with window %lld, horizon %lld and test "
                          "fraction %g it needs at least %lld (%lld training values give %lld training windows, "
                          "%lld test values)",
                          fn, (long long)n, (long long)W, (long long)H, (double)cfg->test_fraction, (long long)need,
                          (long long)(n_train > 0 ? n_train : 0),
                          (long long)(n_train - W - H + 1 > 0 ? n_train - W - H + 1 : 0),
                          (long long)(n_test > 0 ? n_test : 0));
    }
    syn_forecaster *f = syn__calloc(1, sizeof *f, "forecast: the forecaster");
    if (!f) return SYN_ERR_OOM;
    f->cfg = *cfg;
    fit_state t = {0};
    syn_status s = fit(f, &t, series, n, n_train, rep);
    fit_state_free(&t);
    if (s != SYN_OK) {
        syn_forecaster_free(f);
        return s;
    }
    *out = f;
    return SYN_OK;
}

syn_status syn_forecaster_predict(syn_forecaster *f, const float *recent, int64_t n, float *next) {
    const char *fn = "syn_forecaster_predict";
    if (!f || !recent || !next)
        return syn__error(SYN_ERR_ARG, "%s: NULL %s", fn, !f ? "forecaster" : !recent ? "values" : "output");
    const int64_t W = f->cfg.window;
    if (n < W)
        return syn__error(SYN_ERR_ARG, "%s: %lld values given, the forecaster needs the last %lld (its window)", fn,
                          (long long)n, (long long)W);
    const float *w = recent + n - W;
    for (int64_t i = 0; i < W; i++) {
        if (!isfinite(w[i]))
            return syn__error(SYN_ERR_ARG, "%s: value %lld is %g", fn, (long long)(n - W + i), (double)w[i]);
        f->xb[i] = (float)(((double)w[i] - f->mean) / f->std);
    }
    float p;
    SYN_TRY(syn_graph_feed(f->eval, f->ex, f->xb, syn_shape3(1, W, 1)));
    SYN_TRY(syn_graph_forward(f->eval));
    SYN_TRY(syn_graph_read(f->eval, f->epred, &p, sizeof p));
    *next = (float)((double)p * f->std + f->mean);
    return SYN_OK;
}
