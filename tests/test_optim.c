/* Optimizers, schedules and gradient clipping on the CPU: every update rule
 * against a plain double-precision transcription of torch.optim, a few
 * hand-computed numbers, frozen and late-added parameters, bad configs. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define STEPS 3

/* ---- reference: torch.optim, single-tensor path, in double ---------------- */

/* One update of n elements at step t (1-based); s1/s2 start at zero. */
static void ref_update(const syn_optim_config *c, int64_t t, double *p, const float *gf, double *s1, double *s2,
                       int64_t n) {
    const double lr = c->lr, wd = c->weight_decay, mu = c->momentum;
    for (int64_t i = 0; i < n; i++) {
        double g = gf[i];
        switch (c->kind) {
        case SYN_OPTIM_SGD:
            g += wd * p[i];
            if (mu != 0.0) {
                s1[i] = t == 1 ? g : mu * s1[i] + g;
                g = c->nesterov ? g + mu * s1[i] : s1[i];
            }
            p[i] -= lr * g;
            break;
        case SYN_OPTIM_RMSPROP:
            g += wd * p[i];
            s1[i] = c->alpha * s1[i] + (1.0 - c->alpha) * g * g;
            p[i] -= lr * g / (sqrt(s1[i]) + c->eps);
            break;
        case SYN_OPTIM_ADAM:
        case SYN_OPTIM_ADAMW: {
            if (c->kind == SYN_OPTIM_ADAMW) p[i] *= 1.0 - lr * wd;
            else g += wd * p[i];
            s1[i] = c->beta1 * s1[i] + (1.0 - c->beta1) * g;
            s2[i] = c->beta2 * s2[i] + (1.0 - c->beta2) * g * g;
            double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
            p[i] -= (lr / bc1) * s1[i] / (sqrt(s2[i]) / sqrt(bc2) + c->eps);
            break;
        }
        }
    }
}

/* ---- helpers --------------------------------------------------------------- */

static float *read_all(const syn_tensor *t) {
    int64_t n = syn_tensor_numel(t);
    float *h = malloc((size_t)n * sizeof(float));
    ck_assert_ptr_nonnull(h);
    TU_OK(syn_tensor_read(t, h, (size_t)n * sizeof(float)));
    return h;
}

static void write_all(syn_tensor *t, const float *h) {
    TU_OK(syn_tensor_write(t, h, (size_t)syn_tensor_numel(t) * sizeof(float)));
}

/* A parameter `name` of n elements with value v0 (copied). */
static void add_param(syn_params *ps, const char *name, int64_t n, const float *v0, syn_tensor **value,
                      syn_tensor **grad) {
    TU_OK(syn_params_add(ps, name, syn_shape1(n), NULL, NULL));
    TU_OK(syn_params_find(ps, name, value, grad));
    write_all(*value, v0);
}

/* ---- every rule against the reference -------------------------------------- */

typedef struct {
    const char *what;
    syn_optim_config cfg;
    int64_t n;
} rule_case;

static syn_optim_config cfg_of(syn_optim_kind k, float lr) {
    syn_optim_config c = syn_optim_defaults(k);
    c.lr = lr;
    return c;
}

static rule_case rule_cases[16];
static int n_rule_cases;

