/* Learning-rate schedules: a pure function of (schedule, base rate, step),
 * so a resumed run gets the same rate from its step count alone. Computed in
 * double, rounded once. */
#include <math.h>
#include "../core/internal.h"

/* step (0-based) -> lr
 * warm-up (step < W):  base * (step+1) / W
 * CONSTANT:            base
 * STEP:                base * gamma^floor((step-W) / step_size)
 * COSINE:              min + (base-min) * (1 + cos(pi * t/T)) / 2,  t = step-W, T = total-W, t >= T: min */
float syn_schedule_lr(const syn_schedule *s, float base_lr, int64_t step) {
    if (!s) return base_lr;
    if (step < 0) step = 0;
    const double base = base_lr;
    const int64_t w = s->warmup_steps > 0 ? s->warmup_steps : 0;
    if (step < w) return (float)(base * (double)(step + 1) / (double)w);
    const int64_t t = step - w;
    switch (s->kind) {
    case SYN_SCHED_STEP:
        if (s->step_size <= 0) return base_lr; /* no period: nothing to decay by */
        return (float)(base * pow((double)s->gamma, (double)(t / s->step_size)));
    case SYN_SCHED_COSINE: {
        if (s->total_steps <= 0) return base_lr; /* no horizon: nothing to anneal towards */
        const int64_t T = s->total_steps - w;
        const double lo = s->min_lr;
        if (t >= T) return s->min_lr;
        return (float)(lo + (base - lo) * 0.5 * (1.0 + cos(M_PI * (double)t / (double)T)));
    }
    case SYN_SCHED_CONSTANT:
    default: return base_lr;
    }
}
