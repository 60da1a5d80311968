"""Tiny standard decoders for arca's tract path (issue #21): the test fixtures.

A byte-level BPE tokenizer trained with the `tokenizers` library on ../shared/data/train, and two
models arca's team did not design, built by `transformers` with seeded random weights:

- `llama/`: a LlamaForCausalLM (RMSNorm, RoPE, SwiGLU, grouped-query attention: 4 query heads
  over 2 key/value heads);
- `gpt2/`: a GPT2LMHeadModel (learned positions, fused QKV, GELU; output layer untied).

Each is exported by optimum (`text-generation-with-past`: `input_ids`, `attention_mask`,
`position_ids` for Llama, `past_key_values.{i}.key/value` -> `logits`, `present.{i}.key/value`),
not by the project's exporters, next to its `config.json` and `tokenizer.json`. onnxruntime then
decodes each prompt of PROMPTS greedily with the KV cache (one prompt call, then one token a call)
and `reference.json` records the tokens and the first logits: what arca's tract path must
reproduce.

    pip install torch onnxruntime tokenizers "transformers<4.58" optimum-onnx
    python models/hf/make_fixtures.py --data ../shared/data/train --out tests/data/hf

Deterministic for fixed package versions (`reference.json` records them).
"""

import argparse
import importlib.metadata
import json
import os
import shutil
import tempfile

import numpy as np

PROMPTS = [
    "The old man",
    "It was the best of times, it was the worst of times,",
    "Call me Ishmael.",
    "\n",
]
VOCAB = 1024
NEW_TOKENS = 128


def train_tokenizer(data_dir, limit_bytes):
    """A byte-level BPE (GPT-2's pre-tokenizer and decoder) over the first `limit_bytes` of each
    training file, sorted by name."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = []
    for name in sorted(os.listdir(data_dir)):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                texts.append(f.read(limit_bytes).decode("utf-8", errors="replace"))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def build_models(tok, work):
    """Seeded random-weight Llama and GPT-2 saved with the tokenizer, as `transformers` writes them."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    eos = tok.token_to_id("<|endoftext|>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    configs = {
        "llama": LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=176,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            rms_norm_eps=1e-5,
            rope_theta=10000.0,
            tie_word_embeddings=False,
            bos_token_id=eos,
            eos_token_id=eos,
        ),
        "gpt2": GPT2Config(
            vocab_size=VOCAB,
            n_positions=256,
            n_embd=64,
            n_layer=2,
            n_head=4,
            # Untied, so the random output layer does not just repeat the last token (a tied
            # embedding sends the residual's own token back on top).
            tie_word_embeddings=False,
            bos_token_id=eos,
            eos_token_id=eos,
        ),
    }
    dirs = {}
    for i, (name, config) in enumerate(configs.items()):
        torch.manual_seed(1234 + i)
        cls = LlamaForCausalLM if name == "llama" else GPT2LMHeadModel
        model = cls(config).eval()
        # Random init gives near-uniform logits; scaling the output layer spreads them, so greedy
        # choices are far from ties and stable across runtimes.
        with torch.no_grad():
            model.lm_head.weight.mul_(8.0)
        path = os.path.join(work, name)
        model.save_pretrained(path, safe_serialization=True)
        fast.save_pretrained(path)
        dirs[name] = path
    return dirs


def export(src, dst):
    from optimum.exporters.onnx import main_export

    main_export(src, output=dst, task="text-generation-with-past", no_post_process=False)


def greedy_ort(model_dir, prompt_ids):
    """onnxruntime's greedy decode with the KV cache: the prompt in one call, then one token a call."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), opts, providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in sess.get_inputs()}
    outputs = [o.name for o in sess.get_outputs()]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    layers = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    heads = cfg.get("num_key_value_heads", cfg.get("num_attention_heads", cfg.get("n_head")))
    head_dim = cfg.get("hidden_size", cfg.get("n_embd")) // cfg.get("num_attention_heads", cfg.get("n_head"))
    past = {
        f"past_key_values.{i}.{kv}": np.zeros((1, heads, 0, head_dim), dtype=np.float32)
        for i in range(layers)
        for kv in ("key", "value")
    }
    ids = list(prompt_ids)
    out_ids, first_logits = [], None
    feed_ids = ids
    for step in range(NEW_TOKENS):
        n_past = len(ids) - len(feed_ids)
        feeds = {
            "input_ids": np.array([feed_ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        }
        if "position_ids" in inputs:
            feeds["position_ids"] = np.arange(n_past, len(ids), dtype=np.int64)[None, :]
        feeds.update(past)
        res = dict(zip(outputs, sess.run(outputs, feeds)))
        logits = res["logits"][0, -1]
        if first_logits is None:
            first_logits = [float(x) for x in logits[:16]]
        nxt = int(np.argmax(logits))
        out_ids.append(nxt)
        ids.append(nxt)
        feed_ids = [nxt]
        past = {k.replace("present", "past_key_values"): v for k, v in res.items() if k.startswith("present")}
    return out_ids, first_logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/train")
    ap.add_argument("--out", default="tests/data/hf")
    ap.add_argument("--limit", type=int, default=1 << 20, help="bytes read from each training file")
    args = ap.parse_args()

    import onnxruntime
    import tokenizers
    import torch
    import transformers

    tok = train_tokenizer(args.data, args.limit)
    work = tempfile.mkdtemp()
    try:
        dirs = build_models(tok, work)
        reference = {
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
                "onnxruntime": onnxruntime.__version__,
                "optimum": importlib.metadata.version("optimum"),
                "optimum-onnx": importlib.metadata.version("optimum-onnx"),
            },
            "new_tokens": NEW_TOKENS,
            "models": {},
        }
        for name, src in dirs.items():
            dst = os.path.join(args.out, name)
            shutil.rmtree(dst, ignore_errors=True)
            export(src, dst)
            # The named weights beside the graph (optimum's export renames the matrices it
            # transposes): what `arca pack --weights` and the native Llama path read.
            shutil.copy(os.path.join(src, "model.safetensors"), os.path.join(dst, "model.safetensors"))
            runs = []
            for prompt in PROMPTS:
                ids = tok.encode(prompt).ids
                greedy, logits = greedy_ort(dst, ids)
                runs.append({"prompt": prompt, "prompt_ids": ids, "greedy": greedy, "first_logits": logits})
            reference["models"][name] = runs
            print(name, [r["greedy"][:8] for r in runs])
        with open(os.path.join(args.out, "reference.json"), "w") as f:
            json.dump(reference, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
