"""Headless imports stay headless: the core never loads Textual, a worker never loads boto3.

Each check runs in a fresh interpreter (this process has imported everything already) and
inspects `sys.modules` after the import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(statement: str) -> list[str]:
    """Top-level package names in sys.modules after running `statement` in a new interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", [
    "import fsd_core",
    "import fsd_core.run.coordinator, fsd_core.run.records, fsd_core.cost.model",
    "from fsd_core.cli import build_parser; build_parser()",  # `fsd --help` registers `fsd tui` lazily
])
def test_core_loads_no_textual(statement):
    modules = loaded_after(statement)
    assert "textual" not in modules and "tui" not in modules and "textual_plotext" not in modules


def test_worker_loads_no_boto3():
    modules = loaded_after("import fsd_core.engine.worker")
    assert "boto3" not in modules and "botocore" not in modules


def test_the_check_would_notice():
    """Guard against a vacuous test: importing the dashboard does load Textual."""
    assert "textual" in loaded_after("import tui.app")
