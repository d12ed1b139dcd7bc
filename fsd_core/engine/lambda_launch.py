"""The AWS Lambda launcher: a worker is an asynchronous invocation of the worker function."""

from __future__ import annotations

import json
import time
from typing import Any

from ..aws.clients import aws_failure, client
from ..aws.limits import LAMBDA_ASYNC_MAX_PAYLOAD
from ..aws.manifest import Manifest
from ..errors import RunError
from .launch import Launcher


class LambdaLauncher(Launcher):
    """Asynchronous Lambda invocation of the worker function (no retries: see Terraform).

    One `Invoke` per worker, InvocationType `Event`, the worker's event as the payload (at
    most `LAMBDA_ASYNC_MAX_PAYLOAD` bytes). `progress_dir` is for workers that run on this
    machine (the emulated Lambda): the root's launcher gives worker 0's event the run's
    progress directory, the local side channel, and the launch tree passes it on."""

    kind = "lambda"

    def __init__(self, client: Any, function_name: str, progress_dir: str | None = None) -> None:
        self.client = client
        self.function_name = function_name
        self.progress_dir = progress_dir

    def start(self, event: dict[str, Any]) -> None:
        event = dict(event, requested_at=time.time())
        if self.progress_dir and event.get("progress_dir") is None:
            event["progress_dir"] = self.progress_dir
        payload = json.dumps(event).encode()
        worker = event.get("worker")
        if len(payload) > LAMBDA_ASYNC_MAX_PAYLOAD:
            raise RunError(f"worker {worker}: its event has {len(payload)} bytes, over Lambda's asynchronous "
                           f"payload limit of {LAMBDA_ASYNC_MAX_PAYLOAD}")
        try:
            self.client.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=payload)
        except Exception as exc:  # botocore's errors: one line naming the worker and why
            raise RunError(f"worker {worker}: {aws_failure('lambda', 'Invoke', exc)}") from exc

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "function_name": self.function_name}

    @classmethod
    def from_config(cls, config: dict[str, Any], manifest: dict[str, Any] | None = None,
                    progress_dir: str | None = None) -> LambdaLauncher:
        return cls(client(Manifest.from_dict(manifest or {}), "lambda"), config["function_name"], progress_dir)
