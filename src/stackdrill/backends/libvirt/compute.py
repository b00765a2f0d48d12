"""The recovery engine's compute driver on real guests, and the heartbeats it reports.

A compute host's "hypervisor" is the guest; its instances are workload processes in their
own network namespaces (workload.py). Heartbeats follow the simulator's meaning: the compute
service on a host reaches the controller over the management network. A monitor thread asks
each compute guest every HEARTBEAT_S to ping the controller's management address (or, with no
controller in the topology, just to answer its agent), so a management-network partition stops
heartbeats exactly as it would in production. `health` only reads the monitor's cache.

Guest events are stamped on the safe side of the operation for the fencing checks: a start
when it is requested (the new copy may run from then on, however long a starved agent takes
to answer), a stop when it is confirmed, and every workload a host ran is reported stopped
with it when its power is cut (`host_off`), as the simulator and netns do: a fence stops
being proof once the host is powered again, and only these stops then say the old copy is
gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from stackdrill.api import (
    ComputeDriver,
    DriverError,
    GuestInfo,
    GuestStarted,
    GuestStopped,
    HostHealth,
    PowerState,
    Witness,
)
from stackdrill.backends.libvirt import drbd, workload
from stackdrill.backends.libvirt.agent import GuestCommandError
from stackdrill.backends.libvirt.readiness import (
    EngineTiming,
    LatencyWatch,
    MachineTooSlowError,
    agent_budget,
)
from stackdrill.errors import InfrastructureError, StackdrillError
from stackdrill.topology import NetworkPurpose, Role
from stackdrill.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.drivers import LibvirtPowerDriver
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)
HEARTBEAT_S = 2.0
BEAT_TIMEOUT_S = 5.0  # one heartbeat's agent call
# the heartbeat timing the engine assumes (RecoveryConfig.heartbeat_interval_s, grace_s):
# a monitor cycle slower than the interval makes healthy hosts look silent
ENGINE_TIMING = EngineTiming(interval_s=10.0, grace_s=30.0)
ENGINE_HEARTBEAT_INTERVAL_S = ENGINE_TIMING.interval_s
VERIFY_TIMEOUT_S = 60.0


class ComputeError(DriverError):
    """A compute step failed in the guest."""


class Heartbeats:
    """Background monitor: last heartbeat per compute host and per storage host that is
    not one (its volume service, cinder-volume: a lost storage Primary stops every guest
    using its volumes, so the engine watches it, as on the simulator), replication links
    per host; and how long each beat's agent round trip took (`watch`, see
    readiness.LatencyWatch)."""

    def __init__(self, lab: LibvirtLab, timing: EngineTiming = ENGINE_TIMING) -> None:
        self.lab = lab
        self.timing = timing
        self.watch: LatencyWatch | None = None  # from start() until close()
        compute = lab.topology.hosts_with(Role.COMPUTE)
        storage = [h for h in lab.topology.hosts_with(Role.STORAGE) if h not in compute]
        self.last: dict[str, float | None] = {h.name: None for h in (*compute, *storage)}
        # host -> its DRBD peers as witnesses (does each still see it, when it last beat)
        self.witnesses: dict[str, tuple[Witness, ...]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"hb-{lab.name}", daemon=True)
        self._target = self._controller_address()

    def _controller_address(self) -> str | None:
        controllers = self.lab.topology.hosts_with(Role.CONTROLLER)
        for net in self.lab.topology.networks_for(NetworkPurpose.MANAGEMENT):
            for ctl in controllers:
                if ctl.name in net.addresses:
                    return net.addresses[ctl.name]
        return None

    def start(self) -> None:
        self.watch = LatencyWatch(self.budget(), self.timing)
        self._thread.start()

    def stop(self, wait_s: float = 0.0) -> None:
        """Stop after the current call; wait up to `wait_s` for the monitor to end."""
        self._stop.set()
        if wait_s > 0 and self._thread.is_alive():
            self._thread.join(wait_s)

    def close(self) -> LatencyWatch | None:
        """The drill is over: stop judging round trips (the final read may be slow) and
        return what was seen."""
        watch, self.watch = self.watch, None
        return watch

    def _beat(self, host: str) -> bool:
        cmd = f"ping -c 1 -W 1 {self._target} >/dev/null" if self._target else "true"
        answering = self.lab.should_answer(host)
        began = time.monotonic()
        try:
            ok = self.lab.run(host, cmd, timeout=BEAT_TIMEOUT_S).rc == 0
            failed = False
        except (GuestCommandError, StackdrillError):
            ok, failed = False, True
        # a ping that found no route is the drill's doing (a partition makes it wait for
        # its -W 1): only answered beats and calls that failed on a guest that should
        # answer (a timeout, a lost agent) say how fast the agent is
        if answering and (ok or failed) and self.lab.should_answer(host):
            self._record(host, began, time.monotonic())
        return ok

    def _record(self, host: str, began: float, ended: float) -> None:
        watch = self.watch
        breach = watch.record(host, began, ended) if watch is not None else None
        if breach is not None:
            self._too_slow(breach)

    def _too_slow(self, breach: MachineTooSlowError) -> None:
        """End the drill where it next waits on the clock, rather than let the machine
        decide its verdict; quiesce raises it too (see LibvirtLab.quiesce)."""
        self.lab.log("machine-too-slow", error=breach)
        self.lab.runtime.clock.alarm(breach)

    def calls_per_cycle(self) -> int:
        """Agent calls one monitor cycle makes: a beat per watched host, a DRBD status per
        replica."""
        return len(self.last) + sum(len(res.nodes) for res in self.lab.topology.drbd)

    def budget(self) -> float:
        """The slowest agent round trip this monitor keeps up with (readiness)."""
        return agent_budget(self.calls_per_cycle(), self.timing.interval_s, BEAT_TIMEOUT_S)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for host in list(self.last):
                if self._stop.is_set():
                    return
                if self._beat(host):
                    self.last[host] = self.lab.clock.now()
            try:
                self._refresh_links()
            except InfrastructureError as exc:  # read again next beat; the run sees it too
                log.warning("%s: witnesses not refreshed: %s", self.lab.name, exc)
            self._stop.wait(max(0.0, HEARTBEAT_S - (time.monotonic() - started)))

    def _refresh_links(self) -> None:
        """What each host's DRBD peers see of it (their connection state), and when each
        peer last reported; recovery's detection decides whose word counts."""
        views: dict[str, list[Witness]] = {}
        for res in self.lab.topology.drbd:
            for peer, status in drbd.status(self.lab, res).items():
                for host in res.nodes:
                    if host != peer:
                        views.setdefault(host, []).append(Witness(
                            peer, status.connection == "Connected", self.last.get(peer)))
        self.witnesses = {host: tuple(found) for host, found in views.items()}


