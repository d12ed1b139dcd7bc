"""`fsd recommend` (which variant, how many workers, what it costs and how long it takes) and
`fsd calibrate` (fit the model to measured runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..units import table
from .common import check_output_file, float_range, int_range, positive_int, print_json

#: Deepest network `fsd recommend` estimates without a model: the model groups the layers past
#: the activation profile's last knot by place value, so time and memory do not grow with L;
#: the bound only keeps numbers sane (the Graph Challenge's deepest has 1,920 layers).
MAX_LAYERS = 100_000_000
#: Most workers `fsd recommend` considers (Lambda concurrency quotas are of this order).
MAX_RECOMMEND_WORKERS = 100_000


def register(sub: argparse._SubParsersAction) -> None:
    from ..cost.latency import LAMBDA_MAX_MEMORY_MB, LAMBDA_MIN_MEMORY_MB
    from ..cost.recommend import DEFAULT_FACTOR

    memory = int_range(LAMBDA_MIN_MEMORY_MB, LAMBDA_MAX_MEMORY_MB, " (Lambda's maximum)")
    p = sub.add_parser("recommend", help="the cost-latency frontier of serial, queue and object, and a pick",
                       description="Price the serial, queue and object variants at every worker count of the "
                       "range, every Lambda memory size and both architectures; show the cost-latency frontier "
                       "and pick by a stated rule: the cheapest within --latency-target, else the cheapest "
                       "within --latency-factor times the fastest (docs/cost-model.md).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="MODEL", help="model directory (sizes read from model.json)")
    src.add_argument("--neurons", type=positive_int, help="N (with --layers): a RadiX-Net, no model needed")
    p.add_argument("--layers", type=int_range(1, MAX_LAYERS, " (the deepest network recommend estimates)"),
                   help=f"L, with --neurons (at most {MAX_LAYERS:,})")
    p.add_argument("--batch", type=positive_int, required=True, help="inputs per query (B)")
    p.add_argument("--workers", default="2-256", metavar="P|A-B",
                   help=f"P or a range A-B (default 2-256, at most {MAX_RECOMMEND_WORKERS:,}); every P of the "
                   "range is priced")
    p.add_argument("--queries-per-hour", type=float_range(0.0, 1e9), metavar="Q",
                   help="compare cost per day with EC2 servers (0 < Q <= 1e9)")
    p.add_argument("--burst-size", type=int_range(1, 10**6), default=1,
                   help="queries per burst, idle gaps between (default 1)")
    p.add_argument("--latency-target", type=float_range(0.0, 1e6), metavar="S",
                   help="pick the cheapest choice within S seconds per query (0 < S <= 1e6)")
    p.add_argument("--latency-factor", type=float_range(1.0, 1e6, lo_open=False), default=DEFAULT_FACTOR,
                   metavar="F", help=f"without a target, pick the cheapest choice within F times the fastest "
                   f"choice's latency (default {DEFAULT_FACTOR:g}, 1 <= F <= 1e6)")
    p.add_argument("--memory", type=memory, metavar="MB",
                   help=f"Lambda memory in MB, {LAMBDA_MIN_MEMORY_MB}..{LAMBDA_MAX_MEMORY_MB} "
                   "(default: every size of the ladder 128..10,240 is considered)")
    p.add_argument("--arch", default="any", choices=("x86_64", "arm64", "any"),
                   help="Lambda architecture priced (default any: both are on the frontier)")
    p.add_argument("--storage", default="standard", choices=("standard", "express"),
                   help="object channel storage: S3 Standard or S3 Express One Zone (default standard)")
    staged = p.add_mutually_exclusive_group()
    staged.add_argument("--deployed", dest="deployed", action="store_true", default=True,
                        help="price a query on a deployed model (fsd model deploy): it stages none of the shards "
                        "(the default)")
    staged.add_argument("--staged", dest="deployed", action="store_false",
                        help="price a query that stages every worker's shard first (fsd run without --deployed): "
                        "a PUT per worker, the shards' bytes and the upload's time")
    p.add_argument("--warm", type=float_range(0.0, 1.0, lo_open=False), metavar="F",
                   help="fraction of workers that start warm, their shard in memory: no cold start, INIT or shard "
                   "fetch (0 <= F <= 1; default 0: every worker cold)")
    p.add_argument("--method", default="hypergraph", choices=("block", "random", "metis", "hypergraph"),
                   help="partition the volume estimate assumes (default hypergraph)")
    p.add_argument("--density", type=float_range(0.0, 1.0), metavar="D",
                   help="constant activation density, every row alive and distinct, 0 < D <= 1 (default: the "
                   "measured MNIST profile, rows merging as they die or saturate)")
    p.add_argument("--profile", default="mnist", choices=("mnist", "paper"),
                   help="activation profile: mnist (this system: distinct rows, measured) or paper (the paper's "
                   "implementation: every live row)")
    p.add_argument("--prices", metavar="FILE", help="JSON price file (see docs/cost-model.md)")
    p.add_argument("--region", help="price region (needs --prices unless us-east-1)")
    p.add_argument("--params", metavar="FILE", help="JSON file of model parameters (default: the fit saved by "
                   "fsd calibrate --store, else the built-in values)")
    p.add_argument("--default-params", action="store_true",
                   help="use the built-in parameters even if fsd calibrate --store saved a fit")
    p.add_argument("--exact", action="store_true",
                   help="load the model, build the plan and run the workers' framing for one P: exact volumes, "
                   "messages and bytes, and the activation profile measured on the inputs")
    p.add_argument("--inputs", metavar="FILE", help="with --exact: the query's inputs (TSV; default: synthetic "
                   "inputs of the batch size)")
    p.add_argument("--table", action="store_true", help="also print every P of the range: cost and latency of "
                   "queue and object (their cheapest feasible memory and architecture)")
    p.add_argument("--json", action="store_true",
                   help="print the recommendation as one JSON document")
    p.set_defaults(handler=run_recommend)

    c = sub.add_parser("calibrate", help="fit the cost model's parameters to measured runs and save them",
                       description="Fit the kernel rates and per-layer overhead to the per-layer compute times of "
                       "the run store's runs (their models and inputs give each layer's work), or any knob to the "
                       "total seconds of a JSON list of runs ({variant, neurons, layers, batch, workers, "
                       "memory_mb, seconds}); report each run's error. --store saves the fit where fsd "
                       "recommend reads it.")
    c.add_argument("runs", nargs="?", help="JSON file with measured runs (their total seconds)")
    c.add_argument("--store", nargs="?", const="", metavar="DB",
                   help="read runs from the run store instead (default database if DB omitted) and save the fit "
                   "where fsd recommend reads it")
    c.add_argument("--limit", type=int_range(1, 10**6), default=200,
                   help="most recent runs read from the store (default 200)")
    c.add_argument("--memory", type=memory, default=1769, metavar="MB",
                   help="Lambda MB of store runs that do not record it (default 1769)")
    c.add_argument("--cores", type=int_range(1, 4096), metavar="N",
                   help="cores the local runs shared (default: this machine's usable CPUs)")
    c.add_argument("--statistic", default="min", choices=("min", "median", "mean"),
                   help="a layer's compute seconds over its workers (default min: the least disturbed worker on "
                   "a shared machine)")
    c.add_argument("--aws", action="store_true",
                   help="the store's queue/object runs ran on AWS: also fit --aws-fit to their total seconds")
    c.add_argument("--aws-fit", default="bandwidth_bytes_per_s,sqs_request_s,s3_request_s,startup_s",
                   help="comma-separated knobs fitted to AWS runs (with --aws)")
    c.add_argument("--params", metavar="FILE", help="starting parameters (JSON)")
    c.add_argument("--fit", default=None,
                   help="comma-separated knobs to fit (store: layer_overhead_s,sparse_madds_per_s,"
                   "dense_madds_per_s,piece_overhead_s; JSON runs: madds_per_s)")
    c.add_argument("--out", metavar="FILE", help="also write the fitted parameters here (for recommend --params)")
    c.add_argument("--no-save", action="store_true", help="with --store: report the fit without saving it")
    c.add_argument("--json", action="store_true", help="print the fit as one JSON document")
    c.set_defaults(handler=run_calibrate)


def run_recommend(args: argparse.Namespace) -> int:
    from ..cost import recommend as rec
    from ..cost.params import load_params
    from ..cost.prices import load_prices
    from ..cost.serving import Serving
    from ..cost.workload import Workload

    prices = load_prices(args.prices, args.region)
    params, source = load_params(args.params, use_stored=not args.default_params)
    lo, hi = rec.parse_workers(args.workers)
    if hi > MAX_RECOMMEND_WORKERS:
        raise InputError(f"--workers {args.workers}: at most {MAX_RECOMMEND_WORKERS:,} workers")
    if args.inputs and not args.exact:
        raise InputError("--inputs is for --exact")
    comm_for = None
    if args.model:
        if args.exact:
            w, comm_for = _exact(args, lo, hi, params)
        else:
            w = rec.workload_from_model(args.model, args.batch, args.density, args.profile)
    else:
        if args.layers is None:
            raise InputError("--neurons needs --layers")
        if args.exact:
            raise InputError("--exact needs --model")
        w = Workload.build(args.neurons, args.layers, args.batch, None, args.density, args.profile)
    out = rec.recommend(w, (lo, hi), params, prices, args.memory, args.latency_target, args.method,
                        args.queries_per_hour, args.burst_size, None if args.arch == "any" else args.arch, comm_for,
                        args.storage, args.latency_factor, source, Serving(args.deployed, args.warm))
    if args.json:
        print_json(out)
        return 0
    _print_text(out, args.table)
    return 0


def _print_text(out: dict, with_table: bool) -> None:
    rows = []
    for r in out["rows"]:
        note = r["why_not"] or ("" if r["within_rule"] else "outside the rule's latency limit")
        rows.append([r["variant"], r["workers"], r["memory_mb"], r["arch"], f"${r['cost_usd']:.4g}",
                     f"{r['latency_s']:.2f}", f"{r['latency_p99_s']:.2f}", f"{r['memory_needed_mb']:,.0f}",
                     "yes" if r["feasible"] else "no", note])
    print(table(["variant", "workers", "memory MB", "arch", "$/query", "latency s", "p99 s", "MB needed", "feasible",
                 "note"], rows))
    print(f"recommended: {out['recommended'] or 'none'} -- {out['reason']}")
    print(f"  assumes: {out['serving']['text']}")
    pick = out.get("pick")
    if pick:
        items = sorted(pick["breakdown"].items(), key=lambda kv: -kv[1])
        print("  cost: " + ", ".join(f"{k} ${v:.3g}" for k, v in items if v > 0))
        print("  time: " + ", ".join(f"{k} {v:.3g} s" for k, v in pick["time_terms"].items()))
        print(f"  memory per worker: {pick['memory_needed_mb']:,.0f} MB needed of {pick['memory_mb']:,} MB")
    front = out.get("frontier") or []
    if front:
        print(f"frontier ({len(front)} choices no other beats on both cost and latency):")
        print(table(["latency s", "$/query", "variant", "workers", "memory MB", "arch"],
                    [[f"{f['latency_s']:.2f}", f"${f['cost_usd']:.4g}", f["variant"], f["workers"], f["memory_mb"],
                      f["arch"]] for f in front]))
    x = out["crossover"]
    if x["workers"]:
        print(f"queue/object cross-over at {x['workers']} workers ({x['below']} cheaper below, {x['above']} above)")
    elif x.get("cheaper_everywhere"):
        print(f"no queue/object cross-over: {x['cheaper_everywhere']} is cheaper for "
              f"{x['range'][0]}-{x['range'][1]} workers")
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
    if with_table:
        t = out["per_workers"]
        rows = []
        for i, p in enumerate(t["workers"]):
            cells = [p]
            for v in ("queue", "object"):
                c = t.get(v)
                cells += ([f"${c['cost_usd'][i]:.4g}", f"{c['latency_s'][i]:.2f}",
                           f"{c['memory_mb'][i]}/{c['arch'][i]}" + ("" if c["feasible"][i] else " (infeasible)")]
                          if c else ["-", "-", "-"])
            rows.append(cells)
        print(table(["workers", "queue $/query", "queue s", "queue MB/arch", "object $/query", "object s",
                     "object MB/arch"], rows))


def _exact(args: argparse.Namespace, lo: int, hi: int, params):
    """The model's workload with its measured profile, and its plan's exact volumes and frames."""
    if lo != hi:
        raise InputError("--exact builds a plan for one worker count: give --workers P")
    try:
        from ..plan.communication import make_plan  # noqa: F401
    except ImportError:
        raise InputError("--exact needs fsd_core.plan, which this installation lacks") from None
    import numpy as np

    from ..cost.workload import CommProfile, Workload, measure_profile
    from ..model.network import SparseDNN, read_inputs
    from ..model.radixnet import synthetic_inputs
    from ..run.coordinator import cached_plan
    from .progress import Display

    with Display() as display:
        display.phase(f"loading {args.model}")
        model = SparseDNN.load(args.model)
        if args.inputs:
            inputs = read_inputs(args.inputs, model.neurons)
            if inputs.shape[0] != args.batch:
                raise InputError(f"--inputs {args.inputs} has {inputs.shape[0]:,} rows, --batch says {args.batch:,}")
        else:
            inputs = synthetic_inputs(model.neurons, args.batch, seed=0)
        display.phase("measuring the activation profile")
        profile = measure_profile(model, inputs)
        w = Workload.build(model.neurons, model.layers, args.batch, [m.nnz for m in model.weights],
                           measured=profile, grouped=False)
        comm = None
        if lo >= 2:
            display.phase(f"partitioning: {args.method} for {lo} workers")
            plan = cached_plan(model, lo, args.method, None, 0)
            comm = CommProfile.from_plan(model, plan, args.method)
            display.phase("framing every message (the workers, in threads)")
            comm = _with_frames(model, plan, inputs, comm)
    return w, (lambda ps: comm if comm is not None and np.array_equal(ps, comm.workers) else
               _refuse(ps, lo))


def _with_frames(model, plan, inputs, comm):
    from ..channels.queue import attr_bytes_for, frame_limit
    from ..run.predict import run_frames

    shards = plan.shards(model)
    p = len(shards)
    comm = comm.with_frames("object", run_frames(model, shards, inputs, "object", None))
    return comm.with_frames("queue", run_frames(model, shards, inputs, "queue", frame_limit(p)), attr_bytes_for)


def _refuse(ps, p: int):
    raise InputError(f"--exact measured {p} workers only")


def run_calibrate(args: argparse.Namespace) -> int:
    from ..cost.calibrate import COMPUTE, fit_compute, fit_totals, merge
    from ..cost.params import KNOBS, load_params, stored_params_path
    from ..fileio import atomic_write_text

    if (args.runs is None) == (args.store is None):
        raise InputError("give a JSON file of runs or --store, not both or neither")
    check_output_file(args.out, "--out")
    params, source = load_params(args.params, use_stored=False)
    fit = [f.strip() for f in args.fit.split(",") if f.strip()] if args.fit else None
    for k in fit or []:
        if k not in KNOBS:
            raise InputError(f"--fit: unknown knob {k!r} (known: {', '.join(KNOBS)})")
    reports = []
    if args.store is not None:
        runs = _store_runs(args.store or None, args.limit)
        fitted, report = fit_compute(runs, params, args.cores, fit or COMPUTE, statistic=args.statistic)
        reports.append(report)
        if args.aws:
            aws_fit = [f.strip() for f in args.aws_fit.split(",") if f.strip()]
            records = [_aws_record(r, args.memory) for r in runs if r.get("variant") in ("queue", "object")
                       and str(r.get("status")) == "ok"]
            if not records:
                raise InputError("--aws: the run store has no finished queue or object runs")
            fitted, report = fit_totals(records, fitted, aws_fit)
            reports.append(report)
    else:
        try:
            records = json.loads(Path(args.runs).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{args.runs}: not a readable JSON list of runs ({exc})") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InputError(f"{args.runs}: must be a JSON list of run objects")
        fitted, report = fit_totals(records, params, fit or ["madds_per_s"])
        reports.append(report)
    report = merge(reports)
    doc = {"params": fitted.as_dict(), "fitted": report["fitted"], "report": report, "start": source}
    saved = []
    if args.store is not None and not args.no_save:
        path = stored_params_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
        saved.append(str(path))
    if args.out:
        atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
        saved.append(str(args.out))
    doc["saved"] = saved
    if args.json:
        print_json(doc)
        return 0
    for k, v in report["fitted"].items():
        print(f"{k:24s} {v:.6g}")
    for k in report["kept"]:
        print(f"{k:24s} kept ({'no signal in these runs'})")
    if report["clamped"]:
        print(f"clamped to plausible bounds: {', '.join(report['clamped'])}")
    rows = [[r["run_id"], r["variant"], r["workers"], f"{r['measured_s']:.4g}", f"{r['predicted_s']:.4g}",
             f"{r['relative_error']:+.1%}"] for r in report["runs"]]
    print(table(["run", "variant", "workers", "measured s", "predicted s", "error"], rows))
    for s in report["skipped"]:
        print(f"skipped {s['run_id']}: {s['why']}")
    print(f"{report['records']} run(s); worst relative error {report['worst_relative_error']:.1%}, median "
          f"{report['median_relative_error']:.1%} ({report['target']})")
    print(f"saved to {', '.join(saved)}" if saved else "not saved (give --out FILE, or --store without --no-save)")
    return 0


def _store_runs(path: str | None, limit: int) -> list[dict]:
    """The store's most recent runs with their per-worker per-layer records."""
    from ..run.records import RunStore

    store = RunStore(path)
    runs = [store.get(r["run_id"]) for r in store.list(limit)]
    runs = [r for r in runs if r]
    if not runs:
        raise InputError(f"the run store ({store.path}) has no runs to calibrate from")
    for r in runs:
        r["layers_detail"] = r.get("layers_detail") or []
    return runs


def _aws_record(run: dict, memory_mb: int) -> dict:
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    return {"run_id": run["run_id"], "variant": run["variant"], "neurons": run["neurons"], "layers": run["layers"],
            "batch": run["batch"], "workers": run["workers"], "seconds": run["seconds"],
            "memory_mb": extra.get("memory_mb", memory_mb), "method": run.get("partition") or "hypergraph"}
