"""The block and row-map codec: what a message's sections hold, compactly and losslessly.

`channels/frames.py` puts these sections in a message and the message in frames; here are the
sections themselves (the full format and the measurements behind its choices are in
`docs/encoding.md`).

CSR block payload: a fixed prefix (with a checksum of the whole payload) and up to two
zstandard frames:

- *structure*: a bitmap of the rows that have entries (left out when every row has one), then
  the column indices of the occupied rows, as whichever is smaller raw: a per-row bitmap of
  k bits, or per-row gap coding (first column, then column steps minus one, in the narrowest
  unsigned width, split into byte planes) with the per-row counts. The index is left out
  when every occupied row is full (saturated rows: all ymax), as is common in late layers.
- *values*, in row-major order: nothing for a single distinct value (all 32.0, say: its bit
  pattern sits in the prefix), a dictionary of distinct float32 bit patterns plus u8/u16
  codes when there are few, otherwise the raw bit patterns split into four byte planes.

A dense section (k x u float32, the workers' layout) is verbatim or a non-zero bitmap plus the
same value coding; a row-map section carries the batch's row map, the present rows and the
labels, each in the narrowest unsigned width, as byte planes.

Lossless: values travel as exact float32 bit patterns (subnormals, the extremes, even inf and
NaN payloads).
The block is canonicalised first: duplicate entries are summed (scipy's meaning of a
duplicate) and stored zeros, +0.0 and -0.0 alike, are dropped; both are invisible in any
arithmetic on the matrix. The shape is always preserved (0 x k, B x 0 and empty blocks too).

Safety: every decoder raises `FrameError` on anything malformed. The checksum
is checked before anything is decompressed (so damage is caught before any allocation), every
section's decompressed size is computed from the prefix and must match the zstandard frame's
declared size, and every decoded count and index is range-checked, so the decoder allocates
no more than the block it returns needs. What a prefix may promise is bounded too: `MAX_ROWS`
rows, `MAX_ENTRIES` entries (a CSR block's non-zeros, a compressed dense block's cells; a
verbatim dense block is bounded by its own bytes), and an index bitmap no larger than the
encoder would have chosen, so a short payload cannot ask for gigabytes.
"""

from __future__ import annotations

import functools
import struct
import threading
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import xxhash
import zstandard

_U32 = 0xFFFF_FFFF

# then, unless the block is empty: nnz, occupied rows R, one value-mode word, structure length.
_PREFIX = struct.Struct("<IBII")
_BODY = struct.Struct("<IIII")

_EMPTY = 0x01  # no entries: nothing follows the prefix
_ALL_ROWS = 0x02  # every row has an entry: no row bitmap
_IDX_SHIFT, _IDX_FULL, _IDX_BITMAP, _IDX_GAPS = 2, 0, 1, 2  # bits 2-3
_GAP_SHIFT = 4  # bits 4-5: log2 of the gap width in bytes (1, 2, 4)
_VAL_SHIFT, _VAL_CONST, _VAL_DICT8, _VAL_DICT16, _VAL_PLANES = 6, 0, 1, 2, 3  # bits 6-7

# Dense section: checksum (0 when raw), flags, k, u; unless raw or empty: nnz, value word, bitmap length.
_DENSE_PREFIX = struct.Struct("<IBII")
_DENSE_BODY = struct.Struct("<III")
_D_RAW = 0x04  # k x u float32 verbatim (an in-memory channel's choice)
_D_FULL = 0x02  # no zero entry: no bitmap
# Row-map section: checksum, batch B, block rows u, flags, map section length.
_ROWMAP_PREFIX = struct.Struct("<IIIBI")
_RM_LABELS, _RM_REPEAT = 0x01, 0x02  # labels follow; the map is the sender's previous one (not sent)
_RM_PRESENT = 0x04  # the block holds only some of the rows: u32 length, then their ascending ids

