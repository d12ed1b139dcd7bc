"""`fsd gc`: reclaim what killed or abandoned runs left (`fsd_core.run.gc`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..units import si
from .common import print_json, say


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("gc", help="reclaim what killed or abandoned runs left (scratch files, staged objects, "
                       "queue messages)",
                       description="For every run recorded running whose coordinator is dead: stop its "
                       "workers, remove its scratch and channel directories, delete its staged and "
                       "object-channel objects, drain the queues no live run holds, and record it abandoned. "
                       "Also removes scratch directories no live run owns. Live runs are never touched.")
    p.add_argument("--dry-run", action="store_true", help="list what would be reclaimed; change nothing")
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="the deployment to reclaim objects in (default: the active one, else the local "
                   "emulator's if it is up; the emulator is never started)")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON document")
    p.set_defaults(handler=cmd_gc)


def cmd_gc(args: argparse.Namespace) -> int:
    from ..aws.manifest import Manifest
    from ..run.gc import reclaim
    from ..run.records import RunStore

    if args.manifest is not None:
        Manifest.load(args.manifest)  # a bad one is refused before anything is reclaimed
    report = reclaim(RunStore(), dry_run=args.dry_run, manifest_path=args.manifest)
    for line in summary(report):
        say(line)
    if args.json:
        print_json({"status": "ok", **report.as_dict()})
    return 0


def summary(report) -> list[str]:
    """The human lines of a gc (stderr): one per run and per orphan, then the total."""
    verb = "would reclaim" if report.dry_run else "reclaimed"
    lines = []
    for r in report.runs:
        parts = [f"{len(r.paths)} local path(s), {si(r.bytes, 'B')}"]
        if r.workers_killed:
            parts.append(f"{len(r.workers_killed)} worker process(es) {'to stop' if report.dry_run else 'stopped'}")
        if r.cloud == "done":
            parts.append(f"{r.objects} object(s)")
        elif r.cloud != "none":
            parts.append("its cloud part left for the next gc")
        lines.append(f"fsd gc: run {r.run_id} ({r.variant}, abandoned): {verb} " + ", ".join(parts))
    for path in report.orphans:
        lines.append(f"fsd gc: {verb} {path} (no live run owns it)")
    if report.messages:
        lines.append(f"fsd gc: {verb} {report.messages} queue message(s) from slots no live run holds")
    lines += [f"fsd gc: {note}" for note in report.notes]
    if not (report.runs or report.orphans or report.messages):
        lines.append("fsd gc: nothing to reclaim")
    else:
        lines.append(f"fsd gc: {verb} {si(report.bytes, 'B')} of local files in total"
                     + ("" if report.dry_run else "; abandoned runs are recorded so (fsd runs)"))
    return lines
