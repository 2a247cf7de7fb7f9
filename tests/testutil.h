/* Shared helpers for the Check suites: seeds, random data, comparisons. */
#ifndef SYN_TESTUTIL_H
#define SYN_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include "synapse/synapse.h"

/* The run's seed: $SYN_TEST_SEED or a fresh one; printed once per process so
 * that a failure can be reproduced. */
uint64_t tu_seed(void);
/* Deterministic generator (splitmix64) seeded from tu_seed() ^ salt. */
typedef struct { uint64_t s; } tu_rng;
tu_rng tu_rng_make(uint64_t salt);
uint64_t tu_next(tu_rng *r);
float tu_uniform(tu_rng *r, float lo, float hi);
void tu_fill(tu_rng *r, float *x, int64_t n, float lo, float hi);

/* Fails the test with the library's message unless s is SYN_OK. */
#define TU_OK(expr)                                                                                  \
    do {                                                                                             \
        syn_status tu_s_ = (expr);                                                                   \
        ck_assert_msg(tu_s_ == SYN_OK, "%s -> %s (seed %llu)", #expr,                                \
                      syn_last_error(), (unsigned long long)tu_seed());                             \
    } while (0)

/* Max |a-b| / (atol + rtol*|b|) over n values: <= 1 means close. NaN counts as far. */
double tu_close_ratio(const float *a, const double *ref, int64_t n, double atol, double rtol);
#define TU_CLOSE(a, ref, n, atol, rtol)                                                              \
    ck_assert_msg(tu_close_ratio((a), (ref), (n), (atol), (rtol)) <= 1.0,                             \
                  "values differ from the reference (ratio %g, seed %llu)",                           \
                  tu_close_ratio((a), (ref), (n), (atol), (rtol)), (unsigned long long)tu_seed())

/* ||got - want|| / max(||want||, 1e-30) over n values (backend comparisons);
 * NaN or an infinity mismatch is infinite, so it never passes. */
double tu_rel_err(const float *got, const float *want, int64_t n);
/* The same relative to the largest value: max|got - want| / max(max|want|, 1e-6). */
double tu_max_rel_err(const float *got, const float *want, int64_t n);
#define TU_REL_CLOSE(what, got, want, n, tol)                                                                  \
    do {                                                                                                       \
        double tu_e_ = tu_rel_err((got), (want), (n));                                                         \
        ck_assert_msg(tu_e_ <= (tol), "%s: cuda differs from cpu by %g (relative by norm, limit %g, seed %llu)", \
                      (what), tu_e_, (double)(tol), (unsigned long long)tu_seed());                            \
    } while (0)

/* A small classification set (free with syn_dataset_free): n rows of 5
 * features U(-1, 1), 3 classes by thresholds on x0 + x1/2 - x3. */
syn_dataset *tu_dataset_3class(int64_t n, uint64_t salt);

/* Small networks whose f32 input x is differentiable (syn_graph_input_grad),
 * built in g before compiling: kind 0 a CNN, x (2,1,6,6): conv 3x3 pad 1 (3
 * channels), batch norm, tanh, 2x2 average pool, flatten, linear 4,
 * cross-entropy; kind 1 a 2-layer LSTM (hidden 4), x (2,5,3), with its
 * initial state an input asked for too, then linear 1 and MSE. Smooth all
 * through: central differences need no kinks. ask false: the same net
 * without asking for the input gradients. tu_igrad_feed feeds x and
 * fixed labels, targets and state. */
typedef struct {
    syn_node *x, *state, *aux, *loss;
    syn_shape xs;
    int kind;
} tu_igrad;
void tu_igrad_build(syn_graph *g, int kind, bool ask, tu_igrad *n);
void tu_igrad_feed(syn_graph *g, const tu_igrad *n, const float *x);

/* Runs a suite, prints Check's summary; returns the process exit code. */
int tu_run(Suite *s);
/* The same without forking (CK_NOFORK): for suites that use CUDA, which must
 * not be initialised in a parent that then forks. One failure ends its test
 * but not the process. */
int tu_run_nofork(Suite *s);

/* The synapse binary next to the test (ctest runs in the build dir; else
 * $SYN_BINARY_DIR), or NULL with a visible SKIPPED line naming `who`. */
const char *tu_cli_path(char *buf, size_t size, const char *who);
/* Runs a shell command; its stdout (and stderr if the command merges it) in
 * *out (malloc'd, NUL-terminated); returns the exit status (-1: killed). */
int tu_run_cmd(const char *cmd, char **out);
/* The last line of text (trailing newlines cut off in place). */
const char *tu_last_line(char *text);
/* Runs the command printf(fmt, ...) and asserts it exits with `want`;
 * returns its output (malloc'd). */
char *tu_run_expect(int want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A command line that must fail: `synapse ARGS` exits with rc and its
 * output (stdout and stderr) holds `says`. */
typedef struct {
    int rc;
    const char *args, *says;
} tu_cli_case;
/* Runs bin + " " + prefix + " " + each case's args; '@' in args and says
 * stands for `at` (a path the test made; NULL: no substitution). */
void tu_cli_cases(const char *bin, const char *prefix, const tu_cli_case *cases, size_t n, const char *at);
/* The number after "key": in a JSON line (asserts the key is there). */
double tu_json_number(const char *json, const char *key);
/* n Fashion-MNIST-shaped 28x28 images and labels: class c is a bright 6x6
 * block at a place of its own, over noise. */
void tu_class_images(uint8_t *img, uint8_t *lab, int n, tu_rng *r);
/* A Fashion-MNIST-shaped set in tu_dir (train-images-idx3-ubyte ... and
 * t10k-*, the test files gzip'd if gz): ntr and nte tu_class_images drawn
 * from seed into tr, ltr, te, lte. */
void tu_write_fmnist_like(uint8_t *tr, uint8_t *ltr, int ntr, uint8_t *te, uint8_t *lte, int nte, uint64_t seed,
                          bool gz);
/* An 8-bit grey or RGB (interleaved) PNG of w x h pixels, through libpng. */
void tu_write_png(const char *path, const uint8_t *pix, int w, int h, bool rgb);
/* An IDX file of n 28x28 images (ndim 3) or n labels (ndim 1), plain or gzip'd. */
void tu_write_idx(const char *path, const uint8_t *data, int n, int ndim, bool gz);

/* A fresh temporary folder per test (a checked fixture: tcase_add_checked_fixture(tc,
 * tu_dir_setup, tu_dir_teardown)): its path in tu_dir; teardown removes it and
 * everything in it. tu_path gives tu_dir/name from a ring of 16 buffers (a test
 * holds several paths at once). */
extern char tu_dir[64];
void tu_dir_setup(void);
void tu_dir_teardown(void);
const char *tu_path(const char *name);

/* A path under the source tree ($SYN_SOURCE_DIR, else "."). */
const char *tu_source_path(const char *rel, char *buf, size_t size);

/* Profiles a 784-32-16-10 ReLU MLP for four SGD steps on dev and checks the
 * report: three counted steps, linear 3 calls forward and backward per step
 * with positive times, relu 2, a total; off again, the report is an error. */
void tu_check_profile(syn_device dev);

#endif
