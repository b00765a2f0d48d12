"""The drivers as the engine sees them: every call that changes the lab commits the
journal's pending steps first.

The journal commits a run's steps in groups (`Journal.deferred`); this is what keeps it
a write-ahead log. A fence, a start, a volume promoted, a port plugged happen only once
every decision before them is durable, so an engine killed after the call finds them in
the journal and neither repeats nor forgets them (an instance started twice, a volume
promoted for a placement the restarted engine no longer knows). Calls that only look
(health, power state, guests, verification, replicas, reachability) commit nothing: a
crash after them loses no effect in the lab.

A wrapper per driver interface rather than a commit at each call site: a new call site
cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future

from stackdrill.api import (
    BootHook,
    ComputeDriver,
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

Flush = Callable[[], None]


def write_ahead(drivers: Drivers, flush: Flush) -> Drivers:
    """`drivers` with `flush` called before each call that changes the lab."""
    return Drivers(_Power(drivers.power, flush), _Compute(drivers.compute, flush),
                   _Storage(drivers.storage, flush), _Network(drivers.network, flush))


class _Power(PowerDriver):
    def __init__(self, inner: PowerDriver, flush: Flush) -> None:
        self._inner, self._flush = inner, flush

    def state(self, host: str) -> PowerState:
        return self._inner.state(host)

    def power_off(self, host: str) -> Future[None]:
        self._flush()
        return self._inner.power_off(host)

    def power_on(self, host: str) -> Future[None]:
        self._flush()
        return self._inner.power_on(host)


class _Compute(ComputeDriver):
    def __init__(self, inner: ComputeDriver, flush: Flush) -> None:
        self._inner, self._flush = inner, flush

    def health(self, host: str) -> HostHealth:
        return self._inner.health(host)

    def witnesses(self, host: str) -> tuple[Witness, ...]:
        return self._inner.witnesses(host)

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        return self._inner.guests(host)

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        self._flush()
        return self._inner.start(instance, host, volumes)

    def destroy(self, instance: str, host: str) -> Future[None]:
        self._flush()
        return self._inner.destroy(instance, host)

    def verify(self, instance: str, host: str) -> Future[bool]:
        return self._inner.verify(instance, host)

    def set_boot_hook(self, hook: BootHook | None) -> None:
        self._inner.set_boot_hook(hook)


class _Storage(StorageDriver):
    def __init__(self, inner: StorageDriver, flush: Flush) -> None:
        self._inner, self._flush = inner, flush

    def replicas(self, volume: str) -> list[Replica]:
        return self._inner.replicas(volume)

    def prepare(self, volume: str, host: str, failed: Iterable[str] = ()) -> Future[VolumePath]:
        self._flush()
        return self._inner.prepare(volume, host, failed)

    def release(self, volume: str, host: str) -> Future[None]:
        self._flush()
        return self._inner.release(volume, host)


class _Network(NetworkDriver):
    def __init__(self, inner: NetworkDriver, flush: Flush) -> None:
        self._inner, self._flush = inner, flush

    def plug(self, instance: str, host: str) -> Future[None]:
        self._flush()
        return self._inner.plug(instance, host)

    def unplug(self, instance: str, host: str) -> Future[None]:
        self._flush()
        return self._inner.unplug(instance, host)

    def reachable(self, instance: str) -> Future[bool]:
        return self._inner.reachable(instance)
