"""Build a drill's report from what it ran and what its checks found.

Per instance where it ended and how long it took to come back (RTO: from the fault
that touched it to the engine's verification), the timeline of faults, detection,
fencing, recovery phases, operator commands, DRBD events and checks, the time spent
in each phase and step, and the JSON extras (commands, DRBD events, blocked hosts).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from stackdrill.api import CommandResult, DrbdNotice, WriteOp
from stackdrill.checks import CheckContext, CheckResult, WriteFate, tally_writes, write_fate
from stackdrill.recovery import (
    InstanceOutcome,
    Phase,
    PhaseTiming,
    RecoveryEvent,
    RecoveryResult,
)
from stackdrill.report.model import (
    FaultRecord,
    InstanceReport,
    Report,
    TimelineEvent,
    TimeSlice,
    WriteRun,
    verdict_for,
)
from stackdrill.report.state import state_summary

ENGINE_LANES = {"host-suspect": "detection", "host-suspected": "detection",
                "host-down": "detection", "host-ok": "detection", "host-returned": "detection",
                "fence-requested": "fencing", "fence-confirmed": "fencing",
                "fence-assumed": "fencing", "fence-failed": "fencing"}
DRBD_TROUBLE = frozenset({"split-brain", "io-error", "handshake-refused"})
DRBD_LABEL_KEYS = ("policy", "survivor", "victim", "discarded_blocks", "source", "target",
                   "node")


@dataclass(frozen=True)
class DrillRecord:
    """A finished drill as its report describes it, besides the check results."""

    drill: str
    seed: int
    context: CheckContext  # the evidence, topology, backend, recoveries and fault log
    recovery_events: tuple[RecoveryEvent, ...]  # as the engine announced them, in order
    state_before: dict[str, Any]
    ended_at: float  # lab seconds
    trace_sha256: str


def build_report(record: DrillRecord, results: list[CheckResult]) -> Report:
    ctx = record.context
    return Report(
        drill=record.drill, backend=ctx.backend, seed=record.seed, verdict=verdict_for(results),
        trace_sha256=record.trace_sha256, topology=ctx.topology.name,
        duration=record.ended_at, instances=tuple(instance_reports(ctx)),
        checks=tuple(results),
        faults=tuple(FaultRecord.of(f, at, healed) for at, f, healed in ctx.fault_log),
        timeline=tuple(timeline(record, results)), writes=tuple(write_runs(ctx)),
        phases=phase_totals(ctx),
        steps=step_durations(ctx), state_before=record.state_before,
        state_after=state_summary(ctx.evidence.observation), extra=_extra(ctx),
    )


def _fault_time(ctx: CheckContext, instance: str, until: float) -> float | None:
    """When the fault this instance recovered from began: the latest fault before its
    recovery that touched its host or a host holding its volumes' data, or the instance
    itself (its process killed)."""
    inst = ctx.topology.instance(instance)
    touched = {inst.host} | {h for v in inst.volumes for h in ctx.topology.replica_hosts(v)}
    times = [at for at, f, _h in ctx.fault_log if at <= until and (
        touched & set(f.targets()) or getattr(f, "instance", None) == instance)]
    return max(times) if times else None


def _rto(ctx: CheckContext, instance: str, outcome: InstanceOutcome | None) -> float | None:
    """Fault to verified running, for an instance the engine verified after a fault."""
    if outcome is None or outcome.verified_at is None:
        return None
    fault_at = _fault_time(ctx, instance, outcome.verified_at)
    return outcome.verified_at - fault_at if fault_at is not None else None


def _result_for(ctx: CheckContext, instance: str) -> RecoveryResult | None:
    """The last recovery that had a word on this instance (the one `ctx.outcomes` keeps)."""
    found = None
    for result in ctx.recoveries:
        if any(o.name == instance for o in result.instances):
            found = result
    return found


def _phases_after(result: RecoveryResult, outcome: InstanceOutcome, since: float
                  ) -> list[PhaseTiming]:
    """The engine's phases for the instance's failed host and the instance's own steps
    that ended after the fault, in the order they ended."""
    mine = [p for p in result.phases if p.end > since and (
        p.instance == outcome.name
        or (p.instance is None and p.host in (None, outcome.host_before)))]
    return sorted(mine, key=lambda p: (p.end, p.start))


def time_spent(ctx: CheckContext, instance: str, outcome: InstanceOutcome | None
               ) -> tuple[TimeSlice, ...]:
    """The RTO phase by phase. Detection runs from the fault's injection to the end of the
    engine's detection (the host declared lost; without a detection phase, until the
    engine's first step began); every later phase from the end of the one before to its
    own end, so waiting between phases counts in the phase waited for; the last ends when
    the instance was verified running. Contiguous by construction: they sum to the RTO."""
    result = _result_for(ctx, instance)
    if outcome is None or outcome.verified_at is None or result is None:
        return ()
    done = outcome.verified_at
    fault_at = _fault_time(ctx, instance, done)
    if fault_at is None:
        return ()
    phases = _phases_after(result, outcome, fault_at)
    slices: list[TimeSlice] = []
    now = fault_at
    if not phases or phases[0].phase is not Phase.DETECTION:
        first = min(max(phases[0].start, now), done) if phases else done
        slices.append(TimeSlice(phase=Phase.DETECTION.value, start=now, end=first))
        now = first
    for p in phases:
        end = min(max(p.end, now), done)
        slices.append(TimeSlice(phase=p.phase.value, start=now, end=end))
        now = end
    if now < done:  # the engine verified after its last timed step
        slices.append(TimeSlice(phase="unaccounted", start=now, end=done))
    return tuple(slices)


def instance_reports(ctx: CheckContext) -> list[InstanceReport]:
    """Each instance of the topology: where it ran, where it runs, its writes and RTO."""
    tallies = tally_writes(ctx.evidence.history, ctx.evidence.stored)
    outcomes = ctx.outcomes  # built on each access: once, not once per instance
    out = []
    for inst in ctx.topology.instances:
        running = ctx.evidence.observation.running.get(inst.name, [])
        outcome = outcomes.get(inst.name)
        tally = tallies.get(inst.name)
        state = outcome.state.value if outcome else ("running" if running else "lost")
        out.append(InstanceReport(
            name=inst.name, host_before=inst.host,
            host_after=",".join(running) if running else None, state=state,
            acked_writes=tally.acked if tally else 0,
            lost_writes=(tally.lost + tally.corrupt) if tally else 0,
            rto_s=_rto(ctx, inst.name, outcome),
            attach_mode=outcome.attach_mode if outcome else None,
            reason=outcome.reason if outcome else "",
            restarts=outcome.restarts if outcome else 0,
            time_spent=time_spent(ctx, inst.name, outcome)))
    return out


def _fate(op: WriteOp, ctx: CheckContext) -> WriteFate:
    records = ctx.evidence.stored.get(op.volume)
    return write_fate(op, records.get(op.seq) if records is not None else None)


def write_runs(ctx: CheckContext) -> list[WriteRun]:
    """The history as runs: consecutive writes of one instance to one volume, from one
    host, with one fate. Thousands of acked writes become a few runs; a lost write
    interrupts its run, so it keeps its own place in time."""
    ops = sorted(ctx.evidence.history, key=lambda o: (o.instance, o.volume, o.invoked, o.seq))
    runs: list[dict[str, Any]] = []
    for op in ops:
        fate = _fate(op, ctx)
        end = op.completed if op.completed is not None else op.invoked
        last = runs[-1] if runs else None
        if last is not None and (last["instance"], last["volume"], last["host"],
                                 last["fate"]) == (op.instance, op.volume, op.host, fate):
            last.update(end=max(last["end"], end), count=last["count"] + 1, last_seq=op.seq)
            continue
        runs.append({"instance": op.instance, "volume": op.volume, "host": op.host,
                     "fate": fate, "start": op.invoked, "end": max(end, op.invoked),
                     "count": 1, "first_seq": op.seq, "last_seq": op.seq})
    return sorted((WriteRun(**r) for r in runs), key=lambda r: (r.start, r.instance, r.volume))


def _engine_events(record: DrillRecord) -> Iterator[TimelineEvent]:
    """Detection and fencing as the engine announced them; recovery phases as it timed them."""
    for ev in record.recovery_events:
        if ev.kind in ENGINE_LANES:
            yield TimelineEvent(at=ev.time, lane=ENGINE_LANES[ev.kind], label=ev.message,
                                ok=ev.kind != "fence-failed")
    for result in record.context.recoveries:
        for phase in result.phases:
            lane = f"instance:{phase.instance}" if phase.instance else str(phase.phase.value)
            if phase.instance is None and lane not in ("detection", "fencing", "planning"):
                lane = "planning"
            yield TimelineEvent(at=phase.start, end=max(phase.start, phase.end), lane=lane,
                                label=phase.phase.value)


def _drbd_label(notice: DrbdNotice) -> str:
    """'split-brain policy=discard-secondary victim=bob', 'resync-started source=a ...'."""
    parts = [notice.kind]
    for key in DRBD_LABEL_KEYS:
        value = notice.get(key)
        if value not in (None, "", 0):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _lab_events(ctx: CheckContext) -> Iterator[TimelineEvent]:
    """Operator commands, the drill's observe steps (checkpoints) and notable DRBD events,
    as the lab recorded them."""
    for label, res in sorted(ctx.evidence.commands.items()):
        yield TimelineEvent(at=res.started, end=max(res.started, res.finished),
                            lane="operator", label=label, ok=res.ok)
    for label, seen in ctx.checkpoints.items():
        yield TimelineEvent(at=seen.time, lane="operator", label=f"observe {label}")
    for traced in ctx.evidence.events:
        notice = traced.event
        if isinstance(notice, DrbdNotice):
            yield TimelineEvent(at=traced.at, lane=f"drbd:{notice.resource}",
                                label=_drbd_label(notice), ok=notice.kind not in DRBD_TROUBLE)


def timeline(record: DrillRecord, results: list[CheckResult]) -> list[TimelineEvent]:
    """Every lane's events in time order: faults, the engine's, the lab's, checks at the end."""
    ctx = record.context
    events = [TimelineEvent(at=at, lane="fault", label=f.kind + " " + ",".join(
        f.targets() or (getattr(f, "instance", ""),)), end=healed)
        for at, f, healed in ctx.fault_log]
    events += _engine_events(record)
    events += _lab_events(ctx)
    events += [TimelineEvent(at=record.ended_at, lane="check", label=c.name, ok=c.ok)
               for c in results]
    return sorted(events, key=lambda e: (e.at, e.lane, e.label))


