"""Reclaim what killed or abandoned runs left: `fsd gc`, and the local part at the start of
every run of the same store (`reclaim_on_start`), so leftovers do not pile up between two gcs.

A run is recorded `running`, with its coordinator's pid, before it launches. A coordinator
that dies without recording an end (SIGKILL, a crash, the OOM killer) leaves that record and:

- its worker processes, which run on until their run ends or their message timeout;
- its scratch directory (`fsd-runs/<run>`) and a local run's channel directory
  (`fsd-local-channel/<run>`), tens to hundreds of MB of /dev/shm;
- the cancel marker, if `fsd cancel` was under way;
- a cloud run's staged objects (`stage/<run>/`) and object-channel objects (`runs/<run>/`) in
  the deployment bucket, and frames in its queues. (Its slot leases were flocks: they ended
  with it.)

A gc stops those workers (found by the run id in their event, or for workers the emulated
Lambda started, by the pids they announced in the run's progress directory), removes the local files, deletes
the objects, drains the queues of the slots no live run holds, and records the run `abandoned`
with what it reclaimed. When the cloud part cannot be done (no deployment known, its endpoint
does not answer), the run is recorded abandoned with the cloud part pending, and the next gc
does it. A local directory no live run of this store owns (a run of another store, a killed
warm pool) is reclaimed when no process holds anything open below it and no worker of that
run is alive, and it is older than `ORPHAN_GRACE_S`. A live run is never touched: a pid that
is running (or that another machine recorded) counts as alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..channels.local import default_root, scratch_base
from ..engine.event import RUN_ID
from ..errors import InputError, RunError
from ..processes import environment_values, open_paths, process_running, started_at
from .records import RunStore
from .scratch import cancel_marker, channel_dir, runs_root

#: Seconds a directory no run owns must have been left alone before a gc takes it (a run
#: makes its directories a moment before it holds anything open in them).
ORPHAN_GRACE_S = 60.0
#: Seconds to wait for killed workers to be gone before their files are removed.
KILL_WAIT_S = 5.0
#: Why a gc at the start of a run leaves a cloud run's objects (it makes no AWS call).
LATER = "`fsd gc` deletes its staged objects and queue messages"
#: Where a local worker's event travels (engine.launch.LocalLauncher): it names the run.
EVENT_ENV = "FSD_EVENT"


@dataclass
class RunReclaim:
    """What one abandoned run left, and what became of it."""

    run_id: str
    variant: str
    pid: int | None
    workers_killed: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    bytes: int = 0
    objects: int = 0
    #: "none" (a local run), "done", or "pending: why" (the next gc tries again).
    cloud: str = "none"


@dataclass
class GcReport:
    """A gc's outcome: the `fsd gc --json` document (`as_dict`)."""

    dry_run: bool
    runs: list[RunReclaim] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    orphan_bytes: int = 0
    #: Queue messages drained from slots no live run holds.
    messages: int = 0
    #: One line each: what could not be done, and why.
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return self.orphan_bytes + sum(r.bytes for r in self.runs)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["bytes"] = self.bytes
        return doc


def coordinator_alive(run: dict[str, Any]) -> bool:
    """Is the process that runs `run` alive (a run of another machine: assumed so)? A pid
    that now names another process (its start time is not the recorded one) is not."""
    extra = run.get("extra") or {}
    pid = extra.get("pid") if isinstance(extra, dict) else None
    if not isinstance(pid, int) or not on_this_host(run):
        return True
    recorded = extra.get("pid_started")
    return process_running(pid) and (not isinstance(recorded, int) or started_at(pid) == recorded)


def on_this_host(run: dict[str, Any]) -> bool:
    """Was `run` started on this machine (as far as its record says)?"""
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    return extra.get("host") in (None, os.uname().nodename)


def _cloud_pending(run: dict[str, Any]) -> bool:
    extra = run.get("extra") or {}
    return str(((extra.get("gc") or {}) if isinstance(extra, dict) else {}).get("cloud", "")).startswith("pending")


def abandoned(store: RunStore) -> list[dict[str, Any]]:
    """Runs recorded running whose coordinator is dead, then abandoned runs whose cloud part a
    gc could not do yet, and ended runs whose own clean-up failed (a frozen endpoint)."""
    dead = [r for r in store.with_status("running") if not coordinator_alive(r)]
    return dead + [r for status in ("abandoned",) + ENDED for r in store.with_status(status) if _cloud_pending(r)]


