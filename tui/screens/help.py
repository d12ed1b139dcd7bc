"""The help screen: every key, per screen, on one page (it fits 80x24)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

CLOSE = "esc, q or ? closes"

#: (keys, where, what they do)
KEYS = (
    ("1 2 3 4", "anywhere", "Deployment, Recommend, Launch, Runs"),
    ("ctrl+p", "anywhere", "palette: screens, theme, keys, screenshot"),
    ("t  ?  q", "anywhere", "light/dark theme, this help, quit"),
    ("esc", "in a field", "leave it (then the one-letter keys work)"),
    ("tab  shift+tab", "anywhere", "next / previous field or table"),
    ("s  x  r", "Deployment", "start, stop the emulator; refresh"),
    ("typing  ctrl+r", "Recommend", "results follow the inputs; recompute"),
    ("enter  ctrl+r", "Launch", "launch the run (in the background)"),
    ("l  h  d  c", "Runs", "live, history, detail, compare"),
    ("enter  m", "Runs history", "open a run; mark it (A, then B)"),
    ("w  x", "Runs live", "time chart: next worker, then the mean; cancel the run (asks first)"),
    ("r", "Runs", "reload the history"),
)

STATES = ("launching (no layer done yet), computing, waiting (ahead of a peer, or gathering), "
          "done, failed")


def help_text() -> Table:
    """The keys as a borderless table, then the worker states of the live grid."""
    table = Table(box=None, show_header=True, header_style="bold", expand=True, padding=(0, 1))
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("where", style="dim", no_wrap=True)
    table.add_column("does", ratio=1)
    for keys, where, does in KEYS:
        table.add_row(keys, where, does)
    table.add_row("", "", "")
    table.add_row("", "worker states", Text(STATES))
    return table


class HelpScreen(ModalScreen[None]):
    """The keys over the current screen; esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", show=True)]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 94%; max-width: 100; height: auto; max-height: 90%;
                                  border: round $primary; border-title-style: bold;
                                  border-subtitle-color: $text-muted; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "fsd tui — keys"
            body.border_subtitle = CLOSE
            yield Static(help_text())
