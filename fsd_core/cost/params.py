"""Every number the latency and cost model assumes that is not a price, with its source.

Each parameter is either published (an AWS page or a publication, with its date), measured
(how, where, when), or a constant of this project's code (the channels' thread counts and poll
waits; a test keeps them equal, since the cost model imports no channel). `SOURCES` lists
them; docs/cost-model.md prints the same table. `fsd calibrate` refits the compute rates
from local runs and the service latencies and bandwidth from AWS runs; `fsd calibrate
--store` saves the fit where `fsd recommend` reads it by default (`stored_params_path`).

`Params.paper()` describes the paper's implementation instead of this one (it sent the Python
repr of zlib-compressed float32 triples and eval'ed it, polled once per layer, computed every
live row): used only to compare the model with the paper's published runs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import InputError

MEASURED = "2026-12-06"  # date of the measurements on the development machine (2 cores, shared)
_WAGNER = ("T. Wagner, 'Using AWS Step Functions and Lambda for fanout' (2018): S3 -> Lambda downloads "
           "at 400-700 Mbit/s per function; 550 Mbit/s taken")
_SQS_BLOG = ("AWS News Blog, 'Scaling with Amazon SQS' (2012): 'a typical SQS request-response takes a bit "
             "less than 20ms from EC2' (aws.amazon.com/blogs/aws/scaling-with-amazon-sqs/)")
_LATENCY_BITE = ("L. van Donkersgoed, 'Serverless messaging: latency compared' (bitesizedserverless.com, "
                 "measured 2022-09-04/05, eu-west-1): SNS -> SQS p50 40.1 ms, p99 497 ms")
_S3_WP = ("AWS whitepaper 'Best practices design patterns: optimizing Amazon S3 performance', timeouts and "
          "retries: small requests (< 512 KB) have 'median latencies ... in the tens of milliseconds'; 30 ms taken")
_EXPRESS = ("AWS S3 user guide 'Optimizing S3 Express One Zone performance' (2023-11, re-read 2025): "
            "'consistent single-digit millisecond first-byte read and write request latencies - up to 10x "
            "faster than S3 Standard'; 5 ms taken")
_COLD = ("AWS Compute Blog, 'Operating Lambda: performance optimization - Part 1' (2021-04-26): cold start "
         "'from under 100 ms to over 1 second'; the range's ends taken as p50 and p99 of the platform's part")
_INIT_RT = ("dev.robot.wtf 'E-1: Cold start benchmarks' (2026-03-14): bare Python Init Duration p50 75.7-82.8 ms "
            "at 512-1024 MB")
_IMPORTS = (f"measured {MEASURED}: import of fsd_core.engine.handler, numpy, scipy.sparse, zstandard, boto3 "
            "in a fresh interpreter, 0.63-0.76 s on the development machine")
_KERNEL = (f"measured {MEASURED}: fsd calibrate --store on 5 local runs (real N = 1024 network with 1,200 MNIST "
           "inputs, P = 2 block and P = 4 hypergraph x2; RadiX-Net 1024 x 24 with 400 synthetic inputs, P = 8 block, "
           "and 600 inputs at density 0.03, P = 2 block): a worker's whole per-layer compute (products, "
           "activation, hashing, encoding, assembling); the bare scipy products run 5-6x faster (1.0e8 sparse, "
           "5e9 dense madds/s, one thread, best of 5)")
_CODEC = (f"measured {MEASURED}: channels.frames encode/decode_message of 1,000 x 512 float32 blocks at "
          "density 0.05-0.3 (99-233 MB/s encode, 256-299 MB/s decode)")
_WIRE = (f"measured {MEASURED}: bytes per layer of two local runs (real N = 1024 network, 1,200 MNIST inputs, "
         "P = 4, hypergraph; RadiX-Net 1024 x 24, 400 synthetic inputs, P = 8, block), least squares over 146 "
         "layers with the plans' exact volumes and measured profiles; run totals within 3 %")
_CHANNEL = "this project's channel code (a test keeps the constant equal)"
_PAPER = "the paper's counters (1024 neurons, 8 workers: 6,774 messages, 4,318 polls), docs/cost-model.md"


@dataclass(frozen=True)
class Params:
    """The model's non-price numbers (see `SOURCES` for each one's origin)."""

    # compute: this project's kernels, per vCPU (refit by `fsd calibrate` from local runs)
    sparse_madds_per_s: float = 1.8e7
    dense_madds_per_s: float = 7.9e8
    layer_overhead_s: float = 2.6e-4
    piece_overhead_s: float = 0.0
    imbalance: float = 1.05
    thread_efficiency: float = 0.7
    arm64_speed: float = 1.0
    # this project's wire format
    encode_bytes_per_s: float = 1.0e8
    decode_bytes_per_s: float = 2.5e8
    message_overhead_bytes: float = 338.0
    dense_bytes_per_cell: float = 2.53
    bytes_per_nnz: float = 2.29
    rowmap_bytes_per_input: float = 0.33
    # memory
    runtime_mb: float = 128.0
    activation_copies: float = 3.0
    weight_bytes_per_nnz: float = 8.0
    # launch and start-up
    branching: int = 2
    invoke_s: float = 0.02
    cold_start_s: float = 0.1
    cold_start_p99_s: float = 1.0
    runtime_init_s: float = 0.08
    import_s: float = 0.7
    cold_fraction: float = 1.0
    shard_bytes_per_nnz: float = 0.14
    unpack_bytes_per_s: float = 3.0e9
    # network and services
    bandwidth_bytes_per_s: float = 68.75e6
    sns_publish_s: float = 0.02
    sqs_request_s: float = 0.02
    queue_hop_s: float = 0.04
    queue_hop_p99_s: float = 0.5
    poll_wait_s: float = 1.0
    publish_threads: int = 4
    msgs_per_receive: float = 2.0
    empty_polls_per_worker_layer: float = 0.0
    idle_polls_per_s: float = 1.0
    s3_request_s: float = 0.03
    s3express_request_s: float = 0.005
    object_threads: int = 8
    object_poll_s: float = 0.06
    get_retries_per_key: float = 0.5
    cleanup: bool = True
    # server baselines
    server_boot_s: float = 45.0
    server_min_billed_s: float = 60.0
    server_parallel_efficiency: float = 0.7

    def updated(self, values: Mapping[str, Any], where: str = "parameters") -> Params:
        known = {f.name: f.type for f in fields(self)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise InputError(f"{where}: unknown parameter {key!r}")
            if isinstance(value, bool) != (known[key] == "bool") or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise InputError(f"{where}: parameter {key!r} must be a non-negative finite number, got {value!r}")
            if key.endswith("_per_s") and key != "idle_polls_per_s" and value <= 0:
                raise InputError(f"{where}: rate {key!r} must be positive, got {value!r}")
            clean[key] = int(value) if known[key] == "int" else value
        return replace(self, **clean)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def paper(cls) -> Params:
        """The paper's implementation (for the comparison with its runs only; docs/cost-model.md)."""
        return cls(bytes_per_nnz=3.4, message_overhead_bytes=56.0, rowmap_bytes_per_input=0.0, dense_bytes_per_cell=0.0,
                   encode_bytes_per_s=PAPER_ENCODE_NNZ_PER_S * 3.4, decode_bytes_per_s=PAPER_DECODE_NNZ_PER_S * 3.4,
                   empty_polls_per_worker_layer=1.0, idle_polls_per_s=0.0, publish_threads=1, object_threads=8,
                   branching=4, cold_fraction=1.0)


