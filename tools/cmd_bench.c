/* synapse bench: the benchmark workloads of bench.h on the CPU and/or a GPU,
 * each verified before it is timed, with the PyTorch twins
 * (benchmarks/pytorch/bench.py) run beside them when a Python with torch is
 * found; a terminal table with the ratio PyTorch / Synapse, JSON lines and a
 * Markdown table. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "synapse/bench.h"
#include "cli.h"

extern void openblas_set_num_threads(int num_threads) __attribute__((weak));

static const char bench_usage_text[] =
    "usage: synapse bench [options] [WORKLOAD ...]\n"
    "\n"
    "Runs benchmark workloads (all by default; see --list): each is built with a\n"
    "fixed seed, verified against a CPU reference (a failure is reported and not\n"
    "timed), warmed up, then timed step by step (a device synchronise before each\n"
    "clock reading); the median, the spread ((p90 - min) / median), items/s and\n"
    "peak memory are reported with the machine. The PyTorch twins\n"
    "(benchmarks/pytorch/bench.py) run beside them when a Python with torch is\n"
    "found: $SYN_BENCH_PYTHON (a command), $VENV/bin/python, .venv/bin/python of\n"
    "the source tree, python3 - in that order.\n"
    "\n"
    "  --device D         cpu | cuda | cuda:N | all (default cpu; all: the CPU and cuda:0 if present)\n"
    "  --workload NAME    a workload (repeatable, or NAME,NAME,...); default: all\n"
    "  --iters N          timed steps (default: per workload and device)\n"
    "  --warmup N         untimed steps first (default: per workload and device)\n"
    "  --quick            small sizes and 2 steps: checks the harness, measures nothing\n"
    "  --threads N        OpenMP/OpenBLAS threads (and torch.set_num_threads); default: as set\n"
    "  --json FILE        JSON lines, one object per result, Synapse's and PyTorch's\n"
    "  --markdown FILE    a Markdown table with the date and the machines\n"
    "  --no-pytorch       do not run the PyTorch twins\n"
    "  --paired           run each workload's PyTorch twin right after it (one Python per workload)\n"
    "                     instead of all twins after all workloads: on a shared machine whose speed\n"
    "                     drifts, each ratio then compares two runs seconds apart\n"
    "  --profile          time each op's kernels (SYN_PROFILE=1): every graph prints a table of\n"
    "                     device ms per step by op to stderr when freed; costs a sync per pass\n"
    "  --list             the workloads, one per line: name, kind, description\n"
    "  --help             this text\n"
    "\n"
    "Exit status: 0 all ran and verified, 1 a workload failed (verification or a\n"
    "run error), 2 usage.\n";

#define MAX_WL 64
#define MAX_DEV 2

typedef struct {
    char workload[32], device[16], status[16];
    double median_ms;
} torch_row;

typedef struct {
    syn_bench_result r;
    syn_bench_machine *m;
    char *json;
} syn_row;

/* ---- finding Python with torch ------------------------------------------------------- */

static bool imports_torch(const char *py) {
    char cmd[4500];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", py);
    return system(cmd) == 0;
}

/* The first candidate that imports torch into py; else false with why. */
static bool find_python(char *py, size_t size, char *why, size_t wsize) {
    const char *env = getenv("SYN_BENCH_PYTHON"), *venv = getenv("VENV");
    char cand[4096];
    if (env && *env) {
        if (imports_torch(env)) return snprintf(py, size, "%s", env), true;
        snprintf(why, wsize, "SYN_BENCH_PYTHON='%s' cannot import torch", env);
        return false;
    }
    if (venv && *venv) {
        snprintf(cand, sizeof cand, "%s/bin/python", venv);
        if (access(cand, X_OK) == 0 && imports_torch(cand)) return snprintf(py, size, "%s", cand), true;
    }
    if (syn_bench_source_file(".venv/bin/python", cand, sizeof cand) && imports_torch(cand))
        return snprintf(py, size, "%s", cand), true;
    if (imports_torch("python3")) return snprintf(py, size, "python3"), true;
    snprintf(why, wsize, "no Python with torch ($SYN_BENCH_PYTHON, $VENV, .venv, python3 tried)");
    return false;
}

