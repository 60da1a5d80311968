#!/usr/bin/env python3
"""Train one small arithmetic transformer (issue #8), export it to ONNX and verify it.

One model per invocation. Formats, vocabulary and the held-out split: formats.py. Model and
decoding: arith_model.py. Outputs in --out (NAME from --name or derived from the arguments):

    NAME.pt         checkpoint (model weights + config + step), saved every --ckpt-every s and at the end
    NAME.log.json   training log: step, loss, lr, examples, wall time, periodic held-out accuracy
    NAME.onnx       graph: tokens int64 [batch, seq] -> logits float32 [batch, seq, 16]
    NAME.json       manifest (same keys as models/text-small.json + an `arith` object)

Loss: cross-entropy on the answer tokens and END only (targets after '='). Stops at the first
of --time-budget seconds of training, --steps, or the absolute --deadline (unix time). The
learning rate follows a linear warm-up then a cosine decay over the budget (time or steps,
whichever is nearer), so a run cut by time still ends with a small learning rate.

Multiplication with --aux-running-sum WEIGHT: a linear probe reads, from the residual stream
after block --aux-layer at each position that predicts an answer digit, that digit's running sum
(the sum of its digit products plus the carry, formats.running_sums), and WEIGHT x its mean
squared error is added to the loss. After "Why Can't Transformers Learn Multiplication?" (Bai et
al. 2025), who find that training on the answers alone settles in a local optimum without the
long-range partial products, and that this loss gives the missing inductive bias. The probe is
training-only: the exported graph and the format are unchanged.

A shipped model trains further with --init-from trained/NAME.arcm (its checkpoint need not
exist any more): the run continues its step count, seconds and command list. The optimizer
starts afresh; the running-sum probe, which a bundle does not carry, starts at its least-squares
fit to the model (fit_probe), not at random.

--ema DECAY keeps an exponential moving average of the weights beside them; the quick and final
evaluations and the export use it. At a small constant learning rate successive checkpoints of a
6-digit multiplier moved by several points of 6 x 6 accuracy; the mean of a run's checkpoints
(average.py, the same idea after the fact) beat the last one (docs/arith/accuracy.md, (5)).

--hard-mining K draws K x --batch problems each step and trains on the --batch of them on which
the model's answer loss is highest (online hard example mining): a multiplier right on 98% of
6 x 6 products learns little from a random batch, almost all of which it already gets right.
The forward pass over the candidates makes a step longer: on one CPU core 2.75 times at K = 4 and
5 times at K = 8 (docs/arith/accuracy.md, (8)).

--grow with --init-from deepens a shipped model (--layers more than its blocks): the bundle's
blocks keep their order and the added ones, spread between them, start as identity maps, so the
run starts from the bundle's accuracy with more capacity; --schedule-start SECONDS (the bundle's
training seconds) gives it a cosine of its own from --lr down instead of the tail of the old one.

Training across sessions (a GPU lent for minutes at a time): --resume continues from NAME.pt in
--out (weights, step and training seconds so far; the optimizer's moments too when the checkpoint
was saved with --save-optimizer, else the learning rate warms up again), and --schedule-seconds S
spreads the cosine over S seconds of training in total, so run k of n continues the same curve.
The data stream of a resumed run is seeded with the step it resumes at (never the same draws
again). --bf16 computes the forward pass in bfloat16 on CUDA (weights and optimizer stay f32).

Example (CPU smoke): python models/arith/train_arith.py --task add --format padrev --width 3 \
    --max-digits 3 --device cpu --time-budget 90 --d-model 64 --layers 2 --out /tmp/arith
"""
import argparse
import datetime
import json
import math
import os
import random
import shlex
import sys
import time

T_START = time.time()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as Fn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import context as C  # noqa: E402
import formats as F  # noqa: E402
from arith_model import (ArithTransformer, evaluate, evaluate_context, greedy_decode, mixed_heldout, n_params,  # noqa: E402
                         ort_next_fn, problems, torch_next_fn)


