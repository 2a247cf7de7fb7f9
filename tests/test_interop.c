/* PyTorch interop: state_dicts laid out as PyTorch saves them (names, shapes,
 * dtypes, batch norm's running statistics and num_batches_tracked) load into
 * models built with the nn.h builders under the same names and give the
 * outputs of a plain double reference written here (Linear, grouped strided
 * Conv2d + BatchNorm2d in eval mode, Embedding + LSTM, a 2-layer GRU); what
 * syn_params_save writes has exactly the state_dict's names, shapes and
 * dtypes; strict loading accepts num_batches_tracked and nothing else the
 * model lacks. With PyTorch importable, tests/interop/torch_roundtrip.py
 * builds the same models (and a grouped strided ConvTranspose2d), and weights
 * and outputs go both ways; without it that test says SKIPPED and passes. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"




/* ---- a state_dict file written byte by byte, as PyTorch's safetensors does ---- */

typedef struct {
    const char *name;
    syn_dtype dt; /* F32 or I64 */
    syn_shape shape;
    const void *data;
} st_ent;

/* 8-byte little-endian header length, the JSON header padded with spaces to
 * a multiple of 8, the tensors' bytes back to back. Independent of
 * syn_safetensors_write on purpose. */
static void st_write_raw(const char *path, const st_ent *e, int n) {
    char hdr[8192];
    size_t len = (size_t)snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)syn_shape_numel(&e[i].shape) * (e[i].dt == SYN_I64 ? 8 : 4);
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", e[i].name,
                                e[i].dt == SYN_I64 ? "I64" : "F32");
        for (int d = 0; d < e[i].shape.ndim; d++)
            len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s%lld", d ? "," : "", (long long)e[i].shape.dim[d]);
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, "],\"data_offsets\":[%llu,%llu]}",
                                (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    hdr[len++] = '}';
    while (len % 8) hdr[len++] = ' ';
    ck_assert_uint_lt(len, sizeof hdr);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char n8[8];
    for (int k = 0; k < 8; k++) n8[k] = (unsigned char)((uint64_t)len >> (8 * k));
    ck_assert_uint_eq(fwrite(n8, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(hdr, 1, len, f), len);
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)syn_shape_numel(&e[i].shape) * (e[i].dt == SYN_I64 ? 8 : 4);
        ck_assert_uint_eq(fwrite(e[i].data, 1, bytes, f), bytes);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* What syn_params_save writes for the model loaded from `e`: exactly the same
 * names, dtypes and shapes (PyTorch's state_dict), and the same values (but
 * num_batches_tracked, which Synapse writes as 0). */
static void check_saved_like(syn_params *p, const st_ent *e, int n) {
    const char *path = tu_path("saved.safetensors");
    TU_OK(syn_params_save(p, path));
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(path, &f));
    ck_assert_int_eq(syn_safetensors_count(f), n);
    ck_assert_str_eq(syn_safetensors_metadata(f, "format"), "pt");
    for (int i = 0; i < n; i++) {
        syn_dtype dt;
        syn_shape sh;
        const void *data;
        size_t bytes;
        ck_assert_msg(syn_safetensors_find(f, e[i].name, &dt, &sh, &data, &bytes) == SYN_OK, "%s not saved",
                      e[i].name);
        ck_assert_msg(dt == e[i].dt && syn_shape_equal(&sh, &e[i].shape), "%s saved as %s with another shape",
                      e[i].name, syn_dtype_name(dt));
        if (dt == SYN_I64) ck_assert_int_eq(*(const int64_t *)data, 0);
        else ck_assert_msg(memcmp(data, e[i].data, bytes) == 0, "%s: other values saved than loaded", e[i].name);
    }
    syn_safetensors_close(f);
}

/* ---- running a model ------------------------------------------------------------- */

typedef struct {
    syn_params *p;
    syn_graph *g;
} net;

static void net_begin(net *n, uint64_t init_seed) {
    TU_OK(syn_params_create(syn_cpu(), init_seed, &n->p));
    TU_OK(syn_graph_create(n->p, &n->g));
}

static void net_end(net *n) {
    syn_graph_free(n->g);
    syn_params_free(n->p);
}

