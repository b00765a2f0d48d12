"""Fencing, as the monitor's handlers of a failed host: a host that is down is powered
off (or, with --assume-fenced, vouched off by the operator), the power-off is confirmed
or the host is unfenceable and fenced again later, and a fenced host's compute service
is forced down, which lets its instances be evacuated (Nova's order).

A storage host that holds the last replica (or the only current copy) is not fenced but
held: powering it off would lose the data. A held or unfenceable host that heartbeats
again is handed to returning-host handling.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from stackdrill.api import HostHealth
from stackdrill.recovery import fence
from stackdrill.recovery.detect import alive
from stackdrill.recovery.inventory import Service
from stackdrill.recovery.lastcopy import POWERED, last_replica, sole_current_copy
from stackdrill.recovery.returning import Returning
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep

log = logging.getLogger(__name__)


class Fencer:
    def __init__(self, shared: Shared, returning: Returning) -> None:
        self.topology, self.drivers, self.config = shared.topology, shared.drivers, shared.config
        self.journal, self.state, self.emit = shared.journal, shared.state, shared.emit
        self.returning = returning

    def on_down(self, host: str, health: HostHealth, now: float) -> None:
        if host in self.state.storage_hosts and self._holds_data(host, health):
            self._hold(host, health, now)
            return
        self.state.held.discard(host)
        if self.config.assume_fenced:
            self._assume_fenced(host, now)
        else:
            self._fence(host, now)

    def on_fencing(self, host: str, health: HostHealth, now: float) -> None:
        power = self.drivers.power
        attempt = self.state.fences.get(host)
        if attempt is None:  # resumed after a restart: ask again
            attempt = self.state.fences[host] = fence.begin(power, host, now)
        outcome = fence.conclude(power, attempt, now, self.config.fence_timeout_s)
        if outcome is None:
            return
        del self.state.fences[host]
        if outcome.confirmed:
            self.journal.append(JournalStep.FENCE_CONFIRMED, host=host, began=attempt.started)
            self.emit("fence-confirmed", f"{host} fenced: {outcome.reason}", host)
        else:
            self.journal.append(JournalStep.FENCE_FAILED, host=host, reason=outcome.reason)
            log.error("%s", outcome.reason)
            self.emit("fence-failed", outcome.reason, host)

    def on_unfenceable(self, host: str, health: HostHealth, now: float) -> None:
        failed = self.journal.last_for_host(host, JournalStep.FENCE_FAILED)
        if alive(health, now, failed.time if failed else 0.0, self.config.grace_s):
            self.returning.returned(host, "heartbeats again (it was never fenced)")
        elif self.config.assume_fenced:  # the operator cut its power after fencing failed
            self._assume_fenced(host, now)
        elif failed is None or now - failed.time >= self.config.fence_timeout_s:
            self._fence(host, now)

    def on_fenced(self, host: str, health: HostHealth, now: float) -> None:
        with self.journal.step(JournalStep.SERVICE_FORCED_DOWN, host=host) as s:
            s.execute(update(Service).where(Service.host == host)
                      .values(forced_down=True, last_seen_up=health.last_heartbeat))
        what = "volume" if host in self.state.storage_hosts else "compute"
        self.emit("service-forced-down", f"{host}: {what} service forced down", host)

    def _holds_data(self, host: str, health: HostHealth) -> bool:
        status = self.state.status
        return last_replica(self.topology, status, host) or (
            health.power in POWERED
            and sole_current_copy(self.topology, self.drivers.storage, status, host) is not None)

    def _hold(self, host: str, health: HostHealth, now: float) -> None:
        down = self.journal.last_for_host(host, JournalStep.HOST_DOWN)
        if alive(health, now, down.time if down else 0.0, self.config.grace_s):
            self.state.held.discard(host)
            self.returning.returned(
                host, "heartbeats again (not fenced: it holds the last replica)")
        elif host not in self.state.held:
            self.state.held.add(host)
            self.emit("fence-held", f"{host}: not fenced, it holds the last replica of its "
                      "volumes; waiting for it to come back", host)

    def _assume_fenced(self, host: str, now: float) -> None:
        log.critical("ASSUMING %s IS FENCED (--assume-fenced): its instances will "
                     "start elsewhere without a confirmed power-off", host)
        self.journal.append(JournalStep.FENCE_ASSUMED, host=host, began=now)
        self.emit("fence-assumed", f"{host}: fencing ASSUMED by the operator", host)

    def _fence(self, host: str, now: float) -> None:
        self.journal.append(JournalStep.FENCE_REQUESTED, host=host, began=now)
        self.state.fences[host] = fence.begin(self.drivers.power, host, now)
        self.emit("fence-requested", f"{host}: power-off requested", host)
