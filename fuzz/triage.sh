#!/usr/bin/env bash
# Groups the failing inputs a harness saved by cause: the sanitizer's or
# libFuzzer's error and the first rgpu frame of the stack.
#
#   fuzz/triage.sh HARNESS [BUILD_DIR]
#
# Prints one line per cause: count, cause, an example input (in
# BUILD_DIR/fuzz-work/HARNESS/) to replay with BUILD_DIR/bin/HARNESS_fuzzer FILE.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
h=${1:?usage: $0 HARNESS [BUILD_DIR]}
build=${2:-$root/build-fuzz}
work=$build/fuzz-work/$h
export RGPU_LOG=off UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
declare -A count example
for f in "$work"/crash-* "$work"/leak-* "$work"/oom-* "$work"/timeout-*; do
  [[ -e "$f" ]] || continue
  out=$(timeout 60 "$build/bin/${h}_fuzzer" -rss_limit_mb=4096 -timeout=25 "$f" 2>&1)
  kind=$(grep -m1 -oE 'AddressSanitizer: [A-Za-z-]+|LeakSanitizer|runtime error: [^,]{0,70}|libFuzzer: [a-z-]+' <<<"$out")
  # The first three rgpu frames, innermost first: function (file:line).
  frame=$(grep -E '^ +#[0-9]+ .* /' <<<"$out" | grep -vE '/fuzz/|libFuzzer|compiler-rt|/usr/(lib|include)' |
          head -3 | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in //; s/\(.*\)//; s/ const / /' |
          sed -E "s|$root/||; s|^(.*) ([^ ]+)$|\\1 (\\2)|" | paste -sd '|' | sed 's/|/ <- /g')
  key="${kind:-no failure now} @ ${frame:-?}"
  count[$key]=$(( ${count[$key]:-0} + 1 ))
  example[$key]=$f
done
for k in "${!count[@]}"; do printf '%4d  %s  [e.g. %s]\n' "${count[$k]}" "$k" "$(basename "${example[$k]}")"; done | sort -rn
