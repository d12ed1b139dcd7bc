"""The hierarchical launch tree: every worker started exactly once, in about log_b(P) rounds."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from fsd_core.engine.launch import WORKER_ENV, children, depth, rounds, worker_environment


@given(workers=st.integers(1, 500), branching=st.integers(1, 12))
def test_every_worker_is_started_exactly_once(workers, branching):
    started = [c for w in range(workers) for c in children(w, workers, branching)]
    assert sorted(started) == list(range(1, workers))
    for w in range(workers):
        for c in children(w, workers, branching):
            assert c > w and depth(c, branching) == depth(w, branching) + 1


@given(workers=st.integers(2, 5000), branching=st.integers(2, 12))
def test_rounds_are_logarithmic(workers, branching):
    r = rounds(workers, branching)
    # a full b-ary tree with r levels below the root holds sum_{k<=r} b^k nodes
    assert sum(branching ** k for k in range(r)) < workers <= sum(branching ** k for k in range(r + 1))
    assert r <= math.ceil(math.log(workers, branching)) + 1


def test_examples():
    assert list(children(0, 16, 4)) == [1, 2, 3, 4]
    assert list(children(3, 16, 4)) == [13, 14, 15]
    assert list(children(4, 16, 4)) == []
    assert rounds(16, 2) == 4 and rounds(16, 4) == 2 and rounds(1, 2) == 0


def test_progress_files_are_throttled_but_the_last_layer_is_always_written(tmp_path, monkeypatch):
    from fsd_core.engine import handler

    write = handler._progress_writer(str(tmp_path), 3, layers=50)
    renames = []
    real_replace = handler.os.replace
    monkeypatch.setattr(handler.os, "replace", lambda a, b: (renames.append(b), real_replace(a, b)))
    for layer in range(1, 51):
        write(layer)
    assert (tmp_path / "w3").read_text() == "50"
    assert 2 <= len(renames) < 50  # the first and the last, not one per layer


def test_worker_environment_keeps_the_operators_settings():
    env = worker_environment({"OPENBLAS_NUM_THREADS": "4", "HOME": "/h"})
    assert env["OPENBLAS_NUM_THREADS"] == "4" and env["HOME"] == "/h"  # the operator's win
    assert env["GLIBC_TUNABLES"] == WORKER_ENV["GLIBC_TUNABLES"] and env["PYTHONUNBUFFERED"] == "1"


def test_a_worker_environment_runs_numpy_and_scipy():
    """The malloc tunables are read by glibc at process start: a worker must still start."""
    code = "import numpy, scipy.sparse as sp; print(sp.random(50, 50, density=0.1, random_state=0).nnz)"
    out = subprocess.run([sys.executable, "-c", code], env=worker_environment({}), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "250", out.stderr


def test_a_running_process_can_take_the_workers_malloc_settings():
    code = "from fsd_core.engine.launch import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_the_watch_reads_each_report_once_from_one_listing(tmp_path):
    from fsd_core.engine.stage import DirectoryStage
    from fsd_core.run.coordinator import _new_reports

    stage = DirectoryStage(tmp_path / "stage")
    for key, doc in (("report-0.json", {"worker": 0}), ("report-3.json", {"worker": 3}), ("report-9.json", {}),
                     ("result.msg", {}), ("report-x.json", {})):
        stage.put(key, json.dumps(doc).encode())
    (tmp_path / "stage" / ".report-1.json.abc.tmp").write_text("{")  # a report being written
    assert stage.keys("report-") == ["report-0.json", "report-3.json", "report-9.json", "report-x.json"]
    assert _new_reports(stage, 4, {}) == [(0, {"worker": 0}), (3, {"worker": 3})]
    assert _new_reports(stage, 4, {0: {}, 3: {}}) == []


def test_a_run_without_progress_here_waits_as_long_as_lambda_lets_a_worker_run():
    from fsd_core.aws.limits import LAMBDA_MAX_SECONDS
    from fsd_core.run.coordinator import stall_after

    assert stall_after(True, 60.0, 30.0) == 105.0
    assert stall_after(False, 60.0, 30.0) == LAMBDA_MAX_SECONDS + 30.0
