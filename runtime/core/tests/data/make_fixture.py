"""Writes the tiny integer-exact byte model used by arca-runtime and arca-codegen tests.

Same contract as the shipped text models: input `context` int64 [batch, N] (bytes, PAD=256,
oldest first), output `logits` int32 [batch, 256]. Weights are small integers, so every op is
exact. Run with any python that has `onnx` and `numpy`:

    python make_fixture.py        # writes tiny.onnx, tiny.json, tiny_ext.onnx + tiny_ext.onnx.data

The committed files are the reference: rerun only to change the fixture, then refresh the
golden bundle (see codegen/README.md).
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

N = 4  # context length
D = 2  # embedding width
HERE = os.path.dirname(os.path.abspath(__file__))


def build():
    rng = np.random.default_rng(20261126)
    emb = rng.integers(-8, 8, size=(257, D), dtype=np.int8)
    w = rng.integers(-4, 4, size=(N * D, 256), dtype=np.int8)
    bias = rng.integers(-64, 64, size=(256,)).astype(np.float32)

    inits = [
        numpy_helper.from_array(emb, "emb"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array([-1, N * D], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.array(3, dtype=np.int32), "three"),
        numpy_helper.from_array(np.array(2, dtype=np.int32), "two"),
        numpy_helper.from_array(np.array(-5000, dtype=np.int32), "lo"),
        numpy_helper.from_array(np.array(5000, dtype=np.int32), "hi"),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "context"], ["e8"], axis=0),
        helper.make_node("Cast", ["e8"], ["e32"], to=TensorProto.INT32),
        helper.make_node("Reshape", ["e32", "flat_shape"], ["flat"]),
        helper.make_node("Cast", ["w"], ["w32"], to=TensorProto.INT32),
        helper.make_node("MatMul", ["flat", "w32"], ["mm"]),
        helper.make_node("Cast", ["bias"], ["b32"], to=TensorProto.INT32),
        helper.make_node("Add", ["mm", "b32"], ["acc"]),
        helper.make_node("Mul", ["acc", "three"], ["acc3"]),
        helper.make_node("Div", ["acc3", "two"], ["half"]),
        helper.make_node("Clip", ["half", "lo", "hi"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "arca-tiny",
        [helper.make_tensor_value_info("context", TensorProto.INT64, ["batch", N])],
        [helper.make_tensor_value_info("logits", TensorProto.INT32, ["batch", 256])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="arca-fixture"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    model = build()
    onnx.save_model(model, os.path.join(HERE, "tiny.onnx"))
    ext = build()
    onnx.save_model(
        ext,
        os.path.join(HERE, "tiny_ext.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="tiny_ext.onnx.data",
        size_threshold=0,
    )


if __name__ == "__main__":
    main()
