"""One contract suite over every channel: local (files), queue (SNS->SQS), object (S3), the
cloud ones against the real emulator over HTTP on loopback, and the prediction recorder
(in-process). Then end-to-end reliability runs.
"""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
import pytest
import scipy.sparse as sp

from fsd_core.aws.clients import client
from fsd_core.aws.manifest import Manifest
from fsd_core.channels import open_channel
from fsd_core.channels.frames import Message
from fsd_core.channels.recorder import Hub
from fsd_core.errors import WorkerTimeout
from fsd_core.kernel.serial import infer
from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.run.coordinator import RunConfig, TestHooks, activations_equal, run

# The recorder is in-process: every check of the contract below applies to it, its ends
# sharing one hub per test. What does not apply is outside this suite: a recorder never
# carries a run (no end-to-end run, no clean-up: nothing outlives its hub), and the local
# channel's file checks are the local channel's. In the suite it frames as the queue channel
# does (chunked at a small limit), and `test_the_recorder_frames_as_the_transport_it_stands_for`
# holds it to the real queue and object channels frame by frame.
BACKENDS = ["local", "queue", "object", "recorder"]
RECORDER_MAX_FRAME = 200_000
RUN_KEY = "5e" * 32


def block(rows: int, cols: int, density: float, seed: int) -> sp.csr_matrix:
    b = sp.random(rows, cols, density=density, random_state=np.random.default_rng(seed), format="csr",
                  dtype=np.float32)
    b.data = (b.data * 32).astype(np.float32)
    return b


def same(a: Message | sp.csr_matrix, b: sp.csr_matrix) -> bool:
    if isinstance(a, Message):
        assert a.row_map is None and a.labels is None
        a = a.block
    return a.shape == b.shape and activations_equal(a, b)


@pytest.fixture(params=BACKENDS)
def make_channel(request, tmp_path):
    """Factory: make_channel(run_id, worker) -> an open channel end of the parametrised kind."""
    kind = request.param
    config = {"root": str(tmp_path / "channel")}
    if kind == "recorder":
        config = {"hub": Hub(), "variant": "queue", "max_frame_bytes": RECORDER_MAX_FRAME}
    elif kind != "local":
        manifest = request.getfixturevalue("local_deployment")
        config = {"manifest": manifest.to_dict(), "poll_wait": 1, "key": RUN_KEY}  # keyed, as a run opens them
    opened = []

    def make(run_id: str, worker: int):
        ch = open_channel(kind, run_id, worker, config)
        opened.append(ch)
        return ch

    make.kind = kind
    yield make
    for ch in opened:
        ch.close()


def test_blocks_arrive_once_per_sender_in_any_order(make_channel):
    run_id = uuid.uuid4().hex[:12]
    receiver, s1, s2 = make_channel(run_id, 0), make_channel(run_id, 1), make_channel(run_id, 2)
    b1, b2, later = block(20, 7, 0.3, 1), block(20, 5, 0.3, 2), block(20, 3, 0.5, 3)
    s2.send(2, 0, later)         # a block of a later layer arrives first: kept for later
    s2.flush()
    s1.send(1, 0, b1)
    s1.flush()
    s2.send(1, 0, b2)
    s2.flush()
    got = dict(receiver.receive(1, [1, 2], timeout=30))
    assert same(got[1], b1) and same(got[2], b2)
    assert len(got) == 2
    (src, blk), = list(receiver.receive(2, [2], timeout=30))
    assert src == 2 and same(blk, later)


def test_empty_block_is_delivered(make_channel):
    run_id = uuid.uuid4().hex[:12]
    receiver, sender = make_channel(run_id, 0), make_channel(run_id, 1)
    sender.send(1, 0, sp.csr_matrix((10, 4), dtype=np.float32))
    sender.flush()
    (src, msg), = list(receiver.receive(1, [1], timeout=30))
    assert src == 1 and msg.block.nnz == 0 and msg.empty


