"""What the coordinator and the workers put in a run's stage: matrices and the result."""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sp

from .channels.encoding import Message, decode_message, encode_message
from .worker import expand

RESULT_KEY = "result.msg"


def matrix_to_bytes(m: sp.spmatrix) -> bytes:
    buf = io.BytesIO()
    sp.save_npz(buf, sp.csr_matrix(m, dtype=np.float32), compressed=True)
    return buf.getvalue()


def matrix_from_bytes(data: bytes) -> sp.csr_matrix:
    return sp.csr_matrix(sp.load_npz(io.BytesIO(data)))


def result_to_bytes(result: Message) -> bytes:
    """Worker 0's result, distinct rows + row map: small; the coordinator expands it."""
    return encode_message(result)


def result_from_bytes(data: bytes) -> sp.csr_matrix:
    """The B x N final activations from worker 0's staged result."""
    return expand(decode_message(data))
