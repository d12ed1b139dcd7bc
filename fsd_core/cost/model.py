"""Cost and latency model for the serial, queue and object variants, and the recommendation.

Three layers, each usable alone:

1. Exact counts for a concrete run (`predict_requests`): from every frame the senders will
   send, the deterministic requests (invocations, SNS PublishBatch calls and their billed
   64 KiB chunks via `channels.packing`, S3 PutObject calls) and bytes. `dollars` prices any
   count dict (predicted or counted by the channels) at given worker durations.
2. Estimates without a run (`estimate`): per-layer communication volumes from a plan
   (`CommProfile.from_plan`) or analytically for a RadiX-Net of N neurons and L layers
   (`CommProfile.radixnet`), activation densities (`density_profile`), and `Params` (latencies,
   bandwidths, compute throughput, polling behaviour) -> every request count, bytes, GB-seconds,
   dollars and latency. `calibrate` fits the time parameters to measured runs.
3. `recommend`: ranks the variants by cost per query under a latency target and Lambda's
   limits, finds the queue/object cross-over, and compares sporadic workloads with servers.

docs/cost-model.md derives every formula and states the assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from ..aws.limits import (
    BILLING_CHUNK,
    SNS_MAX_BATCH_ENTRIES,
    SNS_MAX_PAYLOAD,
    billed_publish_chunks,
    max_frame_bytes_for_sns,
    pack_batches,
    wire_size,
)
from ..errors import InputError
from .prices import PriceTable, default_table

#: Bytes of a frame's fixed header (channels/frames.py HEADER.size; a test keeps them equal:
#: the cost model imports no channel).
FRAME_HEADER_BYTES = 24
VARIANTS = ("serial", "queue", "object")
LAMBDA_MAX_MEMORY_MB = 10240
LAMBDA_MIN_MEMORY_MB = 128
LAMBDA_MAX_SECONDS = 900.0
#: Lambda gives one full vCPU at 1,769 MB and CPU in proportion to memory (AWS Lambda docs).
LAMBDA_FULL_VCPU_MB = 1769
MEMORY_LADDER = (128, 256, 512, 1024, 1769, 2048, 3008, 4096, 5120, 6144, 8192, 10240)
#: SQS returns at most 10 messages per ReceiveMessage; DeleteMessageBatch takes 10 ids.
SQS_MAX_MESSAGES = 10
#: S3 ListObjectsV2 / DeleteObjects handle up to 1,000 keys per call.
S3_KEYS_PER_CALL = 1000
#: Bytes of the SNS `dst` attribute (name + "String" + up to 4 digits): the analytic estimate only.
DEFAULT_ATTR_BYTES = len("dst") + len("String") + 4

# ----------------------------------------------------------------------------- pricing


def api_price(api: str, prices: PriceTable) -> float:
    """USD per billed request of `api` (e.g. "sns:PublishBatch"); DELETEs are free."""
    service, _, action = api.partition(":")
    if service == "lambda":
        return prices["lambda_request"]
    if service == "sns":
        return prices["sns_publish"]
    if service == "sqs":
        return prices["sqs_request"]
    if service == "s3":
        if action.startswith("Delete"):
            return 0.0
        if action in ("GetObject", "HeadObject", "SelectObjectContent"):
            return prices["s3_get"]
        return prices["s3_put"]  # PUT, COPY, POST, LIST
    raise InputError(f"cannot price API {api!r}: unknown service {service!r}")


def lambda_gb_seconds(durations: Sequence[float] | np.ndarray, memory_mb: int) -> float:
    """GB-seconds billed for workers that ran `durations` seconds (rounded up to 1 ms)."""
    ms = np.ceil(np.asarray(durations, dtype=float) * 1000.0 - 1e-9)
    return float(np.sum(ms)) / 1000.0 * memory_mb / 1024.0


def dollars(billed: Mapping[str, float], durations: Sequence[float] | np.ndarray, memory_mb: int,
            prices: PriceTable | None = None, arch: str = "x86_64") -> float:
    """USD for billed request counts by API plus Lambda time of every worker at `memory_mb`."""
    return sum(cost_breakdown(billed, durations, memory_mb, prices, arch).values())


def cost_breakdown(billed: Mapping[str, float], durations: Sequence[float] | np.ndarray, memory_mb: int,
                   prices: PriceTable | None = None, arch: str = "x86_64") -> dict[str, float]:
    """USD by service: lambda_compute plus one entry per API."""
    prices = prices or default_table()
    out = {"lambda_compute": lambda_gb_seconds(durations, memory_mb) * prices.lambda_gb_second(arch)}
    for api, n in billed.items():
        out[api] = float(n) * api_price(api, prices)
    return out


# ----------------------------------------------------------------------------- exact counts


@dataclass
class RequestCounts:
    """Requests by API (calls made) and billed requests by API (64 KiB chunks where billed so)."""

    requests: dict[str, int] = field(default_factory=dict)
    billed: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    messages: int = 0

    def add(self, api: str, requests: int, billed: int | None = None) -> None:
        self.requests[api] = self.requests.get(api, 0) + int(requests)
        self.billed[api] = self.billed.get(api, 0) + int(requests if billed is None else billed)

    def as_dict(self) -> dict:
        return {"requests": dict(self.requests), "billed_requests": dict(self.billed),
                "bytes_sent": self.bytes_sent, "messages": self.messages}


Frame = tuple[int, int, int]  # (src, dst, frame bytes = len(frame) as the channel sends it)


def predict_requests(variant: str, frame_sizes: Sequence[Sequence[Frame]], workers: int,
                     attr_bytes: int | Callable[[int], int] = DEFAULT_ATTR_BYTES) -> RequestCounts:
    """The deterministic requests of one run, from every frame the senders will send.

    `frame_sizes[k]` lists the frames of one sending round (a layer, or the gather) as
    `(src, dst, frame_bytes)` in each sender's send order. Per (round, sender) the queue
    channel publishes its frames base64-encoded with the `dst` attribute (`attr_bytes`: bytes,
    or a function of dst) in greedy `pack_batches` order and flushes at the end of the round;
    the object channel writes one object per frame. Invocations: one per worker.
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    _check_positive(workers=workers)
    counts = RequestCounts()
    counts.add("lambda:Invoke", workers if variant != "serial" else 1)
    attr = attr_bytes if callable(attr_bytes) else (lambda dst, a=int(attr_bytes): a)
    for rnd in frame_sizes:
        counts.messages += len(rnd)
        counts.bytes_sent += sum(int(f[2]) for f in rnd)
        if variant == "object":
            if rnd:
                counts.add("s3:PutObject", len(rnd))
        elif variant == "queue":
            by_src: dict[int, list[int]] = {}
            for src, dst, nbytes in rnd:
                by_src.setdefault(int(src), []).append(wire_size(int(nbytes), attr(int(dst))))
            for sizes in by_src.values():
                for batch in pack_batches(sizes):
                    counts.add("sns:PublishBatch", 1, billed_publish_chunks(sum(sizes[i] for i in batch)))
        elif rnd:
            raise InputError("the serial variant sends no frames")
    return counts


