/* Replays the fuzz targets' seed corpora (tests/fuzz/<format>/) in the normal
 * build: every file goes through its target's entry point, which aborts on a
 * broken invariant; OK and error statuses both pass. Every folder under
 * tests/fuzz/ must have its target in `targets` below. */
#define _GNU_SOURCE /* memfd_create, for fuzz_idx.c */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "testutil.h"

#define SYN_FUZZ_REPLAY
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_idx.c"
#include "fuzz/fuzz_csv.c"
#include "fuzz/fuzz_model.c"

/* The hook: one row per fuzz target, its corpus folder under tests/fuzz/ and
 * its entry point (tests/fuzz/fuzz_<dir>.c, included above like
 * fuzz_safetensors.c). */
static const struct {
    const char *dir;
    int (*one)(const uint8_t *data, size_t size);
} targets[] = {
    {"safetensors", syn_fuzz_safetensors},
    {"idx", syn_fuzz_idx},
    {"csv", syn_fuzz_csv},
    {"model", syn_fuzz_model},
};
enum { N_TARGETS = sizeof targets / sizeof *targets };

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
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

START_TEST(replay) {
    char root[512], dir[1024], path[2048];
    tu_source_path("tests/fuzz", root, sizeof root);
    snprintf(dir, sizeof dir, "%s/%s", root, targets[_i].dir);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no corpus folder %s", dir);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        unsigned char *data = slurp(path, &len);
        targets[_i].one(data, len);
        /* and every prefix of a small file: truncations at each byte */
        for (size_t k = 0; len <= 4096 && k < len; k++) targets[_i].one(data, k);
        free(data);
        files++;
    }
    closedir(d);
    ck_assert_msg(files > 0, "corpus %s is empty", dir);
}
END_TEST

START_TEST(every_corpus_has_a_target) {
    char root[512], path[1024];
    tu_source_path("tests/fuzz", root, sizeof root);
    DIR *d = opendir(root);
    ck_assert_msg(d != NULL, "no folder %s", root);
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        int k = 0;
        while (k < N_TARGETS && strcmp(targets[k].dir, e->d_name) != 0) k++;
        ck_assert_msg(k < N_TARGETS, "tests/fuzz/%s/ has no entry in test_fuzz_corpus.c's targets[]", e->d_name);
    }
    closedir(d);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("fuzz_corpus");
    TCase *t = tcase_create("replay");
    tcase_add_loop_test(t, replay, 0, N_TARGETS);
    tcase_add_test(t, every_corpus_has_a_target);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(suite()); }
