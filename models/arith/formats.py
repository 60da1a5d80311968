#!/usr/bin/env python3
"""Text formats, vocabulary and held-out split of arca's arithmetic models (issue #8).

Reference for the Rust mirror: everything below marked **[spec]** must be reproduced exactly.
The formats follow "Positional Description Matters for Transformers Arithmetic"
(Shen et al., 2023, arXiv:2311.14737): zero-padding + reversed result, and random spaces.

Vocabulary [spec]
-----------------
16 tokens; the id of a character is its index in ``VOCAB = "0123456789+*= $_"``:

    id  0..9  digits '0'..'9'
    id  10    '+'
    id  11    '*'
    id  12    '='
    id  13    ' '   (space; only in questions of the `spaces` format during training)
    id  14    END   (end of answer; written '$' in text form)
    id  15    PAD   (padding after the end of a sequence; written '_' in text form; never predicted
                     in training, the loss ignores it)

``vocab_size`` = 16 = logits per position. A sequence is ``question + answer + END``:
the question ends with '='; the answer is digits only; there is no BOS token.

Operations and numbers [spec]
-----------------------------
``op`` is '+' (task ``add``) or '*' (task ``mul``); a, b are non-negative integers. The *digit
count* of n is ``len(str(n))`` (0 has 1 digit). c = a + b or a * b.

Formats [spec]
--------------
``plain`` (the paper's "basic" format): question ``f"{a}{op}{b}="``, answer ``str(c)``
(most significant digit first, no leading zeros)::

    123+45=168$          1+0=1$          123*45=5535$          0*977=0$

``padrev`` (padded + reversed), with the model's width W (every operand must have <= W digits):
operands zero-padded on the left to exactly W digits, most significant digit first; the result
written least significant digit first and zero-padded on the right (i.e. ``str(c).zfill(R)[::-1]``)
to exactly R digits, R = W + 1 for '+', R = 2W for '*'. Every sequence of a given (op, W) has the
same length 2W + 2 + R + 1. Examples (tested, see ``EXAMPLES``)::

    W = 5,  123 + 45:     00123+00045=861000$       (168 -> "000168" -> reversed "861000")
    W = 5,  99999 + 99999: 99999+99999=899991$      (199998 reversed)
    W = 3,  7 + 5:        007+005=2100$             (12 -> "0012" -> "2100")
    W = 10, 9999999999 + 1: 9999999999+0000000001=00000000001$
    W = 5,  123 * 45:     00123*00045=5355000000$   (5535 -> "0000005535" -> reversed)
    W = 5,  99999 * 99999: 99999*99999=1000089999$  (9999800001 reversed)

``spaces`` (random spaces, '+' only): exactly ``plain``, except that in *training* examples the
question carries random spaces. Training rule: draw p ~ Uniform[0, SPACE_P_MAX) (SPACE_P_MAX =
0.5) once per example; then each of the gaps between two consecutive question characters
(including the gap before '=') independently receives one space with probability p. So there is
never a space before the first character, never two spaces in a row, never a space after '='
and never a space in the answer. At *test/inference* time questions have no spaces, i.e. the
question is exactly the ``plain`` question, and the model answers in ``plain`` form. Examples
(training draws)::

    1 2 3+45 =168$        123+4 5=168$        123+45=168$

My reading of the paper (the text itself was not available here): the paper's "random space"
format inserts random spaces between the characters of the basic format so that absolute
positions of digits vary and the model must locate digits by content, which helps length
extrapolation with absolute positional embeddings. Inserting spaces only in the question (not
the answer) keeps the target deterministic; testing without spaces is the in-distribution p = 0
end of the training distribution.

Text form, encode / decode [spec]
---------------------------------
``encode(s)``: each character -> its id in VOCAB ('$' -> END, '_' -> PAD); any other character
is an error. ``decode(ids)``: ids -> characters; by default it stops at the first END (END not
included); ``decode(ids, stop_at_end=False)`` renders END as '$' and PAD as '_'.

``parse_answer(text, fmt, op, width) -> int``: ``text`` is an answer (e.g. the decoded
continuation), optionally a full sequence (then the part after the last '=' is used); it is cut
at the first '$' or '_'; what remains must be a non-empty string of digits (else ValueError).
plain / spaces: int(text); padrev: int(text reversed).

Exact match (evaluation) [spec]: greedy decoding from the question tokens; the prediction is
correct iff the generated tokens up to and including the first END equal ``encode(answer) +
[END]`` exactly (same length, same digits, padding zeros included for padrev).

Held-out split [spec]
---------------------
All arithmetic is modulo 2^64 (Rust: wrapping_mul / wrapping_add on u64)::

    mix64(z):  z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
               z ^= z >> 31; return z
    opkey('+') = 0x9E3779B97F4A7C15        opkey('*') = 0x3C6EF372FE94F82A   (= 2 * the first)
    pair_hash(a, b, op) = mix64( mix64(a ^ opkey(op)) + b )
    held_out(a, b, op)  = pair_hash(a, b, op) % 100 == 0        (about 1% of all pairs)

(a, b) and (b, a) are different pairs. The split does not depend on the format, so every
model of one task shares the same held-out pairs. Training never uses a held-out pair;
evaluation uses only held-out pairs. Test vectors (in ``HASH_EXAMPLES``, tested)::

    pair_hash(0, 0, '+')    = 0x48218226ff3cd4bf
    pair_hash(123, 45, '+') = 0xff8698d48ec59ce4      not held out
    pair_hash(123, 45, '*') = 0xd9d37ae4e711931f      not held out
    held out: (4, 25, '+'), (7, 88, '+'), (12, 34, '+'), (2, 10, '*'), (9, 4, '*')

Among 1-digit x 1-digit pairs, no addition pair is held out and one multiplication pair is
(9*4), so evaluation has no 1-digit addition row; 2-digit + 2-digit has 97 held-out pairs,
3-digit + 3-digit 8,073 (2-digit * 2-digit 82, 3-digit * 3-digit 8,170).

Training distribution
---------------------
For each example: digit counts da, db drawn independently and uniformly from 1..max_digits
(training may weight them instead, ``DIGIT_DISTS``: ``linear`` draws d with probability
proportional to d, ``square`` proportional to d^2, so the widest products, the hardest, are more
frequent);
a uniform among the numbers with da digits (0..9 for da = 1, 10^(da-1)..10^da - 1 otherwise),
b likewise; if (a, b, op) is held out, a and b are redrawn with the same digit counts.

Evaluation sets (Python only, not part of the Rust spec): ``heldout_pairs(op, d, n, seed)``
gives up to n held-out pairs whose operands both have exactly d digits (all of them when fewer
exist; for d = 1 there are only a handful of held-out pairs among the 100).
"""
import functools
import random

