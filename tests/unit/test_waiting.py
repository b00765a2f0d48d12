"""wait_until: poll a condition until it holds, bounded, with an error that names it."""

from __future__ import annotations

import threading
import time

import pytest

from stackdrill.waiting import WaitTimeout, wait_until


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


def test_no_pause_after_the_condition_holds() -> None:
    """Ready at once: back at once, however long the interval (the netns workload start
    and nbdkit waits rely on this for their latency)."""
    t0 = time.monotonic()
    assert wait_until(lambda: 7, timeout=60, interval=30, what="x") == 7
    assert time.monotonic() - t0 < 1.0


def test_polls_a_bounded_number_of_times_and_once_more_at_the_deadline() -> None:
    calls: list[float] = []

    def never() -> bool:
        calls.append(time.monotonic())
        return False

    t0 = time.monotonic()
    with pytest.raises(WaitTimeout):
        wait_until(never, timeout=0.3, interval=0.1, what="x")
    assert 2 <= len(calls) <= 5  # ~ timeout / interval + 1, fewer on a busy runner
    assert calls[-1] - t0 >= 0.3  # the last look is at the deadline, not before it


def test_an_error_in_the_condition_ends_the_wait_at_once() -> None:
    """A process that died is not waited for until the deadline: the condition raises."""
    def dead() -> bool:
        raise RuntimeError("nbdkit exited (1)")

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="nbdkit exited"):
        wait_until(dead, timeout=30, interval=5, what="nbdkit listening")
    assert time.monotonic() - t0 < 1.0
