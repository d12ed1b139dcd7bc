"""Stopping a running run from outside: `fsd cancel`, and the TUI's cancel key.

A run's coordinator records its pid when the run starts (`coordinator._record_start`). To
cancel a run of another process we leave the cancel marker and send its coordinator SIGTERM:
it stops at its next look, cleans up as after a failure, and records the run cancelled. A run
of this very process (the TUI runs queries in threads) is asked to stop directly. Either way
the workers look for the run's stop key between layers, so Lambda workers stop too.
"""

from __future__ import annotations

import os
import signal
import time

from ..errors import InputError, Interrupted, RunError
from ..fileio import atomic_write_text, private_dir
from .coordinator import cancel_marker, request_stop
from .gc import coordinator_alive, on_this_host
from .records import RunStore


def cancel(run_id: str, wait: float = 60.0, store: RunStore | None = None) -> str:
    """Stop the running run `run_id` (a unique prefix will do) and return its recorded status
    ("cancelled", or what it ended as if it finished first). InputError if it is not running,
    RunError if its coordinator is gone or it is still running after `wait` seconds."""
    store = store or RunStore()
    run = store.get(run_id)
    if run is None:
        raise InputError(f"no run {run_id!r} in the run store (or the prefix is not unique): see `fsd runs`")
    run_id = run["run_id"]
    if run["status"] != "running":
        raise InputError(f"run {run_id} is not running (it is {run['status']})")
    if not on_this_host(run):
        raise InputError(f"run {run_id} runs on {run['extra'].get('host')}: cancel it there (its coordinator is "
                         f"a process of that machine)")
    if not coordinator_alive(run):
        raise RunError(f"run {run_id} was abandoned: its coordinator is gone (fsd gc reclaims what it left)")
    pid = int(run["extra"]["pid"])
    if pid == os.getpid():
        request_stop(run_id, Interrupted("cancelled", status="cancelled"))
    else:
        private_dir(cancel_marker(run_id).parent)
        atomic_write_text(cancel_marker(run_id), "cancel\n")
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            now = store.get(run_id)
            if now is not None and now["status"] != "running":
                return str(now["status"])
            time.sleep(0.2)
    finally:
        cancel_marker(run_id).unlink(missing_ok=True)
    raise RunError(f"run {run_id}: asked to stop, still running after {wait:g} s")
