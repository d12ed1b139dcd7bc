"""RadiX-Net generator, synthetic inputs, the model cache, recipes and the shipped tiny model.

The structural checks rebuild the expected layers from the spec's dense formula
(RADIXNET.md section 3: `K_pv[i, j] != 0 iff ((i mod N') - (j mod N')) mod N' in {0, pv}`,
`W_l = P_c K_pv`), independently of the generator's CSR construction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd_core.errors import InputError
from fsd_core.kernel.serial import infer
from fsd_core.model.network import CHALLENGE_BIAS, SparseDNN, import_graph_challenge, read_inputs
from fsd_core.model.radixnet import cached_model, list_recipes, load_recipe, radixnet, synthetic_inputs

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
REAL_1024 = ROOT.parent / "shared" / "graphchallenge" / "neuron1024"
OFFICIAL_CATEGORIES = {1024: 1812, 4096: 1801, 16384: 1918, 65536: 1994}


# ----------------------------------------------------------------------------- helpers
def base_pattern(n: int, pv: int, sigma: np.ndarray | None = None) -> np.ndarray:
    """Dense 0/1 pattern of P K_pv from the spec formula (sigma = row labels mod N')."""
    n_prime = n // 16
    rows = np.arange(n) % n_prime if sigma is None else sigma
    diff = (rows[:, None] - (np.arange(n) % n_prime)[None, :]) % n_prime
    return (diff == 0) | (diff == pv)


def sigma_of(w: sp.csr_matrix, n: int) -> np.ndarray:
    """Row labels of a pv = 1 layer: row i links residues {s, s - 1}; s is the one whose
    predecessor is also linked (unique when N' > 2)."""
    n_prime = n // 16
    res = (w.indices.reshape(n, 32) % n_prime)
    lo, hi = res.min(axis=1), res.max(axis=1)
    # Residues {a, b} with b = a + 1, or the wrap-around pair {0, N'-1} where sigma is 0.
    return np.where((hi - lo) == 1, hi, lo)


def assert_degrees(w: sp.csr_matrix, n: int) -> None:
    assert w.shape == (n, n)
    assert (np.diff(w.indptr) == 32).all()
    assert (np.bincount(w.indices, minlength=n) == 32).all()


def assert_block_structure(model: SparseDNN, permuted_blocks: bool = True) -> None:
    """Every block c: one labelling sigma_c (each residue 16 times) and W_l = P_c K_pv exactly."""
    n = model.neurons
    n_prime = n // 16
    depth = int(math.log2(n_prime))
    sigmas = []
    for start in range(0, model.layers, depth):
        first = model.weights[start]
        sigma = sigma_of(first, n)
        assert (np.bincount(sigma, minlength=n_prime) == 16).all()
        for k, w in enumerate(model.weights[start:start + depth]):
            assert_degrees(w, n)
            assert np.array_equal(w.toarray() != 0, base_pattern(n, 2**k, sigma)), f"layer {start + k + 1}"
        sigmas.append(sigma)
    assert np.array_equal(sigmas[0], np.arange(n) % n_prime)  # block 0 is never permuted
    if permuted_blocks and len(sigmas) > 2:
        assert not np.array_equal(sigmas[1], sigmas[2])  # each block has its own permutation


def csr_equal(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)
            and a.data.dtype == b.data.dtype)


def models_equal(a: SparseDNN, b: SparseDNN) -> bool:
    return (a.layers == b.layers and a.ymax == b.ymax
            and all(csr_equal(x, y) for x, y in zip(a.weights, b.weights))
            and all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a.biases, b.biases)))


# ----------------------------------------------------------------------------- networks
@pytest.mark.parametrize("n", [1024, 4096, 16384, 65536])
def test_32_per_row_and_column_values_and_bias(n):
    model = radixnet(n, 2, seed=3)
    assert model.neurons == n and model.layers == 2 and model.nnz == n * 32 * 2
    for w, b in zip(model.weights, model.biases):
        assert_degrees(w, n)
        assert w.data.dtype == np.float32 and (w.data == np.float32(0.0625)).all()
        assert b.dtype == np.float32 and (b == np.float32(CHALLENGE_BIAS[n])).all()
    assert model.ymax == 32.0


def test_1024_three_blocks_are_permuted_base_layers():
    model = radixnet(1024, 18, seed=7)
    assert_block_structure(model)
    # The second block really is relabelled (not the base pattern).
    assert not np.array_equal(model.weights[6].toarray() != 0, base_pattern(1024, 1))


def test_metadata_records_the_recipe():
    model = radixnet(1024, 7, seed=5, permute=False)
    assert model.meta == {"kind": "radixnet", "neurons": 1024, "layers": 7, "seed": 5, "permute": False}
    assert model.name


