"""How Vagrant reaches the lab's machines without a host address on any lab bridge.

Vagrant talks to its machines over SSH. vagrant-libvirt's usual way, a NAT management
network with DHCP and a host address, is exactly what a lab must not have. Instead the lab
gets one network namespace of its own (`sd_<lab>_ssh`) with one leg on the bridge of a
network that reaches every host, holding an address of that network that no host uses:
Vagrant's ProxyCommand runs `nc` in that namespace. The host itself stays off the lab's
networks, and the guests can reach nothing but each other and that one namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from stackdrill.backends.libvirt.naming import BRIDGE_MAX, IFACE_PREFIX, PREFIX
from stackdrill.errors import UnsupportedError
from stackdrill.topology import Network, Topology

INSIDE_NAME = "lab0"


def ssh_network(topology: Topology) -> Network:
    """The first network every host has an address on: Vagrant reaches them all over it."""
    hosts = {h.name for h in topology.hosts}
    for net in topology.networks:
        if hosts <= set(net.addresses):
            return net
    raise UnsupportedError("the vagrant backend needs one network that every host has an "
                           "address on (Vagrant reaches its machines over SSH on it)")


def free_address(net: Network) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """The highest address of the network that no host uses (bounded: at most one step
    per host address below the top)."""
    cidr = ipaddress.ip_network(net.cidr)
    used = {ipaddress.ip_address(a) for a in net.addresses.values()}
    top = cidr.broadcast_address - 1
    for step in range(len(used) + 1):
        candidate = top - step
        if candidate in cidr and candidate != cidr.network_address and candidate not in used:
            return ipaddress.ip_interface(f"{candidate}/{cidr.prefixlen}")
    raise UnsupportedError(f"network {net.name} ({net.cidr}) has no address left for "
                           "Vagrant's SSH path")


@dataclass(frozen=True)
class SshPath:
    """The lab's SSH namespace: its name, its veth pair, the address it holds."""

    lab: str
    bridge: str  # the lab bridge of the SSH network
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface

    @property
    def namespace(self) -> str:
        return self.namespace_of(self.lab)

    @property
    def veth(self) -> tuple[str, str]:
        return self.veth_of(self.lab)

    def proxy_command(self) -> str:
        """Vagrant's ssh.proxy_command (%h and %p are the machine's address and port)."""
        return f"ip netns exec {self.namespace} nc %h %p"

    def create(self) -> None:
        """The namespace, its leg on the bridge and its address (the bridge must exist)."""
        from stackdrill.backends.netns import nsops

        outside, inside = self.veth
        nsops.create_namespaces([self.namespace])
        try:
            with nsops.ipr_root() as ipr:
                ipr.link("add", ifname=outside, kind="veth", peer=inside)
                (bridge,) = ipr.link_lookup(ifname=self.bridge)
                (out_idx,) = ipr.link_lookup(ifname=outside)
                (in_idx,) = ipr.link_lookup(ifname=inside)
                ipr.link("set", index=in_idx, net_ns_fd=self.namespace)
                ipr.link("set", index=out_idx, master=bridge, state="up")
            with nsops.ipr(self.namespace) as ipr:
                (lo,) = ipr.link_lookup(ifname="lo")
                ipr.link("set", index=lo, state="up")
                (idx,) = ipr.link_lookup(ifname=inside)
                ipr.link("set", index=idx, ifname=INSIDE_NAME)
                ipr.addr("add", index=idx, address=str(self.address.ip),
                         prefixlen=self.address.network.prefixlen)
                ipr.link("set", index=idx, state="up")
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        remove_ssh_path(self.lab)

    @staticmethod
    def namespace_of(lab: str) -> str:
        return f"{PREFIX}{lab}_ssh"

    @staticmethod
    def veth_of(lab: str) -> tuple[str, str]:
        """(bridge side, namespace side before it moves): names only this lab uses."""
        digest = hashlib.sha256(f"{lab}/ssh".encode()).hexdigest()[:10]
        return (f"{IFACE_PREFIX}s{digest}"[:BRIDGE_MAX], f"{IFACE_PREFIX}p{digest}"[:BRIDGE_MAX])

    @classmethod
    def for_lab(cls, lab: str, topology: Topology) -> SshPath:
        from stackdrill.backends.libvirt.naming import LabNames

        net = ssh_network(topology)
        return cls(lab=lab, bridge=LabNames(lab).bridge(net.name), address=free_address(net))


def remove_ssh_path(lab: str) -> bool:
    """Remove the lab's SSH namespace (what runs in it, its veth pair with it) and a pair
    whose inside end never moved; whether there was anything. Safe twice."""
    from stackdrill.backends.netns import nsops

    namespace = SshPath.namespace_of(lab)
    existed = namespace in nsops.list_namespaces()
    nsops.remove_namespace(namespace)
    with nsops.ipr_root() as ipr:
        for index in ipr.link_lookup(ifname=SshPath.veth_of(lab)[0]):
            ipr.link("del", index=index)
            existed = True
    return existed
