"""Scenario 6: the replication link between dual-primary peers is cut while both write.

Each after-sb policy behaves as drbd.conf(5) documents; the sim follows the 8.4 kernel's
drbd_sync_handshake and drbd_asb_recover_0p/1p/2p."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drbd_after, drill, instance

pytestmark = pytest.mark.backends("sim", "libvirt")


@pytest.mark.vm
def test_after_sb_2pri_disconnect_leaves_both_standalone(run_drill):
    """after-sb-2pri disconnect: split brain detected on reconnect, no automatic
    resolution, both nodes StandAlone until an operator discards one side."""
    report = run_drill(drill("split-brain"))
    assert_passed(report)
    assert check(report, "drbd[r0]").ok
    for host in ("alice", "bob"):
        assert drbd_after(report, "r0", host) == ("Primary", "UpToDate", "StandAlone")
    assert_sim_agrees(report, run_drill)


@pytest.mark.vm_peer
def test_after_sb_0pri_discard_zero_changes_resyncs_the_unchanged_side(run_drill):
    """after-sb-0pri discard-zero-changes: no primary at reconnect and bob wrote nothing,
    so bob is overwritten from alice and they reconnect on their own; nothing is lost."""
    report = run_drill(drill("split-brain-0pri"))
    assert_passed(report)
    assert drbd_after(report, "r0", "bob")[1:] == ("UpToDate", "Connected")
    assert drbd_after(report, "r0", "alice") == ("Primary", "UpToDate", "Connected")
    assert instance(report, "vm1").lost_writes == 0 and instance(report, "vm1").acked_writes > 0


@pytest.mark.vm_peer
def test_after_sb_1pri_discard_secondary_throws_away_the_secondarys_writes(run_drill):
    """after-sb-1pri discard-secondary: the Secondary (bob) becomes SyncTarget, so vm2's
    acknowledged writes on bob during the split are gone and vm1's (on alice) all kept."""
    report = run_drill(drill("split-brain-1pri"))
    assert_passed(report)
    assert drbd_after(report, "r0", "bob") == ("Secondary", "UpToDate", "Connected")
    vm1, vm2 = instance(report, "vm1"), instance(report, "vm2")
    assert vm1.lost_writes == 0
    assert 0 < vm2.lost_writes < vm2.acked_writes, (vm2.lost_writes, vm2.acked_writes)


@pytest.mark.vm_peer
def test_after_sb_2pri_violently_as0p_is_refused_for_a_primary_sync_target(run_drill):
    """after-sb-2pri violently-as0p picks bob (no changes) as the victim, but bob is still
    Primary and rr-conflict (default disconnect) refuses to make a Primary SyncTarget:
    bob drops the connection (StandAlone), alice keeps trying (WFConnection), no data
    overwritten under a running guest."""
    report = run_drill(drill("split-brain-2pri"))
    assert_passed(report)
    assert drbd_after(report, "r0", "alice") == ("Primary", "UpToDate", "WFConnection")
    assert drbd_after(report, "r0", "bob") == ("Primary", "UpToDate", "StandAlone")
    assert check(report, "acked_writes").data["lost"] == 0
    assert_sim_agrees(report, run_drill)


@pytest.mark.vm_peer
def test_resource_and_stonith_fencing_prevents_the_split_brain(run_drill):
    """fencing resource-and-stonith: each primary freezes I/O and the cluster shoots one
    peer, so the two sides never diverge: no split brain, no acknowledged write lost. On
    guests the shot comes from inside: DRBD's handler and dlm_controld call the lab's
    fence agent; alice (node id 1) wins the race, as on the simulator."""
    report = run_drill(drill("split-brain-stonith"))
    assert_passed(report)
    assert not any(f.get("split_brain") for f in report.state_after["drbd"]["r0"].values())
    assert report.state_after["power"] == {"alice": "on", "bob": "off"}, "who was shot"
    assert report.state_after["drbd"]["r0"]["alice"]["peer_disk"] == "Outdated"
    assert check(report, "acked_writes").data["lost"] == 0
    assert_sim_agrees(report, run_drill)
