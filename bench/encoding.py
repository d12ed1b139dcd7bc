"""Wire encoding vs the paper's: bytes and times on real activations of RadiX-Net runs.

Runs a network layer by layer with the serial kernel (`fsd_core.kernel.serial.layer_step`); at the
chosen layers cuts the B x N activations into contiguous column groups, as the distributed
engine's messages are (one block per sending worker), and encodes every block both ways:

- ours: `fsd_core.channels.codec.encode_block` (checked to decode bit-identically);
- the paper's: float32 COO triples [value, row, col], zlib level 3.

Cases:
- `real`: the Graph Challenge N=1024, 120-layer network on the real MNIST inputs, the 1,200
  images tiled to `--rows` rows. Tiling repeats rows; zstandard's window (MiBs) can exploit the
  repeats where zlib's 32 KiB cannot, so the case is also run untiled (`real-1200`).
- `synthetic`: `fsd_core.model.radixnet.radixnet` with `synthetic_inputs` (every row distinct).

    .venv/bin/python bench/encoding.py                     # 10,000 rows, layers 1 2 6 30 120
    .venv/bin/python bench/encoding.py --rows 2000 --layers 1 2 --sweep

Prints one table row per (case, layer) and the ratio of our bytes to the paper's; `--sweep`
also compares compressors for our layout (sizes and encode times only).
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fsd_core.channels import codec as enc
from fsd_core.kernel.serial import layer_step

ROOT = Path(__file__).resolve().parent.parent
CHALLENGE = ROOT.parent / "shared" / "graphchallenge" / "neuron1024"
NEURONS = 1024


def paper_encoding(block: sp.spmatrix) -> bytes:
    """The paper's message: float32 COO triples [value, row, col], zlib level 3 (+ the shape)."""
    coo = sp.coo_matrix(block)
    triples = np.column_stack([coo.data, coo.row, coo.col]).astype(np.float32)
    return np.array(block.shape, dtype=np.uint32).tobytes() + zlib.compress(triples.tobytes(), 3)


@dataclass
class Row:
    """Totals over the blocks of one layer of one case."""

    case: str
    layer: int
    rows_alive: int
    nnz: int
    blocks: int = 0
    paper: int = 0
    ours: int = 0
    paper_s: float = 0.0
    encode_s: float = 0.0
    decode_s: float = 0.0
    modes: set = field(default_factory=set)


def measure(case: str, layer: int, y: sp.csr_matrix, groups: int) -> Row:
    """Encode every column group of `y` both ways; verify ours decodes bit-identically."""
    y = y.tocsr()
    row = Row(case, layer, int(np.count_nonzero(np.diff(y.indptr))), y.nnz)
    for cols in np.array_split(np.arange(y.shape[1]), groups):
        block = y[:, cols]
        block.has_sorted_indices = False  # as the kernel hands it over (scipy may have sorted it)
        t0 = time.perf_counter()
        paper = paper_encoding(block)
        t1 = time.perf_counter()
        payload = enc.encode_block(block)
        t2 = time.perf_counter()
        back = enc.decode_block(payload)
        t3 = time.perf_counter()
        _check_identical(block, back)
        row.blocks += 1
        row.paper += len(paper)
        row.ours += len(payload)
        row.paper_s += t1 - t0
        row.encode_s += t2 - t1
        row.decode_s += t3 - t2
        row.modes.add(_describe(payload))
    return row


def _check_identical(block: sp.csr_matrix, back: sp.csr_matrix) -> None:
    want = block.copy()
    want.sum_duplicates()
    want.eliminate_zeros()
    if not (back.shape == want.shape and np.array_equal(back.indptr, want.indptr)
            and np.array_equal(back.indices, want.indices)
            and np.array_equal(back.data.view(np.uint32), want.data.view(np.uint32))):
        raise SystemExit("round trip is not bit-identical")


def _describe(payload: bytes) -> str:
    """Short name of the index and value coding a payload uses."""
    flags = payload[4]
    if flags & enc._EMPTY:
        return "empty"
    index = ["full", "bitmap", "gaps", "?"][flags >> enc._IDX_SHIFT & 3]
    value = ["const", "dict8", "dict16", "planes"][flags >> enc._VAL_SHIFT & 3]
    return f"{index}/{value}"


def run_case(case: str, model, inputs: sp.csr_matrix, layers: list[int], groups: int) -> list[Row]:
    """Advance `inputs` through `model` and measure at each of `layers` (0 = the inputs)."""
    out = []
    y = sp.csr_matrix(inputs, dtype=np.float32)
    last = max(layers)
    if 0 in layers:
        out.append(measure(case, 0, y, groups))
    for layer, (w, b) in enumerate(zip(model.weights[:last], model.biases[:last]), start=1):
        y = layer_step(y, w, b, model.ymax)
        if layer in layers:
            out.append(measure(case, layer, y, groups))
            _print_row(out[-1])
    return out


