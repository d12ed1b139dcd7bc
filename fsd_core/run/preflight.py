"""Before a cloud run stages anything: can its deployment carry it? (`aws.doctor`)

A blocker (a missing queue, topic, bucket or function, too few worker slots or too little
concurrency, credentials the endpoint refuses) fails the run with the doctor's one line,
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
from typing import Any

from ..aws.doctor import check
from ..aws.manifest import Manifest

#: Seconds a passing check stays valid for the same manifest and P in this process.
CACHE_S = 300.0
_passed: dict[tuple[str, int, bool], float] = {}
_lock = threading.Lock()


def check_deployment(manifest: dict[str, Any], workers: int, needs_function: bool = False) -> None:
    """InputError (one line) if the deployment has a blocker for a run on `workers` workers.

    `needs_function`: the run's workers are invocations of the deployment's function."""
    key = (json.dumps(manifest, sort_keys=True), workers, needs_function)
    with _lock:
        if time.monotonic() - _passed.get(key, float("-inf")) < CACHE_S:
            return
    m = Manifest.from_dict(manifest)
    report = check(m, workers)
    if needs_function and not m.function_name:
        report.add("function", "blocker", "the deployment has no worker function to invoke (no package was deployed)")
    report.raise_for_blockers("deployment")
    with _lock:
        _passed[key] = time.monotonic()


def forget() -> None:
    """Drop the remembered checks (tests; a deployment re-applied in this process)."""
    with _lock:
        _passed.clear()
