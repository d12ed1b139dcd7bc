"""Cost model: prices, exact request prediction, dollars, the paper's findings, recommend CLI."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from fsd_core.aws.limits import max_frame_bytes_for_sns, pack_batches, wire_size
from fsd_core.cli import main
from fsd_core.cost import model as cost
from fsd_core.cost.prices import default_table, load_prices
from fsd_core.errors import InputError

PR = default_table()
MEM = 4096  # assumed Lambda memory of the paper's runs (docs/cost-model.md)

# --------------------------------------------------------------------------- prices


def test_default_prices_have_region_date_source():
    assert PR.region == "us-east-1"
    assert PR["lambda_gb_second_x86"] == pytest.approx(0.0000166667)
    assert PR["lambda_gb_second_arm64"] == pytest.approx(0.0000133334)
    assert PR["sns_publish"] == pytest.approx(0.5e-6) and PR["sqs_request"] == pytest.approx(0.4e-6)
    assert PR["s3_put"] == pytest.approx(5e-6) and PR["s3_get"] == pytest.approx(4e-7)
    for p in PR.prices.values():
        assert p.region and p.date and p.source.startswith("https://")
    assert all(i.usd_per_hour > 0 and i.source for i in PR.instances.values())


def test_price_file_overrides_and_errors(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"region": "us-east-1", "date": "2030-01-01", "prices": {"s3_put": 1e-5}}))
    t = load_prices(f)
    assert t["s3_put"] == 1e-5 and t.prices["s3_put"].date == "2030-01-01"
    assert t["s3_get"] == PR["s3_get"]
    f.write_text(json.dumps({"region": "eu-west-1", "prices": {"s3_put": 1e-5}}))
    with pytest.raises(InputError, match="lambda_gb_second_x86"):
        load_prices(f)
    f.write_text(json.dumps({"prices": {"s3_put": -1}}))
    with pytest.raises(InputError, match=r"prices\.s3_put\.usd"):
        load_prices(f)
    f.write_text("{not json")
    with pytest.raises(InputError, match="p.json"):
        load_prices(f)
    with pytest.raises(InputError, match="eu-west-1"):
        load_prices(None, "eu-west-1")


# --------------------------------------------------------------------------- exact prediction


def test_predict_requests_queue_uses_packing():
    attr = 13
    frames = [[(0, 1, 1000), (0, 2, 150_000), (0, 3, 150_000), (1, 0, 10)],  # layer 1
              [(0, 1, 5)] * 12]  # layer 2: 12 tiny frames from one sender
    c = cost.predict_requests("queue", frames, workers=4, attr_bytes=attr)
    sizes0 = [wire_size(n, attr) for n in (1000, 150_000, 150_000)]
    expect0 = pack_batches(sizes0)
    assert len(expect0) == 2  # two 200 KB frames cannot share a call
    assert c.requests["sns:PublishBatch"] == 2 + 1 + 2
    billed0 = sum(max(1, -(-sum(sizes0[i] for i in b) // 65536)) for b in expect0)
    assert c.billed["sns:PublishBatch"] == billed0 + 1 + 2
    assert c.requests["lambda:Invoke"] == 4
    assert c.bytes_sent == 1000 + 300_000 + 10 + 60 and c.messages == 16


def test_predict_requests_object_and_dollars():
    frames = [[(s, d, 100) for s in range(3) for d in range(3) if s != d]] * 5
    c = cost.predict_requests("object", frames, workers=3)
    assert c.requests == {"lambda:Invoke": 3, "s3:PutObject": 30}
    usd = cost.dollars(c.billed, [2.0, 2.0, 2.5], 1024)
    expect = 3 * 0.2e-6 + 30 * 5e-6 + 6.5 * PR["lambda_gb_second_x86"]
    assert usd == pytest.approx(expect, rel=1e-9)
    # Lambda bills whole milliseconds
    assert cost.lambda_gb_seconds([0.0001], 1024) == pytest.approx(0.001)
    with pytest.raises(InputError):
        cost.dollars({"ec2:RunInstances": 1}, [1.0], 1024)
    assert cost.api_price("s3:DeleteObjects", PR) == 0.0


def test_estimate_queue_counts_match_exact_packing_for_uniform_frames():
    """The analytic queue counts equal predict_requests on the frames they assume."""
    prm = cost.Params()
    w = cost.Workload.build(1024, 3, 5000, density=0.05)
    comm = cost.CommProfile(4, np.full(3, 1024.0), np.full(3, 12.0), "test")
    e = cost.estimate("queue", w, comm, prm, memory_mb=2048)
    per_msg = 1024 / 12 * 5000 * 0.05 * prm.bytes_per_nnz + prm.block_overhead_bytes
    rounds = [[(s, d, round(per_msg)) for s in range(4) for d in range(4) if s != d]] * 3
    gather = 1024 * 3 / 4 * 5000 * 0.05 * prm.bytes_per_nnz / 3 + prm.block_overhead_bytes
    assert gather > max_frame_bytes_for_sns(cost.DEFAULT_ATTR_BYTES)  # chunked in two frames
    rounds.append([(s, 0, round(gather / 2)) for s in range(1, 4) for _ in range(2)])
    exact = cost.predict_requests("queue", rounds, 4, cost.DEFAULT_ATTR_BYTES)
    assert exact.requests["sns:PublishBatch"] > 4 * 3 + 3  # 3 frames of ~97 KB wire: two calls each
    assert e.counts.requests["sns:PublishBatch"] == exact.requests["sns:PublishBatch"]
    assert e.counts.billed["sns:PublishBatch"] == exact.billed["sns:PublishBatch"]
    assert e.counts.bytes_sent == pytest.approx(exact.bytes_sent, abs=16)


# --------------------------------------------------------------------------- the paper's findings

PAPER_USD = {("queue", 1024): 0.0215, ("object", 1024): 0.0539, ("queue", 16384): 0.275, ("object", 16384): 0.0935}
#: Reconstructed counters of the paper's 8-worker, 10,000-input, 120-layer runs (docs/cost-model.md).
PAPER_COUNTS = {
    ("queue", 1024): {"lambda:Invoke": 8, "sns:PublishBatch": 2667, "sqs:ReceiveMessage": 4741,
                      "sqs:DeleteMessageBatch": 3387},
    ("object", 1024): {"lambda:Invoke": 8, "s3:PutObject": 6727, "s3:GetObject": 10091, "s3:ListObjectsV2": 7},
    ("queue", 16384): {"lambda:Invoke": 8, "sns:PublishBatch": 28816, "sqs:ReceiveMessage": 28714,
                       "sqs:DeleteMessageBatch": 4611},
    ("object", 16384): {"lambda:Invoke": 8, "s3:PutObject": 6727, "s3:GetObject": 10091, "s3:ListObjectsV2": 7},
}
#: Worker seconds at 4,096 MB solved from the paper's dollars and the counters above.
PAPER_SECONDS = {("queue", 1024): 31.7, ("object", 1024): 30.4, ("queue", 16384): 463.6, ("object", 16384): 104.7}


def _paper_usd(key):
    return cost.dollars(PAPER_COUNTS[key], [PAPER_SECONDS[key]] * 8, MEM)


def test_paper_counters_price_to_the_paper_dollars():
    for key, usd in PAPER_USD.items():
        assert _paper_usd(key) == pytest.approx(usd, rel=0.01), key
        assert PAPER_SECONDS[key] < cost.LAMBDA_MAX_SECONDS
    assert _paper_usd(("queue", 1024)) < _paper_usd(("object", 1024))
    assert _paper_usd(("object", 16384)) < _paper_usd(("queue", 16384))


def test_paper_1024_object_puts_alone_cost_more_than_the_whole_queue_run():
    """Independent of durations: 6,727 PUTs at $0.005/1000 exceed the queue run's $0.0215."""
    puts = PAPER_COUNTS[("object", 1024)]["s3:PutObject"] * PR["s3_put"]
    assert puts > PAPER_USD[("queue", 1024)]
    assert cost.dollars(PAPER_COUNTS[("object", 1024)], [0.0] * 8, MEM) > PAPER_USD[("queue", 1024)]


