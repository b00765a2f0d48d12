"""Closing a flow that did not finish: whether another attempt follows, and putting the
inventory back where the lab really is (which host owns the instance, in which vm_state,
whose capacity it holds).

The decision is a pure function of the flow's journaled steps and the hosts' statuses
(`settle`), kept apart from the write (`FlowCloser.end`), so that each rule reads on its
own and a restarted engine that replays the journal lands on the same inventory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from stackdrill.recovery import sql
from stackdrill.recovery.hoststate import FAILED_STATES, HostStatus
from stackdrill.recovery.inventory import Instance, Migration, MigrationStatus, VmState
from stackdrill.recovery.result import JournalRecord
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import FlowContext, FlowKind

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Settlement:
    retry: bool  # a new attempt follows (flow-aborted), else given up (flow-failed)
    host: str  # where the inventory has the instance afterwards
    vm_state: str
    give_back: bool  # the target's claim is released (and the source's restored if moved)
    updated: bool  # the inventory had already moved it to the target
    resumable: bool  # nothing was left half-started


def settle(ctx: FlowContext, steps: Mapping[str, JournalRecord], failures: int, undone: bool,
           cascade: bool, status: Mapping[str, HostStatus]) -> Settlement:
    started = JournalStep.START_REQUESTED.value in steps
    # a resume is tried again only if it failed before starting anything (its storage
    # was not ready yet, e.g. a replica that has not met its peer since the boot)
    retry = cascade or (undone and failures + 1 < MAX_ATTEMPTS
                        and (ctx.kind is not FlowKind.RESUME or not started))
    moved = ctx.target != ctx.source
    updated = JournalStep.DB_UPDATED.value in steps
    target_dead = status.get(ctx.target) in FAILED_STATES
    give_back = (JournalStep.RESERVED.value in steps and moved
                 and (not updated or (not target_dead and (undone or not started))))
    host = ctx.source if give_back or not updated else ctx.target
    resumable = undone or not started
    vm_state = _vm_state(ctx, steps, retry, started, give_back and resumable, status)
    return Settlement(retry, host, vm_state, give_back, updated, resumable)


def _vm_state(ctx: FlowContext, steps: Mapping[str, JournalRecord], retry: bool,
              started: bool, handed_back: bool, status: Mapping[str, HostStatus]) -> str:
    if ctx.kind in (FlowKind.MOVE, FlowKind.STOP) and \
            JournalStep.SOURCE_STOPPED.value in steps and not started:
        return VmState.STOPPED.value
    if handed_back and ctx.kind is FlowKind.EVACUATE and \
            status.get(ctx.source) not in FAILED_STATES:
        # the source rejoined meanwhile, and a rejoined host runs none of its evacuated
        # guests: handed back there, the guest is stopped (resumed by a flow), not active
        return VmState.STOPPED.value
    if not retry:
        return VmState.ERROR.value
    # a resume is still to be resumed, after the back-off
    return VmState.STOPPED.value if ctx.kind is FlowKind.RESUME else VmState.ACTIVE.value


class FlowCloser:
    def __init__(self, shared: Shared) -> None:
        self.journal, self.state, self.emit = shared.journal, shared.state, shared.emit

    def end(self, ctx: FlowContext, reason: str, undone: bool, cascade: bool,
            blame_target: bool = False) -> None:
        """Close a flow that did not finish; put the inventory back where the lab really is."""
        steps = self.journal.attempt_steps(ctx.instance, ctx.attempt)
        failures = sum(1 for r in self.journal.for_instance(ctx.instance)
                       if r.step == JournalStep.FLOW_ABORTED.value and not r.detail.get("cascade"))
        out = settle(ctx, steps, failures, undone, cascade, self.state.status)
        detail: dict[str, Any] = {"reason": reason, "host_after": out.host,
                                  "vm_state": out.vm_state, "cascade": cascade,
                                  "resumable": out.resumable, "kind": ctx.kind.value}
        if blame_target:
            detail["exclude"] = ctx.target
        step = JournalStep.FLOW_ABORTED if out.retry else JournalStep.FLOW_FAILED
        with self.journal.step(step, instance=ctx.instance, attempt=ctx.attempt, **detail) as s:
            inst = s.get(Instance, ctx.uuid)
            assert inst is not None
            if out.give_back:
                sql.usage(s, ctx.target, -inst.vcpus, -inst.memory_mb)
                if out.updated:
                    sql.usage(s, ctx.source, inst.vcpus, inst.memory_mb)
            inst.host = inst.node = out.host
            inst.vm_state, inst.task_state = out.vm_state, None
            s.execute(update(Migration).where(Migration.instance_uuid == ctx.uuid,
                                              Migration.status == MigrationStatus.ACCEPTED.value)
                      .values(status=MigrationStatus.FAILED.value))
        self.emit("flow-aborted" if out.retry else "flow-failed", f"{ctx.instance}: {reason}",
                  ctx.source, ctx.instance)
