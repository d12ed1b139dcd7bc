"""Scaling of the distributed engine on one machine: serial kernel vs `local` with P workers.

    .venv/bin/python bench/scaling.py                        # N=4096, L=120, 10,000 inputs, P=1,2,4,8
    .venv/bin/python bench/scaling.py --neurons 1024 --inputs 2000 --workers 1,2,4

The model is `radixnet(N, L)` with `synthetic_inputs` (their rows stay alive, so every layer
does work). The serial kernel runs with one thread (what one Lambda worker with one vCPU
has) and with every core; each local run is a real run through the coordinator (worker
processes started by the launch tree, shards staged, local channel) and is verified bit for
bit against the serial kernel. Plans are computed (and cached) before timing; "run s" is
launch to gathered result, "total s" includes staging and clean-up. The compute / wait split
is the mean over workers of the per-layer figures the workers record.

Each P runs twice over: "cold", every run in fresh worker processes (a Lambda cold start:
process start, imports, shard parsing and the first touch of the worker's memory), and
"warm", in a `WorkerPool` that keeps the processes between queries (Lambda's warm start;
one untimed query warms it). The serial kernel is timed warm too: model in memory, and under
the workers' malloc settings (`launch.keep_freed_memory`), so that both sides run under the
same memory policy.

Speed-ups are given two ways: best local run against the best of every 1-thread serial run
of the session, and *paired*: each local run against a serial run made just before it, the
median and the worst of those ratios. This 2-vCPU VM's speed drifts by tens of percent
within minutes; a pair sees the same machine, so the paired ratios do not depend on when in
the session each side happened to run.

The machine's own ceiling comes first: the serial kernel alone, then in two processes at
once (each the whole batch, started together), alternately. Two cores share the caches and
the memory bus, so each concurrent run is slower than a lone one by some factor s; P=2 workers
that split the work perfectly, with no messages at all, would still reach at most 2/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsd_core.engine.launch import keep_freed_memory  # noqa: E402
from fsd_core.engine.pool import WorkerPool  # noqa: E402
from fsd_core.kernel import serial  # noqa: E402
from fsd_core.model.radixnet import radixnet, synthetic_inputs  # noqa: E402
from fsd_core.plan.partition import DEFAULT_METHOD  # noqa: E402
from fsd_core.run.coordinator import RunConfig, activations_equal, cached_plan, run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=120)
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--partition", default=DEFAULT_METHOD, help="default: the project default (%(default)s)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-ceiling", action="store_true", help="skip the concurrent serial runs")
    args = ap.parse_args()
    workers = [int(p) for p in args.workers.split(",")]
    tuned = keep_freed_memory()
    model = radixnet(args.neurons, args.layers, seed=0)
    inputs = synthetic_inputs(args.neurons, args.inputs, seed=0)
    edges = args.inputs * model.nnz
    print(f"# N={args.neurons} L={args.layers} B={args.inputs} ({edges:.3g} edges); "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"load average {os.getloadavg()[0]:.1f}; workers' malloc settings in this process: {tuned}")
    ref, t1, tall = None, [], []
    for _ in range(args.repeat):
        r1 = serial.infer(model, inputs, threads=1)
        ra = serial.infer(model, inputs)
        t1.append(r1.seconds)
        tall.append(ra.seconds)
        ref = r1
    if not args.no_ceiling:
        ceiling(model, inputs, max(3, args.repeat))
    rows: list[tuple] = [None, None]  # the serial rows, filled in at the end
    footprint: list[str] = []
    for p in workers:
        t = time.perf_counter()
        cached_plan(model, p, args.partition, None, 0)
        plan_s = time.perf_counter() - t
        for warm in (False, True):
            pool = WorkerPool(p) if warm else None
            try:
                config = RunConfig(None, None, "local", p, args.partition, record=False, model=model, inputs=inputs,
                                   timeout=600, pool=pool)
                if warm:
                    run(config)  # the pool's first query is a cold start
                best, pairs = None, []
                for _ in range(args.repeat):
                    before = serial.infer(model, inputs, threads=1).seconds  # the pair's baseline, just before
                    t1.append(before)
                    r = run(config)
                    if r.status != "ok":
                        print(f"local P={p} failed: {r.error}", file=sys.stderr)
                        return 1
                    pairs.append(before / r.timings["run"])
                    if best is None or r.timings["run"] < best.timings["run"]:
                        best = r
            finally:
                if pool is not None:
                    pool.close()
            kind = "warm" if warm else "cold"
            exact = activations_equal(ref.activations, best.activations)
            layers = [l for w in best.worker_reports for l in w["layers"]]
            compute = sum(l["compute_s"] for l in layers) / p
            wait = sum(l["wait_s"] for l in layers) / p
            res = [w.get("resources", {}) for w in best.worker_reports]
            if all(res):
                footprint.append(f"P={p} {kind}: per worker max RSS {max(r['max_rss_mb'] for r in res):.0f} MB, "
                                 f"system CPU {sum(r['cpu_sys_s'] for r in res) / p:.2f} s, "
                                 f"{sum(r['minor_faults'] for r in res) / p / 1000:.0f}k minor faults (mean)")
            rows.append((f"local {kind}, P={p}" + ("" if warm else f" (plan {plan_s:.1f} s)"), p,
                         best.timings["run"], best.seconds, compute, wait, best.timings["run"], pairs, exact))
    base = min(t1)  # every serial run of the session, the paired ones included
    rows[0] = ("serial, 1 thread", 1, base, base, None, None, base, [], True)
    rows[1] = ("serial, all cores", 1, min(tall), min(tall), None, None, min(tall), [], True)
    print(f"\nserial kernel, 1 thread: best {base:.2f} s, median {statistics.median(t1):.2f} s, "
          f"worst {max(t1):.2f} s over {len(t1)} runs (this machine's drift)")
    print("\n| engine | P | run s | total s | compute s/worker | wait s/worker | vs serial, best/best "
          "| vs serial, paired (median, min) | exact |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, p, run_s, total, comp, wait, best_s, pairs, exact in rows:
        c = "-" if comp is None else f"{comp:.2f}"
        w = "-" if wait is None else f"{wait:.2f}"
        paired = f"{statistics.median(pairs):.2f}x, {min(pairs):.2f}x" if pairs else "-"
        print(f"| {name} | {p} | {run_s:.2f} | {total:.2f} | {c} | {w} | {base / best_s:.2f}x | {paired} "
              f"| {'yes' if exact else 'NO'} |")
    if footprint:
        print("\n" + "\n".join(footprint))
    return 0 if all(r[-1] for r in rows) else 1


def ceiling(model, inputs, repeat: int, k: int = 2) -> None:
    """The serial kernel alone and as k simultaneous processes, alternately: the slowdown s
    that sharing the machine costs, and the speed-up ceiling k/s it implies."""
    ctx = multiprocessing.get_context("fork")  # the children share the model already in memory
    alone, together = [], []
    for _ in range(repeat):
        alone.append(serial.infer(model, inputs, threads=1).seconds)
        start, results = ctx.Barrier(k), ctx.Queue()
        procs = [ctx.Process(target=_serial_at_barrier, args=(model, inputs, start, results)) for _ in range(k)]
        for proc in procs:
            proc.start()
        together += [results.get(timeout=600) for _ in procs]  # a crashed child: an error, not a hang
        for proc in procs:
            proc.join()
    slow = statistics.median(together) / statistics.median(alone)
    print(f"machine ceiling: serial kernel alone median {statistics.median(alone):.2f} s, {k} at once median "
          f"{statistics.median(together):.2f} s each ({len(together)} runs): slowdown {slow:.2f}, "
          f"so P={k} reaches at most {k / slow:.2f}x here")


def _serial_at_barrier(model, inputs, start, results) -> None:
    start.wait()
    results.put(serial.infer(model, inputs, threads=1).seconds)


if __name__ == "__main__":
    sys.exit(main())
