"""Fencing before failover: no instance starts elsewhere while its old host may still write.

The checks read the lab's own events, never the engine's claims: `PowerChanged` (the
power really went off, or came back), `GuestStarted` and `GuestStopped` on a host. From
them follows, for each start, the host the instance ran on before (its previous start).

An instance started with no old host (first boot) needs no fence. Otherwise the old copy
must be proven gone first: its host powered off (and not powered on since — a returning
host that fails again must be fenced again), or the instance confirmed stopped on that
host (a retry after a failed verification on a healthy host needs no power cut).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from stackdrill.api import GuestStarted, GuestStopped, PowerChanged, PowerState, Traced
from stackdrill.checks.result import CheckResult

NAME = "fencing_order"
_ALIVE = frozenset({PowerState.ON, PowerState.BOOTING, PowerState.HUNG})


class _Kind(Enum):
    """What the fencing checks need to know of the lab's events."""

    FENCED = "fenced"  # the host's power went off
    STOPPED = "stopped"  # an instance confirmed stopped on a host
    UNFENCED = "unfenced"  # the host is powered again
    STARTED = "started"  # an instance started on a host


_SAME_TIME_ORDER = {_Kind.FENCED: 0, _Kind.STOPPED: 0, _Kind.UNFENCED: 1, _Kind.STARTED: 2}


@dataclass(frozen=True)
class _Fact:
    at: float
    kind: _Kind
    host: str
    instance: str | None = None
    old_host: str | None = None  # for STARTED: where it last started before


def _facts(events: Iterable[Traced]) -> Iterator[_Fact]:
    last_host: dict[str, str] = {}
    for traced in sorted(events, key=lambda t: t.at):  # stable: emission order at one time
        ev = traced.event
        if isinstance(ev, PowerChanged):
            if ev.state is PowerState.OFF:
                yield _Fact(traced.at, _Kind.FENCED, ev.host)
            elif ev.state in _ALIVE:
                yield _Fact(traced.at, _Kind.UNFENCED, ev.host)
        elif isinstance(ev, GuestStopped):
            yield _Fact(traced.at, _Kind.STOPPED, ev.host, ev.instance)
        elif isinstance(ev, GuestStarted):
            old = last_host.get(ev.instance)
            yield _Fact(traced.at, _Kind.STARTED, ev.host, ev.instance,
                        old if old != ev.host else None)
            last_host[ev.instance] = ev.host


def _in_order(events: Iterable[Traced]) -> list[_Fact]:
    """Facts by time; at the same time fences and stops count first."""
    return sorted(_facts(events), key=lambda f: (f.at, _SAME_TIME_ORDER[f.kind]))


def fencing_order(events: Iterable[Traced], *, name: str = NAME) -> CheckResult:
    """Fails for each instance started on a new host before its old copy was proven gone:
    old host confirmed off (not powered on since), or the instance confirmed stopped on
    it."""
    fenced_since: dict[str, float] = {}
    stopped: set[tuple[str | None, str]] = set()  # (instance, host) confirmed stopped
    violations: list[str] = []
    moved = 0
    for fact in _in_order(events):
        if fact.kind is _Kind.FENCED:
            fenced_since.setdefault(fact.host, fact.at)
        elif fact.kind is _Kind.UNFENCED:
            fenced_since.pop(fact.host, None)
        elif fact.kind is _Kind.STOPPED:
            stopped.add((fact.instance, fact.host))
        elif fact.kind is _Kind.STARTED:
            stopped.discard((fact.instance, fact.host))
            if fact.old_host is None:
                continue
            moved += 1
            gone = (fact.instance, fact.old_host) in stopped or fact.old_host in fenced_since
            if not gone:
                violations.append(
                    f"{fact.instance} started on {fact.host} at t={fact.at:g}s before "
                    f"{fact.old_host} was confirmed fenced (or {fact.instance} stopped there)")
    return CheckResult.of(
        name,
        violations,
        f"{moved} instance start(s) on a new host, each after its old copy was proven gone",
        violations=violations,
        moved=moved,
    )


def not_evacuated(
    events: Iterable[Traced], hosts: Iterable[str], *, name: str = "not_evacuated"
) -> CheckResult:
    """No instance moved off, and no fence hit, any of `hosts` (healthy hosts that only
    looked down, e.g. behind a partitioned management network)."""
    keep = set(hosts)
    problems = []
    for fact in sorted(_facts(events), key=lambda f: f.at):
        if fact.kind is _Kind.FENCED and fact.host in keep:
            problems.append(f"{fact.host} fenced at t={fact.at:g}s")
        if fact.kind is _Kind.STARTED and fact.old_host in keep:
            problems.append(f"{fact.instance} moved off {fact.old_host} to {fact.host} at "
                            f"t={fact.at:g}s")
    return CheckResult.of(name, problems, f"{', '.join(sorted(keep))} kept their instances")


def never_stopped(events: Iterable[Traced], instances: Iterable[str], *,
                  name: str = "never_stopped") -> CheckResult:
    """None of `instances` ever stopped: no copy of them was destroyed, killed or lost with
    its host (the bystanders of a fault that must not touch them, e.g. the other guests of
    a host where one instance died)."""
    keep = set(instances)
    problems = [f"{fact.instance} stopped on {fact.host} at t={fact.at:g}s"
                for fact in sorted(_facts(events), key=lambda f: f.at)
                if fact.kind is _Kind.STOPPED and fact.instance in keep]
    return CheckResult.of(name, problems, f"{', '.join(sorted(keep))} never stopped")
