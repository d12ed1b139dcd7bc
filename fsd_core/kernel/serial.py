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

from ..model.network import SparseDNN
from .blocks import (
    CHUNK,
    DENSE_THRESHOLD,
    blocks_of,
    column_keys,
    dedup_blocks,
    dedup_rows,
    hash_multipliers,
    row_count,
    scatter_rows,
    sparse_to_blocks,
    split_rows,
    to_csr,
)

# Threads (None: the CPUs this process may run on).
THREADS: int | None = None


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
            if row_count(ys) == 0:
                break
            ys, live, keys = _step(ys, w, bias, model.ymax, pool, workers)
            ys, owner, alive = _compact(ys, live, keys, owner, alive)
    finally:
        if pool is not None:
            pool.shutdown()
    final = to_csr(ys, n)
    final.eliminate_zeros()
    act = scatter_rows(final[owner], alive, batch, n)
    return InferenceResult(act, categories_of(act), time.perf_counter() - start)


# --------------------------------------------------------------------------- one layer
def _step(ys, w: sp.csr_matrix, bias: np.ndarray, ymax: float, pool, workers: int):
    """One layer on the distinct live rows.

    Sparse `ys` is a CSR matrix (rows = inputs); dense `ys` is a list of N x c blocks holding
    the inputs as columns. Returns `(new rows, live mask over the old rows, hash keys)`: the
    new rows are only the live ones; keys (one per live row, dense blocks only, else None)
    feed `dedup_blocks`.
    """
    n = w.shape[0]
    if sp.issparse(ys):
        rows = ys.shape[0]
        if ys.nnz <= DENSE_THRESHOLD * rows * n:
            parts = split_rows(ys, workers)
            out = _map(pool, lambda part: layer_step(part, w, bias, ymax), parts)
            z = out[0] if len(out) == 1 else sp.vstack(out, format="csr")
            live = np.diff(z.indptr) > 0
            return (z if live.all() else z[live]), live, None
        ys = sparse_to_blocks(ys)
    # W^T is a free CSC view of W: csc_matvecs walks the input neurons i in ascending order and
    # adds y_i * w_ij into every output j, so each output sums in the canonical order.
    wt = w.T
    col_bias = bias[:, None]
    mult = hash_multipliers(n)[:, None]

    def block_step(block: np.ndarray):
        z = wt @ block
        apply_bias_relu_clamp_dense(z, col_bias, ymax)
        live = z.any(axis=0)
        if not live.all():
            z = np.take(z, np.flatnonzero(live), axis=1)  # C order in one copy (z[:, live] is not)
        return z, live, np.count_nonzero(z), column_keys(z, mult)

    out = _map(pool, block_step, ys)
    blocks = [z for z, _, _, _ in out if z.shape[1]]
    live = np.concatenate([m for _, m, _, _ in out])
    nonzero = sum(c for _, _, c, _ in out)
    if nonzero < DENSE_THRESHOLD * 0.5 * n * np.count_nonzero(live):
        z = to_csr(blocks, n)
        z.eliminate_zeros()
        return z, live, None
    if blocks and len(blocks) > 1 and sum(b.shape[1] for b in blocks) < len(blocks) * CHUNK // 2:
        blocks = blocks_of(np.concatenate(blocks, axis=1))  # re-pack blocks thinned by dead rows
    return blocks, live, np.concatenate([k for _, _, _, k in out])


def _compact(ys, live: np.ndarray, keys, owner: np.ndarray, alive: np.ndarray):
    """Remap `owner`/`alive` past the dead rows, then merge rows that became identical."""
    if not live.all():
        renumber = np.cumsum(live) - 1
        keep_global = live[owner]
        owner = renumber[owner[keep_global]]
        alive = alive[keep_global]
    if row_count(ys) > 1:
        ys, remap = dedup_rows(ys) if sp.issparse(ys) else dedup_blocks(ys, keys)
        owner = remap[owner]
    return ys, owner, alive


# --------------------------------------------------------------------------- threads
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


def categories_of(activations: sp.csr_matrix) -> np.ndarray:
    """0-based ids of the rows with any non-zero (activations are >= 0, so nnz > 0 suffices)."""
    a = sp.csr_matrix(activations)
    a.eliminate_zeros()
    return np.flatnonzero(np.diff(a.indptr) > 0)
