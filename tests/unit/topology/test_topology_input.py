"""Topology values a hostile or careless file may carry: libvirt URIs, LVM names, names
with a trailing newline, and error paths that must name exactly where the problem is."""

from __future__ import annotations

import copy

import pytest

import stackdrill.drill  # noqa: F401  (every union registers its tags, as in a CLI process)
from stackdrill.errors import TopologyError
from stackdrill.topology import parse_topology
from stackdrill.topology.libvirt_uri import ALLOW_PARAMS_ENV
from stackdrill.topology.lvm_names import lv_name_problem, vg_name_problem

BASE: dict[str, object] = {
    "name": "t",
    "hosts": [
        {"name": "a", "roles": ["compute", "storage"], "vcpus": 2, "ram_mb": 4096,
         "disks": [{"name": "sdb", "size_gb": 10}]},
        {"name": "b", "roles": ["compute", "storage"], "vcpus": 2, "ram_mb": 4096,
         "disks": [{"name": "sdb", "size_gb": 10}]},
    ],
    "networks": [{"name": "net", "purposes": ["replication", "tunnel"],
                  "cidr": "10.0.0.0/24", "addresses": {"a": "10.0.0.1", "b": "10.0.0.2"}}],
    "overlays": [{"name": "ov", "vni": 5, "network": "net", "cidr": "192.168.0.0/24",
                  "mtu": 1400}],
    "drbd": [{"name": "r0", "nodes": ["a", "b"], "disk": "sdb", "size_gb": 8,
              "network": "net", "primary": ["a"]}],
    "volume_groups": [{"name": "vg", "pv": {"drbd": "r0"}}],
    "flavors": {"m1": {"vcpus": 1, "ram_mb": 1024}},
    "volumes": [{"name": "v1", "vg": "vg", "size_gb": 4}],
    "instances": [{"name": "i1", "flavor": "m1", "host": "a", "volumes": ["v1"],
                   "overlay": "ov", "mac": "fa:16:3e:00:00:01", "ip": "192.168.0.5"}],
}


def with_(path: tuple[str | int, ...], value: object) -> dict[str, object]:
    data = copy.deepcopy(BASE)
    node: object = data
    for part in path[:-1]:
        node = node[part]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return data


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse_topology(data, "t.yaml")
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_base_is_valid() -> None:
    assert parse_topology(BASE, "t.yaml").instances[0].mac == "fa:16:3e:00:00:01"


# --- 1. libvirt URIs: only what a lab needs ---------------------------------------------

@pytest.mark.parametrize("uri", [
    "qemu:///system", "qemu:///session", "test:///default", "test:///tmp/lab.xml",
    "test:///default?hypervisor=2", "qemu+ssh://cmp1/system", "qemu+ssh://root@cmp1/system",
    "qemu+tls://cmp1.example.org:16514/system", "qemu+ssh://10.0.0.7/system",
    "qemu+ssh://[fd00::7]/system",
    "qemu+unix:///system?socket=/run/stackdrill/hv/hv2/libvirt-sock"])
def test_lab_uris_are_accepted(uri: str) -> None:
    assert parse_topology(with_(("hosts", 1, "libvirt_uri"), uri), "t.yaml")


@pytest.mark.parametrize(("uri", "says"), [
    ("qemu+ext:///system?command=/tmp/x", "query parameters (command=)"),
    ("qemu+ext:///system", "transport 'qemu+ext' is not allowed"),
    ("qemu+unix:///system?socket=/tmp/s", "query parameters (socket=)"),
    # stackdrill's own second daemons: that directory, that socket name, nothing more
    ("qemu+unix:///system?socket=/run/stackdrill/hv/../x/libvirt-sock", "(socket=)"),
    ("qemu+unix:///system?socket=/run/stackdrill/hv/hv2/other-sock", "(socket=)"),
    ("qemu+unix:///system?socket=/run/stackdrill/hv/hv2/libvirt-sock&command=/x",
     "(socket=, command=)"),
    ("qemu+unix:///session?socket=/run/stackdrill/hv/hv2/libvirt-sock", "(socket=)"),
    ("qemu+unix:///system", "transport 'qemu+unix' is not allowed"),
    ("qemu+tcp://cmp1/system", "transport 'qemu+tcp'"),
    ("qemu+libssh2://cmp1/system", "transport 'qemu+libssh2'"),
    ("xen:///system", "transport 'xen'"),
    ("qemu+ssh://cmp1/system?keyfile=/root/.ssh/id", "query parameters (keyfile=)"),
    ("qemu+ssh://cmp1/system?netcat=/tmp/nc", "query parameters (netcat=)"),
    ("qemu+tls://cmp1/system?no_verify=1", "query parameters (no_verify=)"),
    ("qemu+tls://cmp1/system?pkipath=/tmp", "query parameters (pkipath=)"),
    ("test:///default?command=/bin/sh", "query parameters (command=)"),
    ("qemu:///system?foo=1", "query parameters (foo=)"),
    ("qemu+ssh://-oProxyCommand=x/system", "is not a host name"),
    ("qemu+ssh://a:secret@cmp1/system", "password"),
    ("qemu+ssh://cmp1/session", "reached at /system"),
    ("qemu+ssh://cmp1/system\n", "not a libvirt URI"),
    ("qemu://cmp1/system", "the local qemu driver"),
    ("test://cmp1/default", "the test driver"),
])
def test_other_uris_are_refused_at_their_path(uri: str, says: str) -> None:
    (found,) = problems(with_(("hosts", 1, "libvirt_uri"), uri))
    assert found.startswith("hosts[1].libvirt_uri: ")
    assert says in found


