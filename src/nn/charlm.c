/* Character-level language models (text.h): byte embedding, a stack of
 * recurrent layers, a linear decoder; truncated BPTT over contiguous streams;
 * bits per byte; autocomplete by greedy, temperature or top-k sampling; save
 * and load as safetensors with the configuration in the metadata. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../core/internal.h"
#include "../core/rng.h"
#include "../dist/dist_internal.h"
#include "../io/io_internal.h"

#define VOCAB 256

/* ---- corpora ---------------------------------------------------------------- */

syn_status syn_text_load_file(const char *path, uint8_t **text, size_t *len) {
    if (!path || !text || !len) return syn__error(SYN_ERR_ARG, "syn_text_load_file: NULL argument");
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return syn__error(SYN_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = syn__malloc(cap, path);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            syn__error(SYN_ERR_OOM, "%s: cannot hold %zu bytes", path, cap * 2);
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = buf && ferror(f);
    fclose(f);
    if (!buf) return SYN_ERR_OOM;
    if (bad) {
        free(buf);
        return syn__error(SYN_ERR_IO, "%s: read error", path);
    }
    *text = buf;
    *len = n;
    return SYN_OK;
}

/* A fortune text file: not an index (.dat), not a .u8 link, not art/ascii-art/off. */
static bool fortune_file(const char *path, const char *name) {
    (void)path;
    size_t n = strlen(name);
    if ((n > 4 && strcmp(name + n - 4, ".dat") == 0) || (n > 3 && strcmp(name + n - 3, ".u8") == 0)) return false;
    return strcmp(name, "art") != 0 && strcmp(name, "ascii-art") != 0 && strcmp(name, "off") != 0;
}

syn_status syn_text_load_fortunes(const char *dir, uint8_t **text, size_t *len) {
    if (!text || !len) return syn__error(SYN_ERR_ARG, "syn_text_load_fortunes: NULL argument");
    *text = NULL;
    *len = 0;
    if (!dir) dir = getenv("SYN_FORTUNES_DIR");
    if (!dir || !*dir) dir = "/usr/share/games/fortunes";
    char **names;
    int n;
    syn_status s = syn__dir_list(dir, fortune_file, " (Debian package: fortunes)", &names, &n);
    if (s != SYN_OK) return s;
    if (n == 0) s = syn__error(SYN_ERR_IO, "%s: no fortune files", dir);
    uint8_t *all = NULL;
    size_t total = 0;
    for (int i = 0; i < n && s == SYN_OK; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        uint8_t *part;
        size_t plen;
        s = syn_text_load_file(path, &part, &plen);
        if (s != SYN_OK) break;
        uint8_t *na = realloc(all, total + plen + 1);
        if (!na) {
            free(part);
            s = syn__error(SYN_ERR_OOM, "%s: %zu bytes", dir, total + plen);
            break;
        }
        all = na;
        memcpy(all + total, part, plen);
        total += plen;
        free(part);
    }
    syn__names_free(names, n);
    if (s != SYN_OK) {
        free(all);
        return s;
    }
    *text = all;
    *len = total;
    return SYN_OK;
}

/* ---- the model -------------------------------------------------------------------- */

/* One compiled graph: tokens (B, T) and the state in, logits, the final state
 * and (with labels) the mean cross-entropy out. */
typedef struct {
    syn_graph *g;
    syn_node *tok, *lab, *state, *state_out, *logits, *loss;
    int64_t B, T;
    bool train, graphs;
} lm_graph;

struct syn_charlm {
    syn_charlm_config cfg;
    syn_device dev;
    syn_params *params;
    lm_graph train, eval, gen;
    int64_t S; /* state width per layer */
};

static const char *const cell_names[] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};

static void graph_free(lm_graph *l) {
    syn_graph_free(l->g);
    memset(l, 0, sizeof *l);
}

