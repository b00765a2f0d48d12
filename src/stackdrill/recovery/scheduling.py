"""Scheduling: which instances need a flow now, in a deterministic order. Per host status
a rule: a failed host's guests are evacuated once its wait is over (the placement plan
journaled once per incident), a drained host's guests are moved, stopped guests on a
host that is up again are resumed; and guests whose storage server was fenced are
reattached in place.

Runs every tick, so it filters before it sorts: on a large lab almost every host is up
with nothing to resume, and the engine's overhead per instance is measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stackdrill.api import PowerState
from stackdrill.recovery.capacity import Capacity
from stackdrill.recovery.hoststate import HostStatus
from stackdrill.recovery.inventory import VmState
from stackdrill.recovery.placer import Placer
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import FlowKind

Queued = tuple[FlowKind, str, str]  # (kind, instance, source)
# (host, now, every flow slot taken, inactive instances by host) -> what it needs now
Rule = Callable[[str, float, bool, dict[str, list[str]]], list[Queued]]
_ENDS = (JournalStep.UNRECOVERABLE, JournalStep.FLOW_FAILED, JournalStep.RESTARTS_EXHAUSTED)


@dataclass(frozen=True)
class Incident:
    """A host's current incident as its journal records tell it."""

    seq: int  # where it began (its HOST_DOWN or SERVICE_DISABLED); 0: none yet
    evacuate_from: float  # when its guests may be evacuated (after the service update)
    planned: bool  # the placement plan for it is journaled


