"""SparseDNN storage, Graph Challenge import/export, and refusal of every kind of bad input."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fsd_core.cli import main
from fsd_core.errors import InputError
from fsd_core.model.network import SparseDNN, export_graph_challenge, import_graph_challenge, read_inputs

from .conftest import GRAPH_CHALLENGE, random_model


def assert_models_identical(a: SparseDNN, b: SparseDNN) -> None:
    assert a.layers == b.layers and a.neurons == b.neurons and a.ymax == b.ymax
    for wa, wb, ba, bb in zip(a.weights, b.weights, a.biases, b.biases):
        assert np.array_equal(wa.indptr, wb.indptr)
        assert np.array_equal(wa.indices, wb.indices)
        assert np.array_equal(wa.data.view(np.uint32), wb.data.view(np.uint32))
        assert np.array_equal(ba, bb)


def test_save_load_roundtrip(tmp_path):
    model = random_model(40, 5, 0.2, seed=7)
    model.save(tmp_path / "m")
    assert_models_identical(model, SparseDNN.load(tmp_path / "m"))
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["version"] == 1 and manifest["layers"] == 5 and manifest["nnz"] == model.nnz


def test_import_export_import_is_identical(tmp_path):
    model = SparseDNN.challenge(random_model(1024, 2, 0.002, seed=1).weights)
    export_graph_challenge(model, tmp_path / "gc")
    assert sorted(p.name for p in (tmp_path / "gc").iterdir()) == ["neuron1024-l1.tsv", "neuron1024-l2.tsv"]
    again = import_graph_challenge(tmp_path / "gc", 1024, 2)
    assert_models_identical(model, again)


def test_real_challenge_roundtrip(gc_model, tmp_path):
    model = gc_model.truncated(3)
    assert model.nnz == 3 * 32768 and set(np.unique(model.weights[0].data)) == {np.float32(0.0625)}
    export_graph_challenge(model, tmp_path / "gc")
    assert_models_identical(model, import_graph_challenge(tmp_path / "gc", 1024, 3))
    official = np.loadtxt(GRAPH_CHALLENGE / "n1024-l1.tsv")
    ours = np.loadtxt(tmp_path / "gc" / "neuron1024-l1.tsv")
    def rowmajor(t):
        return t[np.lexsort((t[:, 1], t[:, 0]))]

    assert np.array_equal(rowmajor(ours), rowmajor(official))


def test_short_layer_names_are_accepted(tmp_path):
    model = SparseDNN.challenge(random_model(1024, 1, 0.002, seed=2).weights)
    export_graph_challenge(model, tmp_path)
    (tmp_path / "neuron1024-l1.tsv").rename(tmp_path / "n1024-l1.tsv")
    assert_models_identical(model, import_graph_challenge(tmp_path, 1024, 1))


# ----------------------------------------------------------------------------- bad input
def fsd(args, capsys):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def write_layer(directory: Path, k: int, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"neuron1024-l{k}.tsv").write_text(text)


@pytest.mark.parametrize("text, expect", [
    ("1\t2\t0.0625\n3\t4\n", ":2: expected 3 fields, found 2"),
    ("1\t2\t0.0625\n3\t4\tabc\n", ":2: non-numeric value 'abc'"),
    ("1\t2\t0.0625\n1\t1025\t0.0625\n", ":2: column index 1025 out of range 1..1024"),
    ("1\t2\t0.0625\n0\t5\t0.0625\n", ":2: row index 0 out of range 1..1024"),
    ("1\t2\t0.0625\n1.5\t5\t0.0625\n", ":2: row index 1.5 out of range"),
    ("1\t2\t0.0625\n\n4\t5\tnan\n", ":3: value is not finite"),
    ("1\t2\t0.0625\n4\t5\t-1e39\n", ":2: value -1e+39 does not fit float32"),
    ("1\t2\t0.0625\n1\t2\t0.0625\n", ":2: duplicate entry for row 1, column 2"),
])
def test_malformed_layer_files_are_refused(tmp_path, capsys, text, expect):
    write_layer(tmp_path / "gc", 1, text)
    code, err = fsd(["model", "import", "--graph-challenge", tmp_path / "gc", "--neurons", 1024,
                     "--layers", 1, "--out", tmp_path / "m"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "neuron1024-l1.tsv" in err and expect in err, err
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["gc"]  # no temp directory left behind


def test_wrong_neuron_count_is_refused(tmp_path, capsys):
    model = SparseDNN.challenge(random_model(1024, 1, 0.01, seed=3).weights)
    export_graph_challenge(model, tmp_path / "gc")
    # Files named for the asked-for N but holding a wider network: refused at the first bad line.
    (tmp_path / "gc" / "neuron1024-l1.tsv").rename(tmp_path / "gc" / "neuron512-l1.tsv")
    code, err = fsd(["model", "import", "--graph-challenge", tmp_path / "gc", "--neurons", 512,
                     "--layers", 1, "--out", tmp_path / "m"], capsys)
    assert code == 2 and "out of range 1..512" in err and "neuron512-l1.tsv:" in err
    # Asking for an N the directory does not hold names the file it looked for.
    code, err = fsd(["model", "import", "--graph-challenge", tmp_path / "gc", "--neurons", 4096,
                     "--layers", 1, "--out", tmp_path / "m"], capsys)
    assert code == 2 and "neuron4096-l1.tsv" in err and "missing" in err


def test_missing_layer_file_is_refused(tmp_path, capsys):
    write_layer(tmp_path / "gc", 1, "1\t2\t0.0625\n")
    code, err = fsd(["model", "import", "--graph-challenge", tmp_path / "gc", "--neurons", 1024,
                     "--layers", 2, "--out", tmp_path / "m"], capsys)
    assert code == 2 and "neuron1024-l2.tsv" in err and "missing" in err
    assert not (tmp_path / "m").exists()


def test_truncated_array_file_is_refused(tmp_path, capsys):
    random_model(32, 2, 0.2, seed=4).save(tmp_path / "m")
    layer = tmp_path / "m" / "layer-00002.npz"
    layer.write_bytes(layer.read_bytes()[: layer.stat().st_size // 2])
    with pytest.raises(InputError, match="layer-00002.npz: layer 2 file is truncated or corrupt"):
        SparseDNN.load(tmp_path / "m")
    inputs = tmp_path / "x.tsv"
    inputs.write_text("1\t1\t1\n")
    code, err = fsd(["infer", "--model", tmp_path / "m", "--inputs", inputs], capsys)
    assert code == 2 and "layer-00002.npz" in err and err.count("\n") == 1


def test_unsupported_version_and_bad_arrays_are_refused(tmp_path):
    random_model(16, 1, 0.3, seed=5).save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps(dict(manifest, version=99)))
    with pytest.raises(InputError, match="format version 99 is not supported"):
        SparseDNN.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text(json.dumps(dict(manifest, layers=2)))
    with pytest.raises(InputError, match="lists 1 layer files for 2 layers"):
        SparseDNN.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    z = dict(np.load(tmp_path / "m" / "layer-00001.npz"))
    z["data"] = z["data"].astype(np.float64)
    np.savez_compressed(tmp_path / "m" / "layer-00001.npz", **z)
    with pytest.raises(InputError, match="array 'data' is float64"):
        SparseDNN.load(tmp_path / "m")


def test_bad_inputs_and_truth_files(tmp_path, capsys):
    random_model(16, 1, 0.3, seed=6).save(tmp_path / "m")
    bad = tmp_path / "x.tsv"
    bad.write_text("1\t1\t1\n2\t17\t1\n")
    code, err = fsd(["infer", "--model", tmp_path / "m", "--inputs", bad], capsys)
    assert code == 2 and "x.tsv:2: column index 17 out of range 1..16" in err
    good = tmp_path / "y.tsv"
    good.write_text("1\t1\t1\n")
    truth = tmp_path / "t.tsv"
    truth.write_text("1\nzero\n")
    code, err = fsd(["infer", "--model", tmp_path / "m", "--inputs", good, "--check", truth], capsys)
    assert code == 2 and "t.tsv:2: non-numeric value 'zero'" in err


def test_cli_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fsd_core.cli", "infer", "--model", str(tmp_path / "none"),
                           "--inputs", str(tmp_path / "none.tsv")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "not a model directory" in proc.stderr


def test_infer_check_passes_on_real_data(gc_model_dir, capsys):
    from .conftest import GC_INPUTS, GC_TRUTH

    code = main(["infer", "--model", str(gc_model_dir), "--inputs", str(GC_INPUTS), "--check", str(GC_TRUTH)])
    out = capsys.readouterr().out
    assert code == 0 and "PASSED" in out and "edges/s" in out


def test_infer_check_fails_on_wrong_truth(gc_model_dir, tmp_path, capsys):
    from .conftest import GC_INPUTS

    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("1\n2\n")
    code = main(["infer", "--model", str(gc_model_dir), "--inputs", str(GC_INPUTS), "--check", str(wrong)])
    assert code == 1 and "FAILED" in capsys.readouterr().out


def test_read_inputs_sizes_by_largest_row(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("3\t2\t1\n1\t1\t1\n")
    x = read_inputs(f, 4)
    assert x.shape == (3, 4) and x.nnz == 2 and x[2, 1] == 1


# ----------------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("edit, expect", [
    (lambda m: b"\x00\x9f\xffPK garbage", "model.json: invalid JSON"),
    (lambda m: b"[" * 100_000, "model.json: invalid JSON"),
    (lambda m: dict(m, layer_files=[{"nnz": m["nnz"]}]), "layer_files[0]: field 'file' is missing"),
    (lambda m: dict(m, layer_files=["layer-00001.npz"]), "layer_files[0] is not an object"),
    (lambda m: dict(m, layer_files=[{"file": "../../etc/passwd", "nnz": 1}]), "is not a file name in the model"),
    (lambda m: dict(m, layer_files=[{"file": "layer-00001.npz", "nnz": 10**30}]), "field 'nnz' must be"),
    (lambda m: dict(m, neurons=10**30), "neurons must be in 1..2147483647"),
    (lambda m: dict(m, neurons=True), "field 'neurons' is missing or has the wrong type"),
    (lambda m: dict(m, ymax=float("nan")), "field 'ymax' must be a positive finite number"),
    (lambda m: dict(m, meta=[1]), "field 'meta' has the wrong type"),
], ids=["binary", "nested", "no-file", "entry-not-object", "path", "huge-nnz", "huge-neurons", "bool",
        "nan-ymax", "meta"])
def test_damaged_manifest_is_one_input_error(tmp_path, edit, expect):
    random_model(16, 1, 0.3, seed=8).save(tmp_path / "m")
    mf = tmp_path / "m" / "model.json"
    new = edit(json.loads(mf.read_text()))
    mf.write_bytes(new if isinstance(new, bytes) else json.dumps(new).encode())
    with pytest.raises(InputError, match="model.json") as info:
        SparseDNN.load(tmp_path / "m")
    assert expect in str(info.value) and "\n" not in str(info.value)


def corrupt_deflate(layer: Path) -> None:
    """Make the first member's deflate stream start with a reserved block type (zlib.error in np.load)."""
    import zipfile

    with zipfile.ZipFile(layer) as z:
        at = z.infolist()[0].header_offset
    data = bytearray(layer.read_bytes())
    name, extra = struct.unpack_from("<HH", data, at + 26)  # the local header's own lengths
    data[at + 30 + name + extra] = 0xFF
    layer.write_bytes(bytes(data))


