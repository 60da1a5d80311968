#!/usr/bin/env python3
"""Train a byte-level GPT of model.py (issue #7): the prose target, later the distilled drafts.

Data: random windows of `--seq` + 1 bytes from /work/shared/data/train/*.txt (a window never
crosses a file boundary); with probability `--p-strip-cr` a window has its '\\r' bytes removed
(the books are ~96% CRLF, prompts typed today are LF). Validation: a fixed 1 MiB sample of
/work/shared/data/valid/ (2048 windows of 513 bytes, seed 12345, CR kept), bits per byte over
every predicted position. /work/shared/data/eval is never read.

Optimizer: AdamW (betas 0.9/0.95, weight decay on matrices only), linear warm-up then cosine
decay to `--min-lr-frac` of the peak over the run's progress = training seconds / --time-budget
(or step / --max-steps when --max-steps is given, for equal-budget comparisons).

State: models/gen/work/<name>.pt (model, optimizer, step, tokens, training seconds, numpy and
torch RNG states, validation history), written every --ckpt-every seconds, on SIGTERM/SIGINT
and at the end. Rerunning the same command resumes from it; a run whose budget is spent
just evaluates and exits. Log: models/gen/work/<name>.log (and stdout).

Distillation (drafts; the hook for the next stage, smoke-tested only):
  --teacher CKPT            train on KL(p_teacher || q_student) per token instead of the data
                            cross-entropy ("plain KD", forward KL on all tokens)
  --teacher CKPT --ref CKPT --select-frac 0.4
                            AdaSPEC: per token gap = KL(p||q_student) - KL(p||q_ref) (q_ref: a
                            frozen reference draft, itself trained by plain KD); the loss is the
                            mean KL(p||q_student) over the top 40% tokens of the batch by gap.

Fine-tuning on other text (the on-policy KD draft of README.md; defaults keep the above):
  --train-glob PATTERN      training windows from these files instead of
                            /work/shared/data/train/*.txt (validation unchanged)
  --init CKPT               start the student from this checkpoint's weights (config must match)
                            instead of the random initialization; the optimizer starts fresh
  --loss-from K             loss only on the predictions at input positions >= K (e.g. 127: the
                            bytes after a 128-byte prompt); 0 = every position

Example (the target of README.md):
  nice -n 10 models/.venv/bin/python models/gen/train.py --name target --time-budget 21600
"""
import argparse
import glob
import math
import os
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import CONFIGS, ByteGPT, GPTConfig, build  # noqa: E402

WORK = os.path.join(HERE, "work")
DATA = "/work/shared/data"
CR = 13


# ----------------------------------------------------------------------------- data

def load_files(pattern):
    files = sorted(glob.glob(pattern))
    assert files, f"no files match {pattern}"
    arrs = [np.fromfile(f, dtype=np.uint8) for f in files]
    lens = np.array([len(a) for a in arrs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    return np.concatenate(arrs), starts, starts + lens, files


class Windows:
    """Random (seq+1)-byte windows inside one file, optionally with CR removed."""

    def __init__(self, data, starts, ends, seq, p_strip_cr):
        self.data, self.starts, self.ends, self.seq, self.p = data, starts, ends, seq, p_strip_cr
        self.extra = seq // 8 + 16  # raw bytes read beyond seq+1 so that seq+1 remain without CR

    def batch(self, rng, n):
        L = self.seq + 1
        out = np.empty((n, L), dtype=np.int64)
        strip = rng.random(n) < self.p
        pick = rng.integers(0, len(self.data), size=n)
        f = np.searchsorted(self.starts, pick, side="right") - 1
        for i in range(n):
            raw = L + (self.extra if strip[i] else 0)
            fs, fe = self.starts[f[i]], self.ends[f[i]]
            s = int(rng.integers(fs, max(fs, fe - raw) + 1))
            w = self.data[s:s + raw]
            if strip[i]:
                w2 = w[w != CR]
                w = w2 if len(w2) >= L else w
            w = w[:L]
            if len(w) < L:  # file shorter than a window (none in this corpus): pad by repeating
                w = np.resize(w, L)
            out[i] = w
        return torch.from_numpy(out)


def valid_sample(seq=512, n=2048, seed=12345):
    data, starts, ends, _ = load_files(os.path.join(DATA, "valid", "*.txt"))
    return Windows(data, starts, ends, seq, 0.0).batch(np.random.default_rng(seed), n)


@torch.no_grad()
def evaluate(model, vwin, bs=16):
    model.eval()
    tot, cnt = 0.0, 0
    for i in range(0, len(vwin), bs):
        w = vwin[i:i + bs]
        logits = model(w[:, :-1])
        tot += Fn.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1), reduction="sum").item()
        cnt += w[:, 1:].numel()
    model.train()
    return tot / cnt / math.log(2)


# ----------------------------------------------------------------------------- distillation

