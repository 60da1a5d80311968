"""Turns `train_lm.py`'s checkpoints into model directories as users have them: `transformers`'
`save_pretrained` (config.json, model.safetensors, tokenizer files) plus optimum's ONNX export
(`text-generation-with-past`) in the same directory.

    python models/hf/export_lm.py --ckpt models/work/gpu1 --tokenizer .gpu/tokenizer.json \
        --out models/work/hf [--names target,kd,adaspec,onpolicy] [--no-onnx]

The target is stored by `train_lm.py` as int8 with one scale per row; it is written here
dequantized to f32 (the values arca's int8 bundle holds, so f32, f16 and int8 runs of it differ
only by what each precision rounds). Before writing, the target's f32 logits on the check
window recorded by the training machine (`target.json`, `check`) are recomputed here and compared:
the same weights through another `transformers`, `torch` and processor.
"""

import argparse
import json
import os
import shutil

import torch


def build(shape, vocab, state):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0,
                      bos_token_id=0, eos_token_id=0, **shape)
    model = LlamaForCausalLM(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (cfg.tie_word_embeddings and k == "lm_head.weight")]
    assert not missing and not unexpected, (missing, unexpected)
    if cfg.tie_word_embeddings:
        model.tie_weights()
    return model.eval()


def load(ckpt, name, vocab):
    if name == "target":
        blob = torch.load(os.path.join(ckpt, "target_int8.pt"), map_location="cpu")
        state = {k: (v["int8"].float() * v["scale"][:, None]) if "int8" in v else v["f32"]
                 for k, v in blob["weights"].items()}
    else:
        blob = torch.load(os.path.join(ckpt, f"draft_{name}.pt"), map_location="cpu")
        state = {k: v.float() for k, v in blob["weights"].items()}
    return build(blob["shape"], vocab, state), blob["info"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", default="models/work/gpu1")
    ap.add_argument("--tokenizer", default=".gpu/tokenizer.json")
    ap.add_argument("--out", default="models/work/hf")
    ap.add_argument("--names", default="target,kd,adaspec,onpolicy")
    ap.add_argument("--no-onnx", action="store_true")
    a = ap.parse_args()
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_file(a.tokenizer)
    vocab = tok.get_vocab_size()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    for name in a.names.split(","):
        model, info = load(a.ckpt, name, vocab)
        if name == "target":
            chk = info["check"]
            with torch.no_grad():
                lg = model(input_ids=torch.tensor([chk["ids"]])).logits[0]
            diff = max((lg[0, :16] - torch.tensor(chk["logits_row0_16"])).abs().max().item(),
                       (lg[-1, :16] - torch.tensor(chk["logits_last_16"])).abs().max().item())
            # The training machine computed its check with TF32 matrix products (about 1e-3 off
            # f32): an argmax may differ only where the top two logits are that close.
            top2 = lg.topk(2, dim=-1).values
            bad = [i for i, (x, y) in enumerate(zip(lg.argmax(-1).tolist(), chk["argmax"]))
                   if x != y and (top2[i, 0] - top2[i, 1]).item() > 2 * diff]
            ties = sum(x != y for x, y in zip(lg.argmax(-1).tolist(), chk["argmax"])) - len(bad)
            print(f"target check: largest logit difference vs the training machine {diff:.2e}; "
                  f"argmax differs at {len(bad)} positions ({ties} near-ties)")
            assert diff < 1e-2 and not bad, "the reloaded target does not reproduce the training machine's logits"
        dst = os.path.join(a.out, name)
        shutil.rmtree(dst, ignore_errors=True)
        model.save_pretrained(dst, safe_serialization=True)
        fast.save_pretrained(dst)
        if not a.no_onnx:
            from optimum.exporters.onnx import main_export

            tmp = dst + ".onnx"
            shutil.rmtree(tmp, ignore_errors=True)
            main_export(dst, output=tmp, task="text-generation-with-past")
            for f in os.listdir(tmp):
                if f.startswith("model.onnx"):
                    shutil.move(os.path.join(tmp, f), os.path.join(dst, f))
            shutil.rmtree(tmp)
        print(name, sum(p.numel() for p in model.parameters()), "parameters ->", dst, sorted(os.listdir(dst)))


if __name__ == "__main__":
    main()
