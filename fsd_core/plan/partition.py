"""Neuron -> worker assignment: which worker computes which output neuron of every layer.

A partition is an int32 array `owners` of shape (L+1, N): `owners[0][i]` holds input feature
i, `owners[l][j]` computes output j of layer l (DESIGN.md, command line contract). Methods:

- `block`: contiguous ranges; `random`: a seeded shuffle cut into ranges (the baseline);
- `metis`: pymetis on the neuron graph whose edge weights count the layers linking i and j;
- `hypergraph`: Mt-KaHyPar on the column-net hypergraph with the connectivity objective
  (km1 = sum of lambda - 1), which *is* the row-wise communication volume (Catalyurek &
  Aykanat, 1999). Shared partition: one net per (layer l, input i) = {i} + {j : W_l[i, j]
  != 0}. Per layer: net {j : W_l[i, j] != 0} plus a fixed vertex standing for the previous
  owner of i, so km1 of every layer's problem is again that layer's exact volume.

Every method balances compute: neuron j at layer l costs nnz(W_l[:, j]) + 1 (its multiply-adds
plus one bias/clamp), within `tolerance` (3%) where the partitioner can guarantee it
(a single heavy neuron can exceed it; ranges are within one neuron's weight of the mean).
A shared partition uses the neuron's cost summed over layers and sets owners[l] alike for all
l; a per-layer partition balances every layer on its own. In a per-layer partition the input
features of layer 1 go to the worker owning most of the outputs they feed (the least volume).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..model.network import SparseDNN

METHODS = ("block", "random", "metis", "hypergraph")
#: Measured in docs/partitioning.md: per-layer hypergraph partitions move the fewest rows.
DEFAULT_METHOD = "hypergraph"
DEFAULT_PER_LAYER = True
DEFAULT_TOLERANCE = 0.03
#: Mt-KaHyPar threads (the machine and a Lambda worker both have about 2 cores).
THREADS = 2

_INSTALL_HINT = {"metis": "pymetis", "hypergraph": "mtkahypar"}


def compute_weights(model: SparseDNN) -> np.ndarray:
    """(L, N) int64: cost of output neuron j at layer l = column non-zeros + 1."""
    n = model.neurons
    return np.stack([np.bincount(w.indices, minlength=n) + 1 for w in model.weights]).astype(np.int64)


def check_workers(model: SparseDNN, workers: int) -> int:
    """P must be an integer in [1, N]: more workers than neurons would leave some idle."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)):
        raise InputError(f"workers must be an integer, got {workers!r}")
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if workers > model.neurons:
        raise InputError(f"workers ({workers}) must not exceed the number of neurons ({model.neurons})")
    return int(workers)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"unknown partition method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def partition(model: SparseDNN, workers: int, method: str = DEFAULT_METHOD, per_layer: bool = DEFAULT_PER_LAYER,
              seed: int = 0, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Assign every neuron of every layer to one of `workers`; returns owners (L+1, N) int32."""
    workers = check_workers(model, workers)
    check_method(method)
    if not (0 < tolerance < 1):
        raise InputError(f"tolerance must be in (0, 1), got {tolerance}")
    n, layers = model.neurons, model.layers
    if workers == 1:
        return np.zeros((layers + 1, n), dtype=np.int32)
    weights = compute_weights(model)
    if method in ("block", "random"):
        rng = np.random.default_rng(seed)
        if not per_layer:
            order = np.arange(n) if method == "block" else rng.permutation(n)
            owners = np.broadcast_to(split_by_weight(order, weights.sum(0), workers), (layers + 1, n))
            return np.ascontiguousarray(owners, dtype=np.int32)
        rows = []
        for l in range(layers):
            order = np.arange(n) if method == "block" else rng.permutation(n)
            rows.append(split_by_weight(order, weights[l], workers))
        first = rows[0] if method == "block" else split_by_weight(rng.permutation(n), np.ones(n), workers)
        return np.stack([first] + rows).astype(np.int32)
    if method == "metis":
        return _metis(model, workers, weights, per_layer, seed, tolerance)
    return _hypergraph(model, workers, weights, per_layer, seed, tolerance)


def split_by_weight(order: np.ndarray, weights: np.ndarray, parts: int) -> np.ndarray:
    """Cut `order` into `parts` consecutive ranges of about equal weight (midpoint rule).

    Each part's weight is within one item's weight of total/parts; with equal weights and
    parts dividing len(order) every part gets exactly len(order)/parts items.
    """
    w = np.asarray(weights, dtype=np.float64)[order]
    csum = np.cumsum(w)
    total = csum[-1] if len(csum) else 0.0
    owner = np.empty(len(order), dtype=np.int32)
    if total <= 0:
        owner[order] = np.arange(len(order)) * parts // max(len(order), 1)
        return owner
    owner[order] = np.minimum(((csum - w / 2) * parts / total).astype(np.int64), parts - 1)
    return owner


def majority_owner(w: sp.csr_matrix, out_owner: np.ndarray, workers: int, fallback: np.ndarray) -> np.ndarray:
    """Per input row, the worker owning most of its outputs (rows without outputs: fallback)."""
    n = w.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(w.indptr))
    counts = np.bincount(rows * workers + out_owner[w.indices], minlength=n * workers).reshape(n, workers)
    best = counts.argmax(axis=1).astype(np.int32)
    empty = np.diff(w.indptr) == 0
    best[empty] = fallback[empty]
    return best


def _pattern(w: sp.csr_matrix, dtype=np.int64) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(w.nnz, dtype=dtype), w.indices, w.indptr), shape=w.shape)


# ----------------------------------------------------------------------------- metis
def _import(method: str):
    try:
        if method == "metis":
            import pymetis
            return pymetis
        import mtkahypar
        return mtkahypar
    except (ImportError, OSError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"the {method} partitioner needs the {_INSTALL_HINT[method]} package, which does not "
                         f"import ({why}): pip install {_INSTALL_HINT[method]}, or choose another method") from None


def _metis_part(graph: sp.csr_matrix, vweights: np.ndarray, parts: int, seed: int, tolerance: float) -> np.ndarray:
    """pymetis k-way on a symmetric weighted graph (diagonal ignored); falls back to ranges."""
    pymetis = _import("metis")
    graph = graph.tocsr().astype(np.int64)
    graph.setdiag(0)
    graph.eliminate_zeros()
    n = graph.shape[0]
    if graph.nnz == 0:
        return split_by_weight(np.arange(n), vweights, parts)
    opts = pymetis.Options(ufactor=max(1, int(round(tolerance * 1000))), seed=int(seed) % (2**31))
    adjacency = pymetis.CSRAdjacency(graph.indptr, graph.indices)
    _, part = pymetis.part_graph(parts, adjacency, vweights=vweights.astype(np.int64), eweights=graph.data,
                                 options=opts)
    return repair_balance(np.asarray(part, dtype=np.int32), vweights, parts, tolerance)


def repair_balance(owner: np.ndarray, weights: np.ndarray, parts: int, tolerance: float) -> np.ndarray:
    """Move the lightest neurons of overloaded parts to the lightest parts (METIS's ufactor is
    a target, not a guarantee); stops when no move fits under (1 + tolerance) * mean."""
    owner = owner.copy()
    weights = np.asarray(weights, dtype=np.float64)
    load = np.bincount(owner, weights=weights, minlength=parts)
    budget = (1 + tolerance) * weights.sum() / parts
    for p in np.flatnonzero(load > budget):           # a loop over workers, then over moved neurons
        for v in np.flatnonzero(owner == p)[np.argsort(weights[owner == p], kind="stable")]:
            if load[p] <= budget:
                break
            dst = int(load.argmin())
            if load[dst] + weights[v] > budget:
                break
            owner[v] = dst
            load[p] -= weights[v]
            load[dst] += weights[v]
    return owner


def _metis(model: SparseDNN, workers: int, weights: np.ndarray, per_layer: bool, seed: int,
           tolerance: float) -> np.ndarray:
    n, layers = model.neurons, model.layers
    if not per_layer:
        # Neuron graph: i -- j weighted by the number of layers where i feeds j (or j feeds i).
        a = sp.csr_matrix((n, n), dtype=np.int64)
        for w in model.weights:
            a = a + _pattern(w)
        owner = _metis_part(a + a.T, weights.sum(0), workers, seed, tolerance)
        return np.broadcast_to(owner, (layers + 1, n)).astype(np.int32)
    owners = np.empty((layers + 1, n), dtype=np.int32)
    for l, w in enumerate(model.weights, start=1):
        b = _pattern(w)
        part = _metis_part(b.T @ b, weights[l - 1], workers, seed + l, tolerance)  # outputs sharing inputs
        if l == 1:
            owners[1] = part
            owners[0] = majority_owner(w, part, workers, part)
            continue
        owners[l] = relabel_to_previous(w, part, owners[l - 1], workers)
    return owners


# ------------------------------------------------------------------------ hypergraph
_MT = None


def _mt():
    """The process-wide Mt-KaHyPar initializer (it may be created only once)."""
    global _MT
    mtk = _import("hypergraph")
    if _MT is None:
        _MT = mtk.initialize(THREADS, False)
    return mtk, _MT


def shared_nets(model: SparseDNN) -> tuple[np.ndarray, np.ndarray]:
    """Column-net hypergraph of the shared partition as (net_ptr, pins), single-pin nets dropped.

    Net (l, i) = {i} + {j : W_l[i, j] != 0}: with one owner per neuron its lambda - 1 is the
    number of workers other than i's owner that need row i at layer l.
    """
    n = model.neurons
    ptrs, pins = [], []
    offset = 0
    ids = np.arange(n, dtype=np.int64)
    for w in model.weights:
        rows = np.repeat(ids, np.diff(w.indptr))
        keep = w.indices != rows                      # i itself is prepended below
        kept = np.zeros(n + 1, dtype=np.int64)
        kept[1:] = np.cumsum(np.bincount(rows[keep], minlength=n))
        size = np.diff(kept) + 1
        net_ptr = np.zeros(n + 1, dtype=np.int64)
        net_ptr[1:] = np.cumsum(size)
        p = np.empty(net_ptr[-1], dtype=np.int64)
        p[net_ptr[:-1]] = ids
        body = np.ones(len(p), dtype=bool)
        body[net_ptr[:-1]] = False
        p[body] = w.indices[keep]
        real = size > 1
        sizes = size[real]
        sel = np.repeat(real, size)
        pins.append(p[sel])
        ptrs.append(offset + np.cumsum(sizes))
        offset += int(sizes.sum())
    ptr = np.concatenate([[0]] + ptrs).astype(np.int64)
    return ptr, (np.concatenate(pins) if pins else np.zeros(0, dtype=np.int64))


def km1(net_ptr: np.ndarray, pins: np.ndarray, owner: np.ndarray, workers: int, net_weights=None) -> int:
    """Connectivity metric sum_nets w * (lambda - 1) of a hypergraph partition (numpy only)."""
    nets = np.repeat(np.arange(len(net_ptr) - 1, dtype=np.int64), np.diff(net_ptr))
    pairs = np.unique(nets * workers + owner[pins])
    lam = np.bincount(pairs // workers, minlength=len(net_ptr) - 1)
    if net_weights is None:
        return int((lam - 1).clip(0).sum())
    return int(((lam - 1).clip(0) * net_weights).sum())


def _kahypar_part(nv: int, net_ptr: np.ndarray, pins: np.ndarray, vweights: np.ndarray, parts: int, seed: int,
                  tolerance: float, fixed: np.ndarray | None = None, net_weights: np.ndarray | None = None) -> np.ndarray:
    mtk, mt = _mt()
    mtk.set_seed(int(seed) % (2**31))
    ctx = mt.context_from_preset(mtk.PresetType.DEFAULT)
    ctx.set_partitioning_parameters(parts, float(tolerance), mtk.Objective.KM1)
    ctx.logging = False
    nets = np.split(pins.astype(np.int64), net_ptr[1:-1]) if len(net_ptr) > 1 else []
    if not nets:
        return split_by_weight(np.arange(nv), vweights, parts)
    ew = [1] * len(nets) if net_weights is None else np.asarray(net_weights, dtype=np.int64).tolist()
    hg = mt.create_hypergraph(ctx, nv, len(nets), nets, vweights.astype(np.int64).tolist(), ew)
    if fixed is not None:
        hg.add_fixed_vertices(fixed.tolist(), parts)
    return np.asarray(hg.partition(ctx).get_partition(), dtype=np.int32)


_HASH = np.random.default_rng(12345).integers(0, 2**63, size=(2, 1 << 20), dtype=np.uint64)


def _set_hash(ptr: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Two 64-bit sums of random keys per set (ptr, members); equal sets hash equal."""
    keys = members % _HASH.shape[1] + (members // _HASH.shape[1]) * 7919
    sizes = np.diff(ptr)
    out = np.zeros((len(sizes), 3), dtype=np.uint64)
    out[:, 2] = sizes
    nonempty = sizes > 0
    for k in range(2):
        vals = _HASH[k][keys % _HASH.shape[1]]
        if len(vals):
            out[nonempty, k] = np.add.reduceat(vals, ptr[:-1][nonempty])
    return out


def _unique_sets(ptr: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group equal sets: (representative index per group, group of every set)."""
    h = _set_hash(ptr, members)
    _, first, inverse = np.unique(h, axis=0, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _layer_hypergraph_part(w: sp.csr_matrix, vw: np.ndarray, prev: np.ndarray | None, workers: int, seed: int,
                           tolerance: float) -> np.ndarray:
    """Partition one layer's outputs on its column-net hypergraph, exact-volume objective.

    Columns with the same input rows are twins (RadiX-Net: the 16 columns of a residue) and
    are merged into one vertex, then equal nets into one weighted net: km1 of the small
    problem is still the layer's exact volume. If merging makes the balance unreachable the
    unmerged problem is solved instead.
    """
    n = w.shape[0]
    csc = w.tocsc()
    first, group = _unique_sets(csc.indptr.astype(np.int64), csc.indices.astype(np.int64))
    ngroups = len(first)
    gweight = np.bincount(group, weights=vw, minlength=ngroups).astype(np.int64)
    budget = (1 + tolerance) * vw.sum() / workers
    if gweight.max() > budget or ngroups < workers:
        group, ngroups, gweight = np.arange(n), n, vw.astype(np.int64)
    # Nets: per input row, its distinct output groups (+ the fixed vertex of its previous owner).
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(w.indptr))
    keys = np.unique(rows * (ngroups + workers) + group[w.indices])
    if prev is not None:
        keys = np.union1d(keys, np.arange(n, dtype=np.int64) * (ngroups + workers) + ngroups + prev[:n])
    net_row, pins = keys // (ngroups + workers), keys % (ngroups + workers)
    sizes = np.bincount(net_row, minlength=n)
    ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rep, net_group = _unique_sets(ptr, pins)
    net_weight = np.bincount(net_group, minlength=len(rep))
    keep = np.argsort(rep)
    keep = keep[sizes[rep[keep]] > 1]                       # single-pin nets cannot be cut
    rep, net_weight = rep[keep], net_weight[keep]
    chosen = np.zeros(n, dtype=bool)
    chosen[rep] = True
    ptr2 = np.concatenate([[0], np.cumsum(sizes[rep])]).astype(np.int64)
    pins2 = pins[np.repeat(chosen, sizes)]
    if prev is None:
        return _kahypar_part(ngroups, ptr2, pins2, gweight, workers, seed, tolerance, net_weights=net_weight)[group]
    fixed = np.concatenate([np.full(ngroups, -1), np.arange(workers)])
    vweights = np.concatenate([gweight, np.ones(workers, dtype=np.int64)])
    with_fixed = _kahypar_part(ngroups + workers, ptr2, pins2, vweights, workers, seed, tolerance, fixed,
                               net_weight)[:ngroups]
    # Second candidate: the outputs alone (no fixed pins), labels matched to the previous owners.
    free_pins = pins2 < ngroups
    free_ptr = np.concatenate([[0], np.cumsum(np.add.reduceat(free_pins, ptr2[:-1]))]) if len(rep) else ptr2
    free = _kahypar_part(ngroups, free_ptr, pins2[free_pins], gweight, workers, seed, tolerance,
                         net_weights=net_weight)
    best, best_volume = None, None
    for cand in (with_fixed, free):
        owner = relabel_to_previous(w, cand[group], prev[:n], workers)
        volume = layer_volume(w, owner, prev[:n], workers)
        if best_volume is None or volume < best_volume:
            best, best_volume = owner, volume
    return best


def layer_volume(w: sp.csr_matrix, owner: np.ndarray, prev: np.ndarray, workers: int) -> int:
    """Rows moved at one layer: pairs (i, p) with p owning an output of row i and p != prev[i]."""
    n = w.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(w.indptr))
    pairs = np.unique(rows * workers + owner[w.indices])
    return int((prev[pairs // workers] != pairs % workers).sum())


def relabel_to_previous(w: sp.csr_matrix, owner: np.ndarray, prev: np.ndarray, workers: int) -> np.ndarray:
    """Permute part labels to minimise the layer volume given the previous owners.

    Volume = sum_i lambda_i - #{i : prev[i] among the parts of row i}; lambda is label-free, so
    the best relabelling is a linear assignment on M[a, p] = #{i : a in parts(i), prev[i] = p}.
    """
    from scipy.optimize import linear_sum_assignment

    n = w.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(w.indptr))
    pairs = np.unique(rows * workers + owner[w.indices])
    m = np.bincount((pairs % workers) * workers + prev[pairs // workers], minlength=workers * workers)
    _, relabel = linear_sum_assignment(m.reshape(workers, workers), maximize=True)
    return relabel[owner].astype(np.int32)


def _hypergraph(model: SparseDNN, workers: int, weights: np.ndarray, per_layer: bool, seed: int,
                tolerance: float) -> np.ndarray:
    n, layers = model.neurons, model.layers
    if not per_layer:
        ptr, pins = shared_nets(model)
        owner = _kahypar_part(n, ptr, pins, weights.sum(0), workers, seed, tolerance)
        return np.broadcast_to(owner, (layers + 1, n)).astype(np.int32)
    owners = np.empty((layers + 1, n), dtype=np.int32)
    for l, w in enumerate(model.weights, start=1):
        prev = None if l == 1 else owners[l - 1]
        owners[l] = _layer_hypergraph_part(w, weights[l - 1], prev, workers, seed + l, tolerance)
        if l == 1:
            owners[0] = majority_owner(w, owners[1], workers, owners[1])
    return owners


def check_available(method: str) -> str:
    """`method`, if its partitioner package imports; else InputError with the install hint."""
    check_method(method)
    if method in _INSTALL_HINT:
        _import(method)
    return method


def default_method(notice: Callable[[str], None] | None = None) -> str:
    """hypergraph when Mt-KaHyPar imports, else metis; `notice` gets one line saying why.

    mtkahypar is a dependency, but a platform without its wheels (or a broken build) must
    still partition: the default falls back, an explicit `hypergraph` is an error (`_import`).
    """
    try:
        import mtkahypar  # noqa: F401
    except (ImportError, OSError) as exc:
        if notice is not None:
            why = " ".join(str(exc).split()) or type(exc).__name__
            notice(f"fsd: notice: partitioning with metis, not hypergraph: mtkahypar does not import "
                   f"({why}); pip install mtkahypar for the hypergraph partitioner")
        return "metis"
    return DEFAULT_METHOD
