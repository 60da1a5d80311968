#!/usr/bin/env python3
"""Evaluate arithmetic models (checkpoints .pt or ONNX graphs) by operand digit count.

For each model and each digit count d = 1..N: up to --n held-out pairs (formats.heldout_pairs,
fixed --seed) whose operands both have exactly d digits; greedy decoding; exact match of the
whole answer and END (formats.py docstring). Questions never contain spaces. padrev models are
not evaluated beyond their width ("–"); there is no held-out 1-digit addition pair ("n/a").
Sentence models (train_arith.py --context) form their own table, `ctx`: the held-out pairs asked
in sentences of the held-out templates (context.py).

Writes one markdown table per task (rows: digit count; columns: models "name (format, seed)"),
plus, for groups of models that differ only by seed, a table of the mean over seeds. Prints it.

    python models/arith/eval_arith.py OUT/*.pt --n 500 --out OUT/eval.md --json OUT/eval.json
    python models/arith/eval_arith.py OUT/add-padrev-d10-w10-s0.onnx     (reads the .json manifest beside it)
    python models/arith/eval_arith.py models/arith/trained/arith-mul-padrev.arcm --errors 6
A checkpoint is evaluated with its last weights; --ema evaluates the moving average a
train_arith.py --ema run keeps beside them (what that run evaluated and exported), its column
marked [pt EMA]. A directory argument means every *.pt in it. A packed bundle (.arcm) is read with arcm.py and the
manifest beside it.

--errors D adds, for each model, where its wrong answers at D x D digits go wrong: the share of
the wrong answers with a wrong character at each answer position (padrev: position i is the digit
of 10^i; plain: i counts from the first character of the answer), and how many characters a wrong
answer gets wrong. A model that fails at the middle of the product (the digits that sum the most
partial products) shows it there.
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import context as C  # noqa: E402
import formats as F  # noqa: E402
from arith_model import evaluate, evaluate_context, load_checkpoint, ort_next_fn, problems, torch_next_fn  # noqa: E402


def load(path, device, threads, ema=False):
    """-> (info dict, next_fn, context_len). ``ema``: a checkpoint's moving average (--ema)."""
    if path.endswith((".onnx", ".arcm")):
        import onnxruntime as ort
        man_path = os.path.splitext(path)[0] + ".json"
        with open(man_path) as f:
            man = json.load(f)
        ar = man["arith"]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        graph = path
        if path.endswith(".arcm"):
            import arcm
            graph = arcm.load_onnx(path).SerializeToString()
        sess = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
        info = dict(name=man["name"], task="ctx" if ar.get("context") else ar["task"], format=ar["format"], width=ar["width"],
                    max_digits=ar["max_digits"], eval_digits=ar.get("eval_digits") or ar["max_digits"],
                    seed=man["training"].get("seed"), kind=path.rsplit(".", 1)[1], params=man.get("parameters"),
                    size=None, aux=man["training"].get("aux_running_sum", 0.0),
                    dist=man["training"].get("digit_dist", "uniform"), hard=man["training"].get("hard_mining", 1))
        return info, ort_next_fn(sess), man["context_len"]
    model, ck = load_checkpoint(path, device, ema)
    a = ck["args"]
    info = dict(name=a["name"], task="ctx" if a.get("context") else a["task"], format=a["format"], width=a["width"], max_digits=a["max_digits"],
                eval_digits=a["eval_digits"], seed=a["seed"], kind="pt EMA" if ema else "pt", steps=ck.get("step"),
                params=sum(p.numel() for p in model.parameters()),
                size=f"d{a['d_model']}xL{a['layers']}", aux=a.get("aux_running_sum", 0.0),
                dist=a.get("digit_dist", "uniform"), hard=a.get("hard_mining", 1))
    return info, torch_next_fn(model, device), model.cfg["context_len"]


def recipe_note(r):
    """Column-title note for a model trained with the running-sum loss, a weighted digit-count
    draw or hard example mining (train_arith.py --aux-running-sum, --digit-dist, --hard-mining)."""
    note = f", running-sum loss {r['aux']:g}" if r.get("aux") else ""
    note += f", {r['dist']} digit counts" if r.get("dist", "uniform") != "uniform" else ""
    return note + (f", hardest 1/{r['hard']} of draws" if r.get("hard", 1) > 1 else "")


