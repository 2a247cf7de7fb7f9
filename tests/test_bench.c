/* The benchmark harness (bench.h) and `synapse bench`: a workload that fails
 * verification (or errors) is reported and never timed; a passing one runs
 * warm-up + iters steps and gets ordered statistics; the JSON line parses and
 * has every field of the schema; the registry names the issue's workloads;
 * the built-ins verify at --quick sizes; the CLI lists every workload, treats
 * an unknown one as a usage error, and runs --quick on the CPU. Never a
 * timing assertion. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "synapse/bench.h"
#include "testutil.h"

/* ---- a workload of the test's own ----------------------------------------------------- */

typedef struct {
    int steps, setups, teardowns;
    bool verify_ok;
    syn_status verify_status, setup_status;
    int fail_step_at; /* 1-based step that errors; 0: none */
} fake_ctl;

static fake_ctl ctl;

static syn_status fake_setup(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg, void **state,
                             syn_bench_result *r) {
    (void)w, (void)dev, (void)cfg;
    ctl.setups++;
    *state = &ctl;
    snprintf(r->config, sizeof r->config, "fake");
    r->batch = 4;
    r->items_per_step = 4;
    snprintf(r->item, sizeof r->item, "samples");
    snprintf(r->rate_unit, sizeof r->rate_unit, "samples/s");
    return ctl.setup_status;
}

static syn_status fake_verify(void *state, syn_device dev, const syn_bench_config *cfg, syn_bench_result *r,
                              bool *ok) {
    (void)dev, (void)cfg;
    ck_assert_ptr_eq(state, &ctl);
    ck_assert_int_eq(ctl.steps, 0); /* verification comes before any timed or warm-up step */
    snprintf(r->verify, sizeof r->verify, "fake check: %s", ctl.verify_ok ? "pass" : "made to fail");
    *ok = ctl.verify_ok;
    return ctl.verify_status;
}

static syn_status fake_step(void *state) {
    fake_ctl *c = state;
    c->steps++;
    if (c->fail_step_at && c->steps == c->fail_step_at) return SYN_ERR_DEVICE;
    return SYN_OK;
}

static void fake_teardown(void *state) { ((fake_ctl *)state)->teardowns++; }

static const syn_bench_workload fake = {"fake_wl", "train", "the test's workload", fake_setup, fake_verify, fake_step,
                                        NULL, fake_teardown, 2, 5, 2, 5, NULL};

static void ctl_reset(bool verify_ok) {
    memset(&ctl, 0, sizeof ctl);
    ctl.verify_ok = verify_ok;
}

START_TEST(test_failed_verification_not_timed) {
    ctl_reset(false);
    syn_bench_result r;
    TU_OK(syn_bench_run_workload(&fake, syn_cpu(), NULL, &r));
    ck_assert_int_eq(r.status, SYN_BENCH_VERIFY_FAILED);
    ck_assert_int_eq(ctl.steps, 0);
    ck_assert_int_eq(ctl.teardowns, 1);
    ck_assert(isnan(r.median_ms) && isnan(r.min_ms) && isnan(r.items_per_s));
    ck_assert_str_eq(r.verify, "fake check: made to fail");
    char *j = syn_bench_result_json(&r, NULL);
    ck_assert_ptr_nonnull(j);
    json_error_t err;
    json_t *o = json_loads(j, 0, &err);
    ck_assert_msg(o != NULL, "JSON does not parse: %s: %s", err.text, j);
    ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "verify_failed");
    ck_assert(json_is_null(json_object_get(o, "median_ms")));
    json_decref(o);
    free(j);
}
END_TEST

START_TEST(test_verify_error_not_timed) {
    ctl_reset(true);
    ctl.verify_status = SYN_ERR_DEVICE;
    syn_bench_result r;
    TU_OK(syn_bench_run_workload(&fake, syn_cpu(), NULL, &r));
    ck_assert_int_eq(r.status, SYN_BENCH_ERROR);
    ck_assert_int_eq(ctl.steps, 0);
    ck_assert(isnan(r.median_ms));
    ck_assert_msg(strstr(r.note, "verify") != NULL, "note: %s", r.note);
    /* a setup failure: no verification, no step, still torn down */
    ctl_reset(true);
    ctl.setup_status = SYN_ERR_OOM;
    TU_OK(syn_bench_run_workload(&fake, syn_cpu(), NULL, &r));
    ck_assert_int_eq(r.status, SYN_BENCH_ERROR);
    ck_assert_int_eq(ctl.steps, 0);
    ck_assert_int_eq(ctl.teardowns, 1);
}
END_TEST

