"""What a placement plan is made from: each instance's needs, the candidate hosts with
their capacity, the replicas of the volumes; and which hosts serve an instance's volumes.

Read from the inventory, the last health the monitor saw, the journal and the storage
driver, so the scheduler, the dry run (`RecoveryEngine.plan`) and returning-host
handling ask the same questions the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stackdrill.api import PowerState, Replica
from stackdrill.recovery import sql
from stackdrill.recovery.hoststate import HostStatus
from stackdrill.recovery.inventory import VmState
from stackdrill.recovery.plan import Candidate, Need, Plan, place
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep


class Placer:
    def __init__(self, shared: Shared) -> None:
        self.topology, self.drivers, self.clock = shared.topology, shared.drivers, shared.clock
        self.config = shared.config
        self.journal, self.state = shared.journal, shared.state

    def plan(self, needs: list[Need], exclude: Iterable[str] = (),
             slots: Mapping[str, int] | None = None) -> Plan:
        """Where each need goes now, avoiding failed hosts and `exclude` (and, given
        `slots`, hosts with no flow slot free)."""
        skip = set(exclude)
        return place(needs, self.candidates(skip), self.replicas(needs),
                     skip | self.state.failed_hosts(), self.config.recovery_method, slots)

    def need(self, name: str, source: str) -> Need:
        info = self.state.info[name]
        exclude = frozenset(r.detail["exclude"] for r in self.journal.for_instance(name)
                            if r.step == JournalStep.FLOW_ABORTED.value and "exclude" in r.detail)
        return Need(name, source, info.vcpus, info.ram_mb, info.volumes, info.group, exclude)

    def replicas(self, needs: list[Need]) -> dict[str, list[Replica]]:
        vols = sorted({v for n in needs for v in n.volumes})
        return {v: self.drivers.storage.replicas(v) for v in vols}

    def spares(self) -> set[str]:
        return set(self.config.reserved_hosts) | {h.name for h in self.topology.hosts if h.reserved}

    def candidates(self, exclude: Iterable[str] = ()) -> list[Candidate]:
        skip = set(exclude)
        spares = self.spares()
        groups = self._groups()
        out = []
        now = self.clock.now()
        with self.journal.reading() as s:
            services = sql.services(s)
            for node in sql.compute_nodes(s):
                if node.host in skip or not self._usable(node.host, services.get(node.host),
                                                         spares, now):
                    continue
                out.append(Candidate(node.host, node.vcpus * node.cpu_allocation_ratio,
                                     node.memory_mb * node.ram_allocation_ratio, node.vcpus_used,
                                     node.memory_mb_used, node.host in spares,
                                     set(groups.get(node.host, set()))))
        return out

    def _usable(self, host: str, service: Any, spares: set[str], now: float) -> bool:
        """Up, its compute service enabled (or a spare) and heartbeating, powered on."""
        health = self.state.health.get(host)
        return not (self.state.status.get(host) is not HostStatus.UP
                    or service is None or service.forced_down
                    or (service.disabled and host not in spares)
                    or health is None or health.power is not PowerState.ON
                    or health.last_heartbeat is None  # never heard from: not a target
                    or now - health.last_heartbeat > self.config.grace_s)

    def _groups(self) -> dict[str, set[str]]:
        """host -> server groups with a member there, or on its way there."""
        info = self.state.info
        groups: dict[str, set[str]] = {}
        for name in self.state.grouped:
            group = info[name].group
            if group:
                groups.setdefault(self.state.where[name][0], set()).add(group)
        for proc in self.state.flows.values():
            if proc.ctx is not None and info[proc.ctx.instance].group:
                groups.setdefault(proc.ctx.target, set()).add(info[proc.ctx.instance].group or "")
        return groups

    # ------------------------------------------------------------ who serves the volumes

    def served_by(self, name: str) -> set[str]:
        """The hosts serving an instance's volumes now: from its last storage step, else
        as the lab started (a local replica, else the DRBD primary or the VG's host)."""
        host = self.state.where[name][0]
        last_paths = self._last_paths(name)
        out = set()
        for vol in self.state.info[name].volumes:
            if vol in last_paths:
                out.add(str(last_paths[vol]["served_by"]))
            else:
                out.update(self._initial_server(vol, host))
        return out

    def _last_paths(self, name: str) -> dict[str, Any]:
        records = self.journal.for_instance(name)
        # an attempt that failed was reverted: the paths it prepared serve nobody
        reverted = {r.attempt for r in records
                    if r.step in (JournalStep.FLOW_ABORTED.value, JournalStep.FLOW_FAILED.value)}
        for rec in reversed(records):
            if rec.step == JournalStep.STORAGE_READY.value and rec.attempt not in reverted:
                paths: dict[str, Any] = rec.detail.get("paths", {})
                return paths
        return {}

    def _initial_server(self, vol: str, host: str) -> set[str]:
        if host in self.topology.replica_hosts(vol):
            return {host}
        pv = self.topology.volume_group(self.topology.volume(vol).vg).pv
        if pv.drbd is not None:
            res = self.topology.drbd_resource(pv.drbd)
            return {(res.primary or res.nodes[:1])[0]}
        return {pv.host} if pv.host else set()

    def served_now(self) -> set[str]:
        """Every host serving some active instance's volume."""
        return {h for name, (_, vm) in self.state.where.items() if vm == VmState.ACTIVE.value
                for h in self.served_by(name)}

    def waits_for(self, name: str, sto: str) -> bool:
        """`sto` serves the instance's volumes, or holds a replica of them while every host
        serving them has failed: a storage host held as the last replica is where the guest
        must reattach once it is back (its reattachments to it failed while it was away)."""
        served = self.served_by(name)
        if sto in served:
            return True
        failed = self.state.failed_hosts()
        return bool(served) and served <= failed and any(
            sto in self.topology.replica_hosts(vol) for vol in self.state.info[name].volumes)
