"""The communication plans of models, cached on disk by model fingerprint and parameters.

Hypergraph partitioning of a large model takes minutes; a plan depends only on the network's
structure and values and on (workers, method, layout, seed), so it is computed once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import InputError
from ..model.network import SparseDNN


def plan_cache_dir() -> Path:
    from ..fileio import private_dir
    from ..paths import data_dir

    return private_dir(data_dir() / "plans")


def model_fingerprint(model: SparseDNN) -> str:
    """A digest of the network's structure and values (plans depend on nothing else)."""
    h = hashlib.sha1(f"{model.neurons}:{model.layers}".encode())
    for w in model.weights:
        h.update(w.indptr.tobytes())
        h.update(w.indices.tobytes())
        h.update(w.data.tobytes())
    return h.hexdigest()[:16]


def cached_plan(model: SparseDNN, workers: int, method: str | None, per_layer: bool | None, seed: int):
    """make_plan, memoised on disk: hypergraph partitioning of a large model takes minutes."""
    from ..plan.communication import Plan, make_plan
    from ..plan.partition import DEFAULT_PER_LAYER, default_method

    method = method or default_method()  # metis when Mt-KaHyPar does not import
    per_layer = DEFAULT_PER_LAYER if per_layer is None else per_layer
    path = plan_cache_dir() / f"{model_fingerprint(model)}-p{workers}-{method}-{'pl' if per_layer else 'sh'}-s{seed}.npz"
    if path.is_file():
        try:
            return Plan.load(path, model)
        except InputError:
            path.unlink(missing_ok=True)  # a damaged cache entry is simply recomputed
    plan = make_plan(model, workers, method, per_layer=per_layer, seed=seed)
    plan.save(path)
    return plan
