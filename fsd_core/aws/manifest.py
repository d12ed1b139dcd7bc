"""The deployment manifest: the JSON form of the Terraform root module's outputs.

``region``, ``endpoint`` (emulator URL, null on AWS), ``topic_arns``, ``queue_urls`` (index =
worker slot), ``bucket``, ``function_name`` and ``max_workers``; other outputs are kept out of
the manifest's fields but tolerated. Also where manifests live::

    <data>/local/manifest.json    the local deployment's manifest
    <data>/deploy/manifest.json   the one `fsd deploy` wrote (AWS)

The manifest a run uses: ``$FSD_MANIFEST`` if set, else the AWS deployment's manifest if
`fsd deploy` wrote one, else the local deployment's.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fileio import atomic_write_text
from ..paths import data_dir


#: Manifest fields a deployment may lack (strings or null).
OPTIONAL_FIELDS = ("worker_role_arn", "package_bucket", "failure_queue_url", "object_bucket", "object_storage")


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
    # Optional outputs (older deployments lack them; None is left out of the JSON):
    #: the role the workers run under (Lambda's execution role; locally the operator assumes
    #: it for the worker processes);
    worker_role_arn: str | None = None
    #: where `fsd deploy` uploads the Lambda package (kept out of the run data's bucket);
    package_bucket: str | None = None
    #: the queue Lambda reports failed worker invocations on (on-failure destination);
    failure_queue_url: str | None = None
    #: the object channel's bucket ("standard": the deployment bucket; "express": a directory bucket).
    object_bucket: str | None = None
    object_storage: str | None = None
    source: str = field(default="<manifest>", compare=False, repr=False)

    @property
    def emulated(self) -> bool:
        """True when the deployment lives in a local emulator."""
        return self.endpoint is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (without `source`)."""
        data = asdict(self)
        del data["source"]
        for name in OPTIONAL_FIELDS:
            if data[name] is None:
                del data[name]
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
                   max_workers=max_workers, source=source,
                   **{name: string(name, optional=True) for name in OPTIONAL_FIELDS if name in data})

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
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: deployment manifest is not UTF-8 text (a binary file?)") from None
        except IsADirectoryError:
            raise InputError(f"{path}: deployment manifest is a directory, not a file") from None
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
