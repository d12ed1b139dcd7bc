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


@pytest.mark.slow
def test_an_endpoint_that_freezes_at_the_end_of_a_run_fails_it_records_it_and_gc_finishes(
        local_deployment, monkeypatch):
    """The emulator stops answering as the workers report: the run fails in bounded time with one
    line naming S3, its clean-up is left pending (nothing escapes, the run is recorded), and once
    the endpoint answers again `fsd gc` deletes what the run left and keeps its record."""
    import json
    import os
    import signal

    from fsd_core.channels.object import count_objects_under
    from fsd_core.run.coordinator import RunConfig, run
    from fsd_core.run.gc import reclaim
    from fsd_core.run.records import RunStore
    from tests.cloud_fixtures import deployment_home
    from tests.conftest import random_inputs, random_model

    monkeypatch.setattr(clients, "READ_TIMEOUT_S", 2)
    monkeypatch.setattr(clients, "CONNECT_TIMEOUT_S", 1)
    emulator = json.loads((deployment_home(local_deployment.source) / "local" / "emulator.json").read_text())["pid"]
    model, inputs = random_model(64, 4, 0.1, seed=5), random_inputs(20, 64, 0.2, seed=6)
    frozen = []

    def freeze_when_all_reported(snap) -> None:
        if len(snap.reports) == 2 and not frozen:
            os.kill(emulator, signal.SIGSTOP)
            frozen.append(time.monotonic())

    try:
        result = run(RunConfig(None, None, "object", 2, "block", model=model, inputs=inputs, timeout=20,
                               manifest=local_deployment.to_dict()), freeze_when_all_reported)
        took = time.monotonic() - frozen[0]
    finally:
        os.kill(emulator, signal.SIGCONT)
    assert result.status == "failed" and "S3" in result.error and "\n" not in result.error, result.error
    assert result.cleanup_pending and took < 60, (result.cleanup_pending, took)
    record = RunStore().get(result.run_id)
    assert record["status"] == "failed" and record["extra"]["gc"]["cloud"].startswith("pending")
    assert count_objects_under(local_deployment, f"stage/{result.run_id}/") > 0

    report = reclaim(RunStore(), orphans=False, manifest_path=local_deployment.source)
    assert [r.run_id for r in report.runs] == [result.run_id] and report.runs[0].cloud == "done"
    assert count_objects_under(local_deployment, f"stage/{result.run_id}/") == 0
    assert RunStore().get(result.run_id)["status"] == "failed"  # gc finished its clean-up, kept its record
