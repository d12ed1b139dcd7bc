"""Stopping a run from outside: `fsd cancel`, SIGTERM and SIGKILL of the coordinator. A run is
recorded before it launches, and however it stops, it is recorded why and nothing of it stays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FSD = str(Path(sys.executable).parent / "fsd")


def fsd(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([FSD, *args], env=env, capture_output=True, text=True, timeout=300)


def start(workload, variant: str, env: dict, *more: str) -> subprocess.Popen:
    model, inputs = workload
    return subprocess.Popen([FSD, "run", "--model", str(model), "--inputs", str(inputs), "--variant", variant,
                             "--workers", "2", "--partition", "block", "--json", *more],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def running_run(env: dict, proc: subprocess.Popen, scratch: Path, variant: str, known: tuple[str, ...] = ()) -> str:
    """The run's id (not one of `known`) once its workers are past layer 1 (local) or it has
    launched (cloud)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for progress in scratch.glob("fsd-runs/*/progress"):
            run_id = progress.parent.name
            if run_id in known:
                continue
            if variant != "local" and (progress / "pid-0").exists():
                return run_id
            if (progress / "w1").exists() and (progress / "w1").read_text() not in ("", "-1", "0"):
                return run_id
        time.sleep(0.02)
    raise AssertionError("the run never got going")


def gone(run_id: str, scratch: Path) -> bool:
    return not (scratch / "fsd-runs" / run_id).exists() and not any(
        p for p in scratch.glob(f"**/{run_id}") if p.exists())


def environment(tmp_path: Path, manifest: str | None = None) -> tuple[dict, Path]:
    scratch = tmp_path / "scratch"
    env = dict(os.environ, FSD_HOME=str(tmp_path / "home"), FSD_SCRATCH=str(scratch))
    if manifest:
        env["FSD_MANIFEST"] = manifest
    return env, scratch


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["local", "queue", "object"])
def test_fsd_cancel_stops_the_run_and_records_it_cancelled(workload, variant, tmp_path, request):
    manifest = request.getfixturevalue("local_deployment").source if variant != "local" else None
    env, scratch = environment(tmp_path, manifest)
    proc = start(workload, variant, env)
    run_id = running_run(env, proc, scratch, variant)
    asked = time.monotonic()
    cancel = fsd("cancel", run_id, env=env)
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.strip() == f"run {run_id}: cancelled"
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - asked < 60
    doc = json.loads(out)
    assert proc.returncode == 1 and doc["status"] == "cancelled" and "cancelled" in doc["error"]
    shown = json.loads(fsd("runs", "show", run_id, "--json", env=env).stdout)["run"]
    assert shown["status"] == "cancelled"
    assert gone(run_id, scratch)
    assert fsd("cancel", run_id, env=env).returncode == 2  # not running any more: one line


def local_run_under_way(workload, tmp_path: Path) -> tuple[dict, Path, subprocess.Popen, str]:
    """`fsd run` of a local query, once its workers are past layer 1: env, scratch, process, run id."""
    env, scratch = environment(tmp_path)
    proc = start(workload, "local", env)
    return env, scratch, proc, running_run(env, proc, scratch, "local")


@pytest.mark.slow
def test_ctrl_c_twice_interrupts_and_the_clean_up_still_finishes(workload, tmp_path):
    env, scratch, proc, run_id = local_run_under_way(workload, tmp_path)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # impatient: during the clean-up, or before the run noticed the first
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    doc = json.loads(out) if out else None  # (none when the second came as the document was written)
    if proc.returncode == 1:  # the second came before the run ended, or was noted by its clean-up
        assert doc["status"] == "interrupted" and doc["error"] == "interrupted by SIGINT"
    else:  # it came after the run was recorded: the command itself was interrupted
        assert proc.returncode == 130 and (doc is None or doc["error"] == "interrupted"), (out, err)
    assert json.loads(fsd("runs", "--json", env=env).stdout)["runs"][0]["status"] == "interrupted"
    assert gone(run_id, scratch)


@pytest.mark.slow
def test_sigterm_interrupts_and_sigkill_abandons(workload, tmp_path):
    env, scratch, proc, run_id = local_run_under_way(workload, tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert json.loads(out)["status"] == "interrupted"
    assert json.loads(fsd("runs", "--json", env=env).stdout)["runs"][0]["status"] == "interrupted"
    assert gone(run_id, scratch)

    proc = start(workload, "local", env)
    run_id = running_run(env, proc, scratch, "local")
    proc.kill()
    proc.communicate(timeout=60)
    runs = json.loads(fsd("runs", "--json", env=env).stdout)["runs"]
    assert runs[0]["run_id"] == run_id and runs[0]["status"] == "abandoned"


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_not_just_its_current_run(tmp_path):
    env, scratch = environment(tmp_path)
    proc = subprocess.Popen([FSD, "demo", "--inputs", "20000", "--workers", "2", "--variants", "local,serial"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = running_run(env, proc, scratch, "local")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err
    assert "fsd demo: interrupted by SIGINT; the variants after local are not run" in err
    assert "      serial ..." not in out  # the next variant never started
    runs = json.loads(fsd("runs", "--json", env=env).stdout)["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "interrupted")]
    assert gone(run_id, scratch)