import numpy as np

VOCAB = "0123456789+*= $_"
VOCAB_SIZE = len(VOCAB)  # 16
PLUS, TIMES, EQ, SPACE, END, PAD = 10, 11, 12, 13, 14, 15
END_CHAR, PAD_CHAR = "$", "_"
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}
OPS = {"add": "+", "mul": "*"}
FORMATS = ("plain", "padrev", "spaces")
SPACE_P_MAX = 0.5
HELDOUT_MOD = 100

M64 = (1 << 64) - 1
OPKEY = {"+": 0x9E3779B97F4A7C15, "*": 0x3C6EF372FE94F82A}

# Exact, tested examples: (a, b, op, fmt, width, full sequence text)
EXAMPLES = [
    (123, 45, "+", "plain", None, "123+45=168$"),
    (1, 0, "+", "plain", None, "1+0=1$"),
    (123, 45, "*", "plain", None, "123*45=5535$"),
    (0, 977, "*", "plain", None, "0*977=0$"),
    (123, 45, "+", "padrev", 5, "00123+00045=861000$"),
    (99999, 99999, "+", "padrev", 5, "99999+99999=899991$"),
    (7, 5, "+", "padrev", 3, "007+005=2100$"),
    (123, 45, "*", "padrev", 5, "00123*00045=5355000000$"),
    (99999, 99999, "*", "padrev", 5, "99999*99999=1000089999$"),
    (123, 45, "+", "spaces", None, "123+45=168$"),  # test-time form: no spaces
    (9999999999, 1, "+", "padrev", 10, "9999999999+0000000001=00000000001$"),
]


