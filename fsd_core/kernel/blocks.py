"""Blocks and distinct rows: the machinery the serial kernel and the workers share.

A batch of activations is held either as a CSR matrix (rows = inputs) or, once dense enough, as
a list of N x c float32 blocks holding the inputs as columns (`CHUNK` wide, C order, so
`W^T @ block` runs in the canonical order without a transpose). Identical rows are found
exactly (a hash key, then an entry-by-entry comparison of the candidates; a collision only
costs a missed merge) and computed once. Nothing here changes a bit of any result: the
functions move, gather and compare rows; `serial.py` says what a layer computes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Above this fraction of non-zeros Y is held dense: csr_matvecs streams a dense block without
# index lookups or a sparse accumulator. Measured on RadiX-Net 1024 (3 layers, 5,000 inputs,
# CPU time, one thread): sparse-first wins at 1-4% input density (0.13 s vs 0.27 s at 4%), dense
# wins from ~7% (0.21 s vs 0.25 s at 8%, 0.37 s vs 0.49 s on the ~11% synthetic images).
# A dense batch goes back to CSR below half this density.
DENSE_THRESHOLD = 0.06
# Inputs per dense block: an N x CHUNK float32 block (1 MiB at N = 1024) and its product fit in
# the L2/L3 caches; measured 128-512 to be equally good at N = 1024.
CHUNK = 256
# Identical rows are merged once they are at least this fraction of the distinct rows: merging
# copies the batch, so a handful of duplicates is cheaper to compute twice (they stay identical
# and are merged later, when saturation makes them many).
MERGE_FRACTION = 0.1
# Multipliers of the row hash used to find identical rows (fixed: results never depend on it).
_HASH_SEED = 0x5EED


# --------------------------------------------------------------------------- identical rows
def _group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate representative of every row: the first row with the same hash key."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first[inverse.ravel()], first


def _merge(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From labels (index of each row's first equal row): the rows kept and every row's new index."""
    keep = np.flatnonzero(labels == np.arange(labels.size))
    renumber = np.full(labels.size, -1, dtype=np.int64)
    renumber[keep] = np.arange(keep.size)
    return keep, renumber[labels]


