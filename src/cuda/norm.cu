/* Normalisation on CUDA: batch norm over dim 1 of (N, C, ...), with its fused
 * epilogue (core/fuse.c), and layer norm over the last dim, forward and
 * backward, as src/cpu/norm.c: statistics in
 * double with fixed-order (deterministic) reductions, the per-element float
 * arithmetic written exactly as the CPU's. The forward saves mean and
 * 1/sqrt(var + eps) in n->aux (per channel for BN, per row for LN). */
#include <math.h>
#include "cuda_common.h"

/* ---- batch norm: kernels ---------------------------------------------------
 * x: (N, C, S)  gamma, beta, running_mean, running_var: (C)  ->  y: like x.
 * The kernels run on a (P, C) grid of channel chunks (cuda_common.h): a
 * statistics kernel writes one partial per chunk (double), and the kernel
 * that applies them first combines the channel's P partials in chunk order,
 * in every block alike. */

typedef syn__chan_geom bn_geom;

/* The fused epilogue, ACT a template constant (SYN_BN_ACT_*): act(t) of
 * t = bn(x) [+ z], and the gradient reaching t, read from y (as the relu
 * and leaky relu kernels; leaky's slope is > 0, so y > 0 where t > 0). */
template <int ACT>
static __device__ __forceinline__ float epi_fwd(float t, float s) {
    return ACT == SYN_BN_ACT_RELU ? (t > 0.0f ? t : 0.0f) : ACT == SYN_BN_ACT_LEAKY ? (t > 0.0f ? t : s * t) : t;
}
template <int ACT>
static __device__ __forceinline__ float epi_grad(const float *dy, const float *y, int64_t o, float s) {
    if (ACT == SYN_BN_ACT_RELU) return y[o] > 0.0f ? dy[o] : 0.0f;
    if (ACT == SYN_BN_ACT_LEAKY) return dy[o] * (y[o] > 0.0f ? 1.0f : s);
    return dy[o];
}

/* One chunk's partial: forward (mean, sum of squared deviations from it),
 * backward (sum dy, sum dy xhat). */
struct bn_part {
    double a, b;
};

/* Training statistics, grid (P, C): part[c P + b] = (mean, sum (x - mean)^2)
 * of chunk b, two passes over it (the second reads it from cache). */
static __global__ void bn_stats_kernel(bn_geom d, const float *x, bn_part *part, int P) {
    __shared__ double s_mu;
    const int64_t M = d.N * d.S, lo = syn__chan_lo(M, P, blockIdx.x), hi = syn__chan_lo(M, P, blockIdx.x + 1);
    for (int64_t c = blockIdx.y; c < d.C; c += gridDim.y) {
        double s = 0.0;
        syn__chan_each(d, c, lo, hi, [&](int64_t o) { s += x[o]; });
        s = syn__block_sum(s);
        if (threadIdx.x == 0) s_mu = hi > lo ? s / (double)(hi - lo) : 0.0;
        __syncthreads();
        const double mu = s_mu;
        double s2 = 0.0;
        syn__chan_each(d, c, lo, hi, [&](int64_t o) {
            double v = (double)x[o] - mu;
            s2 += v * v;
        });
        s2 = syn__block_sum(s2);
        if (threadIdx.x == 0) part[c * P + blockIdx.x] = bn_part{mu, s2};
        __syncthreads(); /* s_mu is rewritten for the next channel */
    }
}

/* The mean and biased variance of M values from P chunk partials, combined
 * in chunk order (Chan et al.'s pairwise update: as exact as two passes). */
static __device__ void bn_combine(const bn_part *p, int P, int64_t M, double *mu, double *var) {
    double count = 0.0, mean = 0.0, m2 = 0.0;
    for (int b = 0; b < P; b++) {
        const double nb = (double)(syn__chan_lo(M, P, b + 1) - syn__chan_lo(M, P, b));
        if (nb == 0.0) continue;
        const double delta = p[b].a - mean, total = count + nb;
        mean += delta * nb / total;
        m2 += p[b].b + delta * delta * count * nb / total;
        count = total;
    }
    *mu = mean;
    *var = m2 / (double)M;
}

