"""What one query asks of the workers, layer by layer: the activation profile, the weights, the
communication of a partition.

This system computes every *distinct* live activation row once (`kernel/serial.py`): rows that
die cost nothing from then on, rows that saturate to the all-32 row merge into one. So a
layer's work and messages depend on how many distinct rows enter it, how dense they are and
how many of them are saturated (every entry 32: such a row costs its id alone on the wire,
`channels/codec.py`). The default profile (`MNIST_PROFILE`) was measured on the real
N = 1024 Graph Challenge network with the first 1,200 MNIST inputs (`shared/graphchallenge/`);
`measure_profile` measures it for any model and inputs (`fsd recommend --exact`, `fsd calibrate`).

The paper's implementation computed and sent every live row (`PAPER_DENSITY`, the old
density knots): `profile="paper"` rebuilds its workload for the comparison with its runs.

O(1) in L: every per-layer quantity is flat after the profile's last knot except the RadiX-Net
place value, which cycles with period log2(N/16). So `Layers` holds the first layers one by
one and then one row per place value standing for all the later layers that share it
(`weight`); sums over layers are weighted sums. A 10^8-layer network costs as little as a
120-layer one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InputError
from .counts import check_positive

#: Activation density above which the kernels use dense blocks (kernel/blocks.py DENSE_THRESHOLD;
#: a test keeps them equal).
DENSE_THRESHOLD = 0.06

#: Measured on the real N = 1024 network, first 1,200 MNIST inputs (B = 1200), entering layer l
#: (`measure_profile`): (l, distinct live rows / B, density of those rows, fraction of them
#: saturated (every entry 32), live rows / B). From layer 19 on one distinct row (all 32)
#: remains, shared by the 19 live inputs.
MNIST_PROFILE = (
    (1, 1.0, 0.09986, 0.0, 1.0), (2, 0.915, 0.2938, 0.0, 0.915), (3, 0.655, 0.1904, 0.0, 0.655),
    (4, 0.345833, 0.2118, 0.0, 0.34583), (5, 0.1625, 0.3165, 0.0, 0.1625), (6, 0.0816667, 0.492, 0.0, 0.081667),
    (7, 0.0466667, 0.5312, 0.0, 0.046667), (8, 0.0258333, 0.7258, 0.0, 0.025833),
    (9, 0.0183333, 1.0, 0.0, 0.018333), (10, 0.0175, 1.0, 0.0, 0.0175), (11, 0.0175, 1.0, 0.09524, 0.0175),
    (12, 0.0133333, 1.0, 0.0625, 0.016667), (13, 0.01, 1.0, 0.08333, 0.016667), (14, 0.01, 0.918, 0.1667, 0.016667),
    (15, 0.00666667, 1.0, 0.125, 0.015833), (16, 0.0025, 1.0, 0.3333, 0.015833), (17, 0.00166667, 1.0, 0.5, 0.015833),
    (18, 0.00166667, 1.0, 0.5, 0.015833), (19, 0.0, 1.0, 1.0, 0.015833),
)
MNIST_BATCH = 1200

#: The paper's implementation: activation density entering layer l (all live rows, no merging),
#: measured on the same 1,200 inputs (RADIXNET.md section 5): nnz / (B x N); flat after layer 30.
PAPER_DENSITY = ((0, 0.104), (1, 0.269), (2, 0.125), (6, 0.0248), (7, 0.01875), (12, 0.01667), (30, 0.01583))
PROFILES = ("mnist", "paper")


def radix_bits(neurons: int) -> int:
    """log2(N/16): the layers in one RadiX-Net block (place values 1, 2, 4, ...)."""
    return max(1, round(math.log2(max(1, neurons // 16))))


@dataclass(frozen=True)
class Layers:
    """A query's layers, grouped: row k stands for `weight[k]` layers like layer `index[k]` (1-based).

    Per row: the weights' non-zeros (`nnz`), the distinct rows entering the layer (`rows`, a
    count for this batch), their density, the fraction of them saturated (`full`: every entry
    at ymax, sent as a row id alone), and whether the
    batch's row map changed entering it (so messages carry it again). `out_*`: the output of
    the last layer, which the gather sends to worker 0.
    """

    index: np.ndarray
    weight: np.ndarray
    nnz: np.ndarray
    rows: np.ndarray
    density: np.ndarray
    full: np.ndarray
    changed: np.ndarray
    out_rows: float
    out_density: float
    out_full: float

    @property
    def count(self) -> int:
        return round(float(self.weight.sum()))

    def total(self, values: np.ndarray) -> np.ndarray:
        """Sum over the layers (last axis) of per-row `values`, each row counted `weight` times."""
        return np.asarray(values) @ self.weight


@dataclass(frozen=True)
class Workload:
    """Sizes of one query: N neurons, L layers, batch B, and its grouped `Layers`."""

    neurons: int
    layers: int
    batch: int
    rows: Layers
    total_nnz: float
    profile: str = "mnist"

    @classmethod
    def build(cls, neurons: int, layers: int, batch: int, nnz: Sequence[int] | np.ndarray | None = None,
              density: float | None = None, profile: str = "mnist", measured: ActivationProfile | None = None,
              grouped: bool = True) -> Workload:
        """A query of `batch` inputs through `layers` layers of `neurons` neurons.

        `nnz`: the weights' non-zeros per layer (default 32 N each, a RadiX-Net). The activations
        follow `profile` ("mnist": measured MNIST dynamics, merged rows; "paper": the paper's
        implementation, every live row), or a constant `density` with every row alive and
        distinct (synthetic inputs that stay alive), or a `measured` profile. `grouped=False`
        keeps one row per layer (for per-layer volumes from a plan).
        """
        check_positive(neurons=neurons, layers=layers, batch=batch)
        if profile not in PROFILES:
            raise InputError(f"unknown activation profile {profile!r}; choose one of {', '.join(PROFILES)}")
        if density is not None and not 0 < density <= 1:
            raise InputError(f"density must be in (0, 1], got {density}")
        nnz_arr = None
        if nnz is not None:
            nnz_arr = np.asarray(nnz, dtype=float)
            if nnz_arr.shape != (layers,) or np.any(nnz_arr < 0) or not np.all(np.isfinite(nnz_arr)):
                raise InputError(f"nnz must list {layers} non-negative per-layer counts")
        if measured is not None:
            if measured.layers != layers:
                raise InputError(f"the measured profile has {measured.layers} layers, the model {layers}")
            head = layers
        elif density is not None:
            head = 1
        elif profile == "paper":
            head = PAPER_DENSITY[-1][0] + 1
        else:
            head = MNIST_PROFILE[-1][0]
        bits = radix_bits(neurons)
        explicit = min(layers, max(head, bits)) if grouped else layers
        if nnz_arr is not None and explicit < layers and np.any(nnz_arr[explicit:] != nnz_arr[explicit]):
            explicit = layers  # layers of different sizes: no grouping
        idx = np.arange(1, explicit + 1, dtype=float)
        weight = np.ones(explicit)
        if explicit < layers:  # one row per place value for the rest, weighted by how many layers share it
            tail = np.arange(explicit + 1, explicit + 1 + bits, dtype=float)
            counts = np.array([_count_phase(explicit + 1, layers, int(t), bits) for t in tail], dtype=float)
            keep = counts > 0
            idx = np.concatenate([idx, tail[keep]])
            weight = np.concatenate([weight, counts[keep]])
        li = idx.astype(int)
        if nnz_arr is None:
            w_nnz = np.full(idx.size, 32.0 * neurons)
            total_nnz = 32.0 * neurons * layers
        else:
            w_nnz = nnz_arr[li - 1]
            total_nnz = float(nnz_arr.sum())
        rows, dens, full, changed, out = _activations(li, layers, batch, density, profile, measured)
        return cls(neurons, layers, batch, Layers(idx, weight, w_nnz, rows, dens, full, changed, *out), total_nnz,
                   "measured" if measured is not None else ("constant" if density is not None else profile))

    def with_batch(self, batch: int) -> Workload:
        """The same network and activation profile for another batch size."""
        check_positive(batch=batch)
        r = self.rows
        if self.profile == "measured":  # scale the measured counts
            f = batch / self.batch
            r = replace(r, rows=np.maximum(np.minimum(r.rows * f, batch), np.minimum(r.rows, 1.0)),
                        out_rows=max(min(r.out_rows * f, batch), min(r.out_rows, 1.0)))
            return replace(self, batch=batch, rows=r)
        density = float(r.density[0]) if self.profile == "constant" else None
        rows, dens, full, changed, out = _activations(r.index.astype(int), self.layers, batch, density,
                                                      "paper" if self.profile == "paper" else "mnist", None)
        return replace(self, batch=batch, rows=replace(r, rows=rows, density=dens, full=full, changed=changed,
                                                       out_rows=out[0], out_density=out[1], out_full=out[2]))

    def work(self) -> tuple[np.ndarray, np.ndarray]:
        """(sparse, dense) multiply-adds per grouped row, over all workers.

        A layer's products run on its distinct rows: sparse x sparse while they are at most
        `DENSE_THRESHOLD` dense (every stored activation times its row's weights), else dense
        blocks times the weights (every distinct row times every weight).
        """
        r = self.rows
        per_row = r.rows * r.nnz
        sparse = r.density <= DENSE_THRESHOLD
        return np.where(sparse, per_row * r.density, 0.0), np.where(sparse, 0.0, per_row)

    @property
    def edges(self) -> float:
        """Graph Challenge edges of the query: B x total weights (for edges/s)."""
        return float(self.batch * self.total_nnz)

    @property
    def max_rows(self) -> float:
        return float(max(self.rows.rows.max(initial=0.0), self.rows.out_rows))


def _count_phase(first: int, last: int, layer: int, period: int) -> int:
    """How many layers in first..last have the same place value as `layer` (same (l-1) mod period)."""
    start = first + ((layer - first) % period)
    return 0 if start > last else (last - start) // period + 1


def _activations(index: np.ndarray, layers: int, batch: int, density: float | None, profile: str,
                 measured: ActivationProfile | None):
    """Per grouped row: distinct rows, density, full fraction, map changed; and the output's."""
    b = float(batch)
    if measured is not None:
        m = measured.scaled(batch)
        i = index - 1
        return (m.rows[i], m.density[i], m.full[i], m.changed[i],
                (float(m.rows[-1]), float(m.density[-1]), float(m.full[-1])))
    if density is not None:
        n = index.size
        changed = (index == 1).astype(float)
        return np.full(n, b), np.full(n, density), np.zeros(n), changed, (b, density, 0.0)
    if profile == "paper":
        x, y = np.array(PAPER_DENSITY, dtype=float).T
        dens = np.exp(np.interp(index - 1, x, np.log(y)))
        out = float(np.exp(np.interp(layers, x, np.log(y))))
        n = index.size
        return np.full(n, b), dens, np.zeros(n), np.zeros(n), (b, out, 0.0)
    table = np.array(MNIST_PROFILE, dtype=float)
    last = int(table[-1, 0])

    def at(layer: np.ndarray):
        k = np.minimum(layer, last).astype(int) - 1
        return table[k, 1], table[k, 2], table[k, 3], table[k, 4]

    frac, dens, full, alive = at(index)
    rows = np.maximum(np.minimum(b * frac, b), np.minimum(1.0, b * alive))
    pf, _, _, pa = at(np.maximum(index - 1, 1))
    changed = ((index == 1) | (frac != pf) | (alive != pa)).astype(float)
    of, od, ofl, oa = at(np.array([layers + 1]))
    out_rows = float(max(min(b * of[0], b), min(1.0, b * oa[0])))
    return rows, dens, full, changed, (out_rows, float(od[0]), float(ofl[0]))


# ----------------------------------------------------------------------------- measured profiles


@dataclass(frozen=True)
class ActivationProfile:
    """Measured activations of a model on a batch: per layer l = 1..L (input to l) and the output.

    Arrays have L+1 entries: distinct non-zero rows, their density, the fraction of them
    saturated (every entry = ymax), and whether the batch's row map changed entering the layer.
    """

    batch: int
    neurons: int
    rows: np.ndarray
    density: np.ndarray
    full: np.ndarray
    changed: np.ndarray

    @property
    def layers(self) -> int:
        return self.rows.size - 1

    def scaled(self, batch: int) -> ActivationProfile:
        if batch == self.batch:
            return self
        f = batch / self.batch
        return replace(self, batch=batch,
                       rows=np.maximum(np.minimum(self.rows * f, batch), np.minimum(self.rows, 1.0)))


def measure_profile(model: Any, inputs: Any) -> ActivationProfile:
    """Run `model` on `inputs` (B x N) as the serial kernel does and record each layer's distinct rows.

    Sparse products only (the profile, not the speed, matters here): a few seconds for the
    N = 1024, 120-layer network on 1,200 inputs.
    """
    import scipy.sparse as sp

    from ..kernel.blocks import dedup_rows
    from ..kernel.serial import layer_step

    n = model.neurons
    y = sp.csr_matrix(inputs, dtype=np.float32)
    y.sort_indices()
    batch = y.shape[0]
    alive = np.diff(y.indptr) > 0
    owner = np.arange(int(alive.sum()))
    y, remap = dedup_rows(y[alive])
    owner = remap[owner]
    rows, dens, full, changed = [], [], [], []
    prev = None
    for w, bias in zip(model.weights, model.biases):
        _record(y, n, model.ymax, rows, dens, full)
        key = (y.shape[0], owner.size)
        changed.append(1.0 if key != prev else 0.0)
        prev = key
        if y.shape[0] == 0:
            continue
        z = layer_step(y, w, bias, model.ymax)
        live = np.diff(z.indptr) > 0
        renumber = np.cumsum(live) - 1
        kept = live[owner]
        owner = renumber[owner[kept]]
        y, remap = dedup_rows(z[live] if not live.all() else z)
        owner = remap[owner]
    _record(y, n, model.ymax, rows, dens, full)
    changed.append(1.0 if (y.shape[0], owner.size) != prev else 0.0)
    return ActivationProfile(batch, n, np.array(rows, float), np.array(dens, float), np.array(full, float),
                             np.array(changed, float))


def _record(y: Any, n: int, ymax: float, rows: list, dens: list, full: list) -> None:
    """Append a layer's distinct rows, their density and the fraction of them saturated (every
    entry = ymax: the codec sends such a row as its row id alone)."""
    count = y.shape[0]
    rows.append(float(count))
    dens.append(y.nnz / (count * n) if count else 0.0)
    if not count:
        full.append(0.0)
        return
    at_max = np.add.reduceat((y.data == ymax).astype(np.int64), y.indptr[:-1]) if y.nnz else np.zeros(count)
    at_max = np.where(np.diff(y.indptr) > 0, at_max, 0)
    full.append(float(np.count_nonzero(at_max == n)) / count)


# ----------------------------------------------------------------------------- communication


@dataclass(frozen=True)
class CommProfile:
    """Per grouped layer row and per worker count: rows sent (volume) and non-empty sender pairs.

    `volume_rows` and `pairs` have shape (len(workers), rows of `Layers`). Estimates for a
    RadiX-Net (`radixnet`), or exact from a plan (`from_plan`, one worker count).
    """

    workers: np.ndarray
    volume_rows: np.ndarray
    pairs: np.ndarray
    method: str
    exact: bool = False
    #: Fraction of a worker's columns whose input rows it holds itself (its *interior*,
    #: computed while the messages travel), same shape as `pairs`; None: unknown (none).
    interior: np.ndarray | None = None
    #: Exact per-round counts of a run's frames, by variant (`with_frames`): "bytes", "frames",
    #: and for the queue "batches" and "billed" (PublishBatch calls and billed chunks), each
    #: (1, L+1): the layers, then the gather.
    rounds: dict | None = None

    @classmethod
    def radixnet(cls, neurons: int, index: np.ndarray, workers: Sequence[int] | np.ndarray | int,
                 method: str = "hypergraph", nnz: np.ndarray | None = None) -> CommProfile:
        """Expected volumes for a RadiX-Net (radix 2, 16 dense copies; RADIXNET.md section 3).

        Random / block partitions: each row's `deg` outputs land on independent workers.
        Hypergraph / metis: the partition groups the 16 columns of a residue class, so a row's
        outputs sit in 2 classes (1 worker each while P <= N/16, else P/(N/16) each).
        """
        n = float(neurons)
        ps = np.atleast_1d(np.asarray(workers, dtype=float))[:, None]
        index = np.asarray(index, dtype=float)[None, :]
        deg = np.full(index.shape, 32.0) if nnz is None else np.maximum(np.asarray(nnz, float)[None, :] / n, 1.0)
        q = 1.0 - 1.0 / ps
        if method in ("random", "block"):
            distinct = ps * (1.0 - q ** deg)
            vol_row = distinct * q
            interior = (1.0 / ps) ** deg * np.ones(index.shape)  # all of a column's inputs on its worker
        elif method in ("hypergraph", "metis"):
            base = max(1, neurons // 16)
            bits = radix_bits(neurons)
            pv = 2.0 ** ((index - 1) % bits)
            together = np.clip(1.0 - pv * ps / base, 0.0, 1.0)  # both classes on one worker
            interior = np.where(ps <= base, together, 0.0)  # a column's two input classes both held
            distinct = np.where(ps <= base, 2.0 - together, np.minimum(2.0 * ps / base, deg))
            block0 = index <= bits  # unpermuted block: a row's owner holds its class
            vol_row = np.minimum(np.where(block0, distinct - 1.0, distinct * q), distinct)
        else:
            raise InputError(f"unknown partition method {method!r}")
        vol_row = np.clip(vol_row, 0.0, np.maximum(ps - 1.0, 0.0))
        need = np.clip(vol_row / np.maximum(ps - 1.0, 1.0), 0.0, 1.0)
        pairs = ps * (ps - 1.0) * (1.0 - (1.0 - need) ** (n / ps))
        single = ps[:, 0] <= 1
        vol = n * vol_row
        vol[single], pairs[single] = 0.0, 0.0
        interior = np.where(single[:, None], 1.0, interior)
        return cls(ps[:, 0].astype(int), vol, pairs, method, interior=interior)

    @classmethod
    def from_plan(cls, model: Any, plan: Any, method: str = "plan") -> CommProfile:
        """Exact volumes from a plan: `plan.pairs(model, l).nrows` per non-empty (sender, receiver)."""
        nrows = [np.asarray(plan.pairs(model, l).nrows) for l in range(1, model.layers + 1)]
        vols = np.array([[float(r.sum()) for r in nrows]])
        pairs = np.array([[float(np.count_nonzero(r)) for r in nrows]])
        interior = None
        owners = getattr(plan, "owners", None)
        if owners is not None:
            interior = np.array([[_interior(w, owners[l - 1], owners[l]) for l, w in enumerate(model.weights, 1)]])
        return cls(np.array([int(plan.workers)]), vols, pairs, method, exact=True, interior=interior)

    def with_frames(self, variant: str, frames: Sequence[Sequence[tuple[int, int, int]]],
                    attr_bytes: Any = None) -> CommProfile:
        """The same profile with the exact frames of a run of `variant` (`run.predict.run_frames`:
        per round, (src, dst, frame bytes)); the queue's publishes are packed as the channel packs them."""
        from .counts import DEFAULT_ATTR_BYTES, predict_requests

        per: dict[str, list[float]] = {"bytes": [], "frames": [], "batches": [], "billed": []}
        for rnd in frames:
            per["bytes"].append(float(sum(f[2] for f in rnd)))
            per["frames"].append(float(len(rnd)))
            if variant == "queue" and rnd:
                c = predict_requests("queue", [rnd], int(self.workers[0]),
                                     DEFAULT_ATTR_BYTES if attr_bytes is None else attr_bytes)
                per["batches"].append(float(c.requests.get("sns:PublishBatch", 0)))
                per["billed"].append(float(c.billed.get("sns:PublishBatch", 0)))
            else:
                per["batches"].append(0.0)
                per["billed"].append(0.0)
        rounds = dict(self.rounds or {})
        rounds[variant] = {k: np.array([v]) for k, v in per.items()}
        return replace(self, rounds=rounds)

    def take(self, index: np.ndarray) -> CommProfile:
        """The volumes of the grouped rows `index` (1-based layers) of a per-layer exact profile."""
        i = np.asarray(index, dtype=int) - 1
        return replace(self, volume_rows=self.volume_rows[:, i], pairs=self.pairs[:, i],
                       interior=None if self.interior is None else self.interior[:, i])


def _interior(w: Any, prev: np.ndarray, cur: np.ndarray) -> float:
    """Fraction of a layer's columns all of whose input rows live on the column's own worker."""
    coo = w.tocoo()
    remote = prev[coo.row] != cur[coo.col]
    n = w.shape[1]
    return 1.0 - float(np.count_nonzero(np.bincount(coo.col[remote], minlength=n))) / n if n else 1.0
