"""The emulated Lambda's runtime: one local process runs one invocation of a function.

    python -m fsd_core.aws.lambda_runtime HANDLER REQUEST_ID TIMEOUT_S  < the event (JSON) on stdin

It does what Lambda's Python runtime does for one event: import `HANDLER` ("module.function",
the function's Handler setting), call it as `handler(event, context)`, and tell the service
how it went. The outcome is one JSON line on the original stdout ({"ok": true}, or the error
document Lambda puts in a failure record: errorMessage, errorType, stackTrace) and the exit
status (0, or 1 when the handler raised). Whatever the handler prints goes to stderr (Lambda:
the function's log). A process that dies instead (a crash, SIGKILL, out of memory) says
nothing: the emulator reports it as Lambda does, a `Runtime.ExitError`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class Context:
    """The parts of Lambda's context object a handler may use."""

    def __init__(self, request_id: str, timeout_s: float) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("FSD_EMULATED_FUNCTION_NAME", "")
        self.memory_limit_in_mb = int(os.environ.get("FSD_EMULATED_MEMORY_MB", "128") or 128)
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _load(handler: str) -> Any:
    module, _, function = handler.rpartition(".")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str]) -> int:
    handler_name, request_id, timeout_s = argv[0], argv[1], float(argv[2])
    outcome = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the handler's prints go to the log, not into the outcome
    sys.stdout = sys.stderr
    try:
        event = json.loads(sys.stdin.buffer.read())
        function = _load(handler_name)
    except Exception as exc:  # noqa: BLE001 - reported as Lambda reports an init error
        kind = "Runtime.ImportModuleError" if isinstance(exc, ImportError | AttributeError) else "Runtime.UnmarshalError"
        outcome.write(json.dumps({"errorMessage": str(exc), "errorType": kind, "stackTrace": []}) + "\n")
        outcome.flush()
        return 1
    try:
        function(event, Context(request_id, timeout_s))
    except Exception as exc:  # noqa: BLE001 - an unhandled error: the invocation failed
        outcome.write(json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__,
                                  "stackTrace": traceback.format_tb(exc.__traceback__, limit=5)}) + "\n")
        outcome.flush()
        return 1
    outcome.write('{"ok": true}\n')
    outcome.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
