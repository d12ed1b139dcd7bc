"""Local channel: frames are files in per-worker inboxes on a shared (preferably in-memory)
file system. The fast baseline and the test workhorse; no network, no AWS.

A frame is written to a temporary name and renamed into `root/w{dst}/`, so a receiver never
sees a partial frame; the receiver lists its inbox and reads what it finds. Names
are unique per send, so a frame sent twice is delivered twice (the base class dedupes).

Frame files are reused: a fresh file's pages cost far more than a copy (a new tmpfs page is
zeroed, and on a VM whose free memory goes back to the host, populated again by the host:
writing and reading an 11 MB frame took ~7 ms in fresh files against ~3.5 ms in reused ones
here). A receiver keeps the frames it took (mapped: their data is read in place) until it
is asked for a later layer (`Channel._spent`), and then hands each file back to
its sender (`spare-w{src}/`), which writes its next frames over them. A file may be larger
than the frame in it: the frame's length is part of its name. Spares live in the run's
directory, or, for warm workers, in a directory that outlives the run (`spares` in the
channel config: the warm pool's, as a warm Lambda keeps its /tmp), so a warm run writes every
frame over warm pages: growing files to the frame sizes of layers 1-10 cost a warm P=2
worker of bench/scaling.py ~50 ms a run (writes ran at ~2 ms a MB into fresh pages, ~0.15
into reused ones).

Wake-ups: each inbox has a doorbell (`doorbell.py`), a named pipe the receiver waits on with
`select`; a sender writes one byte to it after renaming a frame in, so a waiting receiver
wakes within microseconds instead of at its next poll (a layer's round trip is on the
critical path of every layer). A missed ring only costs the fallback poll interval (`POLL_MAX`).
"""

from __future__ import annotations

import itertools
import mmap
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ..doorbell import Doorbell, open_bell, ring
from ..fileio import PRIVATE_DIR, private_dir
from .base import Capabilities, Channel
from .frames import frame_size

_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only
POLL_MAX = 0.05  # longest wait on the doorbell before listing the inbox anyway
BELL = ".bell"


#: Where runs keep their local scratch (their stage, progress files and channel inboxes, the
#: warm pool's directories): this variable if set, else /dev/shm (memory-backed), else /tmp.
SCRATCH_ENV = "FSD_SCRATCH"


def scratch_base() -> Path:
    """The directory under which every run's local scratch lives (`SCRATCH_ENV`)."""
    if os.environ.get(SCRATCH_ENV):
        return Path(os.environ[SCRATCH_ENV])
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def default_root() -> Path:
    """A directory for channel inboxes: `fsd-local-channel` of the scratch base."""
    return scratch_base() / "fsd-local-channel"


