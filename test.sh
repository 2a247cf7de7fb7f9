#!/usr/bin/env bash
# Installs what is missing, builds Synapse and runs every Check suite with CTest:
#  1. a Release build (CPU backend, plus the CUDA backend where nvcc, cuBLAS and
#     cuDNN are present); suites that need a GPU print
#     "no CUDA device: N tests skipped" on machines without one;
#  2. a CPU-only build under AddressSanitizer and UndefinedBehaviorSanitizer;
#  3. the CUDA backend built against the CPU emulator (tests/cuda_emu), under
#     the same sanitizers, with exact-size device allocations: the CUDA-vs-CPU
#     suites run without a GPU. This tests the backend's logic, not a GPU:
#     tools/gpu-check.sh does that on a GPU machine.
#   ./test.sh            all three passes
#   ./test.sh --quick    the Release pass only
set -euo pipefail
cd "$(dirname "$0")"
. tools/deps.sh
syn_install_deps
# CTest runs a suite per core and each suite's OpenMP team has a thread per
# core: threads that spin while they wait take the cores from the others
# (the Release pass: 185 s, 106 s with passive waiting, on 2 cores).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

echo "== Release build"
syn_build
(cd build && ctest --output-on-failure -j "$(nproc)")

if [ "${1:-}" != "--quick" ]; then
    echo "== ASan + UBSan build (CPU backend)"
    # Test cases tagged "slow" (whole-network training runs) and the example
    # programs (label "examples") are left to the Release pass: the kernels
    # and library calls they use are covered by the suites here.
    export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1
    export CK_EXCLUDE_TAGS=slow
    BUILD_DIR=build-asan BUILD_TYPE=Debug syn_build -DSYN_SANITIZE=ON -DSYN_CUDA=OFF
    (cd build-asan && ctest --output-on-failure -j "$(nproc)" -LE examples)

    echo "== CUDA emulator build (ASan + UBSan): the CUDA suites without a GPU"
    BUILD_DIR=build-emu-asan BUILD_TYPE=RelWithDebInfo \
        BUILD_TARGETS="test_cuda test_cuda_cnn test_cuda_rnn test_cuda_gan test_cuda_graphs test_forecast \
test_cuda_emu test_oom" \
        syn_build -DSYN_SANITIZE=ON -DSYN_CUDA_EMU=ON
    (cd build-emu-asan && SYN_CUDA_NO_CACHE=1 ctest --output-on-failure -j "$(nproc)" -R '^test_(cuda|forecast|oom_cuda)')
fi
