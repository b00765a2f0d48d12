"""`stackdrill verify --lab NAME` judges the lab now with the drill judge's checkers: the
same check names and meanings as a drill's report, and a declared check that cannot run
(a volume group no host can read) fails instead of disappearing from the table."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.checks import check_names, verify_now
from stackdrill.cli import cli
from stackdrill.topology import load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


def sd(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))


def test_a_healthy_lab_passes_every_check_by_its_drill_name() -> None:
    assert sd("up", str(TOPOLOGIES / "two-node-clvm.yaml"), "--lab", "v1")[0] == 0
    sd("wait", "60", "--lab", "v1")
    code, out = sd("verify", "--lab", "v1")
    assert code == 0, out
    for name in ("exactly_once", "acked_writes", "lvm_consistent[vg-shared]"):
        assert name in out


def test_a_clustered_vg_nobody_can_read_fails_verify() -> None:
    """The cluster link is cut: the DLM waits for fencing, `vgs` hangs on both nodes. The
    guests still run and write, but nothing says the VG is intact (the old verify passed)."""
    sd("up", str(TOPOLOGIES / "two-node-clvm.yaml"), "--lab", "v2")
    sd("inject", "partition", "groups=alice|bob", "network=eth1", "--lab", "v2")
    sd("wait", "60", "--lab", "v2")
    code, out = sd("verify", "--lab", "v2")
    assert code == 1
    assert "lvm_consistent[vg-shared]" in out
    assert "never ran: no LVM view" in out


def test_both_storage_hosts_down_is_not_a_passing_lab() -> None:
    """Both DRBD nodes under the VG crashed: verify must not say all is well."""
    sd("up", str(TOPOLOGIES / "nova-drbd.yaml"), "--lab", "v3")
    sd("inject", "host_crash", "host=sto1", "power_back=false", "--lab", "v3")
    sd("inject", "host_crash", "host=sto2", "power_back=false", "--lab", "v3")
    sd("wait", "10", "--lab", "v3")
    code, out = sd("verify", "--lab", "v3")
    assert code == 1
    assert "lvm_consistent[cinder-volumes]" in out and "FAIL" in out


def test_verify_checks_each_volume_group_only_where_lvm_is_observable() -> None:
    topology = load_topology(TOPOLOGIES / "drbd-pair-overlay.yaml")
    assert check_names(verify_now(topology, observes_lvm=True)) == [
        "exactly_once", "acked_writes", "lvm_consistent[vg-a]", "lvm_consistent[vg-b]"]
    assert check_names(verify_now(topology, observes_lvm=False)) == [
        "exactly_once", "acked_writes"]
