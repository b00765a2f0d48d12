"""ShellPlane on the real kernel: two "hosts" (network namespaces joined by a veth
underlay) get their VTEPs from shell commands alone, as a guest would, and an instance
on each side pings the other across the VXLAN overlay the controller programmed.

Everything lives in namespaces named `sdtestov-<pid>-…` that this module creates and
always removes; nothing is created in the machine's own namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stackdrill.overlay import OverlayController, PlaneError, ShellPlane, VtepDevices
from stackdrill.overlay.model import ZERO_MAC
from stackdrill.overlay.shell_plane import parse_fdb
from stackdrill.topology import Topology, parse_topology

PREFIX = f"sdtestov-{os.getpid()}-"
UNDERLAY = {"a": "192.0.2.1", "b": "192.0.2.2"}  # TEST-NET-1, only inside our namespaces
INSTANCES = {"i1": ("a", "fa:16:3e:00:00:01", "10.77.0.10"),
             "i2": ("b", "fa:16:3e:00:00:02", "10.77.0.11")}
DEVICES = {h: VtepDevices("vx0", "brov0", "ul0", f"02:5e:00:00:00:0{n}")
           for n, h in enumerate(UNDERLAY, 1)}


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root: creates network namespaces, veths, VXLAN devices and bridges"
    missing = [c for c in ("ip", "bridge", "ping") if shutil.which(c) is None]
    return f"needs {', '.join(missing)} (iproute2, iputils-ping)" if missing else None


def ns(name: str) -> str:
    return PREFIX + name


def sh(namespace: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", "netns", "exec", namespace, "sh", "-c", command],
                            capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{namespace}: {command!r}: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


def run(host: str, command: str) -> Result:
    """The runner ShellPlane gets: a shell inside the host's namespace, like a guest's."""
    done = sh(ns(host), command, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def topology() -> Topology:
    data: dict[str, Any] = {
        "name": "ovshell",
        "hosts": [{"name": h, "roles": ["compute"]} for h in UNDERLAY],
        "networks": [{"name": "tun", "purposes": ["tunnel"], "cidr": "192.0.2.0/24",
                      "addresses": UNDERLAY}],
        "overlays": [{"name": "ov", "vni": 4242, "network": "tun", "cidr": "10.77.0.0/24"}],
        "flavors": {"small": {"vcpus": 1, "ram_mb": 512}},
        "instances": [{"name": i, "flavor": "small", "host": h, "overlay": "ov", "mac": mac,
                       "ip": ip} for i, (h, mac, ip) in INSTANCES.items()],
    }
    return parse_topology(data, "ovshell")


def plug(instance: str, host: str) -> None:
    """The instance's namespace with its MAC/IP, joined by a veth to the host's bridge."""
    _, mac, ip = INSTANCES[instance]
    inst, where = ns(instance), ns(host)
    subprocess.run(["ip", "netns", "add", inst], check=True, timeout=10)
    sh(where, f"ip link add tap-{instance} mtu 1450 type veth peer name eth0 netns {inst} "
              f"address {mac} mtu 1450 && ip link set tap-{instance} master brov0 up")
    sh(inst, f"ip link set lo up && ip addr add {ip}/24 dev eth0 && ip link set eth0 up")


def unplug(instance: str) -> None:
    subprocess.run(["ip", "netns", "del", ns(instance)], check=True, timeout=10)


def ping(src: str, address: str) -> bool:
    return sh(src, f"ping -n -q -c 3 -i 0.2 -W 1 {address}", check=False).returncode == 0


@pytest.fixture(scope="module")
def lab() -> Iterator[OverlayController]:
    """Hosts a and b on a veth underlay, their VTEPs built by the controller, an instance
    on each; every namespace made here is removed afterwards, whatever happened."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    made: list[str] = []

    def add(name: str) -> None:
        made.append(ns(name))
        subprocess.run(["ip", "netns", "add", ns(name)], check=True, timeout=10)

    try:
        for host in UNDERLAY:
            add(host)
        subprocess.run(["ip", "-n", ns("a"), "link", "add", "ul0", "type", "veth", "peer",
                        "name", "ul0", "netns", ns("b")], check=True, timeout=10)
        for host, addr in UNDERLAY.items():
            sh(ns(host), f"ip link set lo up && ip addr add {addr}/24 dev ul0 "
                         "&& ip link set ul0 up")
        ctl = OverlayController(topology(), ShellPlane(run, lambda host, _ov: DEVICES[host]))
        ctl.build()
        made += [ns(i) for i in INSTANCES]
        for instance, (host, mac, _ip) in INSTANCES.items():
            plug(instance, host)
            ctl.locate("ov", mac, host)
        yield ctl
    finally:
        for name in reversed(made):  # only what this fixture created, each by its name
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10,
                           check=False)


