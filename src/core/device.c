/* Device names and the backend registry: the only place besides src/cuda/
 * that knows whether the CUDA backend was built. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../backend.h"
#ifdef SYN_HAVE_CUDA
#include "../cuda/cuda_common.h"
#endif

#define SYN_OP(id, name, arity, flags) #name,
const char *const syn__op_name[SYN_OP_COUNT] = {
#include "../ops.def"
};
#undef SYN_OP
#define SYN_OP(id, name, arity, flags) arity,
const int syn__op_arity[SYN_OP_COUNT] = {
#include "../ops.def"
};
#undef SYN_OP
#define SYN_OP(id, name, arity, flags) flags,
const int syn__op_flags[SYN_OP_COUNT] = {
#include "../ops.def"
};
#undef SYN_OP

syn_status syn_device_parse(const char *text, syn_device *out) {
    if (!text || !out) return syn__error(SYN_ERR_ARG, "syn_device_parse: NULL argument");
    if (strcmp(text, "cpu") == 0) {
        *out = syn_cpu();
        return SYN_OK;
    }
    const char *rest = NULL;
    if (strncmp(text, "cuda", 4) == 0) rest = text + 4;
    else if (strncmp(text, "gpu", 3) == 0) rest = text + 3;
    if (rest) {
        if (*rest == 0) {
            *out = syn_cuda(0);
            return SYN_OK;
        }
        if (*rest == ':' && rest[1]) {
            char *end;
            long idx = strtol(rest + 1, &end, 10);
            if (*end == 0 && idx >= 0 && idx < 1024) {
                *out = syn_cuda((int)idx);
                return SYN_OK;
            }
        }
    }
    return syn__error(SYN_ERR_ARG, "unknown device '%s' (expected cpu, cuda or cuda:N)", text);
}

const char *syn_device_str(syn_device d, char *buf, size_t size) {
    if (d.type == SYN_DEVICE_CPU) snprintf(buf, size, "cpu");
    else snprintf(buf, size, "cuda:%d", d.index);
    return buf;
}

int syn_backend_built(syn_device_type type) {
    if (type == SYN_DEVICE_CPU) return 1;
#ifdef SYN_HAVE_CUDA
    if (type == SYN_DEVICE_CUDA) return 1;
#endif
    return 0;
}

int syn_device_count(syn_device_type type) {
    if (type == SYN_DEVICE_CPU) return 1;
#ifdef SYN_HAVE_CUDA
    if (type == SYN_DEVICE_CUDA) return syn__cuda_device_count();
#endif
    return 0;
}

syn_status syn__backend_get(syn_device dev, syn_backend **out) {
    if (dev.type == SYN_DEVICE_CPU) {
        *out = syn__cpu_backend();
        return SYN_OK;
    }
    if (dev.type == SYN_DEVICE_CUDA) {
#ifdef SYN_HAVE_CUDA
        return syn__cuda_backend(dev.index, out);
#else
        return syn__error(SYN_ERR_UNSUPPORTED, "device cuda:%d: this build of Synapse has no CUDA backend",
                          dev.index);
#endif
    }
    return syn__error(SYN_ERR_ARG, "unknown device type %d", (int)dev.type);
}

syn_status syn_device_describe(syn_device d, char *buf, size_t size) {
    syn_backend *be = NULL;
    SYN_TRY(syn__backend_get(d, &be));
    return be->describe(be, buf, size);
}

syn_status syn_device_memory(syn_device d, size_t *in_use, size_t *peak) {
    if (!in_use || !peak) return syn__error(SYN_ERR_ARG, "syn_device_memory: NULL argument");
#ifdef SYN_HAVE_CUDA
    if (d.type == SYN_DEVICE_CUDA) {
        syn_backend *be = NULL;
        SYN_TRY(syn__backend_get(d, &be));
        syn__cuda_mem_stats st;
        SYN_TRY(syn__cuda_memory_stats(d.index, &st));
        *in_use = st.in_use;
        *peak = st.peak;
        return SYN_OK;
    }
#endif
    char b[32];
    return syn__error(SYN_ERR_UNSUPPORTED, "syn_device_memory: %s has no device allocator", syn_device_str(d, b, sizeof b));
}

syn_status syn_device_synchronize(syn_device d) {
    syn_backend *be = NULL;
    SYN_TRY(syn__backend_get(d, &be));
    return be->synchronize(be);
}
