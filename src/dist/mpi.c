/* libsynapse_mpi.so: the MPI transport of syn_comm_mpi (src/dist/comm.c
 * loads it with dlopen). MPI_COMM_WORLD duplicated, with errors returned
 * instead of MPI's default of ending the job, so a failure reaches the caller
 * as a status and a message. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include "plugin.h"

#define EXPORT __attribute__((visibility("default")))

static MPI_Comm world = MPI_COMM_NULL;
static int opened;       /* open calls not yet closed */
static int initialised;  /* MPI_Init was called here: close finalises it */

static int fail(int rc, const char *what, char *err, size_t err_size) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", rc);
    snprintf(err, err_size, "%s: %s", what, text);
    return -1;
}

/* MPI counts are ints: larger buffers go in pieces. */
enum { PIECE = INT_MAX / 8 };

static int mpi_allreduce(void *buf, int64_t n, int f64, char *err, size_t err_size) {
    size_t width = f64 ? sizeof(double) : sizeof(float);
    for (int64_t off = 0; off < n; off += PIECE) {
        int m = (int)(n - off < PIECE ? n - off : PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)off * width, m, f64 ? MPI_DOUBLE : MPI_FLOAT,
                               MPI_SUM, world);
        if (rc != MPI_SUCCESS) return fail(rc, "MPI_Allreduce", err, err_size);
    }
    return 0;
}

static int mpi_broadcast(void *buf, int64_t bytes, int root, char *err, size_t err_size) {
    for (int64_t off = 0; off < bytes; off += PIECE) {
        int m = (int)(bytes - off < PIECE ? bytes - off : PIECE);
        int rc = MPI_Bcast((char *)buf + off, m, MPI_BYTE, root, world);
        if (rc != MPI_SUCCESS) return fail(rc, "MPI_Bcast", err, err_size);
    }
    return 0;
}

static void mpi_close(void) {
    if (opened == 0 || --opened > 0) return;
    MPI_Comm_free(&world);
    world = MPI_COMM_NULL;
    int done = 0;
    if (initialised && MPI_Finalized(&done) == MPI_SUCCESS && !done) MPI_Finalize();
}

EXPORT int syn_mpi_plugin_open(int abi, syn__mpi_plugin *out, char *err, size_t err_size) {
    if (abi != SYN_MPI_PLUGIN_ABI) {
        snprintf(err, err_size, "the plugin speaks interface %d, the library %d: rebuild them together",
                 SYN_MPI_PLUGIN_ABI, abi);
        return -1;
    }
    int rc, flag = 0;
    if (opened == 0) {
        if ((rc = MPI_Finalized(&flag)) != MPI_SUCCESS) return fail(rc, "MPI_Finalized", err, err_size);
        if (flag) {
            snprintf(err, err_size, "MPI was finalised already in this process; it cannot start twice");
            return -1;
        }
        if ((rc = MPI_Initialized(&flag)) != MPI_SUCCESS) return fail(rc, "MPI_Initialized", err, err_size);
        if (!flag) {
            /* The loader's prefetch thread never calls MPI: the calling thread does it all. */
            int provided;
            if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
                return fail(rc, "MPI_Init_thread", err, err_size);
            initialised = 1;
        }
        if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &world)) != MPI_SUCCESS) return fail(rc, "MPI_Comm_dup", err, err_size);
        MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN);
    }
    MPI_Comm local = MPI_COMM_NULL;
    const char *what = "MPI_Comm_rank/size";
    if ((rc = MPI_Comm_rank(world, &out->rank)) == MPI_SUCCESS && (rc = MPI_Comm_size(world, &out->size)) == MPI_SUCCESS) {
        /* the rank among the processes that share this machine's memory */
        what = "MPI_Comm_split_type";
        rc = MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, out->rank, MPI_INFO_NULL, &local);
        if (rc == MPI_SUCCESS) {
            what = "MPI_Comm_rank";
            rc = MPI_Comm_rank(local, &out->local_rank);
            MPI_Comm_free(&local);
        }
    }
    if (rc != MPI_SUCCESS) {
        if (opened == 0) MPI_Comm_free(&world); /* made by this call: a later open makes it again */
        return fail(rc, what, err, err_size);
    }
    out->allreduce = mpi_allreduce;
    out->broadcast = mpi_broadcast;
    out->close = mpi_close;
    opened++;
    return 0;
}
