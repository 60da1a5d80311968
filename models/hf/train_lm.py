"""The issue #21 target and its drafts: transformers' LlamaForCausalLM trained on the books and
the mixed system text, then three drafts distilled from it with the same tokenizer.

    python models/hf/train_lm.py target   --data .gpu --out OUT --seconds 230
    python models/hf/train_lm.py draft    --data .gpu --out OUT --mode kd --name pre --seconds 60
    python models/hf/train_lm.py draft    --data .gpu --out OUT --mode kd --init pre --name kd --steps 1500
    python models/hf/train_lm.py draft    --data .gpu --out OUT --mode adaspec --init pre --ref kd --name adaspec --steps 1500
    python models/hf/train_lm.py draft    --data .gpu --out OUT --mode onpolicy --init pre --name onpolicy --steps 1500
    python models/hf/train_lm.py evaluate --data .gpu --out OUT --drafts pre,kd,adaspec,onpolicy

(`gpu_run.sh` runs them in this order on one GPU.) `--data` holds `prep.py`'s output.

- **target**: trained for a wall-clock budget (the learning rate follows the fraction of the
  budget spent: linear warm-up, cosine decay to 10 %), then quantized to int8 with one scale per
  output row (every matrix: embeddings, projections, output layer; norms stay f32) and saved as
  `target_int8.pt`. The drafts are distilled from the *dequantized* int8 weights, the model
  arca ships.
- **draft --mode kd**: forward KL from the target, every token (Hinton et al.; the reference of
  AdaSPEC).
- **draft --mode adaspec**: AdaSPEC (selective KD): per token, the draft's KL and the
  reference's (`--ref`, the KD draft) are computed; only the `--keep` fraction of tokens with the
  largest gap (draft KL - reference KL: what the reference learned and the draft has not yet)
  enter the loss.
- **draft --mode onpolicy**: on-policy KD (GKD, Agarwal et al. 2024, lambda = 0.5): every other
  step is KD on sequences the draft itself sampled (at temperature 1) after a data prefix; those
  are regenerated every `--regen` on-policy steps.
- **evaluate**: per draft, on held-out windows: bits per byte, KL to the target, top-1
  agreement with the target (teacher-forced), 1 - total variation (the acceptance of a sampled
  draft token); and the top-1 agreement on text the target generated greedily (what greedy
  speculative decoding sees).

Each step of a draft run sees `--batch` windows of `--seq` tokens; `--steps` fixes the number of
steps so the three fine-tunings get the same budget (`--seconds` is a safety deadline; the run
records the steps it made).
"""

import argparse
import json
import lzma
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

TARGET = dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=10, num_attention_heads=8,
              num_key_value_heads=4, tie_word_embeddings=False)
DRAFT = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, tie_word_embeddings=False)
TINY_DRAFT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=1, tie_word_embeddings=True)
CONTEXT = 1024


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def load_tokens(data, name):
    with lzma.open(os.path.join(data, f"{name}.u16.xz"), "rb") as f:
        return np.frombuffer(f.read(), dtype="<u2").astype(np.int64)


def llama_config(shape, vocab):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, max_position_embeddings=CONTEXT, rms_norm_eps=1e-5,
                       rope_theta=10000.0, bos_token_id=0, eos_token_id=0, **shape)


def build(shape, vocab, device, seed):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = llama_config(shape, vocab)
    try:
        model = LlamaForCausalLM(cfg, attn_implementation="sdpa")
    except TypeError:
        cfg._attn_implementation = "sdpa"
        model = LlamaForCausalLM(cfg)
    return model.to(device)


def params(model):
    return sum(p.numel() for p in model.parameters())


class Windows:
    """Random windows of `seq + 1` tokens from one token array (seeded)."""

    def __init__(self, ids, seq, batch, device, seed):
        self.ids = torch.from_numpy(ids)
        self.seq, self.batch, self.device = seq, batch, device
        self.gen = torch.Generator().manual_seed(seed)

    def next(self):
        starts = torch.randint(0, len(self.ids) - self.seq - 1, (self.batch,), generator=self.gen)
        idx = starts[:, None] + torch.arange(self.seq + 1)[None, :]
        return self.ids[idx].to(self.device, non_blocking=True)


def fixed_windows(ids, seq, n):
    """`n` evenly spaced validation windows (the same for every model)."""
    step = (len(ids) - seq - 1) // n
    return torch.from_numpy(np.stack([ids[i * step:i * step + seq + 1] for i in range(n)]))


