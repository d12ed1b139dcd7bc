"""The Recommend screen's inputs: model or size, worker range, batch, query rate, latency."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label

from ..services import RecommendInputs, default_model

DEBOUNCE_S = 0.3  # recompute this long after the last keystroke


class RecommendForm(VerticalScroll):
    """Labelled compact inputs; posts `Changed` (debounced) or `Invalid`."""

    DEFAULT_CSS = """
    RecommendForm { width: 30; padding: 0 1; border-right: vkey $foreground 30%; }
    RecommendForm Label { color: $text-muted; margin-top: 1; }
    RecommendForm Label.first { margin-top: 0; }
    RecommendForm Input { width: 1fr; }
    """

    class Changed(Message):
        """The inputs parse: recompute the recommendation."""

        def __init__(self, inputs: RecommendInputs) -> None:
            super().__init__()
            self.inputs = inputs

    class Invalid(Message):
        """The inputs do not parse; `reason` says which field and why."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    FIELDS = (
        ("model", "model directory (or blank)", ""),
        ("neurons", "neurons N (if no model)", ""),
        ("layers", "layers L (if no model)", ""),
        ("workers", "workers P or A-B", "2-64"),
        ("batch", "batch (inputs per query)", "64"),
        ("qph", "queries per hour", ""),
        ("latency", "latency target (s)", ""),
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        for i, (name, label, value) in enumerate(self.FIELDS):
            yield Label(label, classes="first" if i == 0 else "")
            yield Input(default_model() if name == "model" else value, id=f"rec-{name}", compact=True, select_on_focus=False, placeholder="-")

    def value(self, name: str) -> str:
        return self.query_one(f"#rec-{name}", Input).value.strip()

    def set_value(self, name: str, value: str) -> None:
        self.query_one(f"#rec-{name}", Input).value = value

    @on(Input.Changed)
    def _schedule(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, self.submit)

    def submit(self) -> None:
        """Parse the fields and post Changed or Invalid now."""
        try:
            inputs = self.parse()
        except ValueError as exc:
            self.post_message(self.Invalid(str(exc)))
        else:
            self.post_message(self.Changed(inputs))

    def parse(self) -> RecommendInputs:
        """The fields as RecommendInputs; ValueError names the bad field."""
        from fsd_core.cost.model import parse_workers
        from fsd_core.errors import InputError

        def number(name: str, kind: type, label: str) -> float | int | None:
            text = self.value(name)
            if not text:
                return None
            try:
                value = kind(text)
            except ValueError:
                raise ValueError(f"{label}: {text!r} is not a number") from None
            if value <= 0:
                raise ValueError(f"{label} must be positive")
            return value

        try:
            workers = parse_workers(self.value("workers") or "2-64")
        except InputError as exc:
            raise ValueError(str(exc).replace("--workers", "workers")) from None
        batch = number("batch", int, "batch")
        return RecommendInputs(
            model=self.value("model") or None, neurons=number("neurons", int, "neurons"),  # type: ignore[arg-type]
            layers=number("layers", int, "layers"), batch=batch or 64, workers=workers,  # type: ignore[arg-type]
            queries_per_hour=number("qph", float, "queries per hour"),
            latency_target=number("latency", float, "latency target"))
