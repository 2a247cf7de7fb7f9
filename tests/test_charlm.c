/* The character-level language model: the fortunes corpus loader (which
 * files, in which order), training on a small repetitive text until the
 * bits per byte fall and greedy autocomplete continues the text, sampling
 * that is reproducible for a seed and restricted by top-k, save and load
 * (same completions), bad model files, and the charlm / complete commands. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

static char tmpdir[256];

static void make_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/syn_charlm_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Sorted by name; art, ascii-art, off, *.dat and *.u8 left out. */
START_TEST(fortunes_loader) {
    make_tmp();
    write_file(tmpdir, "zippy", "Z\n%\n");
    write_file(tmpdir, "art", "ART\n");
    write_file(tmpdir, "ascii-art", "ASCII\n");
    write_file(tmpdir, "off", "OFF\n");
    write_file(tmpdir, "computers", "C\n%\n");
    write_file(tmpdir, "computers.dat", "binary");
    write_file(tmpdir, "computers.u8", "C8\n");
    uint8_t *t;
    size_t n;
    TU_OK(syn_text_load_fortunes(tmpdir, &t, &n));
    ck_assert_uint_eq(n, 8);
    ck_assert(memcmp(t, "C\n%\nZ\n%\n", 8) == 0);
    free(t);
    /* dir NULL: $SYN_FORTUNES_DIR when set */
    setenv("SYN_FORTUNES_DIR", tmpdir, 1);
    syn_status s = syn_text_load_fortunes(NULL, &t, &n);
    unsetenv("SYN_FORTUNES_DIR");
    TU_OK(s);
    ck_assert(n == 8 && memcmp(t, "C\n%\nZ\n%\n", 8) == 0);
    free(t);
    rm_tmp();
    ck_assert_int_eq(syn_text_load_fortunes("/nonexistent/fortunes", &t, &n), SYN_ERR_IO);
    ck_assert_msg(strstr(syn_last_error(), "/nonexistent/fortunes"), "%s", syn_last_error());
}
END_TEST

/* A phrase repeated many times: after training, the bits per byte are small
 * and greedy completion reproduces the phrase. */
static const char phrase[] = "the cat sat on the mat. ";

static uint8_t *repeated(size_t *n) {
    size_t k = strlen(phrase), reps = 300;
    uint8_t *t = malloc(k * reps);
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < reps; i++) memcpy(t + i * k, phrase, k);
    *n = k * reps;
    return t;
}

static syn_charlm *trained(syn_rnn_mode mode, syn_charlm_result *res) {
    size_t n;
    uint8_t *t = repeated(&n);
    syn_charlm_config mc = {mode, 16, 64, 1, 0.0f};
    syn_charlm *m;
    TU_OK(syn_charlm_create(&mc, syn_cpu(), 3, &m));
    syn_charlm_train_config tc = {8, 24, 250, 1e-2f, 5.0f, 0, 0, 1, NULL, false, NULL};
    size_t nt = n - n / 10;
    TU_OK(syn_charlm_train(m, t, nt, t + nt, n - nt, &tc, res));
    free(t);
    return m;
}

START_TEST(learns_and_completes) {
    const syn_rnn_mode modes[2] = {SYN_RNN_LSTM, SYN_RNN_GRU};
    syn_charlm_result res;
    syn_charlm *m = trained(modes[_i], &res);
    ck_assert_int_eq(res.steps, 250);
    ck_assert_msg(res.val_bpb >= 0 && res.val_bpb < 0.3, "validation %.3f bits per byte (train %.3f)", res.val_bpb,
                  res.train_bpb);
    uint8_t out[32];
    syn_sampling greedy = {0};
    TU_OK(syn_charlm_generate(m, (const uint8_t *)"the cat s", 9, 20, &greedy, out));
    ck_assert_msg(memcmp(out, "at on the mat. the c", 20) == 0, "completion '%.20s'", (const char *)out);
    syn_charlm_free(m);
}
END_TEST

