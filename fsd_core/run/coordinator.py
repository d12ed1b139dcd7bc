"""A run: plan, stage shards, launch, watch, gather, verify, record.

The coordinator is the client side of FSD-Inference. It never computes a layer itself (but
for the `serial` variant, which runs the serial kernel through the same path: same record,
same summary). Everything a worker needs travels through the stage and the worker's event,
exactly as on AWS.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import secrets
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..aws.limits import LAMBDA_MAX_SECONDS
from ..channels.frames import KEY_SIZE
from ..doorbell import Doorbell
from ..engine.handler import REPORT_BELL, STOP_KEY
from ..engine.launch import Launcher, LocalLauncher
from ..engine.payloads import (
    RESULT_KEY,
    inputs_key,
    matrix_to_bytes,
    result_from_bytes,
    shard_key,
    shards_digest,
)
from ..engine.stage import DirectoryStage, Stage
from ..errors import InputError, Interrupted, RunError
from ..kernel.serial import categories_of, infer
from ..model.network import SparseDNN, read_inputs
from ..processes import process_running, started_at
from .plans import cached_plan, model_fingerprint, plan_cache_dir  # noqa: F401 (re-exported)
from .records import RunStore

VARIANTS = ("serial", "local", "queue", "object")
DEFAULT_TIMEOUT = 60.0  # seconds a worker waits for a promised message before failing
DEFAULT_LAUNCH_GRACE = 60.0  # extra wait in layer 1, while the launch tree is still starting workers


@dataclass
class RunConfig:
    """What to run and how. Paths are the CLI's; `model`/`inputs` objects may be given instead."""

    model_path: str | None
    inputs_path: str | None
    variant: str = "local"
    workers: int = 4
    partition: str | None = None
    per_layer: bool | None = None  # None: the partitioner default (per-layer)
    branching: int = 2
    timeout: float = DEFAULT_TIMEOUT
    launch_grace: float = DEFAULT_LAUNCH_GRACE
    seed: int = 0
    verify: bool = False
    record: bool = True
    runs_db: str | None = None
    manifest: dict[str, Any] | None = None
    memory_mb: int = 2048  # Lambda memory the run's dollars are computed for
    #: How a cloud run's workers start: None, the deployment's way (Lambda `Invoke` on AWS, local
    #: processes under the worker role at the emulator); "lambda", through the deployment's Lambda
    #: API at the emulator too (its emulated Lambda runs them: `aws/lambda_emulation.py`).
    launcher: str | None = None
    pool: Any = None  # a pool.WorkerPool: the workers run in its warm processes
    deployed: str | None = None  # a deployed model's name (run.serving): stage only the inputs
    predict: bool = True   # predict the deterministic requests (cloud variants) before running
    model: SparseDNN | None = field(default=None, repr=False)
    inputs: sp.csr_matrix | None = field(default=None, repr=False)


@dataclass
class TestHooks:
    """Knobs for the test suite only (not part of the run API): what `run` passes on to the
    workers' event to make a run fail or misbehave on purpose."""

    __test__ = False  # (not a pytest test class)

    #: A worker crashes or hangs at a layer: {"worker": p, "layer": l, "kind": "crash"|"hang"}.
    fault: dict[str, Any] | None = None
    #: Workers' stderr goes to this terminal instead of nowhere.
    debug: bool = False
    #: Merged into the workers' channel config, e.g. {"duplicate": True} (every frame twice).
    channel_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """A snapshot for progress displays: layers done per worker (-1 = not started)."""

    run_id: str
    phase: str
    layers: int
    workers_done: list[int]
    reports: dict[int, dict] = field(default_factory=dict)

    @property
    def layers_done(self) -> int:
        return min(self.workers_done) if self.workers_done else 0


