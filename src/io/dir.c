/* Folders: whether a path is one, and a folder's entries sorted bytewise,
 * for the readers that take a folder (image folders, the fortunes, CIFAR-10's
 * directory form). POSIX dirent and stat. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "io_internal.h"

bool syn__is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void syn__names_free(char **names, int count) {
    for (int i = 0; names && i < count; i++) free(names[i]);
    free(names);
}

static int by_bytes(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

syn_status syn__dir_list(const char *dir, bool (*keep)(const char *path, const char *name), const char *hint,
                         char ***names, int *count) {
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return syn__error(SYN_ERR_IO, "%s: cannot open the folder: %s%s", dir, strerror(errno), hint ? hint : "");
    char **v = NULL, path[4096];
    int n = 0, cap = 0;
    syn_status s = SYN_OK;
    for (struct dirent *e; s == SYN_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            s = syn__error(SYN_ERR_ARG, "%s/%s: path too long", dir, e->d_name);
            break;
        }
        if (!keep(path, e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                s = syn__error(SYN_ERR_OOM, "%s: a list of %d names", dir, cap);
                break;
            }
            v = nv;
        }
        if (!(v[n] = strdup(e->d_name))) s = syn__error(SYN_ERR_OOM, "%s: a name", dir);
        else n++;
    }
    closedir(d);
    if (s != SYN_OK) {
        syn__names_free(v, n);
        return s;
    }
    if (n) qsort(v, (size_t)n, sizeof *v, by_bytes);
    *names = v;
    *count = n;
    return SYN_OK;
}
