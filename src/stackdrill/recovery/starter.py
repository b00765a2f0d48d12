"""Starting what the scheduler queued, as many as there are free flow slots: the movers
placed together in one plan (so they do not pile onto one host), each started as a flow
to its placement; an evacuee with no place is journaled unrecoverable with the reason,
and a maintenance move with no place becomes a clean stop, resumed after the reboot.
"""

from __future__ import annotations

from sqlalchemy import update

from stackdrill.recovery.flows import FlowRunner
from stackdrill.recovery.inventory import Instance, VmState
from stackdrill.recovery.placer import Placer
from stackdrill.recovery.plan import Placement
from stackdrill.recovery.scheduling import Queued
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import FlowKind

_MOVERS = (FlowKind.EVACUATE, FlowKind.MOVE)
_IN_PLACE = (FlowKind.RESUME, FlowKind.REATTACH, FlowKind.RESTART)


class FlowStarter:
    def __init__(self, shared: Shared, placer: Placer, flows: FlowRunner) -> None:
        self.config, self.journal, self.state = shared.config, shared.journal, shared.state
        self.emit = shared.emit
        self.placer, self.flows = placer, flows

    def start(self, queued: list[Queued]) -> None:
        free = self.config.parallel - len(self.state.flows)
        if free <= 0 or not queued:
            return
        batch = queued[:free]
        needs = [self.placer.need(n, s) for k, n, s in batch if k in _MOVERS]
        plan = self.placer.plan(needs)
        draining = self.state.draining()
        placed = {p.instance: p for p in plan.placements
                  if self.config.maintenance_move or p.source not in draining}
        lost = {u.instance: u.reason for u in plan.unplaceable}
        for kind, name, source in batch:
            if kind in _IN_PLACE:
                self.flows.start(kind, name, source, source, {}, {})
            elif name in placed:
                self._start_placed(kind, placed[name])
            elif kind is FlowKind.MOVE:  # nowhere to go: clean stop, resumed after the boot
                self.flows.start(FlowKind.STOP, name, source, source, {}, {})
            else:
                self._unrecoverable(name, source, lost[name])

    def _start_placed(self, kind: FlowKind, p: Placement) -> None:
        self.flows.start(kind, p.instance, p.source, p.target, p.served_by,
                         {v: m.value for v, m in p.attach.items()})

    def _unrecoverable(self, name: str, source: str, reason: str) -> None:
        failures = [r for r in self.journal.for_instance(name)
                    if r.step == JournalStep.FLOW_ABORTED.value]
        if failures:
            reason += f"; last attempt: {failures[-1].detail.get('reason')}"
        with self.journal.step(JournalStep.UNRECOVERABLE, instance=name, source=source,
                               reason=reason, vm_state=VmState.ERROR.value) as s:
            s.execute(update(Instance).where(Instance.display_name == name)
                      .values(vm_state=VmState.ERROR.value, task_state=None))
        self.emit("unrecoverable", f"{name} cannot be recovered: {reason}", source, name)
