/* Sequence kernels on the CPU: slice, embedding, and the recurrent op (tanh /
 * relu RNN, LSTM, GRU). The recurrent op does its input projection for all
 * steps in one GEMM, one (B, H) x (H, G H) GEMM per step for the recurrence
 * (for small batches on W_hh packed once, panel.c), and readable loops for
 * the cell equations; the backward pass runs the steps in reverse, then
 * forms the weight and input gradients with three GEMMs. */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "cpu.h"
#include "vmath.h"

/* ---- slice ---------------------------------------------------------------- */

syn_status syn__cpu_slice_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    int64_t outer, full, inner, start = n->i[1], len = n->i[2];
    syn__slice_dims(n, &outer, &full, &inner);
    size_t es = syn_dtype_size(n->dtype), row = (size_t)(len * inner) * es;
    const char *x = n->in[0]->value;
    char *y = n->value;
#pragma omp parallel for if (outer * len * inner > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) memcpy(y + (size_t)o * row, x + (size_t)((o * full + start) * inner) * es, row);
    return SYN_OK;
}

/* dx's slice gets dy; where dx's gradient is fresh (syn__grad_add false),
 * the rest of each row is zeroed here rather than the whole of dx before. */
syn_status syn__cpu_slice_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dx = syn__cgrad(n, 0);
    if (!dx) return SYN_OK;
    int64_t outer, full, inner, start = n->i[1], len = n->i[2];
    syn__slice_dims(n, &outer, &full, &inner);
    const float *dy = n->grad;
    const bool add = syn__grad_add(n, 0);
    const int64_t part = len * inner, before = start * inner, after = (full - start - len) * inner;
#pragma omp parallel for if (outer * full * inner > SYN_CPU_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        float *d = dx + o * full * inner;
        const float *s = dy + o * part;
        if (add) {
            for (int64_t k = 0; k < part; k++) d[before + k] += s[k];
        } else {
            memset(d, 0, (size_t)before * sizeof *d);
            memcpy(d + before, s, (size_t)part * sizeof *d);
            memset(d + before + part, 0, (size_t)after * sizeof *d);
        }
    }
    return SYN_OK;
}

/* ---- embedding -------------------------------------------------------------- */

syn_status syn__cpu_embedding_fwd(syn_backend *be, syn_node *n) {
    (void)be;
    const int32_t *idx = n->in[0]->value;
    const float *w = syn__cin(n, 1);
    int64_t rows = syn__numel(n->in[0]), V = n->in[1]->shape.dim[0], D = n->in[1]->shape.dim[1];
    float *y = n->value;
    for (int64_t r = 0; r < rows; r++) {
        if (idx[r] < 0 || idx[r] >= V)
            return syn__error(SYN_ERR_ARG, "embedding: index %d at position %lld is outside the table's %lld rows",
                              idx[r], (long long)r, (long long)V);
        memcpy(y + r * D, w + (int64_t)idx[r] * D, (size_t)D * sizeof *y);
    }
    return SYN_OK;
}

syn_status syn__cpu_embedding_bwd(syn_backend *be, syn_node *n) {
    (void)be;
    float *dw = syn__cgrad(n, 1);
    if (!dw) return SYN_OK;
    const int32_t *idx = n->in[0]->value;
    int64_t rows = syn__numel(n->in[0]), D = n->in[1]->shape.dim[1];
    const float *dy = n->grad;
    for (int64_t r = 0; r < rows; r++) {
        float *d = dw + (int64_t)idx[r] * D;
        for (int64_t k = 0; k < D; k++) d[k] += dy[r * D + k];
    }
    return SYN_OK;
}

/* ---- the recurrent op ------------------------------------------------------------ */

