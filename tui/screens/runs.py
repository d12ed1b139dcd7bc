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
    ]

    class HistoryLoaded(Message):
        def __init__(self, runs: list[dict[str, Any]]) -> None:
            super().__init__()
            self.runs = runs

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
        if self._shown is None:  # after the first refresh: TabbedContent's own focus moves come first
            self.call_after_refresh(self.query_one(RunHistory).focus)

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
        if live.finished:
            self.action_reload()

    # ------------------------------------------------------------------ actions
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = {"history": RunHistory, "compare": RunCompare}.get(tab)
        if target is not None:  # after the tab switch, which moves the focus itself
            self.call_after_refresh(self.query_one(target).focus)

    def action_reload(self) -> None:
        self.load_history()

    def action_compare(self) -> None:
        marked = self.query_one(RunHistory).marked
        if len(marked) != 2:
            self.notify("mark two runs in History with m first", severity="warning")
            return
        self.load_compare(marked[0], marked[1])

    # ------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="runs-history", exit_on_error=False)
    def load_history(self) -> None:
        self.post_message(self.HistoryLoaded(services.history(runs_db=self.runs_db)))

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
        self.query_one(RunHistory).show(event.runs)

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
