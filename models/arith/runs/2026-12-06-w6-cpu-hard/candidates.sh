#!/bin/bash
# The validation candidates of docs/arith/accuracy.md (8), from checkpoints kept outside the repo
# (/work/ckpt; a loop copied each run's NAME.pt to snap4/NAME.MTIME.pt every 300 s; hm8 was
# stopped at 2,390 s and its last NAME.pt kept as snap4/hm8.final.pt): the EMA and
# last weights of each run's final NAME.pt, and the means of the copies from half (h2) and three
# quarters (q3) of the run's seconds on. Evaluated with
#   eval_arith.py --n 1500 --seed 1000 --digits 6 /work/ckpt/avg5/*.pt
set -e
cd /work/main
PY=models/.venv/bin/python
mkdir -p /work/ckpt/avg5
$PY - <<'PYEOF'
import glob, torch
import sys; sys.path.insert(0, 'models/arith')
from arith_model import ema_weights
# seconds of training of the checkpoint each run resumed from, and its folder
RUNS = {'hm4': (35935, 'hm'), 'hm8': (35935, 'hm'), 'hm4p': (35415, 'hmp')}
for name, (T0, folder) in RUNS.items():
    snaps, seen = [], set()
    for p in sorted(glob.glob(f'/work/ckpt/snap4/{name}.*.pt')):
        c = torch.load(p, map_location='cpu', weights_only=False)
        if c['step'] not in seen:
            seen.add(c['step']); snaps.append((p, c['train_s_total']))
    if not snaps: continue
    span = snaps[-1][1] - T0
    for tag, lo in (('h2', 0.5), ('q3', 0.75)):
        sel = [p for p, t in snaps if t - T0 >= lo * span]
        open(f'/work/ckpt/avg5/{name}-{tag}.list', 'w').write('\n'.join(sel) + '\n')
        print(name, tag, len(sel), 'of', len(snaps))
    ck = torch.load(f'/work/ckpt/{folder}/{name}.pt', map_location='cpu', weights_only=False)
    ema = ema_weights(ck)
    for k in ('ema', 'optimizer'): ck.pop(k, None)
    torch.save(ck, f'/work/ckpt/avg5/{name}-last.pt')
    ck['model'] = ema
    torch.save(ck, f'/work/ckpt/avg5/{name}-ema.pt')
PYEOF
for l in /work/ckpt/avg5/*.list; do
  $PY models/arith/average.py ${l%.list}.pt $(cat $l) 2>&1 | tail -1
done