# Measured (docs/encoding.md): level 3 matches zlib level 3's size at half its time; level 6
# saves 2-9% for 1.5-2x the time.
ZSTD_LEVEL = 3
_DICT_SAMPLE = 4096  # values sampled to guess whether a dictionary can work
_DICT_MAX = 1 << 16  # largest dictionary (u16 codes)
_HASH_MAX = 1024  # dictionaries up to this size are looked up by perfect hashing
_TRY_PLANES = 1 << 16  # up to this many entries, also try byte planes and keep the smaller
#: Most rows a block may have: the decoder allocates an index pointer per row, even for an
#: empty block, so this bounds what a 13-byte payload can make it allocate (128 MiB).
MAX_ROWS = 1 << 24
#: Most entries a block may have (non-zeros of a CSR block, cells of a compressed dense one):
#: a CSR block of one repeated value on full rows is ~29 bytes whatever its size, so this bounds
#: what such a payload can make the decoder allocate. 2^30 float32 values are 4 GiB, 8 GiB with
#: their indices: more than a 10 GB Lambda can hold next to its own activations.
MAX_ENTRIES = 1 << 30

_local = threading.local()  # zstandard contexts are not thread-safe: one pair per thread


class FrameError(ValueError):
    """A frame or payload that is not ours or is damaged; receivers drop it and count it."""


# Whatever numpy, struct or zstandard raise on a malformed section that slipped past the checks.
_DAMAGE = (ValueError, IndexError, OverflowError, MemoryError, struct.error, zstandard.ZstdError)


def _refuses_damage(decode):
    """`decode`, raising only FrameError: what else a malformed input makes it raise is converted."""
    @functools.wraps(decode)
    def checked(*args):
        try:
            return decode(*args)
        except FrameError:
            raise
        except _DAMAGE as exc:
            raise FrameError(f"bad payload: {exc}") from None
    return checked


# ---------------------------------------------------------------------------- blocks
def encode_block(block: sp.spmatrix) -> bytes:
    """Encode a B x k float32 sparse block losslessly (see the module docstring)."""
    m = _canonical(block)
    rows, cols = m.shape
    nnz = m.nnz
    if rows > MAX_ROWS or cols > _U32 or nnz > MAX_ENTRIES:
        raise ValueError(f"block {rows} x {cols} with {nnz} entries is too large to encode")
    if nnz == 0:
        return _with_checksum(_PREFIX.pack(0, _EMPTY, rows, cols))
    counts = np.diff(m.indptr)
    occupied = counts > 0
    nrows = int(np.count_nonzero(occupied))
    flags, structure = 0, []
    if nrows == rows:
        flags |= _ALL_ROWS
    else:
        structure.append(np.packbits(occupied).tobytes())
        counts = counts[occupied]
    index_mode, gap_log, index = _encode_index(m, counts, nrows, cols)
    structure += index
    bits = m.data.view(np.uint32)
    value_mode, value_word, values = _encode_values(bits)
    s2 = _compress(values) if values else b""
    if value_mode in (_VAL_DICT8, _VAL_DICT16) and nnz <= _TRY_PLANES:
        planes = _compress(_planes(bits))  # cheap at this size, and sometimes smaller
        if len(planes) < len(s2):
            value_mode, value_word, s2 = _VAL_PLANES, 0, planes
    flags |= index_mode << _IDX_SHIFT | gap_log << _GAP_SHIFT | value_mode << _VAL_SHIFT
    s1 = _compress(b"".join(structure)) if structure else b""
    head = _PREFIX.pack(0, flags, rows, cols) + _BODY.pack(nnz, nrows, value_word, len(s1))
    return _with_checksum(head + s1 + s2)


@_refuses_damage
def decode_block(payload: bytes) -> sp.csr_matrix:
    """Decode `encode_block`'s output into a canonical B x k float32 CSR matrix, or FrameError."""
    view = memoryview(payload)
    if len(view) < _PREFIX.size:
        raise FrameError("payload shorter than its prefix")
    check, flags, rows, cols = _PREFIX.unpack_from(view)
    if checksum(view[4:]) != check:
        raise FrameError("payload checksum mismatch")
    if rows > MAX_ROWS:
        raise FrameError(f"block of {rows} rows exceeds the limit of {MAX_ROWS}")
    return _decode_checked(view, flags, rows, cols)


