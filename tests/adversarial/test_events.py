"""Forged worker events: the handler refuses them before it starts, reads or writes anything."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from fsd_core.engine.event import EventError, check_event
from fsd_core.engine.handler import handler

RUN = "0123456789ab"
DIGEST = "cd" * 16
DEPLOYED = f"{'ef' * 8}-{DIGEST}"  # a deployed model's id: model fingerprint, plan digest
MANIFEST = {"region": "us-east-1", "endpoint": "http://127.0.0.1:5000", "topic_arns": ["arn:t"],
            "queue_urls": [f"http://127.0.0.1:5000/q{i}" for i in range(8)], "bucket": "b",
            "function_name": "f", "max_workers": 8}


def local_event(tmp: Path) -> dict:
    """A local worker's event as the coordinator makes it."""
    scratch = tmp / "fsd-runs" / RUN
    return {"run_id": RUN, "worker": 0, "workers": 4, "branching": 2, "variant": "local",
            "channel": {"root": str(tmp / "fsd-local-channel" / RUN)},
            "stage": {"kind": "directory", "root": str(scratch / "stage")}, "launcher": {"kind": "local"},
            "manifest": None, "timeout": 60.0, "launch_grace": 30.0, "plan_digest": DIGEST, "need_mb": 150.3,
            "progress_dir": str(scratch / "progress"), "requested_at": 1.0}


def queue_event(deployed: bool = False) -> dict:
    """A queue worker's event; `deployed`: of a run on a deployed model (its shards' store)."""
    event = {"run_id": RUN, "worker": 0, "workers": 8, "branching": 2, "variant": "queue",
             "channel": {"manifest": MANIFEST, "poll_wait": 1, "key": "ab" * 32, "quiet_at": 1.8e9}, "manifest": MANIFEST,
             "stage": {"kind": "s3", "manifest": MANIFEST, "prefix": f"stage/{RUN}/"},
             "launcher": {"kind": "local"}, "timeout": 60, "progress_dir": None}
    if deployed:
        event.update(plan_digest=DIGEST, shards={"kind": "s3", "manifest": MANIFEST, "prefix": f"models/{DEPLOYED}/"})
    return event


def test_the_coordinators_events_pass(tmp_path):
    check_event(local_event(tmp_path))
    check_event(queue_event())
    # runs on a deployed model: its shards from models/<id> (read-only), the rest as usual
    check_event(dict(local_event(tmp_path), shards={"kind": "directory", "root": str(tmp_path / "models" / DEPLOYED)}))
    check_event(queue_event(deployed=True))


def _set(event: dict, path: str, value) -> dict:
    event = copy.deepcopy(event)
    *parents, leaf = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[leaf]
    else:
        target[leaf] = value
    return event


FORGED_LOCAL = {
    "not a run id": ("run_id", "../../etc"),
    "run id missing": ("run_id", KeyError),
    "worker outside the run": ("worker", 4),
    "negative worker": ("worker", -1),
    "worker as a string": ("worker", "0"),
    "no workers": ("workers", 0),
    "more workers than anyone has": ("workers", 10**6),
    "bool branching": ("branching", True),
    "unknown variant": ("variant", "shell"),
    "a need of nothing": ("need_mb", 0),
    "a negative need": ("need_mb", -1.0),
    "an infinite need": ("need_mb", float("inf")),
    "a need that is not a number": ("need_mb", "150"),
    "a need as a bool": ("need_mb", True),
    "a need beyond any memory": ("need_mb", 2.0**21),
    "nan timeout": ("timeout", float("nan")),
    "infinite timeout": ("timeout", float("inf")),
    "zero timeout": ("timeout", 0),
    "stage root outside the run": ("stage.root", "/etc"),
    "stage root climbing out": ("stage.root", f"/tmp/{RUN}/../../etc"),
    "unknown stage kind": ("stage.kind", "http"),
    "channel root outside the run": ("channel.root", "/var/tmp/x"),
    "unknown channel option": ("channel.exec", "rm -rf /"),
    "progress outside the run": ("progress_dir", "/tmp"),
    "unknown launcher": ("launcher.kind", "ssh"),
    "a manifest on a local run": ("manifest", MANIFEST),
    "a plan digest that is not one": ("plan_digest", "../x"),
    "shards outside models/": ("shards", {"kind": "directory", "root": "/etc"}),
    "shards of another plan": ("shards", {"kind": "directory", "root": f"/tmp/models/{'ef' * 8}-{'00' * 16}"}),
    "shards climbing out": ("shards", {"kind": "directory", "root": f"/tmp/models/../models/{DEPLOYED}"}),
    "shards in the bucket on a local run": ("shards", {"kind": "s3", "manifest": MANIFEST,
                                                      "prefix": f"models/{DEPLOYED}/"}),
    "shards of an unknown kind": ("shards", {"kind": "http", "root": "x"}),
}


