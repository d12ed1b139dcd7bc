"""The serial kernel against an independent float64 computation, on random and real networks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd_core.kernel import blocks as blocks_mod
from fsd_core.kernel import serial
from fsd_core.kernel.serial import infer
from fsd_core.model.tsv import read_categories

from .conftest import GC_TRUTH, random_inputs, random_model


def tune(monkeypatch, name, value):
    """Set a kernel knob (or swap a helper) wherever the serial kernel and its blocks read it."""
    for module in (serial, blocks_mod):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, value)


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_serial_equals_reference_on_generated_radixnet(seed):
    from fsd_core.model.radixnet import radixnet, synthetic_inputs

    model = radixnet(256, 16, seed=seed)
    inputs = synthetic_inputs(256, 80, seed=seed)
    result = assert_matches_reference(model, inputs)
    assert 0 < len(result.categories) < 80


def test_serial_passes_official_truth(gc_model, gc_inputs):
    result = infer(gc_model, gc_inputs)
    truth = read_categories(GC_TRUTH)
    assert len(truth) == 19
    np.testing.assert_array_equal(result.categories, truth)


def test_dense_and_sparse_paths_are_bit_identical(gc_model, gc_inputs, monkeypatch):
    model = gc_model.truncated(8)
    x = gc_inputs[:400]
    tune(monkeypatch, "DENSE_THRESHOLD", 2.0)   # never dense
    sparse_only = infer(model, x).activations
    tune(monkeypatch, "DENSE_THRESHOLD", 0.0)   # always dense
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


# --------------------------------------------------------------------------- bit identity of every path
def float_model(n: int, layers: int, density: float, seed: int, ymax: float = 32.0):
    """Random float weights of both signs (inexact products), random biases: rounding shows."""
    rng = np.random.default_rng(seed)
    weights = []
    for _ in range(layers):
        w = sp.random(n, n, density=density, random_state=rng, format="csr", dtype=np.float32)
        w.data = rng.normal(0.35, 0.5, w.nnz).astype(np.float32)
        weights.append(w)
    biases = [rng.uniform(-0.4, 0.1, n).astype(np.float32) for _ in range(layers)]
    from fsd_core.model.network import SparseDNN
    return SparseDNN(weights, biases, ymax, name=f"float-{n}-{layers}-{seed}")


def float_inputs(batch: int, n: int, density: float, seed: int, repeats: int = 3) -> sp.csr_matrix:
    """Random float inputs where every row appears `repeats` times (shuffled): dedup has work."""
    rng = np.random.default_rng(seed)
    x = sp.random(batch, n, density=density, random_state=rng, format="csr", dtype=np.float32)
    x.data = rng.uniform(0.1, 2.0, x.nnz).astype(np.float32)
    order = rng.permutation(batch * repeats) % batch
    return sp.csr_matrix(x[order])


def canonical(model, inputs) -> sp.csr_matrix:
    """The canonical semantics with no shortcut at all: layer_step on every row, every layer."""
    y = sp.csr_matrix(inputs, dtype=np.float32)
    y.sort_indices()
    for w, b in zip(model.weights, model.biases):
        y = serial.layer_step(y, w, b, model.ymax)
    return y


def assert_bit_identical(got: sp.csr_matrix, want: sp.csr_matrix):
    got, want = sp.csr_matrix(got), sp.csr_matrix(want)
    got.sort_indices()
    want.sort_indices()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data.view(np.uint32), want.data.view(np.uint32))


PATHS = {  # (DENSE_THRESHOLD, CHUNK, threads, MERGE_FRACTION): force each path
    "sparse": (2.0, 256, 1, 0.0),
    "sparse-threads-no-merge": (2.0, 4, 2, 2.0),
    "dense": (0.0, 256, 1, 0.0),
    "dense-no-merge": (0.0, 256, 1, 2.0),
    "dense-small-blocks-threads": (0.0, 3, 2, 0.0),
    "adaptive": (0.25, 7, 2, blocks_mod.MERGE_FRACTION),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_path_bit_identical_on_float_networks(path, seed, monkeypatch):
    threshold, chunk, threads, merge = PATHS[path]
    tune(monkeypatch, "DENSE_THRESHOLD", threshold)
    tune(monkeypatch, "MERGE_FRACTION", merge)
    tune(monkeypatch, "CHUNK", chunk)
    model = float_model(48, 6, 0.15, seed)
    x = float_inputs(30, 48, 0.3, seed + 7)
    want = canonical(model, x)
    assert want.nnz > 0 and not np.all(want.data == model.ymax)  # rounding is really exercised
    result = infer(model, x, threads=threads)
    assert_bit_identical(result.activations, want)
    np.testing.assert_array_equal(result.categories, np.flatnonzero(np.diff(want.indptr) > 0))


def test_sparse_dense_sparse_dense_transitions_are_bit_identical(monkeypatch):
    # Densities 0.6 -> 0.97 -> 0.28 -> 0.86 -> 0.98 with threshold 0.8: layer 1 sparse, layer 2
    # dense, its output falls back to CSR (< 0.4), layer 3 sparse again, layer 4 dense again.
    model = float_model(40, 4, 0.4, 5)
    thin = float_model(40, 1, 0.01, 6)
    model.weights[1], model.biases[1] = thin.weights[0], np.zeros(40, dtype=np.float32)
    x = float_inputs(20, 40, 0.6, 8)
    want = canonical(model, x)
    events = []
    real_blocks, real_step = serial.sparse_to_blocks, serial.layer_step
    monkeypatch.setattr(serial, "sparse_to_blocks", lambda y: events.append("dense") or real_blocks(y))
    monkeypatch.setattr(serial, "layer_step", lambda *a: events.append("sparse") or real_step(*a))
    tune(monkeypatch, "DENSE_THRESHOLD", 0.8)
    got = infer(model, x, threads=2).activations
    assert events == ["sparse", "dense", "sparse", "dense"]
    assert_bit_identical(got, want)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_bit_identical_on_real_data(path, gc_model, gc_inputs, monkeypatch):
    threshold, chunk, threads, merge = PATHS[path]
    tune(monkeypatch, "DENSE_THRESHOLD", threshold)
    tune(monkeypatch, "MERGE_FRACTION", merge)
    tune(monkeypatch, "CHUNK", max(chunk, 64))
    model = gc_model.truncated(10)
    x = gc_inputs[np.arange(600) % 300]  # tiled, like the benchmark's real workload
    assert_bit_identical(infer(model, x, threads=threads).activations, canonical(model, x))


def test_hash_collisions_never_merge_different_rows(monkeypatch):
    # With a constant hash every row collides; the exact comparison must still keep them apart.
    tune(monkeypatch, "_float_probes", lambda n: np.zeros((2, n), dtype=np.float32))
    tune(monkeypatch, "MERGE_FRACTION", 0.0)
    tune(monkeypatch, "column_keys", lambda z, mult: np.zeros(z.shape[1], dtype=np.uint64))
    tune(monkeypatch, "CHUNK", 5)
    x = float_inputs(12, 16, 0.5, 3)
    x = sp.csr_matrix(x.multiply(x > 1.0))  # rows with equal counts but different entries collide
    distinct, remap = blocks_mod.dedup_rows(x)
    np.testing.assert_array_equal(distinct[remap].toarray(), x.toarray())
    blocks = blocks_mod.sparse_to_blocks(x)
    distinct_blocks, remap = blocks_mod.dedup_blocks(blocks)
    full = np.concatenate(distinct_blocks, axis=1)
    np.testing.assert_array_equal(full[:, remap].T, x.toarray())
    model = float_model(16, 4, 0.3, 4)
    for threshold in (0.0, 2.0):
        tune(monkeypatch, "DENSE_THRESHOLD", threshold)
        assert_bit_identical(infer(model, x).activations, canonical(model, x))


def test_identical_rows_are_computed_once():
    x = float_inputs(10, 32, 0.3, 1, repeats=5)
    distinct, remap = blocks_mod.dedup_rows(x)
    assert distinct.shape[0] == 10 and remap.shape == (50,)
    np.testing.assert_array_equal(distinct[remap].toarray(), x.toarray())
    blocks, remap = blocks_mod.dedup_blocks(blocks_mod.sparse_to_blocks(x))
    assert sum(b.shape[1] for b in blocks) == 10


def test_threads_do_not_change_a_bit(gc_model):
    from fsd_core.model.radixnet import synthetic_inputs
    model = gc_model.truncated(16)
    x = synthetic_inputs(1024, 700, seed=2)
    one = infer(model, x, threads=1).activations
    assert_bit_identical(infer(model, x, threads=2).activations, one)
    assert_bit_identical(one, canonical(model, x))


@pytest.mark.parametrize("seed", range(6))
def test_dense_activation_without_positive_bias_matches_the_masked_rule(seed):
    """With no positive bias the kernel adds the bias to zeros too (no mask): same bits."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(64, 33)).astype(np.float32)
    z[rng.random(z.shape) < 0.5] = 0.0
    bias = -rng.uniform(0, 1, (64, 1)).astype(np.float32)
    bias[rng.random(64) < 0.2] = 0.0  # zero biases too
    ymax = float(rng.uniform(0.5, 2))
    expected = np.clip(np.where(z != 0, z + bias, z), 0, ymax).astype(np.float32)
    got = serial.apply_bias_relu_clamp_dense(z.copy(), bias, ymax)
    assert got.tobytes() == expected.tobytes()
    mixed = bias.copy()
    mixed[0] = 0.5  # one positive bias: the masked path, zeros stay zero
    expected = np.clip(np.where(z != 0, z + mixed, z), 0, ymax).astype(np.float32)
    assert serial.apply_bias_relu_clamp_dense(z.copy(), mixed, ymax).tobytes() == expected.tobytes()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=5), st.integers(1, 9), st.integers(0, 700),
       st.booleans(), st.integers(0, 10**6))