def lr_at(frac, peak, warm=0.02, floor=0.1):
    if frac < warm:
        return peak * frac / warm
    frac = min(1.0, (frac - warm) / (1 - warm))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


def autocast(device):
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device == "cuda" else \
        torch.autocast(device_type="cpu", enabled=False)


def logits_of(model, x, device):
    with autocast(device):
        return model(input_ids=x).logits.float()


@torch.no_grad()
def eval_loss(model, windows, device, bs=16):
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, len(windows), bs):
        w = windows[i:i + bs].to(device)
        lg = logits_of(model, w[:, :-1], device)
        tot += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
        n += w[:, 1:].numel()
    model.train()
    return tot / n


def quantize_int8(state):
    """Per-row symmetric int8 of every 2-D weight; the rest stays f32."""
    q = {}
    for k, v in state.items():
        v = v.detach().float().cpu()
        if v.dim() == 2:
            scale = v.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            q[k] = {"int8": torch.round(v / scale[:, None]).clamp(-127, 127).to(torch.int8), "scale": scale}
        else:
            q[k] = {"f32": v}
    return q


def dequantize(q):
    return {k: (v["int8"].float() * v["scale"][:, None]) if "int8" in v else v["f32"] for k, v in q.items()}


def load_target(out, vocab, device):
    blob = torch.load(os.path.join(out, "target_int8.pt"), map_location="cpu")
    model = build(blob["shape"], vocab, device, 0)
    model.load_state_dict(dequantize(blob["weights"]))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def save_draft(model, shape, out, name, info):
    torch.save({"shape": shape, "weights": {k: v.detach().half().cpu() for k, v in model.state_dict().items()},
                "info": info}, os.path.join(out, f"draft_{name}.pt"))


def load_draft(out, name, vocab, device):
    blob = torch.load(os.path.join(out, f"draft_{name}.pt"), map_location="cpu")
    model = build(blob["shape"], vocab, device, 0)
    model.load_state_dict({k: v.float() for k, v in blob["weights"].items()})
    return model, blob["shape"]


# ----------------------------------------------------------------------------------------- target

