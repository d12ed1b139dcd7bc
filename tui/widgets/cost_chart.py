"""Cost per query against worker count for the queue and object variants (plotext)."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from ..format import scale


class CostChart(PlotextPlot):
    """A line per variant, in dollars per query with an SI prefix (µ$, m$); the cross-over in the title."""

    DEFAULT_CSS = """
    CostChart { height: 1fr; min-height: 10; }
    """

    def show(self, curve: dict[str, list[tuple[int, float]]], crossover: int | None) -> None:
        """Redraw from {variant: [(workers, usd), ...]} (empty: no chart)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        lines = {v: curve.get(v) or [] for v in ("queue", "object")}
        if not any(lines.values()):
            plt.title("cost per query: no recommendation")
            self.refresh()
            return
        factor, prefix = scale(c for points in lines.values() for _, c in points)
        for variant, points in lines.items():
            if points:
                plt.plot([p for p, _ in points], [c / factor for _, c in points], label=variant, marker="braille")
        plt.xlabel("workers")
        plt.ylabel(f"{prefix}$/query")
        plt.title(f"cost per query (queue/object cross-over at {crossover} workers)" if crossover
                  else "cost per query vs workers")
        self.refresh()