def log(msg, name=""):
    print(f"[{time.time() - T_START:7.1f}s] {name}: {msg}", flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["add", "mul"], required=True)
    ap.add_argument("--format", choices=list(F.FORMATS), required=True)
    ap.add_argument("--max-digits", type=int, required=True, help="training operands have 1..N digits")
    ap.add_argument("--width", type=int, default=None, help="padding width W (padrev; default max-digits)")
    ap.add_argument("--eval-digits", type=int, default=None,
                    help="evaluate 1..N digits (default max-digits; > max-digits = extrapolation)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--time-budget", type=float, default=100.0, help="seconds of training loop")
    ap.add_argument("--deadline", type=float, default=None, help="absolute unix time: stop training by then")
    ap.add_argument("--steps", type=int, default=10 ** 9)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-min-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "work", "arith"))
    ap.add_argument("--name", default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch / onnxruntime CPU threads (1: with busy cores, 2 OpenMP threads were ~100x slower here)")
    ap.add_argument("--log-every", type=int, default=100, help="steps")
    ap.add_argument("--eval-every", type=float, default=20.0, help="seconds between quick held-out evals")
    ap.add_argument("--quick-eval-n", type=int, default=100, help="problems per digit count, quick eval")
    ap.add_argument("--eval-n", type=int, default=500, help="problems per digit count, final eval")
    ap.add_argument("--ckpt-every", type=float, default=30.0, help="seconds")
    ap.add_argument("--ort-check-n", type=int, default=200, help="held-out problems decoded in onnxruntime")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--resume", action="store_true", help="continue from NAME.pt in --out if it exists")
    ap.add_argument("--init-from", metavar="BUNDLE", default=None,
                    help="start from a packed model (an .arcm with its NAME.json beside it, e.g. one in "
                         "trained/): its weights, steps, examples and training seconds; the optimizer and "
                         "the running-sum probe is fitted to it by least squares. Ignored when --resume finds NAME.pt")
    ap.add_argument("--schedule-seconds", type=float, default=None,
                    help="seconds of training (all runs together) the cosine decays over; default: "
                         "the seconds so far plus this run's budget")
    ap.add_argument("--schedule-start", type=float, default=0.0, metavar="SECONDS",
                    help="the cosine (and --schedule-seconds) counts from this many seconds of training "
                         "(all runs together): a new curve for a continued or grown model, e.g. the "
                         "--init-from bundle's training seconds; a --resume of it passes the same value")
    ap.add_argument("--grow", action="store_true",
                    help="with --init-from a bundle of fewer blocks than --layers: its blocks are kept in "
                         "order and the new ones are spread between them as identity maps (their attention "
                         "and MLP output projections start at zero), so the grown model starts out "
                         "computing exactly what the bundle did")
    ap.add_argument("--save-optimizer", action="store_true",
                    help="keep AdamW's moments in NAME.pt (about 3x its size) so --resume continues them")
    ap.add_argument("--bf16", action="store_true", help="forward pass in bfloat16 autocast (CUDA only)")
    ap.add_argument("--context", action="store_true",
                    help="addition inside sentences (context.py): 46-token vocabulary, sentences mixed with "
                         "plain a+b= problems; --format plain or spaces (the fix)")
    ap.add_argument("--sentence-frac", type=float, default=0.5,
                    help="with --context: share of training examples that are sentences")
    ap.add_argument("--aux-running-sum", type=float, default=0.0, metavar="WEIGHT",
                    help="multiplication: add WEIGHT x the mean squared error of a linear probe that reads "
                         "each answer digit's running sum (formats.running_sums) from the residual stream after "
                         "block --aux-layer (Bai et al. 2025); training only, the exported model is unchanged")
    ap.add_argument("--digit-dist", choices=F.DIGIT_DISTS, default="uniform",
                    help="how training draws each operand's digit count from 1..--max-digits: uniform, or "
                         "linear (probability proportional to the count: more of the widest, hardest problems), "
                         "or square (proportional to its square: more still)")
    ap.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                    help="keep an exponential moving average of the weights (DECAY per step, e.g. 0.9999; "
                         "ramped as min(DECAY, (1+n)/(10+n)) over its first n steps): the quick and final "
                         "evaluations and the export use it; checkpoints keep both, --resume continues both")
    ap.add_argument("--hard-mining", type=int, default=1, metavar="K",
                    help="each step draws K x --batch problems and trains on the --batch of them with the "
                         "highest loss under the current weights (online hard example mining; 1: off)")
    ap.add_argument("--aux-layer", type=int, default=None,
                    help="block (0-based) whose output the running-sum probe reads (default: layers // 2)")
    a = ap.parse_args(argv)
    a.op = F.OPS[a.task]
    if a.aux_running_sum < 0:
        ap.error("--aux-running-sum must be >= 0")
    if not 0 <= a.ema < 1:
        ap.error("--ema must be in [0, 1): 0 is off, 0.999-0.9999 are the usual values")
    if a.hard_mining < 1:
        ap.error("--hard-mining must be >= 1")
    if a.hard_mining > 1 and a.context:
        ap.error("--hard-mining is for the arithmetic formats, not --context")
    if a.aux_running_sum and a.task != "mul":
        ap.error("--aux-running-sum is for --task mul")
    if a.grow and not a.init_from:
        ap.error("--grow needs --init-from (the bundle it grows)")
    if a.schedule_start < 0:
        ap.error("--schedule-start must be >= 0")
    if a.aux_layer is None:
        a.aux_layer = a.layers // 2
    if not 0 <= a.aux_layer < a.layers:
        ap.error("--aux-layer must name one of the model's blocks")
    if a.format == "spaces" and a.task != "add":
        ap.error("--format spaces is for --task add only")
    if a.context and (a.task != "add" or a.format == "padrev"):
        ap.error("--context is for --task add with --format plain or spaces")
    if a.context and a.digit_dist != "uniform":
        ap.error("--digit-dist is for plain problems, not --context")
    if a.context and not 0.0 <= a.sentence_frac <= 1.0:
        ap.error("--sentence-frac must be in [0, 1]")
    if a.format == "padrev":
        a.width = a.width or a.max_digits
        if a.max_digits > a.width:
            ap.error("--max-digits must be <= --width for padrev")
    else:
        a.width = None
    a.eval_digits = a.eval_digits or a.max_digits
    if a.format == "padrev":
        a.eval_digits = min(a.eval_digits, a.width)
    if a.task == "mul" and max(a.max_digits, a.eval_digits) > 9:
        ap.error("multiplication limited to 9 digits")
    if a.name is None and a.context:
        a.name = f"ctx-{a.format}-d{a.max_digits}-s{a.seed}"
    if a.name is None:
        a.name = f"{a.task}-{a.format}-d{a.max_digits}" + (f"-w{a.width}" if a.width else "") + f"-s{a.seed}"
    return a


