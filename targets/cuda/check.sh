#!/usr/bin/env bash
# On a host with an NVIDIA GPU, its driver and the CUDA libraries (cudart, nvrtc, cublas, cudnn):
#
#   targets/cuda/check.sh
#
# 1. arca-runtime's tests with the `cuda` feature: text-small's logits on the GPU must equal the
#    CPU's bit for bit (`cuda_logits_equal_the_cpu`), the device is reported as cuda;
# 2. the release `arca` built with `--features cuda` compresses Canterbury text files on the GPU
#    and on the CPU: the streams must be the same bytes, and each decodes on the other device.
#
# Prints one line per file and exits non-zero on any difference. On a host without a GPU, step 1
# passes with the CUDA tests reporting "skipped" and step 2 stops with arca's clear error.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
nvidia-smi -L || echo "nvidia-smi not found: expect 'device cuda is not available' below"
cargo test -p arca-runtime --features cuda --lib -- --nocapture cuda
cargo build --release -p arca-cli --features cuda
arca="$root/target/release/arca"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for f in alice29.txt asyoulik.txt cp.html fields.c grammar.lsp xargs.1; do
    src="tests/data/canterbury/$f"
    s0=$(date +%s.%N)
    "$arca" --device cuda compress -q -c "$src" > "$tmp/gpu.arca"
    s1=$(date +%s.%N)
    "$arca" --device cpu compress -q -c "$src" > "$tmp/cpu.arca"
    cmp "$tmp/gpu.arca" "$tmp/cpu.arca"
    "$arca" --device cuda decompress -q -c "$tmp/cpu.arca" | cmp - "$src"
    "$arca" --device cpu decompress -q -c "$tmp/gpu.arca" | cmp - "$src"
    echo "$f: GPU and CPU streams identical ($(stat -c %s "$tmp/gpu.arca") bytes, GPU compress $(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }') s)"
done
echo "CUDA check passed"
