#!/usr/bin/env bash
# One GPU session's work for issues #21 and #24, within a wall-clock budget (about 480 s on an
# H200): the #21 target and its three drafts (train_lm.py), with the #24 arithmetic runs
# (../arith/train_arith.py) in the background on the same GPU. Results go to OUT in at most
# 8 files (the device tool's limit): target_int8.pt split in parts, drafts.tar, arith.tar,
# run.log.
#
#   bash models/hf/gpu_run.sh DATA OUT            # DATA: prep.py's output
#   GPU_SMOKE=1 bash models/hf/gpu_run.sh .gpu /tmp/smoke   # CPU smoke test: tiny shapes, seconds
#
# Budget (seconds from the start; GPU_SMOKE scales everything down):
#   0-230    target (200 s of training, then int8 quantization and validation bits per byte)
#   230-290  draft "pre": KD from the target, from random weights (45 s)
#   290-     "kd" (STEPS steps from pre) beside "onpolicy" (STEPS steps from pre); then
#            "adaspec" (STEPS steps from pre, reference = kd)
#   then     evaluate the drafts; pack
#   0-440    arithmetic: multiplication 1-6 digits (padded+reversed, and plain) and addition
#            trained on 1-10 digits, tested on 11-12 (random spaces, and plain) x 3 seeds
set -u
DATA=${1:?DATA}
OUT=${2:?OUT}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
SMOKE=${GPU_SMOKE:-0}
WORK=${WORK:-/tmp/arca_gpu_work}
T0=$(date +%s)
mkdir -p "$OUT" "$WORK/arith/logs"
exec > >(tee "$WORK/run.log") 2>&1
say() { printf '[gpu_run %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

if [ "$SMOKE" = 1 ]; then
  TINY=--tiny; T_TARGET=20; T_PRE=8; STEPS=12; T_FT=30; T_ARITH=40; BATCH="--batch 4 --seq 64"
  EVAL="--eval-windows 8 --gen-prompts 4 --gen-len 16"
  ARITH_MODEL="--d-model 32 --layers 1 --heads 2 --batch 64 --eval-n 20 --quick-eval-n 10 --ort-check-n 10"
  MUL_D=2; ADD_D=3; ADD_EVAL=4; SEEDS="0"; DEVICE=cpu
else
  TINY=; T_TARGET=200; T_PRE=45; STEPS=1000; T_FT=80; T_ARITH=370; BATCH="--batch 64 --seq 512"
  EVAL="--eval-windows 256 --gen-prompts 64 --gen-len 128"
  ARITH_MODEL="--d-model 128 --layers 4 --heads 4 --batch 512 --eval-every 60"
  MUL_D=6; ADD_D=10; ADD_EVAL=12; SEEDS="0 1 2"; DEVICE=cuda
fi
say "start: $(nproc) cpus; $("$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1 | tail -1)"

# ------------------------------------------------------------------ #24 arithmetic, background
ARITH=()
ARITH_PIDS=()
arith() {  # name args...
  local name=$1; shift
  ( timeout --kill-after=10 $(( T_ARITH + 40 )) nice -n 5 "$PY" "$HERE/../arith/train_arith.py" "$@" \
      --device "$DEVICE" --time-budget "$T_ARITH" --deadline $(( T0 + T_ARITH + 10 )) --threads 1 \
      --out "$WORK/arith" --name "$name" > "$WORK/arith/logs/$name.log" 2>&1
    echo $? > "$WORK/arith/logs/$name.rc" ) &
  ARITH+=("$name")
  ARITH_PIDS+=("$!")
}
if [ "$SMOKE" = 1 ]; then MULM=$ARITH_MODEL; else MULM="--d-model 192 --layers 6 --heads 6 --batch 512 --lr 5e-4 --eval-every 60"; fi
# shellcheck disable=SC2086
arith "mul-padrev-d$MUL_D" --task mul --format padrev --max-digits $MUL_D --width $MUL_D --seed 0 $MULM
# shellcheck disable=SC2086
arith "mul-plain-d$MUL_D" --task mul --format plain --max-digits $MUL_D --seed 0 $MULM
for s in $SEEDS; do
  # shellcheck disable=SC2086
  arith "add-spaces-d$ADD_D-s$s" --task add --format spaces --max-digits $ADD_D --eval-digits $ADD_EVAL --seed $s $ARITH_MODEL
  # shellcheck disable=SC2086
  arith "add-plain-d$ADD_D-s$s" --task add --format plain --max-digits $ADD_D --eval-digits $ADD_EVAL --seed $s $ARITH_MODEL
