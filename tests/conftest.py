"""Shared fixtures: small random networks, the real Graph Challenge data, an isolated FSD_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import settings

from fsd_core.model.network import SparseDNN, import_graph_challenge, read_inputs

ROOT = Path(__file__).resolve().parent.parent
GRAPH_CHALLENGE = ROOT.parent / "shared" / "graphchallenge" / "neuron1024"
GC_INPUTS = GRAPH_CHALLENGE / "sparse-images-1024-first1200.tsv"
GC_TRUTH = GRAPH_CHALLENGE / "neuron1024-l120-categories-first1200.tsv"

# No per-example deadline for property tests: this machine's speed drifts by tens of percent,
# and a scheduler stall is not a failure of the property.
settings.register_profile("fsd", deadline=None)
settings.load_profile("fsd")


def random_model(n: int, layers: int, density: float, seed: int, bias: float = -0.3,
                 ymax: float = 32.0) -> SparseDNN:
    """A random sparse network whose activations stay alive for a while (positive weights)."""
    rng = np.random.default_rng(seed)
    weights = []
    for _ in range(layers):
        w = sp.random(n, n, density=density, random_state=rng, format="csr", dtype=np.float32)
        w.data = (w.data * 0.5 + 0.05).astype(np.float32)
        weights.append(w)
    biases = [np.full(n, bias, dtype=np.float32) + rng.uniform(-0.05, 0.05, n).astype(np.float32)
              for _ in range(layers)]
    return SparseDNN(weights, biases, ymax, name=f"random-{n}-{layers}-{seed}")


def random_inputs(batch: int, n: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = sp.random(batch, n, density=density, random_state=rng, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    return x


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own FSD_HOME (run store, local deployment state) unless set by CI."""
    home = tmp_path_factory.mktemp("fsd-home")
    monkeypatch.setenv("FSD_HOME", str(home))
    monkeypatch.delenv("FSD_RUNS_DB", raising=False)
    yield home


@pytest.fixture
def shm_scratch(monkeypatch):
    """A scratch base (FSD_SCRATCH) of the test's own, in memory like /dev/shm: what runs and
    warm pools leave there is the test's to look at, apart from other users of /dev/shm."""
    import shutil
    import uuid

    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    path = base / f"fsd-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("FSD_SCRATCH", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def gc_model() -> SparseDNN:
    if not GRAPH_CHALLENGE.is_dir():
        pytest.skip("../shared/graphchallenge is not beside the checkout")
    return import_graph_challenge(GRAPH_CHALLENGE, 1024, 120)


@pytest.fixture(scope="session")
def gc_inputs() -> sp.csr_matrix:
    if not GC_INPUTS.is_file():
        pytest.skip("../shared/graphchallenge is not beside the checkout")
    return read_inputs(GC_INPUTS, 1024)


@pytest.fixture(scope="session")
def gc_model_dir(gc_model, tmp_path_factory) -> Path:
    return gc_model.save(tmp_path_factory.mktemp("gc") / "gc1024")


@pytest.fixture(scope="session")
def local_deployment(tmp_path_factory):
    """A local deployment (moto server + Terraform apply) shared by the session's cloud tests.

    Tests pass its manifest explicitly (RunConfig.manifest), so the per-test FSD_HOME does
    not start emulators of its own.
    """
    from fsd_core.aws import local_stack as cloud

    home = tmp_path_factory.mktemp("cloud-home")
    old = os.environ.get("FSD_HOME")
    os.environ["FSD_HOME"] = str(home)
    try:
        manifest = cloud.local_up(workers=8)
    except Exception:
        cloud.local_down()
        raise
    finally:
        if old is None:
            os.environ.pop("FSD_HOME", None)
        else:
            os.environ["FSD_HOME"] = old
    yield manifest
    os.environ["FSD_HOME"] = str(home)
    try:
        cloud.local_down()
    finally:
        if old is None:
            os.environ.pop("FSD_HOME", None)
        else:
            os.environ["FSD_HOME"] = old
