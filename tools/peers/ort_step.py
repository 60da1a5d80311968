#!/usr/bin/env python3
"""One model step of text-small through onnxruntime, the peer of the tract bench.

Runs models/text-small.onnx with onnxruntime on exactly the contexts of
runtime/core/benches/model_step.rs: for each of 256 consecutive positions from the middle of
tests/data/canterbury/alice29.txt (len // 2), the 32 bytes before it, PAD (256) where that runs
before the start of the file; batch b uses the first b positions. Input `context` is int64
[batch, 32], output `logits` int32 [batch, 256] (fixed point, logit_frac_bits = 10): the same
tensors tract sees and returns, so the logits compare exactly.

Two sessions: one thread (intra_op_num_threads = inter_op_num_threads = 1, sequential
execution) and onnxruntime's defaults (intra-op threads = physical cores). Per batch size: a
warm-up, then timeit-style repeats of N calls each; the median per call is reported. One JSON
object per (session, batch) goes to stdout.

    python tools/peers/ort_step.py [--check DIR] [--report docs/bench/peers.md --criterion DIR]

--check DIR compares against what the Rust bench wrote with ARCA_PEERS_DUMP=DIR: the contexts
must be identical, and onnxruntime's logits are compared with tract's. --report writes the
markdown comparison with the criterion results (see tools/peers/run.sh).

Needs numpy and onnxruntime (pip install onnxruntime); models/.venv has both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import timeit
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
BATCHES = (1, 16, 64, 256)
CONTEXT_LEN = 32
PAD = 256


def contexts(text: bytes, n: int = CONTEXT_LEN, rows: int = max(BATCHES)) -> np.ndarray:
    """int64 [rows, n]: the n bytes before each of `rows` positions from len // 2, PAD before 0."""
    start = len(text) // 2
    out = np.full((rows, n), PAD, dtype=np.int64)
    for r, pos in enumerate(range(start, start + rows)):
        for i in range(n):
            at = pos - n + i
            if at >= 0:
                out[r, i] = text[at]
    return out


def session(model: Path, single_thread: bool) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if single_thread:
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def time_call(fn, target_s: float, repeats: int) -> tuple[float, int]:
    """Median seconds per call over `repeats` runs of `number` calls (each run ~target_s)."""
    for _ in range(3):  # warm-up
        fn()
    t = timeit.Timer(fn)
    number = 1
    while True:  # like Timer.autorange, to a shorter target
        if t.timeit(number) >= target_s:
            break
        number *= 2
    runs = t.repeat(repeat=repeats, number=number)
    return statistics.median(runs) / number, number


def check(sess: ort.InferenceSession, ctx: np.ndarray, dump: Path) -> dict:
    theirs = np.fromfile(dump / "contexts.u16", dtype="<u2").reshape(ctx.shape)
    if not np.array_equal(theirs.astype(np.int64), ctx):
        raise SystemExit(f"contexts differ from the Rust bench's ({dump / 'contexts.u16'})")
    tract = np.fromfile(dump / "tract_logits.i32", dtype="<i4").reshape(len(ctx), 256)
    (ours,) = sess.run(["logits"], {"context": ctx})
    if ours.dtype != np.int32:
        raise SystemExit(f"onnxruntime returned {ours.dtype}, expected int32")
    diff = np.abs(ours.astype(np.int64) - tract.astype(np.int64))
    return {
        "rows": int(len(ctx)),
        "logits": int(diff.size),
        "identical": int((diff == 0).sum()),
        "max_abs_diff": int(diff.max()),
        "max_abs_diff_nats": float(diff.max()) / 1024.0,
        "argmax_agree": int((ours.argmax(1) == tract.argmax(1)).sum()),
    }


def criterion_median_ns(crit: Path, engine: str, batch: int) -> float:
    path = crit / "model_step" / engine / str(batch) / "new" / "estimates.json"
    est = json.loads(path.read_text())
    return float(est["median"]["point_estimate"])


def fmt_us(ns: float) -> str:
    us = ns / 1e3
    return f"{us:.1f}" if us >= 10 else f"{us:.2f}"


