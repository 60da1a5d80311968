#!/usr/bin/env python3
"""onnxruntime's numbers for what `cargo run --release -p arca-hf --example hf_bench` measures
in tract: session creation, the prompt call, one-token greedy calls and 8-token calls, with the
KV cache fed back, on one thread or on the default thread count.

    python3 models/hf/bench_onnxruntime.py tests/data/hf/llama [TOKENS] [THREADS]
"""

import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/hf/llama"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    config = json.load(open(f"{path}/config.json"))
    heads = config.get("num_key_value_heads") or config.get("num_attention_heads") or config["n_head"]
    layers = config.get("num_hidden_layers") or config["n_layer"]
    hidden = config.get("hidden_size") or config["n_embd"]
    head_dim = config.get("head_dim") or hidden // (config.get("num_attention_heads") or config["n_head"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        sess = ort.InferenceSession(f"{path}/model.onnx", opts, providers=["CPUExecutionProvider"])
        loads.append(time.perf_counter() - t)
    names = [i.name for i in sess.get_inputs()]
    outs = [o.name for o in sess.get_outputs()]

    def run(tokens, past, cached):
        total = cached + len(tokens)
        feed = {
            "input_ids": np.array([tokens], dtype=np.int64),
            "attention_mask": np.ones((1, total), dtype=np.int64),
        }
        if "position_ids" in names:
            feed["position_ids"] = np.arange(cached, total, dtype=np.int64)[None]
        for i in range(layers):
            feed[f"past_key_values.{i}.key"] = past[2 * i]
            feed[f"past_key_values.{i}.value"] = past[2 * i + 1]
        result = dict(zip(outs, sess.run(outs, feed)))
        new = []
        for i in range(layers):
            new += [result[f"present.{i}.key"], result[f"present.{i}.value"]]
        return result["logits"], new, total

    empty = [np.zeros((1, heads, 0, head_dim), np.float32)] * (2 * layers)
    prompt = [500, 727, 447]
    prompt_s, one, eight = [], [], []
    for _ in range(5):
        t = time.perf_counter()
        logits, past, cached = run(prompt, empty, 0)
        prompt_s.append(time.perf_counter() - t)
        nxt = int(logits[0, -1].argmax())
        t = time.perf_counter()
        for _ in range(n):
            logits, past, cached = run([nxt], past, cached)
            nxt = int(logits[0, -1].argmax())
        one.append(n / (time.perf_counter() - t))
    for _ in range(5):
        logits, past, cached = run(prompt, empty, 0)
        calls = n // 8
        t = time.perf_counter()
        for c in range(calls):
            block = [((c * 8 + i) * 37) % 1000 for i in range(8)]
            logits, past, cached = run(block, past, cached)
        eight.append(calls * 8 / (time.perf_counter() - t))
    print(f"onnxruntime {ort.__version__}, threads {threads or 'default'}", file=sys.stderr)
    print(f"load (session): {statistics.median(loads) * 1e3:.1f} ms (median of 3)", file=sys.stderr)
    print(f"prompt of 3 tokens: {statistics.median(prompt_s) * 1e3:.2f} ms", file=sys.stderr)
    print(f"one-token calls: {statistics.median(one):.0f} tokens per second", file=sys.stderr)
    print(f"8-token calls: {statistics.median(eight):.0f} tokens per second", file=sys.stderr)


if __name__ == "__main__":
    main()
