"""`fsd run`: one query through the chosen variant, with progress on stderr and a summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..units import si
from .common import (
    MAX_WORKERS,
    check_output_file,
    float_range,
    int_range,
    print_json,
    say,
    starts_line,
)
from .progress import Display

VARIANTS = ("serial", "local", "queue", "object")
#: Largest --timeout in seconds (Lambda itself stops a worker after 900 s).
MAX_TIMEOUT = 3600.0


def register(sub: argparse._SubParsersAction) -> None:
    from ..plan.partition import METHODS  # light: numpy/scipy only

    p = sub.add_parser("run", help="run inference through the serial, local, queue or object variant",
                       description="Plan (partition, cached), stage the shards and inputs, launch the "
                       "workers, follow them, gather and record one query. Progress goes to stderr.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, metavar="MODEL",
                       help="model directory (model.json + layer files): planned, split and staged for this run")
    which.add_argument("--deployed", metavar="NAME",
                       help="a deployed model (fsd model deploy; fsd model deployed lists them): only the "
                       "inputs are staged; --workers defaults to its P")
    p.add_argument("--inputs", required=True, type=Path, metavar="FILE",
                   help="input images: Graph Challenge sparse TSV (row, column, value; 1-based)")
    p.add_argument("--variant", required=True, choices=VARIANTS,
                   help="serial (the kernel in this process), local (worker processes, file channel), "
                   "queue (SNS -> SQS) or object (S3)")
    p.add_argument("--workers", type=int_range(1, MAX_WORKERS, " (the largest deployment)"), default=None,
                   help=f"number of workers P, 1..min(N, {MAX_WORKERS}) (default 4, or the deployed model's; "
                   f"serial uses 1)")
    p.add_argument("--partition", metavar="METHOD", choices=METHODS,
                   help="block, random, metis or hypergraph (default hypergraph, or metis when "
                   "mtkahypar does not import)")
    layout = p.add_mutually_exclusive_group()
    layout.add_argument("--per-layer", dest="per_layer", action="store_true", default=None,
                        help="partition every layer separately (the default)")
    layout.add_argument("--shared", dest="per_layer", action="store_false",
                        help="one partition shared by all layers")
    p.add_argument("--branching", type=int_range(1, MAX_WORKERS), default=2,
                   help="launch tree branching factor (default 2)")
    p.add_argument("--timeout", type=float_range(0.0, MAX_TIMEOUT), default=60.0, metavar="S",
                   help=f"seconds a worker waits for a message, 0 < S <= {MAX_TIMEOUT:g} (default 60)")
    p.add_argument("--categories-out", metavar="F", type=Path,
                   help="write the categories (1-based row ids) here")
    p.add_argument("--verify", action="store_true", help="check equality with the serial kernel")
    p.add_argument("--check", metavar="TRUTH", type=Path,
                   help="compare categories with a truth file (PASSED/FAILED; exit 1 if FAILED)")
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="deployment manifest JSON (default: the active one, else the local emulator, "
                   "started on demand)")
    p.add_argument("--launcher", choices=("lambda",), default=None,
                   help="queue/object on the local emulator: start the workers through its Lambda API "
                   "(Invoke, as on AWS; the emulated Lambda runs them) instead of as local processes "
                   "under the worker role. On AWS workers are always Lambda invocations")
    p.add_argument("--json", action="store_true",
                   help="print the run as one JSON document (human text goes to stderr)")
    p.set_defaults(handler=cmd_run)


def run_progress(display: Display, method: str | None, workers: int, deployed: bool = False):
    """A coordinator progress callback showing the run's phases and its layer bar."""
    seen = {"phase": None}

    def update(snap) -> None:
        if snap.phase != seen["phase"]:
            seen["phase"] = snap.phase
            if snap.phase == "starting":
                display.phase(f"run {snap.run_id}: starting")
            elif snap.phase == "planning":
                display.phase(f"partitioning ({method or 'default'}, {workers} workers; cached)")
            elif snap.phase == "staging":
                display.phase("staging the inputs (the shards are deployed)" if deployed
                              else "staging the shards and inputs")
            elif snap.phase == "running":
                display.phase(f"run {snap.run_id}", total=snap.layers)
            elif snap.phase == "computing":
                display.phase(f"run {snap.run_id}: serial kernel")
            elif snap.phase == "verifying":
                display.phase("verifying against the serial kernel")
        if snap.phase == "running":
            started = sum(1 for d in snap.workers_done if d >= 0)
            text = (f"run {snap.run_id}" if started == len(snap.workers_done)
                    else f"run {snap.run_id}: {started}/{len(snap.workers_done)} workers started")
            display.advance(snap.layers_done, snap.layers, "layers", text)

    return update


