"""The live run the dashboard is watching, built from coordinator Progress snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fsd_core.run.coordinator import Progress, RunConfig, RunResult

#: Worker states shown in the grid, in the order a worker goes through them.
STATES = ("launching", "computing", "waiting", "done", "failed")


def worker_states(snap: Progress) -> list[str]:
    """One state per worker, derived from a snapshot.

    A report decides done/failed. Without one: no layer finished yet is "launching"; all
    layers finished (the gather) or ahead of the slowest peer (blocked on its messages) is
    "waiting"; otherwise "computing".
    """
    done = snap.workers_done
    out = []
    for p, d in enumerate(done):
        report = snap.reports.get(p)
        if report is not None:
            out.append("done" if report.get("status") == "ok" else "failed")
        elif snap.phase == "failed":
            out.append("failed")
        elif d < 0:
            out.append("launching")
        elif d >= snap.layers or d > min(done):
            out.append("waiting")
        else:
            out.append("computing")
    return out


@dataclass
class LiveRun:
    """Everything the Runs screen shows about the run in flight (or the last one)."""

    config: RunConfig
    snap: Progress | None = None
    result: RunResult | None = None
    error: str | None = None
    log: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def update(self, snap: Progress) -> None:
        """Take a new snapshot and log what changed since the previous one."""
        old = self.snap
        if old is None or old.phase != snap.phase:
            self.log.append(f"run {snap.run_id}: {snap.phase} ({len(snap.workers_done)} workers, "
                            f"{snap.layers} layers)")
        before = old.layers_done if old else -1
        if snap.layers_done > before and snap.layers_done > 0:
            self.log.append(f"layer {snap.layers_done}/{snap.layers} done by every worker")
        for p, report in sorted(snap.reports.items()):
            if old is None or p not in old.reports:
                what = "ok" if report.get("status") == "ok" else f"FAILED: {report.get('error')}"
                self.log.append(f"worker {p} reported: {what}")
        self.snap = snap

    def finish(self, result: RunResult) -> None:
        self.result = result
        line = f"run {result.run_id} {result.status} in {result.seconds:.2f} s: {len(result.categories)} categories"
        self.log.append(line if result.status == "ok" else f"{line}; {result.error}")

    def fail(self, message: str) -> None:
        self.error = message
        self.log.append(f"run not started: {message}")

    def so_far(self) -> dict[str, Any]:
        """Bytes, messages and requests of the workers that reported (all of them at the end)."""
        if self.result is not None:
            return {"bytes_sent": self.result.bytes_sent, "messages": self.result.messages,
                    "requests": sum(self.result.requests.values()), "cost_usd": self.result.cost_usd}
        reports = self.snap.reports.values() if self.snap else []
        channels = [r.get("channel", {}) for r in reports]
        return {"bytes_sent": sum(c.get("bytes_sent", 0) for c in channels),
                "messages": sum(c.get("messages_sent", 0) for c in channels),
                "requests": sum(sum(c.get("requests", {}).values()) for c in channels), "cost_usd": None}
