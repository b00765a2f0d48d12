"""Turning the journal into the result a drill report and the CLI show.

Built only from the journal, the inventory's current placement and host states,
so an engine restarted after a kill reports the same phases and outcomes as one
that never died.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackdrill.recovery.hoststate import FAILED_STATES, HostStatus
from stackdrill.recovery.inventory import VmState
from stackdrill.recovery.result import (
    InstanceOutcome,
    InstanceState,
    JournalRecord,
    Phase,
    PhaseTiming,
    RecoveryEvent,
    RecoveryResult,
)
from stackdrill.recovery.steps import JournalStep

INSTANCE_PHASES = {
    JournalStep.STORAGE_READY.value: Phase.STORAGE,
    JournalStep.STARTED.value: Phase.START,
    JournalStep.ATTACHED.value: Phase.ATTACH,
    JournalStep.NETWORK_PLUGGED.value: Phase.NETWORK,
    JournalStep.VERIFIED.value: Phase.VERIFY,
    JournalStep.SOURCE_STOPPED.value: Phase.SHUTDOWN,
}
HOST_PHASES = {
    JournalStep.HOST_DOWN.value: Phase.DETECTION,
    JournalStep.FENCE_CONFIRMED.value: Phase.FENCING,
    JournalStep.FENCE_ASSUMED.value: Phase.FENCING,
    JournalStep.PLANNED.value: Phase.PLANNING,
    JournalStep.HOST_REJOINED.value: Phase.CLEANUP,
}


def phases(records: Iterable[JournalRecord], wait_s: float) -> list[PhaseTiming]:
    out: list[PhaseTiming] = []
    for r in records:
        began = r.detail.get("began")
        if r.instance is not None:
            phase = INSTANCE_PHASES.get(r.step)
            if phase is not None and began is not None:
                out.append(PhaseTiming(phase, float(began), r.time, None, r.instance))
            continue
        if r.step == JournalStep.SERVICE_FORCED_DOWN.value and wait_s > 0:
            out.append(PhaseTiming(Phase.WAIT, r.time, r.time + wait_s, r.host))
        host_phase = HOST_PHASES.get(r.step)
        if host_phase is not None and began is not None:
            out.append(PhaseTiming(host_phase, float(began), r.time, r.host))
    return out


def _attach_mode(storage: JournalRecord | None) -> str | None:
    if storage is None:
        return None
    modes = {str(p["mode"]) for p in storage.detail.get("paths", {}).values()}
    if not modes:
        return None
    return modes.pop() if len(modes) == 1 else "mixed"


def outcome(name: str, records: list[JournalRecord], host: str, vm_state: str,
            initial_host: str, status: Mapping[str, HostStatus], active: bool,
            host_records: Mapping[str, list[JournalRecord]]) -> InstanceOutcome:
    before = next((str(r.detail["source"]) for r in records
                   if r.step == JournalStep.RESERVED.value), initial_host)
    done = [r for r in records if r.step == JournalStep.DONE.value]
    final_attempt = done[-1].attempt if done else None
    steps = {r.step: r for r in records if r.attempt == final_attempt} if done else {}
    ends = [r for r in records if r.step in _ENDS]
    last_end = ends[-1] if ends else None
    if active:
        state, reason, host_after = InstanceState.IN_PROGRESS, "recovery under way", None
    else:
        state, reason, host_after = _settled(records, host, vm_state, status, host_records,
                                             final_attempt, last_end)
    started = steps.get(JournalStep.STARTED.value)
    verified = steps.get(JournalStep.VERIFIED.value)
    return InstanceOutcome(
        name=name, host_before=before, host_after=host_after, state=state, reason=reason,
        attach_mode=_attach_mode(steps.get(JournalStep.STORAGE_READY.value)),
        started_at=started.time if started and host_after else None,
        verified_at=verified.time if verified and host_after else None,
        restarts=_restarts(records))


def _restarts(records: list[JournalRecord]) -> int:
    """Restarts in place that ran to the end (verified running again)."""
    kinds = {r.attempt: r.detail.get("kind") for r in records
             if r.step == JournalStep.RESERVED.value}
    return sum(1 for r in records if r.step == JournalStep.DONE.value
               and kinds.get(r.attempt) == "restart")


_ENDS = (JournalStep.UNRECOVERABLE.value, JournalStep.FLOW_FAILED.value, JournalStep.DONE.value,
         JournalStep.RESTARTS_EXHAUSTED.value)
_IN_PLACE_STATES = {"resume": InstanceState.RESUMED, "restart": InstanceState.RESTARTED}


def _settled(records: list[JournalRecord], host: str, vm_state: str,
             status: Mapping[str, HostStatus], host_records: Mapping[str, list[JournalRecord]],
             final_attempt: int | None,
             last_end: JournalRecord | None) -> tuple[InstanceState, str, str | None]:
    """(state, reason, host after) of an instance no flow is working on."""
    reason = str(last_end.detail.get("reason", "")) if last_end else ""
    st = status.get(host, HostStatus.UP)
    if st in FAILED_STATES:
        state, reason = _on_failed_host(host, st, last_end, reason, host_records)
        return state, reason, None
    booted = st in (HostStatus.UP, HostStatus.BOOTED)
    if vm_state == VmState.STOPPED.value and not booted:
        return InstanceState.STOPPED, f"stopped; resumes when {host} boots", host
    if vm_state == VmState.ERROR.value:
        return _given_up(last_end), reason, None
    aborted = [r for r in records if r.step == JournalStep.FLOW_ABORTED.value]
    if aborted and (last_end is None or aborted[-1].seq > last_end.seq):
        # its last attempt was undone (the guest stopped) and the next one is still to
        # come: not running, whatever the inventory's vm_state says (seeds 5576, 7436);
        # also a resume on a booted host that failed and backs off (seed 5529)
        why = str(aborted[-1].detail.get("reason", ""))
        return InstanceState.IN_PROGRESS, f"another attempt follows: {why}", None
    if vm_state == VmState.STOPPED.value:
        return InstanceState.STOPPED, f"stopped on {host}, which is {st.value}; " \
            "its resume has not started", host
    if final_attempt is None:
        return InstanceState.RUNNING, "", host
    kind = next((r.detail.get("kind") for r in records
                 if r.attempt == final_attempt and r.step == JournalStep.RESERVED.value), None)
    return _IN_PLACE_STATES.get(str(kind), InstanceState.RECOVERED), "", host


def _on_failed_host(host: str, st: HostStatus, last_end: JournalRecord | None, reason: str,
                    host_records: Mapping[str, list[JournalRecord]]
                    ) -> tuple[InstanceState, str]:
    """Its host failed: given up in this incident, blocked by fencing, or still pending."""
    records = host_records.get(host, [])
    down = [r for r in records if r.step == JournalStep.HOST_DOWN.value]
    floor = down[-1].seq if down else 0
    if last_end is not None and last_end.seq > floor and \
            last_end.step != JournalStep.DONE.value:
        return _given_up(last_end), reason
    if st is HostStatus.UNFENCEABLE:
        fails = [r for r in records if r.step == JournalStep.FENCE_FAILED.value]
        return InstanceState.BLOCKED, (str(fails[-1].detail.get("reason")) if fails
                                       else f"{host} not fenced")
    return InstanceState.PENDING, f"its host {host} is {st.value}"


def _given_up(last_end: JournalRecord | None) -> InstanceState:
    if last_end is not None and last_end.step == JournalStep.UNRECOVERABLE.value:
        return InstanceState.UNRECOVERABLE
    return InstanceState.FAILED


def build_result(records: list[JournalRecord], where: Mapping[str, tuple[str, str]],
                 initial_hosts: Mapping[str, str], status: Mapping[str, HostStatus],
                 active: Iterable[str], events: list[RecoveryEvent], started_at: float,
                 ended_at: float, wait_s: float) -> RecoveryResult:
    by_instance: dict[str, list[JournalRecord]] = {}
    by_host: dict[str, list[JournalRecord]] = {}
    for r in records:
        if r.instance is not None:
            by_instance.setdefault(r.instance, []).append(r)
        elif r.host is not None:
            by_host.setdefault(r.host, []).append(r)
    running = set(active)
    instances = [outcome(name, by_instance.get(name, []), host, vm, initial_hosts.get(name, host),
                         status, name in running, by_host)
                 for name, (host, vm) in sorted(where.items())]
    failed = sorted({r.host for r in records if r.step == JournalStep.HOST_DOWN.value and r.host})
    blocked = {}
    for host, st in sorted(status.items()):
        if st is HostStatus.UNFENCEABLE:
            fails = [r for r in by_host.get(host, []) if r.step == JournalStep.FENCE_FAILED.value]
            blocked[host] = str(fails[-1].detail.get("reason")) if fails else "not fenced"
    return RecoveryResult(instances=instances, phases=phases(records, wait_s),
                          journal=list(records), events=list(events), failed_hosts=failed,
                          blocked_hosts=blocked, started_at=started_at, ended_at=ended_at)
