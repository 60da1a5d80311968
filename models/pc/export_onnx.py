#!/usr/bin/env python3
"""Build the ONNX graph of an exported HCLT for an arca bundle, check it, write the packer spec.

Reads the manifest + parameter file written by export.py (the QUANTIZED model: every probability
is an integer frequency / 2^16) and writes

    models/pc/work/<name>.onnx            the graph (not committed; it goes into the bundle)
    models/pc/trained/<name>.spec.json    the manifest spec for `arca pack`
    models/pc/trained/<name>.json         (updated) a `bundle` section with the checks below

then `arca pack` turns the two into models/pc/trained/<name>.arcm. The bundle holds the integer
tables ONCE: they are initializers of the graph, so the packer moves them into the bundle's payload,
where the native circuit coder reads them by name and tract reads them as the graph's weights.

Graph interface:

    input   pixels       int64   [batch, 784]  index v = row * 28 + col; 0..255 = observed value,
                                               256 = marginalized (that pixel's leaf is 1, log 0)
    output  log_prob     float32 [batch]       natural log of the marginal probability of the
                                               observed pixels (log p(x) when none is 256)
    initializers (bundle payload tensors; probabilities = value / 2^16):
            root_prior   uint16  [32]            p(z_root = j)
            transitions  uint16  [784, 32, 32]   p(z_v = j | z_parent(v) = i) = [v, i, j]
                                                 (the root's slot holds root_prior on every row)
            leaves       uint16  [784, 32, 256]  p(x_v = x | z_v = j) = [v, j, x]
            parent       int32   [784]           tree parent of each pixel, -1 at the root
            image_shape  int32   [2]             [28, 28] (height, width)
    The small int64 index arrays the graph needs (vertices of each tree level, children lists,
    offsets) are `Constant` nodes, so they stay in the graph bytes and the bundle's payload holds
    exactly these five tensors.

The three tables are exactly the integers of <name>.bin in the same layouts. `parent` and
`image_shape` are consumed by no node (they are there for the native coder; onnxruntime and tract
drop unused initializers). The graph is the circuit's upward pass in log space, one stage per tree
level (deepest first), about 17 operator nodes per level rather than one per pixel:

    x      = Gather(pixels, bfs, axis 1)                       [B, 784]  vertices in level order
    rows   = Reshape(Transpose(leaves, [0, 2, 1]), [784 * 256, 32])    p(x_v = x | z) * 2^16
    f      = Gather(rows, 256 * bfs + Min(x, 255), axis 0)     [B, 784, 32]  uint16
    leaf   = Where(x == 256, 0, Log(Cast(f)) - 16 log 2)       [B, 784, 32]  log p(x_v | z_v)
    for each level d = height .. 1 (vertices of level d are a contiguous range of bfs):
        T_d   = Transpose(Cast(Gather(transitions, vertices_d)) * 2^-16)        [K, z_v, z_parent]
        lam   = Slice(leaf, level d) + child sums                               [B, K, 32]
        a     = ReduceMax(lam, axis 2)
        msg   = Log(MatMul(Exp(lam - a) as [K, B, 32], T_d)) + a                (log-sum-exp)
        sums  = ReduceSum(Gather(Pad(msg, one zero row), children [K', C]), axis 2)  per parent
    log_prob = Log(MatMul(Exp(lam_root - a), Cast(root_prior) * 2^-16 as [32, 1])) + a

(`--leaf-gather flat` gathers single elements of Reshape(leaves, [-1]) at (32 v + z) 256 + x
instead, with [B, 784, 32] indices: no transposed table even in memory, but slower; the default
`rows` costs one transpose of `leaves` when a runtime loads the graph, which onnxruntime and tract
fold into a constant.)

Opset 17, IR 8. The script checks the graph with onnxruntime (float32) against a float64 numpy
evaluation of the same integer model (HCLT.log_prob / log_marginal in hclt.py):

  (a) the 2,000 held-out images (the last 2,000 MNIST test images): max |difference| in nats, and
      mean bits per dimension of both;
  (b) marginals: an all-256 input gives log_prob 0; for the images of <name>.golden.json the chain
      rule over `dfs_order` prefixes (log p(first k pixels) - log p(first k-1), the others 256)
      reproduces the golden per-pixel conditionals;
  (c) batch sizes 1, 3 and 500 give the same values;

and that the initializers hold exactly the integers of the .bin. It records the results in the
manifest's `bundle` section and in the spec's metrics.

Usage (from the repository root):
    python models/pc/export_onnx.py models/pc/trained/hclt-mnist-M32.json
    cargo run --release -p arca-cli -- pack models/pc/work/hclt-mnist-M32.onnx \\
        --manifest models/pc/trained/hclt-mnist-M32.spec.json \\
        -o models/pc/trained/hclt-mnist-M32.arcm -f
    python models/pc/export_onnx.py models/pc/trained/hclt-mnist-M32.json \\
        --check-bundle models/pc/trained/hclt-mnist-M32.arcm
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
IR_VERSION = 8
MARGINALIZED = hclt.N_VALUES  # the pixel value that means "not observed"
TABLES = ("root_prior", "transitions", "leaves")  # uint16 initializers = the .bin tensors


class _Graph:
    """Tiny helper: named nodes, initializers and constants, unique names."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def init(self, name, array):
        """An initializer: a payload tensor of the bundle."""
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, name, array):
        """A small index constant: a `Constant` node, so it stays inside the graph bytes."""
        self.nodes.append(helper.make_node(
            "Constant", [], [name], name=name,
            value=numpy_helper.from_array(np.ascontiguousarray(array), name)))
        return name

    def op(self, op_type, inputs, **attrs):
        self.n += 1
        out = f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"n{self.n}", **attrs))
        return out


