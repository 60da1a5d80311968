#!/usr/bin/env bash
# Train, export and evaluate every arithmetic variant of issue #8 within a wall-time budget.
#
#   bash models/arith/run_all.sh [TOTAL_SECONDS=300] [OUT_DIR=arith_out]
#
# Designed for one GPU (H100) + 16 CPU cores: all variants train at the same time as background
# processes (small models leave the GPU mostly idle), each with --time-budget/--deadline so
# that training, export + onnxruntime check and the final evaluation end within TOTAL seconds.
# No network access needed. Outputs in OUT_DIR: NAME.{pt,onnx,json,log.json}, logs/NAME.log,
# eval.md / eval.json (held-out exact match by digit count), summary.md.
#
# Variants of ARITH_PLAN=issue8 (the default; same model size for all: d_model 128, 4 layers,
# 4 heads, batch 512):
#   add-padrev-d10-w10-s0        addition 1..10 digits, padded (W=10) + reversed result
#   add-plain-d10-s0             addition 1..10 digits, plain
#   add-spaces-d8-s{0,1,2}       addition trained 1..8 digits, random spaces; evaluated 1..10
#   add-plain-d8-s{0,1,2}        addition trained 1..8 digits, plain ("basic"); evaluated 1..10
#   mul-padrev-d5-w5-s0          multiplication 1..5 digits, padded (W=5) + reversed result
#   mul-plain-d5-s0              multiplication 1..5 digits, plain
#
# Variants of ARITH_PLAN=issue24 (extrapolation past 10 digits, multiplication to 6 digits):
#   add-spaces-d10-s{0,1,2}      addition trained 1..10 digits, random spaces; evaluated 1..12
#   add-plain-d10-s{0,1,2}       addition trained 1..10 digits, plain; evaluated 1..12
#                                (the issue 8 model size, one session's budget)
#   mul-padrev-d6-w6-s0          multiplication 1..6 digits, padded (W=6) + reversed result
#   mul-plain-d6-s0              multiplication 1..6 digits, plain
#                                (both with the running-sum loss, weight ARITH_MUL_AUX, and
#                                digit counts drawn ARITH_MUL_DIST)
#   ctx-spaces-d5-s{0,1,2}       addition inside sentences (context.py) and plain, 1..5 digits,
#                                random spaces in the prompts (the fix)
#   ctx-plain-d5-s{0,1,2}        the same without the fix
#                                (both d_model 256, 6 layers, 8 heads, bf16 forward; trained
#                                over several sessions: --resume from the checkpoints in OUT,
#                                the cosine spread over ARITH_MUL_SCHEDULE seconds in all)
#
# Environment:
#   PYTHON=python3        interpreter (torch, numpy, onnx, onnxruntime)
#   ARITH_DEVICE=auto     cuda if available, else cpu
#   ARITH_JOBS=0          max concurrent trainings (0 = all at once); fewer -> run in waves
#   ARITH_SEEDS="0 1 2"   seeds of the spaces / basic extrapolation variants
#   ARITH_SMOKE=1         CPU smoke test: tiny models, small digit counts, 1 seed (6 variants)
#   ARITH_EXTRA="..."     extra arguments for every train_arith.py call
#   ARITH_EVAL_N=500      problems per digit count in the final evaluation
#   ARITH_NO_CKPT=1       delete the .pt checkpoints after the evaluation (smaller output)
#   ARITH_PLAN=issue8     which variants (issue8 or issue24, above)
#   ARITH_MUL_SCHEDULE=2400  issue24: seconds of training the multipliers' schedule spans
#   ARITH_MUL_AUX=1       issue24: weight of the multipliers' running-sum loss (train_arith.py
#                         --aux-running-sum; 0 trains them on the answers alone)
#   ARITH_MUL_DIST=linear issue24: how the multipliers' training draws digit counts
#                         (train_arith.py --digit-dist: linear, more of the widest; or uniform)
#   ARITH_MUL_EMA=0.9999  issue24: the multipliers are evaluated and exported as the moving
#                         average of their weights (train_arith.py --ema; 0 = the last weights)
#   ARITH_ONLY="NAME ..."  train only these variants (a later session: the multipliers alone)
#   ARITH_RETURN=DIR      afterwards, pack this run's results into DIR within the device tool's
#                         limits on what comes back (8 files of 16 MiB, 64 MiB in all): reports,
#                         logs, manifests, the ONNX files of the finished models and the weights
#                         of those that resume, tarred and split into 15 MiB parts
set -u
PLAN=${ARITH_PLAN:-issue8}
TOTAL=${1:-300}
OUT=${2:-arith_out}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
SMOKE=${ARITH_SMOKE:-0}
T0=$(date +%s)
mkdir -p "$OUT/logs" || exit 1
OUT=$(cd "$OUT" && pwd)

