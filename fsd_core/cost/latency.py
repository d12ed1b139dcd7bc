"""Latency, requests and dollars of one query of this system, for many worker counts at once.

Per layer, each worker (the layer loop of `engine/worker.py`):

1. encodes its messages (`encode_bytes_per_s`) and starts sending them: the queue channel
   publishes `PublishBatch` calls from `publish_threads` threads, the object channel PUTs one
   object per message from `object_threads` threads;
2. computes its *interior* columns (those fed only by rows it holds) while the messages travel;
3. receives: SNS -> SQS delivery (the slowest of its messages: `queue_hop_s` for one, towards
   `queue_hop_p99_s` for many), then the receiver thread's ReceiveMessage +
   DeleteMessageBatch cycles; or GETs of the expected keys, retried while missing
   (`object_poll_s`); plus the bytes at the function's bandwidth; and decodes;
4. computes its *boundary* columns and finishes the layer.

So a layer takes encode + max(interior compute, receiving) + boundary compute, where
receiving ends when the last block is decoded (blocks are decoded as they arrive: after the
last arrival plus one block's decoding, or after the first arrival plus all the decoding,
whichever is later), with compute = `layer_overhead_s` + the layer's multiply-adds over the worker's
vCPUs at the measured sparse/dense kernel rates (`workload.Workload.work`). Before the
first layer: the launch tree (worker i starts workers i*b+1..i*b+b; each round is b Invoke
calls, a cold start and the INIT phase: runtime start and imports) and the shard download;
a warm worker (`serving.Serving`: its environment served an earlier query) skips the cold start,
INIT and the download, and a query on a model that is not deployed first uploads the shards.
After the last: the gather of every worker's last columns at worker 0.

Counts come from the same messages and bytes: the queue's publishes and their 64 KiB billed
chunks (the closed form of `aws.limits.pack_batches` for equal frames), receives and deletes,
the receiver's empty long polls while a worker computes; the object channel's PUTs, GETs
(misses included) and clean-up. Workers are billed from their handler's start to the end of
the query, plus the INIT phase of cold workers (billed since 2025-08-01).

Everything is vectorised over the worker counts (and evaluated per memory size), so
`fsd recommend` prices every P of a range in milliseconds. docs/cost-model.md has the formulas
and every parameter's source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..aws.limits import (
    BILLING_CHUNK,
    LAMBDA_MAX_SECONDS,
    SNS_MAX_BATCH_ENTRIES,
    SNS_MAX_PAYLOAD,
    max_frame_bytes_for_sns,
)
from ..errors import InputError
from .counts import DEFAULT_ATTR_BYTES, VARIANTS, RequestCounts
from .params import Params
from .prices import ARCHS, STORAGES, PriceTable, default_table
from .pricing import GB, api_price
from .serving import Serving
from .workload import DENSE_THRESHOLD, CommProfile, Workload

#: Bytes of a frame's fixed header (channels/frames.py HEADER.size; a test keeps them equal:
#: the cost model imports no channel).
FRAME_HEADER_BYTES = 24
LAMBDA_MAX_MEMORY_MB = 10240
LAMBDA_MIN_MEMORY_MB = 128
#: Lambda gives one full vCPU at 1,769 MB and CPU in proportion to memory, up to 6 vCPUs
#: (AWS Lambda developer guide, "Configuring Lambda function memory").
LAMBDA_FULL_VCPU_MB = 1769
LAMBDA_MAX_VCPUS = 6.0
MEMORY_LADDER = (128, 256, 512, 1024, 1769, 2048, 3008, 4096, 5120, 6144, 8192, 10240)
#: SQS returns at most 10 messages per ReceiveMessage; DeleteMessageBatch takes 10 ids.
SQS_MAX_MESSAGES = 10
#: S3 ListObjectsV2 / DeleteObjects handle up to 1,000 keys per call.
S3_KEYS_PER_CALL = 1000
_MAX_FRAME = max_frame_bytes_for_sns(DEFAULT_ATTR_BYTES)


def vcpus(memory_mb: np.ndarray | float) -> np.ndarray:
    return np.minimum(np.asarray(memory_mb, dtype=float) / LAMBDA_FULL_VCPU_MB, LAMBDA_MAX_VCPUS)


def launch_rounds(workers: int, branching: int) -> int:
    rounds, started, width = 0, 1, 1
    while started < workers:
        width *= branching
        started += width
        rounds += 1
    return rounds


@dataclass(frozen=True)
class Launch:
    """The launch tree's times per worker count (arrays): worker 0's handler starts at `first`
    after the client's Invoke, the last worker's at `seconds` (`seconds_p99` with p99 cold
    starts); `start_sum` sums every worker's handler start after worker 0's (time it is not billed)."""

    first: np.ndarray
    seconds: np.ndarray
    seconds_p99: np.ndarray
    start_sum: np.ndarray


def launch_times(ps: np.ndarray, params: Params, cold: float = 1.0) -> Launch:
    """Worker i invokes workers i*b+1..i*b+b one after another; each starts after its Invoke and,
    when cold (fraction `cold` of the workers), a cold start and its INIT. A round waits for
    its slowest worker: it pays a cold start with the chance that any of its workers is cold
    (1 - (1 - cold)^n for n workers; exact for all cold or all warm)."""
    b = max(params.branching, 1)
    start = params.cold_start_s + params.runtime_init_s + params.import_s
    start_p99 = params.cold_start_p99_s + params.runtime_init_s + params.import_s
    zero = np.zeros(ps.shape)
    t, t99, start_sum, started = zero, zero, zero, np.ones(ps.shape)
    width, d = 1.0, 0
    while np.any(started < ps):
        d += 1
        width *= b
        new = np.clip(ps - started, 0.0, width)
        start_sum = start_sum + new * (t + b * params.invoke_s + cold * start)
        some_cold = np.where(new > 0, 1.0 - (1.0 - cold) ** new, 0.0)
        t = t + (new > 0) * (b * params.invoke_s + some_cold * start)
        t99 = t99 + (new > 0) * (b * params.invoke_s + some_cold * start_p99)
        started = started + new
        if b <= 1 and d > 10**6:
            break
    first = params.invoke_s + cold * start
    return Launch(first, first + t, params.invoke_s + cold * start_p99 + t99, start_sum)


def load_seconds(w: Workload, ps: np.ndarray, params: Params, cold: float = 1.0) -> np.ndarray:
    """Until the slowest worker holds its shard and inputs: one request latency (its GETs), and
    when some worker is cold (1 - (1 - cold)^P) a shard's bytes at the bandwidth, unpacked."""
    nnz_w = w.total_nnz / ps
    shard = nnz_w * params.shard_bytes_per_nnz / params.bandwidth_bytes_per_s \
        + nnz_w * params.weight_bytes_per_nnz / params.unpack_bytes_per_s
    return params.s3_request_s + (1.0 - (1.0 - cold) ** ps) * shard