def test_dense_rows_with_a_row_map_arrive_intact(make_channel):
    """What workers send: distinct rows as a dense k x u array, the row map and the labels."""
    run_id = uuid.uuid4().hex[:12]
    receiver, sender = make_channel(run_id, 0), make_channel(run_id, 1)
    rng = np.random.default_rng(3)
    rows = rng.random((40, 9), dtype=np.float32)
    rows[rows < 0.4] = 0
    row_map = rng.integers(0, 9, 50)
    labels = np.arange(9)
    labels[4] = 1
    sender.send(1, 0, Message(rows, row_map, labels))
    sender.flush()
    (src, msg), = list(receiver.receive(1, [1], timeout=30))
    assert src == 1 and isinstance(msg.block, np.ndarray)
    assert msg.block.view(np.uint32).tolist() == rows.view(np.uint32).tolist()
    assert msg.row_map.tolist() == row_map.tolist() and msg.labels.tolist() == labels.tolist()


def test_a_row_map_travels_only_when_it_changed(make_channel):
    """Per (sender, receiver) the map goes once and again only when it changes; the receiver
    gets it back every layer. An empty block in between (the object channel writes it as a
    zero-length object, without its map) must not break the chain."""
    run_id = uuid.uuid4().hex[:12]
    receiver, sender, other = make_channel(run_id, 0), make_channel(run_id, 1), make_channel(run_id, 2)
    rng = np.random.default_rng(4)
    rows = rng.random((30, 3), dtype=np.float32) + 1
    a, b = rng.integers(0, 3, 5000), rng.integers(0, 3, 5000)
    zero = np.zeros((30, 3), dtype=np.float32)
    script = [(rows, a), (rows, a.copy()), (zero, b), (rows, b), (rows, b), (rows, a)]
    sizes = []
    for layer, (blk, m) in enumerate(script, start=1):
        before = sender.stats.bytes_sent
        sender.send(layer, 0, Message(blk, m, None))
        sender.flush()
        sizes.append(sender.stats.bytes_sent - before)
        other.send(layer, 0, Message(rows, b, None))  # another sender's map is its own
        other.flush()
        got = dict(receiver.receive(layer, [1, 2], timeout=30))
        assert got[2].row_map.tolist() == b.tolist()
        if blk is zero:
            assert got[1].empty
            continue
        assert got[1].row_map.tolist() == m.tolist() and not got[1].repeat_map
    assert sizes[1] < sizes[0] and sizes[5] > sizes[4]  # a repeat is smaller; a change travels
    # after the empty block: the object channel sent no map with it, the others did
    assert (sizes[3] > sizes[4]) if make_channel.kind == "object" else (sizes[3] == sizes[4])


def test_duplicates_are_dropped(make_channel):
    run_id = uuid.uuid4().hex[:12]
    receiver, sender = make_channel(run_id, 0), make_channel(run_id, 1)
    b = block(30, 6, 0.4, 4)
    for _ in range(3):
        sender.send(1, 0, b)
        sender.flush()
    sender.send(2, 0, b)
    sender.flush()
    assert [s for s, _ in receiver.receive(1, [1], timeout=30)] == [1]
    assert [s for s, _ in receiver.receive(2, [1], timeout=30)] == [1]
    if make_channel.kind != "object":  # an object key holds one value: rewrites are not duplicates
        # The extra copies of layer 1 are dropped, not delivered: nothing more for layer 1.
        deadline = time.monotonic() + 10
        while receiver.stats.duplicates < 2 and time.monotonic() < deadline:
            for frame in receiver._poll(1, {1}, 0.5):
                receiver._accept(frame)
        assert receiver.stats.duplicates == 2
        assert receiver._ready.get(1) in (None, [])


def test_messages_of_another_run_are_ignored(make_channel):
    run_id, other = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    receiver = make_channel(run_id, 0)
    stranger, sender = make_channel(other, 1), make_channel(run_id, 1)
    stranger.send(1, 0, block(10, 4, 0.5, 5))
    stranger.flush()
    mine = block(10, 4, 0.5, 6)
    sender.send(1, 0, mine)
    sender.flush()
    (src, blk), = list(receiver.receive(1, [1], timeout=30))
    assert same(blk, mine)


