"""The overlay controller's desired state and how it reconciles hosts, against an
in-memory data plane that keeps each VTEP's FDB with the kernel's rules."""

from __future__ import annotations

import ipaddress
import itertools
import tracemalloc
from collections.abc import Iterable
from typing import Any

import pytest

from stackdrill.overlay import FdbPlane, OverlayController, PlaneError, VtepDevices, VtepSpec
from stackdrill.overlay.controller import descending_hosts
from stackdrill.overlay.model import ZERO_MAC
from stackdrill.overlay.plane import Entry, Tolerated, Verb
from stackdrill.topology import Topology, parse_topology

EP = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}
WEB = "fa:16:3e:00:00:01"


def bridge_mac(host: str) -> str:
    return f"02:5d:00:00:00:{ord(host[0]):02x}"


class MemoryPlane(FdbPlane):
    """Each VTEP's FDB as a set, strict like the kernel: adding a MAC that has an entry
    fails (EEXIST), deleting an absent entry fails (ENOENT), append allows several dsts."""

    def __init__(self) -> None:
        super().__init__(lambda host, ov: VtepDevices(f"vx-{ov}", f"br-{ov}", "eth1",
                                                      bridge_mac(host)))
        self.fdb: dict[tuple[str, str], set[Entry]] = {}
        self.specs: dict[tuple[str, str], VtepSpec] = {}
        self.calls: list[tuple[str, str]] = []  # (operation, host)

    def _table(self, host: str, overlay: str, op: str) -> set[Entry]:
        self.calls.append((op, host))
        if (host, overlay) not in self.fdb:
            raise PlaneError(f"{host} has no VTEP for {overlay}")
        return self.fdb[(host, overlay)]

    def create(self, host: str, spec: VtepSpec) -> None:
        self.calls.append(("create", host))
        self.specs[(host, spec.overlay)] = spec
        self.fdb[(host, spec.overlay)] = set()

    def dump(self, host: str, overlay: str) -> set[Entry]:
        return set(self._table(host, overlay, "dump"))

    def change(self, host: str, overlay: str, verb: Verb, mac: str, dst: str,
               ok_if: Tolerated | None = None) -> None:
        table = self._table(host, overlay, {"del": "delete"}.get(verb, verb))
        if verb == "add" and any(m == mac for m, _ in table):
            if ok_if != "exists":
                raise PlaneError(f"{host}: {mac} exists")
            return
        if verb == "append" and (mac, dst) in table:
            raise PlaneError(f"{host}: {mac} {dst} exists")
        if verb == "del":
            if (mac, dst) not in table and ok_if != "missing":
                raise PlaneError(f"{host}: no {mac} {dst}")
            table.discard((mac, dst))
            return
        table.add((mac, dst))

    def bulk(self, host: str, overlay: str, entries: Iterable[Entry]) -> None:
        for mac, dst in entries:
            self.put(host, overlay, mac, dst)


def topology() -> Topology:
    """a, b, c on the tunnel network; s (storage only) is not, so not a member; web on a."""
    data: dict[str, Any] = {
        "name": "ovctl",
        "hosts": [{"name": "a", "roles": ["compute"]}, {"name": "s", "roles": ["storage"]},
                  {"name": "b", "roles": ["compute"]}, {"name": "c", "roles": ["compute"]}],
        "networks": [
            {"name": "mgmt", "purposes": ["management"], "cidr": "192.168.0.0/24",
             "addresses": {"a": "192.168.0.1", "s": "192.168.0.9", "b": "192.168.0.2",
                           "c": "192.168.0.3"}},
            {"name": "tun", "purposes": ["tunnel"], "cidr": "10.0.0.0/24", "addresses": EP}],
        "overlays": [{"name": "ov", "vni": 42, "network": "tun", "cidr": "10.100.0.0/29",
                      "mtu": 1400, "port": 8472}],
        "flavors": {"small": {"vcpus": 1, "ram_mb": 512}},
        "instances": [{"name": "web", "flavor": "small", "host": "a", "overlay": "ov",
                       "mac": WEB, "ip": "10.100.0.6"}],
    }
    return parse_topology(data, "ovctl")


@pytest.fixture
def plane() -> MemoryPlane:
    return MemoryPlane()


@pytest.fixture
def ctl(plane: MemoryPlane) -> OverlayController:
    controller = OverlayController(topology(), plane)
    controller.build()
    controller.locate("ov", WEB, "a")
    return controller


def test_members_are_the_hosts_on_the_underlay_and_bridges_get_free_addresses() -> None:
    state = OverlayController(topology(), MemoryPlane()).overlays["ov"]
    assert state.members == EP and state.index == 0
    # highest addresses of 10.100.0.0/29 first, skipping the instance's .6
    assert state.host_ips == {"a": "10.100.0.5", "b": "10.100.0.4", "c": "10.100.0.3"}
    assert state.macs == {bridge_mac(h): h for h in EP}


