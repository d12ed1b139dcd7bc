"""The emulated Lambda service: moto's `Invoke`, made to run the worker function locally.

Moto runs Lambda code in Docker, which this machine does not have, or (its "lambda simple"
backend) runs nothing at all. The local stack's worker function, whose handler is the fsd
worker (`EMULATED_HANDLERS`), is run as Lambda runs it, in a process of this checkout:

- `Invoke` with InvocationType `Event` answers 202 at once and starts one process
  (`lambda_runtime.py`) on the payload, under the function's execution role: temporary
  credentials of that role (STS, in the emulator, as Lambda gets them; the role must trust
  `lambda.amazonaws.com`), the function's environment variables and its timeout;
- the request is authorized as AWS authorizes it: `lambda:InvokeFunction` on the function's
  ARN (moto asks for `lambda:Invoke` on "*", which no least-privilege policy grants), so a
  worker may invoke its launch-tree children only if the worker role says so;
- a payload over the asynchronous limit (`limits.LAMBDA_ASYNC_MAX_PAYLOAD`) is refused with
  413 RequestTooLargeException; other invocation types of the worker function are refused;
- every invocation it answers is logged, one JSON line in `invocation_log()` (who invoked
  which function, the invocation type, the payload's size and, for an fsd event, its run and
  worker): what the tests check the launch tree's requests against;
- a failed invocation (the handler raised, or the process exited otherwise: crash, SIGKILL,
  timeout) is sent to the function's on-failure destination (an SQS queue), as Lambda sends it
  with 0 retries: one record (`failures.make_record`), sent with the execution role's
  credentials, so the role needs `sqs:SendMessage` on the queue as on AWS.

Not emulated: retries (the deployment configures 0), the maximum event age (events start at
once), concurrency limits and throttling, a function version or alias other than $LATEST.
Functions with any other handler are left to moto.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .limits import LAMBDA_ASYNC_MAX_PAYLOAD

#: Handlers the emulated Lambda runs itself (the worker function's `handler` variable).
EMULATED_HANDLERS = frozenset({"fsd_core.engine.handler.handler"})
_FUNCTION_IN_PATH = re.compile(r"/functions/([^/?]+)")
#: Invocations this emulator is running: request id -> process (reaped by their threads).
RUNNING: dict[str, subprocess.Popen[bytes]] = {}
_LOG_LOCK = threading.Lock()


def invocation_log() -> Path:
    """The emulator's log of the invocations it answered (in the local stack's directory)."""
    from .manifest import local_dir

    return local_dir() / "lambda-invocations.jsonl"


def _caller(headers: Any, account: str, region: str) -> str:
    """The ARN of the identity that signed the request (an IAM user, or an assumed role's session)."""
    from moto.iam.access_control import create_access_key
    from moto.utilities.utils import get_partition

    try:
        key = str(headers.get("Authorization", "")).partition("Credential=")[2].partition("/")[0]
        return str(create_access_key(account, get_partition(region), key, headers).arn)
    except Exception:  # noqa: BLE001 - moto's own errors: the request was refused before this anyway
        return "unknown"


def _log(entry: dict[str, Any]) -> None:
    path = invocation_log()
    with _LOG_LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


def _whose(payload: bytes) -> dict[str, Any]:
    """The run and worker an fsd event names (for the log), {} for any other payload."""
    try:
        event = json.loads(payload)
    except ValueError:
        return {}
    return {k: event.get(k) for k in ("run_id", "worker")} if isinstance(event, dict) else {}


def function_resource(self: Any) -> str:
    """The function ARN a Lambda request acts on (LambdaResponse._determine_resource), "*" for
    requests about no function (ListFunctions)."""
    match = _FUNCTION_IN_PATH.search(unquote(self.path))
    if not match:
        return "*"
    name = unquote(match.group(1))
    if name.startswith("arn:"):
        return name
    if ":function:" in name:  # a partial ARN: ACCOUNT:function:NAME
        return f"arn:aws:lambda:{self.region}:{name}"
    return f"arn:aws:lambda:{self.region}:{self.current_account}:function:{name}"


def _refuse(error: str, message: str, code: int = 400) -> Exception:
    from moto.awslambda.exceptions import LambdaClientError

    exc = LambdaClientError(error, message)
    exc.code = code
    return exc


def patched_invoke(original: Any) -> Any:
    """LambdaBackend.invoke: the worker function runs locally (see the module docstring)."""

    def invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
               response_headers: Any) -> bytes | str | None:
        fn = self.get_function(function_name, qualifier)
        if fn.handler not in EMULATED_HANDLERS:
            return original(self, function_name, qualifier, body, headers, response_headers)
        kind = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        payload = body.encode() if isinstance(body, str) else bytes(body or b"")
        entry = {"time": time.time(), "function": fn.function_arn, "invocation_type": kind,
                 "payload_bytes": len(payload), "caller": _caller(headers, self.account_id, self.region_name),
                 **_whose(payload)}
        if len(payload) > LAMBDA_ASYNC_MAX_PAYLOAD:
            _log(dict(entry, refused="RequestTooLargeException"))
            raise _refuse("RequestTooLargeException", f"Request must be smaller than {LAMBDA_ASYNC_MAX_PAYLOAD} "
                                                      f"bytes for the Invoke operation", 413)
        if kind == "DryRun":
            return b""
        if kind != "Event":
            _log(dict(entry, refused="InvalidParameterValueException"))
            raise _refuse("InvalidParameterValueException", "the emulated Lambda runs the worker function "
                                                            "asynchronously only (InvocationType Event)")
        request_id = start(fn, payload, self.account_id, self.region_name, f"http://{headers.get('Host', '127.0.0.1')}")
        _log(dict(entry, request_id=request_id))
        response_headers["Content-Length"] = "0"
        return b""

    return invoke


