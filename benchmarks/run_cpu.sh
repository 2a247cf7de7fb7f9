#!/usr/bin/env bash
# Synapse vs PyTorch on the CPU, side by side, in one command: the MLP
# 784-1024-1024-10 training step (batch 128 and 1024) and SGEMM 1024^3 / 4096^3.
# Builds bench_mlp if needed, makes a venv at .venv with PyTorch from PyPI if
# it lacks one, runs both with the same thread count, writes the JSON lines to
# results/bench_cpu.jsonl and prints a comparison (ratio = PyTorch ms / Synapse
# ms, so > 1.0 means Synapse is faster).
#
#   benchmarks/run_cpu.sh [bench_mlp options: --iters N --warmup N --batch N --only mlp|sgemm ...]
#
# Environment:
#   THREADS           threads for OpenMP, OpenBLAS and torch alike (default: nproc)
#   REPEAT=N          alternate the two sides N times; compare each side's lowest median
#   BUILD_DIR         CMake build folder (default: build); SKIP_BUILD=1 uses the bench_mlp there
#   VENV              the venv with torch (default: .venv); NO_TORCH_INSTALL=1 never installs
#   TORCH_INDEX_URL   install torch from that index instead of PyPI (PyTorch's CPU-only
#                     wheel index is far smaller than PyPI's CUDA build, where reachable)
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left as they are and reported.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
BUILD_DIR=${BUILD_DIR:-build}
VENV=${VENV:-.venv}
THREADS=${THREADS:-$(nproc)}
OUT=results/bench_cpu.jsonl
mkdir -p results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { printf '\n== %s\n' "$*"; }

# ---- build -------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" = 1 ] && [ -x "$BUILD_DIR/bench_mlp" ]; then
    say "using the existing $BUILD_DIR/bench_mlp (SKIP_BUILD=1)"
else
    say "building bench_mlp in $BUILD_DIR"
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" 2>&1 ||
            { cat "$tmp/cmake.log"; echo "run_cpu.sh: cmake configure failed" >&2; exit 1; }
    fi
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_mlp >"$tmp/build.log" 2>&1 ||
        { tail -40 "$tmp/build.log"; echo "run_cpu.sh: building bench_mlp failed" >&2; exit 1; }
fi

# ---- PyTorch -----------------------------------------------------------------
have_torch=0
torch_note=""
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
    if [ "${NO_TORCH_INSTALL:-0}" = 1 ]; then
        torch_note="PyTorch is not installed in $VENV (NO_TORCH_INSTALL=1)"
    else
        say "installing PyTorch into $VENV (PyPI's Linux wheel carries CUDA libraries: a few GB; it runs on the CPU)"
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >"$tmp/venv.log" 2>&1 ||
            torch_note="cannot create the venv $VENV: $(tail -1 "$tmp/venv.log")"
        if [ -z "$torch_note" ]; then
            idx=()
            [ -n "${TORCH_INDEX_URL:-}" ] && idx=(--index-url "$TORCH_INDEX_URL")
            if ! "$VENV/bin/pip" install "${idx[@]}" torch >"$tmp/pip.log" 2>&1; then
                torch_note="pip install torch failed: $(grep -m1 -iE 'error' "$tmp/pip.log" || tail -1 "$tmp/pip.log")"
            fi
        fi
    fi
fi
if [ -z "$torch_note" ] && "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
    have_torch=1
elif [ -z "$torch_note" ]; then
    torch_note="torch does not import in $VENV: $("$VENV/bin/python" -c 'import torch' 2>&1 | tail -1)"
fi

# ---- run -----------------------------------------------------------------------
say "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs; threads $THREADS;" \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-(unset)}"

