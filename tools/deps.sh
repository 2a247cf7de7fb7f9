#!/usr/bin/env bash
# Installs the Debian packages Synapse needs to build, test and train, when
# they are missing. Sourced by run.sh and test.sh. The CUDA toolkit (nvcc,
# cuBLAS, cuDNN) is optional and not installed here: the CPU build works alone.
syn_install_deps() {
    local pkgs=(build-essential cmake pkg-config check libsubunit-dev libopenblas-dev libopenblas-openmp-dev zlib1g-dev libinih-dev
                libjansson-dev libpng-dev python3 dataset-fashion-mnist fortunes
                libopenmpi-dev openmpi-bin) # MPI: data-parallel training's plugin and its test
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures and builds into ${BUILD_DIR:-build}; extra cmake flags in $@;
# only the targets in $BUILD_TARGETS when it is set.
syn_build() {
    local dir="${BUILD_DIR:-build}" targets=()
    [ -n "${BUILD_TARGETS:-}" ] && read -r -a targets <<<"--target $BUILD_TARGETS"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
}
