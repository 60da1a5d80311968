"""The neural tokenizer of "Training LLMs over Neurally Compressed Text" (Lester et al., 2024):
text compressed by arca's byte model into Equal-Info Windows of ``bits`` bits, one token per
window, every window decodable on its own.

>>> from arca.eiw import Tokenizer
>>> tok = Tokenizer(bits=16)
>>> ids, offsets = tok.encode_batch([b"first document", b"and the second one"])
>>> ids.dtype, offsets.tolist()[0]
(dtype('uint16'), 0)
>>> tok.decode_batch(ids, offsets)
[b'first document', b'and the second one']
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ._arca import Tokenizer as _Tokenizer

__all__ = ["Tokenizer", "data_offset", "token_file_index"]

_DTYPES = {16: np.dtype("<u2"), 32: np.dtype("<u4"), 64: np.dtype("<u8")}


class Tokenizer:
    """Equal-Info Window tokenizer over ``model`` (an embedded model's name or a ``.arcm`` path;
    the default text model when ``None``). Pickles as ``(bits, model)``: a Ray worker reopens the
    model once on its side."""

    def __init__(self, bits: int = 16, model: Optional[str] = None) -> None:
        self._tok = _Tokenizer(bits, model)

    @property
    def bits(self) -> int:
        return self._tok.bits

    @property
    def model(self) -> str:
        return self._tok.model

    @property
    def model_id(self) -> str:
        return self._tok.model_id

    @property
    def dtype(self) -> np.dtype:
        """uint16/uint32/uint64 for W = 16/32/64; other W give rows of W/8 bytes (uint8)."""
        return _DTYPES.get(self.bits, np.dtype(np.uint8))

    def _array(self, raw: bytes) -> np.ndarray:
        a = np.frombuffer(raw, dtype=self.dtype)
        if self.bits not in _DTYPES:
            a = a.reshape(-1, self.bits // 8)
        return a

    def encode_batch(self, documents: Sequence[bytes], threads: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """Token ids of every document back to back, and ``offsets`` (int64, one more than the
        documents): document ``i`` is ``ids[offsets[i]:offsets[i + 1]]``. No window crosses from
        one document into the next."""
        raw, offsets = self._tok.encode_batch(list(documents), threads)
        return self._array(raw), np.asarray(offsets, dtype=np.int64)

    def decode_batch(self, ids: np.ndarray, offsets: Sequence[int], threads: int = 0) -> List[bytes]:
        """The documents back from ``encode_batch``'s ids and offsets (or any slices of whole
        documents, with offsets counted from the start of ``ids``)."""
        raw = np.ascontiguousarray(ids, dtype=self.dtype).tobytes()
        return self._tok.decode_batch(raw, [int(o) for o in offsets], threads)

    def token_file(self, documents: Sequence[bytes], threads: int = 0) -> bytes:
        """A token file with a header (what ``arca tokenize FILE... -o OUT`` writes)."""
        return self._tok.token_file(list(documents), threads)

    def read_token_file(self, data: bytes, threads: int = 0) -> List[bytes]:
        """The documents of a token file, refusing one made with another model or W."""
        return self._tok.read_token_file(data, threads)

    def __reduce__(self):
        return (Tokenizer, (self.bits, self.model))

    def __repr__(self) -> str:
        return f"arca.eiw.Tokenizer(bits={self.bits}, model={self.model!r})"


_FIXED = 48


def data_offset(documents: int) -> int:
    """Where the tokens start in a token file of ``documents`` documents (56 + 8 x documents)."""
    return _FIXED + 8 * documents + 8


def token_file_index(data) -> dict:
    """The header of a token file (bytes, or a path): ``bits``, ``model_id`` (hex),
    ``offsets`` (int64, documents + 1: document ``i`` is tokens ``offsets[i]:offsets[i + 1]``)
    and ``data_offset``, where the tokens start. Reads the header only; the checksum and the
    tokens are checked by :meth:`Tokenizer.read_token_file` and ``arca detokenize``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        with open(data, "rb") as f:
            head = f.read(_FIXED)
            if len(head) >= 36:
                d = int.from_bytes(head[32:36], "little")
                head += f.read(8 * d)
        data = head
    data = bytes(data)
    if data[:4] != b"ATOK" or len(data) < _FIXED:
        raise ValueError("not an arca token file (no ATOK header)")
    bits = int.from_bytes(data[6:8], "little")
    d = int.from_bytes(data[32:36], "little")
    if len(data) < _FIXED + 8 * d:
        raise ValueError("token file is truncated (its document table is cut)")
    ends = np.frombuffer(data[_FIXED : _FIXED + 8 * d], dtype="<u8").astype(np.int64)
    return {
        "bits": bits,
        "model_id": int.from_bytes(data[8:24], "little").to_bytes(16, "big").hex(),
        "offsets": np.concatenate([[0], ends]).astype(np.int64),
        "data_offset": data_offset(d),
    }
