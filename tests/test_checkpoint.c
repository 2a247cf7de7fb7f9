/* Checkpoints: weights + optimizer state + info round trip, resuming syn_fit
 * from a checkpoint gives bit-identical parameters to a run never stopped
 * (every optimizer, with dropout, clipping, warm-up and early-stopping state),
 * load errors, a SIGKILL in the middle of a write leaving the previous file
 * loadable, and `synapse train --save/--resume` and `synapse eval`. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"




/* ---- a small classifier ------------------------------------------------------------ */

typedef struct {
    syn_params *p;
    syn_graph *g;
    syn_optim *o;
    syn_model m;
} net;

/* x: (16, 5) -> linear 24 -> relu -> dropout 0.3 -> linear 3; cross-entropy. */
static void net_make(net *n, uint64_t init_seed, const syn_optim_config *oc) {
    memset(n, 0, sizeof *n);
    TU_OK(syn_params_create(syn_cpu(), init_seed, &n->p));
    TU_OK(syn_graph_create(n->p, &n->g));
    syn_graph *g = n->g;
    n->m.graph = g;
    n->m.x = syn_input(g, "x", SYN_F32, syn_shape2(16, 5));
    n->m.y = syn_input(g, "y", SYN_I32, syn_shape1(16));
    int64_t hidden[1] = {24};
    n->m.logits = syn_mlp(g, n->m.x, hidden, 1, 3, SYN_ACT_RELU, 0.3f);
    n->m.loss = syn_cross_entropy(g, n->m.logits, n->m.y);
    TU_OK(syn_graph_status(g));
    TU_OK(syn_graph_keep(g, n->m.logits));
    TU_OK(syn_graph_compile(g, syn_cpu(), NULL));
    TU_OK(syn_optim_create(n->p, oc, &n->o));
}

static void net_free(net *n) {
    syn_optim_free(n->o);
    syn_graph_free(n->g);
    syn_params_free(n->p);
}

/* Every parameter's values, concatenated (malloc'd). */
static float *params_dump(syn_params *p, int64_t *count) {
    int64_t total = syn_params_numel(p), at = 0;
    float *v = malloc((size_t)total * sizeof(float));
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < syn_params_count(p); i++) {
        syn_tensor *t;
        TU_OK(syn_params_get(p, i, NULL, &t, NULL));
        TU_OK(syn_tensor_read(t, v + at, syn_tensor_bytes(t)));
        at += syn_tensor_numel(t);
    }
    *count = total;
    return v;
}

static syn_fit_config fit_config(int epochs) {
    syn_fit_config c;
    memset(&c, 0, sizeof c);
    c.epochs = epochs;
    c.batch_size = 16; /* 200 rows: 12 full batches and one of 8 */
    c.seed = 5;
    c.clip_norm = 1.0f;
    c.patience = 50;   /* kept state, never triggered */
    c.schedule.kind = SYN_SCHED_CONSTANT;
    c.schedule.warmup_steps = 30; /* spans the checkpoint: the step count matters */
    c.progress = SYN_PROGRESS_OFF;
    return c;
}

/* on_epoch: a checkpoint after epoch `at`, and the state it was given. */
typedef struct {
    const char *path;
    net *n;
    int at;
    syn_fit_state st;
} saver;

static syn_status save_at(void *user, const syn_fit_state *st) {
    saver *s = user;
    if (st->epoch != s->at) return SYN_OK;
    s->st = *st;
    syn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.model, sizeof info.model, "mlp 5-24-3 relu dropout 0.3");
    info.epoch = st->epoch;
    info.step = st->step;
    info.seed = 5;
    info.rng_counter = st->rng_counter;
    info.best_loss = st->best_loss;
    info.stale_epochs = st->stale;
    return syn_checkpoint_save(s->path, s->n->p, s->n->o, &info);
}

