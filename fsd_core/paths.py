"""The user's data directory: runs, plans, deployments and local state live under it."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The user's data directory for fsd (runs, plans, local deployment state).

    `$FSD_HOME`, else `$XDG_DATA_HOME/fsd-inference` (~/.local/share/fsd-inference).
    """
    if os.environ.get("FSD_HOME"):
        return Path(os.environ["FSD_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "fsd-inference"
