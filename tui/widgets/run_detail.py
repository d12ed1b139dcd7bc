"""One past run: its figures, per-worker rows and per-worker-layer rows from the run store."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Static

from fsd_core.units import si

from ..format import usd
from .layer_charts import LayerCharts
from .run_history import when


def summary_lines(run: dict[str, Any]) -> str:
    """The figures `fsd run` prints, from a run store record."""
    reqs = ", ".join(f"{k} {v:,}" for k, v in sorted((run.get("requests") or {}).items())) or "-"
    cost = usd(run.get("cost_usd"))
    lines = [
        f"run {run['run_id']}: {run['variant']}, {run['workers']} worker(s), {run['status']}  "
        f"(started {when(run.get('created'))} UTC)",
        f"model {run.get('model')}  inputs {run.get('inputs')}  batch {run.get('batch')}  "
        f"partition {run.get('partition') or '-'}",
        f"time {run.get('seconds') or 0:.3f} s   {si(run.get('edges_per_second') or 0, 'edges/s')}   "
        f"sent {si(run.get('bytes_sent') or 0, 'B')} in {run.get('messages') or 0:,} messages   cost {cost}",
        f"requests {reqs}",
        f"categories {len(run.get('categories') or [])}",
    ]
    if run.get("error"):
        lines.append(f"error: {run['error']}")
    return "\n".join(lines)


class RunDetail(VerticalScroll):
    """A summary, per-layer charts (the run store's rows), and two tables: workers, and layers (per worker)."""

    DEFAULT_CSS = """
    RunDetail { padding: 0 1; }
    RunDetail Label { text-style: bold; margin-top: 1; }
    RunDetail DataTable { height: auto; max-height: 14; }
    RunDetail LayerCharts { height: 14; margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("open a run from History (Enter)", id="detail-summary")
        yield LayerCharts(id="detail-charts")
        yield Label("workers")
        yield DataTable(id="detail-workers", cursor_type="row")
        yield Label("layers")
        yield DataTable(id="detail-layers", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#detail-workers", DataTable).add_columns("worker", "status", "busy s", "error")
        self.query_one("#detail-layers", DataTable).add_columns(
            "worker", "layer", "compute ms", "wait ms", "sent", "recv", "msgs out", "msgs in")

    def show(self, run: dict[str, Any] | None) -> None:
        """Render a record from RunStore.get (None: not found)."""
        summary = self.query_one("#detail-summary", Static)
        workers = self.query_one("#detail-workers", DataTable)
        layers = self.query_one("#detail-layers", DataTable)
        workers.clear()
        layers.clear()
        charts = self.query_one(LayerCharts)
        if run is None:
            summary.update("run not found in the run store")
            charts.clear()
            return
        summary.update(summary_lines(run))
        charts.show(run.get("layers_detail") or [], int(run.get("workers") or 1), layers=run.get("layers"))
        for w in run.get("workers_detail", []):
            busy = (w["finished_at"] - w["started_at"]) if w.get("finished_at") and w.get("started_at") else None
            workers.add_row(str(w["worker"]), str(w.get("status")), f"{busy:.3f}" if busy is not None else "-",
                            w.get("error") or "")
        last = run.get("layers") or 0
        for row in run.get("layers_detail", []):
            layer = "gather" if last and row["layer"] > last else str(row["layer"])  # the gather is layer L+1
            layers.add_row(str(row["worker"]), layer, f"{(row['compute_s'] or 0) * 1e3:.2f}",
                           f"{(row['wait_s'] or 0) * 1e3:.2f}", si(row["bytes_sent"] or 0, "B"),
                           si(row["bytes_received"] or 0, "B"), str(row["messages_sent"]),
                           str(row["messages_received"]))
