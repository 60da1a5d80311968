#!/usr/bin/env python3
"""Export an ArithTransformer to ONNX (opset 17, IR 8) with an explicit KV cache, verify it in
onnxruntime and write the `arca pack` spec (speculative generation, issue #7).

Source: a distill.py checkpoint (--ckpt, a draft) or an .arcm bundle read back with arcm.py
(--arcm, the target arith-add-padrev).

Graph contract (L layers, H heads, D = head_dim = d_model / H; symbolic `batch`, `seq`, `past`):

  inputs   input_ids                  int64   [batch, seq]            ids of formats.VOCAB
           past_key_values.{i}.key    float32 [batch, H, past, D]     i = 0..L-1 (past may be 0)
           past_key_values.{i}.value  float32 [batch, H, past, D]
  outputs  logits                     float32 [batch, seq, 16]        logits[:, t] scores the token after t
           present.{i}.key            float32 [batch, H, past+seq, D] = Concat(past, new) on axis 2
           present.{i}.value          float32 [batch, H, past+seq, D]

Token t of the input is at position past + t: x = Gather(emb, ids) + Gather(pos_emb,
Range(past, past+seq)); keep past + seq <= context_len (34). Query at position p sees keys
0..p (masked scores set to -1e9 with Where), q scaled by 1/sqrt(D), Softmax; LayerNormalization
(axis -1, eps 1e-5); exact GELU 0.5*a*(1+erf(a/sqrt2)); untied head with bias.

Initializers (all float32, matrices [in][out] = torch weight transposed, name ending `.T`):
  emb.weight [16,d]; pos_emb.weight [context_len,d]; per block i: blocks.{i}.norm1.weight/.bias,
  blocks.{i}.wq/wk/wv.weight.T [d,d] (split of qkv) + .bias [d], blocks.{i}.wo.weight.T + bias,
  blocks.{i}.norm2.weight/.bias, blocks.{i}.w1.weight.T [d,4d] + bias, blocks.{i}.w2.weight.T
  [4d,d] + bias; norm_f.weight/.bias; head.weight.T [d,16], head.bias [16]. Other initializers
  are small constants named c_*.

Checks (onnxruntime, 1 thread, vs the torch model), saved to NAME-check.json:
  (a) full-sequence logits on random ids and on real held-out problem sequences
  (b) a held-out sequence fed 1 token at a time and in chunks of 4 with the cache vs one call
      (logits and final presents)
  (c) batch 2 (two different problems, one call and chunks of 4) vs each alone
  (d) greedy cached decoding of 200 held-out problems (arith_model.mixed_heldout) vs torch's
      greedy output (arith_model.greedy_decode, full recompute), exact match

Usage:
  models/.venv/bin/python models/arith/gen_export.py --arcm models/arith/trained/arith-add-padrev.arcm \\
      --name arith-add-padrev-target
  models/.venv/bin/python models/arith/gen_export.py --ckpt models/work/arith-gen/draft-kd.pt \\
      --name arith-add-padrev-draft-kd
writes models/work/arith-gen/NAME.onnx, NAME-check.json and models/arith/trained/NAME.json (the spec).
"""
import argparse
import copy
import datetime
import json
import os
import shlex
import sys
import time

import numpy as np
import onnx
import torch
from onnx import TensorProto, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import formats as F  # noqa: E402
from kv_onnx import NEG, Graph, OrtModel, chunked, maxdiff, present_diff  # noqa: E402
from arith_model import (ArithTransformer, evaluate, greedy_decode, mixed_heldout, n_params,  # noqa: E402
                         problems, torch_next_fn)

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(ROOT, "models", "work", "arith-gen")
TRAINED = os.path.join(HERE, "trained")
SOURCE = os.path.join(TRAINED, "arith-add-padrev.arcm")
EPS = 1e-5


