"""fencing_order: STONITH before failover — the rule every HA stack enforces."""

from __future__ import annotations

import pytest

from stackdrill.checks import fencing_order, not_evacuated, parse_events

GOOD = """
10.0 fenced_confirmed cmp1
12.0 instance_started vm1 cmp2 cmp1
12.5 instance_started vm2 cmp3 cmp1
"""


def test_fence_then_start_passes() -> None:
    r = fencing_order(parse_events(GOOD.splitlines()))
    assert r.ok and r.data["moved"] == 2


def test_broken_recovery_that_skips_fencing_fails() -> None:
    """A recovery step that forgets to fence starts vm1 while cmp1 may still write."""
    events = parse_events(["12.0 instance_started vm1 cmp2 cmp1", "15.0 fenced_confirmed cmp1"])
    r = fencing_order(events)
    assert not r.ok
    assert "vm1 started on cmp2 at t=12s before cmp1 was confirmed fenced" in r.detail


def test_returning_host_must_be_fenced_again() -> None:
    """A fence stops counting once the host is powered on again."""
    events = parse_events(
        [
            "10 fenced_confirmed cmp1",
            "40 unfenced cmp1",
            "60 instance_started vm1 cmp2 cmp1",
        ]
    )
    assert not fencing_order(events).ok


def test_first_boot_needs_no_fence() -> None:
    assert fencing_order(parse_events(["1 instance_started vm1 cmp1"])).ok


def test_bad_line_is_refused() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_events(["3 fenced cmp1"])


def test_partitioned_healthy_host_is_not_evacuated() -> None:
    """A management partition is not a host failure: cmp1 must keep its guests."""
    events = parse_events(["5 fenced_confirmed cmp1", "6 instance_started vm1 cmp2 cmp1"])
    r = not_evacuated(events, ["cmp1"])
    assert not r.ok and "cmp1 fenced" in r.detail
    assert not_evacuated(events, ["cmp3"]).ok


def test_retry_after_confirmed_stop_needs_no_fence() -> None:
    """A guest that failed verification on healthy cmp3 is destroyed there, then started
    on cmp2: the destroy proves the old copy gone. Without it, the start is unsafe."""
    base = ["10 fenced_confirmed cmp1", "12 instance_started vm1 cmp3 cmp1"]
    retry = "30 instance_started vm1 cmp2 cmp3"
    assert fencing_order(parse_events([*base, "29 instance_stopped vm1 cmp3", retry])).ok
    r = fencing_order(parse_events([*base, retry]))
    assert not r.ok and "before cmp3 was confirmed fenced" in r.detail


def test_stop_before_a_later_start_does_not_count() -> None:
    """A stop proves only the copy that ran before it: vm1 restarted on cmp3 since."""
    events = parse_events(
        [
            "10 fenced_confirmed cmp1",
            "12 instance_started vm1 cmp3 cmp1",
            "20 instance_stopped vm1 cmp3",
            "25 instance_started vm1 cmp3 cmp1",
            "30 instance_started vm1 cmp2 cmp3",
        ]
    )
    assert not fencing_order(events).ok