/* y = act(a x + b0 [+ z]), a = gamma invstd, b0 = beta - a mean; grid (P, C). Training:
 * the statistics from `part`, running stats r = (1 - m) r + m s (unbiased
 * var) and aux = (mean, invstd) written by chunk 0's block. Eval: the
 * running stats. */
template <int ACT>
static __global__ void bn_apply_kernel(bn_geom d, const float *x, const float *z, const float *gamma,
                                       const float *beta, float *rmean, float *rvar, float *y, float *mean,
                                       float *invstd, const bn_part *part, int P, float mom, float eps, float slope,
                                       int train) {
    __shared__ float s_a, s_b0;
    const int64_t M = d.N * d.S, lo = syn__chan_lo(M, P, blockIdx.x), hi = syn__chan_lo(M, P, blockIdx.x + 1);
    for (int64_t c = blockIdx.y; c < d.C; c += gridDim.y) {
        if (threadIdx.x == 0) {
            double mu, var;
            if (train) {
                bn_combine(part + c * P, P, M, &mu, &var);
                if (blockIdx.x == 0) {
                    rmean[c] = (float)((1.0 - mom) * rmean[c] + mom * mu);
                    rvar[c] = (float)((1.0 - mom) * rvar[c] + mom * var * (double)M / (double)(M - 1));
                }
            } else {
                mu = rmean[c];
                var = rvar[c];
            }
            const float m = (float)mu, is = (float)(1.0 / sqrt(var + eps));
            if (blockIdx.x == 0) {
                mean[c] = m;
                invstd[c] = is;
            }
            const float a = gamma[c] * is;
            s_a = a;
            s_b0 = beta[c] - a * m;
        }
        __syncthreads();
        const float a = s_a, b0 = s_b0;
        if (z)
            syn__chan_each(d, c, lo, hi, [&](int64_t o) { y[o] = epi_fwd<ACT>(a * x[o] + b0 + z[o], slope); });
        else
            syn__chan_each(d, c, lo, hi, [&](int64_t o) { y[o] = epi_fwd<ACT>(a * x[o] + b0, slope); });
        __syncthreads(); /* s_a / s_b0 are rewritten for the next channel */
    }
}

/* Backward partials, grid (P, C): part[c P + b] = (sum g, sum g xhat) over
 * chunk b, xhat = (x - mean) invstd, g = dy through the fused activation. */
template <int ACT>
static __global__ void bn_bwd_stats_kernel(bn_geom d, const float *x, const float *dy, const float *y,
                                           const float *mean, const float *invstd, bn_part *part, int P, float slope) {
    const int64_t M = d.N * d.S, lo = syn__chan_lo(M, P, blockIdx.x), hi = syn__chan_lo(M, P, blockIdx.x + 1);
    for (int64_t c = blockIdx.y; c < d.C; c += gridDim.y) {
        const float m = mean[c], is = invstd[c];
        double sdy = 0.0, sdyx = 0.0;
        syn__chan_each(d, c, lo, hi, [&](int64_t o) {
            const float g = epi_grad<ACT>(dy, y, o, slope);
            sdy += g;
            sdyx += (double)g * ((x[o] - m) * is);
        });
        sdy = syn__block_sum(sdy);
        sdyx = syn__block_sum(sdyx);
        if (threadIdx.x == 0) part[c * P + blockIdx.x] = bn_part{sdy, sdyx};
    }
}

/* dgamma += sum(g xhat); dbeta += sum(g) (chunk 0's block);
 * training: dx += gamma invstd (g - mean(g) - xhat mean(g xhat));
 * eval: dx += gamma invstd g; a fused residual: dz += g. Grid (P, C); dx
 * and dz may be NULL (then P is 1), or the same (z is x: both add). */
