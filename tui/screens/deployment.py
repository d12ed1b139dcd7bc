"""Deployment: the manifest in use, the local emulator (start/stop) and the resources."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, RichLog

from .. import services
from ..widgets.emulator_panel import EmulatorPanel
from ..widgets.resource_table import ResourceTable
from .confirm import ConfirmScreen


class DeploymentScreen(Screen):
    """Status is read in a thread worker; start/stop run `fsd local up/down` in another."""

    TITLE = "Deployment"
    BINDINGS = [
        Binding("s", "start", "Start emulator"),
        Binding("x", "stop", "Stop emulator"),
        Binding("r", "refresh", "Refresh"),
    ]
    DEFAULT_CSS = """
    DeploymentScreen Label { text-style: bold; padding: 0 1; margin-top: 1; }
    DeploymentScreen ResourceTable { height: 1fr; min-height: 3; }
    DeploymentScreen RichLog { height: 6; border-top: hkey $foreground 30%; }
    """

    class StatusRead(Message):
        """A fresh DeploymentStatus."""

        def __init__(self, status: services.DeploymentStatus) -> None:
            super().__init__()
            self.status = status

    class LogLine(Message):
        """A line of output of a start/stop."""

        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    def compose(self) -> ComposeResult:
        yield Header()
        yield EmulatorPanel(id="emulator")
        yield Label("resources")
        yield ResourceTable(id="resources")
        yield RichLog(id="deploy-log", wrap=True, markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(EmulatorPanel).show(None)
        self.action_refresh()

    def action_refresh(self) -> None:
        self.read_status()

    @work(thread=True, exclusive=True, group="deployment-status", exit_on_error=False)
    def read_status(self) -> None:
        self.post_message(self.StatusRead(services.deployment_status()))

    def action_start(self) -> None:
        self.post_message(self.LogLine("starting the local emulator and provisioning it (fsd local up)…"))
        self.emulator(True)

    def action_stop(self) -> None:
        """Stop the emulator after a yes: everything in it goes (queues, bucket, deployed models)."""
        live = getattr(self.app, "live", None)
        in_flight = live is not None and not live.finished and live.snap is not None
        question = ("Stop the local emulator? Its queues, topics, bucket and the models deployed in it go with "
                    "it." + (f" Run {live.snap.run_id}, in flight, would fail." if in_flight else ""))

        def answered(yes: bool | None) -> None:
            if yes:
                self.emulator(False)

        self.app.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, exclusive=True, group="emulator", exit_on_error=False)
    def emulator(self, up: bool) -> None:
        """`fsd local up` or `fsd local down`, then a status refresh; errors go to the log."""
        from fsd_core.errors import FsdError

        try:
            if up:
                services.emulator_up(lambda line: self.post_message(self.LogLine(line)))
                self.post_message(self.LogLine("local deployment ready"))
            else:
                stopped = services.emulator_down()
                self.post_message(self.LogLine("local emulator stopped" if stopped else
                                               "local emulator was not running"))
        except (FsdError, OSError) as exc:
            self.post_message(self.LogLine(f"error: {exc}"))
        self.post_message(self.StatusRead(services.deployment_status()))

    @on(StatusRead)
    def _status(self, event: StatusRead) -> None:
        self.query_one(EmulatorPanel).show(event.status)
        self.query_one(ResourceTable).show(event.status)

    @on(LogLine)
    def _log(self, event: LogLine) -> None:
        self.query_one(RichLog).write(event.line)
