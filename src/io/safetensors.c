/* safetensors: the reader (every check HuggingFace's reference reader makes,
 * each failure a SYN_ERR_FORMAT naming the file and the fault) and the atomic
 * writer. The header is JSON, read and written with libjansson; tensor data is
 * copied into 64-byte-aligned memory, each tensor at a 16-byte boundary. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "io_internal.h"

#define ST_MAX_HEADER 100000000ull /* the reference's MAX_HEADER_SIZE */
#define ST_ALIGN 16

typedef struct {
    const char *name; /* borrowed from the JSON root */
    syn_dtype dt;
    syn_shape shape;
    uint64_t begin, end; /* offsets in the data area */
    size_t bytes;
    void *data;          /* into blob */
    int order;           /* position in the header, to break ties */
} st_entry;

struct syn_safetensors {
    json_t *root;        /* owns the names and the metadata strings */
    json_t *meta;        /* borrowed from root, or NULL */
    st_entry *e;         /* sorted by offset: "file order" */
    int n;
    void *blob;
};

static const struct {
    const char *name;
    syn_dtype dt;
} dtype_names[] = {{"F32", SYN_F32}, {"F16", SYN_F16}, {"BF16", SYN_BF16},
                   {"I32", SYN_I32}, {"I64", SYN_I64}, {"U8", SYN_U8}};

static const char *st_dtype_name(syn_dtype dt) {
    for (size_t k = 0; k < sizeof dtype_names / sizeof *dtype_names; k++)
        if (dtype_names[k].dt == dt) return dtype_names[k].name;
    return NULL;
}

/* ---- reading ---------------------------------------------------------------- */

/* Where the bytes come from: a file or a memory image. */
typedef struct {
    const char *name;
    uint64_t size;
    FILE *f;
    const unsigned char *mem;
} source;

static syn_status src_read(const source *s, uint64_t off, void *dst, size_t n) {
    if (n == 0) return SYN_OK;
    if (s->mem) {
        memcpy(dst, s->mem + off, n);
        return SYN_OK;
    }
    if (fseeko(s->f, (off_t)off, SEEK_SET) != 0)
        return syn__error(SYN_ERR_IO, "%s: seek to byte %llu failed: %s", s->name, (unsigned long long)off, strerror(errno));
    if (fread(dst, 1, n, s->f) != n) {
        if (ferror(s->f))
            return syn__error(SYN_ERR_IO, "%s: read of %zu bytes at %llu failed: %s", s->name, n,
                              (unsigned long long)off, strerror(errno));
        return syn__error(SYN_ERR_FORMAT, "%s: file shrank while being read (%zu bytes at %llu)", s->name, n,
                          (unsigned long long)off);
    }
    return SYN_OK;
}

void syn_safetensors_close(syn_safetensors *f) {
    if (!f) return;
    free(f->e);
    free(f->blob);
    if (f->root) json_decref(f->root);
    free(f);
}

static const char *shape_text(const syn_shape *s, char *buf, size_t size) { return syn_shape_str(s, buf, size); }

