"""The live run the dashboard is watching, built from coordinator Progress snapshots.

What can be known while a run is in flight, and from where:

- its phase, and each worker's last finished layer: the coordinator's `Progress` snapshots.
  Local workers (the local launcher, the warm pool) write their last finished layer to the
  run's progress directory at most every 0.1 s and always after the last layer
  (`engine.handler._progress_writer`); Lambda workers write none, so their layers stay unknown
  until they report.
- per-layer figures (compute and wait seconds, bytes, messages, requests): only in a worker's
  report, staged when the worker ends. So bytes and messages "so far" are the sums over the
  workers that reported, and unknown for the others, never a zero that is not one. A serial
  run sends nothing: its zero is true.
- after the run: the `RunResult`, and the run store's `run_layers` rows (`record`), which the
  per-layer charts read once they are loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fsd_core.run.coordinator import Progress, RunConfig, RunResult

#: Worker states shown in the grid, in the order a worker goes through them.
STATES = ("launching", "computing", "waiting", "done", "failed")


def layers_done(snap: Progress) -> list[int]:
    """Each worker's last finished layer (-1: none yet, or not known).

    A progress file can lag (written at most every 0.1 s, and read by the coordinator just
    before the worker's last write): a worker that reported has finished the layers its report
    lists, every one of them if it reported ok; once the run is ok (or being verified), all did.
    """
    done = list(snap.workers_done)
    for p, report in snap.reports.items():
        if not 0 <= p < len(done):
            continue
        if report.get("status") == "ok":
            done[p] = snap.layers
        else:
            listed = [s.get("layer", -1) for s in report.get("layers") or [] if s.get("layer", -1) <= snap.layers]
            done[p] = max([done[p], *listed])
    if snap.phase in ("ok", "verifying"):
        done = [snap.layers] * len(done)
    return done


def worker_states(snap: Progress) -> list[str]:
    """One state per worker, derived from a snapshot.

    A report decides done/failed. Without one: no layer finished yet is "launching"; all
    layers finished (the gather) or ahead of the slowest peer (blocked on its messages) is
    "waiting"; otherwise "computing".
    """
    done = layers_done(snap)
    out = []
    for p, d in enumerate(done):
        report = snap.reports.get(p)
        if report is not None:
            out.append("done" if report.get("status") == "ok" else "failed")
        elif snap.phase == "ok":
            out.append("done")
        elif snap.phase == "failed":
            out.append("failed")
        elif snap.phase == "computing":  # the serial kernel, in one call
            out.append("computing")
        elif d < 0:
            out.append("launching")
        elif d >= snap.layers or d > min(done):
            out.append("waiting")
        else:
            out.append("computing")
    return out


@dataclass(frozen=True)
class Figure:
    """A run total so far: the sum over the `known` of `total` workers (None: none known)."""

    value: float | None
    known: int
    total: int

    @property
    def complete(self) -> bool:
        return self.value is not None and self.known >= self.total


@dataclass
class LiveRun:
    """Everything the Live view shows about the run in flight (or the last one).

    `clock` gives the times of the progress trace and the elapsed time (tests pass a fixed one).
    """

    config: RunConfig
    clock: Callable[[], float] = time.monotonic
    truth_path: str | None = None
    snap: Progress | None = None
    result: RunResult | None = None
    error: str | None = None
    record: dict[str, Any] | None = None  # the run store's record, once the finished run is read back
    truth: tuple[bool, str] | None = None  # (passed, what) of the truth check, when one was asked for
    log: list[str] = field(default_factory=list)
    #: (seconds since launch, each worker's last finished layer) at each change seen.
    trace: list[tuple[float, list[int]]] = field(default_factory=list)
    started: float = field(init=False)
    ended: float | None = None

    def __post_init__(self) -> None:
        self.started = self.clock()

    # ------------------------------------------------------------------ what it is
    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    @property
    def serial(self) -> bool:
        return self.config.variant == "serial"

    @property
    def workers(self) -> int:
        if self.snap is not None:
            return len(self.snap.workers_done)
        return 1 if self.serial else self.config.workers

    @property
    def run_id(self) -> str | None:
        return self.result.run_id if self.result else (self.snap.run_id if self.snap else None)

    @property
    def phase(self) -> str:
        if self.error:
            return "failed"
        if self.result:
            return self.result.status
        return self.snap.phase if self.snap else "starting"

    def elapsed(self) -> float:
        """Seconds since the launch (to its end once finished)."""
        return (self.ended if self.ended is not None else self.clock()) - self.started

    # ------------------------------------------------------------------ changes
    def update(self, snap: Progress, at: float | None = None) -> None:
        """Take a new snapshot (seen at clock time `at`) and log what changed since the previous one."""
        old = self.snap
        if old is None or old.phase != snap.phase:
            self.log.append(f"run {snap.run_id}: {snap.phase} ({len(snap.workers_done)} workers, "
                            f"{snap.layers} layers)")
        done = layers_done(snap)
        before = min(layers_done(old)) if old and old.workers_done else -1
        if done and min(done) > before and min(done) > 0:
            self.log.append(f"layer {min(done)}/{snap.layers} done by every worker")
        for p, report in sorted(snap.reports.items()):
            if old is None or p not in old.reports:
                what = "ok" if report.get("status") == "ok" else f"FAILED: {report.get('error')}"
                self.log.append(f"worker {p} reported: {what}")
        if not self.trace or self.trace[-1][1] != done:
            self.trace.append(((self.clock() if at is None else at) - self.started, done))
        self.snap = snap

    def finish(self, result: RunResult, truth: tuple[bool, str] | None = None) -> None:
        self.result, self.truth, self.ended = result, truth, self.clock()
        line = f"run {result.run_id} {result.status} in {result.seconds:.2f} s: {len(result.categories)} categories"
        self.log.append(line if result.status == "ok" else f"{line}; {result.error}")
        if result.verified is not None:
            self.log.append("verified: equal to the serial kernel" if result.verified
                            else "verification FAILED: the result differs from the serial kernel")
        if truth is not None:
            self.log.append(f"truth check ({self.truth_path}): {'PASSED' if truth[0] else 'FAILED'}: {truth[1]}")

    def fail(self, message: str) -> None:
        self.error, self.ended = message, self.clock()
        self.log.append(f"run not started: {message}" if self.snap is None else f"run failed: {message}")

    # ------------------------------------------------------------------ figures
    def _settled(self) -> Progress | None:
        """The last snapshot, as ok if the run returned ok (a serial run sends no final one)."""
        snap = self.snap
        if snap is not None and self.result is not None and self.result.status == "ok" and snap.phase != "ok":
            snap = Progress(snap.run_id, "ok", snap.layers, snap.workers_done, snap.reports)
        return snap

    def workers_view(self) -> tuple[list[str], list[int]]:
        """Each worker's state and last finished layer ([] before any worker is started)."""
        snap = self._settled()
        if snap is None or snap.phase in ("starting", "planning", "staging"):
            return [], []
        return worker_states(snap), layers_done(snap)

    def progress(self) -> tuple[int, int] | None:
        """(layers every worker finished, layers), or None before the model is loaded."""
        snap = self._settled()
        if snap is None:
            return None
        done = layers_done(snap)
        return max(0, min(done) if done else 0), snap.layers

    def figures(self) -> dict[str, Figure]:
        """Bytes sent, messages and requests so far, and the dollars (priced at the end)."""
        P = self.workers
        if self.result is not None:
            r = self.result
            known = P if r.status == "ok" or self.serial else sum(1 for w in r.worker_reports if "channel" in w)
            return {"bytes_sent": Figure(r.bytes_sent, known, P), "messages": Figure(r.messages, known, P),
                    "requests": Figure(sum(r.requests.values()), P, P), "cost_usd": Figure(r.cost_usd, P, P)}
        if self.serial:  # one process computing: nothing is sent, one invocation
            return {"bytes_sent": Figure(0, 1, 1), "messages": Figure(0, 1, 1), "requests": Figure(None, 0, 1),
                    "cost_usd": Figure(None, 0, 1)}
        channels = [r["channel"] for r in (self.snap.reports.values() if self.snap else []) if "channel" in r]

        def total(values: list[float]) -> Figure:
            return Figure(sum(values) if channels else None, len(channels), P)

        return {"bytes_sent": total([c.get("bytes_sent", 0) for c in channels]),
                "messages": total([c.get("messages_sent", 0) for c in channels]),
                "requests": total([sum(c.get("requests", {}).values()) for c in channels]),
                "cost_usd": Figure(None, 0, P)}

    def layer_rows(self) -> list[dict[str, Any]]:
        """Per worker and layer (compute_s, wait_s, bytes_sent, ...): the run store's rows once
        read back, else those of the reports received so far (the gather is layer L+1)."""
        if self.record is not None and self.record.get("layers_detail"):
            return list(self.record["layers_detail"])
        if self.result is not None:
            reports: Any = self.result.worker_reports
        else:
            reports = self.snap.reports.values() if self.snap else []
        return [dict(s, worker=r["worker"]) for r in reports if "worker" in r for s in r.get("layers") or []]

    def reported(self) -> int:
        """Workers whose per-layer figures are in."""
        return len({row["worker"] for row in self.layer_rows()})
