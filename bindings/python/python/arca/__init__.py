"""arca: learned lossless compression and the Equal-Info Window tokenizer.

>>> import arca
>>> packed = arca.compress(b"It was the best of times, it was the worst of times.")
>>> arca.decompress(packed)
b'It was the best of times, it was the worst of times.'

Every function that codes releases the GIL. Models are opened once per process and shared;
:class:`Model` pickles as its name, so Ray and multiprocessing workers reopen it on their side.
Streams are the ``arca`` command line's: ``arca decompress`` reads what :func:`compress` writes,
and the other way round.
"""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Optional, Union

from ._arca import (
    ArcaError,
    Compressor,
    Decompressor,
    Model,
    __version__,
    compress,
    decompress,
)
from . import eiw

__all__ = [
    "ArcaError",
    "Compressor",
    "Decompressor",
    "Model",
    "__version__",
    "compress",
    "decompress",
    "compress_file",
    "decompress_file",
    "eiw",
]

_CHUNK = 1 << 20
PathLike = Union[str, "os.PathLike[str]"]


def _stream(src: PathLike, dst: PathLike, step, last) -> int:
    """Reads ``src`` in chunks through ``step``, writes a temporary file beside ``dst`` and
    renames it into place only when complete (so a failure leaves no half-written file)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(dst)))
    fd, tmp = tempfile.mkstemp(prefix=".arca-", suffix=".tmp", dir=folder)
    written = 0
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while True:
                chunk = fin.read(_CHUNK)
                if not chunk:
                    break
                out = step(chunk)
                fout.write(out)
                written += len(out)
            out = last()
            fout.write(out)
            written += len(out)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return written


def compress_file(src: PathLike, dst: PathLike, model: Optional[Model] = None, threads: int = 0) -> int:
    """Compresses the file ``src`` into ``dst`` as it reads it (memory: one 8 MiB frame);
    returns the compressed size."""
    c = Compressor(model, threads)
    return _stream(src, dst, c.compress, c.finish)


def decompress_file(src: PathLike, dst: PathLike, model: Optional[Model] = None, threads: int = 0) -> int:
    """Decompresses the file ``src`` into ``dst`` frame by frame; returns the original size.
    A damaged or truncated stream raises :class:`ArcaError` and leaves no ``dst``."""
    d = Decompressor(model, threads)

    def last() -> bytes:
        d.finish()
        return b""

    return _stream(src, dst, d.decompress, last)