static void build_rule_cases(void) {
    rule_case *r = rule_cases;
    syn_optim_config c;
    *r++ = (rule_case){"sgd", cfg_of(SYN_OPTIM_SGD, 0.1f), 13};
    c = cfg_of(SYN_OPTIM_SGD, 0.05f), c.momentum = 0.9f;
    *r++ = (rule_case){"sgd momentum", c, 13};
    c = cfg_of(SYN_OPTIM_SGD, 0.05f), c.momentum = 0.9f, c.nesterov = true, c.weight_decay = 0.01f;
    *r++ = (rule_case){"sgd nesterov + wd", c, 7};
    c = cfg_of(SYN_OPTIM_SGD, 0.05f), c.weight_decay = 0.1f;
    *r++ = (rule_case){"sgd wd", c, 1};
    *r++ = (rule_case){"rmsprop", cfg_of(SYN_OPTIM_RMSPROP, 0.01f), 13};
    c = cfg_of(SYN_OPTIM_RMSPROP, 0.01f), c.alpha = 0.9f, c.weight_decay = 0.1f;
    *r++ = (rule_case){"rmsprop alpha 0.9 + wd", c, 7};
    *r++ = (rule_case){"adam", cfg_of(SYN_OPTIM_ADAM, 0.01f), 13};
    c = cfg_of(SYN_OPTIM_ADAM, 0.01f), c.weight_decay = 0.1f;
    *r++ = (rule_case){"adam + wd", c, 7};
    c = cfg_of(SYN_OPTIM_ADAM, 2e-4f), c.beta1 = 0.5f; /* DCGAN's betas, the other lerp branch */
    *r++ = (rule_case){"adam beta1 0.5", c, 13};
    c = cfg_of(SYN_OPTIM_ADAMW, 0.01f), c.weight_decay = 0.1f;
    *r++ = (rule_case){"adamw", c, 13};
    *r++ = (rule_case){"adamw defaults", syn_optim_defaults(SYN_OPTIM_ADAMW), 7};
    /* past SYN_CPU_PAR_MIN: the OpenMP path */
    c = cfg_of(SYN_OPTIM_SGD, 0.05f), c.momentum = 0.9f, c.nesterov = true;
    *r++ = (rule_case){"sgd nesterov, threaded", c, 40009};
    *r++ = (rule_case){"rmsprop, threaded", cfg_of(SYN_OPTIM_RMSPROP, 0.01f), 40009};
    c = cfg_of(SYN_OPTIM_ADAMW, 0.01f), c.weight_decay = 0.1f;
    *r++ = (rule_case){"adamw, threaded", c, 40009};
    n_rule_cases = (int)(r - rule_cases);
}

START_TEST(test_rule_vs_reference) {
    const rule_case *rc = &rule_cases[_i];
    const int64_t n = rc->n;
    tu_rng rng = tu_rng_make(100 + (uint64_t)_i);
    float *v0 = malloc((size_t)n * sizeof(float)), *g = malloc((size_t)n * sizeof(float));
    double *p = calloc((size_t)n, sizeof(double)), *s1 = calloc((size_t)n, sizeof(double)),
           *s2 = calloc((size_t)n, sizeof(double));
    ck_assert(v0 && g && p && s1 && s2);
    tu_fill(&rng, v0, n, -1.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) p[i] = v0[i];

    syn_params *ps;
    syn_tensor *val, *grad;
    syn_optim *o;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    add_param(ps, "w", n, v0, &val, &grad);
    TU_OK(syn_optim_create(ps, &rc->cfg, &o));
    for (int t = 1; t <= STEPS; t++) {
        tu_fill(&rng, g, n, -1.0f, 1.0f);
        write_all(grad, g);
        TU_OK(syn_optim_step(o));
        ref_update(&rc->cfg, t, p, g, s1, s2, n);
        /* the gradient is an input: the update must leave it alone */
        float *g_after = read_all(grad);
        ck_assert_msg(memcmp(g, g_after, (size_t)n * sizeof(float)) == 0, "%s: gradient modified", rc->what);
        free(g_after);
    }
    ck_assert_int_eq(syn_optim_steps(o), STEPS);
    float *got = read_all(val);
    double ratio = tu_close_ratio(got, p, n, 1e-6, 1e-6);
    ck_assert_msg(ratio <= 1.0, "%s (n=%lld): differs from torch.optim's rule (ratio %g, seed %llu)", rc->what,
                  (long long)n, ratio, (unsigned long long)tu_seed());
    free(got);
    syn_optim_free(o);
    syn_params_free(ps);
    free(v0), free(g), free(p), free(s1), free(s2);
}
END_TEST

/* ---- hand-computed first steps --------------------------------------------- */

/* p after one step of cfg from p = p0 with gradient g (one element). */
static float one_step(syn_optim_config cfg, float p0, float g) {
    syn_params *ps;
    syn_tensor *val, *grad;
    syn_optim *o;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    add_param(ps, "w", 1, &p0, &val, &grad);
    write_all(grad, &g);
    TU_OK(syn_optim_create(ps, &cfg, &o));
    TU_OK(syn_optim_step(o));
    float p;
    TU_OK(syn_tensor_read(val, &p, sizeof p));
    syn_optim_free(o);
    syn_params_free(ps);
    return p;
}

