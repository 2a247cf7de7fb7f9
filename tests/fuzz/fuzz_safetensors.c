/* libFuzzer target for the safetensors reader; seed corpus in
 * tests/fuzz/safetensors/, dictionary tests/fuzz/safetensors.dict:
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DSYN_FUZZ=ON -DSYN_CUDA=OFF -DSYN_TESTS=OFF
 *   cmake --build build-fuzz --target fuzz_safetensors
 *   mkdir -p /tmp/corpus && ./build-fuzz/fuzz_safetensors -runs=1000000 \
 *       -dict=tests/fuzz/safetensors.dict /tmp/corpus tests/fuzz/safetensors
 * The entry point also serves tests/test_fuzz_corpus.c, which replays the
 * corpus in the normal build (it defines SYN_FUZZ_REPLAY and includes this
 * file). Every input must give OK or an error status with a message, never a
 * crash, a leak or a read out of bounds; what the reader accepts must keep
 * its invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/io_internal.h"

int syn_fuzz_safetensors(const uint8_t *data, size_t size) {
    syn_safetensors *f = (syn_safetensors *)&f; /* poisoned: must be reset */
    syn_status s = syn__safetensors_parse(data, size, "fuzz", &f);
    if (s != SYN_OK) {
        const char *msg = syn_last_error();
        if (f != NULL || !msg || !strstr(msg, "fuzz: ") || (s != SYN_ERR_FORMAT && s != SYN_ERR_OOM)) abort();
        return 0;
    }
    /* Accepted: every tensor is in bounds, sized by its shape, aligned, and
     * found again by name; the bytes add up to the input's data area. */
    size_t total = 0;
    unsigned sum = 0;
    for (int i = 0; i < syn_safetensors_count(f); i++) {
        const char *name;
        syn_dtype dt;
        syn_shape sh;
        const void *d;
        size_t bytes;
        if (syn_safetensors_get(f, i, &name, &dt, &sh, &d, &bytes) != SYN_OK) abort();
        if (sh.ndim < 0 || sh.ndim > SYN_MAX_DIMS) abort();
        if ((size_t)syn_shape_numel(&sh) * syn_dtype_size(dt) != bytes) abort();
        if ((uintptr_t)d % syn_dtype_size(dt) != 0) abort();
        for (size_t b = 0; b < bytes; b++) sum += ((const unsigned char *)d)[b]; /* ASan checks the reads */
        const void *d2;
        if (syn_safetensors_find(f, name, NULL, NULL, &d2, NULL) != SYN_OK) abort();
        total += bytes;
    }
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | data[i];
    if (8 + hn + total != size) abort();
    (void)syn_safetensors_metadata(f, "format");
    syn_safetensors_close(f);
    return (int)(sum & 0); /* libFuzzer wants 0 */
}

#ifndef SYN_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return syn_fuzz_safetensors(data, size); }
#endif
