"""The AWS Lambda launcher: a worker is an asynchronous invocation of the worker function."""

from __future__ import annotations

import json
import time
from typing import Any

from ..aws.clients import client
from ..aws.manifest import Manifest
from .launch import Launcher


class LambdaLauncher(Launcher):
    """Asynchronous Lambda invocation of the worker function (no retries: see Terraform)."""

    kind = "lambda"

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def start(self, event: dict[str, Any]) -> None:
        event = dict(event, requested_at=time.time())
        self.client.invoke(FunctionName=self.function_name, InvocationType="Event",
                           Payload=json.dumps(event).encode())
        return None

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "function_name": self.function_name}

    @classmethod
    def from_config(cls, config: dict[str, Any], manifest: dict[str, Any] | None = None) -> LambdaLauncher:
        return cls(client(Manifest.from_dict(manifest or {}), "lambda"), config["function_name"])
