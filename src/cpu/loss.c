/* Losses on the CPU, each reduced to a scalar with double accumulation:
 * MSE (mean), SSE (sum), cross-entropy from logits with integer labels, and
 * binary cross-entropy with logits. */
#include <math.h>
#include "cpu.h"
#include "vmath.h"

/* L = sum (p - t)^2, divided by n for the mean */
static syn_status sq_fwd(syn_node *n, bool mean) {
    const float *p = syn__cin(n, 0), *t = syn__cin(n, 1);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    double s = 0;
#pragma omp parallel for reduction(+ : s) if (len > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < len; i++) {
        double d = (double)p[i] - t[i];
        s += d * d;
    }
    *(float *)n->value = (float)(mean ? s / (double)(len ? len : 1) : s);
    return SYN_OK;
}

/* dp += dL 2 (p - t) / n;  dt -= the same */
static syn_status sq_bwd(syn_node *n, bool mean) {
    const float *p = syn__cin(n, 0), *t = syn__cin(n, 1);
    float *dp = syn__cgrad(n, 0), *dt = syn__cgrad(n, 1);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    float k = 2.0f * *(const float *)n->grad / (mean ? (float)(len ? len : 1) : 1.0f);
    const bool add_p = syn__grad_add(n, 0), add_t = syn__grad_add(n, 1);
#pragma omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < len; i++) {
        float d = k * (p[i] - t[i]);
        if (dp) SYN_GRAD_PUT(dp[i], add_p, d);
        if (dt) dt[i] = add_t ? dt[i] - d : -d;
    }
    return SYN_OK;
}

syn_status syn__cpu_mse_loss_fwd(syn_backend *be, syn_node *n) { (void)be; return sq_fwd(n, true); }
syn_status syn__cpu_mse_loss_bwd(syn_backend *be, syn_node *n) { (void)be; return sq_bwd(n, true); }
syn_status syn__cpu_sse_loss_fwd(syn_backend *be, syn_node *n) { (void)be; return sq_fwd(n, false); }
syn_status syn__cpu_sse_loss_bwd(syn_backend *be, syn_node *n) { (void)be; return sq_bwd(n, false); }

/* Checks labels once per forward: a bad label is a clear error, not a wild read. */
static syn_status check_labels(const syn_node *n, const int32_t *y, int64_t N, int64_t C) {
    for (int64_t r = 0; r < N; r++)
        if (y[r] < 0 || y[r] >= C)
            return syn__error(SYN_ERR_ARG, "cross_entropy: label %d at row %lld is outside [0, %lld)", (int)y[r],
                              (long long)r, (long long)C);
    (void)n;
    return SYN_OK;
}

/* sum_c e^(row[c] - mx): float exponentials (syn__vexpf, as the backward's
 * softmax entries), added in double in 8 lanes, then the lanes and the tail
 * in a fixed order. Vectorised, where libm's double exp was a call per entry
 * (10 ms of the char-LSTM's 8192 x 256 logits per pass on 2 cores). */
