"""The serial kernel: the reference semantics every distributed engine must reproduce.

Per layer (Sparse DNN Graph Challenge): `Z = Y W`; bias added to the structural non-zeros of
Z only; ReLU; clamp at ymax. Float32 throughout. Categories are the input rows whose final
activation row has any non-zero.

Canonical float32 order: every `Z[b, j]` is a float32 sum, in ascending input neuron `i`, of
the float32 products `y_bi * w_ij` (scipy's CSR x CSR product on sorted indices, and its
CSR x dense kernel on `W^T`, both do exactly this). Every path below keeps that order, so
all of them, and the distributed workers, agree bit for bit.

Speed comes from whole-matrix operations only (no Python loop over rows or non-zeros):
- dead rows are dropped as soon as they die (an all-zero row stays zero forever);
- identical rows are computed once: a layer maps equal rows to equal rows, and RadiX-Net
  activations saturate to the all-ymax row, so after a few dozen layers thousands of inputs
  share one distinct row (found by an exact hash-then-compare, never by rounding);
- the product is picked by activation density: sparse x sparse (`layer_step`) while Y is
  sparse, else dense Y in batch blocks of `CHUNK` inputs, each stored transposed (N x c,
  C order) so `W^T @ block` (scipy's csr_matvecs, the canonical order) runs without a
  transpose or copy and the block stays in cache for bias, ReLU and clamp;
- blocks are spread over threads (scipy's sparse kernels and numpy release the GIL).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .model import SparseDNN

# Above this fraction of non-zeros Y is held dense: csr_matvecs streams a dense block without
# index lookups or a sparse accumulator. Measured on RadiX-Net 1024 (3 layers, 5,000 inputs,
# CPU time, one thread): sparse-first wins at 1-4% input density (0.13 s vs 0.27 s at 4%), dense
# wins from ~7% (0.21 s vs 0.25 s at 8%, 0.37 s vs 0.49 s on the ~11% synthetic images).
# A dense batch goes back to CSR below half this density.
DENSE_THRESHOLD = 0.06
# Inputs per dense block: an N x CHUNK float32 block (1 MiB at N = 1024) and its product fit in
# the L2/L3 caches; measured 128-512 to be equally good at N = 1024.
CHUNK = 256
# Threads (None: the CPUs this process may run on).
THREADS: int | None = None
# Identical rows are merged once they are at least this fraction of the distinct rows: merging
# copies the batch, so a handful of duplicates is cheaper to compute twice (they stay identical
# and are merged later, when saturation makes them many).
MERGE_FRACTION = 0.1
# Multipliers of the row hash used to find identical rows (fixed: results never depend on it).
_HASH_SEED = 0x5EED


@dataclass
class InferenceResult:
    """Final activations (B x N CSR float32, every input row) and the category ids (0-based)."""

    activations: sp.csr_matrix
    categories: np.ndarray
    seconds: float = 0.0


def layer_step(y: sp.csr_matrix, w: sp.csr_matrix, bias: np.ndarray, ymax: float) -> sp.csr_matrix:
    """One layer on a sparse batch, the textbook way: the semantics in a few lines.

    Column indices are kept sorted: scipy's product emits them unsorted, and the next
    product accumulates each output in storage order, so sorting is what makes every float32
    sum run in ascending input-neuron order, the canonical order every engine reproduces.
    """
    z = activate((y @ w).tocsr(), bias, ymax)
    z.sort_indices()
    return z


def activate(z: sp.csr_matrix, bias: np.ndarray, ymax: float) -> sp.csr_matrix:
    """Bias on the stored (non-zero) entries, ReLU, clamp, drop zeros; in place on `z`."""
    z.data += bias[z.indices]
    np.clip(z.data, 0.0, ymax, out=z.data)
    z.eliminate_zeros()
    return z


def apply_bias_relu_clamp_dense(z: np.ndarray, bias: np.ndarray, ymax: float) -> np.ndarray:
    """Dense form of the activation: bias only where z != 0, then clip to [0, ymax], in place.

    `bias` broadcasts against `z` (shape (N,) for B x N, (N, 1) for a transposed N x B block).
    When no bias is positive (the Graph Challenge's and RadiX-Net's), adding it to the zeros
    too changes no bit: a zero becomes a bias <= 0, which the clip turns back into +0.0
    (products accumulate into +0.0, so z never holds -0.0). That skips building the mask,
    4x faster (a NaN bias fails the test and takes the masked path).
    """
    if bias.size == 0 or bias.max() <= 0:
        np.add(z, bias, out=z)
    else:
        np.add(z, bias, out=z, where=z != 0)
    np.clip(z, 0.0, ymax, out=z)
    return z


def infer(model: SparseDNN, inputs: sp.spmatrix, threads: int | None = None) -> InferenceResult:
    """Run every layer of `model` on `inputs` (B x N) and return activations and categories.

    `threads` (default `THREADS`, else the usable CPUs) only changes the speed, never a bit.
    """
    start = time.perf_counter()
    y = sp.csr_matrix(inputs, dtype=np.float32)
    y.sort_indices()
    batch, n = y.shape
    alive = np.flatnonzero(np.diff(y.indptr) > 0)  # global ids of the rows still non-zero
    ys: sp.csr_matrix | list[np.ndarray] = y[alive]
    # `owner[k]` = which distinct row of `ys` global row alive[k] currently equals.
    ys, owner = dedup_rows(ys)
    workers = _threads(threads)
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    try:
        for w, bias in zip(model.weights, model.biases):
            if _rows(ys) == 0:
                break
            ys, live, keys = _step(ys, w, bias, model.ymax, pool, workers)
            ys, owner, alive = _compact(ys, live, keys, owner, alive)
    finally:
        if pool is not None:
            pool.shutdown()
    final = _to_csr(ys, n)
    final.eliminate_zeros()
    act = _scatter_rows(final[owner], alive, batch, n)
    return InferenceResult(act, categories_of(act), time.perf_counter() - start)


# --------------------------------------------------------------------------- one layer
def _step(ys, w: sp.csr_matrix, bias: np.ndarray, ymax: float, pool, workers: int):
    """One layer on the distinct live rows.

    Sparse `ys` is a CSR matrix (rows = inputs); dense `ys` is a list of N x c blocks holding
    the inputs as columns. Returns `(new rows, live mask over the old rows, hash keys)`: the
    new rows are only the live ones; keys (one per live row, dense blocks only, else None)
    feed `_dedup_blocks`.
    """
    n = w.shape[0]
    if sp.issparse(ys):
        rows = ys.shape[0]
        if ys.nnz <= DENSE_THRESHOLD * rows * n:
            parts = _split_rows(ys, workers)
            out = _map(pool, lambda part: layer_step(part, w, bias, ymax), parts)
            z = out[0] if len(out) == 1 else sp.vstack(out, format="csr")
            live = np.diff(z.indptr) > 0
            return (z if live.all() else z[live]), live, None
        ys = _sparse_to_blocks(ys)
    # W^T is a free CSC view of W: csc_matvecs walks the input neurons i in ascending order and
    # adds y_i * w_ij into every output j, so each output sums in the canonical order.
    wt = w.T
    col_bias = bias[:, None]
    mult = _hash_multipliers(n)[:, None]

    def block_step(block: np.ndarray):
        z = wt @ block
        apply_bias_relu_clamp_dense(z, col_bias, ymax)
        live = z.any(axis=0)
        if not live.all():
            z = np.take(z, np.flatnonzero(live), axis=1)  # C order in one copy (z[:, live] is not)
        return z, live, np.count_nonzero(z), _column_keys(z, mult)

    out = _map(pool, block_step, ys)
    blocks = [z for z, _, _, _ in out if z.shape[1]]
    live = np.concatenate([m for _, m, _, _ in out])
    nonzero = sum(c for _, _, c, _ in out)
    if nonzero < DENSE_THRESHOLD * 0.5 * n * np.count_nonzero(live):
        z = _to_csr(blocks, n)
        z.eliminate_zeros()
        return z, live, None
    if blocks and len(blocks) > 1 and sum(b.shape[1] for b in blocks) < len(blocks) * CHUNK // 2:
        blocks = _blocks_of(np.concatenate(blocks, axis=1))  # re-pack blocks thinned by dead rows
    return blocks, live, np.concatenate([k for _, _, _, k in out])


def _compact(ys, live: np.ndarray, keys, owner: np.ndarray, alive: np.ndarray):
    """Remap `owner`/`alive` past the dead rows, then merge rows that became identical."""
    if not live.all():
        renumber = np.cumsum(live) - 1
        keep_global = live[owner]
        owner = renumber[owner[keep_global]]
        alive = alive[keep_global]
    if _rows(ys) > 1:
        ys, remap = dedup_rows(ys) if sp.issparse(ys) else _dedup_blocks(ys, keys)
        owner = remap[owner]
    return ys, owner, alive


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


def _dedup_blocks(blocks: list[np.ndarray], keys: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct columns of dense N x c blocks (exact, as `dedup_rows`) and the remap.

    `keys` are the blocks' `_column_keys` when the caller already has them.
    """
    labels = block_labels(blocks, keys)
    if labels is None:
        return blocks, np.arange(sum(b.shape[1] for b in blocks))
    keep, remap = _merge(labels)
    return _take(blocks, keep), remap


