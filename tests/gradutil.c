/* The harness of the op suites that check forward values against references
 * and backward rules by central finite differences (gradutil.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gradutil.h"
#include "core/internal.h"

/* A test's host arrays, all freed by env_free. */
static void *scratch[64];
static int n_scratch;

void *alloc(size_t bytes) {
    ck_assert_int_lt(n_scratch, 64);
    void *p = malloc(bytes);
    ck_assert_ptr_nonnull(p);
    return scratch[n_scratch++] = p;
}

env env_make(void) {
    env e;
    TU_OK(syn_params_create(syn_cpu(), 1, &e.ps));
    TU_OK(syn_graph_create(e.ps, &e.g));
    return e;
}

void env_free(env *e) {
    syn_graph_free(e->g);
    syn_params_free(e->ps);
    while (n_scratch) free(scratch[--n_scratch]);
}

float *rand_array(tu_rng *r, int64_t n, float lo, float hi) {
    float *x = alloc((size_t)n * sizeof *x);
    tu_fill(r, x, n, lo, hi);
    return x;
}

/* Distinct values 0.05 apart in random order: a +-1e-2 step never changes
 * which element of a window is the maximum. */
float *distinct_array(tu_rng *r, int64_t n) {
    float *x = alloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = 0.05f * (float)(i - n / 2);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tu_next(r) % (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    return x;
}

void write_param(env *e, const char *name, const float *v) {
    syn_tensor *t;
    TU_OK(syn_params_find(e->ps, name, &t, NULL));
    TU_OK(syn_tensor_write(t, v, syn_tensor_bytes(t)));
}

/* A parameter `name` holding v (or its initialiser's values if v is NULL). */
syn_node *param_with(env *e, const char *name, syn_shape s, const float *v) {
    syn_node *p = syn_param(e->g, name, s, NULL);
    ck_assert_msg(p != NULL, "param %s: %s", name, syn_last_error());
    if (v) write_param(e, name, v);
    return p;
}

void read_param(env *e, const char *name, float *v, bool grad) {
    syn_tensor *t, *gt;
    TU_OK(syn_params_find(e->ps, name, &t, &gt));
    TU_OK(syn_tensor_read(grad ? gt : t, v, syn_tensor_bytes(t)));
}

/* NaN into every planned value, gradient and aux buffer. */
void poison(syn_graph *g) {
    for (int i = 0; i < g->n; i++) {
        syn_node *v = g->nodes[i];
        if (v->op == SYN_OP_INPUT || v->op == SYN_OP_PARAM) continue;
        size_t bytes = (size_t)syn_shape_numel(&v->cap_shape) * syn_dtype_size(v->dtype);
        if (v->value) memset(v->value, 0xff, bytes);
        if (v->grad) memset(v->grad, 0xff, bytes);
        if (v->aux) memset(v->aux, 0xff, v->aux_bytes);
    }
}

/* The objective sum(y * R) in double from the kept output y, or the loss
 * node's value when y is NULL (nothing but the loss kept). */

double objective_at(objective *o) {
    syn_graph_set_seed(o->g, o->seed);
    TU_OK(syn_graph_forward(o->g));
    if (!o->y) {
        float l;
        TU_OK(syn_graph_read_scalar(o->g, o->loss, &l));
        return l;
    }
    TU_OK(syn_graph_read(o->g, o->y, o->buf, (size_t)o->n * sizeof(float)));
    double s = 0;
    for (int64_t i = 0; i < o->n; i++) s += (double)o->buf[i] * o->r[i];
    return s;
}

/* loss = sum(y * R) with a random R; keeps y (unless keep is false),
 * compiles, poisons, feeds R. */
objective finish(env *e, syn_node *y, tu_rng *r, bool keep) {
    ck_assert_msg(y != NULL, "build failed: %s", syn_last_error());
    syn_shape ys = syn_node_shape(y);
    syn_node *rn = syn_input(e->g, "R", SYN_F32, ys);
    syn_node *loss = syn_sum(e->g, syn_mul(e->g, y, rn), SYN_ALL_AXES, false);
    ck_assert_msg(loss != NULL, "%s", syn_last_error());
    if (keep) TU_OK(syn_graph_keep(e->g, y));
    TU_OK(syn_graph_compile(e->g, syn_cpu(), NULL));
    poison(e->g);
    objective o = {e->g, keep ? y : NULL, loss, rand_array(r, syn_shape_numel(&ys), -1, 1), NULL,
                   syn_shape_numel(&ys), 77};
    o.buf = alloc((size_t)o.n * sizeof(float));
    TU_OK(syn_graph_feed(e->g, rn, o.r, ys));
    return o;
}

/* Forward (leaving y in o->buf), then one backward from zeroed gradients. */
void forward_backward(env *e, objective *o) {
    objective_at(o);
    TU_OK(syn_params_zero_grad(e->ps));
    TU_OK(syn_graph_backward(e->g, o->loss));
}


/* The central difference of the objective in element i of v (bytes long,
 * the value tensor val) with step h; restores v[i]. */
static double central_difference(objective *o, syn_tensor *val, float *v, size_t bytes, int64_t i, float h) {
    float orig = v[i], up = orig + h, down = orig - h;
    v[i] = up;
    TU_OK(syn_tensor_write(val, v, bytes));
    double lp = objective_at(o);
    v[i] = down;
    TU_OK(syn_tensor_write(val, v, bytes));
    double lm = objective_at(o);
    v[i] = orig;
    TU_OK(syn_tensor_write(val, v, bytes));
    return (lp - lm) / ((double)up - down);
}

static bool fd_close(double a, double num) { return fabs(a - num) <= 5e-3 + 5e-3 * fabs(num); }

/* The gradient of parameter `name` (from the last backward) against central
 * differences of the objective: |a - n| <= 5e-3 + 5e-3 |n|. Where the step
 * EPS is too coarse for the curvature (long recurrences), the estimate is
 * refined by Richardson extrapolation from steps EPS and EPS/2, which
 * cancels the step's second-order error. */
void fd_check(env *e, objective *o, const char *name, const char *what, tu_rng *r) {
    syn_tensor *val, *grd;
    TU_OK(syn_params_find(e->ps, name, &val, &grd));
    int64_t n = syn_tensor_numel(val);
    size_t bytes = syn_tensor_bytes(val);
    float *v = alloc(bytes), *ana = alloc(bytes);
    TU_OK(syn_tensor_read(val, v, bytes));
    TU_OK(syn_tensor_read(grd, ana, bytes));
    int m = n <= FULL_MAX ? (int)n : SAMPLES;
    for (int s = 0; s < m; s++) {
        int64_t i = n <= FULL_MAX ? s : (int64_t)(tu_next(r) % (uint64_t)n);
        double a = ana[i], num = central_difference(o, val, v, bytes, i, EPS);
        if (!fd_close(a, num)) {
            double half = central_difference(o, val, v, bytes, i, EPS / 2);
            num = (4 * half - num) / 3;
        }
        ck_assert_msg(fd_close(a, num), "%s: d/d %s[%lld]: backward %g, finite difference %g (seed %llu)", what, name,
                      (long long)i, a, num, (unsigned long long)tu_seed());
    }
}

void assert_shape(const char *what, syn_shape got, syn_shape want) {
    char a[128], b[128];
    ck_assert_msg(syn_shape_equal(&got, &want), "%s: shape %s, expected %s", what, syn_shape_str(&got, a, sizeof a),
                  syn_shape_str(&want, b, sizeof b));
}
