#!/usr/bin/env python3
"""Addition inside sentences (issue #24, the paper's third task): vocabulary, templates,
rendering and the held-out split. Reference for the Rust mirror (`arca_runtime::arith`); what
is marked **[spec]** must be reproduced exactly.

Shen et al. ("Positional Description Matters for Transformers Arithmetic", 2023) test addition
asked inside natural language, where the numbers sit at positions that change with the words
around them. A model that learnt to add by absolute position (where the digits of a plain
``a+b=`` question always are) has nothing to hold on to there. arca's version: short English
sentences that ask for a sum, mixed in training with plain ``a+b=c`` problems; the model answers
in the sentence (``... is 168.`` then END). The positional fix compared is the `spaces` rule of
formats.py applied to the whole prompt (below); the paper's own fix for this task may differ
(its text was not available here), so the comparison is "with and without a fix that breaks
absolute positions", measured.

Vocabulary [spec]
-----------------
46 tokens: ``CTX_VOCAB = VOCAB + "abcdefghijklmnopqrstuvwxyz.,?'"``, i.e. the 16 arithmetic
tokens with their ids (digits 0-9, '+' 10, '*' 11, '=' 12, ' ' 13, END 14 '$', PAD 15 '_'),
then the lowercase letters (ids 16-41), '.' 42, ',' 43, '?' 44, "'" 45.

Examples [spec]
---------------
Two kinds, both answered with the decimal sum c = a + b (most significant digit first):

* a plain problem: prompt ``f"{a}+{b}="``, answer ``f"{c}"``, then END;
* a sentence: prompt = a template with ``{a}``, ``{b}``, ``{n}`` (a name) and ``{t}`` (a plural
  noun) replaced, answer ``f"{c}."`` (the sum and a full stop), then END.

Every template ends with a space, where the answer goes. A sentence's fillers and template:
in training, uniform draws (training templates only); in evaluation, functions of the pair, so
that every implementation renders the same text for the same pair::

    h = pair_hash(a, b, '+')                      (formats.pair_hash)
    template = templates[mix64(h ^ 1) % len(templates)]
    name     = NAMES[mix64(h ^ 2) % len(NAMES)]
    thing    = THINGS[mix64(h ^ 3) % len(THINGS)]

Held-out split [spec]
---------------------
Pairs: formats.is_heldout(a, b, '+') (the same pairs as the `add` models'). Templates:
``HELDOUT_TEMPLATES`` never appear in training; evaluation reports them (and, for contrast, the
training templates on held-out pairs). Models carry the lists in their manifest
(``arith.context.*``, joined with '|'), so the runtime renders what the model was tested on.

Fix: random spaces [spec for training only]
-------------------------------------------
With the `spaces` format, p ~ Uniform[0, 0.5) is drawn once per training example, and each gap
between two consecutive prompt characters of which neither is a space independently gets one
space with probability p (for a plain problem that is exactly formats.py's rule). The answer
never gets spaces; prompts at test time have none.
"""
import random

import numpy as np

import formats as F

CTX_VOCAB = F.VOCAB + "abcdefghijklmnopqrstuvwxyz.,?'"
CTX_VOCAB_SIZE = len(CTX_VOCAB)  # 46

NAMES = ["ann", "bob", "carl", "dana", "eve", "fred", "gina", "hugo", "ida", "jack", "kim", "leo"]
THINGS = ["apples", "books", "coins", "cups", "eggs", "pens", "shells", "stones", "cards", "boxes",
          "nuts", "stamps"]

TRAIN_TEMPLATES = [
    "{n} has {a} {t} and gets {b} more. how many {t} does {n} have now? ",
    "what is {a} plus {b}? it is ",
    "the sum of {a} and {b} is ",
    "{n} counted {a} {t} in the morning and {b} {t} in the evening, so {n} counted ",
    "if you add {b} to {a}, you get ",
    "a box holds {a} {t}. {n} puts in {b} more, and now it holds ",
    "{a} and {b} together make ",
    "there were {a} {t} on the shelf and {b} in the cart, so in all there were ",
    "{n} paid {a} coins for the {t} and {b} coins for the bag, in total ",
    "add {a} and {b} and you get ",
    "{n} walked {a} steps, then {b} steps more. that is ",
    "{n}'s farm has {a} {t}, the next farm has {b}. both farms have ",
    "{a} + {b} makes ",
    "start with {a}, add {b}, and the result is ",
    "in the first week {n} sold {a} {t} and in the second {b}, so the total is ",
    "we had {a} {t}, then {b} more came. now we have ",
]
HELDOUT_TEMPLATES = [
    "{n} found {a} {t} and then {b} more, so {n} has ",
    "how much is {a} plus {b}? it is ",
    "the total of {a} and {b} is ",
    "after {a} {t} came {b} more, which makes ",
    "{n} reads {a} pages today and {b} pages tomorrow, ",
    "put {a} and {b} together and you have ",
]
SEP = "|"  # joins the lists in a manifest; not in the vocabulary

