"""The local AWS emulator: moto's server in its own process on a free loopback port.

It keeps running after `fsd local up` returns, until `fsd local down`::

    <data>/local/emulator.json    pid, port and endpoint of the running emulator
    <data>/local/emulator.log     its output
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import RunError
from ..fileio import PRIVATE_FILE, atomic_write_text, private_dir
from ..processes import process_running
from .credentials import ANONYMOUS, forget_operator, save_operator
from .manifest import local_dir, local_manifest_path

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class EmulatorState:
    """A running emulator process, as recorded in `<local dir>/emulator.json`."""

    pid: int
    port: int
    endpoint: str
    started: float
    log: str
    iam_enforced: bool = False


_children: dict[int, subprocess.Popen[bytes]] = {}  # emulators this process started: reaped on stop


def _state_path() -> Path:
    return local_dir() / "emulator.json"


def _pid_alive(pid: int) -> bool:
    """True if `pid` runs (a zombie is dead) and is a moto server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return process_running(pid) and (b"strict_moto" in cmdline or b"moto.server" in cmdline)


def endpoint_answers(endpoint: str, timeout: float = 2.0) -> bool:
    """True if an HTTP server answers at `endpoint` within `timeout` seconds (a frozen or
    stopped emulator does not)."""
    return _answers(endpoint, timeout)


def endpoint_listens(endpoint: str, timeout: float = 1.0) -> bool:
    """False if nothing listens at `endpoint` any more (a stopped emulator: the connection is
    refused); a frozen one still listens, though it does not answer."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(endpoint)
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout):
            return True
    except ConnectionRefusedError:
        return False
    except (OSError, ValueError):
        return True  # (a timeout or an unreachable host: not known to be gone)


def _answers(endpoint: str, timeout: float = 2.0) -> bool:
    """True if an HTTP server answers at `endpoint` (any status)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def emulator_state() -> EmulatorState | None:
    """The recorded emulator if its process is alive and answering, else None."""
    try:
        state = EmulatorState(**json.loads(_state_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _pid_alive(state.pid) and _answers(state.endpoint):
        return state
    return None


def start_emulator(port: int | None = None) -> EmulatorState:
    """Start moto's server on 127.0.0.1 (a free port unless given), wait until it answers.

    The process runs in its own session so it outlives the command that started it; its pid,
    port and endpoint are recorded in the state file. Raises RunError if it does not come up.
    """
    try:
        import moto.server  # noqa: F401  (only to fail early with a clear message)
    except ImportError as exc:
        raise RunError("the local emulator needs moto[server]: pip install 'moto[server]'") from exc
    directory = private_dir(local_dir())  # its state names the operator's endpoint; its log the requests
    log = directory / "emulator.log"
    for attempt in range(3):
        chosen = port or _free_port()
        with open(os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE), "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fsd_core.aws.strict_moto", "-H", "127.0.0.1", "-p", str(chosen)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        endpoint = f"http://127.0.0.1:{chosen}"
        deadline = time.monotonic() + _START_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers(endpoint, timeout=0.5):
                _children[proc.pid] = proc
                try:
                    enforce_iam(endpoint)
                except Exception as exc:
                    _terminate(proc.pid, proc)
                    raise RunError(f"local emulator on {endpoint}: could not enforce IAM ({exc}; log: {log})") from exc
                state = EmulatorState(proc.pid, chosen, endpoint, time.time(), str(log), iam_enforced=True)
                atomic_write_text(_state_path(), json.dumps(asdict(state), indent=1) + "\n")
                return state
            time.sleep(0.1)
        if proc.poll() is None:
            _terminate(proc.pid, proc)
            raise RunError(f"local emulator did not answer on {endpoint} within "
                           f"{_START_TIMEOUT_S:.0f} s (log: {log})")
        if port is not None or attempt == 2:
            break  # a fixed port that failed, or repeated failures: give up
    raise RunError(f"local emulator exited at start (exit {proc.returncode}; log: {log})")


OPERATOR_USER = "fsd-local-operator"
#: The operator may do anything in its own emulator (it runs Terraform there, as an
#: administrator does on AWS); the workers get only the deployment's worker role.
_OPERATOR_POLICY = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def enforce_iam(endpoint: str) -> dict[str, str]:
    """Create the local operator (an IAM user with keys), keep its keys, then switch moto's
    access control on: from then on every request must be signed by a known identity and be
    allowed by its policies (moto's `/moto-api/reset-auth` with a count of 0)."""
    import boto3

    iam = boto3.session.Session().client("iam", region_name="us-east-1", endpoint_url=endpoint,
                                         **ANONYMOUS)
    arn = iam.create_user(UserName=OPERATOR_USER)["User"]["Arn"]
    iam.put_user_policy(UserName=OPERATOR_USER, PolicyName="local-operator",
                        PolicyDocument=json.dumps(_OPERATOR_POLICY))
    key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    save_operator(endpoint, creds, arn)
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        if json.loads(answer.read()).get("status") != "ok":
            raise RunError("moto refused to enable IAM")
    return creds


def _terminate(pid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM, then SIGKILL after a grace period; reap if it is our child."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not _pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=_STOP_TIMEOUT_S)


def stop_emulator() -> bool:
    """Stop the recorded emulator (if any) and forget it and its deployment.

    Returns True if a running emulator was stopped. The local manifest and Terraform state
    are removed too: the emulator keeps its resources in memory, so they are gone with it.
    """
    stopped = False
    try:
        state = EmulatorState(**json.loads(_state_path().read_text()))
    except (OSError, ValueError, TypeError):
        state = None
    if state is not None and _pid_alive(state.pid):
        _terminate(state.pid, _children.pop(state.pid, None))
        stopped = True
    if state is not None:
        forget_operator(state.endpoint)
    _forget_local_deployment()
    _state_path().unlink(missing_ok=True)
    return stopped


def _forget_local_deployment() -> None:
    from .lambda_emulation import invocation_log

    local_manifest_path().unlink(missing_ok=True)
    invocation_log().unlink(missing_ok=True)  # the invocations of an emulator that is gone
    workdir = local_dir() / "terraform"
    for name in ("terraform.tfstate", "terraform.tfstate.backup"):
        (workdir / name).unlink(missing_ok=True)
