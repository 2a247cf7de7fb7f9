/* Every op of src/ops.def, forward, on the CPU: against a plain double
 * reference on fresh random inputs with odd sizes and poisoned buffers, plus
 * dropout statistics, bad input at build and run time, and partial batches.
 * Gradients are checked by finite differences in test_ops_grad.c. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gradutil.h"
#include "opcases.h"

/* ---- shapes and indexing ----------------------------------------------- */

static int64_t nel(const syn_shape *s) { return syn_shape_numel(s); }

static void unravel(const syn_shape *s, int64_t i, int64_t *idx) {
    for (int d = s->ndim - 1; d >= 0; d--) {
        idx[d] = i % s->dim[d];
        i /= s->dim[d];
    }
}

/* Offset in x (broadcast against y) of y's multi-index yi. */
static int64_t bcast_index(const syn_shape *x, const syn_shape *y, const int64_t *yi) {
    int64_t o = 0;
    int off = y->ndim - x->ndim;
    for (int d = 0; d < x->ndim; d++) o = o * x->dim[d] + (x->dim[d] == 1 ? 0 : yi[d + off]);
    return o;
}

/* ---- the op cases (opcases.c) ----------------------------------------------- */

static const opc_case *cases[OPC_MAX];
static int n_cases;

/* ---- the reference: plain loops in double ------------------------------- */

static double gelu_ref(double v) { return 0.5 * v * (1.0 + erf(v / sqrt(2.0))); }

/* Output of case c on operands xv; sets *ys. Returns a malloc'd array. */
static double *reference(const opc_case *c, void *const *xv, syn_shape *ys) {
    const float *x = xv[0], *b = c->n_in > 1 ? xv[1] : NULL;
    const syn_shape *xs = &c->in[0];
    int64_t nx = nel(xs), idx[SYN_MAX_DIMS];
    double *y = NULL;
    switch (c->k) {
    case K_ADD: case K_SUB: case K_MUL: case K_DIV: {
        const syn_shape *bs = &c->in[1];
        int nd = xs->ndim > bs->ndim ? xs->ndim : bs->ndim;
        ys->ndim = nd;
        for (int d = 0; d < nd; d++) {
            int da = d - (nd - xs->ndim), db = d - (nd - bs->ndim);
            int64_t sa = da >= 0 ? xs->dim[da] : 1, sb = db >= 0 ? bs->dim[db] : 1;
            ys->dim[d] = sa == 1 ? sb : sa;
        }
        y = malloc((size_t)nel(ys) * sizeof *y);
        for (int64_t i = 0; i < nel(ys); i++) {
            unravel(ys, i, idx);
            double u = x[bcast_index(xs, ys, idx)], v = b[bcast_index(bs, ys, idx)];
            y[i] = c->k == K_ADD ? u + v : c->k == K_SUB ? u - v : c->k == K_MUL ? u * v : u / v;
        }
        return y;
    }
    case K_ADD_SCALAR: case K_MUL_SCALAR: case K_POW_SCALAR: case K_RELU: case K_LEAKY_RELU: case K_SIGMOID:
    case K_TANH: case K_GELU: case K_DROPOUT: case K_DETACH:
        *ys = *xs;
        y = malloc((size_t)nx * sizeof *y);
        for (int64_t i = 0; i < nx; i++) {
            double v = x[i], f = c->f;
            switch (c->k) {
            case K_ADD_SCALAR: y[i] = v + f; break;
            case K_MUL_SCALAR: y[i] = v * f; break;
            case K_POW_SCALAR: y[i] = pow(v, f); break;
            case K_RELU: y[i] = v > 0 ? v : 0; break;
            case K_LEAKY_RELU: y[i] = v > 0 ? v : f * v; break;
            case K_SIGMOID: y[i] = 1.0 / (1.0 + exp(-v)); break;
            case K_TANH: y[i] = tanh(v); break;
            case K_GELU: y[i] = gelu_ref(v); break;
            default: y[i] = v; break; /* dropout in eval mode, detach */
            }
        }
        return y;
    case K_MATMUL: {
        const syn_shape *bs = &c->in[1];
        int64_t M = xs->dim[xs->ndim - 2], K = xs->dim[xs->ndim - 1], N = bs->dim[bs->ndim - 1];
        int64_t batch = nx / (M * K);
        bool shared = bs->ndim == 2;
        *ys = *xs;
        ys->dim[ys->ndim - 1] = N;
        y = malloc((size_t)(batch * M * N) * sizeof *y);
        for (int64_t t = 0; t < batch; t++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += (double)x[(t * M + m) * K + k] * b[(shared ? 0 : t * K * N) + k * N + n];
                    y[(t * M + m) * N + n] = s;
                }
        return y;
    }
    case K_LINEAR: {
        int64_t out = c->in[1].dim[0], in = c->in[1].dim[1], rows = nx / in;
        const float *bias = c->n_in == 3 ? xv[2] : NULL;
        *ys = *xs;
        ys->dim[ys->ndim - 1] = out;
        y = malloc((size_t)(rows * out) * sizeof *y);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < out; o++) {
                double s = bias ? bias[o] : 0.0;
                for (int64_t i = 0; i < in; i++) s += (double)x[r * in + i] * b[o * in + i];
                y[r * out + o] = s;
            }
        return y;
    }
    case K_SOFTMAX: case K_LOG_SOFTMAX: {
        int axis = c->axis < 0 ? c->axis + xs->ndim : c->axis;
        int64_t outer = 1, C = xs->dim[axis], inner = 1;
        for (int d = 0; d < axis; d++) outer *= xs->dim[d];
        for (int d = axis + 1; d < xs->ndim; d++) inner *= xs->dim[d];
        *ys = *xs;
        y = malloc((size_t)nx * sizeof *y);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < inner; j++) {
                const float *px = x + o * C * inner + j;
                double mx = -INFINITY, s = 0;
                for (int64_t k = 0; k < C; k++) mx = fmax(mx, px[k * inner]);
                for (int64_t k = 0; k < C; k++) s += exp(px[k * inner] - mx);
                for (int64_t k = 0; k < C; k++) {
                    double v = px[k * inner] - mx;
                    y[o * C * inner + j + k * inner] = c->k == K_SOFTMAX ? exp(v) / s : v - log(s);
                }
            }
        return y;
    }
    case K_SUM: case K_MEAN: {
        unsigned axes = c->axes == SYN_ALL_AXES ? (1u << xs->ndim) - 1 : c->axes;
        syn_shape red = {0, {0}}; /* output without the reduced axes */
        ys->ndim = 0;
        int64_t count = 1;
        for (int d = 0; d < xs->ndim; d++) {
            if (axes & (1u << d)) {
                count *= xs->dim[d];
                if (c->keep) ys->dim[ys->ndim++] = 1;
            } else {
                ys->dim[ys->ndim++] = xs->dim[d];
                red.dim[red.ndim++] = xs->dim[d];
            }
        }
        y = calloc((size_t)nel(ys), sizeof *y);
        for (int64_t i = 0; i < nx; i++) {
            unravel(xs, i, idx);
            int64_t o = 0;
            for (int d = 0; d < xs->ndim; d++)
                if (!(axes & (1u << d))) o = o * xs->dim[d] + idx[d];
            y[o] += x[i];
        }
        if (c->k == K_MEAN)
            for (int64_t o = 0; o < nel(ys); o++) y[o] /= (double)count;
        return y;
    }
    case K_RESHAPE: case K_FLATTEN:
        if (c->k == K_FLATTEN) {
            *ys = (syn_shape)SH2(xs->dim[0], nx / xs->dim[0]);
        } else {
            *ys = c->target;
            int64_t known = 1;
            for (int d = 0; d < ys->ndim; d++)
                if (ys->dim[d] > 0) known *= ys->dim[d];
            for (int d = 0; d < ys->ndim; d++)
                if (ys->dim[d] < 0) ys->dim[d] = nx / known;
        }
        y = malloc((size_t)nx * sizeof *y);
        for (int64_t i = 0; i < nx; i++) y[i] = x[i];
        return y;
    case K_TRANSPOSE: {
        ys->ndim = xs->ndim;
        for (int d = 0; d < xs->ndim; d++) ys->dim[d] = xs->dim[c->perm[d]];
        y = malloc((size_t)nx * sizeof *y);
        for (int64_t i = 0; i < nx; i++) { /* y[i] = x[j] where j[perm[d]] = i[d] */
            int64_t xi[SYN_MAX_DIMS], o = 0;
            unravel(ys, i, idx);
            for (int d = 0; d < xs->ndim; d++) xi[c->perm[d]] = idx[d];
            for (int d = 0; d < xs->ndim; d++) o = o * xs->dim[d] + xi[d];
            y[i] = x[o];
        }
        return y;
    }
    case K_CONCAT: {
        int axis = c->axis < 0 ? c->axis + xs->ndim : c->axis;
        *ys = *xs;
        ys->dim[axis] = 0;
        for (int k = 0; k < c->n_in; k++) ys->dim[axis] += c->in[k].dim[axis];
        y = malloc((size_t)nel(ys) * sizeof *y);
        int64_t base = 0;
        for (int k = 0; k < c->n_in; k++) {
            const float *xk = xv[k];
            for (int64_t i = 0; i < nel(&c->in[k]); i++) {
                unravel(&c->in[k], i, idx);
                idx[axis] += base;
                int64_t o = 0;
                for (int d = 0; d < ys->ndim; d++) o = o * ys->dim[d] + idx[d];
                y[o] = xk[i];
            }
            base += c->in[k].dim[axis];
        }
        return y;
    }
    case K_MSE: case K_SSE: case K_BCE: {
        double s = 0;
        for (int64_t i = 0; i < nx; i++) {
            double v = x[i], t = b[i];
            s += c->k == K_BCE ? fmax(v, 0) - v * t + log(1.0 + exp(-fabs(v))) : (v - t) * (v - t);
        }
        *ys = (syn_shape)SH0();
        y = malloc(sizeof *y);
        y[0] = c->k == K_SSE ? s : s / (double)nx;
        return y;
    }
    case K_CE: {
        const int32_t *lab = xv[1];
        int64_t N = xs->dim[0], C = xs->dim[1];
        double s = 0;
        for (int64_t r = 0; r < N; r++) {
            double mx = -INFINITY, e = 0;
            for (int64_t k = 0; k < C; k++) mx = fmax(mx, x[r * C + k]);
            for (int64_t k = 0; k < C; k++) e += exp(x[r * C + k] - mx);
            s += mx + log(e) - x[r * C + lab[r]];
        }
        *ys = (syn_shape)SH0();
        y = malloc(sizeof *y);
        y[0] = s / (double)N;
        return y;
    }
    }
    return NULL;
}