elapsed() { echo $(( $(date +%s) - T0 )); }
say() { printf '[run_all %4ss] %s\n' "$(elapsed)" "$*"; }

DEVICE=${ARITH_DEVICE:-auto}
if [ "$DEVICE" = auto ]; then
  DEVICE=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo cpu)
fi

if [ "$SMOKE" = 1 ]; then
  JOBS=${ARITH_JOBS:-0}
  SEEDS=${ARITH_SEEDS:-0}
  MODEL="--d-model 32 --layers 1 --heads 2 --batch 64 --lr 3e-3 --warmup 20 --eval-n 50 --quick-eval-n 20 --ort-check-n 40 --log-every 20 --eval-every 1000"
  MULMODEL=$MODEL
  ADD_D=4; EXT_TRAIN=3; EXT_EVAL=4; MUL_D=2
  [ "$PLAN" = issue24 ] && { EXT_TRAIN=4; EXT_EVAL=5; MUL_D=3; CTX_D=3; }
  STARTUP=20; FINISH=6; EVAL_RES=15; SLACK=3; EVAL_N=50
  PROGRESS=10
else
  JOBS=${ARITH_JOBS:-0}
  SEEDS=${ARITH_SEEDS:-"0 1 2"}
  MODEL="--d-model 128 --layers 4 --heads 4 --batch 512 --lr 1e-3 --eval-every 40"
  MULMODEL=$MODEL
  ADD_D=10; EXT_TRAIN=8; EXT_EVAL=10; MUL_D=5
  if [ "$PLAN" = issue24 ]; then
    EXT_TRAIN=10; EXT_EVAL=12; MUL_D=6; CTX_D=5
    MULMODEL="--d-model 256 --layers 6 --heads 8 --batch 512 --lr 5e-4 --eval-every 60 --bf16"
  fi
  # seconds reserved: process start (imports, CUDA init), final eval + export + onnxruntime
  # check inside each job, the batch evaluation at the end, and slack
  STARTUP=25; FINISH=25; EVAL_RES=45; SLACK=10; EVAL_N=${ARITH_EVAL_N:-500}
  PROGRESS=30
fi
EXTRA=${ARITH_EXTRA:-}

# name|arguments
VARIANTS=()
if [ "$PLAN" = issue8 ]; then
  VARIANTS+=("add-padrev-d${ADD_D}-w${ADD_D}-s0|--task add --format padrev --max-digits $ADD_D --width $ADD_D --seed 0 $MODEL"
             "add-plain-d${ADD_D}-s0|--task add --format plain --max-digits $ADD_D --seed 0 $MODEL")
elif [ "$PLAN" != issue24 ]; then
  echo "run_all: ARITH_PLAN must be issue8 or issue24, not '$PLAN'" >&2; exit 2
fi
# Multipliers of issue24 train over several sessions: each run continues the checkpoint in OUT.
RESUME=()
if [ "$PLAN" = issue24 ]; then
  MULMODEL="$MULMODEL --resume --schedule-seconds ${ARITH_MUL_SCHEDULE:-2400} --aux-running-sum ${ARITH_MUL_AUX:-1} --digit-dist ${ARITH_MUL_DIST:-linear} --ema ${ARITH_MUL_EMA:-0.9999}"
  RESUME=("mul-padrev-d${MUL_D}-w${MUL_D}-s0" "mul-plain-d${MUL_D}-s0")
fi
for s in $SEEDS; do
  VARIANTS+=("add-spaces-d${EXT_TRAIN}-s$s|--task add --format spaces --max-digits $EXT_TRAIN --eval-digits $EXT_EVAL --seed $s $MODEL")
done
for s in $SEEDS; do
  VARIANTS+=("add-plain-d${EXT_TRAIN}-s$s|--task add --format plain --max-digits $EXT_TRAIN --eval-digits $EXT_EVAL --seed $s $MODEL")
done
VARIANTS+=("mul-padrev-d${MUL_D}-w${MUL_D}-s0|--task mul --format padrev --max-digits $MUL_D --width $MUL_D --seed 0 $MULMODEL"
           "mul-plain-d${MUL_D}-s0|--task mul --format plain --max-digits $MUL_D --seed 0 $MULMODEL")
if [ "$PLAN" = issue24 ]; then
  for f in spaces plain; do
    for s in $SEEDS; do
      VARIANTS+=("ctx-$f-d${CTX_D}-s$s|--task add --format $f --context --max-digits $CTX_D --seed $s $MODEL")
    done
  done
