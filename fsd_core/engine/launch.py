"""Hierarchical launch: the client starts worker 0; worker i starts workers i*b+1 .. i*b+b.

P workers are running after about ceil(log_b(P)) rounds instead of P sequential starts.
Launchers behind one interface, chosen by the registry `open_launcher` reads: local processes
(each runs the Lambda handler with the event a Lambda would get), the warm pool (`pool.py`) and
AWS Lambda (`lambda_launch.py`: `Invoke`, InvocationType `Event`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from ..registry import load


def children(worker: int, workers: int, branching: int) -> range:
    """The workers that `worker` starts: worker*b+1 .. worker*b+b, capped at P-1."""
    if branching < 1:
        raise ValueError("branching factor must be at least 1")
    first = worker * branching + 1
    return range(min(first, workers), min(first + branching, workers))


def depth(worker: int, branching: int) -> int:
    """The launch round in which `worker` is started (worker 0: round 0)."""
    d = 0
    while worker > 0:
        worker = (worker - 1) // branching
        d += 1
    return d


def rounds(workers: int, branching: int) -> int:
    """Launch rounds needed for P workers: the depth of the deepest worker."""
    return depth(workers - 1, branching) if workers > 1 else 0


def expected_rounds(workers: int, branching: int) -> float:
    """log_b(P), for comparison with `rounds` (it is within one of it)."""
    return math.log(workers, branching) if workers > 1 and branching > 1 else float(workers - 1)


class Launcher(ABC):
    """Starts one worker with its event and returns a handle (or None if it cannot be waited on)."""

    kind: str = "launcher"

    @abstractmethod
    def start(self, event: dict[str, Any]) -> Any:
        """Start the worker described by `event` without waiting for it."""

    def wait(self, handle: Any, timeout: float | None = None) -> int | None:
        """Wait for a started worker; None when the platform does not let us (Lambda)."""
        return None

    def config(self) -> dict[str, Any]:
        """What a child needs to reopen this launcher (`open_launcher`), JSON-able."""
        return {"kind": self.kind}

    @classmethod
    def from_config(cls, config: dict[str, Any], manifest: dict[str, Any] | None = None) -> Launcher:
        """Reopen from `config()` (and the run's manifest, for cloud launchers)."""
        return cls()


# A worker process lives for one run. With glibc's defaults it hands freed blocks back to the
# kernel after every layer (munmap above the mmap threshold, heap trims above the trim
# threshold), and the next layer pays page faults and page zeroing for them again: in a P=2
# run of bench/scaling.py, perf put a third of a worker's samples in the kernel's page
# zeroing (clear_page_erms, more than csc_matvecs). Keeping freed memory in the heap cut a
# worker's page faults from 156k to 95k (what is left is the first touch of its footprint)
# and the run ~6% (docs/engine.md). 32 MiB is glibc's largest mmap threshold. numpy's BLAS
# threads would only spin next to the workers: the layer loop does no dense BLAS.
WORKER_ENV = {
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
                      ":glibc.malloc.top_pad=67108864",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


#: A local worker's files (progress, reports, frames, inboxes) are this user's only: 0600, 0700.
WORKER_UMASK = 0o077

_MALLOPT_PARAMS = {"trim_threshold": -1, "top_pad": -2, "mmap_threshold": -3}  # glibc's M_* numbers


def keep_freed_memory() -> bool:
    """Give this running process the malloc settings of `WORKER_ENV` (glibc `mallopt`).

    For a process that did not start with them, such as a benchmark timing the serial kernel
    against workers that did: both then run under the same memory policy. False when this is
    not glibc. mallopt takes a C int, so a threshold above 2**31 - 1 is set to that.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    ok = True
    for item in WORKER_ENV["GLIBC_TUNABLES"].split(":"):
        name, value = item.rsplit(".", 1)[1].split("=")
        ok &= mallopt(_MALLOPT_PARAMS[name], min(int(value), 2**31 - 1)) == 1
    return ok


def worker_environment(base: Mapping[str, str]) -> dict[str, str]:
    """A local worker's environment: `WORKER_ENV` unless the operator set those variables."""
    return {**WORKER_ENV, **base, "PYTHONUNBUFFERED": "1"}


class LocalLauncher(Launcher):
    """Each worker is a local process running `python -m fsd_core.engine.handler` on the event."""

    kind = "local"

    def __init__(self, new_session: bool = False, env: Mapping[str, str] | None = None) -> None:
        self.new_session = new_session
        self.env = dict(env or {})  # e.g. the worker role's credentials (children inherit them)

    def start(self, event: dict[str, Any]) -> subprocess.Popen:
        event = dict(event, requested_at=time.time())
        env = worker_environment({**os.environ, **self.env})
        return subprocess.Popen(
            [sys.executable, "-m", "fsd_core.engine.handler"],
            env=dict(env, FSD_EVENT=json.dumps(event)),
            start_new_session=self.new_session,
            umask=WORKER_UMASK,
            stdout=subprocess.DEVNULL,
            stderr=None if event.get("debug") else subprocess.DEVNULL,
        )

    def wait(self, handle: subprocess.Popen, timeout: float | None = None) -> int | None:
        try:
            return handle.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


_LAUNCHERS = {
    "local": "fsd_core.engine.launch:LocalLauncher",
    "pool": "fsd_core.engine.pool:PoolLauncher",
    "lambda": "fsd_core.engine.lambda_launch:LambdaLauncher",
}


def open_launcher(config: dict[str, Any], manifest: dict[str, Any] | None = None) -> Launcher:
    """Reopen the launcher described in an event (children use the same kind as the root)."""
    return load(_LAUNCHERS, config.get("kind"), "launcher").from_config(config, manifest)
