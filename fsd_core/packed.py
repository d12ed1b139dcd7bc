"""Named numpy arrays in one zstandard frame: how shards and inputs travel through the stage.

A worker reads its shard on the critical path of its start. An npz (a zip) costs a CRC pass,
a copy per member and, compressed, zlib's slow inflate: ~0.2-0.3 s for a 4096-neuron,
120-layer shard. Here the arrays sit back to back (8-byte aligned) behind a small JSON
index, the whole is one zstandard frame (its own checksum on), and reading is one
decompression plus zero-copy views: ~4x faster.

Layout (before compression): magic `FSDA`, u32 index length, the JSON index
`[[name, dtype, shape], ...]`, padding to 8 bytes, then each array in C order, padded to 8.
Only plain numeric dtypes are accepted, never objects (nothing here can run code).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import zstandard

MAGIC = b"FSDA"
_ALIGN = 8
_KINDS = "biuf"  # bool, signed, unsigned, float: no objects, strings or structured types


class PackError(ValueError):
    """The blob is not a packed set of arrays, or is damaged."""


def pack(arrays: dict[str, np.ndarray], level: int = 3) -> bytes:
    """`arrays` as one compressed blob (see the module docstring)."""
    index, chunks = [], []
    for name, a in arrays.items():
        a = np.asarray(a)
        if not a.flags.c_contiguous:
            a = a.copy(order="C")  # (ascontiguousarray would turn a 0-d array into 1-d)
        if a.dtype.kind not in _KINDS:
            raise TypeError(f"array {name!r} has dtype {a.dtype}: only numeric arrays can be packed")
        index.append([name, a.dtype.str, list(a.shape)])
        chunks.append(a)
    head = json.dumps(index, separators=(",", ":")).encode()
    parts: list = [MAGIC, struct.pack("<I", len(head)), head, b"\0" * _pad(8 + len(head))]
    for a in chunks:
        parts += [memoryview(a.reshape(-1)).cast("B") if a.size else b"", b"\0" * _pad(a.nbytes)]
    raw = b"".join(parts)
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(raw)


def unpack(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of `pack`'s blob (read-only views into one buffer); PackError if damaged."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(blob)
    except zstandard.ZstdError as exc:
        raise PackError(f"not a packed array blob ({exc})") from None
    if raw[:4] != MAGIC or len(raw) < 8:
        raise PackError("not a packed array blob (bad magic)")
    (nhead,) = struct.unpack_from("<I", raw, 4)
    try:
        index = json.loads(raw[8:8 + nhead])
    except ValueError:
        raise PackError("damaged array index") from None
    pos = 8 + nhead + _pad(8 + nhead)
    out: dict[str, np.ndarray] = {}
    try:
        for name, dtype, shape in index:
            dt = np.dtype(dtype)
            if dt.kind not in _KINDS:
                raise PackError(f"array {name!r}: dtype {dtype} is not allowed")
            count = int(np.prod(shape, dtype=np.int64))
            if count < 0 or pos + count * dt.itemsize > len(raw):
                raise PackError(f"array {name!r} runs past the end of the blob")
            out[str(name)] = np.frombuffer(raw, dt, count, pos).reshape(tuple(shape))
            pos += count * dt.itemsize
            pos += _pad(pos)
    except PackError:
        raise
    except (TypeError, ValueError) as exc:
        raise PackError(f"damaged array index ({exc})") from None
    return out


def _pad(n: int) -> int:
    return -n % _ALIGN
