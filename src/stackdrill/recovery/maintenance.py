"""Planned maintenance, as the monitor's handlers of a host being drained: its compute
service is disabled; once no guest of it is active it reboots, through the power
controller (or the operator does it); once it heartbeats again it is booted, and when
every stopped guest of it has been resumed its compute service is enabled again.
"""

from __future__ import annotations

from sqlalchemy import update

from stackdrill.api import HostHealth, PowerState
from stackdrill.recovery import fence
from stackdrill.recovery.detect import alive
from stackdrill.recovery.hoststate import HostStatus
from stackdrill.recovery.inventory import Service, VmState
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.state import Proc
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import STEP_ERRORS, TaskGen


class Maintenance:
    def __init__(self, shared: Shared) -> None:
        self.drivers, self.config, self.clock = shared.drivers, shared.config, shared.clock
        self.journal, self.state, self.emit = shared.journal, shared.state, shared.emit

    def request(self, host: str) -> None:
        """Disable the host's compute service: the scheduler drains it from now on."""
        if self.state.status.get(host) is not HostStatus.UP:
            return
        with self.journal.step(JournalStep.SERVICE_DISABLED, host=host,
                               began=self.clock.now()) as s:
            s.execute(update(Service).where(Service.host == host)
                      .values(disabled=True, disabled_reason="maintenance"))
        self.emit("maintenance", f"{host}: compute service disabled for maintenance", host)

    def on_maintenance(self, host: str, health: HostHealth, now: float) -> None:
        if not self._drained(host):
            return
        age = now - (health.last_heartbeat or self.state.since)
        if self.config.maintenance_reboot:
            self.journal.append(JournalStep.HOST_REBOOTING, host=host, requested=True)
            self.emit("host-rebooting", f"{host} drained; rebooting it", host)
            self.state.procs[host] = Proc(self._reboot(host), since=now)
        elif health.power is not PowerState.ON or age > 2 * self.config.heartbeat_interval_s:
            self.journal.append(JournalStep.HOST_REBOOTING, host=host)
            self.emit("host-rebooting", f"{host} went down for maintenance", host)

    def on_rebooting(self, host: str, health: HostHealth, now: float) -> None:
        down = self.journal.last_for_host(host, JournalStep.HOST_REBOOTING)
        if (self.config.maintenance_reboot and host not in self.state.procs
                and health.power is PowerState.OFF):  # restarted mid-reboot
            self.state.procs[host] = Proc(self._power_on(host), since=now)
        if alive(health, now, down.time if down else 0.0, self.config.grace_s):
            self.journal.append(JournalStep.HOST_REBOOTED, host=host)
            self.emit("host-booted", f"{host} is back from maintenance", host)

    def on_booted(self, host: str, health: HostHealth, now: float) -> None:
        where = self.state.where
        waiting = any(where[n][1] == VmState.STOPPED.value
                      for n in self.state.hosted.get(host, ()))
        busy = any(p.ctx is not None and p.ctx.target == host
                   for p in self.state.flows.values())
        if waiting or busy:
            return
        with self.journal.step(JournalStep.SERVICE_ENABLED, host=host) as s:
            s.execute(update(Service).where(Service.host == host)
                      .values(disabled=False, disabled_reason=None))
        self.emit("maintenance-done", f"{host}: compute service enabled", host)

    def _drained(self, host: str) -> bool:
        """No flow moves a guest off it any more, and none of its guests is active."""
        where = self.state.where
        return not any(p.ctx is not None and p.ctx.source == host
                       for p in self.state.flows.values()) and not any(
            where[n][1] == VmState.ACTIVE.value for n in self.state.hosted.get(host, ()))

    def _reboot(self, host: str) -> TaskGen:
        """Planned maintenance reboot through the power controller."""
        try:
            yield self.drivers.power.power_off(host)
        except STEP_ERRORS as exc:
            self.emit("reboot-failed", f"{host}: power-off for maintenance failed: {exc}", host)
            return
        yield from self._power_on(host)

    def _power_on(self, host: str) -> TaskGen:
        return fence.power_on(self.drivers.power, self.emit, host, "maintenance")