static const struct {
    syn_optim_kind kind;
    float momentum;
    const char *state;
} optims[] = {
    {SYN_OPTIM_ADAM, 0.0f, "exp_avg_sq"},
    {SYN_OPTIM_ADAMW, 0.0f, "exp_avg"},
    {SYN_OPTIM_SGD, 0.9f, "momentum_buffer"},
    {SYN_OPTIM_RMSPROP, 0.0f, "square_avg"},
};

START_TEST(resume_is_bit_identical) {
    syn_optim_config oc = syn_optim_defaults(optims[_i].kind);
    oc.momentum = optims[_i].momentum;
    oc.lr = 0.01f;
    syn_dataset *train = tu_dataset_3class(200, 1), *test = tu_dataset_3class(50, 2);
    enum { EPOCHS = 4, AT = 2 };

    /* never stopped */
    net a;
    net_make(&a, 11, &oc);
    syn_fit_config fc = fit_config(EPOCHS);
    syn_fit_result ra;
    TU_OK(syn_fit(&a.m, a.o, train, test, &fc, &ra));
    int64_t na;
    float *va = params_dump(a.p, &na);

    /* stopped after epoch AT with a checkpoint */
    const char *path = tu_path("run.safetensors");
    net b;
    net_make(&b, 11, &oc);
    saver sv = {path, &b, AT, {0}};
    fc = fit_config(AT);
    fc.on_epoch = save_at;
    fc.user = &sv;
    syn_fit_result rb;
    TU_OK(syn_fit(&b.m, b.o, train, test, &fc, &rb));
    ck_assert_int_eq(sv.st.epoch, AT);
    ck_assert_int_eq(sv.st.step, AT * 13);
    ck_assert_uint_gt(sv.st.rng_counter, 0); /* dropout drew numbers */

    /* the file: the optimizer's state under PyTorch's names */
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(path, &f));
    char name[128];
    snprintf(name, sizeof name, "optim.linear0.weight.%s", optims[_i].state);
    syn_shape sh;
    TU_OK(syn_safetensors_find(f, name, NULL, &sh, NULL, NULL));
    ck_assert_int_eq(sh.ndim, 2);
    const void *d;
    syn_dtype dt;
    TU_OK(syn_safetensors_find(f, "optim.linear1.bias.step", &dt, &sh, &d, NULL));
    ck_assert_int_eq(dt, SYN_I64);
    ck_assert_int_eq(*(const int64_t *)d, AT * 13);
    ck_assert_str_eq(syn_safetensors_metadata(f, "synapse.version"), syn_version());
    ck_assert_str_eq(syn_safetensors_metadata(f, "optim.kind"), syn_optim_kind_name(oc.kind));
    ck_assert_ptr_nonnull(syn_safetensors_metadata(f, "optim.config"));
    syn_safetensors_close(f);

    /* a fresh model (other initial weights) resumed from the file */
    net c;
    net_make(&c, 999, &oc);
    syn_checkpoint_info info;
    TU_OK(syn_checkpoint_load(path, c.p, c.o, &info));
    ck_assert_str_eq(info.model, "mlp 5-24-3 relu dropout 0.3");
    ck_assert_int_eq(info.epoch, AT);
    ck_assert_int_eq(info.step, sv.st.step);
    ck_assert_uint_eq(info.seed, 5);
    ck_assert_uint_eq(info.rng_counter, sv.st.rng_counter);
    ck_assert_float_eq(info.best_loss, sv.st.best_loss);
    ck_assert_int_eq(info.stale_epochs, sv.st.stale);
    ck_assert_int_eq(syn_optim_steps(c.o), AT * 13);
    syn_fit_state rs = {(int)info.epoch, info.step, info.rng_counter, info.best_loss, (int)info.stale_epochs, NULL};
    fc = fit_config(EPOCHS);
    fc.resume = &rs;
    syn_fit_result rc;
    TU_OK(syn_fit(&c.m, c.o, train, test, &fc, &rc));
    ck_assert_int_eq(rc.epochs_run, EPOCHS);
    int64_t nc;
    float *vc = params_dump(c.p, &nc);
    ck_assert_int_eq(na, nc);
    ck_assert_msg(memcmp(va, vc, (size_t)na * sizeof(float)) == 0, "%s: resumed parameters differ",
                  syn_optim_kind_name(oc.kind));
    ck_assert_msg(memcmp(&ra.train_loss, &rc.train_loss, sizeof(float)) == 0 &&
                      memcmp(&ra.test_loss, &rc.test_loss, sizeof(float)) == 0,
                  "losses differ: %.9g/%.9g vs %.9g/%.9g", ra.train_loss, ra.test_loss, rc.train_loss, rc.test_loss);
    ck_assert_int_eq(syn_optim_steps(c.o), syn_optim_steps(a.o));

    /* the same without the optimizer's state: not identical (the check can fail) */
    net e;
    net_make(&e, 999, &oc);
    TU_OK(syn_checkpoint_load(path, e.p, NULL, NULL));
    TU_OK(syn_fit(&e.m, e.o, train, test, &fc, &rc));
    float *ve = params_dump(e.p, &nc);
    ck_assert_msg(memcmp(va, ve, (size_t)na * sizeof(float)) != 0, "optimizer state made no difference");

    free(va);
    free(vc);
    free(ve);
    net_free(&a);
    net_free(&b);
    net_free(&c);
    net_free(&e);
    syn_dataset_free(train);
    syn_dataset_free(test);
}
END_TEST

