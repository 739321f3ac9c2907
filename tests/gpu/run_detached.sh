#!/usr/bin/env bash
# Runs the whole GPU suite (tests/gpu/run.sh) across device calls: one run
# of all workloads takes longer than one 10-minute command, so the first
# call starts it in its own session (setsid: it outlives the command while
# the machine stays warm) from a private copy of the tree, and later calls
# wait for it and collect the outputs.
#
#   tests/gpu/run_detached.sh start BUILD_DIR [run.sh options]   # returns at once
#   tests/gpu/run_detached.sh wait SECONDS                       # waits up to SECONDS
#
# `wait` prints the table so far, copies the results JSON and the table to
# $OUT (when set), and exits 0 once the suite has ended (its exit status is
# then in the last line), 3 while it is still running.
set -u
state=/tmp/rgpu-gpu-suite-detached
case "${1:-}" in
  start)
    build=${2:?build dir}; shift 2
    rm -rf "$state"; mkdir -p "$state/out"
    cp -a "$(cd "$(dirname "$0")/../.." && pwd)" "$state/repo"
    build_abs=$(cd "$build" && pwd)
    case "$build_abs" in "$(cd "$(dirname "$0")/../.." && pwd)"/*)
      build_abs="$state/repo/${build_abs#"$(cd "$(dirname "$0")/../.." && pwd)"/}" ;; esac
    setsid bash -c 'cd "$0/repo" && OUT="$0/out" PYTHONUNBUFFERED=1 tests/gpu/run.sh --rgpu-build "$1" "${@:2}" \
      >"$0/out/suite.txt" 2>&1; echo "suite exit status $?" >"$0/rc"' "$state" "$build_abs" "$@" \
      </dev/null >/dev/null 2>&1 &
    echo "started; outputs in $state/out"
    ;;
  wait)
    limit=${2:?seconds}
    # Copies what there is to $OUT every 30 s too: a call cut short by its
    # time limit still brings back the table so far.
    collect() { [[ -n "${OUT:-}" ]] && cp "$state/out/suite.txt" "$state/out/gpu_suite_results.json" "$OUT/" 2>/dev/null; }
    for ((i = 0; i < limit; i += 5)); do
      [[ -f $state/rc ]] && break
      ((i % 30 == 0)) && collect
      sleep 5
    done
    cut -c1-220 "$state/out/suite.txt" 2>/dev/null | tail -45
    collect
    if [[ -f $state/rc ]]; then cat "$state/rc"; exit 0; fi
    echo "still running"; exit 3
    ;;
  *)
    echo "usage: $0 start BUILD_DIR [run.sh options] | wait SECONDS" >&2; exit 2 ;;
esac