def _predict(variant, n, p, params=None):
    w = cost.Workload.build(n, 120, 10_000)
    return cost.estimate(variant, w, cost.CommProfile.radixnet(n, 120, p), params, memory_mb=MEM)


def test_model_predicts_paper_counters_for_1024_queue():
    e = _predict("queue", 1024, 8)
    assert e.counts.bytes_sent == pytest.approx(104e6, rel=0.05)  # paper: 104 MB
    assert e.counts.messages == pytest.approx(6774, rel=0.02)  # paper: 6,774 messages
    assert e.counts.requests["sns:PublishBatch"] == pytest.approx(1102, rel=0.15)  # paper: 1,102 calls
    assert e.counts.requests["sqs:ReceiveMessage"] == pytest.approx(4318, rel=0.05)  # paper: 4,318 polls


def test_model_reproduces_the_papers_cheaper_variant():
    assert _predict("queue", 1024, 8).cost_usd < _predict("object", 1024, 8).cost_usd
    assert _predict("object", 16384, 8).cost_usd < _predict("queue", 16384, 8).cost_usd
    for n in (1024, 4096, 16384):  # at 62 workers queue is cheaper for every size
        assert _predict("queue", n, 62).cost_usd < _predict("object", n, 62).cost_usd, n


def test_calibration_fits_paper_runs_and_still_orders_62_workers():
    records = [{"variant": v, "neurons": n, "layers": 120, "batch": 10_000, "workers": 8, "memory_mb": MEM,
                "seconds": PAPER_SECONDS[v, n]} for v, n in PAPER_SECONDS]
    start = cost.Params(madds_per_s=1e9, queue_bytes_per_s=1e8)
    fitted, report = cost.calibrate(records, start)
    assert set(report["fitted"]) >= {"madds_per_s", "queue_bytes_per_s"}
    assert fitted.queue_bytes_per_s < 1e7 and fitted.madds_per_s < 1e9
    resid = dict(zip(PAPER_SECONDS, report["relative_residuals"]))
    assert abs(resid["queue", 16384]) < 0.05 and abs(resid["object", 16384]) < 0.05
    for n in (1024, 4096, 16384):
        assert _predict("queue", n, 62, fitted).cost_usd < _predict("object", n, 62, fitted).cost_usd
    with pytest.raises(InputError):
        cost.calibrate(records, fit=["nonsense"])


