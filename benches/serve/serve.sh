#!/usr/bin/env bash
# Benchmark: `runbook serve` taking Alertmanager deliveries, beside a bare axum handler that
# reads the body and answers 200 (the framework's ceiling on this machine). wrk posts
# realistic webhook bodies (benches/serve/alerts.lua: version 4, a new groupKey each, so every
# delivery is recorded; alerts over 100 fingerprints) on loopback. Prints deliveries/s, p99
# acknowledgment, the ratio to the bare handler, how many deliveries were persisted, the time
# from an alert's first delivery to its run's first check (p50/p99) and to its incident's first
# level sent, and RSS every 5 s.
# Informational: always exits 0.
#
# Usage:   benches/serve/serve.sh         (DURATION=60 CONNECTIONS=16 THREADS=2 to tune)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 0
DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
BIN=target/release/runbook
BARE=target/release/examples/bare-axum

say() { printf '%s\n' "$*"; }
hr() { say "------------------------------------------------------------------------"; }
for t in wrk python3; do
  command -v "$t" >/dev/null 2>&1 || { say "$t not found: apt-get install -y $t   (benchmark skipped)"; exit 0; }
done
say "building: cargo build --release --bin runbook --example bare-axum"
cargo build --release --bin runbook --example bare-axum || { say "build failed"; exit 0; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/runbook-bench-serve.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 0' INT TERM

mkdir -p "$TMP/runbooks"
cp runbooks/policy.yaml "$TMP/runbooks/"
cat >"$TMP/runbooks/sse-slo-bench.yaml" <<'YAML'
runbook: sse-slo-bench
title: SSE availability SLO (bench)
severity: P3
triggers:
  alerts: [SseAvailabilitySLOViolation]
params:
  fp: { type: string, default: "", from: alert.fingerprint }
checks:
  - id: marker
    probe: file
    with: { path: /nonexistent/runbook-bench }
    expect: "exists"
causes:
  - id: missing
    title: Marker missing
    when: checks.marker.failed
    escalate: L1
escalation: { ladder: p3d }
YAML
printf 'bench-token\n' >"$TMP/token"; chmod 600 "$TMP/token"

URL=""
LAST_PID=""
start() { # name, command...; waits (bounded) for "listening on URL"; sets URL and LAST_PID
  local name=$1; shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  URL=""
  for _ in $(seq 1 100); do
    URL=$(sed -n 's/^listening on //p' "$TMP/$name.out" | head -n1)
    [ -n "$URL" ] && break
    sleep 0.1
  done
}

start bare "$BARE" 127.0.0.1:0
BARE_URL=$URL
start serve "$BIN" --runbooks "$TMP/runbooks" --db "$TMP/audit.db" serve \
  --listen 127.0.0.1:0 --token-file "$TMP/token" --cooldown 1h --queue 4096 ${WORKERS:+--workers "$WORKERS"}
SERVE_URL=$URL
SERVE_PID=$LAST_PID
if [ -z "$BARE_URL" ] || [ -z "$SERVE_URL" ]; then
  say "a server did not start:"; cat "$TMP"/*.err | head -n 10; exit 0
fi

hr
say "machine: $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; $(wrk --version 2>&1 | head -n1)"
hr
run_wrk() { # name url
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s benches/serve/alerts.lua \
    -H "Authorization: Bearer bench-token" "$2/hooks/alertmanager" >"$TMP/$1.wrk" 2>&1
}
run_wrk bare "$BARE_URL"
: >"$TMP/rss"
( for _ in $(seq 1 $((DURATION / 5 + 1))); do
    grep VmRSS "/proc/$SERVE_PID/status" 2>/dev/null | awk '{print $2}' >>"$TMP/rss"; sleep 5
  done ) &
RSS_PID=$!
run_wrk serve "$SERVE_URL"
wait "$RSS_PID" 2>/dev/null
sleep 2   # the last runs finish

python3 - "$TMP" <<'PY'
import json, re, sqlite3, statistics, sys
tmp = sys.argv[1]
def wrk(name):
    t = open(f"{tmp}/{name}.wrk").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    total = int(re.search(r"(\d+) requests in", t).group(1))
    def ms(x):
        v, u = re.match(r"([\d.]+)(\w+)", x).groups()
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return dict(rps=rps, total=total, p50=p50, p99=p99, bad=int(bad.group(1)) if bad else 0)
b, s = wrk("bare"), wrk("serve")
db = sqlite3.connect(f"{tmp}/audit.db")
persisted = db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
first = dict(db.execute("SELECT json_extract(payload, '$.alerts[0].fingerprint'), MIN(received_at) FROM alerts GROUP BY 1").fetchall())
lat = []
from datetime import datetime
def t(x): return datetime.fromisoformat(x.replace("Z", "+00:00"))
for rid, params in db.execute("SELECT id, params FROM runs WHERE trigger = 'webhook'"):
    fp = json.loads(params).get("fp")
    check = db.execute("SELECT MIN(started_at) FROM steps WHERE run_id = ? AND kind = 'check'", (rid,)).fetchone()[0]
    if fp in first and check:
        lat.append((t(check) - t(first[fp])).total_seconds() * 1e3)
lat.sort()
# The incidents the runs opened and when their first level was sent (the escalation thread).
paged = []
for fp, at in db.execute("SELECT i.dedup_key, MIN(e.fired_at) FROM incidents i JOIN escalations e ON e.incident_id = i.id AND e.state = 'fired' GROUP BY i.id"):
    if fp in first and at:
        paged.append((t(at) - t(first[fp])).total_seconds() * 1e3)
paged.sort()
rss = [int(x) / 1024 for x in open(f"{tmp}/rss").read().split()]
print(f"{'':22} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'requests':>9}")
for name, r in (("bare axum handler", b), ("runbook serve", s)):
    print(f"{name:22} {r['rps']:13.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['bad']:8d} {r['total']:9d}")
print()
print(f"runbook serve / bare axum: {s['rps'] / b['rps'] * 100:.1f} % of the framework's ceiling")
print(f"persisted deliveries: {persisted} of {s['total'] - s['bad']} accepted")
if lat:
    p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))]
    print(f"alert first delivered -> run's first check: {len(lat)} runs, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms")
if paged:
    q = lambda x: paged[min(len(paged) - 1, int(len(paged) * x))]
    print(f"alert first delivered -> incident's first level sent: {len(paged)} incidents, p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms")
print(f"RSS every 5 s (MiB): {' '.join(f'{x:.1f}' for x in rss)}")
print()
def verdict(ok, text): print(f"{'PASS' if ok else 'FAIL'}  {text}")
verdict(s["rps"] >= 5000 and s["bad"] == 0, f">= 5000 deliveries/s accepted: {s['rps']:.0f}/s, {s['bad']} refused")
verdict(persisted >= s["total"] - s["bad"], f"every accepted delivery persisted: {persisted} (wrk counted {s['total'] - s['bad']} answered in its window)")
verdict(s["p99"] < 10, f"p99 acknowledgment < 10 ms: {s['p99']:.2f} ms")
if lat: verdict(p(0.99) < 50, f"alert -> first check p99 < 50 ms: {p(0.99):.1f} ms")
if len(rss) > 2: verdict(max(rss[1:]) < rss[1] * 1.5 + 8, f"memory flat: {rss[1]:.1f} -> {rss[-1]:.1f} MiB (max {max(rss):.1f})")
PY
exit 0
