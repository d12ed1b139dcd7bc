"""Deployment manifests, boto3 clients, and the local AWS emulator.

A *deployment manifest* is the JSON form of the Terraform outputs (terraform/outputs.tf):
``region``, ``endpoint`` (emulator URL, null on AWS), ``topic_arns``, ``queue_urls`` (index =
worker slot), ``bucket``, ``function_name`` and ``max_workers``. Every cloud path in
`fsd_core` gets its clients from :func:`client`, so the same code reaches AWS or the emulator.

Where things live (``FSD_HOME`` overrides the data directory, default
``$XDG_DATA_HOME/fsd-inference`` i.e. ``~/.local/share/fsd-inference``)::

    <data>/local/emulator.json    pid, port and endpoint of the running emulator
    <data>/local/emulator.log     its output
    <data>/local/terraform/       Terraform working dir (config copy + state) for local mode
    <data>/local/manifest.json    the local deployment's manifest
    <data>/deploy/                the same for `fsd deploy` (AWS)

The manifest a run uses: ``$FSD_MANIFEST`` if set, else the AWS deployment's manifest if
`fsd deploy` wrote one, else the local deployment, which :func:`ensure_local_deployment`
starts on demand. The emulator is moto's server in its own process (``python -m
moto.server``) on a free loopback port; it keeps running after `fsd local up` returns, until
`fsd local down`. Local resources are provisioned by the same Terraform root module as on
AWS (see `deploy.py`), with the provider's endpoints pointed at the emulator.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, RunError
from .fileio import atomic_path, atomic_write_text
from .runs import data_dir  # one data directory for runs, plans and deployments

#: Worker slots `ensure_local_deployment` provisions at least (queue creation is parallel,
#: so 8 slots cost about the same apply time as 2 and spare later re-applies).
DEFAULT_LOCAL_WORKERS = 8
#: Credentials the emulator accepts (any value works; real ones must never be sent there).
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
LOCAL_REGION = "us-east-1"
LOCAL_NAME_PREFIX = "fsd-local"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------- manifest

@dataclass(frozen=True)
class Manifest:
    """The deployment manifest: exactly the root module's Terraform outputs."""

    region: str
    endpoint: str | None
    topic_arns: list[str]
    queue_urls: list[str]
    bucket: str | None
    function_name: str | None
    max_workers: int
    source: str = field(default="<manifest>", compare=False, repr=False)

    @property
    def emulated(self) -> bool:
        """True when the deployment lives in a local emulator."""
        return self.endpoint is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (without `source`)."""
        data = asdict(self)
        del data["source"]
        return data

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the manifest atomically as JSON."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: Any, source: str = "<manifest>") -> Manifest:
        """Validate a decoded JSON object; errors are one-line InputErrors naming the field."""
        if not isinstance(data, dict):
            raise InputError(f"{source}: deployment manifest must be a JSON object")

        def need(name: str) -> Any:
            if name not in data:
                raise InputError(f"{source}: deployment manifest has no field {name!r}")
            return data[name]

        def string(name: str, optional: bool = False) -> str | None:
            value = need(name)
            if value is None and optional:
                return None
            if not isinstance(value, str) or not value:
                kind = "a non-empty string or null" if optional else "a non-empty string"
                raise InputError(f"{source}: manifest field {name!r} must be {kind}, got {value!r}")
            return value

        def strings(name: str) -> list[str]:
            value = need(name)
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise InputError(f"{source}: manifest field {name!r} must be a list of strings")
            return list(value)

        max_workers = need("max_workers")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise InputError(f"{source}: manifest field 'max_workers' must be an integer >= 1, "
                             f"got {max_workers!r}")
        queue_urls = strings("queue_urls")
        if queue_urls and len(queue_urls) != max_workers:
            raise InputError(f"{source}: manifest field 'queue_urls' has {len(queue_urls)} "
                             f"entries, expected one per worker slot ({max_workers})")
        return cls(region=string("region"), endpoint=string("endpoint", optional=True),
                   topic_arns=strings("topic_arns"), queue_urls=queue_urls,
                   bucket=string("bucket", optional=True),
                   function_name=string("function_name", optional=True),
                   max_workers=max_workers, source=source)

    @classmethod
    def from_terraform_outputs(cls, outputs: dict[str, Any], source: str = "terraform output") -> Manifest:
        """Build from `terraform output -json` ({name: {"value": ...}})."""
        return cls.from_dict({k: v.get("value") if isinstance(v, dict) else v
                              for k, v in outputs.items()}, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read and validate a manifest file."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise InputError(f"{path}: deployment manifest not found") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read deployment manifest: {exc.strerror}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: deployment manifest is not valid JSON "
                             f"(line {exc.lineno}: {exc.msg})") from None
        return cls.from_dict(data, str(path))

    def require(self, workers: int, variant: str) -> None:
        """Check the deployment can carry a run of `variant` ("queue"/"object") on `workers`."""
        if workers > self.max_workers:
            raise InputError(f"{self.source}: deployment has {self.max_workers} worker slots, "
                             f"the run needs {workers}")
        if variant == "queue" and not (self.topic_arns and self.queue_urls):
            raise InputError(f"{self.source}: deployment has no queue channel (enable_queue)")
        if variant == "object" and not self.bucket:
            raise InputError(f"{self.source}: deployment has no bucket (enable_object)")


def botocore_config(pool: int) -> Any:
    """Client settings the channels share: `pool` connections, standard retries, timeouts."""
    from botocore.config import Config

    return Config(max_pool_connections=pool, retries={"max_attempts": 6, "mode": "standard"},
                  connect_timeout=10, read_timeout=60)


def client(manifest: Manifest, service: str, config: Any = None) -> Any:
    """A boto3 client for `service` in the manifest's region, at its endpoint if any.

    Against an emulator the client uses dummy credentials, so real ones never leave the
    machine; on AWS the default credential chain applies. `config` is a botocore Config.
    """
    import boto3  # imported here: worker processes that never touch AWS need no boto3

    kwargs: dict[str, Any] = {"region_name": manifest.region}
    if manifest.endpoint:
        kwargs.update(endpoint_url=manifest.endpoint, **EMULATOR_CREDENTIALS)
    if config is not None:
        kwargs["config"] = config
    return boto3.session.Session().client(service, **kwargs)


# --------------------------------------------------------------------------- paths

def local_dir() -> Path:
    """State directory of the local emulator and its deployment."""
    return data_dir() / "local"


def local_manifest_path() -> Path:
    return local_dir() / "manifest.json"


def deploy_manifest_path() -> Path:
    return data_dir() / "deploy" / "manifest.json"


def configured_manifest_path() -> Path | None:
    """`$FSD_MANIFEST`, else the `fsd deploy` manifest if there is one, else None."""
    if os.environ.get("FSD_MANIFEST"):
        return Path(os.environ["FSD_MANIFEST"]).expanduser()
    return deploy_manifest_path() if deploy_manifest_path().exists() else None


def active_manifest_path() -> Path:
    """The manifest runs use: the configured one, else the local deployment's."""
    return configured_manifest_path() or local_manifest_path()


