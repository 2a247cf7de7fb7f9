#!/bin/sh
# Fails if the shared library defines a dynamic symbol other than syn_* (and
# the linker's own markers): the archives linked in (libinih), OpenMP outlined
# functions, CUDA's fatbin registration and every internal syn__ helper must
# stay hidden. Usage: tests/check_exports.sh path/to/libsynapse.so
set -eu
lib=${1:?usage: check_exports.sh libsynapse.so}
[ -f "$lib" ] || { echo "check_exports: no such file: $lib" >&2; exit 2; }
syms=$(nm -D --defined-only "$lib" | awk '{print $NF}')
[ -n "$syms" ] || { echo "check_exports: $lib exports nothing" >&2; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -Ev '^syn_' | grep -Ev '^syn__' |
      grep -Ev '^(_init|_fini|__bss_start|_edata|_end|__data_start|data_start|_IO_stdin_used|__dso_handle|__libc_csu_(init|fini))$' || true)
internal=$(printf '%s\n' "$syms" | grep -E '^syn__' || true)
bad=$(printf '%s\n%s\n' "$bad" "$internal" | grep -v '^$' || true)
if [ -n "$bad" ]; then
    echo "check_exports: $lib exports $(printf '%s\n' "$bad" | wc -l) symbols besides syn_*:" >&2
    printf '  %s\n' $bad | head -40 >&2
    exit 1
fi
echo "check_exports: $(printf '%s\n' "$syms" | grep -c '^syn_') syn_* symbols, nothing else"
