"""Cost model: prices (INIT, arm64, S3 Express), exact request prediction, the latency model,
the paper's findings and times, the frontier and its rule, recommend's speed and O(1) depth."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd_core.aws.limits import max_frame_bytes_for_sns, pack_batches, wire_size
from fsd_core.cli import main
from fsd_core.cost import latency, paper
from fsd_core.cost import model as cost
from fsd_core.cost.params import SOURCES, Params
from fsd_core.cost.prices import default_table, load_prices
from fsd_core.cost.serving import Serving, deploy_cost, price_workers
from fsd_core.errors import InputError

PR = default_table()
MEM = paper.ASSUMED_MEMORY_MB  # assumed Lambda memory of the paper's priced runs (docs/cost-model.md)
DOC = Path(__file__).resolve().parent.parent / "docs" / "cost-model.md"

# --------------------------------------------------------------------------- prices


def test_default_prices_have_region_date_source():
    assert PR.region == "us-east-1"
    assert PR["lambda_gb_second_x86"] == pytest.approx(0.0000166667)
    assert PR["lambda_gb_second_arm64"] == pytest.approx(0.0000133334)
    assert PR["sns_publish"] == pytest.approx(0.5e-6) and PR["sqs_request"] == pytest.approx(0.4e-6)
    assert PR["s3_put"] == pytest.approx(5e-6) and PR["s3_get"] == pytest.approx(4e-7)
    assert PR["s3express_put"] == pytest.approx(0.00113 / 1000) and PR["s3express_get"] == pytest.approx(0.00003 / 1000)
    assert PR["s3express_upload_gb"] == pytest.approx(0.0032) and PR["s3express_retrieve_gb"] == pytest.approx(0.0006)
    for p in PR.prices.values():
        assert p.region and re.fullmatch(r"\d{4}-\d\d-\d\d", p.date) and p.source.startswith("https://")
    assert PR.prices["s3express_put"].date == "2025-04-10"
    rule = PR.rules["lambda_init_billed"]
    assert rule.value and rule.date == "2025-08-01" and "init" in rule.source.lower()
    assert all(i.usd_per_hour > 0 and i.source for i in PR.instances.values())


def test_price_file_overrides_and_errors(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"region": "us-east-1", "date": "2030-01-01", "prices": {"s3_put": 1e-5},
                             "rules": {"lambda_init_billed": False}}))
    t = load_prices(f)
    assert t["s3_put"] == 1e-5 and t.prices["s3_put"].date == "2030-01-01" and not t.init_billed
    assert t["s3_get"] == PR["s3_get"]
    f.write_text(json.dumps({"region": "eu-west-1", "prices": {"s3_put": 1e-5}}))
    with pytest.raises(InputError, match="lambda_gb_second_x86"):
        load_prices(f)
    # another region may leave S3 Express out: express is then refused, not priced with us-east-1's
    required = {k: PR[k] for k in PR.prices if not k.startswith("s3express")}
    f.write_text(json.dumps({"region": "eu-west-1", "prices": required}))
    eu = load_prices(f)
    w = cost.Workload.build(1024, 12, 100)
    with pytest.raises(InputError, match="Express"):
        cost.evaluate("object", w, cost.radixnet_comm(w, [4]), prices=eu, storage="express")
    for bad, needle in (({"prices": {"s3_put": -1}}, r"prices\.s3_put\.usd"), ({"rules": {"nope": True}}, "nope"),
                        ({"rules": {"lambda_init_billed": "yes"}}, "lambda_init_billed")):
        f.write_text(json.dumps(bad))
        with pytest.raises(InputError, match=needle):
            load_prices(f)
    f.write_text("{not json")
    with pytest.raises(InputError, match="p.json"):
        load_prices(f)
    with pytest.raises(InputError, match="eu-west-1"):
        load_prices(None, "eu-west-1")


def test_init_phase_is_billed_for_cold_workers_unless_the_rule_is_off(tmp_path):
    w = cost.Workload.build(1024, 24, 200)
    comm = cost.radixnet_comm(w, [4])
    e = cost.estimate("queue", w, comm, memory_mb=2048)
    prm = Params()
    init_s = 4 * (prm.runtime_init_s + prm.import_s)
    assert e.breakdown["lambda_init"] == pytest.approx(init_s * 2.0 * PR["lambda_gb_second_x86"])
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"rules": {"lambda_init_billed": False}}))
    off = cost.estimate("queue", w, comm, prices=load_prices(f), memory_mb=2048)
    assert "lambda_init" not in off.breakdown
    assert off.cost_usd == pytest.approx(e.cost_usd - e.breakdown["lambda_init"])
    # the exact-count pricing bills INIT the same way
    usd = cost.dollars({}, [1.0], 1024, init_seconds=[0.5])
    assert usd == pytest.approx(1.5 * PR["lambda_gb_second_x86"], rel=1e-3)


def test_arm64_prices_lambda_time_lower_at_the_same_speed():
    w = cost.Workload.build(4096, 60, 1000)
    comm = cost.radixnet_comm(w, [8])
    x86 = cost.estimate("object", w, comm, memory_mb=2048, arch="x86_64")
    arm = cost.estimate("object", w, comm, memory_mb=2048, arch="arm64")
    assert arm.seconds == x86.seconds  # arm64_speed = 1 (docs: unmeasured for these kernels)
    ratio = PR["lambda_gb_second_arm64"] / PR["lambda_gb_second_x86"]
    assert arm.breakdown["lambda_compute"] == pytest.approx(x86.breakdown["lambda_compute"] * ratio)
    assert arm.breakdown["s3:PutObject"] == x86.breakdown["s3:PutObject"]
    slow = cost.estimate("object", w, comm, Params(arm64_speed=0.5), memory_mb=2048, arch="arm64")
    assert slow.time_terms["compute"] > arm.time_terms["compute"]


def test_express_prices_requests_and_every_byte_and_is_faster():
    w = cost.Workload.build(4096, 60, 1000)
    comm = cost.radixnet_comm(w, [16])
    std = cost.estimate("object", w, comm, memory_mb=2048)
    exp = cost.estimate("object", w, comm, memory_mb=2048, storage="express")
    puts, gets = exp.counts.billed["s3:PutObject"], exp.counts.billed["s3:GetObject"]
    assert exp.breakdown["s3:PutObject"] == pytest.approx(puts * 0.00113 / 1000, rel=1e-4)  # counts are rounded
    assert exp.breakdown["s3:GetObject"] == pytest.approx(gets * 0.00003 / 1000, rel=1e-4)
    gib = exp.counts.bytes_sent / 1024**3
    assert exp.breakdown["s3express:upload_gb"] == pytest.approx(gib * 0.0032, rel=1e-4)
    assert exp.breakdown["s3express:retrieve_gb"] == pytest.approx(gib * 0.0006, rel=1e-4)
    assert exp.seconds < std.seconds and exp.cost_usd < std.cost_usd
    assert cost.api_price("s3:DeleteObjects", PR, "express") == 0.0
    assert cost.api_price("s3:ListObjectsV2", PR, "express") == PR["s3express_put"]


def test_express_moves_the_queue_object_crossover(capsys):
    """Object's cost is PUT-dominated (about P^2 L keys): Express's cheaper PUTs move the cross-over up."""
    argv = ["recommend", "--neurons", "16384", "--layers", "120", "--batch", "1000", "--workers", "2-256",
            "--memory", "2048", "--arch", "x86_64", "--json"]
    assert main(argv) == 0
    std = json.loads(capsys.readouterr().out)["crossover"]
    assert main(argv + ["--storage", "express"]) == 0
    exp = json.loads(capsys.readouterr().out)["crossover"]
    # S3 Standard: queue is cheaper at every P (object's PUTs); Express: object is cheaper at small P
    object_upto = lambda x: (x["workers"] - 1 if x["below"] == "object" else 1) if x["workers"] else (
        x["range"][1] if x.get("cheaper_everywhere") == "object" else 1)
    assert object_upto(exp) > object_upto(std) and object_upto(exp) >= 2


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
    assert cost.lambda_gb_seconds([0.0001], 1024) == pytest.approx(0.001)  # Lambda bills whole milliseconds
    with pytest.raises(InputError):
        cost.dollars({"ec2:RunInstances": 1}, [1.0], 1024)
    assert cost.api_price("s3:DeleteObjects", PR) == 0.0


def test_estimate_queue_counts_match_exact_packing_for_uniform_frames():
    """The analytic queue counts equal predict_requests on the frames they assume."""
    prm = Params()
    b = 8000
    w = cost.Workload.build(1024, 3, b, density=0.05)
    comm = cost.CommProfile(np.array([4]), np.full((1, 3), 1024.0), np.full((1, 3), 12.0), "test")
    e = cost.estimate("queue", w, comm, prm, memory_mb=2048)
    rounds = []
    for changed in (1.0, 0.0, 0.0):  # the row map travels in the first layer only (every row stays distinct)
        per_msg = float(latency.wire_bytes(prm, 12.0, 1024 * float(b), 0.05, changed, float(b))) / 12
        rounds.append([(s, d, round(per_msg)) for s in range(4) for d in range(4) if s != d])
    gather = float(latency.wire_bytes(prm, 3.0, 1024 * 3 / 4 * float(b), 0.05, 1.0, float(b))) / 3
    assert gather > max_frame_bytes_for_sns(cost.DEFAULT_ATTR_BYTES)  # chunked in two frames
    rounds.append([(s, 0, round(gather / 2)) for s in range(1, 4) for _ in range(2)])
    exact = cost.predict_requests("queue", rounds, 4, cost.DEFAULT_ATTR_BYTES)
    assert exact.requests["sns:PublishBatch"] > 4 * 3 + 3
    assert e.counts.requests["sns:PublishBatch"] == exact.requests["sns:PublishBatch"]
    assert e.counts.billed["sns:PublishBatch"] == exact.billed["sns:PublishBatch"]
    assert e.counts.bytes_sent == pytest.approx(exact.bytes_sent, abs=16)


# --------------------------------------------------------------------------- the latency model


def test_vectorised_evaluation_equals_one_worker_count_at_a_time():
    w = cost.Workload.build(4096, 200, 2000)
    ps = [2, 3, 7, 16, 64, 255]
    for variant in ("queue", "object"):
        ev = cost.evaluate(variant, w, cost.radixnet_comm(w, ps), memory_mb=3008)
        for i, p in enumerate(ps):
            one = cost.estimate(variant, w, cost.radixnet_comm(w, [p]), memory_mb=3008)
            assert ev.seconds[i] == pytest.approx(one.seconds) and ev.cost[i] == pytest.approx(one.cost_usd)


def test_grouped_layers_equal_every_layer_one_by_one():
    """O(1) in L: the layers past the profile share rows by place value, with the same totals."""
    for n, layers in ((1024, 200), (16384, 77)):
        grouped = cost.Workload.build(n, layers, 3000)
        every = cost.Workload.build(n, layers, 3000, grouped=False)
        assert grouped.rows.index.size < every.rows.index.size == layers
        assert grouped.rows.count == layers
        for variant in ("serial", "queue", "object"):
            a = cost.estimate(variant, grouped, None if variant == "serial" else cost.radixnet_comm(grouped, [12]))
            b = cost.estimate(variant, every, None if variant == "serial" else cost.radixnet_comm(every, [12]))
            assert a.seconds == pytest.approx(b.seconds, rel=1e-9) and a.cost_usd == pytest.approx(b.cost_usd, rel=1e-9)
            assert a.counts.requests == b.counts.requests
    deep = cost.Workload.build(65536, 10**8, 10_000)
    assert deep.rows.index.size <= 40 and deep.rows.count == 10**8


def test_a_layer_overlaps_interior_compute_with_messages_in_flight():
    """Interior columns compute while the messages travel: when they are all interior and the
    compute is longer, only the encoding and decoding remain exposed."""
    w = cost.Workload.build(16384, 30, 10_000, density=0.2, grouped=False)
    comm = cost.radixnet_comm(w, [16])
    slow = dataclasses.replace(Params(), dense_madds_per_s=1e7)
    inside = cost.estimate("object", w, dataclasses.replace(comm, interior=np.ones_like(comm.pairs)), slow, memory_mb=2048)
    outside = cost.estimate("object", w, dataclasses.replace(comm, interior=np.zeros_like(comm.pairs)), slow,
                            memory_mb=2048)
    per_worker = (inside.counts.bytes_sent - 0) / 16
    codec = per_worker / slow.encode_bytes_per_s + per_worker / slow.decode_bytes_per_s
    assert inside.time_terms["communication"] <= codec * 1.01
    assert outside.time_terms["communication"] > inside.time_terms["communication"] + 30 * slow.s3_request_s


def test_launch_tree_cold_starts_and_p99():
    prm = Params()
    w = cost.Workload.build(1024, 12, 100)
    e1 = cost.estimate("queue", w, cost.radixnet_comm(w, [2]))
    e64 = cost.estimate("queue", w, cost.radixnet_comm(w, [64]))
    step = prm.branching * prm.invoke_s + prm.cold_start_s + prm.runtime_init_s + prm.import_s
    assert e64.time_terms["launch"] - e1.time_terms["launch"] == pytest.approx(
        (cost.launch_rounds(64, 2) - cost.launch_rounds(2, 2)) * step)
    assert e64.seconds_p99 > e64.seconds


def test_the_issue_example_is_now_priced_for_this_system():
    """The real 1024 network on 1,200 MNIST inputs: the paper-fitted model said 7.2 s serial; a
    local run takes well under a second, and so does the model."""
    w = cost.Workload.build(1024, 120, 1200)
    serial = cost.estimate("serial", w, None, memory_mb=1769)
    assert serial.time_terms["compute"] < 1.0


# --------------------------------------------------------------------------- the paper's findings


PAPER_USD, PAPER_COUNTS = paper.PAPER_USD, paper.PAPER_COUNTS
PAPER_SECONDS = {k: round(v, 1) for k, v in paper.paper_seconds(MEM).items()}


def _paper_usd(key):
    return cost.dollars(PAPER_COUNTS[key], [PAPER_SECONDS[key]] * 8, MEM)


def test_paper_counters_price_to_the_paper_dollars():
    assert PAPER_SECONDS == {("queue", 1024): 31.7, ("object", 1024): 30.4, ("queue", 16384): 463.6,
                             ("object", 16384): 104.6}
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


def _paper_predict(variant, n, p, params=None):
    w = cost.Workload.build(n, 120, 10_000, profile="paper")
    return cost.estimate(variant, w, cost.radixnet_comm(w, [p]), params or Params.paper(), memory_mb=MEM)


def test_the_papers_implementation_predicts_its_counters_for_1024_queue():
    e = _paper_predict("queue", 1024, 8)
    assert e.counts.bytes_sent == pytest.approx(104e6, rel=0.05)  # paper: 104 MB
    assert e.counts.messages == pytest.approx(6774, rel=0.02)  # paper: 6,774 messages
    assert e.counts.requests["sns:PublishBatch"] == pytest.approx(1102, rel=0.15)  # paper: 1,102 calls
    assert e.counts.requests["sqs:ReceiveMessage"] == pytest.approx(4318, rel=0.05)  # paper: 4,318 polls


def test_the_papers_cheaper_variant_at_1024_and_at_62_workers():
    assert _paper_predict("queue", 1024, 8).cost_usd < _paper_predict("object", 1024, 8).cost_usd
    for n in (1024, 4096, 16384):  # at 62 workers queue is cheaper for every size
        assert _paper_predict("queue", n, 62).cost_usd < _paper_predict("object", n, 62).cost_usd, n


def test_fed_the_papers_counters_the_model_lands_near_its_times():
    """docs/cost-model.md: with the overheads measured here, within +60 % of the two runs that have
    counters (over 90 % of it communication); with the codec speed fitted on the queue run, the
    object run within 10 %. The 16384 runs have no counters (docs explains their gap)."""
    rows = {(r["variant"], r["neurons"]): r for r in paper.comparison()}
    for key in (("queue", 1024), ("object", 1024)):
        r = rows[key]
        assert r["counters"] and 0 < r["relative_error"] < 0.6, r
        assert (r["terms"]["communication"] + r["terms"]["gather"]) / r["model_s"] > 0.9
    assert rows["queue", 1024]["paper_s"] == pytest.approx(63.4, abs=0.1)  # issue 26's 63.5 s
    factor, fitted = paper.fitted_codec()
    assert 1.0 < factor < 3.0
    rows = {(r["variant"], r["neurons"]): r for r in paper.comparison(params=fitted)}
    assert abs(rows["queue", 1024]["relative_error"]) < 1e-6
    assert abs(rows["object", 1024]["relative_error"]) < 0.1


def test_calibrating_on_the_paper_runs_keeps_the_62_worker_order():
    records = [{"variant": v, "neurons": n, "layers": 120, "batch": 10_000, "workers": 8, "memory_mb": MEM,
                "seconds": s, "profile": "paper"} for (v, n), s in PAPER_SECONDS.items()]
    fitted, report = cost.fit_totals(records, Params.paper(), ["codec_bytes_per_s", "sqs_request_s"])
    assert set(report["fitted"]) >= {"decode_bytes_per_s", "sqs_request_s"}
    errors = dict(zip(PAPER_SECONDS, report["relative_residuals"]))
    assert abs(errors["queue", 1024]) < 0.15 and abs(errors["object", 1024]) < 0.15
    for n in (1024, 4096, 16384):
        assert _paper_predict("queue", n, 62, fitted).cost_usd < _paper_predict("object", n, 62, fitted).cost_usd
    with pytest.raises(InputError, match="nonsense"):
        cost.fit_totals(records, fit=["nonsense"])


# --------------------------------------------------------------------------- recommend: frontier and rule


def _rec(capsys, *argv):
    assert main(["recommend", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_recommend_json_contract_frontier_rule_and_speed(capsys):
    argv = ["--neurons", 65536, "--layers", 1920, "--batch", 10000, "--workers", "2-1000"]
    _rec(capsys, *argv)  # imports warm
    t0 = time.perf_counter()
    out = _rec(capsys, *argv)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0  # every P of 2-1000, 12 memory sizes, 2 architectures; no model is built
    assert set(out) >= {"recommended", "reason", "rows", "crossover_workers", "frontier", "rule", "per_workers"}
    for row in out["rows"]:
        assert set(row) >= {"variant", "workers", "cost_usd", "latency_s", "feasible", "why_not", "breakdown",
                            "memory_needed_mb", "arch"}
    serial = next(r for r in out["rows"] if r["variant"] == "serial")
    assert not serial["feasible"] and "10,240" in serial["why_not"]  # 32 GB of weights
    front = out["frontier"]
    assert front and all(f["feasible"] for f in front)
    lat, usd = [f["latency_s"] for f in front], [f["cost_usd"] for f in front]
    assert lat == sorted(lat) and usd == sorted(usd, reverse=True) and len(set(usd)) == len(usd)
    rule = out["rule"]
    assert rule["name"] == "cheapest-within-factor" and rule["factor"] == 2.0
    assert rule["fastest_s"] == pytest.approx(min(lat))
    pick = out["pick"]
    assert pick["latency_s"] <= rule["limit_s"] + 1e-9
    assert (pick["variant"], pick["workers"], pick["memory_mb"], pick["arch"]) in \
        {(f["variant"], f["workers"], f["memory_mb"], f["arch"]) for f in front}
    assert all(f["cost_usd"] >= pick["cost_usd"] for f in front if f["latency_s"] <= rule["limit_s"])
    assert out["per_workers"]["workers"] == list(range(2, 1001))  # every P of the range
    assert len(out["per_workers"]["queue"]["cost_usd"]) == 999


def test_the_rule_is_not_always_the_cheapest(capsys):
    """Synthetic inputs that stay alive: serial is cheapest but slow; the rule takes a faster choice."""
    base = ["--neurons", 4096, "--layers", 120, "--batch", 4000, "--density", 0.3, "--workers", "2-64"]
    out = _rec(capsys, *base)
    front = out["frontier"]
    cheapest = front[-1]
    assert len(front) > 1 and cheapest["latency_s"] > 2 * front[0]["latency_s"]
    assert out["pick"]["cost_usd"] > cheapest["cost_usd"] or out["pick"]["latency_s"] <= out["rule"]["limit_s"]
    loose = _rec(capsys, *base, "--latency-factor", 1e6)
    assert loose["pick"]["cost_usd"] == pytest.approx(cheapest["cost_usd"])
    target = front[len(front) // 2]["latency_s"]
    tgt = _rec(capsys, *base, "--latency-target", target)
    assert tgt["rule"]["name"] == "latency-target" and tgt["pick"]["latency_s"] <= target
    assert all(f["cost_usd"] >= tgt["pick"]["cost_usd"] for f in front if f["latency_s"] <= target)


def test_recommend_text_shows_breakdown_memory_frontier_and_the_table(capsys):
    assert main(["recommend", "--neurons", "1024", "--layers", "120", "--batch", "1000", "--workers", "2-6",
                 "--table"]) == 0
    out = capsys.readouterr().out
    assert "cost: lambda_compute $" in out and "memory per worker:" in out and "MB needed" in out
    assert "frontier (" in out and "rule: the cheapest choice within 2x" in out
    for p in range(2, 7):
        assert re.search(rf"^\s+{p}\s+\$", out, re.MULTILINE), p


def test_recommend_crossover_stays_in_the_range_and_latency_target(capsys):
    out = _rec(capsys, "--neurons", 16384, "--layers", 120, "--batch", 10000, "--workers", "2-128", "--memory", 4096,
               "--arch", "x86_64")
    x = out["crossover"]
    if x["workers"] is not None:
        assert 2 <= x["workers"] <= 128 and x["below"] != x["above"]
    else:
        assert 2 <= x["range"][0] <= x["range"][1] <= 128
    out = _rec(capsys, "--neurons", 1024, "--layers", 120, "--batch", 1000, "--workers", 8, "--latency-target", 0.001)
    assert out["recommended"] is None and all("target" in r["why_not"] for r in out["rows"])
    assert "feasible_changes" in out


def test_recommend_memory_options_and_arch(capsys):
    out = _rec(capsys, "--neurons", 4096, "--layers", 120, "--batch", 2000, "--workers", "2-16", "--arch", "arm64")
    assert {f["arch"] for f in out["frontier"]} == {"arm64"}
    assert len({f["memory_mb"] for f in out["frontier"]}) >= 1
    fixed = _rec(capsys, "--neurons", 4096, "--layers", 120, "--batch", 2000, "--workers", "2-16", "--memory", 3008)
    assert {f["memory_mb"] for f in fixed["frontier"]} == {3008}


def test_recommend_depth_is_not_capped_by_memory(capsys):
    """A million layers (the old cap was 100,000): answered as fast as 120 (grouped layers)."""
    t0 = time.perf_counter()
    out = _rec(capsys, "--neurons", 1024, "--layers", 1_000_000, "--batch", 10, "--workers", "64-256")
    assert time.perf_counter() - t0 < 2.0 and out["inputs"]["layers"] == 1_000_000
    assert any("900 s" in (r["why_not"] or "") for r in out["rows"])  # a million layers take more than 15 min


def test_sporadic_break_even_and_job_scoped():
    params = Params()
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
    (["--neurons", "1024", "--layers", "12", "--batch", "10", "--latency-factor", "0.5"], "--latency-factor"),
    (["--neurons", "1024", "--layers", "12", "--batch", "10", "--storage", "glacier"], "--storage"),
    (["--neurons", "1024", "--layers", "12", "--batch", "10", "--inputs", "x.tsv"], "--exact"),
])
def test_recommend_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert main(["recommend", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_recommend_that_does_not_fit_names_more_workers(capsys):
    assert main(["recommend", "--neurons", "65536", "--layers", "1920", "--batch", "10000", "--workers", "2-3"]) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "--workers 2-" in err


def test_recommend_malformed_price_file(tmp_path, capsys):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"prices": {"sns_publish": "cheap"}}))
    assert main(["recommend", "--neurons", "1024", "--layers", "120", "--batch", "10", "--prices", str(f)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "sns_publish" in err and err.count("\n") == 1


def test_calibrate_json_runs_roundtrip_and_recommend_reads_params(tmp_path, capsys):
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps([{"variant": "serial", "neurons": 1024, "layers": 120, "batch": 10_000, "workers": 1,
                                 "memory_mb": 1769, "seconds": s} for s in (3.0, 3.3, 2.7)]))
    out = tmp_path / "params.json"
    assert main(["calibrate", str(runs), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fitted = json.loads(out.read_text())["params"]
    assert all(np.isfinite(v) for v in doc["fitted"].values()) and doc["report"]["worst_relative_error"] < 0.15
    rec = _rec(capsys, "--neurons", 1024, "--layers", 120, "--batch", 10000, "--workers", 8, "--params", out)
    assert rec["params"]["dense_madds_per_s"] == pytest.approx(fitted["dense_madds_per_s"])
    assert rec["inputs"]["params"] == str(out)


def test_recommend_from_model_manifest_and_exact_plan(tmp_path, capsys):
    from fsd_core.model.radixnet import radixnet, synthetic_inputs
    from fsd_core.plan.communication import make_plan
    from fsd_core.run.predict import run_frames

    model = radixnet(256, 12, seed=1)
    model.save(tmp_path / "m")
    est = _rec(capsys, "--model", tmp_path / "m", "--batch", 64, "--workers", 4)
    assert est["inputs"]["neurons"] == 256 and est["inputs"]["layers"] == 12
    exact = _rec(capsys, "--model", tmp_path / "m", "--batch", 64, "--workers", 4, "--method", "block", "--exact",
                 "--memory", 2048)
    q = next(r for r in exact["rows"] if r["variant"] == "object")
    plan = make_plan(model, 4, "block")
    frames = run_frames(model, plan.shards(model), synthetic_inputs(256, 64, seed=0), "object", None)
    assert q["requests"]["s3:PutObject"] == sum(len(r) for r in frames)  # one object per frame, gather included
    assert q["bytes_sent"] == sum(f[2] for r in frames for f in r)
    assert exact["inputs"]["profile"] == "measured"


def test_parameters_have_sources_and_the_doc_lists_them():
    names = [f.name for f in dataclasses.fields(Params)]
    assert set(names) == set(SOURCES)
    doc = DOC.read_text()
    for name, (unit, source) in SOURCES.items():
        assert source.strip(), name
        assert f"`{name}`" in doc, name
    for key in PR.prices:
        assert f"`{key}`" in doc, key


def test_the_cost_model_mirrors_the_code_it_models():
    """The cost model imports no channel or kernel constants; these keep them equal."""
    from fsd_core.channels import object as obj
    from fsd_core.channels import queue
    from fsd_core.channels.frames import HEADER
    from fsd_core.kernel.blocks import DENSE_THRESHOLD
    from fsd_core.run.coordinator import RunConfig

    prm = Params()
    assert cost.FRAME_HEADER_BYTES == HEADER.size
    assert latency.DENSE_THRESHOLD == DENSE_THRESHOLD
    assert prm.object_threads == obj.GET_THREADS == obj.PUT_THREADS
    assert prm.publish_threads == queue.PUBLISH_THREADS and prm.poll_wait_s == queue.DEFAULT_POLL_WAIT
    assert prm.idle_polls_per_s == pytest.approx(1 / prm.poll_wait_s)
    assert prm.branching == RunConfig(None, None).branching


def test_fit_totals_recovers_service_parameters_from_aws_like_runs():
    """`fsd calibrate --aws`: run totals generated with other service figures give them back."""
    truth = dataclasses.replace(Params(), sqs_request_s=0.05, s3_request_s=0.012, bandwidth_bytes_per_s=30e6)
    records = []
    for variant in ("queue", "object"):
        for n, p, b in ((4096, 8, 2000), (16384, 16, 1000), (4096, 32, 500), (16384, 4, 4000)):
            w = cost.Workload.build(n, 120, b, density=0.1)
            secs = cost.estimate(variant, w, cost.radixnet_comm(w, [p]), truth, memory_mb=2048).seconds
            records.append({"variant": variant, "neurons": n, "layers": 120, "batch": b, "workers": p,
                            "memory_mb": 2048, "seconds": secs, "density": 0.1})
    fitted, report = cost.fit_totals(records, Params(), ["sqs_request_s", "s3_request_s", "bandwidth_bytes_per_s"])
    assert report["worst_relative_error"] < 0.02
    assert fitted.sqs_request_s == pytest.approx(0.05, rel=0.1)
    assert fitted.s3_request_s == pytest.approx(0.012, rel=0.1)
    assert fitted.bandwidth_bytes_per_s == pytest.approx(30e6, rel=0.1)


# --------------------------------------------------------------------------- serving: deploy once, cold and warm

GIB = 1024**3
SIZES = st.lists(st.integers(0, 10 * GIB), max_size=64)


def test_deploy_cost_is_a_put_per_object_and_a_head_to_look_first():
    d = deploy_cost([100, 200, 0])
    assert d.requests == {"s3:HeadObject": 1, "s3:PutObject": 3}
    assert d.bytes == d.stored_bytes == 300 and not d.already_deployed
    assert d.usd == pytest.approx(3 * PR["s3_put"] + PR["s3_get"])
    assert d.storage_usd_per_month == pytest.approx(300 / GIB * 0.023)
    assert "local directory store" in d.note and "S3 standard" in d.note
    assert set(d.as_dict()) >= {"requests", "bytes", "usd", "storage_usd_per_month"}
    exp = deploy_cost([GIB] * 2, storage="express")
    assert exp.usd == pytest.approx(2 * PR["s3express_put"] + PR["s3express_get"] + 2 * PR["s3express_upload_gb"])
    assert exp.storage_usd_per_month == pytest.approx(2 * 0.11)
    assert PR.prices["s3express_storage_gb_month"].date == "2025-04-10"
    assert deploy_cost([5], check_api=None).requests == {"s3:PutObject": 1}
    for bad in ([-1], [1.5], [True]):
        with pytest.raises(InputError, match="non-negative"):
            deploy_cost(bad)


def test_a_redeploy_of_the_same_model_and_plan_writes_nothing():
    again = deploy_cost([100, 200], already_deployed=True)
    assert again.requests == {"s3:HeadObject": 1} and again.bytes == 0 and again.already_deployed
    assert again.usd == pytest.approx(PR["s3_get"])  # the look alone
    assert again.stored_bytes == 300 and again.storage_usd_per_month == deploy_cost([100, 200]).storage_usd_per_month
    assert deploy_cost([100], already_deployed=True, check_api=None).usd == 0.0


@settings(max_examples=60, deadline=None)
@given(sizes=SIZES, more=st.integers(0, GIB), storage=st.sampled_from(["standard", "express"]))
def test_deploy_cost_grows_with_bytes_and_a_redeploy_costs_only_the_look(sizes, more, storage):
    d = deploy_cost(sizes, prices=PR, storage=storage)
    bigger = deploy_cost(sizes + [more], prices=PR, storage=storage)
    assert bigger.usd > d.usd and bigger.bytes == d.bytes + more
    assert bigger.storage_usd_per_month >= d.storage_usd_per_month
    again = deploy_cost(sizes, already_deployed=True, prices=PR, storage=storage)
    assert again.bytes == 0 and "s3:PutObject" not in again.requests
    assert again.usd == pytest.approx(deploy_cost([], prices=PR, storage=storage).usd) and again.usd <= d.usd


def _report(worker, start, init_s=0.0, seconds=1.0, loaded=0, shard="loaded"):
    return {"worker": worker, "started_at": 1000.0, "finished_at": 1000.0 + seconds, "start": start,
            "init_s": init_s, "loaded_bytes": loaded, "shard": shard}


def test_price_workers_bills_init_only_for_cold_workers():
    reports = [_report(0, "cold", 0.5, 1.0, 1000), _report(1, "warm", 0.3, 1.0, 10, "cached"),
               {"worker": 2, "status": "missing"}]
    w = price_workers(reports, 2048)
    gbs = PR["lambda_gb_second_x86"] * 2.0
    assert (w.cold.workers, w.warm.workers) == (1, 1) and (w.shards_loaded, w.shards_cached) == (1, 1)
    assert w.init_usd == pytest.approx(0.5 * gbs) and w.warm.init_usd == 0.0 and w.warm.init_s == 0.0
    assert w.usd == pytest.approx((1.5 + 1.0) * gbs) and w.duration_usd == pytest.approx(2.0 * gbs)
    doc = w.as_dict()
    assert doc["cold"] == 1 and doc["warm"] == 1 and doc["loaded_bytes"] == 1010 and doc["init_s"] == 0.5
    assert w.unpriced == doc["unpriced"] == 1  # worker 2 reported no times: the figures are a lower bound
    never = reports[:2] + [{"worker": 2, "status": "not started"}]  # a run stopped before its launch
    assert price_workers(never, 2048).unpriced == 0
    assert doc["by_start"]["cold"]["usd"] == pytest.approx(1.5 * gbs)
    # a price table from before 2025-08-01 bills no INIT; INIT and handler round up to 1 ms together
    off = dataclasses.replace(PR, rules={**PR.rules, "lambda_init_billed": dataclasses.replace(
        PR.rules["lambda_init_billed"], value=False)})
    assert price_workers(reports, 2048, off).init_usd == 0.0
    odd = price_workers([_report(0, "cold", 0.0004, 0.0004)], 1024)
    assert odd.usd == pytest.approx(0.001 * PR["lambda_gb_second_x86"])
    # a report that does not say how it started is cold with no INIT: what it cost before
    old = {"worker": 0, "started_at": 10.0, "finished_at": 12.0, "shard_cached": True}
    assert price_workers([old], 1024).usd == pytest.approx(cost.dollars({}, [2.0], 1024))
    assert price_workers([old], 1024).shards_cached == 1


WORKERS = st.lists(st.tuples(st.sampled_from(["cold", "warm"]), st.floats(0, 5), st.floats(0, 100)), max_size=40)


@settings(max_examples=80, deadline=None)
@given(workers=WORKERS, memory=st.sampled_from([128, 1769, 2048, 10240]))
def test_worker_cost_is_the_sum_of_its_parts_and_init_only_for_cold(workers, memory):
    reports = [_report(i, start, init, secs) for i, (start, init, secs) in enumerate(workers)]
    w = price_workers(reports, memory)
    close = {"rel": 1e-9, "abs": 1e-15}
    assert w.usd == pytest.approx(w.init_usd + w.duration_usd, **close)
    assert w.usd == pytest.approx(w.cold.usd + w.warm.usd, **close)
    assert w.cold.workers + w.warm.workers == len(workers) and w.unpriced == 0
    rate = PR["lambda_gb_second_x86"] * memory / 1024
    cold_init = sum(i for s, i, _ in workers if s == "cold")
    assert w.init_usd == pytest.approx(cold_init * rate, **close) and w.warm.init_usd == 0.0
    durations = [r["finished_at"] - r["started_at"] for r in reports]  # as the reports give them
    # never less than the handlers' time billed alone; at most 1 ms per worker above exact INIT + handler
    assert w.usd >= cost.dollars({}, durations, memory) * (1 - 1e-9)
    assert w.usd <= (cold_init + sum(durations) + 0.001 * len(workers)) * rate * (1 + 1e-9)
    assert w.duration_usd >= sum(durations) * rate * (1 - 1e-9)


def test_the_coordinator_prices_cold_and_warm_workers_in_run_json():
    from fsd_core.run.coordinator import RunResult, _price

    reports = [_report(0, "cold", 0.8, 2.0), _report(1, "warm", 0.0, 2.0, shard="cached")]
    result = RunResult("r", "ok", "queue", 2, 2.5, 1.0, np.zeros(0, np.int64), None,
                       billed_requests={"lambda:Invoke": 2, "sns:PublishBatch": 10, "local:write": 3},
                       worker_reports=reports)
    predicted = {"billed_requests": {"lambda:Invoke": 2, "sns:PublishBatch": 9}}
    _price(result, 2048, predicted)
    wc = result.workers_cost
    assert (wc["cold"], wc["warm"]) == (1, 1) and wc["shards"] == {"loaded": 1, "cached": 1}
    gbs = PR["lambda_gb_second_x86"] * 2.0
    assert wc["init_usd"] == pytest.approx(0.8 * gbs) and wc["duration_usd"] == pytest.approx(4.0 * gbs)
    requests = 2 * PR["lambda_request"] + 10 * PR["sns_publish"]
    assert result.cost_usd == pytest.approx(requests + wc["usd"])
    assert result.predicted["cost_usd"] == pytest.approx(requests - PR["sns_publish"] + wc["usd"])
    assert result.summary()["workers_cost"] == wc  # run --json


def test_a_run_with_a_worker_that_reported_no_times_says_its_cost_is_a_lower_bound(capsys):
    from fsd_core.cli.run import print_summary
    from fsd_core.run.coordinator import RunResult, _price

    reports = [_report(0, "cold", 0.8, 2.0), {"worker": 1, "status": "missing"}]
    result = RunResult("r", "failed", "queue", 2, 2.5, 0.0, np.zeros(0, np.int64), None,
                       billed_requests={"lambda:Invoke": 2}, worker_reports=reports, error="worker 1: crashed")
    _price(result, 2048, None)
    print_summary(result)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  cost ")]
    assert line == (f"  cost        at least ${result.cost_usd:.6f} (1 worker(s) reported no times: what Lambda "
                    f"bills for them is not in it)")
    result.worker_reports = reports[:1]
    _price(result, 2048, None)
    print_summary(result)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  cost ")]
    assert line == f"  cost        ${result.cost_usd:.6f}"


def test_serving_default_keeps_the_figures_warm_skips_init_and_the_shard_load():
    prm = Params()
    w = cost.Workload.build(4096, 60, 1000)
    comm = cost.radixnet_comm(w, [16])
    base = cost.estimate("queue", w, comm, memory_mb=2048)
    cold = cost.estimate("queue", w, comm, memory_mb=2048, serving=Serving(deployed=True, warm=0.0))
    assert cold.cost_usd == pytest.approx(base.cost_usd, rel=1e-12) and cold.seconds == pytest.approx(base.seconds)
    assert base.time_terms["stage"] == 0 and base.staged_bytes == 0 and base.stage_requests == {}
    warm = cost.estimate("queue", w, comm, memory_mb=2048, serving=Serving(warm=1.0))
    rounds = cost.launch_rounds(16, prm.branching)
    assert warm.breakdown["lambda_init"] == 0.0 < base.breakdown["lambda_init"]
    assert warm.time_terms["launch"] == pytest.approx(prm.invoke_s + rounds * prm.branching * prm.invoke_s)
    assert warm.time_terms["load"] == pytest.approx(prm.s3_request_s) and prm.s3_request_s < base.time_terms["load"]
    assert warm.cost_usd < base.cost_usd and warm.seconds < base.seconds
    half = cost.estimate("queue", w, comm, memory_mb=2048, serving=Serving(warm=0.5))
    assert warm.cost_usd < half.cost_usd < base.cost_usd
    assert half.breakdown["lambda_init"] == pytest.approx(base.breakdown["lambda_init"] / 2)
    with pytest.raises(InputError, match="warm"):
        Serving(warm=1.5)


def test_a_query_that_stages_its_model_pays_the_puts_bytes_and_upload_time():
    prm = Params()
    w = cost.Workload.build(4096, 60, 1000)
    for variant, p in (("object", 8), ("serial", 1)):
        comm = None if variant == "serial" else cost.radixnet_comm(w, [p])
        deployed = cost.estimate(variant, w, comm, memory_mb=4096)
        staged = cost.estimate(variant, w, comm, memory_mb=4096, serving=Serving(deployed=False))
        assert staged.stage_requests == {"s3:PutObject": p}
        assert staged.breakdown["stage:s3:PutObject"] == pytest.approx(p * PR["s3_put"])
        assert staged.staged_bytes == pytest.approx(w.total_nnz * prm.shard_bytes_per_nnz)
        upload = p * prm.s3_request_s + staged.staged_bytes / prm.bandwidth_bytes_per_s
        assert staged.time_terms["stage"] == pytest.approx(upload)
        assert staged.seconds == pytest.approx(deployed.seconds + upload)
        # staging happens before the launch: the workers' time, and the channel's requests, are the same
        assert staged.cost_usd == pytest.approx(deployed.cost_usd + p * PR["s3_put"], rel=1e-12)
        assert staged.counts.requests == deployed.counts.requests


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0, 1), b=st.floats(0, 1), deployed=st.booleans())
def test_more_warm_workers_are_never_slower_and_all_warm_is_cheapest(a, b, deployed):
    """Latency and INIT fall as more workers start warm; the total need not fall everywhere (a
    cold worker in a round that already waits for a cold start is billed less of the wait: the
    platform's part of its cold start is unbilled), but all warm is the cheapest."""
    w = cost.Workload.build(1024, 24, 500)
    comm = cost.radixnet_comm(w, [2, 7, 32])
    lo, hi = sorted((a, b))
    fewer = cost.evaluate("object", w, comm, memory_mb=2048, serving=Serving(deployed, lo))
    more = cost.evaluate("object", w, comm, memory_mb=2048, serving=Serving(deployed, hi))
    assert np.all(more.seconds <= fewer.seconds + 1e-12)
    assert np.all(more.breakdown["lambda_init"] <= fewer.breakdown["lambda_init"] + 1e-18)
    warm = cost.evaluate("object", w, comm, memory_mb=2048, serving=Serving(deployed, 1.0))
    assert np.all(warm.cost <= fewer.cost * (1 + 1e-12))


def test_recommend_states_its_serving_assumption(capsys):
    base = ["--neurons", 1024, "--layers", 120, "--batch", 1000, "--workers", "2-16", "--memory", 2048]
    default = _rec(capsys, *base)
    assert default["serving"]["deployed"] is True and default["serving"]["warm_fraction"] == 0.0
    assert "deployed" in default["serving"]["text"] and "every worker cold" in default["serving"]["text"]
    assert _rec(capsys, *base, "--deployed")["cost_usd"] == default["cost_usd"]
    staged = _rec(capsys, *base, "--staged", "--warm", 1)
    assert staged["serving"]["deployed"] is False and staged["serving"]["warm_fraction"] == 1.0
    assert set(staged) >= set(default) - {"sporadic", "feasible_changes"}
    assert staged["pick"]["breakdown"]["stage:s3:PutObject"] > 0 and staged["pick"]["staged_bytes"] > 0
    assert main(["recommend", *map(str, base), "--warm", "0.5"]) == 0
    assert "assumes: the model deployed once" in capsys.readouterr().out
    assert main(["recommend", *map(str, base), "--warm", "2"]) == 2
    assert main(["recommend", *map(str, base), "--staged", "--deployed"]) == 2
