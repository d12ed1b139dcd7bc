"""The worker's event, checked before the handler starts anything.

A worker's event decides what it starts (its launch-tree children), where it reads and writes
(the stage, the channel, the progress directory) and which endpoint its AWS clients talk to.
Whoever can invoke the function controls the event, so the handler refuses an event that is
not one the coordinator makes: a malformed field, more workers than the deployment's slots, a
stage, channel or progress directory outside the run's own, or an endpoint where the
deployment has none. Nothing is started, read or written for a refused event.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ..errors import InputError

VARIANTS = ("local", "queue", "object")
#: Run ids are 12 lower-case hex digits (run.coordinator.new_run_id).
RUN_ID = re.compile(r"^[0-9a-f]{12}$")
#: A Lambda invocation lasts at most 900 s; a worker's message timeout cannot exceed it by much.
MAX_TIMEOUT_S = 3600.0
#: Worker slots when neither the deployment nor the environment says (the largest plan we make).
MAX_WORKERS = 1024
#: Set on the Lambda function by Terraform: the deployment's worker slots.
SLOTS_ENV = "FSD_MAX_WORKERS"
LAUNCHERS = ("local", "pool", "lambda")
#: Keys a channel config may carry: its location, the queue channel's slots, poll wait, when
#: its slots are quiet (`aws.leases`) and test option.
CHANNEL_OPTIONS = frozenset({"root", "spares", "manifest", "poll_wait", "duplicate", "key", "slots", "quiet_at"})
#: A plan's digest: 16 bytes of BLAKE2b over its shards (run.coordinator), in hex.
PLAN_DIGEST = re.compile(r"^[0-9a-f]{32}$")
#: A deployed model's id: its model fingerprint and its plan digest (run.serving).
DEPLOYED_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{32}$")
DEPLOYED_PREFIX = re.compile(r"^models/[0-9a-f]{16}-[0-9a-f]{32}/$")
#: The run's secret key: hex of 32 bytes (channels/frames.py KEY_SIZE).
RUN_KEY = re.compile(r"^[0-9a-f]{64}$")


#: Largest `need_mb` an event may carry (a worker's estimated memory need; Lambda's largest
#: function has 10,240 MB, a local process may need more).
MAX_NEED_MB = 1 << 20


class EventError(InputError):
    """An event the handler refuses (one line naming the field)."""


def check_event(event: Any) -> None:
    """Raise EventError unless `event` is a well-formed event of one run's worker."""
    if not isinstance(event, Mapping):
        raise EventError("event: must be a JSON object")
    run_id = _field(event, "run_id", str)
    if not RUN_ID.match(run_id):
        raise EventError(f"event: run_id {run_id[:40]!r} is not a run id (12 hex digits)")
    workers = _int(event, "workers", 1, _slots(event))
    _int(event, "worker", 0, workers - 1)
    _int(event, "branching", 1, MAX_WORKERS)
    variant = _field(event, "variant", str)
    if variant not in VARIANTS:
        raise EventError(f"event: variant {variant[:40]!r} is not one of {', '.join(VARIANTS)}")
    timeout = _field(event, "timeout", (int, float))
    if isinstance(timeout, bool) or not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise EventError(f"event: timeout must be a number of seconds in (0, {MAX_TIMEOUT_S:g}]")
    grace = event.get("launch_grace", 0.0)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= MAX_TIMEOUT_S:
        raise EventError("event: launch_grace must be a number of seconds in [0, 3600]")
    need = event.get("need_mb")
    if need is not None and (isinstance(need, bool) or not isinstance(need, (int, float)) or not math.isfinite(need)
                             or not 0 < need <= MAX_NEED_MB):
        raise EventError(f"event: need_mb must be a number of MB in (0, {MAX_NEED_MB}]")
    _check_manifest(event.get("manifest"), variant)
    _check_stage(_field(event, "stage", Mapping), run_id, event.get("manifest"))
    _check_shards(event)
    _check_channel(_field(event, "channel", Mapping), run_id, variant)
    _check_launcher(_field(event, "launcher", Mapping))
    progress = event.get("progress_dir")
    if progress is not None and not _run_path(progress, run_id):
        raise EventError("event: progress_dir is not the run's own directory")


