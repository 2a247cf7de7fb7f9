/* Status strings, the thread-local error message, checked allocation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

static _Thread_local char syn__msg[1024];

const char *syn_status_str(syn_status s) {
    static const char *const names[] = {
#define SYN__STATUS_STR(name, str) str,
        SYN_STATUS_LIST(SYN__STATUS_STR)
#undef SYN__STATUS_STR
    };
    if ((unsigned)s >= SYN_STATUS_COUNT) return "unknown status";
    return names[s];
}

const char *syn_last_error(void) { return syn__msg; }
void syn_clear_error(void) { syn__msg[0] = 0; }
void syn__error_restore(const char *msg) { snprintf(syn__msg, sizeof syn__msg, "%s", msg); }
const char *syn_version(void) { return SYN_VERSION_STRING; }

syn_status syn__error(syn_status s, const char *fmt, ...) {
    char tmp[sizeof syn__msg - 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    snprintf(syn__msg, sizeof syn__msg, "%s: %s", syn_status_str(s), tmp);
    return s;
}

void *syn__malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) syn__error(SYN_ERR_OOM, "%s: cannot allocate %zu bytes of host memory", what, bytes);
    return p;
}

void *syn__calloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) syn__error(SYN_ERR_OOM, "%s: cannot allocate %zu x %zu bytes of host memory", what, n, size);
    return p;
}