#: The paper's codec, measured here (see SOURCES): zlib + Python repr of (row, col, value) triples.
PAPER_ENCODE_NNZ_PER_S = 4.2e5
PAPER_DECODE_NNZ_PER_S = 6.5e4

#: name -> (unit, source).
SOURCES: dict[str, tuple[str, str]] = {
    "sparse_madds_per_s": ("multiply-adds/s per vCPU", _KERNEL),
    "dense_madds_per_s": ("multiply-adds/s per vCPU", _KERNEL),
    "layer_overhead_s": ("s per worker per layer", _KERNEL),
    "piece_overhead_s": ("s per received message per layer", ("assembling a received piece (row maps, labels); "
                         "fit by fsd calibrate")),
    "imbalance": ("slowest / mean worker", ("assumed (hypergraph partitions balance columns to a few %); "
                  "fsd calibrate reports the measured max/mean")),
    "thread_efficiency": ("speed-up per extra vCPU", ("assumed for the serial kernel's threads (scipy releases the "
                          "GIL); workers run one thread")),
    "arm64_speed": ("x the x86_64 rate", ("assumed 1.0: AWS claims 'up to 19% better performance' for Graviton2 "
                    "Lambda (AWS News Blog, 2021-09-29); unmeasured for these kernels")),
    "encode_bytes_per_s": ("encoded bytes/s", _CODEC),
    "decode_bytes_per_s": ("encoded bytes/s", _CODEC),
    "message_overhead_bytes": ("bytes per message", _WIRE),
    "dense_bytes_per_cell": ("bytes per sent cell of a dense block", _WIRE),
    "bytes_per_nnz": ("bytes per sent stored entry", _WIRE),
    "rowmap_bytes_per_input": ("bytes per batch row per message when the row map changed", _WIRE),
    "runtime_mb": ("MB per worker", (f"measured {MEASURED}: 60 MB RSS after the handler's imports, + 68 MB for "
                   "boto3 clients, threads and buffers (assumed)")),
    "activation_copies": ("copies of a worker's activations", ("the worker's layer loop: its rows, the assembled "
                          "inputs, the output block")),
    "weight_bytes_per_nnz": ("bytes", "CSR float32 value + int32 index"),
    "branching": ("children per worker", f"launch tree fan-out, fsd run's default ({_CHANNEL})"),
    "invoke_s": ("s per Invoke call", "assumed equal to an SQS request (same class of in-region AWS API call): "
                 + _SQS_BLOG),
    "cold_start_s": ("s (platform, unbilled)", _COLD),
    "cold_start_p99_s": ("s (platform, unbilled)", _COLD),
    "runtime_init_s": ("s of billed INIT", _INIT_RT),
    "import_s": ("s of billed INIT", _IMPORTS),
    "cold_fraction": ("of workers", ("assumed 1: sporadic queries find no warm worker (the paper's setting); "
                      "serving.Serving(warm=F) and fsd recommend --warm F take 1 - F")),
    "shard_bytes_per_nnz": ("staged bytes per weight", (f"measured {MEASURED}: packed.pack of RadiX-Net 4096 "
                            "shards (0.14 B/nnz; random weights pack to ~6)")),
    "unpack_bytes_per_s": ("raw bytes/s", f"measured {MEASURED}: packed.unpack, 3.2 GB/s"),
    "bandwidth_bytes_per_s": ("bytes/s per function", _WAGNER),
    "sns_publish_s": ("s per PublishBatch", "assumed equal to an SQS request (no published SNS API latency): "
                      + _SQS_BLOG),
    "sqs_request_s": ("s per request", _SQS_BLOG),
    "queue_hop_s": ("s publish -> receivable", _LATENCY_BITE),
    "queue_hop_p99_s": ("s publish -> receivable", _LATENCY_BITE),
    "poll_wait_s": ("s of long polling", f"channels/queue.py DEFAULT_POLL_WAIT ({_CHANNEL})"),
    "publish_threads": ("threads", f"channels/queue.py PUBLISH_THREADS ({_CHANNEL})"),
    "msgs_per_receive": ("messages per non-empty receive", _PAPER),
    "empty_polls_per_worker_layer": ("polls", "0 here (a receiver thread long-polls); the paper's 1: " + _PAPER),
    "idle_polls_per_s": ("empty receives per idle worker-second", (f"1 / poll_wait_s: the receiver thread's "
                         f"long poll returns empty after poll_wait_s ({_CHANNEL})")),
    "s3_request_s": ("s per PUT or GET", _S3_WP),
    "s3express_request_s": ("s per PUT or GET", _EXPRESS),
    "object_threads": ("threads", f"channels/object.py GET_THREADS = PUT_THREADS ({_CHANNEL})"),
    "object_poll_s": ("s", (f"channels/object.py back-off (10 ms doubling to 250 ms, {_CHANNEL}): a key written "
                      "during a pause waits half of it; about a quarter of the cap")),
    "get_retries_per_key": ("GETs of a missing key per key", _PAPER + "; refit from measured GET/PUT counts"),
    "cleanup": ("", "the coordinator lists and deletes a run's keys (run/cleanup.py)"),
    "server_boot_s": ("s", "assumed EC2 boot + runtime start"),
    "server_min_billed_s": ("s", "EC2 per-second billing has a 60 s minimum (aws.amazon.com/ec2/pricing/on-demand)"),
    "server_parallel_efficiency": ("", "assumed for the serial kernel's threads on a server"),
}

