"""The cost model's public names in one place (the modules beside this one hold the code).

- `prices`: the dated, sourced price table; `pricing`: API names -> dollars, GB-seconds, INIT,
  S3 Express bytes; `counts`: exact requests of a concrete run from its frames;
- `params`: every non-price number with its source; `workload`: a query's layers, activation
  profile and communication volumes; `latency`: time, requests and dollars of this system for
  many worker counts at once;
- `recommend`: the cost-latency frontier and the pick with its rule; `calibrate`: fits to
  measured runs.

docs/cost-model.md derives every formula and lists every parameter's source.
"""

from __future__ import annotations

from .calibrate import fit_compute, fit_totals
from .counts import DEFAULT_ATTR_BYTES, VARIANTS, Frame, RequestCounts, predict_requests
from .latency import (
    FRAME_HEADER_BYTES,
    LAMBDA_FULL_VCPU_MB,
    LAMBDA_MAX_MEMORY_MB,
    LAMBDA_MAX_SECONDS,
    LAMBDA_MIN_MEMORY_MB,
    MEMORY_LADDER,
    S3_KEYS_PER_CALL,
    SQS_MAX_MESSAGES,
    Estimate,
    Evaluation,
    choose_memory,
    estimate,
    evaluate,
    launch_rounds,
    memory_needed_mb,
    radixnet_comm,
)
from .params import KNOBS, SOURCES, Params, load_params, stored_params_path
from .pricing import api_price, cost_breakdown, dollars, lambda_gb_seconds
from .recommend import (
    DEFAULT_FACTOR,
    HINT_MAX_WORKERS,
    HINT_SECONDS,
    candidate_workers,
    cost_curve,
    feasible_changes,
    parse_workers,
    recommend,
    server_baseline,
    sporadic,
    workload_from_model,
)
from .workload import ActivationProfile, CommProfile, Layers, Workload, measure_profile

__all__ = [
    "DEFAULT_ATTR_BYTES", "DEFAULT_FACTOR", "FRAME_HEADER_BYTES", "HINT_MAX_WORKERS", "HINT_SECONDS", "KNOBS",
    "LAMBDA_FULL_VCPU_MB", "LAMBDA_MAX_MEMORY_MB", "LAMBDA_MAX_SECONDS", "LAMBDA_MIN_MEMORY_MB", "MEMORY_LADDER",
    "S3_KEYS_PER_CALL", "SOURCES", "SQS_MAX_MESSAGES", "VARIANTS", "ActivationProfile", "CommProfile", "Estimate",
    "Evaluation", "Frame", "Layers", "Params", "RequestCounts", "Workload", "api_price", "candidate_workers",
    "choose_memory", "cost_breakdown", "cost_curve", "dollars", "estimate", "evaluate", "feasible_changes",
    "fit_compute", "fit_totals", "lambda_gb_seconds", "launch_rounds", "load_params", "measure_profile",
    "memory_needed_mb", "parse_workers", "predict_requests", "radixnet_comm", "recommend", "server_baseline",
    "sporadic", "stored_params_path", "workload_from_model",
]