/* A JSON integer in [0, 2^63). */
static bool json_uint(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* One tensor's entry: exactly dtype, shape and data_offsets, of the right types. */
static syn_status parse_entry(const char *file, const char *name, json_t *v, st_entry *e) {
    if (!json_is_object(v))
        return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': the entry is not a JSON object", file, name);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': unexpected field '%s' (only dtype, shape, data_offsets)",
                              file, name, k);
    }
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; i++)
        if (!json_object_get(v, fields[i]))
            return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': missing field '%s'", file, name, fields[i]);

    json_t *dt = json_object_get(v, "dtype");
    if (!json_is_string(dt)) return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", file, name);
    const char *dts = json_string_value(dt);
    size_t k2;
    for (k2 = 0; k2 < sizeof dtype_names / sizeof *dtype_names; k2++)
        if (strcmp(dts, dtype_names[k2].name) == 0) break;
    if (k2 == sizeof dtype_names / sizeof *dtype_names)
        return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': unsupported dtype '%s' (F32, F16, BF16, I32, I64, U8)", file,
                          name, dts);
    e->dt = dtype_names[k2].dt;

    json_t *sh = json_object_get(v, "shape");
    if (!json_is_array(sh)) return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': shape is not an array", file, name);
    size_t nd = json_array_size(sh);
    if (nd > SYN_MAX_DIMS)
        return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': %zu dims (at most %d)", file, name, nd, SYN_MAX_DIMS);
    e->shape.ndim = (int)nd;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(sh, i);
        uint64_t u;
        if (!json_uint(d, &u))
            return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': shape dim %zu is %s", file, name, i,
                              json_is_integer(d) ? "negative" : "not an integer");
        e->shape.dim[i] = (int64_t)u;
    }

    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2)
        return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': data_offsets is not an array of two integers", file, name);
    if (!json_uint(json_array_get(off, 0), &e->begin) || !json_uint(json_array_get(off, 1), &e->end))
        return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': data_offsets are not non-negative integers", file, name);
    if (e->end < e->begin)
        return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", file, name,
                          (unsigned long long)e->begin, (unsigned long long)e->end);

    /* numel * dtype size, with overflow checks */
    uint64_t bytes = syn_dtype_size(e->dt);
    bool overflow = false;
    for (int i = 0; i < e->shape.ndim; i++) {
        uint64_t d = (uint64_t)e->shape.dim[i];
        if (d != 0 && bytes > UINT64_MAX / d) overflow = true;
        else bytes *= d;
    }
    char sb[128];
    /* A zero dim makes the product 0 whatever overflowed before it. */
    for (int i = 0; i < e->shape.ndim; i++)
        if (e->shape.dim[i] == 0) overflow = false, bytes = 0;
    if (overflow || bytes > SIZE_MAX)
        return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': shape %s of %s overflows the byte count", file, name,
                          shape_text(&e->shape, sb, sizeof sb), dts);
    if (bytes != e->end - e->begin)
        return syn__error(SYN_ERR_FORMAT,
                          "%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
                          file, name, shape_text(&e->shape, sb, sizeof sb), dts, (unsigned long long)bytes,
                          (unsigned long long)e->begin, (unsigned long long)e->end,
                          (unsigned long long)(e->end - e->begin));
    e->bytes = (size_t)bytes;
    e->name = name;
    return SYN_OK;
}

static int by_offset(const void *pa, const void *pb) {
    const st_entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

/* Everything after the JSON: metadata, entries, their layout. */
static syn_status parse_header(const char *file, syn_safetensors *f, uint64_t data_len) {
    json_t *root = f->root;
    const char *k;
    json_t *v;
    size_t n = json_object_size(root);
    if (n > (size_t)INT32_MAX) return syn__error(SYN_ERR_FORMAT, "%s: too many header entries", file);
    f->e = calloc(n ? n : 1, sizeof *f->e);
    if (!f->e) return syn__error(SYN_ERR_OOM, "%s: out of memory for %zu header entries", file, n);
    json_object_foreach(root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            if (!json_is_object(v)) return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ is not a JSON object", file);
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv))
                    return syn__error(SYN_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", file, mk);
            }
            f->meta = v;
            continue;
        }
        st_entry *e = &f->e[f->n];
        SYN_TRY(parse_entry(file, k, v, e));
        e->order = f->n++;
        if (e->end > data_len)
            return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run past the data area (%llu bytes)",
                              file, k, (unsigned long long)e->begin, (unsigned long long)e->end,
                              (unsigned long long)data_len);
    }
    qsort(f->e, (size_t)f->n, sizeof *f->e, by_offset);
    /* Contiguous from 0 to the end of the data: no hole, no overlap. */
    uint64_t at = 0;
    const st_entry *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->e[i];
        if (e->begin < at)
            return syn__error(SYN_ERR_FORMAT, "%s: tensor '%s' (data_offsets [%llu, %llu]) overlaps tensor '%s' ([%llu, %llu])",
                              file, e->name, (unsigned long long)e->begin, (unsigned long long)e->end, prev->name,
                              (unsigned long long)prev->begin, (unsigned long long)prev->end);
        if (e->begin > at)
            return syn__error(SYN_ERR_FORMAT, "%s: hole in the data: bytes [%llu, %llu) before tensor '%s' belong to no tensor",
                              file, (unsigned long long)at, (unsigned long long)e->begin, e->name);
        at = e->end;
        prev = e;
    }
    if (at != data_len)
        return syn__error(SYN_ERR_FORMAT, "%s: %llu trailing bytes after the last tensor (tensors end at %llu, data is %llu bytes)",
                          file, (unsigned long long)(data_len - at), (unsigned long long)at,
                          (unsigned long long)data_len);
    return SYN_OK;
}