SYN_CPU_CLONES static double sum_exp(const float *row, int64_t C, float mx) {
    double acc[8] = {0};
    int64_t c = 0;
    for (; c + 8 <= C; c += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)syn__vexpf(row[c + j] - mx);
    double s = 0;
    for (; c < C; c++) s += (double)syn__vexpf(row[c] - mx);
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

/* One row of the cross-entropy gradient, k (softmax(row) - onehot(label)),
 * written or (add) added; inv = 1 / sum_exp(row, C, mx). A loop of its own
 * per case, so that each vectorises. */
SYN_CPU_CLONES static void softmax_grad(float *drow, const float *row, int64_t C, float mx, float inv, float k,
                                        int32_t label, bool add) {
    if (add)
        for (int64_t c = 0; c < C; c++) drow[c] += k * (syn__vexpf(row[c] - mx) * inv);
    else
        for (int64_t c = 0; c < C; c++) drow[c] = k * (syn__vexpf(row[c] - mx) * inv);
    drow[label] -= k;
}

/* logits x: (N, C), labels y: (N)  ->  L = mean_r (logsumexp(x_r) - x_r[y_r]) */
syn_status syn__cpu_cross_entropy_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    const syn_shape *xs = &n->in[0]->shape;
    int64_t N = xs->dim[0], C = xs->dim[1];
    const float *x = syn__cin(n, 0);
    const int32_t *y = n->in[1]->value;
    SYN_TRY(check_labels(n, y, N, C));
    double total = 0;
#pragma omp parallel for reduction(+ : total) if (N * C > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < N; r++) {
        const float *row = x + r * C;
        float mx = -INFINITY;
        for (int64_t c = 0; c < C; c++) mx = fmaxf(mx, row[c]);
        total += (double)mx + log(sum_exp(row, C, mx)) - row[y[r]];
    }
    *(float *)n->value = (float)(total / (double)(N ? N : 1));
    return SYN_OK;
}

/* dx_r += dL / N (softmax(x_r) - onehot(y_r)) */
syn_status syn__cpu_cross_entropy_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    const syn_shape *xs = &n->in[0]->shape;
    int64_t N = xs->dim[0], C = xs->dim[1];
    const float *x = syn__cin(n, 0);
    const int32_t *y = n->in[1]->value;
    float k = *(const float *)n->grad / (float)(N ? N : 1);
    const bool add = syn__grad_add(n, 0);
#pragma omp parallel for if (N * C > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < N; r++) {
        const float *row = x + r * C;
        float *drow = dx + r * C;
        float mx = -INFINITY;
        for (int64_t c = 0; c < C; c++) mx = fmaxf(mx, row[c]);
        softmax_grad(drow, row, C, mx, (float)(1.0 / sum_exp(row, C, mx)), k, y[r], add);
    }
    return SYN_OK;
}

/* L = mean(max(x, 0) - x t + log(1 + e^-|x|)) */
syn_status syn__cpu_bce_with_logits_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    const float *x = syn__cin(n, 0), *t = syn__cin(n, 1);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    double s = 0;
#pragma omp parallel for reduction(+ : s) if (len > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < len; i++) {
        double v = x[i];
        s += (v > 0 ? v : 0) - v * t[i] + log1p(exp(-fabs(v)));
    }
    *(float *)n->value = (float)(s / (double)(len ? len : 1));
    return SYN_OK;
}

/* dx += dL / n (sigmoid(x) - t);  dt += dL / n (-x) */
syn_status syn__cpu_bce_with_logits_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    const float *x = syn__cin(n, 0), *t = syn__cin(n, 1);
    float *dx = syn__cgrad(n, 0), *dt = syn__cgrad(n, 1);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    float k = *(const float *)n->grad / (float)(len ? len : 1);
    const bool add_x = syn__grad_add(n, 0), add_t = syn__grad_add(n, 1);
#pragma omp parallel for if (len > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < len; i++) {
        if (dx) SYN_GRAD_PUT(dx[i], add_x, k * (syn__vsigmoidf(x[i]) - t[i]));
        if (dt) dt[i] = add_t ? dt[i] - k * x[i] : -(k * x[i]);
    }
    return SYN_OK;
}

/* syn_fit's running figures (backend.h's metrics): the first largest logit
 * of each row against its label */
syn_status syn__cpu_metrics(syn_backend *be, const float *loss, const float *logits, const int32_t *labels, int64_t n,
                            int64_t classes, double *acc) {
    (void)be;
    int64_t right = 0;
    for (int64_t r = 0; logits && r < n; r++) {
        const float *row = logits + r * classes;
        int64_t best = 0;
        for (int64_t c = 1; c < classes; c++)
            if (row[c] > row[best]) best = c;
        right += best == labels[r];
    }
    acc[0] += (double)*loss * (double)n;
    acc[1] += (double)right;
    return SYN_OK;
}