template <int ACT>
static __global__ void bn_bwd_apply_kernel(bn_geom d, const float *x, const float *gamma, const float *dy,
                                           const float *y, const float *mean, const float *invstd,
                                           const bn_part *part, int P, float *dx, float *dz, float *dgamma,
                                           float *dbeta, float slope, int train, int add, int add_z, int add_gamma,
                                           int add_beta) {
    __shared__ float s_mdy, s_mdyx;
    const int64_t M = d.N * d.S, lo = syn__chan_lo(M, P, blockIdx.x), hi = syn__chan_lo(M, P, blockIdx.x + 1);
    for (int64_t c = blockIdx.y; c < d.C; c += gridDim.y) {
        if (threadIdx.x == 0) {
            double sdy = 0.0, sdyx = 0.0;
            for (int b = 0; b < P; b++) {
                sdy += part[c * P + b].a;
                sdyx += part[c * P + b].b;
            }
            if (blockIdx.x == 0) {
                if (dgamma) syn__grad_put(&dgamma[c], add_gamma, (float)sdyx);
                if (dbeta) syn__grad_put(&dbeta[c], add_beta, (float)sdy);
            }
            s_mdy = (float)(sdy / (double)M);
            s_mdyx = (float)(sdyx / (double)M);
        }
        __syncthreads();
        if (dz)
            syn__chan_each(d, c, lo, hi, [&](int64_t o) { syn__grad_put(&dz[o], add_z, epi_grad<ACT>(dy, y, o, slope)); });
        if (dx) {
            const float m = mean[c], is = invstd[c], k = gamma[c] * is, mdy = s_mdy, mdyx = s_mdyx;
            if (train)
                syn__chan_each(d, c, lo, hi, [&](int64_t o) {
                    syn__grad_put(&dx[o], add, k * (epi_grad<ACT>(dy, y, o, slope) - mdy - (x[o] - m) * is * mdyx));
                });
            else
                syn__chan_each(d, c, lo, hi,
                               [&](int64_t o) { syn__grad_put(&dx[o], add, k * epi_grad<ACT>(dy, y, o, slope)); });
        }
        __syncthreads(); /* s_mdy / s_mdyx are rewritten for the next channel */
    }
}

/* ---- layer norm: kernels ---------------------------------------------------
 * x: (rows, D)  gamma, beta: (D)  ->  y: like x; one warp per row. */

#define LN_WARPS 8 /* rows per block */

static __global__ void ln_fwd_kernel(const float *x, const float *gamma, const float *beta, float *y, float *mean,
                                     float *invstd, int64_t rows, int64_t D, float eps) {
    const int lane = threadIdx.x & 31;
    for (int64_t r = (int64_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * LN_WARPS) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double s = 0.0;
        for (int64_t j = lane; j < D; j += 32) s += xr[j];
        const double mu = syn__warp_sum(s) / (double)D;
        double s2 = 0.0;
        for (int64_t j = lane; j < D; j += 32) {
            double v = (double)xr[j] - mu;
            s2 += v * v;
        }
        s2 = syn__warp_sum(s2);
        const float m = (float)mu, is = (float)(1.0 / sqrt(s2 / (double)D + eps));
        if (lane == 0) {
            mean[r] = m;
            invstd[r] = is;
        }
        for (int64_t j = lane; j < D; j += 32) yr[j] = gamma[j] * ((xr[j] - m) * is) + beta[j];
    }
}

