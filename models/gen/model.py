#!/usr/bin/env python3
"""Byte-level GPT for arca's speculative generation (issue #7): target and draft models.

Vocabulary: the 256 byte values, no special tokens; a prompt is its raw UTF-8 bytes.

Architecture (same code for target and draft, sizes from CONFIGS or the command line):

    byte embedding 256 x d  (tied: also the output head, logits = h @ E^T)
    n_layer pre-norm blocks:
        x = x + Wo . attn(rope(Wq . rms(x)), rope(Wk . rms(x)), Wv . rms(x))   causal, n_head heads
        x = x + W2 . gelu(W1 . rms(x))                                        MLP 4x, exact (erf) GELU
    final RMSNorm -> logits [.., 256]

No biases anywhere; RMSNorm (with a learned gain, eps 1e-5); rotary position embeddings (RoPE,
base 10000, rotate-half convention) on q and k of every head.

Why RoPE and not learned positions: with a KV cache the position of a new token is just the past
length, and RoPE needs no table lookup for it (the graph computes sin/cos of past + i), so any
position is legal in the graph (no Gather past the end of a 512-row table, which tract would
reject at run time); keys are cached already rotated, so a cached key never needs the position
again; and scores depend only on relative distance, which is what a sliding window over a long
generation wants. It also costs no parameters (a learned table would be 512 x d) and trained a
little better than learned positions in published small-model comparisons. The model is trained
on windows of at most `context_len` (512) bytes, so that is the context it is good for.

The forward pass here is also the reference for the ONNX graph of export.py:
`forward(idx, past)` with `past` a list of (key, value) [batch, heads, past, head_dim] per layer
returns logits and the presents (past + new, keys rotated), exactly the graph's contract.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as Fn

VOCAB = 256


@dataclass
class GPTConfig:
    d_model: int = 192
    n_layer: int = 6
    n_head: int = 6
    mlp_mult: int = 4
    context_len: int = 512
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    vocab_size: int = VOCAB

    @property
    def head_dim(self):
        return self.d_model // self.n_head


# Named sizes. `target` is the prose target of issue #7; `draft-*` are candidates for the
# distilled drafts (10-30x fewer parameters than the target). See README.md for measured speeds.
CONFIGS = {
    "target": GPTConfig(d_model=192, n_layer=4, n_head=6),        # 1.82M parameters
    "target-m": GPTConfig(d_model=192, n_layer=6, n_head=6),      # 2.71M
    "target-l": GPTConfig(d_model=256, n_layer=6, n_head=8),      # 4.78M
    "target-s": GPTConfig(d_model=160, n_layer=5, n_head=5),      # 1.57M
    "draft-80": GPTConfig(d_model=80, n_layer=2, n_head=2),       # 0.17M (10x smaller than target)
    "draft-64": GPTConfig(d_model=64, n_layer=2, n_head=2),       # 0.12M (16x smaller)
    "draft-48": GPTConfig(d_model=48, n_layer=2, n_head=2),       # 0.07M (27x smaller)
}


def rope_inv_freq(cfg):
    """inv_freq[j] = base^(-2j/head_dim), float32 [head_dim/2] (the graph stores these values)."""
    hd = cfg.head_dim
    return (1.0 / (cfg.rope_base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))).float()


def rope_cos_sin(cfg, past, seq, device=None):
    """cos, sin float32 [seq, head_dim] for positions past .. past+seq-1 (float32 arithmetic,
    same order as the graph: Cast(pos) * inv_freq, then Sin/Cos, then Concat(x, x))."""
    pos = torch.arange(past, past + seq, dtype=torch.int64, device=device).float()
    ang = pos[:, None] * rope_inv_freq(cfg).to(device)[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)
    return torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, self.h, self.hd = cfg.d_model, cfg.n_head, cfg.head_dim
        assert d % cfg.n_head == 0 and self.hd % 2 == 0, "head_dim must be even (RoPE)"
        self.norm1 = RMSNorm(d, cfg.norm_eps)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.norm2 = RMSNorm(d, cfg.norm_eps)
        self.w1 = nn.Linear(d, cfg.mlp_mult * d, bias=False)
        self.w2 = nn.Linear(cfg.mlp_mult * d, d, bias=False)

    def forward(self, x, cos, sin, past=None):
        B, T, C = x.shape
        h = self.norm1(x)
        q = self.wq(h).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.h, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.h, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is None:  # training / full sequence: fused causal kernel
            y = Fn.scaled_dot_product_attention(q, k, v, is_causal=True)
            present = (k, v)
        else:  # cached: query i (position P+i) sees keys 0..P+i
            k = torch.cat([past[0], k], 2)
            v = torch.cat([past[1], v], 2)
            P = past[0].shape[2]
            qpos = torch.arange(P, P + T, device=x.device)
            kpos = torch.arange(P + T, device=x.device)
            mask = kpos[None, :] > qpos[:, None]
            att = (q * (1.0 / math.sqrt(self.hd))) @ k.transpose(2, 3)
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            y = att @ v
            present = (k, v)
        x = x + self.wo(y.transpose(1, 2).reshape(B, T, C))
        x = x + self.w2(Fn.gelu(self.w1(self.norm2(x))))
        return x, present


class ByteGPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.apply(self._init)
        for b in self.blocks:  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))
            nn.init.normal_(b.w2.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def config(self):
        return asdict(self.cfg)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, past=None, return_present=False):
        """idx int64 [B, T]. past: None, or a list of n_layer (key, value) [B, H, P, hd].
        Returns logits [B, T, 256] (and the presents if return_present or past is given)."""
        P = 0 if past is None else past[0][0].shape[2]
        cos, sin = rope_cos_sin(self.cfg, P, idx.shape[1], idx.device)
        x = self.emb(idx)
        presents = []
        for i, b in enumerate(self.blocks):
            x, pr = b(x, cos, sin, None if past is None else past[i])
            presents.append(pr)
        logits = self.norm_f(x) @ self.emb.weight.t()
        if return_present or past is not None:
            return logits, presents
        return logits

    def empty_past(self, batch=1):
        c = self.cfg
        z = torch.zeros(batch, c.n_head, 0, c.head_dim)
        return [(z, z) for _ in range(c.n_layer)]

    @torch.no_grad()
    def generate(self, prompt: bytes, n: int, temperature=1.0, seed=0):
        """Sample n bytes after `prompt` with the KV cache (sanity check / reference)."""
        g = torch.Generator().manual_seed(seed)
        ids = torch.tensor([list(prompt)], dtype=torch.int64)
        logits, past = self(ids, self.empty_past(1))
        out = []
        for _ in range(n):
            p = torch.softmax(logits[0, -1] / max(temperature, 1e-6), -1)
            t = int(torch.multinomial(p, 1, generator=g)) if temperature > 0 else int(p.argmax())
            out.append(t)
            logits, past = self(torch.tensor([[t]]), past)
        return bytes(out)


def build(cfg_dict_or_name):
    if isinstance(cfg_dict_or_name, str):
        return ByteGPT(CONFIGS[cfg_dict_or_name])
    return ByteGPT(GPTConfig(**cfg_dict_or_name))


if __name__ == "__main__":
    for name, c in CONFIGS.items():
        print(f"{name:10s} d {c.d_model:3d} L {c.n_layer} H {c.n_head}  params {ByteGPT(c).num_params():,}")