def _op(op):
    """Accept '+', '*', 'add', 'mul'."""
    op = OPS.get(op, op)
    if op not in ("+", "*"):
        raise ValueError(f"unknown op {op!r}")
    return op


# ----------------------------------------------------------------------------- vocabulary

@functools.lru_cache(maxsize=None)
def _ids(vocab):
    return {c: i for i, c in enumerate(vocab)}


def encode(text, vocab=VOCAB):
    """Characters -> list of token ids ('$' = END, '_' = PAD). `vocab`: a larger vocabulary
    that starts with VOCAB (context.py's)."""
    ids = _ids(vocab)
    try:
        return [ids[c] for c in text]
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} not in the vocabulary") from None


def decode(ids, stop_at_end=True, vocab=VOCAB):
    """Token ids -> text. Stops at the first END unless stop_at_end=False ('$', '_' shown)."""
    out = []
    for i in ids:
        i = int(i)
        if not 0 <= i < len(vocab):
            raise ValueError(f"token id {i} out of range")
        if i == END and stop_at_end:
            break
        out.append(vocab[i])
    return "".join(out)


# ----------------------------------------------------------------------------- formats

def result(a, b, op):
    return a + b if _op(op) == "+" else a * b


def answer_len(op, width):
    """R, the padrev answer length."""
    return width + 1 if _op(op) == "+" else 2 * width


def _check(a, b, op, fmt, width):
    if a < 0 or b < 0:
        raise ValueError("operands must be non-negative")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if fmt == "spaces" and op != "+":
        raise ValueError("the spaces format is for addition only")
    if fmt == "padrev":
        if not width or width < 1:
            raise ValueError("padrev needs width >= 1")
        if len(str(a)) > width or len(str(b)) > width:
            raise ValueError(f"operand wider than width {width}")


def make_question(a, b, op, fmt, width=None, rng=None):
    """The question text, ending with '='.

    For fmt='spaces', rng (a random.Random) draws the training spaces; rng=None gives the
    test-time question (no spaces). Other formats ignore rng.
    """
    op = _op(op)
    _check(a, b, op, fmt, width)
    if fmt == "padrev":
        return f"{a:0{width}d}{op}{b:0{width}d}="
    q = f"{a}{op}{b}="
    if fmt == "spaces" and rng is not None:
        q = random_spaces(q, rng)
    return q


def random_spaces(text, rng):
    """The `spaces` training rule: p ~ U[0, SPACE_P_MAX) once, then each gap between two
    consecutive characters of which neither is a space gets one space with probability p (a
    question has no spaces, so every gap qualifies; context.py applies it to sentences)."""
    p = rng.uniform(0.0, SPACE_P_MAX)
    out = [text[0]]
    for prev, ch in zip(text, text[1:]):
        if prev != " " and ch != " " and rng.random() < p:
            out.append(" ")
        out.append(ch)
    return "".join(out)


def make_answer(a, b, op, fmt, width=None):
    """The answer text (digits only, without END)."""
    op = _op(op)
    _check(a, b, op, fmt, width)
    c = result(a, b, op)
    if fmt == "padrev":
        return str(c).zfill(answer_len(op, width))[::-1]
    return str(c)


def make_example(a, b, op, fmt, width=None, rng=None):
    """Full training sequence text: question + answer + '$'."""
    return make_question(a, b, op, fmt, width, rng) + make_answer(a, b, op, fmt, width) + END_CHAR


def parse_answer(text, fmt, op, width=None):
    """Integer value of an answer text (see module docstring). Raises ValueError if malformed."""
    _op(op)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    for stop in (END_CHAR, PAD_CHAR):
        k = text.find(stop)
        if k >= 0:
            text = text[:k]
    if not text or not all("0" <= ch <= "9" for ch in text):
        raise ValueError(f"not an answer: {text!r}")
    return int(text[::-1]) if fmt == "padrev" else int(text)


def max_question_len(op, fmt, digits, width=None, with_spaces=False):
    """Longest question (tokens) with operands of <= digits digits."""
    if fmt == "padrev":
        return 2 * width + 2
    n = 2 * digits + 2
    if with_spaces and fmt == "spaces":
        n += n - 1
    return n


