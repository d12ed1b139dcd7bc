"""FSD-Inf-Queue: SNS topic fan-out into one SQS queue per worker.

Sending: a worker publishes on topic `worker mod T`. Every frame is one SNS message: the body
is the frame in base64 (binary attributes break raw delivery in the emulator, and text is
what SNS carries), the String attribute `dst` routes it: each worker's queue subscribes with
the filter policy {"dst": ["<worker>"]} and raw delivery (Terraform, modules/queue_channel).
The frames of one layer are packed into `PublishBatch` calls of at most 10 entries and
256 KiB (`packing.pack_batches`: AWS's limits, enforced here because the emulator does not),
published by a few threads in parallel; entries SNS reports as failed and throttled calls
are retried with capped exponential back-off.

Receiving: a background thread long-polls the worker's queue (`ReceiveMessage`, up to 10
messages, `WaitTimeSeconds` = `poll_wait`) and deletes what it got (`DeleteMessageBatch`)
at once, so the queue stays shallow (the emulator slows down as a queue deepens) and
communication overlaps computation. SQS delivers at least once; the base class dedupes.

Billing units counted (see `cost.py`): sns:PublishBatch (1 per call, billed per 64 KiB of
the call's payload), sqs:ReceiveMessage (1 per call including empty polls, billed per 64 KiB
returned), sqs:DeleteMessageBatch (1 per call).
"""

from __future__ import annotations

import base64
import queue as queue_mod
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..aws.limits import (
    attribute_bytes,
    billed_chunks,
    billed_publish_chunks,
    max_frame_bytes_for_sns,
    pack_batches,
    wire_size,
)
from ..errors import RunError
from .base import Capabilities, Channel

SQS_MAX_MESSAGES = 10  # ReceiveMessage returns at most 10 messages per call
DEFAULT_POLL_WAIT = 1  # seconds of long polling per ReceiveMessage (0..20)
# Received messages are deleted at once, so they need to stay invisible only for an instant.
# A short visibility timeout means a message whose receive response was lost (a retried
# request, a dropped connection) is delivered again within seconds, not after SQS's default
# 30 s; the extra copy is a duplicate, which the base class drops.
VISIBILITY_TIMEOUT = 5
# How long after its worker ended a receive left open can still take messages: its wait (SQS
# and the emulator answer a poll at the end of its wait, taking nothing that comes later),
# plus half a second for a request still on its way to a loaded server. The end-of-run drain
# waits this long and a visibility timeout more for messages in flight, and a run's slots are
# quiet again this long after it released them (`aws.leases`; its local and emulated workers
# were stopped before: see docs/reliability.md for the cases this does not cover).
POLL_LINGER = DEFAULT_POLL_WAIT + 0.5
PUBLISH_THREADS = 4
MAX_RETRIES = 8
THROTTLE_CODES = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
                  "TooManyRequestsException", "KMSThrottlingException", "InternalError", "ServiceUnavailable"}


def dst_attributes(dst: int) -> dict[str, dict[str, str]]:
    """The message attributes that route a frame to worker `dst` (String: see module doc)."""
    return {"dst": {"DataType": "String", "StringValue": str(dst)}}


def attr_bytes_for(dst: int) -> int:
    """SNS-counted size of `dst_attributes(dst)`; the cost model uses the same function."""
    return attribute_bytes(dst_attributes(dst))


def frame_limit(max_workers: int) -> int:
    """Largest raw frame for a deployment of `max_workers` slots (sized for the longest `dst`)."""
    return max_frame_bytes_for_sns(attr_bytes_for(max(max_workers - 1, 0)))