# ----------------------------------------------------------------------------- workload


#: Activation density of the input to layer l+1 (l = 0: the MNIST inputs), measured on the first
#: 1,200 official N=1024 inputs through the real layers (RADIXNET.md section 5): rows alive/nnz.
DENSITY_KNOTS = ((0, 0.104), (1, 0.269), (2, 0.125), (6, 0.0248), (7, 0.01875), (12, 0.01667), (30, 0.01583))


def density_profile(layers: int, constant: float | None = None) -> np.ndarray:
    """(L+1,) fraction of non-zero activations entering each layer, plus the output.

    Log-linear between the measured knots, flat after layer 30 (saturated rows are a fixed
    point). `constant` overrides it with one density for every layer.
    """
    if constant is not None:
        if not 0 < constant <= 1:
            raise InputError(f"density must be in (0, 1], got {constant}")
        return np.full(layers + 1, float(constant))
    x, y = np.array(DENSITY_KNOTS, dtype=float).T
    return np.exp(np.interp(np.arange(layers + 1), x, np.log(y)))


@dataclass(frozen=True)
class Workload:
    """Sizes of one query: N neurons, L layers, nnz per layer, batch B, densities."""

    neurons: int
    layers: int
    batch: int
    nnz: np.ndarray  # (L,)
    density: np.ndarray  # (L+1,)

    @classmethod
    def build(cls, neurons: int, layers: int, batch: int, nnz: Sequence[int] | np.ndarray | None = None,
              density: float | None = None) -> "Workload":
        _check_positive(neurons=neurons, layers=layers, batch=batch)
        nnz_arr = np.full(layers, 32 * neurons, dtype=float) if nnz is None else np.asarray(nnz, dtype=float)
        if nnz_arr.shape != (layers,) or np.any(nnz_arr < 0):
            raise InputError(f"nnz must list {layers} non-negative per-layer counts")
        return cls(neurons, layers, batch, nnz_arr, density_profile(layers, density))

    def work(self) -> np.ndarray:
        """(L,) multiply-adds per layer: every non-zero activation times its row's weights."""
        return self.batch * self.nnz * self.density[:-1]

    @property
    def edges(self) -> float:
        """Graph Challenge edges of the query: B x total weights (for edges/s)."""
        return float(self.batch * self.nnz.sum())


