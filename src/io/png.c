/* PNG through libpng: a grid of F32 images written atomically (sample sheets
 * of GANs) and 8-bit grey/RGB(A) images read as F32 in [0, 1].
 * libpng reports errors by calling an error function that must not return:
 * ours records the message and longjmps back to the one setjmp of each call,
 * where everything is freed. State that changes after setjmp lives in
 * volatile fields, so it is still valid after the longjmp. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"

typedef struct {
    jmp_buf jb;
    char msg[256];
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "libpng error");
    longjmp(c->jb, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. an unknown chunk) do not stop a read or a write */
}

/* ---- the grid ------------------------------------------------------------------- */

enum { BORDER = 2, BORDER_VALUE = 128, MAX_SIDE = 1 << 15 };

static uint8_t to_byte(float v, float lo, float scale) {
    float t = (v - lo) * scale;
    if (!(t > 0.0f)) return 0; /* also NaN */
    if (t >= 255.0f) return 255;
    return (uint8_t)lrintf(t);
}

syn_status syn_png_write_grid(const char *path, const float *images, int n, int c, int h, int w, int cols, float lo,
                              float hi) {
    if (!path || !*path || !images) return syn__error(SYN_ERR_ARG, "syn_png_write_grid: NULL %s", !images ? "images" : "path");
    if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || cols < 0)
        return syn__error(SYN_ERR_ARG, "syn_png_write_grid %s: %d images of %dx%dx%d, %d columns (want n >= 1, c 1 or 3)",
                          path, n, c, h, w, cols);
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return syn__error(SYN_ERR_ARG, "syn_png_write_grid %s: range [%g, %g] (want finite lo < hi)", path, (double)lo,
                          (double)hi);
    if (cols == 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    const int rows = (n + cols - 1) / cols;
    const int64_t W = (int64_t)cols * w + (int64_t)(cols + 1) * BORDER;
    const int64_t H = (int64_t)rows * h + (int64_t)(rows + 1) * BORDER;
    if (W > MAX_SIDE || H > MAX_SIDE)
        return syn__error(SYN_ERR_ARG, "syn_png_write_grid %s: the grid would be %lldx%lld pixels (at most %d a side)", path,
                          (long long)W, (long long)H, MAX_SIDE);

    /* The whole picture in memory first: the image's rows, interleaved channels. */
    const size_t stride = (size_t)(W * c);
    uint8_t *pix = syn__malloc(stride * (size_t)H, "syn_png_write_grid: pixels");
    png_bytep *row_ptrs = syn__malloc((size_t)H * sizeof *row_ptrs, "syn_png_write_grid: rows");
    if (!pix || !row_ptrs) {
        free(pix);
        free(row_ptrs);
        return SYN_ERR_OOM;
    }
    memset(pix, BORDER_VALUE, stride * (size_t)H);
    const float scale = 255.0f / (hi - lo);
    for (int k = 0; k < n; k++) {
        const int64_t x0 = BORDER + (int64_t)(k % cols) * (w + BORDER), y0 = BORDER + (int64_t)(k / cols) * (h + BORDER);
        const float *img = images + (size_t)k * (size_t)c * (size_t)h * (size_t)w; /* (c, h, w) */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    pix[(size_t)(y0 + y) * stride + (size_t)((x0 + x) * c + ch)] =
                        to_byte(img[((size_t)ch * h + y) * w + x], lo, scale);
    }
    for (int64_t y = 0; y < H; y++) row_ptrs[y] = pix + (size_t)y * stride;

    syn__atomic a;
    syn_status s = syn__atomic_begin(&a, path);
    if (s != SYN_OK) {
        free(pix);
        free(row_ptrs);
        return s;
    }
    png_ctx ctx;
    ctx.msg[0] = '\0';
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        syn__atomic_abort(&a);
        free(pix);
        free(row_ptrs);
        return syn__error(SYN_ERR_OOM, "%s: libpng could not allocate its write structures", path);
    }
    if (setjmp(ctx.jb)) {
        png_destroy_write_struct(&png, &info);
        syn__atomic_abort(&a);
        free(pix);
        free(row_ptrs);
        return syn__error(SYN_ERR_IO, "%s: writing the PNG failed: %s", path, ctx.msg);
    }
    png_init_io(png, a.f);
    png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, row_ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(pix);
    free(row_ptrs);
    return syn__atomic_commit(&a);
}

