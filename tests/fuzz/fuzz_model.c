/* libFuzzer target for the model-file parser (libinih, every key and value,
 * shape inference); seed corpus in tests/fuzz/model/, dictionary
 * tests/fuzz/model.dict:
 *   cmake --build build-fuzz --target fuzz_model
 *   mkdir -p /tmp/corpus-model && ./build-fuzz/fuzz_model -runs=1000000 -max_len=8192 \
 *       -dict=tests/fuzz/model.dict /tmp/corpus-model tests/fuzz/model
 * The input is the file's text (syn_model_desc_parse; a NUL ends it early).
 * Included by tests/test_fuzz_corpus.c (SYN_FUZZ_REPLAY) to replay the corpus.
 * Every input must give OK or SYN_ERR_FORMAT/OOM with a message naming the
 * file, never a crash, a leak or a read out of bounds; an accepted model must
 * fit its input, and re-checking it at other inputs must fail cleanly or fit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "nn/model_desc.h"

static void fuzz_model_shapes(const syn_model_desc *d, syn_shape in) {
    int n = syn_model_desc_layers(d);
    syn_shape *out = malloc((size_t)n * sizeof *out);
    double *flops = malloc((size_t)n * sizeof *flops);
    if (!out || !flops) abort();
    if (syn__model_check(d, in, out, flops) == SYN_OK)
        for (int i = 0; i < n; i++) {
            if (out[i].ndim != 1 && out[i].ndim != 3) abort();
            for (int k = 0; k < out[i].ndim; k++)
                if (out[i].dim[k] < 1) abort();
            if (!(flops[i] >= 0.0)) abort();
        }
    free(out);
    free(flops);
}

int syn_fuzz_model(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    syn_model_desc *d = (syn_model_desc *)&d; /* poisoned: must be reset */
    syn_status s = syn_model_desc_parse(text, "fuzz.cfg", &d);
    free(text);
    if (s != SYN_OK) {
        const char *msg = syn_last_error();
        if (d != NULL || !msg || !strstr(msg, "fuzz.cfg") || (s != SYN_ERR_FORMAT && s != SYN_ERR_OOM)) abort();
        return 0;
    }
    /* Accepted: at least one layer, an input (C,H,W) or (D), and shapes that
     * fit it; other inputs either fit or fail without changing d. */
    syn_shape in;
    int classes;
    if (syn_model_desc_input(d, &in, &classes) != SYN_OK) abort();
    if (syn_model_desc_layers(d) < 1 || (in.ndim != 1 && in.ndim != 3) || classes < 0) abort();
    if (!syn_model_desc_name(d)) abort();
    fuzz_model_shapes(d, in);
    const syn_shape others[] = {syn_shape3(3, 32, 32), syn_shape3(1, 1, 1), syn_shape1(784)};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        if (syn_model_desc_set_input(d, others[i]) != SYN_OK) {
            syn_shape now;
            syn_model_desc_input(d, &now, NULL);
            if (!syn_shape_equal(&now, &in)) abort();
        } else {
            in = others[i];
            fuzz_model_shapes(d, in);
        }
    }
    syn_model_desc_free(d);
    return 0;
}

#ifndef SYN_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return syn_fuzz_model(data, size); }
#endif
