"""FSD-Inference core: sparse DNN models, the serial kernel, partitioning, plans, channels,
the distributed engine, the cost model and the cloud glue.

The handful of names most callers need:

- `SparseDNN` (model.py): the network and its on-disk format.
- `infer` (serial.py): the reference kernel.
- `FsdError`, `InputError`, `RunError` (errors.py): what `fsd_core` raises.
"""

from .errors import FsdError, InputError, RunError

__all__ = ["SparseDNN", "infer", "FsdError", "InputError", "RunError"]


def __getattr__(name: str):
    """`SparseDNN` and `infer` on first use: importing the package stays free of numpy and
    scipy, so a worker process can start its children before paying for them."""
    if name == "SparseDNN":
        from .model.network import SparseDNN

        return SparseDNN
    if name == "infer":
        from .kernel.serial import infer

        return infer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
