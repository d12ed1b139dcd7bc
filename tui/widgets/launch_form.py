"""The Launch screen's form: model, inputs, variant and workers (from the recommendation made
for this model), partitioner, and the checks of `fsd run` (verify, truth file)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from fsd_core.run.coordinator import VARIANTS, RunConfig

from fsd_core.errors import FsdError

from ..services import (
    Recommendation,
    default_inputs,
    default_model,
    deployed_workers,
    described,
    same_model,
)

PARTITIONERS = ("block", "random", "metis", "hypergraph")
DEFAULT_PARTITION = "default"  # the plan's own default


class LaunchForm(VerticalScroll):
    """Posts `Submitted` with a RunConfig when the operator launches (Enter or the button).

    A recommendation fills the variant and workers only when it was made for the model in the
    form, and only until the operator sets either field: a value typed or chosen is theirs.
    """

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
        """Start this run; `truth`: a categories file to check its result against."""

        def __init__(self, config: RunConfig, truth: str | None = None) -> None:
            super().__init__()
            self.config, self.truth = config, truth

    def __init__(self, runs_db: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs_db = runs_db
        self._rec: Recommendation | None = None
        # Values the form set whose Changed message has not come yet (the first: the mount's own).
        self._ours: dict[str, Counter[str]] = {"variant": Counter(["local"]), "workers": Counter(["2"])}
        self._operator: set[str] = set()  # fields the operator set: never filled again

    def compose(self) -> ComposeResult:
        with Grid():
            yield Label("model directory")
            yield Input(default_model(), id="launch-model", compact=True, select_on_focus=False)
            yield Label("or a deployed model (name)")
            yield Input("", id="launch-deployed", compact=True, select_on_focus=False,
                        placeholder="optional: stages only the inputs (fsd model deployed)")
            yield Label("inputs (Graph Challenge TSV)")
            yield Input(default_inputs(), id="launch-inputs", compact=True, select_on_focus=False)
            yield Label("variant")
            yield Select([(v, v) for v in VARIANTS], value="local", allow_blank=False, id="launch-variant",
                         compact=True)
            yield Label("workers")
            yield Input("2", id="launch-workers", compact=True, type="integer", select_on_focus=False)
            yield Label("partitioner")
            yield Select([("plan default", DEFAULT_PARTITION)] + [(p, p) for p in PARTITIONERS],
                         value=DEFAULT_PARTITION, allow_blank=False, id="launch-partition", compact=True)
            yield Label("verify")
            yield Checkbox("equal to the serial kernel (--verify)", id="launch-verify", compact=True)
            yield Label("truth file (categories)")
            yield Input("", id="launch-truth", compact=True, select_on_focus=False,
                        placeholder="optional: a categories file (--check)")
        yield Static("no recommendation yet (Recommend screen, key 2)", id="launch-hint")
        yield Static("", id="launch-error")
        with Horizontal(id="launch-buttons"):
            yield Button("Launch run", id="launch-go", variant="primary", compact=True)

    # ------------------------------------------------------------------ the recommendation
    def recommend(self, rec: Recommendation | None) -> None:
        """Take the current recommendation (None: there is none for the current inputs)."""
        self._rec = rec
        self._apply()

    def _apply(self) -> None:
        """Show the recommendation; fill the fields the operator left alone if it is for this model."""
        hint = self.query_one("#launch-hint", Static)
        rec = self._rec
        if rec is None:
            hint.update("no recommendation for the current inputs (Recommend screen, key 2)")
            return
        model = self.query_one("#launch-model", Input).value.strip()
        if not same_model(rec.inputs.model, model):
            hint.update(f"the recommendation is for {described(rec.inputs)}, not for this model: "
                        f"recommend {model or 'a model'} on the Recommend screen (key 2)")
            return
        doc = rec.doc
        best, workers = doc.get("recommended"), doc.get("workers")
        if not best:
            hint.update(f"no feasible variant for {described(rec.inputs)}: {doc.get('reason')}")
            return
        hint.update(f"recommended for {described(rec.inputs)}: {best} with {workers} worker(s) -- "
                    f"{doc.get('reason')}")
        if "variant" not in self._operator:
            self._fill("variant", best)
        if "workers" not in self._operator and best != "serial" and workers:
            self._fill("workers", str(workers))

    def _fill(self, name: str, value: str) -> None:
        widget: Any = self.query_one(f"#launch-{name}")
        if widget.value != value:  # (an unchanged value posts no Changed)
            self._ours[name][value] += 1
            widget.value = value

    @on(Select.Changed, "#launch-variant")
    @on(Input.Changed, "#launch-workers")
    def _set_by_operator(self, event: Select.Changed | Input.Changed) -> None:
        """A value the form did not set itself is the operator's."""
        name, value = str(event.control.id).removeprefix("launch-"), str(event.value)
        if self._ours[name][value] > 0:
            self._ours[name][value] -= 1
        else:
            self._operator.add(name)

    @on(Input.Changed, "#launch-model")
    def _model_changed(self) -> None:
        self._apply()

    # ------------------------------------------------------------------ launch
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
        truth = self.query_one("#launch-truth", Input).value.strip() or None
        if truth is not None and not Path(truth).expanduser().is_file():
            error.update(f"truth file: {truth} is not a file")
            return
        deployed = self.query_one("#launch-deployed", Input).value.strip() or None
        if deployed is not None:
            try:
                workers = deployed_workers(deployed)
            except FsdError as exc:
                error.update(str(exc))
                return
        error.update("")
        partition = self.query_one("#launch-partition", Select).value
        self.post_message(self.Submitted(RunConfig(
            model_path=None if deployed else self.query_one("#launch-model", Input).value.strip(),
            deployed=deployed,
            inputs_path=self.query_one("#launch-inputs", Input).value.strip(),
            variant=str(self.query_one("#launch-variant", Select).value), workers=workers,
            partition=None if partition == DEFAULT_PARTITION or deployed else str(partition),
            verify=self.query_one("#launch-verify", Checkbox).value, runs_db=self.runs_db),
            str(Path(truth).expanduser()) if truth else None))

    def show_error(self, message: str) -> None:
        self.query_one("#launch-error", Static).update(message)