#: The statuses of runs that ended (their coordinator recorded how): gc keeps them.
ENDED = ("ok", "failed", "interrupted", "cancelled")


def reclaim(store: RunStore, dry_run: bool = False, cloud: bool = True, orphans: bool = True,
            manifest_path: str | os.PathLike[str] | None = None,
            runs: list[dict[str, Any]] | None = None) -> GcReport:
    """Reclaim what the store's abandoned runs (or just `runs`) left, `cloud`: in the deployment
    too, and with `orphans` the local directories no live run owns; record those runs abandoned.
    `dry_run` lists without deleting, killing or recording anything."""
    report = GcReport(dry_run)
    runs = abandoned(store) if runs is None else runs
    in_cloud = [run.get("variant") in ("queue", "object") for run in runs]
    where: tuple[Any, str] = (None, LATER)
    if cloud and any(in_cloud):
        from .gc_cloud import deployment

        where = deployment(manifest_path)  # first: a bad --manifest is refused before anything
    workers = _workers_by_run()
    for run in runs:
        report.runs.append(_reclaim_local(run, workers.get(run["run_id"], []), dry_run))
    cloud_runs = [(run, r) for run, r, c in zip(runs, report.runs, in_cloud) if c]
    if cloud_runs:
        _reclaim_cloud(cloud_runs, report, dry_run, *where)
    if orphans:
        live = {r["run_id"] for r in store.with_status("running")} - {r.run_id for r in report.runs}
        _reclaim_orphans(report, live, set(workers), dry_run)
    if not dry_run:
        for run, r in zip(runs, report.runs):
            _record(store, run, r)
    return report


def reclaim_on_start(runs_db: str | None = None) -> None:
    """The local part of a gc, before a run of the store starts: nothing to do costs one
    query; what was reclaimed is said in one line on stderr."""
    try:
        store = RunStore(runs_db)
        dead = [r for r in store.with_status("running") if not coordinator_alive(r)]
        if not dead:
            return
        report = reclaim(store, cloud=False, orphans=False, runs=dead)
    except (OSError, InputError, RunError):  # (a gc that fails must not stop the run: `fsd gc` says why)
        return
    if report.runs:
        ids = ", ".join(r.run_id for r in report.runs)
        pending = any(r.cloud.startswith("pending") for r in report.runs)
        sys.stderr.write(f"fsd: reclaimed {_size(report.bytes)} left by {len(report.runs)} abandoned run(s) "
                         f"({ids}){'; `fsd gc` deletes their staged objects' if pending else ''}\n")
        sys.stderr.flush()


