/* The benchmark harness (bench.h): the registry, the run of one workload
 * (setup, verify, warm-up, timed steps, statistics, peak memory), the machine
 * record and the JSON line. */
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "../core/internal.h"
#include "bench_internal.h"

/* OpenBLAS's introspection, weak so another CBLAS still links (then unknown). */
extern char *openblas_get_config(void) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));

const char *syn_bench_status_name(syn_bench_status s) {
    switch (s) {
    case SYN_BENCH_OK: return "ok";
    case SYN_BENCH_VERIFY_FAILED: return "verify_failed";
    case SYN_BENCH_ERROR: return "error";
    case SYN_BENCH_SKIPPED: return "skipped";
    }
    return "unknown";
}

syn_bench_config syn_bench_config_defaults(void) {
    syn_bench_config c = {-1, 0, false};
    return c;
}

double syn__bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- registry ------------------------------------------------------------------ */

int syn_bench_count(void) { return syn__bench_n_ops + syn__bench_n_train; }

const syn_bench_workload *syn_bench_get(int i) {
    if (i < 0 || i >= syn_bench_count()) return NULL;
    return i < syn__bench_n_ops ? &syn__bench_ops[i] : &syn__bench_train[i - syn__bench_n_ops];
}

const syn_bench_workload *syn_bench_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < syn_bench_count(); i++)
        if (strcmp(syn_bench_get(i)->name, name) == 0) return syn_bench_get(i);
    return NULL;
}

bool syn_bench_source_file(const char *rel, char *out, size_t size) {
    if (!rel || !out || size == 0) return false;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    const char *src = getenv("SYN_SOURCE_DIR");
    const char *base[4] = {src && *src ? src : NULL, ".", *exe ? exe : NULL, *exe ? exe : NULL};
    const char *fmt[4] = {"%s/%s", "%s/%s", "%s/../%s", "%s/../../%s"};
    for (int k = 0; k < 4; k++) {
        if (!base[k]) continue;
        if ((size_t)snprintf(out, size, fmt[k], base[k], rel) < size && access(out, R_OK) == 0) return true;
    }
    return false;
}

/* ---- memory ----------------------------------------------------------------------- */

/* Resets the kernel's peak-RSS mark (Linux >= 4.0); false if it cannot.
 * Freed heap goes back to the system first, so that what an earlier workload
 * left in malloc's free lists does not count as this one's peak. */
static bool host_peak_reset(void) {
    malloc_trim(0);
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

/* VmHWM in bytes, or -1. */
static int64_t host_peak_vmhwm(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int64_t kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static int64_t host_peak_rusage(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (int64_t)ru.ru_maxrss * 1024;
}

/* CPU time of the whole machine (busy jiffies from /proc/stat) and of this
 * process, to tell how much of the machine other processes used meanwhile. */
static bool cpu_ticks(long long *machine_busy, long long *self) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return false;
    long long u = 0, n = 0, sy = 0, id = 0, io = 0, irq = 0, sirq = 0, st = 0;
    int got = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &u, &n, &sy, &id, &io, &irq, &sirq, &st);
    fclose(f);
    if (got < 7) return false;
    *machine_busy = u + n + sy + irq + sirq + st;
    f = fopen("/proc/self/stat", "r");
    if (!f) return false;
    char buf[1024];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    long long ut = 0, stt = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &stt) != 2) return false;
    *self = ut + stt;
    return true;
}

/* ---- statistics -------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* t sorted in place. p in [0, 1]: nearest rank. */
static double quantile(const double *t, int n, double p) {
    int k = (int)ceil(p * n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return t[k];
}

static void summarise(double *t, int n, syn_bench_result *r) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += t[i];
    r->median_ms = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    r->min_ms = t[0];
    r->max_ms = t[n - 1];
    r->p90_ms = quantile(t, n, 0.9);
    r->mean_ms = sum / n;
    r->items_per_s = r->items_per_step / (r->median_ms * 1e-3);
    if (strcmp(r->rate_unit, "GFLOP/s") == 0 || strcmp(r->rate_unit, "GB/s") == 0) r->rate = r->items_per_s * 1e-9;
    else r->rate = r->items_per_s;
}

