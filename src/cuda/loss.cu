/* Losses on CUDA, as src/cpu/loss.c: MSE (mean), SSE (sum), cross-entropy from
 * logits with int32 labels, binary cross-entropy with logits. Scalars come
 * from a deterministic two-pass reduction in double; backward kernels read
 * dL (n->grad, a device scalar) themselves: no host round trip.
 * The one sync point: cross-entropy's forward waits for its label check. */
#include <math.h>
#include "cuda_common.h"

/* ---- device helpers: per-element terms of the sums ---------------------------- */

/* (p - t)^2 in double */
struct sq_term {
    const float *p, *t;
    __device__ double operator()(int64_t i) const {
        double d = (double)p[i] - t[i];
        return d * d;
    }
};

/* max(x, 0) - x t + log(1 + e^-|x|) in double */
struct bce_term {
    const float *x, *t;
    __device__ double operator()(int64_t i) const {
        double v = x[i];
        return (v > 0 ? v : 0) - v * t[i] + log1p(exp(-fabs(v)));
    }
};

/* dp += k (p - t), dt -= k (p - t), k = 2 dL / (n or 1) */
struct sq_bwd_op {
    const float *p, *t, *dl;
    float *dp, *dt;
    float div; /* n for the mean, 1 for the sum */
    int add_p, add_t;
    __device__ void operator()(int64_t i) const {
        float k = 2.0f * dl[0] / div;
        float d = k * (p[i] - t[i]);
        if (dp) syn__grad_put(&dp[i], add_p, d);
        if (dt) dt[i] = add_t ? dt[i] - d : -d;
    }
};

/* dx += k (sigmoid(x) - t);  dt -= k x;  k = dL / n */
struct bce_bwd_op {
    const float *x, *t, *dl;
    float *dx, *dt;
    float div;
    int add_x, add_t;
    __device__ void operator()(int64_t i) const {
        float k = dl[0] / div;
        if (dx) syn__grad_put(&dx[i], add_x, k * (1.0f / (1.0f + expf(-x[i])) - t[i]));
        if (dt) dt[i] = add_t ? dt[i] - k * x[i] : -(k * x[i]);
    }
};

/* The row's label, clamped into [0, C); a bad one records its row in *flag
 * (the smallest such row wins). */
static __device__ __forceinline__ int64_t ce_label(const int32_t *y, int64_t r, int64_t C, unsigned long long *flag) {
    int32_t l = y[r];
    if (l < 0 || (int64_t)l >= C) {
        if (flag) atomicMin(flag, (unsigned long long)r);
        return l < 0 ? 0 : C - 1;
    }
    return l;
}

/* ---- kernels --------------------------------------------------------------- */

/* logits x: (N, C), labels y: (N) -> partials[block] = sum over the block's rows of
 * logsumexp(x_r) - x_r[y_r] (double). One warp per row. */
static __global__ void ce_fwd_kernel(const float *x, const int32_t *y, int64_t N, int64_t C, double *partials,
                                     unsigned long long *flag) {
    const int lane = threadIdx.x & 31, wpb = blockDim.x >> 5;
    double acc = 0.0;
    for (int64_t r = (int64_t)blockIdx.x * wpb + (threadIdx.x >> 5); r < N; r += (int64_t)gridDim.x * wpb) {
        const float *row = x + r * C;
        float mx = -INFINITY;
        for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, row[c]);
        mx = syn__warp_max(mx);
        double s = 0.0;
        for (int64_t c = lane; c < C; c += 32) s += exp((double)(row[c] - mx));
        s = syn__warp_sum(s);
        if (lane == 0) acc += (double)mx + log(s) - row[ce_label(y, r, C, flag)];
    }
    acc = syn__block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/* dx_r += dL / N (softmax(x_r) - onehot(y_r)); one warp per row */
