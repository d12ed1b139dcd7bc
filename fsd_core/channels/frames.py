"""Frames and messages, shared by every channel: a small header, chunking, and the message.

A *frame* is what a transport carries: header, then a chunk of a message's *payload*.
`frames_for` cuts one payload into frames no larger than the channel's limit; the receiver
(`Channel._accept`) checks each header with `unpack_header`, joins the chunks and calls
`decode_message`. The sections a message holds (a CSR or dense block, a row map) are coded in
`channels/codec.py`. The full format and the measurements behind its choices are in
`docs/encoding.md`; in short:

Header (`HEADER`, little-endian, 24 bytes + the run id)::

    magic "FD" | version u8 | run-id length u8 | layer u32 | src u16 | dst u16
    | chunk u32 | chunks u32 | checksum u32 | run id (ascii, <= 16 bytes)

The checksum covers the header fields, the run id and the frame's chunk, so a damaged frame is
rejected on its own (a clean duplicate delivered later can still complete the message).

On a keyed channel (queue and object: whoever can write to the bucket or a queue could
otherwise inject frames) a 16-byte MAC follows the run id: keyed BLAKE2b over the header
fields, the checksum, the run id and the chunk, with the run's secret key, which travels only
in the workers' events. A frame without it, forged, from another run (another key), truncated
or lying about its chunk count fails it and is dropped before it can touch the reassembly.
The local channel's frames are files in this user's private directories and carry none (a MAC
costs ~1 GB/s of BLAKE2b against XXH3's ~47 GB/s on megabyte frames).

Message: an envelope (kind, block section length), the block section, then the row-map
section if any.

Safety: `unpack_header` and `decode_message` raise `FrameError` on anything malformed (see the
codec for how the sections are checked).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .codec import (
    FrameError,
    checksum,
    decode_block,
    decode_dense,
    decode_row_map,
    encode_block,
    encode_dense,
    encode_row_map,
)

ENCODING_VERSION = 5
MAGIC = b"FD"
MAX_RUN_ID = 16
# magic, version, run-id length, layer, src, dst, chunk k, chunk count n, checksum; then the run id
HEADER = struct.Struct("<2sBBIHHIII")
#: Bytes of the MAC a keyed frame carries after the run id (BLAKE2b-128).
MAC_SIZE = 16
#: Bytes of a run's secret key (BLAKE2b keys are up to 64).
KEY_SIZE = 32
MAX_HEADER_SIZE = HEADER.size + MAX_RUN_ID + MAC_SIZE
_U32 = 0xFFFF_FFFF
_U16 = 0xFFFF

# Message envelope: kind (bits below), length of the block section; then the block section
# (CSR: the block payload; dense: a dense section), then the row-map section if any (codec.py).
_ENVELOPE = struct.Struct("<BI")
_DENSE, _ROWMAP = 0x01, 0x02


@dataclass(frozen=True)
class Header:
    """Who sent which piece of which message: run, layer, sender, receiver, chunk k of n."""

    run_id: str
    layer: int
    src: int
    dst: int
    chunk: int = 0
    chunks: int = 1


# ---------------------------------------------------------------------------- header / frames
def frame_size(frame: bytes | list) -> int:
    """Bytes of a frame from `frames_for` (joined, or a list of buffers)."""
    return sum(memoryview(p).nbytes for p in frame) if isinstance(frame, list) else len(frame)


def header_size(run_id: str, keyed: bool = False) -> int:
    """Bytes of the header of every frame of run `run_id` (with its MAC when `keyed`)."""
    return HEADER.size + len(run_id) + (MAC_SIZE if keyed else 0)


def _mac(key: bytes, head: bytes | memoryview, chunk: list) -> bytes:
    mac = hashlib.blake2b(key=key, digest_size=MAC_SIZE)
    mac.update(head)
    for part in chunk:
        mac.update(part)
    return mac.digest()


def pack_header(h: Header, payload: bytes | list = b"", key: bytes | None = None) -> bytes:
    """The header of the frame that carries `payload` (its checksum covers the chunk too; with
    the run's `key`, its MAC covers header and chunk).

    `payload` may be a list of buffers (the chunk is their concatenation).
    """
    try:
        rid = h.run_id.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"run id {h.run_id!r} is not ascii") from None
    if len(rid) > MAX_RUN_ID:
        raise ValueError(f"run id {h.run_id!r} is longer than {MAX_RUN_ID} characters")
    if not (0 <= h.layer <= _U32 and 0 <= h.src <= _U16 and 0 <= h.dst <= _U16):
        raise ValueError(f"layer {h.layer}, src {h.src} or dst {h.dst} out of range")
    if not 0 <= h.chunk < h.chunks <= _U32:
        raise ValueError(f"chunk {h.chunk} of {h.chunks}")
    chunk = payload if isinstance(payload, list) else [payload]
    fields = HEADER.pack(MAGIC, ENCODING_VERSION, len(rid), h.layer, h.src, h.dst, h.chunk, h.chunks, 0)[:-4]
    head = fields + checksum(fields, rid, *chunk).to_bytes(4, "little") + rid
    return head if key is None else head + _mac(key, head, chunk)


def unpack_header(frame: bytes, key: bytes | None = None) -> tuple[Header, memoryview]:
    """Split a frame into its checked header and its chunk (a view, not a copy); FrameError
    if it is not intact, or, with the run's `key`, if its MAC does not hold."""
    view = memoryview(frame)
    if len(view) < HEADER.size:
        raise FrameError("frame shorter than its header")
    magic, version, nrid, layer, src, dst, k, n, check = HEADER.unpack_from(view)
    if magic != MAGIC or version != ENCODING_VERSION:
        raise FrameError("unknown magic or encoding version")
    if nrid > MAX_RUN_ID or len(view) < HEADER.size + nrid:
        raise FrameError("bad run id length")
    end = HEADER.size + nrid
    if key is not None:
        if len(view) < end + MAC_SIZE:
            raise FrameError("frame shorter than its MAC")
        if not hmac.compare_digest(_mac(key, view[:end], [view[end + MAC_SIZE:]]), view[end:end + MAC_SIZE]):
            raise FrameError("frame MAC mismatch (forged, damaged or of another run)")
        chunk = view[end + MAC_SIZE:]
    else:
        chunk = view[end:]
    if checksum(view[:HEADER.size - 4], view[HEADER.size:end], chunk) != check:
        raise FrameError("frame checksum mismatch")
    if not 0 <= k < n:
        raise FrameError(f"chunk {k} of {n}")
    try:
        rid = bytes(view[HEADER.size:HEADER.size + nrid]).decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("run id is not ascii") from None
    return Header(rid, layer, src, dst, k, n), chunk


def frames_for(header: Header, payload: bytes | list, max_frame: int | None, join: bool = True,
               key: bytes | None = None) -> list:
    """Split `payload` (bytes, or a list of buffers to concatenate) into frames of at most
    `max_frame` bytes (header included); a payload that fits is copied once, into its frame,
    or, with `join=False`, not at all: that frame is the list [header, *buffers]. With the
    run's `key` every frame carries its MAC."""
    parts = payload if isinstance(payload, list) else [payload]
    size = sum(memoryview(p).nbytes for p in parts)
    hsize = header_size(header.run_id, key is not None)
    if max_frame is None or hsize + size <= max_frame:
        one = Header(header.run_id, header.layer, header.src, header.dst, 0, 1)
        frame = [pack_header(one, parts, key)] + parts
        return [b"".join(frame) if join else frame]
    step = max_frame - hsize
    if step <= 0:
        raise ValueError(f"frame limit {max_frame} leaves no room for a payload")
    view = memoryview(b"".join(parts))
    chunks = [view[i:i + step] for i in range(0, size, step)]
    n = len(chunks)
    frames = []
    for k, part in enumerate(chunks):
        h = Header(header.run_id, header.layer, header.src, header.dst, k, n)
        frames.append(pack_header(h, part, key) + part)
    return frames


# ---------------------------------------------------------------------------- messages
@dataclass
class Message:
    """What a frame sequence carries: a block of distinct rows and how the batch maps onto it.

    `block` is a u x k CSR matrix, or a k x u float32 array (dense rows as columns, the
    workers' layout). `row_map` (B,) gives each batch row's row of the block (None: the block's
    rows are the batch rows); `labels` (u,) the index of each row's first equal row among the
    sender's rows (None: all distinct). `repeat_map`: the row map is the one the sender's
    previous message to this receiver carried, so only its size travels (a row map changes
    only when rows merge, and it is B entries a layer); the receiver puts it back, and
    decoding leaves `row_map` None. `present` (ascending, with a row map): the block holds only
    these of the sender's `count` distinct rows, the others are all zero ("present rows" in
    `rows.py`);
    row map and labels then range over all `count` rows.
    """

    block: sp.spmatrix | np.ndarray
    row_map: np.ndarray | None = None
    labels: np.ndarray | None = None
    repeat_map: bool = False
    present: np.ndarray | None = None
    count: int | None = None

    @property
    def rows(self) -> int:
        """The sender's distinct rows the row map and labels refer to."""
        return _rows_of(self.block) if self.present is None else int(self.count)

    @property
    def empty(self) -> bool:
        """No non-zero at all: every batch row gets zeros, whatever the row map says."""
        b = self.block
        return not (np.any(b.data) if sp.issparse(b) else np.any(b))


def encode_message(msg: Message, compress: bool = True) -> bytes:
    """Encode a message: envelope, block section (CSR or dense), optional row-map section.

    A dense block travels compressed (non-zero bitmap + coded values, as CSR blocks), or, with
    `compress=False` (an in-memory channel, where bytes are free and time is not), verbatim.
    """
    return b"".join(message_parts(msg, compress))


def message_parts(msg: Message, compress: bool = True) -> list:
    """`encode_message` as a list of buffers (a verbatim dense block is not copied)."""
    kind = 0
    if sp.issparse(msg.block):
        section = [encode_block(msg.block)]
    else:
        kind |= _DENSE
        section = encode_dense(np.asarray(msg.block), compress)
    parts = section[:]
    if msg.row_map is not None:
        kind |= _ROWMAP
        parts.append(encode_row_map(msg.row_map, msg.labels, msg.rows, msg.repeat_map,
                                    _checked_present(msg.present, msg.rows, _rows_of(msg.block))))
    elif msg.labels is not None or msg.present is not None:
        raise ValueError("labels and present rows need a row map")
    return [_ENVELOPE.pack(kind, sum(memoryview(p).nbytes for p in section))] + parts


def decode_message(payload: bytes) -> Message:
    """Inverse of `encode_message`; FrameError on anything malformed."""
    view = memoryview(payload)
    if len(view) < _ENVELOPE.size:
        raise FrameError("payload shorter than its envelope")
    kind, length = _ENVELOPE.unpack_from(view)
    if kind & ~(_DENSE | _ROWMAP):
        raise FrameError(f"bad message kind {kind:#04x}")
    start, end = _ENVELOPE.size, _ENVELOPE.size + length
    if end > len(view) or (end < len(view)) != bool(kind & _ROWMAP):
        raise FrameError("block section length disagrees with the payload")
    block = decode_dense(view[start:end]) if kind & _DENSE else decode_block(view[start:end])
    if not kind & _ROWMAP:
        return Message(block)
    rm = decode_row_map(view[end:], _rows_of(block))
    return Message(block, rm.row_map, rm.labels, rm.repeat, rm.present, rm.count)


def _rows_of(block) -> int:
    return block.shape[0] if sp.issparse(block) else block.shape[1]


def _checked_present(present: np.ndarray | None, count: int | None, stored: int) -> np.ndarray | None:
    if present is None:
        return None
    present = np.asarray(present)
    if count is None or present.size != stored or (present.size and (
            int(present[0]) < 0 or int(present[-1]) >= count or not (present[1:] > present[:-1]).all())):
        raise ValueError(f"present rows ({present.size}) do not fit a block of {stored} of {count} rows")
    return present
