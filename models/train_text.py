#!/usr/bin/env python3
"""Train the arca `text-small` byte-level next-byte predictor (fixed-window MLP, integer-exact QAT).

The model predicts byte t from the N previous bytes (oldest first; positions before the start of
the data are PAD = 256). Architecture:

    shared byte embedding (257 x D, int8 values) -> concat N positions (N*D inputs)
    -> hidden layers: int8 x int8 MatMul, int32 bias, int32 requantization to a table index,
       quantized GELU as a 256-entry lookup table (output int8)
    -> output layer: int8 x int8 MatMul, int32 bias, int32 requantization to fixed-point
       natural-log logits with F fractional bits.

Training is quantization-aware: the forward pass in QAT mode computes exactly the integer
pipeline that export_text.py emits (integer-valued float32 tensors, straight-through estimator
for every rounding), up to ties in rounding. The quantization helpers here are shared with the
exporter, so the exported requantization multipliers are the ones used in training.

Resumable: state lives in models/work/ckpt.pt; rerunning the same command continues.
Logs go to models/work/train.log (and stdout).
"""
import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

PAD = 256
VOCAB = 256
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
DATA = "/work/shared/data"

# Requantization budget: |(acc + bias) * m| must stay <= 2^29 so that
# (acc + bias) * m + 2^(s-1) + 2^30 is in [0, 2^31).
REQ_BOUND_LOG2 = 29
OFFSET_LOG2 = 30
MAX_SHIFT = 29


# ----------------------------------------------------------------------------- quantization helpers

def round_ste(x):
    return x + (torch.round(x) - x).detach()


def gelu_np(x):
    # exact-erf GELU, float64 (table construction only)
    from math import erf
    return np.array([0.5 * v * (1.0 + erf(v / math.sqrt(2.0))) for v in np.asarray(x, dtype=np.float64).ravel()]).reshape(np.shape(x))


