"""The cluster's fencing comes from the operator's Pacemaker CIB, never from a guess: the
DRBD fencing dangers only show (and the gate only fails) when the lab fences as the real
cluster does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli
from stackdrill.importer import UnmappedKind, import_config
from stackdrill.importer.files import ConfigError
from stackdrill.importer.pacemaker import parse_cib
from stackdrill.topology import ClusterFencing

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
CIB = """<cib><configuration><crm_config><cluster_property_set id="o">{prop}
</cluster_property_set></crm_config><resources>{res}</resources></configuration></cib>"""
OFF = '<nvpair id="s" name="stonith-enabled" value="false"/>'


def stonith(agent: str) -> str:
    return f'<primitive id="f-{agent}" class="stonith" type="{agent}"/>'


@pytest.mark.parametrize(("prop", "res", "fencing"), [
    (OFF, stonith("fence_ipmilan"), ClusterFencing.NONE),
    ("", "", ClusterFencing.NONE),  # enabled, but nothing to fence with
    ("", stonith("meatware"), ClusterFencing.MANUAL),
    ("", stonith("fence_ipmilan"), ClusterFencing.POWER),
    ("", stonith("meatware") + stonith("fence_ipmilan"), ClusterFencing.POWER),
    ('<nvpair id="s" name="stonith-enabled" value="true"/>', stonith("fence_virsh"),
     ClusterFencing.POWER),
])
def test_fencing_is_read_as_pacemaker_applies_it(prop: str, res: str,
                                                 fencing: ClusterFencing) -> None:
    assert parse_cib(CIB.format(prop=prop, res=res), "cib.xml").fencing is fencing


def test_a_hostile_or_foreign_cib_is_one_error() -> None:
    bomb = ('<!DOCTYPE cib [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            "<cib>&b;</cib>")
    for text in (bomb, "<domain/>", "<cib"):
        with pytest.raises(ConfigError):
            parse_cib(text, "cib.xml")


def test_the_story_fences_by_hand_as_the_seed_did() -> None:
    result = import_config(FIXTURES / "two-node-clvm")
    assert result.topology.clusters[0].fencing is ClusterFencing.MANUAL
    assert str(result.origin("clusters[0].fencing")).startswith(
        "alice/var/lib/pacemaker/cib/cib.xml")
    nova = import_config(FIXTURES / "nova-drbd").topology
    assert nova.clusters[0].fencing is ClusterFencing.POWER


def test_without_a_cib_the_fencing_is_reported_wrong_not_assumed(tmp_path: Path) -> None:
    cfg = tmp_path / "pair"
    shutil.copytree(FIXTURES / "two-node-clvm", cfg)
    for host in ("alice", "bob"):
        (cfg / host / "var/lib/pacemaker/cib/cib.xml").unlink()
    result = import_config(cfg)
    [note] = [u for u in result.unmapped if u.option == "fencing"]
    assert note.kind is UnmappedKind.WRONG and "assumed power" in note.why
    out = CliRunner().invoke(cli, ["import", str(cfg), "-o", str(tmp_path / "t.yaml")])
    assert out.exit_code == 2
    assert "fencing: wrong: no Pacemaker CIB" in out.output
