/* Training checkpoints: one safetensors file with the weights (under their
 * own names), the optimizer's per-parameter state under PyTorch's names
 * ("optim.<param>.exp_avg", ".exp_avg_sq", ".momentum_buffer", ".square_avg",
 * ".step") and the run's info as __metadata__ strings, with what inference
 * needs (the inputs' standardisation, the caller's "data.*" entries) as more
 * strings. Loading checks every tensor and every field before it changes
 * anything. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../data/dataset.h"
#include "../optim/optim_internal.h"
#include "io_internal.h"

#define OPT_PREFIX "optim."
#define STATS_MEAN "input.mean"
#define STATS_STD "input.std"
#define DATA_PREFIX "data."

/* ---- saving ------------------------------------------------------------------- */

static syn_status meta_i64(syn_safetensors_writer *w, const char *key, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return syn_safetensors_set_metadata(w, key, buf);
}

static syn_status meta_u64(syn_safetensors_writer *w, const char *key, unsigned long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", v);
    return syn_safetensors_set_metadata(w, key, buf);
}

/* "%.9g" round-trips every float (inf and nan included, through strtof). */
static syn_status meta_f32(syn_safetensors_writer *w, const char *key, float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)v);
    return syn_safetensors_set_metadata(w, key, buf);
}

static syn_status add_info(syn_safetensors_writer *w, const syn_checkpoint_info *info) {
    char model[sizeof info->model];
    size_t n = strnlen(info->model, sizeof info->model - 1);
    memcpy(model, info->model, n);
    model[n] = '\0';
    SYN_TRY(syn_safetensors_set_metadata(w, "model", model));
    SYN_TRY(meta_i64(w, "epoch", (long long)info->epoch));
    SYN_TRY(meta_i64(w, "step", (long long)info->step));
    SYN_TRY(meta_u64(w, "seed", (unsigned long long)info->seed));
    SYN_TRY(meta_u64(w, "rng_counter", (unsigned long long)info->rng_counter));
    SYN_TRY(meta_f32(w, "best_loss", info->best_loss));
    return meta_i64(w, "stale_epochs", (long long)info->stale_epochs);
}

/* The optimizer's kind, config, step count and every state buffer. */
static syn_status add_optim(syn_safetensors_writer *w, const syn_optim *o, const char *path) {
    const syn_optim_config *c = syn__optim_config(o);
    const syn_params *p = syn__optim_params(o);
    char buf[512];
    SYN_TRY(syn_safetensors_set_metadata(w, "optim.kind", syn_optim_kind_name(c->kind)));
    snprintf(buf, sizeof buf,
             "{\"lr\":%.9g,\"momentum\":%.9g,\"nesterov\":%s,\"weight_decay\":%.9g,\"alpha\":%.9g,"
             "\"beta1\":%.9g,\"beta2\":%.9g,\"eps\":%.9g}",
             (double)c->lr, (double)c->momentum, c->nesterov ? "true" : "false", (double)c->weight_decay,
             (double)c->alpha, (double)c->beta1, (double)c->beta2, (double)c->eps);
    SYN_TRY(syn_safetensors_set_metadata(w, "optim.config", buf));
    SYN_TRY(meta_i64(w, "optim.steps", (long long)syn_optim_steps(o)));
    for (int i = 0; i < p->n; i++) {
        const char *pname = p->items[i].name;
        syn_shape shape = syn_tensor_shape(p->items[i].value);
        int64_t step = syn__optim_param_step(o, i);
        bool any = false;
        for (int which = 0; which < 2; which++) {
            int64_t n;
            const char *sname = syn__optim_state_name(c, which);
            if (!sname || !syn__optim_state_has(o, i, which, &n)) continue;
            any = true;
            float *host = malloc((size_t)n * sizeof(float) + 1);
            if (!host) return syn__error(SYN_ERR_OOM, "%s: out of memory for optimizer state of '%s'", path, pname);
            syn_status s = syn__optim_state_read(o, i, which, host, n);
            snprintf(buf, sizeof buf, OPT_PREFIX "%s.%s", pname, sname);
            if (s == SYN_OK) s = syn_safetensors_add(w, buf, SYN_F32, shape, host);
            free(host);
            SYN_TRY(s);
        }
        if (any || step > 0) {
            int64_t st = step;
            snprintf(buf, sizeof buf, OPT_PREFIX "%s.step", pname);
            SYN_TRY(syn_safetensors_add(w, buf, SYN_I64, syn_shape0(), &st));
        }
    }
    return SYN_OK;
}

