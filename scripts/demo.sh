#!/usr/bin/env bash
# make demo: start an rgpu server on this machine (the cuda backend where
# nvidia-smi sees a GPU, the sim backend elsewhere), run tests/e2e/vector_add
# through it with `rgpu run`, print what it printed, stop the server, and exit
# with the program's status.
#
# Environment: BUILD_DIR (default build), RGPU_DEMO_PORT (default 7070).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
PORT=${RGPU_DEMO_PORT:-7070}
ADDR=127.0.0.1:$PORT
SERVER_BIN=$BUILD_DIR/bin/rgpu-server
RGPU_BIN=$BUILD_DIR/bin/rgpu
PROGRAM=$BUILD_DIR/tests/e2e/vector_add
WAIT_S=10

die() { echo "demo: $*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

[[ -x $SERVER_BIN ]] || die "$SERVER_BIN is missing (run make build)"
[[ -x $RGPU_BIN ]] || die "$RGPU_BIN is missing (run make build)"
if ! cmake --build "$BUILD_DIR" --target rgpu_e2e_programs >/dev/null 2>&1; then
  echo "demo: building rgpu_e2e_programs failed:" >&2
  cmake --build "$BUILD_DIR" --target rgpu_e2e_programs >&2 || true
  die "cannot build the e2e programs (tests/e2e)"
fi
[[ -x $PROGRAM ]] || die "$PROGRAM is missing after building rgpu_e2e_programs"
port_open && die "$ADDR already accepts connections; stop that server or set RGPU_DEMO_PORT"

if nvidia-smi -L >/dev/null 2>&1; then
  BACKEND=cuda
  echo "demo: GPU found: using the cuda backend"
else
  BACKEND=sim
  echo "no GPU here: using the sim backend"
fi

SERVER_LOG=$(mktemp -t rgpu-demo-server.XXXXXX.log)
SERVER_PID=
# shellcheck disable=SC2317  # called through the EXIT trap
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    # Give it a moment to wipe and exit cleanly, then insist.
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -f "$SERVER_LOG"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

echo "demo: $SERVER_BIN --listen $ADDR --backend $BACKEND"
"$SERVER_BIN" --listen "$ADDR" --backend "$BACKEND" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + WAIT_S))
until port_open; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    cat "$SERVER_LOG" >&2
    die "rgpu-server exited before accepting connections"
  fi
  if ((SECONDS >= deadline)); then
    cat "$SERVER_LOG" >&2
    die "rgpu-server did not accept connections on $ADDR within ${WAIT_S}s"
  fi
  sleep 0.1
done

echo "demo: $RGPU_BIN run --server $ADDR -- $PROGRAM"
echo "----------------------------------------------------------------"
set +e
"$RGPU_BIN" run --server "$ADDR" -- "$PROGRAM"
status=$?
set -e
echo "----------------------------------------------------------------"
if ((status == 0)); then
  echo "demo: vector_add succeeded on the $BACKEND backend"
else
  echo "demo: vector_add exited with status $status; server log:" >&2
  tail -n 40 "$SERVER_LOG" >&2
fi
exit "$status"