def read_manifest_arg(path: Path | None) -> dict | None:
    """The --manifest file as a JSON object; InputError (one line) for anything else."""
    import json

    from ..errors import InputError

    if path is None:
        return None
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"--manifest {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"--manifest {path}: not a JSON manifest (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--manifest {path}: not a JSON manifest ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise InputError(f"--manifest {path}: not a JSON manifest (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise InputError(f"--manifest {path}: a manifest is a JSON object, found {type(doc).__name__}")
    return doc


def cmd_run(args: argparse.Namespace) -> int:
    from ..model.network import SparseDNN, read_inputs
    from ..model.tsv import read_categories, write_categories
    from ..plan.partition import check_available, default_method
    from ..run.coordinator import RunConfig, check_config, run
    from .progress import emulator_notice, emulator_running, local_deployment

    check_output_file(args.categories_out, "--categories-out")
    manifest = read_manifest_arg(args.manifest)
    deployment = _deployment(args)
    workers = args.workers or (deployment.workers if deployment else 4)
    config = RunConfig(str(args.model) if args.model else None, str(args.inputs), args.variant, workers,
                       args.partition, args.per_layer, args.branching, args.timeout, verify=args.verify,
                       manifest=manifest, deployed=args.deployed, launcher=args.launcher)
    check_config(config)
    truth = read_categories(args.check) if args.check else None
    cloud = args.variant in ("queue", "object") and manifest is None
    was_running = emulator_running() if cloud else True
    with Display(live=None) as display:
        try:
            if deployment is None:
                display.phase(f"loading {args.model}")
                config.model = SparseDNN.load(args.model)
            display.phase(f"reading {args.inputs}")
            config.inputs = read_inputs(args.inputs, (deployment or config.model).neurons)
            check_config(config, deployment or config.model, config.inputs)
            if deployment is not None:
                config.partition = deployment.method
            elif args.variant != "serial":
                config.partition = (check_available(args.partition) if args.partition
                                    else default_method(notice=display.say))
            if cloud:  # the deployment first: starting the emulator takes a while and says so
                config.manifest = local_deployment(workers, args.variant, display)
            result = run(config, run_progress(display, config.partition, workers, deployed=deployment is not None))
        finally:
            notice = emulator_notice(was_running, emulator_running()) if cloud else None
            display.stop()
            if notice:
                say(notice)
    if args.categories_out and result.status == "ok":
        write_categories(args.categories_out, result.categories)
    passed = None
    if truth is not None and result.status == "ok":
        import numpy as np

        passed = len(truth) == len(result.categories) and bool(np.array_equal(truth, result.categories))
    if args.json:
        doc = result.summary()
        if passed is not None:
            doc["check"] = passed
        print_json(doc)
    else:
        print_summary(result)
    if result.status != "ok":
        say(f"fsd: error: run {result.run_id} failed: {result.error}")
        return 1
    if passed is not None:
        verdict = "PASSED" if passed else f"FAILED: {len(result.categories)} categories, truth has {len(truth)}"
        if args.json:
            say(verdict)
        else:
            print(verdict)
        return 0 if passed else 1
    return 0


def _deployment(args: argparse.Namespace):
    """The deployed model of --deployed (checked against --variant and --workers), or None."""
    if args.deployed is None:
        return None
    from ..errors import InputError
    from ..run.serving import find

    deployment = find(args.deployed)
    if args.partition is not None or args.per_layer is not None:
        raise InputError(f"--deployed {deployment.name}: its plan is deployed ({deployment.method}); "
                         f"--partition and --per-layer/--shared do not apply")
    deployment.check_query(args.variant, args.workers)
    return deployment


def timing_line(result) -> str:
    """Total time, where it went, and the rate with the phase it covers (so the two agree)."""
    timings = dict(result.timings or {})
    parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in timings.items())
    text = f"total {result.seconds:.2f} s" + (f" ({parts} s)" if parts else "")
    if result.status != "ok" or not result.edges_per_second:
        return text
    if "run" in timings:
        return text + f"; {si(result.edges_per_second, 'edges/s')} in the run phase ({timings['run']:.2f} s)"
    return text + f"; {si(result.edges_per_second, 'edges/s')}"


def print_summary(result) -> None:
    print(f"run {result.run_id}: {result.variant}, {result.workers} worker(s), {result.status}")
    print(f"  time        {timing_line(result)}")
    if result.variant != "serial":
        print(f"  sent        {si(result.bytes_sent, 'B')} in {result.messages:,} messages")
        print(f"  staged      {si(result.staged_bytes, 'B')}"
              + (f" (inputs only: deployed model {result.deployed})" if result.deployed else ""))
        starts = starts_line(result.worker_reports)
        if starts:
            print(f"  workers     {starts}")
        if result.requests:
            reqs = ", ".join(f"{k} {v:,}" for k, v in sorted(result.requests.items()))
            print(f"  requests    {reqs}")
        if result.stage_requests:
            reqs = ", ".join(f"{k} {v:,}" for k, v in sorted(result.stage_requests.items()))
            print(f"  stage       {reqs} (staging, reports, the watch; priced in the cost)")
    if result.cost_usd is not None:
        unpriced = (result.workers_cost or {}).get("unpriced") or 0
        print(f"  cost        {'at least ' if unpriced else ''}${result.cost_usd:.6f}"
              + (f" ({unpriced} worker(s) reported no times: what Lambda bills for them is not in it)"
                 if unpriced else ""))
    print(f"  categories  {len(result.categories)}")
    if result.verified is not None:
        print(f"  verified    {'equal to the serial kernel' if result.verified else 'DIFFERENT from the serial kernel'}")