def test_large_block_is_chunked_and_reassembled(make_channel):
    run_id = uuid.uuid4().hex[:12]
    receiver, sender = make_channel(run_id, 0), make_channel(run_id, 1)
    rng = np.random.default_rng(7)
    big = sp.csr_matrix(rng.random((400, 500), dtype=np.float32))  # ~800 KB of incompressible floats
    sender.send(1, 0, big)
    sender.flush()
    if make_channel.kind in ("queue", "recorder"):
        assert sender.stats.messages_sent >= 4  # over 256 KiB: several SNS messages
    (src, blk), = list(receiver.receive(1, [1], timeout=60))
    assert same(blk, big)


def test_local_frames_are_written_over_once_their_layer_is_spent(tmp_path):
    """The local channel reuses frame files: a frame's data stays intact while its layer is
    current (and while a frame that arrived early waits for its layer), and the files a
    receiver hands back are what the sender writes its next frames into."""
    from fsd_core.channels.local import LocalChannel

    run_id = uuid.uuid4().hex[:12]
    receiver, sender = LocalChannel(run_id, 0, tmp_path), LocalChannel(run_id, 1, tmp_path)
    rng = np.random.default_rng(0)
    blocks = {l: rng.random((50, 400 - 10 * l), dtype=np.float32) for l in range(1, 12)}
    created = set()

    def send(layer: int) -> None:
        before = {p.stat().st_ino for p in (tmp_path / "spare-w1").iterdir()}
        sender.send(layer, 0, Message(blocks[layer], np.arange(blocks[layer].shape[1]), None))
        sender.flush()
        frame, = [p for p in (tmp_path / "w0").iterdir() if p.name.startswith(f"{layer}.")]
        if frame.stat().st_ino not in before:
            created.add(frame.stat().st_ino)

    send(1)
    send(3)  # early: held until layer 3 is spent
    send(2)
    for layer in range(1, 11):
        (src, msg), = list(receiver.receive(layer, [1], timeout=30))
        assert src == 1 and np.array_equal(msg.block, blocks[layer])  # read in place
        if layer + 2 != 3 and layer + 2 <= 11:
            send(layer + 2)
        assert np.array_equal(msg.block, blocks[layer])  # intact until a later layer is asked for
    assert len(created) <= 4  # every later frame went into a file a receiver handed back
    receiver.cleanup()
    sender.cleanup()
    assert not (tmp_path / "spare-w1").exists() and not (tmp_path / "w0").exists()


def test_local_frame_files_outlive_the_run_in_a_spares_directory(tmp_path):
    """With `spares` (a warm pool's directory), handed-back files go there, the next run's
    sender writes over them, and cleaning a run up leaves them."""
    from fsd_core.channels.local import LocalChannel

    spares, block = tmp_path / "spares", np.ones((40, 30), dtype=np.float32)
    for k in range(2):
        run_id, root = uuid.uuid4().hex[:12], tmp_path / f"run{k}"
        receiver, sender = LocalChannel(run_id, 0, root, spares), LocalChannel(run_id, 1, root, spares)
        kept = {p.stat().st_ino for p in (spares / "spare-w1").iterdir()}
        assert bool(kept) == (k == 1)  # the first run's file, handed back
        for layer in (1, 2):
            sender.send(layer, 0, Message(block * layer, np.arange(30), None))
            sender.flush()
            (_, msg), = list(receiver.receive(layer, [1], timeout=30))
            assert np.array_equal(msg.block, block * layer)
        if k == 1:  # layer 1's frame went into the file kept from the first run
            assert kept <= {p.stat().st_ino for p in (spares / "spare-w1").iterdir()}
        receiver.cleanup()
        sender.cleanup()
        assert not (root / "spare-w1").exists() and not (root / "w0").exists()
        assert len(list((spares / "spare-w1").iterdir())) == 1


