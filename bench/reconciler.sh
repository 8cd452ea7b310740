#!/usr/bin/env bash
# End-to-end figures for the reconciler (bench/README.md, "reconciler"):
#   1. git push -> webhook -> new pods Ready, one-line change, N pushes (p50/p99)
#   2. GET /api/v1/status under wrk (req/s, p99; plain and conditional), when wrk is installed
#   3. RSS of `ballast serve` holding 10,000 objects (5,000 Deployments at 0 replicas + 5,000
#      Services)
# Usage: bench/reconciler.sh [path/to/ballast] [pushes]
set -euo pipefail

BALLAST=${1:-build/ballast}
BALLAST=$(realpath "$BALLAST")
PUSHES=${2:-20}
WORK=$(mktemp -d /tmp/ballast-rbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench \
  GIT_COMMITTER_EMAIL=bench@localhost

serve() {  # serve NAME REPO [flags...] -> prints URL
  local name=$1 repo=$2
  shift 2
  "$BALLAST" serve --repo "$repo" --listen 127.0.0.1:0 --state-dir "$WORK/$name-state" \
    --log-level warn "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  echo $! >"$WORK/$name.pid"
  for _ in $(seq 1 100); do
    if grep -q "listening on" "$WORK/$name.out"; then break; fi
    sleep 0.1
  done
  sed -n 's/listening on //p' "$WORK/$name.out"
}

# --- 1. push -> webhook -> ready ---------------------------------------------------------------
git init -q --bare -b main "$WORK/remote.git"
git clone -q "$WORK/remote.git" "$WORK/work" 2>/dev/null
manifest() {
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          command: ["$BALLAST", "demo-app"]
          args: ["--message", "$1"]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
EOF
}
manifest v0 >"$WORK/work/web.yaml"
git -C "$WORK/work" add web.yaml && git -C "$WORK/work" commit -qm v0 && git -C "$WORK/work" push -q origin main
# Signed webhooks (GitLab's token): unsigned ones are rate limited to 12 a minute.
echo bench-hook > "$WORK/hook-secret"
URL=$(serve push "$WORK/remote.git" --poll 3600 --webhook-secret-file "$WORK/hook-secret")
PIDS+=("$(cat "$WORK/push.pid")")
"$BALLAST" agent --server "$URL" --name bench-n1 --address 127.0.0.2 --work-dir "$WORK/agent" \
  --heartbeat 1 --no-cgroups --stop-pods-on-exit >"$WORK/agent.log" 2>&1 &
PIDS+=($!)

python3 - "$URL" "$WORK/work" "$BALLAST" "$PUSHES" <<'PY'
import json, subprocess, sys, time, urllib.request
url, work, ballast, pushes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def get(path):
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return json.load(r)
def ready(prev_rev):
    d = get("/api/v1/deployments")["items"]
    pods = get("/api/v1/pods")["items"]
    if not d or d[0]["revision"] == prev_rev: return None
    rev = d[0]["revision"]
    # Ready: a pod of the new revision is ready (the old one may still be terminating).
    if any(p["ready"] and p["revision"] == rev for p in pods): return rev
    return None
deadline = time.time() + 60
rev = None
while time.time() < deadline and rev is None:
    rev = ready("")
    time.sleep(0.05)
assert rev, "first rollout did not finish"
times = []
for i in range(1, pushes + 1):
    text = open(work + "/web.yaml").read().replace('"v%d"' % (i - 1), '"v%d"' % i)
    open(work + "/web.yaml", "w").write(text)
    subprocess.run(["git", "-C", work, "commit", "-qam", "v%d" % i], check=True)
    t0 = time.time()
    subprocess.run(["git", "-C", work, "push", "-q", "origin", "main"], check=True)
    req = urllib.request.Request(url + "/api/v1/webhook/git", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json",
                                          "X-Gitlab-Token": "bench-hook"})
    urllib.request.urlopen(req, timeout=5).read()
    new = None
    while new is None and time.time() - t0 < 60:
        new = ready(rev)
        if new is None: time.sleep(0.01)
    assert new, "push %d did not roll out" % i
    times.append(time.time() - t0)
    rev = new
