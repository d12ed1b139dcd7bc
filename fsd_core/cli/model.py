"""`fsd model import|export|generate`, `fsd data generate` and `fsd infer`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..units import si
from .common import (
    check_output_dir,
    check_output_file,
    inputs_bytes,
    model_bytes,
    most_that_fit,
    positive_int,
    print_json,
    require_memory,
    say,
    seed_int,
)
from .progress import Display


def register(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="import, export, generate or deploy a sparse DNN model")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    p = msub.add_parser("import", help="read a Graph Challenge network (TSV layer files)")
    p.add_argument("--graph-challenge", required=True, metavar="DIR", type=Path,
                   help="directory of the layer files neuronN-l{k}.tsv (or n{N}-l{k}.tsv, or in DIR/neuronN/)")
    p.add_argument("--neurons", required=True, type=positive_int, help="neurons per layer N (e.g. 1024)")
    p.add_argument("--layers", required=True, type=positive_int, help="number of layers L to read (1..L)")
    p.add_argument("--out", required=True, metavar="MODEL", type=Path,
                   help="model directory to write (replaced if it exists)")
    p.set_defaults(handler=cmd_import)

    p = msub.add_parser("export", help="write a model as Graph Challenge TSV layer files")
    p.add_argument("--graph-challenge", required=True, metavar="DIR", type=Path,
                   help="directory to write the layer files neuronN-l{k}.tsv into (created if missing)")
    p.add_argument("--model", required=True, type=Path, metavar="MODEL", help="model directory to export")
    p.set_defaults(handler=cmd_export)

    p = msub.add_parser("generate", help="generate a RadiX-Net model like the Graph Challenge's")
    p.add_argument("--neurons", required=True, type=positive_int,
                   help="neurons per layer N = 16 * 2^m (32..65536; challenge sizes 1024, 4096, 16384, 65536)")
    p.add_argument("--layers", required=True, type=positive_int,
                   help="number of layers L (limited by this machine's memory: ~400 B per neuron per layer)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the block permutations (default 0)")
    p.add_argument("--no-permute", action="store_true", help="no random relabelling between blocks")
    p.add_argument("--out", required=True, metavar="MODEL", type=Path,
                   help="model directory to write (replaced if it exists)")
    p.set_defaults(handler=cmd_generate)

    from .serving import register_actions

    register_actions(msub)

    data = sub.add_parser("data", help="generate synthetic input images")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = dsub.add_parser("generate", help="binary MNIST-like images as sparse-images TSV")
    p.add_argument("--neurons", required=True, type=positive_int,
                   help="pixels per image N, a perfect square (e.g. 1024 = 32 x 32)")
    p.add_argument("--count", required=True, type=positive_int,
                   help="number of images (limited by this machine's memory: ~8 B per pixel)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the pen strokes (default 0)")
    p.add_argument("--out", required=True, metavar="FILE.tsv", type=Path, help="TSV file to write")
    p.set_defaults(handler=cmd_data_generate)

    p = sub.add_parser("infer", help="run the serial kernel (the challenge's reference semantics)")
    p.add_argument("--model", required=True, type=Path, metavar="MODEL", help="model directory")
    p.add_argument("--inputs", required=True, type=Path, metavar="FILE",
                   help="input images: Graph Challenge sparse TSV (row, column, value; 1-based)")
    p.add_argument("--categories-out", metavar="F", type=Path,
                   help="write the categories (1-based row ids) here")
    p.add_argument("--check", metavar="TRUTH", type=Path,
                   help="compare with a truth categories file (PASSED/FAILED; exit 1 if FAILED)")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON document (human text goes to stderr)")
    p.set_defaults(handler=cmd_infer)


def cmd_import(args: argparse.Namespace) -> int:
    from ..model.network import challenge_layer_file, import_graph_challenge

    check_output_dir(args.out, "--out")
    if not args.graph_challenge.is_dir():
        from ..errors import InputError

        raise InputError(f"--graph-challenge {args.graph_challenge}: directory not found")
    # Every layer file must be there before any is read (stops at the first missing one).
    files = [challenge_layer_file(args.graph_challenge, args.neurons, k) for k in range(1, args.layers + 1)]
    size = sum(f.stat().st_size for f in files)
    require_memory(16.0 * (args.neurons + 1) * args.layers + 2.0 * size,
                   f"importing {args.layers:,} layers of {args.neurons:,} neurons ({si(size, 'B')} of TSV)",
                   "import fewer layers (--layers)")
    with Display() as display:
        display.phase(f"reading {args.layers} layer files ({si(size, 'B')})")
        model = import_graph_challenge(args.graph_challenge, args.neurons, args.layers)
        display.phase(f"writing {args.out}")
        model.save(args.out)
    print(f"imported {model.layers} layers of {model.neurons} neurons ({model.nnz:,} edges) -> {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..model.network import SparseDNN, export_graph_challenge

    check_output_dir(args.graph_challenge, "--graph-challenge")
    with Display() as display:
        display.phase(f"loading {args.model}")
        model = SparseDNN.load(args.model)
        display.phase(f"writing {model.layers} layer files")
        files = export_graph_challenge(model, args.graph_challenge)
    print(f"wrote {len(files)} layer files to {args.graph_challenge}")
    return 0


def check_model_size(neurons: int, layers: int, what: str = "the model") -> None:
    """Refuse a RadiX-Net of N x L that would not fit in this machine's memory, naming the limit."""
    require_memory(model_bytes(neurons, layers), f"{what} ({neurons:,} neurons x {layers:,} layers)",
                   f"--layers can be at most {most_that_fit(model_bytes(neurons, 1)):,} "
                   f"at {neurons:,} neurons here")


