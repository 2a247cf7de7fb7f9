/* Parameter files: every parameter of a set as a safetensors tensor under its
 * PyTorch-style name, and back (with shape and dtype checks first, so a file
 * that does not fit leaves the parameters untouched). PyTorch's batch norm
 * also keeps "<bn>.num_batches_tracked", an I64 scalar Synapse has no use
 * for (its momentum is fixed): written as 0, accepted and ignored on load. */
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"

syn_status syn__params_add_all(syn_safetensors_writer *w, const syn_params *p, const char *path) {
    for (int i = 0; i < p->n; i++) {
        const syn__param *it = &p->items[i];
        size_t bytes = syn_tensor_bytes(it->value);
        void *host = malloc(bytes ? bytes : 1);
        if (!host) return syn__error(SYN_ERR_OOM, "%s: out of memory copying parameter '%s'", path, it->name);
        syn_status s = syn_tensor_read(it->value, host, bytes);
        if (s == SYN_OK)
            s = syn_safetensors_add(w, it->name, syn_tensor_dtype(it->value), syn_tensor_shape(it->value), host);
        free(host);
        SYN_TRY(s);
    }
    return SYN_OK;
}

static bool skipped(const char *name, const char *prefix) {
    return prefix && strncmp(name, prefix, strlen(prefix)) == 0;
}

#define NBT_SUFFIX ".num_batches_tracked"

/* If name is "<bn>.<suffix>", writes "<bn>.<other>" into buf and returns true. */
static bool sibling(const char *name, const char *suffix, const char *other, char *buf, size_t size) {
    size_t n = strlen(name), k = strlen(suffix);
    if (n <= k || strcmp(name + n - k, suffix) != 0) return false;
    return snprintf(buf, size, "%.*s%s", (int)(n - k), name, other) < (int)size;
}

/* PyTorch's "<bn>.num_batches_tracked": an I64 scalar beside a batch norm's
 * running statistics that is not a parameter of the set. Any other tensor the
 * model lacks is still an error in strict mode. */
static bool bn_counter(const syn_safetensors *f, const syn_params *p, int i) {
    const char *name;
    syn_dtype dt;
    syn_shape sh;
    char bn[512];
    syn_safetensors_get(f, i, &name, &dt, &sh, NULL, NULL);
    return dt == SYN_I64 && sh.ndim == 0 && sibling(name, NBT_SUFFIX, ".running_mean", bn, sizeof bn) &&
           syn_params_find(p, bn, NULL, NULL) == SYN_OK && syn_params_find(p, name, NULL, NULL) != SYN_OK;
}

/* "<bn>.num_batches_tracked" = 0 for each "<bn>.running_var" whose
 * "<bn>.running_mean" is in the set too, so the file has the keys of
 * PyTorch's state_dict (safetensors.torch.load_model checks them). */
static syn_status add_bn_counters(syn_safetensors_writer *w, const syn_params *p) {
    char mean[512], nbt[512];
    const int64_t zero = 0;
    for (int i = 0; i < p->n; i++) {
        const char *name = p->items[i].name;
        if (!sibling(name, ".running_var", ".running_mean", mean, sizeof mean) ||
            !sibling(name, ".running_var", NBT_SUFFIX, nbt, sizeof nbt))
            continue;
        if (syn_params_find(p, mean, NULL, NULL) != SYN_OK || syn_params_find(p, nbt, NULL, NULL) == SYN_OK) continue;
        SYN_TRY(syn_safetensors_add(w, nbt, SYN_I64, syn_shape0(), &zero));
    }
    return SYN_OK;
}

syn_status syn__params_check(const syn_safetensors *f, const char *path, const syn_params *p, bool strict,
                             const char *skip_prefix) {
    char a[128], b[128];
    for (int i = 0; i < p->n; i++) {
        const syn__param *it = &p->items[i];
        syn_dtype dt;
        syn_shape sh;
        if (syn_safetensors_find(f, it->name, &dt, &sh, NULL, NULL) != SYN_OK) {
            if (!strict) continue;
            return syn__error(SYN_ERR_FORMAT, "%s: parameter '%s' of the model is not in the file", path, it->name);
        }
        syn_shape want = syn_tensor_shape(it->value);
        syn_dtype wdt = syn_tensor_dtype(it->value);
        if (dt != wdt || !syn_shape_equal(&sh, &want))
            return syn__error(SYN_ERR_FORMAT, "%s: parameter '%s' is %s %s in the file but %s %s in the model", path,
                              it->name, syn_dtype_name(dt), syn_shape_str(&sh, a, sizeof a), syn_dtype_name(wdt),
                              syn_shape_str(&want, b, sizeof b));
    }
    if (strict)
        for (int i = 0; i < syn_safetensors_count(f); i++) {
            const char *name;
            syn_safetensors_get(f, i, &name, NULL, NULL, NULL, NULL);
            if (skipped(name, skip_prefix) || bn_counter(f, p, i)) continue;
            if (syn_params_find(p, name, NULL, NULL) != SYN_OK)
                return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s' in the file is not a parameter of the model", path,
                                  name);
        }
    return SYN_OK;
}

syn_status syn__params_apply(const syn_safetensors *f, const char *path, syn_params *p) {
    for (int i = 0; i < p->n; i++) {
        const syn__param *it = &p->items[i];
        const void *data;
        size_t bytes;
        if (syn_safetensors_find(f, it->name, NULL, NULL, &data, &bytes) != SYN_OK) continue;
        syn_status s = syn_tensor_write(it->value, data, bytes);
        if (s != SYN_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", syn_last_error());
            return syn__error(s, "%s: parameter '%s': %s", path, it->name, msg);
        }
    }
    return SYN_OK;
}

syn_status syn_params_save(const syn_params *p, const char *path) {
    if (!p || !path) return syn__error(SYN_ERR_ARG, "syn_params_save: NULL %s", p ? "path" : "parameter set");
    syn_safetensors_writer *w;
    SYN_TRY(syn_safetensors_writer_create(&w));
    syn_status s = syn_safetensors_set_metadata(w, "format", "pt");
    if (s == SYN_OK) s = syn_safetensors_set_metadata(w, "synapse.version", syn_version());
    if (s == SYN_OK) s = syn__params_add_all(w, p, path);
    if (s == SYN_OK) s = add_bn_counters(w, p);
    if (s == SYN_OK) s = syn_safetensors_write(w, path);
    syn_safetensors_writer_free(w);
    return s;
}

syn_status syn_params_load(syn_params *p, const char *path, bool strict) {
    if (!p || !path) return syn__error(SYN_ERR_ARG, "syn_params_load: NULL %s", p ? "path" : "parameter set");
    syn_safetensors *f;
    SYN_TRY(syn_safetensors_open(path, &f));
    syn_status s = syn__params_check(f, path, p, strict, NULL);
    if (s == SYN_OK) s = syn__params_apply(f, path, p);
    syn_safetensors_close(f);
    return s;
}
