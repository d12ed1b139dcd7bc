"""`fsd run`: one query through the chosen variant, with a progress bar and a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..units import si
from .common import positive_int, print_json

VARIANTS = ("serial", "local", "queue", "object")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run inference through the serial, local, queue or object variant")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--inputs", required=True, type=Path)
    p.add_argument("--variant", required=True, choices=VARIANTS)
    p.add_argument("--workers", type=positive_int, default=4)
    p.add_argument("--partition", metavar="METHOD", help="block, random, metis or hypergraph (default: the plan's)")
    layout = p.add_mutually_exclusive_group()
    layout.add_argument("--per-layer", dest="per_layer", action="store_true", default=None,
                        help="partition every layer separately (the default)")
    layout.add_argument("--shared", dest="per_layer", action="store_false",
                        help="one partition shared by all layers")
    p.add_argument("--branching", type=positive_int, default=2, help="launch tree branching factor")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a worker waits for a message")
    p.add_argument("--categories-out", metavar="F", type=Path)
    p.add_argument("--verify", action="store_true", help="check equality with the serial kernel")
    p.add_argument("--check", metavar="TRUTH", type=Path, help="compare categories with a truth file (PASSED/FAILED)")
    p.add_argument("--manifest", type=Path, help="deployment manifest (default: the active one, or a local emulator)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_run)


def progress_printer(enabled: bool):
    """A progress callback drawing a bar over layers on stderr (None when disabled)."""
    if not enabled:
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("layers"), TimeElapsedColumn(), transient=True,
                   console=__import__("rich.console").console.Console(stderr=True))
    task = {}

    def update(snap) -> None:
        if not task:
            bar.start()
            task["id"] = bar.add_task(f"run {snap.run_id}", total=snap.layers)
        bar.update(task["id"], completed=max(0, snap.layers_done),
                   description=f"run {snap.run_id} {snap.phase}")

    def stop() -> None:
        if task:
            bar.stop()

    return update, stop


def cmd_run(args: argparse.Namespace) -> int:
    import json

    from ..errors import InputError
    from ..model.tsv import read_categories, write_categories
    from ..run.coordinator import RunConfig, run

    manifest = None
    if args.manifest:
        try:
            manifest = json.loads(args.manifest.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{args.manifest}: cannot read the manifest: {exc}") from None
    config = RunConfig(str(args.model), str(args.inputs), args.variant, args.workers, args.partition,
                       args.per_layer, args.branching, args.timeout, verify=args.verify, manifest=manifest)
    truth = read_categories(args.check) if args.check else None
    update, stop = progress_printer(not args.json and sys.stderr.isatty())
    try:
        result = run(config, update)
    finally:
        stop()
    if args.categories_out and result.status == "ok":
        write_categories(args.categories_out, result.categories)
    if args.json:
        print_json(result.summary())
    else:
        print_summary(result)
    if result.status != "ok":
        sys.stderr.write(f"fsd: error: run {result.run_id} failed: {result.error}\n")
        return 1
    if truth is not None:
        import numpy as np

        passed = len(truth) == len(result.categories) and bool(np.array_equal(truth, result.categories))
        print("PASSED" if passed else f"FAILED: {len(result.categories)} categories, truth has {len(truth)}")
        return 0 if passed else 1
    return 0


def print_summary(result) -> None:
    print(f"run {result.run_id}: {result.variant}, {result.workers} worker(s), {result.status}")
    print(f"  time        {result.seconds:.3f} s   ({si(result.edges_per_second, 'edges/s')})")
    if result.variant != "serial":
        print(f"  sent        {si(result.bytes_sent, 'B')} in {result.messages:,} messages")
        if result.requests:
            reqs = ", ".join(f"{k} {v:,}" for k, v in sorted(result.requests.items()))
            print(f"  requests    {reqs}")
    if result.cost_usd is not None:
        print(f"  cost        ${result.cost_usd:.6f}")
    print(f"  categories  {len(result.categories)}")
    if result.verified is not None:
        print(f"  verified    {'equal to the serial kernel' if result.verified else 'DIFFERENT from the serial kernel'}")