static syn_status graph_build(syn_charlm *m, lm_graph *l, int64_t B, int64_t T, bool train, bool with_loss,
                              bool graphs) {
    if (l->g && l->B == B && l->T == T && l->graphs == graphs) return SYN_OK;
    graph_free(l);
    SYN_TRY(syn_graph_create(m->params, &l->g));
    syn_graph *g = l->g;
    int L = m->cfg.layers;
    l->tok = syn_input(g, "tokens", SYN_I32, syn_shape2(B, T));
    l->state = syn_input(g, "state", SYN_F32, syn_shape3(B, L, m->S));
    syn_rnn_config rc = {m->cfg.mode, m->cfg.hidden, L, m->cfg.dropout, false};
    syn_node *e = syn_embedding(g, l->tok, VOCAB, m->cfg.embed, "embedding");
    syn_node *h = syn_rnn(g, e, &rc, l->state, NULL, "rnn", &l->state_out);
    l->logits = syn_linear(g, syn_reshape(g, h, syn_shape2(-1, m->cfg.hidden)), VOCAB, "decoder", NULL);
    if (with_loss) {
        l->lab = syn_input(g, "labels", SYN_I32, syn_shape1(B * T));
        l->loss = syn_cross_entropy(g, l->logits, l->lab);
    }
    syn_status s = syn_graph_status(g);
    if (s == SYN_OK) s = syn_graph_keep(g, l->logits);
    if (s == SYN_OK) s = syn_graph_keep(g, l->state_out);
    syn_compile_opts o = {.inference = !train, .cuda_graphs = graphs};
    if (s == SYN_OK) s = syn_graph_compile(g, m->dev, &o);
    if (s != SYN_OK) {
        graph_free(l);
        return s;
    }
    syn_graph_set_training(g, train);
    l->B = B;
    l->T = T;
    l->train = train;
    l->graphs = graphs;
    return SYN_OK;
}

