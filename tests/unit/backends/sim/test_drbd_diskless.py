"""A Primary without UpToDate data: Diskless or Inconsistent, and cut off from its peer."""

from __future__ import annotations

import pytest
from test_drbd_lab import Lab

from stackdrill.backends.sim.drbd import DrbdError
from stackdrill.topology.model import Protocol


def _diskless_primary_cut_off(protocol: Protocol = Protocol.C) -> Lab:
    """n1 Primary loses its disk (on-io-error detach), serves from n2, then the link dies."""
    lab = Lab(protocol=protocol, res_kw={"connect_int_s": 2.0})
    assert lab.settle(lab.write("n1", 1, "before")).ok
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 2, "diskless")).ok
    assert lab.st("n1").disk == "Diskless" and lab.res.device("n2").peek(2) == "diskless"
    lab.net.set_link("n1", "repl", up=False)
    lab.run(lab.now + 12.0)  # one ping-int after its last ack, plus ping-timeout: lost
    assert lab.st("n1").connection == "WFConnection"
    return lab


def test_diskless_primary_cannot_attach_a_fresh_disk_while_cut_off() -> None:
    """drbd_nl.c drbd_adm_attach (8.4): `conn < C_CONNECTED && role == R_PRIMARY` and the
    new disk's current UUID differs from ed_uuid -> ERR_DATA_NOT_CURRENT, "Can only attach
    to the data we lost last": a replaced disk (create-md, UUID_JUST_CREATED) is refused,
    the node stays Diskless and keeps failing I/O, so nothing is acknowledged onto a disk
    that lacks the writes made through the peer. Once connected again the same attach is
    taken and the fresh disk becomes SyncTarget of a full sync."""
    lab = _diskless_primary_cut_off()
    assert not lab.settle(lab.write("n1", 3, "no-data")).ok  # neither local nor remote data
    lab.disks["n1"].replace()
    with pytest.raises(DrbdError, match=r"\(150\) Can only attach to the data we lost last"):
        lab.res.attach("n1")
    assert lab.st("n1").disk == "Diskless"
    assert not lab.settle(lab.write("n1", 4, "still-no-data")).ok
    assert 3 not in lab.acked["n1"] and 4 not in lab.acked["n1"]
    lab.net.set_link("n1", "repl", up=True)
    lab.run(lab.now + 5.0)
    assert lab.st("n1").connection == "Connected" and lab.st("n1").peer_disk == "UpToDate"
    lab.res.attach("n1")
    assert lab.events("resync-started")[-1].get("target") == "n1"
    assert lab.events("resync-started")[-1].get("mode") == "full"
    lab.run(lab.now + 120.0)
    assert lab.st("n1").disk == "UpToDate"
    assert lab.lost_on("n1", "n1") == [] and lab.lost_on("n2", "n1") == []


def test_diskless_primary_cut_off_does_not_outdate_its_peer() -> None:
    """drbd_nl.c highest_fencing_policy counts only disks at least Consistent: a Diskless
    Primary that loses its peer has no fencing policy (FP_NOT_AVAIL, "Not fencing peer,
    I'm not even Consistent myself") and runs no fence-peer handler. Before, it outdated
    the peer that holds the only data, leaving no UpToDate copy to fail over to (random
    seed 3014)."""
    asked: list[str] = []

    def handler(peer: str, requester: str) -> bool:
        asked.append(f"{requester}->{peer}")
        return True

    lab = Lab(fencing="resource-only", outdate_peer=handler, res_kw={"connect_int_s": 2.0})
    assert lab.settle(lab.write("n1", 1, "before")).ok
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 2, "diskless")).ok
    lab.net.set_link("n1", "repl", up=False)
    lab.run(lab.now + 12.0)  # one ping-int after its last ack, plus ping-timeout
    assert lab.st("n1").connection == "WFConnection"
    assert asked == []
    assert lab.st("n2").disk == "UpToDate"


