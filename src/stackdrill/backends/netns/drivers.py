"""Power, compute, storage and network drivers on real namespaces.

Every operation is a `concurrent.futures.Future` from the lab's small thread pool, so the
recovery engine drives this backend exactly as it drives the simulator; RTO here is
measured in wall-clock seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from stackdrill.api import (
    AttachMode,
    ComputeDriver,
    DriverError,
    Drivers,
    GuestInfo,
    HostHealth,
    NetworkDriver,
    PowerDriver,
    PowerState,
    Replica,
    StorageDriver,
    VolumePath,
    Witness,
)
from stackdrill.backends.netns import nsops
from stackdrill.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab

VERIFY_TIMEOUT_S = 5.0


class NetnsPower(PowerDriver):
    """A power controller outside the hosts' networks (like IPMI): it always answers."""

    def __init__(self, lab: NetnsLab) -> None:
        self.lab = lab

    def state(self, host: str) -> PowerState:
        return self.lab.power[host]

    def power_off(self, host: str) -> Future[None]:
        return self.lab.submit(self.lab.power_off_host, host, "fenced")

    def power_on(self, host: str) -> Future[None]:
        return self.lab.submit(self.lab.power_on_host, host, "power-on")


class NetnsCompute(ComputeDriver):
    def __init__(self, lab: NetnsLab) -> None:
        self.lab = lab

    def health(self, host: str) -> HostHealth:
        beats = self.lab.heartbeats
        return HostHealth(host=host, last_heartbeat=beats.last(host) if beats else None,
                          power=self.lab.power[host])

    def witnesses(self, host: str) -> tuple[Witness, ...]:
        """The switch: its ports' carrier on the host's storage links (it always reports,
        so its word counts once the host fell silent)."""
        return (Witness("switch", self.lab.replication_links_up(host), self.lab.clock.now()),)

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        def run() -> list[GuestInfo]:
            self.lab.require_on(host)
            return [GuestInfo(name, running)
                    for name, running in self.lab.instances.listed_on(host)]
        return self.lab.submit(run)

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        def run() -> None:
            self.lab.require_on(host)
            if self.lab.instances.plugged.get(instance) != host:
                self.lab.instances.plug(instance, host)
            self.lab.instances.start(instance, host, volumes)
            self.lab.tracer.note("compute", "start", instance=instance, host=host)
        return self.lab.submit(run)

    def set_boot_hook(self, hook: Callable[[str, list[str]], list[str]] | None) -> None:
        self.lab.instances.boot_hook = hook

    def destroy(self, instance: str, host: str) -> Future[None]:
        def run() -> None:
            self.lab.require_on(host)
            self.lab.instances.stop(instance, host, undefine=True)
            self.lab.instances.unplug(instance, host)
            self.lab.tracer.note("compute", "destroy", instance=instance, host=host)
        return self.lab.submit(run)

    def verify(self, instance: str, host: str) -> Future[bool]:
        def run() -> bool:
            guests = [g for g in self.lab.instances.guests_on(host) if g.instance == instance]
            if not guests:
                return False
            guest = guests[-1]
            if guest.writes:
                try:
                    wait_until(lambda: guest.last_ok is not None or not guest.alive(),
                               timeout=max(VERIFY_TIMEOUT_S, 3 * self.lab.interval),
                               interval=0.02, what=f"a write of {instance} on {host}")
                except WaitTimeout:
                    return False
            return guest.alive()
        return self.lab.submit(run)


class NetnsStorage(StorageDriver):
    """Volumes served by nbdkit on their storage host (one replica: the served file)."""

    def __init__(self, lab: NetnsLab) -> None:
        self.lab = lab

    def replicas(self, volume: str) -> list[Replica]:
        exp = self.lab.volumes.exports[volume]
        on = self.lab.power[exp.host] is PowerState.ON
        serving = on and self.lab.volumes.serving(volume)
        return [Replica(host=exp.host, role="(local)" if serving else "(none)",
                        disk_state="UpToDate" if on else "DUnknown", reachable=serving)]

    def prepare(self, volume: str, host: str, failed: Iterable[str] = ()) -> Future[VolumePath]:
        failed = set(failed)

        def run() -> VolumePath:
            exp = self.lab.volumes.exports[volume]
            if exp.host in failed:
                raise DriverError(f"{volume}: its only replica is on failed host {exp.host}")
            self.lab.require_on(exp.host)
            self.lab.require_on(host)
            if not self.lab.volumes.serving(volume):
                self.lab.volumes.start_host(exp.host)
            if not self.lab.volumes.reachable_from(volume, host):
                raise DriverError(f"{volume}: export {exp.uri} unreachable from {host}")
            mode = AttachMode.LOCAL if host == exp.host else AttachMode.REMOTE
            self.lab.attachments[volume] = host
            self.lab.tracer.note("storage", "prepare", volume=volume, host=host, mode=mode)
            return VolumePath(volume, host, mode, exp.host, exp.uri)
        return self.lab.submit(run)

    def release(self, volume: str, host: str) -> Future[None]:
        def run() -> None:
            if self.lab.attachments.get(volume) == host:
                del self.lab.attachments[volume]
            self.lab.tracer.note("storage", "release", volume=volume, host=host)
        return self.lab.submit(run)


class NetnsNetwork(NetworkDriver):
    def __init__(self, lab: NetnsLab) -> None:
        self.lab = lab

    def plug(self, instance: str, host: str) -> Future[None]:
        def run() -> None:
            self.lab.require_on(host)
            self.lab.instances.plug(instance, host)
            self.lab.tracer.note("network", "plug", instance=instance, host=host)
        return self.lab.submit(run)

    def unplug(self, instance: str, host: str) -> Future[None]:
        def run() -> None:
            self.lab.instances.unplug(instance, host)
            self.lab.tracer.note("network", "unplug", instance=instance, host=host)
        return self.lab.submit(run)

    def reachable(self, instance: str) -> Future[bool]:
        """Ping the instance's overlay IP from the overlay bridges of up to three powered
        hosts, other hosts first: one stale host must not decide alone (as the simulator
        asks one peer per host). Nobody left to ping from counts as reachable."""
        def run() -> bool:
            spec = self.lab.topology.instance(instance)
            where = self.lab.instances.plugged.get(instance)
            if spec.overlay is None or spec.ip is None:
                return True  # no overlay port: nothing to reach on the network
            if where is None:
                return False
            members = self.lab.overlay.overlays[spec.overlay].members
            probes = sorted((h for h in members if self.lab.power[h] is PowerState.ON),
                            key=lambda h: (h == where, h))[:3]
            for host in probes:
                result = nsops.run(self.lab.names.host_ns(host),
                                   ["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1",
                                    spec.ip], timeout=10, check=False)
                if result.returncode == 0:
                    return True
            return not probes
        return self.lab.submit(run)


def make_drivers(lab: NetnsLab) -> Drivers:
    return Drivers(NetnsPower(lab), NetnsCompute(lab), NetnsStorage(lab), NetnsNetwork(lab))
