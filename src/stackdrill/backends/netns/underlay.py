"""The underlay: one bridge per topology network in a switch namespace, a veth per host.

The switch namespace stands for the physical switches; a host's link is the veth pair
between its namespace and a bridge port there. Link faults act on the host side (carrier
goes away at the switch too, as with a pulled cable); the switch side is the "middle of
the path" where a lowered MTU drops frames silently. No host address on any bridge, no
route out: traffic never leaves the lab's namespaces.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from stackdrill.backends.netns.names import LabNames
from stackdrill.backends.netns.nlbatch import Build
from stackdrill.topology import Topology
from stackdrill.topology.model import NetworkPurpose

log = logging.getLogger(__name__)

CONTROLLER = "(controller)"  # the extra endpoint used when no host has the controller role


@dataclass(frozen=True)
class HostLink:
    """One host's link to one underlay network."""

    host: str
    network: str
    net_index: int
    ns: str  # the host's namespace
    ifname: str  # host side
    port: str  # switch side
    address: str
    prefixlen: int
    mtu: int


def management_network(topology: Topology) -> str | None:
    """The network heartbeats and the controller use: one marked management, else the first."""
    nets = topology.networks_for(NetworkPurpose.MANAGEMENT) or topology.networks
    return nets[0].name if nets else None


def free_address(cidr: str, used: set[str]) -> str:
    """The highest host address of `cidr` nobody uses (the controller's, when it is ours)."""
    net = ipaddress.ip_network(cidr)
    for count, addr in enumerate(reversed(list(net.hosts()))):
        if count > 4096:
            break
        if str(addr) not in used:
            return str(addr)
    raise ValueError(f"no free address left in {cidr}")


class Underlay:
    """Builds and changes the underlay links of one lab."""

    def __init__(self, names: LabNames, topology: Topology, controller_ns: str | None) -> None:
        self.names = names
        self.topology = topology
        self.links: dict[tuple[str, str], HostLink] = {}
        host_index = {h.name: i for i, h in enumerate(topology.hosts)}
        for n_idx, net in enumerate(topology.networks):
            plen = ipaddress.ip_network(net.cidr).prefixlen
            for host, addr in sorted(net.addresses.items()):
                self.links[(host, net.name)] = HostLink(
                    host, net.name, n_idx, names.host_ns(host), names.underlay_if(n_idx),
                    names.switch_port(n_idx, host_index[host]), addr, plen, net.mtu)
        mgmt = management_network(topology)
        if controller_ns is not None and mgmt is not None:
            net = topology.network(mgmt)
            n_idx = [n.name for n in topology.networks].index(mgmt)
            addr = free_address(net.cidr, set(net.addresses.values()))
            self.links[(CONTROLLER, mgmt)] = HostLink(
                CONTROLLER, mgmt, n_idx, controller_ns, names.underlay_if(n_idx),
                names.switch_port(n_idx, len(topology.hosts)), addr,
                ipaddress.ip_network(net.cidr).prefixlen, net.mtu)

    def link(self, host: str, network: str) -> HostLink:
        try:
            return self.links[(host, network)]
        except KeyError:
            raise KeyError(f"host {host!r} has no link on network {network!r}") from None

    def host_links(self, host: str) -> list[HostLink]:
        return [lk for (h, _), lk in sorted(self.links.items()) if h == host]

    def build(self, build: Build) -> None:
        """Queue the bridges, veth pairs and addresses of fresh namespaces into `build`:
        each switch port is created on its bridge and up, its far end straight in the
        host's namespace, so nothing is looked up or moved in between."""
        sw = build.batch(self.names.switch_ns)
        bridges: dict[int, int] = {}
        for n_idx, _net in enumerate(self.topology.networks):
            name = self.names.switch_bridge(n_idx)
            bridges[n_idx] = sw.index(name)
            sw.bridge(bridges[n_idx], name)
        for lk in self.links.values():
            host = build.batch(lk.ns)
            idx = host.index(lk.ifname)
            sw.veth(sw.index(lk.port), lk.port, master=bridges[lk.net_index], mtu=lk.mtu,
                    peer_ns=lk.ns, peer_index=idx, peer_ifname=lk.ifname)
            host.address(idx, lk.address, lk.prefixlen)
            host.set_up(idx, lk.ifname)

    # ---------------------------------------------------------------- changes

    def set_up(self, sock: Any, lk: HostLink, up: bool) -> None:
        idx = sock.link_lookup(ifname=lk.ifname)[0]
        sock.link("set", index=idx, state="up" if up else "down")
        log.info("link %s/%s %s", lk.host, lk.network, "up" if up else "down")

    @staticmethod
    def is_up(sock: Any, ifname: str) -> bool:
        found = sock.link_lookup(ifname=ifname)
        if not found:
            return False
        msg = sock.get_links(found[0])[0]
        return bool(msg["flags"] & 1)  # IFF_UP

    @staticmethod
    def carrier(sock: Any, ifname: str) -> bool:
        found = sock.link_lookup(ifname=ifname)
        if not found:
            return False
        msg = sock.get_links(found[0])[0]
        return bool(msg.get_attr("IFLA_OPERSTATE") == "UP")

    @staticmethod
    def get_mtu(sock: Any, ifname: str) -> int:
        idx = sock.link_lookup(ifname=ifname)[0]
        return int(sock.get_links(idx)[0].get_attr("IFLA_MTU"))

    @staticmethod
    def set_mtu(sock: Any, ifname: str, mtu: int) -> None:
        idx = sock.link_lookup(ifname=ifname)[0]
        sock.link("set", index=idx, mtu=mtu)
