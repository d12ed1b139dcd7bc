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
                  "status": "failed", "error": "worker 3 crashed"})
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
    assert main(["runs", "show", "aaaa", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["run"]
    assert run["workers_detail"][0]["status"] == "ok"


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
