/* Time-series forecasting: a CSV column read into a series, and the recurrent
 * forecaster (windows -> syn_rnn -> linear head on the last step -> the value
 * `horizon` steps later). The series' windows become a training and a test
 * data set that syn_fit trains on with MSE and Adam; the test part is scored
 * against the naive last-value forecast. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../core/internal.h"
#include "../data/csv_internal.h"
#include "../data/dataset.h"

/* ---- a series from a CSV column ------------------------------------------------- */

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
    /* The values by the data set reader's rules and messages; then the header
     * for the column's name, which `column` may give as an index. */
    syn_dataset *ds = NULL;
    char **names = NULL;
    int ncol = 0, col = 0;
    syn_series *ser = NULL;
    syn_status s = syn_dataset_load_csv_columns(path, &column, 1, delimiter, &ds);
    if (s == SYN_OK) s = syn_csv_header_read(path, delimiter, &names, &ncol);
    if (s == SYN_OK) s = syn__csv_find_column(path, names, ncol, column, "column", &col);
    if (s == SYN_OK && !(ser = syn__calloc(1, sizeof *ser, "syn_series_load_csv: the series"))) s = SYN_ERR_OOM;
    if (s == SYN_OK) {
        ser->n = ds->n;
        ser->values = ds->x; /* (n, 1) */
        ds->x = NULL;
        ser->name = names[col];
        names[col] = NULL;
        *out = ser;
    }
    syn_csv_header_free(names, ncol);
    syn_dataset_free(ds);
    return s;
}

/* ---- the forecaster --------------------------------------------------------------- */

