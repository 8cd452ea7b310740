#!/usr/bin/env bash
# Soak (issue #17): `ballast serve` and 3 agents under scripted churn for DURATION seconds
# (default 600; the issue's full run is 1800):
#   - a commit every 2 s, cycling: scale up, scale down, image (message) change, env change, a bad
#     commit (invalid manifest), its revert;
#   - an agent killed (kill -9) and restarted every 60 s, in turn;
#   - 4 API clients reading /api/v1/status, /pods and /plan?diff in a loop.
# Every 5 s a CSV row: seconds, reconciler RSS (KiB), open descriptors, threads, agents' RSS sum,
# pods Ready, history entries, API errors so far. At the end: API errors by kind, whether serve
# survived, its error lines. (Push -> Ready latency is bench/reconciler.sh's.)
#   bench/soak/soak.sh [path/to/ballast] [seconds] > soak.csv 2> soak.log
# Plot: gnuplot -e "set datafile separator ','; set terminal png; set output 'soak.png';
#   plot 'soak.csv' using 1:2 with lines title 'serve RSS KiB', '' using 1:3 with lines axes x1y2
#   title 'fds'" (or any spreadsheet).
set -euo pipefail
BALLAST=$(realpath "${1:-build/ballast}")
DURATION=${2:-600}
WORK=$(mktemp -d /tmp/ballast-soak.XXXXXX)
PIDS=()
AGENTS=(0 0 0)
cleanup() {
  for p in "${PIDS[@]}" "${AGENTS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  pkill -9 -f "$WORK" 2>/dev/null || true
  # The pods outlive their agents (as they should): every process working under $WORK.
  for cwd in /proc/[0-9]*/cwd; do
    case $(readlink "$cwd" 2>/dev/null) in "$WORK"/*) kill -9 "$(basename "$(dirname "$cwd")")" 2>/dev/null || true ;; esac
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
export GIT_AUTHOR_NAME=soak GIT_AUTHOR_EMAIL=soak@localhost GIT_COMMITTER_NAME=soak \
  GIT_COMMITTER_EMAIL=soak@localhost

git init -q --bare -b main "$WORK/remote.git"
git clone -q "$WORK/remote.git" "$WORK/work" 2>/dev/null
PORT=$((20000 + RANDOM % 20000))
manifest() {  # manifest REPLICAS MESSAGE ENV
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: $1
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          command: ["$BALLAST", "demo-app"]
          args: ["--message", "$2"]
          env: [{name: MODE, value: "$3"}]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: $PORT, targetPort: http}]
YAML
}
commit() {  # commit MESSAGE (the manifest is on stdin)
  cat >"$WORK/work/web.yaml"
  git -C "$WORK/work" add -A
  git -C "$WORK/work" commit -q -m "$1"
  git -C "$WORK/work" push -q origin main 2>/dev/null
}
manifest 3 v0 a | commit "start"

"$BALLAST" serve --repo "$WORK/remote.git" --listen 127.0.0.1:0 --state-dir "$WORK/state" \
  --poll 1 --log-level warn >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVE=$!
PIDS+=("$SERVE")
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/serve.out" && break; sleep 0.1; done
URL=$(sed -n 's/listening on //p' "$WORK/serve.out")
start_agent() {  # start_agent I
  local i=$1 n=$(($1 + 2))
  "$BALLAST" agent --server "$URL" --name "n$n" --address "127.0.0.$n" \
    --work-dir "$WORK/agent-n$n" --heartbeat 1 --cpu 4 --memory 4Gi --no-cgroups \
    --log-level warn >>"$WORK/agent-n$n.log" 2>&1 &
  AGENTS[$i]=$!
}
for i in 0 1 2; do start_agent "$i"; done

# API readers: count failures (connection errors or non-200) in files.
for r in 1 2 3 4; do
  (
    while true; do
      for path in /api/v1/status /api/v1/pods "/api/v1/plan?diff"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL$path" || echo 000)
        [ "$code" = 200 ] || echo "$code $path" >>"$WORK/api-errors"
      done
    done
  ) &
  PIDS+=($!)
done

# Churn: a commit every 2 s.
(
  step=0
  while true; do
    sleep 2
    case $((step % 6)) in
      0) manifest 5 "v$step" a | commit "scale up" ;;
      1) manifest 2 "v$step" a | commit "scale down" ;;
      2) manifest 3 "m$step" a | commit "image change" ;;
      3) manifest 3 "m$((step - 1))" "b$step" | commit "env change" ;;
      4) printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: "x"\n' |
           commit "bad commit" ;;
      5) git -C "$WORK/work" revert --no-edit HEAD >/dev/null && git -C "$WORK/work" push -q origin main 2>/dev/null ;;
    esac
    step=$((step + 1))
  done
) &
PIDS+=($!)

echo "seconds,serve_rss_kib,serve_fds,serve_threads,agents_rss_kib,pods_ready,history_entries,api_errors"
t0=$(date +%s)
next_kill=60
victim=0
while true; do
  now=$(($(date +%s) - t0))
  [ "$now" -ge "$DURATION" ] && break
  if [ "$now" -ge "$next_kill" ]; then
    kill -9 "${AGENTS[$victim]}" 2>/dev/null || true
    sleep 1
    start_agent "$victim"
    victim=$(((victim + 1) % 3))
    next_kill=$((next_kill + 60))
  fi
  rss=$(awk '/VmRSS/{print $2}' "/proc/$SERVE/status")
  fds=$(ls "/proc/$SERVE/fd" | wc -l)
  threads=$(awk '/Threads/{print $2}' "/proc/$SERVE/status")
  arss=0
  for p in "${AGENTS[@]}"; do
    a=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    arss=$((arss + ${a:-0}))
  done
  ready=$(curl -s --max-time 5 "$URL/api/v1/pods" |
    python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["items"] if p["ready"]))' \
    2>/dev/null || echo -1)
  entries=$(curl -s --max-time 5 "$URL/api/v1/history?limit=1" |
    python3 -c 'import json,sys; i=json.load(sys.stdin)["items"]; print(i[0]["id"] if i else 0)' \
    2>/dev/null || echo -1)
  errors=0
  [ ! -f "$WORK/api-errors" ] || errors=$(wc -l <"$WORK/api-errors")
  echo "$now,$rss,$fds,$threads,$arss,$ready,$entries,$errors"
  sleep 5
done
echo "API errors by kind:" >&2
sort "$WORK/api-errors" 2>/dev/null | uniq -c >&2 || true
echo "serve still running: $(kill -0 "$SERVE" 2>/dev/null && echo yes || echo NO)" >&2
grep -c "level=error" "$WORK/serve.log" >&2 || true
