"""The Lambda launcher against the emulator's Lambda API (`aws/lambda_emulation.py`).

A run with `RunConfig.launcher = "lambda"` starts its workers as AWS does: the coordinator
invokes the worker function for worker 0 (`Invoke`, InvocationType `Event`), each worker
invokes its launch-tree children through the same API under the worker role, the emulated
Lambda runs every invocation as a local process under that role, and a failed invocation
goes to the deployment's failure queue, which the coordinator watches. The requests are
checked twice: as the coordinator sends them (a botocore hook on its client) and as the
emulator answered them (its invocation log: caller, function, type, payload size).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from fsd_core.aws.clients import client
from fsd_core.aws.credentials import (
    WORKER_CREDENTIALS_ENV,
    as_environment,
    operator_arn,
)
from fsd_core.aws.failures import FailureWatch
from fsd_core.aws.limits import LAMBDA_ASYNC_MAX_PAYLOAD
from fsd_core.aws.local_stack import worker_credentials
from fsd_core.aws.manifest import Manifest
from fsd_core.engine import lambda_launch
from fsd_core.engine.event import EventError
from fsd_core.engine.handler import handler
from fsd_core.errors import InputError, RunError
from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.processes import process_running
from fsd_core.run import coordinator
from fsd_core.run.coordinator import RunConfig, TestHooks, run

from .cloud_fixtures import deployment_home
from .killer import kill_worker, watch_end


@pytest.fixture(scope="module")
def rx():
    return radixnet(256, 12, seed=5), synthetic_inputs(256, 48, seed=5)


def invocations(manifest: Manifest, run_id: str) -> list[dict]:
    """The emulator's log of the invocations it answered for `run_id`."""
    path = deployment_home(manifest.source) / "local" / "lambda-invocations.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if e.get("run_id") == run_id]


def leftovers(manifest: Manifest, run_id: str) -> list[str]:
    s3 = client(manifest, "s3")
    return [o["Key"] for prefix in (f"stage/{run_id}/", f"runs/{run_id}/")
            for o in s3.list_objects_v2(Bucket=manifest.bucket, Prefix=prefix).get("Contents", [])]


def capture_invokes(monkeypatch) -> list[dict]:
    """The Invoke requests the coordinator's Lambda client sends, as serialized for the wire."""
    sent: list[dict] = []
    real = lambda_launch.client

    def capturing(manifest, service, config=None):
        made = real(manifest, service, config)
        made.meta.events.register("before-call.lambda.Invoke", lambda params, **_: sent.append(params))
        return made

    monkeypatch.setattr(lambda_launch, "client", capturing)
    return sent


@pytest.mark.parametrize("variant", ["queue", "object"])
def test_a_lambda_launched_run_is_exact_and_invokes_each_worker_once(local_deployment, rx, variant, monkeypatch):
    model, inputs = rx
    sent = capture_invokes(monkeypatch)
    workers = 4
    r = run(RunConfig(None, None, variant, workers, "block", record=False, model=model, inputs=inputs,
                      manifest=local_deployment.to_dict(), timeout=30, verify=True, launcher="lambda"))
    assert r.status == "ok" and r.verified is True, r.error

    # The coordinator's one request: worker 0's event to the worker function, asynchronously.
    (request,) = sent
    assert request["url_path"] == f"/2015-03-31/functions/{local_deployment.function_name}/invocations"
    assert request["headers"]["X-Amz-Invocation-Type"] == "Event"
    event = json.loads(request["body"])
    assert (event["run_id"], event["worker"], event["launcher"]) == \
        (r.run_id, 0, {"kind": "lambda", "function_name": local_deployment.function_name})
    assert len(request["body"]) < LAMBDA_ASYNC_MAX_PAYLOAD

    # What the emulator answered: one Event invocation per worker; worker 0 invoked by the
    # operator, every other worker by its launch-tree parent under the worker role.
    log = invocations(local_deployment, r.run_id)
    assert sorted(e["worker"] for e in log) == list(range(workers))
    assert {e["invocation_type"] for e in log} == {"Event"} and not any("refused" in e for e in log)
    assert all(e["function"].endswith(f":function:{local_deployment.function_name}") for e in log)
    assert all(0 < e["payload_bytes"] < LAMBDA_ASYNC_MAX_PAYLOAD for e in log)
    callers = {e["worker"]: e["caller"] for e in log}
    assert callers[0] == operator_arn(local_deployment.endpoint)
    role = local_deployment.worker_role_arn.rsplit("/", 1)[1]
    assert all(f":assumed-role/{role}/" in callers[w] for w in range(1, workers)), callers
    assert r.requests["lambda:Invoke"] == workers

    # Every worker process ended; nothing is left in the channel or the stage.
    assert not [rep["pid"] for rep in r.worker_reports if process_running(rep["pid"])]
    assert leftovers(local_deployment, r.run_id) == []


