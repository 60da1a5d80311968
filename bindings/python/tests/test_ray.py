"""examples/python/ray_tokenize.py on a local Ray cluster of 2 workers over ../shared/data/valid:
every shard equals what `arca tokenize` writes for the shard's files, the index covers every
file, and detokenizing each document gives the file back. Skips (saying why) without Ray, without
../shared/data/valid, or without ARCA_BIN. ARCA_RAY_BYTES=N tokenizes each file's first N bytes
(CI: 262144); 0 or unset means whole files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arca.eiw import Tokenizer, token_file_index

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "valid"
EXAMPLE = ROOT / "examples" / "python" / "ray_tokenize.py"


def test_ray_shards_equal_arca_tokenize(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[data]')")
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent: the Ray test runs where ../shared/data is")
    arca_bin = os.environ.get("ARCA_BIN")
    if not arca_bin:
        pytest.skip("ARCA_BIN is not set: no arca binary to compare the shards with")
    limit = int(os.environ.get("ARCA_RAY_BYTES", "0"))
    out = tmp_path / "shards"
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), str(DATA), str(out), "--workers", "2", "--files-per-shard", "2",
         "--max-bytes", str(limit)],
        capture_output=True, text=True, timeout=1800,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    print(run.stdout.strip())
    rows = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    files = sorted(p for p in DATA.iterdir() if p.is_file())
    assert sorted(r["path"] for r in rows) == [str(p) for p in files]
    tok = Tokenizer(bits=16)
    by_shard = {}
    for r in rows:
        by_shard.setdefault(r["shard"], []).append(r)
    for shard, docs in by_shard.items():
        docs.sort(key=lambda r: r["doc"])
        data = (out / shard).read_bytes()
        # The same files through the command line give the same bytes.
        inputs = []
        for r in docs:
            text = Path(r["path"]).read_bytes()
            if limit:
                text = text[:limit]
            p = tmp_path / f"{Path(r['path']).name}"
            p.write_bytes(text)
            inputs.append(str(p))
        subprocess.run([arca_bin, "tokenize", "-q", "--eiw", "16", *inputs, "-o", str(tmp_path / "cli.tok"), "-f"],
                       check=True)
        assert (tmp_path / "cli.tok").read_bytes() == data, shard
        # The index's ranges are the header's, and every document decodes to its file.
        index = token_file_index(data)
        assert [r["start"] for r in docs] == index["offsets"][:-1].tolist()
        back = tok.read_token_file(data)
        assert back == [Path(p).read_bytes() for p in inputs]
