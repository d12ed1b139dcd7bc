"""A worker process killed mid-run fails the run within seconds, naming it."""

from __future__ import annotations

import time
from pathlib import Path

from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.run.coordinator import RunConfig, run

from ..killer import kill_worker, watch_end


def test_a_sigkilled_local_worker_fails_the_run_in_under_5_s(tmp_path, monkeypatch):
    monkeypatch.setenv("FSD_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.setenv("FSD_RUNS_DB", str(tmp_path / "runs.sqlite"))
    model = radixnet(1024, 120, seed=0)
    inputs = synthetic_inputs(1024, 3000, seed=0)

    def mid_run(pid_file: Path) -> bool:  # its progress file says layer 2: mid-run, not at start
        progress = pid_file.parent / "w1"
        return progress.exists() and int(progress.read_text() or 0) >= 2

    killer, killed = kill_worker(tmp_path / "scratch", 1, mid_run)
    noticed = watch_end(monkeypatch)
    result = run(RunConfig("m", None, "local", 2, partition="block", model=model, inputs=inputs, timeout=60))
    ended = time.monotonic()
    killer.join(5)
    assert "at" in killed, "the run ended before worker 1 could be killed"
    assert result.status == "failed"
    assert "worker 1" in result.error and "exited without a report" in result.error, result.error
    assert noticed["at"] - killed["at"] < 5.0, f"noticed {noticed['at'] - killed['at']:.1f} s after the kill"
    assert ended - killed["at"] < 30.0  # (its clean-up included)
    assert not list((tmp_path / "scratch" / "fsd-runs").glob("*"))  # nothing left behind
