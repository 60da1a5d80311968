#!/usr/bin/env python3
"""Checks of train_arith.py and eval_arith.py that need torch and onnx (the venv of models/arith/README.md):

    models/.venv/bin/python models/arith/test_train.py

--init-from: a shipped bundle's weights, counters and commands carry over, and the running-sum
probe starts at its least-squares fit to the model; a bundle of another
format or shape, a truncated one, one without its manifest, or a file that is not a bundle, is
refused with a message before any file is written. average.py: the mean of a run's checkpoints,
exported with the steps it averages; --ema: the moving average is evaluated, exported and resumed;
--grow: a deeper model that starts out computing what the bundle did; --hard-mining: trains on
the problems the model gets most wrong; --resume: a log newer than
the checkpoint is cut at its step. eval_arith.py: reads a bundle, and --errors
counts the wrong characters where they are. (test_formats.py needs numpy only; CI runs that one.)
"""
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import arcm  # noqa: E402
import arith_model  # noqa: E402
import average  # noqa: E402
import eval_arith  # noqa: E402
import formats as F  # noqa: E402
import train_arith  # noqa: E402

BUNDLE = os.path.join(HERE, "trained", "arith-mul-padrev.arcm")
BASE = ["--task", "mul", "--max-digits", "6", "--device", "cpu", "--batch", "8", "--eval-n", "2",
        "--no-export", "--aux-running-sum", "1", "--digit-dist", "linear"]


def refused(argv):
    try:
        train_arith.main(argv)
    except SystemExit as e:
        return str(e.code)
    raise AssertionError(f"{argv} was not refused")


def test_init_from_continues_the_bundle():
    man = arcm.manifest_json(BUNDLE)["training"]
    want, _ = arcm.load_model(BUNDLE)
    with tempfile.TemporaryDirectory() as out:
        rc = train_arith.main(BASE + ["--format", "padrev", "--steps", str(man["steps"] + 3), "--time-budget", "60",
                                      "--out", out, "--name", "t", "--init-from", BUNDLE])
        assert rc == 0
        ck = torch.load(os.path.join(out, "t.pt"), weights_only=False)
        assert ck["step"] == man["steps"] + 3 and ck["examples"] == man["examples_seen"] + 24
        assert ck["train_s_total"] > man["train_seconds"]
        assert ck["commands"][:-1] == man["commands"] and "--init-from" in ck["commands"][-1]
        # three small steps from the bundle: close to its weights, not equal, not a fresh init
        diff = max(float((ck["model"][k] - v).abs().max()) for k, v in want.state_dict().items())
        assert 0 < diff < 0.05, diff
        with open(os.path.join(out, "t.log.json")) as f:
            assert json.load(f)["final"]["steps"] == man["steps"] + 3
        # --resume finds t.pt: it wins over --init-from (the command of models/arith/README.md)
        rc = train_arith.main(BASE + ["--format", "padrev", "--steps", str(man["steps"] + 5), "--time-budget", "60",
                                      "--out", out, "--name", "t", "--resume", "--init-from", BUNDLE])
        assert rc == 0
        ck = torch.load(os.path.join(out, "t.pt"), weights_only=False)
        assert ck["step"] == man["steps"] + 5 and len(ck["commands"]) == len(man["commands"]) + 2


def test_fit_probe_starts_at_the_models_running_sums():
    # a bundle carries no probe: the least-squares fit reads the running sums the model already
    # holds (a random probe is off by about their spread), so its gradient does not shake the model
    model, _ = arcm.load_model(BUNDLE)
    a = train_arith.parse_args(BASE + ["--format", "padrev", "--batch", "128"])
    probe = torch.nn.Linear(a.d_model, 1)
    fitted = train_arith.fit_probe(model, probe, a, a.width, 6.0 * a.width, torch.device("cpu"), "t", examples=512)
    assert fitted < 0.01, fitted
    rng = np.random.default_rng(5)
    pa, pb = F.sample_operands(rng, 256, a.op, a.max_digits, dist=a.digit_dist)
    toks, qlen, length = F.encode_batch(pa, pb, a.op, a.format, a.width)
    sums, smask = F.running_sum_targets(pa, pb, a.format, a.width, qlen, length, toks.shape[1] - 1)
    with torch.no_grad():
        _, hidden = model(torch.from_numpy(toks[:, :-1]), hidden_after=a.aux_layer)
        m = torch.from_numpy(smask)
        y = torch.from_numpy(sums / (6.0 * a.width)).float()[m]
        held = float(((probe(hidden)[..., 0][m] - y) ** 2).mean())  # on problems the fit did not see
        fresh = float(((torch.nn.Linear(a.d_model, 1)(hidden)[..., 0][m] - y) ** 2).mean())
    assert held < 0.01 and fresh > 0.1, (held, fresh)