/* values[0..n) as comma-separated "%.17g" decimals. */
static syn_status meta_doubles(syn_safetensors_writer *w, const char *key, const double *v, int64_t n,
                               const char *path) {
    if ((uint64_t)n > SIZE_MAX / 32) return syn__error(SYN_ERR_ARG, "%s: %lld statistics", path, (long long)n);
    char *buf = malloc((size_t)n * 32 + 1), *q = buf;
    if (!buf) return syn__error(SYN_ERR_OOM, "%s: out of memory for '%s'", path, key);
    for (int64_t k = 0; k < n; k++) q += snprintf(q, 32, "%s%.17g", k ? "," : "", v[k]);
    syn_status s = syn_safetensors_set_metadata(w, key, buf);
    free(buf);
    return s;
}

static syn_status add_data(syn_safetensors_writer *w, const syn_checkpoint_data *d, const char *path) {
    const syn_norm_stats *st = d->stats;
    if (st) {
        SYN_TRY(syn__norm_stats_check(st, "syn_checkpoint_save_data"));
        SYN_TRY(meta_doubles(w, STATS_MEAN, st->mean, st->count, path));
        SYN_TRY(meta_doubles(w, STATS_STD, st->std, st->count, path));
    }
    if (d->n_meta > 0 && !d->meta) return syn__error(SYN_ERR_ARG, "syn_checkpoint_save_data: NULL meta");
    for (int i = 0; i < d->n_meta; i++) {
        const char *key = d->meta[2 * i], *value = d->meta[2 * i + 1];
        if (!key || !*key || !value)
            return syn__error(SYN_ERR_ARG, "syn_checkpoint_save_data: meta entry %d: %s", i,
                              !key || !*key ? "empty key" : "NULL value");
        for (int j = 0; j < i; j++)
            if (strcmp(d->meta[2 * j], key) == 0)
                return syn__error(SYN_ERR_ARG, "syn_checkpoint_save_data: meta key '%s' given twice", key);
        char *full = malloc(strlen(DATA_PREFIX) + strlen(key) + 1);
        if (!full) return syn__error(SYN_ERR_OOM, "%s: out of memory for metadata", path);
        strcpy(full, DATA_PREFIX);
        strcat(full, key);
        syn_status s = syn_safetensors_set_metadata(w, full, value);
        free(full);
        SYN_TRY(s);
    }
    return SYN_OK;
}

syn_status syn_checkpoint_save(const char *path, const syn_params *p, const syn_optim *opt,
                               const syn_checkpoint_info *info) {
    return syn_checkpoint_save_data(path, p, opt, info, NULL);
}

syn_status syn_checkpoint_save_data(const char *path, const syn_params *p, const syn_optim *opt,
                                    const syn_checkpoint_info *info, const syn_checkpoint_data *data) {
    if (!path || !p) return syn__error(SYN_ERR_ARG, "syn_checkpoint_save: NULL %s", path ? "parameter set" : "path");
    if (opt && syn__optim_params(opt) != p)
        return syn__error(SYN_ERR_ARG, "syn_checkpoint_save: the optimizer belongs to another parameter set");
    for (int i = 0; i < p->n; i++)
        if (strncmp(p->items[i].name, OPT_PREFIX, strlen(OPT_PREFIX)) == 0)
            return syn__error(SYN_ERR_ARG, "syn_checkpoint_save: parameter '%s': names starting with '" OPT_PREFIX
                              "' are reserved for optimizer state", p->items[i].name);
    syn_safetensors_writer *w;
    SYN_TRY(syn_safetensors_writer_create(&w));
    syn_status s = syn_safetensors_set_metadata(w, "format", "pt");
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "synapse.version", syn_version());
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "synapse.content", "checkpoint");
    if (s == SYN_OK && info) s = add_info(w, info);
    if (s == SYN_OK && data) s = add_data(w, data, path);
    if (s == SYN_OK) s = syn__params_add_all(w, p, path);
    if (s == SYN_OK && opt) s = add_optim(w, opt, path);
    if (s == SYN_OK) s = syn_safetensors_write(w, path);
    syn_safetensors_writer_free(w);
    return s;
}