def weights(model):
    """The contract's initializers (name -> float32 array) from an ArithTransformer."""
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    d = model.cfg["d_model"]
    T = lambda a: np.ascontiguousarray(a.T)  # noqa: E731
    w = {"emb.weight": sd["tok.weight"], "pos_emb.weight": sd["pos.weight"]}
    for i in range(model.cfg["layers"]):
        s, p = f"blocks.{i}.", f"blocks.{i}."
        qkv_w, qkv_b = sd[s + "qkv.weight"], sd[s + "qkv.bias"]
        w[p + "norm1.weight"], w[p + "norm1.bias"] = sd[s + "ln1.weight"], sd[s + "ln1.bias"]
        for j, nm in enumerate(("wq", "wk", "wv")):
            w[p + nm + ".weight.T"] = T(qkv_w[j * d:(j + 1) * d])
            w[p + nm + ".bias"] = np.ascontiguousarray(qkv_b[j * d:(j + 1) * d])
        w[p + "wo.weight.T"], w[p + "wo.bias"] = T(sd[s + "proj.weight"]), sd[s + "proj.bias"]
        w[p + "norm2.weight"], w[p + "norm2.bias"] = sd[s + "ln2.weight"], sd[s + "ln2.bias"]
        w[p + "w1.weight.T"], w[p + "w1.bias"] = T(sd[s + "fc1.weight"]), sd[s + "fc1.bias"]
        w[p + "w2.weight.T"], w[p + "w2.bias"] = T(sd[s + "fc2.weight"]), sd[s + "fc2.bias"]
    w["norm_f.weight"], w["norm_f.bias"] = sd["ln_f.weight"], sd["ln_f.bias"]
    w["head.weight.T"], w["head.bias"] = T(sd["head.weight"]), sd["head.bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in w.items()}


def expected_shapes(cfg):
    d, V, C = cfg["d_model"], cfg.get("vocab", F.VOCAB_SIZE), cfg["context_len"]
    s = {"emb.weight": (V, d), "pos_emb.weight": (C, d), "norm_f.weight": (d,), "norm_f.bias": (d,),
         "head.weight.T": (d, V), "head.bias": (V,)}
    for i in range(cfg["layers"]):
        p = f"blocks.{i}."
        for nm in ("norm1", "norm2"):
            s[p + nm + ".weight"] = s[p + nm + ".bias"] = (d,)
        for nm in ("wq", "wk", "wv", "wo"):
            s[p + nm + ".weight.T"], s[p + nm + ".bias"] = (d, d), (d,)
        s[p + "w1.weight.T"], s[p + "w1.bias"] = (d, 4 * d), (4 * d,)
        s[p + "w2.weight.T"], s[p + "w2.bias"] = (4 * d, d), (d,)
    return s


def build_graph(model, name):
    cfg = model.cfg
    L, H, d = cfg["layers"], cfg["heads"], cfg["d_model"]
    D = d // H
    V = cfg.get("vocab", F.VOCAB_SIZE)
    W = weights(model)
    g = Graph()
    const, node = g.const, g.node

    f32 = lambda x: np.array(x, dtype=np.float32)  # noqa: E731
    i64 = lambda x: np.array(x, dtype=np.int64)  # noqa: E731
    for k, v in W.items():
        const(k, v)
    c_one = const("c_one_i64", i64(1))
    c_zero = const("c_zero_i64", i64(0))
    c_two = const("c_two_i64", i64(2))
    c_neg = const("c_neg", f32(NEG))
    c_scale = const("c_scale", f32(1.0 / np.sqrt(D)))
    c_isq2 = const("c_inv_sqrt2", f32(1.0 / np.sqrt(2.0)))
    c_half = const("c_half", f32(0.5))
    c_1f = const("c_one_f32", f32(1.0))
    c_ax0 = const("c_axes0", i64([0]))
    c_ax1 = const("c_axes1", i64([1]))
    c_heads = const("c_shape_heads", i64([0, 0, H, D]))
    c_model = const("c_shape_model", i64([0, 0, d]))

    # positions: past .. past+seq-1; keys 0 .. past+seq-1
    seq = node("Gather", [node("Shape", ["input_ids"]), c_one], axis=0)
    past = node("Gather", [node("Shape", ["past_key_values.0.key"]), c_two], axis=0)
    end = node("Add", [past, seq])
    pos = node("Range", [past, end, c_one])                      # [seq]
    kpos = node("Range", [c_zero, end, c_one])                   # [past+seq]
    mask = node("Greater", [node("Unsqueeze", [kpos, c_ax0]), node("Unsqueeze", [pos, c_ax1])])  # [seq, past+seq]

    def ln(x, key):
        return node("LayerNormalization", [x, key + ".weight", key + ".bias"], axis=-1, epsilon=EPS)

    def lin(x, key):
        return node("Add", [node("MatMul", [x, key + ".weight.T"]), key + ".bias"])

    def heads(x):
        return node("Transpose", [node("Reshape", [x, c_heads])], perm=[0, 2, 1, 3])  # [B,H,T,D]

    x = node("Add", [node("Gather", ["emb.weight", "input_ids"], axis=0),        # [B,T,d]
                     node("Gather", ["pos_emb.weight", pos], axis=0)])          # [T,d]
    for i in range(L):
        p = f"blocks.{i}."
        h = ln(x, p + "norm1")
        q = heads(lin(h, p + "wq"))
        k = heads(lin(h, p + "wk"))
        v = heads(lin(h, p + "wv"))
        y = g.attention(i, q, k, v, mask, c_scale, c_neg, c_model)
        x = node("Add", [x, lin(y, p + "wo")])
        h = ln(x, p + "norm2")
        a = g.gelu(lin(h, p + "w1"), c_isq2, c_1f, c_half)
        x = node("Add", [x, lin(a, p + "w2")])
    h = ln(x, "norm_f")
    node("Add", [node("MatMul", [h, "head.weight.T"]), "head.bias"], "logits")

    m = g.model(name, L, H, D, V, "arca models/arith/gen_export.py")
    # the contract's initializers: each exactly once, exact name, shape and dtype
    names = [t.name for t in m.graph.initializer]
    assert len(names) == len(set(names)), "duplicated initializer names"
    got = {t.name: t for t in m.graph.initializer}
    for k, shp in expected_shapes(cfg).items():
        assert k in got, f"initializer {k} missing"
        assert tuple(got[k].dims) == shp and got[k].data_type == TensorProto.FLOAT, (k, got[k].dims, shp)
        assert np.array_equal(numpy_helper.to_array(got[k]), W[k]), k
    extra = [k for k in names if k not in W and not k.startswith("c_")]
    assert not extra, extra
    return m


def seqs_of(pairs):
    prompts, expected = problems("+", "padrev", 10, pairs)
    return np.array([p + e for p, e in zip(prompts, expected)], dtype=np.int64)


def cached_greedy(om, prompts, max_new, ctx):
    """Greedy decoding with the KV cache: prefill the (equal-length) prompts in one call, then one
    token per call for the whole batch; rows are cut at their first END."""
    ids = np.array(prompts, dtype=np.int64)
    lg, past = om(ids, om.empty(len(prompts)))
    gen = [[] for _ in prompts]
    done = np.zeros(len(prompts), dtype=bool)
    n = ids.shape[1]
    for step in range(max_new):
        nxt = lg[:, -1].argmax(-1).astype(np.int64)
        for j in np.nonzero(~done)[0]:
            gen[j].append(int(nxt[j]))
        done |= nxt == F.END
        n += 1
        if done.all() or step == max_new - 1 or n >= ctx:
            break
        lg, past = om(nxt[:, None], past)
    return gen


def check(model, path, log):
    cfg = model.cfg
    L, H = cfg["layers"], cfg["heads"]
    D = cfg["d_model"] // H
    ctx = cfg["context_len"]
    om = OrtModel(path, L, H, D)
    res = {}
    tl = lambda ids: model(torch.from_numpy(np.asarray(ids))).numpy()  # noqa: E731
    # (a) full sequences: random ids (several shapes) and held-out problem sequences (34 tokens)
    g = np.random.default_rng(7)
    da = 0.0
    with torch.no_grad():
        for B, T in ((3, ctx), (2, 5), (1, 1), (4, 17)):
            ids = g.integers(0, F.VOCAB_SIZE, (B, T))
            da = max(da, maxdiff(om(ids, om.empty(B))[0], tl(ids)))
        res["a_random_vs_torch_max_abs_diff"] = da
        real = seqs_of(mixed_heldout("+", "padrev", 10, 10, 16, 5))
        t_real = tl(real)
        res["a_heldout16_vs_torch_max_abs_diff"] = maxdiff(om(real, om.empty(len(real)))[0], t_real)
    res["a_logit_range"] = [float(t_real.min()), float(t_real.max())]
    log(f"(a) full sequences, onnxruntime vs torch: random ids max abs diff {da:.2e}; 16 held-out problem "
        f"sequences ({real.shape[1]} tokens) {res['a_heldout16_vs_torch_max_abs_diff']:.2e} "
        f"(logits in [{t_real.min():.1f}, {t_real.max():.1f}])")
    # (b) one held-out sequence: 1 token at a time and chunks of 4 vs one call
    t1, t2 = real[:1], real[1:2]
    full1, pres1 = om(t1, om.empty(1))
    for c in (1, 4):
        lg, pres = chunked(om, t1, c)
        res[f"b_chunk{c}_logits_max_abs_diff"] = maxdiff(lg, full1)
        res[f"b_chunk{c}_present_max_abs_diff"] = present_diff(pres, pres1)
        log(f"(b) {t1.shape[1]} tokens in chunks of {c} with the cache vs one call: logits max abs diff "
            f"{res[f'b_chunk{c}_logits_max_abs_diff']:.2e}, final presents {res[f'b_chunk{c}_present_max_abs_diff']:.2e}")
    # (c) batch 2, two different problems, vs each alone
    full2, pres2 = om(t2, om.empty(1))
    both = np.concatenate([t1, t2])
    fb, pb = om(both, om.empty(2))
    cb, pc = chunked(om, both, 4)
    ref = np.concatenate([full1, full2])
    refp = [(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])) for a, b in zip(pres1, pres2)]
    res["c_batch2_full_max_abs_diff"] = max(maxdiff(fb, ref), present_diff(pb, refp))
    res["c_batch2_chunk4_max_abs_diff"] = max(maxdiff(cb, ref), present_diff(pc, refp))
    log(f"(c) batch 2 vs each alone (logits and presents): one call {res['c_batch2_full_max_abs_diff']:.2e}, "
        f"chunks of 4 {res['c_batch2_chunk4_max_abs_diff']:.2e}")
    # (d) greedy cached decoding of 200 held-out problems vs torch greedy
    pairs = mixed_heldout("+", "padrev", 10, 10, 200, 0)
    prompts, expected = problems("+", "padrev", 10, pairs)
    max_new = max(len(e) for e in expected)
    t = time.time()
    got = cached_greedy(om, prompts, max_new, ctx)
    t_ort = time.time() - t
    want = greedy_decode(torch_next_fn(model, "cpu"), prompts, max_new, ctx)
    got1 = [cached_greedy(om, [p], max_new, ctx)[0] for p in prompts[:20]]  # batch 1 too
    res["d_greedy_n"] = len(pairs)
    res["d_greedy_identical"] = sum(a == b for a, b in zip(got, want)) / len(pairs)
    res["d_greedy_batch1_identical_20"] = sum(a == b for a, b in zip(got1, want[:20])) / 20
    res["d_greedy_exact_match_ort"] = sum(a == e for a, e in zip(got, expected)) / len(pairs)
    res["d_greedy_exact_match_torch"] = sum(a == e for a, e in zip(want, expected)) / len(pairs)
    res["d_ort_ms_per_problem_batch200"] = round(1000 * t_ort / len(pairs), 3)
    log(f"(d) greedy cached decoding of {len(pairs)} held-out problems (batch {len(pairs)}): identical to torch "
        f"{100 * res['d_greedy_identical']:.1f}% (batch 1, first 20: {100 * res['d_greedy_batch1_identical_20']:.0f}%); "
        f"exact match onnxruntime {100 * res['d_greedy_exact_match_ort']:.1f}%, torch "
        f"{100 * res['d_greedy_exact_match_torch']:.1f}%")
    # timing: one token with a 22-token past, batch 1
    _, past = om(real[:1, :22], om.empty(1))
    t = time.time()
    for _ in range(200):
        om(real[:1, 22:23], past)
    res["ort_ms_per_token_past22"] = round(1000 * (time.time() - t) / 200, 4)
    log(f"onnxruntime 1 thread: {res['ort_ms_per_token_past22']} ms per token (batch 1, past 22)")
    ok = (max(v for k, v in res.items() if k[:2] in ("a_", "b_", "c_") and isinstance(v, float)) < 1e-4
          and res["d_greedy_identical"] == 1.0 and res["d_greedy_batch1_identical_20"] == 1.0)
    res["ok"] = ok
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="distill.py checkpoint (a draft)")
    src.add_argument("--arcm", help=".arcm bundle of an ArithTransformer (the target)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--kind", choices=["target", "draft"], default=None, help="default: target for --arcm, else draft")
    ap.add_argument("--out-dir", default=WORK, help="onnx and check files")
    ap.add_argument("--spec-dir", default=TRAINED, help="the arca pack spec NAME.json")
    ap.add_argument("--eval-n", type=int, default=500, help="target: held-out problems per digit count")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    command = "models/.venv/bin/python models/arith/gen_export.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    log = lambda s: print(time.strftime("%H:%M:%S ") + s, flush=True)  # noqa: E731

    with open(os.path.join(TRAINED, "arith-add-padrev.json")) as f:
        src_manifest = json.load(f)
    ck = None
    if args.arcm:
        from arcm import load_model
        model, _ = load_model(args.arcm)
        kind = args.kind or "target"
    else:
        ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
        assert ck.get("final"), f"{args.ckpt} is not a finished distill run"
        model = ArithTransformer(**{k: v for k, v in ck["model_cfg"].items() if k != "vocab"})
        model.load_state_dict(ck["model"])
        kind = args.kind or "draft"
    model.eval()
    cfg = model.cfg
    L, H, d = cfg["layers"], cfg["heads"], cfg["d_model"]
    D = d // H
    name = args.name
    os.makedirs(args.out_dir, exist_ok=True)
    os.makedirs(args.spec_dir, exist_ok=True)
    base = os.path.join(args.out_dir, name)

    m = build_graph(model, name)
    onnx.save(m, base + ".onnx")
    ops = sorted({n.op_type for n in m.graph.node})
    log(f"wrote {base}.onnx ({os.path.getsize(base + '.onnx') / 1e6:.3f} MB, {len(m.graph.node)} nodes, "
        f"{len(m.graph.initializer)} initializers, ops {','.join(ops)})")
    with torch.no_grad():
        res = check(model, base + ".onnx", log)
    log("checks " + ("passed" if res["ok"] else "FAILED") + " (tolerance 1e-4; greedy outputs identical)")
    with open(base + "-check.json", "w") as fh:
        json.dump(dict(source=args.ckpt or args.arcm, name=name, onnx_bytes=os.path.getsize(base + ".onnx"),
                       ops=ops, **res), fh, indent=2)
        fh.write("\n")

    nparam = n_params(model)
    check_nums = {k: v for k, v in res.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    check_nums["ok"] = res["ok"]
    metrics = {}
    if kind == "target":
        t = time.time()
        ev = evaluate(torch_next_fn(model, "cpu"), "+", "padrev", 10, range(2, 11), args.eval_n, 0, cfg["context_len"])
        metrics["heldout_exact_match"] = {str(dd): round(c / n, 4) for dd, (c, n) in ev.items()}
        metrics["heldout_n"] = {str(dd): n for dd, (c, n) in ev.items()}
        log("held-out exact match (torch): " + " ".join(f"{dd}:{100 * c / n:.1f}%" for dd, (c, n) in ev.items())
            + f" ({time.time() - t:.0f}s)")
        training = copy.deepcopy(src_manifest["training"])
        training["exported_from"] = "arith-add-padrev.arcm"
        desc_role = "target of speculative generation"
    else:
        fe = ck["final_eval"]
        a = ck["args"]
        metrics["heldout_exact_match"] = {dd: v["exact_match"] for dd, v in fe["heldout"].items()}
        metrics["heldout_n"] = {dd: v["n"] for dd, v in fe["heldout"].items()}
        ag = fe["teacher_agreement"]
        metrics["teacher_argmax_agreement"] = ag["argmax_agreement"]
        metrics["teacher_kl_nats"] = ag["kl_nats"]
        metrics["teacher_sum_min_pq"] = ag["sum_min_pq"]
        metrics["teacher_tokens"] = ag["tokens"]
        metrics["teacher_argmax_agreement_by_digits"] = {dd: v["argmax_agreement"]
                                                         for dd, v in fe["teacher_agreement_by_digits"].items()}
        training = dict(command=ck["command"], teacher=a["teacher"])
        if a["mode"] == "adaspec":
            training["reference"] = os.path.relpath(os.path.abspath(a["ref"]), ROOT)
            training["select_frac"] = a["select_frac"]
        training.update(steps=ck["step"], batch=a["batch"], examples_seen=ck["examples"],
                        training_seconds=round(ck["elapsed"], 1), date=ck["date"], device="cpu (1 thread)",
                        seed=a["seed"], lr=a["lr"], warmup=a["warmup"],
                        data="formats.train_batch: add, padrev, width 10, operand digit counts uniform in 1..10; "
                             "held-out pairs never drawn; loss on the answer positions (answer digits and END)")
        desc_role = (f"draft of speculative generation, distilled from arith-add-padrev ({a['mode']}"
                     + (f", top {a['select_frac']:g} of tokens by KL gap to the kd reference" if a["mode"] == "adaspec" else "")
                     + ")")
    metrics["heldout_note"] = ("greedy decoding, both operands with exactly d digits, held-out pairs only "
                               "(formats.heldout_pairs seed 0)")
    if kind == "draft":
        metrics["teacher_note"] = ("teacher-forced on the target's greedy answers to the same held-out problems: "
                                   "argmax agreement, mean KL(p_target||q_draft) in nats and mean sum_v min(p,q) "
                                   "over the answer positions (answer digits and END)")
    metrics["export_check"] = check_nums

    spec = dict(
        name=name, kind=kind,
        description=(f"Character-level decoder-only transformer for addition in the 'padrev' format (see "
                     f"models/arith/formats.py), {desc_role}: {L} pre-LN layers, d_model {d}, {H} heads of {D}, "
                     f"GELU MLP x4, learned absolute positions ({cfg['context_len']}), untied head. Explicit KV "
                     f"cache: feed input_ids [batch, seq] with past [batch, {H}, past, {D}] per layer (past may be "
                     f"0); token t is at position past + t; keep past + seq <= {cfg['context_len']}."),
        vocab_size=F.VOCAB_SIZE, context_len=cfg["context_len"], pad_id=F.PAD,
        logit_frac_bits=0, quantization="f32",
        inputs=["input_ids"], outputs=["logits"],
        kv_cache_inputs=[f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")],
        kv_cache_outputs=[f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")],
        parameters=nparam,
        architecture=dict(n_layer=L, n_head=H, head_dim=D, d_model=d, mlp_mult=4, positions="learned",
                          norm="layer", norm_eps=EPS, bias=True, tied=False, opset=17),
        training=training,
        metrics=metrics,
    )
    if kind == "draft":
        spec["distill"] = ck["args"]["mode"]
    spec["arith"] = src_manifest["arith"]
    spec["export"] = dict(command=command, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
    with open(os.path.join(args.spec_dir, name + ".json"), "w") as fh:
        json.dump(spec, fh, indent=2)
        fh.write("\n")
    log(f"wrote {os.path.join(args.spec_dir, name + '.json')} and {base}-check.json")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