def check_inputs_size(neurons: int, count: int, flag: str = "--count") -> None:
    """Refuse `count` synthetic images of N pixels that would not fit in memory, naming the limit."""
    require_memory(inputs_bytes(neurons, count), f"{count:,} images of {neurons:,} pixels",
                   f"{flag} can be at most {most_that_fit(inputs_bytes(neurons, 1)):,} "
                   f"at {neurons:,} pixels here")


def cmd_generate(args: argparse.Namespace) -> int:
    from ..model.radixnet import _check_neurons, radixnet

    check_output_dir(args.out, "--out")
    _check_neurons(args.neurons)
    check_model_size(args.neurons, args.layers)
    with Display() as display:
        display.phase(f"generating RadiX-Net {args.neurons} x {args.layers}")
        model = radixnet(args.neurons, args.layers, seed=args.seed, permute=not args.no_permute)
        display.phase(f"writing {args.out}")
        model.save(args.out)
    print(f"generated RadiX-Net {model.neurons} x {model.layers} ({model.nnz:,} edges) -> {args.out}")
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    from ..model.radixnet import synthetic_inputs
    from ..model.tsv import write_triples

    check_output_file(args.out, "--out")
    check_inputs_size(args.neurons, args.count)
    with Display() as display:
        display.phase(f"drawing {args.count:,} images of {args.neurons:,} pixels")
        images = synthetic_inputs(args.neurons, args.count, seed=args.seed)
        display.phase(f"writing {args.out}")
        write_triples(args.out, images, value_fmt="%d")
    print(f"generated {args.count} images of {args.neurons} pixels "
          f"({images.nnz / max(1, args.count):.1f} on-pixels each) -> {args.out}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from ..kernel.serial import infer
    from ..model.network import SparseDNN, read_inputs
    from ..model.tsv import read_categories, write_categories

    check_output_file(args.categories_out, "--categories-out")
    with Display() as display:
        display.phase(f"loading {args.model}")
        model = SparseDNN.load(args.model)
        display.phase(f"reading {args.inputs}")
        inputs = read_inputs(args.inputs, model.neurons)
        truth = read_categories(args.check) if args.check else None
        display.phase(f"inference: {inputs.shape[0]} inputs x {model.layers} layers")
        result = infer(model, inputs)
    edges = inputs.shape[0] * model.nnz
    rate = edges / result.seconds if result.seconds > 0 else float("inf")
    if args.categories_out:
        write_categories(args.categories_out, result.categories)
    passed = None if truth is None else bool(
        len(truth) == len(result.categories) and (truth == result.categories).all())
    verdict = None if passed is None else (
        "PASSED" if passed else f"FAILED: {len(result.categories)} categories, truth has {len(truth)}")
    if args.json:
        print_json({"inputs": inputs.shape[0], "neurons": model.neurons, "layers": model.layers,
                    "edges": edges, "seconds": result.seconds, "edges_per_second": rate,
                    "categories": (result.categories + 1).tolist(), "check": passed})
        if verdict:
            say(verdict)
    else:
        print(f"inference: {inputs.shape[0]} inputs x {model.layers} layers of {model.neurons} neurons "
              f"in {result.seconds:.3f} s; {si(rate, 'edges/s')}; {len(result.categories)} categories")
        if verdict:
            print(verdict)
    return 0 if passed in (None, True) else 1