/* ---- the runner --------------------------------------------------------- */

static void run_case(const opc_case *c, uint64_t salt, bool inference) {
    tu_rng r = tu_rng_make(salt);
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    syn_node *x[3];
    void *data[3];
    for (int k = 0; k < c->n_in; k++) {
        char name[8] = {'x', (char)('0' + k), 0};
        x[k] = syn_input(g, name, opc_is_labels(c, k) ? SYN_I32 : SYN_F32, c->in[k]);
        data[k] = opc_operand(&r, c, k);
    }
    syn_node *y = opc_build(g, x, c);
    ck_assert_msg(y != NULL, "%s: build failed: %s", c->what, syn_last_error());
    syn_compile_opts opts = {.inference = inference};
    TU_OK(syn_graph_compile(g, syn_cpu(), &opts));
    poison(g);
    for (int k = 0; k < c->n_in; k++) TU_OK(syn_graph_feed(g, x[k], data[k], c->in[k]));
    if (c->k == K_DROPOUT) syn_graph_set_training(g, false);

    syn_shape ys;
    double *ref = reference(c, data, &ys);
    int64_t n = nel(&ys);
    float *got = malloc((size_t)n * sizeof *got), *again = malloc((size_t)n * sizeof *again);
    TU_OK(syn_graph_forward(g));
    assert_shape(c->what, syn_graph_shape(g, y), ys);
    assert_shape(c->what, syn_node_shape(y), ys);
    TU_OK(syn_graph_read(g, y, got, (size_t)n * sizeof *got));
    /* fp32 tolerances; matmul and linear with K = 65 fit them too */
    double ratio = tu_close_ratio(got, ref, n, 1e-5, 1e-4);
    ck_assert_msg(ratio <= 1.0, "%s: differs from the reference (ratio %g, seed %llu)", c->what, ratio,
                  (unsigned long long)tu_seed());
    /* a second forward over the same (reused) buffers gives the same bits */
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, y, again, (size_t)n * sizeof *again));
    ck_assert_msg(memcmp(got, again, (size_t)n * sizeof *got) == 0, "%s: a second forward differs", c->what);
    free(got);
    free(again);
    free(ref);
    for (int k = 0; k < c->n_in; k++) free(data[k]);
    syn_graph_free(g);
}

