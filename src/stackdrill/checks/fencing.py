"""Fencing before failover: no instance starts elsewhere while its old host may still write.

Input is a plain list of `FencingEvent`s in lab time, built from the recovery journal,
the lab trace or a real host's logs. The one-line text form (`parse_events`) is:

    12.5 fenced_confirmed cmp1           # the power driver confirmed cmp1 is off
    40.0 unfenced cmp1                   # cmp1 powered on again (a returning host)
    13.0 instance_started vm1 cmp2 cmp1  # vm1 started on cmp2; it ran on cmp1 before
    20.0 instance_stopped vm1 cmp2       # vm1 confirmed stopped/undefined on cmp2

An instance_started with no old host (first boot) needs no fence. Otherwise the old copy
must be proven gone first: its host fenced (and not unfenced since — a returning host
that fails again must be fenced again), or the instance confirmed stopped on that host
(a retry after a failed verification on a healthy host needs no power cut).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from stackdrill.checks.result import CheckResult

NAME = "fencing_order"
EventKind = Literal["fenced_confirmed", "unfenced", "instance_started", "instance_stopped"]


@dataclass(frozen=True)
class FencingEvent:
    at: float
    kind: EventKind
    host: str  # the fenced/unfenced host, or the host the instance started/stopped on
    instance: str | None = None
    old_host: str | None = None


def parse_events(lines: Iterable[str]) -> list[FencingEvent]:
    """Parse the text form above (blank lines and '#' comments ignored)."""
    events: list[FencingEvent] = []
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        at, kind, args = float(parts[0]), parts[1], parts[2:]
        if kind == "fenced_confirmed" and len(args) == 1:
            events.append(FencingEvent(at, "fenced_confirmed", args[0]))
        elif kind == "unfenced" and len(args) == 1:
            events.append(FencingEvent(at, "unfenced", args[0]))
        elif kind == "instance_stopped" and len(args) == 2:
            events.append(FencingEvent(at, "instance_stopped", args[1], args[0]))
        elif kind == "instance_started" and len(args) in (2, 3):
            old = args[2] if len(args) == 3 else None
            events.append(FencingEvent(at, "instance_started", args[1], args[0], old))
        else:
            raise ValueError(f"line {n}: cannot read fencing event {raw.strip()!r}")
    return events


def fencing_order(events: Iterable[FencingEvent], *, name: str = NAME) -> CheckResult:
    """Fails for each instance started on a new host before its old copy was proven gone:
    old host confirmed fenced (not unfenced since), or the instance confirmed stopped on
    it. Events at the same time: fences and stops count first."""
    order = {"fenced_confirmed": 0, "instance_stopped": 0, "unfenced": 1, "instance_started": 2}
    fenced_since: dict[str, float] = {}
    stopped: set[tuple[str | None, str]] = set()  # (instance, host) confirmed stopped
    violations: list[str] = []
    moved = 0
    for ev in sorted(events, key=lambda e: (e.at, order[e.kind])):
        if ev.kind == "fenced_confirmed":
            fenced_since.setdefault(ev.host, ev.at)
        elif ev.kind == "unfenced":
            fenced_since.pop(ev.host, None)
        elif ev.kind == "instance_stopped":
            stopped.add((ev.instance, ev.host))
        else:
            stopped.discard((ev.instance, ev.host))
            if not ev.old_host or ev.old_host == ev.host:
                continue
            moved += 1
            gone = (ev.instance, ev.old_host) in stopped or ev.old_host in fenced_since
            if not gone:
                violations.append(
                    f"{ev.instance} started on {ev.host} at t={ev.at:g}s"
                    f" before {ev.old_host} was confirmed fenced (or {ev.instance} stopped there)"
                )
    return CheckResult.of(
        name,
        violations,
        f"{moved} instance start(s) on a new host, each after its old copy was proven gone",
        violations=violations,
        moved=moved,
    )


def not_evacuated(
    events: Iterable[FencingEvent], hosts: Iterable[str], *, name: str = "not_evacuated"
) -> CheckResult:
    """No instance moved off, and no fence hit, any of `hosts` (healthy hosts that only
    looked down, e.g. behind a partitioned management network)."""
    keep = set(hosts)
    problems = []
    for ev in sorted(events, key=lambda e: e.at):
        if ev.kind == "fenced_confirmed" and ev.host in keep:
            problems.append(f"{ev.host} fenced at t={ev.at:g}s")
        if ev.kind == "instance_started" and ev.old_host in keep and ev.host != ev.old_host:
            problems.append(f"{ev.instance} moved off {ev.old_host} to {ev.host} at t={ev.at:g}s")
    return CheckResult.of(name, problems, f"{', '.join(sorted(keep))} kept their instances")