class QueueChannel(Channel):
    """One worker's end of the SNS -> SQS channel."""

    name = "queue"

    def __init__(self, run_id: str, worker: int, manifest: Any, poll_wait: int = DEFAULT_POLL_WAIT,
                 receive: bool = True, duplicate: bool = False, slots: list[int] | None = None,
                 quiet_at: float = 0.0) -> None:
        from ..aws.clients import botocore_config, client

        super().__init__(run_id, worker)
        # Worker p of the run receives on the queue of its leased slot slots[p] and is addressed
        # by that slot (the subscriptions filter on it); without a lease, slot p.
        self.slots = list(slots) if slots is not None else None
        me = self._slot(worker)
        if not 0 <= me < len(manifest.queue_urls):
            raise RunError(f"worker {worker}: slot {me} is not one of the deployment's {len(manifest.queue_urls)} queues")
        self.manifest = manifest
        self.topic_arn = manifest.topic_arns[me % len(manifest.topic_arns)]
        self.queue_url = manifest.queue_urls[me]
        self.sns = client(manifest, "sns", botocore_config(PUBLISH_THREADS * 2))
        self.sqs = client(manifest, "sqs", botocore_config(4))
        # The largest destination id has the longest attribute: size frames for it. A poll is
        # free with the receiver thread: it polls SQS, `_poll` reads its in-process inbox.
        self.capabilities = Capabilities(max_frame_bytes=frame_limit(manifest.max_workers), poll_is_free=receive)
        self.poll_wait = int(poll_wait)
        self.duplicate = duplicate  # publish everything twice: at-least-once delivery, for tests
        self._outbox: list[tuple[int, bytes]] = []
        self._pool = ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix=f"publish-w{worker}")
        self._inbox: queue_mod.Queue[bytes] = queue_mod.Queue()
        self._stop = threading.Event()
        self._receiver_error: BaseException | None = None
        self._receiver = None
        if receive:
            self._receiver = threading.Thread(target=self._receive_loop, name=f"receive-w{worker}", daemon=True)
            self._receiver.start()
        self._wait_until_quiet(quiet_at)

    def _wait_until_quiet(self, quiet_at: float) -> None:
        """Send nothing before `quiet_at` (time.time()), when the polls that workers of the
        slots' previous runs left open have ended (`aws.leases`): such a poll takes the frames
        it finds and hides them for the visibility timeout. Worker start-up usually outlasts
        it; the wait is capped at POLL_LINGER (clocks of other machines may differ)."""
        wait = min(quiet_at - time.time(), POLL_LINGER)
        if wait > 0:
            time.sleep(wait)
            self.stats.quiet_wait_s = wait

    @classmethod
    def from_config(cls, run_id: str, worker: int, config: dict[str, Any]) -> "QueueChannel":
        from ..aws.manifest import Manifest

        return cls(run_id, worker, Manifest.from_dict(config["manifest"]), config.get("poll_wait", DEFAULT_POLL_WAIT),
                   duplicate=bool(config.get("duplicate")), slots=config.get("slots"),
                   quiet_at=float(config.get("quiet_at", 0.0))).keyed(config)

    def _slot(self, worker: int) -> int:
        """The deployment slot (queue, filter value) of the run's worker `worker`."""
        return self.slots[worker] if self.slots is not None else worker

    # ---------------------------------------------------------------- sending
    def _send_frames(self, layer: int, dst: int, frames: list[bytes]) -> None:
        self._outbox.extend((dst, f) for f in frames)

    def _start_delivery(self) -> list[Future]:
        """Publish everything sent since the last flush, packed into PublishBatch calls, in
        threads that overlap the worker's computation."""
        outbox, self._outbox = self._outbox, []
        if not outbox:
            return []
        entries = [{"Id": str(i), "Message": base64.b64encode(frame).decode("ascii"),
                    "MessageAttributes": dst_attributes(self._slot(dst))} for i, (dst, frame) in enumerate(outbox)]
        sizes = [wire_size(len(frame), attr_bytes_for(self._slot(dst))) for dst, frame in outbox]
        batches = [[entries[i] for i in batch] for batch in pack_batches(sizes)]
        wires = [sum(sizes[i] for i in batch) for batch in pack_batches(sizes)]
        if self.duplicate:
            batches, wires = batches * 2, wires * 2
        return [self._pool.submit(self._publish, b, w) for b, w in zip(batches, wires)]

    def _publish(self, entries: list[dict], wire_bytes: int) -> None:
        from ..aws.clients import ClientError

        delay = 0.05
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = self.sns.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
                self.stats.count("sns:PublishBatch", 1, billed_publish_chunks(wire_bytes))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                self.stats.count("sns:PublishBatch", 1, billed_publish_chunks(wire_bytes))
                if code not in THROTTLE_CODES or attempt == MAX_RETRIES:
                    raise RunError(f"worker {self.worker}: SNS PublishBatch failed: {code or exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            failed = {f["Id"] for f in response.get("Failed", [])}
            if not failed:
                return
            if attempt == MAX_RETRIES:
                raise RunError(f"worker {self.worker}: SNS rejected {len(failed)} message(s) after retries")
            entries = [e for e in entries if e["Id"] in failed]
            wire_bytes = sum(len(e["Message"]) + attribute_bytes(e["MessageAttributes"]) for e in entries)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # ---------------------------------------------------------------- receiving
    def _receive_loop(self) -> None:
        """Drain the queue continuously into the in-process inbox until closed."""
        try:
            while not self._stop.is_set():
                for frame in self._receive_once(self.poll_wait):
                    self._inbox.put(frame)
        except BaseException as exc:  # surfaced by _poll in the worker's thread
            self._receiver_error = exc
            self._inbox.put(b"")

    def _receive_once(self, wait: int) -> list[bytes]:
        from ..aws.clients import BotoCoreError, ClientError

        try:
            resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=SQS_MAX_MESSAGES,
                                            WaitTimeSeconds=wait, VisibilityTimeout=VISIBILITY_TIMEOUT)
        except (ClientError, BotoCoreError) as exc:
            if self._stop.is_set():
                return []
            raise RunError(f"worker {self.worker}: SQS ReceiveMessage failed: {exc}") from exc
        messages = resp.get("Messages", [])
        payload = sum(len(m["Body"]) for m in messages)
        self.stats.count("sqs:ReceiveMessage", 1, billed_chunks(payload))
        if messages and self._stop.is_set():
            # Closed while this poll was under way: hand the messages back at once instead
            # of consuming them (another channel end of this worker slot may need them).
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)])
            self.stats.count("sqs:ChangeMessageVisibilityBatch")
            return []
        if messages:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
            self.stats.count("sqs:DeleteMessageBatch")
        frames = []
        for m in messages:
            try:
                frames.append(base64.b64decode(m["Body"], validate=True))
            except ValueError:
                self.stats.malformed += 1
        return frames

    def _poll(self, layer: int, pending: set[int], timeout: float) -> list[bytes]:
        if self._receiver is None:  # receive-less use (tests, cleanup): poll inline
            return self._receive_once(min(self.poll_wait, max(0, int(timeout))))
        try:
            frames = [self._inbox.get(timeout=max(timeout, 0.0))]
        except queue_mod.Empty:
            return []
        while True:
            try:
                frames.append(self._inbox.get_nowait())
            except queue_mod.Empty:
                break
        if self._receiver_error is not None:
            raise RunError(str(self._receiver_error)) from self._receiver_error
        return [f for f in frames if f]

    def _close(self) -> None:
        """Stop the receiver (it ends after its current long poll) and the publishers."""
        self._stop.set()
        self._pool.shutdown(wait=True)


