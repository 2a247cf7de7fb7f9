/* safetensors: round trips of every dtype (scalars, zero-size dims), the
 * writer's layout (padded header, insertion order), metadata, every corrupt
 * file the reader must reject (written byte by byte here) with its message,
 * the writer's argument and I/O errors, and parameter files (round trip,
 * strict and lenient loads, shape and dtype mismatches). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/io_internal.h"
#include "testutil.h"




static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* The files in tu_dir other than "." and "..". */
static int dir_entries(void) {
    DIR *d = opendir(tu_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* ---- round trips ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    syn_dtype dt;
    syn_shape shape;
} tensor_case;

START_TEST(round_trip_all_dtypes) {
    static const tensor_case cases[] = {
        {"w.f32", SYN_F32, {2, {3, 5}}},      {"h.f16", SYN_F16, {1, {7}}},
        {"b.bf16", SYN_BF16, {3, {2, 1, 3}}}, {"i.i32", SYN_I32, {1, {9}}},
        {"l.i64", SYN_I64, {2, {1, 3}}},      {"u.u8", SYN_U8, {1, {13}}}, /* odd size: next tensor unaligned in the file */
        {"scalar.f32", SYN_F32, {0, {0}}},    {"scalar.i64", SYN_I64, {0, {0}}},
        {"empty.f32", SYN_F32, {2, {4, 0}}},  {"empty.u8", SYN_U8, {1, {0}}},
        {"a.after_u8", SYN_F32, {1, {3}}},    {"z.6d", SYN_I32, {6, {1, 2, 1, 2, 1, 2}}},
    };
    enum { N = sizeof cases / sizeof *cases };
    tu_rng r = tu_rng_make(11);
    void *data[N];
    size_t bytes[N];
    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    for (int i = 0; i < N; i++) {
        bytes[i] = (size_t)syn_shape_numel(&cases[i].shape) * syn_dtype_size(cases[i].dt);
        data[i] = malloc(bytes[i] + 1);
        for (size_t b = 0; b < bytes[i]; b++) ((unsigned char *)data[i])[b] = (unsigned char)tu_next(&r);
        TU_OK(syn_safetensors_add(w, cases[i].name, cases[i].dt, cases[i].shape, data[i]));
    }
    TU_OK(syn_safetensors_set_metadata(w, "format", "pt"));
    TU_OK(syn_safetensors_set_metadata(w, "note", "ünïcode, \"quotes\" and\nnewlines"));
    TU_OK(syn_safetensors_set_metadata(w, "format", "pt2")); /* replaces */
    const char *path = tu_path("all.safetensors");
    TU_OK(syn_safetensors_write(w, path));
    syn_safetensors_writer_free(w);
    ck_assert_int_eq(dir_entries(), 1); /* no temporary file left */

    /* layout: an 8-byte length, a space-padded header of a multiple of 8 bytes */
    size_t len;
    unsigned char *raw = slurp(path, &len);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | raw[i];
    ck_assert_uint_eq(hn % 8, 0);
    ck_assert_uint_ge(len, 8 + hn);
    ck_assert_int_eq(raw[8], '{');
    size_t total = 0;
    for (int i = 0; i < N; i++) total += bytes[i];
    ck_assert_uint_eq(len, 8 + hn + total);

    syn_safetensors *f;
    TU_OK(syn_safetensors_open(path, &f));
    ck_assert_int_eq(syn_safetensors_count(f), N);
    for (int i = 0; i < N; i++) {
        const char *name;
        syn_dtype dt;
        syn_shape sh;
        const void *d;
        size_t nb;
        /* file order is insertion order */
        TU_OK(syn_safetensors_get(f, i, &name, &dt, &sh, &d, &nb));
        ck_assert_str_eq(name, cases[i].name);
        ck_assert_int_eq(dt, cases[i].dt);
        ck_assert_msg(syn_shape_equal(&sh, &cases[i].shape), "%s: shape changed", name);
        ck_assert_uint_eq(nb, bytes[i]);
        ck_assert_ptr_nonnull(d);
        ck_assert_msg((uintptr_t)d % syn_dtype_size(dt) == 0, "%s: data not aligned for its dtype", name);
        ck_assert_int_eq(memcmp(d, data[i], nb), 0);
        TU_OK(syn_safetensors_find(f, cases[i].name, &dt, &sh, &d, &nb));
        ck_assert_int_eq(dt, cases[i].dt);
        ck_assert_int_eq(memcmp(d, data[i], nb), 0);
    }
    ck_assert_str_eq(syn_safetensors_metadata(f, "format"), "pt2");
    ck_assert_str_eq(syn_safetensors_metadata(f, "note"), "ünïcode, \"quotes\" and\nnewlines");
    ck_assert_ptr_null(syn_safetensors_metadata(f, "absent"));
    ck_assert_int_eq(syn_safetensors_find(f, "absent", NULL, NULL, NULL, NULL), SYN_ERR_ARG);
    ck_assert_int_eq(syn_safetensors_get(f, N, NULL, NULL, NULL, NULL, NULL), SYN_ERR_ARG);
    ck_assert_int_eq(syn_safetensors_get(f, -1, NULL, NULL, NULL, NULL, NULL), SYN_ERR_ARG);
    syn_safetensors_close(f);

    /* the same image parsed from memory */
    TU_OK(syn__safetensors_parse(raw, len, "mem", &f));
    ck_assert_int_eq(syn_safetensors_count(f), N);
    syn_safetensors_close(f);
    free(raw);
    for (int i = 0; i < N; i++) free(data[i]);
}
END_TEST

START_TEST(empty_file_and_overwrite) {
    /* no tensors, no metadata: "{}" padded, still valid */
    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    const char *path = tu_path("empty.safetensors");
    TU_OK(syn_safetensors_write(w, path));
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(path, &f));
    ck_assert_int_eq(syn_safetensors_count(f), 0);
    ck_assert_ptr_null(syn_safetensors_metadata(f, "format"));
    syn_safetensors_close(f);
    /* overwriting an existing file replaces it */
    float v = 3.5f;
    TU_OK(syn_safetensors_add(w, "v", SYN_F32, syn_shape0(), &v));
    TU_OK(syn_safetensors_write(w, path));
    syn_safetensors_writer_free(w);
    TU_OK(syn_safetensors_open(path, &f));
    ck_assert_int_eq(syn_safetensors_count(f), 1);
    const void *d;
    TU_OK(syn_safetensors_find(f, "v", NULL, NULL, &d, NULL));
    ck_assert_float_eq(*(const float *)d, 3.5f);
    syn_safetensors_close(f);
    ck_assert_int_eq(dir_entries(), 1);
    syn_safetensors_close(NULL);
    syn_safetensors_writer_free(NULL);
}
END_TEST

