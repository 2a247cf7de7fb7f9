/* Model files: reading a .cfg with libinih into a syn_model_desc, checking
 * every key and value, and shape inference over the layers, with messages
 * that name the file, the line, the section and the key. */
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_desc.h"

const char *const syn__model_kind_name[SYN__L_COUNT] = {
#define SYN__KIND_NAME(id, name) name,
    SYN__MODEL_KINDS(SYN__KIND_NAME)
#undef SYN__KIND_NAME
};

#define MAX_COUNT 1000000   /* filters, units, classes, input dims */
#define MAX_WINDOW 4096     /* size, stride, pad, dilation, out_pad */
#define MAX_FILE (1 << 20)  /* bytes of a model file */
#define MAX_NUMEL 1e12      /* elements of one sample's feature map */

/* ---- keys ------------------------------------------------------------------ */

typedef enum {
    K_INPUT, K_CLASSES, K_FILTERS, K_SIZE, K_STRIDE, K_PAD, K_DILATION, K_GROUPS, K_BIAS,
    K_ACTIVATION, K_OUT_PAD, K_UNITS, K_TYPE, K_P, K_NAME, K_COUNT
} key_id;

static const char *const key_name[K_COUNT] = {"input", "classes", "filters", "size", "stride",
                                              "pad", "dilation", "groups", "bias", "activation",
                                              "out_pad", "units", "type", "p", "name"};

#define B(k) (1u << (k))
#define CONV_KEYS (B(K_FILTERS) | B(K_SIZE) | B(K_STRIDE) | B(K_PAD) | B(K_DILATION) | B(K_GROUPS) | \
                   B(K_BIAS) | B(K_ACTIVATION) | B(K_NAME))
#define POOL_KEYS (B(K_SIZE) | B(K_STRIDE) | B(K_PAD))

static const unsigned allowed_keys[SYN__L_COUNT] = {
    [SYN__L_NET] = B(K_INPUT) | B(K_CLASSES),
    [SYN__L_CONV] = CONV_KEYS,
    [SYN__L_DECONV] = CONV_KEYS | B(K_OUT_PAD),
    [SYN__L_BATCHNORM] = B(K_NAME),
    [SYN__L_LAYERNORM] = B(K_NAME),
    [SYN__L_ACTIVATION] = B(K_TYPE),
    [SYN__L_MAXPOOL] = POOL_KEYS,
    [SYN__L_AVGPOOL] = POOL_KEYS,
    [SYN__L_ADAPTIVEAVGPOOL] = B(K_SIZE),
    [SYN__L_DENSE] = B(K_UNITS) | B(K_BIAS) | B(K_ACTIVATION) | B(K_NAME),
    [SYN__L_DROPOUT] = B(K_P),
    [SYN__L_DROPOUT2D] = B(K_P),
    [SYN__L_BASICBLOCK] = B(K_FILTERS) | B(K_STRIDE) | B(K_NAME),
    [SYN__L_BOTTLENECK] = B(K_FILTERS) | B(K_STRIDE) | B(K_NAME),
};

static const unsigned required_keys[SYN__L_COUNT] = {
    [SYN__L_NET] = B(K_INPUT),
    [SYN__L_CONV] = B(K_FILTERS) | B(K_SIZE),
    [SYN__L_DECONV] = B(K_FILTERS) | B(K_SIZE),
    [SYN__L_ACTIVATION] = B(K_TYPE),
    [SYN__L_MAXPOOL] = B(K_SIZE),
    [SYN__L_AVGPOOL] = B(K_SIZE),
    [SYN__L_ADAPTIVEAVGPOOL] = B(K_SIZE),
    [SYN__L_DENSE] = B(K_UNITS),
    [SYN__L_BASICBLOCK] = B(K_FILTERS),
    [SYN__L_BOTTLENECK] = B(K_FILTERS),
};