START_TEST(test_op_forward) { run_case(cases[_i], 1000 + (uint64_t)_i, _i % 2 == 0); }
END_TEST

START_TEST(test_broadcast_forward) {
    char what[160];
    opc_case c = opc_bcast_case(OPC_FWD, _i, what, sizeof what);
    run_case(&c, 2000 + (uint64_t)_i, _i % 8 < 4);
}
END_TEST

/* ---- a chain of ops: buffers reused by the memory plan -------------------- */

/* Each step's operand 0 is the previous output; the others are fresh inputs. */
static const opc_case chain[] = {
    {"matmul", K_MATMUL, 2, {SH0(), SH2(7, 13)}, .r = {U, U}},
    {"add", K_ADD, 2, {SH0(), SH1(13)}, .r = {U, U}},
    {"gelu", K_GELU, 1, .r = {U}},
    {"transpose", K_TRANSPOSE, 1, .r = {U}, .perm = {1, 0}},
    {"mul_scalar", K_MUL_SCALAR, 1, .r = {U}, .f = 3.0f},
    {"softmax", K_SOFTMAX, 1, .r = {U}, .axis = 0},
    {"concat", K_CONCAT, 2, {SH0(), SH2(13, 3)}, .r = {U, U}, .axis = 1},
    {"reshape", K_RESHAPE, 1, .r = {U}, .target = SH2(-1, 4)},
    {"linear", K_LINEAR, 3, {SH0(), SH2(5, 4), SH1(5)}, .r = {U, U, U}},
    {"sigmoid", K_SIGMOID, 1, .r = {U}},
    {"log_softmax", K_LOG_SOFTMAX, 1, .r = {U}, .axis = -1},
    {"div", K_DIV, 2, {SH0(), SH2(26, 1)}, .r = {U, RS(0.5f, 2.0f)}},
    {"tanh", K_TANH, 1, .r = {U}},
    {"sum", K_SUM, 1, .r = {U}, .axes = SYN_AXIS(0), .keep = true},
};
#define CHAIN_STEPS (int)(sizeof chain / sizeof chain[0])

/* Same-shape binary ops on outputs of 32 MiB and more take non-temporal
 * stores (elementwise.c): the results must be the scalar loop's, bit for
 * bit, head and tail included (an odd length). */
START_TEST(test_streamed_binary) {
    const int64_t n = ((int64_t)8 << 20) + 7;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b), *y = malloc((size_t)n * sizeof *y);
    ck_assert(a && b && y);
    tu_rng r = tu_rng_make(41);
    tu_fill(&r, a, n, -3, 3);
    tu_fill(&r, b, n, 0.5f, 2);
    syn_node *(*const ops[4])(syn_graph *, syn_node *, syn_node *) = {syn_add, syn_sub, syn_mul, syn_div};
    for (int k = 0; k < 4; k++) {
        syn_params *p;
        syn_graph *g;
        TU_OK(syn_params_create(syn_cpu(), 1, &p));
        TU_OK(syn_graph_create(p, &g));
        syn_node *na = syn_input(g, "a", SYN_F32, syn_shape1(n)), *nb = syn_input(g, "b", SYN_F32, syn_shape1(n));
        syn_node *out = ops[k](g, na, nb);
        TU_OK(syn_graph_keep(g, out));
        TU_OK(syn_graph_compile(g, syn_cpu(), &(syn_compile_opts){.inference = true}));
        TU_OK(syn_graph_feed(g, na, a, syn_shape1(n)));
        TU_OK(syn_graph_feed(g, nb, b, syn_shape1(n)));
        TU_OK(syn_graph_forward(g));
        TU_OK(syn_graph_read(g, out, y, (size_t)n * sizeof *y));
        for (int64_t i = 0; i < n; i++) {
            float want = k == 0 ? a[i] + b[i] : k == 1 ? a[i] - b[i] : k == 2 ? a[i] * b[i] : a[i] / b[i];
            if (memcmp(&y[i], &want, sizeof want) != 0)
                ck_abort_msg("op %d: element %lld is %.9g, want %.9g", k, (long long)i, y[i], want);
        }
        syn_graph_free(g);
        syn_params_free(p);
    }
    free(a);
    free(b);
    free(y);
}
END_TEST

/* |got - want| in units of the last place of want rounded to float; below
 * the normal range (FLT_MIN) 0 when the error is under FLT_MIN: a sigmoid
 * of -88.8 is 0, not 3e-39, because e^88.8 overflows, as with libm. */
static double ulps(double want, float got) {
    if (fabs(want) < FLT_MIN && fabs((double)got - want) < FLT_MIN) return 0.0;
    float w = (float)want;
    double ulp = (double)nextafterf(fabsf(w), INFINITY) - (double)fabsf(w);
    return fabs((double)got - want) / fmax(ulp, 1.4e-45);
}

/* The CPU's sigmoid, tanh and softmax compute e^x and tanh with their own
 * vectorisable polynomials (src/cpu/vmath.h), not libm: a sweep of 2^21
 * values over each function's whole curve (and down to 1e-30 for tanh's odd
 * polynomial) must stay within 3 ulp of double precision, and NaN,
 * infinities and signed zeros must come out as libm's do. */
