/* The forecaster: the CSV column reader (names, indices, quotes, CRLF, BOM,
 * date columns; errors naming file, line and column), a recurrent forecaster
 * that must clearly beat the naive last-value forecast on a noisy seasonal
 * series, its report checked against predictions made one at a time, its
 * determinism and argument checks, and the `synapse forecast` command. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

/* ---- files -------------------------------------------------------------------- */

typedef struct {
    char dir[128];
    char path[192];
} tmpfile_t;

/* Writes `text` to a fresh temporary directory's `name`. */
static void tmp_write(tmpfile_t *t, const char *name, const char *text) {
    snprintf(t->dir, sizeof t->dir, "/tmp/syn_forecast_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    FILE *f = fopen(t->path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void tmp_remove(tmpfile_t *t) {
    remove(t->path);
    rmdir(t->dir);
}

/* The test series: hourly values with a daily and a weekly season, a slow
 * trend and Gaussian noise of std 0.3, from a fixed seed (the convergence
 * bound below is for this series, so it must not change between runs):
 *   y(t) = 10 + 3 sin(2 pi t / 24) + 1.5 sin(2 pi t / 168) + 0.002 t + N(0, 0.3^2) */
enum { SERIES_N = 1200 };
#define NOISE_STD 0.3

static void make_series(float *y, int n) {
    uint64_t s = 0x5EA5011A1ull;
    for (int t = 0; t < n; t++) {
        /* splitmix64 -> two uniforms -> Box-Muller */
        double u[2];
        for (int k = 0; k < 2; k++) {
            uint64_t z = (s += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            u[k] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
        }
        double noise = sqrt(-2.0 * log(u[0])) * cos(2.0 * M_PI * u[1]);
        y[t] = (float)(10.0 + 3.0 * sin(2.0 * M_PI * t / 24.0) + 1.5 * sin(2.0 * M_PI * t / 168.0) + 0.002 * t +
                       NOISE_STD * noise);
    }
}

/* The series as a CSV file: a date-time column, then the value. */
static void write_series_csv(tmpfile_t *t, const float *y, int n) {
    size_t cap = (size_t)n * 48 + 64, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, cap - len, "time,load\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "2024-%02d-%02d %02d:00,%.9g\n", 1 + i / (24 * 28),
                                1 + i / 24 % 28, i % 24, (double)y[i]);
    tmp_write(t, "series.csv", text);
    free(text);
}

/* ---- the reader ------------------------------------------------------------------ */

START_TEST(reader_columns_quotes_and_line_ends) {
    /* BOM, CRLF, a quoted field with the delimiter, a quote and a line break,
     * blank lines, blanks around numbers, a text column. */
    static const char text[] = "\xEF\xBB\xBF" "date,note,value,\"other\"\r\n"
                               "2024-01-01,\"a, b\",1.5,7\r\n"
                               "\r\n"
                               "2024-01-02,\"say \"\"hi\"\"\nsecond line\", -2e-3 ,8\r\n"
                               "2024-01-03,,  42,\"9\"\n"
                               "\n";
    tmpfile_t t;
    tmp_write(&t, "mixed.csv", text);
    syn_series *s = NULL;
    TU_OK(syn_series_load_csv(t.path, "value", 0, &s));
    ck_assert_int_eq(s->n, 3);
    ck_assert_str_eq(s->name, "value");
    ck_assert_float_eq(s->values[0], 1.5f);
    ck_assert_float_eq(s->values[1], -2e-3f);
    ck_assert_float_eq(s->values[2], 42.0f);
    syn_series_free(s);
    /* By index; a quoted numeric field. */
    TU_OK(syn_series_load_csv(t.path, "3", 0, &s));
    ck_assert_str_eq(s->name, "other");
    ck_assert_float_eq(s->values[0], 7.0f);
    ck_assert_float_eq(s->values[2], 9.0f);
    syn_series_free(s);
    /* The text column is no series: its first row fails. */
    ck_assert_int_eq(syn_series_load_csv(t.path, "note", 0, &s), SYN_ERR_FORMAT);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(syn_last_error(), "mixed.csv:2:") && strstr(syn_last_error(), "'note'") &&
                      strstr(syn_last_error(), "a, b"),
                  "%s", syn_last_error());
    tmp_remove(&t);

    /* The delimiter inside quotes, in the header and in another column, with
     * ';' as the delimiter: the same tokenizer as the data set reader. */
    tmp_write(&t, "semi.csv", "\"when;where\";\"load;kW\"\r\n\"mon;here\";\"1.25\"\r\n\"tue;there\"; 2 \r\n");
    TU_OK(syn_series_load_csv(t.path, "load;kW", ';', &s));
    ck_assert_int_eq(s->n, 2);
    ck_assert_str_eq(s->name, "load;kW");
    ck_assert_float_eq(s->values[0], 1.25f);
    ck_assert_float_eq(s->values[1], 2.0f);
    syn_series_free(s);
    ck_assert_int_eq(syn_series_load_csv(t.path, "load", ';', &s), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "'when;where', 'load;kW'"), "%s", syn_last_error());
    ck_assert_int_eq(syn_series_load_csv(t.path, "load;kW", '"', &s), SYN_ERR_ARG);
    tmp_remove(&t);

    /* A one-column file and another delimiter; a header name that looks like an index wins. */
    tmp_write(&t, "one.csv", "1;0\n3;4\n5;6\n");
    TU_OK(syn_series_load_csv(t.path, "0", ';', &s));
    ck_assert_str_eq(s->name, "0");
    ck_assert_int_eq(s->n, 2);
    ck_assert_float_eq(s->values[1], 6.0f);
    syn_series_free(s);
    tmp_remove(&t);
    syn_series_free(NULL);
}
END_TEST

