"""Warm local workers: long-lived processes that run the handler for one event after another.

AWS Lambda keeps an execution environment warm between invocations: a second request skips
the process start, the imports and the first touch of the function's memory. On the machines
here that first touch is the largest cost of a fresh worker: the VM hands freed memory back
to its host (free page reporting), so every page a new process touches is populated again,
~1 s per worker of a P=2 run of bench/scaling.py (docs/engine.md). A `WorkerPool` gives local
runs Lambda's warm start: `size` processes started once, slot k serving worker k of every run.

The launch tree is unchanged. Worker i still starts workers i*b+1 .. i*b+b; with a pool its
launcher writes their events into their slots' FIFOs (`PoolLauncher`) instead of starting
processes, and each slot runs the same `handler(event)` a Lambda would. A pool serves one run
at a time (two interleaved runs could each hold a slot the other waits on); after a failed
run every slot is restarted, since a crashed or hung worker leaves its slot unusable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..fileio import private_dir
from .handler import handler
from .launch import WORKER_UMASK, Launcher, worker_environment


def _slot_path(directory: str | os.PathLike[str], worker: int) -> Path:
    return Path(directory) / f"slot-{worker}"


class PoolLauncher(Launcher):
    """Starts a worker by handing its event to the warm process of slot `worker`."""

    kind = "pool"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = str(directory)

    def start(self, event: dict[str, Any]) -> None:
        event = dict(event, requested_at=time.time())
        worker = int(event["worker"])
        try:
            fd = os.open(_slot_path(self.directory, worker), os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: nobody reads the FIFO; ENOENT: no such slot
            raise RuntimeError(f"worker {worker}: warm pool slot is not running ({exc.strerror})") from None
        try:
            os.write(fd, json.dumps(event).encode() + b"\n")  # one short write: atomic on a pipe
        finally:
            os.close(fd)
        return None

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "directory": self.directory}

    @classmethod
    def from_config(cls, config: dict[str, Any], manifest: dict[str, Any] | None = None) -> PoolLauncher:
        return cls(config["directory"])


class WorkerPool:
    """`size` warm worker processes (slots 0 .. size-1), grown on demand; close() ends them.

    Use as a context manager. `run()` of the coordinator takes a pool in `RunConfig.pool`.
    """

    def __init__(self, size: int = 0, directory: str | os.PathLike[str] | None = None) -> None:
        from ..channels.local import default_root, scratch_base

        base = Path(directory) if directory else scratch_base()
        base.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix="fsd-pool-", dir=base))  # (mkdtemp: 0700)
        # The local channel's frame files, kept between runs (as a warm Lambda keeps /tmp), next
        # to the runs' inboxes: files move between the two by rename (channels/local.py).
        self.spares = Path(tempfile.mkdtemp(prefix="spares-", dir=private_dir(default_root())))
        # Held open while the pool lives: `fsd gc` takes a directory some process holds open
        # for one in use, and reclaims only the others (a killed pool's).
        self._anchors = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in (self.directory, self.spares)]
        self.lock = threading.Lock()  # one run at a time
        self._procs: dict[int, subprocess.Popen] = {}
        self._holds: dict[int, int] = {}  # our own descriptor on each FIFO (see _spawn)
        self.environment: dict[str, str] = {}  # added to the slots' environment (a role's credentials)
        self._closing, self._closed = threading.Lock(), False
        self.ensure(size)

    def launcher(self) -> PoolLauncher:
        return PoolLauncher(self.directory)

    def ensure(self, size: int) -> None:
        """At least `size` slots, each with a live process (dead ones are restarted)."""
        for k in range(size):
            proc = self._procs.get(k)
            if proc is None or proc.poll() is not None:
                self._spawn(k)

    def use_environment(self, environment: dict[str, str]) -> None:
        """Run the slots with these variables added (the worker role's credentials, for cloud
        runs on the emulator); slots running with others are restarted (cold)."""
        if environment != self.environment:
            self.environment = dict(environment)
            if self._procs:
                self.recycle()

    def recycle(self) -> None:
        """Restart every slot (after a failed run: a worker may hang or be half-way), with an
        empty pipe: events still queued belong to the failed run."""
        slots = sorted(self._procs)
        self._stop()
        self._release()  # the last descriptor on each FIFO: the kernel drops what it buffered
        for k in slots:
            self._spawn(k)

    def pids(self) -> list[int]:
        return [p.pid for _, p in sorted(self._procs.items())]

    def close(self) -> None:
        """End the slots and remove the pool's files; once (a second call, from another thread
        too, waits for the first and does nothing)."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._close()

    def _close(self) -> None:
        self._stop()
        self._release()
        shutil.rmtree(self.directory, ignore_errors=True)
        shutil.rmtree(self.spares, ignore_errors=True)
        for fd in self._anchors:
            os.close(fd)
        self._anchors = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, k: int) -> None:
        fifo = _slot_path(self.directory, k)
        if k not in self._holds:
            if not fifo.exists():
                os.mkfifo(fifo, 0o600)
            # Held open by the pool: an event written while the slot is still starting waits
            # in the pipe instead of failing for want of a reader.
            self._holds[k] = os.open(fifo, os.O_RDWR)
        self._procs[k] = subprocess.Popen(
            [sys.executable, "-m", "fsd_core.engine.pool", str(fifo), str(os.getpid())],
            env=worker_environment({**os.environ, **self.environment}), start_new_session=True, umask=WORKER_UMASK,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _release(self) -> None:
        for fd in self._holds.values():
            os.close(fd)
        self._holds.clear()

    def _stop(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()


def serve(fifo: str, parent: int) -> int:
    """A slot's loop: run the handler on each event line written to `fifo`, forever.

    The FIFO is held open for writing too, so the loop never sees end-of-file between runs. The
    process ends with its parent (PR_SET_PDEATHSIG), so a killed client leaves no warm workers.
    """
    from .warm import ENVIRONMENT

    _die_with_parent(parent)
    fd = os.open(fifo, os.O_RDWR)
    ENVIRONMENT.ready()  # initialised: an event that comes later finds it warm
    with os.fdopen(fd, "rb") as events:
        for line in events:
            if line.strip():
                handler(json.loads(line))
    return 0


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the prctl
        os._exit(0)


if __name__ == "__main__":  # a warm slot: `python -m fsd_core.engine.pool FIFO PARENT_PID`
    sys.exit(serve(sys.argv[1], int(sys.argv[2])))
