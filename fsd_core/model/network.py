"""SparseDNN: the network every engine runs, its on-disk format and Graph Challenge import.

Weights follow the Graph Challenge: layer l is an N x N CSR float32 matrix W_l with
row = input neuron, column = output neuron, so a batch Y (B x N) advances as Z = Y W_l.
Each layer has a per-neuron float32 bias (added to structural non-zeros of Z only) and the
network a clamp `ymax` (32 in the challenge).

A model is a directory: `model.json` (format version, sizes, per-layer file names and nnz)
plus one compressed `.npz` per layer, written atomically and fully validated on load.
Loading trusts nothing in the directory: every field of `model.json` is checked, and a layer's
arrays are read only after the zip directory and each array's `.npy` header agree with the
sizes the manifest promises, so a damaged file is one `InputError` naming it, never a
traceback or an allocation beyond what the model needs.
"""

from __future__ import annotations

import json
import math
import os
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..fileio import atomic_directory
from .tsv import read_triples, write_triples

FORMAT = "fsd-sparse-dnn"
FORMAT_VERSION = 1

# Graph Challenge bias per network width; every neuron of every layer has the same one.
CHALLENGE_BIAS = {1024: -0.3, 4096: -0.35, 16384: -0.4, 65536: -0.45}
CHALLENGE_YMAX = 32.0

#: Largest `model.json` read: ~60 bytes a layer, so a 1920-layer model's is ~120 KB.
MAX_MANIFEST_BYTES = 16 << 20
#: Most neurons a model may have: column indices are stored as int32.
MAX_NEURONS = (1 << 31) - 1
_NPY_HEADER_MAX = 1 << 16  # a .npy member's header (magic, version, length, a short dict)
# What zipfile and numpy's .npy header reader raise on a damaged layer file (zlib.error from
# a corrupt deflate stream; numpy's header parser falls back to Python's tokenizer).
_LAYER_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError, IndexError,
                 NotImplementedError, SyntaxError, RecursionError, tokenize.TokenError, Warning)


@dataclass
class SparseDNN:
    """A sparse feed-forward network: `weights[l]` is N x N CSR float32, `biases[l]` (N,) float32."""

    weights: list[sp.csr_matrix]
    biases: list[np.ndarray]
    ymax: float = CHALLENGE_YMAX
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weights = [_as_csr32(w) for w in self.weights]
        self.biases = [np.ascontiguousarray(b, dtype=np.float32) for b in self.biases]
        self.validate()

    @property
    def neurons(self) -> int:
        return self.weights[0].shape[0] if self.weights else 0

    @property
    def layers(self) -> int:
        return len(self.weights)

    @property
    def nnz(self) -> int:
        """Total weight non-zeros: the 'edges' of the challenge's edges/s rate."""
        return int(sum(w.nnz for w in self.weights))

    def validate(self, where: str = "model") -> None:
        """Check shapes, dtypes and finiteness; raise InputError naming the first problem."""
        if not self.weights:
            raise InputError(f"{where}: the model has no layers")
        if len(self.biases) != len(self.weights):
            raise InputError(f"{where}: {len(self.weights)} weight layers but {len(self.biases)} bias vectors")
        n = self.weights[0].shape[0]
        for l, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            if w.shape != (n, n):
                raise InputError(f"{where}: layer {l} weights are {w.shape[0]}x{w.shape[1]}, expected {n}x{n}")
            if b.shape != (n,):
                raise InputError(f"{where}: layer {l} bias has shape {b.shape}, expected ({n},)")
            if not np.isfinite(w.data).all() or not np.isfinite(b).all():
                raise InputError(f"{where}: layer {l} has non-finite values")
        if not (np.isfinite(self.ymax) and self.ymax > 0):
            raise InputError(f"{where}: ymax must be a positive finite number, got {self.ymax}")

    @classmethod
    def challenge(cls, weights: list[sp.csr_matrix], name: str = "", meta: dict | None = None) -> "SparseDNN":
        """A network with the Graph Challenge bias for its width and ymax = 32."""
        n = weights[0].shape[0]
        if n not in CHALLENGE_BIAS:
            raise InputError(f"no Graph Challenge bias for N={n}; sizes are {sorted(CHALLENGE_BIAS)}")
        bias = np.full(n, CHALLENGE_BIAS[n], dtype=np.float32)
        return cls(weights, [bias] * len(weights), CHALLENGE_YMAX, name, dict(meta or {}))

    def truncated(self, layers: int) -> "SparseDNN":
        """The first `layers` layers (the challenge's 120-layer net is a prefix of the 1920)."""
        return SparseDNN(self.weights[:layers], self.biases[:layers], self.ymax, self.name, dict(self.meta))

    # ---------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model directory atomically (replacing an existing one)."""
        path = Path(path)
        layers = []
        with atomic_directory(path) as tmp:
            for l, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
                fname = f"layer-{l:05d}.npz"
                np.savez_compressed(tmp / fname, indptr=w.indptr.astype(np.int64),
                                    indices=w.indices.astype(np.int32), data=w.data, bias=b)
                layers.append({"file": fname, "nnz": int(w.nnz)})
            manifest = {
                "format": FORMAT, "version": FORMAT_VERSION, "name": self.name,
                "neurons": self.neurons, "layers": self.layers, "ymax": float(self.ymax),
                "nnz": self.nnz, "meta": self.meta, "layer_files": layers,
            }
            (tmp / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], layers: int | None = None) -> "SparseDNN":
        """Load and validate a model directory; `layers` loads only a prefix."""
        path = Path(path)
        manifest = read_manifest(path)
        n = manifest["neurons"]
        count = manifest["layers"] if layers is None else min(layers, manifest["layers"])
        weights, biases = [], []
        for l, entry in enumerate(manifest["layer_files"][:count], start=1):
            w, b = _load_layer(path / entry["file"], n, entry["nnz"], l)
            weights.append(w)
            biases.append(b)
        return cls(weights, biases, manifest["ymax"], manifest.get("name", ""), manifest.get("meta", {}))


