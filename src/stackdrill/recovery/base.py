"""What every part of the recovery engine shares: its state, the inventory it reads, the
events it emits, and the `Runtime` the per-instance tasks call back into.

The engine is split by idea (monitor, flows, scheduling, maintenance, returning hosts);
each part is a class in this chain, EngineBase <- FlowRunner <- Scheduler <- Maintenance
<- ReturningHosts <- HostMonitor <- RecoveryEngine, so that a part calls only what the
parts before it define and mypy checks every call. State lives here, declared once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stackdrill.api import Clock, Drivers, HostHealth, PowerState
from stackdrill.recovery import fence, sql
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.hoststate import AFTER, FAILED_STATES, FENCED_STATES, HostStatus
from stackdrill.recovery.inventory import BlockDeviceMapping, Instance, VmState, Volume
from stackdrill.recovery.journal import Journal, Step
from stackdrill.recovery.plan import Candidate, Need
from stackdrill.recovery.result import JournalRecord, RecoveryEvent
from stackdrill.recovery.tasks import FlowContext, FlowKind, Task, Yieldable
from stackdrill.topology import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstInfo:
    name: str
    uuid: str
    vcpus: int
    ram_mb: int
    group: str | None
    volumes: tuple[str, ...]
    has_port: bool


@dataclass
class Proc:
    """A running generator (a flow or a host cleanup) and what it waits for."""

    gen: Generator[Yieldable, Any, None]
    ctx: FlowContext | None = None
    tasks: list[Task] = field(default_factory=list)
    waiting: Yieldable | None = None
    since: float = 0.0
    finished: bool = False


class EngineBase:
    """Shared state (set by `RecoveryEngine.__init__`) and the helpers every part uses."""

    topology: Topology
    drivers: Drivers
    clock: Clock
    config: RecoveryConfig
    events: list[RecoveryEvent]
    hosts: list[str]  # compute hosts
    storage_hosts: list[str]  # hosts serving volumes to others (not compute): failover only
    journal: Journal
    _listener: Callable[[RecoveryEvent], None] | None
    _status: dict[str, HostStatus]
    _where: dict[str, tuple[str, str]]  # instance -> (DB host, vm_state); set by _set_where
    _hosted: dict[str, set[str]]  # host -> instances _where puts there
    _inactive: set[str]  # instances whose vm_state is not active
    _grouped: list[str]  # instances in a server group (anti-affinity), sorted
    _info: dict[str, InstInfo]
    _health: dict[str, HostHealth]
    _fences: dict[str, fence.FenceAttempt]
    _flows: dict[str, Proc]  # instance -> its flow in flight
    _procs: dict[str, Proc]  # host -> returning-host cleanup or maintenance reboot
    _suspects: set[str]
    _held: set[str]  # storage hosts not fenced: they hold the last replica
    _withheld: deque[tuple[str, str]]  # (guest, host) its booting host did not resume
    _since: float
    _started_at: float
    _seeded: bool
    sessions: sessionmaker[Session]

    # ------------------------------------------------------------ Runtime protocol

    def now(self) -> float:
        return self.clock.now()

    def failed_hosts(self) -> set[str]:
        return {h for h, st in self._status.items() if st in FAILED_STATES}

    def start_clearance(self, ctx: FlowContext) -> str | None:
        if ctx.kind is FlowKind.MOVE:
            return None if ctx.done(Step.SOURCE_STOPPED) else "not stopped on its source yet"
        if ctx.kind is FlowKind.REATTACH:
            if not ctx.done(Step.SOURCE_STOPPED):
                return "not stopped yet"
            st = self._status[ctx.source]
            return None if st in (HostStatus.UP, HostStatus.BOOTED) else f"{ctx.source} is {st}"
        if ctx.kind is FlowKind.RESUME:
            st = self._status[ctx.source]
            return None if st in (HostStatus.UP, HostStatus.BOOTED) else f"{ctx.source} is {st}"
        st = self._status[ctx.source]
        if st in FENCED_STATES:
            if self.config.assume_fenced:
                return None
            power = self.drivers.power.state(ctx.source)
            if power is PowerState.OFF:
                return None
            return f"old host {ctx.source} was fenced but its power is {power.value} again"
        reserved = self.journal.attempt_steps(ctx.instance, ctx.attempt).get(Step.RESERVED.value)
        floor = reserved.seq if reserved else 0
        for rec in self.journal.for_host(ctx.source):
            if (rec.step == Step.GUEST_CLEANED.value and rec.detail.get("guest") == ctx.instance
                    and rec.seq > floor):
                return None
        return f"old host {ctx.source} is {st.value}: not confirmed fenced"

    # ------------------------------------------------------------ inventory helpers

    def _load_instances(self) -> None:
        with self.sessions() as s:
            vols: dict[str, list[str]] = {}
            for uuid, vname in s.execute(
                    select(BlockDeviceMapping.instance_uuid, Volume.display_name)
                    .join(Volume, Volume.id == BlockDeviceMapping.volume_id)
                    .order_by(BlockDeviceMapping.id)):
                vols.setdefault(uuid, []).append(vname)
            for inst in s.scalars(select(Instance)):
                self._info[inst.display_name] = InstInfo(
                    inst.display_name, inst.uuid, inst.vcpus, inst.memory_mb, inst.server_group,
                    tuple(vols.get(inst.uuid, [])),
                    inst.mac is not None or inst.overlay is not None)
                self._set_where(inst.display_name, inst.host, inst.vm_state)
        self._grouped = sorted(n for n, i in self._info.items() if i.group)

    def _set_where(self, name: str, host: str, vm_state: str) -> None:
        """Where the inventory has an instance, with the per-host and inactive indexes the
        scheduler reads every tick (so a tick does not scan every instance)."""
        old = self._where.get(name)
        if old is not None:
            self._hosted.get(old[0], set()).discard(name)
        self._where[name] = (host, vm_state)
        self._hosted.setdefault(host, set()).add(name)
        if vm_state == VmState.ACTIVE.value:
            self._inactive.discard(name)
        else:
            self._inactive.add(name)

    def _served_by(self, name: str) -> set[str]:
        """The hosts serving an instance's volumes now: from its last storage step, else
        as the lab started (a local replica, else the DRBD primary or the VG's host)."""
        host = self._where[name][0]
        records = self.journal.for_instance(name)
        # an attempt that failed was reverted: the paths it prepared serve nobody
        reverted = {r.attempt for r in records
                    if r.step in (Step.FLOW_ABORTED.value, Step.FLOW_FAILED.value)}
        last_paths: dict[str, Any] = {}
        for rec in reversed(records):
            if rec.step == Step.STORAGE_READY.value and rec.attempt not in reverted:
                last_paths = rec.detail.get("paths", {})
                break
        out = set()
        for vol in self._info[name].volumes:
            if vol in last_paths:
                out.add(str(last_paths[vol]["served_by"]))
                continue
            replicas = self.topology.replica_hosts(vol)
            if host in replicas:
                out.add(host)
                continue
            pv = self.topology.volume_group(self.topology.volume(vol).vg).pv
            if pv.drbd is not None:
                res = self.topology.drbd_resource(pv.drbd)
                out.add((res.primary or res.nodes[:1])[0])
            elif pv.host:
                out.add(pv.host)
        return out

    def _served_now(self) -> set[str]:
        """Every host serving some active instance's volume."""
        return {h for name, (_, vm) in self._where.items() if vm == VmState.ACTIVE.value
                for h in self._served_by(name)}

    def _initial_hosts(self) -> dict[str, str]:
        return {i.name: i.host for i in self.topology.instances}

    def _draining(self) -> set[str]:
        return {h for h, st in self._status.items() if st is HostStatus.MAINTENANCE}

    def _spares(self) -> set[str]:
        return set(self.config.reserved_hosts) | {h.name for h in self.topology.hosts if h.reserved}

    def _need(self, name: str, source: str) -> Need:
        info = self._info[name]
        exclude = frozenset(r.detail["exclude"] for r in self.journal.for_instance(name)
                            if r.step == Step.FLOW_ABORTED.value and "exclude" in r.detail)
        return Need(name, source, info.vcpus, info.ram_mb, info.volumes, info.group, exclude)

    def _replicas(self, needs: list[Need]) -> dict[str, list[Any]]:
        vols = sorted({v for n in needs for v in n.volumes})
        return {v: self.drivers.storage.replicas(v) for v in vols}

    def _candidates(self, exclude: Iterable[str] = ()) -> list[Candidate]:
        skip = set(exclude)
        spares = self._spares()
        groups: dict[str, set[str]] = {}
        for name in self._grouped:
            group = self._info[name].group
            if group:
                groups.setdefault(self._where[name][0], set()).add(group)
        for proc in self._flows.values():
            if proc.ctx is not None and self._info[proc.ctx.instance].group:
                groups.setdefault(proc.ctx.target, set()).add(
                    self._info[proc.ctx.instance].group or "")
        out = []
        with self.sessions() as s:
            services = sql.services(s)
            for node in sql.compute_nodes(s):
                sv = services.get(node.host)
                health = self._health.get(node.host)
                if (node.host in skip or self._status.get(node.host) is not HostStatus.UP
                        or sv is None or sv.forced_down
                        or (sv.disabled and node.host not in spares)
                        or health is None or health.power is not PowerState.ON
                        or health.last_heartbeat is None  # never heard from: not a target
                        or self.now() - health.last_heartbeat > self.config.grace_s):
                    continue
                out.append(Candidate(node.host, node.vcpus * node.cpu_allocation_ratio,
                                     node.memory_mb * node.ram_allocation_ratio, node.vcpus_used,
                                     node.memory_mb_used, node.host in spares,
                                     set(groups.get(node.host, set()))))
        return out

    # ------------------------------------------------------------ events

    def _on_record(self, record: JournalRecord) -> None:
        if record.instance is None and record.host is not None:
            self._status[record.host] = AFTER.get(record.step, self._status[record.host])
            if record.step == Step.HOST_REJOINED.value:
                for name in record.detail.get("resume", []):
                    self._set_where(name, self._where[name][0], VmState.STOPPED.value)
            return
        name = record.instance
        if name is None or name not in self._where:
            return
        host, vm = self._where[name]
        d = record.detail
        if record.step == Step.DB_UPDATED.value:
            host = d["at"]
        elif record.step == Step.DONE.value:
            vm = VmState.ACTIVE.value
            self._emit("instance-recovered", f"{name} verified running on {d['at']}",
                       d["at"], name)
        elif record.step == Step.GUEST_STOPPED.value:
            vm = VmState.STOPPED.value
        elif record.step in (Step.FLOW_ABORTED.value, Step.FLOW_FAILED.value):
            host, vm = d["host_after"], d["vm_state"]
        elif record.step == Step.UNRECOVERABLE.value:
            vm = VmState.ERROR.value
        self._set_where(name, host, vm)

    def _emit(self, kind: str, message: str, host: str | None = None,
              instance: str | None = None, **fields: Any) -> None:
        event = RecoveryEvent(self.now(), kind, message, host, instance, fields)
        self.events.append(event)
        log.info("[%.1f] %s", event.time, message)
        if self._listener is not None:
            self._listener(event)
