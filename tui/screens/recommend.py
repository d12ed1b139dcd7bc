"""Recommend: workload inputs -> cost table, the recommendation and its reason, a cost chart."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ..services import Recommendation
from ..widgets.cost_chart import CostChart
from ..widgets.cost_table import CostTable
from ..widgets.recommend_form import RecommendForm


class RecommendScreen(Screen):
    """The form posts Changed; the app computes in a worker and sets `app.recommendation`."""

    TITLE = "Recommend"
    BINDINGS = [Binding("ctrl+r", "recompute", "Recompute")]
    DEFAULT_CSS = """
    RecommendScreen #rec-reason { height: auto; max-height: 4; padding: 0 1; color: $text-accent; }
    RecommendScreen #rec-reason.-error { color: $text-error; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield RecommendForm()
            with Vertical():
                yield CostTable(id="rec-table")
                yield Static("computing…", id="rec-reason")
                yield CostChart(id="rec-chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "recommendation", self._show, init=True)
        self.watch(self.app, "recommendation_error", self._error, init=False)

    def action_recompute(self) -> None:
        self.query_one(RecommendForm).submit()

    def _show(self, rec: Recommendation | None) -> None:
        if rec is None:
            return
        doc = rec.doc
        self.query_one(CostTable).show(doc)
        reason = self.query_one("#rec-reason", Static)
        reason.remove_class("-error")
        text = f"recommended: {doc['recommended'] or 'none'} -- {doc['reason']}"
        if doc.get("crossover_workers"):
            c = doc["crossover"]
            text += f"\nqueue/object cross-over at {c['workers']} workers ({c['below']} cheaper below)"
        s = doc.get("sporadic")
        if s:
            text += f"\nat {s['queries_per_hour']:g} queries/hour: ${s['serverless_usd_per_day']:.2f}/day serverless"
        reason.update(text)
        self.query_one(CostChart).show(rec.curve, doc.get("crossover_workers"))

    def _error(self, message: str) -> None:
        if message:
            reason = self.query_one("#rec-reason", Static)
            reason.add_class("-error")
            reason.update(message)

    @on(RecommendForm.Invalid)
    def _invalid(self, event: RecommendForm.Invalid) -> None:
        self._error(event.reason)
