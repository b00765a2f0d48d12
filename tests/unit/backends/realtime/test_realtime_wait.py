"""wait_until: poll a condition until it holds, bounded, with an error that names it."""

from __future__ import annotations

import threading
import time

import pytest

from stackdrill.backends.realtime import WaitTimeout, wait_until


def test_returns_the_first_truthy_value() -> None:
    calls = iter([None, 0, "ready"])
    assert wait_until(lambda: next(calls), timeout=5, interval=0.01, what="x") == "ready"


def test_times_out_naming_what_it_waited_for() -> None:
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"quorum on alice: not within 0\.2 s"):
        wait_until(lambda: False, timeout=0.2, interval=0.05, what="quorum on alice")
    assert 0.15 <= time.monotonic() - t0 < 5.0  # near its 0.2 s, however busy the runner


def test_a_stop_event_ends_the_wait_at_once() -> None:
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout, match="stopped while waiting for boot"):
        wait_until(lambda: False, timeout=30, interval=5, what="boot", stop=stop)
    assert time.monotonic() - t0 < 4.5  # before its first 5 s interval was over