def test_local_inbox_junk_is_dropped_not_fatal(tmp_path):
    """Files in a local inbox that are not frames (a stray name, a name claiming more bytes
    than the file has) are counted as malformed and dropped; the real frame still arrives."""
    from fsd_core.channels.local import LocalChannel

    run_id = uuid.uuid4().hex[:12]
    receiver, sender = LocalChannel(run_id, 0, tmp_path), LocalChannel(run_id, 1, tmp_path)
    (tmp_path / "w0" / "stray.txt").write_bytes(b"not a frame")
    (tmp_path / "w0" / "1.1.0.token-0.999999").write_bytes(b"short")
    b = block(10, 4, 0.5, 1)
    sender.send(1, 0, b)
    sender.flush()
    (src, msg), = list(receiver.receive(1, [1], timeout=30))
    assert src == 1 and same(msg, b)
    assert receiver.stats.malformed == 2
    assert not (tmp_path / "w0" / "stray.txt").exists()


def test_local_channel_says_when_a_layers_messages_are_all_here(tmp_path):
    """`arrived` (no waiting) is True once every expected sender's message of the layer is in,
    and the messages it took in are still received, once each."""
    from fsd_core.channels.local import LocalChannel

    run_id = uuid.uuid4().hex[:12]
    receiver, s1, s2 = (LocalChannel(run_id, w, tmp_path) for w in range(3))
    b1, b2, b3 = block(10, 4, 0.5, 1), block(10, 3, 0.5, 2), block(10, 2, 0.5, 3)
    assert not receiver.arrived(1, [1, 2])
    s1.send(1, 0, b1)
    s2.send(2, 0, b3)  # another layer's does not count
    assert not receiver.arrived(1, [1, 2])
    assert receiver.arrived(1, [1])
    s2.send(1, 0, b2)
    assert receiver.arrived(1, [1, 2]) and receiver.arrived(1, [])
    got = dict(receiver.receive(1, [1, 2], timeout=5))
    assert same(got[1], b1) and same(got[2], b2) and receiver.stats.duplicates == 0
    assert not receiver.arrived(2, [1, 2]) and receiver.arrived(2, [2])
    (src, msg), = list(receiver.receive(2, [2], timeout=5))
    assert src == 2 and same(msg, b3)


