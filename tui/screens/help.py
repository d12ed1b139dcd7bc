"""The help screen: every key, per screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# fsd tui — keys

| key | where | does |
|---|---|---|
| `1` `2` `3` `4` | anywhere | Deployment, Recommend, Launch, Runs |
| `ctrl+p` | anywhere | command palette (screens, theme, help, quit) |
| `t` | anywhere | light / dark theme |
| `?` | anywhere | this help |
| `esc` | in a field | leave the field (then the keys above work) |
| `tab` / `shift+tab` | anywhere | next / previous field or table |
| `q` | anywhere | quit |
| `s` / `x` / `r` | Deployment | start / stop the local emulator, refresh |
| typing | Recommend | the table and chart follow the inputs |
| `enter` / `ctrl+r` | Launch | launch the run (it runs in the background) |
| `l` `h` `d` `c` | Runs | live view, history, detail, compare |
| `enter` / `m` | Runs history | open a run / mark it for comparison (A, B) |
| `r` | Runs | reload the history |

Worker states in the live grid: **launching** (no layer finished yet), **computing**,
**waiting** (ahead of a peer, or gathering after the last layer), **done**, **failed**.
"""


class HelpScreen(ModalScreen[None]):
    """Markdown over the current screen; any of esc, q, ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", show=True)]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 96; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