class Scheduler:
    def __init__(self, shared: Shared, placer: Placer, capacity: Capacity) -> None:
        self.config, self.journal, self.state = shared.config, shared.journal, shared.state
        self.emit = shared.emit
        self.placer, self.capacity = placer, capacity
        self._rules: dict[HostStatus, Rule] = {
            HostStatus.EVACUATING: self._evacuations,
            HostStatus.MAINTENANCE: self._moves,
            HostStatus.BOOTED: self._resumes,
            HostStatus.UP: self._resumes,
        }
        self._incidents: dict[str, tuple[int, Incident]] = {}  # host -> (its records, ...)
        self._order: dict[str, tuple[int, int, str]] = {}  # instance -> its sort key

    def queue(self, now: float) -> list[Queued]:
        """(kind, instance, source) of every instance that needs a flow now, in order."""
        # With the global cap reached nothing queued can start this tick, and the loop is
        # not idle anyway: only a failed host's first plan must still be journaled now.
        full = self.capacity.full()
        inactive: dict[str, list[str]] = {}
        for name in self.state.inactive:
            if name not in self.state.flows:
                inactive.setdefault(self.state.where[name][0], []).append(name)
        out: list[Queued] = []
        for host in self.state.hosts:
            rule = self._rules.get(self.state.status[host])
            if rule is not None:
                out += rule(host, now, full, inactive)
        if not full:
            out += self._reattachments(now, {n for _, n, _ in out})
        return out

    def _largest_first(self, names: Iterable[str]) -> list[str]:
        return sorted(names, key=self._size_key)

    def _size_key(self, name: str) -> tuple[int, int, str]:
        """Largest first, then by name; kept per instance (its size never changes during a
        run, and instances waiting for a slot are sorted again every tick)."""
        key = self._order.get(name)
        if key is None:
            info = self.state.info[name]
            key = self._order[name] = (-info.ram_mb, -info.vcpus, name)
        return key

    def _evacuations(self, host: str, now: float, full: bool,
                     inactive: dict[str, list[str]]) -> list[Queued]:
        incident = self.incident(host)
        if full and incident.planned:  # (either way nothing is queued: the cheap test first)
            return []
        power = self.state.health[host].power
        if now < incident.evacuate_from or power in (PowerState.ON, PowerState.BOOTING):
            return []  # still waiting after the service update, or the host is coming back
        flows = self.state.flows
        names = self._largest_first(n for n in self.state.hosted.get(host, ()) if n not in flows)
        floor = incident.seq
        todo = [n for n in names if not self.given_up(n, floor) and not self.backing_off(n, now)]
        if todo and not incident.planned:
            self._record_plan(host, todo)
        return [(FlowKind.EVACUATE, n, host) for n in todo]

    def _moves(self, host: str, now: float, full: bool,
               inactive: dict[str, list[str]]) -> list[Queued]:
        if full:
            return []
        where, flows = self.state.where, self.state.flows
        names = self._largest_first(n for n in self.state.hosted.get(host, ()) if n not in flows
                                    and where[n][1] == VmState.ACTIVE.value)
        floor = self.incident_seq(host) if names else 0
        return [(FlowKind.MOVE, n, host) for n in names if not self.given_up(n, floor)]

    def _resumes(self, host: str, now: float, full: bool,
                 inactive: dict[str, list[str]]) -> list[Queued]:
        if full or host not in inactive or self.state.health[host].power is not PowerState.ON:
            return []
        resumable = {VmState.STOPPED.value}
        if self.state.status[host] is HostStatus.UP:
            resumable.add(VmState.ERROR.value)
        where = self.state.where
        names = self._largest_first(n for n in inactive.get(host, [])
                                    if where[n][1] in resumable)
        return [(FlowKind.RESUME, n, host) for n in names if self._may_resume(n)
                and not self.backing_off(n, now, FlowKind.RESUME)]

    def _reattachments(self, now: float, queued: set[str]) -> list[Queued]:
        """A fenced storage server: every active guest on a healthy compute host whose
        volume it served restarts in place on a path to the surviving replica. (What
        Pacemaker plus a reboot does; guests on failed compute hosts are evacuated.)
        A storage server that held the last replica was not fenced: when it rejoins as a
        DRBD Secondary, its guests are reattached to it once it is promoted again."""
        out: list[Queued] = []
        for sto in self.state.storage_hosts:
            floor = self._reattach_floor(sto)
            if floor is None:
                continue
            # back from being held: a guest whose reattachment failed meanwhile is in error
            states = {VmState.ACTIVE.value}
            if self.state.status[sto] is HostStatus.UP:
                states.add(VmState.ERROR.value)
            for name in sorted(self.state.where):
                if name not in queued and self._needs_reattach(name, sto, floor, now, states):
                    queued.add(name)
                    host = self.state.where[name][0]
                    out.append((self._in_place_or_away(name, host), name, host))
        return out

    def _in_place_or_away(self, name: str, host: str) -> FlowKind:
        """Reattach in place, unless an attempt there already failed on the host itself
        (e.g. the guest restarted but its host's tunnel is down: the overlay cannot reach
        it, and the revert left it running nowhere — seeds 5576, 7436): then it moves to
        another host, as an evacuee would after such a failure."""
        return FlowKind.MOVE if host in self.placer.need(name, host).exclude \
            else FlowKind.REATTACH

    def _reattach_floor(self, sto: str) -> int | None:
        """The journal position after which a guest of `sto` must (again) be reattached,
        or None when nothing of it needs reattaching."""
        st = self.state.status[sto]
        if st is HostStatus.EVACUATING:
            return self.incident_seq(sto)
        if st is HostStatus.UP:
            back = self.journal.last_for_host(sto, JournalStep.HOST_REJOINED)
            if back is not None and back.detail.get("reattach"):
                return back.seq
        return None

    def _needs_reattach(self, name: str, sto: str, floor: int, now: float,
                        states: set[str]) -> bool:
        host, vm = self.state.where[name]
        return not (vm not in states or name in self.state.flows
                    or self.state.status.get(host) not in (HostStatus.UP, HostStatus.BOOTED)
                    or not self.placer.waits_for(name, sto) or self.given_up(name, floor)
                    or self._done_since(name, floor) or self.backing_off(name, now))

    def _may_resume(self, name: str) -> bool:
        """Stopped guests always; errored ones only when nothing of them may still run."""
        if not self.config.resume_guests_state_on_host_boot:
            return False
        if self.state.where[name][1] == VmState.STOPPED.value:
            return True
        records = self.journal.for_instance(name)
        ends = [r for r in records if r.step in (*_ENDS, JournalStep.DONE.value)]
        if not ends:
            return False
        final = ends[-1]
        if final.step == JournalStep.UNRECOVERABLE.value:
            return True
        kinds = [r.detail.get("kind") for r in records
                 if r.attempt == final.attempt and r.step == JournalStep.RESERVED.value]
        return bool(final.detail.get("resumable")) and FlowKind.RESUME.value not in kinds

    def _record_plan(self, host: str, names: list[str]) -> None:
        began = self.evacuate_from(host)
        plan = self.placer.plan([self.placer.need(n, host) for n in names])
        self.journal.append(JournalStep.PLANNED, host=host, began=began,
                            placements=len(plan.placements), unplaceable=len(plan.unplaceable))
        self.emit("plan", f"plan for {host}:\n{plan.render()}", host,
                  placements=len(plan.placements), unplaceable=len(plan.unplaceable))

    # ------------------------------------------------------------ the journal's answers

    def incident(self, host: str) -> Incident:
        """What the journal says of the host's current incident; asked of every failed
        host every tick, so kept until the host's next journal record."""
        written = len(self.journal.for_host(host))  # a host's records are only appended
        cached = self._incidents.get(host)
        if cached is not None and cached[0] == written:
            return cached[1]
        last = self.journal.last_for_host
        down = last(host, JournalStep.HOST_DOWN, JournalStep.SERVICE_DISABLED)
        forced = last(host, JournalStep.SERVICE_FORCED_DOWN)
        planned = last(host, JournalStep.PLANNED)
        seq = down.seq if down else 0
        incident = Incident(
            seq, (forced.time if forced else 0.0) + self.config.wait_after_service_update_s,
            planned is not None and planned.seq > seq)
        self._incidents[host] = (written, incident)
        return incident

    def evacuate_from(self, host: str) -> float:
        """When a failed host's guests may be evacuated: Masakari waits after forcing its
        service down."""
        return self.incident(host).evacuate_from

    def incident_seq(self, host: str) -> int:
        return self.incident(host).seq

    def planned(self, host: str) -> bool:
        """The plan for the host's current incident is journaled."""
        return self.incident(host).planned

    def backing_off(self, name: str, now: float, kind: FlowKind | None = None) -> bool:
        """After a failed attempt (of `kind`, if given), wait a little: most storage
        refusals are transient."""
        records = self.journal.for_instance(name)
        return bool(records) and records[-1].step == JournalStep.FLOW_ABORTED.value \
            and not records[-1].detail.get("cascade") \
            and (kind is None or records[-1].detail.get("kind") == kind.value) \
            and now - records[-1].time < self.config.retry_delay_s

    def given_up(self, name: str, floor: int) -> bool:
        end = self.journal.last_for_instance(name, *_ENDS)
        return end is not None and end.seq > floor

    def _done_since(self, name: str, floor: int) -> bool:
        done = self.journal.last_for_instance(name, JournalStep.DONE)
        return done is not None and done.seq > floor