def test_parameters_need_the_users_own_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    data = with_(("hosts", 1, "libvirt_uri"), "qemu+ssh://cmp1/system?keyfile=/k")
    assert problems(data)
    monkeypatch.setenv(ALLOW_PARAMS_ENV, "1")
    assert parse_topology(data, "t.yaml").hosts[1].libvirt_uri
    # the opt-in lifts parameters, not transports
    assert problems(with_(("hosts", 1, "libvirt_uri"), "qemu+ext:///system?command=/x"))


# --- 3. whole-name matches -----------------------------------------------------------------

@pytest.mark.parametrize(("path", "value"), [
    (("instances", 0, "mac"), "fa:16:3e:00:00:01\n"),
    (("hosts", 0, "name"), "a\n"),
    (("name",), "t\n"),
    (("instances", 0, "ip"), "192.168.0.5\n"),
])
def test_a_trailing_newline_is_not_part_of_a_name(path: tuple[str | int, ...],
                                                   value: str) -> None:
    """`$` with Python's re.match accepts "x\\n"; pydantic-core's regex (Rust) does not:
    both kinds of pattern are held to whole names."""
    found = problems(with_(path, value))
    where = ".".join(str(p) for p in path).replace(".0", "[0]")
    assert any(line.startswith(f"{where}: ") for line in found), found


# --- 4. LVM's naming rules -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "says"), [
    ("snapshot1", "starting 'snapshot' are reserved"), ("pvmove0", "starting 'pvmove'"),
])
def test_volume_names_follow_lvms_lv_rules(name: str, says: str) -> None:
    (found,) = problems(with_(("volumes", 0, "name"), name) | {
        "instances": [{"name": "i1", "flavor": "m1", "host": "a", "volumes": [name]}]})
    assert found.startswith("volumes[0].name: ") and says in found


@pytest.mark.parametrize(("name", "problem"), [
    ("lv0", None), ("my_lv+1.a-b", None), ("-lv", "starts with '-'"), (".", "not an LVM"),
    ("..", "not an LVM"), ("", "empty"), ("a/b", "characters LVM refuses"),
    ("lv;rm -rf /", "characters LVM refuses"), ("x" * 127, None), ("x" * 128, "at most 127"),
    ("data_mlog", "'_mlog'"), ("a_rimage_0", "'_rimage'"), ("snapshot", "'snapshot'"),
    ("lv\n", "characters LVM refuses"), ("é", "characters LVM refuses"),
])
def test_lv_name_rules(name: str, problem: str | None) -> None:
    found = lv_name_problem(name)
    assert (found is None) if problem is None else (problem in str(found))


def test_vg_names_have_no_reserved_lv_words() -> None:
    assert vg_name_problem("snapshot_mlog") is None
    assert "starts with '-'" in str(vg_name_problem("-vg"))


# --- 8. error paths keep keys that equal a union tag ---------------------------------------

@pytest.mark.parametrize(("path", "value", "where"), [
    (("drbd", 0, "size_gb"), "big", "drbd[0].size_gb"),
    (("instances", 0, "overlay"), 5, "instances[0].overlay"),
    (("overlays", 0, "vni"), "x", "overlays[0].vni"),
    (("drbd", 0, "drbd"), 1, "drbd[0].drbd"),
])
def test_error_paths_keep_keys_equal_to_a_union_tag(path: tuple[str | int, ...], value: object,
                                                    where: str) -> None:
    found = problems(with_(path, value))
    assert any(line.startswith(f"{where}: ") for line in found), found
