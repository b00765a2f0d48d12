"""The recovery engine: monitor, detect, fence, plan, and run journaled per-instance flows.

Single-threaded and driven by the lab's `Clock`: drivers return futures, the
engine keeps up to `parallel` flows in flight and waits on their futures through
the clock, so on the simulator a run is deterministic. It talks only to the
driver interfaces in `stackdrill.backends.base`, never to a backend.

Safety rules, in the order Nova requires: a host is fenced and confirmed off,
then its compute service is forced down, then its instances are evacuated; no
instance starts on a new host while its old host is not confirmed fenced (or
cleaned after it returned). Everything is journaled first, so a killed engine
that is started again converges to the same end state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from stackdrill.backends.base import Clock, Drivers, HostHealth, PowerState
from stackdrill.recovery import fence
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.db import open_inventory, seed_inventory
from stackdrill.recovery.detect import Verdict, assess
from stackdrill.recovery.hoststate import AFTER, FAILED_STATES, FENCED_STATES, HostStatus, last
from stackdrill.recovery.inventory import (
    BlockDeviceMapping,
    ComputeNode,
    Instance,
    Migration,
    MigrationStatus,
    Service,
    VmState,
    Volume,
)
from stackdrill.recovery.journal import FLOW_END, EngineKilled, Journal, Step
from stackdrill.recovery.outcome import build_result
from stackdrill.recovery.plan import Candidate, Need, Plan, place
from stackdrill.recovery.result import JournalRecord, RecoveryEvent, RecoveryResult
from stackdrill.recovery.tasks import (
    FlowContext,
    FlowKind,
    Sleep,
    StepFailed,
    Task,
    TaskGen,
    TaskStatus,
    Yieldable,
    build_flow,
    gather,
)
from stackdrill.topology import Topology
from stackdrill.topology.model import Role

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
# A failure in these tasks is the target's fault: the next attempt avoids that host.
TARGET_TASKS = frozenset({"StartGuest", "AttachVolumes", "PlugNetwork", "VerifyGuest"})


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


class RecoveryEngine:
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
        self._status: dict[str, HostStatus] = {}
        self._where: dict[str, tuple[str, str]] = {}  # instance -> (DB host, vm_state)
        self.journal = Journal(self.sessions, clock.now, self.config.stop_after_steps,
                               on_record=self._on_record)
        for host in self.hosts:
            self._status[host] = HostStatus.UP
            for record in self.journal.for_host(host):
                self._status[host] = AFTER.get(record.step, self._status[host])
        self._info: dict[str, InstInfo] = {}
        self._health: dict[str, HostHealth] = {}
        self._fences: dict[str, fence.FenceAttempt] = {}
        self._flows: dict[str, Proc] = {}
        self._procs: dict[str, Proc] = {}  # host -> returning-host cleanup
        self._suspects: set[str] = set()
        self._since = clock.now()
        self._started_at = clock.now()
        self._seeded = False

    # ------------------------------------------------------------ public API

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

    def boot_check(self, host: str, guests: list[str]) -> list[str]:
        """Nova's init_host question, asked by a booting host's compute service: which of
        its local guests were evacuated elsewhere (it must destroy, not resume, those)."""
        with self.sessions() as s:
            moved = set(s.scalars(
                select(Instance.display_name).join(
                    Migration, Migration.instance_uuid == Instance.uuid)
                .where(Migration.source_compute == host,
                       Migration.status.in_([MigrationStatus.ACCEPTED.value,
                                             MigrationStatus.DONE.value]))))
        elsewhere = {n for n, (h, _) in self._where.items() if h != host}
        out = sorted(g for g in guests if g in moved or g in elsewhere)
        if out:
            log.warning("%s boots: destroying evacuated guests %s", host, ", ".join(out))
        return out

    def result(self) -> RecoveryResult:
        return build_result(self.journal.records, self._where, self._initial_hosts(),
                            self._status, self._flows.keys(), self.events, self._started_at,
                            self.now(), self.config.wait_after_service_update_s)

    # ------------------------------------------------------------ Runtime protocol

    def now(self) -> float:
        return self.clock.now()

    def failed_hosts(self) -> set[str]:
        return {h for h, st in self._status.items() if st in FAILED_STATES}

    def start_clearance(self, ctx: FlowContext) -> str | None:
        if ctx.kind is FlowKind.MOVE:
            return None if ctx.done(Step.SOURCE_STOPPED) else "not stopped on its source yet"
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

    # ------------------------------------------------------------ the loop

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
        for host, st in self._status.items():
            if st in busy:
                return False
            stopped = any(h == host and vm == VmState.STOPPED.value
                          for h, vm in self._where.values())
            if st in (HostStatus.MAINTENANCE, HostStatus.REBOOTING) and stopped:
                return False
            if st is HostStatus.EVACUATING and (
                    self.now() < self._evacuate_from(host)
                    or self._health[host].power in (PowerState.ON, PowerState.BOOTING)):
                return False  # still waiting to evacuate, or the host is coming back
        return True

    # ------------------------------------------------------------ hosts

    def _observe_hosts(self, now: float) -> None:
        cfg = self.config
        for host in self.hosts:
            health = self._health[host] = self.drivers.compute.health(host)
            st = self._status[host]
            records = self.journal.for_host(host)
            if st is HostStatus.UP:
                verdict = assess(health, now, cfg.grace_s, self._since, cfg.fence_on_isolation)
                if verdict.verdict is Verdict.DOWN:
                    self._suspects.discard(host)
                    self.journal.append(Step.HOST_DOWN, host=host, reason=verdict.reason,
                                        began=health.last_heartbeat or self._since)
                    self._emit("host-down", f"{host} is down: {verdict.reason}", host)
                elif verdict.verdict is Verdict.SUSPECT:
                    if host not in self._suspects:
                        self._suspects.add(host)
                        self._emit("host-suspect", f"{host}: {verdict.reason}", host)
                elif host in self._suspects:
                    self._suspects.discard(host)
                    self._emit("host-ok", f"{host} heartbeats again", host)
            elif st is HostStatus.DOWN:
                if cfg.assume_fenced:
                    log.critical("ASSUMING %s IS FENCED (--assume-fenced): its instances will "
                                 "start elsewhere without a confirmed power-off", host)
                    self.journal.append(Step.FENCE_ASSUMED, host=host, began=now)
                    self._emit("fence-assumed", f"{host}: fencing ASSUMED by the operator", host)
                else:
                    self._fence(host, now)
            elif st is HostStatus.FENCING:
                attempt = self._fences.get(host)
                if attempt is None:  # resumed after a restart: ask again
                    attempt = self._fences[host] = fence.begin(self.drivers.power, host, now)
                outcome = fence.conclude(self.drivers.power, attempt, now, cfg.fence_timeout_s)
                if outcome is not None:
                    del self._fences[host]
                    if outcome.confirmed:
                        self.journal.append(Step.FENCE_CONFIRMED, host=host, began=attempt.started)
                        self._emit("fence-confirmed", f"{host} fenced: {outcome.reason}", host)
                    else:
                        self.journal.append(Step.FENCE_FAILED, host=host, reason=outcome.reason)
                        log.error("%s", outcome.reason)
                        self._emit("fence-failed", outcome.reason, host)
            elif st is HostStatus.UNFENCEABLE:
                failed = last(records, Step.FENCE_FAILED)
                if self._alive(health, now, failed.time if failed else 0.0):
                    self._returned(host, "heartbeats again (it was never fenced)")
                elif failed is None or now - failed.time >= cfg.fence_timeout_s:
                    self._fence(host, now)
            elif st is HostStatus.FENCED:
                with self.journal.step(Step.SERVICE_FORCED_DOWN, host=host) as s:
                    s.execute(update(Service).where(Service.host == host)
                              .values(forced_down=True, last_seen_up=health.last_heartbeat))
                self._emit("service-forced-down", f"{host}: compute service forced down", host)
            elif st is HostStatus.EVACUATING:
                fenced = last(records, Step.FENCE_CONFIRMED, Step.FENCE_ASSUMED)
                if self._alive(health, now, fenced.time if fenced else 0.0):
                    self._returned(host, "powered on again after it was fenced")
            elif st is HostStatus.RETURNING:
                if host not in self._procs:
                    self._procs[host] = Proc(self._cleanup(host), since=now)
            elif st is HostStatus.MAINTENANCE:
                drained = not any(p.ctx is not None and p.ctx.source == host
                                  for p in self._flows.values()) and not any(
                    h == host and vm == VmState.ACTIVE.value for h, vm in self._where.values())
                age = now - (health.last_heartbeat or self._since)
                if drained and cfg.maintenance_reboot:
                    self.journal.append(Step.HOST_REBOOTING, host=host, requested=True)
                    self._emit("host-rebooting", f"{host} drained; rebooting it", host)
                    self._procs[host] = Proc(self._reboot(host), since=now)
                elif drained and (health.power is not PowerState.ON
                                  or age > 2 * cfg.heartbeat_interval_s):
                    self.journal.append(Step.HOST_REBOOTING, host=host)
                    self._emit("host-rebooting", f"{host} went down for maintenance", host)
            elif st is HostStatus.REBOOTING:
                down = last(records, Step.HOST_REBOOTING)
                if (cfg.maintenance_reboot and host not in self._procs
                        and health.power is PowerState.OFF):  # restarted mid-reboot
                    self._procs[host] = Proc(self._power_on(host), since=now)
                if self._alive(health, now, down.time if down else 0.0):
                    self.journal.append(Step.HOST_REBOOTED, host=host)
                    self._emit("host-booted", f"{host} is back from maintenance", host)
            elif st is HostStatus.BOOTED:
                waiting = any(h == host and vm == VmState.STOPPED.value
                              for h, vm in self._where.values())
                busy = any(p.ctx is not None and p.ctx.target == host
                           for p in self._flows.values())
                if not waiting and not busy:
                    with self.journal.step(Step.SERVICE_ENABLED, host=host) as s:
                        s.execute(update(Service).where(Service.host == host)
                                  .values(disabled=False, disabled_reason=None))
                    self._emit("maintenance-done", f"{host}: compute service enabled", host)

    def _alive(self, health: HostHealth, now: float, after: float) -> bool:
        last_hb = health.last_heartbeat
        return (health.power is PowerState.ON and last_hb is not None and last_hb > after
                and now - last_hb <= self.config.grace_s)

    def _fence(self, host: str, now: float) -> None:
        self.journal.append(Step.FENCE_REQUESTED, host=host, began=now)
        self._fences[host] = fence.begin(self.drivers.power, host, now)
        self._emit("fence-requested", f"{host}: power-off requested", host)

    def _returned(self, host: str, why: str) -> None:
        self.journal.append(Step.HOST_RETURNED, host=host, reason=why)
        self._emit("host-returned", f"{host} {why}; cleaning evacuated guests before it rejoins",
                   host)
        self._procs[host] = Proc(self._cleanup(host), since=self.now())

    def _reboot(self, host: str) -> TaskGen:
        """Planned maintenance reboot through the power controller."""
        try:
            yield self.drivers.power.power_off(host)
        except (EngineKilled, GeneratorExit):
            raise
        except Exception as exc:
            self._emit("reboot-failed", f"{host}: power-off for maintenance failed: {exc}", host)
            return
        yield from self._power_on(host)

    def _power_on(self, host: str) -> TaskGen:
        try:
            yield self.drivers.power.power_on(host)
        except (EngineKilled, GeneratorExit):
            raise
        except Exception as exc:
            self._emit("reboot-failed", f"{host}: power-on after maintenance failed: {exc}",
                       host)

    def _cleanup(self, host: str) -> TaskGen:
        """What Nova's compute does at start for evacuated instances, confirmed, or re-fence."""
        began = self.now()
        compute = self.drivers.compute
        try:
            with self.sessions() as s:
                moved = set(s.scalars(
                    select(Instance.display_name).join(
                        Migration, Migration.instance_uuid == Instance.uuid)
                    .where(Migration.source_compute == host,
                           Migration.status.in_([MigrationStatus.ACCEPTED.value,
                                                 MigrationStatus.DONE.value]))))
            guests = yield compute.guests(host)
            stale = sorted({g.name for g in guests if g.name in moved
                            or (g.name in self._where and self._where[g.name][0] != host)})
            for name in stale:
                yield compute.destroy(name, host)
            for name in sorted(moved | set(stale)):
                info = self._info.get(name)
                vols = info.volumes if info else ()
                yield gather([self.drivers.storage.release(v, host) for v in vols])
                self.journal.append(Step.GUEST_CLEANED, host=host, guest=name,
                                    destroyed=name in stale)
            again = yield compute.guests(host)
            left = sorted(g.name for g in again if g.name in stale or g.name in moved)
            if left:
                raise StepFailed(f"guests still defined after cleanup: {', '.join(left)}")
            running = {g.name for g in again if g.running}
            idle = sorted(n for n, (h, vm) in self._where.items()
                          if h == host and n not in moved and n not in self._flows
                          and vm == VmState.ACTIVE.value and n not in running)
        except (EngineKilled, GeneratorExit):
            raise
        except Exception as exc:
            reason = f"cleanup of returning host {host} not confirmed ({exc}); fencing it again"
            log.error("%s", reason)
            self.journal.append(Step.REJOIN_REFUSED, host=host, reason=reason)
            self._emit("rejoin-refused", reason, host)
            return
        with self.journal.step(Step.HOST_REJOINED, host=host, began=began, resume=idle) as s:
            spare = host in self._spares()
            if idle:
                s.execute(update(Instance).where(Instance.display_name.in_(idle))
                          .values(vm_state=VmState.STOPPED.value))
            s.execute(update(Service).where(Service.host == host).values(
                forced_down=False, disabled=spare,
                disabled_reason="reserved host" if spare else None))
            s.execute(update(Migration).where(Migration.source_compute == host,
                                               Migration.status == MigrationStatus.DONE.value)
                      .values(status=MigrationStatus.COMPLETED.value))
        self._emit("host-rejoined", f"{host} cleaned and rejoined", host)

    # ------------------------------------------------------------ flows

    def _evacuate_from(self, host: str) -> float:
        forced = last(self.journal.for_host(host), Step.SERVICE_FORCED_DOWN)
        return (forced.time if forced else 0.0) + self.config.wait_after_service_update_s

    def _incident_seq(self, host: str) -> int:
        down = last(self.journal.for_host(host), Step.HOST_DOWN, Step.SERVICE_DISABLED)
        return down.seq if down else 0

    def _backing_off(self, name: str, now: float) -> bool:
        """After a failed attempt, wait a little: most storage refusals are transient."""
        records = self.journal.for_instance(name)
        return bool(records) and records[-1].step == Step.FLOW_ABORTED.value \
            and not records[-1].detail.get("cascade") \
            and now - records[-1].time < self.config.retry_delay_s

    def _given_up(self, name: str, floor: int) -> bool:
        return any(r.seq > floor and r.step in (Step.UNRECOVERABLE.value, Step.FLOW_FAILED.value)
                   for r in self.journal.for_instance(name))

    def _queue(self, now: float) -> list[tuple[FlowKind, str, str]]:
        """(kind, instance, source) of every instance that needs a flow now, in order."""
        out: list[tuple[FlowKind, str, str]] = []
        by_host: dict[str, list[str]] = {}
        for name, (host, _) in sorted(self._where.items()):
            by_host.setdefault(host, []).append(name)
        for host in self.hosts:
            st = self._status[host]
            names = sorted((n for n in by_host.get(host, []) if n not in self._flows),
                           key=lambda n: (-self._info[n].ram_mb, -self._info[n].vcpus, n))
            if not names:
                continue
            floor = self._incident_seq(host)
            returning = self._health[host].power in (PowerState.ON, PowerState.BOOTING)
            if st is HostStatus.EVACUATING and now >= self._evacuate_from(host) \
                    and not returning:
                todo = [n for n in names if not self._given_up(n, floor)
                        and not self._backing_off(n, now)]
                if todo and not any(r.step == Step.PLANNED.value and r.seq > floor
                                    for r in self.journal.for_host(host)):
                    self._record_plan(host, todo)
                out += [(FlowKind.EVACUATE, n, host) for n in todo]
            elif st is HostStatus.MAINTENANCE:
                out += [(FlowKind.MOVE, n, host) for n in names
                        if self._where[n][1] == VmState.ACTIVE.value
                        and not self._given_up(n, floor)]
            elif st in (HostStatus.BOOTED, HostStatus.UP) and self._health[host].power is \
                    PowerState.ON:
                resumable = {VmState.STOPPED.value} | (
                    {VmState.ERROR.value} if st is HostStatus.UP else set())
                out += [(FlowKind.RESUME, n, host) for n in names
                        if self._where[n][1] in resumable and self._may_resume(n)]
        return out

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
            if kind is FlowKind.RESUME:
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

    def _new_flow(self, kind: FlowKind, name: str, source: str, target: str,
                  served_by: dict[str, str], attach: dict[str, str]) -> None:
        attempt = 1 + max((r.attempt for r in self.journal.for_instance(name)), default=0)
        info = self._info[name]
        ctx = FlowContext(kind, name, info.uuid, attempt, source, target, info.volumes,
                          info.has_port, self,
                          {"target": target, "served_by": served_by, "attach": attach})
        self._launch(ctx)
        self._emit("flow-started", f"{name}: {kind.value} {source} -> {target}", source, name,
                   target=target, attempt=attempt)

    def _launch(self, ctx: FlowContext) -> None:
        tasks = build_flow(ctx.kind)
        self._flows[ctx.instance] = Proc(self._run_flow(ctx, tasks), ctx, tasks, since=self.now())

    def _resume_flows(self) -> None:
        """Flows the journal shows started and not ended: pick them up where they stopped."""
        for name in sorted(self._where):
            if name in self._flows:
                continue
            records = self.journal.for_instance(name)
            if not records:
                continue
            attempt = records[-1].attempt
            steps = self.journal.attempt_steps(name, attempt)
            reserved = steps.get(Step.RESERVED.value)
            if reserved is None or any(s.value in steps for s in FLOW_END):
                continue
            info = self._info[name]
            values: dict[str, Any] = {}
            for rec in records:
                if rec.attempt == attempt:
                    values.update(rec.detail)
            d = reserved.detail
            ctx = FlowContext(FlowKind(d["kind"]), name, info.uuid, attempt, d["source"],
                              d["target"], info.volumes, info.has_port, self, values)
            self._launch(ctx)
            self._emit("flow-resumed", f"{name}: resuming attempt {attempt} from the journal",
                       ctx.source, name)

    def _run_flow(self, ctx: FlowContext, tasks: list[Task]) -> TaskGen:
        done = self.journal.attempt_steps(ctx.instance, ctx.attempt)
        completed: list[Task] = []
        current: Task | None = None
        try:
            for task in tasks:
                current = task
                if task.step.value in done:
                    task.status = TaskStatus.SUCCESS
                    completed.append(task)
                    continue
                missing = [r for r in task.requires if r not in ctx.values]
                if missing:
                    raise StepFailed(f"{type(task).__name__} lacks {', '.join(missing)}")
                task.status = TaskStatus.RUNNING
                yield from task.execute(ctx)
                task.status = TaskStatus.SUCCESS
                completed.append(task)
        except (EngineKilled, GeneratorExit):
            raise
        except Exception as exc:
            if current is not None:
                current.status = TaskStatus.FAILURE
            reason = f"{type(current).__name__ if current else 'flow'} failed: {exc}"
            undone = True
            if current is not None and current.revert_on_failure and \
                    Step.START_REQUESTED.value in self.journal.attempt_steps(ctx.instance,
                                                                              ctx.attempt):
                completed.append(current)  # the start may have happened: undo it too
            for task in reversed(completed):
                try:
                    yield from task.revert(ctx)
                    task.status = TaskStatus.REVERTED
                except (EngineKilled, GeneratorExit):
                    raise
                except Exception as rexc:  # a partial start we cannot undo: never retry
                    undone = False
                    reason += f"; revert of {type(task).__name__} failed: {rexc}"
            self._end_flow(ctx, reason, undone=undone, cascade=False,
                           blame_target=type(current).__name__ in TARGET_TASKS)

    def _end_flow(self, ctx: FlowContext, reason: str, undone: bool, cascade: bool,
                  blame_target: bool = False) -> None:
        """Close a flow that did not finish; put the inventory back where the lab really is."""
        steps = self.journal.attempt_steps(ctx.instance, ctx.attempt)
        failures = sum(1 for r in self.journal.for_instance(ctx.instance)
                       if r.step == Step.FLOW_ABORTED.value and not r.detail.get("cascade"))
        retry = cascade or (undone and failures + 1 < MAX_ATTEMPTS
                            and ctx.kind is not FlowKind.RESUME)
        target_dead = self._status.get(ctx.target) in FAILED_STATES
        moved = ctx.target != ctx.source
        reserved = Step.RESERVED.value in steps and moved
        updated = Step.DB_UPDATED.value in steps
        started = Step.START_REQUESTED.value in steps
        host = ctx.target if updated else ctx.source
        give_back = reserved and (not updated or (not target_dead and (undone or not started)))
        if give_back:
            host = ctx.source
        vm_state = VmState.ACTIVE.value if retry else VmState.ERROR.value
        if ctx.kind in (FlowKind.MOVE, FlowKind.STOP) and Step.SOURCE_STOPPED.value in steps \
                and not started:
            vm_state = VmState.STOPPED.value
        detail: dict[str, Any] = {"reason": reason, "host_after": host, "vm_state": vm_state,
                                  "cascade": cascade, "resumable": undone or not started}
        if blame_target:
            detail["exclude"] = ctx.target
        step = Step.FLOW_ABORTED if retry else Step.FLOW_FAILED
        with self.journal.step(step, instance=ctx.instance, attempt=ctx.attempt, **detail) as s:
            inst = s.get(Instance, ctx.uuid)
            assert inst is not None
            if give_back:
                _usage(s, ctx.target, -inst.vcpus, -inst.memory_mb)
                if updated:
                    _usage(s, ctx.source, inst.vcpus, inst.memory_mb)
            inst.host = inst.node = host
            inst.vm_state, inst.task_state = vm_state, None
            s.execute(update(Migration).where(Migration.instance_uuid == ctx.uuid,
                                              Migration.status == MigrationStatus.ACCEPTED.value)
                      .values(status=MigrationStatus.FAILED.value))
        self._emit("flow-aborted" if retry else "flow-failed", f"{ctx.instance}: {reason}",
                   ctx.source, ctx.instance)

    def _abandon_dead_targets(self) -> None:
        """Cascade: a flow whose target just failed is abandoned; a new attempt follows."""
        for name, proc in sorted(self._flows.items()):
            ctx = proc.ctx
            if ctx is None or self._status.get(ctx.target) not in FAILED_STATES:
                continue
            proc.gen.close()
            del self._flows[name]
            self._end_flow(ctx, f"target {ctx.target} failed during recovery", undone=False,
                           cascade=True)

    def _pump(self) -> None:
        """Resume every generator whose future completed or whose sleep ended."""
        progressed = True
        while progressed:
            progressed = False
            for key, proc in sorted(self._flows.items()):
                if self._advance(proc):
                    progressed = True
                if proc.finished:
                    self._flows.pop(key, None)
            for key, proc in sorted(self._procs.items()):
                if self._advance(proc):
                    progressed = True
                if proc.finished:
                    self._procs.pop(key, None)

    def _advance(self, proc: Proc) -> bool:
        now = self.now()
        moved = False
        while not proc.finished:
            waiting = proc.waiting
            send: Any = None
            throw: BaseException | None = None
            if isinstance(waiting, Sleep):
                if now < proc.since + waiting.seconds:
                    return moved
            elif waiting is not None:
                if not waiting.done():
                    if now - proc.since < self.config.op_timeout_s:
                        return moved
                    throw = TimeoutError(f"no answer within {self.config.op_timeout_s:.0f} s")
                elif waiting.exception() is not None:
                    throw = waiting.exception()
                else:
                    send = waiting.result()
            try:
                proc.waiting = proc.gen.throw(throw) if throw is not None else proc.gen.send(send)
                proc.since = now
            except StopIteration:
                proc.finished = True
            moved = True
        return moved

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
                self._where[inst.display_name] = (inst.host, inst.vm_state)

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
        for name, (host, _) in self._where.items():
            group = self._info[name].group
            if group:
                groups.setdefault(host, set()).add(group)
        for proc in self._flows.values():
            if proc.ctx is not None and self._info[proc.ctx.instance].group:
                groups.setdefault(proc.ctx.target, set()).add(
                    self._info[proc.ctx.instance].group or "")
        out = []
        with self.sessions() as s:
            services = {sv.host: sv for sv in s.scalars(select(Service))}
            for node in s.scalars(select(ComputeNode).order_by(ComputeNode.host)):
                sv = services.get(node.host)
                health = self._health.get(node.host)
                if (node.host in skip or self._status.get(node.host) is not HostStatus.UP
                        or sv is None or sv.forced_down
                        or (sv.disabled and node.host not in spares)
                        or health is None or health.power is not PowerState.ON
                        or self.now() - (health.last_heartbeat or self._since)
                        > self.config.grace_s):
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
                    self._where[name] = (self._where[name][0], VmState.STOPPED.value)
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
        self._where[name] = (host, vm)

    def _emit(self, kind: str, message: str, host: str | None = None,
              instance: str | None = None, **fields: Any) -> None:
        event = RecoveryEvent(self.now(), kind, message, host, instance, fields)
        self.events.append(event)
        log.info("[%.1f] %s", event.time, message)
        if self._listener is not None:
            self._listener(event)


def _usage(s: Any, host: str, vcpus: int, ram_mb: int) -> None:
    s.execute(update(ComputeNode).where(ComputeNode.host == host)
              .values(vcpus_used=ComputeNode.vcpus_used + vcpus,
                      memory_mb_used=ComputeNode.memory_mb_used + ram_mb))