/* ---- one run ------------------------------------------------------------------------ */

static void result_init(syn_bench_result *r, const syn_bench_workload *w, syn_device dev) {
    memset(r, 0, sizeof *r);
    snprintf(r->workload, sizeof r->workload, "%s", w && w->name ? w->name : "?");
    snprintf(r->kind, sizeof r->kind, "%s", w && w->kind ? w->kind : "?");
    syn_device_str(dev, r->device, sizeof r->device);
    r->median_ms = r->min_ms = r->p90_ms = r->max_ms = r->mean_ms = NAN;
    r->items_per_s = r->rate = r->ceiling = r->final_loss = NAN;
    r->items_per_step = NAN;
    r->host_peak_bytes = -1;
    r->device_peak_bytes = -1;
    r->others_cpu_pct = NAN;
}

static void fail_note(syn_bench_result *r, syn_bench_status st, const char *stage, syn_status s) {
    r->status = st;
    const char *e = syn_last_error();
    snprintf(r->note, sizeof r->note, "%s: %s%s%s", stage, syn_status_str(s), e && *e ? ": " : "", e ? e : "");
}

syn_status syn_bench_run_workload(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg_in,
                                  syn_bench_result *res) {
    if (!res) return syn__error(SYN_ERR_ARG, "syn_bench_run_workload: res is NULL");
    result_init(res, w, dev);
    if (!w || !w->setup || !w->verify || !w->step) {
        res->status = SYN_BENCH_ERROR;
        snprintf(res->note, sizeof res->note, "workload without setup/verify/step");
        return syn__error(SYN_ERR_ARG, "syn_bench_run_workload: incomplete workload");
    }
    syn_bench_config cfg = cfg_in ? *cfg_in : syn_bench_config_defaults();
    const bool gpu = dev.type != SYN_DEVICE_CPU;
    res->warmup = cfg.warmup >= 0 ? cfg.warmup : (gpu ? w->warmup_gpu : w->warmup_cpu);
    res->iters = cfg.iters > 0 ? cfg.iters : (gpu ? w->iters_gpu : w->iters_cpu);
    if (cfg.quick) {
        if (cfg.warmup < 0) res->warmup = 1;
        if (cfg.iters <= 0) res->iters = 2;
    }
    if (res->iters < 1) res->iters = 1;

    size_t dev0 = 0, peak0 = 0, dev_now = 0, peak_now = 0, dev_max = 0;
    syn_status s = syn_device_synchronize(dev); /* creates the backend, so its allocator can be read */
    if (s != SYN_OK) {
        fail_note(res, SYN_BENCH_SKIPPED, "device", s);
        return SYN_OK;
    }
    const bool devmem = syn__bench_device_mem(dev, &dev0, &peak0);
    const bool hwm = host_peak_reset();

    long long busy0 = 0, self0 = 0, busy1 = 0, self1 = 0;
    const bool ticks = cpu_ticks(&busy0, &self0);
    const double wall0 = syn__bench_now_ms();

    void *state = NULL;
    syn_clear_error();
    s = w->setup(w, dev, &cfg, &state, res);
    if (s != SYN_OK) {
        fail_note(res, s == SYN_ERR_UNSUPPORTED ? SYN_BENCH_SKIPPED : SYN_BENCH_ERROR, "setup", s);
        if (w->teardown) w->teardown(state);
        return SYN_OK;
    }
    bool ok = false;
    s = w->verify(state, dev, &cfg, res, &ok);
    if (s != SYN_OK) fail_note(res, SYN_BENCH_ERROR, "verify", s);
    else if (!ok) res->status = SYN_BENCH_VERIFY_FAILED; /* never timed */
    double *t = NULL;
    if (res->status == SYN_BENCH_OK) {
        if (!(t = malloc(sizeof *t * (size_t)res->iters))) {
            res->status = SYN_BENCH_ERROR;
            snprintf(res->note, sizeof res->note, "out of host memory for %d timings", res->iters);
        }
    }
    if (res->status == SYN_BENCH_OK) {
        for (int i = 0; i < res->warmup && s == SYN_OK; i++) s = w->step(state);
        if (s == SYN_OK) s = syn_device_synchronize(dev);
        /* CUDA events on the GPU (the time the stream took from mark to
         * mark, the step queued after an idle stream), the clock on the CPU */
        syn_device_timer *clock = NULL;
        if (s == SYN_OK) s = syn_device_timer_create(dev, &clock);
        for (int i = 0; i < res->iters && s == SYN_OK; i++) {
            s = syn_device_timer_start(clock);
            if (s == SYN_OK) s = w->step(state);
            if (s == SYN_OK) s = syn_device_timer_stop(clock, &t[i]);
            if (devmem && syn__bench_device_mem(dev, &dev_now, &peak_now) && dev_now > dev_max) dev_max = dev_now;
        }
        syn_device_timer_free(clock);
        if (s != SYN_OK) fail_note(res, SYN_BENCH_ERROR, "step", s);
        else summarise(t, res->iters, res);
        if (s == SYN_OK && w->finish) {
            s = w->finish(state, res);
            if (s != SYN_OK) fail_note(res, SYN_BENCH_ERROR, "after timing", s);
        }
    }
    free(t);
    if (devmem && syn__bench_device_mem(dev, &dev_now, &peak_now)) {
        if (dev_now > dev_max) dev_max = dev_now;
        /* exact when this workload raised the process's peak, else the
         * largest in-use figure sampled after each step */
        size_t top = peak_now > peak0 ? peak_now : dev_max;
        res->device_peak_bytes = top > dev0 ? (int64_t)(top - dev0) : 0;
    }
    res->host_peak_bytes = hwm ? host_peak_vmhwm() : host_peak_rusage();
    const double wall_s = (syn__bench_now_ms() - wall0) * 1e-3;
    const long hz = sysconf(_SC_CLK_TCK), ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ticks && cpu_ticks(&busy1, &self1) && hz > 0 && ncpu > 0 && wall_s > 0.05) {
        double others = (double)((busy1 - busy0) - (self1 - self0)) / (double)hz;
        res->others_cpu_pct = others > 0 ? 100.0 * others / (wall_s * (double)ncpu) : 0.0;
    }
    if (w->teardown) w->teardown(state);
    return SYN_OK;
}