/* ---- the PyTorch side ------------------------------------------------------------------- */

/* Runs bench.py for the workloads `workloads` (comma-separated) on device d;
 * appends its rows and JSON lines (MAX_WL * MAX_DEV of each at most).
 * Returns false, with why (also said on stderr), when it gave nothing. */
static bool run_torch(const char *py, const char *script, syn_device d, const char *workloads,
                      const syn_bench_config *cfg, int threads, torch_row *rows, int *n_rows, char **lines,
                      int *n_lines, char *why, size_t wsize) {
    const int max_rows = MAX_WL * MAX_DEV, max_lines = MAX_WL * MAX_DEV, iters = cfg->iters, warmup = cfg->warmup;
    const bool quick = cfg->quick;
    char device[16];
    syn_device_str(d, device, sizeof device);
    char tmp[] = "/tmp/synapse-bench-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(why, wsize, "cannot create a temporary file for bench.py's results");
        fprintf(stderr, "synapse bench: %s\n", why);
        return false;
    }
    close(fd);
    char cmd[8192];
    int n = snprintf(cmd, sizeof cmd, "%s '%s' --device %s --threads %d --workload %s --json-out %s", py, script,
                     device, threads, workloads, tmp);
    if (iters > 0) n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --iters %d", iters);
    if (warmup >= 0) n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --warmup %d", warmup);
    if (quick) n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --quick");
    snprintf(cmd + n, sizeof cmd - (size_t)n, " 1>&2");
    fprintf(stderr, "synapse bench: PyTorch on %s: %s\n", device, cmd);
    fflush(stderr);
    int rc = system(cmd);
    FILE *f = fopen(tmp, "r");
    int got = 0;
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            json_error_t err;
            json_t *o = json_loads(line, 0, &err);
            if (!o) continue;
            if (*n_rows < max_rows) {
                torch_row *t = &rows[(*n_rows)++];
                memset(t, 0, sizeof *t);
                const char *w = json_string_value(json_object_get(o, "workload"));
                const char *d = json_string_value(json_object_get(o, "device"));
                const char *s = json_string_value(json_object_get(o, "status"));
                snprintf(t->workload, sizeof t->workload, "%s", w ? w : "?");
                snprintf(t->device, sizeof t->device, "%s", d ? d : "?");
                snprintf(t->status, sizeof t->status, "%s", s ? s : "?");
                json_t *m = json_object_get(o, "median_ms");
                t->median_ms = json_is_number(m) ? json_number_value(m) : NAN;
            }
            if (*n_lines < max_lines) {
                size_t len = strlen(line);
                while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
                lines[(*n_lines)++] = strdup(line);
            }
            json_decref(o);
            got++;
        }
        free(line);
        fclose(f);
    }
    unlink(tmp);
    if (got == 0) {
        snprintf(why, wsize, "bench.py on %s gave no results (exit %d; see its output above)", device,
                 WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
        fprintf(stderr, "synapse bench: %s\n", why);
        return false;
    }
    if (rc != 0) fprintf(stderr, "synapse bench: bench.py on %s exited with %d\n", device, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    return true;
}

static const torch_row *torch_find(const torch_row *rows, int n, const char *workload, const char *device) {
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].workload, workload) == 0 && strcmp(rows[i].device, device) == 0) return &rows[i];
    return NULL;
}

/* ---- output ---------------------------------------------------------------------------- */

static void fmt_mb(char *buf, size_t size, int64_t bytes) {
    if (bytes < 0) snprintf(buf, size, "-");
    else snprintf(buf, size, "%.0f", (double)bytes / (1 << 20));
}

static void fmt_rate(char *buf, size_t size, const syn_bench_result *r) {
    if (!isfinite(r->rate)) snprintf(buf, size, "-");
    else if (r->rate >= 1e4) snprintf(buf, size, "%.3g %s", r->rate, r->rate_unit);
    else snprintf(buf, size, "%.1f %s", r->rate, r->rate_unit);
}