START_TEST(test_activation_accuracy) {
    enum { SWEEP = 1 << 21, SPECIAL = 8 };
    const int64_t n = SWEEP + SPECIAL;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    ck_assert(x && y);
    for (int64_t i = 0; i < SWEEP / 2; i++) x[i] = -110.0f + 220.0f * (float)i / (SWEEP / 2);
    for (int64_t i = 0; i < SWEEP / 2; i++) /* +-(1e-30 .. 2), geometrically */
        x[SWEEP / 2 + i] = (i % 2 ? -1.0f : 1.0f) * (float)(1e-30 * pow(2e30, (double)i / (SWEEP / 2)));
    const float special[SPECIAL] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, 88.72f, -104.5f};
    memcpy(x + SWEEP, special, sizeof special);
    for (int k = 0; k < 3; k++) {
        syn_graph *g;
        TU_OK(syn_graph_create(NULL, &g));
        /* softmax over pairs (v, 0): e^v / (e^v + 1), the sigmoid through the exp */
        syn_node *in = syn_input(g, "x", SYN_F32, k == 2 ? syn_shape2(n, 2) : syn_shape1(n));
        syn_node *out = k == 0 ? syn_sigmoid(g, in) : k == 1 ? syn_tanh(g, in) : syn_softmax(g, in, 1);
        TU_OK(syn_graph_keep(g, out));
        TU_OK(syn_graph_compile(g, syn_cpu(), &(syn_compile_opts){.inference = true}));
        float *feed = x, *got = y;
        if (k == 2) {
            feed = calloc((size_t)(2 * n), sizeof *feed);
            got = malloc((size_t)(2 * n) * sizeof *got);
            ck_assert(feed && got);
            for (int64_t i = 0; i < n; i++) feed[2 * i] = x[i];
        }
        TU_OK(syn_graph_feed(g, in, feed, k == 2 ? syn_shape2(n, 2) : syn_shape1(n)));
        TU_OK(syn_graph_forward(g));
        TU_OK(syn_graph_read(g, out, got, (size_t)(k == 2 ? 2 * n : n) * sizeof *got));
        double worst = 0.0;
        int64_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            double want = k == 1 ? tanh(v) : 1.0 / (1.0 + exp(-v));
            float have = k == 2 ? got[2 * i] : got[i];
            if (isnan(v)) {
                ck_assert_msg(isnan(have), "op %d: NaN in gave %.9g", k, have);
                continue;
            }
            if (k == 2 && fabs(v) > 80.0) continue; /* softmax's max subtraction rounds differently there */
            double u = ulps(want, have);
            if (u > worst) worst = u, at = i;
            if (k == 1 && v == 0.0)
                ck_assert_msg(!signbit(have) == !signbit(v), "tanh(%g) at %lld is %g: the sign is lost", v, (long long)i,
                              have);
        }
        ck_assert_msg(worst <= 3.0, "op %d: %.2f ulp at x = %.9g (got %.9g)", k, worst, x[at],
                      k == 2 ? got[2 * at] : got[at]);
        if (k == 2) free(feed), free(got);
        syn_graph_free(g);
    }
    free(x);
    free(y);
}
END_TEST

/* The reference runs step by step on float copies of the previous reference. */
START_TEST(test_chain) {
    tu_rng r = tu_rng_make(2500 + (uint64_t)_i);
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    syn_shape cur_s = SH2(5, 7);
    opc_case first = {"x", K_RELU, 1, {SH2(5, 7)}, .r = {U}};
    float *cur = opc_operand(&r, &first, 0);
    syn_node *x = syn_input(g, "x", SYN_F32, cur_s), *node = x;
    syn_node *feeds[2 * CHAIN_STEPS];
    void *fdata[2 * CHAIN_STEPS];
    syn_shape fshape[2 * CHAIN_STEPS];
    int nf = 0;
    feeds[nf] = x, fdata[nf] = cur, fshape[nf++] = cur_s;
    double *ref = NULL;
    syn_shape ys = cur_s;
    for (int s = 0; s < CHAIN_STEPS; s++) {
        opc_case c = chain[s];
        c.in[0] = cur_s;
        syn_node *in[3] = {node};
        void *xv[3] = {cur};
        for (int k = 1; k < c.n_in; k++) {
            xv[k] = opc_operand(&r, &c, k);
            in[k] = syn_input(g, "extra", SYN_F32, c.in[k]);
            feeds[nf] = in[k], fdata[nf] = xv[k], fshape[nf++] = c.in[k];
        }
        node = opc_build(g, in, &c);
        ck_assert_msg(node != NULL, "step %s: %s", c.what, syn_last_error());
        free(ref);
        ref = reference(&c, xv, &ys);
        cur = malloc((size_t)nel(&ys) * sizeof *cur);
        for (int64_t i = 0; i < nel(&ys); i++) cur[i] = (float)ref[i];
        fdata[nf] = cur, feeds[nf] = NULL, fshape[nf++] = ys; /* to free */
        cur_s = ys;
    }
    syn_compile_opts opts = {.inference = _i == 0};
    TU_OK(syn_graph_compile(g, syn_cpu(), &opts));
    poison(g);
    for (int k = 0; k < nf; k++)
        if (feeds[k]) TU_OK(syn_graph_feed(g, feeds[k], fdata[k], fshape[k]));
    float got[16], again[16];
    ck_assert_int_le(nel(&ys), 16);
    for (int pass = 0; pass < 2; pass++) {
        TU_OK(syn_graph_forward(g));
        assert_shape("chain", syn_graph_shape(g, node), ys);
        TU_OK(syn_graph_read(g, node, pass ? again : got, (size_t)nel(&ys) * sizeof(float)));
    }
    TU_CLOSE(got, ref, nel(&ys), 1e-5, 1e-4);
    ck_assert(memcmp(got, again, (size_t)nel(&ys) * sizeof(float)) == 0);
    free(ref);
    for (int k = 0; k < nf; k++) free(fdata[k]);
    syn_graph_free(g);
}
END_TEST

/* ---- dropout ------------------------------------------------------------- */

#define DROP_N 10000

/* x in [0.5, 1.5] so that no kept value is zero. */
static syn_graph *dropout_graph(float p, syn_node **x, syn_node **y, float *data, uint64_t salt) {
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    *x = syn_input(g, "x", SYN_F32, syn_shape1(DROP_N));
    *y = syn_dropout(g, *x, p);
    ck_assert_ptr_nonnull(*y);
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    poison(g);
    tu_rng r = tu_rng_make(salt);
    tu_fill(&r, data, DROP_N, 0.5f, 1.5f);
    TU_OK(syn_graph_feed(g, *x, data, syn_shape1(DROP_N)));
    return g;
}

START_TEST(test_dropout_train) {
    static const float ps[] = {0.1f, 0.3f, 0.5f, 0.9f};
    float p = ps[_i];
    static float x[DROP_N], y[DROP_N];
    syn_node *xn, *yn;
    syn_graph *g = dropout_graph(p, &xn, &yn, x, 3000 + (uint64_t)_i);
    ck_assert(syn_graph_training(g));
    syn_graph_set_seed(g, tu_seed());
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, yn, y, sizeof y));
    /* zeros in each half: binomial(n/2, p) within 5 sigma */
    for (int half = 0; half < 2; half++) {
        int zeros = 0, n = DROP_N / 2;
        for (int i = half * n; i < (half + 1) * n; i++) {
            if (y[i] == 0.0f) zeros++;
            else
                ck_assert_msg(fabs(y[i] - x[i] / (1.0 - p)) <= 1e-6 * fabs(x[i] / (1.0 - p)),
                              "p=%g: kept y[%d]=%g, expected x/(1-p)=%g", p, i, y[i], x[i] / (1.0 - p));
        }
        double mean = n * p, sd = sqrt(n * p * (1.0 - p));
        ck_assert_msg(fabs(zeros - mean) <= 5 * sd, "p=%g: %d of %d zeroed, expected %g +- %g (seed %llu)", p, zeros,
                      n, mean, 5 * sd, (unsigned long long)tu_seed());
    }
    syn_graph_free(g);
}
END_TEST

