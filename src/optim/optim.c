/* Optimizers over a parameter set: configuration (PyTorch's defaults and
 * checks), per-parameter state buffers on the parameters' device, and the
 * step that hands each trainable parameter to the backend's optim_update. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "../backend.h"
#include "optim_internal.h"

/* One parameter's state, indexed like the set's items (parameters are only
 * ever appended). Each keeps its own step count, as torch.optim's state["step"]:
 * a parameter added late or frozen for a while starts its bias correction at 1. */
typedef struct {
    float *s1, *s2; /* device buffers, NULL until first needed */
    int64_t n;      /* elements the buffers were made for */
    int64_t step;   /* updates applied to this parameter */
} slot;

struct syn_optim {
    syn_params *params; /* borrowed */
    syn_optim_config cfg;
    int64_t steps;
    slot *slots;
    int n_slots;
    syn__optim_args *args; /* n_slots: one step's updates, handed to the backend at once */
};

static const char *const kind_names[] = {"sgd", "rmsprop", "adam", "adamw"};

syn_optim_config syn_optim_defaults(syn_optim_kind kind) {
    syn_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.alpha = 0.99f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    switch (kind) {
    case SYN_OPTIM_SGD: c.lr = 0.01f; break;
    case SYN_OPTIM_RMSPROP: c.lr = 0.01f; break;
    case SYN_OPTIM_ADAM: c.lr = 1e-3f; break;
    case SYN_OPTIM_ADAMW: c.lr = 1e-3f; c.weight_decay = 0.01f; break;
    default: c.lr = 0.01f; break; /* syn_optim_create reports the bad kind */
    }
    return c;
}

syn_status syn_optim_kind_parse(const char *text, syn_optim_kind *out) {
    if (!text || !out) return syn__error(SYN_ERR_ARG, "syn_optim_kind_parse: NULL argument");
    for (int k = 0; k < (int)(sizeof kind_names / sizeof *kind_names); k++)
        if (strcasecmp(text, kind_names[k]) == 0) {
            *out = (syn_optim_kind)k;
            return SYN_OK;
        }
    return syn__error(SYN_ERR_ARG, "unknown optimizer '%s' (expected sgd, rmsprop, adam or adamw)", text);
}

const char *syn_optim_kind_name(syn_optim_kind kind) {
    if ((int)kind < 0 || (int)kind >= (int)(sizeof kind_names / sizeof *kind_names)) return "unknown";
    return kind_names[kind];
}

/* Only the fields the kind reads are checked: a hand-built SGD config need
 * not carry sensible Adam betas. */
static syn_status check_config(const syn_optim_config *c) {
    const char *k = syn_optim_kind_name(c->kind);
    if (strcmp(k, "unknown") == 0) return syn__error(SYN_ERR_ARG, "optimizer: unknown kind %d", (int)c->kind);
    if (!(c->lr > 0.0f) || !isfinite(c->lr))
        return syn__error(SYN_ERR_ARG, "%s: learning rate %g must be finite and > 0", k, c->lr);
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        return syn__error(SYN_ERR_ARG, "%s: weight_decay %g must be finite and >= 0", k, c->weight_decay);
    switch (c->kind) {
    case SYN_OPTIM_SGD:
        if (!(c->momentum >= 0.0f) || !isfinite(c->momentum))
            return syn__error(SYN_ERR_ARG, "sgd: momentum %g must be finite and >= 0", c->momentum);
        if (c->nesterov && !(c->momentum > 0.0f))
            return syn__error(SYN_ERR_ARG, "sgd: nesterov momentum requires momentum > 0 (and no dampening)");
        break;
    case SYN_OPTIM_RMSPROP:
        if (!(c->alpha >= 0.0f && c->alpha < 1.0f))
            return syn__error(SYN_ERR_ARG, "rmsprop: alpha %g must be in [0, 1)", c->alpha);
        if (!(c->eps > 0.0f) || !isfinite(c->eps))
            return syn__error(SYN_ERR_ARG, "rmsprop: eps %g must be finite and > 0", c->eps);
        break;
    case SYN_OPTIM_ADAM:
    case SYN_OPTIM_ADAMW:
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f))
            return syn__error(SYN_ERR_ARG, "%s: beta1 %g must be in [0, 1)", k, c->beta1);
        if (!(c->beta2 >= 0.0f && c->beta2 < 1.0f))
            return syn__error(SYN_ERR_ARG, "%s: beta2 %g must be in [0, 1)", k, c->beta2);
        if (!(c->eps > 0.0f) || !isfinite(c->eps))
            return syn__error(SYN_ERR_ARG, "%s: eps %g must be finite and > 0", k, c->eps);
        break;
    }
    return SYN_OK;
}

