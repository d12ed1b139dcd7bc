"""The dashboard, driven by Textual's Pilot: a real local run launched from the Launch screen,
the recommendation following its inputs, history drill-down and comparison, keys, help and the
palette. The scripted live view is in tests/test_tui_live.py, the forms in
tests/test_tui_forms.py, the snapshots in tests/test_tui_snapshots.py."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, Select, Static

from fsd_core.engine.pool import WorkerPool
from fsd_core.run.records import RunStore
from tui.app import FsdApp
from tui.screens.help import HelpScreen
from tui.screens.launch import LaunchScreen
from tui.screens.recommend import RecommendScreen
from tui.screens.runs import RunsScreen
from tui.state import worker_states
from tui.widgets.cost_table import CostTable
from tui.widgets.run_compare import RunCompare
from tui.widgets.run_detail import RunDetail
from tui.widgets.run_history import RunHistory
from tui.widgets.worker_grid import WorkerGrid

ROOT = Path(__file__).resolve().parent.parent
SIZE = (100, 32)


async def wait_for(pilot: Pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds (fails the test after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def text_of(widget: Static) -> str:
    return str(widget.render())


def screen_lines(app) -> list[str]:
    """What the terminal shows, one string per row (as Textual's own screenshot renders it)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text().splitlines()


def region_text(app, widget) -> str:
    """The part of the screen a widget covers and its containers show, row by row."""
    r = widget.region
    for ancestor in widget.ancestors:
        if isinstance(ancestor, Widget):
            r = r.intersection(ancestor.region)
    return "\n".join(line[r.x:r.right] for line in screen_lines(app)[r.y:r.bottom])


def words(text: str) -> str:
    """Text with its line breaks and runs of spaces as single spaces (for wrapped text)."""
    return " ".join(text.split())


# ------------------------------------------------------------------------------ a real run
@pytest.mark.slow
async def test_launch_local_run_watch_it_and_find_it_in_history(monkeypatch, isolated_home):
    monkeypatch.chdir(ROOT)
    snapshots = []
    app = FsdApp(initial="launch")
    async with app.run_test(size=SIZE, message_hook=lambda m: snapshots.append(m)
                            if isinstance(m, FsdApp.RunProgress) else None) as pilot:
        await wait_for(pilot, lambda: app.recommendation is not None, what="the startup recommendation")
        assert isinstance(app.screen, LaunchScreen)
        recommended = app.recommendation.doc["recommended"]
        variant = app.screen.query_one("#launch-variant", Select)
        await wait_for(pilot, lambda: variant.value == recommended, what="the recommended variant pre-selected")
        hint = text_of(app.screen.query_one("#launch-hint", Static))
        assert hint.startswith(f"recommended for models/tiny: {recommended}")

        variant.value = "local"  # override the recommendation
        app.screen.query_one("#launch-workers", Input).value = "3"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="the Runs screen")
        await wait_for(pilot, lambda: app.live is not None and app.live.finished, timeout=120, what="the run")
        await pilot.pause(0.2)

        result = app.live.result
        assert result is not None and result.status == "ok", "\n".join(app.live.log)
        assert result.variant == "local" and result.workers == 3
        runs = app.screen
        title = text_of(runs.query_one("#monitor-title", Static))
        assert f"run {result.run_id}" in title and "  ok  " in title
        grid = text_of(runs.query_one(WorkerGrid))
        assert grid.count("✔ done") == 3 and "done 3" in grid
        assert any(f"run {result.run_id} ok" in line for line in app.live.log)

        # the progress snapshots the live view was built from
        phases = [m.snap.phase for m in snapshots]
        assert phases[0] == "starting" and "planning" in phases and phases[-1] == "ok" and "running" in phases
        assert worker_states(snapshots[0].snap) == ["launching"] * 3
        assert worker_states(snapshots[-1].snap) == ["done"] * 3

        # the same figures in the run store as in RunResult.summary() (what `fsd run --json` prints)
        record = RunStore().get(result.run_id)
        summary = result.summary()
        for key in ("run_id", "status", "variant", "workers", "seconds", "edges_per_second", "bytes_sent",
                    "messages", "requests", "billed_requests", "cost_usd", "categories", "partition"):
            assert record[key] == summary[key], key
        assert summary["bytes_sent"] > 0 and summary["messages"] > 0

        # ... and in the history table, and its drill-down
        history = runs.query_one(RunHistory)
        await wait_for(pilot, lambda: history.row_count == 1, what="the history to reload")
        assert history.get_row_at(0)[1] == result.run_id
        await pilot.press("h")
        await pilot.press("enter")
        detail = runs.query_one(RunDetail)
        workers = detail.query_one("#detail-workers", DataTable)
        await wait_for(pilot, lambda: workers.row_count == 3, what="the detail")
        layers = detail.query_one("#detail-layers", DataTable)
        assert layers.row_count == len(record["layers_detail"]) >= 3 * record["layers"]
        assert [layers.get_row_at(i)[1] for i in range(record["layers"])] == [str(l) for l in range(1, 25)]
        assert f"run {result.run_id}: local, 3 worker(s), ok" in text_of(detail.query_one("#detail-summary", Static))