/* Expects status `want` and a message holding every string of `parts`. */
static void expect_load_error(const char *path, const char *column, syn_status want, const char *const *parts) {
    syn_series *s = (syn_series *)1;
    syn_status got = syn_series_load_csv(path, column, 0, &s);
    ck_assert_msg(got == want, "%s [%s]: status %s, want %s (%s)", path, column, syn_status_str(got),
                  syn_status_str(want), syn_last_error());
    ck_assert_ptr_null(s);
    for (; *parts; parts++)
        ck_assert_msg(strstr(syn_last_error(), *parts) != NULL, "'%s' lacks '%s'", syn_last_error(), *parts);
}

START_TEST(reader_errors_name_file_line_and_column) {
    tmpfile_t t;
    static const char *const missing[] = {"/nonexistent/dir/x.csv", "cannot open", NULL};
    expect_load_error("/nonexistent/dir/x.csv", "v", SYN_ERR_IO, missing);

    tmp_write(&t, "bad.csv", "t,v\n0,1.0\n1,2.0\n2,abc\n3,4\n");
    static const char *const unknown[] = {"bad.csv", "'speed'", "'t', 'v'", NULL};
    expect_load_error(t.path, "speed", SYN_ERR_ARG, unknown);
    static const char *const out_of_range[] = {"'2'", "below 2", NULL};
    expect_load_error(t.path, "2", SYN_ERR_ARG, out_of_range);
    static const char *const not_number[] = {"bad.csv:4:", "column 'v' (field 2)", "not a number", "'abc'", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, not_number);
    tmp_remove(&t);

    /* Lines are counted through a quoted line break. */
    tmp_write(&t, "multi.csv", "v,note\n1,\"a\nb\"\n\n2,\"c\r\n\"\n3x,d\n");
    static const char *const multi[] = {"multi.csv:7:", "'3x'", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, multi);
    tmp_remove(&t);

    tmp_write(&t, "short.csv", "t,v\n0,1\n1\n");
    static const char *const fields[] = {"short.csv:3:", "1 fields", "header has 2", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, fields);
    tmp_remove(&t);

    tmp_write(&t, "empty_cell.csv", "t,v\n0,1\n1,\n");
    static const char *const empty[] = {"empty_cell.csv:3:", "'v'", "empty field", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, empty);
    tmp_remove(&t);

    tmp_write(&t, "inf.csv", "v\n1\n1e39\n");
    static const char *const inf[] = {"inf.csv:3:", "1e39", "finite", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, inf);
    tmp_remove(&t);

    tmp_write(&t, "quote.csv", "v\n1\n\"2\n");
    static const char *const quote[] = {"quote.csv:3:", "unterminated", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, quote);
    tmp_remove(&t);

    tmp_write(&t, "header.csv", "v\n\n");
    static const char *const rows[] = {"header.csv", "no data rows", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, rows);
    tmp_remove(&t);

    tmp_write(&t, "nothing.csv", "");
    static const char *const nothing[] = {"nothing.csv", "empty file", NULL};
    expect_load_error(t.path, "v", SYN_ERR_FORMAT, nothing);
    tmp_remove(&t);
}
END_TEST

