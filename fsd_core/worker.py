"""One worker's layer loop: send, compute what is local, receive, finish, repeat.

The worker sees only its shard (plan.WorkerShard) and a Channel; it never imports boto3.

Exactness: every output column is computed by one sparse product over its input rows in
ascending global order, exactly as the serial kernel does, so results are bit-identical to
it (float32 sums are order-sensitive; partial sums added as blocks arrive would not be).

Overlap: output columns whose input rows this worker owns ("interior" columns; most of them
under a good partition) are computed while the messages are in flight; the "boundary"
columns are computed once every expected block has arrived.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from .channels.base import Channel
from .plan import LayerShard, WorkerShard
from .serial import DENSE_THRESHOLD, activate, dedup_rows


@dataclass
class LayerStats:
    """What one worker did in one layer (the gather is layer L+1)."""

    layer: int
    compute_s: float = 0.0
    wait_s: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    billed_requests: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkerOutcome:
    """The worker's per-layer statistics and, on worker 0, the gathered final activations."""

    worker: int
    layers: list[LayerStats]
    final: sp.csr_matrix | None = None
    duplicates: int = 0
    foreign: int = 0

    def report(self) -> dict:
        return {"worker": self.worker, "layers": [asdict(s) for s in self.layers],
                "duplicates": self.duplicates, "foreign": self.foreign}


class _LayerKernel:
    """Precomputed per-layer pieces: interior/boundary column split and their weight blocks."""

    def __init__(self, ls: LayerShard) -> None:
        self.shard = ls
        nrows, ncols = ls.weights.shape
        is_local_row = np.zeros(nrows, dtype=bool)
        is_local_row[ls.local_dst] = True
        remote_rows = np.flatnonzero(~is_local_row)
        boundary = np.zeros(ncols, dtype=bool)
        if len(remote_rows):
            boundary[np.unique(ls.weights[remote_rows].indices)] = True
        self.interior = np.flatnonzero(~boundary)
        self.boundary = np.flatnonzero(boundary)
        wcsc = ls.weights.tocsc()
        self.w_interior = sp.csr_matrix(wcsc[:, self.interior][ls.local_dst])
        self.w_boundary = sp.csr_matrix(wcsc[:, self.boundary])


def _place(pieces: list[tuple[sp.csr_matrix, np.ndarray]], nrows: int, ncols: int) -> sp.csr_matrix:
    """Assemble a nrows x ncols CSR from column blocks, each with its target column positions."""
    coos = [sp.coo_matrix(block) for block, _ in pieces]
    rows = np.concatenate([c.row for c in coos]) if coos else np.zeros(0, np.int32)
    cols = np.concatenate([pos[c.col] for c, (_, pos) in zip(coos, pieces)]) if coos else np.zeros(0, np.int64)
    data = np.concatenate([c.data for c in coos]) if coos else np.zeros(0, np.float32)
    out = sp.csr_matrix((data.astype(np.float32, copy=False), (rows, cols)), shape=(nrows, ncols))
    out.sort_indices()
    return out


def product(x: sp.csr_matrix, w: sp.csr_matrix) -> sp.csr_matrix:
    """Z = x @ w summed in the canonical order (ascending input neuron), as the serial kernel.

    `x` must have sorted column indices. Identical rows of `x` (saturated all-ymax rows are
    common) are computed once; a dense `x` goes through scipy's CSC-times-dense kernel on the
    free view W^T, which adds the inputs in ascending order like the sparse product does.
    """
    unique, remap = dedup_rows(x)
    rows, k = unique.shape
    if rows and k and unique.nnz > DENSE_THRESHOLD * rows * k:
        z = sp.csr_matrix(np.ascontiguousarray((w.T @ np.ascontiguousarray(unique.toarray().T)).T))
    else:
        z = (unique @ w).tocsr()
    if z.shape[0] != x.shape[0]:
        z = z[remap]
    return z


