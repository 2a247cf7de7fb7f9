/* Shared by the synapse command's subcommands: each lives in its own file
 * (tools/synapse.c: info, train, summary; tools/cmd_*.c: the others) and is
 * listed in the command table of tools/synapse.c. Exit codes: 0 ok, 1 runtime
 * failure, 2 usage. */
#ifndef SYN_CLI_H
#define SYN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "synapse/synapse.h"

/* Prints "synapse: <fmt with arg>" and the usage text on stderr; returns 2. */
int usage_error(const char *usage, const char *fmt, const char *arg);
/* Prints the library's last error on stderr; returns 1. */
int runtime_error(syn_status s);
/* Strict number parsing: the whole string, >= lo. */
bool parse_i64(const char *s, int64_t lo, int64_t *out);
bool parse_f32(const char *s, float lo, float *out);
/* A device the run can use: parsed, built in, present. Returns -1 to go on,
 * else an exit code (the error printed). */
int pick_device(const char *text, syn_device *dev);
/* Started by an MPI launcher as one of several processes: *comm joins them
 * (data-parallel training; else NULL), and with a plain "cuda" device each
 * takes the GPU of its rank on the machine; rank 0 says so unless quiet.
 * Returns -1 to go on, else an exit code (the error printed). */
int join_mpi(const char *device, bool quiet, int64_t batch, const char *unit, syn_device *dev, syn_comm **comm);
/* The end of a command that joined (comm may be NULL). Each such command
 * has one setup agreement (syn_comm_agree) before its first collective, which
 * every process makes once: with pending (this process stopped before
 * making it) and an error, it is made here with a failure, so that the
 * others stop too instead of waiting. Then MPI is left. Returns rc. */
int leave_mpi(syn_comm *comm, int rc, bool pending);
/* ,"key":v with fmt, or null when v is not finite. */
void json_num(const char *key, double v, const char *fmt);
/* Copies s into buf without the characters JSON would need escaped. */
void json_clean_string(char *buf, size_t size, const char *s);
/* Prints ,"cuda_graph_replays":N and, when why is not empty,
 * ,"cuda_graphs_off":"why" (syn_graph_replays' figures). */
void json_cuda_graphs(int64_t replays, const char *why);

/* Subcommands in their own files: argv[0] is the command's name. */
int cmd_gan(int argc, char **argv);      /* cmd_gan.c */
int cmd_sample(int argc, char **argv);   /* cmd_gan.c */
int cmd_eval(int argc, char **argv);     /* cmd_io.c */
int cmd_predict(int argc, char **argv);  /* cmd_io.c */
int cmd_charlm(int argc, char **argv);   /* cmd_text.c */
int cmd_complete(int argc, char **argv); /* cmd_text.c */
int cmd_forecast(int argc, char **argv); /* cmd_forecast.c */
int cmd_bench(int argc, char **argv);    /* cmd_bench.c */

#endif