@dataclass
class RunResult:
    run_id: str
    status: str
    variant: str
    workers: int
    seconds: float
    edges_per_second: float
    categories: np.ndarray
    activations: sp.csr_matrix | None
    bytes_sent: int = 0
    messages: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    billed_requests: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    predicted: dict[str, Any] | None = None
    verified: bool | None = None
    error: str | None = None
    partition: str | None = None
    worker_reports: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    staged_bytes: int = 0
    deployed: str | None = None
    workers_cost: dict[str, Any] | None = None  # Lambda time by cold/warm start (`_price`)
    cleanup_pending: str | None = None  # the clean-up failed (a frozen endpoint): `fsd gc` finishes it
    #: Requests of the run's stage, a deployed model's store and the failure queue (the
    #: coordinator's and the workers'): priced in cost_usd, apart from the channel's requests.
    stage_requests: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The `run --json` document (command line contract)."""
        return {
            "run_id": self.run_id, "status": self.status, "variant": self.variant,
            "workers": self.workers, "seconds": self.seconds, "edges_per_second": self.edges_per_second,
            "categories": (np.asarray(self.categories) + 1).tolist(), "bytes_sent": self.bytes_sent,
            "messages": self.messages, "requests": self.requests, "billed_requests": self.billed_requests,
            "cost_usd": self.cost_usd, "predicted": self.predicted, "verified": self.verified,
            "error": self.error, "partition": self.partition, "timings": self.timings,
            "staged_bytes": self.staged_bytes, "deployed": self.deployed, "stage_requests": self.stage_requests,
            "worker_starts": worker_starts(self.worker_reports), "workers_cost": self.workers_cost,
            "cleanup_pending": self.cleanup_pending,
        }


def worker_starts(reports: list[dict]) -> list[dict[str, Any]]:
    """Per worker: a cold or warm start, its INIT seconds, whether its shard was loaded or kept
    from an earlier run, and the bytes it read from the stage."""
    keys = ("worker", "start", "init_s", "shard", "loaded_bytes")
    return [{k: r.get(k) for k in keys} for r in reports if "worker" in r]


def needs_function(manifest: dict[str, Any], launcher: str | None) -> bool:
    """Do the run's workers need the deployment's function? Always on AWS (a worker is an
    invocation of it: nothing else may run there with the operator's credentials); at the
    emulator only for the Lambda launcher (else local processes play them, under the role)."""
    return launcher == "lambda" or not manifest.get("endpoint")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _set_subreaper() -> None:
    """Become the reaper of our workers' orphans (Linux), so a killed tree leaves no zombies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def run(config: RunConfig, progress: Callable[[Progress], None] | None = None, *,
        hooks: TestHooks | None = None) -> RunResult:
    """Execute one run end to end and record it; raises InputError for bad input.

    A failed run is returned (status "failed", `error` says why) and recorded, not raised.
    `hooks` are the test suite's (`TestHooks`).
    """
    check_config(config)
    model = _model_of(config)
    inputs = config.inputs if config.inputs is not None else read_inputs(config.inputs_path, model.neurons)
    check_config(config, model, inputs)
    run_id = new_run_id()
    if config.record:  # before launch: a killed coordinator's run shows as abandoned, not as nothing
        from .gc import reclaim_on_start

        reclaim_on_start(config.runs_db)  # what runs of this store killed earlier left here
        _record_start(config, model, inputs, run_id)
    # The run's id, before anything that takes time (the doctor, a lease, the plan): the dashboard
    # knows which run is its own from here (`fsd cancel` of it stops the run, not the dashboard).
    _notify(progress, Progress(run_id, "starting", model.layers, [-1] * (1 if config.variant == "serial"
                                                                       else config.workers)))
    with _signals_interrupt(run_id):
        try:
            _STOP_AT_ONCE[run_id] = True  # planning and the serial kernel do not look: stop at once
            result = _execute(run_id, config, model, inputs, progress, hooks)
        except (Interrupted, KeyboardInterrupt) as exc:  # stopped before anything was launched
            stopped = exc if isinstance(exc, Interrupted) else Interrupted("interrupted by SIGINT")
            result = RunResult(run_id, stopped.status, config.variant, config.workers, 0.0, 0.0,
                               np.zeros(0, np.int64), None, error=str(stopped))
        except (InputError, RunError) as exc:  # refused or failed before launch (the doctor, the
            _CLEANING.discard(run_id)             # deployment, the worker role): recorded failed
            if config.record:
                _record(config, model, inputs, RunResult(run_id, "failed", config.variant, config.workers, 0.0, 0.0,
                                                         np.zeros(0, np.int64), None, error=str(exc)))
            raise
        finally:
            _STOP_AT_ONCE.pop(run_id, None)
        _CLEANING.add(run_id)  # (a signal now is noted: the run is recorded whatever comes)
        try:
            if config.record:
                _record(config, model, inputs, result)
        finally:
            _CLEANING.discard(run_id)
    return result


def _model_of(config: RunConfig) -> Any:
    """The model: given, loaded from `model_path`, or for a deployed model its record (sizes
    and plan; the weights stay in its store: `run.serving`)."""
    if config.deployed is None:
        return config.model if config.model is not None else SparseDNN.load(config.model_path)
    from .serving import find

    deployment = find(config.deployed)
    deployment.check_query(config.variant, config.workers)
    if config.verify and config.model is None and not (
            deployment.model_path and (Path(deployment.model_path) / "model.json").is_file()):
        raise InputError(f"--verify: deployed model {deployment.name} was deployed from "
                         f"{deployment.model_path or 'no directory'}, which is gone; run without --verify")
    return deployment


def _execute(run_id: str, config: RunConfig, model: SparseDNN, inputs: sp.csr_matrix,
             progress: Callable[[Progress], None] | None, hooks: TestHooks | None) -> RunResult:
    if config.variant == "serial":
        _notify(progress, Progress(run_id, "computing", model.layers, [-1]))
        result = _run_serial(run_id, model, inputs)
        from ..cost.model import dollars

        result.cost_usd = dollars(result.billed_requests, [result.seconds], config.memory_mb)
    else:
        result = _DistributedRun(run_id, config, model, inputs, progress, hooks or TestHooks()).run()
    if config.verify and result.status == "ok":
        _CLEANING.discard(run_id)
        _STOP_AT_ONCE[run_id] = True  # the serial kernel does not look: a signal stops it at once
        _notify(progress, Progress(run_id, "verifying", model.layers, [model.layers] * result.workers))
        try:
            result.verified = _verify(_weights_of(config, model), inputs, result)
            if not result.verified:
                result.status, result.error = "failed", "verification failed: result differs from the serial kernel"
        except Interrupted as exc:  # the run's figures stay; it is recorded stopped, unverified
            result.status, result.error = exc.status, str(exc)
        finally:
            _CLEANING.add(run_id)
    return result


