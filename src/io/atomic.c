/* Atomic file replacement (io_internal.h): temporary file in the target's
 * folder, fsync, rename, fsync of the folder. Used by every writer in src/io/. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io_internal.h"

static void release(syn__atomic *a) {
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
    a->f = NULL;
}

void syn__atomic_abort(syn__atomic *a) {
    if (!a) return;
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    release(a);
}

syn_status syn__atomic_begin(syn__atomic *a, const char *path) {
    memset(a, 0, sizeof *a);
    if (!path || !*path) return syn__error(SYN_ERR_ARG, "atomic write: empty path");
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) return syn__error(SYN_ERR_ARG, "%s: is a folder, not a file name", path);
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0; /* with the '/' */
    size_t n = dir_len + 1 + strlen(base) + 8 + 1;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        release(a);
        return syn__error(SYN_ERR_OOM, "%s: out of memory for the temporary file's name", path);
    }
    snprintf(a->tmp, n, "%.*s.%s.XXXXXX", (int)dir_len, path, base);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        syn_status s = syn__error(SYN_ERR_IO, "%s: cannot create a temporary file %s: %s", path, a->tmp, strerror(e));
        release(a);
        return s;
    }
    /* mkstemp makes 0600 files: keep the mode of the file being replaced, else
     * the usual 0644 (reading the umask is not thread-safe). */
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644;
    if (fchmod(fd, mode) != 0) { /* not fatal: the file is still written */ }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        syn_status s = syn__error(SYN_ERR_IO, "%s: fdopen: %s", path, strerror(e));
        release(a);
        return s;
    }
    return SYN_OK;
}

syn_status syn__atomic_write(syn__atomic *a, const void *data, size_t n) {
    if (n == 0) return SYN_OK;
    if (fwrite(data, 1, n, a->f) != n) {
        int e = errno ? errno : EIO;
        return syn__error(SYN_ERR_IO, "%s: write to %s failed: %s", a->path, a->tmp, strerror(e));
    }
    return SYN_OK;
}

syn_status syn__atomic_commit(syn__atomic *a) {
    const char *step = "fflush";
    int e = 0;
    if (fflush(a->f) != 0) e = errno;
    else if (step = "fsync", fsync(fileno(a->f)) != 0) e = errno;
    int rc = fclose(a->f);
    a->f = NULL;
    if (!e && rc != 0) step = "fclose", e = errno;
    if (!e && rename(a->tmp, a->path) != 0) step = "rename", e = errno;
    if (e) {
        syn_status s = syn__error(SYN_ERR_IO, "%s: %s of %s failed: %s", a->path, step, a->tmp, strerror(e));
        syn__atomic_abort(a);
        return s;
    }
    /* The rename is durable once the folder is synced. */
    const char *slash = strrchr(a->path, '/');
    char *dir = slash ? strndup(a->path, (size_t)(slash - a->path) + 1) : strdup(".");
    syn_status s = SYN_OK;
    if (!dir) {
        s = syn__error(SYN_ERR_OOM, "%s: out of memory", a->path);
    } else {
        int fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || fsync(fd) != 0) {
            e = errno;
            s = syn__error(SYN_ERR_IO, "%s: fsync of the folder %s failed: %s", a->path, dir, strerror(e));
        }
        if (fd >= 0) close(fd);
        free(dir);
    }
    release(a);
    return s;
}
