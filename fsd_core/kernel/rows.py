"""Distinct activation rows: what a worker holds, sends and computes on.

A batch of B inputs has far fewer distinct activation rows than B once rows die (all zero)
or saturate (all ymax), and the serial kernel computes each distinct row once. A worker does
the same with its slice of the neurons: it holds `Rows` (the distinct rows, restricted to its
neurons) and a *row map* (batch row -> distinct row). Messages carry a block of distinct rows,
the sender's row map and its *labels* (which of its distinct rows are equal on all of its
neurons), and `combine` joins the row maps of a layer's pieces into one.

Keeping workers in step: rows are numbered by first occurrence in the batch, and rows are
merged only on labels every participant sees, so two workers that exchange everything (P=2)
derive the same row map and the gathers below are skipped (`take` on the identity is free).
Merging only pays when it removes at least `MERGE_FRACTION` of the rows, as in the serial
kernel.

Present rows: the serial kernel drops a row the moment it dies (all zero); a worker cannot
know that in time (the other workers' neurons of the row arrive with the next layer's
messages), but a row that is all zero on the worker's own neurons adds nothing to any product
(a zero input adds an exact zero to every float32 sum), and a dead row is zero on every
worker. So `finish` keeps only the rows non-zero on the worker's neurons and a *present* list
(ascending ids among the distinct rows; None: all of them); products run on those alone, and
messages carry the list. A layer's pieces are placed on the union of their present rows
(`union_of`: the worker's own rows first, in their order, then the few only others hold), so
the worker's own rows and its interior product need no placing, and `finish` merges the others
back into ascending order while it packs the output. On RadiX-Net 4096 at P=2 a locally zero
row is a dead one for all but 0-3% of them, so the products run on the serial kernel's rows,
a layer ahead of the merges.

Layouts (as the serial kernel's, for the same reasons): sparse rows are a u x k CSR matrix
with sorted indices; dense rows are N x c column blocks of at most `CHUNK` rows each, aligned
at multiples of `CHUNK`, so that `W^T @ block` stays in cache. Every product sums each output
in ascending input neuron order (see `serial.py`), whatever the layout.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

try:  # scipy's kernel behind `csc @ dense` (private, hence optional: see `add_product`)
    from scipy.sparse._sparsetools import csc_matvecs as _csc_matvecs
except ImportError:  # pragma: no cover
    _csc_matvecs = None

from .blocks import (
    CHUNK,
    DENSE_THRESHOLD,
    MERGE_FRACTION,
    block_labels,
    block_starts,
    column_keys,
    csr_labels,
    hash_multipliers,
    scatter_rows,
    sparse_to_blocks,
    take,
)
from .serial import activate, apply_bias_relu_clamp_dense


@dataclass
class Rows:
    """u distinct rows of k neurons: `csr` (u x k) or `blocks` (k x c_i, column r = row r)."""

    width: int
    csr: sp.csr_matrix | None = None
    blocks: list[np.ndarray] | None = None
    _starts: list[int] | None = field(default=None, repr=False, compare=False)  # first row of each block

    @classmethod
    def of_csr(cls, m: sp.csr_matrix) -> "Rows":
        m = sp.csr_matrix(m, dtype=np.float32)
        m.sort_indices()
        return cls(m.shape[1], csr=m)

    @classmethod
    def of_dense_t(cls, t: np.ndarray) -> "Rows":
        """k x u array (columns are rows), kept as one block (read through `columns`)."""
        return cls(t.shape[0], blocks=[t])

    @property
    def dense(self) -> bool:
        return self.blocks is not None

    @property
    def count(self) -> int:
        """u, the number of distinct rows."""
        return self.csr.shape[0] if self.csr is not None else sum(b.shape[1] for b in self.blocks)

    @property
    def nnz(self) -> int:
        return self.csr.nnz if self.csr is not None else sum(int(np.count_nonzero(b)) for b in self.blocks)

    def select(self, pos: np.ndarray) -> "Rows":
        """The same rows on a subset of the neurons (`pos`: ascending positions)."""
        if _selector(self, pos) is None:
            return self  # ascending and complete: every neuron
        if self.csr is not None:
            return Rows(len(pos), csr=_sorted(self.csr[:, pos]))
        return Rows(len(pos), blocks=[b[pos] for b in self.blocks])

    def take(self, idx: np.ndarray) -> "Rows":
        """Rows `idx` (any order, repeats allowed); free when `idx` is 0, 1, ..., u-1."""
        if idx.size == self.count and np.array_equal(idx, np.arange(idx.size)):
            return self
        if self.csr is not None:
            return Rows(self.width, csr=self.csr[idx])
        if not self.blocks:
            return Rows(self.width, blocks=[np.zeros((self.width, 0), np.float32)] if idx.size else [])
        return Rows(self.width, blocks=take(self.blocks, idx))

    def select_t(self, pos: np.ndarray) -> np.ndarray:
        """`select(pos).dense_t()` of dense rows in one pass (what a message carries)."""
        out = np.empty((len(pos), self.count), dtype=np.float32)
        start = 0
        for b in self.blocks:
            out[:, start:start + b.shape[1]] = b[pos]  # the small temporary stays in cache
            start += b.shape[1]
        return out

    def dense_t(self) -> np.ndarray:
        """All rows as one k x u array (C order)."""
        if self.csr is not None:
            return np.ascontiguousarray(self.csr.toarray().T)
        if not self.blocks:
            return np.zeros((self.width, 0), np.float32)
        return np.ascontiguousarray(np.concatenate(self.blocks, axis=1))

    def columns(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) as a k x (hi - lo) array (a view when they sit in one block)."""
        if self.csr is not None:
            return self.csr[lo:hi].toarray().T
        if self._starts is None or len(self._starts) != len(self.blocks) + 1:
            self._starts = block_starts(self.blocks).tolist()
        starts = self._starts
        k = bisect.bisect_right(starts, lo) - 1
        pieces = []
        while k < len(self.blocks) and starts[k] < hi:
            b = self.blocks[k]
            pieces.append(b[:, max(lo, starts[k]) - starts[k]:min(hi, starts[k + 1]) - starts[k]])
            k += 1
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate(pieces, axis=1) if pieces else np.zeros((self.width, 0), np.float32)

    def to_csr(self) -> sp.csr_matrix:
        if self.csr is not None:
            return self.csr
        m = sp.csr_matrix(self.dense_t().T)
        m.sort_indices()
        return m

    def labels(self) -> np.ndarray | None:
        """Label per row (the index of the first equal row), or None when few rows are equal.

        Exact (hash, then a bit-for-bit comparison of the candidates), as the serial kernel's
        merging; None when merging would remove fewer than `MERGE_FRACTION` of the rows.
        """
        if self.count <= 1:
            return None
        if self.csr is not None:
            return csr_labels(self.csr)
        return block_labels(self.blocks)