def quant_multiplier(ratio, bound):
    """Per-channel integer requantization (m, s) with m / 2^s ~= ratio and bound * m <= 2^29.

    ratio: float64 array (>0), bound: int64 array (>=1) = max |acc + bias| per channel.
    Returns int64 arrays m (>=1), s (0..MAX_SHIFT). Deterministic numpy; used by training
    (to mirror the exported integers) and by export.
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    bound = np.maximum(np.asarray(bound, dtype=np.int64), 1)
    mmax = np.floor((2.0 ** REQ_BOUND_LOG2) / bound)  # largest allowed multiplier
    # largest s with round(ratio*2^s) <= mmax
    s = np.floor(np.log2(mmax / ratio)).astype(np.int64)
    s = np.clip(s, 0, MAX_SHIFT)
    m = np.round(ratio * np.exp2(s)).astype(np.int64)
    over = m > mmax
    while over.any():
        s = np.where(over, s - 1, s)
        m = np.round(ratio * np.exp2(s)).astype(np.int64)
        over = (m > mmax) & (s > 0)
    m = np.maximum(m, 1)
    return m, s


class QLinear(nn.Module):
    """Linear layer with per-output-channel symmetric int8 weights (values in [-127,127])."""

    def __init__(self, k, m):
        super().__init__()
        self.w = nn.Parameter(torch.randn(k, m) / math.sqrt(k))
        self.b = nn.Parameter(torch.zeros(m))

    def wscale(self):
        return (self.w.detach().abs().amax(0).clamp_min(1e-8) / 127.0)

    def qweights(self):
        s = self.wscale()
        wi = torch.clamp(round_ste(self.w / s), -127, 127)
        return wi, s


class TextMLP(nn.Module):
    def __init__(self, n_ctx=32, d_emb=16, hidden=(512, 512), frac_bits=10, act_scale=1.0 / 16):
        super().__init__()
        self.n_ctx, self.d_emb, self.hidden, self.frac_bits = n_ctx, d_emb, tuple(hidden), frac_bits
        self.emb = nn.Parameter(torch.randn(PAD + 1, d_emb) * 0.5)
        dims = [n_ctx * d_emb] + list(hidden)
        self.layers = nn.ModuleList([QLinear(dims[i], dims[i + 1]) for i in range(len(hidden))])
        self.out = QLinear(dims[-1], VOCAB)
        # log of the pre-activation quantization step of each hidden layer (table input step;
        # the GELU table output uses the same step, so the table is ~identity for large inputs)
        self.log_sy = nn.Parameter(torch.full((len(hidden),), math.log(act_scale)))

    def config(self):
        return dict(n_ctx=self.n_ctx, d_emb=self.d_emb, hidden=list(self.hidden), frac_bits=self.frac_bits)

    def emb_scale(self):
        return self.emb.detach().abs().max().clamp_min(1e-8) / 127.0

    # -------------------------------------------------------------- float forward (pretraining)
    def forward_float(self, ctx):
        x = self.emb[ctx].reshape(ctx.shape[0], -1)
        for i, l in enumerate(self.layers):
            x = Fn.gelu(x @ l.w + l.b)
        return x @ self.out.w + self.out.b

    # -------------------------------------------------------------- QAT forward (integer pipeline)
    def _requant_ratio(self, wi, b_int, s_in, s_w, target):
        """ratio = s_in*s_w/target, quantized to m/2^s exactly as export does (STE)."""
        ratio = s_in * s_w / target
        bound = (wi.detach().abs().sum(0) * 127.0 + b_int.detach().abs()).cpu().numpy().astype(np.int64)
        m, s = quant_multiplier(ratio.detach().cpu().double().numpy(), bound)
        rq = torch.tensor(m / np.exp2(s), dtype=torch.float32)
        return ratio + (rq - ratio).detach()

    def forward_qat(self, ctx):
        s_e = self.emb_scale()
        ei = torch.clamp(round_ste(self.emb / s_e), -127, 127)
        x = ei[ctx].reshape(ctx.shape[0], -1)  # integer values
        s_in = s_e
        for i, l in enumerate(self.layers):
            wi, s_w = l.qweights()
            sy = torch.exp(self.log_sy[i])
            b_int = round_ste(l.b / (s_in * s_w))
            acc = x @ wi + b_int  # exact integers
            r = self._requant_ratio(wi, b_int, s_in, s_w, sy)
            q = torch.clamp(round_ste(acc * r), -128, 127)
            # table: T[q] = clip(round(gelu(q*sy)/sy), -127, 127)
            x = torch.clamp(round_ste(Fn.gelu(q * sy) / sy), -127, 127)
            s_in = sy
        wi, s_w = self.out.qweights()
        b_int = round_ste(self.out.b / (s_in * s_w))
        acc = x @ wi + b_int
        r = self._requant_ratio(wi, b_int, s_in, s_w, torch.tensor(2.0 ** -self.frac_bits))
        return round_ste(acc * r) * (2.0 ** -self.frac_bits)

    def forward(self, ctx, qat=True):
        return self.forward_qat(ctx) if qat else self.forward_float(ctx)

    # -------------------------------------------------------------- integer parameters for export
    @torch.no_grad()
    def integer_params(self):
        """All integer parameters of the exported pipeline (numpy int64)."""
        F = self.frac_bits
        s_e = float(self.emb_scale())
        E = np.clip(np.round(self.emb.double().numpy() / s_e), -127, 127).astype(np.int64)
        layers = []
        s_in = s_e
        xlo, xhi = -127, 127
        for i, l in enumerate(list(self.layers) + [self.out]):
            last = i == len(self.layers)
            s_w = l.wscale().double().numpy()
            W = np.clip(np.round(l.w.double().numpy() / s_w), -127, 127).astype(np.int64)
            b = np.round(l.b.double().numpy() / (s_in * s_w)).astype(np.int64)
            target = 2.0 ** -F if last else math.exp(float(self.log_sy[i]))
            bound_train = np.abs(W).sum(0) * 127 + np.abs(b)
            m, s = quant_multiplier(s_in * s_w / target, bound_train)
            L = dict(W=W, b=b, m=m, s=s, xlo=xlo, xhi=xhi)
            if not last:
                sy = target
                q = np.arange(-128, 128)
                T = np.clip(np.round(gelu_np(q * sy) / sy), -127, 127).astype(np.int64)
                L["table"] = T
                L["sy"] = sy
                xlo, xhi = int(T.min()), int(T.max())
                s_in = sy
            layers.append(L)
        return dict(E=E, layers=layers, n_ctx=self.n_ctx, d_emb=self.d_emb, frac_bits=F)


# ----------------------------------------------------------------------------- data

def load_corpus(pattern, lf_copy=False):
    """The files matching `pattern` as one byte array with each file's start offset. With
    `lf_copy`, every file is followed by a copy of itself with CR bytes removed (LF line ends), so
    a model trained on CRLF books also sees LF text; returns the offset where the copies start
    in `starts` order (files, then copies) so sampling can weight the two halves."""
    files = sorted(glob.glob(pattern))
    parts = [(files, b"\r\n", b"\r\n")]
    if lf_copy:
        parts.append((files, b"\r", b""))
    data, starts, _ = load_parts(parts)
    return data, starts, files


def load_parts(parts):
    """Several corpora as one byte array: `parts` is a list of (files, old, new), each file read
    with `old` replaced by `new` (line-end variants). Returns the bytes, every file's start, and
    each part's [lo, hi) range, so sampling can weight the parts."""
    arrs, starts, ranges, pos = [], [], [], 0
    for files, old, new in parts:
        lo = pos
        for f in files:
            with open(f, "rb") as fh:
                raw = fh.read()
            if old != new:
                raw = raw.replace(old, new)
            arrs.append(np.frombuffer(raw, dtype=np.uint8))
            starts.append(pos)
            pos += len(arrs[-1])
        ranges.append((lo, pos))
    return np.concatenate(arrs), np.array(starts, dtype=np.int64), ranges


