/* Shapes, dtypes and tensors: refcounted storage on a device. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../backend.h"

int64_t syn_shape_numel(const syn_shape *s) {
    if (!s) return 0;
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->dim[i];
    return n;
}

int syn_shape_equal(const syn_shape *a, const syn_shape *b) {
    if (!a || !b) return a == b;
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

const char *syn_shape_str(const syn_shape *s, char *buf, size_t size) {
    size_t k = 0;
    if (size == 0) return buf;
    k += (size_t)snprintf(buf + k, size - k, "(");
    for (int i = 0; i < s->ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ",%" PRId64 : "%" PRId64, s->dim[i]);
    if (k < size) snprintf(buf + k, size - k, ")");
    return buf;
}

size_t syn_dtype_size(syn_dtype dt) {
    switch (dt) {
    case SYN_F32: case SYN_I32: return 4;
    case SYN_F16: case SYN_BF16: return 2;
    case SYN_I64: return 8;
    case SYN_U8: return 1;
    default: return 0;
    }
}

const char *syn_dtype_name(syn_dtype dt) {
    static const char *const names[] = {"f32", "i32", "f16", "bf16", "i64", "u8"};
    return (unsigned)dt < SYN_DTYPE_COUNT ? names[dt] : "?";
}

/* Rejects negative dims, too many dims, and sizes that overflow. */
static syn_status check_shape(const char *what, syn_dtype dt, syn_shape shape, size_t *bytes) {
    char sb[128];
    if ((unsigned)dt >= SYN_DTYPE_COUNT) return syn__error(SYN_ERR_ARG, "%s: unknown dtype %d", what, (int)dt);
    if (shape.ndim < 0 || shape.ndim > SYN_MAX_DIMS)
        return syn__error(SYN_ERR_SHAPE, "%s: ndim %d outside 0..%d", what, shape.ndim, SYN_MAX_DIMS);
    uint64_t n = 1;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.dim[i] < 0)
            return syn__error(SYN_ERR_SHAPE, "%s: negative dim in %s", what, syn_shape_str(&shape, sb, sizeof sb));
        if (shape.dim[i] > 0 && n > (UINT64_C(1) << 46) / (uint64_t)shape.dim[i])
            return syn__error(SYN_ERR_SHAPE, "%s: shape %s is absurdly large", what,
                              syn_shape_str(&shape, sb, sizeof sb));
        n *= (uint64_t)shape.dim[i];
    }
    *bytes = (size_t)n * syn_dtype_size(dt);
    return SYN_OK;
}

syn_status syn_tensor_create(syn_device dev, syn_dtype dt, syn_shape shape, syn_tensor **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_tensor_create: out is NULL");
    *out = NULL;
    size_t bytes;
    SYN_TRY(check_shape("syn_tensor_create", dt, shape, &bytes));
    syn_backend *be;
    SYN_TRY(syn__backend_get(dev, &be));
    syn_tensor *t = syn__calloc(1, sizeof *t, "syn_tensor_create");
    syn__storage *st = syn__calloc(1, sizeof *st, "syn_tensor_create");
    if (!t || !st) {
        free(t);
        free(st);
        return SYN_ERR_OOM;
    }
    syn_status s = be->alloc(be, bytes, &st->data);
    if (s == SYN_OK) s = be->zero(be, st->data, bytes);
    if (s != SYN_OK) {
        if (st->data) be->free(be, st->data);
        free(st);
        free(t);
        return s;
    }
    st->be = be;
    st->bytes = bytes;
    st->refs = 1;
    t->st = st;
    t->shape = shape;
    t->dtype = dt;
    *out = t;
    return SYN_OK;
}

syn_status syn_tensor_from_host(syn_device dev, syn_dtype dt, syn_shape shape, const void *data,
                                syn_tensor **out) {
    if (!data) return syn__error(SYN_ERR_ARG, "syn_tensor_from_host: data is NULL");
    SYN_TRY(syn_tensor_create(dev, dt, shape, out));
    syn_status s = syn_tensor_write(*out, data, syn_tensor_bytes(*out));
    if (s != SYN_OK) {
        syn_tensor_free(*out);
        *out = NULL;
    }
    return s;
}

void syn_tensor_free(syn_tensor *t) {
    if (!t) return;
    syn__storage *st = t->st;
    if (st && --st->refs == 0) {
        st->be->free(st->be, st->data);
        free(st);
    }
    free(t);
}

size_t syn_tensor_bytes(const syn_tensor *t) {
    return t ? (size_t)syn_shape_numel(&t->shape) * syn_dtype_size(t->dtype) : 0;
}

syn_status syn_tensor_write(syn_tensor *t, const void *src, size_t bytes) {
    if (!t || (!src && bytes)) return syn__error(SYN_ERR_ARG, "syn_tensor_write: NULL argument");
    if (bytes != syn_tensor_bytes(t))
        return syn__error(SYN_ERR_ARG, "syn_tensor_write: %zu bytes given, tensor holds %zu", bytes,
                          syn_tensor_bytes(t));
    return t->st->be->copy_h2d(t->st->be, t->st->data, src, bytes);
}

