"""`fsd demo`: the main job on the local default, end to end.

Generates (or reuses from the cache) a RadiX-Net model and synthetic inputs, asks the cost
model for a recommendation, then runs the query through every variant (serial, local, and
queue and object over the local AWS emulator), verifying each against the serial kernel.
"""

from __future__ import annotations

import argparse

from ..units import si, table
from .common import MAX_WORKERS, int_range, positive_int, say
from .progress import Display

DEMO_VARIANTS = ("serial", "local", "queue", "object")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end-to-end demo on the local default (model, recommendation, every variant)",
                       description="Generate (or reuse) a RadiX-Net model and synthetic inputs, print the cost "
                       "model's recommendation, then run every variant and verify each against the serial "
                       "kernel. queue and object start the local AWS emulator if it is not running.")
    p.add_argument("--neurons", type=positive_int, default=1024,
                   help="neurons per layer N = 16 * 2^m (default 1024)")
    p.add_argument("--layers", type=positive_int, default=120,
                   help="number of layers L (default 120; limited by this machine's memory)")
    p.add_argument("--inputs", type=positive_int, default=500,
                   help="number of synthetic input images (default 500)")
    p.add_argument("--workers", type=int_range(1, MAX_WORKERS, " (the largest deployment)"), default=4,
                   help="workers P of the distributed variants (default 4)")
    p.add_argument("--variants", default=",".join(DEMO_VARIANTS),
                   help=f"comma-separated subset of {','.join(DEMO_VARIANTS)} (default all)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..model.network import SparseDNN
    from ..model.radixnet import _check_neurons, cached_model, synthetic_inputs
    from ..plan.partition import default_method
    from ..run.coordinator import RunConfig, run
    from .model import check_inputs_size, check_model_size
    from .progress import emulator_notice, emulator_running, local_deployment
    from .run import run_progress

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(DEMO_VARIANTS))
    if unknown or not variants:
        raise InputError(f"--variants: unknown variant(s) {', '.join(unknown)}" if unknown
                         else "--variants: name at least one variant")
    _check_neurons(args.neurons)
    if args.workers > args.neurons:
        raise InputError(f"--workers must be between 1 and {args.neurons}, got {args.workers}")
    check_model_size(args.neurons, args.layers)
    check_inputs_size(args.neurons, args.inputs, "--inputs")
    cloud = [v for v in variants if v in ("queue", "object")]
    was_running = emulator_running() if cloud else True
    with Display() as display:
        try:
            print(f"[1/3] model: RadiX-Net {args.neurons} neurons x {args.layers} layers", flush=True)
            display.phase(f"model: RadiX-Net {args.neurons} x {args.layers} (generated once, then cached)")
            path = cached_model(args.neurons, args.layers, seed=0)
            model = SparseDNN.load(path)
            display.phase(f"inputs: drawing {args.inputs} synthetic images")
            inputs = synthetic_inputs(args.neurons, args.inputs, seed=0)
            print(f"      {path} ({model.nnz:,} edges); {args.inputs} synthetic inputs "
                  f"({inputs.nnz / args.inputs:.0f} on-pixels each)", flush=True)
            print("[2/3] recommendation", flush=True)
            display.phase("recommendation")
            _print_recommendation(path, args.inputs, args.workers)
            print(f"[3/3] running {', '.join(variants)} with {args.workers} workers, verified against the "
                  f"serial kernel", flush=True)
            method = default_method(notice=display.say) if variants != ["serial"] else None
            manifest = local_deployment(args.workers, cloud[0], display) if cloud else None
            rows, failed = [], False
            for variant in variants:
                print(f"      {variant} ...", flush=True)
                workers = 1 if variant == "serial" else args.workers
                result = run(RunConfig(str(path), None, variant, workers, method, verify=True, model=model,
                                       inputs=inputs, manifest=manifest if variant in cloud else None),
                             run_progress(display, method, workers))
                failed |= result.status != "ok"
                rows.append(_row(variant, result))
                if result.status in ("interrupted", "cancelled"):  # (Ctrl-C stops the demo, not just one run)
                    say(f"fsd demo: {result.error}; the variants after {variant} are not run")
                    break
        finally:
            notice = emulator_notice(was_running, emulator_running()) if cloud else None
            display.stop()
    print()
    print(table(["variant", "workers", "total s", "run s", "edges/s (run)", "categories", "sent", "requests",
                 "cost", "verified"], rows))
    print("\nThe runs are recorded (see `fsd tui`); `total s` is the whole run (plan, stage, run, clean-up), "
          "`run s` the phase the rate covers.")
    if notice:
        say(notice)
    return 1 if failed else 0


def _row(variant: str, result) -> list:
    run_s = result.timings.get("run", result.timings.get("compute", result.seconds))
    return [variant, result.workers, f"{result.seconds:.2f}", f"{run_s:.2f}", si(result.edges_per_second),
            len(result.categories), si(result.bytes_sent, "B") if variant != "serial" else "-",
            sum(result.requests.values()),
            "-" if result.cost_usd is None else f"${result.cost_usd:.6f}",
            "PASS" if result.verified else f"FAIL: {result.error}"]


def _print_recommendation(path, batch: int, workers: int) -> None:
    """The cost model's pick for this model, batch and worker count, with its reason."""
    from ..cost.model import recommend, workload_from_model

    rec = recommend(workload_from_model(path, batch), (workers, workers))
    for row in rec["rows"]:
        mark = "->" if row["variant"] == rec["recommended"] else "  "
        print(f"      {mark} {row['variant']:6s} ${row['cost_usd']:.6f}/query, ~{row['latency_s']:.1f} s on Lambda")
    print(f"      recommended: {rec['recommended']} ({rec['reason']})")
