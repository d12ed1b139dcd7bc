"""The Launch screen's form: model, inputs, variant (from the recommendation), workers, partitioner."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from fsd_core.run.coordinator import VARIANTS, RunConfig

from ..services import default_inputs, default_model

PARTITIONERS = ("block", "random", "metis", "hypergraph")
DEFAULT_PARTITION = "default"  # the plan's own default


class LaunchForm(VerticalScroll):
    """Posts `Submitted` with a RunConfig when the operator launches (Enter or the button)."""

    DEFAULT_CSS = """
    LaunchForm { padding: 1 1 0 1; }
    LaunchForm Grid { grid-size: 2; grid-columns: 30 1fr; grid-rows: 1; grid-gutter: 1 0; height: auto; }
    LaunchForm Label { color: $text-muted; }
    LaunchForm Input, LaunchForm Select { width: 1fr; max-width: 90; }
    LaunchForm #launch-hint { margin-top: 1; color: $text-accent; height: auto; }
    LaunchForm #launch-error { color: $text-error; height: auto; }
    LaunchForm #launch-buttons { height: auto; margin-top: 1; }
    """

    class Submitted(Message):
        """Start this run."""

        def __init__(self, config: RunConfig) -> None:
            super().__init__()
            self.config = config

    def __init__(self, runs_db: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs_db = runs_db
        self._expected: str | None = "local"  # a value we set ourselves: not the operator's choice
        self._overridden = False

    def compose(self) -> ComposeResult:
        with Grid():
            yield Label("model directory")
            yield Input(default_model(), id="launch-model", compact=True)
            yield Label("inputs (Graph Challenge TSV)")
            yield Input(default_inputs(), id="launch-inputs", compact=True)
            yield Label("variant")
            yield Select([(v, v) for v in VARIANTS], value="local", allow_blank=False, id="launch-variant",
                         compact=True)
            yield Label("workers")
            yield Input("2", id="launch-workers", compact=True, type="integer")
            yield Label("partitioner")
            yield Select([("plan default", DEFAULT_PARTITION)] + [(p, p) for p in PARTITIONERS],
                         value=DEFAULT_PARTITION, allow_blank=False, id="launch-partition", compact=True)
        yield Static("no recommendation yet (Recommend screen, key 2)", id="launch-hint")
        yield Static("", id="launch-error")
        with Horizontal(id="launch-buttons"):
            yield Button("Launch run", id="launch-go", variant="primary", compact=True)

    def recommend(self, doc: dict[str, Any] | None) -> None:
        """Pre-select the recommended variant and workers unless the operator chose a variant."""
        if not doc:
            return
        best, workers = doc.get("recommended"), doc.get("workers")
        hint = self.query_one("#launch-hint", Static)
        if not best:
            hint.update(f"no feasible variant: {doc.get('reason')}")
            return
        hint.update(f"recommended: {best} with {workers} worker(s) -- {doc.get('reason')}")
        if not self._overridden:
            self._expected = best
            self.query_one("#launch-variant", Select).value = best
            if best != "serial" and workers:
                self.query_one("#launch-workers", Input).value = str(workers)

    @on(Select.Changed, "#launch-variant")
    def _variant_chosen(self, event: Select.Changed) -> None:
        if event.value == self._expected:
            self._expected = None
        else:
            self._overridden = True

    @on(Button.Pressed, "#launch-go")
    @on(Input.Submitted)
    def submit(self) -> None:
        """Validate the form and post Submitted (errors show under the form)."""
        error = self.query_one("#launch-error", Static)
        text = self.query_one("#launch-workers", Input).value.strip()
        try:
            workers = int(text)
        except ValueError:
            error.update(f"workers: {text!r} is not a whole number")
            return
        error.update("")
        partition = self.query_one("#launch-partition", Select).value
        self.post_message(self.Submitted(RunConfig(
            model_path=self.query_one("#launch-model", Input).value.strip(),
            inputs_path=self.query_one("#launch-inputs", Input).value.strip(),
            variant=str(self.query_one("#launch-variant", Select).value), workers=workers,
            partition=None if partition == DEFAULT_PARTITION else str(partition), runs_db=self.runs_db)))

    def show_error(self, message: str) -> None:
        self.query_one("#launch-error", Static).update(message)
