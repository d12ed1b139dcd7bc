"""`fsd calibrate`: fit the model's parameters to measured runs, and say how well they fit.

Two fits:

- **compute, from local runs** (`fit_compute`): every run of the store records each worker's
  compute seconds per layer. The run's model and inputs give each layer's work (its distinct
  rows, their density: `workload.measure_profile`), so per layer, mean over workers,

      compute_s = s * (layer_overhead_s + sparse work / P / sparse_madds_per_s + dense work / P / dense_madds_per_s)

      + pieces received * piece_overhead_s)

  is linear in (layer_overhead_s, 1/sparse rate, 1/dense rate, piece_overhead_s): non-negative
  least squares, each run weighted equally. `s` = max(1, P / cores): local workers share this
  machine's cores. A layer's seconds over its workers: their minimum by default (`STATISTICS`).
- **anything, from run totals** (`fit_totals`): measured seconds of whole runs (AWS runs, or a
  JSON list of runs) against the full model, by least squares on log(predicted / measured)
  over the chosen knobs (`params.KNOBS`: a knob scales one or more parameters together).

A knob the data cannot determine keeps its value and is listed as kept; fitted values are
clamped to plausible bounds (`BOUNDS`) and a clamped one is reported. The report gives every
run's measured and predicted seconds and relative error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import InputError
from .counts import VARIANTS
from .latency import evaluate, radixnet_comm
from .params import KNOBS, Params
from .workload import Workload, measure_profile

#: Plausible ranges of fitted parameters (outside them a fit is data trouble, not a machine).
BOUNDS: dict[str, tuple[float, float]] = {
    "sparse_madds_per_s": (1e6, 1e11), "dense_madds_per_s": (1e7, 1e12), "layer_overhead_s": (0.0, 1.0),
    "piece_overhead_s": (0.0, 1.0),
    "encode_bytes_per_s": (1e5, 1e10), "decode_bytes_per_s": (1e4, 1e10), "bandwidth_bytes_per_s": (1e5, 1e10),
    "sqs_request_s": (1e-4, 5.0), "sns_publish_s": (1e-4, 5.0), "queue_hop_s": (1e-4, 10.0),
    "s3_request_s": (1e-4, 5.0), "s3express_request_s": (1e-4, 5.0), "cold_start_s": (0.0, 30.0),
    "import_s": (0.0, 30.0),
}
COMPUTE = ("layer_overhead_s", "sparse_madds_per_s", "dense_madds_per_s", "piece_overhead_s")
#: Runs with per-layer compute timings (every engine but the serial kernel's records them).
LAYERED = ("local", "queue", "object")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- compute from local runs


#: How a layer's compute seconds are summarised over its workers: "min" (default) is the least
#: disturbed worker (on a shared machine a worker's wall time includes waits for a core: a
#: scheduler time slice is 1-15 ms, more than a whole late layer), "median" or "mean".
STATISTICS = ("min", "median", "mean")


def fit_compute(runs: Sequence[Mapping[str, Any]], params: Params | None = None, cores: int | None = None,
                fit: Sequence[str] = COMPUTE, loader=None, statistic: str = "min") -> tuple[Params, dict]:
    """Fit the kernel rates and per-layer overhead to the per-layer compute seconds of `runs`.

    A run: {"run_id", "variant", "workers", "model", "inputs", "layers_detail": [{"worker",
    "layer", "compute_s"}, ...]} (the run store's `get`). `loader(model, inputs)` returns the
    (SparseDNN, inputs) pair (default: load the files). Runs that cannot be used are listed
    under "skipped" with the reason.
    """
    params = params or Params()
    cores = cores or usable_cores()
    unknown = [k for k in fit if k not in COMPUTE]
    if unknown:
        raise InputError(f"cannot fit {unknown[0]!r} from per-layer compute times: fit one of {', '.join(COMPUTE)}")
    if statistic not in STATISTICS:
        raise InputError(f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    loader = loader or _load
    profiles: dict[tuple[str, str], Any] = {}
    blocks, skipped = [], []
    for run in runs:
        rid = str(run.get("run_id", "?"))
        why = _unusable(run)
        if why:
            skipped.append({"run_id": rid, "why": why})
            continue
        key = (str(run["model"]), str(run["inputs"]))
        try:
            if key not in profiles:
                model, inputs = loader(*key)
                profiles[key] = (model, measure_profile(model, inputs))
        except (InputError, OSError, ValueError) as exc:
            skipped.append({"run_id": rid, "why": f"cannot load its model or inputs ({exc})"})
            continue
        model, prof = profiles[key]
        if prof.layers != model.layers:
            skipped.append({"run_id": rid, "why": "the profile does not match the model"})
            continue
        w = Workload.build(model.neurons, model.layers, prof.batch, [wt.nnz for wt in model.weights],
                           measured=prof, grouped=False)
        p = int(run["workers"])
        times: list[list[float]] = [[] for _ in range(model.layers)]
        pieces = np.zeros(model.layers)
        for row in run["layers_detail"]:
            l = int(row["layer"])
            if 1 <= l <= model.layers and row.get("compute_s") is not None:
                times[l - 1].append(float(row["compute_s"]))
                pieces[l - 1] += float(row.get("messages_received") or 0) / p
        ok = np.array([bool(t) for t in times])
        if not ok.any():
            skipped.append({"run_id": rid, "why": "no per-layer compute times"})
            continue
        summary = {"min": np.min, "median": np.median, "mean": np.mean}[statistic]
        mean = np.array([float(summary(t)) if t else 0.0 for t in times])
        worst = np.array([max(t) if t else 0.0 for t in times])
        average = np.array([float(np.mean(t)) if t else 0.0 for t in times])
        sw, dw = w.work()
        s = max(1.0, p / cores)
        a = s * np.stack([np.ones(model.layers), sw / p, dw / p, pieces], axis=1)
        blocks.append({"run_id": rid, "variant": run.get("variant"), "workers": p, "a": a[ok], "y": mean[ok],
                       "imbalance": float(worst[ok].sum() / max(average[ok].sum(), 1e-12)),
                       "mean_s": float(average[ok].sum())})
    if not blocks:
        raise InputError("no run has per-layer compute times and a readable model and inputs"
                         + (f" ({skipped[0]['run_id']}: {skipped[0]['why']})" if skipped else ""))
    from scipy.optimize import nnls

    a = np.concatenate([b["a"] / b["y"].sum() for b in blocks])
    y = np.concatenate([b["y"] / b["y"].sum() for b in blocks])
    cols = [COMPUTE.index(k) for k in fit]
    prior = np.array([params.layer_overhead_s, 1 / params.sparse_madds_per_s, 1 / params.dense_madds_per_s,
                      params.piece_overhead_s])
    rate = (False, True, True, False)
    fixed = [i for i in range(len(COMPUTE)) if i not in cols]
    rhs = y - (a[:, fixed] @ prior[fixed] if fixed else 0.0)
    sub = a[:, cols]
    scale = np.where(np.abs(sub).max(axis=0) > 0, np.abs(sub).max(axis=0), 1.0)
    coef, _ = nnls(sub / scale, rhs)
    coef = coef / scale
    values = prior.copy()
    new: dict[str, float] = {}
    kept, clamped = [], []
    for i, c in zip(cols, coef):
        name = COMPUTE[i]
        if not np.any(sub[:, cols.index(i)]) or (rate[i] and c <= 0):
            kept.append(name)  # no signal, or "free": keep the prior rather than claim an infinite rate
            continue
        v = 1.0 / float(c) if rate[i] else float(c)
        lo, hi = BOUNDS[name]
        if not lo <= v <= hi:
            clamped.append(name)
            v = min(max(v, lo), hi)
        values[i] = 1.0 / v if rate[i] else v
        new[name] = v
    fitted = replace(params, **new)
    report_runs = []
    for b in blocks:
        pred = float((b["a"] @ values).sum())
        meas = float(b["y"].sum())
        report_runs.append({"run_id": b["run_id"], "variant": b["variant"], "workers": b["workers"],
                            "measured_s": meas, "predicted_s": pred, "relative_error": pred / meas - 1.0,
                            "mean_worker_s": b["mean_s"], "imbalance": b["imbalance"]})
    return fitted, _report(f"compute seconds per worker, summed over layers ({statistic} over each layer's workers)",
                           new, kept, clamped, report_runs, skipped, cores=cores, statistic=statistic)


def _unusable(run: Mapping[str, Any]) -> str | None:
    if run.get("variant") not in LAYERED:
        return f"variant {run.get('variant')!r} records no per-layer times"
    if str(run.get("status")) not in ("ok", "succeeded", "success", "done"):
        return f"status {run.get('status')!r}"
    if not run.get("layers_detail"):
        return "no per-layer records"
    for k in ("model", "inputs"):
        if not run.get(k) or not os.path.exists(str(run[k])):
            return f"its {k} file is not here ({run.get(k)!r})"
    if not run.get("workers"):
        return "no worker count"
    return None


def _load(model_path: str, inputs_path: str):
    from ..model.network import SparseDNN, read_inputs

    model = SparseDNN.load(model_path)
    return model, read_inputs(inputs_path, model.neurons)


# ----------------------------------------------------------------------------- anything from run totals


def fit_totals(records: Sequence[Mapping[str, Any]], params: Params | None = None,
               fit: Sequence[str] = ("madds_per_s",)) -> tuple[Params, dict]:
    """Fit knobs (`params.KNOBS`) so the model's seconds match the records' measured seconds.

    A record: {"variant", "neurons", "layers", "batch", "workers", "memory_mb", "seconds"} and
    optionally "method", "density", "profile", "arch", "storage", "run_id".
    """
    from scipy.optimize import least_squares

    params = params or Params()
    unknown = [k for k in fit if k not in KNOBS]
    if unknown:
        raise InputError(f"cannot fit {unknown[0]!r}: fit one of {', '.join(KNOBS)}")
    if not records:
        raise InputError("calibration needs at least one measured run")
    cases = [_case(i, rec) for i, rec in enumerate(records)]
    base = [tuple(getattr(params, f) for f in KNOBS[k]) for k in fit]

    def with_scales(x: np.ndarray) -> Params:
        values: dict[str, float] = {}
        for k, b, xi in zip(fit, base, x):
            for f, v in zip(KNOBS[k], b):
                values[f] = v * math.exp(xi)
        return replace(params, **values)

    def predict(p: Params) -> np.ndarray:
        out = []
        for c in cases:
            comm = None if c["variant"] == "serial" else radixnet_comm(c["w"], [c["workers"]], c["method"])
            out.append(evaluate(c["variant"], c["w"], comm, p, None, c["memory_mb"], c["arch"], c["storage"]).seconds[0])
        return np.array(out)

    meas = np.array([c["seconds"] for c in cases])

    def resid(x: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(predict(with_scales(x)), 1e-9) / meas)

    x0 = np.zeros(len(fit))
    span = math.log(1e4)
    sol = least_squares(resid, x0, bounds=(-span * np.ones(len(fit)), span * np.ones(len(fit))), x_scale=1.0)
    x = sol.x
    jac = sol.jac if sol.jac is not None else np.zeros((len(cases), len(fit)))
    kept, clamped, new = [], [], {}
    for j, k in enumerate(fit):
        if not np.any(np.abs(jac[:, j]) > 1e-9):
            kept.append(k)
            x[j] = 0.0
            continue
        if abs(abs(x[j]) - span) < 1e-6:
            clamped.append(k)
    fitted = with_scales(x)
    for j, k in enumerate(fit):
        if k in kept:
            continue
        for f in KNOBS[k]:
            v = getattr(fitted, f)
            lo, hi = BOUNDS.get(f, (0.0, math.inf))
            if not lo <= v <= hi:
                clamped.append(k)
                fitted = replace(fitted, **{f: min(max(v, lo), hi)})
            new[f] = getattr(fitted, f)
    pred = predict(fitted)
    runs = [{"run_id": c["run_id"], "variant": c["variant"], "workers": c["workers"], "measured_s": float(m),
             "predicted_s": float(p), "relative_error": float(p / m - 1.0)} for c, m, p in zip(cases, meas, pred)]
    return fitted, _report("seconds per run", new, kept, sorted(set(clamped)), runs, [])


def _case(i: int, rec: Mapping[str, Any]) -> dict:
    where = f"record {i}"
    try:
        variant = rec["variant"]
        w = Workload.build(int(rec["neurons"]), int(rec["layers"]), int(rec["batch"]), rec.get("nnz"),
                           rec.get("density"), rec.get("profile", "mnist"))
        p, mem, secs = int(rec["workers"]), int(rec["memory_mb"]), float(rec["seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: missing or bad field ({exc})") from None
    if variant not in VARIANTS or not (secs > 0 and math.isfinite(secs)) or p < 1:
        raise InputError(f"{where}: needs a known variant ({', '.join(VARIANTS)}), workers >= 1 and seconds > 0")
    return {"run_id": str(rec.get("run_id", i)), "variant": variant, "w": w, "workers": p, "memory_mb": mem,
            "seconds": secs, "method": rec.get("method", "hypergraph"), "arch": rec.get("arch", "x86_64"),
            "storage": rec.get("storage", "standard")}


def _report(target: str, fitted: dict, kept: list, clamped: list, runs: list, skipped: list, **extra: Any) -> dict:
    errors = [abs(r["relative_error"]) for r in runs]
    return {"target": target, "fitted": fitted, "kept": kept, "clamped": clamped, "runs": runs, "skipped": skipped,
            "records": len(runs), "relative_residuals": [r["relative_error"] for r in runs],
            "worst_relative_error": max(errors) if errors else None,
            "median_relative_error": float(np.median(errors)) if errors else None, **extra}


def merge(reports: Sequence[dict]) -> dict:
    """One report for several fits (the compute fit and a totals fit)."""
    if len(reports) == 1:
        return reports[0]
    runs = [r for rep in reports for r in rep["runs"]]
    out = _report("; ".join(r["target"] for r in reports), {k: v for r in reports for k, v in r["fitted"].items()},
                  [k for r in reports for k in r["kept"]], [k for r in reports for k in r["clamped"]], runs,
                  [s for r in reports for s in r["skipped"]])
    out["fits"] = list(reports)
    return out
