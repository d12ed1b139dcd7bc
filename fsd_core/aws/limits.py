"""How the queue channel packs frames into SNS `PublishBatch` calls, and how AWS bills them.

Pure arithmetic (no boto3), shared by `channels/queue.py` and `cost.py` so that the cost model
predicts the queue channel's requests exactly: both call `pack_batches` on the same wire sizes.

Limits (Amazon SNS developer guide, "Amazon SNS message batching"): a `PublishBatch` request
carries up to 10 entries, and "the total aggregate size of all messages that you send in a
single PublishBatch API request can't exceed 262,144 bytes (256 KiB)". The size of a message
is its body plus its message attributes (name, data type and value all count).

Frames are binary, the SNS body is a string, so the channel base64-encodes each frame: a frame
of n raw bytes costs 4*ceil(n/3) body bytes plus its attribute bytes (`wire_size`).

Billing (SNS pricing page, us-east-1): "Each 64KB chunk of published data is billed as 1
request. For example, a single API call with a 256KB payload will be billed as four
requests." We apply that to the aggregate payload of one `PublishBatch` call:
billed = max(1, ceil(sum of entry wire sizes / 65,536)) (`billed_publish_chunks`).
SNS -> SQS deliveries are free; the SQS side bills its own requests (see `cost.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

BILLING_CHUNK = 64 * 1024  # SNS, SQS bill every 64 KiB of a payload as one request


def billed_chunks(nbytes: int) -> int:
    """Requests billed for one payload of `nbytes` (at least one)."""
    return max(1, -(-nbytes // BILLING_CHUNK))


#: Entries in one SNS PublishBatch request (and messages in one SQS ReceiveMessage).
SNS_MAX_BATCH_ENTRIES = 10
#: Bytes of one PublishBatch request (bodies + attributes), and of one SNS message.
SNS_MAX_PAYLOAD = 256 * 1024  # 262,144

#: Bytes of an asynchronous Lambda `Invoke` payload (InvocationType Event) we stay within: the
#: event of every worker. AWS allowed 256 KiB until October 2025 and 1 MiB since (Lambda API
#: reference, Invoke); the lower bound holds in every region and keeps events small.
LAMBDA_ASYNC_MAX_PAYLOAD = 256 * 1024
#: Seconds a Lambda invocation may run at most (its timeout's upper bound): Lambda ends it then.
LAMBDA_MAX_SECONDS = 900.0

__all__ = ["LAMBDA_ASYNC_MAX_PAYLOAD", "LAMBDA_MAX_SECONDS", "SNS_MAX_BATCH_ENTRIES", "SNS_MAX_PAYLOAD", "BILLING_CHUNK", "attribute_bytes",
           "base64_len", "max_frame_bytes_for_sns", "wire_size", "pack_batches",
           "billed_publish_chunks"]


def base64_len(n: int) -> int:
    """Length of the base64 text of `n` raw bytes (with padding)."""
    return 4 * (-(-n // 3))


def attribute_bytes(attributes: Mapping[str, Mapping[str, str]]) -> int:
    """Size SNS counts for message attributes: name + DataType + value, UTF-8 bytes.

    `attributes` is the boto3 shape, e.g. ``{"dst": {"DataType": "String", "StringValue": "3"}}``.
    """
    total = 0
    for name, attr in attributes.items():
        value = attr.get("StringValue", "")
        total += len(name.encode()) + len(attr["DataType"].encode()) + len(value.encode())
    return total


def max_frame_bytes_for_sns(attr_bytes: int) -> int:
    """Largest raw frame n with 4*ceil(n/3) + attr_bytes <= SNS_MAX_PAYLOAD."""
    room = (SNS_MAX_PAYLOAD - attr_bytes) // 4 * 4
    if attr_bytes < 0 or room < 4:
        raise ValueError(f"{attr_bytes} attribute bytes leave no room for a frame in an SNS message")
    return room // 4 * 3


def wire_size(frame_len: int, attr_bytes: int) -> int:
    """Bytes one frame of `frame_len` raw bytes takes in a PublishBatch request."""
    return base64_len(frame_len) + attr_bytes


def pack_batches(sizes: Sequence[int]) -> list[list[int]]:
    """Group entries (wire sizes, in send order) into PublishBatch calls; returns indices.

    Greedy and deterministic: an entry joins the current batch if the batch then has at most
    `SNS_MAX_BATCH_ENTRIES` entries and `SNS_MAX_PAYLOAD` bytes, else it starts a new one. So
    no two consecutive batches could be merged, and a channel that publishes a batch as soon
    as the next entry does not fit makes exactly these calls.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if not 0 <= size <= SNS_MAX_PAYLOAD:
            raise ValueError(f"entry {i} has {size} wire bytes; an SNS message holds 0..{SNS_MAX_PAYLOAD}")
        if current and (len(current) == SNS_MAX_BATCH_ENTRIES or used + size > SNS_MAX_PAYLOAD):
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        batches.append(current)
    return batches


def billed_publish_chunks(batch_wire_bytes: int) -> int:
    """Publish requests billed for one PublishBatch call of `batch_wire_bytes` (64 KiB each)."""
    return billed_chunks(batch_wire_bytes)
