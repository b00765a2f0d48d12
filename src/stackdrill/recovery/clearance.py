"""The safety rule every start waits on: an instance starts on its target only once no
other copy of it can run. What proves that depends on the flow's kind, so the rule is a
table from flow kind to the question it asks.

Evacuation: the old host is fenced (and still off), or it returned and the engine
destroyed this guest there. Maintenance moves: the guest was stopped cleanly on its
source first. Resumes, reattaches and restarts start in place: their host must be up.
"""

from __future__ import annotations

from collections.abc import Callable

from stackdrill.api import PowerState
from stackdrill.recovery.hoststate import FENCED_STATES, HostStatus
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import FlowContext, FlowKind

_RUNNING = (HostStatus.UP, HostStatus.BOOTED)


class Clearance:
    def __init__(self, shared: Shared) -> None:
        self.drivers, self.config = shared.drivers, shared.config
        self.journal, self.state = shared.journal, shared.state
        self._rules: dict[FlowKind, Callable[[FlowContext], str | None]] = {
            FlowKind.MOVE: self._move,
            FlowKind.STOP: self._evacuate,  # never starts anything; as before, asks as evacuate
            FlowKind.REATTACH: self._reattach,
            FlowKind.RESUME: self._in_place,
            FlowKind.EVACUATE: self._evacuate,
            FlowKind.RESTART: self._restart,
        }

    def __call__(self, ctx: FlowContext) -> str | None:
        """None when the instance may start on its target; else why it must wait."""
        return self._rules[ctx.kind](ctx)

    def _move(self, ctx: FlowContext) -> str | None:
        return None if ctx.done(JournalStep.SOURCE_STOPPED) else "not stopped on its source yet"

    def _reattach(self, ctx: FlowContext) -> str | None:
        return self._in_place(ctx) if ctx.done(JournalStep.SOURCE_STOPPED) else "not stopped yet"

    def _restart(self, ctx: FlowContext) -> str | None:
        """Its dead copy destroyed, on a host that runs (a drain requested meanwhile waits
        for this flow, so a host in maintenance still counts)."""
        if not ctx.done(JournalStep.SOURCE_STOPPED):
            return "its dead copy is not destroyed yet"
        st = self.state.status[ctx.source]
        return None if st in (*_RUNNING, HostStatus.MAINTENANCE) else f"{ctx.source} is {st}"

    def _in_place(self, ctx: FlowContext) -> str | None:
        st = self.state.status[ctx.source]
        return None if st in _RUNNING else f"{ctx.source} is {st}"

    def _evacuate(self, ctx: FlowContext) -> str | None:
        st = self.state.status[ctx.source]
        if st in FENCED_STATES:
            return self._still_off(ctx.source)
        reserved = self.journal.attempt_steps(ctx.instance, ctx.attempt).get(
            JournalStep.RESERVED.value)
        floor = reserved.seq if reserved else 0
        for rec in self.journal.for_host(ctx.source):
            if (rec.step == JournalStep.GUEST_CLEANED.value
                    and rec.detail.get("guest") == ctx.instance and rec.seq > floor):
                return None
        return f"old host {ctx.source} is {st.value}: not confirmed fenced"

    def _still_off(self, host: str) -> str | None:
        if self.config.assume_fenced:
            return None
        power = self.drivers.power.state(host)
        if power is PowerState.OFF:
            return None
        return f"old host {host} was fenced but its power is {power.value} again"