# Exact, tested renderings: (template, a, b, name, thing, full example text)
EXAMPLES = [
    (TRAIN_TEMPLATES[2], 123, 45, "ann", "apples", "the sum of 123 and 45 is 168.$"),
    (TRAIN_TEMPLATES[0], 7, 5, "kim", "eggs", "kim has 7 eggs and gets 5 more. how many eggs does kim have now? 12.$"),
    (HELDOUT_TEMPLATES[3], 999, 1, "bob", "cards", "after 999 cards came 1 more, which makes 1000.$"),
]


def encode(text):
    return F.encode(text, CTX_VOCAB)


def decode(ids, stop_at_end=True):
    return F.decode(ids, stop_at_end, CTX_VOCAB)


def render(template, a, b, name, thing):
    """The prompt text of a sentence (no answer)."""
    return template.replace("{a}", str(a)).replace("{b}", str(b)).replace("{n}", name).replace("{t}", thing)


def sentence_answer(a, b):
    return f"{a + b}."


def eval_prompt(a, b, templates):
    """The evaluation sentence of a pair: template and fillers are functions of the pair."""
    h = F.pair_hash(a, b, "+")
    t = templates[F.mix64(h ^ 1) % len(templates)]
    name = NAMES[F.mix64(h ^ 2) % len(NAMES)]
    thing = THINGS[F.mix64(h ^ 3) % len(THINGS)]
    return render(t, a, b, name, thing)


def longest_prompt(max_digits, spaced=False):
    """Upper bound on a prompt's length (characters) with operands of <= max_digits digits."""
    longest_name = max(map(len, NAMES))
    longest_thing = max(map(len, THINGS))
    n = 0
    for t in TRAIN_TEMPLATES + HELDOUT_TEMPLATES + ["{a}+{b}="]:
        s = render(t, 10 ** max_digits - 1, 10 ** max_digits - 1, "n" * longest_name, "t" * longest_thing)
        n = max(n, 2 * len(s) - 1 if spaced else len(s))
    return n


def context_len(max_digits, eval_digits, spaced):
    """Positions the model needs: the longest training sequence (spaces included) or eval one."""
    ans = lambda d: d + 1 + 1 + 1  # c has <= d + 1 digits, then '.', then END
    return max(longest_prompt(max_digits, spaced) + ans(max_digits), longest_prompt(eval_digits) + ans(eval_digits))


def train_batch(rng, n, fmt, max_digits, sentence_frac, pyrng):
    """A training batch: (tokens [n, L] right-padded with PAD, qlen [n], length [n]).

    rng: numpy Generator (operands, via formats.sample_operands); pyrng: random.Random (the
    choice of kind, template and fillers, and the spaces)."""
    a, b = F.sample_operands(rng, n, "+", max_digits)
    rows, qlens = [], []
    for x, y in zip(a.tolist(), b.tolist()):
        if pyrng.random() < sentence_frac:
            prompt = render(pyrng.choice(TRAIN_TEMPLATES), x, y, pyrng.choice(NAMES), pyrng.choice(THINGS))
            answer = sentence_answer(x, y)
        else:
            prompt, answer = F.make_question(x, y, "+", "plain"), F.make_answer(x, y, "+", "plain")
        if fmt == "spaces":
            prompt = F.random_spaces(prompt, pyrng)
        rows.append(encode(prompt + answer) + [F.END])
        qlens.append(len(prompt))
    L = max(map(len, rows))
    toks = np.full((n, L), F.PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        toks[i, :len(r)] = r
    return toks, np.array(qlens, dtype=np.int64), np.array([len(r) for r in rows], dtype=np.int64)


def eval_set(kind, d, n, seed=0):
    """(prompts, expected) id lists for held-out pairs with d-digit operands.

    kind: 'heldout' (held-out templates), 'train' (training templates) or 'plain' (a+b=)."""
    pairs = F.heldout_pairs("+", d, n, seed)
    prompts, expected = [], []
    for a, b in pairs:
        if kind == "plain":
            prompts.append(encode(F.make_question(a, b, "+", "plain")))
            expected.append(encode(F.make_answer(a, b, "+", "plain")) + [F.END])
        else:
            t = HELDOUT_TEMPLATES if kind == "heldout" else TRAIN_TEMPLATES
            prompts.append(encode(eval_prompt(a, b, t)))
            expected.append(encode(sentence_answer(a, b)) + [F.END])
    return pairs, prompts, expected


def manifest_keys():
    """The `arith.context` object of a model's manifest."""
    return {
        "vocab": CTX_VOCAB,
        "names": SEP.join(NAMES),
        "things": SEP.join(THINGS),
        "train_templates": SEP.join(TRAIN_TEMPLATES),
        "heldout_templates": SEP.join(HELDOUT_TEMPLATES),
    }


if __name__ == "__main__":
    for t, a, b, name, thing, text in EXAMPLES:
        got = render(t, a, b, name, thing) + sentence_answer(a, b) + "$"
        print(got, "OK" if got == text else f"expected {text}")
    r = random.Random(0)
    print(F.random_spaces("the sum of 123 and 45 is ", r))
    print("context_len(5, 7, spaced):", context_len(5, 7, True), "unspaced:", context_len(5, 7, False))
    for d in (2, 3):
        _, p, e = eval_set("heldout", d, 3)
        print([decode(x) + decode(y) for x, y in zip(p, e)])
