"""Connection loss, out-of-sync tracking, reconnect with a bitmap resync, host hang/crash."""

from __future__ import annotations

import pytest
from test_drbd_lab import Lab

from stackdrill.topology.model import Protocol


def _cut(lab: Lab, at: float) -> None:
    lab.k.call_later(at - lab.now, lambda: lab.net.set_link("n2", "repl", False))


def _heal(lab: Lab, at: float) -> None:
    lab.k.call_later(at - lab.now, lambda: lab.net.set_link("n2", "repl", True))


def test_link_loss_detected_after_timeout() -> None:
    """drbd_ack_receiver: an idle dead peer is declared by the next unanswered ping, no
    sooner than ping-timeout and no later than ping-int + ping-timeout after the cut; the
    survivor then shows WFConnection and the peer's disk as DUnknown (UG 2.x, /proc/drbd
    `cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown`)."""
    lab = Lab()
    _cut(lab, 1.0)
    lab.run(1.45)
    assert lab.st("n1").connection == "Connected"
    lab.run(11.55)
    st = lab.st("n1")
    assert st.connection == "WFConnection" and st.peer_disk == "DUnknown"
    assert st.peer_role == "Unknown" and st.disk == "UpToDate"


def test_primary_starts_new_generation_when_it_loses_the_peer() -> None:
    """UG 18.2 Generation identifiers, "Start of a new data generation": when a Primary
    loses its peer it creates a new current UUID and the old one becomes its bitmap UUID;
    a Secondary keeps its UUIDs."""
    lab = Lab()
    before = lab.res.status()
    _cut(lab, 1.0)
    lab.run(10.0)
    after = lab.res.status()
    assert after["n1"].uuids.current != before["n1"].uuids.current
    assert int(after["n1"].uuids.bitmap, 16) == int(before["n1"].uuids.current,
                                                          16)
    assert after["n2"].uuids == before["n2"].uuids


def test_writes_while_disconnected_are_tracked_out_of_sync() -> None:
    """UG 2.6/2.x quick-sync bitmap: while disconnected the Primary records every written
    block as out of sync (oos in /proc/drbd, 4 KiB per bit)."""
    lab = Lab()
    _cut(lab, 1.0)
    lab.run(10.0)
    for i in range(30):
        lab.write("n1", i % 20, f"d{i}")
    lab.run(11.0)
    assert lab.st("n1").out_of_sync_kb == 20 * 4
    assert not lab.errors


def test_protocol_c_write_waiting_for_peer_completes_when_loss_is_declared() -> None:
    """drbd_req.c: a request waiting for the peer's ack is completed locally when the
    connection is lost (CONNECTION_LOST_WHILE_PENDING); the block is marked out of sync."""
    lab = Lab(protocol=Protocol.C)
    lab.net.set_link("n2", "repl", False)
    ev = lab.write("n1", 3, "x")
    lab.run(0.45)
    assert not ev.triggered  # stalled: TCP keeps retrying until the peer is declared dead
    lab.run(20.6)
    assert ev.processed and ev.ok
    assert lab.st("n1").out_of_sync_kb == 4


def test_short_link_flap_does_not_disconnect() -> None:
    """A link outage shorter than the net timeout is absorbed by TCP: no state change,
    delayed writes complete and reach the peer, nothing is out of sync."""
    lab = Lab(protocol=Protocol.C)  # busy: neither side gives up within 10.5 s
    _cut(lab, 1.0)
    _heal(lab, 3.0)
    lab.workload("n1", 100, 0.02, tag="f")
    lab.run(10.0)
    assert len(lab.acked["n1"]) == 100
    assert lab.lost_on("n2", "n1") == []
    st = lab.st("n1")
    assert st.connection == "Connected" and st.out_of_sync_kb == 0


def test_reconnect_after_connect_int_then_bitmap_resync() -> None:
    """UG 2.5 Efficient synchronization / 18.2: on reconnect the nodes compare UUIDs; the
    node whose bitmap UUID matches the peer's current becomes SyncSource and only the
    out-of-sync blocks are copied (duration ~ oos / resync-rate). The target is
    Inconsistent meanwhile; afterwards both are Connected/UpToDate."""
    lab = Lab(resync_rate_mbit=1.0, res_kw={"connect_int_s": 10.0})
    _cut(lab, 1.0)
    lab.run(25.0)  # both sides gave up (idle: within 11.5)
    for i in range(50):
        lab.write("n1", i, f"v{i}")
    lab.run(26.0)
    # conn_connect: SYNs at each side's loss + 0, 1, 3, 7 s, then a listen of 10 +- 10/7 s
    # (drbd_timing.connect_syns); the heal at 40 falls between them
    _heal(lab, 40.0)
    lab.run(40.5)
    assert lab.st("n1").connection == "WFConnection"
    t = 40.5
    while lab.st("n1").connection == "WFConnection" and t < 70.0:
        t += 0.01
        lab.run(t)
    assert lab.st("n1").connection == "SyncSource"
    start = t
    s1, s2 = lab.st("n1"), lab.st("n2")
    assert s1.connection == "SyncSource" and s2.connection == "SyncTarget"
    assert s2.disk == "Inconsistent" and s1.peer_disk == "Inconsistent"
    duration = 50 * 4 * 1024 * 8 / 1e6  # 200 KiB at 1 Mbit/s
    lab.run(start + duration * 0.5)
    assert 0 < lab.st("n2").out_of_sync_kb < 200
    lab.run(start + 0.1 + duration)
    s1, s2 = lab.st("n1"), lab.st("n2")
    assert s1.connection == s2.connection == "Connected"
    assert s1.disk == s2.disk == "UpToDate" and s1.out_of_sync_kb == 0
    assert lab.lost_on("n2", "n1") == []
    assert s1.uuids.bitmap == "0000000000000000"
    assert int(s1.uuids.current, 16) & ~1 == int(s2.uuids.current, 16) & ~1