@pytest.mark.parametrize("name", sorted(FORGED_LOCAL))
def test_forged_local_events_are_refused(tmp_path, name):
    path, value = FORGED_LOCAL[name]
    with pytest.raises(EventError):
        check_event(_set(local_event(tmp_path), path, value))


FORGED_QUEUE = {
    "more workers than the deployment's slots": ("workers", 9),
    "another run's stage prefix": ("stage.prefix", "stage/ffffffffffff/"),
    "the stage's parent prefix": ("stage.prefix", "stage/"),
    "a remote endpoint": ("manifest.endpoint", "http://10.0.0.1:5000"),
    "an https endpoint elsewhere": ("manifest.endpoint", "https://evil.example"),
    "no manifest": ("manifest", None),
    "a local root on a cloud channel": ("channel.root", f"/tmp/{RUN}"),
    "no run key": ("channel.key", KeyError),
    "a short run key": ("channel.key", "ab" * 8),
    "a run key that is not hex": ("channel.key", "zz" * 32),
    "a stage on another endpoint": ("stage.manifest", dict(MANIFEST, endpoint="http://127.0.0.1:6000")),
    "a stage in another bucket": ("stage.manifest", dict(MANIFEST, bucket="other")),
    "shards outside models/": ("shards", {"kind": "s3", "manifest": MANIFEST, "prefix": f"stage/{RUN}/"}),
    "shards in another bucket": ("shards", {"kind": "s3", "manifest": dict(MANIFEST, bucket="other"),
                                            "prefix": f"models/{DEPLOYED}/"}),
    "shards without a plan digest": ("plan_digest", KeyError),
    "slots quiet at no time": ("channel.quiet_at", float("nan")),
    "slots quiet for ever": ("channel.quiet_at", float("inf")),
    "slots quiet before the epoch": ("channel.quiet_at", -1.0),
    "slots quiet at a string": ("channel.quiet_at", "soon"),
    "slots quiet at a bool": ("channel.quiet_at", True),
}


@pytest.mark.parametrize("name", sorted(FORGED_QUEUE))
def test_forged_cloud_events_are_refused(name):
    path, value = FORGED_QUEUE[name]
    with pytest.raises(EventError):
        check_event(_set(queue_event(deployed=True), path, value))


def test_on_lambda_no_endpoint_and_no_other_function(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fsd-worker")
    event = _set(queue_event(), "manifest.endpoint", None)
    check_event(_set(event, "launcher", {"kind": "lambda", "function_name": "fsd-worker"}))
    with pytest.raises(EventError, match="endpoint"):
        check_event(queue_event())
    with pytest.raises(EventError, match="this function"):
        check_event(_set(event, "launcher", {"kind": "lambda", "function_name": "someone-else"}))


def test_the_functions_slots_bound_the_workers(monkeypatch):
    monkeypatch.setenv("FSD_MAX_WORKERS", "2")
    with pytest.raises(EventError, match="workers"):
        check_event(queue_event())


def _children() -> set[int]:
    me = os.getpid()
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == me}


def _ppid(pid: str) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_a_refused_event_starts_reads_and_writes_nothing(tmp_path):
    """30 workers asked for, with a stage outside the run: no process, no report, no file."""
    event = _set(_set(local_event(tmp_path), "workers", 30), "stage.root", str(tmp_path / "elsewhere"))
    before = _children()
    out = handler(event)
    assert out["status"] == "failed" and "stage" in out["error"]
    assert _children() - before == set()
    assert list(tmp_path.iterdir()) == []
