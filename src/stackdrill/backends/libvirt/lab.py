"""A topology realised as libvirt domains on isolated bridges, one qcow2 overlay per node.

The lab owns exactly what it defines: domains marked with its metadata, and networks and a pool
named with its prefix (see naming). `destroy` looks those up again in libvirt rather than
trusting memory, so it also cleans up after a crashed run, and it never touches anything else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self, TypeVar

import libvirt

from stackdrill.api import (
    Clock,
    CommandFinished,
    CommandIssued,
    CommandResult,
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
from stackdrill.backends.libvirt import drbd, fencing, observe, realize, records, underlay
from stackdrill.backends.libvirt.agent import GuestAgent, GuestCommandError, ShellResult
from stackdrill.backends.libvirt.faults import HANDLERS, Action, LibvirtFaults
from stackdrill.backends.libvirt.guestclock import GuestClocks
from stackdrill.backends.libvirt.image import GuestImage
from stackdrill.backends.libvirt.naming import METADATA_NS, LabNames, metadata_xml, set_mark
from stackdrill.backends.libvirt.readiness import (
    AGENT_RECONNECT_S,
    BOOT_HARD_S,
    BOOT_QUIET_S,
    ProgressDeadline,
    console_size,
    overtaken,
)
from stackdrill.backends.libvirt.teardown import existing, teardown_lab
from stackdrill.backends.libvirt.xmlgen import DiskSpec, DomainSpec, NicSpec
from stackdrill.backends.realtime import RealTime
from stackdrill.backends.realtime.runtime import LAB_ERRORS
from stackdrill.errors import LabNotReadyError, StackdrillError, UnsupportedError
from stackdrill.faults import Fault
from stackdrill.topology import Topology
from stackdrill.topology.libvirt_uri import local_hypervisor

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a drill's end waits for scheduled actions still running (a probe under TCG
# load, a fault's guest commands): longer than any one of them takes, bounded.
SCHEDULED_GRACE_S = 120.0
HANDSHAKE_GRACE_S = 60.0  # a DRBD handshake under way at the drill's end may finish


@dataclass
class Node:
    """One topology host as realised: where it runs and what its devices are called."""

    host: str
    uri: str
    domain: str
    disks: dict[str, DiskSpec] = field(default_factory=dict)  # topology disk name -> spec
    nics: dict[str, NicSpec] = field(default_factory=dict)  # topology network -> NIC


@dataclass(frozen=True)
class LabSettings:
    domain_type: str = "qemu"
    disk_cap_mb: int = 256  # data disks are sparse, but DRBD syncs them whole under TCG
    memory_cap_mb: int = 512
    vcpus_cap: int = 1
    boot_quiet_s: float = BOOT_QUIET_S  # a booting guest silent this long is not coming up
    boot_hard_s: float = BOOT_HARD_S  # nor one still booting after this long
    wait_ready: bool = True
    provision: bool = True  # DRBD, cluster stack, VGs and LVs from the topology


class LibvirtLab(Lab):
    backend = "libvirt"
    fault_handlers: Mapping[type[Fault], tuple[Action, Action]] = HANDLERS

    def __init__(
        self,
        topology: Topology,
        *,
        name: str,
        conns: dict[str, libvirt.virConnect],
        default_uri: str,
        image: GuestImage,
        workdir: Path,
        settings: LabSettings,
        options: LabOptions | None = None,
    ) -> None:
        self.topology = topology
        self.name = name
        self.names = LabNames(name)
        self.conns = conns
        self.default_uri = default_uri
        self.image = image
        self.workdir = workdir
        self.settings = settings
        self.options = options or LabOptions()
        self.epoch0 = time.time()  # the hypervisor's wall clock at lab time 0
        self.clocks = GuestClocks(self)  # guests' uptime stamps -> hypervisor time
        self.runtime = RealTime(name, lab_errors=(*LAB_ERRORS, libvirt.libvirtError))
        self.tracer = self.runtime.tracer
        self._clock = self.runtime.clock
        self._results: dict[str, CommandResult] = {}  # operator commands, by step label
        self._lock = threading.Lock()
        self._power_seen: dict[str, PowerState] = {}  # last traced power state per host
        self._power_lost: dict[str, float] = {}  # lab time of each host's latest power loss
        #                                          by a fault of the drill (see execute)
        self.nodes = {h.name: self._plan_node(h.name, h.libvirt_uri or default_uri)
                      for h in topology.hosts}
        self.boot_seconds: dict[str, float] = {}
        self.timings: dict[str, float] = {}  # provisioning stages, for bench results
        from stackdrill.backends.libvirt.compute import LibvirtCompute
        from stackdrill.backends.libvirt.drivers import make_drivers
        from stackdrill.backends.libvirt.overlay import GuestOverlay

        self._faults = LibvirtFaults(self, self.fault_handlers)
        self._drivers = make_drivers(self)
        self.overlay = GuestOverlay(self)
        self.fence = fencing.FenceListener(self)
        lifetime.register(self)  # destroyed at exit and on SIGTERM/SIGHUP too
        from stackdrill.backends.libvirt.storage import LibvirtStorageDriver

        assert isinstance(self._drivers.compute, LibvirtCompute)
        assert isinstance(self._drivers.storage, LibvirtStorageDriver)
        self.compute: LibvirtCompute = self._drivers.compute
        self.storage: LibvirtStorageDriver = self._drivers.storage

    # ------------------------------------------------------------------ plan

    def _plan_node(self, host: str, uri: str) -> Node:
        spec = self.topology.host(host)
        node = Node(host=host, uri=uri, domain=self.names.domain(host))
        for index, disk in enumerate(spec.disks):
            node.disks[disk.name] = DiskSpec(
                name=disk.name, target="vd" + chr(ord("b") + index),
                path=str(self.workdir_for(uri) / f"{host}-{disk.name}.qcow2"),
            )
        for net in self.topology.networks:
            if host in net.addresses:
                node.nics[net.name] = NicSpec(
                    network=self.names.network(net.name), mac=self.names.mac(host, net.name),
                    mtu=net.mtu, tap=self.names.tap(host, net.name),
                )
        return node

    def workdir_for(self, uri: str) -> Path:
        """The pool directory of the lab on the daemon behind `uri`. A daemon of
        scripts/second-libvirtd.sh shares this machine's disk: it gets its own directory
        (`LAB@NAME`), or the two pools would list, and delete, each other's volumes."""
        name = local_hypervisor(uri)
        return self.workdir if name is None else self.workdir.with_name(
            f"{self.workdir.name}@{name}")

    def console_path(self, host: str) -> Path:
        """The guest's serial console log (its workload's history), read on this machine."""
        return self.workdir_for(self.nodes[host].uri) / f"{host}.console"

    def domain_spec(self, host: str) -> DomainSpec:
        spec, node = self.topology.host(host), self.nodes[host]
        return DomainSpec(
            name=node.domain,
            domain_type=self.settings.domain_type,
            memory_mib=min(spec.ram_mb, self.settings.memory_cap_mb),
            vcpus=min(spec.vcpus, self.settings.vcpus_cap),
            kernel=self.image.kernel,
            initrd=self.image.initrd,
            cmdline=f"{self.image.cmdline} sd.hostname={host}",
            root=DiskSpec(name="root", target="vda",
                          path=str(self.workdir_for(node.uri) / f"{host}-root.qcow2")),
            disks=tuple(node.disks.values()),
            nics=tuple(node.nics.values()),
            metadata=metadata_xml(self.name, host, lifetime.owner_token()),
            console_log=None if self.is_test(node.uri) else str(self.console_path(host)),
            channels=(fencing.CHANNEL,) if host in self.fence.hosts else (),
        )

    # ------------------------------------------------------------------ bring up

    def up(self) -> Self:
        """Define networks, disks and domains, start them, wait for the guest agents,
        provision storage and the cluster stack, start the instances' workloads."""
        self._refuse_existing()
        if self._recorded():  # `down` from another process must find every daemon used
            records.write(self.name, list(self.conns))
        self.fence.start()  # before the guests: a boot's cluster stack may fence at once
        realize.up(self)
        self._drill_starts()
        if self.settings.wait_ready and not self.all_test():
            self.compute.heartbeats.start()  # stamped in drill time from the first beat
        return self

    def create_guests(self) -> dict[str, float]:
        """Networks, pool, disks and domains, started: when each guest started."""
        return realize.create_guests(self)

    def _refuse_existing(self) -> None:
        """A lab of this name that exists already (another run of the same drill and seed,
        a kept lab, a crashed run's leftovers) is not ours: refuse before creating anything,
        and tear nothing down. A second run of returning-host failed on the first's disk
        and its teardown then removed the first run's whole lab mid-drill."""
        found = [f"{uri}: {what}" for uri, conn in self.conns.items()
                 for what in existing(conn, self.name)]
        if found:
            lifetime.unregister(self)
            shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if found[3:] else "")
            raise LabNotReadyError(
                f"a lab named {self.name} exists already ({shown}): another stackdrill "
                f"runs or kept it; `stackdrill down --lab {self.name}` removes it")

    def _recorded(self) -> bool:
        """The lab uses a real daemon besides the default URI (see records.py)."""
        return any(u != self.default_uri and not u.startswith("test:") for u in self.conns)

    def _drill_starts(self) -> None:
        """Lab time 0 is when the lab is ready, as on every backend (a drill's `at: 30`
        means 30 s into the drill, not into a minute of booting). Bring-up lines keep
        their order in the trace at time 0; the workloads' history (guests' uptime stamps
        mapped to the hypervisor's clock, guestclock.py) is measured from the same instant."""
        with self._lock:
            self.runtime.start_clock()
            self.epoch0 = time.time()

    def after_boot(self, host: str) -> None:
        """The host's boot sequence after it powers on again (see realize.after_boot). A
        test-driver domain has no guest to boot: it is up as soon as it runs."""
        if self.is_test(self.nodes[host].uri):
            self.power_event(host, PowerState.ON, "booted")
            return
        realize.after_boot(self, host)

    def configure_network(self, host: str) -> None:
        """Name each NIC after its network and give it the topology's address (no DHCP)."""
        realize.configure_network(self, host)

    # ------------------------------------------------------------------ access

    def conn(self, host: str) -> libvirt.virConnect:
        return self.conns[self.nodes[host].uri]

    def domain(self, host: str) -> libvirt.virDomain:
        return self.conn(host).lookupByName(self.nodes[host].domain)

    def current_xml(self, host: str) -> str:
        """The domain as faults left it: live XML on qemu; on the test driver (which cannot
        change a running domain) the redefined persistent XML."""
        test = self.is_test(self.nodes[host].uri)
        return str(self.domain(host).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if test else 0))

    def is_test(self, uri: str) -> bool:
        return str(self.conns[uri].getType()).lower() == "test"

    def all_test(self) -> bool:
        return all(self.is_test(u) for u in self.conns)

    def run(self, host: str, command: str, timeout: float = 60.0) -> ShellResult:
        """Run a shell command in the guest through its agent.

        A guest that is off, hung or booting has no agent to answer, which is the drill's
        doing: GuestCommandError, and the caller decides what that means. A guest that runs
        and has booted must answer (its agent gets AGENT_RECONNECT_S to reconnect): when it
        cannot, the lab can no longer be driven or observed, LabNotReadyError."""
        if self.is_test(self.nodes[host].uri):
            raise UnsupportedError("libvirt's test driver has no guest agent")
        try:
            dom = self.domain(host)
        except libvirt.libvirtError as exc:
            raise GuestCommandError(f"{host}: no domain: {exc}") from exc
        expected = self.should_answer(host)
        try:
            return GuestAgent(dom).run(command, timeout=timeout,
                                       reconnect_s=AGENT_RECONNECT_S if expected else 0.0)
        except GuestCommandError as exc:
            if exc.agent_unavailable and expected and self.should_answer(host):
                raise LabNotReadyError(f"{host} runs but its guest agent does not answer: "
                                       f"{exc}") from exc
            raise

    def should_answer(self, host: str) -> bool:
        """The host is up as far as the lab knows (powered, booted, not hung) and libvirt
        says its domain runs: its guest agent must answer."""
        with self._lock:
            seen = self._power_seen.get(host, PowerState.ON)
        return seen is PowerState.ON and self.drivers.power.state(host) is PowerState.ON

    def boot_deadline(self, host: str) -> ProgressDeadline:
        """How long to wait for `host` to boot: as long as its console grows (see
        readiness), bounded."""
        console = self.console_path(host)
        return ProgressDeadline(f"{host} booting (guest agent silent)",
                                lambda: console_size(console),
                                quiet_s=self.settings.boot_quiet_s,
                                hard_s=self.settings.boot_hard_s)

    def progress(self, message: str) -> None:
        """A bring-up stage for the person waiting (minutes under TCG), and the trace."""
        self.log("progress", message=message.replace(" ", "_"))
        if self.options.progress is not None:
            self.options.progress(f"[{self._clock.now():8.1f}s] {message}")

    def log(self, event: str, **fields: object) -> None:
        """A line of the lab's own doings (bring-up, faults, teardown) in the trace."""
        traced = self.tracer.note("libvirt", event, **fields)
        log.info("[%s] %s", self.name, traced.line())

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """A driver operation on the lab's pool; what the lab refuses it with is a
        DriverError where the engine waits."""
        return self.runtime.submit(fn, *args)

    def power_event(self, host: str, state: PowerState, why: str) -> None:
        """The host's power really changed (libvirt did it): ground truth for fencing, and
        news for the other guests' DRBD fence-peer handlers (see drbd.fence_peer_script).
        Traced with the state before, as every backend traces it (hosts are on once up)."""
        with self._lock:
            was = self._power_seen.get(host, PowerState.ON)
            self._power_seen[host] = state
            if why == "fault" and state in (PowerState.OFF, PowerState.HUNG):
                self._power_lost[host] = self._clock.now()  # the drill's doing, not a fence
        self.tracer.emit(PowerChanged(host, state, was, why))
        if state is PowerState.OFF:
            self.compute.host_off(host)
        if state in (PowerState.OFF, PowerState.ON):
            for other in self.nodes:
                if other != host:
                    self.mirror_power(other, {host: state.value})

    def mirror_power(self, guest: str, states: dict[str, str]) -> None:
        """Write power states into a running guest's POWER_DIR (best effort: a guest that
        is down learns them when it boots, from after_boot)."""
        if self.is_test(self.nodes[guest].uri):
            return
        lines = "; ".join(f"echo {s} > {drbd.POWER_DIR}/{h}" for h, s in states.items())
        with contextlib.suppress(StackdrillError):
            self.run(guest, f"mkdir -p {drbd.POWER_DIR}; {lines}", timeout=10)

    # ------------------------------------------------------------------ Lab

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def drivers(self) -> Drivers:
        return self._drivers

    def inject(self, fault: Fault) -> None:
        self._faults.inject(fault)

    def heal(self, fault: Fault) -> None:
        self._faults.heal(fault)

    def call_at(self, time: float, action: Callable[[], None], label: str) -> None:
        """Run `action` at lab time `time` on a timer thread; a failing action is raised
        where the engine or the runner next waits on the clock (see realtime.Schedule)."""
        self.runtime.call_at(time, action, label)

    def execute(self, command: Command, label: str) -> None:
        """An operator command from the drill, run in its guest (see commands.py). One that
        failed because a later fault of the drill overtook it is no result (see
        readiness.overtaken): MachineTooSlowError."""
        from stackdrill.backends.libvirt.commands import run_command

        self.tracer.emit(CommandIssued(label))
        started = self._clock.now()
        result = replace(run_command(self, command), started=started,
                         finished=self._clock.now())
        with self._lock:
            self._results[label] = result
            late = None if result.ok else overtaken(label, started, self._power_lost)
        self.tracer.emit(CommandFinished(label, result.ok))
        if late is not None:
            raise late

    def command_results(self) -> dict[str, CommandResult]:
        with self._lock:
            return dict(self._results)

    def quiesce(self, resume: bool = False) -> None:
        """Let the schedule's last actions finish, then freeze (or thaw) every workload for
        a consistent final read (see observe.py)."""
        if not resume:
            self._still_there()
            unfinished = self.runtime.schedule.settle(SCHEDULED_GRACE_S)
            if unfinished:
                self.log("schedule-unfinished", actions=unfinished, grace_s=SCHEDULED_GRACE_S)
            # a host powered on late in the drill is still booting: its rejoin belongs in
            # the final read, however slow the runner (its boot has its own deadline)
            booting = self._faults.settle_boots(self.settings.boot_hard_s)
            if booting:
                raise LabNotReadyError(f"{booting} host(s) still booting at the drill's end")
            # a handshake a late boot began belongs in the final read too (its own grace)
            caught = drbd.settle_handshakes(self, HANDSHAKE_GRACE_S)
            if caught:
                raise LabNotReadyError(f"DRBD still mid-handshake {HANDSHAKE_GRACE_S:.0f} s "
                                       f"after the drill's end: {', '.join(caught)}")
            self.runtime.clock.sleep(0)  # a boot that gave up: its error, not a verdict
            self._kept_time()
        observe.quiesce(self, resume)

    def _kept_time(self) -> None:
        """The drill is over: had the guests' agents been too slow for the engine's timing
        for long enough to matter (see readiness.LatencyWatch), the verdict would be the
        machine's, a PASS as much as a FAIL."""
        watch = self.compute.heartbeats.close()
        if watch is None:
            return
        self.log("agent-latency-drill", budget_s=round(watch.budget_s, 3), **watch.summary())
        if watch.problem is not None:
            raise watch.problem

    def _still_there(self) -> None:
        """Every domain of the lab still exists: one removed from outside this run (another
        process's cleanup) leaves nothing to observe, which is no verdict."""
        for host, node in self.nodes.items():
            try:
                self.domain(host)
            except libvirt.libvirtError as exc:
                raise LabNotReadyError(f"{host}: domain {node.domain} is gone from libvirt "
                                       f"(removed outside this run?): {exc}") from exc

    def history(self) -> list[WriteOp]:
        return observe.history(self)

    def stored_records(self, volume: str) -> dict[int, StoredRecord]:
        return observe.stored_records(self, volume)

    def observe(self) -> Observation:
        return observe.observe(self)

    def keep(self) -> None:
        """Mark every domain kept (its owner is this process until now): `down --all` and
        other runs leave it; `down --lab NAME` removes it. Its guests keep running; the
        heartbeat monitor and the scheduler stop with this process."""
        for host in self.nodes:
            set_mark(self.domain(host), self.name, host, lifetime.KEPT)

    def destroy(self) -> None:
        """Stop driving the lab, then remove everything it made; safe twice."""
        self.runtime.stop(SCHEDULED_GRACE_S)
        self.compute.heartbeats.stop()
        self.fence.stop()
        self.remove_objects()

    def remove_objects(self) -> None:
        """Remove this lab's fault tables, VXLAN ports, domains, networks, volumes and pool
        on every URI."""
        removed, problems = underlay.disconnect(self.name, self.conns)
        for line in removed:
            self.log("teardown", removed=line)
        for uri, conn in self.conns.items():
            report = teardown_lab(conn, self.name)
            problems.extend(report.problems)
            for line in report.removed:
                self.log("teardown", uri=uri, removed=line)
        lifetime.unregister(self)
        if problems:
            raise StackdrillError("teardown incomplete: " + "; ".join(problems))
        if self._recorded():
            records.forget(self.name)


__all__ = ["METADATA_NS", "LabSettings", "LibvirtLab", "Node"]