@torch.no_grad()
def agreement(teacher, model, vwin, bs=16):
    """How well a draft predicts its teacher on validation windows: mean KL(p_t || q) in bits,
    the rate at which their argmaxes agree (greedy speculative acceptance, token by token, on
    the data's contexts) and the mean of sum_x min(p_t, q) (the acceptance probability of
    speculative sampling at temperature 1)."""
    model.eval()
    kl = agree = acc = 0.0
    n = 0
    for i in range(0, len(vwin), bs):
        x = vwin[i:i + bs, :-1]
        lt = Fn.log_softmax(teacher(x), -1)
        lq = Fn.log_softmax(model(x), -1)
        kl += (lt.exp() * (lt - lq)).sum(-1).sum().item()
        agree += (lt.argmax(-1) == lq.argmax(-1)).sum().item()
        acc += torch.minimum(lt.exp(), lq.exp()).sum(-1).sum().item()
        n += x.numel()
    model.train()
    return dict(valid_kl_bits=round(kl / n / math.log(2), 4), valid_top1_agree=round(agree / n, 4),
                valid_accept_t1=round(acc / n, 4))


def load_frozen(path):
    ck = torch.load(path, weights_only=False, map_location="cpu")
    m = build(ck["config"])
    m.load_state_dict(ck["model"])
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def kl_per_token(t_logp, s_logits):
    """KL(p_t || q_s) per position (nats), t_logp: teacher log-probs, s_logits: student logits."""
    s_logp = Fn.log_softmax(s_logits, -1)
    return (t_logp.exp() * (t_logp - s_logp)).sum(-1)


# ----------------------------------------------------------------------------- training

