/* Private accessors to an optimizer's state, for checkpoints (src/io/):
 * per-parameter state buffers (on the parameters' device; copied to and
 * from the host here), per-parameter step counts and the optimizer's step
 * count. Parameters are identified by their index in the set. */
#ifndef SYN_OPTIM_INTERNAL_H
#define SYN_OPTIM_INTERNAL_H

#include "../core/internal.h"

/* The buffers each kind keeps per parameter, under PyTorch's state names:
 * SGD momentum_buffer (only with momentum), RMSProp square_avg, Adam(W)
 * exp_avg and exp_avg_sq. which = 0 or 1; NULL when the kind (with this
 * config) keeps no such buffer. */
const char *syn__optim_state_name(const syn_optim_config *cfg, int which);

syn_params *syn__optim_params(const syn_optim *o);
const syn_optim_config *syn__optim_config(const syn_optim *o);

/* Parameter i's update count (0 when it has no state yet). */
int64_t syn__optim_param_step(const syn_optim *o, int i);
/* Whether parameter i has buffer `which`, and its element count. */
bool syn__optim_state_has(const syn_optim *o, int i, int which, int64_t *n);
/* Copies buffer `which` of parameter i (n floats) to host memory. */
syn_status syn__optim_state_read(const syn_optim *o, int i, int which, float *host, int64_t n);

/* Drops all state: as if no step had been taken (steps = 0). */
void syn__optim_reset(syn_optim *o);
/* Sets parameter i's buffer `which` from n host floats (n must equal the
 * parameter's numel), allocating it if needed. */
syn_status syn__optim_state_write(syn_optim *o, int i, int which, const float *host, int64_t n);
/* Sets parameter i's update count, and the optimizer's. */
syn_status syn__optim_set_param_step(syn_optim *o, int i, int64_t step);
void syn__optim_set_steps(syn_optim *o, int64_t steps);

#endif
