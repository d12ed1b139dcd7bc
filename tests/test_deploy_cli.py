"""`fsd deploy` / `fsd destroy`: the plan is shown and applied only after confirmation.

Real Terraform (offline provider mirror) against the session's emulator, the way an operator
points the root module anywhere: a var file setting `endpoint` (and a name prefix of its own,
so the session's `fsd-local` deployment is untouched), the emulator operator's keys in the
environment, and an S3 backend in the emulator for the state (`--backend-config`). The worker
package is built from the tiny stand-in wheels of test_package. Confirmation is answered on a
pseudo-terminal (pty), as a person would.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fsd_core.aws import package as pkg
from fsd_core.aws.clients import client
from fsd_core.aws.credentials import operator
from fsd_core.aws.manifest import Manifest
from fsd_core.aws.terraform import Plan
from fsd_core.cli import main
from tests.cloud_fixtures import needs_terraform
from tests.test_package import fake_wheel, fake_wheels

ARCH, PYTHON = "x86_64", "3.11"


# --------------------------------------------------------------------------- helpers

def fsd(*args: object, env: dict[str, str], stdin: int | None = subprocess.DEVNULL,
        timeout: float = 900) -> subprocess.CompletedProcess:
    """`fsd ARGS` in a fresh interpreter whose stdin is not a terminal."""
    return subprocess.run([sys.executable, "-m", "fsd_core.cli", *map(str, args)], check=False, stdin=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


def fsd_on_a_terminal(*args: object, env: dict[str, str], answer: str, timeout: float = 900) -> tuple[int, str]:
    """`fsd ARGS` with stdin, stdout and stderr on a pseudo-terminal; types `answer` at the
    first `[y/N]` prompt. Returns (exit code, everything the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "fsd_core.cli", *map(str, args)], stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    shown, answered = b"", False
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert time.monotonic() < deadline, shown.decode(errors="replace")[-3000:]
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                shown += chunk
                if not answered and b"[y/N]" in shown:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, shown.decode(errors="replace").replace("\r\n", "\n")


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("fsd: error:")]


