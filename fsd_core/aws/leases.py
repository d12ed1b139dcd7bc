"""Worker-slot leases: many runs on one deployment, never two on one slot.

A deployment has S worker slots (one SQS queue each, `max_workers`). A queue run of P workers
leases P free slots before it launches and releases them at the end; worker p then receives
on the queue of its slot and is addressed by that slot's number. Two runs never share a
queue, so neither reads, deletes or drops the other's frames.

A lease is an exclusive `flock` on one file per slot, in a directory per deployment (keyed by
its first queue URL) under this user's temporary directory, shared by every `fsd` process of
the machine whatever its FSD_HOME. The kernel drops a lock when its process dies, so a lease
ends with its coordinator, SIGKILL included: nothing to expire or reclaim. Leases coordinate
the coordinators of one machine; coordinators on several machines sharing one deployment
need a lease service of their own (docs/reliability.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..fileio import private_dir

#: Seconds between looks for free slots while a run waits for them.
POLL_S = 0.2


def lease_dir(deployment: str) -> Path:
    """The lock files of one deployment (`deployment`: any stable name of it)."""
    digest = hashlib.blake2b(deployment.encode(), digest_size=8).hexdigest()
    return private_dir(private_dir(Path(tempfile.gettempdir()) / f"fsd-leases-{os.getuid()}") / digest)


class SlotLease:
    """P slots of a deployment held by this process until `release` (or its death)."""

    def __init__(self, slots: list[int], handles: list[int]) -> None:
        self.slots = slots
        self._handles = handles

    def release(self) -> None:
        for fd in self._handles:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._handles = []

    def __enter__(self) -> SlotLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_take(directory: Path, total: int, wanted: int) -> SlotLease | None:
    slots: list[int] = []
    handles: list[int] = []
    for slot in range(total):
        fd = os.open(directory / f"slot-{slot}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        slots.append(slot)
        handles.append(fd)
        if len(slots) == wanted:
            return SlotLease(slots, handles)
    SlotLease(slots, handles).release()
    return None


def try_slot(deployment: str, slot: int) -> SlotLease | None:
    """Slot `slot` of the deployment if no run holds it now (`fsd gc` drains its queue while
    holding it, so no run starts on it meanwhile), else None."""
    fd = os.open(lease_dir(deployment) / f"slot-{slot}", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return SlotLease([slot], [fd])


def in_use(deployment: str, total: int) -> int:
    """How many of the deployment's slots other processes hold now."""
    lease = _try_take(lease_dir(deployment), total, total)
    if lease is not None:
        lease.release()
        return 0
    held = 0
    for slot in range(total):
        fd = os.open(lease_dir(deployment) / f"slot-{slot}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            held += 1
        finally:
            os.close(fd)
    return held


def lease_slots(deployment: str, total: int, wanted: int, wait_s: float = 0.0,
                notice: Callable[[str], None] | None = None) -> SlotLease:
    """Lease `wanted` of the deployment's `total` slots, waiting up to `wait_s` for them.

    Raises InputError (one line) when the deployment has too few slots at all, or when they
    are still taken by other runs after the wait; says once through `notice` that it waits.
    """
    if wanted > total:
        raise InputError(f"the deployment has {total} worker slots, the run needs {wanted}")
    directory = lease_dir(deployment)
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        lease = _try_take(directory, total, wanted)
        if lease is not None:
            return lease
        if time.monotonic() >= deadline:
            busy = in_use(deployment, total)
            raise InputError(f"{busy} of the deployment's {total} worker slots are leased by other runs, "
                             f"{total - busy} free, the run needs {wanted}: run it when they finish, or with fewer workers")
        if notice is not None and not told:
            notice(f"waiting up to {wait_s:.0f} s for {wanted} free worker slots (other runs hold some)")
            told = True
        time.sleep(POLL_S)