def context_len(a):
    """Longest sequence seen in training (spaces included) or in evaluation."""
    if a.context:
        return C.context_len(a.max_digits, a.eval_digits, a.format == "spaces")
    train = F.max_seq_len(a.op, a.format, a.max_digits, a.width, with_spaces=True)
    ev = F.max_seq_len(a.op, a.format, a.eval_digits, a.width)
    return max(train, ev)


def atomic_save(obj, path):
    """Write `obj` (JSON for .json, else torch.save) to path.tmp, then rename it over `path`: a
    reader sees the old file or the new one, and a failed write leaves neither a partial file
    nor its .tmp behind."""
    tmp = path + ".tmp"
    try:
        if path.endswith(".json"):
            with open(tmp, "w") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")
        else:
            torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def init_from_bundle(model, a, name):
    """Load --init-from's weights into `model`; (step, examples, seconds, commands) of its training."""
    import arcm
    try:
        src, _ = arcm.load_model(a.init_from)
    except (OSError, ValueError) as e:
        raise SystemExit(f"--init-from: {e}")  # the message names the file
    shallower = ({**src.cfg, "layers": model.cfg["layers"]} == model.cfg
                 and src.cfg["layers"] < model.cfg["layers"])  # the same model but for its depth
    if a.grow and not shallower:
        raise SystemExit(f"--grow: {a.init_from} is not a shallower model of the same width: "
                         f"{src.cfg} vs {model.cfg}")
    if not a.grow and src.cfg != model.cfg:
        raise SystemExit(f"--init-from {a.init_from} is a model of another shape: {src.cfg} vs {model.cfg}"
                         + (" (--grow deepens it)" if shallower else ""))
    man = arcm.manifest_json(a.init_from)
    if man is None:
        raise SystemExit(f"--init-from {a.init_from}: no manifest {os.path.splitext(a.init_from)[0]}.json beside it "
                         "(its format and training counters are read from there)")
    ar, tr = man.get("arith", {}), man.get("training", {})
    want = {"op": a.op, "format": a.format, "width": a.width}
    got = {k: ar.get(k) for k in want}
    if got != want:
        raise SystemExit(f"--init-from {a.init_from} was trained for {got}, not {want}")
    if a.grow:
        grow_into(model, src, name)
    else:
        model.load_state_dict(src.state_dict())
    step, examples = int(tr.get("steps", 0)), int(tr.get("examples_seen", 0))
    seconds = float(tr.get("train_seconds", 0.0))
    commands = list(tr.get("commands", [tr["command"]] if "command" in tr else []))
    log(f"initialised from {a.init_from}: step {step}, {seconds:.0f}s of training before "
        "(the optimizer starts afresh)", name)
    return step, examples, seconds, commands


def grown_positions(old, new):
    """Where `old` blocks go in a model of `new` blocks (--grow): the added blocks are spread
    evenly between them (4 -> 6: after the 2nd and the 4th; 4 -> 8: after each)."""
    after = [(k + 1) * old // (new - old) - 1 for k in range(new - old)]  # -1: before the first
    pos, i = [], after.count(-1)
    for j in range(old):
        pos.append(i)
        i += 1 + after.count(j)
    return pos


def grow_into(model, src, name):
    """--grow: copy `src` (fewer blocks) into `model`; the added blocks are identity maps."""
    pos = grown_positions(len(src.blocks), len(model.blocks))
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("blocks.")}
    for j, b in enumerate(src.blocks):
        state.update({f"blocks.{pos[j]}.{k}": v for k, v in b.state_dict().items()})
    for i, b in enumerate(model.blocks):
        if i not in pos:  # a residual block whose two output projections are zero adds nothing
            for lin in (b.proj, b.fc2):
                torch.nn.init.zeros_(lin.weight)
                torch.nn.init.zeros_(lin.bias)
            state.update({f"blocks.{i}.{k}": v for k, v in b.state_dict().items()})
    model.load_state_dict(state)
    log(f"grown from {len(src.blocks)} to {len(model.blocks)} blocks: the bundle's at {pos}, "
        "the others start as identity maps", name)