times.sort()
p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
print("push->ready over %d pushes: p50 %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms"
      % (len(times), p(0.5) * 1000, p(0.99) * 1000, times[0] * 1000, times[-1] * 1000))
PY

# What the loop did: reconcile passes by reason, heartbeats by effect; during the pushes, then
# over 5 idle seconds (the agent heartbeats every second).
loop_metrics() { curl -s "$URL/metrics" | grep -E '^ballast_(reconciles|heartbeats)_total' | tr '\n' ' '; }
echo "after the pushes: $(loop_metrics)"
sleep 5
echo "5 s later:        $(loop_metrics)"

# --- 2. /api/v1/status under wrk ----------------------------------------------------------------
etag() { curl -s -D - -o /dev/null "$1" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p'; }
load() {  # load LABEL URL [wrk args...]
  local label=$1 url=$2
  shift 2
  wrk -t2 -c32 -d10s --latency "$@" "$url" | grep -E "Requests/sec|^ +(50|99)%" |
    awk -v l="$label" '{printf "%s%s", (NR == 1 ? l ": " : ", "), $0} END {print ""}' | tr -s ' '
}
if command -v wrk >/dev/null; then
  load "status" "$URL/api/v1/status"
  load "status, If-None-Match (304)" "$URL/api/v1/status" -H "If-None-Match: $(etag "$URL/api/v1/status")"
else
  echo "wrk not installed: skipping the /api/v1/status load test"
fi

# --- 3. RSS with 10,000 objects -----------------------------------------------------------------
git init -q --bare -b main "$WORK/big.git"
git clone -q "$WORK/big.git" "$WORK/big" 2>/dev/null
python3 - "$WORK/big" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(5000):
    d = os.path.join(root, "apps", "a%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "app%05d.yaml" % i), "w") as f:
        f.write(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: app{i:05d}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: app{i:05d}}}}}
  template:
    metadata: {{labels: {{app: app{i:05d}}}}}
    spec:
      containers:
        - name: app
          command: ["sleep", "1000"]
          ports: [{{name: http, containerPort: 8080}}]
          resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: app{i:05d}}}
spec:
  selector: {{app: app{i:05d}}}
  ports: [{{port: 80, targetPort: http}}]
""")
PY
git -C "$WORK/big" add -A && git -C "$WORK/big" commit -qm big && git -C "$WORK/big" push -q origin main
T0=$(date +%s.%N)
BIG_URL=$(serve big "$WORK/big.git" --poll 3600)
BIG_PID=$(cat "$WORK/big.pid")
PIDS+=("$BIG_PID")
for _ in $(seq 1 600); do
  if curl -s "$BIG_URL/api/v1/status" | grep -q '"sync":"Synced"' &&
    [ "$(curl -s "$BIG_URL/api/v1/history" | grep -c '"id":1')" = 1 ]; then break; fi
  sleep 0.2
done
T1=$(date +%s.%N)
OBJECTS=$(curl -s "$BIG_URL/api/v1/status" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["objects"]))')
sleep 2  # steady state: the history append's clean-up is done
echo "$OBJECTS objects: Synced after $(echo "$T1 - $T0" | bc) s; RSS 2 s later $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$BIG_PID/status)"
if command -v wrk >/dev/null; then
  echo "status body: $(curl -s "$BIG_URL/api/v1/status" | wc -c) bytes," \
    "gzipped $(curl -s -H 'Accept-Encoding: gzip' "$BIG_URL/api/v1/status" | wc -c) bytes"
  load "10,000 objects, status" "$BIG_URL/api/v1/status"
  load "10,000 objects, status, If-None-Match (304)" "$BIG_URL/api/v1/status" \
    -H "If-None-Match: $(etag "$BIG_URL/api/v1/status")"
  load "10,000 objects, status, gzip" "$BIG_URL/api/v1/status" -H "Accept-Encoding: gzip"
  load "10,000 objects, deployments" "$BIG_URL/api/v1/deployments"
  load "10,000 objects, deployments, gzip" "$BIG_URL/api/v1/deployments" -H "Accept-Encoding: gzip"
fi
echo "RSS after the load: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$BIG_PID/status)"