def test_parse_fdb_keeps_remote_entries_only() -> None:
    text = ("33:33:00:00:00:01 dev vx0 self permanent\n"
            "02:5e:00:00:00:01 dev vx0 vlan 1 master brov0 permanent\n"
            "00:00:00:00:00:00 dst 192.0.2.2 self permanent\n"
            "fa:16:3e:00:00:02 dst 192.0.2.2 via ul0 self permanent\n")
    assert parse_fdb(text) == {(ZERO_MAC, "192.0.2.2"), ("fa:16:3e:00:00:02", "192.0.2.2")}


def test_vteps_are_built_as_specified(lab: OverlayController) -> None:
    details = sh(ns("a"), "ip -d link show vx0").stdout
    for part in ("mtu 1450", "id 4242", "local 192.0.2.1", "dev ul0", "dstport 4789",
                 "nolearning", "master brov0"):
        assert part in details
    bridge = sh(ns("b"), "ip -d addr show brov0").stdout
    assert "02:5e:00:00:00:02" in bridge and "mtu 1450" in bridge
    assert f"inet {lab.overlays['ov'].host_ips['b']}/24" in bridge


def test_instances_ping_across_the_overlay_and_the_fdb_is_the_desired_one(
        lab: OverlayController) -> None:
    assert ping(ns("i1"), "10.77.0.11")
    assert ping(ns("b"), "10.77.0.10")  # b's bridge address to the instance on a
    for host in UNDERLAY:
        assert lab.programmed("ov", host) == lab.desired("ov", host)
    assert ("fa:16:3e:00:00:01", "192.0.2.1") in lab.desired("ov", "b")


def test_locate_moves_the_entries_and_the_moved_instance_answers(
        lab: OverlayController) -> None:
    unplug("i1")
    plug("i1", "b")
    lab.locate("ov", "fa:16:3e:00:00:01", "b")
    try:
        raw = sh(ns("a"), "bridge fdb show dev vx0").stdout  # read without the plane
        assert "fa:16:3e:00:00:01 dst 192.0.2.2 " in raw
        # b's own VTEP points nowhere for i1 now; a bridge-learned "master" entry from
        # earlier traffic may linger until it ages out, and is not the plane's to own.
        assert "fa:16:3e:00:00:01 dst" not in sh(ns("b"), "bridge fdb show dev vx0").stdout
        for host in UNDERLAY:
            assert lab.programmed("ov", host) == lab.desired("ov", host)
        assert ping(ns("a"), "10.77.0.10")  # from a's bridge to i1, now behind b
    finally:
        unplug("i1")
        plug("i1", "a")
        lab.locate("ov", "fa:16:3e:00:00:01", "a")


def test_strict_changes_fail_and_tolerant_ones_pass(lab: OverlayController) -> None:
    plane = lab.plane
    mac, dst = "fa:16:3e:00:00:02", "192.0.2.2"
    with pytest.raises(PlaneError, match="File exists"):
        plane.add("a", "ov", mac, dst)
    plane.add("a", "ov", mac, dst, exist_ok=True)
    plane.delete("a", "ov", mac, dst)
    with pytest.raises(PlaneError, match="No such file"):
        plane.delete("a", "ov", mac, dst)
    plane.delete("a", "ov", mac, dst, missing_ok=True)
    assert lab.sync("ov", "a") == (1, 0)
    assert lab.programmed("ov", "a") == lab.desired("ov", "a")


def test_forget_and_sync_through_the_shell(lab: OverlayController) -> None:
    lab.forget("ov", "b", "fa:16:3e:00:00:01")
    assert "fa:16:3e:00:00:01" not in {m for m, _ in lab.programmed("ov", "b")}
    assert lab.sync("ov", "b") == (1, 0)
    assert ping(ns("i2"), "10.77.0.10")


def test_a_missing_device_is_an_error(lab: OverlayController) -> None:
    plane = ShellPlane(run, lambda h, _o: VtepDevices("novx0", "nobr0", "ul0", "02:00:00:00:00:01"))
    with pytest.raises(PlaneError, match="Cannot find device"):
        plane.dump("a", "ov")
