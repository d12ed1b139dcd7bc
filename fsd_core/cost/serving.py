"""Serving: what deploying a model once costs, and what a query's workers cost cold or warm.

A model is deployed once per (model, plan) (`fsd model deploy`): its shards are written under a
content-addressed prefix, so a second deploy of the same model and plan finds them (one GET of its document)
and writes nothing. `deploy_cost` prices that one-time upload (a PUT per object and, with
S3 Express One Zone, its bytes) and the storage that keeps the shards, per month. A model
deployed on the local directory store is priced as the same deploy in S3: the figures are what
it would cost on AWS, not what the local disk costs.

A query's workers start *cold* (the first invocation an execution environment serves: the
platform's cold start, then the INIT phase, here the process start and the handler's imports,
then the handler) or *warm* (an environment that served an earlier invocation: no INIT, and the
shard it loaded then is still in memory). Since 2025-08-01 Lambda bills INIT as duration at the
function's GB-second price (`PriceTable.init_billed`); `price_workers` prices the workers'
reports with that split, and `Serving` is the same assumption for the predictions
(`latency.evaluate`, `fsd recommend --staged/--warm`).

docs/cost-model.md ("Serving") has the formulas and what the local emulator can and cannot
measure about INIT.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError
from .params import Params
from .prices import STORAGES, PriceTable, default_table
from .pricing import GB, api_price

#: The request a deploy makes to learn whether the model and plan are already there.
CHECK_API = "s3:HeadObject"
START_KINDS = ("cold", "warm")

# ----------------------------------------------------------------------------- deploying a model


@dataclass(frozen=True)
class DeployCost:
    """The one-time cost of deploying a model's shards (`usd`: its requests and, with S3
    Express, its bytes) and the monthly cost of keeping them (`storage_usd_per_month`: None
    when the price table has no storage price for its region)."""

    requests: dict[str, int]
    bytes: int
    usd: float
    stored_bytes: int
    storage_usd_per_month: float | None
    already_deployed: bool
    storage: str
    region: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def deploy_cost(shard_bytes: Sequence[int], already_deployed: bool = False, *, prices: PriceTable | None = None,
                storage: str = "standard", check_api: str | None = CHECK_API) -> DeployCost:
    """What writing the objects of sizes `shard_bytes` once costs (every object the deploy
    writes: the shards, and a manifest if it writes one), and keeping them a month.

    A deploy first asks whether the model and plan are there (`check_api`, None if it does not
    ask); `already_deployed`: they were, so it writes nothing and pays only that request.
    """
    sizes = _object_sizes(shard_bytes)
    prices = prices or default_table()
    if storage not in STORAGES:
        raise InputError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")
    written = 0 if already_deployed else sum(sizes)
    requests = _deploy_requests(len(sizes), already_deployed, check_api)
    usd = sum(n * api_price(api, prices, storage) for api, n in requests.items())
    if storage == "express":
        usd += written / GB * prices["s3express_upload_gb"]
    return DeployCost(requests, written, usd, sum(sizes), _storage_per_month(sum(sizes), prices, storage),
                      already_deployed, storage, prices.region,
                      f"priced as S3 {storage} in {prices.region}: a model deployed on the local directory store "
                      "is priced as the same deploy in S3")


def _object_sizes(shard_bytes: Sequence[int]) -> list[int]:
    sizes = list(shard_bytes)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InputError(f"object sizes must be non-negative integers (bytes), got {size!r}")
    return sizes


def _deploy_requests(objects: int, already_deployed: bool, check_api: str | None) -> dict[str, int]:
    """A look (when the deploy looks first), then one PutObject per object unless already there."""
    requests = {check_api: 1} if check_api else {}
    if not already_deployed and objects:
        requests["s3:PutObject"] = objects
    return requests


def _storage_per_month(stored: int, prices: PriceTable, storage: str) -> float | None:
    key = "s3express_storage_gb_month" if storage == "express" else "s3_storage_gb_month"
    return stored / GB * prices[key] if prices.has(key) else None


# ----------------------------------------------------------------------------- a query's workers


@dataclass(frozen=True)
class WorkerBill:
    """One worker's billed time, read from its report: how it started, its INIT seconds (cold
    only), its handler's seconds, the bytes it fetched from the stage and whether its shard
    was fetched ("loaded") or found in memory ("cached")."""

    start: str
    init_s: float
    duration_s: float
    loaded_bytes: int
    shard: str


def worker_bill(report: Mapping[str, Any]) -> WorkerBill | None:
    """A worker's bill from its report; None for one that never ran (no start or end time).

    A report that does not say it started warm counts as cold (a fresh environment); one that
    gives no INIT seconds (reports before serving) then costs what it cost before.
    """
    started, finished = report.get("started_at"), report.get("finished_at")
    if not started or not finished:
        return None
    start = "warm" if report.get("start") == "warm" else "cold"
    init_s = max(0.0, float(report.get("init_s") or 0.0)) if start == "cold" else 0.0
    shard = report.get("shard") or ("cached" if report.get("shard_cached") else "loaded")
    return WorkerBill(start, init_s, max(0.0, finished - started), int(report.get("loaded_bytes") or 0), shard)


@dataclass(frozen=True)
class StartGroup:
    """The workers of one kind of start and their Lambda time: INIT (cold only, when billed)
    and the handler's time (its part of each worker's 1 ms rounding included)."""

    workers: int = 0
    init_s: float = 0.0
    duration_s: float = 0.0
    init_usd: float = 0.0
    duration_usd: float = 0.0
    loaded_bytes: int = 0

    @property
    def usd(self) -> float:
        return self.init_usd + self.duration_usd

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usd": self.usd}


@dataclass(frozen=True)
class WorkerCost:
    """A query's Lambda time split by how its workers started (`price_workers`)."""

    cold: StartGroup
    warm: StartGroup
    shards_loaded: int
    shards_cached: int
    memory_mb: int
    arch: str
    init_billed: bool
    #: Workers that reported no times (a crash, a kill, a run stopped first): Lambda bills
    #: whatever they ran, which is not known here, so the figures are a lower bound then.
    unpriced: int = 0

    @property
    def init_usd(self) -> float:
        return self.cold.init_usd + self.warm.init_usd

    @property
    def duration_usd(self) -> float:
        return self.cold.duration_usd + self.warm.duration_usd

    @property
    def usd(self) -> float:
        return self.cold.usd + self.warm.usd

    def as_dict(self) -> dict[str, Any]:
        """`run --json`'s "workers_cost"."""
        return {"cold": self.cold.workers, "warm": self.warm.workers,
                "init_s": self.cold.init_s, "init_usd": self.init_usd, "duration_usd": self.duration_usd,
                "usd": self.usd, "loaded_bytes": self.cold.loaded_bytes + self.warm.loaded_bytes,
                "shards": {"loaded": self.shards_loaded, "cached": self.shards_cached},
                "memory_mb": self.memory_mb, "arch": self.arch, "init_billed": self.init_billed,
                "unpriced": self.unpriced,
                "by_start": {"cold": self.cold.as_dict(), "warm": self.warm.as_dict()}}


