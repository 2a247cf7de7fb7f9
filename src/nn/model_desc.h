/* Private: the parsed form of a model file, shared by model_parse.c (reading,
 * checking, shape inference) and model_build.c (graph building, summary, the
 * C builders). */
#ifndef SYN_MODEL_DESC_H
#define SYN_MODEL_DESC_H

#include "../core/internal.h"
#include "synapse/model.h"

/* One section kind per layer type; SYN__MODEL_KINDS(X) lists (id, section name). */
#define SYN__MODEL_KINDS(X)                                                                        \
    X(NET, "net") X(CONV, "conv") X(DECONV, "deconv") X(BATCHNORM, "batchnorm")                    \
    X(LAYERNORM, "layernorm") X(ACTIVATION, "activation") X(MAXPOOL, "maxpool")                    \
    X(AVGPOOL, "avgpool") X(GLOBALAVGPOOL, "globalavgpool") X(ADAPTIVEAVGPOOL, "adaptiveavgpool")  \
    X(FLATTEN, "flatten") X(DENSE, "dense") X(DROPOUT, "dropout") X(DROPOUT2D, "dropout2d")        \
    X(BASICBLOCK, "basicblock") X(BOTTLENECK, "bottleneck")

typedef enum {
#define SYN__KIND_ENUM(id, name) SYN__L_##id,
    SYN__MODEL_KINDS(SYN__KIND_ENUM)
#undef SYN__KIND_ENUM
    SYN__L_COUNT
} syn__layer_kind;

extern const char *const syn__model_kind_name[SYN__L_COUNT];

/* A key as written in the file, kept for error messages. */
typedef struct {
    char key[16];
    char value[48];
    int line;
} syn__model_kv;

#define SYN__MODEL_MAX_KV 16

typedef struct {
    syn__layer_kind kind;
    int line;                 /* the section line; 0 for layers made in C */
    char name[64];            /* `name =`, or "" for the automatic name */
    int64_t filters;          /* conv, deconv, blocks; units for dense */
    int kh, kw;               /* size (adaptiveavgpool: the output size) */
    int sh, sw, ph, pw, dh, dw, groups, oph, opw;
    bool pad_same, bias;
    syn_activation act;       /* conv, deconv, dense; type for [activation] */
    float p;                  /* dropout */
    int n_kv;
    syn__model_kv kv[SYN__MODEL_MAX_KV];
} syn__model_layer;

struct syn_model_desc {
    char *file;               /* for messages */
    char *name;               /* base name without extension */
    syn__model_layer net;
    syn_shape input;          /* (C,H,W) or (D) */
    int classes;              /* 0: not given */
    syn__model_layer *layers; /* the sections after [net] */
    int n, cap;
};

/* An empty description (no layers) for the C builders; NULL on OOM. */
syn_model_desc *syn__model_desc_new(const char *file, const char *name, syn_shape input, int classes);
/* Appends a layer of `kind` with its defaults; NULL on OOM (recorded). */
syn__model_layer *syn__model_add(syn_model_desc *d, syn__layer_kind kind);

/* Walks the layers from the sample shape `in` ((C,H,W) or (D)), checking that
 * each fits; out[i] (may be NULL) gets layer i's output shape and flops[i]
 * (may be NULL) its forward FLOPs per sample. SYN_ERR_FORMAT naming the file,
 * line, section and key otherwise. */
syn_status syn__model_check(const syn_model_desc *d, syn_shape in, syn_shape *out, double *flops);

/* syn_last_error() without its "bad file format: " prefix (to pass a model
 * check's message on under another status). */
const char *syn__model_msg(void);

/* A layer's automatic name ("conv3") or its `name =` in buf. */
const char *syn__model_layer_name(const syn_model_desc *d, int i, char *buf, size_t size);

#endif
