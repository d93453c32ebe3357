#!/usr/bin/env bash
# Fuzz the parsers with libFuzzer (`cargo fuzz`), outside CI or as a short CI smoke run.
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]   build, then run each target N seconds (600)
#   scripts/fuzz.sh --no-build ...              run the binaries last built (no rebuild)
#   scripts/fuzz.sh --check                     only say whether nightly + cargo-fuzz are here
#   scripts/fuzz.sh --list                      the targets
#
# Each target runs from a scratch corpus, fuzz/corpus/<target>/, seeded from
# fixtures/fuzz/<target>/ (the fuzzer never writes into fixtures/); what it adds there is kept
# for the next run. Inputs are bounded: -rss_limit_mb=2048, -timeout=10 (seconds per input).
# One summary line per target; the full libFuzzer log is in fuzz/target/fuzz-logs/<target>.log.
#
# Exit: 0 every target ran clean; 1 a target crashed, timed out, leaked or ran out of memory (the
# summary names the input saved in fuzz/artifacts/<target>/: minimise it with
# `cargo +nightly fuzz tmin --fuzz-dir fuzz <target> <artifact>`, save it as
# fixtures/fuzz/regressions/<target>/<short-name>, fix the bug); 2 bad usage, or the nightly
# toolchain or cargo-fuzz is missing (the message says what to install).
#
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_SANITIZER (address | none; default
# address).
set -uo pipefail
cd "$(dirname "$0")/.."

targets_all=(runbook_loader template jsonl_scanner prometheus_text alert_payload)
seconds=600
check_only=0
build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:-}"; shift 2 || { echo "fuzz.sh: --seconds needs a value" >&2; exit 2; } ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    --check) check_only=1; shift ;;
    --no-build) build=0; shift ;;
    --list) printf '%s\n' "${targets_all[@]}"; exit 0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option \`$1\`" >&2; exit 2 ;;
    *)
      if [[ " ${targets_all[*]} " != *" $1 "* ]]; then
        echo "fuzz.sh: unknown target \`$1\`; targets: ${targets_all[*]}" >&2
        exit 2
      fi
      targets+=("$1"); shift ;;
  esac
done
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: --seconds takes a whole number of seconds, got \`$seconds\`" >&2
  exit 2
fi
[ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
sanitizer="${FUZZ_SANITIZER:-address}"
missing=()
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  missing+=("the $toolchain toolchain (rustup toolchain install $toolchain)")
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  missing+=("cargo-fuzz (cargo install cargo-fuzz --locked)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz.sh: cannot fuzz: missing $(printf '%s; ' "${missing[@]}" | sed 's/; $//')" >&2
  exit 2
fi
if [ "$check_only" = 1 ]; then
  echo "fuzz.sh: ready: $(rustup run "$toolchain" rustc --version), $(cargo fuzz --version)"
  exit 0
fi

fuzz=(cargo "+$toolchain" fuzz)
# `cargo fuzz build` has no `--locked`: fail here instead if fuzz/Cargo.lock is stale.
if ! cargo "+$toolchain" metadata --locked --format-version 1 \
    --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "fuzz.sh: fuzz/Cargo.lock is out of date (cargo +$toolchain update --manifest-path fuzz/Cargo.toml)" >&2
  exit 2
fi

# One target: build only it; else all (they share the library, and one build links them all).
build_one=()
[ ${#targets[@]} -eq 1 ] && build_one=("${targets[0]}")
started=$(date +%s)
if [ "$build" = 1 ]; then
  if ! "${fuzz[@]}" build --fuzz-dir fuzz -s "$sanitizer" "${build_one[@]}"; then
    echo "fuzz.sh: build failed" >&2
    exit 1
  fi
  echo "fuzz.sh: built in $(( $(date +%s) - started ))s"
fi
bin="fuzz/target/$(rustup run "$toolchain" rustc -vV | sed -n 's/^host: //p')/release"

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
failed=0
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  cp -f "fixtures/fuzz/$t"/* "$corpus"/
  if [ -d "fixtures/fuzz/regressions/$t" ]; then
    cp -f "fixtures/fuzz/regressions/$t"/* "$corpus"/ 2>/dev/null || true
  fi
  log="$logs/$t.log"
  t0=$(date +%s)
  # The binary itself, not `cargo fuzz run`: that rebuilds first whenever a source file
  # changed since the build above, and the run's time would then depend on the compiler.
  "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -dict="fixtures/fuzz/$t.dict" -print_final_stats=1 "$corpus" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - t0 ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # The last status line: `#N  DONE  cov: C ft: F corp: K/S ...` (or the last pulse).
  status=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$status")
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    result=ok
  else
    failed=1
    if grep -q 'ERROR: libFuzzer: timeout' "$log"; then result=timeout
    elif grep -q -E 'ERROR: libFuzzer: (out-of-memory|malloc)' "$log"; then result=oom
    elif grep -q 'ERROR: LeakSanitizer' "$log"; then result=leak
    elif grep -q -E 'ERROR: (libFuzzer: deadly signal|AddressSanitizer)|panicked at' "$log"; then result=crash
    else result="error(exit $rc)"
    fi
  fi
  echo "fuzz: target=$t seconds=$took execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} result=$result${artifact:+ artifact=$artifact}"
  if [ "$result" != ok ]; then
    grep -m1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)' "$log" | sed 's/^/  /'
    echo "  log: $log"
  fi
done
exit $failed