/* A writer holding p's parameters (zeros) and SGD's metadata, for
 * hand-made optimizer tensors. */
static syn_safetensors_writer *sgd_writer(syn_params *p) {
    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    for (int i = 0; i < syn_params_count(p); i++) {
        const char *name;
        syn_tensor *t;
        TU_OK(syn_params_get(p, i, &name, &t, NULL));
        float *v = calloc((size_t)syn_tensor_numel(t) + 1, sizeof(float));
        TU_OK(syn_safetensors_add(w, name, SYN_F32, syn_tensor_shape(t), v));
        free(v);
    }
    TU_OK(syn_safetensors_set_metadata(w, "optim.kind", "sgd"));
    TU_OK(syn_safetensors_set_metadata(w, "optim.steps", "1"));
    return w;
}

START_TEST(load_errors) {
    syn_optim_config adam = syn_optim_defaults(SYN_OPTIM_ADAM);
    syn_optim_config sgd = syn_optim_defaults(SYN_OPTIM_SGD);
    syn_dataset *train = tu_dataset_3class(40, 3);
    net a;
    net_make(&a, 1, &adam);
    syn_fit_config fc = fit_config(1);
    fc.schedule.warmup_steps = 0;
    syn_fit_result r;
    TU_OK(syn_fit(&a.m, a.o, train, NULL, &fc, &r));
    syn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    strcpy(info.model, "m");
    info.best_loss = INFINITY;
    const char *path = tu_path("a.safetensors");
    TU_OK(syn_checkpoint_save(path, a.p, a.o, &info));
    syn_checkpoint_info back;
    net b;
    net_make(&b, 2, &sgd);
    ck_assert_int_eq(syn_checkpoint_load(path, b.p, b.o, &back), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "optimizer is adam, this one is sgd"));
    TU_OK(syn_checkpoint_load(path, b.p, NULL, &back)); /* weights only */
    ck_assert(isinf(back.best_loss));
    ck_assert_str_eq(back.model, "m");

    /* a checkpoint without optimizer state cannot fill an optimizer */
    const char *nopt = tu_path("noopt.safetensors");
    TU_OK(syn_checkpoint_save(nopt, a.p, NULL, &info));
    ck_assert_int_eq(syn_checkpoint_load(nopt, a.p, a.o, NULL), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "no optimizer state"));
    /* a parameter file has no info */
    const char *pf = tu_path("params.safetensors");
    TU_OK(syn_params_save(a.p, pf));
    ck_assert_int_eq(syn_checkpoint_load(pf, a.p, NULL, &back), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "not a Synapse checkpoint"));
    TU_OK(syn_checkpoint_load(pf, a.p, NULL, NULL));
    /* the optimizer of another parameter set */
    ck_assert_int_eq(syn_checkpoint_save(path, b.p, a.o, &info), SYN_ERR_ARG);
    ck_assert_int_eq(syn_checkpoint_load(path, b.p, a.o, NULL), SYN_ERR_ARG);

    /* optimizer tensors that do not fit */
    syn_safetensors_writer *w = sgd_writer(a.p);
    float z[3] = {0};
    TU_OK(syn_safetensors_add(w, "optim.linear1.bias.momentum_buffer", SYN_F32, syn_shape1(3), z));
    const char *bad = tu_path("bad.safetensors");
    TU_OK(syn_safetensors_write(w, bad));
    ck_assert_int_eq(syn_checkpoint_load(bad, b.p, b.o, NULL), SYN_ERR_FORMAT); /* sgd without momentum */
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "without momentum keeps no 'momentum_buffer'"));
    syn_safetensors_writer_free(w);

    /* the wrong shape of optimizer state, and bad info fields */
    sgd.momentum = 0.9f;
    net c;
    net_make(&c, 3, &sgd);
    w = sgd_writer(a.p);
    TU_OK(syn_safetensors_add(w, "optim.linear1.bias.momentum_buffer", SYN_F32, syn_shape1(2), z));
    TU_OK(syn_safetensors_write(w, bad));
    ck_assert_int_eq(syn_checkpoint_load(bad, c.p, c.o, NULL), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "is f32 (2) in the file but the parameter is f32 (3)"));
    syn_safetensors_writer_free(w);
    w = sgd_writer(a.p);
    TU_OK(syn_safetensors_add(w, "optim.linear1.bias.momentum_buffer", SYN_F32, syn_shape1(3), z));
    TU_OK(syn_safetensors_write(w, bad));
    ck_assert_int_eq(syn_checkpoint_load(bad, c.p, c.o, NULL), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "without its step count 'optim.linear1.bias.step'"));
    syn_safetensors_writer_free(w);
    w = sgd_writer(a.p);
    TU_OK(syn_safetensors_add(w, "optim.nosuch.weight.momentum_buffer", SYN_F32, syn_shape1(3), z));
    TU_OK(syn_safetensors_write(w, bad));
    ck_assert_int_eq(syn_checkpoint_load(bad, c.p, c.o, NULL), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "'optim.nosuch.weight.momentum_buffer' names no parameter"));
    TU_OK(syn_safetensors_set_metadata(w, "model", "m"));
    TU_OK(syn_safetensors_set_metadata(w, "epoch", "-1"));
    TU_OK(syn_safetensors_write(w, bad));
    ck_assert_int_eq(syn_checkpoint_load(bad, c.p, NULL, &back), SYN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "'epoch' is '-1'"));
    syn_safetensors_writer_free(w);

    net_free(&a);
    net_free(&b);
    net_free(&c);
    syn_dataset_free(train);
}
END_TEST

