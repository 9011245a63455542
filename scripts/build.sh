#!/usr/bin/env bash
# Configure and build one tree with cmake + ninja.
#
#   scripts/build.sh            build/       RelWithDebInfo, -Werror, tests + benches
#   scripts/build.sh --asan     build-asan/  ASan + UBSan, -Werror, tests, no benches
#   scripts/build.sh --fuzz     build-fuzz/  clang, libFuzzer targets only
#   scripts/build.sh --release  build-release/  Release, no tests, no benches
#
# Environment:
#   RTCAT_BUILD_ROOT  directory that holds the build trees (default: the repository root)
#   RTCAT_BUILD_DIR   exact build directory for this one invocation (overrides the above)
#   RTCAT_JOBS        parallel jobs (default 2)
# Extra arguments after the mode are passed to cmake's configure step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode=default
if [[ $# -gt 0 ]]; then
    case "$1" in
    --asan) mode=asan; shift ;;
    --fuzz) mode=fuzz; shift ;;
    --release) mode=release; shift ;;
    --default) shift ;;
    -h | --help)
        sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*) ;; # a cmake option: default mode
    esac
fi

build_root="${RTCAT_BUILD_ROOT:-$ROOT}"
jobs="${RTCAT_JOBS:-2}"
target=()
case "$mode" in
default)
    dir="$build_root/build"
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTCAT_WERROR=ON -DRTCAT_SANITIZE=OFF
        -DRTCAT_FUZZ=OFF -DRTCAT_TESTS=ON -DRTCAT_BENCH=ON)
    ;;
asan)
    dir="$build_root/build-asan"
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTCAT_WERROR=ON -DRTCAT_SANITIZE=ON
        -DRTCAT_FUZZ=OFF -DRTCAT_TESTS=ON -DRTCAT_BENCH=OFF)
    ;;
fuzz)
    dir="$build_root/build-fuzz"
    export CC=clang CXX=clang++
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTCAT_WERROR=ON -DRTCAT_SANITIZE=OFF -DRTCAT_FUZZ=ON
        -DRTCAT_TESTS=OFF -DRTCAT_BENCH=OFF)
    # Only the fuzzers (and what they link): the other trees already compile everything.
    target=(--target rtcat_fuzzers)
    ;;
release)
    dir="$build_root/build-release"
    args=(-DCMAKE_BUILD_TYPE=Release -DRTCAT_WERROR=OFF -DRTCAT_SANITIZE=OFF -DRTCAT_FUZZ=OFF
        -DRTCAT_TESTS=OFF -DRTCAT_BENCH=OFF)
    ;;
esac
dir="${RTCAT_BUILD_DIR:-$dir}"

echo "+ cmake -S $ROOT -B $dir -G Ninja ${args[*]} $*"
cmake -S "$ROOT" -B "$dir" -G Ninja "${args[@]}" "$@"
echo "+ cmake --build $dir -j $jobs ${target[*]}"
cmake --build "$dir" -j "$jobs" "${target[@]}"
echo "build.sh: $mode tree ready in $dir"
