#!/usr/bin/env python3
"""Unit checks of models/arith/formats.py.

Runs under pytest (`python -m pytest models/arith/test_formats.py`) or as a plain script
(`models/.venv/bin/python models/arith/test_formats.py`), which runs every test_* function.
"""
import os
import random
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import formats as F  # noqa: E402


def test_vocab_ids():
    assert F.VOCAB == "0123456789+*= $_" and F.VOCAB_SIZE == 16
    assert [F.CHAR_TO_ID[c] for c in "0123456789"] == list(range(10))
    assert (F.PLUS, F.TIMES, F.EQ, F.SPACE, F.END, F.PAD) == (10, 11, 12, 13, 14, 15)
    assert F.encode("+*= $_") == [10, 11, 12, 13, 14, 15]


def test_docstring_examples():
    for a, b, op, fmt, w, s in F.EXAMPLES:
        assert F.make_example(a, b, op, fmt, w) == s, (a, b, op, fmt, w, F.make_example(a, b, op, fmt, w))
    # every example line written in the docstring's padrev block is true
    found = list(re.finditer(r"W = (\d+), +(\d+) ([+*]) (\d+): +(\S+)", F.__doc__))
    assert len(found) == 6, len(found)
    for m in found:
        w, a, op, b, text = int(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
        assert F.make_example(a, b, op, "padrev", w) == text, m.group(0)
        assert (a, b, op, "padrev", w, text) in F.EXAMPLES
    for text in ("123+45=168$", "1+0=1$", "123*45=5535$", "0*977=0$"):
        assert text in F.__doc__
        q, ans = text[:-1].split("=")
        a, b = map(int, re.split(r"[+*]", q))
        op = "+" if "+" in q else "*"
        assert F.make_example(a, b, op, "plain") == text
    # the docstring's illustrative spaces draws are valid spaces-format strings of 123+45
    for text in ("1 2 3+45 =168$", "123+4 5=168$", "123+45=168$"):
        assert text in F.__doc__
        assert text.replace(" ", "") == "123+45=168$" and "  " not in text and not text.startswith(" ")


def test_encode_decode_roundtrip():
    r = random.Random(1)
    for _ in range(2000):
        op = r.choice("+*")
        fmt = r.choice(["plain", "padrev"] + (["spaces"] if op == "+" else []))
        w = r.randint(1, 9)
        a, b = r.randrange(10 ** w), r.randrange(10 ** w)
        s = F.make_example(a, b, op, fmt, w, r)
        ids = F.encode(s)
        assert all(0 <= i < 16 for i in ids)
        assert ids[-1] == F.END and ids.count(F.END) == 1
        assert F.decode(ids, stop_at_end=False) == s
        assert F.decode(ids) == s[:-1]
        assert F.decode(ids + [F.PAD, F.PAD]) == s[:-1]
        assert F.decode(ids + [F.PAD], stop_at_end=False) == s + "_"
    try:
        F.encode("12a")
        raise AssertionError("encode accepted a bad character")
    except ValueError:
        pass


def test_parse_answer_of_correct_answers():
    r = random.Random(2)
    for _ in range(3000):
        op = r.choice("+*")
        fmt = r.choice(["plain", "padrev"] + (["spaces"] if op == "+" else []))
        w = r.randint(1, 10)
        a, b = r.randrange(10 ** r.randint(1, w)), r.randrange(10 ** r.randint(1, w))
        c = a + b if op == "+" else a * b
        ans = F.make_answer(a, b, op, fmt, w)
        assert F.parse_answer(ans, fmt, op, w) == c
        assert F.parse_answer(ans + "$", fmt, op, w) == c
        assert F.parse_answer(ans + "$__", fmt, op, w) == c
        assert F.parse_answer(F.make_example(a, b, op, fmt, w, r), fmt, op, w) == c
        if fmt == "padrev":
            assert len(ans) == F.answer_len(op, w)
    for bad in ("", "$", "1 2", "12+3", "x"):
        try:
            F.parse_answer(bad, "plain", "+")
            raise AssertionError(f"parse_answer accepted {bad!r}")
        except ValueError:
            pass
    assert F.parse_answer("861000", "padrev", "+", 5) == 168


def test_padrev_layout():
    for op, w in (("+", 10), ("*", 5), ("+", 3)):
        R = F.answer_len(op, w)
        assert R == (w + 1 if op == "+" else 2 * w)
        r = random.Random(3)
        for _ in range(200):
            a, b = r.randrange(10 ** w), r.randrange(10 ** w)
            s = F.make_example(a, b, op, "padrev", w)
            assert len(s) == 2 * w + 2 + R + 1 == F.max_seq_len(op, "padrev", w, w)
            assert s[w] == op and s[2 * w + 1] == "="
    try:
        F.make_question(100000, 1, "+", "padrev", 5)
        raise AssertionError("operand wider than W accepted")
    except ValueError:
        pass


def test_spaces_format():
    r = random.Random(4)
    nspaces = 0
    for _ in range(2000):
        a, b = r.randrange(10 ** r.randint(1, 8)), r.randrange(10 ** r.randint(1, 8))
        s = F.make_example(a, b, "+", "spaces", None, r)
        q, ans = s.split("=")
        assert s.replace(" ", "") == F.make_example(a, b, "+", "plain")
        assert not s.startswith(" ") and "  " not in s and " " not in ans
        nspaces += s.count(" ")
        assert len(s) <= F.max_seq_len("+", "spaces", 8, None, with_spaces=True)
    assert nspaces > 1000
    assert F.make_question(123, 45, "+", "spaces", None, None) == "123+45="  # test-time form
    try:
        F.make_question(1, 2, "*", "spaces")
        raise AssertionError("spaces accepted multiplication")
    except ValueError:
        pass


def test_heldout_hash_vectors_and_determinism():
    for a, b, op, h in F.HASH_EXAMPLES:
        assert F.pair_hash(a, b, op) == h, (a, b, op, hex(F.pair_hash(a, b, op)))
    for a, b, op in F.HELDOUT_EXAMPLES:
        assert F.is_heldout(a, b, op)
    assert not F.is_heldout(123, 45, "+") and not F.is_heldout(123, 45, "*")
    assert not any(F.is_heldout(a, b, "+") for a in range(10) for b in range(10))
    assert [(a, b) for a in range(10) for b in range(10) if F.is_heldout(a, b, "*")] == [(9, 4)]
    # numpy version equals the reference, including large values
    r = np.random.default_rng(5)
    a = np.concatenate([r.integers(0, 10 ** 10, 20000), r.integers(0, 100, 20000)])
    b = np.concatenate([r.integers(0, 10 ** 10, 20000), r.integers(0, 100, 20000)])
    for op in "+*":
        v = F.is_heldout_np(a, b, op)
        ref = np.array([F.is_heldout(int(x), int(y), op) for x, y in zip(a, b)])
        assert (v == ref).all()
        frac = v[:20000].mean()
        assert 0.007 < frac < 0.013, frac
    # deterministic eval sets, held out only, right digit counts
    for op in "+*":
        for d in (2, 3, 6):
            p1 = F.heldout_pairs(op, d, 50, seed=0)
            assert p1 == F.heldout_pairs(op, d, 50, seed=0)
            assert len(p1) == 50 and len(set(p1)) == 50
            assert all(F.is_heldout(x, y, op) and len(str(x)) == d and len(str(y)) == d for x, y in p1)
    assert F.heldout_pairs("+", 1, 50) == []
    assert F.heldout_pairs("*", 1, 50) == [(9, 4)]
    assert len(F.heldout_pairs("+", 2, 10 ** 6)) == 97


def test_training_sampler_excludes_heldout_and_balances_digits():
    r = np.random.default_rng(6)
    for op in "+*":
        a, b = F.sample_operands(r, 100000, op, 6)
        assert not F.is_heldout_np(a, b, op).any()
        da = F._ndigits(a)
        counts = np.bincount(da, minlength=7)[1:]
        assert counts.min() > 0.9 * 100000 / 6, counts
        assert a.max() < 10 ** 6 and b.max() < 10 ** 6


def test_linear_digit_distribution():
    assert np.allclose(F.digit_probs("linear", 4), [0.1, 0.2, 0.3, 0.4])
    assert np.allclose(F.digit_probs("uniform", 4), 0.25)
    assert np.allclose(F.digit_probs("square", 3), [1 / 14, 4 / 14, 9 / 14])
    r = np.random.default_rng(7)
    a, b = F.sample_operands(r, 60000, "*", 6, dist="linear")
    assert not F.is_heldout_np(a, b, "*").any()
    for x in (a, b):
        share = np.bincount(F._ndigits(x), minlength=7)[1:] / len(x)
        assert np.abs(share - np.arange(1, 7) / 21).max() < 0.01, share
    try:
        F.digit_probs("cubic", 3)
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown distribution must be refused")


def test_encode_batch_matches_reference():
    r = np.random.default_rng(7)
    for op, fmt, D, w in (("+", "plain", 10, None), ("*", "plain", 5, None), ("+", "padrev", 10, 10),
                          ("*", "padrev", 5, 5), ("+", "spaces", 8, None), ("+", "padrev", 3, 5)):
        a, b = F.sample_operands(r, 3000, op, D)
        a[:3], b[:3] = [0, 10 ** D - 1, 5], [0, 10 ** D - 1, 10 ** (D - 1)]
        toks, qlen, length = F.encode_batch(a, b, op, fmt, w, None)
        assert toks.dtype == np.int64
        for i in range(len(a)):
            s = F.make_example(int(a[i]), int(b[i]), op, fmt, w)
            ids = F.encode(s)
            assert length[i] == len(ids) and list(toks[i, :length[i]]) == ids, (s, toks[i])
            assert (toks[i, length[i]:] == F.PAD).all()
            assert qlen[i] == len(F.make_question(int(a[i]), int(b[i]), op, fmt, w))
        assert length.max() == toks.shape[1]
    # spaces with training rng: removing spaces gives the plain encoding, spaces only in gaps
    a, b = F.sample_operands(r, 3000, "+", 8)
    toks, qlen, length = F.encode_batch(a, b, "+", "spaces", None, r)
    n_sp = 0
    for i in range(len(a)):
        ids = list(toks[i, :length[i]])
        plain = F.encode(F.make_example(int(a[i]), int(b[i]), "+", "plain"))
        assert [t for t in ids if t != F.SPACE] == plain
        s = F.decode(ids, stop_at_end=False)
        assert not s.startswith(" ") and "  " not in s and " " not in s.split("=")[1]
        assert qlen[i] == s.index("=") + 1
        n_sp += s.count(" ")
    assert n_sp > 3000
    assert toks.shape[1] <= F.max_seq_len("+", "spaces", 8, None, with_spaces=True)


def test_max_lengths():
    assert F.max_seq_len("+", "padrev", 10, 10) == 34
    assert F.max_seq_len("+", "plain", 10) == 34
    assert F.max_seq_len("*", "padrev", 5, 5) == 23
    assert F.max_seq_len("*", "plain", 5) == 23
    assert F.max_seq_len("+", "spaces", 8, None, with_spaces=True) == 45
    assert len(F.make_example(10 ** 10 - 1, 10 ** 10 - 1, "+", "plain")) == 34


# ----------------------------------------------------------------------------- sentences (context.py)

import context as C  # noqa: E402


def test_context_vocab_and_templates():
    assert C.CTX_VOCAB.startswith(F.VOCAB) and C.CTX_VOCAB_SIZE == 46
    assert C.encode("az.,?'") == [16, 41, 42, 43, 44, 45]
    assert C.SEP not in C.CTX_VOCAB
    for t in C.TRAIN_TEMPLATES + C.HELDOUT_TEMPLATES:
        assert t.endswith(" ") and t.count("{a}") == 1 and t.count("{b}") == 1
        for name in C.NAMES:
            for thing in C.THINGS:
                C.encode(C.render(t, 12, 345, name, thing))  # every character is a token
    assert not set(C.TRAIN_TEMPLATES) & set(C.HELDOUT_TEMPLATES)
    for lst in (C.NAMES, C.THINGS, C.TRAIN_TEMPLATES, C.HELDOUT_TEMPLATES):
        assert len(set(lst)) == len(lst) and all(C.SEP not in x for x in lst)


def test_context_examples_and_eval_prompts():
    for t, a, b, name, thing, text in C.EXAMPLES:
        assert C.render(t, a, b, name, thing) + C.sentence_answer(a, b) + "$" == text
    # Vectors the Rust mirror checks too (runtime/core/src/arith/tests.rs).
    assert C.eval_prompt(93, 52, C.HELDOUT_TEMPLATES) == "how much is 93 plus 52? it is "
    assert C.eval_prompt(61, 71, C.HELDOUT_TEMPLATES) == "hugo found 61 eggs and then 71 more, so hugo has "
    assert C.eval_prompt(930, 407, C.TRAIN_TEMPLATES) == "we had 930 stamps, then 407 more came. now we have "
    assert C.eval_prompt(12345, 67890, C.HELDOUT_TEMPLATES) == "put 12345 and 67890 together and you have "


def test_context_spaces_rule():
    r = random.Random(5)
    prompt = "the sum of 123 and 45 is "
    seen = set()
    for _ in range(500):
        s = F.random_spaces(prompt, r)
        assert s.replace(" ", "") == prompt.replace(" ", "")
        assert "  " not in s and s[0] != " " and s.endswith(" ")
        seen.add(s)
    assert len(seen) > 100
    # on a plain question it is formats.py's rule: one optional space per gap, none at the ends
    for _ in range(200):
        s = F.random_spaces("123+45=", r)
        assert s.replace(" ", "") == "123+45=" and "  " not in s and not s.startswith(" ")


def test_context_batches():
    rng, pyrng = np.random.default_rng(3), random.Random(3)
    for fmt in ("plain", "spaces"):
        toks, qlen, length = C.train_batch(rng, 400, fmt, 5, 0.5, pyrng)
        sentences = 0
        for row, q, n in zip(toks, qlen, length):
            text = C.decode(row[:n], stop_at_end=False)
            assert text.endswith("$") and row[n - 1] == F.END and (row[n:] == F.PAD).all()
            prompt, answer = text[:q], text[q:-1]
            nums = [int(x) for x in re.findall(r"\d+", prompt.replace(" ", ""))]
            if prompt.endswith("="):
                assert answer == str(sum(nums))
            else:
                sentences += 1
                assert answer == f"{sum(nums)}." and prompt.endswith(" ")
            assert len(nums) == 2 and not F.is_heldout(nums[0], nums[1], "+")
            if fmt == "plain":
                assert "  " not in prompt
        assert 150 < sentences < 250
    assert C.context_len(5, 5, True) > C.context_len(5, 5, False) >= max(
        len(C.eval_prompt(99999, 99999, t)) + 7 for t in (C.TRAIN_TEMPLATES, C.HELDOUT_TEMPLATES))


def test_running_sums():
    rng = np.random.default_rng(5)
    for w in (1, 3, 6):
        a, b = F.sample_operands(rng, 300, "*", w)
        s = F.running_sums(a, b, w)
        toks, qlen, _ = F.encode_batch(a, b, "*", "padrev", w)
        # each answer digit is its running sum mod 10, and the sums rebuild the product
        assert (s % 10 == toks[:, qlen[0]:qlen[0] + 2 * w]).all()
        for x, y, row in zip(a, b, s):
            assert int(row[-1]) < 10
            assert sum(int(v % 10) * 10 ** k for k, v in enumerate(row)) == int(x) * int(y)
    assert F.running_sums([99], [99], 2).tolist() == [[81, 170, 98, 9]]
    # aligned with the outputs: each marked output predicts the next token, its sum's last digit
    for fmt, w in (("padrev", 4), ("plain", 4), ("plain", 6)):
        a, b = F.sample_operands(rng, 300, "*", 4)
        toks, qlen, length = F.encode_batch(a, b, "*", fmt, 4 if fmt == "padrev" else None)
        sums, mask = F.running_sum_targets(a, b, fmt, w, qlen, length, toks.shape[1] - 1)
        assert (mask.sum(1) == length - qlen - 1).all()
        assert (sums[mask] % 10 == toks[:, 1:][mask]).all() and (sums[~mask] == 0).all()


if __name__ == "__main__":
    tests = [(k, v) for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for k, fn in tests:
        fn()
        print(f"ok  {k}")
    print(f"{len(tests)} tests passed")