# --------------------------------------------------------------------------- row maps
@dataclass
class RowMap:
    """Batch row -> distinct row (`map`), and each distinct row's first batch row (`first`)."""

    map: np.ndarray
    first: np.ndarray

    @classmethod
    def identity(cls, batch: int) -> "RowMap":
        ids = np.arange(batch, dtype=np.int64)
        return cls(ids, ids)


def combine(maps: list[np.ndarray], labels: list[np.ndarray | None]) -> RowMap:
    """The joint row map of pieces with row maps `maps` and labels `labels`.

    Two batch rows share a joint row when every piece maps them to equal rows; joint rows
    are numbered by first occurrence, so the result depends only on the pieces, not on their
    order. Labels merge rows only when that removes `MERGE_FRACTION` of them (else they are
    ignored and every distinct piece row stays apart).
    """
    plain = _joint(maps)
    if all(lab is None for lab in labels):
        return plain
    merged = _joint([m if lab is None else lab[m] for m, lab in zip(maps, labels)])
    if plain.first.size - merged.first.size >= MERGE_FRACTION * plain.first.size:
        return merged
    return plain


def combine_in_step(rmap: RowMap, labels: list[np.ndarray | None]) -> RowMap:
    """`combine([rmap.map] * k, labels)` for pieces that all have the row map `rmap`, worked
    out on its u distinct rows instead of the B batch rows (the same result: `rmap` numbers
    its rows by first occurrence, so a class's first batch row is its first distinct row's).
    A layer with a handful of distinct rows then costs microseconds here, not a sort of B."""
    if all(lab is None for lab in labels):
        return rmap
    u = rmap.first.size
    ids = np.arange(u, dtype=np.int64)
    sub = _joint([ids if lab is None else lab for lab in labels])
    if u - sub.first.size >= MERGE_FRACTION * u:
        return RowMap(sub.map[rmap.map], rmap.first[sub.first])
    return rmap


def _joint(keys: list[np.ndarray]) -> RowMap:
    if len(keys) == 1 or all(k is keys[0] or np.array_equal(k, keys[0]) for k in keys[1:]):
        return _first_occurrence(keys[0])
    key = np.zeros(keys[0].size, dtype=np.int64)
    for k in keys:
        base = int(k.max(initial=0)) + 1
        if int(key.max(initial=0)) >= (1 << 62) // base:
            key = _first_occurrence(key).map
        key = key * base + k
    return _first_occurrence(key)


