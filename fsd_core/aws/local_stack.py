"""The local stack: the emulator plus the deployment Terraform provisions in it.

Local resources are provisioned by the same Terraform root module as on AWS (see
`terraform.py`), with the provider's endpoints pointed at the emulator; the Terraform working
directory (config copy + state) is `<data>/local/terraform/`. A run that needs a deployment and
has none configured gets the local one from :func:`deployment_for_run`, started on demand.
"""

from __future__ import annotations

import contextlib
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError, RunError
from ..fileio import atomic_path, held
from .credentials import ANONYMOUS, operator, operator_arn
from .emulator import EmulatorState, _forget_local_deployment, emulator_state, start_emulator, stop_emulator
from .manifest import Manifest, configured_manifest_path, local_dir, local_manifest_path

#: Worker slots `ensure_local_deployment` provisions at least (queue creation is parallel,
#: so 8 slots cost about the same apply time as 2 and spare later re-applies).
DEFAULT_LOCAL_WORKERS = 8
LOCAL_REGION = "us-east-1"
LOCAL_NAME_PREFIX = "fsd-local"


def deployment_for_run(workers: int, variant: str,
                       progress: Callable[[str], None] | None = None) -> Manifest:
    """The manifest for a `fsd run --variant queue|object` on `workers` workers.

    Uses the configured deployment if any, else reuses or starts the local one.
    """
    path = configured_manifest_path()
    manifest = Manifest.load(path) if path else ensure_local_deployment(workers, progress)
    manifest.require(workers, variant)
    return manifest


def local_status() -> dict[str, Any]:
    """JSON-able status of the emulator and the local deployment."""
    state = emulator_state()
    status: dict[str, Any] = {"running": state is not None, "state_dir": str(local_dir())}
    if state is not None:
        status.update(pid=state.pid, port=state.port, endpoint=state.endpoint,
                      uptime_s=round(time.time() - state.started, 1), iam_enforced=state.iam_enforced,
                      credentials=operator(state.endpoint))
    else:
        status.update(iam_enforced=False, credentials=None)
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


def _local_lock() -> contextlib.AbstractContextManager[None]:
    """Serialise `local up/down` and on-demand provisioning across processes."""
    return held(local_dir() / "lock")


def _placeholder_package(directory: Path) -> Path:
    """A tiny Lambda zip: the emulator cannot run Lambda code, but the function must exist."""
    target = directory / "placeholder-package.zip"
    if not target.exists():
        with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr("fsd_core/__init__.py", "")
            archive.writestr("fsd_core/engine/__init__.py", "")
            archive.writestr("fsd_core/engine/handler.py",
                             "def handler(event, context):\n"
                             "    raise RuntimeError('placeholder package: run `fsd package`')\n")
    return target


def provision_local(workers: int, progress: Callable[[str], None] | None = None) -> Manifest:
    """Apply the Terraform root module against the running emulator with `workers` slots."""
    from .terraform import TerraformProject

    state = emulator_state()
    if state is None:
        raise RunError("the local emulator is not running (fsd local up)")
    project = TerraformProject(local_dir() / "terraform", env=_emulator_env(state.endpoint), progress=progress,
                               verbose=False)
    variables = {
        "name_prefix": LOCAL_NAME_PREFIX,
        "region": LOCAL_REGION,
        "endpoint": state.endpoint,
        "max_workers": workers,
        "package_file": str(_placeholder_package(local_dir())),
        # The local stack plays the Lambda service: its operator starts the workers with the
        # worker role's credentials, so the role must trust it (on AWS only Lambda may).
        "local_role_trustees": [operator_arn(state.endpoint)] if operator_arn(state.endpoint) else [],
    }
    manifest = project.apply(variables=variables, parallelism=max(10, 3 * workers + 10))
    manifest.save(local_manifest_path())
    return Manifest.load(local_manifest_path())  # its `source` names the manifest file


def _emulator_env(endpoint: str) -> dict[str, str]:
    """Terraform's environment: the local operator's keys (the emulator refuses anyone else)."""
    creds = operator(endpoint) or ANONYMOUS
    return {"AWS_ACCESS_KEY_ID": creds["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_DEFAULT_REGION": LOCAL_REGION}


def worker_credentials(manifest: Manifest, run_id: str) -> dict[str, str]:
    """Temporary credentials of the deployment's worker role (STS AssumeRole as the local
    operator), for the local processes that play a run's Lambda workers."""
    from .clients import client

    if not manifest.worker_role_arn:
        raise RunError(f"{manifest.source}: the deployment names no worker_role_arn (re-apply: fsd local up)")
    from .clients import BotoCoreError, ClientError, aws_failure

    try:
        answer = client(manifest, "sts").assume_role(RoleArn=manifest.worker_role_arn,
                                                     RoleSessionName=f"fsd-run-{run_id}", DurationSeconds=3600)
    except (BotoCoreError, ClientError) as exc:
        raise RunError(f"the worker role {manifest.worker_role_arn}: {aws_failure('STS', 'AssumeRole', exc)}") from None
    c = answer["Credentials"]
    return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"]}


def local_up(workers: int = DEFAULT_LOCAL_WORKERS,
             progress: Callable[[str], None] | None = None) -> Manifest:
    """Start the emulator if needed and provision `workers` slots (a no-op if already so)."""
    with _local_lock():
        state = emulator_state()
        if state is None:
            _forget_local_deployment()  # a dead emulator took its resources with it
            if progress:
                progress("starting the local AWS emulator (moto's server on a loopback port)")
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
