#!/usr/bin/env python3
"""Average the weights of checkpoints of one training run (checkpoint averaging, as in Polyak
averaging or "stochastic weight averaging" with a constant learning rate).

    python models/arith/average.py OUT.pt RUN.t1.pt RUN.t2.pt ...

At a constant small learning rate the weights wander around a minimum: the held-out accuracy
of successive checkpoints goes up and down by several points. Their mean sits nearer the middle.
The inputs are checkpoints of one run (train_arith.py's NAME.pt saved at different times), or
of runs that started from the same weights; same model shape, each step once. The weights and
the running-sum probe are averaged; OUT.pt takes the counters and command list of the latest
(largest step) and adds this command, drops the optimizer's moments (they belong to no averaged
point) and a moving average (--ema) of the last alone, and records which steps went in
(`averaged_steps`). Written whole or not at all. Export it like any checkpoint: copy it to
NAME.pt in an --out folder and run train_arith.py ... --resume --time-budget 0.
"""
import os
import shlex
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_arith import atomic_save  # noqa: E402

AVERAGED = ("model", "probe")  # the weights that are averaged; the rest comes from the latest


def load(path):
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such file")
    except Exception as e:  # a bundle, a truncated file, anything torch cannot read
        raise SystemExit(f"{path}: not a checkpoint torch can read ({type(e).__name__}: {e})")
    if not isinstance(ck, dict) or not {"model", "model_cfg", "step"} <= ck.keys():
        raise SystemExit(f"{path}: not a train_arith.py checkpoint (no model, model_cfg and step)")
    return ck


def average(paths):
    cks = [load(p) for p in paths]
    first = cks[0]
    for p, ck in zip(paths, cks):
        if ck["model_cfg"] != first["model_cfg"]:
            raise SystemExit(f"{p} is a model of another shape: {ck['model_cfg']} vs {first['model_cfg']}")
        for part in AVERAGED:
            if (part in ck) != (part in first) or (part in ck and ck[part].keys() != first[part].keys()):
                raise SystemExit(f"{p} holds other {part} tensors than {paths[0]}")
    steps = [ck["step"] for ck in cks]
    if len(set(steps)) != len(steps):
        raise SystemExit(f"two inputs are the same step ({sorted(steps)}): pass each checkpoint once")
    last = max(cks, key=lambda ck: ck["step"])
    out = {k: v for k, v in last.items() if k not in ("optimizer", "ema")}
    for part in AVERAGED:
        if part in last:
            out[part] = {k: (sum(ck[part][k].double() for ck in cks) / len(cks)).to(v.dtype)
                         if v.is_floating_point() else v
                         for k, v in last[part].items()}
    out["averaged_steps"] = sorted(steps)
    return out


def main(argv):
    if len(argv) < 3:
        raise SystemExit("usage: " + __doc__.strip().splitlines()[3].strip())
    dst, srcs = argv[0], argv[1:]
    if not os.path.isdir(os.path.dirname(os.path.abspath(dst))):
        raise SystemExit(f"{dst}: its folder does not exist")
    out = average(srcs)
    command = "python models/arith/average.py " + " ".join(shlex.quote(x) for x in argv)
    out["commands"] = list(out.get("commands", [])) + [command]
    atomic_save(out, dst)
    print(f"{dst}: mean of {len(srcs)} checkpoints, steps {out['averaged_steps'][0]}..{out['averaged_steps'][-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
