"""Helpers shared by the command modules: JSON output, argument types, checks made before work.

Numbers are validated where they are parsed (argparse types): a value that is not a finite
number in its flag's range is a usage error naming the flag, never a traceback later. Output
paths are checked before a command starts its work, so a run never finishes and then fails
to write its result; sizes a command would build in memory are estimated and refused when
they exceed the memory this machine has available.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..units import si

#: Largest neuron count, worker count or batch a flag accepts: neuron and row ids are int32.
MAX_INT32 = 2**31 - 1
#: Largest worker count of a run or a deployment (Terraform's max_workers: one SQS queue each).
MAX_WORKERS = 1024
#: Largest seed (the generators take 64-bit seeds).
MAX_SEED = 2**64 - 1
#: Bytes per neuron per layer `fsd model generate` holds (measured ~370: CSR arrays of 32 edges
#: per neuron, the bias, the generator's temporaries).
MODEL_BYTES_PER_NEURON_LAYER = 400
#: Bytes per pixel `fsd data generate` holds (measured ~6.6: sparse images ~11% dense, the
#: sorted triples it writes).
INPUT_BYTES_PER_PIXEL = 8


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def int_range(lo: int, hi: int, why: str = ""):
    """argparse type: an integer in [lo, hi]; `why` explains the upper bound."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not an integer") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"{value} must be at least {lo}")
        if value > hi:
            raise argparse.ArgumentTypeError(f"{value:,} must be at most {hi:,}{why}")
        return value

    parse.__name__ = "integer"
    return parse


#: argparse type: an integer in 1..2^31-1.
positive_int = int_range(1, MAX_INT32)
#: argparse type: a seed, 0..2^64-1.
seed_int = int_range(0, MAX_SEED)


def float_range(lo: float, hi: float, lo_open: bool = True, why: str = ""):
    """argparse type: a finite number in (lo, hi] (or [lo, hi] when not `lo_open`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a finite number")
        if value < lo or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(f"{value:g} must be {'greater than' if lo_open else 'at least'} {lo:g}")
        if value > hi:
            raise argparse.ArgumentTypeError(f"{value:g} must be at most {hi:g}{why}")
        return value

    parse.__name__ = "number"
    return parse


# ----------------------------------------------------------------------------- output paths
def check_output_file(path: str | os.PathLike[str] | None, flag: str) -> None:
    """Refuse, before any work, an output file the command could not write at the end.

    The file may exist (it is replaced) but must be a regular file; missing parent
    directories are created by the writer, so the nearest existing one must be a writable
    directory.
    """
    if path is None:
        return
    target = Path(path)
    if str(path) == "" or target.name in ("", ".", ".."):
        raise InputError(f"{flag} {str(path)!r}: give a file name")
    if target.is_dir():
        raise InputError(f"{flag} {target}: is a directory, give a file name")
    if target.exists() and not target.is_file():
        raise InputError(f"{flag} {target}: not a regular file")
    _check_parent(target, flag)


def check_output_dir(path: str | os.PathLike[str] | None, flag: str) -> None:
    """Refuse an output directory (a MODEL, a Graph Challenge directory) that cannot be written."""
    if path is None:
        return
    target = Path(path)
    if str(path) == "":
        raise InputError(f"{flag} '': give a directory")
    if target.exists() and not target.is_dir():
        raise InputError(f"{flag} {target}: exists and is not a directory")
    if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {target}: directory is not writable")
    _check_parent(target, flag)


def _check_parent(target: Path, flag: str) -> None:
    parent = target.absolute().parent
    while not parent.exists():
        if parent.is_symlink():
            raise InputError(f"{flag} {target}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {target}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {target}: directory {parent} is not writable")


# ----------------------------------------------------------------------------- memory
def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def require_memory(needed: float, what: str, limit: str) -> None:
    """Refuse work whose estimated memory exceeds what is available; `limit` says what fits."""
    avail = available_memory()
    if avail is not None and needed > avail:
        raise InputError(f"{what} needs about {si(needed, 'B')} of memory, more than the "
                         f"{si(avail, 'B')} available here; {limit}")


def model_bytes(neurons: int, layers: int) -> float:
    """Estimated peak bytes of generating (and saving) a RadiX-Net of N x L."""
    return float(MODEL_BYTES_PER_NEURON_LAYER) * neurons * layers


def inputs_bytes(neurons: int, count: int) -> float:
    """Estimated peak bytes of generating and writing `count` synthetic images of N pixels."""
    return float(INPUT_BYTES_PER_PIXEL) * neurons * count


def most_that_fit(per_unit: float, reserve: float = 0.0) -> int:
    """How many units of `per_unit` bytes fit in the available memory (after `reserve`)."""
    avail = available_memory() or 0
    return max(0, int((avail - reserve) // max(per_unit, 1.0)))


# ----------------------------------------------------------------------------- JSON
def starts_line(reports: list[dict]) -> str | None:
    """How a run's workers started (`fsd run`'s summary, `fsd runs show`): cold or warm, how many
    kept their shard from an earlier run, what they read; None when no worker reported it."""
    starts = [w for w in reports if w.get("start")]
    if not starts:
        return None
    warm = sum(1 for w in starts if w["start"] == "warm")
    kept = sum(1 for w in starts if w.get("shard") == "cached")
    loaded = sum(w.get("loaded_bytes") or 0 for w in starts)
    return (f"{len(starts) - warm} cold, {warm} warm; {kept} kept their shard; read {si(loaded, 'B')} "
            "(shards not kept, and inputs)")


def _default(obj: Any) -> Any:
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=_default)
    sys.stdout.write("\n")


def say(line: str) -> None:
    """One line of human text on stderr (notices, PASSED/FAILED under --json)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