# ---------------------------------------------------------------------------- local part
def _workers_by_run() -> dict[str, list[int]]:
    """run id -> pids of the local worker processes running its events."""
    found: dict[str, list[int]] = {}
    for pid, value in environment_values(EVENT_ENV).items():
        try:
            run_id = json.loads(value).get("run_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(run_id, str):
            found.setdefault(run_id, []).append(pid)
    return found


def _reclaim_local(run: dict[str, Any], workers: list[int], dry_run: bool) -> RunReclaim:
    from .emulated_workers import running

    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    r = RunReclaim(run["run_id"], str(run.get("variant")), extra.get("pid"))
    # (the emulated Lambda's workers got their event on stdin: they are named by the pids they
    # announced, which go with the run's directory, so they are found before it is removed)
    workers = sorted(set(workers) | set(running(runs_root() / r.run_id / "progress")))
    if workers and not dry_run:
        _kill(workers)
    r.workers_killed = sorted(workers)
    for path in (runs_root() / r.run_id, channel_dir(r.run_id), cancel_marker(r.run_id)):
        if path.exists():
            r.paths.append(str(path))
            r.bytes += _du(path)
            if not dry_run:
                _remove(path)
    return r


def _kill(pids: list[int]) -> None:
    """SIGKILL the processes and wait (a little) until they are gone: a worker left running
    would write its files again."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + KILL_WAIT_S
    while any(process_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _du(path: Path) -> int:
    """Bytes under `path` (a file, or a directory's files)."""
    if not path.is_dir() or path.is_symlink():
        try:
            return path.lstat().st_size
        except OSError:
            return 0
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _reclaim_orphans(report: GcReport, live: set[str], working: set[str], dry_run: bool) -> None:
    """Directories under the scratch roots that no live run of the store owns, no process holds
    anything open in, no worker runs for, and nobody touched for ORPHAN_GRACE_S."""
    held = open_paths()
    now = time.time()
    for path in _scratch_entries():
        name = path.name
        if name in live or name in working:
            continue
        prefix = str(path) + "/"
        if str(path) in held or any(h.startswith(prefix) for h in held):
            continue
        try:
            if now - path.stat().st_mtime < ORPHAN_GRACE_S:
                continue
        except OSError:
            continue
        report.orphans.append(str(path))
        report.orphan_bytes += _du(path)
        if not dry_run:
            _remove(path)


def _scratch_entries() -> list[Path]:
    """What runs and warm pools make in the scratch base: run and channel directories (named
    by run id), pool spares (`spares-*`) and pool directories (`fsd-pool-*`)."""
    entries: list[Path] = []
    for root, wanted in ((runs_root(), _is_run_dir), (default_root(), _is_channel_entry)):
        try:
            entries += [p for p in root.iterdir() if wanted(p)]
        except OSError:
            pass
    try:
        entries += [p for p in scratch_base().glob("fsd-pool-*") if p.is_dir() and not p.is_symlink()]
    except OSError:
        pass
    return entries


def _is_run_dir(path: Path) -> bool:
    return bool(RUN_ID.match(path.name)) and path.is_dir() and not path.is_symlink()


def _is_channel_entry(path: Path) -> bool:
    return (bool(RUN_ID.match(path.name)) or path.name.startswith("spares-")) and path.is_dir() \
        and not path.is_symlink()


# ---------------------------------------------------------------------------- cloud part
def _reclaim_cloud(cloud_runs: list[tuple[dict[str, Any], RunReclaim]], report: GcReport, dry_run: bool,
                   manifest: Any, why: str) -> None:
    """Delete the runs' objects in the deployment each run's record names (`gc_cloud.target`),
    and drain the queues of that deployment's free slots; a run whose emulator has stopped has
    nothing left; without its deployment at hand, leave the cloud part pending, saying why."""
    from .gc_cloud import GONE, drain_free_slots, leave_stop, objects_of, target, workers_may_run

    waiting, drain = 0, False
    for run, r in cloud_runs:
        holder, because = target(run, manifest, why)
        if because == GONE:
            r.cloud = "done"
            report.notes.append(f"run {r.run_id}: its objects went with the emulator that held them (stopped)")
        elif holder is None:
            r.cloud = because
            waiting += because == f"pending: {why}"
            if because != f"pending: {why}":
                report.notes.append(f"run {r.run_id}: {because[len('pending: '):]}")
        else:
            try:  # (one run's failure leaves the others to be done: each its own bucket)
                r.objects = objects_of(holder, r.run_id, dry_run)
                r.cloud = "done"
                if not dry_run and workers_may_run(holder):
                    leave_stop(holder, r.run_id)
                    report.notes.append(f"run {r.run_id}: a stop key is left under stage/ for any of its Lambda "
                                        f"workers still running")
            except RunError as exc:  # an AWS call that failed (gc_cloud names the service)
                r.cloud = f"pending: {exc}"
                report.notes.append(f"run {r.run_id}: cloud part left for the next gc: {exc}")
                continue
            drain |= run.get("variant") == "queue" and holder.endpoint == manifest.endpoint
    if drain:
        try:
            report.messages = drain_free_slots(manifest, dry_run)
        except RunError as exc:
            report.notes.append(f"queues not drained: {exc}")
    if waiting and why != LATER:
        report.notes.append(f"the cloud part of {waiting} abandoned run(s) is left for the next gc: {why}")


def _record(store: RunStore, run: dict[str, Any], r: RunReclaim) -> None:
    extra = dict(run.get("extra") or {})
    before = extra.get("gc") or {}
    extra["gc"] = {"at": time.time(), "workers_killed": before.get("workers_killed", []) + r.workers_killed,
                   "paths": before.get("paths", []) + r.paths, "bytes": before.get("bytes", 0) + r.bytes,
                   "objects": before.get("objects", 0) + r.objects, "cloud": r.cloud}
    who = f"pid {r.pid}" if r.pid is not None else "its process"
    if run["status"] in ENDED:  # it ended; only its clean-up is finished here
        store.mark(r.run_id, str(run["status"]), run.get("error"), extra, was=str(run["status"]))
        return
    error = run.get("error") or f"abandoned: its coordinator ({who}) died before the run ended"
    store.mark(r.run_id, "abandoned", error, extra, was=str(run["status"]))


def _size(n: int) -> str:
    from ..units import si

    return si(n, "B")
