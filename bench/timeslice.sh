#!/usr/bin/env bash
# Claim and hand-over latencies of rgpu's GPU pool, on the GPU host.
#   claim:     process start -> first kernel done, with a free GPU (warm worker)
#   hand-over: holder's last instruction before exit -> waiting client's first
#              kernel done (includes the holder's teardown, the wipe, the attach)
# Usage: bench/timeslice.sh BUILD_DIR [ROUNDS]   (needs BUILD_DIR/tests/programs/claim_time)
set -u
build=$1; rounds=${2:-10}
prog="$build/tests/programs/claim_time"
port=${RGPU_TIMESLICE_PORT:-7393}
"$build/bin/rgpu-server" --listen 127.0.0.1:$port --backend cuda --gpus 0 >/tmp/timeslice-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
sleep 1  # let the warm worker create its context
run() { RGPU_SERVER=127.0.0.1:$port LD_LIBRARY_PATH="$build/lib" "$prog" "$@"; }
val() { sed -n "s/^$1 //p"; }
claims=(); handovers=()
for r in $(seq "$rounds"); do
  out=$(run); s=$(echo "$out" | val t_start); e=$(echo "$out" | val t_ready)
  claims+=($(( e - s )))
  sleep 0.3
  run 0.5 > /tmp/ts_a.txt & a=$!
  sleep 0.2
  run > /tmp/ts_b.txt & b=$!
  wait $a $b
  ax=$(val t_exit < /tmp/ts_a.txt); br=$(val t_ready < /tmp/ts_b.txt)
  handovers+=($(( br - ax )))
  sleep 0.3
done
locals=()
for r in 1 2 3; do
  out=$("$prog"); s=$(echo "$out" | val t_start); e=$(echo "$out" | val t_ready)
  locals+=($(( e - s )))
done
p50() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "claim of a free GPU (process start -> first kernel), us: ${claims[*]}"
echo "hand-over (holder exits -> next client's first kernel), us: ${handovers[*]}"
echo "local (no rgpu: process start -> first kernel, context created), us: ${locals[*]}"
echo "claim p50: $(( $(p50 "${claims[@]}") / 1000 )) ms (local $(( $(p50 "${locals[@]}") / 1000 )) ms); hand-over p50: $(( $(p50 "${handovers[@]}") / 1000 )) ms"