/* ---- the machine ---------------------------------------------------------------------- */

syn_status syn_bench_machine_get(syn_device dev, syn_bench_machine *m) {
    if (!m) return syn__error(SYN_ERR_ARG, "syn_bench_machine_get: m is NULL");
    memset(m, 0, sizeof *m);
    if (syn_device_describe(syn_cpu(), m->cpu, sizeof m->cpu) != SYN_OK) snprintf(m->cpu, sizeof m->cpu, "unknown");
    m->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    m->threads = omp_get_max_threads();
    if (dev.type != SYN_DEVICE_CPU && syn_device_describe(dev, m->gpu, sizeof m->gpu) != SYN_OK) m->gpu[0] = '\0';
    snprintf(m->synapse, sizeof m->synapse, "%s", syn_version());
    const char *bc = openblas_get_config ? openblas_get_config() : NULL;
    snprintf(m->blas, sizeof m->blas, "%s", bc ? bc : "unknown");
    m->blas_threads = openblas_get_num_threads ? openblas_get_num_threads() : -1;
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    snprintf(m->openblas_coretype, sizeof m->openblas_coretype, "%s", ct ? ct : "");
    snprintf(m->openblas_l2_size, sizeof m->openblas_l2_size, "%s", l2 ? l2 : "");
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    double la[1];
    m->loadavg1 = getloadavg(la, 1) == 1 ? la[0] : -1.0;
    return SYN_OK;
}

