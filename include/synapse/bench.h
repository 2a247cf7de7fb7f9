/* Benchmarks: a registry of workloads (op level: SGEMM, ResNet-18 convolutions,
 * elementwise, reduction; training steps: MLP, Fashion-MNIST CNN, ResNet-18,
 * DCGAN-64, char-LSTM) and the harness that runs one on a device: build with a
 * fixed seed, VERIFY (against a CPU reference; a workload that fails is
 * reported and never timed), warm up, time `iters` steps, report the median,
 * spread, items/s and peak memory, and the machine the figures come from.
 *
 * Timing: syn_device_timer around each step: on a GPU, CUDA events recorded
 * on the backend's stream before and after the step's work (the stream is
 * idle when the step starts, as the previous stop waited for it), on the CPU
 * CLOCK_MONOTONIC. The PyTorch twins time the same way.
 *
 * `synapse bench` (tools/cmd_bench.c) drives this and joins the PyTorch twins
 * (benchmarks/pytorch/bench.py); syn_bench_result_json writes the JSON line
 * whose schema both share (documented at syn_bench_result_json). */
#ifndef SYNAPSE_BENCH_H
#define SYNAPSE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "device.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SYN_BENCH_OK = 0,          /* verified and timed */
    SYN_BENCH_VERIFY_FAILED,   /* verification failed: not timed */
    SYN_BENCH_ERROR,           /* a call failed (build, step, out of memory): not timed or timing abandoned */
    SYN_BENCH_SKIPPED          /* not run on this device (see note) */
} syn_bench_status;

/* "ok" | "verify_failed" | "error" | "skipped" */
SYN_API const char *syn_bench_status_name(syn_bench_status s);

typedef struct {
    int warmup;   /* < 0: the workload's default for the device */
    int iters;    /* <= 0: the workload's default for the device */
    bool quick;   /* small sizes and few steps everywhere: a harness check, not a measurement */
} syn_bench_config;

/* { -1, 0, false }: every default. */
SYN_API syn_bench_config syn_bench_config_defaults(void);

/* One workload on one device. Times in ms; NaN where not timed. */
typedef struct {
    char workload[32];
    char kind[8];            /* "op" | "train" */
    char device[16];         /* "cpu", "cuda:0" */
    syn_bench_status status;
    char config[160];        /* what ran: shapes, batch, optimizer */
    bool reduced;            /* smaller than the size (on the CPU, or --quick): see note */
    char note[256];          /* why reduced; the error when status is error/skipped */
    char verify[256];        /* what verification checked and the error it saw */
    int64_t batch;           /* samples per step (0 for op-level workloads) */
    int warmup, iters;
    double median_ms, min_ms, p90_ms, max_ms, mean_ms;
    double items_per_step;   /* samples, FLOPs or bytes moved per step */
    char item[12];           /* "samples" | "FLOP" | "bytes" */
    double items_per_s;
    double rate;             /* items_per_s in rate_unit: GFLOP/s, GB/s or samples/s */
    char rate_unit[16];
    double ceiling;          /* the same unit's ceiling measured in this run (raw cblas_sgemm,
                                a device copy), or NaN */
    char ceiling_what[48];   /* what the ceiling is */
    double final_loss;       /* training workloads after timing (NaN for ops) */
    int64_t host_peak_bytes; /* peak resident set during the workload (VmHWM after a reset, else ru_maxrss) */
    int64_t device_peak_bytes; /* GPU: the caching allocator's bytes in use at the workload's peak; -1 on the CPU */
    double others_cpu_pct;   /* CPU time other processes used during the workload, in % of the machine
                                (/proc/stat): a figure taken beside a busy neighbour is suspect; NaN unknown */
} syn_bench_result;

/* A workload: callbacks the harness calls in order setup, verify, step
 * (warm-up, then timed), finish, teardown. Public so that a program (or a
 * test) can run its own through syn_bench_run_workload. */