# ---------------------------------------------------------------------------- dense blocks
def encode_dense(t: np.ndarray, compress: bool) -> list:
    """A k x u float32 array: verbatim (`_D_RAW`), or a non-zero bitmap and coded values."""
    if t.dtype != np.float32 or t.ndim != 2:
        raise ValueError(f"dense blocks are 2-d float32, got {t.dtype} {t.shape}")
    k, u = t.shape
    if u > MAX_ROWS or k > _U32 or (compress and k * u > MAX_ENTRIES):
        raise ValueError(f"dense block {k} x {u} is too large to encode")
    if not compress:
        data = memoryview(np.ascontiguousarray(t).reshape(-1).view(np.uint8))  # verbatim; the frame checksum covers it
        return [_DENSE_PREFIX.pack(0, _D_RAW, k, u), data]
    mask = t != 0
    nnz = int(np.count_nonzero(mask))
    if nnz == 0:
        return [_with_checksum(_DENSE_PREFIX.pack(0, _EMPTY, k, u))]
    flags, s1 = 0, b""
    if nnz == k * u:
        flags |= _D_FULL
    else:
        s1 = _compress(np.packbits(mask).tobytes())
    bits = t[mask].view(np.uint32)
    value_mode, value_word, values = _encode_values(bits)
    s2 = _compress(values) if values else b""
    flags |= value_mode << _VAL_SHIFT
    head = _DENSE_PREFIX.pack(0, flags, k, u) + _DENSE_BODY.pack(nnz, value_word, len(s1))
    return [_with_checksum(head + s1 + s2)]


