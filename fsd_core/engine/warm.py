"""What an execution environment keeps between invocations: its shards, and whether it is warm.

AWS Lambda reuses an execution environment for later invocations of the same function: the
process, its imports and its memory stay. The first invocation an environment serves is a
cold start (Lambda bills its INIT phase since 2025-08-01); later ones are warm. A warm worker
keeps the shards it parsed, keyed by the plan's digest (a digest of the shards' bytes, so a
new model or plan never hits) and its worker number, bounded by a share of its memory: a
query on a deployed model then reads only its inputs. Locally the warm pool's processes
(`engine.pool`) are such environments; a process started for one run is always cold.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..processes import started_at

#: Share of the function's memory the kept shards may take (the run needs the rest).
CACHE_SHARE = 0.4
#: Without a Lambda memory setting (a local process): the budget in MiB, overridable.
LOCAL_BUDGET_MB = 2048
BUDGET_ENV = "FSD_SHARD_CACHE_MB"


def cache_budget_bytes(environ: dict[str, str] | None = None) -> int:
    """Bytes of shards a warm environment keeps: FSD_SHARD_CACHE_MB if set, else a share of the
    Lambda function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), else LOCAL_BUDGET_MB."""
    env = os.environ if environ is None else environ
    if env.get(BUDGET_ENV, "").isdigit():
        return int(env[BUDGET_ENV]) << 20
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit():
        return int(int(memory) * CACHE_SHARE) << 20
    return LOCAL_BUDGET_MB << 20


class ShardCache:
    """Shards by (plan digest, worker), least recently used first out, within `budget` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._shards: OrderedDict[tuple[str, int], tuple[Any, int]] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(size for _, size in self._shards.values())

    def get(self, digest: str | None, worker: int) -> Any:
        if not digest:
            return None
        entry = self._shards.get((digest, worker))
        if entry is None:
            return None
        self._shards.move_to_end((digest, worker))
        return entry[0]

    def put(self, digest: str | None, worker: int, shard: Any, size: int) -> bool:
        """Keep `shard` (of `size` bytes) if it fits the budget, evicting the oldest; True if kept."""
        if not digest or size > self.budget:
            return False
        self._shards.pop((digest, worker), None)
        while self._shards and self.nbytes + size > self.budget:
            self._shards.popitem(last=False)
        self._shards[(digest, worker)] = (shard, size)
        return True

    def evict_to(self, limit: int) -> None:
        """Drop the oldest shards until the kept ones take at most `limit` bytes."""
        while self._shards and self.nbytes > limit:
            self._shards.popitem(last=False)

    def __len__(self) -> int:
        return len(self._shards)


@dataclass
class Start:
    """How an invocation started: cold (the environment's first) or warm, and the INIT seconds
    a cold start spent before the handler ran (process start to handler entry)."""

    kind: str
    init_s: float


class Environment:
    """This process as an execution environment: how many invocations it served, its shards."""

    def __init__(self) -> None:
        self.invocations = 0
        self.ready_at: float | None = None
        self.shards = ShardCache(cache_budget_bytes())

    def ready(self) -> None:
        """The environment is initialised and waits for its first event (a warm pool's slot):
        its INIT phase ends here, not when an event arrives."""
        self.ready_at = time.time()

    def make_room(self, need_mb: float | None, environ: dict[str, str] | None = None) -> None:
        """Before a shard is loaded: keep only what fits beside this invocation's need (the
        coordinator's estimate, which the doctor checked alone against the function's memory),
        so kept shards never push a warm worker over a memory a cold one fits in."""
        memory = (os.environ if environ is None else environ).get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        if need_mb is not None and memory.isdigit():
            self.shards.evict_to(max(0, int((int(memory) - need_mb) * 2**20)))

    def begin(self, now: float | None = None) -> Start:
        """Count an invocation; cold if it is this process's first."""
        self.invocations += 1
        if self.invocations > 1:
            return Start("warm", 0.0)
        now = time.time() if now is None else now
        end = min(now, self.ready_at) if self.ready_at is not None else now
        return Start("cold", max(0.0, end - process_started_at()))


def process_started_at() -> float:
    """This process's start (epoch seconds), from /proc; where there is none, the import of
    this module (close: the handler imports it first)."""
    ticks = started_at(os.getpid())  # (clock ticks after boot)
    if ticks is None:
        return _IMPORTED_AT
    try:
        started = ticks / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])  # (btime has whole seconds; uptime 10 ms)
        return time.time() - (uptime - started)
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT


_IMPORTED_AT = time.time()

#: This process's environment (one per process, as one Lambda execution environment).
ENVIRONMENT = Environment()
