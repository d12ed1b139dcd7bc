"""Progress on stderr for every wait a user sees: what the command is doing, and for how long.

On a terminal a :class:`Display` draws one transient line with rich (spinner, what is
happening, a bar when the amount of work is known, the time it has taken, the latest detail
such as Terraform's last resource line); it disappears when the command ends, so the output
stays the command's result. Without a terminal (pipes, CI) it prints nothing for short phases,
but the long ones (starting the emulator, Terraform) still print their lines, and notices
(`say`) are always printed: they are single lines a script's log should keep.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

#: The command that stops the local AWS emulator (named in the notice of a run that started it).
STOP_EMULATOR = "fsd local down"


class Display:
    """Phases, a layer bar, details and notices of one command, on stderr."""

    def __init__(self, live: bool | None = None) -> None:
        self.live = _isatty(sys.stderr) if live is None else live
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _progress(self) -> Any:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 BarColumn(bar_width=24), TextColumn("{task.fields[count]}"),
                                 TextColumn("{task.fields[detail]}", style="dim"),
                                 console=Console(stderr=True), transient=True,
                                 # Printed results stay on stdout: proxied above the live line
                                 # on a terminal, untouched when stdout is a file or a pipe.
                                 redirect_stdout=_isatty(sys.stdout))
            self._bar.start()
        return self._bar

    def phase(self, text: str, total: int | None = None) -> None:
        """A new wait begins (replacing the previous one); `total` units when known."""
        if not self.live:
            return
        bar = self._progress()
        if self._task is not None:
            bar.remove_task(self._task)
        self._task = bar.add_task(text, total=total, count="", detail="")

    def advance(self, completed: int, total: int, unit: str = "", text: str | None = None) -> None:
        """Progress within the phase: `completed` of `total` units."""
        if not self.live or self._task is None:
            return
        fields: dict[str, Any] = {"completed": max(0, completed), "total": total,
                                  "count": f"{max(0, completed)}/{total} {unit}".rstrip()}
        if text is not None:
            fields["description"] = text
        self._bar.update(self._task, **fields)

    def detail(self, line: str) -> None:
        """A line of a long phase (Terraform's output, the emulator's start): shown on the
        phase line on a terminal, printed (indented) otherwise."""
        line = line.strip()
        if not line:
            return
        if self.live:
            if self._task is None:
                self.phase("working")
            self._bar.update(self._task, detail=line[:100])
        else:
            self.say(f"  {line}")

    def say(self, line: str) -> None:
        """A notice that stays: one line on stderr (above the live line on a terminal)."""
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar, self._task = None, None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def emulator_running() -> bool:
    """Is the local AWS emulator of this FSD_HOME running?"""
    from ..aws.emulator import emulator_state

    return emulator_state() is not None


def emulator_notice(was_running: bool, running: bool) -> str | None:
    """The end-of-command line when the command started the local emulator, else None."""
    if was_running or not running:
        return None
    return (f"fsd: this command started the local AWS emulator; it keeps running for the next run "
            f"(stop it with `{STOP_EMULATOR}`)")


#: Terraform's per-resource lines: shown on a terminal's live line, left out of plain logs of a
#: run (`fsd local up` prints them all).
_RESOURCE_LINE = re.compile(r"^\S+: (Creating|Creation complete|Still creating|Modifying|Modifications complete|"
                            r"Still modifying|Destroying|Destruction complete|Still destroying)")


def local_deployment(workers: int, variant: str, display: Display) -> dict:
    """The deployment a cloud run without --manifest uses, showing what starting it takes.

    The configured deployment if any; else the local emulator's, started and provisioned by
    Terraform on demand (about a minute and a half the first time).
    """
    from ..aws.local_stack import deployment_for_run

    display.phase("local AWS deployment: checking")
    manifest = deployment_for_run(workers, variant, progress=local_progress(display, every_resource=False))
    return manifest.to_dict()


def local_progress(display: Display, every_resource: bool = True) -> Callable[[str], None]:
    """Progress lines of local_up/ensure_local_deployment onto the display."""

    def show(line: str) -> None:
        if line.startswith("starting the local AWS emulator"):
            display.phase("local AWS emulator: starting")
        elif line.startswith("terraform apply:"):
            display.phase("local AWS deployment: terraform apply (about 90 s the first time)")
        if display.live or every_resource or not _RESOURCE_LINE.match(line):
            display.detail(line)

    return show
