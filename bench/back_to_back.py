"""Queue runs back to back on the same worker slots: what the polls of the previous run cost.

    .venv/bin/python bench/back_to_back.py                    # RadiX-Net 1024 x 24, 200 inputs, P=2, 6 pairs
    .venv/bin/python bench/back_to_back.py --layers 120 --pairs 4

A worker that ends during a long poll leaves the poll open at SQS (and at the emulator), and
the poll takes whatever arrives on its queue, hiding it for the visibility timeout. The next
run on those slots waits until they are quiet (`aws.leases`, `channels.queue.POLL_LINGER`).

In this process, on the local emulator with every slot but P held, so that each run takes the
same P slots its predecessor just released, runs are made in interleaved pairs:
- `slots marked quiet`: the baseline, what runs did before: the slot files' times are erased
  before the run, so its senders do not wait;
- `wait for quiet slots`: as `fsd` runs now.
Per row: median and range of the run's wall seconds (coordinator call to result) and of the
workers' wait. Every run is checked against the serial kernel (exit 1 if any differs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsd_core.aws import local_stack  # noqa: E402
from fsd_core.aws.leases import lease_dir, lease_slots  # noqa: E402
from fsd_core.kernel import serial  # noqa: E402
from fsd_core.model.radixnet import radixnet, synthetic_inputs  # noqa: E402
from fsd_core.run.coordinator import RunConfig, activations_equal, run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--inputs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=6)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="fsd-bench-b2b-")  # (its own emulator and store, removed at the end)
    os.environ["FSD_HOME"] = home
    model = radixnet(args.neurons, args.layers, seed=0)
    inputs = synthetic_inputs(args.neurons, args.inputs, seed=0)
    truth = serial.infer(model, inputs).activations
    manifest = local_stack.local_up(workers=8)
    rows: dict[str, list[tuple[float, float]]] = {"slots marked quiet": [], "wait for quiet slots": []}
    bad = 0
    try:
        config = RunConfig(None, None, "queue", args.workers, "block", record=False, model=model, inputs=inputs,
                           predict=False, manifest=manifest.to_dict(), timeout=60)
        queues = manifest.queue_urls
        with lease_slots(queues[0], len(queues), len(queues) - args.workers, wait_s=60):
            run(config)  # the plan cached, the slots just used
            for _ in range(args.pairs):
                for name in rows:
                    if name == "slots marked quiet":
                        for slot in range(len(queues)):
                            (lease_dir(queues[0]) / f"slot-{slot}").write_bytes(b"")
                    t = time.perf_counter()
                    r = run(config)
                    seconds = time.perf_counter() - t
                    bad += r.status != "ok" or not activations_equal(truth, r.activations)
                    waited = max(w.get("channel", {}).get("quiet_wait_s", 0.0) for w in r.worker_reports)
                    rows[name].append((seconds, waited))
                    print(f"  {name}: {seconds:.2f} s (waited {waited:.2f} s)", file=sys.stderr, flush=True)
    finally:
        local_stack.local_down()
        shutil.rmtree(home, ignore_errors=True)
    print(f"RadiX-Net {args.neurons} x {args.layers}, {args.inputs} inputs, queue, P={args.workers}, "
          f"{args.pairs} interleaved pairs\n")
    print("| runs | wall s, median (range) | senders' wait s, median |")
    print("|---|---|---|")
    for name, figures in rows.items():
        walls = [w for w, _ in figures]
        print(f"| {name} | {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) | "
              f"{statistics.median(q for _, q in figures):.2f} |")
    if bad:
        print(f"{bad} run(s) failed or differed from the serial kernel", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
