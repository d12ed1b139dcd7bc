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

A slot is quiet again only some time after its run ended: a worker that ended during a long
poll leaves the poll open at SQS, and that poll takes (and hides for the visibility timeout)
whatever arrives next, the next run's first frames included. A run releases its slots with
that time (`release(quiet_s)`, written into the slot's file); a new lease takes quiet slots
first, and tells when the ones it took are all quiet (`quiet_at`), which the run's senders
wait for (`channels.queue.QueueChannel`; docs/reliability.md has the figures).
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..fileio import private_dir

#: Seconds between looks for free slots while a run waits for them.
POLL_S = 0.2
#: The longest a slot can stay not quiet after its run (a damaged slot file says no more).
MAX_QUIET_S = 60.0


def lease_dir(deployment: str) -> Path:
    """The lock files of one deployment (`deployment`: any stable name of it)."""
    digest = hashlib.blake2b(deployment.encode(), digest_size=8).hexdigest()
    return private_dir(private_dir(Path(tempfile.gettempdir()) / f"fsd-leases-{os.getuid()}") / digest)


class SlotLease:
    """P slots of a deployment held by this process until `release` (or its death)."""

    def __init__(self, slots: list[int], handles: list[int], quiet_at: float = 0.0) -> None:
        self.slots = slots
        self._handles = handles
        #: When (time.time()) the polls of the runs that held these slots before have all ended.
        self.quiet_at = quiet_at

    def release(self, quiet_s: float | None = None) -> None:
        """Give the slots back; `quiet_s`: how long polls of this run's workers may stay open."""
        for fd in self._handles:
            try:
                if quiet_s is not None:
                    _note_quiet_at(fd, max(_quiet_at(fd), time.time() + quiet_s))
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._handles = []

    def __enter__(self) -> SlotLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _quiet_at(fd: int) -> float:
    """When the slot's last run's polls have ended (0.0: never written, or damaged; at most
    MAX_QUIET_S from now, whatever the file says)."""
    try:
        value = float(os.pread(fd, 32, 0).decode("ascii"))
    except (OSError, ValueError, UnicodeDecodeError):
        return 0.0
    if not math.isfinite(value) or value < 0:
        return 0.0
    return min(value, time.time() + MAX_QUIET_S)


def _note_quiet_at(fd: int, quiet_at: float) -> None:
    """Write the slot's quiet time (best effort: a slot file that cannot be written reads as quiet)."""
    data = f"{quiet_at:.3f}".encode()
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError:
        pass


def _try_take(directory: Path, total: int, wanted: int) -> SlotLease | None:
    """`wanted` free slots, or None: quiet ones first (in slot order), then those quiet soonest.
    The scan stops at `wanted` quiet slots, so a lease holds few slots while it looks."""
    free: list[tuple[float, int, int]] = []  # (quiet at, slot, fd)
    now, quiet = time.time(), 0
    try:
        for slot in range(total):
            fd = os.open(directory / f"slot-{slot}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            free.append((max(_quiet_at(fd), now), slot, fd))
            quiet += free[-1][0] <= now
            if quiet == wanted:
                break
    except BaseException:
        SlotLease([], [fd for _, _, fd in free]).release()
        raise
    if len(free) < wanted:
        SlotLease([], [fd for _, _, fd in free]).release()
        return None
    free.sort()
    taken, rest = sorted(free[:wanted], key=lambda f: f[1]), free[wanted:]
    SlotLease([], [fd for _, _, fd in rest]).release()
    return SlotLease([slot for _, slot, _ in taken], [fd for _, _, fd in taken], max(q for q, _, _ in taken))


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
