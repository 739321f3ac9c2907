#!/usr/bin/env bash
# Packs what a GPU-host run needs from a build directory into a small folder
# that the device tool can carry (binaries stripped of debug info):
#   scripts/devrun_pack.sh BUILD_DIR DEST   (DEST/build/{bin,lib,tests.tar.xz})
# Then on the GPU host: tests/gpu/run.sh --rgpu-build DEST/build,
# tests/gpu/run_programs.sh DEST/build, DEST/build/bin/rgpu bench ...
set -euo pipefail
src=${1:?build dir}
dest=${2:?destination}/build
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/tests/e2e" "$dest/tests/programs" "$dest/tests/libs"
for f in rgpu rgpu-server rgpu-delay-proxy; do
  [ -f "$src/bin/$f" ] && cp "$src/bin/$f" "$dest/bin/"
done
cp -P "$src"/lib/lib*.so* "$dest/lib/"
for d in e2e programs libs; do
  for f in "$src/tests/$d"/*; do
    [ -f "$f" ] && [ -x "$f" ] && cp "$f" "$dest/tests/$d/"
  done
done
find "$dest" -type f -perm -u+x -exec strip --strip-debug {} + 2>/dev/null || true
# The test programs each hold a static cudart (~1 MB, 40 MB in all) and
# compress 15:1: ship them as one archive (the carry limit is 64 MiB);
# tests/gpu/run_programs.sh unpacks it.
tar cJf "$dest/tests.tar.xz" -C "$dest" tests && rm -rf "$dest/tests"
du -sh "$dest"
