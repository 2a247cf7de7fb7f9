/* Status codes, the thread-local error message and version information.
 * Every public function that can fail returns a syn_status; the details of the
 * last failure on the calling thread are in syn_last_error(). */
#ifndef SYNAPSE_STATUS_H
#define SYNAPSE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SYN_API __declspec(dllexport)
#else
#define SYN_API __attribute__((visibility("default")))
#endif

/* SYN_VERSION_MAJOR/MINOR/PATCH/STRING/NUMBER, generated from CMake's project(VERSION). */
#include "synapse/version.h"

/* One list generates the enum and syn_status_str(). */
#define SYN_STATUS_LIST(X)                       \
    X(OK, "ok")                                  \
    X(ERR_ARG, "invalid argument")               \
    X(ERR_SHAPE, "shape mismatch")               \
    X(ERR_OOM, "out of memory")                  \
    X(ERR_DEVICE, "device error")                \
    X(ERR_FORMAT, "bad file format")             \
    X(ERR_IO, "i/o error")                       \
    X(ERR_UNSUPPORTED, "unsupported")

typedef enum {
#define SYN__STATUS_ENUM(name, str) SYN_##name,
    SYN_STATUS_LIST(SYN__STATUS_ENUM)
#undef SYN__STATUS_ENUM
    SYN_STATUS_COUNT
} syn_status;

/* Short fixed description of a status ("shape mismatch"); never NULL. */
SYN_API const char *syn_status_str(syn_status s);

/* Details of the last failure on this thread (op, shapes, file, offset ...).
 * borrowed: valid until the next failing call on this thread. "" if none. */
SYN_API const char *syn_last_error(void);

/* Clears the thread-local message. */
SYN_API void syn_clear_error(void);

/* "0.1.0" */
SYN_API const char *syn_version(void);

#ifdef __cplusplus
}
#endif
#endif
