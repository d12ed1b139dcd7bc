"""boto3 clients: every cloud path in `fsd_core` gets its clients here, so the same code
reaches AWS or the local emulator (only the endpoint and the credentials differ)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .manifest import Manifest

__all__ = ["BotoCoreError", "ClientError", "EMULATOR_CREDENTIALS", "botocore_config", "client"]

#: Credentials the emulator accepts (any value works; real ones must never be sent there).
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


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
