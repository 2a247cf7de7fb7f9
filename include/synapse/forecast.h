/* Time-series forecasting: one numeric column of a CSV file read into a
 * series, and a recurrent forecaster (windows of W standardised values ->
 * syn_rnn -> a linear head on the last step's h -> the value `horizon` steps
 * after the window) trained with MSE and Adam on the first part of the series
 * and scored on the last part against the naive last-value forecast. */
#ifndef SYNAPSE_FORECAST_H
#define SYNAPSE_FORECAST_H

#include <stdint.h>
#include <stdio.h>
#include "device.h"
#include "graph.h"
#include "optim.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a series from a CSV column ------------------------------------------------ */

/* n values in file order, and the column's header name.
 * owned: free with syn_series_free. */
typedef struct {
    int64_t n;
    float *values;
    char *name;
} syn_series;

SYN_API void syn_series_free(syn_series *s);

/* One column of a CSV file with a header row: `column` is a header name or a
 * 0-based index as text (a matching name wins). delimiter 0 means ','. Quoted
 * fields (RFC 4180: the delimiter, "" and line breaks inside quotes), CRLF, a
 * UTF-8 BOM and blank lines are accepted; the other columns may hold anything
 * (dates, text). Every row must have the header's number of fields and a
 * finite float in the column. Errors: SYN_ERR_IO (cannot open or read),
 * SYN_ERR_ARG (no such column: the message lists the header), SYN_ERR_FORMAT
 * (the message gives file:line, the column's name and field number, and the
 * offending text). */
SYN_API syn_status syn_series_load_csv(const char *path, const char *column, char delimiter, syn_series **out);

/* ---- the forecaster ------------------------------------------------------------ */

typedef struct {
    syn_rnn_mode mode;     /* SYN_RNN_LSTM, SYN_RNN_GRU, SYN_RNN_TANH or SYN_RNN_RELU */
    int64_t hidden;        /* recurrent width (>= 1) */
    int layers;            /* stacked recurrent layers (>= 1) */
    int64_t window;        /* W: values the model sees per forecast (>= 1) */
    int64_t horizon;       /* forecast the value this many steps after the window (1: the next) */
    int epochs;            /* >= 1 */
    int64_t batch;         /* windows per optimizer step (>= 1) */
    float lr;              /* Adam's learning rate (> 0) */
    syn_sched_kind schedule; /* SYN_SCHED_COSINE: from lr down to lr/100 over the run (settles the
                                last epochs' noise); SYN_SCHED_CONSTANT: lr throughout */
    float clip;            /* global gradient-norm clipping (0: off) */
    uint64_t seed;         /* initialisation and the shuffling of windows */
    syn_device device;
    float test_fraction;   /* in (0, 1): the LAST round(n * fraction) values are the test part */
    FILE *log;             /* one progress line per epoch, or NULL for none */
} syn_forecast_config;

/* LSTM, hidden 32, 1 layer, window 24, horizon 1, 30 epochs, batch 32,
 * lr 0.005 with the cosine schedule, clip 1, seed 1, CPU, test fraction 0.2, no log. */
SYN_API syn_forecast_config syn_forecast_defaults(void);

/* What a fit measured. RMSEs are in the series' original units; the test
 * targets are the last n_test values of the series (their windows may reach
 * back into the training part), the training targets the values of the
 * training part that have a whole window before them. */
typedef struct {
    int64_t n_train, n_test;            /* values in each part */
    int64_t train_windows, test_windows; /* (window, target) pairs; test_windows == n_test */
    float mean, std;                    /* standardisation, from the training part */
    int64_t params;                     /* trainable values */
    float train_loss;                   /* the last epoch's mean MSE, in standardised units */
    double train_rmse, test_rmse;       /* the model after the last epoch */
    double naive_rmse;                  /* forecasting each test target by the window's last value */
    double ratio;                       /* test_rmse / naive_rmse (INFINITY if naive_rmse is 0) */
    double seconds;                     /* training and evaluation */
} syn_forecast_report;

typedef struct syn_forecaster syn_forecaster;

/* Splits `series` (n values, borrowed, all finite) chronologically, standardises
 * it with the training part's mean and population std (1 if constant), trains
 * on the training windows with syn_fit (in an order shuffled per epoch from
 * cfg->seed), and evaluates; rep (may be NULL) receives the figures. The same config and
 * series give the same model on the same device. Errors: SYN_ERR_ARG (a bad
 * config value, a non-finite value, or a series too short for one training
 * window and one test target: the message says how many values are needed),
 * SYN_ERR_DEVICE / SYN_ERR_OOM from the backend.
 * owned: free *out with syn_forecaster_free. */
SYN_API syn_status syn_forecaster_fit(const syn_forecast_config *cfg, const float *series, int64_t n,
                                      syn_forecaster **out, syn_forecast_report *rep);
SYN_API void syn_forecaster_free(syn_forecaster *f);
/* The window W the forecaster was trained with. */
SYN_API int64_t syn_forecaster_window(const syn_forecaster *f);

/* The forecast `horizon` steps after the last W of the n values in `recent`
 * (original units; n >= W, all finite, else SYN_ERR_ARG). */
SYN_API syn_status syn_forecaster_predict(syn_forecaster *f, const float *recent, int64_t n, float *next);

#ifdef __cplusplus
}
#endif
#endif
