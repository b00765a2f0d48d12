"""The monitor: each tick it looks at every compute and storage host's health and moves
the host through its states (up -> down -> fencing -> fenced -> evacuating, or unfenceable,
or returning; maintenance -> rebooting -> booted). Detection needs missed heartbeats over the
grace period and a corroborating signal (`detect.assess`); fencing must be confirmed.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from stackdrill.api import HostHealth, PowerState
from stackdrill.recovery import fence
from stackdrill.recovery.base import Proc
from stackdrill.recovery.detect import Verdict, assess
from stackdrill.recovery.hoststate import FAILED_STATES, HostStatus, last
from stackdrill.recovery.inventory import Service, VmState
from stackdrill.recovery.journal import Step
from stackdrill.recovery.plan import usable_replicas
from stackdrill.recovery.result import JournalRecord
from stackdrill.recovery.returning import ReturningHosts

log = logging.getLogger(__name__)

# Power states under which a host's disks still hold what it wrote, reachable again once it
# thaws: fencing it on link evidence (or for a hang) would cut off the only current copy.
_ALIVE = frozenset({PowerState.ON, PowerState.HUNG})


class HostMonitor(ReturningHosts):
    """One look at every compute host per tick; moves each through its states."""

    def _observe_hosts(self, now: float) -> None:
        cfg = self.config
        for host in [*self.hosts, *self.storage_hosts]:
            health = self._health[host] = self.drivers.compute.health(host)
            st = self._status[host]
            if st is HostStatus.UP and health.last_heartbeat is None and \
                    host in self.storage_hosts:
                continue  # the backend has no volume-service heartbeat: not watched
            if st is HostStatus.UP and host not in self._suspects:
                beat = health.last_heartbeat
                if now - (beat if beat is not None else self._since) <= cfg.grace_s:
                    continue  # heartbeating: what assess() would say, without the cost
            records = self.journal.for_host(host)
            if st is HostStatus.UP:
                verdict = assess(health, now, cfg.grace_s, self._since, cfg.fence_on_isolation,
                                 cfg.heartbeat_interval_s)
                sole = self._sole_current_copy(host) \
                    if (verdict.verdict is Verdict.DOWN and health.power in _ALIVE
                        and host not in self.storage_hosts) else None  # those: _hold()
                if sole is not None:
                    if host not in self._suspects:
                        self._suspects.add(host)
                        self._emit("host-suspect", f"{host}: {verdict.reason}; not declared "
                                   f"down: it is powered ({health.power.value}) and holds "
                                   f"the only current copy of volume {sole}", host)
                elif verdict.verdict is Verdict.DOWN:
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
            elif st is HostStatus.DOWN and host in self.storage_hosts and (
                    self._last_replica(host) or (health.power in _ALIVE and
                                                 self._sole_current_copy(host) is not None)):
                self._hold(host, health, now, records)
            elif st is HostStatus.DOWN:
                self._held.discard(host)
                if cfg.assume_fenced:
                    self._assume_fenced(host, now)
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
                elif cfg.assume_fenced:  # the operator cut its power after fencing failed
                    self._assume_fenced(host, now)
                elif failed is None or now - failed.time >= cfg.fence_timeout_s:
                    self._fence(host, now)
            elif st is HostStatus.FENCED:
                with self.journal.step(Step.SERVICE_FORCED_DOWN, host=host) as s:
                    s.execute(update(Service).where(Service.host == host)
                              .values(forced_down=True, last_seen_up=health.last_heartbeat))
                what = "volume" if host in self.storage_hosts else "compute"
                self._emit("service-forced-down", f"{host}: {what} service forced down", host)
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

    def _last_replica(self, host: str) -> bool:
        """Every other holder of a replica `host` holds has failed: fencing it would stop
        the volume for good, and nothing could take over. (Pacemaker's no-quorum-policy
        and DRBD's fencing keep a lone survivor's data too.)"""
        holders = [self.topology.replica_hosts(vol.name) for vol in self.topology.volumes]
        peers = {h for hs in holders if host in hs for h in hs if h != host}
        return bool(peers) and all(self._status.get(p, HostStatus.UP) in FAILED_STATES
                                   for p in peers)

    def _sole_current_copy(self, host: str) -> str | None:
        """A volume of which `host` holds the only current copy: every other replica is on
        a failed host, unreachable, not UpToDate, or left behind by a cut. While `host` is
        powered (on, or hung: its disk keeps the data for when it thaws) fencing it would
        throw that data away, so it is not declared down (compute hosts stay suspect,
        storage hosts are held); a power controller reporting it off still condemns it."""
        for vol in self.topology.volumes:
            holders = self.topology.replica_hosts(vol.name)
            if host not in holders or len(holders) < 2:
                continue
            others = [r for r in self.drivers.storage.replicas(vol.name) if r.host != host]
            if not usable_replicas(others, [h for h, st in self._status.items()
                                            if st in FAILED_STATES]):
                return vol.name
        return None

    def _hold(self, host: str, health: HostHealth, now: float,
              records: list[JournalRecord]) -> None:
        down = last(records, Step.HOST_DOWN)
        if self._alive(health, now, down.time if down else 0.0):
            self._held.discard(host)
            self._returned(host, "heartbeats again (not fenced: it holds the last replica)")
        elif host not in self._held:
            self._held.add(host)
            self._emit("fence-held", f"{host}: not fenced, it holds the last replica of its "
                       "volumes; waiting for it to come back", host)

    def _alive(self, health: HostHealth, now: float, after: float) -> bool:
        last_hb = health.last_heartbeat
        return (health.power is PowerState.ON and last_hb is not None and last_hb > after
                and now - last_hb <= self.config.grace_s)

    def _assume_fenced(self, host: str, now: float) -> None:
        log.critical("ASSUMING %s IS FENCED (--assume-fenced): its instances will "
                     "start elsewhere without a confirmed power-off", host)
        self.journal.append(Step.FENCE_ASSUMED, host=host, began=now)
        self._emit("fence-assumed", f"{host}: fencing ASSUMED by the operator", host)

    def _fence(self, host: str, now: float) -> None:
        self.journal.append(Step.FENCE_REQUESTED, host=host, began=now)
        self._fences[host] = fence.begin(self.drivers.power, host, now)
        self._emit("fence-requested", f"{host}: power-off requested", host)
