/* `synapse gan` and `synapse sample` through the CLI: the MLP GAN's short
 * run (its JSON line, log.csv, the scatter plot, the generator file), sample's
 * seeds, DCGAN-28 with the score on a tiny Fashion-MNIST-shaped set (the
 * classifier saved and loaded), DCGAN-28 and DCGAN-64 on image folders
 * (--images), and bad options and files with their messages and exit codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"

/* A file's bytes (malloc'd) and size; NULL if it cannot be read. */
static uint8_t *slurp(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)*size + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq((long)fread(b, 1, (size_t)*size, f), *size);
    fclose(f);
    return b;
}

/* path is a PNG of width x height (its IHDR). */
static void assert_png(const char *path, unsigned width, unsigned height) {
    long n;
    uint8_t *b = slurp(path, &n);
    ck_assert_msg(b != NULL, "%s was not written", path);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    ck_assert_msg(n > 33 && memcmp(b, sig, 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0, "%s: not a PNG", path);
    unsigned w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
    unsigned h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    ck_assert_msg(w == width && h == height, "%s: %ux%u, want %ux%u", path, w, h, width, height);
    free(b);
}

/* The JSON line on stdout must name model, device, epochs and steps. */
static void assert_run_line(const char *json, const char *model, int epochs, int steps) {
    char want[64];
    snprintf(want, sizeof want, "{\"model\":\"%s\",\"device\":\"cpu\",", model);
    ck_assert_msg(strncmp(json, want, strlen(want)) == 0 && json[strlen(json) - 1] == '}', "line: %s", json);
    ck_assert_int_eq((int)tu_json_number(json, "epochs"), epochs);
    ck_assert_int_eq((int)tu_json_number(json, "steps"), steps);
    ck_assert_msg(isfinite(tu_json_number(json, "d_loss")) && isfinite(tu_json_number(json, "g_loss")), "%s", json);
    double dx = tu_json_number(json, "d_x"), dgz = tu_json_number(json, "d_g_z");
    ck_assert_msg(dx > 0 && dx < 1 && dgz > 0 && dgz < 1, "D's outputs are probabilities: %s", json);
}

/* log.csv: the header, then one row per step, numbered from 1. */
static void assert_log(const char *path, int steps) {
    long n;
    char *b = (char *)slurp(path, &n);
    ck_assert_msg(b != NULL, "%s was not written", path);
    b[n] = '\0';
    ck_assert_msg(strncmp(b, "step,d_loss,g_loss,d_x,d_g_z\n", 29) == 0, "%s: header: %.40s", path, b);
    int rows = 0;
    for (char *line = strchr(b, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        double v[4];
        long step;
        ck_assert_msg(sscanf(line, "%ld,%lf,%lf,%lf,%lf", &step, &v[0], &v[1], &v[2], &v[3]) == 5 && step == rows + 1,
                      "%s: row %d: %.60s", path, rows + 1, line);
        rows++;
    }
    ck_assert_int_eq(rows, steps);
    free(b);
}

static bool same_bytes(const char *a, const char *b) {
    long na, nb;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    ck_assert(x && y);
    bool same = na == nb && memcmp(x, y, (size_t)na) == 0;
    free(x), free(y);
    return same;
}

/* The MLP GAN on its ring: a short run's files and line, then `synapse
 * sample` from its generator, the same seed giving the same picture. */
START_TEST(cli_gan_mlp_and_sample) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_gan_cli")) return;
    const char *out = tu_path("run");
    char *o = tu_run_expect(0, "%s gan --model mlp --epochs 3 --max-steps 25 --batch-size 64 --seed 5 --out %s --quiet",
                            bin, out);
    assert_run_line(tu_last_line(o), "mlp", 1, 25); /* 400 steps an epoch: stopped in the first */
    free(o);
    assert_log(tu_path("run/log.csv"), 25);
    assert_png(tu_path("run/samples_epoch1.png"), 256 + 4, 256 + 4); /* a scatter plot: one image, a 2-pixel border */
    ck_assert_int_ne(access(tu_path("run/samples_epoch2.png"), F_OK), 0);
    const char *gen = tu_path("run/generator.safetensors");
    for (int k = 0; k < 3; k++)
        free(tu_run_expect(0, "%s sample --model mlp %s -n 500 --seed %d --out %s/s%d.png 2>&1", bin, gen, k ? 7 : 8,
                           tu_dir, k));
    assert_png(tu_path("s0.png"), 260, 260);
    ck_assert_msg(same_bytes(tu_path("s1.png"), tu_path("s2.png")), "seed 7 twice: two pictures");
    ck_assert_msg(!same_bytes(tu_path("s0.png"), tu_path("s1.png")), "seeds 8 and 7: the same picture");
    /* the MLP's generator is not a DCGAN's */
    o = tu_run_expect(1, "%s sample --model dcgan28 %s --out %s/x.png 2>&1", bin, gen, tu_dir);
    ck_assert_msg(strstr(o, gen) != NULL, "the message names the file: %s", o);
    free(o);
    ck_assert_int_ne(access(tu_path("x.png"), F_OK), 0);
}
END_TEST

/* DCGAN-28 on a tiny Fashion-MNIST-shaped set, scored: two epochs, a sample
 * grid each, the classifier saved and then loaded by a second run (same
 * untrained score), and `synapse sample`'s grid geometry. */
START_TEST(cli_gan_dcgan28_scored) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_gan_cli")) return;
    enum { NTR = 64, NTE = 40 };
    static uint8_t tr[NTR * 784], te[NTE * 784], ltr[NTR], lte[NTE];
    tu_write_fmnist_like(tr, ltr, NTR, te, lte, NTE, 28, true);
    const char *flags = "--epochs 2 --batch-size 16 --score --score-samples 48 --scorer-epochs 1";
    char *o = tu_run_expect(0, "%s gan --data-dir %s %s --scorer %s/scorer.safetensors --out %s/a --quiet", bin, tu_dir,
                            flags, tu_dir, tu_dir);
    const char *json = tu_last_line(o);
    assert_run_line(json, "dcgan28", 2, 8);
    double is0 = tu_json_number(json, "is_initial"), is = tu_json_number(json, "is"),
           mmp = tu_json_number(json, "mean_max_prob");
    ck_assert_msg(is0 >= 1 - 1e-6 && is0 <= 10 && is >= 1 - 1e-6 && is <= 10 && mmp >= 0.1 && mmp <= 1, "%s", json);
    free(o);
    assert_log(tu_path("a/log.csv"), 8);
    for (int e = 1; e <= 2; e++) {
        char name[64];
        snprintf(name, sizeof name, "a/samples_epoch%d.png", e);
        assert_png(tu_path(name), 8 * 28 + 9 * 2, 8 * 28 + 9 * 2); /* the 64 fixed samples, 8 a row */
    }
    ck_assert_int_eq(access(tu_path("scorer.safetensors"), R_OK), 0);
    o = tu_run_expect(0, "%s gan --data-dir %s %s --scorer %s/scorer.safetensors --out %s/b 2>&1", bin, tu_dir, flags,
                      tu_dir, tu_dir);
    ck_assert_msg(strstr(o, "score classifier loaded from") != NULL, "%s", o);
    ck_assert_msg(strstr(o, "epoch 2/2") != NULL, "progress lines on stderr: %s", o);
    ck_assert_double_eq_tol(tu_json_number(tu_last_line(o), "is_initial"), is0, 1e-4);
    free(o);
    free(tu_run_expect(0, "%s sample %s/a/generator.safetensors -n 10 --cols 5 --out %s/g.png 2>&1", bin, tu_dir,
                       tu_dir));
    assert_png(tu_path("g.png"), 5 * 28 + 6 * 2, 2 * 28 + 3 * 2);
}
END_TEST

