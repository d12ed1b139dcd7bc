"""`fsd doctor`: can this deployment carry a run? One finding per check, each ok, warning or
blocker.

Checks (each one line, in this order):

- ``credentials``: STS GetCallerIdentity in the deployment's region (on AWS the default
  credential chain; at the emulator the local operator). A blocker stops the API checks
  below, which would all fail the same way.
- ``region``: a region boto3 knows for Lambda, SNS, SQS and S3 (a warning otherwise).
- ``slots``: the run's P against the deployment's worker slots (``max_workers``).
- ``concurrency``: Lambda GetAccountSettings (the account's concurrency limit and its
  unreserved part; new accounts start at 10) and the function's reserved concurrency, against
  the run's P (a blocker: the workers of a run exchange messages every layer, so a throttled
  worker stalls the run) or, without a run, the deployment's ``max_workers`` (a warning: runs
  above the limit would stall). Before a deploy also the planned ``reserved_concurrency``:
  AWS refuses a reservation that leaves the account fewer than 100 unreserved executions.
  moto does not implement GetAccountSettings (404 "Not yet implemented"): at the emulator the
  account is modelled as moto models it for PutFunctionConcurrency, a quota of
  ``$MOTO_LAMBDA_CONCURRENCY_QUOTA`` less the functions' reservations, or none when unset.
- ``function``: GetFunctionConfiguration (exists, state, memory, timeout, code size) and,
  with ``memory_needed_mb``, ``memory``: the function's memory against the model's per-worker
  need (a blocker below it).
- ``package``: a deployment zip (given as a path or a PackageInfo) against Lambda's limits
  (``package.check_limits``: 250 MB unzipped).
- ``topics``, ``queues``, ``bucket``: every resource the manifest names exists (missing: a
  blocker; no permission to look: a warning).

:func:`check` is what the coordinator calls at the start of a cloud run; ``fsd doctor`` and
``fsd deploy`` (before its plan, without the resource checks) print the same findings.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ..errors import InputError
from .manifest import Manifest

OK, WARNING, BLOCKER = "ok", "warning", "blocker"
LEVELS = (OK, WARNING, BLOCKER)
#: AWS keeps at least this many executions of an account unreserved (PutFunctionConcurrency
#: refuses a reservation that would leave fewer).
MIN_UNRESERVED = 100
#: The concurrency limit of a new account (raised on request, Service Quotas).
NEW_ACCOUNT_CONCURRENCY = 10
#: moto's own variable for the account's concurrency quota (it enforces none when unset).
EMULATOR_QUOTA_ENV = "MOTO_LAMBDA_CONCURRENCY_QUOTA"
#: Services a deployment uses (the region must offer them).
SERVICES = ("lambda", "sns", "sqs", "s3")
_MISSING = {"NotFound", "NoSuchBucket", "404", "ResourceNotFoundException", "NonExistentQueue",
            "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_DENIED = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "403", "UnauthorizedOperation"}
_NAMED = 3  # missing resources named in one finding before "and N more"


@dataclass(frozen=True)
class Finding:
    check: str
    level: str
    message: str

    def line(self) -> str:
        return f"{self.level:<7} {self.check}: {self.message}"


@dataclass
class Report:
    """The findings of one check; `status` is the worst level among them."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        return max((f.level for f in self.findings), key=LEVELS.index, default=OK)

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.level == BLOCKER]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status,
                "findings": [{"check": f.check, "level": f.level, "message": f.message} for f in self.findings]}

    def raise_for_blockers(self, what: str = "doctor") -> None:
        """InputError (one line, naming the first blocker and how many there are) if any."""
        blockers = self.blockers
        if blockers:
            more = f" (and {len(blockers) - 1} more blocker{'s' if len(blockers) > 2 else ''})" if len(blockers) > 1 else ""
            raise InputError(f"{what}: {blockers[0].check}: {blockers[0].message}{more}")

    def add(self, check: str, level: str, message: str) -> None:
        self.findings.append(Finding(check, level, message))


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or str(
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return type(exc).__name__


def _reason(exc: BaseException) -> str:
    """One line: the AWS error code and message, or botocore's sentence."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        message = " ".join(str(err.get("Message") or "").split())
        if message.startswith("<") or len(message) > 200:  # an HTML page (e.g. moto's 404)
            message = ""
        return f"{_code(exc)}{': ' + message if message else ''}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _client(manifest: Manifest, service: str, pool: int = 10) -> Any:
    from botocore.config import Config

    from .clients import client

    # Short timeouts and one retry: a doctor that hangs on an unreachable endpoint says nothing.
    return client(manifest, service, Config(connect_timeout=5, read_timeout=20, max_pool_connections=pool,
                                            retries={"max_attempts": 2, "mode": "standard"}))


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


# --------------------------------------------------------------------------- checks

def _credentials(manifest: Manifest, report: Report) -> bool:
    where = f"the emulator at {manifest.endpoint}" if manifest.emulated else f"region {manifest.region}"
    try:
        me = _client(manifest, "sts").get_caller_identity()
    except NoCredentialsError:
        report.add("credentials", BLOCKER, "no AWS credentials found (aws configure, AWS_PROFILE, or "
                                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        return False
    except ClientError as exc:
        report.add("credentials", BLOCKER, f"STS refused them at {where}: {_reason(exc)}")
        return False
    except BotoCoreError as exc:
        report.add("credentials", BLOCKER, f"cannot reach STS at {where}: {_reason(exc)}")
        return False
    report.add("credentials", OK, f"{me.get('Arn')} (account {me.get('Account')}) at {where}")
    return True


def _region(manifest: Manifest, report: Report) -> None:
    if manifest.emulated:
        report.add("region", OK, f"{manifest.region} (emulated at {manifest.endpoint})")
        return
    import boto3

    session = boto3.session.Session()
    lacking = [s for s in SERVICES if manifest.region not in session.get_available_regions(s)]
    if lacking:
        report.add("region", WARNING, f"{manifest.region} is not a region this boto3 knows for "
                                      f"{', '.join(lacking)} (a typo, or a region newer than boto3?)")
    else:
        report.add("region", OK, f"{manifest.region} offers {', '.join(SERVICES)}")


def _slots(manifest: Manifest, workers: int | None, report: Report) -> None:
    if workers is None:
        return
    if workers > manifest.max_workers:
        report.add("slots", BLOCKER, f"a run on {workers} workers needs {workers} worker slots, the deployment "
                                     f"has {manifest.max_workers}: deploy with max_workers >= {workers}")
    else:
        report.add("slots", OK, f"{workers} of the deployment's {manifest.max_workers} worker slots")


def _unimplemented(exc: ClientError) -> bool:
    """moto's answer to an API it does not implement (a 404 page / "Not yet implemented")."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or "not yet implemented" in str(exc).lower()


def _reservation(lam: Any, function: str | None) -> int | None:
    """The function's reserved concurrency, None if it has none (or does not exist yet)."""
    if not function:
        return None
    try:
        return lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    except ClientError as exc:
        if _code(exc) in _MISSING:
            return None
        raise


def _emulated_account(lam: Any) -> tuple[int, int] | None:
    """(limit, unreserved) as moto models the account, None when it models no quota."""
    quota = os.environ.get(EMULATOR_QUOTA_ENV)
    if not quota:
        return None
    try:
        limit = int(quota)
    except ValueError:
        raise InputError(f"{EMULATOR_QUOTA_ENV}={quota!r} is not an integer") from None
    reserved = 0
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page.get("Functions", []):
            reserved += _reservation(lam, fn["FunctionName"]) or 0
    return limit, limit - reserved


def _concurrency(manifest: Manifest, workers: int | None, reserved_planned: int | None,
                 report: Report) -> None:
    lam = _client(manifest, "lambda")
    try:
        try:
            limits = lam.get_account_settings()["AccountLimit"]
            limit, unreserved = int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
            source = "account"
        except ClientError as exc:
            if not (manifest.emulated and _unimplemented(exc)):
                raise
            modelled = _emulated_account(lam)
            if modelled is None:
                report.add("concurrency", OK, f"the emulator models no Lambda concurrency quota (moto does not "
                                              f"implement GetAccountSettings; set {EMULATOR_QUOTA_ENV} to model one)")
                return
            (limit, unreserved), source = modelled, f"emulated account, {EMULATOR_QUOTA_ENV}"
        reserved = _reservation(lam, manifest.function_name)
    except ClientError as exc:
        level = WARNING if _code(exc) in _DENIED else BLOCKER
        report.add("concurrency", level, f"cannot read the Lambda account settings: {_reason(exc)}")
        return
    except BotoCoreError as exc:
        report.add("concurrency", BLOCKER, f"cannot reach Lambda: {_reason(exc)}")
        return
    new = " (a new account's limit)" if limit <= NEW_ACCOUNT_CONCURRENCY else ""
    account = f"account limit {limit}{new}, unreserved {unreserved} ({source})"
    available = reserved if reserved is not None else unreserved
    pool = (f"function {manifest.function_name} has {reserved} reserved" if reserved is not None
            else "the functions share the unreserved pool")
    raise_it = ("raise the function's reserved_concurrency" if reserved is not None else
                "request a higher Lambda 'Concurrent executions' quota (Service Quotas)")
    if workers is not None and workers > available:
        report.add("concurrency", BLOCKER, f"a run on {workers} workers needs {workers} concurrent executions, "
                                           f"{available} are available ({account}; {pool}): {raise_it}, or run on "
                                           f"at most {available} workers")
    elif workers is None and manifest.max_workers > available:
        report.add("concurrency", WARNING, f"runs on more than {available} workers would be throttled and stall: "
                                           f"the deployment has {manifest.max_workers} worker slots ({account}; "
                                           f"{pool}): {raise_it}")
    else:
        need = f"a run on {workers} workers" if workers is not None else f"{manifest.max_workers} worker slots"
        report.add("concurrency", OK, f"{need} fit: {available} available ({account}; {pool})")
    if reserved_planned is not None and reserved_planned >= 0:
        free = unreserved + (reserved or 0)  # the function's current reservation is given back first
        if free - reserved_planned < MIN_UNRESERVED:
            report.add("reserved_concurrency", BLOCKER,
                       f"reserved_concurrency = {reserved_planned} would leave the account {free - reserved_planned} "
                       f"unreserved executions, AWS keeps at least {MIN_UNRESERVED} ({account}): lower it (-1: no "
                       f"reservation) or request a higher quota")
        elif reserved_planned < manifest.max_workers:
            report.add("reserved_concurrency", WARNING,
                       f"reserved_concurrency = {reserved_planned} is below max_workers = {manifest.max_workers}: "
                       f"runs on more than {reserved_planned} workers would be throttled and stall")
        else:
            report.add("reserved_concurrency", OK, f"{reserved_planned} reserved, leaving "
                                                   f"{free - reserved_planned} unreserved ({account})")


def _function(manifest: Manifest, memory_needed_mb: float | None, report: Report) -> None:
    if not manifest.function_name:
        report.add("function", BLOCKER if memory_needed_mb else WARNING,
                   "the deployment has no worker function (no package was deployed: fsd deploy builds one)")
        return
    try:
        config = _client(manifest, "lambda").get_function_configuration(FunctionName=manifest.function_name)
    except ClientError as exc:
        if _code(exc) in _MISSING:
            report.add("function", BLOCKER, f"{manifest.function_name} does not exist: re-apply (fsd deploy)")
        else:
            report.add("function", WARNING if _code(exc) in _DENIED else BLOCKER,
                       f"cannot read {manifest.function_name}: {_reason(exc)}")
        return
    except BotoCoreError as exc:
        report.add("function", BLOCKER, f"cannot reach Lambda: {_reason(exc)}")
        return
    memory, state = int(config.get("MemorySize") or 128), config.get("State") or "Active"
    arch = "/".join(config.get("Architectures") or ["x86_64"])
    summary = (f"{manifest.function_name}: {config.get('Runtime')} on {arch}, {memory} MB, timeout "
               f"{config.get('Timeout')} s, code {_mb(int(config.get('CodeSize') or 0))} zipped, {state}")
    if state == "Failed" or config.get("LastUpdateStatus") == "Failed":
        report.add("function", BLOCKER, f"{summary}: {config.get('StateReason') or config.get('LastUpdateStatusReason')}")
    elif state != "Active":
        report.add("function", WARNING, f"{summary} (not Active yet: {config.get('StateReason') or 'pending'})")
    else:
        report.add("function", OK, summary)
    if memory_needed_mb is not None:
        if memory < memory_needed_mb:
            report.add("memory", BLOCKER, f"a worker needs about {memory_needed_mb:.0f} MB, {manifest.function_name} "
                                          f"has {memory} MB: deploy with memory_mb >= {_round_up_mb(memory_needed_mb)} "
                                          f"(up to 10240), or use more workers")
        else:
            report.add("memory", OK, f"a worker needs about {memory_needed_mb:.0f} MB of the function's {memory} MB")


def _round_up_mb(mb: float) -> int:
    return min(10240, max(128, -(-int(mb + 0.999) // 64) * 64))


def _package(package: Any, report: Report) -> None:
    from .package import LAMBDA_MAX_DIRECT_ZIP, LAMBDA_MAX_UNZIPPED, check_limits

    if isinstance(package, (str, os.PathLike)):
        path = Path(package)
        try:
            with zipfile.ZipFile(path) as archive:
                unzipped = sum(i.file_size for i in archive.infolist())
        except (OSError, zipfile.BadZipFile) as exc:
            report.add("package", BLOCKER, f"{path}: not a readable zip ({exc})")
            return
        zipped, name = path.stat().st_size, str(path)
    else:
        unzipped, zipped, name = package.unzipped_bytes, package.zipped_bytes, package.path
    try:
        check_limits(unzipped, zipped)  # its one note (over 50 MB: through S3) is said below
    except InputError as exc:
        report.add("package", BLOCKER, f"{name}: {exc}")
        return
    through_s3 = " (over the direct-upload limit: deployed through S3)" if zipped > LAMBDA_MAX_DIRECT_ZIP else ""
    report.add("package", OK, f"{name}: {_mb(unzipped)} unzipped of Lambda's {_mb(LAMBDA_MAX_UNZIPPED)}, "
                              f"{_mb(zipped)} zipped{through_s3}")


def _each(items: Sequence[str], probe: Callable[[str], None], pool: int) -> tuple[list[int], list[tuple[int, str]]]:
    """Run `probe` on every item (in parallel): (indices missing, [(index, reason) unreadable])."""
    missing: list[int] = []
    unreadable: list[tuple[int, str]] = []

    def one(index: int) -> None:
        try:
            probe(items[index])
        except ClientError as exc:
            if _code(exc) in _MISSING:
                missing.append(index)
            else:
                unreadable.append((index, _reason(exc)))
        except BotoCoreError as exc:
            unreadable.append((index, _reason(exc)))

    with ThreadPoolExecutor(max_workers=max(1, min(pool, len(items)))) as executor:
        list(executor.map(one, range(len(items))))
    return sorted(missing), sorted(unreadable)


def _named(indices: list[int], items: Sequence[str], label: Callable[[int], str]) -> str:
    shown = ", ".join(f"{label(i)} ({items[i]})" for i in indices[:_NAMED])
    return shown + (f" and {len(indices) - _NAMED} more" if len(indices) > _NAMED else "")


def _resources(manifest: Manifest, report: Report) -> None:
    pool = 16
    kinds: list[tuple[str, Sequence[str], Callable[[str], None], Callable[[int], str]]] = []
    if manifest.topic_arns:
        sns = _client(manifest, "sns", pool)
        kinds.append(("topics", manifest.topic_arns, lambda arn: sns.get_topic_attributes(TopicArn=arn),
                      lambda i: f"topic {i}"))
    if manifest.queue_urls:
        sqs = _client(manifest, "sqs", pool)
        kinds.append(("queues", manifest.queue_urls,
                      lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]),
                      lambda i: f"slot {i}"))
    if manifest.bucket:
        s3 = _client(manifest, "s3")
        kinds.append(("bucket", [manifest.bucket], lambda name: s3.head_bucket(Bucket=name), lambda i: "bucket"))
    else:
        report.add("bucket", BLOCKER, "the deployment names no bucket (every cloud run stages its inputs there)")
    if not manifest.queue_urls:
        report.add("queues", OK, "no queue channel in this deployment (enable_queue = false): object runs only")
    for check, items, probe, label in kinds:
        missing, unreadable = _each(items, probe, pool)
        if missing:
            report.add(check, BLOCKER, f"{len(missing)} of {len(items)} missing: {_named(missing, items, label)}: "
                                       f"re-apply (fsd deploy) or fix the manifest ({manifest.source})")
        elif unreadable:
            index, reason = unreadable[0]
            report.add(check, WARNING, f"cannot check {len(unreadable)} of {len(items)}: {label(index)} "
                                       f"({items[index]}): {reason}")
        elif check == "bucket":
            report.add(check, OK, f"{manifest.bucket} exists")
        elif len(items) == 1:
            report.add(check, OK, f"its one {check.rstrip('s')} exists")
        else:
            report.add(check, OK, f"all {len(items)} {check} exist")


# --------------------------------------------------------------------------- entry point

def check(manifest: Manifest, workers: int | None = None, memory_needed_mb: float | None = None, *,
          package: Any = None, reserved_concurrency: int | None = None, resources: bool = True) -> Report:
    """Check that `manifest`'s deployment can carry a run (of `workers` workers, each needing
    `memory_needed_mb`, when given). Never raises for what it finds: a Report whose
    `raise_for_blockers()` turns blockers into one InputError line.

    `package` (a zip path or a PackageInfo) adds the package's size check;
    `reserved_concurrency` (the planned Terraform variable) and `resources=False` are how
    `fsd deploy` checks an account before its plan, when the resources may not exist yet.
    """
    report = Report()
    if _credentials(manifest, report):
        _region(manifest, report)
        _slots(manifest, workers, report)
        _concurrency(manifest, workers, reserved_concurrency, report)
        if resources:
            _function(manifest, memory_needed_mb, report)
            _resources(manifest, report)
    else:
        _slots(manifest, workers, report)
    if package is not None:
        _package(package, report)
    return report
