#!/usr/bin/env bash
# Node agent figures: pod start latency over 100 pods, agent RSS, proxy vs direct (needs wrk:
# apt-get install wrk). Usage: bench/nodeagent.sh [BUILD_DIR] [PODS]
set -euo pipefail
build="${1:-build}"
pods="${2:-100}"
cmake --build "$build" --target ballast bench_nodeagent >/dev/null
"$build/bench/nodeagent/bench_nodeagent" "$build/ballast" "$pods"
