"""Scenario 4: storage mirrored on two compute nodes, recovery onto a third one."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, drill, instance


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer  # mirrored-compute on 4 guests: ~10 min on libvirt, nightly
def test_the_instance_that_does_not_fit_on_the_mirror_runs_on_cmp3_attached_remotely(run_drill):
    """cmp2 (the surviving replica) has room for one guest only; the other goes to cmp3,
    which holds no copy, so its volume must be attached remotely to cmp2's replica."""
    report = run_drill(drill("third-node"))
    assert_passed(report)
    local, remote = instance(report, "inst-a"), instance(report, "inst-b")
    assert (local.host_after, local.attach_mode) == ("cmp2", "local")
    assert (remote.host_after, remote.attach_mode) == ("cmp3", "remote")
    assert local.lost_writes == remote.lost_writes == 0
    assert_sim_agrees(report, run_drill)


@pytest.mark.backends("sim")
def test_without_a_third_node_the_guest_returns_with_its_host_attached_to_the_new_primary(
        run_drill):
    """cmp3 is dead too: the guest without room waits, and when cmp1 powers on again it
    runs there, attached remotely to cmp2, Primary for the other guest now (a
    single-primary resource cannot be promoted on cmp1 as well)."""
    report = run_drill(drill("third-node-gone"))
    assert_passed(report)
    moved, waited = instance(report, "inst-a"), instance(report, "inst-b")
    assert (moved.host_after, moved.attach_mode) == ("cmp2", "local")
    assert (waited.host_after, waited.state, waited.attach_mode) == ("cmp1", "resumed", "remote")
    assert report.state_after["drbd"]["r0"]["cmp2"]["role"] == "Primary"
