"""Wire encoding shared by every channel: a fixed header plus a compressed sparse block.

PLACEHOLDER (to be replaced by the compact encoding): float32 COO, zlib level 3.

Frame layout: header (struct `HEADER`) then payload bytes. A block is a B x k sparse float32
matrix (B inputs, k = the neurons the plan says to send, in plan order).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

ENCODING_VERSION = 1
MAGIC = b"FSD1"
# magic, version, run id (16 bytes, ascii), layer, src, dst, chunk k, chunk count n
HEADER = struct.Struct("<4sB16sIIIII")


class FrameError(ValueError):
    """A frame that is not ours or is damaged; receivers drop it and count it."""


@dataclass(frozen=True)
class Header:
    run_id: str
    layer: int
    src: int
    dst: int
    chunk: int
    chunks: int


def pack_header(h: Header) -> bytes:
    rid = h.run_id.encode("ascii")
    if len(rid) > 16:
        raise ValueError(f"run id {h.run_id!r} is longer than 16 characters")
    return HEADER.pack(MAGIC, ENCODING_VERSION, rid.ljust(16, b"\0"), h.layer, h.src, h.dst, h.chunk, h.chunks)


def unpack_header(frame: bytes) -> tuple[Header, bytes]:
    if len(frame) < HEADER.size:
        raise FrameError("frame shorter than its header")
    magic, version, rid, layer, src, dst, k, n = HEADER.unpack_from(frame)
    if magic != MAGIC or version != ENCODING_VERSION:
        raise FrameError("unknown magic or encoding version")
    if not 0 <= k < n:
        raise FrameError(f"chunk {k} of {n}")
    return Header(rid.rstrip(b"\0").decode("ascii"), layer, src, dst, k, n), frame[HEADER.size:]


def encode_block(block: sp.csr_matrix) -> bytes:
    coo = sp.coo_matrix(block)
    shape = np.array(block.shape, dtype=np.uint32).tobytes()
    body = np.column_stack([coo.data.astype(np.float32), coo.row.astype(np.float32),
                            coo.col.astype(np.float32)]).tobytes()
    return shape + zlib.compress(body, 3)


def decode_block(payload: bytes) -> sp.csr_matrix:
    try:
        b, k = np.frombuffer(payload[:8], dtype=np.uint32)
        trip = np.frombuffer(zlib.decompress(payload[8:]), dtype=np.float32).reshape(-1, 3)
    except (ValueError, zlib.error) as exc:
        raise FrameError(f"bad payload: {exc}") from None
    return sp.csr_matrix((trip[:, 0], (trip[:, 1].astype(np.int64), trip[:, 2].astype(np.int64))),
                         shape=(int(b), int(k)))


def frames_for(header: Header, payload: bytes, max_frame: int | None) -> list[bytes]:
    """Split `payload` into frames of at most `max_frame` bytes (header included)."""
    if max_frame is None or HEADER.size + len(payload) <= max_frame:
        parts = [payload]
    else:
        step = max_frame - HEADER.size
        if step <= 0:
            raise ValueError(f"frame limit {max_frame} leaves no room for a payload")
        parts = [payload[i:i + step] for i in range(0, len(payload), step)]
    n = len(parts)
    return [pack_header(Header(header.run_id, header.layer, header.src, header.dst, k, n)) + p
            for k, p in enumerate(parts)]