@dataclass(frozen=True)
class Staging:
    """The model's shards a query uploads before its launch, per worker count: the coordinator's
    seconds, its PutObject requests and the bytes (zero for a deployed model)."""

    seconds: np.ndarray
    puts: np.ndarray
    bytes: np.ndarray


def staging(w: Workload, ps: np.ndarray, params: Params, deployed: bool) -> Staging:
    """Nothing when the model is deployed; else one PUT per worker's shard, one after another
    (the coordinator stages in a loop), and all the shards' bytes at the bandwidth."""
    if deployed:
        zero = np.zeros(ps.shape)
        return Staging(zero, zero, zero)
    total = np.full(ps.shape, w.total_nnz * params.shard_bytes_per_nnz)
    return Staging(ps * params.s3_request_s + total / params.bandwidth_bytes_per_s, ps.astype(float), total)


def choose_memory(needed_mb: float | np.ndarray, requested: int | None = None) -> np.ndarray:
    """The requested memory, or the smallest ladder size >= max(need, one full vCPU)."""
    need = np.asarray(needed_mb, dtype=float)
    if requested is not None:
        return np.full(need.shape, float(requested))
    ladder = np.array(MEMORY_LADDER, dtype=float)
    target = np.maximum(need, LAMBDA_FULL_VCPU_MB)
    k = np.searchsorted(ladder, target)
    return ladder[np.minimum(k, ladder.size - 1)]


