/* Parameter sets: named tensors with gradients on one device, their
 * initialisation (Philox, on the host, so every device gets the same values),
 * zeroing and global-norm clipping of gradients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../backend.h"
#include "rng.h"

syn_status syn_params_create(syn_device dev, uint64_t seed, syn_params **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_params_create: out is NULL");
    *out = NULL;
    syn_backend *be;
    SYN_TRY(syn__backend_get(dev, &be));
    syn_params *p = syn__calloc(1, sizeof *p, "syn_params_create");
    if (!p) return SYN_ERR_OOM;
    p->dev = dev;
    p->be = be;
    p->seed = seed;
    syn_status s = be->alloc(be, sizeof(float), (void **)&p->scratch);
    if (s != SYN_OK) {
        free(p);
        return s;
    }
    *out = p;
    return SYN_OK;
}

void syn_params_free(syn_params *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->items[i].name);
        syn_tensor_free(p->items[i].value);
        syn_tensor_free(p->items[i].grad);
    }
    free(p->items);
    if (p->scratch) p->be->free(p->be, p->scratch);
    free(p);
}

syn_device syn_params_device(const syn_params *p) { return p ? p->dev : syn_cpu(); }
int syn_params_count(const syn_params *p) { return p ? p->n : 0; }

int64_t syn_params_numel(const syn_params *p) {
    int64_t n = 0;
    for (int i = 0; p && i < p->n; i++) n += syn_tensor_numel(p->items[i].value);
    return n;
}

syn_status syn_params_get(const syn_params *p, int i, const char **name, syn_tensor **value, syn_tensor **grad) {
    if (!p || i < 0 || i >= p->n)
        return syn__error(SYN_ERR_ARG, "syn_params_get: index %d outside 0..%d", i, p ? p->n - 1 : -1);
    if (name) *name = p->items[i].name;
    if (value) *value = p->items[i].value;
    if (grad) *grad = p->items[i].grad;
    return SYN_OK;
}

static syn__param *find(const syn_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0) return &p->items[i];
    return NULL;
}

syn_status syn_params_find(const syn_params *p, const char *name, syn_tensor **value, syn_tensor **grad) {
    if (!p || !name) return syn__error(SYN_ERR_ARG, "syn_params_find: NULL argument");
    syn__param *it = find(p, name);
    if (!it) return syn__error(SYN_ERR_ARG, "no parameter named '%s'", name);
    if (value) *value = it->value;
    if (grad) *grad = it->grad;
    return SYN_OK;
}

syn_status syn_init_tensor(syn_tensor *t, const syn_init *init, uint64_t seed, uint64_t stream) {
    if (!t || !init) return syn__error(SYN_ERR_ARG, "syn_init_tensor: NULL argument");
    if (t->dtype != SYN_F32)
        return syn__error(SYN_ERR_UNSUPPORTED, "syn_init_tensor: dtype %s", syn_dtype_name(t->dtype));
    int64_t n = syn_tensor_numel(t);
    int64_t fan_out = t->shape.ndim > 0 ? t->shape.dim[0] : 1;
    int64_t fan_in = t->shape.ndim > 1 ? n / (fan_out ? fan_out : 1) : fan_out;
    if (init->fan_in > 0) fan_in = init->fan_in;
    if (fan_in < 1) fan_in = 1;
    float gain = init->a != 0.0f ? init->a : 1.0f;
    float lo = 0, hi = 0, mean = 0, std = 0;
    int uniform = 1;
    switch (init->kind) {
    case SYN_INIT_ZEROS: return syn_tensor_fill(t, 0.0f);
    case SYN_INIT_CONSTANT: return syn_tensor_fill(t, init->a);
    case SYN_INIT_UNIFORM: lo = init->a; hi = init->b; break;
    case SYN_INIT_NORMAL: uniform = 0; mean = init->a; std = init->b; break;
    case SYN_INIT_XAVIER_UNIFORM: hi = gain * sqrtf(6.0f / (float)(fan_in + fan_out)); lo = -hi; break;
    case SYN_INIT_XAVIER_NORMAL: uniform = 0; std = gain * sqrtf(2.0f / (float)(fan_in + fan_out)); break;
    case SYN_INIT_KAIMING_UNIFORM: hi = sqrtf(6.0f / (float)fan_in); lo = -hi; break;
    case SYN_INIT_KAIMING_NORMAL: uniform = 0; std = sqrtf(2.0f / (float)fan_in); break;
    case SYN_INIT_FANIN_UNIFORM: hi = 1.0f / sqrtf((float)fan_in); lo = -hi; break;
    default: return syn__error(SYN_ERR_ARG, "syn_init_tensor: unknown initialiser %d", (int)init->kind);
    }
    float *h = syn__malloc((size_t)n * sizeof(float), "syn_init_tensor");
    if (!h) return SYN_ERR_OOM;
    for (int64_t i = 0; i < n; i++)
        h[i] = uniform ? lo + (hi - lo) * syn__philox_uniform(seed, stream, (uint64_t)i)
                       : mean + std * syn__philox_normal(seed, stream, (uint64_t)i);
    syn_status s = syn_tensor_write(t, h, (size_t)n * sizeof(float));
    free(h);
    return s;
}

syn_status syn_params_add(syn_params *p, const char *name, syn_shape shape, const syn_init *init,
                          syn_tensor **value) {
    char a[128], b[128];
    if (!p || !name || !*name) return syn__error(SYN_ERR_ARG, "syn_params_add: NULL set or empty name");
    syn__param *it = find(p, name);
    if (it) {
        if (!syn_shape_equal(&it->value->shape, &shape))
            return syn__error(SYN_ERR_SHAPE, "parameter '%s' exists with shape %s, asked for %s", name,
                              syn_shape_str(&it->value->shape, a, sizeof a), syn_shape_str(&shape, b, sizeof b));
        if (value) *value = it->value;
        return SYN_OK;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        syn__param *items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items) return syn__error(SYN_ERR_OOM, "syn_params_add: cannot grow the set to %d", cap);
        p->items = items;
        p->cap = cap;
    }
    syn__param np = {0};
    np.trainable = true;
    np.name = strdup(name);
    syn_status s = np.name ? SYN_OK : syn__error(SYN_ERR_OOM, "syn_params_add: name");
    if (s == SYN_OK) s = syn_tensor_create(p->dev, SYN_F32, shape, &np.value);
    if (s == SYN_OK) s = syn_tensor_create(p->dev, SYN_F32, shape, &np.grad);
    syn_init zeros = {SYN_INIT_ZEROS, 0, 0, 0};
    if (s == SYN_OK) s = syn_init_tensor(np.value, init ? init : &zeros, p->seed, SYN_STREAM_INIT + (uint64_t)p->n);
    if (s != SYN_OK) {
        free(np.name);
        syn_tensor_free(np.value);
        syn_tensor_free(np.grad);
        return s;
    }
    p->items[p->n++] = np;
    if (value) *value = np.value;
    return SYN_OK;
}

syn_status syn_params_set_trainable(syn_params *p, const char *name, bool trainable) {
    if (!p || !name) return syn__error(SYN_ERR_ARG, "syn_params_set_trainable: NULL argument");
    syn__param *it = find(p, name);
    if (!it) return syn__error(SYN_ERR_ARG, "no parameter named '%s'", name);
    it->trainable = trainable;
    return SYN_OK;
}

syn_status syn_params_zero_grad(syn_params *p) {
    if (!p) return syn__error(SYN_ERR_ARG, "syn_params_zero_grad: NULL set");
    syn_backend *be = p->be;
    enum { BATCH = 64 }; /* one call per 64 tensors: a launch or three on a GPU */
    void *dst[BATCH];
    size_t bytes[BATCH];
    for (int i = 0; i < p->n; i += BATCH) {
        int k = 0;
        for (; k < BATCH && i + k < p->n; k++) {
            dst[k] = syn__tensor_data(p->items[i + k].grad);
            bytes[k] = syn_tensor_bytes(p->items[i + k].grad);
        }
        SYN_TRY(be->zero_many(be, dst, bytes, k));
    }
    return SYN_OK;
}

