/* The harness of the op suites (test_cnn_ops, test_rnn): parameters holding
 * test data, NaN-poisoned buffers, the objective sum(y * R) with a random R,
 * and central finite differences against the backward pass. Host arrays from
 * alloc() live until env_free. */
#ifndef SYN_GRADUTIL_H
#define SYN_GRADUTIL_H

#include "testutil.h"

typedef struct {
    syn_params *ps;
    syn_graph *g;
} env;

/* The objective sum(y * R) in double from the kept output y, or the loss
 * node's value when y is NULL (nothing but the loss kept). */
typedef struct {
    syn_graph *g;
    syn_node *y, *loss;
    float *r, *buf;
    int64_t n;
    uint64_t seed; /* dropout draws the same mask on every forward */
} objective;

#define EPS 1e-2f
#define FULL_MAX 64 /* operands up to this size are checked at every element */
#define SAMPLES 24  /* else at this many random elements */

void *alloc(size_t bytes);
env env_make(void);
void env_free(env *e);
float *rand_array(tu_rng *r, int64_t n, float lo, float hi);
/* Distinct values 0.05 apart in random order: a +-1e-2 step never changes
 * which element of a window is the maximum. */
float *distinct_array(tu_rng *r, int64_t n);
void write_param(env *e, const char *name, const float *v);
/* A parameter `name` holding v (or its initialiser's values if v is NULL). */
syn_node *param_with(env *e, const char *name, syn_shape s, const float *v);
void read_param(env *e, const char *name, float *v, bool grad);
/* NaN into every planned value, gradient and aux buffer. */
void poison(syn_graph *g);
double objective_at(objective *o);
/* loss = sum(y * R) with a random R; keeps y (unless keep is false),
 * compiles, poisons, feeds R. */
objective finish(env *e, syn_node *y, tu_rng *r, bool keep);
/* Forward (leaving y in o->buf), then one backward from zeroed gradients. */
void forward_backward(env *e, objective *o);
/* The gradient of parameter `name` (from the last backward) against central
 * differences of the objective: |a - n| <= 5e-3 + 5e-3 |n|. */
void fd_check(env *e, objective *o, const char *name, const char *what, tu_rng *r);
void assert_shape(const char *what, syn_shape got, syn_shape want);

#endif
