#!/usr/bin/env bash
# Regenerates the checked-in seed corpus fuzz/corpus/<harness>/.
#
#   fuzz/make_corpus.sh [BUILD_DIR]     (default: build-fuzz, as run_all.sh)
#
# Protocol seeds come from rgpu_make_seeds (real Writer / Encode output);
# image seeds are real nvcc outputs of image/testdata/sample_kernels.cu (the
# same variants image_test.cc checks) and of fuzz/seeds/kernels.cu. Needs
# nvcc (CUDA 13). Run after changing proto/calls.spec or the kernels, and
# commit the result (keep the whole corpus under ~2 MB).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fuzz}
corpus=$root/fuzz/corpus
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ninja -C "$build" rgpu_make_seeds >/dev/null
src=$root/image/testdata/sample_kernels.cu
k=$root/fuzz/seeds/kernels.cu
g90="-gencode arch=compute_90,code=[sm_90,compute_90]"
"$nvcc" -cubin -arch=sm_90 -o "$tmp/kernels_sm90.cubin" "$k"
"$nvcc" -fatbin -arch=sm_90 -o "$tmp/kernels_sm90.fatbin" "$k"

rm -rf "$corpus"
mkdir -p "$corpus"/{image_size,fatbin,cubin,ptx}
"$build/bin/rgpu_make_seeds" "$corpus" "$tmp/kernels_sm90.cubin" "$tmp/kernels_sm90.fatbin"

"$nvcc" -cubin -arch=sm_90 -o "$corpus/cubin/sample_sm90.cubin" "$src"
"$nvcc" -cubin -arch=sm_75 -o "$corpus/cubin/sample_sm75.cubin" "$src"
"$nvcc" -cubin -rdc=true -arch=sm_90 -o "$corpus/cubin/sample_rdc_sm90.cubin" "$src"
cp "$tmp/kernels_sm90.cubin" "$corpus/cubin/"
"$nvcc" -ptx -arch=sm_90 -o "$corpus/ptx/sample_sm90.ptx" "$src"
"$nvcc" -ptx -arch=sm_90 -o "$corpus/ptx/kernels_sm90.ptx" "$k"
"$nvcc" -fatbin $g90 -gencode arch=compute_80,code=sm_80 -o "$corpus/fatbin/sample.fatbin" "$src"
"$nvcc" -fatbin -Xfatbin -compress-all $g90 -o "$corpus/fatbin/sample_zstd.fatbin" "$src"
"$nvcc" -fatbin -Xfatbin -compress-all -compress-mode=speed $g90 -o "$corpus/fatbin/sample_lz4.fatbin" "$src"
"$nvcc" -fatbin -compress-mode=none $g90 -o "$corpus/fatbin/sample_plain.fatbin" "$src"
"$nvcc" -fatbin -gencode arch=compute_90,code=compute_90 -o "$corpus/fatbin/sample_ptxonly.fatbin" "$src"
# ImageSize sees every kind: one of each (PTX with its NUL, as callers pass it).
cp "$corpus/fatbin/sample_lz4.fatbin" "$corpus/fatbin/sample_ptxonly.fatbin" "$corpus/image_size/"
cp "$tmp/kernels_sm90.cubin" "$corpus/image_size/"
{ cat "$corpus/ptx/kernels_sm90.ptx"; printf '\0'; } > "$corpus/image_size/kernels_sm90.ptx"

du -sh "$corpus"
for d in "$corpus"/*/; do echo "$(basename "$d"): $(ls "$d" | wc -l) files"; done