/* Everything a step needs, read once from the node. */
typedef struct {
    int mode;
    int64_t B, T, In, H, G, S;
    const float *x, *wi, *wh, *bi, *bh, *s0;
    const float *zeros; /* S zeros in the workspace: the state before step 0 without s0 */
    const int32_t *len;
    float *y, *gates, *ghn; /* output; saved gates (B, T, G H); GRU: W_hn h + b_hn (B, T, H) */
} rnn_args;

/* check: validate the lengths (the forward does; the backward reads what
 * the forward accepted). */
static syn_status rnn_read(const syn_node *n, rnn_args *a, bool check) {
    memset(a, 0, sizeof *a);
    a->mode = (int)n->i[SYN_A_RNN_MODE];
    a->B = n->in[0]->shape.dim[0];
    a->T = n->in[0]->shape.dim[1];
    a->In = n->in[0]->shape.dim[2];
    a->H = n->i[SYN_A_RNN_HIDDEN];
    a->G = syn__rnn_gates(a->mode);
    a->S = syn__rnn_state(a->mode, a->H);
    a->x = syn__cin(n, 0);
    a->wi = syn__cin(n, 1);
    a->wh = syn__cin(n, 2);
    if (n->i[SYN_A_RNN_BIAS]) {
        a->bi = syn__cin(n, 3);
        a->bh = syn__cin(n, 4);
    }
    if (n->i[SYN_A_RNN_STATE]) a->s0 = syn__cin(n, (int)n->i[SYN_A_RNN_STATE]);
    if (n->i[SYN_A_RNN_LENGTHS]) {
        a->len = n->in[n->i[SYN_A_RNN_LENGTHS]]->value;
        for (int64_t b = 0; check && b < a->B; b++)
            if (a->len[b] < 0 || a->len[b] > a->T)
                return syn__error(SYN_ERR_ARG, "rnn: length %d of sample %lld is outside [0, %lld]", a->len[b],
                                  (long long)b, (long long)a->T);
    }
    a->y = n->value;
    a->gates = n->aux;
    a->ghn = a->mode == SYN_RNN_GRU ? a->gates + a->B * a->T * a->G * a->H : NULL;
    return SYN_OK;
}

/* The state before step t of sample b. Never NULL, so that the cell loops
 * read it unconditionally and vectorise. */
static inline const float *prev_state(const rnn_args *a, int64_t b, int64_t t) {
    if (t > 0) return a->y + (b * a->T + t - 1) * a->S;
    return a->s0 ? a->s0 + b * a->S : a->zeros;
}

/* Up to this batch, over at least RNN_PANEL_STEPS steps, the recurrent
 * products run on W_hh packed once per pass (panel.c): 2048 x 512 weights,
 * 2 cores, AVX-512: 0.25 ms a step at batch 16 and 0.85 at 64, where
 * OpenBLAS took 0.50-0.55 and 0.95-1.4 with its best kernels (and 1.2 and
 * 3.9 with the pre-AVX ones it picks on some CPUs it does not know). */
#define RNN_PANEL_BATCH 64
#define RNN_PANEL_STEPS 4
/* Below this batch OpenBLAS runs the recurrent product transposed: it splits
 * a GEMM of few rows poorly (B 16, G H 2048, H 512: 0.86 ms transposed
 * against 1.39 ms, 2 threads); from 64 rows on the two are even. */
#define RNN_NARROW_BATCH 32

static bool rnn_panels(const rnn_args *a) { return a->B <= RNN_PANEL_BATCH && a->T >= RNN_PANEL_STEPS; }

/* hw (B, G H) = h_{t-1} W_hh^T + b_hh; tmp: B G H floats of scratch; whp:
 * W_hh^T in panels, or NULL. */