def test_average_then_export():
    man = arcm.manifest_json(BUNDLE)["training"]
    with tempfile.TemporaryDirectory() as out:
        cks = []
        for k in (2, 4):  # the same run checkpointed at two steps
            rc = train_arith.main(BASE + ["--format", "padrev", "--steps", str(man["steps"] + k), "--time-budget", "60",
                                          "--out", out, "--name", "t", "--resume", "--init-from", BUNDLE,
                                          "--save-optimizer"])
            assert rc == 0
            cks.append(os.path.join(out, f"t.{k}.pt"))
            shutil.copy(os.path.join(out, "t.pt"), cks[-1])  # kept, as the run rewrites t.pt
        os.makedirs(os.path.join(out, "avg"))
        dst = os.path.join(out, "avg", "t.pt")
        assert average.main([dst] + cks) == 0
        got = torch.load(dst, weights_only=False)
        a, b = (torch.load(p, weights_only=False) for p in cks)
        for key, v in got["model"].items():
            assert torch.allclose(v, (a["model"][key] + b["model"][key]) / 2, atol=1e-7), key
        for key, v in got["probe"].items():  # the probe is averaged with the weights
            assert torch.allclose(v, (a["probe"][key] + b["probe"][key]) / 2, atol=1e-7), key
        assert got["averaged_steps"] == [man["steps"] + 2, man["steps"] + 4] and got["step"] == man["steps"] + 4
        assert "optimizer" not in got and "average.py" in got["commands"][-1]
        # refused, nothing written: the same checkpoint twice, a missing file, a bundle, no folder
        no = os.path.join(out, "no.pt")
        for argv, what in (([no, cks[0], cks[0]], "same step"), ([no, cks[0], "nope.pt"], "no such file"),
                           ([no, cks[0], BUNDLE], "not a checkpoint torch can read"),
                           ([os.path.join(out, "missing", "x.pt"), cks[0], cks[1]], "folder does not exist")):
            try:
                average.main(argv)
            except SystemExit as e:
                assert what in str(e.code), e.code
            else:
                raise AssertionError(f"{argv} was not refused")
            assert not [f for f in os.listdir(out) if f.startswith("no.pt")], os.listdir(out)
        # exported as it is: the manifest names the steps averaged
        rc = train_arith.main([x for x in BASE if x != "--no-export"]
                              + ["--format", "padrev", "--time-budget", "0", "--resume", "--ort-check-n", "4",
                                 "--out", os.path.join(out, "avg"), "--name", "t"])
        assert rc == 0
        with open(os.path.join(out, "avg", "t.json")) as f:
            tr = json.load(f)["training"]
        assert tr["averaged_steps"] == [man["steps"] + 2, man["steps"] + 4] and tr["steps"] == man["steps"] + 4


