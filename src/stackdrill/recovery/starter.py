"""Starting what the scheduler queued, as many as the lab can take now (capacity.py: free
slots per target host and per storage backend, and the global cap if one is set): the
movers placed together in one plan (so they do not pile onto one host, and only onto
hosts with a free slot), each started as a flow to its placement; a mover whose every
fitting host is busy waits for a later tick; an evacuee with no place is journaled
unrecoverable with the reason, and a maintenance move with no place becomes a clean
stop, resumed after the reboot.
"""

from __future__ import annotations

from sqlalchemy import update

from stackdrill.recovery.capacity import Capacity, Slots
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
    def __init__(self, shared: Shared, placer: Placer, flows: FlowRunner,
                 capacity: Capacity) -> None:
        self.config, self.journal, self.state = shared.config, shared.journal, shared.state
        self.emit = shared.emit
        self.placer, self.flows, self.capacity = placer, flows, capacity

    def start(self, queued: list[Queued]) -> None:
        if not queued or self.capacity.full():
            return
        free = self.capacity.free()
        batch = self._admit(queued, free)
        if not batch:
            return
        needs = [self.placer.need(n, s) for k, n, s in batch if k in _MOVERS]
        plan = self.placer.plan(needs, slots={h: free.host_free(h) for h in self.state.hosts})
        draining = self.state.draining()
        placed = {p.instance: p for p in plan.placements
                  if self.config.maintenance_move or p.source not in draining}
        lost = {u.instance: u.reason for u in plan.unplaceable}
        waiting = set(plan.waiting)
        for kind, name, source in batch:
            if kind in _IN_PLACE:
                self.flows.start(kind, name, source, source, {}, {})
            elif name in placed:
                self._start_placed(kind, placed[name])
            elif name in waiting:  # every host that fits it is busy: a later tick
                continue
            elif kind is FlowKind.MOVE:  # nowhere to go: clean stop, resumed after the boot
                self.flows.start(FlowKind.STOP, name, source, source, {}, {})
            else:
                self._unrecoverable(name, source, lost[name])

    def _admit(self, queued: list[Queued], free: Slots) -> list[Queued]:
        """The queued flows, in order, that the free slots allow: each takes a slot on
        its storage backends, an in-place one on its host too (a mover's target is known
        only once placed: at most as many movers as hosts have free slots)."""
        batch: list[Queued] = []
        room = sum(max(0, free.host_free(h)) for h in self.state.hosts)
        for kind, name, source in queued:
            if free.exhausted:
                break
            backends = self.capacity.backends(name)
            host = source if kind in _IN_PLACE else None
            if not free.fits(backends, host, source) or (host is None and room <= 0):
                continue
            room -= host is None
            free.take(backends, host, source)
            batch.append((kind, name, source))
        return batch

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
