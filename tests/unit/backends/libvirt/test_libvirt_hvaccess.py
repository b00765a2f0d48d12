"""The host access of a second local daemon (hvaccess.LocalHost in a network namespace),
on real kernel namespaces, bridges and VXLAN devices: root only, a few milliseconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyroute2")

from stackdrill.backends.libvirt.hvaccess import (
    LocalHost,
    VxlanPort,
    check_hv_dir,
    port_alias,
)
from stackdrill.errors import BackendUnavailableError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True,
                          timeout=10).stdout


@pytest.fixture
def ns(worker_id: str) -> Iterator[str]:
    """A namespace with a bridge (a daemon's lab bridge) and an underlay address."""
    name = f"sdhvtest-{worker_id}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "sdvbtest", "type", "bridge")
        ip("-n", name, "link", "add", "uplink", "mtu", "9000", "type", "veth", "peer", "name",
           "uplink2", "mtu", "9000")  # this kernel has no dummy links
        ip("-n", name, "addr", "add", "192.168.251.2/30", "dev", "uplink")
        ip("-n", name, "link", "set", "uplink", "up")
        yield name
    finally:
        ip("netns", "del", name)


def port(lab: str, network: str, name: str, vni: int = 4242) -> VxlanPort:
    return VxlanPort(name=name, alias=port_alias(lab, network), vni=vni, bridge="sdvbtest",
                     mtu=1500, local="192.168.251.2", peers=("192.168.251.1",))


def test_the_underlay_mtu_is_read_where_the_address_is(ns: str) -> None:
    host = LocalHost(ns)
    assert host.underlay_mtu("192.168.251.2") == 9000
    assert host.underlay_mtu("192.168.251.9") is None
    assert LocalHost().underlay_mtu("192.168.251.2") is None  # not in the root namespace


def test_a_vxlan_port_joins_the_bridge_and_floods_to_its_peer(ns: str) -> None:
    LocalHost(ns).add_vxlan(port("lab1", "repl", "sdvxtest1"))
    details = ip("-n", ns, "-d", "link", "show", "sdvxtest1")
    assert "vxlan id 4242" in details and "dstport 4789" in details
    assert "local 192.168.251.2" in details and "master sdvbtest" in details
    assert "mtu 1500" in details and "alias stackdrill:lab1/repl" in details
    fdb = subprocess.run(["bridge", "-n", ns, "fdb", "show", "dev", "sdvxtest1"],
                         check=True, capture_output=True, text=True, timeout=10).stdout
    assert "00:00:00:00:00:00 dst 192.168.251.1" in fdb
    assert "192.168.251.2" not in ip("-n", ns, "addr", "show", "sdvbtest")  # no host IP


def test_teardown_removes_only_this_lab_s_ports(ns: str) -> None:
    host = LocalHost(ns)
    host.add_vxlan(port("lab1", "repl", "sdvxtest1"))
    host.add_vxlan(port("lab1", "mgmt", "sdvxtest2", vni=4243))
    host.add_vxlan(port("lab10", "repl", "sdvxtest3", vni=4244))  # another lab
    ip("-n", ns, "link", "add", "vxforeign", "type", "vxlan", "id", "7", "dstport", "4789")
    assert sorted(host.remove_lab_ports("lab1")) == ["sdvxtest1", "sdvxtest2"]
    links = ip("-n", ns, "-br", "link")
    assert "sdvxtest3" in links and "vxforeign" in links and "sdvxtest1" not in links


def test_commands_run_in_the_daemon_s_namespace(ns: str) -> None:
    assert "sdvbtest" in LocalHost(ns).run(["ip", "-br", "link"])


def test_sockets_are_trusted_only_in_a_directory_only_root_writes(tmp_path: Path) -> None:
    hv = tmp_path / "hv"
    hv.mkdir(mode=0o700)
    hv.chmod(0o700)
    check_hv_dir(hv)
    hv.chmod(0o777)
    with pytest.raises(BackendUnavailableError, match="owned by root and writable by root"):
        check_hv_dir(hv)


def test_a_vni_taken_here_is_a_lab_not_ready_error(ns: str) -> None:
    """Two labs whose VNIs collide on one hypervisor (1 in 16 million): the kernel refuses
    the second port (same VNI and port), and the lab says so instead of a traceback."""
    from stackdrill.errors import LabNotReadyError

    LocalHost(ns).add_vxlan(port("lab1", "repl", "sdvxtest1"))
    with pytest.raises(LabNotReadyError, match="VNI 4242"):
        LocalHost(ns).add_vxlan(port("lab2", "repl", "sdvxtest2"))


def qdiscs(ns: str, dev: str) -> list[dict[str, Any]]:
    out = subprocess.run(["tc", "-n", ns, "-j", "-d", "qdisc", "show", "dev", dev],
                         check=True, capture_output=True, text=True, timeout=10).stdout
    found: list[dict[str, Any]] = json.loads(out)
    return found


def tbf_of(ns: str, dev: str) -> dict[str, Any]:
    """The root tbf's options, as `tc -j -d qdisc show` reads them from the kernel."""
    (root,) = [q for q in qdiscs(ns, dev) if q.get("root")]
    assert root["kind"] == "tbf"
    options: dict[str, Any] = root["options"]
    return options


@pytest.mark.skipif(shutil.which("tc") is None, reason="needs iproute2's tc to read qdiscs")
def test_a_rate_limit_shapes_the_tap_as_tc_did_and_heal_removes_it(ns: str) -> None:
    """The kernel state that `tc qdisc replace dev TAP root tbf rate 2.5mbit burst 32kbit
    latency 50ms` made (run here on the veth's twin for comparison): rate 312500 bytes/s,
    burst 4 KiB, latency 50 ms (pyroute2 rounds the burst's transmit time down to a whole
    microsecond, so the latency tc reads back may be 1 us longer)."""
    ip("-n", ns, "link", "set", "uplink2", "up")
    before = qdiscs(ns, "uplink")
    subprocess.run(["tc", "-n", ns, "qdisc", "replace", "dev", "uplink2", "root", "tbf",
                    "rate", "2.5mbit", "burst", "32kbit", "latency", "50ms"],
                   check=True, timeout=10)
    host = LocalHost(ns)
    host.shape("uplink", 2.5)
    shaped, by_tc = tbf_of(ns, "uplink"), tbf_of(ns, "uplink2")
    assert shaped["rate"] == by_tc["rate"] == 312500
    assert shaped["burst"] == by_tc["burst"] == "4Kb/1"
    assert abs(shaped["lat"] - by_tc["lat"]) <= 1 and abs(shaped["lat"] - 50000) <= 1
    assert {k: v for k, v in shaped.items() if k != "lat"} == \
        {k: v for k, v in by_tc.items() if k != "lat"}
    host.shape("uplink", 10)  # a second rate replaces the first
    assert tbf_of(ns, "uplink")["rate"] == 1250000
    host.shape("uplink", None)
    assert qdiscs(ns, "uplink") == before
    host.shape("uplink", None)  # nothing left to remove: as tc's, no error
    host.shape("gone0", 10)  # a tap whose guest is off: left alone, no error
