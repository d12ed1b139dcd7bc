"""The `fsd tui` application: modes, keys, the command palette, and the blocking work.

Recommendations and runs are computed in thread workers owned by the app (as harlequin
does) that post the messages nested below; their handlers set the reactive attributes the
screens watch (`recommendation`, `recommendation_error`, `live_version`): attributes down,
messages up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from fsd_core.run.coordinator import Progress, RunConfig, RunResult

from . import services
from .screens.deployment import DeploymentScreen
from .screens.help import HelpScreen
from .screens.launch import LaunchScreen
from .screens.recommend import RecommendScreen
from .screens.runs import RunsScreen
from .services import Recommendation, RecommendInputs
from .state import LiveRun
from .widgets.launch_form import LaunchForm
from .widgets.recommend_form import RecommendForm

SCREENS_BY_KEY = (("1", "deployment", "Deployment"), ("2", "recommend", "Recommend"),
                  ("3", "launch", "Launch"), ("4", "runs", "Runs"))
SCREENS_GROUP = Binding.Group("screens ", compact=True)
#: The header's sub-title on every screen: the screen keys, always visible (even at 80 columns).
NAV = " · ".join(f"{key} {title}" for key, _, title in SCREENS_BY_KEY)


class FsdApp(App[None]):
    """The operator dashboard."""

    TITLE = "fsd"
    SUB_TITLE = NAV
    CSS = """
    Screen { layout: vertical; }
    TabbedContent, TabPane { height: 1fr; }
    """
    BINDINGS = [
        *(Binding(key, f"mode('{mode}')", title, group=SCREENS_GROUP) for key, mode, title in SCREENS_BY_KEY),
        Binding("question_mark", "help", "Help"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("q", "quit", "Quit"),
    ]

    recommendation: reactive[Recommendation | None] = reactive(None, always_update=True)
    recommendation_error: reactive[str] = reactive("")
    live_version: reactive[int] = reactive(0, always_update=True)

    # ------------------------------------------------------------------ messages
    class RecommendationReady(Message):
        """A recommendation for the latest inputs."""

        def __init__(self, rec: Recommendation) -> None:
            super().__init__()
            self.rec = rec

    class RecommendationFailed(Message):
        """The cost model rejected the inputs (one line, as the CLI prints it)."""

        def __init__(self, inputs: RecommendInputs, reason: str) -> None:
            super().__init__()
            self.inputs, self.reason = inputs, reason

    class RunProgress(Message):
        """A private copy of a coordinator Progress snapshot, and the app clock's time it was taken."""

        def __init__(self, snap: Progress, at: float | None = None) -> None:
            super().__init__()
            self.snap, self.at = snap, at

    class RunFinished(Message):
        """coordinator.run returned (ok or failed); `truth` is the truth check's (passed, what)."""

        def __init__(self, result: RunResult, truth: tuple[bool, str] | None = None) -> None:
            super().__init__()
            self.result, self.truth = result, truth

    class RunFailed(Message):
        """coordinator.run refused the run (bad input) or crashed."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    #: The clock of the live view (progress trace, elapsed time); tests set a fixed one.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    #: Seconds `finish_run` waits for a stopped run to clean up and be recorded.
    RUN_STOP_WAIT_S = 60.0

    # ------------------------------------------------------------------ setup
    def __init__(self, runs_db: str | None = None, initial: str = "runs", pool: Any = None,
                 quit_on_signals: bool = False) -> None:
        super().__init__()
        self.runs_db = runs_db
        self.pool = pool  # a WorkerPool: local queries after the first start warm (fsd_core/pool.py)
        self.initial = initial
        self.live: LiveRun | None = None
        self._wanted: RecommendInputs | None = None
        # SIGTERM and SIGHUP (the terminal closed) quit as `q` does, so whatever holds the pool
        # closes it: the default action would end the process with the pool's files left behind.
        self.quit_on_signals = quit_on_signals
        self._quitting = False
        self._run_id: str | None = None  # the run in flight, as its thread last reported it
        self.run_ended = threading.Event()  # set while no run's thread is under way
        self.run_ended.set()

    def on_mount(self) -> None:
        if self.quit_on_signals:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(signum, self._quit_on_signal, signum)
        self.add_mode("deployment", DeploymentScreen)
        self.add_mode("recommend", RecommendScreen)
        self.add_mode("launch", lambda: LaunchScreen(self.runs_db))
        self.add_mode("runs", lambda: RunsScreen(self.runs_db))
        self.switch_mode(self.initial)
        self.request_recommendation(RecommendInputs())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, but our Keys (the help screen) and a Screenshot that always saves."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Keys", "Screenshot"):
                yield command
        for key, mode, title in SCREENS_BY_KEY:
            yield SystemCommand(f"Go to {title}", f"Show the {title} screen (key {key})",
                                lambda mode=mode: self.action_mode(mode))
        yield SystemCommand("Keys", "Every key of every screen (?)", self.action_help)
        yield SystemCommand("Toggle light/dark", "Switch between the light and dark theme (t)",
                            self.action_toggle_theme)
        yield SystemCommand("Screenshot", "Save an SVG of the screen (~/Downloads, else the data directory)",
                            lambda: self.set_timer(0.1, self.action_screenshot))

    # ------------------------------------------------------------------ actions
    def exit(self, *args: Any, **kwargs: Any) -> None:
        """Quit (q, ctrl+q, a signal): a run in flight is stopped first, as `fsd cancel` stops
        one, and recorded interrupted; `finish_run` waits for it to clean up."""
        self._quitting = True
        if self._run_id is not None and not self.run_ended.is_set():
            self._stop(self._run_id)
        super().exit(*args, **kwargs)

    #: Seconds a signalled dashboard has to end normally before its watchdog ends it.
    SIGNAL_GRACE_S = 3.0

    def _quit_on_signal(self, signum: int) -> None:
        """SIGTERM, or SIGHUP (the terminal closed): quit as `q` does (unless `fsd cancel` sent the
        SIGTERM for the run in flight: `_cancelled_from_outside`). Textual's shutdown writes
        to the terminal, and one that is gone can wedge it (its writer thread dies on the write,
        the shutdown then waits on its full queue), so a watchdog finishes the job if the app
        has not ended within SIGNAL_GRACE_S: stop the run, close the pool, exit."""
        if signum == signal.SIGTERM and self._cancelled_from_outside():
            return  # `fsd cancel` of the run in flight: that run stops, the dashboard stays
        threading.Thread(target=self._end_after_signal, args=(signum,), daemon=True,
                         name="fsd-signal-watchdog").start()
        self.exit()

    def _cancelled_from_outside(self) -> bool:
        """`fsd cancel` in another process signals a run's coordinator, which for the dashboard's
        runs is the dashboard: its marker says the SIGTERM was for that run, which is stopped
        and recorded cancelled."""
        from fsd_core.errors import Interrupted
        from fsd_core.run.coordinator import cancel_requested, request_stop

        run_id = self._run_id
        if run_id is None or self.run_ended.is_set() or not cancel_requested(run_id):
            return False
        request_stop(run_id, Interrupted("cancelled", status="cancelled"))
        return True

    def _end_after_signal(self, signum: int) -> None:
        time.sleep(self.SIGNAL_GRACE_S)  # the normal shutdown's chance (the process ends with it)
        if self._run_id is not None and not self.run_ended.is_set():
            self._stop(self._run_id)
        self.run_ended.wait(self.RUN_STOP_WAIT_S)
        if self.pool is not None:
            self.pool.close()
        os._exit(128 + signum)

    @staticmethod
    def _stop(run_id: str) -> None:
        from fsd_core.errors import Interrupted
        from fsd_core.run.coordinator import request_stop

        request_stop(run_id, Interrupted("interrupted: the dashboard quit"))

    def finish_run(self, timeout: float | None = None) -> bool:
        """After the app exits: wait until the run it stopped has cleaned up and been recorded
        (before its warm pool is closed under it). False if it is still going after `timeout`."""
        if self.run_ended.is_set():
            return True
        sys.stderr.write(f"fsd tui: stopping run {self._run_id or ''} (its workers stop, it is recorded interrupted)\n")
        return self.run_ended.wait(self.RUN_STOP_WAIT_S if timeout is None else timeout)

    def action_mode(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_leave_field(self) -> None:
        self.screen.set_focus(None)

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Save an SVG of the screen where a directory exists, and say where."""
        try:
            saved = self.save_screenshot(filename, path or str(services.screenshot_dir()))
        except OSError as exc:
            self.notify(f"screenshot not saved: {exc}", severity="error")
            return
        self.notify(f"screenshot saved: {saved}", title="Screenshot")

    # ------------------------------------------------------------------ recommendation
    def request_recommendation(self, inputs: RecommendInputs) -> None:
        self._wanted = inputs
        self.calculate_recommendation(inputs)

    @work(thread=True, exclusive=True, group="recommend", exit_on_error=False)
    def calculate_recommendation(self, inputs: RecommendInputs) -> None:
        """The cost model, off the UI thread; drops a result that newer inputs superseded."""
        from fsd_core.errors import FsdError

        try:
            rec = services.recommend(inputs)
        except FsdError as exc:
            self.post_message(self.RecommendationFailed(inputs, str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.RecommendationReady(rec))

    @on(RecommendForm.Changed)
    def _inputs_changed(self, event: RecommendForm.Changed) -> None:
        self.request_recommendation(event.inputs)

    @on(RecommendForm.Invalid)
    def _inputs_invalid(self, event: RecommendForm.Invalid) -> None:
        """Inputs that do not parse have no recommendation (one still computing is dropped)."""
        self._wanted = None
        self.recommendation_error = event.reason
        self.recommendation = None

    @on(RecommendationReady)
    def _recommended(self, event: RecommendationReady) -> None:
        if event.rec.inputs == self._wanted:
            self.recommendation_error = ""
            self.recommendation = event.rec

    @on(RecommendationFailed)
    def _not_recommended(self, event: RecommendationFailed) -> None:
        """No recommendation for the current inputs: the old one is not shown as if it were."""
        if event.inputs == self._wanted:
            self.recommendation_error = event.reason
            self.recommendation = None

    # ------------------------------------------------------------------ runs
    @on(LaunchForm.Submitted)
    def _launch_requested(self, event: LaunchForm.Submitted) -> None:
        self.launch(event.config, event.truth)

    def launch(self, config: RunConfig, truth: str | None = None) -> bool:
        """Start a run in a thread worker and show the Runs screen; False if one is running.

        `truth`: a categories file the result is checked against (`fsd run --check`).
        """
        if self.live is not None and not self.live.finished:
            self.notify("a run is already in progress", severity="warning")
            return False
        refusal = services.cloud_run_refusal(config.variant, config.workers) if config.manifest is None else None
        if refusal is not None:
            self.notify(refusal, severity="error", timeout=10)
            return False
        self.run_ended.clear()
        self._run_id = None  # (the run says its id with its first snapshot)
        self.live = LiveRun(config, clock=self.clock, truth_path=truth)
        workers = 1 if config.variant == "serial" else config.workers
        what = f"deployed model {config.deployed}" if config.deployed else config.model_path
        self.live.log.append(f"launching {config.variant} on {workers} worker(s): {what}")
        self.switch_mode("runs")
        self.live_version += 1
        self.run_query(config, truth)
        return True

    @work(thread=True, group="run", exit_on_error=False)
    def run_query(self, config: RunConfig, truth_path: str | None = None) -> None:
        """coordinator.run with a progress callback posting RunProgress; then RunFinished.

        The truth file is read first, as `fsd run --check` does: a bad one refuses the run.
        """
        from fsd_core.errors import FsdError

        def progress(snap: Progress) -> None:
            if self._run_id != snap.run_id:
                self._run_id = snap.run_id
                if self._quitting:  # quit before the run had said its id
                    self._stop(snap.run_id)
            self.post_message(self.RunProgress(services.snapshot(snap), self.clock()))

        if self.pool is not None and config.variant != "serial":  # local, and cloud runs on the emulator
            config = dataclasses.replace(config, pool=self.pool)
        try:
            truth = services.read_truth(truth_path) if truth_path else None
            result = services.run(config, progress)
        except FsdError as exc:
            self.post_message(self.RunFailed(str(exc)))
            return
        finally:
            self.run_ended.set()
        checked = services.truth_check(truth, result.categories) if truth is not None and result.status == "ok" \
            else None
        self.post_message(self.RunFinished(result, checked))

    @on(RunProgress)
    def _progress(self, event: RunProgress) -> None:
        if self.live is not None:
            self.live.update(event.snap, event.at)
            self.live_version += 1

    @on(RunFinished)
    def _finished(self, event: RunFinished) -> None:
        if self.live is not None:
            self.live.finish(event.result, event.truth)
            self.live_version += 1
            ok = event.result.status == "ok"
            self.notify(f"run {event.result.run_id} {event.result.status}", severity="information" if ok else "error")

    @on(RunFailed)
    def _failed(self, event: RunFailed) -> None:
        if self.live is not None:
            self.live.fail(event.reason)
            self.live_version += 1
            self.notify(event.reason, title="run not started", severity="error")

    @on(Worker.StateChanged)
    def _worker_error(self, event: Worker.StateChanged) -> None:
        """Any worker that raised: one line, as the CLI would print it."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            if event.worker.group == "run" and self.live is not None and not self.live.finished:
                self.live.fail(f"{type(error).__name__}: {error}")
                self.live_version += 1
            self.notify(f"{type(error).__name__}: {error}", title=event.worker.name, severity="error")


def main(runs_db: str | None = None, initial: str = "runs") -> None:
    """Run the dashboard in the terminal; its local queries share one warm worker pool, closed
    (its /dev/shm files removed) however the dashboard ends: q, SIGTERM or its terminal closing."""
    from fsd_core.engine.pool import WorkerPool

    with WorkerPool() as pool:
        app = FsdApp(runs_db=runs_db, initial=initial, pool=pool, quit_on_signals=True)
        try:
            app.run()
        finally:
            app.finish_run()
