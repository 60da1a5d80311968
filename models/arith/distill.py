#!/usr/bin/env python3
"""Distill a small draft ArithTransformer from the padded adder (speculative generation, issue #7).

Teacher: an .arcm bundle read back with arcm.py (default models/arith/trained/arith-add-padrev.arcm,
802k parameters, 100% held-out exact match on 10-digit addition in the `padrev` format). Data:
formats.train_batch (add, padrev, width 10, operands of 1..10 digits, held-out pairs never drawn).
The loss covers only the answer positions, exactly the mask of train_arith.py: the positions that
predict the answer tokens and END (wmask = (pos >= qlen) & (pos < length), pos = 1..L-1).

Modes:
  kd       mean forward KL(p_teacher || q_draft) over the masked positions of the batch
  adaspec  (--ref CKPT, a frozen reference draft trained by kd) per masked token
           gap = KL(p_t || q_draft) - KL(p_t || q_ref), computed without grad; the loss is the
           mean KL(p_t || q_draft) over the top --select-frac (0.4) of the batch's masked tokens
           by gap (AdaSPEC: train on the tokens the draft can still learn).

Matched budget: same --seed (same initialization and data stream), --steps and --batch for both.
AdamW (betas 0.9/0.98, weight decay 0.1 on matrices), linear warm-up then cosine decay to
--lr-min-frac of --lr over --steps, gradient clipping 1.0.

Resumable: models/work/arith-gen/NAME.pt holds model, optimizer, rng states and counters; saved
every --ckpt-every seconds, on SIGTERM/SIGINT and at the end. Rerunning the same command resumes.
Log: models/work/arith-gen/NAME.log (appended).

Final evaluation (stored in the checkpoint under "final" and logged):
  - held-out exact match by digit count (arith_model.evaluate, --eval-n per digit count, 2..10)
  - vs the teacher on the same held-out problems, teacher-forced on the teacher's own greedy
    answers: argmax agreement over the answer positions (= per-token acceptance of greedy
    speculative decoding), mean KL(p_t || q_draft) (nats) and mean sum_v min(p_t, q) there.

Examples:
  models/.venv/bin/python models/arith/distill.py --bench --batch 128 256
  models/.venv/bin/python models/arith/distill.py --name draft-kd --steps 3000 --batch 128
  models/.venv/bin/python models/arith/distill.py --name draft-adaspec --ref models/work/arith-gen/draft-kd.pt \\
      --steps 3000 --batch 128
"""
import argparse
import datetime
import math
import os
import shlex
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import formats as F  # noqa: E402
from arcm import load_model as load_arcm  # noqa: E402
from arith_model import ArithTransformer, evaluate, n_params, problems, torch_next_fn  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(ROOT, "models", "work", "arith-gen")
TEACHER = os.path.join(HERE, "trained", "arith-add-padrev.arcm")
OP, FMT, WIDTH, MAX_DIGITS = "+", "padrev", 10, 10


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="draft-kd")
    ap.add_argument("--teacher", default=os.path.relpath(TEACHER, ROOT), help=".arcm bundle of the teacher")
    ap.add_argument("--ref", default=None, help="AdaSPEC: the frozen reference draft (a finished kd checkpoint)")
    ap.add_argument("--select-frac", type=float, default=0.4, help="AdaSPEC: fraction of masked tokens trained on")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--d-model", type=int, default=48)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-min-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=1000, help="steps between quick agreement checks")
    ap.add_argument("--ckpt-every", type=float, default=120.0, help="seconds")
    ap.add_argument("--eval-n", type=int, default=500, help="held-out problems per digit count, final eval")
    ap.add_argument("--work", default=WORK)
    ap.add_argument("--reeval", action="store_true", help="a finished run: recompute and store the final evaluation")
    ap.add_argument("--bench", action="store_true", help="only time training steps at each --bench-batch")
    ap.add_argument("--bench-batch", type=int, nargs="*", default=[128, 256])
    a = ap.parse_args(argv)
    a.mode = "adaspec" if a.ref else "kd"
    return a


def kl_per_token(t_logp, s_logits):
    """KL(p_t || q_s) per position (nats); t_logp teacher log-probs, s_logits student logits."""
    s_logp = Fn.log_softmax(s_logits, -1)
    return (t_logp.exp() * (t_logp - s_logp)).sum(-1)


