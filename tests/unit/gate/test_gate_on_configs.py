"""The gate on an operator's configuration directory (issue 18): the seed's three
stories, written as real files under fixtures/, import and pass every applicable drill on
the simulator; each dangerous variant fails, on the drill that demonstrates its danger;
an import that would be wrong runs nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli
from stackdrill.dangers import DangerCode
from stackdrill.gate.builders import standard_drills
from stackdrill.gate.plan import GateDrill
from stackdrill.importer import import_config

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"


def gate(*args: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(cli, ["gate", *args, "--json", "-q"])
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, report, result.stderr


def verdicts(report: dict[str, object]) -> dict[str, str]:
    results = report["results"]
    assert isinstance(results, list)
    return {r["name"]: r["verdict"] for r in results}


@pytest.mark.parametrize("story", ["overlay", "two-node-clvm", "nova-drbd"])
def test_the_seed_stories_pass_the_gate_from_their_config_files(story: str) -> None:
    code, report, err = gate(str(FIXTURES / story))
    assert code == 0, err
    shown = verdicts(report)
    assert len(shown) == 7 and set(shown.values()) <= {"PASS", "NOT APPLICABLE"}, shown
    assert "PASS" in shown.values()
    assert str(report["topology_source"]).endswith("(imported)")


def test_the_overlay_story_checks_the_overlay_not_writes_it_does_not_make() -> None:
    """Its instances have no volumes: host loss checks that the lost host's instance is
    reachable at the overlay's MTU before and after, and asks for no acknowledged writes
    (a check with nothing to check would fail the gate for nothing)."""
    topology = import_config(FIXTURES / "overlay").topology
    [loss] = [p for p in standard_drills(topology) if p.name == "host-loss"]
    assert isinstance(loss, GateDrill)
    checks = [e.check for e in loss.drill.spec.expect]
    assert "overlay" in checks and "acked_writes" not in checks


@pytest.mark.parametrize(("fixture", "code"), [
    ("dual-primary-without-allow", DangerCode.DRBD_DUAL_PRIMARY_NOT_ALLOWED),
    ("two-primaries-protocol-a", DangerCode.DRBD_DUAL_PRIMARY_NOT_PROTOCOL_C),
    ("fencing-dont-care-dual-primary", DangerCode.DRBD_DUAL_PRIMARY_FENCING_DONT_CARE),
    ("after-sb-1pri-discard-secondary", DangerCode.DRBD_AFTER_SB_1PRI_DISCARD_SECONDARY),
    ("two-node-cluster-without-two-node", DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE),
    ("local-locking-on-shared-drbd", DangerCode.LVM_LOCAL_LOCKING_ON_SHARED_VG),
    ("overlay-mtu-over-underlay", DangerCode.OVERLAY_MTU_OVER_UNDERLAY),
])
def test_a_dangerous_config_fails_the_gate_on_its_danger_drill(fixture: str,
                                                              code: DangerCode) -> None:
    name = f"danger-{code.value}"
    code_, report, err = gate(str(FIXTURES / "dangers" / fixture), "--only", name)
    assert code_ == 1, err
    assert verdicts(report) == {name: "FAIL"}


def test_an_import_that_would_be_wrong_runs_no_drill(tmp_path: Path) -> None:
    cfg = tmp_path / "pair"
    shutil.copytree(FIXTURES / "two-node-clvm", cfg)
    for host in ("alice", "bob"):
        (cfg / host / "var/lib/pacemaker/cib/cib.xml").unlink()
    result = CliRunner().invoke(cli, ["gate", str(cfg)])
    assert result.exit_code == 2
    assert "not mapped, the topology would be wrong" in result.stderr
    assert "no Pacemaker CIB" in result.stderr and "host-loss" not in result.stdout
    assert "Traceback" not in result.output