def read_manifest(path: str | os.PathLike[str]) -> dict:
    """Read and check `model.json` without loading any weights; InputError naming the field."""
    path = Path(path)
    mf = path / "model.json"
    if not mf.is_file():
        raise InputError(f"{path}: not a model directory (no model.json)")
    try:
        size = mf.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise InputError(f"{mf}: {size} bytes is too large for a manifest")
        manifest = json.loads(mf.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"{mf}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"{mf}: invalid JSON: {str(exc)[:200]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{mf}: not an {FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise InputError(f"{mf}: format version {str(manifest.get('version'))[:40]} is not supported "
                         f"(this fsd reads version {FORMAT_VERSION})")
    for key, typ in (("neurons", int), ("layers", int), ("ymax", (int, float)), ("layer_files", list)):
        if not isinstance(manifest.get(key), typ) or isinstance(manifest.get(key), bool):
            raise InputError(f"{mf}: field {key!r} is missing or has the wrong type")
    for key, typ in (("name", str), ("meta", dict)):  # optional
        if key in manifest and not isinstance(manifest[key], typ):
            raise InputError(f"{mf}: field {key!r} has the wrong type")
    n = manifest["neurons"]
    if not 1 <= n <= MAX_NEURONS or manifest["layers"] < 1:
        raise InputError(f"{mf}: neurons must be in 1..{MAX_NEURONS} and layers positive")
    if not (math.isfinite(manifest["ymax"]) and manifest["ymax"] > 0):
        raise InputError(f"{mf}: field 'ymax' must be a positive finite number")
    if len(manifest["layer_files"]) != manifest["layers"]:
        raise InputError(f"{mf}: lists {len(manifest['layer_files'])} layer files for {manifest['layers']} layers")
    for l, entry in enumerate(manifest["layer_files"]):
        _check_layer_entry(mf, l, entry, n)
    return manifest


def _check_layer_entry(mf: Path, l: int, entry: object, n: int) -> None:
    """One `layer_files` entry: a plain file name in the model directory and its nnz (<= n^2)."""
    where = f"{mf}: layer_files[{l}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where} is not an object")
    name, nnz = entry.get("file"), entry.get("nnz")
    if not isinstance(name, str):
        raise InputError(f"{where}: field 'file' is missing or not a string")
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InputError(f"{where}: file {name[:80]!r} is not a file name in the model directory")
    if not isinstance(nnz, int) or isinstance(nnz, bool) or not 0 <= nnz <= n * n:
        raise InputError(f"{where}: field 'nnz' must be an integer in 0..{n * n}")


def _load_layer(file: Path, n: int, nnz: int, layer: int) -> tuple[sp.csr_matrix, np.ndarray]:
    expected = {"indptr": (np.int64, (n + 1,)), "indices": (np.int32, (nnz,)),
                "data": (np.float32, (nnz,)), "bias": (np.float32, (n,))}
    try:
        with zipfile.ZipFile(file) as z:
            arrays = {key: _read_array(z, file, key, np.dtype(dtype), shape)
                      for key, (dtype, shape) in expected.items()}
    except FileNotFoundError:
        raise InputError(f"{file}: layer {layer} file is missing") from None
    except PermissionError:
        raise InputError(f"{file}: layer {layer} file cannot be read (permission denied)") from None
    except _LAYER_DAMAGE as exc:
        raise InputError(f"{file}: layer {layer} file is truncated or corrupt ({type(exc).__name__})") from None
    indptr, indices = arrays["indptr"], arrays["indices"]
    if indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any():
        raise InputError(f"{file}: array 'indptr' is not a valid CSR row pointer")
    if nnz and (indices.min() < 0 or indices.max() >= n):
        raise InputError(f"{file}: array 'indices' has a column outside 0..{n - 1}")
    if not np.isfinite(arrays["data"]).all() or not np.isfinite(arrays["bias"]).all():
        raise InputError(f"{file}: layer {layer} has non-finite values")
    w = sp.csr_matrix((arrays["data"], indices, indptr), shape=(n, n))
    return w, arrays["bias"]


def _read_array(z: zipfile.ZipFile, file: Path, key: str, dtype: np.dtype, shape: tuple[int]) -> np.ndarray:
    """Member `key` of an npz, allocated only once the zip directory and the array's own header
    agree with the `dtype` and `shape` the manifest promises (np.load allocates whatever the
    header says, and lets zlib.error through)."""
    try:
        info = z.getinfo(f"{key}.npy")
    except KeyError:
        raise InputError(f"{file}: array {key!r} is missing") from None
    size = dtype.itemsize * shape[0]
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1 or \
            not size <= info.file_size <= size + _NPY_HEADER_MAX:
        raise InputError(f"{file}: array {key!r} is not the {size} bytes the manifest promises (or is "
                         "compressed in a way fsd does not write)")
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise InputError(f"{file}: array {key!r} has .npy version {version}, not 1.0 or 2.0")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns, then guesses, on a header it had to repair
            got_shape, _, got_dtype = read_header(f)
        if got_dtype != dtype or got_shape != shape:
            raise InputError(f"{file}: array {key!r} is {got_dtype}{list(got_shape)}, expected "
                             f"{dtype}{list(shape)}")
        out = np.empty(shape, dtype)
        view = memoryview(out).cast("B")
        pos = 0
        while pos < size:
            got = f.readinto(view[pos:])
            if not got:
                raise EOFError("array data ends early")
            pos += got
        if f.read(1):  # (reading to the end also makes zipfile check the member's CRC)
            raise InputError(f"{file}: array {key!r} has data past its end")
    return out


def _as_csr32(w: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    w = sp.csr_matrix(w, dtype=np.float32)
    w.sum_duplicates()
    w.sort_indices()
    return w


# ------------------------------------------------------------------ Graph Challenge files
_LAYER_NAMES = ("neuron{n}-l{k}.tsv", "n{n}-l{k}.tsv")


def challenge_layer_file(directory: Path, neurons: int, layer: int) -> Path:
    """The layer file in `directory`, accepting both official spellings (also in neuronN/)."""
    for base in (directory, directory / f"neuron{neurons}"):
        for pattern in _LAYER_NAMES:
            candidate = base / pattern.format(n=neurons, k=layer)
            if candidate.is_file():
                return candidate
    raise InputError(f"{directory}: layer file {_LAYER_NAMES[0].format(n=neurons, k=layer)} "
                     f"(or {_LAYER_NAMES[1].format(n=neurons, k=layer)}) is missing")


def import_graph_challenge(directory: str | os.PathLike[str], neurons: int, layers: int) -> SparseDNN:
    """Read `layers` weight files of an N-neuron Graph Challenge network."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: directory not found")
    if neurons < 1 or layers < 1:
        raise InputError("--neurons and --layers must be positive")
    weights = [read_triples(challenge_layer_file(directory, neurons, k), neurons, neurons)
               for k in range(1, layers + 1)]
    return SparseDNN.challenge(weights, name=f"graph-challenge-{neurons}x{layers}",
                               meta={"source": "graph-challenge", "directory": str(directory)})


def export_graph_challenge(model: SparseDNN, directory: str | os.PathLike[str]) -> list[Path]:
    """Write every layer as `neuronN-l{k}.tsv` (each file atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for k, w in enumerate(model.weights, start=1):
        target = directory / _LAYER_NAMES[0].format(n=model.neurons, k=k)
        write_triples(target, w)
        out.append(target)
    return out


def read_inputs(path: str | os.PathLike[str], neurons: int) -> sp.csr_matrix:
    """Read a `sparse-images-N.tsv` file: B x N float32 CSR (B = the largest row id)."""
    return read_triples(path, None, neurons)