/* g = dy gamma:  dx += invstd (g - mean(g) - xhat mean(g xhat)); one warp per row */
static __global__ void ln_bwd_dx_kernel(const float *x, const float *gamma, const float *dy, const float *mean,
                                        const float *invstd, float *dx, int64_t rows, int64_t D) {
    const int lane = threadIdx.x & 31;
    for (int64_t r = (int64_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * LN_WARPS) {
        const float *xr = x + r * D, *dyr = dy + r * D;
        float *dxr = dx + r * D;
        const float m = mean[r], is = invstd[r];
        double sg = 0.0, sgx = 0.0;
        for (int64_t j = lane; j < D; j += 32) {
            double gj = (double)dyr[j] * gamma[j];
            sg += gj;
            sgx += gj * ((xr[j] - m) * is);
        }
        sg = syn__warp_sum(sg);
        sgx = syn__warp_sum(sgx);
        const float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
        for (int64_t j = lane; j < D; j += 32) dxr[j] += is * (dyr[j] * gamma[j] - mg - (xr[j] - m) * is * mgx);
    }
}

/* dgamma[j] += sum_r dy xhat;  dbeta[j] += sum_r dy: one thread per column
 * (few rows) ... */
static __global__ void ln_bwd_params_thread_kernel(const float *x, const float *dy, const float *mean,
                                                   const float *invstd, float *dgamma, float *dbeta, int64_t rows,
                                                   int64_t D) {
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < D; j += (int64_t)gridDim.x * blockDim.x) {
        double sg = 0.0, sb = 0.0;
        for (int64_t r = 0; r < rows; r++) {
            float dv = dy[r * D + j];
            sg += (double)dv * ((x[r * D + j] - mean[r]) * invstd[r]);
            sb += dv;
        }
        if (dgamma) dgamma[j] += (float)sg;
        if (dbeta) dbeta[j] += (float)sb;
    }
}

/* ... or one block per column (many rows); fixed order either way. */
static __global__ void ln_bwd_params_block_kernel(const float *x, const float *dy, const float *mean,
                                                  const float *invstd, float *dgamma, float *dbeta, int64_t rows,
                                                  int64_t D) {
    for (int64_t j = blockIdx.x; j < D; j += gridDim.x) {
        double sg = 0.0, sb = 0.0;
        for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
            float dv = dy[r * D + j];
            sg += (double)dv * ((x[r * D + j] - mean[r]) * invstd[r]);
            sb += dv;
        }
        sg = syn__block_sum(sg);
        sb = syn__block_sum(sb);
        if (threadIdx.x == 0) {
            if (dgamma) dgamma[j] += (float)sg;
            if (dbeta) dbeta[j] += (float)sb;
        }
    }
}

/* ---- launchers ------------------------------------------------------------- */

/* The batch-norm kernels' arguments, so that one launcher per epilogue
 * (a template) passes them on. */
struct bn_apply_args {
    bn_geom d;
    const float *x, *z, *gamma, *beta;
    float *rmean, *rvar, *y, *mean, *invstd;
    const bn_part *part;
    int P;
    float mom, eps, slope;
    int train;
};

template <int ACT>
static void bn_apply_launch(const bn_apply_args &a, dim3 grid, cudaStream_t st) {
    bn_apply_kernel<ACT><<<grid, SYN_CUDA_THREADS, 0, st>>>(a.d, a.x, a.z, a.gamma, a.beta, a.rmean, a.rvar, a.y,
                                                             a.mean, a.invstd, a.part, a.P, a.mom, a.eps, a.slope,
                                                             a.train);
}

struct bn_bwd_args {
    bn_geom d;
    const float *x, *gamma, *dy, *y, *mean, *invstd;
    bn_part *part;
    int P;
    float *dx, *dz, *dgamma, *dbeta;
    float slope;
    int train, add, add_z, add_gamma, add_beta;
};

/* The statistics kernel on the whole grid, then the apply kernel on its own */
template <int ACT>
static void bn_bwd_launch(const bn_bwd_args &a, dim3 grid, dim3 apply_grid, cudaStream_t st) {
    bn_bwd_stats_kernel<ACT><<<grid, SYN_CUDA_THREADS, 0, st>>>(a.d, a.x, a.dy, a.y, a.mean, a.invstd, a.part, a.P,
                                                                 a.slope);
    bn_bwd_apply_kernel<ACT><<<apply_grid, SYN_CUDA_THREADS, 0, st>>>(a.d, a.x, a.gamma, a.dy, a.y, a.mean, a.invstd,
                                                                       a.part, a.P, a.dx, a.dz, a.dgamma, a.dbeta,
                                                                       a.slope, a.train, a.add, a.add_z, a.add_gamma,
                                                                       a.add_beta);
}