START_TEST(test_passing_workload_timed) {
    ctl_reset(true);
    syn_bench_config cfg = syn_bench_config_defaults();
    cfg.warmup = 3;
    cfg.iters = 7;
    syn_bench_result r;
    TU_OK(syn_bench_run_workload(&fake, syn_cpu(), &cfg, &r));
    ck_assert_int_eq(r.status, SYN_BENCH_OK);
    ck_assert_int_eq(ctl.setups, 1);
    ck_assert_int_eq(ctl.steps, 3 + 7);
    ck_assert_int_eq(ctl.teardowns, 1);
    ck_assert_int_eq(r.warmup, 3);
    ck_assert_int_eq(r.iters, 7);
    /* statistics are ordered and finite (no claim about their size) */
    ck_assert(isfinite(r.median_ms) && r.min_ms >= 0);
    ck_assert(r.min_ms <= r.median_ms && r.median_ms <= r.p90_ms && r.p90_ms <= r.max_ms);
    ck_assert(r.min_ms <= r.mean_ms && r.mean_ms <= r.max_ms);
    ck_assert_str_eq(r.device, "cpu");
    ck_assert_str_eq(r.workload, "fake_wl");
    ck_assert_int_eq(r.device_peak_bytes, -1);
    /* the workload's defaults when the config leaves them */
    ctl_reset(true);
    TU_OK(syn_bench_run_workload(&fake, syn_cpu(), NULL, &r));
    ck_assert_int_eq(ctl.steps, fake.warmup_cpu + fake.iters_cpu);
}
END_TEST

START_TEST(test_step_error_reported) {
    ctl_reset(true);
    ctl.fail_step_at = 4;
    syn_bench_result r;
    TU_OK(syn_bench_run_workload(&fake, syn_cpu(), NULL, &r));
    ck_assert_int_eq(r.status, SYN_BENCH_ERROR);
    ck_assert_int_eq(ctl.steps, 4); /* stops at the failing step */
    ck_assert(isnan(r.median_ms));
    ck_assert_int_eq(ctl.teardowns, 1);
}
END_TEST

/* ---- the JSON schema ----------------------------------------------------------------------- */

static const char *const top_fields[] = {
    "schema", "impl", "workload", "kind", "device", "status", "config", "reduced", "note", "verify", "batch",
    "warmup", "iters", "median_ms", "min_ms", "p90_ms", "max_ms", "mean_ms", "spread_pct", "items_per_step", "item",
    "items_per_s", "rate", "rate_unit", "ceiling", "ceiling_what", "final_loss", "host_peak_bytes",
    "device_peak_bytes", "others_cpu_pct", "machine"};
static const char *const machine_fields[] = {"cpu", "cores", "threads", "gpu", "synapse", "blas", "blas_threads",
                                             "openblas_coretype", "openblas_l2_size", "date", "loadavg1", "torch"};

/* Every field of synapse-bench/1 is present; the timed ones are numbers when
 * status is ok. Returns the parsed object (caller decrefs). */
static json_t *check_schema(const char *line, const char *impl) {
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    ck_assert_msg(o != NULL, "JSON does not parse (%s): %s", err.text, line);
    for (size_t i = 0; i < sizeof top_fields / sizeof *top_fields; i++)
        ck_assert_msg(json_object_get(o, top_fields[i]) != NULL, "field %s missing: %s", top_fields[i], line);
    json_t *m = json_object_get(o, "machine");
    ck_assert(json_is_object(m));
    for (size_t i = 0; i < sizeof machine_fields / sizeof *machine_fields; i++)
        ck_assert_msg(json_object_get(m, machine_fields[i]) != NULL, "machine.%s missing: %s", machine_fields[i], line);
    ck_assert_str_eq(json_string_value(json_object_get(o, "schema")), "synapse-bench/1");
    if (impl) ck_assert_str_eq(json_string_value(json_object_get(o, "impl")), impl);
    ck_assert(json_is_boolean(json_object_get(o, "reduced")));
    ck_assert(json_is_string(json_object_get(m, "cpu")) && json_is_integer(json_object_get(m, "cores")));
    if (strcmp(json_string_value(json_object_get(o, "status")), "ok") == 0) {
        static const char *const timed[] = {"median_ms", "min_ms", "p90_ms", "max_ms", "spread_pct", "items_per_s",
                                            "rate"};
        for (size_t i = 0; i < sizeof timed / sizeof *timed; i++)
            ck_assert_msg(json_is_number(json_object_get(o, timed[i])), "%s not a number: %s", timed[i], line);
    }
    return o;
}

