"""Markdown tables of held-out exact match from the manifests one `models/hf/gpu_run.sh` call wrote
(`NAME.json`, `metrics.heldout_exact_match`: train_arith.py's final evaluation, 500 held-out
problems per digit count, greedy, PyTorch; `ctx`: sentence models, held-out pairs in sentences of
the held-out templates), with the mean and spread over seeds.

    python models/arith/runs_table.py models/arith/runs/2026-12-04
"""

import glob
import json
import os
import statistics
import sys


def main():
    runs = {}
    for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
        if p.endswith(".log.json"):
            continue
        d = json.load(open(p))
        if "name" in d and "metrics" in d:  # a manifest (not eval.json)
            runs[d["name"]] = d
    for op in ("add", "mul", "ctx"):
        names = [n for n in runs if n.startswith(op)]
        if not names:
            continue
        digits = sorted({int(k) for n in names for k in runs[n]["metrics"]["heldout_exact_match"]})
        print(f"\n### {op}\n")
        print("| digits | n | " + " | ".join(f"{n} ({runs[n]['parameters']:,} params)" for n in names) + " |")
        print("| ---: | ---: |" + " ---: |" * len(names))
        for dg in digits:
            n = max(runs[x]["metrics"]["heldout_n"].get(str(dg), 0) for x in names)
            cells = []
            for x in names:
                v = runs[x]["metrics"]["heldout_exact_match"].get(str(dg))
                cells.append("n/a" if v is None else f"{100 * v:.1f}")
            print(f"| {dg} | {n} | " + " | ".join(cells) + " |")
        groups = {}
        for x in names:
            if "-s" in x:
                groups.setdefault(x.rsplit("-s", 1)[0], []).append(x)
        if any(len(g) > 1 for g in groups.values()):
            print(f"\nMean (min-max) over seeds:\n")
            print("| digits | " + " | ".join(f"{g} ({len(v)} seeds)" for g, v in groups.items()) + " |")
            print("| ---: |" + " ---: |" * len(groups))
            for dg in digits:
                cells = []
                for g, v in groups.items():
                    xs = [runs[x]["metrics"]["heldout_exact_match"].get(str(dg)) for x in v]
                    xs = [100 * x for x in xs if x is not None]
                    cells.append(f"{statistics.mean(xs):.1f} ({min(xs):.1f}-{max(xs):.1f})" if xs else "n/a")
                print(f"| {dg} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
