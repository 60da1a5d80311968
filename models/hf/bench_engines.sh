#!/usr/bin/env bash
# One decoding step of the issue #21 target on each engine, in one run: arca's native Llama path
# (int8, f16 bundles; f32 from the directory's safetensors), tract (the directory's ONNX graph)
# and onnxruntime (bench_ort.py), one thread each, the same prompt, 128 greedy tokens; the median
# of REPS alternating rounds of each engine's ms per token ("eval time" of llama_perf).
#
#   bash models/hf/bench_engines.sh [DIR=models/work/hf/llama-target] [REPS=3]
set -eu
DIR=${1:-models/work/hf/llama-target}
REPS=${2:-3}
ARCA=${ARCA:-target/release/arca}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$ARCA" pack "$DIR" --weights f16 -o "$TMP/f16.arcm" -q
PROMPT="The old man looked at the sea and said"
step() {  # label args...
  local label=$1; shift
  "$ARCA" generate "$@" -p "$PROMPT" -n 128 --temp 0 --no-echo 2>&1 >/dev/null |
    sed -n 's/^llama_perf: eval time = *\([0-9.]*\) ms \/ *\([0-9]*\) runs.*/\1 \2/p' |
    awk -v l="$label" '{printf "%s %.3f\n", l, $1 / $2}'
}
for r in $(seq "$REPS"); do
  step "native-int8" -m models/hf/trained/llama-target-int8.arcm
  step "native-f16" -m "$TMP/f16.arcm"
  step "native-f32" -m "$DIR" --engine native
  step "tract-f32" -m "$DIR" --engine tract
  python3 "$(dirname "$0")/bench_ort.py" "$DIR" --threads 1 --ks 1 --reps 30 |
    python3 -c 'import json,sys; print("onnxruntime-f32", json.load(sys.stdin)["calls_ms"]["1"])'
done > "$TMP/all"
python3 - "$TMP/all" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    rows.setdefault(k, []).append(float(v))
print("| engine | ms per token (median) | tokens/s | rounds |")
print("| --- | ---: | ---: | ---: |")
for k, v in rows.items():
    m = statistics.median(v)
    print(f"| {k} | {m:.2f} | {1e3 / m:.0f} | {len(v)} |")
PY
