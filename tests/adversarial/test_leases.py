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