def test_resync_is_capped_by_a_rate_limit_on_the_replication_link() -> None:
    """The resync travels the replication link: with the resync rate at 100 Mbit/s but the
    link shaped to 1 Mbit/s (tbf on one end), 200 KiB take ~1.6 s, not 16 ms. Before, only
    the network's nominal bandwidth capped it (issue 13: a 9.6 MB resync over a 1 Mbit/s
    link took 0.1 s)."""
    lab = Lab(resync_rate_mbit=100.0, res_kw={"connect_int_s": 10.0})
    _cut(lab, 1.0)
    lab.run(25.0)  # both sides gave up
    for i in range(50):
        lab.write("n1", i, f"v{i}")
    lab.run(26.0)
    lab.net.set_rate("n2", "repl", 1.0)
    _heal(lab, 40.0)
    t = 40.0
    while lab.st("n2").connection != "SyncTarget" and t < 70.0:
        t += 0.01
        lab.run(t)
    assert lab.st("n2").connection == "SyncTarget"
    duration = 50 * 4 * 1024 * 8 / 1e6  # 200 KiB at 1 Mbit/s
    lab.run(t + duration * 0.5)
    assert lab.st("n2").connection == "SyncTarget" and lab.st("n2").out_of_sync_kb > 0
    lab.run(t + 0.1 + duration)
    assert lab.st("n2").connection == "Connected" and lab.st("n2").disk == "UpToDate"


def test_interrupted_resync_resumes_where_it_stopped() -> None:
    """UG 2.5: a resync interrupted by another link failure continues from the bitmap on
    the next connect; the target stays Inconsistent (and cannot be promoted) meanwhile."""
    lab = Lab(resync_rate_mbit=1.0, res_kw={"connect_int_s": 2.0})
    _cut(lab, 1.0)
    lab.run(25.0)
    for i in range(100):
        lab.write("n1", i, f"v{i}")
    _heal(lab, 26.0)
    lab.run(28.5)
    assert lab.st("n2").connection == "SyncTarget"
    _cut(lab, 29.0)
    lab.run(51.0)  # the resync stream: the target waits one more ping-int (<= 20.5 s)
    st2 = lab.st("n2")
    assert st2.disk == "Inconsistent" and st2.connection == "WFConnection"
    assert 0 < lab.st("n1").out_of_sync_kb < 400
    promote = lab.promote("n2")
    assert not promote.ok and "UpToDate" in str(promote.value)
    _heal(lab, 52.0)
    lab.run(70.0)
    assert lab.st("n2").disk == "UpToDate"
    assert lab.lost_on("n2", "n1") == []


def test_secondary_hang_is_a_lost_peer_then_resync_on_thaw() -> None:
    """A hung node neither sends nor receives: its peer declares it dead after the
    timeout. When it thaws it notices the broken connection, reconnects and is resynced."""
    lab = Lab(res_kw={"connect_int_s": 2.0})
    lab.k.call_later(1.0, lab.hosts["n2"].hang)
    lab.k.call_later(30.0, lab.hosts["n2"].thaw)
    lab.workload("n1", 200, 0.05)
    lab.run(12.0)  # busy Primary: one ping-int after its last ack plus ping-timeout
    assert lab.st("n1").connection == "WFConnection"
    lab.run(60.0)
    assert lab.st("n1").connection == "Connected" and lab.st("n2").disk == "UpToDate"
    assert lab.lost_on("n2", "n1") == []
    assert any(e.kind == "resync-finished" for e in lab.res.events())


def test_secondary_crash_and_return_resyncs() -> None:
    """UG 2.x "Node failure" of the Secondary: the Primary continues, tracks changes and
    resyncs the returning node, which comes up Secondary from its meta data."""
    lab = Lab(res_kw={"connect_int_s": 2.0})
    lab.k.call_later(1.0, lab.hosts["n2"].crash)
    lab.workload("n1", 100, 0.1)
    lab.run(20.0)
    assert lab.st("n2").connection == "Unconfigured" and not lab.st("n2").running
    lab.hosts["n2"].power_on()
    lab.run(49.0)
    assert lab.st("n2").running is False  # still booting (boot_s = 30)
    lab.run(60.0)
    st2 = lab.st("n2")
    assert st2.role == "Secondary" and st2.connection == "Connected"
    assert st2.disk == "UpToDate"
    assert lab.lost_on("n2", "n1") == []


@pytest.mark.parametrize("cmd", ["n1", "n2"])
def test_admin_disconnect_and_connect(cmd: str) -> None:
    """drbdadm disconnect: the node goes StandAlone and its peer WFConnection at once;
    drbdadm connect reconnects without waiting for connect-int."""
    lab = Lab()
    lab.res.disconnect(cmd)
    other = "n2" if cmd == "n1" else "n1"
    assert lab.st(cmd).connection == "StandAlone"
    assert lab.st(other).connection == "WFConnection"
    lab.write("n1", 1, "x")
    lab.run(1.0)
    lab.res.connect(cmd)
    lab.run(1.5)
    assert lab.st(cmd).connection in ("Connected", "SyncSource", "SyncTarget")
    lab.run(5.0)
    assert lab.res.device("n2").peek(1) == "x"
    with pytest.raises(Exception, match="net-config"):
        lab.res.connect(cmd)