@contextmanager
def _signals_interrupt(run_id: str) -> Iterator[None]:
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP stop the run: cleaned up like a failure and recorded
    as interrupted (or as cancelled, when `fsd cancel` sent it). While the run cleans up a
    signal is only noted: cut short, the clean-up would leave processes, frames and objects
    behind (each of its calls is bounded; SIGKILL, then `fsd gc`, remains). Only in the main
    thread (the TUI runs queries in worker threads: it cancels through the same marker and
    signal)."""
    if threading.current_thread() is not threading.main_thread():
        try:
            yield
        finally:
            _STOP.pop(run_id, None)
        return

    def stop(signum: int, _frame: Any) -> None:
        # Noted, not raised: an exception raised here could land inside a library's broad
        # `except` (botocore's retries) and be lost. The watch loop and the steps look at it.
        first = _STOP.get(run_id) is None
        if first:
            _STOP[run_id] = _stop_reason(run_id, signal.Signals(signum).name)
        if run_id in _CLEANING:
            if first or signum == signal.SIGINT:
                _say(f"run {run_id}: its clean-up and record finish first (workers, channel, stage); seconds")
            return
        if not first or _STOP_AT_ONCE.get(run_id):
            raise _STOP[run_id]  # a second signal, or a phase that does not look: stop now

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _STOP.pop(run_id, None)


#: Runs asked to stop (by a signal), and why; runs whose current phase does not look at it;
#: runs cleaning up (a signal is noted, not raised).
_STOP: dict[str, Interrupted] = {}
_STOP_AT_ONCE: dict[str, bool] = {}
_CLEANING: set[str] = set()


def _stop_reason(run_id: str, signame: str) -> Interrupted:
    if cancel_requested(run_id):
        return Interrupted("cancelled (fsd cancel)", status="cancelled")
    return Interrupted(f"interrupted by {signame}")


def request_stop(run_id: str, reason: Interrupted) -> None:
    """Ask a run of this process to stop (the TUI's cancel: its runs are threads of its own)."""
    _STOP[run_id] = reason


def check_stop(run_id: str) -> None:
    """Raise the run's Interrupted if a signal asked it to stop."""
    reason = _STOP.get(run_id)
    if reason is not None:
        raise reason


def cancel_marker(run_id: str) -> Path:
    """The file `fsd cancel` leaves before it signals the run's coordinator."""
    from .scratch import cancel_marker as marker

    return marker(run_id)


def cancel_requested(run_id: str) -> bool:
    return cancel_marker(run_id).exists()


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and bool(np.isfinite(value)) and value > 0


def check_config(config: RunConfig, model: SparseDNN | None = None, inputs: sp.spmatrix | None = None) -> None:
    """Refuse RunConfig values a run cannot use, before any work (InputError naming the flag).

    With `model` (and `inputs`) also the checks that need their sizes.
    """
    if config.variant not in VARIANTS:
        raise InputError(f"unknown variant {config.variant!r}; choose one of {', '.join(VARIANTS)}")
    if not _is_int(config.workers) or config.workers < 1:
        raise InputError(f"--workers must be a positive integer, got {config.workers!r}")
    if not _is_int(config.branching) or config.branching < 1:
        raise InputError(f"--branching must be at least 1, got {config.branching!r}")
    if not _is_seconds(config.timeout):
        raise InputError(f"--timeout must be a finite number of seconds > 0, got {config.timeout!r}")
    if not (_is_seconds(config.launch_grace) or config.launch_grace == 0):
        raise InputError(f"launch_grace must be a finite number of seconds >= 0, got {config.launch_grace!r}")
    if not _is_int(config.memory_mb) or not 128 <= config.memory_mb <= 10240:
        raise InputError(f"memory_mb must be an integer in 128..10240 (Lambda's range), got {config.memory_mb!r}")
    if config.launcher not in (None, "lambda") or (config.launcher and config.variant not in ("queue", "object")):
        raise InputError(f"--launcher {config.launcher}: only lambda, for queue and object runs (got --variant "
                         f"{config.variant})")
    if model is None:
        return
    if inputs is not None and inputs.shape[1] != model.neurons:
        raise InputError(f"inputs have {inputs.shape[1]} features, the model has {model.neurons} neurons")
    if config.variant != "serial" and not 1 <= config.workers <= model.neurons:
        raise InputError(f"--workers must be between 1 and {model.neurons}, got {config.workers}")


def _run_serial(run_id: str, model: SparseDNN, inputs: sp.csr_matrix) -> RunResult:
    res = infer(model, inputs)
    rate = inputs.shape[0] * model.nnz / res.seconds if res.seconds > 0 else 0.0
    return RunResult(run_id, "ok", "serial", 1, res.seconds, rate, res.categories, res.activations,
                     requests={"lambda:Invoke": 1}, billed_requests={"lambda:Invoke": 1},
                     timings={"compute": res.seconds})


def _weights_of(config: RunConfig, model: Any) -> SparseDNN:
    """The network itself, for --verify: a deployed model's from the directory it was deployed from."""
    if isinstance(model, SparseDNN):
        return model
    if config.model is not None:
        return config.model
    if not model.model_path:
        raise InputError(f"--verify: deployed model {model.name} names no model directory to verify against")
    return SparseDNN.load(model.model_path)


def _verify(model: SparseDNN, inputs: sp.csr_matrix, result: RunResult) -> bool:
    ref = infer(model, inputs)
    return activations_equal(ref.activations, result.activations) and np.array_equal(ref.categories, result.categories)


def activations_equal(a: sp.spmatrix | None, b: sp.spmatrix | None) -> bool:
    """Bit-exact equality of two sparse float32 matrices (same non-zeros, same values)."""
    if a is None or b is None or a.shape != b.shape:
        return False
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    for m in (a, b):
        m.eliminate_zeros()
        m.sort_indices()
    return (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data.view(np.uint32), b.data.view(np.uint32)))