/* ---- kill -9 in the middle of a write ------------------------------------------------ */

enum { BIG_ROWS = 2048, BIG_COLS = 2048 }; /* 16 MiB of weights per checkpoint */

/* The child: writes checkpoints with every weight = k, k = 0, 1, 2 ...,
 * telling the parent once the first is complete. Never returns. */
static void writer_child(const char *path, int ready_fd) {
    syn_params *p;
    syn_init zero = {SYN_INIT_ZEROS, 0, 0, 0};
    syn_tensor *t;
    if (syn_params_create(syn_cpu(), 1, &p) != SYN_OK ||
        syn_params_add(p, "big.weight", syn_shape2(BIG_ROWS, BIG_COLS), &zero, &t) != SYN_OK)
        _exit(3);
    float *host = malloc((size_t)BIG_ROWS * BIG_COLS * sizeof(float));
    if (!host) _exit(3);
    syn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    for (int64_t k = 0;; k++) {
        for (size_t i = 0; i < (size_t)BIG_ROWS * BIG_COLS; i++) host[i] = (float)k;
        info.epoch = k;
        if (syn_tensor_write(t, host, (size_t)BIG_ROWS * BIG_COLS * sizeof(float)) != SYN_OK ||
            syn_checkpoint_save(path, p, NULL, &info) != SYN_OK)
            _exit(4);
        if (k == 0 && write(ready_fd, "r", 1) != 1) _exit(5);
    }
}