def memory_needed_mb(w: Workload, workers: np.ndarray | int, params: Params) -> np.ndarray:
    """Peak MB of one worker: its weight shard, its activations (dense float32 blocks of its
    neurons, or sparse below the dense threshold), and the runtime."""
    p = np.asarray(workers, dtype=float)
    r = w.rows
    per_row = np.where(r.density > DENSE_THRESHOLD, 4.0, r.density * 8.0)
    acts = float(np.max(r.rows * per_row, initial=0.0)) * w.neurons * params.activation_copies
    weights = w.total_nnz * params.weight_bytes_per_nnz + (w.neurons + p) * w.layers * 4.0
    return (weights + acts) / p / 2**20 + params.runtime_mb


# ----------------------------------------------------------------------------- one evaluation


@dataclass
class Estimate:
    """One priced configuration: a variant at P workers, memory, architecture and storage."""

    variant: str
    workers: int
    memory_mb: int
    counts: RequestCounts
    seconds: float
    gb_seconds: float
    cost_usd: float
    breakdown: dict[str, float]
    memory_needed_mb: float
    feasible: bool = True
    why_not: str = ""
    time_terms: dict[str, float] = field(default_factory=dict)
    arch: str = "x86_64"
    storage: str = "standard"
    seconds_p99: float = 0.0
    staged_bytes: float = 0.0
    stage_requests: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict:
        return {"variant": self.variant, "workers": self.workers, "memory_mb": self.memory_mb, "arch": self.arch,
                "storage": self.storage if self.variant == "object" else None,
                "cost_usd": self.cost_usd, "latency_s": self.seconds, "latency_p99_s": self.seconds_p99,
                "feasible": self.feasible, "why_not": self.why_not or None, "gb_seconds": self.gb_seconds,
                "memory_needed_mb": round(self.memory_needed_mb, 1),
                "requests": self.counts.requests, "billed_requests": self.counts.billed,
                "bytes_sent": self.counts.bytes_sent, "messages": self.counts.messages,
                "breakdown": self.breakdown, "time_terms": self.time_terms,
                "staged_bytes": self.staged_bytes, "stage_requests": self.stage_requests}