# ---------------------------------------------------------------------------- distributed
class _Backend:
    """Where a run's stage and channel live, and how its workers are started."""

    def __init__(self, variant: str, run_id: str, workers: int, manifest: dict | None,
                 launcher: str | None = None) -> None:
        self.variant = variant
        self.failures: Any = None  # the deployment's failure queue, watched in a Lambda-launched run
        self.manifest = manifest
        if variant != "local":  # first: a missing or unusable deployment leaves nothing behind
            from .cleanup import resolve_manifest

            self.manifest = resolve_manifest(manifest, workers, variant)
        # A queue run leases worker slots of the deployment (one queue each): concurrent runs
        # never read each other's queues. The lease ends with this process, however it ends.
        self.lease = None
        # Did it start workers that may end during a long poll (not a warm pool's processes)?
        # Then its slots are quiet again only a while after it (`aws.leases`).
        self.polls_may_linger = False
        if variant == "queue":
            from ..aws.leases import lease_slots

            queues = self.manifest["queue_urls"]
            self.lease = lease_slots(queues[0], len(queues), workers, wait_s=LEASE_WAIT_S, notice=_say)
        self.scratch: Path | None = None
        self.bell: Doorbell | None = None
        try:
            self._open(variant, run_id, launcher)
        except BaseException:  # (the worker role refused, an interrupt): nothing is left behind
            self.close()
            raise

    def _open(self, variant: str, run_id: str, launcher: str | None) -> None:
        """The run's scratch, stage, channel and launcher."""
        # The run's stage and progress files live in memory (/dev/shm) when the machine has
        # it: workers rewrite their progress files as they run, and a write and rename took
        # 0.29 ms on this machine's disk-backed /tmp against 0.05 ms on /dev/shm (cProfile put
        # 0.12 s of a warm P=2 worker of bench/scaling.py in those renames).
        from .scratch import run_scratch

        scratch = run_scratch(run_id)  # $FSD_SCRATCH, else /dev/shm: fsd-runs/<run_id>, 0700
        self.scratch = scratch
        self.progress_dir = scratch / "progress"
        self.progress_dir.mkdir(mode=0o700, exist_ok=True)
        self.bell = Doorbell(self.progress_dir / REPORT_BELL)  # local workers ring it when they report
        self.launcher: Launcher = LocalLauncher(new_session=True)
        self.environment: dict[str, str] | None = None  # the worker role's, for emulated Lambdas
        # Do the workers write progress files and ring the doorbell here? Not on AWS: there
        # the run hears of them through their reports and the failure queue only.
        self.local_progress = True
        if variant == "local":
            from ..channels.local import default_root

            self.stage: Stage = DirectoryStage(scratch / "stage")
            self.channel_root = default_root() / run_id
            self.channel_config: dict[str, Any] = {"root": str(self.channel_root)}
        else:
            from ..engine.s3_stage import S3Stage

            self.stage = S3Stage(self.manifest, f"stage/{run_id}/")
            # The run's secret key: in the workers' events only (never staged or sent on the
            # channel); every frame carries a MAC with it (channels/frames.py).
            self.channel_config = {"manifest": self.manifest, "key": secrets.token_hex(KEY_SIZE)}
            if self.lease is not None:
                # Its senders wait until polls of runs that held these slots before have ended
                # (`aws.leases`): worker start-up usually outlasts them.
                self.channel_config.update(slots=self.lease.slots, quiet_at=self.lease.quiet_at)
            emulated = bool(self.manifest.get("endpoint"))
            if self.manifest.get("function_name") and (not emulated or launcher == "lambda"):
                # Workers are asynchronous invocations of the worker function (on AWS; at the
                # emulator, its emulated Lambda runs them as local processes under the worker
                # role, which get the progress directory). Failed invocations land on the
                # deployment's failure queue, which `_watch` looks at.
                from ..aws.failures import FailureWatch
                from ..aws.manifest import Manifest
                from ..engine.lambda_launch import LambdaLauncher

                self.launcher = LambdaLauncher.from_config(
                    {"function_name": self.manifest["function_name"]}, self.manifest,
                    progress_dir=str(self.progress_dir) if emulated else None)
                if self.manifest.get("failure_queue_url"):
                    self.failures = FailureWatch(Manifest.from_dict(self.manifest), run_id)
                self.local_progress = emulated
            elif emulated:
                # The local emulator enforces IAM: the worker processes play Lambda workers and
                # run with the deployment's worker role, as a Lambda does, never as the operator.
                from ..aws.credentials import as_environment
                from ..aws.local_stack import worker_credentials
                from ..aws.manifest import Manifest

                role = worker_credentials(Manifest.from_dict(self.manifest), run_id)
                self.environment = as_environment(role)
                self.launcher = LocalLauncher(new_session=True, env=self.environment)

    def pool_environment(self) -> dict[str, str]:
        """The worker role's credentials for a warm pool's processes: one session kept while it
        is valid (new credentials would restart the pool: every worker cold)."""
        from ..aws.credentials import as_environment
        from ..aws.local_stack import worker_credentials
        from ..aws.manifest import Manifest

        key = (self.manifest["endpoint"], self.manifest.get("worker_role_arn"))
        env, since = _POOL_SESSIONS.get(key, ({}, 0.0))
        if time.monotonic() - since > POOL_SESSION_S:
            env = as_environment(worker_credentials(Manifest.from_dict(self.manifest), "pool"))
            _POOL_SESSIONS[key] = (env, time.monotonic())
        return env

    def stop_workers(self, graceful: bool) -> None:
        """Stop the emulated Lambda's worker processes of this run (the launch tree is not ours
        to kill: `run.emulated_workers`); nothing to do for other launchers."""
        if self.launcher.kind == "lambda" and self.manifest and self.manifest.get("endpoint"):
            from .emulated_workers import stop_workers

            stop_workers(self.progress_dir, graceful)

    def cleanup_channel(self, run_id: str, workers: int, failed: bool) -> dict[str, int]:
        """Remove what the run left in the channel; returns the requests that took."""
        if self.variant == "local":
            shutil.rmtree(self.channel_root, ignore_errors=True)
            return {}
        from .cleanup import cleanup_channel

        return cleanup_channel(self.variant, self.manifest, run_id, workers, failed, self.slots)

    @property
    def slots(self) -> list[int] | None:
        """The deployment's worker slots this run holds (queue runs), worker p on slots[p]."""
        return self.lease.slots if self.lease is not None else None

    def close(self) -> None:
        if self.bell is not None:
            self.bell.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        if self.lease is not None:
            from ..channels.queue import POLL_LINGER

            self.lease.release(quiet_s=POLL_LINGER if self.polls_may_linger else None)


#: Warm pools' worker-role sessions by (endpoint, role), and how long one is used (the
#: credentials last an hour: AssumeRole's DurationSeconds in aws/local_stack.py).
_POOL_SESSIONS: dict[tuple[str, str | None], tuple[dict[str, str], float]] = {}
POOL_SESSION_S = 45 * 60.0