def test_ema_is_what_is_evaluated_and_exported():
    import onnx
    man = arcm.manifest_json(BUNDLE)["training"]
    base = [x for x in BASE if x != "--no-export"] + ["--format", "padrev", "--time-budget", "60", "--ema", "0.5",
                                                      "--ort-check-n", "4", "--save-optimizer", "--name", "t",
                                                      "--log-every", "2", "--eval-every", "0", "--quick-eval-n", "2"]
    with tempfile.TemporaryDirectory() as out:
        assert train_arith.main(base + ["--steps", str(man["steps"] + 4), "--out", out, "--init-from", BUNDLE]) == 0
        ck = torch.load(os.path.join(out, "t.pt"), weights_only=False)
        assert int(ck["ema"]["n_averaged"]) == 4
        avg = arith_model.ema_weights(ck)
        raw = ck["model"]
        assert avg.keys() == raw.keys()
        assert any(not torch.equal(avg[k], raw[k]) for k in avg)  # the average lags the weights
        # what was exported is the average, not the last weights
        sd = arcm.state_dict_from_graph(onnx.load(os.path.join(out, "t.onnx")))
        for k, v in avg.items():
            assert torch.allclose(torch.from_numpy(np.array(sd[k])), v, atol=1e-6), k
        with open(os.path.join(out, "t.json")) as f:
            tr = json.load(f)["training"]
        assert tr["ema"] == 0.5 and tr["ema_steps"] == 4
        with open(os.path.join(out, "t.log.json")) as f:  # quick evaluations ran (of the average)
            evs = [e["step"] for e in json.load(f)["evals"]]
            assert len(evs) == 2 and all(man["steps"] < e <= man["steps"] + 4 for e in evs), (evs, man["steps"])
        # eval_arith.py --ema reads that average from the checkpoint; without, the last weights
        js = os.path.join(out, "e.json")
        for flag, kind in (([], "pt"), (["--ema"], "pt EMA")):
            eval_arith.main([os.path.join(out, "t.pt"), "--n", "2", "--digits", "2", "--json", js] + flag)
            with open(js) as f:
                assert [m["kind"] for m in json.load(f)["models"]] == [kind]
        model, _ = arith_model.load_checkpoint(os.path.join(out, "t.pt"), ema=True)
        assert all(torch.equal(v, avg[k]) for k, v in model.state_dict().items())
        plain = os.path.join(out, "plain.pt")  # a checkpoint of a run without --ema: skipped, said why
        torch.save({k: v for k, v in ck.items() if k != "ema"}, plain)
        with contextlib.redirect_stdout(io.StringIO()) as said:
            try:
                eval_arith.main([plain, "--ema", "--n", "2", "--json", os.path.join(out, "no.json")])
            except SystemExit as e:
                assert "no model could be read" in str(e.code), e.code
            else:
                raise AssertionError("--ema on a checkpoint without one was not refused")
        assert "trained without --ema" in said.getvalue() and not os.path.exists(os.path.join(out, "no.json"))
        # --resume continues the average (the checkpoint holds the raw weights and the average apart)
        assert train_arith.main(base + ["--steps", str(man["steps"] + 6), "--out", out, "--resume"]) == 0
        assert int(torch.load(os.path.join(out, "t.pt"), weights_only=False)["ema"]["n_averaged"]) == 6
    with contextlib.redirect_stderr(io.StringIO()) as err:  # argparse: usage and message on stderr, exit 2
        assert refused(BASE + ["--format", "padrev", "--ema", "1"]) == "2"
    assert "--ema must be in [0, 1)" in err.getvalue()


def test_moving_average_ramps_its_decay():
    model = torch.nn.Linear(3, 2)
    ema = train_arith.moving_average(model, 0.9)
    start = [p.detach().clone() for p in model.parameters()]
    ema.update_parameters(model)  # the first update copies the weights
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)  # then d = min(0.9, 2/11): the average moves 9/11 of the way
    for p, s0 in zip(ema.module.parameters(), start):
        assert torch.allclose(p, s0 + 9 / 11, atol=1e-6)
    for p, s0 in zip(model.parameters(), start):  # the model itself is untouched
        assert torch.equal(p, s0 + 1.0)


def test_init_from_refuses_what_does_not_fit():
    with tempfile.TemporaryDirectory() as out:
        args = BASE + ["--time-budget", "0", "--out", out, "--name", "t"]
        msg = refused(args + ["--format", "plain", "--init-from", BUNDLE])
        assert "was trained for" in msg and "padrev" in msg, msg
        msg = refused(args + ["--format", "padrev", "--d-model", "64", "--init-from", BUNDLE])
        assert "another shape" in msg, msg
        bad = os.path.join(out, "bad.arcm")
        with open(bad, "wb") as f:
            f.write(b"not a bundle at all")
        msg = refused(args + ["--format", "padrev", "--init-from", bad])
        assert "not an .arcm bundle" in msg, msg
        msg = refused(args + ["--format", "padrev", "--init-from", os.path.join(out, "missing.arcm")])
        assert "missing.arcm" in msg, msg
        with open(BUNDLE, "rb") as f:
            whole = f.read()
        for n, what in ((40, "truncated"), (100_000, "truncated")):  # header cut; payload cut
            with open(bad, "wb") as f:
                f.write(whole[:n])
            msg = refused(args + ["--format", "padrev", "--init-from", bad])
            assert what in msg, msg
        # a bundle of another model: sentences (46-token vocabulary), and a text model
        ctx = os.path.join(HERE, "trained", "arith-add-ctx-plain.arcm")
        msg = refused(args + ["--format", "padrev", "--init-from", ctx])
        assert "another shape" in msg, msg
        text = os.path.join(HERE, "..", "text-small.arcm")
        msg = refused(args + ["--format", "padrev", "--init-from", text])
        assert "not an arithmetic transformer" in msg or "weights do not fit" in msg, msg
        # a bundle without its NAME.json
        alone = os.path.join(out, "alone.arcm")
        with open(alone, "wb") as f:
            f.write(whole)
        msg = refused(args + ["--format", "padrev", "--init-from", alone])
        assert "no manifest" in msg, msg
        assert sorted(os.listdir(out)) == ["alone.arcm", "bad.arcm"], os.listdir(out)