static void recurrent_gemm(const rnn_args *a, int64_t t, const float *whp, float *hw, float *tmp) {
    int64_t B = a->B, GH = a->G * a->H;
    const float *h = t > 0 ? a->y + (t - 1) * a->S : a->s0;
    int64_t ld = t > 0 ? a->T * a->S : a->S;
    if (h && !whp && B < RNN_NARROW_BATCH) {
        /* tmp (G H, B) = W_hh h^T, then hw = tmp^T + b_hh */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)GH, (blasint)B, (blasint)a->H, 1.0f, a->wh,
                    (blasint)a->H, h, (blasint)ld, 0.0f, tmp, (blasint)B);
        for (int64_t b = 0; b < B; b++)
            for (int64_t k = 0; k < GH; k++) hw[b * GH + k] = tmp[k * B + b] + (a->bh ? a->bh[k] : 0.0f);
        return;
    }
    for (int64_t b = 0; b < B; b++) {
        if (a->bh) memcpy(hw + b * GH, a->bh, (size_t)GH * sizeof *hw);
        else memset(hw + b * GH, 0, (size_t)GH * sizeof *hw);
    }
    if (!h) return;
    if (whp) syn__panel_gemm(B, GH, a->H, h, ld, whp, hw, GH);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)B, (blasint)GH, (blasint)a->H, 1.0f, h,
                    (blasint)ld, a->wh, (blasint)a->H, 1.0f, hw, (blasint)GH);
}

/* The LSTM cell on H units. The gate rows i, f, c~, o (the input parts,
 * overwritten with the activated gates) and the rest as separate restrict
 * pointers: with g + k H offsets into one array GCC could not prove the
 * rows apart and left the loop scalar. */
SYN_CPU_CLONES static void lstm_forward(int64_t H, float *restrict gi, float *restrict gf, float *restrict gc,
                                        float *restrict go, const float *restrict hw, const float *restrict cprev,
                                        float *restrict h, float *restrict c) {
    for (int64_t j = 0; j < H; j++) {
        float i = syn__vsigmoidf(gi[j] + hw[j]), f = syn__vsigmoidf(gf[j] + hw[H + j]);
        float c_ = syn__vtanhf(gc[j] + hw[2 * H + j]), o = syn__vsigmoidf(go[j] + hw[3 * H + j]);
        float cj = f * cprev[j] + i * c_;
        gi[j] = i, gf[j] = f, gc[j] = c_, go[j] = o;
        c[j] = cj;
        h[j] = o * syn__vtanhf(cj);
    }
}

/* The GRU cell on H units: gate rows r, z, n as lstm_forward's; ghn keeps
 * W_hn h + b_hn for the backward. */
SYN_CPU_CLONES static void gru_forward(int64_t H, float *restrict gr, float *restrict gz, float *restrict gn,
                                       const float *restrict hw, const float *restrict hp, float *restrict ghn,
                                       float *restrict h) {
    for (int64_t j = 0; j < H; j++) {
        float r = syn__vsigmoidf(gr[j] + hw[j]), z = syn__vsigmoidf(gz[j] + hw[H + j]);
        float nn = syn__vtanhf(gn[j] + r * hw[2 * H + j]);
        gr[j] = r, gz[j] = z, gn[j] = nn;
        ghn[j] = hw[2 * H + j];
        h[j] = (1.0f - z) * nn + z * hp[j];
    }
}

/* The tanh or ReLU cell on H units. */
SYN_CPU_CLONES static void simple_forward(int64_t H, const float *restrict g, const float *restrict hw,
                                          float *restrict y, bool tanh_cell) {
    if (tanh_cell)
        for (int64_t j = 0; j < H; j++) y[j] = syn__vtanhf(g[j] + hw[j]);
    else
        for (int64_t j = 0; j < H; j++) y[j] = g[j] + hw[j] > 0.0f ? g[j] + hw[j] : 0.0f;
}

/* One step of one sample: gates g (the input part, overwritten with the
 * activated gates), hw the recurrent part, hp the previous state. The cells
 * are SYN_CPU_CLONES: the library's x86-64-v2 baseline ran them 4 wide,
 * 14% of a char-LSTM step (2 x 512, batch 64) on an AVX-512 machine. */
