"""Channel registry: `open_channel("local"|"queue"|"object"|"recorder", ...)` imports the
backend lazily, so `worker.py` (and anything else that only sees a Channel) never imports
boto3. `recorder` is the in-process channel request predictions run over (`recorder.py`)."""

from __future__ import annotations

from typing import Any

from ..registry import load
from .base import Channel

_BACKENDS = {
    "local": "fsd_core.channels.local:LocalChannel",
    "queue": "fsd_core.channels.queue:QueueChannel",
    "object": "fsd_core.channels.object:ObjectChannel",
    "recorder": "fsd_core.channels.recorder:RecorderChannel",
}


def open_channel(kind: str, run_id: str, worker: int, config: dict[str, Any]) -> Channel:
    """Open worker `worker`'s end of the run's channel of type `kind` from its event config."""
    return load(_BACKENDS, kind, "channel").from_config(run_id, worker, config)


__all__ = ["Channel", "open_channel"]
