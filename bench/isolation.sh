#!/usr/bin/env bash
# Tenant isolation on the GPU host: tenant A fills nearly all GPU memory with
# a pattern and exits; tenant B then allocates nearly all memory and counts
# pattern bytes (must be 0). Run with and without --paranoid-wipe.
# Usage: bench/isolation.sh BUILD_DIR [extra rgpu-server flags]
set -u
build=$1; shift
prog="$build/tests/programs/tenant_fill"
port=${RGPU_ISOLATION_PORT:-7394}
RGPU_LOG=info "$build/bin/rgpu-server" --listen 127.0.0.1:$port --backend cuda --gpus 0 "$@" >/tmp/isolation-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
run() { RGPU_SERVER=127.0.0.1:$port LD_LIBRARY_PATH="$build/lib" "$prog" "$@"; }
echo "tenant A: $(run fill | tr '\n' ' ')"
echo "tenant B: $(run scan | tr '\n' ' ')"
grep -h "wiped and verified\|wipe:" /tmp/isolation-server.log | sed 's/^/server: /'
