"""The price table the cost model uses: every price with its region, date and source.

Defaults are AWS us-east-1 on-demand list prices (no free tier, no savings plans). A JSON file
overrides them (`fsd recommend --prices FILE`)::

    {"region": "us-east-1", "date": "2025-01-01",
     "prices": {"lambda_gb_second_x86": {"usd": 1.66667e-05, "source": "...", "date": "..."}},
     "ec2": {"r6i.2xlarge": {"vcpu": 8, "memory_gib": 64, "usd_per_hour": 0.504}}}

A file for us-east-1 may list only the prices it changes; a file for any other region must
list every price (we never price eu-west-1 with us-east-1 numbers). An unknown region without a
file, or a malformed file, is an `InputError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

DEFAULT_REGION = "us-east-1"
DEFAULT_DATE = "2024-03-22"  # the paper's submission date; these list prices held then and since

_LAMBDA = "https://aws.amazon.com/lambda/pricing/"
_SNS = "https://aws.amazon.com/sns/pricing/"
_SQS = "https://aws.amazon.com/sqs/pricing/"
_S3 = "https://aws.amazon.com/s3/pricing/"
_EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/"

#: name -> (USD per unit, unit, source). Units are single requests / GB-seconds.
_DEFAULT_PRICES: dict[str, tuple[float, str, str]] = {
    "lambda_gb_second_x86": (0.0000166667, "GB-second", _LAMBDA),
    "lambda_gb_second_arm64": (0.0000133334, "GB-second", _LAMBDA),
    "lambda_request": (0.20 / 1e6, "request", _LAMBDA),
    "sns_publish": (0.50 / 1e6, "64 KiB publish chunk", _SNS),
    "sqs_request": (0.40 / 1e6, "64 KiB request chunk (standard queue)", _SQS),
    "s3_put": (0.005 / 1000, "PUT, COPY, POST or LIST request (S3 Standard)", _S3),
    "s3_get": (0.0004 / 1000, "GET or SELECT request (S3 Standard)", _S3),
}

#: Linux on-demand instances for the server baselines: (vCPU, GiB, USD per hour).
_DEFAULT_EC2: dict[str, tuple[int, float, float]] = {
    "c6i.xlarge": (4, 8, 0.17),
    "m6i.xlarge": (4, 16, 0.192),
    "r6i.xlarge": (4, 32, 0.252),
    "r6i.2xlarge": (8, 64, 0.504),
    "r6i.4xlarge": (16, 128, 1.008),
    "r6i.8xlarge": (32, 256, 2.016),
    "r6i.16xlarge": (64, 512, 4.032),
}

PRICE_KEYS = tuple(_DEFAULT_PRICES)


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str
    date: str
    region: str


@dataclass(frozen=True)
class Instance:
    name: str
    vcpu: int
    memory_gib: float
    usd_per_hour: float
    source: str
    date: str
    region: str


@dataclass(frozen=True)
class PriceTable:
    """Prices by key (see `PRICE_KEYS`) and EC2 instances by name, for one region."""

    region: str
    prices: dict[str, Price]
    instances: dict[str, Instance] = field(default_factory=dict)
    origin: str = "built-in defaults"

    def __getitem__(self, key: str) -> float:
        return self.prices[key].usd

    def lambda_gb_second(self, arch: str = "x86_64") -> float:
        return self["lambda_gb_second_arm64" if arch == "arm64" else "lambda_gb_second_x86"]

    def as_dict(self) -> dict:
        return {"region": self.region, "origin": self.origin,
                "prices": {k: vars(p) for k, p in self.prices.items()},
                "ec2": {k: vars(i) for k, i in self.instances.items()}}


def default_table() -> PriceTable:
    prices = {k: Price(usd, unit, src, DEFAULT_DATE, DEFAULT_REGION)
              for k, (usd, unit, src) in _DEFAULT_PRICES.items()}
    inst = {k: Instance(k, v, m, h, _EC2, DEFAULT_DATE, DEFAULT_REGION) for k, (v, m, h) in _DEFAULT_EC2.items()}
    return PriceTable(DEFAULT_REGION, prices, inst)


def load_prices(path: str | os.PathLike[str] | None = None, region: str | None = None) -> PriceTable:
    """The price table for `region` (default us-east-1), overridden by the JSON file `path`."""
    if path is None:
        if region not in (None, DEFAULT_REGION):
            raise InputError(f"no built-in prices for region {region!r} (only {DEFAULT_REGION}); "
                             "give a price file with --prices FILE")
        return default_table()
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: price file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON price file ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a price file must be a JSON object")
    file_region = doc.get("region", DEFAULT_REGION)
    if not isinstance(file_region, str) or not file_region:
        raise InputError(f"{path}: field 'region' must be a non-empty string")
    if region is not None and region != file_region:
        raise InputError(f"{path}: prices are for region {file_region!r}, not {region!r}")
    date = doc.get("date", "")
    if not isinstance(date, str):
        raise InputError(f"{path}: field 'date' must be a string")
    base = default_table() if file_region == DEFAULT_REGION else PriceTable(file_region, {}, {})
    prices = dict(base.prices)
    raw = doc.get("prices", {})
    if not isinstance(raw, dict):
        raise InputError(f"{path}: field 'prices' must be an object")
    for key, entry in raw.items():
        where = f"{path}: field prices.{key}"
        if key not in _DEFAULT_PRICES:
            raise InputError(f"{where} is not a known price (known: {', '.join(PRICE_KEYS)})")
        if isinstance(entry, (int, float)) and not isinstance(entry, bool):
            entry = {"usd": entry}
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be a number or an object with 'usd'")
        usd = _nonneg(entry.get("usd"), f"{where}.usd")
        prices[key] = Price(usd, _DEFAULT_PRICES[key][1], str(entry.get("source", str(path))),
                            str(entry.get("date", date)), file_region)
    missing = [k for k in PRICE_KEYS if k not in prices]
    if missing:
        raise InputError(f"{path}: region {file_region!r} has no built-in prices, so the file must give "
                         f"'prices.{missing[0]}' (missing: {', '.join(missing)})")
    instances = dict(base.instances)
    raw_ec2 = doc.get("ec2", {})
    if not isinstance(raw_ec2, dict):
        raise InputError(f"{path}: field 'ec2' must be an object")
    for name, entry in raw_ec2.items():
        where = f"{path}: field ec2.{name}"
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be an object with vcpu, memory_gib, usd_per_hour")
        vcpu = _nonneg(entry.get("vcpu"), f"{where}.vcpu")
        mem = _nonneg(entry.get("memory_gib"), f"{where}.memory_gib")
        usd = _nonneg(entry.get("usd_per_hour"), f"{where}.usd_per_hour")
        if vcpu < 1 or mem <= 0:
            raise InputError(f"{where} needs vcpu >= 1 and memory_gib > 0")
        instances[name] = Instance(name, int(vcpu), float(mem), usd, str(entry.get("source", str(path))),
                                   str(entry.get("date", date)), file_region)
    return PriceTable(file_region, prices, instances, origin=str(path))


def _nonneg(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{where} must be a non-negative number, got {value!r}")
    return float(value)