/* Reads a file written by a reference writer byte for byte (header order and
 * padding as HuggingFace's Python package writes them). */
START_TEST(reference_layout) {
    const char hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
    size_t hn = strlen(hdr), padded = (hn + 7) / 8 * 8;
    unsigned char buf[512];
    memset(buf, ' ', sizeof buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(padded >> (8 * i));
    memcpy(buf + 8, hdr, hn);
    float a[2] = {1.5f, -2.0f};
    int64_t b = -7;
    memcpy(buf + 8 + padded, a, 8);
    memcpy(buf + 8 + padded + 8, &b, 8);
    const char *path = tu_path("ref.safetensors");
    spit(path, buf, 8 + padded + 16);
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(path, &f));
    const void *d;
    syn_dtype dt;
    syn_shape sh;
    TU_OK(syn_safetensors_find(f, "a", &dt, &sh, &d, NULL));
    ck_assert_int_eq(dt, SYN_F32);
    ck_assert_int_eq(sh.ndim, 1);
    ck_assert_float_eq(((const float *)d)[1], -2.0f);
    TU_OK(syn_safetensors_find(f, "b", &dt, &sh, &d, NULL));
    ck_assert_int_eq(dt, SYN_I64);
    ck_assert_int_eq(sh.ndim, 0);
    ck_assert_int_eq(*(const int64_t *)d, -7);
    ck_assert_str_eq(syn_safetensors_metadata(f, "format"), "pt");
    syn_safetensors_close(f);
}
END_TEST

/* ---- corrupt files ---------------------------------------------------------------- */

typedef struct {
    const char *what;
    const char *header;  /* JSON text, NULL: the file is `raw` */
    int data_len;        /* bytes of data after the header */
    long long hlen;      /* >= 0: the 8-byte length written instead of the header's */
    const char *raw;     /* whole-file bytes when header is NULL */
    int raw_len;
    const char *expect;  /* in the message */
} bad_case;

