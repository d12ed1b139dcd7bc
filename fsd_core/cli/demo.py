"""`fsd demo`: the main job on the local default, end to end.

Generates (or reuses from the cache) a RadiX-Net model and synthetic inputs, asks the cost
model for a recommendation, then runs the query through every variant (serial, local, and
queue and object over the local AWS emulator), verifying each against the serial kernel.
"""

from __future__ import annotations

import argparse

from ..units import si, table
from .common import positive_int

DEMO_VARIANTS = ("serial", "local", "queue", "object")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end-to-end demo on the local default (model, recommendation, every variant)")
    p.add_argument("--neurons", type=positive_int, default=1024)
    p.add_argument("--layers", type=positive_int, default=120)
    p.add_argument("--inputs", type=positive_int, default=500, help="number of synthetic input images")
    p.add_argument("--workers", type=positive_int, default=4)
    p.add_argument("--variants", default=",".join(DEMO_VARIANTS),
                   help=f"comma-separated subset of {','.join(DEMO_VARIANTS)}")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..model.network import SparseDNN
    from ..model.radixnet import cached_model, synthetic_inputs
    from ..run.coordinator import RunConfig, run

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(DEMO_VARIANTS))
    if unknown:
        raise InputError(f"--variants: unknown variant(s) {', '.join(unknown)}")
    print(f"[1/3] model: RadiX-Net {args.neurons} neurons x {args.layers} layers", flush=True)
    path = cached_model(args.neurons, args.layers, seed=0)
    model = SparseDNN.load(path)
    inputs = synthetic_inputs(args.neurons, args.inputs, seed=0)
    print(f"      {path} ({model.nnz:,} edges); {args.inputs} synthetic inputs "
          f"({inputs.nnz / args.inputs:.0f} on-pixels each)", flush=True)
    print("[2/3] recommendation", flush=True)
    _print_recommendation(path, args.inputs, args.workers)
    print(f"[3/3] running {', '.join(variants)} with {args.workers} workers, verified against the serial kernel",
          flush=True)
    rows, failed = [], False
    for variant in variants:
        print(f"      {variant} ...", flush=True)
        result = run(RunConfig(str(path), None, variant, 1 if variant == "serial" else args.workers,
                               verify=True, model=model, inputs=inputs))
        failed |= result.status != "ok"
        rows.append([variant, result.workers, f"{result.seconds:.2f}", si(result.edges_per_second),
                     len(result.categories), si(result.bytes_sent, "B") if variant != "serial" else "-",
                     sum(result.requests.values()),
                     "-" if result.cost_usd is None else f"${result.cost_usd:.6f}",
                     "PASS" if result.verified else f"FAIL: {result.error}"])
    print()
    print(table(["variant", "workers", "seconds", "edges/s", "categories", "sent", "requests", "cost",
                 "verified"], rows))
    print("\nThe runs are recorded (see `fsd tui`). The local AWS emulator keeps running for the next "
          "run: `fsd local status`, `fsd local down`.")
    return 1 if failed else 0


def _print_recommendation(path, batch: int, workers: int) -> None:
    """The cost model's pick for this model, batch and worker count, with its reason."""
    from ..cost.model import recommend, workload_from_model

    rec = recommend(workload_from_model(path, batch), (workers, workers))
    for row in rec["rows"]:
        mark = "->" if row["variant"] == rec["recommended"] else "  "
        print(f"      {mark} {row['variant']:6s} ${row['cost_usd']:.6f}/query, ~{row['latency_s']:.1f} s on Lambda")
    print(f"      recommended: {rec['recommended']} ({rec['reason']})")
