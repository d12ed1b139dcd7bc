"""Fixtures of the adversarial tests."""

from __future__ import annotations

import pytest

from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.model.tsv import write_triples


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """A query that runs for seconds, not milliseconds (RadiX-Net 1024 x 120, 20,000 inputs)."""
    root = tmp_path_factory.mktemp("workload")
    model = radixnet(1024, 120, seed=0).save(root / "model")
    write_triples(root / "inputs.tsv", synthetic_inputs(1024, 20000, seed=0))
    return model, root / "inputs.tsv"
