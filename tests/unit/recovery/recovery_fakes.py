"""A small fake lab for the recovery engine's own tests: an event-heap clock and drivers
whose operations take fixed lab time and can be made to fail.

It implements only `stackdrill.api`, like every real backend, and counts
what matters to an operator: how often each instance was started, and whether
two copies ever ran at once.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from stackdrill.api import (
    AttachMode,
    Clock,
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
from stackdrill.topology import Topology
from stackdrill.topology.model import Role

HEARTBEAT_S = 10.0
SPIN_WAITS = 10_000  # waits at one lab moment: a caller spinning on a done future


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._waited_at, self._waits_now = -1.0, 0

    def at(self, time: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(time, self.t), next(self._seq), action))

    def _step(self) -> None:
        time, _, action = heapq.heappop(self._heap)
        self.t = time
        action()

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.run_until(self.t + max(0.0, seconds))

    def run_until(self, time: float) -> None:
        while self._heap and self._heap[0][0] <= time:
            self._step()
        self.t = max(self.t, time)

    def wait(self, ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        """Until one of `ops` is done or the timeout passed. A caller that keeps waiting
        on a done future never lets lab time pass: that fails here, not as a hung test."""
        self._waits_now = self._waits_now + 1 if self._waited_at == self.t else 1
        self._waited_at = self.t
        if self._waits_now > SPIN_WAITS:
            raise AssertionError(f"{SPIN_WAITS} waits at lab time {self.t} without it passing:"
                                 " the caller waits on a done future it never takes")
        ops = list(ops)
        deadline = self.t + (timeout if timeout is not None else 1e9)
        while True:
            done = {op for op in ops if op.done()}
            if done or not ops:
                return done
            if not self._heap or self._heap[0][0] > deadline:
                self.t = max(self.t, deadline)
                return set()
            self._step()


@dataclass
class FakeHost:
    name: str
    power: PowerState = PowerState.ON
    mgmt: bool = True  # management link up
    repl: bool = True  # replication/storage links up
    fenceable: bool = True  # the power controller answers
    last_heartbeat: float | None = 0.0
    guests: dict[str, bool] = field(default_factory=dict)  # name -> running


class FakeLab:
    """Hosts, guests and volumes of a topology, driven by a FakeClock."""

    def __init__(self, topology: Topology, boot_s: float = 45.0) -> None:
        self.topology = topology
        self.clock = FakeClock()
        self.boot_s = boot_s
        self.hosts = {h.name: FakeHost(h.name) for h in topology.hosts}
        self.starts: dict[str, int] = {}
        self.violations: list[str] = []  # two running copies, starts on unfenced hosts, ...
        self.boot_hook: Callable[[str, list[str]], list[str]] | None = None
        self.fail_prepare: set[str] = set()  # volumes whose prepare fails
        self.buggy_start: set[str] = set()  # instances whose start hits a bug in the driver
        for inst in topology.instances:
            self.hosts[inst.host].guests[inst.name] = True
        for host in (*topology.hosts_with(Role.COMPUTE), *topology.hosts_with(Role.STORAGE)):
            self.clock.at(0.0, lambda h=host.name: self._beat(h))
        self.drivers = Drivers(FakePower(self), FakeCompute(self), FakeStorage(self),
                               FakeNetwork(self))

    def _beat(self, host: str) -> None:
        h = self.hosts[host]
        if h.power is PowerState.ON and h.mgmt:
            h.last_heartbeat = self.clock.t
        self.clock.at(self.clock.t + HEARTBEAT_S, lambda: self._beat(host))

    def op(self, delay: float, action: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_running_or_notify_cancel()

        def run() -> None:
            try:
                fut.set_result(action())
            except Exception as exc:  # the driver's failure, as the engine sees it
                fut.set_exception(exc)

        self.clock.at(self.clock.t + delay, run)
        return fut

    # -------------------------------------------------------- faults

    def crash(self, host: str) -> None:
        h = self.hosts[host]
        h.power, h.repl = PowerState.OFF, False
        for name in h.guests:
            h.guests[name] = False

    def power_on(self, host: str) -> None:
        h = self.hosts[host]
        h.power = PowerState.BOOTING

        def booted() -> None:
            h.power, h.repl = PowerState.ON, True
            names = sorted(h.guests)
            evacuated = set(self.boot_hook(host, names)) if self.boot_hook else set()
            for name in names:
                if name in evacuated:
                    del h.guests[name]
                else:
                    self._run(name, host)

        self.clock.at(self.clock.t + self.boot_s, booted)

    def _run(self, name: str, host: str) -> None:
        others = [h for h, fh in self.hosts.items()
                  if h != host and fh.guests.get(name) and fh.power is PowerState.ON]
        if others:
            self.violations.append(f"{self.clock.t:.1f} {name} on {host} while running on {others}")
        self.hosts[host].guests[name] = True

    def running(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i.name: [] for i in self.topology.instances}
        for h, fh in sorted(self.hosts.items()):
            for name, up in sorted(fh.guests.items()):
                if up and fh.power is PowerState.ON:
                    out[name].append(h)
        return out


class FakePower(PowerDriver):
    def __init__(self, lab: FakeLab) -> None:
        self.lab = lab

    def state(self, host: str) -> PowerState:
        h = self.lab.hosts[host]
        return h.power if h.fenceable else PowerState.UNKNOWN

    def power_off(self, host: str) -> Future[None]:
        h = self.lab.hosts[host]

        def off() -> None:
            if not h.fenceable:
                raise DriverError(f"IPMI of {host}: no route to host")
            self.lab.crash(host)

        return self.lab.op(3.0, off)

    def power_on(self, host: str) -> Future[None]:
        self.lab.power_on(host)
        return self.lab.op(self.lab.boot_s + 0.1, lambda: None)


class FakeCompute(ComputeDriver):
    def __init__(self, lab: FakeLab) -> None:
        self.lab = lab

    def set_boot_hook(self, hook: Callable[[str, list[str]], list[str]] | None) -> None:
        self.lab.boot_hook = hook

    def health(self, host: str) -> HostHealth:
        return HostHealth(host, self.lab.hosts[host].last_heartbeat,
                          FakePower(self.lab).state(host))

    def witnesses(self, host: str) -> tuple[Witness, ...]:
        h = self.lab.hosts[host]
        return (Witness("peer", h.repl and h.power is PowerState.ON, self.lab.clock.now()),)

    def _up(self, host: str) -> None:
        h = self.lab.hosts[host]
        if h.power is not PowerState.ON or not h.mgmt:
            raise DriverError(f"cannot reach the compute service on {host}")

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        def ask() -> list[GuestInfo]:
            self._up(host)
            return [GuestInfo(n, r) for n, r in sorted(self.lab.hosts[host].guests.items())]

        return self.lab.op(0.5, ask)

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        def go() -> None:
            if instance in self.lab.buggy_start:
                raise KeyError(f"driver bug: no such domain table entry {instance}")
            self._up(host)
            self.lab.starts[instance] = self.lab.starts.get(instance, 0) + 1
            self.lab._run(instance, host)

        return self.lab.op(10.0, go)

    def destroy(self, instance: str, host: str) -> Future[None]:
        def go() -> None:
            self._up(host)
            self.lab.hosts[host].guests.pop(instance, None)

        return self.lab.op(1.0, go)

    def verify(self, instance: str, host: str) -> Future[bool]:
        return self.lab.op(1.0, lambda: bool(self.lab.hosts[host].guests.get(instance)))


class FakeStorage(StorageDriver):
    def __init__(self, lab: FakeLab) -> None:
        self.lab = lab

    def replicas(self, volume: str) -> list[Replica]:
        return [Replica(h, "Secondary", "UpToDate", self.lab.hosts[h].power is PowerState.ON)
                for h in self.lab.topology.replica_hosts(volume)]

    def prepare(self, volume: str, host: str, failed: Iterable[str] = ()) -> Future[VolumePath]:
        dead = set(failed)

        def go() -> VolumePath:
            if volume in self.lab.fail_prepare:
                raise DriverError(f"{volume}: refusing to be Primary")
            good = [r.host for r in self.replicas(volume) if r.reachable and r.host not in dead]
            if not good:
                raise DriverError(f"no reachable replica of {volume}")
            if host in good:
                return VolumePath(volume, host, AttachMode.LOCAL, host, f"/dev/vg/{volume}")
            return VolumePath(volume, host, AttachMode.REMOTE, good[0],
                              f"iscsi:{good[0]}:/dev/vg/{volume}")

        return self.lab.op(2.0, go)

    def release(self, volume: str, host: str) -> Future[None]:
        def go() -> None:
            if self.lab.hosts[host].power is not PowerState.ON:
                raise DriverError(f"{host} is not running")

        return self.lab.op(0.5, go)


class FakeNetwork(NetworkDriver):
    def __init__(self, lab: FakeLab) -> None:
        self.lab = lab

    def plug(self, instance: str, host: str) -> Future[None]:
        return self.lab.op(1.0, lambda: None)

    def unplug(self, instance: str, host: str) -> Future[None]:
        return self.lab.op(1.0, lambda: None)

    def reachable(self, instance: str) -> Future[bool]:
        return self.lab.op(0.5, lambda: bool(
            self.lab.running().get(instance, [])))


# The `inventory_url` fixture (tests/unit/conftest.py): a name -> the URL of that test's
# own inventory, on SQLite and on PostgreSQL (the same name gives the same inventory).
InventoryURL = Callable[[str], str]