@pytest.mark.slow
async def test_local_queries_from_the_dashboard_run_in_its_warm_workers(monkeypatch, isolated_home):
    monkeypatch.chdir(ROOT)
    with WorkerPool() as pool:
        app = FsdApp(initial="launch", pool=pool)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.recommendation is not None, what="the startup recommendation")
            results = []
            for _ in range(2):
                app.switch_mode("launch")
                await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the Launch screen")
                app.screen.query_one("#launch-variant", Select).value = "local"
                app.screen.query_one("#launch-workers", Input).value = "2"
                await pilot.pause()
                await pilot.press("ctrl+r")
                await wait_for(pilot, lambda: app.live is not None and app.live.finished and app.live.result is not None
                               and app.live.result not in results, timeout=120, what="the run")
                results.append(app.live.result)
        first, second = results
        assert first.status == second.status == "ok"
        pids = sorted(pool.pids())
        assert len(pids) == 2
        assert sorted(w["pid"] for w in first.worker_reports) == sorted(w["pid"] for w in second.worker_reports) == pids
        assert all(w.get("shard") == "cached" for w in second.worker_reports)


async def test_bad_input_fails_the_run_without_blocking(monkeypatch, isolated_home):
    monkeypatch.chdir(ROOT)
    app = FsdApp(initial="launch")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#launch-variant", Select).value = "local"
        app.screen.query_one("#launch-workers", Input).value = "100000"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.live is not None and app.live.finished, what="the refusal")
        assert app.live.result is None and "--workers must be between 1 and 256" in app.live.error
        assert RunStore().list() == []


# ------------------------------------------------------------------------------ recommend
async def test_recommendation_follows_the_inputs(monkeypatch):
    monkeypatch.chdir(ROOT)
    app = FsdApp(initial="recommend")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.recommendation is not None, what="a recommendation")
        screen = app.screen
        assert isinstance(screen, RecommendScreen)
        screen.query_one("#rec-model", Input).value = ""
        screen.query_one("#rec-neurons", Input).value = "1024"
        screen.query_one("#rec-layers", Input).value = "120"
        screen.query_one("#rec-workers", Input).value = "4-32"
        await wait_for(pilot, lambda: app.recommendation.inputs.neurons == 1024
                       and app.recommendation.inputs.workers == (4, 32), what="the new recommendation")
        doc = app.recommendation.doc
        table = screen.query_one(CostTable)
        assert table.row_count == 3
        assert [table.get_row_at(i)[1].plain for i in range(3)] == [r["variant"] for r in doc["rows"]]
        assert table.get_row_at(0)[0].plain == "►" and table.get_row_at(0)[1].plain == doc["recommended"]
        assert all(4 <= p <= 32 for p, _ in app.recommendation.curve["queue"])
        reason = text_of(screen.query_one("#rec-reason", Static))
        assert reason.startswith(f"recommended: {doc['recommended']} -- ")

        screen.query_one("#rec-workers", Input).value = "9-3"
        await wait_for(pilot, lambda: "workers" in text_of(screen.query_one("#rec-reason", Static)),
                       what="the error")
        assert "need 1 <= A <= B" in text_of(screen.query_one("#rec-reason", Static))