def load_frozen_ckpt(path):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    m = ArithTransformer(**{k: v for k, v in ck["model_cfg"].items() if k != "vocab"})
    m.load_state_dict(ck["model"])
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m, ck


def load_teacher(path):
    t, _ = load_arcm(path if os.path.isabs(path) else os.path.join(ROOT, path))
    for p in t.parameters():
        p.requires_grad_(False)
    return t


def answer_slice(qlen, length):
    """padrev: every sequence has the same qlen and length, so the mask is one contiguous slice of
    logit positions t (logits[:, t] predicts token t+1): t = qlen-1 .. length-2."""
    assert (qlen == qlen[0]).all() and (length == length[0]).all()
    return int(qlen[0]) - 1, int(length[0]) - 1


def make_student(a):
    torch.manual_seed(a.seed)
    ctx = F.max_seq_len(OP, FMT, MAX_DIGITS, WIDTH)
    return ArithTransformer(ctx, a.d_model, a.layers, a.heads)


def make_opt(a, model):
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (decay if p.dim() >= 2 and not n_.startswith(("tok.", "pos.")) else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))


def loss_fn(a, model, teacher, ref, toks, qlen, length):
    """(loss, mean KL over all masked tokens) for one batch."""
    s, e = answer_slice(qlen, length)
    x = torch.from_numpy(toks[:, :-1])
    with torch.no_grad():
        t_logp = Fn.log_softmax(teacher(x)[:, s:e], -1)
    kl = kl_per_token(t_logp, model(x)[:, s:e]).reshape(-1)
    if a.mode == "kd":
        return kl.mean(), kl.detach().mean()
    with torch.no_grad():
        gap = kl.detach() - kl_per_token(t_logp, ref(x)[:, s:e]).reshape(-1)
        k = max(1, int(round(a.select_frac * gap.numel())))
        sel = gap.topk(k).indices
    return kl[sel].mean(), kl.detach().mean()


@torch.no_grad()
def agreement(teacher, model, pairs_by_d, chunk=2048):
    """Teacher-forced on the teacher's greedy answers (question + teacher answer + END):
    per digit count and overall, argmax agreement, mean KL(p_t||q) (nats) and mean sum min(p,q)
    over the answer positions (the positions that predict the answer digits and END)."""
    out, tot = {}, dict(n=0, agree=0.0, kl=0.0, minpq=0.0)
    tnext = torch_next_fn(teacher, "cpu")
    from arith_model import greedy_decode
    for d, pairs in pairs_by_d.items():
        prompts, expected = problems(OP, FMT, WIDTH, pairs)
        gen = greedy_decode(tnext, prompts, max(len(x) for x in expected), teacher.cfg["context_len"])
        seqs = [p + g for p, g in zip(prompts, gen)]
        ql = len(prompts[0])
        L = max(len(s) for s in seqs)
        arr = np.full((len(seqs), L), F.PAD, dtype=np.int64)
        for i, s in enumerate(seqs):
            arr[i, :len(s)] = s
        # answer positions: logits t = ql-1 .. ql-1+len(gen)-1 (END included when produced)
        glen = np.array([len(g) for g in gen])
        stats = dict(n=0, agree=0.0, kl=0.0, minpq=0.0)
        for c in range(0, len(seqs), chunk):
            x = torch.from_numpy(arr[c:c + chunk, :-1])
            tl = teacher(x)[:, ql - 1:]
            sl = model(x)[:, ql - 1:]
            m = torch.from_numpy(np.arange(tl.shape[1])[None, :] < glen[c:c + chunk, None])
            t_logp = Fn.log_softmax(tl, -1)
            s_logp = Fn.log_softmax(sl, -1)
            kl = (t_logp.exp() * (t_logp - s_logp)).sum(-1)
            minpq = torch.minimum(t_logp.exp(), s_logp.exp()).sum(-1)
            ag = (tl.argmax(-1) == sl.argmax(-1)).float()
            stats["n"] += int(m.sum())
            stats["agree"] += float((ag * m).sum())
            stats["kl"] += float((kl * m).sum())
            stats["minpq"] += float((minpq * m).sum())
        for k in tot:
            tot[k] += stats[k]
        out[str(d)] = dict(tokens=stats["n"], agree=int(stats["agree"]), argmax_agreement=stats["agree"] / stats["n"],
                           kl_nats=stats["kl"] / stats["n"], sum_min_pq=stats["minpq"] / stats["n"])
    overall = dict(tokens=tot["n"], agree=int(tot["agree"]), argmax_agreement=tot["agree"] / tot["n"],
                   kl_nats=tot["kl"] / tot["n"], sum_min_pq=tot["minpq"] / tot["n"])
    return overall, out