class LocalChannel(Channel):
    """Inbox-per-worker file channel between local processes."""

    name = "local"
    # Frames live in memory: copying beats compressing. A frame's buffers go straight into its
    # file, and come back mapped, not copied. A poll lists the inbox: microseconds on a memory
    # file system.
    capabilities = Capabilities(compress=False, scatter=True, poll_is_free=True)

    def __init__(self, run_id: str, worker: int, root: str | os.PathLike[str],
                 spares: str | os.PathLike[str] | None = None) -> None:
        super().__init__(run_id, worker)
        self.root = Path(root)
        # Where each worker's spare files live: `spare-w{k}/` of this directory (on the same
        # file system as `root`: files move between the two by rename).
        self._spare_root = Path(spares) if spares is not None else self.root
        self.inbox = self.root / f"w{worker}"
        private_dir(self.root)  # frames are the run's data: this user's only (0700)
        self.inbox.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        self._bell = Doorbell(self.inbox / BELL)
        self._rings: dict[int, int] = {}  # dst -> write end of its doorbell
        self._inboxes: dict[int, Path] = {}
        self._spares = self._spare_root / f"spare-w{worker}"  # files receivers handed back, to send in
        private_dir(self._spares)
        self._held: list[tuple[int, int, str]] = []  # (layer, sender, file) of frames taken, not yet handed back
        # Frame names: unique per send (a frame sent twice is delivered twice); the channel's
        # own token keeps them apart from other senders' and from a restarted worker's.
        token = uuid.uuid4().hex[:8]
        self._serial = (f"{token}-{n}" for n in itertools.count())

    @classmethod
    def from_config(cls, run_id: str, worker: int, config: dict[str, Any]) -> "LocalChannel":
        return cls(run_id, worker, config["root"], config.get("spares"))

    def _send_frames(self, layer: int, dst: int, frames: list) -> None:
        inbox = self._inboxes.get(dst)
        if inbox is None:  # once per destination: a layer's sends are on the critical path
            inbox = self._inboxes[dst] = self.root / f"w{dst}"
            inbox.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        for k, frame in enumerate(frames):
            size = frame_size(frame)
            name = f"{layer}.{self.worker}.{k}.{next(self._serial)}.{size}"
            tmp = os.path.join(inbox, f".{name}.tmp")
            reused = self._claim_spare(size, tmp)
            fd = os.open(tmp, os.O_WRONLY if reused else os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for part in frame if isinstance(frame, list) else [frame]:
                    view = memoryview(part).cast("B")
                    while view:
                        view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(inbox, name))
            self.stats.count("local:write")
        self._ring(dst)

    def _claim_spare(self, size: int, dest: str) -> bool:
        """Move a spare file to `dest` to write a frame of `size` bytes over: the smallest that
        holds it, else the largest (it grows). False when there is none."""
        try:
            names = os.listdir(self._spares)
        except FileNotFoundError:
            return False
        if not names:
            return False
        sized = sorted((int(n.split(".", 1)[0]), n) for n in names)
        fits = [n for cap, n in sized if cap >= size]
        try:
            os.replace(os.path.join(self._spares, fits[0] if fits else sized[-1][1]), dest)
        except FileNotFoundError:
            return False
        return True

    def _spent(self, layer: int) -> None:
        """Hand the files of frames of layers before `layer` back to their senders."""
        keep = []
        for held_layer, src, path in self._held:
            if held_layer >= layer:
                keep.append((held_layer, src, path))
                continue
            try:
                capacity = os.stat(path).st_size
                os.replace(path, os.path.join(self._spare_root, f"spare-w{src}", f"{capacity}.{next(self._serial)}"))
            except FileNotFoundError:  # (a sender that is gone: its spares were cleaned up)
                pass
        self._held = keep

    def _ring(self, dst: int) -> None:
        fd = self._rings.get(dst)
        if fd is None:
            fd = open_bell(self.root / f"w{dst}" / BELL)
            if fd is None:  # not created yet (the receiver lists its inbox when it starts)
                return
            self._rings[dst] = fd
        ring(fd)

    def _poll(self, layer: int, pending: set[int], timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            self._bell.drain()  # rings before this listing are answered by it
            names = [n for n in os.listdir(self.inbox) if not n.startswith(".")]
            if names:
                frames = []
                for n in sorted(names):
                    path, held = os.path.join(self.inbox, n), os.path.join(self.inbox, f".held.{n}")
                    fields = n.split(".")  # layer.src.chunk.token.size
                    try:
                        layer_of, src, size = int(fields[0]), int(fields[1]), int(fields[4])
                    except (ValueError, IndexError):  # not a frame name of ours: read it whole (the
                        frames.append(_map(path, None))  # base class drops what is not a frame), delete it
                        os.unlink(path)
                        continue
                    frames.append(_map(path, size))
                    os.replace(path, held)  # out of the listing; handed back once its layer is spent
                    self._held.append((layer_of, src, held))
                self.stats.count("local:read", len(frames))
                return frames
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._bell.wait(min(POLL_MAX, remaining))

    def _close(self) -> None:
        self._bell.close()
        for fd in self._rings.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._rings.clear()

    def _cleanup(self) -> None:
        shutil.rmtree(self.inbox, ignore_errors=True)
        if self._spare_root == self.root:  # (spares kept for later runs belong to their owner)
            shutil.rmtree(self._spares, ignore_errors=True)


def _map(path: str, size: int | None) -> bytes | mmap.mmap:
    """The first `size` bytes of a frame file (None: all of it), mapped rather than copied (and
    the mapping populated at once: one call instead of a page fault per 4 KiB as the frame is
    read). A file shorter than its name says gives b"" (a damaged frame, dropped)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        length = os.fstat(fd).st_size
        if size is None:
            size = length
        if size == 0 or size > length:
            return b""
        return mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ)
    finally:
        os.close(fd)


def cleanup_run(root: str | os.PathLike[str]) -> None:
    """Remove a run's whole channel directory (the coordinator calls this at the end)."""
    shutil.rmtree(root, ignore_errors=True)
