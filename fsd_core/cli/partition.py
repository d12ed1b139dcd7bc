"""`fsd partition`: partition a model for P workers and print the plan's communication metrics."""

from __future__ import annotations

import argparse

from ..units import si, table
from .common import check_output_file, positive_int, print_json, seed_int
from .progress import Display

CONTRACT_KEYS = ("method", "workers", "volume_rows", "messages", "max_send_rows", "imbalance", "seconds")


def register(sub: argparse._SubParsersAction) -> None:
    from ..plan.partition import METHODS  # light: numpy/scipy only

    p = sub.add_parser("partition", help="partition a model for P workers and report communication volume",
                       description="Assign every neuron of every layer to a worker and print the resulting "
                                   "communication plan's metrics (rows moved, messages, imbalance).")
    p.add_argument("--model", required=True, metavar="MODEL", help="model directory")
    p.add_argument("--workers", required=True, type=positive_int, help="number of workers P (1..N)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="partitioner (default: hypergraph, or metis without mtkahypar)")
    p.add_argument("--per-layer", dest="per_layer", action="store_true", default=None,
                   help="partition every layer given the previous layer's owners (the default)")
    p.add_argument("--shared", dest="per_layer", action="store_false",
                   help="one partition shared by all layers")
    p.add_argument("--compare", action="store_true", help="run every method side by side")
    p.add_argument("--json", action="store_true", help="print JSON (a list with --compare)")
    p.add_argument("--out", metavar="PLAN.npz", help="write the plan (PLAN.npz, owners int32 (L+1, N)); not with --compare")
    p.add_argument("--seed", type=seed_int, default=0, help="seed for random/metis/hypergraph (default 0)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="also report the activation bound volume_rows * BATCH")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..model.network import SparseDNN
    from ..plan.communication import make_plan
    from ..plan.partition import (
        DEFAULT_PER_LAYER,
        METHODS,
        check_available,
        check_workers,
        default_method,
    )

    if args.compare and args.out:
        raise InputError("--out writes one plan; it cannot be combined with --compare")
    if args.compare and args.method:
        raise InputError("--compare runs every method; drop --method")
    check_output_file(args.out, "--out")
    with Display() as display:
        if args.compare:
            methods = METHODS
            if default_method() != "hypergraph":
                methods = tuple(m for m in METHODS if m != "hypergraph")
                display.say("fsd: notice: --compare skips hypergraph: mtkahypar does not import "
                            "(pip install mtkahypar)")
        else:
            methods = (check_available(args.method) if args.method else default_method(notice=display.say),)
        display.phase(f"loading {args.model}")
        model = SparseDNN.load(args.model)
        check_workers(model, args.workers)
        per_layer = DEFAULT_PER_LAYER if args.per_layer is None else args.per_layer
        results = []
        for method in methods:
            display.phase(f"partitioning: {method} for {args.workers} workers")
            plan = make_plan(model, args.workers, method, per_layer=per_layer, seed=args.seed)
            display.phase(f"measuring the {method} plan")
            m = plan.metrics(model)
            if args.batch:
                m["batch"] = args.batch
                m["volume_activations"] = m["volume_rows"] * args.batch
            results.append(m)
            if args.out:
                plan.save(args.out)
    if args.json:
        out = [{k: v for k, v in m.items() if not k.endswith("_per_layer")} for m in results]
        print_json(out if args.compare else out[0])
        return 0
    base = results[0]["volume_rows"] if args.compare else None
    headers = ["method", "layout", "workers", "volume rows", "messages", "max send", "max recv", "imbalance",
               "seconds"] + (["vs " + methods[0]] if base is not None else [])
    rows = []
    for m in results:
        row = [m["method"], "per-layer" if m["per_layer"] else "shared", m["workers"], f"{m['volume_rows']:,}",
               f"{m['messages']:,}", f"{m['max_send_rows']:,}", f"{m['max_recv_rows']:,}",
               f"{100 * m['imbalance']:.2f}%", f"{m['seconds']:.2f}"]
        if base is not None:
            row.append(f"{m['volume_rows'] / base:.3f}x" if base else "-")
        rows.append(row)
    print(table(headers, rows))
    if args.batch:
        for m in results:
            print(f"{m['method']}: at most {si(m['volume_activations'])} activations for a batch of {args.batch}")
    if args.out:
        print(f"plan written to {args.out}")
    return 0
