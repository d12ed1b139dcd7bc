"""The Runs screen's Live view, driven by scripted runs (issue 27): the current run only, from
its first frame; counters that are true while the run is in flight (unknown, not zero, when
the workers have not reported); the finished run's per-layer charts from the run store; and
History opening the run that just finished.

`coordinator.run` is replaced by `ScriptedRun`, which hands the dashboard the Progress
snapshots the test queues, then the result (recorded in the run store, as the coordinator does).
"""

from __future__ import annotations

import queue

import numpy as np
import pytest
from textual.widgets import DataTable, ProgressBar, Static
from textual.worker import get_current_worker

from fsd_core.errors import InputError
from fsd_core.run import coordinator
from fsd_core.run.coordinator import Progress, RunConfig, RunResult
from fsd_core.run.records import RunStore
from tests.test_tui import ROOT, region_text, seed_runs, text_of, wait_for
from tui.app import FsdApp
from tui.widgets.run_detail import RunDetail
from tui.widgets.run_history import RunHistory
from tui.widgets.worker_grid import WorkerGrid


class ScriptedRun:
    """Stands in for `coordinator.run`: sends the snapshots queued by the test, then returns the
    queued RunResult (recording it in the run store first) or raises the queued exception."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()

    def __call__(self, config: RunConfig, progress=None) -> RunResult:
        worker = get_current_worker()
        while True:
            try:
                item = self.items.get(timeout=0.05)
            except queue.Empty:
                if worker.is_cancelled:  # the app is closing (a failed test): do not hold it open
                    raise InputError("scripted run cancelled") from None
                continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, RunResult):
                if config.record:
                    record(item, config)
                return item
            progress(item)

    def put(self, *items) -> None:
        for item in items:
            self.items.put(item)


def layer_stats(layer: int, p: int) -> dict:
    return {"layer": layer, "compute_s": 0.002 * layer + 0.001 * p, "wait_s": 0.001 * (layer % 3),
            "bytes_sent": 1000 * layer + 100 * p, "bytes_received": 900 * layer, "messages_sent": 2,
            "messages_received": 2, "requests": {}, "billed_requests": {}}


def report(p: int, layers: int, status: str = "ok") -> dict:
    """A worker's report as the handler stages it (the gather is layer L+1)."""
    return {"worker": p, "status": status, "requested_at": 100.0, "started_at": 100.0, "finished_at": 102.0 + p,
            "layers": [layer_stats(l, p) for l in range(1, layers + 2)],
            "channel": {"bytes_sent": sum(1000 * l + 100 * p for l in range(1, layers + 2)),
                        "messages_sent": 2 * (layers + 1), "requests": {"sns:PublishBatch": layers + 1}}}


def result(run_id: str, variant: str, P: int, layers: int, status: str = "ok") -> RunResult:
    reports = [report(p, layers) for p in range(P)]
    return RunResult(run_id, status, variant, P, 2.5, 1e6, np.arange(8), None,
                     bytes_sent=sum(r["channel"]["bytes_sent"] for r in reports),
                     messages=sum(r["channel"]["messages_sent"] for r in reports),
                     requests={"sns:PublishBatch": P * (layers + 1)}, cost_usd=1.25e-4, partition="block",
                     worker_reports=reports, error=None if status == "ok" else "worker 1 failed")


def record(res: RunResult, config: RunConfig) -> None:
    row = dict(res.summary(), model=config.model_path, inputs=config.inputs_path, branching=2, batch=64,
               neurons=256, layers=len(res.worker_reports[0]["layers"]) - 1 if res.worker_reports else None,
               created=1_735_100_000.0)
    RunStore(config.runs_db).record(row, res.worker_reports)


#: The deployment the scripted runs name (never reached: the coordinator is scripted).
MANIFEST = {"region": "us-east-1", "endpoint": None, "topic_arns": [], "queue_urls": [], "bucket": "b",
            "function_name": "f", "max_workers": 8}


def config(variant: str = "queue", workers: int = 3) -> RunConfig:
    return RunConfig("models/tiny", "models/tiny-inputs.tsv", variant, workers, manifest=MANIFEST)


@pytest.fixture
def scripted(monkeypatch) -> ScriptedRun:
    monkeypatch.chdir(ROOT)
    fake = ScriptedRun()
    monkeypatch.setattr(coordinator, "run", fake)
    return fake


async def finish_a_run(pilot, app: FsdApp, fake: ScriptedRun, run_id: str = "aaaa11112222", P: int = 3) -> None:
    """A whole 4-layer run on P workers, watched to its end."""
    app.launch(config(workers=P))
    fake.put(Progress(run_id, "running", 4, [2] * P),
             Progress(run_id, "ok", 4, [4] * P, {p: report(p, 4) for p in range(P)}),
             result(run_id, "queue", P, 4))
    await wait_for(pilot, lambda: app.live is not None and app.live.finished, what="the first run")
    await pilot.pause()


def grid_text(app: FsdApp) -> str:
    return text_of(app.screen.query_one(WorkerGrid))


async def test_a_new_run_shows_no_cell_of_the_previous_run(scripted):
    app = FsdApp(initial="runs")
    async with app.run_test(size=(120, 35)) as pilot:
        await finish_a_run(pilot, app, scripted)
        assert grid_text(app).count("done") >= 3
        app.launch(config(workers=2))  # its first frame: no snapshot yet
        await pilot.pause()
        grid = grid_text(app)
        assert "done" not in grid and "#2" not in grid, grid
        bar = app.screen.query_one("#monitor-layers", ProgressBar)
        assert bar.percentage in (None, 0), bar.percentage
        scripted.put(Progress("bbbb11112222", "running", 4, [-1, -1]))
        await wait_for(pilot, lambda: "launching" in grid_text(app), what="the new run's grid")
        assert grid_text(app).count("◌ launching") == 2 and "#2" not in grid_text(app)
        scripted.put(result("bbbb11112222", "queue", 2, 4))
        await wait_for(pilot, lambda: app.live.finished, what="the second run")


