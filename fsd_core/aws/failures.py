"""Lambda's on-failure records: what a failed asynchronous invocation leaves on the failure queue.

Terraform gives the worker function an async invoke config with 0 retries and an on-failure
destination, the deployment's failure queue (`failure_queue_url` in the manifest). When an
invocation fails (the handler raised, the runtime died: crash, out of memory, timeout) or its
event waited in Lambda's queue longer than the maximum event age, Lambda sends one JSON record
there (AWS Lambda developer guide, "Capturing records of Lambda asynchronous invocations"):

    {"version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
     "requestContext": {"requestId": "...", "functionArn": "arn:aws:lambda:...:function:f:$LATEST",
                        "condition": "RetriesExhausted" | "EventAgeExceeded", "approximateInvokeCount": 1},
     "requestPayload": <the event>,
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
     "responsePayload": {"errorMessage": "...", "errorType": "...", "stackTrace": [...]}}

`parse_record` reads one (bytes from outside: bounded, one-line `RecordError`, never anything
else); `make_record` writes one (the emulated Lambda, `lambda_emulation.py`); `FailureWatch` is
what the coordinator looks at during a Lambda-launched run: a record whose event is one of this
run's workers fails the run within a look or two, naming the worker and the condition.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .manifest import Manifest

#: Records larger than this are not records (an SQS message holds at most 1 MiB).
MAX_RECORD_BYTES = 1024 * 1024
#: A record sent longer ago than this concerns a run that is over: a worker lives at most one
#: invocation (Lambda's 15-minute cap), so no run still waits on it. Such records are deleted.
STALE_S = 15 * 60 + 60
#: Seconds between two looks at the queue (each is one ReceiveMessage, or a few).
LOOK_INTERVAL_S = 1.0
#: ReceiveMessage calls per look at most (10 records each): the queue also holds other runs' records.
BATCHES_PER_LOOK = 5
#: A look hides the records it received this long at most (so that its next ReceiveMessage
#: returns others); at its end it makes other runs' records visible again at once.
PEEK_VISIBILITY_S = 2
CONDITIONS = ("RetriesExhausted", "EventAgeExceeded")
_RUN_ID = re.compile(r"^[0-9a-f]{12}$")
_LINE_CHARS = 240


class RecordError(ValueError):
    """Not an on-failure record (one line saying why)."""


def _one_line(text: Any, limit: int = _LINE_CHARS) -> str:
    """Printable, single-line, bounded text of a value from outside."""
    s = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


@dataclass(frozen=True)
class FailureRecord:
    """What the coordinator needs of one record."""

    request_id: str
    function_arn: str
    condition: str
    invoke_count: int
    run_id: str | None  # the event's run and worker, when the event is one of ours
    worker: int | None
    error_type: str | None
    error_message: str | None

    def line(self) -> str:
        """One line for the run's error: the worker, the condition and why."""
        who = f"worker {self.worker}" if self.worker is not None else "a worker"
        tries = f"{self.invoke_count} attempt{'s' if self.invoke_count != 1 else ''}"
        why = ": ".join(x for x in (self.error_type, self.error_message) if x)
        what = ("its event expired in Lambda's queue before it ran" if self.condition == "EventAgeExceeded"
                else f"its Lambda invocation failed after {tries}")
        return f"{who}: {what} ({self.condition}){': ' + why if why else ''}"


