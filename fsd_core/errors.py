"""The few exceptions `fsd_core` raises; the CLI turns them into one line and an exit code.

`InputError` means the user gave us something we cannot use (exit 2); `RunError` means a run
or an external tool failed while doing its job (exit 1). Backend errors (botocore, OS errors)
are converted at the boundary with `raise ... from exc`, so callers only see these.
"""

from __future__ import annotations


class FsdError(Exception):
    """Base class: the message is a complete one-line explanation for a person."""

    exit_code = 1


class InputError(FsdError):
    """Bad input or usage: a file, line or field that cannot be used as given."""

    exit_code = 2


class RunError(FsdError):
    """A run, a worker or an external tool failed."""

    exit_code = 1


class Interrupted(RunError):
    """The run was stopped from outside: a signal (SIGTERM, SIGHUP, SIGINT) or `fsd cancel`."""

    def __init__(self, why: str, status: str = "interrupted") -> None:
        super().__init__(why)
        self.status = status


class WorkerTimeout(RunError):
    """A worker waited longer than its timeout for a message it was promised."""