class LibvirtCompute(ComputeDriver):
    def __init__(self, lab: LibvirtLab, power: LibvirtPowerDriver) -> None:
        self.lab = lab
        self.power = power
        self.heartbeats = Heartbeats(lab)
        self.incarnations: dict[str, int] = {}
        # host -> {instance: incarnation} started there and not yet seen to stop
        self.running: dict[str, dict[str, int]] = {h: {} for h in lab.nodes}
        # what each host's hypervisor has defined, as libvirt keeps a domain's definition
        # across a power cut: a returning host learns from it what it used to run
        self.defined: dict[str, dict[str, dict[str, str]]] = {h: {} for h in lab.nodes}
        self._lock = threading.Lock()
        self.boot_hook: Callable[[str, list[str]], list[str]] | None = None

    def health(self, host: str) -> HostHealth:
        return HostHealth(host, self.heartbeats.last.get(host), self.power.state(host))

    def witnesses(self, host: str) -> tuple[Witness, ...]:
        """The host's DRBD peers, as the heartbeat monitor last read them."""
        return self.heartbeats.witnesses.get(host, ())

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        def op() -> list[GuestInfo]:
            out = self._check(host, workload.list_command())
            return [GuestInfo(name, alive == "yes") for name, alive in
                    (line.split() for line in out.splitlines() if line.strip())]

        return self.lab.submit(op)

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        def op() -> None:
            if self.power.state(host) is not PowerState.ON:
                raise ComputeError(f"{host} is not running")
            self.start_now(instance, host, volumes)

        return self.lab.submit(op)

    def start_now(self, instance: str, host: str, volumes: dict[str, str]) -> None:
        """Start the instance's workloads in `host`'s guest. Traced as started before the
        first command is sent: from then on a copy may run there (a start that fails
        midway is undone by a destroy, which is traced when confirmed). An instance that
        already runs there is left as it is, as libvirt refuses to start an active domain
        and the simulator's hypervisor returns the running guest: on returning-host the
        host's own boot resumed web1 and the engine's resume flow then started a second
        writer beside it (two incarnations writing one volume)."""
        with self._lock:
            if instance in self.running[host]:
                self.lab.log("already-running", instance=instance, host=host)
                return
            incarnation = self.incarnations.get(instance, 0) + 1
            self.incarnations[instance] = incarnation
            self.running[host][instance] = incarnation
        self.lab.tracer.emit(GuestStarted(host, instance, incarnation))
        for volume, path in sorted(volumes.items()):
            self._check(host, workload.start_command(
                instance, incarnation, volume, path, self.lab.options.write_interval_s,
                writes=self.writes(instance)))
        with self._lock:
            self.defined[host][instance] = dict(volumes)

    def writes(self, instance: str) -> bool:
        """Whether the instance's workload writes (the drill's `workload.instances`); the
        others run idle wherever they start, as on the simulator (Hypervisors.writers)."""
        writers = self.lab.options.writers
        return writers is None or instance in writers

    def destroy(self, instance: str, host: str) -> Future[None]:
        def op() -> None:
            self._check(host, workload.stop_command(instance))
            with self._lock:
                self.defined[host].pop(instance, None)
                incarnation = self.running[host].pop(instance, None)
            self.lab.tracer.emit(GuestStopped(host, instance, incarnation, why="destroyed"))

        return self.lab.submit(op)

    def crash(self, instance: str) -> list[str]:
        """SIGKILL of the instance's workload processes in the guest it runs in now; the
        guest stays defined there, not running, and its host untouched. The hosts it ran
        on (none when it runs nowhere)."""
        with self._lock:
            hosts = sorted(h for h, started in self.running.items() if instance in started)
        killed = []
        for host in hosts:
            if self.power.state(host) is not PowerState.ON:
                continue
            self._check(host, workload.kill_command(instance))
            with self._lock:
                incarnation = self.running[host].pop(instance, None)
            self.lab.tracer.emit(GuestStopped(host, instance, incarnation, why="killed"))
            killed.append(host)
        return killed

    def host_off(self, host: str) -> None:
        """`host` lost power (a crash, a fence, a reset): every workload in its guest died
        with it. Called by the lab right after it traced the power change."""
        with self._lock:
            gone, self.running[host] = self.running[host], {}
        for instance, incarnation in sorted(gone.items()):
            self.lab.tracer.emit(GuestStopped(host, instance, incarnation, why="host-off"))

    def boot(self, host: str) -> None:
        """The compute service starting on a host that lost power: its guests died with
        it; it asks the control plane (the boot hook) which were evacuated meanwhile,
        forgets those, and resumes the others on the volumes they had."""
        with self._lock:
            local = dict(self.defined[host])
        evacuated = set(self.boot_hook(host, sorted(local))) if self.boot_hook else set()
        for instance, volumes in sorted(local.items()):
            if instance in evacuated:
                with self._lock:
                    self.defined[host].pop(instance, None)
                self.lab.tracer.note(f"hv/{host}", "destroy-evacuated", instance=instance)
                continue
            try:
                self.start_now(instance, host, self._reconnected(host, volumes))
                self.lab.overlay.plug(instance, host)
            except StackdrillError as exc:
                self.lab.log("resume-failed", instance=instance, host=host, error=exc)

    def _reconnected(self, host: str, volumes: dict[str, str]) -> dict[str, str]:
        """The instance's volumes on a host that just booted: a replica's LV is where it
        was; a volume reached over iSCSI needs a new login, whose disk may have another
        name (os-brick's connect_volume in Nova's init_host)."""
        return {volume: path if host in self.lab.topology.replica_hosts(volume)
                else self.lab.storage.prepare_now(volume, host).path
                for volume, path in volumes.items()}

    def verify(self, instance: str, host: str) -> Future[bool]:
        """The workload runs on `host` and has had at least one write acknowledged there."""
        check = (f"ls {workload.STATE}/{instance}/*.ok >/dev/null 2>&1 && "
                 f"for p in {workload.STATE}/{instance}/*.pid; do kill -0 $(cat $p) || "
                 "exit 1; done")

        def writes() -> bool:
            return self.lab.run(host, check, timeout=10).rc == 0

        def op() -> bool:
            try:
                return wait_until(writes, timeout=VERIFY_TIMEOUT_S, interval=1.0,
                                  what=f"a write of {instance} on {host}")
            except (GuestCommandError, WaitTimeout):
                return False

        return self.lab.submit(op)

    def _check(self, host: str, command: str) -> str:
        try:
            result = self.lab.run(host, command, timeout=60)
        except GuestCommandError as exc:
            raise ComputeError(f"cannot reach the compute service on {host}: {exc}") from exc
        if result.rc != 0:
            raise ComputeError(f"{host}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout
