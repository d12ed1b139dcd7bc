"""The prediction recorder: an in-process channel that frames every message as another
transport would, and records what it sent.

`run.predict` runs a run's workers in threads of one process over this channel to learn,
before the run, every frame its real channel will send (what a worker sends never depends on
timing). So it must frame exactly as the transport it stands for (`variant`): the same frame
limit (`max_frame_bytes`, the queue channel's for its deployment), compressed as the cloud
channels do, and for the object channel an empty block as a zero-length object (0 bytes,
still one PUT). Everything else is the shared Channel logic, so the contract tests run over
it as over the real transports.

The workers' ends share a `Hub` (inboxes and the sizes recorded), a live object passed in
the channel config: this channel connects threads of one process and nothing else.
`Hub.fail()` wakes every waiting end when one worker fails, so a broken prediction ends at
once instead of at its timeout.

No AWS call, no request billed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from .base import Capabilities, Channel
from .frames import Message
from .object import empty_block_frame


class Hub:
    """What the ends of one prediction share: each worker's inbox, and the frame sizes sent
    (`sizes[layer][src]`: (dst, frame bytes) in send order)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.inbox: dict[int, list[bytes]] = defaultdict(list)
        self.sizes: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        self.failed = False

    def fail(self) -> None:
        """A worker failed: every end waiting in `_poll` raises instead of waiting on."""
        with self.cond:
            self.failed = True
            self.cond.notify_all()


class RecorderChannel(Channel):
    """A channel that frames like `variant`'s and records (dst, frame bytes) per frame sent."""

    name = "recorder"

    def __init__(self, run_id: str, worker: int, hub: Hub, variant: str, max_frame_bytes: int | None) -> None:
        super().__init__(run_id, worker)
        self.hub, self.variant = hub, variant
        # A poll reads an in-process inbox: free. (Compression and whole frames: as the cloud channels.)
        self.capabilities = Capabilities(max_frame_bytes=max_frame_bytes, poll_is_free=True)

    @classmethod
    def from_config(cls, run_id: str, worker: int, config: dict[str, Any]) -> RecorderChannel:
        """`config`: {"hub": Hub, "variant": the transport imitated, "max_frame_bytes": its limit or None}."""
        return cls(run_id, worker, config["hub"], config["variant"], config.get("max_frame_bytes")).keyed(config)

    def _frames(self, layer: int, dst: int, msg: Message) -> list:
        if self.variant == "object" and msg.empty:  # as the object channel: its row map not sent
            return [empty_block_frame(self.run_id, layer, self.worker, dst, self.key) if self.key else b""]
        return super()._frames(layer, dst, msg)

    def _send_frames(self, layer: int, dst: int, frames: list[bytes]) -> None:
        # A zero-length object reaches the receiver as the frame its reader rebuilds from it.
        delivered = [f or empty_block_frame(self.run_id, layer, self.worker, dst, self.key) for f in frames]
        with self.hub.cond:
            self.hub.sizes[layer][self.worker] += [(dst, len(f)) for f in frames]
            self.hub.inbox[dst] += delivered
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