/* Compiles (inference), feeds x, runs train_passes forward passes in training
 * mode (batch norm's running statistics move), then one in eval mode, and
 * reads out (ny floats). */
static void net_run(net *n, syn_node *x, const void *xdata, syn_node *out, float *y, int64_t ny, int train_passes) {
    TU_OK(syn_graph_status(n->g));
    TU_OK(syn_graph_keep(n->g, out));
    syn_compile_opts co = {.inference = true};
    TU_OK(syn_graph_compile(n->g, syn_cpu(), &co));
    TU_OK(syn_graph_feed(n->g, x, xdata, syn_node_shape(x)));
    syn_graph_set_training(n->g, true);
    for (int k = 0; k < train_passes; k++) TU_OK(syn_graph_forward(n->g));
    syn_graph_set_training(n->g, false);
    TU_OK(syn_graph_forward(n->g));
    syn_shape ys = syn_node_shape(out);
    ck_assert_int_eq(syn_shape_numel(&ys), ny);
    TU_OK(syn_graph_read(n->g, out, y, (size_t)ny * sizeof *y));
}

static double sigm(double v) { return 1.0 / (1.0 + exp(-v)); }

/* ---- Linear ----------------------------------------------------------------------- */

START_TEST(linear_state_dict) {
    enum { N = 4, I = 5, O = 3 };
    tu_rng r = tu_rng_make(1);
    float w[O * I], b[O], x[N * I], y[N * O];
    tu_fill(&r, w, O * I, -1, 1);
    tu_fill(&r, b, O, -1, 1);
    tu_fill(&r, x, N * I, -2, 2);
    st_ent e[] = {{"fc.weight", SYN_F32, syn_shape2(O, I), w}, {"fc.bias", SYN_F32, syn_shape1(O), b}};
    const char *path = tu_path("linear.safetensors");
    st_write_raw(path, e, 2);

    net n;
    net_begin(&n, 99);
    syn_node *xn = syn_input(n.g, "x", SYN_F32, syn_shape2(N, I));
    syn_node *yn = syn_linear(n.g, xn, O, "fc", NULL);
    TU_OK(syn_params_load(n.p, path, true));
    net_run(&n, xn, x, yn, y, N * O, 0);
    double ref[N * O];
    for (int i = 0; i < N; i++)
        for (int o = 0; o < O; o++) { /* y = x W^T + b, W: (out, in) */
            double s = b[o];
            for (int k = 0; k < I; k++) s += (double)w[o * I + k] * x[i * I + k];
            ref[i * O + o] = s;
        }
    TU_CLOSE(y, ref, N * O, 1e-5, 1e-5);
    check_saved_like(n.p, e, 2);
    net_end(&n);
}
END_TEST

/* ---- Conv2d (stride 2, pad 1, 2 groups) + BatchNorm2d in eval mode ------------------- */

enum { CB_N = 2, CB_C = 4, CB_H = 7, CB_W = 6, CB_K = 6, CB_R = 3, CB_G = 2, CB_P = 4, CB_Q = 3 };

static syn_node *convbn_build(net *n, syn_node **xn) {
    *xn = syn_input(n->g, "x", SYN_F32, syn_shape4(CB_N, CB_C, CB_H, CB_W));
    syn_conv_opts co = {0};
    co.conv = (syn_conv_params){.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = CB_G};
    syn_node *c = syn_conv2d(n->g, *xn, CB_K, CB_R, CB_R, "conv", &co);
    return syn_batch_norm(n->g, c, "bn");
}

