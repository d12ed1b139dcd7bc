"""Distinct rows (fsd_core/rows.py) and the messages that carry them: properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings, strategies as st

from fsd_core.channels.encoding import FrameError, Message, decode_message, encode_message
from fsd_core.rows import RowMap, Rows, assemble, combine, combine_in_step, finish, product
from fsd_core.serial import CHUNK

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def row_maps(draw, batch=None):
    batch = draw(st.integers(1, 60)) if batch is None else batch
    rows = draw(st.integers(1, batch))
    return np.array(draw(st.lists(st.integers(0, rows - 1), min_size=batch, max_size=batch)), dtype=np.int64)


def _canonical(m: np.ndarray) -> np.ndarray:
    """Renumber by first occurrence (the numbering `combine` promises)."""
    _, first, inv = np.unique(m, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inv]


@SETTINGS
@given(st.data())
def test_combine_joins_row_maps_by_first_occurrence(data):
    batch = data.draw(st.integers(1, 60))
    maps = [data.draw(row_maps(batch)) for _ in range(data.draw(st.integers(1, 4)))]
    joint = combine(maps, [None] * len(maps))
    pairs = list(zip(*[m.tolist() for m in maps]))
    # Same joint row exactly when every piece maps the two batch rows to the same row.
    for a in range(batch):
        for b in range(batch):
            assert (joint.map[a] == joint.map[b]) == (pairs[a] == pairs[b])
    assert joint.map.tolist() == _canonical(joint.map).tolist()
    assert joint.first.tolist() == [int(np.flatnonzero(joint.map == r)[0]) for r in range(joint.first.size)]
    # The order of the pieces does not matter (workers in step derive the same map).
    again = combine(maps[::-1], [None] * len(maps))
    assert again.map.tolist() == joint.map.tolist()


@SETTINGS
@given(st.data())
def test_pieces_in_step_combine_on_their_distinct_rows_alike(data):
    m = _canonical(data.draw(row_maps()))
    u = int(m.max()) + 1
    rmap = RowMap(m, np.array([int(np.flatnonzero(m == r)[0]) for r in range(u)]))
    labels = [data.draw(st.one_of(st.none(), st.lists(st.integers(0, 3), min_size=u, max_size=u).map(np.array)))
              for _ in range(data.draw(st.integers(1, 4)))]
    fast, ref = combine_in_step(rmap, labels), combine([m] * len(labels), labels)
    assert np.array_equal(fast.map, ref.map) and np.array_equal(fast.first, ref.first)


@SETTINGS
@given(st.data())
def test_labels_merge_rows_only_when_it_pays(data):
    batch = data.draw(st.integers(2, 60))
    m = data.draw(row_maps(batch))
    rows = int(m.max()) + 1
    labels = np.array([data.draw(st.integers(0, r)) for r in range(rows)], dtype=np.int64)
    joint = combine([m], [labels])
    plain = combine([m], [None])
    merged = _canonical(labels[m])
    assert joint.map.tolist() in (plain.map.tolist(), merged.tolist())
    saved = plain.first.size - np.unique(merged).size
    assert (joint.map.tolist() == merged.tolist()) == (saved >= 0.1 * plain.first.size) or saved == 0


def _rows(dense: bool, t: np.ndarray) -> Rows:
    return Rows(t.shape[0], blocks=[np.ascontiguousarray(t[:, lo:lo + CHUNK]) for lo in range(0, t.shape[1], CHUNK)]) \
        if dense else Rows.of_csr(sp.csr_matrix(t.T))


@SETTINGS
@given(st.integers(1, 12), st.integers(0, 600), st.floats(0, 1), st.booleans(), st.integers(0, 10**6))
def test_rows_select_take_and_layouts_agree(k, u, density, dense, seed):
    rng = np.random.default_rng(seed)
    t = rng.random((k, u), dtype=np.float32)
    t[t >= density] = 0
    r = _rows(dense, t)
    assert r.count == u and r.width == k and r.nnz == np.count_nonzero(t)
    assert np.array_equal(r.dense_t(), t)
    assert np.array_equal(r.to_csr().toarray(), t.T)
    pos = np.flatnonzero(rng.random(k) < 0.5)
    assert np.array_equal(r.select(pos).dense_t(), t[pos])
    if dense:
        assert np.array_equal(r.select_t(pos), t[pos])
    idx = rng.integers(0, max(u, 1), rng.integers(0, 50)) if u else np.zeros(0, np.int64)
    assert np.array_equal(r.take(idx).dense_t(), t[:, idx])
    assert r.take(np.arange(u)) is r
    lo, hi = sorted(rng.integers(0, u + 1, 2))
    assert np.array_equal(r.columns(lo, hi), t[:, lo:hi])


@SETTINGS
@given(st.integers(1, 10), st.integers(1, 3 * CHUNK + 10), st.booleans(), st.integers(0, 10**6))
def test_assemble_product_and_finish_match_dense_arithmetic(k, u, dense, seed):
    rng = np.random.default_rng(seed)
    t = rng.random((k, u), dtype=np.float32) * 4
    t[t < 2] = 0
    split = np.sort(rng.permutation(k)[:rng.integers(0, k + 1)])
    rest = np.setdiff1d(np.arange(k), split)
    x = assemble([(_rows(dense, t[split]), split), (_rows(not dense, t[rest]), rest)], k, u)
    assert np.array_equal(x.dense_t(), t)
    w = sp.random(k, 5, density=0.5, random_state=np.random.default_rng(seed), format="csr", dtype=np.float32)
    z = product(x, w)
    ref = (sp.csr_matrix(t.T) @ w).toarray()  # scipy's sparse product: the canonical order
    assert z.dense_t().T.view(np.uint32).tolist() == ref.astype(np.float32).view(np.uint32).tolist()
    bias = rng.normal(size=5).astype(np.float32)
    keep = np.sort(rng.choice(u, rng.integers(0, u + 1), replace=False))
    out, labels = finish([(z, np.arange(5))], 5, u, bias, 3.0, keep)
    expected = np.where(ref != 0, ref + bias, 0).clip(0, 3).astype(np.float32)[keep]
    assert np.array_equal(out.to_csr().toarray(), expected)
    if out.dense and out.blocks:  # cut rows leave the blocks aligned at multiples of CHUNK (see rows.py)
        assert all(b.shape[1] == CHUNK and b.flags.c_contiguous for b in out.blocks[:-1])
        assert 0 < out.blocks[-1].shape[1] <= CHUNK and out.blocks[-1].flags.c_contiguous
    if labels is not None:  # labels say exactly which rows are equal
        got = out.to_csr().toarray()
        for i, rep in enumerate(labels):
            assert rep <= i and np.array_equal(got[i], got[rep])
            assert rep == min(j for j in range(len(got)) if np.array_equal(got[j], got[i]))


@SETTINGS
@given(st.integers(1, 10), st.integers(1, 3 * CHUNK + 10), st.sampled_from(["dense", "csr", "message"]),
       st.booleans(), st.integers(0, 10**6))
def test_assembling_a_subset_of_rows_gathers_exactly_those(k, u, other, dense, seed):
    """`assemble(..., rows=...)` (rows merged before a product) equals assembling every row
    and then taking those, for each layout of the pieces and neurons taken from a wider piece."""
    rng = np.random.default_rng(seed)
    t = rng.random((k, u), dtype=np.float32) * 4
    t[t < 2] = 0
    split = np.sort(rng.permutation(k)[:rng.integers(0, k + 1)])
    rest = np.setdiff1d(np.arange(k), split)
    junk = rng.random((3, u), dtype=np.float32)  # neurons of the own piece that are not inputs
    mixed = np.empty((len(split) + 3, u), dtype=np.float32)
    where = np.sort(rng.permutation(len(split) + 3)[:len(split)])
    mixed[where], mixed[np.setdiff1d(np.arange(len(split) + 3), where)] = t[split], junk
    pieces = {"dense": _rows(True, t[rest]), "csr": _rows(False, t[rest]),
              "message": Rows.of_dense_t(np.ascontiguousarray(t[rest]))}
    parts = [(_rows(dense, mixed), split, where), (pieces[other], rest)]
    rows = np.sort(rng.choice(u, rng.integers(1, u + 1), replace=False))
    got = assemble(parts, k, rows.size, rows=rows)
    assert got.count == rows.size
    assert np.array_equal(got.dense_t(), t[:, rows])
    assert np.array_equal(got.dense_t(), assemble(parts, k, u).take(rows).dense_t())


@SETTINGS
@given(st.integers(0, 9), st.integers(0, 300), st.floats(0, 1), st.sampled_from(["csr", "dense"]),
       st.booleans(), st.sampled_from(["none", "map", "repeat"]), st.integers(0, 10**6))
def test_messages_round_trip_bit_for_bit(k, u, density, layout, compress, with_map, seed):
    rng = np.random.default_rng(seed)
    t = rng.random((k, u), dtype=np.float32)
    t[t >= density] = 0
    t[rng.random((k, u)) < 0.1] = np.float32(32.0)
    block = sp.csr_matrix(t.T) if layout == "csr" else t
    row_map = labels = None
    repeat = with_map == "repeat"
    if with_map != "none" and u:
        row_map = rng.integers(0, u, rng.integers(0, 100))
        labels = np.minimum(np.arange(u), rng.integers(0, u, u))
    encoded = encode_message(Message(block, row_map, labels, repeat and row_map is not None), compress)
    msg = decode_message(encoded)
    got = msg.block.toarray().T if sp.issparse(msg.block) else msg.block
    assert got.shape == t.shape and got.view(np.uint32).tolist() == t.view(np.uint32).tolist()
    if row_map is not None and repeat:  # the receiver puts the previous map back: only labels travel
        assert msg.row_map is None and msg.repeat_map and msg.labels.tolist() == labels.tolist()
        full = encode_message(Message(block, row_map, labels), compress)
        assert len(encoded) <= len(full) and (len(encoded) < len(full) or row_map.size == 0)
        return
    assert (msg.row_map is None) == (row_map is None) and not msg.repeat_map
    if row_map is not None:
        assert msg.row_map.tolist() == row_map.tolist() and msg.labels.tolist() == labels.tolist()


@pytest.mark.parametrize("compress", [True, False])
def test_damaged_messages_are_refused(compress):
    rng = np.random.default_rng(1)
    t = rng.random((20, 30), dtype=np.float32)
    payload = encode_message(Message(t, rng.integers(0, 30, 50), None), compress)
    for cut in (0, 3, 10, len(payload) // 2, len(payload) - 1):
        with pytest.raises(FrameError):
            decode_message(payload[:cut])
    with pytest.raises(ValueError):
        encode_message(Message(t, np.array([30]), None))  # row map past the block's rows


def test_identity_row_map_is_in_step():
    m = RowMap.identity(5)
    assert m.map.tolist() == m.first.tolist() == [0, 1, 2, 3, 4]
