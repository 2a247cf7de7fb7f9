/* The CSV reader: a header row, numeric feature columns and one label column
 * (class names or integers, or a regression target). Quoting follows RFC 4180
 * (a quoted field may hold the delimiter, "" and line breaks); CRLF is accepted. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "dataset.h"
#include "parse_mem.h"

/* Integer class labels at or above this are treated as names (mapped to
 * 0,1,2..): used as is they would ask for millions of output units. */
#define CSV_MAX_INT_LABEL (1 << 20)

typedef struct {
    FILE *f;
    const char *path;
    char delim;
    char *line;           /* getline's buffer */
    size_t line_cap;
    char *rec;            /* one record: a line, or several joined inside quotes */
    size_t rec_len, rec_cap;
    long long lineno;     /* physical lines read so far */
    long long rec_line;   /* the line the current record starts on */
    char **fld;           /* fields of the current record, pointing into rec */
    int nf, fld_cap;
    /* class names, interned in order of first appearance */
    char **cls;
    int32_t *cls_int;     /* the integer value of a name, or -1 */
    int ncls, cls_cap;
    int32_t *slot;        /* open-addressing table of class ids, -1 empty */
    size_t nslot;
} csv_reader;

static void csv_close(csv_reader *r) {
    if (r->f) fclose(r->f);
    free(r->line);
    free(r->rec);
    free(r->fld);
    for (int i = 0; i < r->ncls; i++) free(r->cls[i]);
    free(r->cls);
    free(r->cls_int);
    free(r->slot);
}

/* realloc that records SYN_ERR_OOM. */
static syn_status grow(void **p, size_t bytes, const char *path) {
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q) return syn__error(SYN_ERR_OOM, "%s: cannot allocate %zu bytes", path, bytes);
    *p = q;
    return SYN_OK;
}

/* 1 if rec ends inside a quoted field (the record continues on the next line). */
static int open_quote(const char *s, char delim) {
    int at_start = 1, quoted = 0;
    for (; *s; s++) {
        if (quoted) {
            if (*s == '"') {
                if (s[1] == '"') s++;
                else quoted = 0;
            }
        } else if (*s == delim) {
            at_start = 1;
        } else if (*s == '"' && at_start) {
            quoted = 1;
        } else if (*s != ' ' && *s != '\t') {
            at_start = 0;
        }
    }
    return quoted;
}

/* Reads the next non-blank record into r->rec. *eof is set at end of file. */
static syn_status read_record(csv_reader *r, int *eof) {
    *eof = 0;
    r->rec_len = 0;
    for (;;) {
        errno = 0;
        ssize_t len = getline(&r->line, &r->line_cap, r->f);
        if (len < 0) {
            if (ferror(r->f)) return syn__error(SYN_ERR_IO, "%s: read error: %s", r->path, strerror(errno));
            if (r->rec_len > 0)
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: unterminated quoted field", r->path, r->rec_line);
            *eof = 1;
            return SYN_OK;
        }
        r->lineno++;
        if (len > 0 && r->line[len - 1] == '\n') len--;
        if (len > 0 && r->line[len - 1] == '\r') len--;
        /* A UTF-8 byte order mark, as spreadsheet exports write: dropped here,
         * before open_quote, so that it and split_record see the same text. */
        const char *line = r->line;
        if (r->lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3, len -= 3;
        if (r->rec_len == 0) {
            if (len == 0) continue; /* blank lines between records carry nothing */
            r->rec_line = r->lineno;
        }
        /* +2: the '\n' that joins a continued line, and the NUL. */
        size_t need = r->rec_len + (size_t)len + 2;
        if (need > r->rec_cap) {
            size_t cap = r->rec_cap ? r->rec_cap : 256;
            while (cap < need) cap *= 2;
            SYN_TRY(grow((void **)&r->rec, cap, r->path));
            r->rec_cap = cap;
        }
        if (r->rec_len > 0) r->rec[r->rec_len++] = '\n';
        memcpy(r->rec + r->rec_len, line, (size_t)len);
        r->rec_len += (size_t)len;
        r->rec[r->rec_len] = 0;
        if (!open_quote(r->rec, r->delim)) return SYN_OK;
    }
}

static int is_blank(char c, char delim) { return (c == ' ' || c == '\t') && c != delim; }

/* Splits r->rec in place into NUL-terminated fields: unquoted fields are
 * trimmed of surrounding blanks, quoted ones keep their content exactly. */
static syn_status split_record(csv_reader *r) {
    char *p = r->rec;
    r->nf = 0;
    for (;;) {
        if (r->nf == r->fld_cap) {
            int cap = r->fld_cap ? 2 * r->fld_cap : 16;
            SYN_TRY(grow((void **)&r->fld, (size_t)cap * sizeof *r->fld, r->path));
            r->fld_cap = cap;
        }
        while (is_blank(*p, r->delim)) p++;
        char *start = p, *end;
        if (*p == '"') {
            char *out = p++;
            start = out;
            for (;;) {
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++; /* read_record guarantees a closing quote */
                }
            }
            end = out;
            while (is_blank(*p, r->delim)) p++;
            if (*p && *p != r->delim)
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: unexpected text after the closing quote of field %d",
                                  r->path, r->rec_line, r->nf + 1);
        } else {
            while (*p && *p != r->delim) p++;
            end = p;
            while (end > start && is_blank(end[-1], r->delim)) end--;
        }
        r->fld[r->nf++] = start;
        char c = *p;
        *end = 0; /* end <= p: the delimiter was already read into c */
        if (!c) return SYN_OK;
        p++;
    }
}