@dataclass
class Evaluation:
    """A variant at many worker counts (arrays over `workers`), at one memory policy and
    architecture: what `estimate` and `recommend` pick rows from."""

    variant: str
    workers: np.ndarray
    memory_mb: np.ndarray
    arch: str
    storage: str
    seconds: np.ndarray
    seconds_p99: np.ndarray
    handler_s: np.ndarray  # worker 0's billed duration (the 900 s limit)
    gb_seconds: np.ndarray
    need_mb: np.ndarray
    requests: dict[str, np.ndarray]
    billed: dict[str, np.ndarray]
    bytes_sent: np.ndarray
    messages: np.ndarray
    breakdown: dict[str, np.ndarray]
    cost: np.ndarray
    terms: dict[str, np.ndarray]
    latency_target: float | None = None
    staged_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stage_requests: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def feasible(self) -> np.ndarray:
        ok = (self.need_mb <= self.memory_mb) & (self.handler_s <= LAMBDA_MAX_SECONDS)
        if self.latency_target is not None:
            ok &= self.seconds <= self.latency_target
        return ok

    def why_not(self, i: int) -> str:
        reasons = []
        need, mem = float(self.need_mb[i]), int(self.memory_mb[i])
        if need > mem:
            reasons.append(f"needs {need:,.0f} MB per worker > {mem:,} MB"
                           + (" (Lambda's maximum)" if mem == LAMBDA_MAX_MEMORY_MB else ""))
        if self.handler_s[i] > LAMBDA_MAX_SECONDS:
            reasons.append(f"runs {self.handler_s[i]:,.0f} s > Lambda's {LAMBDA_MAX_SECONDS:.0f} s limit")
        if self.latency_target is not None and self.seconds[i] > self.latency_target:
            reasons.append(f"latency {self.seconds[i]:,.1f} s > target {self.latency_target:g} s")
        return "; ".join(reasons)

    def pick(self, i: int) -> Estimate:
        counts = RequestCounts({k: round(float(v[i])) for k, v in self.requests.items()},
                               {k: round(float(v[i])) for k, v in self.billed.items()},
                               round(float(self.bytes_sent[i])), round(float(self.messages[i])))
        why = self.why_not(i)
        return Estimate(self.variant, int(self.workers[i]), int(self.memory_mb[i]), counts, float(self.seconds[i]),
                        float(self.gb_seconds[i]), float(self.cost[i]),
                        {k: float(v[i]) for k, v in self.breakdown.items()}, float(self.need_mb[i]), not why, why,
                        {k: float(v[i]) for k, v in self.terms.items()}, self.arch, self.storage,
                        float(self.seconds_p99[i]), float(self.staged_bytes[i]) if self.staged_bytes.size else 0.0,
                        {k: round(float(v[i])) for k, v in self.stage_requests.items()})

    def reprice(self, prices: PriceTable, arch: str) -> Evaluation:
        """The same run on another architecture (Lambda time at its price, compute at its speed
        only through `evaluate`: callers re-evaluate when `arm64_speed` != 1)."""
        f = prices.lambda_gb_second(arch) / prices.lambda_gb_second(self.arch)
        breakdown = dict(self.breakdown)
        for k in ("lambda_compute", "lambda_init"):
            if k in breakdown:
                breakdown[k] = breakdown[k] * f
        cost = sum(breakdown.values())
        return Evaluation(**{**self.__dict__, "arch": arch, "breakdown": breakdown, "cost": cost})


