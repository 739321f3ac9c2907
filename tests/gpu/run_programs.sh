#!/usr/bin/env bash
# Runs every CUDA test program (tests/e2e, tests/programs, tests/libs) on the local GPU
# and through rgpu (rgpu-server --backend cuda on loopback), and compares
# exit status and output (lines with timings are left out of the comparison).
# Usage: tests/gpu/run_programs.sh [BUILD_DIR]   (default: build)
# RGPU_SERVER_ARGS adds server flags (e.g. "--sandbox on"); RGPU_PROGRAMS_ONLY
# (space-separated globs, e.g. "lib_* tools_module_probe") runs only those.
# Prints a table and "N passed, N failed"; exit status 1 if any failed.
set -u
build=${1:-build}
bin="$build/bin"
# scripts/devrun_pack.sh ships the programs as one archive.
if [ -f "$build/tests.tar.xz" ] && [ ! -d "$build/tests" ]; then tar xJf "$build/tests.tar.xz" -C "$build"; fi
port=${RGPU_PROGRAMS_PORT:-7391}
log=${OUT:-/tmp}/rgpu-programs-server.log
# A program killed while its GPU work cannot end frees the GPU for the next
# one after 5 s (the default, 20 s, would eat the run's time).
"$bin/rgpu-server" --listen 127.0.0.1:$port --backend cuda --teardown-grace 5 ${RGPU_SERVER_ARGS:-} >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
# tests/libs programs link the CUDA libraries (cuFFT, cuRAND, ...) dynamically:
# find them where the GPU host keeps them (the toolkit, or the pip wheels).
lib_dirs=()
for d in /usr/local/cuda/lib64 "$(dirname "$(command -v nvcc 2>/dev/null || echo /x/x)")/../lib64"; do
  [ -e "$d/libcufft.so.12" ] && lib_dirs+=("$d")
done
while IFS= read -r d; do lib_dirs+=("$d"); done < <(python3 - 2>/dev/null <<'PY'
import glob, os
try:
    import nvidia
    for root in nvidia.__path__:
        for lib in sorted(set(glob.glob(os.path.join(root, "*", "lib")) + glob.glob(os.path.join(root, "*", "*", "lib")))):
            print(lib)
except ImportError:
    pass
PY
)
export LD_LIBRARY_PATH="$(IFS=:; echo "${lib_dirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Also rgpu's own stderr lines ("[rgpu] warn: ..." naming a refused call): no local counterpart.
normalize() { grep -viE 'ms|µs|us\b|GB/s|time|elapsed|^\[rgpu(-nvml)?\] ' ; }
limit=${RGPU_PROGRAM_TIMEOUT:-45}  # seconds per run of a program
pass=0; fail=0
printf '%-28s | %-6s | %-6s | %s\n' program local rgpu "output equal"
for p in "$build"/tests/e2e/* "$build"/tests/programs/* "$build"/tests/libs/*; do
  [ -f "$p" ] && [ -x "$p" ] || continue
  name=$(basename "$p")
  if [ -n "${RGPU_PROGRAMS_ONLY:-}" ]; then
    keep=no
    set -f  # the globs are patterns for names, not for files here
    for g in $RGPU_PROGRAMS_ONLY; do case "$name" in $g) keep=yes ;; esac; done
    set +f
    [ $keep = yes ] || continue
  fi
  case "$name" in
    tenant_fill|claim_time|checkpoint_bench) continue ;;  # measurement tools, run by bench/ scripts
    link_loss) args=(0.5) ;;
    *) args=() ;;
  esac
  # Each program takes seconds; a hung one must not eat a device call.
  lo=$(timeout "$limit" "$p" "${args[@]}" 2>&1); lrc=$?
  ro=$(RGPU_SERVER=127.0.0.1:$port timeout "$limit" "$bin/rgpu" run -- "$p" "${args[@]}" 2>&1); rrc=$?
  if [ "$(printf '%s\n' "$lo" | normalize)" = "$(printf '%s\n' "$ro" | normalize)" ]; then eq=yes; else eq=no; fi
  if [ $lrc -eq $rrc ] && [ $rrc -eq 0 ] && [ $eq = yes ]; then pass=$((pass+1)); v=""; else fail=$((fail+1)); v="  <-- FAIL"; fi
  printf '%-28s | %-6s | %-6s | %s%s\n' "$name" "$lrc" "$rrc" "$eq" "$v"
  if [ -n "$v" ]; then
    printf '    local : %s\n' "$(printf '%s' "$lo" | tail -3 | tr '\n' ' ')"
    printf '    remote: %s\n' "$(printf '%s' "$ro" | tail -3 | tr '\n' ' ')"
    # Whole outputs of a failure, for the diff (the device tool brings $OUT back).
    if [ -n "${OUT:-}" ]; then
      mkdir -p "$OUT/programs"
      printf '%s\n' "$lo" >"$OUT/programs/$name.local.txt"
      printf '%s\n' "$ro" >"$OUT/programs/$name.remote.txt"
    fi
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
