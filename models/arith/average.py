#!/usr/bin/env python3
"""Average the weights of checkpoints of one training run (checkpoint averaging, as in Polyak
averaging or "stochastic weight averaging" with a constant learning rate).

    python models/arith/average.py OUT.pt RUN.t1.pt RUN.t2.pt ...

At a constant small learning rate the weights wander around a minimum: the held-out accuracy
of successive checkpoints goes up and down by several points. Their mean sits nearer the middle.
The inputs must be checkpoints of the same run (train_arith.py's NAME.pt saved at different
times, same model shape); OUT.pt takes the counters, probe and command list of the latest
(largest step) and adds this command, drops the optimizer's moments (they belong to no averaged
point), and records which steps went in (`averaged_steps`). Export it like any checkpoint:
copy it to NAME.pt in an --out folder and run train_arith.py ... --resume --time-budget 0.
"""
import os
import shlex
import sys

import torch


def average(paths):
    cks = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    cfg = cks[0]["model_cfg"]
    for p, ck in zip(paths, cks):
        if ck["model_cfg"] != cfg:
            raise SystemExit(f"{p} is a model of another shape: {ck['model_cfg']} vs {cfg}")
        if ck["model"].keys() != cks[0]["model"].keys():
            raise SystemExit(f"{p} holds other tensors than {paths[0]}")
    steps = [ck["step"] for ck in cks]
    if len(set(steps)) != len(steps):
        raise SystemExit(f"two inputs are the same step ({sorted(steps)}): pass each checkpoint once")
    last = max(cks, key=lambda ck: ck["step"])
    out = {k: v for k, v in last.items() if k != "optimizer"}
    out["model"] = {k: (sum(ck["model"][k].double() for ck in cks) / len(cks)).to(v.dtype)
                    if v.is_floating_point() else v
                    for k, v in last["model"].items()}
    out["averaged_steps"] = sorted(steps)
    return out


def main(argv):
    if len(argv) < 3:
        raise SystemExit("usage: " + __doc__.strip().splitlines()[3].strip())
    dst, srcs = argv[0], argv[1:]
    for p in srcs:
        if not os.path.isfile(p):
            raise SystemExit(f"{p}: no such file")
    out = average(srcs)
    command = "python models/arith/average.py " + " ".join(shlex.quote(x) for x in argv)
    out["commands"] = list(out.get("commands", [])) + [command]
    tmp = dst + ".tmp"
    torch.save(out, tmp)
    os.replace(tmp, dst)
    print(f"{dst}: mean of {len(srcs)} checkpoints, steps {out['averaged_steps'][0]}..{out['averaged_steps'][-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
