"""Partition benchmark: rows moved, messages, imbalance and time per method on RadiX-Net.

    .venv/bin/python bench/partition.py                      # N=1024,4096; P=4..64; all methods
    .venv/bin/python bench/partition.py --neurons 1024 --workers 16 --methods metis,hypergraph
    .venv/bin/python bench/partition.py --paper              # random/hypergraph ratio, N=16384, P=42

Prints a Markdown table (pasted into docs/partitioning.md). Layouts: per-layer (default) and
shared (`--layout shared` or `--layout both`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsd_core.model.radixnet import radixnet  # noqa: E402
from fsd_core.plan.communication import make_plan  # noqa: E402
from fsd_core.plan.partition import METHODS  # noqa: E402


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--neurons", type=ints, default=[1024, 4096])
    ap.add_argument("--layers", type=int, default=120)
    ap.add_argument("--workers", type=ints, default=[4, 8, 16, 32, 64])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--layout", choices=["per-layer", "shared", "both"], default="per-layer")
    ap.add_argument("--paper", action="store_true", help="only the N=16384, P=42 random/hypergraph ratio")
    args = ap.parse_args()
    if args.paper:
        args.neurons, args.workers, args.methods = [16384], [42], "random,hypergraph"
    layouts = {"per-layer": [True], "shared": [False], "both": [True, False]}[args.layout]
    print("| N | P | method | layout | volume rows | vs random | messages | max send | imbalance | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.neurons:
        t = time.perf_counter()
        model = radixnet(n, args.layers)
        print(f"<!-- RadiX-Net N={n} L={args.layers} built in {time.perf_counter() - t:.1f}s -->", flush=True)
        for p in args.workers:
            for per_layer in layouts:
                rand = None
                for method in args.methods.split(","):
                    m = make_plan(model, p, method, per_layer=per_layer).metrics(model)
                    if method == "random":
                        rand = m["volume_rows"]
                    ratio = f"{rand / m['volume_rows']:.1f}x" if rand and m["volume_rows"] else "-"
                    print(f"| {n} | {p} | {method} | {'per-layer' if per_layer else 'shared'} | "
                          f"{m['volume_rows']:,} | {ratio} | {m['messages']:,} | {m['max_send_rows']:,} | "
                          f"{100 * m['imbalance']:.1f}% | {m['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
