"""The Channel contract every transport implements, and the logic they all share.

A channel moves sparse activation blocks between the workers of one run. A transport
declares what it is (`Capabilities`: its frame limit, whether it compresses, takes scattered
buffers, polls for free) and fills a few hooks; it overrides no public method. Two hooks are
required:

- `_send_frames(layer, dst, frames)`: deliver the frames (header + payload bytes) of one block
  to worker `dst`. May buffer; `_start_delivery` then starts pushing them out at `flush()`.
- `_poll(layer, pending, timeout)`: return raw frames that have arrived for this worker, waiting
  at most `timeout` seconds. It may return frames of other layers or runs, duplicates and
  partial chunk sets: the base class sorts that out once, here.

and the rest are there for the transports that need them: `_start_delivery()` (a buffering
transport starts its deliveries in threads; `settle` waits for the futures it returns),
`_frames(layer, dst, msg)` (the frames that carry a message, for a transport with a cheaper
form for some: the object channel's zero-length empty blocks), `_spent(layer)` (the buffers of
earlier layers are no longer read), `_close()` and `_cleanup()` (what `close` releases and
`cleanup` deletes).

Delivery semantics the base class provides on top of the hooks:

- `send()` encodes the message (`frames.Message`: a block of rows, optionally with the
  sender's row map), splits it into frames no larger than `max_frame_bytes`, and
  hands them to the transport. An empty block is still sent (receivers never wait on silence).
- `receive()` yields `(src, block)` for every expected sender of a layer, in arrival order;
  duplicate frames are dropped, frames of another run are dropped, frames of later layers are
  kept for later, damaged frames are counted and dropped. If a sender is still missing after
  `timeout` seconds it raises `WorkerTimeout` naming the worker, the layer and the senders.
- `arrived()` says, without waiting, whether every expected message of a layer is here; a
  transport that cannot tell cheaply (`poll_is_free` False) keeps the default answer, False
  (the worker then makes all the work it can ahead of the messages; see `worker.py`).
- A message's row map travels only when it differs from the one of the previous message
  this channel sent to the same worker (`Message.repeat_map`); `receive()` puts it back from
  the last one that arrived from that sender. A row map changes only when rows merge, and it
  is B entries a layer. Sound because a worker receives every message sent to it, layer by
  layer in order; a transport that drops a message's map (the object channel's zero-length
  empty blocks, in its `_frames`) does so before the map is remembered, so neither side
  remembers it.
- `stats` counts messages, bytes and API requests (by API, and billed in 64 KiB chunks where
  the service bills that way) for the run record and the cost model.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from ..errors import WorkerTimeout
from .frames import FrameError, Header, Message, decode_message, frame_size, frames_for, message_parts, unpack_header


def as_message(message: Message | sp.spmatrix) -> Message:
    """A bare sparse block is a message without a row map."""
    return message if isinstance(message, Message) else Message(message)


@dataclass(frozen=True)
class Capabilities:
    """What a transport declares about itself; the shared logic below reads each in one place.

    Declared, not hooks: these are facts about a transport (or about how one end was opened:
    the queue channel's frame limit depends on the deployment, its free poll on its receiver
    thread), not behaviour, and read together they say at a glance how a transport differs
    from the default (a cloud service: frames of any size, compressed, joined, a request per
    poll).
    """

    #: Largest frame (header included) the transport carries; None = unlimited.
    max_frame_bytes: int | None = None
    #: Compress dense blocks (`message_parts`); an in-memory transport sends them verbatim.
    compress: bool = True
    #: `_send_frames` also takes a frame as a list of buffers (written without joining them).
    scatter: bool = False
    #: `_poll(..., timeout=0)` makes no request (a local listing, an in-process queue), so
    #: `arrived` may look.
    poll_is_free: bool = False


@dataclass
class ChannelStats:
    """What a channel did, for the run record and the cost model."""

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    duplicates: int = 0
    foreign: int = 0
    malformed: int = 0
    #: Seconds the channel waited before its first send for its slots to be quiet (`aws.leases`).
    quiet_wait_s: float = 0.0
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    billed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, api: str, requests: int = 1, billed: int | None = None) -> None:
        """Count API requests (thread-safe: transports count from their I/O threads)."""
        with self._lock:
            self.requests[api] += requests
            self.billed[api] += requests if billed is None else billed

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if not isinstance(v, (dict, type(self._lock)))}
        d["requests"] = dict(self.requests)
        d["billed_requests"] = dict(self.billed)
        return d


class Channel(ABC):
    """One worker's end of a run's transport. Not thread-safe: one worker, one channel."""

    #: Short name used in registries, records and errors.
    name: str = "channel"
    #: What the transport is (a class attribute, or set per instance in `__init__`).
    capabilities: Capabilities = Capabilities()
    #: The run's secret key (`frames.py`): every frame sent carries its MAC and every frame
    #: received must, or it is dropped. None: unkeyed (the local channel).
    key: bytes | None = None

    def __init__(self, run_id: str, worker: int) -> None:
        self.run_id = run_id
        self.worker = worker
        self.stats = ChannelStats()
        # (layer, src) -> {chunk: payload}, and the chunk count announced
        self._parts: dict[tuple[int, int], dict[int, bytes]] = defaultdict(dict)
        self._nchunks: dict[tuple[int, int], int] = {}
        self._done: set[tuple[int, int]] = set()
        self._ready: dict[int, list[tuple[int, Message]]] = defaultdict(list)
        self._maps_sent: dict[int, np.ndarray] = {}  # dst -> row map of the last message sent to it
        self._maps_seen: dict[int, np.ndarray] = {}  # src -> row map of the last message from it
        self._inflight: list[Future] = []  # deliveries started by earlier flushes

    # ------------------------------------------------------------------ public API
    def send(self, layer: int, dst: int, message: Message | sp.spmatrix) -> None:
        """Send one message (or a bare sparse float32 block) to worker `dst` for `layer`.

        May be buffered until `flush()`.
        """
        frames = self._frames(layer, dst, as_message(message))
        self.stats.messages_sent += len(frames)
        self.stats.bytes_sent += sum(frame_size(f) for f in frames)
        self._send_frames(layer, dst, frames)

    def flush(self) -> None:
        """Start pushing out anything `send` buffered (`_start_delivery`); may return before it
        is delivered. Waits for the previous flush first: its errors surface here or in
        `settle()`.
        """
        self.settle()
        self._inflight = self._start_delivery()

    def settle(self) -> None:
        """Wait until everything flushed so far is delivered; raise the first delivery error."""
        inflight, self._inflight = self._inflight, []
        for future in inflight:
            future.result()

    def receive(self, layer: int, senders: Iterable[int], timeout: float) -> Iterator[tuple[int, Message]]:
        """Yield `(src, message)` once per expected sender of `layer`, in arrival order.

        A message's arrays may be views of the transport's buffers: they stay valid until this
        channel is asked for a later layer (`_spent`)."""
        self._spent(layer)
        pending = set(senders)
        deadline = time.monotonic() + timeout
        while True:
            for src, msg in self._ready.pop(layer, []):
                if src in pending:
                    pending.discard(src)
                    yield src, self._with_row_map(src, msg)
            if not pending:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                who = ", ".join(str(s) for s in sorted(pending))
                raise WorkerTimeout(f"worker {self.worker} timed out after {timeout:g}s waiting for "
                                    f"layer {layer} from worker(s) {who}")
            for frame in self._poll(layer, pending, remaining):
                self._accept(frame)

    def arrived(self, layer: int, senders: Iterable[int]) -> bool:
        """Whether every expected message of `layer` is here, without waiting. A worker makes
        interior products ahead only while this is False; a transport that cannot tell
        cheaply (`poll_is_free` False: a request per call) says False, so its workers
        overlap all they can."""
        if not self.capabilities.poll_is_free:
            return False
        expected = set(senders)
        if {src for src, _ in self._ready.get(layer, [])} >= expected:
            return True
        for frame in self._poll(layer, expected, 0.0):
            self._accept(frame)
        return {src for src, _ in self._ready.get(layer, [])} >= expected

    def close(self) -> None:
        """Release connections and threads; the run's data stays for `cleanup`. Deliveries not
        yet settled are waited for (a buffering transport's `_close`), their errors dropped."""
        self._close()
        self._inflight = []

    def cleanup(self) -> None:
        """Delete what this run left in the transport (queues drained, objects deleted)."""
        self._cleanup()

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _send_frames(self, layer: int, dst: int, frames: list[bytes]) -> None:
        """Deliver the frames of one block to `dst`."""

    @abstractmethod
    def _poll(self, layer: int, pending: set[int], timeout: float) -> list[bytes]:
        """Return frames that arrived for this worker, waiting at most `timeout` seconds."""

    def _start_delivery(self) -> list[Future]:
        """Start delivering what `_send_frames` buffered, in the background; the futures
        `settle` waits for (a transport that does not buffer delivers in `_send_frames`)."""
        return []

    def _close(self) -> None:
        """Release what this end holds (connections, threads, file descriptors)."""

    def _cleanup(self) -> None:
        """Delete what this end left in the transport (its inbox, its spare files)."""

    def _frames(self, layer: int, dst: int, msg: Message) -> list:
        """The frames that carry `msg` to `dst`: the header, then the payload (its row map only
        when it changed since the last message to `dst`: `_repeat_map`), cut at
        `max_frame_bytes`. A transport with a cheaper form for some messages returns that
        instead and leaves the rest to this (the object channel: an empty block is a
        zero-length object, without its row map, which is then not remembered either)."""
        caps = self.capabilities
        payload = message_parts(self._repeat_map(dst, msg), caps.compress)
        return frames_for(Header(self.run_id, layer, self.worker, dst, 0, 1), payload, caps.max_frame_bytes,
                          join=not caps.scatter, key=self.key)

    def keyed(self, config: dict) -> Channel:
        """This end with the run's secret key from its config (`"key"`, hex), if it has one."""
        if config.get("key"):
            self.key = bytes.fromhex(config["key"])
        return self

    def _spent(self, layer: int) -> None:
        """The messages of layers before `layer` are no longer read: their buffers may go."""

    # ------------------------------------------------------------------ shared logic
    def _repeat_map(self, dst: int, msg: Message) -> Message:
        """`msg`, marked `repeat_map` when its row map is the last one sent to `dst` (remembered here)."""
        if msg.row_map is None:
            return msg
        last = self._maps_sent.get(dst)
        self._maps_sent[dst] = msg.row_map
        if last is not None and (last is msg.row_map or np.array_equal(last, msg.row_map)):
            return replace(msg, repeat_map=True)
        return msg

    def _with_row_map(self, src: int, msg: Message) -> Message:
        """Put a repeated row map back (messages reach here layer by layer, in order)."""
        if msg.repeat_map:
            if src not in self._maps_seen:
                raise ValueError(f"worker {self.worker}: worker {src} repeated a row map it never sent")
            return replace(msg, row_map=self._maps_seen[src], repeat_map=False)
        if msg.row_map is not None:
            self._maps_seen[src] = msg.row_map
        return msg

    def _accept(self, frame: bytes) -> None:
        """Sort one raw frame: drop foreign, damaged and duplicate ones; reassemble chunks."""
        try:
            header, payload = unpack_header(frame, self.key)
        except FrameError:
            self.stats.malformed += 1  # damaged, forged, of another run (another key), truncated
            return
        if header.run_id != self.run_id or header.dst != self.worker:
            self.stats.foreign += 1
            return
        key = (header.layer, header.src)
        parts = self._parts[key]
        if key in self._done or header.chunk in parts:
            self.stats.duplicates += 1
            return
        if self._nchunks.setdefault(key, header.chunks) != header.chunks:
            self.stats.malformed += 1
            return
        parts[header.chunk] = payload
        self.stats.messages_received += 1
        self.stats.bytes_received += len(frame)
        if len(parts) < header.chunks:
            return
        data = parts[0] if header.chunks == 1 else b"".join(parts[k] for k in range(header.chunks))
        del self._parts[key], self._nchunks[key]
        try:
            block = decode_message(data)
        except FrameError:
            self.stats.malformed += 1
            return
        self._done.add(key)
        self._ready[header.layer].append((header.src, block))
