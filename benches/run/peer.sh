#!/usr/bin/env bash
# Peer of benches/run/runbooks/bench-sse.yaml: the same 10 checks written the way the seed
# runbook does them (curl, jq, ls/stat, df, free, awk, a python3 json.loads loop).
# Usage: peer.sh BASE_URL TOKEN_FILE EVENTS_FILE WORK_DIR MAX_LINE_BYTES
# Prints one line per check; exits 1 if any check failed (like `runbook run`).
set -uo pipefail
BASE=$1 TOKEN=$2 EVENTS=$3 DIR=$4 MAX=$5
fails=0
check() { # id ok(0/1) detail
  if [ "$2" -eq 0 ]; then echo "ok    $1 $3"; else echo "FAIL  $1 $3"; fails=$((fails + 1)); fi
}

# SSE stream not connecting: immediate checks
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz")
[ "$code" = 200 ]; check healthz $? "status=$code"
clients=$(curl -s --max-time 10 "$BASE/health" | jq -r '.sse_clients')
[ "${clients:-0}" -gt 0 ] 2>/dev/null; check sse_clients $? "value=$clients"
stats=$(curl -s -w '\n%{http_code}' --max-time 10 "$BASE/health")
code=${stats##*$'\n'}
echo "${stats%$'\n'*}" | jq -c '.tailer_stats' >/dev/null && [ "$code" = 200 ]; check tailer_stats $? "status=$code"
code=$(curl -s -I -o /dev/null -w '%{http_code}' --max-time 10 "$BASE/sse")
[ "$code" = 200 ]; check sse_headers $? "status=$code"
events=$(curl -s --max-time 10 "$BASE/metrics" | awk '$1 == "sse_events_total" { print $2 }')
awk -v v="${events:-0}" 'BEGIN { exit !(v > 0) }'; check metrics_flowing $? "value=$events"

# Authentication: token present (never read it)
ls -la "$TOKEN" >/dev/null 2>&1; check token_present $? "mode=$(stat -c %a "$TOKEN" 2>/dev/null)"

# Host
disk=$(df -P "$DIR" | awk 'NR == 2 { sub("%", "", $5); print $5 }')
[ "${disk:-100}" -lt 95 ]; check disk $? "used_pct=$disk"
mem=$(free -m | awk '/^Mem:/ { printf "%d", ($2 - $7) * 100 / $2 }')
[ "${mem:-100}" -lt 95 ]; check memory $? "used_pct=$mem"

# Dead / empty stream: malformed JSON, oversized lines
malformed=$(python3 -c '
import json, sys
bad = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            bad += 1
print(bad)' "$EVENTS")
[ "${malformed:-1}" -eq 0 ]; check malformed_json $? "malformed=$malformed"
oversized=$(awk -v n="$MAX" 'length > n { c++ } END { print c + 0 }' "$EVENTS")
[ "$oversized" -eq 0 ]; check oversized_lines $? "oversized=$oversized"

[ "$fails" -eq 0 ]
