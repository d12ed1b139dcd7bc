"""Launch: model, inputs, variant and workers (from the recommendation for this model), partitioner, checks."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header

from ..services import Recommendation
from ..widgets.launch_form import LaunchForm


class LaunchScreen(Screen):
    """The form posts LaunchForm.Submitted; the app starts the run in a thread worker."""

    TITLE = "Launch"
    BINDINGS = [Binding("ctrl+r", "launch", "Launch run")]

    def __init__(self, runs_db: str | None = None) -> None:
        super().__init__()
        self.runs_db = runs_db

    def compose(self) -> ComposeResult:
        yield Header()
        yield LaunchForm(runs_db=self.runs_db)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "recommendation", self._recommended, init=True)

    def _recommended(self, rec: Recommendation | None) -> None:
        self.query_one(LaunchForm).recommend(rec)

    def action_launch(self) -> None:
        self.query_one(LaunchForm).submit()
