"""The underlay between hypervisors: one L2 segment per lab network across libvirt daemons.

Each daemon makes its own isolated bridge for a lab network (realize.up_networks). When the
network's hosts run on several daemons, each of those bridges gets one VXLAN port
(naming.LabNames.vxlan) with the network's VNI, sourced from that hypervisor's underlay
address and flooding to the others' (head-end replication; the bridges learn MACs as a
switch does). The lab bridges still carry no address: the VXLAN endpoints are addresses the
hypervisors already have (topology `hypervisors`), and the guests see one segment, as on one
daemon. A lab network must fit inside VXLAN on every underlay it crosses (its MTU plus 50
bytes), measured on the interface that holds the address; otherwise the lab is refused.

Which URIs reach the same daemon is decided from the URIs alone (`hypervisor_key`), so the
plan does not depend on the order of bring-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from stackdrill.backends.libvirt.hvaccess import HostAccess, VxlanPort, access_for, port_alias
from stackdrill.errors import LabNotReadyError, StackdrillError, UnsupportedError
from stackdrill.topology.libvirt_uri import HV_DIR, LOCAL_QEMU, local_hypervisor
from stackdrill.topology.semantic import VXLAN_OVERHEAD

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab


def hypervisor_key(uri: str) -> str:
    """Which daemon `uri` reaches: the local qemu URIs one, each daemon of
    scripts/second-libvirtd.sh one, each test-driver file one (test:///default with any
    parameters is the one in-process default driver), each remote host one."""
    if uri in LOCAL_QEMU:
        return "local"
    name = local_hypervisor(uri)
    if name is not None:
        return f"hv:{name}"
    parts = urlsplit(uri)
    if parts.scheme == "test":
        return f"test:{parts.path}"
    return f"{parts.scheme}:{parts.hostname}"


def spans(lab: LibvirtLab) -> dict[str, dict[str, str]]:
    """network -> {hypervisor key: a URI of it}, for the networks on several daemons."""
    out: dict[str, dict[str, str]] = {}
    for net in lab.topology.networks:
        where: dict[str, str] = {}
        for host in sorted(net.addresses):
            uri = lab.nodes[host].uri
            where.setdefault(hypervisor_key(uri), uri)
        if len(where) > 1:
            out[net.name] = where
    return out


def same_hypervisor(lab: LibvirtLab, a: str, b: str) -> bool:
    """Hosts `a` and `b` share their daemon (so their taps share each network's bridge)."""
    return hypervisor_key(lab.nodes[a].uri) == hypervisor_key(lab.nodes[b].uri)


def underlay_address(lab: LibvirtLab, uri: str, network: str) -> str:
    """The topology's underlay address for the daemon behind `uri`."""
    key = hypervisor_key(uri)
    for hv in lab.topology.hypervisors:
        if hypervisor_key(hv.uri) == key:
            return hv.underlay
    raise UnsupportedError(
        f"network {network} spans libvirt daemons, and the topology gives no underlay address "
        f"for {uri} (add `hypervisors: [{{uri: {uri}, underlay: ADDRESS}}]`)")


def access(uri: str) -> HostAccess:
    found = access_for(uri)
    if found is None:
        raise UnsupportedError(
            f"{uri}: stackdrill has no access to that hypervisor's host, so it cannot join "
            "its lab bridges to the other daemons' (README: a lab across hypervisors)")
    return found


def plan(lab: LibvirtLab) -> list[tuple[str, VxlanPort]]:
    """(URI, port) for every bridge that needs a VXLAN port; refuses what cannot work."""
    ports = []
    for network, where in sorted(spans(lab).items()):
        net = lab.topology.network(network)
        local = {uri: underlay_address(lab, uri, network) for uri in where.values()}
        for uri, address in local.items():
            _check_mtu(access(uri), uri, address, network, net.mtu)
            peers = tuple(sorted(a for u, a in local.items() if u != uri))
            ports.append((uri, VxlanPort(
                name=lab.names.vxlan(network), alias=port_alias(lab.name, network),
                vni=lab.names.vni(network), bridge=lab.names.bridge(network), mtu=net.mtu,
                local=address, peers=peers)))
    return ports


def _check_mtu(host: HostAccess, uri: str, address: str, network: str, mtu: int) -> None:
    underlay = host.underlay_mtu(address)
    if underlay is None:
        raise LabNotReadyError(f"{uri} ({host.label}): no interface holds its underlay "
                               f"address {address} (topology `hypervisors`)")
    if mtu + VXLAN_OVERHEAD > underlay:
        raise LabNotReadyError(
            f"network {network} (MTU {mtu}) does not fit the underlay of {uri}: its MTU "
            f"{underlay} leaves {underlay - VXLAN_OVERHEAD} inside VXLAN; lower the "
            "network's mtu or raise the underlay's")


def connect(lab: LibvirtLab, uri: str) -> None:
    """Join the lab's bridges across daemons, once every daemon has its bridges: called
    after each URI's networks, it acts after the last one's."""
    if uri != list(lab.conns)[-1]:
        return
    for where, port in plan(lab):
        access(where).add_vxlan(port)
        lab.log("vxlan-up", uri=where, port=port.name, vni=port.vni, bridge=port.bridge,
                local=port.local, peers=",".join(port.peers))


def daemon_runs(uri: str) -> bool:
    """False only for a second local daemon that was stopped: its namespace, bridges and
    ports went with it (scripts/second-libvirtd.sh stop), so there is nothing to remove."""
    name = local_hypervisor(uri)
    return name is None or (Path(HV_DIR) / name / "libvirt-sock").is_socket()


def disconnect(lab_name: str, uris: Iterable[str]) -> tuple[list[str], list[str]]:
    """Teardown on each hypervisor's host (each once) that stackdrill can reach: the lab's
    fault table and its VXLAN ports (only ports whose alias marks them as this lab's).
    Returns (what was removed, problems)."""
    from stackdrill.backends.libvirt import netfaults

    removed: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()
    for uri in uris:
        key = hypervisor_key(uri)
        if key in seen or not daemon_runs(uri):
            continue
        seen.add(key)
        try:
            host = access_for(uri)
            if host is None:
                continue
            netfaults.remove_table(lab_name, host)
            removed += [f"{uri}: vxlan {name}" for name in host.remove_lab_ports(lab_name)]
        except (OSError, StackdrillError) as exc:  # a namespace gone meanwhile, ...
            problems.append(f"{uri}: {exc}")
    return removed, problems
