"""What the oracle declares before a random drill runs: a lone copy whose disk then fails."""

from __future__ import annotations

from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.faults import DiskFailure, HostCrash, HostHang, LinkDown, Partition, RateLimit
from stackdrill.fuzz import build, run_drill
from stackdrill.fuzz.oracle import declared_damage

RECOVER = Step(at=0, recover=RecoverSpec(parallel=1))


def test_a_cut_then_a_disk_failure_declares_the_writes_since_the_cut() -> None:
    """The primary cmp1 loses its replication link at 32 s, writes on alone, and its disk
    fails at 73 s: what it acknowledged in between existed on that disk only (the seed-293
    double fault). Declared before the run: losses after 32 s, never before."""
    drill = build(293, "mirrored-compute", [
        RECOVER,
        Step(at=32, id="cut", inject=LinkDown(host="cmp1", network="storage")),
        Step(at=73, id="disk", inject=DiskFailure(host="cmp1", disk="sdb"))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 32 and damage.losses_from == 32
    assert {"inst-a", "inst-b"} <= damage.may_be_unrecoverable
    outcome = run_drill(293, drill)
    assert outcome.ok, outcome.summary()
    bounded = next(c for c in outcome.checks if c.name == "divergence_bounded")
    assert bounded.data.get("lost", 0) > 0, "the double fault lost nothing: nothing to excuse"


def test_a_disk_failure_without_a_cut_or_after_a_mere_rate_limit_excuses_nothing() -> None:
    """Replication intact when the disk fails: the peer has every acknowledged write
    (protocol C), so no loss is declared and acked_writes demands zero lost."""
    for first in (None, Step(at=20, id="slow", inject=RateLimit(host="cmp1",
                                                               network="storage", mbit=10))):
        steps = [RECOVER, *([first] if first else []),
                 Step(at=73, id="disk", inject=DiskFailure(host="cmp1", disk="sdb"))]
        damage = declared_damage(build(7, "mirrored-compute", steps))
        assert damage.lone_copy_from is None and damage.losses_from is None


def _lost(outcome: object) -> int:
    bounded = next(c for c in outcome.checks if c.name == "divergence_bounded")  # type: ignore[attr-defined]
    return int(bounded.data.get("lost", 0))


def test_a_cut_then_the_lone_writers_host_goes_declares_the_writes_since_the_cut() -> None:
    """sto1 (Primary) loses its replication link at 48.8 s and writes on alone; then its
    host crashes for good at 78.4 s (random seed 986). Its writes since the cut were on
    sto1's disk only, and sto2 is stale: a double fault, declared before the run — losses
    after 48.8 s, every instance on the resource may be unrecoverable, writes may stop."""
    drill = build(986, "nova-drbd", [
        RECOVER,
        Step(at=48.8, id="cut", inject=LinkDown(host="sto2", network="repl")),
        Step(at=78.4, id="crash", inject=HostCrash(host="sto1", power_back=False))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 48.8 and damage.may_stall
    assert {"web1", "db2"} <= damage.may_be_unrecoverable
    outcome = run_drill(986, drill)
    assert outcome.ok, outcome.summary()
    assert _lost(outcome) > 0, "the double fault lost nothing: nothing to excuse"


def test_a_replaced_disk_whose_resync_source_is_cut_off_declares_the_pending_writes() -> None:
    """cmp1's disk fails at 77.2 s and is replaced at 111.4 s (full resync from cmp2); cmp2
    loses its link at 118.9 s (random seed 2292). The write pending at the cut completes
    on cmp1's Inconsistent disk alone and the resumed resync overwrites it (DRBD 8.4:
    CONNECTION_LOST_WHILE_PENDING, then SyncTarget again): declared from the cut on."""
    drill = build(2292, "mirrored-compute", [
        RECOVER,
        Step(at=77.2, id="disk", inject=DiskFailure(host="cmp1", disk="sdb")),
        Step(at=111.4, heal="disk"),
        Step(at=118.9, id="cut", inject=LinkDown(host="cmp2", network="storage"))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 118.9
    outcome = run_drill(2292, drill)
    assert outcome.ok, outcome.summary()
    assert _lost(outcome) > 0


def test_a_disk_failure_healed_before_any_cut_declares_nothing() -> None:
    """The resync after a replaced disk, with no cut while it runs: nothing may be lost."""
    drill = build(7, "mirrored-compute", [
        RECOVER,
        Step(at=40, id="cut", inject=LinkDown(host="cmp2", network="storage")),
        Step(at=60, heal="cut"),
        Step(at=77.2, id="disk", inject=DiskFailure(host="cmp1", disk="sdb")),
        Step(at=111.4, heal="disk")])
    assert declared_damage(drill).lone_copy_from == 40  # the cut came first: lone copy
    quiet = build(7, "mirrored-compute", [
        RECOVER,
        Step(at=77.2, id="disk", inject=DiskFailure(host="cmp1", disk="sdb")),
        Step(at=111.4, heal="disk")])
    assert declared_damage(quiet).losses_from is None


def test_protocol_a_with_a_lone_copy_is_judged_by_when_writes_were_invoked() -> None:
    """Protocol A, cmp2 cut off at 23.4 s, then cmp1's disk fails at 47.5 s (random seed
    2200): the model predicts what the link lost (nothing), not what the disk took later;
    demanding lost == prediction failed a declared double fault."""
    drill = build(2200, "mirrored-compute", [
        RECOVER,
        Step(at=23.4, id="cut", inject=LinkDown(host="cmp2", network="storage")),
        Step(at=47.5, id="disk", inject=DiskFailure(host="cmp1", disk="sdb"))], protocol="A")
    outcome = run_drill(2200, drill)
    assert outcome.ok, outcome.summary()
    assert _lost(outcome) > 0


def test_a_storage_server_cut_off_for_good_may_cost_every_instance_that_must_move() -> None:
    """sto1 (Primary, alive: nobody fences it) loses its storage link for good at 92.2 s,
    then cmp1 crashes (random seed 777): no path to cmp1's guests' data exists (DRBD allows
    one Primary), so each may be given up — declared before the run, with the count."""
    drill = build(777, "nova-drbd", [
        RECOVER,
        Step(at=92.2, id="cut", inject=LinkDown(host="sto1", network="storage")),
        Step(at=126.6, id="crash", inject=HostCrash(host="cmp1", power_back=False))])
    damage = declared_damage(drill)
    assert {"app1", "db1", "web1"} <= damage.may_be_unrecoverable
    assert damage.max_unrecoverable >= 3


def test_a_write_acknowledged_after_the_cut_is_excused_even_if_invoked_before() -> None:
    """Random seed 1928: write #20 was invoked at 38 s, waited in an iSCSI session through a
    storage-network outage, reached sto1 at 108 s — after replication was cut at 73.5 s —
    and lived on that lone copy only. What counts is when a write was acknowledged: one
    acknowledged before the cut was on both disks and its loss still fails the check."""
    from stackdrill.api import WriteOp
    from stackdrill.fuzz.invariants import divergence_bounded
    from stackdrill.fuzz.oracle import Damage

    damage = Damage(frozenset(), frozenset(), frozenset(), 0, False, None, False,
                    lone_copy_from=73.5)
    late = WriteOp("app1", "vol-app1", 1, 20, "c20", 38.0, 108.0, "ok", "cmp1")
    early = WriteOp("app1", "vol-app1", 1, 19, "c19", 36.0, 36.001, "ok", "cmp1")
    history = [early, late]
    assert divergence_bounded(history, {"app1": {"vol-app1": [20]}}, damage).ok
    bad = divergence_bounded(history, {"app1": {"vol-app1": [19, 20]}}, damage)
    assert not bad.ok and "vol-app1#19@36.0s" in bad.detail and "#20" not in bad.detail


def test_the_storage_clusters_fence_race_then_the_survivor_goes_declares_a_lone_copy() -> None:
    """sto1 loses its management link (the storage cluster's network) at 62.7 s: the two_node
    cluster's fence race powers sto2 off (it stays off) and sto1 writes on alone; sto1 then
    crashes for good at 79.1 s (random seed 728). No copy is left that has the writes since
    62.7 s — DRBD will not promote sto2's Outdated disk — so writes may stop, declared."""
    drill = build(728, "nova-drbd", [
        RECOVER,
        Step(at=62.7, id="mgmt", inject=LinkDown(host="sto1", network="mgmt")),
        Step(at=79.1, id="crash", inject=HostCrash(host="sto1", power_back=False))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 62.7 and damage.may_stall
    outcome = run_drill(728, drill)
    assert outcome.ok, outcome.summary()


def test_a_disk_failure_then_the_cluster_fences_the_disk_holder_declares_a_lone_copy() -> None:
    """sto1's disk fails at 105.6 s (sto2 holds the only copy), then a management partition
    isolates sto1 at 119.2 s: the cluster's fence race (lower node id first) powers sto2 off
    and the replaced disk cannot attach to a diskless Primary (random seed 1648)."""
    drill = build(1648, "nova-drbd", [
        RECOVER,
        Step(at=105.6, id="disk", inject=DiskFailure(host="sto1", disk="sdb")),
        Step(at=119.2, id="split", inject=Partition(
            groups=(("cmp1", "cmp2", "cmp3", "ctl1", "sto2"), ("sto1",)), network="mgmt"))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 105.6 and damage.may_stall
    outcome = run_drill(1648, drill)
    assert outcome.ok, outcome.summary()


def test_a_controller_lost_for_good_while_storage_is_cut_off_may_stop_writes() -> None:
    """A partition cuts cmp2, sto1 and sto2 off the controller at 36.1 s; the controller
    crashes for good at 59.8 s (random seed 1917). The engine fences sto1 and holds sto2
    (the last replica), which it can never see heartbeat again: declared, with its reason."""
    drill = build(1917, "nova-drbd", [
        RECOVER,
        Step(at=36.1, id="split", inject=Partition(
            groups=(("cmp1", "cmp3", "ctl1"), ("cmp2", "sto1", "sto2")))),
        Step(at=59.8, id="ctl", inject=HostCrash(host="ctl1", power_back=False)),
        Step(at=78.4, heal="split")], protocol="A")
    damage = declared_damage(drill)
    assert damage.may_stall and "controller is lost for good" in damage.stall_reason
    outcome = run_drill(1917, drill)
    assert outcome.ok, outcome.summary()
    assert "controller is lost for good" in next(
        c.detail for c in outcome.checks if c.name == "writes_progress")


def test_a_controller_that_comes_back_declares_no_stall() -> None:
    """The same partition with a controller that reboots: nothing is excused."""
    drill = build(1917, "nova-drbd", [
        RECOVER,
        Step(at=36.1, id="split", inject=Partition(
            groups=(("cmp1", "cmp3", "ctl1"), ("cmp2", "sto1", "sto2")))),
        Step(at=59.8, id="ctl", inject=HostCrash(host="ctl1", power_back=True)),
        Step(at=78.4, heal="split"), Step(at=90.0, heal="ctl")], protocol="A")
    assert not declared_damage(drill).may_stall


def test_the_engine_fences_one_storage_node_then_the_other_is_lost_declares_a_lone_copy() -> None:
    """cmp1, sto1 and sto2 are cut off the controller at 66.5 s (DRBD and the storage
    cluster stay connected); the engine fences sto1 and holds sto2, which crashes at 128.2 s
    and never powers on (random seed 7831). Both copies are off for good: declared."""
    drill = build(7831, "nova-drbd", [
        RECOVER,
        Step(at=66.5, id="split", inject=Partition(
            groups=(("cmp1", "sto1", "sto2"), ("cmp2", "cmp3", "ctl1")))),
        Step(at=128.2, id="crash", inject=HostCrash(host="sto2", power_back=True)),
        Step(at=168.8, heal="split")])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 66.5 and damage.may_stall
    outcome = run_drill(7831, drill)
    assert outcome.ok, outcome.summary()


def test_a_storage_cluster_split_then_the_survivors_copy_goes_may_cost_every_instance() -> None:
    """nova-drbd's storage pair is a two_node cluster with power fencing on the management
    network. sto1's disk fails (it serves through sto2), then sto2's management link goes
    down: the cluster's fence race powers sto2 off — the race knows membership, not disks
    — and no copy is left for cmp2's guests to move with (random seeds 4036, 3862, and
    with a hang of sto1: 3244). Declared before the run: every instance on the resource
    may be unrecoverable, writes may stop, losses only after the first cut."""
    drill = build(4036, "nova-drbd", [
        Step(at=0, recover=RecoverSpec(parallel=4)),
        Step(at=50.7, id="disk", inject=DiskFailure(host="sto1", disk="sdb")),
        Step(at=77.6, id="mgmt", inject=LinkDown(host="sto2", network="mgmt")),
        Step(at=105.6, id="hang", inject=HostHang(host="cmp2"))])
    damage = declared_damage(drill)
    everyone = {"app1", "app2", "db1", "db2", "web1", "web2"}
    assert damage.may_be_unrecoverable == everyone and damage.max_unrecoverable == 6
    assert damage.may_stall and damage.lone_copy_from == 50.7
    outcome = run_drill(4036, drill)
    assert outcome.ok, outcome.summary()
    excused = next(c for c in outcome.checks if c.name == "exactly_once_or_declared")
    assert len(excused.data.get("excused", [])) == 2, "nothing was lost: nothing to excuse"


def test_a_storage_cluster_split_alone_declares_nothing() -> None:
    """The fence race alone leaves the other node with the data: nothing is excused."""
    drill = build(4036, "nova-drbd", [
        Step(at=0, recover=RecoverSpec(parallel=4)),
        Step(at=77.6, id="mgmt", inject=LinkDown(host="sto2", network="mgmt"))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from is None and damage.max_unrecoverable == 0


def test_a_cluster_cut_that_fences_the_peer_then_a_disk_failure_declares_the_writes() -> None:
    """A management (= cluster) partition splits the two-node storage cluster at 32.5 s;
    the fence race powers sto2 off (the lower node id wins, even across the partition) and
    sto1 writes alone; its disk fails at 57.2 s (random seed 8932, shrunk). No fault touched
    the replication network, yet the copy was lone: a double fault, declared up front."""
    drill = build(8932, "nova-drbd", [
        RECOVER,
        Step(at=32.5, id="f1", inject=Partition(
            groups=(("cmp1", "cmp3", "sto1"), ("cmp2", "ctl1", "sto2")), network="mgmt")),
        Step(at=57.2, id="f3", inject=DiskFailure(host="sto1", disk="sdb"))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 32.5
    outcome = run_drill(8932, drill)
    assert outcome.ok, outcome.summary()
    assert _lost(outcome) > 0, "the double fault lost nothing: nothing to excuse"


def test_a_cut_off_the_cluster_network_alone_declares_nothing() -> None:
    """A management partition with no later loss of a copy costs no acked write."""
    drill = build(8932, "nova-drbd", [
        RECOVER,
        Step(at=32.5, id="f1", inject=Partition(
            groups=(("cmp1", "cmp3", "sto1"), ("cmp2", "ctl1", "sto2")), network="mgmt"))])
    assert declared_damage(drill).lone_copy_from is None


def test_a_hung_primary_that_thaws_while_being_fenced_declares_its_lone_writes() -> None:
    """cmp1 (Primary of the mirror) hangs at 70 s; the engine declares it down at 91 s and
    powers it off; it thaws at 92.2 s, before the power-off lands, and its guests may write
    on its disk alone (resource-only fencing freezes nothing) until it is off, leaving cmp2
    stale (random seed 5540). Declared up front, because the oracle cannot know the race's
    timing. How much the race loses is DRBD's timing: a thawed node's stale connection
    meets the peer's RST and conn_connect reconnects at once (drbd_timing), so here cmp1
    is SyncSource of cmp2 within 0.1 s and nothing is lost; with the old fixed connect-int
    wait after a heal the writes until the power-off were lost."""
    drill = build(5540, "mirrored-compute", [
        RECOVER,
        Step(at=70.0, id="f1", inject=HostHang(host="cmp1")),
        Step(at=92.2, heal="f1")], protocol="A")
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 70.0
    assert damage.may_be_unrecoverable == {"inst-a", "inst-b"}
    outcome = run_drill(5540, drill)
    assert outcome.ok, outcome.summary()
    assert _lost(outcome) == 0  # reconnected before the power-off landed


def test_a_hang_healed_before_detection_or_after_the_power_off_declares_nothing() -> None:
    for thaw in (80.0, 130.0):
        drill = build(5540, "mirrored-compute", [
            RECOVER,
            Step(at=70.0, id="f1", inject=HostHang(host="cmp1")),
            Step(at=thaw, heal="f1")], protocol="A")
        damage = declared_damage(drill)
        assert damage.lone_copy_from is None and not damage.may_be_unrecoverable
        outcome = run_drill(5540, drill)
        assert outcome.ok, outcome.summary()


def _compute_crash(storage_lost: bool) -> list[Step]:
    """Random seed 5529, shrunk: sto2 loses its storage link at 93.4 s and sto1 dies for
    good at 115.1 s (no copy is reachable any more); cmp1 crashes at 139.9 s, is fenced,
    and is powered on again at 200 s."""
    lost = [Step(at=93.4, id="f1", inject=LinkDown(host="sto2", network="storage")),
            Step(at=115.1, id="f2", inject=HostCrash(host="sto1", power_back=False)),
            Step(at=115.5, id="f3", inject=Partition(
                groups=(("cmp1", "cmp2", "ctl1", "sto2"), ("cmp3", "sto1"))))]
    return [Step(at=0, recover=RecoverSpec(parallel=4)), *(lost if storage_lost else []),
            Step(at=139.9, id="f4", inject=HostCrash(host="cmp1", power_back=True)),
            Step(at=200.0, heal="f4")]


def test_a_guest_still_retried_against_storage_gone_for_good_is_declared() -> None:
    """With no copy reachable to the end, cmp1's web1 (nowhere else to go) is resumed on
    cmp1 once it boots at ~251 s; every attempt fails to log in to the storage, and the
    drill ends during the back-off before its third. The engine is still retrying, and
    says why: the report must say so (not "resumes when cmp1 boots": cmp1 is up), and
    the oracle, which knows the data is out of reach, excuses it."""
    drill = build(5529, "nova-drbd", _compute_crash(storage_lost=True))
    assert "web1" in declared_damage(drill).out_of_reach
    outcome = run_drill(5529, drill)
    assert outcome.ok, outcome.summary()
    check = next(c for c in outcome.checks if c.name == "exactly_once_or_declared")
    assert "web1 (another attempt follows: PrepareStorage failed" in check.detail


def test_a_compute_crash_alone_leaves_nothing_out_of_reach() -> None:
    """The same crash with the storage intact: an instance of cmp1 still being retried at
    the end would be an engine that did not finish, not excused."""
    drill = build(5529, "nova-drbd", _compute_crash(storage_lost=False))
    damage = declared_damage(drill)
    assert "web1" in damage.displaced and not damage.out_of_reach


def _diskless_primary_cut(heal_cut: bool) -> list[Step]:
    """Random seed 3014, shrunk: cmp1 dies at 72.2 s; sto1's disk (the Primary of r0)
    fails at 88.2 s, so it serves through sto2; at 113.1 s the replication link between
    them is cut, for good unless `heal_cut`."""
    return [RECOVER,
            Step(at=72.2, id="f2", inject=HostCrash(host="cmp1", power_back=False)),
            Step(at=88.2, id="f3", inject=DiskFailure(host="sto1", disk="sdb")),
            Step(at=113.1, id="f4", inject=Partition(groups=(("sto1",), ("sto2",)),
                                                       network="repl")),
            *([Step(at=150.0, heal="f4")] if heal_cut else [])]


def test_a_diskless_primary_cut_from_its_peer_for_good_puts_its_data_out_of_reach() -> None:
    """sto1 stays Primary without a disk or a peer: every request fails, nothing promotes
    the UpToDate sto2 (sto1 is alive), and its returning disk could not attach. cmp1's
    evacuees queue behind an attempt on a dead volume (one flow slot); the oracle
    declares them out of reach, and the run passes with them still pending."""
    drill = build(3014, "nova-drbd", _diskless_primary_cut(heal_cut=False))
    assert {"app1", "web1"} <= declared_damage(drill).out_of_reach
    outcome = run_drill(3014, drill)
    assert outcome.ok, outcome.summary()
    check = next(c for c in outcome.checks if c.name == "exactly_once_or_declared")
    assert "app1 (its host cmp1 is evacuating)" in check.detail


def test_a_replication_cut_that_heals_leaves_the_diskless_primary_reachable() -> None:
    """The same faults with the replication link back at 150 s: sto1 serves through sto2
    again, and an evacuee still pending at the end is the engine's to answer for."""
    drill = build(3014, "nova-drbd", _diskless_primary_cut(heal_cut=True))
    assert not declared_damage(drill).out_of_reach


def _blinded_after_return(heal_blind: bool) -> list[Step]:
    """Random seed 2628, shrunk: cmp2 (the replica) loses its management and replication
    link at 39.4 s, cmp1 (the Primary, writing alone) crashes at 46.1 s and is powered on
    again at 76.4 s; at 127 s the controller is cut off from every compute host."""
    return [RECOVER,
            Step(at=39.4, id="f1", inject=LinkDown(host="cmp2", network="mgmt")),
            Step(at=46.1, id="f2", inject=HostCrash(host="cmp1", power_back=True)),
            Step(at=76.4, heal="f2"),
            Step(at=127.0, id="f4", inject=Partition(groups=(("cmp1", "cmp2", "cmp3"),
                                                             ("ctl1",)), network="mgmt")),
            Step(at=140.3, heal="f1"),
            *([Step(at=150.0, heal="f4")] if heal_blind else [])]


def test_a_controller_cut_off_every_compute_host_for_good_declares_pending_instances() -> None:
    """DRBD refuses to promote cmp2 (its fence-peer handler cannot reach the cluster) and
    the engine waits for cmp1, which holds the only up-to-date copy; cmp1 boots at 121 s,
    6 s before the controller loses every compute host for good. No flow can run after
    that: the evacuees stay pending, and the oracle says so before the run."""
    drill = build(2628, "mirrored-compute", _blinded_after_return(heal_blind=False))
    damage = declared_damage(drill)
    assert damage.out_of_reach == {"inst-a", "inst-b"}
    assert "may still be pending" in damage.describe()
    outcome = run_drill(2628, drill)
    assert outcome.ok, outcome.summary()


def test_a_controller_cut_off_that_heals_leaves_the_engine_to_finish() -> None:
    """The same with the controller's partition healed at 150 s: nothing is out of reach,
    the engine must recover both instances, and it does."""
    drill = build(2628, "mirrored-compute", _blinded_after_return(heal_blind=True))
    assert not declared_damage(drill).out_of_reach
    outcome = run_drill(2628, drill)
    assert outcome.ok, outcome.summary()


def _off_the_controller_then_cut(heal_mgmt_at: float | None) -> list[Step]:
    """Random seed 7828, shrunk: the controller crashes at 27 s and is back at 50.2 s;
    cmp1 (the Primary) loses its management link at 53.5 s; at 94.7 s the storage
    (replication) network is split between cmp1 and cmp2."""
    return [Step(at=0, recover=RecoverSpec(parallel=4)),
            Step(at=27.0, id="f1", inject=HostCrash(host="ctl1", power_back=True)),
            Step(at=50.2, heal="f1"),
            Step(at=53.5, id="f2", inject=LinkDown(host="cmp1", network="mgmt")),
            *([Step(at=heal_mgmt_at, heal="f2")] if heal_mgmt_at is not None else []),
            Step(at=94.7, id="f3", inject=Partition(groups=(("cmp1", "cmp3"), ("cmp2",)),
                                                    network="storage"))]


def test_a_node_off_the_controller_then_cut_from_its_peer_declares_its_lone_writes() -> None:
    """cmp1 keeps writing alone once DRBD declares cmp2 lost (resource-only fencing, its
    handler cannot reach the cluster); the cut also gives the controller, which has not
    heard cmp1 since 53.5 s, its corroboration: it fences cmp1 and promotes cmp2, which
    lacks those writes. Declared before the run: losses from the cut on."""
    drill = build(7828, "mirrored-compute", _off_the_controller_then_cut(None))
    assert declared_damage(drill).lone_copy_from == 94.7
    outcome = run_drill(7828, drill)
    assert outcome.ok, outcome.summary()


def test_a_management_link_back_before_the_cut_declares_nothing() -> None:
    """The same cut after cmp1's management link came back: the controller hears cmp1, so
    nobody fences the writer and nothing may be lost."""
    drill = build(7828, "mirrored-compute", _off_the_controller_then_cut(80.0))
    assert declared_damage(drill).lone_copy_from is None