def dedup_rows(y: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Distinct rows of a CSR matrix (sorted indices) and each row's index among them."""
    labels = csr_labels(y)
    if labels is None:
        return y, np.arange(y.shape[0])
    keep, remap = _merge(labels)
    return y[keep], remap


def csr_labels(y: sp.csr_matrix) -> np.ndarray | None:
    """Per row of a CSR matrix (sorted indices), the index of the first equal row; None when
    merging would remove fewer than `MERGE_FRACTION` of the rows.

    Exact: rows are grouped by a key (non-zero count and two float32 dot products with fixed
    random vectors; equal rows give bit-equal dot products, as scipy sums each row in storage
    order), then every candidate row is compared entry by entry with its group's first row; a
    key collision only costs a missed merge. Work is O(nnz) in C loops, with few temporaries.
    """
    rows = y.shape[0]
    if rows <= 1:
        return None
    probes = _float_probes(y.shape[1])
    counts = np.diff(y.indptr).astype(np.float32)
    keys = np.stack([counts, y @ probes[0], y @ probes[1]], axis=1).astype(np.float32)
    rep, first = _group(np.ascontiguousarray(keys).view(np.dtype((np.void, 12))).ravel())
    if rows - first.size < MERGE_FRACTION * rows:
        return None
    cand = np.flatnonzero(rep != np.arange(rows))
    a, b = y[cand], y[rep[cand]]  # same non-zero counts (part of the key), so same indptr
    differ = (a.indices != b.indices) | (a.data.view(np.uint32) != b.data.view(np.uint32))
    bad = np.concatenate(([0], np.cumsum(differ)))
    same = np.ones(rows, dtype=bool)
    same[cand] = bad[a.indptr[1:]] == bad[a.indptr[:-1]]
    return np.where(same, rep, np.arange(rows))


def _float_probes(n: int) -> np.ndarray:
    """Two fixed float32 vectors in [1, 2) (cached) for the sparse row keys."""
    if _PROBES.get(n) is None:
        _PROBES[n] = np.random.default_rng(_HASH_SEED + 1).uniform(1.0, 2.0, (2, n)).astype(np.float32)
    return _PROBES[n]


def dedup_blocks(blocks: list[np.ndarray], keys: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct columns of dense N x c blocks (exact, as `dedup_rows`) and the remap.

    `keys` are the blocks' `column_keys` when the caller already has them.
    """
    labels = block_labels(blocks, keys)
    if labels is None:
        return blocks, np.arange(sum(b.shape[1] for b in blocks))
    keep, remap = _merge(labels)
    return take(blocks, keep), remap


def block_labels(blocks: list[np.ndarray], keys: np.ndarray | None = None,
                 alive: np.ndarray | None = None) -> np.ndarray | None:
    """`csr_labels` for the columns of dense N x c blocks (`keys`: their `column_keys`, and
    `alive`: which columns have a non-zero, when the caller already has them).

    All-zero columns (dead rows, often the many) are known equal without comparing them.
    """
    if keys is None:
        mult = hash_multipliers(blocks[0].shape[0])[:, None]
        keys = np.concatenate([column_keys(b, mult) for b in blocks])
    if alive is None:
        alive = np.concatenate([b.any(axis=0) for b in blocks])
    # Dead columns get one key no live column can have (a live column's count is > 0).
    keyed = np.stack([keys, alive.astype(np.uint64)], axis=1).view(np.dtype((np.void, 16))).ravel()
    rep, first = _group(keyed)
    if keys.size - first.size < MERGE_FRACTION * keys.size:
        return None
    cand = np.flatnonzero((rep != np.arange(rep.size)) & alive)
    same = np.ones(rep.size, dtype=bool)
    if cand.size:
        full = gather_columns(blocks, np.concatenate([cand, rep[cand]]))
        same[cand] = (full[:, :cand.size].view(np.uint32) == full[:, cand.size:].view(np.uint32)).all(axis=0)
    return np.where(same, rep, np.arange(rep.size))


def column_keys(z: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """A 64-bit hash key per column of an N x c block: equal columns always get equal keys.

    Low half: wrapping uint32 sum of value bits times fixed odd multipliers; high half: the
    bits of the float32 column sum (a reduction over axis 0 adds the rows in order, so equal
    columns sum identically). Unequal columns rarely collide, and a collision only costs the
    exact comparison in `dedup_blocks`.
    """
    low = (z.view(np.uint32) * mult).sum(axis=0, dtype=np.uint32).astype(np.uint64)
    high = z.sum(axis=0, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return (high << np.uint64(32)) | low


def hash_multipliers(n: int) -> np.ndarray:
    """Fixed odd uint32 multipliers, one per neuron (cached: asked for once per layer)."""
    if _MULTIPLIERS.get(n) is None:
        rng = np.random.default_rng(_HASH_SEED)
        _MULTIPLIERS[n] = rng.integers(1, 2**32, size=n, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    return _MULTIPLIERS[n]


_MULTIPLIERS: dict[int, np.ndarray] = {}
_PROBES: dict[int, np.ndarray] = {}


# --------------------------------------------------------------------------- layouts
def row_count(ys) -> int:
    return ys.shape[0] if sp.issparse(ys) else sum(b.shape[1] for b in ys)


def take(ys, rows: np.ndarray, neurons: np.ndarray | None = None):
    """Rows `rows` (any order, repeats allowed) of a CSR matrix or of a dense block list
    (gathered straight into `CHUNK`-wide blocks; with `neurons`, only those of the N, in the
    same gather)."""
    if sp.issparse(ys):
        return ys[rows] if neurons is None else ys[rows][:, neurons]
    starts = block_starts(ys)
    return [gather_chunk(ys, starts, rows[lo:lo + CHUNK], neurons) for lo in range(0, rows.size, CHUNK)]


def gather_columns(blocks: list[np.ndarray], cols: np.ndarray) -> np.ndarray:
    """N x len(cols) array of the given global columns (any order) of a block list."""
    starts = block_starts(blocks)
    out = np.empty((blocks[0].shape[0], cols.size), dtype=np.float32)
    for lo in range(0, cols.size, CHUNK):
        out[:, lo:lo + CHUNK] = gather_chunk(blocks, starts, cols[lo:lo + CHUNK])
    return out


def block_starts(blocks: list[np.ndarray]) -> np.ndarray:
    """The first global column of every block, and one past the last."""
    return np.cumsum([0] + [b.shape[1] for b in blocks])


def column_spans(starts: np.ndarray, cols: np.ndarray) -> list[tuple[int, int, int]]:
    """(k, a, z) for every block k that ascending `cols[a:z]` fall in."""
    cut = np.searchsorted(cols, starts)
    return [(k, cut[k], cut[k + 1]) for k in np.flatnonzero(cut[1:] > cut[:-1]).tolist()]


def gather_chunk(blocks: list[np.ndarray], starts: np.ndarray, cols: np.ndarray,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """N x len(cols) C-order array of columns `cols` (any order) of a block list; with `rows`,
    only those of the N rows (len(rows) x len(cols)).

    One C-order take per block the columns fall in (`b[:, idx]` and boolean column masks
    run several times slower), after copying the block's `rows` over the columns' span (row
    copies are contiguous, cheap): sorted first if need be, then put back in order. Meant for
    a few hundred columns at a time (`CHUNK`), so the result stays in cache."""
    order = None if cols.size < 2 or (cols[1:] >= cols[:-1]).all() else np.argsort(cols, kind="stable")
    ordered = cols if order is None else cols[order]
    if ordered.size and (ordered[0] < 0 or ordered[-1] >= starts[-1]):
        raise IndexError(f"columns {ordered[0]}..{ordered[-1]} of a block list with {starts[-1]}")
    height = len(rows) if rows is not None else blocks[0].shape[0] if blocks else 0
    out = np.empty((height, cols.size), dtype=np.float32)
    for k, a, z in column_spans(starts, ordered):
        b, local = blocks[k], ordered[a:z] - starts[k]
        if rows is not None:
            b = np.take(b[:, local[0]:local[-1] + 1], rows, axis=0)
            local = local - local[0]
        out[:, a:z] = np.take(b, local, axis=1)
    if order is None:
        return out
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    return np.take(out, back, axis=1)


def blocks_of(full: np.ndarray) -> list[np.ndarray]:
    """Split an N x B array into C-ordered N x CHUNK blocks."""
    return [np.ascontiguousarray(full[:, lo:lo + CHUNK]) for lo in range(0, full.shape[1], CHUNK)]


def sparse_to_blocks(y: sp.csr_matrix) -> list[np.ndarray]:
    """N x CHUNK blocks of a CSR batch: one scatter of each block's entries (2x faster than
    `toarray().T` and a transposing copy); duplicate entries are summed first, as toarray would."""
    if not y.has_canonical_format:
        y = y.copy()
        y.sum_duplicates()
    row_of = np.repeat(np.arange(y.shape[0]), np.diff(y.indptr))
    blocks = []
    for lo in range(0, y.shape[0], CHUNK):
        hi = min(lo + CHUNK, y.shape[0])
        block = np.zeros((y.shape[1], hi - lo), dtype=np.float32)
        a, b = y.indptr[lo], y.indptr[hi]
        block[y.indices[a:b], row_of[a:b] - lo] = y.data[a:b]
        blocks.append(block)
    return blocks


def to_csr(ys, n: int) -> sp.csr_matrix:
    if sp.issparse(ys):
        return sp.csr_matrix(ys, dtype=np.float32)
    if not ys:
        return sp.csr_matrix((0, n), dtype=np.float32)
    return sp.csr_matrix(np.concatenate(ys, axis=1).T, dtype=np.float32)


def split_rows(y: sp.csr_matrix, parts: int) -> list[sp.csr_matrix]:
    if parts <= 1 or y.shape[0] < 2 * CHUNK:
        return [y]
    bounds = np.linspace(0, y.shape[0], parts + 1).astype(int)
    return [y[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]


def scatter_rows(block: sp.csr_matrix, rows: np.ndarray, batch: int, n: int) -> sp.csr_matrix:
    """Place the rows of `block` at global row ids `rows` of a batch x n CSR matrix."""
    counts = np.zeros(batch, dtype=np.int64)
    counts[rows] = np.diff(block.indptr)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    return sp.csr_matrix((block.data, block.indices, indptr), shape=(batch, n))