static syn_status parse(const source *src, syn_safetensors **out) {
    const char *file = src->name;
    *out = NULL;
    unsigned char len8[8];
    if (src->size < 8)
        return syn__error(SYN_ERR_FORMAT, "%s: truncated: %llu bytes, too short for the 8-byte header length", file,
                          (unsigned long long)src->size);
    SYN_TRY(src_read(src, 0, len8, 8));
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | len8[i];
    if (hn > ST_MAX_HEADER)
        return syn__error(SYN_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes", file,
                          (unsigned long long)hn, ST_MAX_HEADER);
    if (hn > src->size - 8)
        return syn__error(SYN_ERR_FORMAT, "%s: truncated header: header length %llu runs past the end of the file (%llu bytes)",
                          file, (unsigned long long)hn, (unsigned long long)src->size);
    syn_safetensors *f = calloc(1, sizeof *f);
    char *hdr = malloc(hn ? hn : 1);
    if (!f || !hdr) {
        free(f);
        free(hdr);
        return syn__error(SYN_ERR_OOM, "%s: out of memory for a %llu-byte header", file, (unsigned long long)hn);
    }
    syn_status s = src_read(src, 8, hdr, (size_t)hn);
    if (s == SYN_OK) {
        json_error_t je;
        f->root = json_loadb(hdr, (size_t)hn, JSON_REJECT_DUPLICATES, &je);
        if (!f->root && json_error_code(&je) == json_error_out_of_memory)
            s = syn__error(SYN_ERR_OOM, "%s: out of memory reading the %llu-byte header", file, (unsigned long long)hn);
        else if (!f->root)
            s = syn__error(SYN_ERR_FORMAT, "%s: header is not valid JSON: %s (at byte %d of the header)", file, je.text,
                           je.position);
        else if (!json_is_object(f->root))
            s = syn__error(SYN_ERR_FORMAT, "%s: header is not a JSON object", file);
    }
    free(hdr);
    const uint64_t data_at = 8 + hn, data_len = src->size - data_at;
    if (s == SYN_OK) s = parse_header(file, f, data_len);
    /* Each tensor at a 16-byte boundary of one 64-byte-aligned block. */
    size_t total = 0;
    for (int i = 0; s == SYN_OK && i < f->n; i++) total += (f->e[i].bytes + ST_ALIGN - 1) & ~(size_t)(ST_ALIGN - 1);
    if (s == SYN_OK && posix_memalign(&f->blob, 64, total ? total : 64) != 0) {
        f->blob = NULL;
        s = syn__error(SYN_ERR_OOM, "%s: out of memory for %zu bytes of tensor data", file, total);
    }
    size_t at = 0;
    for (int i = 0; s == SYN_OK && i < f->n; i++) {
        st_entry *e = &f->e[i];
        e->data = (unsigned char *)f->blob + at;
        s = src_read(src, data_at + e->begin, e->data, e->bytes);
        at += (e->bytes + ST_ALIGN - 1) & ~(size_t)(ST_ALIGN - 1);
    }
    if (s != SYN_OK) {
        syn_safetensors_close(f);
        return s;
    }
    *out = f;
    return SYN_OK;
}

syn_status syn__safetensors_parse(const void *data, size_t size, const char *name, syn_safetensors **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "safetensors parse: out is NULL");
    *out = NULL;
    if (!data && size) return syn__error(SYN_ERR_ARG, "safetensors parse: NULL data");
    source src = {name ? name : "(memory)", size, NULL, data};
    return parse(&src, out);
}

syn_status syn_safetensors_open(const char *path, syn_safetensors **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_safetensors_open: out is NULL");
    *out = NULL;
    if (!path) return syn__error(SYN_ERR_ARG, "syn_safetensors_open: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (!fp) return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    syn_status s = SYN_OK;
    if (fstat(fileno(fp), &st) != 0) s = syn__error(SYN_ERR_IO, "%s: stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) s = syn__error(SYN_ERR_IO, "%s: not a regular file", path);
    if (s == SYN_OK) {
        source src = {path, (uint64_t)st.st_size, fp, NULL};
        s = parse(&src, out);
    }
    fclose(fp);
    return s;
}

int syn_safetensors_count(const syn_safetensors *f) { return f ? f->n : 0; }

static void fill_out(const st_entry *e, const char **name, syn_dtype *dt, syn_shape *shape, const void **data,
                     size_t *bytes) {
    if (name) *name = e->name;
    if (dt) *dt = e->dt;
    if (shape) *shape = e->shape;
    if (data) *data = e->data;
    if (bytes) *bytes = e->bytes;
}

syn_status syn_safetensors_get(const syn_safetensors *f, int i, const char **name, syn_dtype *dt, syn_shape *shape,
                               const void **data, size_t *bytes) {
    if (!f || i < 0 || i >= f->n)
        return syn__error(SYN_ERR_ARG, "syn_safetensors_get: index %d outside 0..%d", i, f ? f->n - 1 : -1);
    fill_out(&f->e[i], name, dt, shape, data, bytes);
    return SYN_OK;
}

syn_status syn_safetensors_find(const syn_safetensors *f, const char *name, syn_dtype *dt, syn_shape *shape,
                                const void **data, size_t *bytes) {
    if (!f || !name) return syn__error(SYN_ERR_ARG, "syn_safetensors_find: NULL argument");
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->e[i].name, name) == 0) {
            fill_out(&f->e[i], NULL, dt, shape, data, bytes);
            return SYN_OK;
        }
    return syn__error(SYN_ERR_ARG, "no tensor named '%s' in the file", name);
}

