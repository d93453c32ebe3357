#!/usr/bin/env bash
# Benchmark: `runbook validate runbooks/` against its peer, `ansible-playbook --syntax-check`
# on a playbook expressing the same 13 Aurora procedures (benches/peers/aurora-playbook.yml).
#
# Both commands are timed in ONE hyperfine invocation, as fresh processes (page cache warm),
# with no shell in between (--shell=none). Prints medians, the ratio ansible/runbook and
# PASS/FAIL against the targets. Informational only: always exits 0 (benchmarks never gate CI).
#
# Usage:   benches/validate.sh
# Tuning:  WARMUP=5 MIN_RUNS=30 RUNBOOK_DIR_BENCH=runbooks benches/validate.sh
# Output:  benches/results/validate.json (hyperfine --export-json), validate.md (markdown table)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 0

WARMUP=${WARMUP:-3}
MIN_RUNS=${MIN_RUNS:-20}
RUNBOOKS=${RUNBOOK_DIR_BENCH:-runbooks}
PLAYBOOK=benches/peers/aurora-playbook.yml
INVENTORY=benches/peers/inventory.ini
RESULTS=benches/results
BIN=target/release/runbook

# Targets (printed, never enforced).
TARGET_MEDIAN_MS=30
TARGET_RATIO=20

say() { printf '%s\n' "$*"; }
hr() { say "------------------------------------------------------------------------"; }

# ---------------------------------------------------------------- tools
missing=0
if ! command -v hyperfine >/dev/null 2>&1; then
  say "hyperfine not found. Install it with one of:"
  say "  apt-get update && apt-get install -y hyperfine"
  say "  cargo install --locked hyperfine"
  missing=1
fi
if ! command -v python3 >/dev/null 2>&1; then
  say "python3 not found (needed for ansible and to read hyperfine's JSON): apt-get install -y python3"
  missing=1
fi
if [ "$missing" -ne 0 ]; then
  say "benchmark skipped."
  exit 0
fi

