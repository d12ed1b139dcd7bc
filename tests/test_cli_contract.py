"""The command line contract (DESIGN.md): --json documents, help on every flag, input validation,
progress and notices on stderr, the partitioner fallback, the infeasible-recommendation hint."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fsd_core.cli import build_parser, main
from fsd_core.cli.progress import STOP_EMULATOR, emulator_notice
from fsd_core.cli.run import timing_line
from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.model.tsv import write_categories, write_triples
from fsd_core.run.coordinator import RunResult
from tests.cloud_fixtures import needs_terraform


# --------------------------------------------------------------------------- helpers
def fsd_cli(*args: object, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`fsd ARGS` in a fresh interpreter (the way a user or a script runs it)."""
    return subprocess.run([sys.executable, "-m", "fsd_core.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env or dict(os.environ))


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsd: error: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small model, inputs, their true categories, a binary file, a calibration file."""
    root = tmp_path_factory.mktemp("cli")
    radixnet(256, 6, seed=1).save(root / "m")
    inputs = synthetic_inputs(256, 30, seed=1)
    write_triples(root / "x.tsv", inputs, value_fmt="%d")
    from fsd_core.kernel.serial import infer
    from fsd_core.model.network import SparseDNN

    write_categories(root / "truth.tsv", infer(SparseDNN.load(root / "m"), inputs).categories)
    (root / "garbage.bin").write_bytes(bytes(range(256)) * 3)
    (root / "runs.json").write_text(json.dumps([
        {"variant": "serial", "neurons": 1024, "layers": 120, "batch": 10_000, "workers": 1, "memory_mb": 1769,
         "seconds": s * 100} for s in (1.0, 1.1, 0.9)]))
    (root / "adir").mkdir()
    return {"root": root, "model": root / "m", "inputs": root / "x.tsv", "truth": root / "truth.tsv",
            "garbage": root / "garbage.bin", "runs": root / "runs.json", "dir": root / "adir"}


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every (sub)command."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, path + (name,))


# --------------------------------------------------------------------------- help
def test_every_option_of_every_command_has_help():
    missing = []
    for path, parser in walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"fsd {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


# --------------------------------------------------------------------------- --json
def json_commands() -> set[str]:
    return {" ".join(path) for path, parser in walk(build_parser())
            if any("--json" in a.option_strings for a in parser._actions)}


def json_cases(f: dict[str, Path], tmp: Path) -> dict[str, tuple[list, list]]:
    """Per --json command: (a succeeding command line, a failing one)."""
    from tests.test_package import fake_wheels

    wheels = fake_wheels(tmp / "wheels", "arm64", "3.11")
    return {
        "infer": (["infer", "--model", f["model"], "--inputs", f["inputs"], "--check", f["truth"]],
                  ["infer", "--model", f["garbage"], "--inputs", f["inputs"]]),
        "partition": (["partition", "--model", f["model"], "--workers", "2", "--method", "block"],
                      ["partition", "--model", f["model"], "--workers", "9999"]),
        "run": (["run", "--model", f["model"], "--inputs", f["inputs"], "--variant", "local", "--workers", "2",
                 "--check", f["truth"]],
                ["run", "--model", f["model"], "--inputs", f["inputs"], "--variant", "local", "--timeout", "nan"]),
        "recommend": (["recommend", "--neurons", "1024", "--layers", "120", "--batch", "100"],
                      ["recommend", "--neurons", "1024", "--layers", "120", "--batch", "100", "--workers", "9-3"]),
        "calibrate": (["calibrate", f["runs"], "--fit", "madds_per_s"], ["calibrate", f["garbage"]]),
        "local status": (["local", "status"], ["local", "status", "--bogus"]),
        "runs": (["runs"], ["runs", "--limit", "0"]),
        "runs show": (["runs", "show", "{last_run}"], ["runs", "show", "no-such-run"]),
        # success: in test_a_cloud_run_that_starts_the_emulator_says_so (it needs the emulator)
        "local up": (None, ["local", "up", "--workers", "0"]),
        "package": (["package", "--arch", "arm64", "--python", "3.11", "--wheel-dir", wheels,
                     "--out", tmp / "p.zip"],
                    ["package", "--wheel-dir", tmp / "nope", "--out", tmp / "p.zip"]),
        # success: in tests/test_doctor.py and tests/test_deploy_cli.py (they need the emulator);
        # deploy and destroy without --yes and without a terminal refuse before any work
        "doctor": (None, ["doctor", "--workers", "0"]),
        # success: in tests/adversarial/test_interrupt.py (it needs a run in flight)
        "cancel": (None, ["cancel", "no-such-run"]),
        "model deploy": (["model", "deploy", "--model", f["model"], "--workers", "2", "--partition", "block"],
                         ["model", "deploy", "--model", f["garbage"], "--workers", "2"]),
        "model deployed": (["model", "deployed"], ["model", "deployed", "--bogus"]),
        # success: in tests/test_serving.py (it needs a deployed model)
        "model undeploy": (None, ["model", "undeploy", "no-such-model"]),
        # --dry-run: a test never sweeps the machine's /dev/shm (tests/adversarial/test_gc.py does, isolated)
        "gc": (["gc", "--dry-run"], ["gc", "--manifest", f["garbage"]]),
        "deploy": (None, ["deploy"]),
        "destroy": (None, ["destroy"]),
    }


def test_every_json_command_is_covered(files, tmp_path):
    assert set(json_cases(files, tmp_path)) == json_commands()


@pytest.mark.parametrize("command", sorted(json_commands()))
def test_json_stdout_is_one_document_in_success_and_failure(command, files, tmp_path, capsys):
    ok, bad = json_cases(files, tmp_path)[command]
    if ok is not None and "{last_run}" in ok:
        assert main(["run", "--model", str(files["model"]), "--inputs", str(files["inputs"]), "--variant",
                     "serial", "--json"]) == 0
        run_id = json.loads(capsys.readouterr().out)["run_id"]
        ok = [a.replace("{last_run}", run_id) for a in ok]
    if ok is not None:
        code = main([str(a) for a in ok] + ["--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        doc = json.loads(out)  # the whole of stdout, nothing before or after
        assert not (isinstance(doc, dict) and doc.get("status") == "error")
    code = main([str(a) for a in bad] + ["--json"])
    out, err = capsys.readouterr()
    assert code == 2
    doc = json.loads(out)
    assert doc["status"] == "error" and doc["error"] and "\n" not in doc["error"]
    assert doc["exit_code"] == 2
    assert err.startswith("fsd: error: ") and err.count("\n") == 1


def test_json_check_verdict_goes_to_stderr(files, capsys):
    for argv in (["run", "--variant", "serial"], ["infer"]):
        code = main(argv + ["--model", str(files["model"]), "--inputs", str(files["inputs"]),
                            "--check", str(files["truth"]), "--json"])
        out, err = capsys.readouterr()
        assert code == 0 and json.loads(out)["check"] is True
        assert "PASSED" in err and "PASSED" not in out


def test_json_usage_error_in_a_subprocess(files):
    proc = fsd_cli("run", "--json", "--model", files["model"], "--inputs", files["inputs"], "--variant", "warp")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["status"] == "error"
    assert "--variant" in one_error_line(proc.stderr)


def test_json_failed_run_exit_1(files, capsys, monkeypatch):
    """A run that fails is a run document (status "failed") with exit code 1."""
    from fsd_core.run import coordinator

    real = coordinator._DistributedRun.run

    def failing(self):
        result = real(self)
        result.status, result.error = "failed", "worker 1 crashed (test)"
        return result

    monkeypatch.setattr(coordinator._DistributedRun, "run", failing)
    code = main(["run", "--model", str(files["model"]), "--inputs", str(files["inputs"]), "--variant", "local",
                 "--workers", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and json.loads(out)["status"] == "failed" and "crashed" in err


# --------------------------------------------------------------------------- validation
BAD = [
    (["run", "--timeout", "nan"], "--timeout"),
    (["run", "--timeout", "inf"], "--timeout"),
    (["run", "--timeout", "0"], "--timeout"),
    (["run", "--timeout", "-1"], "--timeout"),
    (["run", "--timeout", "1e39"], "--timeout"),
    (["run", "--workers", "0"], "--workers"),
    (["run", "--workers", "99999999999999999999"], "--workers"),
    (["run", "--branching", "0"], "--branching"),
    (["run", "--manifest", "{garbage}"], "--manifest"),
    (["run", "--categories-out", "{dir}"], "--categories-out"),
    (["run", "--categories-out", "{garbage}/c.tsv"], "--categories-out"),
    (["infer", "--categories-out", "{dir}"], "--categories-out"),
    (["partition", "--workers", "2", "--out", "{dir}"], "--out"),
    (["partition", "--workers", "2", "--seed", "-1"], "--seed"),
    (["partition", "--workers", "two"], "--workers"),
    (["recommend", "--neurons", "1e20", "--layers", "3", "--batch", "1"], "--neurons"),
    (["recommend", "--neurons", "100000000000000000000", "--layers", "3", "--batch", "1"], "--neurons"),
    (["recommend", "--neurons", "1024", "--layers", "1000000000", "--batch", "1"], "--layers"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1000000000000000000000"], "--batch"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1", "--density", "nan"], "--density"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1", "--density", "2"], "--density"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1", "--queries-per-hour", "inf"],
     "--queries-per-hour"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1", "--latency-target", "-5"],
     "--latency-target"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1", "--memory", "99999"], "--memory"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1", "--burst-size", "0"], "--burst-size"),
    (["recommend", "--neurons", "1024", "--layers", "3", "--batch", "1", "--workers", "2-99999999"], "--workers"),
    (["calibrate", "--store", "--limit", "0"], "--limit"),
    (["calibrate", "{runs}", "--out", "{dir}"], "--out"),
    (["model", "generate", "--neurons", "256", "--layers", "1000000000", "--out", "{root}/big"], "--layers"),
    (["model", "generate", "--neurons", "256", "--layers", "2", "--seed", "-1", "--out", "{root}/s"], "--seed"),
    (["model", "generate", "--neurons", "256", "--layers", "2", "--out", "{garbage}"], "--out"),
    (["data", "generate", "--neurons", "1024", "--count", str(10**12), "--out", "{root}/d.tsv"], "--count"),
    (["data", "generate", "--neurons", "1024", "--count", str(10**9), "--out", "{root}/d.tsv"], "--count"),
    (["data", "generate", "--neurons", "1024", "--count", "2", "--out", "{dir}"], "--out"),
    (["model", "export", "--model", "{model}", "--graph-challenge", "{garbage}"], "--graph-challenge"),
    (["model", "import", "--graph-challenge", "{dir}", "--neurons", "256", "--layers", "2", "--out",
      "{root}/i"], "missing"),
    (["demo", "--layers", "1000000000"], "--layers"),
    (["demo", "--neurons", "0"], "--neurons"),
    (["demo", "--workers", "100000"], "--workers"),
    (["local", "up", "--workers", "100000000000"], "--workers"),
    (["package", "--upload", "--manifest", "{garbage}", "--out", "{root}/p.zip"], "--manifest"),
]


@pytest.mark.parametrize("argv, flag", BAD, ids=[" ".join(a[:2]) + f" {f}" for a, f in BAD])
def test_bad_arguments_are_one_line_exit_2(argv, flag, files):
    argv = [a.format(**files) for a in argv]
    if argv[0] in ("run", "infer") or (argv[0] == "partition"):
        argv[1:1] = ["--model", str(files["model"])]
    if argv[0] in ("run", "infer"):
        argv[1:1] = ["--inputs", str(files["inputs"])]
    if argv[0] == "run" and "--variant" not in argv:
        argv += ["--variant", "local"]
    started = time.monotonic()
    proc = fsd_cli(*argv, timeout=120)
    line = one_error_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert flag in line, line
    assert time.monotonic() - started < 60  # refused up front, not after the work


def test_an_output_path_is_checked_before_the_run(files, capsys):
    from fsd_core.run.records import RunStore

    before = len(RunStore().list(1000))
    code = main(["run", "--model", str(files["model"]), "--inputs", str(files["inputs"]), "--variant", "serial",
                 "--categories-out", str(files["dir"])])
    assert code == 2 and "--categories-out" in capsys.readouterr().err
    assert len(RunStore().list(1000)) == before  # nothing ran


def test_memory_limits_name_the_limit(files, capsys):
    assert main(["data", "generate", "--neurons", "1024", "--count", str(10**9),
                 "--out", str(files["root"] / "d.tsv")]) == 2
    err = capsys.readouterr().err
    assert "--count can be at most" in err and "available" in err
    assert main(["model", "generate", "--neurons", "1024", "--layers", str(10**9),
                 "--out", str(files["root"] / "g")]) == 2
    err = capsys.readouterr().err
    assert "--layers can be at most" in err and not (files["root"] / "g").exists()


# --------------------------------------------------------------------------- time and rate
def test_printed_time_and_rate_agree():
    result = RunResult("r1", "ok", "queue", 4, 17.972, 35e9, np.zeros(0), None,
                       timings={"plan": 9.1, "stage": 2.3, "run": 4.5, "cleanup": 2.0})
    line = timing_line(result)
    assert line.startswith("total 17.97 s (plan 9.10, stage 2.30, run 4.50, cleanup 2.00 s)")
    assert "35 Gedges/s in the run phase (4.50 s)" in line
    serial = RunResult("r2", "ok", "serial", 1, 1.5, 2e9, np.zeros(0), None, timings={"compute": 1.5})
    assert timing_line(serial) == "total 1.50 s (compute 1.50 s); 2 Gedges/s"
    failed = RunResult("r3", "failed", "local", 2, 3.0, 0.0, np.zeros(0), None, timings={"plan": 1.0})
    assert "edges/s" not in timing_line(failed)


def test_fsd_run_prints_the_phase_its_rate_covers(files, capsys):
    assert main(["run", "--model", str(files["model"]), "--inputs", str(files["inputs"]), "--variant", "local",
                 "--workers", "2"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.strip().startswith("time"))
    assert "total" in line and "in the run phase" in line and "plan" in line


# --------------------------------------------------------------------------- the emulator notice
def test_emulator_notice_only_when_this_command_started_it():
    assert emulator_notice(was_running=True, running=True) is None
    assert emulator_notice(was_running=False, running=False) is None  # it failed to start: nothing to stop
    assert emulator_notice(was_running=True, running=False) is None
    notice = emulator_notice(was_running=False, running=True)
    assert notice and STOP_EMULATOR in notice and "\n" not in notice and STOP_EMULATOR == "fsd local down"


@pytest.mark.slow
@needs_terraform
def test_a_cloud_run_that_starts_the_emulator_says_so(files, tmp_path):
    env = {**os.environ, "FSD_HOME": str(tmp_path / "home")}
    env.pop("FSD_MANIFEST", None)
    try:
        proc = fsd_cli("run", "--model", files["model"], "--inputs", files["inputs"], "--variant", "queue",
                       "--workers", "2", "--json", env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout)["status"] == "ok"
        assert "starting the local AWS emulator" in proc.stderr  # progress, not ~90 s of silence
        assert "terraform apply" in proc.stderr
        notices = [l for l in proc.stderr.splitlines() if "fsd local down" in l]
        assert len(notices) == 1 and notices[0] == proc.stderr.strip().splitlines()[-1]
        again = fsd_cli("run", "--model", files["model"], "--inputs", files["inputs"], "--variant", "queue",
                        "--workers", "2", env=env)
        assert again.returncode == 0 and "fsd local down" not in again.stderr  # it was running already
        up = fsd_cli("local", "up", "--workers", "8", "--json", env=env)  # provisioned: no apply
        assert up.returncode == 0 and json.loads(up.stdout)["max_workers"] == 8
    finally:
        down = fsd_cli("local", "down", env=env)
    assert down.returncode == 0 and "stopped" in down.stdout


# --------------------------------------------------------------------------- partitioner fallback
@pytest.fixture
def no_mtkahypar(monkeypatch):
    monkeypatch.setitem(sys.modules, "mtkahypar", None)  # `import mtkahypar` raises ImportError


def test_default_partition_falls_back_to_metis(no_mtkahypar, files, capsys):
    assert main(["partition", "--model", str(files["model"]), "--workers", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["method"] == "metis"
    notice = [l for l in err.splitlines() if l.strip()]
    assert len(notice) == 1 and "metis" in notice[0] and "mtkahypar" in notice[0]


def test_explicit_hypergraph_without_the_package_is_an_error(no_mtkahypar, files, capsys):
    assert main(["partition", "--model", str(files["model"]), "--workers", "2", "--method", "hypergraph"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "pip install mtkahypar" in line
    assert main(["run", "--model", str(files["model"]), "--inputs", str(files["inputs"]), "--variant", "local",
                 "--workers", "2", "--partition", "hypergraph"]) == 2
    assert "pip install mtkahypar" in one_error_line(capsys.readouterr().err)


def test_run_and_demo_fall_back_to_metis(no_mtkahypar, files, capsys, monkeypatch, tmp_path):
    assert main(["run", "--model", str(files["model"]), "--inputs", str(files["inputs"]), "--variant", "local",
                 "--workers", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["partition"] == "metis" and "mtkahypar" in err
    monkeypatch.setenv("FSD_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["demo", "--neurons", "256", "--layers", "4", "--inputs", "10", "--workers", "2",
                 "--variants", "serial,local"]) == 0
    out, err = capsys.readouterr()
    assert "PASS" in out and "mtkahypar" in err


# --------------------------------------------------------------------------- infeasible hint
def test_infeasible_recommendation_names_the_nearest_feasible_change(capsys):
    argv = ["recommend", "--neurons", "65536", "--layers", "1920", "--batch", "10000", "--workers", "4-6",
            "--memory", "6144"]
    started = time.monotonic()
    assert main(argv + ["--json"]) == 0
    elapsed = time.monotonic() - started
    out = json.loads(capsys.readouterr().out)
    assert out["recommended"] is None and "nearest feasible" in out["reason"]
    changes = {c["change"]: c for c in out["feasible_changes"]}
    assert {"workers", "batch"} <= set(changes)
    assert elapsed < 10  # the search itself is bounded (cost.model.HINT_SECONDS)
    # Each suggestion, applied, does give a recommendation.
    for change in changes.values():
        flag, value = change["flag"].split()
        fixed = list(argv)
        if flag in fixed:
            fixed[fixed.index(flag) + 1] = value
        else:
            fixed += [flag, value]
        assert main(fixed + ["--json"]) == 0
        assert json.loads(capsys.readouterr().out)["recommended"] is not None, change


def test_local_deployment_progress_in_a_plain_log(capsys):
    """Without a terminal a run logs the emulator's and Terraform's milestones, not every resource."""
    from fsd_core.cli.progress import Display, local_progress

    lines = ["starting the local AWS emulator (moto's server on a loopback port)",
             "terraform apply: 8 worker slots against http://127.0.0.1:1",
             "module.queue_channel[0].aws_sqs_queue.this[4]: Creating...",
             "module.queue_channel[0].aws_sqs_queue.this[4]: Still creating... [10s elapsed]",
             "Apply complete! Resources: 35 added, 0 changed, 0 destroyed."]
    for every, expect in ((False, [0, 1, 4]), (True, [0, 1, 2, 3, 4])):
        show = local_progress(Display(live=False), every_resource=every)
        for line in lines:
            show(line)
        err = capsys.readouterr().err
        assert err.splitlines() == [f"  {lines[i]}" for i in expect]