def _first_occurrence(key: np.ndarray) -> RowMap:
    """Renumber `key` 0, 1, ... by first occurrence."""
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return RowMap(rank[inverse.ravel()], first[order])


# --------------------------------------------------------------------------- layer arithmetic
def assemble(parts: list[tuple], width: int, count: int, starts: np.ndarray | None = None) -> Rows:
    """Rows of `width` neurons and `count` rows from pieces: (rows, positions), or
    (rows, positions, which of its neurons (None: all), which of its rows each of the `count`
    is, -1 for none (`sources`; None: row i is row i)).

    Dense if any piece is, else CSR with sorted indices. Positions or rows not covered are zero.
    Dense blocks start at `starts` (first rows, ascending from 0; None: multiples of `CHUNK`),
    then every `CHUNK` rows past the last.
    """
    parts = [(r, pos, _selector(r, p[0] if p else None), p[1] if len(p) > 1 else None) for r, pos, *p in parts]
    if len(parts) == 1 and parts[0][2] is None and parts[0][3] is None and _covers(parts[0][:2], width) and \
            (starts is None or not parts[0][0].dense or
             [lo for lo, _ in _spans(starts, count)] == block_starts(parts[0][0].blocks)[:-1].tolist()):
        return parts[0][0]
    if any(r.dense for r, _, _, _ in parts):
        covered = sum(len(pos) for r, pos, _, _ in parts if r.width) == width
        blocks = []
        for lo, hi in _spans(starts, count):
            out = (np.empty if covered else np.zeros)((width, hi - lo), dtype=np.float32)
            for r, pos, src, source in parts:
                if r.width:
                    place(out, pos, r, src, source, lo, hi)
            blocks.append(out)
        return Rows(width, blocks=blocks)
    if any(source is not None for _, _, _, source in parts):
        raise ValueError("sparse pieces hold every row")
    coos = [(r.select(src).csr.tocoo() if src is not None else r.csr.tocoo(), pos) for r, pos, src, _ in parts]
    coos = [(c, pos) for c, pos in coos if c.nnz]
    if not coos:
        return Rows(width, csr=sp.csr_matrix((count, width), dtype=np.float32))
    rows = np.concatenate([c.row for c, _ in coos])
    cols = np.concatenate([pos[c.col] for c, pos in coos])
    data = np.concatenate([c.data for c, _ in coos])
    out = sp.csr_matrix((data, (rows, cols)), shape=(count, width))
    out.sort_indices()
    return Rows(width, csr=out)


def _spans(starts: np.ndarray | None, count: int) -> list[tuple[int, int]]:
    """[lo, hi) of the blocks of `count` rows that begin at `starts`, then every `CHUNK`."""
    firsts = [int(a) for a in starts if a < count] if starts is not None else []
    firsts += range(firsts[-1] + CHUNK if firsts else 0, count, CHUNK)
    return [(lo, hi) for lo, hi in zip(firsts, firsts[1:] + [count])]


def place(out: np.ndarray, pos, r: Rows, src: np.ndarray | None, source: np.ndarray | None, lo: int, hi: int) -> None:
    """`out[pos]` = target rows [lo, hi), taken from `r` (its neurons `src`, None: all): target
    row t is `r`'s row `source[t]` (-1: none, zero; `source` None: row t).

    Present lists differ in a few rows, so `r`'s rows fall in a few contiguous runs: each is
    copied (whole rows of a slice, fast) into a block of the target rows, which then goes to
    `out[pos]` in one pass, as a block without gaps would."""
    if source is None:
        cols = r.columns(lo, hi)
        out[pos] = cols if src is None else cols[src]
        return
    s = source[lo:hi]
    step = (np.diff(s) != 1) | (s[:-1] < 0)
    if s[0] >= 0 and not step.any():
        cols = r.columns(int(s[0]), int(s[-1]) + 1)
        out[pos] = cols if src is None else cols[src]
        return
    tmp = np.zeros((r.width, hi - lo), dtype=np.float32)
    starts = np.flatnonzero(np.concatenate(([True], step))).tolist() + [hi - lo]
    for i, j in zip(starts[:-1], starts[1:]):
        if s[i] >= 0:  # (a -1 is a run of its own)
            tmp[:, i:j] = r.columns(int(s[i]), int(s[i]) + j - i)
    out[pos] = tmp if src is None else tmp[src]