static bn_geom bn_dims(const syn_node *n) {
    const syn_shape *x = &n->in[0]->shape;
    bn_geom d = {x->dim[0], x->dim[1], 1};
    for (int k = 2; k < x->ndim; k++) d.S *= x->dim[k];
    return d;
}

static unsigned blocks_for(int64_t items) { return (unsigned)(items < 65535 ? (items > 0 ? items : 1) : 65535); }

static int64_t ln_cols(const syn_node *n) {
    const syn_shape *x = &n->in[0]->shape;
    return x->dim[x->ndim - 1];
}

/* ---- entry points ---------------------------------------------------------- */

extern "C" {

syn_status syn__cuda_batch_norm_fwd(syn_backend *be, syn_node *n) {
    bn_geom d = bn_dims(n);
    int64_t M = d.N * d.S;
    bool train = n->g->training;
    n->i[1] = train; /* the backward pass uses the same decision */
    if (train && M < 2) {
        char sb[128];
        return syn__error(SYN_ERR_SHAPE, "batch_norm: training needs more than one value per channel, x is %s",
                          syn_shape_str(&n->in[0]->shape, sb, sizeof sb));
    }
    SYN_CUDA_ENTER(be);
    if (d.C == 0) return SYN_OK;
    cudaStream_t st = syn__cu(be)->stream;
    const int P = syn__chan_chunks(d);
    const dim3 grid = syn__chan_grid(d, P);
    bn_part *part = NULL;
    if (train) {
        SYN_TRY(be->workspace(be, (size_t)d.C * P * sizeof *part, (void **)&part));
        bn_stats_kernel<<<grid, SYN_CUDA_THREADS, 0, st>>>(d, syn__din(n, 0), part, P);
        SYN_CUDA_TRY(cudaGetLastError());
    }
    float *mean = (float *)n->aux, *invstd = mean + d.C;
    const float *z = n->n_in == 6 ? syn__din(n, 5) : NULL;
    const bn_apply_args args = {d, syn__din(n, 0), z, syn__din(n, 1), syn__din(n, 2), (float *)n->in[3]->value,
                                (float *)n->in[4]->value, (float *)n->value, mean, invstd, part, P, n->f[0], n->f[1],
                                n->f[SYN_BN_SLOPE], train ? 1 : 0};
    switch (n->i[SYN_BN_ACT]) {
    case SYN_BN_ACT_RELU: bn_apply_launch<SYN_BN_ACT_RELU>(args, grid, st); break;
    case SYN_BN_ACT_LEAKY: bn_apply_launch<SYN_BN_ACT_LEAKY>(args, grid, st); break;
    default: bn_apply_launch<SYN_BN_ACT_NONE>(args, grid, st); break;
    }
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

syn_status syn__cuda_batch_norm_bwd(syn_backend *be, syn_node *n) {
    float *dx = syn__dgrad(n, 0), *dgamma = syn__dgrad(n, 1), *dbeta = syn__dgrad(n, 2);
    float *dz = n->n_in == 6 ? syn__dgrad(n, 5) : NULL;
    SYN_CUDA_ENTER(be);
    bn_geom d = bn_dims(n);
    cudaStream_t st = syn__cu(be)->stream;
    for (int k = 3; k < 5; k++) /* the running stats get no gradient: a fresh one is zero */
        if (syn__dgrad(n, k) && !syn__grad_add(n, k) && d.C > 0)
            SYN_CUDA_TRY(cudaMemsetAsync(syn__dgrad(n, k), 0, (size_t)d.C * sizeof(float), st));
    if ((!dx && !dz && !dgamma && !dbeta) || d.C == 0) return SYN_OK;
    const int P = syn__chan_chunks(d);
    const dim3 grid = syn__chan_grid(d, P);
    bn_part *part;
    SYN_TRY(be->workspace(be, (size_t)d.C * P * sizeof *part, (void **)&part));
    const float *x = syn__din(n, 0), *gamma = syn__din(n, 1), *dy = (const float *)n->grad;
    const float *y = (const float *)n->value; /* read with a fused activation only */
    const float *mean = (const float *)n->aux, *invstd = mean + d.C;
    const float slope = n->f[SYN_BN_SLOPE];
    /* without dx and dz only chunk 0's block has work */
    const dim3 apply_grid(dx || dz ? grid.x : 1u, grid.y);
    const int train = n->i[1] ? 1 : 0, add_z = dz && syn__grad_add(n, 5);
    const bn_bwd_args args = {d, x, gamma, dy, y, mean, invstd, part, P, dx, dz, dgamma, dbeta, slope, train,
                              syn__grad_add(n, 0), add_z, syn__grad_add(n, 1), syn__grad_add(n, 2)};
    switch (n->i[SYN_BN_ACT]) {
    case SYN_BN_ACT_RELU: bn_bwd_launch<SYN_BN_ACT_RELU>(args, grid, apply_grid, st); break;
    case SYN_BN_ACT_LEAKY: bn_bwd_launch<SYN_BN_ACT_LEAKY>(args, grid, apply_grid, st); break;
    default: bn_bwd_launch<SYN_BN_ACT_NONE>(args, grid, apply_grid, st); break;
    }
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

syn_status syn__cuda_layer_norm_fwd(syn_backend *be, syn_node *n) {
    int64_t D = ln_cols(n);
    if (D == 0) return SYN_OK;
    int64_t rows = syn__numel(n) / D;
    if (rows == 0) return SYN_OK;
    SYN_CUDA_ENTER(be);
    float *mean = (float *)n->aux, *invstd = mean + rows;
    ln_fwd_kernel<<<blocks_for((rows + LN_WARPS - 1) / LN_WARPS), LN_WARPS * 32, 0, syn__cu(be)->stream>>>(
        syn__din(n, 0), syn__din(n, 1), syn__din(n, 2), (float *)n->value, mean, invstd, rows, D, n->f[0]);
    SYN_CUDA_TRY(cudaGetLastError());
    return SYN_OK;
}

syn_status syn__cuda_layer_norm_bwd(syn_backend *be, syn_node *n) {
    int64_t D = ln_cols(n);
    if (D == 0) return SYN_OK;
    int64_t rows = syn__numel(n) / D;
    float *dx = syn__dgrad(n, 0), *dgamma = syn__dgrad(n, 1), *dbeta = syn__dgrad(n, 2);
    if (rows == 0 || (!dx && !dgamma && !dbeta)) return SYN_OK;
    SYN_CUDA_ENTER(be);
    cudaStream_t s = syn__cu(be)->stream;
    const float *x = syn__din(n, 0), *gamma = syn__din(n, 1), *dy = (const float *)n->grad;
    const float *mean = (const float *)n->aux, *invstd = mean + rows;
    if (dx) {
        ln_bwd_dx_kernel<<<blocks_for((rows + LN_WARPS - 1) / LN_WARPS), LN_WARPS * 32, 0, s>>>(x, gamma, dy, mean,
                                                                                              invstd, dx, rows, D);
        SYN_CUDA_TRY(cudaGetLastError());
    }
    if (dgamma || dbeta) {
        if (rows <= 64)
            ln_bwd_params_thread_kernel<<<syn__cuda_grid(D, SYN_CUDA_THREADS), SYN_CUDA_THREADS, 0, s>>>(
                x, dy, mean, invstd, dgamma, dbeta, rows, D);
        else
            ln_bwd_params_block_kernel<<<blocks_for(D), SYN_CUDA_THREADS, 0, s>>>(x, dy, mean, invstd, dgamma, dbeta,
                                                                                rows, D);
        SYN_CUDA_TRY(cudaGetLastError());
    }
    return SYN_OK;
}

} /* extern "C" */
