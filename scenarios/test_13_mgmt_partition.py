"""Scenario 13: a management-only partition isolates a healthy compute host."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drill, from_host


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer  # the whole nova-drbd lab on 6 guests: ~12 min on libvirt, nightly
def test_isolated_but_healthy_host_is_not_evacuated(run_drill):
    """Missed heartbeats alone are not a host failure: cmp2's storage and tunnel links and
    its power controller say it is alive, so the engine must neither fence nor evacuate it
    (the false host-down that has bitten Masakari operators)."""
    report = run_drill(drill("mgmt-partition"))
    assert_passed(report)
    assert check(report, "not_evacuated").ok
    assert report.state_after["power"]["cmp2"] == "on"
    assert all(i.host_after == "cmp2" for i in from_host(report, "cmp2"))
    fenced = [e for e in report.timeline if e.lane == "fencing" and "cmp2" in e.label]
    assert not fenced, fenced
    assert_sim_agrees(report, run_drill)


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer  # the whole nova-drbd lab on 6 guests: ~13 min on libvirt, nightly
def test_with_fence_on_isolation_the_host_is_fenced_before_evacuation(run_drill):
    """When the drill's policy is to fence an isolated host, cmp2 is powered off first and
    only then are its guests started elsewhere: exactly once, nothing lost."""
    report = run_drill(drill("mgmt-partition-fence"))
    assert_passed(report)
    assert report.state_after["power"]["cmp2"] == "off"
    assert all(i.host_after not in (None, "cmp2") for i in from_host(report, "cmp2"))
    assert check(report, "fencing_order").ok
    assert_sim_agrees(report, run_drill)


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer
def test_a_host_that_reboots_unseen_gets_its_guests_back_in_place(run_drill):
    """While the controller is cut off from every compute host, cmp1 reboots; its DRBD
    comes back Secondary, so it must not resume its guests itself. Nobody is fenced, and
    the engine starts them again on cmp1 once it sees them stopped: each exactly once,
    nothing lost, none left 'active' in the inventory with nothing running it."""
    report = run_drill(drill("host-reboot"))
    assert_passed(report)
    assert all(i.host_after == "cmp1" and i.state == "resumed" for i in from_host(report, "cmp1"))
    assert not [e for e in report.timeline if e.lane == "fencing"]