START_TEST(test_hand_computed) {
    /* SGD: 1 - 0.1*2 */
    ck_assert_float_eq_tol(one_step(cfg_of(SYN_OPTIM_SGD, 0.1f), 1.0f, 2.0f), 0.8f, 1e-7f);
    /* momentum's first step is plain SGD (the buffer starts as the gradient) */
    syn_optim_config c = cfg_of(SYN_OPTIM_SGD, 0.1f);
    c.momentum = 0.9f;
    ck_assert_float_eq_tol(one_step(c, 1.0f, 2.0f), 0.8f, 1e-7f);
    /* nesterov's first step: g + mu*g = 1.9 g */
    c.nesterov = true;
    ck_assert_float_eq_tol(one_step(c, 1.0f, 2.0f), 1.0f - 0.1f * 3.8f, 1e-6f);
    /* RMSProp: s = 0.01*1, p -= 0.01 * 1/0.1 */
    ck_assert_float_eq_tol(one_step(cfg_of(SYN_OPTIM_RMSPROP, 0.01f), 1.0f, 1.0f), 0.9f, 1e-6f);
    /* Adam's first step moves by lr*sign(g): m^ = g, v^ = g^2 */
    ck_assert_float_eq_tol(one_step(cfg_of(SYN_OPTIM_ADAM, 0.1f), 1.0f, 0.5f), 0.9f, 1e-6f);
    ck_assert_float_eq_tol(one_step(cfg_of(SYN_OPTIM_ADAM, 0.1f), 1.0f, -3.0f), 1.1f, 1e-6f);
    /* AdamW: decay first (1 * (1 - 0.1*0.1)), then the Adam step */
    c = cfg_of(SYN_OPTIM_ADAMW, 0.1f);
    c.weight_decay = 0.1f;
    ck_assert_float_eq_tol(one_step(c, 1.0f, 0.5f), 0.89f, 1e-6f);
    /* Adam with L2 decay: the decay enters the gradient, so the sign step is unchanged */
    c = cfg_of(SYN_OPTIM_ADAM, 0.1f);
    c.weight_decay = 0.1f;
    ck_assert_float_eq_tol(one_step(c, 1.0f, 0.5f), 0.9f, 1e-6f);
}
END_TEST

/* ---- configuration --------------------------------------------------------- */

START_TEST(test_defaults_and_names) {
    syn_optim_config c = syn_optim_defaults(SYN_OPTIM_SGD);
    ck_assert_float_eq(c.lr, 0.01f);
    ck_assert_float_eq(c.momentum, 0.0f);
    ck_assert(!c.nesterov);
    ck_assert_float_eq(c.weight_decay, 0.0f);
    c = syn_optim_defaults(SYN_OPTIM_RMSPROP);
    ck_assert_float_eq(c.lr, 0.01f);
    ck_assert_float_eq(c.alpha, 0.99f);
    ck_assert_float_eq(c.eps, 1e-8f);
    c = syn_optim_defaults(SYN_OPTIM_ADAM);
    ck_assert_float_eq(c.lr, 1e-3f);
    ck_assert_float_eq(c.beta1, 0.9f);
    ck_assert_float_eq(c.beta2, 0.999f);
    ck_assert_float_eq(c.eps, 1e-8f);
    ck_assert_float_eq(c.weight_decay, 0.0f);
    c = syn_optim_defaults(SYN_OPTIM_ADAMW);
    ck_assert_int_eq(c.kind, SYN_OPTIM_ADAMW);
    ck_assert_float_eq(c.lr, 1e-3f);
    ck_assert_float_eq(c.weight_decay, 0.01f);
    ck_assert_float_eq(c.beta2, 0.999f);

    const syn_optim_kind kinds[] = {SYN_OPTIM_SGD, SYN_OPTIM_RMSPROP, SYN_OPTIM_ADAM, SYN_OPTIM_ADAMW};
    for (int i = 0; i < 4; i++) {
        syn_optim_kind k;
        TU_OK(syn_optim_kind_parse(syn_optim_kind_name(kinds[i]), &k));
        ck_assert_int_eq(k, kinds[i]);
    }
    ck_assert_str_eq(syn_optim_kind_name(SYN_OPTIM_ADAMW), "adamw");
    syn_optim_kind k;
    TU_OK(syn_optim_kind_parse("Adam", &k));
    ck_assert_int_eq(k, SYN_OPTIM_ADAM);
    ck_assert_int_eq(syn_optim_kind_parse("lbfgs", &k), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "lbfgs"));
    ck_assert_int_eq(syn_optim_kind_parse(NULL, &k), SYN_ERR_ARG);
    ck_assert_str_eq(syn_optim_kind_name((syn_optim_kind)42), "unknown");
}
END_TEST