done
say "arith: ${#ARITH[@]} runs in the background (${T_ARITH}s each)"

# ------------------------------------------------------------------ #21 target and drafts
LM="$PY $HERE/train_lm.py"
# shellcheck disable=SC2086
timeout $(( T_TARGET + 120 )) $LM target --data "$DATA" --out "$WORK" --seconds $T_TARGET --lr 8e-4 $BATCH $TINY $EVAL || say "target FAILED"
# shellcheck disable=SC2086
timeout $(( T_PRE + 60 )) $LM draft --data "$DATA" --out "$WORK" --mode kd --name pre --seconds $T_PRE --lr 2e-3 $BATCH $TINY || say "pre FAILED"
# shellcheck disable=SC2086
( timeout $(( T_FT + 60 )) $LM draft --data "$DATA" --out "$WORK" --mode onpolicy --init pre --name onpolicy \
    --steps $STEPS --seconds $T_FT --lr 1e-3 $BATCH $TINY > "$WORK/onpolicy.log" 2>&1 || echo "onpolicy FAILED" >> "$WORK/onpolicy.log" ) &
ONP=$!
# shellcheck disable=SC2086
timeout $(( T_FT + 60 )) $LM draft --data "$DATA" --out "$WORK" --mode kd --init pre --name kd --steps $STEPS --seconds $T_FT --lr 1e-3 $BATCH $TINY || say "kd FAILED"
# shellcheck disable=SC2086
timeout $(( T_FT + 60 )) $LM draft --data "$DATA" --out "$WORK" --mode adaspec --init pre --ref kd --name adaspec --steps $STEPS --seconds $T_FT --lr 1e-3 $BATCH $TINY || say "adaspec FAILED"
wait $ONP
tail -n 3 "$WORK/onpolicy.log"
# shellcheck disable=SC2086
timeout 120 $LM evaluate --data "$DATA" --out "$WORK" --drafts pre,kd,adaspec,onpolicy --seq 512 $TINY $EVAL || say "evaluate FAILED"

say "waiting for arith"
# (a bare `wait` would also wait for the tee above, which never ends)
wait "${ARITH_PIDS[@]}"
for n in "${ARITH[@]}"; do say "arith $n rc=$(cat "$WORK/arith/logs/$n.rc" 2>/dev/null) $(grep '^{' "$WORK/arith/logs/$n.log" | tail -n 1 | cut -c1-300)"; done

# ------------------------------------------------------------------ pack (<= 8 files, 16 MiB each)
(cd "$WORK" && [ -f target_int8.pt ] && split -b 15m -d target_int8.pt "$OUT/target_int8.pt.part")
(cd "$WORK" && tar cf "$OUT/drafts.tar" draft_kd.pt draft_adaspec.pt draft_onpolicy.pt ./*.json onpolicy.log 2>/dev/null)
"$PY" - "$WORK/arith" <<'EOF'
# arithmetic checkpoints to f16 (they come back within the size limit); ONNX files stay behind
import glob, os, sys, torch
def half(o):
    if torch.is_tensor(o):
        return o.half() if o.is_floating_point() else o
    if isinstance(o, dict):
        return {k: half(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return type(o)(half(v) for v in o)
    return o
for p in glob.glob(os.path.join(sys.argv[1], "*.pt")):
    if os.path.basename(p).startswith("mul-padrev") or os.path.basename(p).startswith("mul-plain"):
        torch.save(half(torch.load(p, map_location="cpu", weights_only=False)), p[:-3] + ".f16.pt")
EOF
(cd "$WORK/arith" && tar cf "$OUT/arith.tar" logs ./*.json ./*.f16.pt 2>/dev/null)
say "done"
cp "$WORK/run.log" "$OUT/run.log"
ls -la "$OUT"
