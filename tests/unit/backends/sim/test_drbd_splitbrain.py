"""Split brain: detection by generation UUIDs, after-sb-* policies, manual recovery."""

from __future__ import annotations

from typing import Any

import pytest
from test_drbd_lab import Lab

from stackdrill.backends.sim.drbd_handshake import Policies, Side, decide, uuid_compare
from stackdrill.backends.sim.drbd_model import UUID_JUST_CREATED, Disk, Role, Uuids


def _split(n1_writes: int, n2_writes: int, demote: tuple[str, ...] = (), **spec: Any) -> Lab:
    """Partition, promote n2 too, write on both, optionally demote, heal."""
    lab = Lab(res_kw={"connect_int_s": 2.0}, **spec)
    lab.net.set_link("n2", "repl", False)
    lab.run(25.0)  # both sides gave up (idle: within ping-int + ping-timeout)
    assert lab.promote("n2").ok
    for i in range(n1_writes):
        lab.write("n1", 100 + i, f"a{i}")
    for i in range(n2_writes):
        lab.write("n2", 200 + i, f"b{i}")
    lab.run(26.0)
    for host in demote:
        assert lab.settle(lab.res.demote(host)).ok
    lab.net.set_link("n2", "repl", True)
    lab.run(45.0)
    return lab


def test_split_brain_detected_and_disconnected_by_default() -> None:
    """UG 6.x "Split brain notification and automatic recovery": both nodes changed data
    while disconnected; at handshake DRBD logs "Split-Brain detected but unresolved,
    dropping connection!" and both go StandAlone (after-sb-*pri disconnect)."""
    lab = _split(3, 4)
    for n in ("n1", "n2"):
        st = lab.st(n)
        assert st.connection == "StandAlone" and st.split_brain
    assert lab.events("split-brain")[0].get("resolved") is False
    assert any("Split-Brain detected but unresolved" in line for line in lab.k.tracer.lines())


def test_manual_recovery_discards_the_victims_changes() -> None:
    """UG 6.x Manual split brain recovery: on the victim `drbdadm secondary` and
    `drbdadm connect --discard-my-data`, on the survivor `drbdadm connect`; the victim
    becomes SyncTarget and its modifications are overwritten."""
    lab = _split(3, 4)
    assert lab.settle(lab.res.demote("n2")).ok
    lab.res.connect("n2", discard_my_data=True)
    lab.res.connect("n1")
    lab.run(60.0)
    s1, s2 = lab.st("n1"), lab.st("n2")
    assert s1.connection == s2.connection == "Connected"
    assert s2.disk == "UpToDate" and not s2.split_brain
    assert lab.res.discarded_blocks("n2") == [200, 201, 202, 203]
    assert lab.res.device("n2").peek(200) is None and lab.res.device("n2").peek(100) == "a0"
    assert lab.events("split-brain")[-1].get("policy") == "discard-my-data"


def test_discard_my_data_on_a_primary_is_refused() -> None:
    """drbd_sync_handshake / rr-conflict disconnect: "I shall become SyncTarget, but I am
    primary!" — the victim must be demoted first."""
    lab = _split(3, 4)
    lab.res.connect("n2", discard_my_data=True)
    lab.res.connect("n1")
    lab.run(60.0)
    assert lab.st("n2").connection == "StandAlone"
    assert any("I shall become SyncTarget, but I am primary" in x for x in lab.k.tracer.lines())
    # n1 passed the handshake, but Primary/Primary without allow-two-primaries is no
    # valid state: it gives up too (recorded: drbd-split-brain-2pri-violently-as0p-...)
    assert lab.st("n1").connection == "StandAlone"
    assert any("Multiple primaries not allowed by config" in x for x in lab.k.tracer.lines())


def test_after_sb_0pri_discard_zero_changes() -> None:
    """drbd.conf(5) after-sb-0pri discard-zero-changes: if only one node wrote, sync from
    it to the node without changes."""
    lab = _split(0, 5, demote=("n1", "n2"), after_sb_0pri="discard-zero-changes")
    assert lab.st("n1").connection == "Connected"
    assert lab.res.device("n1").peek(200) == "b0"
    assert lab.events("split-brain")[0].get("survivor") == "n2"


