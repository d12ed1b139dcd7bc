"""Lazy registries: a kind name -> "module:Class", imported only when that kind is opened.

Channels, launchers and stages are all chosen by a kind named in the worker's event. Keeping
the table as strings means a worker on the local channel never imports boto3, and a module
that opens a backend does not import it (so backends may import what opens them without a
cycle). An unknown kind raises ValueError naming the known ones (dask's comm registry does the
same).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def load(table: Mapping[str, str], kind: Any, what: str) -> Any:
    """The class registered for `kind` in `table` ("module:Class"), imported now."""
    try:
        target = table[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {what} {kind!r}; known: {', '.join(sorted(table))}") from None
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)