#: What `fsd calibrate` can fit: name -> the fields it scales together.
KNOBS: dict[str, tuple[str, ...]] = {
    "madds_per_s": ("sparse_madds_per_s", "dense_madds_per_s"),
    "sparse_madds_per_s": ("sparse_madds_per_s",),
    "dense_madds_per_s": ("dense_madds_per_s",),
    "layer_overhead_s": ("layer_overhead_s",),
    "piece_overhead_s": ("piece_overhead_s",),
    "codec_bytes_per_s": ("encode_bytes_per_s", "decode_bytes_per_s"),
    "bandwidth_bytes_per_s": ("bandwidth_bytes_per_s",),
    "sqs_request_s": ("sqs_request_s",),
    "sns_publish_s": ("sns_publish_s",),
    "queue_hop_s": ("queue_hop_s",),
    "s3_request_s": ("s3_request_s",),
    "s3express_request_s": ("s3express_request_s",),
    "startup_s": ("cold_start_s", "import_s"),
    "cold_start_s": ("cold_start_s",),
    "import_s": ("import_s",),
}


def stored_params_path() -> Path:
    """Where `fsd calibrate --store` saves its fit and `fsd recommend` reads it: $FSD_PARAMS, else
    `<data dir>/cost-params.json`."""
    from ..paths import data_dir

    return Path(os.environ.get("FSD_PARAMS") or data_dir() / "cost-params.json")


def load_params(path: str | os.PathLike[str] | None = None, use_stored: bool = True) -> tuple[Params, str]:
    """Parameters from `path`, else the stored fit (when `use_stored` and it exists), else the
    defaults; and where they came from."""
    if path is None:
        stored = stored_params_path()
        if not use_stored or not stored.exists():
            return Params(), "built-in defaults"
        path = stored
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON parameter file ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a parameter file must be a JSON object")
    values = doc.get("params", doc)
    if not isinstance(values, dict):
        raise InputError(f"{path}: field 'params' must be an object")
    return Params().updated(values, where=str(path)), str(path)