static void cell_forward(const rnn_args *a, float *g, const float *hw, const float *hp, float *y, float *ghn) {
    int64_t H = a->H;
    switch (a->mode) {
    case SYN_RNN_TANH:
    case SYN_RNN_RELU: simple_forward(H, g, hw, y, a->mode == SYN_RNN_TANH); break;
    case SYN_RNN_LSTM: lstm_forward(H, g, g + H, g + 2 * H, g + 3 * H, hw, hp + H, y, y + H); break;
    default: gru_forward(H, g, g + H, g + 2 * H, hw, hp, ghn, y); break;
    }
}

syn_status syn__cpu_rnn_fwd(syn_backend *be, syn_node *n) {
    rnn_args a;
    SYN_TRY(rnn_read(n, &a, true));
    int64_t B = a.B, T = a.T, GH = a.G * a.H, S = a.S;
    if (B == 0 || T == 0) return SYN_OK;
    /* the input projection of every step at once: gates = x W_ih^T + b_ih */
    for (int64_t r = 0; r < B * T; r++) {
        if (a.bi) memcpy(a.gates + r * GH, a.bi, (size_t)GH * sizeof(float));
        else memset(a.gates + r * GH, 0, (size_t)GH * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)(B * T), (blasint)GH, (blasint)a.In, 1.0f, a.x,
                (blasint)a.In, a.wi, (blasint)a.In, 1.0f, a.gates, (blasint)GH);
    /* workspace: hw and its scratch (B, G H) each, S zeros, W_hh^T in panels */
    size_t np = rnn_panels(&a) ? syn__panel_floats(a.H, GH) : 0;
    float *hw;
    SYN_TRY(be->workspace(be, ((size_t)(2 * B * GH + S) + np) * sizeof(float), (void **)&hw));
    memset(hw + 2 * B * GH, 0, (size_t)S * sizeof *hw);
    a.zeros = hw + 2 * B * GH;
    float *whp = np ? hw + 2 * B * GH + S : NULL;
    if (whp) syn__panel_pack(a.wh, a.H, GH, true, whp);
    for (int64_t t = 0; t < T; t++) {
        recurrent_gemm(&a, t, whp, hw, hw + B * GH);
/* one parallel region per step, for steps wide enough to pay for it */
#pragma omp parallel for schedule(static) if (B * GH >= SYN_CPU_PAR_MIN)
        for (int64_t b = 0; b < B; b++) {
            const float *hp = prev_state(&a, b, t);
            float *y = a.y + (b * T + t) * S;
            float *g = a.gates + (b * T + t) * GH;
            if (a.len && t >= a.len[b]) { /* past the end: carry the state */
                memcpy(y, hp, (size_t)S * sizeof *y);
                memset(g, 0, (size_t)GH * sizeof *g);
                if (a.ghn) memset(a.ghn + (b * T + t) * a.H, 0, (size_t)a.H * sizeof *g);
                continue;
            }
            cell_forward(&a, g, hw + b * GH, hp, y, a.ghn ? a.ghn + (b * T + t) * a.H : NULL);
        }
    }
    return SYN_OK;
}

/* The LSTM cell backward on H units: g the activated gates i, f, c~, o; c
 * and cprev the cell state after and before; dh and dc the gradients of h
 * and c after the step. Writes the gates' pre-activation gradients (one row
 * each) and dcprev, c's direct gradient before the step. */
SYN_CPU_CLONES static void lstm_backward(int64_t H, const float *restrict g, const float *restrict c,
                                         const float *restrict cprev, const float *restrict dh,
                                         const float *restrict dc, float *restrict di, float *restrict df,
                                         float *restrict dcand, float *restrict dout, float *restrict dcprev) {
    for (int64_t j = 0; j < H; j++) {
        float i = g[j], f = g[H + j], c_ = g[2 * H + j], o = g[3 * H + j];
        float tc = syn__vtanhf(c[j]);
        float dcj = dc[j] + dh[j] * o * (1.0f - tc * tc);
        di[j] = dcj * c_ * i * (1.0f - i);
        df[j] = dcj * cprev[j] * f * (1.0f - f);
        dcand[j] = dcj * i * (1.0f - c_ * c_);
        dout[j] = dh[j] * tc * o * (1.0f - o);
        dcprev[j] = dcj * f;
    }
}