START_TEST(test_bad_configs) {
    syn_params *ps;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    struct {
        syn_optim_kind kind;
        const char *field;
        float value;
    } bad[] = {
        {SYN_OPTIM_SGD, "lr", 0.0f},        {SYN_OPTIM_SGD, "lr", -0.1f},
        {SYN_OPTIM_SGD, "lr", NAN},         {SYN_OPTIM_ADAM, "lr", INFINITY},
        {SYN_OPTIM_SGD, "momentum", -0.1f}, {SYN_OPTIM_SGD, "nesterov", 0.0f},
        {SYN_OPTIM_SGD, "weight_decay", -1e-4f},
        {SYN_OPTIM_RMSPROP, "alpha", 1.0f}, {SYN_OPTIM_RMSPROP, "alpha", -0.5f},
        {SYN_OPTIM_RMSPROP, "eps", 0.0f},   {SYN_OPTIM_ADAM, "beta1", 1.0f},
        {SYN_OPTIM_ADAM, "beta1", -0.1f},   {SYN_OPTIM_ADAMW, "beta2", 1.0f},
        {SYN_OPTIM_ADAMW, "beta2", NAN},    {SYN_OPTIM_ADAM, "eps", 0.0f},
        {SYN_OPTIM_ADAMW, "eps", -1e-8f},   {(syn_optim_kind)9, "kind", 0.0f},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        syn_optim_config c = syn_optim_defaults(bad[i].kind);
        c.kind = bad[i].kind;
        const char *f = bad[i].field;
        if (!strcmp(f, "lr")) c.lr = bad[i].value;
        else if (!strcmp(f, "momentum")) c.momentum = bad[i].value;
        else if (!strcmp(f, "nesterov")) c.nesterov = true, c.momentum = bad[i].value;
        else if (!strcmp(f, "weight_decay")) c.weight_decay = bad[i].value;
        else if (!strcmp(f, "alpha")) c.alpha = bad[i].value;
        else if (!strcmp(f, "eps")) c.eps = bad[i].value;
        else if (!strcmp(f, "beta1")) c.beta1 = bad[i].value;
        else if (!strcmp(f, "beta2")) c.beta2 = bad[i].value;
        syn_optim *o = (syn_optim *)&c; /* poison: create must clear it */
        syn_status s = syn_optim_create(ps, &c, &o);
        ck_assert_msg(s == SYN_ERR_ARG, "case %zu (%s = %g): got %s", i, f, (double)bad[i].value,
                      syn_status_str(s));
        ck_assert_ptr_null(o);
        ck_assert_msg(strlen(syn_last_error()) > 0, "case %zu: no message", i);
    }
    /* the message names the offending setting */
    syn_optim_config c = syn_optim_defaults(SYN_OPTIM_SGD);
    c.nesterov = true;
    syn_optim *o;
    ck_assert_int_eq(syn_optim_create(ps, &c, &o), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "nesterov"));
    /* fields another kind would read are not checked */
    c = syn_optim_defaults(SYN_OPTIM_SGD);
    c.beta1 = 7.0f, c.eps = 0.0f, c.alpha = -1.0f;
    TU_OK(syn_optim_create(ps, &c, &o));
    syn_optim_free(o);
    /* NULL arguments */
    ck_assert_int_eq(syn_optim_create(NULL, &c, &o), SYN_ERR_ARG);
    ck_assert_int_eq(syn_optim_create(ps, NULL, &o), SYN_ERR_ARG);
    ck_assert_int_eq(syn_optim_create(ps, &c, NULL), SYN_ERR_ARG);
    ck_assert_int_eq(syn_optim_step(NULL), SYN_ERR_ARG);
    syn_optim_free(NULL);
    ck_assert_int_eq(syn_optim_steps(NULL), 0);
    syn_params_free(ps);
}
END_TEST

