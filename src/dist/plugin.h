/* The interface between libsynapse (src/dist/comm.c) and its MPI plugin,
 * libsynapse_mpi.so (src/dist/mpi.c), which comm.c loads with dlopen on the
 * first syn_comm_mpi: programs that never ask for MPI need none installed.
 * The plugin does not link libsynapse; it reports errors as text. */
#ifndef SYN_DIST_PLUGIN_H
#define SYN_DIST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

/* Raised whenever the table below changes. */
#define SYN_MPI_PLUGIN_ABI 3
#define SYN_MPI_PLUGIN_FILE "libsynapse_mpi.so"
#define SYN_MPI_PLUGIN_ENTRY "syn_mpi_plugin_open"

typedef struct {
    int rank, size, local_rank;
    /* 0 on success; else -1 with a message in err. f64: doubles, else floats. */
    int (*allreduce)(void *buf, int64_t n, int f64, char *err, size_t err_size);
    int (*broadcast)(void *buf, int64_t bytes, int root, char *err, size_t err_size);
    /* One call per successful open: MPI is finalised with the last one when
     * the plugin initialised it. */
    void (*close)(void);
} syn__mpi_plugin;

/* The plugin's one export: 0 and the table filled, or -1 and a message. */
typedef int (*syn__mpi_plugin_open_fn)(int abi, syn__mpi_plugin *out, char *err, size_t err_size);

#endif
