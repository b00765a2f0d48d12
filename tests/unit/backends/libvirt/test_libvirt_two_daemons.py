"""A lab across two libvirt daemons, on libvirt's test driver: `test:///default` is one
daemon, a `test:///FILE.xml` connection another (each such connection is its own in-process
driver). The test driver has no bridges, so each daemon's host access is `Rendered`: what
these tests read is what the lab would do on a real hypervisor (the real namespace side is
tests/unit/backends/libvirt/test_libvirt_hvaccess.py, the whole lab a vm_peer scenario)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

libvirt = pytest.importorskip("libvirt")

from libvirt_support import TEST_URI, two_node, unique_lab  # noqa: E402

from stackdrill.backends.libvirt import LibvirtBackend, records, underlay  # noqa: E402
from stackdrill.backends.libvirt.hvaccess import Rendered, access_for, local_path  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.backends.libvirt.naming import LabNames  # noqa: E402
from stackdrill.errors import LabNotReadyError, UnsupportedError  # noqa: E402
from stackdrill.faults import Cut, Partition  # noqa: E402
from stackdrill.topology import Topology  # noqa: E402
from stackdrill.topology.load import parse_topology  # noqa: E402

HV2 = "qemu+unix:///system?socket=/run/stackdrill/hv/hv2/libvirt-sock"


@pytest.fixture
def second(tmp_path: Path) -> str:
    """The URI of a second, empty test-driver daemon."""
    node = tmp_path / "node.xml"
    node.write_text("<node/>\n")
    return f"test://{node}"


def across(second: str, *, hypervisors: bool = True) -> Topology:
    """two_node with bob on the second daemon, and (optionally) both underlay addresses."""
    data: dict[str, Any] = two_node(uri_b=second).model_dump(mode="json")
    if hypervisors:
        data["hypervisors"] = [{"uri": TEST_URI, "underlay": "192.168.250.1"},
                               {"uri": second, "underlay": "192.168.250.2"}]
    return parse_topology(data, "<test>")


def rendered(uri: str) -> Rendered:
    found = access_for(uri)
    assert isinstance(found, Rendered)
    return found


def create(topology: Topology, name: str) -> LibvirtLab:
    return LibvirtBackend(TEST_URI, lab_root=Path("/x")).create(topology, lab_name=name, seed=1)


@pytest.fixture
def lab(second: str) -> Iterator[LibvirtLab]:
    created = create(across(second), unique_lab("hv"))
    yield created
    created.destroy()


def test_each_daemons_bridge_gets_a_vxlan_port_toward_the_other(
        lab: LibvirtLab, second: str) -> None:
    names = LabNames(lab.name)
    for uri, local, peer in ((TEST_URI, "192.168.250.1", "192.168.250.2"),
                             (second, "192.168.250.2", "192.168.250.1")):
        ports = {p.bridge: p for p in rendered(uri).ports.values()
                 if p.alias.startswith(f"stackdrill:{lab.name}/")}
        assert set(ports) == {names.bridge("mgmt"), names.bridge("repl")}
        repl = ports[names.bridge("repl")]
        assert (repl.name, repl.vni, repl.mtu) == (names.vxlan("repl"), names.vni("repl"), 9000)
        assert (repl.local, repl.peers) == (local, (peer,))
    assert any("vxlan-up" in line for line in lab.trace())


def test_teardown_removes_the_lab_s_ports_on_every_daemon(second: str) -> None:
    lab = create(across(second), unique_lab("hv"))
    lab.destroy()
    for uri in (TEST_URI, second):
        assert not [p for p in rendered(uri).ports.values()
                    if p.alias.startswith(f"stackdrill:{lab.name}/")]


def test_hosts_on_one_daemon_need_no_port(second: str) -> None:
    """two_node on test:///default and test:///default?hypervisor=2: one daemon."""
    lab = create(two_node(uri_b=TEST_URI + "?hypervisor=2"), unique_lab("one"))
    try:
        assert underlay.spans(lab) == {}
        assert not [p for p in rendered(TEST_URI).ports.values() if lab.name in p.alias]
    finally:
        lab.destroy()