def _diskless_primary_attaching_on_a_dead_link() -> Lab:
    """n1 Primary is Diskless (on-io-error detach); its link dies and, before the ping
    timeout has noticed, a replaced disk is attached."""
    lab = Lab(res_kw={"connect_int_s": 2.0})
    assert lab.settle(lab.write("n1", 1, "before")).ok
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 2, "diskless")).ok
    lab.net.set_link("n1", "repl", up=False)
    lab.run(lab.now + 1.0)
    assert lab.st("n1").connection == "Connected"  # the ping timeout has not run out yet
    lab.disks["n1"].replace()
    lab.res.attach("n1")
    return lab


def test_attach_on_a_dead_link_negotiates_until_the_connection_is_lost() -> None:
    """drbd_adm_attach while C_CONNECTED: the disk is D_NEGOTIATING until the peer answers
    the P_SIZES/P_UUIDS/P_STATE sent at attach. No answer comes over a dead link, so no
    handshake and no resync start; the ping timeout still ends the connection, and
    sanitize_state ("Connection breaks down before we finished Negotiating") leaves the
    node Diskless, because the fresh disk does not hold the data it exposed
    (CONNECTION_LOST_NEGOTIATING). Before, the attach ran a handshake over the dead link,
    cancelled the ping timeout and left both nodes Connected with I/O stalled for good
    (random seeds 3949, 7216, 7587)."""
    lab = _diskless_primary_attaching_on_a_dead_link()
    assert lab.events("resync-started") == []
    lab.run(lab.now + 21.0)  # each side's ping path: within 2 ping-ints + ping-timeout
    assert lab.st("n1").connection == "WFConnection" and lab.st("n1").disk == "Diskless"
    assert lab.st("n2").connection == "WFConnection"
    assert not lab.settle(lab.write("n1", 3, "no-data")).ok  # neither disk nor peer
    lab.net.set_link("n1", "repl", up=True)
    lab.run(lab.now + 10.0)
    assert lab.st("n1").connection == "Connected"


def test_attach_on_a_link_that_returns_in_time_negotiates_then() -> None:
    """The link comes back before the ping timeout: the packets sent at attach arrive, the
    handshake runs and the fresh disk becomes SyncTarget of a full sync."""
    lab = _diskless_primary_attaching_on_a_dead_link()
    lab.net.set_link("n1", "repl", up=True)
    lab.run(lab.now + 1.0)
    assert lab.st("n1").connection == "SyncTarget"
    assert lab.events("resync-started")[-1].get("mode") == "full"


def test_disconnected_primary_may_reattach_its_own_disk() -> None:
    """drbd_adm_attach only refuses data that is not current: a Primary that detached its
    own (healthy) disk while disconnected gets that same disk back (same current UUID).
    The detach needs `--force`: asked politely, a Primary alone may not give up its only
    UpToDate data (is_valid_state: SS_NO_UP_TO_DATE_DISK)."""
    lab = Lab()
    lab.res.disconnect("n1")
    assert lab.settle(lab.write("n1", 1, "alone")).ok
    lab.res.detach("n1", force=True)
    lab.res.attach("n1")
    assert lab.st("n1").disk != "Diskless"
    assert lab.res.device("n1").peek(1) == "alone"


def test_inconsistent_primary_without_uptodate_peer_fails_writes() -> None:
    """drbd_req.c may_do_writes (8.4): "We don't want to allow writes on C_STANDALONE
    D_INCONSISTENT" — a write needs UpToDate data locally or at the peer, else "IO ERROR:
    neither local nor remote data" (on-no-data-accessible io-error, the default). A Primary
    that is SyncTarget of a full sync and loses its SyncSource stops acknowledging writes
    instead of writing to a disk the resumed resync would overwrite."""
    lab = Lab(bandwidth_mbit=10.0, res_kw={"connect_int_s": 2.0})
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 1, "diskless")).ok
    lab.disks["n1"].replace()
    lab.res.attach("n1")
    assert lab.st("n1").connection == "SyncTarget" and lab.st("n1").disk == "Inconsistent"
    assert lab.settle(lab.write("n1", 2, "syncing")).ok  # peer UpToDate: allowed
    lab.net.set_link("n1", "repl", up=False)
    lab.run(lab.now + 21.0)  # the resync stream's target pings one ping-int later
    assert lab.st("n1").connection == "WFConnection" and lab.st("n1").disk == "Inconsistent"
    ev = lab.settle(lab.write("n1", 3, "orphan"))
    assert not ev.ok and 3 not in lab.acked["n1"]
    lab.net.set_link("n1", "repl", up=True)
    lab.run(lab.now + 2000.0)
    assert lab.st("n1").disk == "UpToDate"
    assert lab.lost_on("n1", "n1") == [] and lab.lost_on("n2", "n1") == []