START_TEST(conv_bn_state_dict) {
    enum { CG = CB_C / CB_G, KG = CB_K / CB_G };
    tu_rng r = tu_rng_make(2);
    float w[CB_K * CG * CB_R * CB_R], b[CB_K], gamma[CB_K], beta[CB_K], rm[CB_K], rv[CB_K];
    float x[CB_N * CB_C * CB_H * CB_W], y[CB_N * CB_K * CB_P * CB_Q];
    tu_fill(&r, w, CB_K * CG * CB_R * CB_R, -0.5f, 0.5f);
    tu_fill(&r, b, CB_K, -0.5f, 0.5f);
    tu_fill(&r, gamma, CB_K, 0.5f, 1.5f);
    tu_fill(&r, beta, CB_K, -0.5f, 0.5f);
    tu_fill(&r, rm, CB_K, -0.3f, 0.3f);
    tu_fill(&r, rv, CB_K, 0.2f, 2.0f);
    tu_fill(&r, x, CB_N * CB_C * CB_H * CB_W, -1, 1);
    int64_t nbt = 17;
    st_ent e[] = {{"conv.weight", SYN_F32, syn_shape4(CB_K, CG, CB_R, CB_R), w},
                  {"conv.bias", SYN_F32, syn_shape1(CB_K), b},
                  {"bn.weight", SYN_F32, syn_shape1(CB_K), gamma},
                  {"bn.bias", SYN_F32, syn_shape1(CB_K), beta},
                  {"bn.running_mean", SYN_F32, syn_shape1(CB_K), rm},
                  {"bn.running_var", SYN_F32, syn_shape1(CB_K), rv},
                  {"bn.num_batches_tracked", SYN_I64, syn_shape0(), &nbt}};
    const int ne = (int)(sizeof e / sizeof *e);
    const char *path = tu_path("convbn.safetensors");
    st_write_raw(path, e, ne);

    net n;
    syn_node *xn;
    net_begin(&n, 99);
    syn_node *yn = convbn_build(&n, &xn);
    TU_OK(syn_params_load(n.p, path, true)); /* strict, with num_batches_tracked in the file */
    net_run(&n, xn, x, yn, y, CB_N * CB_K * CB_P * CB_Q, 0);
    static double ref[CB_N * CB_K * CB_P * CB_Q];
    for (int i = 0; i < CB_N; i++)
        for (int k = 0; k < CB_K; k++)
            for (int p = 0; p < CB_P; p++)
                for (int q = 0; q < CB_Q; q++) {
                    /* w: (K, C/groups, R, S); output channel k reads group k / (K/groups) */
                    double s = b[k];
                    for (int c = 0; c < CG; c++)
                        for (int u = 0; u < CB_R; u++)
                            for (int v = 0; v < CB_R; v++) {
                                int hh = 2 * p - 1 + u, ww = 2 * q - 1 + v, ci = (k / KG) * CG + c;
                                if (hh < 0 || hh >= CB_H || ww < 0 || ww >= CB_W) continue;
                                s += (double)w[((k * CG + c) * CB_R + u) * CB_R + v] *
                                     x[((i * CB_C + ci) * CB_H + hh) * CB_W + ww];
                            }
                    ref[((i * CB_K + k) * CB_P + p) * CB_Q + q] =
                        gamma[k] * (s - rm[k]) / sqrt((double)rv[k] + 1e-5) + beta[k];
                }
    TU_CLOSE(y, ref, CB_N * CB_K * CB_P * CB_Q, 1e-5, 1e-5);
    check_saved_like(n.p, e, ne);

    /* strict mode still rejects what the model lacks: a counter beside a layer
     * that is no batch norm, a counter that is not an I64 scalar, any other name */
    st_ent bad1[] = {e[0], e[1], e[2], e[3], e[4], e[5], e[6], {"conv.num_batches_tracked", SYN_I64, syn_shape0(), &nbt}};
    st_write_raw(tu_path("bad1.safetensors"), bad1, 8);
    ck_assert_int_eq(syn_params_load(n.p, tu_path("bad1.safetensors"), true), SYN_ERR_FORMAT);
    ck_assert_msg(strstr(syn_last_error(), "'conv.num_batches_tracked' in the file is not a parameter"), "%s",
                  syn_last_error());
    TU_OK(syn_params_load(n.p, tu_path("bad1.safetensors"), false)); /* lenient: ignored */
    float nbt_f = 17;
    st_ent bad2[] = {e[0], e[1], e[2], e[3], e[4], e[5], {"bn.num_batches_tracked", SYN_F32, syn_shape0(), &nbt_f}};
    st_write_raw(tu_path("bad2.safetensors"), bad2, 7);
    ck_assert_int_eq(syn_params_load(n.p, tu_path("bad2.safetensors"), true), SYN_ERR_FORMAT);
    /* and a file without the counter (as Synapse wrote before, or a hand-made one) loads strictly */
    st_write_raw(tu_path("nocount.safetensors"), e, 6);
    TU_OK(syn_params_load(n.p, tu_path("nocount.safetensors"), true));
    net_end(&n);
}
END_TEST