def final_evaluation(a, model, teacher, log):
    """Held-out exact match by digit count and agreement with the teacher (see the docstring)."""
    model.eval()
    t = time.time()
    digits = range(2, MAX_DIGITS + 1)
    res = evaluate(torch_next_fn(model, "cpu"), OP, FMT, WIDTH, digits, a.eval_n, 0, model.cfg["context_len"])
    em = {str(d): {"correct": c, "n": n, "exact_match": round(c / n, 4)} for d, (c, n) in res.items()}
    log("held-out exact match (n<=%d per digit count): " % a.eval_n
        + " ".join(f"{d}:{100 * v['exact_match']:.1f}%" for d, v in em.items()) + f" ({time.time() - t:.0f}s)")
    t = time.time()
    pairs_by_d = {d: F.heldout_pairs(OP, d, a.eval_n, 0) for d in digits}
    ov, per_d = agreement(teacher, model, pairs_by_d)
    log(f"vs teacher (teacher-forced on its greedy answers, {ov['tokens']} answer tokens): argmax agreement "
        f"{ov['argmax_agreement']:.5f}, mean KL {ov['kl_nats']:.3e} nats, sum min(p,q) {ov['sum_min_pq']:.5f} "
        f"({time.time() - t:.0f}s); by digit count: "
        + " ".join(f"{d}:{v['argmax_agreement']:.4f}" for d, v in per_d.items()))
    final = dict(heldout=em, teacher_agreement=ov, teacher_agreement_by_digits=per_d,
                 params=n_params(model), teacher_params=n_params(teacher))
    return final


