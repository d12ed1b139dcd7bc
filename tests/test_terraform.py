"""The Terraform root module: fmt and validate offline, and a real apply against the emulator
whose outputs (the manifest) are checked by using them: SNS filter routing, S3, policies."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fsd_core.aws.clients import client
from fsd_core.aws.local_stack import deployment_for_run, ensure_local_deployment
from fsd_core.aws.manifest import Manifest
from fsd_core.aws.terraform import TerraformProject, find_plugin_mirror, terraform_source_dir
from fsd_core.errors import RunError
from tests.cloud_fixtures import deployment_home, fsd_home, needs_terraform  # noqa: F401

TF_DIR = terraform_source_dir()
pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform absent")


def _tf_env(tmp_path: Path) -> dict[str, str]:
    rc = tmp_path / "terraformrc"
    rc.write_text(f'provider_installation {{\n filesystem_mirror {{\n  path = "{find_plugin_mirror()}"\n'
                  '  include = ["registry.terraform.io/hashicorp/*"]\n }\n}\n')
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_DATA_DIR": str(tmp_path / "data"),
            "CHECKPOINT_DISABLE": "1"}


def test_fmt_check_is_clean() -> None:
    proc = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(TF_DIR)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_terraform
def test_init_offline_and_validate(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(TF_DIR, config, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    env = _tf_env(tmp_path)
    init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"],
                          cwd=config, env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stdout + init.stderr
    validate = subprocess.run(["terraform", "validate", "-json"], cwd=config, env=env,
                              capture_output=True, text=True)
    result = json.loads(validate.stdout)
    assert result["valid"], result["diagnostics"]


# Root outputs the Manifest does not name (yet): Manifest.from_dict ignores keys it does not
# know, so they ride along in `terraform output -json` (the applied tests below read a
# manifest from outputs that include them).
EXTRA_OUTPUTS = {"package_bucket", "failure_queue_url", "failure_queue_arn", "worker_role_arn",
                 "object_bucket", "object_storage"}


def test_outputs_are_the_manifest_fields_and_known_extras() -> None:
    text = (TF_DIR / "outputs.tf").read_text()
    names = {line.split('"')[1] for line in text.splitlines() if line.startswith("output ")}
    fields = set(Manifest.__dataclass_fields__) - {"source"}
    assert fields <= names and names - fields <= EXTRA_OUTPUTS, names ^ fields


def test_the_lambda_runs_with_the_local_workers_environment() -> None:
    from fsd_core.engine.launch import WORKER_ENV

    text = (TF_DIR / "modules" / "worker_function" / "main.tf").read_text()
    block = text[text.index("environment {"):]
    block = block[:block.index("}")]
    variables = dict(re.findall(r'^\s*(\w+)\s*=\s*"([^"]*)"', block, re.M))
    assert variables == WORKER_ENV


def test_worker_policy_names_no_bare_wildcard_resource() -> None:
    iam = (TF_DIR / "modules" / "worker_function" / "iam.tf").read_text()
    assert '"*"' not in iam  # wildcards only inside ARNs, each explained in a comment


# A module planned on its own, offline: a provider with dummy credentials that makes no call
# (data sources whose inputs are all known, such as IAM policy documents, are rendered).
_OFFLINE_PROVIDER = """
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "offline"
  secret_key                  = "offline"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}