/* Parses a whole field as a double; 0 if it is empty or not a number. */
static int parse_num(const char *s, double *v) {
    if (!*s) return 0;
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == 0;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The id of class name s, adding it (in order of first appearance) if new. */
static syn_status intern(csv_reader *r, const char *s, int32_t *id) {
    if (2 * (size_t)(r->ncls + 1) > r->nslot) { /* keep the table at most half full */
        size_t n = r->nslot ? 2 * r->nslot : 64;
        int32_t *t = malloc(n * sizeof *t);
        if (!t) return syn__error(SYN_ERR_OOM, "%s: cannot allocate the class table", r->path);
        for (size_t i = 0; i < n; i++) t[i] = -1;
        for (int c = 0; c < r->ncls; c++) {
            size_t i = fnv1a(r->cls[c]) & (n - 1);
            while (t[i] >= 0) i = (i + 1) & (n - 1);
            t[i] = c;
        }
        free(r->slot);
        r->slot = t;
        r->nslot = n;
    }
    size_t i = fnv1a(s) & (r->nslot - 1);
    for (; r->slot[i] >= 0; i = (i + 1) & (r->nslot - 1))
        if (strcmp(r->cls[r->slot[i]], s) == 0) {
            *id = r->slot[i];
            return SYN_OK;
        }
    if (r->ncls == r->cls_cap) {
        int cap = r->cls_cap ? 2 * r->cls_cap : 16;
        SYN_TRY(grow((void **)&r->cls, (size_t)cap * sizeof *r->cls, r->path));
        SYN_TRY(grow((void **)&r->cls_int, (size_t)cap * sizeof *r->cls_int, r->path));
        r->cls_cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return syn__error(SYN_ERR_OOM, "%s: cannot allocate a class name", r->path);
    double v;
    int integral = parse_num(s, &v) && v >= 0 && v < CSV_MAX_INT_LABEL && v == floor(v);
    r->cls[r->ncls] = copy;
    r->cls_int[r->ncls] = integral ? (int32_t)v : -1;
    *id = r->slot[i] = r->ncls++;
    return SYN_OK;
}

/* The label column: a header name first, else a 0-based index as text. */
static syn_status find_label(csv_reader *r, char **names, int ncol, const char *label, int *col) {
    for (int c = 0; c < ncol; c++)
        if (strcmp(names[c], label) == 0) {
            *col = c;
            return SYN_OK;
        }
    char *end;
    errno = 0;
    long v = strtol(label, &end, 10);
    if (end != label && *end == 0 && errno == 0 && v >= 0 && v < ncol) {
        *col = (int)v;
        return SYN_OK;
    }
    return syn__error(SYN_ERR_ARG, "%s: no label column '%s': no header name matches and it is not an index below %d",
                      r->path, label, ncol);
}

/* Reads the data rows after the header into growing arrays. */
static syn_status read_rows(csv_reader *r, char **names, int ncol, int lcol, bool regression, float **x,
                            float **y, int32_t **ids, int64_t *n_out) {
    int64_t dim = ncol - 1, n = 0, cap = 0;
    for (;;) {
        int eof;
        SYN_TRY(read_record(r, &eof));
        if (eof) break;
        SYN_TRY(split_record(r));
        if (r->nf != ncol)
            return syn__error(SYN_ERR_FORMAT, "%s:%lld: %d fields, but the header has %d", r->path, r->rec_line,
                              r->nf, ncol);
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            if ((uint64_t)cap > SIZE_MAX / sizeof(float) / (uint64_t)dim)
                return syn__error(SYN_ERR_OOM, "%s: too many rows", r->path);
            SYN_TRY(grow((void **)x, (size_t)cap * (size_t)dim * sizeof(float), r->path));
            if (regression) SYN_TRY(grow((void **)y, (size_t)cap * sizeof(float), r->path));
            else SYN_TRY(grow((void **)ids, (size_t)cap * sizeof(int32_t), r->path));
        }
        float *row = *x + n * dim;
        for (int c = 0, j = 0; c < ncol; c++) {
            const char *f = r->fld[c];
            double v = 0;
            if (c == lcol && !regression) {
                if (!*f) return syn__error(SYN_ERR_FORMAT, "%s:%lld: empty label in column '%s'", r->path,
                                           r->rec_line, names[c]);
                SYN_TRY(intern(r, f, &(*ids)[n]));
                continue;
            }
            const char *what = c == lcol ? "target" : "value";
            if (!*f)
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s': empty field", r->path, r->rec_line, names[c]);
            if (!parse_num(f, &v))
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s': not a number: '%.40s'", r->path,
                                  r->rec_line, names[c], f);
            if (!isfinite(v))
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s': non-finite %s '%.40s'", r->path,
                                  r->rec_line, names[c], what, f);
            /* A finite double can still overflow float (1e39). */
            if (!isfinite((float)v))
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s': %s '%.40s' overflows float32", r->path,
                                  r->rec_line, names[c], what, f);
            if (c == lcol) (*y)[n] = (float)v;
            else row[j++] = (float)v;
        }
        n++;
    }
    *n_out = n;
    return SYN_OK;
}