START_TEST(test_lr_and_steps) {
    syn_params *ps;
    syn_tensor *val, *grad;
    syn_optim *o;
    float v = 1.0f, g = 1.0f;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    add_param(ps, "w", 1, &v, &val, &grad);
    write_all(grad, &g);
    syn_optim_config c = syn_optim_defaults(SYN_OPTIM_SGD);
    TU_OK(syn_optim_create(ps, &c, &o));
    ck_assert_float_eq(syn_optim_lr(o), 0.01f);
    ck_assert_int_eq(syn_optim_steps(o), 0);
    syn_optim_set_lr(o, 0.5f);
    ck_assert_float_eq(syn_optim_lr(o), 0.5f);
    TU_OK(syn_optim_step(o));
    TU_OK(syn_tensor_read(val, &v, sizeof v));
    ck_assert_float_eq_tol(v, 0.5f, 1e-7f); /* the new rate is used */
    syn_optim_set_lr(o, NAN); /* ignored */
    syn_optim_set_lr(o, -1.0f);
    ck_assert_float_eq(syn_optim_lr(o), 0.5f);
    syn_optim_set_lr(o, 0.0f); /* a schedule may end at zero */
    ck_assert_float_eq(syn_optim_lr(o), 0.0f);
    TU_OK(syn_optim_step(o));
    ck_assert_int_eq(syn_optim_steps(o), 2);
    TU_OK(syn_tensor_read(val, &v, sizeof v));
    ck_assert_float_eq_tol(v, 0.5f, 1e-7f);
    syn_optim_free(o);
    syn_params_free(ps);
}
END_TEST

/* ---- frozen and late parameters -------------------------------------------- */

START_TEST(test_frozen_not_updated) {
    const int64_t n = 7;
    tu_rng rng = tu_rng_make(7);
    float a0[7], b0[7], ga[7], gb[7];
    tu_fill(&rng, a0, n, -1, 1), tu_fill(&rng, b0, n, -1, 1);
    tu_fill(&rng, ga, n, -1, 1), tu_fill(&rng, gb, n, -1, 1);
    const syn_optim_kind kinds[] = {SYN_OPTIM_SGD, SYN_OPTIM_RMSPROP, SYN_OPTIM_ADAM, SYN_OPTIM_ADAMW};
    for (int k = 0; k < 4; k++) {
        syn_params *ps;
        syn_tensor *va, *gta, *vb, *gtb;
        syn_optim *o;
        TU_OK(syn_params_create(syn_cpu(), 1, &ps));
        add_param(ps, "a", n, a0, &va, &gta);
        add_param(ps, "b", n, b0, &vb, &gtb);
        write_all(gta, ga), write_all(gtb, gb);
        TU_OK(syn_params_set_trainable(ps, "b", false));
        syn_optim_config c = syn_optim_defaults(kinds[k]);
        c.momentum = kinds[k] == SYN_OPTIM_SGD ? 0.9f : 0.0f;
        c.weight_decay = 0.1f; /* even decay must not touch a frozen parameter */
        TU_OK(syn_optim_create(ps, &c, &o));
        for (int t = 0; t < STEPS; t++) TU_OK(syn_optim_step(o));
        float *a = read_all(va), *b = read_all(vb);
        ck_assert_msg(memcmp(b, b0, sizeof b0) == 0, "%s: frozen parameter changed", syn_optim_kind_name(kinds[k]));
        ck_assert_msg(memcmp(a, a0, sizeof a0) != 0, "%s: trainable parameter unchanged",
                      syn_optim_kind_name(kinds[k]));
        free(a), free(b);
        syn_optim_free(o);
        syn_params_free(ps);
    }
}
END_TEST

/* A parameter added after the optimizer (layers create them lazily) is
 * updated too, with its own step count from 1, as torch.optim's per-parameter
 * state; one that is unfrozen later likewise starts its bias correction then. */