def drain_queues(manifest: Any, workers: int, purge: bool = False, slots: list[int] | None = None) -> dict[str, int]:
    """Delete every message waiting in the run's queues (its `slots`, else the first `workers`);
    returns requests made.

    After a failed run a crashed worker may have left messages in flight (received, not
    deleted: invisible for the visibility timeout), which no receive can reach; `purge=True`
    first calls `PurgeQueue`, which removes those too (AWS allows one purge per queue per
    60 s; a refused purge falls back to draining). A worker that ended during a long poll
    can leave messages in flight too, even after a run that went well: its poll stays open
    at the server for up to `POLL_LINGER` and takes whatever arrives or becomes visible
    (another run's messages, or messages an earlier dead poll hid), so messages still in
    flight after the drain are waited for and drained as well: every poll open when the drain
    starts has ended `POLL_LINGER` later, and what it took is visible `VISIBILITY_TIMEOUT`
    after that.
    """
    from ..aws.clients import ClientError, botocore_config, client

    sqs = client(manifest, "sqs", botocore_config(4))
    counts = {"sqs:ReceiveMessage": 0, "sqs:DeleteMessageBatch": 0, "sqs:GetQueueAttributes": 0}
    urls = [manifest.queue_urls[s] for s in slots] if slots is not None else manifest.queue_urls[:workers]
    for url in urls:
        if purge:
            try:
                sqs.purge_queue(QueueUrl=url)
                counts["sqs:PurgeQueue"] = counts.get("sqs:PurgeQueue", 0) + 1
            except ClientError:
                pass
        deadline = time.monotonic() + POLL_LINGER + VISIBILITY_TIMEOUT + 1.0
        while True:
            resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=SQS_MAX_MESSAGES, WaitTimeSeconds=0,
                                       VisibilityTimeout=30)
            counts["sqs:ReceiveMessage"] += 1
            messages = resp.get("Messages", [])
            if messages:
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
                counts["sqs:DeleteMessageBatch"] += 1
                continue
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            counts["sqs:GetQueueAttributes"] += 1
            if not int(attrs["ApproximateNumberOfMessages"]) and not int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                break  # (a message that became visible since the receive is waiting: take it first)
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)  # in flight: visible again within the visibility timeout
    return counts
