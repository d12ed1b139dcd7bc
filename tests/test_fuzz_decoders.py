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

import time
import tracemalloc
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from fsd_core import packed

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
        b[start:start + rng.integers(1, 33)] = bytes(min(n - start, 32))[:len(b[start:start + 32])]
    elif kind == "append":
        b += rng.bytes(rng.integers(1, 65))
    else:
        start = rng.integers(n)
        span = b[start:start + rng.integers(1, 33)]
        at = rng.integers(n + 1)
        b[at:at] = span
    return kind, bytes(b)


def fuzz(originals: list[bytes], decode: Callable[[bytes], object], error: type[Exception], count: int,
         seed: int, check: Callable[[int, bytes, object], None] | None = None) -> Counter:
    """Decode `count` mutations of the `originals` (round robin); tally decoded and refused.

    `check(i, mutated, result)` judges a mutation that decoded (of `originals[i]`).
    """
    rng = np.random.default_rng(seed)
    tally: Counter = Counter()
    for k in range(count):
        i = k % len(originals)
        kind, data = mutate(originals[i], rng)
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