def test_grow_starts_where_the_bundle_is():
    # --grow: the bundle's blocks in order, the added ones identity maps, so the grown model's
    # logits are the bundle's; --schedule-start puts a continued run at the top of a new cosine
    want, _ = arcm.load_model(BUNDLE)
    man = arcm.manifest_json(BUNDLE)["training"]
    assert train_arith.grown_positions(4, 6) == [0, 1, 3, 4] and train_arith.grown_positions(4, 8) == [0, 2, 4, 6]
    assert train_arith.grown_positions(2, 6) == [1, 4]  # new, old, new, new, old, new
    with tempfile.TemporaryDirectory() as out:
        args = BASE + ["--format", "padrev", "--out", out, "--init-from", BUNDLE]
        assert train_arith.main(args + ["--time-budget", "0", "--name", "g", "--grow", "--layers", "6"]) == 0
        ck = torch.load(os.path.join(out, "g.pt"), weights_only=False)
        assert ck["model_cfg"]["layers"] == 6 and ck["step"] == man["steps"]
        grown = arith_model.ArithTransformer(**ck["model_cfg"])
        grown.load_state_dict(ck["model"])
        x = torch.randint(0, want.cfg["vocab"], (4, want.cfg["context_len"]))
        with torch.no_grad():
            assert torch.equal(grown.eval()(x), want(x))
        for sched, top in (([], False), (["--schedule-start", str(man["train_seconds"])], True)):
            assert train_arith.main(args + ["--time-budget", "1", "--warmup", "1",
                                            "--log-every", "1", "--lr", "1e-3", "--name", f"s{top}"] + sched) == 0
            with open(os.path.join(out, f"s{top}.log.json")) as f:
                lr = json.load(f)["records"][0]["lr"]
            assert (lr > 9e-4) == top, (sched, lr)
        msg = refused(args + ["--time-budget", "0", "--name", "r", "--layers", "6"])
        assert "another shape" in msg and "--grow" in msg, msg
        for more in (["--layers", "4"], ["--layers", "6", "--d-model", "64"]):
            msg = refused(args + ["--time-budget", "0", "--name", "r", "--grow"] + more)
            assert "not a shallower model" in msg, msg
        msg = refused(args + ["--time-budget", "0", "--name", "r", "--schedule-start", "1e9"])
        assert "cannot start after" in msg, msg
        assert not [f for f in os.listdir(out) if f.startswith("r.")], os.listdir(out)


def test_resume_cuts_a_later_log():
    # a checkpoint older than its log (an average.py mean, a snapshot kept while the run went
    # on): the resumed log, and the loss the manifest reports, end at the checkpoint's step
    man = arcm.manifest_json(BUNDLE)["training"]
    with tempfile.TemporaryDirectory() as out:
        args = BASE + ["--format", "padrev", "--out", out, "--name", "t", "--resume", "--init-from", BUNDLE,
                       "--time-budget", "60", "--log-every", "1"]
        assert train_arith.main(args + ["--steps", str(man["steps"] + 2)]) == 0
        early = os.path.join(out, "early.pt")
        shutil.copy(os.path.join(out, "t.pt"), early)
        assert train_arith.main(args + ["--steps", str(man["steps"] + 4)]) == 0
        shutil.copy(early, os.path.join(out, "t.pt"))
        assert train_arith.main(args + ["--steps", str(man["steps"] + 2)]) == 0
        with open(os.path.join(out, "t.log.json")) as f:
            log = json.load(f)
        assert max(r["step"] for r in log["records"]) == man["steps"] + 2, log["records"]
        assert log["final"]["loss"] == log["records"][-1]["loss"]