START_TEST(test_late_parameter) {
    const int64_t na = 13, nb = 7;
    tu_rng rng = tu_rng_make(11);
    float a0[13], b0[7], ga[13], gb[7];
    double pa[13], pb[7], ma[13] = {0}, va_[13] = {0}, mb[7] = {0}, vb_[7] = {0};
    tu_fill(&rng, a0, na, -1, 1), tu_fill(&rng, b0, nb, -1, 1);
    for (int i = 0; i < na; i++) pa[i] = a0[i];
    for (int i = 0; i < nb; i++) pb[i] = b0[i];
    syn_optim_config c = cfg_of(SYN_OPTIM_ADAM, 0.01f);
    syn_params *ps;
    syn_tensor *va, *gta, *vb = NULL, *gtb = NULL;
    syn_optim *o;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    add_param(ps, "a", na, a0, &va, &gta);
    TU_OK(syn_optim_create(ps, &c, &o));
    for (int t = 1; t <= 4; t++) {
        if (t == 2) add_param(ps, "b", nb, b0, &vb, &gtb);
        tu_fill(&rng, ga, na, -1, 1);
        write_all(gta, ga);
        ref_update(&c, t, pa, ga, ma, va_, na);
        if (vb) {
            tu_fill(&rng, gb, nb, -1, 1);
            write_all(gtb, gb);
            ref_update(&c, t - 1, pb, gb, mb, vb_, nb);
        }
        TU_OK(syn_optim_step(o));
    }
    float *a = read_all(va), *b = read_all(vb);
    TU_CLOSE(a, pa, na, 1e-6, 1e-6);
    TU_CLOSE(b, pb, nb, 1e-6, 1e-6);
    ck_assert_int_eq(syn_optim_steps(o), 4);
    free(a), free(b);
    syn_optim_free(o);
    syn_params_free(ps);
}
END_TEST

/* ---- schedules ------------------------------------------------------------- */

static float lr_at(syn_sched_kind k, int64_t warm, int64_t step_size, float gamma, int64_t total, float min_lr,
                   int64_t step) {
    syn_schedule s = {k, warm, step_size, gamma, total, min_lr};
    return syn_schedule_lr(&s, 1.0f, step);
}

START_TEST(test_schedules) {
    const float tol = 1e-6f;
    /* constant */
    for (int64_t st = 0; st < 1000; st += 97)
        ck_assert_float_eq(lr_at(SYN_SCHED_CONSTANT, 0, 0, 0, 0, 0, st), 1.0f);
    ck_assert_float_eq(syn_schedule_lr(NULL, 0.3f, 5), 0.3f);
    /* linear warm-up over 4 steps, then the schedule */
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_CONSTANT, 4, 0, 0, 0, 0, 0), 0.25f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_CONSTANT, 4, 0, 0, 0, 0, 1), 0.5f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_CONSTANT, 4, 0, 0, 0, 0, 3), 1.0f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_CONSTANT, 4, 0, 0, 0, 0, 100), 1.0f, tol);
    syn_schedule w = {SYN_SCHED_CONSTANT, 10, 0, 0, 0, 0};
    ck_assert_float_eq_tol(syn_schedule_lr(&w, 0.2f, 4), 0.1f, tol);
    /* step decay by 0.1 every 10 steps */
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_STEP, 0, 10, 0.1f, 0, 0, 0), 1.0f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_STEP, 0, 10, 0.1f, 0, 0, 9), 1.0f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_STEP, 0, 10, 0.1f, 0, 0, 10), 0.1f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_STEP, 0, 10, 0.1f, 0, 0, 25), 0.01f, tol);
    /* ... counted from the end of the warm-up */
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_STEP, 2, 10, 0.5f, 0, 0, 1), 1.0f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_STEP, 2, 10, 0.5f, 0, 0, 11), 1.0f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_STEP, 2, 10, 0.5f, 0, 0, 12), 0.5f, tol);
    /* cosine from 1 to 0.1 over 100 steps: endpoints, midpoint, quarter, beyond */
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 0, 0, 0, 100, 0.1f, 0), 1.0f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 0, 0, 0, 100, 0.1f, 50), 0.55f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 0, 0, 0, 100, 0.1f, 25),
                           (float)(0.1 + 0.9 * 0.5 * (1 + cos(M_PI / 4))), tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 0, 0, 0, 100, 0.1f, 100), 0.1f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 0, 0, 0, 100, 0.1f, 1000), 0.1f, tol);
    /* monotone non-increasing */
    for (int64_t st = 1; st <= 100; st++)
        ck_assert(lr_at(SYN_SCHED_COSINE, 0, 0, 0, 100, 0, st) <= lr_at(SYN_SCHED_COSINE, 0, 0, 0, 100, 0, st - 1));
    /* with 10 warm-up steps out of 110 */
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 10, 0, 0, 110, 0.0f, 4), 0.5f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 10, 0, 0, 110, 0.0f, 10), 1.0f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 10, 0, 0, 110, 0.0f, 60), 0.5f, tol);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_COSINE, 10, 0, 0, 110, 0.0f, 110), 0.0f, tol);
    /* degenerate settings fall back to the base rate, never NaN or a division by zero */
    ck_assert_float_eq(lr_at(SYN_SCHED_STEP, 0, 0, 0.1f, 0, 0, 50), 1.0f);
    ck_assert_float_eq(lr_at(SYN_SCHED_STEP, 0, -5, 0.1f, 0, 0, 50), 1.0f);
    ck_assert_float_eq(lr_at(SYN_SCHED_COSINE, 0, 0, 0, 0, 0.1f, 50), 1.0f);
    ck_assert_float_eq(lr_at(SYN_SCHED_COSINE, 0, 0, 0, -3, 0.1f, 50), 1.0f);
    ck_assert_float_eq(lr_at(SYN_SCHED_CONSTANT, -4, 0, 0, 0, 0, 0), 1.0f);
    ck_assert_float_eq_tol(lr_at(SYN_SCHED_CONSTANT, 4, 0, 0, 0, 0, -7), 0.25f, tol);
}
END_TEST

