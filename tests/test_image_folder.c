/* Image folders (syn_dataset_load_image_folder): classes from sorted
 * subfolders or a given list, files in sorted order, hidden and non-PNG
 * entries skipped, grey/RGB conversion, pixel values exact, every error
 * naming its folder or file; then `synapse train --images` with a test
 * folder or a split, eval on the same folders, and predict naming classes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "testutil.h"

static void mkdir_in(const char *name) { ck_assert_int_eq(mkdir(tu_path(name), 0755), 0); }

/* A w x h image whose pixel i is (seed + 7 i) mod 256 (grey), or those three
 * bytes shifted per channel (RGB). */
static void pattern(uint8_t *pix, int w, int h, int seed, bool rgb) {
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < (rgb ? 3 : 1); c++) pix[i * (rgb ? 3 : 1) + c] = (uint8_t)(seed + 7 * i + 50 * c);
}

static void write_pattern(const char *name, int w, int h, int seed, bool rgb) {
    uint8_t pix[3 * 64];
    ck_assert_int_le(w * h, 64);
    pattern(pix, w, h, seed, rgb);
    tu_write_png(tu_path(name), pix, w, h, rgb);
}

static void write_text(const char *name, const char *text) {
    FILE *f = fopen(tu_path(name), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Row r of ds holds the grey pattern of `seed` (4x3). */
static void assert_grey_row(const syn_dataset *ds, int64_t r, int seed) {
    uint8_t pix[12];
    pattern(pix, 4, 3, seed, false);
    for (int i = 0; i < 12; i++)
        ck_assert_msg(ds->x[r * ds->dim + i] == (float)pix[i] / 255.0f, "row %lld pixel %d: %g, want %g", (long long)r,
                      i, (double)ds->x[r * ds->dim + i], pix[i] / 255.0);
}

START_TEST(classes_files_and_order) {
    mkdir_in("set");
    static const char *const dirs[] = {"set/dog", "set/ant", "set/cat", "set/.hidden"};
    for (int d = 0; d < 4; d++) mkdir_in(dirs[d]);
    write_pattern("set/dog/b.png", 4, 3, 10, false);
    write_pattern("set/dog/a.PNG", 4, 3, 11, false);
    write_pattern("set/ant/x.png", 4, 3, 12, false);
    write_pattern("set/ant/.skipped.png", 4, 3, 99, false);
    write_pattern("set/.hidden/h.png", 4, 3, 99, false);
    write_pattern("set/cat/c.png", 4, 3, 13, false);
    write_text("set/ant/notes.txt", "not an image");
    write_text("set/README", "not a class");
    char **names;
    int n;
    TU_OK(syn_image_folder_classes(tu_path("set"), &names, &n));
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(names[0], "ant");
    ck_assert_str_eq(names[1], "cat");
    ck_assert_str_eq(names[2], "dog");
    syn_image_folder_classes_free(names, n);
    syn_dataset *ds;
    TU_OK(syn_dataset_load_image_folder(tu_path("set"), 0, NULL, 0, &ds));
    ck_assert_int_eq(ds->n, 4);
    ck_assert_int_eq(ds->num_classes, 3);
    ck_assert(syn_shape_equal(&ds->sample_shape, &(syn_shape){3, {1, 3, 4}}));
    static const int labels[4] = {0, 1, 2, 2}, seeds[4] = {12, 13, 11, 10}; /* ant/x, cat/c, dog/a.PNG, dog/b */
    for (int r = 0; r < 4; r++) {
        ck_assert_int_eq(ds->labels[r], labels[r]);
        assert_grey_row(ds, r, seeds[r]);
    }
    syn_dataset_free(ds);
    /* a test folder read with the training classes: labels by that list, a class without a folder is fine */
    mkdir_in("test");
    mkdir_in("test/dog");
    write_pattern("test/dog/d.png", 4, 3, 14, false);
    const char *const classes[3] = {"ant", "cat", "dog"};
    TU_OK(syn_dataset_load_image_folder(tu_path("test"), 0, classes, 3, &ds));
    ck_assert_int_eq(ds->n, 1);
    ck_assert_int_eq(ds->num_classes, 3);
    ck_assert_int_eq(ds->labels[0], 2);
    syn_dataset_free(ds);
    mkdir_in("test/eel");
    write_pattern("test/eel/e.png", 4, 3, 15, false);
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("test"), 0, classes, 3, &ds), SYN_ERR_FORMAT);
    ck_assert_msg(strstr(syn_last_error(), "test/eel: a class folder, but 'eel' is not among the 3 classes given"),
                  "%s", syn_last_error());
    ck_assert_ptr_null(ds);
}
END_TEST

/* RGB to grey by the BT.601 weights, grey to RGB by repeating; channels 0
 * takes the first image's. */
