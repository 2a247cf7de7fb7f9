/* Synapse: a deep learning framework in C with CPU and CUDA backends.
 * This header includes the whole public API; <synapse/version.h> has
 * SYN_VERSION_MAJOR/MINOR/PATCH and SYN_VERSION_STRING.
 *
 * Building against an install: find_package(Synapse) and link Synapse::synapse
 * (libsynapse.so) or Synapse::synapse_static (libsynapse.a and its
 * dependencies), or `pkg-config --cflags --libs synapse`. The shared library
 * exports only syn_* symbols. Example: examples/embed/.
 *
 * Threads: one context per thread. A context is a parameter set with the
 * graphs, optimizer, loaders and data sets built on it; no object is locked
 * inside, so each is used by one thread at a time. Besides that:
 *  - errors: syn_last_error() is per thread (thread-local).
 *  - CPU: contexts in different threads run at the same time, each calling
 *    thread with its own OpenMP team (set OMP_NUM_THREADS so that threads x
 *    team fits the cores); kernels' scratch buffers are per thread.
 *  - CUDA: device discovery, the per-GPU backend's creation and its caching
 *    allocator are locked, but each GPU has one stream, one cuBLAS and cuDNN
 *    handle and one workspace: one graph runs on a GPU at a time. Threads on
 *    different GPUs are independent.
 *  - a data set only read (loaders, syn_fit, syn_evaluate) may be shared by
 *    threads; standardising or normalising writes it.
 *  - data parallelism in one process: syn_comm_threads makes one member per
 *    thread, each with its own context (synapse/dist.h).
 *  - file readers and writers keep no shared state; files are written
 *    atomically (a temporary file, then rename). */
#ifndef SYNAPSE_H
#define SYNAPSE_H

#include "synapse/status.h"
#include "synapse/device.h"
#include "synapse/tensor.h"
#include "synapse/graph.h"
#include "synapse/nn.h"
#include "synapse/optim.h"
#include "synapse/data.h"
#include "synapse/train.h"
#include "synapse/model.h"
#include "synapse/io.h"
#include "synapse/text.h"
#include "synapse/gan.h"
#include "synapse/bench.h"
#include "synapse/dist.h"
#include "synapse/forecast.h"

#endif
