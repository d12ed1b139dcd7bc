"""Per-worker status cells: launching, computing, waiting, done, failed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

# Rich styles that read on light and dark backgrounds (colour plus a distinct glyph).
STYLE = {"launching": ("◌", "dim"), "computing": ("●", "bold blue"), "waiting": ("◐", "bold yellow"),
         "done": ("✔", "bold green"), "failed": ("✖", "bold red")}


class WorkerGrid(Static):
    """Cells `#p glyph state` wrapped to the widget's width, with a legend line of counts."""

    DEFAULT_CSS = """
    WorkerGrid { height: auto; max-height: 8; padding: 0 1; }
    """

    def message(self, text: str) -> None:
        """No cells: a line saying why."""
        self.update(Text(text, style="dim"))

    def show(self, states: list[str], layers_done: list[int] | None = None) -> None:
        """Render one cell per worker (and its finished layer count when known)."""
        if not states:
            self.update(Text("no workers", style="dim"))
            return
        text = Text()
        for p, state in enumerate(states):
            glyph, style = STYLE[state]
            done = f" L{max(layers_done[p], 0)}" if layers_done is not None else ""
            text.append(f"#{p:<3}", style="bold")
            text.append(f"{glyph} {state:<9}{done:<5}", style=style)
            text.append("  ")
        counts = ", ".join(f"{s} {states.count(s)}" for s in STYLE if states.count(s))
        text.append(f"\n{counts}", style="dim")
        self.update(text)
