"""`fsd doctor`: credentials, region, Lambda concurrency, the function's memory, the package's
size and the deployment's resources, one line per finding (ok / warning / blocker)."""

from __future__ import annotations

import argparse

from .common import MAX_WORKERS, int_range, positive_int, print_json, say


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from ..cost.model import LAMBDA_MAX_MEMORY_MB, LAMBDA_MIN_MEMORY_MB

    doctor = sub.add_parser(
        "doctor", help="check the deployment can carry a run: credentials, quotas, limits, resources",
        description="One line per finding (ok, warning or blocker); exit code 2 if any is a blocker. Checks: "
        "credentials and region (STS GetCallerIdentity), the account's Lambda concurrency and its unreserved part "
        "against the run's workers or the deployment's max_workers (new accounts start at 10), the function's "
        "memory against --memory or what a worker of --model needs, the package's size against Lambda's limits, and that the manifest's topics, "
        "queues, bucket and function exist.")
    doctor.add_argument("--manifest", metavar="FILE",
                        help="deployment manifest to check (default: the active deployment, as runs use)")
    doctor.add_argument("--workers", metavar="P", type=int_range(1, MAX_WORKERS, " (Terraform's max_workers)"),
                        help=f"the run's worker count P, 1..{MAX_WORKERS}: checked against the worker slots and "
                        "the Lambda concurrency (default: the deployment's max_workers, a warning if over)")
    need = doctor.add_mutually_exclusive_group()
    need.add_argument("--memory", metavar="MB",
                      type=int_range(LAMBDA_MIN_MEMORY_MB, LAMBDA_MAX_MEMORY_MB, " (Lambda's maximum)"),
                      help=f"memory a worker needs in MB ({LAMBDA_MIN_MEMORY_MB}..{LAMBDA_MAX_MEMORY_MB}), "
                      "checked against the function's memory")
    need.add_argument("--model", metavar="DIR",
                      help="a model directory: the function's memory is checked against what one of --workers "
                      "workers needs for a query of --batch inputs (the cost model's estimate, as a run checks "
                      "it before it starts; only model.json is read)")
    doctor.add_argument("--batch", metavar="B", type=positive_int,
                        help="inputs per query, with --model")
    doctor.add_argument("--package", metavar="ZIP",
                        help="a worker package zip (fsd package) to check against Lambda's size limits")
    doctor.add_argument("--json", action="store_true",
                        help='print {"status", "findings": [{"check", "level", "message"}]} as JSON')
    doctor.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..aws import doctor
    from ..aws.manifest import Manifest, active_manifest_path
    from ..errors import InputError
    from .run import read_manifest_arg

    if args.manifest:
        path = Path(args.manifest)
        manifest = Manifest.from_dict(read_manifest_arg(path), str(path))
    else:
        path = active_manifest_path()
        if not path.exists():
            raise InputError("no deployment: run `fsd deploy` (AWS) or `fsd local up`, or pass --manifest FILE")
        manifest = Manifest.load(path)
    if args.package is not None and not Path(args.package).is_file():
        raise InputError(f"--package {args.package}: no such file")
    report = doctor.check(manifest, workers=args.workers, memory_needed_mb=_memory_needed(args), package=args.package)
    if args.json:
        print_json(report.to_dict())
    else:
        for finding in report.findings:
            print(finding.line())
    blockers = report.blockers
    if blockers:
        first = blockers[0]
        more = f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""
        say(f"fsd: error: {len(blockers)} blocker{'s' if len(blockers) > 1 else ''}: {first.check}: "
            f"{first.message}{more}")
        return 2
    return 0


def _memory_needed(args: argparse.Namespace) -> float | None:
    """--memory as given, or a worker's need for --model at --workers and --batch."""
    from ..errors import InputError

    if args.model is None:
        if args.batch is not None:
            raise InputError("--batch is the query's size for --model: pass --model DIR too")
        return args.memory
    if args.workers is None or args.batch is None:
        raise InputError("--model needs --workers P and --batch B: a worker's need depends on both")
    from ..cost.recommend import workload_from_model
    from ..run.preflight import workload_need_mb

    return workload_need_mb(workload_from_model(args.model, args.batch), args.workers)
