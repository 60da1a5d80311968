#!/usr/bin/env python3
"""The quick checks of docs/arith/accuracy.md (8): 6 x 6 exact match of checkpoints in one
teacher-forced pass, and of ensembles of them (log-probabilities summed).

    models/.venv/bin/python models/arith/runs/2026-12-06-w6-cpu-hard/teacher_forced.py \\
        SEED N [--ensembles K] CKPT.pt[:ema] ...

Greedy decoding gets a problem right exactly when, given the right answer so far, the argmax at
every answer position is the right token; so one forward pass over question + answer gives
greedy exact match (eval_arith.py decodes step by step and agrees: 98.9 and 99.0% for hm4 and
hm8 on seed 1000, as here). `:ema` reads a --ema checkpoint's moving average. With
--ensembles K, every combination of up to K of the models is scored too (best first).
Held-out pairs of 6-digit operands from formats.heldout_pairs(SEED, N).
"""
import argparse
import itertools
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import formats as F  # noqa: E402
from arith_model import load_checkpoint, problems  # noqa: E402


def answer_logprobs(spec, pairs):
    """(log-probabilities [n, answer_len, vocab] at the answer positions, targets [n, answer_len])."""
    ema = spec.endswith(":ema")
    try:
        model, ck = load_checkpoint(spec[:-4] if ema else spec, "cpu", ema)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise SystemExit(f"teacher_forced.py: {spec}: {type(e).__name__}: {e}")
    prompts, expected = problems("*", ck["args"]["format"], ck["args"]["width"], pairs)
    ql, al = len(prompts[0]), len(expected[0])
    if any(len(p) != ql for p in prompts):
        raise SystemExit(f"{spec}: questions of different lengths (a padrev model is needed here)")
    x = torch.tensor([p + e for p, e in zip(prompts, expected)])
    with torch.no_grad():
        lp = torch.cat([torch.log_softmax(model(x[s:s + 500, :-1]).float(), -1)[:, ql - 1:ql - 1 + al]
                        for s in range(0, len(x), 500)])
    return lp.numpy(), np.array(expected)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seed", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--ensembles", type=int, default=1, metavar="K")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    pairs = F.heldout_pairs("*", 6, a.n, a.seed)
    lps, tgt = [], None
    for spec in a.models:
        lp, tgt = answer_logprobs(spec, pairs)
        lps.append(lp)
    scores = []
    for k in range(1, a.ensembles + 1):
        for c in itertools.combinations(range(len(lps)), k):
            wrong = int((~(sum(lps[i] for i in c).argmax(-1) == tgt).all(1)).sum())
            scores.append((wrong, [a.models[i] for i in c]))
    for wrong, names in sorted(scores, key=lambda s: s[0]) if a.ensembles > 1 else scores:
        print(f"{100 * (1 - wrong / len(pairs)):6.2f}%  wrong {wrong:4d} of {len(pairs)}  {' + '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
