"""Per-layer charts of a run: time per layer (compute and wait) and bytes sent per layer.

They read per-(worker, layer) rows shaped as the run store's `run_layers` (compute_s,
wait_s, bytes_sent, ...): the reports received so far during a run, the store's rows after it.
Before any worker reported, the time chart shows what is known instead: each worker's last
finished layer against the seconds since launch (the progress files), and the bytes chart
says the bytes are not known yet.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual_plotext import PlotextPlot

from ..format import scale

#: Most workers drawn as lines of their own (more: their total, or min and max).
MAX_LINES = 6


class LayerCharts(Horizontal):
    """Two plots side by side; `show()` redraws both."""

    DEFAULT_CSS = """
    LayerCharts { height: 1fr; min-height: 8; }
    LayerCharts PlotextPlot { width: 1fr; height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="chart-time")
        yield PlotextPlot(id="chart-bytes")

    def show(self, rows: list[dict[str, Any]], workers: int, trace: list[tuple[float, list[int]]] | None = None,
             worker: int | None = None, layers: int | None = None) -> None:
        """Redraw from layer rows of `workers` workers (`worker`: one worker's time, else the mean)
        of a model of `layers` layers (its rows may add the gather, layer L+1)."""
        reported = sorted({r["worker"] for r in rows})
        time_plot, bytes_plot = self.query_one("#chart-time", PlotextPlot), self.query_one("#chart-bytes", PlotextPlot)
        if rows:
            _time_per_layer(time_plot, rows, reported, worker, layers)
        else:
            _progress_trace(time_plot, trace or [], workers)
        _bytes_per_layer(bytes_plot, rows, reported, workers, layers)

    def clear(self) -> None:
        """Empty plots (no run yet)."""
        for plot in self.query(PlotextPlot):
            _reset(plot, "")


def _reset(plot: PlotextPlot, title: str) -> Any:
    plt = plot.plt
    plt.clear_data()
    plt.clear_figure()
    plt.title(title)
    plot.refresh()
    return plt


def _by_layer(rows: list[dict[str, Any]], key: str, worker: int | None) -> tuple[list[int], list[float]]:
    """(layers, mean of `key` over the workers' rows, or worker `worker`'s value)."""
    sums: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        if worker is None or r["worker"] == worker:
            sums[r["layer"]].append(float(r.get(key) or 0.0))
    layers = sorted(sums)
    return layers, [sum(sums[l]) / len(sums[l]) for l in layers]


def _time_per_layer(plot: PlotextPlot, rows: list[dict[str, Any]], reported: list[int], worker: int | None,
                    last: int | None) -> None:
    if worker is not None and worker not in reported:
        worker = None
    layers, compute = _by_layer(rows, "compute_s", worker)
    _, wait = _by_layer(rows, "wait_s", worker)
    factor, prefix = scale([c + w for c, w in zip(compute, wait)])
    who = f"worker #{worker}" if worker is not None else (
        f"mean of {len(reported)}" if len(reported) > 1 else f"worker #{reported[0]}")
    plt = _reset(plot, f"{prefix}s per layer, {who}")
    plt.stacked_bar(layers, [[c / factor for c in compute], [w / factor for w in wait]],
                    labels=["compute", "wait"], color=["blue", "orange"])
    _layer_axis(plt, layers, last)


def _progress_trace(plot: PlotextPlot, trace: list[tuple[float, list[int]]], workers: int) -> None:
    points = [(t, done) for t, done in trace if done and max(done) >= 0]
    plt = _reset(plot, "layers done" if points else "layers done: none yet")
    if not points:
        return
    times = [t for t, _ in points]
    if workers <= MAX_LINES:
        lines = {f"#{p}": [max(done[p], 0) for _, done in points] for p in range(workers)}
    else:
        lines = {"slowest": [max(min(done), 0) for _, done in points], "fastest": [max(done) for _, done in points]}
    for label, values in lines.items():
        plt.plot(times, values, label=label, marker="braille")
    top, end = max(max(v) for v in lines.values()), max(times)
    plt.ylim(0, max(top, 1))
    plt.yticks(*_ticks(0, max(top, 1), whole=True))
    plt.xlim(0, end)
    plt.xticks(*_ticks(0, end))
    plt.xlabel("seconds since launch")


def _bytes_per_layer(plot: PlotextPlot, rows: list[dict[str, Any]], reported: list[int], workers: int,
                     last: int | None) -> None:
    if not rows:
        _reset(plot, "bytes per layer: none reported")
        return
    per: dict[int, dict[int, float]] = defaultdict(dict)
    for r in rows:
        per[r["worker"]][r["layer"]] = float(r.get("bytes_sent") or 0)
    layers = sorted({r["layer"] for r in rows})
    factor, prefix = scale(v for w in per.values() for v in w.values())
    of = f"{len(reported)} of {workers}" if len(reported) < workers else f"{workers} workers"
    if len(reported) <= MAX_LINES:
        plt = _reset(plot, f"{prefix}B sent per layer, {of}")
        for p in reported:
            plt.plot(layers, [per[p].get(l, 0.0) / factor for l in layers], label=f"#{p}", marker="braille")
    else:
        totals = [sum(per[p].get(l, 0.0) for p in reported) for l in layers]
        factor, prefix = scale(totals)
        plt = _reset(plot, f"{prefix}B sent per layer, sum of {of}")
        plt.bar(layers, [t / factor for t in totals], color="blue")
    _layer_axis(plt, layers, last)


def _layer_axis(plt: Any, layers: list[int], last: int | None) -> None:
    """Whole layer numbers on the x axis, first and last included; the gather named when there."""
    plt.xticks(*_ticks(min(layers), max(layers), whole=True))
    plt.xlabel(f"layer ({last + 1}: gather)" if last and max(layers) > last else "layer")


def _ticks(lo: float, hi: float, n: int = 5, whole: bool = False) -> tuple[list[float], list[str]]:
    """About `n` evenly spaced ticks from `lo` to `hi`, labelled with 3 significant digits."""
    if hi <= lo:
        return [lo], [f"{lo:.3g}"]
    if whole:
        step = max(1, math.ceil((hi - lo) / (n - 1)))
        values = [float(v) for v in range(int(lo), int(hi), step)]
        values = [v for v in values if hi - v >= step / 2 or v == lo] + [float(hi)]  # no two crowd the end
    else:
        values = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    return values, [f"{v:.3g}" for v in values]