def max_answer_len(op, fmt, digits, width=None):
    op = _op(op)
    if fmt == "padrev":
        return answer_len(op, width)
    return digits + 1 if op == "+" else 2 * digits


def max_seq_len(op, fmt, digits, width=None, with_spaces=False):
    """Longest full sequence (question + answer + END)."""
    return max_question_len(op, fmt, digits, width, with_spaces) + max_answer_len(op, fmt, digits, width) + 1


# ----------------------------------------------------------------------------- held-out split

def mix64(z):
    z &= M64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & M64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return z


def pair_hash(a, b, op):
    return mix64((mix64(a ^ OPKEY[_op(op)]) + b) & M64)


def is_heldout(a, b, op):
    return pair_hash(a, b, op) % HELDOUT_MOD == 0


def _mix64_np(z):
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def is_heldout_np(a, b, op):
    """Vectorized is_heldout for integer arrays (values < 2^63)."""
    with np.errstate(over="ignore"):
        a = np.asarray(a).astype(np.uint64)
        b = np.asarray(b).astype(np.uint64)
        h = _mix64_np(_mix64_np(a ^ np.uint64(OPKEY[_op(op)])) + b)
    return (h % np.uint64(HELDOUT_MOD)) == 0


HASH_EXAMPLES = [(0, 0, "+", 0x48218226FF3CD4BF), (123, 45, "+", 0xFF8698D48EC59CE4),
                 (123, 45, "*", 0xD9D37AE4E711931F)]
HELDOUT_EXAMPLES = [(4, 25, "+"), (7, 88, "+"), (12, 34, "+"), (2, 10, "*"), (9, 4, "*")]


# ----------------------------------------------------------------------------- sampling

def digit_range(d):
    """[lo, hi) of the numbers with exactly d digits."""
    return (0 if d == 1 else 10 ** (d - 1)), 10 ** d


DIGIT_DISTS = ("uniform", "linear", "square")


def digit_probs(dist, max_digits, min_digits=1):
    """Probabilities of the digit counts min_digits..max_digits under a DIGIT_DISTS name."""
    d = np.arange(min_digits, max_digits + 1, dtype=np.float64)
    if dist == "uniform":
        w = np.ones_like(d)
    elif dist == "linear":
        w = d
    elif dist == "square":
        w = d * d
    else:
        raise ValueError(f"unknown digit distribution {dist!r} (expected one of {DIGIT_DISTS})")
    return w / w.sum()


def sample_operands(rng, n, op, max_digits, min_digits=1, dist="uniform"):
    """Training pairs (numpy arrays a, b int64): digit counts drawn from ``dist`` (DIGIT_DISTS),
    held-out pairs excluded."""
    op = _op(op)
    if dist == "uniform":  # the original draw, kept so that seeded runs repeat exactly
        da = rng.integers(min_digits, max_digits + 1, size=n)
        db = rng.integers(min_digits, max_digits + 1, size=n)
    else:
        counts, p = np.arange(min_digits, max_digits + 1), digit_probs(dist, max_digits, min_digits)
        da = rng.choice(counts, size=n, p=p)
        db = rng.choice(counts, size=n, p=p)
    lo = np.array([digit_range(d)[0] for d in range(max_digits + 1)] + [0], dtype=np.int64)
    hi = np.array([1] + [digit_range(d)[1] for d in range(1, max_digits + 1)] + [1], dtype=np.int64)
    a = rng.integers(lo[da], hi[da])
    b = rng.integers(lo[db], hi[db])
    bad = is_heldout_np(a, b, op)
    while bad.any():
        idx = np.nonzero(bad)[0]
        a[idx] = rng.integers(lo[da[idx]], hi[da[idx]])
        b[idx] = rng.integers(lo[db[idx]], hi[db[idx]])
        bad[idx] = is_heldout_np(a[idx], b[idx], op)
    return a, b