def parse_record(body: str | bytes) -> FailureRecord:
    """Decode one on-failure record; RecordError (one line) for anything that is not one."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if len(body) > MAX_RECORD_BYTES:
        raise RecordError(f"failure record of {len(body)} bytes is over {MAX_RECORD_BYTES}")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RecordError(f"failure record is not JSON ({_one_line(type(exc).__name__)})") from None
    if not isinstance(doc, dict):
        raise RecordError("failure record is not a JSON object")
    context = doc.get("requestContext")
    if not isinstance(context, dict):
        raise RecordError("failure record has no requestContext")
    condition = context.get("condition")
    if condition not in CONDITIONS:
        raise RecordError(f"failure record's condition {_one_line(condition, 40)!r} is not one of "
                          f"{', '.join(CONDITIONS)}")
    count = context.get("approximateInvokeCount", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1000:
        raise RecordError("failure record's approximateInvokeCount is not a small integer")
    run_id, worker = _whose(doc.get("requestPayload"))
    error_type = error_message = None
    response = doc.get("responsePayload")
    if isinstance(response, dict):
        error_type = _one_line(response["errorType"], 80) if isinstance(response.get("errorType"), str) else None
        if isinstance(response.get("errorMessage"), str):
            error_message = _one_line(response["errorMessage"])
    elif isinstance(response, str):
        error_message = _one_line(response)
    return FailureRecord(request_id=_one_line(context.get("requestId", ""), 64),
                         function_arn=_one_line(context.get("functionArn", ""), 200),
                         condition=condition, invoke_count=count, run_id=run_id, worker=worker,
                         error_type=error_type or None, error_message=error_message or None)


def _whose(payload: Any) -> tuple[str | None, int | None]:
    """(run_id, worker) of an event the coordinator made, (None, None) for any other payload."""
    if not isinstance(payload, dict):
        return None, None
    run_id, worker = payload.get("run_id"), payload.get("worker")
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        return None, None
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < 1 << 20:
        return run_id, None
    return run_id, worker


def make_record(function_arn: str, payload: bytes, condition: str = "RetriesExhausted", *,
                error: dict[str, Any] | None = None, request_id: str | None = None,
                invoke_count: int = 1, now: float | None = None) -> dict[str, Any]:
    """The record Lambda sends for a failed invocation of `function_arn` on `payload` (its event)."""
    try:
        request: Any = json.loads(payload) if payload else {}
    except ValueError:
        request = payload.decode("utf-8", "replace")
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
        "requestContext": {"requestId": request_id or str(uuid.uuid4()), "functionArn": f"{function_arn}:$LATEST",
                           "condition": condition, "approximateInvokeCount": invoke_count},
        "requestPayload": request,
    }
    if condition == "RetriesExhausted":
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        record["responsePayload"] = error or {"errorMessage": "the function failed", "errorType": "Unhandled"}
    return record


class FailureWatch:
    """Looks at the deployment's failure queue for records of one run's workers.

    `look()` costs nothing between looks (at most one every `interval` s) and never raises: a
    failure queue the coordinator cannot read only means failures are noticed the slow way
    (a peer's message timeout). Records of this run are consumed; records of other runs are
    left for their coordinators (visible again as soon as the look ends), and deleted only once
    stale (`STALE_S`), whoever they belong to.
    """

    def __init__(self, manifest: Manifest, run_id: str, interval: float = LOOK_INTERVAL_S) -> None:
        from .clients import client

        if not manifest.failure_queue_url:
            raise ValueError("the deployment names no failure queue")
        self.queue_url = manifest.failure_queue_url
        self.run_id = run_id
        self.interval = interval
        self.sqs = client(manifest, "sqs")
        self.problem: str | None = None  # why the last look could not read the queue
        self.requests: dict[str, int] = {}  # the SQS requests its looks made (priced with the run)
        self._next = 0.0

    def look(self) -> str | None:
        """One line naming this run's failed worker if the queue has its record, else None."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.interval
        try:
            return self._sweep()
        except Exception as exc:  # noqa: BLE001 - the watch must never fail a healthy run
            from .clients import aws_failure

            self.problem = aws_failure("sqs", "ReceiveMessage", exc)
            return None

    def _sweep(self) -> str | None:
        others: list[str] = []  # receipt handles of other runs' records, shown again at the end
        found: list[str] = []  # this run's records (all of a batch are consumed, the first named)
        try:
            for _ in range(BATCHES_PER_LOOK):
                self._count("sqs:ReceiveMessage")
                answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                                  VisibilityTimeout=PEEK_VISIBILITY_S, AttributeNames=["SentTimestamp"])
                messages = answer.get("Messages", [])
                for message in messages:
                    line = self._consider(message, others)
                    if line is not None:
                        found.append(line)
                if found or not messages:
                    break
        finally:
            try:
                self._show_again(others)
            except Exception:  # noqa: BLE001 - they show again by themselves after PEEK_VISIBILITY_S
                pass
        return found[0] if found else None

    def _consider(self, message: dict[str, Any], others: list[str]) -> str | None:
        """This run's record: consumed, its line returned; another run's: kept aside to be
        shown again, or deleted once stale (`STALE_S`), whoever it belongs to."""
        try:
            record: FailureRecord | None = parse_record(message.get("Body", ""))
        except RecordError:
            record = None
        if record is not None and record.run_id == self.run_id:
            self._delete(message)
            return record.line()
        sent = message.get("Attributes", {}).get("SentTimestamp", "")
        if sent.isdigit() and time.time() - int(sent) / 1000 > STALE_S:
            self._delete(message)
        else:
            others.append(message["ReceiptHandle"])
        return None

    def _show_again(self, handles: list[str]) -> None:
        """Other runs' records: visible to their own watchers again at once."""
        for i in range(0, len(handles), 10):
            self._count("sqs:ChangeMessageVisibilityBatch")
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(k), "ReceiptHandle": h, "VisibilityTimeout": 0} for k, h in enumerate(handles[i:i + 10])])

    def _count(self, api: str) -> None:
        self.requests[api] = self.requests.get(api, 0) + 1

    def _delete(self, message: dict[str, Any]) -> None:
        self._count("sqs:DeleteMessage")
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