/* ---- clipping -------------------------------------------------------------- */

START_TEST(test_clip_known) {
    syn_params *ps;
    syn_tensor *va, *ga, *vb, *gb, *vc, *gc;
    float z[5] = {0}, a[5] = {3, 0, 0, 0, 0}, b[3] = {0, -4, 0}, frozen[2] = {100, 100};
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    add_param(ps, "a", 5, z, &va, &ga);
    add_param(ps, "b", 3, z, &vb, &gb);
    add_param(ps, "c", 2, z, &vc, &gc);
    TU_OK(syn_params_set_trainable(ps, "c", false)); /* not part of the norm, not scaled */
    write_all(ga, a), write_all(gb, b), write_all(gc, frozen);

    /* below the limit: a no-op, bit for bit */
    float norm = -1;
    TU_OK(syn_params_clip_grad_norm(ps, 10.0f, &norm));
    ck_assert_float_eq_tol(norm, 5.0f, 1e-6f);
    float *ra = read_all(ga), *rb = read_all(gb), *rc = read_all(gc);
    ck_assert(memcmp(ra, a, sizeof a) == 0 && memcmp(rb, b, sizeof b) == 0);
    free(ra), free(rb), free(rc);

    /* above: scaled to the max norm; the returned norm is the one before clipping */
    TU_OK(syn_params_clip_grad_norm(ps, 1.0f, &norm));
    ck_assert_float_eq_tol(norm, 5.0f, 1e-6f);
    ra = read_all(ga), rb = read_all(gb), rc = read_all(gc);
    ck_assert_float_eq_tol(ra[0], 0.6f, 1e-6f);
    ck_assert_float_eq_tol(rb[1], -0.8f, 1e-6f);
    ck_assert_float_eq(ra[1], 0.0f);
    ck_assert(memcmp(rc, frozen, sizeof frozen) == 0);
    free(ra), free(rb), free(rc);
    /* now at the limit: the norm comes back as 1, nothing more changes */
    TU_OK(syn_params_clip_grad_norm(ps, 1.0f, &norm));
    ck_assert_float_eq_tol(norm, 1.0f, 1e-6f);
    TU_OK(syn_params_clip_grad_norm(ps, 1.0f, NULL));
    ck_assert_int_eq(syn_params_clip_grad_norm(ps, 0.0f, &norm), SYN_ERR_ARG);
    syn_params_free(ps);
}
END_TEST