def bench(a):
    teacher = load_teacher(a.teacher)
    rng = np.random.default_rng(0)
    for bs in a.bench_batch:
        model = make_student(a)
        opt = make_opt(a, model)
        ts = []
        for i in range(25):
            toks, qlen, length = F.train_batch(rng, bs, OP, FMT, MAX_DIGITS, WIDTH)
            t0 = time.time()
            loss, _ = loss_fn(a, model, teacher, None, toks, qlen, length)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
            ts.append(time.time() - t0)
        x = torch.from_numpy(toks[:, :-1])
        tt = []
        with torch.no_grad():
            for i in range(10):
                t0 = time.time()
                teacher(x)
                tt.append(time.time() - t0)
        print(f"batch {bs}: training step {1000 * np.median(ts[5:]):.1f} ms (median of 20; kd), "
              f"teacher forward alone {1000 * np.median(tt):.1f} ms, student params {n_params(model)}", flush=True)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    if a.bench:
        return bench(a)
    os.makedirs(a.work, exist_ok=True)
    ckpt = os.path.join(a.work, a.name + ".pt")
    logf = open(os.path.join(a.work, a.name + ".log"), "a")
    command = "models/.venv/bin/python models/arith/distill.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))

    def log(msg):
        s = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
        print(s, flush=True)
        logf.write(s + "\n")
        logf.flush()

    log(f"start: {command} (pid {os.getpid()})")
    model = make_student(a)
    opt = make_opt(a, model)
    st = dict(step=0, examples=0, elapsed=0.0, history=[])
    rng = np.random.default_rng([a.seed, 777])
    if os.path.exists(ckpt):
        ck = torch.load(ckpt, map_location="cpu", weights_only=False)
        assert ck["model_cfg"] == model.cfg, ("config differs from the checkpoint", ck["model_cfg"], model.cfg)
        for k in ("mode", "steps", "batch", "seed"):
            old = ck["args"][k if k != "steps" else "steps"]
            assert old == getattr(a, k), f"--{k} differs from the checkpoint ({old} vs {getattr(a, k)})"
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        st = {k: ck[k] for k in st}
        rng.bit_generator.state = ck["np_rng"]
        torch.set_rng_state(ck["torch_rng"])
        if ck.get("final") and not a.reeval:
            log(f"{ckpt} is already finished (step {st['step']}); nothing to do (--reeval recomputes the final evaluation)")
            return 0
        log(f"resumed from {ckpt} at step {st['step']} (training {st['elapsed']:.0f}s)")
    teacher = load_teacher(a.teacher)
    ref = None
    if a.mode == "adaspec":
        ref, rck = load_frozen_ckpt(a.ref)
        if not rck.get("final"):
            log(f"WARNING: reference {a.ref} is not a finished run (step {rck['step']})")
        log(f"reference {a.ref}: step {rck['step']}, mode {rck['args']['mode']}")
    log(f"mode {a.mode}: student {model.cfg} {n_params(model)} params; teacher {a.teacher} {teacher.cfg} "
        f"{n_params(teacher)} params ({n_params(teacher) / n_params(model):.1f}x)")

    if a.reeval and os.path.exists(ckpt) and ck.get("final"):
        model.eval()
        final = final_evaluation(a, model, teacher, log)
        torch.save(dict(ck, final_eval=final), ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)
        log(f"re-evaluated; final checkpoint {ckpt}")
        return 0

    quick_pairs = {d: F.heldout_pairs(OP, d, 50, 1234) for d in range(2, MAX_DIGITS + 1)}

    def save(final=False, extra=None):
        tmp = ckpt + ".tmp"
        torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), model_cfg=model.cfg,
                        np_rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                        args=vars(a), command=command, mode=a.mode, final=final,
                        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                        **st, **(extra or {})), tmp)
        os.replace(tmp, ckpt)

    stop = {"sig": None}

    def on_signal(signum, _frame):
        stop["sig"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    model.train()
    t_ckpt = time.time()
    acc = dict(loss=0.0, kl=0.0, n=0, t=time.time())
    while st["step"] < a.steps and stop["sig"] is None:
        t0 = time.time()
        step = st["step"]
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (
            a.lr_min_frac + (1 - a.lr_min_frac) * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        toks, qlen, length = F.train_batch(rng, a.batch, OP, FMT, MAX_DIGITS, WIDTH)
        loss, kl_all = loss_fn(a, model, teacher, ref, toks, qlen, length)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        st["step"] += 1
        st["examples"] += a.batch
        st["elapsed"] += time.time() - t0
        acc["loss"] += loss.item()
        acc["kl"] += float(kl_all)
        acc["n"] += 1
        if st["step"] % a.log_every == 0:
            now = time.time()
            log(f"step {st['step']} loss {acc['loss'] / acc['n']:.4e} mean KL (all answer tokens) "
                f"{acc['kl'] / acc['n']:.4e} nats lr {lr:.2e} {1000 * (now - acc['t']) / acc['n']:.0f} ms/step "
                f"training {st['elapsed']:.0f}s ({100 * st['step'] / a.steps:.1f}%)")
            acc = dict(loss=0.0, kl=0.0, n=0, t=time.time())
        if st["step"] % a.eval_every == 0 and st["step"] < a.steps:
            model.eval()
            t = time.time()
            ov, _ = agreement(teacher, model, quick_pairs)
            model.train()
            st["history"].append(dict(step=st["step"], **ov))
            log(f"quick check step {st['step']} (50 held-out per digit count 2..10): argmax agreement "
                f"{ov['argmax_agreement']:.4f} KL {ov['kl_nats']:.3e} sum min(p,q) {ov['sum_min_pq']:.4f} "
                f"({time.time() - t:.1f}s)")
            acc["t"] = time.time()
        if time.time() - t_ckpt > a.ckpt_every:
            save()
            t_ckpt = time.time()
            log(f"checkpoint {ckpt} at step {st['step']}")
    if stop["sig"] is not None:
        save()
        log(f"signal {stop['sig']}: checkpoint at step {st['step']}; rerun the same command to resume")
        return 0
    save()
    log(f"training done: {st['step']} steps, {st['examples']} examples, {st['elapsed']:.0f}s of training")

    final = final_evaluation(a, model, teacher, log)
    save(final=True, extra=dict(final_eval=final))
    log(f"final checkpoint {ckpt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
