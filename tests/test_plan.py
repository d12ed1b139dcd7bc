"""Communication plans: shards reassemble the model, sends match receives, volume is exact."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsd_core.errors import InputError
from fsd_core.model.network import SparseDNN
from fsd_core.plan.communication import Plan, WorkerShard, make_plan


def random_model(n: int, layers: int, density: float, seed: int) -> SparseDNN:
    rng = np.random.default_rng(seed)
    weights = [sp.random(n, n, density=density, format="csr", random_state=rng, dtype=np.float32)
               for _ in range(layers)]
    biases = [rng.standard_normal(n).astype(np.float32) for _ in range(layers)]
    return SparseDNN(weights, biases)


def brute_volume(model: SparseDNN, owners: np.ndarray) -> int:
    """The contract's definition, one (layer, row) at a time with Python sets."""
    total = 0
    for l, w in enumerate(model.weights, start=1):
        dense = w.toarray() != 0
        for i in range(model.neurons):
            receivers = {int(owners[l][j]) for j in np.flatnonzero(dense[i])}
            receivers.discard(int(owners[l - 1][i]))
            total += len(receivers)
    return total


def check_plan(model: SparseDNN, plan: Plan) -> None:
    n, P = model.neurons, plan.workers
    shards = plan.shards(model)
    by_id = {s.worker: s for s in shards}
    for l, w in enumerate(model.weights, start=1):
        prev_cols = {p: (shards[p].input_cols if l == 1 else shards[p].layers[l - 2].cols) for p in range(P)}
        rebuilt = sp.csr_matrix((n, n), dtype=np.float32)
        covered = np.zeros(n, dtype=int)
        for s in shards:
            ls = s.layers[l - 1]
            assert np.array_equal(ls.cols, np.flatnonzero(plan.owners[l] == s.worker))
            assert np.array_equal(ls.bias, model.biases[l - 1][ls.cols])
            # R is exactly the rows with a non-zero in S.
            assert np.array_equal(ls.rows, np.flatnonzero(np.diff(w[:, ls.cols].tocsr().indptr) > 0)
                                  if len(ls.cols) else np.zeros(0, int))
            coo = ls.weights.tocoo()
            rebuilt = rebuilt + sp.csr_matrix((coo.data, (ls.rows[coo.row], ls.cols[coo.col])), shape=(n, n))
            covered[ls.cols] += 1
            # Every row of R arrives exactly once: locally or from exactly one remote sender.
            arrivals = np.zeros(len(ls.rows), dtype=int)
            arrivals[ls.local_dst] += 1
            assert np.array_equal(prev_cols[s.worker][ls.local_src], ls.rows[ls.local_dst])
            assert s.worker not in ls.send and s.worker not in ls.recv
            for q, pos in ls.recv.items():
                assert len(pos) > 0
                arrivals[pos] += 1
                sent = by_id[q].layers[l - 1].send[s.worker]
                # q's send[p] names the same global rows, in the same order, as p's recv[q].
                assert np.array_equal(prev_cols[q][sent], ls.rows[pos])
                assert np.all(np.diff(ls.rows[pos]) > 0)
                assert np.all(plan.owners[l - 1][ls.rows[pos]] == q)
            assert np.all(arrivals == 1)
            for q, pos in ls.send.items():
                assert len(pos) > 0 and s.worker in by_id[q].layers[l - 1].recv
        assert np.all(covered == 1)
        assert (rebuilt != w).nnz == 0
    assert plan.metrics(model)["volume_rows"] == brute_volume(model, plan.owners)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 24), layers=st.integers(1, 4), density=st.floats(0.0, 0.5), seed=st.integers(0, 10**6),
       data=st.data())
def test_plan_properties_random_owners(n, layers, density, seed, data):
    """Any owners array at all (even unbalanced, with idle workers) gives a consistent plan."""
    model = random_model(n, layers, density, seed)
    workers = data.draw(st.integers(1, n))
    rng = np.random.default_rng(seed)
    owners = rng.integers(0, workers, size=(layers + 1, n)).astype(np.int32)
    check_plan(model, Plan(owners, workers))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(4, 32), layers=st.integers(1, 3), density=st.floats(0.02, 0.4), seed=st.integers(0, 10**6),
       method=st.sampled_from(["block", "random", "metis", "hypergraph"]), per_layer=st.booleans(), data=st.data())
