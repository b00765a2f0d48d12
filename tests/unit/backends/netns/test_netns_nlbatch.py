"""Batched netlink requests on the real kernel: what one write per namespace builds, and
what happens when a request fails or a batch outgrows a socket buffer."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from netns_helpers import needs_root
from pyroute2 import NetlinkError

from stackdrill.backends.netns import nlbatch, nsops

pytestmark = [needs_root, pytest.mark.netns]

ZERO = "00:00:00:00:00:00"


@pytest.fixture
def spaces() -> Iterator[list[str]]:
    """Two fresh namespaces, named so that no `down --all` in a parallel test takes them."""
    names = [f"sdt-nlb{os.getpid()}-{threading.get_ident() % 1000}-{i}" for i in range(2)]
    nsops.create_namespaces(names)
    try:
        yield names
    finally:
        nsops.remove_namespaces(names)


def ip_json(ns: str, *argv: str) -> Any:
    out = subprocess.run(["ip", "-n", ns, "-j", *argv], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def links(ns: str) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in ip_json(ns, "-d", "link", "show")}


def fdb(ns: str, dev: str) -> set[tuple[str, str]]:
    out = subprocess.run(["bridge", "-n", ns, "-j", "fdb", "show", "dev", dev],
                         capture_output=True, text=True, check=True).stdout
    return {(e["mac"], e["dst"]) for e in json.loads(out) if "dst" in e}


def test_one_build_makes_the_switch_links_vtep_and_fdb_of_fresh_namespaces(
        spaces: list[str]) -> None:
    """What a lab's build sends: a bridge and a veth port on it in one namespace, the
    veth's far end addressed and up in the other, a VXLAN on an overlay bridge there, and
    its flood entries; every device up, on the master and with the index it was given."""
    sw_ns, host_ns = spaces
    build = nlbatch.Build()
    sw, host = build.batch(sw_ns), build.batch(host_ns)
    for batch in (sw, host):
        batch.set_up(nlbatch.LOOPBACK_INDEX, "lo")
    sw.bridge(sw.index("br0"), "br0")
    sw.veth(sw.index("port0"), "port0", master=sw.index("br0"), mtu=1400,
            peer_ns=host_ns, peer_index=host.index("eth0"), peer_ifname="eth0")
    host.address(host.index("eth0"), "10.9.0.1", 24)
    host.set_up(host.index("eth0"), "eth0")
    host.bridge(host.index("ov0"), "ov0", mtu=1350, mac="02:00:00:00:00:07")
    host.vxlan(host.index("vx0"), "vx0", vni=42, local="10.9.0.1", port=4789,
               underlay=host.index("eth0"), master=host.index("ov0"), mtu=1350)
    host.address(host.index("ov0"), "10.99.0.1", 24)
    for dst in ("10.9.0.2", "10.9.0.3"):
        host.fdb(host.index("vx0"), ZERO, dst, append=True)
    host.fdb(host.index("vx0"), "02:00:00:00:00:08", "10.9.0.2", append=False)
    build.send()

    sw_links, host_links = links(sw_ns), links(host_ns)
    assert sw_links["port0"]["master"] == "br0" and sw_links["port0"]["mtu"] == 1400
    assert "UP" in sw_links["port0"]["flags"] and "UP" in sw_links["br0"]["flags"]
    assert sw_links["br0"]["linkinfo"]["info_data"]["stp_state"] == 0
    eth0, vx0, ov0 = host_links["eth0"], host_links["vx0"], host_links["ov0"]
    assert eth0["ifindex"] == nlbatch.FIRST_INDEX and eth0["operstate"] == "UP"
    assert eth0["mtu"] == 1400
    vxlan = vx0["linkinfo"]["info_data"]
    assert (vxlan["id"], vxlan["local"], vxlan["port"], vxlan["learning"], vxlan["link"]) == \
        (42, "10.9.0.1", 4789, False, "eth0")
    assert vx0["master"] == "ov0" and "UP" in vx0["flags"] and vx0["mtu"] == 1350
    assert ov0["address"] == "02:00:00:00:00:07" and "UP" in ov0["flags"]
    addrs = {(a["ifname"], i["local"], i["prefixlen"]) for a in ip_json(host_ns, "addr")
             for i in a["addr_info"] if i["family"] == "inet"}
    assert {("eth0", "10.9.0.1", 24), ("ov0", "10.99.0.1", 24)} <= addrs
    assert fdb(host_ns, "vx0") == {(ZERO, "10.9.0.2"), (ZERO, "10.9.0.3"),
                                   ("02:00:00:00:00:08", "10.9.0.2")}


def test_indexes_leave_room_for_devices_a_fresh_namespace_may_already_hold(
        spaces: list[str]) -> None:
    """A loaded tunnel module gives every new namespace a fallback device (sit0, tunl0...)
    at index 2 and up; a bridge made by `ip` stands in for one here (this kernel has no
    tunnel or dummy module), and the build does not collide with it."""
    ns = spaces[0]
    subprocess.run(["ip", "-n", ns, "link", "add", "fallback0", "type", "bridge"], check=True)
    assert links(ns)["fallback0"]["ifindex"] == 2
    batch = nlbatch.Batch(ns)
    batch.bridge(batch.index("br0"), "br0")
    nlbatch.send([batch])
    assert links(ns)["br0"]["ifindex"] == nlbatch.FIRST_INDEX


def test_a_failing_request_raises_naming_namespace_and_request(spaces: list[str]) -> None:
    """The kernel answers each failure of a batch; the first is raised with the namespace
    and the request, and the batch's requests after it were still applied."""
    ns = spaces[0]
    batch = nlbatch.Batch(ns)
    batch.bridge(batch.index("br0"), "br0")
    batch.address(4242, "10.8.0.1", 24)  # no such interface
    batch.bridge(batch.index("br1"), "br1")
    with pytest.raises(NetlinkError) as caught:
        nlbatch.send([batch])
    assert caught.value.code == errno.ENODEV
    assert ns in str(caught.value) and "add address 10.8.0.1/24 on index 4242" in \
        str(caught.value)
    assert {"br0", "br1"} <= set(links(ns))


def test_a_batch_larger_than_the_send_buffer_is_sent_in_chunks(spaces: list[str]) -> None:
    """One write holds at most the socket's send buffer (~208 KiB, ~4400 FDB entries);
    a bigger batch still programs every entry."""
    ns = spaces[0]
    batch = nlbatch.Batch(ns)
    batch.bridge(batch.index("ov0"), "ov0")
    batch.vxlan(batch.index("vx0"), "vx0", vni=7, local="10.7.0.1", port=4789,
                underlay=nlbatch.LOOPBACK_INDEX, master=batch.index("ov0"), mtu=1450)
    count = 5000
    entries = {(f"02:00:00:00:{i >> 8:02x}:{i & 0xff:02x}", "10.7.0.2") for i in range(count)}
    for mac, dst in sorted(entries):
        batch.fdb(batch.index("vx0"), mac, dst, append=False)
    assert count * 48 > 212992  # an FDB request is 48 bytes: over the default buffer
    nlbatch.send([batch])
    assert fdb(ns, "vx0") == entries