def sources(present: np.ndarray | None, target: np.ndarray | None, count: int) -> np.ndarray | None:
    """For `place`: which row of a piece holding rows `present` (None: all `count`) each of the
    target rows `target` (None: all, in order) is; None when it is row t itself."""
    if present is None and target is None:
        return None
    if target is not None and present is not None and present.size == target.size and np.array_equal(present, target):
        return None
    total = max(count, int(target.max(initial=-1)) + 1 if target is not None else 0,
                int(present.max(initial=-1)) + 1 if present is not None else 0)
    row = np.full(total, -1, dtype=np.int64)
    if present is None:
        row[:count] = np.arange(count)
    else:
        row[present] = np.arange(present.size)
    return row if target is None else row[target]


def union_of(presents: list[np.ndarray | None], total: int) -> np.ndarray | None:
    """The rows (of `total`) any of the present lists holds (None: all `total`, in order): the
    first list's rows in its order, then the others' (ascending), so that the first piece's
    rows need no placing; when another list is None, the rest of the `total` rows follow."""
    first, rest = presents[0], presents[1:]
    if first is None:
        return None
    if any(p is None for p in rest):
        more = _others(first, total)
        return first if not more.size else np.concatenate([first, more])
    extra = None
    for p in rest:
        if p.size != first.size or not np.array_equal(p, first):
            more = np.setdiff1d(p, first, assume_unique=True)
            extra = more if extra is None else np.union1d(extra, more)
    return first if extra is None or not extra.size else np.concatenate([first, extra])


def row_mask(ids: np.ndarray, total: int) -> np.ndarray:
    """Boolean mask of `ids` among `total` rows (O(total): no sort, unlike np.isin)."""
    m = np.zeros(total, dtype=bool)
    m[ids] = True
    return m


def _others(ids: np.ndarray, total: int) -> np.ndarray:
    """The rows of `total` not in `ids`, ascending (`np.setdiff1d` without its sort)."""
    return np.flatnonzero(~row_mask(ids, total))


def reindex(r: Rows, present: np.ndarray | None, ids: np.ndarray,
            src: np.ndarray | None = None) -> tuple[Rows, np.ndarray | None]:
    """Distinct rows `ids` (any order) of rows held as `r` and `present`, on its neurons `src`
    (None: all): the rows it has of them, and which those are (None: all)."""
    sel = sources(present, ids, r.count)
    sel = np.arange(ids.size) if sel is None else sel
    have = None
    if present is not None and (sel < 0).any():
        have = np.flatnonzero(sel >= 0)
        sel = sel[have]
    src = _selector(r, src)
    if src is None:
        return r.take(sel), have
    if r.csr is not None or not r.blocks or (sel.size == r.count and np.array_equal(sel, np.arange(sel.size))):
        return r.select(src).take(sel), have
    return Rows(len(src), blocks=take(r.blocks, sel, src)), have  # rows and neurons in one gather


def full_csr(r: Rows, present: np.ndarray | None, total: int) -> sp.csr_matrix:
    """All `total` rows as CSR (sorted indices), the absent ones empty."""
    m = r.to_csr()
    return m if present is None else scatter_rows(m, present, total, r.width)


def product(x: Rows, w: sp.csr_matrix, src: np.ndarray | None = None) -> Rows:
    """Z = X[:, src] W in the canonical order: per dense block `W^T @ block`, else the CSR
    product. `src` (ascending neuron positions; None: all) is taken block by block, in cache.
    (The worker's dense layers go through `LayerProducts`; this serves sparse ones.)"""
    src = _selector(x, src)
    if x.csr is not None:
        m = x.csr if src is None else x.select(src).csr
        return Rows(w.shape[1], csr=_sorted((m @ w).tocsr()))
    wt = w.T  # a CSC view: csc_matvecs adds the inputs in ascending order
    return Rows(w.shape[1], blocks=[wt @ (np.ascontiguousarray(b) if src is None else np.take(b, src, axis=0))
                                    for b in x.blocks])


