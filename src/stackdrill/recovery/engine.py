"""The recovery engine: monitor, detect, fence, plan, and run journaled per-instance flows.

Single-threaded and driven by the lab's `Clock`: drivers return futures, the
engine keeps up to `parallel` flows in flight and waits on their futures through
the clock, so on the simulator a run is deterministic. It talks only to the
driver interfaces in `stackdrill.api`, never to a backend.

Safety rules, in the order Nova requires: a host is fenced and confirmed off,
then its compute service is forced down, then its instances are evacuated; no
instance starts on a new host while its old host is not confirmed fenced (or
cleaned after it returned). Everything is journaled first, so a killed engine
that is started again converges to the same end state.

This module holds the public API and the main loop; the parts live in base (shared
state), monitor, flows, scheduling, maintenance and returning.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import update

from stackdrill.api import Clock, Drivers, HostHealth, PowerState
from stackdrill.recovery import fence
from stackdrill.recovery.base import InstInfo, Proc
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.db import open_inventory, seed_inventory
from stackdrill.recovery.hoststate import AFTER, HostStatus
from stackdrill.recovery.inventory import Service, VmState
from stackdrill.recovery.journal import Journal, Step
from stackdrill.recovery.monitor import HostMonitor
from stackdrill.recovery.outcome import build_result
from stackdrill.recovery.plan import Plan, place
from stackdrill.recovery.result import RecoveryEvent, RecoveryResult
from stackdrill.recovery.tasks import FlowKind, Sleep
from stackdrill.topology import Topology
from stackdrill.topology.model import Role

log = logging.getLogger(__name__)


class RecoveryEngine(HostMonitor):
    """Monitor a lab and recover what fails; see the module docstring for the rules."""

    def __init__(self, topology: Topology, drivers: Drivers, clock: Clock, db_url: str,
                 config: RecoveryConfig | None = None,
                 events: Callable[[RecoveryEvent], None] | None = None) -> None:
        self.topology = topology
        self.drivers = drivers
        self.clock = clock
        self.config = config or RecoveryConfig()
        self._listener = events
        self.events: list[RecoveryEvent] = []
        self.sessions = open_inventory(db_url)
        self.hosts = sorted(h.name for h in topology.hosts_with(Role.COMPUTE))
        self.storage_hosts = _storage_servers(topology, self.hosts)
        self._status: dict[str, HostStatus] = {}
        self._where: dict[str, tuple[str, str]] = {}  # instance -> (DB host, vm_state)
        self._hosted: dict[str, set[str]] = {}
        self._inactive: set[str] = set()
        self._grouped: list[str] = []
        self.journal = Journal(self.sessions, clock.now, self.config.stop_after_steps,
                               on_record=self._on_record)
        for host in [*self.hosts, *self.storage_hosts]:
            self._status[host] = HostStatus.UP
            for record in self.journal.for_host(host):
                self._status[host] = AFTER.get(record.step, self._status[host])
        self._info: dict[str, InstInfo] = {}
        self._health: dict[str, HostHealth] = {}
        self._fences: dict[str, fence.FenceAttempt] = {}
        self._flows: dict[str, Proc] = {}
        self._procs: dict[str, Proc] = {}  # host -> returning-host cleanup
        self._suspects: set[str] = set()
        self._held: set[str] = set()
        self._withheld: deque[tuple[str, str]] = deque()  # (guest, host) not resumed at boot
        self._since = clock.now()
        self._started_at = clock.now()
        self._seeded = False

    def seed_inventory(self) -> None:
        """Fill the inventory from the topology (idempotent: existing rows are kept)."""
        with self.sessions() as s, s.begin():
            seed_inventory(s, self.topology, self.config.cpu_allocation_ratio,
                           self.config.ram_allocation_ratio, self.config.reserved_hosts)
        self._load_instances()
        self._seeded = True

    def plan(self, failed_hosts: Iterable[str]) -> Plan:
        """What the engine would do if `failed_hosts` were down now (for --dry-run)."""
        if not self._seeded:
            self.seed_inventory()
        failed = set(failed_hosts)
        for host in self.hosts:
            self._health[host] = self.drivers.compute.health(host)
        needs = [self._need(name, src) for name, (src, _) in sorted(self._where.items())
                 if src in failed]
        return place(needs, self._candidates(exclude=failed), self._replicas(needs),
                     failed | self.failed_hosts(), self.config.recovery_method)

    def run(self, until: float) -> RecoveryResult:
        """Monitor and recover until lab time `until`, or until every failure seen is handled."""
        return self._loop(until)

    def drain(self, host: str, until: float) -> RecoveryResult:
        """Planned maintenance: move what can move, stop the rest, resume it after the reboot."""
        if not self._seeded:
            self.seed_inventory()
        if self._status.get(host) is HostStatus.UP:
            with self.journal.step(Step.SERVICE_DISABLED, host=host, began=self.now()) as s:
                s.execute(update(Service).where(Service.host == host)
                          .values(disabled=True, disabled_reason="maintenance"))
            self._emit("maintenance", f"{host}: compute service disabled for maintenance", host)
        return self._loop(until)

    def result(self) -> RecoveryResult:
        return build_result(self.journal.records, self._where, self._initial_hosts(),
                            self._status, self._flows.keys(), self.events, self._started_at,
                            self.now(), self.config.wait_after_service_update_s)

    def _loop(self, until: float) -> RecoveryResult:
        if not self._seeded:
            self.seed_inventory()
        self.drivers.compute.set_boot_hook(self.boot_check)
        self._resume_flows()
        idle_since: float | None = None
        settle = self.config.grace_s + self.config.heartbeat_interval_s
        while True:
            now = self.now()
            self._observe_hosts(now)
            self._park_withheld()
            self._abandon_dead_targets()
            queued = self._queue(now)
            self._start_flows(queued)
            self._pump()
            if self.config.stop_when_idle and self._idle(queued):
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= settle:
                    break
            else:
                idle_since = None
            if now >= until:
                break
            self._wait(now, until)
            self._pump()
        return self.result()

    def _wait(self, now: float, until: float) -> None:
        wake = min(until, now + self.config.poll_s)
        futures: list[Future[Any]] = []
        for proc in [*self._flows.values(), *self._procs.values()]:
            if isinstance(proc.waiting, Sleep):
                wake = min(wake, proc.since + proc.waiting.seconds)
            elif proc.waiting is not None:
                futures.append(proc.waiting)
        futures.extend(a.future for a in self._fences.values())
        if futures:
            self.clock.wait(futures, timeout=max(0.0, wake - now))
        else:
            self.clock.sleep(max(0.0, wake - now))

    def _idle(self, queued: list[tuple[FlowKind, str, str]]) -> bool:
        if self._flows or self._procs or queued or self._suspects or not self.journal.records:
            return False
        busy = {HostStatus.DOWN, HostStatus.FENCING, HostStatus.FENCED, HostStatus.RETURNING,
                HostStatus.BOOTED}
        stopped = {self._where[n][0] for n in self._inactive
                   if self._where[n][1] == VmState.STOPPED.value}
        for host, st in self._status.items():
            if st in busy:
                return False
            if st in (HostStatus.MAINTENANCE, HostStatus.REBOOTING) and host in stopped:
                return False
            if st is HostStatus.EVACUATING and (
                    self.now() < self._evacuate_from(host)
                    or self._health[host].power in (PowerState.ON, PowerState.BOOTING)):
                return False  # still waiting to evacuate, or the host is coming back
        return True


def _storage_servers(topology: Topology, compute: list[str]) -> list[str]:
    """Storage hosts that hold a replica of some volume and are not compute hosts."""
    holders = {h for vol in topology.volumes for h in topology.replica_hosts(vol.name)}
    return sorted(h.name for h in topology.hosts_with(Role.STORAGE)
                  if h.name in holders and h.name not in compute)