def test_build_creates_every_vtep_and_programs_the_desired_mesh(plane: MemoryPlane) -> None:
    ctl = OverlayController(topology(), plane)
    ctl.build()
    assert plane.specs[("b", "ov")] == VtepSpec("ov", 42, 8472, "10.0.0.2", 1400,
                                                "10.100.0.4", 29)
    assert ("s", "ov") not in plane.specs
    for host in EP:
        assert plane.fdb[(host, "ov")] == ctl.desired("ov", host)
    # every VTEP exists before any FDB is written
    assert [op for op, _ in plane.calls[:3]] == ["create"] * 3


def test_desired_has_a_flood_entry_per_peer_and_each_remote_mac(
        ctl: OverlayController) -> None:
    assert ctl.desired("ov", "b") == {
        (ZERO_MAC, EP["a"]), (ZERO_MAC, EP["c"]),
        (bridge_mac("a"), EP["a"]), (bridge_mac("c"), EP["c"]),
        (WEB, EP["a"]),
    }
    assert WEB not in {mac for mac, _ in ctl.desired("ov", "a")}  # local: the bridge knows
    assert ctl.endpoint("ov", "c") == EP["c"]


def test_locate_moves_a_mac_on_every_host_but_frozen_ones_until_thawed(
        ctl: OverlayController, plane: MemoryPlane) -> None:
    ctl.freeze("ov", "c")
    plane.calls.clear()
    ctl.locate("ov", WEB, "b")
    assert "c" not in {host for _, host in plane.calls}  # no push at all to a frozen host
    assert (WEB, EP["b"]) in ctl.programmed("ov", "a")
    assert WEB not in {mac for mac, _ in ctl.programmed("ov", "b")}
    assert (WEB, EP["a"]) in ctl.programmed("ov", "c")  # stale
    assert ctl.sync("ov", "c") == (0, 0)  # frozen: not even a resync
    ctl.thaw("ov", "c")
    for host in EP:
        assert ctl.programmed("ov", host) == ctl.desired("ov", host)


def test_locate_is_idempotent_and_none_removes_the_mac_everywhere(
        ctl: OverlayController) -> None:
    ctl.locate("ov", WEB, "a")  # already there: quiet
    ctl.locate("ov", WEB, None)
    for host in EP:
        assert WEB not in {mac for mac, _ in ctl.programmed("ov", host)}
    assert WEB not in ctl.overlays["ov"].macs


def test_forget_drops_the_entry_on_that_host_only_and_sync_restores_it(
        ctl: OverlayController) -> None:
    ctl.forget("ov", "b", WEB)
    assert (WEB, EP["a"]) not in ctl.programmed("ov", "b")
    assert (WEB, EP["a"]) in ctl.programmed("ov", "c")
    assert ctl.overlays["ov"].macs[WEB] == "a"  # desired state kept
    assert ctl.sync("ov", "b") == (1, 0)
    assert ctl.programmed("ov", "b") == ctl.desired("ov", "b")


def test_sync_removes_stray_entries_and_forced_sync_reaches_a_frozen_host(
        ctl: OverlayController, plane: MemoryPlane) -> None:
    plane.add("c", "ov", "fa:16:3e:00:00:99", EP["b"])
    plane.delete("c", "ov", ZERO_MAC, EP["a"])
    ctl.freeze("ov", "c")
    assert ctl.sync("ov", "c", force=True) == (1, 1)
    assert ctl.programmed("ov", "c") == ctl.desired("ov", "c")


def test_a_host_without_a_vtep_is_an_error_not_an_empty_fdb() -> None:
    ctl = OverlayController(topology(), MemoryPlane())  # never built
    with pytest.raises(PlaneError):
        ctl.programmed("ov", "a")


@pytest.mark.parametrize("cidr", ["10.0.0.0/30", "10.0.0.0/31", "10.0.0.5/32", "192.168.7.0/24",
                                  "10.100.0.0/20", "fd00::/120", "fd00::/127", "fd00::/128"])
def test_bridge_addresses_come_from_the_top_of_the_range_as_hosts_lists_them(cidr: str) -> None:
    net = ipaddress.ip_network(cidr)
    assert list(descending_hosts(cidr)) == [str(a) for a in reversed(list(net.hosts()))]


def test_a_large_overlay_range_is_not_listed_to_find_its_top_address() -> None:
    """A /12 has a million addresses: listing them all took ~100 MB for three of them."""
    tracemalloc.start()
    try:
        first = list(itertools.islice(descending_hosts("10.0.0.0/12"), 3))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first == ["10.15.255.254", "10.15.255.253", "10.15.255.252"]
    assert peak < 1_000_000