START_TEST(test_dropout_seed) {
    static float x[DROP_N], m1[DROP_N], m2[DROP_N], m3[DROP_N];
    syn_node *xn, *yn, *xn2, *yn2;
    syn_graph *g = dropout_graph(0.5f, &xn, &yn, x, 3100);
    syn_graph_set_seed(g, 42);
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, yn, m1, sizeof m1));
    TU_OK(syn_graph_forward(g)); /* the stream moves on: a new mask */
    TU_OK(syn_graph_read(g, yn, m2, sizeof m2));
    ck_assert_msg(memcmp(m1, m2, sizeof m1) != 0, "two forwards drew the same mask");
    syn_graph_set_seed(g, 42);
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, yn, m3, sizeof m3));
    ck_assert_msg(memcmp(m1, m3, sizeof m1) == 0, "the same seed gave another mask");
    syn_graph_set_seed(g, 43);
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, yn, m3, sizeof m3));
    ck_assert_msg(memcmp(m1, m3, sizeof m1) != 0, "seeds 42 and 43 gave the same mask");
    /* another graph with the same seed and data draws the same mask */
    syn_graph *g2 = dropout_graph(0.5f, &xn2, &yn2, x, 3100);
    syn_graph_set_seed(g2, 42);
    TU_OK(syn_graph_forward(g2));
    TU_OK(syn_graph_read(g2, yn2, m3, sizeof m3));
    ck_assert_msg(memcmp(m1, m3, sizeof m1) == 0, "another graph with seed 42 gave another mask");
    syn_graph_free(g2);
    syn_graph_free(g);
}
END_TEST

START_TEST(test_dropout_identity) {
    static float x[DROP_N], y[DROP_N];
    syn_node *xn, *yn;
    syn_graph *g = dropout_graph(0.5f, &xn, &yn, x, 3200);
    syn_graph_set_training(g, false);
    ck_assert(!syn_graph_training(g));
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, yn, y, sizeof y));
    ck_assert_msg(memcmp(x, y, sizeof x) == 0, "eval-mode dropout is not the identity");
    syn_graph_set_training(g, true);
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, yn, y, sizeof y));
    ck_assert_msg(memcmp(x, y, sizeof x) != 0, "training mode did not come back");
    syn_graph_free(g);
    /* p = 0 in training mode */
    g = dropout_graph(0.0f, &xn, &yn, x, 3201);
    TU_OK(syn_graph_forward(g));
    TU_OK(syn_graph_read(g, yn, y, sizeof y));
    ck_assert_msg(memcmp(x, y, sizeof x) == 0, "dropout with p = 0 is not the identity");
    syn_graph_free(g);
}
END_TEST

/* ---- bad input at build time -------------------------------------------- */

typedef struct {
    const char *what;
    syn_status want;
    const char *needles[3]; /* substrings the message must hold */
} bad_case;

static const bad_case bad_cases[] = {
    {"add non-broadcastable", SYN_ERR_SHAPE, {"add", "(3,4)", "(5)"}},
    {"sub non-broadcastable", SYN_ERR_SHAPE, {"sub", "(2,3)", "(3,2)"}},
    {"matmul inner dims", SYN_ERR_SHAPE, {"matmul", "(2,3)", "(4,5)"}},
    {"matmul batch dims", SYN_ERR_SHAPE, {"matmul", "(2,3,4)", "(3,4,5)"}},
    {"matmul 1-D operand", SYN_ERR_SHAPE, {"matmul", "(3)", "(3,4)"}},
    {"linear wrong weight", SYN_ERR_SHAPE, {"linear", "(4,5)", "(3,6)"}},
    {"linear wrong bias", SYN_ERR_SHAPE, {"linear", "bias", NULL}},
    {"cross_entropy f32 labels", SYN_ERR_ARG, {"cross_entropy", "i32", NULL}},
    {"cross_entropy label count", SYN_ERR_SHAPE, {"cross_entropy", "(4,3)", "(5)"}},
    {"concat mismatched dims", SYN_ERR_SHAPE, {"concat", "(2,4)", "(2,3)"}},
    {"concat axis out of range", SYN_ERR_SHAPE, {"concat", "axis", NULL}},
    {"transpose repeated axis", SYN_ERR_SHAPE, {"transpose", "(2,3,4)", "perm"}},
    {"transpose axis out of range", SYN_ERR_SHAPE, {"transpose", "(2,3,4)", "perm"}},
    {"reshape element count", SYN_ERR_SHAPE, {"reshape", "(3,4)", "(5,3)"}},
    {"reshape element count, -1", SYN_ERR_SHAPE, {"reshape", "(3,4)", "(5,-1)"}},
    {"reshape same batch, wrong count", SYN_ERR_SHAPE, {"reshape", "(4,6)", "(4,3)"}},
    {"reshape overflowing dims", SYN_ERR_SHAPE, {"reshape", "(1)", NULL}},
    {"sum axis out of range", SYN_ERR_SHAPE, {"sum", "(3,4)", NULL}},
    {"mean axis out of range", SYN_ERR_SHAPE, {"mean", "(3,4)", NULL}},
    {"softmax axis out of range", SYN_ERR_SHAPE, {"softmax", "axis 2", "(3,4)"}},
    {"log_softmax axis out of range", SYN_ERR_SHAPE, {"log_softmax", "axis -3", "(3,4)"}},
    {"dropout p = 1.5", SYN_ERR_ARG, {"dropout", "1.5", NULL}},
    {"dropout p = -0.1", SYN_ERR_ARG, {"dropout", "-0.1", NULL}},
    {"dropout p = nan", SYN_ERR_ARG, {"dropout", "nan", NULL}},
    {"input dim 1<<50", SYN_ERR_SHAPE, {"input", "'big'", "1125899906842624"}},
    {"input numel overflows", SYN_ERR_SHAPE, {"input", "'big'", "1099511627776"}},
    {"input 0 dims", SYN_ERR_SHAPE, {"input", "'none'", NULL}},
    {"input a zero dim", SYN_ERR_SHAPE, {"input", "(3,0)", NULL}},
    {"input negative dim", SYN_ERR_SHAPE, {"input", "(-3)", NULL}},
    {"input 7 dims", SYN_ERR_SHAPE, {"input", "'deep'", NULL}},
    {"node of another graph", SYN_ERR_ARG, {"add", "another graph", NULL}},
    {"mse shapes differ", SYN_ERR_SHAPE, {"mse_loss", "(3,4)", "(4,3)"}},
    {"bce shapes differ", SYN_ERR_SHAPE, {"bce_with_logits", "(3,4)", "(12)"}},
    {"add on i32", SYN_ERR_ARG, {"add", "i32", NULL}},
    {"parameter shape clash", SYN_ERR_SHAPE, {"'w'", "(3)", "(4)"}},
};
static const int n_bad = (int)(sizeof bad_cases / sizeof bad_cases[0]);

