"""onnxruntime on a model directory, as the peer runtime beside arca's numbers: the time of a
one-token decoding step with the KV cache, and of a k-token call over the same cache (the cost a
speculative verify pays), median of `--reps`.

    python models/hf/bench_ort.py models/work/hf/target --threads 1 --past 128
"""

import argparse
import json
import os
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--past", type=int, default=128, help="cached tokens before the timed calls")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--ks", default="1,2,4,8,16")
    a = ap.parse_args()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    t0 = time.perf_counter()
    sess = ort.InferenceSession(os.path.join(a.dir, "model.onnx"), opts, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    layers, kv = cfg["num_hidden_layers"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    names = [i.name for i in sess.get_inputs()]
    outs = [o.name for o in sess.get_outputs()]
    rng = np.random.default_rng(0)

    def call(ids, past, n_past):
        feeds = {"input_ids": np.array([ids], dtype=np.int64),
                 "attention_mask": np.ones((1, n_past + len(ids)), dtype=np.int64)}
        if "position_ids" in names:
            feeds["position_ids"] = np.arange(n_past, n_past + len(ids), dtype=np.int64)[None]
        feeds.update(past)
        res = dict(zip(outs, sess.run(outs, feeds)))
        return {k.replace("present", "past_key_values"): v for k, v in res.items() if k.startswith("present")}

    empty = {f"past_key_values.{i}.{w}": np.zeros((1, kv, 0, hd), np.float32) for i in range(layers) for w in ("key", "value")}
    prompt = rng.integers(0, cfg["vocab_size"], a.past).tolist()
    t0 = time.perf_counter()
    past = call(prompt, empty, 0)
    prompt_s = time.perf_counter() - t0
    res = {"model": a.dir, "threads": a.threads, "past": a.past, "load_ms": round(load_s * 1e3, 1),
           "prompt_ms": round(prompt_s * 1e3, 1), "onnxruntime": ort.__version__, "calls_ms": {}}
    for k in [int(x) for x in a.ks.split(",")]:
        times = []
        for _ in range(a.reps):
            ids = rng.integers(0, cfg["vocab_size"], k).tolist()
            t0 = time.perf_counter()
            call(ids, past, a.past)
            times.append(time.perf_counter() - t0)
        res["calls_ms"][k] = round(statistics.median(times) * 1e3, 3)
    one = res["calls_ms"].get(1)
    if one:
        res["tokens_per_s_one_token_calls"] = round(1e3 / one, 1)
        res["cost_over_one"] = {k: round(v / one, 2) for k, v in res["calls_ms"].items()}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