class LayerProducts:
    """A layer's dense output before activation, made one block at a time as `finish` reaches
    it, so that the block is still in cache when it is activated, cut and hashed (as in the
    serial kernel's `block_step`). Block k is the interior product of the worker's own block k
    plus the boundary product of input block k, both added into one block of all the layer's
    columns (their W^T rows at the columns' positions, `add_product`); interior blocks made
    earlier, while messages were in flight, are passed as `done`.

    Every output is summed from zero in ascending input order, bit for bit as `product`.
    `x`'s blocks must start where `done`'s and `own`'s do (`assemble(starts=...)`); `done`
    blocks cut elsewhere are cut again (a copy).
    """

    def __init__(self, width: int, x: Rows, wt_boundary: sp.csc_matrix, done: list[np.ndarray],
                 own: Rows | None = None, wt_interior: sp.csc_matrix | None = None,
                 src: np.ndarray | None = None) -> None:
        self.width = width
        self.inputs = x.blocks if x.dense else sparse_to_blocks(x.csr)
        self.starts = starts = block_starts(self.inputs)  # where each output block begins, and the end
        self.wt_boundary, self.wt_interior = wt_boundary, wt_interior
        makes_interior = own is not None and own.dense and wt_interior is not None and wt_interior.shape[1]
        self.own, self.src = (own, _selector(own, src)) if makes_interior else (None, None)
        if self.own is not None and not _starts_with(starts, block_starts(own.blocks)):
            first = int(np.searchsorted(block_starts(own.blocks), sum(b.shape[1] for b in done)))  # first not done
            done = list(done) + [self.interior(own, k, wt_interior, src) for k in range(first, len(own.blocks))]
            self.own = None
        self.done = _on_bounds(done, starts) if done else []

    @staticmethod
    def interior(own: Rows, k: int, wt: sp.csc_matrix, src: np.ndarray | None) -> np.ndarray:
        """The interior product of own block k (its neurons `src`; None: all), on all the
        layer's columns."""
        b = own.blocks[k]
        src = _selector(own, src)
        z = np.zeros((wt.shape[0], b.shape[1]), dtype=np.float32)
        add_product(wt, b if src is None else np.take(b, src, axis=0), z)
        return z

    def block(self, k: int) -> np.ndarray:
        if k < len(self.done):
            z, self.done[k] = self.done[k], None  # (its memory goes with the finished block)
        elif self.own is not None and k < len(self.own.blocks):
            z = self.interior(self.own, k, self.wt_interior, self.src)
        else:
            z = np.zeros((self.width, self.inputs[k].shape[1]), dtype=np.float32)
        add_product(self.wt_boundary, self.inputs[k], z)
        return z


def _starts_with(starts: np.ndarray, head: np.ndarray) -> bool:
    """Whether blocks that start at `head` (and end at its last entry) begin those that start at `starts`."""
    return head.size <= starts.size and np.array_equal(head, starts[:head.size])


def _on_bounds(blocks: list[np.ndarray], starts: np.ndarray) -> list[np.ndarray]:
    """`blocks` cut again at `starts` (zeros past their rows) when their bounds differ (a copy;
    callers give matching bounds, this is the general case)."""
    have = block_starts(blocks)
    if _starts_with(starts, have):
        return blocks
    r, n = Rows(blocks[0].shape[0], blocks=blocks), int(have[-1])
    out = []
    for lo, hi in zip(starts[:-1].tolist(), starts[1:].tolist()):
        if lo >= n:
            break
        b = np.zeros((r.width, hi - lo), dtype=np.float32)
        b[:, :min(hi, n) - lo] = r.columns(lo, min(hi, n))
        out.append(b)
    return out


def add_product(wt: sp.csc_matrix, x: np.ndarray, out: np.ndarray) -> None:
    """`out += wt @ x` in place, summing as `wt @ x` does: scipy's `wt @ x` runs csc_matvecs
    into fresh zeros; here it runs into `out`. (csc_matvecs is private: without it, or for
    arrays it does not take as they are, the public product, added: exact too, as the rows
    it adds to hold zeros and adding a zero changes no value.)"""
    if not x.shape[1] or not wt.shape[1]:
        return
    if (_csc_matvecs is not None and out.flags.c_contiguous and out.dtype == x.dtype == wt.dtype == np.float32
            and wt.indices.dtype == wt.indptr.dtype and out.shape == (wt.shape[0], x.shape[1])):
        x = np.ascontiguousarray(x)
        _csc_matvecs(wt.shape[0], wt.shape[1], x.shape[1], wt.indptr, wt.indices, wt.data, x.ravel(), out.ravel())
    else:
        out += wt @ x


def _selector(r: Rows, src: np.ndarray | None) -> np.ndarray | None:
    """None when `src` takes every neuron of `r` in order (nothing to select)."""
    if src is None or (len(src) == r.width and (r.width == 0 or src[-1] == r.width - 1)):
        return None
    return src


