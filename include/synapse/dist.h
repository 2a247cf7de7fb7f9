/* Data-parallel training: several processes (or threads), each with its own
 * copy of the model, train it as one. Every member takes its share of each
 * batch, the gradients are summed over the members before each optimizer
 * step, and so the weights stay the same everywhere.
 *
 * A communicator (syn_comm) joins the members. syn_comm_mpi joins the
 * processes an MPI launcher started (`mpirun -np 4 synapse train ...`);
 * syn_comm_create wraps any other transport (threads, NCCL, a program's own
 * MPI communicator) given as two functions. syn_fit takes one in its config
 * (syn_fit_config.comm); the calls below are the pieces it is made of, for
 * loops of one's own.
 *
 * Every member must make the same collective calls in the same order: a
 * member that stops calling (an error, a crash) leaves the others waiting
 * inside the transport. syn_fit, syn_charlm_train and the GAN trainer's
 * steps agree on every failure, so that all members return it together; a
 * program's own steps do the same with syn_comm_agree. (Under mpirun a
 * process that crashes makes mpirun end the others.) */
#ifndef SYNAPSE_DIST_H
#define SYNAPSE_DIST_H

#include <stdbool.h>
#include <stdint.h>
#include "graph.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct syn_comm syn_comm;

typedef enum { SYN_COMM_F32 = 0, SYN_COMM_F64 } syn_comm_type;

/* A transport. Every function is called by all members together (collective)
 * and returns SYN_OK or an error status, which the collective that called it
 * returns with a message naming it. */
typedef struct {
    /* buf (n values of `type`) <- their sum over the members, in place. Every
     * member must get the same sums, bit for bit (the weights stay identical
     * only so). */
    syn_status (*allreduce)(void *user, void *buf, int64_t n, syn_comm_type type);
    /* buf (bytes) <- member root's buf, on every member. */
    syn_status (*broadcast)(void *user, void *buf, int64_t bytes, int root);
    /* syn_comm_free's last call (NULL: none). */
    void (*destroy)(void *user);
} syn_comm_ops;

/* A communicator over a transport: this member is `rank` of `size`;
 * local_rank is its index among the members on the same machine (which GPU it
 * takes). ops is copied; user is handed to the ops. owned: free with
 * syn_comm_free. */
SYN_API syn_status syn_comm_create(int rank, int size, int local_rank, const syn_comm_ops *ops, void *user,
                                   syn_comm **out);

/* The processes of MPI_COMM_WORLD. MPI is initialised here unless the program
 * already did, and finalised by syn_comm_free if it was initialised here.
 * The MPI code lives in a plugin, libsynapse_mpi.so, loaded on this call
 * (so programs that never ask need no MPI installed): it is looked for at
 * $SYN_MPI_PLUGIN, next to the library or program that holds Synapse, in
 * ../lib from there, in the install's library folder, then on the loader's
 * search path. SYN_ERR_UNSUPPORTED, saying where it looked and why it failed,
 * when it cannot be loaded (Debian: openmpi-bin and libopenmpi-dev at build
 * time). owned: free with syn_comm_free. */
SYN_API syn_status syn_comm_mpi(syn_comm **out);

/* `size` members in this process, one per thread (e.g. a thread per GPU):
 * members[i] is rank i, for the thread that runs it; the collectives wait for
 * all of the members' threads. Sums are added in rank order, so all members
 * get the same bits. owned: free each with syn_comm_free (in any thread,
 * after the last collective). */
SYN_API syn_status syn_comm_threads(int size, syn_comm **members);

/* Whether an MPI launcher started this process as one of more than one
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE... in the environment; without
 * loading MPI). *size (may be NULL) gets the number of processes, 1 when not. */
SYN_API bool syn_comm_mpi_launched(int *size);

/* NULL: no-op. Calls the transport's destroy. */
SYN_API void syn_comm_free(syn_comm *c);

/* Every member learns whether any failed (collective): `mine` is this
 * member's status; returns mine if it failed, else an error saying how many
 * others did (with their status when they agree on one), else SYN_OK - the
 * same outcome on every member. For a program's own steps that can fail on
 * one member only (a file that member 0 alone writes, say) before further
 * collectives: all then stop together. Under MPI a process that stopped
 * alone would leave the others waiting in the next collective, and itself
 * in MPI_Finalize, which waits for them all. */
SYN_API syn_status syn_comm_agree(syn_comm *c, syn_status mine);

/* A NULL communicator is a lone member: rank 0 of 1. */
SYN_API int syn_comm_rank(const syn_comm *c);
SYN_API int syn_comm_size(const syn_comm *c);
SYN_API int syn_comm_local_rank(const syn_comm *c);

/* Collectives (every member calls them together). buf: host memory. */
SYN_API syn_status syn_comm_allreduce_f32(syn_comm *c, float *buf, int64_t n);
SYN_API syn_status syn_comm_allreduce_f64(syn_comm *c, double *buf, int64_t n);
SYN_API syn_status syn_comm_broadcast(syn_comm *c, void *buf, int64_t bytes, int root);

/* The trainable parameters' gradients <- sum over the members of
 * weight * gradient, where each member passes its own weight (its share of
 * the batch: rows / total rows, when its loss is a mean over its rows). The
 * members' parameter sets must have the same parameters in the same order;
 * any device (a GPU's gradients pass through the host). */
SYN_API syn_status syn_params_allreduce_grads(syn_params *p, syn_comm *c, float weight);

/* The parameters' values on every member <- member root's: all of them, or
 * with frozen_only only those not trainable (batch norm's running statistics,
 * which each member gathers from its own rows). */
SYN_API syn_status syn_params_broadcast(syn_params *p, syn_comm *c, int root, bool frozen_only);

/* Whether every member holds the same parameters (names, shapes and values,
 * bit for bit): *same on every member. A check for tests and for runs that
 * resume from checkpoints. */
SYN_API syn_status syn_params_compare(const syn_params *p, syn_comm *c, bool *same);

#ifdef __cplusplus
}
#endif
#endif