START_TEST(test_json_schema) {
    ctl_reset(true);
    syn_bench_result r;
    TU_OK(syn_bench_run_workload(&fake, syn_cpu(), NULL, &r));
    syn_bench_machine m;
    TU_OK(syn_bench_machine_get(syn_cpu(), &m));
    ck_assert(m.cores >= 1 && m.threads >= 1 && *m.cpu && *m.date);
    char *j = syn_bench_result_json(&r, &m);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_null(strchr(j, '\n')); /* one line */
    json_t *o = check_schema(j, "synapse");
    ck_assert_str_eq(json_string_value(json_object_get(o, "workload")), "fake_wl");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "iters")), fake.iters_cpu);
    ck_assert(json_is_null(json_object_get(o, "device_peak_bytes"))); /* the CPU */
    ck_assert(json_is_null(json_object_get(json_object_get(o, "machine"), "gpu")));
    json_decref(o);
    free(j);
}
END_TEST

/* ---- the registry and the built-ins -------------------------------------------------------- */

START_TEST(test_registry) {
    static const char *const issue[] = {"sgemm_1024", "sgemm_4096", "conv3x3_64x32", "conv3x3_256x8", "add_16m",
                                        "sum_16m", "mlp_b128", "mlp_b1024", "cnn_fmnist", "resnet18_cifar",
                                        "char_lstm", "dcgan64"};
    for (size_t i = 0; i < sizeof issue / sizeof *issue; i++)
        ck_assert_msg(syn_bench_find(issue[i]) != NULL, "workload %s missing", issue[i]);
    ck_assert_ptr_null(syn_bench_find("no_such_workload"));
    ck_assert_ptr_null(syn_bench_get(-1));
    ck_assert_ptr_null(syn_bench_get(syn_bench_count()));
    for (int i = 0; i < syn_bench_count(); i++) {
        const syn_bench_workload *w = syn_bench_get(i);
        ck_assert(w->name && w->desc && w->setup && w->verify && w->step);
        ck_assert(strcmp(w->kind, "op") == 0 || strcmp(w->kind, "train") == 0);
        ck_assert(w->iters_cpu >= 1 && w->iters_gpu >= 1);
        for (int k = 0; k < i; k++) ck_assert_str_ne(w->name, syn_bench_get(k)->name);
    }
}
END_TEST

/* The CUDA-graph variants (*_graph) run on a GPU only. */
static bool gpu_only(const char *name) {
    size_t n = strlen(name);
    return n > 6 && strcmp(name + n - 6, "_graph") == 0;
}

/* Each built-in at --quick size on the CPU: verified (so timed), with its
 * figures filled in; the GPU-only ones skipped, saying why. */
START_TEST(test_builtin_quick) {
    const syn_bench_workload *w = syn_bench_get(_i);
    syn_bench_config cfg = syn_bench_config_defaults();
    cfg.quick = true;
    syn_bench_result r;
    TU_OK(syn_bench_run_workload(w, syn_cpu(), &cfg, &r));
    if (gpu_only(w->name)) {
        ck_assert_msg(r.status == SYN_BENCH_SKIPPED && strstr(r.note, "CUDA graphs need a GPU"), "%s: %s: %s", w->name,
                      syn_bench_status_name(r.status), r.note);
        return;
    }
    ck_assert_msg(r.status == SYN_BENCH_OK, "%s: %s: %s %s", w->name, syn_bench_status_name(r.status), r.verify, r.note);
    ck_assert_msg(*r.verify, "%s: verification says nothing", w->name);
    ck_assert_msg(*r.config && *r.item && *r.rate_unit && r.items_per_step > 0, "%s: figures missing", w->name);
    ck_assert_int_eq(r.iters, 2);
    ck_assert(isfinite(r.median_ms) && isfinite(r.rate));
    if (strcmp(w->kind, "train") == 0) ck_assert_msg(isfinite(r.final_loss), "%s: no final loss", w->name);
    ck_assert(r.host_peak_bytes > 0);
}
END_TEST

