/* Device memory figures for the benchmark harness (syn_device_memory). */
#include "bench_internal.h"

bool syn__bench_device_mem(syn_device d, size_t *in_use, size_t *peak) {
    if (d.type != SYN_DEVICE_CUDA) return false;
    if (syn_device_memory(d, in_use, peak) == SYN_OK) return true;
    syn_clear_error();
    return false;
}
