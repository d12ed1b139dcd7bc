"""The price table the cost model uses: every price with its region, date and source.

Defaults are AWS us-east-1 on-demand list prices (no free tier, no savings plans), each with
the date it took effect (or, for prices unchanged for years, the date it was last checked)
and the page that states it. A JSON file overrides them (`fsd recommend --prices FILE`)::

    {"region": "us-east-1", "date": "2025-01-01",
     "prices": {"lambda_gb_second_x86": {"usd": 1.66667e-05, "source": "...", "date": "..."}},
     "rules": {"lambda_init_billed": false},
     "ec2": {"r6i.2xlarge": {"vcpu": 8, "memory_gib": 64, "usd_per_hour": 0.504}}}

A file for us-east-1 may list only the prices it changes; a file for any other region must
list every required price (we never price eu-west-1 with us-east-1 numbers); the S3 Express
One Zone prices are optional there (without them `--storage express` is refused). An unknown
region without a file, or a malformed file, is an `InputError` naming the file and the field.

Billing rules are dated too: since 2025-08-01 Lambda bills the INIT phase of a cold start
(on-demand ZIP functions on managed runtimes) as duration at the function's GB-second price
(`lambda_init_billed`; AWS Compute Blog, "AWS Lambda standardizes billing for INIT phase",
2025-04-29); a price file can turn it off to price runs from before that date. Where INIT was
already billed (container images, custom runtimes), the REPORT line's billed duration is the
INIT duration plus the handler's, rounded up to 1 ms once (L. van Donkersgoed, "When is the
Lambda init phase free, and when is it billed?", 2022-04-09: 1,293.83 ms + 1,049.63 ms billed
as 2,344 ms); `serving.price_workers` rounds the same way.

The storage prices (`s3_storage_gb_month`, `s3express_storage_gb_month`) price keeping a
deployed model's shards (`fsd model deploy`); a file for another region may leave them out.
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
_ARM = ("https://aws.amazon.com/blogs/aws/aws-lambda-functions-powered-by-aws-graviton2-processor-"
        "run-your-functions-on-arm-and-get-up-to-34-better-price-performance/")
_INIT = ("https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/ (2025-04-29: "
         "effective 2025-08-01)")
_SNS = "https://aws.amazon.com/sns/pricing/"
_SQS = "https://aws.amazon.com/sqs/pricing/"
_S3 = "https://aws.amazon.com/s3/pricing/"
_S3_FAQ = "https://aws.amazon.com/s3/faqs/ (S3 Express One Zone pricing examples)"
_EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/"
#: S3 Express One Zone's prices since its 2025-04-10 reduction (PUT -55 %, GET -85 %, per-GB
#: charges -60 % and now on every byte, not only the part of a request above 512 KB).
EXPRESS_DATE = "2025-04-10"

#: name -> (USD per unit, unit, source, date). Units are single requests, GB-seconds or GB.
_DEFAULT_PRICES: dict[str, tuple[float, str, str, str]] = {
    "lambda_gb_second_x86": (0.0000166667, "GB-second (x86_64)", _LAMBDA, DEFAULT_DATE),
    "lambda_gb_second_arm64": (0.0000133334, "GB-second (arm64, Graviton2)", f"{_LAMBDA}; {_ARM}", "2021-09-29"),
    "lambda_request": (0.20 / 1e6, "request", _LAMBDA, DEFAULT_DATE),
    "sns_publish": (0.50 / 1e6, "64 KiB publish chunk", _SNS, DEFAULT_DATE),
    "sqs_request": (0.40 / 1e6, "64 KiB request chunk (standard queue)", _SQS, DEFAULT_DATE),
    "s3_put": (0.005 / 1000, "PUT, COPY, POST or LIST request (S3 Standard)", _S3, DEFAULT_DATE),
    "s3_get": (0.0004 / 1000, "GET or SELECT request (S3 Standard)", _S3, DEFAULT_DATE),
    "s3express_put": (0.00113 / 1000, "PUT, COPY, POST or LIST request (S3 Express One Zone)", f"{_S3}; {_S3_FAQ}",
                      EXPRESS_DATE),
    "s3express_get": (0.00003 / 1000, "GET or HEAD request (S3 Express One Zone)", f"{_S3}; {_S3_FAQ}", EXPRESS_DATE),
    "s3express_upload_gb": (0.0032, "GB uploaded (every byte of a PUT, S3 Express One Zone)", f"{_S3}; {_S3_FAQ}",
                            EXPRESS_DATE),
    "s3express_retrieve_gb": (0.0006, "GB retrieved (every byte of a GET, S3 Express One Zone)", f"{_S3}; {_S3_FAQ}",
                              EXPRESS_DATE),
    # Storage: what keeping a deployed model's shards costs (`serving.deploy_cost`); GB = 2^30 bytes.
    "s3_storage_gb_month": (0.023, "GB-month stored (S3 Standard, first 50 TB)", _S3, DEFAULT_DATE),
    "s3express_storage_gb_month": (0.11, "GB-month stored (S3 Express One Zone)", f"{_S3}; {_S3_FAQ}", EXPRESS_DATE),
}
#: Prices a file for another region may leave out (the features they price are then unavailable).
OPTIONAL_KEYS = ("s3express_put", "s3express_get", "s3express_upload_gb", "s3express_retrieve_gb",
                 "s3_storage_gb_month", "s3express_storage_gb_month")

#: name -> (value, what it means, source, date): billing rules that are not prices.
_DEFAULT_RULES: dict[str, tuple[bool, str, str, str]] = {
    "lambda_init_billed": (True, ("the INIT phase of a cold start is billed as duration at the function's "
                           "GB-second price (on-demand ZIP functions, managed runtimes)"), _INIT, "2025-08-01"),
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
RULE_KEYS = tuple(_DEFAULT_RULES)
ARCHS = ("x86_64", "arm64")
STORAGES = ("standard", "express")


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str
    date: str
    region: str


@dataclass(frozen=True)
class Rule:
    value: bool
    meaning: str
    source: str
    date: str


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
    """Prices by key (see `PRICE_KEYS`), billing rules and EC2 instances by name, for one region."""

    region: str
    prices: dict[str, Price]
    instances: dict[str, Instance] = field(default_factory=dict)
    origin: str = "built-in defaults"
    rules: dict[str, Rule] = field(default_factory=lambda: {k: Rule(*v) for k, v in _DEFAULT_RULES.items()})

    def __getitem__(self, key: str) -> float:
        try:
            return self.prices[key].usd
        except KeyError:
            raise InputError(f"the price table ({self.origin}) has no price {key!r} for region {self.region}") from None

    def has(self, key: str) -> bool:
        return key in self.prices

    def lambda_gb_second(self, arch: str = "x86_64") -> float:
        if arch not in ARCHS:
            raise InputError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        return self["lambda_gb_second_arm64" if arch == "arm64" else "lambda_gb_second_x86"]

    @property
    def init_billed(self) -> bool:
        """Whether a cold start's INIT phase is billed (Lambda, since 2025-08-01)."""
        rule = self.rules.get("lambda_init_billed")
        return bool(rule.value) if rule else False

    def as_dict(self) -> dict:
        return {"region": self.region, "origin": self.origin,
                "prices": {k: vars(p) for k, p in self.prices.items()},
                "rules": {k: vars(r) for k, r in self.rules.items()},
                "ec2": {k: vars(i) for k, i in self.instances.items()}}


def default_table() -> PriceTable:
    prices = {k: Price(usd, unit, src, date, DEFAULT_REGION) for k, (usd, unit, src, date) in _DEFAULT_PRICES.items()}
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
    missing = [k for k in PRICE_KEYS if k not in prices and k not in OPTIONAL_KEYS]
    if missing:
        raise InputError(f"{path}: region {file_region!r} has no built-in prices, so the file must give "
                         f"'prices.{missing[0]}' (missing: {', '.join(missing)})")
    rules = dict(base.rules)
    raw_rules = doc.get("rules", {})
    if not isinstance(raw_rules, dict):
        raise InputError(f"{path}: field 'rules' must be an object")
    for key, value in raw_rules.items():
        if key not in _DEFAULT_RULES:
            raise InputError(f"{path}: field rules.{key} is not a known rule (known: {', '.join(RULE_KEYS)})")
        if not isinstance(value, bool):
            raise InputError(f"{path}: field rules.{key} must be true or false")
        rules[key] = Rule(value, _DEFAULT_RULES[key][1], str(path), date)
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
    return PriceTable(file_region, prices, instances, origin=str(path), rules=rules)


def _nonneg(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{where} must be a non-negative number, got {value!r}")
    return float(value)