def evaluate(variant: str, w: Workload, comm: CommProfile | None, params: Params | None = None,
             prices: PriceTable | None = None, memory_mb: int | Sequence[float] | np.ndarray | None = None,
             arch: str = "x86_64", storage: str = "standard", latency_target: float | None = None,
             serving: Serving | None = None) -> Evaluation:
    """Latency, requests and dollars of `variant` for every worker count of `comm` (serial: one).

    `memory_mb`: one size for all, one per worker count, or None (the smallest ladder size
    that fits and gives a full vCPU). `serving`: whether the model is deployed and how many
    workers start warm (default: deployed, `Params.cold_fraction` cold: the figures before serving).
    """
    params = params or Params()
    serving = serving or Serving()
    cold = serving.cold_fraction(params)
    prices = prices or default_table()
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if arch not in ARCHS:
        raise InputError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if storage not in STORAGES:
        raise InputError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")
    if storage == "express" and variant == "object" and not prices.has("s3express_put"):
        raise InputError(f"the price table ({prices.origin}) has no S3 Express One Zone prices for {prices.region}")
    if variant != "serial" and comm is None:
        raise InputError(f"the {variant} variant needs a communication profile")
    ps = np.array([1.0]) if variant == "serial" else comm.workers.astype(float)
    need = memory_needed_mb(w, ps, params)
    if memory_mb is None:
        mem = choose_memory(need)
    else:
        mem = np.broadcast_to(np.asarray(memory_mb, dtype=float), ps.shape).copy()
    speed = _speed(variant, mem, params, arch)
    r = w.rows
    sw, dw = w.work()
    work_s = sw / params.sparse_madds_per_s + dw / params.dense_madds_per_s  # (k,) one vCPU, all workers
    imb = 1.0 if variant == "serial" else params.imbalance
    compute = params.layer_overhead_s + imb * work_s[None, :] / (ps * speed)[:, None]  # (n, k)
    if variant != "serial" and params.piece_overhead_s:
        compute = compute + params.piece_overhead_s * comm.pairs / ps[:, None]
    counts: dict[str, list[np.ndarray]] = {}

    def add(api: str, req: np.ndarray, billed: np.ndarray | None = None) -> None:
        counts[api] = [np.asarray(req, dtype=float), np.asarray(req if billed is None else billed, dtype=float)]

    add("lambda:Invoke", ps)
    zero = np.zeros(ps.shape)
    bytes_sent, messages, up = zero, zero, zero
    if variant == "serial":
        layer = compute
        layer_p99 = compute
        gather = zero
    else:
        vol, pairs = comm.volume_rows, comm.pairs
        b = float(w.batch)
        exact = (comm.rounds or {}).get(variant)
        if exact is not None:
            if exact["bytes"].shape[1] != r.index.size + 1:
                raise InputError("exact frames need one row per layer (Workload.build(grouped=False))")
            byts, g_bytes = exact["bytes"][:, :-1], exact["bytes"][:, -1]
        else:
            byts = wire_bytes(params, pairs, vol * r.rows * (1.0 - r.full), r.density, r.changed, b)
            g_cells = w.neurons * (ps - 1.0) / ps * r.out_rows * (1.0 - r.out_full)
            g_bytes = wire_bytes(params, ps - 1.0, g_cells, r.out_density, 1.0, b)
        bytes_sent = r.weight @ byts.T + g_bytes
        f_int = np.zeros_like(vol) if comm.interior is None else np.clip(comm.interior, 0.0, 1.0)
        per_worker = byts / ps[:, None]
        encode = per_worker / params.encode_bytes_per_s
        decode = per_worker / params.decode_bytes_per_s
        if variant == "queue":
            first, last, last_p99, gather, msgs = _queue(params, w, ps, pairs, byts, g_bytes, add, exact)
        else:
            first, last, last_p99, gather, msgs = _object(params, w, ps, pairs, byts, g_bytes, storage, add, exact)
            up = bytes_sent
        messages = msgs
        gather = gather + g_bytes / params.encode_bytes_per_s / np.maximum(ps - 1.0, 1.0) \
            + g_bytes / params.decode_bytes_per_s
        # a worker decodes each block as it arrives: its receiving ends when the last block is
        # decoded, or when decoding them all from the first arrival on ends, whichever is later
        received = np.maximum(pairs / ps[:, None], 1.0)
        done = np.where(pairs > 0, np.maximum(first + decode, last + decode / received), 0.0)
        done_p99 = np.where(pairs > 0, np.maximum(first + decode, last_p99 + decode / received), 0.0)
        overlap = f_int * compute
        rest = (1.0 - f_int) * compute + encode
        layer = np.maximum(overlap, done) + rest
        layer_p99 = np.maximum(overlap, done_p99) + rest
    # staging (a model not deployed), launch tree, shard load, layers, gather
    stage = staging(w, ps, params, serving.deployed)
    launch = launch_times(ps, params, cold)
    load = load_seconds(w, ps, params, cold)
    body = layer @ r.weight + gather
    body_p99 = layer_p99 @ r.weight + gather
    seconds = stage.seconds + launch.seconds + load + body
    seconds_p99 = stage.seconds + launch.seconds_p99 + load + body_p99
    handler = seconds - stage.seconds - launch.first  # worker 0, from its handler's start
    handler_sum = ps * handler - launch.start_sum
    if variant == "queue":  # the receiver thread's empty long polls while its worker computes
        idle = ps * params.idle_polls_per_s * handler
        req, billed = counts["sqs:ReceiveMessage"]
        counts["sqs:ReceiveMessage"] = [req + idle, billed + idle]
    init_s = ps * cold * (params.runtime_init_s + params.import_s)
    gb = mem / 1024.0
    gbs = handler_sum * gb
    gbp = prices.lambda_gb_second(arch)
    breakdown = {"lambda_compute": gbs * gbp}
    if prices.init_billed:
        breakdown["lambda_init"] = init_s * gb * gbp
    for api, (req, billed) in counts.items():
        breakdown[api] = billed * api_price(api, prices, storage)
    if variant == "object" and storage == "express":
        breakdown["s3express:upload_gb"] = up / GB * prices["s3express_upload_gb"]
        breakdown["s3express:retrieve_gb"] = up / GB * prices["s3express_retrieve_gb"]
    stage_requests = {}
    if not serving.deployed:  # the stage is the deployment's bucket: S3 Standard whatever the channel's storage
        stage_requests["s3:PutObject"] = stage.puts
        breakdown["stage:s3:PutObject"] = stage.puts * api_price("s3:PutObject", prices)
    cost = sum(breakdown.values())
    compute_total = compute @ r.weight
    terms = {"stage": stage.seconds, "launch": launch.seconds, "load": load, "compute": compute_total,
             "communication": body - gather - compute_total, "gather": gather}
    return Evaluation(variant, ps.astype(int), mem, arch, storage, seconds, seconds_p99, handler, gbs, need,
                      {k: v[0] for k, v in counts.items()}, {k: v[1] for k, v in counts.items()}, bytes_sent,
                      messages, breakdown, cost, terms, latency_target, stage.bytes, stage_requests)


