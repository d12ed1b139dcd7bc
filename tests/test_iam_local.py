"""The local stack enforces IAM as AWS would: the operator and the workers sign with their own
identities, and the worker role may do only what the deployment's policy grants."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.exceptions import ClientError

from fsd_core.aws.clients import client
from fsd_core.aws.credentials import WORKER_CREDENTIALS_ENV, as_environment, operator
from fsd_core.aws.local_stack import worker_credentials
from fsd_core.aws.manifest import Manifest

RUN = "0123456789ab"


@pytest.fixture(scope="module")
def role(local_deployment: Manifest) -> dict[str, str]:
    return worker_credentials(local_deployment, RUN)


@pytest.fixture
def as_worker(role, monkeypatch):
    """Clients made inside the test sign as the worker role, as a worker process's do."""
    monkeypatch.setenv(WORKER_CREDENTIALS_ENV, as_environment(role)[WORKER_CREDENTIALS_ENV])


def denied(call) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in ("AccessDenied", "403", "AuthorizationError")
    return False


def test_the_manifest_names_the_worker_role(local_deployment):
    assert local_deployment.worker_role_arn and local_deployment.worker_role_arn.endswith("-worker-role")


def test_a_role_that_does_not_exist_cannot_be_assumed(local_deployment):
    from fsd_core.aws.clients import client

    sts = client(local_deployment, "sts")
    missing = local_deployment.worker_role_arn.rsplit("/", 1)[0] + "/fsd-no-such-role"
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=missing, RoleSessionName="probe")
    assert refused.value.response["Error"]["Code"] == "AccessDenied" and missing in str(refused.value)
    assert sts.assume_role(RoleArn=local_deployment.worker_role_arn, RoleSessionName="probe")["Credentials"]


def test_the_operator_has_keys_and_anonymous_callers_are_refused(local_deployment):
    keys = operator(local_deployment.endpoint)
    assert keys and keys["aws_access_key_id"].startswith("AKIA")
    dummy = boto3.session.Session().client("s3", region_name="us-east-1", endpoint_url=local_deployment.endpoint,
                                           aws_access_key_id="testing", aws_secret_access_key="testing")
    with pytest.raises(ClientError) as refused:
        dummy.list_buckets()
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_the_worker_role_reads_and_writes_its_prefixes_only(local_deployment, as_worker):
    m = local_deployment
    s3 = client(m, "s3")
    s3.put_object(Bucket=m.bucket, Key=f"stage/{RUN}/report-0.json", Body=b"{}")
    assert s3.get_object(Bucket=m.bucket, Key=f"stage/{RUN}/report-0.json")["Body"].read() == b"{}"
    s3.put_object(Bucket=m.bucket, Key=f"runs/{RUN}/l1/0-1", Body=b"frame")
    assert denied(lambda: s3.put_object(Bucket=m.bucket, Key="elsewhere/x", Body=b"1"))
    assert denied(lambda: s3.put_object(Bucket=m.bucket, Key="stagex/y", Body=b"1"))
    assert denied(lambda: s3.delete_object(Bucket=m.bucket, Key=f"stage/{RUN}/report-0.json"))
    assert denied(lambda: s3.create_bucket(Bucket="fsd-worker-made-this"))


def test_the_worker_role_cannot_write_into_another_bucket(local_deployment, role, monkeypatch):
    m = local_deployment
    client(m, "s3").create_bucket(Bucket="fsd-someone-elses")  # as the operator
    monkeypatch.setenv(WORKER_CREDENTIALS_ENV, as_environment(role)[WORKER_CREDENTIALS_ENV])
    s3 = client(m, "s3")
    assert denied(lambda: s3.put_object(Bucket="fsd-someone-elses", Key=f"stage/{RUN}/x", Body=b"1"))
    assert denied(lambda: s3.get_object(Bucket="fsd-someone-elses", Key="anything"))


def test_the_worker_role_uses_its_queues_and_topics_and_makes_none(local_deployment, as_worker):
    m = local_deployment
    sqs, sns = client(m, "sqs"), client(m, "sns")
    sqs.receive_message(QueueUrl=m.queue_urls[0], WaitTimeSeconds=0)
    sns.publish_batch(TopicArn=m.topic_arns[0], PublishBatchRequestEntries=[
        {"Id": "a", "Message": "probe", "MessageAttributes": {"dst": {"DataType": "String", "StringValue": "999"}}}])
    assert denied(lambda: sqs.create_queue(QueueName="fsd-worker-queue"))
    assert denied(lambda: sns.create_topic(Name="fsd-worker-topic"))
    assert denied(lambda: sqs.purge_queue(QueueUrl=m.queue_urls[0]))


def test_worker_processes_get_the_role_not_the_operator(local_deployment, role):
    assert role["aws_access_key_id"] != operator(local_deployment.endpoint)["aws_access_key_id"]
    assert role["aws_session_token"]
    assert os.environ.get(WORKER_CREDENTIALS_ENV) is None  # the test process itself is the operator