def test_protocol_a_diskless_primary_loses_what_was_on_the_wire() -> None:
    """drbd_req.c HANDED_OVER_TO_NETWORK: with protocol A a write "pretends it was
    successfully written on the peer" once in the send buffer. A Diskless Primary has no
    local copy, so what the dying link never delivered is gone even though this node stays
    Primary: the dropped write is reported without a local copy."""
    lab = Lab(protocol=Protocol.A, res_kw={"connect_int_s": 2.0})
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 1, "diskless")).ok
    lab.run(lab.now + 1.0)  # delivered
    lab.net.set_link("n1", "repl", up=False)
    assert lab.settle(lab.write("n1", 2, "on-the-wire")).ok  # acked from the send buffer
    lab.run(lab.now + 10.0)
    dropped = lab.res.dropped_writes()
    assert [(d.addr, d.local) for d in dropped] == [(2, False)]
    assert lab.st("n1").role == "Primary"
    assert lab.disks["n2"].peek(1) == "diskless" and lab.disks["n2"].peek(2) != "on-the-wire"


def test_syncing_primary_reads_unsynced_blocks_from_its_peer() -> None:
    """drbd_req.c drbd_may_do_local_read (8.4): an Inconsistent disk serves a read only
    where the bitmap says the block is in sync; every other block is read from the
    UpToDate peer. A guest that replays its volume on a Primary whose replaced disk is
    still SyncTarget of the full sync must find its records (random seed 524: evacuated
    guests replayed an empty volume and rewrote it from record 1, losing every acked
    write). Blocks written since the attach are local again."""
    lab = Lab(bandwidth_mbit=10.0)
    assert lab.settle(lab.write("n1", 1, "before")).ok
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 2, "diskless")).ok
    lab.disks["n1"].replace()
    lab.res.attach("n1")
    assert lab.st("n1").connection == "SyncTarget" and lab.st("n1").disk == "Inconsistent"
    device = lab.res.device("n1")
    assert device.peek(1) == "before" and device.peek(2) == "diskless"
    assert lab.settle(lab.write("n1", 3, "syncing")).ok
    assert device.peek(3) == "syncing"


def test_a_write_at_the_instant_a_diskless_primary_reattaches_reaches_both_disks() -> None:
    """n1 (Primary) detaches, writes through n2, re-attaches its own disk and writes at the
    same instant. The attaching disk is Negotiating (no local I/O: drbd_req.c takes a
    local disk only from D_INCONSISTENT), so the write goes to n2, which marks it out of
    sync while its peer has no usable disk (drbd_receiver.c receive_Data: pdsk <
    D_INCONSISTENT); the handshake makes n1 SyncTarget and the resync brings both blocks.
    Both end UpToDate with the same data (issue 13: they ended UpToDate and differing)."""
    lab = Lab(res_kw={"connect_int_s": 2.0})
    assert lab.settle(lab.write("n1", 1, "before")).ok
    lab.res.detach("n1")
    assert lab.settle(lab.write("n1", 2, "diskless")).ok
    lab.run(lab.now + 5)
    lab.res.attach("n1")
    assert lab.settle(lab.write("n1", 3, "at-attach")).ok
    lab.run(lab.now + 60)
    for node in ("n1", "n2"):
        st = lab.st(node)
        assert (st.disk, st.connection) == ("UpToDate", "Connected"), node
    assert [lab.disks[n].peek(b) for n in ("n1", "n2") for b in (2, 3)] == \
        ["diskless", "at-attach", "diskless", "at-attach"]
