#!/usr/bin/env bash
# Installs what is missing, builds Synapse, and trains the default model - a
# 784-256-128-10 MLP on Fashion-MNIST - on the GPU when one is present, else on
# the CPU. Extra arguments go to `synapse train` (see `build/synapse train --help`).
set -euo pipefail
cd "$(dirname "$0")"
. tools/deps.sh
syn_install_deps
syn_build

device=cpu
if ./build/synapse info 2>/dev/null | grep -q '^cuda:0'; then device=cuda; fi
echo "training the default MLP on Fashion-MNIST ($device)"
./build/synapse train --device "$device" "$@"
