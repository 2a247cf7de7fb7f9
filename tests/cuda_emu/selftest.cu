/* Kernels for the CUDA emulator's own suite (test_emu.c): each entry point
 * launches one kernel on device buffers it is given and returns the launch
 * status. Built only with SYN_CUDA_EMU (it tests the emulator, not Synapse). */
#include <cuda_runtime.h>
#include <stdint.h>

/* A block reduction written as the backend writes them: warp shuffles, then
 * one partial per warp through shared memory. */
static __device__ double block_sum(double v) {
    __shared__ double part[32];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (lane == 0) part[w] = v;
    __syncthreads();
    v = (int)threadIdx.x < nw ? part[threadIdx.x] : 0.0;
    if (w == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* out[b] = sum of x over block b's slice of `per` values. */
static __global__ void sums_kernel(const float *x, double *out, int per) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < per; i += blockDim.x) acc += x[(int64_t)blockIdx.x * per + i];
    acc = block_sum(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = acc;
}

/* Every thread writes its global linear id at its own place. */
static __global__ void ids_kernel(uint32_t *out) {
    const uint32_t bx = blockDim.x, by = blockDim.y, bz = blockDim.z;
    const uint32_t block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const uint32_t t = threadIdx.x + bx * (threadIdx.y + by * threadIdx.z);
    out[block * bx * by * bz + t] = block * 100000u + t;
}

static __global__ void fill_kernel(float *x, int64_t n, float v) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) x[i] = v;
}

static __global__ void count_kernel(unsigned long long *c) { atomicAdd(c, 1ull); }
/* Reads shared memory before any thread of its block wrote it, then writes it. */
static __global__ void fresh_shared_kernel(float *out) {
    __shared__ float s[4];
    if (threadIdx.x == 0) out[blockIdx.x] = s[1];
    __syncthreads();
    s[threadIdx.x & 3] = 1.0f;
    __syncthreads();
}
/* Each thread stamps the order it ran in (a race on a GPU: for the emulator's own test). */
static __global__ void order_kernel(int *stamp, int *next) {
    stamp[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(next, 1);
}

/* Misuse, each reported by the emulator (and a hang or undefined on a GPU). */
static __global__ void split_barrier_kernel(float *x) {
    if (threadIdx.x % 32 < 16) __syncthreads();
    else x[0] = __shfl_xor_sync(0xffffffffu, x[0], 1);
}
static __global__ void exited_lanes_kernel(float *x) {
    if (threadIdx.x % 32 == 31) return;
    x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
}
static __global__ void late_sync_kernel(float *x) {
    if (blockIdx.x == 0) return;
    __syncthreads();
    x[blockIdx.x] = 1.0f;
}

extern "C" {
cudaError_t emu_sums(const float *x, double *out, int blocks, int threads, int per) {
    sums_kernel<<<blocks, threads>>>(x, out, per);
    return cudaGetLastError();
}
cudaError_t emu_ids(uint32_t *out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz) {
    ids_kernel<<<dim3(gx, gy, gz), dim3(bx, by, bz)>>>(out);
    return cudaGetLastError();
}
cudaError_t emu_fill(float *x, int64_t n, float v, unsigned blocks, unsigned threads) {
    fill_kernel<<<blocks, threads, 0, nullptr>>>(x, n, v);
    return cudaGetLastError();
}
cudaError_t emu_count(unsigned long long *c, unsigned blocks, unsigned threads) {
    count_kernel<<<blocks, threads>>>(c);
    return cudaGetLastError();
}
cudaError_t emu_fresh_shared(float *out, unsigned blocks) {
    fresh_shared_kernel<<<blocks, 32>>>(out);
    return cudaGetLastError();
}
cudaError_t emu_order(int *stamp, int *next, unsigned blocks, unsigned threads) {
    order_kernel<<<blocks, threads>>>(stamp, next);
    return cudaGetLastError();
}
cudaError_t emu_split_barrier(float *x) {
    split_barrier_kernel<<<1, 64>>>(x);
    return cudaGetLastError();
}
cudaError_t emu_exited_lanes(float *x) {
    exited_lanes_kernel<<<1, 64>>>(x);
    return cudaGetLastError();
}
cudaError_t emu_late_sync(float *x) {
    late_sync_kernel<<<2, 64>>>(x);
    return cudaGetLastError();
}
}