def build_graph(tree: hclt.Tree, M: int, q: dict[str, np.ndarray],
                leaf_gather: str = "rows") -> onnx.ModelProto:
    """The ONNX model of the quantized circuit `q` (integer tables from export.py).

    leaf_gather: how the leaf frequencies are looked up in `leaves` [784, M, 256]. "rows"
    (default): Transpose + Reshape to [784*256, M] and gather whole rows; the runtimes fold the
    transpose into a constant when they load the graph, so the file still holds one copy. "flat":
    Reshape to 1-D and gather single elements with [B, 784, M] indices; no transposed copy even in
    memory, but slower (measured: onnxruntime ~600 vs ~1,130 images/s, tract ~550 vs ~820).
    """
    if leaf_gather not in ("rows", "flat"):
        raise ValueError(f"leaf_gather {leaf_gather!r}: expected 'rows' or 'flat'")
    V, X = hclt.N_PIXELS, hclt.N_VALUES
    for key in TABLES:
        assert q[key].min() >= 1 and q[key].max() < 1 << 16, key
    g = _Graph()
    f32, i64 = np.float32, np.int64
    # the shared tables, exactly the .bin integers and layouts (converted to float in the graph)
    g.init("root_prior", q["root_prior"].astype(np.uint16))
    g.init("transitions", q["transitions"].astype(np.uint16))
    g.init("leaves", q["leaves"].astype(np.uint16))
    # for the native coder only (no node reads them)
    g.init("parent", tree.parent.astype(np.int32))
    g.init("image_shape", np.array([28, 28], dtype=np.int32))

    scale = g.const("inv_total", np.array(2.0 ** -export.PRECISION_BITS, dtype=f32))  # exact
    bfs = tree.bfs
    # leaves: log p(x_v | z_v) [B, 784, M] in bfs order, from the flat view of `leaves`
    x = g.op("Gather", ["pixels", g.const("bfs", bfs.astype(i64))], axis=1)  # [B, 784]
    xc = g.op("Min", [x, g.const("max_value", np.array(X - 1, dtype=i64))])
    axis2 = g.const("axis2", np.array([2], dtype=i64))
    if leaf_gather == "rows":  # rows of the [784*256, M] view at 256 v + x: [B, 784] indices
        rows = g.op("Reshape", [g.op("Transpose", ["leaves"], perm=[0, 2, 1]),
                                g.const("shape_rows", np.array([V * X, M], dtype=i64))])
        idx = g.op("Add", [xc, g.const("leaf_row_base", (bfs * X).astype(i64))])
        freq = g.op("Gather", [rows, idx], axis=0)  # [B, 784, M] uint16
    else:  # "flat": elements of the 1-D view at (M v + z) 256 + x: [B, 784, M] indices
        row_base = g.const("leaf_row_base", (bfs * (M * X)).astype(i64)[:, None])  # [784, 1]
        idx = g.op("Add", [g.op("Add", [g.op("Unsqueeze", [xc, axis2]), row_base]),
                           g.const("leaf_state_offset", (np.arange(M) * X).astype(i64))])
        flat = g.op("Reshape", ["leaves", g.const("shape_flat", np.array([-1], dtype=i64))])
        freq = g.op("Gather", [flat, idx], axis=0)  # [B, 784, M] uint16
    logleaf = g.op("Sub", [g.op("Log", [g.op("Cast", [freq], to=TensorProto.FLOAT)]),
                           g.const("log_total", np.array(np.log(export.TOTAL), dtype=f32))])
    unobserved = g.op("Unsqueeze", [g.op("Equal", [x, g.const("marginalized", np.array(
        MARGINALIZED, dtype=i64))]), axis2])  # [B, 784, 1]
    leaf = g.op("Where", [unobserved, g.const("zero", np.array(0.0, dtype=f32)), logleaf])

    axis1 = g.const("axis1", np.array([1], dtype=i64))
    pad_one_row = g.const("pad_one_row", np.array([0, 0, 0, 0, 1, 0], dtype=i64))
    parent_pos = np.full(V, -1, dtype=np.int64)  # parent's position in bfs, per bfs position
    parent_pos[1:] = tree.pos[tree.parent[bfs[1:]]]

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
            prior = g.op("Mul", [g.op("Cast", ["root_prior"], to=TensorProto.FLOAT), scale])
            prior = g.op("Reshape", [prior, g.const("shape_col", np.array([M, 1], dtype=i64))])
            logp = g.op("Add", [g.op("Log", [g.op("MatMul", [ex, prior])]), a])  # [B, 1, 1]
            g.nodes.append(helper.make_node(
                "Reshape", [logp, g.const("shape_b", np.array([-1], dtype=i64))], ["log_prob"],
                name="output"))
            break
        # the level's transition matrices, [K, z_v, z_parent] = transitions[v, z_parent, z_v]
        t = g.op("Gather", ["transitions", g.const(f"vertices_{level}", bfs[s:e].astype(i64))],
                 axis=0)
        tt = g.op("Transpose", [g.op("Mul", [g.op("Cast", [t], to=TensorProto.FLOAT), scale])],
                  perm=[0, 2, 1])
        lin = g.op("MatMul", [g.op("Transpose", [ex], perm=[1, 0, 2]), tt])  # [K, B, z_parent]
        msg = g.op("Add", [g.op("Transpose", [g.op("Log", [lin])], perm=[1, 0, 2]), a])
        # children of each vertex of level-1, padded with the index of an appended zero message
        ps, pe = tree.levels[level - 1]
        rel_parent = parent_pos[s:e] - ps
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
        [helper.make_tensor_value_info("pixels", TensorProto.INT64, ["batch", V])],
        [helper.make_tensor_value_info("log_prob", TensorProto.FLOAT, ["batch"])],
        initializer=g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="arca models/pc/export_onnx.py")
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m)
    return m


