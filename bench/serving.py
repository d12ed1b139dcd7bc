"""Serving: a deployed model queried repeatedly, against a run that stages the whole model.

    .venv/bin/python bench/serving.py                                  # N=16384, L=120, 5,000 inputs, P=8
    .venv/bin/python bench/serving.py --neurons 1024 --layers 24 --inputs 500 --workers 4 --queries 2

For each variant (local, and object over the local emulator with IAM enforced), in this process:
1. `per-run staging`: `fsd run --model` (plan cached beforehand): the coordinator splits the
   model and stages every shard with the inputs; new worker processes (cold);
2. `deploy`: `fsd model deploy` (the shards stored once under a content-addressed id);
3. `deployed, first`: the first query on the deployed model, on a fresh warm pool (cold
   starts: every worker reads its shard from the model's store);
4. `deployed, warm`: --queries more queries on the same pool: warm workers keep their shards,
   so each query stages and reads only its inputs.
Per row: wall seconds of the query (coordinator call to result), its run phase (launch to
result), the time outside it (staging, launch, clean-up: what serving saves), bytes staged by
the coordinator, bytes the workers read from the stage and the model store, the workers'
requests (stage reads included), cold/warm workers. Every query is checked against the serial
kernel's categories (exit 1 if any differs). Prints a Markdown table (docs/serving.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from fsd_core.engine.pool import WorkerPool  # noqa: E402
from fsd_core.kernel import serial  # noqa: E402
from fsd_core.model.radixnet import radixnet, synthetic_inputs  # noqa: E402
from fsd_core.plan.partition import default_method  # noqa: E402
from fsd_core.run.coordinator import RunConfig, RunResult, run  # noqa: E402
from fsd_core.run.plans import cached_plan  # noqa: E402
from fsd_core.run.serving import deploy_model  # noqa: E402


def _row(name: str, wall: float, r: RunResult) -> dict:
    reports = [w for w in r.worker_reports if w.get("start")]
    return {"name": name, "wall": wall, "run": r.timings.get("run", 0.0), "outside": wall - r.timings.get("run", 0.0),
            "staged": r.staged_bytes, "read": sum(w.get("loaded_bytes") or 0 for w in reports),
            "requests": sum(r.requests.values()), "cold": sum(1 for w in reports if w["start"] == "cold"),
            "warm": sum(1 for w in reports if w["start"] == "warm"), "stage": r.timings.get("stage", 0.0)}


def _query(config: RunConfig, ref: np.ndarray) -> tuple[float, RunResult]:
    t = time.perf_counter()
    r = run(config)
    wall = time.perf_counter() - t
    if r.status != "ok" or not np.array_equal(r.categories, ref):
        sys.exit(f"{config.variant}: query failed or differs from the serial kernel: {r.error}")
    return wall, r


def bench_variant(variant: str, model, inputs, ref: np.ndarray, args, manifest: dict | None) -> list[dict]:
    P, method = args.workers, args.partition
    common = dict(record=False, inputs=inputs, timeout=600, manifest=manifest, predict=False)
    rows = []
    wall, r = _query(RunConfig(None, None, variant, P, method, model=model, **common), ref)
    rows.append(_row("per-run staging (cold)", wall, r))
    t = time.perf_counter()
    out = deploy_model(model, None, P, variant, method, None, 0, manifest, name=f"bench-{variant}")
    deploy = {"name": "deploy (once)", "wall": time.perf_counter() - t, "staged": out.staged_bytes,
              "requests": sum(out.requests.values())}
    with WorkerPool() as pool:
        config = RunConfig(None, None, variant, P, deployed=f"bench-{variant}", pool=pool, **common)
        wall, r = _query(config, ref)
        rows.append(_row("deployed, first query (cold)", wall, r))
        warm = [_row("deployed, warm query", *_query(config, ref)) for _ in range(args.queries)]
    best = min(warm, key=lambda w: w["wall"])
    best["name"] = f"deployed, warm query (best of {len(warm)}; median wall {statistics.median(w['wall'] for w in warm):.2f} s)"
    return [deploy] + rows + [best]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=16384)
    ap.add_argument("--layers", type=int, default=120)
    ap.add_argument("--inputs", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--queries", type=int, default=3, help="warm queries after the first (default 3)")
    ap.add_argument("--partition", default=None, help="default: the project default")
    ap.add_argument("--variants", default="local,object")
    args = ap.parse_args()
    args.partition = args.partition or default_method()
    os.environ.setdefault("FSD_HOME", tempfile.mkdtemp(prefix="fsd-bench-serving-"))
    model = radixnet(args.neurons, args.layers, seed=0)
    inputs = synthetic_inputs(args.neurons, args.inputs, seed=0)
    ref = serial.infer(model, inputs).categories
    t = time.perf_counter()
    cached_plan(model, args.workers, args.partition, None, 0)
    print(f"# N={args.neurons} L={args.layers} B={args.inputs} P={args.workers} ({args.partition}, plan "
          f"{time.perf_counter() - t:.1f} s, cached for every row); {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}; load average {os.getloadavg()[0]:.1f}")
    print("\n| variant | query | wall s | run phase s | outside run s | stage s | staged MB | read by workers MB "
          "| requests | workers cold/warm |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    manifest = None
    try:
        for variant in args.variants.split(","):
            if variant != "local" and manifest is None:
                from fsd_core.aws.local_stack import local_up

                manifest = local_up(workers=max(8, args.workers)).to_dict()
            for row in bench_variant(variant, model, inputs, ref, args, manifest if variant != "local" else None):
                cells = [variant, row["name"], f"{row['wall']:.2f}"]
                if "run" in row:
                    cells += [f"{row['run']:.2f}", f"{row['outside']:.2f}", f"{row['stage']:.2f}",
                              f"{row['staged'] / 1e6:.1f}", f"{row['read'] / 1e6:.1f}", f"{row['requests']:,}",
                              f"{row['cold']}/{row['warm']}"]
                else:
                    cells += ["-", "-", "-", f"{row['staged'] / 1e6:.1f}", "-", f"{row['requests']:,}", "-"]
                print("| " + " | ".join(cells) + " |", flush=True)
    finally:
        if manifest is not None:
            from fsd_core.aws.local_stack import local_down

            local_down()
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; every query's categories equal the serial kernel's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