class _DistributedRun:
    """A run on P workers, in named steps: `plan`; then, holding the warm pool if one is
    given, `stage`, `predict`, `launch` and `watch`; whatever happened, `clean_up`; then
    `gather` what the workers reported and `price` it. Each step records its time in
    `timings` (the run's phases, as the summary shows them)."""

    def __init__(self, run_id: str, config: RunConfig, model: SparseDNN, inputs: sp.csr_matrix,
                 progress: Callable[[Progress], None] | None, hooks: TestHooks) -> None:
        self.run_id, self.config, self.model, self.inputs, self.hooks = run_id, config, model, inputs, hooks
        self.progress, self.P = progress, config.workers
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.snap = Progress(run_id, "staging", model.layers, [-1] * self.P)
        self.pool: Any = None  # the warm pool this run holds (locked), if any
        self.root: Any = None  # the launch tree's first process, once launched (None for Lambda)
        self.launched: float | None = None  # when worker 0 was started
        self.reports: dict[int, dict] = {}
        self.final: sp.csr_matrix | None = None
        self.error: str | None = "the run did not start"
        self.predicted: dict[str, Any] | None = None
        self.cleanup_requests: dict[str, int] = {}
        self.staged_bytes = 0  # what `stage` put in the run's stage (shards unless deployed, inputs)
        self.cleanup_pending: str | None = None  # why the clean-up could not finish (gc does it)
        self.method = config.partition

    def run(self) -> RunResult:
        self.check_deployment()
        self.plan()
        self.backend = _Backend(self.config.variant, self.run_id, self.P, self.config.manifest, self.config.launcher)
        try:
            self.note_deployment()
        except BaseException:
            self.backend.close()
            raise
        _STOP_AT_ONCE.pop(self.run_id, None)  # from here the steps and the watch loop look
        _notify(self.progress, self.snap)
        stopped = None
        try:
            for step in (self.hold_pool, self.stage, self.predict, self.launch, self.watch):
                check_stop(self.run_id)
                step()
        except (Interrupted, KeyboardInterrupt) as exc:  # a signal, Ctrl-C or `fsd cancel`
            stopped = exc if isinstance(exc, Interrupted) else Interrupted("interrupted by SIGINT")
            self.error = str(stopped)
        except RunError as exc:  # an AWS call that failed or timed out: a failed run, recorded
            self.error = str(exc)
        finally:  # whatever happened: no process, message, object or staged file is left behind
            self.clean_up()
        result = self.gather()
        if stopped is None and self.error is None:
            stopped = _STOP.get(self.run_id)  # a signal its clean-up noted: said, not lost
            if stopped is not None:
                result.error = str(stopped)
        if stopped is not None:
            result.status = stopped.status
        self.price(result)
        self.snap.phase = result.status
        _notify(self.progress, self.snap)
        return result

    def check_deployment(self) -> None:
        """A cloud run's deployment can carry it (`run.preflight`, the doctor): a blocker fails
        the run with one line before anything is planned, leased or staged."""
        if self.config.variant in ("queue", "object"):
            from .cleanup import resolve_manifest
            from .preflight import check_deployment

            manifest = resolve_manifest(self.config.manifest, self.P, self.config.variant)
            check_deployment(manifest, self.P, needs_function=needs_function(manifest, self.config.launcher),
                             memory_needed_mb=self.need_mb)

    def note_deployment(self) -> None:
        """The run's record names the deployment its objects go to: `fsd gc` deletes what a
        dead run left there, or knows it went with an emulator that stopped."""
        manifest = self.backend.manifest
        if self.config.record and manifest and self.config.variant in ("queue", "object"):
            store = RunStore(self.config.runs_db)
            record = store.get(self.run_id)
            if record is not None:
                where = {"endpoint": manifest.get("endpoint"), "bucket": manifest.get("bucket")}
                store.mark(self.run_id, "running", None, dict(record.get("extra") or {}, deployment=where))

    @functools.cached_property
    def need_mb(self) -> float:
        """What one worker of this query needs (`preflight.worker_need_mb`): the model's sizes
        (a deployed model's record keeps its total non-zeros, spread evenly) and the batch."""
        from .preflight import worker_need_mb

        m = self.model
        nnz = [w.nnz for w in m.weights] if isinstance(m, SparseDNN) else [m.nnz / m.layers] * m.layers
        return worker_need_mb(m.neurons, m.layers, self.inputs.shape[0], nnz, self.P)

    def plan(self) -> None:
        """The communication plan (`cached_plan`: partitioning a large model takes minutes); a
        deployed model's plan is in its store (its shards, and which worker holds each input)."""
        c = self.config
        if c.deployed is not None:
            self.method = self.model.method
            return
        _notify(self.progress, Progress(self.run_id, "planning", self.model.layers, [-1] * self.P))
        self.planned = cached_plan(self.model, self.P, c.partition, c.per_layer, c.seed)
        self.method = self.planned.method
        self.timings["plan"] = time.perf_counter() - self.started

    def hold_pool(self) -> None:
        """A run on a warm pool holds it (one run at a time; released by `clean_up`) and runs
        its workers in the pool's processes: a local run over its spare frame files, a cloud
        run on the emulator under the worker role (as a warm Lambda keeps its role's
        credentials between invocations)."""
        pool = self.config.pool
        if pool is None or (self.config.variant != "local" and self.backend.environment is None):
            return
        pool.lock.acquire()
        self.pool = pool
        if self.config.variant == "local":
            self.backend.channel_config["spares"] = str(pool.spares)
        else:
            pool.use_environment(self.backend.pool_environment())
        self.backend.launcher = pool.launcher()
        pool.ensure(self.P)

    def stage(self) -> None:
        """Every worker's shard and inputs into the stage (a deployed model's shards are in its
        store: only the inputs); the shards' digest names them (a warm worker keeps the
        shards it parsed under that name)."""
        with _timed(self.timings, "stage"):
            y0 = sp.csc_matrix(self.inputs, dtype=np.float32)
            if self.config.deployed is not None:
                columns = self._deployed_columns()
                self.digest = self.model.plan_digest
            else:
                self.shards = self.planned.shards(self.model)
                blobs = [shard.to_bytes() for shard in self.shards]
                for p, blob in enumerate(blobs):
                    self.backend.stage.put(shard_key(p), blob)
                self.staged_bytes += sum(map(len, blobs))
                self.digest = shards_digest(blobs)
                columns = [shard.input_cols for shard in self.shards]
            for p, cols in enumerate(columns):
                blob = matrix_to_bytes(y0[:, cols])
                self.backend.stage.put(inputs_key(p), blob)
                self.staged_bytes += len(blob)

    def _deployed_columns(self) -> list[np.ndarray]:
        """The input columns each worker of the deployed plan holds, from the model's store
        (which must still have it: `serving.check_stored`)."""
        from .serving import check_stored, input_owners, open_store

        self.shard_store = open_store(self.model, self.model.store, self.backend.manifest)
        check_stored(self.model, self.shard_store)
        owners = input_owners(self.shard_store, self.model)
        return [np.flatnonzero(owners == p) for p in range(self.P)]

    def predict(self) -> None:
        """The deterministic requests of a cloud run, before it runs (`run.predict`)."""
        # (A deployed model's shards stay in its store: the prediction, which runs the workers
        # over them in this process, is made by a run given the model.)
        if self.config.predict and self.config.variant in ("queue", "object") and self.config.deployed is None:
            with _timed(self.timings, "predict"):
                self.predicted = _predict(self.config.variant, self.model, self.shards, self.inputs,
                                          self.backend.manifest, self.backend.slots)

    def launch(self) -> None:
        """Start worker 0 on its event; it starts the rest of the launch tree."""
        event = self.event()
        _set_subreaper()
        # (a warm pool's processes outlive the run: a poll one leaves open hands back what it
        # takes, `QueueChannel._receive_once`)
        self.backend.polls_may_linger = self.backend.launcher.kind != "pool"
        self.launched = time.perf_counter()
        self.root = self.backend.launcher.start(event)
        self.snap.phase = "running"
        _notify(self.progress, self.snap)  # workers are starting (each reports its first layer)

    def event(self) -> dict[str, Any]:
        """Worker 0's event: everything a worker needs, as a Lambda gets it (`engine.handler`)."""
        c, b, h = self.config, self.backend, self.hooks
        return {
            "run_id": self.run_id, "worker": 0, "workers": self.P, "branching": c.branching,
            "variant": c.variant, "channel": dict(b.channel_config, **h.channel_options),
            "stage": b.stage.config(), "launcher": b.launcher.config(), "manifest": b.manifest,
            "timeout": c.timeout, "launch_grace": c.launch_grace, "plan_digest": self.digest,
            "need_mb": round(self.need_mb, 1),
            **({"shards": self.shard_store.config()} if c.deployed is not None else {}),
            # Progress files are a local side channel; Lambda workers report only at the end.
            "progress_dir": str(b.progress_dir) if b.launcher.kind in ("local", "pool") else None,
            "fault": h.fault, "debug": h.debug,
        }

    def watch(self) -> None:
        """Follow the workers until worker 0's result, a failure or a stall (`_watch`)."""
        c = self.config
        try:
            self.reports, self.final, self.error = _watch(self.backend, self.P, self.model.layers, c.timeout,
                                                          c.launch_grace, self.root, self.snap, self.progress)
        finally:  # (stopped by a signal or `fsd cancel`: the reports it had read are the run's)
            self.reports = self.reports or dict(self.snap.reports)
        self.timings["run"] = time.perf_counter() - self.launched

    def clean_up(self) -> None:
        """Kill the launch tree, hand the pool back (restarted after a failure: a crashed or
        hung worker leaves its slot unusable), delete the run's channel data and stage.

        After a failure the workers are told to stop (the stop key) before anything is killed;
        on AWS, where they cannot be killed, the stop key is left in the stage for workers
        still running to find (the bucket's lifecycle rule expires `stage/`)."""
        _CLEANING.add(self.run_id)  # (until `run` has recorded it: a signal from here is noted only)
        self._clean_up()

    def _clean_up(self) -> None:
        stop_left = self.error is not None and self.launched is not None
        if stop_left:
            self.signal_workers_to_stop()
        if self.root is not None:
            _kill_tree(self.root, graceful=self.error is None)
        self.backend.stop_workers(graceful=self.error is None)
        if self.pool is not None:
            if self.error is not None:
                self.pool.recycle()
                self.backend.polls_may_linger = True
            self.pool.lock.release()
        with _timed(self.timings, "cleanup"):
            try:
                self.cleanup_requests = self.backend.cleanup_channel(self.run_id, self.P, failed=self.error is not None)
                self.backend.stage.delete_all()
            except Exception as exc:  # noqa: BLE001 - an endpoint that froze or failed now: `fsd gc` finishes
                self.cleanup_pending = " ".join(str(exc).split())[:300] or type(exc).__name__
                _say(f"run {self.run_id}: clean-up incomplete ({self.cleanup_pending}); `fsd gc` deletes what is left")
            finally:
                if stop_left and not self.backend.local_progress:
                    self.signal_workers_to_stop()  # (again: the delete took it; it swallows its own errors)
                self.backend.close()

    def gather(self) -> RunResult:
        """The run's result: worker 0's final activations, the workers' reports (one per worker,
        "missing" for a silent one) and the requests they and the clean-up made."""
        seconds = time.perf_counter() - self.started
        silent = "missing" if self.launched is not None else "not started"
        ordered = [self.reports.get(p, {"worker": p, "status": silent}) for p in range(self.P)]
        requests, billed = _sum_requests(ordered)
        requests["lambda:Invoke"] = billed["lambda:Invoke"] = sum(1 for r in ordered if r.get("started_at"))
        for api, n in self.cleanup_requests.items():
            requests[api] = requests.get(api, 0) + n
            billed[api] = billed.get(api, 0) + n
        status = "ok" if self.error is None else "failed"
        categories = categories_of(self.final) if self.final is not None else np.zeros(0, np.int64)
        rate = self.inputs.shape[0] * self.model.nnz / self.timings.get("run", seconds) if status == "ok" else 0.0
        return RunResult(
            self.run_id, status, self.config.variant, self.P, seconds, rate, categories, self.final,
            bytes_sent=sum(r.get("channel", {}).get("bytes_sent", 0) for r in ordered),
            messages=sum(r.get("channel", {}).get("messages_sent", 0) for r in ordered),
            requests=requests, billed_requests=billed, error=self.error, partition=self.method,
            worker_reports=ordered, timings=self.timings, staged_bytes=self.staged_bytes,
            deployed=self.config.deployed, cleanup_pending=self.cleanup_pending,
            stage_requests=self._stage_requests(ordered))

    def _stage_requests(self, reports: list[dict]) -> dict[str, int]:
        """The stage's, the deployed model's store's and the failure queue's requests: the
        coordinator's (staging, looking for reports, clean-up) and the workers' (reports)."""
        total: dict[str, int] = {}
        sources = [self.backend.stage, getattr(self, "shard_store", None), self.backend.failures]
        for counts in [getattr(src, "requests", None) or {} for src in sources] + \
                [r.get("stage_requests") or {} for r in reports]:
            for api, n in counts.items():
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    total[api] = total.get(api, 0) + n
        return dict(sorted(total.items()))

    def signal_workers_to_stop(self) -> None:
        """Leave the stop signal the workers look for between layers (`engine.handler`): Lambda
        workers cannot be killed, they end at their next look; local ones are killed too."""
        try:
            self.backend.stage.put(STOP_KEY, b"stop")
        except Exception:  # noqa: BLE001 - the endpoint may be what failed; clean-up goes on
            pass

    def price(self, result: RunResult) -> None:
        """The result's dollars, and the prediction's (`_price`)."""
        _price(result, self.config.memory_mb, self.predicted)


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Record the seconds the block took as `timings[phase]` (when it does not raise)."""
    t = time.perf_counter()
    yield
    timings[phase] = time.perf_counter() - t


def _price(result: RunResult, memory_mb: int, predicted: dict | None) -> None:
    """Dollars of the counted requests and of the workers' Lambda time, split into cold and warm
    workers with the INIT phase of cold starts billed (since 2025-08-01: `cost.serving`); and of
    the predicted requests with the same workers' time.

    The prediction covers the deterministic requests (invocations, publishes and their
    billed chunks, PUTs) and bytes; polls, GET retries and clean-up depend on timing, so the
    predicted dollars take those from the measurement (listed under "measured_apis"). The
    stage's requests (`stage_requests`: staging, reports, the watch's looks, the failure
    queue) are priced in both, as measured.
    """
    from ..cost.model import price_workers, requests_usd

    workers = price_workers(result.worker_reports, memory_mb)
    result.workers_cost = workers.as_dict()
    # The local channel is free (files); its workers are priced as the Lambdas they stand for.
    billed = {api: n for api, n in result.billed_requests.items() if not api.startswith("local:")}
    stage_usd = requests_usd(result.stage_requests)
    result.cost_usd = requests_usd(billed) + workers.usd + stage_usd
    if predicted is not None:
        expected = dict(predicted["billed_requests"])
        measured = sorted(set(billed) - set(expected))
        for api in measured:
            expected[api] = billed[api]
        predicted["measured_apis"] = measured
        predicted["cost_usd"] = requests_usd(expected) + workers.usd + stage_usd
        result.predicted = predicted


def worker_durations(reports: list[dict]) -> list[float]:
    """Billed seconds per worker that ran: from its handler's start to its end (`cost.serving.worker_bill`;
    a cold start's INIT is billed on top)."""
    from ..cost.model import worker_bill

    return [bill.duration_s for bill in map(worker_bill, reports) if bill is not None]


