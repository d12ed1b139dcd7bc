"""Deployment manifests, boto3 clients, and the local emulator's life cycle (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsd_core.aws.clients import client
from fsd_core.aws.emulator import emulator_state, start_emulator, stop_emulator
from fsd_core.aws.local_stack import local_status
from fsd_core.aws.manifest import Manifest, active_manifest_path, configured_manifest_path, deploy_manifest_path
from fsd_core.errors import InputError
from tests.cloud_fixtures import fsd_home, needs_terraform  # noqa: F401

GOOD = {"region": "us-east-1", "endpoint": "http://127.0.0.1:5000",
        "topic_arns": ["arn:aws:sns:us-east-1:123456789012:fsd-t0"],
        "queue_urls": ["http://127.0.0.1:5000/123456789012/fsd-w0",
                       "http://127.0.0.1:5000/123456789012/fsd-w1"],
        "bucket": "fsd-bucket", "function_name": "fsd-worker", "max_workers": 2}


def _load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        Manifest.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = Manifest.from_dict(GOOD)
    manifest.save(tmp_path / "m.json")
    assert Manifest.load(tmp_path / "m.json") == manifest
    assert json.loads((tmp_path / "m.json").read_text()) == GOOD


def test_manifest_from_terraform_outputs() -> None:
    outputs = {k: {"value": v, "type": "string", "sensitive": False} for k, v in GOOD.items()}
    assert Manifest.from_terraform_outputs(outputs).to_dict() == GOOD


@pytest.mark.parametrize("field", sorted(GOOD))
def test_manifest_missing_field_is_named(tmp_path: Path, field: str) -> None:
    data = {k: v for k, v in GOOD.items() if k != field}
    assert repr(field) in _load_error(tmp_path, json.dumps(data))


@pytest.mark.parametrize("field,value", [("region", 5), ("queue_urls", "x"), ("topic_arns", [1]),
                                         ("max_workers", 0), ("max_workers", True),
                                         ("bucket", ""), ("queue_urls", ["only-one"])])
def test_manifest_bad_field_is_named(tmp_path: Path, field: str, value: object) -> None:
    assert repr(field) in _load_error(tmp_path, json.dumps({**GOOD, field: value}))


def test_manifest_bad_json_and_missing_file(tmp_path: Path) -> None:
    assert "not valid JSON" in _load_error(tmp_path, '{"region": ')
    assert "JSON object" in _load_error(tmp_path, "[1, 2]")
    with pytest.raises(InputError, match="not found"):
        Manifest.load(tmp_path / "absent.json")
    (tmp_path / "binary.json").write_bytes(b"\x00\xff\xfe\x80 not text")
    with pytest.raises(InputError, match=r"binary\.json: deployment manifest is not UTF-8 text"):
        Manifest.load(tmp_path / "binary.json")
    with pytest.raises(InputError, match="is a directory"):
        Manifest.load(tmp_path)


def test_manifest_require() -> None:
    manifest = Manifest.from_dict(GOOD)
    manifest.require(2, "queue")
    with pytest.raises(InputError, match="2 worker slots"):
        manifest.require(3, "object")
    with pytest.raises(InputError, match="no bucket"):
        Manifest.from_dict({**GOOD, "bucket": None}).require(1, "object")


def test_client_targets_the_endpoint_with_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    sqs = client(Manifest.from_dict(GOOD), "sqs")
    assert sqs.meta.endpoint_url == "http://127.0.0.1:5000"
    assert sqs.meta.region_name == "us-east-1"
    assert sqs._request_signer._credentials.access_key == "testing"


def test_active_manifest_path(fsd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    assert configured_manifest_path() is None
    assert active_manifest_path() == fsd_home / "local" / "manifest.json"
    Manifest.from_dict(GOOD).save(deploy_manifest_path())
    assert active_manifest_path() == deploy_manifest_path()
    monkeypatch.setenv("FSD_MANIFEST", "/somewhere/m.json")
    assert active_manifest_path() == Path("/somewhere/m.json")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_emulator_start_status_stop(fsd_home: Path) -> None:  # noqa: F811
    assert emulator_state() is None and stop_emulator() is False
    state = start_emulator()
    try:
        assert emulator_state() == state
        assert state.endpoint == f"http://127.0.0.1:{state.port}"
        status = local_status()
        assert status["running"] and status["pid"] == state.pid and status["deployment"] is None
        manifest = Manifest.from_dict({**GOOD, "endpoint": state.endpoint})
        client(manifest, "s3").create_bucket(Bucket="probe")  # it really serves AWS APIs
    finally:
        assert stop_emulator() is True
    assert _gone(state.pid)  # terminated and reaped: no zombie, no orphan
    assert not os.path.exists(fsd_home / "local" / "emulator.json")
    assert local_status()["running"] is False


def _fsd(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsd_core.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_usage_errors(fsd_home: Path) -> None:  # noqa: F811
    env = {**os.environ}
    bad = _fsd("local", "up", "--workers", "0", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    none = _fsd("outputs", env=env)
    assert none.returncode == 2 and none.stderr.startswith("fsd: error: no deployment")
    down = _fsd("local", "down", env=env)
    assert down.returncode == 0 and "not running" in down.stdout


@needs_terraform
def test_cli_local_up_status_down(fsd_home: Path) -> None:  # noqa: F811
    env = {**os.environ}
    try:
        up = _fsd("local", "up", "--workers", "2", "--json", env=env)
        assert up.returncode == 0, up.stderr[-2000:]
        manifest = json.loads(up.stdout)
        assert manifest["max_workers"] == 2 and len(manifest["queue_urls"]) == 2
        assert "Apply complete" in up.stderr  # progress was streamed
        status = json.loads(_fsd("local", "status", "--json", env=env).stdout)
        assert status["running"] and status["deployment"] == manifest
        outputs = _fsd("outputs", env=env)
        assert outputs.returncode == 0 and json.loads(outputs.stdout) == manifest
        again = _fsd("local", "up", "--workers", "2", "--json", env=env)  # already there: no apply
        assert again.returncode == 0 and json.loads(again.stdout) == manifest
        assert "Apply complete" not in again.stderr
    finally:
        down = _fsd("local", "down", env=env)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert _gone(status["pid"])
    after = json.loads(_fsd("local", "status", "--json", env=env).stdout)
    assert after["running"] is False and after["deployment"] is None
