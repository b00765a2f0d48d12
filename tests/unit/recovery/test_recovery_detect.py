"""Detection: missed heartbeats over the grace period, corroborated by a second signal."""

from __future__ import annotations

from typing import Any

from stackdrill.api import HostHealth, PowerState, Witness
from stackdrill.recovery.detect import Assessment, Verdict, assess, reporting

LOST = (Witness("peer", sees_host=False, last_report=99.0),)  # reports, lost the host
SEES = (Witness("peer", sees_host=True, last_report=99.0),)  # reports, still sees it


def judge(beat: float | None, power: PowerState, now: float,
          witnesses: tuple[Witness, ...] = SEES, **options: Any) -> Assessment:
    return assess(HostHealth("h", beat, power), lambda: witnesses, now, 30.0, **options)


def test_within_grace_a_late_heartbeat_is_not_a_failure() -> None:
    """One lost heartbeat (age below the grace period) says nothing."""
    assert judge(80.0, PowerState.OFF, 100.0, LOST).verdict is Verdict.UP


def test_power_off_or_lost_replication_corroborates() -> None:
    """Power controller off/hung, or replication peers lost it: the host is down."""
    off = judge(10.0, PowerState.OFF, 100.0)
    hung = judge(10.0, PowerState.HUNG, 100.0)
    repl = judge(10.0, PowerState.ON, 100.0, LOST)
    assert off.verdict is hung.verdict is repl.verdict is Verdict.DOWN
    assert "replication peers lost it" in repl.reason


def test_management_partition_alone_is_only_suspect() -> None:
    """Power on (or unknown) and replication up: partitioned management path, not dead."""
    on = judge(10.0, PowerState.ON, 100.0)
    unknown = judge(10.0, PowerState.UNKNOWN, 100.0)
    assert on.verdict is unknown.verdict is Verdict.SUSPECT
    assert "not evacuating" in on.reason
    policy = judge(10.0, PowerState.ON, 100.0, fence_on_isolation=True)
    assert policy.verdict is Verdict.DOWN


def test_never_heard_from_counts_from_monitoring_start() -> None:
    assert judge(None, PowerState.OFF, 20.0, LOST, since=0.0).verdict is Verdict.UP
    assert judge(None, PowerState.OFF, 40.0, LOST, since=0.0).verdict is Verdict.DOWN


def test_a_witness_that_kept_reporting_after_the_host_fell_silent_counts() -> None:
    peer = Witness("peer", sees_host=False, last_report=58.0)
    assert reporting(peer, host_beat=30.0, now=60.0, interval_s=10.0)
    assert reporting(peer, host_beat=None, now=60.0, interval_s=10.0)  # host never heard


def test_everyone_quiet_at_once_leaves_no_witness() -> None:
    """The controller lost every host at the same moment (it is down or cut off): a peer
    whose last report is as old as the host's cannot say what it saw since, so the host
    is only suspect, never down on that evidence."""
    same = Witness("peer", sees_host=False, last_report=30.0)
    assert not reporting(same, host_beat=30.0, now=60.0, interval_s=10.0)
    almost = Witness("peer", sees_host=False, last_report=39.9)
    assert not reporting(almost, host_beat=30.0, now=45.0, interval_s=10.0)
    quiet = judge(30.0, PowerState.ON, 70.0, (same,))
    assert quiet.verdict is Verdict.SUSPECT


def test_a_stale_or_silent_witness_is_no_witness() -> None:
    silent = Witness("peer", sees_host=False, last_report=None)
    stale = Witness("peer", sees_host=False, last_report=50.0)
    assert not reporting(silent, host_beat=None, now=60.0, interval_s=10.0)
    assert not reporting(stale, host_beat=10.0, now=81.0, interval_s=10.0)


def test_freshness_follows_the_heartbeat_interval() -> None:
    """A backend whose services beat every 0.2 s: a witness 1 s old is stale."""
    peer = Witness("peer", sees_host=False, last_report=59.0)
    assert reporting(peer, host_beat=45.0, now=60.0, interval_s=10.0)
    assert not reporting(peer, host_beat=45.0, now=60.0, interval_s=0.2)


def test_witnesses_are_asked_only_once_the_heartbeats_stopped() -> None:
    """Asking the witnesses costs a backend more than a heartbeat read (the simulator
    checks every peer's path): a heartbeating host is judged without them."""
    asked: list[bool] = []

    def witnesses() -> tuple[Witness, ...]:
        asked.append(True)
        return LOST

    beating = assess(HostHealth("h", 95.0, PowerState.ON), witnesses, 100.0, 30.0)
    assert beating.verdict is Verdict.UP and not asked
    silent = assess(HostHealth("h", 10.0, PowerState.ON), witnesses, 100.0, 30.0)
    assert silent.verdict is Verdict.DOWN and asked
