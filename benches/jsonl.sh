#!/usr/bin/env bash
# Benchmark: the `jsonl` probe against its peers on a generated 512 MiB Aurora-like events
# file (examples/gen-events.rs, seed 1: ≈360-byte lines, 0.2 % truncated, 0.001 % over 1 MiB),
# page-cached. In ONE hyperfine run, as fresh processes (--shell=none):
#   runbook probe jsonl       (lines, malformed, oversized: the full scan)
#   python3 json.loads loop   (the seed's "Validate JSON in log files" loop, counting every
#                              malformed line instead of stopping at the first)
#   jq -R fromjson            (jq's own strict parser, one line at a time)
#   wc -l                     (the I/O limit: memchr over the page cache)
# Then, separately: peak memory (512 MiB file; a file that is one 600 MiB line), an
# incremental re-scan of the unchanged file, and follow mode against a writer at 100 MB/s.
# Prints medians, throughputs, ratios and PASS/FAIL against issue 5's targets. Informational:
# always exits 0.
#
# Usage:   benches/jsonl.sh            (SIZE=512MiB RUNS=5 JQ_RUNS=2 to tune; DATA=dir to keep
#                                       the generated file between runs)
# Output:  benches/results/jsonl.json (hyperfine --export-json), jsonl.md
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 0

SIZE=${SIZE:-512MiB}
RUNS=${RUNS:-5}
JQ_RUNS=${JQ_RUNS:-2}
RESULTS=benches/results
BIN=target/release/runbook
GEN=target/release/examples/gen-events

say() { printf '%s\n' "$*"; }
hr() { say "------------------------------------------------------------------------"; }

for t in hyperfine python3 jq wc; do
  if ! command -v "$t" >/dev/null 2>&1; then
    say "$t not found: apt-get update && apt-get install -y $t   (benchmark skipped)"
    exit 0
  fi
done
if [ ! -x /usr/bin/time ]; then
  say "/usr/bin/time not found: apt-get install -y time   (benchmark skipped)"
  exit 0
fi

say "building: cargo build --release --bin runbook --example gen-events"
cargo build --release --bin runbook --example gen-events || { say "build failed"; exit 0; }

