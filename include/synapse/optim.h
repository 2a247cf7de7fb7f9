/* Optimizers over a parameter set, learning-rate schedules, clipping
 * (syn_params_clip_grad_norm in graph.h). Updates run on the parameters'
 * device through the backend. */
#ifndef SYNAPSE_OPTIM_H
#define SYNAPSE_OPTIM_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SYN_OPTIM_SGD = 0, SYN_OPTIM_RMSPROP, SYN_OPTIM_ADAM, SYN_OPTIM_ADAMW } syn_optim_kind;

/* The update rules follow PyTorch's torch.optim exactly:
 *  SGD:     g += wd*p; v = mu*v + g (first step: v = g); g = nesterov ? g + mu*v : v; p -= lr*g
 *  RMSProp: g += wd*p; s = alpha*s + (1-alpha)*g^2; p -= lr*g/(sqrt(s)+eps)
 *  Adam:    g += wd*p; m = b1*m+(1-b1)g; v = b2*v+(1-b2)g^2;
 *           p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
 *  AdamW:   p *= 1 - lr*wd; then Adam without the wd term. */
typedef struct {
    syn_optim_kind kind;
    float lr;
    float momentum;     /* SGD */
    bool nesterov;      /* SGD */
    float weight_decay;
    float alpha;        /* RMSProp smoothing, default 0.99 */
    float beta1, beta2; /* Adam(W), defaults 0.9, 0.999 */
    float eps;          /* RMSProp/Adam(W), default 1e-8 */
} syn_optim_config;

/* PyTorch's defaults for that kind (SGD lr 0.01, RMSProp 0.01, Adam 1e-3,
 * AdamW 1e-3 with weight decay 0.01). */
SYN_API syn_optim_config syn_optim_defaults(syn_optim_kind kind);
/* "sgd" | "rmsprop" | "adam" | "adamw" */
SYN_API syn_status syn_optim_kind_parse(const char *text, syn_optim_kind *out);
SYN_API const char *syn_optim_kind_name(syn_optim_kind kind);

typedef struct syn_optim syn_optim;

/* params: borrowed, must outlive the optimizer. owned: free with syn_optim_free. */
SYN_API syn_status syn_optim_create(syn_params *params, const syn_optim_config *cfg, syn_optim **out);
SYN_API void syn_optim_free(syn_optim *o);
/* One update of every trainable parameter from its gradient. */
SYN_API syn_status syn_optim_step(syn_optim *o);
SYN_API void syn_optim_set_lr(syn_optim *o, float lr);
SYN_API float syn_optim_lr(const syn_optim *o);
SYN_API int64_t syn_optim_steps(const syn_optim *o);

/* Learning-rate schedules: a pure function of the step. */
typedef enum { SYN_SCHED_CONSTANT = 0, SYN_SCHED_STEP, SYN_SCHED_COSINE } syn_sched_kind;

typedef struct {
    syn_sched_kind kind;
    int64_t warmup_steps; /* linear from base_lr/warmup_steps up to base_lr */
    int64_t step_size;    /* STEP: multiply by gamma every step_size steps (after warm-up) */
    float gamma;
    int64_t total_steps;  /* COSINE: from base_lr down to min_lr over total_steps */
    float min_lr;
} syn_schedule;

/* The learning rate for `step` (0-based). */
SYN_API float syn_schedule_lr(const syn_schedule *s, float base_lr, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
