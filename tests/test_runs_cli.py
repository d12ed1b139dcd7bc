"""`fsd runs` and `fsd runs show`: the run history on the command line."""

from __future__ import annotations

import json

import pytest

from fsd_core.cli import main
from fsd_core.run.records import RunStore


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FSD_RUNS_DB", str(tmp_path / "runs.sqlite"))
    store = RunStore()
    store.record({"run_id": "aaaa00000001", "created": 100.0, "variant": "local", "workers": 2, "status": "ok",
                  "seconds": 1.5, "bytes_sent": 1234, "messages": 8, "cost_usd": 0.0001, "model": "m",
                  "timings": {"run": 1.2}, "requests": {"local:write": 8}},
                 [{"worker": 0, "requested_at": 100.0, "started_at": 100.1, "finished_at": 101.0, "status": "ok"}])
    store.record({"run_id": "bbbb00000002", "created": 200.0, "variant": "queue", "workers": 4,
                  "status": "failed", "error": "worker 3 crashed",
                  "extra": {"stage_requests": {"s3:GetObject": 9, "s3:PutObject": 13},
                            "deployment": {"endpoint": None, "bucket": "fsd-prod"}}})
    return store


def test_runs_lists_newest_first_as_json(store, capsys):
    assert main(["runs", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in doc["runs"]] == ["bbbb00000002", "aaaa00000001"]
    assert doc["runs"][1]["bytes_sent"] == 1234 and doc["runs"][0]["error"] == "worker 3 crashed"


def test_runs_table_and_show_by_prefix(store, capsys):
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "aaaa00000001" in out and "failed" in out and "1.23 kB" in out
    assert main(["runs", "show", "aaaa"]) == 0
    out = capsys.readouterr().out
    assert "run_id            aaaa00000001" in out and "local:write 8" in out and "$0.000100" in out
    assert main(["runs", "show", "bbbb"]) == 0
    out = capsys.readouterr().out
    assert "stage_requests    s3:GetObject 9, s3:PutObject 13" in out and "deployment        bucket fsd-prod (AWS)" in out
    assert main(["runs", "show", "aaaa", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["run"]
    assert run["workers_detail"][0]["status"] == "ok"
    assert main(["runs", "--json", "show", "aaaa"]) == 0  # the flag before the verb counts too
    assert json.loads(capsys.readouterr().out)["run"]["run_id"] == "aaaa00000001"


def test_show_of_an_unknown_run_is_one_line_exit_2(store, capsys):
    assert main(["runs", "show", "zzzz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 'zzzz'" in err


@pytest.mark.parametrize("content", [b"not a database, just text " * 20, b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_damaged_run_store_is_one_line_naming_it_for_every_command(tmp_path, monkeypatch, capsys, content):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    db = tmp_path / "runs.sqlite"
    db.write_bytes(content)
    monkeypatch.setenv("FSD_RUNS_DB", str(db))
    for args in (["runs"], ["runs", "show", "abc"], ["gc"], ["cancel", "0123456789ab"],
                 ["run", "--model", str(root / "models" / "tiny"), "--inputs", str(root / "models" / "tiny-inputs.tsv"),
                  "--variant", "serial"]):
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 2 and out == "", (args, out)
        assert err.strip() == (f"fsd: error: {db}: not a run store (file is not a database); move it aside and "
                               f"runs start a new one (FSD_RUNS_DB names another)"), (args, err)
    assert db.read_bytes() == content  # nothing written over it


def test_a_run_that_ends_before_the_cancel_reaches_it_is_an_error_in_one_line(store, capsys):
    """A coordinator (a real process) that records its run ok when the SIGTERM comes."""
    import os
    import subprocess
    import sys
    import time

    for as_json in (True, False):
        run_id = f"cccc0000000{int(as_json)}"
        coordinator = subprocess.Popen([sys.executable, "-c", (
            "import signal, sys, time\n"
            "from fsd_core.run.records import RunStore\n"
            f"signal.signal(signal.SIGTERM, lambda *_: (RunStore().mark({run_id!r}, 'ok', None, {{}}), sys.exit(0)))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
        try:
            store.record({"run_id": run_id, "status": "running", "variant": "local", "workers": 2,
                          "extra": {"pid": coordinator.pid, "host": os.uname().nodename}})
            assert coordinator.stdout.readline().strip() == "ready"
            started = time.monotonic()
            code = main(["cancel", run_id, "--wait", "20"] + (["--json"] if as_json else []))
            out, err = capsys.readouterr()
            assert code == 1 and time.monotonic() - started < 20
            assert err == f"fsd: error: run {run_id} ended ok before the cancel reached it\n"
            if as_json:
                doc = json.loads(out)
                assert doc["status"] == "error" and doc["run_status"] == "ok" and doc["exit_code"] == 1
                assert doc["error"] == f"run {run_id} ended ok before the cancel reached it"
            else:
                assert out == ""
        finally:
            coordinator.kill()
            coordinator.wait()


def test_cancel_never_signals_a_process_that_is_not_the_runs_coordinator(store, capsys):
    """A run of another machine, and a pid the coordinator's death freed and another process
    took: neither is signalled."""
    import os
    import subprocess

    from fsd_core.processes import process_running, started_at
    from fsd_core.run.gc import coordinator_alive

    other = subprocess.Popen(["sleep", "60"])
    try:
        store.record({"run_id": "dddd00000001", "status": "running", "variant": "local", "workers": 2,
                      "extra": {"pid": other.pid, "pid_started": started_at(other.pid) - 1,
                                "host": os.uname().nodename}})
        store.record({"run_id": "dddd00000002", "status": "running", "variant": "local", "workers": 2,
                      "extra": {"pid": other.pid, "pid_started": started_at(other.pid), "host": "elsewhere"}})
        assert not coordinator_alive(store.get("dddd00000001"))  # its pid names another process now
        assert main(["cancel", "dddd00000001", "--wait", "1"]) == 1
        assert "was abandoned: its coordinator is gone" in capsys.readouterr().err
        assert main(["cancel", "dddd00000002", "--wait", "1"]) == 2
        assert capsys.readouterr().err == ("fsd: error: run dddd00000002 runs on elsewhere: cancel it there (its "
                                           "coordinator is a process of that machine)\n")
        assert process_running(other.pid) and other.poll() is None  # never signalled
        assert main(["runs", "--json"]) == 0
        shown = {r["run_id"]: r["status"] for r in json.loads(capsys.readouterr().out)["runs"]}
        assert shown["dddd00000001"] == "abandoned" and shown["dddd00000002"] == "running"
    finally:
        other.kill()
        other.wait()
