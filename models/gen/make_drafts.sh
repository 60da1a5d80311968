#!/usr/bin/env bash
# Issue #7, stage 2: distill the two prose drafts from the finished target with the same budget,
# then export and pack all three models into models/gen/trained/.
#
#   1. draft-kd:      plain forward-KL distillation on every token (the baseline, and AdaSPEC's
#                     reference model);
#   2. draft-adaspec: AdaSPEC, same size, same initialization (seed), same steps: per token the
#                     gap KL(p_target || q_draft) - KL(p_target || q_kd), and only the 40% of
#                     tokens with the largest gap are trained on.
#
# Both are `draft-80` (d_model 80, 2 layers, 2 heads: 174,480 parameters, 10.4x smaller than the
# target). Resumable: each run continues from models/gen/work/<name>.pt.
#
#   STEPS=1000 THREADS=2 bash models/gen/make_drafts.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=models/.venv/bin/python
STEPS=${STEPS:-1000}
THREADS=${THREADS:-2}
CONFIG=${CONFIG:-draft-80}
W=models/gen/work

$PY models/gen/train.py --name draft-kd --config "$CONFIG" --teacher $W/target.pt \
  --max-steps "$STEPS" --threads "$THREADS" --eval-every 100000
$PY models/gen/train.py --name draft-adaspec --config "$CONFIG" --teacher $W/target.pt \
  --ref $W/draft-kd.pt --select-frac 0.4 --max-steps "$STEPS" --threads "$THREADS" --eval-every 100000

cargo build --release -p arca-cli
mkdir -p models/gen/trained
for run in target draft-kd draft-adaspec; do
  $PY models/gen/export.py --ckpt $W/$run.pt --threads "$THREADS"
  target/release/arca pack --manifest $W/gen-$run.json -o models/gen/trained/gen-$run.arcm -f $W/gen-$run.onnx
done
