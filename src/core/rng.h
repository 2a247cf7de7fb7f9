/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"),
 * counter-based: the value at (key, stream, index) is a pure function, so the
 * CPU and CUDA backends produce the same stream for the same seed and any
 * element can be computed independently. Usable from C and CUDA. */
#ifndef SYN_RNG_H
#define SYN_RNG_H

#include <stdint.h>

#ifdef __CUDACC__
#define SYN_HD __host__ __device__ __forceinline__
#else
#define SYN_HD static inline
#endif

typedef struct { uint32_t v[4]; } syn__philox_block;

SYN_HD void syn__mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

/* 4 random words for counter (lo, hi, stream lo, stream hi) under a 64-bit key. */
SYN_HD syn__philox_block syn__philox(uint64_t key, uint64_t stream, uint64_t counter) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        syn__mulhilo(0xD2511F53u, c0, &hi0, &lo0);
        syn__mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    syn__philox_block b = {{c0, c1, c2, c3}};
    return b;
}

/* Uniform in [0, 1) with 24 random bits. */
SYN_HD float syn__u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* The index-th uniform of stream (key, stream): word index%4 of block index/4. */
SYN_HD float syn__philox_uniform(uint64_t key, uint64_t stream, uint64_t index) {
    syn__philox_block b = syn__philox(key, stream, index >> 2);
    return syn__u32_to_unit(b.v[index & 3]);
}

/* Streams: independent uses of one seed. */
enum {
    SYN_STREAM_INIT = 0x100000000ull,    /* + parameter index */
    SYN_STREAM_DROPOUT = 0x200000000ull,
    SYN_STREAM_SHUFFLE = 0x300000000ull,
    SYN_STREAM_AUGMENT = 0x400000000ull  /* + epoch; counter = dataset row */
};

#endif