def test_after_sb_0pri_discard_zero_changes_both_changed_disconnects() -> None:
    """drbd.conf(5): with discard-zero-changes, if both wrote, DRBD disconnects."""
    lab = _split(2, 5, demote=("n1", "n2"), after_sb_0pri="discard-zero-changes")
    assert lab.st("n1").connection == "StandAlone" and lab.st("n1").split_brain


def test_after_sb_0pri_discard_least_changes() -> None:
    """drbd.conf(5) discard-least-changes: sync from the node with more changed blocks."""
    lab = _split(6, 2, demote=("n1", "n2"), after_sb_0pri="discard-least-changes")
    assert lab.events("split-brain")[0].get("survivor") == "n1"
    assert lab.res.discarded_blocks("n2") == [200, 201]
    assert lab.res.device("n2").peek(105) == "a5"


@pytest.mark.parametrize(("policy", "survivor"), [("discard-younger-primary", "n1"),
                                                  ("discard-older-primary", "n2")])
def test_after_sb_0pri_younger_older_primary(policy: str, survivor: str) -> None:
    """drbd.conf(5): discard-younger-primary syncs from the node that was Primary before
    the split (n1); discard-older-primary from the one that became Primary later (n2)."""
    lab = _split(1, 1, demote=("n1", "n2"), after_sb_0pri=policy)
    assert lab.events("split-brain")[0].get("survivor") == survivor
    assert lab.st("n1").connection == "Connected"


def test_after_sb_1pri_discard_secondary() -> None:
    """drbd.conf(5) after-sb-1pri discard-secondary: the Secondary's changes are discarded
    and the Primary stays as it is."""
    lab = _split(1, 3, demote=("n2",), after_sb_1pri="discard-secondary")
    assert lab.events("split-brain")[0].get("survivor") == "n1"
    assert lab.st("n1").role == "Primary" and lab.st("n2").disk == "UpToDate"
    assert lab.res.discarded_blocks("n2") == [200, 201, 202]


@pytest.mark.parametrize(("n1w", "connected"), [(5, True), (1, False)])
def test_after_sb_1pri_consensus(n1w: int, connected: bool) -> None:
    """drbd.conf(5) consensus: discard the Secondary's version only if the after-sb-0pri
    algorithm would also destroy the Secondary's data; otherwise disconnect."""
    lab = _split(n1w, 3, demote=("n2",), after_sb_0pri="discard-least-changes",
                 after_sb_1pri="consensus")
    assert (lab.st("n1").connection == "Connected") is connected


@pytest.mark.parametrize(("rr", "connected"), [("disconnect", False), ("violently", True)])
def test_after_sb_2pri_violently_as0p_meets_rr_conflict(rr: str, connected: bool) -> None:
    """drbd.conf(5) after-sb-2pri violently-as0p uses the 0pri result even though one
    Primary's data changes under it — but drbd_sync_handshake still applies rr-conflict
    (default disconnect: "I shall become SyncTarget, but I am primary!")."""
    lab = Lab(res_kw={"connect_int_s": 2.0, "rr_conflict": rr}, allow_two_primaries=True,
              after_sb_0pri="discard-least-changes", after_sb_2pri="violently-as0p")
    lab.net.set_link("n2", "repl", False)
    lab.run(7.0)
    assert lab.promote("n2").ok
    lab.write("n1", 1, "a")
    for i in range(3):
        lab.write("n2", 10 + i, "b")
    lab.run(8.0)
    lab.net.set_link("n2", "repl", True)
    lab.run(30.0)
    assert (lab.st("n1").connection == "Connected") is connected
    if connected:
        assert lab.res.device("n1").peek(10) == "b"
    else:  # n1 (no changes) would be SyncTarget and refuses; n2 keeps trying to connect
        assert (lab.st("n1").connection, lab.st("n2").connection) == (
            "StandAlone", "WFConnection")


# --------------------------------------------------------------- pure UUID rules

def _side(cur: int, bm: int = 0, hist: tuple[int, int] = (0, 0), role: Role = Role.SECONDARY,
          crashed: bool = False, disk: Disk = Disk.UP_TO_DATE) -> Side:
    return Side("x", Uuids(cur, bm, list(hist)), role, disk, crashed)


