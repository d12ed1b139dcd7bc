"""Doorbells: wake a waiting process within microseconds instead of at its next poll.

A doorbell is a named pipe. Its owner holds it open for reading and writing (so it never sees
end-of-file while nobody rings) and waits on it with `select`; a process that has left
something for the owner (a frame in its inbox, a report in the stage) writes one byte to it.
A missed ring costs only the owner's fallback poll interval, so ringing is best-effort.
"""

from __future__ import annotations

import errno
import os
import select


class Doorbell:
    """The owner's end of the named pipe at `path` (created if missing)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def drain(self) -> bool:
        """Forget the rings so far (call before looking at what they announce); True if it rang."""
        rang = False
        try:
            while os.read(self.fd, 4096):
                rang = True
        except BlockingIOError:
            pass
        return rang

    def wait(self, timeout: float) -> None:
        """Until a ring (or one not yet drained) or `timeout` seconds."""
        select.select([self.fd], [], [], max(timeout, 0.0))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_bell(path: str | os.PathLike[str]) -> int | None:
    """A descriptor to ring the doorbell at `path` with; None when it does not exist (yet)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENOENT: not created yet; ENXIO: nobody holds it
        return None


def ring(fd: int) -> None:
    """One byte into a doorbell; a full pipe is a bell already ringing, a closed one an owner gone."""
    try:
        os.write(fd, b"!")
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EPIPE):
            raise
