"""Host, disk and link faults through libvirt, each undone exactly by `heal`.

destroy = power cut (no clean shutdown; the disk keeps what reached it), suspend = a hung
kernel (powered, links up, nothing runs), reset = an abrupt reboot (the guests have no ACPI
daemon, so libvirt's `reboot` would wait for nothing), a detached data disk = disk failure
(the guest sees the virtio device vanish; DRBD's on-io-error decides what follows), and an
interface's `<link state='down'/>` = carrier loss. Real qemu takes live device updates; libvirt's
test driver supports none, so there the lab redefines the domain's XML with the same UUID, which
is what the test driver's tests can observe.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import libvirt

from stackdrill.backends.libvirt import netfaults, xmlgen
from stackdrill.errors import UnsupportedError
from stackdrill.faults import (
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
    LinkDown,
    UnderlayMtu,
    describe,
)

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)
FAULT_KINDS = frozenset({"host_crash", "host_hang", "host_reboot", "disk_failure", "link_down"})
FAULT_KINDS |= netfaults.KINDS | {"underlay_mtu"}
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
        elif isinstance(fault, HostHang):
            self.lab.domain(fault.host).suspend()
        elif isinstance(fault, HostReboot):
            self.lab.domain(fault.host).reset(0)
        elif isinstance(fault, DiskFailure):
            self._disk(fault.host, fault.disk, present=False)
        elif isinstance(fault, LinkDown):
            self._link(fault.host, fault.network, up=False)
        elif isinstance(fault, UnderlayMtu):
            self._mtu(fault.host, fault.network, fault.mtu)

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
        elif isinstance(fault, HostHang):
            dom = self.lab.domain(fault.host)
            if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
                dom.resume()
        elif isinstance(fault, HostReboot):
            pass  # a reboot heals by itself
        elif isinstance(fault, DiskFailure):
            self._disk(fault.host, fault.disk, present=True)
        elif isinstance(fault, LinkDown):
            self._link(fault.host, fault.network, up=True)
        elif isinstance(fault, UnderlayMtu):
            self._mtu(fault.host, fault.network, self.lab.topology.network(fault.network).mtu)

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