def test_column_gathers_equal_fancy_indexing(widths, n, count, ascending, seed):
    """`take` and `gather_columns` (per-block C-order takes, sorted and put back) equal numpy's
    `full[:, cols]` for blocks of any widths and columns in any order, repeats included;
    `take`'s blocks are CHUNK wide and C-ordered, as the layer loop expects."""
    rng = np.random.default_rng(seed)
    blocks = [rng.random((n, w), dtype=np.float32) for w in widths]
    full = np.concatenate(blocks, axis=1)
    cols = rng.integers(0, full.shape[1], count) if full.shape[1] else np.zeros(0, np.int64)
    if ascending:
        cols = np.sort(cols)
    assert np.array_equal(blocks_mod.gather_columns(blocks, cols), full[:, cols])
    taken = blocks_mod.take(blocks, cols)
    assert [b.shape[1] for b in taken] == [min(blocks_mod.CHUNK, cols.size - lo) for lo in range(0, cols.size, blocks_mod.CHUNK)]
    assert all(b.flags.c_contiguous for b in taken)
    got = np.concatenate(taken, axis=1) if taken else np.zeros((n, 0), np.float32)
    assert np.array_equal(got, full[:, cols])


def test_column_gathers_reject_columns_past_the_blocks():
    blocks = [np.ones((3, 4), np.float32), np.ones((3, 2), np.float32)]
    with pytest.raises(IndexError):
        blocks_mod.gather_columns(blocks, np.array([1, 6]))
    with pytest.raises(IndexError):
        blocks_mod.take(blocks, np.array([-1, 2]))