#define T(dt, shape, b, e) "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const bad_case bad[] = {
    {"truncated file", NULL, 0, -1, "\x10\0\0\0", 4, "truncated"},
    {"empty file", NULL, 0, -1, "", 0, "truncated"},
    {"truncated header", "{\"a\":" T("F32", "[1]", 0, 4) "}", 0, 200, NULL, 0, "truncated header"},
    {"header length beyond the file", "{}", 0, 9, NULL, 0, "runs past the end of the file"},
    {"header length over 100 MB", "{}", 0, 100000001, NULL, 0, "exceeds the limit"},
    {"header length 2^64-1", "{}", 0, -2, NULL, 0, "exceeds the limit"},
    {"zero header length", "", 0, -1, NULL, 0, "not valid JSON"},
    {"bad JSON", "{\"a\": {\"dtype\": ", 0, -1, NULL, 0, "not valid JSON"},
    {"bad UTF-8", "{\"\xff\":" T("U8", "[0]", 0, 0) "}", 0, -1, NULL, 0, "not valid JSON"},
    {"NUL inside the header", "{\"a\0\":" T("U8", "[0]", 0, 0) "}", 0, -1, NULL, 0, "not valid JSON"},
    {"duplicate key", "{\"a\":" T("F32", "[1]", 0, 4) ",\"a\":" T("F32", "[1]", 4, 8) "}", 8, -1, NULL, 0,
     "duplicate"},
    {"not an object", "[1, 2]", 0, -1, NULL, 0, "not a JSON object"},
    {"a bare string", "\"x\"", 0, -1, NULL, 0, "not valid JSON"},
    {"entry not an object", "{\"a\": 3}", 0, -1, NULL, 0, "'a': the entry is not a JSON object"},
    {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, NULL, 0, "missing field 'dtype'"},
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, -1, NULL, 0, "missing field 'shape'"},
    {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1, NULL, 0, "missing field 'data_offsets'"},
    {"extra field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"foo\":1}}", 4, -1, NULL, 0,
     "unexpected field 'foo'"},
    {"bad dtype", "{\"a\":" T("F64", "[1]", 0, 8) "}", 8, -1, NULL, 0, "unsupported dtype 'F64'"},
    {"dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, NULL, 0,
     "dtype is not a string"},
    {"shape not an array", "{\"a\":" T("F32", "4", 0, 16) "}", 16, -1, NULL, 0, "shape is not an array"},
    {"negative dim", "{\"a\":" T("F32", "[-1]", 0, 0) "}", 0, -1, NULL, 0, "shape dim 0 is negative"},
    {"fractional dim", "{\"a\":" T("F32", "[1.5]", 0, 4) "}", 4, -1, NULL, 0, "not an integer"},
    {"too many dims", "{\"a\":" T("F32", "[1,1,1,1,1,1,1]", 0, 4) "}", 4, -1, NULL, 0, "7 dims (at most 6)"},
    {"numel overflow", "{\"a\":" T("F32", "[4294967296,4294967296]", 0, 4) "}", 4, -1, NULL, 0, "overflows"},
    {"offsets not two", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, -1, NULL, 0,
     "not an array of two integers"},
    {"negative offset", "{\"a\":" T("U8", "[1]", -1, 0) "}", 0, -1, NULL, 0, "not non-negative integers"},
    {"offsets reversed", "{\"a\":" T("U8", "[0]", 4, 0) "}", 4, -1, NULL, 0, "end before they begin"},
    {"wrong byte count", "{\"a\":" T("F32", "[3]", 0, 8) "}", 8, -1, NULL, 0, "needs 12 bytes but data_offsets [0, 8] hold 8"},
    {"overlapping offsets", "{\"a\":" T("F32", "[2]", 0, 8) ",\"b\":" T("F32", "[2]", 4, 12) "}", 12, -1, NULL, 0,
     "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a'"},
    {"hole between tensors", "{\"a\":" T("F32", "[1]", 0, 4) ",\"b\":" T("F32", "[1]", 8, 12) "}", 12, -1, NULL, 0,
     "hole in the data: bytes [4, 8) before tensor 'b'"},
    {"hole before the first tensor", "{\"a\":" T("F32", "[1]", 4, 8) "}", 8, -1, NULL, 0, "bytes [0, 4)"},
    {"offsets beyond the data", "{\"a\":" T("F32", "[1]", 0, 4) ",\"b\":" T("F32", "[99]", 4, 400) "}", 8, -1, NULL,
     0, "tensor 'b': data_offsets [4, 400] run past the data area (8 bytes)"},
    {"trailing bytes", "{\"a\":" T("F32", "[1]", 0, 4) "}", 9, -1, NULL, 0, "5 trailing bytes"},
    {"data but no tensors", "{}", 1, -1, NULL, 0, "1 trailing bytes"},
    {"metadata value not a string", "{\"__metadata__\":{\"k\":1}}", 0, -1, NULL, 0,
     "__metadata__ value of 'k' is not a string"},
    {"metadata not an object", "{\"__metadata__\":[\"k\"]}", 0, -1, NULL, 0, "__metadata__ is not a JSON object"},
};