def slowest_of(m: np.ndarray, p50: float, p99: float) -> np.ndarray:
    """The wait for the slowest of `m` messages whose delivery times are lognormal through the
    published p50 and p99: its quantile m/(m+1) (p50 for one message, near p99 for a hundred).
    Abramowitz & Stegun 26.2.23 for the normal quantile (error < 4.5e-4)."""
    if p99 <= p50 or p50 <= 0:
        return np.full(np.shape(m), p50)
    t = np.sqrt(2.0 * np.log(np.asarray(m, dtype=float) + 1.0))
    z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t**3)
    return p50 * np.exp(np.maximum(z, 0.0) * np.log(p99 / p50) / 2.326348)


def wire_bytes(params: Params, messages, cells, density, changed, batch: float):
    """Bytes of a round's messages: a fixed part per message; per sent cell (row x neuron) of a
    non-saturated row, `dense_bytes_per_cell` when the rows travel as dense blocks (density above
    the dense threshold: bitmap and values) plus `bytes_per_nnz` per stored entry; and the
    batch's row map, in the messages of a layer where it changed."""
    dense = np.asarray(density) > DENSE_THRESHOLD
    return (messages * params.message_overhead_bytes + cells * np.where(dense, params.dense_bytes_per_cell, 0.0)
            + cells * density * params.bytes_per_nnz + messages * changed * batch * params.rowmap_bytes_per_input)


def _speed(variant: str, mem: np.ndarray, params: Params, arch: str) -> np.ndarray:
    """Kernel speed in vCPUs: workers run one thread; the serial kernel one per vCPU."""
    v = vcpus(mem)
    arm = params.arm64_speed if arch == "arm64" else 1.0
    if variant == "serial":
        return np.where(v <= 1.0, v, 1.0 + (v - 1.0) * params.thread_efficiency) * arm
    return np.minimum(v, 1.0) * arm


def _chunk(k: np.ndarray, wsize: np.ndarray) -> np.ndarray:
    return np.maximum(1.0, np.ceil(k * wsize / BILLING_CHUNK))


