#!/usr/bin/env bash
# Idle detach on the GPU host (docs/time-slicing.md): rgpu's own swap of
# MIB of device memory against the driver's checkpoint API, and PyTorch
# training detached mid-run against undisturbed runs.
# Usage: tests/gpu/detach_run.sh BUILD_DIR [MIB=8192]
# Writes logs to $OUT (default /tmp); prints the figures and PASS/FAIL lines.
set -u
build=$1; mib=${2:-8192}
out=${OUT:-/tmp}
here=$(cd "$(dirname "$0")" && pwd)
port=${RGPU_DETACH_PORT:-7394}
rc=0
start_server() {  # extra flags...
  RGPU_LOG=info "$build/bin/rgpu-server" --listen 127.0.0.1:$port --backend ${RGPU_DETACH_BACKEND:-cuda} --gpus 0 "$@" \
    >"$out/detach-server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  sleep 1  # the warm worker's context
}
stop_server() { kill $server 2>/dev/null; wait $server 2>/dev/null; }
trap 'stop_server' EXIT
remote() { timeout 180 env RGPU_SERVER=127.0.0.1:$port "$build/bin/rgpu" run -- "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

echo "== driver checkpoint API, $mib MiB"
timeout 120 "$build/tests/programs/checkpoint_bench" "$mib" || { echo "FAIL checkpoint_bench"; rc=1; }

echo "== rgpu swap, $mib MiB, 3 detach/reattach cycles"
start_server --detach-idle always --idle-timeout 0.3
remote "$build/tests/programs/swap_bench" "$mib" 3 2.5 || { echo "FAIL swap_bench"; rc=1; }
stop_server
grep -E "detached: |reattached after" "$out/detach-server.log" | sed 's/^.*session/session/'
cp "$out/detach-server.log" "$out/detach-swap-server.log"

echo "== PyTorch training detached mid-run"
py=${PYTHON:-python3}
timeout 120 $py "$here/detach_train.py" >"$out/train-local.txt" 2>&1 || { echo "FAIL local training"; rc=1; }
start_server --detach-idle never
remote $py "$here/detach_train.py" \
  >"$out/train-undisturbed.txt" 2>&1 || { echo "FAIL undisturbed training"; rc=1; }
stop_server
start_server --detach-idle always --idle-timeout 0.3
remote $py "$here/detach_train.py" --pause 1.5 \
  >"$out/train-detached.txt" 2>&1 || { echo "FAIL detached training"; rc=1; }
stop_server
cp "$out/detach-server.log" "$out/detach-train-server.log"
detaches=$(grep -c "detached: " "$out/detach-train-server.log")
grep -E "detached: |reattached after" "$out/detach-train-server.log" | sed 's/^.*session/session/'
losses() { grep -E '^(LOSS|BALLAST)' "$1"; }
n=$(losses "$out/train-detached.txt" | grep -c LOSS)
if [ "$n" -gt 0 ] && [ "$(losses "$out/train-detached.txt")" = "$(losses "$out/train-undisturbed.txt")" ]; then
  echo "PASS loss curve identical to the undisturbed rgpu run ($n steps, $detaches detaches)"
else
  echo "FAIL loss curves differ (detached vs undisturbed)"; rc=1
  diff <(losses "$out/train-detached.txt") <(losses "$out/train-undisturbed.txt") | head -5
  tail -5 "$out/train-detached.txt"
fi
if [ "$n" -gt 0 ] && [ "$(losses "$out/train-detached.txt")" = "$(losses "$out/train-local.txt")" ]; then
  echo "PASS loss curve identical to the local run"
else
  echo "NOTE detached rgpu run differs from the local run"
  diff <(losses "$out/train-detached.txt") <(losses "$out/train-local.txt") | head -5
fi
[ "$detaches" -ge 2 ] || { echo "FAIL expected 2 detaches during training, saw $detaches"; rc=1; }
exit $rc