def _field(event: Mapping[str, Any], name: str, kind: Any) -> Any:
    if name not in event:
        raise EventError(f"event: no field {name!r}")
    value = event[name]
    if not isinstance(value, kind):
        raise EventError(f"event: field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _int(event: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    value = _field(event, name, int)
    if isinstance(value, bool) or not lo <= value <= hi:
        raise EventError(f"event: {name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _slots(event: Mapping[str, Any]) -> int:
    """The deployment's worker slots: the function's environment, else its manifest, else the cap."""
    env = os.environ.get(SLOTS_ENV, "")
    if env.isdigit():
        return min(int(env), MAX_WORKERS)
    manifest = event.get("manifest")
    if isinstance(manifest, Mapping) and isinstance(manifest.get("max_workers"), int):
        return min(manifest["max_workers"], MAX_WORKERS)
    return MAX_WORKERS


def _local_parts(path: Any) -> tuple[str, ...]:
    """The parts of a local path an event may name: none for a non-string, an empty path, a NUL,
    or a path that climbs with '..'."""
    if not isinstance(path, str) or not path or "\0" in path:
        return ()
    parts = PurePosixPath(path).parts
    return () if ".." in parts else parts


def _run_path(path: Any, run_id: str) -> bool:
    """A local path that names the run: one of its parts is the run id, and no part is '..'."""
    return run_id in _local_parts(path)


def _check_manifest(manifest: Any, variant: str) -> None:
    if variant == "local":
        if manifest is not None:
            raise EventError("event: a local run carries no deployment manifest")
        return
    if not isinstance(manifest, Mapping):
        raise EventError(f"event: a {variant} run needs its deployment manifest")
    endpoint = manifest.get("endpoint")
    if endpoint is None:
        return
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # on AWS: the deployment has no endpoint
        raise EventError("event: an endpoint is not allowed on AWS")
    url = urlparse(endpoint) if isinstance(endpoint, str) else None
    if url is None or url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise EventError("event: the emulator's endpoint must be a loopback http URL")


def _check_stage(stage: Mapping[str, Any], run_id: str, manifest: Any) -> None:
    kind = stage.get("kind")
    if kind == "directory":
        if not _run_path(stage.get("root"), run_id):
            raise EventError("event: the stage is not the run's own directory")
    elif kind == "s3":
        if stage.get("prefix") != f"stage/{run_id}/":
            raise EventError("event: the stage prefix is not the run's own (stage/<run_id>/)")
        if not _same_place(stage.get("manifest"), manifest):
            raise EventError("event: the stage is not in the run's deployment")
    else:
        raise EventError(f"event: unknown stage kind {str(kind)[:40]!r}")


def _same_place(a: Any, b: Any) -> bool:
    """Two manifests that name the same endpoint, region and bucket (where objects go)."""
    keys = ("endpoint", "region", "bucket")
    return isinstance(a, Mapping) and isinstance(b, Mapping) and all(a.get(k) == b.get(k) for k in keys)


def _check_shards(event: Mapping[str, Any]) -> None:
    """A deployed model's shards: read-only, under `models/<id>/` of the run's own deployment
    (or a local `models/<id>` directory), where the id ends in the event's plan digest."""
    digest = event.get("plan_digest")
    if digest is not None and (not isinstance(digest, str) or not PLAN_DIGEST.match(digest)):
        raise EventError("event: plan_digest is not a plan digest (32 hex digits)")
    store = event.get("shards")
    if store is None:
        return
    if not isinstance(store, Mapping) or digest is None:
        raise EventError("event: shards must be a store of the plan named by plan_digest")
    kind = store.get("kind")
    if kind == "s3":
        prefix = store.get("prefix")
        match = DEPLOYED_PREFIX.match(prefix) if isinstance(prefix, str) else None
        if match is None or not _same_place(store.get("manifest"), event.get("manifest")):
            raise EventError("event: the shards are not a deployed model's (models/<id>/ of the run's deployment)")
    elif kind == "directory":
        parts = _local_parts(store.get("root"))
        match = DEPLOYED_ID.match(parts[-1]) if len(parts) >= 2 and parts[-2] == "models" else None
        if match is None or event.get("variant") != "local":
            raise EventError("event: the shards are not a deployed model's directory (.../models/<id>)")
    else:
        raise EventError(f"event: unknown shards store kind {str(kind)[:40]!r}")
    if not match.group(0).rstrip("/").endswith(digest):
        raise EventError("event: the shards are not those of the event's plan_digest")


def _check_channel(channel: Mapping[str, Any], run_id: str, variant: str) -> None:
    unknown = set(channel) - CHANNEL_OPTIONS
    if unknown:
        raise EventError(f"event: unknown channel option {sorted(unknown)[0][:40]!r}")
    key = channel.get("key")
    if key is not None and (not isinstance(key, str) or not RUN_KEY.match(key)):
        raise EventError("event: the channel key is not a run key (64 hex digits)")
    if variant != "local" and key is None:
        raise EventError(f"event: a {variant} run's channel needs the run's key")
    slots = channel.get("slots")
    if slots is not None and (not isinstance(slots, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < MAX_WORKERS for s in slots)
            or len(set(slots)) != len(slots)):
        raise EventError("event: the channel's slots are not distinct slot numbers")
    quiet = channel.get("quiet_at", 0.0)
    if isinstance(quiet, bool) or not isinstance(quiet, (int, float)) or not math.isfinite(quiet) or quiet < 0:
        raise EventError("event: the channel's quiet_at is not a time (seconds since the epoch)")
    if variant == "local":
        if not _run_path(channel.get("root"), run_id):
            raise EventError("event: the local channel is not the run's own directory")
        spares = channel.get("spares")
        if spares is not None and (not isinstance(spares, str) or ".." in PurePosixPath(spares).parts):
            raise EventError("event: bad local channel spares directory")
    elif "root" in channel:
        raise EventError(f"event: a {variant} channel has no local root")


def _check_launcher(launcher: Mapping[str, Any]) -> None:
    kind = launcher.get("kind")
    if kind not in LAUNCHERS:
        raise EventError(f"event: unknown launcher {str(kind)[:40]!r}")
    if kind == "lambda" and os.environ.get("AWS_LAMBDA_FUNCTION_NAME") not in (None, launcher.get("function_name")):
        raise EventError("event: the launch tree may only invoke this function")
