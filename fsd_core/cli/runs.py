"""`fsd runs` and `fsd runs show RUN_ID`: the run history from the run store, running runs included."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..units import si, table
from .common import float_range, positive_int, print_json, say, starts_line

#: Columns of `fsd runs` (the JSON carries the same keys).
SUMMARY_KEYS = ("run_id", "created", "status", "variant", "workers", "seconds", "bytes_sent", "messages",
                "cost_usd", "model", "error")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("runs", help="run history (running runs included); `fsd runs show RUN_ID` for one run",
                       description="The runs recorded in the run store ($FSD_RUNS_DB, else "
                       "<data dir>/runs.sqlite), newest first.")
    p.add_argument("--limit", type=positive_int, default=20, help="how many runs to list (default 20)")
    p.add_argument("--json", action="store_true", help="print the list as one JSON document")
    p.set_defaults(handler=_list)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    show = verbs.add_parser("show", help="one run in detail: timings, requests, workers")
    show.add_argument("run_id", metavar="RUN_ID", help="a run id, or a unique prefix of one")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS,  # (`fsd runs --json show` too)
                      help="print the run as one JSON document")
    show.set_defaults(handler=_show)
    cancel = sub.add_parser("cancel", help="stop a running run: its workers stop, its channels are cleaned, "
                            "it is recorded cancelled")
    cancel.add_argument("run_id", metavar="RUN_ID", help="the run's id, or a unique prefix of it (see `fsd runs`)")
    cancel.add_argument("--wait", type=float_range(0, 600), default=60.0,
                        help="seconds to wait for the run to end and be recorded (default 60)")
    cancel.add_argument("--json", action="store_true", help="print the outcome as one JSON document")
    cancel.set_defaults(handler=_cancel)


def _store():
    from ..run.records import RunStore

    return RunStore()


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """The keys `fsd runs` shows of one recorded run (a running run whose coordinator is gone
    shows as abandoned: `fsd gc` reclaims what it left)."""
    from ..run.gc import coordinator_alive

    row = {k: run.get(k) for k in SUMMARY_KEYS}
    if row["status"] == "running" and not coordinator_alive(run):
        row["status"] = "abandoned"
    return row


def _cancel(args: argparse.Namespace) -> int:
    from ..run.cancel import cancel

    store = _store()
    status = cancel(args.run_id, args.wait, store)
    run_id = store.get(args.run_id)["run_id"]
    error = None if status == "cancelled" else f"run {run_id} ended {status} before the cancel reached it"
    if args.json:
        print_json({"status": "ok", "run_id": run_id, "run_status": status} if error is None else
                   {"status": "error", "error": error, "exit_code": 1, "run_id": run_id, "run_status": status})
    elif error is None:
        print(f"run {run_id}: {status}")
    if error is not None:
        say(f"fsd: error: {error}")
    return 0 if error is None else 1


def _list(args: argparse.Namespace) -> int:
    runs = [summary(r) for r in _store().list(args.limit)]
    if args.json:
        print_json({"status": "ok", "runs": runs})
        return 0
    if not runs:
        print("no runs recorded yet (fsd run, fsd demo or the TUI's Launch screen record them)")
        return 0
    print(table(["run", "started", "status", "variant", "P", "seconds", "sent", "cost"],
                [[r["run_id"], _when(r["created"]), r["status"], r["variant"], r["workers"],
                  "-" if r["seconds"] is None else f"{r['seconds']:.2f}",
                  "-" if not r["bytes_sent"] else si(r["bytes_sent"], "B"),
                  "-" if r["cost_usd"] is None else f"${r['cost_usd']:.6f}"] for r in runs]))
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..errors import InputError

    run = _store().get(args.run_id)
    if run is None:
        raise InputError(f"no run {args.run_id!r} in the run store (or the prefix is not unique): see `fsd runs`")
    if args.json:
        print_json({"status": "ok", "run": run})
        return 0
    for key in ("run_id", "status", "error", "variant", "workers", "partition", "model", "inputs", "batch",
                "neurons", "layers", "seconds", "edges_per_second", "bytes_sent", "messages", "cost_usd",
                "verified"):
        if run.get(key) is not None:
            print(f"{key:17s} {_value(key, run[key])}")
    print(f"{'started':17s} {_when(run['created'])}")
    extra = run.get("extra") or {}
    if extra.get("staged_bytes") is not None:
        print(f"{'staged':17s} {si(extra['staged_bytes'], 'B')}"
              + (f" (inputs only: deployed model {extra['deployed']})" if extra.get("deployed") else ""))
    starts = starts_line(extra.get("worker_starts") or [])
    if starts:
        print(f"{'worker starts':17s} {starts}")
    for key, counts in (("timings", run.get("timings")), ("requests", run.get("requests")),
                        ("billed_requests", run.get("billed_requests")), ("stage_requests", extra.get("stage_requests"))):
        if counts:
            print(f"{key:17s} " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in counts.items()))
    where = extra.get("deployment") if isinstance(extra.get("deployment"), dict) else None
    if where:
        print(f"{'deployment':17s} bucket {where.get('bucket')}" + (f" at {where['endpoint']}" if where.get("endpoint")
                                                                    else " (AWS)"))
    workers = run.get("workers_detail") or []
    if workers:
        print(table(["worker", "status", "started s", "finished s", "error"],
                    [[w["worker"], w["status"], _since(w["started_at"], w["requested_at"]),
                      _since(w["finished_at"], w["requested_at"]), w["error"] or ""] for w in workers]))
    return 0


def _value(key: str, value: Any) -> str:
    if key == "cost_usd":
        return f"${value:.6f}"
    if key in ("bytes_sent", "edges_per_second"):
        return si(value, "B" if key == "bytes_sent" else "edges/s")
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _when(created: float | None) -> str:
    return "-" if created is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))


def _since(t: float | None, t0: float | None) -> str:
    return "-" if t is None or t0 is None else f"{t - t0:.2f}"
