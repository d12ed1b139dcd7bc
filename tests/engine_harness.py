"""Run a plan's workers in threads of this process over the local channel (no processes).

Used by the property tests of the engine: the same run_worker code as the deployed handler,
without process start-up, so many shapes and seeds are affordable.
"""

from __future__ import annotations

import tempfile

from fsd_core.channels.local import LocalChannel
from fsd_core.engine.worker import run_in_threads
from fsd_core.plan.communication import make_plan


class ToldChannel(LocalChannel):
    """A local channel whose `arrived` answers as told: False makes workers build every
    interior block before they wait, True none (the real answer lies in between)."""

    def __init__(self, run_id: str, worker: int, root, arrived: bool) -> None:
        super().__init__(run_id, worker, root)
        self.answer = arrived

    def arrived(self, layer, senders) -> bool:
        return self.answer


def run_threads(model, inputs, workers: int, method: str = "block", per_layer: bool = False, seed: int = 0,
                arrived: bool | None = None):
    """`arrived`: None for the local channel as it is, else a `ToldChannel`."""
    plan = make_plan(model, workers, method, per_layer=per_layer, seed=seed)
    with tempfile.TemporaryDirectory() as root:
        if arrived is None:
            return run_in_threads(plan.shards(model), inputs, lambda p: LocalChannel("harness", p, root), timeout=30)
        return run_in_threads(plan.shards(model), inputs, lambda p: ToldChannel("harness", p, root, arrived),
                              timeout=30)
