/* synapse charlm: trains a character-level language model on bytes (Debian's
 * fortunes by default), reports validation bits per byte, saves the model;
 * synapse complete: continues a prompt with a saved model (autocomplete). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char charlm_usage[] =
    "usage: synapse charlm [options]\n"
    "\n"
    "Trains a character-level language model on bytes with truncated BPTT: the\n"
    "text is cut into --batch-size contiguous streams, --seq bytes per step, the\n"
    "recurrent state carried across steps. The first 90% trains, the last 10%\n"
    "validates (bits per byte).\n"
    "\n"
    "  --data fortunes|FILE  the corpus (default fortunes: Debian's fortune files\n"
    "                        but art, ascii-art and off, sorted by name)\n"
    "  --fortunes-dir DIR    (default $SYN_FORTUNES_DIR, else /usr/share/games/fortunes)\n"
    "  --cell lstm|gru|rnn   (default lstm)\n"
    "  --embed N             embedding width (default 128)\n"
    "  --hidden N            (default 512)\n"
    "  --layers N            (default 2)\n"
    "  --dropout P           between layers (default 0)\n"
    "  --batch-size N        streams (default 64)\n"
    "  --seq N               bytes per step (default 128)\n"
    "  --steps N             Adam steps (default 3000)\n"
    "  --lr LR               (default 2e-3)\n"
    "  --clip NORM           gradient-norm clip (default 5; 0 off)\n"
    "  --eval-every N        validation every N steps (default 500)\n"
    "  --eval-bytes N        validate on the first N validation bytes (default all)\n"
    "  --seed S              initialisation and dropout (default 1)\n"
    "  --device D            cpu|cuda|cuda:N (default cpu)\n"
    "  --cuda-graphs         on a GPU, replay each step's forward and backward from a CUDA graph\n"
    "  --save FILE           write the model (safetensors) at the end\n"
    "  --sample N            print N bytes generated after the training (default 200)\n"
    "  --quiet               no progress lines\n"
    "\n"
    "Data-parallel: started by an MPI launcher (mpirun -np N synapse charlm ...), the N\n"
    "processes train one model, each on its share of the --batch-size streams; process 0\n"
    "writes the output and the model.\n"
    "\n"
    "The last line on stdout is one JSON object with the results.\n";

static const char complete_usage[] =
    "usage: synapse complete MODEL.safetensors PROMPT [options]\n"
    "\n"
    "Continues PROMPT with a model saved by synapse charlm --save.\n"
    "\n"
    "  -n N                  bytes to generate (default 200)\n"
    "  --greedy              always the most likely byte (the default)\n"
    "  --temperature T       sample from softmax(logits / T)\n"
    "  --top-k K             sample among the K most likely bytes\n"
    "  --seed S              sampling seed (default 1)\n"
    "  --device D            cpu|cuda|cuda:N (default cpu)\n";

enum { O_DATA = 256, O_FDIR, O_CELL, O_EMBED, O_HIDDEN, O_LAYERS, O_DROPOUT, O_BATCH, O_SEQ, O_STEPS, O_LR, O_CLIP,
       O_EVAL, O_EVAL_BYTES, O_SEED, O_DEVICE, O_SAVE, O_SAMPLE, O_QUIET, O_HELP, O_GREEDY, O_TEMP, O_TOPK,
       O_GRAPHS };

static int parse_cell(const char *s, syn_rnn_mode *m) {
    if (strcmp(s, "lstm") == 0) *m = SYN_RNN_LSTM;
    else if (strcmp(s, "gru") == 0) *m = SYN_RNN_GRU;
    else if (strcmp(s, "rnn") == 0 || strcmp(s, "rnn_tanh") == 0) *m = SYN_RNN_TANH;
    else if (strcmp(s, "rnn_relu") == 0) *m = SYN_RNN_RELU;
    else return 0;
    return 1;
}

int cmd_charlm(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},         {"fortunes-dir", required_argument, 0, O_FDIR},
        {"cell", required_argument, 0, O_CELL},         {"embed", required_argument, 0, O_EMBED},
        {"hidden", required_argument, 0, O_HIDDEN},     {"layers", required_argument, 0, O_LAYERS},
        {"dropout", required_argument, 0, O_DROPOUT},   {"batch-size", required_argument, 0, O_BATCH},
        {"seq", required_argument, 0, O_SEQ},           {"steps", required_argument, 0, O_STEPS},
        {"lr", required_argument, 0, O_LR},             {"clip", required_argument, 0, O_CLIP},
        {"eval-every", required_argument, 0, O_EVAL},   {"eval-bytes", required_argument, 0, O_EVAL_BYTES},
        {"seed", required_argument, 0, O_SEED},         {"device", required_argument, 0, O_DEVICE},
        {"save", required_argument, 0, O_SAVE},         {"sample", required_argument, 0, O_SAMPLE},
        {"quiet", no_argument, 0, O_QUIET},             {"help", no_argument, 0, O_HELP},
        {"cuda-graphs", no_argument, 0, O_GRAPHS},      {0, 0, 0, 0}};
    const char *data = "fortunes", *fdir = NULL, *device = "cpu", *save = NULL;
    syn_charlm_config mc = {SYN_RNN_LSTM, 128, 512, 2, 0.0f};
    syn_charlm_train_config tc = {64, 128, 3000, 2e-3f, 5.0f, 500, 0, 1, stderr, false, NULL};
    int64_t v, sample = 200;
    float f;
    bool quiet = false;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        const char *a = optarg;
        switch (c) {
        case O_DATA: data = a; break;
        case O_FDIR: fdir = a; break;
        case O_CELL:
            if (!parse_cell(a, &mc.mode)) return usage_error(charlm_usage, "--cell: '%s' is not lstm, gru or rnn", a);
            break;
        case O_EMBED: case O_HIDDEN: case O_LAYERS: case O_BATCH: case O_SEQ: case O_STEPS: case O_EVAL:
        case O_EVAL_BYTES: case O_SEED: case O_SAMPLE:
            if (!parse_i64(a, c == O_EVAL || c == O_EVAL_BYTES || c == O_SEED || c == O_SAMPLE ? 0 : 1, &v) ||
                (c == O_LAYERS && v > 64))
                return usage_error(charlm_usage, "bad number '%s'", a);
            if (c == O_EMBED) mc.embed = v;
            else if (c == O_HIDDEN) mc.hidden = v;
            else if (c == O_LAYERS) mc.layers = (int)v;
            else if (c == O_BATCH) tc.batch = v;
            else if (c == O_SEQ) tc.seq = v;
            else if (c == O_STEPS) tc.steps = v;
            else if (c == O_EVAL) tc.eval_every = v;
            else if (c == O_EVAL_BYTES) tc.eval_bytes = v;
            else if (c == O_SEED) tc.seed = (uint64_t)v;
            else sample = v;
            break;
        case O_DROPOUT: case O_LR: case O_CLIP:
            if (!parse_f32(a, 0, &f) || (c == O_DROPOUT && f >= 1) || (c == O_LR && f == 0))
                return usage_error(charlm_usage, "bad value '%s'", a);
            if (c == O_DROPOUT) mc.dropout = f;
            else if (c == O_LR) tc.lr = f;
            else tc.clip = f;
            break;
        case O_DEVICE: device = a; break;
        case O_SAVE: save = a; break;
        case O_QUIET: quiet = true; break;
        case O_GRAPHS: tc.cuda_graphs = true; break;
        case O_HELP: fputs(charlm_usage, stdout); return 0;
        default: return usage_error(charlm_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error(charlm_usage, "unexpected argument '%s'", argv[optind]);
    syn_device dev;
    int rc = pick_device(device, &dev);
    if (rc >= 0) return rc;
    syn_comm *comm = NULL;
    if ((rc = join_mpi(device, quiet, tc.batch, "streams", &dev, &comm)) >= 0) return rc;
    const bool lead = syn_comm_rank(comm) == 0; /* writes the output and the model */
    if (!lead) quiet = true;
    tc.comm = comm;
    uint8_t *text = NULL;
    size_t n = 0;
    syn_status s = strcmp(data, "fortunes") == 0 ? syn_text_load_fortunes(fdir, &text, &n) : syn_text_load_file(data, &text, &n);
    if (s != SYN_OK) return leave_mpi(comm, runtime_error(s), true);
    size_t n_train = n - n / 10;
    if (quiet) tc.out = NULL;
    else
        fprintf(stderr, "charlm: %s, %zu bytes (%zu train, %zu validation); %s %d x %lld, embed %lld; batch %lld x seq %lld, %lld steps on %s\n",
                data, n, n_train, n - n_train, mc.mode == SYN_RNN_LSTM ? "lstm" : mc.mode == SYN_RNN_GRU ? "gru" : "rnn",
                mc.layers, (long long)mc.hidden, (long long)mc.embed, (long long)tc.batch, (long long)tc.seq,
                (long long)tc.steps, device);
    syn_charlm *m = NULL;
    syn_charlm_result res;
    s = syn_charlm_create(&mc, dev, tc.seed, &m);
    if (comm) s = syn_comm_agree(comm, s); /* the setup's agreement: every process made its model */
    if (s == SYN_OK) s = syn_charlm_train(m, text, n_train, text + n_train, n - n_train, &tc, &res);
    const int procs = syn_comm_size(comm);
    if (!lead) {
        syn_charlm_free(m);
        free(text);
        return leave_mpi(comm, s == SYN_OK ? 0 : runtime_error(s), false);
    }
    /* process 0 alone from here (saving, sampling): no collective follows */
    if (s == SYN_OK && save) s = syn_charlm_save(m, save);
    uint8_t *gen = NULL;
    if (s == SYN_OK && sample > 0 && (gen = malloc((size_t)sample))) {
        syn_sampling sp = {0.8f, 0, tc.seed};
        static const uint8_t prompt[] = "The ";
        s = syn_charlm_generate(m, prompt, 4, (size_t)sample, &sp, gen);
        if (s == SYN_OK && !quiet) fprintf(stderr, "sample (temperature 0.8): The %.*s\n", (int)sample, (const char *)gen);
    }
    free(gen);
    syn_charlm_free(m);
    free(text);
    if (s != SYN_OK) return leave_mpi(comm, runtime_error(s), false);
    char dn[32];
    syn_device_str(dev, dn, sizeof dn);
    printf("{\"model\":\"charlm %s %dx%lld embed %lld\",\"device\":\"%s\",\"steps\":%lld",
           mc.mode == SYN_RNN_LSTM ? "lstm" : mc.mode == SYN_RNN_GRU ? "gru" : "rnn", mc.layers, (long long)mc.hidden,
           (long long)mc.embed, dn, (long long)res.steps);
    json_num("train_bpb", res.train_bpb, "%.4f");
    json_num("val_bpb", res.val_bpb >= 0 ? res.val_bpb : NAN, "%.4f");
    json_num("seconds", res.seconds, "%.2f");
    json_num("bytes_per_s", res.bytes_per_s, "%.0f");
    if (tc.cuda_graphs) json_cuda_graphs(res.cuda_graph_replays, res.cuda_graphs_off);
    if (procs > 1) printf(",\"processes\":%d", procs);
    if (save) {
        char sv[512];
        json_clean_string(sv, sizeof sv, save);
        printf(",\"saved\":\"%s\"", sv);
    }
    printf("}\n");
    return leave_mpi(comm, 0, false);
}

