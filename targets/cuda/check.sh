#!/usr/bin/env bash
# On a host with an NVIDIA GPU, its driver and the CUDA 13 libraries (cudart, nvrtc, cublas,
# cudnn; the pip wheels nvidia-* that PyTorch installs will do):
#
#   targets/cuda/check.sh
#
# or, on a GPU host without Rust, with binaries built elsewhere by
#   cargo build -p arca-cli --features cuda
#   cargo test -p arca-runtime --features cuda --lib --no-run
#
#   ARCA_BIN=path/to/arca ARCA_TEST_BIN=path/to/arca_runtime-HASH targets/cuda/check.sh
#
# 1. arca-runtime's tests with the `cuda` feature: text-small's logits on the GPU must equal the
#    CPU's bit for bit (`cuda_logits_equal_the_cpu`); on a host where nvidia-smi sees a GPU, a
#    skipped test is a failure.
# 2. `arca` built with `--features cuda` compresses Canterbury text files on the GPU and on the
#    CPU: the streams must be the same bytes, and the CPU decodes the GPU's stream. Decoding runs
#    the model once per byte, so the GPU decodes a stream of each file's first
#    ARCA_CUDA_DECODE_BYTES bytes (default 16384; 0 means the whole file).
#
# Prints one line per file and exits non-zero on any difference.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
decode_bytes="${ARCA_CUDA_DECODE_BYTES:-16384}"

have_gpu=0
if nvidia-smi -L; then have_gpu=1; else echo "nvidia-smi found no GPU: expect 'device cuda is not available' below"; fi

log="$(mktemp)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp" "$log"' EXIT
if [[ -n "${ARCA_TEST_BIN:-}" ]]; then
    "$ARCA_TEST_BIN" --nocapture cuda 2>&1 | tee "$log"
else
    cargo test -p arca-runtime --features cuda --lib -- --nocapture cuda 2>&1 | tee "$log"
fi
if [[ $have_gpu == 1 ]] && ! grep -q "GPU logits equal the CPU's" "$log"; then
    echo "check.sh: a GPU is present but the CUDA logits test did not run on it" >&2
    exit 1
fi

if [[ -n "${ARCA_BIN:-}" ]]; then
    arca="$ARCA_BIN"
else
    cargo build --release -p arca-cli --features cuda
    arca="$root/target/release/arca"
fi

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
for f in alice29.txt asyoulik.txt cp.html fields.c grammar.lsp lcet10.txt plrabn12.txt xargs.1; do
    src="tests/data/canterbury/$f"
    t0=$(date +%s.%N)
    "$arca" --device cuda compress -q -c "$src" > "$tmp/gpu.arca"
    t1=$(date +%s.%N)
    "$arca" --device cpu compress -q -c "$src" > "$tmp/cpu.arca"
    t2=$(date +%s.%N)
    cmp "$tmp/gpu.arca" "$tmp/cpu.arca"
    "$arca" --device cpu decompress -q -c "$tmp/gpu.arca" | cmp - "$src"

    if [[ $decode_bytes == 0 ]]; then cp "$src" "$tmp/part"; else head -c "$decode_bytes" "$src" > "$tmp/part"; fi
    "$arca" --device cpu compress -q -c "$tmp/part" > "$tmp/part.arca"
    t3=$(date +%s.%N)
    "$arca" --device cuda decompress -q -c "$tmp/part.arca" | cmp - "$tmp/part"
    t4=$(date +%s.%N)
    echo "$f: $(stat -c %s "$src") bytes -> $(stat -c %s "$tmp/gpu.arca"), GPU and CPU streams identical;" \
        "compress GPU $(secs "$t0" "$t1") s, CPU $(secs "$t1" "$t2") s;" \
        "GPU decoded the first $(stat -c %s "$tmp/part") bytes exactly in $(secs "$t3" "$t4") s"
done
echo "CUDA check passed"
