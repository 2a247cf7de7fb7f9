#!/usr/bin/env bash
# Installs a built Synapse into a temporary prefix, then builds and runs
# examples/embed against the install only: through CMake (find_package(Synapse),
# the shared and the static target) and through pkg-config. Checks the
# installed files, the soname and the version header on the way.
#   tests/embed_test.sh BUILD_DIR [EXAMPLE_DIR] [CC]
set -euo pipefail
build=$(cd "${1:?usage: embed_test.sh BUILD_DIR [EXAMPLE_DIR] [CC]}" && pwd)
src=$(cd "${2:-$(dirname "$0")/../examples/embed}" && pwd)
cc=${3:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/synapse-embed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/synapse/synapse.h include/synapse/version.h bin/synapse; do
    [ -e "$prefix/$f" ] || { echo "embed_test: $f not installed" >&2; exit 1; }
done
lib=$(dirname "$(find "$prefix" -name 'libsynapse.a' | head -1)")
[ -e "$lib/libsynapse.so" ] && [ -e "$lib/cmake/Synapse/SynapseConfig.cmake" ] &&
    [ -e "$lib/cmake/Synapse/SynapseConfigVersion.cmake" ] && [ -e "$lib/pkgconfig/synapse.pc" ] ||
    { echo "embed_test: libsynapse.so, the CMake package or synapse.pc missing under $lib" >&2; exit 1; }
soname=$(objdump -p "$lib/libsynapse.so" | awk '$1 == "SONAME" {print $2}')
[ -e "$lib/$soname" ] || { echo "embed_test: soname '$soname' is not a file in $lib" >&2; exit 1; }
echo "installed: $(cd "$lib" && echo libsynapse.*) (soname $soname)"

echo "== CMake: find_package(Synapse) with CMAKE_PREFIX_PATH=$prefix"
cmake -S "$src" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Release >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/build" -j 2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
(cd "$tmp" && "$tmp/build/embed" "$tmp/shared.safetensors")
(cd "$tmp" && "$tmp/build/embed_static" "$tmp/static.safetensors")
# the shared one really runs the installed library, not one from the build tree
deps=$(ldd "$tmp/build/embed") # (not piped into grep -q: pipefail and SIGPIPE)
[[ $deps == *"$lib/libsynapse"* ]] ||
    { echo "embed_test: embed does not load $lib's libsynapse:" >&2; echo "$deps" >&2; exit 1; }

echo "== pkg-config with PKG_CONFIG_PATH=$lib/pkgconfig"
export PKG_CONFIG_PATH=$lib/pkgconfig
echo "synapse $(pkg-config --modversion synapse): $(pkg-config --cflags --libs synapse)"
pkg-config --static --libs synapse >/dev/null # every Requires.private module resolves
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/embed_pc" "$src/embed.c" $(pkg-config --cflags --libs synapse)
(cd "$tmp" && LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/embed_pc" "$tmp/pc.safetensors")
echo "embed_test: ok"
