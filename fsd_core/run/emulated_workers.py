"""The local processes that play a run's Lambda workers at the emulator, stopped at clean-up.

The coordinator did not start them: the emulated Lambda did (`aws/lambda_emulation.py`), as
Lambda starts a function, so there is no process group of the coordinator's to kill. Each
worker names its process in the run's progress directory when it starts (`pid-<worker>`,
`engine.handler._announce_pid`); clean-up stops those. On AWS nothing is killed: a worker ends
at its next look at the run's stop key, or at its message timeout.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ..processes import process_running

#: After a success, seconds the workers get to end by themselves (they have reported).
GRACE_S = 5.0
#: After a failure, seconds to look again for workers that announce themselves late (invoked
#: just before the failure, still starting).
SETTLE_S = 0.5
#: What the emulated Lambda's processes run (a pid reused by anything else is left alone).
RUNTIME_MODULE = b"fsd_core.aws.lambda_runtime"


def announced(progress_dir: Path) -> dict[int, int]:
    """{worker: pid} of the workers that announced their process."""
    pids = {}
    for path in progress_dir.glob("pid-*"):
        try:
            pids[int(path.name[4:])] = int(path.read_text())
        except (OSError, ValueError):
            continue
    return pids


def _ours(pid: int) -> bool:
    try:
        return RUNTIME_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def running(progress_dir: Path) -> list[int]:
    """The announced worker processes still running (`fsd gc` kills those of a dead run)."""
    return sorted(pid for pid in announced(progress_dir).values() if process_running(pid) and _ours(pid))


def stop_workers(progress_dir: Path, graceful: bool) -> list[int]:
    """Stop every announced worker process still running; returns the pids killed.

    After a success (`graceful`) they first get GRACE_S to end; after a failure they are
    killed at once, and again for SETTLE_S any that announce themselves late."""
    deadline = time.monotonic() + (GRACE_S if graceful else 0.0)
    while graceful and time.monotonic() < deadline:
        if not running(progress_dir):
            return []
        time.sleep(0.02)
    killed: list[int] = []
    settle = time.monotonic() + (0.0 if graceful else SETTLE_S)
    while True:
        for pid in announced(progress_dir).values():
            if pid not in killed and process_running(pid) and _ours(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except (ProcessLookupError, PermissionError):
                    pass
        if time.monotonic() >= settle:
            return killed
        time.sleep(0.05)
