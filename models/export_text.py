#!/usr/bin/env python3
"""Export a train_text.py checkpoint as the integer-exact ONNX model `text-small` (+ JSON manifest).

Steps:
  1. checkpoint -> integer parameters (int8 embedding/weights, int32 biases, per-channel
     requantization multipliers m and shifts s, 256-entry GELU tables);
  2. offline bounds: every MatMul partial sum < 2^24 in magnitude (f32 carrier is exact in any
     summation order), every int32 intermediate in [-2^31, 2^31), every Div dividend >= 0;
     the script fails if any bound is violated;
  3. ONNX graph built directly with onnx.helper (opset 17, all weights as initializers);
  4. verification: a numpy int64 reference of the integer pipeline and onnxruntime on the exported
     graph must give IDENTICAL int32 logits on several thousand contexts (text, PAD-heavy and random);
  5. integer-model bits per byte (softmax of logits / 2^F) on valid and on the English eval files.

Integer pipeline (per hidden layer; all per output channel j):
    acc  = x @ W                       (int8 x int8, int32 accumulate; f32 carrier: MatMul + Cast)
    idx  = (acc*m + c) / 2^s - d       (int32; c = b*m + 2^(s-1) + 2^30, d = 2^(30-s) - 128;
                                        dividend >= 0 so truncating Div == floor)
         = floor(((acc + b)*m + 2^(s-1)) / 2^s) + 128  =  round((acc + b)*m / 2^s) + 128
    x'   = T[clip(idx, 0, 255)]        (quantized GELU table, values in [-127, 127])
Output layer: logits = (acc*m + c) / 2^s - 2^(30-s)  = round((acc + b)*m / 2^s), natural-log
logits with F fractional bits.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_text as tt  # noqa: E402

EVAL_FILES = ["canterbury/alice29.txt", "canterbury/asyoulik.txt", "canterbury/lcet10.txt",
              "canterbury/plrabn12.txt", "calgary/book1", "calgary/book2"]
I32_MIN, I32_MAX = -(2 ** 31), 2 ** 31 - 1


# ----------------------------------------------------------------------------- integer model

def derive_constants(P):
    """Add the ONNX constants (c, d, p) to each layer and check every bound; raises on violation."""
    F = P["frac_bits"]
    E = P["E"]
    assert E.min() >= -127 and E.max() <= 127
    report = []
    for li, L in enumerate(P["layers"]):
        W, b, m, s = L["W"], L["b"], L["m"], L["s"]
        K = W.shape[0]
        xlo, xhi = L["xlo"], L["xhi"]
        assert W.min() >= -127 and W.max() <= 127
        # (1) f32 carrier exactness: any partial sum of K products |x|<=127, |w|<=127 is < 2^24
        if K * 127 * 127 >= 2 ** 24:
            raise SystemExit(f"layer {li}: K={K} too large for exact f32 accumulation (K*127*127 >= 2^24)")
        xabs = max(abs(xlo), abs(xhi))
        part = int((np.abs(W) * xabs).sum(0).max())
        assert part < 2 ** 24
        # (2) exact interval of acc given x in [xlo, xhi]
        acc_hi = np.maximum(W * xlo, W * xhi).sum(0)
        acc_lo = np.minimum(W * xlo, W * xhi).sum(0)
        assert np.all(m >= 1) and np.all(s >= 0) and np.all(s <= 29)
        half = (np.int64(1) << s) >> 1
        c = b * m + half + (np.int64(1) << 30)
        p = np.int64(1) << s
        last = li == len(P["layers"]) - 1
        d = (np.int64(1) << (30 - s)) - (0 if last else 128)
        # int32 ranges of every intermediate: acc, acc*m, acc*m + c (>= 0), quotient, minus d
        for name, lo, hi in [("acc", acc_lo, acc_hi),
                             ("acc*m", np.minimum(acc_lo * m, acc_hi * m), np.maximum(acc_lo * m, acc_hi * m)),
                             ("acc*m+c", acc_lo * m + c, acc_hi * m + c)]:
            if lo.min() < I32_MIN or hi.max() > I32_MAX:
                raise SystemExit(f"layer {li}: {name} overflows int32: [{lo.min()}, {hi.max()}]")
        if (acc_lo * m + c).min() < 0:
            raise SystemExit(f"layer {li}: negative Div dividend")
        for name, v in [("c", c), ("d", d), ("m", m), ("p", p)]:
            assert v.min() >= I32_MIN and v.max() <= I32_MAX, name
        L.update(c=c, d=d, p=p)
        if not last:
            T = L["table"]
            assert T.shape == (256,) and T.min() >= -127 and T.max() <= 127
        qlo = (acc_lo * m + c) // p - d
        qhi = (acc_hi * m + c) // p - d
        report.append(dict(layer=li, K=K, M=W.shape[1], max_partial_sum=part,
                           max_abs_acc_times_m=int(max(np.abs(acc_lo * m).max(), np.abs(acc_hi * m).max())),
                           m_range=[int(m.min()), int(m.max())], s_range=[int(s.min()), int(s.max())],
                           out_range=[int(qlo.min()), int(qhi.max())]))
    return report


def reference(P, ctx):
    """numpy int64 reference of the integer pipeline. ctx: int64 [B, N] -> int32 logits [B, 256]."""
    x = P["E"][ctx].reshape(ctx.shape[0], -1).astype(np.int64)
    for li, L in enumerate(P["layers"]):
        acc = x @ L["W"]
        assert np.abs(acc).max() < 2 ** 24
        num = acc * L["m"] + L["c"]
        assert num.min() >= 0 and num.max() <= I32_MAX
        q = num // L["p"] - L["d"]
        if "table" in L:
            x = L["table"][np.clip(q, 0, 255)]
        else:
            assert q.min() >= I32_MIN and q.max() <= I32_MAX
            return q.astype(np.int32)


# ----------------------------------------------------------------------------- ONNX graph

def build_onnx(P, int8_matmul, doc):
    N, D = P["n_ctx"], P["d_emb"]
    nodes, inits = [], []
    carrier = np.int8 if int8_matmul else np.float32

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, ins, out, **kw):
        nodes.append(helper.make_node(op, ins, [out], name=out + "_" + op, **kw))
        return out

    init("emb_table", P["E"].astype(carrier))
    init("clip_lo", np.array(0, dtype=np.int32))
    init("clip_hi", np.array(255, dtype=np.int32))
    x = node("Gather", ["emb_table", "context"], "emb", axis=0)
    x = node("Flatten", [x], "x0", axis=1)
    for li, L in enumerate(P["layers"]):
        pre = f"l{li}"
        w = init(f"{pre}_W", L["W"].astype(carrier))
        if int8_matmul:
            acc = node("MatMulInteger", [x, w], f"{pre}_acc")
        else:
            accf = node("MatMul", [x, w], f"{pre}_accf")
            acc = node("Cast", [accf], f"{pre}_acc", to=TensorProto.INT32)
        mm = node("Mul", [acc, init(f"{pre}_m", L["m"].astype(np.int32))], f"{pre}_accm")
        num = node("Add", [mm, init(f"{pre}_c", L["c"].astype(np.int32))], f"{pre}_num")
        quo = node("Div", [num, init(f"{pre}_p", L["p"].astype(np.int32))], f"{pre}_quo")
        if "table" in L:
            idx = node("Sub", [quo, init(f"{pre}_d", L["d"].astype(np.int32))], f"{pre}_idx")
            idx = node("Clip", [idx, "clip_lo", "clip_hi"], f"{pre}_idxc")
            x = node("Gather", [init(f"{pre}_table", L["table"].astype(carrier)), idx], f"{pre}_act", axis=0)
        else:
            node("Sub", [quo, init(f"{pre}_d", L["d"].astype(np.int32))], "logits")
    graph = helper.make_graph(
        nodes, "text_small",
        [helper.make_tensor_value_info("context", TensorProto.INT64, ["batch", N])],
        [helper.make_tensor_value_info("logits", TensorProto.INT32, ["batch", 256])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="arca-models/export_text.py", doc_string=doc)
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


# ----------------------------------------------------------------------------- evaluation

def ort_session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_logits(sess, ctx, bs=8192):
    out = []
    for i in range(0, len(ctx), bs):
        out.append(sess.run(["logits"], {"context": ctx[i:i + bs]})[0])
    return np.concatenate(out)


def bpb_of_logits(logits, targets, F):
    z = logits.astype(np.float64) / (2.0 ** F)
    z -= z.max(1, keepdims=True)
    lse = np.log(np.exp(z).sum(1))
    nll = lse - z[np.arange(len(targets)), targets]
    return nll.sum() / math.log(2)


def file_bpb(sess, data, N, F, limit=0, bs=16384):
    """Bits per byte of the whole file (context = previous N bytes, PAD before the start)."""
    if limit:
        data = data[:limit]
    starts = np.array([0], dtype=np.int64)
    tot = 0.0
    for i in range(0, len(data), bs):
        idx = np.arange(i, min(i + bs, len(data)), dtype=np.int64)
        ctx = tt.make_contexts(data, starts, idx, N)
        lg = sess.run(["logits"], {"context": ctx})[0]
        tot += bpb_of_logits(lg, data[idx].astype(np.int64), F)
    return tot / len(data), len(data)


_W = {}


def _worker_init(path, N, F):
    _W.update(sess=ort_session(path), N=N, F=F)


def _worker_bpb(job):
    path, limit = job
    with open(path, "rb") as fh:
        d = np.frombuffer(fh.read(), dtype=np.uint8)
    return file_bpb(_W["sess"], d, _W["N"], _W["F"], limit)


def verification_contexts(N, n_text=3000, n_pad=1500, n_rand=500, seed=7):
    rng = np.random.default_rng(seed)
    vdata, vstarts, _ = tt.load_corpus(os.path.join(tt.DATA, "valid", "*.txt"))
    idx = rng.integers(0, len(vdata), size=n_text + n_pad)
    ctx = tt.make_contexts(vdata, vstarts, idx, N)
    # PAD-heavy: the oldest k positions are PAD, k = 1..N (k = N: all PAD, the very first byte)
    k = np.concatenate([np.arange(1, N + 1), rng.integers(1, N + 1, size=n_pad - N)])
    pad = ctx[n_text:]
    pad[np.arange(N)[None, :] < k[:, None]] = tt.PAD
    # random bytes (all 257 symbols, binary-looking data)
    rnd = rng.integers(0, 257, size=(n_rand, N)).astype(np.int64)
    # file starts of valid files
    fs = tt.make_contexts(vdata, vstarts, np.concatenate([vstarts + j for j in range(N + 1)]), N)
    return np.concatenate([ctx, rnd, fs])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(tt.WORK, "ckpt.pt"))
    ap.add_argument("--out", default=None, help="default models/text-small.onnx "
                    "(models/work/text-small-int8.onnx with --int8-matmul)")
    ap.add_argument("--int8-matmul", action="store_true",
                    help="emit MatMulInteger on int8 tensors instead of f32-carrier MatMul")
    ap.add_argument("--valid-limit", type=int, default=0,
                    help="bytes per valid file for the bpb report (0 = whole files)")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--name", default="text-small", help="model name in the manifest")
    ap.add_argument("--codec", default=None,
                    help="the codec streams made with this model use by default (text-nn for the "
                         "models made for microcontrollers); stored as manifest provenance `codec`")
    ap.add_argument("--jobs", type=int, default=1, help="parallel onnxruntime workers (1 thread each) for the bpb report")
    ap.add_argument("--tract-check", default=os.path.join(tt.WORK, "tract_target", "debug", "tractcheck"),
                    help="tractcheck binary (models/work/tractcheck, a dev build of tract-onnx 0.23.9 with "
                         "overflow checks); if present, tract's logits must equal the reference too")
    args = ap.parse_args()
    out = args.out or (os.path.join(tt.WORK, "text-small-int8.onnx") if args.int8_matmul
                       else os.path.join(HERE, "text-small.onnx"))
    t0 = time.time()

    import torch
    ck = torch.load(args.ckpt, weights_only=False, map_location="cpu")
    cfg = ck["config"]
    model = tt.TextMLP(cfg["n_ctx"], cfg["d_emb"], cfg["hidden"], cfg["frac_bits"])
    model.load_state_dict(ck["model"])
    model.eval()
    P = model.integer_params()
    N, F = P["n_ctx"], P["frac_bits"]
    report = derive_constants(P)
    for r in report:
        print("bounds:", json.dumps(r))
    nparams = int(P["E"].size + sum(L["W"].size + L["b"].size for L in P["layers"]))
    arch = (f"byte MLP: embedding 257x{cfg['d_emb']} (int8) -> concat {N} positions ({N * cfg['d_emb']}) -> "
            + " -> ".join(f"{h} (int8 GELU table)" for h in cfg["hidden"]) + " -> 256 logits")
    doc = (f"arca {args.name}: {arch}; integer-exact; input context int64 [batch,{N}] "
           f"(oldest first, PAD=256); output logits int32 [batch,256], natural-log with {F} fractional bits")
    m = build_onnx(P, args.int8_matmul, doc)
    onnx.save_model(m, out, save_as_external_data=False)
    size = os.path.getsize(out)
    print(f"wrote {out} ({size} bytes), ops: {sorted(set(n.op_type for n in m.graph.node))}")
    assert size < 20 * 2 ** 20

    # ---- verification: numpy int64 reference vs onnxruntime, bit-identical
    sess = ort_session(out)
    ctx = verification_contexts(N)
    ref = reference(P, ctx)
    got = ort_logits(sess, ctx)
    assert got.dtype == np.int32 and got.shape == (len(ctx), 256)
    nbad = int((ref != got).any(1).sum())
    print(f"verify: {len(ctx)} contexts, reference vs onnxruntime rows differing: {nbad}")
    if nbad:
        raise SystemExit("MISMATCH between numpy reference and onnxruntime")
    # batch-shape independence (batch 1, 2, 3 and odd sizes)
    for bsz in (1, 2, 3, 17):
        g = np.concatenate([sess.run(["logits"], {"context": ctx[i:i + bsz]})[0] for i in range(0, 68, bsz)])
        assert np.array_equal(g, ref[:len(g)]), f"batch {bsz} differs"
    if args.tract_check and os.path.exists(args.tract_check):
        import subprocess
        cpath, opath = os.path.join(tt.WORK, "verify_ctx.bin"), os.path.join(tt.WORK, "verify_tract.bin")
        ctx.astype("<i8").tofile(cpath)
        for bsz in (1000, 7):
            subprocess.run([args.tract_check, out, cpath, str(N), opath, str(bsz)], check=True)
            tr = np.fromfile(opath, dtype="<i4").reshape(-1, 256)
            nbad = int((tr != ref).any(1).sum())
            print(f"verify: tract-onnx (batch chunks of {bsz}) vs reference rows differing: {nbad}")
            if nbad:
                raise SystemExit("MISMATCH between numpy reference and tract")
    else:
        print("verify: tract check skipped (no tractcheck binary)")
    # informative: QAT torch forward vs integer logits
    with torch.no_grad():
        qt = model(torch.from_numpy(ctx[:2000]), qat=True).numpy() * 2.0 ** F
    diff = np.abs(qt - ref[:2000])
    print(f"torch QAT vs integer logits (units of 2^-F): max |diff| {diff.max():.1f}, "
          f"fraction equal {(diff < 0.5).mean():.4f}")

    metrics = {}
    if not args.skip_eval:
        vdir = os.path.join(tt.DATA, "valid")
        jobs = [(os.path.join(vdir, f), args.valid_limit) for f in sorted(os.listdir(vdir))]
        jobs += [(os.path.join(tt.DATA, "eval", f), 0) for f in EVAL_FILES]
        from multiprocessing import get_context
        with get_context("spawn").Pool(args.jobs, initializer=_worker_init, initargs=(out, N, F)) as pool:
            res = pool.map(_worker_bpb, jobs, chunksize=1)
        nv = len(jobs) - len(EVAL_FILES)
        tot = sum(b * n for b, n in res[:nv])
        nb = sum(n for _, n in res[:nv])
        metrics["valid_bpb_int"] = round(tot / nb, 4)
        metrics["valid_bytes"] = nb
        print(f"valid: {nb} bytes, {tot / nb:.4f} bpb ({time.time() - t0:.0f}s)")
        for (path, _), (b, n) in zip(jobs[:nv], res[:nv]):
            print(f"  valid {os.path.basename(path)}: {n} bytes, {b:.4f} bpb")
        for f, (b, n) in zip(EVAL_FILES, res[nv:]):
            metrics[os.path.basename(f) + "_bpb_int"] = round(b, 4)
            print(f"eval {f}: {n} bytes, {b:.4f} bpb")

    a = ck.get("args", {})
    manifest = {
        "name": args.name,
        "kind": "compressor",
        "description": "Byte-level next-byte predictor for neural text compression ("
                       + ("English books and device text: source code, C headers, man pages, "
                          "changelogs, JSON" if a.get("mixed_frac") else "English") + "). " + arch
                       + ". Integer-exact: identical int32 logits on any CPU/runtime.",
        "vocab_size": 256,
        "context_len": N,
        "pad_id": tt.PAD,
        "logit_frac_bits": F,
        "quantization": "int-exact-int8" if args.int8_matmul else "int-exact-f32carrier",
        "inputs": ["context"],
        "outputs": ["logits"],
        "parameters": nparams,
        "training": {
            "command": "python models/train_text.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in a.items()
                if k in ("n_ctx", "d_emb", "hidden", "frac_bits", "batch", "lr", "time_budget", "float_steps",
                         "lf_frac", "mixed_frac", "mixed_crlf_frac") and v),
            "data": "/work/shared/data/train/*.txt (101 files, 58 MB; selection on valid/)"
                    + (f"; {a['lf_frac']:.0%} of "
                       + ("the book " if a.get("mixed_frac") else "")
                       + "positions from a copy with CR removed"
                       if a.get("lf_frac") else "")
                    + (f"; {a['mixed_frac']:.0%} of positions from /work/shared/data/mixed/train "
                       f"(5 files, 20 MB: Python, C headers, man pages, changelogs, JSON"
                       + (f", {a['mixed_crlf_frac']:.0%} of them with CRLF line ends"
                          if a.get("mixed_crlf_frac") else "") + ")"
                       if a.get("mixed_frac") else ""),
            "steps": int(ck["step"]),
            "tokens_seen": int(ck["tokens"]),
            "date": ck.get("date", time.strftime("%Y-%m-%d %H:%M:%S")),
        },
        "metrics": metrics,
    }
    if args.codec:
        manifest["codec"] = args.codec
    if args.valid_limit:
        manifest["metrics"]["valid_note"] = f"first {args.valid_limit} bytes of each valid file"
    jpath = os.path.splitext(out)[0] + ".json"
    with open(jpath, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    print(f"wrote {jpath}; total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
