"""The worker entry point: `handler(event, context)` is what AWS Lambda calls.

Locally, `python -m fsd_core.engine.handler` runs the same function on the event a Lambda would get
(from the FSD_EVENT environment variable), so the local launcher exercises the deployed path:
start the children of the launch tree, fetch the shard and inputs from the stage, run the
layer loop over the run's channel, stage the result (worker 0) and a report.

Event fields: run_id, worker, workers, branching, variant, channel (config), stage (config),
launcher (config), manifest (cloud variants), timeout, requested_at; optional progress_dir,
plan_digest (names the shards, for a warm environment's cache: `warm.py`), shards (the store of
a deployed model's shards, when the run stages only its inputs), fault (test injection), debug.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Only light modules here: a worker starts its children first, then imports numpy and scipy
# (~0.3 s), so a launch tree does not pay the imports once per level.
from ..doorbell import open_bell, ring
from .event import EventError, check_event
from .launch import children, open_launcher
from .stage import open_stage

CHANNEL_OF_VARIANT = {"local": "local", "queue": "queue", "object": "object"}


# The coordinator's doorbell in the progress directory: rung after a worker stages its report,
# so a finished run is noticed at once, not at the coordinator's next poll (~10 ms later).
REPORT_BELL = "bell"

# The stage key the coordinator writes when the run is stopped (a signal, `fsd cancel`): each
# worker looks for it between layers, at most every STOP_CHECK_INTERVAL seconds (an S3 GET on
# the cloud stage), and ends at once when it is there.
STOP_KEY = "stop"
STOP_CHECK_INTERVAL = 1.0

# Seconds between progress files: a write and rename costs ~1 ms on a disk-backed /tmp, on
# the critical path of every layer if written per layer (0.12 s of a 120-layer run).
PROGRESS_INTERVAL = 0.1


def _progress_writer(directory: str | None, worker: int, layers: int):
    """A callback that records the last finished layer, at most every `PROGRESS_INTERVAL`
    seconds and always for the last layer (the live view needs no more)."""
    if not directory:
        return None
    target = Path(directory) / f"w{worker}"
    last = [float("-inf")]

    def write(layer: int) -> None:
        now = time.monotonic()
        if layer < layers and now - last[0] < PROGRESS_INTERVAL:
            return
        last[0] = now
        tmp = target.with_suffix(".tmp")
        tmp.write_text(str(layer))
        os.replace(tmp, target)

    return write


def _announce_pid(directory: str | None, worker: int) -> None:
    """Tell a local coordinator which process plays `worker` (`pid-<worker>` in the progress
    directory): it notices at once when that process dies without a report, instead of when a
    peer's message timeout expires."""
    if directory:
        target = Path(directory) / f"pid-{worker}"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, target)


def _between_layers(progress: Any, stage: Any, worker: int) -> Any:
    """What a worker does after each layer: record its progress (locally), and look for the
    run's stop signal (every STOP_CHECK_INTERVAL seconds) and end if it is there."""
    next_look = [time.monotonic() + STOP_CHECK_INTERVAL]

    def after(layer: int) -> None:
        if progress is not None:
            progress(layer)
        now = time.monotonic()
        if now >= next_look[0]:
            next_look[0] = now + STOP_CHECK_INTERVAL
            if stage.get(STOP_KEY) is not None:
                raise RuntimeError(f"worker {worker}: the run was stopped (after layer {layer})")

    return after


def _ring_coordinator(directory: str | None) -> None:
    fd = open_bell(Path(directory) / REPORT_BELL) if directory else None
    if fd is not None:
        try:
            ring(fd)
        finally:
            os.close(fd)


def _resources(since: dict[str, float] | None = None) -> dict[str, float]:
    """This process's CPU seconds and minor page faults (since the snapshot `since`: a warm
    process serves many events) and its peak resident memory: the footprint sizes a Lambda's
    memory setting, and system time and faults show page zeroing (docs/engine.md)."""
    try:
        import resource
    except ImportError:  # not on a Unix
        return {}
    r = resource.getrusage(resource.RUSAGE_SELF)
    now = {"cpu_user_s": r.ru_utime, "cpu_sys_s": r.ru_stime, "max_rss_mb": r.ru_maxrss / 1024,
           "minor_faults": r.ru_minflt}
    for key in ("cpu_user_s", "cpu_sys_s", "minor_faults"):
        now[key] -= (since or {}).get(key, 0)
    return now