/* Sampling: the same seed gives the same bytes; top-k 1 is greedy. */
START_TEST(sampling_reproducible) {
    syn_charlm_config mc = {SYN_RNN_LSTM, 8, 16, 2, 0.0f};
    syn_charlm *m;
    TU_OK(syn_charlm_create(&mc, syn_cpu(), 11, &m));
    uint8_t a[64], b[64], c[64], g[64];
    syn_sampling s1 = {1.0f, 0, 5}, s2 = {1.0f, 0, 6}, top1 = {1.0f, 1, 5}, greedy = {0};
    TU_OK(syn_charlm_generate(m, (const uint8_t *)"ab", 2, 64, &s1, a));
    TU_OK(syn_charlm_generate(m, (const uint8_t *)"ab", 2, 64, &s1, b));
    ck_assert(memcmp(a, b, 64) == 0);
    TU_OK(syn_charlm_generate(m, (const uint8_t *)"ab", 2, 64, &s2, c));
    ck_assert_msg(memcmp(a, c, 64) != 0, "an untrained model sampled the same 64 bytes for two seeds");
    TU_OK(syn_charlm_generate(m, (const uint8_t *)"ab", 2, 64, &top1, a));
    TU_OK(syn_charlm_generate(m, (const uint8_t *)"ab", 2, 64, &greedy, g));
    ck_assert(memcmp(a, g, 64) == 0);
    /* an empty prompt works too */
    TU_OK(syn_charlm_generate(m, NULL, 0, 8, &greedy, g));
    syn_charlm_free(m);
}
END_TEST

START_TEST(save_load_and_bad_files) {
    make_tmp();
    syn_charlm_result res;
    syn_charlm *m = trained(SYN_RNN_LSTM, &res);
    char path[512];
    snprintf(path, sizeof path, "%s/lm.safetensors", tmpdir);
    TU_OK(syn_charlm_save(m, path));
    syn_charlm *l;
    TU_OK(syn_charlm_load(path, syn_cpu(), &l));
    syn_charlm_config c = syn_charlm_get_config(l);
    ck_assert_int_eq(c.mode, SYN_RNN_LSTM);
    ck_assert_int_eq(c.hidden, 64);
    ck_assert_int_eq(c.embed, 16);
    uint8_t a[40], b[40];
    syn_sampling sp = {0.7f, 5, 9};
    TU_OK(syn_charlm_generate(m, (const uint8_t *)"on the", 6, 40, &sp, a));
    TU_OK(syn_charlm_generate(l, (const uint8_t *)"on the", 6, 40, &sp, b));
    ck_assert(memcmp(a, b, 40) == 0);
    syn_charlm_free(l);
    /* a parameter file without the model's metadata */
    snprintf(path, sizeof path, "%s/params.safetensors", tmpdir);
    TU_OK(syn_params_save(syn_charlm_params(m), path));
    ck_assert_int_eq(syn_charlm_load(path, syn_cpu(), &l), SYN_ERR_FORMAT);
    ck_assert_msg(strstr(syn_last_error(), "not a character model"), "%s", syn_last_error());
    syn_charlm_free(m);
    rm_tmp();
}
END_TEST

/* The commands: train on a file, save, complete greedily. */
static int run(const char *cmd, char *out, size_t size) {
    char *o;
    int rc = tu_run_cmd(cmd, &o);
    snprintf(out, size, "%s", o);
    free(o);
    return rc;
}

/* A fresh temporary folder holding the repeated corpus as text.txt (its
 * path in data). */
