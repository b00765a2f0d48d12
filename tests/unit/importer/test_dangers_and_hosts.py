"""The danger fixtures import as the setting says (the dangers pass reads these
topologies after the merge), and per-host trees are read per host."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stackdrill.cli import cli
from stackdrill.errors import InputError
from stackdrill.importer import UnmappedKind, import_config
from stackdrill.topology import Locking, parse_topology

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
DANGERS = FIXTURES / "dangers"


def test_dual_primary_without_allow_is_imported_as_dual_primary() -> None:
    """DRBD brings such a resource up and refuses the second promotion: the topology
    keeps both Primaries without the permission (the dangers pass flags it), and the
    primaries come from the operator's become-primary-on line."""
    result = import_config(DANGERS / "dual-primary-without-allow")
    res = result.topology.drbd[0]
    assert res.primary == ("alice", "bob") and res.allow_two_primaries is False
    assert str(result.origin("drbd[0].primary")) == "alice/etc/drbd.d/r0.res:15"


def test_overlay_mtu_over_the_underlay_is_imported_as_set() -> None:
    """The kernel runs it (and black-holes full-size frames): imported, not refused, with
    the MTU traced to the operator's .netdev."""
    result = import_config(DANGERS / "overlay-mtu-over-underlay")
    assert result.topology.overlays[0].mtu == 1500
    assert str(result.origin("overlays[0].mtu")).startswith(
        "box1/etc/systemd/network/30-br-ov.netdev")


@pytest.mark.parametrize(("danger", "field", "value"), [
    ("fencing-dont-care-dual-primary", "fencing", "dont-care"),
    ("after-sb-1pri-discard-secondary", "after_sb_1pri", "discard-secondary"),
])
def test_drbd_dangers_reach_the_topology(danger: str, field: str, value: str) -> None:
    res = import_config(DANGERS / danger).topology.drbd[0]
    assert getattr(res, field) == value
    assert res.primary == ("alice", "bob")


def test_a_two_node_cluster_without_two_node() -> None:
    cluster = import_config(DANGERS / "two-node-cluster-without-two-node").topology.clusters[0]
    assert cluster.nodes == ("alice", "bob") and cluster.two_node is False


def test_one_hosts_local_locking_makes_the_shared_vg_local() -> None:
    result = import_config(DANGERS / "local-locking-on-shared-drbd")
    topo = result.topology
    assert topo.volume_group("vg-shared").locking is Locking.LOCAL
    assert topo.drbd[0].primary == ("alice", "bob")  # still used from both nodes
    note = next(u for u in result.unmapped if u.option == "locking")
    assert note.kind is UnmappedKind.MODELLED_DIFFERENTLY
    assert "alice: lvmlockd, bob: local" in note.why
    assert str(result.origin("volume_groups[0].locking")) == "bob/etc/lvm/lvm.conf:10"


def test_hosts_whose_resource_definitions_differ_are_wrong(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "two-node-clvm", cfg)
    res = cfg / "bob/etc/drbd.d/r0.res"
    res.write_text(res.read_text().replace("timeout 60;", "timeout 90;"))
    result = import_config(cfg)
    assert [(u.option, u.kind) for u in result.wrong] == [("resource r0", UnmappedKind.WRONG)]
    assert result.topology.drbd[0].net.timeout == 60  # alice's, the first host's


def test_an_absolute_include_reads_the_hosts_own_tree(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "two-node-clvm", cfg)
    for host in ("alice", "bob"):
        (cfg / host / "etc/drbd.conf").write_text(
            'include "/etc/drbd.d/global_common.conf";\ninclude "/etc/drbd.d/*.res";\n')
    ours = import_config(cfg).topology
    assert ours.drbd == import_config(FIXTURES / "two-node-clvm").topology.drbd
    assert ours.drbd[0].verify_alg == "sha1"  # from global_common.conf, included by absolute path


def test_a_file_name_with_a_carriage_return_cannot_inject_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "overlay", cfg)
    qemu = cfg / "box1/etc/libvirt/qemu"
    (qemu / "web1.xml").rename(qemu / "x\rname: evil\r.xml")
    out = tmp_path / "t.yaml"
    run = CliRunner().invoke(cli, ["import", str(cfg), "-o", str(out)])
    assert run.exit_code == 0, run.output
    written = yaml.safe_load(out.read_text())
    assert written["name"] == "cfg"
    assert parse_topology(written, str(out)) == import_config(cfg).topology


def test_json_lists_the_mapping_and_the_unmapped() -> None:
    run = CliRunner().invoke(cli, ["import", str(FIXTURES / "nova-drbd"), "--json"])
    assert run.exit_code == 0
    data = json.loads(run.stdout)
    mapped = {m["path"]: m for m in data["mapped"]}
    assert mapped["drbd[0].fencing"]["value"] == "resource-only"
    assert mapped["drbd[0].fencing"]["source"] == {
        "file": "sto1/etc/drbd.d/global_common.conf", "line": 11, "key": None}
    kinds = {u["option"]: u["kind"] for u in data["unmapped"]}
    assert kinds["net/max-buffers"] == "ignored"
    assert kinds["handlers/split-brain"] == "modelled-differently"



def test_a_resource_on_a_host_without_a_directory_is_one_error(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "two-node-clvm", cfg)
    shutil.rmtree(cfg / "bob")
    with pytest.raises(InputError) as caught:
        import_config(cfg)
    assert str(caught.value) == ("alice/etc/drbd.d/r0.res:21: resource r0: `on 'bob'` is "
                                 "none of CONFIG_DIR's host directories")


def test_a_validation_problem_names_the_operators_file(tmp_path: Path) -> None:
    """LVs larger than their DRBD device: the topology's error points at the lvs report
    it came from (this check stays whatever the dangers pass turns from errors into
    flagged dangers)."""
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "two-node-clvm", cfg)
    lvs = cfg / "alice/commands/lvs.json"
    lvs.write_text(lvs.read_text().replace('"lv_size":"10.00"', '"lv_size":"60.00"'))
    with pytest.raises(InputError) as caught:
        import_config(cfg)
    assert str(caught.value).endswith(
        "volume_groups[0]: capacity exceeded: volumes need 120 GB, the PV has 90 GB "
        "(from alice/commands/vgs.json#vg[vg-shared])")
