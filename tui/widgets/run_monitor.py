"""The live view of a run: layer progress, the worker grid, the figures so far, per-layer charts, a log."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, RichLog, Static

from ..format import count, seconds, si, usd
from ..state import Figure, LiveRun
from .layer_charts import LayerCharts
from .worker_grid import WorkerGrid

PHASE_STYLE = {"ok": "bold green", "failed": "bold red"}


def figures_line(live: LiveRun) -> Text:
    """Bytes, messages, requests and dollars, each as far as it is known; then the checks."""
    f = live.figures()
    sent, messages, requests = f["bytes_sent"], f["messages"], f["requests"]
    text = Text()
    if live.finished or live.serial:
        scope = "total" if sent.complete or live.serial else f"total of the {sent.known} of {sent.total} workers that reported"
        text.append(f"{scope}: ")
        text.append(f"{_value(sent, 'B')} sent, {_value(messages)} messages, {_value(requests)} requests, ")
        text.append(f"{usd(f['cost_usd'].value) if f['cost_usd'].value is not None else '$ n/a (not priced)'}"
                    if live.finished else "$ at the end")
    elif sent.value is None:
        text.append(f"so far: bytes, messages, requests unknown (0 of {sent.total} workers reported)")
    else:
        text.append(f"so far, {sent.known} of {sent.total} workers: {_value(sent, 'B')} sent, "
                    f"{_value(messages)} msgs, {_value(requests)} requests; others unknown")
    result = live.result
    if result is not None and result.verified is not None:
        text.append("  verified ✔" if result.verified else "  verified ✖ (differs)",
                    style="bold green" if result.verified else "bold red")
    if live.truth is not None:
        passed, what = live.truth
        text.append(f"  truth {'PASSED' if passed else 'FAILED'} ({what})", style="bold green" if passed else "bold red")
    return text


def _value(figure: Figure, unit: str = "") -> str:
    if figure.value is None:
        return "unknown"
    return si(figure.value, unit) if unit else count(figure.value)


class RunMonitor(Vertical):
    """Shows a LiveRun; `show()` is called again whenever the run changes (and each second
    while it runs, for the elapsed time)."""

    DEFAULT_CSS = """
    RunMonitor #monitor-title { text-style: bold; padding: 0 1; }
    RunMonitor ProgressBar { padding: 0 1; }
    RunMonitor #monitor-figures { padding: 0 1; color: $text-muted; }
    RunMonitor LayerCharts { height: 1fr; min-height: 8; }
    RunMonitor RichLog { height: 5; border-top: hkey $foreground 30%; }
    RunMonitor.-short RichLog { height: 3; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._logged = 0
        self._live: LiveRun | None = None
        self._charted: tuple | None = None
        self.chart_worker: int | None = None  # the worker the time chart shows (None: their mean)

    def compose(self) -> ComposeResult:
        yield Static("no run yet: launch one from the Launch screen (key 3)", id="monitor-title")
        yield ProgressBar(total=100, show_eta=False, id="monitor-layers")
        yield WorkerGrid(id="monitor-grid")
        yield Static("", id="monitor-figures")
        yield LayerCharts(id="monitor-charts")
        yield RichLog(id="monitor-log", wrap=True, markup=False)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def on_resize(self) -> None:
        self.set_class(self.size.height < 24, "-short")  # an 80x24 terminal: the charts need the rows

    def _tick(self) -> None:
        if self._live is not None and not self._live.finished:
            self._title(self._live)

    def show(self, live: LiveRun) -> None:
        """Render the run as it stands."""
        self._live = live
        self._title(live)
        bar = self.query_one("#monitor-layers", ProgressBar)
        progress = live.progress()
        if progress is not None and not (live.serial and not live.finished):
            bar.update(total=max(progress[1], 1), progress=progress[0])
        elif progress is not None:  # serial: one call computes every layer, no progress until it returns
            bar.update(total=None)
        else:
            bar.update(total=100, progress=0)
        states, done = live.workers_view()
        grid = self.query_one(WorkerGrid)
        if states:
            grid.show(states, done)
        else:
            grid.message("no worker started" if live.finished else f"{live.phase}: no worker started yet")
        self.query_one("#monitor-figures", Static).update(figures_line(live))
        self._chart(live)
        log = self.query_one(RichLog)
        for line in live.log[self._logged:]:
            log.write(line)
        self._logged = len(live.log)

    def _title(self, live: LiveRun) -> None:
        cfg, result = live.config, live.result
        partition = (result.partition if result is not None else None) or cfg.partition or "default"
        title = Text(f"run {live.run_id or '…'}  {cfg.variant}, {live.workers} worker(s), {partition} partition  ")
        title.append(live.phase, style=PHASE_STYLE.get(live.phase, "bold yellow"))
        if result is not None:
            title.append(f"  {seconds(result.seconds)}", style="not bold")
        else:
            title.append(f"  {live.elapsed():.1f} s", style="not bold")
        self.query_one("#monitor-title", Static).update(title)

    def _chart(self, live: LiveRun) -> None:
        rows = live.layer_rows()
        key = (id(live), len(rows), len(live.trace), live.record is not None, self.chart_worker, live.workers)
        if key == self._charted:
            return
        self._charted = key
        self.query_one(LayerCharts).show(rows, live.workers, live.trace, self.chart_worker,
                                         live.snap.layers if live.snap else None)

    def cycle_worker(self) -> str:
        """Show the next worker's time per layer (after the last: their mean); says which."""
        P = self._live.workers if self._live is not None else 0
        if P <= 1:
            self.chart_worker = None
        elif self.chart_worker is None:
            self.chart_worker = 0
        else:
            self.chart_worker = self.chart_worker + 1 if self.chart_worker + 1 < P else None
        if self._live is not None:
            self._chart(self._live)
        return "every worker's mean" if self.chart_worker is None else f"worker #{self.chart_worker}"

    def reset(self) -> None:
        """Forget the previous run: its log, grid, bar, figures and charts (a new run starts)."""
        self.query_one(RichLog).clear()
        self._logged = 0
        self._live, self._charted, self.chart_worker = None, None, None
        self.query_one(WorkerGrid).message("")
        self.query_one("#monitor-layers", ProgressBar).update(total=100, progress=0)
        self.query_one("#monitor-figures", Static).update("")
        self.query_one(LayerCharts).clear()
