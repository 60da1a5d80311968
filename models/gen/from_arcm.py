#!/usr/bin/env python3
"""Rebuild a model.py ByteGPT (with its weights) from a gen .arcm bundle, check it, save a checkpoint.

The bundle is read with models/arith/arcm.py (`load_onnx`: the graph with its initializers
inlined). export.py names the initializers after the torch state_dict: `emb.weight` [256, d],
`blocks.{i}.norm1.weight`, `blocks.{i}.wq.weight.T` (= torch `wq.weight` transposed; likewise wk,
wv, wo, w1, w2), `blocks.{i}.norm2.weight`, `norm_f.weight`, and `rope_inv_freq`. The sizes come
from the manifest (`architecture`: n_layer, n_head, d_model, mlp_mult, rope_base, norm_eps,
context_len) and are checked against the tensor shapes and the stored RoPE frequencies.

Check: torch logits of the rebuilt model vs onnxruntime (1 thread) running the bundle's own
graph, on a few hundred bytes of validation text (one call, and in chunks of 16 with the cache);
fails above 1e-4 max abs diff.

Output: a train.py-format checkpoint (model, config, step 0, tokens 0, elapsed 0, history [],
cmd, mode, args, date) that train.py --teacher / --ref / --init and export.py --ckpt accept.

Usage:
  models/.venv/bin/python models/gen/from_arcm.py models/gen/trained/gen-target.arcm models/gen/work/target.pt
  models/.venv/bin/python models/gen/from_arcm.py models/gen/trained/gen-draft-kd.arcm models/gen/work/draft-kd.pt
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "arith"))
from arcm import load_onnx  # noqa: E402  (models/arith/arcm.py: the bundle reader)
from model import ByteGPT, GPTConfig, rope_inv_freq  # noqa: E402

DATA = "/work/shared/data"
LINEARS = ("wq", "wk", "wv", "wo", "w1", "w2")


def read_manifest(path):
    """The bundle's manifest as `arca inspect` prints it ("key: value" lines; the manifest inside
    the bundle is binary), or None when the release binary is not built."""
    exe = os.path.join(HERE, "..", "..", "target", "release", "arca")
    if not os.path.exists(exe):
        return None
    out = subprocess.run([exe, "inspect", path], check=True, capture_output=True, text=True).stdout
    return dict(ln.split(": ", 1) for ln in out.splitlines() if ": " in ln)


def load_bundle(path):
    """(ByteGPT in eval mode with the bundle's weights, manifest dict or None, ModelProto).

    The sizes are read from the graph itself (embedding [256, d], w1 [d, mult*d], the number of
    blocks, the head reshape constant [0, 0, H, D], eps, RoPE frequencies) and, when `arca
    inspect` is available, checked against the manifest's architecture.* entries."""
    m = load_onnx(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    V, d = inits["emb.weight"].shape
    L = len({k.split(".")[1] for k in inits if k.startswith("blocks.")})
    H, D = (int(v) for v in inits["c_shape_heads"][2:])
    mult = inits["blocks.0.w1.weight.T"].shape[1] // d
    eps = float(f"{float(inits['c_eps']):.6g}")  # float32 1e-5 -> 1e-05
    inv = inits["rope_inv_freq"].reshape(-1).astype(np.float64)
    base = float(np.round(inv[1] ** (-D / 2.0)))  # inv[j] = base^(-2j/D)
    cfg = GPTConfig(d_model=int(d), n_layer=L, n_head=H, mlp_mult=int(mult), rope_base=base,
                    norm_eps=eps, vocab_size=int(V))
    man = read_manifest(path)
    if man is not None:
        for k, v in (("d_model", cfg.d_model), ("n_layer", cfg.n_layer), ("n_head", cfg.n_head),
                     ("head_dim", cfg.head_dim), ("mlp_mult", cfg.mlp_mult)):
            assert int(man["architecture." + k]) == v, (k, man["architecture." + k], v)
        assert float(man["architecture.rope_base"]) == cfg.rope_base and man["architecture.positions"] == "rope"
        assert abs(float(man["architecture.norm_eps"]) - cfg.norm_eps) < 1e-12 and man["architecture.norm"] == "rms"
        cfg.context_len = int(man.get("context_len", cfg.context_len))
    assert D == cfg.head_dim
    model = ByteGPT(cfg)
    sd = {}
    for k in model.state_dict():
        if k in inits:
            sd[k] = inits[k]
        elif k.endswith(".weight") and k.split(".")[-2] in LINEARS:
            sd[k] = np.ascontiguousarray(inits[k + ".T"].T)
        else:
            raise KeyError(f"{path}: no initializer for {k}")
    model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()}, strict=True)
    np.testing.assert_array_equal(inits["rope_inv_freq"].reshape(-1), rope_inv_freq(cfg).numpy())
    model.eval()
    return model, man, m


def verify(model, m, nbytes=384):
    """max abs diff of torch logits vs onnxruntime on the bundle's graph (one call; chunks of 16)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    c = model.cfg
    vdir = os.path.join(DATA, "valid")
    text = open(os.path.join(vdir, sorted(os.listdir(vdir))[1]), "rb").read()
    ids = np.frombuffer(text[30000:30000 + nbytes], dtype=np.uint8).astype(np.int64)[None]
    names = [o.name for o in s.get_outputs()]

    def run(x, past):
        feed = {"input_ids": x}
        for i, (k, v) in enumerate(past):
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = k, v
        out = dict(zip(names, s.run(None, feed)))
        return out["logits"], [(out[f"present.{i}.key"], out[f"present.{i}.value"]) for i in range(c.n_layer)]

    z = np.zeros((1, c.n_head, 0, c.head_dim), dtype=np.float32)
    o_full, _ = run(ids, [(z, z)] * c.n_layer)
    past, chunks = [(z, z)] * c.n_layer, []
    for st in range(0, nbytes, 16):
        lg, past = run(ids[:, st:st + 16], past)
        chunks.append(lg)
    with torch.no_grad():
        t = model(torch.from_numpy(ids)).numpy()
    d_full = float(np.abs(o_full.astype(np.float64) - t).max())
    d_chunk = float(np.abs(np.concatenate(chunks, 1).astype(np.float64) - t).max())
    return d_full, d_chunk, nbytes


def main():
    torch.set_num_threads(1)
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    model, man, m = load_bundle(src)
    d_full, d_chunk, n = verify(model, m)
    ok = d_full < 1e-4 and d_chunk < 1e-4
    man = man or {}
    print(f"{src}: {man.get('name', '?')} ({man.get('kind', '?')}), config {model.config()}, {model.num_params():,} parameters; "
          f"torch vs onnxruntime (bundle graph) on {n} valid bytes: one call {d_full:.2e}, chunks of 16 "
          f"{d_chunk:.2e} -> {'OK' if ok else 'MISMATCH'}")
    if not ok:
        return 1
    tr = {k[len("training."):]: v for k, v in man.items() if k.startswith("training.")}
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    torch.save(dict(model=model.state_dict(), config=model.config(), step=0, tokens=0, elapsed=0.0,
                    history=[], cmd=" ".join(["models/gen/from_arcm.py"] + sys.argv[1:]),
                    mode=tr.get("mode", "ce"), args=dict(source_bundle=src, source_training=tr),
                    date=time.strftime("%Y-%m-%d %H:%M:%S")), dst)
    print(f"wrote {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
