"""Forged frames on the shared transports: whoever can write to the bucket or a queue can put
bytes in front of a worker, but only frames with the run's MAC are accepted. Forged, replayed
(another run's key), truncated frames and frames lying about their chunk count are dropped and
counted, and never keep the real frames out."""

from __future__ import annotations

import base64
import secrets
import uuid

import numpy as np
import pytest
import scipy.sparse as sp

from fsd_core.aws.clients import client
from fsd_core.channels import open_channel
from fsd_core.channels.frames import Header, Message, encode_message, frames_for
from fsd_core.channels.object import empty_block_frame, object_key
from fsd_core.errors import WorkerTimeout
from fsd_core.run.coordinator import activations_equal


def real_block() -> sp.csr_matrix:
    b = sp.random(30, 9, density=0.3, random_state=np.random.default_rng(7), format="csr", dtype=np.float32)
    b.data = (b.data * 32).astype(np.float32)
    return b


def forgeries(run_id: str, layer: int, src: int, dst: int, other_key: bytes) -> dict[str, bytes]:
    """What an attacker who knows the layout (but not the key) can write."""
    wrong = sp.csr_matrix(np.full((30, 9), 31.0, dtype=np.float32))
    payload = encode_message(Message(wrong))
    h = Header(run_id, layer, src, dst, 0, 1)
    replayed = frames_for(h, payload, None, key=other_key)[0]
    return {
        "unkeyed well-formed block": frames_for(h, payload, None)[0],
        "unkeyed empty block": empty_block_frame(run_id, layer, src, dst),
        "another run's key (replay)": replayed,
        "truncated": replayed[:-5],
        "claims 7 chunks": frames_for(Header(run_id, layer, src, dst, 0, 7), payload[:40], None, key=other_key)[0],
        "zero-length object": b"",
    }


@pytest.mark.parametrize("variant", ["queue", "object"])
def test_forged_frames_are_dropped_and_the_real_one_arrives(local_deployment, variant):
    m = local_deployment
    run_id = uuid.uuid4().hex[:12]
    key = secrets.token_hex(32)
    config = {"manifest": m.to_dict(), "poll_wait": 1, "key": key}
    receiver = open_channel(variant, run_id, 0, config)
    sender = open_channel(variant, run_id, 1, config)
    forged = forgeries(run_id, 1, 1, 0, secrets.token_bytes(32))
    try:
        if variant == "object":  # each forgery sits under the key the real frame will take
            s3 = client(m, "s3")
            for name, body in forged.items():
                s3.put_object(Bucket=m.bucket, Key=object_key(run_id, 1, 1, 0), Body=body)
                with pytest.raises(WorkerTimeout):  # read, dropped, and read again until the deadline
                    list(receiver.receive(1, {1}, timeout=1.0))
            assert receiver.stats.malformed >= len(forged)
        else:  # forged frames wait in the receiver's queue ahead of the real one
            sns = client(m, "sns")
            for body in forged.values():
                if body:
                    sns.publish(TopicArn=m.topic_arns[0], Message=base64.b64encode(body).decode(),
                                MessageAttributes={"dst": {"DataType": "String", "StringValue": "0"}})
        real = real_block()
        sender.send(1, 0, real)
        sender.flush()
        (src, message), = list(receiver.receive(1, {1}, timeout=30))
        assert src == 1 and activations_equal(message.block, real)
        if variant == "queue":
            assert receiver.stats.malformed >= 5  # each forgery seen and dropped, none in the way
    finally:
        receiver.close()
        sender.close()


def test_an_unkeyed_or_wrongly_keyed_frame_never_decodes():
    from fsd_core.channels.codec import FrameError
    from fsd_core.channels.frames import unpack_header

    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    h = Header("0123456789ab", 3, 1, 0, 0, 1)
    good = frames_for(h, encode_message(Message(real_block())), None, key=key)[0]
    header, _ = unpack_header(good, key)
    assert header == h
    for frame in (frames_for(h, encode_message(Message(real_block())), None)[0],
                  frames_for(h, encode_message(Message(real_block())), None, key=other)[0],
                  good[:-1], good[:30], bytes([good[0] ^ 1]) + good[1:]):
        with pytest.raises(FrameError):
            unpack_header(frame, key)