@_refuses_damage
def decode_dense(view: memoryview) -> np.ndarray:
    """Decode `encode_dense`'s section into a k x u float32 array (a view of a verbatim one), or FrameError."""
    if len(view) < _DENSE_PREFIX.size:
        raise FrameError("dense section shorter than its prefix")
    check, flags, k, u = _DENSE_PREFIX.unpack_from(view)
    if u > MAX_ROWS:
        raise FrameError(f"block of {u} rows exceeds the limit of {MAX_ROWS}")
    pos = _DENSE_PREFIX.size
    if flags == _D_RAW:  # a view of the section's own bytes: nothing to allocate
        if check != 0 or len(view) - pos != 4 * k * u:
            raise FrameError("raw dense section has the wrong size")
        return np.frombuffer(view[pos:], dtype=np.float32).reshape(k, u)
    if k * u > MAX_ENTRIES:
        raise FrameError(f"dense block {k} x {u} exceeds the limit of {MAX_ENTRIES} entries")
    if checksum(view[4:]) != check:
        raise FrameError("payload checksum mismatch")
    if flags == _EMPTY:
        if len(view) != pos:
            raise FrameError("bad empty block")
        return np.zeros((k, u), dtype=np.float32)
    if flags & ~(_D_FULL | 3 << _VAL_SHIFT):
        raise FrameError(f"bad flags {flags:#04x}")
    nnz, value_word, s1_len = _DENSE_BODY.unpack_from(view, pos)
    pos += _DENSE_BODY.size
    if not 0 < nnz <= k * u or (flags & _D_FULL) != (_D_FULL if nnz == k * u else 0):
        raise FrameError(f"bad counts: {nnz} entries in {k} x {u}")
    if flags & _D_FULL:
        _decompress(view[pos:pos + s1_len], 0, s1_len)
        mask = None
    else:
        s1 = _decompress(view[pos:pos + s1_len], (k * u + 7) // 8, s1_len)
        mask = np.unpackbits(np.frombuffer(s1, np.uint8), count=k * u).view(bool).reshape(k, u)
        if int(np.count_nonzero(mask)) != nnz:
            raise FrameError("non-zero bitmap disagrees with the entry count")
    pos += s1_len
    data = _decode_values(view, pos, flags >> _VAL_SHIFT & 3, value_word, nnz).view(np.float32)
    if mask is None:
        return data.reshape(k, u).copy()
    out = np.zeros((k, u), dtype=np.float32)
    out[mask] = data
    return out


# ---------------------------------------------------------------------------- row maps
class RowMap(NamedTuple):
    """A decoded row-map section (see `frames.Message` for what each field means)."""

    row_map: np.ndarray | None
    labels: np.ndarray | None
    repeat: bool
    present: np.ndarray | None
    count: int | None


def encode_row_map(row_map: np.ndarray, labels: np.ndarray | None, rows: int, repeat: bool = False,
                   present: np.ndarray | None = None) -> bytes:
    """The row-map section: `row_map` (B,) and `labels` (`rows`,) range over `rows` distinct rows;
    `repeat`: the map is not sent; `present`: the ascending ids of the rows the block holds."""
    row_map = np.asarray(row_map)
    batch = row_map.size
    if batch > MAX_ROWS or rows > MAX_ROWS or \
            (batch and not repeat and not (0 <= int(row_map.min()) and int(row_map.max()) < rows)):
        raise ValueError(f"row map of {batch} entries does not fit a block of {rows} rows")
    dt = _uint_for(max(rows - 1, 0))
    s1 = _compress(_planes(row_map.astype(dt))) if batch and not repeat else b""
    s3 = b""
    if present is not None:
        s3 = _compress(_planes(present.astype(dt))) if present.size else b""
        s3 = struct.pack("<II", present.size, len(s3)) + s3
    s2 = b""
    if labels is not None:
        labels = np.asarray(labels)
        if labels.size != rows or (rows and not (0 <= int(labels.min()) and int(labels.max()) < rows)):
            raise ValueError(f"labels of {labels.size} entries do not fit a block of {rows} rows")
        s2 = _compress(_planes(labels.astype(dt))) if rows else b""
    flags = (_RM_LABELS if labels is not None else 0) | (_RM_REPEAT if repeat else 0) | \
        (_RM_PRESENT if present is not None else 0)
    head = _ROWMAP_PREFIX.pack(0, batch, rows, flags, len(s1))
    return _with_checksum(head + s1 + s3 + s2)


@_refuses_damage
def decode_row_map(view: memoryview, stored: int) -> RowMap:
    """Decode `encode_row_map`'s section, or FrameError; `stored`: the rows its block holds."""
    if len(view) < _ROWMAP_PREFIX.size:
        raise FrameError("row-map section shorter than its prefix")
    check, batch, rows, flags, s1_len = _ROWMAP_PREFIX.unpack_from(view)
    if checksum(view[4:]) != check:
        raise FrameError("payload checksum mismatch")
    has_present = bool(flags & _RM_PRESENT)
    if (rows != stored and not has_present) or batch > MAX_ROWS or rows > MAX_ROWS or \
            flags & ~(_RM_LABELS | _RM_REPEAT | _RM_PRESENT):
        raise FrameError("row map disagrees with its block")
    has_labels, repeat = bool(flags & _RM_LABELS), bool(flags & _RM_REPEAT)
    dt = _uint_for(max(rows - 1, 0))
    pos = _ROWMAP_PREFIX.size
    row_map = None
    if repeat:
        if s1_len:
            raise FrameError("a repeated row map with a map section")
    else:
        s1 = _decompress(view[pos:pos + s1_len], batch * dt.itemsize, len(view[pos:pos + s1_len]))
        row_map = _unplanes(s1, batch, dt).astype(np.int64)
    pos += s1_len
    present = None
    if has_present:
        if len(view) < pos + 8:
            raise FrameError("present-rows section shorter than its prefix")
        n, s3_len = struct.unpack_from("<II", view, pos)
        pos += 8
        if n != stored or n > rows:
            raise FrameError("present rows disagree with the block")
        present = np.zeros(0, np.int64)
        if n:
            s3 = _decompress(view[pos:pos + s3_len], n * dt.itemsize, s3_len)
            present = _unplanes(s3, n, dt).astype(np.int64)
            if int(present[-1]) >= rows or not (present[1:] > present[:-1]).all():
                raise FrameError("present rows out of range or out of order")
        pos += s3_len
    labels = None
    if has_labels:
        s2 = _decompress(view[pos:], rows * dt.itemsize, len(view) - pos)
        labels = _unplanes(s2, rows, dt).astype(np.int64)
    elif pos != len(view):
        raise FrameError("trailing bytes after the row map")
    if (row_map is not None and batch and int(row_map.max()) >= rows) or \
            (labels is not None and rows and int(labels.max()) >= rows):
        raise FrameError("row map entry out of range")
    return RowMap(row_map, labels, repeat, present, rows if has_present else None)


# ---------------------------------------------------------------------------- encode helpers
def _canonical(block: sp.spmatrix) -> sp.csr_matrix:
    """CSR float32 with sorted, unique column indices and no stored zeros (copy only if needed)."""
    if not sp.issparse(block):
        raise TypeError(f"expected a scipy sparse block, got {type(block).__name__}")
    if block.dtype != np.float32:
        raise ValueError(f"blocks are float32, got {block.dtype}")
    m = sp.csr_matrix(block)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    if not np.all(m.data):  # stored zeros (+0.0 or -0.0)
        m = m.copy()
        m.eliminate_zeros()
    return m


def _encode_index(m: sp.csr_matrix, counts: np.ndarray, nrows: int, cols: int) -> tuple[int, int, list[bytes]]:
    """Column indices of the occupied rows: nothing (all full), a bitmap or gaps, the smaller."""
    nnz = m.nnz
    if nnz == nrows * cols:
        return _IDX_FULL, 0, []
    row_bytes = (cols + 7) // 8
    bitmap_size = nrows * row_bytes
    count_dtype = _uint_for(cols)
    count_size = nrows * count_dtype.itemsize
    if bitmap_size > nnz + count_size:  # gaps may win: work out their width
        ind = m.indices.astype(np.int64)
        gaps = np.empty(nnz, dtype=np.int64)
        gaps[1:] = ind[1:] - ind[:-1] - 1
        starts = m.indptr[:-1][np.diff(m.indptr) > 0]
        gaps[starts] = ind[starts]
        gap_dtype = _uint_for(int(gaps.max()))
        if bitmap_size > nnz * gap_dtype.itemsize + count_size:
            sections = [_planes(gaps.astype(gap_dtype)), _planes(counts.astype(count_dtype))]
            return _IDX_GAPS, gap_dtype.itemsize.bit_length() - 1, sections
    # Bitmap: row r's bits start at byte r * row_bytes, so each row is packed separately.
    width = row_bytes * 8
    flat = np.repeat(np.arange(nrows, dtype=np.int64) * width, counts) + m.indices
    bits = np.zeros(nrows * width, dtype=bool)
    bits[flat] = True
    return _IDX_BITMAP, 0, [np.packbits(bits).tobytes()]


def _encode_values(bits: np.ndarray) -> tuple[int, int, bytes]:
    """(mode, the word stored in the prefix, section bytes) for the values' bit patterns."""
    first = bits[0]
    if np.all(bits == first):
        return _VAL_CONST, int(first), b""
    n = len(bits)
    planes = (_VAL_PLANES, 0, _planes(bits))
    keys = np.unique(bits[::max(1, n // _DICT_SAMPLE)])
    if len(keys) * 4 > n or len(keys) > _DICT_SAMPLE // 4:
        return planes  # too many distinct values for a dictionary to pay off
    codes, hit = _lookup(keys, bits)
    if not hit.all():
        missing = bits[~hit]
        if len(missing) > n // 8:
            return planes
        keys = np.union1d(keys, missing)
        if len(keys) > _DICT_MAX or len(keys) * 4 > n:
            return planes
        codes, hit = _lookup(keys, bits)
    if len(keys) <= 256:
        return _VAL_DICT8, len(keys), keys.tobytes() + codes.astype(np.uint8).tobytes()
    return _VAL_DICT16, len(keys), keys.tobytes() + _planes(codes.astype(np.uint16))


def _lookup(keys: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each of `bits` in the sorted `keys`, and whether it is there at all.

    Small dictionaries use a collision-free multiplicative hash into a table of about 2 d^2
    slots: a gather instead of a binary search, about 10x faster than `np.searchsorted`.
    """
    d = len(keys)
    if d <= _HASH_MAX:
        shift = np.uint32(32 - max(8, 2 * int(d - 1).bit_length() + 1))
        for mult in _MULTIPLIERS:
            slots = (keys * mult) >> shift
            if len(np.unique(slots)) == d:
                table = np.zeros(1 << (32 - int(shift)), dtype=np.uint16)
                table[slots] = np.arange(d, dtype=np.uint16)
                codes = table[(bits * mult) >> shift]
                return codes, keys[codes] == bits
    codes = np.minimum(np.searchsorted(keys, bits), d - 1)
    return codes, keys[codes] == bits


# Fixed odd 32-bit multipliers, so that encoding is deterministic.
_MULTIPLIERS = [np.uint32(x) for x in np.random.default_rng(20240601).integers(0, 1 << 31, 32) * 2 + 1]


def _compress(data: bytes) -> bytes:
    """One zstandard frame with its content size (the decoder checks it before inflating)."""
    comp = getattr(_local, "zstd", None)
    if comp is None:
        comp = _local.zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
    return comp.compress(data)


def checksum(*parts) -> int:
    """The 32-bit checksum of the buffers' concatenation: the low half of XXH3-64.

    Every frame is checked when sent and when received, and a dense layer's frames are
    megabytes: zlib's crc32 ran at ~4 GB/s here (3% of a P=2 worker's time), XXH3 at ~47 GB/s.
    """
    if len(parts) == 1:
        return xxhash.xxh3_64_intdigest(parts[0]) & _U32
    h = xxhash.xxh3_64()
    for part in parts:
        h.update(part)
    return h.intdigest() & _U32


def _with_checksum(body: bytes) -> bytes:
    """Fill the prefix's checksum field with the checksum of everything after it."""
    return checksum(memoryview(body)[4:]).to_bytes(4, "little") + body[4:]


def _uint_for(largest: int) -> np.dtype:
    """The narrowest unsigned dtype (1, 2 or 4 bytes) that holds `largest`."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"{largest} does not fit 32 bits")


def _planes(a: np.ndarray) -> bytes:
    """Little-endian byte planes (all low bytes, then the next...): similar bytes sit together."""
    if a.itemsize == 1:
        return a.tobytes()
    return a.view(np.uint8).reshape(-1, a.itemsize).T.tobytes()


# ---------------------------------------------------------------------------- decode helpers
def _decode_checked(view: memoryview, flags: int, rows: int, cols: int) -> sp.csr_matrix:
    """Decode a payload whose checksum matched; every size is still checked before use."""
    pos = _PREFIX.size
    if flags & _EMPTY:
        if flags != _EMPTY or len(view) != pos:
            raise FrameError("bad empty block")
        return sp.csr_matrix((rows, cols), dtype=np.float32)
    nnz, nrows, value_word, s1_len = _BODY.unpack_from(view, pos)
    pos += _BODY.size
    index_mode = flags >> _IDX_SHIFT & 3
    gap_width = 1 << (flags >> _GAP_SHIFT & 3)
    value_mode = flags >> _VAL_SHIFT & 3
    all_rows = bool(flags & _ALL_ROWS)
    if not 0 < nrows <= rows or (all_rows and nrows != rows) or not nrows <= nnz <= min(nrows * cols, MAX_ENTRIES):
        raise FrameError(f"bad counts: {nnz} entries in {nrows} of {rows} x {cols}")
    if index_mode == 3 or gap_width == 8 or (index_mode != _IDX_GAPS and gap_width != 1):
        raise FrameError(f"bad flags {flags:#04x}")
    if (index_mode == _IDX_FULL) != (nnz == nrows * cols):
        raise FrameError("full-row flag does not match the counts")

    # Structure section: row bitmap, then the index.
    row_bitmap = 0 if all_rows else (rows + 7) // 8
    row_bytes = (cols + 7) // 8
    count_dtype = _uint_for(cols)
    index_size = {_IDX_FULL: 0, _IDX_BITMAP: nrows * row_bytes,
                  _IDX_GAPS: nnz * gap_width + nrows * count_dtype.itemsize}[index_mode]
    if index_mode == _IDX_BITMAP and index_size > 4 * nnz + nrows * count_dtype.itemsize:
        # The encoder takes gaps (at most 4 bytes an entry) over a larger bitmap; this bounds the
        # unpacked bitmap (a byte a bit: at most 64 bytes an entry) by the entries.
        raise FrameError(f"an index bitmap of {index_size} bytes for {nnz} entries")
    s1 = _decompress(view[pos:pos + s1_len], row_bitmap + index_size, s1_len)
    pos += s1_len
    if all_rows:
        occupied = None
    else:
        occupied = np.unpackbits(np.frombuffer(s1, np.uint8, row_bitmap), count=rows).view(bool)
        if np.count_nonzero(occupied) != nrows:
            raise FrameError("row bitmap disagrees with the row count")
    indices, counts = _decode_index(s1[row_bitmap:], index_mode, gap_width, count_dtype, nnz, nrows, cols)

    data = _decode_values(view, pos, value_mode, value_word, nnz)
    counts_all = counts
    if occupied is not None:
        counts_all = np.zeros(rows, dtype=np.int64)
        counts_all[occupied] = counts
    index_dtype = np.int32 if max(nnz, cols) < 2**31 else np.int64
    indptr = np.zeros(rows + 1, dtype=index_dtype)
    np.cumsum(counts_all, out=indptr[1:])
    return sp.csr_matrix((data.view(np.float32), indices.astype(index_dtype, copy=False), indptr),
                         shape=(rows, cols))


def _decode_values(view: memoryview, pos: int, value_mode: int, value_word: int, nnz: int) -> np.ndarray:
    """The values section (the rest of `view` from `pos`) as `nnz` uint32 bit patterns."""
    if value_mode == _VAL_CONST:
        if pos != len(view):
            raise FrameError("trailing bytes after a constant block")
        return np.full(nnz, value_word, dtype=np.uint32)
    d = value_word
    code_size = {_VAL_DICT8: 1, _VAL_DICT16: 2, _VAL_PLANES: 4}[value_mode]
    if value_mode != _VAL_PLANES and not (2 <= d <= min(nnz, _DICT_MAX)):
        raise FrameError(f"bad dictionary size {d}")
    dict_size = 0 if value_mode == _VAL_PLANES else 4 * d
    s2 = _decompress(view[pos:], dict_size + nnz * code_size, len(view) - pos)
    if value_mode == _VAL_PLANES:
        if value_word:
            raise FrameError("byte-plane values carry no dictionary")
        return _unplanes(s2, nnz, np.uint32)
    keys = np.frombuffer(s2, np.uint32, d)
    codes = _unplanes(s2[dict_size:], nnz, np.uint8 if code_size == 1 else np.uint16)
    if int(codes.max()) >= d:
        raise FrameError("dictionary code out of range")
    return keys[codes]


def _decode_index(buf: bytes, mode: int, gap_width: int, count_dtype: np.dtype, nnz: int, nrows: int,
                  cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices (row-major) and per-row counts of the occupied rows; checks both."""
    if mode == _IDX_FULL:
        return np.tile(np.arange(cols, dtype=np.int64), nrows), np.full(nrows, cols, dtype=np.int64)
    if mode == _IDX_BITMAP:
        row_bytes = (cols + 7) // 8
        mask = np.unpackbits(np.frombuffer(buf, np.uint8).reshape(nrows, row_bytes), axis=1, count=cols)
        mask = mask.view(bool)  # 0/1 bytes; numpy's nonzero is ~10x faster on bool than on uint8
        counts = np.count_nonzero(mask, axis=1)
        if int(counts.sum()) != nnz or not counts.all():
            raise FrameError("index bitmap disagrees with the entry count")
        flat = np.flatnonzero(mask)
        return flat - np.repeat(np.arange(nrows, dtype=np.int64) * cols, counts), counts
    gaps = _unplanes(buf, nnz, _uint_for((1 << (8 * gap_width)) - 1)).astype(np.int64)
    counts = _unplanes(buf[nnz * gap_width:], nrows, count_dtype).astype(np.int64)
    if int(counts.sum()) != nnz or not counts.all():
        raise FrameError("row counts disagree with the entry count")
    ends = np.cumsum(counts)
    run = np.cumsum(gaps + 1)  # column + 1 of each entry, if every row continued the previous one
    before = np.concatenate(([0], run[ends[:-1] - 1]))  # run value just before each row starts
    indices = run - 1 - np.repeat(before, counts)
    if int(indices[ends - 1].max()) >= cols:  # columns rise within a row: the last is the largest
        raise FrameError("column index out of range")
    return indices, counts


def _decompress(data: memoryview, expected: int, length: int) -> bytes:
    """Inflate one section of exactly `expected` bytes; its frame must say so before we inflate."""
    if len(data) != length:
        raise FrameError("section runs past the payload")
    if expected == 0:
        if length:
            raise FrameError("unexpected section")
        return b""
    if zstandard.frame_content_size(data) != expected:
        raise FrameError("section size does not match the block's counts")
    dec = getattr(_local, "unzstd", None)
    if dec is None:
        dec = _local.unzstd = zstandard.ZstdDecompressor()
    out = dec.decompress(data, max_output_size=expected)
    if len(out) != expected:
        raise FrameError("section inflated to the wrong size")
    return out


def _unplanes(buf: bytes, count: int, dtype: type) -> np.ndarray:
    """Inverse of `_planes` for `count` values of `dtype`."""
    size = np.dtype(dtype).itemsize
    planes = np.frombuffer(buf, np.uint8, count * size).reshape(size, count)
    out = np.empty((count, size), dtype=np.uint8)
    for i in range(size):  # one strided copy per plane: ~7x faster than a transposed copy
        out[:, i] = planes[i]
    return out.view(dtype).reshape(count)
