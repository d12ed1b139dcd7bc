"""boto3 clients: every cloud path in `fsd_core` gets its clients here, so the same code
reaches AWS or the local emulator (only the endpoint and the credentials differ)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .credentials import for_emulator
from .manifest import Manifest

__all__ = ["BotoCoreError", "ClientError", "botocore_config", "client"]

def botocore_config(pool: int) -> Any:
    """Client settings the channels share: `pool` connections, standard retries, timeouts."""
    from botocore.config import Config

    return Config(max_pool_connections=pool, retries={"max_attempts": 6, "mode": "standard"},
                  connect_timeout=10, read_timeout=60)


def client(manifest: Manifest, service: str, config: Any = None) -> Any:
    """A boto3 client for `service` in the manifest's region, at its endpoint if any.

    Against the emulator the client signs as the local operator, or as the worker role when
    this process is a worker (`credentials.for_emulator`), so real credentials never leave the
    machine and the emulator's IAM decides as AWS would; on AWS the default credential chain
    applies. `config` is a botocore Config.
    """
    import boto3  # imported here: worker processes that never touch AWS need no boto3

    kwargs: dict[str, Any] = {"region_name": manifest.region}
    if manifest.endpoint:
        kwargs.update(endpoint_url=manifest.endpoint, **for_emulator(manifest.endpoint))
    if config is not None:
        kwargs["config"] = config
    return boto3.session.Session().client(service, **kwargs)