/* ---- reading ---------------------------------------------------------------------- */

enum { MAX_READ_PIXELS = 1 << 26 };

syn_status syn_png_read(const char *path, float **out, int *c, int *h, int *w) {
    if (!path || !out || !c || !h || !w) return syn__error(SYN_ERR_ARG, "syn_png_read: NULL argument");
    *out = NULL;
    *c = *h = *w = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return syn__error(SYN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, sizeof sig, f) != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(f);
        return syn__error(SYN_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    }
    png_ctx ctx;
    ctx.msg[0] = '\0';
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        fclose(f);
        return syn__error(SYN_ERR_OOM, "%s: libpng could not allocate its read structures", path);
    }
    /* Set after setjmp, read after a longjmp: volatile. */
    uint8_t *volatile pix = NULL;
    png_bytep *volatile row_ptrs = NULL;
    volatile syn_status bad = SYN_OK;
    if (setjmp(ctx.jb)) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(pix);
        free(row_ptrs);
        if (bad != SYN_OK) return bad; /* recorded before the jump */
        return syn__error(SYN_ERR_FORMAT, "%s: bad PNG: %s", path, ctx.msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, sizeof sig);
    png_set_user_limits(png, MAX_SIDE, MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 W = png_get_image_width(png, info), H = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if ((uint64_t)W * H > MAX_READ_PIXELS) {
        bad = syn__error(SYN_ERR_FORMAT, "%s: %ux%u pixels is more than this reader takes (%d)", path, (unsigned)W,
                         (unsigned)H, MAX_READ_PIXELS);
        png_error(png, "too large");
    }
    /* Everything becomes 8-bit grey or RGB. */
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_set_tRNS_to_alpha(png);
        png_set_strip_alpha(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((ch != 1 && ch != 3) || rowbytes != (size_t)W * (size_t)ch) {
        bad = syn__error(SYN_ERR_FORMAT, "%s: unsupported PNG layout (%d channels after conversion)", path, ch);
        png_error(png, "layout");
    }
    pix = malloc(rowbytes * H);
    row_ptrs = malloc((size_t)H * sizeof *row_ptrs);
    float *img = NULL;
    if (!pix || !row_ptrs) {
        bad = syn__error(SYN_ERR_OOM, "%s: out of memory for %ux%u pixels", path, (unsigned)W, (unsigned)H);
        png_error(png, "oom");
    }
    for (png_uint_32 y = 0; y < H; y++) row_ptrs[y] = pix + (size_t)y * rowbytes;
    png_read_image(png, row_ptrs);
    png_read_end(png, NULL);
    /* (h, w, c) bytes -> (c, h, w) floats; no libpng call from here on. */
    img = malloc((size_t)W * H * (size_t)ch * sizeof *img);
    syn_status s = SYN_OK;
    if (!img) {
        s = syn__error(SYN_ERR_OOM, "%s: out of memory for %ux%u pixels", path, (unsigned)W, (unsigned)H);
    } else {
        for (int k = 0; k < ch; k++)
            for (png_uint_32 y = 0; y < H; y++)
                for (png_uint_32 x = 0; x < W; x++)
                    img[((size_t)k * H + y) * W + x] = (float)pix[(size_t)y * rowbytes + (size_t)x * ch + k] / 255.0f;
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(pix);
    free(row_ptrs);
    if (s != SYN_OK) return s;
    *out = img;
    *c = ch;
    *h = (int)H;
    *w = (int)W;
    return SYN_OK;
}