def _role_credentials(account: str, region: str, role_arn: str, request_id: str, duration: int) -> dict[str, str]:
    """Temporary credentials of the function's execution role, as Lambda gives them to it."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    role = sts_backends[account][get_partition(region)].assume_role(
        region_name=region, role_session_name=f"awslambda_{request_id[:8]}", role_arn=role_arn,
        policy=None, duration=max(900, duration), external_id=None)  # type: ignore[arg-type]
    return {"aws_access_key_id": role.access_key_id, "aws_secret_access_key": role.secret_access_key,
            "aws_session_token": role.session_token}


def _wants_log(payload: bytes) -> bool:
    """The fsd event asks for its worker's stderr (TestHooks.debug): it goes to the emulator's log."""
    try:
        event = json.loads(payload)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("debug") is True


def start(fn: Any, payload: bytes, account: str, region: str, endpoint: str) -> str:
    """Start one invocation of `fn` on `payload`; returns its request id."""
    from .credentials import WORKER_CREDENTIALS_ENV

    request_id = str(uuid.uuid4())
    timeout = int(fn.timeout or 3)
    creds = _role_credentials(account, region, fn.role, request_id, timeout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
    env.update({WORKER_CREDENTIALS_ENV: json.dumps(creds), "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
                "FSD_EMULATED_FUNCTION_NAME": fn.function_name, "FSD_EMULATED_MEMORY_MB": str(fn.memory_size),
                # (Lambda's own variable: the warm shard cache sizes itself by it. Its
                # AWS_LAMBDA_FUNCTION_NAME is left out: it tells a worker it is on AWS.)
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsd_core.aws.lambda_runtime", fn.handler, request_id, str(timeout)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None if _wants_log(payload) else subprocess.DEVNULL,
        env=env, start_new_session=True)
    RUNNING[request_id] = proc
    threading.Thread(target=_finish, args=(proc, fn, payload, creds, region, endpoint, request_id, timeout),
                     name=f"lambda-{request_id[:8]}", daemon=True).start()
    return request_id


def _finish(proc: subprocess.Popen[bytes], fn: Any, payload: bytes, creds: dict[str, str], region: str,
            endpoint: str, request_id: str, timeout: int) -> None:
    """Feed the event, wait for the invocation (at most the function's timeout), reap it, and
    send a failure record if it failed."""
    try:
        try:
            out, _ = proc.communicate(payload, timeout=timeout)
            error = _error_of(proc.returncode, out, request_id)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            error = {"errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                     "errorType": "Sandbox.Timedout"}
        if error is not None:
            _send_failure(fn, payload, error, creds, region, endpoint, request_id)
    except Exception as exc:  # noqa: BLE001 - a daemon thread of the emulator: say it in its log
        print(f"emulated lambda {request_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        RUNNING.pop(request_id, None)


def _error_of(returncode: int, out: bytes, request_id: str) -> dict[str, Any] | None:
    """None for a successful invocation, else the error document Lambda reports."""
    if returncode == 0:
        return None
    lines = out.strip().splitlines()
    try:
        outcome = json.loads(lines[-1]) if lines else None
    except ValueError:
        outcome = None
    if isinstance(outcome, dict) and "errorMessage" in outcome:
        return outcome
    # Lambda's runtime is Go: it words a signal as Go's os/exec does ("signal: killed"), which is
    # the C library's description of the signal in lower case.
    description = signal.strsignal(-returncode) if returncode < 0 else None
    why = f"signal: {description.lower()}" if description else f"exit status {returncode}"
    return {"errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {why}",
            "errorType": "Runtime.ExitError"}


def _on_failure(fn: Any) -> str | None:
    """The ARN of the function's on-failure destination, if it has one."""
    for config in getattr(fn, "event_invoke_config", None) or []:
        destination = (config.config.get("DestinationConfig") or {}).get("OnFailure") or {}
        if destination.get("Destination"):
            return str(destination["Destination"])
    return None


def _send_failure(fn: Any, payload: bytes, error: dict[str, Any], creds: dict[str, str], region: str,
                  endpoint: str, request_id: str) -> None:
    """Send the failure record to an SQS on-failure destination, as the execution role."""
    import boto3

    from .failures import make_record

    arn = _on_failure(fn)
    if arn is None or not arn.startswith("arn:aws:sqs:"):
        return
    _, _, _, queue_region, account, name = arn.split(":", 5)
    record = make_record(fn.function_arn, payload, error=error, request_id=request_id)
    sqs = boto3.session.Session().client("sqs", region_name=queue_region, endpoint_url=endpoint, **creds)
    sqs.send_message(QueueUrl=f"{endpoint}/{account}/{name}", MessageBody=json.dumps(record))


def stop_all() -> None:
    """Kill every invocation still running (the emulator is stopping)."""
    for proc in list(RUNNING.values()):
        try:
            proc.kill()
        except OSError:
            pass
