"""A small trained GPT-2 (transformers' `GPT2LMHeadModel`: learned positions, fused QKV, GELU,
LayerNorm) on the issue #21 tokenizer and token files, trained on the CPU for a wall-clock
budget, saved with `save_pretrained` and exported by optimum (`text-generation-with-past`):
the second architecture arca's team did not design, trained rather than random.

    python models/hf/train_gpt2.py --data .gpu --out models/work/hf/gpt2-small --seconds 1200

Then `python models/hf/check_ort.py models/work/hf/gpt2-small` compares arca's greedy tokens
(tract) with onnxruntime's.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_lm import Windows, fixed_windows, load_tokens, lr_at, log  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=".gpu")
    ap.add_argument("--out", default="models/work/hf/gpt2-small")
    ap.add_argument("--seconds", type=float, default=1200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from tokenizers import Tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    prep = json.load(open(os.path.join(a.data, "prep.json")))
    vocab = prep["vocab"]
    train, valid = load_tokens(a.data, "train"), load_tokens(a.data, "valid")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=512, n_embd=192, n_layer=3, n_head=4,
                     bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"gpt2: {n_params:,} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    win = Windows(train, a.seq, a.batch, "cpu", 0)
    t0, step, seen = time.time(), 0, 0
    while (frac := (time.time() - t0) / a.seconds) < 1:
        for g in opt.param_groups:
            g["lr"] = lr_at(frac, a.lr)
        x = win.next()
        loss = F.cross_entropy(model(input_ids=x[:, :-1]).logits.reshape(-1, vocab), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += x[:, 1:].numel()
        if step % 100 == 0:
            log(f"step {step} loss {loss.item():.3f} {seen / (time.time() - t0):,.0f} tok/s")
    model.eval()
    vwin = fixed_windows(valid, a.seq, 64)
    with torch.no_grad():
        lg = model(input_ids=vwin[:, :-1]).logits
        ce = F.cross_entropy(lg.reshape(-1, vocab), vwin[:, 1:].reshape(-1)).item()
    bpb = ce / math.log(2) / prep["valid"]["bytes_per_token"]
    log(f"gpt2 done: {step} steps, {seen:,} tokens, validation {bpb:.3f} bits per byte")
    shutil.rmtree(a.out, ignore_errors=True)
    model.save_pretrained(a.out, safe_serialization=True)
    tok = Tokenizer.from_file(os.path.join(a.data, "tokenizer.json"))
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                            bos_token="<|endoftext|>").save_pretrained(a.out)
    from optimum.exporters.onnx import main_export

    tmp = a.out + ".onnx"
    shutil.rmtree(tmp, ignore_errors=True)
    main_export(a.out, output=tmp, task="text-generation-with-past")
    for f in os.listdir(tmp):
        if f.startswith("model.onnx"):
            shutil.move(os.path.join(tmp, f), os.path.join(a.out, f))
    shutil.rmtree(tmp)
    json.dump({"params": n_params, "steps": step, "tokens": seen, "seconds": a.seconds, "batch": a.batch,
               "seq": a.seq, "lr": a.lr, "valid_bpb": bpb},
              open(os.path.join(a.out, "training.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
