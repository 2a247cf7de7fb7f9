#!/usr/bin/env bash
# Runs an example program briefly (CTest), in a temporary folder: skipped
# (exit 77) when the data it needs is not installed; fails when it exits
# non-zero, when a line it must print is missing from its stdout, or when a
# file it must write is missing or empty (or, for a .png, not a PNG).
#   tests/example_test.sh [--needs PATH]... [--expect REGEX]... [--creates FILE]... -- PROGRAM [ARGS...]
set -euo pipefail
needs=() expect=() creates=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
    --needs) needs+=("$2") ;;
    --expect) expect+=("$2") ;;
    --creates) creates+=("$2") ;;
    *) echo "example_test: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
[ $# -ge 2 ] || { echo "usage: example_test.sh [--needs P] [--expect RE] [--creates F] -- PROGRAM [ARGS...]" >&2; exit 2; }
shift
for p in ${needs[@]+"${needs[@]}"}; do
    [ -r "$p" ] || { echo "SKIP $(basename "$1"): $p not installed"; exit 77; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/synapse-example.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prog=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
cd "$tmp"
rc=0
"$prog" "$@" >stdout || rc=$?
cat stdout
[ "$rc" -eq 0 ] || { echo "example_test: $(basename "$prog") exited with $rc" >&2; exit 1; }
for re in ${expect[@]+"${expect[@]}"}; do
    grep -Eq -- "$re" stdout || { echo "example_test: no line matching '$re' in the output" >&2; exit 1; }
done
for f in ${creates[@]+"${creates[@]}"}; do
    [ -s "$f" ] || { echo "example_test: $f was not written" >&2; exit 1; }
    case "$f" in *.png)
        [ "$(head -c 4 "$f" | tail -c 3)" = PNG ] || { echo "example_test: $f is not a PNG file" >&2; exit 1; } ;;
    esac
done
echo "example_test: $(basename "$prog") passed"
