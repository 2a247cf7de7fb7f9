#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t tu_seed(void) {
    static uint64_t seed;
    static int init;
    if (!init) {
        const char *e = getenv("SYN_TEST_SEED");
        seed = e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
        init = 1;
        fprintf(stderr, "test seed: %llu (set SYN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    }
    return seed;
}

tu_rng tu_rng_make(uint64_t salt) {
    tu_rng r = {tu_seed() ^ (salt * 0x9E3779B97F4A7C15ull)};
    return r;
}

uint64_t tu_next(tu_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float tu_uniform(tu_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((tu_next(r) >> 40) * (1.0 / 16777216.0));
}

void tu_fill(tu_rng *r, float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = tu_uniform(r, lo, hi);
}

double tu_close_ratio(const float *a, const double *ref, int64_t n, double atol, double rtol) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(ref[i])) return INFINITY;
        double r = fabs((double)a[i] - ref[i]) / (atol + rtol * fabs(ref[i]));
        if (r > worst) worst = r;
    }
    return worst;
}

int tu_run(Suite *s) {
    (void)tu_seed();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int tu_run_nofork(Suite *s) {
    (void)tu_seed();
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *tu_source_path(const char *rel, char *buf, size_t size) {
    const char *root = getenv("SYN_SOURCE_DIR");
    snprintf(buf, size, "%s/%s", root ? root : ".", rel);
    return buf;
}

double tu_rel_err(const float *got, const float *want, int64_t n) {
    double diff = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i]) || isinf(got[i]) != isinf(want[i])) return INFINITY;
        if (isinf(want[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        double d = (double)got[i] - want[i];
        diff += d * d;
        mag += (double)want[i] * want[i];
    }
    if (diff == 0) return 0;
    return sqrt(diff) / sqrt(mag > 1e-60 ? mag : 1e-60);
}
