"""Deciding that a host is dead: heartbeats missed over a grace period, and corroborated.

A missing heartbeat alone proves only that the management path is quiet: one
lost packet, or a partitioned management network, looks the same. Operators of
recovery services have evacuated healthy hosts that way (two copies of every
guest). So a host counts as down only when a second, independent signal agrees:
its power controller says it is off or hung, or its storage replication peers
have lost it too. A host the power controller cannot see (UNKNOWN) and whose
replication peers still see it is treated as partitioned, not dead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from stackdrill.api import HostHealth, PowerState, Witness


class Verdict(StrEnum):
    UP = "up"
    SUSPECT = "suspect"  # heartbeats missed, not (yet) corroborated
    DOWN = "down"


@dataclass(frozen=True)
class Assessment:
    host: str
    verdict: Verdict
    heartbeat_age: float
    reason: str
    last_heartbeat: float | None


def reporting(witness: Witness, host_beat: float | None, now: float,
              interval_s: float) -> bool:
    """Whether a witness can tell the controller that it lost a host: only while it reports
    itself (within three heartbeat intervals) and later than the host's last heartbeat by
    one interval. When everyone went quiet at once (the controller is down or cut off) no
    witness qualifies, and that silence is no evidence that the host died."""
    beat = witness.last_report
    return beat is not None and now - beat <= 3 * interval_s and \
        (host_beat is None or beat >= host_beat + interval_s)


def replication_lost(witnesses: Iterable[Witness], host_beat: float | None, now: float,
                     interval_s: float) -> bool:
    """Every witness that still reports says it lost the host; with none that reports,
    the links count as up (silence is no evidence)."""
    heard = [w for w in witnesses if reporting(w, host_beat, now, interval_s)]
    return bool(heard) and not any(w.sees_host for w in heard)


def assess(health: HostHealth, witnesses: Callable[[], Iterable[Witness]], now: float,
           grace_s: float, since: float = 0.0, fence_on_isolation: bool = False,
           interval_s: float = 10.0) -> Assessment:
    """Judge one host. `witnesses` is asked only once its heartbeats stopped; `since` is
    when monitoring began (the age of a host never heard from); `interval_s` the heartbeat
    interval the witness rule measures freshness by.

    `fence_on_isolation` is the policy some operators choose instead: a host that
    lost only its management link is declared down too (and will be fenced first).
    """
    last = health.last_heartbeat
    age = now - (last if last is not None else since)
    if age <= grace_s:
        return Assessment(health.host, Verdict.UP, age, "heartbeating", last)
    signals = []
    if health.power in (PowerState.OFF, PowerState.HUNG):
        signals.append(f"power controller reports {health.power.value}")
    if replication_lost(witnesses(), last, now, interval_s):
        signals.append("replication peers lost it")
    if signals:
        reason = f"no heartbeat for {age:.1f} s (grace {grace_s:.0f} s); " + " and ".join(signals)
        return Assessment(health.host, Verdict.DOWN, age, reason, last)
    if fence_on_isolation:
        reason = (f"no heartbeat for {age:.1f} s; isolated from the management network "
                  "(policy fence_on_isolation: fence and evacuate)")
        return Assessment(health.host, Verdict.DOWN, age, reason, last)
    reason = (
        f"no heartbeat for {age:.1f} s but power is {health.power.value} and replication "
        "peers still see it: management path partitioned? not evacuating"
    )
    return Assessment(health.host, Verdict.SUSPECT, age, reason, last)


def alive(health: HostHealth, now: float, after: float, grace_s: float) -> bool:
    """The host is back: powered on, with a heartbeat newer than `after` (the record of
    what happened to it) and within the grace period."""
    beat = health.last_heartbeat
    return (health.power is PowerState.ON and beat is not None and beat > after
            and now - beat <= grace_s)
