/* CSV: the one tokenizer every CSV reader of the library shares (records,
 * fields, numbers: csv_internal.h), the header reader, and the data set
 * reader - a header row, numeric feature columns and one label column (class
 * names or integers, or a regression target), or chosen columns unlabelled.
 * Quoting follows RFC 4180 (a quoted field may hold the delimiter, "" and
 * line breaks); CRLF and a UTF-8 BOM are accepted. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "csv_internal.h"
#include "dataset.h"
#include "parse_mem.h"

/* Integer class labels at or above this are treated as names (mapped to
 * 0,1,2..): used as is they would ask for millions of output units. */
#define CSV_MAX_INT_LABEL (1 << 20)

/* realloc that records SYN_ERR_OOM. */
static syn_status grow(void **p, size_t bytes, const char *path) {
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q) return syn__error(SYN_ERR_OOM, "%s: cannot allocate %zu bytes", path, bytes);
    *p = q;
    return SYN_OK;
}

/* ---- the tokenizer ------------------------------------------------------------- */

syn_status syn__csv_open(syn__csv *r, FILE *f, const char *path, char delimiter) {
    memset(r, 0, sizeof *r);
    r->f = f;
    r->path = path;
    r->delim = delimiter ? delimiter : ',';
    if (r->delim == '"' || r->delim == '\n' || r->delim == '\r')
        return syn__error(SYN_ERR_ARG, "%s: the delimiter cannot be a quote or a line break", path);
    if (!r->f) {
        errno = 0;
        r->f = fopen(path, "rb");
        if (!r->f) return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    return SYN_OK;
}

void syn__csv_close(syn__csv *r) {
    if (r->f) fclose(r->f);
    free(r->line);
    free(r->rec);
    free(r->fld);
    memset(r, 0, sizeof *r);
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
static syn_status read_record(syn__csv *r, bool *eof) {
    *eof = false;
    r->rec_len = 0;
    for (;;) {
        errno = 0;
        ssize_t len = getline(&r->line, &r->line_cap, r->f);
        if (len < 0) {
            if (ferror(r->f)) return syn__error(SYN_ERR_IO, "%s: read error: %s", r->path, strerror(errno));
            if (r->rec_len > 0)
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: unterminated quoted field", r->path, r->rec_line);
            *eof = true;
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
static syn_status split_record(syn__csv *r) {
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

syn_status syn__csv_next(syn__csv *r, bool *eof) {
    SYN_TRY(read_record(r, eof));
    return *eof ? SYN_OK : split_record(r);
}

syn_status syn__csv_header(syn__csv *r, char ***names, int *count) {
    *names = NULL;
    *count = 0;
    bool eof;
    SYN_TRY(syn__csv_next(r, &eof));
    if (eof) return syn__error(SYN_ERR_FORMAT, "%s: empty file (a header row is required)", r->path);
    /* The fields point into the record buffer, which the next read reuses. */
    char **n = calloc((size_t)r->nf, sizeof *n);
    if (!n) return syn__error(SYN_ERR_OOM, "%s: cannot allocate the header", r->path);
    for (int c = 0; c < r->nf; c++)
        if (!(n[c] = strdup(r->fld[c]))) {
            syn_csv_header_free(n, c);
            return syn__error(SYN_ERR_OOM, "%s: cannot allocate the header", r->path);
        }
    *names = n;
    *count = r->nf;
    return SYN_OK;
}

syn_status syn__csv_find_column(const char *path, char *const *names, int count, const char *col,
                                const char *what, int *out) {
    for (int c = 0; c < count; c++)
        if (strcmp(names[c], col) == 0) {
            *out = c;
            return SYN_OK;
        }
    char *end;
    errno = 0;
    long v = strtol(col, &end, 10);
    if (end != col && *end == 0 && errno == 0 && v >= 0 && v < count) {
        *out = (int)v;
        return SYN_OK;
    }
    char list[256];
    size_t n = 0;
    list[0] = 0;
    for (int c = 0; c < count && n + 1 < sizeof list; c++) {
        int k = snprintf(list + n, sizeof list - n, "%s'%s'", c ? ", " : "", names[c]);
        if (k < 0) break;
        n += (size_t)k;
    }
    if (n >= sizeof list) memcpy(list + sizeof list - 4, "...", 4);
    return syn__error(SYN_ERR_ARG, "%s: no %s '%s': the header has %s, and it is not an index below %d", path, what,
                      col, list, count);
}

int syn__csv_parse_num(const char *s, double *v) {
    if (!*s) return 0;
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == 0;
}

syn_status syn__csv_float(const syn__csv *r, int k, const char *name, const char *what, float *out) {
    const char *f = r->fld[k];
    double v = 0;
    if (!*f)
        return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s' (field %d): empty field", r->path, r->rec_line, name,
                          k + 1);
    if (!syn__csv_parse_num(f, &v))
        return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s' (field %d): not a number: '%.40s'", r->path,
                          r->rec_line, name, k + 1, f);
    if (!isfinite(v))
        return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s' (field %d): non-finite %s '%.40s'", r->path,
                          r->rec_line, name, k + 1, what, f);
    /* A finite double can still overflow float (1e39). */
    if (!isfinite((float)v))
        return syn__error(SYN_ERR_FORMAT, "%s:%lld: column '%s' (field %d): %s '%.40s' is not a finite float32", r->path,
                          r->rec_line, name, k + 1, what, f);
    *out = (float)v;
    return SYN_OK;
}

/* ---- the header, public --------------------------------------------------------- */

void syn_csv_header_free(char **names, int count) {
    if (!names) return;
    for (int c = 0; c < count; c++) free(names[c]);
    free(names);
}

syn_status syn_csv_header_read(const char *path, char delimiter, char ***names, int *count) {
    if (!names || !count) return syn__error(SYN_ERR_ARG, "syn_csv_header_read: NULL output");
    *names = NULL;
    *count = 0;
    if (!path) return syn__error(SYN_ERR_ARG, "syn_csv_header_read: NULL path");
    syn__csv r;
    syn_status s = syn__csv_open(&r, NULL, path, delimiter);
    if (s == SYN_OK) s = syn__csv_header(&r, names, count);
    syn__csv_close(&r);
    return s;
}

/* ---- class labels ---------------------------------------------------------------- */

/* Class names, interned in order of first appearance. */
typedef struct {
    char **cls;
    int32_t *cls_int;     /* the integer value of a name, or -1 */
    int ncls, cls_cap;
    int32_t *slot;        /* open-addressing table of class ids, -1 empty */
    size_t nslot;
} class_table;

static void classes_free(class_table *t) {
    for (int i = 0; i < t->ncls; i++) free(t->cls[i]);
    free(t->cls);
    free(t->cls_int);
    free(t->slot);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The id of class name s, adding it (in order of first appearance) if new. */
static syn_status intern(class_table *r, const char *path, const char *s, int32_t *id) {
    if (2 * (size_t)(r->ncls + 1) > r->nslot) { /* keep the table at most half full */
        size_t n = r->nslot ? 2 * r->nslot : 64;
        int32_t *t = malloc(n * sizeof *t);
        if (!t) return syn__error(SYN_ERR_OOM, "%s: cannot allocate the class table", path);
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
        SYN_TRY(grow((void **)&r->cls, (size_t)cap * sizeof *r->cls, path));
        SYN_TRY(grow((void **)&r->cls_int, (size_t)cap * sizeof *r->cls_int, path));
        r->cls_cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return syn__error(SYN_ERR_OOM, "%s: cannot allocate a class name", path);
    double v;
    int integral = syn__csv_parse_num(s, &v) && v >= 0 && v < CSV_MAX_INT_LABEL && v == floor(v);
    r->cls[r->ncls] = copy;
    r->cls_int[r->ncls] = integral ? (int32_t)v : -1;
    *id = r->slot[i] = r->ncls++;
    return SYN_OK;
}

/* ---- the data set reader ---------------------------------------------------------- */

/* Which fields of a record become what: feature j is field src[j]; the label
 * (or target) is field lcol, -1 for none. */
typedef struct {
    int ncol;         /* fields per record (the header's) */
    int64_t dim;
    int *src;
    int lcol;
    bool regression;
} csv_layout;

/* Reads the data rows after the header into growing arrays. */
static syn_status read_rows(syn__csv *r, char **names, const csv_layout *L, class_table *ct, float **x, float **y,
                            int32_t **ids, int64_t *n_out) {
    int64_t dim = L->dim, n = 0, cap = 0;
    for (;;) {
        bool eof;
        SYN_TRY(syn__csv_next(r, &eof));
        if (eof) break;
        if (r->nf != L->ncol)
            return syn__error(SYN_ERR_FORMAT, "%s:%lld: %d fields, but the header has %d", r->path, r->rec_line,
                              r->nf, L->ncol);
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            if ((uint64_t)cap > SIZE_MAX / sizeof(float) / (uint64_t)dim)
                return syn__error(SYN_ERR_OOM, "%s: too many rows", r->path);
            SYN_TRY(grow((void **)x, (size_t)cap * (size_t)dim * sizeof(float), r->path));
            if (L->lcol >= 0 && L->regression) SYN_TRY(grow((void **)y, (size_t)cap * sizeof(float), r->path));
            else if (L->lcol >= 0) SYN_TRY(grow((void **)ids, (size_t)cap * sizeof(int32_t), r->path));
        }
        float *row = *x + n * dim;
        for (int64_t j = 0; j < dim; j++) SYN_TRY(syn__csv_float(r, L->src[j], names[L->src[j]], "value", &row[j]));
        if (L->lcol >= 0 && L->regression) {
            SYN_TRY(syn__csv_float(r, L->lcol, names[L->lcol], "target", &(*y)[n]));
        } else if (L->lcol >= 0) {
            const char *f = r->fld[L->lcol];
            if (!*f)
                return syn__error(SYN_ERR_FORMAT, "%s:%lld: empty label in column '%s' (field %d)", r->path,
                                  r->rec_line, names[L->lcol], L->lcol + 1);
            SYN_TRY(intern(ct, r->path, f, &(*ids)[n]));
        }
        n++;
    }
    *n_out = n;
    return SYN_OK;
}

/* What the reader is asked for: label and columns as the public calls take them. */
typedef struct {
    const syn_csv_opts *opts;
    const char *const *columns; /* NULL: every column but the label */
    int n_columns;
} csv_request;

/* The layout a request asks for: every column but the label, or the given
 * columns (each the first header column of its name not taken yet, else a
 * 0-based index as text) and no label. */
static syn_status plan(const char *path, char **names, int ncol, const csv_request *q, csv_layout *L) {
    const syn_csv_opts *opts = q->opts;
    L->ncol = ncol;
    L->regression = opts && opts->regression;
    if (q->columns) {
        if (q->n_columns < 1)
            return syn__error(SYN_ERR_ARG, "%s: %d columns asked for: need at least one", path, q->n_columns);
        L->dim = q->n_columns;
        L->lcol = -1;
        if (!(L->src = calloc((size_t)L->dim, sizeof *L->src)))
            return syn__error(SYN_ERR_OOM, "%s: cannot allocate the column map", path);
        for (int j = 0; j < q->n_columns; j++) {
            const char *want = q->columns[j];
            if (!want) return syn__error(SYN_ERR_ARG, "%s: column %d asked for is NULL", path, j);
            int c = 0;
            for (; c < ncol; c++) {
                bool taken = false;
                for (int i = 0; i < j && !taken; i++) taken = L->src[i] == c;
                if (!taken && strcmp(names[c], want) == 0) break;
            }
            if (c == ncol) SYN_TRY(syn__csv_find_column(path, names, ncol, want, "column", &c));
            L->src[j] = c;
        }
        return SYN_OK;
    }
    if (ncol < 2)
        return syn__error(SYN_ERR_FORMAT, "%s: the header has %d column: need a label and at least one feature", path,
                          ncol);
    L->lcol = ncol - 1;
    if (opts && opts->label) SYN_TRY(syn__csv_find_column(path, names, ncol, opts->label, "label column", &L->lcol));
    L->dim = ncol - 1;
    if (!(L->src = calloc((size_t)L->dim, sizeof *L->src)))
        return syn__error(SYN_ERR_OOM, "%s: cannot allocate the column map", path);
    for (int c = 0, j = 0; c < ncol; c++)
        if (c != L->lcol) L->src[j++] = c;
    return SYN_OK;
}

/* Everything after opening the file; the caller closes the reader. */
static syn_status load(syn__csv *r, const csv_request *q, syn_dataset **out) {
    char **names = NULL;
    int ncol = 0;
    SYN_TRY(syn__csv_header(r, &names, &ncol));
    csv_layout L = {0};
    class_table ct = {0};
    float *x = NULL, *y = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    syn_status s = plan(r->path, names, ncol, q, &L);
    if (s == SYN_OK) s = read_rows(r, names, &L, &ct, &x, &y, &ids, &n);
    if (s == SYN_OK && n == 0) s = syn__error(SYN_ERR_FORMAT, "%s: no data rows after the header", r->path);
    syn_dataset *ds = NULL;
    if (s == SYN_OK && (ds = calloc(1, sizeof *ds)) == NULL)
        s = syn__error(SYN_ERR_OOM, "%s: cannot allocate the dataset", r->path);
    syn_csv_header_free(names, ncol);
    free(L.src);
    if (s != SYN_OK) {
        free(x);
        free(y);
        free(ids);
        classes_free(&ct);
        return s;
    }
    ds->n = n;
    ds->dim = L.dim;
    ds->sample_shape = syn_shape1(ds->dim);
    ds->x = x;
    if (L.lcol >= 0 && L.regression) {
        ds->targets = y;
        ds->target_dim = 1;
    } else if (L.lcol >= 0) {
        /* Integer names (all of them) are the classes themselves; otherwise
         * the order of first appearance numbers them. */
        bool all_int = true;
        int maxl = 0;
        for (int c = 0; c < ct.ncls; c++) {
            if (ct.cls_int[c] < 0) all_int = false;
            else if (ct.cls_int[c] > maxl) maxl = ct.cls_int[c];
        }
        if (all_int)
            for (int64_t i = 0; i < n; i++) ids[i] = ct.cls_int[ids[i]];
        ds->labels = ids;
        ds->num_classes = all_int ? maxl + 1 : ct.ncls;
    }
    classes_free(&ct);
    *out = ds;
    return SYN_OK;
}

/* Reads the stream f (NULL: opens path; closed here either way) as `path`. */
static syn_status load_stream(FILE *f, const char *path, const csv_request *q, char delimiter, syn_dataset **out) {
    syn__csv r;
    syn_status s = syn__csv_open(&r, f, path, delimiter);
    if (s == SYN_OK) s = load(&r, q, out);
    syn__csv_close(&r);
    return s;
}

syn_status syn_dataset_load_csv(const char *path, const syn_csv_opts *opts, syn_dataset **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "CSV reader: NULL output");
    *out = NULL;
    if (!path) return syn__error(SYN_ERR_ARG, "CSV reader: NULL path");
    csv_request q = {opts, NULL, 0};
    return load_stream(NULL, path, &q, opts ? opts->delimiter : 0, out);
}

syn_status syn_dataset_load_csv_columns(const char *path, const char *const *columns, int n, char delimiter,
                                        syn_dataset **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "CSV reader: NULL output");
    *out = NULL;
    if (!path || !columns) return syn__error(SYN_ERR_ARG, "CSV reader: NULL %s", path ? "columns" : "path");
    csv_request q = {NULL, columns, n};
    return load_stream(NULL, path, &q, delimiter, out);
}

syn_status syn__dataset_load_csv_mem(const void *data, size_t size, const char *name, const syn_csv_opts *opts,
                                     syn_dataset **out) {
    static const char empty[1] = "";
    *out = NULL;
    errno = 0;
    /* fmemopen wants a non-NULL buffer; reading stops at `size`, not at a NUL. */
    FILE *f = fmemopen((void *)(size ? data : empty), size, "rb");
    if (!f) return syn__error(SYN_ERR_OOM, "%s: fmemopen: %s", name, strerror(errno));
    csv_request q = {opts, NULL, 0};
    return load_stream(f, name, &q, opts ? opts->delimiter : 0, out);
}