@settings(max_examples=25, deadline=None)
@given(m=st.integers(2, 6), blocks=st.integers(1, 3), extra=st.integers(0, 5), seed=st.integers(0, 2**32))
def test_every_layer_is_a_row_permutation_of_its_base(m, blocks, extra, seed):
    n = 16 * 2**m
    depth = m
    layers = blocks * depth + min(extra, depth - 1)
    model = radixnet(n, layers, seed=seed)
    assert model.layers == layers
    assert_block_structure(model, permuted_blocks=m > 2)  # N' <= 4 has too few labellings to differ


@settings(max_examples=15, deadline=None)
@given(m=st.integers(1, 6), layers=st.integers(1, 14))
def test_permute_false_keeps_the_base_pattern(m, layers):
    n = 16 * 2**m
    model = radixnet(n, layers, seed=123, permute=False)
    for l, w in enumerate(model.weights):
        pv = 2 ** (l % m)
        assert np.array_equal(w.toarray() != 0, base_pattern(n, pv))
        assert (w.data == np.float32(1 / 16)).all()


def test_deterministic_by_seed_and_seeds_differ():
    a, b, c = radixnet(1024, 18, seed=11), radixnet(1024, 18, seed=11), radixnet(1024, 18, seed=12)
    assert models_equal(a, b)
    assert all(csr_equal(x, y) for x, y in zip(a.weights[:6], c.weights[:6]))  # block 0: no seed
    assert not any(csr_equal(x, y) for x, y in zip(a.weights[6:], c.weights[6:]))


def test_shallow_network_is_a_prefix_of_a_deeper_one():
    assert models_equal(radixnet(1024, 9, seed=4), radixnet(1024, 20, seed=4).truncated(9))


@pytest.mark.skipif(not REAL_1024.is_dir(), reason="shared Graph Challenge data not present")
def test_first_block_equals_the_real_challenge_files():
    real = import_graph_challenge(REAL_1024, 1024, 6)
    ours = radixnet(1024, 6)
    assert all(csr_equal(r, o) for r, o in zip(real.weights, ours.weights))
    assert all(np.array_equal(r, o) for r, o in zip(real.biases, ours.biases))


@pytest.mark.skipif(not REAL_1024.is_dir(), reason="shared Graph Challenge data not present")
def test_real_challenge_blocks_have_the_structure_we_generate():
    # The spec's W_l = P_c K_pv, checked on the official files themselves (layers 1-18).
    assert_block_structure(import_graph_challenge(REAL_1024, 1024, 18))


@pytest.mark.parametrize("bad", [0, 16, 48, 1000, 1025, 2**17, -1024, 1024.0, True, "1024"])
def test_bad_widths_are_refused(bad):
    with pytest.raises(InputError, match="1024, 4096, 16384, 65536"):
        radixnet(bad, 3)


@pytest.mark.parametrize("kwargs", [{"layers": 0}, {"layers": -2}, {"layers": 2, "seed": -1}])
def test_bad_depth_or_seed_is_refused(kwargs):
    with pytest.raises(InputError):
        radixnet(1024, **kwargs)


# ----------------------------------------------------------------------------- inputs
def test_inputs_shape_binary_density_like_the_official_ones():
    x = synthetic_inputs(1024, 2000, seed=0)
    assert isinstance(x, sp.csr_matrix) and x.shape == (2000, 1024) and x.dtype == np.float32
    assert (x.data == 1.0).all()
    per_image = np.diff(x.indptr)
    assert per_image.min() >= 15  # official minimum 22, never empty
    assert 0.09 <= per_image.mean() / 1024 <= 0.14  # official 10.4 %, ours ~12 % (see models/README.md)
    assert 80 <= np.median(per_image) <= 120  # official median 99


def test_inputs_have_spatial_structure():
    x = synthetic_inputs(1024, 200, seed=2).toarray().reshape(200, 32, 32)  # [image, x, y]
    neighbour = np.zeros_like(x, dtype=bool)
    neighbour[:, 1:] |= x[:, :-1] > 0
    neighbour[:, :-1] |= x[:, 1:] > 0
    neighbour[:, :, 1:] |= x[:, :, :-1] > 0
    neighbour[:, :, :-1] |= x[:, :, 1:] > 0
    on = x > 0
    assert (neighbour & on).sum() / on.sum() > 0.95  # strokes, not salt and pepper
    border = on.copy()
    border[:, 3:-3, 3:-3] = False
    assert border.sum() < 0.01 * on.sum()  # digits sit in the centre box, like MNIST


@pytest.mark.parametrize("n", [4096, 16384, 65536])
def test_inputs_at_larger_sizes(n):
    x = synthetic_inputs(n, 6, seed=1)
    assert x.shape == (6, n) and (np.diff(x.indptr) > 0).all()
    assert 0.07 <= x.nnz / (6 * n) <= 0.2