def test_arrived_tells_without_losing_a_message(make_channel):
    """`arrived` never waits and never takes a message from `receive`; transports whose poll
    is free (local, queue, recorder) say True once the layer's messages are in, the object
    channel always says False (a check would be a request)."""
    run_id = uuid.uuid4().hex[:12]
    receiver, sender = make_channel(run_id, 0), make_channel(run_id, 1)
    b = block(12, 5, 0.5, 7)
    assert not receiver.arrived(1, [1])
    sender.send(1, 0, b)
    sender.flush()
    sender.settle()
    deadline = time.monotonic() + 15
    while receiver.capabilities.poll_is_free and not receiver.arrived(1, [1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.arrived(1, [1]) == (make_channel.kind != "object")
    (src, msg), = list(receiver.receive(1, [1], timeout=30))
    assert src == 1 and same(msg, b) and receiver.stats.duplicates == 0


@pytest.mark.parametrize("variant", ["queue", "object"])
def test_the_recorder_frames_as_the_transport_it_stands_for(local_deployment, variant):
    """What `run.predict` relies on: for the same messages (rows, a row map sent once, then
    repeated, an empty block, a block over the queue's frame limit) the recorder records the
    frames, and their sizes, that the real channel sends; and both deliver the same messages."""
    from fsd_core.channels.object import delete_run_objects
    from fsd_core.channels.queue import frame_limit

    run_id, manifest = uuid.uuid4().hex[:12], {"manifest": local_deployment.to_dict(), "poll_wait": 1}
    hub = Hub()
    limit = frame_limit(local_deployment.max_workers) if variant == "queue" else None
    recorded = {"hub": hub, "variant": variant, "max_frame_bytes": limit}
    real, real_rx = open_channel(variant, run_id, 1, manifest), open_channel(variant, run_id, 0, manifest)
    recorder, recorder_rx = open_channel("recorder", run_id, 1, recorded), open_channel("recorder", run_id, 0, recorded)
    rng = np.random.default_rng(8)
    rows = rng.random((30, 4), dtype=np.float32) + 1
    row_map = rng.integers(0, 4, 500)
    script = [Message(rows, row_map, None), Message(rows, row_map.copy(), None),
              Message(np.zeros((30, 4), np.float32), row_map, None), Message(rows, row_map, None),
              Message(sp.csr_matrix(rng.random((400, 500), dtype=np.float32)))]
    try:
        for layer, msg in enumerate(script, start=1):
            before = (real.stats.messages_sent, real.stats.bytes_sent)
            real.send(layer, 0, msg)
            recorder.send(layer, 0, msg)
            sent = (real.stats.messages_sent - before[0], real.stats.bytes_sent - before[1])
            assert (len(hub.sizes[layer][1]), sum(n for _, n in hub.sizes[layer][1])) == sent, layer
            real.flush()
            (_, a), = list(real_rx.receive(layer, [1], timeout=30))
            (_, b), = list(recorder_rx.receive(layer, [1], timeout=30))
            assert type(a.block) is type(b.block) and a.empty == b.empty, layer
            assert (a.row_map is None) == (b.row_map is None), layer
            if a.row_map is not None:
                assert np.array_equal(a.row_map, b.row_map), layer
            if sp.issparse(a.block):
                assert same(a.block, sp.csr_matrix(b.block)), layer
            else:
                assert np.array_equal(a.block, b.block), layer
    finally:
        for ch in (real, real_rx, recorder, recorder_rx):
            ch.close()
        if variant == "object":
            delete_run_objects(local_deployment, run_id)
    if variant == "object":  # the empty block: a zero-length object, recorded as 0 bytes
        assert hub.sizes[3][1] == [(0, 0)]


def test_silent_sender_times_out_naming_worker_and_layer(make_channel):
    run_id = uuid.uuid4().hex[:12]
    receiver = make_channel(run_id, 3)
    started = time.monotonic()
    with pytest.raises(WorkerTimeout, match=r"worker 3 timed out after 2s waiting for layer 7 from worker\(s\) 5"):
        list(receiver.receive(7, [5], timeout=2))
    assert time.monotonic() - started < 6


# ------------------------------------------------------------------- end to end on the emulator
@pytest.fixture(scope="module")
def rx_small():
    return radixnet(256, 12, seed=5), synthetic_inputs(256, 48, seed=5)


def queue_depths(manifest: Manifest, workers: int) -> list[int]:
    sqs = client(manifest, "sqs")
    out = []
    for url in manifest.queue_urls[:workers]:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        out.append(int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]))
    return out


def run_objects(manifest: Manifest, run_id: str) -> list[str]:
    s3 = client(manifest, "s3")
    keys = []
    for prefix in (f"runs/{run_id}/", f"stage/{run_id}/"):
        keys += [o["Key"] for o in s3.list_objects_v2(Bucket=manifest.bucket, Prefix=prefix).get("Contents", [])]
    return keys


