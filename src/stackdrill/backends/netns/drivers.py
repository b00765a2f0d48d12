"""Power, compute, storage and network drivers on real namespaces, with a wall clock.

Every operation is a `concurrent.futures.Future` from the lab's small thread pool, so the
recovery engine drives this backend exactly as it drives the simulator; RTO here is
measured in wall-clock seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from stackdrill.backends.base import (
    AttachMode,
    Clock,
    ComputeDriver,
    GuestInfo,
    HostHealth,
    NetworkDriver,
    PowerDriver,
    PowerState,
    Replica,
    StorageDriver,
    VolumePath,
)
from stackdrill.backends.netns import nsops

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab

VERIFY_TIMEOUT_S = 5.0


class WallClock(Clock):
    """Seconds since the lab started, on CLOCK_MONOTONIC (shared with the workloads).

    Scheduled actions run on timer threads while the engine waits here; when one of
    them fails, `alarm` wakes the waiting thread and `sleep`/`wait` raise its error
    (once), just as the simulator raises a failing scheduled action from its run loop.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._wake: Future[None] = Future()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def rebase(self) -> float:
        """Make now the new time 0; returns by how much every earlier time moved."""
        shift = self.now()
        self.t0 += shift
        return shift

    def alarm(self, error: BaseException) -> None:
        """Called from another thread: make the waiting thread raise `error`."""
        with self._lock:
            if self._error is None:
                self._error = error
            wake = self._wake
        if not wake.done():
            wake.set_result(None)

    def _raise_alarm(self) -> None:
        with self._lock:
            error, self._error = self._error, None
            if error is not None:
                self._wake = Future()
        if error is not None:
            raise error

    def sleep(self, seconds: float) -> None:
        self._raise_alarm()
        futures.wait([self._wake], timeout=max(0.0, seconds))
        self._raise_alarm()

    def wait(self, ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        self._raise_alarm()
        pending = list(ops)
        done, _ = futures.wait([*pending, self._wake], timeout=timeout,
                               return_when=futures.FIRST_COMPLETED)
        self._raise_alarm()
        return {f for f in done if f is not self._wake}


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
                          replication_links_up=self.lab.replication_links_up(host),
                          power=self.lab.power[host])

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        def run() -> list[GuestInfo]:
            self.lab.require_on(host)
            return [GuestInfo(g.instance, g.alive()) for g in self.lab.instances.guests_on(host)]
        return self.lab.submit(run)

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        def run() -> None:
            self.lab.require_on(host)
            if self.lab.instances.plugged.get(instance) != host:
                self.lab.instances.plug(instance, host)
            self.lab.instances.start(instance, host, volumes)
            self.lab.log("compute", "start", instance=instance, host=host)
        return self.lab.submit(run)

    def set_boot_hook(self, hook: Callable[[str, list[str]], list[str]] | None) -> None:
        self.lab.instances.boot_hook = hook

    def destroy(self, instance: str, host: str) -> Future[None]:
        def run() -> None:
            self.lab.require_on(host)
            self.lab.instances.stop(instance, host, undefine=True)
            self.lab.instances.unplug(instance, host)
            self.lab.log("compute", "destroy", instance=instance, host=host)
        return self.lab.submit(run)

    def verify(self, instance: str, host: str) -> Future[bool]:
        def run() -> bool:
            guests = [g for g in self.lab.instances.guests_on(host) if g.instance == instance]
            if not guests:
                return False
            guest = guests[-1]
            if guest.writes:
                deadline = time.monotonic() + max(VERIFY_TIMEOUT_S, 3 * self.lab.interval)
                while guest.last_ok is None and guest.alive():
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.02)
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
                raise RuntimeError(f"{volume}: its only replica is on failed host {exp.host}")
            self.lab.require_on(exp.host)
            self.lab.require_on(host)
            if not self.lab.volumes.serving(volume):
                self.lab.volumes.start_host(exp.host)
            if not self.lab.volumes.reachable_from(volume, host):
                raise RuntimeError(f"{volume}: export {exp.uri} unreachable from {host}")
            mode = AttachMode.LOCAL if host == exp.host else AttachMode.REMOTE
            self.lab.attachments[volume] = host
            self.lab.log("storage", "prepare", volume=volume, host=host, mode=mode.value)
            return VolumePath(volume, host, mode, exp.host, exp.uri)
        return self.lab.submit(run)

    def release(self, volume: str, host: str) -> Future[None]:
        def run() -> None:
            if self.lab.attachments.get(volume) == host:
                del self.lab.attachments[volume]
            self.lab.log("storage", "release", volume=volume, host=host)
        return self.lab.submit(run)


class NetnsNetwork(NetworkDriver):
    def __init__(self, lab: NetnsLab) -> None:
        self.lab = lab

    def plug(self, instance: str, host: str) -> Future[None]:
        def run() -> None:
            self.lab.require_on(host)
            self.lab.instances.plug(instance, host)
            self.lab.log("network", "plug", instance=instance, host=host)
        return self.lab.submit(run)

    def unplug(self, instance: str, host: str) -> Future[None]:
        def run() -> None:
            self.lab.instances.unplug(instance, host)
            self.lab.log("network", "unplug", instance=instance, host=host)
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
