"""Is a process running? (Linux /proc; a zombie counts as dead: it has exited, unreaped.)"""

from __future__ import annotations

from pathlib import Path


def process_running(pid: int) -> bool:
    """True if process `pid` exists and has not exited (not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
