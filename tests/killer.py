"""A thread that SIGKILLs one worker process of a run mid-run, as a crash or the OOM killer would."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def kill_worker(scratch: Path, worker: int, ready: Callable[[Path], bool],
                within: float = 120.0) -> tuple[threading.Thread, dict[str, float]]:
    """Start a thread that kills `worker` of the run in `scratch` (FSD_SCRATCH) once `ready(pid
    file)` says so; the dict gets the monotonic time of the kill as "at"."""
    killed: dict[str, float] = {}

    def kill() -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for pid_file in (scratch / "fsd-runs").glob(f"*/progress/pid-{worker}"):
                if ready(pid_file):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
                    killed["at"] = time.monotonic()
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread, killed


def watch_end(monkeypatch: Any) -> dict[str, float]:
    """Record (as "at", monotonic) when the run's watch ends: the moment the coordinator has
    noticed the failure, before its clean-up (which a loaded machine may stretch)."""
    from fsd_core.run import coordinator

    ended: dict[str, float] = {}
    watch = coordinator._watch

    def timed(*args: Any, **kwargs: Any) -> Any:
        try:
            return watch(*args, **kwargs)
        finally:
            ended["at"] = time.monotonic()

    monkeypatch.setattr(coordinator, "_watch", timed)
    return ended
