"""Scenario 5: dual-primary DRBD + LVM, concurrent metadata changes from both nodes."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drill


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm
def test_clustered_locking_keeps_the_vg_consistent_on_both_hosts(run_drill):
    """clvmd (locking_type 3) serialises the lvcreate/lvextend: both hosts end with the
    same metadata (seqno and LV list) and every new LV is there."""
    report = run_drill(drill("clvm-concurrent"))
    assert_passed(report)
    views = {v["host"]: v for v in report.state_after["lvm"] if v["vg"] == "vg-shared"}
    assert set(views) == {"alice", "bob"}
    assert views["alice"]["seqno"] == views["bob"]["seqno"]
    assert views["alice"]["lvs"] == views["bob"]["lvs"]
    assert {"data-a", "data-b", "data-c", "lv-vm1"} <= set(views["alice"]["lvs"])
    assert_sim_agrees(report, run_drill)


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer
def test_local_locking_damage_is_detected_and_names_the_colliding_lvs(run_drill):
    """The seed's warning: with local locking both lvcreate calls succeed on the shared
    PV; the LVM check, comparing what each host has mapped, finds two LVs on one extent
    range. The drill passes because the damage is detected."""
    report = run_drill(drill("lvm-local-race"))
    assert_passed(report)
    detail = check(report, "lvm_consistent[vg-shared]").detail
    assert detail.startswith("detected as expected"), detail
    assert "data-a" in detail and "data-b" in detail and "share PE" in detail, detail