static syn_node *in_f(syn_graph *g, syn_shape s) { return syn_input(g, "in", SYN_F32, s); }

/* Builds bad case i in g; returns what the failing builder returned. */
static syn_node *build_bad(int i, syn_graph *g) {
    static const int rep[3] = {0, 0, 1}, oor[3] = {0, 3, 1};
    switch (i) {
    case 0: return syn_add(g, in_f(g, syn_shape2(3, 4)), in_f(g, syn_shape1(5)));
    case 1: return syn_sub(g, in_f(g, syn_shape2(2, 3)), in_f(g, syn_shape2(3, 2)));
    case 2: return syn_matmul(g, in_f(g, syn_shape2(2, 3)), in_f(g, syn_shape2(4, 5)));
    case 3: return syn_matmul(g, in_f(g, syn_shape3(2, 3, 4)), in_f(g, syn_shape3(3, 4, 5)));
    case 4: return syn_matmul(g, in_f(g, syn_shape1(3)), in_f(g, syn_shape2(3, 4)));
    case 5: return syn_linear_op(g, in_f(g, syn_shape2(4, 5)), in_f(g, syn_shape2(3, 6)), NULL);
    case 6: return syn_linear_op(g, in_f(g, syn_shape2(4, 5)), in_f(g, syn_shape2(3, 5)), in_f(g, syn_shape1(4)));
    case 7: return syn_cross_entropy(g, in_f(g, syn_shape2(4, 3)), in_f(g, syn_shape1(4)));
    case 8: return syn_cross_entropy(g, in_f(g, syn_shape2(4, 3)), syn_input(g, "y", SYN_I32, syn_shape1(5)));
    case 9: {
        syn_node *xs[3] = {in_f(g, syn_shape2(2, 3)), in_f(g, syn_shape2(2, 3)), in_f(g, syn_shape2(2, 4))};
        return syn_concat(g, xs, 3, 0);
    }
    case 10: {
        syn_node *xs[2] = {in_f(g, syn_shape2(2, 3)), in_f(g, syn_shape2(2, 3))};
        return syn_concat(g, xs, 2, 2);
    }
    case 11: return syn_transpose(g, in_f(g, syn_shape3(2, 3, 4)), rep);
    case 12: return syn_transpose(g, in_f(g, syn_shape3(2, 3, 4)), oor);
    case 13: return syn_reshape(g, in_f(g, syn_shape2(3, 4)), syn_shape2(5, 3));
    case 14: return syn_reshape(g, in_f(g, syn_shape2(3, 4)), syn_shape2(5, -1));
    case 15: return syn_reshape(g, in_f(g, syn_shape2(4, 6)), syn_shape2(4, 3));
    case 16: /* 7 * 0x6DB6DB6DB6DB6DB7 = 1 modulo 2^64 */
        return syn_reshape(g, in_f(g, syn_shape1(1)), syn_shape2(7, INT64_C(0x6DB6DB6DB6DB6DB7)));
    case 17: return syn_sum(g, in_f(g, syn_shape2(3, 4)), SYN_AXIS(2), false);
    case 18: return syn_mean(g, in_f(g, syn_shape2(3, 4)), SYN_AXIS(0) | SYN_AXIS(5), true);
    case 19: return syn_softmax(g, in_f(g, syn_shape2(3, 4)), 2);
    case 20: return syn_log_softmax(g, in_f(g, syn_shape2(3, 4)), -3);
    case 21: return syn_dropout(g, in_f(g, syn_shape2(3, 4)), 1.5f);
    case 22: return syn_dropout(g, in_f(g, syn_shape2(3, 4)), -0.1f);
    case 23: return syn_dropout(g, in_f(g, syn_shape2(3, 4)), NAN);
    case 24: return syn_input(g, "big", SYN_F32, syn_shape1(INT64_C(1) << 50));
    case 25: return syn_input(g, "big", SYN_F32, syn_shape2(INT64_C(1) << 40, (INT64_C(1) << 24) + 1));
    case 26: return syn_input(g, "none", SYN_F32, syn_shape0());
    case 27: return syn_input(g, "zero", SYN_F32, syn_shape2(3, 0));
    case 28: return syn_input(g, "neg", SYN_F32, syn_shape1(-3));
    case 29: {
        syn_shape s = {7, {1, 1, 1, 1, 1, 1}};
        return syn_input(g, "deep", SYN_F32, s);
    }
    case 30: {
        syn_graph *other;
        TU_OK(syn_graph_create(NULL, &other));
        syn_node *a = in_f(other, syn_shape1(3));
        syn_node *y = syn_add(g, in_f(g, syn_shape1(3)), a);
        ck_assert_int_eq(syn_graph_status(other), SYN_OK);
        syn_graph_free(other);
        return y;
    }
    case 31: return syn_mse_loss(g, in_f(g, syn_shape2(3, 4)), in_f(g, syn_shape2(4, 3)));
    case 32: return syn_bce_with_logits(g, in_f(g, syn_shape2(3, 4)), in_f(g, syn_shape1(12)));
    case 33: return syn_add(g, in_f(g, syn_shape1(3)), syn_input(g, "i", SYN_I32, syn_shape1(3)));
    case 34:
        ck_assert_ptr_nonnull(syn_param(g, "w", syn_shape1(3), NULL));
        return syn_param(g, "w", syn_shape1(4), NULL);
    }
    return NULL;
}