def model_digits(info, nd, ctx):
    """The digit counts 1..nd a model is evaluated at. context_len bounds what a model can
    represent (plain/spaces models are sized for their own eval_digits); longer questions, and
    padrev operands wider than the padding, are marked not applicable."""
    if info["task"] == "ctx":
        return [d for d in range(1, nd + 1) if C.context_len(d, d, False) <= ctx]
    op = F.OPS.get(info["task"], "+")
    return [d for d in range(1, nd + 1)
            if not (info["format"] == "padrev" and d > info["width"])
            and F.max_seq_len(op, info["format"], d, info["width"]) <= ctx]


def error_positions(op, fmt, width, pairs, gen):
    """Where the wrong answers go wrong: {"wrong": k, "by_position": [count per answer
    character], "by_count": {characters wrong: answers}}. A missing or extra character counts as
    wrong at its position."""
    by_pos, by_count, wrong = [], {}, 0
    for g, e in zip(gen, problems(op, fmt, width, pairs)[1]):
        if g == e:
            continue
        wrong += 1
        bad = [i for i in range(max(len(g), len(e))) if i >= len(g) or i >= len(e) or g[i] != e[i]]
        by_pos += [0] * (max(bad) + 1 - len(by_pos))
        for i in bad:
            by_pos[i] += 1
        by_count[len(bad)] = by_count.get(len(bad), 0) + 1
    return {"wrong": wrong, "by_position": by_pos, "by_count": dict(sorted(by_count.items()))}


def error_table(rs, d):
    """Markdown lines for --errors: one row per answer position, one column per model."""
    rs = [r for r in rs if "errors" in r]
    if not rs:
        return []
    n_pos = max(len(r["errors"]["by_position"]) for r in rs)
    lines = [f"Where the wrong answers at {d} x {d} digits go wrong (% of each model's wrong answers with "
             "a wrong character at that answer position; padrev position i = the digit of 10^i):", ""]
    head = ["position"] + [f"{r['name']} ({r['format']}, {r['errors']['wrong']} wrong)" for r in rs]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join([" ---: "] * len(head)) + "|")
    for i in range(n_pos):
        row = [str(i)]
        for r in rs:
            e = r["errors"]
            c = e["by_position"][i] if i < len(e["by_position"]) else 0
            row.append(f"{100 * c / e['wrong']:.1f}" if e["wrong"] else "–")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for r in rs:
        lines.append(f"{r['name']}: characters wrong per wrong answer -> answers: "
                     + (", ".join(f"{k}: {v}" for k, v in r["errors"]["by_count"].items()) or "none"))
    lines.append("")
    return lines


