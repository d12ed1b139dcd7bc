"""Communication plans: from a partition, what every worker computes, holds, sends and receives.

Given owners (L+1, N) (see `partition.py`), at layer l worker p computes the columns
S_p(l) = {j : owners[l][j] = p} and needs the input rows R_p(l) = {i : W_l[i, j] != 0 for some
j in S_p(l)}. Row i of R_p(l) is held by q = owners[l-1][i]; if q != p, q sends it to p. So
send[q -> p] at layer l = R_p(l) intersect S_q(l-1), and the row volume of a plan is the number
of (layer, row, receiver) triples with a remote sender. The plan is computed once, shipped
with the shards, and every receiver knows exactly which senders to wait for.

Everything here is whole-array arithmetic on the CSR structure (no loop over non-zeros):
the "needed" pairs of a layer are `np.unique(owner_of_column * N + row)` over its non-zeros.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .. import packed
from ..errors import InputError
from ..fileio import atomic_path
from ..model.network import SparseDNN
from .partition import (
    DEFAULT_METHOD,
    DEFAULT_PER_LAYER,
    DEFAULT_TOLERANCE,
    METHODS,
    check_method,
    check_workers,
    compute_weights,
    partition,
)

PLAN_FORMAT = "fsd-plan"
PLAN_VERSION = 1
SHARD_VERSION = 3  # 2: split products, zstandard container; 3: split products keep all of S as columns


@dataclass
class LayerSplit:
    """A layer's product split in two, computed at staging and shipped in the shard (so a
    worker starts its first layer without ~1.5 ms a layer of index work on the critical path).

    Interior columns have only local input rows: they are computed while messages are in
    flight. Boundary columns need a remote row; their product takes only the rows with a
    weight in a boundary column (`boundary_rows`): every remote row, and the local rows that
    reach the boundary. Positions are into the layer's R (rows) and S (cols).

    Both products keep all of S as columns (the other product's columns empty), so each
    lands at its columns' places in one block of the layer's output (`rows.LayerProducts`).
    """

    interior: np.ndarray            # positions in S of the interior columns, ascending
    boundary: np.ndarray            # positions in S of the boundary columns, ascending
    w_interior: sp.csr_matrix       # W[local rows of R, S] on the interior columns only, rows in R order
    w_boundary: sp.csr_matrix       # W[boundary_rows, S] on the boundary columns only
    boundary_rows: np.ndarray       # positions in R of the boundary product's input rows, ascending
    x_local_src: np.ndarray         # which of the worker's own rows go into the boundary product
    x_local_dst: np.ndarray         # ... and where (positions in boundary_rows)
    x_recv: dict[int, np.ndarray]   # q -> positions in boundary_rows of the rows q sends

    @cached_property
    def wt_interior(self) -> sp.csc_matrix:
        """W^T of the interior product (a CSC view), built once: scipy takes ~0.1 ms a layer."""
        return self.w_interior.T

    @cached_property
    def wt_boundary(self) -> sp.csc_matrix:
        """W^T of the boundary product (a CSC view), built once."""
        return self.w_boundary.T

    @classmethod
    def of(cls, w: sp.csr_matrix, local_src: np.ndarray, local_dst: np.ndarray,
           recv: dict[int, np.ndarray]) -> "LayerSplit":
        """Split W[R, S] (whole-array passes over its non-zeros; `local_dst` ascending)."""
        nrows, ncols = w.shape
        local_row = np.zeros(nrows, dtype=bool)
        local_row[local_dst] = True
        row_of = np.repeat(np.arange(nrows), np.diff(w.indptr))
        boundary = np.zeros(ncols, dtype=bool)
        boundary[w.indices[~local_row[row_of]]] = True  # columns that need a remote row
        used = np.zeros(nrows, dtype=bool)
        used[row_of[boundary[w.indices]]] = True
        # An interior column only has local rows (a remote one would make it boundary).
        return cls.build(np.flatnonzero(~boundary), np.flatnonzero(boundary),
                         _submatrix(w, row_of, ~boundary, local_row), _submatrix(w, row_of, boundary, used),
                         np.flatnonzero(used), nrows, local_src, local_dst, recv)

    @classmethod
    def build(cls, interior: np.ndarray, boundary: np.ndarray, w_interior: sp.csr_matrix, w_boundary: sp.csr_matrix,
              boundary_rows: np.ndarray, nrows: int, local_src: np.ndarray, local_dst: np.ndarray,
              recv: dict[int, np.ndarray]) -> "LayerSplit":
        """From the split matrices, derive where the boundary product's rows come from."""
        renumber = np.full(nrows, -1, dtype=np.int64)
        renumber[boundary_rows] = np.arange(len(boundary_rows))
        mine = renumber[local_dst] >= 0
        return cls(interior, boundary, w_interior, w_boundary, boundary_rows, local_src[mine],
                   renumber[local_dst[mine]], {q: renumber[pos] for q, pos in recv.items()})

    def weights(self, shape: tuple[int, int], local_dst: np.ndarray) -> sp.csr_matrix:
        """W[R, S] again, from the two parts (for checks and tools, not the layer loop)."""
        a, b = self.w_interior.tocoo(), self.w_boundary.tocoo()
        rows = np.concatenate([local_dst[a.row], self.boundary_rows[b.row]])
        cols = np.concatenate([a.col, b.col])
        m = sp.csr_matrix((np.concatenate([a.data, b.data]).astype(np.float32), (rows, cols)), shape=shape)
        m.sort_indices()
        return m


def _submatrix(w: sp.csr_matrix, row_of: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> sp.csr_matrix:
    """w[rows] with only the entries in columns `cols` (boolean masks; every column kept, the
    others empty), keeping each row's column order."""
    keep = cols[w.indices] & rows[row_of]
    counts = np.bincount(row_of[keep], minlength=w.shape[0])[rows]
    indptr = np.concatenate(([0], np.cumsum(counts)))
    return sp.csr_matrix((w.data[keep], w.indices[keep].astype(np.int32), indptr),
                         shape=(int(rows.sum()), w.shape[1]))


@dataclass
class LayerShard:
    """What worker p needs for one layer: its block of W (split), bias, and where rows come
    from and go."""

    split: LayerSplit               # W_l[R, S], split into interior and boundary products
    bias: np.ndarray                # (|S|,) float32 = b_l[S]
    rows: np.ndarray                # R: sorted global input ids p needs (int64)
    cols: np.ndarray                # S: sorted global output ids p computes (int64)
    local_src: np.ndarray           # positions in S_p(l-1) of the rows of R that p owns itself
    local_dst: np.ndarray           # positions in R of those same rows (ascending)
    send: dict[int, np.ndarray] = field(default_factory=dict)  # q -> positions in S_p(l-1), ascending id
    recv: dict[int, np.ndarray] = field(default_factory=dict)  # q -> positions in R, same order as q's send[p]

    @classmethod
    def of(cls, weights: sp.csr_matrix, bias: np.ndarray, rows: np.ndarray, cols: np.ndarray,
           local_src: np.ndarray, local_dst: np.ndarray, send: dict[int, np.ndarray],
           recv: dict[int, np.ndarray]) -> "LayerShard":
        """From the block W_l[R, S] (|R| x |S| float32)."""
        return cls(LayerSplit.of(weights, local_src, local_dst, recv), bias, rows, cols, local_src, local_dst,
                   send, recv)

    @property
    def weights(self) -> sp.csr_matrix:
        """W_l[R, S], |R| x |S| float32 (rebuilt from the split)."""
        return self.split.weights((len(self.rows), len(self.cols)), self.local_dst)


@dataclass
class WorkerShard:
    """Everything one worker holds for a run: its layer shards and its input columns."""

    worker: int
    workers: int
    neurons: int
    ymax: float
    input_cols: np.ndarray          # S_p(0): input features p holds (owners[0] == p), sorted int64
    layers: list[LayerShard]

    @property
    def nbytes(self) -> int:
        """Bytes of its arrays in memory: what keeping it warm between runs costs."""
        total = self.input_cols.nbytes
        for s in self.layers:
            split = s.split
            arrays = [s.bias, s.rows, s.cols, s.local_src, s.local_dst, split.interior, split.boundary,
                      split.boundary_rows, split.x_local_src, split.x_local_dst,
                      *s.send.values(), *s.recv.values(), *split.x_recv.values()]
            for w in (split.w_interior, split.w_boundary):
                arrays += [w.data, w.indices, w.indptr]
            total += sum(a.nbytes for a in arrays)
        return total

    @property
    def final_cols(self) -> np.ndarray:
        """Global ids of the last-layer outputs this worker computes (what it gathers to 0)."""
        return self.layers[-1].cols if self.layers else self.input_cols

    def to_bytes(self) -> bytes:
        """Compact serialisation (`packed.py`: one zstandard frame; small per-layer fields
        concatenated over layers); read on the critical path of a worker's start."""
        arrays: dict[str, np.ndarray] = {
            "header": np.array([SHARD_VERSION, self.worker, self.workers, self.neurons, len(self.layers)], np.int64),
            "ymax": np.array([self.ymax], np.float64),
            "input_cols": self.input_cols.astype(np.int64),
        }
        parts: dict[str, list[np.ndarray]] = {k: [] for k in _SHARD_FIELDS}
        for s in self.layers:
            split = s.split
            values = {"bias": s.bias, "rows": s.rows, "cols": s.cols, "local_src": s.local_src,
                      "local_dst": s.local_dst, "interior": split.interior, "boundary": split.boundary,
                      "boundary_rows": split.boundary_rows}
            for name, w in (("wi", split.w_interior), ("wb", split.w_boundary)):
                if w.nnz > np.iinfo(np.int32).max:  # int32 indptr below would wrap silently
                    raise ValueError(f"a layer block of {w.nnz} non-zeros is too large for a shard")
                values.update({f"{name}_indptr": w.indptr, f"{name}_indices": w.indices, f"{name}_data": w.data})
            for kind in ("send", "recv"):
                peers = np.array(sorted(getattr(s, kind)), dtype=np.int64)
                pos = [getattr(s, kind)[int(q)] for q in peers]
                values[f"{kind}_peer"] = peers
                values[f"{kind}_len"] = np.array([len(x) for x in pos], dtype=np.int64)
                values[f"{kind}_pos"] = np.concatenate(pos) if pos else np.zeros(0, np.int64)
            for k, dtype in _SHARD_FIELDS.items():
                parts[k].append(np.asarray(values[k]).astype(dtype, copy=False))
        for k, chunks in parts.items():
            if k in _PER_LAYER:  # one array per layer: scipy takes views of it without a copy
                arrays.update({f"{k}.{l}": c for l, c in enumerate(chunks)})
                continue
            arrays[k] = np.concatenate(chunks) if chunks else np.zeros(0, _SHARD_FIELDS[k])
            arrays[k + "_n"] = np.array([len(c) for c in chunks], dtype=np.int64)
        return packed.pack(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> "WorkerShard":
        """Inverse of `to_bytes`; a damaged or foreign blob raises InputError."""
        try:
            arrays = packed.unpack(data)
            version, worker, workers, neurons, nlayers = (int(x) for x in arrays["header"])
            if version != SHARD_VERSION:
                raise InputError(f"shard format version {version} is not supported")
            fields = {}
            for k in _SHARD_FIELDS:
                if k in _PER_LAYER:
                    fields[k] = [arrays[f"{k}.{l}"] for l in range(nlayers)]
                    continue
                bounds = np.concatenate([[0], np.cumsum(arrays[k + "_n"])])
                if len(bounds) != nlayers + 1 or bounds[-1] != len(arrays[k]):
                    raise InputError(f"shard field {k!r} is inconsistent")
                fields[k] = [arrays[k][bounds[i]:bounds[i + 1]] for i in range(nlayers)]
            layers = []
            for l in range(nlayers):
                f = {k: v[l] for k, v in fields.items()}
                maps = {}
                for kind in ("send", "recv"):
                    chunks = np.split(f[f"{kind}_pos"], np.cumsum(f[f"{kind}_len"])[:-1]) if len(f[f"{kind}_peer"]) else []
                    maps[kind] = {int(q): c for q, c in zip(f[f"{kind}_peer"], chunks)}
                w_int = sp.csr_matrix((f["wi_data"], f["wi_indices"], f["wi_indptr"]),
                                      shape=(len(f["local_dst"]), len(f["cols"])))
                w_bnd = sp.csr_matrix((f["wb_data"], f["wb_indices"], f["wb_indptr"]),
                                      shape=(len(f["boundary_rows"]), len(f["cols"])))
                split = LayerSplit.build(f["interior"], f["boundary"], w_int, w_bnd, f["boundary_rows"],
                                         len(f["rows"]), f["local_src"], f["local_dst"], maps["recv"])
                layers.append(LayerShard(split, f["bias"], f["rows"], f["cols"], f["local_src"], f["local_dst"],
                                         maps["send"], maps["recv"]))
            return cls(worker, workers, neurons, float(arrays["ymax"][0]), arrays["input_cols"], layers)
        except InputError:
            raise
        except Exception as exc:  # unpacking, key, shape and value errors of a damaged blob
            raise InputError(f"worker shard is damaged or not a shard ({type(exc).__name__}: {exc})") from None


_SHARD_FIELDS = {"wi_indptr": np.int32, "wi_indices": np.int32, "wi_data": np.float32,
                 "wb_indptr": np.int32, "wb_indices": np.int32, "wb_data": np.float32,
                 "interior": np.int64, "boundary": np.int64, "boundary_rows": np.int64,
                 "bias": np.float32, "rows": np.int64, "cols": np.int64, "local_src": np.int64, "local_dst": np.int64,
                 "send_peer": np.int64, "send_len": np.int64, "send_pos": np.int64,
                 "recv_peer": np.int64, "recv_len": np.int64, "recv_pos": np.int64}
# Stored per layer: scipy copies a CSR array that is a small view of a larger one.
_PER_LAYER = {"wi_indptr", "wi_indices", "wi_data", "wb_indptr", "wb_indices", "wb_data"}


@dataclass
class LayerPairs:
    """Per layer: the (sender, receiver) pairs with a non-empty send and their row counts."""

    sender: np.ndarray    # int64, sorted by (sender, receiver)
    receiver: np.ndarray  # int64
    nrows: np.ndarray     # int64, > 0


def needed_pairs(w: sp.csr_matrix, out_owner: np.ndarray, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """(receiver p, row i) for every i in R_p of this layer, sorted by p then i."""
    n = w.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(w.indptr))
    keys = np.unique(out_owner[w.indices].astype(np.int64) * n + rows)
    return keys // n, keys % n


@dataclass
class Plan:
    """A partition plus what follows from it for a model: shards, pairs and volume metrics."""

    owners: np.ndarray    # int32 (L+1, N)
    workers: int
    method: str = "custom"
    per_layer: bool = False
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.owners = np.ascontiguousarray(self.owners, dtype=np.int32)

    @property
    def layers(self) -> int:
        return self.owners.shape[0] - 1

    @property
    def neurons(self) -> int:
        return self.owners.shape[1]

    def check(self, model: SparseDNN, where: str = "plan") -> None:
        """Raise InputError unless this plan fits `model` (shape, worker ids)."""
        expected = (model.layers + 1, model.neurons)
        if self.owners.ndim != 2 or self.owners.shape != expected:
            raise InputError(f"{where}: owners has shape {self.owners.shape}, but the model needs {expected} "
                             f"({model.layers} layers + 1, {model.neurons} neurons)")
        _check_owner_values(self.owners, self.workers, where)

    # ------------------------------------------------------------------ structure
    def pairs(self, model: SparseDNN, layer: int) -> LayerPairs:
        """Sends of layer `layer` (1-based) as (sender, receiver, nrows), without building shards."""
        w = model.weights[layer - 1]
        p, i = needed_pairs(w, self.owners[layer], self.workers)
        q = self.owners[layer - 1][i].astype(np.int64)
        remote = q != p
        keys, counts = np.unique(q[remote] * self.workers + p[remote], return_counts=True)
        return LayerPairs(keys // self.workers, keys % self.workers, counts.astype(np.int64))

    def shard(self, model: SparseDNN, p: int) -> WorkerShard:
        """Worker p's shard: its blocks of every layer and the positions it sends and receives."""
        if not 0 <= p < self.workers:
            raise InputError(f"worker {p} is outside 0..{self.workers - 1}")
        return self.shards(model, [p])[0]

    def shards(self, model: SparseDNN, workers: list[int] | None = None) -> list[WorkerShard]:
        """Shards of several workers (default: all), sharing the per-layer work."""
        self.check(model)
        ps = list(range(self.workers)) if workers is None else [int(p) for p in workers]
        n, P = self.neurons, self.workers
        layers: dict[int, list[LayerShard]] = {p: [] for p in ps}
        for l, (w, b) in enumerate(zip(model.weights, model.biases), start=1):
            prev, cur = self.owners[l - 1], self.owners[l]
            prev_order = np.argsort(prev, kind="stable")              # S_q(l-1) for every q, concatenated
            prev_start = np.searchsorted(prev[prev_order], np.arange(P + 1))
            prev_pos = np.empty(n, dtype=np.int64)                    # position of i in S_{prev[i]}(l-1)
            prev_pos[prev_order] = np.arange(n) - prev_start[prev[prev_order]]
            cur_order = np.argsort(cur, kind="stable")
            cur_start = np.searchsorted(cur[cur_order], np.arange(P + 1))
            cur_pos = np.empty(n, dtype=np.int64)
            cur_pos[cur_order] = np.arange(n) - cur_start[cur[cur_order]]
            # Non-zeros grouped by owner of their column (stable: rows, then columns stay sorted).
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(w.indptr))
            nz_owner = cur[w.indices]
            nz_order = np.argsort(nz_owner, kind="stable")
            nz_start = np.searchsorted(nz_owner[nz_order], np.arange(P + 1))
            need_p, need_i = needed_pairs(w, cur, P)
            need_start = np.searchsorted(need_p, np.arange(P + 1))
            need_q = prev[need_i]
            by_sender = np.argsort(need_q, kind="stable")             # keeps (receiver, row) order
            sender_start = np.searchsorted(need_q[by_sender], np.arange(P + 1))
            for p in ps:
                R = need_i[need_start[p]:need_start[p + 1]]
                S = cur_order[cur_start[p]:cur_start[p + 1]].astype(np.int64)
                sel = nz_order[nz_start[p]:nz_start[p + 1]]
                r_local = np.searchsorted(R, rows[sel])
                indptr = np.zeros(len(R) + 1, dtype=np.int64)
                indptr[1:] = np.cumsum(np.bincount(r_local, minlength=len(R)))
                block = sp.csr_matrix((w.data[sel], cur_pos[w.indices[sel]].astype(np.int32), indptr),
                                      shape=(len(R), len(S)))
                src = prev[R]
                mine = src == p
                recv = _group(src, P, p)
                # Rows p holds that another q needs: need pairs (q, i) with prev[i] == p, q != p.
                out = by_sender[sender_start[p]:sender_start[p + 1]]
                out = out[need_p[out] != p]
                bounds = np.searchsorted(need_p[out], np.arange(P + 1))
                send = {q: prev_pos[need_i[out[bounds[q]:bounds[q + 1]]]]
                        for q in range(P) if bounds[q + 1] > bounds[q]}
                layers[p].append(LayerShard.of(block, b[S].copy(), R.copy(), S, prev_pos[R[mine]],
                                               np.flatnonzero(mine), send, recv))
        inputs = self.owners[0]
        return [WorkerShard(p, P, n, float(model.ymax), np.flatnonzero(inputs == p).astype(np.int64), layers[p])
                for p in ps]

    # ------------------------------------------------------------------ metrics
    def metrics(self, model: SparseDNN) -> dict:
        """Volume, messages, per-worker send/receive, compute imbalance (keys of the CLI contract)."""
        self.check(model)
        P = self.workers
        sent = np.zeros(P, dtype=np.int64)
        received = np.zeros(P, dtype=np.int64)
        vol_layer, msg_layer = [], []
        for l in range(1, self.layers + 1):
            pr = self.pairs(model, l)
            sent += np.bincount(pr.sender, weights=pr.nrows, minlength=P).astype(np.int64)
            received += np.bincount(pr.receiver, weights=pr.nrows, minlength=P).astype(np.int64)
            vol_layer.append(int(pr.nrows.sum()))
            msg_layer.append(len(pr.nrows))
        final = self.owners[-1]
        load = _loads(self.owners, compute_weights(model), P)
        mean = load.sum(axis=1, keepdims=True) / P
        return {
            "method": self.method, "workers": P, "per_layer": bool(self.per_layer),
            "volume_rows": int(sum(vol_layer)), "messages": int(sum(msg_layer)),
            "max_send_rows": int(sent.max()), "max_recv_rows": int(received.max()),
            "imbalance": float(load.sum(0).max() / mean.sum() - 1) if mean.sum() else 0.0,
            "layer_imbalance": float((load.max(axis=1, keepdims=True) / mean - 1).max()) if mean.sum() else 0.0,
            "seconds": float(self.seconds),
            "gather_rows": int((final != 0).sum()), "gather_messages": int(len(np.unique(final[final != 0]))),
            "volume_per_layer": vol_layer, "messages_per_layer": msg_layer,
        }

    # ------------------------------------------------------------------ storage
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write PLAN.npz atomically (owners int32 (L+1, N) plus method metadata)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, owners=self.owners, workers=np.array(self.workers, np.int64),
                                    method=np.array(self.method), per_layer=np.array(bool(self.per_layer)),
                                    seconds=np.array(float(self.seconds)), format=np.array(PLAN_FORMAT),
                                    version=np.array(PLAN_VERSION, np.int64))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], model: SparseDNN | None = None) -> "Plan":
        """Read and validate PLAN.npz; with `model`, also check that it fits that model."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise InputError(f"{path}: plan file not found") from None
        except Exception as exc:
            raise InputError(f"{path}: not a readable plan file ({type(exc).__name__})") from None
        owners = arrays.get("owners")
        if owners is None or owners.ndim != 2 or owners.shape[0] < 2 or owners.shape[1] < 1:
            raise InputError(f"{path}: no 'owners' array of shape (layers + 1, neurons)")
        if not np.issubdtype(owners.dtype, np.integer):
            raise InputError(f"{path}: 'owners' must hold integers, not {owners.dtype}")
        workers = int(arrays["workers"]) if "workers" in arrays else int(owners.max()) + 1
        _check_owner_values(owners, workers, str(path))
        plan = cls(owners.astype(np.int32), workers, str(arrays.get("method", "custom")),
                   bool(arrays.get("per_layer", False)), float(arrays.get("seconds", 0.0)))
        if model is not None:
            plan.check(model, str(path))
        return plan


def _check_owner_values(owners: np.ndarray, workers: int, where: str) -> None:
    if workers < 1:
        raise InputError(f"{where}: workers must be at least 1, got {workers}")
    if owners.size and (owners.min() < 0 or owners.max() >= workers):
        raise InputError(f"{where}: owners must be worker ids in 0..{workers - 1}, "
                         f"found {int(owners.min())}..{int(owners.max())}")


def _group(src: np.ndarray, workers: int, me: int) -> dict[int, np.ndarray]:
    """Positions of `src` grouped by value (ascending positions), excluding `me`."""
    order = np.argsort(src, kind="stable")
    bounds = np.searchsorted(src[order], np.arange(workers + 1))
    return {q: order[bounds[q]:bounds[q + 1]].astype(np.int64)
            for q in range(workers) if q != me and bounds[q + 1] > bounds[q]}


def _loads(owners: np.ndarray, weights: np.ndarray, workers: int) -> np.ndarray:
    """(L, P) compute per worker per layer."""
    return np.stack([np.bincount(owners[l + 1], weights=weights[l], minlength=workers)
                     for l in range(weights.shape[0])])


def make_plan(model: SparseDNN, workers: int, method: str = DEFAULT_METHOD, per_layer: bool = DEFAULT_PER_LAYER,
              seed: int = 0, tolerance: float = DEFAULT_TOLERANCE) -> Plan:
    """Partition `model` for `workers` and time it."""
    check_method(method)
    check_workers(model, workers)
    start = time.perf_counter()
    owners = partition(model, workers, method, per_layer, seed, tolerance)
    return Plan(owners, workers, method, per_layer, time.perf_counter() - start)


__all__ = ["LayerShard", "WorkerShard", "Plan", "LayerPairs", "make_plan", "needed_pairs", "METHODS"]