/* The GRU cell backward on H units: g the activated gates r, z, n; ghn
 * W_hn h + b_hn; hp the state before the step, dh h's gradient after it.
 * Writes the input parts' gradients (dir, diz, din), the recurrent parts'
 * (drr, drz, drn) and dhprev, h's direct gradient before the step. */
SYN_CPU_CLONES static void gru_backward(int64_t H, const float *restrict g, const float *restrict ghn,
                                        const float *restrict hp, const float *restrict dh, float *restrict dir,
                                        float *restrict diz, float *restrict din, float *restrict drr,
                                        float *restrict drz, float *restrict drn, float *restrict dhprev) {
    for (int64_t j = 0; j < H; j++) {
        float r = g[j], z = g[H + j], nn = g[2 * H + j];
        float dn = dh[j] * (1.0f - z) * (1.0f - nn * nn);
        float dz = dh[j] * (hp[j] - nn) * z * (1.0f - z);
        float dr = dn * ghn[j] * r * (1.0f - r);
        dir[j] = drr[j] = dr;
        diz[j] = drz[j] = dz;
        din[j] = dn;
        drn[j] = dn * r;
        dhprev[j] = dh[j] * z;
    }
}

/* One step of one sample backward: dh (and dc) the state's gradient after
 * the step; writes the pre-activation gradients of the input part (di) and of
 * the recurrent part (dr; the same except the GRU's candidate) and the direct
 * part of the previous state's gradient (dprev: c for the LSTM, z dh for the
 * GRU; the GEMM with W_hh adds the rest). */
static void cell_backward(const rnn_args *a, const float *g, const float *ghn, const float *y, const float *hp,
                          const float *dh, const float *dc, float *di, float *dr, float *dprev) {
    int64_t H = a->H;
    switch (a->mode) {
    case SYN_RNN_TANH:
    case SYN_RNN_RELU:
        for (int64_t j = 0; j < H; j++) {
            float h = y[j];
            float d = dh[j] * (a->mode == SYN_RNN_TANH ? 1.0f - h * h : (h > 0.0f ? 1.0f : 0.0f));
            di[j] = dr[j] = d;
            dprev[j] = 0.0f;
        }
        break;
    case SYN_RNN_LSTM:
        lstm_backward(H, g, y + H, hp + H, dh, dc, di, di + H, di + 2 * H, di + 3 * H, dprev + H);
        memset(dprev, 0, (size_t)H * sizeof *dprev);
        if (dr != di) memcpy(dr, di, (size_t)(4 * H) * sizeof *dr);
        break;
    default: gru_backward(H, g, ghn, hp, dh, di, di + H, di + 2 * H, dr, dr + H, dr + 2 * H, dprev); break;
    }
}

