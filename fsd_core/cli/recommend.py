"""`fsd recommend` (which variant, how many workers, what it costs) and `fsd calibrate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cost.model import parse_workers
from ..errors import InputError
from ..units import table
from .common import check_output_file, float_range, int_range, positive_int, print_json

#: Deepest network `fsd recommend` estimates: the cost model keeps a few arrays per layer and
#: takes ~14 ms per estimate at this depth (the Graph Challenge's deepest has 1,920 layers).
MAX_LAYERS = 100_000
#: Most workers `fsd recommend` considers (Lambda concurrency quotas are of this order).
MAX_RECOMMEND_WORKERS = 100_000


def register(sub: argparse._SubParsersAction) -> None:
    from ..cost.model import LAMBDA_MAX_MEMORY_MB, LAMBDA_MIN_MEMORY_MB

    memory = int_range(LAMBDA_MIN_MEMORY_MB, LAMBDA_MAX_MEMORY_MB, " (Lambda's maximum)")
    p = sub.add_parser("recommend", help="rank serial, queue and object by cost per query",
                       description="Rank the serial, queue and object variants by predicted cost per "
                       "query under a latency target and Lambda's limits (docs/cost-model.md).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="MODEL", help="model directory (sizes read from model.json)")
    src.add_argument("--neurons", type=positive_int, help="N (with --layers): a RadiX-Net, no model needed")
    p.add_argument("--layers", type=int_range(1, MAX_LAYERS, " (the deepest network recommend estimates)"),
                   help=f"L, with --neurons (at most {MAX_LAYERS:,})")
    p.add_argument("--batch", type=positive_int, required=True, help="inputs per query (B)")
    p.add_argument("--workers", default="2-256", metavar="P|A-B",
                   help=f"P or a range A-B (default 2-256, at most {MAX_RECOMMEND_WORKERS:,})")
    p.add_argument("--queries-per-hour", type=float_range(0.0, 1e9), metavar="Q",
                   help="compare cost per day with EC2 servers (0 < Q <= 1e9)")
    p.add_argument("--burst-size", type=int_range(1, 10**6), default=1,
                   help="queries per burst, idle gaps between (default 1)")
    p.add_argument("--latency-target", type=float_range(0.0, 1e6), metavar="S",
                   help="seconds per query (0 < S <= 1e6)")
    p.add_argument("--memory", type=memory, metavar="MB",
                   help=f"Lambda memory in MB, {LAMBDA_MIN_MEMORY_MB}..{LAMBDA_MAX_MEMORY_MB} "
                   "(default: smallest that fits, >= 1769)")
    p.add_argument("--method", default="hypergraph", choices=("block", "random", "metis", "hypergraph"),
                   help="partition the volume estimate assumes (default hypergraph)")
    p.add_argument("--density", type=float_range(0.0, 1.0), metavar="D",
                   help="constant activation density, 0 < D <= 1 (default: measured profile)")
    p.add_argument("--prices", metavar="FILE", help="JSON price file (see docs/cost-model.md)")
    p.add_argument("--region", help="price region (needs --prices unless us-east-1)")
    p.add_argument("--arch", default="x86_64", choices=("x86_64", "arm64"),
                   help="Lambda architecture priced (default x86_64)")
    p.add_argument("--params", metavar="FILE", help="JSON file of model parameters (e.g. from fsd calibrate)")
    p.add_argument("--exact", action="store_true", help="build the plan (loads the model; one P only)")
    p.add_argument("--json", action="store_true",
                   help="print the recommendation as one JSON document")
    p.set_defaults(handler=run_recommend)

    c = sub.add_parser("calibrate", help="fit the cost model's time parameters to measured runs",
                       description="Fit latency and throughput parameters by least squares to measured "
                       "runs: a JSON list of {variant, neurons, layers, batch, workers, memory_mb, seconds, "
                       "requests?, bytes_sent?}.")
    c.add_argument("runs", nargs="?", help="JSON file with the measured runs")
    c.add_argument("--store", nargs="?", const="", metavar="DB",
                   help="read runs from the run store instead (default database if DB omitted)")
    c.add_argument("--limit", type=int_range(1, 10**6), default=200,
                   help="most recent runs read from the store (default 200)")
    c.add_argument("--memory", type=memory, default=1769, metavar="MB",
                   help="Lambda MB of store runs that do not record it (default 1769)")
    c.add_argument("--params", metavar="FILE", help="starting parameters (JSON)")
    c.add_argument("--fit", default="startup_s,madds_per_s,queue_bytes_per_s,object_bytes_per_s",
                   help="comma-separated parameters to fit")
    c.add_argument("--out", metavar="FILE", help="write the fitted parameters here (for recommend --params)")
    c.add_argument("--json", action="store_true", help="print the fit as one JSON document")
    c.set_defaults(handler=run_calibrate)


def load_params(path: str | None):
    from ..cost.model import Params

    if path is None:
        return Params()
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON parameter file ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a parameter file must be a JSON object")
    return Params().updated(doc.get("params", doc), where=path)


def run_recommend(args: argparse.Namespace) -> int:
    from ..cost import model as cost
    from ..cost.prices import load_prices

    prices = load_prices(args.prices, args.region)
    params = load_params(args.params)
    lo, hi = parse_workers(args.workers)
    if hi > MAX_RECOMMEND_WORKERS:
        raise InputError(f"--workers {args.workers}: at most {MAX_RECOMMEND_WORKERS:,} workers")
    comm_for = None
    if args.model:
        w = cost.workload_from_model(args.model, args.batch, args.density)
        if w.layers > MAX_LAYERS:
            raise InputError(f"--model {args.model}: {w.layers:,} layers; recommend estimates at most "
                             f"{MAX_LAYERS:,}")
        if args.exact:
            comm_for = _exact_comm(args, lo, hi)
    else:
        if args.layers is None:
            raise InputError("--neurons needs --layers")
        if args.exact:
            raise InputError("--exact needs --model")
        w = cost.Workload.build(args.neurons, args.layers, args.batch, None, args.density)
    out = cost.recommend(w, (lo, hi), params, prices, args.memory, args.latency_target, args.method,
                         args.queries_per_hour, args.burst_size, args.arch, comm_for)
    if args.json:
        print_json(out)
        return 0
    rows = [[r["variant"], r["workers"], r["memory_mb"], f"${r['cost_usd']:.5f}", f"{r['latency_s']:.1f}",
             "yes" if r["feasible"] else "no", r["why_not"] or ""] for r in out["rows"]]
    print(table(["variant", "workers", "memory MB", "$/query", "latency s", "feasible", "why not"], rows))
    print(f"recommended: {out['recommended'] or 'none'} -- {out['reason']}")
    x = out["crossover"]
    if x["workers"]:
        print(f"queue/object cross-over at {x['workers']} workers ({x['below']} cheaper below, {x['above']} above)")
    elif x.get("cheaper_everywhere"):
        print(f"no queue/object cross-over: {x['cheaper_everywhere']} is cheaper for {x['range'][0]}-{x['range'][1]} workers")
    s = out.get("sporadic")
    if s:
        print(f"at {s['queries_per_hour']:g} queries/hour: serverless ${s['serverless_usd_per_day']:.2f}/day", end="")
        if s.get("server"):
            be = s["break_even_queries_per_hour_vs_always_on"]
            print(f", always-on {s['server']['instance']} ${s['always_on_usd_per_day']:.2f}/day, job-scoped "
                  f"${s['job_scoped_usd_per_day']:.2f}/day; break-even vs always-on: "
                  f"{be:,.0f} queries/hour; cheapest: {s['cheapest']}")
        else:
            print(f" ({s['note']})")
    return 0


def _exact_comm(args: argparse.Namespace, lo: int, hi: int):
    if lo != hi:
        raise InputError("--exact builds a plan for one worker count: give --workers P")
    try:
        from ..plan.communication import make_plan
    except ImportError:
        raise InputError("--exact needs fsd_core.plan, which this installation lacks") from None
    from ..cost.model import CommProfile
    from ..model.network import SparseDNN
    from .progress import Display

    with Display() as display:
        display.phase(f"loading {args.model}")
        model = SparseDNN.load(args.model)
        display.phase(f"partitioning: {args.method} for {lo} workers")
        plan = make_plan(model, lo, args.method)
        display.phase("measuring the plan")
        profile = CommProfile.from_plan(model, plan, args.method)
    return lambda p: profile


def run_calibrate(args: argparse.Namespace) -> int:
    from ..cost.model import calibrate
    from ..fileio import atomic_write_text

    if (args.runs is None) == (args.store is None):
        raise InputError("give a JSON file of runs or --store, not both or neither")
    check_output_file(args.out, "--out")
    if args.store is not None:
        records = _store_records(args.store or None, args.limit, args.memory)
    else:
        try:
            records = json.loads(Path(args.runs).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{args.runs}: not a readable JSON list of runs ({exc})") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InputError(f"{args.runs}: must be a JSON list of run objects")
    fit = [f.strip() for f in args.fit.split(",") if f.strip()]
    fitted, report = calibrate(records, load_params(args.params), fit)
    doc = {"params": {k: getattr(fitted, k) for k in fit}, "report": report}
    if args.out:
        atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    if args.json:
        print_json(doc)
    else:
        for k in fit:
            print(f"{k:24s} {getattr(fitted, k):.6g}")
        worst = max((abs(r) for r in report["relative_residuals"]), default=0.0)
        print(f"{report['records']} run(s); worst relative error {worst:.1%}")
    return 0


def _store_records(path: str | None, limit: int, memory_mb: int) -> list[dict]:
    """Successful serial/queue/object runs of the run store, as calibration records."""
    from ..run.records import RunStore

    out = []
    for run in RunStore(path).list(limit):
        extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
        if run.get("variant") not in ("serial", "queue", "object") or not run.get("seconds"):
            continue
        if str(run.get("status")) not in ("ok", "succeeded", "success", "done"):
            continue
        if not all(run.get(k) for k in ("neurons", "layers", "batch", "workers")):
            continue
        out.append({"variant": run["variant"], "neurons": run["neurons"], "layers": run["layers"],
                    "batch": run["batch"], "workers": run["workers"], "seconds": run["seconds"],
                    "memory_mb": extra.get("memory_mb", memory_mb), "requests": run.get("requests") or {},
                    "bytes_sent": run.get("bytes_sent") or 0})
    if not out:
        raise InputError("the run store has no finished serial, queue or object runs to calibrate from")
    return out