static const syn__model_kv *find_kv(const syn__model_layer *L, key_id k) {
    for (int i = 0; k < K_COUNT && i < L->n_kv; i++)
        if (strcmp(L->kv[i].key, key_name[k]) == 0) return &L->kv[i];
    return NULL;
}

/* "filters, size, stride" for the keys in mask. */
static const char *key_list(unsigned mask, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < K_COUNT; k++)
        if (mask & B(k)) {
            int w = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", key_name[k]);
            if (w < 0 || (size_t)w >= size - len) break;
            len += (size_t)w;
        }
    return buf;
}

/* ---- descriptions ------------------------------------------------------------ */

static void layer_defaults(syn__model_layer *L, syn__layer_kind kind) {
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->sh = L->sw = L->dh = L->dw = L->groups = 1;
    L->bias = true;
    L->p = 0.5f;
    if (kind == SYN__L_MAXPOOL || kind == SYN__L_AVGPOOL) L->sh = L->sw = 0; /* 0: = size */
}

syn__model_layer *syn__model_add(syn_model_desc *d, syn__layer_kind kind) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 16;
        syn__model_layer *l = realloc(d->layers, (size_t)cap * sizeof *l);
        if (!l) {
            syn__error(SYN_ERR_OOM, "model %s: cannot grow to %d layers", d->file, cap);
            return NULL;
        }
        d->layers = l;
        d->cap = cap;
    }
    syn__model_layer *L = &d->layers[d->n++];
    layer_defaults(L, kind);
    return L;
}

/* "dir/resnet18.cfg" -> "resnet18" */
static char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    const char *dot = strrchr(s, '.');
    size_t n = dot && dot > s ? (size_t)(dot - s) : strlen(s);
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

syn_model_desc *syn__model_desc_new(const char *file, const char *name, syn_shape input, int classes) {
    syn_model_desc *d = calloc(1, sizeof *d);
    if (d) {
        d->file = strdup(file);
        d->name = name ? strdup(name) : base_name(file);
        layer_defaults(&d->net, SYN__L_NET);
        d->input = input;
        d->classes = classes;
    }
    if (!d || !d->file || !d->name) {
        syn_model_desc_free(d);
        syn__error(SYN_ERR_OOM, "model %s: out of memory", file);
        return NULL;
    }
    return d;
}

void syn_model_desc_free(syn_model_desc *d) {
    if (!d) return;
    free(d->file);
    free(d->name);
    free(d->layers);
    free(d);
}

syn_status syn_model_desc_input(const syn_model_desc *d, syn_shape *sample_shape, int *classes) {
    if (!d) return syn__error(SYN_ERR_ARG, "syn_model_desc_input: NULL description");
    if (sample_shape) *sample_shape = d->input;
    if (classes) *classes = d->classes;
    return SYN_OK;
}

const char *syn_model_desc_name(const syn_model_desc *d) { return d ? d->name : ""; }
int syn_model_desc_layers(const syn_model_desc *d) { return d ? d->n : 0; }

const char *syn__model_layer_name(const syn_model_desc *d, int i, char *buf, size_t size) {
    static const char *const prefix[SYN__L_COUNT] = {
        [SYN__L_CONV] = "conv", [SYN__L_DECONV] = "deconv", [SYN__L_BATCHNORM] = "bn",
        [SYN__L_LAYERNORM] = "ln", [SYN__L_DENSE] = "fc", [SYN__L_BASICBLOCK] = "block",
        [SYN__L_BOTTLENECK] = "block"};
    const syn__model_layer *L = &d->layers[i];
    if (L->name[0]) snprintf(buf, size, "%s", L->name);
    else snprintf(buf, size, "%s%d", prefix[L->kind] ? prefix[L->kind] : syn__model_kind_name[L->kind], i);
    return buf;
}

/* ---- messages ------------------------------------------------------------------ */

/* "FILE:LINE: [section] key = value: why" (the section's line when the key
 * was not written; "FILE: layer I [section]: why" for layers made in C). */
