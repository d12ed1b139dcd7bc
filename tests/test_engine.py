"""The distributed engine equals the serial kernel exactly; failures fail fast and clean."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsd_core.cli import main
from fsd_core.kernel.rows import Rows
from fsd_core.kernel.serial import infer
from fsd_core.model.network import SparseDNN
from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.plan.communication import make_plan
from fsd_core.run.coordinator import RunConfig, TestHooks, activations_equal, run
from fsd_core.run.records import RunStore

from .conftest import random_inputs, random_model
from .engine_harness import run_threads


def assert_exact(model, inputs, final):
    ref = infer(model, inputs)
    assert activations_equal(ref.activations, final)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.sampled_from([16, 40, 64]), layers=st.integers(1, 5), batch=st.integers(1, 30),
       workers=st.integers(1, 6), method=st.sampled_from(["block", "random", "metis"]),
       per_layer=st.booleans(), seed=st.integers(0, 1000), arrived=st.sampled_from([None, False, True]))
def test_worker_threads_equal_serial_on_random_networks(n, layers, batch, workers, method, per_layer, seed, arrived):
    """(`arrived`: interior blocks made ahead as the channel finds the messages, or all of
    them, or none.)"""
    model = random_model(n, layers, 0.15, seed)
    inputs = random_inputs(batch, n, 0.3, seed + 1)
    out = run_threads(model, inputs, workers, method, per_layer, seed, arrived)
    assert_exact(model, inputs, out[0].final)
    for p, o in out.items():
        assert (o.final is None) == (p != 0)
        assert [s.layer for s in o.layers] == list(range(1, layers + 2))


def test_rows_a_layer_made_equal_are_merged_before_the_next_product():
    """P=2 on a dense network (no interior columns: every output needs both workers' rows):
    the rows a layer makes equal (saturating) are merged before the next layer's product, and
    the rows it kills are not computed (a row zero on a worker's neurons is not held there), so
    each product runs on the distinct non-zero rows of its input, as the serial kernel's."""
    model = random_model(32, 5, 1.0, 1)
    rng = np.random.default_rng(2)
    x = (rng.random((80, 32)) * (10.0 ** rng.uniform(-2.5, 0.5, (80, 1)))).astype(np.float32)
    inputs = sp.csr_matrix(x)
    plan = make_plan(model, 2, "block")
    assert all(not len(ls.split.interior) for s in plan.shards(model) for ls in s.layers[1:])
    assert x.any(axis=1).all()

    def live_distinct(y: np.ndarray) -> int:
        return len(np.unique(y[y.any(axis=1)], axis=0))

    distinct = [live_distinct(x)]  # distinct non-zero rows of Y_0 .. Y_4
    for l in range(1, 5):
        y = infer(SparseDNN(model.weights[:l], model.biases[:l], model.ymax), inputs).activations
        distinct.append(live_distinct(y.toarray()))
    assert all(b <= 0.8 * a for a, b in zip(distinct, distinct[1:]))  # merges worth doing early
    out = run_threads(model, inputs, 2, "block")
    assert_exact(model, inputs, out[0].final)
    for o in out.values():
        assert [s.rows for s in o.layers[:5]] == distinct


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.sampled_from([16, 40]), layers=st.integers(1, 4), batch=st.integers(4, 40),
       workers=st.integers(2, 4), pool=st.integers(1, 3), seed=st.integers(0, 1000))
def test_rows_equal_on_one_workers_neurons_only_stay_exact(n, layers, batch, workers, pool, seed):
    """Rows equal on worker 0's features but not elsewhere: worker 0's labels merge them, its
    peers' labels keep them apart, and the joint row map must follow the peers."""
    model = random_model(n, layers, 0.2, seed)
    rng = np.random.default_rng(seed)
    mine = n // workers  # the block partition gives worker 0 the first features
    x = random_inputs(batch, n, 0.4, seed + 1).toarray()
    x[:, :mine] = random_inputs(pool, mine, 0.5, seed + 2).toarray()[rng.integers(0, pool, batch)]
    inputs = sp.csr_matrix(x)
    plan = make_plan(model, workers, "block")
    first = Rows.of_csr(inputs[:, plan.shards(model)[0].input_cols])
    assert first.labels() is not None  # worker 0 does send labels that merge rows
    out = run_threads(model, inputs, workers, "block")
    assert_exact(model, inputs, out[0].final)


def test_worker_threads_equal_serial_on_real_network(gc_model, gc_inputs):
    model, inputs = gc_model.truncated(30), gc_inputs[:300]
    for workers, method in ((3, "hypergraph"), (8, "random")):
        out = run_threads(model, inputs, workers, method)
        assert_exact(model, inputs, out[0].final)


@pytest.fixture(scope="module")
def small_generated(tmp_path_factory):
    model = radixnet(256, 24, seed=3)
    inputs = synthetic_inputs(256, 60, seed=3)
    return model, inputs


# The grid: P in {1, 2, 3, 4, 8, 16} x every partitioner x b in {2, 4}, through real
# worker processes (the Lambda handler run by the local launcher).
GRID = [(p, m, b) for p in (1, 2, 3, 4, 8, 16) for m in ("block", "random", "metis", "hypergraph") for b in (2, 4)]


@pytest.mark.parametrize("workers,method,branching", GRID)
def test_local_processes_equal_serial_generated(small_generated, workers, method, branching):
    model, inputs = small_generated
    r = run(RunConfig(None, None, "local", workers, method, branching=branching, verify=True,
                      record=False, model=model, inputs=inputs, timeout=30))
    assert r.status == "ok", r.error
    assert r.verified is True
    assert_exact(model, inputs, r.activations)
    assert len(r.worker_reports) == workers and all(w["status"] == "ok" for w in r.worker_reports)


@pytest.mark.parametrize("workers,method,branching", [(p, m, b) for p, m, b in GRID if (p + b) % 3 != 1])
def test_local_processes_equal_serial_imported(gc_model, gc_inputs, workers, method, branching):
    model, inputs = gc_model.truncated(20), gc_inputs[:200]
    r = run(RunConfig(None, None, "local", workers, method, branching=branching, record=False,
                      model=model, inputs=inputs, timeout=30))
    assert r.status == "ok", r.error
    assert_exact(model, inputs, r.activations)


def _handler_processes(run_id: str) -> list[int]:
    """Pids of live worker processes of one run (by the event in their environment)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if f'"run_id": "{run_id}"'.encode() in env and "State:\tZ" not in status:
            pids.append(int(entry.name))
        elif f'"run_id": "{run_id}"'.encode() in env:
            pids.append(-int(entry.name))  # a zombie: not reaped
    return pids


@pytest.mark.parametrize("kind", ["crash", "hang"])
def test_failed_worker_fails_the_run_and_leaves_no_process(small_generated, kind, tmp_path):
    model, inputs = small_generated
    db = tmp_path / "runs.sqlite"
    r = run(RunConfig(None, None, "local", 6, "block", branching=2, timeout=3, runs_db=str(db),
                      model=model, inputs=inputs), hooks=TestHooks(fault={"worker": 4, "layer": 5, "kind": kind}))
    assert r.status == "failed"
    assert "worker 4" in r.error and ("layer 5" in r.error or "exited without a report" in r.error), r.error
    assert _handler_processes(r.run_id) == []
    rec = RunStore(db).get(r.run_id)
    assert rec["status"] == "failed" and "worker 4" in rec["error"]


def test_run_record_has_per_worker_per_layer_rows(small_generated, tmp_path):
    model, inputs = small_generated
    db = tmp_path / "runs.sqlite"
    r = run(RunConfig("m", "x", "local", 3, "block", runs_db=str(db), model=model, inputs=inputs))
    rec = RunStore(db).get(r.run_id)
    assert rec["status"] == "ok" and rec["workers"] == 3 and rec["variant"] == "local"
    assert rec["categories"] == (r.categories + 1).tolist()
    assert len(rec["workers_detail"]) == 3
    assert all(w["started_at"] >= w["requested_at"] for w in rec["workers_detail"])
    for w in r.worker_reports:  # every worker measured itself (numpy and its shard alone take MBs)
        res = w["resources"]
        assert res["max_rss_mb"] > 10 and res["cpu_user_s"] > 0 and res["minor_faults"] > 0, res
    layers = rec["layers_detail"]
    assert len(layers) == 3 * (model.layers + 1)
    assert sum(l["bytes_sent"] for l in layers) == r.bytes_sent > 0
    assert sum(l["messages_received"] for l in layers) == sum(l["messages_sent"] for l in layers)


def test_fsd_run_json_follows_the_contract(tmp_path, capsys, small_generated):
    model, inputs = small_generated
    model.save(tmp_path / "m")
    from fsd_core.model.tsv import write_triples

    write_triples(tmp_path / "x.tsv", inputs, value_fmt="%d")
    code = main(["run", "--model", str(tmp_path / "m"), "--inputs", str(tmp_path / "x.tsv"), "--variant", "local",
                 "--workers", "3", "--verify", "--json", "--categories-out", str(tmp_path / "c.tsv")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("run_id", "status", "variant", "workers", "seconds", "edges_per_second", "categories",
                "bytes_sent", "messages", "requests", "billed_requests", "cost_usd", "predicted"):
        assert key in out
    assert out["status"] == "ok" and out["verified"] is True and out["workers"] == 3
    ref = infer(model, inputs).categories + 1
    assert out["categories"] == ref.tolist()
    assert np.loadtxt(tmp_path / "c.tsv", dtype=int, ndmin=1).tolist() == ref.tolist()


def test_fsd_run_serial_goes_through_the_same_path(tmp_path, capsys, small_generated):
    model, inputs = small_generated
    model.save(tmp_path / "m")
    from fsd_core.model.tsv import write_triples

    write_triples(tmp_path / "x.tsv", inputs, value_fmt="%d")
    code = main(["run", "--model", str(tmp_path / "m"), "--inputs", str(tmp_path / "x.tsv"), "--variant",
                 "serial", "--verify", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["variant"] == "serial" and out["verified"] is True
    assert RunStore().get(out["run_id"])["variant"] == "serial"


def test_bad_worker_counts_are_refused(tmp_path, capsys, small_generated):
    model, inputs = small_generated
    model.save(tmp_path / "m")
    (tmp_path / "x.tsv").write_text("1\t1\t1\n")
    for bad in ("0", "257"):
        code = main(["run", "--model", str(tmp_path / "m"), "--inputs", str(tmp_path / "x.tsv"),
                     "--variant", "local", "--workers", bad])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "workers" in err
