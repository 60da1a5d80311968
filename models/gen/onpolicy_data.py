#!/usr/bin/env python3
"""On-policy distillation data (DistillSpec): text the prose target generates itself.

Each window: a 128-byte prompt cut at a line start (the byte after a '\\n') from a random place
in the books of one split (a random byte offset over all files, so files are picked by length;
then the next line start; the prompt never crosses a file end), continued by the target for 384
bytes with the release binary:

  target/release/arca -q generate -m models/gen/trained/gen-target.arcm -f PROMPT -n 384 --no-echo \\
      --temp 0                                  (greedy; window i with probability --greedy-frac)
      --temp 0.8 --top-p 0.95 --seed i          (sampled; the rest)

arca prints one newline after the generated text; exactly that one is stripped, and the window
(prompt + continuation = 512 bytes) is written to OUT/NNNNN.txt. The prompt keeps its bytes as
in the book (CRLF or LF); what the target generates follows them. OUT/meta.jsonl has one line
per window (file, offset, mode, seed, seconds). Resumable: windows already written are skipped
(the prompts are drawn from --seed, so a rerun draws the same ones).

Training data comes from /work/shared/data/train only; --split valid is for the held-out
evaluation set (never trained on). /work/shared/data/eval is never read.

Usage:
  models/.venv/bin/python models/gen/onpolicy_data.py --split train --n 2000 --out models/gen/work/onpolicy
  models/.venv/bin/python models/gen/onpolicy_data.py --split valid --n 64 --greedy-frac 1 --seed 2 \\
      --out models/gen/work/onpolicy-valid
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA = "/work/shared/data"
PROMPT, GEN = 128, 384


def draw_prompts(split, n, seed):
    files = sorted(glob.glob(os.path.join(DATA, split, "*.txt")))
    assert files, split
    texts = [open(f, "rb").read() for f in files]
    lens = np.array([len(t) for t in texts], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        pick = int(rng.integers(0, lens.sum()))
        f = int(np.searchsorted(starts, pick, side="right") - 1)
        t, off = texts[f], pick - int(starts[f])
        nl = t.find(b"\n", off)
        if nl < 0 or nl + 1 + PROMPT > len(t):
            continue
        p = t[nl + 1:nl + 1 + PROMPT]
        if not p.strip():  # a prompt of blank lines only says nothing
            continue
        out.append((os.path.basename(files[f]), nl + 1, p))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="train", choices=["train", "valid"])
    ap.add_argument("--n", type=int, required=True, help="windows")
    ap.add_argument("--out", required=True)
    ap.add_argument("--greedy-frac", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1, help="prompt draw and greedy/sampled choice")
    ap.add_argument("--model", default=os.path.join(ROOT, "models/gen/trained/gen-target.arcm"))
    ap.add_argument("--arca", default=os.path.join(ROOT, "target/release/arca"))
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    prompts = draw_prompts(args.split, args.n, args.seed)
    greedy = np.random.default_rng(args.seed + 1000).random(args.n) < args.greedy_frac
    meta = open(os.path.join(args.out, "meta.jsonl"), "a")
    t_all, done = time.time(), 0
    with tempfile.TemporaryDirectory() as tmp:
        pf = os.path.join(tmp, "prompt.txt")
        for i, (fname, off, p) in enumerate(prompts):
            dst = os.path.join(args.out, f"{i:05d}.txt")
            if os.path.exists(dst):
                continue
            with open(pf, "wb") as fh:
                fh.write(p)
            cmd = [args.arca, "-q", "generate", "-m", args.model, "-f", pf, "-n", str(GEN), "--no-echo"]
            cmd += ["--temp", "0"] if greedy[i] else ["--temp", "0.8", "--top-p", "0.95", "--seed", str(i)]
            t = time.time()
            r = subprocess.run(cmd, capture_output=True, check=True)
            dt = time.time() - t
            g = r.stdout
            assert g.endswith(b"\n"), (i, g[-20:])
            g = g[:-1]
            assert len(g) == GEN, (i, len(g), r.stderr[-300:])
            with open(dst + ".tmp", "wb") as fh:
                fh.write(p + g)
            os.replace(dst + ".tmp", dst)
            meta.write(json.dumps(dict(i=i, file=fname, offset=off, split=args.split,
                                       mode="greedy" if greedy[i] else "sampled",
                                       seed=None if greedy[i] else i, seconds=round(dt, 3))) + "\n")
            meta.flush()
            done += 1
            if done % 100 == 0:
                print(f"{done} windows, {time.time() - t_all:.0f}s", flush=True)
    print(f"{args.out}: {done} new windows of {PROMPT + GEN} bytes in {time.time() - t_all:.1f}s "
          f"({sum(greedy)} greedy / {args.n - sum(greedy)} sampled of {args.n})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
