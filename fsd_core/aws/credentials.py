"""Who talks to the local emulator: the operator, or a worker under the deployment's role.

The emulator enforces IAM (`emulator.py`), so every request is signed by a known identity and
allowed by its policies, as on AWS:

- the **operator** is an IAM user created when the emulator starts; its keys are kept in a
  private file per emulator (by port, 0600 in a 0700 directory of this user's), so any `fsd`
  process that reaches the emulator by its endpoint, whatever its FSD_HOME, signs as the
  operator;
- a **worker** gets temporary credentials of the deployment's worker role (STS AssumeRole,
  as Lambda gives a function its execution role's credentials) in the environment variable
  `FSD_WORKER_CREDENTIALS`, which its launch-tree children inherit. They take precedence.

On AWS neither applies: clients use the default credential chain (the function's role on
Lambda, the operator's own profile elsewhere).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..fileio import atomic_write_text

WORKER_CREDENTIALS_ENV = "FSD_WORKER_CREDENTIALS"
#: What a client signs with when it has no identity at all: the emulator refuses it.
ANONYMOUS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def registry_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"fsd-emulators-{os.getuid()}"


def _path(endpoint: str) -> Path:
    return registry_dir() / f"{urlparse(endpoint).port}.json"


def save_operator(endpoint: str, credentials: dict[str, str], arn: str) -> None:
    """Keep the emulator's operator keys (and its ARN), readable by this user only."""
    directory = registry_dir()
    directory.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    atomic_write_text(_path(endpoint), json.dumps({"endpoint": endpoint, "arn": arn, **credentials}) + "\n", mode=0o600)


def forget_operator(endpoint: str) -> None:
    _path(endpoint).unlink(missing_ok=True)


def _record(endpoint: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_path(endpoint).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("endpoint") == endpoint else None


def operator(endpoint: str) -> dict[str, str] | None:
    """The operator keys of the emulator at `endpoint`, None if it has none (or is not ours)."""
    data = _record(endpoint)
    if data is None:
        return None
    return {k: data[k] for k in ("aws_access_key_id", "aws_secret_access_key") if k in data}


def operator_arn(endpoint: str) -> str | None:
    """The local operator's IAM user ARN (the worker role trusts it, as it trusts Lambda on AWS)."""
    data = _record(endpoint)
    return data.get("arn") if data else None


def as_environment(credentials: dict[str, str]) -> dict[str, str]:
    """The variable a worker process (and its children) takes its identity from."""
    return {WORKER_CREDENTIALS_ENV: json.dumps(credentials)}


def for_emulator(endpoint: str) -> dict[str, Any]:
    """boto3 client credentials at the emulator: the worker's if this is a worker, else the
    operator's, else none that it accepts."""
    worker = os.environ.get(WORKER_CREDENTIALS_ENV)
    if worker:
        try:
            creds = json.loads(worker)
            return {k: creds[k] for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")}
        except (ValueError, KeyError, TypeError):
            pass  # unusable: sign as nobody, and be refused
        return dict(ANONYMOUS)
    return operator(endpoint) or dict(ANONYMOUS)
