"""The serial kernel: the reference semantics every distributed engine must reproduce.

Per layer (Sparse DNN Graph Challenge): `Z = Y W`; bias added to the structural non-zeros of
Z only; ReLU; clamp at ymax. Float32 throughout. Categories are the input rows whose final
activation row has any non-zero.

Speed comes from whole-matrix operations only (no Python loop over rows or non-zeros):
- dead rows are dropped as soon as they die (an all-zero row stays zero forever), so the
  batch shrinks as the network runs;
- the product is picked by activation density: sparse x sparse while Y is sparse, dense Y
  times the sparse W (scipy's CSR x dense kernel on W^T) once Y is dense enough;
- bias, ReLU and clamp touch only the stored values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .model import SparseDNN

# Above this fraction of non-zeros, Y is held dense: a dense row block costs N floats but the
# dense-times-sparse kernel streams it without index lookups or a sparse accumulator.
DENSE_THRESHOLD = 0.12


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
    z = (y @ w).tocsr()
    z.data += bias[z.indices]
    np.clip(z.data, 0.0, ymax, out=z.data)
    z.eliminate_zeros()
    z.sort_indices()
    return z


def apply_bias_relu_clamp_dense(z: np.ndarray, bias: np.ndarray, ymax: float) -> np.ndarray:
    """Dense form of the activation: bias only where z != 0, then clip to [0, ymax], in place."""
    nz = z != 0
    z += bias * nz
    np.clip(z, 0.0, ymax, out=z)
    return z


def infer(model: SparseDNN, inputs: sp.spmatrix) -> InferenceResult:
    """Run every layer of `model` on `inputs` (B x N) and return activations and categories."""
    import time

    start = time.perf_counter()
    y = sp.csr_matrix(inputs, dtype=np.float32)
    y.sort_indices()
    batch, n = y.shape
    alive = np.flatnonzero(np.diff(y.indptr) > 0)  # global ids of the rows still non-zero
    ys: sp.csr_matrix | np.ndarray = y[alive]
    for w, bias in zip(model.weights, model.biases):
        if ys.shape[0] == 0:
            break
        ys = _step(ys, w, bias, model.ymax)
        keep = _live_rows(ys)
        if keep is not None:
            alive = alive[keep]
            ys = ys[keep]
    final = sp.csr_matrix(ys, dtype=np.float32)
    final.eliminate_zeros()
    act = _scatter_rows(final, alive, batch, n)
    return InferenceResult(act, categories_of(act), time.perf_counter() - start)


def _step(ys: sp.csr_matrix | np.ndarray, w: sp.csr_matrix, bias: np.ndarray, ymax: float):
    """One layer, choosing sparse or dense arithmetic by the density of `ys`."""
    rows, n = ys.shape
    if sp.issparse(ys):
        if ys.nnz > DENSE_THRESHOLD * rows * n:
            ys = ys.toarray()
        else:
            return layer_step(ys, w, bias, ymax)
    # Dense Y: Z = Y W computed as (W^T Y^T)^T with W^T in CSR and Y^T a dense block.
    z = np.asarray((w.T.tocsr() @ ys.T).T, dtype=np.float32, order="C")
    z = apply_bias_relu_clamp_dense(z, bias, ymax)
    if np.count_nonzero(z) < DENSE_THRESHOLD * 0.5 * z.size:
        return sp.csr_matrix(z)
    return z


def _live_rows(ys: sp.csr_matrix | np.ndarray) -> np.ndarray | None:
    """Indices of the non-zero rows, or None when every row is alive (nothing to drop)."""
    if sp.issparse(ys):
        live = np.diff(ys.indptr) > 0
    else:
        live = ys.any(axis=1)
    return None if live.all() else np.flatnonzero(live)


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
