"""`fsd doctor` and `doctor.check` against the session's emulator deployment (8 worker slots,
a 2048 MB function): every check ok; then one blocker at a time, each the way it happens
(a queue or topic that is not there, a run larger than the slots or the concurrency, a worker
needing more memory, credentials the emulator refuses, an endpoint nobody answers).

The emulator does not implement Lambda's GetAccountSettings (moto 5: 404 "Not yet
implemented"), so the account's concurrency is modelled there as moto models it
(MOTO_LAMBDA_CONCURRENCY_QUOTA less the functions' reservations); the AWS answer itself is
read in one test from a botocore Stubber with the shape AWS documents.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from fsd_core.aws import doctor
from fsd_core.aws.clients import client
from fsd_core.aws.credentials import WORKER_CREDENTIALS_ENV
from fsd_core.aws.manifest import Manifest
from fsd_core.cli import main
from fsd_core.errors import InputError


def run_doctor(capsys, manifest: Manifest, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "manifest.json"
    manifest.save(path)
    code = main(["doctor", "--manifest", str(path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def levels(report: doctor.Report) -> dict[str, str]:
    return {f.check: f.level for f in report.findings}


@pytest.fixture(autouse=True)
def no_quota(monkeypatch):
    monkeypatch.delenv(doctor.EMULATOR_QUOTA_ENV, raising=False)
    monkeypatch.delenv(WORKER_CREDENTIALS_ENV, raising=False)


def test_a_healthy_deployment_is_ok_line_by_line(capsys, tmp_path, local_deployment):
    code, out, err = run_doctor(capsys, local_deployment, tmp_path, "--workers", "4", "--memory", "1024")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * len(lines)
    checks = [line.split()[1].rstrip(":") for line in lines]
    assert checks == ["credentials", "region", "slots", "concurrency", "function", "memory", "topics", "queues", "bucket"]
    assert "fsd-local-operator" in lines[0] and "all 8 queues exist" in out
    assert "2048 MB" in out and "no Lambda concurrency quota" in out  # moto enforces none by default


def test_json_document(capsys, tmp_path, local_deployment):
    code, out, _ = run_doctor(capsys, local_deployment, tmp_path, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "ok"
    assert all(set(f) == {"check", "level", "message"} for f in doc["findings"])
    assert "slots" not in [f["check"] for f in doc["findings"]]  # no run given


def test_a_queue_that_does_not_exist_is_a_blocker(capsys, tmp_path, local_deployment):
    urls = list(local_deployment.queue_urls)
    urls[3] = urls[3].rsplit("/", 1)[0] + "/fsd-local-no-such-queue"
    broken = dataclasses.replace(local_deployment, queue_urls=urls)
    code, out, err = run_doctor(capsys, broken, tmp_path)
    assert code == 2
    (queues,) = [line for line in out.splitlines() if " queues: " in line]
    assert queues.startswith("blocker queues: 1 of 8 missing: slot 3 (") and "fsd-local-no-such-queue" in queues
    assert err.count("\n") == 1 and err.startswith("fsd: error: 1 blocker: queues:")
    code, out, _ = run_doctor(capsys, broken, tmp_path, "--json")
    doc = json.loads(out)
    assert code == 2 and doc["status"] == "blocker"
    assert [f["check"] for f in doc["findings"] if f["level"] == "blocker"] == ["queues"]


def test_missing_topic_bucket_and_function_are_blockers(local_deployment):
    m = local_deployment
    broken = dataclasses.replace(m, topic_arns=[m.topic_arns[0] + "-gone"], bucket=m.bucket + "-gone",
                                 function_name="fsd-local-gone")
    report = doctor.check(broken)
    assert report.status == doctor.BLOCKER
    assert {f.check for f in report.blockers} == {"topics", "bucket", "function"}
    with pytest.raises(InputError) as err:
        report.raise_for_blockers()
    assert "\n" not in str(err.value) and "(and 2 more blockers)" in str(err.value)


def test_a_run_larger_than_the_slots_is_a_blocker(local_deployment):
    report = doctor.check(local_deployment, workers=9)
    assert levels(report)["slots"] == doctor.BLOCKER
    assert "the deployment has 8" in report.blockers[0].message


def test_workers_above_the_concurrency_are_a_blocker(monkeypatch, capsys, tmp_path, local_deployment):
    """A new-account-like quota of 4 in the emulator: P=6 cannot run, P=3 can; without a run
    the 8 slots are a warning (runs above 4 would stall)."""
    monkeypatch.setenv(doctor.EMULATOR_QUOTA_ENV, "4")
    code, out, err = run_doctor(capsys, local_deployment, tmp_path, "--workers", "6")
    assert code == 2
    (line,) = [line for line in out.splitlines() if " concurrency: " in line]
    assert line.startswith("blocker concurrency: a run on 6 workers needs 6 concurrent executions, 4 are available")
    assert "account limit 4 (a new account's limit), unreserved 4" in line and "at most 4 workers" in line
    assert levels(doctor.check(local_deployment, workers=3))["concurrency"] == doctor.OK
    report = doctor.check(local_deployment)
    assert levels(report)["concurrency"] == doctor.WARNING and report.status == doctor.WARNING
    code, _, err = run_doctor(capsys, local_deployment, tmp_path)
    assert code == 0 and err == ""  # warnings do not fail


def test_the_functions_reservation_is_what_it_may_use(monkeypatch, local_deployment):
    monkeypatch.setenv(doctor.EMULATOR_QUOTA_ENV, "1000")
    lam = client(local_deployment, "lambda")
    lam.put_function_concurrency(FunctionName=local_deployment.function_name, ReservedConcurrentExecutions=2)
    try:
        report = doctor.check(local_deployment, workers=3)
        (finding,) = [f for f in report.findings if f.check == "concurrency"]
        assert finding.level == doctor.BLOCKER and "2 are available" in finding.message
        assert "unreserved 998" in finding.message and "reserved_concurrency" in finding.message
    finally:
        lam.delete_function_concurrency(FunctionName=local_deployment.function_name)


def test_a_planned_reservation_must_leave_100_unreserved(monkeypatch, local_deployment):
    monkeypatch.setenv(doctor.EMULATOR_QUOTA_ENV, "150")
    assert levels(doctor.check(local_deployment, reserved_concurrency=100, resources=False))[
        "reserved_concurrency"] == doctor.BLOCKER
    assert levels(doctor.check(local_deployment, reserved_concurrency=4, resources=False))[
        "reserved_concurrency"] == doctor.WARNING  # below the 8 slots
    assert "reserved_concurrency" not in levels(doctor.check(local_deployment, reserved_concurrency=-1, resources=False))


def test_memory_against_the_models_need(capsys, tmp_path, local_deployment):
    code, out, _ = run_doctor(capsys, local_deployment, tmp_path, "--memory", "4096")
    assert code == 2
    (line,) = [line for line in out.splitlines() if " memory: " in line]
    assert "needs about 4096 MB" in line and "has 2048 MB" in line and "memory_mb >= 4096" in line
    report = doctor.check(local_deployment, memory_needed_mb=1500.5)  # what the coordinator passes
    assert levels(report)["memory"] == doctor.OK
    report.raise_for_blockers()  # no blocker: no error


def test_memory_against_what_a_worker_of_a_model_needs(capsys, tmp_path, local_deployment):
    from fsd_core.run.preflight import worker_need_mb

    tiny = Path(__file__).resolve().parents[1] / "models" / "tiny"
    code, out, err = run_doctor(capsys, local_deployment, tmp_path, "--model", str(tiny), "--workers", "2",
                                "--batch", "64")
    assert code == 0 and err == ""
    (line,) = [line for line in out.splitlines() if " memory: " in line]
    mf = json.loads((tiny / "model.json").read_text())
    need = worker_need_mb(mf["neurons"], mf["layers"], 64, [e["nnz"] for e in mf["layer_files"]], 2)
    assert line.split()[0] == "ok" and f"a worker needs about {need:.0f} MB of the function's 2048 MB" in line
    for args, why in ((["--model", str(tiny), "--batch", "64"], "--model needs --workers P and --batch B"),
                      (["--batch", "64"], "--batch is the query's size for --model"),
                      (["--model", str(tmp_path / "nowhere"), "--workers", "2", "--batch", "1"],
                       "not a model directory")):
        code, out, err = run_doctor(capsys, local_deployment, tmp_path, *args)
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and why in err, err


def test_credentials_the_emulator_refuses_are_a_blocker(monkeypatch, capsys, tmp_path, local_deployment):
    monkeypatch.setenv(WORKER_CREDENTIALS_ENV, "not json")  # a process that signs as nobody
    code, out, err = run_doctor(capsys, local_deployment, tmp_path, "--workers", "2")
    assert code == 2
    lines = out.splitlines()
    assert lines[0].startswith("blocker credentials: STS refused them at the emulator") and "InvalidClientTokenId" in lines[0]
    assert [line.split()[1] for line in lines] == ["credentials:", "slots:"]  # the API checks are skipped
    assert err.startswith("fsd: error: 1 blocker: credentials:")


def test_an_endpoint_nobody_answers_is_a_blocker(local_deployment):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = doctor.check(dataclasses.replace(local_deployment, endpoint=f"http://127.0.0.1:{port}"))
    assert [f.check for f in report.findings] == ["credentials"]
    assert report.blockers[0].message.startswith(f"cannot reach STS at the emulator at http://127.0.0.1:{port}")


def test_package_size_against_lambdas_limits(capsys, tmp_path, local_deployment):
    import zipfile

    small = tmp_path / "p.zip"
    with zipfile.ZipFile(small, "w") as archive:
        archive.writestr("fsd_core/__init__.py", "")
    code, out, _ = run_doctor(capsys, local_deployment, tmp_path, "--package", str(small))
    assert code == 0 and f"ok      package: {small}: 0.0 MB unzipped of Lambda's 250.0 MB" in out
    big = SimpleNamespace(path="big.zip", unzipped_bytes=260 * 2**20, zipped_bytes=70 * 2**20)
    report = doctor.check(local_deployment, package=big)
    assert levels(report)["package"] == doctor.BLOCKER and "over Lambda's 250.0 MB" in report.blockers[0].message
    code, _, err = run_doctor(capsys, local_deployment, tmp_path, "--package", str(tmp_path / "none.zip"))
    assert code == 2 and "no such file" in err


def test_no_deployment_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FSD_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("FSD_MANIFEST", raising=False)
    assert main(["doctor"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "no deployment" in err


def test_the_aws_account_answer_new_account(monkeypatch):
    """GetAccountSettings as AWS answers it (moto cannot): a new account's 10 executions."""
    import boto3
    from botocore.stub import Stubber

    lam = boto3.session.Session().client("lambda", region_name="us-east-1", aws_access_key_id="x",
                                         aws_secret_access_key="y")
    stub = Stubber(lam)
    monkeypatch.setattr(doctor, "_client", lambda manifest, service, pool=10: lam)
    manifest = Manifest("us-east-1", None, [], [], "b", "fsd-worker", 16)
    settings = {"AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                                 "CodeSizeZipped": 52428800, "ConcurrentExecutions": 10,
                                 "UnreservedConcurrentExecutions": 10},
                "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 1}}
    found = {}
    for workers in (None, 12, 8):
        stub.add_response("get_account_settings", settings, {})
        stub.add_response("get_function_concurrency", {}, {"FunctionName": "fsd-worker"})
        report = doctor.Report()
        with stub:
            doctor._concurrency(manifest, workers, None, report)
        (found[workers],) = report.findings
        assert "account limit 10 (a new account's limit), unreserved 10 (account)" in found[workers].message
    assert [found[w].level for w in (None, 12, 8)] == [doctor.WARNING, doctor.BLOCKER, doctor.OK]
    assert found[None].message.startswith("runs on more than 10 workers would be throttled and stall: "
                                          "the deployment has 16 worker slots")
    assert "Service Quotas" in found[12].message and "at most 10 workers" in found[12].message