@pytest.mark.parametrize("command", ["infer", "run"])
def test_damaged_layer_file_is_one_line_from_the_cli(tmp_path, command):
    random_model(16, 2, 0.3, seed=9).save(tmp_path / "m")
    corrupt_deflate(tmp_path / "m" / "layer-00002.npz")
    inputs = tmp_path / "x.tsv"
    inputs.write_text("1\t1\t1\n2\t5\t1\n")
    fsd_bin = Path(sys.executable).parent / "fsd"
    args = [str(fsd_bin), command, "--model", str(tmp_path / "m"), "--inputs", str(inputs)]
    proc = subprocess.run(args + (["--variant", "serial"] if command == "run" else []),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("fsd: error:") and proc.stderr.count("\n") == 1, proc.stderr
    assert "layer-00002.npz: layer 2 file is truncated or corrupt" in proc.stderr


def test_empty_layer_and_inputs_files_are_refused(tmp_path, capsys):
    write_layer(tmp_path / "gc", 1, "")
    code, err = fsd(["model", "import", "--graph-challenge", tmp_path / "gc", "--neurons", 1024,
                     "--layers", 1, "--out", tmp_path / "m"], capsys)
    assert code == 2 and "neuron1024-l1.tsv: no entries" in err and err.count("\n") == 1
    random_model(16, 1, 0.3, seed=10).save(tmp_path / "m")
    empty = tmp_path / "x.tsv"
    empty.write_text("\n\n")
    code, err = fsd(["infer", "--model", tmp_path / "m", "--inputs", empty], capsys)
    assert code == 2 and "x.tsv: no entries" in err and err.count("\n") == 1


def test_a_huge_row_id_is_refused_before_anything_is_allocated(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("1\t1\t1\n3000000000\t2\t1\n")
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"x.tsv:2: row index 3e\+09 out of range 1..16777216"):
        read_inputs(f, 16)
    assert time.perf_counter() - start < 1
    f.write_text("1\t1\t1\n2\t1e300\t1\n")
    with pytest.raises(InputError, match=r"x.tsv:2: column index 1e\+300 out of range 1..16"):
        read_inputs(f, 16)