static syn_status layer_err(const syn_model_desc *d, const syn__model_layer *L, key_id k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static syn_status layer_err(const syn_model_desc *d, const syn__model_layer *L, key_id k, const char *fmt, ...) {
    char why[400], where[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const syn__model_kv *kv = find_kv(L, k);
    const char *kind = syn__model_kind_name[L->kind];
    if (kv) snprintf(where, sizeof where, "%s:%d: [%s] %s = %s", d->file, kv->line, kind, kv->key, kv->value);
    else if (L->line > 0) snprintf(where, sizeof where, "%s:%d: [%s]", d->file, L->line, kind);
    else snprintf(where, sizeof where, "%s: layer %d [%s]", d->file, L == &d->net ? -1 : (int)(L - d->layers), kind);
    return syn__error(SYN_ERR_FORMAT, "%s: %s", where, why);
}

const char *syn__model_msg(void) {
    const char *m = syn_last_error(), *prefix = syn_status_str(SYN_ERR_FORMAT);
    size_t n = strlen(prefix);
    return strncmp(m, prefix, n) == 0 && m[n] == ':' && m[n + 1] == ' ' ? m + n + 2 : m;
}

/* ---- values ---------------------------------------------------------------------- */

/* Up to max comma-separated integers in [lo, hi]: the count, -1 if the text is
 * not such a list, -2 if a number is out of range. */
static int parse_ints(const char *s, int64_t *v, int max, int64_t lo, int64_t hi) {
    int n = 0;
    bool out_of_range = false;
    for (;;) {
        char *end;
        while (*s == ' ' || *s == '\t') s++;
        if (!(*s >= '0' && *s <= '9') && *s != '-' && *s != '+') return -1;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || n == max) return -1;
        if (errno || x < lo || x > hi) out_of_range = true;
        else v[n] = x;
        n++;
        s = end;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '\0') return out_of_range ? -2 : n;
        if (*s != ',') return -1;
        s++;
    }
}

/* A value for a (height, width) pair key: "3" or "3,5". */
static bool parse_pair(const char *s, int64_t lo, int64_t hi, int *a, int *b) {
    int64_t v[2];
    int n = parse_ints(s, v, 2, lo, hi);
    if (n < 1) return false;
    *a = (int)v[0];
    *b = (int)(n == 2 ? v[1] : v[0]);
    return true;
}

static bool parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"1", "true", "yes"}, *const no[] = {"0", "false", "no"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0) return (*out = true);
        if (strcmp(s, no[i]) == 0) return !(*out = false);
    }
    return false;
}

static bool parse_name(const char *s, char *out, size_t size) {
    size_t n = strlen(s);
    if (n == 0 || n >= size) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    memcpy(out, s, n + 1);
    return true;
}

/* ---- parsing ----------------------------------------------------------------------- */

/* libinih calls the handler per key only: it reports neither line numbers
 * (Debian builds it without INI_HANDLER_LINENO) nor new sections
 * (INI_CALL_HANDLER_ON_NEW_SECTION is off), and a section may repeat
 * ([conv] many times) or hold no keys ([flatten]). So the text goes through
 * ini_parse_stream with our own line reader: it counts lines (the handler
 * for a line runs before the next line is read, so the count is that line's
 * number) and starts a layer on each section line. It also strips leading
 * blanks, so libinih's continuation lines never apply, and stops the parse at
 * the first error. */
typedef struct {
    syn_model_desc *d;
    const char *p; /* the text not yet read */
    int line;      /* lines handed to libinih so far */
    int cur;       /* -2: before any section, -1: [net], else a layer index */
    bool failed;
    syn_status status;
    char msg[640];
} parse_ctx;