@pytest.mark.parametrize("variant", ["queue", "object"])
@pytest.mark.parametrize("workers", [1, 2, 4, 8])
def test_cloud_variants_equal_serial_generated(local_deployment, rx_small, variant, workers):
    model, inputs = rx_small
    r = run(RunConfig(None, None, variant, workers, "metis", record=False, model=model, inputs=inputs,
                      manifest=local_deployment.to_dict(), timeout=30))
    assert r.status == "ok", r.error
    assert activations_equal(infer(model, inputs).activations, r.activations)
    # Predicted deterministic requests and bytes equal the counted ones exactly.
    for api, n in r.predicted["requests"].items():
        assert r.requests.get(api, 0) == n, api
        assert r.billed_requests.get(api, 0) == r.predicted["billed_requests"][api], api
    assert r.predicted["bytes_sent"] == r.bytes_sent and r.predicted["messages"] == r.messages
    assert abs(r.predicted["cost_usd"] - r.cost_usd) <= 0.01 * r.cost_usd
    assert run_objects(local_deployment, r.run_id) == []
    if variant == "queue":
        assert queue_depths(local_deployment, workers) == [0] * workers
    # The stage's requests, apart and priced: each worker's shard and inputs staged and read,
    # its report written (and read by the coordinator), worker 0's result; listings and the clean-up.
    st = r.stage_requests
    assert st["s3:PutObject"] == 2 * workers + workers + 1
    assert st["s3:GetObject"] >= 2 * workers + workers + 1 and st["s3:ListObjectsV2"] >= 2
    assert st.get("s3:DeleteObjects", 0) >= 1
    from fsd_core.cost.model import price_workers, requests_usd

    billed = requests_usd(r.billed_requests) + price_workers(r.worker_reports, 2048).usd
    assert r.cost_usd == pytest.approx(billed + requests_usd(st), rel=1e-12) and requests_usd(st) > 0


@pytest.mark.parametrize("variant", ["queue", "object"])
@pytest.mark.parametrize("workers", [1, 2, 4, 8])
def test_cloud_variants_equal_serial_imported(local_deployment, gc_model, gc_inputs, variant, workers):
    model, inputs = gc_model.truncated(16), gc_inputs[:150]
    r = run(RunConfig(None, None, variant, workers, "hypergraph", record=False, model=model, inputs=inputs,
                      manifest=local_deployment.to_dict(), timeout=30))
    assert r.status == "ok", r.error
    assert activations_equal(infer(model, inputs).activations, r.activations)


def test_duplicated_sqs_deliveries_give_the_same_result(local_deployment, rx_small):
    model, inputs = rx_small
    r = run(RunConfig(None, None, "queue", 3, "block", record=False, model=model, inputs=inputs, predict=False,
                      manifest=local_deployment.to_dict(), timeout=30),
            hooks=TestHooks(channel_options={"duplicate": True}))
    assert r.status == "ok", r.error
    assert activations_equal(infer(model, inputs).activations, r.activations)
    assert sum(w.get("duplicates", 0) for w in r.worker_reports) > 0
    assert queue_depths(local_deployment, len(local_deployment.queue_urls)) == [0] * len(local_deployment.queue_urls)


def test_foreign_messages_waiting_in_queues_are_ignored(local_deployment, rx_small):
    from fsd_core.aws.leases import lease_slots
    from fsd_core.channels.queue import POLL_LINGER

    model, inputs = rx_small
    queues = local_deployment.queue_urls
    with lease_slots(queues[0], len(queues), len(queues) - 2, wait_s=60) as held:  # the run gets the other two
        free = [s for s in range(len(queues)) if s not in held.slots]
        stale = open_channel("queue", "stale0run000", 1, {"manifest": local_deployment.to_dict(), "slots": free,
                                                          "quiet_at": time.time() + POLL_LINGER})
        try:
            for layer in (1, 2, 3):
                stale.send(layer, 0, block(48, 10, 0.5, layer))
                stale.send(layer, 1, block(48, 10, 0.5, layer))
            stale.flush()
        finally:
            stale.close()
        assert [queue_depths(local_deployment, len(queues))[s] for s in free] == [3, 3]
        r = run(RunConfig(None, None, "queue", 2, "block", record=False, model=model, inputs=inputs, predict=False,
                          manifest=local_deployment.to_dict(), timeout=30))
    assert r.status == "ok", r.error
    assert activations_equal(infer(model, inputs).activations, r.activations)
    dropped = sum(w["channel"]["foreign"] + w["channel"]["malformed"] for w in r.worker_reports)
    assert dropped >= 6  # (without the run's key: dropped as forged)
    assert queue_depths(local_deployment, len(queues)) == [0] * len(queues)


