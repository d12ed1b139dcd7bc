"""Exact request predictions for a concrete run, before it runs.

For a model, a plan and a batch, the frames every sender will send are fully determined: the
serial kernel gives every layer's activations, the plan says which rows go from whom to whom
(in the send order of the shards), and the wire encoding is deterministic. Feeding these
frame sizes to `cost.predict_requests` gives the deterministic requests (invocations,
publishes and their billed chunks, PUTs) and the bytes a run will send, which the tests
compare with what the channels counted on the emulator.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .channels.encoding import HEADER, Header, encode_block, frames_for
from .channels.object import is_empty_block
from .model import SparseDNN
from .plan import WorkerShard
from .serial import layer_step


def frame_lengths(block: sp.csr_matrix, variant: str, max_frame: int | None) -> list[int]:
    """Byte lengths of the frames one block becomes on `variant`'s channel."""
    if variant == "object" and is_empty_block(block):
        return [0]  # the object channel writes an empty block as a zero-length object
    payload = encode_block(block)
    return [len(f) for f in frames_for(Header("x" * 12, 0, 0, 0, 0, 1), payload, max_frame)]


def run_frames(model: SparseDNN, shards: list[WorkerShard], inputs: sp.csr_matrix, variant: str,
               max_frame: int | None) -> list[list[tuple[int, int, int]]]:
    """Per sending round (each layer, then the gather): (src, dst, frame bytes) in send order."""
    y = sp.csr_matrix(inputs, dtype=np.float32)
    y.sort_indices()
    batch, n = y.shape
    rounds: list[list[tuple[int, int, int]]] = []
    for l in range(model.layers):
        ycsc = y.tocsc()
        frames = []
        for shard in shards:
            prev_cols = shard.layers[l - 1].cols if l else shard.input_cols
            for dst, pos in shard.layers[l].send.items():
                block = sp.csr_matrix(ycsc[:, prev_cols[pos]])
                frames += [(shard.worker, dst, b) for b in frame_lengths(block, variant, max_frame)]
        rounds.append(frames)
        y = layer_step(y, model.weights[l], model.biases[l], model.ymax)
    ycsc = y.tocsc()
    gather = []
    for shard in shards[1:]:
        cols = shard.final_cols
        keep = sp.csr_matrix(ycsc[:, cols])
        placed = sp.csr_matrix((keep.data, cols[keep.indices], keep.indptr), shape=(batch, n))
        placed.sort_indices()
        gather += [(shard.worker, 0, b) for b in frame_lengths(placed, variant, max_frame)]
    rounds.append(gather)
    return rounds


__all__ = ["frame_lengths", "run_frames", "HEADER"]