def _predict(variant: str, model: SparseDNN, shards: list, inputs: sp.csr_matrix,
             manifest: dict | None, slots: list[int] | None = None) -> dict[str, Any]:
    from ..cost.model import predict_requests
    from .predict import run_frames

    max_frame = None
    attr: Any = 0
    if variant == "queue":
        from ..channels.queue import attr_bytes_for, frame_limit

        max_frame = frame_limit(int((manifest or {}).get("max_workers", len(shards))))
        attr = attr_bytes_for if slots is None else (lambda dst: attr_bytes_for(slots[dst]))
    counts = predict_requests(variant, run_frames(model, shards, inputs, variant, max_frame), len(shards), attr)
    return counts.as_dict()


def _notify(progress: Callable[[Progress], None] | None, snap: Progress) -> None:
    if progress:
        progress(snap)


def _watch(backend: _Backend, P: int, layers: int, timeout: float, launch_grace: float, root: Any, snap: Progress,
           progress: Callable[[Progress], None] | None) -> tuple[dict[int, dict], sp.csr_matrix | None, str | None]:
    """Follow progress and reports until success, a failure, or a stall longer than `timeout`."""
    reports: dict[int, dict] = {}
    last_change = time.monotonic()
    next_liveness = last_change + LIVENESS_INTERVAL
    stall_limit = stall_after(backend.local_progress, timeout, launch_grace)
    next_look, finishing = 0.0, False
    while True:
        check_stop(snap.run_id)  # a signal or `fsd cancel`
        changed = False
        rang = backend.bell.drain()  # rings before this look are answered by it
        for p in range(P):
            try:
                done = int((backend.progress_dir / f"w{p}").read_text())
            except (FileNotFoundError, ValueError):
                done = snap.workers_done[p]
            if done != snap.workers_done[p]:
                snap.workers_done[p], changed = done, True
        # Reports are looked for when a worker rang (it reported), once every layer is done,
        # and every REPORT_LOOK_S: one listing of the stage, then a read of each new report (a
        # read per worker per loop cost thousands of S3 GETs a run).
        if rang or finishing or time.monotonic() >= next_look:
            next_look = time.monotonic() + REPORT_LOOK_S
            for p, report in _new_reports(backend.stage, P, reports):
                reports[p] = snap.reports[p] = report
                changed = True
        if changed:
            last_change = time.monotonic()
            _notify(progress, snap)
        failed = [r for r in reports.values() if r.get("status") != "ok"]
        if failed and (len(reports) == P or time.monotonic() - last_change > 2.0):
            return reports, None, _explain_failure(failed, reports, P, snap)
        if len(reports) == P:
            raw = backend.stage.get(RESULT_KEY)
            if raw is not None:
                return reports, result_from_bytes(raw), None
        if time.monotonic() - last_change > stall_limit:
            silent = [p for p in range(P) if p not in reports]
            return reports, None, (f"run stalled: no progress for {stall_limit:.0f}s; no report from "
                                   f"worker(s) {', '.join(map(str, silent))}")
        dead = _dead_without_report(backend, P, reports) if time.monotonic() >= next_liveness else []
        if time.monotonic() >= next_liveness:
            next_liveness = time.monotonic() + LIVENESS_INTERVAL
        if dead:
            return reports, None, "; ".join(
                f"worker {p} (pid {pid}) stopped after layer {max(snap.workers_done[p], 0)}: exited without a "
                f"report (killed or crashed)" for p, pid in dead)
        failed_invocation = backend.failures.look() if backend.failures is not None else None
        if failed_invocation is not None:  # Lambda's on-failure record of one of this run's workers
            return reports, None, failed_invocation
        if root is not None and root.poll() is not None and root.returncode not in (0, None) and 0 not in reports:
            if time.monotonic() - last_change > timeout + 5:
                return reports, None, f"worker 0 exited with code {root.returncode} without a report"
        # Local workers ring when they report (the doorbell); Lambda workers do not, so look
        # again soon once every layer is done (the gather takes milliseconds).
        finishing = all(d >= layers for d in snap.workers_done) and time.monotonic() - last_change < 1.0
        backend.bell.wait(0.002 if finishing else 0.02 if P <= 8 else 0.05)


