#!/bin/bash
# The validation candidates of docs/arith/accuracy.md (7), as run on 2026-12-06 from checkpoints kept
# outside the repo (/work/ckpt; a loop copied each run's NAME.pt to snap3/NAME.MTIME.pt every 300 s):
# EMA and last weights of each run's final NAME.pt; means of the copies from half (h2) and three
# quarters (q3) of the run's seconds on.
set -e
cd /work/main
PY=models/.venv/bin/python
mkdir -p /work/ckpt/avg4
$PY - <<'PYEOF'
import glob, torch
def pick(name):
    out, seen = [], set()
    for p in sorted(glob.glob(f'/work/ckpt/snap3/{name}.*.pt')):
        c = torch.load(p, map_location='cpu', weights_only=False)
        if c['step'] not in seen:
            seen.add(c['step']); out.append((p, c['step'], c['train_s_total']))
    return out
for name, t0 in (('grow6', 28735), ('grow6p', 28487)):
    snaps = pick(name)
    if not snaps: continue
    span = snaps[-1][2] - t0
    for tag, lo in (('h2', 0.5), ('q3', 0.75)):
        sel = [p for p, s, t in snaps if t - t0 >= lo * span]
        open(f'/work/ckpt/avg4/{name}-{tag}.list', 'w').write('\n'.join(sel) + '\n')
        print(name, tag, len(sel), 'of', len(snaps))
    ck = torch.load(f'/work/ckpt/grow/{name}.pt', map_location='cpu', weights_only=False)
    last = {k: v for k, v in ck.items() if k not in ('ema', 'optimizer')}
    torch.save(last, f'/work/ckpt/avg4/{name}-last.pt')
    ck['model'] = {k[len('module.'):]: v for k, v in ck['ema'].items() if k.startswith('module.')}
    for k in ('ema', 'optimizer'): ck.pop(k, None)
    torch.save(ck, f'/work/ckpt/avg4/{name}-ema.pt')
PYEOF
for l in /work/ckpt/avg4/*.list; do
  $PY models/arith/average.py ${l%.list}.pt $(cat $l) 2>&1 | tail -1
done
