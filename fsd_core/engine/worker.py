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

import numpy as np
import scipy.sparse as sp

from ..channels.base import Channel
from ..channels.frames import Message
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
from ..kernel.blocks import block_starts, sparse_to_blocks
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
    rows = Rows.of_csr(inputs)
    labels = rows.labels()  # on the sparse input: O(nnz), 5x faster than on its dense blocks
    rows = to_layout(rows)
    present = None  # which distinct rows `rows` holds (rows.py); None: all
    rmap = RowMap.identity(batch)
    stats: list[LayerStats] = []
    for l, ls in enumerate(shard.layers, start=1):
        split = ls.split  # computed at staging
        if fault and fault.get("worker") == me and fault.get("layer") == l:
            _inject(fault)
        st, mark = LayerStats(l), _Snapshot(channel)
        t0 = time.perf_counter()
        for dst, pos in ls.send.items():
            channel.send(l, dst, _message(rows, present, pos, rmap, labels))
        channel.flush()
        interior = _Interior(rows, ls)
        interior.ahead(lambda: channel.arrived(l, ls.recv.keys()))
        st.compute_s += time.perf_counter() - t0
        t1 = time.perf_counter()
        wait_limit = timeout + (launch_grace if l == 1 else 0.0)
        received = dict(channel.receive(l, ls.recv.keys(), wait_limit))
        t2 = time.perf_counter()
        st.wait_s += t2 - t1
        pieces = [(piece, split.x_recv[src]) for src in sorted(received)
                  if (piece := _piece(received[src], batch)) is not None]
        starts = block_starts(rows.blocks) if rows.dense else None  # the interior blocks', for the inputs'
        x, union, joint, keep = _inputs(rows, present, rmap, labels, pieces, split, starts)
        st.rows = x.count
        total = rmap.first.size
        if joint is not rmap and keep is None:  # rows already joined: the interior part follows the joint rows
            interior.follow(present, rmap.map[joint.first])
            total = joint.first.size
        rows, present, labels = finish(interior.parts(x), len(ls.cols), union, total, ls.bias, shard.ymax, keep)
        rmap = joint
        st.compute_s += time.perf_counter() - t2
        mark.fill(st)
        stats.append(st)
        if progress:
            progress(l)
    result = _gather(shard, Rows.of_csr(full_csr(rows, present, rmap.first.size)), rmap, labels, channel,
                     timeout + (launch_grace if not shard.layers else 0.0), stats)
    channel.settle()  # the gather (and any late layer) delivered, or its error raised here
    return WorkerOutcome(me, stats, result, channel.stats.duplicates, channel.stats.foreign)


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


def _inputs(rows: Rows, present: np.ndarray | None, rmap: RowMap, labels: np.ndarray | None, pieces: list,
            split: LayerSplit, starts: np.ndarray | None = None):
    """The boundary product's input rows, which distinct rows those are (None: all), the joint
    row map, and the rows to keep after the product.

    When every piece has this worker's row map (workers in step), the inputs are assembled
    without any gather, on the union of the pieces' present rows, and rows merged by the
    labels are dropped from the layer's output instead (`keep`), block by block while in
    cache; a merged row stays merged, as a layer maps equal rows to equal rows. In a layer
    without interior columns, when many rows merged (`EARLY_MERGE`), they are dropped from the
    inputs instead, so that the product runs on the joint rows (as the serial kernel's would).
    Otherwise the pieces' rows are gathered into the joint rows first (`keep` is None).
    Dense inputs assembled without a gather start their blocks at `starts` (`assemble`), those
    of the interior product's output, so the boundary product adds into it block by block.
    """
    maps = [rmap.map] + [m for (_, m, _, _), _ in pieces]
    all_labels = [labels] + [lab for (_, _, lab, _), _ in pieces]
    aligned = all(m is rmap.map or np.array_equal(m, rmap.map) for m in maps[1:])
    if aligned:
        joint = combine_in_step(rmap, all_labels)
        keep = None if joint is rmap else rmap.map[joint.first]
        if keep is not None and keep.size == rmap.first.size:
            keep = None  # nothing merged
        held = [(rows, present, split.x_local_dst, split.x_local_src)]
        held += [(r, p, pos, None) for (r, _, _, p), pos in pieces]
        union = union_of([p for _, p, _, _ in held], rmap.first.size)
        count = rmap.first.size if union is None else union.size
        early = keep is not None and not len(split.interior)
        if early:  # how many of the rows stay
            stays = keep.size if union is None else int(np.count_nonzero(row_mask(keep, rmap.first.size)[union]))
            early = stays <= EARLY_MERGE * count
        if not early:
            return _on_union(held, union, len(split.boundary_rows), rmap.first.size, starts), union, joint, keep
        # No interior product ran on the old rows, so the product can run on the joint rows
        # already, as the serial kernel would compute them.
    else:
        joint = combine(maps, all_labels)
    held = [reindex(rows, present, rmap.map[joint.first], split.x_local_src) + (split.x_local_dst, None)]
    held += [reindex(r, p, m[joint.first]) + (pos, None) for (r, m, _, p), pos in pieces]
    union = union_of([p for _, p, _, _ in held], joint.first.size)
    return _on_union(held, union, len(split.boundary_rows), joint.first.size), union, joint, None