# A pyenv shim is a bash script that re-execs the real entry point (~tens of ms): time the real
# one so the peer is not charged for our machine's Python packaging.
ANSIBLE=""
if command -v ansible-playbook >/dev/null 2>&1; then
  ANSIBLE=$(command -v ansible-playbook)
  case "$ANSIBLE" in
    */shims/*)
      if command -v pyenv >/dev/null 2>&1 && real=$(pyenv which ansible-playbook 2>/dev/null); then
        ANSIBLE=$real
      fi
      ;;
  esac
else
  say "ansible-playbook not found; the peer will be skipped. Install it with:"
  say "  pip install ansible-core        (or: pipx install ansible-core)"
fi

# ---------------------------------------------------------------- build
have_runbook=0
say "building release binary: cargo build --release"
if cargo build --release; then
  if [ -x "$BIN" ]; then have_runbook=1; fi
else
  say "cargo build --release failed; the runbook side will be skipped."
fi
shopt -s nullglob
rb_files=("$RUNBOOKS"/*.yaml "$RUNBOOKS"/*.yml)
shopt -u nullglob
if [ "$have_runbook" -eq 1 ] && [ "${#rb_files[@]}" -eq 0 ]; then
  say "no runbooks in $RUNBOOKS/; the runbook side will be skipped."
  have_runbook=0
fi

# ---------------------------------------------------------------- sanity runs
mkdir -p "$RESULTS"
# hyperfine refuses non-zero exits unless told otherwise; a benchmark of a failing command is
# still worth a number, but it must say so.
ignore_rb=""
rb_note=""
if [ "$have_runbook" -eq 1 ]; then
  NO_COLOR=1 "$BIN" validate "$RUNBOOKS/" >"$RESULTS/runbook.out" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then
    ignore_rb="-i"
    rb_note="(exit $rc: runbooks invalid, see above)"
    say "warning: '$BIN validate $RUNBOOKS/' exited $rc; timing it anyway. First lines:"
    head -n 15 "$RESULTS/runbook.out" | sed 's/^/  | /'
  fi
  rm -f "$RESULTS/runbook.out"
fi
ignore_an=""
an_note=""
if [ -n "$ANSIBLE" ]; then
  "$ANSIBLE" -i "$INVENTORY" --syntax-check "$PLAYBOOK" >"$RESULTS/ansible.out" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then
    ignore_an="-i"
    an_note="(exit $rc: playbook invalid)"
    say "warning: ansible-playbook --syntax-check exited $rc:"
    head -n 15 "$RESULTS/ansible.out" | sed 's/^/  | /'
  fi
  rm -f "$RESULTS/ansible.out"
fi

if [ "$have_runbook" -eq 0 ] && [ -z "$ANSIBLE" ]; then
  say "nothing to measure."
  exit 0
fi

# ---------------------------------------------------------------- measure
args=(--shell=none --warmup "$WARMUP" --min-runs "$MIN_RUNS" --export-json "$RESULTS/validate.json"
      --export-markdown "$RESULTS/validate.md")
if [ "$have_runbook" -eq 1 ]; then
  args+=($ignore_rb -n "runbook validate" "$BIN validate $RUNBOOKS/")
fi
if [ -n "$ANSIBLE" ]; then
  args+=($ignore_an -n "ansible-playbook --syntax-check" "$ANSIBLE -i $INVENTORY --syntax-check $PLAYBOOK")
fi
hr
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')"
say "runbook: $( [ "$have_runbook" -eq 1 ] && "$BIN" --version 2>/dev/null || echo 'n/a')"
say "ansible: $( [ -n "$ANSIBLE" ] && "$ANSIBLE" --version 2>/dev/null | head -n1 || echo 'n/a') ($ANSIBLE)"
say "hyperfine: $(hyperfine --version)"
hr
NO_COLOR=1 ANSIBLE_NOCOLOR=1 hyperfine "${args[@]}"
hb=$?
if [ "$hb" -ne 0 ]; then
  say "hyperfine failed (exit $hb); no figures."
  exit 0
fi

# ---------------------------------------------------------------- sizes
# lines: all lines; code: non-blank lines that are not only a comment.
count() { # files... -> "lines code files"
  if [ "$#" -eq 0 ]; then echo "0 0 0"; return; fi
  cat -- "$@" | awk -v n="$#" '{ t++ } !/^[[:space:]]*(#|$)/ { c++ } END { printf "%d %d %d\n", t, c, n }'
}
shopt -s nullglob
an_files=("$PLAYBOOK" benches/peers/tasks/*.yml)
shopt -u nullglob
read -r rb_lines rb_code rb_nfiles <<<"$(count "${rb_files[@]}")"
read -r an_lines an_code an_nfiles <<<"$(count "${an_files[@]}")"

# ---------------------------------------------------------------- report
python3 - "$RESULTS/validate.json" "$TARGET_MEDIAN_MS" "$TARGET_RATIO" \
  "$rb_lines" "$rb_code" "$rb_nfiles" "$an_lines" "$an_code" "$an_nfiles" \
  "$rb_note" "$an_note" <<'PY'
import json, statistics, sys

path, t_ms, t_ratio = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rb_lines, rb_code, rb_files, an_lines, an_code, an_files = sys.argv[4:10]
rb_note, an_note = sys.argv[10], sys.argv[11]
res = {r["command"]: r for r in json.load(open(path))["results"]}

def stats(name):
    r = res.get(name)
    if r is None:
        return None
    times = r["times"]
    med = r.get("median", statistics.median(times))
    return dict(median=med * 1e3, mean=r["mean"] * 1e3, sd=(r.get("stddev") or 0) * 1e3,
                min=r["min"] * 1e3, max=r["max"] * 1e3, runs=len(times))

rb = stats("runbook validate")
an = stats("ansible-playbook --syntax-check")

print()
print(f"{'command':34} {'median ms':>10} {'mean±σ ms':>16} {'min ms':>8} {'runs':>5} {'files':>6} {'lines':>6} {'code':>6}")
for name, s, lines, code, files, note in (
    ("runbook validate", rb, rb_lines, rb_code, rb_files, rb_note),
    ("ansible-playbook --syntax-check", an, an_lines, an_code, an_files, an_note),
):
    if s is None:
        print(f"{name:34} {'n/a':>10}")
        continue
    ms = f"{s['mean']:.1f}±{s['sd']:.1f}"
    print(f"{name:34} {s['median']:10.1f} {ms:>16} {s['min']:8.1f} {s['runs']:5d} {files:>6} {lines:>6} {code:>6} {note}")
print("(lines: all lines of the YAML measured; code: non-blank, non-comment lines)")

ratio = an["median"] / rb["median"] if rb and an else None
if ratio is not None:
    print(f"\nratio ansible/runbook (medians): {ratio:.1f}x")

print()
if rb is None:
    print(f"SKIP  runbook validate < {t_ms:.0f} ms median (runbook side not measured)")
else:
    ok = rb["median"] < t_ms and not rb_note
    print(f"{'PASS' if ok else 'FAIL'}  runbook validate < {t_ms:.0f} ms median: {rb['median']:.1f} ms {rb_note}")
if ratio is None:
    print(f"SKIP  >= {t_ratio:.0f}x faster than ansible --syntax-check (one side not measured)")
else:
    ok = ratio >= t_ratio and not rb_note and not an_note
    print(f"{'PASS' if ok else 'FAIL'}  >= {t_ratio:.0f}x faster than ansible --syntax-check: {ratio:.1f}x")
PY
say
say "raw: $RESULTS/validate.json, $RESULTS/validate.md (informational; exit 0 regardless)"
exit 0