const char *syn_safetensors_metadata(const syn_safetensors *f, const char *key) {
    if (!f || !f->meta || !key) return NULL;
    return json_string_value(json_object_get(f->meta, key));
}

/* ---- writing ---------------------------------------------------------------- */

typedef struct {
    char *name;
    syn_dtype dt;
    syn_shape shape;
    size_t bytes;
    void *data;
} w_entry;

struct syn_safetensors_writer {
    w_entry *e;
    int n, cap;
    json_t *meta; /* string values, in insertion order */
};

syn_status syn_safetensors_writer_create(syn_safetensors_writer **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_safetensors_writer_create: out is NULL");
    *out = NULL;
    syn_safetensors_writer *w = syn__calloc(1, sizeof *w, "safetensors writer");
    if (!w) return SYN_ERR_OOM;
    if (!(w->meta = json_object())) {
        free(w);
        return syn__error(SYN_ERR_OOM, "safetensors writer: out of memory");
    }
    *out = w;
    return SYN_OK;
}

void syn_safetensors_writer_free(syn_safetensors_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].data);
    }
    free(w->e);
    json_decref(w->meta);
    free(w);
}

/* Names and values must survive a JSON round trip: valid UTF-8 (no overlong
 * forms, surrogates or code points past U+10FFFF, as Jansson checks), no NUL.
 * Checked here rather than by json_string, whose NULL also means out of memory. */
static bool utf8_ok(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        const unsigned c = *s++;
        if (c < 0x80) continue;
        const int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
        if (more < 0 || c == 0xc0 || c == 0xc1 || c > 0xf4) return false;
        unsigned cp = c & (0x3fu >> more);
        for (int k = 0; k < more; k++, s++) {
            if ((*s & 0xc0) != 0x80) return false;
            cp = cp << 6 | (*s & 0x3fu);
        }
        const unsigned least = more == 1 ? 0x80 : more == 2 ? 0x800 : 0x10000;
        if (cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    }
    return true;
}

syn_status syn_safetensors_add(syn_safetensors_writer *w, const char *name, syn_dtype dt, syn_shape shape,
                               const void *data) {
    char sb[128];
    if (!w || !name) return syn__error(SYN_ERR_ARG, "syn_safetensors_add: NULL %s", w ? "name" : "writer");
    if (strcmp(name, "__metadata__") == 0)
        return syn__error(SYN_ERR_ARG, "syn_safetensors_add: '__metadata__' is reserved, not a tensor name");
    if (!utf8_ok(name)) return syn__error(SYN_ERR_ARG, "syn_safetensors_add: tensor name is not valid UTF-8");
    if (!st_dtype_name(dt)) return syn__error(SYN_ERR_ARG, "syn_safetensors_add: '%s': unknown dtype %d", name, (int)dt);
    if (shape.ndim < 0 || shape.ndim > SYN_MAX_DIMS)
        return syn__error(SYN_ERR_ARG, "syn_safetensors_add: '%s': ndim %d outside 0..%d", name, shape.ndim, SYN_MAX_DIMS);
    uint64_t bytes = syn_dtype_size(dt);
    bool zero = false;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.dim[i] < 0)
            return syn__error(SYN_ERR_ARG, "syn_safetensors_add: '%s': negative dim in %s", name,
                              shape_text(&shape, sb, sizeof sb));
        if (shape.dim[i] == 0) zero = true;
    }
    if (zero) bytes = 0;
    for (int i = 0; !zero && i < shape.ndim; i++) {
        uint64_t d = (uint64_t)shape.dim[i];
        if (bytes > ((uint64_t)INT64_MAX) / d)
            return syn__error(SYN_ERR_ARG, "syn_safetensors_add: '%s': shape %s overflows", name,
                              shape_text(&shape, sb, sizeof sb));
        bytes *= d;
    }
    if (bytes > SIZE_MAX) return syn__error(SYN_ERR_ARG, "syn_safetensors_add: '%s': too large", name);
    if (bytes && !data) return syn__error(SYN_ERR_ARG, "syn_safetensors_add: '%s': data is NULL", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return syn__error(SYN_ERR_ARG, "syn_safetensors_add: a tensor named '%s' was already added", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        w_entry *e = realloc(w->e, (size_t)cap * sizeof *e);
        if (!e) return syn__error(SYN_ERR_OOM, "syn_safetensors_add: out of memory");
        w->e = e;
        w->cap = cap;
    }
    w_entry *e = &w->e[w->n];
    e->name = strdup(name);
    e->data = malloc(bytes ? (size_t)bytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return syn__error(SYN_ERR_OOM, "syn_safetensors_add: '%s': out of memory for %llu bytes", name,
                          (unsigned long long)bytes);
    }
    if (bytes) memcpy(e->data, data, (size_t)bytes);
    e->dt = dt;
    e->shape = shape;
    e->bytes = (size_t)bytes;
    w->n++;
    return SYN_OK;
}

