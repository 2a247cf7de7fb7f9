/* The harness of the CUDA suites (test_cuda*): the device probe with its one
 * visible skip line, the rig that builds a case on one device (parameters from
 * one seed, so both devices start from the same values), models stepped by an
 * optimizer on both, and comparisons of CUDA results with the CPU's, where NaN
 * never passes. */
#ifndef SYN_CUDAUTIL_H
#define SYN_CUDAUTIL_H

#include "testutil.h"

/* Tests registered through these are counted for the skip line. */
extern int cu_n_tests;
#define CU_ADD_TEST(tc, t)                                                                           \
    do {                                                                                             \
        tcase_add_test((tc), t);                                                                     \
        cu_n_tests++;                                                                                \
    } while (0)
#define CU_ADD_LOOP_TEST(tc, t, n)                                                                   \
    do {                                                                                             \
        tcase_add_loop_test((tc), t, 0, (n));                                                        \
        cu_n_tests += (n);                                                                           \
    } while (0)

/* Without the CUDA backend or a device: prints "no CUDA device: N tests
 * skipped" and succeeds. Else prints the device and runs s without forking
 * (CUDA must not be initialised in a parent that forks). Takes s; returns the
 * process exit code. */
int cu_run(Suite *s);

/* Relative error metrics (testutil.h): by norm, or by the largest value. */
typedef double (*cu_metric)(const float *got, const float *want, int64_t n);

/* Fails unless metric(got, want) <= tol: "<what>: cuda differs from cpu by ...". */
void cu_check_close(const char *what, const float *got, const float *want, int64_t n, double tol, cu_metric m);

/* owned: free with free() */
float *cu_fmalloc(int64_t n);
/* A parameter initialised U(lo, hi); fails the test if the build failed. */
syn_node *cu_param(syn_graph *g, const char *name, syn_shape s, float lo, float hi);
/* Parameter i's value or gradient, host copy in a fresh array of *n floats (free()). */
float *cu_read_param(syn_params *p, int i, bool grad, int64_t *n);
/* Every parameter's gradient (grad) or value on CUDA against the CPU:
 * "<what>: gradient of <name>". */
void cu_compare_params(syn_params *gpu, syn_params *cpu, bool grad, const char *what, double tol, cu_metric m);

/* One device's copy of an op case: the op's output y and a loss. */
typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *y, *loss;
    syn_node *extra; /* a term cu_rig_finish adds to the loss (cu_route_extra), or NULL */
} cu_rig;

/* Parameters from seed and an empty graph on dev, for the op's build. */
void cu_rig_open(cu_rig *r, syn_device dev, uint64_t seed);
/* After the op's output y: keeps y; L = sum(y * wgt), wgt ~ U(lo, hi) (a
 * scalar y: L = 1.7 y, so kernels must read dL/dy); with each_operand also
 * + sum(p * wgt<i>) for every parameter p of the op, built after the op so its
 * backward runs first and every gradient the op adds to is nonzero (a kernel
 * that overwrites instead of accumulating fails). Compiles on dev and seeds
 * the graph's dropout stream with seed ^ 0x5eed. */
void cu_rig_finish(cu_rig *r, const char *what, syn_node *y, syn_device dev, uint64_t seed, float lo, float hi,
                   bool each_operand);
void cu_rig_free(cu_rig *r);

/* How an op case reaches its operand parameters. CU_DIRECT: the op reads
 * them (their gradients are the parameters', always added to). CU_FRESH:
 * through v = p * 1, so the op's backward is the first to write v's gradient
 * (a backend may write it instead of adding to zeros: syn__grad_add).
 * CU_SECOND: the same, and cu_route_extra adds sum(v * u) to the loss after
 * the op, so that term writes v's gradient first and the op adds to it. */
enum { CU_DIRECT, CU_FRESH, CU_SECOND, CU_ROUTES };
extern const char *const cu_route_name[CU_ROUTES];
syn_node *cu_route(syn_graph *g, syn_node *p, int route);
/* For CU_SECOND, after the op is built: r->extra += sum(v * u_k), u_k ~ U(-1, 1). */
void cu_route_extra(cu_rig *r, syn_node *v, int k, int route);
/* Zeroed gradients, forward, backward. */
void cu_rig_run(cu_rig *r);
/* y after the last forward, host copy of *n floats (free()). */
float *cu_rig_output(cu_rig *r, int64_t *n);
/* y on CUDA against the CPU: "<what>: forward". */
void cu_rig_compare_output(cu_rig *gpu, cu_rig *cpu, const char *what, double tol, cu_metric m);
/* y and parameter 0's gradient identical bit for bit (dropout masks); returns
 * y of gpu (free()) for the caller's statistics. */
float *cu_rig_same_bits(cu_rig *gpu, cu_rig *cpu, const char *what, int round, int64_t *n);

/* A model stepped by an optimizer: inputs x (batch first) and labels y.
 * cu_model_open creates p (from seed) and g on dev; the test builds x, y and
 * loss; cu_model_finish compiles and adds Adam. */
typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_node *x, *y, *loss;
    syn_optim *opt;
} cu_model;

void cu_model_open(cu_model *m, syn_device dev, uint64_t seed);
void cu_model_finish(cu_model *m, syn_device dev);
void cu_model_free(cu_model *m);

/* Builds a model on dev with parameters from seed and inputs of `batch` rows. */
typedef void (*cu_model_build)(cu_model *m, syn_device dev, uint64_t seed, int64_t batch);

/* The same model (build) on both devices, stepped on random data: inputs in
 * [lo, hi], labels in [0, classes); every step has `batch` rows but the last,
 * which has last_rows (a partial batch). After each step the losses and every
 * parameter agree within tol. */
typedef struct {
    const char *what;
    int steps;
    int64_t batch, last_rows, classes;
    float lo, hi;
    uint64_t salt;
    double tol;
    cu_metric metric;
} cu_steps;
void cu_models_match(cu_model_build build, uint64_t seed, const cu_steps *s);

#endif