def test_no_underlay_address_for_a_daemon_is_refused_and_leaves_nothing(second: str) -> None:
    name = unique_lab("noaddr")
    with pytest.raises(UnsupportedError, match="no underlay address for test://"):
        create(across(second, hypervisors=False), name)
    conn = libvirt.open(TEST_URI)
    try:
        assert not [n for n in conn.listAllNetworks() if n.name().startswith(f"sd_{name}_")]
        assert not [d for d in conn.listAllDomains() if d.name().startswith(f"sd_{name}_")]
    finally:
        conn.close()


def test_a_network_that_does_not_fit_the_underlay_with_vxlan_is_refused(second: str) -> None:
    """repl has MTU 9000: an underlay of 9000 leaves 8950 inside VXLAN."""
    rendered(second).mtu = 9000
    try:
        with pytest.raises(LabNotReadyError, match=r"network repl \(MTU 9000\) does not fit "
                                                   r"the underlay of test://.*8950"):
            create(across(second), unique_lab("mtu"))
    finally:
        rendered(second).mtu = Rendered().mtu


def test_a_partition_across_daemons_drops_by_mac_at_each_receiver(lab: LibvirtLab,
                                                                  second: str) -> None:
    """bob's frames reach alice's bridge through its VXLAN port, not through bob's tap:
    the rule on alice's daemon matches bob's MAC there, and bob's daemon gets the mirror."""
    names = LabNames(lab.name)
    per = underlay_rules(lab, Partition(groups=(("alice",), ("bob",)), network="repl"))
    vx = names.vxlan("repl")
    assert per[TEST_URI] == [f'iifname "{vx}" ether saddr {names.mac("bob", "repl")} '
                             f'oifname "{names.tap("alice", "repl")}" drop']
    assert per[second] == [f'iifname "{vx}" ether saddr {names.mac("alice", "repl")} '
                           f'oifname "{names.tap("bob", "repl")}" drop']


def test_a_one_way_cut_across_daemons_is_dropped_only_at_the_receiver(
        lab: LibvirtLab, second: str) -> None:
    per = underlay_rules(lab, Cut(pairs=(("alice", "bob"),), network="repl", one_way=True))
    assert list(per) == [second]


def underlay_rules(lab: LibvirtLab, fault: Any) -> dict[str, list[str]]:
    from stackdrill.backends.libvirt import netfaults

    return netfaults.rules(lab, fault)


def test_a_second_local_daemon_gets_its_own_pool_directory(lab: LibvirtLab) -> None:
    """It shares this machine's disk: one directory would let each pool delete the
    other's volumes."""
    assert lab.workdir_for(TEST_URI) == Path("/x") / lab.name
    assert lab.workdir_for(HV2) == Path("/x") / f"{lab.name}@hv2"


@pytest.mark.parametrize(("a", "b", "same"), [
    ("qemu:///system", "qemu:///session", True),
    ("qemu:///system", HV2, False),
    (HV2, HV2.replace("hv2", "hv3"), False),
    ("test:///default", "test:///default?hypervisor=2", True),
    ("test:///default", "test:///tmp/x.xml", False),
    ("qemu+ssh://a/system", "qemu+ssh://root@a/system", True),
    ("qemu+ssh://a/system", "qemu+ssh://b/system", False),
])
def test_which_uris_reach_one_daemon(a: str, b: str, same: bool) -> None:
    assert (underlay.hypervisor_key(a) == underlay.hypervisor_key(b)) is same


def test_a_remote_daemon_has_no_host_access_here() -> None:
    with pytest.raises(UnsupportedError, match="no access to that hypervisor's host"):
        underlay.access("qemu+ssh://cmp9/system")


