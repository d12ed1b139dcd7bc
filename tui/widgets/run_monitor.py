"""The live view of a run: layer progress, the worker grid, bytes/requests/dollars, a log."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, RichLog, Static

from fsd_core.units import si

from ..state import LiveRun, worker_states
from .worker_grid import WorkerGrid


class RunMonitor(Vertical):
    """Shows a LiveRun; `show()` is called again whenever the run changes."""

    DEFAULT_CSS = """
    RunMonitor #monitor-title { text-style: bold; padding: 0 1; }
    RunMonitor ProgressBar { padding: 0 1; }
    RunMonitor #monitor-figures { padding: 0 1; color: $text-muted; }
    RunMonitor RichLog { height: 1fr; min-height: 3; border-top: hkey $foreground 30%; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._logged = 0

    def compose(self) -> ComposeResult:
        yield Static("no run yet: launch one from the Launch screen (key 3)", id="monitor-title")
        yield ProgressBar(total=None, show_eta=False, id="monitor-layers")
        yield WorkerGrid(id="monitor-grid")
        yield Static("", id="monitor-figures")
        yield RichLog(id="monitor-log", wrap=True, markup=False)

    def show(self, live: LiveRun) -> None:
        """Render the run as it stands."""
        cfg, snap = live.config, live.snap
        phase = "failed" if live.error else (live.result.status if live.result else (snap.phase if snap else "starting"))
        run_id = live.result.run_id if live.result else (snap.run_id if snap else "…")
        workers = 1 if cfg.variant == "serial" else cfg.workers
        title = Text(f"run {run_id}  {cfg.variant}, {workers} worker(s), {cfg.partition or 'default'} "
                     f"partition  ")
        title.append(phase, style={"ok": "bold green", "failed": "bold red"}.get(phase, "bold yellow"))
        self.query_one("#monitor-title", Static).update(title)
        bar = self.query_one("#monitor-layers", ProgressBar)
        if snap is not None:
            bar.update(total=snap.layers, progress=max(0, snap.layers_done))
            self.query_one(WorkerGrid).show(worker_states(snap), snap.workers_done)
        elif live.result is not None:  # serial: no snapshots
            bar.update(total=1, progress=1)
            self.query_one(WorkerGrid).show(["done" if live.result.status == "ok" else "failed"])
        fig = live.so_far()
        dollars = f"${fig['cost_usd']:.6f}" if fig["cost_usd"] is not None else "$ n/a (not priced)"
        scope = "total" if live.finished else "so far (reported workers)"
        self.query_one("#monitor-figures", Static).update(
            f"{scope}: {si(fig['bytes_sent'], 'B')} sent, {fig['messages']:,} messages, "
            f"{fig['requests']:,} requests, {dollars}")
        log = self.query_one(RichLog)
        for line in live.log[self._logged:]:
            log.write(line)
        self._logged = len(live.log)

    def reset(self) -> None:
        """Forget the previous run's log (a new run starts)."""
        self.query_one(RichLog).clear()
        self._logged = 0
