"""The cost table of `fsd recommend`: serial, queue and object, the recommended row marked."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable


class CostTable(DataTable):
    """One row per variant (its cheapest feasible worker count); the recommendation first."""

    DEFAULT_CSS = """
    CostTable { height: auto; max-height: 6; }
    """

    COLUMNS = ("", "variant", "workers", "MB", "$/query", "latency s", "feasible / why not")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = False
        self.add_columns(*self.COLUMNS)

    def show(self, doc: dict[str, Any]) -> None:
        """Fill from a `fsd recommend --json` document."""
        self.clear()
        best = doc.get("recommended")
        for row in doc.get("rows", []):
            chosen = row["variant"] == best
            style = "bold" if chosen else ""
            cells = ["►" if chosen else "", row["variant"], str(row["workers"]), str(row["memory_mb"]),
                     f"${row['cost_usd']:.6f}", f"{row['latency_s']:.2f}",
                     "yes" if row["feasible"] else f"no: {row['why_not']}"]
            self.add_row(*(Text(c, style=style) for c in cells), key=row["variant"])
        if best:
            self.move_cursor(row=self.get_row_index(best))