int cmd_complete(int argc, char **argv) {
    static const struct option opts[] = {
        {"greedy", no_argument, 0, O_GREEDY},        {"temperature", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK},     {"seed", required_argument, 0, O_SEED},
        {"device", required_argument, 0, O_DEVICE},  {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    syn_sampling sp = {0.0f, 0, 1};
    int64_t n = 200, v;
    const char *device = "cpu";
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "n:", opts, NULL)) != -1;) {
        const char *a = optarg;
        switch (c) {
        case 'n':
            if (!parse_i64(a, 0, &n) || n > (1 << 24)) return usage_error(complete_usage, "-n: bad count '%s'", a);
            break;
        case O_GREEDY: sp.temperature = 0; break;
        case O_TEMP:
            if (!parse_f32(a, 0, &sp.temperature)) return usage_error(complete_usage, "--temperature: bad value '%s'", a);
            break;
        case O_TOPK:
            if (!parse_i64(a, 0, &v) || v > 256) return usage_error(complete_usage, "--top-k: bad value '%s'", a);
            sp.top_k = (int)v;
            if (sp.temperature <= 0) sp.temperature = 1.0f;
            break;
        case O_SEED:
            if (!parse_i64(a, 0, &v)) return usage_error(complete_usage, "--seed: bad value '%s'", a);
            sp.seed = (uint64_t)v;
            break;
        case O_DEVICE: device = a; break;
        case O_HELP: fputs(complete_usage, stdout); return 0;
        default: return usage_error(complete_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return usage_error(complete_usage, "%s", "MODEL and PROMPT are required");
    syn_device dev;
    int rc = pick_device(device, &dev);
    if (rc >= 0) return rc;
    const char *prompt = argv[optind + 1];
    syn_charlm *m;
    syn_status s = syn_charlm_load(argv[optind], dev, &m);
    if (s != SYN_OK) return runtime_error(s);
    uint8_t *out = malloc((size_t)(n > 0 ? n : 1));
    if (!out) {
        syn_charlm_free(m);
        fprintf(stderr, "synapse: error: out of memory\n");
        return 1;
    }
    s = syn_charlm_generate(m, (const uint8_t *)prompt, strlen(prompt), (size_t)n, &sp, out);
    if (s == SYN_OK) {
        fputs(prompt, stdout);
        fwrite(out, 1, (size_t)n, stdout);
        fputc('\n', stdout);
    }
    free(out);
    syn_charlm_free(m);
    return s == SYN_OK ? 0 : runtime_error(s);
}
