"""Many runs on one deployment: concurrent queue runs lease disjoint worker slots and concurrent
object runs keep to their own keys, so every one of them is exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FSD = str(Path(sys.executable).parent / "fsd")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["queue", "object"])
def test_three_concurrent_runs_are_each_exact(local_deployment, variant, tmp_path):
    env = dict(os.environ, FSD_MANIFEST=local_deployment.source, FSD_HOME=str(tmp_path / "home"))
    cmd = [FSD, "run", "--model", str(ROOT / "models" / "tiny"), "--inputs", str(ROOT / "models" / "tiny-inputs.tsv"),
           "--variant", variant, "--workers", "2", "--verify", "--json"]
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    docs = []
    for proc in runs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        docs.append(json.loads(out))
    assert [d["status"] for d in docs] == ["ok"] * 3
    assert all(d["verified"] for d in docs)
    assert len({d["run_id"] for d in docs}) == 3