def moving_average(model, decay):
    """--ema: torch's AveragedModel (a copy of `model` whose parameters are the average) with an
    exponential average whose decay ramps as min(decay, (1 + n) / (10 + n)) over its first n
    updates, so a fresh average does not drag its start along for thousands of steps."""
    def ema(avg, cur, n):
        d = min(decay, (1 + float(n)) / (10 + float(n)))
        torch._foreach_lerp_(avg, cur, 1.0 - d)

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=ema)


def answer_ce(logits, x, w):
    """Cross-entropy of each problem's answer tokens and END ([batch]): `logits` of x[:, :-1],
    `w` the answer mask of the targets x[:, 1:]. The training loss is its sum over the answer
    tokens of the batch; --hard-mining ranks problems by it."""
    ce = Fn.cross_entropy(logits.float().transpose(1, 2), x[:, 1:], reduction="none")
    return (ce * w).sum(1)


@torch.no_grad()
def hardest(model, toks, wmask, n, dev, amp):
    """--hard-mining: indices of the n problems of the batch `toks` (numpy, with its answer mask) on
    which the model's answer loss is highest. Hand-written because it is the training recipe
    itself: a 6-digit multiplier right on ~98% of 6 x 6 problems, and on all but a few in a
    thousand of the smaller ones, gets almost every problem of a random batch right."""
    x = torch.from_numpy(toks).to(dev)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        logits = model(x[:, :-1])
    per = answer_ce(logits, x, torch.from_numpy(wmask).to(dev))
    return torch.topk(per, n).indices.sort().values.cpu().numpy()


def probe_batch(rng, n, a, sum_width):
    """A multiplication batch with its running-sum targets: (tokens, qlen, length, sums, mask),
    numpy; sums and mask aligned with the model's outputs (formats.running_sum_targets)."""
    pa, pb = F.sample_operands(rng, n, a.op, a.max_digits, dist=a.digit_dist)
    toks, qlen, length = F.encode_batch(pa, pb, a.op, a.format, a.width)
    sums, smask = F.running_sum_targets(pa, pb, a.format, sum_width, qlen, length, toks.shape[1] - 1)
    return toks, qlen, length, sums, smask


def fit_probe(model, probe, a, sum_width, aux_scale, dev, name, examples=4096):
    """Set a fresh running-sum probe to its least-squares fit on the model's frozen hidden states.

    A bundle (--init-from) carries no probe. Left at its random start, the probe's error (about 1
    against a cross-entropy near 0.004) makes its gradient the larger part of the model's for the
    first hundred steps, and those steps push the residual stream toward the random probe: the
    loss of a well-trained multiplier rose fifteenfold and took over a thousand steps to come
    back. The probe is one linear map, so its best value for the current model is a ridge
    regression, solved here on examples from a generator of their own (the training stream is
    not consumed).
    """
    rng = np.random.default_rng([a.seed, 424242])
    xs, ys = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for lo in range(0, examples, a.batch):
            toks, _, _, sums, smask = probe_batch(rng, min(a.batch, examples - lo), a, sum_width)
            _, hidden = model(torch.from_numpy(toks[:, :-1]).to(dev), hidden_after=a.aux_layer)
            m = torch.from_numpy(smask).to(dev)
            xs.append(hidden.float()[m].double())
            ys.append(torch.from_numpy(sums / aux_scale).to(dev)[m].double())
    model.train(was_training)
    x, y = torch.cat(xs), torch.cat(ys)
    x1 = torch.cat([x, torch.ones_like(x[:, :1])], 1)  # the probe's bias as a last column
    gram = x1.T @ x1 + 1e-6 * len(x1) * torch.eye(x1.shape[1], dtype=x1.dtype, device=x1.device)
    w = torch.linalg.solve(gram, x1.T @ y)
    with torch.no_grad():
        probe.weight.copy_(w[:-1].to(probe.weight.dtype).unsqueeze(0))
        probe.bias.copy_(w[-1:].to(probe.bias.dtype))
    mse = float(((x1 @ w - y) ** 2).mean())
    log(f"running-sum probe fitted by least squares on {len(x)} answer digits: mse {mse:.5f}", name)
    return mse


