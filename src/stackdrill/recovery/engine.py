"""The recovery engine: monitor, detect, fence, plan, and run journaled per-instance flows.

Single-threaded and driven by the lab's `Clock`: drivers return futures, the
engine keeps as many flows in flight as the lab takes (capacity.py: per target host,
per storage backend, and `parallel` if set) and waits on their futures through the
clock, so on the simulator a run is deterministic. It talks only to the
driver interfaces in `stackdrill.api`, never to a backend.

Safety rules, in the order Nova requires: a host is fenced and confirmed off,
then its compute service is forced down, then its instances are evacuated; no
instance starts on a new host while its old host is not confirmed fenced (or
cleaned after it returned). Everything is journaled first, so a killed engine
that is started again converges to the same end state.

`RecoveryEngine` holds the public API and the loop, and composes the parts: one
`EngineState` (state.py) and the journal are shared by the monitor (its per-status
handlers live in fencer, returning and maintenance), the instance monitor (instances.py:
an instance that died on a host that stays up is restarted there), the scheduler and flow
starter, the flow runner and the pump that drives their generators. It is also the
`Runtime` the tasks see.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlalchemy.exc import InterfaceError, OperationalError

from stackdrill.api import Clock, Drivers, PowerState
from stackdrill.recovery.cadence import Act, Cadence
from stackdrill.recovery.capacity import Capacity
from stackdrill.recovery.clearance import Clearance
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.db import open_inventory, seed_inventory
from stackdrill.recovery.dburl import InventoryLost, first_line
from stackdrill.recovery.fencer import Fencer
from stackdrill.recovery.flowend import FlowCloser
from stackdrill.recovery.flows import FlowRunner
from stackdrill.recovery.hoststate import HostStates, HostStatus
from stackdrill.recovery.instances import InstanceMonitor
from stackdrill.recovery.inventory import VmState
from stackdrill.recovery.journal import Journal
from stackdrill.recovery.lease import Lease, LeaseLost
from stackdrill.recovery.maintenance import Maintenance
from stackdrill.recovery.monitor import HostMonitor
from stackdrill.recovery.outcome import build_result
from stackdrill.recovery.placer import Placer
from stackdrill.recovery.plan import Plan
from stackdrill.recovery.procs import ProcPump
from stackdrill.recovery.result import JournalRecord, RecoveryEvent, RecoveryResult
from stackdrill.recovery.returning import Returning
from stackdrill.recovery.scheduling import Queued, Scheduler
from stackdrill.recovery.shared import Emitter, Shared
from stackdrill.recovery.starter import FlowStarter
from stackdrill.recovery.state import EngineState
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import FlowContext
from stackdrill.recovery.writeahead import write_ahead
from stackdrill.topology import Topology
from stackdrill.topology.model import Role

log = logging.getLogger(__name__)

# The database itself went away (connection cut, server down), not a statement's fault.
DATABASE_LOST = (OperationalError, InterfaceError)

# Host statuses in which the engine still has work to do for the host.
_BUSY = frozenset({HostStatus.DOWN, HostStatus.FENCING, HostStatus.FENCED, HostStatus.RETURNING,
                   HostStatus.BOOTED})


class RecoveryEngine:
    """Monitor a lab and recover what fails; see the module docstring for the rules."""

    def __init__(self, topology: Topology, drivers: Drivers, clock: Clock, db_url: str,
                 config: RecoveryConfig | None = None,
                 events: Callable[[RecoveryEvent], None] | None = None) -> None:
        self.topology, self.clock = topology, clock
        self.config = config or RecoveryConfig()
        self.sessions = open_inventory(db_url)
        # taken before the journal is read: the engine that acts is the one whose view of
        # the inventory is current (a standby waits here, then reads what the holder did)
        self.lease = Lease(self.sessions, self.config.lease_ttl_s)
        self.lease.acquire(self.config.lease_wait_s)
        hosts = sorted(h.name for h in topology.hosts_with(Role.COMPUTE))
        storage_hosts = storage_servers(topology, hosts)
        machine = HostStates([*hosts, *storage_hosts])
        try:
            self.journal = Journal(self.sessions, clock.now, self.config.stop_after_steps,
                                   on_record=self._on_record, hosts=machine)
        except BaseException:  # an unreadable journal: this engine will never act
            self.lease.release()
            raise
        # what the engine and its tasks call: a call that changes the lab commits the
        # journal's pending steps first (the journal commits in groups while it runs)
        self.drivers = write_ahead(drivers, self.journal.flush)
        self.state = EngineState(hosts, storage_hosts, machine.status, since=clock.now(),
                                 started_at=clock.now())
        self._emit = Emitter(clock, events, self.journal.flush)
        self.events = self._emit.events
        shared = Shared(topology, self.drivers, clock, self.config, self.journal.sessions,
                        self.journal, self.state, self._emit)
        self._placer = Placer(shared)
        self._clearance = Clearance(shared)
        self._flows = FlowRunner(shared, self, FlowCloser(shared))
        capacity = Capacity(topology, self.config, self.state)
        self._scheduler = Scheduler(shared, self._placer, capacity)
        self._starter = FlowStarter(shared, self._placer, self._flows, capacity)
        self._returning = Returning(shared, self._placer)
        self._maintenance = Maintenance(shared)
        self._monitor = HostMonitor(shared, Fencer(shared, self._returning), self._returning,
                                    self._maintenance)
        self._instances = InstanceMonitor(shared)
        self._pump = ProcPump(shared)
        self._cadence = Cadence(self.config, self.journal, self.state)
        self._seeded = False

    # ------------------------------------------------------------ the tasks' Runtime

    def now(self) -> float:
        return self.clock.now()

    def failed_hosts(self) -> set[str]:
        return self.state.failed_hosts()

    def start_clearance(self, ctx: FlowContext) -> str | None:
        """None when the instance may start on its target; else why it must wait."""
        return self._clearance(ctx)

    # ------------------------------------------------------------ public API

    def seed_inventory(self) -> None:
        """Fill the inventory from the topology (idempotent: existing rows are kept)."""
        self._hold_lease()
        with self.sessions() as s, s.begin():
            seed_inventory(s, self.topology, self.config.cpu_allocation_ratio,
                           self.config.ram_allocation_ratio, self.config.reserved_hosts)
        self.state.load_instances(self.sessions)
        self._seeded = True

    def plan(self, failed_hosts: Iterable[str]) -> Plan:
        """What the engine would do if `failed_hosts` were down now (for --dry-run)."""
        if not self._seeded:
            self.seed_inventory()
        try:
            failed = set(failed_hosts)
            for host in self.state.hosts:
                self.state.health[host] = self.drivers.compute.health(host)
            needs = [self._placer.need(name, src)
                     for name, (src, _) in sorted(self.state.where.items()) if src in failed]
            return self._placer.plan(needs, exclude=failed)
        finally:
            self.lease.release()

    def run(self, until: float) -> RecoveryResult:
        """Monitor and recover until lab time `until`, or until every failure seen is handled."""
        return self._loop(until)

    def drain(self, host: str, until: float) -> RecoveryResult:
        """Planned maintenance: move what can move, stop the rest, resume it after the reboot."""
        if not self._seeded:
            self.seed_inventory()
        self._maintenance.request(host)
        return self._loop(until)

    def boot_check(self, host: str, guests: list[str]) -> list[str]:
        """Which guests a booting host must not resume (see `Returning.boot_check`)."""
        return self._returning.boot_check(host, guests)

    def result(self) -> RecoveryResult:
        initial = {i.name: i.host for i in self.topology.instances}
        return build_result(self.journal.records, self.state.where, initial,
                            self.state.status, self.state.flows.keys(), self.events,
                            self.state.started_at, self.now(),
                            self.config.wait_after_service_update_s)

    # ------------------------------------------------------------ the loop

    def _on_record(self, record: JournalRecord) -> None:
        name = record.instance
        if record.step == JournalStep.DONE.value and name in self.state.where:
            at = record.detail["at"]
            self._emit("instance-recovered", f"{name} verified running on {at}", at, name)
        self.state.apply(record)

    def _loop(self, until: float) -> RecoveryResult:
        """Act only while holding the inventory's lease (another engine may point at it);
        give it back however the run ends (an engine killed by an exception too; one killed
        outright stops renewing and its lease expires)."""
        self._hold_lease()
        try:
            with self.journal.deferred():
                return self._ticks(until)
        except DATABASE_LOST as exc:
            raise InventoryLost(f"the inventory database was lost at lab time "
                                f"{self.now():.1f} s: {first_line(exc.orig)}") from None
        finally:
            self._give_lease_back()

    def _give_lease_back(self) -> None:
        """Give the lease back; with the database gone it cannot be, and it expires after
        its TTL (what an engine killed outright leaves too)."""
        try:
            self.lease.release()
        except DATABASE_LOST as exc:
            log.warning("lease not given back, the inventory database is unreachable (%s); "
                        "it expires in %.0f s", first_line(exc.orig), self.config.lease_ttl_s)

    def _hold_lease(self) -> None:
        """Take the lease again after a run gave it back, unless another engine wrote to
        the journal meanwhile: this engine's view would be stale (start a new one)."""
        if self.lease.holding:
            return
        self.lease.acquire(self.config.lease_wait_s)
        if self.journal.behind():
            self.lease.release()
            raise LeaseLost("another engine acted on this inventory since this engine read "
                            "it; a new engine reads the journal afresh")

    def _ticks(self, until: float) -> RecoveryResult:
        """One tick: when a poll is due or the world changed (cadence.py), look at every
        host and (every few ticks) at the guests of the UP ones, record withheld guests,
        abandon flows whose target failed; then, or when a flow slot was freed, queue and
        start flows; drive them; then wait on the lab's clock."""
        if not self._seeded:
            self.seed_inventory()
        self.drivers.compute.set_boot_hook(self.boot_check)
        self._flows.resume()
        idle_since: float | None = None
        settle = self.config.grace_s + self.config.heartbeat_interval_s
        cadence = self._cadence
        while True:
            self.lease.renew(before_write=self.journal.flush)
            now = self.now()
            act = cadence.act(now, until)
            if act is not Act.WAIT:
                if act is Act.LOOK:
                    self._look(now)
                queued = self._scheduler.queue(now)
                queued += self._instances.queue(now, {name for _, name, _ in queued})
                self._starter.start(queued)
                self._pump.pump()
                cadence.settled()
                if self.config.stop_when_idle and self._idle(queued):
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= settle:
                        break
                else:
                    idle_since = None
                if now >= until:
                    break
            self.journal.flush()  # nothing uncommitted while lab time passes
            self._pump.wait(now, min(until, cadence.next_poll))
            self._pump.pump()
        return self.result()

    def _look(self, now: float) -> None:
        self._monitor.observe(now)
        self._instances.observe(now)
        self._returning.park_withheld()
        self._flows.abandon_dead_targets()
        self._flows.abandon_lost_storage()

    def _idle(self, queued: list[Queued]) -> bool:
        state = self.state
        if state.flows or state.procs or queued or state.suspects or not self.journal.records:
            return False
        stopped = {state.where[n][0] for n in state.inactive
                   if state.where[n][1] == VmState.STOPPED.value}
        return not any(self._host_busy(host, st, stopped) for host, st in state.status.items())

    def _host_busy(self, host: str, st: HostStatus, stopped: set[str]) -> bool:
        if st in _BUSY:
            return True
        if st in (HostStatus.MAINTENANCE, HostStatus.REBOOTING):
            return host in stopped
        if st is HostStatus.EVACUATING:  # still waiting to evacuate, or the host is coming back
            return (self.now() < self._scheduler.evacuate_from(host)
                    or self.state.health[host].power in (PowerState.ON, PowerState.BOOTING))
        return False


def storage_servers(topology: Topology, compute: list[str]) -> list[str]:
    """Storage hosts that hold a replica of some volume and are not compute hosts."""
    holders = {h for vol in topology.volumes for h in topology.replica_hosts(vol.name)}
    return sorted(h.name for h in topology.hosts_with(Role.STORAGE)
                  if h.name in holders and h.name not in compute)
