#!/usr/bin/env bash
# Installs what is missing, builds Synapse (CPU backend, and the CUDA backend
# where nvcc/cuBLAS/cuDNN are present), and runs every Check suite with CTest.
# Suites that need a GPU say "no CUDA device: N tests skipped" on machines without one.
#   ./test.sh              Release build in build/
#   ./test.sh --sanitize   ASan + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")"
. tools/deps.sh
syn_install_deps

if [ "${1:-}" = "--sanitize" ]; then
    export BUILD_DIR=build-asan BUILD_TYPE=Debug
    export ASAN_OPTIONS=detect_leaks=1:protect_shadow_gap=0 UBSAN_OPTIONS=print_stacktrace=1
    syn_build -DSYN_SANITIZE=ON
else
    syn_build
fi
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)"
