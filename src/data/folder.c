/* Image folders: DIR/<class>/<image>.png, one subfolder per class, read into
 * a data set of (C, H, W) images in [0, 1] with their class labels. The
 * folders are listed with POSIX dirent, the images decoded by libpng
 * (syn_png_read). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/internal.h"
#include "io/io_internal.h"
#include "dataset.h"

#define MAX_PATH 4096

/* A folder's sorted entries (syn__dir_list). */
typedef struct {
    char **v;
    int n;
} names;

static bool keep_dir(const char *path, const char *name) {
    (void)name;
    return syn__is_dir(path);
}

static bool keep_png(const char *path, const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0 && !syn__is_dir(path);
}

static syn_status list_dir(const char *dir, bool dirs, names *out) {
    return syn__dir_list(dir, dirs ? keep_dir : keep_png, NULL, &out->v, &out->n);
}

static void names_free(names *l) {
    syn__names_free(l->v, l->n);
    l->v = NULL;
    l->n = 0;
}

syn_status syn_image_folder_classes(const char *dir, char ***out, int *count) {
    if (!dir || !out || !count) return syn__error(SYN_ERR_ARG, "syn_image_folder_classes: NULL argument");
    *out = NULL;
    *count = 0;
    names l;
    SYN_TRY(list_dir(dir, true, &l));
    if (l.n == 0) {
        names_free(&l);
        return syn__error(SYN_ERR_FORMAT, "%s: no class subfolders (an image folder holds DIR/<class>/<image>.png)",
                          dir);
    }
    *out = l.v;
    *count = l.n;
    return SYN_OK;
}

void syn_image_folder_classes_free(char **names_, int count) { syn__names_free(names_, count); }

/* One image (c, h, w) into dst as `channels` channels: grey from RGB by the
 * ITU-R BT.601 luma weights, RGB from grey by repeating it. */
static void put_image(float *dst, int channels, const float *img, int c, int64_t hw) {
    if (c == channels) {
        memcpy(dst, img, (size_t)(c * hw) * sizeof *dst);
    } else if (channels == 1) {
        for (int64_t i = 0; i < hw; i++) dst[i] = 0.299f * img[i] + 0.587f * img[hw + i] + 0.114f * img[2 * hw + i];
    } else {
        for (int k = 0; k < 3; k++) memcpy(dst + k * hw, img, (size_t)hw * sizeof *dst);
    }
}

/* The files of every class folder (files[k] for class k; a class given in
 * `want` without a folder has none), and their total. */
static syn_status list_files(const char *dir, const names *classes, const char *const *want, int n_want,
                             names *files, int64_t *total) {
    char path[MAX_PATH];
    *total = 0;
    const int nc = want ? n_want : classes->n;
    if (want) /* every subfolder must be one of the classes asked for */
        for (int i = 0; i < classes->n; i++) {
            int k = 0;
            while (k < n_want && strcmp(want[k], classes->v[i]) != 0) k++;
            if (k == n_want)
                return syn__error(SYN_ERR_FORMAT, "%s/%s: a class folder, but '%s' is not among the %d classes given",
                                  dir, classes->v[i], classes->v[i], n_want);
        }
    for (int k = 0; k < nc; k++) {
        const char *name = want ? want[k] : classes->v[k];
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
            return syn__error(SYN_ERR_ARG, "%s/%s: path too long", dir, name);
        if (want && !syn__is_dir(path)) continue;
        SYN_TRY(list_dir(path, false, &files[k]));
        if (files[k].n == 0 && !want) return syn__error(SYN_ERR_FORMAT, "%s: no .png files in this class folder", path);
        *total += files[k].n;
    }
    if (*total == 0) return syn__error(SYN_ERR_FORMAT, "%s: no .png files in its class folders", dir);
    return SYN_OK;
}

syn_status syn_dataset_load_image_folder(const char *dir, int channels, const char *const *classes, int n_classes,
                                         syn_dataset **out) {
    if (!dir || !out) return syn__error(SYN_ERR_ARG, "syn_dataset_load_image_folder: NULL argument");
    *out = NULL;
    if (channels != 0 && channels != 1 && channels != 3)
        return syn__error(SYN_ERR_ARG, "%s: channels %d (0: as the first image, 1: grey, 3: RGB)", dir, channels);
    if (classes && n_classes < 1) return syn__error(SYN_ERR_ARG, "%s: %d classes given", dir, n_classes);
    for (int k = 0; classes && k < n_classes; k++)
        if (!classes[k]) return syn__error(SYN_ERR_ARG, "%s: class name %d is NULL", dir, k);
    names subs;
    SYN_TRY(list_dir(dir, true, &subs));
    if (subs.n == 0 && !classes) {
        names_free(&subs);
        return syn__error(SYN_ERR_FORMAT, "%s: no class subfolders (an image folder holds DIR/<class>/<image>.png)",
                          dir);
    }
    const int nc = classes ? n_classes : subs.n;
    names *files = calloc((size_t)nc, sizeof *files);
    syn_dataset *ds = NULL;
    float *img = NULL;
    int64_t total = 0, row = 0;
    syn_status s = files ? list_files(dir, &subs, classes, n_classes, files, &total)
                         : syn__error(SYN_ERR_OOM, "%s: %d class lists", dir, nc);
    char path[MAX_PATH], first[MAX_PATH] = "";
    int C = channels, H = 0, W = 0;
    for (int k = 0; s == SYN_OK && k < nc; k++) {
        const char *cname = classes ? classes[k] : subs.v[k];
        for (int i = 0; s == SYN_OK && i < files[k].n; i++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, cname, files[k].v[i]);
            int c, h, w;
            if ((s = syn_png_read(path, &img, &c, &h, &w)) != SYN_OK) break;
            if (!ds) { /* the first image sets the size (and the channels, if not given) */
                if (!C) C = c;
                H = h, W = w;
                snprintf(first, sizeof first, "%s", path);
                if ((s = syn__dataset_alloc(total, (int64_t)C * H * W, true, 0, path, &ds)) != SYN_OK) break;
                ds->sample_shape = syn_shape3(C, H, W);
                ds->num_classes = nc;
            } else if (h != H || w != W) {
                s = syn__error(SYN_ERR_FORMAT,
                               "%s: %dx%d pixels, but %s (the first image) has %dx%d: images are not resized",
                               path, w, h, first, W, H);
                break;
            }
            put_image(ds->x + row * ds->dim, C, img, c, (int64_t)H * W);
            ds->labels[row++] = k;
            free(img);
            img = NULL;
        }
    }
    free(img);
    for (int k = 0; files && k < nc; k++) names_free(&files[k]);
    free(files);
    names_free(&subs);
    if (s != SYN_OK) {
        syn_dataset_free(ds);
        return s;
    }
    *out = ds;
    return SYN_OK;
}