def phase_totals(ctx: CheckContext) -> dict[str, float]:
    """Lab seconds per engine-wide phase (detection, fencing, planning), over all runs."""
    totals: dict[str, float] = defaultdict(float)
    for result in ctx.recoveries:
        for phase in result.phases:
            if phase.instance is None:
                totals[phase.phase.value] += phase.duration
    return dict(totals)


def step_durations(ctx: CheckContext) -> dict[str, dict[str, float]]:
    """instance -> recovery step -> lab seconds (the last run of each step)."""
    steps: dict[str, dict[str, float]] = defaultdict(dict)
    for result in ctx.recoveries:
        for phase in result.phases:
            if phase.instance is not None:
                steps[phase.instance][phase.phase.value] = phase.duration
    return dict(steps)


def _plain(result: CommandResult) -> dict[str, Any]:
    """A command result as the report's JSON shows it."""
    out: dict[str, Any] = json.loads(json.dumps(asdict(result)))
    return out


def _drbd_events(ctx: CheckContext) -> dict[str, list[dict[str, Any]]]:
    """Each resource's notable DRBD events, as the report's JSON lists them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for traced in ctx.evidence.events:
        notice = traced.event
        if isinstance(notice, DrbdNotice):
            out.setdefault(notice.resource, []).append(
                {"t": traced.at, "event": notice.kind, **dict(notice.details)})
    return out


def _extra(ctx: CheckContext) -> dict[str, Any]:
    return {"writes": len(ctx.evidence.history),
            "commands": {label: _plain(res)
                         for label, res in sorted(ctx.evidence.commands.items())},
            "drbd_events": _drbd_events(ctx),
            "blocked_hosts": ctx.blocked_hosts}
