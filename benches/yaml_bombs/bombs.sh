#!/usr/bin/env bash
# Benchmark: `runbook validate` on hostile runbook files (YAML bombs); the loader's limits are in
# src/runbook/load.rs, the pass/fail tests in tests/yaml_bombs.rs.
#
# Builds release, generates each bomb into a temporary directory, runs `runbook validate` on each
# RUNS times and prints per bomb: exit code (2 expected), median ms, peak RSS MiB, PASS/FAIL
# against the targets (< 100 ms, < 64 MiB, exit 2). Medians come from hyperfine when installed
# (--shell=none, except the pipe case, which needs a shell), else from a timed loop; peak RSS
# from GNU time (`/usr/bin/time -f %M`), the largest over the runs. Informational only: always
# exits 0 (benchmarks never gate CI).
#
# Usage:   benches/yaml_bombs/bombs.sh
# Tuning:  RUNS=20 WARMUP=3 benches/yaml_bombs/bombs.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 0

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
BIN=$ROOT/target/release/runbook
TIME=/usr/bin/time

# Targets (printed, never enforced).
TARGET_MS=100
TARGET_MIB=64

say() { printf '%s\n' "$*"; }

if [ ! -x "$TIME" ] || ! "$TIME" -f %M true >/dev/null 2>&1; then
  say "GNU time ($TIME) not found, needed for peak RSS: apt-get install -y time"
  say "benchmark skipped."
  exit 0
fi
HYPERFINE=""
if command -v hyperfine >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
  HYPERFINE=$(command -v hyperfine)
else
  say "hyperfine or jq not found: timing with a shell loop (install: apt-get install -y hyperfine jq)"
fi

say "building release binary: cargo build --release"
if ! cargo build --release || [ ! -x "$BIN" ]; then
  say "cargo build --release failed; benchmark skipped."
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- bombs
# Each bomb sits in an otherwise valid runbook, under the http probe's free-form `with:`, so the
# parser reaches it (a top-level unknown key would be refused first, proving nothing).
head_of() {
  printf 'runbook: %s\ntitle: Broken on purpose\nseverity: P1\nchecks:\n  - id: healthz\n    probe: http\n    with:\n      url: "http://127.0.0.1:8001/healthz"\n' "$1"
}
tail_of() { printf '    expect: "status == 200"\n'; }
repeat() { # repeat STRING COUNT
  local s=$1 n=$2 out=""
  while [ "$n" -gt 0 ]; do
    if [ $((n & 1)) -eq 1 ]; then out+=$s; fi
    s+=$s
    n=$((n >> 1))
  done
  printf '%s' "$out"
}

{
  head_of billion-laughs
  printf '      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n'
  for i in 1 2 3 4 5 6 7 8 9; do
    p=$((i - 1))
    printf '      l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n' \
      "$i" "$i" "$p" "$p" "$p" "$p" "$p" "$p" "$p" "$p" "$p" "$p"
  done
  tail_of
} >"$WORK/billion-laughs.yaml"

{
  head_of merge-bomb
  printf '      m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}\n'
  for i in 1 2 3 4 5 6 7 8 9; do
    printf '      m%d: &m%d {' "$i" "$i"
    for k in 0 1 2 3 4 5 6 7 8; do printf 'k%d: {<<: *m%d}, ' "$k" $((i - 1)); done
    printf 'k9: {<<: *m%d}}\n' $((i - 1))
  done
  tail_of
} >"$WORK/merge-bomb.yaml"

{
  head_of deep-flow
  printf '      deep: %s%s\n' "$(repeat '[' 10000)" "$(repeat ']' 10000)"
  tail_of
} >"$WORK/deep-flow.yaml"

{
  head_of deep-block
  printf '      deep:\n        %sx\n' "$(repeat '- ' 10000)"
  tail_of
} >"$WORK/deep-block.yaml"

{
  head_of many-documents
  tail_of
  for ((i = 0; i < 10000; i++)); do
    printf -- '---\nrunbook: doc%d\ntitle: t\nseverity: P1\n' "$i"
  done
} >"$WORK/many-documents.yaml"