def cmd_target(a):
    dev = a.device
    prep = json.load(open(os.path.join(a.data, "prep.json")))
    vocab = prep["vocab"]
    train, valid = load_tokens(a.data, "train"), load_tokens(a.data, "valid")
    shape = TINY if a.tiny else TARGET
    model = build(shape, vocab, dev, a.seed)
    log(f"target: {params(model):,} parameters, {len(train):,} train tokens, device {dev}")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=dev == "cuda")
    win = Windows(train, a.seq, a.batch, dev, a.seed)
    vwin = fixed_windows(valid, a.seq, a.eval_windows)
    t0, step, seen, hist = time.time(), 0, 0, []
    while True:
        frac = (time.time() - t0) / a.seconds
        if frac >= 1 or step >= a.steps:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(frac, a.lr)
        x = win.next()
        lg = logits_of(model, x[:, :-1], dev)
        loss = F.cross_entropy(lg.reshape(-1, vocab), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += x[:, 1:].numel()
        if step % a.log_every == 0:
            el = time.time() - t0
            hist.append({"step": step, "s": round(el, 1), "loss": round(loss.item(), 4), "tok_s": round(seen / el)})
            log(f"target step {step} loss {loss.item():.4f} {seen / el:,.0f} tok/s")
    train_s = time.time() - t0
    bpt = prep["valid"]["bytes_per_token"]
    res = {"params": params(model), "shape": shape, "steps": step, "tokens": seen, "train_s": round(train_s, 1),
           "tok_s": round(seen / max(train_s, 1e-9)), "epochs": round(seen / len(train), 2), "history": hist}
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    res["valid_bpb"] = {"f32": eval_loss(model, vwin, dev) / math.log(2) / bpt}
    model.load_state_dict({k: v.half().float() for k, v in state.items()})
    res["valid_bpb"]["f16"] = eval_loss(model, vwin, dev) / math.log(2) / bpt
    q = quantize_int8(state)
    model.load_state_dict(dequantize(q))
    res["valid_bpb"]["int8"] = eval_loss(model, vwin, dev) / math.log(2) / bpt
    # A check for the machine that reloads the weights (other transformers, other hardware): f32
    # logits of the dequantized model on the first validation window's first 32 tokens.
    model.eval()
    with torch.no_grad():
        chk = model(input_ids=vwin[:1, :32].to(dev)).logits.float()[0].cpu()
    res["check"] = {"ids": vwin[0, :32].tolist(), "logits_row0_16": chk[0, :16].tolist(),
                    "logits_last_16": chk[-1, :16].tolist(), "argmax": chk.argmax(-1).tolist()}
    torch.save({"shape": shape, "weights": q, "info": res}, os.path.join(a.out, "target_int8.pt"))
    json.dump(res, open(os.path.join(a.out, "target.json"), "w"), indent=1)
    log(f"target done: {json.dumps({k: v for k, v in res.items() if k not in ('history', 'check')})}")


# ----------------------------------------------------------------------------------------- drafts

def kl_rows(t_logits, d_logits):
    """Forward KL(target || draft) per token, in nats."""
    logp = F.log_softmax(t_logits, -1)
    return (logp.exp() * (logp - F.log_softmax(d_logits, -1))).sum(-1)


@torch.no_grad()
def sample_continuations(model, prefix, new, device, gen):
    """`new` tokens sampled at temperature 1 by `model` after each `prefix` row, with its KV cache."""
    model.eval()
    out = model(input_ids=prefix, use_cache=True)
    pkv, seq = out.past_key_values, [prefix]
    logits = out.logits[:, -1].float()
    for _ in range(new):
        probs = torch.softmax(logits, -1)
        nxt = torch.multinomial(probs, 1, generator=gen)
        seq.append(nxt)
        out = model(input_ids=nxt, past_key_values=pkv, use_cache=True)
        pkv, logits = out.past_key_values, out.logits[:, -1].float()
    model.train()
    return torch.cat(seq, 1)


def cmd_draft(a):
    dev = a.device
    prep = json.load(open(os.path.join(a.data, "prep.json")))
    vocab = prep["vocab"]
    train = load_tokens(a.data, "train")
    target = load_target(a.out, vocab, dev)
    shape = TINY_DRAFT if a.tiny else DRAFT
    if a.init:
        model, shape = load_draft(a.out, a.init, vocab, dev)
    else:
        model = build(shape, vocab, dev, a.seed)
    ref = None
    if a.mode == "adaspec":
        ref, _ = load_draft(a.out, a.ref, vocab, dev)
        ref.eval()
        for p in ref.parameters():
            p.requires_grad_(False)
    log(f"draft {a.name} ({a.mode}, init {a.init or 'random'}): {params(model):,} parameters, "
        f"target {params(target):,} ({params(target) / params(model):.1f}x)")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.0, fused=dev == "cuda")
    win = Windows(train, a.seq, a.batch, dev, a.seed + 17)
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    pool, pool_used = None, 0
    t0, step, hist, kept = time.time(), 0, [], []
    while step < a.steps and time.time() - t0 < a.seconds:
        frac = step / a.steps if a.steps < 10 ** 9 else (time.time() - t0) / a.seconds
        for g in opt.param_groups:
            g["lr"] = lr_at(frac, a.lr)
        if a.mode == "onpolicy" and step % 2 == 1:
            if pool is None or pool_used >= a.regen:
                pre = win.next()[:, :a.prefix]
                pre = torch.cat([pre] + [win.next()[:, :a.prefix] for _ in range(a.regen - 1)])
                pool, pool_used = sample_continuations(model, pre, a.gen_len, dev, gen), 0
            x = pool[pool_used * a.batch:(pool_used + 1) * a.batch]
            pool_used += 1
            inp = x[:, :-1]
        else:
            x = win.next()
            inp = x[:, :-1]
        with torch.no_grad():
            t_lg = logits_of(target, inp, dev)
        d_lg = logits_of(model, inp, dev)
        kl = kl_rows(t_lg, d_lg).reshape(-1)
        if a.mode == "adaspec":
            with torch.no_grad():
                gap = kl.detach() - kl_rows(t_lg, logits_of(ref, inp, dev)).reshape(-1)
                k = max(1, int(a.keep * gap.numel()))
                sel = torch.topk(gap, k).indices
            loss = kl[sel].mean()
            kept.append(k / gap.numel())
        else:
            loss = kl.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % a.log_every == 0:
            hist.append({"step": step, "s": round(time.time() - t0, 1), "loss": round(loss.item(), 4)})
            log(f"draft {a.name} step {step} loss {loss.item():.4f}")
    info = {"mode": a.mode, "init": a.init, "ref": a.ref, "params": params(model), "steps": step,
            "planned_steps": a.steps, "train_s": round(time.time() - t0, 1), "batch": a.batch, "seq": a.seq,
            "lr": a.lr, "keep": a.keep if a.mode == "adaspec" else None, "history": hist}
    save_draft(model, shape, a.out, a.name, info)
    json.dump(info, open(os.path.join(a.out, f"draft_{a.name}.json"), "w"), indent=1)
    log(f"draft {a.name} done: {step} steps in {info['train_s']} s")


