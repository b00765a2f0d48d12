"""Scheduling: which instances need a flow now (evacuate a failed host once its wait is
over, move or stop a drained host's guests, resume stopped guests on a booted host), in a
deterministic order, and where each goes (the placement plan, journaled once per incident).
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from stackdrill.api import PowerState
from stackdrill.recovery.flows import FlowRunner
from stackdrill.recovery.hoststate import HostStatus, last
from stackdrill.recovery.inventory import Instance, VmState
from stackdrill.recovery.journal import Step
from stackdrill.recovery.plan import place
from stackdrill.recovery.tasks import FlowKind

log = logging.getLogger(__name__)


class Scheduler(FlowRunner):
    """Which instances need a flow now, and where each goes."""

    def _evacuate_from(self, host: str) -> float:
        forced = last(self.journal.for_host(host), Step.SERVICE_FORCED_DOWN)
        return (forced.time if forced else 0.0) + self.config.wait_after_service_update_s

    def _incident_seq(self, host: str) -> int:
        down = last(self.journal.for_host(host), Step.HOST_DOWN, Step.SERVICE_DISABLED)
        return down.seq if down else 0

    def _backing_off(self, name: str, now: float, kind: FlowKind | None = None) -> bool:
        """After a failed attempt (of `kind`, if given), wait a little: most storage
        refusals are transient."""
        records = self.journal.for_instance(name)
        return bool(records) and records[-1].step == Step.FLOW_ABORTED.value \
            and not records[-1].detail.get("cascade") \
            and (kind is None or records[-1].detail.get("kind") == kind.value) \
            and now - records[-1].time < self.config.retry_delay_s

    def _given_up(self, name: str, floor: int) -> bool:
        return any(r.seq > floor and r.step in (Step.UNRECOVERABLE.value, Step.FLOW_FAILED.value)
                   for r in self.journal.for_instance(name))

    def _queue(self, now: float) -> list[tuple[FlowKind, str, str]]:
        """(kind, instance, source) of every instance that needs a flow now, in order.

        Runs every tick, so it filters before it sorts: on a large lab almost every host
        is up with nothing to resume, and the engine's overhead per instance is measured."""
        out: list[tuple[FlowKind, str, str]] = []
        # With every flow slot taken nothing queued can start this tick, and the loop is
        # not idle anyway: only a failed host's first plan must still be journaled now.
        full = len(self._flows) >= self.config.parallel
        inactive: dict[str, list[str]] = {}
        for name in self._inactive:
            if name not in self._flows:
                inactive.setdefault(self._where[name][0], []).append(name)
        for host in self.hosts:
            st = self._status[host]
            power = self._health[host].power
            if st is HostStatus.EVACUATING:
                if now < self._evacuate_from(host) or power in (PowerState.ON,
                                                                 PowerState.BOOTING):
                    continue
                if full and self._planned(host):
                    continue
                wanted = [n for n in self._hosted.get(host, ()) if n not in self._flows]
            elif full:
                continue
            elif st is HostStatus.MAINTENANCE:
                wanted = [n for n in self._hosted.get(host, ()) if n not in self._flows
                          and self._where[n][1] == VmState.ACTIVE.value]
            elif st in (HostStatus.BOOTED, HostStatus.UP) and power is PowerState.ON:
                resumable = {VmState.STOPPED.value} | (
                    {VmState.ERROR.value} if st is HostStatus.UP else set())
                wanted = [n for n in inactive.get(host, []) if self._where[n][1] in resumable]
            else:
                continue
            if not wanted:
                continue
            names = sorted(wanted, key=lambda n: (-self._info[n].ram_mb, -self._info[n].vcpus,
                                                  n))
            floor = self._incident_seq(host)
            if st is HostStatus.EVACUATING:
                todo = [n for n in names if not self._given_up(n, floor)
                        and not self._backing_off(n, now)]
                if todo and not self._planned(host):
                    self._record_plan(host, todo)
                out += [(FlowKind.EVACUATE, n, host) for n in todo]
            elif st is HostStatus.MAINTENANCE:
                out += [(FlowKind.MOVE, n, host) for n in names if not self._given_up(n, floor)]
            else:
                out += [(FlowKind.RESUME, n, host) for n in names if self._may_resume(n)
                        and not self._backing_off(n, now, FlowKind.RESUME)]
        if not full:
            out += self._reattach_queue(now, {n for _, n, _ in out})
        return out

    def _reattach_queue(self, now: float, queued: set[str]) -> list[tuple[FlowKind, str, str]]:
        """A fenced storage server: every active guest on a healthy compute host whose
        volume it served restarts in place on a path to the surviving replica. (What
        Pacemaker plus a reboot does; guests on failed compute hosts are evacuated.)
        A storage server that held the last replica was not fenced: when it rejoins as a
        DRBD Secondary, its guests are reattached to it once it is promoted again."""
        out: list[tuple[FlowKind, str, str]] = []
        for sto in self.storage_hosts:
            st = self._status[sto]
            if st is HostStatus.EVACUATING:
                floor = self._incident_seq(sto)
            elif st is HostStatus.UP:
                back = last(self.journal.for_host(sto), Step.HOST_REJOINED)
                if back is None or not back.detail.get("reattach"):
                    continue
                floor = back.seq
            else:
                continue
            for name in sorted(self._where):
                host, vm = self._where[name]
                if (vm != VmState.ACTIVE.value or name in self._flows or name in queued
                        or self._status.get(host) not in (HostStatus.UP, HostStatus.BOOTED)
                        or sto not in self._served_by(name) or self._given_up(name, floor)
                        or self._done_since(name, floor) or self._backing_off(name, now)):
                    continue
                queued.add(name)
                out.append((FlowKind.REATTACH, name, host))
        return out

    def _done_since(self, name: str, floor: int) -> bool:
        return any(r.seq > floor and r.step == Step.DONE.value
                   for r in self.journal.for_instance(name))

    def _planned(self, host: str) -> bool:
        """The plan for the host's current incident is journaled."""
        planned = last(self.journal.for_host(host), Step.PLANNED)  # records are in seq order
        return planned is not None and planned.seq > self._incident_seq(host)

    def _may_resume(self, name: str) -> bool:
        """Stopped guests always; errored ones only when nothing of them may still run."""
        if not self.config.resume_guests_state_on_host_boot:
            return False
        if self._where[name][1] == VmState.STOPPED.value:
            return True
        ends = [r for r in self.journal.for_instance(name)
                if r.step in (Step.UNRECOVERABLE.value, Step.FLOW_FAILED.value, Step.DONE.value)]
        if not ends:
            return False
        final = ends[-1]
        if final.step == Step.UNRECOVERABLE.value:
            return True
        kinds = [r.detail.get("kind") for r in self.journal.for_instance(name)
                 if r.attempt == final.attempt and r.step == Step.RESERVED.value]
        return bool(final.detail.get("resumable")) and FlowKind.RESUME.value not in kinds

    def _record_plan(self, host: str, names: list[str]) -> None:
        began = self._evacuate_from(host)
        needs = [self._need(n, host) for n in names]
        plan = place(needs, self._candidates(), self._replicas(needs), self.failed_hosts(),
                     self.config.recovery_method)
        self.journal.append(Step.PLANNED, host=host, began=began,
                            placements=len(plan.placements), unplaceable=len(plan.unplaceable))
        self._emit("plan", f"plan for {host}:\n{plan.render()}", host,
                   placements=len(plan.placements), unplaceable=len(plan.unplaceable))

    def _start_flows(self, queued: list[tuple[FlowKind, str, str]]) -> None:
        free = self.config.parallel - len(self._flows)
        if free <= 0 or not queued:
            return
        batch = queued[:free]
        movers = [(k, n, s) for k, n, s in batch if k in (FlowKind.EVACUATE, FlowKind.MOVE)]
        needs = [self._need(n, s) for _, n, s in movers]
        plan = place(needs, self._candidates(), self._replicas(needs), self.failed_hosts(),
                     self.config.recovery_method)
        placed = {p.instance: p for p in plan.placements
                  if self.config.maintenance_move or p.source not in self._draining()}
        lost = {u.instance: u for u in plan.unplaceable}
        for kind, name, source in batch:
            if kind in (FlowKind.RESUME, FlowKind.REATTACH):
                self._new_flow(kind, name, source, source, {}, {})
            elif name in placed:
                p = placed[name]
                self._new_flow(kind, name, source, p.target, p.served_by,
                               {v: m.value for v, m in p.attach.items()})
            elif kind is FlowKind.MOVE:  # nowhere to go: clean stop, resumed after the boot
                self._new_flow(FlowKind.STOP, name, source, source, {}, {})
            else:
                reason = lost[name].reason
                failures = [r for r in self.journal.for_instance(name)
                            if r.step == Step.FLOW_ABORTED.value]
                if failures:
                    reason += f"; last attempt: {failures[-1].detail.get('reason')}"
                with self.journal.step(Step.UNRECOVERABLE, instance=name, source=source,
                                       reason=reason, vm_state=VmState.ERROR.value) as s:
                    s.execute(update(Instance).where(Instance.display_name == name)
                              .values(vm_state=VmState.ERROR.value, task_state=None))
                self._emit("unrecoverable", f"{name} cannot be recovered: {reason}",
                           source, name)