/* ---- the forecaster ---------------------------------------------------------------- */

/* The acceptance bound: test RMSE at most this fraction of the naive
 * last-value forecast's. On this series the naive error is about 0.7 (the
 * daily swing between neighbours plus twice the noise variance) and a perfect
 * model's is the noise, 0.3: a ratio near 0.43. */
#define BEAT_NAIVE 0.6

START_TEST(lstm_beats_naive_on_seasonal_series) {
    static float y[SERIES_N];
    make_series(y, SERIES_N);
    tmpfile_t t;
    write_series_csv(&t, y, SERIES_N);
    syn_series *s = NULL;
    TU_OK(syn_series_load_csv(t.path, "load", 0, &s));
    ck_assert_int_eq(s->n, SERIES_N);
    for (int i = 0; i < SERIES_N; i++) ck_assert_float_eq_tol(s->values[i], y[i], 1e-6f * fabsf(y[i]));
    tmp_remove(&t);

    syn_forecast_config cfg = syn_forecast_defaults(); /* LSTM 32, window 24, 30 epochs, batch 32, lr 0.005 cosine */
    syn_forecaster *f = NULL;
    syn_forecast_report rep;
    TU_OK(syn_forecaster_fit(&cfg, s->values, s->n, &f, &rep));
    fprintf(stderr, "forecast: lstm test RMSE %.4f, naive %.4f, ratio %.3f (bound %.2f), train RMSE %.4f, %.2f s\n",
            rep.test_rmse, rep.naive_rmse, rep.ratio, BEAT_NAIVE, rep.train_rmse, rep.seconds);
    ck_assert_int_eq(rep.n_test, 240);
    ck_assert_int_eq(rep.n_train, 960);
    ck_assert_int_eq(rep.train_windows, 960 - 24);
    ck_assert_int_eq(rep.test_windows, 240);
    ck_assert_int_eq(rep.params, 4 * 32 * (1 + 32 + 2) + 32 + 1);
    ck_assert_msg(rep.naive_rmse > 0.5 && rep.naive_rmse < 0.9, "naive RMSE %g", rep.naive_rmse);
    ck_assert_msg(rep.ratio <= BEAT_NAIVE, "test RMSE %.4f is %.3f of the naive %.4f (bound %.2f)", rep.test_rmse,
                  rep.ratio, rep.naive_rmse, BEAT_NAIVE);
    /* Not better than the noise itself (a leak of test targets would be). */
    ck_assert_msg(rep.test_rmse > 0.8 * NOISE_STD, "test RMSE %.4f below the noise %.2f", rep.test_rmse, NOISE_STD);

    /* The report against the naive forecast and predictions made one at a
     * time from the raw values before each test target. */
    double se = 0, se_naive = 0;
    for (int64_t i = rep.n_train; i < s->n; i++) {
        float p;
        TU_OK(syn_forecaster_predict(f, s->values, i, &p));
        se += ((double)p - s->values[i]) * ((double)p - s->values[i]);
        se_naive += ((double)s->values[i - 1] - s->values[i]) * ((double)s->values[i - 1] - s->values[i]);
    }
    double rmse = sqrt(se / (double)rep.n_test), naive = sqrt(se_naive / (double)rep.n_test);
    ck_assert_double_eq_tol(rmse, rep.test_rmse, 1e-4 * rep.test_rmse);
    ck_assert_double_eq_tol(naive, rep.naive_rmse, 1e-9);
    float p;
    ck_assert_int_eq(syn_forecaster_predict(f, s->values, 23, &p), SYN_ERR_ARG);
    ck_assert_msg(strstr(syn_last_error(), "23 values") && strstr(syn_last_error(), "24"), "%s", syn_last_error());
    ck_assert_int_eq(syn_forecaster_window(f), 24);
    syn_forecaster_free(f);
    syn_series_free(s);
}
END_TEST

