"""Every decoder of bytes from outside, fuzzed: damage is its own error, never anything else.

Each test takes a few small valid inputs and decodes >= 10,000 mutations of them (fixed seed,
so a failure reproduces): single and multi-bit flips, byte overwrites, truncation at a random
point, zeroed spans, appended garbage and duplicated spans. A mutation must either decode or
raise exactly the decoder's own error class (PackError, FrameError, InputError); anything else
(MemoryError, zlib.error, IndexError...) fails the test, naming the mutation. Where a checksum
guards the input, a mutation that decodes must give the original back; the codec tests also
re-seal half their mutations (recompute the checksums) so the parser behind the checksum sees
the damage too, and then only ask for a well-formed result.
"""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fsd_core import packed
from fsd_core.channels import codec
from fsd_core.channels.codec import FrameError, checksum
from fsd_core.channels.frames import (
    Header,
    Message,
    decode_message,
    encode_message,
    frames_for,
    unpack_header,
)
from fsd_core.errors import InputError
from fsd_core.model.network import SparseDNN, read_inputs
from fsd_core.model.tsv import (
    MAX_INPUT_ROWS,
    read_categories,
    read_triples,
    write_triples,
)

from .conftest import random_model

MUTATIONS = ("bit flip", "bit flips", "overwrite", "truncate", "zero span", "append", "duplicate span")


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of `data`, and its kind."""
    b = bytearray(data)
    n = len(b)
    kind = MUTATIONS[rng.integers(len(MUTATIONS))]
    if n == 0:
        kind = "append"
    if kind == "bit flip":
        i = rng.integers(n)
        b[i] ^= 1 << rng.integers(8)
    elif kind == "bit flips":
        for i in rng.integers(0, n, rng.integers(2, 9)):
            b[i] ^= 1 << rng.integers(8)
    elif kind == "overwrite":
        for i in rng.integers(0, n, rng.integers(1, 5)):
            b[i] = rng.integers(256)
    elif kind == "truncate":
        del b[rng.integers(n):]
    elif kind == "zero span":
        start = rng.integers(n)
        end = min(n, start + rng.integers(1, 33))
        b[start:end] = bytes(end - start)
    elif kind == "append":
        b += rng.bytes(rng.integers(1, 65))
    else:
        start = rng.integers(n)
        span = b[start:start + rng.integers(1, 33)]
        at = rng.integers(n + 1)
        b[at:at] = span
    return kind, bytes(b)


def fuzz(originals: list[bytes], decode: Callable[[bytes], object], error: type[Exception], count: int,
         seed: int, check: Callable[[int, bytes, object], None] | None = None, mutation=mutate) -> Counter:
    """Decode `count` mutations of the `originals` (round robin); tally decoded and refused.

    `check(i, mutated, result)` judges a mutation that decoded (of `originals[i]`).
    """
    rng = np.random.default_rng(seed)
    tally: Counter = Counter()
    for k in range(count):
        i = k % len(originals)
        kind, data = mutation(originals[i], rng)
        try:
            result = decode(data)
        except error:
            tally["refused"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
            pytest.fail(f"mutation {k} ({kind}) of input {i} raised {type(exc).__name__}: {exc}")
        tally["decoded"] += 1
        if check is not None:
            check(i, data, result)
    assert tally["refused"] + tally["decoded"] == count
    return tally


# ---------------------------------------------------------------------------- packed arrays
PACKED = [
    {"a": np.arange(40, dtype=np.int64), "b": np.linspace(0, 1, 7, dtype=np.float32)},
    {"shape": np.array([3, 5]), "indptr": np.array([0, 2, 2, 3]), "indices": np.int32([0, 4, 1]),
     "data": np.float32([1, 0.5, 32]), "flag": np.bool_(True), "empty": np.zeros((0, 3), np.uint16)},
    {"big": np.repeat(np.arange(300, dtype=np.int32), 20)},  # long enough for several zstd sequences
    {},
]


def test_packed_unpack_refuses_damage():
    blobs = [packed.pack(a) for a in PACKED]

    def same(i: int, _data: bytes, back: dict) -> None:
        """The zstd frame carries a checksum: what decodes is the original."""
        want = PACKED[i]
        assert list(back) == list(want)
        assert all(back[k].dtype == np.asarray(v).dtype and back[k].tobytes() == np.asarray(v).tobytes()
                   for k, v in want.items())

    tally = fuzz(blobs, packed.unpack, packed.PackError, 12_000, seed=1, check=same)
    assert tally["refused"] > 10_000


def test_packed_header_promising_a_terabyte_is_refused_without_allocating():
    # A zstd frame header (single segment, 8-byte content size = 2**40, checksum on), then junk.
    blob = bytes.fromhex("28b52ffd") + bytes([0xE4]) + (1 << 40).to_bytes(8, "little") + bytes(64)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(packed.PackError, match="content size 1099511627776"):
        packed.unpack(blob)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 0.1 and peak < 1 << 20


# ---------------------------------------------------------------------------- the wire codec
def _blocks() -> list[sp.csr_matrix]:
    """Small blocks in every index and value mode (codec.py): each decode takes ~0.1 ms."""
    rng = np.random.default_rng(7)
    few = sp.random(30, 40, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    few.data = rng.choice(np.float32([0.5, 1.5, 32.0]), few.nnz)
    many = sp.random(40, 60, density=0.6, random_state=rng, format="csr", dtype=np.float32)
    many.data = rng.integers(1, 400, many.nnz).astype(np.float32)  # ~300 distinct: 16-bit codes
    return [
        sp.csr_matrix((12, 9), dtype=np.float32),  # empty
        sp.csr_matrix(np.full((6, 8), 32.0, np.float32)),  # full rows, one value
        sp.random(20, 16, density=0.3, random_state=rng, format="csr", dtype=np.float32),  # bitmap, planes
        sp.random(10, 3000, density=0.002, random_state=rng, format="csr", dtype=np.float32),  # gaps
        few, many,
    ]


BLOCKS = _blocks()
DENSE = [np.zeros((5, 4), np.float32), np.full((3, 7), 32.0, np.float32),
         BLOCKS[2].toarray().T.copy(), BLOCKS[4].toarray()[:8].T.copy()]


def _messages() -> list[Message]:
    rng = np.random.default_rng(8)
    dense = DENSE[2]
    return [
        Message(BLOCKS[2]),
        Message(BLOCKS[4], rng.integers(0, 30, 50), np.minimum(np.arange(30), 28)),
        Message(dense, rng.integers(0, 20, 64), None),
        Message(dense, np.arange(20), None, repeat_map=True),
        Message(BLOCKS[3][:4], rng.integers(0, 10, 16), None, present=np.array([1, 4, 5, 8]), count=10),
        Message(BLOCKS[0][:0], np.zeros(8, np.int64), None, present=np.zeros(0, np.int64), count=3),
    ]


MESSAGES = _messages()


def _seal(section: bytearray, start: int, end: int) -> None:
    """Recompute the checksum of the section `section[start:end]` (a verbatim dense one has none)."""
    if end - start >= 5 and not (section[start + 4] == codec._D_RAW and section[start:start + 4] == bytes(4)):
        section[start:start + 4] = checksum(bytes(section[start + 4:end])).to_bytes(4, "little")


def resealed(mutation: Callable[[bytes, np.random.Generator], tuple[str, bytes]], sections: Callable):
    """`mutation`, then the checksums of the `sections(data)` ((start, end) pairs) recomputed."""
    def mutate_and_seal(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
        kind, out = mutation(data, rng)
        b = bytearray(out)
        for start, end in sections(b):
            _seal(b, start, end)
        return kind + " (resealed)", bytes(b)
    return mutate_and_seal


def _whole(b: bytearray) -> list[tuple[int, int]]:
    return [(0, len(b))]


def _message_sections(b: bytearray) -> list[tuple[int, int]]:
    """The block and row-map sections of a message, as far as its envelope says."""
    if len(b) < 5:
        return []
    end = min(len(b), 5 + int.from_bytes(b[1:5], "little"))
    return [(5, end), (end, len(b))]


def fuzz_both(originals: list[bytes], decode, error, count: int, seed: int, sections, same, well_formed) -> Counter:
    """Half the mutations as they come (the checksum must catch them, or the result be the
    original), half resealed (the parser must catch them, or the result be well-formed)."""
    plain = fuzz(originals, decode, error, count // 2, seed, check=same)
    sealed = fuzz(originals, decode, error, count - count // 2, seed + 1, check=well_formed,
                  mutation=resealed(mutate, sections))
    return plain + Counter({f"resealed {k}": v for k, v in sealed.items()})


def assert_same_matrix(a: sp.spmatrix | np.ndarray, b: sp.spmatrix | np.ndarray) -> None:
    """Same kind, shape and float32 bit patterns (a block decodes to the canonical CSR form)."""
    assert sp.issparse(a) == sp.issparse(b) and a.shape == b.shape
    if sp.issparse(a):
        a, b = sp.csr_matrix(a), sp.csr_matrix(b)
        a.sum_duplicates()
        a.eliminate_zeros()
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        a, b = a.data, b.data
    assert np.array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))


def assert_well_formed_block(block: sp.spmatrix | np.ndarray, rows: int, cols: int) -> None:
    """What a receiver may rely on: the promised shape, float32, a valid canonical CSR matrix."""
    assert block.shape == (rows, cols) and block.dtype == np.float32
    if sp.issparse(block):
        block.check_format(full_check=True)
        assert block.has_canonical_format


def assert_well_formed_row_map(rm, rows: int) -> None:
    """Every map entry and label names one of the sender's `rows` rows; present rows ascend."""
    for a in (rm.row_map, rm.labels):
        assert a is None or (a.dtype == np.int64 and (a.size == 0 or 0 <= a.min() and a.max() < rows))
    if rm.present is not None:
        assert rm.present.size == 0 or (rm.present[-1] < rows and (np.diff(rm.present) > 0).all())


