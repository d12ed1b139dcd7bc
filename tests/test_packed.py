"""packed.py: named arrays in one zstandard frame (how shards and inputs are staged)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fsd_core import packed

DTYPES = [np.bool_, np.int8, np.int32, np.int64, np.uint16, np.uint64, np.float32, np.float64]

arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7)))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), arrays, max_size=6))
def test_round_trip_is_bit_exact(named):
    back = packed.unpack(packed.pack(named))
    assert list(back) == list(named)
    for name, a in named.items():
        b = back[name]
        assert b.dtype == a.dtype and b.shape == a.shape
        assert a.tobytes() == b.tobytes()  # bit patterns, NaN payloads and -0.0 included


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=5), arrays, min_size=1, max_size=3), st.data())
def test_damage_is_refused(named, data):
    blob = bytearray(packed.pack(named))
    at = data.draw(st.integers(0, len(blob) - 1))
    blob[at] ^= data.draw(st.integers(1, 255))
    try:
        back = packed.unpack(bytes(blob))
    except packed.PackError:
        return
    # zstd's checksum caught nothing only if the flip left the content intact (frame padding)
    assert list(back) == list(named) and all(back[k].tobytes() == v.tobytes() for k, v in named.items())


def test_truncated_and_foreign_blobs_raise_packerror():
    blob = packed.pack({"a": np.arange(1000, dtype=np.int64)})
    for bad in (b"", b"not packed", blob[: len(blob) // 2], blob[:-1]):
        with pytest.raises(packed.PackError):
            packed.unpack(bad)


def test_objects_are_not_packed():
    with pytest.raises(TypeError, match="only numeric"):
        packed.pack({"o": np.array([object()], dtype=object)})


def test_arrays_are_aligned_views():
    back = packed.unpack(packed.pack({"a": np.arange(3, dtype=np.int8), "b": np.arange(5, dtype=np.float64)}))
    assert back["b"].ctypes.data % 8 == 0 and not back["b"].flags.writeable