DATA=${DATA:-}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runbook-bench-jsonl.XXXXXX")
WRITER_PID=""
cleanup() {
  [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
[ -n "$DATA" ] || DATA=$TMP
mkdir -p "$DATA" "$RESULTS"
EVENTS=$DATA/events-$SIZE-seed1.jsonl
if [ ! -s "$EVENTS" ]; then
  say "generating $EVENTS"
  "$GEN" "$EVENTS" --size "$SIZE" --seed 1 >"$TMP/gen.json" || { say "generator failed"; exit 0; }
else
  "$GEN" "$TMP/check.jsonl" --size 1KiB --seed 1 >/dev/null
fi
BYTES=$(stat -c %s "$EVENTS")
cat "$EVENTS" >/dev/null   # page cache

PY=$TMP/seed_loop.py
cat >"$PY" <<'PYEOF'
# The seed's loop (aurora-p3d-operations-runbook.md, "Validate JSON in log files"), counting
# every malformed line rather than stopping at the first.
import json, sys
bad = 0
with open(sys.argv[1], 'r', errors='surrogateescape') as f:
    for i, line in enumerate(f):
        try:
            json.loads(line.strip())
        except json.JSONDecodeError as e:
            bad += 1
print(bad)
PYEOF

RB_CMD="$BIN probe jsonl --with path=$EVENTS"
PY_CMD="python3 $PY $EVENTS"
JQ_CMD="jq -nR 'reduce inputs as \$l (0; . + (try (\$l | fromjson | 0) catch 1))' $EVENTS"
# The form ../shared/perf-notes.md measured (and issue 5's ratio came from): one output per line.
JQ2_CMD="jq -R 'try fromjson catch \"MALFORMED\"' $EVENTS"
WC_CMD="wc -l $EVENTS"

hr
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')"
say "file: $EVENTS, $BYTES bytes, $(wc -l <"$EVENTS") lines; $(cat "$TMP/gen.json" 2>/dev/null)"
say "runbook: $("$BIN" --version); python3: $(python3 --version 2>&1); jq: $(jq --version); hyperfine: $(hyperfine --version)"
hr
say "sanity: counts from each side (malformed lines)"
say "  runbook: $($RB_CMD | python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print("lines", r["lines"], "malformed", r["malformed"], "oversized", r["oversized"])')"
say "  python:  $($PY_CMD)  (an oversized line is valid JSON to it: counted by runbook as oversized)"
hr

# jq is ~40x slower than the rest: it gets its own run count, in the same hyperfine run.
NO_COLOR=1 hyperfine -N --warmup 1 --runs "$RUNS" \
  --export-json "$RESULTS/jsonl.json" --export-markdown "$RESULTS/jsonl.md" \
  -n "runbook jsonl" "$RB_CMD" \
  -n "wc -l" "$WC_CMD" \
  -n "python json.loads loop" "$PY_CMD" 2>&1 | grep -v '^ *$'
NO_COLOR=1 hyperfine --shell=bash --warmup 0 --runs "$JQ_RUNS" \
  --export-json "$RESULTS/jsonl-jq.json" -n "jq fromjson (count)" "$JQ_CMD" \
  -n "jq fromjson (per line)" "$JQ2_CMD" 2>&1 | grep -v '^ *$'

# Peak memory (max RSS), whatever the file: the 512 MiB file, then one 600 MiB line.
/usr/bin/time -f '%M' -o "$TMP/rss1" $RB_CMD >/dev/null
{ printf '{"blob":"'; head -c $((600 << 20)) /dev/zero | tr '\0' 'x'; printf '"}\n{"ok":1}\n'; } >"$TMP/one-line.jsonl"
/usr/bin/time -f '%M' -o "$TMP/rss2" "$BIN" probe jsonl --with path="$TMP/one-line.jsonl" >"$TMP/one-line.out"
rm -f "$TMP/one-line.jsonl"

# Incremental: the first run reads the file and saves the position; a re-run of the
# unchanged file reads nothing new. Both the process and the probe's own time are reported.
DB=$TMP/positions.db
"$BIN" --db "$DB" probe jsonl --with path="$EVENTS" --with incremental=true >/dev/null
NO_COLOR=1 hyperfine -N --warmup 2 --runs 20 --export-json "$TMP/inc.json" \
  -n "incremental re-scan (process)" "$BIN --db $DB probe jsonl --with path=$EVENTS --with incremental=true" \
  2>&1 | grep -v '^ *$'
INC_PROBE_MS=$("$BIN" --db "$DB" probe jsonl --with path="$EVENTS" --with incremental=true \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["duration_ms"], d["result"]["lines"])')

# Follow: a writer appends 100 MB/s (10 MB every 100 ms, for 5 s) while `--follow` reports
# every second; at the end every written line must have been counted.
FOL=$TMP/follow
mkdir -p "$FOL"
: >"$FOL/app.jsonl"
"$BIN" probe jsonl --with "path=$FOL/app.jsonl" --follow --interval 1s --count 7 >"$FOL/../follow.out" 2>&1 &
FOLLOW_PID=$!
sleep 0.5
python3 - "$EVENTS" "$FOL/app.jsonl" >"$TMP/writer.out" <<'PYEOF' &
import sys, time
src, dst = sys.argv[1], sys.argv[2]
chunk = 10 * 1000 * 1000
lines = 0
written = 0
with open(src, 'rb') as f, open(dst, 'ab', buffering=0) as out:
    start = time.monotonic()
    for i in range(50):
        data = f.read(chunk)
        cut = data.rfind(b'\n') + 1          # whole lines only
        f.seek(cut - len(data), 1)
        out.write(data[:cut])
        written += cut
        lines += data[:cut].count(b'\n')
        # 100 MB/s: chunk i ends at (i + 1) * 100 ms.
        delay = start + (i + 1) * 0.1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
print(lines, written, round(written / elapsed / 1e6, 1))
PYEOF
WRITER_PID=$!
wait "$WRITER_PID"; WRITER_PID=""
wait "$FOLLOW_PID"

# Idle: follow a file nobody writes for 5 s; CPU time used.
mkdir -p "$TMP/idle" && : >"$TMP/idle/app.jsonl"
/usr/bin/time -f '%U %S' -o "$TMP/idle.cpu" "$BIN" probe jsonl --with "path=$TMP/idle/app.jsonl" \
  --follow --interval 1s --count 5 >/dev/null

hr
python3 - "$RESULTS/jsonl.json" "$RESULTS/jsonl-jq.json" "$BYTES" "$TMP/rss1" "$TMP/rss2" \
  "$TMP/inc.json" "$INC_PROBE_MS" "$TMP/writer.out" "$TMP/follow.out" "$TMP/one-line.out" \
  "$TMP/idle.cpu" <<'PY'
import json, statistics, sys
(main, jqf, size, rss1, rss2, inc, inc_probe, writer, follow, oneline, idle) = sys.argv[1:]
size = int(size)
res = {r["command"]: r for r in json.load(open(main))["results"]}
res.update({r["command"]: r for r in json.load(open(jqf))["results"]})
med = {k: r.get("median", statistics.median(r["times"])) for k, r in res.items()}
rb = med["runbook jsonl"]
print(f"{'command':26} {'median s':>9} {'GB/s':>7} {'vs runbook':>11}")
for k in ("runbook jsonl", "wc -l", "python json.loads loop", "jq fromjson (count)", "jq fromjson (per line)"):
    print(f"{k:26} {med[k]:9.3f} {size / med[k] / 1e9:7.2f} {med[k] / rb:10.1f}x")
gbps = size / rb / 1e9
r_py, r_wc = med["python json.loads loop"] / rb, rb / med["wc -l"]
r_jq, r_jq2 = med["jq fromjson (count)"] / rb, med["jq fromjson (per line)"] / rb
m1, m2 = int(open(rss1).read().split()[-1]) / 1024, int(open(rss2).read().split()[-1]) / 1024
one = json.load(open(oneline))["result"]
incd = json.load(open(inc))["results"][0]
inc_ms = incd.get("median", statistics.median(incd["times"])) * 1e3
probe_ms, new_lines = inc_probe.split()
w_lines, w_bytes, w_rate = open(writer).read().split()
reports = [json.loads(l) for l in open(follow) if l.startswith("{")]
seen = sum(r["lines"] for r in reports)
peak = max((r["bytes_per_s"] for r in reports), default=0)
print()
print(f"peak RSS: {m1:.1f} MiB on the {size >> 20} MiB file; {m2:.1f} MiB on a file of one 600 MiB line "
      f"(oversized={one['oversized']}, lines={one['lines']})")
print(f"incremental re-scan of the unchanged file: process {inc_ms:.1f} ms median, probe {probe_ms} ms, {new_lines} new lines")
print(f"follow: writer {w_lines} lines at {w_rate} MB/s; follow counted {seen} lines in {len(reports)} reports, "
      f"peak {peak / 1e6:.0f} MB/s")
idle_cpu = sum(float(x) for x in open(idle).read().split()[-2:])
print(f"follow, idle for 5 s: {idle_cpu * 1e3:.0f} ms of CPU ({idle_cpu / 5 * 100:.2f} %)")
print()
def verdict(ok, text): print(f"{'PASS' if ok else 'FAIL'}  {text}")
verdict(gbps >= 1.0, f"full scan >= 1 GB/s: {gbps:.2f} GB/s")
verdict(r_py >= 15, f">= 15x faster than the Python loop: {r_py:.1f}x")
verdict(r_jq2 >= 40, f">= 40x faster than jq (perf-notes' form, one output per line): {r_jq2:.1f}x")
verdict(r_jq >= 40, f">= 40x faster than jq (leanest form, a count): {r_jq:.1f}x")
verdict(r_wc <= 10, f"within 10x of wc -l: {r_wc:.1f}x")
verdict(max(m1, m2) < 64, f"peak memory < 64 MiB: {max(m1, m2):.1f} MiB")
verdict(float(probe_ms) < 5, f"incremental re-scan of an unchanged file < 5 ms (probe): {probe_ms} ms (process: {inc_ms:.1f} ms)")
verdict(seen == int(w_lines), f"follow keeps up with {w_rate} MB/s: {seen} of {w_lines} lines counted")
verdict(idle_cpu / 5 < 0.01, f"follow idle CPU near zero (< 1 %): {idle_cpu / 5 * 100:.2f} %")
PY
say
say "raw: $RESULTS/jsonl.json, $RESULTS/jsonl-jq.json, $RESULTS/jsonl.md (informational; exit 0 regardless)"
exit 0
