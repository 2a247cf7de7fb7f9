/* Shared by the benchmark harness (harness.c) and its workloads (ops.c,
 * train.c): the registries, fixed-seed data, and the device-memory bridge. */
#ifndef SYN_BENCH_INTERNAL_H
#define SYN_BENCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "synapse/synapse.h"
#include "synapse/bench.h"

/* The registries, in listing order. */
extern const syn_bench_workload syn__bench_ops[];
extern const int syn__bench_n_ops;
extern const syn_bench_workload syn__bench_train[];
extern const int syn__bench_n_train;

/* xorshift64*: the same data on every run and device. */
typedef struct {
    uint64_t s;
} syn__brng;
static inline float syn__brng_f(syn__brng *r) { /* [-1, 1) */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (float)((r->s * 2685821657736338717ull) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}
static inline void syn__brng_fill(syn__brng *r, float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = syn__brng_f(r);
}
static inline int32_t syn__brng_int(syn__brng *r, int32_t n) {
    return (int32_t)((syn__brng_f(r) + 1.0f) * 0.5f * (float)n) % n;
}

/* ms on CLOCK_MONOTONIC */
double syn__bench_now_ms(void);

/* GPU allocator figures (bytes in use now, the peak so far); false on the CPU
 * or when the library has no CUDA backend. */
bool syn__bench_device_mem(syn_device d, size_t *in_use, size_t *peak);

#endif
