"""One worker's layer loop: send, compute what is local, receive, finish, repeat.

The worker sees only its shard (plan.WorkerShard) and a Channel; it never imports boto3.

Distinct rows: like the serial kernel, a worker computes every distinct activation row once.
It holds the distinct rows of its neurons and a row map (batch row -> distinct row), sends
both (plus the labels saying which of its rows are equal), and joins the row maps of the
pieces it combines (`rows.py`). Dead and saturated rows thus cost one row, not thousands,
and rows zero on its neurons nothing at all: it holds only the rows non-zero there (their ids
are its *present* rows), so its products skip a dead row at once, without waiting for the
peers' half of the row to learn that it died.

Exactness: every output column is computed by one product over its input rows in ascending
global order, exactly as the serial kernel does, so results are bit-identical to it (float32
sums are order-sensitive; partial sums added as blocks arrive would not be).

Overlap: output columns whose input rows this worker owns ("interior" columns; most of them
under a good partition) are computed while the messages are in flight; the "boundary"
columns once every expected block has arrived. Both products add into one block of all the
layer's columns (`rows.LayerProducts`), and a block is finished (activated, cut, hashed) right
after its products, while it is in cache, as the serial kernel does. So the worker makes
interior blocks ahead only while the channel says the layer's messages are not all here
(`Channel.arrived`): blocks made ahead wait in memory for their boundary part, which costs a
cache miss per block, not worth it when there is nothing to wait for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ..channels.base import Channel
from ..channels.frames import Message
from ..kernel.blocks import block_starts, sparse_to_blocks
from ..kernel.rows import (
    LayerProducts,
    RowMap,
    Rows,
    assemble,
    combine,
    combine_in_step,
    finish,
    full_csr,
    product,
    reindex,
    row_mask,
    sources,
    to_layout,
    union_of,
)
from ..plan.communication import LayerShard, LayerSplit, WorkerShard


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
    rows: int = 0  # distinct rows the layer's products ran on (of the batch's B)
    requests: dict[str, int] = field(default_factory=dict)
    billed_requests: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkerOutcome:
    """The worker's per-layer statistics and, on worker 0, the gathered final activations
    (`result`: the distinct final rows, u x N, and the batch's row map onto them)."""

    worker: int
    layers: list[LayerStats]
    result: Message | None = None
    duplicates: int = 0
    foreign: int = 0

    @property
    def final(self) -> sp.csr_matrix | None:
        """The final activations, B x N (None except on worker 0)."""
        return None if self.result is None else expand(self.result)

    def report(self) -> dict:
        return {"worker": self.worker, "layers": [asdict(s) for s in self.layers],
                "duplicates": self.duplicates, "foreign": self.foreign}


# In a layer without interior columns, rows merged by the joint labels are dropped from the
# product's inputs when at most this fraction of them stays (else from its output, where it
# is cheaper). Measured on a P=2 worker's 2048 x 256 blocks of RadiX-Net 4096: the column
# gather costs ~0.6 ns an entry on every kept row (0.23 ms for 179 columns), while a dropped
# row saves ~3 ns an entry in the product (~6 us a column: 2.14 ms for 256 columns, 1.68 ms
# for 179) plus its share of `finish`; 0.8 stays well inside the break-even.
EARLY_MERGE = 0.8


class Activations(NamedTuple):
    """What a worker holds between layers (its activation state), for its neurons only.

    `rows` are its distinct activation rows, only those non-zero on its neurons; `present`
    says which distinct rows those are (ascending ids; None: all of them). `rmap` is the
    batch's row map onto the distinct rows, and `labels` says which distinct rows are equal
    on its neurons (None: too few to merge). See `kernel/rows.py` for why each exists.
    """

    rows: Rows
    present: np.ndarray | None
    rmap: RowMap
    labels: np.ndarray | None

    @classmethod
    def of_inputs(cls, inputs: sp.csr_matrix) -> Activations:
        """The input rows (B x this worker's input features), each batch row its own."""
        rows = Rows.of_csr(inputs)
        labels = rows.labels()  # on the sparse input: O(nnz), 5x faster than on its dense blocks
        return cls(to_layout(rows), None, RowMap.identity(inputs.shape[0]), labels)

    @property
    def batch(self) -> int:
        """B, the number of batch rows."""
        return self.rmap.map.size

    @property
    def total(self) -> int:
        """The number of distinct rows (present or not)."""
        return self.rmap.first.size

    def message(self, pos: np.ndarray) -> Message:
        """What a peer needs: rows `pos` of this worker's neurons, with the row map, labels and present rows."""
        block = self.rows.select(pos).csr if self.rows.csr is not None else self.rows.select_t(pos)
        if self.present is None:
            return Message(block, self.rmap.map, self.labels)
        return Message(block, self.rmap.map, self.labels, present=self.present, count=self.total)

    def piece(self, src: int, positions: np.ndarray, neurons: np.ndarray | None = None) -> Piece:
        """The worker's own rows as the first piece of a layer's inputs."""
        return Piece(src, self.rows, self.rmap.map, self.labels, self.present, positions, neurons)


class Piece(NamedTuple):
    """One piece of a layer's inputs: a block received from worker `src`, or the worker's own rows.

    `rows` are the sender's distinct rows it holds (`present`: which, ascending ids among its
    distinct rows; None: all); `row_map` and `labels` are the sender's. `positions` says where
    its neurons go among the inputs being assembled, and `neurons` which of its neurons are taken
    (None: all).
    """

    src: int
    rows: Rows
    row_map: np.ndarray
    labels: np.ndarray | None
    present: np.ndarray | None
    positions: np.ndarray
    neurons: np.ndarray | None = None

    @classmethod
    def received(cls, src: int, msg: Message, batch: int, positions: np.ndarray) -> Piece | None:
        """The piece a message from `src` carries; None for an empty one (all zeros)."""
        block = msg.block
        rows = Rows.of_csr(block) if sp.issparse(block) else Rows.of_dense_t(block)
        if msg.row_map is None:
            if rows.count != batch:
                if rows.count == 0 or rows.nnz == 0:  # a zero-length object: nothing to add
                    return None
                raise ValueError(f"a block of {rows.count} rows without a row map, for a batch of {batch}")
            return cls(src, rows, np.arange(batch), None, None, positions)
        if msg.row_map.size != batch:
            raise ValueError(f"a row map of {msg.row_map.size} rows, for a batch of {batch}")
        if msg.present is not None and sp.issparse(block):
            raise ValueError("a sparse block holds every row")
        return cls(src, rows, msg.row_map, msg.labels, msg.present, positions)

    def on_rows(self, joint: RowMap) -> Piece:
        """The same piece on the joint rows `joint` (rows gathered, the neurons taken in the same gather)."""
        rows, present = reindex(self.rows, self.present, self.row_map[joint.first], self.neurons)
        return self._replace(rows=rows, present=present, row_map=joint.map, neurons=None)


class BoundaryInputs(NamedTuple):
    """The boundary product's input rows `x`, which distinct rows those are (`union`, of the
    `total`; None: all), the layer's joint row map, and the rows its output keeps (`keep`:
    ascending ids, the rows merged by labels dropped; None: all). `total` counts the joint
    rows when the pieces were gathered into them (`joined`), else the rows before the layer."""

    x: Rows
    union: np.ndarray | None
    total: int
    joint: RowMap
    keep: np.ndarray | None
    joined: bool = False  # the pieces' rows were gathered into the joint rows (`Piece.on_rows`)


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
    act = Activations.of_inputs(inputs)
    stats: list[LayerStats] = []
    for l, ls in enumerate(shard.layers, start=1):
        if fault and fault.get("worker") == shard.worker and fault.get("layer") == l:
            _inject(fault)
        st, mark = LayerStats(l), _Snapshot(channel)
        t0 = time.perf_counter()
        _send(channel, l, ls, act)
        interior = _Interior(act.rows, ls)
        interior.ahead(partial(channel.arrived, l, ls.recv.keys()))  # while the messages are in flight
        t1 = time.perf_counter()
        pieces = _receive(channel, l, ls, act.batch, timeout + (launch_grace if l == 1 else 0.0))
        t2 = time.perf_counter()
        boundary = _boundary_inputs(shard.worker, act, pieces, ls.split)
        act = _finish(act, interior, boundary, ls, shard.ymax)  # the boundary product, added block by block
        st.compute_s, st.wait_s, st.rows = (t1 - t0) + (time.perf_counter() - t2), t2 - t1, boundary.x.count
        mark.fill(st)
        stats.append(st)
        if progress:
            progress(l)
    result = _gather(shard, act, channel, timeout + (launch_grace if not shard.layers else 0.0), stats)
    channel.settle()  # the gather (and any late layer) delivered, or its error raised here
    return WorkerOutcome(shard.worker, stats, result, channel.stats.duplicates, channel.stats.foreign)


def _send(channel: Channel, layer: int, ls: LayerShard, act: Activations) -> None:
    """Send every peer the rows of this worker's neurons it needs (`ls.send`), and start the delivery."""
    for dst, pos in ls.send.items():
        channel.send(layer, dst, act.message(pos))
    channel.flush()


def _receive(channel: Channel, layer: int, ls: LayerShard, batch: int, timeout: float) -> list[Piece]:
    """Every expected peer's block of the layer, in sender order, the empty ones left out."""
    received = dict(channel.receive(layer, ls.recv.keys(), timeout))
    x_recv = ls.split.x_recv
    return [piece for src in sorted(received)
            if (piece := Piece.received(src, received[src], batch, x_recv[src])) is not None]


def _finish(act: Activations, interior: _Interior, b: BoundaryInputs, ls: LayerShard,
            ymax: float) -> Activations:
    """The layer's output: its interior and boundary products added into one block of all its
    columns at a time, each activated, cut and hashed while in cache (`rows.finish`)."""
    if b.joined:  # the inputs are on the joint rows already: the interior part follows them
        interior.follow(act.present, act.rmap.map[b.joint.first])
    rows, present, labels = finish(interior.parts(b.x), len(ls.cols), b.union, b.total, ls.bias, ymax, b.keep)
    return Activations(rows, present, b.joint, labels)


class _Interior:
    """A layer's interior product: dense, made block by block (ahead while the layer's
    messages are not all here, the rest as `finish` takes them, with the boundary product
    added into the same blocks: `LayerProducts`); sparse, the CSR product at once."""

    def __init__(self, rows: Rows, ls: LayerShard) -> None:
        split = ls.split
        self.split, self.src, self.width = split, ls.local_src, len(ls.cols)
        self.done: list[np.ndarray] = []  # dense blocks made so far
        self.own = rows if rows.dense and len(split.interior) else None  # dense rows whose blocks are still to make
        self.z = None if rows.dense else product(rows, split.w_interior, self.src)

    def ahead(self, arrived: Callable[[], bool]) -> None:
        """Make dense blocks until every message is here (`arrived`) or none is left."""
        if self.own is None:
            return
        while len(self.done) < len(self.own.blocks) and not arrived():
            self.done.append(LayerProducts.interior(self.own, len(self.done), self.split.wt_interior, self.src))

    def follow(self, present: np.ndarray | None, ids: np.ndarray) -> None:
        """The rows were joined before the boundary product: the interior part takes the
        joint rows `ids` (of the rows it holds, `present`), so every block is made now."""
        if self.z is not None:
            self.z = reindex(self.z, present, ids)[0]
        elif self.own is not None:
            self.done += [LayerProducts.interior(self.own, k, self.split.wt_interior, self.src)
                          for k in range(len(self.done), len(self.own.blocks))]
            self.done = reindex(Rows(self.width, blocks=self.done), present, ids)[0].blocks
            self.own = None

    def parts(self, x: Rows) -> list[tuple]:
        """The layer's output pieces for `finish`, with the boundary product of inputs `x`
        (the interior part's rows are the first of `x`'s: `union_of`)."""
        everywhere = np.arange(self.width)
        if self.z is None or x.dense:
            done = self.done if self.z is None else sparse_to_blocks(self.z.csr)
            split = self.split
            return [(LayerProducts(self.width, x, split.wt_boundary, done, self.own, split.wt_interior, self.src),
                     everywhere)]
        return [(self.z, everywhere), (product(x, self.split.w_boundary), everywhere)]


def run_in_threads(shards: list[WorkerShard], inputs: sp.spmatrix, channel_for: Callable[[int], Channel],
                   timeout: float, on_error: Callable[[], None] | None = None) -> dict[int, WorkerOutcome]:
    """Run workers in threads of this process over channels from `channel_for(worker)`.

    The same `run_worker` as the deployed handler without process start-up: for predictions
    and for tests of many shapes. `on_error` lets the channel wake the others when one fails.
    """
    y0 = sp.csc_matrix(inputs, dtype=np.float32)
    outcomes: dict[int, WorkerOutcome] = {}
    errors: list[BaseException] = []

    def work(shard: WorkerShard) -> None:
        channel = channel_for(shard.worker)
        try:
            outcomes[shard.worker] = run_worker(shard, y0[:, shard.input_cols].tocsr(), channel, timeout)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            if on_error:
                on_error()
        finally:
            channel.close()

    threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in shards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return outcomes


def expand(result: Message) -> sp.csr_matrix:
    """B x N activations from distinct rows and a row map (what worker 0 stages)."""
    block = sp.csr_matrix(result.block)
    block.sort_indices()  # u rows: cheap
    if result.row_map is None:
        return block
    out = block[result.row_map]
    out.has_sorted_indices = True  # rows copied whole from a sorted block (scipy would check all B x N again)
    return out


def _boundary_inputs(me: int, act: Activations, pieces: list[Piece], split: LayerSplit) -> BoundaryInputs:
    """The boundary product's input rows (the worker's own and the received pieces'), and the
    rows the layer's output is on.

    When every piece has this worker's row map (workers in step), the inputs are assembled
    without any gather, on the union of the pieces' present rows, and rows merged by the
    labels are dropped from the layer's output instead (`keep`), block by block while in
    cache; a merged row stays merged, as a layer maps equal rows to equal rows. In a layer
    without interior columns, when many rows merged (`EARLY_MERGE`), they are dropped from the
    inputs instead, so that the product runs on the joint rows (as the serial kernel's would).
    Otherwise the pieces' rows are gathered into the joint rows first (`joined`).
    Dense inputs assembled without a gather start their blocks where the worker's own rows'
    blocks do (`assemble`), those of the interior product's output, so the boundary product
    adds into it block by block.
    """
    rmap, width = act.rmap, len(split.boundary_rows)
    held = [act.piece(me, split.x_local_dst, split.x_local_src)] + pieces
    labels = [q.labels for q in held]
    if all(q.row_map is rmap.map or np.array_equal(q.row_map, rmap.map) for q in pieces):
        joint = combine_in_step(rmap, labels)
        keep = None if joint is rmap else rmap.map[joint.first]
        if keep is not None and keep.size == rmap.first.size:
            keep = None  # nothing merged
        union = union_of([q.present for q in held], act.total)
        if not _merges_early(keep, union, act.total, split):
            starts = block_starts(act.rows.blocks) if act.rows.dense else None
            return BoundaryInputs(_on_union(held, union, width, act.total, starts), union, act.total, joint, keep)
        # No interior product ran on the old rows, so the product can run on the joint rows
        # already, as the serial kernel would compute them.
    else:
        joint = combine([q.row_map for q in held], labels)
    held = [q.on_rows(joint) for q in held]
    total = joint.first.size
    union = union_of([q.present for q in held], total)
    return BoundaryInputs(_on_union(held, union, width, total), union, total, joint, None, joined=True)


def _merges_early(keep: np.ndarray | None, union: np.ndarray | None, total: int, split: LayerSplit) -> bool:
    """Whether rows merged by the labels (`keep`: the rows that stay) go before the product,
    from its inputs: only in a layer without interior columns, and when at most
    `EARLY_MERGE` of the rows it would run on (`union`, of `total`) stay."""
    if keep is None or len(split.interior):
        return False
    count = total if union is None else union.size
    stays = keep.size if union is None else int(np.count_nonzero(row_mask(keep, total)[union]))
    return stays <= EARLY_MERGE * count


def _on_union(held: list[Piece], union: np.ndarray | None, width: int, total: int,
              starts: np.ndarray | None = None) -> Rows:
    """Pieces of `total` distinct rows assembled on `union`, the union of their present rows
    (`union_of`, the first piece's first)."""
    parts = [(q.rows, q.positions, q.neurons, sources(q.present, union, total)) for q in held]
    return assemble(parts, width, total if union is None else union.size, starts)


def _gather(shard: WorkerShard, act: Activations, channel: Channel, timeout: float,
            stats: list[LayerStats]) -> Message | None:
    """Every worker sends its last-layer rows to worker 0, which joins them (u x N + row map).

    Blocks travel in global column numbering (u x N; the sparse encoding makes the absent
    columns free) with their row maps, so worker 0 needs no knowledge of the others'
    columns, and every worker sends, even an empty block, so worker 0 knows whom to wait for.
    """
    layer = len(shard.layers) + 1
    st, mark = LayerStats(layer), _Snapshot(channel)
    t0 = time.perf_counter()
    m = full_csr(act.rows, act.present, act.total)
    mine = sp.csr_matrix((m.data, shard.final_cols[m.indices], m.indptr), shape=(m.shape[0], shard.neurons))
    result = None
    if shard.worker != 0:
        channel.send(layer, 0, Message(mine, act.rmap.map, act.labels))
        channel.flush()
        st.compute_s = time.perf_counter() - t0
    else:
        received = dict(channel.receive(layer, range(1, shard.workers), timeout))
        st.wait_s = time.perf_counter() - t0
        everything = np.arange(shard.neurons)
        held = [Piece(0, Rows.of_csr(mine), act.rmap.map, act.labels, None, everything)]
        held += [q for src in sorted(received)
                 if (q := Piece.received(src, received[src], act.batch, everything)) is not None]
        joint = combine([q.row_map for q in held], [q.labels for q in held])
        total = joint.first.size
        x = assemble([(Rows.of_csr(full_csr(q.rows, q.present, total)), everything)
                      for q in (q.on_rows(joint) for q in held)], shard.neurons, total)
        result = Message(x.to_csr(), joint.map)
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
