"""The `fsd` command. Each command group lives in its own module with a `register(sub)`.

Errors: one line on stderr, exit code 2 for bad input or usage, 1 for a failed run
(DESIGN.md, command line contract). Heavy imports happen inside the command handlers so
`fsd --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import FsdError

# Command-group modules, in the order their commands appear in `fsd --help`.
GROUPS = ("demo", "model", "partition", "run", "recommend", "cloud", "deploy", "tui")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2 like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"fsd: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fsd", description="FSD-Inference: fully serverless distributed "
                     "inference of sparse DNNs (serial, local, queue and object variants).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in GROUPS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # a command group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (already printed) and --help
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except FsdError as exc:
        sys.stderr.write(f"fsd: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("fsd: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


