#!/usr/bin/env bash
# Runs every benchmark program that `make bench` built. Usage: scripts/bench.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
for b in $(find "$build/bench" -maxdepth 2 -type f -executable -name 'bench_*' | sort); do
  echo "== $b"
  "$b" --benchmark_counters_tabular=true
done
for s in bench/*.sh; do
  [ -e "$s" ] || continue
  echo "== $s"
  "$s" "$build"
done
