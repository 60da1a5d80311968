#!/usr/bin/env python3
"""Build the ONNX likelihood graph of an exported HCLT and check it with onnxruntime.

Reads the manifest + parameter file written by export.py (the QUANTIZED model: every probability
is an integer frequency / 2^16) and writes <name>.onnx next to them:

    input   pixels    int64   [batch, 784]  pixel values 0..255, index v = row * 28 + col
    output  log_prob  float32 [batch]       natural log p(pixels) under the circuit

The graph is the circuit's upward pass in log space, one stage per tree level (deepest first), so it
has about 12 nodes per level rather than one per pixel:

    idx    = pixels[:, bfs] + 256 * bfs                      Gather + Add (bfs = vertices by level)
    leaf   = Log(Cast(Gather(leaf_freq [784*256, M] uint16, idx))) - 16 log 2
                                                             [B, 784, M]  log p(x_v | z_v)
    for each level d = height .. 1 (vertices of level d are a contiguous range of bfs):
        lam   = Slice(leaf, level d) + child sums            [B, K, M]
        a     = ReduceMax(lam, axis 2)
        msg   = Log(MatMul(Exp(lam - a) as [K, B, M], T^T [K, M, M])) + a       (log-sum-exp)
        sums  = ReduceSum(Gather(Pad(msg, one zero row), children [K', C]), axis 2)  per parent
    log_prob = Log(MatMul(Exp(lam_root - a), prior [M, 1])) + a

The leaf frequencies are a uint16 initializer (the integers of the .bin file), transitions and prior
float32 (frequency / 2^16), all inside the file (opset 17, IR 8). The script compares
onnxruntime's log_prob with a float64 numpy evaluation of the same integer model on the held-out
images (the last 2,000 MNIST test images) and records the result in the manifest.

Usage:
    python models/pc/export_onnx.py models/pc/trained/hclt-mnist-M32.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export  # noqa: E402
import hclt  # noqa: E402

OPSET = 17


class _Graph:
    """Tiny helper: named nodes and initializers, unique names."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, **attrs):
        self.n += 1
        out = f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"n{self.n}", **attrs))
        return out