/* ---- the command ----------------------------------------------------------------------------- */

START_TEST(test_cli) {
    char cli[4096], cmd[8192];
    if (!tu_cli_path(cli, sizeof cli, "test_bench")) return;
    char *out;
    /* --list: every workload, one per line */
    snprintf(cmd, sizeof cmd, "%s bench --list", cli);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    for (int i = 0; i < syn_bench_count(); i++) {
        char want[64];
        snprintf(want, sizeof want, "%s ", syn_bench_get(i)->name);
        char line_start[66];
        snprintf(line_start, sizeof line_start, "\n%s", want);
        ck_assert_msg(i == 0 ? strncmp(out, want, strlen(want)) == 0 : strstr(out, line_start) != NULL,
                      "--list: %s does not start a line", syn_bench_get(i)->name);
    }
    free(out);
    /* an unknown workload, option or device is a usage error (exit 2) */
    const char *bad[] = {"--workload nope", "nope", "--workload mlp_b128,nope", "--device nowhere", "--iters 0",
                         "--bogus"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "%s bench --no-pytorch %s 2>&1", cli, bad[i]);
        int rc = tu_run_cmd(cmd, &out);
        ck_assert_msg(rc == 2, "bench %s: exit %d, want 2: %s", bad[i], rc, out);
        free(out);
    }
    /* --profile: each graph's table of device time by op (stderr) */
    snprintf(cmd, sizeof cmd, "%s bench --quick --no-pytorch --profile --workload mlp_b128 2>&1", cli);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    ck_assert_msg(strstr(out, "synapse profile: graph of ") && strstr(out, "\n  linear "), "no profile table:\n%s", out);
    free(out);
    /* --device all: the CPU, and the GPU where there is one, else a line that says why not; --threads and
     * --warmup taken; a value out of range is a usage error */
    out = tu_run_expect(0, "%s bench --quick --no-pytorch --device all --threads 1 --warmup 0 --workload add_16m 2>&1",
                        cli);
    ck_assert_msg(strstr(out, "\nadd_16m         cpu     ok"), "no CPU row:\n%s", out);
    if (syn_backend_built(SYN_DEVICE_CUDA) && syn_device_count(SYN_DEVICE_CUDA) > 0)
        ck_assert_msg(strstr(out, "\nadd_16m         cuda:0  ok"), "no GPU row:\n%s", out);
    else
        ck_assert_msg(strstr(out, "synapse bench: --device all: no GPU here ("), "no reason given:\n%s", out);
    ck_assert_msg(strstr(out, "2 logical CPUs, 1 threads") || strstr(out, ", 1 threads)"), "threads:\n%s", out);
    free(out);
    static const char *const range[] = {"--threads 0", "--warmup -1", "--iters x"};
    for (size_t i = 0; i < sizeof range / sizeof *range; i++) free(tu_run_expect(2, "%s bench %s 2>&1", cli, range[i]));
}
END_TEST

/* The twins' order: by default one bench.py run for all workloads after
 * Synapse's; with --paired one run per workload right after its row. A stand-in
 * "Python" (SYN_BENCH_PYTHON) logs each run's workloads and writes a result
 * line per workload at 2 ms, which must reach the table and the JSON. */