/* ---- JSON ------------------------------------------------------------------------------- */

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static json_t *str_or_null(const char *s) { return s && *s ? json_string(s) : json_null(); }

char *syn_bench_result_json(const syn_bench_result *r, const syn_bench_machine *m) {
    if (!r) return NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "schema", json_string("synapse-bench/1"));
    json_object_set_new(o, "impl", json_string("synapse"));
    json_object_set_new(o, "workload", json_string(r->workload));
    json_object_set_new(o, "kind", json_string(r->kind));
    json_object_set_new(o, "device", json_string(r->device));
    json_object_set_new(o, "status", json_string(syn_bench_status_name(r->status)));
    json_object_set_new(o, "config", json_string(r->config));
    json_object_set_new(o, "reduced", json_boolean(r->reduced));
    json_object_set_new(o, "note", json_string(r->note));
    json_object_set_new(o, "verify", json_string(r->verify));
    json_object_set_new(o, "batch", json_integer(r->batch));
    json_object_set_new(o, "warmup", json_integer(r->warmup));
    json_object_set_new(o, "iters", json_integer(r->iters));
    json_object_set_new(o, "median_ms", num(r->median_ms));
    json_object_set_new(o, "min_ms", num(r->min_ms));
    json_object_set_new(o, "p90_ms", num(r->p90_ms));
    json_object_set_new(o, "max_ms", num(r->max_ms));
    json_object_set_new(o, "mean_ms", num(r->mean_ms));
    json_object_set_new(o, "spread_pct", num((r->p90_ms - r->min_ms) / r->median_ms * 100.0));
    json_object_set_new(o, "items_per_step", num(r->items_per_step));
    json_object_set_new(o, "item", json_string(r->item));
    json_object_set_new(o, "items_per_s", num(r->items_per_s));
    json_object_set_new(o, "rate", num(r->rate));
    json_object_set_new(o, "rate_unit", json_string(r->rate_unit));
    json_object_set_new(o, "ceiling", num(r->ceiling));
    json_object_set_new(o, "ceiling_what", json_string(r->ceiling_what));
    json_object_set_new(o, "final_loss", num(r->final_loss));
    json_object_set_new(o, "host_peak_bytes", r->host_peak_bytes >= 0 ? json_integer(r->host_peak_bytes) : json_null());
    json_object_set_new(o, "device_peak_bytes",
                        r->device_peak_bytes >= 0 ? json_integer(r->device_peak_bytes) : json_null());
    json_object_set_new(o, "others_cpu_pct", num(r->others_cpu_pct));
    json_t *mm = json_object();
    if (m) {
        json_object_set_new(mm, "cpu", json_string(m->cpu));
        json_object_set_new(mm, "cores", json_integer(m->cores));
        json_object_set_new(mm, "threads", json_integer(m->threads));
        json_object_set_new(mm, "gpu", str_or_null(m->gpu));
        json_object_set_new(mm, "synapse", json_string(m->synapse));
        json_object_set_new(mm, "blas", json_string(m->blas));
        json_object_set_new(mm, "blas_threads", m->blas_threads >= 0 ? json_integer(m->blas_threads) : json_null());
        json_object_set_new(mm, "openblas_coretype", str_or_null(m->openblas_coretype));
        json_object_set_new(mm, "openblas_l2_size", str_or_null(m->openblas_l2_size));
        json_object_set_new(mm, "date", json_string(m->date));
        json_object_set_new(mm, "loadavg1", m->loadavg1 >= 0 ? json_real(m->loadavg1) : json_null());
        json_object_set_new(mm, "torch", json_null());
    }
    json_object_set_new(o, "machine", mm);
    char *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return out;
}
