"""The seed's three stories import into topologies that validate and that a sim drill
runs on; what is not mapped is reported, and exit 2 only when it makes the result wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackdrill.cli import cli
from stackdrill.errors import InputError
from stackdrill.importer import UnmappedKind, drbdadm, import_config
from stackdrill.topology import Locking, load_topology

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"


def test_two_node_clvm_maps_the_seeds_settings() -> None:
    result = import_config(FIXTURES / "two-node-clvm")
    topo = result.topology
    res = topo.drbd_resource("r0")
    assert res.nodes == ("alice", "bob") and res.primary == ("alice", "bob")
    assert res.allow_two_primaries and res.protocol == "C"
    assert (res.after_sb_0pri, res.fencing, res.size_gb) == (
        "discard-zero-changes", "resource-and-stonith", 90)
    assert topo.volume_group("vg-shared").locking is Locking.LVMLOCKD
    cluster = topo.clusters[0]
    assert (cluster.nodes, cluster.two_node, cluster.network) == (("alice", "bob"), True, "eth1")
    assert [(i.name, i.host, i.volumes) for i in topo.instances] == [
        ("vm1", "alice", ("lv-vm1",)), ("vm2", "bob", ("lv-vm2",))]
    assert str(result.origin("drbd[0].after_sb_0pri")) == "alice/etc/drbd.d/r0.res:10"
    assert str(result.origin("drbd[0].protocol")) == "alice/etc/drbd.d/global_common.conf:20"
    assert result.wrong == ()


def test_nova_drbd_places_instances_from_the_nova_export() -> None:
    topo = import_config(FIXTURES / "nova-drbd").topology
    assert {(i.name, i.host, i.ip, i.volumes) for i in topo.instances} == {
        ("web1", "cmp1", "192.168.87.11", ("vol-web1",)),
        ("db1", "cmp1", "192.168.87.13", ("vol-db1",)),
        ("web2", "cmp2", "192.168.87.12", ("vol-web2",)),
        ("db2", "cmp3", "192.168.87.14", ("vol-db2",))}
    assert topo.drbd_resource("cinder").primary == ("sto1",)  # from sto1's /proc/drbd
    assert topo.overlay("tenant").vni == 1001
    assert topo.volume_group("cinder-volumes").locking is Locking.LOCAL
    assert {h.name for h in topo.hosts if h.roles == ("compute",)} == {"cmp1", "cmp2", "cmp3"}


def test_overlay_takes_guest_ips_from_dnsmasq_and_the_subnet_from_the_bridge() -> None:
    result = import_config(FIXTURES / "overlay")
    ov = result.topology.overlays[0]
    assert (ov.vni, ov.mtu, ov.cidr, ov.network) == (42, 1450, "192.168.87.0/24", "eth0")
    web1 = result.topology.instance("web1")
    assert (web1.mac, web1.ip) == ("52:54:00:87:00:01", "192.168.87.11")
    assert str(result.origin("instances[0].ip")) == "ctl1/etc/dnsmasq.d/overlay.conf:5"


def test_protocol_a_with_two_primaries_is_imported_as_set() -> None:
    """DRBD refuses these net options at `drbdadm up` and the lab does the same (the
    resource stays StandAlone; the dangers pass flags it): the import keeps them."""
    result = import_config(FIXTURES / "dangers/two-primaries-protocol-a")
    res = result.topology.drbd[0]
    assert res.protocol == "A" and res.allow_two_primaries is True
    assert str(result.origin("drbd[0].protocol")) == "alice/etc/drbd.d/r0.res:10"


def _copy(tmp_path: Path, story: str) -> Path:
    target = tmp_path / story
    shutil.copytree(FIXTURES / story, target)
    return target


def test_an_unknown_drbd_option_is_wrong_and_exits_2(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine without drbd-utils the built-in parser reports it as `wrong`."""
    monkeypatch.setattr(drbdadm, "drbdadm_path", lambda: None)
    cfg = _copy(tmp_path, "two-node-clvm")
    for host in ("alice", "bob"):
        res = cfg / host / "etc/drbd.d/r0.res"
        res.write_text(res.read_text().replace("timeout 60;", "timeout 60;\n\t\trr-conflict "
                                               "disconnect;\n\t\tmade-up-option 3;"))
    out = CliRunner().invoke(cli, ["import", str(cfg), "-o", str(tmp_path / "t.yaml")])
    assert out.exit_code == 2, out.output
    assert "alice/etc/drbd.d/r0.res:15: net/made-up-option: wrong:" in out.output
    assert "net/rr-conflict: modelled-differently" in out.output
    assert (tmp_path / "t.yaml").is_file()  # written anyway, for the operator to read


@pytest.mark.skipif(drbdadm.drbdadm_path() is None, reason="drbd-utils not installed")
def test_drbdadm_refuses_an_option_drbd_does_not_know(tmp_path: Path) -> None:
    cfg = _copy(tmp_path, "two-node-clvm")
    res = cfg / "alice/etc/drbd.d/r0.res"
    res.write_text(res.read_text().replace("timeout 60;", "timeout 60;\n\t\tmade-up-option 3;"))
    out = CliRunner().invoke(cli, ["import", str(cfg)])
    assert out.exit_code == 2
    assert "alice/etc/drbd.conf: drbdadm: " in out.output and "made-up-option" in out.output