{
  printf 'runbook: huge-scalar\nseverity: P1\ntitle: "'
  head -c $((100 * 1024 * 1024)) /dev/zero | tr '\0' x
  printf '"\n'
} >"$WORK/huge-scalar.yaml"

# ---------------------------------------------------------------- measure
median_loop() { # median_loop CMD... : median wall ms of RUNS runs, by a shell loop
  local t0 t1 i
  local -a ms=()
  for ((i = 0; i < RUNS; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    ms+=("$(((t1 - t0) / 1000))")
  done
  printf '%s\n' "${ms[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

median_ms() { # median_ms NAME SHELL_OR_NONE CMD
  local name=$1 shell=$2 cmd=$3 json=$WORK/$1.json
  if [ -n "$HYPERFINE" ]; then
    local -a mode=(-N)
    if [ "$shell" = shell ]; then mode=(--shell=bash); fi
    "$HYPERFINE" "${mode[@]}" -i --style none --warmup "$WARMUP" --runs "$RUNS" \
      --export-json "$json" "$cmd" >/dev/null 2>&1
    jq -r '.results[0].median * 1000' "$json" | awk '{printf "%.1f", $1}'
  else
    median_loop bash -c "$cmd"
  fi
}

peak_and_exit() { # peak_and_exit CMD: "EXIT PEAK_KIB", the largest peak over RUNS runs
  local i rc=0 kib peak=0 out=$WORK/time.txt
  for ((i = 0; i < RUNS; i++)); do
    bash -c "$1" >/dev/null 2>&1
    rc=$(sed -n 's/^exit=\([0-9]*\),.*/\1/p' "$out")
    kib=$(sed -n 's/.*,rss=\([0-9]*\)$/\1/p' "$out")
    if [ "${kib:-0}" -gt "$peak" ]; then peak=$kib; fi
  done
  printf '%s %s\n' "$rc" "$peak"
}

say ""
say "runbook validate on YAML bombs: $RUNS runs each, $(nproc) cores; targets: exit 2, < $TARGET_MS ms, < $TARGET_MIB MiB"
printf '%-22s %5s %10s %9s  %s\n' bomb exit "median ms" "peak MiB" verdict
TIMEF='-f exit=%x,rss=%M'
for name in billion-laughs merge-bomb deep-flow deep-block many-documents huge-scalar huge-scalar-pipe; do
  if [ "$name" = huge-scalar-pipe ]; then
    # A pipe has no length: the loader must stop reading at 1 MiB (cat then gets EPIPE).
    cmd="cat $WORK/huge-scalar.yaml | $BIN validate /dev/stdin"
    timed="cat $WORK/huge-scalar.yaml | $TIME $TIMEF -o $WORK/time.txt $BIN validate /dev/stdin"
    ms=$(median_ms "$name" shell "$cmd")
  else
    cmd="$BIN validate $WORK/$name.yaml"
    timed="$TIME $TIMEF -o $WORK/time.txt $cmd"
    ms=$(median_ms "$name" none "$cmd")
  fi
  read -r rc kib <<<"$(peak_and_exit "$timed")"
  mib=$(awk -v k="$kib" 'BEGIN {printf "%.1f", k / 1024}')
  verdict=PASS
  if [ "$rc" != 2 ]; then verdict="FAIL (exit $rc)"; fi
  if ! awk -v m="$ms" -v t="$TARGET_MS" 'BEGIN {exit !(m < t)}'; then verdict="FAIL (time)"; fi
  if ! awk -v m="$mib" -v t="$TARGET_MIB" 'BEGIN {exit !(m < t)}'; then verdict="FAIL (memory)"; fi
  printf '%-22s %5s %10s %9s  %s\n' "$name" "$rc" "$ms" "$mib" "$verdict"
done
say ""
say "huge-scalar-pipe's median includes bash and cat; the others run with no shell."
exit 0