def finish(parts: list[tuple], width: int, rows: np.ndarray | None, total: int, bias: np.ndarray, ymax: float,
           keep: np.ndarray | None = None) -> tuple[Rows, np.ndarray | None, np.ndarray | None]:
    """A layer's output from its pieces ((rows, positions[, source]) as `assemble`'s), activated
    (bias on non-zeros, ReLU, clamp), cut to the distinct rows `keep` (ascending; None: all),
    in the layout its density calls for: `(rows, present, labels)`.

    The pieces' rows are the distinct rows `rows` (ids among `total`, as `union_of` orders
    them: ascending, then an ascending tail; None: all); the output's are numbered by `keep`
    and ascending. Dense outputs hold only the rows with a non-zero
    (`present` says which), and are built, activated, cut and hashed one block at a time,
    while the block is in cache (the serial kernel's `block_step`); dropping rows there costs
    next to nothing. Sparse outputs hold every row (`present` None).
    """
    parts = [(r, pos, p[0] if p else None) for r, pos, *p in parts]
    made = next((r for r, _, _ in parts if isinstance(r, LayerProducts)), None)
    if made is None and not any(r.dense for r, _, _ in parts):
        return _finish_sparse(parts, width, rows, total, bias, ymax, keep)
    targets = _Targets.of(rows, total, keep)
    unfinished = _Unfinished(parts, made, width, targets.ids.size)
    output, nnz = _in_row_order(unfinished, _Activate(width, bias, ymax, targets.kept), targets)
    return _in_layout(output, nnz, total if keep is None else keep.size)


def _finish_sparse(parts: list[tuple], width: int, rows: np.ndarray | None, total: int, bias: np.ndarray,
                   ymax: float, keep: np.ndarray | None) -> tuple[Rows, None, np.ndarray | None]:
    """`finish` of sparse pieces: the serial kernel's sparse layer on the whole CSR output (a
    sparse layer has few non-zeros: nothing to gain block by block), dense if it filled up."""
    if rows is not None:
        raise ValueError("sparse pieces hold every row")
    y = activate(assemble(parts, width, total).csr, bias, ymax)
    y.sort_indices()
    if keep is not None:
        y = y[keep]
    out = Rows(width, csr=y)
    if y.nnz > DENSE_THRESHOLD * y.shape[0] * y.shape[1]:
        out = Rows(width, blocks=sparse_to_blocks(y))
    return out, None, out.labels()


class _Targets(NamedTuple):
    """`finish`'s target rows: each one's distinct-row id (`ids`, as `union_of` orders them),
    whether the output keeps it (`kept`; None: all), its id among the output's rows
    (`new_ids`), and where their ascending head ends (`tail`: the rows from there on are the
    ascending tail of rows only other pieces had)."""

    ids: np.ndarray
    kept: np.ndarray | None
    new_ids: np.ndarray
    tail: int

    @classmethod
    def of(cls, rows: np.ndarray | None, total: int, keep: np.ndarray | None) -> _Targets:
        ids = np.arange(total) if rows is None else rows
        kept = None if keep is None else row_mask(keep, total)[ids]
        new_ids = ids if keep is None else np.searchsorted(keep, ids)
        descents = np.flatnonzero(ids[1:] < ids[:-1]) if rows is not None else ()
        return cls(ids, kept, new_ids, int(descents[0]) + 1 if len(descents) else ids.size)


class _Unfinished:
    """A layer's dense output before activation, one block of target rows at a time (`spans`:
    block number, first and end row). A block comes from one of three places: made now, the
    products of both parts into one block (`LayerProducts`, so it is in cache when finished);
    a dense product's own output block, when one piece covers every column (finished in
    place); else placed from the pieces (`place`)."""

    def __init__(self, parts: list[tuple], made: LayerProducts | None, width: int, count: int) -> None:
        self.parts, self.made, self.width = parts, made, width
        self.covered = sum(len(pos) for r, pos, _ in parts if r.width) == width
        self.whole = None if made is not None else next(
            (r for r, pos, source in parts if r.dense and source is None and _covers((r, pos), width)), None)
        bounds = (made.starts if made is not None else block_starts(self.whole.blocks) if self.whole is not None
                  else range(0, count + CHUNK, CHUNK))
        self.spans = [(i, lo, min(count, hi)) for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))
                      if lo < min(count, hi)]

    def block(self, i: int, lo: int, hi: int) -> np.ndarray:
        """Block `i`, target rows [lo, hi), before activation (the caller's to change in place)."""
        if self.made is not None:
            return self.made.block(i)  # made now, finished while in cache
        if self.whole is not None:
            return self.whole.blocks[i]  # a product's own output: finished in place
        b = (np.empty if self.covered else np.zeros)((self.width, hi - lo), dtype=np.float32)
        for r, pos, source in self.parts:
            if r.width:
                place(b, pos, r, None, source, lo, hi)
        return b


class _Finished(NamedTuple):
    """One finished block: its columns, which target rows they are, their hash keys, its non-zeros."""

    block: np.ndarray
    rows: np.ndarray
    keys: np.ndarray
    nnz: int