/* ---- loading ------------------------------------------------------------------- */

static syn_status need_meta(const syn_safetensors *f, const char *path, const char *key, const char **v) {
    *v = syn_safetensors_metadata(f, key);
    if (!*v) return syn__error(SYN_ERR_FORMAT, "%s: not a Synapse checkpoint: __metadata__ has no '%s'", path, key);
    return SYN_OK;
}

static syn_status get_i64(const syn_safetensors *f, const char *path, const char *key, int64_t lo, int64_t *out) {
    const char *v;
    SYN_TRY(need_meta(f, path, key, &v));
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo)
        return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ '%s' is '%s', not an integer >= %lld", path, key, v,
                          (long long)lo);
    *out = x;
    return SYN_OK;
}

static syn_status get_u64(const syn_safetensors *f, const char *path, const char *key, uint64_t *out) {
    const char *v;
    SYN_TRY(need_meta(f, path, key, &v));
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-')
        return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ '%s' is '%s', not an unsigned integer", path, key, v);
    *out = x;
    return SYN_OK;
}

static syn_status read_info(const syn_safetensors *f, const char *path, syn_checkpoint_info *info) {
    const char *v;
    memset(info, 0, sizeof *info);
    SYN_TRY(need_meta(f, path, "model", &v));
    size_t n = strlen(v);
    if (n >= sizeof info->model)
        return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ 'model' is %zu bytes (at most %zu)", path, n,
                          sizeof info->model - 1);
    memcpy(info->model, v, n + 1);
    SYN_TRY(get_i64(f, path, "epoch", 0, &info->epoch));
    SYN_TRY(get_i64(f, path, "step", 0, &info->step));
    SYN_TRY(get_u64(f, path, "seed", &info->seed));
    SYN_TRY(get_u64(f, path, "rng_counter", &info->rng_counter));
    SYN_TRY(need_meta(f, path, "best_loss", &v));
    char *end;
    info->best_loss = strtof(v, &end);
    if (end == v || *end)
        return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ 'best_loss' is '%s', not a number", path, v);
    /* absent in files without early-stopping state */
    if (syn_safetensors_metadata(f, "stale_epochs")) SYN_TRY(get_i64(f, path, "stale_epochs", 0, &info->stale_epochs));
    return SYN_OK;
}

/* Splits "optim.<param>.<state>" at its last dot: the parameter's index and
 * the state name's offset. */
static syn_status optim_tensor(const char *name, const char *path, const syn_params *p, int *param, const char **state) {
    const char *rest = name + strlen(OPT_PREFIX);
    const char *dot = strrchr(rest, '.');
    *param = -1;
    *state = "";
    if (dot) {
        size_t len = (size_t)(dot - rest);
        for (int i = 0; i < p->n; i++)
            if (strlen(p->items[i].name) == len && strncmp(p->items[i].name, rest, len) == 0) *param = i;
    }
    if (*param < 0)
        return syn__error(SYN_ERR_FORMAT, "%s: optimizer tensor '%s' names no parameter of the model", path, name);
    *state = dot + 1;
    return SYN_OK;
}

/* Checks every "optim.*" tensor against the optimizer (kind, names, shapes,
 * dtypes); changes nothing. */
