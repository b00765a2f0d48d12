"""The wall clock real labs share: lab time, and failures of scheduled actions raised where
the engine waits."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from stackdrill.backends.realtime import WallClock


def test_wall_clock_wait_returns_only_the_callers_futures() -> None:
    """concurrent.futures semantics: the done ones among those given, none of the clock's."""
    clock = WallClock()
    done: Future[int] = Future()
    done.set_result(1)
    pending: Future[int] = Future()
    assert clock.wait([done, pending], timeout=1.0) == {done}
    t0 = time.monotonic()
    assert clock.wait([pending], timeout=0.2) == set()
    assert 0.15 <= time.monotonic() - t0 < 5.0


def test_a_failing_scheduled_action_is_raised_where_the_engine_waits() -> None:
    """A fault that could not be injected must fail the drill, not let it pass without the
    fault: the error raises in the thread sleeping or waiting on the clock, once."""
    clock = WallClock()
    threading.Timer(0.1, clock.alarm, args=(RuntimeError("nft failed"),)).start()
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="nft failed"):
        clock.sleep(5.0)
    assert time.monotonic() - t0 < 4.5  # woken, not slept through its 5 s
    clock.sleep(0.01)  # raised once only
    pending: Future[None] = Future()
    clock.alarm(RuntimeError("heal failed"))
    with pytest.raises(RuntimeError, match="heal failed"):
        clock.wait([pending], timeout=5.0)


def test_rebase_makes_now_zero_and_says_how_far_time_moved() -> None:
    clock = WallClock()
    time.sleep(1.0)
    shift = clock.rebase()
    assert shift >= 1.0
    assert clock.now() < 0.9  # measured from the rebase, not from the clock's creation