def test_plan_properties_partitioners(n, layers, density, seed, method, per_layer, data):
    model = random_model(n, layers, density, seed)
    workers = data.draw(st.integers(1, min(n, 6)))
    plan = make_plan(model, workers, method, per_layer=per_layer, seed=seed)
    assert plan.owners.shape == (layers + 1, n) and plan.owners.dtype == np.int32
    assert plan.owners.min() >= 0 and plan.owners.max() < workers
    if not per_layer:
        assert (plan.owners == plan.owners[0]).all()
    check_plan(model, plan)


def test_pairs_match_shards_and_metrics():
    model = random_model(40, 3, 0.1, 7)
    plan = make_plan(model, 5, "random", seed=3)
    shards = plan.shards(model)
    messages = 0
    for l in range(1, 4):
        pr = plan.pairs(model, l)
        expected = sorted((s.worker, q, len(pos)) for s in shards for q, pos in s.layers[l - 1].send.items())
        assert sorted(zip(pr.sender.tolist(), pr.receiver.tolist(), pr.nrows.tolist())) == expected
        messages += len(expected)
    m = plan.metrics(model)
    assert m["messages"] == messages
    assert sum(m["volume_per_layer"]) == m["volume_rows"]
    sent = [sum(len(p) for ls in s.layers for p in ls.send.values()) for s in shards]
    recv = [sum(len(p) for ls in s.layers for p in ls.recv.values()) for s in shards]
    assert m["max_send_rows"] == max(sent) and m["max_recv_rows"] == max(recv)
    assert set(m) >= {"method", "workers", "volume_rows", "messages", "max_send_rows", "imbalance", "seconds"}


def test_one_worker_moves_nothing():
    model = random_model(30, 3, 0.2, 1)
    m = make_plan(model, 1, "hypergraph").metrics(model)
    assert m["volume_rows"] == 0 and m["messages"] == 0 and m["imbalance"] == 0


def test_shard_bytes_roundtrip():
    model = random_model(50, 4, 0.08, 2)
    plan = make_plan(model, 4, "metis", per_layer=True)
    for shard in plan.shards(model):
        back = WorkerShard.from_bytes(shard.to_bytes())
        assert (back.worker, back.workers, back.neurons, back.ymax) == (shard.worker, 4, 50, model.ymax)
        assert np.array_equal(back.input_cols, shard.input_cols)
        assert np.array_equal(back.final_cols, shard.final_cols)
        for a, b in zip(shard.layers, back.layers):
            assert a.weights.shape == b.weights.shape and (a.weights != b.weights).nnz == 0
            assert b.weights.dtype == np.float32
            for f in ("bias", "rows", "cols", "local_src", "local_dst"):
                assert np.array_equal(getattr(a, f), getattr(b, f))
            for f in ("send", "recv"):
                x, y = getattr(a, f), getattr(b, f)
                assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
    with pytest.raises(InputError):
        WorkerShard.from_bytes(b"not a shard")


def test_plan_save_load_and_validation(tmp_path):
    model = random_model(20, 2, 0.2, 3)
    plan = make_plan(model, 3, "block")
    path = plan.save(tmp_path / "PLAN.npz")
    back = Plan.load(path, model)
    assert np.array_equal(back.owners, plan.owners) and back.workers == 3 and back.method == "block"
    with np.load(path) as z:
        assert z["owners"].dtype == np.int32 and z["owners"].shape == (3, 20)
    other = random_model(21, 2, 0.2, 3)
    with pytest.raises(InputError, match="shape"):
        Plan.load(path, other)
    with pytest.raises(InputError, match="shape"):
        Plan.load(path, model.truncated(1))
    bad = tmp_path / "bad.npz"
    np.savez(bad, owners=np.full((3, 20), 5, np.int32), workers=np.array(3))
    with pytest.raises(InputError, match="worker ids"):
        Plan.load(bad, model)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError):
        Plan.load(tmp_path / "junk.npz")
    with pytest.raises(InputError):
        Plan.load(tmp_path / "missing.npz")