# --------------------------------------------------------------------------- recommend, sporadic


def test_recommend_json_contract_and_speed(capsys):
    t0 = time.perf_counter()
    rc = main(["recommend", "--neurons", "65536", "--layers", "1920", "--batch", "10000",
               "--workers", "2-1000", "--json"])
    elapsed = time.perf_counter() - t0
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and elapsed < 1.5  # well under a second on an idle core; no model is built
    assert set(out) >= {"recommended", "reason", "rows", "crossover_workers"}
    for row in out["rows"]:
        assert set(row) >= {"variant", "workers", "cost_usd", "latency_s", "feasible", "why_not"}
    serial = next(r for r in out["rows"] if r["variant"] == "serial")
    assert not serial["feasible"] and "10,240" in serial["why_not"]  # 32 GB of weights


def test_recommend_crossover_and_latency_target(capsys):
    assert main(["recommend", "--neurons", "16384", "--layers", "120", "--batch", "10000",
                 "--workers", "2-128", "--memory", "4096", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    x = out["crossover_workers"]
    assert out["crossover"]["below"] == "object" and out["crossover"]["above"] == "queue"
    w = cost.Workload.build(16384, 120, 10_000)
    q = lambda p: cost.estimate("queue", w, cost.CommProfile.radixnet(16384, 120, p), memory_mb=4096).cost_usd  # noqa
    o = lambda p: cost.estimate("object", w, cost.CommProfile.radixnet(16384, 120, p), memory_mb=4096).cost_usd  # noqa
    assert q(x) < o(x) and q(x - 1) >= o(x - 1)
    assert main(["recommend", "--neurons", "1024", "--layers", "120", "--batch", "1000", "--workers", "8",
                 "--latency-target", "0.001", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recommended"] is None and all("target" in r["why_not"] for r in out["rows"])


def test_sporadic_break_even_and_job_scoped():
    params = cost.Params()
    server = {"instance": "x", "usd_per_hour": 0.36, "query_s": 10.0, "load_s": 5.0}
    s = cost.sporadic(0.005, 2.0, server, params, burst_size=1)
    assert s["serverless_usd_per_day"] == pytest.approx(0.24)
    assert s["always_on_usd_per_day"] == pytest.approx(8.64)
    assert s["break_even_queries_per_hour_vs_always_on"] == pytest.approx(72.0)
    assert s["job_scoped_usd_per_query"] == pytest.approx(60 * 0.36 / 3600)  # 60 s minimum
    burst = cost.sporadic(0.005, 2.0, server, params, burst_size=10)
    assert burst["job_scoped_usd_per_query"] == pytest.approx((45 + 5 + 100) * 0.36 / 3600 / 10)
    assert s["cheapest"] == "serverless"
    assert burst["cheapest"] == "job_scoped"
    busy = cost.sporadic(0.005, 1000.0, server, params)
    assert busy["cheapest"] == "always_on"


@pytest.mark.parametrize("argv, needle", [
    (["--neurons", "-4", "--layers", "3", "--batch", "1"], "--neurons"),
    (["--neurons", "1024", "--layers", "120", "--batch", "0"], "--batch"),
    (["--neurons", "1024", "--layers", "120", "--batch", "100000000", "--workers", "2-8"], "does not fit"),
    (["--neurons", "1024", "--layers", "120", "--batch", "10", "--region", "eu-west-1"], "eu-west-1"),
    (["--neurons", "1024", "--layers", "120", "--batch", "10", "--workers", "9-3"], "--workers"),
    (["--neurons", "1024", "--batch", "10"], "--layers"),
])
def test_recommend_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert main(["recommend", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_recommend_malformed_price_file(tmp_path, capsys):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"prices": {"sns_publish": "cheap"}}))
    assert main(["recommend", "--neurons", "1024", "--layers", "120", "--batch", "10", "--prices", str(f)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "sns_publish" in err and err.count("\n") == 1


def test_calibrate_cli_roundtrip(tmp_path, capsys):
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps([{"variant": v, "neurons": n, "layers": 120, "batch": 10_000, "workers": 8,
                                 "memory_mb": MEM, "seconds": s} for (v, n), s in PAPER_SECONDS.items()]))
    out = tmp_path / "params.json"
    assert main(["calibrate", str(runs), "--out", str(out), "--json"]) == 0
    fitted = json.loads(out.read_text())["params"]
    capsys.readouterr()
    assert main(["recommend", "--neurons", "1024", "--layers", "120", "--batch", "10000", "--workers", "8",
                 "--params", str(out), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["params"]["queue_bytes_per_s"] == pytest.approx(fitted["queue_bytes_per_s"])


def test_recommend_from_model_manifest_and_exact_plan(tmp_path, capsys):
    from fsd_core.model.radixnet import radixnet

    radixnet(256, 12, seed=1).save(tmp_path / "m")
    assert main(["recommend", "--model", str(tmp_path / "m"), "--batch", "64", "--workers", "4", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["inputs"]["neurons"] == 256 and est["inputs"]["layers"] == 12
    assert main(["recommend", "--model", str(tmp_path / "m"), "--batch", "64", "--workers", "4",
                 "--method", "block", "--exact", "--json"]) == 0
    exact = json.loads(capsys.readouterr().out)
    q = next(r for r in exact["rows"] if r["variant"] == "object")
    from fsd_core.model.network import SparseDNN
    from fsd_core.plan.communication import make_plan

    model = SparseDNN.load(tmp_path / "m")
    plan = make_plan(model, 4, "block")
    pairs = sum(len(plan.pairs(model, l).nrows) for l in range(1, 13))
    assert q["requests"]["s3:PutObject"] == pairs + 3  # one object per plan pair, plus the gather


def test_calibrate_from_the_run_store(tmp_path, capsys):
    """Runs recorded by the coordinator feed `fsd calibrate --store` (compute throughput)."""
    from fsd_core.model.radixnet import radixnet, synthetic_inputs
    from fsd_core.run.coordinator import RunConfig, run

    db = tmp_path / "runs.sqlite"
    for layers, batch in ((12, 200), (24, 400)):
        model = radixnet(256, layers, seed=1)
        r = run(RunConfig("m", "x", "serial", 1, runs_db=str(db), model=model,
                          inputs=synthetic_inputs(256, batch, seed=1)))
        assert r.status == "ok"
    out = tmp_path / "params.json"
    code = main(["calibrate", "--store", str(db), "--fit", "madds_per_s", "--out", str(out), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["report"]["records"] == 2
    assert doc["params"]["madds_per_s"] > 0
    assert json.loads(out.read_text())["params"]["madds_per_s"] == doc["params"]["madds_per_s"]
    assert main(["recommend", "--neurons", "256", "--layers", "24", "--batch", "400", "--workers", "2",
                 "--params", str(out)]) == 0


def test_the_cost_model_knows_the_frame_header_size():
    from fsd_core.channels.frames import HEADER

    assert cost.FRAME_HEADER_BYTES == HEADER.size