typedef struct syn_bench_workload syn_bench_workload;
struct syn_bench_workload {
    const char *name;  /* [a-z0-9_]+ */
    const char *kind;  /* "op" | "train" */
    const char *desc;  /* one line */
    /* Builds the state on dev (fixed seed) and fills res->config, batch,
     * items_per_step, item, rate_unit, reduced, note. */
    syn_status (*setup)(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg, void **state,
                        syn_bench_result *res);
    /* Checks results (against the CPU or a naive loop); *ok = false with the
     * reason in res->verify makes the run verify_failed. */
    syn_status (*verify)(void *state, syn_device dev, const syn_bench_config *cfg, syn_bench_result *res, bool *ok);
    syn_status (*step)(void *state);                          /* the timed unit */
    syn_status (*finish)(void *state, syn_bench_result *res); /* may be NULL: final loss, ceiling */
    void (*teardown)(void *state);                            /* may be NULL */
    int warmup_cpu, iters_cpu, warmup_gpu, iters_gpu;         /* defaults */
    const void *arg;                                          /* the workload's own constants */
};

/* The built-in registry. borrowed: static. */
SYN_API int syn_bench_count(void);
SYN_API const syn_bench_workload *syn_bench_get(int i);
/* NULL if no workload has that name. */
SYN_API const syn_bench_workload *syn_bench_find(const char *name);
/* A file of the source tree the workloads and their PyTorch twins need
 * (models/x.cfg, benchmarks/pytorch/bench.py): $SYN_SOURCE_DIR/rel, ./rel,
 * then beside the running executable (../rel, ../../rel). Writes the path
 * into out; false if none is readable. */
SYN_API bool syn_bench_source_file(const char *rel, char *out, size_t size);

/* Runs w on dev and fills *res (always, also on failure: see res->status).
 * Returns SYN_OK when the harness itself ran; a workload's own failure is
 * reported in res->status, not in the return value. */
SYN_API syn_status syn_bench_run_workload(const syn_bench_workload *w, syn_device dev, const syn_bench_config *cfg,
                                          syn_bench_result *res);

/* The machine a result was measured on. */
typedef struct {
    char cpu[256];          /* syn_device_describe(cpu) */
    int cores;              /* online logical CPUs */
    int threads;            /* OpenMP threads Synapse uses */
    char gpu[512];          /* syn_device_describe of the GPU (empty on the CPU) */
    char synapse[16];       /* version */
    char blas[256];         /* openblas_get_config(), or "unknown" */
    int blas_threads;       /* -1 unknown */
    char openblas_coretype[32], openblas_l2_size[32]; /* the environment's values; "" when unset */
    char date[32];          /* UTC, ISO 8601 */
    double loadavg1;        /* 1-minute load average at the time, -1 unknown */
} syn_bench_machine;

/* Fills m for device dev (the GPU field only for a CUDA device). */
SYN_API syn_status syn_bench_machine_get(syn_device dev, syn_bench_machine *m);

/* One JSON object, no newline. owned: free(). The schema (version 1; both
 * implementations write it):
 *   schema "synapse-bench/1", impl "synapse" | "pytorch", workload, kind, device,
 *   status, config, reduced (bool), note, verify, batch, warmup, iters,
 *   median_ms, min_ms, p90_ms, max_ms, mean_ms, spread_pct ((p90 - min) / median * 100),
 *   items_per_step, item, items_per_s, rate, rate_unit, ceiling, ceiling_what,
 *   final_loss, host_peak_bytes, device_peak_bytes (null on the CPU), others_cpu_pct,
 *   machine {cpu, cores, threads, gpu, synapse, blas, blas_threads,
 *            openblas_coretype, openblas_l2_size, date, loadavg1, torch}
 * Numbers that are not finite (not timed) are null; unset strings are null
 * in the machine record. */
SYN_API char *syn_bench_result_json(const syn_bench_result *r, const syn_bench_machine *m);

#ifdef __cplusplus
}
#endif
#endif
