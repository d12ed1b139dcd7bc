"""Processes of this machine, from Linux /proc: is a pid running, what do processes hold open,
and which carry a given environment variable (a zombie counts as dead: it has exited, unreaped).

Only this user's processes can be looked into; the others are passed over.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_running(pid: int) -> bool:
    """True if process `pid` exists and has not exited (not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def started_at(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot (/proc/<pid>/stat field 22): with
    the pid, it names one process, never a later one that reuses the pid; None if none runs."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def open_paths() -> set[str]:
    """Every path some process of this user holds open (files, directories, pipes by name):
    a directory with an open file below it is in use."""
    held: set[str] = set()
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/"):
                held.add(target.removesuffix(" (deleted)"))
    return held


def environment_values(name: str) -> dict[int, str]:
    """pid -> the value of environment variable `name`, for the running processes that have it."""
    key = name.encode() + b"="
    found: dict[int, str] = {}
    for pid in _pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(key):
                if process_running(pid):
                    found[pid] = entry[len(key):].decode("utf-8", "replace")
                break
    return found
