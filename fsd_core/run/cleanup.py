"""The manifest a cloud run uses, and the end-of-run clean-up of the cloud channels."""

from __future__ import annotations

from typing import Any

from ..aws.local_stack import deployment_for_run
from ..aws.manifest import Manifest


def resolve_manifest(manifest: dict[str, Any] | None, workers: int, variant: str) -> dict[str, Any]:
    """The manifest a cloud run uses: the given one, else the configured or local deployment."""
    if manifest is not None:
        m = Manifest.from_dict(manifest, "--manifest")
        m.require(workers, variant)
    else:
        m = deployment_for_run(workers, variant)
    return m.to_dict()


def cleanup_channel(variant: str, manifest: dict[str, Any], run_id: str, workers: int,
                    failed: bool = False, slots: list[int] | None = None) -> dict[str, int]:
    """Drain the run's queues (its leased `slots`; purged first after a failure) or delete its objects."""
    m = Manifest.from_dict(manifest)
    if variant == "queue":
        from ..channels.queue import drain_queues

        return drain_queues(m, workers, purge=failed, slots=slots)
    from ..channels.object import delete_run_objects

    return delete_run_objects(m, run_id)