/* ---- Embedding + 1-layer LSTM (batch first) -------------------------------------------- */

enum { SQ_B = 2, SQ_T = 5, SQ_V = 7, SQ_D = 4, SQ_H = 3 };

/* One PyTorch LSTM layer: gates stacked i, f, g, o in the rows of the weights. */
static void ref_lstm(const double *x, int B, int T, int I, int H, const float *wi, const float *wh, const float *bi,
                     const float *bh, double *out) {
    for (int b = 0; b < B; b++) {
        double h[16] = {0}, c[16] = {0}, a[64];
        for (int t = 0; t < T; t++) {
            const double *xt = x + (b * T + t) * I;
            for (int j = 0; j < 4 * H; j++) {
                double s = (double)bi[j] + bh[j];
                for (int k = 0; k < I; k++) s += wi[j * I + k] * xt[k];
                for (int k = 0; k < H; k++) s += wh[j * H + k] * h[k];
                a[j] = s;
            }
            for (int j = 0; j < H; j++) {
                double ig = sigm(a[j]), fg = sigm(a[H + j]), gg = tanh(a[2 * H + j]), og = sigm(a[3 * H + j]);
                c[j] = fg * c[j] + ig * gg;
                h[j] = og * tanh(c[j]);
                out[(b * T + t) * H + j] = h[j];
            }
        }
    }
}

/* One PyTorch GRU layer: gates r, z, n; n = tanh(W_in x + b_in + r (W_hn h + b_hn)). */
static void ref_gru(const double *x, int B, int T, int I, int H, const float *wi, const float *wh, const float *bi,
                    const float *bh, double *out) {
    for (int b = 0; b < B; b++) {
        double h[16] = {0}, ai[48], ah[48];
        for (int t = 0; t < T; t++) {
            const double *xt = x + (b * T + t) * I;
            for (int j = 0; j < 3 * H; j++) {
                double si = bi[j], sh = bh[j];
                for (int k = 0; k < I; k++) si += wi[j * I + k] * xt[k];
                for (int k = 0; k < H; k++) sh += wh[j * H + k] * h[k];
                ai[j] = si, ah[j] = sh;
            }
            for (int j = 0; j < H; j++) {
                double rg = sigm(ai[j] + ah[j]), zg = sigm(ai[H + j] + ah[H + j]);
                double ng = tanh(ai[2 * H + j] + rg * ah[2 * H + j]);
                h[j] = (1 - zg) * ng + zg * h[j];
            }
            for (int j = 0; j < H; j++) out[(b * T + t) * H + j] = h[j];
        }
    }
}

static syn_node *seq_build(net *n, syn_node **idx) {
    *idx = syn_input(n->g, "idx", SYN_I32, syn_shape2(SQ_B, SQ_T));
    syn_node *e = syn_embedding(n->g, *idx, SQ_V, SQ_D, "emb");
    syn_rnn_config rc = {.mode = SYN_RNN_LSTM, .hidden = SQ_H, .layers = 1};
    return syn_rnn(n->g, e, &rc, NULL, NULL, "lstm", NULL);
}

