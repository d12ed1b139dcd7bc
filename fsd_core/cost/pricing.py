"""Dollars of requests and Lambda time: API names -> prices, GB-seconds, the INIT phase, S3 Express bytes.

API names are the channels' counter names (`service:Action`): `lambda:*` at the request price,
`sns:*` per billed 64 KiB publish chunk, `sqs:*` per billed 64 KiB request chunk, `s3:Get*`/`Head*`
at the GET price, `s3:Delete*` free, other `s3:*` (PUT, LIST) at the PUT price. The S3 prices
are S3 Standard's or, with `storage="express"`, S3 Express One Zone's, which also bills every
byte uploaded and retrieved (`transfer_bytes`). Lambda time: each worker's duration rounded up
to 1 ms, times memory in GB, times the architecture's GB-second price; a cold worker's INIT
phase is billed the same way since 2025-08-01 (`PriceTable.init_billed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError
from .prices import STORAGES, PriceTable, default_table

GB = 1024**3  # S3 bills data by the GiB ("GB" on the pricing page)


def api_price(api: str, prices: PriceTable, storage: str = "standard") -> float:
    """USD per billed request of `api` (e.g. "sns:PublishBatch"); DELETEs are free."""
    service, _, action = api.partition(":")
    if service == "lambda":
        return prices["lambda_request"]
    if service == "sns":
        return prices["sns_publish"]
    if service == "sqs":
        return prices["sqs_request"]
    if service == "s3":
        if storage not in STORAGES:
            raise InputError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")
        prefix = "s3express" if storage == "express" else "s3"
        if action.startswith("Delete"):
            return 0.0
        if action in ("GetObject", "HeadObject", "SelectObjectContent"):
            return prices[f"{prefix}_get"]
        return prices[f"{prefix}_put"]  # PUT, COPY, POST, LIST
    raise InputError(f"cannot price API {api!r}: unknown service {service!r}")


def requests_usd(billed: Mapping[str, float], prices: PriceTable | None = None, storage: str = "standard") -> float:
    """USD of billed request counts by API alone: the part of a run's dollars that does not
    depend on how its workers started (`serving.price_workers` prices their time)."""
    prices = prices or default_table()
    return sum(float(n) * api_price(api, prices, storage) for api, n in billed.items())


def lambda_gb_seconds(durations: Sequence[float] | np.ndarray, memory_mb: int) -> float:
    """GB-seconds billed for workers that ran `durations` seconds (rounded up to 1 ms)."""
    ms = np.ceil(np.asarray(durations, dtype=float) * 1000.0 - 1e-9)
    return float(np.sum(ms)) / 1000.0 * memory_mb / 1024.0


def cost_breakdown(billed: Mapping[str, float], durations: Sequence[float] | np.ndarray, memory_mb: int,
                   prices: PriceTable | None = None, arch: str = "x86_64", storage: str = "standard",
                   init_seconds: Sequence[float] | np.ndarray = (),
                   transfer_bytes: Mapping[str, float] | None = None) -> dict[str, float]:
    """USD by item: lambda_compute, lambda_init (cold starts, when billed), one entry per API,
    and with S3 Express the per-GB upload and retrieval charges (`transfer_bytes`: {"up", "down"})."""
    prices = prices or default_table()
    gbs = prices.lambda_gb_second(arch)
    out = {"lambda_compute": lambda_gb_seconds(durations, memory_mb) * gbs}
    if len(init_seconds) and prices.init_billed:
        out["lambda_init"] = lambda_gb_seconds(init_seconds, memory_mb) * gbs
    for api, n in billed.items():
        out[api] = float(n) * api_price(api, prices, storage)
    if storage == "express" and transfer_bytes:
        out["s3express:upload_gb"] = float(transfer_bytes.get("up", 0.0)) / GB * prices["s3express_upload_gb"]
        out["s3express:retrieve_gb"] = float(transfer_bytes.get("down", 0.0)) / GB * prices["s3express_retrieve_gb"]
    return out


def dollars(billed: Mapping[str, float], durations: Sequence[float] | np.ndarray, memory_mb: int,
            prices: PriceTable | None = None, arch: str = "x86_64", storage: str = "standard",
            init_seconds: Sequence[float] | np.ndarray = (),
            transfer_bytes: Mapping[str, float] | None = None) -> float:
    """USD for billed request counts by API plus Lambda time of every worker at `memory_mb`."""
    return sum(cost_breakdown(billed, durations, memory_mb, prices, arch, storage, init_seconds,
                              transfer_bytes).values())