START_TEST(gru_beats_naive_on_seasonal_series) {
    static float y[SERIES_N];
    make_series(y, SERIES_N);
    syn_forecast_config cfg = syn_forecast_defaults();
    cfg.mode = SYN_RNN_GRU;
    syn_forecaster *f = NULL;
    syn_forecast_report rep;
    TU_OK(syn_forecaster_fit(&cfg, y, SERIES_N, &f, &rep));
    fprintf(stderr, "forecast: gru test RMSE %.4f, naive %.4f, ratio %.3f (bound %.2f), %.2f s\n", rep.test_rmse,
            rep.naive_rmse, rep.ratio, BEAT_NAIVE, rep.seconds);
    ck_assert_int_eq(rep.params, 3 * 32 * (1 + 32 + 2) + 32 + 1);
    ck_assert_msg(rep.ratio <= BEAT_NAIVE, "gru: test RMSE %.4f is %.3f of the naive %.4f (bound %.2f)",
                  rep.test_rmse, rep.ratio, rep.naive_rmse, BEAT_NAIVE);
    syn_forecaster_free(f);
}
END_TEST

/* Same config and series: the same model, bit for bit; another seed: another one. */
START_TEST(fit_is_deterministic) {
    static float y[400];
    make_series(y, 400);
    syn_forecast_config cfg = syn_forecast_defaults();
    cfg.hidden = 8;
    cfg.window = 12;
    cfg.epochs = 2;
    syn_forecast_report r[3];
    float next[3];
    for (int k = 0; k < 3; k++) {
        syn_forecaster *f = NULL;
        cfg.seed = k == 2 ? 2 : 1;
        TU_OK(syn_forecaster_fit(&cfg, y, 400, &f, &r[k]));
        TU_OK(syn_forecaster_predict(f, y, 400, &next[k]));
        syn_forecaster_free(f);
    }
    ck_assert_double_eq(r[0].test_rmse, r[1].test_rmse);
    ck_assert_float_eq(r[0].train_loss, r[1].train_loss);
    ck_assert_float_eq(next[0], next[1]);
    ck_assert_double_ne(r[0].test_rmse, r[2].test_rmse);
    ck_assert_double_eq(r[0].naive_rmse, r[2].naive_rmse);
}
END_TEST

/* The same fit on a GPU follows the CPU's (not bit for bit: summation orders
 * differ), and its forecasts too. Skipped, in one visible line, without one. */