/* PyTorch ms and the ratio PyTorch / Synapse, or n/a. */
static void fmt_torch(char *ms, char *ratio, size_t size, const syn_bench_result *r, const torch_row *t) {
    if (!t) {
        snprintf(ms, size, "n/a");
        snprintf(ratio, size, "n/a");
    } else if (strcmp(t->status, "ok") != 0 || !isfinite(t->median_ms)) {
        snprintf(ms, size, "%s", t->status);
        snprintf(ratio, size, "n/a");
    } else {
        snprintf(ms, size, "%.3f", t->median_ms);
        if (r->status == SYN_BENCH_OK) snprintf(ratio, size, "%.2f", t->median_ms / r->median_ms);
        else snprintf(ratio, size, "n/a");
    }
}

static void print_header(FILE *f) {
    fprintf(f, "%-15s %-7s %-13s %10s %7s %19s %7s %8s %8s %10s %6s %7s\n", "workload", "device", "status", "ms/step",
            "spread", "rate", "ceil%", "host MB", "dev MB", "PyTorch ms", "ratio", "others");
}

static void print_row(FILE *f, const syn_bench_result *r, const torch_row *t, bool with_torch) {
    char rate[40], hmb[16], dmb[16], ms[24], ratio[24], med[24], spread[16], ceil[16], st[24], oth[16];
    fmt_rate(rate, sizeof rate, r);
    if (isfinite(r->others_cpu_pct)) snprintf(oth, sizeof oth, "%.0f%%", r->others_cpu_pct);
    else snprintf(oth, sizeof oth, "-");
    fmt_mb(hmb, sizeof hmb, r->host_peak_bytes);
    fmt_mb(dmb, sizeof dmb, r->device_peak_bytes);
    if (with_torch) fmt_torch(ms, ratio, sizeof ms, r, t);
    else snprintf(ms, sizeof ms, "..."), snprintf(ratio, sizeof ratio, "...");
    if (isfinite(r->median_ms)) snprintf(med, sizeof med, "%.3f", r->median_ms);
    else snprintf(med, sizeof med, "-");
    double sp = (r->p90_ms - r->min_ms) / r->median_ms * 100.0;
    if (isfinite(sp)) snprintf(spread, sizeof spread, "%.1f%%", sp);
    else snprintf(spread, sizeof spread, "-");
    if (isfinite(r->ceiling) && isfinite(r->rate)) snprintf(ceil, sizeof ceil, "%.0f%%", 100.0 * r->rate / r->ceiling);
    else snprintf(ceil, sizeof ceil, "-");
    snprintf(st, sizeof st, "%s%s", syn_bench_status_name(r->status), r->reduced ? " (r)" : "");
    fprintf(f, "%-15s %-7s %-13s %10s %7s %19s %7s %8s %8s %10s %6s %7s\n", r->workload, r->device, st, med, spread,
            rate, ceil, hmb, dmb, ms, ratio, oth);
    fflush(f);
}

static void machine_lines(FILE *f, const syn_bench_machine *const *ms, int n, const char *prefix) {
    for (int i = 0; i < n; i++) {
        const syn_bench_machine *m = ms[i];
        if (i == 0) {
            fprintf(f, "%sdate %s; synapse %s; CPU: %s (%d logical CPUs, %d threads); load average %.2f\n", prefix,
                    m->date, m->synapse, m->cpu, m->cores, m->threads, m->loadavg1);
            fprintf(f, "%sBLAS: %s (%d threads); OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s\n", prefix, m->blas,
                    m->blas_threads, *m->openblas_coretype ? m->openblas_coretype : "(unset)",
                    *m->openblas_l2_size ? m->openblas_l2_size : "(unset)");
        }
        if (*m->gpu) fprintf(f, "%sGPU: %s\n", prefix, m->gpu);
    }
}

