"""Situations the field's own suites rehearse (drbd9-tests, lvm2's test suite, Pacemaker's
CTS, Jepsen's nemeses), as drills; `peer-suites.yaml` maps each peer test to the
scenario here or elsewhere that says it, and `stackdrill coverage` prints the table.

Each scenario asserts what the peer test asserts, not only that the drill ran. Those that
fit real guests carry the `vm_peer` marker: scripts/test-vm-peer.sh runs them on libvirt
(README "VM set budget")."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, check, command, drill, from_host

# the drills that run on real guests too: in the vm_peer set (scripts/test-vm-peer.sh)
ON_GUESTS = pytest.mark.backends("sim", "libvirt")


def test_a_paused_host_that_cannot_be_fenced_keeps_its_instances_and_nothing_runs_twice(
        run_drill):
    """Jepsen's pause (SIGSTOP), as a whole host: cmp1's kernel freezes while its power
    controller is unreachable. Evacuating without a fence could run its guests twice, so
    the engine must refuse, say why, and leave them where they are."""
    report = run_drill(drill("unfenceable-host"))
    assert_passed(report)
    stuck = from_host(report, "cmp1")
    assert stuck, "nothing ran on cmp1: the drill would prove nothing"
    assert all(i.host_after in ("cmp1", None) for i in stuck), \
        [(i.name, i.host_after) for i in stuck]
    assert "cannot be fenced" in check(report, "blocked").detail


@ON_GUESTS
@pytest.mark.vm_peer
def test_the_primary_role_switches_and_back_and_the_peer_sees_each_switch(run_drill):
    """drbd9-tests' switch-primaries: demote one node, promote the other, and back; after
    each switch both nodes report the same roles (the peer's role as the peer reports
    its own). A promotion while the other node is Primary is refused with drbdadm's
    'Multiple primaries not allowed by config'."""
    report = run_drill(drill("switch-primaries"))
    assert_passed(report)
    for moment in ("start", "on-cmp2", "back-on-cmp1"):
        assert check(report, f"drbd[r0]@{moment}").ok
    assert "Multiple primaries not allowed" in command(report, "step-4")["detail"]
    assert check(report, "views_agree").data["moments"] == [
        "start", "on-cmp2", "back-on-cmp1", "end"]


@ON_GUESTS
@pytest.mark.vm_peer
def test_the_cluster_stack_stops_and_starts_one_node_at_a_time(run_drill):
    """CTS's StopOnebyOne / StartOnebyOne on the clustered pair: bob leaves and alice stays
    quorate (two_node); both stop; alice starts alone and waits for all (not quorate)
    until bob joins; then both are quorate, see the same membership, and each changes
    the VG once its lockspace is started."""
    report = run_drill(drill("cluster-one-by-one"))
    assert_passed(report)
    assert check(report, "quorum[drbd-pair]@alice-alone").detail == "alice quorate=False"
    assert check(report, "views_agree").ok
    assert check(report, "commands").data["succeeded"][-2:] == [12, 13]  # both lvcreates


@ON_GUESTS
@pytest.mark.vm_peer
def test_an_lv_held_exclusively_is_refused_to_the_other_node_until_released(run_drill):
    """lvm2's multi-host lvmlockd tests: while alice holds the LV exclusively, bob's
    exclusive and shared activation and his lvextend are refused with lvmlockd's 'LV
    locked by other host'; released, both nodes hold it shared; holding it shared,
    alice cannot extend it ('LV is already locked with incompatible mode')."""
    report = run_drill(drill("lvm-exclusive-activation"))
    assert_passed(report)
    for refused in ("step-3", "step-4", "step-5"):
        assert "LV locked by other host: vg-shared/data" in command(report, refused)["detail"]
    assert command(report, "step-7")["ok"] and command(report, "step-8")["ok"]


@ON_GUESTS
@pytest.mark.vm_peer
def test_verify_finds_exactly_the_corrupted_blocks_and_a_reconnect_repairs_them(run_drill):
    """drbd9-tests' verify and Jepsen's bitflip: 4 blocks of the Secondary's disk are
    overwritten behind DRBD's back. verify marks exactly those out of sync on both nodes
    (16 KiB) and repairs nothing; a reconnect resyncs them from the Primary; a second
    verify finds the replicas equal. The guests' acknowledged writes are all intact."""
    report = run_drill(drill("drbd-verify"))
    assert_passed(report)
    assert check(report, "drbd[r0]@verified").ok
    assert check(report, "drbd[r0]@verified-again").ok
    assert check(report, "acked_writes").data["lost"] == 0


