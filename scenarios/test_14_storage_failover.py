"""Scenario 14: the DRBD storage primary dies; the surviving replica takes over its volumes."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, check, drbd_after, drill


@pytest.mark.backends("sim")
def test_every_guest_writes_again_through_the_promoted_secondary(run_drill):
    """Pacemaker's job: fence sto1, promote sto2 (protocol C: it has every acknowledged
    write) and re-export the volumes; each guest reconnects on its own host, exactly once."""
    report = run_drill(drill("storage-primary-loss"))
    assert_passed(report)
    assert check(report, "acked_writes").data["lost"] == 0
    assert report.state_after["power"]["sto1"] == "off"
    assert drbd_after(report, "r0", "sto2")[:2] == ("Primary", "UpToDate")
    fewest = min(i.acked_writes for i in report.instances)
    for inst in report.instances:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
        assert inst.host_after == inst.host_before, f"{inst.name} moved to {inst.host_after}"
    # writing until the end, not just up to the crash at t=60 (one write per 2 s)
    assert fewest > 60 / 2 + 100, f"guests stopped writing after the failover ({fewest} acked)"


@pytest.mark.backends("sim")
def test_a_reattach_that_failed_verification_is_tried_again(run_drill):
    """db2's reattach on cmp3 cannot be verified while cmp3's tunnel endpoint is down;
    the attempt is reverted, and the next one moves db2 off the host it failed on (to
    cmp2, whose overlay works) and it writes, instead of staying 'active' in the
    inventory with nothing running it, or being restarted and undone on cmp3 again."""
    report = run_drill(drill("reattach-retry"))
    assert_passed(report)
    db2 = next(i for i in report.instances if i.name == "db2")
    assert (db2.state, db2.host_after, db2.lost_writes) == ("recovered", "cmp2", 0)
    attempts = [e for e in report.timeline if e.lane == "instance:db2" and e.label == "storage"]
    assert len(attempts) >= 2, "the drill no longer makes the first reattach fail"


@pytest.mark.backends("sim")
def test_a_flow_whose_volume_server_is_fenced_gives_its_slot_to_the_failover(run_drill):
    """One flow slot: app2's evacuation is verifying against sto1 when sto1 is fenced. The
    flow is undone and retried on sto2 instead of waiting minutes for I/O that never comes,
    so the failover runs and every guest writes again before the end."""
    report = run_drill(drill("storage-lost-mid-flow"))
    assert_passed(report)
    for inst in report.instances:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
    assert drbd_after(report, "r0", "sto2")[:2] == ("Primary", "UpToDate")


@pytest.mark.backends("sim")
def test_a_reattach_on_a_returned_host_plugs_the_guests_port_again(run_drill):
    """cmp1 returned and was cleaned of its evacuated guests; the storage failover restarts
    them there on a path to sto2. Like Nova's hard reboot it plugs their VIFs again: they
    are reachable on the overlay, verified, and write until the end."""
    report = run_drill(drill("reattach-returned-host"))
    assert_passed(report)
    for inst in report.instances:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
