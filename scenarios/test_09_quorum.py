"""Scenario 9: a two-node corosync cluster loses a node, with and without two_node."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, drill


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer
def test_two_node_keeps_the_survivor_quorate(run_drill):
    """votequorum(5) two_node: one vote is quorum for a two-node cluster, so alice stays
    quorate once bob is fenced (manual fencing, acknowledged by the operator)."""
    report = run_drill(drill("quorum-two-node"))
    assert_passed(report)
    alice = report.state_after["quorum"]["drbd-pair"]["alice"]
    assert alice["quorate"] is True and alice["members"] == ["alice"]


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer
def test_without_two_node_the_survivor_loses_quorum(run_drill):
    """expected_votes 2 without two_node: quorum is floor(2/2)+1 = 2 votes, alice has one."""
    report = run_drill(drill("quorum-no-two-node"))
    assert_passed(report)
    alice = report.state_after["quorum"]["drbd-pair"]["alice"]
    assert alice["quorate"] is False
    assert alice["votes"] < alice["quorum"], alice


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer
def test_a_clean_leave_is_not_fenced_and_the_node_rejoins(run_drill):
    """dlm_controld fences only nodes lost with CPG NODEDOWN/PROCDOWN (daemon_cpg.c
    confchg_cb_daemon): bob stops its stack cleanly, alice keeps quorum and her VG lock
    under manual fencing with nobody acknowledging a fence; bob rejoins and changes the VG."""
    report = run_drill(drill("cluster-clean-leave"))
    assert_passed(report)
    alice = report.state_after["quorum"]["drbd-pair"]["alice"]
    assert alice["members"] == ["alice", "bob"] and alice["fencing_pending"] == []
