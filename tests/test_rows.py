"""Distinct rows (fsd_core/rows.py) and the messages that carry them: properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsd_core.channels.frames import FrameError, Message, decode_message, encode_message
from fsd_core.kernel.rows import (
    LayerProducts,
    RowMap,
    Rows,
    add_product,
    assemble,
    combine,
    combine_in_step,
    finish,
    full_csr,
    product,
    reindex,
    sources,
    union_of,
)
from fsd_core.kernel.blocks import CHUNK

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


def row_count(dense: bool, t: np.ndarray) -> Rows:
    return Rows(t.shape[0], blocks=[np.ascontiguousarray(t[:, lo:lo + CHUNK]) for lo in range(0, t.shape[1], CHUNK)]) \
        if dense else Rows.of_csr(sp.csr_matrix(t.T))


@SETTINGS
@given(st.integers(1, 12), st.integers(0, 600), st.floats(0, 1), st.booleans(), st.integers(0, 10**6))
def test_rows_select_take_and_layouts_agree(k, u, density, dense, seed):
    rng = np.random.default_rng(seed)
    t = rng.random((k, u), dtype=np.float32)
    t[t >= density] = 0
    r = row_count(dense, t)
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
    x = assemble([(row_count(dense, t[split]), split), (row_count(not dense, t[rest]), rest)], k, u)
    assert np.array_equal(x.dense_t(), t)
    w = sp.random(k, 5, density=0.5, random_state=np.random.default_rng(seed), format="csr", dtype=np.float32)
    z = product(x, w)
    ref = (sp.csr_matrix(t.T) @ w).toarray()  # scipy's sparse product: the canonical order
    assert z.dense_t().T.view(np.uint32).tolist() == ref.astype(np.float32).view(np.uint32).tolist()
    bias = rng.normal(size=5).astype(np.float32)
    keep = np.sort(rng.choice(u, rng.integers(0, u + 1), replace=False))
    out, present, labels = finish([(z, np.arange(5))], 5, None, u, bias, 3.0, keep)
    expected = np.where(ref != 0, ref + bias, 0).clip(0, 3).astype(np.float32)[keep]
    _check_finished(out, present, labels, expected)


@SETTINGS
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 3 * CHUNK + 10), st.integers(0, 10**6))
def test_layer_products_add_interior_and_boundary_into_one_block_exactly(k_own, k_x, u, seed):
    """Both products of a layer add into one block of all its columns (W^T rows at their
    positions), block by block, with any number of interior blocks made ahead: bit for bit
    the separate products; then `finish` takes the blocks one by one."""
    rng = np.random.default_rng(seed)
    width = int(rng.integers(1, 12))
    inner = rng.random(width) < 0.5
    own = rng.random((k_own, u), dtype=np.float32) * 4
    own[own < 2] = 0
    xt = rng.random((k_x, u), dtype=np.float32) * 4
    xt[xt < 2] = 0
    src = np.sort(rng.choice(k_own, int(rng.integers(1, k_own + 1)), replace=False))
    w_int = sp.random(src.size, width, density=0.6, random_state=rng, format="csr", dtype=np.float32)
    w_bnd = sp.random(k_x, width, density=0.6, random_state=rng, format="csr", dtype=np.float32)
    w_int = sp.csr_matrix(w_int.multiply(inner[None, :]), dtype=np.float32)  # interior columns only
    w_bnd = sp.csr_matrix(w_bnd.multiply(~inner[None, :]), dtype=np.float32)
    expected = np.zeros((width, u), dtype=np.float32)
    expected[inner] = (w_int.T @ own[src])[inner]  # scipy's own products, the canonical order
    expected[~inner] = (w_bnd.T @ xt)[~inner]
    cuts = np.unique(np.concatenate([np.arange(0, max(u, 1), CHUNK),  # irregular blocks, at most CHUNK wide
                                     rng.integers(0, u + 1, int(rng.integers(0, 5)))]))
    own_rows = Rows(k_own, blocks=[np.ascontiguousarray(own[:, a:b]) for a, b in zip(cuts, list(cuts[1:]) + [u])])
    x = assemble([(row_count(True, xt), np.arange(k_x))], k_x, u, starts=cuts)
    ahead = int(rng.integers(0, len(own_rows.blocks) + 1))
    done = [LayerProducts.interior(own_rows, i, w_int.T, src) for i in range(ahead)]
    if rng.random() < 0.3 and done:  # made on other bounds: cut again
        done = [np.ascontiguousarray(np.concatenate(done, axis=1))]
    made = LayerProducts(width, x, w_bnd.T, done, own_rows, w_int.T, src)
    got = np.concatenate([made.block(i) for i in range(len(made.inputs))], axis=1) if u else expected
    assert got.view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    made = LayerProducts(width, x, w_bnd.T, [], own_rows, w_int.T, src)
    bias = rng.normal(size=width).astype(np.float32)
    out, present, labels = finish([(made, np.arange(width))], width, None, u, bias, 3.0)
    _check_finished(out, present, labels, np.where(expected != 0, expected + bias[:, None], 0).clip(0, 3).T)


@SETTINGS
@given(st.integers(0, 8), st.integers(0, 9), st.integers(0, 40), st.integers(0, 10**6))
def test_add_product_adds_into_zeros_as_the_product_sums(n_in, n_out, c, seed):
    """scipy's kernel into a given block, and the public fallback (a block it does not take
    as it is), both equal `wt @ x` bit for bit on the rows they write."""
    rng = np.random.default_rng(seed)
    w = sp.random(n_in, n_out, density=0.5, random_state=rng, format="csr", dtype=np.float32)
    x = rng.random((n_in, c), dtype=np.float32)
    ref = (w.T @ x).astype(np.float32)
    out = np.zeros((n_out, c), dtype=np.float32)
    add_product(w.T, x, out)
    assert out.view(np.uint32).tolist() == ref.view(np.uint32).tolist()
    wide = np.zeros((n_out, 2 * c), dtype=np.float32)
    add_product(w.T, x, wide[:, ::2])  # not contiguous: the fallback
    assert wide[:, ::2].view(np.uint32).tolist() == ref.view(np.uint32).tolist()


def _check_finished(out: Rows, present: np.ndarray | None, labels: np.ndarray | None, expected: np.ndarray) -> None:
    """`finish`'s output holds exactly `expected` (all rows x neurons): the present rows are
    the non-zero ones, in aligned blocks, and the labels say exactly which rows are equal."""
    got = full_csr(out, present, expected.shape[0]).toarray()
    assert got.view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    if present is not None:  # a dense output holds the rows with a non-zero, ascending
        assert present.tolist() == np.flatnonzero(expected.any(axis=1)).tolist()
        assert out.count == present.size
    if out.dense and out.blocks:  # cut rows leave the blocks aligned at multiples of CHUNK (see rows.py)
        assert all(b.shape[1] == CHUNK and b.flags.c_contiguous for b in out.blocks[:-1])
        assert 0 < out.blocks[-1].shape[1] <= CHUNK and out.blocks[-1].flags.c_contiguous
    if labels is not None:  # labels merge only equal rows; all of them, but for a few present rows
        exact = present is None  # (their labels are left out when few are equal: see `_with_absent`)
        for i, rep in enumerate(labels):
            assert rep <= i and labels[rep] == rep and np.array_equal(got[i], got[rep])
            first = min(j for j in range(len(got)) if np.array_equal(got[j], got[i]))
            assert rep == first or (not exact and got[i].any())


@st.composite
def present_pieces(draw):
    """A k x u activation block split by neurons into 1-3 pieces, each holding (present) only
    some of the rows: the rows it lacks are zero on its neurons, as after `finish`."""
    k, u = draw(st.integers(1, 10)), draw(st.integers(1, 3 * CHUNK + 10))
    rng = np.random.default_rng(draw(st.integers(0, 10**6)))
    t = rng.random((k, u), dtype=np.float32) * 4
    t[t < 2] = 0
    owner = rng.integers(0, draw(st.integers(1, 3)), k)
    pieces = []
    for p in range(int(owner.max()) + 1):
        pos = np.flatnonzero(owner == p)
        held = np.flatnonzero(rng.random(u) < draw(st.sampled_from([0.0, 0.5, 0.97, 1.0])))
        t[np.ix_(pos, np.setdiff1d(np.arange(u), held))] = 0
        dense = draw(st.booleans()) or p == 0
        pieces.append((pos, None if not dense else held))
    return t, [(pos, row_count(present is not None, t[pos][:, present] if present is not None else t[pos]), present)
               for pos, present in pieces]


@SETTINGS
@given(present_pieces(), st.integers(0, 10**6))
def test_pieces_with_present_rows_assemble_and_finish_exactly(case, seed):
    """Pieces holding different rows are placed on the union of their rows (the first piece's
    rows first, `union_of`), and `finish` turns that back into every row, in order."""
    t, pieces = case
    k, u = t.shape
    rng = np.random.default_rng(seed)
    union = union_of([present for _, _, present in pieces], u)
    target = np.arange(u) if union is None else union
    assert np.unique(target).size == target.size
    assert set(target.tolist()) >= set(np.flatnonzero(t.any(axis=0)).tolist())
    parts = [(r, pos, None, sources(present, union, u)) for pos, r, present in pieces]
    x = assemble(parts, k, target.size)
    assert np.array_equal(x.dense_t(), t[:, target])
    bias = rng.normal(size=k).astype(np.float32)
    keep = np.sort(rng.choice(u, rng.integers(0, u + 1), replace=False)) if rng.random() < 0.5 else None
    out, present, labels = finish([(r, pos, sources(p, union, u)) for pos, r, p in pieces], k, union, u, bias, 3.0,
                                  keep)
    expected = np.where(t != 0, t + bias[:, None], 0).clip(0, 3).astype(np.float32).T
    _check_finished(out, present, labels, expected if keep is None else expected[keep])


@SETTINGS
@given(present_pieces(), st.integers(0, 10**6))
def test_reindex_takes_the_rows_a_piece_holds(case, seed):
    t, pieces = case
    u = t.shape[1]
    ids = np.random.default_rng(seed).integers(0, u, np.random.default_rng(seed).integers(0, 2 * u))
    rng = np.random.default_rng(seed + 1)
    for pos, r, present in pieces:
        for src in (None, np.sort(rng.choice(len(pos), rng.integers(1, len(pos) + 1), replace=False)) if len(pos) else None):
            got, held = reindex(r, present, ids, src)  # with src: only those neurons, in one gather
            want = t[pos] if src is None else t[pos][src]
            full = np.zeros((want.shape[0], ids.size), dtype=np.float32)
            full[:, np.arange(ids.size) if held is None else held] = got.dense_t()
            assert np.array_equal(full, want[:, ids])
            if present is not None and held is not None:
                assert set(ids[held].tolist()) <= set(present.tolist())


@SETTINGS
@given(st.integers(0, 9), st.integers(0, 300), st.floats(0, 1), st.sampled_from(["csr", "dense"]),
       st.booleans(), st.sampled_from(["none", "map", "repeat"]), st.integers(0, 10**6))
def test_messages_round_trip_bit_for_bit(k, u, density, layout, compress, with_map, seed):
    rng = np.random.default_rng(seed)
    t = rng.random((k, u), dtype=np.float32)
    t[t >= density] = 0
    t[rng.random((k, u)) < 0.1] = np.float32(32.0)
    block = sp.csr_matrix(t.T) if layout == "csr" else t
    row_map = labels = present = count = None
    repeat = with_map == "repeat"
    if with_map != "none" and u:
        count = u
        if layout == "dense" and rng.random() < 0.5:  # the block holds some of `count` rows
            count = u + int(rng.integers(0, 50))
            present = np.sort(rng.choice(count, u, replace=False))
        row_map = rng.integers(0, count, rng.integers(0, 100))
        labels = np.minimum(np.arange(count), rng.integers(0, count, count))
    encoded = encode_message(Message(block, row_map, labels, repeat and row_map is not None, present, count), compress)
    msg = decode_message(encoded)
    got = msg.block.toarray().T if sp.issparse(msg.block) else msg.block
    assert got.shape == t.shape and got.view(np.uint32).tolist() == t.view(np.uint32).tolist()
    if row_map is not None and repeat:  # the receiver puts the previous map back: only labels travel
        assert msg.row_map is None and msg.repeat_map and msg.labels.tolist() == labels.tolist()
        full = encode_message(Message(block, row_map, labels, present=present, count=count), compress)
        assert len(encoded) <= len(full) and (len(encoded) < len(full) or row_map.size == 0)
        return
    assert (msg.row_map is None) == (row_map is None) and not msg.repeat_map
    if row_map is not None:
        assert msg.row_map.tolist() == row_map.tolist() and msg.labels.tolist() == labels.tolist()
    assert (msg.present is None) == (present is None) and msg.rows == (count if row_map is not None else u)
    if present is not None:
        assert msg.present.tolist() == present.tolist()


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
    for present in (np.arange(29), np.arange(30)[::-1], np.arange(30) + 5):  # too few, out of order, past the count
        with pytest.raises(ValueError):
            encode_message(Message(t, np.array([0]), None, present=present, count=34))


def test_identity_row_map_is_in_step():
    m = RowMap.identity(5)
    assert m.map.tolist() == m.first.tolist() == [0, 1, 2, 3, 4]