def block_labels(blocks: list[np.ndarray], keys: np.ndarray | None = None,
                 alive: np.ndarray | None = None) -> np.ndarray | None:
    """`csr_labels` for the columns of dense N x c blocks (`keys`: their `_column_keys`, and
    `alive`: which columns have a non-zero, when the caller already has them).

    All-zero columns (dead rows, often the many) are known equal without comparing them.
    """
    if keys is None:
        mult = _hash_multipliers(blocks[0].shape[0])[:, None]
        keys = np.concatenate([_column_keys(b, mult) for b in blocks])
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
        full = _gather_columns(blocks, np.concatenate([cand, rep[cand]]))
        same[cand] = (full[:, :cand.size].view(np.uint32) == full[:, cand.size:].view(np.uint32)).all(axis=0)
    return np.where(same, rep, np.arange(rep.size))


def _column_keys(z: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """A 64-bit hash key per column of an N x c block: equal columns always get equal keys.

    Low half: wrapping uint32 sum of value bits times fixed odd multipliers; high half: the
    bits of the float32 column sum (a reduction over axis 0 adds the rows in order, so equal
    columns sum identically). Unequal columns rarely collide, and a collision only costs the
    exact comparison in `_dedup_blocks`.
    """
    low = (z.view(np.uint32) * mult).sum(axis=0, dtype=np.uint32).astype(np.uint64)
    high = z.sum(axis=0, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return (high << np.uint64(32)) | low


def _hash_multipliers(n: int) -> np.ndarray:
    """Fixed odd uint32 multipliers, one per neuron (cached: asked for once per layer)."""
    if _MULTIPLIERS.get(n) is None:
        rng = np.random.default_rng(_HASH_SEED)
        _MULTIPLIERS[n] = rng.integers(1, 2**32, size=n, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    return _MULTIPLIERS[n]


_MULTIPLIERS: dict[int, np.ndarray] = {}
_PROBES: dict[int, np.ndarray] = {}


# --------------------------------------------------------------------------- layouts
def _rows(ys) -> int:
    return ys.shape[0] if sp.issparse(ys) else sum(b.shape[1] for b in ys)


def _take(ys, rows: np.ndarray, neurons: np.ndarray | None = None):
    """Rows `rows` (any order, repeats allowed) of a CSR matrix or of a dense block list
    (gathered straight into `CHUNK`-wide blocks; with `neurons`, only those of the N, in the
    same gather)."""
    if sp.issparse(ys):
        return ys[rows] if neurons is None else ys[rows][:, neurons]
    starts = block_starts(ys)
    return [gather_chunk(ys, starts, rows[lo:lo + CHUNK], neurons) for lo in range(0, rows.size, CHUNK)]


def _gather_columns(blocks: list[np.ndarray], cols: np.ndarray) -> np.ndarray:
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


def _blocks_of(full: np.ndarray) -> list[np.ndarray]:
    """Split an N x B array into C-ordered N x CHUNK blocks."""
    return [np.ascontiguousarray(full[:, lo:lo + CHUNK]) for lo in range(0, full.shape[1], CHUNK)]


def _sparse_to_blocks(y: sp.csr_matrix) -> list[np.ndarray]:
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


def _to_csr(ys, n: int) -> sp.csr_matrix:
    if sp.issparse(ys):
        return sp.csr_matrix(ys, dtype=np.float32)
    if not ys:
        return sp.csr_matrix((0, n), dtype=np.float32)
    return sp.csr_matrix(np.concatenate(ys, axis=1).T, dtype=np.float32)


def _split_rows(y: sp.csr_matrix, parts: int) -> list[sp.csr_matrix]:
    if parts <= 1 or y.shape[0] < 2 * CHUNK:
        return [y]
    bounds = np.linspace(0, y.shape[0], parts + 1).astype(int)
    return [y[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]


def _threads(threads: int | None) -> int:
    if threads is None:
        threads = THREADS
    if threads is None:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            threads = os.cpu_count() or 1
    return max(1, int(threads))


def _map(pool, fn, items: list) -> list:
    if pool is None or len(items) <= 1:
        return [fn(x) for x in items]
    return list(pool.map(fn, items))


def _scatter_rows(block: sp.csr_matrix, rows: np.ndarray, batch: int, n: int) -> sp.csr_matrix:
    """Place the rows of `block` at global row ids `rows` of a batch x n CSR matrix."""
    counts = np.zeros(batch, dtype=np.int64)
    counts[rows] = np.diff(block.indptr)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    return sp.csr_matrix((block.data, block.indices, indptr), shape=(batch, n))


def categories_of(activations: sp.csr_matrix) -> np.ndarray:
    """0-based ids of the rows with any non-zero (activations are >= 0, so nnz > 0 suffices)."""
    a = sp.csr_matrix(activations)
    a.eliminate_zeros()
    return np.flatnonzero(np.diff(a.indptr) > 0)
