#!/usr/bin/env python3
"""Export a model.py checkpoint to ONNX (opset 17) with an explicit KV cache, and verify it.

Graph contract (L layers, H heads, D = head_dim; symbolic dims `batch`, `seq`, `past`):

  inputs   input_ids                  int64   [batch, seq]         bytes 0..255
           past_key_values.{i}.key    float32 [batch, H, past, D]  i = 0..L-1 (past may be 0)
           past_key_values.{i}.value  float32 [batch, H, past, D]
  outputs  logits                     float32 [batch, seq, 256]    logits[:, t] scores the byte after t
           present.{i}.key            float32 [batch, H, past+seq, D]  = Concat(past, new), keys rotated
           present.{i}.value          float32 [batch, H, past+seq, D]

Positions come from the past length inside the graph: token t of the input is at position
past + t (RoPE angles Cast(Range(past, past+seq)) * inv_freq, then Sin/Cos), and query t sees
cache slots 0..past+t. Feeding a sequence in one call or in chunks with the returned presents
gives the same logits. The model is trained on windows of at most 512 bytes (`context_len`):
keep past + seq <= 512 (slide or re-prefill beyond). All batch rows share one past length.

The graph is written node by node with onnx.helper (no exporter tracing), using only
Gather, Shape, Range, Cast, Unsqueeze, Mul, Add, Div, Sqrt, ReduceMean, Sin, Cos, Concat,
MatMul, Reshape, Transpose, Greater, Where, Softmax, Erf. Masked scores are set to -1e9 (finite).

Checks (onnxruntime vs the PyTorch model of model.py):
  (a) full-sequence logits vs PyTorch on valid text and random bytes (max abs diff)
  (b) a 100-byte text fed 1 token at a time and in chunks of 4 and 16 with the cache vs the
      same text in one call (logits and final presents)
  (c) batch 2 with two different texts (full and chunked) vs each text alone
  (d) greedy generation of 64 bytes with the cache: onnxruntime vs PyTorch, same bytes

Usage:
  models/.venv/bin/python models/gen/export.py --ckpt models/gen/work/target.pt
writes models/gen/work/<name>.onnx, <name>.json (the `arca pack` spec) and <name>-check.json.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
from onnx import TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from kv_onnx import NEG, Graph, OrtModel, chunked, maxdiff  # noqa: E402
from model import build, rope_inv_freq  # noqa: E402
from train import DATA, valid_sample  # noqa: E402


def build_graph(model, name):
    cfg = model.cfg
    L, H, D, d = cfg.n_layer, cfg.n_head, cfg.head_dim, cfg.d_model
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    g = Graph()
    const, node = g.const, g.node

    f32 = lambda x: np.array(x, dtype=np.float32)  # noqa: E731
    i64 = lambda x: np.array(x, dtype=np.int64)  # noqa: E731
    c_one = const("c_one_i64", i64(1))
    c_zero = const("c_zero_i64", i64(0))
    c_eps = const("c_eps", f32(cfg.norm_eps))
    c_neg = const("c_neg", f32(NEG))
    c_scale = const("c_scale", f32(1.0 / np.sqrt(D)))
    c_isq2 = const("c_inv_sqrt2", f32(1.0 / np.sqrt(2.0)))
    c_half = const("c_half", f32(0.5))
    c_1f = const("c_one_f32", f32(1.0))
    c_ax0 = const("c_axes0", i64([0]))
    c_ax1 = const("c_axes1", i64([1]))
    c_heads = const("c_shape_heads", i64([0, 0, H, D]))
    c_model = const("c_shape_model", i64([0, 0, d]))
    inv_freq = const("rope_inv_freq", rope_inv_freq(cfg).numpy().reshape(1, D // 2))
    R = np.zeros((D, D), dtype=np.float32)  # x @ R = rotate_half(x) = cat(-x[h:], x[:h])
    h = D // 2
    for j in range(h):
        R[h + j, j] = -1.0
        R[j, h + j] = 1.0
    c_rot = const("rope_rotate_half", R)
    emb = const("emb.weight", sd["emb.weight"])

    # positions: past .. past+seq-1
    seq = node("Gather", [node("Shape", ["input_ids"]), c_one], axis=0)
    past = node("Gather", [node("Shape", ["past_key_values.0.key"]), const("c_two_i64", i64(2))], axis=0)
    end = node("Add", [past, seq])
    pos = node("Range", [past, end, c_one])                      # [seq]
    kpos = node("Range", [c_zero, end, c_one])                   # [past+seq]
    ang = node("Mul", [node("Unsqueeze", [node("Cast", [pos], to=TensorProto.FLOAT), c_ax1]), inv_freq])
    cs, sn = node("Cos", [ang]), node("Sin", [ang])
    cos = node("Concat", [cs, cs], axis=-1)                      # [seq, D]
    sin = node("Concat", [sn, sn], axis=-1)
    mask = node("Greater", [node("Unsqueeze", [kpos, c_ax0]), node("Unsqueeze", [pos, c_ax1])])  # [seq, past+seq]

    def rms(x, w):
        ms = node("ReduceMean", [node("Mul", [x, x])], axes=[-1], keepdims=1)
        return node("Mul", [node("Div", [x, node("Sqrt", [node("Add", [ms, c_eps])])]), w])

    def lin(x, key):
        return node("MatMul", [x, const(key + ".T", np.ascontiguousarray(sd[key].T))])

    def heads(x):
        return node("Transpose", [node("Reshape", [x, c_heads])], perm=[0, 2, 1, 3])  # [B,H,T,D]

    def rope(x):
        return node("Add", [node("Mul", [x, cos]), node("Mul", [node("MatMul", [x, c_rot]), sin])])

    x = node("Gather", [emb, "input_ids"], axis=0)              # [B,T,d]
    for i in range(L):
        p = f"blocks.{i}."
        hN = rms(x, const(p + "norm1.weight", sd[p + "norm1.weight"]))
        q = rope(heads(lin(hN, p + "wq.weight")))
        k = rope(heads(lin(hN, p + "wk.weight")))
        v = heads(lin(hN, p + "wv.weight"))
        y = g.attention(i, q, k, v, mask, c_scale, c_neg, c_model)
        x = node("Add", [x, lin(y, p + "wo.weight")])
        hN = rms(x, const(p + "norm2.weight", sd[p + "norm2.weight"]))
        a = g.gelu(lin(hN, p + "w1.weight"), c_isq2, c_1f, c_half)
        x = node("Add", [x, lin(a, p + "w2.weight")])
    hN = rms(x, const("norm_f.weight", sd["norm_f.weight"]))
    node("MatMul", [hN, node("Transpose", [emb], perm=[1, 0])], "logits")

    return g.model(name, L, H, D, 256, "arca models/gen/export.py")


def check(model, path, log):
    cfg = model.cfg
    om = OrtModel(path, cfg.n_layer, cfg.n_head, cfg.head_dim)
    res = {}
    vw = valid_sample()
    # (a) full sequences vs torch
    a_ids = np.concatenate([vw[:2, :512].numpy(), np.random.default_rng(7).integers(0, 256, (1, 512))])
    with torch.no_grad():
        t_logits = model(torch.from_numpy(a_ids)).numpy()
    o_logits, _ = om(a_ids, om.empty(3))
    res["a_full_512_vs_torch_max_abs_diff"] = maxdiff(o_logits, t_logits)
    res["a_logit_range"] = [float(t_logits.min()), float(t_logits.max())]
    log(f"(a) 3 x 512 bytes (2 valid windows, 1 random), onnxruntime vs torch: max abs diff "
        f"{res['a_full_512_vs_torch_max_abs_diff']:.2e} (logits in [{t_logits.min():.1f}, {t_logits.max():.1f}])")
    # (b) a 100-byte text, chunks of 1/4/16 vs one call
    text = open(os.path.join(DATA, "valid", sorted(os.listdir(os.path.join(DATA, "valid")))[0]), "rb").read()
    t1 = np.frombuffer(text[20000:20100], dtype=np.uint8).astype(np.int64)[None]
    t2 = np.frombuffer(text[50000:50100], dtype=np.uint8).astype(np.int64)[None]
    full1, pres1 = om(t1, om.empty(1))
    with torch.no_grad():
        res["b_full_100_vs_torch_max_abs_diff"] = maxdiff(full1, model(torch.from_numpy(t1)).numpy())
    for c in (1, 4, 16):
        lg, pres = chunked(om, t1, c)
        res[f"b_chunk{c}_logits_max_abs_diff"] = maxdiff(lg, full1)
        res[f"b_chunk{c}_present_max_abs_diff"] = max(maxdiff(p[j], q[j]) for p, q in zip(pres, pres1) for j in (0, 1))
        log(f"(b) 100 bytes in chunks of {c:2d} with the cache vs one call: logits max abs diff "
            f"{res[f'b_chunk{c}_logits_max_abs_diff']:.2e}, final presents {res[f'b_chunk{c}_present_max_abs_diff']:.2e}")
    # (c) batch 2, different texts
    full2, _ = om(t2, om.empty(1))
    both = np.concatenate([t1, t2])
    fb, _ = om(both, om.empty(2))
    cb, _ = chunked(om, both, 16)
    ref = np.concatenate([full1, full2])
    res["c_batch2_full_max_abs_diff"] = maxdiff(fb, ref)
    res["c_batch2_chunk16_max_abs_diff"] = maxdiff(cb, ref)
    log(f"(c) batch 2 (two texts) vs each alone: one call {res['c_batch2_full_max_abs_diff']:.2e}, "
        f"chunks of 16 {res['c_batch2_chunk16_max_abs_diff']:.2e}")
    # (d) greedy generation with the cache
    prompt = b"The old man looked at the sea and said"
    want = model.generate(prompt, 64, temperature=0)
    lg, past = om(np.array([list(prompt)]), om.empty(1))
    got = []
    for _ in range(64):
        t = int(lg[0, -1].argmax())
        got.append(t)
        lg, past = om(np.array([[t]]), past)
    got = bytes(got)
    res["d_greedy64_identical"] = got == want
    res["d_greedy64_text"] = (prompt + got).decode("utf-8", "replace")
    log(f"(d) greedy 64 bytes, onnxruntime == torch: {got == want}: {(prompt + got)!r}")
    # bits per byte of the 100-byte text (sanity)
    lp = full1[0, :-1] - np.log(np.exp(full1[0, :-1] - full1[0, :-1].max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - full1[0, :-1].max(-1, keepdims=True)
    res["b_text_bpb"] = float(-lp[np.arange(99), t1[0, 1:]].mean() / np.log(2))
    # timing: one token with a 400-byte past, batch 1 (onnxruntime, 1 thread)
    _, past = om(a_ids[:1, :400], om.empty(1))
    t = time.time()
    n = 50
    for _ in range(n):
        om(a_ids[:1, 400:401], past)
    res["ort_ms_per_token_past400"] = round(1000 * (time.time() - t) / n, 3)
    log(f"onnxruntime 1 thread: {res['ort_ms_per_token_past400']} ms per token (batch 1, past 400)")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--name", default=None, help="model name (default: checkpoint file name, prefixed 'gen-')")
    ap.add_argument("--kind", default=None, choices=["target", "draft"], help="default: from the name")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "work"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--distill", default=None, help="manifest `distill` for a draft (default: the checkpoint's mode)")
    ap.add_argument("--data", default=None, help="manifest `training.data` (default: the book training set)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ck = torch.load(args.ckpt, weights_only=False, map_location="cpu")
    model = build(ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    run = os.path.splitext(os.path.basename(args.ckpt))[0]
    name = args.name or f"gen-{run}"
    kind = args.kind or ("draft" if "draft" in name else "target")
    os.makedirs(args.out_dir, exist_ok=True)
    base = os.path.join(args.out_dir, name)
    log = lambda s: print(time.strftime("%H:%M:%S ") + s, flush=True)  # noqa: E731

    m = build_graph(model, name)
    onnx.save(m, base + ".onnx")
    ops = sorted({n.op_type for n in m.graph.node})
    log(f"wrote {base}.onnx ({os.path.getsize(base + '.onnx') / 1e6:.2f} MB, {len(m.graph.node)} nodes, ops {','.join(ops)})")
    res = check(model, base + ".onnx", log)
    ok = (res["a_full_512_vs_torch_max_abs_diff"] < 1e-3 and res["d_greedy64_identical"]
          and all(v < 1e-3 for k, v in res.items() if k.startswith(("b_chunk", "c_batch"))))
    log("checks " + ("passed" if ok else "FAILED") + " (tolerance 1e-3)")

    c = model.cfg
    L = c.n_layer
    hist = ck.get("history", [])
    spec = dict(
        name=name, kind=kind,
        description=(f"Byte-level GPT ({kind} of speculative generation, English prose): {L} pre-RMSNorm blocks, "
                     f"d_model {c.d_model}, {c.n_head} heads of {c.head_dim}, MLP {c.mlp_mult}x GELU, RoPE, "
                     f"tied 256-byte embedding. Explicit KV cache: feed input_ids [batch, seq] with past "
                     f"[batch, {c.n_head}, past, {c.head_dim}] per layer (past may be 0); token t is at position "
                     f"past + t. Context up to {c.context_len} bytes."),
        vocab_size=256, context_len=c.context_len,
        inputs=["input_ids"], outputs=["logits"],
        kv_cache_inputs=[f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")],
        kv_cache_outputs=[f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")],
        parameters=model.num_params(),
        architecture=dict(n_layer=L, n_head=c.n_head, head_dim=c.head_dim, d_model=c.d_model,
                          mlp_mult=c.mlp_mult, positions="rope", rope_base=c.rope_base, norm="rms",
                          norm_eps=c.norm_eps, opset=17),
        training=dict(command="models/.venv/bin/python " + ck.get("cmd", "")[max(0, ck.get("cmd", "").find("models/gen/train.py")):],
                      data=args.data or ("/work/shared/data/train/*.txt (101 files, 60,088,581 bytes); "
                                         "validation: 1 MiB fixed sample of /work/shared/data/valid/"),
                      date=ck.get("date", ""), steps=ck["step"], tokens_seen=ck["tokens"],
                      training_seconds=round(ck["elapsed"]), mode=ck.get("mode", "ce")),
        metrics=dict(valid_bpb=hist[-1]["valid_bpb"] if hist else None,
                     **{k: v for k, v in (hist[-1] if hist else {}).items()
                        if k in ("valid_kl_bits", "valid_top1_agree", "valid_accept_t1")},
                     valid_bytes=1048576,
                     **{"export_check." + k: v for k, v in res.items() if isinstance(v, (int, float))}),
    )
    if spec["metrics"]["valid_bpb"] is None:
        del spec["metrics"]["valid_bpb"]
    mode = ck.get("mode", "ce")
    if kind == "draft" and mode in ("kd", "adaspec"):
        # How the draft was distilled: arca reads `distill` (kd | adaspec) into its statistics.
        spec["distill"] = args.distill or mode
        a = ck.get("args", {})
        spec["training"]["teacher"] = a.get("teacher")
        if mode == "adaspec":
            spec["training"]["reference"] = a.get("ref")
            spec["training"]["select_frac"] = a.get("select_frac")
    with open(base + ".json", "w") as fh:
        json.dump(spec, fh, indent=2)
        fh.write("\n")
    with open(base + "-check.json", "w") as fh:
        json.dump(dict(ckpt=args.ckpt, step=ck["step"], ok=ok, **res), fh, indent=2)
    log(f"wrote {base}.json and {base}-check.json")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
