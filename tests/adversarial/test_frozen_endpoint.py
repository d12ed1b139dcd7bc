"""A frozen endpoint (it accepts connections and never answers) costs a bounded time and
fails with one line naming the service, never a traceback or a wait without end."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fsd_core.aws import clients
from fsd_core.engine.s3_stage import S3Stage
from fsd_core.errors import RunError


@pytest.fixture
def frozen_endpoint():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # take connections, read nothing, answer nothing
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_a_stage_read_from_a_frozen_endpoint_fails_in_bounded_time(frozen_endpoint, monkeypatch):
    monkeypatch.setattr(clients, "READ_TIMEOUT_S", 1)
    monkeypatch.setattr(clients, "CONNECT_TIMEOUT_S", 1)
    manifest = {"region": "us-east-1", "endpoint": frozen_endpoint, "topic_arns": [], "queue_urls": [],
                "bucket": "b", "function_name": None, "max_workers": 2}
    stage = S3Stage(manifest, "stage/0123456789ab/")
    start = time.monotonic()
    with pytest.raises(RunError) as failed:
        stage.get("report-0.json")
    took = time.monotonic() - start
    assert "S3 GetObject failed: the endpoint did not answer within 1 s (2 tries)" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert took < clients.ATTEMPTS * (1 + 1) + 5, f"{took:.1f} s"


def test_every_client_is_bounded_by_default():
    m = clients.Manifest.from_dict({"region": "us-east-1", "endpoint": "http://127.0.0.1:9", "topic_arns": [],
                                    "queue_urls": [], "bucket": None, "function_name": None, "max_workers": 1})
    config = clients.client(m, "sqs").meta.config
    assert config.read_timeout == clients.READ_TIMEOUT_S > 20  # above SQS's longest long poll
    assert config.connect_timeout == clients.CONNECT_TIMEOUT_S
    assert config.retries["total_max_attempts"] == clients.ATTEMPTS