def _load_shard(event: dict[str, Any], stage: Any, me: int, report: dict[str, Any]) -> Any:
    """Worker `me`'s shard: kept from an earlier invocation of this warm environment, else read
    from the deployed model's store (event `shards`) or the run's stage, and kept if it fits."""
    from ..plan.communication import WorkerShard
    from .payloads import shard_key
    from .warm import ENVIRONMENT

    digest = event.get("plan_digest")
    shard = ENVIRONMENT.shards.get(digest, me)
    if shard is not None:
        report["shard"] = "cached"
        return shard
    ENVIRONMENT.make_room(event.get("need_mb"))
    store = open_stage(event["shards"]) if event.get("shards") else stage
    try:
        data = store.get(shard_key(me))
    finally:
        if store is not stage:  # (the deployed model's store: its reads are the worker's too)
            count_requests(report, store)
    if data is None:
        raise RuntimeError(f"worker {me}: shard not found in the {'deployed model' if event.get('shards') else 'stage'}")
    report["loaded_bytes"] += len(data)
    shard = WorkerShard.from_bytes(data)
    del data  # the compressed copy: tens of MB for the whole run otherwise
    report["shard"] = "loaded"
    ENVIRONMENT.shards.put(digest, me, shard, shard.nbytes)
    return shard


def count_requests(report: dict[str, Any], store: Any, then: dict[str, int] | None = None) -> None:
    """Add the S3 requests `store` made (an S3 stage counts them; a directory makes none), and
    with `then` those about to be made, to the report's "stage_requests" (priced with the run)."""
    made = getattr(store, "requests", None)
    if made is None:
        return
    counts = report.setdefault("stage_requests", {})
    for api, n in list(made.items()) + list((then or {}).items()):
        counts[api] = counts.get(api, 0) + n


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Run one worker of a run; returns (and stages) its report.

    An event that fails `check_event` starts, reads and writes nothing: its stage, channel and
    launch tree are not to be trusted. Locally the refusal is returned; on Lambda (a `context`)
    it is raised, so that the invocation fails and Lambda sends the event to the function's
    on-failure destination, where the run's coordinator finds it (`aws/failures.py`).
    """
    try:
        check_event(event)
    except EventError as exc:
        if context is not None:
            raise
        return {"worker": None, "status": "failed", "error": str(exc)}
    started_at = time.time()
    from .warm import ENVIRONMENT

    start = ENVIRONMENT.begin(started_at)
    at_start = _resources()
    me = int(event["worker"])
    _announce_pid(event.get("progress_dir"), me)
    report: dict[str, Any] = {"worker": me, "pid": os.getpid(), "requested_at": event.get("requested_at"),
                              "started_at": started_at, "start": start.kind, "init_s": start.init_s,
                              "loaded_bytes": 0}
    launcher = open_launcher(event["launcher"], event.get("manifest"))
    kids = [launcher.start(dict(event, worker=c)) for c in children(me, int(event["workers"]), int(event["branching"]))]
    report["launched_at"] = time.time()
    stage = open_stage(event["stage"])
    channel = None
    try:
        from ..channels import open_channel
        from .payloads import RESULT_KEY, inputs_key, matrix_from_bytes, result_to_bytes
        from .worker import run_worker

        shard = _load_shard(event, stage, me, report)
        input_bytes = stage.get(inputs_key(me))
        if input_bytes is None:
            raise RuntimeError(f"worker {me}: inputs not found in the stage")
        report["loaded_bytes"] += len(input_bytes)
        inputs = matrix_from_bytes(input_bytes)
        del input_bytes
        report["loaded_at"] = time.time()
        channel = open_channel(CHANNEL_OF_VARIANT[event["variant"]], event["run_id"], me, event["channel"])
        outcome = run_worker(shard, inputs, channel, float(event["timeout"]),
                             progress=_between_layers(_progress_writer(event.get("progress_dir"), me,
                                                                       len(shard.layers)), stage, me),
                             fault=event.get("fault"), launch_grace=float(event.get("launch_grace", 0.0)))
        if outcome.result is not None:  # distinct rows + row map: small, expanded by the coordinator
            stage.put(RESULT_KEY, result_to_bytes(outcome.result))
        report.update(outcome.report(), status="ok", channel=channel.stats.as_dict())
    except Exception as exc:  # the report says why; the coordinator turns it into a RunError
        report.update(status="failed", error=str(exc) if str(exc).startswith("worker") else f"worker {me}: {exc}",
                      traceback=traceback.format_exc(limit=5))
        if channel is not None:
            report["channel"] = channel.stats.as_dict()
    finally:
        report["finished_at"] = time.time()
        report["resources"] = _resources(at_start)
        count_requests(report, stage, then={"s3:PutObject": 1})  # (the report's own PUT, next)
        stage.put(f"report-{me}.json", json.dumps(report).encode())
        _ring_coordinator(event.get("progress_dir"))
        if channel is not None:
            channel.close()
    for kid in kids:  # reap the processes we started (a no-op on Lambda)
        launcher.wait(kid, timeout=float(event["timeout"]))
    return {k: v for k, v in report.items() if k in ("worker", "status", "error")}


def main() -> int:
    event = json.loads(os.environ["FSD_EVENT"])
    result = handler(event)
    return 0 if result.get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