static __global__ void ce_bwd_kernel(const float *x, const int32_t *y, const float *dl, float *dx, int64_t N, int64_t C,
                                     int add) {
    const int lane = threadIdx.x & 31, wpb = blockDim.x >> 5;
    const float k = dl[0] / (float)(N ? N : 1);
    for (int64_t r = (int64_t)blockIdx.x * wpb + (threadIdx.x >> 5); r < N; r += (int64_t)gridDim.x * wpb) {
        const float *row = x + r * C;
        float *drow = dx + r * C;
        float mx = -INFINITY;
        for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, row[c]);
        mx = syn__warp_max(mx);
        double s = 0.0;
        for (int64_t c = lane; c < C; c += 32) s += exp((double)(row[c] - mx));
        s = syn__warp_sum(s);
        float inv = (float)(1.0 / s);
        int64_t label = ce_label(y, r, C, NULL);
        for (int64_t c = lane; c < C; c += 32)
            syn__grad_put(&drow[c], add, k * (expf(row[c] - mx) * inv - (c == label ? 1.0f : 0.0f)));
    }
}

/* ---- launchers ------------------------------------------------------------- */

/* L = sum (p - t)^2, divided by n for the mean */
static syn_status sq_fwd(syn_backend *be, syn_node *n, bool mean) {
    SYN_CUDA_ENTER(be);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    sq_term f = {syn__din(n, 0), syn__din(n, 1)};
    SYN_CUDA_TRY(syn__sum_launch(syn__cu(be), f, len, (float *)n->value, mean ? (double)(len ? len : 1) : 1.0, 0));
    return SYN_OK;
}

/* dp += dL 2 (p - t) / n;  dt -= the same */
static syn_status sq_bwd(syn_backend *be, syn_node *n, bool mean) {
    float *dp = syn__dgrad(n, 0), *dt = syn__dgrad(n, 1);
    if (!dp && !dt) return SYN_OK;
    SYN_CUDA_ENTER(be);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    sq_bwd_op op = {syn__din(n, 0), syn__din(n, 1), (const float *)n->grad, dp, dt,
                    mean ? (float)(len ? len : 1) : 1.0f, syn__grad_add(n, 0), syn__grad_add(n, 1)};
    SYN_CUDA_TRY(syn__map_launch(op, len, syn__cu(be)->stream));
    return SYN_OK;
}

/* ---- entry points ---------------------------------------------------------- */

/* syn_fit's running figures (backend.h's metrics): one block; each thread
 * takes rows, the first largest logit of each (as the host loop did) */
static __global__ void metrics_kernel(const float *loss, const float *logits, const int32_t *labels, int64_t n,
                                      int64_t classes, double *acc) {
    double right = 0.0;
    if (logits)
        for (int64_t r = threadIdx.x; r < n; r += blockDim.x) {
            const float *row = logits + r * classes;
            int64_t best = 0;
            for (int64_t c = 1; c < classes; c++)
                if (row[c] > row[best]) best = c;
            right += best == labels[r] ? 1.0 : 0.0;
        }
    right = syn__block_sum(right);
    if (threadIdx.x == 0) {
        acc[0] += (double)*loss * (double)n;
        acc[1] += right;
    }
}