def assert_same_message(a: Message, b: Message) -> None:
    assert_same_matrix(a.block, b.block)
    for x, y in ((a.row_map, b.row_map), (a.labels, b.labels), (a.present, b.present)):
        assert (x is None) == (y is None) and (x is None or np.array_equal(x, y))
    assert a.count == b.count


def test_block_decoder_refuses_damage():
    payloads = [codec.encode_block(b) for b in BLOCKS]

    def same(i: int, _data: bytes, got: sp.csr_matrix) -> None:
        assert_same_matrix(BLOCKS[i], got)

    def well_formed(_i: int, data: bytes, got: sp.csr_matrix) -> None:
        assert_well_formed_block(got, *struct.unpack_from("<II", data, 5))

    tally = fuzz_both(payloads, codec.decode_block, FrameError, 12_000, 11, _whole, same, well_formed)
    assert tally["refused"] > 5_500 and tally["resealed refused"] > 3_000, tally


def test_dense_decoder_refuses_damage():
    sections = [b"".join(bytes(p) for p in codec.encode_dense(t, compress)) for t in DENSE for compress in (True, False)]
    arrays = [t for t in DENSE for _ in (True, False)]

    def same(i: int, data: bytes, got: np.ndarray) -> None:
        if data[4] != codec._D_RAW:  # a verbatim section has no checksum of its own (its frame has)
            assert_same_matrix(arrays[i], got)

    def well_formed(_i: int, data: bytes, got: np.ndarray) -> None:
        assert_well_formed_block(got, *struct.unpack_from("<II", data, 5))

    tally = fuzz_both(sections, lambda d: codec.decode_dense(memoryview(d)), FrameError, 12_000, 21, _whole,
                      same, well_formed)
    assert tally["refused"] > 3_000 and tally["resealed refused"] > 3_000, tally