@settings(max_examples=20, deadline=None)
@given(side=st.integers(2, 40), count=st.integers(0, 30), seed=st.integers(0, 2**32))
def test_inputs_deterministic_and_never_empty(side, count, seed):
    n = side * side
    x = synthetic_inputs(n, count, seed)
    assert x.shape == (count, n) and x.dtype == np.float32
    assert (x.data == 1.0).all() and (np.diff(x.indptr) > 0).all()
    assert csr_equal(x, synthetic_inputs(n, count, seed))


def test_fewer_inputs_are_a_prefix_of_more():
    many = synthetic_inputs(1024, 2100, seed=9)  # spans three blocks of random draws
    for count in (1, 700, 1500):
        assert csr_equal(synthetic_inputs(1024, count, seed=9), many[:count])


def test_input_seeds_differ():
    assert (synthetic_inputs(1024, 20, 1) != synthetic_inputs(1024, 20, 2)).nnz > 0


@pytest.mark.parametrize("bad", [1000, 1023, 0, -4, 2.5])
def test_non_square_input_width_is_refused(bad):
    with pytest.raises(InputError):
        synthetic_inputs(bad, 3)


def test_a_good_fraction_of_inputs_stays_alive_through_a_permuted_radixnet():
    # The official MNIST inputs leave ~3 % of rows alive; benchmark inputs should keep more.
    x = synthetic_inputs(1024, 400, seed=0)
    result = infer(radixnet(1024, 24, seed=0), x)
    assert 0.12 * 400 <= len(result.categories) <= 0.5 * 400


# ----------------------------------------------------------------------------- cache, recipes
def test_cached_model_generates_once_and_reuses(tmp_path):
    path = cached_model(1024, 7, seed=2, cache_dir=tmp_path)
    assert path.parent == tmp_path and (path / "model.json").is_file()
    assert models_equal(SparseDNN.load(path), radixnet(1024, 7, seed=2))
    stamp = (path / "model.json").stat().st_mtime_ns
    assert cached_model(1024, 7, seed=2, cache_dir=tmp_path) == path
    assert (path / "model.json").stat().st_mtime_ns == stamp
    assert cached_model(1024, 7, seed=3, cache_dir=tmp_path) != path


def test_cached_model_replaces_a_broken_entry(tmp_path):
    path = cached_model(1024, 3, cache_dir=tmp_path)
    (path / "model.json").write_text("{not json")
    assert cached_model(1024, 3, cache_dir=tmp_path) == path
    assert models_equal(SparseDNN.load(path), radixnet(1024, 3))


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FSD_CACHE_DIR", str(tmp_path / "cache"))
    path = cached_model(256, 2)
    assert path.parent == tmp_path / "cache" and (path / "model.json").is_file()


def test_twelve_recipes_for_the_challenge_configurations():
    names = list_recipes()
    assert names == [f"radixnet-{n}-{l}" for n in (1024, 4096, 16384, 65536) for l in (120, 480, 1920)]
    for name in names:
        r = load_recipe(name)
        assert r["name"] == name and r["kind"] == "radixnet" and r["seed"] == 0
        assert r["edges"] == r["neurons"] * 32 * r["layers"]
        assert r["bias"] == CHALLENGE_BIAS[r["neurons"]]
        assert r["categories"] == OFFICIAL_CATEGORIES[r["neurons"]]
    assert load_recipe("radixnet-1024-120.json") == load_recipe("radixnet-1024-120")
    r = load_recipe("radixnet-1024-120")
    assert radixnet(r["neurons"], r["layers"], r["seed"]).nnz == r["edges"]


@pytest.mark.parametrize("bad", ["radixnet-1000-120", "", "../models/recipes/radixnet-1024-120"])
def test_unknown_recipe_is_refused(bad):
    with pytest.raises(InputError, match="radixnet-1024-120"):
        load_recipe(bad)


# ----------------------------------------------------------------------------- shipped model
def test_shipped_tiny_model_matches_the_generator():
    tiny = SparseDNN.load(MODELS / "tiny")
    assert models_equal(tiny, radixnet(256, 24, seed=1))
    assert tiny.meta == {"kind": "radixnet", "neurons": 256, "layers": 24, "seed": 1, "permute": True}
    size = sum(f.stat().st_size for f in (MODELS / "tiny").rglob("*") if f.is_file())
    assert size <= 2 * 2**20


def test_shipped_tiny_inputs_match_and_give_some_categories():
    x = read_inputs(MODELS / "tiny-inputs.tsv", 256)
    assert csr_equal(x, synthetic_inputs(256, 64, seed=1))
    categories = infer(SparseDNN.load(MODELS / "tiny"), x).categories
    assert 0 < len(categories) < 64


def test_recipe_files_are_plain_json():
    for f in (MODELS / "recipes").glob("*.json"):
        assert json.loads(f.read_text())["name"] == f.stem