def run_worker(
    shard: WorkerShard,
    inputs: sp.csr_matrix,
    channel: Channel,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    fault: dict | None = None,
    launch_grace: float = 0.0,
) -> WorkerOutcome:
    """Run every layer of this worker's shard; worker 0 also gathers the final activations.

    `inputs` is B x |shard.input_cols| (this worker's input features). In layer 1 a receive
    may wait `launch_grace` seconds longer: the senders may still be starting. `fault` injects a crash
    or a hang at a layer, for the failure tests: {"worker": p, "layer": l, "kind": "crash"|"hang"}.
    """
    me = shard.worker
    batch = inputs.shape[0]
    y = sp.csr_matrix(inputs, dtype=np.float32)
    stats: list[LayerStats] = []
    kernels = [_LayerKernel(ls) for ls in shard.layers]  # before layer 1: off the critical path
    for l, (ls, kernel) in enumerate(zip(shard.layers, kernels), start=1):
        if fault and fault.get("worker") == me and fault.get("layer") == l:
            _inject(fault)
        st, mark = LayerStats(l), _Snapshot(channel)
        t0 = time.perf_counter()
        for dst, pos in ls.send.items():
            channel.send(l, dst, y[:, pos])
        channel.flush()
        x_local = y[:, ls.local_src]
        z_int = product(x_local, kernel.w_interior)
        st.compute_s += time.perf_counter() - t0
        pieces = [(x_local, ls.local_dst)]
        t1 = time.perf_counter()
        wait_limit = timeout + (launch_grace if l == 1 else 0.0)
        for src, block in channel.receive(l, ls.recv.keys(), wait_limit):
            pieces.append((block, ls.recv[src]))
        t2 = time.perf_counter()
        st.wait_s += t2 - t1
        x_rows = _place(pieces, batch, ls.weights.shape[0])
        z_bnd = product(x_rows, kernel.w_boundary)
        z = _place([(z_int, kernel.interior), (z_bnd, kernel.boundary)], batch, len(ls.cols))
        y = activate(z, ls.bias, shard.ymax)  # z's indices are sorted by _place
        st.compute_s += time.perf_counter() - t2
        mark.fill(st)
        stats.append(st)
        if progress:
            progress(l)
    final = _gather(shard, y, channel, timeout + (launch_grace if not shard.layers else 0.0), stats)
    channel.settle()  # the gather (and any late layer) delivered, or its error raised here
    return WorkerOutcome(me, stats, final, channel.stats.duplicates, channel.stats.foreign)


def _gather(shard: WorkerShard, y: sp.csr_matrix, channel: Channel, timeout: float,
            stats: list[LayerStats]) -> sp.csr_matrix | None:
    """Every worker sends its last-layer columns to worker 0, which assembles B x N.

    Blocks travel in global column numbering (B x N; the sparse encoding makes the absent
    columns free), so worker 0 needs no knowledge of the others' columns, and every worker
    sends, even an empty block, so worker 0 knows whom to wait for: all of them.
    """
    layer = len(shard.layers) + 1
    st, mark = LayerStats(layer), _Snapshot(channel)
    final_cols = shard.layers[-1].cols if shard.layers else shard.input_cols
    t0 = time.perf_counter()
    mine = _place([(y, final_cols)], y.shape[0], shard.neurons)
    result = None
    if shard.worker != 0:
        channel.send(layer, 0, mine)
        channel.flush()
        st.compute_s = time.perf_counter() - t0
    else:
        pieces = [(mine, np.arange(shard.neurons))]
        others = range(1, shard.workers)
        for _src, block in channel.receive(layer, others, timeout):
            pieces.append((block, np.arange(shard.neurons)))
        st.wait_s = time.perf_counter() - t0
        result = _place(pieces, y.shape[0], shard.neurons)
    mark.fill(st)
    stats.append(st)
    return result


class _Snapshot:
    """Channel counters at the start of a layer, to record per-layer deltas."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        s = channel.stats
        self.base = (s.bytes_sent, s.bytes_received, s.messages_sent, s.messages_received,
                     dict(s.requests), dict(s.billed))

    def fill(self, st: LayerStats) -> None:
        s = self.channel.stats
        st.bytes_sent = s.bytes_sent - self.base[0]
        st.bytes_received = s.bytes_received - self.base[1]
        st.messages_sent = s.messages_sent - self.base[2]
        st.messages_received = s.messages_received - self.base[3]
        st.requests = {k: v - self.base[4].get(k, 0) for k, v in s.requests.items() if v - self.base[4].get(k, 0)}
        st.billed_requests = {k: v - self.base[5].get(k, 0) for k, v in s.billed.items() if v - self.base[5].get(k, 0)}


def _inject(fault: dict) -> None:
    if fault.get("kind") == "crash":
        os._exit(17)
    if fault.get("kind") == "hang":
        while True:
            time.sleep(3600)
