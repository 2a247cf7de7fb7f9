/* Synapse: a deep learning framework in C with CPU and CUDA backends.
 * This header includes the whole public API. */
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
#include "synapse/forecast.h"

#endif