def fmt_acc(res):
    return " ".join(f"{d}:{(100.0 * c / n):.0f}%" if n else f"{d}:-" for d, (c, n) in sorted(res.items()))


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng([a.seed, 12345])
    os.makedirs(a.out, exist_ok=True)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ctx = context_len(a)
    vocab = C.CTX_VOCAB_SIZE if a.context else F.VOCAB_SIZE
    model = ArithTransformer(ctx, a.d_model, a.layers, a.heads, vocab).to(dev)
    # The running-sum probe (--aux-running-sum): one linear map from the residual stream to a
    # scalar, trained with the model and dropped at export. Targets are divided by 6W, about their
    # standard deviation under the training distribution, so the MSE starts near 1 like the CE.
    probe = torch.nn.Linear(a.d_model, 1).to(dev) if a.aux_running_sum else None
    sum_width = a.width or a.max_digits  # padrev's width; for plain, the widest operand
    aux_scale = 6.0 * sum_width
    pyrng = random.Random(a.seed * 1_000_003 + 17)
    nparam = n_params(model)
    name = a.name
    command = "python models/arith/train_arith.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    log(f"task={a.task} format={a.format} max_digits={a.max_digits} width={a.width} eval_digits={a.eval_digits} "
        f"context_len={ctx} params={nparam} device={dev} budget={a.time_budget:.0f}s", name)

    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (decay if p.dim() >= 2 and not n_.startswith(("tok.", "pos.")) else no_decay).append(p)
    if probe is not None:
        no_decay.extend(probe.parameters())
    groups = [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    trained = decay + no_decay  # what the gradient clip covers: the model and the probe
    try:
        opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98), fused=(dev.type == "cuda"))
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98))

    paths = {k: os.path.join(a.out, name + ext) for k, ext in
             (("ckpt", ".pt"), ("log", ".log.json"), ("onnx", ".onnx"), ("manifest", ".json"))}
    records, evals = [], []
    logdoc = {"name": name, "command": command, "args": vars(a), "params": nparam, "context_len": ctx,
              "records": records, "evals": evals}

    # A resumed run: the weights, counters and log of the runs before it.
    step, examples, trained_before, opt_resumed, commands = 0, 0, 0.0, False, []
    averaged = None  # the steps an average.py checkpoint is the mean of
    ema_prev = None
    if a.resume and os.path.exists(paths["ckpt"]):
        prev = torch.load(paths["ckpt"], map_location="cpu", weights_only=False)
        if prev["model_cfg"] != model.cfg:
            raise SystemExit(f"{paths['ckpt']} is a model of another shape: {prev['model_cfg']} vs {model.cfg}")
        if (probe is not None) != ("probe" in prev):
            raise SystemExit(f"{paths['ckpt']} was trained {'with' if 'probe' in prev else 'without'} the "
                             "running-sum loss: resume it with the same --aux-running-sum setting (0 or not)")
        model.load_state_dict(prev["model"])
        if probe is not None:
            probe.load_state_dict(prev["probe"])
        if "optimizer" in prev:
            opt.load_state_dict(prev["optimizer"])
            opt_resumed = True
        step, examples = prev["step"], prev["examples"]
        averaged = prev.get("averaged_steps")
        ema_prev = prev.get("ema")
        trained_before = prev.get("train_s_total", 0.0)
        commands = prev.get("commands", [prev.get("command", "")])
        if os.path.exists(paths["log"]):
            with open(paths["log"]) as f:
                old = json.load(f)
            # a log written after the checkpoint (a run that went on, or the run an average.py
            # checkpoint came from) is cut at its step: the run goes on from there, not from later
            records.extend(r for r in old.get("records", []) if r["step"] <= step)
            evals.extend(e for e in old.get("evals", []) if e["step"] <= step)
        log(f"resumed at step {step} after {trained_before:.0f}s of training"
            f" ({'with' if opt_resumed else 'without'} the optimizer state)", name)
    elif a.init_from:
        step, examples, trained_before, commands = init_from_bundle(model, a, name)
        if probe is not None:
            fit_probe(model, probe, a, sum_width, aux_scale, dev, name)
    if step:  # a continued run draws a data stream of its own, never the same examples again
        rng = np.random.default_rng([a.seed, 12345, step])
        pyrng = random.Random(a.seed * 1_000_003 + 17 + step)
    commands = commands + [command]
    logdoc["commands"] = commands
    step0 = step
    ema = moving_average(model, a.ema) if a.ema else None
    if ema is not None and ema_prev is not None:
        try:
            ema.load_state_dict(ema_prev)
        except (RuntimeError, KeyError) as e:
            raise SystemExit(f"{paths['ckpt']}: its moving average is not of this model ({e}); "
                             "resume with the settings it was trained with")
        log(f"moving average of the weights resumed ({int(ema.n_averaged)} updates)", name)

    def checkpoint(step, examples, final=False):
        obj = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "model_cfg": model.cfg, "args": vars(a), "step": step, "examples": examples,
               "train_s_total": trained_before + (time.time() - t0), "commands": commands,
               "command": command, "final": final}
        if probe is not None:
            obj["probe"] = {k: v.detach().cpu() for k, v in probe.state_dict().items()}
        if a.save_optimizer:
            obj["optimizer"] = opt.state_dict()
        if ema is not None:
            obj["ema"] = {k: v.detach().cpu() for k, v in ema.state_dict().items()}
        atomic_save(obj, paths["ckpt"])

    quick_pairs = None
    nf = torch_next_fn(model, dev)

    def heldout_eval(n, seed, kind="heldout", next_fn=nf):
        digits = range(1, a.eval_digits + 1)
        if a.context:
            return evaluate_context(next_fn, kind, digits, n, seed, ctx)
        return evaluate(next_fn, a.op, a.format, a.width, digits, n, seed, ctx)

    def quick_eval():
        m = model if ema is None else ema.module  # with --ema, the average is what is measured
        m.eval()
        res = heldout_eval(a.quick_eval_n, a.seed + 7, next_fn=nf if ema is None else torch_next_fn(m, dev))
        model.train()
        return res

    t0 = time.time()
    end_t = t0 + a.time_budget
    if a.deadline is not None:
        end_t = min(end_t, a.deadline)
    on_curve = trained_before - a.schedule_start  # seconds of the cosine behind this run
    if on_curve < 0:
        raise SystemExit(f"--schedule-start {a.schedule_start:g}: this model has trained {trained_before:.0f}s "
                         "so far; a cosine cannot start after that")
    schedule = max(a.schedule_seconds or (on_curve + (end_t - t0)), 1e-3)
    amp = a.bf16 and dev.type == "cuda"
    loss_acc = torch.zeros((), device=dev)
    aux_acc = torch.zeros((), device=dev)
    n_acc = 0
    last_eval = last_ckpt = t0
    t_log = t0
    model.train()
    while True:
        now = time.time()
        if now >= end_t or step >= a.steps:
            break
        frac = min(1.0, max((on_curve + now - t0) / schedule, step / a.steps))
        warm = step + 1 if opt_resumed or step0 == 0 else step - step0 + 1
        lr = a.lr * min(1.0, warm / a.warmup) * (a.lr_min_frac + (1 - a.lr_min_frac) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if a.context:
            toks, qlen, length = C.train_batch(rng, a.batch, a.format, a.max_digits, a.sentence_frac, pyrng)
        elif probe is not None:
            toks, qlen, length, sums, smask = probe_batch(rng, a.batch * a.hard_mining, a, sum_width)
        else:
            toks, qlen, length = F.train_batch(rng, a.batch * a.hard_mining, a.op, a.format, a.max_digits,
                                               a.width, a.digit_dist)
        L = toks.shape[1]
        pos = np.arange(1, L)[None, :]
        wmask = ((pos >= qlen[:, None]) & (pos < length[:, None])).astype(np.float32)
        if a.hard_mining > 1:
            keep = hardest(model, toks, wmask, a.batch, dev, amp)
            toks, qlen, length, wmask = toks[keep], qlen[keep], length[keep], wmask[keep]
            if probe is not None:
                sums, smask = sums[keep], smask[keep]
        if probe is not None:
            sums = torch.from_numpy(sums / aux_scale).float().to(dev)
            smask = torch.from_numpy(smask).float().to(dev)
        nt = float(wmask.sum())
        x = torch.from_numpy(toks).to(dev, non_blocking=True)
        w = torch.from_numpy(wmask).to(dev, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            if probe is None:
                logits = model(x[:, :-1])
            else:
                logits, hidden = model(x[:, :-1], hidden_after=a.aux_layer)
        loss = answer_ce(logits, x, w).sum() / nt
        loss_acc += loss.detach()
        if probe is not None:
            pred = probe(hidden.float()).squeeze(-1)
            aux = (((pred - sums) ** 2) * smask).sum() / smask.sum()
            aux_acc += aux.detach()
            loss = loss + a.aux_running_sum * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        n_acc += 1
        step += 1
        examples += a.batch
        if step % a.log_every == 0:
            now = time.time()
            l = float(loss_acc) / n_acc
            rate = a.log_every / max(now - t_log, 1e-9)
            records.append({"step": step, "loss": round(l, 5), "lr": lr, "examples": examples,
                            "wall_s": round(now - t0, 2), "steps_per_s": round(rate, 1)})
            aux_note = ""
            if probe is not None:  # the probe's mean squared error, in units of the scaled sums
                records[-1]["aux_mse"] = round(float(aux_acc) / n_acc, 6)
                aux_note = f" running-sum mse {records[-1]['aux_mse']:.5f}"
                aux_acc.zero_()
            loss_acc.zero_()
            n_acc, t_log = 0, now
            if step % (a.log_every * 10) == 0 or step == a.log_every:
                log(f"step {step} loss {l:.4f}{aux_note} lr {lr:.2e} {rate:.0f} steps/s", name)
            if now - last_eval >= a.eval_every:
                res = quick_eval()
                evals.append({"step": step, "wall_s": round(time.time() - t0, 2),
                              "acc": {str(d): (c / n if n else None) for d, (c, n) in res.items()}})
                log(f"step {step} loss {l:.4f} held-out exact match {fmt_acc(res)}", name)
                last_eval = time.time()
            if now - last_ckpt >= a.ckpt_every:
                checkpoint(step, examples)
                atomic_save(logdoc, paths["log"])
                last_ckpt = now
    train_s = time.time() - t0
    if n_acc:
        records.append({"step": step, "loss": round(float(loss_acc) / n_acc, 5), "lr": lr, "examples": examples,
                        "wall_s": round(train_s, 2)})
    final_loss = records[-1]["loss"] if records else None
    log(f"training done: {step} steps, {examples} examples, {train_s:.1f}s"
        + (f" ({trained_before + train_s:.0f}s in all runs)" if step0 else "") + f", last loss {final_loss}", name)
    checkpoint(step, examples, final=True)
    if ema is not None:  # from here on the model is its average: evaluated, exported, described
        model.load_state_dict(ema.module.state_dict())
        log(f"final evaluation and export use the moving average of the weights (decay {a.ema}, "
            f"{int(ema.n_averaged)} updates)", name)

    # ---------------------------------------------------------------- final held-out evaluation
    model.eval()
    t = time.time()
    res = heldout_eval(a.eval_n, 0)
    log(f"final held-out exact match (n<={a.eval_n}/digit count, {time.time() - t:.1f}s): {fmt_acc(res)}", name)
    counts = lambda r: {str(d): {"correct": c, "n": n} for d, (c, n) in r.items()}
    logdoc["final"] = {"steps": step, "examples": examples, "train_s": round(train_s, 2),
                       "train_s_total": round(trained_before + train_s, 2), "loss": final_loss,
                       "heldout": counts(res)}
    extra = {}
    if a.context:  # the same held-out pairs in the training templates and as plain a+b=
        for kind in ("train", "plain"):
            extra[kind] = heldout_eval(a.eval_n, 0, kind)
            log(f"final held-out pairs, {kind} prompts: {fmt_acc(extra[kind])}", name)
            logdoc["final"][f"heldout_{kind}"] = counts(extra[kind])
    atomic_save(logdoc, paths["log"])

    onnx_check = None
    if not a.no_export:
        try:
            onnx_check = export_and_check(model, a, ctx, paths["onnx"], name)
        except Exception as e:  # keep checkpoint/log/manifest even if export or the check fails
            import traceback
            traceback.print_exc()
            onnx_check = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            log(f"ONNX export/check FAILED: {onnx_check['error']}", name)
        logdoc["onnx_check"] = onnx_check
        atomic_save(logdoc, paths["log"])

    manifest = {
        "name": name,
        "kind": "arith",
        "description": (f"Character-level decoder-only transformer for {'addition' if a.op == '+' else 'multiplication'}"
                        + (" inside sentences (models/arith/context.py), trained" if a.context else "")
                        + f" in the '{a.format}' format (see models/arith/formats.py): {a.layers} pre-LN layers, d_model "
                        f"{a.d_model}, {a.heads} heads, GELU MLP x4, learned absolute positions ({ctx}). "
                        "Greedy decoding: feed the question tokens (ending with '='"
                        + (", or a sentence ending with a space" if a.context else "") + "), append the argmax of the last "
                        "position's logits until END (id 14)."),
        "vocab_size": vocab,
        "context_len": ctx,
        "pad_id": F.PAD,
        "logit_frac_bits": 0,
        "quantization": "f32",
        "inputs": ["tokens"],
        "outputs": ["logits"],
        "parameters": nparam,
        "training": {
            "command": command,
            "data": (f"generated on the fly: operand digit counts {a.digit_dist} in 1..{a.max_digits}, then uniform numbers; "
                     f"held-out pairs (formats.is_heldout, ~1%) never sampled"
                     + ("; random spaces in questions (p ~ U[0,0.5) per gap)" if a.format == "spaces" else "")
                     + (f"; {a.sentence_frac:.0%} of examples are sentences of the training templates "
                        "(context.py), the rest plain a+b=" if a.context else "")),
            "steps": step,
            "examples_seen": examples,
            "batch": a.batch,
            "seed": a.seed,
            "aux_running_sum": a.aux_running_sum,
            "digit_dist": a.digit_dist,
            **({"hard_mining": a.hard_mining} if a.hard_mining > 1 else {}),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "train_seconds": round(trained_before + train_s, 1),
            "runs": len(commands),
            "commands": commands,
            "final_loss": final_loss,
            **({"ema": a.ema, "ema_steps": int(ema.n_averaged)} if ema is not None else {}),
            # exported straight from an average of checkpoints (average.py), not trained since
            **({"averaged_steps": averaged} if averaged and step == step0 else {}),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        },
        "metrics": {
            "heldout_exact_match": {str(d): (round(c / n, 4) if n else None) for d, (c, n) in res.items()},
            "heldout_n": {str(d): n for d, (c, n) in res.items()},
            "heldout_note": ("greedy decoding, both operands with exactly d digits, held-out pairs only, "
                             "questions without spaces; d > max_digits is extrapolation"
                             + ("; sentences of the held-out templates" if a.context else "")),
        },
        "arith": {
            "task": a.task,
            "op": a.op,
            "format": a.format,
            "width": a.width,
            "max_digits": a.max_digits,
            "eval_digits": a.eval_digits,
            "vocab": C.CTX_VOCAB if a.context else F.VOCAB,
            "end_id": F.END,
            "pad_id": F.PAD,
            "answer_len": F.answer_len(a.op, a.width) if a.format == "padrev" else None,
        },
    }
    if a.context:
        manifest["arith"]["context"] = dict(C.manifest_keys(), sentence_frac=a.sentence_frac)
        for kind, r in extra.items():
            manifest["metrics"][f"heldout_pairs_{kind}_prompts"] = {
                str(d): (round(c / n, 4) if n else None) for d, (c, n) in r.items()}
    if onnx_check is not None:
        manifest["metrics"]["onnx_check"] = onnx_check
    if not a.no_export:
        atomic_save(manifest, paths["manifest"])
    log(f"wrote {', '.join(os.path.basename(p) for p in paths.values() if os.path.exists(p))} "
        f"(total {time.time() - T_START:.1f}s)", name)
    ok = onnx_check is None or onnx_check["ok"]
    print(json.dumps({"name": name, "ok": ok, "steps": step, "loss": final_loss,
                      "heldout": manifest["metrics"]["heldout_exact_match"]}), flush=True)
    return 0 if ok else 3


def export_and_check(model, a, ctx, path, name):
    import onnx
    import onnxruntime as ort

    t = time.time()
    cpu_model = type(model)(**model.cfg)
    vocab = model.cfg["vocab"]
    cpu_model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    cpu_model.eval()
    cpu_model.export_mode = True
    dummy = torch.zeros((2, ctx), dtype=torch.int64)
    kw = dict(input_names=["tokens"], output_names=["logits"],
              dynamic_axes={"tokens": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
              opset_version=17, do_constant_folding=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(cpu_model, (dummy,), path, dynamo=False, **kw)
        except TypeError:  # older torch without the dynamo argument
            torch.onnx.export(cpu_model, (dummy,), path, **kw)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    size = os.path.getsize(path)
    log(f"exported {os.path.basename(path)} ({size / 1e6:.2f} MB, opset 17, ops {','.join(ops)}) in {time.time() - t:.1f}s", name)

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    # 1) random inputs, several shapes
    g = torch.Generator().manual_seed(a.seed + 99)
    maxdiff = 0.0
    with torch.no_grad():
        for B, T in ((3, ctx), (2, 5), (1, 1), (5, max(1, ctx // 2))):
            x = torch.randint(0, vocab, (B, T), generator=g)
            ref = cpu_model(x).numpy()
            got = sess.run(["logits"], {"tokens": x.numpy()})[0]
            assert got.shape == (B, T, vocab) and got.dtype == np.float32
            maxdiff = max(maxdiff, float(np.abs(ref - got).max()))
            cpu_model.export_mode = False  # the torch (SDPA) path must agree too
            maxdiff = max(maxdiff, float(np.abs(cpu_model(x).numpy() - got).max()))
            cpu_model.export_mode = True
    log(f"onnxruntime vs torch on random inputs: max abs diff {maxdiff:.2e}", name)
    # 2) greedy decoding of held-out problems in onnxruntime vs torch (trained device)
    if a.context:
        pairs, prompts, expected = [], [], []
        for d in range(1, a.eval_digits + 1):
            p_, q_, e_ = C.eval_set("heldout", d, max(1, a.ort_check_n // a.eval_digits), a.seed + 1000)
            pairs += p_
            prompts += q_
            expected += e_
    else:
        pairs = mixed_heldout(a.op, a.format, a.width, a.eval_digits, a.ort_check_n, a.seed)
        prompts, expected = problems(a.op, a.format, a.width, pairs)
    max_new = max(len(e) for e in expected)
    g_ort = greedy_decode(ort_next_fn(sess), prompts, max_new, ctx)
    g_t = greedy_decode(torch_next_fn(model, next(model.parameters()).device), prompts, max_new, ctx)
    acc_ort = sum(x == e for x, e in zip(g_ort, expected)) / len(pairs)
    acc_t = sum(x == e for x, e in zip(g_t, expected)) / len(pairs)
    agree = sum(x == y for x, y in zip(g_ort, g_t)) / len(pairs)
    ok = maxdiff < 1e-3 and abs(acc_ort - acc_t) <= 0.01 and agree >= 0.99
    log(f"greedy decode on {len(pairs)} held-out problems (1..{a.eval_digits} digits): onnxruntime {100 * acc_ort:.1f}% "
        f"torch {100 * acc_t:.1f}% identical outputs {100 * agree:.1f}% -> {'OK' if ok else 'MISMATCH'}", name)
    return {"ok": ok, "random_input_max_abs_diff": maxdiff, "greedy_n": len(pairs), "ort_accuracy": round(acc_ort, 4),
            "torch_accuracy": round(acc_t, 4), "identical_outputs": round(agree, 4), "onnx_bytes": size, "ops": ops}


if __name__ == "__main__":
    sys.exit(main())