START_TEST(corrupt_file) {
    const bad_case *c = &bad[_i];
    unsigned char buf[1024];
    size_t len;
    if (c->header) {
        size_t hn = strlen(c->header);
        if (strcmp(c->what, "NUL inside the header") == 0) hn += 1 + strlen(c->header + hn + 1);
        uint64_t L = c->hlen == -1 ? hn : c->hlen == -2 ? UINT64_MAX : (uint64_t)c->hlen;
        for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(L >> (8 * i));
        memcpy(buf + 8, c->header, hn);
        memset(buf + 8 + hn, 0x5a, (size_t)c->data_len);
        len = 8 + hn + (size_t)c->data_len;
    } else {
        memcpy(buf, c->raw, (size_t)c->raw_len);
        len = (size_t)c->raw_len;
    }
    const char *path = tu_path("bad.safetensors");
    spit(path, buf, len);
    syn_safetensors *f = (syn_safetensors *)&f; /* poisoned */
    syn_status s = syn_safetensors_open(path, &f);
    ck_assert_msg(s == SYN_ERR_FORMAT, "%s: status %s (%s)", c->what, syn_status_str(s), syn_last_error());
    ck_assert_ptr_null(f);
    const char *msg = syn_last_error();
    ck_assert_msg(strstr(msg, path) != NULL, "%s: message lacks the file name: %s", c->what, msg);
    ck_assert_msg(strstr(msg, c->expect) != NULL, "%s: message '%s' lacks '%s'", c->what, msg, c->expect);
    /* the in-memory parser agrees */
    s = syn__safetensors_parse(buf, len, "image", &f);
    ck_assert_msg(s == SYN_ERR_FORMAT, "%s (memory): status %s", c->what, syn_status_str(s));
    ck_assert_msg(strstr(syn_last_error(), c->expect) != NULL, "%s (memory): '%s'", c->what, syn_last_error());
}
END_TEST

START_TEST(open_and_write_errors) {
    syn_safetensors *f;
    ck_assert_int_eq(syn_safetensors_open(tu_path("nope.safetensors"), &f), SYN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "nope.safetensors"));
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "No such file"));
    ck_assert_int_eq(syn_safetensors_open(tu_dir, &f), SYN_ERR_IO); /* a folder */
    ck_assert_int_eq(syn_safetensors_open(NULL, &f), SYN_ERR_ARG);

    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    float x[4] = {1, 2, 3, 4};
    TU_OK(syn_safetensors_add(w, "x", SYN_F32, syn_shape1(4), x));
    ck_assert_int_eq(syn_safetensors_add(w, "x", SYN_F32, syn_shape1(4), x), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "already"));
    ck_assert_int_eq(syn_safetensors_add(w, "__metadata__", SYN_F32, syn_shape1(4), x), SYN_ERR_ARG);
    ck_assert_int_eq(syn_safetensors_add(w, "neg", SYN_F32, syn_shape1(-1), x), SYN_ERR_ARG);
    ck_assert_int_eq(syn_safetensors_add(w, "nodata", SYN_F32, syn_shape1(2), NULL), SYN_ERR_ARG);
    ck_assert_int_eq(syn_safetensors_add(w, "baddt", (syn_dtype)42, syn_shape1(2), x), SYN_ERR_ARG);
    ck_assert_int_eq(syn_safetensors_add(w, "bad\xff", SYN_F32, syn_shape1(2), x), SYN_ERR_ARG);
    syn_shape big = syn_shape1(1);
    big.ndim = SYN_MAX_DIMS + 1;
    ck_assert_int_eq(syn_safetensors_add(w, "big", SYN_F32, big, x), SYN_ERR_ARG);
    ck_assert_int_eq(syn_safetensors_set_metadata(w, "k", "\xc3"), SYN_ERR_ARG);
    TU_OK(syn_safetensors_add(w, "nothing", SYN_F32, syn_shape1(0), NULL)); /* 0 bytes need no data */

    ck_assert_int_eq(syn_safetensors_write(w, tu_path("no/such/folder/x.safetensors")), SYN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "no/such/folder/x.safetensors"));
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "No such file"));
    ck_assert_int_eq(syn_safetensors_write(w, tu_dir), SYN_ERR_IO); /* the target is a folder: rename fails */
    ck_assert_int_eq(dir_entries(), 0);                           /* the temporary file was removed */
    /* a write into a full device */
    if (access("/dev/full", W_OK) == 0) {
        syn__atomic a = {0};
        a.f = fopen("/dev/full", "wb");
        a.path = strdup("/dev/full-test");
        a.tmp = NULL;
        ck_assert_ptr_nonnull(a.f);
        static char big_buf[1 << 16];
        syn_status s = syn__atomic_write(&a, big_buf, sizeof big_buf);
        if (s == SYN_OK) s = syn__atomic_commit(&a);
        else syn__atomic_abort(&a);
        ck_assert_int_eq(s, SYN_ERR_IO);
        ck_assert_ptr_nonnull(strstr(syn_last_error(), "No space"));
    }
    syn_safetensors_writer_free(w);
}
END_TEST