"""


def _plan_module(tmp_path: Path, module: str, outputs: dict[str, str],
                 variables: dict[str, object]) -> dict[str, object]:
    """Plan a copy of `modules/<module>` as a root with `variables`; the planned values of the
    extra `outputs` (name -> expression) and, under "resources", of every resource (address ->
    values). Needs no AWS account and no network."""
    root = tmp_path / module
    shutil.copytree(TF_DIR / "modules" / module, root, ignore=shutil.ignore_patterns(".terraform*"))
    (root / "zz_harness.tf").write_text(_OFFLINE_PROVIDER + "".join(
        f'output "{name}" {{\n  value = {expr}\n}}\n' for name, expr in outputs.items()))
    (root / "test.tfvars.json").write_text(json.dumps(variables))
    env = _tf_env(tmp_path)
    for cmd in (["terraform", "init", "-backend=false", "-input=false", "-no-color"],
                ["terraform", "plan", "-input=false", "-no-color", "-refresh=false",
                 "-var-file=test.tfvars.json", "-out=plan", f"-state={tmp_path / 'none.tfstate'}"]):
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    show = subprocess.run(["terraform", "show", "-json", "plan"], cwd=root, env=env,
                          capture_output=True, text=True, check=True)
    planned = json.loads(show.stdout)["planned_values"]
    values: dict[str, object] = {name: planned["outputs"][name].get("value") for name in outputs}
    values["resources"] = {r["address"]: r.get("values", {})
                           for r in planned["root_module"].get("resources", [])}
    return values


def _statements(policy_json: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(policy_json)["Statement"]}


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


@needs_terraform
@pytest.mark.parametrize("object_channel, prefixes", [(False, ["stage/"]),
                                                      (True, ["stage/", "runs/"])])
def test_worker_may_get_and_put_only_its_stage_and_run_keys(tmp_path: Path, object_channel: bool,
                                                            prefixes: list[str]) -> None:
    """Every deployment stages runs under stage/ (a queue-only one too); runs/ only with the
    object channel. No bucket-wide object access, no s3:*, and a listing bound to the same
    prefixes (S3 answers 404 for a missing key only to a caller that may list it)."""
    bucket = "arn:aws:s3:::fsd-test-bucket"
    out = _plan_module(tmp_path, "worker_function", {"objects": "data.aws_iam_policy_document.objects.json"},
                       {"name": "fsd-test-worker", "s3_bucket": "pkg", "s3_key": "pkg.zip",
                        "bucket_arn": bucket, "object_channel": object_channel})
    statements = _statements(out["objects"])
    assert set(statements) == {"DeploymentObjects", "DeployedModels", "DeploymentList"}
    objects, listing = statements["DeploymentObjects"], statements["DeploymentList"]
    assert sorted(_as_list(objects["Action"])) == ["s3:GetObject", "s3:PutObject"]
    assert sorted(_as_list(objects["Resource"])) == sorted(f"{bucket}/{p}*" for p in prefixes)
    # deployed models' shards (fsd model deploy): read only
    models = statements["DeployedModels"]
    assert _as_list(models["Action"]) == ["s3:GetObject"] and _as_list(models["Resource"]) == [f"{bucket}/models/*"]
    assert _as_list(listing["Action"]) == ["s3:ListBucket"] and listing["Resource"] == bucket
    assert sorted(_as_list(listing["Condition"]["StringLike"]["s3:prefix"])) == sorted(
        f"{p}*" for p in prefixes + ["models/"])


def test_root_grants_the_stage_in_every_deployment() -> None:
    """The worker module gets the bucket unconditionally; enable_object only adds runs/ (see
    test_root_sends_runs_to_the_express_bucket_only_with_express)."""
    main = (TF_DIR / "main.tf").read_text()
    call = main[main.index('module "worker_function"'):]
    call = call[:call.index("\n}\n")]
    assert re.search(r"^\s*bucket_arn\s*=\s*module\.object_channel\.bucket_arn\s*$", call, re.M)
    assert 'count' not in main[main.index('module "object_channel"'):].split("\n}\n")[0]


def test_bucket_lifecycle_expires_stage_and_runs() -> None:
    text = (TF_DIR / "modules" / "object_channel" / "main.tf").read_text()
    rules = re.findall(r"\n  rule \{\n(.*?)\n  \}\n", text, re.S)
    by_prefix = {m.group(1): rule for rule in rules
                 if (m := re.search(r'prefix = "([^"]+)"', rule))}
    assert set(by_prefix) >= {"stage/", "runs/"}
    for rule in (by_prefix["stage/"], by_prefix["runs/"]):
        assert "expiration {" in rule and "abort_incomplete_multipart_upload {" in rule


@needs_terraform
def test_express_object_channel_is_a_directory_bucket_with_expiry(tmp_path: Path) -> None:
    out = _plan_module(tmp_path, "object_channel", {},
                       {"name_prefix": "fsd-test", "object_storage": "express", "express_az_id": "use1-az4"})
    resources = out["resources"]
    directory = resources["aws_s3_directory_bucket.express[0]"]
    assert directory["location"] == [{"name": "use1-az4", "type": "AvailabilityZone"}]
    rules = {r["id"]: r for r in resources["aws_s3_bucket_lifecycle_configuration.express[0]"]["rule"]}
    assert rules["expire-runs"]["filter"][0]["prefix"] == "runs/"
    assert rules["expire-runs"]["expiration"][0]["days"] == 1
    assert all(r["abort_incomplete_multipart_upload"][0]["days_after_initiation"] == 1 for r in rules.values())
    assert "aws_s3_bucket_policy.express[0]" in resources  # lets S3 Lifecycle open its sessions
    standard = _plan_module(tmp_path / "standard", "object_channel", {}, {"name_prefix": "fsd-test"})
    assert not any("express" in address for address in standard["resources"])


@needs_terraform
def test_express_without_a_zone_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="needs express_az_id"):
        _plan_module(tmp_path, "object_channel", {}, {"name_prefix": "fsd-test", "object_storage": "express"})


@needs_terraform
def test_worker_may_open_sessions_on_the_express_bucket_only(tmp_path: Path) -> None:
    bucket = "arn:aws:s3:::fsd-test-bucket"
    express = "arn:aws:s3express:us-east-1:123456789012:bucket/fsd-test-bucket--use1-az4--x-s3"
    out = _plan_module(tmp_path, "worker_function", {"objects": "data.aws_iam_policy_document.objects.json"},
                       {"name": "fsd-test-worker", "s3_bucket": "pkg", "s3_key": "pkg.zip",
                        "bucket_arn": bucket, "object_channel": False, "express_bucket_arn": express})
    statements = _statements(out["objects"])
    assert _as_list(statements["DeploymentObjects"]["Resource"]) == [f"{bucket}/stage/*"]
    session = statements["ObjectChannelExpress"]
    assert session["Action"] == "s3express:CreateSession" and session["Resource"] == express
    assert session["Condition"] == {"StringEquals": {"s3express:SessionMode": "ReadWrite"}}


def test_root_sends_runs_to_the_express_bucket_only_with_express() -> None:
    main = (TF_DIR / "main.tf").read_text()
    call = main[main.index('module "worker_function"'):]
    call = call[:call.index("\n}\n")]
    assert re.search(r'^\s*object_channel\s*=\s*var\.enable_object && var\.object_storage == "standard"\s*$',
                     call, re.MULTILINE)
    assert re.search(r"^\s*express_bucket_arn\s*=\s*var\.enable_object \? "
                     r"module\.object_channel\.express_bucket_arn : null\s*$", call, re.MULTILINE)


@needs_terraform
def test_worker_async_invocations_are_not_retried_and_failures_reported(tmp_path: Path) -> None:
    out = _plan_module(tmp_path, "worker_function", {},
                       {"name": "fsd-test-worker", "s3_bucket": "pkg", "s3_key": "pkg.zip"})
    resources = out["resources"]
    config = resources["aws_lambda_function_event_invoke_config.this"]
    assert config["maximum_retry_attempts"] == 0 and config["maximum_event_age_in_seconds"] == 300
    (destinations,) = config["destination_config"]
    assert len(destinations["on_failure"]) == 1 and not destinations.get("on_success")
    assert resources["aws_sqs_queue.failures"]["sqs_managed_sse_enabled"] is True
    assert not resources["aws_lambda_function.this"].get("dead_letter_config")  # one record per failure
    iam = (TF_DIR / "modules" / "worker_function" / "iam.tf").read_text()
    grant = iam[iam.index('sid       = "FailureDestination"'):]
    assert re.match(r'sid\s*=\s*"FailureDestination"\s*actions\s*=\s*\["sqs:SendMessage"\]\s*'
                    r'resources\s*=\s*\[aws_sqs_queue\.failures\.arn\]', grant)


@needs_terraform
def test_package_bucket_is_versioned_and_not_force_destroyed(tmp_path: Path) -> None:
    out = _plan_module(tmp_path, "package_bucket", {}, {"name_prefix": "fsd-test"})
    resources = out["resources"]
    assert resources["aws_s3_bucket.this"]["force_destroy"] is False
    assert resources["aws_s3_bucket.this"]["bucket_prefix"] == "fsd-test-pkg-"
    (versioning,) = resources["aws_s3_bucket_versioning.this"]["versioning_configuration"]
    assert versioning["status"] == "Enabled"
    (sse,) = resources["aws_s3_bucket_server_side_encryption_configuration.this"]["rule"]
    assert sse["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    assert all(resources["aws_s3_bucket_public_access_block.this"][k] for k in
               ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    assert "aws_s3_bucket_policy.this[0]" in resources  # TLS only


def test_root_keeps_packages_out_of_the_run_data_bucket() -> None:
    main = (TF_DIR / "main.tf").read_text()
    upload = main[main.index('resource "aws_s3_object" "package"'):]
    upload = upload[:upload.index("\n}\n")]
    assert re.search(r"^\s*bucket\s*=\s*local\.package_bucket\s*$", upload, re.M)
    packages = main[main.index('module "package_bucket"'):]
    assert re.search(r"^\s*force_destroy\s*=\s*var\.package_force_destroy\s*$",
                     packages[:packages.index("\n}\n")], re.M)
    variables = (TF_DIR / "variables.tf").read_text()
    block = variables[variables.index('variable "package_force_destroy"'):]
    assert re.search(r"^\s*default\s*=\s*false\s*$", block[:block.index("\n}\n")], re.M)


# --------------------------------------------------------------------------- examples, docs, locks

EXAMPLE = TF_DIR / "examples" / "complete"
MODULE_DIRS = [TF_DIR, *sorted(p for p in (TF_DIR / "modules").iterdir() if p.is_dir())]


def _block_names(path: Path, kind: str) -> list[str]:
    return re.findall(rf'^{kind} "([^"]+)" {{', path.read_text(), re.MULTILINE)


def _table_names(readme: str, section: str) -> list[str]:
    """First-column names of the markdown table under `## <section>`."""
    body = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", body, re.MULTILINE)


@needs_terraform
def test_example_complete_inits_against_its_lock_file_and_validates(tmp_path: Path) -> None:
    config = tmp_path / "terraform"
    shutil.copytree(TF_DIR, config, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    env = _tf_env(tmp_path)
    example = config / "examples" / "complete"
    init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color",
                           "-lockfile=readonly"], cwd=example, env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stdout + init.stderr
    validate = subprocess.run(["terraform", "validate", "-json"], cwd=example, env=env,
                              capture_output=True, text=True)
    result = json.loads(validate.stdout)
    assert result["valid"], result["diagnostics"]


def test_example_re_exports_every_root_output() -> None:
    """So that `terraform output -json` of the example is a deployment manifest too."""
    text = (EXAMPLE / "outputs.tf").read_text()
    assert _block_names(EXAMPLE / "outputs.tf", "output") == _block_names(TF_DIR / "outputs.tf", "output")
    for name in _block_names(EXAMPLE / "outputs.tf", "output"):
        assert re.search(rf'output "{name}" {{[^}}]*value\s*=\s*module\.fsd\.{name}\n', text), name
    assert re.search(r'source\s*=\s*"\.\./\.\./"', (EXAMPLE / "main.tf").read_text())


def test_lock_files_are_committed_and_pin_the_provider() -> None:
    gitignore = (TF_DIR.parent / ".gitignore").read_text().splitlines()
    assert ".terraform.lock.hcl" not in [line.strip() for line in gitignore]
    mirror = find_plugin_mirror()
    for root in (TF_DIR, EXAMPLE):
        lock = (root / ".terraform.lock.hcl").read_text()
        (version,) = re.findall(r'provider "registry\.terraform\.io/hashicorp/aws" \{\s*version\s*=\s*"([^"]+)"', lock)
        assert re.search(r'"h1:[A-Za-z0-9+/=]+"', lock)
        if mirror is not None:
            assert (mirror / "registry.terraform.io" / "hashicorp" / "aws" / version).is_dir()


@pytest.mark.parametrize("module", MODULE_DIRS, ids=lambda p: p.name)
def test_readme_tables_list_exactly_the_inputs_and_outputs(module: Path) -> None:
    readme = (module / "README.md").read_text()
    assert _table_names(readme, "Inputs") == _block_names(module / "variables.tf", "variable")
    assert _table_names(readme, "Outputs") == _block_names(module / "outputs.tf", "output")


def test_root_module_declares_no_backend() -> None:
    """`fsd deploy` / `fsd local up` init a copy of this directory with local state: an empty
    backend "s3" {} would fail there (README: Remote state)."""
    for path in TF_DIR.glob("*.tf"):
        assert not re.search(r"^\s*backend\s+\"", path.read_text(), re.MULTILINE), path.name


def test_missing_terraform_is_one_line_error(fsd_home: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSD_TERRAFORM", "/nonexistent/terraform")
    with pytest.raises(RunError) as err:
        TerraformProject(fsd_home / "tf").apply(variables={})
    assert "\n" not in str(err.value) and "FSD_TERRAFORM" in str(err.value)


def test_failing_apply_is_one_line_error(fsd_home: Path) -> None:  # noqa: F811
    if find_plugin_mirror() is None:
        pytest.skip("no provider mirror")
    with pytest.raises(RunError) as err:
        TerraformProject(fsd_home / "tf").apply(variables={"max_workers": 0})
    message = str(err.value)
    assert "\n" not in message and message.startswith("terraform apply failed")
    assert "terraform-apply.log" in message


# --------------------------------------------------------------------------- applied

def test_manifest_from_apply(local_deployment: Manifest) -> None:
    m = local_deployment
    assert m.emulated and m.endpoint.startswith("http://127.0.0.1:")
    assert m.max_workers >= 2 and len(m.queue_urls) == m.max_workers and len(m.topic_arns) == 1
    assert m.bucket and m.function_name
    assert Manifest.load(m.source) == m


def test_filter_policy_routes_dst_to_its_queue_only(local_deployment: Manifest) -> None:
    from fsd_core.channels.queue import POLL_LINGER

    m = local_deployment
    sns, sqs = client(m, "sns"), client(m, "sqs")
    time.sleep(POLL_LINGER)  # polls an earlier run's workers left open on these queues have ended
    body = f"block-{time.time()}"
    sns.publish(TopicArn=m.topic_arns[0], Message=body,
                MessageAttributes={"dst": {"DataType": "String", "StringValue": "1"}})
    got1 = sqs.receive_message(QueueUrl=m.queue_urls[1], WaitTimeSeconds=2,
                               MaxNumberOfMessages=10).get("Messages", [])
    assert body in [msg["Body"] for msg in got1]  # raw delivery: the body as published
    got0 = sqs.receive_message(QueueUrl=m.queue_urls[0], WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
    assert body not in [msg["Body"] for msg in got0]
    for msg in got1:
        sqs.delete_message(QueueUrl=m.queue_urls[1], ReceiptHandle=msg["ReceiptHandle"])


def test_queue_policy_admits_only_our_topic(local_deployment: Manifest) -> None:
    m = local_deployment
    sqs = client(m, "sqs")
    for url in m.queue_urls:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["SqsManagedSseEnabled"] == "true"
        (statement,) = json.loads(attrs["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
        assert statement["Resource"] == attrs["QueueArn"]
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == m.topic_arns[0]
    subs = client(m, "sns").list_subscriptions_by_topic(TopicArn=m.topic_arns[0])
    assert len(subs["Subscriptions"]) == m.max_workers


def test_bucket_put_get_and_settings(local_deployment: Manifest) -> None:
    m = local_deployment
    s3 = client(m, "s3")
    s3.put_object(Bucket=m.bucket, Key="runs/test/l1/0-1", Body=b"\x00\x01payload")
    assert s3.get_object(Bucket=m.bucket, Key="runs/test/l1/0-1")["Body"].read() == b"\x00\x01payload"
    s3.delete_object(Bucket=m.bucket, Key="runs/test/l1/0-1")
    block = s3.get_public_access_block(Bucket=m.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rules = s3.get_bucket_lifecycle_configuration(Bucket=m.bucket)["Rules"]
    for prefix in ("runs/", "stage/"):
        assert any(r.get("Filter", {}).get("Prefix") == prefix and r["Expiration"]["Days"] >= 1
                   and r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
                   for r in rules), prefix
    sse = s3.get_bucket_encryption(Bucket=m.bucket)["ServerSideEncryptionConfiguration"]
    assert sse["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_packages_live_apart_from_run_data(local_deployment: Manifest) -> None:
    m = local_deployment
    s3 = client(m, "s3")
    name_prefix = m.function_name.removesuffix("-worker")
    (packages,) = [b["Name"] for b in s3.list_buckets()["Buckets"]
                   if b["Name"].startswith(f"{name_prefix}-pkg-")]
    assert packages != m.bucket
    assert s3.get_bucket_versioning(Bucket=packages)["Status"] == "Enabled"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=packages).get("Contents", [])]
    assert keys and all(k.startswith("packages/") for k in keys)
    assert s3.list_objects_v2(Bucket=m.bucket, Prefix="packages/").get("KeyCount", 0) == 0


def test_failed_invocations_go_to_the_encrypted_failure_queue(local_deployment: Manifest) -> None:
    m = local_deployment
    lam, sqs, iam = client(m, "lambda"), client(m, "sqs"), client(m, "iam")
    config = lam.get_function_event_invoke_config(FunctionName=m.function_name)
    assert config["MaximumRetryAttempts"] == 0 and config["MaximumEventAgeInSeconds"] == 300
    target = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert target.endswith(f":{m.function_name}-failures")
    url = sqs.get_queue_url(QueueName=f"{m.function_name}-failures")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"] == target and attrs["SqsManagedSseEnabled"] == "true"
    role = lam.get_function(FunctionName=m.function_name)["Configuration"]["Role"].rsplit("/", 1)[1]
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    (grant,) = [s for s in doc["Statement"] if s.get("Sid") == "FailureDestination"]
    assert grant["Action"] == "sqs:SendMessage" and grant["Resource"] == target


def test_function_has_no_async_retries(local_deployment: Manifest) -> None:
    m = local_deployment
    lam = client(m, "lambda")
    config = lam.get_function_event_invoke_config(FunctionName=m.function_name)
    assert config["MaximumRetryAttempts"] == 0
    role = lam.get_function(FunctionName=m.function_name)["Configuration"]["Role"]
    iam = client(m, "iam")
    name = role.rsplit("/", 1)[1]
    (policy_name,) = iam.list_role_policies(RoleName=name)["PolicyNames"]
    doc = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    resources = [r for s in doc["Statement"] for r in
                 (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert "*" not in resources
    assert any(r.endswith(":" + m.queue_urls[0].rsplit("/", 1)[1]) for r in resources)
    objects = {r for s in doc["Statement"] if s.get("Sid") == "DeploymentObjects"
               for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    assert objects == {f"arn:aws:s3:::{m.bucket}/stage/*", f"arn:aws:s3:::{m.bucket}/runs/*"}


def test_ensure_local_deployment_reuses_it(local_deployment: Manifest,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSD_HOME", str(deployment_home(local_deployment.source)))
    monkeypatch.delenv("FSD_MANIFEST", raising=False)
    start = time.monotonic()
    again = ensure_local_deployment(2)
    assert again == local_deployment and time.monotonic() - start < 10
    assert deployment_for_run(2, "queue") == local_deployment
