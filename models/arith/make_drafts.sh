#!/usr/bin/env bash
# Issue #7 on the arithmetic workload of #8: the padded adder as a KV-cache *target* and two
# *drafts* distilled from it with a matched budget, packed into models/arith/trained/.
#
#   1. draft-kd:      forward-KL distillation KL(p_target || q_draft) on the answer positions
#                     (answer digits and END), the baseline and AdaSPEC's reference model;
#   2. draft-adaspec: AdaSPEC, same size, same initialization and data stream (seed 0), same steps
#                     and batch: per answer token gap = KL(p_t || q_draft) - KL(p_t || q_kd), and
#                     only the 40% of the batch's answer tokens with the largest gap are trained on.
#
# Drafts: d_model 48, 2 layers, 2 heads (59,824 parameters, 13.4x fewer than the 801,808 of
# arith-add-padrev). Teacher: models/arith/trained/arith-add-padrev.arcm (read by arcm.py).
# Resumable: each distill run continues from models/work/arith-gen/<name>.pt (a finished run is
# skipped); work files (onnx, checks, checkpoints, logs) stay in models/work/arith-gen/.
#
#   bash models/arith/make_drafts.sh          # STEPS=4500 BATCH=128 (about 20-25 min each on 1 thread)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=models/.venv/bin/python
STEPS=${STEPS:-4500}
BATCH=${BATCH:-128}
W=models/work/arith-gen
T=models/arith/trained
mkdir -p $W

$PY models/arith/distill.py --name draft-kd --steps "$STEPS" --batch "$BATCH"
$PY models/arith/distill.py --name draft-adaspec --ref $W/draft-kd.pt --select-frac 0.4 --steps "$STEPS" --batch "$BATCH"

# `target/release/arca` must exist (cargo build --release -p arca-cli)
$PY models/arith/gen_export.py --arcm $T/arith-add-padrev.arcm --name arith-add-padrev-target
$PY models/arith/gen_export.py --ckpt $W/draft-kd.pt --name arith-add-padrev-draft-kd
$PY models/arith/gen_export.py --ckpt $W/draft-adaspec.pt --name arith-add-padrev-draft-adaspec
for name in arith-add-padrev-target arith-add-padrev-draft-kd arith-add-padrev-draft-adaspec; do
  target/release/arca pack --manifest $T/$name.json -o $T/$name.arcm -f $W/$name.onnx
  target/release/arca inspect $T/$name.arcm > /dev/null
done
