"""The XML the libvirt backend asks for, checked the way `virsh dumpxml` would be read."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from stackdrill.backends.libvirt.naming import LabNames, metadata_xml, parse_mark
from stackdrill.backends.libvirt.xmlgen import (
    AGENT_CHANNEL,
    DiskSpec,
    DomainSpec,
    NicSpec,
    domain_xml,
    interface_xml,
    network_xml,
    read_domain,
    volume_xml,
    with_disk,
    with_link,
    without_disk,
)


def spec() -> DomainSpec:
    return DomainSpec(
        name="sd_lab_alice", domain_type="qemu", memory_mib=512, vcpus=1,
        kernel="/img/vmlinuz", initrd="/img/initrd.img", cmdline="console=ttyS0 sd.hostname=alice",
        root=DiskSpec(name="root", path="/labs/lab/alice-root.qcow2", target="vda"),
        disks=(DiskSpec(name="sdb", path="/labs/lab/alice-sdb.qcow2", target="vdb"),),
        nics=(NicSpec(network="sd_lab_repl", mac="52:54:00:aa:bb:cc", mtu=9000),),
        metadata=metadata_xml("lab", "alice", "1 2"),
    )


def test_domain_is_tcg_with_acpi_direct_kernel_and_agent_channel() -> None:
    """qemu refuses disk hot-plug on pci.0 without ACPI (measured); guests are controlled
    through the qemu-guest-agent virtio-serial channel, and boot the image's kernel directly."""
    root = ET.fromstring(domain_xml(spec()))
    assert root.get("type") == "qemu"
    assert root.find("features/acpi") is not None
    assert root.findtext("os/kernel") == "/img/vmlinuz"
    assert "sd.hostname=alice" in (root.findtext("os/cmdline") or "")
    channel = root.find("devices/channel/target")
    assert channel is not None and channel.get("name") == AGENT_CHANNEL
    assert channel.get("type") == "virtio"


def test_domain_disks_are_overlay_then_data_disks_on_virtio() -> None:
    """Each node boots its own overlay (vda) and sees its data disks as vdb, vdc, ..."""
    view = read_domain(domain_xml(spec()))
    assert view.disks == {"vda": "/labs/lab/alice-root.qcow2", "vdb": "/labs/lab/alice-sdb.qcow2"}
    assert view.nics == {"52:54:00:aa:bb:cc": ("sd_lab_repl", True)}


def test_lab_network_is_isolated_bridge_without_host_address() -> None:
    """No <forward> (no NAT, no routing) and no <ip> (no host address, no DHCP)."""
    net = ET.fromstring(network_xml("sd_lab_repl", "sdb0123456789", 9000))
    assert net.find("forward") is None
    assert net.find("ip") is None
    bridge = net.find("bridge")
    assert bridge is not None and bridge.get("name") == "sdb0123456789"
    mtu = net.find("mtu")
    assert mtu is not None and mtu.get("size") == "9000"


def test_overlay_volume_is_backed_by_the_shared_image() -> None:
    vol = ET.fromstring(volume_xml("alice-root.qcow2", 1 << 30, backing="/img/root.qcow2"))
    assert vol.findtext("backingStore/path") == "/img/root.qcow2"
    fmt = vol.find("target/format")
    assert fmt is not None and fmt.get("type") == "qcow2"
    assert ET.fromstring(volume_xml("d.qcow2", 1 << 20)).find("backingStore") is None


def test_disk_removal_and_return_keep_the_rest_of_the_domain() -> None:
    xml = domain_xml(spec())
    gone = without_disk(xml, "vdb")
    assert set(read_domain(gone).disks) == {"vda"}
    back = with_disk(gone, spec().disks[0])
    assert read_domain(back).disks == read_domain(xml).disks
    assert read_domain(with_disk(back, spec().disks[0])).disks == read_domain(xml).disks


def test_link_state_edits_only_the_named_interface() -> None:
    xml = domain_xml(spec())
    assert read_domain(with_link(xml, "52:54:00:aa:bb:cc", False)).nics == {
        "52:54:00:aa:bb:cc": ("sd_lab_repl", False)}
    nic = ET.fromstring(interface_xml(xml, "52:54:00:aa:bb:cc", False))
    link = nic.find("link")
    assert link is not None and link.get("state") == "down"


def test_names_never_collide_across_labs_and_fit_linux_limits() -> None:
    """`_` is not allowed in topology names, so lab `a`'s prefix never matches lab `a-b`'s."""
    a, ab = LabNames("a"), LabNames("a-b")
    assert not ab.domain("host").startswith(a.prefix)
    assert a.host_of(ab.domain("host")) is None
    assert len(a.bridge("a-very-long-network-name-here")) <= 15
    assert a.bridge("repl") != ab.bridge("repl")
    assert a.mac("h1", "repl") != a.mac("h2", "repl")
    assert a.mac("h1", "repl").startswith("52:54:00:")


def test_metadata_mark_round_trips_and_rejects_foreign_elements() -> None:
    assert parse_mark(metadata_xml("lab", "alice", "1 2")) == ("lab", "alice")
    assert parse_mark("<other name='lab' host='alice'/>") is None
    assert parse_mark("not xml") is None


def test_interface_names_never_look_like_the_netns_backends_own() -> None:
    """`stackdrill down --all` removes stray root-namespace interfaces named like the netns
    backend's; a libvirt lab's bridges and taps must never match that pattern, or a
    running VM lab loses its replication bridge (it happened: `sdbc12e...`)."""
    from stackdrill.backends.libvirt.naming import LabNames
    from stackdrill.backends.netns.cleanup import ROOT_IF_RE

    for lab in ("vm-returning-host-1", "a", "split-brain-gw1-7"):
        names = LabNames(lab)
        for net in ("mgmt", "repl", "eth1", "public", "storage"):
            for name in (names.bridge(net), names.tap("cmp1", net)):
                assert len(name) <= 15 and not ROOT_IF_RE.match(name), name