syn_status syn_params_clip_grad_norm(syn_params *p, float max_norm, float *norm) {
    if (!p) return syn__error(SYN_ERR_ARG, "syn_params_clip_grad_norm: NULL set");
    if (!(max_norm > 0.0f)) return syn__error(SYN_ERR_ARG, "syn_params_clip_grad_norm: max_norm %g <= 0", max_norm);
    syn_backend *be = p->be;
    SYN_TRY(be->zero(be, p->scratch, sizeof(float)));
    enum { BATCH = 64 }; /* the trainable gradients, 64 at a time: a launch or two each on a GPU */
    float *x[BATCH];
    int64_t n[BATCH];
    for (int pass = 0; pass < 2; pass++) /* the norm of all, then the scaling of all */
        for (int i = 0; i < p->n;) {
            int k = 0;
            for (; k < BATCH && i < p->n; i++)
                if (p->items[i].trainable) {
                    x[k] = syn__tensor_data(p->items[i].grad);
                    n[k++] = syn_tensor_numel(p->items[i].grad);
                }
            if (pass == 0) SYN_TRY(be->sumsq(be, (const float *const *)x, n, k, p->scratch));
            else SYN_TRY(be->clip_scale(be, x, n, k, p->scratch, max_norm));
        }
    if (norm) {
        float ss;
        SYN_TRY(be->copy_d2h(be, &ss, p->scratch, sizeof ss));
        *norm = sqrtf(ss);
    }
    return SYN_OK;
}