syn_status syn_charlm_create(const syn_charlm_config *cfg, syn_device dev, uint64_t seed, syn_charlm **out) {
    if (!cfg || !out) return syn__error(SYN_ERR_ARG, "syn_charlm_create: NULL argument");
    *out = NULL;
    if ((unsigned)cfg->mode > SYN_RNN_GRU || cfg->embed < 1 || cfg->hidden < 1 || cfg->layers < 1 || cfg->layers > 64 ||
        !(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return syn__error(SYN_ERR_ARG, "charlm: bad configuration (mode %d, embed %lld, hidden %lld, layers %d, dropout %g)",
                          (int)cfg->mode, (long long)cfg->embed, (long long)cfg->hidden, cfg->layers, cfg->dropout);
    syn_charlm *m = syn__calloc(1, sizeof *m, "syn_charlm_create");
    if (!m) return SYN_ERR_OOM;
    m->cfg = *cfg;
    m->dev = dev;
    m->S = cfg->mode == SYN_RNN_LSTM ? 2 * cfg->hidden : cfg->hidden;
    syn_status s = syn_params_create(dev, seed, &m->params);
    /* the generation graph creates every parameter, in a fixed order */
    if (s == SYN_OK) s = graph_build(m, &m->gen, 1, 1, false, false, false);
    if (s != SYN_OK) {
        syn_charlm_free(m);
        return s;
    }
    *out = m;
    return SYN_OK;
}

void syn_charlm_free(syn_charlm *m) {
    if (!m) return;
    graph_free(&m->train);
    graph_free(&m->eval);
    graph_free(&m->gen);
    syn_params_free(m->params);
    free(m);
}

syn_params *syn_charlm_params(syn_charlm *m) { return m ? m->params : NULL; }
syn_charlm_config syn_charlm_get_config(const syn_charlm *m) {
    syn_charlm_config c = {0};
    return m ? m->cfg : c;
}

/* ---- streams ---------------------------------------------------------------------- */

/* The streams [b0, b0 + B) of the text's contiguous streams of length Ls:
 * all of them, or a member's share in data-parallel training. */
typedef struct {
    int64_t b0, B;
} streams;

/* This member's share of B streams (all of them without a communicator). */
static streams share(const syn_comm *c, int64_t B) {
    int64_t r = syn_comm_rank(c), n = syn_comm_size(c);
    streams st = {B * r / n, B * (r + 1) / n - B * r / n};
    return st;
}

/* Window k of the streams: tokens and next-byte labels, (st.B, T) each. */
static void window(const uint8_t *text, int64_t Ls, streams st, int64_t T, int64_t k, int32_t *tok, int32_t *lab) {
    for (int64_t b = 0; b < st.B; b++)
        for (int64_t t = 0; t < T; t++) {
            const uint8_t *p = text + (st.b0 + b) * Ls + k * T + t;
            tok[b * T + t] = p[0];
            lab[b * T + t] = p[1];
        }
}

typedef struct {
    int32_t *tok, *lab;
    float *state;
} host_bufs;

static syn_status bufs_make(host_bufs *h, int64_t B, int64_t T, int64_t state_n) {
    h->tok = malloc((size_t)(B * T) * sizeof *h->tok);
    h->lab = malloc((size_t)(B * T) * sizeof *h->lab);
    h->state = calloc((size_t)state_n, sizeof *h->state);
    if (!h->tok || !h->lab || !h->state) {
        free(h->tok), free(h->lab), free(h->state);
        memset(h, 0, sizeof *h);
        return syn__error(SYN_ERR_OOM, "charlm: batch buffers");
    }
    return SYN_OK;
}

static void bufs_free(host_bufs *h) { free(h->tok), free(h->lab), free(h->state); }

/* One forward (and backward when training) of window k. The state input
 * holds the carried state: zeros fed from the host when a pass over the
 * streams starts (fresh), else the last window's final state, copied on the
 * device. The loss is read by the caller: a training step reads it after the
 * optimizer step is queued, so a GPU is not left waiting between them. */
static syn_status run_window(lm_graph *l, const host_bufs *h, bool fresh) {
    syn_status s = syn_graph_feed(l->g, l->tok, h->tok, syn_shape2(l->B, l->T));
    if (s == SYN_OK) s = syn_graph_feed(l->g, l->lab, h->lab, syn_shape1(l->B * l->T));
    if (s == SYN_OK) s = fresh ? syn_graph_feed(l->g, l->state, h->state, syn_node_shape(l->state))
                               : syn_graph_feed_node(l->g, l->state, l->state_out);
    if (s == SYN_OK) s = l->train ? syn_graph_forward_backward(l->g, l->loss) : syn_graph_forward(l->g);
    return s;
}

/* The text as `batch` streams of windows of `seq` bytes, of which `st` are
 * read: *nats = the sum over the windows of their mean loss over st's
 * streams, *windows = their number. */
static syn_status nats_sum(syn_charlm *m, const uint8_t *text, size_t n, int64_t batch, int64_t seq, streams st,
                           double *nats, int64_t *windows) {
    int64_t Ls = n > 1 ? (int64_t)(n - 1) / batch : 0;
    if (Ls < 1) return syn__error(SYN_ERR_ARG, "charlm: %zu bytes are too few for %lld streams", n, (long long)batch);
    if (seq > Ls) seq = Ls;
    int64_t W = Ls / seq;
    SYN_TRY(graph_build(m, &m->eval, st.B, seq, false, true, false));
    host_bufs h;
    SYN_TRY(bufs_make(&h, st.B, seq, st.B * m->cfg.layers * m->S));
    double sum = 0;
    syn_status s = SYN_OK;
    for (int64_t k = 0; k < W && s == SYN_OK; k++) {
        float l = 0;
        window(text, Ls, st, seq, k, h.tok, h.lab);
        s = run_window(&m->eval, &h, k == 0);
        if (s == SYN_OK) s = syn_graph_read_scalar(m->eval.g, m->eval.loss, &l);
        sum += l;
    }
    bufs_free(&h);
    *nats = sum;
    *windows = W;
    return s;
}

syn_status syn_charlm_bits_per_byte(syn_charlm *m, const uint8_t *text, size_t n, int64_t batch, int64_t seq,
                                    double *bpb) {
    if (!m || !text || !bpb || batch < 1 || seq < 1)
        return syn__error(SYN_ERR_ARG, "syn_charlm_bits_per_byte: bad argument");
    double nats;
    int64_t W;
    SYN_TRY(nats_sum(m, text, n, batch, seq, share(NULL, batch), &nats, &W));
    *bpb = nats / (double)W / log(2.0);
    return SYN_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Validation bits per byte on the first eval_bytes of val: this member's
 * streams, the sum over all members' (weighted by their shares) agreed. */
static syn_status validate(syn_charlm *m, const uint8_t *val, size_t n_val, const syn_charlm_train_config *cfg,
                           syn_comm *comm, syn_status mine, float *bpb) {
    double sums[2] = {0, 0}; /* nats weighted by the share, windows */
    streams st = share(comm, cfg->batch);
    size_t nv = cfg->eval_bytes > 0 && (size_t)cfg->eval_bytes < n_val ? (size_t)cfg->eval_bytes : n_val;
    int64_t W = 0;
    if (mine == SYN_OK) mine = nats_sum(m, val, nv, cfg->batch, cfg->seq, st, &sums[0], &W);
    sums[0] *= (double)st.B / (double)cfg->batch;
    if (comm) {
        sums[1] = (double)W / syn_comm_size(comm); /* the same W everywhere: their mean */
        mine = syn__comm_agree(comm, mine, sums, 2, "syn_charlm_train", "in the validation");
    } else {
        sums[1] = (double)W;
    }
    if (mine == SYN_OK) *bpb = (float)(sums[0] / sums[1] / log(2.0));
    return mine;
}

syn_status syn_charlm_train(syn_charlm *m, const uint8_t *train, size_t n_train, const uint8_t *val, size_t n_val,
                            const syn_charlm_train_config *cfg, syn_charlm_result *res) {
    static const char fn[] = "syn_charlm_train";
    if (!cfg || !res) return syn__error(SYN_ERR_ARG, "syn_charlm_train: NULL %s", cfg ? "result" : "config");
    memset(res, 0, sizeof *res);
    res->val_bpb = -1;
    /* With several members, every failure from here on is all members' (a
     * member without a model, say, after a failed create): see syn_fit. */
    syn_comm *comm = syn_comm_size(cfg->comm) > 1 ? cfg->comm : NULL;
    int64_t B = cfg->batch, T = cfg->seq, Ls = 0, W = 0;
    syn_status s = SYN_OK;
    if (!m || !train)
        s = syn__error(SYN_ERR_ARG, "syn_charlm_train: NULL %s", !m ? "model" : "text");
    else if (B < 1 || T < 1 || cfg->steps < 0 || !(cfg->lr > 0))
        s = syn__error(SYN_ERR_ARG, "charlm train: batch %lld, seq %lld, steps %lld, lr %g", (long long)B,
                       (long long)T, (long long)cfg->steps, cfg->lr);
    else if (B < syn_comm_size(comm))
        s = syn__error(SYN_ERR_ARG, "charlm train: %lld streams cannot be split between %d members", (long long)B,
                       syn_comm_size(comm));
    if (s == SYN_OK) {
        Ls = n_train > 1 ? (int64_t)(n_train - 1) / B : 0;
        if (Ls < T)
            s = syn__error(SYN_ERR_ARG, "charlm train: %zu bytes are too few for %lld streams of %lld", n_train,
                           (long long)B, (long long)T);
        W = Ls > 0 ? Ls / T : 0;
    }
    const streams st = share(comm, B > 0 ? B : 1);
    syn_optim *opt = NULL;
    host_bufs h = {0};
    if (s == SYN_OK) s = graph_build(m, &m->train, st.B, T, true, true, cfg->cuda_graphs);
    if (s == SYN_OK) {
        /* dropout: each member its own masks (member 0 those of a lone process) */
        syn_graph_set_seed(m->train.g, cfg->seed + (uint64_t)syn_comm_rank(comm));
        syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
        oc.lr = cfg->lr;
        s = syn_optim_create(m->params, &oc, &opt);
    }
    if (s == SYN_OK) s = bufs_make(&h, st.B, T, st.B * m->cfg.layers * m->S);
    if (comm) {
        static const char *const what[] = {"parameters", "parameter values", "training bytes", "validation bytes",
                                           "streams",    "sequence",         "steps",          "seed",
                                           "eval_every", "eval_bytes",       "lr x 1e9",       "clip x 1e6"};
        syn_params *p = m ? m->params : NULL;
        int64_t figs[] = {syn_params_count(p), syn_params_numel(p), (int64_t)n_train,
                          val ? (int64_t)n_val : -1, B, T, cfg->steps, (int64_t)cfg->seed, cfg->eval_every,
                          cfg->eval_bytes, llround((double)cfg->lr * 1e9), llround((double)cfg->clip * 1e6)};
        s = syn__dist_start(comm, s, p, figs, what, (int)(sizeof figs / sizeof *figs), fn);
    }
    if (s != SYN_OK) {
        bufs_free(&h); /* zeros when not made */
        syn_optim_free(opt);
        return s;
    }
    /* the members' mean losses weighted by their shares: the whole batch's */
    const double weight = (double)st.B / (double)B;
    double t0 = now_s(), train_time = 0, run = 0;
    int64_t in_run = 0;
    syn_status late = SYN_OK; /* a failure after a step's collective: the others learn it at the next one */
    for (int64_t step = 0; step < cfg->steps; step++) {
        int64_t k = step % W;
        window(train, Ls, st, T, k, h.tok, h.lab);
        double ts = now_s();
        float l = 0;
        s = late;
        if (s == SYN_OK) s = syn_params_zero_grad(m->params);
        if (s == SYN_OK) s = run_window(&m->train, &h, k == 0);
        syn_status after = SYN_OK; /* a failure past the collective: passed on below */
        if (comm) s = syn__fit_step(comm, m->params, s, st.B, B, fn, &after);
        if (s != SYN_OK) break;
        s = after;
        if (s == SYN_OK && cfg->clip > 0) s = syn_params_clip_grad_norm(m->params, cfg->clip, NULL);
        if (s == SYN_OK) s = syn_optim_step(opt);
        if (s == SYN_OK) s = syn_graph_read_scalar(m->train.g, m->train.loss, &l); /* this window's forward */
        train_time += now_s() - ts;
        run += l * weight;
        in_run++;
        res->steps = step + 1;
        /* the last step always evaluates: no failure is left unagreed */
        bool last = step + 1 == cfg->steps, eval = last || (cfg->eval_every > 0 && (step + 1) % cfg->eval_every == 0);
        if (!eval) {
            if (s != SYN_OK && !comm) break;
            late = s;
            continue;
        }
        if (comm) s = syn__comm_agree(comm, s, &run, 1, fn, "in a training step"); /* all members' running loss */
        if (s != SYN_OK) break;
        res->train_bpb = (float)(run / (double)in_run / log(2.0));
        run = 0;
        in_run = 0;
        if (val && n_val > 1 && (s = validate(m, val, n_val, cfg, comm, s, &res->val_bpb)) != SYN_OK) break;
        if (cfg->out) {
            fprintf(cfg->out, "step %6lld  train %.3f bits/byte", (long long)(step + 1), res->train_bpb);
            if (res->val_bpb >= 0) fprintf(cfg->out, "  validation %.3f bits/byte", res->val_bpb);
            fprintf(cfg->out, "  %.1f s\n", now_s() - t0);
            fflush(cfg->out);
        }
    }
    res->seconds = now_s() - t0;
    res->bytes_per_s = train_time > 0 ? (double)(res->steps * B * T) / train_time : 0;
    res->cuda_graph_replays = syn_graph_replays(m->train.g, res->cuda_graphs_off, sizeof res->cuda_graphs_off);
    if (!cfg->cuda_graphs) res->cuda_graphs_off[0] = '\0';
    bufs_free(&h);
    syn_optim_free(opt);
    return s;
}

/* ---- generation ------------------------------------------------------------------------ */

/* A byte drawn from logits: argmax when temperature <= 0, else from
 * softmax(logits / temperature) restricted to the top_k largest. */
static int draw(const float *logits, const syn_sampling *sp, uint64_t index) {
    int best = 0;
    for (int v = 1; v < VOCAB; v++)
        if (logits[v] > logits[best]) best = v;
    if (!sp || sp->temperature <= 0) return best;
    float cut = -INFINITY;
    if (sp->top_k > 0 && sp->top_k < VOCAB) { /* the k-th largest logit */
        float sorted[VOCAB];
        memcpy(sorted, logits, sizeof sorted);
        for (int i = 0; i < sp->top_k; i++) { /* partial selection */
            int mx = i;
            for (int j = i + 1; j < VOCAB; j++)
                if (sorted[j] > sorted[mx]) mx = j;
            float t = sorted[i];
            sorted[i] = sorted[mx];
            sorted[mx] = t;
        }
        cut = sorted[sp->top_k - 1];
    }
    double p[VOCAB], total = 0;
    for (int v = 0; v < VOCAB; v++) {
        p[v] = logits[v] >= cut ? exp(((double)logits[v] - logits[best]) / sp->temperature) : 0.0;
        total += p[v];
    }
    double u = syn__philox_uniform(sp->seed, SYN_STREAM_SAMPLE, index) * total;
    for (int v = 0; v < VOCAB; v++) {
        if (u < p[v]) return v;
        u -= p[v];
    }
    return best;
}

syn_status syn_charlm_generate(syn_charlm *m, const uint8_t *prompt, size_t prompt_len, size_t n, const syn_sampling *sp,
                               uint8_t *out) {
    if (!m || (!prompt && prompt_len) || (!out && n)) return syn__error(SYN_ERR_ARG, "syn_charlm_generate: NULL argument");
    lm_graph *l = &m->gen;
    int64_t sn = (int64_t)m->cfg.layers * m->S;
    float *state = calloc((size_t)sn, sizeof *state), logits[VOCAB];
    if (!state) return syn__error(SYN_ERR_OOM, "charlm generate: state");
    static const uint8_t newline = '\n';
    if (prompt_len == 0) { /* an empty prompt starts as after a line break */
        prompt = &newline;
        prompt_len = 1;
    }
    /* one step per prompt byte and per generated byte but the last; the
     * step after byte i predicts byte i + 1 */
    syn_status s = SYN_OK;
    for (size_t i = 0; n && i < prompt_len + n - 1 && s == SYN_OK; i++) {
        int32_t tok = i < prompt_len ? prompt[i] : out[i - prompt_len];
        s = syn_graph_feed(l->g, l->tok, &tok, syn_shape2(1, 1));
        /* zeros first, then the last step's final state, copied on the device */
        if (s == SYN_OK) s = i == 0 ? syn_graph_feed(l->g, l->state, state, syn_shape3(1, m->cfg.layers, m->S))
                                    : syn_graph_feed_node(l->g, l->state, l->state_out);
        if (s == SYN_OK) s = syn_graph_forward(l->g);
        if (s == SYN_OK && i + 1 >= prompt_len) s = syn_graph_read(l->g, l->logits, logits, sizeof logits);
        if (s == SYN_OK && i + 1 >= prompt_len)
            out[i + 1 - prompt_len] = (uint8_t)draw(logits, sp, (uint64_t)(i + 1 - prompt_len));
    }
    free(state);
    return s;
}

/* ---- files ------------------------------------------------------------------------------- */

syn_status syn_charlm_save(const syn_charlm *m, const char *path) {
    if (!m || !path) return syn__error(SYN_ERR_ARG, "syn_charlm_save: NULL argument");
    syn_safetensors_writer *w;
    SYN_TRY(syn_safetensors_writer_create(&w));
    char v[64];
    syn_status s = syn_safetensors_set_metadata(w, "format", "synapse.charlm");
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "cell", cell_names[m->cfg.mode]);
    snprintf(v, sizeof v, "%lld", (long long)m->cfg.embed);
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "embed", v);
    snprintf(v, sizeof v, "%lld", (long long)m->cfg.hidden);
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "hidden", v);
    snprintf(v, sizeof v, "%d", m->cfg.layers);
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "layers", v);
    snprintf(v, sizeof v, "%.9g", m->cfg.dropout);
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "dropout", v);
    if (s == SYN_OK) s = syn__params_add_all(w, m->params, path);
    if (s == SYN_OK) s = syn_safetensors_write(w, path);
    syn_safetensors_writer_free(w);
    return s;
}

