"""Serving: a model deployed once (its shards in a content-addressed store), queried many times.

A query on a deployed model stages only its inputs (checked on bytes), its result is exact,
warm workers keep their shards between queries and every worker reports how it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from botocore.exceptions import ClientError

from fsd_core.engine.payloads import matrix_to_bytes
from fsd_core.engine.pool import WorkerPool
from fsd_core.engine.warm import ShardCache, cache_budget_bytes
from fsd_core.kernel.serial import infer
from fsd_core.run.coordinator import RunConfig, activations_equal, run
from fsd_core.run.serving import deploy_model, deployed, find, input_owners, open_store, registry_path, undeploy

from .conftest import random_inputs, random_model

ROOT = Path(__file__).resolve().parents[1]
FSD = str(Path(sys.executable).parent / "fsd")


@pytest.fixture(scope="module")
def small():
    return random_model(96, 6, 0.08, seed=3), random_inputs(40, 96, 0.2, seed=4)


def _inputs_bytes(inputs: sp.csr_matrix, owners: np.ndarray, workers: int) -> int:
    """What staging only the inputs of a plan with these input owners puts in the stage."""
    y0 = sp.csc_matrix(inputs, dtype=np.float32)
    return sum(len(matrix_to_bytes(y0[:, np.flatnonzero(owners == p)])) for p in range(workers))


def _query(model, inputs, variant="local", workers=3, **kw):
    """A run, verified; with `deployed=NAME` on the deployed model (`model` only verifies it)."""
    return run(RunConfig(None, None, variant, workers, model=model, inputs=inputs, record=False, verify=True, **kw))


def test_a_query_on_a_deployed_model_stages_only_its_inputs(small):
    model, inputs = small
    first = deploy_model(model, None, 3, "local", "block", None, 0, None, name="small")
    assert not first.already_deployed and first.staged_bytes > first.deployment.size > 0
    again = deploy_model(model, None, 3, "local", "block", None, 0, None, name="small")
    assert again.already_deployed and again.staged_bytes == 0 and again.deployment.id == first.deployment.id

    plain = _query(model, inputs, partition="block")
    query = _query(model, inputs, deployed="small")
    assert plain.status == query.status == "ok", (plain.error, query.error)
    assert plain.verified and query.verified
    assert activations_equal(infer(model, inputs).activations, query.activations)
    owners = input_owners(open_store(first.deployment, "directory", None), first.deployment)
    only_inputs = _inputs_bytes(inputs, owners, 3)
    assert query.staged_bytes == only_inputs
    assert plain.staged_bytes == only_inputs + first.deployment.size  # the same plan's shards + inputs
    summary = query.summary()
    assert summary["staged_bytes"] == only_inputs and summary["deployed"] == "small"
    assert [w["start"] for w in summary["worker_starts"]] == ["cold"] * 3  # a process per worker
    assert all(w["shard"] == "loaded" for w in summary["worker_starts"])


def test_warm_workers_keep_their_shards_between_queries(small):
    model, inputs = small
    deploy_model(model, None, 3, "local", "block", None, 0, None, name="small")
    d = find("small")
    owners = input_owners(open_store(d, "directory", None), d)
    with WorkerPool() as pool:
        cold = _query(model, inputs, deployed="small", pool=pool)
        warm = _query(model, inputs[:17], deployed="small", pool=pool)
    assert cold.status == warm.status == "ok" and warm.verified
    assert [w["start"] for w in cold.worker_reports] == ["cold"] * 3
    assert all(w["init_s"] > 0 for w in cold.worker_reports)
    assert [w["start"] for w in warm.worker_reports] == ["warm"] * 3
    assert [w["init_s"] for w in warm.worker_reports] == [0.0] * 3
    assert [w["shard"] for w in warm.worker_reports] == ["cached"] * 3
    # a warm worker reads only its inputs: together exactly what the query staged
    assert sum(w["loaded_bytes"] for w in warm.worker_reports) == warm.staged_bytes == _inputs_bytes(inputs[:17], owners, 3)
    assert sum(w["loaded_bytes"] for w in cold.worker_reports) == cold.staged_bytes + d.size


def test_a_query_refuses_a_model_deployed_elsewhere_or_gone(small):
    from fsd_core.errors import InputError

    model, inputs = small
    deploy_model(model, None, 3, "local", "block", None, 0, None, name="small")
    with pytest.raises(InputError, match="deployed for local"):
        _query(model, inputs, variant="object", deployed="small")
    with pytest.raises(InputError, match="3 workers"):
        _query(model, inputs, workers=2, deployed="small")
    with pytest.raises(InputError, match="no deployed model"):
        _query(model, inputs, deployed="other")
    shutil.rmtree(Path(os.environ["FSD_HOME"]) / "models")
    with pytest.raises(InputError, match="deploy it again"):
        _query(model, inputs, deployed="small")


def test_undeploy_keeps_shards_another_name_uses(small):
    model, _ = small
    a = deploy_model(model, None, 2, "local", "block", None, 0, None, name="a").deployment
    deploy_model(model, None, 2, "local", "block", None, 0, None, name="b")
    store = Path(os.environ["FSD_HOME"]) / "models" / a.id
    undeploy("a", None)
    assert store.is_dir() and [d.name for d in deployed()] == ["b"]
    undeploy("b", None)
    assert not store.exists() and deployed() == []
    registry = Path(os.environ["FSD_HOME"]) / "deployed.json"
    assert registry.stat().st_mode & 0o777 == 0o600


def test_a_name_is_never_rebound_to_another_model(small):
    from fsd_core.errors import InputError

    model, _ = small
    first = deploy_model(model, None, 2, "local", "block", None, 0, None, name="prod").deployment
    other = random_model(96, 6, 0.08, seed=5)
    with pytest.raises(InputError, match=r"^--name prod: already names another deployed model \(models/"
                                         + first.id + r" in the data directory\); undeploy it first"):
        deploy_model(other, None, 2, "local", "block", None, 0, None, name="prod")
    with pytest.raises(InputError, match="already names another"):  # the same model, another plan
        deploy_model(model, None, 3, "local", "block", None, 0, None, name="prod")
    assert [(d.name, d.id) for d in deployed()] == [("prod", first.id)]
    assert deploy_model(model, None, 2, "local", "block", None, 0, None, name="prod").already_deployed


def test_a_record_without_a_bucket_may_be_the_same_store():
    from fsd_core.run.serving import Deployment

    ident = f"{'ab' * 8}-{'cd' * 16}"

    def record(bucket, endpoint=None, store="s3", id_=ident):
        return Deployment("m", id_, store, 2, "block", True, 0, 96, 6, 100, "m", None, [10], 0.0, bucket, endpoint)

    assert record(None).same_store(record("b")) and record("b").same_store(record(None))  # (written before)
    assert record("b", "http://e").same_store(record("b", "http://e"))
    assert not record("b").same_store(record("c")) and not record("b").same_store(record("b", "http://e"))
    assert not record(None).same_store(record(None, store="directory"))
    assert not record("b").same_store(record("b", id_=f"{'ab' * 8}-{'ce' * 16}"))


def test_a_bad_name_is_refused_before_the_plan(small):
    from fsd_core.errors import InputError
    from fsd_core.run.plans import plan_cache_dir

    model, _ = small
    with pytest.raises(InputError, match=r"^--name 'no spaces'"):
        deploy_model(model, None, 2, "local", "hypergraph", None, 0, None, name="no spaces")
    assert not plan_cache_dir().exists() or not any(plan_cache_dir().iterdir())


def test_concurrent_deploys_lose_no_name():
    tiny = str(ROOT / "models" / "tiny")
    procs = [subprocess.Popen([FSD, "model", "deploy", "--model", tiny, "--workers", "2", "--partition", "block",
                               "--name", f"n{k}", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for k in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert sorted(d.name for d in deployed()) == ["n0", "n1", "n2", "n3"]
    assert len({d.id for d in deployed()}) == 1  # one store for the four names


def test_damaged_input_owners_fail_a_query_in_one_line(small):
    from fsd_core import packed
    from fsd_core.errors import InputError

    model, inputs = small
    d = deploy_model(model, None, 3, "local", "block", None, 0, None, name="small").deployment
    owners = Path(os.environ["FSD_HOME"]) / "models" / d.id / "input-owners.fsda"
    good = owners.read_bytes()
    for damaged in (b"garbage", good[: len(good) // 2], packed.pack({"other": np.zeros(96, np.int32)}),
                    packed.pack({"owners0": np.zeros(96, np.float32)}),
                    packed.pack({"owners0": np.full(96, 3, np.int32)})):
        owners.write_bytes(damaged)
        with pytest.raises(InputError, match=r"^--deployed small: its input owners are damaged; deploy it again$"):
            _query(model, inputs, deployed="small")
    owners.write_bytes(good)
    assert _query(model, inputs, deployed="small").status == "ok"


def test_the_shard_cache_keeps_the_newest_within_its_budget():
    cache = ShardCache(100)
    assert cache.put("d1", 0, "s0", 60) and cache.put("d1", 1, "s1", 30)
    assert cache.get("d1", 0) == "s0"  # now the newest
    assert cache.put("d2", 0, "t0", 50)  # evicts the oldest: (d1, 1)
    assert cache.get("d1", 1) is None and cache.get("d1", 0) is None and cache.get("d2", 0) == "t0"
    assert not cache.put("d3", 0, "huge", 101) and cache.get("d2", 0) == "t0"
    assert cache.get(None, 0) is None and not cache.put(None, 0, "x", 1)
    assert cache_budget_bytes({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}) == int(2048 * 0.4) << 20
    assert cache_budget_bytes({"FSD_SHARD_CACHE_MB": "7", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}) == 7 << 20


# ------------------------------------------------------------------ on the emulator (IAM enforced)
def test_object_and_queue_queries_share_a_deployed_model_in_the_bucket(local_deployment, small):
    from fsd_core.aws.clients import client

    model, inputs = small
    m = local_deployment.to_dict()
    out = deploy_model(model, None, 2, "object", "block", None, 0, m, name="small-cloud")
    assert out.requests.get("s3:PutObject") == 2 + 2  # two shards, the input owners, the document
    keys = {o["Key"] for o in client(local_deployment, "s3").list_objects_v2(
        Bucket=local_deployment.bucket, Prefix=f"models/{out.deployment.id}/")["Contents"]}
    assert keys == {f"models/{out.deployment.id}/{k}" for k in
                    ("shard-0.fsda", "shard-1.fsda", "input-owners.fsda", "deployment.json")}
    again = deploy_model(model, None, 2, "queue", "block", None, 0, m, name="small-cloud")
    assert again.already_deployed and again.staged_bytes == 0 and "s3:PutObject" not in again.requests
    owners = input_owners(open_store(out.deployment, "s3", m), out.deployment)
    with WorkerPool() as pool:
        results = [run(RunConfig(None, None, variant, 2, model=model, inputs=inputs, record=False, verify=True, manifest=m,
                                 deployed="small-cloud", pool=pool, timeout=30))
                   for variant in ("object", "object", "queue")]
    ref = infer(model, inputs)
    for r in results:
        assert r.status == "ok" and r.verified, r.error
        assert activations_equal(ref.activations, r.activations)
        assert r.staged_bytes == _inputs_bytes(inputs, owners, 2)
    assert [w["start"] for w in results[0].worker_reports] == ["cold"] * 2
    for r in results[1:]:  # the pool's processes run under the worker role and stay warm
        assert [(w["start"], w["shard"]) for w in r.worker_reports] == [("warm", "cached")] * 2


def test_undeploy_deletes_from_the_bucket_it_recorded_and_refuses_another_deployment(local_deployment, small,
                                                                                        tmp_path):
    from fsd_core.aws.clients import client

    model, _ = small
    m = local_deployment.to_dict()
    d = deploy_model(model, None, 2, "object", "block", None, 0, m, name="where").deployment
    assert (d.bucket, d.endpoint) == (local_deployment.bucket, local_deployment.endpoint)
    on_aws = dict(d.to_dict(), name="on-aws", endpoint=None, bucket="fsd-prod-models")
    registry = json.loads(registry_path().read_text())
    registry_path().write_text(json.dumps(dict(registry, **{"on-aws": on_aws})))
    manifest = tmp_path / "manifest.json"
    local_deployment.save(manifest)
    refused = _fsd("model", "undeploy", "on-aws", "--manifest", str(manifest))
    assert refused.returncode == 2 and refused.stderr.strip() == (
        f"fsd: error: model on-aws is in bucket fsd-prod-models, the deployment at hand is at "
        f"{local_deployment.endpoint}: pass the holding deployment's --manifest")
    assert {x.name for x in deployed()} == {"where", "on-aws"}

    s3 = client(local_deployment, "s3")
    prefix = f"models/{d.id}/"
    assert s3.list_objects_v2(Bucket=local_deployment.bucket, Prefix=prefix)["KeyCount"] == 4
    done = _fsd("model", "undeploy", "where", "--manifest", str(manifest), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] is True
    assert s3.list_objects_v2(Bucket=local_deployment.bucket, Prefix=prefix)["KeyCount"] == 0
    assert [x.name for x in deployed()] == ["on-aws"]


def test_the_worker_role_reads_deployed_models_and_cannot_write_them(local_deployment, monkeypatch):
    from fsd_core.aws.clients import client
    from fsd_core.aws.credentials import WORKER_CREDENTIALS_ENV, as_environment
    from fsd_core.aws.local_stack import worker_credentials

    m = local_deployment
    key = f"models/{'ab' * 8}-{'cd' * 16}/shard-0.fsda"
    client(m, "s3").put_object(Bucket=m.bucket, Key=key, Body=b"shard")  # the operator deploys
    role = worker_credentials(m, "0123456789ab")
    monkeypatch.setenv(WORKER_CREDENTIALS_ENV, as_environment(role)[WORKER_CREDENTIALS_ENV])
    s3 = client(m, "s3")
    assert s3.get_object(Bucket=m.bucket, Key=key)["Body"].read() == b"shard"
    for call in (lambda: s3.put_object(Bucket=m.bucket, Key=key, Body=b"forged"),
                 lambda: s3.delete_object(Bucket=m.bucket, Key=key)):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] in ("AccessDenied", "403")


# ------------------------------------------------------------------ the command line
def _fsd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FSD, *args], capture_output=True, text=True, timeout=600, env=env or dict(os.environ))


def test_the_command_line_deploys_lists_queries_and_undeploys(tmp_path):
    tiny, inputs = str(ROOT / "models" / "tiny"), str(ROOT / "models" / "tiny-inputs.tsv")
    first = _fsd("model", "deploy", "--model", tiny, "--workers", "2", "--partition", "block", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["name"] == "tiny-p2-block" and doc["staged_bytes"] > 0 and not doc["already_deployed"]
    # one-time cost: a look, then the two shards, the input owners and the document
    assert doc["cost"]["requests"] == {"s3:GetObject": 1, "s3:PutObject": 4} and doc["cost"]["usd"] > 0
    assert doc["cost"]["bytes"] == doc["staged_bytes"]
    again = json.loads(_fsd("model", "deploy", "--model", tiny, "--workers", "2", "--partition", "block",
                            "--json").stdout)
    assert again["staged_bytes"] == 0 and again["already_deployed"]
    assert again["cost"]["requests"] == {"s3:GetObject": 1} and again["cost"]["bytes"] == 0
    listed = json.loads(_fsd("model", "deployed", "--json").stdout)["deployed"]
    assert [d["name"] for d in listed] == ["tiny-p2-block"] and listed[0]["workers"] == 2

    query = _fsd("run", "--deployed", "tiny-p2-block", "--inputs", inputs, "--variant", "local", "--verify",
                 "--json")
    assert query.returncode == 0, query.stderr
    result = json.loads(query.stdout)
    assert result["status"] == "ok" and result["verified"] and result["workers"] == 2
    assert 0 < result["staged_bytes"] < doc["staged_bytes"] and "stage" in result["timings"]
    assert [w["start"] for w in result["worker_starts"]] == ["cold", "cold"]
    human = _fsd("run", "--deployed", "tiny-p2-block", "--inputs", inputs, "--variant", "local")
    assert "inputs only: deployed model tiny-p2-block" in human.stdout
    (summary,) = [line for line in human.stdout.splitlines() if line.startswith("  workers ")]
    assert summary.split(None, 1)[1].startswith("2 cold, 0 warm; 0 kept their shard; read ")
    shown = _fsd("runs", "show", result["run_id"]).stdout  # the record says the same
    assert "\nworker starts     2 cold, 0 warm; 0 kept their shard; read " in shown

    for args, message in ((("--variant", "object"), "deployed for local"), (("--variant", "local", "--workers", "3"),
                          "has 2 workers"), (("--variant", "local", "--partition", "metis"), "plan is deployed")):
        bad = _fsd("run", "--deployed", "tiny-p2-block", "--inputs", inputs, *args, "--json")
        assert bad.returncode == 2 and message in json.loads(bad.stdout)["error"]
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    both = _fsd("run", "--deployed", "tiny-p2-block", "--model", tiny, "--inputs", inputs, "--variant", "local")
    assert both.returncode == 2 and "not allowed with" in both.stderr

    gone = _fsd("model", "undeploy", "tiny-p2-block", "--json")
    assert gone.returncode == 0 and json.loads(gone.stdout)["status"] == "undeployed"
    missing = _fsd("model", "undeploy", "tiny-p2-block")
    assert missing.returncode == 2 and "no deployed model" in missing.stderr


def test_a_warm_environment_makes_room_for_the_next_invocations_need():
    from fsd_core.engine.warm import Environment

    env = Environment()
    env.shards = ShardCache(900 << 20)
    for worker in range(3):
        assert env.shards.put("d1", worker, f"s{worker}", 250 << 20)
    memory = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}
    env.make_room(None, memory)  # no estimate: nothing dropped
    env.make_room(300.0, {})  # no function memory (a local process): nothing dropped
    assert len(env.shards) == 3
    env.make_room(600.0, memory)  # 424 MB left beside the need: the oldest two go
    assert len(env.shards) == 1 and env.shards.get("d1", 2) == "s2" and env.shards.nbytes == 250 << 20
    env.make_room(1024.0, memory)
    assert len(env.shards) == 0


def test_undeploy_of_a_model_whose_emulator_stopped_forgets_it(small):
    import socket

    from fsd_core.aws.emulator import emulator_state
    from fsd_core.run.serving import Deployment, registry_path

    with socket.socket() as s:  # a port nothing listens on: the emulator that held it
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    gone = Deployment("gone", f"{'ab' * 8}-{'cd' * 16}", "s3", 2, "block", True, 0, 96, 6, 100, "m", None, [10, 20],
                      0.0, "fsd-local-old", endpoint)
    registry_path().parent.mkdir(parents=True, exist_ok=True)
    registry_path().write_text(json.dumps({"gone": gone.to_dict()}))
    out = _fsd("model", "undeploy", "gone", "--json")
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "model gone: the local emulator that held it has stopped; its shards went with it"
    assert json.loads(out.stdout)["deleted"] is False and deployed() == [] and emulator_state() is None


def test_undeploy_of_a_bucket_model_never_starts_an_emulator(small):
    from fsd_core.aws.emulator import emulator_state
    from fsd_core.run.serving import Deployment, registry_path

    gone = Deployment("gone", f"{'ab' * 8}-{'cd' * 16}", "s3", 2, "block", True, 0, 96, 6, 100, "m", None, [10, 20])
    registry_path().parent.mkdir(parents=True, exist_ok=True)
    registry_path().write_text(json.dumps({"gone": gone.to_dict()}))
    out = _fsd("model", "undeploy", "gone")
    assert out.returncode == 0, out.stderr
    assert "the local emulator that held it has stopped; its shards went with it" in out.stderr
    assert "undeployed" in out.stdout and deployed() == [] and emulator_state() is None
