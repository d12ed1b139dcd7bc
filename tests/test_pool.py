"""Warm local workers (pool.py): exact, reused, recycled after a failure, never orphaned."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fsd_core.engine.pool import PoolLauncher, WorkerPool
from fsd_core.kernel.serial import infer
from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.run.coordinator import RunConfig, TestHooks, activations_equal, run


@pytest.fixture(scope="module")
def small():
    return radixnet(256, 24, seed=5), synthetic_inputs(256, 60, seed=5)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def _run(model, inputs, pool, workers, timeout=30, fault=None):
    return run(RunConfig(None, None, "local", workers, "block", record=False, model=model, inputs=inputs,
                         timeout=timeout, pool=pool), hooks=TestHooks(fault=fault))


def test_warm_runs_equal_serial_reuse_the_processes_and_the_shards(small):
    model, inputs = small
    ref = infer(model, inputs)
    with WorkerPool(2) as pool:
        first = _run(model, inputs, pool, 3)  # the pool grows to the run's P
        pids = pool.pids()
        spares = {p.stat().st_ino for p in pool.spares.glob("spare-w*/*")}
        assert spares  # frame files kept for the next run
        second = _run(model, inputs[:40], pool, 3)
        # ... which wrote frames into them (handed back to the pool's spares after use)
        assert spares & {p.stat().st_ino for p in pool.spares.glob("spare-w*/*")}
        assert first.status == second.status == "ok", (first.error, second.error)
        assert activations_equal(ref.activations, first.activations)
        assert activations_equal(infer(model, inputs[:40]).activations, second.activations)
        assert len(pids) == 3 and pool.pids() == pids
        for r in (first, second):
            assert sorted(w["pid"] for w in r.worker_reports) == sorted(pids)
        assert not any(w.get("shard") == "cached" for w in first.worker_reports)
        assert all(w.get("shard") == "cached" for w in second.worker_reports)  # same plan: parsed once
        other = _run(model, inputs, pool, 2)  # another plan: its own shards, not the cached ones
        assert other.status == "ok" and activations_equal(ref.activations, other.activations)
        assert not any(w.get("shard") == "cached" for w in other.worker_reports)


@pytest.mark.parametrize("kind", ["crash", "hang"])
def test_a_failed_warm_run_restarts_the_pool_and_the_next_run_works(small, kind):
    model, inputs = small
    with WorkerPool(4) as pool:
        before = pool.pids()
        r = _run(model, inputs, pool, 4, timeout=3, fault={"worker": 2, "layer": 3, "kind": kind})
        assert r.status == "failed" and "worker 2" in r.error, r.error
        assert "layer 3" in r.error or "exited without a report" in r.error, r.error
        after = pool.pids()
        assert not set(before) & set(after)
        assert not any(_alive(p) for p in before)  # the hung or half-way slots are gone
        again = _run(model, inputs, pool, 4)
        assert again.status == "ok", again.error
        assert activations_equal(infer(model, inputs).activations, again.activations)


def test_a_restarted_slot_does_not_run_an_event_left_in_its_pipe(tmp_path):
    """An event queued for a slot whose process died belongs to the failed run: the new
    process must not run it (it would write into that run's stage)."""
    with WorkerPool(1) as pool:
        pool._procs[0].kill()
        pool._procs[0].wait()
        stale = {"run_id": "stale", "worker": 0, "workers": 1, "branching": 2, "variant": "local",
                 "launcher": pool.launcher().config(), "stage": {"kind": "directory", "root": str(tmp_path)},
                 "channel": {}, "timeout": 1}
        pool.launcher().start(stale)  # waits in the pipe: nobody reads it
        pool.recycle()
        time.sleep(3)  # time enough for a new process to import and run it
        assert _alive(pool.pids()[0])
        assert not (tmp_path / "report-0.json").exists()


def test_closing_the_pool_ends_its_processes_and_removes_its_fifos():
    pool = WorkerPool(3)
    pids, directory = pool.pids(), pool.directory
    assert all(_alive(p) for p in pids) and len(list(directory.iterdir())) == 3
    pool.close()
    assert not any(_alive(p) for p in pids)
    assert not directory.exists() and not pool.spares.exists()


def test_warm_workers_end_with_their_client(tmp_path):
    """A client killed outright (no close) must not leave warm workers behind (its files stay
    for `fsd gc`: here in the test's own scratch, not the machine's /dev/shm)."""
    code = ("import os, sys; from fsd_core.engine.pool import WorkerPool; p = WorkerPool(2); "
            "print(*p.pids(), flush=True); sys.stdin.readline(); os.kill(os.getpid(), 9)")
    client = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, FSD_SCRATCH=str(tmp_path / "scratch")))
    pids = [int(x) for x in client.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    client.stdin.write("\n")
    client.stdin.flush()
    client.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def test_a_missing_slot_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="worker 5: warm pool slot is not running"):
        PoolLauncher(tmp_path).start({"worker": 5})
    os.mkfifo(tmp_path / "slot-1")  # a slot nobody serves
    with pytest.raises(RuntimeError, match="worker 1: warm pool slot is not running"):
        PoolLauncher(tmp_path).start({"worker": 1})
