"""The cost model's public names in one place (the modules beside this one hold the code).

- `prices`: the dated, sourced price table; `pricing`: API names -> dollars, GB-seconds, INIT,
  S3 Express bytes; `counts`: exact requests of a concrete run from its frames;
- `params`: every non-price number with its source; `workload`: a query's layers, activation
  profile and communication volumes; `latency`: time, requests and dollars of this system for
  many worker counts at once;
- `recommend`: the cost-latency frontier and the pick with its rule; `calibrate`: fits to
  measured runs;
- `serving`: a model's one-time deploy cost, a run's workers priced cold and warm (INIT billed
  for cold starts), and the serving assumption of the predictions.

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
    Launch,
    Staging,
    choose_memory,
    estimate,
    evaluate,
    launch_rounds,
    launch_times,
    load_seconds,
    memory_needed_mb,
    radixnet_comm,
    staging,
)
from .params import KNOBS, SOURCES, Params, load_params, stored_params_path
from .pricing import api_price, cost_breakdown, dollars, lambda_gb_seconds, requests_usd
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
from .serving import (
    CHECK_API,
    DeployCost,
    Serving,
    StartGroup,
    WorkerBill,
    WorkerCost,
    deploy_cost,
    price_workers,
    worker_bill,
)
from .workload import ActivationProfile, CommProfile, Layers, Workload, measure_profile

__all__ = [
    "CHECK_API", "DEFAULT_ATTR_BYTES", "DEFAULT_FACTOR", "FRAME_HEADER_BYTES", "HINT_MAX_WORKERS", "HINT_SECONDS",
    "KNOBS", "LAMBDA_FULL_VCPU_MB", "LAMBDA_MAX_MEMORY_MB", "LAMBDA_MAX_SECONDS", "LAMBDA_MIN_MEMORY_MB",
    "MEMORY_LADDER", "S3_KEYS_PER_CALL", "SOURCES", "SQS_MAX_MESSAGES", "VARIANTS", "ActivationProfile",
    "CommProfile", "DeployCost", "Estimate", "Evaluation", "Frame", "Launch", "Layers", "Params", "RequestCounts",
    "Serving", "Staging", "StartGroup", "WorkerBill", "WorkerCost", "Workload", "api_price", "candidate_workers",
    "choose_memory", "cost_breakdown", "cost_curve", "deploy_cost", "dollars", "estimate", "evaluate",
    "feasible_changes", "fit_compute", "fit_totals", "lambda_gb_seconds", "launch_rounds", "launch_times",
    "load_params", "load_seconds", "measure_profile", "memory_needed_mb", "parse_workers", "predict_requests",
    "price_workers", "radixnet_comm", "recommend", "requests_usd", "server_baseline", "sporadic", "staging",
    "stored_params_path", "worker_bill", "workload_from_model",
]