@pytest.fixture
def operator_env(tmp_path: Path, local_deployment: Manifest) -> dict[str, str]:
    """The environment of an operator deploying into the emulator: its keys, a home of its own."""
    keys = operator(local_deployment.endpoint)
    assert keys, "the emulator has no operator"
    env = {k: v for k, v in os.environ.items()
           if k not in ("FSD_MANIFEST", "AWS_PROFILE", "AWS_SESSION_TOKEN", "FSD_WORKER_CREDENTIALS")}
    env.update(FSD_HOME=str(tmp_path / "home"), AWS_ACCESS_KEY_ID=keys["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=keys["aws_secret_access_key"], AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    return env


def emulator_var_file(directory: Path, manifest: Manifest, prefix: str, **extra: object) -> Path:
    """The root module pointed at the emulator (the variables fsd local up sets, less the
    local-stack-only ones): a deployment named `prefix` with one worker slot."""
    variables = {"name_prefix": prefix, "region": "us-east-1", "endpoint": manifest.endpoint, "max_workers": 1,
                 "architecture": ARCH, "runtime": f"python{PYTHON}", **extra}
    path = directory / f"{prefix}.tfvars.json"
    path.write_text(json.dumps(variables, indent=1))
    return path


def topics_named(manifest: Manifest, prefix: str) -> list[str]:
    arns = [t["TopicArn"] for page in client(manifest, "sns").get_paginator("list_topics").paginate()
            for t in page.get("Topics", [])]
    return [arn for arn in arns if arn.rsplit(":", 1)[-1].startswith(f"{prefix}-")]


def buckets_named(manifest: Manifest, prefix: str) -> list[str]:
    return [b["Name"] for b in client(manifest, "s3").list_buckets().get("Buckets", [])
            if b["Name"].startswith(f"{prefix}-") and not b["Name"].endswith("-tfstate")]


# --------------------------------------------------------------------------- refused before any work

@pytest.mark.parametrize("command", ["deploy", "destroy"])
def test_without_yes_and_without_a_terminal_it_refuses_in_one_line(tmp_path, command):
    env = {**os.environ, "FSD_HOME": str(tmp_path / "home")}
    for argv in ([command], [command, "--json"]):
        proc = fsd(*argv, env=env)
        assert proc.returncode == 2, proc.stderr
        (line,) = error_lines(proc.stderr)
        assert proc.stderr.strip() == line and "--yes" in line and "not a terminal" in line
        if "--json" in argv:
            doc = json.loads(proc.stdout)
            assert doc["status"] == "error" and doc["exit_code"] == 2 and "--yes" in doc["error"]
    assert not (tmp_path / "home" / "deploy").exists()  # nothing planned, built or applied


def test_help_says_it_plans_and_asks(capsys):
    for command in ("deploy", "destroy"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "[y/N]" in text and "--yes" in text and "plan" in text


@needs_terraform
def test_a_doctor_blocker_stops_deploy_before_its_plan(tmp_path, operator_env, local_deployment):
    """The account checks run before the plan: a reservation that would leave the (modelled)
    account fewer than 100 unreserved executions is refused, with nothing planned or applied."""
    prefix = f"fsd-b{uuid.uuid4().hex[:6]}"
    var_file = emulator_var_file(tmp_path, local_deployment, prefix, reserved_concurrency=100)
    env = {**operator_env, "MOTO_LAMBDA_CONCURRENCY_QUOTA": "150"}
    proc = fsd("deploy", "--var-file", var_file, "--wheel-dir", fake_wheels(tmp_path / "w", ARCH, PYTHON),
               "--yes", env=env)
    assert proc.returncode == 2, proc.stderr
    (line,) = error_lines(proc.stderr)
    assert "reserved_concurrency" in line and "100" in line and "nothing planned" in line
    assert "doctor: blocker reserved_concurrency:" in proc.stderr
    assert "terraform plan" not in proc.stderr and "[y/N]" not in proc.stderr
    workdir = Path(env["FSD_HOME"]) / "deploy"
    assert not (workdir / "terraform.tfstate").exists() and not (workdir / "fsd.tfplan").exists()
    assert not (workdir / "package").exists()  # not even built
    assert topics_named(local_deployment, prefix) == []


# --------------------------------------------------------------------------- the whole life

@needs_terraform
def test_deploy_and_destroy_ask_and_apply_exactly_the_plan(tmp_path, operator_env, local_deployment):
    m = local_deployment
    prefix = f"fsd-d{uuid.uuid4().hex[:6]}"
    env = operator_env
    home = Path(env["FSD_HOME"])
    wheels = fake_wheels(tmp_path / "wheels", ARCH, PYTHON)
    var_file = emulator_var_file(tmp_path, m, prefix)
    # Remote state: an S3 backend in the emulator, settings from a file and a KEY=VALUE.
    state_bucket = f"{prefix}-tfstate"
    s3 = client(m, "s3")
    s3.create_bucket(Bucket=state_bucket)
    backend = tmp_path / "backend.hcl"
    backend.write_text(f'bucket = "{state_bucket}"\nregion = "us-east-1"\nendpoints = {{ s3 = "{m.endpoint}" }}\n'
                       "use_path_style = true\nskip_credentials_validation = true\n"
                       "skip_requesting_account_id = true\nskip_metadata_api_check = true\n")
    state_key = f"fsd/{prefix}.tfstate"
    deploy_args = ("deploy", "--var-file", var_file, "--wheel-dir", wheels,
                   "--backend-config", backend, "--backend-config", f"key={state_key}")

    def state_objects() -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=state_bucket).get("Contents", [])]

    try:
        # 1. "n": the plan is shown, nothing is applied (no resource, no state).
        code, shown = fsd_on_a_terminal(*deploy_args, env=env, answer="n")
        assert code == 1, shown
        assert re.search(r"terraform plan: (\d+) to add, 0 to change, 0 to destroy", shown), shown
        for address in ("module.queue_channel[0].aws_sqs_queue.this[0]", "module.worker_function[0].aws_lambda_function.this",
                        "aws_s3_object.package[0]", "module.package_bucket[0].aws_s3_bucket.this"):
            assert f"+    {address}" in shown
        assert "Apply? [y/N]" in shown and "doctor: ok      credentials:" in shown
        (line,) = error_lines(shown)
        assert "not applied" in line
        assert "Creating..." not in shown and "Apply complete" not in shown
        assert topics_named(m, prefix) == [] and buckets_named(m, prefix) == []
        assert state_key not in state_objects()
        assert not (home / "deploy" / "manifest.json").exists() and not (home / "deploy" / "fsd.tfplan").exists()
        zip_path = home / "deploy" / "package" / f"fsd-worker-{pkg.fsd_version()}-{ARCH}-py{PYTHON}.zip"
        stamp_path = zip_path.with_name(zip_path.name + pkg.STAMP_SUFFIX)
        stamp = json.loads(stamp_path.read_text())
        assert stamp["sha256"] == pkg.file_sha256(zip_path)  # the hash beside the zip

        def rebuilt_only_if_its_inputs_changed(rebuilt: bool) -> bool:
            """Other work may change fsd_core's sources meanwhile (a shared working tree): then,
            and only then, the package is rebuilt."""
            nonlocal stamp
            previous, stamp = stamp, json.loads(stamp_path.read_text())
            assert rebuilt == (stamp["inputs"] != previous["inputs"]), (rebuilt, stamp, previous)
            return rebuilt

        # 2. "y": exactly that plan is applied; the state is in the backend; the package went
        #    to the package bucket and the function runs it.
        code, shown = fsd_on_a_terminal(*deploy_args, env=env, answer="y")
        assert code == 0, shown[-3000:]
        planned = int(re.search(r"terraform plan: (\d+) to add", shown).group(1))
        assert f"Apply complete! Resources: {planned} added, 0 changed, 0 destroyed." in shown
        rebuilt_only_if_its_inputs_changed("package: unchanged, not rebuilt" not in shown)
        assert state_key in state_objects() and not (home / "deploy" / "terraform.tfstate").exists()
        manifest = Manifest.load(home / "deploy" / "manifest.json")
        assert manifest.endpoint == m.endpoint and manifest.function_name == f"{prefix}-worker"
        assert topics_named(m, prefix) == manifest.topic_arns
        location = re.search(r"^package: s3://([^/\s]+)/(\S+)", shown, re.MULTILINE)
        assert location, shown[-2000:]
        body = s3.get_object(Bucket=location.group(1), Key=location.group(2))["Body"].read()
        assert body == zip_path.read_bytes() and location.group(1).startswith(f"{prefix}-pkg-")
        config = client(m, "lambda").get_function_configuration(FunctionName=manifest.function_name)
        assert config["CodeSha256"] == base64.b64encode(bytes.fromhex(pkg.file_sha256(zip_path))).decode()
        doctor = fsd("doctor", "--manifest", home / "deploy" / "manifest.json", "--json", env=env)
        assert doctor.returncode == 0 and json.loads(doctor.stdout)["status"] == "ok", doctor.stdout

        # 3. Again, nothing changed: no question, no rebuild, the backend remembered.
        proc = fsd("deploy", "--var-file", var_file, "--wheel-dir", wheels, "--json", env=env)
        assert proc.returncode == 2 and "--yes" in proc.stderr  # no terminal, no --yes
        proc = fsd("deploy", "--var-file", var_file, "--wheel-dir", wheels, "--yes", "--json", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        doc = json.loads(proc.stdout)
        if rebuilt_only_if_its_inputs_changed(doc["package"]["rebuilt"]):  # the new package, nothing else
            assert doc["status"] == "applied" and doc["plan"]["changes"] == [
                {"action": "-/+", "address": "aws_s3_object.package[0]"},
                {"action": "~", "address": "module.worker_function[0].aws_lambda_function.this"}]
        else:
            assert doc["status"] == "no changes" and doc["plan"]["changes"] == [], doc["plan"]
            assert "terraform plan: no changes" in proc.stderr
        assert "[y/N]" not in proc.stderr
        assert [f["check"] for f in doc["doctor"]["findings"]][:3] == ["credentials", "region", "concurrency"]

        # 4. destroy, "n": every resource that would go is named; nothing goes.
        code, shown = fsd_on_a_terminal("destroy", env=env, answer="n")
        assert code == 1, shown
        assert f"terraform plan -destroy: 0 to add, 0 to change, {planned} to destroy" in shown
        assert "-    module.queue_channel[0].aws_sqs_queue.this[0]" in shown
        assert "-    module.worker_function[0].aws_lambda_function.this" in shown
        assert "force_destroy = false" in shown and "--delete-packages" in shown  # why it would stop
        assert "Destroy? [y/N]" in shown and "not destroyed" in error_lines(shown)[0]
        assert topics_named(m, prefix) == manifest.topic_arns

        # 5. destroy --yes --delete-packages: the package versions, then every resource.
        proc = fsd("destroy", "--yes", "--delete-packages", "--json", env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        doc = json.loads(proc.stdout)
        assert doc["status"] == "destroyed" and doc["plan"]["mode"] == "destroy" and doc["plan"]["destroy"] == planned
        assert f"Apply complete! Resources: 0 added, 0 changed, {planned} destroyed." in proc.stderr
        assert topics_named(m, prefix) == [] and buckets_named(m, prefix) == []
        assert not (home / "deploy" / "manifest.json").exists()
    finally:  # whatever happened, leave the shared emulator as it was
        if topics_named(m, prefix) or buckets_named(m, prefix):
            fsd("destroy", "--yes", "--delete-packages", env=env)


# --------------------------------------------------------------------------- pieces

def test_the_package_is_rebuilt_only_when_its_inputs_change(tmp_path):
    wheels = fake_wheels(tmp_path / "wheels", ARCH, PYTHON)
    first, built = pkg.ensure_package(tmp_path / "out", ARCH, PYTHON, wheels)
    assert built
    stamp = Path(first.path + pkg.STAMP_SUFFIX)
    kept = json.loads(stamp.read_text())
    assert kept["sha256"] == pkg.file_sha256(first.path) and kept["inputs"] == pkg.inputs_digest(ARCH, PYTHON, wheels)
    again, built = pkg.ensure_package(tmp_path / "out", ARCH, PYTHON, wheels)
    assert not built and again.summary() == first.summary()
    # Another wheel on offer (a new release): the inputs changed, so it is rebuilt.
    fake_wheel(wheels, "xxhash", "4.2.0", ARCH, PYTHON, {"xxhash/__init__.py": ""})
    _, built = pkg.ensure_package(tmp_path / "out", ARCH, PYTHON, wheels)
    assert built
    # A zip that is not the one built (changed by hand) is rebuilt too.
    Path(first.path).write_bytes(b"not the package")
    info, built = pkg.ensure_package(tmp_path / "out", ARCH, PYTHON, wheels)
    assert built and pkg.file_sha256(info.path) == json.loads(stamp.read_text())["sha256"]


def test_plan_summary_counts_like_terraform(tmp_path):
    shown = {
        "variables": {"region": {"value": "us-east-1"}},
        "resource_changes": [
            {"address": "a.new", "mode": "managed", "change": {"actions": ["create"]}},
            {"address": "b.edit", "mode": "managed", "change": {"actions": ["update"]}},
            {"address": "c.gone", "mode": "managed", "change": {"actions": ["delete"]}},
            {"address": "d.replaced", "mode": "managed", "change": {"actions": ["delete", "create"]}},
            {"address": "e.same", "mode": "managed", "change": {"actions": ["no-op"]}},
            {"address": "data.f", "mode": "data", "change": {"actions": ["read"]}},
        ],
        "output_changes": {"x": {"actions": ["no-op"]}, "y": {"actions": ["update"]}},
    }
    plan = Plan.from_show(tmp_path / "p", False, shown)
    assert (plan.add, plan.change, plan.remove, plan.outputs_changed) == (2, 1, 2, 1)
    assert plan.summary() == ["terraform plan: 2 to add, 1 to change, 2 to destroy (and 1 output)",
                              "  +    a.new", "  ~    b.edit", "  -    c.gone", "  -/+  d.replaced"]
    assert plan.variables == {"region": "us-east-1"} and not plan.empty
    assert Plan.from_show(tmp_path / "p", False, {"output_changes": {"x": {"actions": ["no-op"]}}}).empty


def test_backend_settings_are_checked_and_remembered(tmp_path, monkeypatch):
    from fsd_core.aws.terraform import TerraformProject
    from fsd_core.errors import InputError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "backend.hcl").write_text('bucket = "b"\n')
    project = TerraformProject(tmp_path / "work")
    with pytest.raises(InputError, match="'nope.hcl': neither a file nor KEY=VALUE"):
        project._backend_settings(["nope.hcl"])
    given = project._backend_settings(["backend.hcl", "key=fsd/prod.tfstate"])
    assert given == [str(tmp_path / "backend.hcl"), "key=fsd/prod.tfstate"]  # a file: made absolute
    assert project._backend_settings(None) == given and project.has_state  # what destroy inits with
    assert not TerraformProject(tmp_path / "other").has_state
