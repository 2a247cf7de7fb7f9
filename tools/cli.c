/* Helpers shared by the synapse command's subcommands (cli.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

/* Prints a usage error and returns exit code 2. */
int usage_error(const char *usage, const char *fmt, const char *arg) {
    fputs("synapse: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage, stderr);
    return 2;
}

/* Prints the library's last error and returns exit code 1. */
int runtime_error(syn_status s) {
    const char *msg = syn_last_error();
    fprintf(stderr, "synapse: error: %s\n", msg && *msg ? msg : syn_status_str(s));
    return 1;
}

bool parse_i64(const char *s, int64_t lo, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo) return false;
    *out = v;
    return true;
}

bool parse_f32(const char *s, float lo, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo) return false;
    *out = v;
    return true;
}

/* A device the run can use: parsed, built in, present. */
int pick_device(const char *text, syn_device *dev) {
    if (syn_device_parse(text, dev) != SYN_OK) {
        fprintf(stderr, "synapse: error: %s\n", syn_last_error());
        return 1;
    }
    if (dev->type == SYN_DEVICE_CUDA) {
        if (!syn_backend_built(SYN_DEVICE_CUDA)) {
            fprintf(stderr, "synapse: error: device %s: this synapse was built without the CUDA backend\n", text);
            return 1;
        }
        int n = syn_device_count(SYN_DEVICE_CUDA);
        if (dev->index >= n) {
            fprintf(stderr, "synapse: error: device %s: %s\n", text,
                    n == 0 ? "no CUDA device found" : "no such CUDA device (see synapse info)");
            return 1;
        }
    }
    return -1;
}

/* JSON number, or null when not finite (a diverged loss). */
void json_num(const char *key, double v, const char *fmt) {
    printf(",\"%s\":", key);
    if (isfinite(v)) printf(fmt, v);
    else fputs("null", stdout);
}

/* Copies s into buf without the characters JSON would need escaped. */
void json_clean_string(char *buf, size_t size, const char *s) {
    size_t n = 0;
    for (; *s && n + 1 < size; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20) buf[n++] = *s;
    buf[n] = '\0';
}

void json_cuda_graphs(int64_t replays, const char *why) {
    printf(",\"cuda_graph_replays\":%lld", (long long)replays);
    if (!why || !why[0]) return;
    char clean[512];
    json_clean_string(clean, sizeof clean, why);
    printf(",\"cuda_graphs_off\":\"%s\"", clean);
}

int join_mpi(const char *device, bool quiet, int64_t batch, const char *unit, syn_device *dev, syn_comm **comm) {
    int n;
    *comm = NULL;
    if (!syn_comm_mpi_launched(&n)) return -1;
    if (syn_comm_mpi(comm) != SYN_OK) {
        fprintf(stderr, "synapse: error: started as one of %d MPI processes, but: %s\n", n, syn_last_error());
        return 1;
    }
    n = syn_comm_size(*comm);
    if (dev->type == SYN_DEVICE_CUDA && strcmp(device, "cuda") == 0)
        dev->index = syn_comm_local_rank(*comm) % syn_device_count(SYN_DEVICE_CUDA);
    if (!quiet && syn_comm_rank(*comm) == 0)
        fprintf(stderr, "synapse: data-parallel over %d processes (MPI), %lld of each batch's %lld %s each\n", n,
                (long long)((batch + n - 1) / n), (long long)batch, unit);
    return -1;
}

int leave_mpi(syn_comm *comm, int rc, bool pending) {
    /* the others wait in the setup's agreement: a process that failed before it makes it too */
    if (comm && pending && rc != 0) syn_comm_agree(comm, SYN_ERR_IO);
    syn_comm_free(comm);
    return rc;
}