/* Bad options exit 2 with the usage's line, bad data or files 1 with the fault. */
START_TEST(cli_gan_errors) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_gan_cli")) return;
    static const tu_cli_case cases[] = { /* '@': the test's folder */
        {2, "gan --model bogus", "unknown --model 'bogus'"},
        {2, "gan --model mlp --score", "it needs --model dcgan28, not mlp"},
        {2, "gan --model dcgan64", "--model dcgan64 needs --data-dir"},
        {2, "gan --epochs 0", "--epochs must be >= 1, got '0'"},
        {2, "gan --beta1 1", "--beta1 must be in [0, 1), got '1'"},
        {1, "gan --device tpu", "unknown device 'tpu' (expected cpu, cuda or cuda:N)"},
        {1, "gan --model mlp --batch-size 30000 --out @/o", "--batch-size 30000 exceeds the 25600 training samples"},
        {1, "gan --data-dir @/none --out @/o", "@/none/train-images-idx3-ubyte.gz"},
        {1, "gan --model mlp --out /proc/synapse-gan", "cannot make the folder /proc/synapse-gan"},
        {2, "sample", "no generator file given"},
        {2, "sample a b", "unexpected argument 'b'"},
        {2, "sample -n 0 a", "-n must be in 1..4096, got '0'"},
        {1, "sample @/missing.safetensors", "@/missing.safetensors"},
    };
    tu_cli_cases(bin, "", cases, sizeof cases / sizeof *cases, tu_dir);
}
END_TEST