def test_uuid_compare_rules() -> None:
    """drbd_receiver.c drbd_uuid_compare(): equal currents -> no sync (40); my current is
    the peer's bitmap UUID -> bitmap SyncTarget (50); in the peer's history -> full sync
    target (60); equal bitmap UUIDs -> split brain (90); only history shared -> split
    brain without auto-recovery (100); nothing shared -> unrelated data (-1000)."""
    assert uuid_compare(_side(0x10), _side(0x11)) == (0, 40)
    assert uuid_compare(_side(0x10), _side(0x20, bm=0x10)) == (-1, 50)
    assert uuid_compare(_side(0x20, bm=0x10), _side(0x10)) == (1, 70)
    assert uuid_compare(_side(0x10), _side(0x30, hist=(0x10, 0))) == (-2, 60)
    assert uuid_compare(_side(0x20, bm=0x10), _side(0x30, bm=0x11)) == (100, 90)
    assert uuid_compare(_side(0x20, 0, (0x50, 0)), _side(0x30, 0, (0x50, 0))) == (-100, 100)
    assert uuid_compare(_side(0x20), _side(0x30)) == (-1000, 100)
    assert uuid_compare(_side(UUID_JUST_CREATED), _side(0x30)) == (-2, 20)


def test_uuid_compare_crashed_primary_after_simultaneous_crash() -> None:
    """Rule 40: same current UUID, both Secondary, one has the crashed-primary flag: the
    former Primary becomes SyncSource (its activity log may hold unreplicated writes)."""
    assert uuid_compare(_side(0x10, crashed=True), _side(0x10)) == (1, 40)
    assert uuid_compare(_side(0x10), _side(0x10, crashed=True)) == (-1, 40)


def test_inconsistent_side_never_becomes_source() -> None:
    """drbd_sync_handshake: an Inconsistent disk facing a consistent one becomes target
    ("Becoming sync target due to disk states")."""
    d = decide(_side(0x20, bm=0x10, disk=Disk.INCONSISTENT), _side(0x10), Policies())
    assert d.hg < 0 and not d.drop


def test_only_the_side_that_would_sync_refuses() -> None:
    """drbd_sync_handshake checks `hg` against the local role and disk: "I shall become
    SyncTarget, but I am primary!" is the target's refusal alone, "Split-Brain detected but
    unresolved" and "Unrelated data" are computed by both sides."""
    source = Side("s", Uuids(0x20, 0x10, [0, 0]), Role.PRIMARY, Disk.UP_TO_DATE)
    target = Side("t", Uuids(0x10, 0, [0, 0]), Role.PRIMARY, Disk.UP_TO_DATE)
    dual = Policies(two_primaries=True)
    assert decide(source, target, dual).refused_by == ("t",)
    assert decide(target, source, dual).refused_by == ("t",)
    assert decide(source, target, Policies(rr_conflict="violently",
                                           two_primaries=True)).refused_by == ()
    # without allow-two-primaries the source fails its state change to Primary/Primary
    assert decide(source, target, Policies()).refused_by == ("t", "s")
    a = Side("a", Uuids(0x20, 0, [0x50, 0]), Role.PRIMARY, Disk.UP_TO_DATE)
    b = Side("b", Uuids(0x30, 0, [0x50, 0]), Role.SECONDARY, Disk.UP_TO_DATE)
    assert set(decide(a, b, Policies()).refused_by) == {"a", "b"}


def test_resolved_split_brain_says_how_many_primaries() -> None:
    """drbd_sync_handshake logs "Split-Brain detected, %d primaries, automatically solved"
    (pcount: the Primaries at the handshake); the notice carries that count, so the kernel
    line a user reads can be told from the simulator's (1pri discard-secondary: n1 still
    Primary, n2 demoted)."""
    lab = _split(1, 2, demote=("n2",), after_sb_1pri="discard-secondary")
    notice = lab.events("split-brain")[0]
    assert notice.get("resolved") is True and notice.get("survivor") == "n1"
    assert notice.get("primaries") == 1
