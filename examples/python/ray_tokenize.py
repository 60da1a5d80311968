"""Tokenize a folder of text files into Equal-Info Window token shards on a Ray cluster.

    python examples/python/ray_tokenize.py DATA_DIR OUT_DIR [--bits 16] [--workers 2]

Ray Data reads the files (`read_binary_files`), `map_batches` tokenizes each batch of files on a
pool of actors that each open the model once (`arca.eiw.Tokenizer`), and every batch becomes one
shard: a token file with a header (what `arca tokenize FILE... -o SHARD` writes for the same
files, byte for byte). `OUT_DIR/index.jsonl` lists every document: its source path, its shard,
and its token range there, which is what a training loader needs (the tokens of a shard start at
`arca.eiw.data_offset(shard)`; `np.memmap` them as uint16 for W = 16).

On a cluster, `ray.init(address="auto")` is used when `--address auto` is given; otherwise a
local cluster of `--workers` + 1 CPUs is started (the extra one reads the files). The throughput line at the end counts bytes and
tokens per second of wall time, start-up of the actors included.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import ray

from arca.eiw import Tokenizer, token_file_index


class TokenizeBatch:
    """One per Ray actor: the model is opened once, in `__init__`, and reused for every batch."""

    def __init__(self, bits: int, model: str | None, out_dir: str, max_bytes: int, threads: int):
        self.tok = Tokenizer(bits=bits, model=model)
        self.out = Path(out_dir)
        self.max_bytes = max_bytes
        self.threads = threads

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        docs = [bytes(b)[: self.max_bytes] if self.max_bytes else bytes(b) for b in batch["bytes"]]
        data = self.tok.token_file(docs, threads=self.threads)
        # The shard is named by its content: a rerun writes the same names.
        name = "shard-" + hashlib.sha256(data).hexdigest()[:16] + ".tok"
        tmp = self.out / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.out / name)
        offsets = token_file_index(data)["offsets"]
        return {
            "path": paths,
            "shard": [name] * len(docs),
            "doc": list(range(len(docs))),
            "start": offsets[:-1].tolist(),
            "end": offsets[1:].tolist(),
            "bytes": [len(d) for d in docs],
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="folder of text files")
    ap.add_argument("out", help="folder for the shards and index.jsonl")
    ap.add_argument("--bits", type=int, default=16, help="window size W (default 16)")
    ap.add_argument("--model", default=None, help="model name or .arcm path (default: text-small)")
    ap.add_argument("--workers", type=int, default=2, help="tokenizing actors (CPUs of a local cluster)")
    ap.add_argument("--files-per-shard", type=int, default=1, help="files per batch, so per shard")
    ap.add_argument("--max-bytes", type=int, default=0, help="tokenize only each file's first N bytes (0: all)")
    ap.add_argument("--address", default=None, help="an existing cluster ('auto'); default: start one")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p) for p in Path(args.data).iterdir() if p.is_file())
    if not files:
        print(f"ray_tokenize: no files in {args.data}", file=sys.stderr)
        return 1
    if args.address:
        ray.init(address=args.address)
    else:
        # One CPU per tokenizing actor, and one more for the tasks that read the files (with
        # every CPU held by an actor, the reads would wait forever).
        ray.init(num_cpus=args.workers + 1, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    ds = ray.data.read_binary_files(files, include_paths=True)
    rows = ds.map_batches(
        TokenizeBatch,
        fn_constructor_args=(args.bits, args.model, str(out), args.max_bytes, 1),
        batch_size=args.files_per_shard,
        concurrency=args.workers,
        num_cpus=1,
    ).take_all()
    seconds = time.perf_counter() - start
    rows.sort(key=lambda r: r["path"])
    with open(out / "index.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in ("path", "shard", "doc", "start", "end", "bytes")}) + "\n")
    total_bytes = sum(r["bytes"] for r in rows)
    total_tokens = sum(r["end"] - r["start"] for r in rows)
    shards = len({r["shard"] for r in rows})
    print(
        f"{len(rows)} files, {total_bytes} bytes -> {total_tokens} tokens of {args.bits} bits in "
        f"{shards} shards; {seconds:.1f} s on {args.workers} workers: "
        f"{total_bytes / seconds / 1e3:.1f} KB/s, {total_tokens / seconds:.0f} tokens/s"
    )
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
