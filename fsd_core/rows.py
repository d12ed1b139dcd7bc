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

Layouts (as the serial kernel's, for the same reasons): sparse rows are a u x k CSR matrix
with sorted indices; dense rows are N x c column blocks of at most `CHUNK` rows each, aligned
at multiples of `CHUNK`, so that `W^T @ block` stays in cache. Every product sums each output
in ascending input neuron order (see `serial.py`), whatever the layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .serial import (CHUNK, DENSE_THRESHOLD, MERGE_FRACTION, _column_keys, _hash_multipliers, _sparse_to_blocks, _take,
                     activate, apply_bias_relu_clamp_dense, block_labels, block_starts, csr_labels,
                     gather_chunk)


@dataclass
class Rows:
    """u distinct rows of k neurons: `csr` (u x k) or `blocks` (k x c_i, column r = row r)."""

    width: int
    csr: sp.csr_matrix | None = None
    blocks: list[np.ndarray] | None = None

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
        return Rows(self.width, blocks=_take(self.blocks, idx))

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
        start = 0
        pieces = []
        for b in self.blocks:
            end = start + b.shape[1]
            if end > lo and start < hi:
                pieces.append(b[:, max(lo, start) - start:min(hi, end) - start])
            if end >= hi:
                break
            start = end
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate(pieces, axis=1) if pieces else np.zeros((self.width, 0), np.float32)

    def gather_into(self, out: np.ndarray, pos: np.ndarray, idx: np.ndarray, src: np.ndarray | None) -> None:
        """`out[pos] = self.dense_t()[src][:, idx]` without the whole copy (`serial.gather_chunk`;
        `src`: which neurons, None: all).

        Taking columns of the k x c blocks is a strided gather, several times a row take;
        callers use it where it saves more than it costs (rows merged before a product)."""
        if self.csr is not None:
            m = self.csr[idx]
            out[pos] = (m if src is None else m[:, src]).toarray().T
            return
        out[pos] = gather_chunk(self.blocks, block_starts(self.blocks), idx, src)

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
def assemble(parts: list[tuple], width: int, count: int, rows: np.ndarray | None = None) -> Rows:
    """Rows of `width` neurons from pieces, all with `count` rows: (rows, positions) or
    (rows, positions, which of its neurons; None: all). With `rows` (ascending), only those
    rows of the pieces, gathered while assembling (`count` is then their number).

    Dense if any piece is, else CSR with sorted indices. Positions not covered are zero.
    """
    parts = [(r, pos, _selector(r, p[0] if p else None)) for r, pos, *p in parts]
    if rows is not None and not any(r.dense for r, _, _ in parts):
        parts, rows = [(r.take(rows), pos, src) for r, pos, src in parts], None
    if rows is None and len(parts) == 1 and parts[0][2] is None and _covers(parts[0][:2], width):
        return parts[0][0]
    if any(r.dense for r, _, _ in parts):
        covered = sum(len(pos) for r, pos, _ in parts if r.width) == width
        blocks = []
        for lo in range(0, count, CHUNK):
            hi = min(count, lo + CHUNK)
            out = (np.empty if covered else np.zeros)((width, hi - lo), dtype=np.float32)
            for r, pos, src in parts:
                if not r.width:
                    continue
                if rows is not None:
                    r.gather_into(out, pos, rows[lo:hi], src)
                else:
                    out[pos] = r.columns(lo, hi) if src is None else r.columns(lo, hi)[src]
            blocks.append(out)
        return Rows(width, blocks=blocks)
    coos = [(r.select(src).csr.tocoo() if src is not None else r.csr.tocoo(), pos) for r, pos, src in parts]
    coos = [(c, pos) for c, pos in coos if c.nnz]
    if not coos:
        return Rows(width, csr=sp.csr_matrix((count, width), dtype=np.float32))
    rows = np.concatenate([c.row for c, _ in coos])
    cols = np.concatenate([pos[c.col] for c, pos in coos])
    data = np.concatenate([c.data for c, _ in coos])
    out = sp.csr_matrix((data, (rows, cols)), shape=(count, width))
    out.sort_indices()
    return Rows(width, csr=out)


def product(x: Rows, w: sp.csr_matrix, src: np.ndarray | None = None, wt: sp.csc_matrix | None = None) -> Rows:
    """Z = X[:, src] W in the canonical order: per dense block `W^T @ block`, else the CSR
    product. `src` (ascending neuron positions; None: all) is taken block by block, in cache.
    `wt`: `w.T`, when the caller keeps it."""
    src = _selector(x, src)
    if x.csr is not None:
        m = x.csr if src is None else x.select(src).csr
        return Rows(w.shape[1], csr=_sorted((m @ w).tocsr()))
    if w.shape[1] == 0:  # no output columns (a layer without interior ones): no input copies
        return Rows(0, blocks=[np.zeros((0, b.shape[1]), dtype=np.float32) for b in x.blocks])
    wt = w.T if wt is None else wt  # a CSC view: csc_matvecs adds the inputs in ascending order
    return Rows(w.shape[1], blocks=[wt @ (np.ascontiguousarray(b) if src is None else np.take(b, src, axis=0))
                                    for b in x.blocks])


def _selector(r: Rows, src: np.ndarray | None) -> np.ndarray | None:
    """None when `src` takes every neuron of `r` in order (nothing to select)."""
    if src is None or (len(src) == r.width and (r.width == 0 or src[-1] == r.width - 1)):
        return None
    return src


def finish(parts: list[tuple[Rows, np.ndarray]], width: int, count: int, bias: np.ndarray, ymax: float,
           keep: np.ndarray | None = None) -> tuple[Rows, np.ndarray | None]:
    """A layer's output from its pieces (`assemble`), activated (bias on non-zeros, ReLU,
    clamp), cut to rows `keep` (ascending; None: all), in the layout its density calls for,
    and its row labels.

    Dense outputs are built, activated, cut and hashed one block at a time, while the block
    is in cache (the serial kernel's `block_step`); dropping rows there costs next to nothing.
    """
    if not any(r.dense for r, _ in parts):
        z = assemble(parts, width, count).csr
        y = activate(z, bias, ymax)
        y.sort_indices()
        if keep is not None:
            y = y[keep]
        out = Rows(width, csr=y)
        if y.nnz > DENSE_THRESHOLD * y.shape[0] * y.shape[1]:
            out = Rows(width, blocks=_sparse_to_blocks(y))
        return out, out.labels()
    col_bias = bias[:, None]
    mult = _hash_multipliers(width)[:, None]
    covered = sum(len(pos) for r, pos in parts if r.width) == width
    whole = [r for r, pos in parts if r.dense and _covers((r, pos), width)]  # one piece is all of it
    bounds = np.cumsum([0] + [b.shape[1] for b in whole[0].blocks]) if whole else range(0, count + CHUNK, CHUNK)
    packed, keys, alive, nnz = _Aligned(width), [], [], 0
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        hi = min(count, hi)
        if lo >= hi:
            break
        if whole:
            b = whole[0].blocks[i]  # a product's own output: finished in place
        else:
            b = (np.empty if covered else np.zeros)((width, hi - lo), dtype=np.float32)
            for r, pos in parts:
                if r.width:
                    b[pos] = r.columns(lo, hi)
        apply_bias_relu_clamp_dense(b, col_bias, ymax)
        if keep is not None:
            a, z = np.searchsorted(keep, [lo, hi])
            if z - a < hi - lo:
                b = np.take(b, keep[a:z] - lo, axis=1)  # C order, unlike b[:, idx]
        if b.shape[1]:
            packed.add(b)
            keys.append(_column_keys(b, mult))
            alive.append(b.any(axis=0))
            nnz += int(np.count_nonzero(b))
    blocks = packed.blocks()
    out = Rows(width, blocks=blocks)
    if not blocks:
        return out, None
    if nnz < DENSE_THRESHOLD * 0.5 * width * out.count:
        out = Rows(width, csr=out.to_csr())
        return out, out.labels()
    if out.count <= 1:
        return out, None
    return out, block_labels(blocks, np.concatenate(keys), np.concatenate(alive))


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
        return Rows(r.width, blocks=_sparse_to_blocks(r.csr))
    return r


def _covers(part: tuple[Rows, np.ndarray], width: int) -> bool:
    """Whether a piece fills every position, in order (so it is the whole result)."""
    r, pos = part
    return r.width == width == len(pos) and (width == 0 or (pos[0] == 0 and pos[-1] == width - 1))


def _sorted(m: sp.csr_matrix) -> sp.csr_matrix:
    m.sort_indices()
    return m


__all__ = ["Rows", "RowMap", "finish", "assemble", "combine", "combine_in_step", "product", "to_layout"]
