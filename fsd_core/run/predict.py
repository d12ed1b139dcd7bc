"""Exact request predictions for a concrete run, before it runs.

For a model, a plan and a batch, the frames every sender will send are fully determined:
what a worker sends depends only on its shard and the data (its distinct rows, row maps and
labels; never on timing or arrival order), and the wire encoding is deterministic. So the
prediction runs the workers themselves, in threads of this process, over the `recorder`
channel (`channels/recorder.py`), which frames every message exactly as `variant`'s channel
does (its frame limit, the object channel's zero-length empty blocks) and records the frame
sizes. Feeding them to `cost.predict_requests` gives the deterministic requests (invocations,
publishes and their billed chunks, PUTs) and the bytes a run will send, which the tests
compare with what the channels counted on the emulator.
"""

from __future__ import annotations

import scipy.sparse as sp

from ..channels import Channel, open_channel
from ..channels.frames import HEADER, KEY_SIZE
from ..channels.recorder import Hub
from ..engine.worker import run_in_threads
from ..model.network import SparseDNN
from ..plan.communication import WorkerShard

#: Variants whose frames are authenticated with the run's key (their transports are shared).
KEYED_VARIANTS = ("queue", "object")
#: Seconds a simulated worker waits for a message before the prediction gives up (a bug).
TIMEOUT = 600.0


def run_frames(model: SparseDNN, shards: list[WorkerShard], inputs: sp.csr_matrix, variant: str,
               max_frame: int | None, run_id_length: int = 12) -> list[list[tuple[int, int, int]]]:
    """Per sending round (each layer, then the gather): (src, dst, frame bytes) in send order.

    Frame sizes include a header for a run id of `run_id_length` characters (the
    coordinator's).
    """
    hub = Hub()
    # The cloud channels' frames carry a MAC (any key of the run key's size gives their sizes).
    config = {"hub": hub, "variant": variant, "max_frame_bytes": max_frame,
              "key": "00" * KEY_SIZE if variant in KEYED_VARIANTS else None}

    def channel_for(worker: int) -> Channel:
        return open_channel("recorder", "x" * run_id_length, worker, config)

    run_in_threads(shards, inputs, channel_for, TIMEOUT, hub.fail)
    rounds = []
    for layer in range(1, model.layers + 2):
        by_src = hub.sizes.get(layer, {})
        rounds.append([(src, dst, n) for src in sorted(by_src) for dst, n in by_src[src]])
    return rounds


__all__ = ["HEADER", "run_frames"]