def price_workers(reports: Iterable[Mapping[str, Any]], memory_mb: int, prices: PriceTable | None = None,
                  arch: str = "x86_64") -> WorkerCost:
    """The Lambda time of the workers that ran, split into cold and warm starts (and how many
    reported no times: `unpriced`).

    Each worker is billed its handler's seconds and, when it started cold and INIT is billed
    (since 2025-08-01), its INIT seconds, rounded up to 1 ms together (as Lambda's billed
    duration), times memory in GB, times the architecture's GB-second price. Invocations are
    requests: `pricing.requests_usd` prices them with the rest.
    """
    prices = prices or default_table()
    rate = prices.lambda_gb_second(arch) * memory_mb / 1024.0
    every = [worker_bill(r) for r in reports if r.get("status") != "not started"]
    bills = [b for b in every if b is not None]
    groups = {kind: _group([b for b in bills if b.start == kind], rate, prices.init_billed) for kind in START_KINDS}
    return WorkerCost(groups["cold"], groups["warm"], sum(b.shard == "loaded" for b in bills),
                      sum(b.shard == "cached" for b in bills), memory_mb, arch, prices.init_billed,
                      len(every) - len(bills))


def _group(bills: list[WorkerBill], usd_per_s: float, init_billed: bool) -> StartGroup:
    """Sum the bills of one kind of start: INIT at its exact seconds, the handler's time as the
    rest of each worker's billed milliseconds."""
    init_s = sum((b.init_s for b in bills), 0.0)
    billed_init_s = init_s if init_billed else 0.0
    billed_s = sum((_billed_seconds(b, init_billed) for b in bills), 0.0)
    return StartGroup(len(bills), init_s, sum((b.duration_s for b in bills), 0.0), billed_init_s * usd_per_s,
                      (billed_s - billed_init_s) * usd_per_s, sum(b.loaded_bytes for b in bills))