static void write_corpus(char *data, size_t size) {
    make_tmp();
    size_t n;
    uint8_t *t = repeated(&n);
    snprintf(data, size, "%s/text.txt", tmpdir);
    FILE *f = fopen(data, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(t, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    free(t);
}

START_TEST(cli_charlm_and_complete) {
    char bin[512], cmd[2048], out[8192];
    const char *exe = tu_cli_path(bin, sizeof bin, "test_charlm");
    if (!exe) return;
    char data[512], model[512];
    write_corpus(data, sizeof data);
    snprintf(model, sizeof model, "%s/lm.safetensors", tmpdir);
    snprintf(cmd, sizeof cmd,
             "%s charlm --data %s --embed 16 --hidden 64 --layers 1 --batch-size 8 --seq 24 --steps 250 --lr 0.01 "
             "--eval-every 0 --save %s --sample 0 --quiet 2>&1",
             exe, data, model);
    ck_assert_msg(run(cmd, out, sizeof out) == 0, "%s\n%s", cmd, out);
    ck_assert_msg(strstr(out, "\"val_bpb\":") && strstr(out, "\"steps\":250"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s complete %s 'the cat s' -n 20 --greedy", exe, model);
    ck_assert_msg(run(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strncmp(out, "the cat sat on the mat. the c", 29) == 0, "completion: %s", out);
    snprintf(cmd, sizeof cmd, "%s complete %s/missing.safetensors 'x' 2>&1", exe, tmpdir);
    ck_assert_int_eq(run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "missing.safetensors"), "%s", out);
    rm_tmp();
}
END_TEST

/* The other cells through the CLI (GRU, ReLU RNN) with progress and a sample
 * printed, then complete's sampling options: the same seed the same text,
 * top-k 1 the greedy text; bad values with their messages. */
START_TEST(cli_cells_and_sampling) {
    char bin[512];
    const char *exe = tu_cli_path(bin, sizeof bin, "test_charlm");
    if (!exe) return;
    char data[512], model[512];
    write_corpus(data, sizeof data);
    snprintf(model, sizeof model, "%s/gru.safetensors", tmpdir);
    static const char *const cells[] = {"gru", "rnn_relu", "rnn"};
    for (int c = 0; c < 3; c++) {
        char *out = tu_run_expect(0,
                                  "%s charlm --data %s --cell %s --embed 8 --hidden 16 --layers 2 --dropout 0.1 "
                                  "--batch-size 4 --seq 12 --steps 6 --eval-every 3 --eval-bytes 200 --clip 0 "
                                  "--seed 4 --sample 12 %s%s 2>&1",
                                  exe, data, cells[c], c ? "" : "--save ", c ? "" : model);
        char head[64];
        snprintf(head, sizeof head, "; %s 2 x 16, embed 8; batch 4 x seq 12, 6 steps on cpu", c ? "rnn" : "gru");
        ck_assert_msg(strstr(out, head) && strstr(out, "sample (temperature 0.8): The "), "%s: %s", cells[c], out);
        ck_assert_int_eq((int)tu_json_number(tu_last_line(out), "steps"), 6);
        free(out);
    }
    char *a = tu_run_expect(0, "%s complete %s 'the ' -n 24 --temperature 0.7 --seed 5", exe, model);
    char *b = tu_run_expect(0, "%s complete %s 'the ' -n 24 --temperature 0.7 --seed 5", exe, model);
    ck_assert_str_eq(a, b);
    free(a), free(b);
    a = tu_run_expect(0, "%s complete %s 'the ' -n 24 --top-k 1 --seed 9", exe, model);
    b = tu_run_expect(0, "%s complete %s 'the ' -n 24 --greedy", exe, model);
    ck_assert_str_eq(a, b);
    free(a), free(b);
    static const tu_cli_case bad[] = {
        {2, "charlm --cell cnn", "--cell: 'cnn' is not lstm, gru or rnn"},
        {2, "charlm --steps x", "bad number 'x'"},
        {2, "charlm --lr -1", "bad value '-1'"},
        {2, "charlm --bogus", "unknown or incomplete option '--bogus'"},
        {2, "complete @ 'x' --temperature -1", "--temperature: bad value '-1'"},
        {2, "complete @ 'x' --top-k 300", "--top-k: bad value '300'"},
        {2, "complete @ 'x' --seed -2", "--seed: bad value '-2'"},
        {2, "complete @ 'x' --bogus", "unknown or incomplete option '--bogus'"},
    };
    tu_cli_cases(exe, "", bad, sizeof bad / sizeof *bad, model);
    rm_tmp();
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("charlm");
    TCase *t = tcase_create("charlm");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, fortunes_loader);
    tcase_add_loop_test(t, learns_and_completes, 0, 2);
    tcase_add_test(t, sampling_reproducible);
    tcase_add_test(t, save_load_and_bad_files);
    tcase_add_test(t, cli_charlm_and_complete);
    tcase_add_test(t, cli_cells_and_sampling);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(suite()); }