static void failf(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(parse_ctx *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
}

static void section_line(parse_ctx *c, const char *s) {
    const char *close = strchr(s, ']');
    if (!close) return; /* libinih reports the syntax error */
    char name[64];
    size_t n = (size_t)(close - s - 1);
    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), s + 1);
    const char *rest = close + 1;
    while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n') rest++;
    if (*rest && *rest != ';' && *rest != '#')
        return failf(c, "%s:%d: [%s]: unexpected text after the section name", c->d->file, c->line, name);
    int kind = -1;
    for (int k = 0; k < SYN__L_COUNT; k++)
        if (strcmp(name, syn__model_kind_name[k]) == 0) kind = k;
    if (kind < 0) {
        char list[400];
        size_t len = 0;
        for (int k = 1; k < SYN__L_COUNT; k++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k > 1 ? ", " : "", syn__model_kind_name[k]);
        return failf(c, "%s:%d: [%s]: unknown section (known: %s)", c->d->file, c->line, name, list);
    }
    if (kind == SYN__L_NET) {
        if (c->cur != -2) return failf(c, "%s:%d: [net]: [net] must be the first section, and only one", c->d->file, c->line);
        c->cur = -1;
        c->d->net.line = c->line;
        return;
    }
    if (c->cur == -2)
        return failf(c, "%s:%d: [%s]: missing [net]: the file must start with a [net] section", c->d->file, c->line, name);
    syn__model_layer *L = syn__model_add(c->d, (syn__layer_kind)kind);
    if (!L) {
        c->status = SYN_ERR_OOM;
        return failf(c, "%s", syn_last_error());
    }
    L->line = c->line;
    c->cur = c->d->n - 1;
}

