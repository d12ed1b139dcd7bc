"""Exact request counts for a concrete run, from every frame its senders will send.

`predict_requests` turns the frames of each sending round (a layer, or the gather) into the
deterministic requests: invocations, SNS `PublishBatch` calls and their billed 64 KiB chunks
(packed exactly as the queue channel packs them, `aws.limits.pack_batches`), S3 `PutObject`
calls, and the bytes. Receives, empty polls, deletes and GET retries depend on timing: the
estimates (`latency.py`) model them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..aws.limits import billed_publish_chunks, pack_batches, wire_size
from ..errors import InputError

VARIANTS = ("serial", "queue", "object")
#: Bytes of the SNS `dst` attribute (name + "String" + up to 4 digits): the analytic estimate only.
DEFAULT_ATTR_BYTES = len("dst") + len("String") + 4

Frame = tuple[int, int, int]  # (src, dst, frame bytes = len(frame) as the channel sends it)


@dataclass
class RequestCounts:
    """Requests by API (calls made) and billed requests by API (64 KiB chunks where billed so)."""

    requests: dict[str, int] = field(default_factory=dict)
    billed: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    messages: int = 0

    def add(self, api: str, requests: float, billed: float | None = None) -> None:
        self.requests[api] = self.requests.get(api, 0) + round(requests)
        self.billed[api] = self.billed.get(api, 0) + round(requests if billed is None else billed)

    def as_dict(self) -> dict:
        return {"requests": dict(self.requests), "billed_requests": dict(self.billed),
                "bytes_sent": self.bytes_sent, "messages": self.messages}


def predict_requests(variant: str, frame_sizes: Sequence[Sequence[Frame]], workers: int,
                     attr_bytes: int | Callable[[int], int] = DEFAULT_ATTR_BYTES) -> RequestCounts:
    """The deterministic requests of one run, from every frame the senders will send.

    `frame_sizes[k]` lists the frames of one sending round (a layer, or the gather) as
    `(src, dst, frame_bytes)` in each sender's send order. Per (round, sender) the queue
    channel publishes its frames base64-encoded with the `dst` attribute (`attr_bytes`: bytes,
    or a function of dst) in greedy `pack_batches` order and flushes at the end of the round;
    the object channel writes one object per frame. Invocations: one per worker.
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    check_positive(workers=workers)
    counts = RequestCounts()
    counts.add("lambda:Invoke", workers if variant != "serial" else 1)
    attr = attr_bytes if callable(attr_bytes) else (lambda dst, a=int(attr_bytes): a)
    for rnd in frame_sizes:
        counts.messages += len(rnd)
        counts.bytes_sent += sum(int(f[2]) for f in rnd)
        if variant == "object":
            if rnd:
                counts.add("s3:PutObject", len(rnd))
        elif variant == "queue":
            by_src: dict[int, list[int]] = {}
            for src, dst, nbytes in rnd:
                by_src.setdefault(int(src), []).append(wire_size(int(nbytes), attr(int(dst))))
            for sizes in by_src.values():
                for batch in pack_batches(sizes):
                    counts.add("sns:PublishBatch", 1, billed_publish_chunks(sum(sizes[i] for i in batch)))
        elif rnd:
            raise InputError("the serial variant sends no frames")
    return counts


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
