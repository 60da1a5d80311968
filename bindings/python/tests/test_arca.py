"""The arca Python package: round trips, streaming, errors, pickling, the GIL, and agreement with
the command line (set ARCA_BIN to the `arca` binary; those checks skip without it)."""

import os
import pickle
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import arca
from arca.eiw import Tokenizer

ROOT = Path(__file__).resolve().parents[3]
CANTERBURY = ROOT / "tests" / "data" / "canterbury"
ARCA_BIN = os.environ.get("ARCA_BIN")


def text(name: str) -> bytes:
    return (CANTERBURY / name).read_bytes()


def cli(*args: str, stdin: bytes = b"") -> bytes:
    if not ARCA_BIN:
        pytest.skip("ARCA_BIN is not set: no arca binary to compare with")
    return subprocess.run([ARCA_BIN, *args], input=stdin, capture_output=True, check=True).stdout


def test_round_trip_and_the_command_line_agree(tmp_path):
    data = text("grammar.lsp")
    packed = arca.compress(data)
    assert len(packed) < len(data) // 2
    assert arca.decompress(packed) == data
    assert arca.compress(b"") and arca.decompress(arca.compress(b"")) == b""
    assert cli("compress", "-c", "-", stdin=data) == packed
    assert cli("decompress", "-c", "-", stdin=packed) == data


def test_models_by_name_and_none():
    none = arca.Model("none")
    assert none.id == "0" * 32
    packed = arca.compress(b"abc abc abc abc", model=none)
    assert arca.decompress(packed, model=none) == b"abc abc abc abc"
    small = arca.Model("text-small")
    assert small.name == "text-small" and len(small.id) == 32
    with pytest.raises(arca.ArcaError, match="another model|model"):
        arca.decompress(packed, model=small)
    with pytest.raises(arca.ArcaError, match="cannot open model 'no-such-model'"):
        arca.Model("no-such-model")


def test_streaming_matches_whole_buffers_and_concatenates():
    data = text("xargs.1") * 3
    c = arca.Compressor()
    parts = [c.compress(data[i : i + 1000]) for i in range(0, len(data), 1000)]
    packed = b"".join(parts) + c.finish()
    assert packed == arca.compress(data)
    with pytest.raises(ValueError):
        c.compress(b"more")
    d = arca.Decompressor()
    out = b"".join(d.decompress(packed[i : i + 333]) for i in range(0, len(packed), 333))
    d.finish()
    assert out == data
    # Two streams back to back decode to the concatenation; flush ends a frame early.
    c = arca.Compressor()
    first = c.compress(b"line one\n") + c.flush()
    assert arca.decompress(first) == b"line one\n"
    both = first + c.compress(b"line two\n") + c.finish()
    assert arca.decompress(both) == b"line one\nline two\n"


def test_damage_is_an_exception_with_the_library_message(tmp_path):
    packed = bytearray(arca.compress(text("grammar.lsp")))
    with pytest.raises(arca.ArcaError, match="truncated"):
        arca.decompress(bytes(packed[:-7]))
    packed[len(packed) // 2] ^= 0x10
    with pytest.raises(arca.ArcaError, match="corrupt"):
        arca.decompress(bytes(packed))
    d = arca.Decompressor()
    with pytest.raises(arca.ArcaError):
        d.decompress(bytes(packed))
    with pytest.raises(arca.ArcaError, match="not an arca stream"):
        arca.decompress(b"GZIP")
    d = arca.Decompressor()
    assert d.decompress(bytes(arca.compress(b"x"))[:20]) == b""
    with pytest.raises(arca.ArcaError, match="truncated"):
        d.finish()
    # A failed file decompression leaves no output file.
    bad = tmp_path / "bad.arca"
    bad.write_bytes(bytes(packed))
    with pytest.raises(arca.ArcaError):
        arca.decompress_file(bad, tmp_path / "bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.arca"]


def test_files(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(text("fields.c"))
    n = arca.compress_file(src, tmp_path / "in.txt.arca")
    assert n == (tmp_path / "in.txt.arca").stat().st_size
    arca.decompress_file(tmp_path / "in.txt.arca", tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_bytes() == src.read_bytes()


def test_models_and_tokenizers_pickle():
    m = pickle.loads(pickle.dumps(arca.Model("text-small")))
    assert m.name == "text-small"
    tok = pickle.loads(pickle.dumps(Tokenizer(bits=32)))
    assert tok.bits == 32 and tok.model == "text-small"
    raw = pickle.loads(pickle.dumps(tok._tok))
    assert raw.bits == 32


def test_eiw_batches_keep_documents():
    tok = Tokenizer(bits=16)
    docs = [text("grammar.lsp"), b"", b"x", text("xargs.1")[:2000]]
    ids, offsets = tok.encode_batch(docs)
    assert ids.dtype == np.dtype("<u2") and offsets.dtype == np.int64
    assert offsets[0] == 0 and offsets[-1] == len(ids) and len(offsets) == len(docs) + 1
    assert offsets[1] - offsets[0] > 0 and offsets[2] == offsets[1]
    assert tok.decode_batch(ids, offsets) == docs
    # One document alone gives the same tokens as in the batch.
    alone, _ = tok.encode_batch([docs[3]])
    assert np.array_equal(alone, ids[offsets[3] : offsets[4]])
    # Any whole-document slice decodes on its own.
    assert tok.decode_batch(ids[offsets[3] :], [0, offsets[4] - offsets[3]]) == [docs[3]]
    for bits in (32, 64, 24):
        t = Tokenizer(bits=bits)
        ids, offsets = t.encode_batch(docs[:2])
        assert t.decode_batch(ids, offsets) == docs[:2]
        if bits == 24:
            assert ids.shape[1] == 3
    with pytest.raises(ValueError, match="multiple of 8"):
        Tokenizer(bits=12)
    with pytest.raises(ValueError, match="non-decreasing"):
        tok.decode_batch(ids[:0], [0, 5])


def test_token_files_match_arca_tokenize(tmp_path):
    tok = Tokenizer(bits=16)
    docs = [text("grammar.lsp"), text("xargs.1")]
    data = tok.token_file(docs)
    assert data[:4] == b"ATOK"
    assert tok.read_token_file(data) == docs
    with pytest.raises(arca.ArcaError, match="16-bit windows, not 32-bit"):
        Tokenizer(bits=32).read_token_file(data)
    for i, d in enumerate(docs):
        (tmp_path / f"{i}.txt").write_bytes(d)
    cli("tokenize", "--eiw", "16", str(tmp_path / "0.txt"), str(tmp_path / "1.txt"), "-o", str(tmp_path / "cli.tok"))
    assert (tmp_path / "cli.tok").read_bytes() == data


def test_coding_releases_the_gil():
    data = text("alice29.txt")
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    start = time.perf_counter()
    arca.compress(data[:60000], threads=1)
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    # With the GIL held for the whole call the counter could not run at all.
    assert elapsed > 0.05 and ticks > 10, (elapsed, ticks)


def test_the_readme_python_snippet_runs():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\n") + len("```python\n")
    code = readme[start : readme.index("```", start)]
    exec(compile(code, "README.md", "exec"), {})