async def test_a_failed_launch_shows_no_grid_and_no_progress(scripted):
    app = FsdApp(initial="runs")
    async with app.run_test(size=(120, 35)) as pilot:
        await finish_a_run(pilot, app, scripted)
        app.launch(config(workers=2))
        scripted.put(InputError("--workers must be between 1 and 256, got 300"))
        await wait_for(pilot, lambda: app.live.finished, what="the refusal")
        await pilot.pause()
        assert "done" not in grid_text(app) and "#0" not in grid_text(app), grid_text(app)
        bar = app.screen.query_one("#monitor-layers", ProgressBar)
        assert not bar.percentage, bar.percentage
        title = text_of(app.screen.query_one("#monitor-title", Static))
        assert "failed" in title and "aaaa11112222" not in title


async def test_a_finished_run_is_complete_even_if_a_progress_file_lagged(scripted):
    """Worker 0's progress file was read at 118 just before it finished layers 119-120 and reported."""
    app = FsdApp(initial="runs")
    async with app.run_test(size=(120, 35)) as pilot:
        app.launch(config(workers=2))
        scripted.put(Progress("cccc11112222", "running", 120, [118, 120]),
                     Progress("cccc11112222", "ok", 120, [118, 120], {p: report(p, 120) for p in range(2)}),
                     result("cccc11112222", "queue", 2, 120))
        await wait_for(pilot, lambda: app.live is not None and app.live.finished, what="the run")
        await pilot.pause()
        bar = app.screen.query_one("#monitor-layers", ProgressBar)
        assert bar.percentage == 1.0, bar.percentage
        grid = grid_text(app)
        assert "L118" not in grid and grid.count("L120") == 2, grid


async def test_counters_not_yet_reported_are_unknown_not_zero(scripted):
    app = FsdApp(initial="runs")
    async with app.run_test(size=(120, 35)) as pilot:
        app.launch(config(workers=3))
        scripted.put(Progress("dddd11112222", "running", 24, [5, 6, 5]))
        await wait_for(pilot, lambda: app.live.snap is not None, what="the first snapshot")
        await pilot.pause()
        figures = text_of(app.screen.query_one("#monitor-figures", Static))
        assert "0 B" not in figures and " 0 messages" not in figures, figures
        assert "unknown" in figures and "0 of 3 workers" in figures, figures
        # one worker reports: its share is known, the rest still is not
        scripted.put(Progress("dddd11112222", "running", 24, [24, 20, 19], {0: report(0, 24)}))
        await wait_for(pilot, lambda: 0 in app.live.snap.reports, what="the report")
        await pilot.pause()
        figures = text_of(app.screen.query_one("#monitor-figures", Static))
        assert "1 of 3 workers" in figures and "kB" in figures, figures
        scripted.put(result("dddd11112222", "queue", 3, 24))
        await wait_for(pilot, lambda: app.live.finished, what="the end")


async def test_enter_after_a_run_opens_that_run(scripted, isolated_home):
    seed_runs(isolated_home / "runs.sqlite")
    app = FsdApp(initial="runs")
    async with app.run_test(size=(120, 35)) as pilot:
        history = app.screen.query_one(RunHistory)
        await wait_for(pilot, lambda: history.row_count == 2, what="the history")
        await finish_a_run(pilot, app, scripted, run_id="eeee11112222")
        await wait_for(pilot, lambda: history.row_count == 3, what="the history to reload")
        await pilot.press("h", "enter")
        detail = app.screen.query_one(RunDetail)
        await wait_for(pilot, lambda: detail.query_one("#detail-workers", DataTable).row_count > 0,
                       what="the detail")
        assert "run eeee11112222:" in text_of(detail.query_one("#detail-summary", Static))


async def test_the_charts_of_many_workers_show_the_slowest_fastest_and_sums(scripted):
    """Up to 6 workers get a line each; more: the slowest and fastest progress, the sum of bytes."""
    app = FsdApp(initial="runs")
    async with app.run_test(size=(120, 35)) as pilot:
        app.launch(config(workers=8))
        scripted.put(Progress("ffff11112222", "running", 24, [2] * 8), Progress("ffff11112222", "running", 24, [5] * 7 + [9]))
        await wait_for(pilot, lambda: len(app.live.trace) == 2, what="two snapshots")
        await pilot.pause(0.2)
        charts = region_text(app, app.screen.query_one("#monitor-charts"))
        assert "slowest" in charts and "fastest" in charts and "none reported" in charts, charts
        scripted.put(Progress("ffff11112222", "ok", 24, [24] * 8, {p: report(p, 24) for p in range(8)}),
                     result("ffff11112222", "queue", 8, 24))
        await wait_for(pilot, lambda: app.live.record is not None, what="the run store's rows")
        await pilot.pause(0.2)
        charts = region_text(app, app.screen.query_one("#monitor-charts"))
        assert "sent per layer, sum of 8 workers" in charts and "per layer, mean of 8" in charts, charts
        assert "layer (25: gather)" in charts
        await pilot.press("w")
        await wait_for(pilot, lambda: "per layer, worker #0" in region_text(app, app.screen.query_one("#monitor-charts")),
                       what="worker #0's chart")
