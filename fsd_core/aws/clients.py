"""boto3 clients: every cloud path in `fsd_core` gets its clients here, so the same code
reaches AWS or the local emulator (only the endpoint and the credentials differ)."""

from __future__ import annotations

import os
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .credentials import for_emulator
from .manifest import Manifest

__all__ = ["BotoCoreError", "ClientError", "CALL_DEADLINE_S", "aws_failure", "botocore_config", "client"]

#: Every AWS call is bounded: a connection within CONNECT_TIMEOUT_S, an answer within
#: READ_TIMEOUT_S (above SQS's longest long poll, 20 s), at most ATTEMPTS tries (standard
#: retry mode, with its back-off). A frozen endpoint therefore costs one call at most
#: CALL_DEADLINE_S, and the error names the service.
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 25
ATTEMPTS = 2
CALL_DEADLINE_S = ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + 5


def botocore_config(pool: int = 10) -> Any:
    """Client settings every client shares: `pool` connections, bounded retries and timeouts."""
    from botocore.config import Config

    return Config(max_pool_connections=pool, retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
                  connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S)


def aws_failure(service: str, action: str, exc: Exception) -> str:
    """One line for a failed AWS call: the service, the call and why (a timeout says so)."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        why = f"the endpoint did not answer within {READ_TIMEOUT_S} s ({ATTEMPTS} tries)"
    elif isinstance(exc, EndpointConnectionError):
        why = "cannot connect to the endpoint"
    elif isinstance(exc, ClientError):
        why = exc.response.get("Error", {}).get("Code", "error")
    else:
        why = type(exc).__name__
    return f"{service} {action} failed: {why}"


_session: tuple[int, Any] | None = None  # (pid, boto3 Session): one per process
_session_lock = threading.Lock()


def _shared_session() -> Any:
    """This process's boto3 Session. A new Session per client re-reads botocore's endpoint and
    service data: ~0.13 s a client (cProfile: 0.8 of the 0.9 s of a doctor check, 6 clients),
    paid again by every worker. Clients share it; they get their credentials explicitly at the
    emulator, and the default chain (resolved once, refreshed by botocore) on AWS."""
    import boto3

    global _session
    if _session is None or _session[0] != os.getpid():
        _session = (os.getpid(), boto3.session.Session())
    return _session[1]


def client(manifest: Manifest, service: str, config: Any = None) -> Any:
    """A boto3 client for `service` in the manifest's region, at its endpoint if any.

    Against the emulator the client signs as the local operator, or as the worker role when
    this process is a worker (`credentials.for_emulator`), so real credentials never leave the
    machine and the emulator's IAM decides as AWS would; on AWS the default credential chain
    applies. `config` is a botocore Config (default: `botocore_config()`, bounded).
    """
    kwargs: dict[str, Any] = {"region_name": manifest.region}
    if manifest.endpoint:
        kwargs.update(endpoint_url=manifest.endpoint, **for_emulator(manifest.endpoint))
    kwargs["config"] = config if config is not None else botocore_config()
    with _session_lock:  # a Session is not thread-safe; the clients it makes are
        return _shared_session().client(service, **kwargs)
