"""`fsd model import|export|generate`, `fsd data generate` and `fsd infer`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..units import si
from .common import positive_int, print_json


def register(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="import, export or generate a sparse DNN model")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    p = msub.add_parser("import", help="read a Graph Challenge network (TSV layer files)")
    p.add_argument("--graph-challenge", required=True, metavar="DIR", type=Path)
    p.add_argument("--neurons", required=True, type=positive_int)
    p.add_argument("--layers", required=True, type=positive_int)
    p.add_argument("--out", required=True, metavar="MODEL", type=Path)
    p.set_defaults(handler=cmd_import)

    p = msub.add_parser("export", help="write a model as Graph Challenge TSV layer files")
    p.add_argument("--graph-challenge", required=True, metavar="DIR", type=Path)
    p.add_argument("--model", required=True, type=Path)
    p.set_defaults(handler=cmd_export)

    p = msub.add_parser("generate", help="generate a RadiX-Net model like the Graph Challenge's")
    p.add_argument("--neurons", required=True, type=positive_int)
    p.add_argument("--layers", required=True, type=positive_int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-permute", action="store_true", help="no random relabelling between blocks")
    p.add_argument("--out", required=True, metavar="MODEL", type=Path)
    p.set_defaults(handler=cmd_generate)

    data = sub.add_parser("data", help="generate synthetic input images")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = dsub.add_parser("generate", help="binary MNIST-like images as sparse-images TSV")
    p.add_argument("--neurons", required=True, type=positive_int)
    p.add_argument("--count", required=True, type=positive_int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="FILE.tsv", type=Path)
    p.set_defaults(handler=cmd_data_generate)

    p = sub.add_parser("infer", help="run the serial kernel (the challenge's reference semantics)")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--inputs", required=True, type=Path)
    p.add_argument("--categories-out", metavar="F", type=Path)
    p.add_argument("--check", metavar="TRUTH", type=Path, help="compare with a truth categories file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_infer)


def cmd_import(args: argparse.Namespace) -> int:
    from ..model.network import import_graph_challenge

    model = import_graph_challenge(args.graph_challenge, args.neurons, args.layers)
    model.save(args.out)
    print(f"imported {model.layers} layers of {model.neurons} neurons ({model.nnz:,} edges) -> {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..model.network import SparseDNN, export_graph_challenge

    model = SparseDNN.load(args.model)
    files = export_graph_challenge(model, args.graph_challenge)
    print(f"wrote {len(files)} layer files to {args.graph_challenge}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from ..model.radixnet import radixnet

    model = radixnet(args.neurons, args.layers, seed=args.seed, permute=not args.no_permute)
    model.save(args.out)
    print(f"generated RadiX-Net {model.neurons} x {model.layers} ({model.nnz:,} edges) -> {args.out}")
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    from ..model.radixnet import synthetic_inputs
    from ..model.tsv import write_triples

    images = synthetic_inputs(args.neurons, args.count, seed=args.seed)
    write_triples(args.out, images, value_fmt="%d")
    print(f"generated {args.count} images of {args.neurons} pixels "
          f"({images.nnz / max(1, args.count):.1f} on-pixels each) -> {args.out}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from ..kernel.serial import infer
    from ..model.network import SparseDNN, read_inputs
    from ..model.tsv import read_categories, write_categories

    model = SparseDNN.load(args.model)
    inputs = read_inputs(args.inputs, model.neurons)
    truth = read_categories(args.check) if args.check else None
    result = infer(model, inputs)
    edges = inputs.shape[0] * model.nnz
    rate = edges / result.seconds if result.seconds > 0 else float("inf")
    if args.categories_out:
        write_categories(args.categories_out, result.categories)
    passed = None if truth is None else bool(
        len(truth) == len(result.categories) and (truth == result.categories).all())
    if args.json:
        print_json({"inputs": inputs.shape[0], "neurons": model.neurons, "layers": model.layers,
                    "edges": edges, "seconds": result.seconds, "edges_per_second": rate,
                    "categories": (result.categories + 1).tolist(), "check": passed})
    else:
        print(f"inference: {inputs.shape[0]} inputs x {model.layers} layers of {model.neurons} neurons "
              f"in {result.seconds:.3f} s; {si(rate, 'edges/s')}; {len(result.categories)} categories")
        if passed is not None:
            print("PASSED" if passed else
                  f"FAILED: {len(result.categories)} categories, truth has {len(truth)}")
    return 0 if passed in (None, True) else 1