# ----------------------------------------------------------------------------------------- evaluate

@torch.no_grad()
def cmd_evaluate(a):
    dev = a.device
    prep = json.load(open(os.path.join(a.data, "prep.json")))
    vocab, bpt = prep["vocab"], prep["valid"]["bytes_per_token"]
    valid = load_tokens(a.data, "valid")
    target = load_target(a.out, vocab, dev)
    vwin = fixed_windows(valid, a.seq, a.eval_windows)
    # Text the target writes greedily after held-out prompts: what greedy speculation verifies.
    prompts = fixed_windows(valid[len(valid) // 2:], a.prefix, a.gen_prompts)[:, :a.prefix].to(dev)
    seq = prompts
    out = target(input_ids=seq, use_cache=True)
    pkv, lg = out.past_key_values, out.logits[:, -1]
    for _ in range(a.gen_len):
        nxt = lg.argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
        out = target(input_ids=nxt, past_key_values=pkv, use_cache=True)
        pkv, lg = out.past_key_values, out.logits[:, -1]
    res = {"target_params": params(target), "windows": a.eval_windows, "seq": a.seq,
           "greedy_prompts": a.gen_prompts, "greedy_len": a.gen_len, "drafts": {}}
    for name in a.drafts.split(","):
        model, _ = load_draft(a.out, name, vocab, dev)
        model.eval()
        m = {"params": params(model), "ratio": round(params(target) / params(model), 1)}
        tot = {"ce": 0.0, "kl": 0.0, "agree": 0.0, "tv": 0.0, "n": 0}
        for i in range(0, len(vwin), 16):
            w = vwin[i:i + 16].to(dev)
            t_lg, d_lg = target(input_ids=w[:, :-1]).logits.float(), model(input_ids=w[:, :-1]).logits.float()
            tot["ce"] += F.cross_entropy(d_lg.reshape(-1, vocab), w[:, 1:].reshape(-1), reduction="sum").item()
            tot["kl"] += kl_rows(t_lg, d_lg).sum().item()
            tot["agree"] += (t_lg.argmax(-1) == d_lg.argmax(-1)).sum().item()
            tot["tv"] += torch.minimum(t_lg.softmax(-1), d_lg.softmax(-1)).sum(-1).sum().item()
            tot["n"] += w[:, 1:].numel()
        n = tot["n"]
        m.update({"valid_bpb": tot["ce"] / n / math.log(2) / bpt, "kl": tot["kl"] / n,
                  "top1_agree": tot["agree"] / n, "sample_accept": tot["tv"] / n})
        d_lg = model(input_ids=seq[:, :-1]).logits.float()[:, a.prefix - 1:]
        m["greedy_agree_on_target_text"] = (d_lg.argmax(-1) == seq[:, a.prefix:]).float().mean().item()
        res["drafts"][name] = m
        log(f"eval {name}: {json.dumps(m)}")
    json.dump(res, open(os.path.join(a.out, "drafts_eval.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["target", "draft", "evaluate"])
    ap.add_argument("--data", default=".gpu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes: a CPU smoke test of the script")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--steps", type=int, default=10 ** 9)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-windows", type=int, default=256)
    ap.add_argument("--mode", choices=["kd", "adaspec", "onpolicy"], default="kd")
    ap.add_argument("--name", default="kd")
    ap.add_argument("--init", default=None)
    ap.add_argument("--ref", default="kd")
    ap.add_argument("--keep", type=float, default=0.4, help="AdaSPEC: fraction of tokens kept")
    ap.add_argument("--prefix", type=int, default=32, help="on-policy / evaluate: prompt tokens")
    ap.add_argument("--gen-len", type=int, default=128, help="on-policy / evaluate: generated tokens")
    ap.add_argument("--regen", type=int, default=8, help="on-policy: steps per batch of samples")
    ap.add_argument("--gen-prompts", type=int, default=64)
    ap.add_argument("--drafts", default="pre,kd,adaspec,onpolicy")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    {"target": cmd_target, "draft": cmd_draft, "evaluate": cmd_evaluate}[a.cmd](a)


if __name__ == "__main__":
    main()
