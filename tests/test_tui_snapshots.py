"""Snapshot tests (pytest-textual-snapshot) of every screen at 80x24 and 120x35, light and dark.

Deterministic by construction: a fixed FSD_HOME (its path is on the Deployment screen), a run
store seeded with fixed ids and times, a canned recommendation (the screens' layout is under
test here; the cost model's figures on them are tests/test_tui_forms.py's), and the live run
scripted with the times of a fixed clock. Baselines: tests/__snapshots__/test_tui_snapshots/.
After an intended change: `pytest tests/test_tui_snapshots.py --snapshot-update`, then review
the SVGs (a report of the differences: `--snapshot-report`).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot

from fsd_core.run import coordinator
from fsd_core.run.coordinator import Progress
from tests.test_tui import ROOT, seed_runs, wait_for
from tests.test_tui_live import ScriptedRun, config, report, result
from tui import services
from tui.app import FsdApp
from tui.services import Recommendation, RecommendInputs

SNAPSHOT_HOME = Path("/tmp/fsd-tui-snapshot-home")
SIZES = {"80x24": (80, 24), "120x35": (120, 35)}
THEMES = {"dark": "textual-dark", "light": "textual-light"}
RUN_ID = "cccc00000003"

# ------------------------------------------------------------------------------ a canned recommendation
ROWS = [
    {"variant": "serial", "workers": 1, "memory_mb": 256, "cost_usd": 3.01e-06, "latency_s": 0.962,
     "feasible": True, "why_not": None},
    {"variant": "queue", "workers": 2, "memory_mb": 1769, "cost_usd": 2.66e-04, "latency_s": 4.37,
     "feasible": False, "why_not": "latency 4.4 s > target 2.5 s"},
    {"variant": "object", "workers": 2, "memory_mb": 1769, "cost_usd": 5.27e-04, "latency_s": 4.87,
     "feasible": False, "why_not": "latency 4.9 s > target 2.5 s"},
]
DOC = {
    "recommended": "serial", "workers": 1, "memory_mb": 256,
    "reason": "serial with 1 worker(s) at 256 MB: $3.01e-06 per query, 0.962 s; queue ruled out "
              "(latency 4.4 s > target 2.5 s); object ruled out (latency 4.9 s > target 2.5 s)",
    "rule": {"name": "latency-target", "target_s": 2.5, "text": "the cheapest choice within the 2.5 s latency target"},
    "rows": ROWS, "crossover_workers": None,
    "crossover": {"workers": None, "below": None, "above": None, "cheaper_everywhere": "queue", "range": [2, 256]},
}
SPORADIC = {
    "queries_per_hour": 100, "burst_size": 1, "serverless_usd_per_day": 0.00722,
    "server": {"instance": "c6i.xlarge", "vcpu": 4, "memory_gib": 8, "usd_per_hour": 0.17, "query_s": 0.0289,
               "load_s": 0.00092},
    "always_on_usd_per_day": 4.08, "job_scoped_usd_per_day": 6.8, "job_scoped_usd_per_query": 0.00283,
    "job_scoped_latency_s": 45.03, "break_even_queries_per_hour_vs_always_on": 56525.0, "cheapest": "serverless",
}
WORKERS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 19, 22, 26, 30, 35, 41, 47, 55, 64)
CURVE = {"queue": [(p, 1.3e-4 * p ** 1.45) for p in WORKERS], "object": [(p, 1.4e-4 * p ** 1.95) for p in WORKERS]}


def canned_recommend(inputs: RecommendInputs) -> Recommendation:
    doc = dict(DOC, sporadic=SPORADIC) if inputs.queries_per_hour else dict(DOC)
    return Recommendation(inputs, doc, CURVE)


# ------------------------------------------------------------------------------ fixtures
class Clock:
    """The app's clock in these tests: it reads what the scripted run last set."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedRun(ScriptedRun):
    """A scripted run whose items are (clock time, snapshot): the time is set before each is sent."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, config, progress=None):
        def timed(snap):
            self.clock.now = snap[0] if isinstance(snap, tuple) else self.clock.now
            progress(snap[1] if isinstance(snap, tuple) else snap)

        return super().__call__(config, timed)


@pytest.fixture
def fixed(monkeypatch):
    """A fixed, seeded FSD_HOME, the canned recommendation, a scripted run; cwd at the repo root."""
    shutil.rmtree(SNAPSHOT_HOME, ignore_errors=True)
    SNAPSHOT_HOME.mkdir(parents=True)
    monkeypatch.setenv("FSD_HOME", str(SNAPSHOT_HOME))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")  # a tab underline caught mid-slide made snapshots flaky
    monkeypatch.delenv("FSD_MANIFEST", raising=False)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(services, "recommend", canned_recommend)
    seed_runs(SNAPSHOT_HOME / "runs.sqlite")
    clock = Clock()
    run = TimedRun(clock)
    monkeypatch.setattr(coordinator, "run", run)
    yield clock, run
    shutil.rmtree(SNAPSHOT_HOME, ignore_errors=True)


async def settle(pilot: Pilot) -> None:
    """Wait for every worker but a scripted run's (recommendation, store reads) and the form's debounce."""
    for _ in range(3):
        for worker in [w for w in pilot.app.workers if w.group != "run" and not w.is_finished]:
            with contextlib.suppress(Exception):  # a failed worker shows on the screen, which is compared
                await worker.wait()
        await pilot.pause(0.4)
    await pilot.pause()


# ------------------------------------------------------------------------------ what is on each screen
TRACE = [(1.2, [-1, -1, -1]), (1.6, [2, 3, 2]), (2.0, [6, 7, 6]), (2.4, [10, 12, 10]), (2.8, [15, 16, 14]),
         (3.2, [19, 21, 18])]


async def live_run(pilot: Pilot, app: FsdApp, clock: Clock, run: TimedRun, until: str) -> None:
    """A queue run on 3 workers, 24 layers: `until` "trace" (no report yet), "report" (worker 0's in), "end"."""
    clock.now = 0.0
    app.launch(config("queue", 3))
    run.put((0.4, Progress(RUN_ID, "planning", 24, [-1] * 3)), (0.9, Progress(RUN_ID, "staging", 24, [-1] * 3)))
    run.put(*((t, Progress(RUN_ID, "running", 24, done)) for t, done in TRACE))
    last = TRACE[-1][1]
    if until != "trace":
        run.put((3.6, Progress(RUN_ID, "running", 24, [24, 22, 21], {0: report(0, 24)})))
    if until == "end":
        run.put((4.1, Progress(RUN_ID, "ok", 24, [24] * 3, {p: report(p, 24) for p in range(3)})))
        run.put(result(RUN_ID, "queue", 3, 24))

    def reached() -> bool:
        live = app.live
        if until == "trace":
            return bool(live.trace) and live.trace[-1][1] == last
        if until == "report":
            return live.snap is not None and 0 in live.snap.reports
        return live.record is not None  # the run store's rows, read back after the end

    await wait_for(pilot, reached, what=f"the live run ({until})")
    await settle(pilot)
    app.clear_notifications()
    await pilot.pause()


def prepare(screen: str):
    """The screen to open and what to do there before the snapshot."""

    async def before(pilot: Pilot) -> None:
        app = pilot.app
        await settle(pilot)
        if screen == "recommend":
            form = app.screen.query_one("RecommendForm")
            form.set_value("qph", "100")
            form.set_value("latency", "2.5")
        elif screen == "runs-detail":
            await pilot.press("down", "enter")
        elif screen == "runs-compare":
            await pilot.press("m", "down", "m", "c")
        elif screen == "help":
            await pilot.press("question_mark")
        elif screen.startswith("live"):
            await live_run(pilot, app, app.clock, app.scripted, screen.removeprefix("live-"))
        await settle(pilot)

    initial = {"deployment": "deployment", "recommend": "recommend", "launch": "launch"}.get(screen, "runs")
    return initial, before


SCREENS = ("deployment", "recommend", "launch", "runs-history", "runs-detail", "runs-compare", "live-report",
           "live-end", "help")


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_snapshot(snap_compare, fixed, screen, size, theme):
    clock, run = fixed
    initial, before = prepare(screen)
    app = FsdApp(initial=initial)
    app.clock, app.scripted = clock, run

    async def run_before(pilot: Pilot) -> None:
        pilot.app.theme = THEMES[theme]
        await before(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


def test_snapshot_live_trace(snap_compare, fixed):
    """Before any worker reported: the layers each finished against time (the progress files)."""
    clock, run = fixed
    app = FsdApp(initial="runs")
    app.clock, app.scripted = clock, run

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await live_run(pilot, app, clock, run, "trace")

    assert snap_compare(app, terminal_size=SIZES["120x35"], run_before=run_before)
