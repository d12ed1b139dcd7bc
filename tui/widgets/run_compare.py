"""Two past runs side by side: the figures of each and B relative to A."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from fsd_core.units import si

from ..format import usd

# (label, key, formatter); numeric rows also get a B/A ratio.
ROWS: tuple[tuple[str, str, Any], ...] = (
    ("variant", "variant", str), ("workers", "workers", str), ("partition", "partition", str),
    ("status", "status", str), ("batch", "batch", str),
    ("seconds", "seconds", lambda v: f"{v:.3f}"), ("edges/s", "edges_per_second", lambda v: si(v)),
    ("bytes sent", "bytes_sent", lambda v: si(v, "B")), ("messages", "messages", lambda v: f"{v:,}"),
    ("requests", "requests", lambda v: f"{sum(v.values()):,}"), ("cost", "cost_usd", usd),
    ("categories", "categories", lambda v: f"{len(v)}"),
)


def _number(key: str, value: Any) -> float | None:
    if isinstance(value, dict):
        return float(sum(value.values()))
    if isinstance(value, list):
        return float(len(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("workers", "batch"):
        return float(value)
    return None


class RunCompare(DataTable):
    """Rows are figures; columns are run A, run B and B/A."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)

    def on_mount(self) -> None:
        self.add_columns("figure", "A", "B", "B/A")
        self.add_row("mark two runs in History (m), then press c", "", "", "")

    def show(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        """Fill from two RunStore records."""
        self.clear(columns=True)
        self.add_columns("figure", f"A {a['run_id']}", f"B {b['run_id']}", "B/A")
        for label, key, fmt in ROWS:
            va, vb = a.get(key), b.get(key)
            na, nb = _number(key, va), _number(key, vb)
            ratio = f"{nb / na:.2f}x" if na and nb is not None else ""
            self.add_row(label, fmt(va) if va is not None else "-", fmt(vb) if vb is not None else "-", ratio)
