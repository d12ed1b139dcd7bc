"""The three channels side by side on the same model and plan, next to the paper's figures.

    .venv/bin/python bench/channels.py                       # RadiX-Net N=1024, L=120, 10,000 inputs, P=8
    .venv/bin/python bench/channels.py --inputs 2000 --variants local,queue

Every run is a real run through the coordinator (worker processes from the launch tree;
queue and object over the local AWS emulator, which `fsd` starts and provisions through
Terraform if no deployment is configured) and is verified bit for bit against the serial
kernel. All variants use the same cached plan. Reported: time per layer (run time / L),
bytes on the wire, messages, and requests by API (including empty polls and GET retries),
with the predicted deterministic counts and the dollars at the recorded durations.

The paper's figures for this configuration (FSD-Inf-Queue, N=1024, L=120, 10,000 inputs,
8 workers): 104 MB sent, 6,774 messages, 1,102 publish calls, 4,318 polls. The emulator's
latencies and throughput are not AWS's (~300-400 requests/s for the whole emulator here), so
times are this machine's, not a prediction of Lambda's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsd_core.kernel.serial import infer  # noqa: E402
from fsd_core.model.radixnet import radixnet, synthetic_inputs  # noqa: E402
from fsd_core.run.coordinator import RunConfig, activations_equal, cached_plan, run  # noqa: E402

PAPER_QUEUE = {"bytes_sent": 104e6, "messages": 6774, "sns:PublishBatch": 1102, "sqs:ReceiveMessage": 4318}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=120)
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--partition", default="hypergraph")
    ap.add_argument("--variants", default="local,queue,object")
    args = ap.parse_args()
    model = radixnet(args.neurons, args.layers, seed=0)
    inputs = synthetic_inputs(args.neurons, args.inputs, seed=0)
    ref = infer(model, inputs)
    cached_plan(model, args.workers, args.partition, None, 0)
    print(f"# RadiX-Net N={args.neurons} L={args.layers}, {args.inputs} synthetic inputs, P={args.workers}, "
          f"{args.partition} partition; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    results = {}
    for variant in args.variants.split(","):
        r = run(RunConfig(None, None, variant, args.workers, args.partition, record=True, model=model,
                          inputs=inputs, timeout=600))
        if r.status != "ok":
            print(f"{variant} failed: {r.error}", file=sys.stderr)
            return 1
        results[variant] = (r, activations_equal(ref.activations, r.activations))
        print(f"  {variant}: {r.timings['run']:.1f} s run, exact={results[variant][1]}", flush=True)
    apis = sorted({a for r, _ in results.values() for a in r.requests})
    print("\n| figure | " + " | ".join(results) + " | paper (queue) |")
    print("|---|" + "---:|" * (len(results) + 1))

    def line(name, fn, paper=""):
        print(f"| {name} | " + " | ".join(fn(r) for r, _ in results.values()) + f" | {paper} |")

    line("run time s (launch to result)", lambda r: f"{r.timings['run']:.1f}")
    line("time per layer ms", lambda r: f"{1000 * r.timings['run'] / args.layers:.0f}")
    line("bytes sent", lambda r: f"{r.bytes_sent / 1e6:.2f} MB", "104 MB")
    line("messages", lambda r: f"{r.messages:,}", "6,774")
    for api in apis:
        paper = {"sns:PublishBatch": "1,102", "sqs:ReceiveMessage": "4,318"}.get(api, "")
        line(api, lambda r, a=api: f"{r.requests.get(a, 0):,}", paper)
    line("predicted deterministic = counted", lambda r: "-" if not r.predicted else
         ("yes" if all(r.requests.get(a, 0) == n for a, n in r.predicted["requests"].items())
          and r.predicted["bytes_sent"] == r.bytes_sent else "NO"))
    line("dollars at recorded durations (2 GB)", lambda r: f"${r.cost_usd:.5f}")
    line("equal to the serial kernel", lambda r: "yes" if activations_equal(ref.activations, r.activations) else "NO")
    return 0 if all(ok for _, ok in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