def _billed_seconds(bill: WorkerBill, init_billed: bool) -> float:
    """Lambda's billed duration of one invocation: INIT (when billed) + handler, rounded up to 1 ms
    as `pricing.lambda_gb_seconds` rounds (float noise above a whole millisecond is not another
    one); never less than the time itself, so the handler's part is never negative."""
    seconds = (bill.init_s if init_billed else 0.0) + bill.duration_s
    return max(math.ceil(seconds * 1000.0 - 1e-9) / 1000.0, seconds)


# ----------------------------------------------------------------------------- the prediction's assumption


@dataclass(frozen=True)
class Serving:
    """How a predicted query finds its model and its workers.

    `deployed` (default): the shards are in the stage before the query (`fsd model deploy`; the
    paper kept each worker's weights in S3 per configuration), so the query uploads none of them.
    False: the query stages every worker's shard first, as `fsd run` without `--deployed` does.
    `warm`: the fraction of workers that start warm, their shard in memory (no cold start, no
    INIT, no shard fetch); None takes 1 - `Params.cold_fraction` (1: every worker cold). The
    default is the model's figures before serving existed.
    """

    deployed: bool = True
    warm: float | None = None

    def __post_init__(self) -> None:
        if self.warm is not None and not (isinstance(self.warm, (int, float)) and 0.0 <= self.warm <= 1.0):
            raise InputError(f"the warm fraction must be between 0 and 1, got {self.warm!r}")

    def cold_fraction(self, params: Params) -> float:
        return params.cold_fraction if self.warm is None else 1.0 - float(self.warm)

    def describe(self, params: Params) -> dict[str, Any]:
        """The assumption as `fsd recommend` reports it ("serving")."""
        cold = self.cold_fraction(params)
        model = ("the model deployed once (fsd model deploy): a query stages none of its shards" if self.deployed
                 else "the query stages every worker's shard first (fsd run without --deployed)")
        if cold >= 1.0:
            workers = "every worker cold: cold start, billed INIT and its shard fetched"
        elif cold <= 0.0:
            workers = "every worker warm: no INIT, its shard already in memory"
        else:
            workers = (f"{1.0 - cold:.0%} of workers warm (no INIT, shard in memory), {cold:.0%} cold "
                       "(cold start, billed INIT, shard fetched)")
        warm = float(self.warm) if self.warm is not None else 1.0 - cold
        return {"deployed": self.deployed, "warm_fraction": warm, "text": f"{model}; {workers}"}


__all__ = ["CHECK_API", "DeployCost", "Serving", "StartGroup", "WorkerBill", "WorkerCost", "deploy_cost",
           "price_workers", "worker_bill"]
