"""Host, disk and link faults through libvirt, each undone exactly by `heal`.

destroy = power cut (no clean shutdown; the disk keeps what reached it), suspend = a hung
kernel (powered, links up, nothing runs), reset = an abrupt reboot (the guests have no ACPI
daemon, so libvirt's `reboot` would wait for nothing), a detached data disk = disk failure
(the guest sees the virtio device vanish; DRBD's on-io-error decides what follows), and an
interface's `<link state='down'/>` = carrier loss; the overlay's own faults (a stale FDB, a
lost tunnel endpoint) go through the guests' overlay (overlay.py). Real qemu takes live
device updates; libvirt's test driver supports none, so there the lab redefines the
domain's XML with the same UUID, which is what the test driver's tests can observe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent import futures
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackdrill.api import FaultHealed, FaultInjected, PowerState
from stackdrill.backends.libvirt import cluster, netfaults, xmlgen
from stackdrill.errors import (
    InfrastructureError,
    LabStateError,
    StackdrillError,
    UnsupportedError,
)
from stackdrill.faults import (
    ClockSkew,
    CorruptBlocks,
    Cut,
    DaemonKill,
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
    InstanceCrash,
    LinkDown,
    OverlayFdbStale,
    PacketLoss,
    Partition,
    RateLimit,
    TunnelEndpointDown,
    UnderlayMtu,
    describe,
    fault_kinds,
)
from stackdrill.faults.catalogue import BLOCK_BYTES

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)
Action = Callable[["LibvirtFaults", Any], None]


class LibvirtFaults:
    """Injects and heals the faults of its table (see HANDLERS) on one lab's domains."""

    def __init__(self, lab: LibvirtLab, handlers: Mapping[type[Fault], tuple[Action, Action]]
                 ) -> None:
        self.lab = lab
        self.handlers = handlers
        self.rulesets: dict[str, str] = {}  # fault description -> nft script in force
        self.mtus: dict[tuple[str, str], int] = {}  # test driver only: MTUs set in guests
        self.corrupted: list[CorruptBlocks] = []  # test driver only: no disk to overwrite
        self.crashed: list[InstanceCrash] = []  # test driver only: no workload to kill
        self.boots: list[Future[None]] = []  # background boots after a power-on

    def _pair(self, fault: Fault) -> tuple[Action, Action]:
        pair = self.handlers.get(type(fault))
        if pair is None:
            raise UnsupportedError(f"the {self.lab.backend} backend cannot inject {fault.kind}")
        for host in fault.targets():
            if host not in self.lab.nodes:
                raise UnsupportedError(f"{describe(fault)}: no host {host!r} in this lab")
        return pair

    def inject(self, fault: Fault) -> None:
        inject, _heal = self._pair(fault)
        self.lab.tracer.emit(FaultInjected(describe(fault)))
        inject(self, fault)

    def heal(self, fault: Fault) -> None:
        _inject, heal = self._pair(fault)
        self.lab.tracer.emit(FaultHealed(describe(fault)))
        heal(self, fault)

    # -------------------------------------------------------------- hosts

    def _crash(self, fault: HostCrash) -> None:
        dom = self.lab.domain(fault.host)
        if dom.isActive():
            dom.destroy()
            self.lab.power_event(fault.host, PowerState.OFF, "fault")

    def _crash_heal(self, fault: HostCrash) -> None:
        dom = self.lab.domain(fault.host)
        if fault.power_back and not dom.isActive():
            dom.create()
            self.lab.power_event(fault.host, PowerState.BOOTING, "heal")
            self._boot_in_background(fault.host)

    def _hang(self, fault: HostHang) -> None:
        self.lab.domain(fault.host).suspend()
        self.lab.power_event(fault.host, PowerState.HUNG, "fault")

    def _hang_heal(self, fault: HostHang) -> None:
        import libvirt

        dom = self.lab.domain(fault.host)
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
            self.lab.power_event(fault.host, PowerState.ON, "heal")

    def _reboot(self, fault: HostReboot) -> None:
        self.lab.domain(fault.host).reset(0)
        self.lab.power_event(fault.host, PowerState.OFF, "fault")
        self.lab.power_event(fault.host, PowerState.BOOTING, "fault")
        self._boot_in_background(fault.host)

    def _nothing(self, fault: Fault) -> None:
        """A reboot heals by itself; nothing undoes a corruption or a killed process."""

    def _instance_crash(self, fault: InstanceCrash) -> None:
        """SIGKILL of the instance's workload loop inside the guest it runs in now."""
        if all(self.lab.is_test(node.uri) for node in self.lab.nodes.values()):
            self.crashed.append(fault)
            return
        if not self.lab.compute.crash(fault.instance):
            raise LabStateError(f"{describe(fault)}: {fault.instance} runs on no host: there "
                                "is no process to kill")

    # -------------------------------------------------------------- disks and links

    def _disk_fail(self, fault: DiskFailure) -> None:
        self._disk(fault.host, fault.disk, present=False)

    def _disk_heal(self, fault: DiskFailure) -> None:
        self._replace_volume(fault.host, fault.disk)
        self._disk(fault.host, fault.disk, present=True)
        self._reattach(fault.host, fault.disk)

    def _corrupt(self, fault: CorruptBlocks) -> None:
        """Random bytes over the fault's blocks of the backing disk, with O_DIRECT (DRBD
        reads its backing device past the page cache). The data area is the DRBD device's
        size where the disk backs a resource on this host, else the whole disk."""
        if self.lab.is_test(self.lab.nodes[fault.host].uri):
            self.corrupted.append(fault)
            return
        target = self.lab.nodes[fault.host].disks[fault.disk].target
        backed = [r for r in self.lab.topology.drbd
                  if r.disk == fault.disk and fault.host in r.nodes]
        # sysfs, not blockdev: 8.4 refuses to open a Secondary's /dev/drbdN (EMEDIUMTYPE)
        sized = f"drbd{backed[0].minor}" if backed else target
        sectors = self.lab.run(fault.host, f"cat /sys/class/block/{sized}/size").check().stdout
        data_blocks = int(sectors.strip()) * 512 // BLOCK_BYTES
        device = f"/dev/{target}"
        blocks = " ".join(str(b) for b in fault.addresses(data_blocks))
        self.lab.run(fault.host, f"for b in {blocks}; do dd if=/dev/urandom of={device} "
                     f"bs={BLOCK_BYTES} seek=$b count=1 oflag=direct conv=notrunc status=none"
                     " || exit 1; done", timeout=120).check()

    def _kill_daemon(self, fault: DaemonKill) -> None:
        """SIGKILL, as the OOM killer or a crash would end it: nothing is cleaned up."""
        if not self.lab.is_test(self.lab.nodes[fault.host].uri):
            self.lab.run(fault.host, f"pkill -KILL -x {fault.daemon}; "
                         f"while pgrep -x {fault.daemon} >/dev/null; do sleep 0.1; done",
                         timeout=30).check()

    def _restart_daemon(self, fault: DaemonKill) -> None:
        """Started again the way the lab's cluster stack starts it (cluster.py)."""
        if not self.lab.is_test(self.lab.nodes[fault.host].uri):
            self.lab.run(fault.host, f"pgrep -x {fault.daemon} >/dev/null || "
                         f"{cluster.LVMLOCKD_START}", timeout=60).check()

    def _skew(self, fault: ClockSkew) -> None:
        self._step_clock(fault.host, fault.seconds)

    def _unskew(self, fault: ClockSkew) -> None:
        self._step_clock(fault.host, -fault.seconds)

    def _step_clock(self, host: str, seconds: int) -> None:
        """`date -s` in the guest: its wall clock jumps (CLOCK_REALTIME), its monotonic
        clocks do not; no time daemon in the lab's guests reaches a server to undo it."""
        if self.lab.is_test(self.lab.nodes[host].uri):
            return
        self.lab.run(host, f"date -s @$(( $(date +%s) + ({seconds}) )) >/dev/null").check()

    def _link_down(self, fault: LinkDown) -> None:
        self._link(fault.host, fault.network, up=False)

    def _link_up(self, fault: LinkDown) -> None:
        self._link(fault.host, fault.network, up=True)

    def _mtu_low(self, fault: UnderlayMtu) -> None:
        self._mtu(fault.host, fault.network, fault.mtu)

    def _mtu_back(self, fault: UnderlayMtu) -> None:
        self._mtu(fault.host, fault.network, self.lab.topology.network(fault.network).mtu)

    def _bridge_rules(self, fault: Fault) -> None:
        """Partitions, loss and rate limits: nftables on the lab's bridges (netfaults)."""
        self.rulesets[describe(fault)] = netfaults.inject(self.lab, fault,
                                                          dry_run=self.lab.all_test())

    def _bridge_rules_heal(self, fault: Fault) -> None:
        netfaults.heal(self.lab, fault, dry_run=self.lab.all_test())
        self.rulesets.pop(describe(fault), None)

    # -------------------------------------------------------------- the overlay

    def _fdb_stale(self, fault: OverlayFdbStale) -> None:
        self.lab.overlay.freeze(fault.overlay, fault.host)

    def _fdb_fresh(self, fault: OverlayFdbStale) -> None:
        self.lab.overlay.thaw(fault.overlay, fault.host)

    def _endpoint_down(self, fault: TunnelEndpointDown) -> None:
        self.lab.overlay.set_endpoint(fault.overlay, fault.host, up=False)

    def _endpoint_up(self, fault: TunnelEndpointDown) -> None:
        self.lab.overlay.set_endpoint(fault.overlay, fault.host, up=True)

    def _boot_in_background(self, host: str) -> None:
        """A host that powers on runs its boot sequence (realize.after_boot) while the drill
        goes on, as a real one would; the test driver has no guest to boot (up at once).
        The drill's final read waits for the boots still running (`settle_boots`)."""
        if self.lab.is_test(self.lab.nodes[host].uri):
            self.lab.after_boot(host)
        else:
            self.boots.append(self.lab.submit(self._boot, host))

    def _boot(self, host: str) -> None:
        """Nobody waits on a background boot: a guest that never came up is the lab's
        failure, raised where the engine or the runner next waits (no verdict); any other
        failure goes to the trace (the checks then see a host that did not rejoin)."""
        try:
            self.lab.after_boot(host)
        except InfrastructureError as exc:
            self.lab.log("boot-failed", host=host, error=exc)
            self.lab.runtime.clock.alarm(exc)
        except StackdrillError as exc:
            self.lab.log("boot-failed", host=host, error=exc)

    def settle_boots(self, timeout: float) -> int:
        """Wait (bounded) for the background boots; how many still run. Each is bounded
        by its own progress deadline (readiness)."""
        _done, running = futures.wait(self.boots, timeout=timeout)
        return len(running)

    # -------------------------------------------------------------- devices

    def _disk(self, host: str, disk: str, *, present: bool) -> None:
        import libvirt

        node = self.lab.nodes[host]
        if disk not in node.disks:
            raise UnsupportedError(f"host {host} has no data disk {disk!r}")
        spec = node.disks[disk]
        dom = self.lab.domain(host)
        attached = spec.target in xmlgen.read_domain(self.lab.current_xml(host)).disks
        if attached == present:
            return
        if self.lab.is_test(node.uri):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            new = xmlgen.with_disk(xml, spec) if present else xmlgen.without_disk(xml, spec.target)
            self.lab.conn(host).defineXML(new)
        elif present:
            dom.attachDeviceFlags(_xml(spec), libvirt.VIR_DOMAIN_AFFECT_LIVE)
        else:
            dom.detachDeviceFlags(_xml(spec), libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def _replace_volume(self, host: str, disk: str) -> None:
        """Healing a failed disk means swapping it for a blank one of the same size (as the
        simulator does): the detached volume is deleted and created again, empty."""
        if self.lab.is_test(self.lab.nodes[host].uri):
            return
        name = Path(self.lab.nodes[host].disks[disk].path).name
        pool = self.lab.conn(host).storagePoolLookupByName(self.lab.names.pool())
        old = pool.storageVolLookupByName(name)
        capacity = int(old.info()[1])
        old.delete(0)
        pool.createXML(xmlgen.volume_xml(name, capacity), 0)

    def _reattach(self, host: str, disk: str) -> None:
        """The operator's half of a disk swap: once the guest sees the new disk, create
        DRBD's metadata on it and `drbdadm attach`; it comes up Inconsistent and the
        peer syncs it in full."""
        if self.lab.is_test(self.lab.nodes[host].uri):
            return
        device = "/dev/" + self.lab.nodes[host].disks[disk].target
        for res in self.lab.topology.drbd:
            if host in res.nodes and res.disk == disk:
                self.lab.run(host, f"for i in $(seq 60); do test -b {device} && break; "
                             f"sleep 0.5; done; drbdadm -- --force create-md {res.name} && "
                             f"drbdadm attach {res.name}", timeout=90).check()

    def _link(self, host: str, network: str, *, up: bool) -> None:
        import libvirt

        node = self.lab.nodes[host]
        if network not in node.nics:
            raise UnsupportedError(f"host {host} has no interface on network {network!r}")
        mac = node.nics[network].mac
        dom = self.lab.domain(host)
        if self.lab.is_test(node.uri):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            self.lab.conn(host).defineXML(xmlgen.with_link(xml, mac, up))
        else:
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() \
                else libvirt.VIR_DOMAIN_AFFECT_CONFIG
            dom.updateDeviceFlags(xmlgen.interface_xml(dom.XMLDesc(0), mac, up), flags)


    def _mtu(self, host: str, network: str, mtu: int) -> None:
        """The guest's own interface MTU (what a misconfigured host looks like): larger frames
        it sends or receives on that network are dropped or refused, as on the real host."""
        if network not in self.lab.nodes[host].nics:
            raise UnsupportedError(f"host {host} has no interface on network {network!r}")
        if self.lab.is_test(self.lab.nodes[host].uri):
            self.mtus[(host, network)] = mtu
            return
        self.lab.run(host, f"ip link set dev {network[:15]} mtu {mtu}").check()


# Each fault this backend realises, with its inject and its heal; the declared fault
# support of the libvirt backend (and of vagrant, whose machines are the same domains) is
# derived from these tables.
HANDLERS: dict[type[Fault], tuple[Action, Action]] = {
    HostCrash: (LibvirtFaults._crash, LibvirtFaults._crash_heal),
    HostHang: (LibvirtFaults._hang, LibvirtFaults._hang_heal),
    HostReboot: (LibvirtFaults._reboot, LibvirtFaults._nothing),
    DiskFailure: (LibvirtFaults._disk_fail, LibvirtFaults._disk_heal),
    CorruptBlocks: (LibvirtFaults._corrupt, LibvirtFaults._nothing),
    InstanceCrash: (LibvirtFaults._instance_crash, LibvirtFaults._nothing),
    LinkDown: (LibvirtFaults._link_down, LibvirtFaults._link_up),
    Partition: (LibvirtFaults._bridge_rules, LibvirtFaults._bridge_rules_heal),
    Cut: (LibvirtFaults._bridge_rules, LibvirtFaults._bridge_rules_heal),
    PacketLoss: (LibvirtFaults._bridge_rules, LibvirtFaults._bridge_rules_heal),
    RateLimit: (LibvirtFaults._bridge_rules, LibvirtFaults._bridge_rules_heal),
    UnderlayMtu: (LibvirtFaults._mtu_low, LibvirtFaults._mtu_back),
    OverlayFdbStale: (LibvirtFaults._fdb_stale, LibvirtFaults._fdb_fresh),
    TunnelEndpointDown: (LibvirtFaults._endpoint_down, LibvirtFaults._endpoint_up),
    ClockSkew: (LibvirtFaults._skew, LibvirtFaults._unskew),
    DaemonKill: (LibvirtFaults._kill_daemon, LibvirtFaults._restart_daemon),
}
FAULT_KINDS = fault_kinds(HANDLERS)


def _xml(spec: xmlgen.DiskSpec) -> str:
    import xml.etree.ElementTree as ET

    return ET.tostring(spec.element(), encoding="unicode")