def stall_after(local_progress: bool, timeout: float, launch_grace: float) -> float:
    """Seconds without news after which a run has stalled. With progress here, a message
    timeout and the launch's grace; without (Lambda on AWS) a silent worker is a long one:
    Lambda ends it at its timeout at the latest, and its failure record says so."""
    return timeout + launch_grace + 15.0 if local_progress else LAMBDA_MAX_SECONDS + launch_grace


#: Seconds between looks for reports when no worker rang (a missed ring; Lambda on AWS).
REPORT_LOOK_S = 0.25


def _new_reports(stage: Stage, P: int, known: dict[int, dict]) -> list[tuple[int, dict]]:
    """(worker, report) of the reports in the stage not yet in `known`."""
    found = []
    for key in stage.keys("report-"):
        worker = key[len("report-"):-len(".json")]
        if not key.endswith(".json") or not worker.isdigit() or int(worker) in known or int(worker) >= P:
            continue
        raw = stage.get(key)
        if raw is not None:
            found.append((int(worker), json.loads(raw)))
    return found


#: Seconds a queue run waits for free worker slots while other runs hold them.
LEASE_WAIT_S = 120.0


def _say(line: str) -> None:
    import sys

    sys.stderr.write(f"fsd: {line}\n")
    sys.stderr.flush()


