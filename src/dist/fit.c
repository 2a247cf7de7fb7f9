/* The data-parallel steps of syn_fit, the char model and the GAN trainer:
 * the start (every member runs the same thing, with member 0's weights), a
 * step's gradient sum and its rows; each carries the members' failures (see
 * syn__comm_agree), so that all stop together instead of one waiting. */
#include <math.h>
#include <string.h>
#include "../core/internal.h"
#include "dist_internal.h"

syn_status syn__fit_step(syn_comm *c, syn_params *p, syn_status mine, int64_t rows, int64_t total, const char *fn,
                         syn_status *late) {
    /* the members' mean losses weighted by their shares: the whole batch's mean */
    float weight = (float)((double)rows / (double)total);
    double all[3];
    syn_status s = syn__params_allreduce_grads_flagged(p, c, weight, &mine, all, late);
    if (s != SYN_OK) return mine != SYN_OK ? mine : s;
    return syn__comm_settle(c, mine, all, fn, "in a training step");
}

syn_status syn__dist_start(syn_comm *c, syn_status mine, syn_params *p, const int64_t *figs, const char *const *what,
                           int n, const char *fn) {
    int64_t root[16] = {0}, mine_figs[16] = {0};
    if (n > 16) return syn__error(SYN_ERR_ARG, "%s: %d figures to compare (at most 16)", fn, n);
    if (mine == SYN_OK) memcpy(mine_figs, figs, (size_t)n * sizeof *figs);
    memcpy(root, mine_figs, sizeof root);
    syn_status s = syn_comm_broadcast(c, root, (int64_t)sizeof root, 0);
    if (s != SYN_OK) return mine != SYN_OK ? mine : s;
    int bad = -1;
    for (int i = 0; i < n && bad < 0 && mine == SYN_OK; i++)
        if (mine_figs[i] != root[i]) bad = i;
    if (bad >= 0)
        mine = syn__error(SYN_ERR_ARG, "%s: member %d of %d has %s %lld where member 0 has %lld: every member must "
                          "run the same model on the same data with the same config", fn, syn_comm_rank(c),
                          syn_comm_size(c), what[bad], (long long)mine_figs[bad], (long long)root[bad]);
    /* every parameter and a step's flags: no collective of the run allocates */
    if (mine == SYN_OK) mine = syn__comm_reserve(c, syn_params_numel(p) + 8);
    SYN_TRY(syn__comm_agree(c, mine, NULL, 0, fn, "to start (another model, data or config, or an error)"));
    return syn_params_broadcast(p, c, 0, false);
}

syn_status syn__fit_start(syn_comm *c, syn_status mine, syn_params *p, const syn_dataset *train,
                          const syn_dataset *test, const syn_fit_config *cfg, const char *fn) {
    /* everything that decides the collectives' sequence: the data's batches,
     * the epochs, and when the run stops */
    static const char *const what[] = {"parameters",       "parameter values", "training rows",
                                       "features",         "test rows",        "batch size",
                                       "epochs",           "seed",             "resumed epoch",
                                       "clip norm x 1e6",  "min_loss x 1e6",   "patience",
                                       "resumed stale epochs", "resumed best loss x 1e6", "schedule"};
    enum { N = sizeof what / sizeof *what };
    int64_t figs[N] = {0};
    if (mine == SYN_OK && cfg->batch_size < syn_comm_size(c))
        mine = syn__error(SYN_ERR_ARG, "%s: a batch of %lld rows cannot be split between %d members", fn,
                          (long long)cfg->batch_size, syn_comm_size(c));
    if (mine == SYN_OK) {
        const syn_fit_state *rs = cfg->resume;
        const syn_schedule *sc = &cfg->schedule;
        double best = rs && isfinite(rs->best_loss) ? (double)rs->best_loss * 1e6 : -1.0;
        int64_t f[N] = {syn_params_count(p), syn_params_numel(p), train->n, train->dim, test ? test->n : -1,
                        cfg->batch_size, cfg->epochs, (int64_t)cfg->seed, rs ? rs->epoch : -1,
                        llround((double)cfg->clip_norm * 1e6), llround((double)cfg->min_loss * 1e6), cfg->patience,
                        rs ? rs->stale : -1, llround(best),
                        /* one figure for the schedule: the same on every member or not */
                        (int64_t)sc->kind * 1000003 + sc->warmup_steps * 1009 + sc->total_steps * 101 +
                            sc->step_size * 7 + llround((double)sc->gamma * 1e6)};
        memcpy(figs, f, sizeof figs);
    }
    return syn__dist_start(c, mine, p, figs, what, N, fn);
}

syn_status syn__dist_rows(syn_comm *c, syn_status mine, int64_t n, double *v, int64_t *off, int64_t *total,
                          const char *fn) {
    const int size = syn_comm_size(c), rank = syn_comm_rank(c);
    memset(v, 0, (size_t)(size + 3) * sizeof *v);
    v[rank] = mine == SYN_OK ? (double)n : 0.0;
    syn__comm_flags(mine, v + size);
    syn_status s = syn_comm_allreduce_f64(c, v, size + 3);
    if (s != SYN_OK) return mine != SYN_OK ? mine : s;
    double o = 0, t = 0;
    for (int r = 0; r < size; r++) {
        if (r < rank) o += v[r];
        t += v[r];
    }
    *off = (int64_t)o;
    *total = (int64_t)t;
    return syn__comm_settle(c, mine, v + size, fn, "before a step");
}
