"""Tokenizer and token files for the issue #21 target and drafts (`train_lm.py`).

Trains one byte-level BPE tokenizer (GPT-2's pre-tokenizer and decoder, `<|endoftext|>` as the
only special token) with the `tokenizers` library on `train/` (the books) and `mixed/train/`
(source, headers, man pages, changelogs, JSON), then writes every training and validation file
as token ids, one document after another with `<|endoftext|>` between them:

    OUT/tokenizer.json
    OUT/train.u16.xz   little-endian uint16 ids, xz-compressed (the GPU run carries this)
    OUT/valid.u16.xz   the same for valid/ and mixed/valid/
    OUT/prep.json      sizes, byte counts, bytes per token, versions

    python models/hf/prep.py --data ../shared/data --out .gpu --vocab 8192

Deterministic for fixed `tokenizers` versions. Never reads `eval/`.
"""

import argparse
import importlib.metadata
import json
import lzma
import os

import numpy as np

EOT = "<|endoftext|>"


def files(data, parts):
    out = []
    for part in parts:
        d = os.path.join(data, part)
        out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if os.path.isfile(os.path.join(d, n))]
    return out


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def train_tokenizer(paths, vocab):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((read(p) for p in paths), trainer=trainer)
    return tok


def tokenize(tok, paths):
    eot = tok.token_to_id(EOT)
    texts = [read(p) for p in paths]
    ids = []
    for enc in tok.encode_batch(texts):
        ids.extend(enc.ids)
        ids.append(eot)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return np.asarray(ids, dtype="<u2"), n_bytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=".gpu")
    ap.add_argument("--vocab", type=int, default=8192)
    args = ap.parse_args()
    assert args.vocab <= 65536
    os.makedirs(args.out, exist_ok=True)
    train = files(args.data, ["train", "mixed/train"])
    valid = files(args.data, ["valid", "mixed/valid"])
    tok = train_tokenizer(train, args.vocab)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    info = {"vocab": tok.get_vocab_size(), "tokenizers": importlib.metadata.version("tokenizers")}
    for name, paths in (("train", train), ("valid", valid)):
        ids, n_bytes = tokenize(tok, paths)
        with lzma.open(os.path.join(args.out, f"{name}.u16.xz"), "wb", preset=6) as f:
            f.write(ids.tobytes())
        info[name] = {"files": len(paths), "bytes": n_bytes, "tokens": int(ids.size),
                      "bytes_per_token": round(n_bytes / ids.size, 4)}
        print(name, info[name], flush=True)
    with open(os.path.join(args.out, "prep.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