def make_contexts(data, starts, idx, n_ctx, rng=None, p_trunc=0.0):
    """Contexts (int64 [B, n_ctx]) for targets data[idx]; PAD before the target's file start.
    With probability p_trunc a context is cut at a random point (simulated block start)."""
    offs = idx[:, None] + np.arange(-n_ctx, 0)[None, :]
    fs = starts[np.searchsorted(starts, idx, side="right") - 1]
    ctx = data[np.clip(offs, 0, None)].astype(np.int64)
    ctx[offs < fs[:, None]] = PAD
    if rng is not None and p_trunc > 0:
        cut = rng.random(len(idx)) < p_trunc
        if cut.any():
            k = rng.integers(1, n_ctx + 1, size=len(idx))
            mask = (np.arange(n_ctx)[None, :] < k[:, None]) & cut[:, None]
            ctx[mask] = PAD
    return ctx


# ----------------------------------------------------------------------------- training

def log(msg, fh=None):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if fh is not None:
        fh.write(line + "\n")
        fh.flush()


@torch.no_grad()
def evaluate(model, vdata, vstarts, vidx, n_ctx, qat, bs=4096):
    model.eval()
    tot = 0.0
    for i in range(0, len(vidx), bs):
        idx = vidx[i:i + bs]
        ctx = torch.from_numpy(make_contexts(vdata, vstarts, idx, n_ctx))
        y = torch.from_numpy(vdata[idx].astype(np.int64))
        logits = model(ctx, qat=qat)
        tot += Fn.cross_entropy(logits, y, reduction="sum").item()
    model.train()
    return tot / len(vidx) / math.log(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(WORK, "ckpt.pt"))
    ap.add_argument("--log", default=os.path.join(WORK, "train.log"))
    ap.add_argument("--n-ctx", type=int, default=32)
    ap.add_argument("--d-emb", type=int, default=16)
    ap.add_argument("--hidden", default="512,512")
    ap.add_argument("--frac-bits", type=int, default=10)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-min-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--time-budget", type=float, default=5000.0,
                    help="training seconds; the LR decays linearly over this wall time")
    ap.add_argument("--float-steps", type=int, default=2000, help="float pretraining steps before QAT")
    ap.add_argument("--p-trunc", type=float, default=0.03)
    ap.add_argument("--eval-every", type=float, default=600.0, help="seconds")
    ap.add_argument("--ckpt-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--valid-positions", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lf-frac", type=float, default=0.0,
                    help="fraction of training positions drawn from a copy of the corpus with CR "
                         "removed (the books are CRLF; much real text is LF)")
    ap.add_argument("--mixed-frac", type=float, default=0.0,
                    help="fraction of training positions drawn from data/mixed/train (source code, "
                         "C headers, man pages, changelogs, JSON; LF line ends)")
    ap.add_argument("--mixed-crlf-frac", type=float, default=0.0,
                    help="of the mixed positions, the fraction drawn from a copy with CRLF line "
                         "ends")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    os.makedirs(os.path.dirname(args.ckpt), exist_ok=True)
    logf = open(args.log, "a")
    log("start: " + " ".join(sys.argv), logf)

    books = sorted(glob.glob(os.path.join(DATA, "train", "*.txt")))
    mixed = sorted(glob.glob(os.path.join(DATA, "mixed", "train", "*.txt")))
    # (files, old, new, share of the training positions)
    parts = [(books, b"\r\n", b"\r\n", (1 - args.mixed_frac) * (1 - args.lf_frac)),
             (books, b"\r", b"", (1 - args.mixed_frac) * args.lf_frac),
             (mixed, b"\n", b"\n", args.mixed_frac * (1 - args.mixed_crlf_frac)),
             (mixed, b"\n", b"\r\n", args.mixed_frac * args.mixed_crlf_frac)]
    parts = [p for p in parts if p[3] > 0]
    data, starts, ranges = load_parts([p[:3] for p in parts])
    shares = np.array([p[3] for p in parts]) / sum(p[3] for p in parts)
    files = books + (mixed if args.mixed_frac > 0 else [])
    # Validation on each kind of text the model is for: books, and (if trained on) mixed.
    valids = [("books", *load_corpus(os.path.join(DATA, "valid", "*.txt"))[:2])]
    if args.mixed_frac > 0:
        valids.append(("mixed", *load_corpus(os.path.join(DATA, "mixed", "valid", "*.txt"))[:2]))
    log(f"train bytes {len(data)} in {len(files)} files, parts {[(hi - lo) for lo, hi in ranges]} "
        f"sampled {np.round(shares, 3).tolist()}; valid bytes "
        f"{[(n, len(v)) for n, v, _ in valids]}", logf)
    vrng = np.random.default_rng(12345)
    valids = [(n, v, vs, np.sort(vrng.choice(len(v), size=min(args.valid_positions, len(v)),
                                             replace=False)))
              for n, v, vs in valids]

    def valid_report(qat):
        return " ".join(f"{n} {evaluate(model, v, vs, vi, args.n_ctx, qat):.4f}"
                        for n, v, vs, vi in valids)

    hidden = [int(h) for h in args.hidden.split(",") if h]
    model = TextMLP(args.n_ctx, args.d_emb, hidden, args.frac_bits)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, tokens, elapsed = 0, 0, 0.0
    rng = np.random.default_rng(args.seed)
    if os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, weights_only=False)
        assert ck["config"] == model.config(), (ck["config"], model.config())
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, tokens, elapsed = ck["step"], ck["tokens"], ck["elapsed"]
        rng = np.random.default_rng(args.seed + step)
        log(f"resumed from {args.ckpt} at step {step}, tokens {tokens}, elapsed {elapsed:.0f}s", logf)
    nparams = sum(p.numel() for p in model.parameters()) - model.log_sy.numel()
    log(f"config {model.config()} params {nparams}", logf)

    def save():
        tmp = args.ckpt + ".tmp"
        torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), config=model.config(),
                        step=step, tokens=tokens, elapsed=elapsed, args=vars(args),
                        cmd=" ".join(sys.argv), date=time.strftime("%Y-%m-%d %H:%M:%S")), tmp)
        os.replace(tmp, args.ckpt)

    t_last = time.time()
    t_eval = t_ckpt = t_last
    loss_acc, n_acc, tok_acc, t_rate = 0.0, 0, 0, time.time()
    model.train()
    while elapsed < args.time_budget:
        qat = step >= args.float_steps
        frac = min(elapsed / args.time_budget, 1.0)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (1.0 - (1.0 - args.lr_min_frac) * frac)
        for g in opt.param_groups:
            g["lr"] = lr
        counts = rng.multinomial(args.batch, shares)
        idx = np.concatenate([rng.integers(lo, hi, size=c) for (lo, hi), c in zip(ranges, counts)])
        ctx = torch.from_numpy(make_contexts(data, starts, idx, args.n_ctx, rng, args.p_trunc))
        y = torch.from_numpy(data[idx].astype(np.int64))
        logits = model(ctx, qat=qat)
        loss = Fn.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        tokens += args.batch
        loss_acc += loss.item()
        n_acc += 1
        tok_acc += args.batch
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if n_acc == 200:
            log(f"step {step} tokens {tokens} loss {loss_acc / n_acc / math.log(2):.4f} bpb "
                f"lr {lr:.2e} {'qat' if qat else 'float'} {tok_acc / (now - t_rate):.0f} tok/s "
                f"elapsed {elapsed:.0f}s", logf)
            loss_acc, n_acc, tok_acc, t_rate = 0.0, 0, 0, time.time()
        if now - t_eval > args.eval_every:
            log(f"valid step {step} tokens {tokens} bpb {valid_report(qat)} "
                f"({'qat' if qat else 'float'})", logf)
            t_eval = time.time()
            t_last = time.time()  # do not count eval time in training time
        if now - t_ckpt > args.ckpt_every:
            save()
            t_ckpt = time.time()
    save()
    log(f"final valid step {step} tokens {tokens} bpb {valid_report(True)} (qat)", logf)


if __name__ == "__main__":
    main()
