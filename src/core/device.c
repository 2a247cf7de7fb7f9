/* Device names and the backend registry: the only place besides src/cuda/
 * that knows whether the CUDA backend was built. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../backend.h"

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
    syn_backend *be = NULL;
    SYN_TRY(syn__backend_get(d, &be));
    if (be->memory) return be->memory(be, in_use, peak);
    char b[32];
    return syn__error(SYN_ERR_UNSUPPORTED, "syn_device_memory: %s has no device allocator", syn_device_str(d, b, sizeof b));
}

syn_status syn_device_synchronize(syn_device d) {
    syn_backend *be = NULL;
    SYN_TRY(syn__backend_get(d, &be));
    return be->synchronize(be);
}

/* ---- timers ------------------------------------------------------------------- */

struct syn_device_timer {
    syn_backend *be;
    void *start, *stop; /* the backend's marks, or NULL with the host clock */
    double t0;          /* host clock: ms at start */
    bool started;
};

double syn__host_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

syn_status syn_device_timer_create(syn_device d, syn_device_timer **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_device_timer_create: NULL output");
    *out = NULL;
    syn_backend *be = NULL;
    SYN_TRY(syn__backend_get(d, &be));
    syn_device_timer *t = syn__calloc(1, sizeof *t, "syn_device_timer_create");
    if (!t) return SYN_ERR_OOM;
    t->be = be;
    if (be->mark_create) {
        syn_status s = be->mark_create(be, &t->start);
        if (s == SYN_OK) s = be->mark_create(be, &t->stop);
        if (s != SYN_OK) {
            syn_device_timer_free(t);
            return s;
        }
    }
    *out = t;
    return SYN_OK;
}

syn_status syn_device_timer_start(syn_device_timer *t) {
    if (!t) return syn__error(SYN_ERR_ARG, "syn_device_timer_start: NULL timer");
    if (t->start) SYN_TRY(t->be->mark_record(t->be, t->start));
    else t->t0 = syn__host_ms();
    t->started = true;
    return SYN_OK;
}

syn_status syn_device_timer_stop(syn_device_timer *t, double *ms) {
    if (!t || !ms) return syn__error(SYN_ERR_ARG, "syn_device_timer_stop: NULL %s", !t ? "timer" : "output");
    if (!t->started) return syn__error(SYN_ERR_ARG, "syn_device_timer_stop: the timer was not started");
    if (t->stop) {
        SYN_TRY(t->be->mark_record(t->be, t->stop));
        return t->be->mark_elapsed(t->be, t->start, t->stop, ms);
    }
    *ms = syn__host_ms() - t->t0;
    return SYN_OK;
}

void syn_device_timer_free(syn_device_timer *t) {
    if (!t) return;
    if (t->be->mark_destroy) {
        t->be->mark_destroy(t->be, t->start);
        t->be->mark_destroy(t->be, t->stop);
    }
    free(t);
}
