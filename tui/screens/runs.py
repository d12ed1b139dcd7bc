"""Runs: the live run, the history from the run store, one run's detail, two runs compared."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from .. import services
from ..state import LiveRun
from ..widgets.run_compare import RunCompare
from ..widgets.run_detail import RunDetail
from ..widgets.run_history import RunHistory
from ..widgets.run_monitor import RunMonitor
from .confirm import ConfirmScreen

TABS_GROUP = Binding.Group("tabs ", compact=True)


class RunsScreen(Screen):
    """Watches `app.live_version` for the live run; reads the run store in thread workers."""

    TITLE = "Runs"
    BINDINGS = [
        Binding("l", "tab('live')", "Live", group=TABS_GROUP),
        Binding("h", "tab('history')", "History", group=TABS_GROUP),
        Binding("d", "tab('detail')", "Detail", group=TABS_GROUP),
        Binding("c", "compare", "Compare"),
        Binding("r", "reload", "Reload"),
        Binding("w", "chart_worker", "Chart worker", show=False),
        Binding("x", "cancel_run", "Cancel run", show=False),
    ]

    class HistoryLoaded(Message):
        """The run store's runs; `select`: put the cursor on this run (one that just finished)."""

        def __init__(self, runs: list[dict[str, Any]], select: str | None = None) -> None:
            super().__init__()
            self.runs, self.select = runs, select

    class LiveRecordLoaded(Message):
        """The finished live run as the run store holds it (its per-layer rows for the charts)."""

        def __init__(self, live: LiveRun, record: dict[str, Any] | None) -> None:
            super().__init__()
            self.live, self.record = live, record

    class DetailLoaded(Message):
        def __init__(self, run: dict[str, Any] | None) -> None:
            super().__init__()
            self.run = run

    class CompareLoaded(Message):
        def __init__(self, a: dict[str, Any] | None, b: dict[str, Any] | None) -> None:
            super().__init__()
            self.a, self.b = a, b

    def __init__(self, runs_db: str | None = None) -> None:
        super().__init__()
        self.runs_db = runs_db
        self._shown: LiveRun | None = None
        self._settled: LiveRun | None = None  # the finished run whose history and record were read

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="history"):
            with TabPane("Live l", id="live"):
                yield RunMonitor()
            with TabPane("History h", id="history"):
                yield RunHistory(id="history-table")
            with TabPane("Detail d", id="detail"):
                yield RunDetail()
            with TabPane("Compare c", id="compare"):
                yield RunCompare(id="compare-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "live_version", self._live_changed, init=True)
        self.action_reload()
        self.call_after_refresh(self._first_focus)  # after TabbedContent's own focus moves

    def _first_focus(self) -> None:
        """History has the focus unless a run is shown (focusing History would show its tab)."""
        if self._shown is None:
            self.query_one(RunHistory).focus()

    # ------------------------------------------------------------------ live run
    def _live_changed(self, _version: int) -> None:
        live: LiveRun | None = getattr(self.app, "live", None)
        if live is None:
            return
        monitor = self.query_one(RunMonitor)
        if live is not self._shown:
            monitor.reset()
            self._shown = live
            self.action_tab("live")
        monitor.show(live)
        if live.finished and live is not self._settled:
            self._settled = live
            self.load_history(select=live.run_id if live.result is not None else None)
            if live.result is not None and live.config.record:
                self.load_live_record(live)

    # ------------------------------------------------------------------ actions
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        # The tab's main widget takes the focus after the switch (which moves the focus itself):
        # a focused widget left in another tab would bring its tab back.
        target = {"live": "#monitor-log", "history": "#history-table", "detail": RunDetail,
                  "compare": "#compare-table"}[tab]
        self.call_after_refresh(self.query_one(target).focus)

    def action_reload(self) -> None:
        self.load_history()

    def action_chart_worker(self) -> None:
        """The live time chart: the next worker, or (after the last) every worker's mean."""
        self.notify(f"time per layer: {self.query_one(RunMonitor).cycle_worker()}", timeout=2)

    def action_cancel_run(self) -> None:
        """Cancel the run in flight, after a yes (its workers stop, it is recorded cancelled)."""
        live: LiveRun | None = getattr(self.app, "live", None)
        if live is None or live.finished or live.snap is None:
            self.notify("no run in progress to cancel", severity="warning")
            return
        run_id = live.snap.run_id

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"cancelling run {run_id}...", timeout=3)
                self.cancel_run(run_id)

        self.app.push_screen(ConfirmScreen(f"Cancel run {run_id}? Its workers stop and it is recorded "
                                           "cancelled."), answered)

    def action_compare(self) -> None:
        marked = self.query_one(RunHistory).marked
        if len(marked) != 2:
            self.notify("mark two runs in History with m first", severity="warning")
            return
        self.load_compare(marked[0], marked[1])

    # ------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="runs-cancel", exit_on_error=False)
    def cancel_run(self, run_id: str) -> None:
        try:
            status = services.cancel_run(run_id, self.runs_db)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, not raised into the UI
            self.app.call_from_thread(self.notify, f"cancel: {exc}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"run {run_id}: {status}")

    @work(thread=True, exclusive=True, group="runs-history", exit_on_error=False)
    def load_history(self, select: str | None = None) -> None:
        try:
            runs = services.history(runs_db=self.runs_db)
        except Exception as exc:  # noqa: BLE001 - a run store it cannot read: said, not raised into the UI
            self.app.call_from_thread(self.notify, f"history: {exc}", severity="error", timeout=10)
            return
        self.post_message(self.HistoryLoaded(runs, select))

    @work(thread=True, exclusive=True, group="runs-live-record", exit_on_error=False)
    def load_live_record(self, live: LiveRun) -> None:
        self.post_message(self.LiveRecordLoaded(live, services.run_record(live.result.run_id, self.runs_db)))

    @work(thread=True, exclusive=True, group="runs-detail", exit_on_error=False)
    def load_detail(self, run_id: str) -> None:
        self.post_message(self.DetailLoaded(services.run_record(run_id, self.runs_db)))

    @work(thread=True, exclusive=True, group="runs-compare", exit_on_error=False)
    def load_compare(self, a: str, b: str) -> None:
        self.post_message(self.CompareLoaded(services.run_record(a, self.runs_db),
                                             services.run_record(b, self.runs_db)))

    # ------------------------------------------------------------------ messages
    @on(HistoryLoaded)
    def _history(self, event: HistoryLoaded) -> None:
        self.query_one(RunHistory).show(event.runs, select=event.select)

    @on(LiveRecordLoaded)
    def _live_record(self, event: LiveRecordLoaded) -> None:
        if event.record is not None:
            event.live.record = event.record
            if event.live is self._shown:
                self.query_one(RunMonitor).show(event.live)

    @on(RunHistory.Opened)
    def _opened(self, event: RunHistory.Opened) -> None:
        self.load_detail(event.run_id)

    @on(DetailLoaded)
    def _detail(self, event: DetailLoaded) -> None:
        self.query_one(RunDetail).show(event.run)
        self.action_tab("detail")

    @on(CompareLoaded)
    def _compare(self, event: CompareLoaded) -> None:
        if event.a is None or event.b is None:
            self.notify("a marked run is no longer in the run store", severity="error")
            return
        self.query_one(RunCompare).show(event.a, event.b)
        self.action_tab("compare")
