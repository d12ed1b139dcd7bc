"""Recommend: workload inputs -> cost table, the recommendation and its reason, the EC2
comparison, a cost chart: what `fsd recommend` prints, in the space of the screen."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ..format import seconds, usd
from ..services import Recommendation
from ..widgets.cost_chart import CostChart
from ..widgets.cost_table import CostTable
from ..widgets.recommend_form import RecommendForm


def reason_text(doc: dict[str, Any]) -> str:
    """The recommendation and its reason; why each other variant is ruled out and the cost
    model's rule (its "rule" key, a text or {"text": ...}), each unless the reason says it already."""
    lines = [f"recommended: {doc.get('recommended') or 'none'} -- {doc.get('reason', '')}"]
    reason = doc.get("reason") or ""
    for row in doc.get("rows", []):
        why = row.get("why_not")
        if not row.get("feasible") and why and why not in reason:
            lines.append(f"{row.get('variant')}: {why}")
    rule = doc.get("rule")
    rule = rule.get("text") if isinstance(rule, dict) else rule
    if isinstance(rule, str) and rule and rule not in reason:
        lines.append(f"rule: {rule}")
    return "\n".join(lines)


def comparison_text(doc: dict[str, Any], queries_per_hour: float | None) -> Text:
    """The queue/object cross-over and the cost per day against EC2, as `fsd recommend` prints them."""
    text = Text()
    x = doc.get("crossover") or {}
    if x.get("workers"):
        text.append(f"queue/object cross-over at {x['workers']} workers ({x.get('below')} cheaper below, "
                    f"{x.get('above')} above)")
    elif x.get("cheaper_everywhere") and x.get("range"):
        text.append(f"no queue/object cross-over: {x['cheaper_everywhere']} is cheaper for "
                    f"{x['range'][0]}-{x['range'][1]} workers")
    s = doc.get("sporadic")
    if text:
        text.append("\n")
    if s:
        text.append(f"at {s['queries_per_hour']:g} queries/hour: serverless {usd(s['serverless_usd_per_day'])}/day",
                    style="bold")
        server = s.get("server")
        if server:
            text.append(f"\nEC2 {server['instance']} ({server.get('vcpu')} vCPU, {server.get('memory_gib')} GiB, "
                        f"{usd(server.get('usd_per_hour'))}/h): always-on {usd(s.get('always_on_usd_per_day'))}/day, "
                        f"job-scoped {usd(s.get('job_scoped_usd_per_day'))}/day")
            if s.get("job_scoped_latency_s") is not None:
                text.append(f" ({seconds(s['job_scoped_latency_s'])} a query)")
            be = s.get("break_even_queries_per_hour_vs_always_on")
            if be is not None:
                text.append(f"; break-even vs always-on: {be:,.0f} queries/hour")
            if s.get("cheapest"):
                text.append(f"; cheapest: {s['cheapest'].replace('_', '-')}", style="bold")
        else:
            text.append(f" ({s.get('note', 'no EC2 instance to compare')})")
    elif queries_per_hour is not None:
        text.append("no cost per day: no variant is feasible", style="dim")
    else:
        text.append("queries per hour: compare the cost per day with EC2 servers", style="dim")
    return text


class RecommendScreen(Screen):
    """The form posts Changed; the app computes in a worker and sets `app.recommendation`."""

    TITLE = "Recommend"
    BINDINGS = [Binding("ctrl+r", "recompute", "Recompute")]
    DEFAULT_CSS = """
    RecommendScreen #rec-results { height: 1fr; scrollbar-size-vertical: 1; }
    RecommendScreen #rec-reason { height: auto; padding: 0 1; color: $text-accent; }
    RecommendScreen #rec-reason.-error { color: $text-error; }
    RecommendScreen #rec-compare { height: auto; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield RecommendForm()
            with VerticalScroll(id="rec-results"):
                yield CostTable(id="rec-table")
                yield Static("computing…", id="rec-reason")
                yield Static("", id="rec-compare")
                yield CostChart(id="rec-chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "recommendation", self._show, init=True)
        self.watch(self.app, "recommendation_error", self._error, init=False)

    def action_recompute(self) -> None:
        self.query_one(RecommendForm).submit()

    def _show(self, rec: Recommendation | None) -> None:
        """Show a recommendation; None (the inputs have none) empties the table, comparison and chart."""
        if rec is None:
            self.query_one(CostTable).show(None)
            self.query_one("#rec-compare", Static).update("")
            self.query_one(CostChart).show({}, None)
            return
        doc = rec.doc
        self.query_one(CostTable).show(doc)
        reason = self.query_one("#rec-reason", Static)
        reason.remove_class("-error")
        reason.update(reason_text(doc))
        self.query_one("#rec-compare", Static).update(comparison_text(doc, rec.inputs.queries_per_hour))
        self.query_one(CostChart).show(rec.curve, doc.get("crossover_workers"))

    def _error(self, message: str) -> None:
        if message:
            reason = self.query_one("#rec-reason", Static)
            reason.add_class("-error")
            reason.update(message)
