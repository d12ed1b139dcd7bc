"""Local channel: frames are files in per-worker inboxes on a shared (preferably in-memory)
file system. The fast baseline and the test workhorse; no network, no AWS.

A frame is written to a temporary name and renamed into `root/w{dst}/`, so a receiver never
sees a partial frame; the receiver lists its inbox, reads and deletes what it finds. Names
are unique per send, so a frame sent twice is delivered twice (the base class dedupes).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from .base import Channel

POLL_INTERVAL = 0.0005  # seconds between inbox listings; grows to POLL_MAX while idle
POLL_MAX = 0.005


def default_root() -> Path:
    """A directory for channel inboxes: /dev/shm when the machine has it (memory-backed)."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / "fsd-local-channel"


class LocalChannel(Channel):
    """Inbox-per-worker file channel between local processes."""

    name = "local"

    def __init__(self, run_id: str, worker: int, root: str | os.PathLike[str]) -> None:
        super().__init__(run_id, worker)
        self.root = Path(root)
        self.inbox = self.root / f"w{worker}"
        self.inbox.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_config(cls, run_id: str, worker: int, config: dict[str, Any]) -> "LocalChannel":
        return cls(run_id, worker, config["root"])

    def _send_frames(self, layer: int, dst: int, frames: list[bytes]) -> None:
        inbox = self.root / f"w{dst}"
        inbox.mkdir(parents=True, exist_ok=True)
        for k, frame in enumerate(frames):
            name = f"{layer}.{self.worker}.{k}.{uuid.uuid4().hex[:8]}"
            tmp = inbox / f".{name}.tmp"
            tmp.write_bytes(frame)
            os.replace(tmp, inbox / name)
            self.stats.count("local:write")

    def _poll(self, layer: int, pending: set[int], timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        pause = POLL_INTERVAL
        while True:
            names = [n for n in os.listdir(self.inbox) if not n.startswith(".")]
            if names:
                frames = []
                for n in sorted(names):
                    path = self.inbox / n
                    frames.append(path.read_bytes())
                    path.unlink()
                self.stats.count("local:read", len(frames))
                return frames
            if time.monotonic() >= deadline:
                return []
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, POLL_MAX)

    def cleanup(self) -> None:
        shutil.rmtree(self.inbox, ignore_errors=True)


def cleanup_run(root: str | os.PathLike[str]) -> None:
    """Remove a run's whole channel directory (the coordinator calls this at the end)."""
    shutil.rmtree(root, ignore_errors=True)