START_TEST(test_bad_build) {
    const bad_case *c = &bad_cases[_i];
    syn_params *ps;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *ok = in_f(g, syn_shape2(2, 2));
    ck_assert_ptr_nonnull(ok);
    syn_clear_error();
    syn_node *bad = build_bad(_i, g);
    ck_assert_msg(bad == NULL, "%s: the builder returned a node", c->what);
    ck_assert_msg(syn_graph_status(g) == c->want, "%s: status %s, expected %s (%s)", c->what,
                  syn_status_str(syn_graph_status(g)), syn_status_str(c->want), syn_last_error());
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", syn_last_error());
    for (int k = 0; k < 3 && c->needles[k]; k++)
        ck_assert_msg(strstr(msg, c->needles[k]) != NULL, "%s: message \"%s\" lacks \"%s\"", c->what, msg,
                      c->needles[k]);
    /* later ops, good or bad, return NULL and the first error sticks */
    ck_assert_ptr_null(syn_relu(g, ok));
    ck_assert_ptr_null(syn_dropout(g, ok, 2.0f));
    ck_assert_ptr_null(syn_matmul(g, ok, NULL));
    ck_assert_ptr_null(syn_input(g, "late", SYN_F32, syn_shape1(2)));
    ck_assert_ptr_null(syn_param(g, "late", syn_shape1(2), NULL));
    ck_assert_int_eq(syn_graph_status(g), c->want);
    ck_assert_msg(strcmp(msg, syn_last_error()) == 0, "%s: the message changed to \"%s\"", c->what, syn_last_error());
    ck_assert_int_eq(syn_graph_compile(g, syn_cpu(), NULL), c->want);
    ck_assert_int_eq(syn_graph_status(g), c->want);
    syn_graph_free(g);
    syn_params_free(ps);
}
END_TEST

/* ---- bad input at run time ------------------------------------------------ */

START_TEST(test_bad_label) {
    static const int32_t labels[3][4] = {{0, 1, 7, 2}, {0, -1, 2, 2}, {0, 1, 2, 5}};
    static const char *const needles[3][2] = {{"label 7", "row 2"}, {"label -1", "row 1"}, {"label 5", "row 3"}};
    for (int t = 0; t < 3; t++) {
        syn_graph *g;
        TU_OK(syn_graph_create(NULL, &g));
        syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(4, 5));
        syn_node *y = syn_input(g, "y", SYN_I32, syn_shape1(4));
        syn_node *loss = syn_cross_entropy(g, x, y);
        TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
        float xv[20] = {0};
        TU_OK(syn_graph_feed(g, x, xv, syn_shape2(4, 5)));
        TU_OK(syn_graph_feed(g, y, labels[t], syn_shape1(4)));
        ck_assert_int_eq(syn_graph_forward(g), SYN_ERR_ARG);
        for (int k = 0; k < 2; k++)
            ck_assert_msg(strstr(syn_last_error(), needles[t][k]), "message \"%s\" lacks \"%s\"", syn_last_error(),
                          needles[t][k]);
        /* a good label afterwards works again */
        static const int32_t good[4] = {0, 1, 4, 2};
        TU_OK(syn_graph_feed(g, y, good, syn_shape1(4)));
        TU_OK(syn_graph_forward(g));
        float l;
        TU_OK(syn_graph_read_scalar(g, loss, &l));
        ck_assert_msg(fabsf(l - logf(5.0f)) < 1e-6f, "uniform logits: loss %g, expected log 5", l);
        syn_graph_free(g);
    }
}
END_TEST

START_TEST(test_bad_feed_and_read) {
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(8, 5));
    syn_node *h = syn_relu(g, x);
    syn_node *y = syn_sum(g, h, SYN_AXIS(1), false);
    float buf[64] = {0};
    ck_assert_int_eq(syn_graph_feed(g, x, buf, syn_shape2(8, 5)), SYN_ERR_ARG); /* not compiled */
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    ck_assert_int_eq(syn_graph_read(g, y, buf, 8 * sizeof(float)), SYN_ERR_ARG); /* no forward yet */
    static const syn_shape wrong[] = {SH2(8, 4), SH2(9, 5), SH3(8, 5, 1), SH2(0, 5), SH1(40), SH2(8, 6)};
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++) {
        ck_assert_int_eq(syn_graph_feed(g, x, buf, wrong[k]), SYN_ERR_SHAPE);
        ck_assert_msg(strstr(syn_last_error(), "(8,5)"), "feed message \"%s\" lacks the input shape", syn_last_error());
    }
    ck_assert_int_eq(syn_graph_feed(g, x, NULL, syn_shape2(8, 5)), SYN_ERR_ARG);
    ck_assert_int_eq(syn_graph_feed(g, h, buf, syn_shape2(8, 5)), SYN_ERR_ARG); /* not an input */
    TU_OK(syn_graph_feed(g, x, buf, syn_shape2(3, 5)));
    TU_OK(syn_graph_forward(g));
    ck_assert_int_eq(syn_graph_read(g, h, buf, 15 * sizeof(float)), SYN_ERR_ARG); /* not kept */
    ck_assert_msg(strstr(syn_last_error(), "kept"), "message \"%s\"", syn_last_error());
    ck_assert_int_eq(syn_graph_read(g, y, buf, 8 * sizeof(float)), SYN_ERR_ARG); /* 3 rows now */
    TU_OK(syn_graph_read(g, y, buf, 3 * sizeof(float)));
    ck_assert_int_eq(syn_graph_backward(g, y), SYN_ERR_SHAPE); /* not a scalar */
    syn_graph_free(g);
}
END_TEST

/* ---- partial batch -------------------------------------------------------- */

