"""testinfra against lab hosts: `netns://NAME` with host.interface/addr/run/socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import testinfra.backend
from netns_helpers import needs_root, small_topology

from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.backends.netns.testinfra import NetnsTestinfraBackend, host

pytestmark = [needs_root, pytest.mark.netns]


@pytest.fixture(scope="module")
def lab() -> Iterator[NetnsLab]:
    with NetnsLab(small_topology("tinfra", with_volume=False), "tinfra") as it:
        yield it


def test_testinfra_sees_the_lab_host_from_inside(lab: NetnsLab) -> None:
    cmp1 = host(lab.names.host_ns("cmp1"))
    assert cmp1.backend.get_pytest_id() == f"netns://{lab.names.host_ns('cmp1')}"
    iface = cmp1.interface(lab.names.underlay_if(0))
    assert iface.exists and "10.0.0.11" in iface.addresses
    assert cmp1.addr("10.0.0.12").is_reachable
    ctl = host(lab.names.host_ns("ctl"))  # the controller's heartbeat receiver
    assert ctl.socket("udp://10.0.0.1:4199").is_listening
    assert not cmp1.socket("udp://10.0.0.1:4199").is_listening
    assert cmp1.run("ip -o link show %s", lab.names.vxlan_if(0)).rc == 0
    assert not cmp1.interface("eth0").exists  # the root namespace's NIC is not visible


def test_only_lab_namespaces_are_accepted() -> None:
    with pytest.raises(ValueError, match="not a stackdrill lab namespace"):
        NetnsTestinfraBackend("some-other-ns")


def test_hosts_come_without_touching_testinfras_backend_table(lab: NetnsLab) -> None:
    """testinfra's BACKENDS table is its own: neither the stackdrill plugin (loaded in
    this very pytest run) nor `host()` adds to it, and the host still works."""
    cmp1 = host(lab.names.host_ns("cmp1"))
    assert "netns" not in testinfra.backend.BACKENDS
    assert not [path for path in testinfra.backend.BACKENDS.values() if "netns" in path]
    assert cmp1.run("true").rc == 0
