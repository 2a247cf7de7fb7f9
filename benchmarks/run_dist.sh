#!/usr/bin/env bash
# Data-parallel scaling in one command: one epoch of `synapse train` on
# Fashion-MNIST in one process, then under `mpirun -np N` (N from 2 up to
# MAX_PROCS), for the default MLP and the Fashion-MNIST CNN, and a table of
# samples/s, the speed-up over one process and the test accuracy. Each run
# is a whole training epoch with evaluation, as `synapse train` reports it.
#
#   benchmarks/run_dist.sh [extra synapse train options, e.g. --device cuda]
#
# Environment:
#   MAX_PROCS   the most processes (default: nproc, at least 2)
#   REPEAT=N    runs per row; the best samples/s is kept (default 2)
#   MODELS      space-separated: mlp and/or the .cfg files (default: mlp models/fmnist_cnn.cfg)
#   BUILD_DIR   the build with synapse and libsynapse_mpi.so (default: build)
# One OpenMP thread per process when N > 1 (mpirun binds each to a core);
# one process uses all cores.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD_DIR=${BUILD_DIR:-build}
BIN=$BUILD_DIR/synapse
MAX_PROCS=${MAX_PROCS:-$(nproc)}
[ "$MAX_PROCS" -ge 2 ] || MAX_PROCS=2
REPEAT=${REPEAT:-2}
MODELS=${MODELS:-mlp models/fmnist_cnn.cfg}
command -v mpirun >/dev/null || { echo "run_dist: no mpirun (Debian: openmpi-bin)" >&2; exit 1; }
[ -x "$BIN" ] && [ -f "$BUILD_DIR/libsynapse_mpi.so" ] ||
    { echo "run_dist: build $BIN and libsynapse_mpi.so first (./test.sh --quick, or cmake)" >&2; exit 1; }
# root in containers; more processes than cores when asked
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# one run: prints "samples_per_s test_accuracy", or nothing on failure
run() { # procs model [options]
    local n=$1 model=$2
    shift 2
    local args=(train --epochs 1 --quiet --seed 1 "$@")
    [ "$model" != mlp ] && args=(train "$model" --epochs 1 --quiet --seed 1 "$@")
    local line
    if [ "$n" = 1 ]; then line=$("$BIN" "${args[@]}" | tail -1)
    else line=$(mpirun -np "$n" "$BIN" "${args[@]}" | tail -1); fi
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(r["samples_per_s"], r["test_accuracy"])' \
        "$line" 2>/dev/null
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(date -u +%F)"
printf '%-24s %9s %14s %9s %9s\n' model processes samples/s speed-up test_acc
for model in $MODELS; do
    base=""
    for n in 1 $(seq 2 "$MAX_PROCS"); do
        best="" acc=""
        for _ in $(seq "$REPEAT"); do
            read -r rate a < <(run "$n" "$model" "$@") || true
            [ -n "${rate:-}" ] || continue
            if [ -z "$best" ] || python3 -c "import sys; sys.exit(not $rate > $best)"; then best=$rate acc=$a; fi
        done
        if [ -z "$best" ]; then
            printf '%-24s %9s %14s\n' "$model" "$n" FAILED
            continue
        fi
        [ "$n" = 1 ] && base=$best
        speed=$(python3 -c "print('%.2f' % ($best / $base))" 2>/dev/null || echo -)
        printf '%-24s %9s %14.0f %9s %9s\n' "$model" "$n" "$best" "${speed}x" "$acc"
    done
done