START_TEST(channels_convert) {
    mkdir_in("set");
    mkdir_in("set/a");
    mkdir_in("set/b");
    write_pattern("set/a/1.png", 4, 3, 20, true);
    write_pattern("set/b/2.png", 4, 3, 21, false);
    uint8_t rgb[36], grey[12];
    pattern(rgb, 4, 3, 20, true);
    pattern(grey, 4, 3, 21, false);
    for (int channels = 0; channels <= 3; channels += channels ? 2 : 1) {
        syn_dataset *ds;
        TU_OK(syn_dataset_load_image_folder(tu_path("set"), channels, NULL, 0, &ds));
        const int C = channels ? channels : 3;
        ck_assert_int_eq(ds->dim, C * 12);
        for (int i = 0; i < 12; i++)
            for (int c = 0; c < C; c++) {
                float want0 = C == 3 ? (float)rgb[i * 3 + c] / 255.0f
                                     : 0.299f * (rgb[i * 3] / 255.0f) + 0.587f * (rgb[i * 3 + 1] / 255.0f) +
                                           0.114f * (rgb[i * 3 + 2] / 255.0f);
                ck_assert_float_eq_tol(ds->x[c * 12 + i], want0, 1e-6f);
                ck_assert_float_eq(ds->x[ds->dim + c * 12 + i], (float)grey[i] / 255.0f);
            }
        syn_dataset_free(ds);
    }
}
END_TEST

START_TEST(errors_name_the_fault) {
    syn_dataset *ds = NULL;
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("none"), 0, NULL, 0, &ds), SYN_ERR_IO);
    ck_assert_msg(strstr(syn_last_error(), "none: cannot open the folder"), "%s", syn_last_error());
    mkdir_in("empty");
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("empty"), 0, NULL, 0, &ds), SYN_ERR_FORMAT);
    ck_assert_msg(strstr(syn_last_error(), "empty: no class subfolders"), "%s", syn_last_error());
    mkdir_in("set");
    mkdir_in("set/a");
    mkdir_in("set/b");
    write_pattern("set/a/1.png", 4, 3, 1, false);
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("set"), 0, NULL, 0, &ds), SYN_ERR_FORMAT);
    ck_assert_msg(strstr(syn_last_error(), "set/b: no .png files in this class folder"), "%s", syn_last_error());
    write_pattern("set/b/2.png", 3, 4, 2, false); /* 3 wide, 4 high */
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("set"), 0, NULL, 0, &ds), SYN_ERR_FORMAT);
    ck_assert_msg(strstr(syn_last_error(), "set/b/2.png: 3x4 pixels, but ") &&
                      strstr(syn_last_error(), "set/a/1.png (the first image) has 4x3: images are not resized"),
                  "%s", syn_last_error());
    write_pattern("set/b/2.png", 4, 3, 2, false);
    write_text("set/b/3.png", "not a PNG at all");
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("set"), 0, NULL, 0, &ds), SYN_ERR_FORMAT);
    ck_assert_msg(strstr(syn_last_error(), "set/b/3.png: not a PNG file"), "%s", syn_last_error());
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("set"), 2, NULL, 0, &ds), SYN_ERR_ARG);
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("set"), 0, (const char *const[1]){NULL}, 1, &ds),
                     SYN_ERR_ARG);
    ck_assert_int_eq(syn_dataset_load_image_folder(tu_path("set"), 0, NULL, 0, NULL), SYN_ERR_ARG);
    ck_assert_ptr_null(ds);
    char **names;
    int n;
    ck_assert_int_eq(syn_image_folder_classes(tu_path("empty"), &names, &n), SYN_ERR_FORMAT);
    ck_assert_ptr_null(names);
}
END_TEST

/* ---- the CLI ------------------------------------------------------------------------- */

/* root/<class>/<k>.png: n Fashion-MNIST-shaped images of three classes
 * (tu_class_images' blocks, classes 0-2 named by `names`). */
static void write_class_folder(const char *root, int n, uint64_t seed) {
    static const char *const names[3] = {"boot", "coat", "shirt"};
    char path[256];
    mkdir_in(root);
    for (int c = 0; c < 3; c++) {
        snprintf(path, sizeof path, "%s/%s", root, names[c]);
        mkdir_in(path);
    }
    uint8_t img[784], lab;
    tu_rng r = tu_rng_make(seed);
    for (int k = 0, made[3] = {0}; k < n;) {
        tu_class_images(img, &lab, 1, &r);
        if (lab > 2) continue;
        snprintf(path, sizeof path, "%s/%s/%03d.png", root, names[lab], made[lab]++);
        tu_write_png(tu_path(path), img, 28, 28, false);
        k++;
    }
}