syn_status syn_optim_create(syn_params *params, const syn_optim_config *cfg, syn_optim **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_optim_create: out is NULL");
    *out = NULL;
    if (!params || !cfg) return syn__error(SYN_ERR_ARG, "syn_optim_create: NULL parameter set or config");
    SYN_TRY(check_config(cfg));
    if (!params->be->optim_update)
        return syn__error(SYN_ERR_UNSUPPORTED, "optimizer: backend '%s' has no optim_update", params->be->name);
    syn_optim *o = syn__calloc(1, sizeof *o, "syn_optim_create");
    if (!o) return SYN_ERR_OOM;
    o->params = params;
    o->cfg = *cfg;
    /* State is made at the first step: layers add parameters lazily, and a
     * frozen parameter never needs any. */
    *out = o;
    return SYN_OK;
}

void syn_optim_free(syn_optim *o) {
    if (!o) return;
    syn_backend *be = o->params->be;
    for (int i = 0; i < o->n_slots; i++) {
        if (o->slots[i].s1) be->free(be, o->slots[i].s1);
        if (o->slots[i].s2) be->free(be, o->slots[i].s2);
    }
    free(o->slots);
    free(o->args);
    free(o);
}

/* A zeroed device buffer of n floats. */
static syn_status state_buffer(syn_backend *be, int64_t n, float **out) {
    size_t bytes = (size_t)n * sizeof(float);
    SYN_TRY(be->alloc(be, bytes, (void **)out));
    syn_status s = be->zero(be, *out, bytes);
    if (s != SYN_OK) {
        be->free(be, *out);
        *out = NULL;
    }
    return s;
}

/* Slots (zeroed, without buffers) and update arguments for every parameter
 * of the set. */
static syn_status grow_slots(syn_optim *o) {
    int n = o->params->n;
    if (n <= o->n_slots) return SYN_OK;
    slot *sl = realloc(o->slots, (size_t)n * sizeof *sl);
    if (!sl) return syn__error(SYN_ERR_OOM, "optimizer: cannot grow state to %d parameters", n);
    memset(sl + o->n_slots, 0, (size_t)(n - o->n_slots) * sizeof *sl);
    o->slots = sl;
    syn__optim_args *args = realloc(o->args, (size_t)n * sizeof *args);
    if (!args) return syn__error(SYN_ERR_OOM, "optimizer: cannot grow state to %d parameters", n);
    o->args = args;
    o->n_slots = n;
    return SYN_OK;
}

/* Makes sure every trainable parameter has the buffers its update reads.
 * Done for all of them before any update, so a failure leaves no parameter
 * half a step ahead of the others. */
static syn_status ensure_state(syn_optim *o) {
    syn_params *ps = o->params;
    syn_backend *be = ps->be;
    SYN_TRY(grow_slots(o));
    const syn_optim_kind k = o->cfg.kind;
    const bool need1 = (k == SYN_OPTIM_SGD) ? o->cfg.momentum != 0.0f : true;
    const bool need2 = k == SYN_OPTIM_ADAM || k == SYN_OPTIM_ADAMW;
    for (int i = 0; i < ps->n; i++) {
        const syn__param *it = &ps->items[i];
        if (!it->trainable) continue;
        slot *sl = &o->slots[i];
        int64_t n = syn_tensor_numel(it->value);
        if ((sl->s1 || sl->s2) && sl->n != n)
            return syn__error(SYN_ERR_SHAPE, "optimizer: parameter '%s' has %lld elements, its state %lld",
                              it->name, (long long)n, (long long)sl->n);
        sl->n = n;
        if (need1 && !sl->s1) SYN_TRY(state_buffer(be, n, &sl->s1));
        if (need2 && !sl->s2) SYN_TRY(state_buffer(be, n, &sl->s2));
    }
    return SYN_OK;
}

syn_status syn_optim_step(syn_optim *o) {
    if (!o) return syn__error(SYN_ERR_ARG, "syn_optim_step: NULL optimizer");
    syn_params *ps = o->params;
    syn_backend *be = ps->be;
    SYN_TRY(ensure_state(o));
    syn__optim_args a;
    memset(&a, 0, sizeof a);
    a.kind = o->cfg.kind;
    a.lr = o->cfg.lr;
    a.momentum = o->cfg.momentum;
    a.weight_decay = o->cfg.weight_decay;
    a.alpha = o->cfg.alpha;
    a.beta1 = o->cfg.beta1;
    a.beta2 = o->cfg.beta2;
    a.eps = o->cfg.eps;
    a.nesterov = o->cfg.nesterov;
    int count = 0;
    for (int i = 0; i < ps->n; i++) {
        const syn__param *it = &ps->items[i];
        if (!it->trainable) continue;
        slot *sl = &o->slots[i];
        a.step = sl->step + 1;
        a.p = syn__tensor_data(it->value);
        a.g = syn__tensor_data(it->grad);
        a.s1 = sl->s1;
        a.s2 = sl->s2;
        a.n = sl->n;
        o->args[count++] = a;
    }
    SYN_TRY(be->optim_update(be, o->args, count));
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].trainable) o->slots[i].step++;
    o->steps++;
    return SYN_OK;
}

