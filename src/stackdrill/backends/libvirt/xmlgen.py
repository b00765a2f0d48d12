"""libvirt XML for a lab: domains, isolated networks, the disk pool and its volumes.

Kept apart from the lab so that what we ask libvirt for can be read and tested without a
hypervisor. Choices that matter, with their reasons (measured, see MACHINE-FACTS):
- `<features><acpi/>`: without it qemu's pci.0 bus refuses disk hot-plug, so a disk-failure
  fault (detach) fails.
- direct kernel boot of the image's vmlinuz/initrd: no bootloader, ~10 s to init under TCG.
- a virtio-serial channel `org.qemu.guest_agent.0`: the host controls guests through it, never
  through IP; the lab bridges have no host address.
- networks without `<forward>` and without `<ip>`: isolated bridges, no DHCP, no NAT, nothing
  reaches beyond the lab.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from stackdrill.backends.libvirt.naming import METADATA_KEY, METADATA_NS

AGENT_CHANNEL = "org.qemu.guest_agent.0"
ET.register_namespace(METADATA_KEY, METADATA_NS)


@dataclass(frozen=True)
class DiskSpec:
    """One virtio disk: `name` is the topology's name, `target` the guest device (vdb...)."""

    name: str
    path: str
    target: str
    fmt: str = "qcow2"

    def element(self) -> ET.Element:
        disk = ET.Element("disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type=self.fmt, cache="none")
        ET.SubElement(disk, "source", file=self.path)
        ET.SubElement(disk, "target", dev=self.target, bus="virtio")
        ET.SubElement(disk, "serial").text = self.name[:20]
        return disk


@dataclass(frozen=True)
class NicSpec:
    network: str  # libvirt network name
    mac: str
    mtu: int = 1500
    link_up: bool = True
    tap: str | None = None  # host-side device name (stable across restarts)

    def element(self) -> ET.Element:
        nic = ET.Element("interface", type="network")
        ET.SubElement(nic, "mac", address=self.mac)
        ET.SubElement(nic, "source", network=self.network)
        if self.tap:
            ET.SubElement(nic, "target", dev=self.tap)
        ET.SubElement(nic, "model", type="virtio")
        ET.SubElement(nic, "mtu", size=str(self.mtu))
        ET.SubElement(nic, "link", state="up" if self.link_up else "down")
        return nic


@dataclass(frozen=True)
class DomainSpec:
    name: str
    domain_type: str  # "qemu" (TCG) or "kvm"
    memory_mib: int
    vcpus: int
    kernel: str
    initrd: str
    cmdline: str
    root: DiskSpec
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    metadata: str = ""  # an XML element in the stackdrill namespace
    console_log: str | None = None
    uuid: str | None = None
    channels: tuple[str, ...] = ()  # more virtio-serial ports (the fence agent's)


def domain_xml(spec: DomainSpec) -> str:
    dom = ET.Element("domain", type=spec.domain_type)
    ET.SubElement(dom, "name").text = spec.name
    if spec.uuid:
        ET.SubElement(dom, "uuid").text = spec.uuid
    if spec.metadata:
        ET.SubElement(dom, "metadata").append(ET.fromstring(spec.metadata))
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu").text = str(spec.vcpus)
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_, "kernel").text = spec.kernel
    ET.SubElement(os_, "initrd").text = spec.initrd
    ET.SubElement(os_, "cmdline").text = spec.cmdline
    ET.SubElement(ET.SubElement(dom, "features"), "acpi")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    devices.append(spec.root.element())
    for disk in spec.disks:
        devices.append(disk.element())
    for nic in spec.nics:
        devices.append(nic.element())
    for name in (AGENT_CHANNEL, *spec.channels):  # libvirt binds each one's socket
        channel = ET.SubElement(devices, "channel", type="unix")
        ET.SubElement(channel, "target", type="virtio", name=name)
    if spec.console_log:
        serial = ET.SubElement(devices, "serial", type="file")
        # append: a power-cycled guest must not truncate the history its console carries
        ET.SubElement(serial, "source", path=spec.console_log, append="on")
        ET.SubElement(serial, "target", port="0")
    else:
        ET.SubElement(ET.SubElement(devices, "serial", type="pty"), "target", port="0")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