fi

if [ -n "${ARITH_ONLY:-}" ]; then
  chosen=()
  for v in "${VARIANTS[@]}"; do
    for name in $ARITH_ONLY; do [ "${v%%|*}" = "$name" ] && chosen+=("$v"); done
  done
  [ ${#chosen[@]} -gt 0 ] || { echo "run_all: ARITH_ONLY names no variant of $PLAN" >&2; exit 2; }
  VARIANTS=("${chosen[@]}")
fi
NV=${#VARIANTS[@]}
[ "$JOBS" -le 0 ] && JOBS=$NV
WAVES=$(( (NV + JOBS - 1) / JOBS ))
SLOT=$(( (TOTAL - EVAL_RES - SLACK) / WAVES ))       # wall seconds per job, start to finish
BUDGET=$(( SLOT - STARTUP - FINISH ))                 # training-loop seconds per job
say "device=$DEVICE python=$PY variants=$NV concurrent=$JOBS waves=$WAVES total=${TOTAL}s slot=${SLOT}s train_budget=${BUDGET}s out=$OUT"
if [ "$BUDGET" -lt 5 ]; then
  say "ERROR: TOTAL=$TOTAL too small for $NV variants in $WAVES wave(s) (training budget ${BUDGET}s)"; exit 2
fi
"$PY" -c 'import sys, torch, numpy, onnx, onnxruntime as o; print("python", sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__, "onnx", onnx.__version__, "onnxruntime", o.__version__, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' > "$OUT/logs/env.txt" 2>&1
say "env: $(head -c 300 "$OUT/logs/env.txt")"
if [ "$DEVICE" = cuda ]; then
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | sed 's/^/[gpu] /'
fi

launch() {  # name args
  local name=$1 args=$2 now deadline
  now=$(date +%s)
  deadline=$(( now + SLOT - FINISH ))
  rm -f "$OUT/logs/$name.rc"
  (
    # shellcheck disable=SC2086
    timeout --kill-after=10 $(( SLOT + 20 )) "$PY" "$HERE/train_arith.py" $args --device "$DEVICE" \
      --time-budget "$BUDGET" --deadline "$deadline" --threads 1 --out "$OUT" --name "$name" $EXTRA \
      > "$OUT/logs/$name.log" 2>&1
    echo $? > "$OUT/logs/$name.rc"
  ) &
  say "started $name (pid $!, deadline +$(( deadline - T0 ))s)"
}

progress() {  # one line per running job
  local v name
  for v in "${VARIANTS[@]}"; do
    name=${v%%|*}
    if [ -f "$OUT/logs/$name.log" ] && [ ! -f "$OUT/logs/$name.rc" ]; then
      say "  $name: $(grep '^\[' "$OUT/logs/$name.log" | tail -n 1 | cut -c1-160)"
    fi
  done
}

LAUNCHED=()
n_running() {
  local n=0 name
  for name in "${LAUNCHED[@]}"; do [ -f "$OUT/logs/$name.rc" ] || n=$(( n + 1 )); done
  echo "$n"
}
last_progress=$(date +%s)
maybe_progress() {
  if [ $(( $(date +%s) - last_progress )) -ge "$PROGRESS" ]; then
    say "$(n_running) job(s) running, $(( NV - ${#LAUNCHED[@]} )) waiting"
    progress
    last_progress=$(date +%s)
  fi
}
for v in "${VARIANTS[@]}"; do
  while [ "$(n_running)" -ge "$JOBS" ]; do sleep 1; maybe_progress; done
  launch "${v%%|*}" "${v#*|}"
  LAUNCHED+=("${v%%|*}")
done
while [ "$(n_running)" -gt 0 ]; do sleep 2; maybe_progress; done
wait
say "all trainings finished"
fails=0
for v in "${VARIANTS[@]}"; do
  name=${v%%|*}
  rc=$(cat "$OUT/logs/$name.rc" 2>/dev/null || echo '?')
  [ "$rc" = 0 ] || fails=$(( fails + 1 ))
  say "  $name rc=$rc $(grep '^{' "$OUT/logs/$name.log" | tail -n 1)"
done

# ---------------------------------------------------------------- evaluation of all checkpoints
left=$(( TOTAL - $(elapsed) - 2 ))
[ "$left" -lt 10 ] && left=10
say "evaluating all checkpoints (n=$EVAL_N per digit count, limit ${left}s)"
timeout --kill-after=5 "$left" "$PY" "$HERE/eval_arith.py" "$OUT"/*.pt --n "$EVAL_N" --device "$DEVICE" --threads 4 \
  --out "$OUT/eval.md" --json "$OUT/eval.json" > "$OUT/logs/eval.log" 2>&1
erc=$?
[ "$erc" = 0 ] || { say "evaluation rc=$erc (see logs/eval.log)"; fails=$(( fails + 1 )); }

# ---------------------------------------------------------------- summary
"$PY" - "$OUT" "$(elapsed)" "$TOTAL" <<'EOF' > "$OUT/summary.md"
import json, os, sys, glob
out, el, total = sys.argv[1], sys.argv[2], sys.argv[3]
env = open(os.path.join(out, "logs", "env.txt")).read().strip() if os.path.exists(os.path.join(out, "logs", "env.txt")) else "?"
print(f"# arith batch summary\n\nwall time {el}s of {total}s budget; {env}\n")
print("| model | format | train digits | params | steps | examples | train s | final loss | onnx MB | onnx check |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for p in sorted(glob.glob(os.path.join(out, "*.log.json"))):
    d = json.load(open(p))
    a, fin, chk = d["args"], d.get("final", {}), d.get("onnx_check")
    onnx = os.path.join(out, d["name"] + ".onnx")
    mb = f"{os.path.getsize(onnx) / 1e6:.2f}" if os.path.exists(onnx) else "-"
    if not chk:
        c = "-"
    elif "error" in chk:
        c = "FAILED: " + chk["error"][:80]
    else:
        c = (("OK" if chk["ok"] else "MISMATCH") + f" (diff {chk['random_input_max_abs_diff']:.1e}, "
             f"ort {100 * chk['ort_accuracy']:.1f}% / torch {100 * chk['torch_accuracy']:.1f}%)")
    last = d["records"][-1] if d["records"] else {}
    print(f"| {d['name']} | {a['format']} | {a['max_digits']} | {d['params']} | {fin.get('steps', last.get('step', '-'))} | "
          f"{fin.get('examples', last.get('examples', '-'))} | {fin.get('train_s', last.get('wall_s', '-'))} | "
          f"{fin.get('loss', last.get('loss', '-'))} | {mb} | {c} |")
print()
ev = os.path.join(out, "eval.md")
if os.path.exists(ev):
    print(open(ev).read())
EOF
cat "$OUT/summary.md"
if [ -n "${ARITH_RETURN:-}" ]; then
  # What comes back from a lent machine: at most 8 files of 16 MiB, 64 MiB in all. One tar of
  # this run's variants, split into 15 MiB parts: reports, logs and manifests; the ONNX file of
  # each model that is done, for seed 0 only (the other seeds' numbers are in eval.md and their
  # logs); the weights of each that resumes (its ONNX file, 4x the size of an addition model's,
  # is exported here from them: models/arith/README.md).
  mkdir -p "$ARITH_RETURN" || exit 1
  keep=(summary.md eval.md eval.json logs)
  for v in "${VARIANTS[@]}"; do
    name=${v%%|*}
    resumes=0
    for r in "${RESUME[@]}"; do [ "$r" = "$name" ] && resumes=1; done
    for f in "$name.json" "$name.log.json"; do [ -e "$OUT/$f" ] && keep+=("$f"); done
    if [ "$resumes" = 1 ]; then
      [ -e "$OUT/$name.pt" ] && keep+=("$name.pt")
    elif [ "${name##*-s}" = 0 ]; then
      [ -e "$OUT/$name.onnx" ] && keep+=("$name.onnx")
    fi
  done
  (cd "$OUT" && tar cf - "${keep[@]}" 2>/dev/null) | split -b 15M -d -a 1 - "$ARITH_RETURN/arith.tar."
  parts=$(ls "$ARITH_RETURN"/arith.tar.* | wc -l)
  bytes=$(cat "$ARITH_RETURN"/arith.tar.* | wc -c)
  say "packed ${#keep[@]} entries, $bytes bytes, into $parts part(s) in $ARITH_RETURN (cat arith.tar.* | tar xf -)"
  if [ "$parts" -gt 7 ] || [ "$bytes" -gt $(( 63 << 20 )) ]; then
    say "ERROR: more than fits what comes back (7 parts and the summary, 64 MiB)"; fails=$(( fails + 1 ))
  fi
  cp "$OUT/summary.md" "$ARITH_RETURN/summary.md"
fi
if [ "${ARITH_NO_CKPT:-0}" = 1 ]; then rm -f "$OUT"/*.pt; say "removed checkpoints (ARITH_NO_CKPT=1)"; fi
say "done: $NV variants, $fails failure(s); wall $(elapsed)s of ${TOTAL}s; outputs in $OUT"
du -sh "$OUT" 2>/dev/null | sed 's/^/[run_all] size /'
[ "$fails" = 0 ]