void syn_optim_set_lr(syn_optim *o, float lr) {
    if (!o) return;
    /* 0 is allowed here (a schedule may end there); nonsense is ignored,
     * since this call cannot fail. */
    if (!(lr >= 0.0f) || !isfinite(lr)) {
        syn__error(SYN_ERR_ARG, "syn_optim_set_lr: learning rate %g ignored", lr);
        return;
    }
    o->cfg.lr = lr;
}

float syn_optim_lr(const syn_optim *o) { return o ? o->cfg.lr : 0.0f; }
int64_t syn_optim_steps(const syn_optim *o) { return o ? o->steps : 0; }

/* ---- state access for checkpoints (optim_internal.h) ------------------------- */

const char *syn__optim_state_name(const syn_optim_config *cfg, int which) {
    switch (cfg->kind) {
    case SYN_OPTIM_SGD: return which == 0 && cfg->momentum != 0.0f ? "momentum_buffer" : NULL;
    case SYN_OPTIM_RMSPROP: return which == 0 ? "square_avg" : NULL;
    case SYN_OPTIM_ADAM:
    case SYN_OPTIM_ADAMW: return which == 0 ? "exp_avg" : which == 1 ? "exp_avg_sq" : NULL;
    }
    return NULL;
}

syn_params *syn__optim_params(const syn_optim *o) { return o->params; }
const syn_optim_config *syn__optim_config(const syn_optim *o) { return &o->cfg; }

int64_t syn__optim_param_step(const syn_optim *o, int i) {
    return i >= 0 && i < o->n_slots ? o->slots[i].step : 0;
}

static float *slot_buf(const syn_optim *o, int i, int which) {
    if (i < 0 || i >= o->n_slots) return NULL;
    return which == 0 ? o->slots[i].s1 : which == 1 ? o->slots[i].s2 : NULL;
}

bool syn__optim_state_has(const syn_optim *o, int i, int which, int64_t *n) {
    float *b = slot_buf(o, i, which);
    if (b && n) *n = o->slots[i].n;
    return b != NULL;
}

syn_status syn__optim_state_read(const syn_optim *o, int i, int which, float *host, int64_t n) {
    float *b = slot_buf(o, i, which);
    if (!b || o->slots[i].n != n)
        return syn__error(SYN_ERR_ARG, "optimizer state: parameter %d has no buffer %d of %lld floats", i, which,
                          (long long)n);
    syn_backend *be = o->params->be;
    return be->copy_d2h(be, host, b, (size_t)n * sizeof(float));
}

void syn__optim_reset(syn_optim *o) {
    syn_backend *be = o->params->be;
    for (int i = 0; i < o->n_slots; i++) {
        if (o->slots[i].s1) be->free(be, o->slots[i].s1);
        if (o->slots[i].s2) be->free(be, o->slots[i].s2);
    }
    free(o->slots);
    o->slots = NULL;
    o->n_slots = 0;
    o->steps = 0;
}

syn_status syn__optim_state_write(syn_optim *o, int i, int which, const float *host, int64_t n) {
    syn_params *ps = o->params;
    if (i < 0 || i >= ps->n || (which != 0 && which != 1))
        return syn__error(SYN_ERR_ARG, "optimizer state: no parameter %d / buffer %d", i, which);
    int64_t want = syn_tensor_numel(ps->items[i].value);
    if (n != want)
        return syn__error(SYN_ERR_SHAPE, "optimizer state: parameter '%s' has %lld elements, the state %lld",
                          ps->items[i].name, (long long)want, (long long)n);
    SYN_TRY(grow_slots(o));
    slot *sl = &o->slots[i];
    if ((sl->s1 || sl->s2) && sl->n != n)
        return syn__error(SYN_ERR_SHAPE, "optimizer state: parameter '%s' has state of %lld elements, not %lld",
                          ps->items[i].name, (long long)sl->n, (long long)n);
    float **b = which == 0 ? &sl->s1 : &sl->s2;
    syn_backend *be = ps->be;
    if (!*b) SYN_TRY(state_buffer(be, n, b));
    sl->n = n;
    return be->copy_h2d(be, *b, host, (size_t)n * sizeof(float));
}

syn_status syn__optim_set_param_step(syn_optim *o, int i, int64_t step) {
    if (i < 0 || i >= o->params->n || step < 0)
        return syn__error(SYN_ERR_ARG, "optimizer state: parameter %d, step %lld", i, (long long)step);
    SYN_TRY(grow_slots(o));
    o->slots[i].step = step;
    if (!o->slots[i].s1 && !o->slots[i].s2) o->slots[i].n = syn_tensor_numel(o->params->items[i].value);
    return SYN_OK;
}

void syn__optim_set_steps(syn_optim *o, int64_t steps) { o->steps = steps; }
