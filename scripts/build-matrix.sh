#!/usr/bin/env bash
# Builds ballast in every configuration it supports, each warning-free under -Werror:
# {gcc, clang} x {Debug, RelWithDebInfo, Release, asan (ASan+UBSan), tsan}. Each goes to
# build-matrix/<compiler>-<config>; ccache keeps an unchanged tree cheap.
#   scripts/build-matrix.sh                      # all of them
#   scripts/build-matrix.sh clang-Release gcc-asan   # some of them
#   TARGETS=ballast scripts/build-matrix.sh clang-Release   # only what ships
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${JOBS:-$(nproc)}"
all=()
for compiler in gcc clang; do
  for config in Debug RelWithDebInfo Release asan tsan; do all+=("$compiler-$config"); done
done
wanted=("$@")
[[ ${#wanted[@]} -gt 0 ]] || wanted=("${all[@]}")

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

for name in "${wanted[@]}"; do
  compiler="${name%%-*}"
  config="${name#*-}"
  case "$compiler" in
    gcc) cc=gcc cxx=g++ ;;
    clang) cc=clang-14 cxx=clang++-14 ;;
    *) echo "build-matrix: unknown compiler in '$name' (gcc or clang)" >&2; exit 2 ;;
  esac
  flags=()
  case "$config" in
    # Debug without unity batches, so that a file which compiles only beside another in its
    # batch (a missing #include) is caught too.
    Debug) flags=(-DCMAKE_BUILD_TYPE=Debug -DBALLAST_UNITY_BUILD=OFF) ;;
    RelWithDebInfo | Release) flags=(-DCMAKE_BUILD_TYPE="$config") ;;
    asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DBALLAST_SANITIZE=address) ;;
    tsan) flags=(-DCMAKE_BUILD_TYPE=Debug -DBALLAST_SANITIZE=thread) ;;
    *) echo "build-matrix: unknown configuration in '$name'" >&2; exit 2 ;;
  esac
  dir="build-matrix/$name"
  echo "build-matrix: $name"
  start=$(date +%s)
  CC="$cc" CXX="$cxx" cmake -S . -B "$dir" "${flags[@]}" "${launcher[@]}" >/dev/null
  # shellcheck disable=SC2086  # TARGETS is a list
  cmake --build "$dir" -j "$jobs" ${TARGETS:+--target $TARGETS}
  echo "build-matrix: $name built in $(($(date +%s) - start)) s"
done
