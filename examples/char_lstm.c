/* A character-level language model: an LSTM reads Debian's fortunes one byte
 * at a time and learns to predict the next byte. Trained with truncated
 * back-propagation through time, measured in bits per byte on held-out text
 * (8 is a blind guess among 256 bytes; lower is better), then used to
 * autocomplete a prompt.
 * Usage: example_char_lstm [steps] [prompt]
 *   defaults: 2000 steps (about 3.5 minutes on 2 CPU cores), the prompt "Q: What is".
 * Needs the fortunes (Debian's package `fortunes`, /usr/share/games/fortunes).
 * Every call that can fail returns a syn_status; syn_last_error() says why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "synapse/synapse.h"

#define VAL_BYTES 50000 /* held-out text measured: enough for two decimals, quick to run */
#define COMPLETION 160   /* bytes generated after the prompt */

/* Prints the library's message for a failed call and jumps to cleanup. */
#define CHECK(expr)                                                                   \
    do {                                                                              \
        syn_status s_ = (expr);                                                       \
        if (s_ != SYN_OK) {                                                           \
            fprintf(stderr, "%s failed: %s\n", #expr, syn_last_error());              \
            goto done;                                                                \
        }                                                                             \
    } while (0)

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 2000;
    const char *prompt = argc > 2 ? argv[2] : "Q: What is";
    int rc = 1;
    if (steps < 1 || argc > 3 || prompt[0] == '\0') {
        fprintf(stderr, "usage: %s [steps >= 1] [prompt]\n", argv[0]);
        return 2;
    }
    uint8_t *text = NULL;
    syn_charlm *lm = NULL;

    /* 1. The corpus: every fortune file (but the offensive and ASCII-art
     *    ones) as one byte string. The first 90% trains; the validation
     *    text is VAL_BYTES of the last 10%, which the model never sees. */
    size_t n = 0;
    CHECK(syn_text_load_fortunes(NULL, &text, &n));
    size_t n_train = n - n / 10, n_val = n - n_train < VAL_BYTES ? n - n_train : VAL_BYTES;
    const uint8_t *val = text + n_train;

    /* 2. The model: byte -> 64-wide embedding -> one LSTM layer of 256 ->
     *    256 logits for the next byte. The first GPU if there is one, else
     *    the CPU (syn_cuda(0) / syn_cpu() to choose). */
    syn_device dev = syn_device_count(SYN_DEVICE_CUDA) > 0 ? syn_cuda(0) : syn_cpu();
    syn_charlm_config mc = {.mode = SYN_RNN_LSTM, .embed = 64, .hidden = 256, .layers = 1, .dropout = 0.0f};
    CHECK(syn_charlm_create(&mc, dev, 1, &lm));
    char dev_name[32];
    printf("char-LSTM on %s: %lld parameters; fortunes: %zu bytes, %zu train, %zu validation\n",
           syn_device_str(dev, dev_name, sizeof dev_name), (long long)syn_params_numel(syn_charlm_params(lm)), n,
           n_train, n_val);

    /* 3. Training: the training text is cut into `batch` contiguous streams
     *    read side by side, `seq` bytes per step; the LSTM's state carries
     *    over from one step to the next, so it can remember more than `seq`
     *    bytes although gradients flow back only `seq`. Adam with a gradient
     *    norm clip of 5 (recurrent nets have occasional gradient spikes).
     *    Progress lines (train and validation bits per byte) go to stderr. */
    double bpb0;
    CHECK(syn_charlm_bits_per_byte(lm, val, n_val, 32, 64, &bpb0));
    printf("untrained: validation %.3f bits/byte\n", bpb0);
    syn_charlm_train_config tc = {0};
    tc.batch = 32;
    tc.seq = 64;
    tc.steps = steps;
    tc.lr = 3e-3f;
    tc.clip = 5.0f;
    tc.eval_every = steps / 5; /* 0 (a short run): only at the end */
    tc.seed = 1;
    tc.out = stderr;
    syn_charlm_result res;
    CHECK(syn_charlm_train(lm, text, n_train, val, n_val, &tc, &res));
    printf("after %lld steps (%.1f s, %.0f bytes/s): train %.3f, validation %.3f bits/byte\n", (long long)res.steps,
           res.seconds, res.bytes_per_s, (double)res.train_bpb, (double)res.val_bpb);

    /* 4. Autocomplete: the model reads the prompt, then writes the most likely
     *    byte each time (greedy); then the same with sampling at temperature
     *    0.8, which trades likelihood for variety. */
    uint8_t out[COMPLETION];
    syn_sampling greedy = {.temperature = 0.0f};
    CHECK(syn_charlm_generate(lm, (const uint8_t *)prompt, strlen(prompt), COMPLETION, &greedy, out));
    printf("greedy:  %s%.*s\n", prompt, COMPLETION, (const char *)out);
    syn_sampling warm = {.temperature = 0.8f, .top_k = 0, .seed = 7};
    CHECK(syn_charlm_generate(lm, (const uint8_t *)prompt, strlen(prompt), COMPLETION, &warm, out));
    printf("sampled: %s%.*s\n", prompt, COMPLETION, (const char *)out);
    rc = 0;

done:
    syn_charlm_free(lm);
    free(text);
    return rc;
}