@ON_GUESTS
@pytest.mark.vm_peer
def test_invalidate_and_invalidate_remote_each_repair_a_corrupted_replica(run_drill):
    """drbd9-tests' invalidate (its 8.4 variants): invalidate on the corrupted Secondary,
    and later invalidate-remote from the Primary, each resync it fully, as a verify then
    shows (no block out of sync); invalidate with no peer to resync from is refused."""
    report = run_drill(drill("drbd-invalidate"))
    assert_passed(report)
    for moment in ("invalidated", "pushed", "verified"):
        assert check(report, f"drbd[r0]@{moment}").ok
    assert "Need a connection to start verify or resync" in command(report, "step-9")["detail"]


@ON_GUESTS
@pytest.mark.vm_peer
def test_suspend_io_freezes_the_primary_and_resume_io_releases_its_writes(run_drill):
    """drbd9-tests' suspend-io: while suspended the Primary shows it ('s' in /proc/drbd)
    and its guests' writes wait; resume-io releases them: nothing acknowledged is lost and
    the pair stays Connected."""
    report = run_drill(drill("drbd-suspend-io"))
    assert_passed(report)
    assert check(report, "drbd[r0]@frozen").ok and check(report, "drbd[r0]@resumed").ok
    assert check(report, "acked_writes").data["lost"] == 0


@ON_GUESTS
@pytest.mark.vm_peer
def test_a_resync_started_while_paused_waits_for_resume_sync(run_drill):
    """drbd9-tests' resync-write-during-pause: the Secondary reconnects after writes it
    missed while pause-sync is set; the resync stays paused (PausedSyncS/T, the Secondary
    Inconsistent) as the guests keep writing; resume-sync finishes it, nothing is lost.
    Pausing twice is refused with drbdsetup's "Sync-pause flag is already set"."""
    report = run_drill(drill("drbd-pause-sync"))
    assert_passed(report)
    assert check(report, "drbd[r0]@paused").ok and check(report, "drbd[r0]@synced").ok
    assert "Sync-pause flag is already set" in command(report, "step-2")["detail"]


@ON_GUESTS
@pytest.mark.vm_peer
def test_a_disk_restored_from_an_older_copy_is_resynced_whole_from_the_primary(run_drill):
    """drbd9-tests' revert-older-data: the Secondary's backing disk, copied while detached
    and written back a generation later, is attached; the Primary finds the copy's data
    generation in its history and becomes SyncSource of a full resync (the whole device out
    of sync while pause-sync holds it), which ends UpToDate. No acknowledged write is lost,
    and a copy of an attached disk is refused."""
    report = run_drill(drill("drbd-revert-older-data"))
    assert_passed(report)
    assert check(report, "drbd[r0]@handshake").ok and check(report, "drbd[r0]@restored").ok
    assert check(report, "acked_writes").data["lost"] == 0
    assert "detach it first" in command(report, "step-0")["detail"]


@ON_GUESTS
@pytest.mark.vm_peer
def test_a_checksum_resync_over_a_throttled_link_sends_only_the_differing_requests(run_drill):
    """drbd9-tests' checksum-resync: with csums-alg, a full resync (invalidate) of a
    Secondary with four corrupted blocks over a link throttled to 8 Mbit/s sends only the
    requests whose digests differ, so it ends within a minute where the whole device
    would take far longer; a verify then finds the replicas equal."""
    report = run_drill(drill("drbd-checksum-resync"))
    assert_passed(report)
    assert check(report, "drbd[r0]@resynced").ok and check(report, "drbd[r0]@verified").ok
    assert check(report, "acked_writes").data["lost"] == 0


@ON_GUESTS
@pytest.mark.vm_peer
def test_stepped_wall_clocks_change_neither_the_recovery_nor_the_verdict(run_drill):
    """Jepsen's clock nemesis (bump): the hosts' wall clocks are stepped apart (the survivor
    45 s back, the failing host 30 s ahead) before the DRBD primary dies. The guarantees
    hold under skew: both instances run again exactly once on the survivor, no
    acknowledged write is lost, and each volume had one writer at a time — judged on the
    lab's clock, not on the guests' stepped wall clocks."""
    report = run_drill(drill("clock-skew"))
    assert_passed(report)
    assert check(report, "single_writer").ok and check(report, "exactly_once").ok
    assert check(report, "acked_writes").data["lost"] == 0


@ON_GUESTS
@pytest.mark.vm_peer
def test_a_killed_lvmlockd_leaves_its_lock_so_the_lv_is_never_active_twice(run_drill):
    """lvm2's lvmlockd tests (kill -9 lvmlockd, start it again, lock-start), as the guests'
    lvm2 and DLM behave: the LV lock the dead daemon held stays in the DLM, so the other
    node is refused the LV even after the host deactivated it; the host cannot lock
    without its daemon, and a restarted lvmlockd cannot take back its predecessor's
    lockspace (the peer test expects lock commands to work again; here they do not)."""
    report = run_drill(drill("lvmlockd-killed"))
    assert_passed(report)
    for step in ("step-4", "step-7", "step-11"):
        assert "LV locked by other host" in command(report, step)["detail"]
    assert "due to failed lock" in command(report, "step-10")["detail"]