START_TEST(cli_train_eval_predict) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_image_folder")) return;
    write_class_folder("train", 150, 5);
    write_class_folder("test", 45, 6);
    const char *ck = tu_path("m.ckpt");
    char data[600];
    snprintf(data, sizeof data, "--images %s --test-images %s", tu_path("train"), tu_path("test"));
    char *out = tu_run_expect(0, "%s train %s --hidden 32 --epochs 4 --batch-size 16 --save %s 2>&1", bin, data, ck);
    ck_assert_msg(strstr(out, "; 150 train / 45 test samples"), "%s", out);
    const double acc = tu_json_number(tu_last_line(out), "test_accuracy");
    ck_assert_msg(acc >= 0.9, "test accuracy %g: %s", acc, out);
    free(out);
    out = tu_run_expect(0, "%s eval mlp %s %s --hidden 32 --quiet", bin, ck, data);
    ck_assert_double_eq_tol(tu_json_number(tu_last_line(out), "test_accuracy"), acc, 1e-6);
    free(out);
    /* predict names the classes the folders had; no data flags needed */
    out = tu_run_expect(0, "%s predict mlp %s %s/coat/000.png --hidden 32 --top 2 --quiet", bin, ck, tu_path("test"));
    ck_assert_msg(strncmp(out, "0: class 1 coat (", 17) == 0 && strstr(out, "  top: 1 coat "), "%s", out);
    free(out);
    out = tu_run_expect(0, "%s predict mlp %s %s/shirt/000.png --hidden 32 --json --quiet", bin, ck, tu_path("test"));
    ck_assert_msg(strstr(out, "{\"index\":0,\"class\":2,\"name\":\"shirt\",\"probability\":"), "%s", out);
    free(out);
    /* --saliency: |dL/dx| is larger where the three classes' blocks are (tu_class_images: rows 4-9, columns
     * 1-16) than over the noise elsewhere, for an image of each class */
    static const char *const one[3] = {"boot", "coat", "shirt"};
    double sum[2] = {0, 0};
    int count[2] = {0, 0};
    for (int k = 0; k < 3; k++) {
        free(tu_run_expect(0, "%s predict mlp %s %s/%s/000.png --hidden 32 --saliency %s --quiet 2>&1", bin, ck,
                           tu_path("test"), one[k], tu_path("sal.png")));
        float *sal;
        int c, h, w;
        TU_OK(syn_png_read(tu_path("sal.png"), &sal, &c, &h, &w));
        ck_assert_msg(c == 1 && h == 32 && w == 32, "%dx%dx%d", c, h, w); /* one map, a 2-pixel border */
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                const int in_block = y >= 4 && y < 10 && x >= 1 && x < 17;
                sum[in_block] += sal[(y + 2) * 32 + x + 2];
                count[in_block]++;
            }
        free(sal);
    }
    const double inside = sum[1] / count[1], outside = sum[0] / count[0];
    /* 1.6 here; maps read transposed gave 1.16 */
    ck_assert_msg(inside > 1.25 * outside, "saliency: %g over the blocks, %g elsewhere", inside, outside);
    /* without a test folder: a split of the one folder (--test-fraction), the same with eval */
    out = tu_run_expect(0, "%s train --images %s --test-fraction 0.3 --hidden 32 --epochs 2 --save %s --quiet", bin,
                        tu_path("train"), ck);
    const double acc2 = tu_json_number(tu_last_line(out), "test_accuracy");
    free(out);
    out = tu_run_expect(0, "%s eval mlp %s --images %s --test-fraction 0.3 --hidden 32 --quiet", bin, ck,
                        tu_path("train"));
    ck_assert_double_eq_tol(tu_json_number(tu_last_line(out), "test_accuracy"), acc2, 1e-6);
    free(out);
    /* a model file (a small CNN for three classes) trains on the folders; one
     * for ten classes is refused for the folders' three */
    write_text("cnn3.cfg", "[net]\ninput = 1,28,28\nclasses = 3\n\n[conv]\nfilters = 4\nsize = 3\npad = same\n\n"
                           "[activation]\ntype = relu\n\n[maxpool]\nsize = 2\n\n[flatten]\n\n[dense]\nunits = 3\n");
    out = tu_run_expect(0, "%s train %s %s --epochs 2 --batch-size 16 --quiet", bin, tu_path("cnn3.cfg"), data);
    ck_assert_msg(tu_json_number(tu_last_line(out), "test_accuracy") >= 0.6, "%s", out);
    free(out);
    char cfg[512];
    out = tu_run_expect(1, "%s train %s %s --epochs 1 --quiet 2>&1", bin,
                        tu_source_path("models/fmnist_cnn.cfg", cfg, sizeof cfg), data);
    ck_assert_msg(strstr(out, "fmnist_cnn.cfg gives (1,10) per sample; the data set needs (1,3) (its classes)"), "%s",
                  out);
    free(out);
    static const tu_cli_case bad[] = {
        {2, "--images a --csv b --label y", "--csv and --images both name the data: give one"},
        {2, "--test-images a", "--test-images needs --images DIR (the training folder)"},
        {1, "--images /nonexistent-synapse", "/nonexistent-synapse: cannot open the folder"},
    };
    tu_cli_cases(bin, "train", bad, sizeof bad / sizeof *bad, NULL);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("image_folder");
    TCase *tc = tcase_create("folders");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, tu_dir_setup, tu_dir_teardown);
    tcase_add_test(tc, classes_files_and_order);
    tcase_add_test(tc, channels_convert);
    tcase_add_test(tc, errors_name_the_fault);
    tcase_add_test(tc, cli_train_eval_predict);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