def test_row_map_decoder_refuses_damage():
    cases = [m for m in MESSAGES if m.row_map is not None]
    tally: Counter = Counter()
    for i, m in enumerate(cases):  # each section decodes against its own block's row count
        section = codec.encode_row_map(m.row_map, m.labels, m.rows, m.repeat_map, m.present)
        stored = m.block.shape[0] if sp.issparse(m.block) else m.block.shape[1]

        def same(_i: int, _data: bytes, rm: codec.RowMap, m: Message = m) -> None:
            assert rm.repeat == m.repeat_map and rm.count == m.count
            assert rm.row_map is None if m.repeat_map else np.array_equal(rm.row_map, m.row_map)
            assert (rm.labels is None) == (m.labels is None)
            assert m.labels is None or np.array_equal(rm.labels, m.labels)

        def well_formed(_i: int, data: bytes, rm: codec.RowMap) -> None:
            assert_well_formed_row_map(rm, int.from_bytes(data[8:12], "little"))

        tally += fuzz_both([section], lambda d, n=stored: codec.decode_row_map(memoryview(d), n), FrameError,
                           12_000 // len(cases) + 1, 31 + 2 * i, _whole, same, well_formed)
    assert sum(tally.values()) >= 12_000 and tally["resealed refused"] > 3_000, tally


def test_message_decoder_refuses_damage():
    payloads = [encode_message(m, compress) for m in MESSAGES for compress in (True, False)]
    messages = [m for m in MESSAGES for _ in (True, False)]

    def same(i: int, data: bytes, got: Message) -> None:
        if not (data[0] & 1 and data[9] == codec._D_RAW):  # a verbatim dense block: its frame has the checksum
            assert_same_message(_expected(messages[i]), got)

    def well_formed(_i: int, _data: bytes, got: Message) -> None:
        block = got.block
        rows = block.shape[0] if sp.issparse(block) else block.shape[1]
        assert_well_formed_block(block, *block.shape)
        if got.row_map is not None or got.repeat_map:
            assert_well_formed_row_map(got, got.rows)
            assert got.present is not None or got.rows == rows

    tally = fuzz_both(payloads, decode_message, FrameError, 12_000, 41, _message_sections, same, well_formed)
    assert tally["refused"] > 3_000 and tally["resealed refused"] > 3_000, tally


def _expected(m: Message) -> Message:
    """What decoding `m` gives: a repeated row map does not travel."""
    return Message(m.block, None if m.repeat_map else m.row_map, m.labels, m.repeat_map, m.present, m.count)


def test_frame_decoder_refuses_damage():
    """A whole frame as a transport delivers it: header, then the message; its checksum covers both."""
    headers = [Header("0123456789ab", 3 + i, i, 7 - i) for i in range(len(MESSAGES))]
    frames = [frames_for(h, encode_message(m, compress=i % 2 == 0), None)[0]
              for i, (h, m) in enumerate(zip(headers, MESSAGES))]

    def decode(frame: bytes) -> tuple[Header, Message]:
        header, chunk = unpack_header(frame)
        return header, decode_message(chunk)

    def same(i: int, _data: bytes, got: tuple[Header, Message]) -> None:
        assert got[0] == headers[i]
        assert_same_message(_expected(MESSAGES[i]), got[1])

    tally = fuzz(frames, decode, FrameError, 12_000, 51, check=same)
    assert tally["refused"] > 10_000, tally


def _sealed(body: bytes) -> bytes:
    return checksum(body[4:]).to_bytes(4, "little") + body[4:]


@pytest.mark.parametrize("payload", [
    # CSR, every row full of one value: 2^16 x 2^15 = 2^31 entries from 29 bytes
    _sealed(codec._PREFIX.pack(0, codec._ALL_ROWS, 1 << 16, 1 << 15) + codec._BODY.pack(1 << 31, 1 << 16, 0x42000000, 0)),
    # CSR with an index bitmap of 2^24 rows x 2^16 columns for 2^24 entries
    _sealed(codec._PREFIX.pack(0, codec._IDX_BITMAP << codec._IDX_SHIFT, 1 << 24, 1 << 16)
            + codec._BODY.pack(1 << 24, 1 << 24, 0x42000000, 9) + bytes(9)),
], ids=["csr-full", "csr-bitmap"])
def test_block_promising_gigabytes_is_refused_without_allocating(payload):
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(FrameError, match="bad counts|index bitmap"):
        codec.decode_block(payload)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 0.1 and peak < 1 << 20


def test_dense_block_promising_gigabytes_is_refused_without_allocating():
    empty = _sealed(codec._DENSE_PREFIX.pack(0, codec._EMPTY, 1 << 20, 1 << 20))  # 2^40 cells of zeros
    tracemalloc.start()
    with pytest.raises(FrameError, match="exceeds the limit"):
        codec.decode_dense(memoryview(empty))
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    tracemalloc.stop()
    with pytest.raises(ValueError, match="too large"):  # and the encoder never sends one
        codec.encode_dense(np.broadcast_to(np.float32(1), (1 << 16, 1 << 15)), compress=True)


# ---------------------------------------------------------------------------- files on disk
# Model directories and TSV files are decoded from disk: each mutation costs a file write (in
# place: a truncating open costs ~2 ms on ext4) and a load that opens files and builds scipy
# matrices (~0.15 ms for model.json, ~0.6 ms for a layer or TSV file, ~0.1 ms for a wire
# decode). Small files keep 10,000 mutations per reader within ~6 s.
def fuzz_file(target: Path, load: Callable[[], object], count: int, seed: int,
              check: Callable[[object], None] | None = None) -> Counter:
    """Mutate the file `target` `count` times; `load()` must succeed or raise InputError."""
    original = target.read_bytes()
    fd = os.open(target, os.O_RDWR)  # rewritten in place: a truncating open costs ~2 ms on ext4

    def decode(data: bytes):
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        return load()

    try:
        return fuzz([original], decode, InputError, count, seed,
                    check=None if check is None else lambda _i, _d, got: check(got))
    finally:
        os.close(fd)
        target.write_bytes(original)


@pytest.fixture
def model_dir(tmp_path) -> tuple[Path, SparseDNN]:
    model = random_model(16, 1, 0.3, seed=5)
    model.save(tmp_path / "m")
    return tmp_path / "m", model


def test_model_json_refuses_damage(model_dir):
    path, model = model_dir

    def plausible(got: SparseDNN) -> None:  # no checksum: a mutation may change ymax or the name
        assert got.neurons == 16 and got.layers == 1 and got.nnz == model.nnz

    tally = fuzz_file(path / "model.json", lambda: SparseDNN.load(path), 10_000, 61, plausible)
    assert tally["refused"] > 5_000, tally


def test_model_layer_npz_refuses_damage(model_dir):
    path, model = model_dir

    def same(got: SparseDNN) -> None:  # zip members carry a CRC-32: what loads is the original
        for a, b in zip(got.weights + got.biases, model.weights + model.biases):
            assert_same_matrix(a, b)

    tally = fuzz_file(path / "layer-00001.npz", lambda: SparseDNN.load(path), 10_000, 71, same)
    assert tally["refused"] > 7_000, tally


def _sane_matrix(m: sp.csr_matrix) -> None:
    """No checksum in a TSV file: a mutation may change an entry, but never make nonsense."""
    assert m.shape[1] == 16 and 1 <= m.shape[0] <= MAX_INPUT_ROWS and m.nnz >= 1
    assert np.isfinite(m.data).all()


def test_tsv_layer_reader_refuses_damage(tmp_path):
    layer = tmp_path / "neuron16-l1.tsv"
    write_triples(layer, random_model(16, 1, 0.3, seed=6).weights[0])
    tally = fuzz_file(layer, lambda: read_triples(layer, 16, 16), 10_000, 81, _sane_matrix)
    assert tally["refused"] > 5_000, tally


def test_tsv_inputs_reader_refuses_damage(tmp_path):
    inputs = tmp_path / "inputs.tsv"
    write_triples(inputs, sp.random(12, 16, density=0.3, random_state=1, format="csr", dtype=np.float32),
                  value_fmt="%d")
    tally = fuzz_file(inputs, lambda: read_inputs(inputs, 16), 10_000, 82, _sane_matrix)
    assert tally["refused"] > 5_000, tally


def test_tsv_categories_reader_refuses_damage(tmp_path):
    categories = tmp_path / "categories.tsv"
    categories.write_text("".join(f"{i}\n" for i in (1, 3, 4, 9, 12)))

    def ids(c: np.ndarray) -> None:
        assert c.dtype == np.int64 and (c.size == 0 or (0 <= c.min() and c.max() < MAX_INPUT_ROWS))

    tally = fuzz_file(categories, lambda: read_categories(categories), 10_000, 83, ids)
    assert tally["refused"] > 3_000, tally
