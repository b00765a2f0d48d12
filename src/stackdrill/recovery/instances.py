"""The instance monitor: an instance whose process died on a host that stays up is started
again on that host (Masakari's instance monitor and its instance-failure flow; Pacemaker's
resource monitor, whose failed operation makes the cluster restart the resource).

Host-level detection never sees such a death: the host heartbeats on. So every
`instance_check_interval_s` the monitor asks the compute driver which guests each UP host
runs; an instance the inventory has active there that the host reports not running (or
does not list) becomes a finding. A finding turns into a RESTART flow (journaled like
every flow: destroy the dead copy, prepare its volumes, start, verify) only while it still
holds: the host is still UP, nothing was journaled for the instance since the question was
asked, no flow owns it, and no other flow's failed attempt waits to be retried. A host
whose `guests()` call fails is not UP for this purpose: the host monitor owns it.

Pacemaker's failcount and migration-threshold: after `instance_max_restarts` restarts
within `instance_restart_window_s` the monitor gives up (journaled, the instance in
error, reported with the reason) and leaves it for host-level recovery or an operator.
Everything it decides from is in the journal, so a restarted engine decides the same.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import update

from stackdrill.api import GuestInfo, PowerState
from stackdrill.recovery.hoststate import HostStatus
from stackdrill.recovery.inventory import Instance, VmState
from stackdrill.recovery.result import JournalRecord
from stackdrill.recovery.scheduling import Queued
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import FlowKind


@dataclass(frozen=True)
class _Ask:
    """One `guests(host)` question in flight."""

    future: Future[list[GuestInfo]]
    at: float
    seq: int  # the journal's last row when it was asked: later rows make an answer stale


@dataclass(frozen=True)
class Finding:
    """An instance the inventory has active on `host`, which `host` reported not running."""

    host: str
    seen_at: float
    seq: int


class InstanceMonitor:
    """Polls the UP hosts' guests; queues RESTART flows; gives up after too many."""

    def __init__(self, shared: Shared) -> None:
        self.drivers, self.config, self.clock = shared.drivers, shared.config, shared.clock
        self.journal, self.state, self.emit = shared.journal, shared.state, shared.emit
        self._asked: dict[str, _Ask] = {}
        self.findings: dict[str, Finding] = {}  # instance -> what was seen of it
        self._next_check = 0.0

    # ------------------------------------------------------------ looking

    def observe(self, now: float) -> None:
        """Take the answers that came in; ask the UP hosts again when a check is due."""
        self._collect(now)
        if not self.config.instance_monitor or now < self._next_check:
            return
        self._next_check = now + self.config.instance_check_interval_s
        seq = self.journal.records[-1].seq if self.journal.records else 0
        for host in self.state.hosts:
            health = self.state.health.get(host)
            if (host in self._asked or self.state.status[host] is not HostStatus.UP
                    or health is None or health.power is not PowerState.ON):
                continue
            self._asked[host] = _Ask(self.drivers.compute.guests(host), now, seq)

    def _collect(self, now: float) -> None:
        for host, ask in sorted(self._asked.items()):
            if not ask.future.done():
                if now - ask.at >= self.config.op_timeout_s:
                    del self._asked[host]  # no answer: not UP for this purpose
                continue
            del self._asked[host]
            if ask.future.exception() is not None:
                continue  # unreachable: the host monitor decides what that means
            running = {g.name for g in ask.future.result() if g.running}
            for name in sorted(self.state.hosted.get(host, ())):
                if name not in running and self.state.where[name][1] == VmState.ACTIVE.value \
                        and name not in self.state.flows and name not in self.findings:
                    self.findings[name] = Finding(host, now, ask.seq)
                    self.emit("instance-down", f"{name} is not running on {host}, which is "
                              "up", host, name)

    # ------------------------------------------------------------ acting

    def queue(self, now: float, taken: set[str]) -> list[Queued]:
        """A RESTART for each finding that still holds and is not `taken` by another flow
        queued this tick; a finding over the restart limit is given up instead."""
        out: list[Queued] = []
        for name, found in sorted(self.findings.items()):
            if not self._holds(name, found):
                del self.findings[name]
                continue
            if name in taken or self._backing_off(name, now):
                continue
            restarts = self.restarts_within(name, now)
            if restarts >= self.config.instance_max_restarts:
                del self.findings[name]
                self._give_up(name, found.host, restarts)
                continue
            out.append((FlowKind.RESTART, name, found.host))
        return out

    def _holds(self, name: str, found: Finding) -> bool:
        """Still true, and still the monitor's: the host UP, the instance active there, no
        flow on it, nothing journaled for it since the question was asked."""
        records = self.journal.for_instance(name)
        return (self.state.status[found.host] is HostStatus.UP
                and self.state.where[name] == (found.host, VmState.ACTIVE.value)
                and name not in self.state.flows
                and not (records and records[-1].seq > found.seq))

    def _backing_off(self, name: str, now: float) -> bool:
        """A failed restart waits `retry_delay_s` before the next; another kind's failed
        attempt is its scheduler rule's to retry (a reattach whose revert stopped it)."""
        records = self.journal.for_instance(name)
        last = records[-1] if records else None
        if last is None or last.step != JournalStep.FLOW_ABORTED.value:
            return False
        return last.detail.get("kind") != FlowKind.RESTART.value \
            or now - last.time < self.config.retry_delay_s

    def restarts_within(self, name: str, now: float) -> int:
        """Restarts begun within the window (Pacemaker's failcount, with failure-timeout)."""
        since = now - self.config.instance_restart_window_s
        return sum(1 for r in self.journal.for_instance(name) if _a_restart(r)
                   and r.time > since)

    def _give_up(self, name: str, host: str, restarts: int) -> None:
        window = self.config.instance_restart_window_s
        reason = (f"died again on {host} after {restarts} restart(s) within {window:g} s; "
                  "left for the operator (instance_max_restarts)")
        records = self.journal.for_instance(name)
        attempt = records[-1].attempt if records else 0
        with self.journal.step(JournalStep.RESTARTS_EXHAUSTED, instance=name,
                               attempt=attempt, host_at=host, restarts=restarts,
                               reason=reason) as s:
            s.execute(update(Instance).where(Instance.display_name == name)
                      .values(vm_state=VmState.ERROR.value, task_state=None))
        self.emit("restarts-exhausted", f"{name}: {reason}", host, name)


def _a_restart(record: JournalRecord) -> bool:
    return record.step == JournalStep.RESERVED.value \
        and record.detail.get("kind") == FlowKind.RESTART.value