static syn_status check_optim(const syn_safetensors *f, const char *path, const syn_optim *o) {
    const syn_optim_config *c = syn__optim_config(o);
    const syn_params *p = syn__optim_params(o);
    char a[128], b[128];
    const char *kind = syn_safetensors_metadata(f, "optim.kind");
    if (!kind) return syn__error(SYN_ERR_FORMAT, "%s: the checkpoint holds no optimizer state (no 'optim.kind')", path);
    if (strcmp(kind, syn_optim_kind_name(c->kind)) != 0)
        return syn__error(SYN_ERR_FORMAT, "%s: the checkpoint's optimizer is %s, this one is %s", path, kind,
                          syn_optim_kind_name(c->kind));
    int64_t steps;
    SYN_TRY(get_i64(f, path, "optim.steps", 0, &steps));
    for (int t = 0; t < syn_safetensors_count(f); t++) {
        const char *name, *state = "";
        syn_dtype dt;
        syn_shape sh;
        const void *data;
        syn_safetensors_get(f, t, &name, &dt, &sh, &data, NULL);
        if (strncmp(name, OPT_PREFIX, strlen(OPT_PREFIX)) != 0) continue;
        int i;
        SYN_TRY(optim_tensor(name, path, p, &i, &state));
        if (strcmp(state, "step") == 0) {
            if (dt != SYN_I64 || sh.ndim != 0)
                return syn__error(SYN_ERR_FORMAT, "%s: '%s' is %s %s, not an i64 scalar", path, name, syn_dtype_name(dt),
                                  syn_shape_str(&sh, a, sizeof a));
            if (*(const int64_t *)data < 0)
                return syn__error(SYN_ERR_FORMAT, "%s: '%s' is negative (%lld)", path, name,
                                  (long long)*(const int64_t *)data);
            continue;
        }
        const char *s0 = syn__optim_state_name(c, 0), *s1 = syn__optim_state_name(c, 1);
        if (!(s0 && strcmp(state, s0) == 0) && !(s1 && strcmp(state, s1) == 0))
            return syn__error(SYN_ERR_FORMAT, "%s: '%s': %s%s keeps no '%s' state", path, name, kind,
                              c->kind == SYN_OPTIM_SGD && c->momentum == 0.0f ? " without momentum" : "", state);
        syn_shape want = syn_tensor_shape(p->items[i].value);
        if (dt != SYN_F32 || !syn_shape_equal(&sh, &want))
            return syn__error(SYN_ERR_FORMAT, "%s: optimizer state '%s' is %s %s in the file but the parameter is f32 %s",
                              path, name, syn_dtype_name(dt), syn_shape_str(&sh, a, sizeof a),
                              syn_shape_str(&want, b, sizeof b));
    }
    /* Buffers without their step count would restart Adam's bias correction. */
    char buf[512];
    for (int i = 0; i < p->n; i++) {
        bool any = false;
        for (int which = 0; which < 2; which++) {
            const char *sname = syn__optim_state_name(c, which);
            if (!sname) continue;
            snprintf(buf, sizeof buf, OPT_PREFIX "%s.%s", p->items[i].name, sname);
            any = any || syn_safetensors_find(f, buf, NULL, NULL, NULL, NULL) == SYN_OK;
        }
        snprintf(buf, sizeof buf, OPT_PREFIX "%s.step", p->items[i].name);
        if (any && syn_safetensors_find(f, buf, NULL, NULL, NULL, NULL) != SYN_OK)
            return syn__error(SYN_ERR_FORMAT, "%s: optimizer state of '%s' without its step count '%s'", path,
                              p->items[i].name, buf);
    }
    return SYN_OK;
}

/* Replaces the optimizer's state by the file's (checked before). */
static syn_status apply_optim(const syn_safetensors *f, const char *path, syn_optim *o) {
    const syn_optim_config *c = syn__optim_config(o);
    const syn_params *p = syn__optim_params(o);
    int64_t steps;
    SYN_TRY(get_i64(f, path, "optim.steps", 0, &steps));
    syn__optim_reset(o);
    char buf[512];
    for (int i = 0; i < p->n; i++) {
        const char *pname = p->items[i].name;
        const void *data;
        size_t bytes;
        for (int which = 0; which < 2; which++) {
            const char *sname = syn__optim_state_name(c, which);
            if (!sname) continue;
            snprintf(buf, sizeof buf, OPT_PREFIX "%s.%s", pname, sname);
            if (syn_safetensors_find(f, buf, NULL, NULL, &data, &bytes) == SYN_OK)
                SYN_TRY(syn__optim_state_write(o, i, which, data, (int64_t)(bytes / sizeof(float))));
        }
        snprintf(buf, sizeof buf, OPT_PREFIX "%s.step", pname);
        if (syn_safetensors_find(f, buf, NULL, NULL, &data, &bytes) == SYN_OK)
            SYN_TRY(syn__optim_set_param_step(o, i, *(const int64_t *)data));
    }
    syn__optim_set_steps(o, steps);
    return SYN_OK;
}

