"""The cloud part of `fsd gc`: an abandoned run's objects in the deployment bucket, and the
frames left in queues no live run holds.

The deployment is the one runs use now (`--manifest`, else $FSD_MANIFEST, the `fsd deploy`
manifest or the local emulator's); the emulator is never started for a gc: one that is down
took its resources with it, and one that does not answer leaves the cloud part to the next gc.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..aws.manifest import Manifest, configured_manifest_path, local_manifest_path
from ..errors import RunError

#: Seconds an emulator's endpoint has to answer before a gc leaves the cloud part for later.
ENDPOINT_WAIT_S = 2.0


def deployment(manifest_path: str | os.PathLike[str] | None = None) -> tuple[Manifest | None, str]:
    """The deployment to reclaim in, or None and why not (one line)."""
    from ..aws.emulator import endpoint_answers

    path = Path(manifest_path) if manifest_path else configured_manifest_path()
    if path is None:
        path = local_manifest_path()
        if not path.exists():
            return None, "no deployment is configured and the local one is not up (fsd local up)"
    manifest = Manifest.load(path)  # InputError (one line) for a bad --manifest
    if manifest.endpoint and not endpoint_answers(manifest.endpoint, ENDPOINT_WAIT_S):
        return None, f"the deployment's endpoint {manifest.endpoint} does not answer"
    return manifest, ""


#: `target`'s answer for a run whose objects went with the emulator that held them.
GONE = "gone"


def target(run: dict, manifest: Manifest | None, why: str) -> tuple[Manifest | None, str]:
    """The deployment holding a run's objects (the one its record names: `deployment` in its
    extra, else the one at hand), or None and why not: GONE when the emulator that held them
    has stopped (nothing listens at its endpoint), else "pending: ..." for the next gc."""
    from dataclasses import replace

    from ..aws.emulator import endpoint_listens

    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    recorded = extra.get("deployment") if isinstance(extra.get("deployment"), dict) else None
    if recorded is None:  # (recorded before runs named their deployment)
        return (manifest, "") if manifest is not None else (None, f"pending: {why}")
    endpoint, bucket = recorded.get("endpoint"), recorded.get("bucket")
    if isinstance(endpoint, str) and not endpoint_listens(endpoint):
        return None, GONE
    if manifest is None:
        return None, f"pending: {why}"
    if manifest.endpoint == endpoint:  # the same account or emulator: the bucket the run used
        return (replace(manifest, bucket=bucket) if isinstance(bucket, str) else manifest), ""
    where = f"at {endpoint}" if endpoint else "on AWS"
    return None, (f"pending: its objects are in bucket {bucket} {where}, not in the deployment at hand: "
                  f"fsd gc --manifest <that deployment's manifest>")


def workers_may_run(holder: Manifest) -> bool:
    """Can Lambda workers of a dead run still be running? On AWS nobody can kill them (and its
    record does not say when they were launched: one PUT, whose key expires with `stage/`, is
    cheaper than guessing); at the emulator gc has killed them."""
    return holder.endpoint is None


def leave_stop(holder: Manifest, run_id: str) -> None:
    """The run's stop key, for its workers still running to find at their next look (they end
    then, not at their message timeout); `stage/` expires by the bucket's lifecycle rule."""
    from ..engine.handler import STOP_KEY
    from ..engine.s3_stage import S3Stage

    S3Stage(holder, f"stage/{run_id}/").put(STOP_KEY, b"stop")


def objects_of(manifest: Manifest, run_id: str, dry_run: bool) -> int:
    """Delete (or, `dry_run`, count) the run's staged and object-channel objects; how many."""
    from ..aws.clients import BotoCoreError, ClientError, aws_failure
    from ..channels.object import count_objects_under, delete_run_objects_under

    if not manifest.bucket:
        return 0
    total = 0
    for prefix in (f"stage/{run_id}/", f"runs/{run_id}/"):
        try:
            found = count_objects_under(manifest, prefix)
            if found and not dry_run:
                delete_run_objects_under(manifest, prefix)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return total  # the bucket is gone, and what it held with it
            raise RunError(aws_failure("S3", "ListObjectsV2/DeleteObjects", exc)) from exc
        except BotoCoreError as exc:
            raise RunError(aws_failure("S3", "ListObjectsV2/DeleteObjects", exc)) from exc
        total += found
    return total


def drain_free_slots(manifest: Manifest, dry_run: bool) -> int:
    """Drain (or count) the queues of the deployment's slots that no live run leases: what is
    in them was left by a run that died. Each slot is held while it is drained, so no run
    starts on it meanwhile. Returns the messages found."""
    from ..aws.clients import BotoCoreError, ClientError, aws_failure, client
    from ..aws.leases import try_slot
    from ..channels.queue import drain_queues

    if not manifest.queue_urls:
        return 0
    sqs = client(manifest, "sqs")
    found = 0
    for slot, url in enumerate(manifest.queue_urls):
        lease = try_slot(manifest.queue_urls[0], slot)
        if lease is None:
            continue  # a live run's
        with lease:
            try:
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                waiting = sum(int(v) for v in attrs.values())
                if waiting and not dry_run:
                    drain_queues(manifest, 1, slots=[slot])
            except (ClientError, BotoCoreError) as exc:
                raise RunError(aws_failure("SQS", "ReceiveMessage/DeleteMessageBatch", exc)) from exc
        found += waiting
    return found