def heldout_pairs(op, d, n, seed=0):
    """Up to n distinct held-out pairs (a, b) with both operands of exactly d digits (deterministic)."""
    op = _op(op)
    lo, hi = digit_range(d)
    rng = np.random.default_rng([seed, d, 1 if op == "+" else 2])
    if (hi - lo) ** 2 <= 2_000_000:
        xs = np.arange(lo, hi, dtype=np.int64)
        a = np.repeat(xs, hi - lo)
        b = np.tile(xs, hi - lo)
        keep = is_heldout_np(a, b, op)
        a, b = a[keep], b[keep]
        if len(a) > n:
            idx = rng.choice(len(a), size=n, replace=False)
            a, b = a[idx], b[idx]
        return [(int(x), int(y)) for x, y in zip(a, b)]
    out, seen = [], set()
    while len(out) < n:
        a = rng.integers(lo, hi, size=200 * n)
        b = rng.integers(lo, hi, size=200 * n)
        keep = is_heldout_np(a, b, op)
        for x, y in zip(a[keep].tolist(), b[keep].tolist()):
            if (x, y) not in seen:
                seen.add((x, y))
                out.append((x, y))
                if len(out) == n:
                    break
    return out


# ----------------------------------------------------------------------------- batches (numpy)

def _digits_msb(x, k):
    """[n, k] digits of x, most significant first, zero-padded on the left."""
    p = 10 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    return (x[:, None] // p[None, :]) % 10


_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)


def _ndigits(x, kmax=None):
    """Digit counts of non-negative int64 x (0 has 1 digit)."""
    return np.searchsorted(_POW10, x, side="right").astype(np.int64) + 1


def encode_batch(a, b, op, fmt, width=None, rng=None):
    """Vectorized encoding of many examples, identical to encode(make_example(...)) row by row
    (for fmt='spaces' with rng given, spaces are drawn by the same rule with numpy's rng).

    Returns (tokens int64 [n, L] right-padded with PAD, qlen int64 [n] = index of the first
    answer token, length int64 [n] = question + answer + END).
    """
    op = _op(op)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    n = len(a)
    if fmt == "spaces" and op != "+":
        raise ValueError("the spaces format is for addition only")
    if op == "*" and (a.max(initial=0) >= 10 ** 9 or b.max(initial=0) >= 10 ** 9):
        raise ValueError("multiplication limited to 9-digit operands (int64)")
    c = a + b if op == "+" else a * b
    opid = PLUS if op == "+" else TIMES
    if fmt == "padrev":
        R = answer_len(op, width)
        if (a >= 10 ** width).any() or (b >= 10 ** width).any():
            raise ValueError(f"operand wider than width {width}")
        A, B = _digits_msb(a, width), _digits_msb(b, width)
        C = _digits_msb(c, R)[:, ::-1]
        toks = np.concatenate([A, np.full((n, 1), opid), B, np.full((n, 1), EQ), C, np.full((n, 1), END)], 1)
        L = toks.shape[1]
        return toks.astype(np.int64), np.full(n, 2 * width + 2, dtype=np.int64), np.full(n, L, dtype=np.int64)
    Da = int(_ndigits(a).max(initial=1))
    Db = int(_ndigits(b).max(initial=1))
    la, lb = _ndigits(a, Da), _ndigits(b, Db)
    Dc = int(_ndigits(c).max(initial=1))
    lc = _ndigits(c, Dc)
    A, B, C = _digits_msb(a, Da), _digits_msb(b, Db), _digits_msb(c, Dc)
    kA = np.arange(Da)[None, :] >= (Da - la)[:, None]
    kB = np.arange(Db)[None, :] >= (Db - lb)[:, None]
    kC = np.arange(Dc)[None, :] >= (Dc - lc)[:, None]
    one = np.ones((n, 1), dtype=bool)
    Q = np.concatenate([A, np.full((n, 1), opid), B, np.full((n, 1), EQ)], 1)
    kQ = np.concatenate([kA, one, kB, one], 1)
    if fmt == "spaces" and rng is not None:
        p = rng.uniform(0.0, SPACE_P_MAX, size=(n, 1))
        # One optional space slot *before* each question slot; it is kept if that slot is kept,
        # is not the first kept character, and a Bernoulli(p) draw succeeds. This is exactly
        # "one optional space in each gap between consecutive question characters".
        first = np.argmax(kQ, axis=1)
        ks = kQ & (rng.random(Q.shape) < p)
        ks &= np.arange(Q.shape[1])[None, :] > first[:, None]
        S = np.full(Q.shape, SPACE)
        Q = np.stack([S, Q], 2).reshape(n, -1)
        kQ = np.stack([ks, kQ], 2).reshape(n, -1)
    vals = np.concatenate([Q, C, np.full((n, 1), END)], 1)
    keep = np.concatenate([kQ, kC, one], 1)
    order = np.argsort(~keep, axis=1, kind="stable")
    toks = np.take_along_axis(vals, order, 1)
    length = keep.sum(1)
    L = int(length.max())
    toks = toks[:, :L]
    toks[np.arange(L)[None, :] >= length[:, None]] = PAD
    qlen = kQ.sum(1)
    return toks.astype(np.int64), qlen.astype(np.int64), length.astype(np.int64)


