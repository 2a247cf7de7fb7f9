/* syn_tensor: a dense, contiguous, row-major array with a shape, a dtype and
 * refcounted storage on one device. */
#ifndef SYNAPSE_TENSOR_H
#define SYNAPSE_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "device.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SYN_F32 = 0,
    SYN_I32 = 1,
    SYN_F16 = 2,  /* reserved: not yet computed on */
    SYN_BF16 = 3, /* reserved */
    SYN_I64 = 4,  /* reserved */
    SYN_U8 = 5,   /* storage only (images, safetensors) */
    SYN_DTYPE_COUNT
} syn_dtype;

#define SYN_MAX_DIMS 6

/* ndim 0 is a scalar (one element). */
typedef struct {
    int ndim;
    int64_t dim[SYN_MAX_DIMS];
} syn_shape;

static inline syn_shape syn_shape0(void) { syn_shape s = {0, {0}}; return s; }
static inline syn_shape syn_shape1(int64_t a) { syn_shape s = {1, {a}}; return s; }
static inline syn_shape syn_shape2(int64_t a, int64_t b) { syn_shape s = {2, {a, b}}; return s; }
static inline syn_shape syn_shape3(int64_t a, int64_t b, int64_t c) { syn_shape s = {3, {a, b, c}}; return s; }
static inline syn_shape syn_shape4(int64_t a, int64_t b, int64_t c, int64_t d) {
    syn_shape s = {4, {a, b, c, d}};
    return s;
}

/* Product of the dims (1 for a scalar, 0 for NULL). */
SYN_API int64_t syn_shape_numel(const syn_shape *s);
/* 1 if both have the same ndim and dims (or both are NULL). */
SYN_API int syn_shape_equal(const syn_shape *a, const syn_shape *b);
/* Writes "(2,3,4)" into buf. Returns buf. */
SYN_API const char *syn_shape_str(const syn_shape *s, char *buf, size_t size);

SYN_API size_t syn_dtype_size(syn_dtype dt);
SYN_API const char *syn_dtype_name(syn_dtype dt);

typedef struct syn_tensor syn_tensor;

/* A zero-filled tensor. owned: free with syn_tensor_free. */
SYN_API syn_status syn_tensor_create(syn_device dev, syn_dtype dt, syn_shape shape, syn_tensor **out);

/* A tensor holding a copy of `data` (host memory, numel * dtype size bytes).
 * owned: free with syn_tensor_free. */
SYN_API syn_status syn_tensor_from_host(syn_device dev, syn_dtype dt, syn_shape shape,
                                        const void *data, syn_tensor **out);

/* Drops this handle's reference to the storage. NULL is a no-op. */
SYN_API void syn_tensor_free(syn_tensor *t);

/* Host -> tensor; `bytes` must equal the tensor's size. */
SYN_API syn_status syn_tensor_write(syn_tensor *t, const void *src, size_t bytes);
/* Tensor -> host; `bytes` must equal the tensor's size. */
SYN_API syn_status syn_tensor_read(const syn_tensor *t, void *dst, size_t bytes);
/* Sets every element (F32: v; I32: (int32_t)v). */
SYN_API syn_status syn_tensor_fill(syn_tensor *t, float v);
/* Copies values between tensors of equal shape and dtype, on any devices. */
SYN_API syn_status syn_tensor_copy(syn_tensor *dst, const syn_tensor *src);
/* A new tensor on `dev` with the same values. owned: free with syn_tensor_free. */
SYN_API syn_status syn_tensor_to(const syn_tensor *t, syn_device dev, syn_tensor **out);
/* A view of the same storage with another shape of equal numel.
 * owned handle (shares storage): free with syn_tensor_free. */
SYN_API syn_status syn_tensor_reshape(const syn_tensor *t, syn_shape shape, syn_tensor **out);

SYN_API syn_shape syn_tensor_shape(const syn_tensor *t);
SYN_API syn_dtype syn_tensor_dtype(const syn_tensor *t);
SYN_API syn_device syn_tensor_device(const syn_tensor *t);
SYN_API int64_t syn_tensor_numel(const syn_tensor *t);
SYN_API size_t syn_tensor_bytes(const syn_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
