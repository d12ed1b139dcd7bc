"""Where a run keeps its local files, so the coordinator that makes them and `fsd gc` that
reclaims what a dead one left agree on the places.

- `<scratch base>/fsd-runs/<run>/`: the run's progress files and, for a local run, its stage;
- `<scratch base>/fsd-local-channel/<run>/`: a local run's channel inboxes;
- `<data dir>/cancel/<run>`: the marker `fsd cancel` leaves before it signals the coordinator.

The scratch base is `$FSD_SCRATCH`, else /dev/shm (`channels.local.scratch_base`). Every
directory here is this user's only (0700).
"""

from __future__ import annotations

from pathlib import Path

from ..channels.local import default_root, scratch_base
from ..fileio import private_dir
from ..paths import data_dir


def runs_root() -> Path:
    """The directory of every run's scratch directory."""
    return scratch_base() / "fsd-runs"


def run_scratch(run_id: str) -> Path:
    """The run's scratch directory, created (and its root) 0700."""
    private_dir(runs_root())
    return private_dir(runs_root() / run_id)


def channel_dir(run_id: str) -> Path:
    """A local run's channel directory (not created: its workers make it)."""
    return default_root() / run_id


def cancel_dir() -> Path:
    return data_dir() / "cancel"


def cancel_marker(run_id: str) -> Path:
    """The file `fsd cancel` leaves before it signals the run's coordinator."""
    return cancel_dir() / run_id