def running_sums(a, b, width):
    """[n, 2W] int64: the running sum behind each digit of the products a * b (W >= the
    operands' digit counts).

    With a_i, b_j the digits of a and b (i = 0 least significant), product digit k (counted from
    the least significant; the k-th answer token of padrev) is ``s_k mod 10`` where ``s_k = sum_{i+j=k} a_i b_j +
    carry_k``, ``carry_0 = 0`` and ``carry_{k+1} = s_k // 10``. s_k is the quantity a model must
    carry across the answer ("Why Can't Transformers Learn Multiplication?", Bai et al. 2025):
    train_arith.py's --aux-running-sum regresses it from the hidden state that predicts digit k
    (running_sum_targets). Training only; not part of the format.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    A = _digits_msb(a, width)[:, ::-1]
    B = _digits_msb(b, width)[:, ::-1]
    n = len(a)
    out = np.zeros((n, 2 * width), dtype=np.int64)
    carry = np.zeros(n, dtype=np.int64)
    for k in range(2 * width):
        s = carry.copy()
        for i in range(max(0, k - width + 1), min(k, width - 1) + 1):
            s += A[:, i] * B[:, k - i]
        out[:, k] = s
        carry = s // 10
    return out


def running_sum_targets(a, b, fmt, width, qlen, length, positions):
    """The running sums aligned with a model's outputs for multiplication batches of encode_batch.

    Output t of a model scores token t + 1; returns (sums [n, positions] int64, mask [n,
    positions] bool) where mask marks the outputs that predict an answer digit and sums holds
    that digit's running sum (running_sums; the answer is least significant digit first in
    padrev, most significant first in plain). ``width``: the padrev width, or for plain any
    width >= the operands' digit counts.
    """
    s = running_sums(a, b, width)
    digits = (np.asarray(length) - np.asarray(qlen) - 1)[:, None]  # answer digits, END excluded
    m = np.arange(positions)[None, :] - (np.asarray(qlen)[:, None] - 1)  # index of the predicted answer token
    mask = (m >= 0) & (m < digits)
    k = m if fmt == "padrev" else digits - 1 - m
    sums = np.take_along_axis(s, np.clip(k, 0, s.shape[1] - 1), 1)
    return np.where(mask, sums, 0), mask


def train_batch(rng, n, op, fmt, max_digits, width=None, dist="uniform"):
    """A training batch: (tokens [n, L], qlen [n], length [n])."""
    a, b = sample_operands(rng, n, op, max_digits, dist=dist)
    return encode_batch(a, b, op, fmt, width, rng if fmt == "spaces" else None)


if __name__ == "__main__":
    for a, b, op, fmt, w, s in EXAMPLES:
        print(f"{fmt:7s} W={w}: {make_example(a, b, op, fmt, w)}   expected {s}")
    print("vocab:", {VOCAB[i] if i < END else ("END" if i == END else "PAD"): i for i in range(VOCAB_SIZE)})
    r = random.Random(0)
    print("spaces training draws:", [make_example(123, 45, "+", "spaces", None, r) for _ in range(4)])
    print("hash examples:", [(a, b, op, hex(h)) for a, b, op, h in HASH_EXAMPLES])
