"""The recovery engine's drivers on libvirt: power is real; the rest are declared missing.

Power reads libvirt's own view of the domain (independent of the guest's network), which is
what a fencing decision needs: `destroy` is confirmed when libvirt reports the domain shut off.
Storage (storage.py) and compute (compute.py) are real too; the network driver (overlay
ports) is not implemented on this backend yet and fails with UnsupportedError.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING

import libvirt

from stackdrill.api import (
    Drivers,
    NetworkDriver,
    PowerDriver,
    PowerState,
)
from stackdrill.backends.libvirt import cluster
from stackdrill.backends.libvirt.agent import GuestCommandError
from stackdrill.topology.model import ClusterFencing
from stackdrill.waiting import wait_until

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)

STATES = {
    libvirt.VIR_DOMAIN_RUNNING: PowerState.ON,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.ON,
    libvirt.VIR_DOMAIN_PAUSED: PowerState.HUNG,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.HUNG,
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.ON,  # shutting down: still able to write
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.OFF,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.OFF,
}


class LibvirtPowerDriver(PowerDriver):
    def __init__(self, lab: LibvirtLab, confirm_timeout: float = 30.0) -> None:
        self.lab = lab
        self.confirm_timeout = confirm_timeout

    def state(self, host: str) -> PowerState:
        try:
            code = self.lab.domain(host).state()[0]
        except libvirt.libvirtError:
            return PowerState.UNKNOWN
        return STATES.get(code, PowerState.UNKNOWN)

    def power_off(self, host: str) -> Future[None]:
        def off() -> None:
            dom = self.lab.domain(host)
            if dom.isActive():
                dom.destroy()
                self.lab.power_event(host, PowerState.OFF, "fence")
            wait_until(lambda: self.state(host) is PowerState.OFF,
                       timeout=self.confirm_timeout, interval=0.05,
                       what=f"{host} powered off after destroy")
            self._ack_manual_fences(host)

        return self.lab.submit(off)

    def _ack_manual_fences(self, host: str) -> None:
        """With `fencing: manual` the DLM of the cluster's survivors waits until an
        operator swears the lost node is off (`dlm_tool fence_ack`, fence_ack_manual); the
        power driver has just confirmed exactly that, so it acknowledges on a running
        member, as the simulator's power driver does. Without it every lockspace stays
        blocked: `vgchange --lock-start` on the survivor never returns."""
        for spec in self.lab.topology.clusters:
            if host not in spec.nodes or spec.fencing is not ClusterFencing.MANUAL:
                continue
            survivors = [h for h in spec.nodes if h != host and self.state(h) is PowerState.ON]
            if not survivors:
                continue
            line = cluster.fence_ack_command(spec, host)
            try:
                done = self.lab.run(survivors[0], line, timeout=60)
            except GuestCommandError as exc:
                log.warning("%s: %s on %s failed: %s", spec.name, line, survivors[0], exc)
                continue
            if done.rc != 0:
                log.warning("%s: %s on %s: exit %s %s", spec.name, line, survivors[0],
                            done.rc, (done.stderr or done.stdout).strip()[-200:])

    def power_on(self, host: str) -> Future[None]:
        def on() -> None:
            dom = self.lab.domain(host)
            if not dom.isActive():
                dom.create()
                self.lab.power_event(host, PowerState.BOOTING, "power-on")
                self.lab.after_boot(host)
            elif dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
                dom.resume()
                self.lab.power_event(host, PowerState.ON, "power-on")

        return self.lab.submit(on)


class LibvirtNetwork(NetworkDriver):
    """Instance ports on the overlay between guests (overlay.py), for the engine."""

    def __init__(self, lab: LibvirtLab) -> None:
        self.lab = lab

    def plug(self, instance: str, host: str) -> Future[None]:
        return self.lab.submit(self.lab.overlay.plug, instance, host)

    def unplug(self, instance: str, host: str) -> Future[None]:
        return self.lab.submit(self.lab.overlay.unplug, instance, host)

    def reachable(self, instance: str) -> Future[bool]:
        return self.lab.submit(self.lab.overlay.reachable, instance)


def make_drivers(lab: LibvirtLab) -> Drivers:
    power = LibvirtPowerDriver(lab)
    from stackdrill.backends.libvirt.compute import LibvirtCompute
    from stackdrill.backends.libvirt.storage import LibvirtStorageDriver

    return Drivers(power=power, compute=LibvirtCompute(lab, power),
                   storage=LibvirtStorageDriver(lab), network=LibvirtNetwork(lab))
