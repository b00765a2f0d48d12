"""Vagrant's way into the lab: which network, which address, which names."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from stackdrill.backends.vagrant.sshpath import SshPath, free_address, ssh_network
from stackdrill.errors import UnsupportedError
from stackdrill.topology import Topology, parse_topology

TOPOLOGY = """
name: t
hosts:
  - {name: a, roles: [compute]}
  - {name: b, roles: [compute]}
networks:
  - {name: repl, purposes: [storage], cidr: 10.8.0.0/30, addresses: {a: 10.8.0.1}}
  - {name: mgmt, purposes: [management], cidr: 10.7.0.0/24,
     addresses: {a: 10.7.0.254, b: 10.7.0.253}}
"""


def topology(text: str = TOPOLOGY) -> Topology:
    return parse_topology(yaml.safe_load(text), "t.yaml")


def test_the_ssh_network_is_the_first_that_reaches_every_host() -> None:
    assert ssh_network(topology()).name == "mgmt"  # repl lacks b


def test_a_topology_without_such_a_network_is_refused_with_the_reason() -> None:
    only_a = TOPOLOGY.replace(", b: 10.7.0.253", "")
    with pytest.raises(UnsupportedError, match="every host"):
        ssh_network(topology(only_a))


def test_the_namespace_takes_the_highest_address_no_host_uses() -> None:
    mgmt = topology().network("mgmt")
    assert free_address(mgmt) == ipaddress.ip_interface("10.7.0.252/24")


def test_a_full_network_has_no_address_for_the_namespace() -> None:
    repl = topology().network("repl")  # /30: .1 used, .2 free
    assert free_address(repl) == ipaddress.ip_interface("10.8.0.2/30")
    full = TOPOLOGY.replace("{a: 10.8.0.1}", "{a: 10.8.0.1, b: 10.8.0.2}")
    with pytest.raises(UnsupportedError, match="no address left"):
        free_address(topology(full).network("repl"))


def test_names_are_the_labs_own_and_fit_the_kernel() -> None:
    path = SshPath.for_lab("demo", topology())
    assert path.namespace == "sd_demo_ssh"
    outside, inside = path.veth
    assert outside != inside and all(len(n) <= 15 for n in path.veth)
    assert outside.startswith("sdv")  # not a name the netns backend cleans up (sd<hex>)
    assert path.veth != SshPath.for_lab("demo2", topology()).veth
    assert path.proxy_command() == "ip netns exec sd_demo_ssh nc %h %p"
