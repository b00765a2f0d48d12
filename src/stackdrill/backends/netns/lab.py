"""A topology brought to life in network namespaces on this machine.

Build order: namespaces -> underlay (switch bridges, veths) and overlay (VXLAN, bridges,
FDB from the controller), sent as one batch of netlink messages per namespace
(nlbatch.py) -> volume exports (nbdkit) -> heartbeats -> instance ports and
workloads. Any error or Ctrl-C during the build or later tears everything
down; `destroy()` is idempotent and also runs at interpreter exit, unless the lab was
kept on purpose (`keep()`, see kept.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from enum import Enum
from typing import Any, TypeVar

from stackdrill.api import (
    CommandFinished,
    CommandIssued,
    CommandResult,
    DriverError,
    Drivers,
    Lab,
    LabOptions,
    Observation,
    PowerChanged,
    PowerState,
    StoredRecord,
    WriteOp,
)
from stackdrill.api.commands import Command
from stackdrill.backends import lifetime
from stackdrill.backends.netns import cleanup, kept, nlbatch, nsops
from stackdrill.backends.netns.commands import run_command
from stackdrill.backends.netns.drivers import make_drivers
from stackdrill.backends.netns.faults import FaultEngine
from stackdrill.backends.netns.heartbeats import Heartbeats
from stackdrill.backends.netns.instances import Instances
from stackdrill.backends.netns.names import allocate, mark_kept, release
from stackdrill.backends.netns.nbd import NbdError
from stackdrill.backends.netns.overlay import Pyroute2Plane
from stackdrill.backends.netns.underlay import CONTROLLER, HostLink, Underlay, management_network
from stackdrill.backends.netns.volumes import Volumes
from stackdrill.backends.netns.workload import scan_file
from stackdrill.backends.realtime import RealTime, WallClock
from stackdrill.backends.realtime.runtime import LAB_ERRORS
from stackdrill.errors import UnsupportedError
from stackdrill.faults import Fault
from stackdrill.overlay.controller import OverlayController
from stackdrill.topology import Topology
from stackdrill.topology.model import Locking, NetworkPurpose, Role

log = logging.getLogger(__name__)
T = TypeVar("T")

DESTROY_WAIT_S = 60.0  # scheduled actions and driver operations in flight end by then


def unsupported(topology: Topology) -> list[str]:
    """What in `topology` this backend cannot realise (DRBD, cluster stacks, clustered LVM)."""
    out = []
    if topology.drbd:
        out.append("DRBD resources (this kernel has no DRBD module)")
    if topology.clusters:
        out.append("cluster stacks (corosync runs only in the VM backends)")
    if any(vg.locking in (Locking.CLUSTERED, Locking.LVMLOCKD) for vg in topology.volume_groups):
        out.append("clustered LVM (no device-mapper here)")
    return out


class LabState(Enum):
    UP = "up"
    KEPT = "kept"  # outlives this process on purpose; `destroy()` still removes it
    DOWN = "down"


class NetnsLab(Lab):
    backend = "netns"

    def __init__(self, topology: Topology, lab_name: str, *, seed: int = 0,
                 options: LabOptions | None = None, heartbeats: bool = True,
                 start_workloads: bool = True, tie_to_parent: bool = True) -> None:
        problems = unsupported(topology)
        if problems:
            raise UnsupportedError("the netns backend cannot realise " + "; ".join(problems))
        self.topology = topology
        self.name = lab_name
        self.seed = seed  # nothing random here: the kernel's timing is the only variation
        self.options = options or LabOptions()
        self.interval = self.options.write_interval_s
        self.names, _stale = allocate(lab_name, clean=cleanup.remove_lab_leftovers)
        self.state_dir = cleanup.state_dir(self.names)
        # created first: every event carries its time
        self.runtime = RealTime(self.names.lab_id, lab_errors=(*LAB_ERRORS, NbdError))
        self.tracer = self.runtime.tracer
        self._clock = self.runtime.clock
        self._lock = threading.RLock()
        self.state = LabState.UP
        self._socks: dict[str, Any] = {}
        self._results: dict[str, CommandResult] = {}
        self._tie = tie_to_parent
        self._down: dict[tuple[str, str], set[str]] = {}
        self.power: dict[str, PowerState] = {h.name: PowerState.ON for h in topology.hosts}
        self._power_changes: dict[str, int] = {}  # tells one boot from the next
        self.attachments: dict[str, str] = {}
        self.heartbeats: Heartbeats | None = None
        self.instances: Instances
        lifetime.register(self)
        try:
            self._build(heartbeats, start_workloads)
        except BaseException:
            self.destroy()
            raise
        self._drivers = make_drivers(self)
        self.faults = FaultEngine(self)
        self._start_clock()
        self.tracer.note("lab", "up", hosts=len(topology.hosts), id=self.names.lab_id,
                         bringup_s=round(self.bringup_s, 3))

    # ---------------------------------------------------------------- build

    def _controller(self) -> tuple[str | None, str | None]:
        """(controller host, namespace of an extra controller endpoint if none qualifies)."""
        mgmt = management_network(self.topology)
        if mgmt is None:
            return None, None
        members = self.topology.network(mgmt).addresses
        for host in self.topology.hosts_with(Role.CONTROLLER):
            if host.name in members:
                return host.name, None
        return None, self.names.controller_ns

    def _build(self, heartbeats: bool, start_workloads: bool) -> None:
        t0 = time.monotonic()
        ctl_host, ctl_ns = self._controller()
        self.underlay = Underlay(self.names, self.topology, ctl_ns)
        spaces = [self.names.switch_ns] + [self.names.host_ns(h.name) for h in self.topology.hosts]
        spaces += [ctl_ns] if ctl_ns else []
        nsops.create_namespaces(spaces)
        build = nlbatch.Build()  # the switch's batch first: its veths reach into the hosts
        for ns in spaces:
            build.batch(ns).set_up(nlbatch.LOOPBACK_INDEX, "lo")
        self.underlay.build(build)
        plane = Pyroute2Plane(self.names, self.topology, self.sock)
        self.overlay = OverlayController(self.topology, plane)
        with plane.batched(build):
            self.overlay.build()
        build.send()
        # the state directory only when something lives there: volumes (or keep())
        self.volumes = Volumes(self.names, self.topology, self.underlay, self.state_dir,
                               self._tie)
        self.volumes.create_files({v.name: v.size_gb << 30 for v in self.topology.volumes})
        for host in sorted({e.host for e in self.volumes.exports.values()}):
            self.volumes.start_host(host)
        mgmt = management_network(self.topology)
        if heartbeats and mgmt is not None:
            where = ctl_host or CONTROLLER
            lk = self.underlay.link(where, mgmt)
            self.heartbeats = Heartbeats(lk.ns, lk.address, self._clock.now)
            for host in self.topology.network(mgmt).addresses:
                self.heartbeats.start(host, self.names.host_ns(host))
        self.instances = Instances(self.names, self.topology, self.overlay, self.sock,
                                   self._clock.now, self._clock.t0, self._tie,
                                   self.interval, self.options.writers, self.drop_sock,
                                   tracer=self.tracer)
        for inst in self.topology.instances:
            self.instances.plug(inst.name, inst.host)
        if start_workloads:
            for inst in self.topology.instances:
                uris = {v: self.volumes.exports[v].uri for v in inst.volumes}
                self.instances.start(inst.name, inst.host, uris)
                for v in inst.volumes:
                    self.attachments[v] = inst.host
        self.bringup_s = time.monotonic() - t0

    def _start_clock(self) -> None:
        """Lab time 0 is when the lab is up, as on the simulator: a drill's schedule must
        not run early by however long the bring-up took (seconds on a loaded machine).
        What happened during the build is dated 0 (the trace's readers expect no negative
        times), keeping its order."""
        with self._lock:
            shift = self.runtime.start_clock()
        self.instances.rebase(shift)
        if self.heartbeats is not None:
            self.heartbeats.rebase(shift)

    def sock(self, ns: str) -> Any:
        """The lab's IPRoute inside namespace `ns` (opened once, used under the lab lock)."""
        with self._lock:
            if ns not in self._socks:
                self._socks[ns] = nsops.Netlink(ns)
            return self._socks[ns]

    def drop_sock(self, ns: str) -> None:
        """Close the socket of a namespace about to go (it would keep the old one alive)."""
        with self._lock:
            sock = self._socks.pop(ns, None)
        if sock is not None:
            sock.close()

    # ---------------------------------------------------------------- hosts and links

    def set_link(self, lk: HostLink, up: bool, reason: str) -> None:
        """Links go down for several reasons at once (power, link_down); up when none is left."""
        with self._lock:
            reasons = self._down.setdefault((lk.host, lk.network), set())
            if up:
                reasons.discard(reason)
            else:
                reasons.add(reason)
            self.underlay.set_up(self.sock(lk.ns), lk, not reasons)
        self.tracer.note("link", "up" if not reasons else "down", host=lk.host,
                         network=lk.network, reason=reason)

    def _set_power(self, host: str, state: PowerState, why: str) -> None:
        """Change and trace a host's power state (the line the fencing checks read)."""
        old = self.power[host]
        self.power[host] = state
        self._power_changes[host] = self._power_changes.get(host, 0) + 1
        self.tracer.emit(PowerChanged(host, state, old, why))

    def power_off_host(self, host: str, why: str = "power-cut") -> None:
        """Power cut: every process of the host dies, every link loses carrier."""
        with self._lock:
            if self.power[host] is PowerState.OFF:
                return
            self._set_power(host, PowerState.OFF, why)
            self.instances.kill_host(host)
            if self.heartbeats is not None:
                self.heartbeats.stop(host)
            self.volumes.stop_host(host)
            nsops.kill_pids(nsops.ns_pids(self.names.host_ns(host)))
            for lk in self.underlay.host_links(host):
                self.set_link(lk, False, reason="power")
            self.instances.set_ports(host, False)

    def power_on_host(self, host: str, why: str = "power-on") -> None:
        """Boot: links come back, services (exports, heartbeats) start; then the compute
        service's init_host resumes the guests that were not evacuated meanwhile."""
        with self._lock:
            if self.power[host] is not PowerState.OFF:
                return
            self._set_power(host, PowerState.BOOTING, why)
            boot = self._power_changes[host]
            for lk in self.underlay.host_links(host):
                self.set_link(lk, True, reason="power")
            self.instances.set_ports(host, True)
        # a namespace boots at once; the topology's boot_s stands for firmware, kernel and
        # services starting, as on the simulator (interrupted by a teardown)
        if self.runtime.schedule.stopped.wait(self.topology.host(host).boot_s):
            return  # torn down meanwhile
        with self._lock:
            if self._power_changes[host] != boot:
                return  # powered off (fenced) while it booted: this boot never ends
            self.volumes.start_host(host)
            mgmt = management_network(self.topology)
            if self.heartbeats is not None and mgmt is not None and \
                    (host, mgmt) in self.underlay.links:
                self.heartbeats.start(host, self.names.host_ns(host))
            self._set_power(host, PowerState.ON, "booted")
        self.instances.resume_on_boot(host)

    def require_on(self, host: str) -> None:
        if self.power[host] is not PowerState.ON:
            raise DriverError(f"host {host} is {self.power[host].value}")

    def replication_links_up(self, host: str) -> bool:
        """The switch still sees the host's storage/replication links (carrier at the port)."""
        purposes = {NetworkPurpose.STORAGE, NetworkPurpose.REPLICATION}
        links = [lk for lk in self.underlay.host_links(host)
                 if purposes & set(self.topology.network(lk.network).purposes)]
        links = links or self.underlay.host_links(host)
        sw = self.sock(self.names.switch_ns)
        with self._lock:
            return bool(links) and all(self.underlay.carrier(sw, lk.port) for lk in links)

    # ---------------------------------------------------------------- Lab API

    @property
    def clock(self) -> WallClock:
        return self._clock

    @property
    def drivers(self) -> Drivers:
        return self._drivers

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self.runtime.submit(fn, *args)

    def inject(self, fault: Fault) -> None:
        self.faults.inject(fault)

    def heal(self, fault: Fault) -> None:
        self.faults.heal(fault)

    def call_at(self, time_s: float, action: Callable[[], None], label: str) -> None:
        """Run `action` at lab time `time_s` on a timer thread (one per action, fires once).

        The engine meanwhile waits in `clock.wait`/`clock.sleep`; a failing action is not
        swallowed: the clock raises it there, so a fault that could not be injected fails
        the drill instead of letting it pass without the fault. `destroy` waits for actions
        in flight and none starts after it.
        """
        self.runtime.call_at(time_s, action, label)

    def execute(self, command: Command, label: str) -> None:
        """Overlay and throughput probes run for real inside the lab's namespaces; other
        tools do not exist here (see netns/commands.py)."""
        self.tracer.emit(CommandIssued(label))
        started = self._clock.now()
        result = run_command(self, command, self._clock.now)
        result = replace(result, started=started, finished=self._clock.now())
        with self._lock:
            self._results[label] = result
        self.tracer.emit(CommandFinished(label, result.ok))

    def command_results(self) -> dict[str, CommandResult]:
        with self._lock:
            return dict(self._results)

    def quiesce(self) -> None:
        """Freeze the workloads before the drill's final read (see Instances.freeze)."""
        self.instances.freeze()

    def history(self) -> list[WriteOp]:
        return self.instances.history()

    def stored_records(self, volume: str) -> dict[int, StoredRecord]:
        path = self.volumes.exports[volume].path
        return {seq: StoredRecord(rec.seq, rec.incarnation, rec.checksum)
                for seq, rec in scan_file(str(path)).items()}

    def observe(self) -> Observation:
        return Observation(time=self._clock.now(), running=self.instances.running(),
                           power=dict(self.power), drbd={}, lvm=[], quorum={})

    def keep(self) -> None:
        """Leave the lab standing after this process exits (`run --keep`): its slot is
        marked kept, so no other run reclaims it and `down --all` leaves it; the volume
        servers restart detached; heartbeats and workloads, whose other ends live in
        this process, stop, and the lab's description says so (kept.py)."""
        with self._lock:
            if self.state is not LabState.UP:
                return
            self.state = LabState.KEPT
        self.runtime.stop(DESTROY_WAIT_S)
        self.instances.shutdown()
        if self.heartbeats is not None:
            self.heartbeats.shutdown()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        server_pids = self.volumes.detach(self.state_dir)
        self._close_sockets()
        kept.describe(self, server_pids).write(self.state_dir)
        mark_kept(self.names, self.name)
        lifetime.unregister(self)
        self.tracer.note("lab", "kept", id=self.names.lab_id)

    def _close_sockets(self) -> None:
        with self._lock:
            socks = list(self._socks.values())
            self._socks.clear()
        nsops.close_netlinks(socks)

    def destroy(self) -> None:
        """Tear down: no new action starts, those in flight and driver operations end
        (bounded), then every process and namespace of the lab goes."""
        with self._lock:
            if self.state is LabState.DOWN:
                return
            self.state = LabState.DOWN
        self.runtime.stop(DESTROY_WAIT_S)
        for part in ("instances", "volumes"):
            comp = getattr(self, part, None)
            if comp is not None:
                comp.shutdown()
        if self.heartbeats is not None:
            self.heartbeats.shutdown()
        self._close_sockets()
        cleanup.remove_lab_leftovers(self.names.lab_id)
        release(self.names)
        lifetime.unregister(self)
        self.tracer.note("lab", "down", id=self.names.lab_id)