static void write_markdown(FILE *f, syn_row *rows, int n, const torch_row *trows, int n_t, bool torch,
                           const char *torch_note, const syn_bench_machine *const *ms, int n_m) {
    fprintf(f, "| workload | device | what ran | ms/step (median) | spread | rate | host MB | device MB | PyTorch ms | PyTorch / Synapse | others' CPU |\n");
    fprintf(f, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        const syn_bench_result *r = &rows[i].r;
        const torch_row *t = torch ? torch_find(trows, n_t, r->workload, r->device) : NULL;
        char rate[40], hmb[16], dmb[16], ms_[24], ratio[24], med[32], spread[16], oth[16];
        fmt_rate(rate, sizeof rate, r);
        if (isfinite(r->others_cpu_pct)) snprintf(oth, sizeof oth, "%.0f%%", r->others_cpu_pct);
        else snprintf(oth, sizeof oth, "-");
        fmt_mb(hmb, sizeof hmb, r->host_peak_bytes);
        fmt_mb(dmb, sizeof dmb, r->device_peak_bytes);
        fmt_torch(ms_, ratio, sizeof ms_, r, t);
        if (r->status == SYN_BENCH_OK) snprintf(med, sizeof med, "%.3f", r->median_ms);
        else snprintf(med, sizeof med, "%s", syn_bench_status_name(r->status));
        double sp = (r->p90_ms - r->min_ms) / r->median_ms * 100.0;
        if (isfinite(sp)) snprintf(spread, sizeof spread, "%.1f%%", sp);
        else snprintf(spread, sizeof spread, "-");
        fprintf(f, "| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->workload, r->device, r->config,
                r->reduced ? " (reduced)" : "", med, spread, rate, hmb, dmb, ms_, ratio, oth);
    }
    fprintf(f, "\n");
    machine_lines(f, ms, n_m, "");
    if (!torch) fprintf(f, "\nPyTorch column n/a: %s\n", torch_note);
    fprintf(f, "\nspread = (p90 - min) / median; ratio > 1: Synapse is faster; others' CPU: CPU time other processes "
               "used during Synapse's run of the row, in %% of the machine. Timing: each step between two marks, "
               "CUDA events on a GPU, the monotonic clock on the CPU (PyTorch's side the same).\n");
}

/* ---- the command -------------------------------------------------------------------------- */

static bool add_workloads(const char *arg, const syn_bench_workload **wl, int *n, char *bad, size_t bsize) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const syn_bench_workload *w = syn_bench_find(tok);
        if (!w) {
            snprintf(bad, bsize, "%s", tok);
            return false;
        }
        bool dup = false;
        for (int i = 0; i < *n; i++) dup |= wl[i] == w;
        if (!dup && *n < MAX_WL) wl[(*n)++] = w;
    }
    return true;
}

