"""Scenario 14: the DRBD storage primary dies; the surviving replica takes over its volumes."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drbd_after, drill


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.parametrize("name", [
    # on guests (nightly, README "VM set budget"): the whole nova-drbd lab, 6 guests and a
    # 600 s drill (~15 min); nova-mini, 5 guests (~6 min with its comparison)
    pytest.param("storage-primary-loss", marks=pytest.mark.vm_peer),
    pytest.param("vm-storage-primary-loss", marks=pytest.mark.vm_peer),
])
def test_every_guest_writes_again_through_the_promoted_secondary(run_drill, name):
    """Pacemaker's job: fence sto1, promote sto2 (protocol C: it has every acknowledged
    write) and re-export the volumes; each guest reconnects on its own host, exactly once.
    vm-storage-primary-loss is the same on nova-mini: on real guests each compute host
    logs in to sto2's LIO target and ends its dead session to sto1, failing the writes
    that were queued on it (a guest restarted on the dead session's disk never writes
    again)."""
    report = run_drill(drill(name))
    assert_passed(report)
    assert check(report, "acked_writes").data["lost"] == 0
    assert report.state_after["power"]["sto1"] == "off"
    assert drbd_after(report, "r0", "sto2")[:2] == ("Primary", "UpToDate")
    fewest = min(i.acked_writes for i in report.instances)
    for inst in report.instances:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
        assert inst.host_after == inst.host_before, f"{inst.name} moved to {inst.host_after}"
    # writing until the end, not just up to the crash (one write per 2 s)
    crash = next(f.at for f in report.faults if f.kind == "host_crash")
    assert fewest > crash / 2 + (report.duration - crash) / 4, \
        f"guests stopped writing after the failover ({fewest} acked)"
    assert_sim_agrees(report, run_drill)


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


@pytest.mark.backends("sim")
def test_guests_reattach_to_the_held_replica_when_it_returns(run_drill):
    """A wide partition: the engine fences sto1 and holds sto2 (the last replica); db2's
    reattachment fails while sto2 is away. When sto2 rejoins, db2 is reattached to it and
    writes again, instead of running on a dead path to the end."""
    report = run_drill(drill("held-replica-returns"))
    assert_passed(report)
    db2 = next(i for i in report.instances if i.name == "db2")
    assert (db2.state, db2.host_after, db2.lost_writes) == ("recovered", "cmp3", 0)
    assert drbd_after(report, "r0", "sto2")[:2] == ("Primary", "UpToDate")


@pytest.mark.backends("sim")
def test_a_host_booting_behind_a_fenced_storage_server_does_not_resume_on_the_dead_path(
        run_drill):
    """cmp3 boots while sto1, db2's volume server, is being fenced: db2 is withheld at boot
    and resumed by the engine on a path to sto2, and writes until the end — not left
    running on its dead iSCSI session (one write hung from t=194 s on)."""
    report = run_drill(drill("boot-behind-fenced-storage"))
    assert_passed(report)
    db2 = next(i for i in report.instances if i.name == "db2")
    assert (db2.host_after, db2.lost_writes) == ("cmp3", 0)
    # 39 writes before cmp3 crashed at 76 s; resumed at ~205 s it writes about 45 more
    assert db2.acked_writes > 39 + 30, f"db2 stopped writing ({db2.acked_writes} acked)"


@pytest.mark.backends("sim")
def test_a_storage_primary_that_rebooted_unseen_gets_its_guests_back(run_drill):
    """The controller is down while sto1, the storage Primary, reboots cleanly; sto1 comes
    back Secondary and nobody promotes. Once the controller sees sto1 heartbeat again, the
    guests reattach to it (promoted) and write again, instead of running on dead sessions
    to the end (random seed 7556)."""
    report = run_drill(drill("storage-reboot-unseen"))
    assert_passed(report)
    assert drbd_after(report, "r0", "sto1")[:2] == ("Primary", "UpToDate")
    assert all(i.state == "recovered" and i.lost_writes == 0 for i in report.instances)
