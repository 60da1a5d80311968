#!/usr/bin/env bash
# Peers (issue #3): one model step of text-small through tract (and the native engine) vs the
# same ONNX graph through onnxruntime, same inputs and batch sizes; writes docs/bench/peers.md.
#
#   tools/peers/run.sh            # from anywhere in the repository
#   PYTHON=python3 tools/peers/run.sh
#
# Python needs numpy and onnxruntime (`pip install onnxruntime`); models/.venv has both and is
# used when present. The whole run takes about two minutes once the bench is built; keep the
# machine otherwise idle for numbers worth comparing (the report records the load average).
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"

python=${PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x models/.venv/bin/python ]]; then python=models/.venv/bin/python; else python=python3; fi
fi
if ! "$python" -c 'import numpy, onnxruntime' 2>/dev/null; then
    echo "error: $python lacks numpy/onnxruntime (pip install onnxruntime), or set PYTHON" >&2
    exit 1
fi

# Absolute for the bench: cargo runs it from runtime/core.
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
dump=$target/peers
rel=$(realpath -m --relative-to="$root" "$dump")
[[ $rel == ../* ]] && rel=$dump
mkdir -p "$dump"
load_before=$(cut -d' ' -f1 /proc/loadavg)

bench=(cargo bench -p arca-runtime --bench model_step)
ort=("$python" tools/peers/ort_step.py --check "$rel" --criterion "$(dirname "$rel")/criterion"
    --meta "$rel/meta.json" --report docs/bench/peers.md)

ARCA_PEERS_DUMP=$dump "${bench[@]}"

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
tract=$(grep -A1 '^name = "tract-onnx"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
"$python" - "$dump/meta.json" "$cpu" "$(nproc)" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$load_before" "$(git describe --always --dirty 2>/dev/null || echo 'not a git checkout')" "$(rustc --version), tract-onnx $tract" \
    "ARCA_PEERS_DUMP=$rel ${bench[*]}" "${ort[*]}" <<'EOF'
import json, sys
path, cpu, cpus, date, load, tree, rust, *steps = sys.argv[1:]
meta = {"cpu": cpu, "cpus": int(cpus), "date": date, "load_before": load, "tree": tree,
        "rust": rust, "command": "tools/peers/run.sh", "steps": steps}
json.dump(meta, open(path, "w"))
EOF

"${ort[@]}" | tee "$dump/ort.jsonl"
echo "wrote docs/bench/peers.md" >&2
