"""Doorbells (doorbell.py): a ring wakes the owner's wait; ringing never fails the ringer."""

import os
import threading
import time

from fsd_core.doorbell import Doorbell, open_bell, ring


def test_a_ring_from_another_thread_ends_the_wait_and_drain_forgets_it(tmp_path):
    bell = Doorbell(tmp_path / "bell")
    fd = open_bell(tmp_path / "bell")
    threading.Timer(0.05, ring, args=(fd,)).start()
    start = time.monotonic()
    bell.wait(30)
    assert time.monotonic() - start < 15  # woken by the ring, not by the timeout
    bell.drain()
    start = time.monotonic()
    bell.wait(0.05)  # nothing left to answer: the full timeout
    assert time.monotonic() - start >= 0.04
    os.close(fd)
    bell.close()


def test_ringing_a_missing_or_full_bell_is_harmless(tmp_path):
    assert open_bell(tmp_path / "nowhere") is None
    bell = Doorbell(tmp_path / "bell")
    fd = open_bell(tmp_path / "bell")
    for _ in range(100_000):  # far past the pipe's capacity
        ring(fd)
    bell.drain()
    bell.wait(0)
    os.close(fd)
    bell.close()
    bell.close()  # twice is fine
