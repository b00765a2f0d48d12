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
from pathlib import Path
from typing import TYPE_CHECKING

import libvirt

from stackdrill.backends.libvirt import netfaults, xmlgen
from stackdrill.errors import StackdrillError, UnsupportedError
from stackdrill.faults import (
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
    LinkDown,
    OverlayFdbStale,
    TunnelEndpointDown,
    UnderlayMtu,
    describe,
)

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)
FAULT_KINDS = frozenset({"host_crash", "host_hang", "host_reboot", "disk_failure", "link_down"})
FAULT_KINDS |= netfaults.KINDS | {"underlay_mtu", "overlay_fdb_stale", "tunnel_endpoint_down"}
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


class LibvirtFaults:
    def __init__(self, lab: LibvirtLab) -> None:
        self.lab = lab
        self.rulesets: dict[str, str] = {}  # fault description -> nft script in force
        self.mtus: dict[tuple[str, str], int] = {}  # test driver only: MTUs set in guests

    def _check(self, fault: Fault) -> None:
        if fault.kind not in self.lab.supported_faults:
            raise UnsupportedError(f"the {self.lab.backend} backend cannot inject {fault.kind}")
        for host in fault.targets():
            if host not in self.lab.nodes:
                raise UnsupportedError(f"{describe(fault)}: no host {host!r} in this lab")

    def inject(self, fault: Fault) -> None:
        self._check(fault)
        self.lab.log("inject", fault=describe(fault))
        if fault.kind in netfaults.KINDS:
            dry = self.lab.all_test()
            self.rulesets[describe(fault)] = netfaults.inject(self.lab, fault, dry_run=dry)
        elif isinstance(fault, HostCrash):
            dom = self.lab.domain(fault.host)
            if dom.isActive():
                dom.destroy()
                self.lab.power_event(fault.host, "off", "fault")
        elif isinstance(fault, HostHang):
            self.lab.domain(fault.host).suspend()
            self.lab.power_event(fault.host, "hung", "fault")
        elif isinstance(fault, HostReboot):
            self.lab.domain(fault.host).reset(0)
            self.lab.power_event(fault.host, "off", "fault")
            self.lab.power_event(fault.host, "booting", "fault")
            self._boot_in_background(fault.host)
        elif isinstance(fault, DiskFailure):
            self._disk(fault.host, fault.disk, present=False)
        elif isinstance(fault, LinkDown):
            self._link(fault.host, fault.network, up=False)
        elif isinstance(fault, UnderlayMtu):
            self._mtu(fault.host, fault.network, fault.mtu)
        elif isinstance(fault, OverlayFdbStale):
            self.lab.overlay.freeze(fault.overlay, fault.host)
        elif isinstance(fault, TunnelEndpointDown):
            self.lab.overlay.set_endpoint(fault.overlay, fault.host, up=False)

    def heal(self, fault: Fault) -> None:
        self._check(fault)
        self.lab.log("heal", fault=describe(fault))
        if fault.kind in netfaults.KINDS:
            netfaults.heal(self.lab, fault, dry_run=self.lab.all_test())
            self.rulesets.pop(describe(fault), None)
        elif isinstance(fault, HostCrash):
            dom = self.lab.domain(fault.host)
            if fault.power_back and not dom.isActive():
                dom.create()
                self.lab.power_event(fault.host, "booting", "heal")
                self._boot_in_background(fault.host)
        elif isinstance(fault, HostHang):
            dom = self.lab.domain(fault.host)
            if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
                dom.resume()
                self.lab.power_event(fault.host, "on", "heal")
        elif isinstance(fault, HostReboot):
            pass  # a reboot heals by itself
        elif isinstance(fault, DiskFailure):
            self._replace_volume(fault.host, fault.disk)
            self._disk(fault.host, fault.disk, present=True)
            self._reattach(fault.host, fault.disk)
        elif isinstance(fault, LinkDown):
            self._link(fault.host, fault.network, up=True)
        elif isinstance(fault, UnderlayMtu):
            self._mtu(fault.host, fault.network, self.lab.topology.network(fault.network).mtu)
        elif isinstance(fault, OverlayFdbStale):
            self.lab.overlay.thaw(fault.overlay, fault.host)
        elif isinstance(fault, TunnelEndpointDown):
            self.lab.overlay.set_endpoint(fault.overlay, fault.host, up=True)

    def _boot_in_background(self, host: str) -> None:
        """A host that powers on runs its boot sequence (realize.after_boot) while the drill
        goes on, as a real one would; the test driver has no guest to boot."""
        if not self.lab.is_test(self.lab.nodes[host].uri):
            self.lab.executor.submit(self._boot, host)

    def _boot(self, host: str) -> None:
        """Nobody waits on a background boot: a failure goes to the trace (the checks then
        see a host that never came back), an engine's power_on would see it raised."""
        try:
            self.lab.after_boot(host)
        except StackdrillError as exc:
            self.lab.log("boot-failed", host=host, error=exc)

    # -------------------------------------------------------------- devices

    def _disk(self, host: str, disk: str, *, present: bool) -> None:
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
            dom.attachDeviceFlags(_xml(spec), LIVE)
        else:
            dom.detachDeviceFlags(_xml(spec), LIVE)

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
        node = self.lab.nodes[host]
        if network not in node.nics:
            raise UnsupportedError(f"host {host} has no interface on network {network!r}")
        mac = node.nics[network].mac
        dom = self.lab.domain(host)
        if self.lab.is_test(node.uri):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            self.lab.conn(host).defineXML(xmlgen.with_link(xml, mac, up))
        else:
            flags = LIVE if dom.isActive() else libvirt.VIR_DOMAIN_AFFECT_CONFIG
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


def _xml(spec: xmlgen.DiskSpec) -> str:
    import xml.etree.ElementTree as ET

    return ET.tostring(spec.element(), encoding="unicode")
