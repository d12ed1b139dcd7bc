"""The run's stage in the deployment bucket (the `s3` stage).

Shards, inputs, reports and the result travel through `stage/{run}/` in the bucket, exactly as
on AWS (a Lambda has no other way to get them); the coordinator deletes the prefix at the end.
"""

from __future__ import annotations

from typing import Any

from ..aws.clients import BotoCoreError, ClientError, aws_failure, client
from ..aws.manifest import Manifest
from ..errors import RunError
from .stage import Stage


class S3Stage(Stage):
    """A prefix of the deployment bucket."""

    def __init__(self, manifest: dict[str, Any] | Manifest, prefix: str) -> None:
        self.manifest = manifest if isinstance(manifest, Manifest) else Manifest.from_dict(manifest)
        if not self.manifest.bucket:
            raise RunError(f"{self.manifest.source}: the deployment has no bucket to stage the run in")
        self.prefix = prefix
        self.s3 = client(self.manifest, "s3")
        self.requests: dict[str, int] = {}

    def _count(self, api: str, n: int = 1) -> None:
        self.requests[api] = self.requests.get(api, 0) + n

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "S3Stage":
        return cls(config["manifest"], config["prefix"])

    def config(self) -> dict[str, Any]:
        return {"kind": "s3", "manifest": self.manifest.to_dict(), "prefix": self.prefix}

    def put(self, key: str, data: bytes) -> None:
        self._count("s3:PutObject")
        try:
            self.s3.put_object(Bucket=self.manifest.bucket, Key=self.prefix + key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise RunError(f"stage: {aws_failure('S3', 'PutObject', exc)} ({self.prefix}{key})") from exc

    def get(self, key: str) -> bytes | None:
        self._count("s3:GetObject")
        try:
            return self.s3.get_object(Bucket=self.manifest.bucket, Key=self.prefix + key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        except (BotoCoreError, ClientError) as exc:
            raise RunError(f"stage: {aws_failure('S3', 'GetObject', exc)} ({self.prefix}{key})") from exc

    def keys(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.manifest.bucket,
                                                                          Prefix=self.prefix + prefix):
                self._count("s3:ListObjectsV2")
                found += [o["Key"][len(self.prefix):] for o in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise RunError(f"stage: {aws_failure('S3', 'ListObjectsV2', exc)} ({self.prefix}{prefix})") from exc
        return sorted(found)

    def delete(self, key: str) -> None:
        self._count("s3:DeleteObject")
        try:
            self.s3.delete_object(Bucket=self.manifest.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":  # (gone with its bucket)
                raise RunError(f"stage: {aws_failure('S3', 'DeleteObject', exc)} ({self.prefix}{key})") from exc
        except BotoCoreError as exc:
            raise RunError(f"stage: {aws_failure('S3', 'DeleteObject', exc)} ({self.prefix}{key})") from exc

    def delete_all(self) -> None:
        from ..channels.object import delete_run_objects_under

        for api, n in delete_run_objects_under(self.manifest, self.prefix).items():
            self._count(api, n)
