"""Where a run's shards, inputs, results and worker reports are staged.

On AWS the stage is the deployment bucket (prefix `stage/{run}/`); locally it is the same
bucket on the emulator for the cloud variants, or a directory for the `local` variant. The
worker and the coordinator only see this small key/value interface.
"""

from __future__ import annotations

import os
import shutil
import time
from abc import ABC, abstractmethod
from typing import Any

from ..fileio import atomic_write_bytes, private_dir
from ..registry import load


class Stage(ABC):
    """A key/value store for one run's staged files."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` (atomically: readers see all of it or nothing)."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes under `key`, or None if nothing is there (yet)."""

    @abstractmethod
    def keys(self, prefix: str = "") -> list[str]:
        """The keys there are that start with `prefix` (one listing, not a read of each)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key` (nothing if it is not there)."""

    @abstractmethod
    def delete_all(self) -> None:
        """Remove everything this run staged."""

    def config(self) -> dict[str, Any]:
        """The JSON-able description a worker's event carries to reopen this stage."""
        raise NotImplementedError

    def wait_get(self, key: str, timeout: float, interval: float = 0.05) -> bytes | None:
        """Poll for `key` until it appears or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.get(key)
            if data is not None or time.monotonic() >= deadline:
                return data
            time.sleep(interval)


class DirectoryStage(Stage):
    """A directory on the local file system."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = private_dir(root)  # shards and inputs are the user's data (0700)

    def put(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self.root / key, data)

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str = "") -> list[str]:
        try:  # (atomic writes' temporary files start with "."; a key never does)
            return sorted(name for name in os.listdir(self.root) if name.startswith(prefix) and name[:1] != ".")
        except FileNotFoundError:
            return []

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def delete_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def config(self) -> dict[str, Any]:
        return {"kind": "directory", "root": str(self.root)}


    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DirectoryStage:
        return cls(config["root"])


#: Stage kinds; the S3 stage (and boto3) is imported only when a run stages in S3.
_STAGES = {"directory": "fsd_core.engine.stage:DirectoryStage", "s3": "fsd_core.engine.s3_stage:S3Stage"}


def open_stage(config: dict[str, Any]) -> Stage:
    """Reopen a stage from its `config()` (in a worker, from the event)."""
    return load(_STAGES, config.get("kind"), "stage kind").from_config(config)
