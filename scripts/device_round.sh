#!/usr/bin/env bash
# One device call's worth of GPU checks, in the order that gets the most out
# of a 600 s call, everything written under $OUT (the device tool brings it
# back). Build here, pack with scripts/devrun_pack.sh BUILD build-dev, carry
# build-dev, then on the GPU host:
#   scripts/device_round.sh build-dev/build [programs] [probe] [bench] [suite]
# (no stage named: programs probe bench suite). Stages:
#   programs  tests/gpu/run_programs.sh (every nvcc-built program, local vs
#             rgpu), at most 200 s            -> $OUT/programs.txt
#   probe     scripts/query_latency_probe.py natively and through rgpu with
#             the server's per-call stats     -> $OUT/probe.txt, srv_probe.log
#   bench     rgpu bench --torch-first, at most 250 s -> $OUT/bench.{txt,json}
#   jax       tests/gpu/workloads/jax_basics.py through rgpu with the
#             client's debug trace          -> $OUT/jax_debug.log.gz
#   some      the workloads named in SUITE_ONLY (a,b,c) of the GPU suite,
#             in the foreground, at most 200 s  -> $OUT/some.txt
#   suite     starts the GPU suite detached (tests/gpu/run_detached.sh): collect
#             it with `tests/gpu/run_detached.sh wait 570` in the next calls,
#             each within the machine's 30 s idle release
set -u
build=${1:?build dir (e.g. build-dev/build)}
build=$(cd "$build" && pwd)
shift
stages=${*:-programs probe bench suite}
out=${OUT:-/tmp/device-round}
mkdir -p "$out"
if [ -f "$build/tests.tar.xz" ] && [ ! -d "$build/tests" ]; then tar xJf "$build/tests.tar.xz" -C "$build"; fi
nvidia-smi -L 2>&1 | tee "$out/gpu.txt"
has() { [[ " $stages " == *" $1 "* ]]; }
if has programs; then
  timeout 200 tests/gpu/run_programs.sh "$build" >"$out/programs.txt" 2>&1
  echo "programs exit $?" >>"$out/programs.txt"
  grep -E "FAIL|passed|exit" "$out/programs.txt" | cut -c1-200
fi
if has probe; then
  # Through rgpu twice, each with a fresh server (the session's lease starts
  # the next warm worker at once, or 3 s later): does that context creation
  # slow the new session's first queries?
  probe_rgpu() {  # PORT LABEL SERVER-ARGS...
    local port=$1 label=$2
    shift 2
    RGPU_STATS=1 RGPU_LOG=info "$build/bin/rgpu-server" --listen 127.0.0.1:$port --backend cuda "$@" \
      >"$out/srv_probe_$label.log" 2>&1 &
    local srv=$!
    sleep 2
    echo "== through rgpu, $label (server stats in srv_probe_$label.log)"
    RGPU_SERVER=127.0.0.1:$port timeout 60 "$build/bin/rgpu" run -- python3 scripts/query_latency_probe.py 2000
    sleep 1
    kill $srv
    wait $srv 2>/dev/null
  }
  {
    echo "== native"
    python3 scripts/query_latency_probe.py 2000
    probe_rgpu 7499 warm-now
    probe_rgpu 7498 warm-delay-3s --warm-spawn-delay 3
  } >"$out/probe.txt" 2>&1
  cat "$out/probe.txt"
fi
if has bench; then
  timeout 270 "$build/bin/rgpu" bench --torch-first --deadline 250 --json "$out/bench.json" >"$out/bench.txt" 2>&1
  echo "bench exit $?"
  cat "$out/bench.txt"
fi
if has jax; then
  # jax_basics through rgpu with the client's debug trace (the cuDNN
  # convolution that fails remotely): the calls before the refused memset.
  RGPU_LOG=info "$build/bin/rgpu-server" --listen 127.0.0.1:7497 --backend cuda >"$out/srv_jax.log" 2>&1 &
  srv=$!
  sleep 2
  (cd tests/gpu/workloads && GPU_SUITE_SIDE=remote XLA_PYTHON_CLIENT_PREALLOCATE=false RGPU_LOG=debug \
    RGPU_SERVER=127.0.0.1:7497 timeout 120 "$build/bin/rgpu" run -- python3 jax_basics.py) 2>&1 |
    gzip >"$out/jax_debug.log.gz"
  kill $srv
  wait $srv 2>/dev/null
  zcat "$out/jax_debug.log.gz" | grep -v "^\[rgpu.*debug" | tail -5 | cut -c1-300
fi
if has some; then
  # Named workloads of the GPU suite in the foreground (SUITE_ONLY, comma
  # separated), at most 200 s.
  OUT="$out/some" timeout 200 tests/gpu/run.sh --rgpu-build "$build" --only "${SUITE_ONLY:?SUITE_ONLY}" \
    ${SUITE_ARGS:-} >"$out/some.txt" 2>&1
  echo "some exit $?" >>"$out/some.txt"
  cut -c1-200 "$out/some.txt" | tail -25
fi
if has suite; then
  # SUITE_ARGS: run.sh options, e.g. --server-arg=--warm-spawn-delay=3
  tests/gpu/run_detached.sh start "$build" ${SUITE_ARGS:-}
fi