START_TEST(cuda_fit_follows_cpu) {
    if (!syn_backend_built(SYN_DEVICE_CUDA) || syn_device_count(SYN_DEVICE_CUDA) == 0) {
        printf("no CUDA device: 1 test skipped (forecast on cuda)\n");
        return;
    }
    static float y[400];
    make_series(y, 400);
    syn_forecast_config cfg = syn_forecast_defaults();
    cfg.hidden = 8;
    cfg.window = 12;
    cfg.epochs = 3;
    syn_forecast_report r[2];
    float next[2];
    for (int k = 0; k < 2; k++) {
        syn_forecaster *f = NULL;
        cfg.device = k ? syn_cuda(0) : syn_cpu();
        TU_OK(syn_forecaster_fit(&cfg, y, 400, &f, &r[k]));
        TU_OK(syn_forecaster_predict(f, y, 400, &next[k]));
        syn_forecaster_free(f);
    }
    ck_assert_msg(fabs(r[1].test_rmse - r[0].test_rmse) <= 0.02 * r[0].test_rmse &&
                      fabs(r[1].train_loss - r[0].train_loss) <= 0.02 * r[0].train_loss,
                  "cuda test RMSE %.5f train loss %.5f, cpu %.5f %.5f", r[1].test_rmse, (double)r[1].train_loss,
                  r[0].test_rmse, (double)r[0].train_loss);
    ck_assert_float_eq_tol(next[1], next[0], 0.02f);
}
END_TEST

/* Expects syn_forecaster_fit to fail with SYN_ERR_ARG and a message holding `part`. */
static void expect_fit_error(const syn_forecast_config *cfg, const float *y, int64_t n, const char *part) {
    syn_forecaster *f = (syn_forecaster *)1;
    syn_forecast_report rep;
    syn_status s = syn_forecaster_fit(cfg, y, n, &f, &rep);
    ck_assert_msg(s == SYN_ERR_ARG, "status %s (%s), want invalid argument", syn_status_str(s), syn_last_error());
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(syn_last_error(), part) != NULL, "'%s' lacks '%s'", syn_last_error(), part);
}

START_TEST(fit_rejects_bad_series_and_config) {
    static float y[SERIES_N];
    make_series(y, SERIES_N);
    syn_forecast_config cfg = syn_forecast_defaults();
    /* Shorter than the window. */
    expect_fit_error(&cfg, y, 20, "20 values is too short");
    /* The least length that works is what the message names: window 24 +
     * horizon 1 = 25 training values after round(n * 0.2) test values: 31. */
    expect_fit_error(&cfg, y, 30, "at least 31");
    syn_forecaster *f = NULL;
    cfg.epochs = 1;
    TU_OK(syn_forecaster_fit(&cfg, y, 31, &f, NULL));
    syn_forecaster_free(f);
    cfg = syn_forecast_defaults();
    expect_fit_error(&cfg, y, 0, "too short");
    float bad[100];
    memcpy(bad, y, sizeof bad);
    bad[57] = NAN;
    expect_fit_error(&cfg, bad, 100, "value 57");
    cfg.hidden = 0;
    expect_fit_error(&cfg, y, SERIES_N, "hidden (0)");
    cfg = syn_forecast_defaults();
    cfg.test_fraction = 1.0f;
    expect_fit_error(&cfg, y, SERIES_N, "test_fraction");
    cfg = syn_forecast_defaults();
    cfg.lr = 0.0f;
    expect_fit_error(&cfg, y, SERIES_N, "lr");
    cfg = syn_forecast_defaults();
    cfg.mode = (syn_rnn_mode)42;
    expect_fit_error(&cfg, y, SERIES_N, "mode 42");
    cfg = syn_forecast_defaults();
    cfg.schedule = SYN_SCHED_STEP;
    expect_fit_error(&cfg, y, SERIES_N, "schedule");
    cfg = syn_forecast_defaults();
    expect_fit_error(&cfg, NULL, SERIES_N, "NULL series");
    ck_assert_int_eq(syn_forecaster_fit(&cfg, y, SERIES_N, NULL, NULL), SYN_ERR_ARG);
    syn_forecaster_free(NULL);
}
END_TEST

/* ---- the CLI ----------------------------------------------------------------------- */