/* dir/all/<k>.png: n random w x w images (RGB or grey). */
static void write_folder(const char *dir, int n, int w, bool rgb, uint64_t seed) {
    char path[256];
    snprintf(path, sizeof path, "%s", tu_path(dir));
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/all", tu_path(dir));
    ck_assert_int_eq(mkdir(path, 0755), 0);
    static uint8_t pix[64 * 64 * 3];
    tu_rng r = tu_rng_make(seed);
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < w * w * (rgb ? 3 : 1); i++) pix[i] = (uint8_t)(tu_next(&r) & 0xff);
        snprintf(path, sizeof path, "%s/all/%02d.png", tu_path(dir), k);
        tu_write_png(path, pix, w, w, rgb);
    }
}

/* --images: DCGAN-28 on a folder of 28x28 images (RGB read as grey), DCGAN-64
 * on one of 32x32 (doubled); a folder of another size, the MLP GAN and the
 * score refused. */
START_TEST(cli_gan_images) {
    char bin[512];
    if (!tu_cli_path(bin, sizeof bin, "test_gan_cli")) return;
    write_folder("f28", 24, 28, true, 1);
    char *o = tu_run_expect(0, "%s gan --images %s --epochs 2 --batch-size 8 --max-steps 4 --out %s --quiet", bin,
                            tu_path("f28"), tu_path("o28"));
    assert_run_line(tu_last_line(o), "dcgan28", 2, 4); /* 3 whole batches an epoch */
    free(o);
    assert_png(tu_path("o28/samples_epoch2.png"), 8 * 28 + 9 * 2, 8 * 28 + 9 * 2);
    write_folder("f32", 8, 32, true, 2);
    o = tu_run_expect(0, "%s gan --model dcgan64 --images %s --batch-size 4 --max-steps 1 --out %s --quiet", bin,
                      tu_path("f32"), tu_path("o64"));
    assert_run_line(tu_last_line(o), "dcgan64", 1, 1);
    free(o);
    assert_png(tu_path("o64/samples_epoch1.png"), 8 * 64 + 9 * 2, 8 * 64 + 9 * 2);
    static const tu_cli_case bad[] = { /* '@': the test's folder */
        {1, "gan --images @/f32 --out @/o", "@/f32: images of (1,32,32); --model dcgan28 takes 28x28 (read as grey)"},
        {2, "gan --model mlp --images @/f28", "--images trains a DCGAN (dcgan28 or dcgan64)"},
        {2, "gan --images @/f28 --score", "--score rates Fashion-MNIST-like samples by its classes: not with --images"},
    };
    tu_cli_cases(bin, "", bad, sizeof bad / sizeof *bad, tu_dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("gan_cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, tu_dir_setup, tu_dir_teardown);
    tcase_add_test(tc, cli_gan_mlp_and_sample);
    tcase_add_test(tc, cli_gan_dcgan28_scored);
    tcase_add_test(tc, cli_gan_errors);
    tcase_add_test(tc, cli_gan_images);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