def check_initializers(m: onnx.ModelProto, bin_path: str, tensors: dict) -> None:
    """The graph's uint16 tables are byte for byte the tensors of the .bin file."""
    raw = open(bin_path, "rb").read()
    inits = {t.name: t for t in m.graph.initializer}
    for key in TABLES:
        spec = tensors[key]
        a = numpy_helper.to_array(inits[key])
        assert a.dtype == np.uint16 and list(a.shape) == spec["shape"], key
        assert a.astype("<u2").tobytes() == raw[spec["offset"]:spec["offset"] + spec["length"]], key


def _session(model_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3  # no warnings about the unused `parent` and `image_shape`
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def read_bundle(path: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray], int]:
    """(graph with its initializers filled in from the payload, payload tensors by name, bytes)
    of a .arcm bundle (layout in runtime/bundle/src/lib.rs: an 80-byte header with the offsets
    and lengths of the manifest, the graph and the payload; the graph's initializers refer to the
    payload as external data at location ".")."""
    raw = open(path, "rb").read()
    if raw[:4] != b"ARCM":
        raise ValueError(f"{path}: not an arca bundle")
    _, _, g_off, g_len, p_off, p_len = np.frombuffer(raw[16:64], dtype="<u8").tolist()
    payload = raw[p_off:p_off + p_len]
    m = onnx.ModelProto.FromString(raw[g_off:g_off + g_len])
    tensors = {}
    for t in m.graph.initializer:
        ext = {e.key: e.value for e in t.external_data}
        assert ext["location"] == "." and int(ext["offset"]) % 64 == 0, t.name
        data = payload[int(ext["offset"]):int(ext["offset"]) + int(ext["length"])]
        t.raw_data = data
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT
        tensors[t.name] = numpy_helper.to_array(t)
    return m, tensors, len(raw)