START_TEST(test_cli_paired) {
    char cli[4096], cmd[8192], dir[] = "/tmp/test_bench_py_XXXXXX";
    if (!tu_cli_path(cli, sizeof cli, "test_bench")) return;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char fake[128], log[128], json[128];
    snprintf(fake, sizeof fake, "%s/python", dir);
    snprintf(log, sizeof log, "%s/runs", dir);
    snprintf(json, sizeof json, "%s/out.json", dir);
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\n"
               "[ \"$1\" = -c ] && exit 0\n" /* import torch */
               "shift\n"
               "while [ $# -gt 0 ]; do case $1 in --device) d=$2;; --workload) w=$2;; --json-out) o=$2;; esac; shift; done\n"
               "echo \"$w\" >> %s\n"
               "for x in $(echo $w | tr , ' '); do\n"
               "  echo \"{\\\"workload\\\": \\\"$x\\\", \\\"device\\\": \\\"$d\\\", \\\"status\\\": "
               "\\\"ok\\\", \\\"median_ms\\\": 2.0}\" >> $o\n"
               "done\n",
            log);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(fake, 0755), 0);
    for (int paired = 0; paired < 2; paired++) {
        unlink(log);
        char *out;
        snprintf(cmd, sizeof cmd, "SYN_BENCH_PYTHON=%s %s bench --quick --workload add_16m,mlp_b128 --json %s%s 2>&1", fake,
                 cli, json, paired ? " --paired" : "");
        int rc = tu_run_cmd(cmd, &out);
        ck_assert_msg(rc == 0, "bench: exit %d:\n%s", rc, out);
        ck_assert_msg(strstr(out, "PyTorch column n/a") == NULL, "no PyTorch column:\n%s", out);
        /* each row's PyTorch ms is the stand-in's 2.000 */
        const char *table = strstr(out, "\nworkload"), *second = table ? strstr(table + 1, "\nworkload") : NULL;
        ck_assert_ptr_nonnull(second);
        for (const char *w = "add_16m"; w; w = strcmp(w, "add_16m") == 0 ? "mlp_b128" : NULL) {
            const char *row = strstr(second, w), *end = row ? strchr(row, '\n') : NULL;
            ck_assert_msg(row && end, "%s: no row:\n%s", w, out);
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)(end - row), row);
            ck_assert_msg(strstr(line, " 2.000 "), "%s: the stand-in's 2 ms is not in the row: %s", w, line);
        }
        free(out);
        snprintf(cmd, sizeof cmd, "cat %s", log);
        ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
        ck_assert_msg(strcmp(out, paired ? "add_16m\nmlp_b128\n" : "add_16m,mlp_b128\n") == 0, "%s runs: %s",
                      paired ? "paired" : "batched", out);
        free(out);
        /* the JSON: Synapse's two lines and the stand-in's two */
        snprintf(cmd, sizeof cmd, "grep -c '\"median_ms\": 2.0}' %s", json);
        ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
        ck_assert_int_eq(atoi(out), 2);
        free(out);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* OpenBLAS's kernel choice: the advice is for pre-AVX kernels on an AVX2 CPU
 * only, and never where OPENBLAS_CORETYPE is set; the command restarts
 * itself with it, so that it never runs on the slow kernels (OpenBLAS picks
 * per process, and on some CPUs differently from one process to the next).
 * Where the environment sets OPENBLAS_CORETYPE there is nothing to restart. */
START_TEST(test_blas_coretype) {
    const char *chosen = NULL, *advice = syn_cpu_blas_coretype_advice(&chosen);
    ck_assert_ptr_nonnull(chosen);
    if (advice) {
        ck_assert_msg(strcmp(advice, "SkylakeX") == 0 || strcmp(advice, "Haswell") == 0, "advice %s", advice);
        ck_assert_msg(strstr("Prescott Core2 Penryn Dunnington Nehalem Atom", chosen), "advice with %s", chosen);
    }
    char cli[4096], cmd[8192];
    if (!tu_cli_path(cli, sizeof cli, "test_bench")) return;
    char *out;
    for (int run = 0; run < 4; run++) {
        /* the environment as it is: machines that set OPENBLAS_CORETYPE keep it (ANCHORS.md) */
        snprintf(cmd, sizeof cmd, "%s info 2>&1", cli);
        ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
        ck_assert_msg(strstr(out, "cpu: ") && !strstr(out, "runs GEMMs several times faster"),
                      "synapse info ran on kernels it could have replaced:\n%s", out);
        free(out);
    }
    ck_assert_int_eq(setenv("OPENBLAS_CORETYPE", chosen, 1), 0);
    ck_assert_ptr_null(syn_cpu_blas_coretype_advice(NULL));
}
END_TEST

