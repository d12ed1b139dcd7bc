"""RadiX-Net networks (the Sparse DNN Graph Challenge topologies) and synthetic MNIST-like inputs.

The networks follow `shared/RADIXNET.md` section 3: width N = 16 N', radix list [2] * log2(N'),
Kronecker with dense 16 x 16 blocks, so every row and every column has exactly 32 non-zeros
of value 1/16. Layers come in blocks (one copy of the radix list each); block 0 is the plain
base pattern, every later block relabels the rows with its own seeded random permutation
(`W_l = P_c K_pv`), exactly like the official files. Layers 1-6 at N = 1024 equal the real
challenge layers bit for bit.

The inputs imitate the challenge's `sparse-images-N` (section 4): binary S x S images
(S = sqrt(N)) made of pen strokes drawn on a 28 x 28 canvas, Fourier-upscaled to S x S and
thresholded like the official pipeline, flattened column-major (`col = x * S + y`).

Generated models are cached outside git (`cached_model`); `models/recipes/*.json` name the
twelve challenge configurations.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from .network import CHALLENGE_BIAS, CHALLENGE_YMAX, SparseDNN

#: Dense Kronecker factor of the challenge recipe: 16 copies, so 2 * 16 = 32 links per neuron.
KRON = 16
#: Radix of every place in the challenge's mixed-radix lists.
RADIX = 2
#: Every weight of a challenge network.
WEIGHT = np.float32(1.0 / KRON)
#: Widths accepted by `radixnet`: 16 * 2^m with N' = 2^m >= 2, up to the largest challenge size.
ALLOWED_NEURONS = tuple(KRON * 2**m for m in range(1, 13))
#: Bias for widths below the smallest challenge size (small demo/test models): that of N = 1024.
SMALL_BIAS = CHALLENGE_BIAS[1024]

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
RECIPES_DIR = MODELS_DIR / "recipes"


# --------------------------------------------------------------------------- networks
def _check_neurons(neurons: int) -> int:
    if isinstance(neurons, bool) or not isinstance(neurons, (int, np.integer)) or int(neurons) not in ALLOWED_NEURONS:
        raise InputError(f"RadiX-Net width {neurons!r} is not supported: N must be 16 * 2^m, one of "
                         f"{', '.join(map(str, ALLOWED_NEURONS))} (challenge sizes 1024, 4096, 16384, 65536)")
    return int(neurons)


def _check_count(value: int, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def bias_for(neurons: int) -> float:
    """The challenge bias for N; small non-challenge widths use the N = 1024 value."""
    return CHALLENGE_BIAS.get(neurons, SMALL_BIAS)


def block_sigma(neurons: int, block: int, seed: int = 0, permute: bool = True) -> np.ndarray:
    """Row labels σ_c(i) = π_c(i) mod N' of block `block` (identity residues for block 0).

    Each block has its own generator keyed by (seed, block), so a block can be rebuilt alone
    and an L-layer network is always a prefix of a deeper one with the same seed.
    """
    n_prime = neurons // KRON
    rows = np.arange(neurons, dtype=np.int64)
    if block == 0 or not permute:
        return rows % n_prime
    perm = np.random.default_rng([seed, block]).permutation(neurons)
    return perm % n_prime


def radix_layer(sigma: np.ndarray, place_value: int, neurons: int) -> sp.csr_matrix:
    """One layer: row i links to columns q N' + σ(i) and q N' + (σ(i) - pv) mod N', q < 16.

    Built as CSR arrays directly (32 sorted entries per row, no loop over rows).
    """
    n_prime = neurons // KRON
    a = sigma
    b = (sigma - place_value) % n_prime
    pair = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)          # (N, 2), sorted
    offsets = (np.arange(KRON, dtype=np.int64) * n_prime)[None, :, None]    # (1, 16, 1)
    indices = (offsets + pair[:, None, :]).reshape(-1).astype(np.int32)     # (N * 32,)
    per_row = RADIX * KRON
    indptr = np.arange(neurons + 1, dtype=np.int64) * per_row
    data = np.full(neurons * per_row, WEIGHT, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(neurons, neurons))


def radixnet(neurons: int, layers: int, seed: int = 0, permute: bool = True) -> SparseDNN:
    """The Graph Challenge RadiX-Net of width N and depth L (RADIXNET.md section 3).

    Block c = 0, 1, ... holds log2(N') layers with place values 1, 2, 4, ...; block 0 is
    unpermuted, every later block uses its own seeded row permutation when `permute`.
    """
    neurons = _check_neurons(neurons)
    layers = _check_count(layers, "layers")
    seed = _check_count(seed, "seed", 0)
    depth = int(math.log2(neurons // KRON))  # layers per block
    weights = []
    for block in range((layers + depth - 1) // depth):
        sigma = block_sigma(neurons, block, seed, permute)
        for k in range(min(depth, layers - block * depth)):
            weights.append(radix_layer(sigma, 2**k, neurons))
    meta = {"kind": "radixnet", "neurons": neurons, "layers": layers, "seed": seed,
            "permute": bool(permute)}
    name = f"radixnet-{neurons}-{layers}" + (f"-s{seed}" if seed else "") + ("" if permute else "-base")
    if neurons in CHALLENGE_BIAS:
        return SparseDNN.challenge(weights, name=name, meta=meta)
    bias = np.full(neurons, bias_for(neurons), dtype=np.float32)
    return SparseDNN(weights, [bias] * layers, CHALLENGE_YMAX, name, meta)


# --------------------------------------------------------------------------- inputs
#: MNIST geometry: digits are drawn on a 28 x 28 canvas and fitted into its central 20 x 20 box.
CANVAS = 28
DIGIT_BOX = 20.0
#: Pen path: SEGMENTS connected cubic Bézier pieces, POINTS samples each (< 0.5 px apart).
SEGMENTS = 3
MIN_SEGMENTS = 1
POINTS = 48
#: Pen profile: Gaussian of width sigma (canvas pixels, drawn per image), saturating like MNIST ink.
PEN_GAIN = 1.6
PEN_SIGMA_THIN = (0.40, 0.55)
PEN_SIGMA_BOLD = (1.00, 1.20)
#: Fraction of images written with a bold pen (they keep a RadiX-Net alive; see models/README.md).
BOLD_FRACTION = 0.45
#: Binarisation of the Fourier-upscaled image, as fitted to the official inputs (RADIXNET.md §4).
THRESHOLD = 0.725
#: Images per vectorised chunk are bounded so a chunk's S x S float32 images stay ~64 MB.
_CHUNK_PIXELS = 16 * 2**20
#: Images whose random choices come from one generator (see `synthetic_inputs`).
_DRAW_BLOCK = 1024


def _interpft_matrix(n: int, m: int) -> np.ndarray:
    """The real m x n Fourier resampling matrix: MATLAB `interpft` when m >= n.

    Upscaling zero-pads the spectrum and splits the Nyquist bin in half; downscaling (tiny test
    sizes only) keeps the lowest m frequencies, so output sample k sits on input k * n / m.
    """
    spectrum = np.fft.fft(np.eye(n), axis=0)
    out = np.zeros((m, n), dtype=complex)
    if m >= n:
        half = n // 2
        out[: half + 1] = spectrum[: half + 1]
        out[m - (n - half - 1):] = spectrum[half + 1:]
        if n % 2 == 0 and m > n:
            out[half] = spectrum[half] / 2
            out[m - half] = spectrum[half] / 2
    else:
        half = m // 2
        out[: half + 1] = spectrum[: half + 1]
        out[m - (m - half - 1):] = spectrum[n - (m - half - 1):]
        if m % 2 == 0:
            out[half] = (spectrum[half] + spectrum[n - half]) / 2
    return np.fft.ifft(out, axis=0).real * (m / n)


def _pen_draws(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """The random choices behind `count` images: path knots, pen kind and width, path length."""
    bold = rng.random(count) < BOLD_FRACTION
    return {
        "knots": rng.random((count, SEGMENTS * 3 + 1, 2)),
        "bold": bold,
        "sigma": np.where(bold, rng.uniform(*PEN_SIGMA_BOLD, count), rng.uniform(*PEN_SIGMA_THIN, count)),
        # Thin-pen images use their first 1..SEGMENTS pieces (short and long strokes, like "1"
        # and "8"); bold ones the whole path.
        "pieces": np.where(bold, SEGMENTS, rng.integers(MIN_SEGMENTS, SEGMENTS + 1, size=count)),
    }


def _pen_images(draws: dict[str, np.ndarray], pen_scale: float = 1.0) -> np.ndarray:
    """Grey 28 x 28 digit-like images in [0, 1]: one continuous pen path each.

    The path (SEGMENTS cubic Bézier pieces sharing end points) is scaled, ink included, into
    the 20 x 20 box keeping its aspect ratio and centred by its centre of mass, as MNIST was;
    ink is splatted bilinearly with weight = arc length, blurred by the pen's Gaussian and
    saturated.
    """
    from scipy.ndimage import gaussian_filter

    knots = draws["knots"]
    count = len(knots)
    t = np.linspace(0.0, 1.0, POINTS, endpoint=False)[:, None]
    c0, c1, c2, c3 = (knots[:, k::3][:, :SEGMENTS, None] for k in range(4))
    pts = ((1 - t) ** 3 * c0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * c3)
    pts = pts.reshape(count, SEGMENTS * POINTS, 2)
    # Pen widths rounded to a few levels, so each level is blurred in one vectorised call.
    levels = np.round(draws["sigma"] * pen_scale * 20) / 20
    active = (np.arange(SEGMENTS * POINTS) // POINTS)[None, :] < draws["pieces"][:, None]
    seglen = np.linalg.norm(np.diff(pts, axis=1, append=pts[:, -1:]), axis=2) * active
    lo = np.where(active[..., None], pts, np.inf).min(axis=1)
    hi = np.where(active[..., None], pts, -np.inf).max(axis=1)
    # Fit the inked digit into the box (1.5 sigma of pen each side), then centre its mass.
    scale = (DIGIT_BOX - 3 * levels) / np.maximum((hi - lo).max(axis=1), 1e-6)
    pts = (pts - lo[:, None]) * scale[:, None, None]
    weight = seglen * scale[:, None]
    mass = np.maximum(weight.sum(axis=1, keepdims=True), 1e-9)
    centre = (pts * weight[..., None]).sum(axis=1) / mass
    pts = pts - centre[:, None] + (CANVAS - 1) / 2
    # Bilinear splat onto the canvas (x = column, y = row).
    x, y = pts[..., 0], pts[..., 1]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    base = np.arange(count)[:, None] * CANVAS * CANVAS
    canvas = np.zeros(count * CANVAS * CANVAS)
    for dx, dy, share in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                          (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi = np.clip(x0 + dx, 0, CANVAS - 1).astype(np.int64)
        yi = np.clip(y0 + dy, 0, CANVAS - 1).astype(np.int64)
        canvas += np.bincount((base + yi * CANVAS + xi).ravel(), (share * weight).ravel(),
                              minlength=canvas.size)
    canvas = canvas.reshape(count, CANVAS, CANVAS)
    # Per-image pen: blur with its sigma (images grouped by pen level to vectorise).
    out = np.empty_like(canvas)
    for level in np.unique(levels):
        sel = levels == level
        # A line of unit linear density blurred by sigma peaks at 1 / (sqrt(2 pi) sigma).
        out[sel] = gaussian_filter(canvas[sel], sigma=(0, level, level), mode="constant") \
            * (np.sqrt(2 * np.pi) * level * PEN_GAIN)
    return np.clip(out, 0.0, 1.0)


def synthetic_inputs(neurons: int, count: int, seed: int = 0) -> sp.csr_matrix:
    """`count` x N binary float32 images imitating the challenge's MNIST inputs (~11% dense).

    Each image is a pen-drawn digit-like stroke on a 28 x 28 canvas, Fourier-upscaled to
    S x S (S = sqrt(N)), thresholded and flattened column-major (`col = x * S + y`).
    """
    neurons = _check_count(neurons, "neurons")
    count = _check_count(count, "count", 0)
    seed = _check_count(seed, "seed", 0)
    side = math.isqrt(neurons)
    if side * side != neurons or side < 2:
        raise InputError(f"input width {neurons} is not a perfect square >= 4 "
                         f"(images are S x S; challenge sizes 1024, 4096, 16384, 65536)")
    up = _interpft_matrix(CANVAS, side).astype(np.float32)
    # Below 28 x 28 (tiny test sizes) the pen widens so strokes keep their width in pixels.
    pen_scale = max(1.0, CANVAS / side)
    chunk = max(1, _CHUNK_PIXELS // neurons)
    parts = []
    # Random choices come in fixed blocks of images, each from its own (seed, block) generator,
    # so the first B images are the same whatever the count and the width.
    for first in range(0, count, _DRAW_BLOCK):
        draws = _pen_draws(np.random.default_rng([seed, first // _DRAW_BLOCK]), _DRAW_BLOCK)
        for lo in range(first, min(first + _DRAW_BLOCK, count), chunk):
            hi = min(lo + chunk, first + _DRAW_BLOCK, count)
            sel = {k: v[lo - first:hi - first] for k, v in draws.items()}
            grey = _pen_images(sel, pen_scale).astype(np.float32)
            big = up @ grey @ up.T                                   # (b, S, S) indexed [y, x]
            on = big > THRESHOLD
            empty = ~on.any(axis=(1, 2))  # a faint stroke: keep its darkest pixels, never empty
            on[empty] = big[empty] >= big[empty].max(axis=(1, 2), keepdims=True) * 0.9
            on = on.transpose(0, 2, 1).reshape(hi - lo, neurons)  # col = x * S + y
            parts.append(sp.csr_matrix(on, dtype=np.float32))
    if not parts:
        return sp.csr_matrix((0, neurons), dtype=np.float32)
    return sp.vstack(parts, format="csr", dtype=np.float32)


# --------------------------------------------------------------------------- cache and recipes
def default_cache_dir() -> Path:
    """Where generated models are kept: $FSD_CACHE_DIR, else ~/.cache/fsd-inference/models."""
    env = os.environ.get("FSD_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fsd-inference" / "models"


def _cached_matches(path: Path, recipe: dict) -> bool:
    """A cached directory is reused only if its manifest records the same recipe."""
    from .network import read_manifest

    try:
        manifest = read_manifest(path)
    except InputError:
        return False
    meta = manifest.get("meta") or {}
    return all(meta.get(k) == v for k, v in recipe.items()) and manifest["layers"] == recipe["layers"]


def cached_model(neurons: int, layers: int, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Path of the saved radixnet(neurons, layers, seed) in the cache, generated if missing.

    Models are regenerated rather than stored in git; the save is atomic, so concurrent
    callers or an interrupted run never leave a half-written model behind.
    """
    neurons = _check_neurons(neurons)
    layers = _check_count(layers, "layers")
    seed = _check_count(seed, "seed", 0)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = root / f"radixnet-{neurons}-{layers}-s{seed}"
    recipe = {"kind": "radixnet", "neurons": neurons, "layers": layers, "seed": seed, "permute": True}
    if not _cached_matches(path, recipe):
        try:
            radixnet(neurons, layers, seed).save(path)
        except OSError as exc:
            raise InputError(f"{root}: cannot write the model cache: {exc.strerror or exc}") from None
    return path


_RECIPE_FIELDS = {"name": str, "kind": str, "neurons": int, "layers": int, "seed": int,
                  "bias": float, "edges": int, "categories": int}


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_recipes() -> list[str]:
    """Names of the shipped recipes (models/recipes/*.json), smallest network first."""
    return sorted((p.stem for p in RECIPES_DIR.glob("*.json")), key=_natural_key)


def load_recipe(name: str) -> dict:
    """The recipe `name` (e.g. "radixnet-1024-120", ".json" optional), checked field by field."""
    stem = name[:-5] if name.endswith(".json") else name
    path = RECIPES_DIR / f"{stem}.json"
    if "/" in stem or not path.is_file():
        raise InputError(f"unknown recipe {name!r}; recipes are: {', '.join(list_recipes()) or 'none'}")
    try:
        recipe = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(recipe, dict):
        raise InputError(f"{path}: a recipe must be a JSON object")
    for key, typ in _RECIPE_FIELDS.items():
        value = recipe.get(key)
        ok = isinstance(value, (int, float) if typ is float else typ) and not isinstance(value, bool)
        if not ok:
            raise InputError(f"{path}: field {key!r} is missing or is not a {typ.__name__}")
    if recipe["kind"] != "radixnet":
        raise InputError(f"{path}: kind {recipe['kind']!r} is not supported (only 'radixnet')")
    _check_neurons(recipe["neurons"])
    return recipe