static syn_status meta_int(const syn_safetensors *f, const char *path, const char *key, int64_t lo, int64_t *out) {
    const char *v = syn_safetensors_metadata(f, key);
    char *end;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || x < lo)
        return syn__error(SYN_ERR_FORMAT, "%s: metadata '%s' is %s%s%s (a character model needs an integer >= %lld)", path,
                          key, v ? "'" : "missing", v ? v : "", v ? "'" : "", (long long)lo);
    *out = x;
    return SYN_OK;
}

syn_status syn_charlm_load(const char *path, syn_device dev, syn_charlm **out) {
    if (!path || !out) return syn__error(SYN_ERR_ARG, "syn_charlm_load: NULL argument");
    *out = NULL;
    syn_safetensors *f;
    SYN_TRY(syn_safetensors_open(path, &f));
    syn_charlm_config cfg = {0};
    int64_t e = 0, h = 0, l = 0;
    const char *fmt = syn_safetensors_metadata(f, "format"), *cell = syn_safetensors_metadata(f, "cell");
    syn_status s = SYN_OK;
    if (!fmt || strcmp(fmt, "synapse.charlm") != 0)
        s = syn__error(SYN_ERR_FORMAT, "%s: not a character model (metadata format is %s)", path, fmt ? fmt : "missing");
    int mode = -1;
    for (int k = 0; s == SYN_OK && k < 4; k++)
        if (cell && strcmp(cell, cell_names[k]) == 0) mode = k;
    if (s == SYN_OK && mode < 0) s = syn__error(SYN_ERR_FORMAT, "%s: unknown cell '%s'", path, cell ? cell : "(missing)");
    if (s == SYN_OK) s = meta_int(f, path, "embed", 1, &e);
    if (s == SYN_OK) s = meta_int(f, path, "hidden", 1, &h);
    if (s == SYN_OK) s = meta_int(f, path, "layers", 1, &l);
    const char *dr = syn_safetensors_metadata(f, "dropout");
    float dropout = dr ? strtof(dr, NULL) : 0.0f;
    syn_safetensors_close(f);
    if (s != SYN_OK) return s;
    cfg.mode = (syn_rnn_mode)mode;
    cfg.embed = e;
    cfg.hidden = h;
    cfg.layers = l > 64 ? 65 : (int)l;
    cfg.dropout = dropout;
    syn_charlm *m;
    SYN_TRY(syn_charlm_create(&cfg, dev, 0, &m));
    s = syn_params_load(m->params, path, true);
    if (s != SYN_OK) {
        syn_charlm_free(m);
        return s;
    }
    *out = m;
    return SYN_OK;
}
