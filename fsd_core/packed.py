"""Named numpy arrays in one zstandard frame: how shards and inputs travel through the stage.

A worker reads its shard on the critical path of its start. An npz (a zip) costs a CRC pass,
a copy per member and, compressed, zlib's slow inflate: ~0.2-0.3 s for a 4096-neuron,
120-layer shard. Here the arrays sit back to back (8-byte aligned) behind a small JSON
index, the whole is one zstandard frame (its own checksum on), and reading is one
decompression plus zero-copy views: ~4x faster.

Layout (before compression): magic `FSDA`, u32 index length, the JSON index
`[[name, dtype, shape], ...]`, padding to 8 bytes, then each array in C order, padded to 8.
Only plain numeric dtypes are accepted, never objects (nothing here can run code).

A damaged blob is a `PackError`, and nothing is allocated for it beyond what two independent
promises agree on: the zstandard frame's content size (within `MAX_SIZE` and what the blob's
length can possibly inflate to) and the sizes its index lists, read first.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import NamedTuple

import numpy as np
import zstandard

MAGIC = b"FSDA"
_ALIGN = 8
_KINDS = "biuf"  # bool, signed, unsigned, float: no objects, strings or structured types
_DTYPE = re.compile(r"[<>|=][biuf]\d{1,2}")  # such a dtype's `str`: all `unpack` accepts
_MAX_DIMS = 64  # numpy's limit
#: Largest blob `unpack` inflates (the arrays, uncompressed): a worker's shard or inputs must fit
#: in a Lambda's 10 GB with room to work, so a header promising more is damage.
MAX_SIZE = 1 << 33
#: zstandard's most extreme expansion: a block inflates to at most 128 KiB and costs at least
#: 4 bytes (an RLE block), so a blob of n bytes holds at most this many times n.
_MAX_RATIO = (128 << 10) // 4


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
    if len(raw) > MAX_SIZE:
        raise ValueError(f"{len(raw)} bytes of arrays exceed the limit of {MAX_SIZE} (`unpack` would refuse them)")
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(raw)


def unpack(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of `pack`'s blob (read-only views into one buffer); PackError if damaged.

    The index is inflated first, in a stream; the whole frame is inflated (into one buffer of
    the frame's content size) only once the index's sizes add up to that size.
    """
    try:
        frame = zstandard.get_frame_parameters(blob)
    except zstandard.ZstdError as exc:
        raise PackError(f"not a packed array blob ({exc})") from None
    size = frame.content_size
    if not frame.has_checksum or size > min(MAX_SIZE, _MAX_RATIO * len(blob)):
        raise PackError(f"damaged blob header (content size {size}, checksum {frame.has_checksum})")
    try:
        with zstandard.ZstdDecompressor().stream_reader(blob) as reader:
            head = _read(reader, 8)
            if head[:4] != MAGIC:
                raise PackError("not a packed array blob (bad magic)")
            (nhead,) = struct.unpack_from("<I", head, 4)
            if 8 + nhead > size:
                raise PackError("damaged array index (longer than the blob)")
            arrays, end = _parse_index(_read(reader, nhead), 8 + nhead + _pad(8 + nhead))
        if end != size:
            raise PackError(f"damaged array index (its arrays need {end} bytes, the blob holds {size})")
        raw = zstandard.ZstdDecompressor().decompress(blob)  # checks the frame's checksum too
    except zstandard.ZstdError as exc:
        raise PackError(f"damaged blob ({exc})") from None
    return {a.name: np.frombuffer(raw, a.dtype, a.count, a.offset).reshape(a.shape) for a in arrays}


class _Array(NamedTuple):
    """One entry of the index: where its array sits in the inflated blob."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int
    count: int


def _parse_index(text: bytes, start: int) -> tuple[list[_Array], int]:
    """The index's arrays, laid out from `start`, and where the last one's padding ends.

    Each entry must be what `pack` writes (a plain numeric dtype string, a list of sizes), so
    nothing here is allocated for a damaged one; sizes are Python ints and cannot overflow.
    """
    try:
        index = json.loads(text)
    except (ValueError, RecursionError):
        raise PackError("damaged array index") from None
    if not isinstance(index, list):
        raise PackError("damaged array index")
    arrays, pos = [], start
    for entry in index:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], str)
                and _DTYPE.fullmatch(entry[1]) and isinstance(entry[2], list) and len(entry[2]) <= _MAX_DIMS
                and all(type(n) is int and n >= 0 for n in entry[2])):
            raise PackError(f"damaged array index (entry {str(entry)[:60]})")
        name, dtype, shape = entry
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError):
            raise PackError(f"array {name!r}: dtype {dtype} is not allowed") from None
        count = math.prod(shape)
        arrays.append(_Array(str(name), dt, tuple(shape), pos, count))
        pos += count * dt.itemsize
        pos += _pad(pos)
    return arrays, pos


def _read(reader, n: int) -> bytes:
    """Exactly the next `n` inflated bytes."""
    parts, got = [], 0
    while got < n:
        part = reader.read(n - got)
        if not part:
            raise PackError("damaged blob (shorter than its index says)")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _pad(n: int) -> int:
    return -n % _ALIGN