def test_down_by_name_finds_the_daemons_the_lab_recorded(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, second: str) -> None:
    """`stackdrill down --lab NAME` from another process, whose default URI (here an empty
    daemon of its own) knows nothing of the lab: the lab's record names its daemons."""
    name = unique_lab("rec")
    monkeypatch.setattr(records, "RECORDS", tmp_path)
    lab = create(two_node(uri_b=TEST_URI + "?hypervisor=2"), name)
    records.write(name, [TEST_URI, TEST_URI + "?hypervisor=2"])
    monkeypatch.setenv("STACKDRILL_LIBVIRT_URI", second)
    removed = LibvirtBackend.teardown(name)
    assert f"{TEST_URI}: domain sd_{name}_bob" in removed, removed
    assert records.read(name) == ([], "")  # forgotten once everything went
    lab.destroy()  # safe twice


def test_a_record_keeps_only_uris_a_topology_could_name(tmp_path: Path) -> None:
    records.write("lab1", ["qemu:///system", "qemu+unix:///system?socket=/tmp/evil"],
                  root=tmp_path)
    uris, owner = records.read("lab1", root=tmp_path)
    assert uris == ["qemu:///system"] and owner
    records.forget("lab1", root=tmp_path)
    assert records.recorded_labs(tmp_path) == []


def test_a_second_local_daemon_s_sockets_are_found_in_its_bind_mounts() -> None:
    inside = "/var/lib/libvirt/qemu/channel/target/domain-1-x/org.stackdrill.fence.0"
    assert local_path(HV2, inside) == ("/var/lib/stackdrill/hv/hv2/lib/qemu/channel/target/"
                                       "domain-1-x/org.stackdrill.fence.0")
    assert local_path("qemu:///system", inside) == inside
    assert local_path("qemu+ssh://cmp9/system", inside) is None


def test_a_power_fenced_guest_on_a_remote_daemon_is_refused() -> None:
    """Its fence channel is a socket on that hypervisor: the lab could never answer it."""
    from libvirt_support import clvm_pair

    data = clvm_pair().model_dump(mode="json")
    data["clusters"][0]["fencing"] = "power"
    data["hosts"][1]["libvirt_uri"] = "qemu+ssh://cmp9/system"
    with pytest.raises(UnsupportedError, match="bob is in a cluster fenced by power"):
        create(parse_topology(data, "<test>"), unique_lab("fence"))


@pytest.mark.parametrize(("hypervisors", "says"), [
    ([{"uri": TEST_URI, "underlay": "fd00::1"}], "not a unicast IPv4 address"),
    ([{"uri": TEST_URI, "underlay": "239.1.1.1"}], "not a unicast IPv4 address"),
    ([{"uri": TEST_URI, "underlay": "cmp1"}], "not an IP address"),
    ([{"uri": "qemu+ext:///system", "underlay": "10.0.0.1"}], "transport 'qemu\\+ext'"),
    ([{"uri": TEST_URI, "underlay": "10.0.0.1"}, {"uri": TEST_URI, "underlay": "10.0.0.2"}],
     "duplicate hypervisor URI"),
    ([{"uri": TEST_URI, "underlay": "10.0.0.1"}, {"uri": HV2, "underlay": "10.0.0.1"}],
     "duplicate underlay address"),
])
def test_hypervisors_are_checked_where_they_are_written(hypervisors: list[dict[str, str]],
                                                        says: str) -> None:
    from stackdrill.errors import TopologyError

    data = two_node().model_dump(mode="json")
    data["hypervisors"] = hypervisors
    with pytest.raises(TopologyError, match=says) as info:
        parse_topology(data, "t.yaml")
    assert "t.yaml: hypervisors[" in str(info.value)


def test_down_passes_over_a_second_daemon_that_was_stopped() -> None:
    """Its namespace took its bridges and ports along: nothing to do, and no problem that
    would keep `down` failing (and the lab's record) forever."""
    stopped = HV2.replace("hv2", "hvgone")
    assert not underlay.daemon_runs(stopped)
    assert underlay.disconnect("lab1", [stopped]) == ([], [])
    assert LibvirtBackend.teardown("lab1", (stopped,)) == []