/* Names and metadata must be UTF-8 as JSON takes it: the writer's own check
 * (Jansson's json_string also fails for want of memory, so it is not used). */
static const struct {
    const char *text;
    bool ok;
} utf8_cases[] = {
    {"plain.weight", true},
    {"gr\xc3\xb6\xc3\x9f" "e", true},          /* 2-byte forms */
    {"\xe2\x82\xac", true},                     /* U+20AC */
    {"\xf0\x9f\x98\x80", true},                 /* U+1F600: 4 bytes */
    {"\xf4\x8f\xbf\xbf", true},                 /* U+10FFFF, the last */
    {"\xed\x9f\xbf", true},                     /* U+D7FF, just below the surrogates */
    {"bad\xff", false},
    {"\x80", false},                             /* a lone continuation byte */
    {"\xc3", false},                             /* cut short */
    {"\xe2\x82", false},                         /* cut short */
    {"\xc0\xaf", false},                         /* overlong '/' */
    {"\xe0\x80\xaf", false},                     /* overlong, 3 bytes */
    {"\xf0\x80\x80\xaf", false},                 /* overlong, 4 bytes */
    {"\xed\xa0\x80", false},                     /* U+D800, a surrogate */
    {"\xf4\x90\x80\x80", false},                 /* U+110000 */
    {"\xf8\x88\x80\x80\x80", false},             /* a 5-byte form */
};

START_TEST(names_must_be_utf8) {
    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    const float x = 1.0f;
    const char *text = utf8_cases[_i].text;
    syn_status s = syn_safetensors_add(w, text, SYN_F32, syn_shape0(), &x);
    ck_assert_msg(utf8_cases[_i].ok ? s == SYN_OK : s == SYN_ERR_ARG, "case %d: add gave %d", _i, (int)s);
    s = syn_safetensors_set_metadata(w, "k", text);
    ck_assert_msg(utf8_cases[_i].ok ? s == SYN_OK : s == SYN_ERR_ARG, "case %d: metadata gave %d", _i, (int)s);
    if (utf8_cases[_i].ok) { /* the file gives both back */
        TU_OK(syn_safetensors_write(w, tu_path("u.safetensors")));
        syn_safetensors *f;
        TU_OK(syn_safetensors_open(tu_path("u.safetensors"), &f));
        TU_OK(syn_safetensors_find(f, text, NULL, NULL, NULL, NULL));
        ck_assert_str_eq(syn_safetensors_metadata(f, "k"), text);
        syn_safetensors_close(f);
    }
    syn_safetensors_writer_free(w);
}
END_TEST

/* ---- parameter files ------------------------------------------------------------------ */

static syn_params *make_params(uint64_t seed, syn_shape wshape, bool with_bias) {
    syn_params *p;
    TU_OK(syn_params_create(syn_cpu(), seed, &p));
    syn_init init = {SYN_INIT_NORMAL, 0.0f, 1.0f, 0};
    TU_OK(syn_params_add(p, "fc.weight", wshape, &init, NULL));
    if (with_bias) TU_OK(syn_params_add(p, "fc.bias", syn_shape1(3), &init, NULL));
    return p;
}

static void read_param(syn_params *p, const char *name, float *out, size_t n) {
    syn_tensor *t;
    TU_OK(syn_params_find(p, name, &t, NULL));
    TU_OK(syn_tensor_read(t, out, n * sizeof(float)));
}