/* Everything after opening the file; the caller closes the reader. */
static syn_status load(csv_reader *r, const char *label, bool regression, syn_dataset **out) {
    int eof;
    SYN_TRY(read_record(r, &eof));
    if (eof) return syn__error(SYN_ERR_FORMAT, "%s: empty file (a header row is required)", r->path);
    SYN_TRY(split_record(r));
    int ncol = r->nf;
    if (ncol < 2)
        return syn__error(SYN_ERR_FORMAT, "%s: the header has %d column: need a label and at least one feature",
                          r->path, ncol);
    /* The header fields point into the record buffer, which the next read reuses. */
    char **names = calloc((size_t)ncol, sizeof *names);
    if (!names) return syn__error(SYN_ERR_OOM, "%s: cannot allocate the header", r->path);
    syn_status s = SYN_OK;
    for (int c = 0; c < ncol && s == SYN_OK; c++)
        if (!(names[c] = strdup(r->fld[c]))) s = syn__error(SYN_ERR_OOM, "%s: cannot allocate the header", r->path);
    int lcol = ncol - 1;
    if (s == SYN_OK && label) s = find_label(r, names, ncol, label, &lcol);

    float *x = NULL, *y = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    if (s == SYN_OK) s = read_rows(r, names, ncol, lcol, regression, &x, &y, &ids, &n);
    if (s == SYN_OK && n == 0) s = syn__error(SYN_ERR_FORMAT, "%s: no data rows after the header", r->path);
    syn_dataset *ds = NULL;
    if (s == SYN_OK && (ds = calloc(1, sizeof *ds)) == NULL)
        s = syn__error(SYN_ERR_OOM, "%s: cannot allocate the dataset", r->path);
    for (int c = 0; c < ncol; c++) free(names[c]);
    free(names);
    if (s != SYN_OK) {
        free(x);
        free(y);
        free(ids);
        return s;
    }
    ds->n = n;
    ds->dim = ncol - 1;
    ds->sample_shape = syn_shape1(ds->dim);
    ds->x = x;
    if (regression) {
        ds->targets = y;
        ds->target_dim = 1;
    } else {
        /* Integer names (all of them) are the classes themselves; otherwise
         * the order of first appearance numbers them. */
        bool all_int = true;
        int maxl = 0;
        for (int c = 0; c < r->ncls; c++) {
            if (r->cls_int[c] < 0) all_int = false;
            else if (r->cls_int[c] > maxl) maxl = r->cls_int[c];
        }
        if (all_int)
            for (int64_t i = 0; i < n; i++) ids[i] = r->cls_int[ids[i]];
        ds->labels = ids;
        ds->num_classes = all_int ? maxl + 1 : r->ncls;
    }
    *out = ds;
    return SYN_OK;
}

/* Checks the options, reads the opened stream f (closed here) as `path`. */
static syn_status load_stream(FILE *f, const char *path, const syn_csv_opts *opts, syn_dataset **out) {
    csv_reader r = {0};
    r.f = f;
    r.path = path;
    r.delim = opts && opts->delimiter ? opts->delimiter : ',';
    syn_status s = r.delim == '"' || r.delim == '\n' || r.delim == '\r'
                       ? syn__error(SYN_ERR_ARG, "%s: the delimiter cannot be a quote or a line break", path)
                       : load(&r, opts ? opts->label : NULL, opts && opts->regression, out);
    csv_close(&r);
    return s;
}

syn_status syn_dataset_load_csv(const char *path, const syn_csv_opts *opts, syn_dataset **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "CSV reader: NULL output");
    *out = NULL;
    if (!path) return syn__error(SYN_ERR_ARG, "CSV reader: NULL path");
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return load_stream(f, path, opts, out);
}

syn_status syn__dataset_load_csv_mem(const void *data, size_t size, const char *name, const syn_csv_opts *opts,
                                     syn_dataset **out) {
    static const char empty[1] = "";
    *out = NULL;
    errno = 0;
    /* fmemopen wants a non-NULL buffer; reading stops at `size`, not at a NUL. */
    FILE *f = fmemopen((void *)(size ? data : empty), size, "rb");
    if (!f) return syn__error(SYN_ERR_OOM, "%s: fmemopen: %s", name, strerror(errno));
    return load_stream(f, name, opts, out);
}