syn_status syn_safetensors_set_metadata(syn_safetensors_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return syn__error(SYN_ERR_ARG, "syn_safetensors_set_metadata: NULL argument");
    if (!utf8_ok(key) || !utf8_ok(value))
        return syn__error(SYN_ERR_ARG, "syn_safetensors_set_metadata: key '%s' or its value is not valid UTF-8", key);
    json_t *v = json_string(value);
    if (!v) return syn__error(SYN_ERR_OOM, "syn_safetensors_set_metadata: out of memory for '%s'", key);
    if (json_object_set_new(w->meta, key, v) != 0)
        return syn__error(SYN_ERR_OOM, "syn_safetensors_set_metadata: out of memory");
    return SYN_OK;
}

/* The header JSON: __metadata__ first, then the tensors in the order they
 * were added, their data laid out back to back in that order. */
static syn_status build_header(const syn_safetensors_writer *w, const char *path, char **text) {
    json_t *root = json_object();
    bool ok = root != NULL;
    if (ok && json_object_size(w->meta) > 0) ok = json_object_set(root, "__metadata__", w->meta) == 0;
    uint64_t at = 0;
    for (int i = 0; ok && i < w->n; i++) {
        const w_entry *e = &w->e[i];
        json_t *shape = json_array();
        ok = shape != NULL;
        for (int d = 0; ok && d < e->shape.ndim; d++) ok = json_array_append_new(shape, json_integer(e->shape.dim[d])) == 0;
        if (!ok) {
            json_decref(shape);
            break;
        }
        /* "o" steals the shape's reference, on failure too */
        json_t *ent = json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(e->dt), "shape", shape, "data_offsets",
                                (json_int_t)at, (json_int_t)(at + e->bytes));
        ok = ent && json_object_set_new(root, e->name, ent) == 0;
        at += e->bytes;
    }
    *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!*text) return syn__error(SYN_ERR_OOM, "%s: out of memory building the header", path);
    return SYN_OK;
}

syn_status syn_safetensors_write(const syn_safetensors_writer *w, const char *path) {
    if (!w || !path) return syn__error(SYN_ERR_ARG, "syn_safetensors_write: NULL %s", w ? "path" : "writer");
    char *hdr;
    SYN_TRY(build_header(w, path, &hdr));
    /* Padded with spaces to a multiple of 8 (as the reference writer does),
     * so the data area starts 8-byte aligned. */
    size_t hn = strlen(hdr), padded = (hn + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    syn__atomic a;
    syn_status s = syn__atomic_begin(&a, path);
    if (s == SYN_OK) s = syn__atomic_write(&a, len8, 8);
    if (s == SYN_OK) s = syn__atomic_write(&a, hdr, hn);
    if (s == SYN_OK) s = syn__atomic_write(&a, spaces, padded - hn);
    for (int i = 0; s == SYN_OK && i < w->n; i++) s = syn__atomic_write(&a, w->e[i].data, w->e[i].bytes);
    free(hdr);
    if (s == SYN_OK) return syn__atomic_commit(&a);
    syn__atomic_abort(&a);
    return s;
}
