"""Private files are 0600 and their directories 0700, after real use: the run store, the plan
cache, a run's scratch and channel directories (and a warm pool's), slot leases, cancel
markers, and the local deployment's Terraform state, emulator state and operator keys."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.run.records import RunStore
from tests.cloud_fixtures import deployment_home, needs_terraform


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def assert_private(*paths: Path) -> None:
    for path in paths:
        want = 0o700 if path.is_dir() else 0o600
        assert mode(path) == want, f"{path}: {oct(mode(path))}, want {oct(want)}"


def test_run_store_is_0600_in_a_0700_directory(tmp_path):
    store = RunStore(tmp_path / "new" / "runs.sqlite")
    store.record({"run_id": "r1", "status": "ok", "variant": "local", "workers": 2})
    assert_private(tmp_path / "new", tmp_path / "new" / "runs.sqlite")
    os.chmod(tmp_path / "new" / "runs.sqlite", 0o644)  # a store an older fsd made
    RunStore(tmp_path / "new" / "runs.sqlite").get("r1")
    assert_private(tmp_path / "new" / "runs.sqlite")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    RunStore(shared / "runs.sqlite")
    assert mode(shared) == 0o755 and mode(shared / "runs.sqlite") == 0o600  # the user's directory stays theirs


def test_plan_cache_is_private(isolated_home):
    from fsd_core.run.coordinator import cached_plan, plan_cache_dir

    cached_plan(radixnet(256, 4, seed=0), 2, "block", None, 0)
    (plan,) = plan_cache_dir().iterdir()
    assert_private(plan_cache_dir(), plan)


@pytest.mark.parametrize("warm", [False, True], ids=["processes", "warm-pool"])
def test_a_local_runs_scratch_and_channel_files_are_private(warm, tmp_path, monkeypatch):
    """Everything a local run makes in the scratch base, watched while it runs."""
    from fsd_core.engine.pool import WorkerPool
    from fsd_core.run.coordinator import RunConfig, run

    scratch = tmp_path / "scratch"
    monkeypatch.setenv("FSD_SCRATCH", str(scratch))
    seen: dict[Path, int] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for root, dirs, files in os.walk(scratch):
                for name in dirs + files:
                    path = Path(root) / name
                    try:
                        seen[path] = stat.S_IMODE(os.lstat(path).st_mode) | (0o1000 if stat.S_ISDIR(
                            os.lstat(path).st_mode) else 0)
                    except FileNotFoundError:
                        pass
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pool = WorkerPool() if warm else None
    try:
        result = run(RunConfig("m", None, "local", 2, partition="block", model=radixnet(1024, 60, seed=0),
                               inputs=synthetic_inputs(1024, 3000, seed=0), pool=pool, runs_db=str(tmp_path / "db")))
    finally:
        if pool is not None:
            pool.close()
        done.set()
        watcher.join(5)
    assert result.status == "ok", result.error
    wrong = {str(p.relative_to(scratch)): oct(m & 0o777) for p, m in seen.items()
             if (m & 0o777) != (0o700 if m & 0o1000 else 0o600)}
    assert not wrong, wrong
    names = {p.name for p in seen}
    assert {"fsd-runs", "fsd-local-channel", "progress", "w0", "pid-1"} <= names  # the watch saw a run
    assert any(p.parent.name == "w1" for p in seen)  # and a frame in an inbox
    if warm:
        assert any(n.startswith("fsd-pool-") for n in names) and any(n.startswith("spare-w") for n in names)


def test_slot_leases_are_private():
    from fsd_core.aws.leases import lease_dir, lease_slots

    deployment = f"test-modes-{uuid.uuid4().hex}"
    with lease_slots(deployment, 2, 1):
        assert_private(lease_dir(deployment).parent, lease_dir(deployment), lease_dir(deployment) / "slot-0")


def test_a_cancel_marker_is_private(isolated_home):
    """`fsd cancel` of a run whose coordinator ignores SIGTERM: the marker waits, private."""
    from fsd_core.errors import RunError
    from fsd_core.run.cancel import cancel
    from fsd_core.run.scratch import cancel_marker

    ignores_sigterm = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                       "print('up', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", ignores_sigterm], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"up"
        RunStore().record({"run_id": "abc123abc123", "status": "running", "variant": "local", "workers": 2,
                           "extra": {"pid": holder.pid, "host": os.uname().nodename}})
        seen = {}

        def look() -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not seen:
                if cancel_marker("abc123abc123").exists():
                    seen["modes"] = (mode(cancel_marker("abc123abc123").parent), mode(cancel_marker("abc123abc123")))
                time.sleep(0.005)

        looker = threading.Thread(target=look)
        looker.start()
        with pytest.raises(RunError, match="still running"):
            cancel("abc123abc123", wait=1.0)
        looker.join()
        assert seen["modes"] == (0o700, 0o600)
    finally:
        holder.kill()
        holder.wait()


@needs_terraform
def test_local_deployment_state_is_private(local_deployment):
    from urllib.parse import urlparse

    from fsd_core.aws.credentials import registry_dir

    local = deployment_home(local_deployment.source) / "local"
    tfstate = local / "terraform" / "terraform.tfstate"
    assert tfstate.exists()
    assert_private(local, local / "terraform", tfstate, local / "emulator.log", local / "emulator.json",
                   local / "manifest.json", registry_dir(), registry_dir() / f"{urlparse(local_deployment.endpoint).port}.json")
