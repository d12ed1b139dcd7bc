"""Run a plan's workers in threads of this process over the local channel (no processes).

Used by the property tests of the engine: the same run_worker code as the deployed handler,
without process start-up, so many shapes and seeds are affordable.
"""

from __future__ import annotations

import tempfile
import threading

from fsd_core.channels.local import LocalChannel
from fsd_core.plan import make_plan
from fsd_core.worker import run_worker


def run_threads(model, inputs, workers: int, method: str = "block", per_layer: bool = False, seed: int = 0):
    plan = make_plan(model, workers, method, per_layer=per_layer, seed=seed)
    y0 = inputs.tocsc()
    outcomes, errors = {}, []
    with tempfile.TemporaryDirectory() as root:
        def work(p: int) -> None:
            try:
                shard = plan.shard(model, p)
                channel = LocalChannel("harness", p, root)
                try:
                    outcomes[p] = run_worker(shard, y0[:, shard.input_cols].tocsr(), channel, timeout=30)
                finally:
                    channel.close()
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(p,)) for p in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return outcomes
