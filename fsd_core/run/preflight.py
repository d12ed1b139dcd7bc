"""Before a cloud run stages anything: can its deployment carry it? (`aws.doctor`)

A blocker (a missing queue, topic, bucket or function, too few worker slots or too little
concurrency, a function with less memory than a worker of this query needs (the cost model's
estimate, `worker_need_mb`), credentials the endpoint refuses) fails the run with the doctor's one line,
instead of a run that stages its shards and then stalls. A passing check is remembered per
deployment manifest and worker count for CACHE_S within the process: a second run on the same
deployment pays nothing. Measured at the emulator (8 slots): 0.35 s for the first check of a
process (most of it loading the botocore models the run's own clients need next), 0.07-0.14 s
for another manifest or P, nothing when remembered.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..aws.doctor import check
from ..aws.manifest import Manifest

#: Seconds a passing check stays valid for the same manifest and P in this process.
CACHE_S = 300.0
_passed: dict[tuple[str, int, bool, int | None], float] = {}
_lock = threading.Lock()

if TYPE_CHECKING:
    from ..cost.workload import Workload


def worker_need_mb(neurons: int, layers: int, batch: int, nnz: Sequence[float], workers: int) -> float:
    """MB one of `workers` workers needs for a query of `batch` inputs (the cost model's peak:
    its weight shard, its activations, the runtime), what the function's memory must cover."""
    from ..cost.model import Workload

    return workload_need_mb(Workload.build(neurons, layers, batch, list(nnz)), workers)


def workload_need_mb(workload: Workload, workers: int) -> float:
    """`worker_need_mb` of a cost-model Workload (a saved model's: `cost.recommend.workload_from_model`)."""
    from ..cost.model import load_params, memory_needed_mb

    return float(memory_needed_mb(workload, workers, load_params()[0]))


def check_deployment(manifest: dict[str, Any], workers: int, needs_function: bool = False,
                     memory_needed_mb: float | None = None) -> None:
    """InputError (one line) if the deployment has a blocker for a run on `workers` workers.

    `needs_function`: the run's workers are invocations of the deployment's function.
    `memory_needed_mb`: a worker's need, checked against the function's memory when the
    deployment has a function (local workers stand in for its invocations: as strict as AWS)."""
    need = None if memory_needed_mb is None else int(memory_needed_mb + 0.999)
    key = (json.dumps(manifest, sort_keys=True), workers, needs_function, need)
    with _lock:
        if time.monotonic() - _passed.get(key, float("-inf")) < CACHE_S:
            return
    m = Manifest.from_dict(manifest)
    report = check(m, workers, memory_needed_mb if (m.function_name or needs_function) else None)
    if needs_function and not m.function_name:
        report.add("function", "blocker", "the deployment has no worker function to invoke (no package was deployed)")
    report.raise_for_blockers("deployment")
    with _lock:
        _passed[key] = time.monotonic()


def forget() -> None:
    """Drop the remembered checks (tests; a deployment re-applied in this process)."""
    with _lock:
        _passed.clear()
