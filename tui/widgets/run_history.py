"""Past runs from the run store; Enter opens one, `m` marks up to two for comparison."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from fsd_core.units import si


def when(created: float | None) -> str:
    """A run's start time in UTC (independent of the machine's zone)."""
    if not created:
        return "?"
    return datetime.fromtimestamp(created, timezone.utc).strftime("%m-%d %H:%M:%S")


class RunHistory(DataTable):
    """Newest first; the first column shows the comparison marks (A and B)."""

    BINDINGS = [Binding("m", "mark", "Mark")]

    class Opened(Message):
        """The operator opened a run (Enter)."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class MarksChanged(Message):
        """The runs marked for comparison (at most two, oldest mark first)."""

        def __init__(self, run_ids: list[str]) -> None:
            super().__init__()
            self.run_ids = run_ids

    COLUMNS = ("", "run", "UTC", "variant", "P", "status", "seconds", "sent", "msgs")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.marked: list[str] = []
        self._runs: list[dict[str, Any]] = []

    def on_mount(self) -> None:
        self.add_columns(*self.COLUMNS)

    def show(self, runs: list[dict[str, Any]], select: str | None = None) -> None:
        """Replace the rows; the cursor goes to `select` (a run that just finished) when listed,
        else stays on the same run."""
        current = select or self.current_run()
        self._runs = runs
        self.marked = [r for r in self.marked if any(x["run_id"] == r for x in runs)]
        self.clear()
        for r in runs:
            status = Text(str(r.get("status")), style="green" if r.get("status") == "ok" else "bold red")
            self.add_row(self._mark(r["run_id"]), r["run_id"], when(r.get("created")), r.get("variant"),
                         str(r.get("workers")), status,
                         f"{r['seconds']:.2f}" if r.get("seconds") is not None else "-",
                         si(r.get("bytes_sent") or 0, "B"), f"{r.get('messages') or 0:,}", key=r["run_id"])
        if current and current in {r["run_id"] for r in runs}:
            self.move_cursor(row=self.get_row_index(current))

    def _mark(self, run_id: str) -> Text:
        if run_id not in self.marked:
            return Text(" ")
        return Text("AB"[self.marked.index(run_id)], style="bold reverse")

    def current_run(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return str(key.value)

    def action_mark(self) -> None:
        """Toggle the comparison mark of the run under the cursor (keeps the last two)."""
        run_id = self.current_run()
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked = (self.marked + [run_id])[-2:]
        for r in self._runs:
            self.update_cell(r["run_id"], self.ordered_columns[0].key, self._mark(r["run_id"]))
        self.post_message(self.MarksChanged(list(self.marked)))

    @on(DataTable.RowSelected)
    def _opened(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Opened(str(event.row_key.value)))