@dataclass(frozen=True)
class CommProfile:
    """Per-layer communication of a partition: rows sent (volume) and non-empty sender pairs."""

    workers: int
    volume_rows: np.ndarray  # (L,) sum over input rows of the remote workers that need them
    pairs: np.ndarray  # (L,) (sender, receiver) pairs with at least one row
    method: str
    exact: bool = False

    @classmethod
    def radixnet(cls, neurons: int, layers: int, workers: int, method: str = "hypergraph",
                 nnz: np.ndarray | None = None) -> "CommProfile":
        """Expected volumes for a RadiX-Net (radix 2, 16 dense copies; RADIXNET.md section 3).

        Random / block partitions: each row's `deg` outputs land on independent workers.
        Hypergraph / metis: the partition groups the 16 columns of a residue class, so a row's
        outputs sit in 2 classes (1 worker each while P <= N/16, else P/(N/16) each).
        """
        n, p = neurons, workers
        deg = np.full(layers, 32.0) if nnz is None else np.maximum(np.asarray(nnz, float) / n, 1.0)
        if p == 1:
            z = np.zeros(layers)
            return cls(1, z, z.copy(), method)
        q = 1.0 - 1.0 / p
        if method in ("random", "block"):
            distinct = p * (1.0 - q ** deg)
            vol_row = distinct * q
        elif method in ("hypergraph", "metis"):
            base = max(1, n // 16)
            bits = max(1, int(round(math.log2(base))))
            pv = 2.0 ** ((np.arange(layers)) % bits)
            if p <= base:
                together = np.clip(1.0 - pv * p / base, 0.0, 1.0)  # both classes on one worker
                distinct = 2.0 - together
            else:
                distinct = np.minimum(2.0 * p / base, deg)
            block0 = np.arange(layers) < bits  # unpermuted block: a row's owner holds its class
            vol_row = np.where(block0, distinct - 1.0, distinct * q)
            vol_row = np.minimum(vol_row, distinct)
        else:
            raise InputError(f"unknown partition method {method!r}")
        vol_row = np.clip(vol_row, 0.0, p - 1.0)
        rows_per_worker = n / p
        need = np.clip(vol_row / (p - 1), 0.0, 1.0)
        pairs = p * (p - 1) * (1.0 - (1.0 - need) ** rows_per_worker)
        return cls(p, n * vol_row, pairs, method)

    @classmethod
    def from_plan(cls, model: Any, plan: Any, method: str = "plan") -> "CommProfile":
        """Exact volumes from a plan: `plan.pairs(model, l).nrows` per non-empty (sender, receiver)."""
        nrows = [np.asarray(plan.pairs(model, l).nrows) for l in range(1, model.layers + 1)]
        vols = np.array([float(r.sum()) for r in nrows])
        pairs = np.array([float(np.count_nonzero(r)) for r in nrows])
        return cls(int(plan.workers), vols, pairs, method, exact=True)


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Params:
    """Everything the model assumes that is not a price. Time parameters are calibratable.

    Defaults: compute and bandwidths fitted to the paper's reconstructed 8-worker runs
    (docs/cost-model.md); polling behaviour from its counters (6,774 messages, 4,318 polls).
    """

    # wire
    bytes_per_nnz: float = 3.4  # encoded bytes per sent non-zero activation (compressed)
    block_overhead_bytes: int = FRAME_HEADER_BYTES + 32  # frame header + block shape + compressor framing
    # compute
    madds_per_s: float = 1.8e7  # per full vCPU (paper fit; our scipy kernel is faster: calibrate)
    vcpus_used: float = 1.0  # threads the kernel keeps busy
    imbalance: float = 1.05  # slowest worker / mean
    runtime_mb: float = 250.0  # Python, numpy, scipy, boto3
    activation_copies: float = 3.0  # Y, Z and the assembled rows, 8 bytes per non-zero
    # start-up
    startup_s: float = 1.0  # cold start + imports
    invoke_latency_s: float = 0.08  # one round of the launch tree
    branching: int = 4
    load_bytes_per_s: float = 80e6  # shard download + decode
    # queue channel
    queue_request_s: float = 0.02  # one PublishBatch / ReceiveMessage / DeleteMessageBatch
    queue_bytes_per_s: float = 6.2e5  # base64 wire bytes through SNS->SQS per worker (paper fit)
    queue_hop_s: float = 0.05  # publish -> visible in the queue, per layer
    msgs_per_receive: float = 2.0  # mean messages per non-empty ReceiveMessage
    empty_polls_per_worker_layer: float = 1.0
    # object channel
    object_request_s: float = 0.03  # one PUT or GET
    object_threads: int = 8  # parallel PUTs/GETs per worker
    object_bytes_per_s: float = 60e6
    object_hop_s: float = 0.05  # PUT -> readable, plus the poll interval, per layer
    get_retries_per_key: float = 0.5  # GETs of keys not yet written, per key
    cleanup: bool = True  # ListObjectsV2 + DeleteObjects of the run's keys
    comm_overlap: float = 0.5  # share of communication time hidden behind compute
    # server baselines
    server_boot_s: float = 45.0
    server_min_billed_s: float = 60.0
    server_parallel_efficiency: float = 0.7

    RATES = ("madds_per_s", "load_bytes_per_s", "queue_bytes_per_s", "object_bytes_per_s")
    TIMES = ("startup_s", "invoke_latency_s", "queue_request_s", "queue_hop_s", "object_request_s",
             "object_hop_s")

    def updated(self, values: Mapping[str, Any], where: str = "parameters") -> "Params":
        known = {f.name: f.type for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise InputError(f"{where}: unknown parameter {key!r}")
            if isinstance(value, bool) != (known[key] == "bool") or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise InputError(f"{where}: parameter {key!r} must be a non-negative number, got {value!r}")
        return replace(self, **values)


# ----------------------------------------------------------------------------- estimates


@dataclass
class Estimate:
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

    def row(self) -> dict:
        return {"variant": self.variant, "workers": self.workers, "memory_mb": self.memory_mb,
                "cost_usd": self.cost_usd, "latency_s": self.seconds, "feasible": self.feasible,
                "why_not": self.why_not or None, "gb_seconds": self.gb_seconds,
                "memory_needed_mb": round(self.memory_needed_mb, 1),
                "requests": self.counts.requests, "billed_requests": self.counts.billed,
                "bytes_sent": self.counts.bytes_sent, "messages": self.counts.messages,
                "breakdown": self.breakdown}


def memory_needed_mb(w: Workload, variant: str, comm: CommProfile | None, params: Params) -> float:
    """Peak MB of one worker: its weight shard, activations and the runtime."""
    p = 1 if variant == "serial" or comm is None else comm.workers
    n = w.neurons
    rows = n if p == 1 else np.minimum(n, (n + comm.volume_rows) / p)
    weights = w.nnz.sum() / p * 8.0 + np.sum(rows + 1) * 8.0 + w.layers * n / p * 4.0
    acts = w.batch * n * w.density.max() * 8.0 * params.activation_copies / p
    return float(weights + acts) / 2**20 + params.runtime_mb


def choose_memory(needed_mb: float, requested: int | None = None) -> int:
    """The requested memory, or the smallest ladder size >= max(need, one full vCPU)."""
    if requested is not None:
        return requested
    target = max(needed_mb, LAMBDA_FULL_VCPU_MB)
    for m in MEMORY_LADDER:
        if m >= target:
            return m
    return LAMBDA_MAX_MEMORY_MB


def _vcpu(memory_mb: int, params: Params) -> float:
    return min(memory_mb / LAMBDA_FULL_VCPU_MB, params.vcpus_used, 6.0)


def launch_rounds(workers: int, branching: int) -> int:
    rounds, started, width = 0, 1, 1
    while started < workers:
        width *= branching
        started += width
        rounds += 1
    return rounds


def _comm_counts(variant: str, w: Workload, comm: CommProfile, params: Params) -> tuple[RequestCounts, float]:
    """Expected channel requests (vectorised over layers) and request time-units per worker."""
    p = comm.workers
    d_in = w.density[:-1]
    # rounds = layers 1..L plus the gather of the last layer's columns to worker 0
    msgs = np.append(comm.pairs, p - 1.0)
    vol = np.append(comm.volume_rows, w.neurons * (p - 1.0) / p)
    dens = np.append(d_in, w.density[-1])
    raw = vol * w.batch * dens * params.bytes_per_nnz + msgs * params.block_overhead_bytes
    counts = RequestCounts()
    counts.add("lambda:Invoke", p)
    per_msg = np.divide(raw, msgs, out=np.zeros_like(raw), where=msgs > 0)
    if variant == "object":
        keys = float(msgs.sum())
        counts.add("s3:PutObject", round(keys))
        counts.add("s3:GetObject", round(keys * (1.0 + params.get_retries_per_key)))
        if params.cleanup:
            calls = math.ceil(keys / S3_KEYS_PER_CALL)
            counts.add("s3:ListObjectsV2", calls)
            counts.add("s3:DeleteObjects", calls)
        counts.bytes_sent, counts.messages = round(float(raw.sum())), round(keys)
        req_units = keys * (2.0 + params.get_retries_per_key) / p / params.object_threads
        return counts, req_units
    maxf = max_frame_bytes_for_sns(DEFAULT_ATTR_BYTES)
    nframes = np.ceil(per_msg / maxf)
    frames = msgs * nframes
    fbytes = np.divide(per_msg, np.maximum(nframes, 1))
    wsize = 4.0 * np.ceil(fbytes / 3.0) + DEFAULT_ATTR_BYTES
    fit = np.minimum(SNS_MAX_BATCH_ENTRIES, np.floor(SNS_MAX_PAYLOAD / np.maximum(wsize, 1.0)))
    senders = np.minimum(msgs, p)  # the gather has P-1 senders
    per_sender = np.ceil(np.divide(frames, senders, out=np.zeros_like(frames), where=senders > 0))
    full, rem = np.floor(per_sender / fit), np.mod(per_sender, fit)
    chunk = lambda k: np.maximum(1.0, np.ceil(k * wsize / BILLING_CHUNK))  # noqa: E731
    batches = senders * (full + (rem > 0))
    billed_pub = senders * (full * chunk(fit) + (rem > 0) * chunk(rem))
    mpr = min(max(params.msgs_per_receive, 1.0), SQS_MAX_MESSAGES)
    nonempty = np.ceil(frames / mpr)
    empty = p * params.empty_polls_per_worker_layer * np.ones_like(frames)
    counts.add("sns:PublishBatch", round(float(batches.sum())), round(float(billed_pub.sum())))
    counts.add("sqs:ReceiveMessage", round(float((nonempty + empty).sum())),
               round(float((empty + nonempty * chunk(mpr)).sum())))
    counts.add("sqs:DeleteMessageBatch", round(float(nonempty.sum())))
    counts.bytes_sent, counts.messages = round(float(raw.sum())), round(float(frames.sum()))
    req_units = float((batches + 2 * nonempty + empty).sum()) / p
    return counts, req_units


def _wire_bytes(variant: str, counts: RequestCounts) -> float:
    return counts.bytes_sent * (4.0 / 3.0 if variant == "queue" else 1.0)


def time_terms(variant: str, w: Workload, workers: int, memory_mb: int, params: Params,
               req_units: float = 0.0, wire_bytes: float = 0.0, shard_bytes: float | None = None) -> dict[str, float]:
    """Multipliers of each time parameter: seconds = sum(t * p) for times, sum(t / p) for rates."""
    p = 1 if variant == "serial" else workers
    vcpu = _vcpu(memory_mb, params)
    if shard_bytes is None:
        shard_bytes = w.nnz.sum() * 8.0 / p
    hidden = 1.0 - params.comm_overlap
    terms = {"startup_s": 1.0, "invoke_latency_s": float(launch_rounds(p, params.branching) + 1),
             "load_bytes_per_s": shard_bytes, "madds_per_s": float(w.work().sum()) * params.imbalance / (p * vcpu)}
    if variant != "serial":
        terms[f"{variant}_request_s"] = req_units * hidden
        terms[f"{variant}_bytes_per_s"] = 2.0 * wire_bytes / p * hidden  # out and in
        terms[f"{variant}_hop_s"] = float(w.layers + 1)
    return terms


def seconds_from_terms(terms: Mapping[str, float], params: Params) -> float:
    return float(sum(v / getattr(params, k) if k in Params.RATES else v * getattr(params, k)
                     for k, v in terms.items()))


def estimate(variant: str, w: Workload, comm: CommProfile | None, params: Params | None = None,
             prices: PriceTable | None = None, memory_mb: int | None = None, arch: str = "x86_64",
             latency_target: float | None = None) -> Estimate:
    """Expected requests, bytes, seconds, GB-seconds and USD of one query of `w`."""
    params = params or Params()
    prices = prices or default_table()
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant != "serial" and comm is None:
        raise InputError(f"the {variant} variant needs a communication profile")
    p = 1 if variant == "serial" else comm.workers
    need = memory_needed_mb(w, variant, comm, params)
    mem = choose_memory(need, memory_mb)
    if variant == "serial":
        counts, req_units = RequestCounts(), 0.0
        counts.add("lambda:Invoke", 1)
    else:
        counts, req_units = _comm_counts(variant, w, comm, params)
    terms = time_terms(variant, w, p, mem, params, req_units, _wire_bytes(variant, counts))
    secs = seconds_from_terms(terms, params)
    gbs = lambda_gb_seconds([secs] * p, mem)
    breakdown = cost_breakdown(counts.billed, [secs] * p, mem, prices, arch)
    est = Estimate(variant, p, mem, counts, secs, gbs, sum(breakdown.values()), breakdown, need, time_terms=terms)
    reasons = []
    if need > mem:
        reasons.append(f"needs {need:,.0f} MB per worker > {mem:,} MB"
                       + (" (Lambda's maximum)" if mem == LAMBDA_MAX_MEMORY_MB else ""))
    if secs > LAMBDA_MAX_SECONDS:
        reasons.append(f"runs {secs:,.0f} s > Lambda's {LAMBDA_MAX_SECONDS:.0f} s limit")
    if latency_target is not None and secs > latency_target:
        reasons.append(f"latency {secs:,.1f} s > target {latency_target:g} s")
    est.feasible, est.why_not = not reasons, "; ".join(reasons)
    return est


# ----------------------------------------------------------------------------- calibration


def calibrate(records: Sequence[Mapping[str, Any]], params: Params | None = None,
              fit: Sequence[str] = ("startup_s", "madds_per_s", "queue_bytes_per_s", "object_bytes_per_s"),
              ) -> tuple[Params, dict]:
    """Fit time parameters to measured runs by non-negative least squares on worker seconds.

    A record: {"variant", "neurons", "layers", "batch", "workers", "memory_mb", "seconds"} and
    optionally "requests" (by API), "bytes_sent", "nnz", "density". Measured counts are used
    where given, else the model's own estimates. Parameters with no signal keep their value.
    """
    from scipy.optimize import nnls

    params = params or Params()
    unknown = [k for k in fit if k not in Params.RATES + Params.TIMES]
    if unknown:
        raise InputError(f"cannot fit {unknown[0]!r}: fit one of {', '.join(Params.RATES + Params.TIMES)}")
    if not records:
        raise InputError("calibration needs at least one measured run")
    rows, target = [], []
    for i, rec in enumerate(records):
        where = f"record {i}"
        try:
            variant = rec["variant"]
            w = Workload.build(int(rec["neurons"]), int(rec["layers"]), int(rec["batch"]), rec.get("nnz"),
                               rec.get("density"))
            p, mem, secs = int(rec["workers"]), int(rec["memory_mb"]), float(rec["seconds"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: missing or bad field ({exc})") from None
        if variant not in VARIANTS or secs <= 0 or p < 1:
            raise InputError(f"{where}: needs a known variant, workers >= 1 and seconds > 0")
        comm = None if variant == "serial" else CommProfile.radixnet(w.neurons, w.layers, p, rec.get("method", "hypergraph"), w.nnz)
        if variant == "serial":
            req_units, wire = 0.0, 0.0
        else:
            counts, req_units = _comm_counts(variant, w, comm, params)
            measured = rec.get("requests")
            if measured:
                if variant == "queue":
                    n = sum(measured.get(k, 0) for k in ("sns:PublishBatch", "sqs:ReceiveMessage", "sqs:DeleteMessageBatch"))
                    req_units = n / p
                else:
                    n = sum(measured.get(k, 0) for k in ("s3:PutObject", "s3:GetObject"))
                    req_units = n / p / params.object_threads
            if "bytes_sent" in rec:
                counts.bytes_sent = int(rec["bytes_sent"])
            wire = _wire_bytes(variant, counts)
        terms = time_terms(variant, w, p, mem, params, req_units, wire)
        fixed = {k: v for k, v in terms.items() if k not in fit}
        rows.append([terms.get(k, 0.0) for k in fit])
        target.append(secs - seconds_from_terms(fixed, params))
    a, b = np.array(rows), np.array(target)
    scale = np.where(a.any(axis=0), np.abs(a).max(axis=0), 1.0)
    coef, _ = nnls(a / scale, b)
    coef = coef / scale
    new: dict[str, float] = {}
    for k, c, col in zip(fit, coef, a.T):
        if not col.any():
            continue  # no signal: keep the prior value
        c = max(float(c), 0.0)
        new[k] = 1.0 / max(c, 1e-15) if k in Params.RATES else c  # a zero cost means "free"
    fitted = replace(params, **new)
    pred = a @ np.array([(1.0 / getattr(fitted, k) if k in Params.RATES else getattr(fitted, k)) for k in fit])
    resid = (pred - b) / np.maximum(np.array([float(r["seconds"]) for r in records]), 1e-9)
    return fitted, {"fitted": new, "kept": [k for k in fit if k not in new],
                    "relative_residuals": resid.tolist(), "records": len(records)}


# ----------------------------------------------------------------------------- servers & sporadic load


def server_baseline(w: Workload, params: Params, prices: PriceTable) -> dict | None:
    """The cheapest EC2 instance that holds the whole model, and its seconds per query."""
    need_gib = (memory_needed_mb(w, "serial", None, params) + 1024) / 1024  # + OS
    fits = [i for i in prices.instances.values() if i.memory_gib >= need_gib]
    if not fits:
        return None
    inst = min(fits, key=lambda i: i.usd_per_hour)
    rate = params.madds_per_s * inst.vcpu * params.server_parallel_efficiency
    query_s = float(w.work().sum()) / rate
    load_s = float(w.nnz.sum()) * 8.0 / params.load_bytes_per_s
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


# ----------------------------------------------------------------------------- recommendation


def candidate_workers(lo: int, hi: int, limit: int = 48) -> list[int]:
    """All of lo..hi if few, else a geometric sample including both ends."""
    if hi - lo + 1 <= limit:
        return list(range(lo, hi + 1))
    return sorted(set(np.unique(np.round(np.geomspace(lo, hi, limit)).astype(int)).tolist()) | {lo, hi})


def cost_curve(w: Workload, lo: int, hi: int, points: int = 48, method: str = "hypergraph",
               latency_target: float | None = None) -> dict[str, list[tuple[int, float]]]:
    """Cost per query of queue and object against the worker count (for charts)."""
    return {variant: [(p, estimate(variant, w, CommProfile.radixnet(w.neurons, w.layers, p, method, w.nnz),
                                   latency_target=latency_target).cost_usd)
                      for p in candidate_workers(lo, hi, points)]
            for variant in ("queue", "object")}


def workload_from_model(path: Any, batch: int, density: float | None = None) -> Workload:
    """The workload of a saved model (sizes from its model.json only: no weights are loaded)."""
    from ..model.network import read_manifest

    mf = read_manifest(path)
    nnz = [int(e.get("nnz", 0)) for e in mf["layer_files"]]
    return Workload.build(mf["neurons"], mf["layers"], batch, nnz, density)


def recommend(w: Workload, workers: tuple[int, int] = (2, 256), params: Params | None = None,
              prices: PriceTable | None = None, memory_mb: int | None = None,
              latency_target: float | None = None, method: str = "hypergraph",
              queries_per_hour: float | None = None, burst_size: int = 1, arch: str = "x86_64",
              comm_for: Callable[[int], CommProfile] | None = None) -> dict:
    """Rank serial, queue and object by cost per query; the JSON of `fsd recommend`."""
    params = params or Params()
    prices = prices or default_table()
    lo, hi = workers
    if lo < 1 or hi < lo:
        raise InputError(f"bad worker range {lo}-{hi}")
    if hi > w.neurons:
        raise InputError(f"workers ({hi}) must not exceed the number of neurons ({w.neurons})")
    if memory_mb is not None and not LAMBDA_MIN_MEMORY_MB <= memory_mb <= LAMBDA_MAX_MEMORY_MB:
        raise InputError(f"memory must be {LAMBDA_MIN_MEMORY_MB}..{LAMBDA_MAX_MEMORY_MB} MB, got {memory_mb}")
    comm_for = comm_for or (lambda p: CommProfile.radixnet(w.neurons, w.layers, p, method, w.nnz))
    cache: dict[tuple[str, int], Estimate] = {}

    def est(variant: str, p: int) -> Estimate:
        if (variant, p) not in cache:
            cache[variant, p] = estimate(variant, w, comm_for(p), params, prices, memory_mb, arch, latency_target)
        return cache[variant, p]

    serial = estimate("serial", w, None, params, prices, memory_mb, arch, latency_target)
    pmin = max(lo, 2)
    cands = candidate_workers(pmin, max(hi, pmin)) if hi >= 2 else []
    rows = [serial]
    for variant in ("queue", "object"):
        options = [est(variant, p) for p in cands]
        if not options:
            continue
        ok = [e for e in options if e.feasible]
        rows.append(min(ok, key=lambda e: e.cost_usd) if ok else min(options, key=lambda e: e.seconds))
    fits = [e for e in rows + list(cache.values()) if e.memory_needed_mb <= LAMBDA_MAX_MEMORY_MB]
    if not fits:
        worst = min((e for e in rows), key=lambda e: e.memory_needed_mb)
        changes = feasible_changes(w, (lo, hi), params, prices, memory_mb, latency_target, method, arch)
        raise InputError(f"batch {w.batch} does not fit: {worst.variant} with {worst.workers} worker(s) needs "
                         f"{worst.memory_needed_mb:,.0f} MB per worker, more than Lambda's {LAMBDA_MAX_MEMORY_MB:,} MB"
                         f"{_changes_text(changes, w.neurons)}")
    rows.sort(key=lambda e: (not e.feasible, e.cost_usd))
    best = rows[0] if rows[0].feasible else None
    crossover = queue_object_crossover(est, 2, max(hi, 1024 if hi < 1024 else hi, 2), w.neurons)
    reason = _reason(best, rows, latency_target)
    changes = None
    if best is None:
        changes = feasible_changes(w, (lo, hi), params, prices, memory_mb, latency_target, method, arch)
        reason += _changes_text(changes, w.neurons)
    out = {"recommended": best.variant if best else None,
           "workers": best.workers if best else None,
           "memory_mb": best.memory_mb if best else None,
           "reason": reason,
           "rows": [e.row() for e in rows],
           "crossover_workers": crossover["workers"],
           "crossover": crossover,
           "inputs": {"neurons": w.neurons, "layers": w.layers, "batch": w.batch, "workers": [lo, hi],
                      "method": method, "latency_target_s": latency_target, "memory_mb": memory_mb,
                      "region": prices.region, "prices": prices.origin},
           "params": {k: v for k, v in asdict(params).items()}}
    if changes is not None:
        out["feasible_changes"] = changes
    if queries_per_hour is not None and best is not None:
        out["sporadic"] = sporadic(best.cost_usd, queries_per_hour, server_baseline(w, params, prices), params,
                                   burst_size)
    return out


#: Seconds the search for a feasible change may take (the answer stays interactive).
HINT_SECONDS = 0.6
#: The most workers a feasible change suggests (Lambda concurrency quotas are of this order).
HINT_MAX_WORKERS = 100_000


def feasible_changes(w: Workload, workers: tuple[int, int], params: Params, prices: PriceTable,
                     memory_mb: int | None = None, latency_target: float | None = None,
                     method: str = "hypergraph", arch: str = "x86_64",
                     seconds: float = HINT_SECONDS) -> list[dict]:
    """When no variant is feasible: the nearest change of one input that makes one feasible.

    Tries, with the analytic RadiX-Net volumes: more workers (the fewest above the range),
    a smaller batch (the largest that fits the range; the query splits into several) and
    more memory per worker (the least above the current). Each found change is a dict with
    `change`, `flag` (the command line option to use), the variant and its estimate.
    Searches stop after `seconds` and report what they found by then.
    """
    import time

    deadline = time.monotonic() + seconds
    lo, hi = workers
    comms: dict[int, CommProfile] = {}

    def comm(p: int) -> CommProfile:
        if p not in comms:
            comms[p] = CommProfile.radixnet(w.neurons, w.layers, p, method, w.nnz)
        return comms[p]

    def cheapest(wl: Workload, ps: Sequence[int], mem: int | None, serial: bool = True) -> Estimate | None:
        found = []
        if serial:
            e = estimate("serial", wl, None, params, prices, mem, arch, latency_target)
            found += [e] if e.feasible else []
        for p in ps:
            if time.monotonic() > deadline:
                break
            for variant in ("queue", "object"):
                e = estimate(variant, wl, comm(p), params, prices, mem, arch, latency_target)
                found += [e] if e.feasible else []
        return min(found, key=lambda e: e.cost_usd) if found else None

    def record(change: str, flag: str, e: Estimate, **extra: Any) -> dict:
        return {"change": change, "flag": flag, "variant": e.variant, "workers": e.workers,
                "memory_mb": e.memory_mb, "cost_usd": e.cost_usd, "latency_s": e.seconds, **extra}

    out: list[dict] = []
    in_range = candidate_workers(max(lo, 2), max(hi, 2), 8) if hi >= 2 else []
    # More workers: the first feasible P of a geometric grid above the range, then bisect down.
    top = min(w.neurons, HINT_MAX_WORKERS)
    if hi < top:
        prev = max(hi, 1)
        for p in candidate_workers(max(hi + 1, 2), top, 24):
            if time.monotonic() > deadline:
                break
            e = cheapest(w, [p], memory_mb, serial=False)
            if e is None:
                prev = p
                continue
            a, b = prev, p  # a infeasible (or the range's top), b feasible
            while b - a > 1 and time.monotonic() < deadline:
                m = (a + b) // 2
                em = cheapest(w, [m], memory_mb, serial=False)
                a, b, e = (a, m, em) if em is not None else (m, b, e)
            out.append(record("workers", f"--workers {min(lo, b)}-{b}", e))
            break
    # A smaller batch: the largest that some variant in the range runs feasibly (bisection).
    if w.batch > 1 and time.monotonic() < deadline:
        e1 = cheapest(replace(w, batch=1), in_range, memory_mb)
        if e1 is not None:
            good, bad, best = 1, w.batch, e1
            while bad - good > 1 and time.monotonic() < deadline:
                m = (good + bad) // 2
                em = cheapest(replace(w, batch=m), in_range, memory_mb)
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


def queue_object_crossover(est: Callable[[str, int], Estimate], lo: int, hi: int, neurons: int) -> dict:
    """Smallest P where the cheaper of queue and object changes (costs at the same memory policy)."""
    hi = min(hi, neurons)
    if hi < lo:
        return {"workers": None, "below": None, "above": None}
    diff = lambda p: est("queue", p).cost_usd - est("object", p).cost_usd  # noqa: E731
    grid = candidate_workers(lo, hi, 24)
    signs = [diff(p) < 0 for p in grid]
    for (a, sa), (b, sb) in zip(zip(grid, signs), zip(grid[1:], signs[1:])):
        if sa != sb:
            while b - a > 1:
                m = (a + b) // 2
                if (diff(m) < 0) == sa:
                    a = m
                else:
                    b = m
            name = lambda s: "queue" if s else "object"  # noqa: E731
            return {"workers": b, "below": name(sa), "above": name(sb)}
    return {"workers": None, "below": None, "above": None,
            "cheaper_everywhere": ("queue" if signs[0] else "object"), "range": [lo, hi]}


def _reason(best: Estimate | None, rows: list[Estimate], target: float | None) -> str:
    if best is None:
        return "no variant is feasible: " + "; ".join(f"{e.variant}: {e.why_not}" for e in rows)
    others = [e for e in rows[1:] if e.feasible]
    text = f"{best.variant} with {best.workers} worker(s) at {best.memory_mb} MB costs ${best.cost_usd:.4g} per query"
    if others:
        text += f", {others[0].cost_usd / best.cost_usd:.2g}x less than {others[0].variant}" if best.cost_usd > 0 else ""
    bad = [e for e in rows if not e.feasible]
    if bad:
        text += "; " + "; ".join(f"{e.variant} ruled out ({e.why_not})" for e in bad)
    if target is not None:
        text += f"; latency {best.seconds:.3g} s within the {target:g} s target"
    return text


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


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
