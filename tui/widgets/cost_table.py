"""The cost table of `fsd recommend`: serial, queue and object, the recommended row marked."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from ..format import usd


class CostTable(DataTable):
    """One row per variant (its cheapest feasible worker count); the recommendation first.

    Narrow enough for an 80-column terminal beside the form: why a variant is ruled out is
    written under the table (the Recommend screen's reason), not in a column.
    """

    DEFAULT_CSS = """
    CostTable { height: auto; max-height: 6; }
    """

    COLUMNS = ("", "variant", "P", "MB", "$/query", "latency", "ok")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = False
        self.add_columns(*self.COLUMNS)

    def show(self, doc: dict[str, Any] | None) -> None:
        """Fill from a `fsd recommend --json` document (None: empty)."""
        self.clear()
        if not doc:
            return
        best = doc.get("recommended")
        for row in doc.get("rows", []):
            chosen = row.get("variant") == best
            style = "bold" if chosen else ""
            cells = ["►" if chosen else "", str(row.get("variant")), str(row.get("workers")), str(row.get("memory_mb")),
                     usd(row.get("cost_usd")), f"{row['latency_s']:.2f} s" if row.get("latency_s") is not None else "-",
                     "yes" if row.get("feasible") else "no"]
            self.add_row(*(Text(c, style=style) for c in cells), key=row.get("variant"))
        if best and best in {r.get("variant") for r in doc.get("rows", [])}:
            self.move_cursor(row=self.get_row_index(best))