def test_a_queue_channel_sends_nothing_before_its_slots_are_quiet(local_deployment):
    from fsd_core.channels.queue import POLL_LINGER

    key = {"manifest": local_deployment.to_dict(), "key": "ab" * 32}

    def opened(quiet_at: float):
        channel = open_channel("queue", "quiet0run000", 1, dict(key, quiet_at=quiet_at))
        channel.close()
        return time.time(), channel.stats.quiet_wait_s

    quiet_at = time.time() + 1.0
    ready, waited = opened(quiet_at)
    assert ready >= quiet_at and waited <= 1.0  # (sent nothing before it)
    ready, waited = opened(time.time() + 1000.0)  # (a clock far ahead: the wait is capped)
    assert waited == pytest.approx(POLL_LINGER, abs=0.05)
    assert opened(time.time() - 5.0)[1] == 0.0


def test_a_poll_left_open_by_a_previous_run_takes_no_frame_of_the_next(local_deployment, monkeypatch):
    """A worker that ends during a long poll leaves it open at SQS, and the poll takes what
    arrives and hides it for the visibility timeout: the next run's first frames on that slot
    (measured: back-to-back 1.3 s runs took 6.2 s). The run's lease says when its slots are
    quiet again and its senders wait for that."""
    import threading

    from fsd_core.aws.leases import lease_slots
    from fsd_core.channels import queue
    from fsd_core.channels.queue import DEFAULT_POLL_WAIT, VISIBILITY_TIMEOUT, QueueChannel, drain_queues

    monkeypatch.setattr(queue, "POLL_LINGER", DEFAULT_POLL_WAIT + 2.0)  # (margins for a loaded machine)
    sqs = client(local_deployment, "sqs")
    with lease_slots(local_deployment.queue_urls[0], len(local_deployment.queue_urls), 2) as lease:
        config = {"manifest": local_deployment.to_dict(), "key": "cd" * 32, "slots": lease.slots}
        taken: list = []
        previous = threading.Thread(target=lambda: taken.extend(sqs.receive_message(
            QueueUrl=local_deployment.queue_urls[lease.slots[0]], MaxNumberOfMessages=10,
            WaitTimeSeconds=DEFAULT_POLL_WAIT, VisibilityTimeout=VISIBILITY_TIMEOUT).get("Messages", [])))
        previous.start()  # (the poll of the previous run's worker on this slot, which ended now)
        sender = open_channel("queue", "next0run0000", 1, dict(config, quiet_at=time.time() + queue.POLL_LINGER))
        receiver = QueueChannel("next0run0000", 0, local_deployment, receive=False, slots=lease.slots).keyed(config)
        try:
            sender.send(1, 0, sent := block(48, 10, 0.5, 1))
            sender.flush()
            sender.settle()
            (src, got), = list(receiver.receive(1, [1], timeout=3))
            assert src == 1 and same(got, sent)
        finally:
            sender.close()
            receiver.close()
            previous.join()
            drain_queues(local_deployment, 2, slots=lease.slots)
        assert not taken and sender.stats.quiet_wait_s > 0


def test_back_to_back_queue_runs_on_the_same_slots_wait_for_them_to_be_quiet(local_deployment, rx_small,
                                                                              monkeypatch):
    from fsd_core.aws.leases import lease_slots
    from fsd_core.channels import queue

    # The first run's slots are quiet 4 s after it (not 1.5 s), so the second run's workers,
    # however slowly they start, find them not yet quiet (each waits its cap, POLL_LINGER).
    monkeypatch.setattr(queue, "POLL_LINGER", 4.0)

    model, inputs = rx_small
    config = RunConfig(None, None, "queue", 2, "block", record=False, model=model, inputs=inputs, predict=False,
                       manifest=local_deployment.to_dict(), timeout=30)
    queues = local_deployment.queue_urls
    with lease_slots(queues[0], len(queues), len(queues) - 2, wait_s=60):  # the same two slots for both
        first, second = run(config), run(config)
    for r in (first, second):
        assert r.status == "ok", r.error
        assert activations_equal(infer(model, inputs).activations, r.activations)
    waited = [w["channel"]["quiet_wait_s"] for w in second.worker_reports]
    assert all(w > 0 for w in waited), waited  # (the first run's polls were still open when they started)
    assert queue_depths(local_deployment, len(queues)) == [0] * len(queues)


