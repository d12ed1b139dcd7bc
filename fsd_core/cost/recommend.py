"""`fsd recommend`: the cost-latency frontier of serial, queue and object, and the pick with its rule.

Every choice is a variant at P workers (every P of the range; a geometric sample of
`MAX_GRID` when the range is wider), a Lambda memory size (every size of `MEMORY_LADDER`, or
the one asked for) and an architecture (both, or the one asked for). The *frontier* is the
feasible choices no other choice beats on both cost and latency. The *pick* follows a stated
rule: under `--latency-target S`, the cheapest choice within S seconds; otherwise the cheapest
choice within `factor` (default 2) times the fastest choice's latency, so a cheap but slow
variant does not win by default when a much faster one costs a little more. When nothing is
feasible, `feasible_changes` names the nearest change that is. Every choice is priced under one
serving assumption (`serving.Serving`: the model deployed or staged by the query, the fraction
of warm workers), which the output states ("serving").
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .latency import (
    LAMBDA_FULL_VCPU_MB,
    LAMBDA_MAX_MEMORY_MB,
    LAMBDA_MIN_MEMORY_MB,
    MEMORY_LADDER,
    Estimate,
    Evaluation,
    evaluate,
    memory_needed_mb,
    radixnet_comm,
)
from .params import Params
from .prices import ARCHS, PriceTable, default_table
from .serving import Serving
from .workload import CommProfile, Workload

#: Default rule: the cheapest choice within this factor of the fastest choice's latency.
DEFAULT_FACTOR = 2.0
#: Most worker counts evaluated per variant (every P of a range up to this wide).
MAX_GRID = 2048
#: Most frontier points reported (evenly spread in latency when there are more).
MAX_FRONTIER = 40
#: Seconds the search for a feasible change may take (the answer stays interactive).
HINT_SECONDS = 0.6
#: The most workers a feasible change suggests (Lambda concurrency quotas are of this order).
HINT_MAX_WORKERS = 100_000

CommFor = Callable[[np.ndarray], CommProfile]


def candidate_workers(lo: int, hi: int, limit: int = MAX_GRID) -> list[int]:
    """All of lo..hi if few, else a geometric sample including both ends."""
    if hi - lo + 1 <= limit:
        return list(range(lo, hi + 1))
    return sorted(set(np.unique(np.round(np.geomspace(lo, hi, limit)).astype(int)).tolist()) | {lo, hi})


def workload_from_model(path: Any, batch: int, density: float | None = None, profile: str = "mnist") -> Workload:
    """The workload of a saved model (sizes from its model.json only: no weights are loaded)."""
    from ..model.network import read_manifest

    mf = read_manifest(path)
    nnz = [int(e.get("nnz", 0)) for e in mf["layer_files"]]
    return Workload.build(mf["neurons"], mf["layers"], batch, nnz, density, profile)


def parse_workers(text: str) -> tuple[int, int]:
    """"P" or "A-B" (the `--workers` of `fsd recommend` and the TUI's form) as (A, B)."""
    lo, sep, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise InputError(f"--workers {text!r}: give P or a range A-B of positive integers") from None
    if a < 1 or b < a:
        raise InputError(f"--workers {text!r}: need 1 <= A <= B")
    return a, b


# ----------------------------------------------------------------------------- the grid


class _Grid:
    """Every evaluated choice: per variant, per memory size and architecture, arrays over P."""

    def __init__(self, w: Workload, ps: np.ndarray, params: Params, prices: PriceTable, mems: Sequence[int | None],
                 archs: Sequence[str], storage: str, target: float | None, comm_for: CommFor,
                 serving: Serving) -> None:
        self.evals: list[Evaluation] = []
        comm = comm_for(ps) if ps.size else None
        for variant in ("serial", "queue", "object"):
            if variant != "serial" and comm is None:
                continue
            for mem in mems:
                first = evaluate(variant, w, None if variant == "serial" else comm, params, prices, mem, archs[0],
                                 storage, target, serving)
                self.evals.append(first)
                for arch in archs[1:]:
                    self.evals.append(first.reprice(prices, arch) if params.arm64_speed == 1.0 else
                                      evaluate(variant, w, None if variant == "serial" else comm, params, prices,
                                               mem, arch, storage, target, serving))
        self.variant = np.concatenate([[e.variant] * e.workers.size for e in self.evals])
        self.owner = np.concatenate([np.full(e.workers.size, i) for i, e in enumerate(self.evals)])
        self.pos = np.concatenate([np.arange(e.workers.size) for e in self.evals])
        self.cost = np.concatenate([e.cost for e in self.evals])
        self.seconds = np.concatenate([e.seconds for e in self.evals])
        self.feasible = np.concatenate([e.feasible for e in self.evals])
        self.over = np.concatenate([np.maximum(e.need_mb - e.memory_mb, 0.0) for e in self.evals])
        self.need = np.concatenate([e.need_mb for e in self.evals])

    def pick(self, k: int) -> Estimate:
        return self.evals[int(self.owner[k])].pick(int(self.pos[k]))


def _frontier(grid: _Grid) -> list[int]:
    """Indices of the feasible choices no other feasible choice beats on both cost and latency."""
    ok = np.flatnonzero(grid.feasible)
    if not ok.size:
        return []
    order = ok[np.lexsort((grid.cost[ok], grid.seconds[ok]))]
    out, best = [], math.inf
    for k in order:
        if grid.cost[k] < best * (1 - 1e-12):
            out.append(int(k))
            best = grid.cost[k]
    if len(out) > MAX_FRONTIER:  # keep the ends and points evenly spread in log latency
        lat = np.log(np.maximum(grid.seconds[out], 1e-9))
        marks = np.linspace(lat[0], lat[-1], MAX_FRONTIER)
        keep = sorted({0, len(out) - 1} | {int(np.argmin(np.abs(lat - m))) for m in marks})
        out = [out[i] for i in keep]
    return out


def _rule(grid: _Grid, target: float | None, factor: float) -> tuple[int | None, dict]:
    """The pick and the rule behind it."""
    ok = np.flatnonzero(grid.feasible)
    if target is not None:
        rule = {"name": "latency-target", "target_s": target,
                "text": f"the cheapest choice within the {target:g} s latency target"}
        limit = target
    else:
        fastest = float(grid.seconds[ok].min()) if ok.size else None
        limit = factor * fastest if fastest is not None else None
        rule = {"name": "cheapest-within-factor", "factor": factor, "fastest_s": fastest, "limit_s": limit,
                "text": (f"the cheapest choice within {factor:g}x the fastest choice's latency"
                         + (f" ({fastest:.3g} s -> at most {limit:.3g} s)" if fastest is not None else ""))}
    if not ok.size:
        return None, rule
    within = ok[grid.seconds[ok] <= limit * (1 + 1e-12)]
    k = int(within[np.lexsort((grid.seconds[within], grid.cost[within]))[0]])
    return k, rule


def _variant_rows(grid: _Grid, limit: float | None) -> list[tuple[Estimate, bool]]:
    """Per variant: its cheapest choice within the rule's limit, else its fastest feasible one,
    else its nearest infeasible one; and whether it is within the rule."""
    out = []
    for variant in ("serial", "queue", "object"):
        idx = np.flatnonzero(grid.variant == variant)
        if not idx.size:
            continue
        ok = idx[grid.feasible[idx]]
        if ok.size:
            inside = ok[grid.seconds[ok] <= limit * (1 + 1e-12)] if limit is not None else ok
            if inside.size:
                k = inside[np.lexsort((grid.seconds[inside], grid.cost[inside]))[0]]
                out.append((grid.pick(int(k)), True))
            else:
                k = ok[np.lexsort((grid.cost[ok], grid.seconds[ok]))[0]]
                out.append((grid.pick(int(k)), False))
        else:
            k = idx[np.lexsort((grid.seconds[idx], grid.over[idx]))[0]]
            out.append((grid.pick(int(k)), False))
    return out


def _per_workers(grid: _Grid, ps: np.ndarray) -> dict:
    """Every P of the grid, column by column: per variant its cheapest feasible choice (memory,
    architecture) at that P, else its fastest (marked infeasible)."""
    table: dict[str, Any] = {"workers": ps.tolist()}
    for variant in ("queue", "object"):
        evs = [e for e in grid.evals if e.variant == variant]
        if not evs:
            continue
        cost = np.stack([e.cost for e in evs])
        seconds = np.stack([e.seconds for e in evs])
        feas = np.stack([e.feasible for e in evs])
        masked = np.where(feas, cost, np.inf)
        ok = np.isfinite(masked.min(axis=0))
        k = np.where(ok, np.argmin(masked, axis=0), np.argmin(seconds, axis=0))
        j = np.arange(ps.size)
        archs = np.array([e.arch for e in evs])
        table[variant] = {"cost_usd": cost[k, j].tolist(), "latency_s": seconds[k, j].tolist(),
                          "memory_mb": np.stack([e.memory_mb for e in evs])[k, j].astype(int).tolist(),
                          "arch": archs[k].tolist(), "feasible": ok.tolist()}
    return table


def _crossover(per_workers: dict) -> dict:
    """Smallest P of the range where the cheaper of queue and object changes (each at its
    cheapest feasible memory and architecture at that P; both feasible)."""
    q, o = per_workers.get("queue"), per_workers.get("object")
    pts = [] if q is None else [(p, qc < oc) for p, qc, oc, qf, of in zip(
        per_workers["workers"], q["cost_usd"], o["cost_usd"], q["feasible"], o["feasible"]) if qf and of]
    if not pts:
        return {"workers": None, "below": None, "above": None}
    name = lambda s: "queue" if s else "object"
    for (a, sa), (b, sb) in itertools.pairwise(pts):
        if sa != sb:
            return {"workers": b, "below": name(sa), "above": name(sb), "between": [a, b]}
    return {"workers": None, "below": None, "above": None, "cheaper_everywhere": name(pts[0][1]),
            "range": [pts[0][0], pts[-1][0]]}


def recommend(w: Workload, workers: tuple[int, int] = (2, 256), params: Params | None = None,
              prices: PriceTable | None = None, memory_mb: int | None = None,
              latency_target: float | None = None, method: str = "hypergraph",
              queries_per_hour: float | None = None, burst_size: int = 1, arch: str | None = None,
              comm_for: CommFor | None = None, storage: str = "standard", factor: float = DEFAULT_FACTOR,
              params_source: str = "built-in defaults", serving: Serving | None = None) -> dict:
    """The frontier of serial, queue and object over P, memory and architecture, and the pick
    with its rule; the JSON of `fsd recommend`. `serving`: deployed or staged model, warm
    fraction (default: deployed, every worker cold)."""
    params = params or Params()
    prices = prices or default_table()
    serving = serving or Serving()
    lo, hi = workers
    if lo < 1 or hi < lo:
        raise InputError(f"bad worker range {lo}-{hi}")
    if hi > w.neurons:
        raise InputError(f"workers ({hi}) must not exceed the number of neurons ({w.neurons})")
    if memory_mb is not None and not LAMBDA_MIN_MEMORY_MB <= memory_mb <= LAMBDA_MAX_MEMORY_MB:
        raise InputError(f"memory must be {LAMBDA_MIN_MEMORY_MB}..{LAMBDA_MAX_MEMORY_MB} MB, got {memory_mb}")
    if arch is not None and arch not in ARCHS:
        raise InputError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if not factor >= 1.0:
        raise InputError(f"the latency factor must be at least 1, got {factor}")
    comm_for = comm_for or (lambda ps: radixnet_comm(w, ps, method))
    ps = np.array(candidate_workers(max(lo, 2), hi) if hi >= 2 else [], dtype=int)
    mems = [memory_mb] if memory_mb is not None else list(MEMORY_LADDER)
    archs = [arch] if arch else list(ARCHS)
    grid = _Grid(w, ps, params, prices, mems, archs, storage, latency_target, comm_for, serving)
    if not np.any(grid.need <= LAMBDA_MAX_MEMORY_MB):
        k = int(np.argmin(grid.need))
        worst = grid.pick(k)
        changes = feasible_changes(w, (lo, hi), params, prices, memory_mb, latency_target, method, archs[0], storage,
                                   serving=serving)
        raise InputError(f"batch {w.batch} does not fit: {worst.variant} with {worst.workers} worker(s) needs "
                         f"{worst.memory_needed_mb:,.0f} MB per worker, more than Lambda's {LAMBDA_MAX_MEMORY_MB:,} MB"
                         f"{_changes_text(changes, w.neurons)}")
    front = _frontier(grid)
    k, rule = _rule(grid, latency_target, factor)
    best = grid.pick(k) if k is not None else None
    rows = _variant_rows(grid, rule.get("limit_s") if latency_target is None else latency_target)
    rows.sort(key=lambda r: (not r[0].feasible, not r[1], r[0].cost_usd))
    per_workers = _per_workers(grid, ps)
    crossover = _crossover(per_workers)
    reason = _reason(best, rows, rule, grid, front)
    changes = None
    if best is None:
        changes = feasible_changes(w, (lo, hi), params, prices, memory_mb, latency_target, method, archs[0], storage,
                                   serving=serving)
        reason += _changes_text(changes, w.neurons)
    out = {"recommended": best.variant if best else None,
           "workers": best.workers if best else None,
           "memory_mb": best.memory_mb if best else None,
           "arch": best.arch if best else None,
           "storage": storage,
           "serving": serving.describe(params),
           "cost_usd": best.cost_usd if best else None,
           "latency_s": best.seconds if best else None,
           "reason": reason,
           "rule": rule,
           "pick": best.row() if best else None,
           "rows": [dict(e.row(), within_rule=inside) for e, inside in rows],
           "frontier": [grid.pick(i).row() for i in front],
           "per_workers": per_workers,
           "crossover_workers": crossover["workers"],
           "crossover": crossover,
           "inputs": {"neurons": w.neurons, "layers": w.layers, "batch": w.batch, "workers": [lo, hi],
                      "method": method, "latency_target_s": latency_target, "latency_factor": factor,
                      "memory_mb": memory_mb, "arch": arch or "any", "storage": storage, "profile": w.profile,
                      "region": prices.region, "prices": prices.origin, "params": params_source},
           "params": params.as_dict()}
    if changes is not None:
        out["feasible_changes"] = changes
    if queries_per_hour is not None and best is not None:
        out["sporadic"] = sporadic(best.cost_usd, queries_per_hour, server_baseline(w, params, prices), params,
                                   burst_size)
    return out


def _reason(best: Estimate | None, rows: list[tuple[Estimate, bool]], rule: dict, grid: _Grid,
            front: list[int]) -> str:
    if best is None:
        return "no variant is feasible: " + "; ".join(f"{e.variant}: {e.why_not}" for e, _ in rows)
    arch = f", {best.arch}" + (f", S3 {best.storage}" if best.variant == "object" else "")
    text = (f"{best.variant} with {best.workers} worker(s) at {best.memory_mb:,} MB{arch}: ${best.cost_usd:.4g} per "
            f"query, {best.seconds:.3g} s; rule: {rule['text']}")
    if front:
        fast = grid.pick(front[0])
        if (fast.variant, fast.workers, fast.memory_mb, fast.arch) != (best.variant, best.workers, best.memory_mb,
                                                                        best.arch) and best.cost_usd > 0:
            text += (f"; the fastest, {fast.variant} with {fast.workers} worker(s) at {fast.memory_mb:,} MB, takes "
                     f"{fast.seconds:.3g} s for {fast.cost_usd / best.cost_usd:.2g}x the cost")
        cheap = grid.pick(front[-1])
        if cheap.cost_usd < best.cost_usd:
            text += (f"; the cheapest, {cheap.variant} with {cheap.workers} worker(s), costs "
                     f"{cheap.cost_usd / best.cost_usd:.2g}x as much and takes {cheap.seconds:.3g} s")
    bad = [e for e, _ in rows if not e.feasible]
    if bad:
        text += "; " + "; ".join(f"{e.variant} ruled out ({e.why_not})" for e in bad)
    return text


# ----------------------------------------------------------------------------- infeasible requests


def feasible_changes(w: Workload, workers: tuple[int, int], params: Params, prices: PriceTable,
                     memory_mb: int | None = None, latency_target: float | None = None,
                     method: str = "hypergraph", arch: str = "x86_64", storage: str = "standard",
                     seconds: float = HINT_SECONDS, serving: Serving | None = None) -> list[dict]:
    """When no variant is feasible: the nearest change of one input that makes one feasible.

    Tries, with the analytic RadiX-Net volumes: more workers (the fewest above the range), or
    else fewer (the most below it: fewer workers send fewer messages per layer), a smaller
    batch (the largest that fits the range; the query splits into several) and more memory
    per worker (the least above the current). Each found change is a dict with
    `change`, `flag` (the command line option to use), the variant and its estimate.
    Searches stop after `seconds` and report what they found by then.
    """
    deadline = time.monotonic() + seconds
    lo, hi = workers

    def cheapest(wl: Workload, ps: Sequence[int], mem: int | None, serial: bool = True) -> Estimate | None:
        found: list[Estimate] = []
        variants = (["serial"] if serial else []) + (["queue", "object"] if len(ps) else [])
        comm = radixnet_comm(wl, np.asarray(ps)) if len(ps) else None
        for variant in variants:
            ev = evaluate(variant, wl, comm if variant != "serial" else None, params, prices, mem, arch, storage,
                          latency_target, serving)
            ok = np.flatnonzero(ev.feasible)
            if ok.size:
                found.append(ev.pick(int(ok[np.argmin(ev.cost[ok])])))
        return min(found, key=lambda e: e.cost_usd) if found else None

    def record(change: str, flag: str, e: Estimate, **extra: Any) -> dict:
        return {"change": change, "flag": flag, "variant": e.variant, "workers": e.workers,
                "memory_mb": e.memory_mb, "cost_usd": e.cost_usd, "latency_s": e.seconds, **extra}

    out: list[dict] = []
    in_range = candidate_workers(max(lo, 2), max(hi, 2), 64) if hi >= 2 else []
    # More workers: the first feasible P of a geometric grid above the range, then every P below it.
    top = min(w.neurons, HINT_MAX_WORKERS)
    if hi < top and time.monotonic() < deadline:
        grid = candidate_workers(max(hi + 1, 2), top, 64)
        comm = radixnet_comm(w, np.asarray(grid))
        feas = np.zeros(len(grid), bool)
        for variant in ("queue", "object"):
            feas |= evaluate(variant, w, comm, params, prices, memory_mb, arch, storage, latency_target,
                             serving).feasible
        if feas.any():
            j = int(np.argmax(feas))
            below = list(range(max(grid[j - 1] + 1 if j else hi + 1, 2), grid[j] + 1))[-4096:]
            e = cheapest(w, below, memory_mb, serial=False)
            if e is not None:
                first = min(p for p in below if cheapest(w, [p], memory_mb, serial=False) is not None) \
                    if len(below) <= 64 else e.workers
                e = cheapest(w, [first], memory_mb, serial=False) or e
                out.append(record("workers", f"--workers {min(lo, e.workers)}-{e.workers}", e))
    # Fewer workers: here fewer messages per layer can be faster (the most workers below the range).
    if lo > 1 and time.monotonic() < deadline and not any(c["change"] == "workers" for c in out):
        below = candidate_workers(1, lo - 1, 256)
        best = None
        for p in reversed(below):
            if time.monotonic() > deadline:
                break
            best = cheapest(w, [p] if p >= 2 else [], memory_mb, serial=p == 1)
            if best is not None:
                out.append(record("workers", f"--workers {p}-{hi}" if p >= 2 else "--workers 1", best))
                break
    # A smaller batch: the largest that some variant in the range runs feasibly (bisection).
    if w.batch > 1 and time.monotonic() < deadline:
        e1 = cheapest(w.with_batch(1), in_range, memory_mb)
        if e1 is not None:
            good, bad, best = 1, w.batch, e1
            while bad - good > 1 and time.monotonic() < deadline:
                m = (good + bad) // 2
                em = cheapest(w.with_batch(m), in_range, memory_mb)
                good, bad, best = (m, bad, em) if em is not None else (good, m, best)
            out.append(record("batch", f"--batch {good}", best, batch=good, queries=-(-w.batch // good)))
    # More memory per worker (more memory is also more CPU, up to Lambda's 6 vCPUs).
    floor = memory_mb if memory_mb is not None else LAMBDA_FULL_VCPU_MB
    for mem in (m for m in MEMORY_LADDER if m > floor):
        if time.monotonic() > deadline:
            break
        e = cheapest(w, in_range, mem)
        if e is not None:
            out.append(record("memory", f"--memory {mem}", e))
            break
    return out


def _changes_text(changes: Sequence[dict], neurons: int) -> str:
    """The feasible changes as the end of a reason: '; nearest feasible: --workers 8-96 (...) or ...'."""
    if not changes:
        return (f"; no single change is feasible (more workers up to {min(neurons, HINT_MAX_WORKERS):,}, "
                f"a smaller batch, or memory up to {LAMBDA_MAX_MEMORY_MB:,} MB)")
    parts = []
    for c in changes:
        what = f"{c['variant']} with {c['workers']} worker(s) at {c['memory_mb']:,} MB: ${c['cost_usd']:.4g}/query, " \
               f"{c['latency_s']:,.0f} s"
        if c["change"] == "batch" and c["queries"] > 1:
            what += f"; the batch as {c['queries']:,} queries"
        parts.append(f"{c['flag']} ({what})")
    return "; nearest feasible: " + ", or ".join(parts)


# ----------------------------------------------------------------------------- charts, servers, sporadic load


def cost_curve(w: Workload, lo: int, hi: int, points: int = 48, method: str = "hypergraph",
               latency_target: float | None = None, params: Params | None = None,
               prices: PriceTable | None = None) -> dict[str, list[tuple[int, float]]]:
    """Cost per query of queue and object against the worker count (for charts)."""
    ps = np.array(candidate_workers(lo, hi, points))
    comm = radixnet_comm(w, ps, method)
    return {variant: list(zip(ps.tolist(), evaluate(variant, w, comm, params, prices,
                                                    latency_target=latency_target).cost.tolist()))
            for variant in ("queue", "object")}


def server_baseline(w: Workload, params: Params, prices: PriceTable) -> dict | None:
    """The cheapest EC2 instance that holds the whole model, and its seconds per query."""
    need_gib = (float(memory_needed_mb(w, 1, params)) + 1024) / 1024  # + OS
    fits = [i for i in prices.instances.values() if i.memory_gib >= need_gib]
    if not fits:
        return None
    inst = min(fits, key=lambda i: i.usd_per_hour)
    sw, dw = w.work()
    speed = 1.0 + (inst.vcpu - 1) * params.server_parallel_efficiency
    query_s = float(w.rows.total(sw / params.sparse_madds_per_s + dw / params.dense_madds_per_s)) / speed \
        + w.layers * params.layer_overhead_s
    load_s = w.total_nnz * params.weight_bytes_per_nnz / params.unpack_bytes_per_s \
        + w.total_nnz * params.shard_bytes_per_nnz / params.bandwidth_bytes_per_s
    return {"instance": inst.name, "vcpu": inst.vcpu, "memory_gib": inst.memory_gib,
            "usd_per_hour": inst.usd_per_hour, "query_s": query_s, "load_s": load_s}


def sporadic(cost_per_query: float, queries_per_hour: float, server: dict | None, params: Params,
             burst_size: int = 1) -> dict:
    """Cost per day of a serverless variant vs an always-on and a job-scoped server.

    Queries arrive `queries_per_hour` on average, in bursts of `burst_size` separated by idle
    gaps. The job-scoped server boots per burst, loads the model, runs the burst and stops,
    billed per second with a 60 s minimum.
    """
    if queries_per_hour < 0 or burst_size < 1:
        raise InputError("queries per hour must be >= 0 and burst size >= 1")
    per_day = queries_per_hour * 24.0
    out: dict[str, Any] = {"queries_per_hour": queries_per_hour, "burst_size": burst_size,
                           "serverless_usd_per_day": per_day * cost_per_query}
    if server is None:
        out.update(server=None, note="no instance in the price table holds the model")
        return out
    busy = per_day * server["query_s"] / 86400.0  # fraction of one server's day
    n_always = max(1, math.ceil(busy))
    billed = max(params.server_min_billed_s, params.server_boot_s + server["load_s"] + burst_size * server["query_s"])
    job_per_query = billed * server["usd_per_hour"] / 3600.0 / burst_size
    out.update(server=server, always_on_usd_per_day=n_always * 24.0 * server["usd_per_hour"],
               job_scoped_usd_per_day=per_day * job_per_query, job_scoped_usd_per_query=job_per_query,
               job_scoped_latency_s=params.server_boot_s + server["load_s"] + server["query_s"])
    out["break_even_queries_per_hour_vs_always_on"] = (
        server["usd_per_hour"] / cost_per_query if cost_per_query > 0 else None)
    costs = {"serverless": out["serverless_usd_per_day"], "always_on": out["always_on_usd_per_day"],
             "job_scoped": out["job_scoped_usd_per_day"]}
    out["cheapest"] = min(costs, key=costs.get)
    return out


__all__ = ["DEFAULT_FACTOR", "HINT_SECONDS", "candidate_workers", "cost_curve", "feasible_changes",
           "parse_workers", "recommend", "server_baseline", "sporadic", "workload_from_model"]