START_TEST(cli_forecast) {
    char bin[512], cmd[1024];
    if (!tu_cli_path(bin, sizeof bin, "test_forecast")) return;
    static float y[SERIES_N];
    make_series(y, SERIES_N);
    tmpfile_t t;
    write_series_csv(&t, y, SERIES_N);
    char *out;

    /* A short run (GRU, 16 wide, 8 epochs): the JSON line's fields, the baseline's value. */
    snprintf(cmd, sizeof cmd, "%s forecast --csv %s --column load --cell gru --hidden 16 --epochs 8 --quiet", bin,
             t.path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    const char *json = tu_last_line(out);
    ck_assert_msg(json[0] == '{' && json[strlen(json) - 1] == '}', "not one JSON object: '%s'", json);
    static const char *const keys[] = {"\"model\":\"gru 1x16 window 24\"", "\"column\":\"load\"", "\"device\":\"cpu\"",
                                       "\"values\":1200", "\"train_windows\":936", "\"test_targets\":240",
                                       "\"epochs\":8"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_msg(strstr(json, keys[i]) != NULL, "'%s' lacks %s", json, keys[i]);
    double test_rmse = tu_json_number(json, "test_rmse"), naive = tu_json_number(json, "naive_rmse");
    ck_assert_msg(test_rmse > 0 && test_rmse < naive, "'%s': the model does not beat the naive forecast", json);
    ck_assert_double_eq_tol(tu_json_number(json, "ratio"), test_rmse / naive, 1e-3);
    /* The forecast after the end, against the noise-free value at t = 1200 (a loose bound: this short run's
     * test RMSE is near 0.5). */
    double truth = 10.0 + 3.0 * sin(2.0 * M_PI * 1200 / 24.0) + 1.5 * sin(2.0 * M_PI * 1200 / 168.0) + 0.002 * 1200;
    ck_assert_double_eq_tol(tu_json_number(json, "next"), truth, 1.5);
    ck_assert_msg(tu_json_number(json, "seconds") > 0, "%s", json);
    free(out);

    /* Progress goes to stderr, not stdout: without --quiet stdout is still the one line. */
    snprintf(cmd, sizeof cmd, "%s forecast --csv %s --column 1 --hidden 4 --epochs 1 2>/dev/null", bin, t.path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_msg(out[0] == '{' && strchr(out, '\n') == strrchr(out, '\n'), "stdout: '%s'", out);
    free(out);

    snprintf(cmd, sizeof cmd, "%s forecast --csv %s --column nosuch 2>&1", bin, t.path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "synapse: error: ") && strstr(out, "'nosuch'"), "%s", out);
    free(out);

    snprintf(cmd, sizeof cmd, "%s forecast --csv %s --column time 2>&1", bin, t.path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "series.csv:2:") && strstr(out, "'time'"), "%s", out);
    free(out);

    snprintf(cmd, sizeof cmd, "%s forecast --csv %s --column load --window 2000 2>&1", bin, t.path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "too short"), "%s", out);
    free(out);

    snprintf(cmd, sizeof cmd, "%s forecast --csv %s 2>&1", bin, t.path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    ck_assert_msg(strstr(out, "--column") && strstr(out, "usage:"), "%s", out);
    free(out);

    snprintf(cmd, sizeof cmd, "%s forecast --csv %s --column load --cell transformer 2>&1", bin, t.path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "transformer"));
    free(out);

    snprintf(cmd, sizeof cmd, "%s forecast --help", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--test-fraction"));
    free(out);

    snprintf(cmd, sizeof cmd, "%s --help", bin);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "forecast"));
    free(out);
    tmp_remove(&t);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("forecast");
    TCase *t = tcase_create("reader");
    tcase_add_test(t, reader_columns_quotes_and_line_ends);
    tcase_add_test(t, reader_errors_name_file_line_and_column);
    tcase_add_test(t, fit_rejects_bad_series_and_config);
    tcase_add_test(t, fit_is_deterministic);
    tcase_add_test(t, cuda_fit_follows_cpu);
    suite_add_tcase(s, t);
    t = tcase_create("training");
    tcase_set_tags(t, "slow"); /* whole training runs: left to the Release pass */
    tcase_set_timeout(t, 300);
    tcase_add_test(t, lstm_beats_naive_on_seasonal_series);
    tcase_add_test(t, gru_beats_naive_on_seasonal_series);
    tcase_add_test(t, cli_forecast);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(suite()); }