START_TEST(kill_during_write) {
    const char *path = tu_path("big.safetensors");
    enum { ROUNDS = 6 };
    int temps_seen = 0;
    tu_rng r = tu_rng_make(77);
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            writer_child(path, fds[1]);
        }
        close(fds[1]);
        char c;
        ck_assert_int_eq(read(fds[0], &c, 1), 1); /* the first checkpoint is complete */
        close(fds[0]);
        struct timespec ts = {0, (long)(10 + tu_next(&r) % 150) * 1000000L};
        nanosleep(&ts, NULL);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the writer ended on its own (status %d)", st);

        /* the file under the final name is a complete checkpoint: one k throughout */
        syn_safetensors *f;
        TU_OK(syn_safetensors_open(path, &f));
        const void *d;
        size_t bytes;
        TU_OK(syn_safetensors_find(f, "big.weight", NULL, NULL, &d, &bytes));
        ck_assert_uint_eq(bytes, (size_t)BIG_ROWS * BIG_COLS * sizeof(float));
        const float *v = d;
        const char *ep = syn_safetensors_metadata(f, "epoch");
        ck_assert_ptr_nonnull(ep);
        float k = (float)atof(ep);
        for (size_t i = 0; i < (size_t)BIG_ROWS * BIG_COLS; i += 4093)
            ck_assert_msg(v[i] == k, "element %zu is %g in the checkpoint of step %g", i, v[i], k);
        ck_assert_float_eq(v[(size_t)BIG_ROWS * BIG_COLS - 1], k);
        syn_safetensors_close(f);

        /* nothing else but hidden temporaries ".big.safetensors.XXXXXX" */
        DIR *dir = opendir(tu_dir);
        ck_assert_ptr_nonnull(dir);
        char tmp[512];
        for (struct dirent *e; (e = readdir(dir));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "big.safetensors")) continue;
            ck_assert_msg(strncmp(e->d_name, ".big.safetensors.", 17) == 0 && strlen(e->d_name) == 23,
                          "unexpected file %s", e->d_name);
            temps_seen++;
            unlink((snprintf(tmp, sizeof tmp, "%s/%s", tu_dir, e->d_name), tmp));
        }
        closedir(dir);
    }
    fprintf(stderr, "test_checkpoint: kill_during_write: %d of %d kills interrupted a write (temporary file left)\n",
            temps_seen, ROUNDS);
}
END_TEST

/* ---- the CLI ------------------------------------------------------------------------- */




/* The text of "key":value in a JSON line, into buf. */
static const char *json_field(const char *json, const char *key, char *buf, size_t size) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    ck_assert_msg(p != NULL, "'%s' lacks %s", json, key);
    p += strlen(pat);
    size_t n = strcspn(p, ",}");
    ck_assert_uint_lt(n, size);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