def network_xml(name: str, bridge: str, mtu: int) -> str:
    """An isolated bridge: no `<forward>` (no NAT/routing), no `<ip>` (no host address, no DHCP)."""
    net = ET.Element("network")
    ET.SubElement(net, "name").text = name
    ET.SubElement(net, "bridge", name=bridge, stp="off", delay="0")
    ET.SubElement(net, "mtu", size=str(mtu))
    return ET.tostring(net, encoding="unicode")


def pool_xml(name: str, path: str) -> str:
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    ET.SubElement(ET.SubElement(pool, "target"), "path").text = path
    return ET.tostring(pool, encoding="unicode")


def volume_xml(name: str, capacity_bytes: int, backing: str | None = None) -> str:
    """A qcow2 volume; with `backing`, a copy-on-write overlay of the shared guest image."""
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(capacity_bytes)
    ET.SubElement(vol, "allocation", unit="bytes").text = "0"
    ET.SubElement(ET.SubElement(vol, "target"), "format", type="qcow2")
    if backing:
        store = ET.SubElement(vol, "backingStore")
        ET.SubElement(store, "path").text = backing
        ET.SubElement(store, "format", type="qcow2")
    return ET.tostring(vol, encoding="unicode")


# ------------------------------------------------------------- editing defined domains


@dataclass
class DomainView:
    """What the faults need to read back from a domain's XML."""

    disks: dict[str, str] = field(default_factory=dict)  # target dev -> source file
    nics: dict[str, tuple[str, bool]] = field(default_factory=dict)  # mac -> (network, link up)


def read_domain(xml: str) -> DomainView:
    root = ET.fromstring(xml)
    view = DomainView()
    for disk in root.iterfind("devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        if target is not None and source is not None:
            view.disks[target.get("dev", "")] = source.get("file", "")
    for nic in root.iterfind("devices/interface"):
        mac, source, link = nic.find("mac"), nic.find("source"), nic.find("link")
        if mac is not None and source is not None:
            up = link is None or link.get("state", "up") == "up"
            view.nics[mac.get("address", "")] = (source.get("network", ""), up)
    return view


def without_disk(xml: str, target: str) -> str:
    """The domain XML with the disk at `target` removed (a redefinition = the disk is gone)."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    assert devices is not None
    for disk in list(devices.iterfind("disk")):
        if _target(disk) == target:
            devices.remove(disk)
    return ET.tostring(root, encoding="unicode")


def _target(disk: ET.Element) -> str | None:
    tgt = disk.find("target")
    return None if tgt is None else tgt.get("dev")


def with_disk(xml: str, disk: DiskSpec) -> str:
    root = ET.fromstring(xml)
    devices = root.find("devices")
    assert devices is not None
    if disk.target not in {_target(d) for d in devices.iterfind("disk")}:
        devices.insert(1, disk.element())
    return ET.tostring(root, encoding="unicode")


def _set_link(root: ET.Element, mac: str, link_up: bool) -> ET.Element | None:
    """Set the link state of the interface with `mac` in a domain tree; that interface."""
    for nic in root.iterfind("devices/interface"):
        m = nic.find("mac")
        if m is not None and m.get("address") == mac:
            link = nic.find("link")
            if link is None:
                link = ET.SubElement(nic, "link")
            link.set("state", "up" if link_up else "down")
            return nic
    return None


def interface_xml(xml: str, mac: str, link_up: bool) -> str:
    """The `<interface>` element with `mac`, its link state set (for updateDeviceFlags)."""
    nic = _set_link(ET.fromstring(xml), mac, link_up)
    if nic is None:
        raise KeyError(f"no interface with MAC {mac}")
    return ET.tostring(nic, encoding="unicode")


def with_link(xml: str, mac: str, link_up: bool) -> str:
    """The whole domain XML with one interface's link state changed (for redefinition)."""
    root = ET.fromstring(xml)
    _set_link(root, mac, link_up)
    return ET.tostring(root, encoding="unicode")