def build_graph(tree: hclt.Tree, M: int, q: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The ONNX model of the quantized circuit `q` (integer tables from export.py)."""
    total = float(export.TOTAL)
    # leaf frequencies stay uint16 in the file (half the size of float32 logs); the graph takes
    # Log(Cast(f)) - 16 log 2 of the gathered entries
    leaf_table = q["leaves"].transpose(0, 2, 1).reshape(hclt.N_PIXELS * hclt.N_VALUES, M)
    trans = q["transitions"].astype(np.float64) / total  # [784, M, M]
    prior = q["root_prior"].astype(np.float64) / total  # [M]
    model = hclt.HCLT(tree, M, np.log(trans), np.zeros((hclt.N_PIXELS, M, 1)))  # for the groupings

    g = _Graph()
    f32, i64 = np.float32, np.int64
    bfs = tree.bfs
    x = g.op("Gather", ["pixels", g.const("bfs", bfs.astype(i64))], axis=1)  # [B, 784] bfs order
    idx = g.op("Add", [x, g.const("leaf_offsets", (bfs * hclt.N_VALUES).astype(i64))])
    freq = g.op("Gather", [g.const("leaf_freq", leaf_table.astype(np.uint16)), idx], axis=0)
    leaf = g.op("Sub", [g.op("Log", [g.op("Cast", [freq], to=TensorProto.FLOAT)]),
                        g.const("log_total", np.array(np.log(total), dtype=f32))])
    axis1 = g.const("axis1", np.array([1], dtype=i64))
    axis2 = g.const("axis2", np.array([2], dtype=i64))
    pad_one_row = g.const("pad_one_row", np.array([0, 0, 0, 0, 1, 0], dtype=i64))

    child_sum = None  # [B, K_d, M] sum of the messages of level d+1 into level d's vertices
    for level in range(tree.height, -1, -1):
        s, e = tree.levels[level]
        lam = g.op("Slice", [leaf, g.const(f"start_{level}", np.array([s], dtype=i64)),
                             g.const(f"end_{level}", np.array([e], dtype=i64)), axis1])
        if child_sum is not None:
            lam = g.op("Add", [lam, child_sum])
        a = g.op("ReduceMax", [lam], axes=[2], keepdims=1)
        ex = g.op("Exp", [g.op("Sub", [lam, a])])
        if level == 0:
            lin = g.op("MatMul", [ex, g.const("root_prior", prior.reshape(M, 1).astype(f32))])
            logp = g.op("Add", [g.op("Log", [lin]), a])  # [B, 1, 1]
            g.nodes.append(helper.make_node(
                "Reshape", [logp, g.const("shape_b", np.array([-1], dtype=i64))], ["log_prob"],
                name="output"))
            break
        tt = trans[bfs[s:e]].transpose(0, 2, 1).astype(f32)  # [K, j, i]
        lin = g.op("MatMul", [g.op("Transpose", [ex], perm=[1, 0, 2]),
                              g.const(f"trans_t_{level}", tt)])  # [K, B, M] over parent states
        msg = g.op("Add", [g.op("Transpose", [g.op("Log", [lin])], perm=[1, 0, 2]), a])
        # children of each vertex of level-1, padded with the index of an appended zero message
        ps, pe = tree.levels[level - 1]
        rel_parent = model.parent_pos[s:e] - ps
        counts = np.bincount(rel_parent, minlength=pe - ps)
        cidx = np.full((pe - ps, counts.max()), e - s, dtype=i64)
        fill = np.zeros(pe - ps, dtype=i64)
        for k, p in enumerate(rel_parent):
            cidx[p, fill[p]] = k
            fill[p] += 1
        padded = g.op("Pad", [msg, pad_one_row])  # [B, K+1, M]
        gathered = g.op("Gather", [padded, g.const(f"children_{level - 1}", cidx)], axis=1)
        child_sum = g.op("ReduceSum", [gathered, axis2], keepdims=0)  # [B, K', M]

    graph = helper.make_graph(
        g.nodes, "hclt",
        [helper.make_tensor_value_info("pixels", TensorProto.INT64, ["batch", hclt.N_PIXELS])],
        [helper.make_tensor_value_info("log_prob", TensorProto.FLOAT, ["batch"])],
        initializer=g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="arca models/pc/export_onnx.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", help="<name>.json written by export.py")
    p.add_argument("--data", default=hclt.DEFAULT_DATA)
    args = p.parse_args(argv)
    import onnxruntime as ort

    man, tree, M, q = export.load_exported(args.manifest)
    m = build_graph(tree, M, q)
    onnx_path = os.path.splitext(args.manifest)[0] + ".onnx"
    raw = m.SerializeToString()
    with open(onnx_path, "wb") as f:
        f.write(raw)
    print(f"wrote {onnx_path} ({len(raw):,} bytes, {len(m.graph.node)} nodes, "
          f"tree height {tree.height})")

    _, x_held = hclt.load_split(args.data)
    ref = export.model_from_frequencies(tree, M, q).log_prob(x_held)  # float64 numpy
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    t0 = time.time()
    got = np.concatenate([sess.run(["log_prob"], {"pixels": x_held[i:i + 500].astype(np.int64)})[0]
                          for i in range(0, len(x_held), 500)]).astype(np.float64)
    secs = time.time() - t0
    diff = float(np.abs(got - ref).max())
    bpd_ref = float(-ref.mean() / (hclt.N_PIXELS * hclt.LOG2))
    bpd_ort = float(-got.mean() / (hclt.N_PIXELS * hclt.LOG2))
    for bs in (1, 3):  # batch size must not matter
        small = sess.run(["log_prob"], {"pixels": x_held[:bs].astype(np.int64)})[0]
        assert np.abs(small - got[:bs]).max() <= 1e-3, (bs, small, got[:bs])
    print(f"held-out (last 2,000 images): max |log_prob onnxruntime - numpy float64| = {diff:.3g} "
          f"nats; bpd numpy {bpd_ref:.5f}, onnxruntime {bpd_ort:.5f}; "
          f"onnxruntime {len(x_held) / secs:.0f} images/s (1 thread, batch 500)")
    if diff > 1e-2:
        sys.exit("onnxruntime and numpy disagree")

    man["onnx"] = {
        "file": os.path.basename(onnx_path),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "bytes": len(raw),
        "opset": OPSET,
        "nodes": len(m.graph.node),
        "heldout_max_abs_diff_nats": diff,
        "heldout_bpd_onnxruntime": round(bpd_ort, 5),
    }
    with open(args.manifest, "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    print(f"updated {args.manifest}")


if __name__ == "__main__":
    main()
