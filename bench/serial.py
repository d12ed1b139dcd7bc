"""Serial kernel benchmark: `fsd_core.kernel.serial.infer` against a straightforward scipy reference.

    .venv/bin/python bench/serial.py                               # N=1024, L=120, 10,000 inputs, both workloads
    .venv/bin/python bench/serial.py --workload synthetic --repeat 5
    .venv/bin/python bench/serial.py --neurons 4096 --layers 120 --inputs 2000 --workload synthetic

Workloads (shared/graphchallenge/README.md asks for both):
- `real`: the official N = 1024 network (shared/graphchallenge, up to 120 layers) on the 1,200
  real MNIST images, tiled to --inputs rows;
- `synthetic`: `radixnet(N, L, seed)` on `synthetic_inputs(N, inputs, seed)`.

The reference is the challenge's own algorithm written plainly in scipy (sparse x sparse
`Z = Y @ W`, bias on the stored non-zeros, clip, drop zeros), as in the challenge's
inferenceReLUvec.m. Both kernels run on the same model and inputs in this process, interleaved
--repeat times; the best time of each counts (other processes share the cores). Rate =
inputs x weight non-zeros / seconds, as `fsd infer` prints it. Both kernels must give the same
categories, or the script exits 1. Prints a Markdown table (pasted into docs/serial.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsd_core.kernel import serial  # noqa: E402
from fsd_core.model.network import SparseDNN, import_graph_challenge, read_inputs  # noqa: E402
from fsd_core.model.radixnet import radixnet, synthetic_inputs  # noqa: E402

GRAPH_CHALLENGE = Path(__file__).resolve().parent.parent.parent / "shared" / "graphchallenge" / "neuron1024"
REAL_IMAGES = GRAPH_CHALLENGE / "sparse-images-1024-first1200.tsv"


def reference_infer(model: SparseDNN, inputs: sp.csr_matrix) -> np.ndarray:
    """The challenge reference, plainly: Z = Y W; bias on non-zeros; clip to [0, ymax]."""
    y = sp.csr_matrix(inputs, dtype=np.float32)
    for w, bias in zip(model.weights, model.biases):
        z = y @ w
        z.data += bias[z.indices]
        np.clip(z.data, 0.0, model.ymax, out=z.data)
        z.eliminate_zeros()
        y = z
    return np.flatnonzero(np.diff(y.indptr) > 0)


def project_infer(model: SparseDNN, inputs: sp.csr_matrix, threads: int | None) -> np.ndarray:
    return serial.infer(model, inputs, threads=threads).categories


def real_workload(layers: int, count: int) -> tuple[SparseDNN, sp.csr_matrix, str]:
    if layers > 120:
        raise SystemExit("bench/serial.py: the real network has 120 layers (use --layers <= 120)")
    if not REAL_IMAGES.is_file():
        raise SystemExit(f"bench/serial.py: {REAL_IMAGES} not found (shared/graphchallenge is not beside the checkout)")
    model = import_graph_challenge(GRAPH_CHALLENGE, 1024, layers)
    images = read_inputs(REAL_IMAGES, 1024)
    tiled = images[np.arange(count) % images.shape[0]]
    return model, sp.csr_matrix(tiled), f"real (1,200 tiled to {count:,})"


def synthetic_workload(neurons: int, layers: int, count: int, seed: int) -> tuple[SparseDNN, sp.csr_matrix, str]:
    return radixnet(neurons, layers, seed), synthetic_inputs(neurons, count, seed), "synthetic"


def timed(fn, *args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def bench(name: str, model: SparseDNN, inputs: sp.csr_matrix, repeat: int, threads: int | None) -> dict:
    best = {"reference": float("inf"), "project": float("inf")}
    cats = {}
    for rep in range(repeat):
        for kernel in ("reference", "project"):  # interleaved: both see the same machine load
            if kernel == "reference":
                seconds, got = timed(reference_infer, model, inputs)
            else:
                seconds, got = timed(project_infer, model, inputs, threads)
            best[kernel] = min(best[kernel], seconds)
            if kernel in cats and not np.array_equal(cats[kernel], got):
                raise SystemExit(f"bench/serial.py: {kernel} kernel is not deterministic")
            cats[kernel] = got
            print(f"  [{name}] run {rep + 1}/{repeat} {kernel:9s} {seconds:8.2f} s", file=sys.stderr, flush=True)
    same = np.array_equal(cats["reference"], cats["project"])
    edges = inputs.shape[0] * model.nnz
    return {"workload": name, "neurons": model.neurons, "layers": model.layers, "inputs": inputs.shape[0],
            "ref_s": best["reference"], "proj_s": best["project"], "ref_rate": edges / best["reference"],
            "proj_rate": edges / best["project"], "ratio": best["reference"] / best["project"],
            "categories": len(cats["project"]), "same": same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--neurons", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=120)
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--workload", choices=["synthetic", "real", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs per kernel; the best counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="project kernel threads (default: usable CPUs)")
    args = ap.parse_args()
    if args.repeat < 1 or args.inputs < 1 or args.layers < 1:
        raise SystemExit("bench/serial.py: --repeat, --inputs and --layers must be >= 1")

    workloads = []
    if args.workload in ("real", "both"):
        if args.neurons != 1024:
            print(f"bench/serial.py: real data exists only for N = 1024; skipping it at N = {args.neurons}",
                  file=sys.stderr)
        else:
            workloads.append(real_workload(args.layers, args.inputs))
    if args.workload in ("synthetic", "both"):
        workloads.append(synthetic_workload(args.neurons, args.layers, args.inputs, args.seed))

    rows = [bench(name, model, x, args.repeat, args.threads) for model, x, name in workloads]
    threads = serial._threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, project kernel threads = "
          f"{threads}, best of {args.repeat}, load average at the end {load:.1f}\n")
    print("| workload | N | L | inputs | reference s | reference edges/s | fsd_core s | fsd_core edges/s "
          "| speed-up | categories | same |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['neurons']} | {r['layers']} | {r['inputs']:,} | {r['ref_s']:.2f} | "
              f"{r['ref_rate']:.3g} | {r['proj_s']:.3f} | {r['proj_rate']:.3g} | {r['ratio']:.1f}x | "
              f"{r['categories']:,} | {'yes' if r['same'] else 'NO'} |")
    if not all(r["same"] for r in rows):
        print("\nFAILED: the kernels disagree on the categories", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
