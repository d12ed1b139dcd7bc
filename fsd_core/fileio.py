"""Atomic file and directory writes: nothing half-written is ever left behind.

Every writer in `fsd_core` goes through these helpers: data is written to a temporary path
next to the target and renamed into place only when complete, so an interrupted or failed
write leaves either the old content or nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path; on success rename it onto `target`, else remove it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(target: str | os.PathLike[str], text: str, mode: int | None = None) -> None:
    """Write `text` to `target` atomically (with permission bits `mode`, set before the rename)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
        if mode is not None:
            os.chmod(tmp, mode)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `target`, else it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} exists")
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
