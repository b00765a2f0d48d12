"""fencing_order: STONITH before failover — the rule every HA stack enforces.

The events are the lab's own typed events, as any backend emits them."""

from __future__ import annotations

from stackdrill.api import GuestStarted, GuestStopped, PowerChanged, PowerState, Traced
from stackdrill.checks import fencing_order, not_evacuated


def off(at: float, host: str) -> Traced:
    return Traced(at, PowerChanged(host, PowerState.OFF, PowerState.ON, "fenced"))


def on(at: float, host: str) -> Traced:
    return Traced(at, PowerChanged(host, PowerState.BOOTING, PowerState.OFF, "power-on"))


def start(at: float, instance: str, host: str) -> Traced:
    return Traced(at, GuestStarted(host, instance))


def stop(at: float, instance: str, host: str) -> Traced:
    return Traced(at, GuestStopped(host, instance, why="destroyed"))


BOOT = [start(0, "vm1", "cmp1"), start(0, "vm2", "cmp1")]  # first boots: no fence needed


def test_fence_then_start_passes() -> None:
    r = fencing_order([*BOOT, off(10, "cmp1"), start(12, "vm1", "cmp2"),
                       start(12.5, "vm2", "cmp3")])
    assert r.ok and r.data["moved"] == 2


def test_broken_recovery_that_skips_fencing_fails() -> None:
    """A recovery step that forgets to fence starts vm1 while cmp1 may still write."""
    r = fencing_order([*BOOT, start(12, "vm1", "cmp2"), off(15, "cmp1")])
    assert not r.ok
    assert "vm1 started on cmp2 at t=12s before cmp1 was confirmed fenced" in r.detail


def test_events_are_judged_in_time_order_whatever_their_order_in_the_list() -> None:
    """Real labs emit from several threads: a fence dated before the start counts."""
    assert fencing_order([start(12, "vm1", "cmp2"), off(10, "cmp1"), *BOOT]).ok


def test_a_fence_and_a_start_at_the_same_time_count_the_fence_first() -> None:
    assert fencing_order([*BOOT, start(10, "vm1", "cmp2"), off(10, "cmp1")]).ok


def test_returning_host_must_be_fenced_again() -> None:
    """A fence stops counting once the host is powered on again."""
    assert not fencing_order([*BOOT, off(10, "cmp1"), on(40, "cmp1"),
                              start(60, "vm1", "cmp2")]).ok


def test_a_hung_host_is_not_fenced() -> None:
    hung = Traced(10, PowerChanged("cmp1", PowerState.HUNG, PowerState.ON, "hang"))
    assert not fencing_order([*BOOT, hung, start(12, "vm1", "cmp2")]).ok


def test_first_boot_needs_no_fence() -> None:
    r = fencing_order([start(1, "vm1", "cmp1")])
    assert r.ok and r.data["moved"] == 0


def test_partitioned_healthy_host_is_not_evacuated() -> None:
    """A management partition is not a host failure: cmp1 must keep its guests."""
    events = [*BOOT, off(5, "cmp1"), start(6, "vm1", "cmp2")]
    r = not_evacuated(events, ["cmp1"])
    assert not r.ok and "cmp1 fenced" in r.detail and "vm1 moved off cmp1 to cmp2" in r.detail
    assert not_evacuated(events, ["cmp3"]).ok


def test_retry_after_confirmed_stop_needs_no_fence() -> None:
    """A guest that failed verification on healthy cmp3 is destroyed there, then started
    on cmp2: the destroy proves the old copy gone. Without it, the start is unsafe."""
    base = [*BOOT, off(10, "cmp1"), start(12, "vm1", "cmp3")]
    retry = start(30, "vm1", "cmp2")
    assert fencing_order([*base, stop(29, "vm1", "cmp3"), retry]).ok
    r = fencing_order([*base, retry])
    assert not r.ok and "before cmp3 was confirmed fenced" in r.detail


def test_stop_before_a_later_start_does_not_count() -> None:
    """A stop proves only the copy that ran before it: vm1 restarted on cmp3 since."""
    events = [*BOOT, off(10, "cmp1"), start(12, "vm1", "cmp3"), stop(20, "vm1", "cmp3"),
              start(25, "vm1", "cmp3"), start(30, "vm1", "cmp2")]
    assert not fencing_order(events).ok
