"""Worker-slot leases: concurrent runs never share a slot; a lease ends with its process."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from fsd_core.aws.leases import in_use, lease_slots
from fsd_core.errors import InputError


@pytest.fixture
def deployment():
    return f"test-deployment-{uuid.uuid4().hex}"


def test_two_leases_get_disjoint_slots(deployment):
    with lease_slots(deployment, 8, 3) as a, lease_slots(deployment, 8, 4) as b:
        assert len(a.slots) == 3 and len(b.slots) == 4 and not set(a.slots) & set(b.slots)
        assert in_use(deployment, 8) == 7  # a lock belongs to its open file: held even against this process
    with lease_slots(deployment, 8, 8) as everything:
        assert everything.slots == list(range(8))  # released on exit


def test_too_few_free_slots_is_one_line_after_the_wait(deployment):
    notices = []
    with lease_slots(deployment, 4, 3):
        holder = subprocess.Popen([sys.executable, "-c", (
            "import sys, time; from fsd_core.aws.leases import lease_slots; "
            f"l = lease_slots({deployment!r}, 4, 1); print(l.slots, flush=True); time.sleep(60)")],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "[3]"
            start = time.monotonic()
            with pytest.raises(InputError, match="4 of the deployment's 4 worker slots are leased by other runs|"
                                                 "worker slots are leased by other runs"):
                lease_slots(deployment, 4, 1, wait_s=0.5, notice=notices.append)
            assert time.monotonic() - start >= 0.5 and len(notices) == 1
        finally:
            holder.kill()
            holder.wait()


def test_a_lease_ends_when_its_holder_is_killed(deployment):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from fsd_core.aws.leases import lease_slots; "
        f"l = lease_slots({deployment!r}, 2, 2); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert in_use(deployment, 2) == 2
    with pytest.raises(InputError):
        lease_slots(deployment, 2, 1)
    holder.kill()  # SIGKILL: no clean-up code runs
    holder.wait()
    with lease_slots(deployment, 2, 2, wait_s=5) as lease:
        assert lease.slots == [0, 1]


def test_more_workers_than_slots_is_refused_at_once(deployment):
    with pytest.raises(InputError, match="has 2 worker slots, the run needs 3"):
        lease_slots(deployment, 2, 3, wait_s=60)


def test_a_released_slot_is_quiet_only_after_its_runs_polls_have_ended(deployment):
    """A run releases its slots with the time its workers' polls may stay open; the next lease
    takes quiet slots first and says when the ones it took are quiet."""
    with lease_slots(deployment, 3, 1) as first:
        assert first.slots == [0] and first.quiet_at <= time.time()
    with lease_slots(deployment, 3, 1) as run:
        assert run.slots == [0]
        run.release(quiet_s=30.0)  # (as a run that launched workers)
    with lease_slots(deployment, 3, 2) as other:
        assert other.slots == [1, 2] and other.quiet_at <= time.time()  # the quiet ones
    before = time.time()
    with lease_slots(deployment, 3, 3) as everything:
        assert everything.slots == [0, 1, 2] and before + 25 < everything.quiet_at <= time.time() + 30.01
        everything.release()  # a release without workers (gc's, a run that never launched) keeps the time
    with lease_slots(deployment, 3, 3) as again:
        assert before + 25 < again.quiet_at


@pytest.mark.parametrize("damage", [b"\xff\x00not a time", b"nan", b"inf", b"-inf", b"-5", b""])
def test_a_damaged_slot_file_counts_as_quiet(deployment, damage):
    from fsd_core.aws.leases import lease_dir

    with lease_slots(deployment, 2, 2):
        pass
    for slot in (0, 1):
        (lease_dir(deployment) / f"slot-{slot}").write_bytes(damage)
    with lease_slots(deployment, 2, 2) as lease:
        assert lease.slots == [0, 1] and lease.quiet_at <= time.time()


@pytest.mark.parametrize("damage", [b"1e300", b"99999999999999999999"])
def test_a_slot_file_cannot_keep_a_slot_busy_for_long(deployment, damage):
    from fsd_core.aws.leases import MAX_QUIET_S, lease_dir

    with lease_slots(deployment, 1, 1):
        pass
    (lease_dir(deployment) / "slot-0").write_bytes(damage)
    with lease_slots(deployment, 1, 1) as lease:
        assert time.time() < lease.quiet_at <= time.time() + MAX_QUIET_S