syn_status syn__cpu_rnn_bwd(syn_backend *be, syn_node *n) {
    rnn_args a;
    SYN_TRY(rnn_read(n, &a, false));
    int64_t B = a.B, T = a.T, H = a.H, GH = a.G * H, S = a.S, BT = B * T;
    if (B == 0 || T == 0) return SYN_OK;
    bool gru = a.mode == SYN_RNN_GRU;
    /* workspace: dI (BT, GH), dR (BT, GH; GRU only), the running state
     * gradient (B, S) twice, the previous h of every step (BT, H), S zeros,
     * W_hh in panels */
    size_t np = rnn_panels(&a) ? syn__panel_floats(GH, H) : 0;
    size_t nf = (size_t)(BT * GH) * (gru ? 2 : 1) + (size_t)(2 * B * S) + (size_t)(BT * H) + (size_t)S + np;
    float *ws;
    SYN_TRY(be->workspace(be, nf * sizeof(float), (void **)&ws));
    float *dI = ws, *dR = gru ? dI + BT * GH : dI, *dnext = dR + BT * GH, *dcur = dnext + B * S, *hprev = dcur + B * S;
    memset(hprev + BT * H, 0, (size_t)S * sizeof *hprev);
    a.zeros = hprev + BT * H;
    float *whp = np ? hprev + BT * H + S : NULL;
    if (whp) syn__panel_pack(a.wh, GH, H, false, whp);
    const float *dy = n->grad;
    memset(dnext, 0, (size_t)(B * S) * sizeof *dnext);
    for (int64_t t = T - 1; t >= 0; t--) {
/* one parallel region per step, for steps wide enough to pay for it */
#pragma omp parallel for schedule(static) if (B * GH >= SYN_CPU_PAR_MIN)
        for (int64_t b = 0; b < B; b++) {
            float *d = dcur + b * S, *dn = dnext + b * S;
            const float *dyt = dy + (b * T + t) * S;
            for (int64_t k = 0; k < S; k++) d[k] = dyt[k] + dn[k];
            float *di = dI + (b * T + t) * GH, *dr = dR + (b * T + t) * GH;
            if (a.len && t >= a.len[b]) { /* the carried state passes its gradient on */
                memcpy(dn, d, (size_t)S * sizeof *dn);
                memset(di, 0, (size_t)GH * sizeof *di);
                if (gru) memset(dr, 0, (size_t)GH * sizeof *dr);
                continue;
            }
            cell_backward(&a, a.gates + (b * T + t) * GH, gru ? a.ghn + (b * T + t) * H : NULL, a.y + (b * T + t) * S,
                          prev_state(&a, b, t), d, a.mode == SYN_RNN_LSTM ? d + H : NULL, di, dr, dn);
        }
        /* dh_{t-1} += dR_t W_hh */
        if (whp) syn__panel_gemm(B, H, GH, dR + t * GH, T * GH, whp, dnext, S);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)B, (blasint)H, (blasint)GH, 1.0f,
                        dR + t * GH, (blasint)(T * GH), a.wh, (blasint)H, 1.0f, dnext, (blasint)S);
    }
    int st = (int)n->i[SYN_A_RNN_STATE];
    float *ds0 = st ? syn__cgrad(n, st) : NULL;
    if (ds0)
        for (int64_t k = 0; k < B * S; k++) ds0[k] += dnext[k];
    /* the previous h of every step, for dW_hh */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            memcpy(hprev + (b * T + t) * H, prev_state(&a, b, t), (size_t)H * sizeof *hprev);
        }
    float *dx = syn__cgrad(n, 0), *dwi = syn__cgrad(n, 1), *dwh = syn__cgrad(n, 2);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)BT, (blasint)a.In, (blasint)GH, 1.0f, dI,
                    (blasint)GH, a.wi, (blasint)a.In, 1.0f, dx, (blasint)a.In);
    if (dwi)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)GH, (blasint)a.In, (blasint)BT, 1.0f, dI,
                    (blasint)GH, a.x, (blasint)a.In, 1.0f, dwi, (blasint)a.In);
    if (dwh)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)GH, (blasint)H, (blasint)BT, 1.0f, dR,
                    (blasint)GH, hprev, (blasint)H, 1.0f, dwh, (blasint)H);
    if (n->i[SYN_A_RNN_BIAS]) {
        float *dbi = syn__cgrad(n, 3), *dbh = syn__cgrad(n, 4);
        for (int64_t r = 0; r < BT; r++)
            for (int64_t k = 0; k < GH; k++) {
                if (dbi) dbi[k] += dI[r * GH + k];
                if (dbh) dbh[k] += dR[r * GH + k];
            }
    }
    return SYN_OK;
}