def _queue(params: Params, w: Workload, ps: np.ndarray, pairs: np.ndarray, byts: np.ndarray, g_bytes: np.ndarray,
           add, exact: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SNS -> SQS: counts (via `add`); per layer when a worker's first and last blocks arrive
    (the last also with p99 hops); the gather's time; messages."""
    p = ps[:, None]
    senders = np.minimum(pairs, p)
    if exact is not None:
        frames, batches, billed_pub = exact["frames"][:, :-1], exact["batches"][:, :-1], exact["billed"][:, :-1]
        wsize = 4.0 * np.ceil(np.divide(byts, frames, out=np.zeros_like(byts), where=frames > 0) / 3.0) \
            + DEFAULT_ATTR_BYTES
    else:
        per_msg = np.divide(byts, pairs, out=np.zeros_like(byts), where=pairs > 0)
        nframes = np.maximum(np.ceil(per_msg / _MAX_FRAME), 1.0)
        frames = pairs * nframes
        wsize = 4.0 * np.ceil(per_msg / nframes / 3.0) + DEFAULT_ATTR_BYTES
        fit = np.minimum(SNS_MAX_BATCH_ENTRIES, np.floor(SNS_MAX_PAYLOAD / np.maximum(wsize, 1.0)))
        per_sender = np.ceil(np.divide(frames, senders, out=np.zeros_like(frames), where=senders > 0))
        full, rem = np.floor(per_sender / fit), np.mod(per_sender, fit)
        batches = senders * (full + (rem > 0))
        billed_pub = senders * (full * _chunk(fit, wsize) + (rem > 0) * _chunk(rem, wsize))
    mpr = min(max(params.msgs_per_receive, 1.0), SQS_MAX_MESSAGES)
    nonempty = np.ceil(frames / mpr)
    empty = p * params.empty_polls_per_worker_layer * (pairs > 0)
    # the gather: P-1 senders, one message each, all to worker 0 (10 per receive)
    g_per = np.divide(g_bytes, ps - 1.0, out=np.zeros_like(g_bytes), where=ps > 1)
    g_nframes = np.maximum(np.ceil(g_per / _MAX_FRAME), 1.0)
    g_wsize = 4.0 * np.ceil(g_per / g_nframes / 3.0) + DEFAULT_ATTR_BYTES
    g_frames = (ps - 1.0) * g_nframes
    g_fit = np.minimum(SNS_MAX_BATCH_ENTRIES, np.floor(SNS_MAX_PAYLOAD / np.maximum(g_wsize, 1.0)))
    g_full, g_rem = np.floor(g_nframes / g_fit), np.mod(g_nframes, g_fit)
    g_batches = (ps - 1.0) * (g_full + (g_rem > 0))
    g_billed = (ps - 1.0) * (g_full * _chunk(g_fit, g_wsize) + (g_rem > 0) * _chunk(g_rem, g_wsize))
    if exact is not None:
        g_frames, g_batches, g_billed = exact["frames"][:, -1], exact["batches"][:, -1], exact["billed"][:, -1]
    g_receives = np.ceil(g_frames / SQS_MAX_MESSAGES)
    weight = w.rows.weight
    add("sns:PublishBatch", batches @ weight + g_batches, billed_pub @ weight + g_billed)
    add("sqs:ReceiveMessage", (nonempty + empty) @ weight + g_receives,
        (empty + nonempty * _chunk(np.full_like(nonempty, mpr), wsize)) @ weight
        + g_receives * _chunk(np.full_like(g_receives, SQS_MAX_MESSAGES), g_wsize))
    add("sqs:DeleteMessageBatch", nonempty @ weight + g_receives)
    # time: publish from the sender's threads, hop, the receiver's receive+delete cycles, bytes
    bw = params.bandwidth_bytes_per_s
    wire = byts * 4.0 / 3.0 / p
    per_sender_batches = np.divide(batches, senders, out=np.zeros_like(batches), where=senders > 0)
    publish = np.ceil(per_sender_batches / max(params.publish_threads, 1)) * params.sns_publish_s + wire / bw
    # one receive + delete cycle for the last message; earlier cycles run while the senders
    # still publish, so only the backlog beyond the publishing time adds up
    cycle = 2.0 * params.sqs_request_s
    cycles = np.maximum(np.ceil(frames / p / mpr), 1.0)
    receive = cycle + np.maximum(0.0, (cycles - 1.0) * cycle - publish) + wire / bw
    hop = slowest_of(np.maximum(frames / p, 1.0), params.queue_hop_s, params.queue_hop_p99_s)
    first = params.sns_publish_s + params.queue_hop_s + cycle + wire / np.maximum(frames, 1.0) / bw
    last = publish + hop + receive
    last_p99 = publish + params.queue_hop_p99_s + receive
    g_wire = g_bytes * 4.0 / 3.0
    g_hop = slowest_of(np.maximum(ps - 1.0, 1.0), params.queue_hop_s, params.queue_hop_p99_s)
    gather = np.where(ps > 1, params.sns_publish_s + g_wire / np.maximum(ps - 1.0, 1.0) / bw + g_hop
                      + g_receives * 2.0 * params.sqs_request_s + g_wire / bw, 0.0)
    return first, last, last_p99, gather, frames @ weight + g_frames


def _object(params: Params, w: Workload, ps: np.ndarray, pairs: np.ndarray, byts: np.ndarray,
            g_bytes: np.ndarray, storage: str, add, exact: dict | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """S3 (Standard or Express): counts (via `add`), first and last arrivals (twice: no p99
    published), the gather's time, messages."""
    p = ps[:, None]
    weight = w.rows.weight
    if exact is not None:
        pairs = exact["frames"][:, :-1]
    keys = pairs @ weight + (ps - 1.0)
    add("s3:PutObject", keys)
    add("s3:GetObject", keys * (1.0 + params.get_retries_per_key))
    if params.cleanup:
        calls = np.ceil(keys / S3_KEYS_PER_CALL)
        add("s3:ListObjectsV2", calls)
        add("s3:DeleteObjects", calls)
    req = params.s3express_request_s if storage == "express" else params.s3_request_s
    bw = params.bandwidth_bytes_per_s
    threads = max(params.object_threads, 1)
    per_worker = byts / p
    m = pairs / p
    put = np.ceil(m / threads) * req + per_worker / bw
    get = params.object_poll_s + np.ceil(m / threads) * req + per_worker / bw
    first = 2.0 * req + params.object_poll_s + 2.0 * per_worker / np.maximum(m, 1.0) / bw
    last = put + get
    gather = np.where(ps > 1, req + g_bytes / np.maximum(ps - 1.0, 1.0) / bw + params.object_poll_s
                      + np.ceil((ps - 1.0) / threads) * req + g_bytes / bw, 0.0)
    return first, last, last, gather, keys


# ----------------------------------------------------------------------------- one configuration


def estimate(variant: str, w: Workload, comm: CommProfile | None, params: Params | None = None,
             prices: PriceTable | None = None, memory_mb: int | None = None, arch: str = "x86_64",
             latency_target: float | None = None, storage: str = "standard",
             serving: Serving | None = None) -> Estimate:
    """Expected requests, bytes, seconds, GB-seconds and USD of one query of `w` at one worker count."""
    if comm is not None and variant != "serial" and len(comm.workers) != 1:
        raise InputError("estimate takes a communication profile of one worker count")
    return evaluate(variant, w, comm, params, prices, memory_mb, arch, storage, latency_target, serving).pick(0)


def radixnet_comm(w: Workload, workers: Sequence[int] | np.ndarray | int, method: str = "hypergraph") -> CommProfile:
    """The analytic communication profile of `w`'s grouped layers at the worker counts `workers`."""
    return CommProfile.radixnet(w.neurons, w.rows.index, workers, method, w.rows.nnz)


def describe(e: Estimate) -> dict[str, Any]:
    """A short human summary of an estimate's time (for the text output)."""
    return {k: round(v, 3) for k, v in e.time_terms.items()}
