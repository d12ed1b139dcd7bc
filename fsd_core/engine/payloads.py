"""What the coordinator and the workers put in a run's stage: matrices and the result."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from .. import packed
from ..channels.frames import Message, decode_message, encode_message
from .worker import expand

RESULT_KEY = "result.msg"


def shard_key(worker: int) -> str:
    """Stage key of a worker's shard (`WorkerShard.to_bytes`)."""
    return f"shard-{worker}.fsda"


def shards_digest(blobs: Iterable[bytes]) -> str:
    """The plan digest: 16 bytes of BLAKE2b over the shards' own digests, in worker order. It
    names the shards (a warm worker keeps them under it; a deployed model's id ends in it)."""
    digest = hashlib.blake2b(digest_size=16)
    for blob in blobs:
        digest.update(hashlib.blake2b(blob, digest_size=16).digest())
    return digest.hexdigest()


def inputs_key(worker: int) -> str:
    """Stage key of a worker's input columns (`matrix_to_bytes`)."""
    return f"inputs-{worker}.fsda"


def matrix_to_bytes(m: sp.spmatrix) -> bytes:
    """A float32 CSR matrix packed (`packed.py`), as a worker's inputs are staged."""
    m = sp.csr_matrix(m, dtype=np.float32)
    return packed.pack({"shape": np.array(m.shape, np.int64), "indptr": m.indptr, "indices": m.indices,
                        "data": m.data})


def matrix_from_bytes(data: bytes) -> sp.csr_matrix:
    """Inverse of `matrix_to_bytes` (PackError, KeyError or ValueError if damaged)."""
    a = packed.unpack(data)
    rows, cols = (int(x) for x in a["shape"])
    return sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=(rows, cols))


def result_to_bytes(result: Message) -> bytes:
    """Worker 0's result, distinct rows + row map: small; the coordinator expands it."""
    return encode_message(result)


def result_from_bytes(data: bytes) -> sp.csr_matrix:
    """The B x N final activations from worker 0's staged result."""
    return expand(decode_message(data))