START_TEST(test_partial_batch) {
    enum { CAP = 8, IN = 5, OUT = 4, ROWS = 3 };
    tu_rng r = tu_rng_make(4000);
    syn_params *ps;
    syn_graph *g;
    TU_OK(syn_params_create(syn_cpu(), 7, &ps));
    TU_OK(syn_graph_create(ps, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape2(CAP, IN));
    syn_node *lab = syn_input(g, "y", SYN_I32, syn_shape1(CAP));
    syn_init init = {SYN_INIT_UNIFORM, -1, 1, 0};
    syn_node *w = syn_param(g, "w", syn_shape2(OUT, IN), &init), *b = syn_param(g, "b", syn_shape1(OUT), &init);
    syn_node *logits = syn_linear_op(g, x, w, b);
    syn_node *loss = syn_cross_entropy(g, logits, lab);
    TU_OK(syn_graph_keep(g, logits));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    poison(g);
    float xv[CAP * IN], wv[OUT * IN], bv[OUT];
    int32_t yv[CAP];
    tu_fill(&r, xv, CAP * IN, -2, 2);
    for (int i = 0; i < CAP; i++) yv[i] = (int32_t)(tu_next(&r) % OUT);
    syn_tensor *wt, *bt, *wg;
    TU_OK(syn_params_find(ps, "w", &wt, &wg));
    TU_OK(syn_params_find(ps, "b", &bt, NULL));
    TU_OK(syn_tensor_read(wt, wv, sizeof wv));
    TU_OK(syn_tensor_read(bt, bv, sizeof bv));
    for (int pass = 0; pass < 2; pass++) {
        int rows = pass == 0 ? ROWS : CAP;
        TU_OK(syn_graph_feed(g, x, xv, syn_shape2(rows, IN)));
        TU_OK(syn_graph_feed(g, lab, yv, syn_shape1(rows)));
        TU_OK(syn_graph_forward(g));
        assert_shape("logits", syn_graph_shape(g, logits), (syn_shape)SH2(rows, OUT));
        assert_shape("logits capacity", syn_node_shape(logits), (syn_shape)SH2(CAP, OUT));
        TU_OK(syn_params_zero_grad(ps));
        TU_OK(syn_graph_backward(g, loss));
        /* the reference on the fed rows only */
        double ref_logits[CAP * OUT], ref_loss = 0, ref_dw[OUT * IN] = {0};
        for (int i = 0; i < rows; i++) {
            double mx = -INFINITY, s = 0, *z = ref_logits + i * OUT;
            for (int o = 0; o < OUT; o++) {
                z[o] = bv[o];
                for (int k = 0; k < IN; k++) z[o] += (double)xv[i * IN + k] * wv[o * IN + k];
                mx = fmax(mx, z[o]);
            }
            for (int o = 0; o < OUT; o++) s += exp(z[o] - mx);
            ref_loss += mx + log(s) - z[yv[i]];
            for (int o = 0; o < OUT; o++) {
                double d = (exp(z[o] - mx) / s - (o == yv[i])) / rows;
                for (int k = 0; k < IN; k++) ref_dw[o * IN + k] += d * xv[i * IN + k];
            }
        }
        ref_loss /= rows;
        float got_logits[CAP * OUT], got_loss, got_dw[OUT * IN];
        TU_OK(syn_graph_read(g, logits, got_logits, (size_t)(rows * OUT) * sizeof(float)));
        TU_CLOSE(got_logits, ref_logits, rows * OUT, 1e-5, 1e-4);
        TU_OK(syn_graph_read_scalar(g, loss, &got_loss));
        TU_CLOSE(&got_loss, &ref_loss, 1, 1e-5, 1e-4);
        TU_OK(syn_tensor_read(wg, got_dw, sizeof got_dw));
        TU_CLOSE(got_dw, ref_dw, OUT * IN, 1e-5, 1e-4);
    }
    syn_graph_free(g);
    syn_params_free(ps);
}
END_TEST

/* x (8,2,5) fed with 3 rows -> reshape(-1,10) -> transpose -> log_softmax over
 * the batch axis -> transpose back -> sum over axis 1: every shape follows the
 * fed batch, and the reference runs on the 3 rows only. */
START_TEST(test_partial_batch_shape_ops) {
    enum { CAP = 8, ROWS = 3 };
    static const int t10[2] = {1, 0};
    const opc_case steps[] = {
        {"reshape", K_RESHAPE, 1, {SH3(ROWS, 2, 5)}, .target = SH2(-1, 10)},
        {"transpose", K_TRANSPOSE, 1, {SH2(ROWS, 10)}, .perm = {1, 0}},
        {"log_softmax", K_LOG_SOFTMAX, 1, {SH2(10, ROWS)}, .axis = 1},
        {"transpose", K_TRANSPOSE, 1, {SH2(10, ROWS)}, .perm = {1, 0}},
        {"sum", K_SUM, 1, {SH2(ROWS, 10)}, .axes = SYN_AXIS(1)},
    };
    tu_rng r = tu_rng_make(4100);
    float xv[CAP * 10];
    tu_fill(&r, xv, CAP * 10, -3, 3);
    syn_graph *g;
    TU_OK(syn_graph_create(NULL, &g));
    syn_node *x = syn_input(g, "x", SYN_F32, syn_shape3(CAP, 2, 5));
    syn_node *a = syn_reshape(g, x, syn_shape2(-1, 10));
    syn_node *y = syn_sum(g, syn_transpose(g, syn_log_softmax(g, syn_transpose(g, a, t10), 1), t10), SYN_AXIS(1), false);
    ck_assert_msg(y != NULL, "%s", syn_last_error());
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    poison(g);
    TU_OK(syn_graph_feed(g, x, xv, syn_shape3(ROWS, 2, 5)));
    TU_OK(syn_graph_forward(g));
    assert_shape("y", syn_graph_shape(g, y), (syn_shape)SH1(ROWS));
    assert_shape("reshape", syn_graph_shape(g, a), (syn_shape)SH2(ROWS, 10));
    float cur[CAP * 10], got[ROWS];
    memcpy(cur, xv, sizeof cur);
    double *ref = NULL;
    syn_shape ys;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        void *xs[1] = {cur};
        free(ref);
        ref = reference(&steps[k], xs, &ys);
        for (int64_t i = 0; i < nel(&ys); i++) cur[i] = (float)ref[i];
    }
    TU_OK(syn_graph_read(g, y, got, sizeof got));
    TU_CLOSE(got, ref, ROWS, 1e-5, 1e-4);
    free(ref);
    syn_graph_free(g);
}
END_TEST

static Suite *ops_suite(void) {
    n_cases = opc_select(OPC_FWD, cases);
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_op_forward, 0, n_cases);
    tcase_add_loop_test(tc, test_broadcast_forward, 0, opc_bcast_count(OPC_FWD));
    tcase_add_loop_test(tc, test_chain, 0, 2);
    tcase_add_test(tc, test_streamed_binary);
    tcase_add_test(tc, test_activation_accuracy);
    suite_add_tcase(s, tc);
    tc = tcase_create("dropout");
    tcase_add_loop_test(tc, test_dropout_train, 0, 4);
    tcase_add_test(tc, test_dropout_seed);
    tcase_add_test(tc, test_dropout_identity);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad_input");
    tcase_add_loop_test(tc, test_bad_build, 0, n_bad);
    tcase_add_test(tc, test_bad_label);
    tcase_add_test(tc, test_bad_feed_and_read);
    suite_add_tcase(s, tc);
    tc = tcase_create("partial_batch");
    tcase_add_test(tc, test_partial_batch);
    tcase_add_test(tc, test_partial_batch_shape_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(ops_suite()); }