def test_back_to_back_warm_queue_runs_do_not_wait(local_deployment, rx_small):
    """A warm pool's processes outlive their run: a poll one leaves open hands back what it
    takes, so the next run on the same slots need not wait."""
    from fsd_core.aws.leases import lease_slots
    from fsd_core.engine.pool import WorkerPool

    model, inputs = rx_small
    queues = local_deployment.queue_urls
    with lease_slots(queues[0], len(queues), len(queues), wait_s=60) as everything:
        time.sleep(max(0.0, everything.quiet_at - time.time()))  # earlier tests' runs' polls have ended
    with WorkerPool() as pool, lease_slots(queues[0], len(queues), len(queues) - 2, wait_s=60):
        config = RunConfig(None, None, "queue", 2, "block", record=False, model=model, inputs=inputs, predict=False,
                           manifest=local_deployment.to_dict(), timeout=30, pool=pool)
        runs = [run(config) for _ in range(3)]
    for r in runs:
        assert r.status == "ok", r.error
        assert activations_equal(infer(model, inputs).activations, r.activations)
    for r in runs:
        assert [w["channel"]["quiet_wait_s"] for w in r.worker_reports] == [0.0, 0.0]


def test_the_drain_waits_for_messages_a_dead_receiver_left_in_flight(local_deployment):
    """A worker that ends during a long poll leaves the poll open at the server, which takes
    what arrives or reappears next (the flake this test pins down: a previous run's worker
    took the next run's first messages, and that run's own ended worker took them again when
    they reappeared during its drain) and leaves them invisible for the visibility timeout.
    The latest such a message reappears is POLL_LINGER + VISIBILITY_TIMEOUT after the drain
    starts: the drain must still take it."""
    from fsd_core.channels.queue import POLL_LINGER, VISIBILITY_TIMEOUT, drain_queues

    time.sleep(POLL_LINGER + 0.5)  # the long polls earlier tests' workers left open end first
    drain_queues(local_deployment, 1)  # and what they left
    sqs = client(local_deployment, "sqs")
    url = local_deployment.queue_urls[0]
    for k in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"stale {k}")
    hidden = math.ceil(POLL_LINGER + VISIBILITY_TIMEOUT)
    taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=hidden)["Messages"]
    assert len(taken) == 3 and queue_depths(local_deployment, 1) == [3]  # in flight, never deleted
    start = time.monotonic()
    counts = drain_queues(local_deployment, 1)
    assert queue_depths(local_deployment, 1) == [0]
    assert time.monotonic() - start >= hidden - 0.5  # (it waited for them)
    assert counts["sqs:DeleteMessageBatch"] >= 1 and counts["sqs:GetQueueAttributes"] >= 2


@pytest.mark.parametrize("variant", ["queue", "object"])
def test_failed_cloud_run_is_cleaned_up(local_deployment, rx_small, variant):
    model, inputs = rx_small
    r = run(RunConfig(None, None, variant, 3, "block", record=False, model=model, inputs=inputs, predict=False,
                      manifest=local_deployment.to_dict(), timeout=3),
            hooks=TestHooks(fault={"worker": 2, "layer": 4, "kind": "crash"}))
    assert r.status == "failed" and "worker 2" in r.error, r.error
    assert "layer 4" in r.error or "exited without a report" in r.error, r.error  # a peer, or the liveness look
    assert run_objects(local_deployment, r.run_id) == []
    if variant == "queue":
        assert queue_depths(local_deployment, len(local_deployment.queue_urls)) == [0] * len(local_deployment.queue_urls)