extern "C" {

/* p, t: (dims) -> L = mean (p - t)^2 */
syn_status syn__cuda_mse_loss_fwd(syn_backend *be, syn_node *n) { return sq_fwd(be, n, true); }
syn_status syn__cuda_mse_loss_bwd(syn_backend *be, syn_node *n) { return sq_bwd(be, n, true); }
/* p, t: (dims) -> L = sum (p - t)^2 */
syn_status syn__cuda_sse_loss_fwd(syn_backend *be, syn_node *n) { return sq_fwd(be, n, false); }
syn_status syn__cuda_sse_loss_bwd(syn_backend *be, syn_node *n) { return sq_bwd(be, n, false); }

/* logits x: (N, C), labels y: (N) -> L = mean_r (logsumexp(x_r) - x_r[y_r]).
 * A label outside [0, C) is an error, as on the CPU: the kernel clamps it (no
 * wild read) and records its row; the host then waits for the stream to read
 * that flag. Labels fed from the host carry their range (syn_node.i32_known):
 * when it lies within [0, C) the flag is not read, and the step needs no
 * synchronisation. */
syn_status syn__cuda_cross_entropy_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    syn__cuda *cu = syn__cu(be);
    const syn_shape *xs = &n->in[0]->shape;
    int64_t N = xs->dim[0], C = xs->dim[1];
    const float *x = syn__din(n, 0);
    const int32_t *y = (const int32_t *)n->in[1]->value;
    float *out = (float *)n->value;
    if (N == 0 || C == 0) {
        SYN_CUDA_TRY(cudaMemsetAsync(out, 0, sizeof(float), cu->stream));
        if (N > 0) /* no class a label could name */
            return syn__error(SYN_ERR_ARG, "cross_entropy: %lld rows but no classes", (long long)N);
        return SYN_OK;
    }
    /* trusted labels never set the flag, which then is neither reset nor read */
    const bool trusted = syn__i32_known_within(n->in[1], 0, C - 1);
    if (!trusted) SYN_CUDA_TRY(cudaMemsetAsync(cu->flag, 0xff, sizeof *cu->flag, cu->stream)); /* no bad row yet */
    const int wpb = SYN_CUDA_THREADS / 32;
    int64_t b = (N + wpb - 1) / wpb;
    int blocks = (int)(b < SYN_CUDA_RED_BLOCKS ? b : SYN_CUDA_RED_BLOCKS);
    ce_fwd_kernel<<<blocks, SYN_CUDA_THREADS, 0, cu->stream>>>(x, y, N, C, cu->partials, cu->flag);
    SYN_CUDA_TRY(cudaGetLastError());
    syn__final_sum_kernel<<<1, SYN_CUDA_THREADS, 0, cu->stream>>>(cu->partials, blocks, out, (double)N, 0);
    SYN_CUDA_TRY(cudaGetLastError());
    if (trusted) return SYN_OK;
    SYN_CUDA_TRY(cudaMemcpyAsync(cu->flag_host, cu->flag, sizeof *cu->flag, cudaMemcpyDeviceToHost, cu->stream));
    SYN_CUDA_TRY(cudaStreamSynchronize(cu->stream));
    unsigned long long bad = *cu->flag_host;
    if (bad != ~0ull) {
        int32_t label = 0;
        SYN_CUDA_TRY(cudaMemcpyAsync(&label, y + bad, sizeof label, cudaMemcpyDeviceToHost, cu->stream));
        SYN_CUDA_TRY(cudaStreamSynchronize(cu->stream));
        return syn__error(SYN_ERR_ARG, "cross_entropy: label %d at row %llu is outside [0, %lld)", (int)label, bad,
                          (long long)C);
    }
    return SYN_OK;
}

/* dx_r += dL / N (softmax(x_r) - onehot(y_r)) */
syn_status syn__cuda_cross_entropy_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0);
    if (!dx) return SYN_OK;
    SYN_CUDA_ENTER(be);
    const syn_shape *xs = &n->in[0]->shape;
    int64_t N = xs->dim[0], C = xs->dim[1];
    if (N == 0 || C == 0) return SYN_OK;
    ce_bwd_kernel<<<syn__cuda_grid(N, SYN_CUDA_THREADS / 32), SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(
        syn__din(n, 0), (const int32_t *)n->in[1]->value, (const float *)n->grad, dx, N, C, syn__grad_add(n, 0));
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

/* logits x, targets t: (dims) -> L = mean(max(x, 0) - x t + log(1 + e^-|x|)) */
syn_status syn__cuda_bce_with_logits_fwd(syn_backend *be, syn_node *n) {
    SYN_CUDA_ENTER(be);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    bce_term f = {syn__din(n, 0), syn__din(n, 1)};
    SYN_CUDA_TRY(syn__sum_launch(syn__cu(be), f, len, (float *)n->value, (double)(len ? len : 1), 0));
    return SYN_OK;
}

/* dx += dL / n (sigmoid(x) - t);  dt += dL / n (-x) */
syn_status syn__cuda_bce_with_logits_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0), *dt = syn__dgrad(n, 1);
    if (!dx && !dt) return SYN_OK;
    SYN_CUDA_ENTER(be);
    int64_t len = syn_shape_numel(&n->in[0]->shape);
    bce_bwd_op op = {syn__din(n, 0), syn__din(n, 1), (const float *)n->grad, dx, dt, (float)(len ? len : 1),
                     syn__grad_add(n, 0), syn__grad_add(n, 1)};
    SYN_CUDA_TRY(syn__map_launch(op, len, syn__cu(be)->stream));
    return SYN_OK;
}

syn_status syn__cuda_metrics(syn_backend *be, const float *loss, const float *logits, const int32_t *labels, int64_t n,
                             int64_t classes, double *acc) {
    SYN_CUDA_ENTER(be);
    metrics_kernel<<<1, SYN_CUDA_THREADS, 0, syn__cu(be)->stream>>>(loss, logits, labels, n, classes, acc);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

} /* extern "C" */
