"""drbdadm on the simulated resource answers as DRBD 8.4's state-change rules do (issue 13,
"DRBD state-change rules"): the situations where the simulator used to disagree."""

from __future__ import annotations

import pytest
from test_drbd_lab import Lab

from stackdrill.backends.sim.drbd import DrbdError


def test_promotion_while_a_dead_primary_is_not_yet_declared_lost_succeeds() -> None:
    """drbd_set_role requests a ping first ("Detect dead peers as soon as possible"): the
    dead peer's PingAck does not arrive within ping-timeout (0.5 s) and the connection
    ends; the SS_TWO_PRIMARIES retry, (ping-timeout + 0.1 s) later, finds no Primary
    peer and the promotion succeeds, long before the sim's 6 s loss timer."""
    lab = Lab()
    lab.hosts["n1"].crash()
    lab.run(1.0)
    assert lab.st("n2").connection == "Connected" and lab.st("n2").peer_role == "Primary"
    started = lab.now
    ev = lab.promote("n2")
    assert ev.ok, ev.value
    assert lab.now - started == pytest.approx(0.6, abs=1e-3)
    assert lab.st("n2").role == "Primary" and lab.st("n2").connection == "WFConnection"


def test_promotion_next_to_a_dead_secondary_waits_for_the_ping() -> None:
    """A promotion while Connected is cluster-wide (cl_wide_st_chg): it waits for the peer's
    answer, which a dead peer never gives; the unanswered ping ends the connection and
    the promotion goes on as a local change."""
    lab = Lab(primary=())
    lab.hosts["n2"].crash()
    lab.run(1.0)
    ev = lab.promote("n1")
    assert ev.ok, ev.value
    assert lab.st("n1").role == "Primary" and lab.st("n1").connection == "WFConnection"


def test_promotion_next_to_a_live_primary_is_refused_after_one_more_try() -> None:
    lab = Lab()
    started = lab.now
    ev = lab.promote("n2")
    assert not ev.ok and "(-1) Multiple primaries not allowed by config" in str(ev.value)
    assert lab.now - started == pytest.approx(0.6, abs=1e-3)
    assert lab.st("n2").connection == "Connected"


def test_detaching_the_last_uptodate_disk_is_refused_unless_forced() -> None:
    """adm_detach asks for D_FAILED; is_valid_state: a Primary whose peer is Inconsistent
    (SyncTarget of a full sync) would have no UpToDate data: SS_NO_UP_TO_DATE_DISK.
    `detach --force` imposes it (drbd_force_state, CS_HARD)."""
    lab = Lab(bandwidth_mbit=1.0)
    lab.disks["n2"].replace()
    lab.res.detach("n2", force=True)
    lab.res.attach("n2")
    assert lab.st("n2").connection == "SyncTarget" and lab.st("n2").disk == "Inconsistent"
    with pytest.raises(DrbdError, match=r"\(-2\) Need access to UpToDate data"):
        lab.res.detach("n1")
    assert lab.st("n1").disk == "UpToDate"
    lab.res.detach("n1", force=True)
    assert lab.st("n1").disk == "Diskless"


def test_detaching_the_disk_a_diskless_primary_reads_from_is_refused_by_that_peer() -> None:
    """The detach is cluster-wide while Connected: the Diskless Primary checks it mirrored
    (its pdsk D_FAILED) and refuses (SS_NO_UP_TO_DATE_DISK there): SS_CW_FAILED_BY_PEER."""
    lab = Lab()
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 1, "diskless")).ok
    assert lab.st("n1").disk == "Diskless"
    with pytest.raises(DrbdError, match=r"\(-10\) State change was refused by peer node"):
        lab.res.detach("n2")
    assert lab.st("n2").disk == "UpToDate"


def test_secondary_is_refused_while_the_device_is_held_open() -> None:
    """is_valid_state: `ns.role == R_SECONDARY && device->open_cnt` -> SS_DEVICE_IN_USE."""
    lab = Lab()
    holders = {"n1"}
    lab.res.held_open = lambda host: host in holders
    ev = lab.res.demote("n1")
    ev.defused = True
    lab.settle(ev)
    assert not ev.ok and "(-12) Device is held open by someone" in str(ev.value)
    assert lab.st("n1").role == "Primary"
    holders.clear()
    assert lab.settle(lab.res.demote("n1")).ok and lab.st("n1").role == "Secondary"


def test_connected_diskless_primary_reattaching_its_own_disk_resyncs() -> None:
    """drbd_adm_attach while C_CONNECTED keeps the disk D_NEGOTIATING through the sync
    handshake, and drbd_sync_handshake's "I shall become SyncTarget, but I am primary!"
    reads device->state.disk ("by intention we do not use mydisk here"): Negotiating is
    below Consistent, so the Primary becomes SyncTarget and resyncs what it missed."""
    lab = Lab(bandwidth_mbit=100.0)
    assert lab.settle(lab.write("n1", 1, "before")).ok
    lab.res.detach("n1")  # allowed: the peer holds UpToDate data
    assert lab.settle(lab.write("n1", 2, "while-diskless")).ok
    lab.res.attach("n1")
    assert lab.st("n1").connection == "SyncTarget", lab.events("handshake-refused")
    assert lab.st("n1").role == "Primary"
    lab.run(lab.now + 60.0)
    assert lab.st("n1").disk == "UpToDate" and lab.st("n1").connection == "Connected"
    assert lab.res.device("n1").peek(2) == "while-diskless"
    assert lab.lost_on("n1", "n1") == []


@pytest.mark.parametrize("who", ["n1", "n2"])
def test_graceful_disconnect_under_resource_fencing_outdates_the_secondary(who: str) -> None:
    """conn_try_disconnect: the Primary's disconnect is SS_PRIMARY_NOP, repeated with pdsk
    D_OUTDATED, which the peer takes; the Secondary's own disconnect is refused by the
    Primary (SS_CW_FAILED_BY_PEER) and repeated with disk D_OUTDATED. Either way the
    Secondary ends Outdated and the Primary knows it (pdsk Outdated)."""
    lab = Lab(fencing="resource-only")
    lab.res.disconnect(who)
    assert lab.st(who).connection == "StandAlone"
    assert lab.st("n2").disk == "Outdated"
    assert lab.st("n1").peer_disk == "Outdated" and lab.st("n1").disk == "UpToDate"


def test_graceful_disconnect_without_fencing_leaves_the_peer_uptodate() -> None:
    lab = Lab()
    lab.res.disconnect("n1")
    assert lab.st("n2").disk == "UpToDate" and lab.st("n1").peer_disk == "DUnknown"