# Other processes on the machine skew timings: each run reports the CPU time
# that the rest of the machine used meanwhile. REPEAT=N alternates the two
# sides N times; the comparison takes each side's lowest median.
hz=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
child_ticks() { sed 's/.*) //' "/proc/$$/stat" | awk '{print $14+$15}'; }
# run LABEL CMD...: runs, shows and collects one side; returns its exit status
run() {
    local label=$1; shift
    local b0 c0 t0 rc
    b0=$(busy_ticks); c0=$(child_ticks); t0=$(date +%s.%N)
    "$@" | tee "$tmp/out.txt"
    rc=${PIPESTATUS[0]}
    grep '^{' "$tmp/out.txt" >>"$OUT"
    awk -v b="$(( $(busy_ticks) - b0 ))" -v c="$(( $(child_ticks) - c0 ))" -v hz="$hz" -v n="$(nproc)" \
        -v t0="$t0" -v t1="$(date +%s.%N)" -v l="$label" 'BEGIN {
        o = (b - c) / hz; w = t1 - t0; noisy = (o > 0.05 * w * n) ? " - NOISY, rerun when the machine is quiet" : "";
        printf "[%s: %.1f s; other processes used %.1f CPU-s meanwhile (%.0f%% of the machine)%s]\n", l, w, o,
               100 * o / (w * n), noisy }'
    return "$rc"
}

: >"$OUT"
syn_rc=0
for rep in $(seq 1 "${REPEAT:-1}"); do
    say "Synapse${REPEAT:+ (run $rep of $REPEAT)}"
    run Synapse "$BUILD_DIR/bench_mlp" --device cpu --threads "$THREADS" "$@" ||
        { syn_rc=$?; echo "run_cpu.sh: the Synapse benchmark failed (exit $syn_rc); see above" >&2; }
    if [ "$have_torch" = 1 ]; then
        say "PyTorch${REPEAT:+ (run $rep of $REPEAT)}"
        run PyTorch "$VENV/bin/python" benchmarks/pytorch/bench_mlp.py --device cpu --threads "$THREADS" "$@" ||
            { pt_rc=$?; echo "run_cpu.sh: the PyTorch benchmark failed (exit $pt_rc)" >&2; torch_note="the PyTorch run failed (exit $pt_rc)"; }
    fi
done
[ "$have_torch" = 1 ] || say "PyTorch: SKIPPED - $torch_note; only the Synapse side ran"

# ---- comparison ------------------------------------------------------------------
say "comparison (median ms; ratio = PyTorch / Synapse, > 1.0: Synapse faster) -> $OUT"
python3 - "$OUT" "$torch_note" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def key(r):
    return (r["bench"], r.get("batch") or r.get("m"))
def best(sel):  # lowest median per case over REPEAT runs
    out = {}
    for r in filter(sel, rows):
        if key(r) not in out or r["median_ms"] < out[key(r)]["median_ms"]:
            out[key(r)] = r
    return out
syn = best(lambda r: r.get("impl") == "synapse" and r.get("path", "graph") == "graph")
blas = best(lambda r: r.get("impl") == "synapse" and r.get("path") == "cblas")
pt = best(lambda r: r.get("impl") == "pytorch")
print(f"{'bench':<10} {'case':<12} {'Synapse ms':>11} {'PyTorch ms':>11} {'ratio':>7}   {'cblas ms':>9}  threads")
for k, s in syn.items():
    case = f"batch {k[1]}" if k[0] == "mlp_step" else f"{k[1]}^3"
    p = pt.get(k)
    b = blas.get(k)
    pms = f"{p['median_ms']:11.3f}" if p else f"{'-':>11}"
    ratio = f"{p['median_ms'] / s['median_ms']:7.2f}" if p else f"{'-':>7}"
    bms = f"{b['median_ms']:9.3f}" if b else f"{'':>9}"
    th = f"syn {s['threads']}/{s.get('blas_threads', '?')}" + (f", torch {p['threads']}" if p else "")
    print(f"{k[0]:<10} {case:<12} {s['median_ms']:11.3f} {pms} {ratio}   {bms}  {th}")
if sys.argv[2]:
    print(f"PyTorch column empty: {sys.argv[2]}")
EOF
exit "$syn_rc"
