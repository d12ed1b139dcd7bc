"""`fsd gc`, and the next run on the same store: what a killed coordinator left is reclaimed
(its workers, scratch and channel directories, staged objects, queue messages) and the run is
recorded abandoned; a live run is never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from fsd_core.cli import main
from fsd_core.engine.pool import WorkerPool
from fsd_core.processes import environment_values
from fsd_core.run.records import RunStore
from tests.adversarial import test_interrupt as interrupt
from tests.adversarial.test_interrupt import fsd, start

ROOT = Path(__file__).resolve().parent.parent.parent
OLD = time.time() - 3600  # an mtime past the orphans' grace


@pytest.fixture
def scratch(shm_scratch):
    return shm_scratch


@pytest.fixture
def env(scratch, isolated_home, monkeypatch):
    monkeypatch.delenv("FSD_MANIFEST", raising=False)
    return dict(os.environ, FSD_HOME=str(isolated_home), FSD_SCRATCH=str(scratch))


def running_run(proc: subprocess.Popen, scratch: Path, variant: str, known: tuple[str, ...] = ()) -> str:
    return interrupt.running_run({}, proc, scratch, variant, known)


def kill(proc: subprocess.Popen) -> None:
    proc.kill()  # SIGKILL: the coordinator records nothing, cleans nothing
    proc.communicate(timeout=60)


def workers_of(run_id: str) -> list[int]:
    return [pid for pid, event in environment_values("FSD_EVENT").items() if json.loads(event)["run_id"] == run_id]


def left(run_id: str, scratch: Path) -> list[Path]:
    return [p for p in (scratch / "fsd-runs" / run_id, scratch / "fsd-local-channel" / run_id) if p.exists()]


def shown(run_id: str, env: dict) -> dict:
    return json.loads(fsd("runs", "show", run_id, "--json", env=env).stdout)["run"]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def record_abandoned(variant: str, scratch: Path, deployment: dict | None = None) -> str:
    """A run recorded running by a coordinator that is gone, with its scratch left behind (and
    for a cloud run, the deployment it named)."""
    run_id = uuid.uuid4().hex[:12]
    extra = {"pid": dead_pid(), "host": os.uname().nodename}
    RunStore().record({"run_id": run_id, "status": "running", "variant": variant, "workers": 2,
                       "extra": dict(extra, deployment=deployment) if deployment else extra})
    (scratch / "fsd-runs" / run_id / "progress").mkdir(parents=True)
    (scratch / "fsd-runs" / run_id / "progress" / "w0").write_text("3")
    if variant == "local":
        (scratch / "fsd-local-channel" / run_id / "w1").mkdir(parents=True)
        (scratch / "fsd-local-channel" / run_id / "w1" / "1.0.0.x.5").write_bytes(b"frame")
    return run_id


def gc_json(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["gc", "--json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.mark.slow
def test_gc_reclaims_a_sigkilled_local_run_and_never_touches_a_live_one(workload, env, scratch):
    live = start(workload, "local", env)
    live_id = running_run(live, scratch, "local")
    live.send_signal(signal.SIGSTOP)  # alive, mid-run, for as long as the test needs
    try:
        proc = start(workload, "local", env)
        run_id = running_run(proc, scratch, "local", known=(live_id,))
        kill(proc)
        assert len(left(run_id, scratch)) == 2  # scratch and channel directories stay behind
        assert shown(run_id, env)["status"] == "running"

        gc = fsd("gc", "--json", env=env)
        assert gc.returncode == 0, gc.stderr
        doc = json.loads(gc.stdout)
        assert [r["run_id"] for r in doc["runs"]] == [run_id]
        assert doc["runs"][0]["bytes"] > 0 and len(doc["runs"][0]["paths"]) == 2
        assert live_id not in gc.stdout and not doc["orphans"]  # the live run is not touched
        assert (scratch / "fsd-runs" / live_id).is_dir() and shown(live_id, env)["status"] == "running"
        assert f"run {run_id} (local, abandoned): reclaimed" in gc.stderr
        assert not left(run_id, scratch) and not workers_of(run_id)  # its workers were stopped too
        record = shown(run_id, env)
        assert record["status"] == "abandoned" and "coordinator" in record["error"]
        assert record["extra"]["gc"]["paths"] == doc["runs"][0]["paths"]
    finally:
        live.send_signal(signal.SIGCONT)
    out, err = live.communicate(timeout=300)
    assert live.returncode == 0 and json.loads(out)["status"] == "ok", err
    again = fsd("gc", env=env)
    assert again.returncode == 0 and again.stderr.strip() == "fsd gc: nothing to reclaim" and not again.stdout


@pytest.mark.slow
def test_the_next_run_on_the_store_reclaims_the_local_part_in_one_line(workload, env, scratch):
    proc = start(workload, "local", env)
    run_id = running_run(proc, scratch, "local")
    kill(proc)
    nxt = fsd("run", "--model", str(ROOT / "models" / "tiny"), "--inputs", str(ROOT / "models" / "tiny-inputs.tsv"),
              "--variant", "local", "--workers", "2", "--json", env=env)
    assert nxt.returncode == 0, nxt.stderr
    said = [line for line in nxt.stderr.splitlines() if "reclaimed" in line]
    assert len(said) == 1 and run_id in said[0] and said[0].startswith("fsd: reclaimed")
    assert not left(run_id, scratch) and not workers_of(run_id)
    assert shown(run_id, env)["status"] == "abandoned"


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["object", "queue"])
def test_gc_deletes_a_sigkilled_cloud_runs_staged_objects(workload, variant, env, scratch, local_deployment):
    from fsd_core.aws.clients import client
    from fsd_core.channels.object import count_objects_under

    env["FSD_MANIFEST"] = local_deployment.source
    proc = start(workload, variant, env)
    run_id = running_run(proc, scratch, variant)
    kill(proc)
    assert count_objects_under(local_deployment, f"stage/{run_id}/") > 0  # shards and inputs, for good
    assert shown(run_id, env)["extra"]["deployment"] == {"endpoint": local_deployment.endpoint,
                                                         "bucket": local_deployment.bucket}

    gc = fsd("gc", "--json", env=env)
    assert gc.returncode == 0, gc.stderr
    (run,) = json.loads(gc.stdout)["runs"]
    assert run["run_id"] == run_id and run["cloud"] == "done" and run["objects"] > 0
    for prefix in (f"stage/{run_id}/", f"runs/{run_id}/"):
        assert count_objects_under(local_deployment, prefix) == 0
    assert not left(run_id, scratch) and not workers_of(run_id)
    assert shown(run_id, env)["status"] == "abandoned"
    if variant == "queue":  # no frame of the dead run waits in a queue for the next run
        sqs = client(local_deployment, "sqs")
        for url in local_deployment.queue_urls:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


@pytest.mark.slow
def test_gc_stops_the_workers_the_emulated_lambda_started(workload, env, scratch, local_deployment):
    from fsd_core.channels.object import count_objects_under
    from fsd_core.processes import process_running
    from fsd_core.run.emulated_workers import running

    env["FSD_MANIFEST"] = local_deployment.source
    proc = start(workload, "object", env, "--launcher", "lambda")
    run_id = running_run(proc, scratch, "object")
    progress = scratch / "fsd-runs" / run_id / "progress"
    deadline = time.monotonic() + 60
    while len(running(progress)) < 2 and time.monotonic() < deadline:  # both workers invoked and running
        time.sleep(0.05)
    workers = running(progress)
    assert len(workers) == 2 and not workers_of(run_id)  # (their event came on stdin, not FSD_EVENT)
    kill(proc)

    gc = fsd("gc", "--json", env=env)
    assert gc.returncode == 0, gc.stderr
    (run,) = json.loads(gc.stdout)["runs"]
    assert run["run_id"] == run_id and sorted(run["workers_killed"]) == workers and run["cloud"] == "done"
    assert not any(process_running(pid) for pid in workers)
    assert not left(run_id, scratch) and count_objects_under(local_deployment, f"stage/{run_id}/") == 0


def test_dry_run_lists_and_changes_nothing(env, scratch, capsys):
    run_id = record_abandoned("local", scratch)
    code, doc, err = gc_json(capsys, "--dry-run")
    assert code == 0 and doc["dry_run"] and [r["run_id"] for r in doc["runs"]] == [run_id]
    assert doc["runs"][0]["bytes"] == 6 and f"run {run_id} (local, abandoned): would reclaim" in err
    assert len(left(run_id, scratch)) == 2 and RunStore().get(run_id)["status"] == "running"
    code, doc, err = gc_json(capsys)
    assert code == 0 and not left(run_id, scratch) and RunStore().get(run_id)["status"] == "abandoned"


def test_endpoint_down_says_so_in_one_line_and_does_the_local_part(env, scratch, tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"region": "us-east-1", "endpoint": f"http://127.0.0.1:{port}", "topic_arns": [],
                                    "queue_urls": [], "bucket": "b", "function_name": None, "max_workers": 2}))
    monkeypatch.setenv("FSD_MANIFEST", str(manifest))
    run_id = record_abandoned("object", scratch)
    code, doc, err = gc_json(capsys)
    assert code == 0 and not left(run_id, scratch)
    assert doc["runs"][0]["cloud"].startswith("pending: the deployment's endpoint") and len(doc["notes"]) == 1
    assert [line for line in err.splitlines() if "does not answer" in line] == [f"fsd gc: {doc['notes'][0]}"]
    assert "Traceback" not in err
    record = RunStore().get(run_id)
    assert record["status"] == "abandoned" and record["extra"]["gc"]["cloud"].startswith("pending")
    code, doc, _ = gc_json(capsys)  # the next gc tries the cloud part again
    assert [r["run_id"] for r in doc["runs"]] == [run_id] and doc["runs"][0]["cloud"].startswith("pending")


def dead_endpoint() -> str:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_run_whose_emulator_stopped_left_nothing_in_the_cloud(env, scratch, capsys):
    run_id = record_abandoned("queue", scratch, {"endpoint": dead_endpoint(), "bucket": "fsd-local-gone"})
    code, doc, err = gc_json(capsys)  # no deployment configured, none up
    assert code == 0 and [(r["run_id"], r["cloud"]) for r in doc["runs"]] == [(run_id, "done")]
    assert doc["notes"] == [f"run {run_id}: its objects went with the emulator that held them (stopped)"]
    assert RunStore().get(run_id)["extra"]["gc"]["cloud"] == "done"
    code, doc, _ = gc_json(capsys)
    assert code == 0 and doc["runs"] == []  # nothing pending for ever


def test_gc_deletes_in_the_bucket_the_run_named_and_leaves_another_deployments_runs(
        env, scratch, capsys, local_deployment, tmp_path):
    import dataclasses

    from fsd_core.aws.clients import client
    from fsd_core.channels.object import count_objects_under

    here = {"endpoint": local_deployment.endpoint, "bucket": local_deployment.bucket}
    ours = record_abandoned("object", scratch, here)
    client(local_deployment, "s3").put_object(Bucket=local_deployment.bucket, Key=f"stage/{ours}/shard-0.fsda",
                                              Body=b"left")
    on_aws = record_abandoned("object", scratch, {"endpoint": None, "bucket": "fsd-prod"})
    elsewhere = tmp_path / "manifest.json"  # the deployment at hand stages in another bucket now
    dataclasses.replace(local_deployment, bucket="fsd-local-elsewhere").save(elsewhere)
    code, doc, err = gc_json(capsys, "--manifest", str(elsewhere))
    assert code == 0, err
    runs = {r["run_id"]: r for r in doc["runs"]}
    assert runs[ours]["cloud"] == "done" and runs[ours]["objects"] == 1
    assert count_objects_under(local_deployment, f"stage/{ours}/") == 0
    why = ("its objects are in bucket fsd-prod on AWS, not in the deployment at hand: fsd gc --manifest "
           "<that deployment's manifest>")
    assert runs[on_aws]["cloud"] == f"pending: {why}" and doc["notes"] == [f"run {on_aws}: {why}"]
    assert RunStore().get(on_aws)["status"] == "abandoned"


def test_a_bad_manifest_is_one_json_error(env, tmp_path, capsys):
    code = main(["gc", "--json", "--manifest", str(tmp_path / "missing.json")])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["status"] == "error" and "not found" in err and len(err.splitlines()) == 1


def test_orphans_no_live_run_owns_are_reclaimed_and_held_ones_kept(env, scratch, capsys):
    def orphan(path: Path, fresh: bool = False) -> Path:
        path.mkdir(parents=True)
        (path / "f").write_bytes(b"x" * 10)
        if not fresh:
            os.utime(path, (OLD, OLD))
        return path

    nobody = orphan(scratch / "fsd-runs" / uuid.uuid4().hex[:12])  # a run recorded in no store here
    channel = orphan(scratch / "fsd-local-channel" / uuid.uuid4().hex[:12])
    dead_pool = orphan(scratch / "fsd-pool-deadbeef")
    fresh = orphan(scratch / "fsd-runs" / uuid.uuid4().hex[:12], fresh=True)  # being made just now
    held = orphan(scratch / "fsd-runs" / uuid.uuid4().hex[:12])
    other = orphan(scratch / "not-ours")
    with WorkerPool() as pool, open(held / "f", "rb"):  # a live pool, and a file held open
        for directory in (pool.directory, pool.spares):
            os.utime(directory, (OLD, OLD))
        code, doc, err = gc_json(capsys)
        assert code == 0
        assert sorted(doc["orphans"]) == sorted(map(str, (nobody, channel, dead_pool)))
        assert doc["orphan_bytes"] == 30 and f"{nobody} (no live run owns it)" in err
        for kept in (fresh, held, other, pool.directory, pool.spares):
            assert kept.exists()
        for gone in (nobody, channel, dead_pool):
            assert not gone.exists()


def test_lambda_workers_of_a_dead_run_on_aws_are_left_a_stop_key(local_deployment):
    """Only on AWS (no endpoint: nobody can kill them there); the key lands where the workers
    look (`stage/<run>/stop`)."""
    import dataclasses

    from fsd_core.aws.clients import client
    from fsd_core.run.gc_cloud import leave_stop, workers_may_run

    assert workers_may_run(dataclasses.replace(local_deployment, endpoint=None))
    assert not workers_may_run(local_deployment)  # the emulator's were killed
    run_id = uuid.uuid4().hex[:12]
    leave_stop(local_deployment, run_id)
    s3 = client(local_deployment, "s3")
    assert s3.get_object(Bucket=local_deployment.bucket, Key=f"stage/{run_id}/stop")["Body"].read() == b"stop"
    s3.delete_object(Bucket=local_deployment.bucket, Key=f"stage/{run_id}/stop")
