/* The CUDA emulator: cub::DeviceRadixSort::SortPairs as a stable sort on the
 * bits [begin_bit, end_bit) of the keys, queued on the stream. Like CUB, a
 * call without temporary storage only says how much it needs. */
#ifndef SYN_EMU_CUB_RADIX_SORT
#define SYN_EMU_CUB_RADIX_SORT
#include "../../cuda_runtime.h"
#include <algorithm>
#include <vector>
namespace cub {
struct DeviceRadixSort {
    /* The sort itself, when the queue reaches it. */
    template <class K, class V>
    static void sort(const K *keys_in, K *keys_out, const V *values_in, V *values_out, int n, int begin_bit,
                     int end_bit) {
        const int width = end_bit - begin_bit;
        auto bits = [&](K k) {
            unsigned long long u = (unsigned long long)k >> begin_bit;
            return width < 64 ? u & ((1ull << width) - 1) : u;
        };
        std::vector<int> order((size_t)n);
        for (int i = 0; i < n; i++) order[(size_t)i] = i;
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return bits(keys_in[a]) < bits(keys_in[b]); });
        std::vector<K> k2((size_t)n);
        std::vector<V> v2((size_t)n);
        for (int i = 0; i < n; i++) {
            k2[(size_t)i] = keys_in[order[(size_t)i]];
            v2[(size_t)i] = values_in[order[(size_t)i]];
        }
        std::copy(k2.begin(), k2.end(), keys_out);
        std::copy(v2.begin(), v2.end(), values_out);
    }
    template <class K, class V>
    static cudaError_t SortPairs(void *temp, size_t &temp_bytes, const K *keys_in, K *keys_out, const V *values_in,
                                 V *values_out, int n, int begin_bit = 0, int end_bit = sizeof(K) * 8,
                                 cudaStream_t stream = nullptr) {
        (void)stream;
        if (n < 0 || begin_bit < 0 || end_bit > (int)sizeof(K) * 8 || begin_bit >= end_bit)
            return cudaErrorInvalidValue;
        if (!temp) {
            temp_bytes = 1024 + (size_t)n * (sizeof(K) + sizeof(V));
            return cudaSuccess;
        }
        syn_emu_check_range(temp, temp_bytes, "cub sort temporary storage");
        if (temp_bytes < 1024 + (size_t)n * (sizeof(K) + sizeof(V))) return cudaErrorInvalidValue;
        if (n == 0) return cudaSuccess;
        syn_emu_check_range(keys_in, (size_t)n * sizeof(K), "cub sort keys in");
        syn_emu_check_range(keys_out, (size_t)n * sizeof(K), "cub sort keys out");
        syn_emu_check_range(values_in, (size_t)n * sizeof(V), "cub sort values in");
        syn_emu_check_range(values_out, (size_t)n * sizeof(V), "cub sort values out");
        syn_emu_trace("cub::DeviceRadixSort::SortPairs %d", n);
        syn_emu_enqueue([=] { sort(keys_in, keys_out, values_in, values_out, n, begin_bit, end_bit); });
        return cudaSuccess;
    }
};
} // namespace cub
#endif
