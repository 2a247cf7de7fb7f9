/* `synapse forecast`: trains a recurrent forecaster on one column of a CSV
 * file (the last part held out, chronologically), prints progress on stderr
 * and one JSON line on stdout: test RMSE against the naive last-value
 * forecast's, and the forecast of the value after the series' end. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char forecast_usage_text[] =
    "usage: synapse forecast --csv FILE --column C [options]\n"
    "\n"
    "Trains a recurrent network to forecast the next value of the series in\n"
    "column C from the W values before it. The last --test-fraction of the\n"
    "series is held out; the test RMSE (in the series' units) is compared with\n"
    "the naive forecast that repeats the last value.\n"
    "\n"
    "  --csv FILE            a CSV file with a header row (other columns may be dates, text)\n"
    "  --column C            the series' column: a header name or a 0-based index\n"
    "  --window W            values per forecast (default 24)\n"
    "  --horizon K           forecast K steps after the window (default 1: the next value)\n"
    "  --cell C              lstm|gru|rnn (default lstm)\n"
    "  --hidden N            recurrent width (default 32)\n"
    "  --layers N            stacked recurrent layers (default 1)\n"
    "  --epochs N            (default 30)\n"
    "  --batch-size N        (default 32)\n"
    "  --lr LR               Adam's learning rate (default 0.005)\n"
    "  --schedule S          cosine (from LR down to LR/100, the default) | constant\n"
    "  --clip NORM           global gradient-norm clipping, 0 off (default 1)\n"
    "  --test-fraction F     the held-out last part of the series (default 0.2)\n"
    "  --seed S              initialisation and shuffling (default 1)\n"
    "  --device D            cpu|cuda|cuda:N (default cpu)\n"
    "  --quiet               no progress\n"
    "  --help                this text\n"
    "\n"
    "The last line on stdout is one JSON object with the results.\n";

enum {
    OPT_CSV = 256, OPT_COLUMN, OPT_WINDOW, OPT_HORIZON, OPT_CELL, OPT_HIDDEN, OPT_LAYERS, OPT_EPOCHS, OPT_BATCH,
    OPT_LR, OPT_SCHEDULE, OPT_CLIP, OPT_TEST_FRACTION, OPT_SEED, OPT_DEVICE
};

static const char *cell_name(syn_rnn_mode m) {
    switch (m) {
    case SYN_RNN_LSTM: return "lstm";
    case SYN_RNN_GRU: return "gru";
    case SYN_RNN_RELU: return "rnn_relu";
    default: return "rnn";
    }
}

int cmd_forecast(int argc, char **argv) {
    static const struct option longopts[] = {
        {"csv", required_argument, 0, OPT_CSV},       {"column", required_argument, 0, OPT_COLUMN},
        {"window", required_argument, 0, OPT_WINDOW}, {"horizon", required_argument, 0, OPT_HORIZON},
        {"cell", required_argument, 0, OPT_CELL},     {"hidden", required_argument, 0, OPT_HIDDEN},
        {"layers", required_argument, 0, OPT_LAYERS}, {"epochs", required_argument, 0, OPT_EPOCHS},
        {"batch-size", required_argument, 0, OPT_BATCH}, {"lr", required_argument, 0, OPT_LR},
        {"schedule", required_argument, 0, OPT_SCHEDULE},
        {"clip", required_argument, 0, OPT_CLIP},     {"test-fraction", required_argument, 0, OPT_TEST_FRACTION},
        {"seed", required_argument, 0, OPT_SEED},     {"device", required_argument, 0, OPT_DEVICE},
        {"quiet", no_argument, 0, 'q'},               {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *U = forecast_usage_text;
    syn_forecast_config cfg = syn_forecast_defaults();
    const char *csv = NULL, *column = NULL, *device = "cpu";
    bool quiet = false;
    int64_t v;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case 'h': fputs(U, stdout); return 0;
        case 'q': quiet = true; break;
        case OPT_CSV: csv = a; break;
        case OPT_COLUMN: column = a; break;
        case OPT_WINDOW:
            if (!parse_i64(a, 1, &cfg.window) || cfg.window > 100000)
                return usage_error(U, "--window must be in [1, 100000], got '%s'", a);
            break;
        case OPT_HORIZON:
            if (!parse_i64(a, 1, &cfg.horizon) || cfg.horizon > 100000)
                return usage_error(U, "--horizon must be in [1, 100000], got '%s'", a);
            break;
        case OPT_CELL:
            if (strcmp(a, "lstm") == 0) cfg.mode = SYN_RNN_LSTM;
            else if (strcmp(a, "gru") == 0) cfg.mode = SYN_RNN_GRU;
            else if (strcmp(a, "rnn") == 0 || strcmp(a, "rnn_tanh") == 0) cfg.mode = SYN_RNN_TANH;
            else if (strcmp(a, "rnn_relu") == 0) cfg.mode = SYN_RNN_RELU;
            else return usage_error(U, "unknown --cell '%s' (lstm, gru, rnn, rnn_relu)", a);
            break;
        case OPT_HIDDEN:
            if (!parse_i64(a, 1, &cfg.hidden) || cfg.hidden > 65536)
                return usage_error(U, "--hidden must be in [1, 65536], got '%s'", a);
            break;
        case OPT_LAYERS:
            if (!parse_i64(a, 1, &v) || v > 64) return usage_error(U, "--layers must be in [1, 64], got '%s'", a);
            cfg.layers = (int)v;
            break;
        case OPT_EPOCHS:
            if (!parse_i64(a, 1, &v) || v > 1000000) return usage_error(U, "--epochs must be >= 1, got '%s'", a);
            cfg.epochs = (int)v;
            break;
        case OPT_BATCH:
            if (!parse_i64(a, 1, &cfg.batch) || cfg.batch > 1000000)
                return usage_error(U, "--batch-size must be in [1, 1000000], got '%s'", a);
            break;
        case OPT_LR:
            if (!parse_f32(a, 0.0f, &cfg.lr) || cfg.lr <= 0.0f) return usage_error(U, "--lr must be > 0, got '%s'", a);
            break;
        case OPT_SCHEDULE:
            if (strcmp(a, "cosine") == 0) cfg.schedule = SYN_SCHED_COSINE;
            else if (strcmp(a, "constant") == 0) cfg.schedule = SYN_SCHED_CONSTANT;
            else return usage_error(U, "unknown --schedule '%s' (cosine, constant)", a);
            break;
        case OPT_CLIP:
            if (!parse_f32(a, 0.0f, &cfg.clip)) return usage_error(U, "--clip must be >= 0, got '%s'", a);
            break;
        case OPT_TEST_FRACTION:
            if (!parse_f32(a, 0.0f, &cfg.test_fraction) || cfg.test_fraction <= 0.0f || cfg.test_fraction >= 1.0f)
                return usage_error(U, "--test-fraction must be in (0, 1), got '%s'", a);
            break;
        case OPT_SEED:
            if (!parse_i64(a, 0, &v)) return usage_error(U, "--seed must be a non-negative integer, got '%s'", a);
            cfg.seed = (uint64_t)v;
            break;
        case OPT_DEVICE: device = a; break;
        case ':': return usage_error(U, "option %s needs a value", argv[optind - 1]);
        default: return usage_error(U, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error(U, "unexpected argument '%s'", argv[optind]);
    if (!csv) return usage_error(U, "%s", "--csv FILE is required");
    if (!column) return usage_error(U, "%s", "--column C is required (a header name or a 0-based index)");
    int rc = pick_device(device, &cfg.device);
    if (rc >= 0) return rc;

    syn_series *ser = NULL;
    syn_status s = syn_series_load_csv(csv, column, 0, &ser);
    if (s != SYN_OK) return runtime_error(s);
    char devname[32], model[96], col[128];
    syn_device_str(cfg.device, devname, sizeof devname);
    snprintf(model, sizeof model, "%s %dx%lld window %lld", cell_name(cfg.mode), cfg.layers, (long long)cfg.hidden,
             (long long)cfg.window);
    json_clean_string(col, sizeof col, ser->name);
    if (!quiet) {
        fprintf(stderr, "synapse: forecast column '%s' of %s: %lld values\n", ser->name, csv, (long long)ser->n);
        fprintf(stderr, "synapse: %s, horizon %lld; adam lr %g (%s), batch %lld, %d epochs, device %s\n", model,
                (long long)cfg.horizon, (double)cfg.lr, cfg.schedule == SYN_SCHED_COSINE ? "cosine" : "constant",
                (long long)cfg.batch, cfg.epochs, devname);
        cfg.log = stderr;
    }
    syn_forecaster *f = NULL;
    syn_forecast_report rep;
    float next = NAN;
    s = syn_forecaster_fit(&cfg, ser->values, ser->n, &f, &rep);
    if (s == SYN_OK) s = syn_forecaster_predict(f, ser->values, ser->n, &next);
    if (s == SYN_OK) {
        if (!quiet)
            fprintf(stderr, "synapse: test RMSE %.4g vs naive last-value %.4g (ratio %.3f); forecast after the end: %.6g\n",
                    rep.test_rmse, rep.naive_rmse, rep.ratio, (double)next);
        printf("{\"model\":\"%s\",\"column\":\"%s\",\"device\":\"%s\",\"values\":%lld,\"train_windows\":%lld,"
               "\"test_targets\":%lld,\"horizon\":%lld,\"epochs\":%d,\"params\":%lld",
               model, col, devname, (long long)ser->n, (long long)rep.train_windows, (long long)rep.test_windows,
               (long long)cfg.horizon, cfg.epochs, (long long)rep.params);
        json_num("train_loss", rep.train_loss, "%.6g");
        json_num("train_rmse", rep.train_rmse, "%.6g");
        json_num("test_rmse", rep.test_rmse, "%.6g");
        json_num("naive_rmse", rep.naive_rmse, "%.6g");
        json_num("ratio", rep.ratio, "%.4f");
        json_num("next", next, "%.6g");
        json_num("seconds", rep.seconds, "%.2f");
        puts("}");
        fflush(stdout);
    }
    rc = s == SYN_OK ? 0 : runtime_error(s);
    syn_forecaster_free(f);
    syn_series_free(ser);
    return rc;
}
