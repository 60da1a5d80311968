#!/usr/bin/env python3
"""Bits per byte of exported byte models (the network alone, full context) on each kind of
validation text: the books of data/valid and the five files of data/mixed/valid. What a model
card's "before / after" table is made of; onnxruntime on the exported integer graph, so the
numbers are the runtime's.

    models/.venv/bin/python models/eval_text.py models/text-small.onnx [MORE.onnx ...] \\
        [--limit 300000] [--jobs 2]

Validation only: eval/ is never read here.
"""
import argparse
import glob
import os
import sys
from multiprocessing import get_context

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_text as et  # noqa: E402
import train_text as tt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", help="exported .onnx files (int32 logits, F from the JSON beside)")
    ap.add_argument("--limit", type=int, default=300000,
                    help="bytes of each validation file (0 = whole files); default as the model cards")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    kinds = {
        "books": sorted(glob.glob(os.path.join(tt.DATA, "valid", "*.txt"))),
        "mixed": sorted(glob.glob(os.path.join(tt.DATA, "mixed", "valid", "*.txt"))),
    }
    print("| model | " + " | ".join(kinds) + " | "
          + " | ".join(os.path.basename(f) for f in kinds["mixed"]) + " |")
    print("| --- |" + " ---: |" * (len(kinds) + len(kinds["mixed"])))
    for path in args.models:
        import json
        spec = json.load(open(os.path.splitext(path)[0] + ".json"))
        N, F = spec["context_len"], spec["logit_frac_bits"]
        jobs = [(f, args.limit) for files in kinds.values() for f in files]
        with get_context("spawn").Pool(args.jobs, initializer=et._worker_init,
                                       initargs=(path, N, F)) as pool:
            res = dict(zip((f for f, _ in jobs), pool.map(et._worker_bpb, jobs, chunksize=1)))
        cells = []
        for files in kinds.values():
            bits = sum(res[f][0] * res[f][1] for f in files)
            n = sum(res[f][1] for f in files)
            cells.append(f"{bits / n:.4f}")
        cells += [f"{res[f][0]:.4f}" for f in kinds["mixed"]]
        print(f"| {os.path.basename(path)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
