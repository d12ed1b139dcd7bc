"""Atomic file and directory writes: nothing half-written is ever left behind.

Every writer in `fsd_core` goes through these helpers: data is written to a temporary path
next to the target and renamed into place only when complete, so an interrupted or failed
write leaves either the old content or nothing. The temporary file is made by `mkstemp`, so
what lands is 0600: readable by this user only. Directories that hold private files (the run
store, plans, scratch, leases, Terraform state) are made by `private_dir`, 0700.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | os.PathLike[str], existing: bool = True) -> Path:
    """Make `path` a directory only this user can enter: missing parents are created 0700 too
    (whatever the umask), and an existing `path` of this user's is set to 0700 unless
    `existing` is False (a directory the user named, which may hold other things)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # made by another process just now: its maker set its mode
        os.chmod(directory, PRIVATE_DIR)
    if existing and not missing:
        with contextlib.suppress(OSError):
            st = path.stat()
            if st.st_uid == os.getuid() and st.st_mode & 0o777 != PRIVATE_DIR:
                os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create `path` empty if missing, and make it readable by this user only (0600)."""
    path = Path(path)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE))
    with contextlib.suppress(PermissionError):  # (another user's file: theirs to set)
        os.chmod(path, PRIVATE_FILE)
    return path


@contextlib.contextmanager
def held(lock_file: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive `flock` on `lock_file` (created 0600) across processes: a
    read-modify-write of a shared file inside it loses no other process's update."""
    lock_file = Path(lock_file)
    private_dir(lock_file.parent)
    fd = os.open(private_file(lock_file), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (closing releases the lock)


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