START_TEST(test_clip_random) {
    /* two odd-sized parameters, one past the threading threshold */
    const int64_t na = 40013, nb = 17;
    tu_rng rng = tu_rng_make(23);
    float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float)), *z = calloc(na, sizeof(float));
    ck_assert(a && b && z);
    tu_fill(&rng, a, na, -1, 1), tu_fill(&rng, b, nb, -1, 1);
    double ss = 0;
    for (int64_t i = 0; i < na; i++) ss += (double)a[i] * a[i];
    for (int64_t i = 0; i < nb; i++) ss += (double)b[i] * b[i];
    const double ref_norm = sqrt(ss), max_norm = 0.25 * ref_norm;
    syn_params *ps;
    syn_tensor *va, *ga, *vb, *gb;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    add_param(ps, "a", na, z, &va, &ga);
    add_param(ps, "b", nb, z, &vb, &gb);
    write_all(ga, a), write_all(gb, b);
    float norm;
    TU_OK(syn_params_clip_grad_norm(ps, (float)max_norm, &norm));
    ck_assert_msg(fabs(norm - ref_norm) <= 1e-5 * ref_norm, "norm %g, reference %g", norm, ref_norm);
    const double coef = max_norm / (ref_norm + 1e-6);
    double *ra = malloc(na * sizeof(double)), *rb = malloc(nb * sizeof(double));
    ck_assert(ra && rb);
    for (int64_t i = 0; i < na; i++) ra[i] = a[i] * coef;
    for (int64_t i = 0; i < nb; i++) rb[i] = b[i] * coef;
    float *ga_ = read_all(ga), *gb_ = read_all(gb);
    TU_CLOSE(ga_, ra, na, 1e-7, 1e-5);
    TU_CLOSE(gb_, rb, nb, 1e-7, 1e-5);
    /* the clipped set has the max norm */
    double s2 = 0;
    for (int64_t i = 0; i < na; i++) s2 += (double)ga_[i] * ga_[i];
    for (int64_t i = 0; i < nb; i++) s2 += (double)gb_[i] * gb_[i];
    ck_assert_msg(fabs(sqrt(s2) - max_norm) <= 1e-5 * max_norm, "clipped norm %g, max %g", sqrt(s2), max_norm);
    free(ga_), free(gb_), free(ra), free(rb), free(a), free(b), free(z);
    syn_params_free(ps);
}
END_TEST

/* The CPU's gradient norm sums fixed chunks in double lanes: over 3M values
 * (46 chunks) it matches a double-precision reference and is the same bits
 * with 1 and with 2 threads. */
START_TEST(test_clip_norm_threads) {
    const int64_t n = 3000017;
    tu_rng rng = tu_rng_make(29);
    float *g = malloc((size_t)n * sizeof *g), *z = calloc((size_t)n, sizeof *z);
    ck_assert(g && z);
    tu_fill(&rng, g, n, -1, 1);
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    syn_params *ps;
    syn_tensor *v, *gt;
    TU_OK(syn_params_create(syn_cpu(), 1, &ps));
    add_param(ps, "w", n, z, &v, &gt);
    write_all(gt, g);
    const int before = omp_get_max_threads();
    float norm[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        /* max_norm above the norm: nothing is scaled, the next run sees the same gradient */
        TU_OK(syn_params_clip_grad_norm(ps, 1e9f, &norm[t]));
    }
    omp_set_num_threads(before);
    ck_assert_msg(fabs(norm[0] - sqrt(ss)) <= 1e-6 * sqrt(ss), "norm %.9g, reference %.9g", norm[0], sqrt(ss));
    ck_assert_msg(memcmp(&norm[0], &norm[1], sizeof norm[0]) == 0, "1 thread: %.9g, 2 threads: %.9g", norm[0], norm[1]);
    free(g), free(z);
    syn_params_free(ps);
}
END_TEST

static Suite *optim_suite(void) {
    Suite *s = suite_create("optim");
    build_rule_cases();
    TCase *tc = tcase_create("rules");
    tcase_add_loop_test(tc, test_rule_vs_reference, 0, n_rule_cases);
    tcase_add_test(tc, test_hand_computed);
    tcase_add_test(tc, test_frozen_not_updated);
    tcase_add_test(tc, test_late_parameter);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_add_test(tc, test_defaults_and_names);
    tcase_add_test(tc, test_bad_configs);
    tcase_add_test(tc, test_lr_and_steps);
    suite_add_tcase(s, tc);
    tc = tcase_create("schedule");
    tcase_add_test(tc, test_schedules);
    suite_add_tcase(s, tc);
    tc = tcase_create("clip");
    tcase_add_test(tc, test_clip_known);
    tcase_add_test(tc, test_clip_random);
    tcase_add_test(tc, test_clip_norm_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(optim_suite()); }