def tile(y: sp.csr_matrix, rows: int) -> sp.csr_matrix:
    """The first `rows` rows of `y` repeated as often as needed."""
    reps = -(-rows // y.shape[0])
    return sp.vstack([y] * reps, format="csr")[:rows]


HEAD = ("| case | layer | rows alive | nnz | paper bytes | our bytes | ratio | paper enc ms "
        "| our enc ms | our dec ms | coding |")


def _print_row(r: Row) -> None:
    ratio = r.ours / r.paper if r.paper else float("nan")
    print(f"| {r.case} | {r.layer} | {r.rows_alive:,} | {r.nnz:,} | {r.paper:,} | {r.ours:,} | {ratio:.3f} "
          f"| {r.paper_s * 1e3:.1f} | {r.encode_s * 1e3:.1f} | {r.decode_s * 1e3:.1f} "
          f"| {', '.join(sorted(r.modes))} |", flush=True)


def summary(rows: list[Row]) -> None:
    print()
    for case in dict.fromkeys(r.case for r in rows):
        sel = [r for r in rows if r.case == case]
        paper, ours = sum(r.paper for r in sel), sum(r.ours for r in sel)
        worst = max(sel, key=lambda r: r.ours / r.paper)
        print(f"{case}: ours {ours:,} B vs paper {paper:,} B, ratio {ours / paper:.3f} "
              f"(1/{paper / ours:.1f}); worst layer {worst.layer} at {worst.ours / worst.paper:.3f}")
    paper, ours = sum(r.paper for r in rows), sum(r.ours for r in rows)
    print(f"overall: ours {ours:,} B vs paper {paper:,} B, ratio {ours / paper:.3f} (1/{paper / ours:.1f}); "
          f"target <= 0.333: {'met' if ours * 3 <= paper else 'NOT met'}")


def sweep(cases: dict[str, tuple], layers: list[int], groups: int) -> None:
    """Our layout under other compressors: total bytes and encode seconds (decode is zstd only).

    Run on cases without tiled rows: zstandard's long window would find the tiling's repeats.
    """
    import zstandard

    blocks = {name: [] for name in cases}
    for name, (model, inputs) in cases.items():
        y = sp.csr_matrix(inputs, dtype=np.float32)
        for layer, (w, b) in enumerate(zip(model.weights[:max(layers)], model.biases[:max(layers)]), start=1):
            y = layer_step(y, w, b, model.ymax)
            if layer in layers:
                blocks[name] += [y[:, c] for c in np.array_split(np.arange(y.shape[1]), groups)]
    options = {f"zstd-{lvl}": (lambda lvl: lambda d: zstandard.ZstdCompressor(level=lvl).compress(d))(lvl)
               for lvl in (1, 3, 6, 9, 19)}
    options.update({f"zlib-{lvl}": (lambda lvl: lambda d: zlib.compress(d, lvl))(lvl) for lvl in (1, 3, 6, 9)})
    original = enc._compress
    print("\n| compressor | " + " | ".join(f"{n} bytes | {n} encode ms" for n in cases) + " |")
    print("|---|" + "---|---|" * len(cases))
    try:
        for option, fn in options.items():
            enc._compress = fn
            cells = []
            for name in cases:
                t = time.perf_counter()
                size = sum(len(enc.encode_block(b)) for b in blocks[name])
                cells.append(f"{size:,} | {(time.perf_counter() - t) * 1e3:.0f}")
            print(f"| {option} | " + " | ".join(cells) + " |", flush=True)
    finally:
        enc._compress = original


def speed(repeats: int = 5) -> None:
    """Best-of-`repeats` encode/decode times of a 10,000 x 500 block at 30% density."""
    rng = np.random.default_rng(0)
    base = sp.random(10_000, 500, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    cases = {"random floats": base.data,
             "all 32.0": np.full(base.nnz, 32.0, dtype=np.float32),
             "300 distinct": rng.choice(np.arange(300, dtype=np.float32) / 16, base.nnz)}
    print("\n| 10,000 x 500, 30% | bytes | paper bytes | encode ms | decode ms | coding |")
    print("|---|---|---|---|---|---|")
    for name, data in cases.items():
        block = sp.csr_matrix((data, base.indices, base.indptr), shape=base.shape)
        enc_t, dec_t = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            payload = enc.encode_block(block)
            t1 = time.perf_counter()
            back = enc.decode_block(payload)
            dec_t.append(time.perf_counter() - t1)
            enc_t.append(t1 - t0)
        _check_identical(block, back)
        print(f"| {name} | {len(payload):,} | {len(paper_encoding(block)):,} | {min(enc_t) * 1e3:.1f} "
              f"| {min(dec_t) * 1e3:.1f} | {_describe(payload)} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="batch rows (real images are tiled)")
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 6, 30, 120])
    parser.add_argument("--groups", type=int, default=8, help="column groups = messages per layer")
    parser.add_argument("--cases", nargs="+", default=["real", "real-1200", "synthetic"],
                        choices=["real", "real-1200", "synthetic"])
    parser.add_argument("--sweep", action="store_true",
                        help="also compare compressors (on real-1200 and synthetic)")
    args = parser.parse_args(argv)

    from fsd_core.model.network import import_graph_challenge, read_inputs

    last = max(args.layers)
    rows: list[Row] = []
    print(HEAD)
    print("|" + "---|" * HEAD.count(" | ") + "---|")
    model = images = synth = None
    if {"real", "real-1200"} & set(args.cases) or args.sweep:
        model = import_graph_challenge(CHALLENGE, NEURONS, max(last, 1))
        images = read_inputs(CHALLENGE / f"sparse-images-{NEURONS}-first1200.tsv", NEURONS)
        if "real" in args.cases:
            rows += run_case("real", model, tile(images, args.rows), args.layers, args.groups)
        if "real-1200" in args.cases:
            rows += run_case("real-1200", model, images, args.layers, args.groups)
    if "synthetic" in args.cases or args.sweep:
        from fsd_core.model.radixnet import radixnet, synthetic_inputs

        synth = radixnet(NEURONS, last, seed=1), synthetic_inputs(NEURONS, args.rows, seed=1)
        if "synthetic" in args.cases:
            rows += run_case("synthetic", *synth, args.layers, args.groups)
    if rows:
        summary(rows)
    speed()
    if args.sweep:
        sweep({"real-1200": (model, images), "synthetic": synth}, args.layers, args.groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
