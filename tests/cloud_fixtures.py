"""Helpers for the cloud tests. The session's local deployment (`local_deployment`: moto's
server + `terraform apply` of the root module) lives in conftest.py; this module adds the
Terraform availability check and a per-test data dir with no manifest configured."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fsd_core.aws.terraform import find_plugin_mirror


def terraform_available() -> bool:
    """terraform on PATH and an AWS provider mirror on this machine."""
    return shutil.which("terraform") is not None and find_plugin_mirror() is not None


needs_terraform = pytest.mark.skipif(not terraform_available(),
                                     reason="terraform or the AWS provider mirror is absent")


@pytest.fixture
def fsd_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private FSD_HOME with no manifest configured, for one test."""
    home = tmp_path / "fsd-home"
    monkeypatch.setenv("FSD_HOME", str(home))
    monkeypatch.delenv("FSD_MANIFEST", raising=False)
    return home


def deployment_home(manifest_source: str) -> Path:
    """The FSD_HOME a local deployment lives in, from its manifest's `source` path."""
    return Path(manifest_source).parent.parent
