"""The serial kernel against an independent float64 computation, on random and real networks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from fsd_core import serial
from fsd_core.serial import infer
from fsd_core.tsv import read_categories

from .conftest import GC_TRUTH, random_inputs, random_model


def reference_float64(model, inputs):
    """Dense float64 textbook evaluation of the challenge semantics (no shortcuts)."""
    y = inputs.toarray().astype(np.float64)
    for w, b in zip(model.weights, model.biases):
        z = y @ w.toarray().astype(np.float64)
        z = z + b.astype(np.float64) * (z != 0)
        y = np.clip(z, 0.0, model.ymax)
    return y


def assert_matches_reference(model, inputs):
    result = infer(model, inputs)
    ref = reference_float64(model, inputs)
    got = result.activations.toarray()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(result.categories, np.flatnonzero(ref.any(axis=1)))
    np.testing.assert_allclose(got, ref, rtol=2e-6 * model.layers, atol=1e-5)
    return result


@settings(max_examples=25, deadline=None)
@given(n=st.sampled_from([8, 16, 33, 64]), layers=st.integers(1, 6), batch=st.integers(1, 40),
       density=st.floats(0.05, 0.5), seed=st.integers(0, 10_000))
def test_serial_equals_float64_reference_on_random_networks(n, layers, batch, density, seed):
    model = random_model(n, layers, density, seed)
    inputs = random_inputs(batch, n, 0.3, seed + 1)
    assert_matches_reference(model, inputs)


def test_serial_equals_reference_on_real_challenge_prefix(gc_model, gc_inputs):
    # 12 layers of the real network on 300 real images: dense float64 reference is affordable.
    model = gc_model.truncated(12)
    result = assert_matches_reference(model, gc_inputs[:300])
    assert 0 < len(result.categories) < 300


def test_serial_passes_official_truth(gc_model, gc_inputs):
    result = infer(gc_model, gc_inputs)
    truth = read_categories(GC_TRUTH)
    assert len(truth) == 19
    np.testing.assert_array_equal(result.categories, truth)


def test_dense_and_sparse_paths_are_bit_identical(gc_model, gc_inputs, monkeypatch):
    model = gc_model.truncated(8)
    x = gc_inputs[:400]
    monkeypatch.setattr(serial, "DENSE_THRESHOLD", 2.0)   # never dense
    sparse_only = infer(model, x).activations
    monkeypatch.setattr(serial, "DENSE_THRESHOLD", 0.0)   # always dense
    dense_only = infer(model, x).activations
    assert (sparse_only != dense_only).nnz == 0
    assert np.array_equal(sparse_only.data.view(np.uint32), dense_only.data.view(np.uint32))


def test_all_rows_die_gives_no_categories():
    model = random_model(16, 3, 0.3, seed=1, bias=-100.0)
    result = infer(model, random_inputs(10, 16, 0.5, 2))
    assert result.categories.size == 0
    assert result.activations.shape == (10, 16) and result.activations.nnz == 0


def test_empty_input_rows_stay_empty():
    model = random_model(16, 2, 0.4, seed=3)
    x = random_inputs(6, 16, 0.5, 4).tolil()
    x[2, :] = 0
    result = infer(model, sp.csr_matrix(x))
    assert 2 not in result.categories
