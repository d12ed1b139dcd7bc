"""The `fsd` command. Each command group lives in its own module with a `register(sub)`.

Errors: one line on stderr, exit code 2 for bad input or usage, 1 for a failed run
(DESIGN.md, command line contract). With `--json`, stdout is always one JSON document: the
command's, or `{"status": "error", "error": ...}` when it fails (usage errors included); human
text (progress, notices, PASSED/FAILED) goes to stderr. Both rules live here, in `main`, for
every command. Heavy imports happen inside the command handlers so `fsd --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import signal
import sys
import threading

from ..errors import FsdError

# Command-group modules, in the order their commands appear in `fsd --help`.
GROUPS = ("demo", "model", "partition", "run", "runs", "gc", "recommend", "cloud", "deploy", "doctor", "tui")


class UsageError(Exception):
    """A command line argparse refused (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2 like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


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


def _fail(message: str, code: int, as_json: bool) -> int:
    """Report an error: one line on stderr; with --json also the error document on stdout."""
    line = " ".join(str(message).split("\n")).strip() or "failed"
    sys.stderr.write(f"fsd: error: {line}\n")
    sys.stderr.flush()
    if as_json:
        _write_stdout(json.dumps({"status": "error", "error": line, "exit_code": code}, indent=1) + "\n")
    return code


def _write_stdout(text: str) -> None:
    """Write and flush stdout; a reader that went away (`| head`) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Python flushes stdout again at exit: point it at /dev/null so a closed pipe stays quiet."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _os_error(exc: OSError) -> tuple[str, int]:
    """An OSError as one line; one naming a file is a bad path the user gave (exit 2)."""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        return f"{exc.filename}: {what}", 2
    return what, 1


def main(argv: list[str] | None = None) -> int:
    """`fsd`: run the command `argv` (default: the process's arguments); its exit code."""
    code = _main(argv)
    if argv is None and threading.current_thread() is threading.main_thread():
        # The command is done and has said so: a Ctrl-C between here and the exit changes
        # nothing, and must not kill the process with a signal instead of its exit code.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc), 2, "--json" in argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    as_json = bool(getattr(args, "json", False))
    if not getattr(args, "handler", None):
        if as_json:
            return _fail("give a command (see --help)", 2, True)
        parser.print_help()
        return 2
    # Under --json the command's stdout is held until it ends: a failure replaces it with the
    # error document, so stdout never carries half a result followed by an error.
    held = io.StringIO() if as_json else None
    try:
        with contextlib.redirect_stdout(held) if held is not None else contextlib.nullcontext():
            code = int(args.handler(args) or 0)
    except FsdError as exc:
        return _fail(str(exc), exc.exit_code, as_json)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, as_json)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        return _fail(*_os_error(exc), as_json)
    except UnicodeDecodeError as exc:  # a binary file where text was expected, read below the CLI
        return _fail(f"a file given is not UTF-8 text ({exc.reason} at byte {exc.start})", 2, as_json)
    except MemoryError:
        return _fail("out of memory (try a smaller model, batch or count)", 1, as_json)
    except Exception as exc:
        if as_json:  # a bug: the document says so, the traceback follows on stderr
            _fail(f"internal error: {type(exc).__name__}: {exc}", 1, True)
        raise
    if held is not None:
        try:
            _write_stdout(held.getvalue())
        except KeyboardInterrupt:  # (Ctrl-C as the document is written: it ends, said in one line)
            sys.stderr.write("fsd: interrupted while writing the output\n")
            return 130
    return code
