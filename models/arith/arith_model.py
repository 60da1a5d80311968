#!/usr/bin/env python3
"""Model, greedy decoding and held-out evaluation shared by train_arith.py and eval_arith.py.

Model: character-level decoder-only transformer over the 16-token vocabulary of formats.py;
learned absolute positional embeddings (context_len rows), pre-LayerNorm blocks, GELU (erf) MLP
(4x), causal multi-head self-attention, final LayerNorm, linear head to 16 logits.

ONNX contract (what the exported graph computes): input ``tokens`` int64 [batch, seq] with
1 <= seq <= context_len; output ``logits`` float32 [batch, seq, 16]; logits[:, t] scores the
token at position t + 1. Attention is causal, so positions after t (e.g. PAD used to right-pad a
batch of different lengths) do not change logits[:, t].
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

import formats as F

NEG = -1e9  # additive mask value (finite: no inf/NaN in any runtime)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        assert d % heads == 0
        self.h, self.dh = heads, d // heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.reshape(B, T, self.h, self.dh).transpose(1, 2)
        k = k.reshape(B, T, self.h, self.dh).transpose(1, 2)
        v = v.reshape(B, T, self.h, self.dh).transpose(1, 2)
        if mask is None:  # training / torch inference: fused kernel
            y = Fn.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # export: plain ops (MatMul, Add, Softmax)
            att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.dh)) + mask
            y = torch.matmul(torch.softmax(att, dim=-1), v)
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.fc2(Fn.gelu(self.fc1(self.ln2(x))))


class ArithTransformer(nn.Module):
    def __init__(self, context_len, d_model=128, layers=4, heads=4, vocab=F.VOCAB_SIZE):
        super().__init__()
        self.cfg = dict(context_len=context_len, d_model=d_model, layers=layers, heads=heads, vocab=vocab)
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context_len, d_model)
        self.blocks = nn.ModuleList([Block(d_model, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        m = torch.full((context_len, context_len), NEG).triu(1)
        self.register_buffer("mask", m, persistent=False)
        self.export_mode = False
        self.apply(self._init)
        for b in self.blocks:
            nn.init.normal_(b.proj.weight, std=0.02 / math.sqrt(2 * layers))
            nn.init.normal_(b.fc2.weight, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(mod):
        if isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, std=0.02)
            nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.Embedding):
            nn.init.normal_(mod.weight, std=0.02)

    def forward(self, tokens, hidden_after=None):
        """Logits [batch, seq, vocab]; with ``hidden_after=i`` also the residual stream after
        block i (0-based), for an auxiliary loss in training (never exported)."""
        T = tokens.shape[1]
        x = self.tok(tokens) + self.pos.weight[:T]
        mask = self.mask[:T, :T] if self.export_mode else None
        hidden = None
        for i, b in enumerate(self.blocks):
            x = b(x, mask)
            if i == hidden_after:
                hidden = x
        logits = self.head(self.ln_f(x))
        return logits if hidden_after is None else (logits, hidden)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def ema_weights(ck):
    """The moving average a train_arith.py --ema checkpoint keeps beside its last weights (torch's
    AveragedModel state: the model's tensors under "module.", plus its update count), as a state
    dict of the model; ValueError when the checkpoint has none."""
    if "ema" not in ck:
        raise ValueError("no moving average of the weights in it (trained without --ema)")
    return {k[len("module."):]: v for k, v in ck["ema"].items() if k.startswith("module.")}


def load_checkpoint(path, device="cpu", ema=False):
    """A train_arith.py checkpoint as a model in eval mode: its last weights, or with ``ema`` the
    moving average (what a --ema run evaluated and exported). Returns (model, checkpoint dict)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    m = ArithTransformer(**ck["model_cfg"])
    m.load_state_dict(ema_weights(ck) if ema else ck["model"])
    return m.to(device).eval(), ck


# ----------------------------------------------------------------------------- decoding

def torch_next_fn(model, device):
    """next_fn(tokens [b, T] int64 numpy, pos [b]) -> numpy logits [b, V] at pos."""
    @torch.no_grad()
    def fn(tokens, pos):
        x = torch.from_numpy(np.ascontiguousarray(tokens)).to(device)
        p = torch.from_numpy(pos).to(device)
        lg = model(x)
        return lg[torch.arange(len(pos), device=device), p].float().cpu().numpy()
    return fn


def ort_next_fn(session):
    def fn(tokens, pos):
        lg = session.run(["logits"], {"tokens": np.ascontiguousarray(tokens, dtype=np.int64)})[0]
        return lg[np.arange(len(pos)), pos]
    return fn


def greedy_decode(next_fn, prompts, max_new, context_len, chunk=1024):
    """Greedy continuation of each prompt (list of id lists): recomputes the whole prefix each
    step; rows are right-padded with PAD. Stops a row at END, after max_new tokens or at
    context_len. Returns the generated id lists (END included when produced)."""
    outs = []
    for s in range(0, len(prompts), chunk):
        ps = prompts[s:s + chunk]
        B = len(ps)
        ql = np.array([len(p) for p in ps], dtype=np.int64)
        L = int(min(context_len, ql.max() + max_new))
        arr = np.full((B, L), F.PAD, dtype=np.int64)
        for i, p in enumerate(ps):
            arr[i, :len(p)] = p
        lens = ql.copy()
        done = lens >= L
        gen = [[] for _ in range(B)]
        for _ in range(max_new):
            idx = np.nonzero(~done)[0]
            if len(idx) == 0:
                break
            T = int(lens[idx].max())
            logits = next_fn(arr[idx, :T], lens[idx] - 1)
            nxt = logits.argmax(-1).astype(np.int64)
            arr[idx, lens[idx]] = nxt
            lens[idx] += 1
            for j, t in zip(idx.tolist(), nxt.tolist()):
                gen[j].append(t)
            done[idx] |= (nxt == F.END) | (lens[idx] >= L)
        outs.extend(gen)
    return outs


def problems(op, fmt, width, pairs):
    """(prompts, expected) id lists for test-time questions (no spaces)."""
    prompts = [F.encode(F.make_question(a, b, op, fmt, width)) for a, b in pairs]
    expected = [F.encode(F.make_answer(a, b, op, fmt, width)) + [F.END] for a, b in pairs]
    return prompts, expected


def evaluate(next_fn, op, fmt, width, digits, n, seed, context_len, return_outputs=False):
    """Exact match on held-out pairs, both operands of exactly d digits, for d in digits.
    Returns {d: (correct, total)} (total 0 when no held-out pair or d > width for padrev)."""
    res, outs = {}, {}
    for d in digits:
        if fmt == "padrev" and d > width:
            res[d] = (0, 0)
            continue
        pairs = F.heldout_pairs(op, d, n, seed)
        if not pairs:
            res[d] = (0, 0)
            continue
        prompts, expected = problems(op, fmt, width, pairs)
        max_new = max(len(e) for e in expected)
        gen = greedy_decode(next_fn, prompts, max_new, context_len)
        ok = sum(g == e for g, e in zip(gen, expected))
        res[d] = (ok, len(pairs))
        outs[d] = (pairs, gen)
    return (res, outs) if return_outputs else res


def mixed_heldout(op, fmt, width, max_digits, n, seed):
    """n held-out pairs spread evenly over digit counts 1..max_digits (fewer only if the pools
    are exhausted; there is no 1-digit addition pair), for quick checks. Deterministic."""
    ds = [d for d in range(1, max_digits + 1) if not (fmt == "padrev" and d > width)]
    pools = {d: F.heldout_pairs(op, d, n, seed + 1000) for d in ds}
    pairs, k = [], 0
    while len(pairs) < n and any(k < len(p) for p in pools.values()):
        for d in ds:
            if k < len(pools[d]) and len(pairs) < n:
                pairs.append(pools[d][k])
        k += 1
    return pairs


def evaluate_context(next_fn, kind, digits, n, seed, context_len):
    """Exact match of a sentence model (context.py) on held-out pairs with d-digit operands:
    kind 'heldout' (held-out templates), 'train' (training templates) or 'plain' (a+b=).
    Returns {d: (correct, total)}."""
    import context as C
    res = {}
    for d in digits:
        pairs, prompts, expected = C.eval_set(kind, d, n, seed)
        if not pairs:
            res[d] = (0, 0)
            continue
        gen = greedy_decode(next_fn, prompts, max(len(e) for e in expected), context_len)
        res[d] = (sum(g == e for g, e in zip(gen, expected)), len(pairs))
    return res
