#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang 14, ASan + UBSan) in build-fuzz and runs each for
# FUZZ_SECONDS (default 60) or FUZZ_RUNS executions, seeded from fuzz/corpus/<target> and the repository's own
# manifests and test data; the corpus each run grows stays in build-fuzz/corpus/<target>.
# Prints executions, exec/s and findings per target; exits 1 on any finding (crash, leak,
# timeout, out of memory), whose input is left in build-fuzz/artifacts/.
#   scripts/fuzz.sh [target ...]      (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-60}
dir=${FUZZ_BUILD_DIR:-build-fuzz}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBALLAST_SANITIZE=address -DBALLAST_FUZZ=ON -DBALLAST_BUILD_TESTS=OFF \
  -DBALLAST_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" --target ballast_fuzzers

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(manifest_fuzz json_bodies_fuzz webhook_fuzz restore_message_fuzz http_request_fuzz
           gzip_fuzz plan_fuzz kustomize_fuzz sops_fuzz)
fi

# Seeds: the checked-in ones, plus what the repository already holds.
seed() {  # seed TARGET: prints the seed directory
  local t=$1 s="$dir/seeds/$1"
  rm -rf "$s" && mkdir -p "$s"
  cp fuzz/corpus/"${t%_fuzz}"/* "$s"/ 2>/dev/null || true
  case $t in
    manifest_fuzz)
      find examples tests/testdata -name '*.yaml' -exec cp --backup=numbered -t "$s" {} + ;;
    plan_fuzz)
      for c in tests/testdata/diff/*/; do
        { cat examples/repo/web.yaml; printf '\0'; cat "$c/desired.yaml"; } > "$s/$(basename "$c")"
      done ;;
    restore_message_fuzz)
      find tests/testdata/restore_message -type f -exec cp --backup=numbered -t "$s" {} + ;;
    sops_fuzz)
      cp tests/sops/fixtures/*.yaml tests/sops/fixtures/*.json tests/sops/fixtures/*.env "$s"/ ;;
    kustomize_fuzz)
      local k=tests/model/kustomize
      for c in "$k"/overlay/prod "$k"/components/app "$k"/components/tls "$k"/components/env; do
        { cat "$c/kustomization.yaml"; printf '\0\0'; cat "$k/overlay/base/deployment.yaml";
          printf '\0'; cat "$k/overlay/base/kustomization.yaml"; } > "$s/$(echo "$c" | tr / _)"
      done ;;
  esac
  echo "$s"
}

# Limits mirror production: a manifest file is at most 4 MiB, a request body 1 MiB (+ headers).
max_len() {
  case $1 in
    manifest_fuzz|plan_fuzz|kustomize_fuzz|sops_fuzz) echo 65536 ;;
    http_request_fuzz) echo 32768 ;;
    *) echo 16384 ;;
  esac
}
dict() {
  case $1 in
    manifest_fuzz|plan_fuzz|kustomize_fuzz|sops_fuzz) echo "-dict=fuzz/manifest.dict" ;;
    json_bodies_fuzz|http_request_fuzz) echo "-dict=fuzz/json.dict" ;;
  esac
}

limit=(-max_total_time="$seconds")
[ -z "${FUZZ_RUNS:-}" ] || limit=(-runs="$FUZZ_RUNS")
failed=0
printf '%-22s %12s %10s %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  corpus="$dir/corpus/$t"
  mkdir -p "$corpus" "$dir/artifacts"
  seeds=$(seed "$t")
  log="$dir/$t.log"
  rc=0
  # shellcheck disable=SC2046
  "$dir/fuzz/$t" "$corpus" "$seeds" $(dict "$t") -max_len="$(max_len "$t")" \
    "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$t-" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FINDING (exit $rc): see $log and $dir/artifacts/"
    failed=1
  fi
  printf '%-22s %12s %10s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
done
[ "$failed" -eq 0 ] || { echo "fuzz: findings above" >&2; exit 1; }
cd "$root"