def test_a_known_option_the_lab_models_differently_is_named_and_exits_0(tmp_path: Path) -> None:
    cfg = _copy(tmp_path, "two-node-clvm")
    for host in ("alice", "bob"):
        res = cfg / host / "etc/drbd.d/r0.res"
        res.write_text(res.read_text().replace("timeout 60;", "timeout 60;\n\t\trr-conflict "
                                               "disconnect;"))
    result = import_config(cfg)
    found = [u for u in result.unmapped if u.option == "net/rr-conflict"]
    assert found and found[0].kind is UnmappedKind.MODELLED_DIFFERENTLY
    out = CliRunner().invoke(cli, ["import", str(cfg), "-o", str(tmp_path / "t.yaml")])
    assert out.exit_code == 0 and "net/rr-conflict: modelled-differently" in out.output


def test_a_quorum_option_the_lab_lacks_exits_2(tmp_path: Path) -> None:
    cfg = _copy(tmp_path, "two-node-clvm")
    for host in ("alice", "bob"):
        conf = cfg / host / "etc/corosync/corosync.conf"
        conf.write_text(conf.read_text().replace("two_node: 1",
                                                 "two_node: 1\n\tauto_tie_breaker: 1"))
    out = CliRunner().invoke(cli, ["import", str(cfg), "-o", str(tmp_path / "t.yaml")])
    assert out.exit_code == 2
    assert "quorum.auto_tie_breaker: wrong:" in out.output


DRILLS = {  # the story's own check: overlay reachability, clustered LVM, a host's loss
    "overlay": """duration_s: 100
schedule:
  - {at: 10, run: {tool: probe, src: web2, dst: web1, label: before}}
expect:
  - {check: overlay, probes: [before], mtu: 1450}
""",
    "two-node-clvm": """duration_s: 200
workload: {write_interval_s: 1}
schedule:
  - {at: 50, run: {tool: lvm, host: alice, op: lvcreate, vg: vg-shared, lv: data-a, extents: 256}}
  - {at: 50, run: {tool: lvm, host: bob, op: lvcreate, vg: vg-shared, lv: data-b, extents: 256}}
expect:
  - {check: lvm_consistent, vg: vg-shared}
  - {check: acked_writes, max_lost: 0}
""",
    "nova-drbd": """duration_s: 600
workload: {write_interval_s: 2}
schedule:
  - {at: 0, recover: {parallel: 4}}
  - {at: 60, inject: {kind: host_crash, host: cmp1, power_back: false}}
expect:
  - {check: exactly_once}
  - {check: acked_writes, max_lost: 0}
  - {check: recovered}
""",
}


@pytest.mark.parametrize("story", ["overlay", "two-node-clvm", "nova-drbd"])
def test_the_written_topology_runs_a_sim_drill_that_passes(tmp_path: Path, story: str) -> None:
    topo = tmp_path / f"{story}.yaml"
    out = CliRunner().invoke(cli, ["import", str(FIXTURES / story), "-o", str(topo)])
    assert out.exit_code == 0, out.output
    assert load_topology(topo) == import_config(FIXTURES / story).topology
    assert "# alice/etc/drbd.d/r0.res:9" in topo.read_text() or story != "two-node-clvm"
    drill = tmp_path / "drill.yaml"
    drill.write_text(f"name: imported\ntopology: {topo.name}\n{DRILLS[story]}")
    run = CliRunner().invoke(cli, ["run", str(drill), "-q"])
    assert run.exit_code == 0, run.output


@pytest.mark.parametrize(("rel", "content", "message"), [
    ("a/etc/drbd.conf", b"\xff\xfe resource", "not UTF-8"),
    ("a/etc/lvm/lvm.conf", b"x" * (2 << 20), "larger than 1024 KiB"),
    ("a/etc/corosync/corosync.conf", b"quorum {\n", "never closed"),
    ("a/etc/libvirt/qemu/x.xml", b"<domain><name>x</name>", "not XML"),
    ("a\nb/etc/drbd.conf", b"", "a host directory must be named like a host"),
    ("a;rm -rf/etc/drbd.conf", b"", "a host directory must be named like a host"),
])
def test_hostile_files_end_in_one_error_line(tmp_path: Path, rel: str, content: bytes,
                                             message: str) -> None:
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    out = CliRunner().invoke(cli, ["import", str(tmp_path)])
    assert out.exit_code == 2
    assert message in out.output and "Traceback" not in out.output


SYNTAX = [*'{};"#=[],:<>/&\\ \n\rabcon01.*', "\x00", "\u2028", "é"]
FILES = ["etc/drbd.conf", "etc/lvm/lvm.conf", "etc/corosync/corosync.conf",
         "etc/systemd/network/a.network", "etc/libvirt/qemu/a.xml", "commands/vgs.json",
         "proc/drbd"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rel=st.sampled_from(FILES), text=st.text(alphabet=st.sampled_from(SYNTAX), max_size=200))
def test_any_file_imports_or_fails_with_one_input_error(tmp_path: Path, rel: str,
                                                        text: str) -> None:
    """Whatever a file holds, the import ends in a result or in InputError lines (the CLI
    prints those as `file: path: problem`, exit 2), never another exception."""
    host = tmp_path / "h"
    if host.exists():
        shutil.rmtree(host)
    conf = host / rel
    conf.parent.mkdir(parents=True)
    conf.write_text(text)
    try:
        import_config(tmp_path)
    except InputError as exc:
        assert str(exc) and all(line.strip() for line in str(exc).splitlines())