def _on_union(held: list[tuple], union: np.ndarray | None, width: int, total: int,
              starts: np.ndarray | None = None) -> Rows:
    """Pieces (rows, present, positions, which neurons) of `total` distinct rows assembled on
    `union`, the union of their present rows (`union_of`, the first piece's first)."""
    parts = [(r, pos, src, sources(p, union, total)) for r, p, pos, src in held]
    return assemble(parts, width, total if union is None else union.size, starts)


def _message(rows: Rows, present: np.ndarray | None, pos: np.ndarray, rmap: RowMap,
             labels: np.ndarray | None) -> Message:
    """Rows `pos` of this worker's neurons, with its row map, labels and present rows."""
    block = rows.select(pos).csr if rows.csr is not None else rows.select_t(pos)
    if present is None:
        return Message(block, rmap.map, labels)
    return Message(block, rmap.map, labels, present=present, count=rmap.first.size)


def _piece(msg: Message, batch: int) -> tuple[Rows, np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """(rows, row map, labels, present rows) of a received message; None for an empty one (all zeros)."""
    block = msg.block
    rows = Rows.of_csr(block) if sp.issparse(block) else Rows.of_dense_t(block)
    if msg.row_map is None:
        if rows.count != batch:
            if rows.count == 0 or rows.nnz == 0:  # a zero-length object: nothing to add
                return None
            raise ValueError(f"a block of {rows.count} rows without a row map, for a batch of {batch}")
        return rows, np.arange(batch), None, None
    if msg.row_map.size != batch:
        raise ValueError(f"a row map of {msg.row_map.size} rows, for a batch of {batch}")
    if msg.present is not None and sp.issparse(block):
        raise ValueError("a sparse block holds every row")
    return rows, msg.row_map, msg.labels, msg.present


def _gather(shard: WorkerShard, rows: Rows, rmap: RowMap, labels: np.ndarray | None, channel: Channel,
            timeout: float, stats: list[LayerStats]) -> Message | None:
    """Every worker sends its last-layer rows to worker 0, which joins them (u x N + row map).

    Blocks travel in global column numbering (u x N; the sparse encoding makes the absent
    columns free) with their row maps, so worker 0 needs no knowledge of the others'
    columns, and every worker sends, even an empty block, so worker 0 knows whom to wait for.
    """
    layer = len(shard.layers) + 1
    st, mark = LayerStats(layer), _Snapshot(channel)
    batch = rmap.map.size
    t0 = time.perf_counter()
    m = rows.to_csr()
    final_cols = shard.final_cols
    mine = sp.csr_matrix((m.data, final_cols[m.indices], m.indptr), shape=(m.shape[0], shard.neurons))
    result = None
    if shard.worker != 0:
        channel.send(layer, 0, Message(mine, rmap.map, labels))
        channel.flush()
        st.compute_s = time.perf_counter() - t0
    else:
        received = dict(channel.receive(layer, range(1, shard.workers), timeout))
        st.wait_s = time.perf_counter() - t0
        everything = np.arange(shard.neurons)
        pieces = [(Rows.of_csr(mine), rmap.map, labels, None)]
        pieces += [p for src in sorted(received) if (p := _piece(received[src], batch)) is not None]
        joint = combine([pm for _, pm, _, _ in pieces], [lab for _, _, lab, _ in pieces])
        held = [reindex(r, p, pm[joint.first]) for r, pm, _, p in pieces]
        x = assemble([(Rows.of_csr(full_csr(r, p, joint.first.size)), everything) for r, p in held], shard.neurons,
                     joint.first.size)
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
