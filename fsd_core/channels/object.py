"""FSD-Inf-Object: one S3 object per (run, layer, sender, receiver).

Sending: `PutObject` of `runs/{run}/l{layer}/{src}-{dst}` (S3 takes objects far larger than
any block, so a block is never chunked); the puts of a layer run in parallel threads at
`flush()`. A block with no non-zero is a zero-length object: the receiver still learns that
the sender is done with the layer, at the price of one request.

Receiving: the plan says exactly which keys to expect. Each missing key is fetched by its own
thread (`GetObject`), retried with capped exponential back-off while it does not exist yet
(NoSuchKey: billed like any GET), and every block is handed to the worker as soon as it
arrives, so the worker decodes and places blocks while others are still being written.

Clean-up: the coordinator deletes the run's prefix (`ListObjectsV2` + `DeleteObjects`); a
lifecycle rule on `runs/` (Terraform) expires anything a crash left behind.

Billing units counted: s3:PutObject, s3:GetObject (including misses), s3:ListObjectsV2,
s3:DeleteObjects.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import RunError
from .base import Channel
from .frames import Header, Message, encode_message, frames_for

GET_THREADS = 8
PUT_THREADS = 8
RETRY_FIRST = 0.01   # seconds before the first retry of a missing key
RETRY_CAP = 0.25     # longest pause between two GETs of one missing key


def object_key(run_id: str, layer: int, src: int, dst: int) -> str:
    return f"runs/{run_id}/l{layer}/{src}-{dst}"


def empty_block_frame(run_id: str, layer: int, src: int, dst: int, key: bytes | None = None) -> bytes:
    """The frame of an empty block. Unkeyed, a zero-length object stands for it (the receiver
    rebuilds this frame); keyed, it is sent as it is: a zero-length object carries no MAC, so
    anyone who can write to the bucket could forge one."""
    empty = encode_message(Message(sp.csr_matrix((0, 0), dtype=np.float32)))
    return frames_for(Header(run_id, layer, src, dst, 0, 1), empty, None, key=key)[0]


class ObjectChannel(Channel):
    """One worker's end of the S3 channel."""

    name = "object"  # capabilities: the default (frames of any size, compressed; a poll is a request)

    def __init__(self, run_id: str, worker: int, manifest: Any) -> None:
        from ..aws.clients import botocore_config, client

        super().__init__(run_id, worker)
        if not manifest.bucket:
            raise RunError(f"worker {worker}: the deployment has no bucket")
        self.bucket = manifest.bucket
        self.s3 = client(manifest, "s3", botocore_config(GET_THREADS + PUT_THREADS))
        self._puts: list[tuple[str, bytes]] = []
        self._put_pool = ThreadPoolExecutor(PUT_THREADS, thread_name_prefix=f"put-w{worker}")
        self._get_pool = ThreadPoolExecutor(GET_THREADS, thread_name_prefix=f"get-w{worker}")
        self._fetching: dict[tuple[int, int], Future] = {}

    @classmethod
    def from_config(cls, run_id: str, worker: int, config: dict[str, Any]) -> "ObjectChannel":
        from ..aws.manifest import Manifest

        return cls(run_id, worker, Manifest.from_dict(config["manifest"])).keyed(config)

    # ---------------------------------------------------------------- sending
    def _frames(self, layer: int, dst: int, msg: Message) -> list:
        """An empty block is a zero-length object, or, keyed, its small MAC'd frame (its row map
        is moot, and not remembered)."""
        if msg.empty:
            return [empty_block_frame(self.run_id, layer, self.worker, dst, self.key) if self.key else b""]
        return super()._frames(layer, dst, msg)

    def _send_frames(self, layer: int, dst: int, frames: list[bytes]) -> None:
        (frame,) = frames  # never chunked: max_frame_bytes is None
        self._puts.append((object_key(self.run_id, layer, self.worker, dst), frame))

    def _start_delivery(self) -> list[Future]:
        """The layer's puts, in parallel threads (they overlap computation)."""
        puts, self._puts = self._puts, []
        return [self._put_pool.submit(self._put, key, body) for key, body in puts]

    def _put(self, key: str, body: bytes) -> None:
        from ..aws.clients import BotoCoreError, ClientError

        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise RunError(f"worker {self.worker}: S3 PutObject {key} failed: {exc}") from exc
        finally:
            self.stats.count("s3:PutObject")

    # ---------------------------------------------------------------- receiving
    def _poll(self, layer: int, pending: set[int], timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        for src in pending:
            if (layer, src) not in self._fetching:
                self._fetching[(layer, src)] = self._get_pool.submit(self._fetch, layer, src, deadline)
        waiting = {self._fetching[(layer, src)]: src for src in pending}
        done, _ = wait(waiting, timeout=max(timeout, 0.0), return_when=FIRST_COMPLETED)
        frames = []
        for future in done:
            src = waiting[future]
            del self._fetching[(layer, src)]
            frame = future.result()
            if frame is not None:
                frames.append(frame)
        return frames

    def _fetch(self, layer: int, src: int, deadline: float) -> bytes | None:
        """GET one expected key, retrying while it does not exist yet; None past the deadline."""
        from ..aws.clients import BotoCoreError, ClientError

        key = object_key(self.run_id, layer, src, self.worker)
        pause = RETRY_FIRST
        while True:
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                self.stats.count("s3:GetObject")
                break
            except ClientError as exc:
                self.stats.count("s3:GetObject")
                if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                    raise RunError(f"worker {self.worker}: S3 GetObject {key} failed: {exc}") from exc
            except BotoCoreError as exc:
                raise RunError(f"worker {self.worker}: S3 GetObject {key} failed: {exc}") from exc
            if time.monotonic() + pause > deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, RETRY_CAP)
        if body or self.key:
            return body  # keyed: a zero-length object is no frame (`_accept` drops it, the GET is retried)
        return empty_block_frame(self.run_id, layer, src, self.worker)

    def _close(self) -> None:
        self._put_pool.shutdown(wait=True)
        self._get_pool.shutdown(wait=False, cancel_futures=True)


