"""Exact request predictions for a concrete run, before it runs.

For a model, a plan and a batch, the frames every sender will send are fully determined:
what a worker sends depends only on its shard and the data (its distinct rows, row maps and
labels; never on timing or arrival order), and the wire encoding is deterministic. So the
prediction runs the workers themselves, in threads of this process, over an in-memory
channel that frames every message exactly as `variant`'s channel does (its frame limit, the
object channel's zero-length empty blocks) and records the frame sizes. Feeding them to
`cost.predict_requests` gives the deterministic requests (invocations, publishes and their
billed chunks, PUTs) and the bytes a run will send, which the tests compare with what the
channels counted on the emulator.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import scipy.sparse as sp

from ..channels.base import Channel, as_message
from ..channels.frames import HEADER, Header, Message, encode_message, frames_for
from ..channels.object import is_empty_block
from ..engine.worker import run_in_threads
from ..model.network import SparseDNN
from ..plan.communication import WorkerShard

#: Seconds a simulated worker waits for a message before the prediction gives up (a bug).
TIMEOUT = 600.0


class _Hub:
    """The in-memory transport: inboxes, and the frame sizes sent, per round and sender."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.inbox: dict[int, list[bytes]] = defaultdict(list)
        self.sizes: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        self.failed = False


class _Recorder(Channel):
    """A channel that frames like `variant`'s and records (dst, frame bytes) per send."""

    name = "predict"

    def __init__(self, hub: _Hub, worker: int, variant: str, max_frame: int | None) -> None:
        super().__init__("predict", worker)
        self.hub, self.variant, self.max_frame_bytes = hub, variant, max_frame

    def send(self, layer: int, dst: int, message: Message | sp.spmatrix) -> None:
        if self.variant == "object" and is_empty_block(message):
            # The object channel writes a zero-length object; its receiver rebuilds this frame.
            frame = frames_for(Header(self.run_id, layer, self.worker, dst), encode_message(
                Message(sp.csr_matrix((0, 0), dtype="float32"))), None)[0]
            self._deliver(layer, dst, [frame], [0])
            return
        super().send(layer, dst, as_message(message))

    def _send_frames(self, layer: int, dst: int, frames: list[bytes]) -> None:
        self._deliver(layer, dst, frames, [len(f) for f in frames])

    def _deliver(self, layer: int, dst: int, frames: list[bytes], sizes: list[int]) -> None:
        with self.hub.cond:
            self.hub.sizes[layer][self.worker] += [(dst, n) for n in sizes]
            self.hub.inbox[dst] += frames
            self.hub.cond.notify_all()

    def _poll(self, layer: int, pending: set[int], timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self.hub.cond:
            while not self.hub.inbox[self.worker]:
                if self.hub.failed:
                    raise RuntimeError("another simulated worker failed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.hub.cond.wait(remaining)
            frames, self.hub.inbox[self.worker] = self.hub.inbox[self.worker], []
        return frames


def run_frames(model: SparseDNN, shards: list[WorkerShard], inputs: sp.csr_matrix, variant: str,
               max_frame: int | None, run_id_length: int = 12) -> list[list[tuple[int, int, int]]]:
    """Per sending round (each layer, then the gather): (src, dst, frame bytes) in send order.

    Frame sizes include a header for a run id of `run_id_length` characters (the
    coordinator's).
    """
    hub = _Hub()

    def channel_for(worker: int) -> _Recorder:
        channel = _Recorder(hub, worker, variant, max_frame)
        channel.run_id = "x" * run_id_length
        return channel

    def wake_all() -> None:
        with hub.cond:
            hub.failed = True
            hub.cond.notify_all()

    run_in_threads(shards, inputs, channel_for, TIMEOUT, wake_all)
    rounds = []
    for layer in range(1, model.layers + 2):
        by_src = hub.sizes.get(layer, {})
        rounds.append([(src, dst, n) for src in sorted(by_src) for dst, n in by_src[src]])
    return rounds


__all__ = ["run_frames", "HEADER"]
