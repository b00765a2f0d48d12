"""The simulator's clock: waiting runs simulated time until an operation completes. A
caller that keeps waiting on an operation that is already done lets no simulated time
pass, and would loop forever; the clock says so instead."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from stackdrill.backends.sim.kernel import SPIN_WAITS, Kernel, SimClock


def test_waiting_again_and_again_on_a_done_future_is_an_error_not_a_hung_run() -> None:
    clock = SimClock(Kernel(seed=1))
    done: Future[None] = Future()
    done.set_result(None)
    for _ in range(SPIN_WAITS):  # (the first at a moment is not counted)
        assert clock.wait([done], timeout=5.0) == {done}
    with pytest.raises(RuntimeError, match="already done: its caller never takes"):
        clock.wait([done], timeout=5.0)
    assert clock.now() == 0.0


def test_waits_that_let_time_pass_or_find_nothing_done_are_not_counted() -> None:
    kernel = Kernel(seed=1)
    clock = SimClock(kernel)
    done: Future[None] = Future()
    done.set_result(None)
    for step in range(2 * SPIN_WAITS):
        if step % 1000 == 0:
            clock.sleep(1.0)  # time passes: a new moment
        clock.wait([done], timeout=5.0)
    pending: Future[None] = Future()
    for _ in range(2 * SPIN_WAITS):
        assert clock.wait([pending], timeout=0.0) == set()
