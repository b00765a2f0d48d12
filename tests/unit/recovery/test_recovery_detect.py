"""Detection: missed heartbeats over the grace period, corroborated by a second signal."""

from __future__ import annotations

from stackdrill.backends.base import HostHealth, PowerState
from stackdrill.recovery.detect import Verdict, assess


def test_within_grace_a_late_heartbeat_is_not_a_failure() -> None:
    """One lost heartbeat (age below the grace period) says nothing."""
    health = HostHealth("h", 80.0, False, PowerState.OFF)
    assert assess(health, 100.0, 30.0).verdict is Verdict.UP


def test_power_off_or_lost_replication_corroborates() -> None:
    """Power controller off/hung, or replication peers lost it: the host is down."""
    off = assess(HostHealth("h", 10.0, True, PowerState.OFF), 100.0, 30.0)
    hung = assess(HostHealth("h", 10.0, True, PowerState.HUNG), 100.0, 30.0)
    repl = assess(HostHealth("h", 10.0, False, PowerState.ON), 100.0, 30.0)
    assert off.verdict is hung.verdict is repl.verdict is Verdict.DOWN
    assert "replication peers lost it" in repl.reason


def test_management_partition_alone_is_only_suspect() -> None:
    """Power on (or unknown) and replication up: partitioned management path, not dead."""
    on = assess(HostHealth("h", 10.0, True, PowerState.ON), 100.0, 30.0)
    unknown = assess(HostHealth("h", 10.0, True, PowerState.UNKNOWN), 100.0, 30.0)
    assert on.verdict is unknown.verdict is Verdict.SUSPECT
    assert "not evacuating" in on.reason
    policy = assess(HostHealth("h", 10.0, True, PowerState.ON), 100.0, 30.0,
                    fence_on_isolation=True)
    assert policy.verdict is Verdict.DOWN


def test_never_heard_from_counts_from_monitoring_start() -> None:
    health = HostHealth("h", None, False, PowerState.OFF)
    assert assess(health, 20.0, 30.0, since=0.0).verdict is Verdict.UP
    assert assess(health, 40.0, 30.0, since=0.0).verdict is Verdict.DOWN