def _node_key(n: onnx.NodeProto) -> tuple:
    """A node by value (the packer re-encodes the graph and drops fields that hold defaults, such
    as `i: 0`, so protobuf equality is too strict)."""
    def value(a):
        v = helper.get_attribute_value(a)
        return numpy_helper.to_array(v).tobytes() if isinstance(v, TensorProto) else v
    return (n.op_type, n.name, tuple(n.input), tuple(n.output),
            tuple((a.name, value(a)) for a in n.attribute))


def check_bundle(args) -> None:
    """After `arca pack`: the bundle's payload tensors are the .bin tables and the tree, and its
    graph (run by onnxruntime on the payload) gives the same log_prob as the .onnx it came from."""
    man, tree, M, q = export.load_exported(args.manifest)
    name = man["name"]
    trained_dir = os.path.dirname(os.path.abspath(args.manifest))
    path = args.check_bundle
    m, tensors, nbytes = read_bundle(path)
    assert sorted(tensors) == sorted(TABLES + ("parent", "image_shape")), sorted(tensors)
    for key in TABLES:
        assert tensors[key].dtype == np.uint16 and (tensors[key] == q[key]).all(), key
    assert tensors["parent"].dtype == np.int32 and (tensors["parent"] == tree.parent).all()
    assert tensors["image_shape"].tolist() == [28, 28]
    _, x_held = hclt.load_split(args.data)
    pixels = x_held.astype(np.int64)
    got = np.concatenate([_session(m.SerializeToString()).run(["log_prob"], {
        "pixels": pixels[i:i + 500]})[0] for i in range(0, len(pixels), 500)])
    with open(os.path.join(args.work_dir, f"{name}.onnx"), "rb") as f:
        src_bytes = f.read()
    src_nodes = onnx.ModelProto.FromString(src_bytes).graph.node
    if [_node_key(n) for n in m.graph.node] != [_node_key(n) for n in src_nodes]:
        sys.exit(f"{path} was packed from another graph than {args.work_dir}/{name}.onnx")
    src = _session(src_bytes)
    want = np.concatenate([src.run(["log_prob"], {"pixels": pixels[i:i + 500]})[0]
                           for i in range(0, len(pixels), 500)])
    same = bool((got == want).all())
    print(f"{path}: {nbytes:,} bytes; payload tensors "
          + ", ".join(f"{k} {v.dtype} {list(v.shape)}" for k, v in tensors.items())
          + f"; tables = the .bin, parent = the tree; same nodes as the .onnx, and on the "
          f"payload {'the same' if same else 'DIFFERENT'} log_prob as the .onnx on the 2,000 "
          f"held-out images")
    if not same:
        sys.exit("the bundle's graph disagrees with the .onnx")
    with open(path, "rb") as f:
        man["bundle"]["bytes"] = nbytes
        man["bundle"]["sha256"] = hashlib.sha256(f.read()).hexdigest()
    man["bundle"]["check"]["bundle_tables_equal_bin"] = True
    man["bundle"]["check"]["bundle_log_prob_equal_onnx"] = same
    with open(args.manifest, "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    print(f"updated {args.manifest}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", help="<name>.json written by export.py")
    p.add_argument("--data", default=hclt.DEFAULT_DATA)
    p.add_argument("--work-dir", default=os.path.join(HERE, "work"),
                   help="where the .onnx goes (default models/pc/work, not committed)")
    p.add_argument("--check-bundle", metavar="ARCM",
                   help="instead of exporting: check the bundle `arca pack` made (tensors, graph) "
                        "and record its size and sha256 in the manifest")
    p.add_argument("--leaf-gather", choices=("rows", "flat"), default="rows",
                   help="leaf lookup: whole rows of the transposed table (default, faster) or "
                        "single elements of the flat table (see build_graph)")
    args = p.parse_args(argv)
    if args.check_bundle:
        check_bundle(args)
        return

    man, tree, M, q = export.load_exported(args.manifest)
    name, c = man["name"], man["circuit"]
    trained_dir = os.path.dirname(os.path.abspath(args.manifest))
    m = build_graph(tree, M, q, args.leaf_gather)
    check_initializers(m, os.path.join(trained_dir, c["params_file"]), c["tensors"])
    os.makedirs(args.work_dir, exist_ok=True)
    onnx_path = os.path.join(args.work_dir, f"{name}.onnx")
    raw = m.SerializeToString()
    with open(onnx_path, "wb") as f:
        f.write(raw)
    n_const = sum(n.op_type == "Constant" for n in m.graph.node)
    print(f"wrote {onnx_path} ({len(raw):,} bytes, {len(m.graph.node) - n_const} operator nodes "
          f"+ {n_const} Constant nodes, {len(m.graph.initializer)} initializers, tree height "
          f"{tree.height})")

    sess = _session(raw)

    def run(pixels, batch=500):
        pixels = np.asarray(pixels, dtype=np.int64)
        return np.concatenate([sess.run(["log_prob"], {"pixels": pixels[i:i + batch]})[0]
                               for i in range(0, len(pixels), batch)]).astype(np.float64)

    qmodel = export.model_from_frequencies(tree, M, q)  # float64 numpy evaluation

    # (a) full held-out images
    _, x_held = hclt.load_split(args.data)
    ref = qmodel.log_prob(x_held)
    t0 = time.time()
    got = run(x_held)
    secs = time.time() - t0
    diff = float(np.abs(got - ref).max())
    bpd_ref = float(-ref.mean() / (hclt.N_PIXELS * hclt.LOG2))
    bpd_ort = float(-got.mean() / (hclt.N_PIXELS * hclt.LOG2))
    print(f"(a) held-out (last 2,000 images): max |log_prob onnxruntime - numpy float64| = "
          f"{diff:.3g} nats; bpd numpy {bpd_ref:.5f}, onnxruntime {bpd_ort:.5f}; "
          f"onnxruntime {len(x_held) / secs:.0f} images/s (1 thread, batch 500)")

    # (b) marginals: nothing observed, then the chain rule over dfs_order prefixes
    empty = run(np.full((2, hclt.N_PIXELS), MARGINALIZED))
    empty_max = float(np.abs(empty).max())
    print(f"(b) all pixels marginalized: log_prob {empty.tolist()}")
    with open(os.path.join(trained_dir, f"{name}.golden.json")) as f:
        golden = json.load(f)
    dfs = tree.dfs
    mask = np.zeros((hclt.N_PIXELS + 1, hclt.N_PIXELS), dtype=bool)  # row k: first k observed
    for k in range(1, hclt.N_PIXELS + 1):
        mask[k, dfs[:k]] = True
    cond_diff, marg_diff, totals = 0.0, 0.0, []
    for img in golden["images"]:
        x = np.array(img["pixels"], dtype=np.int64)
        xs = np.where(mask, x[None, :], MARGINALIZED)  # [785, 784]
        lm = run(xs)
        lm_ref = qmodel.log_marginal(np.repeat(x[None].astype(np.uint8), len(mask), 0), mask)
        marg_diff = max(marg_diff, float(np.abs(lm - lm_ref).max()))
        cond = np.diff(lm) / hclt.LOG2
        cond_diff = max(cond_diff, float(np.abs(cond - np.array(img["log2_conditional"])).max()))
        totals.append(round(float(-cond.sum()), 2))
    print(f"    dfs-order chain rule, {len(golden['images'])} golden images x 785 prefixes: "
          f"max |conditional - golden| = {cond_diff:.3g} bits, max |log marginal - numpy "
          f"float64| = {marg_diff:.3g} nats; total bits {totals}")

    # (c) batch size does not matter
    batch_diff = 0.0
    for bs in (1, 3, 500):
        small = run(x_held[:500], batch=bs)
        batch_diff = max(batch_diff, float(np.abs(small - got[:500]).max()))
    print(f"(c) batch sizes 1, 3, 500 on the first 500 held-out images: max |difference| "
          f"{batch_diff:.3g} nats")
    if diff > 1e-2 or empty_max > 1e-4 or cond_diff > 1e-2 or batch_diff > 1e-3:
        sys.exit("onnxruntime and numpy disagree")

    # the manifest spec for `arca pack`: everything but the tree (that is the `parent` tensor)
    met = man["metrics"]
    check = {
        "heldout_bpd_onnxruntime": round(bpd_ort, 5),
        "heldout_max_abs_diff_nats_onnxruntime": float(f"{diff:.3g}"),
        "empty_max_abs_log_prob_onnxruntime": float(f"{empty_max:.3g}"),
        "golden_max_abs_diff_bits_onnxruntime": float(f"{cond_diff:.3g}"),
        "batch_max_abs_diff_nats_onnxruntime": float(f"{batch_diff:.3g}"),
    }
    spec = {
        "name": name,
        "kind": "circuit",
        "description": (
            f"{man['description']} Graph: pixels int64 [batch, 784] (v = row*28+col; 0..255 "
            f"observed, 256 marginalized) -> log_prob float32 [batch] (natural log of the "
            f"marginal probability of the observed pixels). Payload tensors shared by the graph "
            f"and the native coder: root_prior uint16 [{M}], transitions uint16 [784, {M}, {M}] "
            f"(p(z_v=j | z_parent=i) = [v,i,j] / 2^16; the root's slot holds root_prior), leaves "
            f"uint16 [784, {M}, 256] (p(x_v=x | z_v=j) = [v,j,x] / 2^16), parent int32 [784] "
            f"(-1 at the root), image_shape int32 [2] = [28, 28]."),
        "vocab_size": hclt.N_VALUES,
        "context_len": hclt.N_PIXELS,
        "quantization": (f"uint16 frequencies, 2^{export.PRECISION_BITS} per row, every entry "
                         f">= 1 (probability = value / 2^{export.PRECISION_BITS})"),
        "inputs": ["pixels"],
        "outputs": ["log_prob"],
        "parameters": man["parameters"],
        "circuit": {
            "format": man["format"],
            "latent_states": M,
            "root": c["root"],
            "tree_height": c["tree_height"],
            "precision_bits": c["precision_bits"],
            "marginalized_value": MARGINALIZED,
            "coding_order": "dfs_order: depth-first pre-order from the root, children in "
                            "increasing index (derived from the parent tensor)",
            "params_sha256": c["params_sha256"],
        },
        "training": man["training"],
        "metrics": {
            "train_bpd_float": met["train_bpd_float"],
            "heldout_bpd_float": met["heldout_bpd_float"],
            "train_bpd_quantized": met["train_bpd_quantized"],
            "heldout_bpd_quantized": met["heldout_bpd_quantized"],
            "train_images": hclt.N_TRAIN,
            "heldout_images": hclt.N_HELDOUT,
            **check,
            "note": met["note"] + "; *_onnxruntime: this graph in onnxruntime (float32) vs "
                                  "float64 numpy",
        },
    }
    spec_path = os.path.join(trained_dir, f"{name}.spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    print(f"wrote {spec_path}")

    man.pop("onnx", None)  # the graph no longer ships on its own
    man["bundle"] = {
        "file": f"{name}.arcm",
        "spec": os.path.basename(spec_path),
        "graph": {
            "file": f"models/pc/work/{name}.onnx (not committed; inside the bundle)",
            "sha256": hashlib.sha256(raw).hexdigest(),
            "bytes": len(raw),
            "opset": OPSET,
            "ir_version": IR_VERSION,
            "nodes": len(m.graph.node) - n_const,
            "constant_nodes": n_const,
            "leaf_gather": args.leaf_gather,
            "levels": tree.height + 1,
        },
        "tensors": {t.name: {"dtype": onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name,
                             "shape": list(t.dims)}
                    for t in m.graph.initializer if t.name in TABLES + ("parent", "image_shape")},
        "check": {**check, "heldout_bpd_numpy": round(bpd_ref, 5),
                  "golden_max_abs_diff_log_marginal_nats": float(f"{marg_diff:.3g}"),
                  "onnxruntime_images_per_s": round(len(x_held) / secs)},
    }
    with open(args.manifest, "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    print(f"updated {args.manifest}")
    rel = os.path.relpath(onnx_path)
    arcm = os.path.relpath(os.path.join(trained_dir, name)) + ".arcm"
    print(f"next: cargo run --release -p arca-cli -- pack {rel} --manifest "
          f"{os.path.relpath(spec_path)} -o {arcm} -f\n"
          f"then: python {os.path.relpath(__file__)} {os.path.relpath(args.manifest)} "
          f"--check-bundle {arcm}")


if __name__ == "__main__":
    main()