# ------------------------------------------------------------------------------ history, keys
def seed_runs(db: Path) -> list[str]:
    """Two finished local runs with fixed ids and timestamps, each with workers and layers."""
    store = RunStore(db)
    ids = []
    for i, (workers, seconds, sent) in enumerate(((2, 3.5, 23794), (4, 4.25, 61020))):
        run_id = f"{'ab'[i] * 4}0000000{i + 1}"
        ids.append(run_id)
        row = {"run_id": run_id, "created": 1_735_000_000.0 + 3600 * i, "status": "ok", "variant": "local",
               "workers": workers, "seconds": seconds, "edges_per_second": 1.0e7 / seconds,
               "categories": list(range(1, 17)), "bytes_sent": sent, "messages": 40 * workers,
               "requests": {"local:write": 40 * workers, "local:read": 40 * workers},
               "billed_requests": {"local:write": 40 * workers, "local:read": 40 * workers}, "cost_usd": None,
               "partition": "hypergraph", "model": "models/tiny", "inputs": "models/tiny-inputs.tsv",
               "branching": 2, "batch": 64, "neurons": 256, "layers": 3}
        reports = [{"worker": p, "requested_at": 100.0, "started_at": 100.0, "finished_at": 101.5 + p,
                    "status": "ok", "layers": [{"layer": l, "compute_s": 0.001 * l, "wait_s": 0.002,
                                                "bytes_sent": 100 * l, "bytes_received": 90 * l,
                                                "messages_sent": 1, "messages_received": 1}
                                               for l in (1, 2, 3)]} for p in range(workers)]
        store.record(row, reports)
    return ids


async def test_history_detail_and_compare(isolated_home):
    a, b = seed_runs(isolated_home / "runs.sqlite")
    app = FsdApp(initial="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        history = app.screen.query_one(RunHistory)
        await wait_for(pilot, lambda: history.row_count == 2, what="the history")
        assert history.get_row_at(0)[1] == b  # newest first
        await pilot.press("m", "down", "m", "c")
        compare = app.screen.query_one(RunCompare)
        await wait_for(pilot, lambda: compare.row_count > 5, what="the comparison")
        rows = {compare.get_row_at(i)[0]: compare.get_row_at(i)[1:] for i in range(compare.row_count)}
        assert rows["workers"][:2] == ["4", "2"]
        assert rows["seconds"] == ["4.250", "3.500", "0.82x"]
        await pilot.press("h", "enter")
        detail = app.screen.query_one(RunDetail)
        await wait_for(pilot, lambda: detail.query_one("#detail-layers", DataTable).row_count == 2 * 3,
                       what="the detail of the older run")
        assert f"run {a}: local, 2 worker(s), ok" in text_of(detail.query_one("#detail-summary", Static))


async def test_screen_keys_help_and_palette(monkeypatch):
    monkeypatch.chdir(ROOT)
    app = FsdApp(initial="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        for key, mode in (("1", "deployment"), ("2", "recommend"), ("3", "launch"), ("4", "runs")):
            await pilot.press("escape", key)
            assert app.current_mode == mode
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Go to Deployment", "Go to Recommend", "Go to Launch", "Go to Runs", "Keys"} <= set(titles)
        dark = app.current_theme.dark
        await pilot.press("t")
        assert app.current_theme.dark is not dark


async def test_help_fits_at_120x35_and_says_how_to_close_it():
    app = FsdApp(initial="runs")
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one(VerticalScroll)
        assert body.max_scroll_y == 0, f"help scrolls by {body.max_scroll_y} rows at 120x35"
        assert "esc, q or ? closes" in words("\n".join(screen_lines(app)))
        await pilot.press("q")
        assert isinstance(app.screen, RunsScreen) and app.is_running


async def test_the_palette_lists_each_command_once():
    app = FsdApp(initial="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert len(titles) == len(set(titles)), titles
        assert "Keys" in titles and "Screenshot" in titles


async def test_a_screenshot_is_saved_without_a_downloads_directory(tmp_path, monkeypatch, isolated_home):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/Downloads
    app = FsdApp(initial="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Screenshot")
        command.callback()
        await wait_for(pilot, lambda: list(isolated_home.glob("screenshots/*.svg")), what="the screenshot file")
        await pilot.pause(0.2)
        saved = list(isolated_home.glob("screenshots/*.svg"))
        assert any(str(saved[0]) in n.message for n in app._notifications), [n.message for n in app._notifications]
