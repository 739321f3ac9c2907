#!/usr/bin/env bash
# Builds the libFuzzer harnesses in build-fuzz/ and runs each for a bounded
# time; fails (exit 1) when any harness finds a crash, a leak, UB, a timeout
# or an out-of-memory.
#
#   fuzz/run_all.sh [SECONDS_PER_HARNESS]      (default 30)
#
# The fuzzing time of all harnesses together is capped at 300 seconds: a
# larger per-harness time is lowered to fit (the build comes on top; the
# first build of build-fuzz/ takes a few minutes).
# Environment:
#   RGPU_FUZZ_ONLY="calls worker"   run only these harnesses
#   RGPU_FUZZ_BUILD=DIR             build directory (default <repo>/build-fuzz)
#   RGPU_FUZZ_JOBS=N                ninja -j (default: all cores)
#   RGPU_FUZZ_KEEP_GOING=1          do not stop a harness at its first failure
#                                   (libFuzzer -fork=1 -ignore_crashes=1 ...):
#                                   every distinct failing input is saved;
#                                   for triage when one known bug hides others
#
# Each harness reads its checked-in seeds (fuzz/corpus/<name>/, never
# written) and keeps what it finds in BUILD/fuzz-work/<name>/corpus, so later
# runs start from there. A failing input is saved as
# BUILD/fuzz-work/<name>/crash-* (or leak-*, timeout-*, oom-*); reproduce with
#   BUILD/bin/<name>_fuzzer FILE
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RGPU_FUZZ_BUILD:-$root/build-fuzz}
per=${1:-30}
total_cap=300
all=(frame frame_reader compression handshake calls device_info image_size fatbin cubin ptx worker)
if [[ -n "${RGPU_FUZZ_ONLY:-}" ]]; then
  read -r -a harnesses <<<"$RGPU_FUZZ_ONLY"
else
  harnesses=("${all[@]}")
fi
if ! [[ "$per" =~ ^[0-9]+$ ]] || (( per < 1 )); then
  echo "usage: $0 [SECONDS_PER_HARNESS]" >&2
  exit 2
fi
if (( per * ${#harnesses[@]} > total_cap )); then
  per=$(( total_cap / ${#harnesses[@]} ))
  echo "run_all: capping at ${per}s per harness (${total_cap}s in all)"
fi

# ---- build ------------------------------------------------------------------
if [[ ! -f "$build/CMakeCache.txt" ]] || ! grep -q '^RGPU_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  mkdir -p "$build"
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DRGPU_FUZZ=ON \
    -DRGPU_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 || {
    cat "$build/configure.log" >&2
    echo "run_all: configure failed" >&2
    exit 1
  }
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("${h}_fuzzer"); done
if ! ninja -C "$build" ${RGPU_FUZZ_JOBS:+-j "$RGPU_FUZZ_JOBS"} "${targets[@]}" >"$build/fuzz-build.log" 2>&1; then
  tail -40 "$build/fuzz-build.log" >&2
  echo "run_all: build failed (full log: $build/fuzz-build.log)" >&2
  exit 1
fi

# ---- run ----------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export RGPU_LOG=${RGPU_LOG:-off}
failed=()
printf '%-12s %12s %10s %8s %8s  %s\n' harness executions exec/s cov corpus result
for h in "${harnesses[@]}"; do
  work=$build/fuzz-work/$h
  seeds=$root/fuzz/corpus/$h
  mkdir -p "$work/corpus"
  dict=()
  [[ -f "$root/fuzz/dict/$h.dict" ]] && dict=(-dict="$root/fuzz/dict/$h.dict")
  log=$work/last-run.log
  mode=()
  [[ -n "${RGPU_FUZZ_KEEP_GOING:-}" ]] &&
    mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  before=$(ls "$work" | grep -cE '^(crash|leak|timeout|oom)-')
  "$build/bin/${h}_fuzzer" -max_total_time="$per" -print_final_stats=1 -timeout=25 \
    -rss_limit_mb=4096 -artifact_prefix="$work/" "${mode[@]}" "${dict[@]}" \
    "$work/corpus" "$seeds" >"$log" 2>&1
  rc=$?
  found=$(( $(ls "$work" | grep -cE '^(crash|leak|timeout|oom)-') - before ))
  (( rc == 0 && found > 0 )) && rc=1
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  # -fork mode prints no final stats: take the last status line's count.
  [[ -z "$execs" ]] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  [[ -z "$speed" && -n "$execs" ]] && speed=$(( execs / per ))
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  units=$(ls "$work/corpus" | wc -l)
  if (( rc == 0 )); then
    result=ok
  else
    result="FAILED (rc $rc, $found new failing inputs): $(grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$log" | cut -c1-100)"
    failed+=("$h")
  fi
  printf '%-12s %12s %10s %8s %8s  %s\n' "$h" "${execs:-?}" "${speed:-?}" "${cov:-?}" "$units" "$result"
done
if (( ${#failed[@]} )); then
  echo
  for h in "${failed[@]}"; do
    echo "== $h: $build/fuzz-work/$h/last-run.log"
    grep -E 'ERROR: |runtime error|SUMMARY|Test unit written' "$build/fuzz-work/$h/last-run.log" | sort | uniq -c | sort -rn | head -8
  done
  exit 1
fi
echo "run_all: no crash in ${#harnesses[@]} harnesses (${per}s each)"