START_TEST(embedding_lstm_state_dict) {
    enum { G4 = 4 * SQ_H };
    tu_rng r = tu_rng_make(3);
    float emb[SQ_V * SQ_D], wi[G4 * SQ_D], wh[G4 * SQ_H], bi[G4], bh[G4], y[SQ_B * SQ_T * SQ_H];
    tu_fill(&r, emb, SQ_V * SQ_D, -1.5f, 1.5f);
    tu_fill(&r, wi, G4 * SQ_D, -0.8f, 0.8f);
    tu_fill(&r, wh, G4 * SQ_H, -0.8f, 0.8f);
    tu_fill(&r, bi, G4, -0.5f, 0.5f);
    tu_fill(&r, bh, G4, -0.5f, 0.5f);
    int32_t idx[SQ_B * SQ_T];
    for (int i = 0; i < SQ_B * SQ_T; i++) idx[i] = (int32_t)(tu_next(&r) % SQ_V);
    st_ent e[] = {{"emb.weight", SYN_F32, syn_shape2(SQ_V, SQ_D), emb},
                  {"lstm.weight_ih_l0", SYN_F32, syn_shape2(G4, SQ_D), wi},
                  {"lstm.weight_hh_l0", SYN_F32, syn_shape2(G4, SQ_H), wh},
                  {"lstm.bias_ih_l0", SYN_F32, syn_shape1(G4), bi},
                  {"lstm.bias_hh_l0", SYN_F32, syn_shape1(G4), bh}};
    const char *path = tu_path("seq.safetensors");
    st_write_raw(path, e, 5);

    net n;
    syn_node *in;
    net_begin(&n, 99);
    syn_node *yn = seq_build(&n, &in);
    TU_OK(syn_params_load(n.p, path, true));
    net_run(&n, in, idx, yn, y, SQ_B * SQ_T * SQ_H, 0);
    double xe[SQ_B * SQ_T * SQ_D], ref[SQ_B * SQ_T * SQ_H];
    for (int i = 0; i < SQ_B * SQ_T; i++)
        for (int d = 0; d < SQ_D; d++) xe[i * SQ_D + d] = emb[idx[i] * SQ_D + d]; /* weight: (num, dim) */
    ref_lstm(xe, SQ_B, SQ_T, SQ_D, SQ_H, wi, wh, bi, bh, ref);
    TU_CLOSE(y, ref, SQ_B * SQ_T * SQ_H, 1e-5, 1e-5);
    check_saved_like(n.p, e, 5);
    net_end(&n);
}
END_TEST

/* ---- a 2-layer GRU (batch first) ---------------------------------------------------- */

enum { GR_B = 3, GR_T = 4, GR_I = 5, GR_H = 4 };

static syn_node *gru_build(net *n, syn_node **xn) {
    *xn = syn_input(n->g, "x", SYN_F32, syn_shape3(GR_B, GR_T, GR_I));
    syn_rnn_config rc = {.mode = SYN_RNN_GRU, .hidden = GR_H, .layers = 2};
    return syn_rnn(n->g, *xn, &rc, NULL, NULL, "gru", NULL);
}

START_TEST(gru_state_dict) {
    enum { G3 = 3 * GR_H };
    tu_rng r = tu_rng_make(4);
    float wi0[G3 * GR_I], wh0[G3 * GR_H], bi0[G3], bh0[G3], wi1[G3 * GR_H], wh1[G3 * GR_H], bi1[G3], bh1[G3];
    float x[GR_B * GR_T * GR_I], y[GR_B * GR_T * GR_H];
    float *all[] = {wi0, wh0, bi0, bh0, wi1, wh1, bi1, bh1};
    const int sizes[] = {G3 * GR_I, G3 * GR_H, G3, G3, G3 * GR_H, G3 * GR_H, G3, G3};
    for (int k = 0; k < 8; k++) tu_fill(&r, all[k], sizes[k], -0.8f, 0.8f);
    tu_fill(&r, x, GR_B * GR_T * GR_I, -1.5f, 1.5f);
    st_ent e[] = {{"gru.weight_ih_l0", SYN_F32, syn_shape2(G3, GR_I), wi0}, {"gru.weight_hh_l0", SYN_F32, syn_shape2(G3, GR_H), wh0},
                  {"gru.bias_ih_l0", SYN_F32, syn_shape1(G3), bi0},         {"gru.bias_hh_l0", SYN_F32, syn_shape1(G3), bh0},
                  {"gru.weight_ih_l1", SYN_F32, syn_shape2(G3, GR_H), wi1}, {"gru.weight_hh_l1", SYN_F32, syn_shape2(G3, GR_H), wh1},
                  {"gru.bias_ih_l1", SYN_F32, syn_shape1(G3), bi1},         {"gru.bias_hh_l1", SYN_F32, syn_shape1(G3), bh1}};
    const char *path = tu_path("gru.safetensors");
    st_write_raw(path, e, 8);

    net n;
    syn_node *xn;
    net_begin(&n, 99);
    syn_node *yn = gru_build(&n, &xn);
    TU_OK(syn_params_load(n.p, path, true));
    net_run(&n, xn, x, yn, y, GR_B * GR_T * GR_H, 0);
    double xd[GR_B * GR_T * GR_I], h1[GR_B * GR_T * GR_H], ref[GR_B * GR_T * GR_H];
    for (int i = 0; i < GR_B * GR_T * GR_I; i++) xd[i] = x[i];
    ref_gru(xd, GR_B, GR_T, GR_I, GR_H, wi0, wh0, bi0, bh0, h1);
    ref_gru(h1, GR_B, GR_T, GR_H, GR_H, wi1, wh1, bi1, bh1, ref);
    TU_CLOSE(y, ref, GR_B * GR_T * GR_H, 1e-5, 1e-5);
    check_saved_like(n.p, e, 8);
    net_end(&n);
}
END_TEST

