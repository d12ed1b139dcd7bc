"""FSD-Inference core: sparse DNN models, the serial kernel, partitioning, plans, channels,
the distributed engine, the cost model and the cloud glue.

The handful of names most callers need:

- `SparseDNN` (model.py): the network and its on-disk format.
- `infer` (serial.py): the reference kernel.
- `FsdError`, `InputError`, `RunError` (errors.py): what `fsd_core` raises.
"""

from .errors import FsdError, InputError, RunError
from .model import SparseDNN
from .serial import infer

__all__ = ["SparseDNN", "infer", "FsdError", "InputError", "RunError"]