def write_whole(path, text):
    """Write through a temporary file beside `path`: an interrupted run leaves the old file or none."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def tag(r):
    """Column-title mark of a model read from an exported graph or bundle rather than a checkpoint."""
    return "" if r["kind"] == "pt" else f" [{r['kind']}]"


def cell(c, n, applicable=True):
    if not applicable:
        return "–"
    if n == 0:
        return "n/a"
    return f"{100.0 * c / n:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help=".pt / .onnx files or directories (all *.pt)")
    ap.add_argument("--n", type=int, default=500, help="problems per digit count")
    ap.add_argument("--digits", type=int, default=None, help="evaluate 1..N (default: largest eval_digits per task)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="markdown file")
    ap.add_argument("--json", default=None, help="raw results as JSON")
    ap.add_argument("--ema", action="store_true",
                    help="checkpoints (.pt): evaluate the moving average that train_arith.py --ema keeps beside "
                         "the last weights (what that run evaluated and exported); one without it is skipped")
    ap.add_argument("--errors", type=int, default=None, metavar="D",
                    help="also tabulate where the wrong answers at D x D digits go wrong")
    a = ap.parse_args(argv)
    if a.errors is not None and a.errors < 1:
        ap.error("--errors must be a digit count, 1 or more")
    torch.set_num_threads(a.threads)

    paths = []
    for p in a.models:
        paths += sorted(glob.glob(os.path.join(p, "*.pt"))) if os.path.isdir(p) else [p]
    if not paths:
        sys.exit("no models")
    loaded = []
    for p in paths:
        try:
            loaded.append((p,) + load(p, a.device, a.threads, a.ema))
        except Exception as e:  # a broken/partial file must not stop the batch
            print(f"skip {p}: {type(e).__name__}: {e}", flush=True)
    if not loaded:
        sys.exit("eval_arith: no model could be read")
    tasks = sorted({info["task"] for _, info, _, _ in loaded})
    plan = []  # (path, info, next_fn, context_len, max digits of its task, digit counts it can take)
    for path, info, fn, ctx in loaded:
        nd = a.digits or max(i["eval_digits"] for _, i, _, _ in loaded if i["task"] == info["task"])
        plan.append((path, info, fn, ctx, nd, model_digits(info, nd, ctx)))
    if a.errors is not None and not any(i["task"] != "ctx" and a.errors in ds for _, i, _, _, _, ds in plan):
        sys.exit(f"eval_arith: --errors {a.errors}: no model is evaluated at {a.errors} x {a.errors} digits "
                 "(beyond --digits, or beyond every model's width or positions)")
    results = []
    t_all = time.time()
    for path, info, fn, ctx, nd, digits in plan:
        op = F.OPS.get(info["task"], "+")
        t = time.time()
        if info["task"] == "ctx":
            res = evaluate_context(fn, "heldout", digits, a.n, a.seed, ctx)
        else:
            res, outs = evaluate(fn, op, info["format"], info["width"], digits, a.n, a.seed, ctx, return_outputs=True)
            if a.errors in outs:
                info = dict(info, errors=error_positions(op, info["format"], info["width"], *outs[a.errors]))
        results.append(dict(info, path=path, nd=nd, res={d: list(v) for d, v in res.items()}))
        acc = " ".join(f"{d}:{cell(*res[d])}" for d in digits)
        print(f"{info['name']:28s} ({info['kind']}) {time.time() - t:5.1f}s  {acc}", flush=True)

    lines = [f"Held-out exact match (%), greedy decoding; up to {a.n} problems per digit count (both operands "
             f"with exactly d digits, held-out pairs only, seed {a.seed}); '–' = beyond the model's width/context, "
             "'n/a' = no held-out pair; bold digit counts = beyond max training digits of some model.", ""]
    for task in tasks:
        rs = [r for r in results if r["task"] == task]
        nd = max(r["nd"] for r in rs)
        op = F.OPS.get(task, "+")
        ns = {d: len(F.heldout_pairs(op, d, a.n, a.seed)) for d in range(1, nd + 1)}
        what = "a+b inside sentences of held-out templates" if task == "ctx" else ("a+b" if op == "+" else "a*b")
        lines.append(f"### {task} ({what})")
        lines.append("")
        head = ["digits", "n"] + [f"{r['name']}{tag(r)} ({r['format']}, "
                                  f"train ≤{r['max_digits']}{recipe_note(r)}, seed {r['seed']})" for r in rs]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join([" ---: "] * len(head)) + "|")
        min_train = min(r["max_digits"] for r in rs)
        for d in range(1, nd + 1):
            row = [f"**{d}**" if d > min_train else str(d), str(ns[d])]
            for r in rs:
                v = r["res"].get(d)
                row.append(cell(*v) if v else "–")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines += error_table(rs, a.errors)
        # mean over seeds for groups that differ only by seed
        groups = {}
        for r in rs:
            groups.setdefault((r["format"], r["max_digits"], r["width"], r.get("size"), r["kind"], r["aux"], r["dist"]),
                              []).append(r)
        multi = {k: v for k, v in groups.items() if len(v) > 1}
        if multi:
            lines.append(f"Mean over seeds ({task}):")
            lines.append("")
            head = ["digits"] + [f"{k[0]} train ≤{k[1]}{recipe_note(v[0])} ({len(v)} seeds: "
                                 f"{', '.join(str(r['seed']) for r in v)})" for k, v in multi.items()]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "|".join([" ---: "] * len(head)) + "|")
            for d in range(1, nd + 1):
                row = [str(d)]
                for v in multi.values():
                    accs = [r["res"][d][0] / r["res"][d][1] for r in v if d in r["res"] and r["res"][d][1]]
                    row.append(f"{100 * np.mean(accs):.1f} (min {100 * min(accs):.1f}, max {100 * max(accs):.1f})"
                               if len(accs) == len(v) else "–")
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    text = "\n".join(lines)
    print(text)
    print(f"(evaluation took {time.time() - t_all:.1f}s on {a.device})")
    if a.out:
        write_whole(a.out, text + "\n")
    if a.json:
        write_whole(a.json, json.dumps({"n": a.n, "seed": a.seed, "models": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