/* ---- through PyTorch -------------------------------------------------------------- */

/* $SYN_PYTHON, else the repository's .venv, else python3. */
static const char *find_python(char *buf, size_t size) {
    const char *e = getenv("SYN_PYTHON");
    if (e && *e) return snprintf(buf, size, "%s", e), buf;
    tu_source_path(".venv/bin/python", buf, size);
    if (access(buf, X_OK) == 0) return buf;
    return snprintf(buf, size, "python3"), buf;
}

/* The models of tests/interop/torch_roundtrip.py, with the same names and sizes. */
static syn_node *linear_build(net *n, syn_node **xn) {
    *xn = syn_input(n->g, "x", SYN_F32, syn_shape2(4, 5));
    return syn_linear(n->g, *xn, 3, "fc", NULL);
}

/* ConvTranspose2d(4, 6, 3, stride 2, padding 1, output_padding 1, groups 2):
 * weight (C, K/groups, R, S). */
static syn_node *deconv_build(net *n, syn_node **xn) {
    *xn = syn_input(n->g, "x", SYN_F32, syn_shape4(2, 4, 5, 5));
    syn_conv_opts co = {0};
    co.conv = (syn_conv_params){.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 2, .out_pad_h = 1,
                                .out_pad_w = 1};
    return syn_conv_transpose2d(n->g, *xn, 6, 3, 3, "deconv", &co);
}

static syn_node *seqfc_build(net *n, syn_node **idx) {
    return syn_linear(n->g, seq_build(n, idx), 2, "fc", NULL);
}

static const struct {
    const char *name;
    syn_node *(*build)(net *n, syn_node **x);
} torch_cases[] = {{"linear", linear_build}, {"convbn", convbn_build}, {"deconv", deconv_build}, {"seq", seqfc_build}, {"gru", gru_build}};

/* A tensor of a file as F32 (or I32 from PyTorch's I64 indices). */
static void *read_tensor(const syn_safetensors *f, const char *name, syn_node *want) {
    syn_dtype dt;
    syn_shape sh, ws = syn_node_shape(want);
    const void *data;
    size_t bytes;
    TU_OK(syn_safetensors_find(f, name, &dt, &sh, &data, &bytes));
    ck_assert_msg(syn_shape_equal(&sh, &ws), "%s: shape differs from the model's", name);
    int64_t n = syn_shape_numel(&sh);
    void *out = malloc((size_t)n * 4);
    ck_assert_ptr_nonnull(out);
    if (dt == SYN_I64)
        for (int64_t i = 0; i < n; i++) ((int32_t *)out)[i] = (int32_t)((const int64_t *)data)[i];
    else {
        ck_assert_int_eq(dt, syn_node_dtype(want));
        memcpy(out, data, (size_t)n * 4);
    }
    return out;
}