def deployment_for_run(workers: int, variant: str,
                       progress: Callable[[str], None] | None = None) -> Manifest:
    """The manifest for a `fsd run --variant queue|object` on `workers` workers.

    Uses the configured deployment if any, else reuses or starts the local one.
    """
    path = configured_manifest_path()
    manifest = Manifest.load(path) if path else ensure_local_deployment(workers, progress)
    manifest.require(workers, variant)
    return manifest


# --------------------------------------------------------------------------- emulator

@dataclass(frozen=True)
class EmulatorState:
    """A running emulator process, as recorded in `<local dir>/emulator.json`."""

    pid: int
    port: int
    endpoint: str
    started: float
    log: str


_children: dict[int, subprocess.Popen[bytes]] = {}  # emulators this process started: reaped on stop


def _state_path() -> Path:
    return local_dir() / "emulator.json"


def _pid_alive(pid: int) -> bool:
    """True if `pid` runs (a zombie is dead) and is a moto server."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X") and b"moto.server" in cmdline


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
    directory = local_dir()
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "emulator.log"
    for attempt in range(3):
        chosen = port or _free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(chosen)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        endpoint = f"http://127.0.0.1:{chosen}"
        deadline = time.monotonic() + _START_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers(endpoint, timeout=0.5):
                _children[proc.pid] = proc
                state = EmulatorState(proc.pid, chosen, endpoint, time.time(), str(log))
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
    _forget_local_deployment()
    _state_path().unlink(missing_ok=True)
    return stopped


def _forget_local_deployment() -> None:
    local_manifest_path().unlink(missing_ok=True)
    workdir = local_dir() / "terraform"
    for name in ("terraform.tfstate", "terraform.tfstate.backup"):
        (workdir / name).unlink(missing_ok=True)


def local_status() -> dict[str, Any]:
    """JSON-able status of the emulator and the local deployment."""
    state = emulator_state()
    status: dict[str, Any] = {"running": state is not None, "state_dir": str(local_dir())}
    if state is not None:
        status.update(pid=state.pid, port=state.port, endpoint=state.endpoint,
                      uptime_s=round(time.time() - state.started, 1))
    manifest = _local_manifest(state)
    status["manifest"] = str(local_manifest_path()) if manifest else None
    status["deployment"] = manifest.to_dict() if manifest else None
    return status


def _local_manifest(state: EmulatorState | None) -> Manifest | None:
    """The local manifest if it belongs to the running emulator."""
    if state is None or not local_manifest_path().exists():
        return None
    try:
        manifest = Manifest.load(local_manifest_path())
    except InputError:
        return None
    return manifest if manifest.endpoint == state.endpoint else None


@contextlib.contextmanager
def _local_lock() -> Iterator[None]:
    """Serialise `local up/down` and on-demand provisioning across processes."""
    local_dir().mkdir(parents=True, exist_ok=True)
    with open(local_dir() / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- local deployment

def _placeholder_package(directory: Path) -> Path:
    """A tiny Lambda zip: the emulator cannot run Lambda code, but the function must exist."""
    target = directory / "placeholder-package.zip"
    if not target.exists():
        with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr("fsd_core/__init__.py", "")
            archive.writestr("fsd_core/handler.py",
                             "def handler(event, context):\n"
                             "    raise RuntimeError('placeholder package: run `fsd package`')\n")
    return target


def provision_local(workers: int, progress: Callable[[str], None] | None = None) -> Manifest:
    """Apply the Terraform root module against the running emulator with `workers` slots."""
    from .deploy import TerraformProject

    state = emulator_state()
    if state is None:
        raise RunError("the local emulator is not running (fsd local up)")
    project = TerraformProject(local_dir() / "terraform", env=_emulator_env(), progress=progress,
                               verbose=False)
    variables = {
        "name_prefix": LOCAL_NAME_PREFIX,
        "region": LOCAL_REGION,
        "endpoint": state.endpoint,
        "max_workers": workers,
        "package_file": str(_placeholder_package(local_dir())),
    }
    manifest = project.apply(variables=variables, parallelism=max(10, 3 * workers + 10))
    manifest.save(local_manifest_path())
    return Manifest.load(local_manifest_path())  # its `source` names the manifest file


def _emulator_env() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_DEFAULT_REGION": LOCAL_REGION}


def local_up(workers: int = DEFAULT_LOCAL_WORKERS,
             progress: Callable[[str], None] | None = None) -> Manifest:
    """Start the emulator if needed and provision `workers` slots (a no-op if already so)."""
    with _local_lock():
        state = emulator_state()
        if state is None:
            _forget_local_deployment()  # a dead emulator took its resources with it
            state = start_emulator()
            if progress:
                progress(f"emulator started: {state.endpoint} (pid {state.pid})")
        manifest = _local_manifest(state)
        if manifest is not None and manifest.max_workers == workers:
            return manifest
        if progress:
            progress(f"terraform apply: {workers} worker slots against {state.endpoint} "
                     f"(each SQS queue takes ~25 s in the emulator; created in parallel)")
        return provision_local(workers, progress)


def local_down() -> bool:
    """Stop the emulator and forget the local deployment."""
    with _local_lock():
        return stop_emulator()


def ensure_local_deployment(workers: int,
                            progress: Callable[[str], None] | None = None) -> Manifest:
    """A local deployment with at least `workers` slots: reused if running, else started."""
    with _local_lock():
        state = emulator_state()
        manifest = _local_manifest(state)
        if manifest is not None and manifest.max_workers >= workers:
            return manifest
    return local_up(max(workers, DEFAULT_LOCAL_WORKERS,
                        manifest.max_workers if manifest else 0), progress)
