#!/usr/bin/env python3
"""Read an arca .arcm bundle back into an ONNX ModelProto and into an ArithTransformer.

Bundle layout (as written by `arca pack`): bytes 0..4 = b"ARCM"; at offset 16 six little-endian
u64: manifest offset, manifest length, graph offset, graph length, payload offset, payload length.
The graph is an ONNX ModelProto whose initializers are EXTERNAL with external_data
{location ".", offset, length} relative to the payload start.

The arith graphs (train_arith.py, torch.onnx.export) keep the names of embeddings, norms and
biases (`tok.weight`, `blocks.0.qkv.bias`, ...) but store the Linear weights as anonymous
`onnx::MatMul_NNN` initializers of shape [in, out]. Each is mapped through the graph: the MatMul
that uses it feeds an Add whose other input is the named bias `X.bias`, so `X.weight` = W.T.

Usage (verification): models/.venv/bin/python models/arith/arcm.py models/arith/trained/arith-add-padrev.arcm
  - the reconstructed torch model's logits vs onnxruntime on the original graph (random inputs)
  - greedy decoding of 200 held-out problems (arith_model.mixed_heldout), exact match
"""
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def load_onnx(path):
    """The bundle's graph as a self-contained ModelProto (initializer data inlined)."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != b"ARCM":
        raise ValueError(f"{path}: not an .arcm bundle (magic {b[:4]!r})")
    if len(b) < 64:
        raise ValueError(f"{path}: truncated .arcm bundle ({len(b)} bytes, the header alone is 64)")
    mo, ml, go, gl, po, pl = struct.unpack_from("<6Q", b, 16)
    if go + gl > len(b) or po + pl > len(b):
        raise ValueError(f"{path}: truncated .arcm bundle (graph or payload beyond its {len(b)} bytes)")
    try:
        m = onnx.load_from_string(b[go:go + gl])
    except Exception as e:  # protobuf's DecodeError, which onnx does not re-export
        raise ValueError(f"{path}: the bundle's graph is not a readable ONNX model ({e})") from e
    pay = b[po:po + pl]
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            kv = {e.key: e.value for e in t.external_data}
            off, ln = int(kv["offset"]), int(kv["length"])
            if off + ln > len(pay):
                raise ValueError(f"{path}: initializer {t.name} outside the payload")
            t.raw_data = pay[off:off + ln]
            del t.external_data[:]
            t.data_location = onnx.TensorProto.DEFAULT
    return m


def state_dict_from_graph(m):
    """torch state_dict (numpy arrays) of an ArithTransformer export."""
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    consumers = {}
    for n in m.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    sd = {k: v for k, v in inits.items() if not k.startswith("onnx::")}
    for n in m.graph.node:
        if n.op_type != "MatMul":
            continue
        ws = [i for i in n.input if i in inits and i.startswith("onnx::")]
        if not ws:
            continue
        (w,) = ws
        adds = [c for c in consumers.get(n.output[0], []) if c.op_type == "Add"]
        bias = [i for c in adds for i in c.input if i != n.output[0] and i.endswith(".bias") and i in inits]
        if len(bias) != 1:
            raise ValueError(f"MatMul weight {w}: no unique bias Add ({bias})")
        key = bias[0][:-len(".bias")] + ".weight"
        if key in sd:
            raise ValueError(f"{key} mapped twice")
        sd[key] = np.ascontiguousarray(inits[w].T)
    return sd


def manifest_json(path):
    """The manifest JSON beside the bundle (NAME.json), if present."""
    j = os.path.splitext(path)[0] + ".json"
    if os.path.exists(j):
        with open(j) as f:
            return json.load(f)
    return None


def load_model(path):
    """(ArithTransformer in eval mode with the bundle's weights, ModelProto)."""
    import torch
    from arith_model import ArithTransformer
    m = load_onnx(path)
    sd = state_dict_from_graph(m)
    if "tok.weight" not in sd or "pos.weight" not in sd:
        raise ValueError(f"{path}: not an arithmetic transformer (no tok.weight / pos.weight initializer)")
    vocab, d = sd["tok.weight"].shape
    ctx = sd["pos.weight"].shape[0]
    layers = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    heads = None
    man = manifest_json(path)
    if man and "description" in man:  # "..., 4 heads, ..."
        import re
        mm = re.search(r"(\d+) heads", man["description"])
        heads = int(mm.group(1)) if mm else None
    if heads is None:  # from the Reshape shape constants [0, 0, H, D] / [B, T, H, D]
        heads = _heads_from_graph(m, d)
    model = ArithTransformer(ctx, d, layers, heads, vocab)
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, strict=True)
    except RuntimeError as e:  # missing, unexpected or misshapen weights
        raise ValueError(f"{path}: weights do not fit an arithmetic transformer: {e}") from e
    model.eval()
    return model, m


def _heads_from_graph(m, d):
    consts = []
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    arr = numpy_helper.to_array(a.t)
                    if arr.ndim == 1 and arr.size == 1 and arr.dtype == np.int64:
                        consts.append(int(arr[0]))
    for h in (1, 2, 4, 8, 16):
        if d % h == 0 and h in consts and d // h in consts:
            return h
    raise ValueError("cannot infer the number of heads")


def main():
    import torch
    import onnxruntime as ort
    import formats as F
    from arith_model import greedy_decode, mixed_heldout, problems, torch_next_fn, ort_next_fn
    torch.set_num_threads(1)
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "trained", "arith-add-padrev.arcm")
    model, m = load_model(path)
    cfg = model.cfg
    print(f"{path}: {cfg}, {sum(p.numel() for p in model.parameters())} parameters")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    md = 0.0
    ctx = cfg["context_len"]
    with torch.no_grad():
        for B, T in ((3, ctx), (2, 5), (1, 1), (4, 20)):
            x = torch.randint(0, F.VOCAB_SIZE, (B, T), generator=g)
            ref = sess.run(["logits"], {"tokens": x.numpy()})[0]
            md = max(md, float(np.abs(model(x).numpy() - ref).max()))
    print(f"torch (reconstructed) vs onnxruntime (bundle graph), random inputs: max abs diff {md:.2e}")
    man = manifest_json(path) or {}
    ar = man.get("arith", {"op": "+", "format": "padrev", "width": 10, "eval_digits": 10})
    pairs = mixed_heldout(ar["op"], ar["format"], ar["width"], ar["eval_digits"], 200, 0)
    prompts, expected = problems(ar["op"], ar["format"], ar["width"], pairs)
    mx = max(len(e) for e in expected)
    gt = greedy_decode(torch_next_fn(model, "cpu"), prompts, mx, ctx)
    go = greedy_decode(ort_next_fn(sess), prompts, mx, ctx)
    acc_t = sum(a == e for a, e in zip(gt, expected)) / len(pairs)
    acc_o = sum(a == e for a, e in zip(go, expected)) / len(pairs)
    same = sum(a == b for a, b in zip(gt, go)) / len(pairs)
    print(f"greedy decoding of {len(pairs)} held-out problems: torch {100 * acc_t:.1f}%, onnxruntime "
          f"{100 * acc_o:.1f}%, identical {100 * same:.1f}%")
    ok = md < 1e-4 and acc_t == acc_o and same == 1.0
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