int cmd_bench(int argc, char **argv) {
    enum { O_DEVICE = 256, O_WORKLOAD, O_ITERS, O_WARMUP, O_QUICK, O_THREADS, O_JSON, O_MD, O_NOTORCH, O_LIST, O_PROFILE,
           O_PAIRED };
    static const struct option longopts[] = {
        {"device", required_argument, 0, O_DEVICE}, {"workload", required_argument, 0, O_WORKLOAD},
        {"iters", required_argument, 0, O_ITERS},   {"warmup", required_argument, 0, O_WARMUP},
        {"quick", no_argument, 0, O_QUICK},         {"threads", required_argument, 0, O_THREADS},
        {"json", required_argument, 0, O_JSON},     {"markdown", required_argument, 0, O_MD},
        {"no-pytorch", no_argument, 0, O_NOTORCH},  {"list", no_argument, 0, O_LIST},
        {"profile", no_argument, 0, O_PROFILE},     {"paired", no_argument, 0, O_PAIRED},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    const char *U = bench_usage_text, *device = "cpu", *json_path = NULL, *md_path = NULL;
    const syn_bench_workload *wl[MAX_WL];
    int n_wl = 0;
    syn_bench_config cfg = syn_bench_config_defaults();
    bool list = false, no_torch = false, paired = false;
    int64_t v, threads = 0;
    char bad[128];
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(U, stdout); return 0;
        case O_DEVICE: device = optarg; break;
        case O_WORKLOAD:
            if (!add_workloads(optarg, wl, &n_wl, bad, sizeof bad))
                return usage_error(U, "unknown workload '%s' (see synapse bench --list)", bad);
            break;
        case O_ITERS:
            if (!parse_i64(optarg, 1, &v) || v > 100000) return usage_error(U, "--iters must be in 1..100000, got '%s'", optarg);
            cfg.iters = (int)v;
            break;
        case O_WARMUP:
            if (!parse_i64(optarg, 0, &v) || v > 100000) return usage_error(U, "--warmup must be in 0..100000, got '%s'", optarg);
            cfg.warmup = (int)v;
            break;
        case O_QUICK: cfg.quick = true; break;
        case O_THREADS:
            if (!parse_i64(optarg, 1, &threads) || threads > 4096) return usage_error(U, "--threads must be >= 1, got '%s'", optarg);
            break;
        case O_JSON: json_path = optarg; break;
        case O_MD: md_path = optarg; break;
        case O_NOTORCH: no_torch = true; break;
        case O_PAIRED: paired = true; break;
        case O_LIST: list = true; break;
        case O_PROFILE: setenv("SYN_PROFILE", "1", 1); break; /* read by each graph's compile */
        case ':': return usage_error(U, "option %s needs a value", argv[optind - 1]);
        default: return usage_error(U, "unknown option '%s'", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++)
        if (!add_workloads(argv[i], wl, &n_wl, bad, sizeof bad))
            return usage_error(U, "unknown workload '%s' (see synapse bench --list)", bad);
    if (list) {
        for (int i = 0; i < syn_bench_count(); i++)
            printf("%-16s %-6s %s\n", syn_bench_get(i)->name, syn_bench_get(i)->kind, syn_bench_get(i)->desc);
        return 0;
    }
    if (n_wl == 0)
        for (int i = 0; i < syn_bench_count() && n_wl < MAX_WL; i++) wl[n_wl++] = syn_bench_get(i);

    /* devices */
    syn_device devs[MAX_DEV];
    int n_dev = 0;
    if (strcmp(device, "all") == 0) {
        devs[n_dev++] = syn_cpu();
        if (syn_backend_built(SYN_DEVICE_CUDA) && syn_device_count(SYN_DEVICE_CUDA) > 0) devs[n_dev++] = syn_cuda(0);
        else
            fprintf(stderr, "synapse bench: --device all: no GPU here (%s): the CPU only\n",
                    syn_backend_built(SYN_DEVICE_CUDA) ? "no CUDA device found" : "built without the CUDA backend");
    } else {
        if (syn_device_parse(device, &devs[0]) != SYN_OK)
            return usage_error(U, "--device wants cpu, cuda, cuda:N or all, got '%s'", device);
        int rc = pick_device(device, &devs[0]);
        if (rc >= 0) return rc;
        n_dev = 1;
    }
    if (threads > 0) {
        omp_set_num_threads((int)threads);
        if (openblas_set_num_threads) openblas_set_num_threads((int)threads);
    }
    const int n_threads = omp_get_max_threads();

    FILE *jf = NULL, *mf = NULL;
    if (json_path && !(jf = fopen(json_path, "w"))) {
        fprintf(stderr, "synapse: error: cannot write %s\n", json_path);
        return 1;
    }
    if (md_path && !(mf = fopen(md_path, "w"))) {
        fprintf(stderr, "synapse: error: cannot write %s\n", md_path);
        if (jf) fclose(jf);
        return 1;
    }

    /* PyTorch: found before anything runs, so the plan is printed up front */
    char py[4096] = "", script[4096] = "", torch_note[512] = "";
    bool torch = false;
    if (no_torch) snprintf(torch_note, sizeof torch_note, "--no-pytorch");
    else if (!syn_bench_source_file("benchmarks/pytorch/bench.py", script, sizeof script))
        snprintf(torch_note, sizeof torch_note, "benchmarks/pytorch/bench.py not found (run from the source tree or set SYN_SOURCE_DIR)");
    else torch = find_python(py, sizeof py, torch_note, sizeof torch_note);
    if (torch) fprintf(stderr, "synapse bench: PyTorch twins with %s %s\n", py, script);
    else fprintf(stderr, "synapse bench: PyTorch column n/a: %s\n", torch_note);

    syn_bench_machine machines[MAX_DEV];
    const syn_bench_machine *mptr[MAX_DEV];
    torch_row trows[MAX_WL * MAX_DEV];
    char *tlines[MAX_WL * MAX_DEV];
    int n_t = 0, n_tl = 0;
    bool torch_any = false;
    char torch_why[512] = "";
    syn_row *rows = calloc((size_t)n_wl * n_dev, sizeof *rows);
    if (!rows) return runtime_error(SYN_ERR_OOM);
    int n_rows = 0, failures = 0;
    fprintf(stderr, "synapse bench: %d workload(s) on %d device(s)%s\n", n_wl, n_dev, cfg.quick ? ", --quick" : "");
    print_header(stdout);
    for (int d = 0; d < n_dev; d++) {
        syn_bench_machine_get(devs[d], &machines[d]);
        mptr[d] = &machines[d];
        for (int i = 0; i < n_wl; i++) {
            syn_row *row = &rows[n_rows++];
            syn_bench_run_workload(wl[i], devs[d], &cfg, &row->r);
            row->m = &machines[d];
            if (row->r.status != SYN_BENCH_OK && row->r.status != SYN_BENCH_SKIPPED) failures++;
            print_row(stdout, &row->r, NULL, false);
            if (row->r.status != SYN_BENCH_OK)
                fprintf(stdout, "    %s: %s%s%s\n", syn_bench_status_name(row->r.status), row->r.verify,
                        *row->r.verify && *row->r.note ? "; " : "", row->r.note);
            if (torch && paired) {
                fflush(stdout);
                torch_any |= run_torch(py, script, devs[d], wl[i]->name, &cfg, n_threads, trows, &n_t, tlines,
                                          &n_tl, torch_why, sizeof torch_why);
            }
        }
    }

    /* the twins (unless each ran after its workload), then the joined table */
    if (torch && !paired) {
        char names[MAX_WL * 33] = "";
        size_t off = 0;
        for (int i = 0; i < n_wl; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? "," : "", wl[i]->name);
        for (int d = 0; d < n_dev; d++)
            torch_any |= run_torch(py, script, devs[d], names, &cfg, n_threads, trows, &n_t, tlines, &n_tl,
                                      torch_why, sizeof torch_why);
    }
    if (torch && !torch_any) {
        torch = false;
        snprintf(torch_note, sizeof torch_note, "%s", torch_why);
    }
    printf("\n");
    print_header(stdout);
    for (int i = 0; i < n_rows; i++)
        print_row(stdout, &rows[i].r, torch ? torch_find(trows, n_t, rows[i].r.workload, rows[i].r.device) : NULL, true);
    printf("\n");
    machine_lines(stdout, mptr, n_dev, "");
    printf("(r) = reduced size (see the JSON note); spread = (p90 - min) / median; ceil%% = rate / the ceiling "
           "measured in this run; ratio = PyTorch ms / Synapse ms (> 1: Synapse faster); others = CPU time other "
           "processes used meanwhile, %% of the machine (above ~10%%: the figure is suspect)\n");
    if (!torch) printf("PyTorch column n/a: %s\n", torch_note);

    int rc = failures ? 1 : 0;
    if (jf) {
        for (int i = 0; i < n_rows; i++) {
            char *j = syn_bench_result_json(&rows[i].r, rows[i].m);
            if (j) fprintf(jf, "%s\n", j);
            free(j);
        }
        for (int i = 0; i < n_tl; i++) fprintf(jf, "%s\n", tlines[i]);
        if (fclose(jf) != 0) {
            fprintf(stderr, "synapse: error: writing %s failed\n", json_path);
            rc = 1;
        }
    }
    if (mf) {
        write_markdown(mf, rows, n_rows, trows, n_t, torch, torch_note, mptr, n_dev);
        if (fclose(mf) != 0) {
            fprintf(stderr, "synapse: error: writing %s failed\n", md_path);
            rc = 1;
        }
    }
    for (int i = 0; i < n_tl; i++) free(tlines[i]);
    free(rows);
    if (failures) fprintf(stderr, "synapse bench: %d result(s) failed verification or errored\n", failures);
    return rc;
}
