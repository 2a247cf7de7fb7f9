/* Character-level language models on bytes: a recurrent network (embedding,
 * stacked LSTM/GRU/RNN, a linear decoder to 256 logits) trained with
 * truncated back-propagation through time, evaluated in bits per byte, and
 * used to continue a prompt (autocomplete) greedily or by sampling. */
#ifndef SYNAPSE_TEXT_H
#define SYNAPSE_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dist.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Debian's fortunes corpus: every fortune file in `dir` (NULL:
 * $SYN_FORTUNES_DIR if set, else /usr/share/games/fortunes) except art,
 * ascii-art and off, sorted by name, concatenated. *text: owned, free(). */
SYN_API syn_status syn_text_load_fortunes(const char *dir, uint8_t **text, size_t *len);
/* Any file's bytes. *text: owned, free(). */
SYN_API syn_status syn_text_load_file(const char *path, uint8_t **text, size_t *len);

typedef struct {
    syn_rnn_mode mode; /* default (0) is SYN_RNN_TANH: set it; the CLI's default is LSTM */
    int64_t embed;     /* embedding width */
    int64_t hidden;
    int layers;
    float dropout;     /* between recurrent layers */
} syn_charlm_config;

typedef struct syn_charlm syn_charlm;

/* Parameters "embedding.weight", "rnn.weight_ih_l0" ..., "decoder.weight",
 * "decoder.bias", initialised from seed. owned: free with syn_charlm_free. */
SYN_API syn_status syn_charlm_create(const syn_charlm_config *cfg, syn_device dev, uint64_t seed, syn_charlm **out);
SYN_API void syn_charlm_free(syn_charlm *m);
SYN_API syn_params *syn_charlm_params(syn_charlm *m);
SYN_API syn_charlm_config syn_charlm_get_config(const syn_charlm *m);

typedef struct {
    int64_t batch, seq;   /* streams per step, steps back-propagated through */
    int64_t steps;        /* optimizer steps */
    float lr, clip;       /* Adam's rate; global gradient-norm clip (0: off) */
    int64_t eval_every;   /* validation every N steps (0: only at the end) */
    int64_t eval_bytes;   /* validation on the first N bytes of val (0: all) */
    uint64_t seed;        /* dropout */
    FILE *out;            /* progress lines (NULL: none) */
    bool cuda_graphs;     /* on a GPU, each step's forward and backward replayed from a CUDA graph
                             (syn_compile_opts.cuda_graphs; not with dropout) */
    /* Data parallelism (synapse/dist.h; NULL or one member: none): every
     * member calls syn_charlm_train with its own model (the same config) on
     * the same texts and config; each trains on its share of the streams
     * (batch >= members), the gradients are summed weighted by the shares,
     * the weights start as member 0's and stay the same. Losses and
     * validation are all members'; a failure is every member's (see
     * syn_fit_config.comm). Without dropout it trains as one process does,
     * up to the rounding of the sums. */
    syn_comm *comm;
} syn_charlm_train_config;

typedef struct {
    int64_t steps;
    float train_bpb;      /* mean over the last eval_every steps */
    float val_bpb;        /* bits per byte on the validation text (-1: none) */
    double seconds;
    double bytes_per_s;   /* training bytes per second */
    int64_t cuda_graph_replays; /* steps replayed from a CUDA graph (cuda_graphs) */
    char cuda_graphs_off[256];  /* why none were, with cuda_graphs ("" otherwise) */
} syn_charlm_result;

/* Trains on `train` cut into `batch` contiguous streams, `seq` bytes per step,
 * the recurrent state carried from step to step (detached) and reset when the
 * streams wrap; validates on `val` (may be NULL). */
SYN_API syn_status syn_charlm_train(syn_charlm *m, const uint8_t *train, size_t n_train, const uint8_t *val,
                                    size_t n_val, const syn_charlm_train_config *cfg, syn_charlm_result *res);
/* Mean bits per byte of predicting text[1..n) from what precedes it, the
 * text read as `batch` contiguous streams of windows of `seq` bytes. */
SYN_API syn_status syn_charlm_bits_per_byte(syn_charlm *m, const uint8_t *text, size_t n, int64_t batch, int64_t seq,
                                            double *bpb);

typedef struct {
    float temperature; /* <= 0: greedy (argmax) */
    int top_k;         /* 0: all 256 bytes */
    uint64_t seed;
} syn_sampling;

/* Reads prompt, then writes n bytes that continue it into out (not
 * NUL-terminated). */
SYN_API syn_status syn_charlm_generate(syn_charlm *m, const uint8_t *prompt, size_t prompt_len, size_t n,
                                       const syn_sampling *s, uint8_t *out);

/* The weights and the configuration in one safetensors file (atomic). */
SYN_API syn_status syn_charlm_save(const syn_charlm *m, const char *path);
SYN_API syn_status syn_charlm_load(const char *path, syn_device dev, syn_charlm **out);

#ifdef __cplusplus
}
#endif
#endif
