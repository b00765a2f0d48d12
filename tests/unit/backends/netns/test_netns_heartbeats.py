"""Heartbeats on the real kernel: beats from a namespace arrive, and shutdown ends both
threads and closes every socket without waiting for them."""

from __future__ import annotations

import os
import time

import pytest
from netns_helpers import needs_root

from stackdrill.backends.netns import nlbatch, nsops
from stackdrill.backends.netns.heartbeats import Heartbeats
from stackdrill.waiting import wait_until

pytestmark = [needs_root, pytest.mark.netns]


def test_beats_arrive_and_shutdown_ends_both_threads_and_closes_the_sockets() -> None:
    ns = f"sdt-hb{os.getpid()}"
    nsops.create_namespaces([ns])
    try:
        batch = nlbatch.Batch(ns)
        batch.set_up(nlbatch.LOOPBACK_INDEX, "lo")
        nlbatch.send([batch])
        beats = Heartbeats(ns, "127.0.0.1", time.monotonic)
        beats.start("h1", ns)
        wait_until(lambda: beats.last("h1") is not None, timeout=10, interval=0.05,
                   what="a beat from h1")
        beats.shutdown()
        wait_until(lambda: not beats._receiver.is_alive() and not beats._sender.is_alive(),
                   timeout=10, interval=0.01, what="both heartbeat threads gone")
        assert beats._sock.fileno() == -1  # the receiver closed its socket on the way out
        last = beats.last("h1")
        time.sleep(0.5)  # two and a half beat intervals
        assert beats.last("h1") == last
    finally:
        nsops.remove_namespaces([ns])
