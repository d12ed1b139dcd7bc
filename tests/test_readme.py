"""The README's commands as written: the set-up commands CI runs, and the tour, run line by
line from a scratch directory with `../shared` beside it (as in a fresh clone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import GRAPH_CHALLENGE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def block(name: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_block"), name, str(README)],
                         capture_output=True, text=True, check=True)
    return out.stdout


def commands(text: str) -> list[str]:
    """The block's commands: comments dropped, backslash continuations joined."""
    joined = text.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_set_up_commands_are_the_ones_ci_runs():
    main, tests = commands(block("setup-main")), commands(block("setup-tests"))
    assert main == ["python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/fsd demo"]
    assert tests == ["python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m pytest -q"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_step setup-main" in ci and "readme_step setup-tests" in ci


@pytest.mark.slow
@pytest.mark.skipif(not GRAPH_CHALLENGE.exists(), reason="needs ../shared/graphchallenge")
def test_the_tour_runs_as_written(tmp_path):
    """Every tour line from a scratch directory: exit 0, and everything written under out/."""
    work = tmp_path / "clone"
    work.mkdir()
    (tmp_path / "shared").symlink_to(GRAPH_CHALLENGE.parent.parent.resolve())
    (work / ".venv").symlink_to(Path(sys.prefix))  # the tour starts with `source .venv/bin/activate`
    env = {k: v for k, v in os.environ.items() if k not in ("FSD_MANIFEST",)}
    env["FSD_HOME"] = str(tmp_path / "fsd-home")
    lines = commands(block("tour"))
    assert lines[0] == "source .venv/bin/activate" and any(line.startswith("fsd run") for line in lines)
    script = "set -e\n" + "\n".join(f"echo '+ {i}'\n{line}" for i, line in enumerate(lines))
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("PASSED") + proc.stderr.count("PASSED") >= 2  # infer --check and run --check
    written = {p.name for p in work.iterdir()}
    assert written == {".venv", "out"}, written  # examples write under out/, nothing else
    assert {"gc1024", "rx1024", "images.tsv"} <= {p.name for p in (work / "out").iterdir()}
