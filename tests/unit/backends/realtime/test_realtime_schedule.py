"""Scheduled actions on a real-time lab: on time, traced, their failures raised on the
clock, none after the stop, those in flight waited for."""

from __future__ import annotations

import threading
import time

import pytest

from stackdrill.api import ActionFailed, ActionRan, ScheduledActionFailed
from stackdrill.backends.realtime import RealTime


def test_actions_run_at_their_lab_time_and_are_traced() -> None:
    rt = RealTime("t")
    fired: list[float] = []
    try:
        rt.call_at(0.2, lambda: fired.append(rt.clock.now()), "soon")
        rt.clock.sleep(0.5)
    finally:
        rt.stop(5)
    assert len(fired) == 1 and fired[0] >= 0.2
    ran = [t for t in rt.tracer.events() if isinstance(t.event, ActionRan)]
    assert [t.event.label for t in ran] == ["soon"]


def test_a_failing_action_fails_the_wait_and_names_itself() -> None:
    rt = RealTime("t")
    try:
        rt.call_at(0.1, lambda: 1 / 0, "broken")
        with pytest.raises(ScheduledActionFailed, match="scheduled action 'broken' failed"):
            rt.clock.sleep(2.0)
    finally:
        rt.stop(5)
    failed = [t.event for t in rt.tracer.events() if isinstance(t.event, ActionFailed)]
    assert failed and failed[0].label == "broken" and "ZeroDivisionError" in failed[0].error


def test_nothing_runs_after_stop() -> None:
    rt = RealTime("t")
    fired: list[str] = []
    rt.call_at(0.2, lambda: fired.append("late"), "late")
    assert rt.stop(5)
    assert not rt.stop(5)  # the second stop says the lab is already going
    rt.call_at(0.0, lambda: fired.append("after"), "after")
    time.sleep(0.4)
    assert fired == []


def test_stop_waits_for_an_action_in_flight() -> None:
    """An action still running (a boot, a probe) finishes before teardown goes on, so it
    cannot recreate anything after the cleanup."""
    rt = RealTime("t")
    started = threading.Event()
    finished: list[bool] = []

    def slow() -> None:
        started.set()
        time.sleep(0.5)
        finished.append(True)

    rt.call_at(0.0, slow, "slow")
    assert started.wait(5)
    rt.stop(5)
    assert finished == [True]


def test_settle_waits_for_due_actions_only() -> None:
    """At a drill's end the actions whose time has come finish (their results belong in
    the evidence); one scheduled later is not waited for."""
    rt = RealTime("t")
    done: list[str] = []
    try:
        rt.call_at(0.0, lambda: (time.sleep(0.3), done.append("due")), "due")
        rt.call_at(60.0, lambda: done.append("later"), "later")
        time.sleep(0.05)
        t0 = time.monotonic()
        assert rt.schedule.settle(5.0) == 0
        assert done == ["due"] and time.monotonic() - t0 < 30.0  # not the one at 60 s
    finally:
        rt.stop(5)


def test_driver_operations_fail_with_driver_errors() -> None:
    """What a lab refuses with (a command that failed) reaches the engine as a DriverError;
    a bug (any other exception) stays what it is."""
    from stackdrill.api import DriverError

    def refused() -> None:
        raise OSError("no such namespace")

    def bug() -> None:
        raise KeyError("missing")

    rt = RealTime("t")
    try:
        with pytest.raises(DriverError, match="no such namespace"):
            rt.submit(refused).result(timeout=5)
        with pytest.raises(KeyError):
            rt.submit(bug).result(timeout=5)
    finally:
        rt.stop(5)
