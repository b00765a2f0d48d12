"""The clock and the schedule: lab seconds from 0, sleeping, waiting on futures, and
actions at lab times whose failures surface where the caller next waits."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from contract_support import of_type, wait_for

from stackdrill.api import ActionFailed, ActionRan, Lab, ScheduledActionFailed


def test_now_starts_near_zero_and_sleep_advances_it(lab: Lab) -> None:
    start = lab.clock.now()
    assert 0.0 <= start < 5.0  # lab time 0 is when the lab is up, not when bring-up began
    lab.clock.sleep(0.5)
    after = lab.clock.now()
    assert 0.5 <= after - start < 5.0
    lab.clock.sleep(0.0)
    assert lab.clock.now() >= after  # never runs backwards


def test_wait_returns_the_done_futures_and_times_out_in_lab_time(lab: Lab) -> None:
    done: Future[int] = Future()
    done.set_result(1)
    pending: Future[int] = Future()
    assert lab.clock.wait([done, pending], timeout=1.0) == {done}
    before = lab.clock.now()
    assert lab.clock.wait([pending], timeout=0.3) == set()
    assert lab.clock.now() - before >= 0.3  # it waited its timeout, in lab seconds


def test_wait_returns_a_driver_operation_once_it_completes(lab: Lab) -> None:
    operation = lab.drivers.power.power_off("cmp2")
    assert lab.clock.wait([operation], timeout=60.0) == {operation}
    assert operation.result() is None


def test_call_at_runs_the_action_once_at_its_time_and_traces_it(lab: Lab) -> None:
    at = lab.clock.now() + 0.3
    fired: list[float] = []
    lab.call_at(at, lambda: fired.append(lab.clock.now()), "contract-action")
    assert fired == []  # never blocks, never runs early
    wait_for(lab, lambda: fired, "the scheduled action")  # bounded: a busy runner is late
    lab.clock.sleep(0.2)
    assert len(fired) == 1 and fired[0] >= at - 0.01
    ran = [t for t in lab.events() if isinstance(t.event, ActionRan)
           and t.event.label == "contract-action"]
    assert len(ran) == 1 and ran[0].at >= at - 0.01


def test_a_failing_action_is_raised_where_the_caller_next_waits_and_traced(lab: Lab) -> None:
    def broken() -> None:
        raise ValueError("contract-boom")

    lab.call_at(lab.clock.now() + 0.2, broken, "contract-broken")
    with pytest.raises(ScheduledActionFailed, match="'contract-broken' failed: contract-boom"):
        lab.clock.sleep(2.0)
    lab.clock.sleep(0.2)  # raised once, not again at every later wait
    failed = [e for e in of_type(lab.events(), ActionFailed) if e.label == "contract-broken"]
    assert len(failed) == 1 and "contract-boom" in failed[0].error
