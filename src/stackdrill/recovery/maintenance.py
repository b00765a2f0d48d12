"""Planned maintenance: after a host is drained, the engine reboots it through the power
controller (or waits while the operator does); its guests are resumed after the boot.
"""

from __future__ import annotations

import logging

from stackdrill.recovery.journal import EngineKilled
from stackdrill.recovery.scheduling import Scheduler
from stackdrill.recovery.tasks import TaskGen

log = logging.getLogger(__name__)


class Maintenance(Scheduler):
    """The drained host's reboot through its power controller."""

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
