/* Private to src/io/ (and the tests and fuzz targets, which include src/):
 * atomic file writing and the safetensors parser's from-memory entry point. */
#ifndef SYN_IO_INTERNAL_H
#define SYN_IO_INTERNAL_H

#include <stdio.h>
#include "../core/internal.h"

/* A file written atomically: bytes go to a hidden temporary file in the
 * target's folder (".<name>.XXXXXX", made by mkstemp), which commit flushes,
 * fsyncs and renames over the target before fsyncing the folder. Until commit
 * returns the target keeps its old contents; a crash leaves at most a stray
 * hidden temporary file, never a partial file under the target's name. */
typedef struct {
    FILE *f;
    char *tmp;  /* the temporary file's path */
    char *path; /* the target */
} syn__atomic;

/* SYN_ERR_IO naming the folder and strerror on failure (nothing left behind). */
syn_status syn__atomic_begin(syn__atomic *a, const char *path);
/* SYN_ERR_IO naming the target and strerror on a short write. */
syn_status syn__atomic_write(syn__atomic *a, const void *data, size_t n);
/* Flush, fsync, rename, fsync the folder. Always releases `a`; on failure the
 * temporary file is removed and the target is untouched. */
syn_status syn__atomic_commit(syn__atomic *a);
/* Removes the temporary file and releases `a`. Safe on a zeroed or released `a`. */
void syn__atomic_abort(syn__atomic *a);

/* Folders (dir.c). Whether path is a folder. */
bool syn__is_dir(const char *path);
/* dir's entries (names starting with '.' left out) that keep(dir/name, name)
 * accepts, sorted bytewise. SYN_ERR_IO "dir: cannot open the folder: <why><hint>"
 * (hint may be NULL). owned: free with syn__names_free. */
syn_status syn__dir_list(const char *dir, bool (*keep)(const char *path, const char *name), const char *hint,
                         char ***names, int *count);
void syn__names_free(char **names, int count); /* NULL: no-op */

/* Parses and validates a safetensors image held in memory, exactly as
 * syn_safetensors_open does a file; `name` is used in messages. The data is
 * copied (the caller keeps `data`). owned: free with syn_safetensors_close. */
syn_status syn__safetensors_parse(const void *data, size_t size, const char *name, syn_safetensors **out);

/* Parameter files (params_io.c), shared with checkpoints. */
/* Adds every parameter of p to w under its name (copied from its device). */
syn_status syn__params_add_all(syn_safetensors_writer *w, const syn_params *p, const char *path);
/* Checks that f's tensors fit p (see syn_params_load; tensors whose names
 * start with skip_prefix, if not NULL, are left out), without changing p. */
syn_status syn__params_check(const syn_safetensors *f, const char *path, const syn_params *p, bool strict,
                             const char *skip_prefix);
/* Copies the tensors that syn__params_check accepted into p. */
syn_status syn__params_apply(const syn_safetensors *f, const char *path, syn_params *p);

#endif