def report(path: Path, crit: Path, results: list[dict], agree: dict | None, meta: dict) -> None:
    ort_ns = {(r["session"], r["batch"]): r["median_s"] * 1e9 for r in results}
    rows = []
    for b in BATCHES:
        t, n = criterion_median_ns(crit, "tract", b), criterion_median_ns(crit, "native", b)
        o1, od = ort_ns[("ort-1thread", b)], ort_ns[("ort-default", b)]
        rows.append((b, t, n, o1, od))
    versions = (
        f"onnxruntime {ort.__version__} (CPUExecutionProvider, graph optimizations at the default"
        f" ORT_ENABLE_ALL), numpy {np.__version__}, Python {sys.version.split()[0]}"
    )
    lines = [
        "# Peers: one model step, tract vs onnxruntime",
        "",
        "text-small (`models/text-small.onnx`, the same graph as `models/text-small.arcm`), one",
        "call of the model on a batch of contexts. Same inputs for every engine: the 32 bytes",
        "before each of 256 consecutive positions from the middle of",
        "`tests/data/canterbury/alice29.txt` (PAD = 256 before the start of the file; batch b uses",
        "the first b positions).",
        "",
        f"- Machine: {meta['cpu']}, {meta['cpus']} logical CPUs, shared with other jobs (load"
        f" average {meta['load_before']} before the bench, {meta['load_after']} after).",
        f"- Date: {meta['date']}; tree `{meta['tree']}`.",
        f"- Command: `{meta['command']}`, which runs",
        *[f"  - `{step}`" for step in meta["steps"]],
        f"- {meta['rust']} (bench profile = release); {versions}.",
        "",
        "tract and native: criterion median of `TextModel::logits` (`cargo bench -p arca-runtime",
        "--bench model_step`), single-threaded: the call runs on the calling thread (tract's",
        "default CPU plan starts no threads, nor does the native engine). The Rust call includes",
        "checking the contexts and, for tract, widening them from u16 to the graph's int64",
        "tensor. onnxruntime: `InferenceSession.run` on a prebuilt",
        "int64 array, median over timeit repeats, with one thread (intra = inter = 1, sequential)",
        "and with the default session threads (intra-op = physical cores;",
        f"{meta['cpus']} logical CPUs here). The ratio tract / onnxruntime is from the same run;",
        "above 1 means tract is slower.",
        "",
        "## Time per call (µs)",
        "",
        "| batch | tract | native | onnxruntime 1 thread | onnxruntime default threads "
        "| tract / ort 1 thread | tract / ort default | native / ort 1 thread |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b, t, n, o1, od in rows:
        lines.append(
            f"| {b} | {fmt_us(t)} | {fmt_us(n)} | {fmt_us(o1)} | {fmt_us(od)} "
            f"| {t / o1:.2f} | {t / od:.2f} | {n / o1:.2f} |"
        )
    lines += [
        "",
        "## Time per row (µs per context)",
        "",
        "| batch | tract | native | onnxruntime 1 thread | onnxruntime default threads |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for b, t, n, o1, od in rows:
        cells = " | ".join(fmt_us(v / b) for v in (t, n, o1, od))
        lines.append(f"| {b} | {cells} |")
    lines += ["", "## Same logits", ""]
    if agree is None:
        lines.append("Not checked in this run (no `--check`).")
    else:
        lines.append(
            f"onnxruntime vs tract on all {agree['rows']} contexts: {agree['identical']} of "
            f"{agree['logits']} int32 logits identical, largest difference {agree['max_abs_diff']} "
            f"(= {agree['max_abs_diff_nats']:.4f} in logit units, 10 fraction bits), argmax equal "
            f"on {agree['argmax_agree']} of {agree['rows']} rows. tract and native are checked "
            "bit-identical by the bench before it times anything."
        )
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models/text-small.onnx")
    ap.add_argument("--text", type=Path, default=ROOT / "tests/data/canterbury/alice29.txt")
    ap.add_argument("--check", type=Path, metavar="DIR", help="the Rust bench's ARCA_PEERS_DUMP")
    ap.add_argument("--target-s", type=float, default=0.05, help="seconds per timeit repeat")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--report", type=Path, help="write the markdown comparison here")
    ap.add_argument("--criterion", type=Path, default=ROOT / "target/criterion")
    ap.add_argument("--meta", type=Path, help="JSON: cpu, cpus, date, command, load_before")
    args = ap.parse_args()

    ctx = contexts(args.text.read_bytes())
    sessions = {"ort-1thread": session(args.model, True), "ort-default": session(args.model, False)}
    inp = sessions["ort-1thread"].get_inputs()
    if [(i.name, i.type) for i in inp] != [("context", "tensor(int64)")]:
        raise SystemExit(f"unexpected graph inputs {[(i.name, i.type, i.shape) for i in inp]}")

    agree = None
    if args.check:
        agree = check(sessions["ort-1thread"], ctx, args.check)
        print(json.dumps({"check": agree}), flush=True)
        if agree["identical"] != agree["logits"]:
            print("warning: onnxruntime and tract logits differ", file=sys.stderr)

    default_threads = f"default ({os.cpu_count()} logical CPUs)"
    results = []
    for name, sess in sessions.items():
        for b in BATCHES:
            feed = {"context": np.ascontiguousarray(ctx[:b])}
            call = lambda: sess.run(["logits"], feed)  # noqa: E731
            per_call, number = time_call(call, args.target_s, args.repeats)
            r = {
                "session": name,
                "batch": b,
                "median_s": per_call,
                "us_per_call": per_call * 1e6,
                "us_per_row": per_call * 1e6 / b,
                "calls_per_repeat": number,
                "repeats": args.repeats,
                "intra_op_num_threads": 1 if name == "ort-1thread" else default_threads,
            }
            results.append(r)
            print(json.dumps(r), flush=True)

    if args.report:
        meta = json.loads(args.meta.read_text()) if args.meta else {}
        meta.setdefault("load_after", Path("/proc/loadavg").read_text().split()[0])
        for k in ("cpu", "cpus", "date", "command", "load_before", "tree", "rust"):
            meta.setdefault(k, "?")
        meta.setdefault("steps", [])
        report(args.report, args.criterion, results, agree, meta)


if __name__ == "__main__":
    main()