static char *read_line(char *str, int num, void *stream) {
    parse_ctx *c = stream;
    if (c->failed || !*c->p) return NULL;
    const char *s = c->p, *nl = strchr(s, '\n');
    size_t len = nl ? (size_t)(nl - s) + 1 : strlen(s);
    c->p = s + len;
    c->line++;
    if (c->line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, len -= 3; /* UTF-8 BOM */
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    if (len + 1 > (size_t)num) {
        failf(c, "%s:%d: the line is longer than %d characters", c->d->file, c->line, num - 2);
        return NULL;
    }
    memcpy(str, s, len);
    str[len] = '\0';
    if (str[0] == '[') section_line(c, str);
    return c->failed ? NULL : str;
}

/* Parses `value` for key k of layer L; false (message in c) if it is bad. */
static bool set_value(parse_ctx *c, syn__model_layer *L, key_id k, const char *v, const char *where) {
    int64_t x[3];
    int n;
    switch (k) {
    case K_INPUT:
        n = parse_ints(v, x, 3, 1, MAX_COUNT);
        if (n != 1 && n != 3) break;
        c->d->input = n == 3 ? syn_shape3(x[0], x[1], x[2]) : syn_shape1(x[0]);
        return true;
    case K_CLASSES: case K_FILTERS: case K_UNITS: case K_GROUPS:
        if (parse_ints(v, x, 1, 1, MAX_COUNT) != 1) {
            failf(c, "%s: expected a whole number from 1 to %d", where, MAX_COUNT);
            return false;
        }
        if (k == K_CLASSES) c->d->classes = (int)x[0];
        else if (k == K_GROUPS) L->groups = (int)x[0];
        else L->filters = x[0];
        return true;
    case K_SIZE: if (parse_pair(v, 1, MAX_WINDOW, &L->kh, &L->kw)) return true; goto bad_pair;
    case K_STRIDE: if (parse_pair(v, 1, MAX_WINDOW, &L->sh, &L->sw)) return true; goto bad_pair;
    case K_DILATION: if (parse_pair(v, 1, MAX_WINDOW, &L->dh, &L->dw)) return true; goto bad_pair;
    case K_OUT_PAD: if (parse_pair(v, 0, MAX_WINDOW, &L->oph, &L->opw)) return true; goto bad_pair0;
    case K_PAD:
        if (strcmp(v, "same") == 0) {
            if (L->kind == SYN__L_CONV) return (L->pad_same = true);
            failf(c, "%s: `same` is for [conv] only; give the padding as a number", where);
            return false;
        }
        if (parse_pair(v, 0, MAX_WINDOW, &L->ph, &L->pw)) return true;
        failf(c, "%s: expected %sa whole number from 0 to %d, or a pair h,w of them", where,
              L->kind == SYN__L_CONV ? "`same` or " : "", MAX_WINDOW);
        return false;
    case K_BIAS:
        if (parse_bool(v, &L->bias)) return true;
        failf(c, "%s: expected 1 or 0 (true or false)", where);
        return false;
    case K_ACTIVATION: case K_TYPE:
        if (syn_activation_parse(v, &L->act) == SYN_OK) return true;
        failf(c, "%s: unknown activation (none, relu, sigmoid, tanh, gelu, leaky_relu)", where);
        return false;
    case K_P: {
        char *end;
        errno = 0;
        double p = strtod(v, &end);
        if (end == v || *end || errno || !(p >= 0.0 && p < 1.0)) {
            failf(c, "%s: expected a probability in [0, 1)", where);
            return false;
        }
        L->p = (float)p;
        return true;
    }
    case K_NAME:
        if (parse_name(v, L->name, sizeof L->name)) return true;
        failf(c, "%s: expected 1 to %d letters, digits, '_', '.' or '-'", where, (int)sizeof L->name - 1);
        return false;
    case K_COUNT: break;
    }
    if (k == K_INPUT) failf(c, "%s: expected C,H,W (an image) or D (flat features): whole numbers from 1 to %d", where, MAX_COUNT);
    return false;
bad_pair:
    failf(c, "%s: expected a whole number from 1 to %d, or a pair h,w of them", where, MAX_WINDOW);
    return false;
bad_pair0:
    failf(c, "%s: expected a whole number from 0 to %d, or a pair h,w of them", where, MAX_WINDOW);
    return false;
}

static int on_key(void *user, const char *section, const char *key, const char *value) {
    parse_ctx *c = user;
    (void)section; /* equals the current layer's: read_line saw the same section line */
    if (c->failed) return 0;
    if (c->cur == -2) {
        failf(c, "%s:%d: %s = %s: missing [net]: the file must start with a [net] section", c->d->file, c->line, key,
              value);
        return 0;
    }
    syn__model_layer *L = c->cur < 0 ? &c->d->net : &c->d->layers[c->cur];
    const char *kind = syn__model_kind_name[L->kind];
    char where[300], list[200];
    snprintf(where, sizeof where, "%s:%d: [%s] %s = %s", c->d->file, c->line, kind, key, value);
    int k = 0;
    while (k < K_COUNT && strcmp(key, key_name[k]) != 0) k++;
    if (k == K_COUNT || !(allowed_keys[L->kind] & B(k))) {
        if (allowed_keys[L->kind]) failf(c, "%s: unknown key for [%s] (keys: %s)", where, kind, key_list(allowed_keys[L->kind], list, sizeof list));
        else failf(c, "%s: unknown key: [%s] takes no keys", where, kind);
        return 0;
    }
    const syn__model_kv *prev = find_kv(L, (key_id)k);
    if (prev) {
        failf(c, "%s: given twice in this section (first on line %d)", where, prev->line);
        return 0;
    }
    syn__model_kv *kv = &L->kv[L->n_kv++]; /* each allowed key at most once: fewer than SYN__MODEL_MAX_KV */
    snprintf(kv->key, sizeof kv->key, "%s", key);
    snprintf(kv->value, sizeof kv->value, "%s", value);
    kv->line = c->line;
    return set_value(c, L, (key_id)k, value, where) ? 1 : 0;
}

/* Required keys, `pad = same`, pool strides; then shapes at the input. */
static void finish(parse_ctx *c) {
    syn_model_desc *d = c->d;
    char list[200];
    if (c->cur == -2) return failf(c, "%s:1: missing [net]: the file must start with a [net] section", d->file);
    for (int i = -1; i < d->n && !c->failed; i++) {
        syn__model_layer *L = i < 0 ? &d->net : &d->layers[i];
        for (int k = 0; k < K_COUNT; k++)
            if ((required_keys[L->kind] & B(k)) && !find_kv(L, (key_id)k)) {
                return failf(c, "%s:%d: [%s]: missing key '%s' (required: %s)", d->file, L->line,
                             syn__model_kind_name[L->kind], key_name[k], key_list(required_keys[L->kind], list, sizeof list));
            }
        if (L->pad_same) {
            int eh = L->dh * (L->kh - 1), ew = L->dw * (L->kw - 1);
            if (eh % 2 || ew % 2) {
                layer_err(d, L, K_PAD, "`same` needs an odd size (with dilation 1), got %dx%d", L->kh, L->kw);
                return failf(c, "%s", syn__model_msg());
            }
            L->ph = eh / 2;
            L->pw = ew / 2;
        }
        if ((L->kind == SYN__L_MAXPOOL || L->kind == SYN__L_AVGPOOL) && L->sh == 0) {
            L->sh = L->kh;
            L->sw = L->kw;
        }
    }
    if (!c->failed && d->n == 0) failf(c, "%s:%d: [net]: no layers after [net]", d->file, d->net.line);
}

syn_status syn_model_desc_parse(const char *text, const char *name_for_messages, syn_model_desc **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_model_desc_parse: NULL out");
    *out = NULL;
    if (!text) return syn__error(SYN_ERR_ARG, "syn_model_desc_parse: NULL text");
    const char *file = name_for_messages && *name_for_messages ? name_for_messages : "<model>";
    syn_model_desc *d = syn__model_desc_new(file, NULL, syn_shape0(), 0);
    if (!d) return SYN_ERR_OOM;
    parse_ctx c = {d, text, 0, -2, false, SYN_ERR_FORMAT, ""};
    int rc = ini_parse_stream(read_line, &c, on_key, &c);
    if (rc > 0) failf(&c, "%s:%d: syntax error: expected [section] or key = value", file, rc);
    else if (rc < 0) failf(&c, "%s: libinih failed (%d)", file, rc);
    if (!c.failed) finish(&c);
    syn_status s = c.failed ? syn__error(c.status, "%s", c.msg) : syn__model_check(d, d->input, NULL, NULL);
    if (s != SYN_OK) {
        syn_model_desc_free(d);
        return s;
    }
    *out = d;
    return SYN_OK;
}

syn_status syn_model_desc_load(const char *path, syn_model_desc **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_model_desc_load: NULL out");
    *out = NULL;
    if (!path) return syn__error(SYN_ERR_ARG, "syn_model_desc_load: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f) return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return syn__error(SYN_ERR_OOM, "%s: cannot allocate a read buffer", path);
    }
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    int err = ferror(f);
    fclose(f);
    syn_status s = SYN_OK;
    if (err) s = syn__error(SYN_ERR_IO, "%s: read error", path);
    else if (n > MAX_FILE) s = syn__error(SYN_ERR_FORMAT, "%s: larger than %d bytes: not a model file", path, MAX_FILE);
    else {
        buf[n] = '\0';
        const char *nul = memchr(buf, '\0', n);
        if (nul) {
            int line = 1;
            for (const char *q = buf; q < nul; q++) line += *q == '\n';
            s = syn__error(SYN_ERR_FORMAT, "%s:%d: a NUL byte: not a text file", path, line);
        }
    }
    if (s == SYN_OK) s = syn_model_desc_parse(buf, path, out);
    free(buf);
    return s;
}

syn_status syn_model_desc_set_input(syn_model_desc *d, syn_shape sample_shape) {
    char a[64];
    if (!d) return syn__error(SYN_ERR_ARG, "syn_model_desc_set_input: NULL description");
    bool ok = sample_shape.ndim == 1 || sample_shape.ndim == 3;
    for (int i = 0; ok && i < sample_shape.ndim; i++) ok = sample_shape.dim[i] >= 1 && sample_shape.dim[i] <= MAX_COUNT;
    if (!ok)
        return syn__error(SYN_ERR_ARG, "model %s: input %s must be (C,H,W) or (D) with dims from 1 to %d", d->file,
                          syn_shape_str(&sample_shape, a, sizeof a), MAX_COUNT);
    SYN_TRY(syn__model_check(d, sample_shape, NULL, NULL));
    d->input = sample_shape;
    return SYN_OK;
}

/* ---- shapes --------------------------------------------------------------------------- */

syn_status syn__model_check(const syn_model_desc *d, syn_shape s, syn_shape *out, double *flops) {
    char a[64];
    for (int i = 0; i < d->n; i++) {
        const syn__model_layer *L = &d->layers[i];
        const bool img = s.ndim == 3, act = L->act != SYN_ACT_NONE;
        const int64_t C = s.dim[0], H = img ? s.dim[1] : 1, W = img ? s.dim[2] : 1, F = L->filters;
        const double e = (double)syn_shape_numel(&s);
        syn_shape o = s;
        double f = 0.0;
        const bool needs_img = L->kind == SYN__L_CONV || L->kind == SYN__L_DECONV || L->kind == SYN__L_MAXPOOL ||
                               L->kind == SYN__L_AVGPOOL || L->kind == SYN__L_GLOBALAVGPOOL ||
                               L->kind == SYN__L_ADAPTIVEAVGPOOL || L->kind == SYN__L_DROPOUT2D ||
                               L->kind == SYN__L_BASICBLOCK || L->kind == SYN__L_BOTTLENECK;
        if (needs_img && !img)
            return layer_err(d, L, K_COUNT, "needs an image input (C,H,W), got %s", syn_shape_str(&s, a, sizeof a));
        switch (L->kind) {
        case SYN__L_NET: case SYN__L_COUNT: break;
        case SYN__L_CONV: case SYN__L_DECONV: {
            const int64_t G = L->groups, ekh = (int64_t)L->dh * (L->kh - 1) + 1, ekw = (int64_t)L->dw * (L->kw - 1) + 1;
            int64_t P, Q;
            if (C % G || F % G)
                return layer_err(d, L, K_GROUPS, "%lld input channels and %lld filters must both be divisible by %lld",
                                 (long long)C, (long long)F, (long long)G);
            if (L->kind == SYN__L_CONV) {
                if (H + 2 * L->ph < ekh || W + 2 * L->pw < ekw)
                    return layer_err(d, L, K_SIZE, "the %lldx%lld window is larger than the %lldx%lld input (padded: %lldx%lld)",
                                     (long long)ekh, (long long)ekw, (long long)H, (long long)W,
                                     (long long)(H + 2 * L->ph), (long long)(W + 2 * L->pw));
                P = (H + 2 * L->ph - ekh) / L->sh + 1;
                Q = (W + 2 * L->pw - ekw) / L->sw + 1;
                f = 2.0 * (double)(F * P * Q) * (double)(C / G) * L->kh * L->kw;
            } else {
                if ((L->oph >= L->sh && L->oph >= L->dh) || (L->opw >= L->sw && L->opw >= L->dw))
                    return layer_err(d, L, K_OUT_PAD, "must be smaller than the stride or the dilation");
                P = (H - 1) * L->sh - 2 * L->ph + ekh + L->oph;
                Q = (W - 1) * L->sw - 2 * L->pw + ekw + L->opw;
                if (P < 1 || Q < 1)
                    return layer_err(d, L, K_PAD, "the output would be empty (%lldx%lld)", (long long)P, (long long)Q);
                f = 2.0 * e * (double)(F / G) * L->kh * L->kw;
            }
            o = syn_shape3(F, P, Q);
            f += (L->bias ? 1.0 : 0.0) * (double)(F * P * Q) + (act ? (double)(F * P * Q) : 0.0);
            break;
        }
        case SYN__L_LAYERNORM:
            if (img) return layer_err(d, L, K_COUNT, "normalises flat features (D), got %s: add [flatten] first",
                                      syn_shape_str(&s, a, sizeof a));
            /* fallthrough */
        case SYN__L_BATCHNORM: f = 2.0 * e; break;
        case SYN__L_ACTIVATION: f = act ? e : 0.0; break;
        case SYN__L_MAXPOOL: case SYN__L_AVGPOOL:
            if (2 * L->ph > L->kh || 2 * L->pw > L->kw)
                return layer_err(d, L, K_PAD, "must be at most half the %dx%d window", L->kh, L->kw);
            if (H + 2 * L->ph < L->kh || W + 2 * L->pw < L->kw)
                return layer_err(d, L, K_SIZE, "the %dx%d window is larger than the %lldx%lld input%s", L->kh, L->kw,
                                 (long long)H, (long long)W, L->ph || L->pw ? " (with its padding)" : "");
            o = syn_shape3(C, (H + 2 * L->ph - L->kh) / L->sh + 1, (W + 2 * L->pw - L->kw) / L->sw + 1);
            f = (double)syn_shape_numel(&o) * L->kh * L->kw;
            break;
        case SYN__L_GLOBALAVGPOOL: o = syn_shape1(C); f = e; break;
        case SYN__L_ADAPTIVEAVGPOOL: o = syn_shape3(C, L->kh, L->kw); f = e; break;
        case SYN__L_FLATTEN: o = syn_shape1(syn_shape_numel(&s)); break;
        case SYN__L_DENSE:
            o = syn_shape1(F);
            f = 2.0 * e * (double)F + (L->bias ? (double)F : 0.0) + (act ? (double)F : 0.0);
            break;
        case SYN__L_DROPOUT: case SYN__L_DROPOUT2D: break;
        case SYN__L_BASICBLOCK: case SYN__L_BOTTLENECK: {
            /* 3x3 pad 1 and 1x1 pad 0 convolutions with the same stride give the same size */
            const int64_t P = (H - 1) / L->sh + 1, Q = (W - 1) / L->sw + 1, hw = P * Q;
            const bool basic = L->kind == SYN__L_BASICBLOCK;
            const int64_t out_c = basic ? F : 4 * F;
            const bool down = L->sh != 1 || L->sw != 1 || C != out_c;
            o = syn_shape3(out_c, P, Q);
            if (basic) /* conv-bn-relu, conv-bn */
                f = 2.0 * (double)(F * hw) * (double)C * 9 + 3.0 * (double)(F * hw) + 2.0 * (double)(F * hw) * (double)F * 9 +
                    2.0 * (double)(F * hw);
            else /* 1x1 at H,W; 3x3 (stride); 1x1 to 4F; each with bn (and relu but the last) */
                f = 2.0 * (double)(F * H * W) * (double)C + 3.0 * (double)(F * H * W) + 2.0 * (double)(F * hw) * (double)F * 9 +
                    3.0 * (double)(F * hw) + 2.0 * (double)(out_c * hw) * (double)F + 2.0 * (double)(out_c * hw);
            if (down) f += 2.0 * (double)(out_c * hw) * (double)C + 2.0 * (double)(out_c * hw);
            f += 2.0 * (double)(out_c * hw); /* the sum and its relu */
            break;
        }
        }
        double numel = 1.0;
        for (int k = 0; k < o.ndim; k++) numel *= (double)o.dim[k];
        if (numel > MAX_NUMEL)
            return layer_err(d, L, K_COUNT, "the output %s is too large", syn_shape_str(&o, a, sizeof a));
        if (out) out[i] = o;
        if (flops) flops[i] = f;
        s = o;
    }
    if (d->classes > 0 && !(s.ndim == 1 && s.dim[0] == d->classes))
        return layer_err(d, &d->net, K_CLASSES, "the last layer's output is %s, not (%d)", syn_shape_str(&s, a, sizeof a),
                         d->classes);
    return SYN_OK;
}