def log(msg, fh):
    line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
    print(line, flush=True)
    fh.write(line + "\n")
    fh.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="target", help="run name: state in work/<name>.pt, log in work/<name>.log")
    ap.add_argument("--config", default=None, help=f"size, one of {list(CONFIGS)} (default: --name if listed)")
    ap.add_argument("--d-model", type=int, default=None)
    ap.add_argument("--n-layer", type=int, default=None)
    ap.add_argument("--n-head", type=int, default=None)
    ap.add_argument("--seq", type=int, default=512, help="window length (bytes fed; <= context_len)")
    ap.add_argument("--batch", type=int, default=8, help="windows per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200, help="steps")
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--p-strip-cr", type=float, default=0.5)
    ap.add_argument("--time-budget", type=float, default=21600.0, help="training seconds (eval excluded)")
    ap.add_argument("--max-steps", type=int, default=0, help="if > 0, the budget is steps, not seconds")
    ap.add_argument("--eval-every", type=int, default=800, help="steps between validations")
    ap.add_argument("--log-every", type=int, default=50, help="steps")
    ap.add_argument("--ckpt-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--teacher", default=None, help="distill from this checkpoint (forward KL) instead of data CE")
    ap.add_argument("--ref", default=None, help="AdaSPEC reference draft checkpoint (needs --teacher)")
    ap.add_argument("--select-frac", type=float, default=0.4, help="AdaSPEC: fraction of tokens trained on")
    ap.add_argument("--train-glob", default=None, help="training files (default /work/shared/data/train/*.txt)")
    ap.add_argument("--init", default=None, help="initialize the student's weights from this checkpoint")
    ap.add_argument("--loss-from", type=int, default=0, help="loss only on input positions >= this")
    args = ap.parse_args()
    assert args.ref is None or args.teacher, "--ref needs --teacher"

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    os.makedirs(WORK, exist_ok=True)
    ckpt = os.path.join(WORK, args.name + ".pt")
    logf = open(os.path.join(WORK, args.name + ".log"), "a")
    log("start: " + " ".join(sys.argv) + f" (pid {os.getpid()})", logf)

    base = CONFIGS.get(args.config or args.name, GPTConfig())
    cfg = GPTConfig(**{**base.__dict__, **{k: v for k, v in dict(
        d_model=args.d_model, n_layer=args.n_layer, n_head=args.n_head).items() if v is not None}})
    assert args.seq <= cfg.context_len
    torch.manual_seed(args.seed)
    model = ByteGPT(cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    st = dict(step=0, tokens=0, elapsed=0.0, history=[])
    rng = np.random.default_rng(args.seed)
    if args.init and not os.path.exists(ckpt):
        ik = torch.load(args.init, weights_only=False, map_location="cpu")
        assert ik["config"] == model.config(), ("config differs from --init", ik["config"], model.config())
        model.load_state_dict(ik["model"])
        log(f"initialized from {args.init} (its step {ik.get('step')}, mode {ik.get('mode')})", logf)
    if os.path.exists(ckpt):
        ck = torch.load(ckpt, weights_only=False)
        assert ck["config"] == model.config(), ("config differs from the checkpoint", ck["config"], model.config())
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        st = {k: ck[k] for k in st}
        rng.bit_generator.state = ck["np_rng"]
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed from {ckpt} at step {st['step']}, tokens {st['tokens']}, "
            f"training seconds {st['elapsed']:.0f}", logf)
    teacher = load_frozen(args.teacher) if args.teacher else None
    ref = load_frozen(args.ref) if args.ref else None
    mode = "adaspec" if ref is not None else "kd" if teacher is not None else "ce"
    log(f"config {model.config()} params {model.num_params()} mode {mode}", logf)

    data, starts, ends, files = load_files(args.train_glob or os.path.join(DATA, "train", "*.txt"))
    win = Windows(data, starts, ends, args.seq, args.p_strip_cr)
    vwin = valid_sample()
    log(f"train {len(data)} bytes in {len(files)} files; valid sample {vwin[:, 1:].numel()} bytes", logf)

    def save():
        tmp = ckpt + ".tmp"
        torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), config=model.config(),
                        np_rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                        args=vars(args), cmd=" ".join(sys.argv), mode=mode,
                        date=time.strftime("%Y-%m-%d %H:%M:%S"), **st), tmp)
        os.replace(tmp, ckpt)

    stop = {"sig": None}

    def on_signal(signum, _frame):
        stop["sig"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def progress():
        if args.max_steps > 0:
            return st["step"] / args.max_steps
        return st["elapsed"] / args.time_budget

    def validate():
        t = time.time()
        vb = evaluate(model, vwin)
        entry = dict(step=st["step"], tokens=st["tokens"], valid_bpb=round(vb, 4),
                     date=time.strftime("%Y-%m-%d %H:%M:%S"))
        extra = ""
        if teacher is not None:
            entry.update(agreement(teacher, model, vwin[:256]))
            extra = (f", vs teacher on 256 windows: KL {entry['valid_kl_bits']:.4f} bits, argmax agreement "
                     f"{entry['valid_top1_agree']:.4f}, sum min(p,q) {entry['valid_accept_t1']:.4f}")
        st["history"].append(entry)
        log(f"valid step {st['step']} tokens {st['tokens']} bpb {vb:.4f}{extra} ({time.time() - t:.0f}s)", logf)

    model.train()
    t_ckpt = time.time()
    acc = dict(loss=0.0, n=0, tok=0, t=time.time())
    while progress() < 1.0 and stop["sig"] is None:
        t0 = time.time()
        p = min(progress(), 1.0)
        lr = args.lr * min(1.0, (st["step"] + 1) / args.warmup) * (
            args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))
        for g in opt.param_groups:
            g["lr"] = lr
        w = win.batch(rng, args.batch)
        x, y = w[:, :-1], w[:, 1:]
        logits = model(x)
        if args.loss_from > 0:  # only the predictions at positions >= loss_from count
            logits, y = logits[:, args.loss_from:], y[:, args.loss_from:]
        if mode == "ce":
            loss = Fn.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
        else:
            with torch.no_grad():
                t_logp = Fn.log_softmax(teacher(x), -1)
                if args.loss_from > 0:
                    t_logp = t_logp[:, args.loss_from:]
            kl = kl_per_token(t_logp, logits).reshape(-1)
            if mode == "kd":
                loss = kl.mean()
            else:
                with torch.no_grad():
                    gap = kl.detach() - kl_per_token(t_logp, ref(x)[:, args.loss_from:]).reshape(-1)
                    k = max(1, int(round(args.select_frac * gap.numel())))
                    sel = gap.topk(k).indices
                loss = kl[sel].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        st["step"] += 1
        st["tokens"] += x.numel()
        st["elapsed"] += time.time() - t0
        acc["loss"] += loss.item()
        acc["n"] += 1
        acc["tok"] += x.numel()
        if st["step"] % args.log_every == 0:
            now = time.time()
            unit = "bpb" if mode == "ce" else "kl bits"
            log(f"step {st['step']} tokens {st['tokens']} loss {acc['loss'] / acc['n'] / math.log(2):.4f} {unit} "
                f"lr {lr:.2e} {acc['tok'] / (now - acc['t']):.0f} tok/s training {st['elapsed']:.0f}s "
                f"({100 * p:.1f}%)", logf)
            acc = dict(loss=0.0, n=0, tok=0, t=time.time())
        if st["step"] % args.eval_every == 0:
            validate()
            acc["t"] = time.time()
        if time.time() - t_ckpt > args.ckpt_every:
            save()
            t_ckpt = time.time()
            log(f"checkpoint {ckpt} at step {st['step']}", logf)
    if stop["sig"] is not None:
        save()
        log(f"signal {stop['sig']}: checkpoint at step {st['step']}; rerun the same command to resume", logf)
        return
    if not st["history"] or st["history"][-1]["step"] != st["step"]:
        validate()
    save()
    log(f"done: step {st['step']} tokens {st['tokens']} training {st['elapsed']:.0f}s; "
        f"valid bpb {st['history'][-1]['valid_bpb']:.4f}", logf)


if __name__ == "__main__":
    main()