#: Seconds between checks that the local processes playing workers are alive.
LIVENESS_INTERVAL = 0.5


def _dead_without_report(backend: _Backend, P: int, reports: dict[int, dict]) -> list[tuple[int, int]]:
    """(worker, pid) of the local worker processes that ended without staging a report.

    Each local worker names its process in the progress directory when it starts (Lambda
    workers do not: their failures come from the function's on-failure destination). A process
    that is gone, or a zombie, and whose report is still missing after one more look crashed
    or was killed."""
    dead = []
    for p in range(P):
        if p in reports:
            continue
        try:
            pid = int((backend.progress_dir / f"pid-{p}").read_text())
        except (FileNotFoundError, ValueError):
            continue
        if process_running(pid):
            continue
        if backend.stage.get(f"report-{p}.json") is not None:
            continue  # it reported just before it ended: the next look takes the report
        dead.append((p, pid))
    return dead


def _explain_failure(failed: list[dict], reports: dict[int, dict], P: int, snap: Progress) -> str:
    """One line: workers that never reported (crashed or silent) first, then the first failure."""
    first = min(failed, key=lambda r: r.get("finished_at") or 0)
    msg = first.get("error") or f"worker {first['worker']} failed"
    silent = [p for p in range(P) if p not in reports]
    if not silent:
        return msg
    where = "; ".join(f"worker {p} stopped after layer {max(snap.workers_done[p], 0)} "
                      f"(crashed or silent: no report)" for p in silent)
    return f"{where}; {msg}"


def _kill_tree(root: Any, graceful: bool = True) -> None:
    """Kill every process of the run's launch tree (one process group) and reap them all.

    After a success worker 0 gets a moment to end by itself; after a failure its peers may be
    waiting for messages that never come, so the tree is killed at once."""
    pgid = root.pid
    try:
        root.wait(timeout=5 if graceful and root.poll() is None else 0)
    except Exception:
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        root.wait(timeout=5)
    except Exception:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return  # no child of ours is left in the group
        if pid == 0:
            time.sleep(0.01)


def _sum_requests(reports: list[dict]) -> tuple[dict[str, int], dict[str, int]]:
    req: dict[str, int] = {}
    billed: dict[str, int] = {}
    for r in reports:
        ch = r.get("channel", {})
        for api, n in ch.get("requests", {}).items():
            req[api] = req.get(api, 0) + n
        for api, n in ch.get("billed_requests", {}).items():
            billed[api] = billed.get(api, 0) + n
    return req, billed


def _record_start(config: RunConfig, model: SparseDNN, inputs: sp.csr_matrix, run_id: str) -> None:
    """The run as running, before anything starts: `fsd runs` shows it, and a coordinator that
    dies leaves it running with a dead pid, which `fsd runs` shows as abandoned."""
    RunStore(config.runs_db).record({
        "run_id": run_id, "status": "running", "variant": config.variant,
        "workers": 1 if config.variant == "serial" else config.workers,
        "model": str(config.model_path or model.name), "inputs": str(config.inputs_path or ""),
        "branching": config.branching, "batch": inputs.shape[0], "neurons": model.neurons, "layers": model.layers,
        "extra": {"pid": os.getpid(), "pid_started": started_at(os.getpid()), "host": os.uname().nodename}})


def _record(config: RunConfig, model: SparseDNN, inputs: sp.csr_matrix, result: RunResult) -> None:
    store = RunStore(config.runs_db)
    row = dict(result.summary())
    row.update(model=str(config.model_path or model.name), inputs=str(config.inputs_path or ""),
               branching=config.branching, batch=inputs.shape[0], neurons=model.neurons, layers=model.layers,
               extra={k: row.pop(k) for k in ("staged_bytes", "deployed", "worker_starts", "workers_cost",
                                              "stage_requests")})
    before = store.get(result.run_id) or {}
    if isinstance(before.get("extra"), dict) and "deployment" in before["extra"]:
        row["extra"]["deployment"] = before["extra"]["deployment"]  # (where gc finds what it left)
    pending = row.pop("cleanup_pending", None)
    if pending:  # `fsd gc` deletes what the clean-up left (gc.abandoned)
        row["extra"]["gc"] = {"cloud": f"pending: the run's clean-up failed: {pending}"}
    store.record(row, [r for r in result.worker_reports if "worker" in r])