/* The comma-separated decimals of __metadata__ `key` into v[0..n): each a
 * finite number, and > 0 if positive. */
static syn_status parse_doubles(const char *path, const char *key, const char *text, double *v, int64_t n,
                                bool positive) {
    const char *p = text;
    for (int64_t k = 0; k < n; k++) {
        char *end;
        errno = 0;
        v[k] = strtod(p, &end);
        size_t len = strcspn(p, ",");
        if (end == p || end != p + len || !isfinite(v[k]) || (positive && !(v[k] > 0)))
            return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ '%s': value %lld, '%.*s', is not a %s number", path, key,
                              (long long)k, (int)(len < 40 ? len : 40), p, positive ? "positive finite" : "finite");
        p = end + (*end == ',');
    }
    return SYN_OK;
}

static int64_t count_values(const char *s) {
    int64_t n = 1;
    for (; *s; s++) n += *s == ',';
    return n;
}

/* The statistics in f, or *out NULL if it has none. */
static syn_status read_stats(const syn_safetensors *f, const char *path, syn_norm_stats **out) {
    *out = NULL;
    const char *m = syn_safetensors_metadata(f, STATS_MEAN), *sd = syn_safetensors_metadata(f, STATS_STD);
    if (!m && !sd) return SYN_OK;
    if (!m || !sd)
        return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ has '%s' but no '%s'", path, m ? STATS_MEAN : STATS_STD,
                          m ? STATS_STD : STATS_MEAN);
    int64_t n = count_values(m);
    if (count_values(sd) != n)
        return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ '%s' has %lld values but '%s' %lld", path, STATS_MEAN,
                          (long long)n, STATS_STD, (long long)count_values(sd));
    syn_norm_stats *st;
    SYN_TRY(syn__norm_stats_alloc(n, path, &st));
    syn_status s = parse_doubles(path, STATS_MEAN, m, st->mean, n, false);
    if (s == SYN_OK) s = parse_doubles(path, STATS_STD, sd, st->std, n, true);
    if (s != SYN_OK) {
        syn_norm_stats_free(st);
        return s;
    }
    *out = st;
    return SYN_OK;
}

syn_status syn_checkpoint_load_stats(const char *path, syn_norm_stats **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_checkpoint_load_stats: NULL output");
    *out = NULL;
    if (!path) return syn__error(SYN_ERR_ARG, "syn_checkpoint_load_stats: NULL path");
    syn_safetensors *f;
    SYN_TRY(syn_safetensors_open(path, &f));
    syn_status s = read_stats(f, path, out);
    syn_safetensors_close(f);
    return s;
}

syn_status syn_checkpoint_read_stats(const syn_safetensors *f, const char *name, syn_norm_stats **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_checkpoint_read_stats: NULL output");
    *out = NULL;
    if (!f) return syn__error(SYN_ERR_ARG, "syn_checkpoint_read_stats: NULL file");
    return read_stats(f, name ? name : "(checkpoint)", out);
}

syn_status syn_checkpoint_load(const char *path, syn_params *p, syn_optim *opt, syn_checkpoint_info *info) {
    if (!path || !p) return syn__error(SYN_ERR_ARG, "syn_checkpoint_load: NULL %s", path ? "parameter set" : "path");
    if (opt && syn__optim_params(opt) != p)
        return syn__error(SYN_ERR_ARG, "syn_checkpoint_load: the optimizer belongs to another parameter set");
    syn_safetensors *f;
    SYN_TRY(syn_safetensors_open(path, &f));
    syn_checkpoint_info in;
    syn_norm_stats *st = NULL;
    syn_status s = info ? read_info(f, path, &in) : SYN_OK;
    if (s == SYN_OK) s = read_stats(f, path, &st); /* checked only: syn_checkpoint_load_stats returns them */
    syn_norm_stats_free(st);
    if (s == SYN_OK) s = syn__params_check(f, path, p, true, OPT_PREFIX);
    if (s == SYN_OK && opt) s = check_optim(f, path, opt);
    if (s == SYN_OK) s = syn__params_apply(f, path, p);
    if (s == SYN_OK && opt) s = apply_optim(f, path, opt);
    if (s == SYN_OK && info) *info = in;
    syn_safetensors_close(f);
    return s;
}
