"""What the two KV-cache exporters share (models/gen/export.py, models/arith/gen_export.py).

Both write a decoder-only transformer node by node with onnx.helper, to one contract: input
`input_ids` [batch, seq] and per layer `past_key_values.{i}.key/value` [batch, H, past, D];
outputs `logits` [batch, seq, V] and `present.{i}.key/value` [batch, H, past+seq, D]. They differ
in positions, norms and biases, and share the graph builder, the cached attention and GELU
subgraphs, the model's inputs and outputs, and the onnxruntime harness of their checks.

Node names are numbered in creation order, so an exporter that calls these in the same order
writes the same bytes.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NEG = -1e9  # masked attention score (finite: no inf/NaN in any runtime)


class Graph:
    """Nodes and initializers, in the order they are made."""

    def __init__(self):
        self.nodes, self.inits = [], []
        self.count = 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op, ins, out=None, **kw):
        self.count += 1
        out = out or f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, ins, [out], name=f"n{self.count}_{op}", **kw))
        return out

    def attention(self, i, q, k, v, mask, c_scale, c_neg, c_model):
        """Layer i's cached attention of q, k, v ([B,H,T,D]): keys and values are appended to
        the past (the `present.{i}.*` outputs), masked scores set to c_neg, heads merged back
        to [B,T,d] with the shape constant c_model."""
        k = self.node("Concat", [f"past_key_values.{i}.key", k], f"present.{i}.key", axis=2)
        v = self.node("Concat", [f"past_key_values.{i}.value", v], f"present.{i}.value", axis=2)
        att = self.node("MatMul", [self.node("Mul", [q, c_scale]), self.node("Transpose", [k], perm=[0, 1, 3, 2])])
        att = self.node("Softmax", [self.node("Where", [mask, c_neg, att])], axis=-1)
        return self.node("Reshape", [self.node("Transpose", [self.node("MatMul", [att, v])], perm=[0, 2, 1, 3]),
                                     c_model])

    def gelu(self, a, c_isq2, c_1f, c_half):
        """Exact GELU: a * (erf(a / sqrt 2) + 1) * 0.5."""
        return self.node("Mul", [self.node("Mul", [a, self.node("Add", [self.node("Erf", [self.node(
            "Mul", [a, c_isq2])]), c_1f])]), c_half])

    def model(self, name, L, H, D, V, producer):
        """The checked ModelProto (opset 17, IR 8) with the KV-cache inputs and outputs."""
        vi = helper.make_tensor_value_info
        inputs = [vi("input_ids", TensorProto.INT64, ["batch", "seq"])]
        outputs = [vi("logits", TensorProto.FLOAT, ["batch", "seq", V])]
        for i in range(L):
            for kv in ("key", "value"):
                inputs.append(vi(f"past_key_values.{i}.{kv}", TensorProto.FLOAT, ["batch", H, "past", D]))
                outputs.append(vi(f"present.{i}.{kv}", TensorProto.FLOAT, ["batch", H, "past+seq", D]))
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name=producer)
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        return m


class OrtModel:
    """An exported graph in onnxruntime (one thread): `om(ids, past) -> (logits, presents)`."""

    def __init__(self, path, L, H, D):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.L, self.H, self.D = L, H, D
        self.out_names = [o.name for o in self.s.get_outputs()]

    def empty(self, batch):
        z = np.zeros((batch, self.H, 0, self.D), dtype=np.float32)
        return [(z, z) for _ in range(self.L)]

    def __call__(self, ids, past):
        feed = {"input_ids": np.asarray(ids, dtype=np.int64)}
        for i, (k, v) in enumerate(past):
            feed[f"past_key_values.{i}.key"] = k
            feed[f"past_key_values.{i}.value"] = v
        out = dict(zip(self.out_names, self.s.run(None, feed)))
        return out["logits"], [(out[f"present.{i}.key"], out[f"present.{i}.value"]) for i in range(self.L)]


def chunked(om, ids, chunk):
    """`ids` fed `chunk` tokens at a time with the cache: (all logits, final presents)."""
    past = om.empty(ids.shape[0])
    outs = []
    for s in range(0, ids.shape[1], chunk):
        lg, past = om(ids[:, s:s + chunk], past)
        outs.append(lg)
    return np.concatenate(outs, 1), past


def maxdiff(a, b):
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def present_diff(p1, p2):
    """Largest difference between two lists of (key, value) presents."""
    return max(maxdiff(a[j], b[j]) for a, b in zip(p1, p2) for j in (0, 1))