def test_an_event_over_the_async_limit_is_refused_before_any_request(local_deployment, monkeypatch):
    sent = capture_invokes(monkeypatch)
    launcher = lambda_launch.LambdaLauncher.from_config({"function_name": local_deployment.function_name},
                                                        local_deployment.to_dict())
    with pytest.raises(RunError, match=r"^worker 5: its event has \d+ bytes, over Lambda's asynchronous payload "
                                       r"limit of 262144$"):
        launcher.start({"worker": 5, "padding": "x" * LAMBDA_ASYNC_MAX_PAYLOAD})
    assert sent == []


def test_the_emulated_lambda_refuses_what_lambda_refuses(local_deployment):
    lam = client(local_deployment, "lambda")
    with pytest.raises(ClientError) as big:
        lam.invoke(FunctionName=local_deployment.function_name, InvocationType="Event",
                   Payload=b'{"x": "' + b"x" * LAMBDA_ASYNC_MAX_PAYLOAD + b'"}')
    assert big.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert big.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert lam.invoke(FunctionName=local_deployment.function_name, InvocationType="DryRun")["StatusCode"] == 204


def test_the_worker_role_may_invoke_its_function_only(local_deployment, monkeypatch):
    role = worker_credentials(local_deployment, "0123456789ab")
    monkeypatch.setenv(WORKER_CREDENTIALS_ENV, as_environment(role)[WORKER_CREDENTIALS_ENV])
    lam = client(local_deployment, "lambda")
    assert lam.invoke(FunctionName=local_deployment.function_name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as other:
        lam.invoke(FunctionName="some-other-function", InvocationType="DryRun")
    assert other.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403  # moto: an XML AccessDenied


def test_a_refused_event_lands_on_the_failure_queue_for_its_run_only(local_deployment):
    run_id, other = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    mine, theirs = FailureWatch(local_deployment, run_id, 0.0), FailureWatch(local_deployment, other, 0.0)
    client(local_deployment, "lambda").invoke(
        FunctionName=local_deployment.function_name, InvocationType="Event",
        Payload=json.dumps({"run_id": run_id, "worker": 3, "workers": "many"}).encode())
    found, deadline = None, time.monotonic() + 15
    while found is None and time.monotonic() < deadline:
        assert theirs.look() is None  # another run's watch leaves the record alone
        found = mine.look()
        time.sleep(0.1)
    assert found is not None, mine.problem
    assert found.startswith("worker 3: its Lambda invocation failed after 1 attempt (RetriesExhausted): EventError: "
                            "event: field 'workers' has the wrong type"), found
    assert "\n" not in found
    assert mine.look() is None  # consumed


def test_one_look_consumes_every_record_of_its_run_it_reads_and_leaves_the_others(local_deployment):
    run_id, other = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    sqs, lam = client(local_deployment, "sqs"), client(local_deployment, "lambda")
    mine, theirs = FailureWatch(local_deployment, run_id, 0.0), FailureWatch(local_deployment, other, 0.0)

    def waiting() -> int:
        attrs = sqs.get_queue_attributes(QueueUrl=local_deployment.failure_queue_url,
                                         AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    before = waiting()
    for rid, worker in ((run_id, 1), (run_id, 2), (run_id, 3), (other, 5)):  # a whole run failing, and another's
        lam.invoke(FunctionName=local_deployment.function_name, InvocationType="Event",
                   Payload=json.dumps({"run_id": rid, "worker": worker, "workers": "many"}).encode())
    deadline = time.monotonic() + 20
    while waiting() < before + 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert waiting() >= before + 4
    found = mine.look()
    assert found is not None and found.split(":")[0] in ("worker 1", "worker 2", "worker 3"), (found, mine.problem)
    assert mine.look() is None  # the other two of its run went with it
    assert theirs.look().startswith("worker 5: ")  # shown again at once, for its own watch
    assert waiting() == before


def test_the_handler_raises_a_refusal_on_lambda_and_returns_it_locally():
    event = {"run_id": "not a run", "worker": 0}
    assert handler(event)["status"] == "failed"
    with pytest.raises(EventError, match="run_id"):
        handler(event, context=object())


def test_a_crashed_lambda_worker_fails_the_run_through_its_failure_record(local_deployment, rx, monkeypatch):
    """The liveness look is switched off: only the failure queue can tell, in about a second,
    long before a peer's message timeout (20 s)."""
    monkeypatch.setattr(coordinator, "LIVENESS_INTERVAL", 3600.0)
    model, inputs = rx
    r = run(RunConfig(None, None, "queue", 3, "block", record=False, model=model, inputs=inputs, predict=False,
                      manifest=local_deployment.to_dict(), timeout=20, launch_grace=0, launcher="lambda"),
            hooks=TestHooks(fault={"worker": 2, "layer": 4, "kind": "crash"}))
    assert r.status == "failed"
    assert r.error.startswith("worker 2: its Lambda invocation failed after 1 attempt (RetriesExhausted): "
                              "Runtime.ExitError: RequestId: "), r.error
    assert r.error.endswith("Error: Runtime exited with error: exit status 17"), r.error
    assert r.timings["run"] < 20  # from launch: before any peer's message timeout
    assert leftovers(local_deployment, r.run_id) == []
    assert not [rep["pid"] for rep in r.worker_reports if rep.get("pid") and process_running(rep["pid"])]


def test_a_sigkilled_lambda_worker_fails_the_run_in_under_5_s(local_deployment, rx, tmp_path, monkeypatch):
    monkeypatch.setenv("FSD_SCRATCH", str(tmp_path / "scratch"))
    model, inputs = rx

    def started(_pid_file: Path) -> bool:  # worker 1 hangs in layer 1: kill it once it runs
        time.sleep(0.5)
        return True

    killer, killed = kill_worker(tmp_path / "scratch", 1, started, within=60)
    noticed = watch_end(monkeypatch)
    r = run(RunConfig(None, None, "object", 2, "block", record=False, model=model, inputs=inputs, predict=False,
                      manifest=local_deployment.to_dict(), timeout=30, launcher="lambda"),
            hooks=TestHooks(fault={"worker": 1, "layer": 1, "kind": "hang"}))
    ended = time.monotonic()
    killer.join(5)
    assert "at" in killed, "worker 1 never announced its process"
    assert r.status == "failed" and r.error.startswith("worker 1"), r.error
    assert "exited without a report" in r.error or "Runtime exited with error: signal: killed" in r.error, r.error
    assert noticed["at"] - killed["at"] < 5.0, f"noticed {noticed['at'] - killed['at']:.1f} s after the kill"
    assert ended - killed["at"] < 30.0  # (its clean-up included)
    assert leftovers(local_deployment, r.run_id) == []
    assert not list((tmp_path / "scratch" / "fsd-runs").glob("*"))


# ------------------------------------------------------------------ the doctor before a cloud run
def test_a_cloud_run_on_a_deployment_missing_a_queue_fails_with_one_line_before_staging(local_deployment, rx):
    model, inputs = rx
    urls = list(local_deployment.queue_urls)
    urls[3] = urls[3].rsplit("/", 1)[0] + "/fsd-local-no-such-queue"
    broken = dict(local_deployment.to_dict(), queue_urls=urls)
    s3 = client(local_deployment, "s3")
    staged = s3.list_objects_v2(Bucket=local_deployment.bucket, Prefix="stage/").get("KeyCount", 0)
    with pytest.raises(InputError) as refused:
        run(RunConfig(None, None, "queue", 2, "block", record=False, model=model, inputs=inputs, manifest=broken))
    assert str(refused.value).startswith("deployment: queues: 1 of 8 missing: slot 3 (") and \
        "fsd-local-no-such-queue" in str(refused.value) and "\n" not in str(refused.value)
    assert s3.list_objects_v2(Bucket=local_deployment.bucket, Prefix="stage/").get("KeyCount", 0) == staged


def test_a_lambda_launched_run_without_its_function_fails_with_one_line(local_deployment, rx):
    model, inputs = rx
    broken = dict(local_deployment.to_dict(), function_name="fsd-local-no-such-function")
    with pytest.raises(InputError, match=r"^deployment: function: fsd-local-no-such-function does not exist"):
        run(RunConfig(None, None, "object", 2, "block", record=False, model=model, inputs=inputs, manifest=broken,
                      launcher="lambda"))


def test_a_run_whose_workers_need_more_than_the_functions_memory_is_refused_before_staging(local_deployment, rx):
    from fsd_core.run import preflight

    model, inputs = rx
    lam, s3 = client(local_deployment, "lambda"), client(local_deployment, "s3")
    function = local_deployment.function_name
    memory = lam.get_function_configuration(FunctionName=function)["MemorySize"]
    staged = s3.list_objects_v2(Bucket=local_deployment.bucket, Prefix="stage/").get("KeyCount", 0)
    need = preflight.worker_need_mb(model.neurons, model.layers, inputs.shape[0], [w.nnz for w in model.weights], 2)
    assert 128 < need < memory  # the runtime's 128 MB and a little of this small model
    preflight.forget()
    lam.update_function_configuration(FunctionName=function, MemorySize=128)  # deployed with memory_mb = 128
    try:
        config = RunConfig(None, None, "queue", 2, "block", record=False, model=model, inputs=inputs,
                           manifest=local_deployment.to_dict())
        with pytest.raises(InputError) as refused:
            run(config)
        assert str(refused.value) == (f"deployment: memory: a worker needs about {need:.0f} MB, {function} has 128 "
                                      f"MB: deploy with memory_mb >= 192 (up to 10240), or use more workers")
        assert s3.list_objects_v2(Bucket=local_deployment.bucket, Prefix="stage/").get("KeyCount", 0) == staged
    finally:
        lam.update_function_configuration(FunctionName=function, MemorySize=memory)
        preflight.forget()
    assert run(config).status == "ok"


@pytest.mark.parametrize("role", [None, "arn:aws:iam::123456789012:role/fsd-nobody"])
def test_a_worker_role_the_run_cannot_take_fails_it_recorded_and_leaves_nothing(local_deployment, rx, role,
                                                                               tmp_path, monkeypatch):
    from fsd_core.run.records import RunStore

    monkeypatch.setenv("FSD_SCRATCH", str(tmp_path / "scratch"))
    db = str(tmp_path / "runs.sqlite")
    model, inputs = rx
    manifest = dict(local_deployment.to_dict(), worker_role_arn=role)
    with pytest.raises(RunError) as failed:
        run(RunConfig(None, None, "object", 2, "block", model=model, inputs=inputs, manifest=manifest, runs_db=db))
    assert "\n" not in str(failed.value) and ("worker_role_arn" in str(failed.value) or "AssumeRole" in str(failed.value))
    (record,) = RunStore(db).list()
    assert record["status"] == "failed" and record["error"] == str(failed.value)
    assert list((tmp_path / "scratch" / "fsd-runs").iterdir()) == []  # its scratch went


def test_the_deployment_check_costs_a_cloud_run_little(local_deployment, monkeypatch):
    """The first check of a deployment asks the endpoint; the same check again asks nothing."""
    from fsd_core.run import preflight

    checks = []
    real = preflight.check
    monkeypatch.setattr(preflight, "check", lambda *a, **k: checks.append(a) or real(*a, **k))
    preflight.forget()
    manifest = local_deployment.to_dict()
    t = time.perf_counter()
    preflight.check_deployment(manifest, 3)
    first = time.perf_counter() - t
    t = time.perf_counter()
    preflight.check_deployment(manifest, 3)
    again = time.perf_counter() - t
    print(f"deployment check: {first * 1000:.0f} ms, then {again * 1000:.2f} ms (remembered)")
    assert len(checks) == 1 and first < 5.0
    preflight.check_deployment(manifest, 2)  # another P is another check
    assert len(checks) == 2


def test_on_aws_every_cloud_run_needs_the_function(local_deployment):
    on_aws = dict(local_deployment.to_dict(), endpoint=None)
    assert coordinator.needs_function(on_aws, None) and coordinator.needs_function(on_aws, "lambda")
    emulated = local_deployment.to_dict()
    assert coordinator.needs_function(emulated, "lambda") and not coordinator.needs_function(emulated, None)


def test_a_launcher_other_than_lambda_or_for_a_local_run_is_refused():
    for variant, launcher in (("queue", "docker"), ("local", "lambda")):
        with pytest.raises(InputError, match="^--launcher .*: only lambda, for queue and object runs"):
            coordinator.check_config(RunConfig(None, None, variant, 2, launcher=launcher))



def test_fsd_run_takes_the_lambda_launcher_for_cloud_runs_only(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    bad = subprocess.run([sys.executable, "-m", "fsd_core.cli", "run", "--model", str(root / "models" / "tiny"),
                          "--inputs", str(root / "models" / "tiny-inputs.tsv"), "--variant", "local",
                          "--launcher", "lambda"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "fsd: error: --launcher lambda: only lambda, for queue and object runs (got --variant local)"]