START_TEST(params_round_trip_and_mismatch) {
    syn_params *a = make_params(1, syn_shape2(3, 4), true);
    syn_params *b = make_params(2, syn_shape2(3, 4), true);
    const char *path = tu_path("params.safetensors");
    TU_OK(syn_params_save(a, path));
    float wa[12], wb[12], ba[3], bb[3];
    read_param(b, "fc.weight", wb, 12);
    read_param(a, "fc.weight", wa, 12);
    ck_assert_int_ne(memcmp(wa, wb, sizeof wa), 0);
    TU_OK(syn_params_load(b, path, true));
    read_param(b, "fc.weight", wb, 12);
    read_param(a, "fc.bias", ba, 3);
    read_param(b, "fc.bias", bb, 3);
    ck_assert_int_eq(memcmp(wa, wb, sizeof wa), 0);
    ck_assert_int_eq(memcmp(ba, bb, sizeof ba), 0);
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(path, &f));
    ck_assert_str_eq(syn_safetensors_metadata(f, "format"), "pt");
    syn_safetensors_close(f);

    /* shape mismatch: an error naming the parameter and both shapes, nothing changed */
    syn_params *c = make_params(3, syn_shape2(4, 3), true);
    float wc0[12], wc1[12];
    read_param(c, "fc.weight", wc0, 12);
    ck_assert_int_eq(syn_params_load(c, path, true), SYN_ERR_FORMAT);
    const char *msg = syn_last_error();
    ck_assert_msg(strstr(msg, "fc.weight") && strstr(msg, "(3,4)") && strstr(msg, "(4,3)") && strstr(msg, path),
                  "message: %s", msg);
    read_param(c, "fc.weight", wc1, 12);
    ck_assert_int_eq(memcmp(wc0, wc1, sizeof wc0), 0);
    ck_assert_int_eq(syn_params_load(c, path, false), SYN_ERR_FORMAT); /* lenient loads check shapes too */

    /* dtype mismatch: fc.weight stored as F16 */
    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    uint16_t half[12] = {0};
    TU_OK(syn_safetensors_add(w, "fc.weight", SYN_F16, syn_shape2(3, 4), half));
    TU_OK(syn_safetensors_add(w, "fc.bias", SYN_F32, syn_shape1(3), ba));
    const char *p16 = tu_path("f16.safetensors");
    TU_OK(syn_safetensors_write(w, p16));
    syn_safetensors_writer_free(w);
    ck_assert_int_eq(syn_params_load(b, p16, true), SYN_ERR_FORMAT);
    msg = syn_last_error();
    ck_assert_msg(strstr(msg, "fc.weight") && strstr(msg, "f16") && strstr(msg, "f32"), "message: %s", msg);

    /* strict: a parameter missing from the file, or a tensor that is no parameter */
    syn_params *d = make_params(4, syn_shape2(3, 4), false); /* no bias */
    const char *pd = tu_path("nobias.safetensors");
    TU_OK(syn_params_save(d, pd));
    ck_assert_int_eq(syn_params_load(b, pd, true), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "'fc.bias' of the model is not in the file"));
    read_param(b, "fc.bias", bb, 3);
    TU_OK(syn_params_load(b, pd, false)); /* lenient: the bias keeps its value */
    float bb2[3];
    read_param(b, "fc.bias", bb2, 3);
    ck_assert_int_eq(memcmp(bb, bb2, sizeof bb), 0);
    ck_assert_int_eq(syn_params_load(d, path, true), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "'fc.bias' in the file is not a parameter"));
    TU_OK(syn_params_load(d, path, false));
    ck_assert_int_eq(syn_params_load(d, tu_path("missing"), false), SYN_ERR_IO);
    ck_assert_int_eq(syn_params_load(NULL, path, false), SYN_ERR_ARG);

    syn_params_free(a);
    syn_params_free(b);
    syn_params_free(c);
    syn_params_free(d);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *t = tcase_create("safetensors");
    tcase_add_checked_fixture(t, tu_dir_setup, tu_dir_teardown);
    tcase_add_test(t, round_trip_all_dtypes);
    tcase_add_test(t, empty_file_and_overwrite);
    tcase_add_test(t, reference_layout);
    tcase_add_loop_test(t, corrupt_file, 0, (int)(sizeof bad / sizeof *bad));
    tcase_add_test(t, open_and_write_errors);
    tcase_add_loop_test(t, names_must_be_utf8, 0, (int)(sizeof utf8_cases / sizeof *utf8_cases));
    tcase_add_test(t, params_round_trip_and_mismatch);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(suite()); }