class _Activate:
    """Activate a block of target rows in place (bias on non-zeros, ReLU, clamp: the serial
    kernel's dense step) and cut it to its live rows: those with a non-zero that the output
    keeps. A dead row goes here, while the block is in cache, for next to nothing."""

    def __init__(self, width: int, bias: np.ndarray, ymax: float, kept: np.ndarray | None) -> None:
        self.col_bias, self.ymax, self.kept = bias[:, None], ymax, kept
        self.mult = hash_multipliers(width)[:, None]

    def __call__(self, b: np.ndarray, lo: int, hi: int) -> _Finished:
        apply_bias_relu_clamp_dense(b, self.col_bias, self.ymax)
        live = b.any(axis=0)
        if self.kept is not None:
            live &= self.kept[lo:hi]
        at = np.arange(lo, hi)
        if not live.all():
            sel = np.flatnonzero(live)
            b = np.take(b, sel, axis=1)  # C order, unlike b[:, idx]
            at = at[sel]
        return _Finished(b, at, column_keys(b, self.mult), int(np.count_nonzero(b)))


def _in_row_order(unfinished: _Unfinished, activate: _Activate, targets: _Targets) -> tuple[_Output, int]:
    """Every block finished, packed in ascending output row order; and the non-zeros.

    The target rows are ascending up to `tail`, then come rows only other pieces had
    (`union_of`), ascending too: the blocks that hold those are finished first and their tail
    rows merged in as the rest streams by, so the output stays in ascending row order, with
    the copy `_Aligned` makes anyway.
    """
    spans, new_ids, tail = unfinished.spans, targets.new_ids, targets.tail
    first_tail = next((j for j, (_, lo, hi) in enumerate(spans) if hi > tail), len(spans))
    output, nnz, head = _Output(unfinished.width), 0, []
    for i, lo, hi in spans[first_tail:]:
        f = activate(unfinished.block(i, lo, hi), lo, hi)
        nnz += f.nnz
        m = int(np.searchsorted(f.rows, tail))
        if m:
            head.append((f.block[:, :m], new_ids[f.rows[:m]], f.keys[:m]))
        if m < f.rows.size:
            output.hold(f.block[:, m:], new_ids[f.rows[m:]], f.keys[m:])
    for i, lo, hi in spans[:first_tail]:
        f = activate(unfinished.block(i, lo, hi), lo, hi)
        nnz += f.nnz
        output.add(f.block, new_ids[f.rows], f.keys)
    for b, ids, keys in head:
        output.add(b, ids, keys)
    return output, nnz


def _in_layout(output: _Output, nnz: int, total: int) -> tuple[Rows, np.ndarray | None, np.ndarray | None]:
    """`finish`'s result from its packed output (`nnz` non-zeros; rows among `total`): dense
    blocks of the rows it holds, with `present` and the labels; or, when few enough entries
    are non-zero, CSR of every row."""
    blocks, keys, present = output.close()
    out = Rows(output.width, blocks=blocks)
    held = np.concatenate(present) if present else np.zeros(0, dtype=np.int64)
    if held.size == total:
        held = None
    stored = out.count
    if stored and nnz < DENSE_THRESHOLD * 0.5 * output.width * stored:
        sparse = Rows.of_csr(full_csr(out, held, total))
        return sparse, None, sparse.labels()
    labels = block_labels(blocks, np.concatenate(keys), np.ones(stored, dtype=bool)) if stored > 1 else None
    return out, held, _with_absent(labels, held, total)


