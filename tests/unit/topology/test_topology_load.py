"""Loading topologies: every shipped one is valid, and every way a file can be wrong is
reported with the file, the path inside it and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.errors import TopologyError
from stackdrill.topology import load_topology, parse_topology

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "lab" / "topologies").glob("*.yaml"))
BAD = ROOT / "fixtures" / "bad"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_topologies_are_valid(path: Path) -> None:
    topology = load_topology(path)
    assert topology.hosts and topology.name


def test_large_topology_has_the_promised_size() -> None:
    topology = load_topology(ROOT / "lab" / "topologies" / "large.yaml")
    assert len(topology.hosts) >= 20
    assert len(topology.instances) >= 200


def errors_of(path: Path) -> list[str]:
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    return info.value.render().splitlines()


def test_unknown_host_names_file_path_and_problem() -> None:
    assert errors_of(BAD / "unknown-host.yaml") == [
        f"{BAD / 'unknown-host.yaml'}: instances[3].host: unknown host 'cmp9'"]


@pytest.mark.parametrize(("name", "fragment"), [
    ("empty.yaml", "empty document"),
    ("syntax.yaml", "YAML syntax error"),
    ("list.yaml", "expected a mapping at the top, got list"),
    ("duplicate-key.yaml", "duplicate key 'hosts'"),
    ("missing.yaml", "no such file"),
])
def test_malformed_files_are_refused(name: str, fragment: str) -> None:
    (line,) = errors_of(BAD / name)
    assert line.startswith(str(BAD / name) + ":")
    assert fragment in line


def test_wrong_types_point_at_the_field() -> None:
    lines = errors_of(BAD / "wrong-types.yaml")
    assert any("hosts[0].vcpus:" in line and "'many'" in line for line in lines)
    assert any("hosts[1].roles[0]:" in line for line in lines)


def _base() -> dict[str, object]:
    return {
        "name": "t",
        "hosts": [
            {"name": "a", "roles": ["compute", "storage"], "vcpus": 2, "ram_mb": 4096,
             "disks": [{"name": "sdb", "size_gb": 10}]},
            {"name": "b", "roles": ["compute", "storage"], "vcpus": 2, "ram_mb": 4096,
             "disks": [{"name": "sdb", "size_gb": 10}]},
        ],
        "networks": [{"name": "net", "purposes": ["replication", "tunnel"],
                      "cidr": "10.0.0.0/24", "addresses": {"a": "10.0.0.1", "b": "10.0.0.2"}}],
        "drbd": [{"name": "r0", "nodes": ["a", "b"], "disk": "sdb", "size_gb": 8,
                  "network": "net", "primary": ["a"]}],
        "volume_groups": [{"name": "vg", "pv": {"drbd": "r0"}}],
        "flavors": {"m1": {"vcpus": 1, "ram_mb": 1024}},
        "volumes": [{"name": "v1", "vg": "vg", "size_gb": 4}],
        "instances": [{"name": "i1", "flavor": "m1", "host": "a", "volumes": ["v1"]}],
    }


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse_topology(data, "t.yaml")
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_base_topology_is_valid() -> None:
    assert parse_topology(_base(), "t.yaml").drbd[0].nodes == ("a", "b")


def test_drbd_resource_needs_two_nodes() -> None:
    data = _base()
    data["drbd"][0]["nodes"] = ["a"]  # type: ignore[index]
    assert any(p.startswith("drbd[0].nodes: a DRBD 8.4 resource needs exactly two nodes")
               for p in problems(data))


def test_drbd_net_options_default_to_84_and_are_bounded_as_drbd_limits() -> None:
    """drbd_limits.h: ping-int 10 s (1..120), ping-timeout 5 tenths (1..300), timeout 60
    tenths (1..600), ko-count 7 (0..200), connect-int 10 s (1..120)."""
    net = parse_topology(_base(), "t.yaml").drbd[0].net
    assert (net.ping_int, net.ping_timeout, net.timeout, net.ko_count, net.connect_int) == (
        10, 5, 60, 7, 10)
    assert (net.ping_timeout_s, net.timeout_s, net.effective_timeout_s) == (0.5, 6.0, 42.0)
    data = _base()
    data["drbd"][0]["net"] = {"ping_int": 121, "ping_timeout": 0,  # type: ignore[index]
                              "ko_count": 0, "timeout": 601, "connect_int": 0}
    found = problems(data)
    for field in ("ping_int", "ping_timeout", "timeout", "connect_int"):
        assert any(p.startswith(f"drbd[0].net.{field}:") for p in found), (field, found)
    assert not any(p.startswith("drbd[0].net.ko_count:") for p in found)  # 0 = off


def test_vg_on_missing_device() -> None:
    data = _base()
    data["volume_groups"][0]["pv"] = {"drbd": "r9"}  # type: ignore[index]
    assert "volume_groups[0].pv.drbd: no such device: unknown DRBD resource 'r9'" in \
        problems(data)


def test_duplicate_names_ips_and_macs() -> None:
    data = _base()
    data["hosts"].append(dict(data["hosts"][0]))  # type: ignore[attr-defined,index]
    data["networks"][0]["addresses"]["b"] = "10.0.0.1"  # type: ignore[index]
    found = problems(data)
    assert any(p.startswith("hosts[2].name: duplicate name 'a'") for p in found)
    assert any(p.startswith("networks[0].addresses.b: duplicate IP address '10.0.0.1'")
               for p in found)


def test_capacity_exceeded() -> None:
    data = _base()
    data["instances"] += [  # type: ignore[operator]
        {"name": f"x{i}", "flavor": "m1", "host": "a"} for i in range(2)]
    assert any("capacity exceeded on 'a': 3/2 vCPUs" in p for p in problems(data))


def test_overlay_mtu_larger_than_underlay_allows_loads() -> None:
    """The kernel accepts it (and clamps vxlan0): a danger for `stackdrill lint`, not an
    error that would keep its drill from running."""
    data = _base()
    data["overlays"] = [{"name": "ov", "vni": 5, "network": "net", "mtu": 1500,
                         "cidr": "192.168.0.0/24"}]
    assert parse_topology(data, "t.yaml").overlays[0].mtu == 1500


def test_dual_primary_settings_drbd_refuses_at_bring_up_load() -> None:
    """Two primaries without allow_two_primaries (the second promotion is refused), and
    allow_two_primaries with protocol A (the net options are refused): DRBD brings both
    up, and so does the lab."""
    data = _base()
    data["drbd"][0]["primary"] = ["a", "b"]  # type: ignore[index]
    assert parse_topology(data, "t.yaml").drbd[0].primary == ("a", "b")
    data["drbd"][0].update(protocol="A", allow_two_primaries=True)  # type: ignore[index]
    assert parse_topology(data, "t.yaml").drbd[0].protocol.value == "A"


def test_a_primary_listed_twice_is_an_error() -> None:
    data = _base()
    data["drbd"][0]["primary"] = ["a", "a"]  # type: ignore[index]
    assert "drbd[0].primary: a node is listed twice" in problems(data)


def test_every_drbd_problem_is_named_in_file_order() -> None:
    """Nodes (count, repeats, hosts, disks, sizes), the replication network and the
    primaries of each resource, in the order they are written."""
    data = _base()
    data["hosts"].append(  # type: ignore[attr-defined]
        {"name": "c", "roles": ["storage"], "vcpus": 2, "ram_mb": 4096})
    data["drbd"] = [
        {"name": "r0", "minor": 0, "nodes": ["a", "a", "c", "z"], "disk": "sdb",
         "size_gb": 12, "network": "net", "primary": ["a", "q"]},
        {"name": "r1", "minor": 1, "nodes": ["a", "b"], "disk": "sdb", "size_gb": 1,
         "network": "wan", "protocol": "A", "allow_two_primaries": True},
    ]
    assert [p for p in problems(data) if p.startswith("drbd[") and ".minor" not in p] == [
        "drbd[0].nodes: a DRBD 8.4 resource needs exactly two nodes, got 4",
        "drbd[0].nodes: a node is listed twice",
        "drbd[0].size_gb: 12 GB does not fit on a:sdb (10 GB)",
        "drbd[0].size_gb: 12 GB does not fit on a:sdb (10 GB)",
        "drbd[0].disk: host 'c' has no disk 'sdb'",
        "drbd[0].nodes[3]: unknown host 'z'",
        "drbd[0].network: host 'c' has no address on 'net'",
        "drbd[0].primary[1]: 'q' is not a node of r0",
        "drbd[1].network: unknown network 'wan'",
    ]


def test_topology_is_immutable() -> None:
    topology = parse_topology(_base(), "t.yaml")
    with pytest.raises(Exception, match="frozen"):
        topology.hosts[0].vcpus = 64  # type: ignore[misc]