def test_hard_mining_trains_on_the_wrong_ones():
    # hardest() picks the problems the model gets most wrong: a batch of right examples with a
    # few answers corrupted (which a 98% multiplier predicts with a large loss) gives exactly those
    model, _ = arcm.load_model(BUNDLE)
    rng = np.random.default_rng(5)
    toks, qlen, length = F.train_batch(rng, 32, "*", "padrev", 6, 6, "linear")
    pos = np.arange(1, toks.shape[1])[None, :]
    wmask = ((pos >= qlen[:, None]) & (pos < length[:, None])).astype(np.float32)
    bad = [3, 17, 29]
    for i in bad:
        toks[i, qlen[i] + 1] = (toks[i, qlen[i] + 1] + 5) % 10  # the second answer digit
    assert list(train_arith.hardest(model, toks, wmask, 3, "cpu", False)) == bad
    # ranked by the training loss itself: summed over the batch and divided by the answer tokens,
    # it is the mean cross-entropy of every answer token
    x, w = torch.from_numpy(toks), torch.from_numpy(wmask)
    with torch.no_grad():
        lg = model(x[:, :-1])
        per = train_arith.answer_ce(lg, x, w)
        flat = torch.nn.functional.cross_entropy(lg[w > 0], x[:, 1:][w > 0])
    assert per.shape == (32,) and torch.allclose(per.sum() / w.sum(), flat)
    with tempfile.TemporaryDirectory() as out:
        man = arcm.manifest_json(BUNDLE)["training"]
        args = BASE + ["--format", "padrev", "--out", out, "--init-from", BUNDLE, "--time-budget", "60"]
        assert train_arith.main(args + ["--name", "h", "--hard-mining", "3", "--steps", str(man["steps"] + 2)]) == 0
        ck = torch.load(os.path.join(out, "h.pt"), weights_only=False)
        assert ck["examples"] == man["examples_seen"] + 2 * 8  # the trained problems, not the drawn ones
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert refused(args + ["--name", "r", "--hard-mining", "0"]) == "2"
        assert "--hard-mining must be >= 1" in err.getvalue(), err.getvalue()
        assert not [f for f in os.listdir(out) if f.startswith("r.")], os.listdir(out)


def test_error_positions():
    pairs = [(123456, 654321), (999999, 999999), (12, 34)]
    right = [F.encode(F.make_answer(x, y, "*", "padrev", 6)) + [F.END] for x, y in pairs]
    gen = [list(right[0]), list(right[1]), right[2][:3]]  # one right, two wrong
    gen[1][6] = (gen[1][6] + 1) % 10
    gen[1][7] = (gen[1][7] + 1) % 10
    e = eval_arith.error_positions("*", "padrev", 6, pairs, gen)
    # pair 3 stops after 3 characters: positions 3..12 (END included) count as wrong
    assert e["wrong"] == 2 and e["by_count"] == {2: 1, 10: 1}, e
    assert e["by_position"] == [0, 0, 0, 1, 1, 1, 1 + 1, 1 + 1, 1, 1, 1, 1, 1], e


def test_eval_reads_a_bundle():
    with tempfile.TemporaryDirectory() as out:
        js = os.path.join(out, "e.json")
        assert eval_arith.main([BUNDLE, "--n", "20", "--digits", "3", "--errors", "3", "--json", js]) == 0
        with open(js) as f:
            m = json.load(f)["models"][0]
        assert m["kind"] == "arcm" and m["name"] == "arith-mul-padrev", m
        assert m["res"]["2"] == [20, 20] and m["errors"]["wrong"] == 20 - m["res"]["3"][0], m
        assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
        # refused, nothing written: a digit count no model is evaluated at, nothing readable
        for argv, what in (([BUNDLE, "--errors", "7"], "no model is evaluated at 7 x 7"),
                           ([BUNDLE, "--digits", "3", "--errors", "4"], "no model is evaluated at 4 x 4"),
                           ([os.path.join(out, "missing.arcm")], "no model could be read")):
            try:
                eval_arith.main(argv + ["--n", "5", "--json", os.path.join(out, "no.json")])
            except SystemExit as e:
                assert what in str(e.code), e.code
            else:
                raise AssertionError(f"{argv} was not refused")
        assert sorted(os.listdir(out)) == ["e.json"], os.listdir(out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    tests = [(k, v) for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for k, fn in tests:
        fn()
        print(f"ok  {k}")
    print(f"{len(tests)} tests passed")
