"""Cost per query against worker count for the queue and object variants (plotext)."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class CostChart(PlotextPlot):
    """A line per variant, in micro-dollars per query; the cross-over in the title."""

    DEFAULT_CSS = """
    CostChart { height: 1fr; min-height: 8; }
    """

    def show(self, curve: dict[str, list[tuple[int, float]]], crossover: int | None) -> None:
        """Redraw from {variant: [(workers, usd), ...]}."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for variant, marker in (("queue", "braille"), ("object", "braille")):
            points = curve.get(variant) or []
            if points:
                plt.plot([p for p, _ in points], [c * 1e6 for _, c in points], label=variant, marker=marker)
        plt.xlabel("workers")
        plt.ylabel("µ$/query")
        plt.title(f"cost per query (queue/object cross-over at {crossover} workers)" if crossover
                  else "cost per query vs workers")
        self.refresh()
