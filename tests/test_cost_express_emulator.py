"""What the local emulator (moto's server) supports of S3 Express One Zone directory buckets, as
docs/cost-model.md states it: the object channel's calls work on a directory bucket once boto3's
session authentication is off (moto has no CreateSession credentials)."""

from __future__ import annotations

import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "fsd-runs--use1-az4--x-s3"  # a directory bucket's name: base--zone-id--x-s3


@pytest.fixture
def s3(monkeypatch):
    from botocore.config import Config

    monkeypatch.setenv("AWS_S3_DISABLE_EXPRESS_SESSION_AUTH", "true")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://{host}:{port}",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(s3={"addressing_style": "path"}))
    yield client
    server.stop()


def test_the_object_channel_calls_work_on_a_directory_bucket(s3):
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
        "Location": {"Type": "AvailabilityZone", "Name": "use1-az4"},
        "Bucket": {"DataRedundancy": "SingleAvailabilityZone", "Type": "Directory"}})
    assert BUCKET in [b["Name"] for b in s3.list_directory_buckets()["Buckets"]]
    key = "runs/r1/l1/0-1"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"frame")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"frame"
    with pytest.raises(s3.exceptions.NoSuchKey):  # a key not yet written: the channel retries it
        s3.get_object(Bucket=BUCKET, Key="runs/r1/l1/0-2")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/r1/")  # directory buckets want a trailing "/"
    assert [o["Key"] for o in listed["Contents"]] == [key]
    assert s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key}]})["Deleted"] == [{"Key": key}]
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
        {"ID": "expire-runs", "Status": "Enabled", "Filter": {"Prefix": "runs/"}, "Expiration": {"Days": 1}}]})