struct syn_forecaster {
    syn_forecast_config cfg;
    float mean, std;
    syn_params *params;
    syn_graph *eval;       /* inference graph for one window, sharing params */
    syn_node *ex, *epred;
    float *xb;             /* one standardised window */
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

void syn_forecaster_free(syn_forecaster *f) {
    if (!f) return;
    syn_graph_free(f->eval);
    syn_params_free(f->params);
    free(f->xb);
    free(f);
}

int64_t syn_forecaster_window(const syn_forecaster *f) { return f ? f->cfg.window : 0; }

/* cnt windows of the standardised series z, the first at s0: window s is
 * x = z[s .. s+W) as (W, 1), its target z[s+W-1+H]. */
static syn_status make_windows(const float *z, int64_t s0, int64_t cnt, const syn_forecast_config *c,
                               syn_dataset **out) {
    const int64_t W = c->window, H = c->horizon;
    SYN_TRY(syn__dataset_alloc(cnt, W, false, 1, "forecast: windows", out));
    syn_dataset *ds = *out;
    ds->sample_shape = syn_shape2(W, 1);
    for (int64_t i = 0; i < cnt; i++) {
        memcpy(ds->x + i * W, z + s0 + i, (size_t)W * sizeof(float));
        ds->targets[i] = z[s0 + i + W - 1 + H];
    }
    return SYN_OK;
}

/* syn_fit's per-epoch hook: a diverged run is an error (the config's lr), and
 * the progress line in the series' units. */
static syn_status on_epoch(void *user, const syn_fit_state *st) {
    const syn_forecaster *f = user;
    const syn_fit_result *r = st->res;
    if (!isfinite(r->train_loss))
        return syn__error(SYN_ERR_ARG, "syn_forecaster_fit: the training loss is %g in epoch %d: lower the lr",
                          (double)r->train_loss, st->epoch);
    if (f->cfg.log)
        fprintf(f->cfg.log, "forecast: epoch %d/%d  train mse %.5f (standardised)  test rmse %.4g\n", st->epoch,
                f->cfg.epochs, (double)r->train_loss, sqrt((double)r->test_loss) * f->std);
    return SYN_OK;
}

/* Training state: the graph and data of one fit. */
typedef struct {
    syn_model m;
    syn_optim *opt;
    float *z;                    /* the standardised series */
    syn_dataset *train, *test;   /* its windows */
} fit_state;

static void fit_state_free(fit_state *t) {
    syn_optim_free(t->opt);
    syn_graph_free(t->m.graph);
    free(t->z);
    syn_dataset_free(t->train);
    syn_dataset_free(t->test);
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
    /* Training windows s in [0, n_win) have targets inside the training part;
     * the test targets z[n_train .. n) have windows from n_train-W-H+1 on. */
    SYN_TRY(make_windows(t->z, 0, n_win, c, &t->train));
    SYN_TRY(make_windows(t->z, n_train - W - H + 1, n_test, c, &t->test));

    /* The training graph and the one-window inference graph share one parameter set. */
    SYN_TRY(syn_params_create(c->device, c->seed, &f->params));
    SYN_TRY(syn_graph_create(f->params, &t->m.graph));
    syn_graph *g = t->m.graph;
    t->m.x = syn_input(g, "x", SYN_F32, syn_shape3(B, W, 1));
    t->m.y = syn_input(g, "y", SYN_F32, syn_shape2(B, 1));
    t->m.loss = syn_mse_loss(g, build_net(g, t->m.x, c), t->m.y);
    SYN_TRY(syn_graph_status(g));
    SYN_TRY(syn_graph_compile(g, c->device, NULL));
    if (!(f->xb = syn__malloc((size_t)W * sizeof(float), "forecast: a window"))) return SYN_ERR_OOM;
    SYN_TRY(syn_graph_create(f->params, &f->eval));
    f->ex = syn_input(f->eval, "x", SYN_F32, syn_shape3(1, W, 1));
    f->epred = build_net(f->eval, f->ex, c);
    SYN_TRY(syn_graph_status(f->eval));
    SYN_TRY(syn_graph_keep(f->eval, f->epred));
    syn_compile_opts co = {.inference = true};
    SYN_TRY(syn_graph_compile(f->eval, c->device, &co));
    syn_graph_set_training(f->eval, false);
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    oc.lr = c->lr;
    SYN_TRY(syn_optim_create(f->params, &oc, &t->opt));

    double naive = 0;
    for (int64_t i = n_train; i < n; i++) {
        double e = (double)series[i] - (double)series[i - H];
        naive += e * e;
    }
    naive = sqrt(naive / (double)n_test);
    if (c->log)
        fprintf(c->log, "forecast: %lld training windows, %lld test targets; naive last-value test RMSE %.4g\n",
                (long long)n_win, (long long)n_test, naive);

    /* The cosine schedule spans the run (syn_fit's default horizon). */
    syn_fit_config fc = {0};
    fc.epochs = c->epochs;
    fc.batch_size = B;
    fc.seed = c->seed;
    fc.clip_norm = c->clip;
    fc.schedule.kind = c->schedule;
    fc.schedule.min_lr = c->lr * 0.01f;
    fc.progress = SYN_PROGRESS_OFF;
    fc.on_epoch = on_epoch;
    fc.user = f;
    syn_fit_result res;
    /* The test set is evaluated after every epoch only for the progress line. */
    SYN_TRY(syn_fit(&t->m, t->opt, t->train, c->log ? t->test : NULL, &fc, &res));

    float train_mse, test_mse;
    SYN_TRY(syn_evaluate(&t->m, t->train, B, &train_mse, NULL));
    SYN_TRY(syn_evaluate(&t->m, t->test, B, &test_mse, NULL));
    double train_rmse = sqrt((double)train_mse) * f->std, test_rmse = sqrt((double)test_mse) * f->std;
    if (rep) {
        memset(rep, 0, sizeof *rep);
        rep->n_train = n_train;
        rep->n_test = n_test;
        rep->train_windows = n_win;
        rep->test_windows = n_test;
        rep->mean = f->mean;
        rep->std = f->std;
        rep->params = syn_params_numel(f->params);
        rep->train_loss = res.train_loss;
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