START_TEST(torch_round_trip) {
    char py[512], script[512], cmd[2048], p[600];
    char *out;
    find_python(py, sizeof py);
    tu_source_path("tests/interop/torch_roundtrip.py", script, sizeof script);
    snprintf(cmd, sizeof cmd, "'%s' '%s' export '%s' 2>&1", py, script, tu_dir);
    int rc = tu_run_cmd(cmd, &out);
    if (rc == 77 || rc == 127) { /* the script's "PyTorch not importable (...)", or no such python */
        const char *why = tu_last_line(out);
        fprintf(stderr, "test_interop: SKIPPED: %s%s%s\n", rc == 127 ? "PyTorch not importable (" : why,
                rc == 127 ? why : "", rc == 127 ? ")" : "");
        free(out);
        return;
    }
    ck_assert_msg(rc == 0, "%s -> %d: %s", cmd, rc, out);
    free(out);
    for (size_t c = 0; c < sizeof torch_cases / sizeof *torch_cases; c++) {
        const char *name = torch_cases[c].name;
        syn_safetensors *io;
        snprintf(p, sizeof p, "%s/%s_io.safetensors", tu_dir, name);
        TU_OK(syn_safetensors_open(p, &io));

        /* PyTorch -> Synapse: its state_dict, strictly, and its outputs */
        net n;
        syn_node *xn;
        net_begin(&n, 99);
        syn_node *yn = torch_cases[c].build(&n, &xn);
        snprintf(p, sizeof p, "%s/%s.safetensors", tu_dir, name);
        TU_OK(syn_params_load(n.p, p, true));
        void *x = read_tensor(io, "x", xn);
        float *want = read_tensor(io, "y", yn);
        syn_shape ys = syn_node_shape(yn);
        int64_t ny = syn_shape_numel(&ys);
        float *y = malloc((size_t)ny * sizeof *y);
        net_run(&n, xn, x, yn, y, ny, 0);
        double e = tu_rel_err(y, want, ny);
        ck_assert_msg(e <= 1e-5, "%s: Synapse's outputs differ from PyTorch's by %g (relative, by norm)", name, e);
        net_end(&n);

        /* Synapse -> PyTorch: a model of Synapse's own initialisation (batch
         * norm's running statistics moved by two training passes), its
         * parameters and outputs, for the script to load and compare */
        net m;
        net_begin(&m, 1000 + c);
        yn = torch_cases[c].build(&m, &xn);
        net_run(&m, xn, x, yn, y, ny, 2);
        ck_assert_msg(tu_rel_err(y, want, ny) > 1e-2, "%s: Synapse's own model gives PyTorch's outputs", name);
        snprintf(p, sizeof p, "%s/%s_syn.safetensors", tu_dir, name);
        TU_OK(syn_params_save(m.p, p));
        syn_safetensors_writer *w;
        TU_OK(syn_safetensors_writer_create(&w));
        TU_OK(syn_safetensors_add(w, "y", SYN_F32, syn_node_shape(yn), y));
        snprintf(p, sizeof p, "%s/%s_syn_y.safetensors", tu_dir, name);
        TU_OK(syn_safetensors_write(w, p));
        syn_safetensors_writer_free(w);
        net_end(&m);
        free(x), free(want), free(y);
        syn_safetensors_close(io);
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' check '%s' 2>&1", py, script, tu_dir);
    rc = tu_run_cmd(cmd, &out);
    ck_assert_msg(rc == 0, "%s -> %d: %s", cmd, rc, out);
    ck_assert_msg(strstr(out, "5 models ok"), "%s", out);
    fputs(out, stderr);
    free(out);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("interop");
    TCase *t = tcase_create("state_dict");
    tcase_add_checked_fixture(t, tu_dir_setup, tu_dir_teardown);
    tcase_add_test(t, linear_state_dict);
    tcase_add_test(t, conv_bn_state_dict);
    tcase_add_test(t, embedding_lstm_state_dict);
    tcase_add_test(t, gru_state_dict);
    suite_add_tcase(s, t);
    TCase *tt = tcase_create("torch");
    tcase_add_checked_fixture(tt, tu_dir_setup, tu_dir_teardown);
    tcase_set_timeout(tt, 120);
    tcase_add_test(tt, torch_round_trip);
    suite_add_tcase(s, tt);
    return s;
}

int main(void) { return tu_run(suite()); }