START_TEST(cli_resume) {
    char bin[512], cmd[2048], a[64], b[64];
    if (!tu_cli_path(bin, sizeof bin, "test_checkpoint")) return;
    /* a CSV table: 3 classes by a linear score of 4 features */
    const char *csv = tu_path("t.csv");
    FILE *f = fopen(csv, "w");
    ck_assert_ptr_nonnull(f);
    fputs("a,b,c,d,y\n", f);
    tu_rng r = tu_rng_make(5);
    for (int i = 0; i < 300; i++) {
        float x[4];
        tu_fill(&r, x, 4, -1.0f, 1.0f);
        float s = x[0] - x[1] + 0.5f * x[2];
        fprintf(f, "%.5f,%.5f,%.5f,%.5f,%d\n", x[0], x[1], x[2], x[3], s < -0.3f ? 0 : s < 0.3f ? 1 : 2);
    }
    ck_assert_int_eq(fclose(f), 0);
    char flags[1024];
    snprintf(flags, sizeof flags, "--csv %s --label y --hidden 16,8 --dropout 0.2 --batch-size 32 --quiet", csv);
    const char *ca = tu_path("A.ckpt"), *cb = tu_path("B.ckpt");
    char *out_a, *out_b, *out_r, *out;

    snprintf(cmd, sizeof cmd, "%s train %s --epochs 3 --save %s 2>&1", bin, flags, ca);
    ck_assert_int_eq(tu_run_cmd(cmd, &out_a), 0);
    snprintf(cmd, sizeof cmd, "%s train %s --epochs 1 --save %s 2>&1", bin, flags, cb);
    ck_assert_int_eq(tu_run_cmd(cmd, &out_b), 0);
    snprintf(cmd, sizeof cmd, "%s train %s --epochs 3 --resume %s 2>&1", bin, flags, cb);
    ck_assert_int_eq(tu_run_cmd(cmd, &out_r), 0);
    const char *ja = tu_last_line(out_a), *jr = tu_last_line(out_r);
    static const char *const keys[] = {"epochs", "train_loss", "test_loss", "test_accuracy"};
    for (int k = 0; k < 4; k++)
        ck_assert_msg(strcmp(json_field(ja, keys[k], a, sizeof a), json_field(jr, keys[k], b, sizeof b)) == 0,
                      "%s: %s uninterrupted, %s resumed", keys[k], a, b);
    /* and the one-epoch run really differs (the comparison can fail) */
    ck_assert_str_ne(json_field(tu_last_line(out_b), "train_loss", b, sizeof b), json_field(ja, "train_loss", a, sizeof a));

    /* eval reports the test loss train reported for the same weights */
    snprintf(cmd, sizeof cmd, "%s eval mlp %s --csv %s --label y --hidden 16,8 --dropout 0.2 --quiet 2>&1", bin, ca, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 0);
    const char *je = tu_last_line(out);
    ck_assert_str_eq(json_field(je, "test_loss", b, sizeof b), json_field(ja, "test_loss", a, sizeof a));
    ck_assert_str_eq(json_field(je, "test_accuracy", b, sizeof b), json_field(ja, "test_accuracy", a, sizeof a));
    ck_assert_str_eq(json_field(je, "epoch", b, sizeof b), "3");
    free(out);

    /* resuming with another model, or past the end */
    snprintf(cmd, sizeof cmd, "%s train --csv %s --label y --hidden 12,8 --dropout 0.2 --epochs 3 --resume %s --quiet 2>&1", bin, csv, cb);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "'linear0.weight' is f32 (16,4) in the file but f32 (12,4) in the model"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s train %s --epochs 3 --resume %s 2>&1", bin, flags, ca);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "3 epochs done already"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s train %s --epochs 3 --resume %s 2>&1", bin, flags, tu_path("none.ckpt"));
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "none.ckpt"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s eval mlp %s --csv %s --label y --epochs 3 2>&1", bin, ca, csv);
    ck_assert_int_eq(tu_run_cmd(cmd, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--epochs is a train option"));
    free(out);

    free(out_a);
    free(out_b);
    free(out_r);
}
END_TEST

/* A copy of checkpoint src's tensors (the optimizer's left out) with the
 * input statistics' entries given (NULL: left out), and no run info: what
 * syn_checkpoint_load(.., NULL, NULL) and syn_checkpoint_load_stats read. */
static void write_with_stats(const char *src, const char *dst, const char *mean, const char *std) {
    syn_safetensors *f;
    TU_OK(syn_safetensors_open(src, &f));
    syn_safetensors_writer *w;
    TU_OK(syn_safetensors_writer_create(&w));
    for (int i = 0; i < syn_safetensors_count(f); i++) {
        const char *name;
        syn_dtype dt;
        syn_shape sh;
        const void *data;
        TU_OK(syn_safetensors_get(f, i, &name, &dt, &sh, &data, NULL));
        if (strncmp(name, "optim.", 6) != 0) TU_OK(syn_safetensors_add(w, name, dt, sh, data));
    }
    if (mean) TU_OK(syn_safetensors_set_metadata(w, "input.mean", mean));
    if (std) TU_OK(syn_safetensors_set_metadata(w, "input.std", std));
    TU_OK(syn_safetensors_write(w, dst));
    syn_safetensors_writer_free(w);
    syn_safetensors_close(f);
}

/* The inputs' standardisation and the caller's data.* entries saved with a
 * checkpoint: the doubles come back exactly, the tensors (so the parameter
 * names) are those of a plain checkpoint, a file without them gives none, a
 * damaged entry is SYN_ERR_FORMAT naming the file and the key. */
START_TEST(input_stats) {
    syn_optim_config adam = syn_optim_defaults(SYN_OPTIM_ADAM);
    net a, b;
    net_make(&a, 1, &adam);
    net_make(&b, 2, &adam);
    syn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    strcpy(info.model, "m");
    double mean[5] = {1.0 / 3.0, -2.5e-300, 12345.678901234567, 0, -7}, sd[5] = {0.1, 1e300, 3.0000000000000004, 1, 2};
    syn_norm_stats st = {5, mean, sd};
    const char *meta[] = {"shape", "5", "label", "y,\"z\""};
    syn_checkpoint_data cd = {&st, meta, 2};
    const char *path = tu_path("stats.safetensors"), *plain = tu_path("plain.safetensors");
    TU_OK(syn_checkpoint_save_data(path, a.p, a.o, &info, &cd));
    TU_OK(syn_checkpoint_save(plain, a.p, a.o, &info));
    syn_norm_stats *back = (syn_norm_stats *)1;
    TU_OK(syn_checkpoint_load_stats(path, &back));
    ck_assert_int_eq(back->count, 5);
    for (int k = 0; k < 5; k++) ck_assert(back->mean[k] == mean[k] && back->std[k] == sd[k]);
    syn_norm_stats_free(back);
    syn_safetensors *f, *g;
    TU_OK(syn_safetensors_open(path, &f));
    TU_OK(syn_safetensors_open(plain, &g));
    ck_assert_int_eq(syn_safetensors_count(f), syn_safetensors_count(g));
    for (int i = 0; i < syn_safetensors_count(f); i++) {
        const char *n1, *n2;
        TU_OK(syn_safetensors_get(f, i, &n1, NULL, NULL, NULL, NULL));
        TU_OK(syn_safetensors_get(g, i, &n2, NULL, NULL, NULL, NULL));
        ck_assert_str_eq(n1, n2);
    }
    ck_assert_str_eq(syn_safetensors_metadata(f, "data.label"), "y,\"z\"");
    ck_assert_str_eq(syn_safetensors_metadata(f, "data.shape"), "5");
    TU_OK(syn_checkpoint_read_stats(f, path, &back)); /* the same from the open file */
    ck_assert_int_eq(back->count, 5);
    for (int k = 0; k < 5; k++) ck_assert(back->mean[k] == mean[k] && back->std[k] == sd[k]);
    syn_norm_stats_free(back);
    back = (syn_norm_stats *)1;
    TU_OK(syn_checkpoint_read_stats(g, plain, &back));
    ck_assert_ptr_null(back);
    ck_assert_int_eq(syn_checkpoint_read_stats(NULL, path, &back), SYN_ERR_ARG);
    ck_assert_int_eq(syn_checkpoint_read_stats(f, path, NULL), SYN_ERR_ARG);
    syn_safetensors_close(f);
    syn_safetensors_close(g);
    syn_checkpoint_info in;
    TU_OK(syn_checkpoint_load(path, b.p, b.o, &in));
    ck_assert_str_eq(in.model, "m");

    /* older files: none, and SYN_OK */
    back = (syn_norm_stats *)1;
    TU_OK(syn_checkpoint_load_stats(plain, &back));
    ck_assert_ptr_null(back);
    TU_OK(syn_params_save(a.p, tu_path("params.safetensors")));
    TU_OK(syn_checkpoint_load_stats(tu_path("params.safetensors"), &back));
    ck_assert_ptr_null(back);
    const char *ok = tu_path("ok.safetensors");
    write_with_stats(plain, ok, "1,2", "3,4");
    TU_OK(syn_checkpoint_load_stats(ok, &back));
    ck_assert(back->count == 2 && back->mean[1] == 2 && back->std[0] == 3);
    syn_norm_stats_free(back);

    /* damaged entries */
    static const struct {
        const char *mean, *std, *needle;
    } bad[] = {
        {"1,2", NULL, "has 'input.mean' but no 'input.std'"},
        {NULL, "1", "has 'input.std' but no 'input.mean'"},
        {"1,2", "1", "'input.mean' has 2 values but 'input.std' 1"},
        {"1,2", "1,0", "'input.std': value 1, '0', is not a positive finite number"},
        {"1,abc", "1,1", "'input.mean': value 1, 'abc'"},
        {"1,nan", "1,1", "'nan'"},
        {"1,,2", "1,1,1", "value 1, ''"},
        {"1 2", "1", "'1 2'"},
        {"", "", "value 0"},
    };
    const char *dst = tu_path("bad.safetensors");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_with_stats(plain, dst, bad[i].mean, bad[i].std);
        back = (syn_norm_stats *)1;
        ck_assert_int_eq(syn_checkpoint_load_stats(dst, &back), SYN_ERR_FORMAT);
        ck_assert_ptr_null(back);
        ck_assert_msg(strstr(syn_last_error(), "bad.safetensors") && strstr(syn_last_error(), bad[i].needle),
                      "case %zu: '%s' lacks '%s'", i, syn_last_error(), bad[i].needle);
        syn_safetensors *fb;
        TU_OK(syn_safetensors_open(dst, &fb));
        ck_assert_int_eq(syn_checkpoint_read_stats(fb, dst, &back), SYN_ERR_FORMAT);
        ck_assert_ptr_null(back);
        ck_assert_ptr_nonnull(strstr(syn_last_error(), bad[i].needle));
        syn_safetensors_close(fb);
        ck_assert_int_eq(syn_checkpoint_load(dst, b.p, NULL, NULL), SYN_ERR_FORMAT);
    }

    /* what cannot be saved */
    sd[1] = 0;
    ck_assert_int_eq(syn_checkpoint_save_data(dst, a.p, NULL, &info, &cd), SYN_ERR_ARG);
    sd[1] = 1;
    const char *twice[] = {"k", "1", "k", "2"};
    syn_checkpoint_data cd2 = {NULL, twice, 2};
    ck_assert_int_eq(syn_checkpoint_save_data(dst, a.p, NULL, &info, &cd2), SYN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(syn_last_error(), "'k' given twice"));
    net_free(&a);
    net_free(&b);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *t = tcase_create("checkpoint");
    tcase_add_checked_fixture(t, tu_dir_setup, tu_dir_teardown);
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, resume_is_bit_identical, 0, (int)(sizeof optims / sizeof *optims));
    tcase_add_test(t, load_errors);
    tcase_add_test(t, input_stats);
    tcase_add_test(t, kill_during_write);
    tcase_add_test(t, cli_resume);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(suite()); }