syn_status syn_tensor_read(const syn_tensor *t, void *dst, size_t bytes) {
    if (!t || (!dst && bytes)) return syn__error(SYN_ERR_ARG, "syn_tensor_read: NULL argument");
    if (bytes != syn_tensor_bytes(t))
        return syn__error(SYN_ERR_ARG, "syn_tensor_read: %zu bytes asked, tensor holds %zu", bytes,
                          syn_tensor_bytes(t));
    return t->st->be->copy_d2h(t->st->be, dst, t->st->data, bytes);
}

syn_status syn_tensor_fill(syn_tensor *t, float v) {
    if (!t) return syn__error(SYN_ERR_ARG, "syn_tensor_fill: tensor is NULL");
    syn_backend *be = t->st->be;
    int64_t n = syn_tensor_numel(t);
    switch (t->dtype) {
    case SYN_F32: return be->fill_f32(be, (float *)t->st->data, v, n);
    case SYN_I32: return be->fill_i32(be, (int32_t *)t->st->data, (int32_t)v, n);
    default: return syn__error(SYN_ERR_UNSUPPORTED, "syn_tensor_fill: dtype %s", syn_dtype_name(t->dtype));
    }
}

syn_status syn_tensor_copy(syn_tensor *dst, const syn_tensor *src) {
    char a[128], b[128];
    if (!dst || !src) return syn__error(SYN_ERR_ARG, "syn_tensor_copy: NULL tensor");
    if (!syn_shape_equal(&dst->shape, &src->shape) || dst->dtype != src->dtype)
        return syn__error(SYN_ERR_SHAPE, "syn_tensor_copy: destination %s %s, source %s %s",
                          syn_shape_str(&dst->shape, a, sizeof a), syn_dtype_name(dst->dtype),
                          syn_shape_str(&src->shape, b, sizeof b), syn_dtype_name(src->dtype));
    size_t bytes = syn_tensor_bytes(src);
    syn_backend *sb = src->st->be, *db = dst->st->be;
    if (sb == db) return db->copy_d2d(db, dst->st->data, src->st->data, bytes);
    if (sb->device.type == SYN_DEVICE_CPU) return db->copy_h2d(db, dst->st->data, src->st->data, bytes);
    if (db->device.type == SYN_DEVICE_CPU) return sb->copy_d2h(sb, dst->st->data, src->st->data, bytes);
    /* GPU to another GPU: through the host. */
    void *tmp = syn__malloc(bytes, "syn_tensor_copy");
    if (!tmp) return SYN_ERR_OOM;
    syn_status s = sb->copy_d2h(sb, tmp, src->st->data, bytes);
    if (s == SYN_OK) s = db->copy_h2d(db, dst->st->data, tmp, bytes);
    free(tmp);
    return s;
}

syn_status syn_tensor_to(const syn_tensor *t, syn_device dev, syn_tensor **out) {
    if (!t || !out) return syn__error(SYN_ERR_ARG, "syn_tensor_to: NULL argument");
    SYN_TRY(syn_tensor_create(dev, t->dtype, t->shape, out));
    syn_status s = syn_tensor_copy(*out, t);
    if (s != SYN_OK) {
        syn_tensor_free(*out);
        *out = NULL;
    }
    return s;
}

syn_status syn_tensor_reshape(const syn_tensor *t, syn_shape shape, syn_tensor **out) {
    char a[128], b[128];
    size_t bytes;
    if (!t || !out) return syn__error(SYN_ERR_ARG, "syn_tensor_reshape: NULL argument");
    SYN_TRY(check_shape("syn_tensor_reshape", t->dtype, shape, &bytes));
    if (syn_shape_numel(&shape) != syn_shape_numel(&t->shape))
        return syn__error(SYN_ERR_SHAPE, "syn_tensor_reshape: %s to %s changes the element count",
                          syn_shape_str(&t->shape, a, sizeof a), syn_shape_str(&shape, b, sizeof b));
    syn_tensor *v = syn__calloc(1, sizeof *v, "syn_tensor_reshape");
    if (!v) return SYN_ERR_OOM;
    *v = *t;
    v->shape = shape;
    v->st->refs++;
    *out = v;
    return SYN_OK;
}

syn_shape syn_tensor_shape(const syn_tensor *t) { return t ? t->shape : syn_shape0(); }
syn_dtype syn_tensor_dtype(const syn_tensor *t) { return t ? t->dtype : SYN_F32; }
syn_device syn_tensor_device(const syn_tensor *t) { return t ? t->st->be->device : syn_cpu(); }
int64_t syn_tensor_numel(const syn_tensor *t) { return t ? syn_shape_numel(&t->shape) : 0; }