def delete_run_objects(manifest: Any, run_id: str) -> dict[str, int]:
    """Delete every object under `runs/{run_id}/`; returns the requests it took."""
    return delete_run_objects_under(manifest, f"runs/{run_id}/")


def delete_run_objects_under(manifest: Any, prefix: str) -> dict[str, int]:
    """Delete every object under `prefix` of the deployment bucket; returns the requests.
    RunError (one line) if S3 refuses or keeps any of them; a bucket that is gone has none."""
    from ..aws.clients import BotoCoreError, ClientError, aws_failure, client

    s3 = client(manifest, "s3")
    counts = {"s3:ListObjectsV2": 0, "s3:DeleteObjects": 0}
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=manifest.bucket, Prefix=prefix):
            counts["s3:ListObjectsV2"] += 1
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            for i in range(0, len(keys), 1000):
                answer = s3.delete_objects(Bucket=manifest.bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
                counts["s3:DeleteObjects"] += 1
                kept = answer.get("Errors") or []
                if kept:  # (DeleteObjects answers 200 and lists the keys it did not delete)
                    first = kept[0]
                    raise RunError(f"S3 DeleteObjects kept {len(kept)} object(s) under {prefix}, e.g. "
                                   f"{first.get('Key')}: {first.get('Code')} {first.get('Message') or ''}".rstrip())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return counts
        raise RunError(aws_failure("S3", "ListObjectsV2/DeleteObjects", exc) + f" ({prefix})") from exc
    except BotoCoreError as exc:
        raise RunError(aws_failure("S3", "ListObjectsV2/DeleteObjects", exc) + f" ({prefix})") from exc
    return counts


def count_objects_under(manifest: Any, prefix: str) -> int:
    """How many objects the deployment bucket holds under `prefix` (`fsd gc --dry-run`)."""
    from ..aws.clients import client

    pages = client(manifest, "s3").get_paginator("list_objects_v2").paginate(Bucket=manifest.bucket, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)
