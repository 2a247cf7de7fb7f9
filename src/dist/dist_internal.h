/* What the training loop needs of src/dist/comm.c beyond the public API. */
#ifndef SYN_DIST_INTERNAL_H
#define SYN_DIST_INTERNAL_H

#include "synapse/dist.h"
#include "synapse/train.h"

/* Agreement on failure (comm.c). A member's flags: failed (0 or 1), its
 * status code, the code squared; summed over the members they say how many
 * failed and whether with one status (codes_sq x failed == codes^2). */
void syn__comm_flags(syn_status mine, double f[3]);
/* After a collective that summed the flags f: mine if this member failed,
 * else the others' failure (their status when they agree on one) with a
 * message "fn: K of the N members failed <where>", else SYN_OK. */
syn_status syn__comm_settle(syn_comm *c, syn_status mine, const double f[3], const char *fn, const char *where);
/* sums[0..n) (n <= 5) summed over the members, with the flags, in one
 * collective; then settled. The same outcome on every member. */
syn_status syn__comm_agree(syn_comm *c, syn_status mine, double *sums, int n, const char *fn, const char *where);

/* syn_params_allreduce_grads with failures in the same collective: *mine is
 * this member's status so far, and becomes the failure to read its
 * gradients if that happens (it then sends zeros); all: the members' summed
 * flags.
 * With no failure anywhere the sums are written back, and a failure to do
 * that is *late (after the collective: the caller passes it on at its next
 * agreement). Returns a failure of the staging or the transport, else
 * SYN_OK: the collective took place. */
syn_status syn__params_allreduce_grads_flagged(syn_params *p, syn_comm *c, float weight, syn_status *mine,
                                               double all[3], syn_status *late);

/* Grows the host staging of the parameter collectives to n floats now, so
 * that a step's collective never allocates (a member that failed there
 * could not take part in it). */
syn_status syn__comm_reserve(syn_comm *c, int64_t n);

/* syn_fit over members (src/dist/fit.c). Each is called by every member
 * with `mine`, its own status so far, and returns SYN_OK on all members or a
 * failure on all: mine where this member failed, else one naming how many
 * others did. */

/* The members check that they run the same thing - figs[0..n) (n <= 16),
 * named by what[], must be member 0's - then take member 0's weights. */
syn_status syn__dist_start(syn_comm *c, syn_status mine, syn_params *p, const int64_t *figs, const char *const *what,
                           int n, const char *fn);
/* The members check that they run the same network on the same data with
 * the same config, then take member 0's weights. */
syn_status syn__fit_start(syn_comm *c, syn_status mine, syn_params *p, const syn_dataset *train,
                          const syn_dataset *test, const syn_fit_config *cfg, const char *fn);
/* A step's gradients summed, weighted by rows / total (this member's share);
 * *late: a failure after the collective, this member's alone so far (see
 * syn__params_allreduce_grads_flagged). */
syn_status syn__fit_step(syn_comm *c, syn_params *p, syn_status mine, int64_t rows, int64_t total, const char *fn,
                         syn_status *late);

/* Every member's n rows: *off = the rows of the members before this one,
 * *total = all of them. v: size + 3 doubles of scratch. */
syn_status syn__dist_rows(syn_comm *c, syn_status mine, int64_t n, double *v, int64_t *off, int64_t *total,
                          const char *fn);

#endif