START_TEST(test_cli_quick) {
    char cli[4096], cmd[8192], json[] = "/tmp/test_bench_XXXXXX", md[64];
    if (!tu_cli_path(cli, sizeof cli, "test_bench")) return;
    int fd = mkstemp(json);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(md, sizeof md, "%s.md", json);
    char *out;
    snprintf(cmd, sizeof cmd, "%s bench --quick --device cpu --no-pytorch --json %s --markdown %s 2>&1", cli, json, md);
    int rc = tu_run_cmd(cmd, &out);
    ck_assert_msg(rc == 0, "bench --quick: exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "PyTorch column n/a: --no-pytorch") != NULL, "no n/a line:\n%s", out);
    free(out);
    FILE *f = fopen(json, "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    bool seen[64] = {false};
    while (getline(&line, &cap, f) > 0) {
        json_t *o = check_schema(line, "synapse");
        const char *w = json_string_value(json_object_get(o, "workload"));
        ck_assert_str_eq(json_string_value(json_object_get(o, "device")), "cpu");
        ck_assert_msg(strcmp(json_string_value(json_object_get(o, "status")), gpu_only(w) ? "skipped" : "ok") == 0,
                      "%s", line);
        for (int i = 0; i < syn_bench_count() && i < 64; i++)
            if (strcmp(syn_bench_get(i)->name, w) == 0) seen[i] = true;
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    ck_assert_int_eq(n, syn_bench_count());
    for (int i = 0; i < syn_bench_count() && i < 64; i++) ck_assert_msg(seen[i], "%s missing", syn_bench_get(i)->name);
    /* the Markdown table: a header and a row per workload */
    f = fopen(md, "r");
    ck_assert_ptr_nonnull(f);
    char buf[65536];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "| workload | device |"));
    for (int i = 0; i < syn_bench_count(); i++) {
        char row[64];
        snprintf(row, sizeof row, "| %s | cpu |", syn_bench_get(i)->name);
        ck_assert_msg(strstr(buf, row) != NULL, "Markdown lacks %s", row);
    }
    unlink(json);
    unlink(md);
}
END_TEST

/* The PyTorch twin writes the same schema (impl "pytorch"), when a Python
 * with torch is here ($VENV, the source tree's .venv, python3); else a
 * visible SKIPPED line. */
START_TEST(test_pytorch_schema) {
    char src[4096], py[4200], script[4200], cmd[12000], json[] = "/tmp/test_bench_pt_XXXXXX";
    tu_source_path(".", src, sizeof src);
    snprintf(script, sizeof script, "%s/benchmarks/pytorch/bench.py", src);
    const char *venv = getenv("VENV");
    const char *cands[3] = {NULL, NULL, "python3"};
    char c0[4200], c1[4200];
    if (venv && *venv) snprintf(c0, sizeof c0, "%s/bin/python", venv), cands[0] = c0;
    snprintf(c1, sizeof c1, "%s/.venv/bin/python", src), cands[1] = c1;
    py[0] = '\0';
    for (int i = 0; i < 3 && !py[0]; i++) {
        if (!cands[i]) continue;
        snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) snprintf(py, sizeof py, "%s", cands[i]);
    }
    if (!py[0]) {
        fprintf(stderr, "test_bench: SKIPPED the PyTorch schema check: no Python with torch\n");
        return;
    }
    int fd = mkstemp(json);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s %s --quick --threads 1 --workload sgemm_1024,mlp_b128 --json-out %s 2>&1", py, script,
             json);
    char *out;
    int rc = tu_run_cmd(cmd, &out);
    ck_assert_msg(rc == 0, "bench.py: exit %d:\n%s", rc, out);
    free(out);
    FILE *f = fopen(json, "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = check_schema(line, "pytorch");
        ck_assert_msg(strcmp(json_string_value(json_object_get(o, "status")), "ok") == 0, "%s", line);
        ck_assert(json_is_string(json_object_get(json_object_get(o, "machine"), "torch")));
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    unlink(json);
    ck_assert_int_eq(n, 2);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("bench");
    TCase *h = tcase_create("harness");
    tcase_add_test(h, test_failed_verification_not_timed);
    tcase_add_test(h, test_verify_error_not_timed);
    tcase_add_test(h, test_passing_workload_timed);
    tcase_add_test(h, test_step_error_reported);
    tcase_add_test(h, test_json_schema);
    tcase_add_test(h, test_registry);
    suite_add_tcase(s, h);
    TCase *b = tcase_create("builtins");
    tcase_set_timeout(b, 120);
    tcase_add_loop_test(b, test_builtin_quick, 0, syn_bench_count());
    suite_add_tcase(s, b);
    TCase *c = tcase_create("cli");
    /* every workload again through the CLI, and PyTorch's twin: left to the
     * Release pass (the builtins above already run under the sanitizers) */
    tcase_set_tags(c, "slow");
    tcase_set_timeout(c, 300);
    tcase_add_test(c, test_cli);
    tcase_add_test(c, test_cli_quick);
    tcase_add_test(c, test_blas_coretype);
    tcase_add_test(c, test_cli_paired);
    tcase_add_test(c, test_pytorch_schema);
    suite_add_tcase(s, c);
    return s;
}

int main(void) { return tu_run(suite()); }