class _Output:
    """`finish`'s output in ascending row order: blocks added in row order, with rows held
    back (`hold`: the ascending tail of rows only other pieces had, finished first) merged
    in where they belong as the blocks stream by."""

    def __init__(self, width: int) -> None:
        self.packed = _Aligned(width)
        self.keys: list[np.ndarray] = []
        self.present: list[np.ndarray] = []
        self.held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.done = 0  # held rows emitted
        self.width = width
        self._ex: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def hold(self, b: np.ndarray, ids: np.ndarray, keys: np.ndarray) -> None:
        """Rows to merge in later (ascending, after those held before; before any `add`)."""
        self.held.append((b, ids, keys))

    def add(self, b: np.ndarray, ids: np.ndarray, keys: np.ndarray) -> None:
        """Rows `ids` (ascending, after those added before), with the held rows that go before them."""
        ex, ex_ids, ex_keys = self._extra()
        done = self.done
        stop = int(np.searchsorted(ex_ids, ids[-1])) if ids.size else done
        if stop <= done:
            self._emit(b, ids, keys)
            return
        ins = np.searchsorted(ids, ex_ids[done:stop])  # where each held row goes in this block
        cuts, first = np.unique(ins, return_index=True)
        prev = 0
        for c, f, g in zip(cuts.tolist(), first.tolist(), first[1:].tolist() + [stop - done]):
            self._emit(b[:, prev:c], ids[prev:c], keys[prev:c])
            self._emit(ex[:, done + f:done + g], ex_ids[done + f:done + g], ex_keys[done + f:done + g])
            prev = c
        self._emit(b[:, prev:], ids[prev:], keys[prev:])
        self.done = stop

    def close(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """(blocks, keys, present ids) of everything, the held rows not yet emitted last."""
        ex, ex_ids, ex_keys = self._extra()
        self._emit(ex[:, self.done:], ex_ids[self.done:], ex_keys[self.done:])
        return self.packed.blocks(), self.keys, self.present

    def _extra(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._ex is None:  # joined once, at the first add
            held = self.held
            self._ex = (np.concatenate([e[0] for e in held], axis=1) if held else np.zeros((self.width, 0), np.float32),
                        np.concatenate([e[1] for e in held]) if held else np.zeros(0, np.int64),
                        np.concatenate([e[2] for e in held]) if held else np.zeros(0, np.uint64))
        return self._ex

    def _emit(self, b: np.ndarray, ids: np.ndarray, keys: np.ndarray) -> None:
        if b.shape[1]:
            self.packed.add(b)
            self.keys.append(keys)
            self.present.append(ids)


def _with_absent(labels: np.ndarray | None, present: np.ndarray | None, total: int) -> np.ndarray | None:
    """Labels of all `total` distinct rows from those of the present ones: the absent rows
    (all zero here) are equal to each other and to nothing else. None when merging would
    remove fewer than `MERGE_FRACTION` of the rows. (Present rows without labels, because few
    of them are equal, stay apart: labels may leave equal rows apart, never join unequal ones.)"""
    if present is None:
        return labels
    absent = _others(present, total)
    merged = max(absent.size - 1, 0)
    if labels is not None:
        merged += int(np.count_nonzero(labels != np.arange(labels.size)))
    if total <= 1 or merged < MERGE_FRACTION * total:
        return None
    out = np.arange(total, dtype=np.int64)
    if labels is not None:
        out[present] = present[labels]
    if absent.size:
        out[absent] = absent[0]
    return out


class _Aligned:
    """Output blocks aligned at multiples of `CHUNK` (the layout's invariant) from blocks a
    cut may have narrowed. Until the first cut, blocks pass through uncopied; after it, each
    is copied into place while still in cache. Misaligned blocks would make every later
    `columns(lo, hi)` join two blocks, a full extra copy of the rows per layer."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.done: list[np.ndarray] = []
        self.tail: np.ndarray | None = None  # the block being filled (CHUNK wide), or a narrow one as is
        self.fill = 0  # columns used in `tail`

    def add(self, b: np.ndarray) -> None:
        n = b.shape[1]
        if self.tail is None and n >= CHUNK:  # (wider: one block of a received message, kept whole)
            self.done.append(b)
            return
        if self.tail is None:
            self.tail, self.fill = b, n  # copied only if more follows
            return
        if self.tail.shape[1] < CHUNK:
            head = self.tail
            self.tail = np.empty((self.width, CHUNK), dtype=np.float32)
            self.tail[:, :self.fill] = head
        start = 0
        while start < n:
            m = min(CHUNK - self.fill, n - start)
            self.tail[:, self.fill:self.fill + m] = b[:, start:start + m]
            self.fill += m
            start += m
            if self.fill == CHUNK:
                self.done.append(self.tail)
                self.tail, self.fill = None, 0
                if start < n:
                    self.tail = np.empty((self.width, CHUNK), dtype=np.float32)

    def blocks(self) -> list[np.ndarray]:
        if self.tail is not None:
            last = self.tail if self.fill == self.tail.shape[1] else np.ascontiguousarray(self.tail[:, :self.fill])
            self.done.append(last)
            self.tail, self.fill = None, 0
        return self.done


def to_layout(r: Rows) -> Rows:
    """Dense when the density is above `DENSE_THRESHOLD` (the inputs' first layout)."""
    if r.csr is not None and r.csr.nnz > DENSE_THRESHOLD * r.csr.shape[0] * r.csr.shape[1]:
        return Rows(r.width, blocks=sparse_to_blocks(r.csr))
    return r


def _covers(part: tuple[Rows, np.ndarray], width: int) -> bool:
    """Whether a piece fills every position, in order (so it is the whole result)."""
    r, pos = part
    return r.width == width == len(pos) and (width == 0 or (pos[0] == 0 and pos[-1] == width - 1))


def _sorted(m: sp.csr_matrix) -> sp.csr_matrix:
    m.sort_indices()
    return m


__all__ = ["Rows", "RowMap", "finish", "assemble", "add_product", "combine", "combine_in_step", "full_csr", "place",
           "product", "LayerProducts", "row_mask",
           "reindex", "sources", "to_layout", "union_of"]
